/* Parquet files as found in the wild: the Apache Parquet project's test files
 * (tests/fixtures/parquet-testing, written by parquet-mr, Arrow C++, Impala, Spark, Rust, ...).
 * Every file is read to its end or refused with the expected reason; values are checked
 * against the expected outputs shipped beside the files and against each other where one file
 * holds the same values in two encodings. Also: column projection, and hostile page headers
 * (entry counts and decompressed sizes the bytes cannot hold) refused before allocating. */
#include "core/err.h"
#include "core/util.h"
#include "data/parquet.h"
#include "data/reader.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define PT "tests/fixtures/parquet-testing/data"

/* Files refused on purpose, with the reason their error must give. */
static const struct {
    const char *file, *reason;
} REFUSED[] = {
    /* deliberately malformed upstream (Arrow's reader refuses it too) */
    {"nation.dict-malformed.parquet", "page of 28 bytes runs past the end of the column chunk"},
    /* a 1 GiB string in a 1.6 KB page: beyond the decompression bound */
    {"large_string_map.brotli.parquet", "more than BROTLI can expand"},
};

static const char *refusal(const char *name) {
    for (size_t k = 0; k < sizeof REFUSED / sizeof *REFUSED; k++)
        if (strcmp(REFUSED[k].file, name) == 0) return REFUSED[k].reason;
    return NULL;
}

/* Reads every row; returns rows read or -1. */
static int64_t read_rows(const char *path, cJSON ***out) {
    struct parquet *p;
    if (parquet_open(&p, path)) return -1;
    int64_t n = 0, cap = 0;
    cJSON *rec;
    int rc;
    while ((rc = parquet_next(p, &rec)) == 1) {
        if (out) {
            if (n == cap) *out = xrealloc(*out, (size_t)(cap = cap ? 2 * cap : 64) * sizeof **out);
            (*out)[n] = rec;
        } else {
            cJSON_Delete(rec);
        }
        n++;
    }
    int64_t declared = parquet_num_rows(p);
    parquet_close(p);
    if (rc < 0) return -1;
    if (n != declared) {
        err_set("%s: read %" PRId64 " rows, the row groups declare %" PRId64, path, n, declared);
        return -1;
    }
    return n;
}

static void rows_free(cJSON **rows, int64_t n) {
    for (int64_t i = 0; i < n; i++) cJSON_Delete(rows[i]);
    free(rows);
}

static void walk(const char *dir, int *n_files, int *n_read, int *n_refused) {
    DIR *d = opendir(dir);
    EXPECT(d != NULL, "%s missing", dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *path = path_join(dir, e->d_name);
        size_t l = strlen(e->d_name);
        if (dir_exists(path)) {
            walk(path, n_files, n_read, n_refused);
        } else if (l > 8 && strcmp(e->d_name + l - 8, ".parquet") == 0) {
            (*n_files)++;
            const char *why = refusal(e->d_name);
            int64_t rows = read_rows(path, NULL);
            if (why) {
                EXPECT(rows < 0 && strstr(err_msg(), why) && strstr(err_msg(), path),
                       "%s: expected a refusal naming the file and saying '%s', got %s", path, why,
                       rows < 0 ? err_msg() : "a clean read");
                (*n_refused)++;
            } else {
                EXPECT(rows >= 0, "%s: %s", path, err_msg());
                if (rows >= 0) (*n_read)++;
            }
        }
        free(path);
    }
    closedir(d);
}

static void test_every_file(void) {
    int n_files = 0, n_read = 0, n_refused = 0;
    walk(PT, &n_files, &n_read, &n_refused);
    EXPECT(n_files == 75, "%d files (expected the 75 of parquet-testing)", n_files);
    EXPECT(n_read == 73 && n_refused == 2, "%d read, %d refused", n_read, n_refused);
    printf("parquet-testing: %d of %d files read, %d refused with their reason\n", n_read, n_files, n_refused);
}

/* ---- expected values ---- */

