/* safetensors: see safetensors.h. Reader: each file is mmapped read-only, its header parsed
 * with cJSON and validated before any tensor is exposed; lookups go through an
 * open-addressing hash table. Writer: streams each shard to <name>.tmp.<pid> (chunked dtype
 * conversion, no whole-model buffer), fsyncs, renames all shards, then writes the index last.
 * The format is https://github.com/huggingface/safetensors (README, "Format"). */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"

/* Largest integer a JSON number (a double) carries exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

struct st_file {
    char *path;
    void *map;
    size_t size;
    const uint8_t *data; /* byte buffer after the header */
    size_t data_len;
};

struct safetensors {
    char *path; /* as given to safetensors_open */
    struct st_file *files;
    int n_files;
    struct st_tensor *tensors;
    int n, cap;
    int *slots; /* hash table of tensor index + 1 (0 = empty) */
    size_t n_slots;
    int n_hashed; /* tensors [0, n_hashed) are in the table */
};

/* ---- lookup ---------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int hash_lookup(const struct safetensors *st, const char *name) {
    if (!st->n_slots) return -1;
    size_t mask = st->n_slots - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        int v = st->slots[i];
        if (!v) return -1;
        if (strcmp(st->tensors[v - 1].name, name) == 0) return v - 1;
    }
}

static void hash_insert(struct safetensors *st, int idx) {
    size_t mask = st->n_slots - 1;
    size_t i = hash_str(st->tensors[idx].name) & mask;
    while (st->slots[i])
        i = (i + 1) & mask;
    st->slots[i] = idx + 1;
}

/* Adds tensor idx (== n_hashed), keeping the table at most half full. */
static void hash_add(struct safetensors *st, int idx) {
    if ((size_t)(st->n_hashed + 1) * 2 > st->n_slots) {
        size_t n = 64;
        while (n < (size_t)(st->n_hashed + 1) * 2)
            n *= 2;
        free(st->slots);
        st->slots = xcalloc(n, sizeof *st->slots);
        st->n_slots = n;
        for (int i = 0; i < st->n_hashed; i++)
            hash_insert(st, i);
    }
    hash_insert(st, idx);
    st->n_hashed = idx + 1;
}

/* ---- reader ---------------------------------------------------------------------------- */

static int file_map(struct st_file *f, const char *path) {
    f->path = xstrdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set("%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size < 8) {
        close(fd);
        return err_set("%s: truncated: %zu bytes, shorter than the 8-byte header length", path, f->size);
    }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return err_set("%s: mmap failed: %s", path, strerror(errno));
    }
    return 0;
}

static void file_unmap(struct st_file *f) {
    if (f->map) munmap(f->map, f->size);
    free(f->path);
}

static void shape_str(char *buf, size_t cap, const int64_t *shape, int n_dims) {
    size_t n = 0;
    buf[0] = 0;
    n += snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && n < cap; i++)
        n += snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *j, int64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_JSON_INT) || d != floor(d)) return -1;
    *out = (int64_t)d;
    return 0;
}

static struct st_tensor *tensor_push(struct safetensors *st) {
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 256;
        st->tensors = xrealloc(st->tensors, (size_t)st->cap * sizeof *st->tensors);
    }
    struct st_tensor *t = &st->tensors[st->n];
    memset(t, 0, sizeof *t);
    return t;
}

