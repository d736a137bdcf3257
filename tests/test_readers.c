/* Tests for src/data readers: every JSON / JSONL / .gz / Arrow fixture in
 * tests/fixtures/datasets must yield exactly the ground-truth records (alpaca.jsonl,
 * messages.jsonl, sharegpt.jsonl, parsed here line by line with plain cJSON), `csft data cat`
 * must reproduce them, and malformed inputs must fail with their specific messages. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core/err.h"
#include "core/util.h"
#include "data/reader.h"
#include "data/utf8_check.h"
#include "test.h"

#define FX "tests/fixtures/datasets/"
#define FXT "tests/fixtures/arrow_types/"

struct truth {
    cJSON **rec;
    int n;
};

static struct truth t_alpaca, t_messages, t_sharegpt, t_types;

/* Ground truth without our reader: split the JSONL file on '\n' and cJSON_Parse each line. */
static struct truth truth_load(const char *path) {
    struct truth t = {0};
    size_t n;
    char *text = file_read_all(path, &n);
    if (!text) {
        fprintf(stderr, "cannot read %s: %s\n", path, err_msg());
        exit(1);
    }
    t.rec = xmalloc(sizeof *t.rec * (n / 2 + 1));
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            t.rec[t.n] = cJSON_Parse(line);
            if (!t.rec[t.n++]) {
                fprintf(stderr, "%s: line %d is not JSON\n", path, t.n);
                exit(1);
            }
        }
        if (!nl) break;
        line = nl + 1;
    }
    free(text);
    return t;
}

static void truth_free(struct truth *t) {
    for (int i = 0; i < t->n; i++)
        cJSON_Delete(t->rec[i]);
    free(t->rec);
}

