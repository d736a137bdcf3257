/* mindrecord: see mindrecord.h. The byte layout (MindSpore mindrecord/ C++ sources):
 * [u64 LE header length][header JSON] ... page k at header_size + page_size*k. A raw page holds
 * [u64 LE len][msgpack map of the scalar fields] per row, a blob page [u64 LE len][blob] per row;
 * the raw page's row_group_ids say where the rows of blob page (page_type_id == group) start.
 * A blob is one field's bytes, or for several fields [u64 BE len][bytes] each, in blob_fields
 * order; in 3.0 int32/int64 arrays are compressed: [u32 BE n][2-bit widths][LE values]. */
#include "data/mindrecord.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "core/nulstr.h"
#include "data/msgpack.h"
#include "data/utf8_check.h"

#define MR_MAX_HEADER (1ull << 27) /* kMaxHeaderSize, 128 MiB */
#define MR_MAX_PAGE (1ull << 30)   /* MindSpore allows 256 MiB; be lenient but bounded */
#define MR_MAX_FIELDS 100          /* kMaxFieldCount */
#define MR_MAX_SHARDS 4096         /* kMaxFileCount */
#define MR_MAX_DIMS 16

enum mr_type { MR_INT32, MR_INT64, MR_FLOAT32, MR_FLOAT64, MR_STRING, MR_BYTES };
static const char *type_names[] = {"int32", "int64", "float32", "float64", "string", "bytes"};

struct mr_field {
    const char *name; /* inside the header JSON */
    enum mr_type type;
    int n_dims; /* -1: no shape */
    int64_t dims[MR_MAX_DIMS];
    int blob; /* a blob field */
};

struct mr_page {
    int64_t id, type_id, start, end, used;
    int blob;
    int n_groups;
    int64_t *gid, *goff;
};

struct mr_shard {
    char *path;
    int fd;
    const uint8_t *mem; /* in-memory file (check_buffer), else fd */
    uint64_t size;
    cJSON *header;
    uint64_t hs, ps;
    int compress; /* 3.0 and an int array field: int blob segments are compressed */
    struct mr_field *fields;
    int n_fields;
    int *blob_order; /* field index of blob_fields[k] */
    int n_blob;
    int *sorted; /* field indices in sorted name order */
    struct mr_page *pages;
    int n_pages;
    int *blob_by_type; /* page indices of blob pages sorted by type_id */
    int n_blob_pages;
    /* iteration */
    int raw_i, group_i;          /* the next (raw page, row group) unit */
    int raw_loaded, blob_loaded; /* page indices of the buffers, -1 none */
    uint8_t *raw, *blobp;
    uint64_t r, b;        /* offsets in the buffers */
    int64_t row, row_end; /* row ids of the current group */
    cJSON **slots;
};