/* Parses one header entry into t (name already set). Errors name file and tensor. */
static int entry_parse(struct st_tensor *t, const cJSON *e, const struct st_file *f, int64_t *begin) {
    const char *p = f->path, *nm = t->name;
    if (!cJSON_IsObject(e)) return err_set("%s: tensor \"%s\": header entry is not a JSON object", p, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd)) return err_set("%s: tensor \"%s\": missing or non-string \"dtype\"", p, nm);
    if (dtype_parse(jd->valuestring, &t->dtype) != 0)
        return err_set(
            "%s: tensor \"%s\": unknown dtype \"%s\" (known: F32 BF16 F16 F64 I64 I32 I16 I8 U8 BOOL)", p, nm,
            jd->valuestring);
    if (!cJSON_IsArray(js)) return err_set("%s: tensor \"%s\": missing or non-list \"shape\"", p, nm);
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS)
        return err_set("%s: tensor \"%s\": shape has %d dims, at most %d supported", p, nm, nd, ST_MAX_DIMS);
    t->n_dims = nd;
    t->numel = 1;
    int k = 0;
    for (const cJSON *d = js->child; d; d = d->next, k++) {
        if (json_uint(d, &t->shape[k]) != 0)
            return err_set("%s: tensor \"%s\": shape[%d] is not a non-negative integer", p, nm, k);
        if (t->shape[k] && t->numel > INT64_MAX / 16 / t->shape[k])
            return err_set("%s: tensor \"%s\": shape too large (element count overflows)", p, nm);
        t->numel *= t->shape[k];
    }
    int64_t b, e2;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || json_uint(jo->child, &b) != 0 ||
        json_uint(jo->child->next, &e2) != 0)
        return err_set(
            "%s: tensor \"%s\": \"data_offsets\" must be a list [begin, end] of non-negative integers", p,
            nm);
    if (e2 < b)
        return err_set("%s: tensor \"%s\": data_offsets [%lld, %lld] end before begin", p, nm, (long long)b,
                       (long long)e2);
    t->nbytes = (size_t)t->numel * dtype_size(t->dtype);
    if ((uint64_t)(e2 - b) != (uint64_t)t->nbytes) {
        char s[256];
        shape_str(s, sizeof s, t->shape, nd);
        return err_set("%s: tensor \"%s\": shape %s x %s (%zu bytes each) needs %zu bytes but data_offsets "
                       "[%lld, %lld] span %lld",
                       p, nm, s, dtype_name(t->dtype), dtype_size(t->dtype), t->nbytes, (long long)b,
                       (long long)e2, (long long)(e2 - b));
    }
    if ((uint64_t)e2 > (uint64_t)f->data_len)
        return err_set(
            "%s: tensor \"%s\": data_offsets [%lld, %lld] past the end of the data buffer (%zu bytes; "
            "file truncated?)",
            p, nm, (long long)b, (long long)e2, f->data_len);
    t->data = f->data + b;
    t->file = f->path;
    *begin = b;
    return 0;
}

struct range {
    int64_t begin, end;
    int idx;
};

static int range_cmp(const void *a, const void *b) {
    const struct range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Parses file fi's header and appends its tensors to st. */
static int file_parse(struct safetensors *st, int fi) {
    struct st_file *f = &st->files[fi];
    const uint8_t *m = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | m[i];
    if (hlen < 2 || hlen > f->size - 8)
        return err_set("%s: header length %llu is not within the file (%zu bytes after the 8-byte length; "
                       "truncated or not a safetensors file?)",
                       f->path, (unsigned long long)hlen, f->size - 8);
    f->data = m + 8 + hlen;
    f->data_len = f->size - 8 - hlen;
    const char *hdr = (const char *)m + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= hdr && at <= hdr + hlen ? (long)(at - hdr) : -1;
        return err_set("%s: header is not valid JSON (error near byte %ld of %llu)", f->path, off,
                       (unsigned long long)hlen);
    }
    for (; end && end < hdr + hlen; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != 0) {
            cJSON_Delete(root);
            return err_set("%s: header has trailing bytes after the JSON object (at byte %ld)", f->path,
                           (long)(end - hdr));
        }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set("%s: header is not a JSON object", f->path);
    }
    int first = st->n, rc = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                rc = err_set("%s: \"__metadata__\" is not a JSON object", f->path);
                break;
            }
            continue;
        }
        struct st_tensor *t = tensor_push(st);
        t->name = xstrdup(e->string);
        st->n++; /* owned from here on, freed by close even if invalid */
        int64_t b;
        if (entry_parse(t, e, f, &b) != 0) {
            rc = -1;
            break;
        }
        int prev = hash_lookup(st, t->name);
        if (prev >= 0) {
            if (strcmp(st->tensors[prev].file, f->path) == 0)
                rc = err_set("%s: tensor \"%s\" appears twice in the header", f->path, t->name);
            else
                rc =
                    err_set("%s: tensor \"%s\" also appears in %s", f->path, t->name, st->tensors[prev].file);
            break;
        }
        hash_add(st, st->n - 1);
    }
    cJSON_Delete(root);
    if (rc) return rc;
    /* Ranges must not overlap (empty tensors occupy nothing). */
    int n = st->n - first;
    struct range *r = xmalloc((size_t)(n ? n : 1) * sizeof *r);
    int nr = 0;
    for (int i = first; i < st->n; i++) {
        const struct st_tensor *t = &st->tensors[i];
        if (!t->nbytes) continue;
        int64_t b = (int64_t)((const uint8_t *)t->data - f->data);
        r[nr++] = (struct range){b, b + (int64_t)t->nbytes, i};
    }
    qsort(r, nr, sizeof *r, range_cmp);
    for (int i = 1; i < nr; i++)
        if (r[i].begin < r[i - 1].end) {
            rc = err_set("%s: tensor \"%s\" bytes [%lld, %lld) overlap tensor \"%s\" bytes [%lld, %lld)",
                         f->path, st->tensors[r[i].idx].name, (long long)r[i].begin, (long long)r[i].end,
                         st->tensors[r[i - 1].idx].name, (long long)r[i - 1].begin, (long long)r[i - 1].end);
            break;
        }
    free(r);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *dir_name(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    char *d = xstrdup(path);
    d[slash - path] = 0;
    return d;
}

