/* arrow_reader: streaming reader for Arrow IPC files as Hugging Face `datasets` writes them
 * (cache files and `save_to_disk` shards: the IPC *stream* format), and the IPC *file*
 * format (Feather v2, "ARROW1" magic). One record batch is held at a time; each row becomes
 * a cJSON object with the schema's columns in order (structs as objects, lists as arrays). */
#pragma once
#include <stdint.h>

struct cJSON;
struct arrow_reader; /* opaque */

/* skip_bad_rows: a row holding invalid UTF-8 is counted and skipped instead of an error. */
int arrow_reader_open(struct arrow_reader **out, const char *path, int skip_bad_rows);
/* 1 with *rec set (caller cJSON_Delete()s it), 0 at the end, -1 on error. */
int arrow_reader_next(struct arrow_reader *r, struct cJSON **rec);
/* Index of the next row in the file (skipped rows count). */
int64_t arrow_reader_row(const struct arrow_reader *r);
int64_t arrow_reader_skipped(const struct arrow_reader *r);
void arrow_reader_close(struct arrow_reader *r);
