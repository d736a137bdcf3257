/* dataset: see dataset.h. */
#include "data/dataset.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "data/mindrecord.h"
#include "data/reader.h"

#define CHUNK 1024

struct growing {
    int32_t *ids;
    uint8_t *mask;
    int64_t n, cap;
    int64_t *offsets;
    int64_t n_seq, cap_seq;
};

static void grow_add(struct growing *g, const struct formatted *fr) {
    if (g->n + fr->n > g->cap) {
        g->cap = (g->n + fr->n) * 2 + 1024;
        g->ids = xrealloc(g->ids, sizeof(int32_t) * (size_t)g->cap);
        g->mask = xrealloc(g->mask, (size_t)g->cap);
    }
    if (g->n_seq + 2 > g->cap_seq) {
        g->cap_seq = g->cap_seq * 2 + 1024;
        g->offsets = xrealloc(g->offsets, sizeof(int64_t) * (size_t)g->cap_seq);
    }
    memcpy(g->ids + g->n, fr->ids, sizeof(int32_t) * (size_t)fr->n);
    for (int64_t i = 0; i < fr->n; i++) g->mask[g->n + i] = fr->labels[i] >= 0;
    if (g->n_seq == 0) g->offsets[0] = 0;
    g->n += fr->n;
    g->offsets[++g->n_seq] = g->n;
}

static int trained_count(const struct formatted *fr) {
    int n = 0;
    for (int64_t i = 0; i < fr->n; i++) n += fr->labels[i] >= 0;
    return n;
}

static int bucket(int64_t len) {
    int b = 0;
    while (len > 1 && b < 15) len >>= 1, b++;
    return b;
}

/* A chunk of records read, then formatted by OpenMP tasks while the next chunk is read. */
struct chunk {
    cJSON *recs[CHUNK];
    int64_t rows[CHUNK];
    struct formatted fr[CHUNK];
    char *errs[CHUNK];
    int n, got;     /* records; reader_next's last answer (1 more, 0 end, -1 error) */
    char *read_err; /* the reader's message when got < 0 */
};

static void chunk_read(struct chunk *c, struct reader *r) {
    c->n = 0, c->got = 1;
    while (c->n < CHUNK) {
        c->rows[c->n] = reader_row(r);
        c->got = reader_next(r, &c->recs[c->n]);
        if (c->got <= 0) break;
        c->n++;
    }
    /* keep the reader's message: formatting may set (thread-local) errors on this thread */
    c->read_err = c->got < 0 ? xstrdup(err_msg()) : NULL;
}

static void chunk_discard(struct chunk *c) {
    for (int i = 0; i < c->n; i++) cJSON_Delete(c->recs[i]), c->recs[i] = NULL;
    free(c->read_err), c->read_err = NULL;
    c->n = 0;
}

/* Adds a formatted chunk to the dataset in row order; the first error (format or read) wins. */
static int chunk_merge(struct dataset *ds, struct growing *g, struct chunk *c, const struct dataset_options *opt) {
    int rc = 0;
    for (int i = 0; i < c->n; i++) {
        cJSON_Delete(c->recs[i]), c->recs[i] = NULL;
        char *e = c->errs[i];
        c->errs[i] = NULL;
        if (rc == 0 && e) {
            if (opt->skip_bad_rows) ds->stats.n_skipped_rows++;
            else rc = err_set("%s", e);
        }
        if (rc == 0 && !e) {
            struct dataset_stats *s = &ds->stats;
            struct formatted *fr = &c->fr[i];
            s->n_records++;
            s->n_truncated += fr->truncated;
            int t = fr->dropped ? 0 : trained_count(fr);
            if (fr->dropped) s->n_dropped++;
            else if (t == 0) s->n_zero_trained++;
            else {
                s->n_trained_tokens += t;
                s->n_tokens += fr->n;
                s->hist[bucket(fr->n)]++;
                grow_add(g, fr);
            }
        }
        free(e);
    }
    if (c->read_err && rc == 0) rc = err_set("%s", c->read_err);
    free(c->read_err), c->read_err = NULL;
    c->n = 0;
    return rc;
}

/* Reads and formats every record of every file: the reading thread fills one chunk while
 * the others format the previous one (one task per record). */