static int open_single(struct safetensors *st, const char *path) {
    st->files = xcalloc(1, sizeof *st->files);
    st->n_files = 1;
    if (file_map(&st->files[0], path) != 0) return -1;
    return file_parse(st, 0);
}

static int open_index(struct safetensors *st, const char *path) {
    char *text = file_read_all(path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return err_set("%s: not valid JSON", path);
    int rc = 0;
    char *dir = dir_name(path);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        rc = err_set("%s: missing or empty \"weight_map\" object (tensor name -> shard file)", path);
        goto done;
    }
    /* Unique shard names, in order of first appearance. */
    int n_map = cJSON_GetArraySize(wm), n_sh = 0;
    const char **shards = xmalloc((size_t)n_map * sizeof *shards);
    const char **first = xmalloc((size_t)n_map * sizeof *first); /* a tensor mapped to each */
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0]) {
            rc = err_set("%s: weight_map entry for tensor \"%s\" is not a file name", path, e->string);
            break;
        }
        int k = 0;
        while (k < n_sh && strcmp(shards[k], e->valuestring) != 0)
            k++;
        if (k == n_sh) {
            first[n_sh] = e->string;
            shards[n_sh++] = e->valuestring;
        }
    }
    if (!rc) {
        st->files = xcalloc((size_t)n_sh, sizeof *st->files);
        for (int k = 0; k < n_sh && !rc; k++) {
            char *sp = shards[k][0] == '/' ? xstrdup(shards[k]) : path_join(dir, shards[k]);
            st->n_files++;
            if (file_map(&st->files[k], sp) != 0 || file_parse(st, k) != 0)
                rc = err_wrap("%s: shard %s (holding tensor \"%s\")", path, shards[k], first[k]);
            free(sp);
        }
    }
    /* Every mapped tensor must be in the shard the index says. */
    for (const cJSON *e = wm->child; e && !rc; e = e->next) {
        int i = hash_lookup(st, e->string);
        const char *want = strrchr(e->valuestring, '/') ? strrchr(e->valuestring, '/') + 1 : e->valuestring;
        const char *got = i < 0 ? NULL : strrchr(st->tensors[i].file, '/');
        got = got ? got + 1 : i < 0 ? NULL : st->tensors[i].file;
        if (i < 0)
            rc = err_set("%s: weight_map maps tensor \"%s\" to %s, which has no such tensor", path, e->string,
                         e->valuestring);
        else if (strcmp(want, got) != 0)
            rc = err_set("%s: weight_map maps tensor \"%s\" to %s, but it is in %s", path, e->string,
                         e->valuestring, st->tensors[i].file);
    }
    free(shards);
    free(first);