/* One CSV field (RFC 4180 quoting); returns the position after it, NULL at the line's end. */
static const char *csv_field(const char *p, char *out, size_t cap, int *quoted) {
    size_t n = 0;
    *quoted = 0;
    if (*p == '"') {
        *quoted = 1;
        p++;
        while (*p && !(*p == '"' && p[1] != '"')) {
            if (*p == '"') p++;
            if (n + 1 < cap) out[n++] = *p;
            p++;
        }
        if (*p == '"') p++;
    } else {
        while (*p && *p != ',' && *p != '\n' && *p != '\r')
            if (n + 1 < cap) out[n++] = *p++;
            else p++;
    }
    out[n] = 0;
    return p;
}

/* Every row of NAME.parquet against NAME_expect.csv (header = column names; an empty unquoted
 * field is null; numbers compared as numbers). */
static void check_csv(const char *name) {
    char *pq = xasprintf(PT "/%s.parquet", name), *csvp = xasprintf(PT "/%s_expect.csv", name);
    cJSON **rows = NULL;
    int64_t n = read_rows(pq, &rows);
    EXPECT(n > 0, "%s: %s", pq, err_msg());
    size_t len;
    char *csv = file_read_all(csvp, &len);
    EXPECT(csv != NULL, "%s", csvp);
    if (n <= 0 || !csv) goto done;
    char cols[128][64], field[4096];
    int n_cols = 0, quoted;
    const char *p = csv;
    for (;;) {
        p = csv_field(p, field, sizeof field, &quoted);
        if (n_cols < 128) {
            field[sizeof cols[0] - 1] = 0;
            memcpy(cols[n_cols++], field, sizeof cols[0]);
        }
        if (*p != ',') break;
        p++;
    }
    int64_t row = 0, bad = 0, checked = 0;
    while (*p) {
        while (*p == '\r' || *p == '\n') p++;
        if (!*p) break;
        for (int c = 0; c < n_cols; c++) {
            p = csv_field(p, field, sizeof field, &quoted);
            if (*p == ',') p++;
            if (row >= n) continue;
            /* (the files' own column names carry quirks the CSV headers drop: a trailing ':'
             * in one, a leading space in the other's header) */
            const char *name = cols[c] + (cols[c][0] == ' ');
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(rows[row], name);
            if (!v) {
                char alt[80];
                snprintf(alt, sizeof alt, "%s:", name);
                v = cJSON_GetObjectItemCaseSensitive(rows[row], alt);
            }
            int ok;
            if (!quoted && !field[0]) ok = cJSON_IsNull(v);
            else if (cJSON_IsNumber(v)) ok = strtod(field, NULL) == v->valuedouble;
            else ok = cJSON_IsString(v) && strcmp(v->valuestring, field) == 0;
            if (!ok && bad++ < 3) {
                char *got = cJSON_PrintUnformatted(v);
                EXPECT(0, "%s row %" PRId64 " column '%s': expected '%s', got %s", name, row, cols[c], field, got);
                free(got);
            }
            checked++;
        }
        row++;
    }
    EXPECT(row == n, "%s: %" PRId64 " CSV rows, %" PRId64 " Parquet rows", name, row, n);
    EXPECT(bad == 0 && checked > 1000, "%s: %" PRId64 " of %" PRId64 " values differ", name, bad, checked);
done:
    if (rows) rows_free(rows, n > 0 ? n : 0);
    free(csv), free(pq), free(csvp);
}

static void test_expected_csv(void) {
    check_csv("delta_binary_packed");
    check_csv("delta_byte_array");
    check_csv("delta_encoding_optional_column");
    check_csv("delta_encoding_required_column");
}