static int build_in_memory(struct dataset *ds, const struct dataset_options *opt, const struct formatter *f) {
    struct growing g = {0};
    struct chunk *c = xcalloc(2, sizeof *c);
    int rc = 0;
    for (int fi = 0; fi < opt->n_files && rc == 0; fi++) {
        struct reader *r;
        const char *file = opt->files[fi];
        if (reader_open_opts(&r, file, opt->skip_bad_rows)) {
            rc = -1;
            break;
        }
        const char *cols[32];
        reader_select(r, cols, format_columns(&f->opt, cols, 32));
        chunk_read(&c[0], r);
        int cur = 0;
        /* master, not single: err_set is thread-local and the caller reads it on this thread */
#pragma omp parallel
#pragma omp master
        for (;;) {
            struct chunk *a = &c[cur], *b = &c[cur ^ 1];
            for (int i = 0; i < a->n; i++) {
#pragma omp task firstprivate(i) shared(a)
                {
                    a->errs[i] = NULL;
                    if (format_record(f, a->recs[i], file, a->rows[i], &a->fr[i])) a->errs[i] = xstrdup(err_msg());
                }
            }
            int more = a->got > 0;
            if (more) chunk_read(b, r);
#pragma omp taskwait
            rc = chunk_merge(ds, &g, a, opt);
            if (rc || !more) {
                if (more) chunk_discard(b);
                break;
            }
            cur ^= 1;
        }
        ds->stats.n_skipped_rows += reader_skipped(r);
        reader_close(r);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < CHUNK; i++) formatted_free(&c[k].fr[i]);
    free(c);
    if (rc) {
        free(g.ids), free(g.mask), free(g.offsets);
        return -1;
    }
    if (g.n_seq == 0) {
        free(g.ids), free(g.mask), free(g.offsets);
        return err_set("%s%s: no record with a trained token (%lld records read, %lld without trained tokens, %lld dropped)",
                       opt->files[0], opt->n_files > 1 ? " (and the other files)" : "", (long long)ds->stats.n_records,
                       (long long)ds->stats.n_zero_trained, (long long)ds->stats.n_dropped);
    }
    ds->n = g.n_seq;
    ds->offsets = g.offsets;
    ds->own_ids = g.ids, ds->own_mask = g.mask;
    ds->ids = g.ids, ds->mask = g.mask;
    ds->stats.n_sequences = g.n_seq;
    return 0;
}

/* ---- cache: Megatron MMIDIDX indexed files ---- */

static const char idx_magic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
#define IDX_HEADER 34 /* magic 9, version u64, dtype u8, n sequences u64, n documents u64 */
#define CACHE_VERSION "csft-data-v2"

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

/* Content checksum of a cache file: 4 independent 64-bit lanes over 32-byte blocks (fast
 * enough to verify ~100 MB per second-fraction on every load), then the tail bytewise. */
static uint64_t content_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h[4] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0x2545f4914f6cdd1dull};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, s + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * 0x100000001b3ull;
            h[k] ^= h[k] >> 29;
        }
    uint64_t r = fnv1a(0xcbf29ce484222325ull, s + i, n - i);
    for (int k = 0; k < 4; k++) r = fnv1a(r, &h[k], 8);
    return fnv1a(r, &n, sizeof n);
}

static uint64_t hash_file_identity(uint64_t h, const char *path) {
    struct stat st;
    char *rp = realpath(path, NULL);
    const char *p = rp ? rp : path;
    h = fnv1a(h, p, strlen(p) + 1);
    free(rp);
    if (stat(path, &st) != 0) return h;
    h = fnv1a(h, &st.st_size, sizeof st.st_size);
    h = fnv1a(h, &st.st_mtim, sizeof st.st_mtim);
    return h;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder (save_to_disk): its own mtime misses files rewritten in place, so every entry counts. */
static uint64_t hash_input(uint64_t h, const char *path) {
    h = hash_file_identity(h, path);
    DIR *d = opendir(path);
    if (!d) return h;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) names = xrealloc(names, sizeof *names * (cap = cap * 2 + 16));
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char *fp = path_join(path, names[i]);
        h = hash_file_identity(h, fp);
        free(fp), free(names[i]);
    }
    free(names);
    return h;
}

/* A MindRecord data file brings its shard group: its folder's entries count too. */
static uint64_t hash_input_group(uint64_t h, const char *path) {
    h = hash_input(h, path);
    if (dir_exists(path) || !mindrecord_sniff(path)) return h;
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
    h = hash_input(h, dir);
    free(dir);
    return h;
}

