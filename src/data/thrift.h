/* thrift: a bounded reader for the Thrift compact protocol, the encoding of Parquet's footer
 * (FileMetaData) and page headers. Never reads past the buffer: the first problem sets
 * t->why and every later read returns zeros, so callers parse a whole struct and check once.
 * Spec: https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum thrift_type {
    THRIFT_STOP = 0,
    THRIFT_TRUE = 1,
    THRIFT_FALSE = 2,
    THRIFT_BYTE = 3,
    THRIFT_I16 = 4,
    THRIFT_I32 = 5,
    THRIFT_I64 = 6,
    THRIFT_DOUBLE = 7,
    THRIFT_BINARY = 8,
    THRIFT_LIST = 9,
    THRIFT_SET = 10,
    THRIFT_MAP = 11,
    THRIFT_STRUCT = 12,
};

struct thrift {
    const uint8_t *start, *p, *end;
    const char *why; /* NULL while ok; the first error otherwise */
    int depth;       /* nesting of skipped structs, bounded */
};

void thrift_init(struct thrift *t, const void *buf, size_t len);
/* Next field header of the current struct: returns 0 at the stop field (or on error),
 * 1 with *type and *id set otherwise. *last_id is the previous id (start a struct with 0). */
int thrift_field(struct thrift *t, int16_t *last_id, int *type, int16_t *id);
/* Value readers; `type` is the field's (or list element's) type, checked against the
 * expected one (a mismatch is an error). A boolean field's value is its type nibble; a
 * boolean list element is one byte (in_list = 1). */
int32_t thrift_i32(struct thrift *t, int type);
int64_t thrift_i64(struct thrift *t, int type);
int thrift_bool(struct thrift *t, int type, int in_list);
/* A binary/string: pointer into the buffer (not NUL-terminated) and its length. */
const uint8_t *thrift_binary(struct thrift *t, int type, uint32_t *len);
/* A list header: returns the element count (bounded by the bytes left), *elem_type set. */
int32_t thrift_list(struct thrift *t, int type, int *elem_type);
/* Skips a value of the given type (nested structs/lists included). */
void thrift_skip(struct thrift *t, int type);
/* Bytes consumed so far. */
static inline size_t thrift_pos(const struct thrift *t) { return (size_t)(t->p - t->start); }
