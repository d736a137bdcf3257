/* mindrecord: reader of MindSpore MindRecord data files (format versions 2.0 and 3.0) without
 * their .db index: header JSON, schema, raw pages (msgpack scalars), blob pages (one or several
 * fields, integer arrays compressed in 3.0). Each row becomes a cJSON object with the schema
 * fields in sorted order: ints as numbers (past 2^53 as raw decimal items), float32/float64 as
 * raw items holding Python's repr, strings, bytes as {"$bytes": base64}, arrays nested in the
 * schema shape. Layout and semantics: docs/data.md (MindRecord) and the formats.md it cites. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct mindrecord; /* opaque */

/* Opens a MindRecord file set:
 *  - a data file: the whole shard group its header lists (shard_addresses, siblings in the same
 *    folder), as MindSpore's MindDataset(file) does;
 *  - a folder: every file whose name matches MindFormers' `mindrecord\d*$` (else every file that
 *    looks like a MindRecord data file; never the .db), sorted, each read alone, as MindFormers'
 *    dataset_dir does.
 * Returns 0, or -1 with an error naming the file. This is also the entry for
 * `data_loader.type: MindDataset` with `dataset_dir`. */
int mindrecord_open(struct mindrecord **out, const char *path_or_dir);
/* 1 with *rec set (caller cJSON_Delete()s it), 0 at the end, -1 with an error naming the file,
 * the page and the row. */
int mindrecord_next(struct mindrecord *m, struct cJSON **rec);
/* Rows returned so far (across the set's files). */
int64_t mindrecord_row(const struct mindrecord *m);
/* The header JSON of the file being read (or of the first file before any row); NULL if none. */
const struct cJSON *mindrecord_header(const struct mindrecord *m);
void mindrecord_close(struct mindrecord *m);

/* 1 if path looks like a MindRecord data file: its header starts {"header_size", or it ends
 * with MindSpore's "ENCRYPT" trailer (refused later with a clear error). */
int mindrecord_sniff(const char *path);
/* 1 if the folder holds MindRecord data files (the rule of mindrecord_open). */
int mindrecord_dir_has_files(const char *dir);

/* Fuzzing / robustness entry points: parse one data file alone (no siblings) and decode every
 * row. From a path, or from memory (name is used in messages). 0 ok, -1 with an error. */
int mindrecord_check_file(const char *path);
int mindrecord_check_buffer(const uint8_t *data, size_t n, const char *name);

/* Python's repr() of a double (shortest round-trip digits, 1.0, 1e-05, 1e+16, NaN, Infinity):
 * the text of float fields. buf holds at least 32 bytes. */
void mindrecord_float_repr(double d, char *buf);