static char *cache_key(const struct dataset_options *opt, const struct formatter *f) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, CACHE_VERSION, strlen(CACHE_VERSION));
    for (int i = 0; i < opt->n_files; i++) h = hash_input_group(h, opt->files[i]);
    if (opt->cache_salt) h = fnv1a(h, opt->cache_salt, strlen(opt->cache_salt) + 1);
    int64_t o[8] = {f->opt.format, f->opt.loss_on, f->opt.truncation, f->opt.seq_length, f->alpaca_tmpl != NULL,
                    f->eos_id, f->pad_id /* MindFormers target_ids rows */, f->opt.no_eos_loss};
    h = fnv1a(h, o, sizeof o);
    for (int i = 0; i < f->opt.n_columns; i++) {
        h = fnv1a(h, f->opt.columns[i].canonical, strlen(f->opt.columns[i].canonical) + 1);
        h = fnv1a(h, f->opt.columns[i].column, strlen(f->opt.columns[i].column) + 1);
    }
    h = fnv1a(h, &opt->skip_bad_rows, sizeof opt->skip_bad_rows);
    char name[32];
    snprintf(name, sizeof name, "%016llx", (unsigned long long)h);
    return path_join(opt->cache_dir, name);
}

static void put_u64(char *p, uint64_t v) { memcpy(p, &v, 8); }

/* .idx (Megatron MMIDIDX v1): magic, version 1, dtype code (4 = int32, 1 = uint8), n
 * sequences, n documents (= n + 1 boundaries), sizes int32[n], byte pointers int64[n],
 * document indices int64[n+1] (one sequence per document). Returns the content hashes. */
static int write_indexed(const char *prefix, const char *suffix, const struct dataset *ds, int code, size_t elt,
                         uint64_t *idx_hash, uint64_t *bin_hash) {
    int64_t n = ds->n;
    size_t len = IDX_HEADER + 4 * (size_t)n + 8 * (size_t)n + 8 * (size_t)(n + 1);
    char *buf = xcalloc(len, 1), *p = buf;
    memcpy(p, idx_magic, 9), p += 9;
    put_u64(p, 1), p += 8;
    *p++ = (char)code;
    put_u64(p, (uint64_t)n), p += 8;
    put_u64(p, (uint64_t)n + 1), p += 8;
    for (int64_t i = 0; i < n; i++) {
        int32_t s = (int32_t)dataset_len(ds, i);
        memcpy(p, &s, 4), p += 4;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t ptr = ds->offsets[i] * (int64_t)elt;
        memcpy(p, &ptr, 8), p += 8;
    }
    for (int64_t i = 0; i <= n; i++) memcpy(p, &i, 8), p += 8;
    char *ip = xasprintf("%s%s.idx", prefix, suffix), *bp = xasprintf("%s%s.bin", prefix, suffix);
    const void *data = elt == 4 ? (const void *)ds->ids : (const void *)ds->mask;
    size_t dlen = (size_t)ds->offsets[n] * elt;
    *idx_hash = content_hash(buf, len);
    *bin_hash = content_hash(data, dlen);
    int rc = file_write_atomic(bp, data, dlen);
    if (rc == 0) rc = file_write_atomic(ip, buf, len);
    free(buf), free(ip), free(bp);
    return rc;
}

