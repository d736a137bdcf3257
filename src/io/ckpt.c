/* ckpt: see ckpt.h. The file is mmapped read-only; the protobuf wire format is walked with
 * bounds checks on every varint and length (https://protobuf.dev/programming-guides/encoding/).
 * Single-slice tensors point into the map; sliced ones are concatenated into owned buffers whose
 * total is bounded by the file size. */
#include "io/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cjson/cJSON.h>

#include "core/err.h"
#include "core/util.h"

#define SLICE_BYTES ((size_t)512 * 1024 * 1024) /* serialization.py SLICE_SIZE (KiB) * 1024 */

static const struct {
    const char *name;
    int dtype;
    int size;
} types[] = {
    {"Float32", DTYPE_F32, 4},  {"BFloat16", DTYPE_BF16, 2}, {"Float16", DTYPE_F16, 2}, {"Float64", DTYPE_F64, 8},
    {"Int64", DTYPE_I64, 8},    {"Int32", DTYPE_I32, 4},     {"Int16", DTYPE_I16, 2},   {"Int8", DTYPE_I8, 1},
    {"UInt8", DTYPE_U8, 1},     {"Bool", DTYPE_BOOL, 1},     {"UInt16", -1, 2},         {"UInt32", -1, 4},
    {"UInt64", -1, 8},          {"Int4", -1, 0},             {"str", -1, 0},
};

const char *ckpt_type_name(enum dtype t) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].dtype == (int)t) return types[i].name;
    return NULL;
}

static int type_info(const char *name, int *dtype, int *size) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].name, name)) return *dtype = types[i].dtype, *size = types[i].size, 0;
    return -1;
}

/* ---- wire format ---- */

struct rd {
    const uint8_t *p, *end, *base; /* base: file start, for offsets in messages */
};

static int rd_varint(struct rd *r, uint64_t *v) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) return *v = x, 0;
    }
    return -1;
}