/* Reads path through reader_open and compares every record with the truth. */
static void expect_records(const char *path, const struct truth *t) {
    struct reader *r;
    if (reader_open(&r, path)) {
        EXPECT(0, "open %s: %s", path, err_msg());
        return;
    }
    cJSON *rec;
    int n = 0, rc, mismatches = 0;
    while ((rc = reader_next(r, &rec)) == 1) {
        if (n < t->n && !cJSON_Compare(rec, t->rec[n], 1)) {
            if (mismatches++ < 3) {
                char *s = cJSON_PrintUnformatted(rec);
                EXPECT(0, "%s row %d differs from the ground truth: %.200s", path, n, s);
                free(s);
            }
        }
        cJSON_Delete(rec);
        n++;
    }
    EXPECT(rc == 0, "%s: %s", path, err_msg());
    EXPECT(n == t->n, "%s: %d records, expected %d", path, n, t->n);
    EXPECT(reader_row(r) == t->n, "%s: reader_row %lld", path, (long long)reader_row(r));
    EXPECT(reader_next(r, &rec) == 0, "%s: still at the end", path);
    reader_close(r);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static void gzip_file(const char *src, const char *dst, size_t cut) {
    size_t n;
    char *text = file_read_all(src, &n);
    gzFile gz = gzopen(dst, "wb");
    gzwrite(gz, text, (unsigned)n);
    gzclose(gz);
    free(text);
    if (cut) {
        char *z = file_read_all(dst, &n);
        write_file(dst, z, n > cut ? n - cut : 0);
        free(z);
    }
}

/* Reads a file expecting n_ok records and then an error containing msg (msg NULL: no error). */
static void expect_error_after(const char *path, int skip_bad, int n_ok, const char *msg, int64_t n_skipped) {
    struct reader *r;
    err_clear();
    int rc = reader_open_opts(&r, path, skip_bad);
    int n = 0;
    if (rc == 0) {
        cJSON *rec;
        while ((rc = reader_next(r, &rec)) == 1) {
            cJSON_Delete(rec);
            n++;
        }
        EXPECT(reader_skipped(r) == n_skipped, "%s: %lld skipped, expected %lld", path,
               (long long)reader_skipped(r), (long long)n_skipped);
        reader_close(r);
    }
    EXPECT(n == n_ok, "%s: %d records before the end/error, expected %d (%s)", path, n, n_ok, err_msg());
    if (msg) {
        EXPECT(rc < 0, "%s: expected an error \"%s\"", path, msg);
        EXPECT_ERR(msg);
        EXPECT_ERR(path);
    } else
        EXPECT(rc == 0, "%s: unexpected error %s", path, err_msg());
}

static void test_utf8_check(void) {
    EXPECT(utf8_check("abc\xc3\xa9\xf0\x9f\x98\x80xyz0123456789", 20) == 20, "valid");
    EXPECT(utf8_check("abcdefgh\xc0\x80", 10) == 8, "overlong NUL");
    EXPECT(utf8_check("\xed\xa0\x80", 3) == 0, "surrogate");
    EXPECT(utf8_check("a\xf4\x90\x80\x80", 5) == 1, "above U+10FFFF");
    EXPECT(utf8_check("ab\xe2\x82", 4) == 2, "cut sequence");
    EXPECT(utf8_check("\x80", 1) == 0, "lone continuation");
}

static void test_json_fixtures(void) {
    expect_records(FX "alpaca.json", &t_alpaca);
    expect_records(FX "alpaca_utf8_compact.json", &t_alpaca);
    expect_records(FX "alpaca.jsonl", &t_alpaca);
    expect_records(FX "messages.jsonl", &t_messages);
    expect_records(FX "sharegpt.json", &t_sharegpt);
    expect_records(FX "sharegpt.jsonl", &t_sharegpt);
}

/* Row 11 of alpaca.json is 300 x U+1F600 written as \ud83d\ude00 surrogate pairs. */
static void test_surrogate_pairs(void) {
    struct reader *r;
    EXPECT(reader_open(&r, FX "alpaca.json") == 0, "%s", err_msg());
    cJSON *rec = NULL;
    for (int i = 0; i < 12; i++) {
        cJSON_Delete(rec);
        EXPECT(reader_next(r, &rec) == 1, "row %d", i);
    }
    const char *out = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "output"));
    EXPECT(out && strlen(out) == 1200, "300 x 4 bytes, got %zu", out ? strlen(out) : 0);
    int ok = out != NULL;
    for (int k = 0; ok && k < 300; k++)
        ok = memcmp(out + 4 * k, "\xf0\x9f\x98\x80", 4) == 0;
    EXPECT(ok, "every code point is U+1F600");
    cJSON_Delete(rec);
    reader_close(r);
}

static void test_gzip(void) {
    gzip_file(FX "alpaca.json", "/tmp/csft_test_alpaca.json.gz", 0);
    gzip_file(FX "messages.jsonl", "/tmp/csft_test_messages.jsonl.gz", 0);
    expect_records("/tmp/csft_test_alpaca.json.gz", &t_alpaca);
    expect_records("/tmp/csft_test_messages.jsonl.gz", &t_messages);
    gzip_file(FX "alpaca.jsonl", "/tmp/csft_test_cut.jsonl.gz", 300);
    struct reader *r;
    EXPECT(reader_open(&r, "/tmp/csft_test_cut.jsonl.gz") == 0, "%s", err_msg());
    cJSON *rec;
    int rc;
    while ((rc = reader_next(r, &rec)) == 1)
        cJSON_Delete(rec);
    EXPECT(rc < 0, "a cut gzip stream is an error");
    EXPECT_ERR("truncated gzip stream");
    reader_close(r);
}

static void test_arrow_fixtures(void) {
    expect_records(FX "alpaca.arrow", &t_alpaca);
    expect_records(FX "alpaca_save_to_disk", &t_alpaca);
    expect_records(FX "alpaca.arrow_file.feather", &t_alpaca);
    expect_records(FX "messages.arrow", &t_messages);
}

