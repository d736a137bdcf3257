/* mindrecord_write: see mindrecord_write.h. The layout rules follow MindSpore's ShardWriter
 * (mindrecord/io/shard_writer.cc): per write call the rows are split evenly over the shards; in a
 * shard they are cut into row groups (a new group whenever the blob page or the group's raw bytes
 * would pass page_size), the first group continues the last blob page, the others get new blob
 * pages; a raw page that would overflow hands its last group to a new raw page. Rows are
 * [u64 LE len][bytes]; blobs and compression as in mindrecord.c; the .db as
 * shard_index_generator.cc (tables SHARD_NAME and INDEXES). */
#include "data/mindrecord_write.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "data/msgpack.h"

enum { WT_INT32, WT_INT64, WT_FLOAT32, WT_FLOAT64, WT_STRING, WT_BYTES };
static const char *wtype_names[] = {"int32", "int64", "float32", "float64", "string", "bytes"};

struct wfield {
    const char *name; /* in w->schema */
    int type, n_dims, blob;
    int64_t dims[16];
};

struct wpage {
    int64_t id, type_id, start, end, used;
    int blob, n_groups;
    int64_t *gid, *goff;
};

struct wshard {
    char *path;
    int fd;
    struct wpage *pages;
    int n_pages;
};

struct wrow {
    uint8_t *blob, *raw;
    size_t blob_n, raw_n;
};

struct mindrecord_writer {
    struct mindrecord_write_options opt;
    cJSON *schema, *index; /* copies */
    struct wfield *fields; /* sorted by name */
    int n_fields, n_raw, n_blob, compress;
    struct wshard *shards;
    int n_shards, rr;
    struct wrow *pend;
    int64_t n_pend, cap_pend, rows;
    int64_t compression;
};

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const struct wfield *)a)->name, ((const struct wfield *)b)->name);
}

/* ---- schema ---- */

static int parse_fields(struct mindrecord_writer *w) {
    int n = cJSON_GetArraySize(w->schema);
    if (!cJSON_IsObject(w->schema) || n < 1 || n > 100)
        return err_set("MindRecord schema: expected an object of 1 to 100 fields");
    w->fields = xcalloc((size_t)n, sizeof *w->fields);
    int i = 0, has_int_array = 0;
    for (const cJSON *f = w->schema->child; f; f = f->next, i++) {
        struct wfield *wf = &w->fields[i];
        wf->name = f->string;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type"),
                    *sh = cJSON_GetObjectItemCaseSensitive(f, "shape");
        wf->type = -1;
        for (int k = 0; k < 6 && cJSON_IsString(t); k++)
            if (strcmp(t->valuestring, wtype_names[k]) == 0) wf->type = k;
        if (wf->type < 0)
            return err_set(
                "MindRecord schema: field \"%s\": type must be one of int32, int64, float32, float64, "
                "string, bytes",
                wf->name);
        wf->n_dims = -1;
        if (sh) {
            int nd = cJSON_GetArraySize(sh), free_ax = 0;
            if (!cJSON_IsArray(sh) || nd < 1 || nd > 16 || wf->type >= WT_STRING)
                return err_set(
                    "MindRecord schema: field \"%s\": shape must be a list of 1 to 16 dims, numeric types "
                    "only",
                    wf->name);
            int k = 0;
            for (const cJSON *d = sh->child; d; d = d->next, k++) {
                double v = cJSON_IsNumber(d) ? d->valuedouble : 0;
                if (v != floor(v) || (v < 1 && v != -1) || v > 1e9 || (v == -1 && free_ax++))
                    return err_set(
                        "MindRecord schema: field \"%s\": shape dims must be positive, with at most one -1",
                        wf->name);
                wf->dims[k] = (int64_t)v;
            }
            wf->n_dims = nd;
            if (wf->type <= WT_INT64) has_int_array = 1;
        }
        wf->blob = wf->n_dims > 0 || wf->type == WT_BYTES;
        w->n_blob += wf->blob;
        w->n_raw += !wf->blob;
    }
    w->n_fields = n;
    qsort(w->fields, (size_t)n, sizeof *w->fields, cmp_name);
    for (int k = 1; k < n; k++)
        if (strcmp(w->fields[k].name, w->fields[k - 1].name) == 0)
            return err_set("MindRecord schema: field \"%s\" appears twice", w->fields[k].name);
    w->compress = !w->opt.version2 && has_int_array;
    return 0;
}

static const struct wfield *find_field(const struct mindrecord_writer *w, const char *name) {
    for (int i = 0; i < w->n_fields; i++)
        if (strcmp(w->fields[i].name, name) == 0) return &w->fields[i];
    return NULL;
}

/* ---- values ---- */

