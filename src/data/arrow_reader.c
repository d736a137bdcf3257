/* arrow_reader: see arrow_reader.h. Format: Arrow columnar spec, "IPC streaming format":
 * each message is [0xFFFFFFFF] int32 metadata length, a flatbuffer Message (Schema.fbs /
 * Message.fbs), then the body buffers. Flatbuffers are read by hand with bounds checks on
 * every access (Debian has no C flatbuffers/Arrow library); every record batch's nodes,
 * buffers and offsets are validated when it is loaded, so row conversion needs no checks. */
#include "data/arrow_reader.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

#include "core/dtype.h"
#include "core/err.h"
#include "core/util.h"
#include "data/utf8_check.h"
#include "core/nulstr.h"

/* ---- flatbuffer table reader ------------------------------------------------------------ */

struct fb {
    const uint8_t *b;
    size_t n;
    int bad; /* set by any out-of-bounds access; checked after parsing a message */
};

struct fbt { /* a table: absolute position, its vtable and their sizes */
    struct fb *fb;
    size_t pos, vt;
    unsigned vt_len, t_len;
    int ok;
};

static uint64_t rd_le(const uint8_t *p, int size) {
    uint64_t v = 0;
    for (int k = size - 1; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

static int fbt_at(struct fb *fb, size_t pos, struct fbt *t) {
    memset(t, 0, sizeof *t);
    t->fb = fb;
    if (pos >= fb->n || fb->n - pos < 4) return fb->bad = 1, 0;
    int64_t vt = (int64_t)pos - (int32_t)(uint32_t)rd_le(fb->b + pos, 4);
    if (vt < 0 || (uint64_t)vt + 4 > fb->n) return fb->bad = 1, 0;
    t->vt_len = (unsigned)rd_le(fb->b + vt, 2);
    t->t_len = (unsigned)rd_le(fb->b + vt + 2, 2);
    if (t->vt_len < 4 || (uint64_t)vt + t->vt_len > fb->n || t->t_len < 4 || pos + t->t_len > fb->n)
        return fb->bad = 1, 0;
    t->pos = pos;
    t->vt = (size_t)vt;
    t->ok = 1;
    return 1;
}

/* Absolute position of field `slot` (size bytes), or 0 if absent. */
static size_t fbt_field(const struct fbt *t, int slot, size_t size) {
    if (!t->ok) return 0;
    size_t o = 4 + 2 * (size_t)slot;
    if (o + 2 > t->vt_len) return 0;
    unsigned off = (unsigned)rd_le(t->fb->b + t->vt + o, 2);
    if (!off) return 0;
    if (off + size > t->t_len) return t->fb->bad = 1, 0;
    return t->pos + off;
}

static int64_t fbt_int(const struct fbt *t, int slot, int size, int64_t def) {
    size_t p = fbt_field(t, slot, (size_t)size);
    if (!p) return def;
    uint64_t v = rd_le(t->fb->b + p, size);
    if (size < 8 && (v >> (8 * size - 1)) & 1) v |= ~0ull << (8 * size); /* sign-extend */
    return (int64_t)v;
}

/* Follows the uoffset stored at absolute position p. */
static size_t fb_deref(struct fb *fb, size_t p) {
    if (p + 4 > fb->n) return fb->bad = 1, 0;
    size_t q = p + (size_t)rd_le(fb->b + p, 4);
    if (q >= fb->n) return fb->bad = 1, 0;
    return q;
}

static int fbt_table(const struct fbt *t, int slot, struct fbt *out) {
    memset(out, 0, sizeof *out);
    size_t p = fbt_field(t, slot, 4);
    if (!p) return 0;
    size_t q = fb_deref(t->fb, p);
    return q ? fbt_at(t->fb, q, out) : 0;
}

/* A vector field: *first = position of element 0, *count elements of elem bytes each. */
static int fbt_vector(const struct fbt *t, int slot, size_t elem, size_t *first, uint32_t *count) {
    *first = 0;
    *count = 0;
    size_t p = fbt_field(t, slot, 4);
    if (!p) return 0;
    size_t q = fb_deref(t->fb, p);
    if (!q || q + 4 > t->fb->n) return t->fb->bad = 1, 0;
    uint32_t n = (uint32_t)rd_le(t->fb->b + q, 4);
    if ((uint64_t)n * elem > t->fb->n - q - 4) return t->fb->bad = 1, 0;
    *first = q + 4;
    *count = n;
    return 1;
}

/* Element k of a vector of tables. */
static int fb_vector_table(struct fb *fb, size_t first, uint32_t k, struct fbt *out) {
    size_t q = fb_deref(fb, first + 4 * (size_t)k);
    return q ? fbt_at(fb, q, out) : (memset(out, 0, sizeof *out), 0);
}

/* ---- schema -------------------------------------------------------------------------------- */

enum {
    AT_NULL = 1,
    AT_INT = 2,
    AT_FLOAT = 3,
    AT_BINARY = 4,
    AT_UTF8 = 5,
    AT_BOOL = 6,
    AT_LIST = 12,
    AT_STRUCT = 13,
    AT_FIXED_LIST = 16,
    AT_LARGE_BINARY = 19,
    AT_LARGE_UTF8 = 20,
    AT_LARGE_LIST = 21,
};
enum { MSG_SCHEMA = 1, MSG_DICTIONARY = 2, MSG_RECORD_BATCH = 3 };

static const char *type_name(int t) {
    static const char *names[] = {"NONE",          "Null",      "Int",           "FloatingPoint",
                                  "Binary",        "Utf8",      "Bool",          "Decimal",
                                  "Date",          "Time",      "Timestamp",     "Interval",
                                  "List",          "Struct",    "Union",         "FixedSizeBinary",
                                  "FixedSizeList", "Map",       "Duration",      "LargeBinary",
                                  "LargeUtf8",     "LargeList", "RunEndEncoded", "BinaryView",
                                  "Utf8View",      "ListView",  "LargeListView"};
    return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

struct afield {
    char *name;
    int type, bit_width, is_signed, precision;
    int64_t list_size;
    int n_children;
    struct afield *children;
};

/* One array of a record batch (a node and its buffers), shaped like the field tree. */
struct acol {
    const struct afield *f;
    int64_t length, null_count;
    const uint8_t *validity; /* NULL when null_count == 0 */
    const uint8_t *offsets;  /* int32 or int64 (Large*) */
    const uint8_t *data;
    size_t data_len;
    struct acol *children;
};

struct arrow_reader {
    char *path;
    FILE *f;
    uint64_t pos, stop; /* stop: end of the stream (the footer start in the file format) */
    int skip_bad, done;
    int file_format; /* IPC file: messages are read at the footer's blocks */
    uint64_t *blocks;
    int n_blocks, i_block;
    uint8_t *meta, *body;
    size_t meta_cap, body_cap;
    struct afield root; /* a struct whose children are the columns */
    struct acol root_col;
    int n_nodes, n_buffers;
    uint8_t **decomp; /* zstd-decompressed buffers of the current batch */
    int n_decomp;
    int64_t batch_len, batch_i, row, skipped;
    char *scratch;
    size_t scratch_cap;
    ZSTD_DCtx *dctx;
};

static void field_free(struct afield *f) {
    for (int i = 0; i < f->n_children; i++)
        field_free(&f->children[i]);
    free(f->children);
    free(f->name);
}

static void col_free(struct acol *c) {
    if (!c->f) return;
    for (int i = 0; i < c->f->n_children; i++)
        col_free(&c->children[i]);
    free(c->children);
}

static void col_init(struct acol *c, const struct afield *f) {
    c->f = f;
    c->children = f->n_children ? xcalloc((size_t)f->n_children, sizeof *c->children) : NULL;
    for (int i = 0; i < f->n_children; i++)
        col_init(&c->children[i], &f->children[i]);
}

static int field_parse(struct arrow_reader *r, struct fb *fb, const struct fbt *t, struct afield *f,
                       const char *parent, int depth) {
    size_t sp;
    uint32_t sn;
    if (fbt_vector(t, 0, 1, &sp, &sn)) {
        f->name = xmalloc(sn + 1);
        memcpy(f->name, fb->b + sp, sn);
        f->name[sn] = 0;
    } else
        f->name = xstrdup("");
    char *path = parent ? xasprintf("%s.%s", parent, f->name) : xstrdup(f->name);
    int rc = -1;
    f->type = (int)fbt_int(t, 2, 1, 0);
    struct fbt tt, dict;
    fbt_table(t, 3, &tt);
    if (depth > 64) {
        err_set("%s: column '%s': nesting deeper than 64 levels", r->path, path);
        goto out;
    }
    if (fbt_table(t, 4, &dict)) {
        err_set("%s: column '%s': dictionary-encoded Arrow columns are not supported", r->path, path);
        goto out;
    }
    switch (f->type) {
    case AT_INT:
        f->bit_width = (int)fbt_int(&tt, 0, 4, 0);
        f->is_signed = (int)fbt_int(&tt, 1, 1, 0);
        if (f->bit_width != 8 && f->bit_width != 16 && f->bit_width != 32 && f->bit_width != 64) {
            err_set("%s: column '%s': Int of %d bits", r->path, path, f->bit_width);
            goto out;
        }
        break;
    case AT_FLOAT:
        f->precision = (int)fbt_int(&tt, 0, 2, 0);
        if (f->precision < 0 || f->precision > 2) {
            err_set("%s: column '%s': FloatingPoint precision %d", r->path, path, f->precision);
            goto out;
        }
        break;
    case AT_FIXED_LIST:
        f->list_size = fbt_int(&tt, 0, 4, 0);
        if (f->list_size < 0) {
            err_set("%s: column '%s': FixedSizeList of size %lld", r->path, path, (long long)f->list_size);
            goto out;
        }
        break;
    case AT_NULL:
    case AT_UTF8:
    case AT_LARGE_UTF8:
    case AT_BOOL:
    case AT_LIST:
    case AT_LARGE_LIST:
    case AT_STRUCT: break;
    case AT_BINARY:
    case AT_LARGE_BINARY:
        err_set("%s: column '%s': Arrow type %s (raw bytes, e.g. images) is not supported by csft's readers",
                r->path, path, type_name(f->type));
        goto out;
    default:
        err_set("%s: column '%s': Arrow type %s (%d) is not supported", r->path, path, type_name(f->type),
                f->type);
        goto out;
    }
    size_t cp;
    uint32_t cn;
    fbt_vector(t, 5, 4, &cp, &cn);
    int want = f->type == AT_STRUCT
                   ? -1
                   : (f->type == AT_LIST || f->type == AT_LARGE_LIST || f->type == AT_FIXED_LIST);
    if (want >= 0 && (int64_t)cn != want) {
        err_set("%s: column '%s': Arrow type %s with %u children", r->path, path, type_name(f->type), cn);
        goto out;
    }
    f->n_children = (int)cn;
    f->children = cn ? xcalloc(cn, sizeof *f->children) : NULL;
    r->n_nodes++;
    r->n_buffers += f->type == AT_NULL                                 ? 0
                    : f->type == AT_UTF8 || f->type == AT_LARGE_UTF8   ? 3
                    : f->type == AT_STRUCT || f->type == AT_FIXED_LIST ? 1
                                                                       : 2;
    for (uint32_t k = 0; k < cn; k++) {
        struct fbt ct;
        fb_vector_table(fb, cp, k, &ct);
        if (fb->bad) break;
        if (field_parse(r, fb, &ct, &f->children[k], path, depth + 1)) goto out;
    }
    rc = 0;
out:
    free(path);
    return rc;
}

/* ---- reading messages ----------------------------------------------------------------------- */

static int read_exact(struct arrow_reader *r, void *dst, size_t n, const char *what) {
    if (n > r->stop - r->pos || fread(dst, 1, n, r->f) != n) {
        if (ferror(r->f))
            return err_set("%s: read error at byte %llu: %s", r->path, (unsigned long long)r->pos,
                           strerror(errno));
        return err_set("%s: truncated: %s at byte %llu needs %zu bytes, the stream has %llu left", r->path,
                       what, (unsigned long long)r->pos, n, (unsigned long long)(r->stop - r->pos));
    }
    r->pos += n;
    return 0;
}

/* Reads the next message; returns 1 with *msg (the Message table) and the body loaded, 0 at
 * the end of the stream, -1 on error. */
static int read_message(struct arrow_reader *r, struct fb *fb, struct fbt *msg, int *type) {
    if (r->pos == r->stop) return 0; /* no end-of-stream marker: accepted, as arrow does */
    uint64_t at = r->pos;
    uint8_t w[4];
    if (read_exact(r, w, 4, "a message length")) return -1;
    uint32_t len = (uint32_t)rd_le(w, 4);
    if (len == 0xffffffffu) {
        if (r->pos == r->stop) return 0;
        if (read_exact(r, w, 4, "a message length")) return -1;
        len = (uint32_t)rd_le(w, 4);
    }
    if (len == 0) return 0; /* end-of-stream marker */
    if (len > r->meta_cap) {
        if (len > r->stop - r->pos)
            return err_set(
                "%s: truncated: message at byte %llu claims %u metadata bytes, the stream has %llu left",
                r->path, (unsigned long long)at, len, (unsigned long long)(r->stop - r->pos));
        r->meta = xrealloc(r->meta, len);
        r->meta_cap = len;
    }
    if (read_exact(r, r->meta, len, "message metadata")) return -1;
    fb->b = r->meta;
    fb->n = len;
    fb->bad = 0;
    size_t root = len >= 4 ? (size_t)rd_le(r->meta, 4) : 0;
    fbt_at(fb, root, msg);
    *type = (int)fbt_int(msg, 1, 1, 0);
    int64_t body_len = fbt_int(msg, 3, 8, 0);
    if (fb->bad || !msg->ok)
        return err_set("%s: corrupt Arrow message at byte %llu", r->path, (unsigned long long)at);
    if (body_len < 0 || (uint64_t)body_len > r->stop - r->pos)
        return err_set("%s: truncated: message at byte %llu has a %lld-byte body, the stream has %llu left",
                       r->path, (unsigned long long)at, (long long)body_len,
                       (unsigned long long)(r->stop - r->pos));
    if ((size_t)body_len > r->body_cap) {
        r->body = xrealloc(r->body, (size_t)body_len);
        r->body_cap = (size_t)body_len;
    }
    if (read_exact(r, r->body, (size_t)body_len, "a message body")) return -1;
    return 1;
}

/* ---- record batches ------------------------------------------------------------------------- */

struct batch_ctx {
    struct arrow_reader *r;
    struct fb *fb;
    size_t nodes, bufs;       /* vector positions */
    int node_i, buf_i, codec; /* codec: -1 none, 1 zstd */
    size_t body_len;
};

static void free_decomp(struct arrow_reader *r) {
    for (int i = 0; i < r->n_decomp; i++)
        free(r->decomp[i]);
    r->n_decomp = 0;
}

static int get_buffer(struct batch_ctx *b, const char *col, const uint8_t **p, size_t *n) {
    struct arrow_reader *r = b->r;
    size_t q = b->bufs + 16 * (size_t)b->buf_i++;
    int64_t off = (int64_t)rd_le(b->fb->b + q, 8), len = (int64_t)rd_le(b->fb->b + q + 8, 8);
    if (off < 0 || len < 0 || (uint64_t)off > b->body_len || (uint64_t)len > b->body_len - (uint64_t)off)
        return err_set("%s: column '%s': buffer [%lld, +%lld) outside the %zu-byte record batch body",
                       r->path, col, (long long)off, (long long)len, b->body_len);
    *p = r->body + off;
    *n = (size_t)len;
    if (b->codec < 0 || len == 0) return 0;
    /* Compressed buffer: int64 uncompressed length (-1: stored as is), then a zstd frame.
     * The length is only a size hint: apache-arrow JS (21.x) writes the compressed length
     * there, so the frame is decompressed as a stream; the batch's size checks follow. */
    if (len < 8)
        return err_set("%s: column '%s': compressed buffer of %lld bytes", r->path, col, (long long)len);
    int64_t raw = (int64_t)rd_le(*p, 8);
    if (raw == -1) {
        *p += 8;
        *n -= 8;
        return 0;
    }
    const int64_t max_size = (int64_t)1 << 36;
    unsigned long long fr = ZSTD_getFrameContentSize(*p + 8, *n - 8);
    if (raw < 0 || fr == ZSTD_CONTENTSIZE_ERROR ||
        (fr != ZSTD_CONTENTSIZE_UNKNOWN && fr > (uint64_t)max_size))
        return err_set("%s: column '%s': not a zstd buffer (length prefix %lld)", r->path, col,
                       (long long)raw);
    size_t cap = fr != ZSTD_CONTENTSIZE_UNKNOWN ? (size_t)fr : (size_t)(raw > 2 * len ? raw : 2 * len);
    uint8_t *out = xmalloc(cap ? cap : 1);
    if (!r->dctx) r->dctx = ZSTD_createDCtx();
    CHECK(r->dctx, "ZSTD_createDCtx");
    ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {*p + 8, *n - 8, 0};
    ZSTD_outBuffer o = {out, cap, 0};
    for (;;) {
        size_t ret = ZSTD_decompressStream(r->dctx, &o, &in);
        if (ZSTD_isError(ret)) {
            free(out);
            return err_set("%s: column '%s': corrupt zstd buffer: %s", r->path, col, ZSTD_getErrorName(ret));
        }
        if (ret == 0) break; /* frame complete */
        if (in.pos == in.size && o.pos < o.size) {
            free(out);
            return err_set("%s: column '%s': truncated zstd buffer", r->path, col);
        }
        if (o.pos == o.size) {
            if ((int64_t)o.size >= max_size) {
                free(out);
                return err_set("%s: column '%s': zstd buffer expands past %lld bytes", r->path, col,
                               (long long)max_size);
            }
            o.size *= 2;
            o.dst = out = xrealloc(out, o.size);
        }
    }
    r->decomp = xrealloc(r->decomp, (size_t)(r->n_decomp + 1) * sizeof *r->decomp);
    r->decomp[r->n_decomp++] = out;
    *p = out;
    *n = o.pos;
    return 0;
}

/* Checks that offsets[0..n] are non-decreasing and within [0, limit]. */
static int check_offsets(struct arrow_reader *r, const char *col, const uint8_t *o, int w, int64_t n,
                         uint64_t limit) {
    int64_t prev = 0;
    for (int64_t i = 0; i <= n; i++) {
        int64_t v = w == 4 ? (int32_t)(uint32_t)rd_le(o + 4 * i, 4) : (int64_t)rd_le(o + 8 * i, 8);
        if (v < prev || (uint64_t)v > limit)
            return err_set("%s: column '%s': offset %lld at index %lld is outside [%lld, %llu]", r->path, col,
                           (long long)v, (long long)i, (long long)prev, (unsigned long long)limit);
        prev = v;
    }
    return 0;
}

static int batch_assign(struct batch_ctx *b, struct acol *c, const char *parent) {
    struct arrow_reader *r = b->r;
    const struct afield *f = c->f;
    char *col = parent ? xasprintf("%s.%s", parent, f->name) : xstrdup(f->name);
    int rc = -1;
    size_t q = b->nodes + 16 * (size_t)b->node_i++;
    c->length = (int64_t)rd_le(b->fb->b + q, 8);
    c->null_count = (int64_t)rd_le(b->fb->b + q + 8, 8);
    c->validity = c->offsets = c->data = NULL;
    c->data_len = 0;
    if (c->length < 0 || c->length > ((int64_t)1 << 40) || c->null_count < 0 || c->null_count > c->length) {
        err_set("%s: column '%s': bad node (length %lld, null count %lld)", r->path, col,
                (long long)c->length, (long long)c->null_count);
        goto out;
    }
    const uint8_t *p;
    size_t n;
    if (f->type == AT_NULL) {
        c->null_count = c->length;
        rc = 0;
        goto out;
    }
    if (get_buffer(b, col, &p, &n)) goto out;
    if (c->null_count > 0) {
        if (n < (size_t)(c->length + 7) / 8) {
            err_set("%s: column '%s': validity bitmap of %zu bytes for %lld values", r->path, col, n,
                    (long long)c->length);
            goto out;
        }
        c->validity = p;
    }
    int w = f->type == AT_LARGE_UTF8 || f->type == AT_LARGE_LIST ? 8 : 4;
    if (f->type == AT_UTF8 || f->type == AT_LARGE_UTF8 || f->type == AT_LIST || f->type == AT_LARGE_LIST) {
        if (get_buffer(b, col, &p, &n)) goto out;
        if (c->length > 0 && n < (size_t)(c->length + 1) * (size_t)w) {
            err_set("%s: column '%s': offsets buffer of %zu bytes for %lld values", r->path, col, n,
                    (long long)c->length);
            goto out;
        }
        c->offsets = p;
    }
    if (f->type == AT_INT || f->type == AT_FLOAT || f->type == AT_BOOL || f->type == AT_UTF8 ||
        f->type == AT_LARGE_UTF8) {
        if (get_buffer(b, col, &p, &n)) goto out;
        c->data = p;
        c->data_len = n;
        size_t need = f->type == AT_INT     ? (size_t)c->length * (size_t)(f->bit_width / 8)
                      : f->type == AT_FLOAT ? (size_t)c->length * (f->precision == 0   ? 2u
                                                                   : f->precision == 1 ? 4u
                                                                                       : 8u)
                      : f->type == AT_BOOL  ? (size_t)(c->length + 7) / 8
                                            : 0;
        if (n < need) {
            err_set("%s: column '%s': data buffer of %zu bytes for %lld values", r->path, col, n,
                    (long long)c->length);
            goto out;
        }
    }
    for (int k = 0; k < f->n_children; k++)
        if (batch_assign(b, &c->children[k], col)) goto out;
    if (c->length > 0 && c->offsets) {
        uint64_t limit =
            f->type == AT_UTF8 || f->type == AT_LARGE_UTF8 ? c->data_len : (uint64_t)c->children[0].length;
        if (check_offsets(r, col, c->offsets, w, c->length, limit)) goto out;
    }
    for (int k = 0; k < f->n_children; k++) {
        int64_t need = f->type == AT_STRUCT       ? c->length
                       : f->type == AT_FIXED_LIST ? c->length * f->list_size
                                                  : 0;
        if (c->children[k].length < need) {
            err_set("%s: column '%s': child '%s' has %lld values, needs %lld", r->path, col,
                    f->children[k].name, (long long)c->children[k].length, (long long)need);
            goto out;
        }
    }
    rc = 0;
out:
    free(col);
    return rc;
}

static int batch_load(struct arrow_reader *r, struct fb *fb, const struct fbt *msg, size_t body_len) {
    struct fbt rb, comp;
    free_decomp(r);
    r->batch_len = r->batch_i = 0;
    fbt_table(msg, 2, &rb);
    struct batch_ctx b = {.r = r, .fb = fb, .codec = -1, .body_len = body_len};
    int64_t length = fbt_int(&rb, 0, 8, 0);
    uint32_t n_nodes, n_bufs;
    fbt_vector(&rb, 1, 16, &b.nodes, &n_nodes);
    fbt_vector(&rb, 2, 16, &b.bufs, &n_bufs);
    if (fbt_table(&rb, 3, &comp)) {
        int codec = (int)fbt_int(&comp, 0, 1, 0), method = (int)fbt_int(&comp, 1, 1, 0);
        if (codec != 1 || method != 0)
            return err_set("%s: record batch at row %lld: %s body compression is not supported (csft reads "
                           "uncompressed or ZSTD Arrow files)",
                           r->path, (long long)r->row, codec == 0 ? "LZ4_FRAME" : "unknown");
        b.codec = 1;
    }
    if (fb->bad || !rb.ok)
        return err_set("%s: corrupt record batch message after row %lld", r->path, (long long)r->row);
    if (length < 0 || (int)n_nodes != r->n_nodes || (int)n_bufs != r->n_buffers)
        return err_set(
            "%s: record batch at row %lld has %u field nodes and %u buffers, the schema needs %d and %d",
            r->path, (long long)r->row, n_nodes, n_bufs, r->n_nodes, r->n_buffers);
    for (int k = 0; k < r->root.n_children; k++) {
        struct acol *c = &r->root_col.children[k];
        if (batch_assign(&b, c, NULL)) return -1;
        if (c->length < length)
            return err_set("%s: column '%s' has %lld values in a record batch of %lld rows", r->path,
                           c->f->name, (long long)c->length, (long long)length);
    }
    r->batch_len = length;
    return 0;
}

/* ---- rows to JSON --------------------------------------------------------------------------- */

static int is_valid(const struct acol *c, int64_t i) {
    if (c->f->type == AT_NULL) return 0;
    return !c->validity || (c->validity[i >> 3] >> (i & 7)) & 1;
}

static int64_t offset_at(const struct acol *c, int64_t i) {
    int w = c->f->type == AT_LARGE_UTF8 || c->f->type == AT_LARGE_LIST ? 8 : 4;
    return w == 4 ? (int32_t)(uint32_t)rd_le(c->offsets + 4 * i, 4) : (int64_t)rd_le(c->offsets + 8 * i, 8);
}

/* Value i of c as JSON; NULL with err set when the row is bad (invalid text). */
static cJSON *col_value(struct arrow_reader *r, const struct acol *c, int64_t i, const char *top) {
    const struct afield *f = c->f;
    if (!is_valid(c, i)) return cJSON_CreateNull();
    switch (f->type) {
    case AT_INT: {
        int bw = f->bit_width / 8;
        uint64_t u = rd_le(c->data + (size_t)i * (size_t)bw, bw);
        double v;
        if (f->is_signed) {
            if (bw < 8 && (u >> (8 * bw - 1)) & 1) u |= ~0ull << (8 * bw);
            v = (double)(int64_t)u;
        } else
            v = (double)u;
        return cJSON_CreateNumber(v);
    }
    case AT_FLOAT: {
        if (f->precision == 0)
            return cJSON_CreateNumber(f16_to_f32((uint16_t)rd_le(c->data + 2 * (size_t)i, 2)));
        if (f->precision == 1) {
            uint32_t u = (uint32_t)rd_le(c->data + 4 * (size_t)i, 4);
            float x;
            memcpy(&x, &u, 4);
            return cJSON_CreateNumber(x);
        }
        uint64_t u = rd_le(c->data + 8 * (size_t)i, 8);
        double x;
        memcpy(&x, &u, 8);
        return cJSON_CreateNumber(x);
    }
    case AT_BOOL: return cJSON_CreateBool((c->data[i >> 3] >> (i & 7)) & 1);
    case AT_UTF8:
    case AT_LARGE_UTF8: {
        int64_t a = offset_at(c, i), e = offset_at(c, i + 1);
        size_t n = (size_t)(e - a);
        const char *s = (const char *)c->data + a;
        size_t bad = utf8_check(s, n);
        if (bad < n) {
            err_set("%s: row %lld, column '%s': invalid UTF-8 (byte 0x%02x at byte %zu of the string)",
                    r->path, (long long)r->row, top, (unsigned char)s[bad], bad);
            return NULL;
        }
        return nul_create_string(s, n); /* NULs carried as C0 80 (nulstr.h) */
    }
    case AT_LIST:
    case AT_LARGE_LIST:
    case AT_FIXED_LIST: {
        int64_t a, e;
        if (f->type == AT_FIXED_LIST)
            a = i * f->list_size, e = a + f->list_size;
        else
            a = offset_at(c, i), e = offset_at(c, i + 1);
        cJSON *arr = cJSON_CreateArray();
        for (int64_t k = a; k < e; k++) {
            cJSON *v = col_value(r, &c->children[0], k, top);
            if (!v) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, v);
        }
        return arr;
    }
    case AT_STRUCT: {
        cJSON *obj = cJSON_CreateObject();
        for (int k = 0; k < f->n_children; k++) {
            cJSON *v = col_value(r, &c->children[k], i, top);
            if (!v) {
                cJSON_Delete(obj);
                return NULL;
            }
            cJSON_AddItemToObject(obj, f->children[k].name, v);
        }
        return obj;
    }
    }
    CHECK(0, "arrow type %d reached col_value", f->type);
    return NULL;
}

/* Reads the columns of a Schema table into r->root. */
static int schema_parse(struct arrow_reader *r, struct fb *fb, const struct fbt *schema) {
    if (fbt_int(schema, 0, 2, 0) != 0) return err_set("%s: big-endian Arrow data is not supported", r->path);
    size_t fp;
    uint32_t fn;
    fbt_vector(schema, 1, 4, &fp, &fn);
    if (fb->bad || !schema->ok) return err_set("%s: corrupt Arrow schema", r->path);
    r->root.type = AT_STRUCT;
    r->root.name = xstrdup("");
    r->root.n_children = (int)fn;
    r->root.children = fn ? xcalloc(fn, sizeof *r->root.children) : NULL;
    for (uint32_t k = 0; k < fn; k++) {
        struct fbt ft;
        fb_vector_table(fb, fp, k, &ft);
        if (fb->bad) break;
        if (field_parse(r, fb, &ft, &r->root.children[k], NULL, 0)) return -1;
    }
    if (fb->bad) return err_set("%s: corrupt Arrow schema (fields)", r->path);
    return 0;
}

/* IPC file format: "ARROW1\0\0", messages, Footer flatbuffer, int32 footer size, "ARROW1".
 * The schema and the record batch positions (Blocks) come from the footer (File.fbs). */
static int file_footer(struct arrow_reader *r, struct fb *fb, struct fbt *schema) {
    uint8_t tail[10];
    uint64_t size = r->stop;
    if (size < 8 + 10 || fseek(r->f, (long)(size - 10), SEEK_SET) != 0 || fread(tail, 1, 10, r->f) != 10 ||
        memcmp(tail + 4, "ARROW1", 6) != 0)
        return err_set("%s: truncated Arrow IPC file: no closing ARROW1 magic", r->path);
    uint64_t len = rd_le(tail, 4);
    if (len < 4 || len > size - 18)
        return err_set("%s: corrupt Arrow IPC file: footer of %llu bytes", r->path, (unsigned long long)len);
    r->pos = size - 10 - len;
    r->meta = xrealloc(r->meta, len);
    r->meta_cap = len;
    if (fseek(r->f, (long)r->pos, SEEK_SET) != 0 || read_exact(r, r->meta, len, "the footer")) return -1;
    r->stop = size - 10 - len; /* messages end where the footer starts */
    fb->b = r->meta;
    fb->n = len;
    fb->bad = 0;
    struct fbt footer;
    fbt_at(fb, (size_t)rd_le(r->meta, 4), &footer);
    fbt_table(&footer, 1, schema);
    size_t bp;
    uint32_t bn;
    fbt_vector(&footer, 3, 24, &bp, &bn);
    if (fb->bad || !footer.ok || !schema->ok) return err_set("%s: corrupt Arrow IPC file footer", r->path);
    r->blocks = bn ? xmalloc(bn * sizeof *r->blocks) : NULL;
    r->n_blocks = (int)bn;
    for (uint32_t k = 0; k < bn; k++) {
        uint64_t off = rd_le(fb->b + bp + 24 * (size_t)k, 8);
        if (off >= r->stop)
            return err_set("%s: record batch %u at byte %llu is outside the file", r->path, k,
                           (unsigned long long)off);
        r->blocks[k] = off;
    }
    r->file_format = 1;
    return 0;
}

/* ---- public API ----------------------------------------------------------------------------- */

int arrow_reader_open(struct arrow_reader **out, const char *path, int skip_bad_rows) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct arrow_reader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    r->f = f;
    r->skip_bad = skip_bad_rows;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set("%s: not a regular file", path);
        goto fail;
    }
    r->stop = (uint64_t)st.st_size;
    uint8_t head[8];
    struct fb fb;
    struct fbt msg, schema;
    if (r->stop >= 8 && fread(head, 1, 8, f) == 8 && memcmp(head, "ARROW1", 6) == 0) {
        if (file_footer(r, &fb, &schema)) goto fail;
    } else {
        if (fseek(f, 0, SEEK_SET) != 0) {
            err_set("%s: cannot seek: %s", path, strerror(errno));
            goto fail;
        }
        int type;
        int rc = read_message(r, &fb, &msg, &type);
        if (rc < 0) goto fail;
        if (rc == 0 || type != MSG_SCHEMA) {
            err_set("%s: not an Arrow IPC stream: the first message is not a Schema", path);
            goto fail;
        }
        fbt_table(&msg, 2, &schema);
    }
    if (schema_parse(r, &fb, &schema)) goto fail;
    col_init(&r->root_col, &r->root);
    *out = r;
    return 0;
fail:
    arrow_reader_close(r);
    return -1;
}

