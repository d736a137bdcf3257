/* reader: the dispatcher behind reader.h. Picks a format by magic bytes (PAR1, Arrow
 * continuation marker / ARROW1, gzip), then by extension, else JSON (whose reader tells a
 * top-level array from JSON Lines by the first byte). A `save_to_disk` folder is read as its
 * state.json `_data_files` in order (else its data-*.arrow files sorted by name). */
#include "data/reader.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "data/arrow_reader.h"
#include "data/json_reader.h"
#include "data/mindrecord.h"

#if __has_include("data/parquet.h")
#include "data/parquet.h"
#define HAVE_PARQUET 1
#else
#define HAVE_PARQUET 0
#endif

enum { RD_JSON, RD_ARROW, RD_PARQUET, RD_MINDRECORD };

struct reader {
    int kind, skip_bad;
    struct json_reader *json;
    struct arrow_reader *arrow;
    struct parquet *pq;
    struct mindrecord *mr;
    int64_t pq_row;
    char **files; /* a folder's files, read one after another */
    int n_files, i_file;
    int64_t row_base, skipped_base; /* rows and skips of the folder's finished files */
    const char *const *select;      /* reader_select's columns (the caller's array) */
    int n_select;
};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int open_file(struct reader *r, const char *path) {
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return err_set("%s: cannot open: %m", path);
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    int kind = RD_JSON;
    if (got >= 4 && memcmp(head, "PAR1", 4) == 0)
        kind = RD_PARQUET;
    else if ((got >= 4 && memcmp(head, "\xff\xff\xff\xff", 4) == 0) ||
             (got >= 6 && memcmp(head, "ARROW1", 6) == 0))
        kind = RD_ARROW;
    else if (got >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        kind = RD_JSON;
    else if (ends_with(path, ".parquet"))
        kind = RD_PARQUET;
    else if (ends_with(path, ".arrow") || ends_with(path, ".feather") || ends_with(path, ".ipc"))
        kind = RD_ARROW;
    if (kind == RD_JSON && mindrecord_sniff(path)) kind = RD_MINDRECORD;
    r->kind = kind;
    if (kind == RD_MINDRECORD) return mindrecord_open(&r->mr, path);
    if (kind == RD_ARROW) return arrow_reader_open(&r->arrow, path, r->skip_bad);
    if (kind == RD_JSON) return json_reader_open(&r->json, path, r->skip_bad);
#if HAVE_PARQUET
    r->pq_row = 0;
    if (parquet_open(&r->pq, path)) return -1;
    if (r->n_select) parquet_select(r->pq, r->select, r->n_select);
    return 0;
#else
    return err_set("%s: parquet support not built into this csft (src/data/parquet.c missing)", path);
#endif
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void add_file(struct reader *r, char *path) {
    r->files = xrealloc(r->files, (size_t)(r->n_files + 1) * sizeof *r->files);
    r->files[r->n_files++] = path;
}

/* Lists a save_to_disk folder's shards into r->files. */
static int folder_list(struct reader *r, const char *dir) {
    char *p = path_join(dir, "dataset_dict.json");
    int is_dict = file_exists(p);
    free(p);
    if (is_dict)
        return err_set("%s: a DatasetDict folder (dataset_dict.json); pass one split's folder, e.g. %s/train",
                       dir, dir);
    p = path_join(dir, "state.json");
    if (file_exists(p)) {
        size_t n;
        char *text = file_read_all(p, &n);
        cJSON *st = text ? cJSON_ParseWithLength(text, n) : NULL;
        free(text);
        const cJSON *files = cJSON_GetObjectItemCaseSensitive(st, "_data_files");
        if (!cJSON_IsArray(files)) {
            cJSON_Delete(st);
            err_set("%s: expected a JSON object with a \"_data_files\" array", p);
            free(p);
            return -1;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, files) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "filename");
            if (!cJSON_IsString(fn) || strchr(fn->valuestring, '/')) {
                cJSON_Delete(st);
                err_set("%s: \"_data_files\" entry %d: expected {\"filename\": \"data-....arrow\"}", p,
                        r->n_files);
                free(p);
                return -1;
            }
            add_file(r, path_join(dir, fn->valuestring));
        }
        cJSON_Delete(st);
        free(p);
    } else {
        free(p);
        DIR *d = opendir(dir);
        if (!d) return err_set("%s: cannot open folder: %m", dir);
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strncmp(e->d_name, "data-", 5) == 0 && ends_with(e->d_name, ".arrow"))
                add_file(r, path_join(dir, e->d_name));
        closedir(d);
        qsort(r->files, (size_t)r->n_files, sizeof *r->files, cmp_str);
    }
    if (r->n_files == 0)
        return err_set("%s: folder has no state.json \"_data_files\" and no data-*.arrow files", dir);
    return 0;
}