/* Every supported Arrow type, nulls, LargeUtf8/LargeList, ZSTD bodies, the file format. */
static void test_arrow_types(void) {
    expect_records(FXT "types.arrow", &t_types);
    expect_records(FXT "types.zstd.arrow", &t_types);
    expect_records(FXT "types.feather", &t_types);
    struct reader *r;
    EXPECT(reader_open(&r, FXT "types.zstd.arrow") == 0, "%s", err_msg());
    cJSON *rec[3] = {0};
    for (int i = 0; i < 3; i++)
        EXPECT(reader_next(r, &rec[i]) == 1, "row %d", i);
    EXPECT(cJSON_GetObjectItem(rec[2], "id")->valuedouble == -9007199254740991.0, "int64 exact");
    EXPECT(cJSON_GetObjectItem(rec[0], "u32")->valuedouble == 4000000000.0, "uint32");
    EXPECT(cJSON_GetObjectItem(rec[0], "half")->valuedouble == 1.5, "float16");
    EXPECT(cJSON_IsNull(cJSON_GetObjectItem(rec[1], "meta")), "null struct");
    EXPECT(cJSON_IsNull(cJSON_GetObjectItem(rec[2], "meta")->child), "null inside a struct");
    EXPECT(cJSON_IsNull(cJSON_GetObjectItem(rec[1], "tags")), "null large list");
    EXPECT_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rec[0], "text")), "h\xc3\xa9llo \xf0\x9f\x98\x80");
    for (int i = 0; i < 3; i++)
        cJSON_Delete(rec[i]);
    reader_close(r);
}

/* A save_to_disk folder whose state.json lists two shards is read in that order. */
static void test_save_to_disk_shards(void) {
    const char *d = "/tmp/csft_test_std";
    dir_create(d);
    size_t n;
    char *a = file_read_all(FX "alpaca.arrow", &n);
    write_file("/tmp/csft_test_std/data-00000-of-00002.arrow", a, n);
    write_file("/tmp/csft_test_std/data-00001-of-00002.arrow", a, n);
    free(a);
    write_str("/tmp/csft_test_std/state.json",
              "{\"_data_files\": [{\"filename\": \"data-00000-of-00002.arrow\"}, "
              "{\"filename\": \"data-00001-of-00002.arrow\"}]}");
    struct reader *r;
    EXPECT(reader_open(&r, d) == 0, "%s", err_msg());
    cJSON *rec;
    int count = 0, same = 1;
    while (reader_next(r, &rec) == 1) {
        same &= cJSON_Compare(rec, t_alpaca.rec[count % 200], 1);
        cJSON_Delete(rec);
        count++;
    }
    EXPECT(count == 400 && same, "400 rows in order, got %d", count);
    EXPECT(reader_row(r) == 400, "row counter spans the shards");
    reader_close(r);
    write_str("/tmp/csft_test_std/state.json", "{\"_data_files\": [{\"filename\": \"data-00009.arrow\"}]}");
    expect_error_after(d, 0, 0, "data-00009.arrow: cannot open", 0);
    write_str("/tmp/csft_test_std/dataset_dict.json", "{\"splits\": [\"train\"]}");
    expect_error_after(d, 0, 0, "a DatasetDict folder", 0);
    remove("/tmp/csft_test_std/dataset_dict.json");
}

static void test_parquet_dispatch(void) {
#if __has_include("data/parquet.h")
    expect_records(FX "alpaca.pw.snappy.dict.parquet", &t_alpaca);
    expect_records(FX "messages.pw.snappy.dict.parquet", &t_messages);
#else
    expect_error_after(FX "alpaca.pw.snappy.dict.parquet", 0, 0, "parquet support not built", 0);
#endif
}

