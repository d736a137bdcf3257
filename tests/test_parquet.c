/* Tests for src/data/parquet: every fixture .parquet file yields exactly the records of its
 * JSONL ground truth; truncated and corrupted files give errors naming the problem. */
#include "core/err.h"
#include "core/util.h"
#include "data/parquet.h"
#include "test.h"

#include <brotli/encode.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <lz4.h>
#include <zstd.h>
#include <stdint.h>
#include <stdlib.h>

#define DIR_DS "tests/fixtures/datasets"

/* The JSONL ground truth as an array of records. */
static cJSON **jsonl_load(const char *path, int *n_out) {
    size_t len;
    char *buf = file_read_all(path, &len);
    *n_out = 0;
    if (!buf) return NULL;
    int cap = 256, n = 0;
    cJSON **recs = xmalloc(cap * sizeof *recs);
    char *line = buf;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            if (n == cap) recs = xrealloc(recs, (cap *= 2) * sizeof *recs);
            recs[n++] = cJSON_Parse(line);
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(buf);
    *n_out = n;
    return recs;
}

static void jsonl_free(cJSON **recs, int n) {
    for (int i = 0; i < n; i++)
        cJSON_Delete(recs[i]);
    free(recs);
}

/* Reads the whole file and compares each record with the ground truth, column by column. Files
 * may carry a subset of the columns (messages.hy / legacy carry prompt_id + messages). */
static int check_file(const char *path, cJSON **truth, int n_truth) {
    struct parquet *p;
    if (parquet_open(&p, path) != 0) {
        EXPECT(0, "open %s: %s", path, err_msg());
        return -1;
    }
    EXPECT(parquet_num_rows(p) == n_truth, "%s: %lld rows", path, (long long)parquet_num_rows(p));
    int n_cols = parquet_num_columns(p);
    EXPECT(n_cols >= 1, "%s: columns", path);
    int row = 0, mismatches = 0, rc;
    cJSON *rec;
    while ((rc = parquet_next(p, &rec)) == 1) {
        if (row < n_truth) {
            EXPECT(cJSON_GetArraySize(rec) == n_cols, "%s row %d: %d keys", path, row,
                   cJSON_GetArraySize(rec));
            for (int c = 0; c < n_cols; c++) {
                const char *name = parquet_column_name(p, c);
                cJSON *want = cJSON_GetObjectItemCaseSensitive(truth[row], name);
                cJSON *got = cJSON_GetObjectItemCaseSensitive(rec, name);
                if (!want || !got || !cJSON_Compare(want, got, 1)) {
                    if (mismatches++ < 3) {
                        char *g = got ? cJSON_PrintUnformatted(got) : NULL;
                        EXPECT(0, "%s row %d column %s differs: got %.200s", path, row, name,
                               g ? g : "(missing)");
                        free(g);
                    }
                }
            }
        }
        cJSON_Delete(rec);
        row++;
    }
    EXPECT(rc == 0, "%s: %s", path, err_msg());
    EXPECT(row == n_truth, "%s: %d rows read, want %d", path, row, n_truth);
    EXPECT(mismatches == 0, "%s: %d mismatching records", path, mismatches);
    EXPECT(parquet_next(p, &rec) == 0, "%s: end stays end", path);
    parquet_close(p);
    return mismatches || rc ? -1 : 0;
}

static void test_fixtures(void) {
    const char *kinds[] = {"alpaca", "messages", "sharegpt"};
    int n_files = 0;
    for (int k = 0; k < 3; k++) {
        char *gt = xasprintf(DIR_DS "/%s.jsonl", kinds[k]);
        int n_truth;
        cJSON **truth = jsonl_load(gt, &n_truth);
        EXPECT(truth && n_truth == 200, "%s: %d records", gt, n_truth);
        DIR *d = opendir(DIR_DS);
        EXPECT(d != NULL, "opendir");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t l = strlen(e->d_name), kl = strlen(kinds[k]);
            if (l < 8 || strcmp(e->d_name + l - 8, ".parquet") != 0) continue;
            if (strncmp(e->d_name, kinds[k], kl) != 0 || e->d_name[kl] != '.') continue;
            char *path = xasprintf(DIR_DS "/%s", e->d_name);
            int rc = check_file(path, truth, n_truth);
            if (getenv("VERBOSE")) printf("%s: %s\n", path, rc ? "FAIL" : "ok");
            free(path);
            n_files++;
        }
        if (d) closedir(d);
        jsonl_free(truth, n_truth);
        free(gt);
    }
    EXPECT(n_files == 23, "%d parquet fixtures found", n_files);
}