static int leaf_int(const cJSON *v, int64_t *out) {
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        fabs(v->valuedouble) <= 9007199254740992.0) {
        *out = (int64_t)v->valuedouble;
        return 0;
    }
    if (cJSON_IsRaw(v)) {
        char *end;
        errno = 0;
        long long x = strtoll(v->valuestring, &end, 10);
        if (!errno && end != v->valuestring && !*end) return *out = x, 0;
    }
    return -1;
}

static int leaf_float(const cJSON *v, double *out) {
    if (cJSON_IsNumber(v)) return *out = v->valuedouble, 0;
    if (cJSON_IsRaw(v)) {
        char *end;
        *out = strtod(v->valuestring, &end);
        if (end != v->valuestring && !*end) return 0;
    }
    return -1;
}

/* Collects the leaves of nested lists (depth <= 16) in order. */
static int flatten(const cJSON *v, int depth, const cJSON ***leaves, int64_t *n, int64_t *cap) {
    if (!cJSON_IsArray(v)) {
        if (*n == *cap) *cap = *cap * 2 + 64, *leaves = xrealloc(*leaves, sizeof **leaves * (size_t)*cap);
        (*leaves)[(*n)++] = v;
        return 0;
    }
    if (depth > 16) return -1;
    for (const cJSON *c = v->child; c; c = c->next)
        if (flatten(c, depth + 1, leaves, n, cap)) return -1;
    return 0;
}

static int base64_value(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int base64_decode(const char *s, struct mp_buf *out) {
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = base64_value((unsigned char)*s);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v, bits += 6;
        if (bits >= 8) {
            bits -= 8;
            uint8_t b = (uint8_t)(acc >> bits);
            mp_put(out, &b, 1);
        }
    }
    return 0;
}

static int width_class(int64_t v) {
    if (v >= INT8_MIN && v <= INT8_MAX) return 0;
    if (v >= INT16_MIN && v <= INT16_MAX) return 1;
    if (v >= INT32_MIN && v <= INT32_MAX) return 2;
    return 3;
}

/* Encodes field f of row `row` into raw (uncompressed) and out (compressed when w->compress). */
static int encode_blob_field(const struct mindrecord_writer *w, const struct wfield *f, const cJSON *v,
                             int64_t row, struct mp_buf *raw, struct mp_buf *out) {
    if (f->type == WT_BYTES || f->type == WT_STRING) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "$bytes");
        size_t at = raw->n;
        if (cJSON_IsString(v))
            mp_put(raw, v->valuestring, strlen(v->valuestring));
        else if (!cJSON_IsString(b) || base64_decode(b->valuestring, raw))
            return err_set("row %lld: field \"%s\" (%s): expected {\"$bytes\": base64} or a string",
                           (long long)row, f->name, wtype_names[f->type]);
        mp_put(out, raw->p + at, raw->n - at);
        return 0;
    }
    const cJSON **leaves = NULL;
    int64_t n = 0, cap = 0, known = 1;
    int rc = 0;
    if (!cJSON_IsArray(v) || flatten(v, 0, &leaves, &n, &cap)) {
        free(leaves);
        return err_set("row %lld: field \"%s\": expected a list of numbers (shape of the schema)",
                       (long long)row, f->name);
    }
    int free_ax = 0;
    for (int d = 0; d < f->n_dims; d++)
        if (f->dims[d] == -1)
            free_ax = 1;
        else
            known *= f->dims[d];
    if (free_ax ? (known && n % known) : n != known) {
        free(leaves);
        return err_set("row %lld: field \"%s\": %lld values do not fit its shape", (long long)row, f->name,
                       (long long)n);
    }
    int is_int = f->type <= WT_INT64, compress = w->compress && is_int;
    size_t bm_at = 0;
    if (compress) {
        uint8_t hdr[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        mp_put(out, hdr, 4);
        bm_at = out->n;
        uint8_t zero = 0;
        for (int64_t k = 0; k < (n + 3) / 4; k++)
            mp_put(out, &zero, 1);
    }
    for (int64_t k = 0; k < n && !rc; k++) {
        uint8_t b[8];
        if (is_int) {
            int64_t x;
            if (leaf_int(leaves[k], &x) || (f->type == WT_INT32 && (x < INT32_MIN || x > INT32_MAX))) {
                rc = err_set("row %lld: field \"%s\" (%s): element %lld is not an integer in range",
                             (long long)row, f->name, wtype_names[f->type], (long long)k);
                break;
            }
            int es = f->type == WT_INT32 ? 4 : 8;
            put_le64(b, (uint64_t)x);
            mp_put(raw, b, (size_t)es);
            if (compress) {
                int wc = width_class(x);
                out->p[bm_at + (size_t)(k / 4)] |= (uint8_t)(wc << ((3 - k % 4) * 2));
                mp_put(out, b, (size_t)1 << wc);
            } else
                mp_put(out, b, (size_t)es);
        } else {
            double x;
            if (leaf_float(leaves[k], &x)) {
                rc = err_set("row %lld: field \"%s\" (%s): element %lld is not a number", (long long)row,
                             f->name, wtype_names[f->type], (long long)k);
                break;
            }
            if (f->type == WT_FLOAT32) {
                float y = (float)x;
                memcpy(b, &y, 4);
                mp_put(raw, b, 4), mp_put(out, b, 4);
            } else {
                memcpy(b, &x, 8);
                mp_put(raw, b, 8), mp_put(out, b, 8);
            }
        }
    }
    free(leaves);
    return rc;
}

