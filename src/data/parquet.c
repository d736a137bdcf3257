/* parquet: footer, schema tree and record assembly; see parquet.h. The schema's flat
 * pre-order list becomes a tree whose nodes carry their definition / repetition levels; rows
 * are rebuilt from the leaves' level streams (Dremel, as in parquet-format's README) following
 * the LIST backward-compatibility rules of LogicalTypes.md (3-level element/item, 2-level
 * `array` / `<name>_tuple`, and un-annotated repeated fields). */
#include "data/parquet.h"

#include "core/err.h"
#include "core/util.h"
#include "core/base64.h"
#include "core/nulstr.h"
#include "data/parquet_column.h"
#include "data/thrift.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { REP_REQUIRED = 0, REP_OPTIONAL = 1, REP_REPEATED = 2 };
/* converted_type values we act on. */
enum {
    CT_UTF8 = 0, CT_MAP = 1, CT_MAP_KEY_VALUE = 2, CT_LIST = 3, CT_ENUM = 4, CT_DECIMAL = 5,
    CT_UINT_8 = 11, CT_UINT_64 = 14, CT_JSON = 19
};
/* LogicalType union field ids. */
enum { LT_STRING = 1, LT_MAP = 2, LT_LIST = 3, LT_ENUM = 4, LT_DECIMAL = 5, LT_JSON = 12, LT_UUID = 14, LT_FLOAT16 = 15 };
/* MAX_ROW_VALUES bounds one record's size in memory (an SFT record holds at most a few
 * hundred thousand tokens). */
enum { MAX_SCHEMA_DEPTH = 64, MAX_FIXED_LEN = 1 << 20, MAX_ROW_VALUES = 1 << 21 };

struct pq_node {
    char *name, *path;
    int repetition, type, converted, logical;
    int type_length, scale; /* FIXED_LEN_BYTE_ARRAY width; DECIMAL scale */
    int n_children, *children;
    int def_level, rep_level;
    int first_leaf, n_leaves;
};

struct pq_chunk {
    int type, codec;
    int64_t n_values, size, data_off, dict_off;
    char *path;
};

struct pq_row_group {
    int64_t n_rows;
    int n_chunks;
    struct pq_chunk *chunks;
};

struct parquet {
    char *path;
    const uint8_t *map;
    size_t size;
    int64_t n_rows;
    struct pq_node *nodes;
    int n_nodes;
    int *leaf_node; /* node index of each leaf (column) */
    struct pq_column *cols;
    int n_cols;
    unsigned char *active; /* per leaf: decoded (parquet_select leaves out the others) */
    struct pq_row_group *rgs;
    int n_rgs;
    int rg;              /* current row group, -1 before the first */
    int64_t rg_row, row; /* next row inside the row group / in the file */
    int failed;
    int64_t row_values; /* leaf values assembled into the current row */
    char *scratch;
    size_t scratch_cap;
};

/* ---- footer ---- */

static int node_read(struct thrift *t, struct pq_node *n) {
    int16_t last = 0, id;
    int ft;
    n->type = -1;
    n->converted = -1;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1)
            n->type = thrift_i32(t, ft);
        else if (id == 3)
            n->repetition = thrift_i32(t, ft);
        else if (id == 4) {
            uint32_t len;
            const uint8_t *s = thrift_binary(t, ft, &len);
            free(n->name);
            n->name = xmalloc(len + 1);
            if (len) memcpy(n->name, s, len);
            n->name[len] = 0;
        } else if (id == 2)
            n->type_length = thrift_i32(t, ft);
        else if (id == 5)
            n->n_children = thrift_i32(t, ft);
        else if (id == 6)
            n->converted = thrift_i32(t, ft);
        else if (id == 7)
            n->scale = thrift_i32(t, ft);
        else if (id == 10 && ft == THRIFT_STRUCT) { /* LogicalType: a union, the field id says which */
            int16_t l2 = 0, id2;
            int ft2;
            while (thrift_field(t, &l2, &ft2, &id2)) {
                n->logical = id2;
                if (id2 == LT_DECIMAL && ft2 == THRIFT_STRUCT) { /* DecimalType {1: scale, 2: precision} */
                    int16_t l3 = 0, id3;
                    int ft3;
                    while (thrift_field(t, &l3, &ft3, &id3)) {
                        if (id3 == 1) n->scale = thrift_i32(t, ft3);
                        else thrift_skip(t, ft3);
                    }
                } else
                    thrift_skip(t, ft2);
            }
        } else
            thrift_skip(t, ft);
    }
    if (!n->name) n->name = xstrdup("");
    return t->why ? -1 : 0;
}