struct mindrecord {
    char **files;
    int n_files, i_file;
    int alone; /* read each file alone (folder, check), not its group */
    struct mr_shard *sh;
    cJSON *first_header;
    int64_t rows;
};

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t be_n(const uint8_t *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

static int shard_read(struct mr_shard *s, uint64_t off, uint64_t len, void *dst) {
    if (off > s->size || len > s->size - off)
        return err_set("%s: file truncated: %llu bytes needed at offset %llu, file has %llu", s->path,
                       (unsigned long long)len, (unsigned long long)off, (unsigned long long)s->size);
    if (s->mem) {
        memcpy(dst, s->mem + off, len);
        return 0;
    }
    uint8_t *d = dst;
    while (len) {
        ssize_t got = pread(s->fd, d, len > (1u << 30) ? (1u << 30) : len, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return err_set("%s: read error at offset %llu: %s", s->path, (unsigned long long)off,
                           got < 0 ? strerror(errno) : "unexpected end of file");
        d += got, off += (uint64_t)got, len -= (uint64_t)got;
    }
    return 0;
}

/* ---- Python repr of floats, base64 ---- */

void mindrecord_float_repr(double d, char *buf) {
    if (isnan(d)) {
        strcpy(buf, "NaN");
        return;
    }
    if (isinf(d)) {
        strcpy(buf, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp: [-]D[.DDD]e(+|-)XX */
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *q = tmp + neg;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    digits[nd] = 0;
    int e = atoi(q + 1);
    char *o = buf;
    if (neg) *o++ = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                *o++ = i < nd ? digits[i] : '0';
            *o++ = '.';
            if (nd > e + 1)
                for (int i = e + 1; i < nd; i++)
                    *o++ = digits[i];
            else
                *o++ = '0';
        } else {
            *o++ = '0', *o++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *o++ = '0';
            for (int i = 0; i < nd; i++)
                *o++ = digits[i];
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            for (int i = 1; i < nd; i++)
                *o++ = digits[i];
        }
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

static char *base64(const uint8_t *s, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *o++ = tab[v >> 18 & 63], *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static cJSON *int_item(int64_t v) {
    if (v >= -(1ll << 53) && v <= (1ll << 53)) return cJSON_CreateNumber((double)v);
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)v);
    return cJSON_CreateRaw(t);
}

static cJSON *float_item(double d) {
    char t[40];
    mindrecord_float_repr(d, t);
    return cJSON_CreateRaw(t);
}

/* ---- header ---- */

static int json_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, const char *path,
                    const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)lo ||
        v->valuedouble > (double)hi)
        return err_set("%s: header%s: \"%s\" must be an integer in [%lld, %lld]", path, where, key,
                       (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int parse_type(const char *s, enum mr_type *t) {
    for (int i = 0; i < 6; i++)
        if (strcmp(s, type_names[i]) == 0) return *t = (enum mr_type)i, 0;
    return -1;
}

static int cmp_field_idx_ctx(const void *a, const void *b, void *ctx) {
    const struct mr_field *f = ctx;
    return strcmp(f[*(const int *)a].name, f[*(const int *)b].name);
}

static int parse_schema(struct mr_shard *s, int v3) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(s->header, "schema");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 1)
        return err_set("%s: header: \"schema\" must be an array of exactly one schema object", s->path);
    const cJSON *sc = arr->child, *fields = cJSON_GetObjectItemCaseSensitive(sc, "schema"),
                *blobs = cJSON_GetObjectItemCaseSensitive(sc, "blob_fields");
    if (!cJSON_IsObject(fields))
        return err_set("%s: header: schema has no \"schema\" object of fields", s->path);
    int n = cJSON_GetArraySize(fields);
    if (n < 1 || n > MR_MAX_FIELDS)
        return err_set("%s: header: schema has %d fields (1 to %d allowed)", s->path, n, MR_MAX_FIELDS);
    s->fields = xcalloc((size_t)n, sizeof *s->fields);
    s->n_fields = n;
    int i = 0, has_int_array = 0;
    for (const cJSON *f = fields->child; f; f = f->next, i++) {
        struct mr_field *mf = &s->fields[i];
        mf->name = f->string;
        for (int k = 0; k < i; k++)
            if (strcmp(s->fields[k].name, mf->name) == 0)
                return err_set("%s: header: schema field \"%s\" appears twice", s->path, mf->name);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type"),
                    *sh = cJSON_GetObjectItemCaseSensitive(f, "shape");
        if (!cJSON_IsString(t) || parse_type(t->valuestring, &mf->type))
            return err_set(
                "%s: header: schema field \"%s\": unknown type %s%s%s (int32, int64, float32, float64, "
                "string, bytes)",
                s->path, mf->name, cJSON_IsString(t) ? "\"" : "",
                cJSON_IsString(t) ? t->valuestring : "(missing)", cJSON_IsString(t) ? "\"" : "");
        mf->n_dims = -1;
        if (sh) {
            if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > MR_MAX_DIMS || mf->type == MR_STRING ||
                mf->type == MR_BYTES)
                return err_set(
                    "%s: header: schema field \"%s\": bad \"shape\" (a list of at most %d dims, numeric "
                    "types only)",
                    s->path, mf->name, MR_MAX_DIMS);
            int k = 0, n_free = 0;
            for (const cJSON *d = sh->child; d; d = d->next, k++) {
                double v = cJSON_IsNumber(d) ? d->valuedouble : 0;
                if (v != floor(v) || (v < 1 && v != -1) || v > 1e12)
                    return err_set(
                        "%s: header: schema field \"%s\": shape dim %d must be -1 or a positive integer",
                        s->path, mf->name, k);
                mf->dims[k] = (int64_t)v;
                n_free += v == -1;
            }
            if (n_free > 1)
                return err_set("%s: header: schema field \"%s\": shape has more than one -1", s->path,
                               mf->name);
            mf->n_dims = k;
            if (mf->type == MR_INT32 || mf->type == MR_INT64) has_int_array = 1;
        }
    }
    s->compress = v3 && has_int_array;
    if (blobs && !cJSON_IsNull(blobs) && !cJSON_IsArray(blobs))
        return err_set("%s: header: \"blob_fields\" must be a list", s->path);
    int nb = blobs ? cJSON_GetArraySize(blobs) : 0;
    if (nb > n) return err_set("%s: header: more blob_fields than fields", s->path);
    s->blob_order = xcalloc((size_t)nb + 1, sizeof *s->blob_order);
    for (const cJSON *b = blobs ? blobs->child : NULL; b; b = b->next) {
        int k = -1;
        for (int j = 0; cJSON_IsString(b) && j < n; j++)
            if (strcmp(s->fields[j].name, b->valuestring) == 0) k = j;
        if (k < 0 || s->fields[k].blob)
            return err_set("%s: header: blob field %s is not a schema field (or listed twice)", s->path,
                           cJSON_IsString(b) ? b->valuestring : "(not a string)");
        if (s->fields[k].n_dims < 0 && s->fields[k].type != MR_BYTES && s->fields[k].type != MR_STRING)
            return err_set("%s: header: blob field %s has no shape", s->path, b->valuestring);
        s->fields[k].blob = 1;
        s->blob_order[s->n_blob++] = k;
    }
    for (int j = 0; j < n; j++)
        if (!s->fields[j].blob && (s->fields[j].n_dims >= 0 || s->fields[j].type == MR_BYTES))
            return err_set("%s: header: field \"%s\" has a shape or is bytes but is not in blob_fields",
                           s->path, s->fields[j].name);
    s->sorted = xcalloc((size_t)n, sizeof *s->sorted);
    for (int j = 0; j < n; j++)
        s->sorted[j] = j;
    qsort_r(s->sorted, (size_t)n, sizeof *s->sorted, cmp_field_idx_ctx, s->fields);
    s->slots = xcalloc((size_t)n, sizeof *s->slots);
    return 0;
}

