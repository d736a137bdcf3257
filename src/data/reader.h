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
/* Returns 1 with *rec set (caller frees with cJSON_Delete), 0 at the end, -1 on error. */
int reader_next(struct reader *r, struct cJSON **rec);
/* Index of the next record to be returned. */
int64_t reader_row(const struct reader *r);
void reader_close(struct reader *r);
