/* mindrecord_write: writes MindRecord data files (+ their .db SQLite index) that MindSpore's
 * MindDataset reads, with MindSpore's page layout (ShardWriter: row groups cut per write call,
 * blob pages filled to page_size, raw rows of a group kept together), so that the same rows
 * written in the same calls give the same bytes as MindSpore's FileWriter. docs/data.md. */
#pragma once
#include <stdint.h>

struct cJSON;
struct mindrecord_writer; /* opaque */

struct mindrecord_write_options {
    int shard_num;       /* files name0..name(N-1) (zero-padded like FileWriter); 1 = `name` itself */
    int64_t header_size; /* 0: MindSpore's default 16 MiB (range 16 KiB .. 128 MiB) */
    int64_t page_size;   /* 0: MindSpore's default 32 MiB (range 32 KiB .. 256 MiB) */
    int rows_per_write;  /* rows per FileWriter.write_raw_data call: 1 (MindFormers' scripts, the
                            default when 0) or N; -1 = every row in one call at close */
    int version2;        /* write format 2.0 (no integer compression, no compression_size) */
    int no_db;           /* skip the .db index */
    const char *desc;    /* the schema's "desc" (NULL: "") */
};

/* schema: {"field": {"type": "int32"|"int64"|"float32"|"float64"|"string"|"bytes"[, "shape": [..]]}}.
 * index_fields: a list of scalar field names, JSON null for none, or NULL for MindSpore's default
 * (every scalar field). Files already at path are replaced. */
int mindrecord_writer_open(struct mindrecord_writer **out, const char *path, const struct cJSON *schema,
                           const struct cJSON *index_fields, const struct mindrecord_write_options *opt);
/* Adds one row: an object with every schema field (values as the reader gives them: numbers or
 * raw numeric items, strings, {"$bytes": base64}, lists nested in the field's shape). */
int mindrecord_writer_add(struct mindrecord_writer *w, const struct cJSON *row);
/* Flushes, writes the headers and the .db files, and frees w (also on error). */
int mindrecord_writer_close(struct mindrecord_writer *w);
/* Frees w without finishing (the files are left incomplete). */
void mindrecord_writer_abort(struct mindrecord_writer *w);