static void put_be64(struct mp_buf *b, uint64_t v) {
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * (7 - i)));
    mp_put(b, t, 8);
}

static int encode_row(struct mindrecord_writer *w, const cJSON *row, struct wrow *out) {
    int64_t r = w->rows;
    if (!cJSON_IsObject(row)) return err_set("row %lld: a record must be an object", (long long)r);
    for (const cJSON *c = row->child; c; c = c->next)
        if (!find_field(w, c->string))
            return err_set("row %lld: column \"%s\" is not in the MindRecord schema", (long long)r,
                           c->string);
    struct mp_buf raw = {0}, blob = {0}, blob_raw = {0}, seg = {0}, seg_raw = {0};
    if (w->n_raw == 0) { /* kDummyId */
        mp_write_map(&raw, 1);
        mp_write_str(&raw, "id", 2);
        mp_write_int(&raw, 0);
    } else
        mp_write_map(&raw, (uint32_t)w->n_raw);
    int rc = 0;
    for (int i = 0; i < w->n_fields && !rc; i++) {
        const struct wfield *f = &w->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, f->name);
        if (!v) {
            rc = err_set("row %lld: missing field \"%s\"", (long long)r, f->name);
            break;
        }
        if (f->blob) {
            seg.n = seg_raw.n = 0;
            if ((rc = encode_blob_field(w, f, v, r, &seg_raw, &seg))) break;
            if (w->n_blob > 1) put_be64(&blob, seg.n), put_be64(&blob_raw, seg_raw.n);
            mp_put(&blob, seg.p, seg.n);
            mp_put(&blob_raw, seg_raw.p, seg_raw.n);
            continue;
        }
        mp_write_str(&raw, f->name, strlen(f->name));
        int64_t x;
        double d;
        if (cJSON_IsNull(v)) {
            uint8_t nil = 0xc0;
            mp_put(&raw, &nil, 1);
        } else if (f->type <= WT_INT64) {
            if (leaf_int(v, &x) || (f->type == WT_INT32 && (x < INT32_MIN || x > INT32_MAX)))
                rc = err_set("row %lld: field \"%s\" (%s): not an integer in range", (long long)r, f->name,
                             wtype_names[f->type]);
            else
                mp_write_int(&raw, x);
        } else if (f->type <= WT_FLOAT64) {
            if (leaf_float(v, &d))
                rc = err_set("row %lld: field \"%s\": not a number", (long long)r, f->name);
            else
                mp_write_f64(&raw, f->type == WT_FLOAT32 ? (double)(float)d : d);
        } else if (cJSON_IsString(v))
            mp_write_str(&raw, v->valuestring, strlen(v->valuestring));
        else
            rc = err_set("row %lld: field \"%s\": expected a string", (long long)r, f->name);
    }
    if (!rc && w->n_blob == 0) {
        uint8_t z[4] = {0};
        mp_put(&blob, z, 4);
    }
    if (!rc && w->compress) w->compression += (int64_t)blob_raw.n - (int64_t)blob.n;
    free(seg.p), free(seg_raw.p), free(blob_raw.p);
    if (rc) {
        free(raw.p), free(blob.p);
        return -1;
    }
    out->raw = raw.p, out->raw_n = raw.n, out->blob = blob.p, out->blob_n = blob.n;
    if (!out->blob) out->blob = xmalloc(1);
    return 0;
}

/* ---- pages ---- */