done:
    free(dir);
    cJSON_Delete(root);
    return rc;
}

int safetensors_open(struct safetensors **out, const char *path) {
    *out = NULL;
    struct safetensors *st = xcalloc(1, sizeof *st);
    st->path = xstrdup(path);
    int rc;
    if (dir_exists(path)) {
        char *idx = path_join(path, "model.safetensors.index.json");
        char *one = path_join(path, "model.safetensors");
        if (file_exists(idx))
            rc = open_index(st, idx);
        else if (file_exists(one))
            rc = open_single(st, one);
        else
            rc = err_set("%s: folder has neither model.safetensors.index.json nor model.safetensors", path);
        free(idx);
        free(one);
    } else if (!file_exists(path)) {
        rc = err_set("%s: no such file or folder", path);
    } else if (ends_with(path, ".json")) {
        rc = open_index(st, path);
    } else {
        rc = open_single(st, path);
    }
    if (rc) {
        safetensors_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void safetensors_close(struct safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++)
        free((char *)st->tensors[i].name);
    for (int i = 0; i < st->n_files; i++)
        file_unmap(&st->files[i]);
    free(st->tensors);
    free(st->files);
    free(st->slots);
    free(st->path);
    free(st);
}

int safetensors_count(const struct safetensors *st) { return st->n; }

const struct st_tensor *safetensors_at(const struct safetensors *st, int i) {
    CHECK(i >= 0 && i < st->n, "tensor index %d out of range [0, %d)", i, st->n);
    return &st->tensors[i];
}

const struct st_tensor *safetensors_find(const struct safetensors *st, const char *name) {
    int i = hash_lookup(st, name);
    return i < 0 ? NULL : &st->tensors[i];
}

/* Converts t into dst (t->numel floats), copying through an aligned buffer when the mmapped
 * bytes are not aligned for their type (a header length that is not a multiple of 8). */
/* n elements at src (any alignment) to float32 */
static void span_to_f32(float *dst, const void *src, enum dtype dtype, int64_t n) {
    size_t es = dtype_size(dtype);
    if (((uintptr_t)src % es) == 0) {
        dtype_to_f32(dst, src, dtype, n);
        return;
    }
    uint64_t tmp[1024];
    int64_t per = (int64_t)(sizeof tmp / es);
    for (int64_t i = 0; i < n; i += per) {
        int64_t k = n - i < per ? n - i : per;
        memcpy(tmp, (const uint8_t *)src + i * es, (size_t)k * es);
        dtype_to_f32(dst + i, tmp, dtype, k);
    }
}

static void tensor_to_f32(float *dst, const struct st_tensor *t) { span_to_f32(dst, t->data, t->dtype, t->numel); }

static const struct st_tensor *find_f32(const struct safetensors *st, const char *name) {
    const struct st_tensor *t = safetensors_find(st, name);
    if (!t) {
        err_set("%s: no tensor \"%s\"", st->path, name);
        return NULL;
    }
    if (t->dtype != DTYPE_F32 && t->dtype != DTYPE_BF16 && t->dtype != DTYPE_F16) {
        err_set("%s: tensor \"%s\": dtype %s cannot be read as float32 (only F32, BF16, F16)", t->file, name,
                dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

/* The tensor `name` as float32-readable with shape[0..n_dims); NULL + err otherwise. */
static const struct st_tensor *find_shaped(const struct safetensors *st, const char *name, const int64_t *shape,
                                           int n_dims) {
    const struct st_tensor *t = find_f32(st, name);
    if (!t) return NULL;
    int same = n_dims == t->n_dims;
    for (int i = 0; same && i < n_dims; i++)
        same = shape[i] == t->shape[i];
    if (!same) {
        char want[256], got[256];
        shape_str(want, sizeof want, shape, n_dims);
        shape_str(got, sizeof got, t->shape, t->n_dims);
        err_set("%s: tensor \"%s\": expected shape %s, found %s", t->file, name, want, got);
        return NULL;
    }
    return t;
}

int safetensors_read_f32(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                         int n_dims) {
    const struct st_tensor *t = find_shaped(st, name, shape, n_dims);
    if (!t) return -1;
    tensor_to_f32(dst, t);
    return 0;
}

int safetensors_read_f32_block(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                               int n_dims, int64_t row0, int64_t rows, int64_t col0, int64_t cols) {
    if (n_dims < 1 || n_dims > 2) return err_set("tensor \"%s\": a block read needs 1 or 2 dimensions", name);
    const struct st_tensor *t = find_shaped(st, name, shape, n_dims);
    if (!t) return -1;
    int64_t width = n_dims == 2 ? shape[1] : 1;
    if (n_dims == 1) col0 = 0, cols = 1;
    if (row0 < 0 || rows < 0 || row0 + rows > shape[0] || col0 < 0 || cols < 0 || col0 + cols > width)
        return err_set("%s: tensor \"%s\": block rows [%lld, %lld) cols [%lld, %lld) outside its shape", t->file, name,
                       (long long)row0, (long long)(row0 + rows), (long long)col0, (long long)(col0 + cols));
    size_t es = dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r++)
        span_to_f32(dst + r * cols, (const uint8_t *)t->data + (size_t)((row0 + r) * width + col0) * es, t->dtype,
                    cols);
    return 0;
}

int safetensors_read_f32_range(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                               int n_dims, int64_t first, int64_t count) {
    const struct st_tensor *t = find_shaped(st, name, shape, n_dims);
    if (!t) return -1;
    if (first < 0 || count < 0 || first > t->numel - count)
        return err_set("%s: tensor \"%s\": elements [%lld, %lld) outside its %lld", t->file, name, (long long)first,
                       (long long)(first + count), (long long)t->numel);
    span_to_f32(dst, (const uint8_t *)t->data + (size_t)first * dtype_size(t->dtype), t->dtype, count);
    return 0;
}

float *safetensors_load_f32(const struct safetensors *st, const char *name, const struct st_tensor **info) {
    const struct st_tensor *t = find_f32(st, name);
    if (!t) return NULL;
    float *dst = xmalloc((size_t)t->numel * sizeof(float));
    tensor_to_f32(dst, t);
    if (info) *info = t;
    return dst;
}

/* ---- writer ---------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(struct sbuf *b, const char *fmt, long long v) {
    char tmp[128];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal (UTF-8 passes through; quotes, backslash and controls escaped). */
static void sb_json_str(struct sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int64_t entry_numel(const struct st_entry *e) {
    int64_t n = 1;
    for (int i = 0; i < e->n_dims; i++)
        n *= e->shape[i];
    return n;
}

static int entries_check(const char *dir, const struct st_entry *entries, int n) {
    for (int i = 0; i < n; i++) {
        const struct st_entry *e = &entries[i];
        if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
            return err_set("%s: entry %d: tensor name is empty or reserved", dir, i);
        if (e->n_dims < 0 || e->n_dims > ST_MAX_DIMS)
            return err_set("%s: tensor \"%s\": %d dims, expected 0..%d", dir, e->name, e->n_dims,
                           ST_MAX_DIMS);
        int64_t numel = 1;
        for (int k = 0; k < e->n_dims; k++) {
            if (e->shape[k] < 0 || (e->shape[k] && numel > INT64_MAX / 16 / e->shape[k]))
                return err_set("%s: tensor \"%s\": invalid shape[%d] = %lld", dir, e->name, k,
                               (long long)e->shape[k]);
            numel *= e->shape[k];
        }
        if (e->dtype != DTYPE_F32 && e->dtype != DTYPE_BF16 && e->dtype != DTYPE_F16)
            return err_set("%s: tensor \"%s\": cannot write dtype %s (only F32, BF16, F16)", dir, e->name,
                           dtype_name(e->dtype));
        if (numel && !e->data) return err_set("%s: tensor \"%s\": data is NULL", dir, e->name);
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0)
                return err_set("%s: tensor \"%s\" given twice", dir, e->name);
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len, const char *path) {
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return err_set("%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

char *safetensors_header(const struct st_entry *entries, int lo, int hi, size_t *len) {
    struct sbuf h = {0};
    sb_str(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t off = 0;
    for (int i = lo; i < hi; i++) {
        const struct st_entry *e = &entries[i];
        int64_t nb = entry_numel(e) * (int64_t)dtype_size(e->dtype);
        sb_str(&h, ",");
        sb_json_str(&h, e->name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, dtype_name(e->dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int k = 0; k < e->n_dims; k++)
            sb_fmt(&h, k ? ",%lld" : "%lld", (long long)e->shape[k]);
        sb_fmt(&h, "],\"data_offsets\":[%lld,", (long long)off);
        sb_fmt(&h, "%lld]}", (long long)(off + nb));
        off += nb;
    }
    sb_str(&h, "}");
    while (h.n % 8)
        sb_str(&h, " "); /* as the safetensors library pads: data starts 8-aligned */
    *len = h.n;
    return h.p;
}

/* Writes entries [lo, hi) as one safetensors file at tmp (created, fsynced, closed). */
static int shard_write(const char *tmp, const struct st_entry *entries, int lo, int hi, void *chunk,
                       size_t chunk_elems) {
    struct sbuf h = {0};
    h.p = safetensors_header(entries, lo, hi, &h.n);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(h.p);
        return err_set("%s: cannot create: %s", tmp, strerror(errno));
    }
    int rc = write_all(fd, len8, 8, tmp);
    if (!rc) rc = write_all(fd, h.p, h.n, tmp);
    free(h.p);
    for (int i = lo; i < hi && !rc; i++) {
        const struct st_entry *e = &entries[i];
        int64_t numel = entry_numel(e);
        size_t es = dtype_size(e->dtype);
        for (int64_t j = 0; j < numel && !rc; j += (int64_t)chunk_elems) {
            int64_t m = numel - j < (int64_t)chunk_elems ? numel - j : (int64_t)chunk_elems;
            if (e->dtype == DTYPE_F32) {
                rc = write_all(fd, e->data + j, (size_t)m * 4, tmp); /* no conversion needed */
            } else {
                dtype_from_f32(chunk, e->data + j, e->dtype, m);
                rc = write_all(fd, chunk, (size_t)m * es, tmp);
            }
        }
    }
    if (!rc && fsync(fd) != 0) rc = err_set("%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !rc) rc = err_set("%s: close failed: %s", tmp, strerror(errno));
    return rc;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp((*(const struct st_entry *const *)a)->name, (*(const struct st_entry *const *)b)->name);
}

int safetensors_split(const struct st_entry *entries, int n, size_t max_shard_bytes, int *shard_lo) {
    /* Split like transformers' save_pretrained: start a new shard when adding the next tensor
     * would pass the limit (a tensor bigger than the limit gets a shard of its own). */
    int n_sh = 0;
    size_t total = 0, cur = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)entry_numel(&entries[i]) * dtype_size(entries[i].dtype);
    shard_lo[n_sh++] = 0;
    if (max_shard_bytes && total > max_shard_bytes) {
        for (int i = 0; i < n; i++) {
            size_t nb = (size_t)entry_numel(&entries[i]) * dtype_size(entries[i].dtype);
            if (cur && cur + nb > max_shard_bytes) {
                shard_lo[n_sh++] = i;
                cur = 0;
            }
            cur += nb;
        }
    }
    shard_lo[n_sh] = n;
    return n_sh;
}

int safetensors_write_index(const char *dir, const char *stem, const struct st_entry *entries, int n,
                            const int *shard_lo, int n_sh) {
    char *index = xasprintf("%s/%s.safetensors.index.json", dir, stem);
    int rc = 0;
    if (n_sh > 1) {
        /* The index goes last, so a reader never finds an index naming shards not yet there. */
        const struct st_entry **sorted = xmalloc((size_t)n * sizeof *sorted);
        int64_t n_params = 0, total = 0;
        for (int i = 0; i < n; i++) {
            sorted[i] = &entries[i];
            n_params += entry_numel(&entries[i]);
            total += entry_numel(&entries[i]) * (int64_t)dtype_size(entries[i].dtype);
        }
        qsort(sorted, n, sizeof *sorted, name_cmp);
        int *shard_of = xmalloc((size_t)n * sizeof *shard_of);
        for (int s = 0; s < n_sh; s++)
            for (int i = shard_lo[s]; i < shard_lo[s + 1]; i++)
                shard_of[i] = s;
        struct sbuf j = {0};
        sb_fmt(&j, "{\n  \"metadata\": {\n    \"total_parameters\": %lld,\n", (long long)n_params);
        sb_fmt(&j, "    \"total_size\": %lld\n  },\n  \"weight_map\": {\n", (long long)total);
        for (int i = 0; i < n; i++) {
            char fname[64];
            snprintf(fname, sizeof fname, "%s-%05d-of-%05d.safetensors", stem, shard_of[sorted[i] - entries] + 1, n_sh);
            sb_str(&j, "    ");
            sb_json_str(&j, sorted[i]->name);
            sb_str(&j, ": ");
            sb_json_str(&j, fname);
            sb_str(&j, i + 1 < n ? ",\n" : "\n");
        }
        sb_str(&j, "  }\n}\n");
        rc = file_write_atomic(index, j.p, j.n);
        free(j.p);
        free(sorted);
        free(shard_of);
    } else if (file_exists(index)) {
        /* A stale index would shadow the new single file when the folder is opened. */
        if (unlink(index) != 0) rc = err_set("%s: cannot remove stale index: %s", index, strerror(errno));
    }
    free(index);
    return rc;
}

int safetensors_save(const char *dir, const char *stem, const struct st_entry *entries, int n,
                     size_t max_shard_bytes) {
    if (!stem) stem = "model";
    if (entries_check(dir, entries, n) != 0) return -1;
    if (dir_create(dir) != 0) return -1;
    int *shard_lo = xmalloc((size_t)(n + 2) * sizeof *shard_lo);
    int n_sh = safetensors_split(entries, n, max_shard_bytes, shard_lo);
    char **final = xcalloc((size_t)n_sh, sizeof *final), **tmp = xcalloc((size_t)n_sh, sizeof *tmp);
    for (int s = 0; s < n_sh; s++) {
        char *base = n_sh == 1 ? xasprintf("%s.safetensors", stem)
                               : xasprintf("%s-%05d-of-%05d.safetensors", stem, s + 1, n_sh);
        final[s] = path_join(dir, base);
        tmp[s] = xasprintf("%s.tmp.%d", final[s], (int)getpid());
        free(base);
    }
    size_t chunk_elems = 1 << 18;
    void *chunk = xmalloc(chunk_elems * 4);
    int rc = 0, written = 0;
    for (int s = 0; s < n_sh && !rc; s++, written++)
        rc = shard_write(tmp[s], entries, shard_lo[s], shard_lo[s + 1], chunk, chunk_elems);
    free(chunk);
    if (rc) {
        for (int s = 0; s < written; s++)
            unlink(tmp[s]);
    } else {
        for (int s = 0; s < n_sh && !rc; s++)
            if (rename(tmp[s], final[s]) != 0) {
                rc = err_set("%s: cannot rename into place: %s", final[s], strerror(errno));
                for (int r = s; r < n_sh; r++)
                    unlink(tmp[r]);
            }
    }
    if (!rc) rc = safetensors_write_index(dir, stem, entries, n, shard_lo, n_sh);
    if (!rc) dir_fsync(dir);
    for (int s = 0; s < n_sh; s++) {
        free(final[s]);
        free(tmp[s]);
    }
    free(final);
    free(tmp);
    free(shard_lo);
    return rc;
}