static int cmp_blob_page(const void *a, const void *b, void *ctx) {
    const struct mr_page *p = ctx;
    int64_t x = p[*(const int *)a].type_id, y = p[*(const int *)b].type_id;
    return x < y ? -1 : x > y;
}

static int parse_pages(struct mr_shard *s) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(s->header, "page");
    if (!cJSON_IsArray(arr)) return err_set("%s: header: \"page\" must be a list", s->path);
    int n = cJSON_GetArraySize(arr);
    s->pages = xcalloc((size_t)n + 1, sizeof *s->pages);
    s->blob_by_type = xcalloc((size_t)n + 1, sizeof *s->blob_by_type);
    uint64_t max_id = s->size > s->hs ? (s->size - s->hs) / s->ps : 0;
    int i = 0;
    for (const cJSON *pg = arr->child; pg; pg = pg->next, i++) {
        struct mr_page *p = &s->pages[i];
        s->n_pages = i + 1;
        char where[48];
        snprintf(where, sizeof where, " page entry %d", i);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(pg, "page_type");
        if (!cJSON_IsString(t) || (strcmp(t->valuestring, "BLOB_DATA") && strcmp(t->valuestring, "RAW_DATA")))
            return err_set("%s: header%s: page_type must be \"BLOB_DATA\" or \"RAW_DATA\"", s->path, where);
        p->blob = t->valuestring[0] == 'B';
        if (json_int(pg, "page_id", 0, INT64_MAX, &p->id, s->path, where) ||
            json_int(pg, "page_type_id", 0, INT64_MAX, &p->type_id, s->path, where) ||
            json_int(pg, "start_row_id", 0, INT64_MAX, &p->start, s->path, where) ||
            json_int(pg, "end_row_id", p->start, INT64_MAX, &p->end, s->path, where) ||
            json_int(pg, "page_size", 0, (int64_t)s->ps, &p->used, s->path, where))
            return -1;
        if ((uint64_t)p->id > max_id || s->hs + s->ps * (uint64_t)p->id + (uint64_t)p->used > s->size)
            return err_set(
                "%s: page %lld (%s, %lld bytes) lies past the end of the file (%llu bytes): truncated?",
                s->path, (long long)p->id, t->valuestring, (long long)p->used, (unsigned long long)s->size);
        if (p->blob) {
            s->blob_by_type[s->n_blob_pages++] = i;
            continue;
        }
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(pg, "row_group_ids");
        if (!cJSON_IsArray(g)) return err_set("%s: header%s: row_group_ids must be a list", s->path, where);
        int ng = cJSON_GetArraySize(g);
        p->gid = xcalloc((size_t)ng + 1, sizeof *p->gid);
        p->goff = xcalloc((size_t)ng + 1, sizeof *p->goff);
        for (const cJSON *e = g->child; e; e = e->next, p->n_groups++)
            if (json_int(e, "id", 0, INT64_MAX, &p->gid[p->n_groups], s->path, where) ||
                json_int(e, "offset", 0, p->used, &p->goff[p->n_groups], s->path, where))
                return -1;
    }
    qsort_r(s->blob_by_type, (size_t)s->n_blob_pages, sizeof(int), cmp_blob_page, s->pages);
    for (int k = 1; k < s->n_blob_pages; k++)
        if (s->pages[s->blob_by_type[k]].type_id == s->pages[s->blob_by_type[k - 1]].type_id)
            return err_set("%s: header: two BLOB_DATA pages claim row group %lld", s->path,
                           (long long)s->pages[s->blob_by_type[k]].type_id);
    return 0;
}

static void shard_free(struct mr_shard *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    for (int i = 0; i < s->n_pages; i++)
        free(s->pages[i].gid), free(s->pages[i].goff);
    free(s->pages);
    free(s->blob_by_type);
    free(s->fields);
    free(s->blob_order);
    free(s->sorted);
    if (s->slots)
        for (int i = 0; i < s->n_fields; i++)
            cJSON_Delete(s->slots[i]);
    free(s->slots);
    free(s->raw);
    free(s->blobp);
    cJSON_Delete(s->header);
    free(s->path);
    free(s);
}