static int pwrite_all(struct wshard *s, const void *buf, size_t n, uint64_t off) {
    const uint8_t *p = buf;
    while (n) {
        ssize_t k = pwrite(s->fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return err_set("%s: write error: %s", s->path, strerror(errno));
        p += k, n -= (size_t)k, off += (uint64_t)k;
    }
    return 0;
}

static struct wpage *add_page(struct wshard *s, int64_t id, int blob, int64_t type_id, int64_t start,
                              int64_t end, int64_t used) {
    s->pages = xrealloc(s->pages, sizeof *s->pages * (size_t)(s->n_pages + 1));
    struct wpage *p = &s->pages[s->n_pages++];
    memset(p, 0, sizeof *p);
    p->id = id, p->blob = blob, p->type_id = type_id, p->start = start, p->end = end, p->used = used;
    return p;
}

static void add_group(struct wpage *p, int64_t gid, int64_t off) {
    p->gid = xrealloc(p->gid, sizeof *p->gid * (size_t)(p->n_groups + 1));
    p->goff = xrealloc(p->goff, sizeof *p->goff * (size_t)(p->n_groups + 1));
    p->gid[p->n_groups] = gid, p->goff[p->n_groups++] = off;
}

static int last_page_of(const struct wshard *s, int blob) { /* index, -1 none */
    int best = -1;
    for (int i = 0; i < s->n_pages; i++)
        if (s->pages[i].blob == blob && (best < 0 || s->pages[i].id > s->pages[best].id)) best = i;
    return best;
}

static int64_t last_page_id(const struct wshard *s) {
    int64_t m = -1;
    for (int i = 0; i < s->n_pages; i++)
        if (s->pages[i].id > m) m = s->pages[i].id;
    return m;
}

static int64_t last_gid(const struct wpage *p) { return p->n_groups ? p->gid[p->n_groups - 1] : 0; }
static int64_t last_goff(const struct wpage *p) { return p->n_groups ? p->goff[p->n_groups - 1] : 0; }

static int flush_chunk(const struct mindrecord_writer *w, struct wshard *s, const struct wrow *rows,
                       int64_t a, int64_t b, int blob, uint64_t off) {
    struct mp_buf buf = {0};
    for (int64_t i = a; i < b; i++) {
        uint8_t l[8];
        size_t n = blob ? rows[i].blob_n : rows[i].raw_n;
        put_le64(l, n);
        mp_put(&buf, l, 8);
        mp_put(&buf, blob ? rows[i].blob : rows[i].raw, n);
    }
    int rc = buf.n ? pwrite_all(s, buf.p, buf.n, (uint64_t)w->opt.header_size + off) : 0;
    free(buf.p);
    return rc;
}

static int64_t sum_size(const struct wrow *rows, int64_t a, int64_t b, int blob) {
    int64_t t = 0;
    for (int64_t i = a; i < b; i++)
        t += 8 + (int64_t)(blob ? rows[i].blob_n : rows[i].raw_n);
    return t;
}

/* ShardWriter::WriteByShard for rows[a..b) of one write call. */
static int write_by_shard(struct mindrecord_writer *w, struct wshard *s, const struct wrow *rows, int64_t a,
                          int64_t b) {
    if (a == b) return 0;
    const int64_t ps = w->opt.page_size;
    int lr = last_page_of(s, 0), lb = last_page_of(s, 1);
    /* CutRowGroup */
    int64_t nbb = lb >= 0 ? s->pages[lb].used : 0;
    int64_t nbr = lr >= 0 ? s->pages[lr].used - last_goff(&s->pages[lr]) : 0;
    int64_t(*g)[2] = xmalloc(sizeof *g * (size_t)(b - a + 2));
    int ng = 0;
    int64_t start = a;
    for (int64_t i = a; i < b; i++) {
        int64_t bs = 8 + (int64_t)rows[i].blob_n, rs = 8 + (int64_t)rows[i].raw_n;
        if (nbb == 0 || nbb + bs > ps || nbr + rs > ps) {
            g[ng][0] = start, g[ng][1] = i, ng++;
            start = i, nbb = bs, nbr = rs;
        } else
            nbb += bs, nbr += rs;
    }
    g[ng][0] = start, g[ng][1] = b, ng++;
    int rc = 0;
    /* AppendBlobPage */
    if (g[0][0] != g[0][1]) {
        struct wpage *p = &s->pages[lb];
        rc = flush_chunk(w, s, rows, g[0][0], g[0][1], 1, (uint64_t)(ps * p->id + p->used));
        p->used += sum_size(rows, g[0][0], g[0][1], 1);
        p->end += g[0][1] - g[0][0];
    }
    /* NewBlobPage */
    int64_t pid = last_page_id(s), tid = lb >= 0 ? s->pages[lb].type_id : -1,
            cur = lb >= 0 ? s->pages[lb].end : 0;
    for (int i = 1; i < ng && !rc; i++) {
        rc = flush_chunk(w, s, rows, g[i][0], g[i][1], 1, (uint64_t)(ps * (pid + 1)));
        int64_t cnt = g[i][1] - g[i][0];
        add_page(s, ++pid, 1, ++tid, cur, cur + cnt, sum_size(rows, g[i][0], g[i][1], 1));
        cur += cnt;
    }
    /* ShiftRawPage */
    if (!rc && g[0][0] != g[0][1] && lr >= 0 &&
        sum_size(rows, g[0][0], g[0][1], 0) + s->pages[lr].used > ps) {
        struct wpage *p = &s->pages[lr];
        int64_t off = last_goff(p), shift = p->used - off, old_id = p->id;
        uint8_t *buf = xmalloc((size_t)shift + 1);
        ssize_t got = pread(s->fd, buf, (size_t)shift, (off_t)(w->opt.header_size + ps * p->id + off));
        rc = got == shift ? pwrite_all(s, buf, (size_t)shift,
                                       (uint64_t)(w->opt.header_size + ps * (last_page_id(s) + 1)))
                          : err_set("%s: read back failed: %s", s->path, strerror(errno));
        free(buf);
        if (p->n_groups) p->n_groups--;
        int64_t new_gid = last_gid(p) + 1;
        struct wpage *np = add_page(s, last_page_id(s) + 1, 0, old_id + 1, 0, 0, shift);
        add_group(np, new_gid, 0);
        lr = s->n_pages - 1;
    }
    /* WriteRawPage */
    int64_t lg = lr >= 0 ? last_gid(&s->pages[lr]) : -1;
    for (int i = 0; i < ng && !rc; i++) {
        if (g[i][0] == g[i][1]) continue;
        int64_t rsz = sum_size(rows, g[i][0], g[i][1], 0);
        if (lr < 0 || s->pages[lr].used + rsz > ps) { /* EmptyRawPage */
            int64_t type_id = lr >= 0 ? s->pages[lr].id + 1 : 0;
            add_page(s, last_page_id(s) + 1, 0, type_id, 0, 0, 0);
            lr = s->n_pages - 1;
        }
        struct wpage *p = &s->pages[lr];
        if (i > 0) add_group(p, ++lg, p->used);
        rc = flush_chunk(w, s, rows, g[i][0], g[i][1], 0, (uint64_t)(ps * p->id + p->used));
        p->used += rsz;
    }
    free(g);
    return rc;
}

/* One FileWriter.write_raw_data call with the pending rows. */
static int write_call(struct mindrecord_writer *w) {
    int64_t n = w->n_pend, S = w->n_shards, base = n / S, rem = n % S, at = 0;
    int rc = 0;
    for (int64_t k = 0; k < S && !rc; k++) {
        int extra = ((k - w->rr) % S + S) % S < rem; /* the remainder rotates over the shards */
        int64_t cnt = base + extra;
        rc = write_by_shard(w, &w->shards[k], w->pend, at, at + cnt);
        at += cnt;
    }
    w->rr = (int)((w->rr + rem) % S);
    for (int64_t i = 0; i < n; i++)
        free(w->pend[i].raw), free(w->pend[i].blob);
    w->n_pend = 0;
    return rc;
}

int mindrecord_writer_add(struct mindrecord_writer *w, const cJSON *row) {
    if (w->n_pend == w->cap_pend) {
        w->cap_pend = w->cap_pend * 2 + 16;
        w->pend = xrealloc(w->pend, sizeof *w->pend * (size_t)w->cap_pend);
    }
    if (encode_row(w, row, &w->pend[w->n_pend])) return -1;
    const struct wrow *r = &w->pend[w->n_pend];
    if ((int64_t)r->blob_n + 8 > w->opt.page_size || (int64_t)r->raw_n + 8 > w->opt.page_size) {
        free(r->raw), free(r->blob);
        return err_set("row %lld: %zu bytes do not fit a page of %lld bytes (raise the page size)",
                       (long long)w->rows, r->blob_n + 8, (long long)w->opt.page_size);
    }
    w->n_pend++, w->rows++;
    if (w->opt.rows_per_write > 0 && w->n_pend >= w->opt.rows_per_write) return write_call(w);
    return 0;
}

/* ---- header (nlohmann::json::dump: compact, objects' keys sorted; the top level in
 * ShardHeader::SerializeHeader's order) ---- */

static void js(struct mp_buf *b, const char *s) { mp_put(b, s, strlen(s)); }

static void jstr(struct mp_buf *b, const char *s) {
    js(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char t[8];
        if (c == '"')
            js(b, "\\\"");
        else if (c == '\\')
            js(b, "\\\\");
        else if (c == '\b')
            js(b, "\\b");
        else if (c == '\f')
            js(b, "\\f");
        else if (c == '\n')
            js(b, "\\n");
        else if (c == '\r')
            js(b, "\\r");
        else if (c == '\t')
            js(b, "\\t");
        else if (c < 0x20)
            snprintf(t, sizeof t, "\\u%04x", c), js(b, t);
        else
            mp_put(b, s, 1);
    }
    js(b, "\"");
}

static void jint(struct mp_buf *b, int64_t v) {
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)v);
    js(b, t);
}