static void chunk_meta_read(struct thrift *t, struct pq_chunk *c) {
    int16_t last = 0, id;
    int ft;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1)
            c->type = thrift_i32(t, ft);
        else if (id == 3) {
            int et;
            int32_t n = thrift_list(t, ft, &et);
            size_t cap = 1, len = 0;
            char *path = xmalloc(cap);
            path[0] = 0;
            for (int32_t k = 0; k < n && !t->why; k++) {
                uint32_t sl;
                const uint8_t *s = thrift_binary(t, et, &sl);
                path = xrealloc(path, len + sl + 2);
                if (k) path[len++] = '.';
                if (sl) memcpy(path + len, s, sl);
                len += sl;
                path[len] = 0;
            }
            free(c->path);
            c->path = path;
        } else if (id == 4)
            c->codec = thrift_i32(t, ft);
        else if (id == 5)
            c->n_values = thrift_i64(t, ft);
        else if (id == 7)
            c->size = thrift_i64(t, ft);
        else if (id == 9)
            c->data_off = thrift_i64(t, ft);
        else if (id == 11)
            c->dict_off = thrift_i64(t, ft);
        else
            thrift_skip(t, ft);
    }
}

static int chunk_read(struct thrift *t, struct pq_chunk *c, int *external) {
    int16_t last = 0, id;
    int ft;
    c->type = -1;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1 && ft == THRIFT_BINARY) {
            *external = 1;
            thrift_skip(t, ft);
        } else if (id == 3 && ft == THRIFT_STRUCT)
            chunk_meta_read(t, c);
        else
            thrift_skip(t, ft);
    }
    return t->why ? -1 : 0;
}

static int row_group_read(struct thrift *t, struct pq_row_group *rg, int *external) {
    int16_t last = 0, id;
    int ft;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1 && !rg->chunks) {
            int et;
            int32_t n = thrift_list(t, ft, &et);
            rg->chunks = xcalloc((size_t)n + 1, sizeof *rg->chunks);
            rg->n_chunks = n;
            for (int32_t k = 0; k < n && !t->why; k++) {
                if (et != THRIFT_STRUCT)
                    thrift_skip(t, et);
                else
                    chunk_read(t, &rg->chunks[k], external);
            }
        } else if (id == 3)
            rg->n_rows = thrift_i64(t, ft);
        else
            thrift_skip(t, ft);
    }
    return t->why ? -1 : 0;
}

static int footer_read(struct parquet *p, const uint8_t *buf, size_t len) {
    struct thrift t;
    thrift_init(&t, buf, len);
    int16_t last = 0, id;
    int ft, external = 0, have_schema = 0, have_rgs = 0;
    while (thrift_field(&t, &last, &ft, &id)) {
        if (id == 2 && !have_schema) {
            int et;
            int32_t n = thrift_list(&t, ft, &et);
            have_schema = 1;
            p->nodes = xcalloc((size_t)n + 1, sizeof *p->nodes);
            p->n_nodes = n;
            for (int32_t k = 0; k < n && !t.why; k++) {
                if (et != THRIFT_STRUCT)
                    thrift_skip(&t, et);
                else
                    node_read(&t, &p->nodes[k]);
            }
        } else if (id == 3)
            p->n_rows = thrift_i64(&t, ft);
        else if (id == 4 && !have_rgs) {
            int et;
            int32_t n = thrift_list(&t, ft, &et);
            have_rgs = 1;
            p->rgs = xcalloc((size_t)n + 1, sizeof *p->rgs);
            p->n_rgs = n;
            for (int32_t k = 0; k < n && !t.why; k++) {
                if (et != THRIFT_STRUCT)
                    thrift_skip(&t, et);
                else
                    row_group_read(&t, &p->rgs[k], &external);
            }
        } else
            thrift_skip(&t, ft);
    }
    if (t.why) return err_set("%s: corrupt Parquet footer (FileMetaData): %s", p->path, t.why);
    if (!have_schema || p->n_nodes < 1) return err_set("%s: Parquet footer has no schema", p->path);
    if (external)
        return err_set("%s: unsupported feature: column chunks stored in other files (file_path)", p->path);
    return 0;
}