/* int96_from_spark.md: microseconds since the epoch, one null. */
static void test_int96(void) {
    static const int64_t us[] = {1704141296123456, 1704070800000000, 253402225200000000, 1735599600000000, 0,
                                 9089380393200000000};
    cJSON **rows = NULL;
    int64_t n = read_rows(PT "/int96_from_spark.parquet", &rows);
    EXPECT(n == 6, "%" PRId64 " rows: %s", n, err_msg());
    for (int64_t i = 0; i < n && i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rows[i], "a");
        if (i == 4) {
            EXPECT(cJSON_IsNull(v), "row 4 is null");
            continue;
        }
        time_t t = (time_t)(us[i] / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[64];
        int k = snprintf(want, sizeof want, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (us[i] % 1000000) snprintf(want + k, sizeof want - (size_t)k, ".%06lld", (long long)(us[i] % 1000000));
        EXPECT(cJSON_IsString(v) && strcmp(v->valuestring, want) == 0, "row %" PRId64 ": want %s got %s", i, want,
               cJSON_IsString(v) ? v->valuestring : "(not a string)");
    }
    rows_free(rows, n > 0 ? n : 0);
    /* Impala's alltypes: timestamps of 2009-01-01 .. 2009-04-01 at midnight and one minute after */
    rows = NULL;
    n = read_rows(PT "/alltypes_plain.parquet", &rows);
    EXPECT(n == 8, "alltypes_plain: %s", err_msg());
    const cJSON *ts = n > 0 ? cJSON_GetObjectItemCaseSensitive(rows[0], "timestamp_col") : NULL;
    EXPECT(cJSON_IsString(ts) && strcmp(ts->valuestring, "2009-03-01T00:00:00") == 0, "alltypes_plain row 0");
    rows_free(rows, n > 0 ? n : 0);
}

static uint32_t be32_of(const char *b64) { /* 4 bytes of base64 "AAAD6A==" -> 0x3E8 */
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t v = 0;
    for (int k = 0; k < 6; k++) v = v << 6 | (uint64_t)(strchr(abc, b64[k]) - abc);
    return (uint32_t)(v >> 4);
}

/* fixed_length_byte_array.md: 1000 FIXED[4] values 0x3E8 down to 1 in order, 105 nulls. */
static void test_flba(void) {
    cJSON **rows = NULL;
    int64_t n = read_rows(PT "/fixed_length_byte_array.parquet", &rows);
    EXPECT(n == 1000, "%" PRId64 " rows: %s", n, err_msg());
    int nulls = 0, order_ok = 1;
    uint32_t prev = 0x3E9, first = 0, last = 0;
    for (int64_t i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(rows[i], "flba_field");
        if (cJSON_IsNull(v)) {
            nulls++;
            continue;
        }
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "$bytes");
        if (!cJSON_IsString(b) || strlen(b->valuestring) != 8) {
            order_ok = 0;
            break;
        }
        uint32_t x = be32_of(b->valuestring);
        if (!first) first = x;
        last = x;
        order_ok &= x < prev;
        prev = x;
    }
    EXPECT(nulls == 105 && order_ok && first == 1000 && last == 1, "nulls %d, descending %d, %u..%u", nulls,
           order_ok, first, last);
    rows_free(rows, n > 0 ? n : 0);
    /* binary.parquet: row i is the single byte i, as bytes */
    rows = NULL;
    n = read_rows(PT "/binary.parquet", &rows);
    EXPECT(n == 12, "binary: %s", err_msg());
    static const char *want[] = {"AA==", "AQ==", "Ag==", "Aw==", "BA==", "BQ==",
                                 "Bg==", "Bw==", "CA==", "CQ==", "Cg==", "Cw=="};
    for (int64_t i = 0; i < n && i < 12; i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rows[i], "foo"), "$bytes");
        EXPECT(cJSON_IsString(b) && strcmp(b->valuestring, want[i]) == 0, "binary row %" PRId64, i);
    }
    rows_free(rows, n > 0 ? n : 0);
}

