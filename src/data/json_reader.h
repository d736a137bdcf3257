/* json_reader: streaming reader for a JSON file holding one top-level array of objects
 * (json.dump of a list, as alpaca-gpt4-data ships) or JSON Lines (one object per line,
 * blank lines skipped), either optionally gzip-compressed. The array is scanned element by
 * element in a sliding buffer, so memory is bounded by the largest record, not the file. */
#pragma once
#include <stdint.h>

struct cJSON;
struct json_reader; /* opaque */

/* Opens path (plain or .gz; the content decides array vs lines). skip_bad_rows: a row that
 * is not valid JSON, not an object, or not valid UTF-8 is counted and skipped, not an error. */
int json_reader_open(struct json_reader **out, const char *path, int skip_bad_rows);
/* 1 with *rec set (caller cJSON_Delete()s it), 0 at the end, -1 on error. */
int json_reader_next(struct json_reader *r, struct cJSON **rec);
/* Index of the next row in the file (skipped rows count). */
int64_t json_reader_row(const struct json_reader *r);
int64_t json_reader_skipped(const struct json_reader *r);
void json_reader_close(struct json_reader *r);