static void header_json(const struct mindrecord_writer *w, int k, struct mp_buf *b) {
    const struct wshard *s = &w->shards[k];
    js(b, "{\"header_size\":"), jint(b, w->opt.header_size);
    js(b, ",\"index_fields\":");
    if (cJSON_GetArraySize(w->index) == 0)
        js(b, "null");
    else {
        js(b, "[");
        for (const cJSON *f = w->index->child; f; f = f->next) {
            if (f != w->index->child) js(b, ",");
            js(b, "{\"index_field\":"), jstr(b, f->valuestring), js(b, ",\"schema_id\":0}");
        }
        js(b, "]");
    }
    js(b, ",\"page\":[");
    for (int i = 0; i < s->n_pages; i++) {
        const struct wpage *p = &s->pages[i];
        if (i) js(b, ",");
        js(b, "{\"end_row_id\":"), jint(b, p->end), js(b, ",\"page_id\":"), jint(b, p->id);
        js(b, ",\"page_size\":"), jint(b, p->used), js(b, ",\"page_type\":\"");
        js(b, p->blob ? "BLOB_DATA" : "RAW_DATA"), js(b, "\",\"page_type_id\":"), jint(b, p->type_id);
        js(b, ",\"row_group_ids\":[");
        if (!p->n_groups) js(b, "{\"id\":0,\"offset\":0}");
        for (int g = 0; g < p->n_groups; g++) {
            if (g) js(b, ",");
            js(b, "{\"id\":"), jint(b, p->gid[g]), js(b, ",\"offset\":"), jint(b, p->goff[g]), js(b, "}");
        }
        js(b, "],\"shard_id\":"), jint(b, k), js(b, ",\"start_row_id\":"), jint(b, p->start), js(b, "}");
    }
    js(b, "],\"page_size\":"), jint(b, w->opt.page_size);
    if (!w->opt.version2) js(b, ",\"compression_size\":"), jint(b, w->compression > 0 ? w->compression : 0);
    js(b, ",\"schema\":[{\"blob_fields\":[");
    int first = 1;
    for (int i = 0; i < w->n_fields; i++)
        if (w->fields[i].blob) {
            if (!first) js(b, ",");
            jstr(b, w->fields[i].name), first = 0;
        }
    js(b, "],\"desc\":"), jstr(b, w->opt.desc ? w->opt.desc : ""), js(b, ",\"schema\":{");
    for (int i = 0; i < w->n_fields; i++) {
        const struct wfield *f = &w->fields[i];
        if (i) js(b, ",");
        jstr(b, f->name), js(b, ":{");
        if (f->n_dims > 0) {
            js(b, "\"shape\":[");
            for (int d = 0; d < f->n_dims; d++) {
                if (d) js(b, ",");
                jint(b, f->dims[d]);
            }
            js(b, "],");
        }
        js(b, "\"type\":"), jstr(b, wtype_names[f->type]), js(b, "}");
    }
    js(b, "}}],\"shard_addresses\":[");
    for (int i = 0; i < w->n_shards; i++) {
        const char *slash = strrchr(w->shards[i].path, '/');
        if (i) js(b, ",");
        jstr(b, slash ? slash + 1 : w->shards[i].path);
    }
    js(b, "],\"shard_id\":"), jint(b, k), js(b, ",\"statistics\":null,\"version\":\"");
    js(b, w->opt.version2 ? "2.0" : "3.0"), js(b, "\"}");
}