/* ---- schema ---- */

static int schema_build(struct parquet *p, int i, int *next, int depth, int def, int rep,
                        const char *parent) {
    struct pq_node *n = &p->nodes[i];
    if (depth > MAX_SCHEMA_DEPTH)
        return err_set("%s: schema nested deeper than %d levels", p->path, MAX_SCHEMA_DEPTH);
    if (i > 0) {
        if (n->repetition < REP_REQUIRED || n->repetition > REP_REPEATED)
            return err_set("%s: schema field '%s' has repetition type %d", p->path, n->name, n->repetition);
        def += n->repetition != REP_REQUIRED;
        rep += n->repetition == REP_REPEATED;
        n->path = parent ? xasprintf("%s.%s", parent, n->name) : xstrdup(n->name);
    }
    n->def_level = def;
    n->rep_level = rep;
    n->first_leaf = p->n_cols;
    if (n->n_children < 0 || n->n_children > p->n_nodes - *next)
        return err_set("%s: schema field '%s' claims %d children, the schema has %d elements left", p->path,
                       n->name, n->n_children, p->n_nodes - *next);
    if (n->n_children == 0) {
        if (i == 0) return err_set("%s: schema has no columns", p->path);
        if (n->type < 0) return err_set("%s: schema group '%s' has no fields", p->path, n->path);
        p->leaf_node[p->n_cols++] = i;
    } else {
        n->children = xmalloc((size_t)n->n_children * sizeof *n->children);
        for (int k = 0; k < n->n_children; k++) {
            if (*next >= p->n_nodes) /* earlier children's subtrees took the elements it counted on */
                return err_set("%s: schema field '%s' claims %d children; the schema ends after %d of them", p->path,
                               n->name, n->n_children, k);
            int c = (*next)++;
            n->children[k] = c;
            if (schema_build(p, c, next, depth + 1, def, rep, i > 0 ? n->path : NULL)) return -1;
        }
    }
    n->n_leaves = p->n_cols - n->first_leaf;
    return 0;
}

