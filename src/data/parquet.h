/* parquet: a streaming Parquet reader yielding one cJSON object per row, with the file's
 * top-level columns as keys (list<struct> as arrays of objects, nulls as JSON null). The file
 * is mmap'd and decoded one page per column at a time; records are assembled from repetition
 * and definition levels (Dremel). Page formats: parquet_column.h; Thrift footer: thrift.h.
 * INT64 values become JSON numbers (doubles): exact up to 2^53; DECIMAL and FLOAT16 values are
 * numbers too; INT96 timestamps ISO 8601 strings; UUIDs strings; BYTE_ARRAY without a STRING
 * annotation and other FIXED_LEN_BYTE_ARRAY values {"$bytes": "<base64>"}. */
#pragma once
#include <stdint.h>

struct cJSON;
struct parquet; /* opaque */

/* Opens and validates the footer and schema (codecs are checked when a column is read). */
int parquet_open(struct parquet **out, const char *path);
/* 1 = record produced (caller frees with cJSON_Delete), 0 = end, -1 = error (err set; the
 * reader stays failed). */
int parquet_next(struct parquet *p, struct cJSON **rec);
/* Rows in the file (from the footer). */
int64_t parquet_num_rows(const struct parquet *p);
/* Index of the next row parquet_next returns. */
int64_t parquet_row(const struct parquet *p);
/* Number of top-level columns and the name of one ("messages"). */
int parquet_num_columns(const struct parquet *p);
const char *parquet_column_name(const struct parquet *p, int i);
/* Decodes only the top-level columns named (a dataset's image column is never decompressed
 * when the run reads only its text). Returns how many of the file's columns were kept; with
 * none of the names present nothing changes (every column stays) and 0 is returned. Call
 * before the first parquet_next. */
int parquet_select(struct parquet *p, const char *const *names, int n);
void parquet_close(struct parquet *p);