int reader_open_opts(struct reader **out, const char *path, int skip_bad_rows) {
    *out = NULL;
    struct reader *r = xcalloc(1, sizeof *r);
    r->skip_bad = skip_bad_rows;
    int rc;
    if (dir_exists(path) && mindrecord_dir_has_files(path)) { /* MindFormers' dataset_dir */
        r->kind = RD_MINDRECORD;
        rc = mindrecord_open(&r->mr, path);
    } else {
        rc = dir_exists(path) ? folder_list(r, path) : 0;
        if (!rc) rc = open_file(r, r->n_files ? r->files[0] : path);
    }
    if (rc) {
        reader_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

int reader_open(struct reader **out, const char *path) { return reader_open_opts(out, path, 0); }

static int64_t cur_row(const struct reader *r) {
    if (r->json) return json_reader_row(r->json);
    if (r->arrow) return arrow_reader_row(r->arrow);
    if (r->mr) return mindrecord_row(r->mr);
    return r->pq_row;
}

static int64_t cur_skipped(const struct reader *r) {
    if (r->json) return json_reader_skipped(r->json);
    if (r->arrow) return arrow_reader_skipped(r->arrow);
    return 0;
}

static void close_current(struct reader *r) {
    json_reader_close(r->json);
    arrow_reader_close(r->arrow);
    mindrecord_close(r->mr);
    r->json = NULL;
    r->arrow = NULL;
    r->mr = NULL;
#if HAVE_PARQUET
    if (r->pq) parquet_close(r->pq);
#endif
    r->pq = NULL;
}

int reader_next(struct reader *r, cJSON **rec) {
    *rec = NULL;
    for (;;) {
        int rc;
        if (r->json)
            rc = json_reader_next(r->json, rec);
        else if (r->arrow)
            rc = arrow_reader_next(r->arrow, rec);
        else if (r->mr)
            rc = mindrecord_next(r->mr, rec);
#if HAVE_PARQUET
        else if (r->pq) {
            rc = parquet_next(r->pq, rec);
            if (rc == 1) r->pq_row++;
        }
#endif
        else
            return 0;
        if (rc != 0) return rc;
        if (r->i_file + 1 >= r->n_files) return 0;
        r->row_base += cur_row(r);
        r->skipped_base += cur_skipped(r);
        close_current(r);
        if (open_file(r, r->files[++r->i_file])) return -1;
    }
}

void reader_select(struct reader *r, const char *const *names, int n) {
    r->select = names;
    r->n_select = n;
#if HAVE_PARQUET
    if (r->pq && n) parquet_select(r->pq, names, n);
#endif
}

int64_t reader_row(const struct reader *r) { return r->row_base + cur_row(r); }
int64_t reader_skipped(const struct reader *r) { return r->skipped_base + cur_skipped(r); }

void reader_close(struct reader *r) {
    if (!r) return;
    close_current(r);
    for (int i = 0; i < r->n_files; i++)
        free(r->files[i]);
    free(r->files);
    free(r);
}