static int schema_check(struct parquet *p) {
    p->leaf_node = xcalloc((size_t)p->n_nodes + 1, sizeof *p->leaf_node);
    int next = 1;
    if (schema_build(p, 0, &next, 0, 0, 0, NULL)) return -1;
    if (next != p->n_nodes)
        return err_set("%s: schema has %d elements but the tree from the root covers %d", p->path, p->n_nodes,
                       next);
    p->cols = xcalloc((size_t)p->n_cols, sizeof *p->cols);
    p->active = xmalloc((size_t)p->n_cols);
    memset(p->active, 1, (size_t)p->n_cols);
    for (int k = 0; k < p->n_cols; k++) {
        const struct pq_node *n = &p->nodes[p->leaf_node[k]];
        if (n->type < PQ_BOOLEAN || n->type > PQ_FIXED_LEN_BYTE_ARRAY)
            return err_set("%s: column '%s': unsupported physical type %s", p->path, n->path,
                           pq_type_name(n->type));
        if (n->type == PQ_FIXED_LEN_BYTE_ARRAY && (n->type_length < 1 || n->type_length > MAX_FIXED_LEN))
            return err_set("%s: column '%s': FIXED_LEN_BYTE_ARRAY of length %d (expected 1 to %d)", p->path,
                           n->path, n->type_length, MAX_FIXED_LEN);
        struct pq_column *c = &p->cols[k];
        c->file = p->path;
        c->base = p->map;
        c->path = n->path;
        c->type = n->type;
        c->type_length = n->type_length;
        c->max_def = n->def_level;
        c->max_rep = n->rep_level;
    }
    /* Row groups: one chunk per leaf, in schema order, inside the file. */
    size_t footer_start = p->size - 8 -
                          ((size_t)p->map[p->size - 8] | (size_t)p->map[p->size - 7] << 8 |
                           (size_t)p->map[p->size - 6] << 16 | (size_t)p->map[p->size - 5] << 24);
    int64_t total = 0;
    for (int r = 0; r < p->n_rgs; r++) {
        struct pq_row_group *rg = &p->rgs[r];
        if (rg->n_chunks != p->n_cols)
            return err_set("%s: row group %d has %d column chunks, the schema has %d columns", p->path, r,
                           rg->n_chunks, p->n_cols);
        if (rg->n_rows < 0)
            return err_set("%s: row group %d has %lld rows", p->path, r, (long long)rg->n_rows);
        total += rg->n_rows;
        for (int k = 0; k < p->n_cols; k++) {
            struct pq_chunk *ch = &rg->chunks[k];
            const struct pq_column *c = &p->cols[k];
            if (ch->path && strcmp(ch->path, c->path) != 0)
                return err_set("%s: row group %d: column chunk %d is '%s', the schema says '%s'", p->path, r,
                               k, ch->path, c->path);
            if (ch->type != c->type)
                return err_set("%s: column '%s', row group %d: chunk type %s, schema type %s", p->path,
                               c->path, r, pq_type_name(ch->type), pq_type_name(c->type));
            /* The chunk starts at its dictionary page when there is one (some writers leave
             * dictionary_page_offset 0 or past the data page: ignore those). */
            int64_t start = ch->data_off;
            if (ch->dict_off > 0 && ch->dict_off < ch->data_off) start = ch->dict_off;
            if (rg->n_rows == 0 && ch->n_values == 0) { /* empty: never read (some writers leave offset 0) */
                ch->data_off = 0, ch->size = 0;
                continue;
            }
            if (start < 4 || ch->size < 0 || ch->n_values < 0 || (uint64_t)start > footer_start ||
                (uint64_t)ch->size > footer_start - (uint64_t)start)
                return err_set(
                    "%s: column '%s', row group %d: chunk at byte %lld of %lld bytes lies outside the data "
                    "(file truncated or corrupt)",
                    p->path, c->path, r, (long long)start, (long long)ch->size);
            ch->data_off = start;
        }
    }
    /* The row groups' counts are what is read (as Arrow does): some writers leave the footer's
     * num_rows at 0. */
    p->n_rows = total;
    return 0;
}

/* ---- open / close ---- */