int arrow_reader_next(struct arrow_reader *r, cJSON **rec) {
    *rec = NULL;
    for (;;) {
        while (r->batch_i < r->batch_len) {
            cJSON *obj = cJSON_CreateObject();
            int ok = 1;
            for (int k = 0; k < r->root.n_children && ok; k++) {
                cJSON *v = col_value(r, &r->root_col.children[k], r->batch_i, r->root.children[k].name);
                if (v)
                    cJSON_AddItemToObject(obj, r->root.children[k].name, v);
                else
                    ok = 0;
            }
            r->batch_i++;
            r->row++;
            if (ok) {
                *rec = obj;
                return 1;
            }
            cJSON_Delete(obj);
            if (!r->skip_bad) return -1;
            r->skipped++;
        }
        if (r->done) return 0;
        if (r->file_format) {
            if (r->i_block == r->n_blocks) {
                r->done = 1;
                return 0;
            }
            r->pos = r->blocks[r->i_block++];
            if (fseek(r->f, (long)r->pos, SEEK_SET) != 0)
                return err_set("%s: cannot seek to byte %llu: %s", r->path, (unsigned long long)r->pos,
                               strerror(errno));
        }
        struct fb fb;
        struct fbt msg;
        int type;
        int rc = read_message(r, &fb, &msg, &type);
        if (rc < 0) return -1;
        if (rc == 0) {
            r->done = 1;
            return 0;
        }
        if (type == MSG_RECORD_BATCH) {
            if (batch_load(r, &fb, &msg, (size_t)fbt_int(&msg, 3, 8, 0))) return -1;
        } else if (type == MSG_DICTIONARY)
            return err_set("%s: dictionary batches (dictionary-encoded columns) are not supported", r->path);
        else
            return err_set("%s: unexpected Arrow message type %d after row %lld", r->path, type,
                           (long long)r->row);
    }
}

int64_t arrow_reader_row(const struct arrow_reader *r) { return r->row; }
int64_t arrow_reader_skipped(const struct arrow_reader *r) { return r->skipped; }

void arrow_reader_close(struct arrow_reader *r) {
    if (!r) return;
    if (r->f) fclose(r->f);
    free_decomp(r);
    free(r->decomp);
    free(r->blocks);
    ZSTD_freeDCtx(r->dctx);
    col_free(&r->root_col);
    field_free(&r->root);
    free(r->meta);
    free(r->body);
    free(r->scratch);
    free(r->path);
    free(r);
}
