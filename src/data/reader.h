/* reader: streaming dataset readers. Every format yields records one at a time as cJSON
 * objects carrying the dataset's own columns (lists of structs as arrays of objects), so
 * formatting code and `csft data cat` see every format the same way. Never loads a whole
 * multi-GB file. Errors name the file, the row (0-based record index) and what is wrong. */
#pragma once
#include <stdint.h>

struct cJSON;
struct reader; /* opaque */

/* Picks the reader by content/extension: .json (top-level array), .jsonl (.gz for both),
 * .parquet, .arrow (IPC stream), or a `save_to_disk` folder (data-*.arrow, state.json). */
int reader_open(struct reader **out, const char *path);
/* As reader_open; skip_bad_rows != 0 makes a bad row (malformed JSON line, invalid UTF-8,
 * not an object) be skipped and counted (reader_skipped) instead of an error. Damage to
 * the file's structure (truncation, corrupt Arrow/Parquet metadata) is always an error. */
int reader_open_opts(struct reader **out, const char *path, int skip_bad_rows);
/* Returns 1 with *rec set (caller frees with cJSON_Delete), 0 at the end, -1 on error. */
int reader_next(struct reader *r, struct cJSON **rec);
/* Reads only these columns where the format can leave the others undecoded (Parquet), for
 * every file of the reader; a file holding none of them is read whole, so that the
 * formatter's error names its real columns. `names` must outlive the reader. Call before
 * the first reader_next. */
void reader_select(struct reader *r, const char *const *names, int n);
/* Index of the next record to be returned (skipped rows count; across a folder's files). */
int64_t reader_row(const struct reader *r);
/* Rows skipped so far (with skip_bad_rows). */
int64_t reader_skipped(const struct reader *r);
void reader_close(struct reader *r);