int parquet_open(struct parquet **out, const char *path) {
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set("%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set("%s: not a Parquet file: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 12) {
        close(fd);
        return err_set("%s: not a Parquet file: %zu bytes, too short for the PAR1 header and footer", path,
                       size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return err_set("%s: cannot mmap: %s", path, strerror(errno));
    struct parquet *p = xcalloc(1, sizeof *p);
    p->path = xstrdup(path);
    p->map = map;
    p->size = size;
    p->rg = -1;
    const uint8_t *m = p->map;
    if (memcmp(m, "PAR1", 4) != 0) {
        err_set("%s: not a Parquet file: no PAR1 magic at the start", path);
        goto fail;
    }
    if (memcmp(m + size - 4, "PAR1", 4) != 0) {
        err_set("%s: no PAR1 magic at the end of the file (truncated, or an encrypted PARE file)", path);
        goto fail;
    }
    size_t flen = (size_t)m[size - 8] | (size_t)m[size - 7] << 8 | (size_t)m[size - 6] << 16 |
                  (size_t)m[size - 5] << 24;
    if (flen > size - 12) {
        err_set("%s: footer length %zu exceeds the file (%zu bytes): truncated or corrupt", path, flen, size);
        goto fail;
    }
    if (footer_read(p, m + size - 8 - flen, flen) || schema_check(p)) goto fail;
    *out = p;
    return 0;
fail:
    parquet_close(p);
    return -1;
}

void parquet_close(struct parquet *p) {
    if (!p) return;
    for (int k = 0; p->cols && k < p->n_cols; k++)
        pq_column_free(&p->cols[k]);
    free(p->cols);
    for (int k = 0; k < p->n_nodes; k++) {
        free(p->nodes[k].name);
        free(p->nodes[k].path);
        free(p->nodes[k].children);
    }
    free(p->nodes);
    free(p->leaf_node);
    free(p->active);
    for (int r = 0; r < p->n_rgs; r++) {
        for (int k = 0; k < p->rgs[r].n_chunks; k++)
            free(p->rgs[r].chunks[k].path);
        free(p->rgs[r].chunks);
    }
    free(p->rgs);
    if (p->map) munmap((void *)p->map, p->size);
    free(p->scratch);
    free(p->path);
    free(p);
}

int64_t parquet_num_rows(const struct parquet *p) { return p->n_rows; }
int64_t parquet_row(const struct parquet *p) { return p->row; }
int parquet_num_columns(const struct parquet *p) { return p->nodes[0].n_children; }
const char *parquet_column_name(const struct parquet *p, int i) {
    return i >= 0 && i < p->nodes[0].n_children ? p->nodes[p->nodes[0].children[i]].name : NULL;
}

int parquet_select(struct parquet *p, const char *const *names, int n) {
    const struct pq_node *root = &p->nodes[0];
    int kept = 0;
    for (int k = 0; k < root->n_children; k++)
        for (int j = 0; j < n; j++)
            if (strcmp(p->nodes[root->children[k]].name, names[j]) == 0) {
                kept++;
                break;
            }
    if (kept == 0) return 0;
    for (int k = 0; k < root->n_children; k++) {
        const struct pq_node *c = &p->nodes[root->children[k]];
        int on = 0;
        for (int j = 0; j < n && !on; j++)
            on = strcmp(c->name, names[j]) == 0;
        memset(p->active + c->first_leaf, on, (size_t)c->n_leaves);
    }
    return kept;
}

/* ---- record assembly ---- */

__attribute__((format(printf, 3, 4))) static int row_err(const struct parquet *p, int ni, const char *fmt,
                                                         ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *col = p->nodes[ni].path ? p->nodes[ni].path : "(root)";
    return err_set("%s: row %lld, column '%s': %s", p->path, (long long)p->row, col, msg);
}

/* Levels of the next entry of the node's first leaf; 0 when its chunk is done. */
static int peek_first(struct parquet *p, int ni, int *rep, int *def) {
    return pq_column_peek(&p->cols[p->nodes[ni].first_leaf], rep, def);
}

static int peek_required(struct parquet *p, int ni, int *rep, int *def) {
    int rc = peek_first(p, ni, rep, def);
    if (rc == 0) return row_err(p, ni, "column chunk ended in the middle of the row");
    return rc < 0 ? -1 : 0;
}

/* Consumes the one entry every leaf under the node holds for a null / empty value. */
static int skip_under(struct parquet *p, int ni, int below_def) {
    const struct pq_node *n = &p->nodes[ni];
    for (int k = n->first_leaf; k < n->first_leaf + n->n_leaves; k++) {
        int rep, def;
        int rc = pq_column_peek(&p->cols[k], &rep, &def);
        if (rc < 0) return -1;
        if (rc == 0 || def >= below_def)
            return row_err(p, ni, "column '%s' disagrees with its siblings' levels (corrupt file)",
                           p->cols[k].path);
        const struct pq_value *v;
        if (pq_column_take(&p->cols[k], &v)) return -1;
    }
    return 0;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (the civil calendar algorithm of
 * H. Hinnant's "chrono-Compatible Low-Level Date Algorithms"). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* INT96 timestamps (Impala / Spark): 8 bytes of nanoseconds in the day, then 4 of Julian day,
 * little-endian; shown as an ISO 8601 UTC time with as many fraction digits as it needs.
 * Microseconds since the epoch are computed modulo 2^64 as Spark does, so that the times
 * Spark's writer wrapped around (years past 294247) read back as Spark reads them. */
static cJSON *int96_json(const uint8_t *b) {
    int64_t nanos;
    int32_t jd;
    memcpy(&nanos, b, 8);
    memcpy(&jd, b + 8, 4);
    const int64_t day_us = 86400000000LL;
    int64_t us = (int64_t)((uint64_t)((int64_t)jd - 2440588) * (uint64_t)day_us + (uint64_t)(nanos / 1000));
    int64_t sub = nanos % 1000;
    if (sub < 0) sub += 1000, us--;
    int64_t days = us >= 0 ? us / day_us : -((-(us + 1)) / day_us) - 1;
    int64_t in_day = us - days * day_us;
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    int64_t secs = in_day / 1000000, frac = (in_day % 1000000) * 1000 + sub;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, mo, d, (int)(secs / 3600),
                     (int)(secs / 60 % 60), (int)(secs % 60));
    if (frac % 1000 == 0 && frac)
        snprintf(buf + n, sizeof buf - (size_t)n, ".%06lld", (long long)(frac / 1000));
    else if (frac)
        snprintf(buf + n, sizeof buf - (size_t)n, ".%09lld", (long long)frac);
    return cJSON_CreateString(buf);
}

static double pow10_of(int scale) {
    double f = 1;
    for (int k = 0; k < scale && k < 400; k++) f *= 10;
    return f;
}

/* A DECIMAL stored as big-endian two's complement bytes, as a number (unscaled / 10^scale). */
static double decimal_be(const uint8_t *b, uint32_t len, int scale) {
    double v = 0;
    for (uint32_t k = 0; k < len; k++) v = v * 256 + b[k];
    if (len && (b[0] & 0x80)) v -= ldexp(1.0, 8 * (int)(len < 1000 ? len : 1000));
    return v / pow10_of(scale);
}

/* IEEE 754 half precision, little-endian. */
static double half_to_double(const uint8_t *b) {
    unsigned h = (unsigned)b[0] | (unsigned)b[1] << 8;
    int e = (h >> 10) & 31, f = h & 1023;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(f + 1024, e - 25);
    return h & 0x8000 ? -v : v;
}

/* {"$bytes": "<base64>"}: binary that is not text (HF datasets' JSON convention). */
static cJSON *bytes_json(const uint8_t *b, uint32_t len) {
    char *s = xmalloc(base64_len(len) + 1);
    base64_encode(s, b, len);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "$bytes", cJSON_CreateString(s));
    free(s);
    return o;
}

/* Counts a value or list element of the current row against MAX_ROW_VALUES. */
static int row_count(struct parquet *p, int ni) {
    if (++p->row_values <= MAX_ROW_VALUES) return 0;
    return row_err(p, ni, "the row holds more than %d values (corrupt or hostile file)", MAX_ROW_VALUES);
}

static cJSON *leaf_json(struct parquet *p, int ni) {
    const struct pq_node *n = &p->nodes[ni];
    const struct pq_value *v;
    if (row_count(p, ni)) return NULL;
    if (pq_column_take(&p->cols[n->first_leaf], &v)) return NULL;
    if (!v) return cJSON_CreateNull();
    int decimal = n->converted == CT_DECIMAL || n->logical == LT_DECIMAL;
    switch (n->type) {
    case PQ_BOOLEAN: return cJSON_CreateBool(v->i != 0);
    case PQ_INT32:
        if (decimal) return cJSON_CreateNumber((double)v->i / pow10_of(n->scale));
        if (n->converted >= CT_UINT_8 && n->converted < CT_UINT_64)
            return cJSON_CreateNumber((double)(uint32_t)v->i);
        return cJSON_CreateNumber((double)v->i);
    case PQ_INT64:
        if (decimal) return cJSON_CreateNumber((double)v->i / pow10_of(n->scale));
        if (n->converted == CT_UINT_64) return cJSON_CreateNumber((double)(uint64_t)v->i);
        return cJSON_CreateNumber((double)v->i);
    case PQ_FLOAT:
    case PQ_DOUBLE: return cJSON_CreateNumber(v->d);
    case PQ_INT96: return int96_json(v->s.ptr);
    default: break;
    }
    /* Byte arrays: decimals and half floats are numbers, UUIDs and text are strings, other
     * binary is {"$bytes": base64}. */
    const uint8_t *b = v->s.ptr;
    uint32_t len = v->s.len;
    if (decimal) return cJSON_CreateNumber(decimal_be(b, len, n->scale));
    if (n->type == PQ_FIXED_LEN_BYTE_ARRAY && n->logical == LT_FLOAT16 && len == 2)
        return cJSON_CreateNumber(half_to_double(b));
    if (n->type == PQ_FIXED_LEN_BYTE_ARRAY && n->logical == LT_UUID && len == 16) {
        char u[37];
        for (int k = 0, o = 0; k < 16; k++) {
            if (k == 4 || k == 6 || k == 8 || k == 10) u[o++] = '-';
            o += snprintf(u + o, sizeof u - (size_t)o, "%02x", b[k]);
        }
        return cJSON_CreateString(u);
    }
    int text = n->type == PQ_BYTE_ARRAY && (n->converted == CT_UTF8 || n->converted == CT_ENUM ||
                                            n->converted == CT_JSON || n->logical == LT_STRING ||
                                            n->logical == LT_ENUM || n->logical == LT_JSON);
    /* BYTE_ARRAY without a STRING (UTF8) annotation is binary, as Arrow and HF datasets read it
     * (old Impala / Hive files that keep text there show it as bytes). */
    if (!text) return bytes_json(b, len);
    /* text: NULs carried as C0 80 (core/nulstr.h), as cJSON strings are NUL-terminated */
    return nul_create_string(len ? (const char *)b : "", len);
}

static cJSON *asm_node(struct parquet *p, int ni);
static cJSON *asm_group(struct parquet *p, int ni);

/* A repeated node's values in this row as an array. elem_child: each element is the node's one
 * child (3-level LIST); otherwise the repeated node itself (a struct or a primitive). */
static cJSON *asm_repeated(struct parquet *p, int ri, int elem_child) {
    const struct pq_node *r = &p->nodes[ri];
    int rep, def;
    if (peek_required(p, ri, &rep, &def)) return NULL;
    cJSON *arr = cJSON_CreateArray();
    if (def < r->def_level) { /* no element in this row: an empty list */
        if (skip_under(p, ri, r->def_level)) goto fail;
        return arr;
    }
    for (;;) {
        if (row_count(p, ri)) goto fail;
        cJSON *item = elem_child      ? asm_node(p, r->children[0])
                      : r->n_children ? asm_group(p, ri)
                                      : leaf_json(p, ri);
        if (!item) goto fail;
        cJSON_AddItemToArray(arr, item);
        int rc = peek_first(p, ri, &rep, &def);
        if (rc < 0) goto fail;
        if (rc == 0 || rep < r->rep_level) break;
        if (rep > r->rep_level) {
            row_err(p, ri, "repetition level %d after a complete element (expected at most %d)", rep,
                    r->rep_level);
            goto fail;
        }
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

static cJSON *asm_group(struct parquet *p, int ni) {
    const struct pq_node *n = &p->nodes[ni];
    cJSON *obj = cJSON_CreateObject();
    for (int k = 0; k < n->n_children; k++) {
        int c = n->children[k];
        if (!p->active[p->nodes[c].first_leaf]) continue; /* a top-level column left out */
        cJSON *v = p->nodes[c].repetition == REP_REPEATED ? asm_repeated(p, c, 0) : asm_node(p, c);
        if (!v) {
            cJSON_Delete(obj);
            return NULL;
        }
        cJSON_AddItemToObject(obj, p->nodes[c].name, v);
    }
    return obj;
}

/* LogicalTypes.md backward compatibility: the element is the repeated field itself when it is
 * a primitive, has several fields, or is named `array` / `<list>_tuple`; else its one child. */
static int list_elem_is_child(const struct pq_node *list, const struct pq_node *r) {
    if (r->n_children != 1) return 0;
    if (strcmp(r->name, "array") == 0) return 0;
    size_t ln = strlen(list->name);
    if (strncmp(r->name, list->name, ln) == 0 && strcmp(r->name + ln, "_tuple") == 0) return 0;
    return 1;
}

/* A non-repeated node's value in this row. */
static cJSON *asm_node(struct parquet *p, int ni) {
    const struct pq_node *n = &p->nodes[ni];
    int rep, def;
    if (peek_required(p, ni, &rep, &def)) return NULL;
    if (n->repetition == REP_OPTIONAL && def < n->def_level) {
        if (skip_under(p, ni, n->def_level)) return NULL;
        return cJSON_CreateNull();
    }
    if (n->n_children == 0) return leaf_json(p, ni);
    int is_list = n->converted == CT_LIST || n->logical == LT_LIST;
    int is_map = n->converted == CT_MAP || n->converted == CT_MAP_KEY_VALUE || n->logical == LT_MAP;
    if ((is_list || is_map) && n->n_children == 1 && p->nodes[n->children[0]].repetition == REP_REPEATED) {
        const struct pq_node *r = &p->nodes[n->children[0]];
        /* A map becomes an array of {key, value} objects. */
        return asm_repeated(p, n->children[0], is_list && list_elem_is_child(n, r));
    }
    return asm_group(p, ni);
}

static int row_group_next(struct parquet *p) {
    if (p->rg >= 0) { /* every column must be exhausted exactly at the row group's end */
        for (int k = 0; k < p->n_cols; k++) {
            if (!p->active[k]) continue;
            int rep, def, rc = pq_column_peek(&p->cols[k], &rep, &def);
            if (rc < 0) return -1;
            if (rc > 0)
                return err_set("%s: column '%s', row group %d: more values than the row group's %lld rows",
                               p->path, p->cols[k].path, p->rg, (long long)p->rgs[p->rg].n_rows);
        }
    }
    if (p->rg >= 0) { /* drop the finished chunks' pages from this process: RSS stays ~one row group */
        long page = sysconf(_SC_PAGESIZE);
        for (int k = 0; k < p->n_cols; k++) {
            const struct pq_chunk *ch = &p->rgs[p->rg].chunks[k];
            size_t lo = (size_t)ch->data_off / (size_t)page * (size_t)page;
            madvise((void *)(p->map + lo), (size_t)ch->data_off + (size_t)ch->size - lo, MADV_DONTNEED);
        }
    }
    p->rg++;
    p->rg_row = 0;
    if (p->rg >= p->n_rgs) return 0;
    const struct pq_row_group *rg = &p->rgs[p->rg];
    for (int k = 0; k < p->n_cols; k++) {
        const struct pq_chunk *ch = &rg->chunks[k];
        if (!p->active[k]) continue;
        pq_column_start(&p->cols[k], p->map + ch->data_off, (size_t)ch->size, ch->codec, ch->n_values, p->rg);
    }
    return 1;
}

int parquet_next(struct parquet *p, cJSON **rec) {
    *rec = NULL;
    if (p->failed) return -1;
    while (p->rg < 0 || p->rg_row >= p->rgs[p->rg].n_rows) {
        if (p->rg >= p->n_rgs) return 0;
        int rc = row_group_next(p);
        if (rc < 0) goto fail;
        if (rc == 0) return 0;
    }
    for (int k = 0; k < p->n_cols; k++) {
        if (!p->active[k]) continue;
        int rep, def, rc = pq_column_peek(&p->cols[k], &rep, &def);
        if (rc < 0) goto fail;
        if (rc == 0) {
            row_err(p, p->leaf_node[k], "column chunk holds fewer rows than the row group's %lld",
                    (long long)p->rgs[p->rg].n_rows);
            goto fail;
        }
        if (rep != 0) {
            row_err(p, p->leaf_node[k], "row starts with repetition level %d (corrupt levels)", rep);
            goto fail;
        }
    }
    p->row_values = 0;
    cJSON *obj = asm_group(p, 0);
    if (!obj) goto fail;
    p->rg_row++;
    p->row++;
    *rec = obj;
    return 1;
fail:
    p->failed = 1;
    return -1;
}