static void test_json_malformed(void) {
    /* Truncated inside row 3 of the array. */
    size_t n;
    char *text = file_read_all(FX "alpaca.json", &n);
    const char *row3 = strstr(text, "\"Translate");
    write_file("/tmp/csft_test_cut.json", text, (size_t)(row3 - text) + 40);
    free(text);
    expect_error_after("/tmp/csft_test_cut.json", 0, 2, "truncated: end of file inside row 2", 0);
    write_str("/tmp/csft_test_t1.json", "[{\"a\": 1},\n");
    expect_error_after("/tmp/csft_test_t1.json", 0, 1, "truncated: end of file before row 1", 0);
    write_str("/tmp/csft_test_t2.json", "[{\"a\": 1}\n");
    expect_error_after("/tmp/csft_test_t2.json", 0, 1, "before the top-level array is closed (after 1 rows)",
                       0);
    write_str("/tmp/csft_test_t3.json", "[{\"a\": 1},]");
    expect_error_after("/tmp/csft_test_t3.json", 0, 1, "expected row 1 (a JSON object), found ']'", 0);
    write_str("/tmp/csft_test_t4.json", "[{\"a\": 1}] x");
    expect_error_after("/tmp/csft_test_t4.json", 0, 1, "unexpected 'x' after the top-level array", 0);
    write_str("/tmp/csft_test_t5.json", "[{\"a\": 1}, 7, {\"a\": 2}]");
    expect_error_after("/tmp/csft_test_t5.json", 0, 1, ":1: row 1: expected a JSON object", 0);
    expect_error_after("/tmp/csft_test_t5.json", 1, 2, NULL, 1);
    write_str("/tmp/csft_test_t6.json", "[\n{\"a\": \"x\"},\n{\"a\": \"\xc3\x28\"},\n{\"a\": \"z\"}]");
    expect_error_after("/tmp/csft_test_t6.json", 0, 1, "csft_test_t6.json:3: row 1: invalid UTF-8 (byte 0xc3",
                       0);
    expect_error_after("/tmp/csft_test_t6.json", 1, 2, NULL, 1);
    write_str("/tmp/csft_test_t7.json", "[{\"a\": \"\\ud83d alone\"}]");
    expect_error_after("/tmp/csft_test_t7.json", 0, 0, "row 0: invalid JSON at byte", 0);
    write_str("/tmp/csft_test_t8.json", "[{\"a\": \"x\\\\u0000\"}, {\"a\": \"x\\u0000\"}]");
    expect_error_after("/tmp/csft_test_t8.json", 0, 2, NULL, 0); /* U+0000 is text like any other (as C0 80) */
    write_str("/tmp/csft_test_t9.json", "hello");
    expect_error_after("/tmp/csft_test_t9.json", 0, 0,
                       "expected a JSON array ('[') or JSON Lines objects ('{')", 0);
    write_str("/tmp/csft_test_t10.json", "  \n");
    expect_error_after("/tmp/csft_test_t10.json", 0, 0, NULL, 0);
    write_str("/tmp/csft_test_t11.json", "\xef\xbb\xbf[ ]");
    expect_error_after("/tmp/csft_test_t11.json", 0, 0, NULL, 0);
    expect_error_after("/tmp/csft_test_missing.json", 0, 0, "csft_test_missing.json: cannot open", 0);
}

static void test_jsonl_malformed(void) {
    /* Blank lines are skipped (rows count records, lines count lines); CRLF is fine. */
    write_str("/tmp/csft_test_l1.jsonl", "{\"a\": 1}\r\n\n   \n{\"a\": 2}\n{\"a\": 3\n{\"a\": 4}");
    expect_error_after("/tmp/csft_test_l1.jsonl", 0, 2, "csft_test_l1.jsonl:5: row 2: invalid JSON", 0);
    expect_error_after("/tmp/csft_test_l1.jsonl", 1, 3, NULL, 1);
    write_str("/tmp/csft_test_l2.jsonl", "{\"a\": 1} {\"b\": 2}\n");
    expect_error_after("/tmp/csft_test_l2.jsonl", 0, 0, ":1: row 0: unexpected text after the record", 0);
    write_str("/tmp/csft_test_l3.jsonl", "{\"a\": 1}\n[1, 2]\n");
    expect_error_after("/tmp/csft_test_l3.jsonl", 0, 1, ":2: row 1: expected a JSON object", 0);
    write_str("/tmp/csft_test_l4.jsonl", "{\"a\": \"ok\"}\n{\"a\": \"\xff\"}\n");
    expect_error_after("/tmp/csft_test_l4.jsonl", 0, 1, ":2: row 1: invalid UTF-8 (byte 0xff at byte 7", 0);
}