/* ---- the .db index ---- */

static int sql_fail(sqlite3 *db, const char *path, const char *what) {
    err_set("%s: SQLite %s: %s", path, what, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return -1;
}

static int write_db(const struct mindrecord_writer *w, const struct wshard *s) {
    char *path = xasprintf("%s.db", s->path);
    unlink(path);
    sqlite3 *db = NULL;
    struct mp_buf sql = {0};
    int rc = 0, n_idx = cJSON_GetArraySize(w->index);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        rc = sql_fail(db, path, "open");
        goto out;
    }
    js(&sql, "CREATE TABLE SHARD_NAME(NAME TEXT NOT NULL);CREATE TABLE INDEXES(  ROW_ID               INT  "
             "NOT NULL, "
             "PAGE_ID_RAW          INT  NOT NULL, PAGE_OFFSET_RAW      INT  NOT NULL, PAGE_OFFSET_RAW_END  "
             "INT  NOT "
             "NULL, ROW_GROUP_ID         INT  NOT NULL, PAGE_ID_BLOB         INT  NOT NULL, PAGE_OFFSET_BLOB "
             "    INT  "
             "NOT NULL, PAGE_OFFSET_BLOB_END INT  NOT NULL");
    int k = 0;
    for (const cJSON *f = w->index->child; f; f = f->next, k++) {
        const struct wfield *wf = find_field(w, f->valuestring);
        char t[40];
        snprintf(t, sizeof t, ",INC_%d INT, ", k);
        js(&sql, t);
        for (const char *c = f->valuestring; *c; c++)
            mp_put(&sql, *c == '-' || *c == '.' ? "_" : c, 1);
        js(&sql, wf->type == WT_STRING ? "_0 TEXT" : wf->type <= WT_INT64 ? "_0 INTEGER" : "_0 REAL");
    }
    js(&sql, ", PRIMARY KEY(ROW_ID");
    for (k = 0; k < n_idx; k++) {
        char t[24];
        snprintf(t, sizeof t, ",INC_%d", k);
        js(&sql, t);
    }
    js(&sql, "));");
    mp_put(&sql, "", 1);
    if (sqlite3_exec(db, (const char *)sql.p, NULL, NULL, NULL) != SQLITE_OK) {
        rc = sql_fail(db, path, "create tables");
        goto out;
    }
    sqlite3_stmt *st = NULL;
    const char *slash = strrchr(s->path, '/');
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO SHARD_NAME (NAME) VALUES (?)", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, slash ? slash + 1 : s->path, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        sqlite3_finalize(st);
        rc = sql_fail(db, path, "insert");
        goto out;
    }
    sqlite3_finalize(st);
    sql.n = 0;
    js(&sql, "INSERT INTO INDEXES VALUES (?,?,?,?,?,?,?,?");
    for (k = 0; k < n_idx; k++)
        js(&sql, ",0,?");
    js(&sql, ")");
    mp_put(&sql, "", 1);
    if (sqlite3_prepare_v2(db, (const char *)sql.p, -1, &st, NULL) != SQLITE_OK) {
        rc = sql_fail(db, path, "prepare");
        goto out;
    }
    /* walk the pages as a reader does: raw page, row group, rows of its blob page */
    const int64_t hs = w->opt.header_size, ps = w->opt.page_size;
    for (int i = 0; i < s->n_pages && !rc; i++) {
        const struct wpage *rp = &s->pages[i];
        if (rp->blob) continue;
        for (int gi = 0; gi < rp->n_groups && !rc; gi++) {
            const struct wpage *bp = NULL;
            for (int j = 0; j < s->n_pages; j++)
                if (s->pages[j].blob && s->pages[j].type_id == rp->gid[gi]) bp = &s->pages[j];
            if (!bp) continue;
            int64_t ro = rp->goff[gi], bo = 0;
            for (int64_t row = bp->start; row < bp->end && !rc; row++) {
                uint8_t l[8];
                uint64_t rn = 0, bn = 0;
                if (pread(s->fd, l, 8, (off_t)(hs + ps * rp->id + ro)) != 8)
                    rc = err_set("%s: read back failed", s->path);
                for (int q = 7; q >= 0; q--)
                    rn = rn << 8 | l[q];
                if (!rc && pread(s->fd, l, 8, (off_t)(hs + ps * bp->id + bo)) != 8)
                    rc = err_set("%s: read back failed", s->path);
                for (int q = 7; q >= 0; q--)
                    bn = bn << 8 | l[q];
                if (rc) break;
                int64_t vals[8] = {row,         rp->id, ro, ro + 8 + (int64_t)rn,
                                   rp->gid[gi], bp->id, bo, bo + 8 + (int64_t)bn};
                sqlite3_reset(st);
                for (int q = 0; q < 8; q++)
                    sqlite3_bind_int64(st, q + 1, vals[q]);
                if (n_idx) { /* the index fields' values from the raw record */
                    uint8_t *m = xmalloc(rn + 1);
                    if (pread(s->fd, m, rn, (off_t)(hs + ps * rp->id + ro + 8)) != (ssize_t)rn)
                        rc = err_set("%s: read back failed", s->path);
                    size_t pos = 0;
                    struct mp_value mv, key, val;
                    if (!rc && !mp_read(m, rn, &pos, &mv))
                        for (uint32_t e = 0; e < mv.len; e++) {
                            if (mp_read(m, rn, &pos, &key) || mp_read(m, rn, &pos, &val)) break;
                            k = 0;
                            for (const cJSON *f = w->index->child; f; f = f->next, k++) {
                                if (strlen(f->valuestring) != key.len ||
                                    memcmp(f->valuestring, key.s, key.len))
                                    continue;
                                if (val.type == MP_INT)
                                    sqlite3_bind_int64(st, 9 + k, val.i);
                                else if (val.type == MP_UINT)
                                    sqlite3_bind_int64(st, 9 + k, (sqlite3_int64)val.u);
                                else if (val.type == MP_FLOAT)
                                    sqlite3_bind_double(st, 9 + k, val.f);
                                else if (val.type == MP_STR)
                                    sqlite3_bind_text(st, 9 + k, (const char *)val.s, (int)val.len,
                                                      SQLITE_TRANSIENT);
                                else
                                    sqlite3_bind_null(st, 9 + k);
                            }
                        }
                    free(m);
                }
                if (!rc && sqlite3_step(st) != SQLITE_DONE) {
                    sqlite3_finalize(st);
                    rc = sql_fail(db, path, "insert");
                    db = NULL;
                }
                ro += 8 + (int64_t)rn, bo += 8 + (int64_t)bn;
            }
        }
    }
    if (db) {
        sqlite3_finalize(st);
        if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            rc = sql_fail(db, path, "commit"), db = NULL;
        if (db && sqlite3_close(db) != SQLITE_OK && !rc) rc = err_set("%s: SQLite close failed", path);
    }