/* Columns that hold the same values in two encodings / types must agree in every row. */
static void same_columns(const char *file, const char *a, const char *b, int *pairs) {
    cJSON **rows = NULL;
    int64_t n = read_rows(file, &rows);
    EXPECT(n > 0, "%s: %s", file, err_msg());
    int64_t bad = 0, both = 0;
    for (int64_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(rows[i], a), *y = cJSON_GetObjectItemCaseSensitive(rows[i], b);
        if (!x || !y) {
            bad++;
            continue;
        }
        int eq = cJSON_IsNumber(x) && cJSON_IsNumber(y)
                     ? (x->valuedouble == y->valuedouble || (isnan(x->valuedouble) && isnan(y->valuedouble)))
                     : cJSON_Compare(x, y, 1);
        bad += !eq;
        both += !cJSON_IsNull(x);
    }
    EXPECT(bad == 0 && both > 0, "%s: '%s' and '%s' differ in %" PRId64 " of %" PRId64 " rows", file, a, b, bad, n);
    (*pairs)++;
    rows_free(rows, n > 0 ? n : 0);
}

static void test_encodings_agree(void) {
    int pairs = 0;
    const char *bss = PT "/byte_stream_split_extended.gzip.parquet";
    static const char *types[] = {"float16", "float", "double", "int32", "int64", "flba5", "decimal"};
    for (int k = 0; k < 7; k++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%s_plain", types[k]);
        snprintf(b, sizeof b, "%s_byte_stream_split", types[k]);
        same_columns(bss, a, b, &pairs);
    }
    /* float16 columns hold the same numbers as the float and double ones */
    same_columns(PT "/floating_orders_nan_count.parquet", "float16_ieee754", "float_ieee754", &pairs);
    same_columns(PT "/floating_orders_nan_count.parquet", "double_ieee754", "float_ieee754", &pairs);
    /* decimals: the same values as FIXED_LEN_BYTE_ARRAY, legacy FLBA, BYTE_ARRAY, INT32, INT64 */
    static const char *dec[] = {"fixed_length_decimal_legacy", "byte_array_decimal", "int32_decimal", "int64_decimal"};
    cJSON **ref = NULL;
    int64_t nr = read_rows(PT "/fixed_length_decimal.parquet", &ref);
    EXPECT(nr == 24, "fixed_length_decimal: %s", err_msg());
    for (int k = 0; k < 4; k++) {
        char *f = xasprintf(PT "/%s.parquet", dec[k]);
        cJSON **rows = NULL;
        int64_t n = read_rows(f, &rows);
        EXPECT(n == nr, "%s: %" PRId64 " rows: %s", f, n, err_msg());
        for (int64_t i = 0; i < n && i < nr; i++)
            EXPECT(cJSON_Compare(rows[i], ref[i], 1), "%s row %" PRId64, f, i);
        rows_free(rows, n > 0 ? n : 0);
        free(f);
    }
    const cJSON *v23 = nr == 24 ? cJSON_GetObjectItemCaseSensitive(ref[23], "value") : NULL;
    EXPECT(cJSON_IsNumber(v23) && v23->valuedouble == 24, "decimal row 23 is 24.00");
    rows_free(ref, nr > 0 ? nr : 0);
    EXPECT(pairs == 9, "%d column pairs compared", pairs);
}

/* ---- projection ---- */

static void test_select(void) {
    struct reader *r;
    EXPECT(reader_open(&r, PT "/geospatial/geospatial.parquet") == 0, "%s", err_msg());
    if (!r) return;
    static const char *const want[] = {"wkt", "nothing_like_this"};
    reader_select(r, want, 2);
    cJSON *rec;
    int n = 0, only = 1;
    while (reader_next(r, &rec) == 1) {
        only &= cJSON_GetArraySize(rec) == 1 && cJSON_GetObjectItemCaseSensitive(rec, "wkt") != NULL;
        cJSON_Delete(rec);
        n++;
    }
    reader_close(r);
    EXPECT(n > 10 && only, "%d rows, only wkt: %d", n, only);
    /* none of the names present: every column stays (the formatter's error names the real ones) */
    EXPECT(reader_open(&r, PT "/binary.parquet") == 0, "%s", err_msg());
    static const char *const none[] = {"instruction"};
    reader_select(r, none, 1);
    EXPECT(reader_next(r, &rec) == 1 && cJSON_GetObjectItemCaseSensitive(rec, "foo"), "whole record");
    cJSON_Delete(rec);
    reader_close(r);
}

/* ---- hostile page headers: a tiny file must not ask for gigabytes ---- */