/* Records much bigger than the 1 MiB starting buffer, in both layouts. */
static void test_json_big_record(void) {
    size_t big = 3u << 20;
    char *s = xmalloc(big + 100);
    char *p = s + sprintf(s, "[{\"a\": \"");
    memset(p, 'x', big);
    p += big;
    p += sprintf(p, "\"}, {\"a\": \"y\"}]");
    write_file("/tmp/csft_test_big.json", s, (size_t)(p - s));
    s[0] = ' ';
    p[-1] = '\n';
    memcpy(strstr(s + big, "}, {"), "}\n {", 4);
    write_file("/tmp/csft_test_big.jsonl", s, (size_t)(p - s));
    free(s);
    const char *paths[] = {"/tmp/csft_test_big.json", "/tmp/csft_test_big.jsonl"};
    for (int k = 0; k < 2; k++) {
        struct reader *r;
        EXPECT(reader_open(&r, paths[k]) == 0, "%s", err_msg());
        cJSON *rec;
        EXPECT(reader_next(r, &rec) == 1, "%s: %s", paths[k], err_msg());
        const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "a"));
        EXPECT(a && strlen(a) == big, "%s: big string", paths[k]);
        cJSON_Delete(rec);
        EXPECT(reader_next(r, &rec) == 1, "%s: second", paths[k]);
        EXPECT_STR(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "a")), "y");
        cJSON_Delete(rec);
        EXPECT(reader_next(r, &rec) == 0, "%s: end (%s)", paths[k], err_msg());
        reader_close(r);
    }
}

static void test_arrow_malformed(void) {
    size_t n;
    char *a = file_read_all(FX "alpaca.arrow", &n);
    /* Cut inside the second record batch's body: the first batch's 64 rows, then the error. */
    write_file("/tmp/csft_test_cut.arrow", a, 80000);
    expect_error_after("/tmp/csft_test_cut.arrow", 0, 64, "truncated: message at byte 73536 has a", 0);
    write_file("/tmp/csft_test_cut2.arrow", a, 100);
    expect_error_after("/tmp/csft_test_cut2.arrow", 0, 0,
                       "truncated: message at byte 0 claims 432 metadata bytes", 0);
    /* Invalid UTF-8 in row 0's instruction: an error naming row and column, or one skipped row. */
    char *hit = memmem(a, n, "Give three tips", 15);
    EXPECT(hit != NULL, "fixture text");
    if (hit) hit[3] = (char)0xff;
    write_file("/tmp/csft_test_utf8.arrow", a, n);
    expect_error_after("/tmp/csft_test_utf8.arrow", 0, 0,
                       "row 0, column 'instruction': invalid UTF-8 (byte 0xff at byte 3 of the string)", 0);
    expect_error_after("/tmp/csft_test_utf8.arrow", 1, 199, NULL, 1);
    free(a);
    a = file_read_all(FX "alpaca.arrow_file.feather", &n);
    write_file("/tmp/csft_test_cut.feather", a, n - 3);
    expect_error_after("/tmp/csft_test_cut.feather", 0, 0, "no closing ARROW1 magic", 0);
    free(a);
}

/* An out-of-range string offset is caught when its record batch is loaded (even when
 * skipping bad rows: the file's structure is broken, not one row). */