out:
    free(sql.p);
    free(path);
    return rc;
}

/* ---- open / close ---- */

static void writer_free(struct mindrecord_writer *w) {
    if (!w) return;
    for (int k = 0; k < w->n_shards; k++) {
        struct wshard *s = &w->shards[k];
        if (s->fd >= 0) close(s->fd);
        for (int i = 0; i < s->n_pages; i++)
            free(s->pages[i].gid), free(s->pages[i].goff);
        free(s->pages);
        free(s->path);
    }
    free(w->shards);
    for (int64_t i = 0; i < w->n_pend; i++)
        free(w->pend[i].raw), free(w->pend[i].blob);
    free(w->pend);
    free(w->fields);
    cJSON_Delete(w->schema);
    cJSON_Delete(w->index);
    free(w);
}

void mindrecord_writer_abort(struct mindrecord_writer *w) { writer_free(w); }

int mindrecord_writer_open(struct mindrecord_writer **out, const char *path, const cJSON *schema,
                           const cJSON *index_fields, const struct mindrecord_write_options *opt) {
    *out = NULL;
    struct mindrecord_writer *w = xcalloc(1, sizeof *w);
    w->opt = *opt;
    if (!w->opt.shard_num) w->opt.shard_num = 1;
    if (!w->opt.header_size) w->opt.header_size = 1 << 24;
    if (!w->opt.page_size) w->opt.page_size = 1 << 25;
    if (!w->opt.rows_per_write) w->opt.rows_per_write = 1;
    w->schema = cJSON_Duplicate(schema, 1);
    int rc = 0;
    if (w->opt.shard_num < 1 || w->opt.shard_num > 1000)
        rc = err_set("MindRecord writer: shard count %d outside 1..1000", w->opt.shard_num);
    else if (w->opt.header_size < (1 << 14) || w->opt.header_size > (1 << 27) || w->opt.header_size % 4)
        rc = err_set("MindRecord writer: header size %lld outside 16 KiB..128 MiB or not a multiple of 4",
                     (long long)w->opt.header_size);
    else if (w->opt.page_size < (1 << 15) || w->opt.page_size > (1 << 28) || w->opt.page_size % 4)
        rc = err_set("MindRecord writer: page size %lld outside 32 KiB..256 MiB or not a multiple of 4",
                     (long long)w->opt.page_size);
    if (!rc) rc = parse_fields(w);
    if (!rc) { /* index fields: given, none, or every scalar field */
        w->index = cJSON_CreateArray();
        if (index_fields && !cJSON_IsNull(index_fields)) {
            for (const cJSON *f = index_fields->child; f && !rc; f = f->next) {
                const struct wfield *wf = cJSON_IsString(f) ? find_field(w, f->valuestring) : NULL;
                if (!wf || wf->blob || wf->type == WT_BYTES)
                    rc = err_set("MindRecord writer: index field %s is not a scalar field of the schema",
                                 cJSON_IsString(f) ? f->valuestring : "(not a string)");
                else
                    cJSON_AddItemToArray(w->index, cJSON_CreateString(f->valuestring));
            }
        } else if (!index_fields)
            for (int i = 0; i < w->n_fields; i++)
                if (!w->fields[i].blob) cJSON_AddItemToArray(w->index, cJSON_CreateString(w->fields[i].name));
    }
    if (!rc) {
        w->shards = xcalloc((size_t)w->opt.shard_num, sizeof *w->shards);
        int width = snprintf(NULL, 0, "%d", w->opt.shard_num - 1);
        for (int k = 0; k < w->opt.shard_num && !rc; k++) {
            struct wshard *s = &w->shards[w->n_shards++];
            s->path = w->opt.shard_num == 1 ? xstrdup(path) : xasprintf("%s%0*d", path, width, k);
            s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (s->fd < 0) rc = err_set("%s: cannot create: %s", s->path, strerror(errno));
        }
    }
    if (rc) {
        writer_free(w);
        return -1;
    }
    *out = w;
    return 0;
}

int mindrecord_writer_close(struct mindrecord_writer *w) {
    int rc = w->n_pend ? write_call(w) : 0;
    for (int k = 0; k < w->n_shards && !rc; k++) {
        struct wshard *s = &w->shards[k];
        struct mp_buf h = {0};
        uint8_t l[8] = {0};
        mp_put(&h, l, 8);
        header_json(w, k, &h);
        put_le64(h.p, h.n - 8);
        if ((int64_t)h.n > w->opt.header_size)
            rc = err_set("%s: the header (%zu bytes) does not fit header_size %lld: raise the header size",
                         s->path, h.n, (long long)w->opt.header_size);
        else
            rc = pwrite_all(s, h.p, h.n, 0);
        free(h.p);
        if (!rc && !w->opt.no_db) rc = write_db(w, s);
        if (!rc && fsync(s->fd)) rc = err_set("%s: fsync: %s", s->path, strerror(errno));
    }
    writer_free(w);
    return rc;
}