static int is_encrypted(struct mr_shard *s) {
    uint8_t tail[7];
    if (s->size < 7 || shard_read(s, s->size - 7, 7, tail)) return 0;
    return memcmp(tail, "ENCRYPT", 7) == 0;
}

/* Opens and checks one data file (mem != NULL: from memory). */
static int shard_open(struct mr_shard **out, const char *path, const uint8_t *mem, size_t mem_n) {
    *out = NULL;
    struct mr_shard *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    s->fd = -1;
    s->raw_loaded = s->blob_loaded = -1;
    if (mem) {
        s->mem = mem, s->size = mem_n;
    } else {
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (s->fd < 0 || fstat(s->fd, &st)) {
            err_set("%s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
            err_set("%s: not a regular file", path);
            goto fail;
        }
        s->size = (uint64_t)st.st_size;
    }
    if (is_encrypted(s)) {
        err_set("%s: encrypted MindRecord file (MindSpore set_enc_key, AES-GCM): csft cannot read it; "
                "decrypt it with MindSpore first",
                path);
        goto fail;
    }
    uint8_t l8[8];
    if (s->size < 8) {
        err_set("%s: file truncated: %llu bytes, not a MindRecord data file", path,
                (unsigned long long)s->size);
        goto fail;
    }
    if (shard_read(s, 0, 8, l8)) goto fail;
    uint64_t L = le64(l8);
    if (L < 2 || L > MR_MAX_HEADER || L > s->size - 8) {
        err_set("%s: header length %llu is impossible (file %llu bytes, limit 128 MiB): not a MindRecord "
                "data file "
                "or truncated",
                path, (unsigned long long)L, (unsigned long long)s->size);
        goto fail;
    }
    char *text = xmalloc(L + 1);
    if (shard_read(s, 8, L, text)) {
        free(text);
        goto fail;
    }
    text[L] = 0;
    s->header = cJSON_ParseWithLength(text, L);
    free(text);
    if (!cJSON_IsObject(s->header)) {
        err_set("%s: header is not a JSON object: not a MindRecord data file, or damaged", path);
        goto fail;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(s->header, "version");
    if (!cJSON_IsString(ver) || (strcmp(ver->valuestring, "2.0") && strcmp(ver->valuestring, "3.0"))) {
        err_set("%s: header: version %s%s%s is not supported (2.0 and 3.0 are)", path,
                cJSON_IsString(ver) ? "\"" : "", cJSON_IsString(ver) ? ver->valuestring : "(missing)",
                cJSON_IsString(ver) ? "\"" : "");
        goto fail;
    }
    int64_t hs, ps;
    if (json_int(s->header, "header_size", (int64_t)L + 8, (int64_t)MR_MAX_HEADER, &hs, path, "") ||
        json_int(s->header, "page_size", 32, (int64_t)MR_MAX_PAGE, &ps, path, ""))
        goto fail;
    s->hs = (uint64_t)hs, s->ps = (uint64_t)ps;
    if (parse_schema(s, strcmp(ver->valuestring, "3.0") == 0) || parse_pages(s)) goto fail;
    *out = s;
    return 0;
fail:
    shard_free(s);
    return -1;
}

/* ---- rows ---- */

static const char *page_kind(const struct mr_page *p) { return p->blob ? "BLOB_DATA" : "RAW_DATA"; }

static int row_err(const struct mr_shard *s, const struct mr_page *p, int64_t row, const char *what) {
    return err_set("%s: page %lld (%s), row %lld: %s", s->path, (long long)p->id, page_kind(p),
                   (long long)row, what);
}

/* Builds the nested lists of shape dims[0..nd) from vals (int64 or double by is_float). */
static cJSON *build_nested(const struct mr_field *f, const int64_t *dims, int nd, const int64_t *iv,
                           const double *fv, int64_t *k) {
    if (nd == 0) {
        int64_t i = (*k)++;
        if (fv) return f->type == MR_FLOAT32 ? float_item((double)(float)fv[i]) : float_item(fv[i]);
        return int_item(iv[i]);
    }
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < dims[0]; i++)
        cJSON_AddItemToArray(a, build_nested(f, dims + 1, nd - 1, iv, fv, k));
    return a;
}

/* Decodes one blob segment s[0..len) of field f. Returns NULL with an error message in why. */
static cJSON *decode_segment(const struct mr_shard *sh, const struct mr_field *f, const uint8_t *s,
                             uint64_t len, char *why, size_t why_n) {
    if (f->type == MR_BYTES || f->type == MR_STRING) {
        if (f->type == MR_BYTES) {
            char *b = base64(s, len);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "$bytes", cJSON_CreateString(b));
            free(b);
            return o;
        }
        if (utf8_check((const char *)s, len) != len) {
            snprintf(why, why_n, "field \"%s\": string is not valid UTF-8", f->name);
            return NULL;
        }
        return nul_create_string((const char *)s, len); /* NULs carried as C0 80 (core/nulstr.h) */
    }
    int is_int = f->type == MR_INT32 || f->type == MR_INT64;
    int64_t n;
    int64_t *iv = NULL;
    double *fv = NULL;
    if (is_int && sh->compress) {
        if (len < 4) {
            snprintf(why, why_n, "field \"%s\": compressed array of %llu bytes (needs at least 4)", f->name,
                     (unsigned long long)len);
            return NULL;
        }
        n = (int64_t)be_n(s, 4);
        uint64_t nbm = ((uint64_t)n + 3) / 4;
        if (nbm + (uint64_t)n > len - 4) {
            snprintf(why, why_n, "field \"%s\": compressed array announces %lld elements in %llu bytes",
                     f->name, (long long)n, (unsigned long long)len);
            return NULL;
        }
        iv = xmalloc(sizeof *iv * (size_t)(n + 1));
        const uint8_t *bm = s + 4, *v = s + 4 + nbm, *end = s + len;
        for (int64_t k = 0; k < n; k++) {
            int w = bm[k / 4] >> ((3 - k % 4) * 2) & 3, nb = 1 << w;
            if (nb > end - v) {
                snprintf(why, why_n, "field \"%s\": compressed array element %lld runs past its %llu bytes",
                         f->name, (long long)k, (unsigned long long)len);
                free(iv);
                return NULL;
            }
            uint64_t u = 0;
            for (int j = nb - 1; j >= 0; j--)
                u = u << 8 | v[j];
            if (nb < 8 && (u >> (8 * nb - 1))) u |= ~0ull << (8 * nb);
            iv[k] = (int64_t)u;
            v += nb;
            if (f->type == MR_INT32 && (iv[k] < INT32_MIN || iv[k] > INT32_MAX)) {
                snprintf(why, why_n, "field \"%s\" (int32): element %lld = %lld out of range", f->name,
                         (long long)k, (long long)iv[k]);
                free(iv);
                return NULL;
            }
        }
        if (v != end) {
            snprintf(why, why_n, "field \"%s\": %lld bytes left after the compressed array's %lld elements",
                     f->name, (long long)(end - v), (long long)n);
            free(iv);
            return NULL;
        }
    } else {
        int es = f->type == MR_INT32 || f->type == MR_FLOAT32 ? 4 : 8;
        if (len % (uint64_t)es) {
            snprintf(why, why_n, "field \"%s\" (%s): %llu bytes is not a whole number of elements", f->name,
                     type_names[f->type], (unsigned long long)len);
            return NULL;
        }
        n = (int64_t)(len / (uint64_t)es);
        if (is_int)
            iv = xmalloc(sizeof *iv * (size_t)(n + 1));
        else
            fv = xmalloc(sizeof *fv * (size_t)(n + 1));
        for (int64_t k = 0; k < n; k++) {
            const uint8_t *p = s + k * es;
            if (f->type == MR_INT32) {
                uint32_t u =
                    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                iv[k] = (int32_t)u;
            } else if (f->type == MR_INT64) {
                iv[k] = (int64_t)le64(p);
            } else if (f->type == MR_FLOAT32) {
                uint32_t u =
                    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
                float x;
                memcpy(&x, &u, 4);
                fv[k] = x;
            } else {
                uint64_t u = le64(p);
                memcpy(&fv[k], &u, 8);
            }
        }
    }
    /* shape: the -1 axis from the element count */
    int64_t dims[MR_MAX_DIMS], known = 1, cap = n > (1 << 20) ? n : (1 << 20);
    int nd = f->n_dims > 0 ? f->n_dims : 0, free_ax = -1, too_big = 0;
    for (int d = 0; d < nd; d++) {
        dims[d] = f->dims[d];
        if (dims[d] == -1)
            free_ax = d;
        else if (dims[d] > cap || (known *= dims[d]) > cap) /* both <= 2^30: no overflow */
            too_big = 1, known = 1;
    }
    if (!too_big && free_ax >= 0 && n % known == 0)
        dims[free_ax] = n / known;
    else if (too_big || free_ax >= 0 || known != n) {
        snprintf(why, why_n, "field \"%s\": %lld elements do not fit its shape", f->name, (long long)n);
        free(iv), free(fv);
        return NULL;
    }
    int64_t k = 0;
    cJSON *o = nd == 0 && n != 1 ? NULL : build_nested(f, dims, nd, iv, fv, &k);
    if (!o) snprintf(why, why_n, "field \"%s\": %lld elements for a scalar shape", f->name, (long long)n);
    free(iv), free(fv);
    return o;
}