static void test_arrow_bad_offsets(void) {
    size_t n;
    char *a = file_read_all(FX "alpaca.arrow", &n);
    /* The first batch's body: the instruction column's offsets start right after its
     * (empty) validity buffer; row 1's offset is set huge. Body follows the metadata. */
    uint32_t schema_len, batch_len;
    memcpy(&schema_len, a + 4, 4);
    size_t batch = 8 + schema_len;
    memcpy(&batch_len, a + batch + 4, 4);
    size_t body = batch + 8 + batch_len;
    uint32_t huge = 0x7fffff00u;
    memcpy(a + body + 4, &huge, 4);
    write_file("/tmp/csft_test_offsets.arrow", a, n);
    expect_error_after("/tmp/csft_test_offsets.arrow", 1, 0,
                       "column 'instruction': offset 2147483392 at index 1", 0);
    free(a);
}

static int run_capture(const char *cmd, char **out, size_t *n) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 20, len = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, p)) > 0)
        if ((len += got) == cap) buf = xrealloc(buf, cap *= 2);
    *out = buf;
    *n = len;
    return pclose(p);
}

/* `csft data cat` reproduces the ground-truth JSONL byte for byte (column order included). */
static void test_cli_cat(void) {
    size_t tn;
    char *truth = file_read_all(FX "alpaca.jsonl", &tn);
    const char *files[] = {"alpaca.json",  "alpaca_utf8_compact.json", "alpaca.jsonl",
                           "alpaca.arrow", "alpaca_save_to_disk",      "alpaca.arrow_file.feather"};
    for (int k = 0; k < 6; k++) {
        char cmd[256], *out;
        size_t n;
        snprintf(cmd, sizeof cmd, "./csft data cat " FX "%s", files[k]);
        int st = run_capture(cmd, &out, &n);
        EXPECT(st == 0 && n == tn && memcmp(out, truth, n) == 0, "%s: exit %d, %zu bytes vs %zu", files[k],
               st, n, tn);
        free(out);
    }
    char *out;
    size_t n;
    int st =
        run_capture("./csft data cat --offset 199 --limit 2 " FX "alpaca.jsonl " FX "alpaca.arrow", &out, &n);
    const char *last = truth + tn - 2; /* the '\n' before the last line */
    while (last > truth && *last != '\n')
        last--;
    size_t first_len = (size_t)(strchr(truth, '\n') - truth) + 1;
    EXPECT(st == 0 && last && n == strlen(last + 1) + first_len &&
               memcmp(out, last + 1, strlen(last + 1)) == 0 &&
               memcmp(out + strlen(last + 1), truth, first_len) == 0,
           "offset/limit across files (exit %d, %zu bytes)", st, n);
    free(out);
    free(truth);
    st = run_capture("./csft data cat --limit x " FX "alpaca.jsonl 2>&1", &out, &n);
    EXPECT(WEXITSTATUS(st) == 2 && memmem(out, n, "--limit expects a non-negative integer", 38),
           "bad --limit");
    free(out);
}

int main(void) {
    t_alpaca = truth_load(FX "alpaca.jsonl");
    t_messages = truth_load(FX "messages.jsonl");
    t_sharegpt = truth_load(FX "sharegpt.jsonl");
    t_types = truth_load(FXT "types.jsonl");
    if (t_alpaca.n != 200 || t_messages.n != 200 || t_sharegpt.n != 200) {
        fprintf(stderr, "ground truth: %d %d %d records, expected 200 each\n", t_alpaca.n, t_messages.n,
                t_sharegpt.n);
        return 1;
    }
    RUN(test_utf8_check);
    RUN(test_json_fixtures);
    RUN(test_surrogate_pairs);
    RUN(test_gzip);
    RUN(test_arrow_fixtures);
    RUN(test_arrow_types);
    RUN(test_save_to_disk_shards);
    RUN(test_parquet_dispatch);
    RUN(test_json_malformed);
    RUN(test_jsonl_malformed);
    RUN(test_json_big_record);
    RUN(test_arrow_malformed);
    RUN(test_arrow_bad_offsets);
    RUN(test_cli_cat);
    truth_free(&t_alpaca);
    truth_free(&t_messages);
    truth_free(&t_sharegpt);
    truth_free(&t_types);
    return TEST_SUMMARY("readers");
}