static void patch_write(const char *src, const char *dst, size_t at, const uint8_t *bytes, size_t n,
                        size_t *file_len) {
    size_t len;
    uint8_t *b = (uint8_t *)file_read_all(src, &len);
    EXPECT(b && at + n <= len, "%s", src);
    if (!b) return;
    memcpy(b + at, bytes, n);
    FILE *f = fopen(dst, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    *file_len = len;
    free(b);
}

/* Finds the first page header of int32_with_null_pages-like files: 0x15 0x00 (type DATA_PAGE) at
 * byte 4, then uncompressed_page_size (field 2, zigzag varint). */
static void test_hostile_pages(void) {
    const char *tmp = "/tmp/csft_test_parquet_wild.parquet";
    /* lz4_raw_compressed: first page at byte 4; field 2 (uncompressed size) follows the type. */
    size_t len = 0;
    size_t src_len;
    uint8_t *orig = (uint8_t *)file_read_all(PT "/lz4_raw_compressed.parquet", &src_len);
    EXPECT(orig && orig[4] == 0x15 && orig[5] == 0x00 && orig[6] == 0x15, "page header at byte 4");
    if (!orig) return;
    /* declared uncompressed size: 0x3fffffff (1 GiB - 1) as a zigzag varint of the same length
     * is not possible, so overwrite the varint with a 5-byte one by shifting: build a new file */
    size_t vlen = 0;
    while (orig[7 + vlen] & 0x80) vlen++;
    vlen++;
    uint8_t big[5] = {0xfe, 0xff, 0xff, 0xff, 0x07}; /* zigzag(0x3fffffff) */
    size_t nlen = src_len - vlen + 5;
    uint8_t *b = xmalloc(nlen);
    memcpy(b, orig, 7);
    memcpy(b + 7, big, 5);
    memcpy(b + 12, orig + 7 + vlen, src_len - 7 - vlen);
    /* the chunk's pages now start 5 - vlen bytes later than the footer says past this header:
     * the header itself is read at byte 4, which is all this test needs */
    FILE *f = fopen(tmp, "wb");
    fwrite(b, 1, nlen, f);
    fclose(f);
    free(b);
    int64_t rows = read_rows(tmp, NULL);
    EXPECT(rows < 0 && strstr(err_msg(), "more than LZ4_RAW can expand"), "size bomb refused: %s", err_msg());
    /* A data page claiming 2^27 values in a few bytes (num_values is the data page header's first
     * field: 0x2c 0x15 <zigzag>) */
    size_t at = 0;
    for (size_t k = 4; k + 2 < src_len; k++)
        if (orig[k] == 0x2c && orig[k + 1] == 0x15) {
            at = k + 2;
            break;
        }
    EXPECT(at > 0, "data page header found");
    uint8_t huge[4] = {0x80, 0x80, 0x80, 0x40}; /* zigzag(2^27 * ...) */
    size_t old = 0;
    while (orig[at + old] & 0x80) old++;
    old++;
    if (old == 1) { /* rebuild with a 4-byte varint */
        uint8_t *c = xmalloc(src_len + 3);
        memcpy(c, orig, at);
        memcpy(c + at, huge, 4);
        memcpy(c + at + 4, orig + at + 1, src_len - at - 1);
        f = fopen(tmp, "wb");
        fwrite(c, 1, src_len + 3, f);
        fclose(f);
        free(c);
    } else {
        patch_write(PT "/lz4_raw_compressed.parquet", tmp, at, huge, 4, &len);
    }
    rows = read_rows(tmp, NULL);
    EXPECT(rows < 0 && strstr(err_msg(), "claims") && strstr(err_msg(), "values"), "entry bomb refused: %s",
           err_msg());
    free(orig);
}

int main(void) {
    RUN(test_every_file);
    RUN(test_expected_csv);
    RUN(test_int96);
    RUN(test_flba);
    RUN(test_encodings_agree);
    RUN(test_select);
    RUN(test_hostile_pages);
    return TEST_SUMMARY("parquet_wild");
}