/* ---- malformed files made from the fixtures ---- */

static uint8_t *fixture_read(const char *name, size_t *len) {
    char *path = xasprintf(DIR_DS "/%s", name);
    uint8_t *buf = (uint8_t *)file_read_all(path, len);
    free(path);
    return buf;
}

static const char *TMP = "/tmp/csft_test_parquet.parquet";

static void tmp_write(const uint8_t *buf, size_t len) {
    FILE *f = fopen(TMP, "wb");
    fwrite(buf, 1, len, f);
    fclose(f);
}

/* Opens TMP and reads every row: 0 when all went fine, -1 on the first error. */
static int read_all(int64_t *rows) {
    struct parquet *p;
    *rows = 0;
    if (parquet_open(&p, TMP)) return -1;
    cJSON *rec;
    int rc;
    while ((rc = parquet_next(p, &rec)) == 1) {
        cJSON_Delete(rec);
        (*rows)++;
    }
    parquet_close(p);
    return rc;
}

static void test_open_errors(void) {
    struct parquet *p;
    EXPECT(parquet_open(&p, DIR_DS "/missing.parquet") == -1 && !p, "missing file");
    EXPECT_ERR("missing.parquet: cannot open");
    EXPECT(parquet_open(&p, DIR_DS) == -1, "a directory");
    EXPECT_ERR("not a regular file");
    size_t len;
    uint8_t *buf = fixture_read("alpaca.pw.snappy.dict.parquet", &len);
    int64_t rows;

    tmp_write(buf, 8);
    EXPECT(read_all(&rows) == -1, "8 bytes");
    EXPECT_ERR("too short");

    tmp_write(buf, len / 2); /* truncated: the footer is gone */
    EXPECT(read_all(&rows) == -1, "truncated");
    EXPECT_ERR("no PAR1 magic at the end");

    buf[0] = 'X';
    tmp_write(buf, len);
    EXPECT(read_all(&rows) == -1, "bad magic");
    EXPECT_ERR("no PAR1 magic at the start");
    buf[0] = 'P';

    uint8_t save[4];
    memcpy(save, buf + len - 8, 4);
    memcpy(buf + len - 8, "\xff\xff\x00\x00", 4);
    tmp_write(buf, len);
    EXPECT(read_all(&rows) == -1, "footer length");
    EXPECT_ERR("footer length 65535 exceeds the file");
    memcpy(buf + len - 8, save, 4);

    /* The footer with its first half overwritten. */
    uint32_t flen;
    memcpy(&flen, buf + len - 8, 4);
    memset(buf + len - 8 - flen, 0xff, flen / 2);
    tmp_write(buf, len);
    EXPECT(read_all(&rows) == -1, "corrupt footer");
    EXPECT_ERR("corrupt Parquet footer");
    free(buf);

    /* (fuzzer) a group whose children outnumber the elements its earlier children's subtrees left:
     * the schema walk read one element past the list (and leaked its path) */
    EXPECT(parquet_open(&p, "tests/fuzz/regress/parquet/schema-children-overrun") == -1 && !p, "children overrun");
    EXPECT_ERR("schema field 'list' claims 3 children; the schema ends after 1 of them");
}

static void test_page_errors(void) {
    size_t len;
    int64_t rows;
    /* A page header overwritten: the first chunk (column instruction) starts at byte 4. */
    uint8_t *buf = fixture_read("alpaca.pw.snappy.plain.parquet", &len);
    memset(buf + 4, 0xff, 8);
    tmp_write(buf, len);
    EXPECT(read_all(&rows) == -1 && rows == 0, "corrupt page header");
    EXPECT_ERR("column 'instruction', row group 0, page at byte 4: corrupt page header");
    free(buf);

    /* ZSTD data with a broken frame magic. */
    buf = fixture_read("alpaca.pw.zstd.plain.parquet", &len);
    size_t at = 0;
    for (size_t i = 4; i + 4 < len; i++)
        if (memcmp(buf + i, "\x28\xb5\x2f\xfd", 4) == 0) {
            at = i;
            break;
        }
    EXPECT(at > 0, "zstd frame found");
    buf[at] ^= 0x55;
    tmp_write(buf, len);
    EXPECT(read_all(&rows) == -1, "corrupt zstd");
    EXPECT_ERR("corrupt ZSTD data");
    EXPECT_ERR("column 'instruction'");
    free(buf);

    /* SNAPPY data truncated inside a page: claim a shorter chunk in no way, but cut the file
     * after the first data page and re-append the footer: chunks then lie outside the data. */
    buf = fixture_read("alpaca.pw.snappy.dict.multi.parquet", &len);
    uint32_t flen;
    memcpy(&flen, buf + len - 8, 4);
    size_t keep = 2000, tail = flen + 8;
    memmove(buf + keep, buf + len - tail, tail);
    tmp_write(buf, keep + tail);
    EXPECT(read_all(&rows) == -1, "cut data");
    EXPECT_ERR("lies outside the data");
    free(buf);
}