static int load_page(struct mr_shard *s, int idx, uint8_t **buf, int *loaded) {
    if (*loaded == idx) return 0;
    const struct mr_page *p = &s->pages[idx];
    free(*buf);
    *buf = xmalloc((size_t)p->used + 1);
    *loaded = -1;
    if (shard_read(s, s->hs + s->ps * (uint64_t)p->id, (uint64_t)p->used, *buf))
        return err_wrap("page %lld (%s)", (long long)p->id, page_kind(p));
    *loaded = idx;
    return 0;
}

/* Moves to the next (raw page, row group) with rows. 1 found, 0 none left, -1 error. */
static int next_group(struct mr_shard *s) {
    for (;;) {
        while (s->raw_i < s->n_pages &&
               (s->pages[s->raw_i].blob || s->group_i >= s->pages[s->raw_i].n_groups))
            s->raw_i++, s->group_i = 0;
        if (s->raw_i >= s->n_pages) return 0;
        struct mr_page *rp = &s->pages[s->raw_i];
        int64_t g = rp->gid[s->group_i], off = rp->goff[s->group_i];
        s->group_i++;
        int lo = 0, hi = s->n_blob_pages - 1, bi = -1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            int64_t t = s->pages[s->blob_by_type[mid]].type_id;
            if (t == g) {
                bi = s->blob_by_type[mid];
                break;
            }
            if (t < g)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        if (bi < 0) {
            /* a writer's placeholder entry (no rows yet) has no blob page */
            if (g == 0 && off == 0 && s->n_blob_pages == 0) continue;
            return err_set("%s: page %lld (RAW_DATA): row group %lld has no BLOB_DATA page", s->path,
                           (long long)rp->id, (long long)g);
        }
        if (load_page(s, s->raw_i, &s->raw, &s->raw_loaded) || load_page(s, bi, &s->blobp, &s->blob_loaded))
            return -1;
        s->r = (uint64_t)off, s->b = 0;
        s->row = s->pages[bi].start, s->row_end = s->pages[bi].end;
        if (s->row < s->row_end) return 1;
    }
}