static void *map_file(const char *path, size_t *len) {
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    void *p = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (!p || p == MAP_FAILED) return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* Maps <prefix><suffix>.idx/.bin and checks them: header (magic, version, dtype), sizes that
 * agree with the first index, pointers, and both files' content hashes against the meta
 * file's. Fills offsets on the first call. Any mismatch: -1 (the cache is not trusted). */
static int read_indexed(struct dataset *ds, const char *prefix, const char *suffix, int code, size_t elt, int slot,
                        uint64_t want_idx_hash, uint64_t want_bin_hash) {
    char *ip = xasprintf("%s%s.idx", prefix, suffix), *bp = xasprintf("%s%s.bin", prefix, suffix);
    int rc = -1;
    size_t ilen = 0;
    const char *idx = map_file(ip, &ilen);
    ds->map[slot] = (void *)idx, ds->map_len[slot] = ilen;
    uint64_t n = 0, ver = 0;
    if (idx && ilen >= IDX_HEADER) memcpy(&ver, idx + 9, 8), memcpy(&n, idx + 18, 8);
    if (!idx || ilen < IDX_HEADER || memcmp(idx, idx_magic, 9) != 0 || ver != 1 || idx[17] != code) {
        err_set("%s: not a Megatron MMIDIDX v1 index of dtype code %d", ip, code);
        goto done;
    }
    if (n > (ilen - IDX_HEADER) / 20 || ilen != IDX_HEADER + 4 * n + 8 * n + 8 * (n + 1)) {
        err_set("%s: %zu bytes do not hold the %llu sequences of its header (truncated?)", ip, ilen,
                (unsigned long long)n);
        goto done;
    }
    if (content_hash(idx, ilen) != want_idx_hash) {
        err_set("%s: content does not match the checksum recorded when the cache was written", ip);
        goto done;
    }
    const char *sizes = idx + IDX_HEADER;
    if (!ds->offsets) {
        ds->n = (int64_t)n;
        ds->offsets = xmalloc(sizeof(int64_t) * (n + 1));
        ds->offsets[0] = 0;
        for (uint64_t i = 0; i < n; i++) {
            int32_t s;
            memcpy(&s, sizes + 4 * i, 4);
            ds->offsets[i + 1] = ds->offsets[i] + s;
        }
    } else if ((int64_t)n != ds->n) {
        err_set("%s: %llu sequences, but the token index has %lld", ip, (unsigned long long)n, (long long)ds->n);
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        int32_t s;
        int64_t ptr;
        memcpy(&s, sizes + 4 * i, 4);
        memcpy(&ptr, sizes + 4 * n + 8 * i, 8);
        if (s <= 0 || ds->offsets[i + 1] - ds->offsets[i] != s || ptr != ds->offsets[i] * (int64_t)elt) {
            err_set("%s: sequence %llu: size %d / pointer %lld disagree with the token index", ip,
                    (unsigned long long)i, s, (long long)ptr);
            goto done;
        }
    }
    size_t blen = 0;
    void *bin = map_file(bp, &blen);
    ds->map[slot + 1] = bin, ds->map_len[slot + 1] = blen;
    if (!bin || blen != (size_t)ds->offsets[ds->n] * elt) {
        err_set("%s: %zu bytes, its index expects %lld", bp, blen, (long long)ds->offsets[ds->n] * (long long)elt);
        goto done;
    }
    if (content_hash(bin, blen) != want_bin_hash) {
        err_set("%s: content does not match the checksum recorded when the cache was written", bp);
        goto done;
    }
    if (elt == 4) ds->ids = bin;
    else ds->mask = bin;
    rc = 0;
done:
    free(ip), free(bp);
    return rc;
}

static const char *stat_names[] = {"n_records", "n_truncated", "n_dropped", "n_zero_trained",
                                   "n_skipped_rows", "n_tokens", "n_trained_tokens"};
static int64_t *stat_fields(struct dataset_stats *s, int i) {
    int64_t *f[] = {&s->n_records,      &s->n_truncated, &s->n_dropped,       &s->n_zero_trained,
                    &s->n_skipped_rows, &s->n_tokens,    &s->n_trained_tokens};
    return f[i];
}
static const char *hash_names[] = {"ids_idx_hash", "ids_bin_hash", "mask_idx_hash", "mask_bin_hash"};

/* 0 = loaded; -1 = absent (err empty) or not trusted (err says why). */
static int load_cache(struct dataset *ds, const char *key) {
    char *meta = xasprintf("%s.json", key);
    char *text = file_exists(meta) ? file_read_all(meta, NULL) : NULL;
    if (!text) {
        free(meta);
        err_clear();
        return -1;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *fmt = cJSON_GetObjectItem(j, "format");
    uint64_t hashes[4] = {0};
    int ok = cJSON_IsString(fmt) && strcmp(fmt->valuestring, CACHE_VERSION) == 0;
    for (int i = 0; ok && i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, hash_names[i]);
        ok = cJSON_IsString(v) && sscanf(v->valuestring, "%" SCNx64, &hashes[i]) == 1;
    }
    for (int i = 0; ok && i < 7; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, stat_names[i]);
        ok = cJSON_IsNumber(v) && v->valuedouble >= 0;
        if (ok) *stat_fields(&ds->stats, i) = (int64_t)v->valuedouble;
    }
    cJSON_Delete(j);
    if (!ok) {
        err_set("%s: not a %s cache description", meta, CACHE_VERSION);
        free(meta);
        return -1;
    }
    free(meta);
    if (read_indexed(ds, key, "", 4, 4, 0, hashes[0], hashes[1]) ||
        read_indexed(ds, key, "_mask", 1, 1, 2, hashes[2], hashes[3]))
        return -1;
    ds->stats.n_sequences = ds->n;
    int64_t total = 0, trained = 0;
    for (int64_t i = 0; i < ds->n; i++) ds->stats.hist[bucket(dataset_len(ds, i))]++;
    total = ds->offsets[ds->n];
    for (int64_t i = 0; i < total; i++) trained += ds->mask[i] != 0;
    if (total != ds->stats.n_tokens || trained != ds->stats.n_trained_tokens)
        return err_set("%s.json: token counts %lld/%lld disagree with the cached arrays (%lld/%lld)", key,
                       (long long)ds->stats.n_tokens, (long long)ds->stats.n_trained_tokens, (long long)total,
                       (long long)trained);
    ds->stats.from_cache = 1;
    return 0;
}

