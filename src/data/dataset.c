/* dataset: see dataset.h. */
#include "data/dataset.h"

#include <cjson/cJSON.h>
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
#include "data/reader.h"

#define CHUNK 512

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

/* Reads and formats every record of every file. */
static int build_in_memory(struct dataset *ds, const struct dataset_options *opt, const struct formatter *f) {
    struct growing g = {0};
    cJSON *recs[CHUNK];
    int64_t rows[CHUNK];
    struct formatted fr[CHUNK];
    char *errs[CHUNK];
    memset(fr, 0, sizeof fr);
    int rc = 0;
    for (int fi = 0; fi < opt->n_files && rc == 0; fi++) {
        struct reader *r;
        const char *file = opt->files[fi];
        if (reader_open_opts(&r, file, opt->skip_bad_rows)) {
            rc = -1;
            break;
        }
        for (;;) {
            int n = 0, got = 1;
            while (n < CHUNK) {
                rows[n] = reader_row(r);
                got = reader_next(r, &recs[n]);
                if (got <= 0) break;
                n++;
            }
            if (got < 0) rc = -1;
#pragma omp parallel for schedule(dynamic, 8)
            for (int i = 0; i < n; i++) {
                errs[i] = NULL;
                if (format_record(f, recs[i], file, rows[i], &fr[i])) errs[i] = xstrdup(err_msg());
            }
            for (int i = 0; i < n; i++) {
                cJSON_Delete(recs[i]);
                if (rc == 0 && errs[i]) {
                    err_set("%s", errs[i]);
                    rc = -1;
                }
                if (rc == 0 && !errs[i]) {
                    struct dataset_stats *s = &ds->stats;
                    s->n_records++;
                    s->n_truncated += fr[i].truncated;
                    if (fr[i].dropped) {
                        s->n_dropped++;
                        continue;
                    }
                    int t = trained_count(&fr[i]);
                    if (t == 0) {
                        s->n_zero_trained++;
                        continue;
                    }
                    s->n_trained_tokens += t;
                    s->n_tokens += fr[i].n;
                    s->hist[bucket(fr[i].n)]++;
                    grow_add(&g, &fr[i]);
                }
                free(errs[i]);
            }
            if (rc || got == 0) break;
        }
        ds->stats.n_skipped_rows += reader_skipped(r);
        reader_close(r);
    }
    for (int i = 0; i < CHUNK; i++) formatted_free(&fr[i]);
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

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static char *cache_key(const struct dataset_options *opt, const struct formatter *f) {
    uint64_t h = 0xcbf29ce484222325ull;
    const char *ver = "csft-data-v1";
    h = fnv1a(h, ver, strlen(ver));
    for (int i = 0; i < opt->n_files; i++) {
        struct stat st;
        char *rp = realpath(opt->files[i], NULL);
        const char *p = rp ? rp : opt->files[i];
        h = fnv1a(h, p, strlen(p) + 1);
        free(rp);
        if (stat(opt->files[i], &st) == 0) {
            h = fnv1a(h, &st.st_size, sizeof st.st_size);
            h = fnv1a(h, &st.st_mtim, sizeof st.st_mtim);
        }
    }
    if (opt->cache_salt) h = fnv1a(h, opt->cache_salt, strlen(opt->cache_salt) + 1);
    int64_t o[6] = {f->opt.format, f->opt.loss_on, f->opt.truncation, f->opt.seq_length, f->alpaca_tmpl != NULL, f->eos_id};
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

/* .idx: magic, version 1, dtype code, n sequences, n docs, sizes int32, pointers int64, doc_idx int64 */
static int write_indexed(const char *prefix, const char *suffix, const struct dataset *ds, int code, size_t elt) {
    int64_t n = ds->n;
    size_t len = 9 + 8 + 1 + 8 + 8 + 4 * (size_t)n + 8 * (size_t)n + 8 * (size_t)(n + 1);
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
    int rc = file_write_atomic(ip, buf, len);
    if (rc == 0) rc = file_write_atomic(bp, elt == 4 ? (const void *)ds->ids : (const void *)ds->mask, (size_t)ds->offsets[n] * elt);
    free(buf), free(ip), free(bp);
    return rc;
}

static void *map_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    void *p = NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* Maps <prefix><suffix>.idx/.bin; checks the header against code/elt; fills offsets (first call). */
static int read_indexed(struct dataset *ds, const char *prefix, const char *suffix, int code, size_t elt, int slot) {
    char *ip = xasprintf("%s%s.idx", prefix, suffix), *bp = xasprintf("%s%s.bin", prefix, suffix);
    int rc = -1;
    size_t ilen = 0;
    const char *idx = map_file(ip, &ilen);
    ds->map[slot] = (void *)idx, ds->map_len[slot] = ilen;
    if (!idx || ilen < 34 || memcmp(idx, idx_magic, 9) != 0 || idx[17] != code) {
        err_set("%s: not a csft/Megatron index of the expected type", ip);
        goto done;
    }
    uint64_t n;
    memcpy(&n, idx + 18, 8);
    if (ilen != 34 + 4 * n + 8 * n + 8 * (n + 1)) {
        err_set("%s: truncated index", ip);
        goto done;
    }
    if (!ds->offsets) {
        ds->n = (int64_t)n;
        ds->offsets = xmalloc(sizeof(int64_t) * (n + 1));
        ds->offsets[0] = 0;
        for (uint64_t i = 0; i < n; i++) {
            int32_t s;
            memcpy(&s, idx + 34 + 4 * i, 4);
            ds->offsets[i + 1] = ds->offsets[i] + s;
        }
    } else if ((int64_t)n != ds->n) {
        err_set("%s: %llu sequences, but the token index has %lld", ip, (unsigned long long)n, (long long)ds->n);
        goto done;
    }
    size_t blen = 0;
    void *bin = map_file(bp, &blen);
    ds->map[slot + 1] = bin, ds->map_len[slot + 1] = blen;
    if (!bin || blen != (size_t)ds->offsets[ds->n] * elt) {
        err_set("%s: size does not match its index", bp);
        goto done;
    }
    if (elt == 4) ds->ids = bin;
    else ds->mask = bin;
    rc = 0;
done:
    free(ip), free(bp);
    return rc;
}

static int load_cache(struct dataset *ds, const char *key) {
    char *meta = xasprintf("%s.json", key);
    char *text = file_read_all(meta, NULL);
    free(meta);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return -1;
    static const char *names[] = {"n_records", "n_truncated", "n_dropped", "n_zero_trained", "n_skipped_rows", "n_tokens",
                                  "n_trained_tokens"};
    int64_t *fields[] = {&ds->stats.n_records,      &ds->stats.n_truncated, &ds->stats.n_dropped,
                         &ds->stats.n_zero_trained, &ds->stats.n_skipped_rows, &ds->stats.n_tokens,
                         &ds->stats.n_trained_tokens};
    for (int i = 0; i < 7; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, names[i]);
        *fields[i] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    }
    cJSON_Delete(j);
    if (read_indexed(ds, key, "", 4, 4, 0) || read_indexed(ds, key, "_mask", 1, 1, 2)) return -1;
    ds->stats.n_sequences = ds->n;
    for (int64_t i = 0; i < ds->n; i++) ds->stats.hist[bucket(dataset_len(ds, i))]++;
    ds->stats.from_cache = 1;
    return 0;
}

static int save_cache(const struct dataset *ds, const char *key, const char *dir) {
    if (dir_create(dir)) return -1;
    if (write_indexed(key, "", ds, 4, 4) || write_indexed(key, "_mask", ds, 1, 1)) return -1;
    char *json = xasprintf("{\"format\": \"csft-data-v1\", \"n_records\": %lld, \"n_sequences\": %lld, \"n_truncated\": %lld, "
                           "\"n_dropped\": %lld, \"n_zero_trained\": %lld, \"n_skipped_rows\": %lld, \"n_tokens\": %lld, "
                           "\"n_trained_tokens\": %lld}\n",
                           (long long)ds->stats.n_records, (long long)ds->n, (long long)ds->stats.n_truncated,
                           (long long)ds->stats.n_dropped, (long long)ds->stats.n_zero_trained,
                           (long long)ds->stats.n_skipped_rows, (long long)ds->stats.n_tokens,
                           (long long)ds->stats.n_trained_tokens);
    char *meta = xasprintf("%s.json", key);
    int rc = file_write_atomic(meta, json, strlen(json)); /* written last: marks the cache complete */
    free(json), free(meta);
    return rc;
}

static void unmap_all(struct dataset *ds) {
    for (int i = 0; i < 4; i++)
        if (ds->map[i]) munmap(ds->map[i], ds->map_len[i]), ds->map[i] = NULL;
}

int dataset_build(struct dataset **out, const struct dataset_options *opt, const struct formatter *f) {
    struct dataset *ds = xcalloc(1, sizeof *ds);
    double t0 = time_now();
    if (opt->n_files <= 0) {
        free(ds);
        return err_set("no data files given");
    }
    int use_cache = opt->cache_dir && opt->cache_dir[0];
    if (use_cache) {
        ds->cache_path = cache_key(opt, f);
        if (load_cache(ds, ds->cache_path) == 0) {
            ds->stats.seconds = time_now() - t0;
            *out = ds;
            return 0;
        }
        unmap_all(ds);
        free(ds->offsets);
        ds->offsets = NULL, ds->ids = NULL, ds->mask = NULL;
        memset(&ds->stats, 0, sizeof ds->stats);
    }
    if (build_in_memory(ds, opt, f)) {
        dataset_free(ds);
        return -1;
    }
    if (use_cache && save_cache(ds, ds->cache_path, opt->cache_dir)) {
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