/* row_err with the current message (copied: err_set formats into the buffer err_msg reads) */
static int row_err_cur(const struct mr_shard *s, const struct mr_page *p, int64_t row) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", err_msg());
    return row_err(s, p, row, msg);
}

static int decode_raw(struct mr_shard *s, const struct mr_page *rp, const uint8_t *p, uint64_t n) {
    char why[256];
    size_t pos = 0;
    struct mp_value v;
    if (mp_read(p, n, &pos, &v)) return row_err_cur(s, rp, s->row);
    if (v.type != MP_MAP) return row_err(s, rp, s->row, "raw record is not a msgpack map");
    for (uint32_t e = 0; e < v.len; e++) {
        struct mp_value key, val;
        if (mp_read(p, n, &pos, &key)) return row_err_cur(s, rp, s->row);
        if (key.type != MP_STR) return row_err(s, rp, s->row, "raw record key is not a string");
        int fi = -1;
        for (int j = 0; j < s->n_fields; j++)
            if (strlen(s->fields[j].name) == key.len && memcmp(s->fields[j].name, key.s, key.len) == 0)
                fi = j;
        if (fi < 0 || s->fields[fi].blob) { /* the dummy "id" of all-blob schemas */
            if (mp_skip(p, n, &pos)) return row_err_cur(s, rp, s->row);
            continue;
        }
        const struct mr_field *f = &s->fields[fi];
        if (mp_read(p, n, &pos, &val)) return row_err_cur(s, rp, s->row);
        cJSON *item = NULL;
        int ok = 1;
        switch (f->type) {
        case MR_INT32:
        case MR_INT64: {
            int64_t x;
            if (val.type == MP_INT)
                x = val.i;
            else if (val.type == MP_UINT && val.u <= INT64_MAX)
                x = (int64_t)val.u;
            else {
                ok = 0;
                break;
            }
            if (f->type == MR_INT32 && (x < INT32_MIN || x > INT32_MAX))
                ok = 0;
            else
                item = int_item(x);
            break;
        }
        case MR_FLOAT32:
        case MR_FLOAT64: {
            double x = val.type == MP_FLOAT  ? val.f
                       : val.type == MP_INT  ? (double)val.i
                       : val.type == MP_UINT ? (double)val.u
                                             : NAN;
            if (val.type != MP_FLOAT && val.type != MP_INT && val.type != MP_UINT)
                ok = 0;
            else
                item = float_item(f->type == MR_FLOAT32 ? (double)(float)x : x);
            break;
        }
        case MR_STRING:
            if (val.type == MP_STR && utf8_check((const char *)val.s, val.len) == val.len)
                item = nul_create_string((const char *)val.s, (size_t)val.len); /* NULs as C0 80 */
            else
                ok = 0;
            break;
        case MR_BYTES: ok = 0; break;
        }
        if (val.type == MP_NIL) ok = 1, item = cJSON_CreateNull();
        if (!ok) {
            snprintf(why, sizeof why, "field \"%s\": msgpack value does not fit type %s", f->name,
                     type_names[f->type]);
            return row_err(s, rp, s->row, why);
        }
        cJSON_Delete(s->slots[fi]);
        s->slots[fi] = item;
    }
    if (pos != n) return row_err(s, rp, s->row, "bytes left after the raw record's msgpack map");
    return 0;
}