/* Reads a length-delimited payload: its bounds in *sub. */
static int rd_len(struct rd *r, struct rd *sub) {
    uint64_t n;
    if (rd_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return -1;
    sub->p = r->p, sub->end = r->p + n, sub->base = r->base;
    r->p += n;
    return 0;
}

static int rd_skip(struct rd *r, int wire) {
    uint64_t v;
    struct rd sub;
    switch (wire) {
    case 0: return rd_varint(r, &v);
    case 1: return (r->end - r->p < 8) ? -1 : (r->p += 8, 0);
    case 2: return rd_len(r, &sub);
    case 5: return (r->end - r->p < 4) ? -1 : (r->p += 4, 0);
    default: return -1; /* groups (3/4) are not used by checkpoint.proto */
    }
}

struct raw_value {
    const uint8_t *tag;
    size_t tag_len;
    int has_tensor, is_map;
    uint64_t dims[CKPT_MAX_DIMS + 1];
    int n_dims;
    char type[16];
    const uint8_t *content;
    size_t content_len;
};

static int parse_tensor(struct rd r, struct raw_value *v, const char *path, size_t off) {
    while (r.p < r.end) {
        uint64_t key;
        if (rd_varint(&r, &key)) goto bad;
        int field = (int)(key >> 3), wire = (int)(key & 7);
        if (field == 1 && wire == 0) {
            uint64_t d;
            if (rd_varint(&r, &d)) goto bad;
            if (v->n_dims > CKPT_MAX_DIMS) return err_set("%s: tensor at byte %zu has more than %d dims", path, off, CKPT_MAX_DIMS);
            v->dims[v->n_dims++] = d;
        } else if (field == 1 && wire == 2) { /* packed dims */
            struct rd sub;
            if (rd_len(&r, &sub)) goto bad;
            while (sub.p < sub.end) {
                uint64_t d;
                if (rd_varint(&sub, &d)) goto bad;
                if (v->n_dims > CKPT_MAX_DIMS) return err_set("%s: tensor at byte %zu has more than %d dims", path, off, CKPT_MAX_DIMS);
                v->dims[v->n_dims++] = d;
            }
        } else if (field == 2 && wire == 2) {
            struct rd sub;
            if (rd_len(&r, &sub)) goto bad;
            size_t n = (size_t)(sub.end - sub.p);
            if (n == 0 || n >= sizeof v->type) return err_set("%s: tensor at byte %zu has a bad tensor_type (%zu bytes)", path, off, n);
            memcpy(v->type, sub.p, n);
            v->type[n] = 0;
        } else if (field == 3 && wire == 2) {
            struct rd sub;
            if (rd_len(&r, &sub)) goto bad;
            v->content = sub.p, v->content_len = (size_t)(sub.end - sub.p);
        } else if (rd_skip(&r, wire)) {
            goto bad;
        }
    }
    return 0;
bad:
    return err_set("%s: damaged tensor message at byte %zu", path, off);
}

static int parse_value(struct rd r, struct raw_value *v, const char *path, size_t off) {
    memset(v, 0, sizeof *v);
    while (r.p < r.end) {
        uint64_t key;
        if (rd_varint(&r, &key)) return err_set("%s: damaged value message at byte %zu", path, off);
        int field = (int)(key >> 3), wire = (int)(key & 7);
        struct rd sub;
        if (wire == 2 && (field == 1 || field == 2 || field == 3)) {
            if (rd_len(&r, &sub)) return err_set("%s: damaged value message at byte %zu", path, off);
            if (field == 1) v->tag = sub.p, v->tag_len = (size_t)(sub.end - sub.p);
            else if (field == 3) v->is_map = 1;
            else {
                v->has_tensor = 1;
                if (parse_tensor(sub, v, path, (size_t)(sub.p - r.base))) return -1;
            }
        } else if (rd_skip(&r, wire)) {
            return err_set("%s: damaged value message at byte %zu", path, off);
        }
    }
    if (!v->tag) return err_set("%s: value at byte %zu has no tag (name)", path, off);
    if (v->tag_len == 0 || v->tag_len > 1024) return err_set("%s: value at byte %zu has a name of %zu bytes", path, off, v->tag_len);
    if (!v->has_tensor && !v->is_map) return err_set("%s: value '%.*s' at byte %zu holds no tensor", path, (int)v->tag_len, v->tag, off);
    if (v->has_tensor && !v->type[0]) return err_set("%s: tensor '%.*s' has no tensor_type", path, (int)v->tag_len, v->tag);
    return 0;
}

/* ---- open ---- */

static int is_ckpt_name(const char *n) {
    size_t l = strlen(n);
    return l > 5 && !strcmp(n + l - 5, ".ckpt");
}

/* The .ckpt files of a folder, sorted; NULL if none. */
static char **list_ckpts(const char *dir, int *n_out) {
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_ckpt_name(e->d_name)) {
            v = xrealloc(v, sizeof *v * (size_t)(n + 1));
            v[n++] = path_join(dir, e->d_name);
        }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    *n_out = n;
    return v;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

int ckpt_is_checkpoint(const char *path) {
    if (!dir_exists(path)) return is_ckpt_name(path) && file_exists(path);
    char *r0 = path_join(path, "rank_0");
    int n = 0;
    char **v = list_ckpts(r0, &n);
    free_list(v, n);
    free(r0);
    if (n) return 1;
    v = list_ckpts(path, &n);
    free_list(v, n);
    return n > 0;
}

char *ckpt_config_dir(const char *path) {
    if (dir_exists(path)) return xstrdup(path);
    char *d = xstrdup(path);
    char *slash = strrchr(d, '/');
    if (!slash) {
        free(d);
        return xstrdup(".");
    }
    *slash = 0;
    const char *leaf = strrchr(d, '/') ? strrchr(d, '/') + 1 : d;
    if (!strncmp(leaf, "rank_", 5)) {
        char *cfg = path_join(d, "config.json");
        int here = file_exists(cfg);
        free(cfg);
        if (!here) {
            char *s2 = strrchr(d, '/');
            if (s2) *s2 = 0;
            else strcpy(d, ".");
        }
    }
    return d;
}

/* Picks the file of a folder: rank_0/meta.json's last_ckpt_file, else the only .ckpt. */
static char *pick_file(const char *dir) {
    char *r0 = path_join(dir, "rank_0");
    const char *where = dir_exists(r0) ? r0 : dir;
    int n = 0;
    char **v = list_ckpts(where, &n);
    char *out = NULL;
    char *meta = path_join(where, "meta.json");
    char *text = file_exists(meta) ? file_read_all(meta, NULL) : NULL;
    if (text) {
        cJSON *j = cJSON_Parse(text);
        const cJSON *f = j ? cJSON_GetObjectItemCaseSensitive(j, "last_ckpt_file") : NULL;
        if (f && cJSON_IsString(f) && !strchr(f->valuestring, '/')) out = path_join(where, f->valuestring);
        cJSON_Delete(j);
        free(text);
        if (out && !file_exists(out)) {
            err_set("%s names %s, which does not exist", meta, out);
            free(out);
            out = NULL;
            goto done;
        }
    }
    if (!out && n == 1) out = xstrdup(v[0]);
    else if (!out && n == 0) err_set("%s: no .ckpt file in it or in its rank_0/ folder", dir);
    else if (!out) {
        char list[600] = "";
        for (int i = 0; i < n && strlen(list) < 500; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", strrchr(v[i], '/') + 1);
        err_set("%s: %d .ckpt files (%s) and no meta.json naming the last one; name the file in load_checkpoint", where,
                n, list);
    }
done:
    free(meta);
    free_list(v, n);
    free(r0);
    return out;
}

static void add_owned(struct ckpt *ck, uint8_t *p) {
    ck->owned = xrealloc(ck->owned, sizeof *ck->owned * (size_t)(ck->n_owned + 1));
    ck->owned[ck->n_owned++] = p;
}

static int finish_tensor(struct ckpt *ck, struct ckpt_tensor *t, const struct raw_value *v) {
    const char *path = ck->path;
    if (v->is_map) {
        t->is_map = 1, t->dtype = -1;
        snprintf(t->type, sizeof t->type, "map");
        return 0;
    }
    snprintf(t->type, sizeof t->type, "%s", v->type);
    int size;
    if (type_info(v->type, &t->dtype, &size))
        return err_set("%s: tensor '%s' has unknown tensor_type \"%s\"", path, t->name, v->type);
    /* dims == [0] is a scalar for MindSpore's loader (and the shape of "str" entries) */
    int nd = v->n_dims;
    if (nd == 1 && v->dims[0] == 0) nd = 0;
    t->n_dims = nd;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (v->dims[i] > ((uint64_t)1 << 40)) return err_set("%s: tensor '%s' dim %d = %llu is too large", path, t->name, i, (unsigned long long)v->dims[i]);
        t->shape[i] = (int64_t)v->dims[i];
        if (t->shape[i] && numel > INT64_MAX / t->shape[i]) return err_set("%s: tensor '%s' has too many elements", path, t->name);
        numel *= t->shape[i];
    }
    t->numel = numel;
    if (size > 0 && (uint64_t)numel > (uint64_t)SIZE_MAX / (uint64_t)size) return err_set("%s: tensor '%s' is too large", path, t->name);
    if (size > 0 && (size_t)numel * (size_t)size != t->nbytes)
        return err_set("%s: tensor '%s' (%s, %lld elements) holds %zu content bytes, expected %zu", path, t->name, t->type,
                       (long long)numel, t->nbytes, (size_t)numel * (size_t)size);
    return 0;
}

int ckpt_open(struct ckpt **out, const char *path) {
    *out = NULL;
    char *file = dir_exists(path) ? pick_file(path) : xstrdup(path);
    if (!file) return -1;
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        err_set("%s: cannot open: %s", file, strerror(errno));
        free(file);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        err_set("%s: not a regular file", file);
        free(file);
        return -1;
    }
    struct ckpt *ck = xcalloc(1, sizeof *ck);
    ck->path = file;
    ck->size = (size_t)sb.st_size;
    if (ck->size) {
        ck->map = mmap(NULL, ck->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (ck->map == MAP_FAILED) {
            ck->map = NULL;
            close(fd);
            err_set("%s: cannot map: %s", file, strerror(errno));
            ckpt_close(ck);
            return -1;
        }
    }
    close(fd);
    const uint8_t *b = ck->map;
    size_t len = ck->size;
    if (len == 0) {
        err_set("%s: empty file, not a MindSpore checkpoint", file);
        goto fail;
    }
    /* crypto.h: block magics 0x7F3A5ED8 (AES-GCM), D9 (AES-CBC), DA (SM4-CBC), little-endian */
    if (len >= 4 && b[1] == 0x5e && b[2] == 0x3a && b[3] == 0x7f && (b[0] == 0xd8 || b[0] == 0xd9 || b[0] == 0xda)) {
        const char *mode = b[0] == 0xd8 ? "AES-GCM" : b[0] == 0xd9 ? "AES-CBC" : "SM4-CBC";
        err_set("%s: the checkpoint is encrypted (%s, saved with enc_key); csft has no key: decrypt it with MindSpore "
                "(load_checkpoint(..., dec_key=...) then save_checkpoint without enc_key) first",
                file, mode);
        goto fail;
    }
    if (b[0] != 0x0a) {
        err_set("%s: not a MindSpore checkpoint (first byte 0x%02x, expected 0x0a)", file, b[0]);
        goto fail;
    }
    if (len >= 17 && !memcmp(b + len - 17, "crc_num", 7)) {
        uint64_t want = 0;
        for (int i = 0; i < 10; i++) want = (want << 8) | b[len - 10 + i];
        len -= 17;
        uLong got = crc32(0L, Z_NULL, 0);
        for (size_t off = 0; off < len;) {
            size_t chunk = len - off > (1u << 30) ? (1u << 30) : len - off;
            got = crc32(got, b + off, (uInt)chunk);
            off += chunk;
        }
        if (got != want) {
            err_set("%s: CRC mismatch (file says %llu, content gives %lu): the file is damaged", file,
                    (unsigned long long)want, (unsigned long)got);
            goto fail;
        }
        ck->has_crc = 1;
    }
    struct rd r = {b, b + len, b};
    int cap = 0;
    while (r.p < r.end) {
        size_t off = (size_t)(r.p - b);
        uint64_t key;
        struct rd sub;
        if (rd_varint(&r, &key)) {
            err_set("%s: truncated or damaged at byte %zu (after %d entries)", file, off, ck->n);
            goto fail;
        }
        if (key != ((1u << 3) | 2)) {
            if (rd_skip(&r, (int)(key & 7))) {
                err_set("%s: damaged field at byte %zu", file, off);
                goto fail;
            }
            continue;
        }
        uint64_t vlen;
        const uint8_t *save = r.p;
        if (rd_varint(&r, &vlen)) {
            err_set("%s: truncated at byte %zu (after %d entries)", file, off, ck->n);
            goto fail;
        }
        if (vlen > (uint64_t)(r.end - r.p)) {
            /* name the entry if its tag is readable */
            struct rd part = {r.p, r.end, b};
            char nm[200] = "?";
            uint64_t k2;
            if (!rd_varint(&part, &k2) && k2 == 10 && !rd_len(&part, &sub)) {
                snprintf(nm, sizeof nm, "%.*s", (int)(sub.end - sub.p < 150 ? sub.end - sub.p : 150), sub.p);
            }
            err_set("%s: truncated: entry %d ('%s') at byte %zu needs %llu bytes, only %zu are left (file of %zu bytes)",
                    file, ck->n + 1, nm, off, (unsigned long long)vlen, (size_t)(r.end - r.p), ck->size);
            goto fail;
        }
        r.p = save;
        if (rd_len(&r, &sub)) {
            err_set("%s: damaged at byte %zu", file, off);
            goto fail;
        }
        struct raw_value v;
        if (parse_value(sub, &v, file, off)) goto fail;
        struct ckpt_tensor *prev = ck->n ? &ck->t[ck->n - 1] : NULL;
        if (prev && !prev->is_map && !v.is_map && strlen(prev->name) == v.tag_len && !memcmp(prev->name, v.tag, v.tag_len)) {
            /* a further slice of the previous tensor */
            if (strcmp(prev->type, v.type)) {
                err_set("%s: slices of '%s' disagree on tensor_type (%s vs %s)", file, prev->name, prev->type, v.type);
                goto fail;
            }
            uint8_t *cat = xmalloc(prev->nbytes + v.content_len + 1);
            if (prev->nbytes) memcpy(cat, prev->data, prev->nbytes); /* an empty slice may have no data */
            if (v.content_len) memcpy(cat + prev->nbytes, v.content, v.content_len);
            if (prev->n_messages > 1) { /* replace the previous owned concatenation */
                free(ck->owned[ck->n_owned - 1]);
                ck->owned[ck->n_owned - 1] = cat;
            } else {
                add_owned(ck, cat);
            }
            prev->data = cat;
            prev->nbytes += v.content_len;
            prev->n_messages++;
            continue;
        }
        if (ck->n == cap) ck->t = xrealloc(ck->t, sizeof *ck->t * (size_t)(cap = cap ? 2 * cap : 64));
        struct ckpt_tensor *t = &ck->t[ck->n++];
        memset(t, 0, sizeof *t);
        t->name = xmalloc(v.tag_len + 1);
        if (v.tag_len) memcpy(t->name, v.tag, v.tag_len); /* (no tag: NULL) */
        t->name[v.tag_len] = 0;
        t->data = v.content;
        t->nbytes = v.content_len;
        t->n_messages = 1;
        t->is_map = v.is_map;
        snprintf(t->type, sizeof t->type, "%s", v.type);
        /* keep the dims until the tensor is complete */
        t->n_dims = v.n_dims;
        for (int i = 0; i < v.n_dims && i < CKPT_MAX_DIMS; i++) t->shape[i] = (int64_t)(v.dims[i] & 0x7fffffffffffffffull);
        if (v.n_dims > CKPT_MAX_DIMS) {
            err_set("%s: tensor '%s' has more than %d dims", file, t->name, CKPT_MAX_DIMS);
            goto fail;
        }
        for (int i = 0; i < v.n_dims; i++)
            if (v.dims[i] > ((uint64_t)1 << 40)) {
                err_set("%s: tensor '%s' dim %d = %llu is too large", file, t->name, i, (unsigned long long)v.dims[i]);
                goto fail;
            }
    }
    if (ck->n == 0) {
        err_set("%s: no entries", file);
        goto fail;
    }
    /* sizes and element counts, now that every slice is in */
    for (int i = 0; i < ck->n; i++) {
        struct ckpt_tensor *t = &ck->t[i];
        struct raw_value v;
        memset(&v, 0, sizeof v);
        v.is_map = t->is_map;
        v.n_dims = t->n_dims;
        for (int d = 0; d < t->n_dims; d++) v.dims[d] = (uint64_t)t->shape[d];
        snprintf(v.type, sizeof v.type, "%s", t->type);
        if (finish_tensor(ck, t, &v)) goto fail;
    }
    *out = ck;
    return 0;
fail:
    ckpt_close(ck);
    return -1;
}

void ckpt_close(struct ckpt *ck) {
    if (!ck) return;
    for (int i = 0; i < ck->n; i++) free(ck->t[i].name);
    free(ck->t);
    for (int i = 0; i < ck->n_owned; i++) free(ck->owned[i]);
    free(ck->owned);
    if (ck->map) munmap(ck->map, ck->size);
    free(ck->path);
    free(ck);
}

const struct ckpt_tensor *ckpt_find(const struct ckpt *ck, const char *name) {
    for (int i = 0; i < ck->n; i++)
        if (!strcmp(ck->t[i].name, name)) return &ck->t[i];
    return NULL;
}

int ckpt_tensor_f32(const struct ckpt *ck, const struct ckpt_tensor *t, float *dst) {
    if (t->dtype != DTYPE_F32 && t->dtype != DTYPE_BF16 && t->dtype != DTYPE_F16)
        return err_set("%s: tensor '%s' is %s, expected Float32, BFloat16 or Float16", ck->path, t->name, t->type);
    if (t->nbytes == 0) return 0; /* an empty tensor (its data pointer may be NULL) */
    if (t->dtype == DTYPE_F32) return memcpy(dst, t->data, t->nbytes), 0;
    size_t es = dtype_size((enum dtype)t->dtype);
    if ((uintptr_t)t->data % es == 0) return dtype_to_f32(dst, t->data, (enum dtype)t->dtype, t->numel);
    /* the file places contents at any byte offset: convert from an aligned copy */
    void *tmp = xmalloc(t->nbytes);
    memcpy(tmp, t->data, t->nbytes);
    int rc = dtype_to_f32(dst, tmp, (enum dtype)t->dtype, t->numel);
    free(tmp);
    return rc;
}

/* ---- writer ---- */

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

struct wr {
    FILE *f;
    uLong crc;
    int err;
};

static void wr_put(struct wr *w, const void *p, size_t n) {
    if (!n || w->err) return;
    if (fwrite(p, 1, n, w->f) != n) w->err = 1;
    w->crc = crc32(w->crc, p, (uInt)n); /* n < 4 GiB per call: slices are <= 512 MiB */
}

/* One Checkpoint { value { tag, tensor { dims, type, content } } } message. */
static void write_value(struct wr *w, const struct ckpt_entry *e, const uint8_t *data, size_t nbytes) {
    size_t tag_len = strlen(e->name), type_len = strlen(e->type);
    uint64_t tensor_len = 0;
    for (int d = 0; d < e->n_dims; d++) tensor_len += 1 + varint_len((uint64_t)e->shape[d]);
    tensor_len += 1 + varint_len(type_len) + type_len + 1 + varint_len(nbytes) + nbytes;
    uint64_t value_len = 1 + varint_len(tag_len) + tag_len + 1 + varint_len(tensor_len) + tensor_len;
    uint8_t h[64];
    size_t k = 0;
    h[k++] = 0x0a, k += put_varint(h + k, value_len);
    h[k++] = 0x0a, k += put_varint(h + k, tag_len);
    wr_put(w, h, k);
    wr_put(w, e->name, tag_len);
    k = 0;
    h[k++] = 0x12, k += put_varint(h + k, tensor_len);
    wr_put(w, h, k);
    for (int d = 0; d < e->n_dims; d++) {
        k = 0;
        h[k++] = 0x08, k += put_varint(h + k, (uint64_t)e->shape[d]);
        wr_put(w, h, k);
    }
    k = 0;
    h[k++] = 0x12, k += put_varint(h + k, type_len);
    wr_put(w, h, k);
    wr_put(w, e->type, type_len);
    k = 0;
    h[k++] = 0x1a, k += put_varint(h + k, nbytes);
    wr_put(w, h, k);
    wr_put(w, data, nbytes);
}

int ckpt_save(const char *path, const struct ckpt_entry *e, int n, int crc) {
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    struct wr w = {fopen(tmp, "wb"), crc32(0L, Z_NULL, 0), 0};
    if (!w.f) {
        err_set("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        size_t nb = e[i].nbytes;
        int64_t rows = e[i].n_dims ? e[i].shape[0] : 1;
        if (nb <= SLICE_BYTES || rows < 2) {
            write_value(&w, &e[i], e[i].data, nb);
            continue;
        }
        /* np.array_split(arr, ceil(nbytes / SLICE)) along axis 0 */
        int64_t pieces = (int64_t)((nb + SLICE_BYTES - 1) / SLICE_BYTES);
        if (pieces > rows) pieces = rows;
        size_t row_bytes = nb / (size_t)rows;
        int64_t base = rows / pieces, extra = rows % pieces, r0 = 0;
        for (int64_t p = 0; p < pieces; p++) {
            int64_t nr = base + (p < extra);
            write_value(&w, &e[i], (const uint8_t *)e[i].data + (size_t)r0 * row_bytes, (size_t)nr * row_bytes);
            r0 += nr;
        }
    }
    if (crc) {
        uint8_t tail[17];
        memcpy(tail, "crc_num", 7);
        uint64_t c = w.crc;
        for (int i = 9; i >= 0; i--) tail[7 + i] = (uint8_t)(c & 0xff), c >>= 8;
        if (fwrite(tail, 1, 17, w.f) != 17) w.err = 1;
    }
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) w.err = 1;
    if (fclose(w.f) != 0) w.err = 1;
    if (w.err) {
        err_set("%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    int rc = file_commit(tmp, path);
    free(tmp);
    return rc;
}