/* Seeded random byte flips and truncations: every outcome is a full read or an error with a
 * message, never a crash (run under ASan by `make test-asan`). */
static void test_fuzz(void) {
    const char *names[] = {"messages.pw.snappy.dict.parquet", "alpaca.pw.zstd.plain.v2.parquet",
                           "messages.hy.snappy.parquet", "messages.pj.legacy_repeated.snappy.parquet",
                           "alpaca.pw.gzip.dict.parquet"};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int errors = 0, oks = 0;
    for (int f = 0; f < 5; f++) {
        size_t len;
        uint8_t *orig = fixture_read(names[f], &len);
        uint8_t *buf = xmalloc(len);
        for (int it = 0; it < 60; it++) {
            memcpy(buf, orig, len);
            int flips = 1 + it % 4;
            for (int k = 0; k < flips; k++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                buf[s % len] ^= (uint8_t)(1u << (s >> 32) % 8);
            }
            tmp_write(buf, len);
            int64_t rows;
            int rc = read_all(&rows);
            if (rc < 0) {
                EXPECT(strstr(err_msg(), TMP) != NULL, "error names the file: %s", err_msg());
                errors++;
            } else {
                oks++;
            }
        }
        free(buf);
        free(orig);
    }
    EXPECT(errors > 0 && errors + oks == 300, "%d errors, %d clean reads", errors, oks);
}