static int decode_blob(struct mr_shard *s, const struct mr_page *bp, const uint8_t *p, uint64_t n) {
    char why[320];
    if (s->n_blob == 0) return 0; /* a 4-byte zero placeholder */
    uint64_t at = 0;
    for (int k = 0; k < s->n_blob; k++) {
        const struct mr_field *f = &s->fields[s->blob_order[k]];
        uint64_t len = n;
        if (s->n_blob > 1) {
            if (n - at < 8) return row_err(s, bp, s->row, "blob truncated before a field's length");
            len = be_n(p + at, 8);
            at += 8;
            if (len > n - at) {
                snprintf(why, sizeof why, "field \"%s\": length %llu runs past the blob (%llu bytes left)",
                         f->name, (unsigned long long)len, (unsigned long long)(n - at));
                return row_err(s, bp, s->row, why);
            }
        }
        cJSON *item = decode_segment(s, f, p + at, len, why, sizeof why);
        if (!item) return row_err(s, bp, s->row, why);
        at += len;
        cJSON_Delete(s->slots[s->blob_order[k]]);
        s->slots[s->blob_order[k]] = item;
    }
    if (at != n) return row_err(s, bp, s->row, "bytes left after the blob's fields");
    return 0;
}

/* One row of the current group into *rec. */
static int shard_row(struct mr_shard *s, cJSON **rec) {
    const struct mr_page *rp = &s->pages[s->raw_loaded], *bp = &s->pages[s->blob_loaded];
    uint64_t rn, bn;
    if ((uint64_t)rp->used - s->r < 8 || (rn = le64(s->raw + s->r)) > (uint64_t)rp->used - s->r - 8)
        return row_err(s, rp, s->row, "raw record runs past the page's used bytes (damaged page)");
    if ((uint64_t)bp->used - s->b < 8 || (bn = le64(s->blobp + s->b)) > (uint64_t)bp->used - s->b - 8)
        return row_err(s, bp, s->row, "blob record runs past the page's used bytes (damaged page)");
    for (int i = 0; i < s->n_fields; i++)
        cJSON_Delete(s->slots[i]), s->slots[i] = NULL;
    if (decode_raw(s, rp, s->raw + s->r + 8, rn) || decode_blob(s, bp, s->blobp + s->b + 8, bn)) return -1;
    s->r += 8 + rn, s->b += 8 + bn;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < s->n_fields; i++) {
        int j = s->sorted[i];
        if (s->slots[j]) cJSON_AddItemToObject(o, s->fields[j].name, s->slots[j]);
        s->slots[j] = NULL;
    }
    s->row++;
    *rec = o;
    return 0;
}

/* ---- file sets ---- */

static int ends_with_mindrecord_digits(const char *name) {
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] >= '0' && name[n - 1] <= '9')
        n--;
    return n >= 10 && memcmp(name + n - 10, "mindrecord", 10) == 0;
}

int mindrecord_sniff(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint8_t head[24];
    int ok = pread(fd, head, sizeof head, 0) == (ssize_t)sizeof head && le64(head) < MR_MAX_HEADER &&
             memcmp(head + 8, "{\"header_size\"", 14) == 0;
    struct stat st;
    if (!ok && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 7 + 11)
        ok = pread(fd, head, 7, st.st_size - 7) == 7 && memcmp(head, "ENCRYPT", 7) == 0;
    close(fd);
    return ok;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The folder's data files by the mindrecord_open rule; *n = 0 when none. */
static char **dir_files(const char *dir, int *n) {
    char **files = NULL;
    *n = 0;
    for (int pass = 0; pass < 2 && *n == 0; pass++) {
        DIR *d = opendir(dir);
        if (!d) return NULL;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || ends_with(e->d_name, ".db")) continue;
            char *p = path_join(dir, e->d_name);
            int take =
                pass == 0 ? ends_with_mindrecord_digits(e->d_name) && !dir_exists(p) : mindrecord_sniff(p);
            if (take && *n < MR_MAX_SHARDS) {
                files = xrealloc(files, sizeof *files * (size_t)(*n + 1));
                files[(*n)++] = p;
            } else
                free(p);
        }
        closedir(d);
    }
    qsort(files, (size_t)*n, sizeof *files, cmp_str);
    return files;
}

int mindrecord_dir_has_files(const char *dir) {
    int n;
    char **f = dir_files(dir, &n);
    for (int i = 0; i < n; i++)
        free(f[i]);
    free(f);
    return n > 0;
}

static int open_current(struct mindrecord *m, const uint8_t *mem, size_t mem_n) {
    if (shard_open(&m->sh, m->files[m->i_file], mem, mem_n)) return -1;
    if (!m->first_header) m->first_header = cJSON_Duplicate(m->sh->header, 1);
    return 0;
}

