/* Tests for src/data/parquet: every fixture .parquet file yields exactly the records of its
 * JSONL ground truth; truncated and corrupted files give errors naming the problem. */
#include "core/err.h"
#include "core/util.h"
#include "data/parquet.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
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
    for (int i = 0; i < n; i++) cJSON_Delete(recs[i]);
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
            EXPECT(cJSON_GetArraySize(rec) == n_cols, "%s row %d: %d keys", path, row, cJSON_GetArraySize(rec));
            for (int c = 0; c < n_cols; c++) {
                const char *name = parquet_column_name(p, c);
                cJSON *want = cJSON_GetObjectItemCaseSensitive(truth[row], name);
                cJSON *got = cJSON_GetObjectItemCaseSensitive(rec, name);
                if (!want || !got || !cJSON_Compare(want, got, 1)) {
                    if (mismatches++ < 3) {
                        char *g = got ? cJSON_PrintUnformatted(got) : NULL;
                        EXPECT(0, "%s row %d column %s differs: got %.200s", path, row, name, g ? g : "(missing)");
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

int main(void) {
    RUN(test_fixtures);
    RUN(test_open_errors);
    RUN(test_page_errors);
    RUN(test_fuzz);
    return TEST_SUMMARY("parquet");
}