static int save_cache(const struct dataset *ds, const char *key, const char *dir) {
    if (dir_create(dir)) return -1;
    uint64_t h[4];
    if (write_indexed(key, "", ds, 4, 4, &h[0], &h[1]) || write_indexed(key, "_mask", ds, 1, 1, &h[2], &h[3]))
        return -1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", CACHE_VERSION);
    cJSON_AddNumberToObject(j, "n_sequences", (double)ds->n);
    struct dataset_stats st = ds->stats;
    for (int i = 0; i < 7; i++) cJSON_AddNumberToObject(j, stat_names[i], (double)*stat_fields(&st, i));
    for (int i = 0; i < 4; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, h[i]);
        cJSON_AddStringToObject(j, hash_names[i], hex);
    }
    char *json = cJSON_Print(j);
    cJSON_Delete(j);
    char *meta = xasprintf("%s.json", key);
    int rc = file_write_atomic(meta, json, strlen(json)); /* written last: marks the cache complete */
    free(json), free(meta);
    return rc;
}

static void unmap_all(struct dataset *ds) {
    for (int i = 0; i < 4; i++)
        if (ds->map[i]) munmap(ds->map[i], ds->map_len[i]), ds->map[i] = NULL;
}

static void reset(struct dataset *ds) {
    unmap_all(ds);
    free(ds->offsets);
    ds->offsets = NULL, ds->ids = NULL, ds->mask = NULL, ds->n = 0;
    memset(&ds->stats, 0, sizeof ds->stats);
}

int dataset_load_cached(struct dataset **out, const struct dataset_options *opt, const struct formatter *f) {
    *out = NULL;
    if (!opt->cache_dir || !opt->cache_dir[0] || opt->n_files <= 0) return 0;
    struct dataset *ds = xcalloc(1, sizeof *ds);
    double t0 = time_now();
    ds->cache_path = cache_key(opt, f);
    if (load_cache(ds, ds->cache_path) == 0) {
        ds->stats.seconds = time_now() - t0;
        *out = ds;
        return 1;
    }
    if (err_msg()[0]) fprintf(stderr, "warning: data cache not used, rebuilding it: %s\n", err_msg());
    err_clear();
    dataset_free(ds);
    return 0;
}

int dataset_build(struct dataset **out, const struct dataset_options *opt, const struct formatter *f) {
    if (opt->n_files <= 0) return err_set("no data files given");
    if (dataset_load_cached(out, opt, f)) return 0;
    struct dataset *ds = xcalloc(1, sizeof *ds);
    double t0 = time_now();
    int use_cache = opt->cache_dir && opt->cache_dir[0];
    if (!f->tk && f->opt.format != DATA_FORMAT_TOKENIZED) {
        free(ds);
        return err_set("dataset_build: no tokenizer to format the records with");
    }
    reset(ds);
    if (build_in_memory(ds, opt, f)) {
        dataset_free(ds);
        return -1;
    }
    if (use_cache) {
        ds->cache_path = cache_key(opt, f);
        if (save_cache(ds, ds->cache_path, opt->cache_dir))
            fprintf(stderr, "warning: could not write the data cache: %s\n", err_msg());
    }
    ds->stats.seconds = time_now() - t0;
    *out = ds;
    return 0;
}

void dataset_free(struct dataset *ds) {
    if (!ds) return;
    unmap_all(ds);
    free(ds->offsets);
    free(ds->own_ids);
    free(ds->own_mask);
    free(ds->cache_path);
    free(ds);
}