/* Expands a data file to its shard group from shard_addresses. */
static int group_files(struct mindrecord *m, const char *path) {
    struct mr_shard *s;
    if (shard_open(&s, path, NULL, 0)) return -1;
    const cJSON *addr = cJSON_GetObjectItemCaseSensitive(s->header, "shard_addresses");
    int n = cJSON_IsArray(addr) ? cJSON_GetArraySize(addr) : 0;
    if (n <= 1) { /* one file: read it under whatever name it has now */
        shard_free(s);
        m->files = xcalloc(1, sizeof *m->files);
        m->files[0] = xstrdup(path);
        m->n_files = 1;
        return 0;
    }
    if (n > MR_MAX_SHARDS) {
        shard_free(s);
        return err_set("%s: header lists %d shards (at most %d)", path, n, MR_MAX_SHARDS);
    }
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
    m->files = xcalloc((size_t)n, sizeof *m->files);
    int found = 0, k = 0, rc = 0;
    for (const cJSON *a = addr->child; a; a = a->next, k++) {
        if (!cJSON_IsString(a) || !a->valuestring[0] || strchr(a->valuestring, '/')) {
            rc = err_set("%s: header: shard_addresses[%d] must be a file name", path, k);
            break;
        }
        m->files[m->n_files++] = slash ? path_join(dir, a->valuestring) : xstrdup(a->valuestring);
        found |= strcmp(a->valuestring, base) == 0;
    }
    if (!rc && !found)
        rc = err_set(
            "%s: this file is not among the shards its header lists (%s, ...): was it renamed? Rename it "
            "back, or name the folder",
            path, cJSON_IsString(addr->child) ? addr->child->valuestring : "?");
    for (int i = 0; !rc && i < m->n_files; i++)
        if (!file_exists(m->files[i]))
            rc = err_set("%s: shard %d of this file's group, %s, is missing", path, i, m->files[i]);
    free(dir);
    shard_free(s);
    return rc;
}

int mindrecord_open(struct mindrecord **out, const char *path) {
    *out = NULL;
    struct mindrecord *m = xcalloc(1, sizeof *m);
    int rc;
    if (dir_exists(path)) {
        m->files = dir_files(path, &m->n_files);
        m->alone = 1;
        rc =
            m->n_files
                ? 0
                : err_set("%s: folder holds no MindRecord data files (names matching mindrecord\\d*$)", path);
    } else
        rc = group_files(m, path);
    if (!rc) rc = open_current(m, NULL, 0);
    if (!rc && !m->alone && m->n_files > 1) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m->sh->header, "shard_id");
        if (!cJSON_IsNumber(id) || id->valuedouble != 0)
            rc = err_set("%s: header: shard_id must be 0 for the group's first file", m->files[0]);
    }
    if (rc) {
        mindrecord_close(m);
        return -1;
    }
    *out = m;
    return 0;
}

int mindrecord_next(struct mindrecord *m, cJSON **rec) {
    *rec = NULL;
    for (;;) {
        if (!m->sh) {
            if (m->i_file >= m->n_files) return 0;
            if (open_current(m, NULL, 0)) return -1;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(m->sh->header, "shard_id");
            if (!m->alone && m->n_files > 1 && (!cJSON_IsNumber(id) || id->valuedouble != m->i_file))
                return err_set("%s: header: shard_id is not %d, its place in the group", m->files[m->i_file],
                               m->i_file);
        }
        struct mr_shard *s = m->sh;
        if (s->raw_loaded >= 0 && s->row < s->row_end) {
            if (shard_row(s, rec)) return -1;
            m->rows++;
            return 1;
        }
        int g = next_group(s);
        if (g < 0) return -1;
        if (g == 0) {
            shard_free(s);
            m->sh = NULL;
            m->i_file++;
        }
    }
}

int64_t mindrecord_row(const struct mindrecord *m) { return m->rows; }

const cJSON *mindrecord_header(const struct mindrecord *m) { return m->sh ? m->sh->header : m->first_header; }

void mindrecord_close(struct mindrecord *m) {
    if (!m) return;
    shard_free(m->sh);
    for (int i = 0; i < m->n_files; i++)
        free(m->files[i]);
    free(m->files);
    cJSON_Delete(m->first_header);
    free(m);
}

static int check(const char *path, const uint8_t *mem, size_t n) {
    struct mindrecord m = {0};
    char *name = (char *)path;
    m.files = &name, m.n_files = 1, m.alone = 1;
    int rc = open_current(&m, mem, n);
    cJSON *rec;
    while (!rc && m.sh) {
        struct mr_shard *s = m.sh;
        if (s->raw_loaded >= 0 && s->row < s->row_end) {
            rc = shard_row(s, &rec);
            if (!rc) cJSON_Delete(rec);
            continue;
        }
        int g = next_group(s);
        if (g < 0) rc = -1;
        if (g == 0) break;
    }
    shard_free(m.sh);
    cJSON_Delete(m.first_header);
    return rc;
}

int mindrecord_check_file(const char *path) { return check(path, NULL, 0); }

int mindrecord_check_buffer(const uint8_t *data, size_t n, const char *name) {
    return check(name ? name : "(buffer)", data, n);
}