/* ---- a hand-built file: a tiny Thrift compact writer ----
 * Covers what the fixtures do not: REQUIRED columns, INT32/INT64/BOOLEAN/DOUBLE, a nested
 * list<list<int32>> with null and empty lists at both levels, and unsupported features. */

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void b_put(struct buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_u8(struct buf *b, uint8_t v) { b_put(b, &v, 1); }
static void b_u32(struct buf *b, uint32_t v) { b_put(b, &v, 4); }
static void b_varint(struct buf *b, uint64_t v) {
    while (v >= 0x80) {
        b_u8(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    b_u8(b, (uint8_t)v);
}
static void b_zz(struct buf *b, int64_t v) { b_varint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); }
static void t_field(struct buf *b, int16_t *last, int type, int16_t id) {
    int d = id - *last;
    if (d > 0 && d <= 15) {
        b_u8(b, (uint8_t)(d << 4 | type));
    } else {
        b_u8(b, (uint8_t)type);
        b_zz(b, id);
    }
    *last = id;
}
static void t_i32(struct buf *b, int16_t *last, int16_t id, int64_t v) {
    t_field(b, last, 5, id);
    b_zz(b, v);
}
static void t_i64(struct buf *b, int16_t *last, int16_t id, int64_t v) {
    t_field(b, last, 6, id);
    b_zz(b, v);
}
static void t_str(struct buf *b, int16_t *last, int16_t id, const char *s) {
    t_field(b, last, 8, id);
    b_varint(b, strlen(s));
    b_put(b, s, strlen(s));
}
static void t_list(struct buf *b, int16_t *last, int16_t id, int elem, int n) {
    t_field(b, last, 9, id);
    b_u8(b, (uint8_t)(n << 4 | elem)); /* n < 15 here */
}

struct tcol {
    const char *path; /* dotted */
    int type, max_def, max_rep, n;
    const int *rep, *def;
    const void *vals;
    size_t vals_len;
};

/* Levels as RLE runs of one value each (valid, if not compact). */
static void levels_put(struct buf *b, const int *lv, int n) {
    b_u32(b, (uint32_t)(2 * n));
    for (int i = 0; i < n; i++) {
        b_u8(b, 2);
        b_u8(b, (uint8_t)lv[i]);
    }
}

struct sel {
    const char *name;
    int type, rep, n_children, converted;
};

/* Compresses a page with a Parquet codec: 4 BROTLI, 5 LZ4 in Hadoop's framing (5 | RAW_LZ4:
 * a bare LZ4 block, as older Arrow wrote), 7 LZ4_RAW, 6 ZSTD. */
enum { RAW_LZ4 = 0x100 };
static void page_compress(struct buf *page, int codec) {
    size_t cap = page->n * 2 + 1024, n = 0;
    uint8_t *out = xmalloc(cap);
    if (codec == 4) {
        n = cap;
        if (!BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, page->n, page->p, &n, out)) n = 0;
    } else if (codec == 5 || codec == 7 || codec == (5 | RAW_LZ4)) {
        int hadoop = codec == 5;
        int r = LZ4_compress_default((const char *)page->p, (char *)out + 8 * hadoop, (int)page->n, (int)cap - 8);
        n = (size_t)r + 8 * hadoop;
        if (hadoop)
            for (int k = 0; k < 4; k++)
                out[k] = (uint8_t)(page->n >> (24 - 8 * k)), out[4 + k] = (uint8_t)((uint32_t)r >> (24 - 8 * k));
    } else if (codec == 6) {
        n = ZSTD_compress(out, cap, page->p, page->n, 3);
    }
    free(page->p);
    page->p = out;
    page->n = page->cap = n;
}

/* Writes the file to TMP. codec / value encoding / type of the first column are overridable. */
static void build_file(const struct sel *schema, int n_schema, const struct tcol *cols, int n_cols,
                       int n_rows, int codec, int encoding0, int type0) {
    struct buf b = {0};
    b_put(&b, "PAR1", 4);
    int64_t off[8], size[8];
    for (int c = 0; c < n_cols; c++) {
        const struct tcol *tc = &cols[c];
        struct buf page = {0};
        if (tc->max_rep) levels_put(&page, tc->rep, tc->n);
        if (tc->max_def) levels_put(&page, tc->def, tc->n);
        b_put(&page, tc->vals, tc->vals_len);
        size_t usize = page.n;
        if (c == 0 && codec) page_compress(&page, codec);
        off[c] = (int64_t)b.n;
        int16_t l = 0, l2 = 0;
        t_i32(&b, &l, 1, 0); /* DATA_PAGE */
        t_i32(&b, &l, 2, (int64_t)usize);
        t_i32(&b, &l, 3, (int64_t)page.n);
        t_field(&b, &l, 12, 5);
        t_i32(&b, &l2, 1, tc->n);
        t_i32(&b, &l2, 2, c == 0 ? encoding0 : 0);
        t_i32(&b, &l2, 3, 3);
        t_i32(&b, &l2, 4, 3);
        b_u8(&b, 0);
        b_u8(&b, 0);
        b_put(&b, page.p, page.n);
        size[c] = (int64_t)b.n - off[c];
        free(page.p);
    }
    size_t footer = b.n;
    int16_t l = 0;
    t_i32(&b, &l, 1, 1);
    t_list(&b, &l, 2, 12, n_schema);
    for (int i = 0; i < n_schema; i++) {
        int16_t l2 = 0;
        int type = i > 0 && schema[i].type >= 0 && i == 1 && type0 >= 0 ? type0 : schema[i].type;
        if (type >= 0) t_i32(&b, &l2, 1, type);
        if (i > 0) t_i32(&b, &l2, 3, schema[i].rep);
        t_str(&b, &l2, 4, schema[i].name);
        if (schema[i].n_children) t_i32(&b, &l2, 5, schema[i].n_children);
        if (schema[i].converted >= 0) t_i32(&b, &l2, 6, schema[i].converted);
        b_u8(&b, 0);
    }
    t_i64(&b, &l, 3, n_rows);
    t_list(&b, &l, 4, 12, 1);
    {
        int16_t lr = 0;
        t_list(&b, &lr, 1, 12, n_cols);
        for (int c = 0; c < n_cols; c++) {
            int16_t lc = 0, lm = 0;
            t_i64(&b, &lc, 2, off[c]);
            t_field(&b, &lc, 12, 3);
            t_i32(&b, &lm, 1, c == 0 && type0 >= 0 ? type0 : cols[c].type);
            t_list(&b, &lm, 2, 5, 2);
            b_zz(&b, 0);
            b_zz(&b, 3);
            int parts = 1;
            for (const char *q = cols[c].path; *q; q++)
                parts += *q == '.';
            t_list(&b, &lm, 3, 8, parts);
            const char *q = cols[c].path;
            for (int k = 0; k < parts; k++) {
                const char *e = strchr(q, '.');
                size_t n = e ? (size_t)(e - q) : strlen(q);
                b_varint(&b, n);
                b_put(&b, q, n);
                q += n + 1;
            }
            t_i32(&b, &lm, 4, c == 0 ? codec & 0xff : 0);
            t_i64(&b, &lm, 5, cols[c].n);
            t_i64(&b, &lm, 6, size[c]);
            t_i64(&b, &lm, 7, size[c]);
            t_i64(&b, &lm, 9, off[c]);
            b_u8(&b, 0);
            b_u8(&b, 0);
        }
        t_i64(&b, &lr, 2, 1000);
        t_i64(&b, &lr, 3, n_rows);
        b_u8(&b, 0);
    }
    b_u8(&b, 0);
    b_u32(&b, (uint32_t)(b.n - footer));
    b_put(&b, "PAR1", 4);
    tmp_write(b.p, b.n);
    free(b.p);
}

/* root{ required int32 id; optional double score; optional boolean flag; required int64 big;
 *       optional group matrix (LIST) { repeated group list { optional group element (LIST) {
 *         repeated group list { optional int32 element }}}}} */
static const struct sel SCHEMA[] = {
    {"schema", -1, 0, 5, -1}, {"id", 1, 0, 0, -1},      {"score", 5, 1, 0, -1}, {"flag", 0, 1, 0, -1},
    {"big", 2, 0, 0, -1},     {"matrix", -1, 1, 1, 3},  {"list", -1, 2, 1, -1}, {"element", -1, 1, 1, 3},
    {"list", -1, 2, 1, -1},   {"element", 1, 1, 0, -1},
};

/* DELTA_BINARY_PACKED with one block of 4 miniblocks, every width 64 (n <= 33 values). */
static size_t dbp_encode(uint8_t *out, const int64_t *v, int n) {
    struct buf b = {0};
    b_varint(&b, 128);
    b_varint(&b, 4);
    b_varint(&b, (uint64_t)n);
    b_zz(&b, v[0]);
    if (n > 1) {
        int64_t min = INT64_MAX;
        for (int i = 1; i < n; i++)
            min = v[i] - v[i - 1] < min ? v[i] - v[i - 1] : min;
        b_zz(&b, min);
        for (int m = 0; m < 4; m++)
            b_u8(&b, 64);
        for (int i = 1; i <= 32; i++) {
            uint64_t d = i < n ? (uint64_t)(v[i] - v[i - 1]) - (uint64_t)min : 0;
            b_put(&b, &d, 8);
        }
    }
    memcpy(out, b.p, b.n);
    size_t len = b.n;
    free(b.p);
    return len;
}

static void synthetic_write(int codec, int encoding0, int type0) {
    static const int32_t id[] = {1, -7, 3, 4};
    static const double score[] = {1.5, -0.25, 2};
    static const int score_def[] = {1, 0, 1, 1};
    static const uint8_t flag[] = {0x05}; /* true, false, true */
    static const int flag_def[] = {1, 1, 0, 1};
    static const int64_t big[] = {(int64_t)1 << 40, -5, 0, 1};
    /* [[1,2],[3]] | null | [[], null, [null, 4]] | [] */
    static const int m_rep[] = {0, 2, 1, 0, 0, 1, 1, 2, 0};
    static const int m_def[] = {5, 5, 5, 0, 3, 2, 4, 5, 1};
    static const int32_t m_vals[] = {1, 2, 3, 4};
    uint8_t id_dbp[512];
    const int64_t id64[] = {1, -7, 3, 4};
    size_t id_dbp_len = dbp_encode(id_dbp, id64, 4);
    int dbp = encoding0 == 5;
    const struct tcol cols[] = {
        {"id", 1, 0, 0, 4, NULL, NULL, dbp ? (const void *)id_dbp : id, dbp ? id_dbp_len : sizeof id},
        {"score", 5, 1, 0, 4, NULL, score_def, score, sizeof score},
        {"flag", 0, 1, 0, 4, NULL, flag_def, flag, sizeof flag},
        {"big", 2, 0, 0, 4, NULL, NULL, big, sizeof big},
        {"matrix.list.element.list.element", 1, 5, 2, 9, m_rep, m_def, m_vals, sizeof m_vals},
    };
    build_file(SCHEMA, 10, cols, 5, 4, codec, encoding0, type0);
}

static void synthetic_check(const char **want, int encoding0, int codec) {
    synthetic_write(codec, encoding0, -1);
    struct parquet *p;
    EXPECT(parquet_open(&p, TMP) == 0, "%s", err_msg());
    if (!p) return;
    EXPECT(parquet_num_rows(p) == 4 && parquet_num_columns(p) == 5, "shape");
    EXPECT_STR(parquet_column_name(p, 4), "matrix");
    cJSON *rec;
    for (int i = 0; i < 4; i++) {
        EXPECT(parquet_next(p, &rec) == 1, "row %d: %s", i, err_msg());
        if (!rec) break;
        cJSON *w = cJSON_Parse(want[i]);
        char *got = cJSON_PrintUnformatted(rec);
        EXPECT(cJSON_Compare(w, rec, 1), "encoding %d codec %d row %d: got %s", encoding0, codec, i, got);
        free(got);
        cJSON_Delete(w);
        cJSON_Delete(rec);
    }
    EXPECT(parquet_next(p, &rec) == 0, "end");
    parquet_close(p);
}

static void test_synthetic(void) {
    const char *want[] = {
        "{\"id\":1,\"score\":1.5,\"flag\":true,\"big\":1099511627776,\"matrix\":[[1,2],[3]]}",
        "{\"id\":-7,\"score\":null,\"flag\":false,\"big\":-5,\"matrix\":null}",
        "{\"id\":3,\"score\":-0.25,\"flag\":null,\"big\":0,\"matrix\":[[],null,[null,4]]}",
        "{\"id\":4,\"score\":2,\"flag\":true,\"big\":1,\"matrix\":[]}",
    };
    for (int variant = 0; variant < 2; variant++)
        synthetic_check(want, variant ? 5 : 0, 0); /* PLAIN, then DELTA_BINARY_PACKED ids */

    /* Every codec gives the same records (column 0 compressed). */
    static const int codecs[] = {4, 5, 5 | RAW_LZ4, 6, 7};
    for (int k = 0; k < 5; k++)
        synthetic_check(want, 0, codecs[k]);
    int64_t rows;
    synthetic_write(3, 0, -1); /* LZO: not supported */
    EXPECT(read_all(&rows) == -1, "lzo");
    EXPECT_ERR("column 'id', row group 0, page at byte 4: unsupported compression codec LZO");
    synthetic_write(0, 7, -1); /* DELTA_BYTE_ARRAY on an INT32 column */
    EXPECT(read_all(&rows) == -1, "encoding");
    EXPECT_ERR("column 'id', row group 0, page at byte 4: unsupported encoding DELTA_BYTE_ARRAY for physical "
               "type INT32");
    synthetic_write(0, 0, 3); /* INT96 with 4-byte values */
    EXPECT(read_all(&rows) == -1, "int96");
    EXPECT_ERR("column 'id', row group 0, page at byte 4: values: 4 PLAIN INT96 values of 12 bytes need 48 bytes, 16 left");
}

/* One row holding 2^21 + 1 list elements (a list of nulls: a few bytes each) is refused with a
 * message instead of being assembled: a small hostile file must not build a huge record. */
static void test_row_cap(void) {
    static const struct sel schema[] = {
        {"schema", -1, 0, 1, -1}, {"l", -1, 1, 1, 3}, {"list", -1, 2, 1, -1}, {"element", 1, 1, 0, -1}};
    int n = (1 << 21) + 1;
    int *rep = xmalloc((size_t)n * sizeof *rep), *def = xmalloc((size_t)n * sizeof *def);
    for (int i = 0; i < n; i++) rep[i] = i > 0, def[i] = 2;
    const struct tcol col = {"l.list.element", 1, 3, 1, n, rep, def, NULL, 0};
    build_file(schema, 4, &col, 1, 1, 0, 0, -1);
    free(rep), free(def);
    int64_t rows;
    EXPECT(read_all(&rows) == -1 && rows == 0, "row cap");
    EXPECT_ERR("row 0, column 'l.list': the row holds more than 2097152 values");
}

int main(void) {
    RUN(test_row_cap);
    RUN(test_synthetic);
    RUN(test_fixtures);
    RUN(test_open_errors);
    RUN(test_page_errors);
    RUN(test_fuzz);
    return TEST_SUMMARY("parquet");
}
