/* thrift: bounded Thrift compact protocol reader; see thrift.h. Integers are ULEB128 varints,
 * signed ones zigzag-encoded; field headers carry a 4-bit id delta and a 4-bit type. */
#include "data/thrift.h"

#include <string.h>

enum { THRIFT_MAX_DEPTH = 64 };

void thrift_init(struct thrift *t, const void *buf, size_t len) {
    t->start = t->p = buf;
    t->end = t->p + len;
    t->why = NULL;
    t->depth = 0;
}

static void fail(struct thrift *t, const char *why) {
    if (!t->why) t->why = why;
    t->p = t->end;
}

static uint64_t varint(struct thrift *t) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (t->p >= t->end) {
            fail(t, "truncated varint");
            return 0;
        }
        uint8_t b = *t->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    fail(t, "varint longer than 10 bytes");
    return 0;
}

static int64_t zigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static int byte(struct thrift *t) {
    if (t->p >= t->end) {
        fail(t, "truncated struct");
        return 0;
    }
    return *t->p++;
}

int thrift_field(struct thrift *t, int16_t *last_id, int *type, int16_t *id) {
    if (t->why) return 0;
    int b = byte(t);
    if (t->why || b == 0) return 0;
    *type = b & 0x0f;
    int delta = b >> 4;
    if (delta) {
        *id = (int16_t)(*last_id + delta);
    } else {
        *id = (int16_t)zigzag(varint(t));
    }
    *last_id = *id;
    if (*type > THRIFT_STRUCT) {
        fail(t, "unknown field type");
        return 0;
    }
    return !t->why;
}

static int expect(struct thrift *t, int type, int want) {
    if (type == want) return 1;
    fail(t, "field has an unexpected type");
    return 0;
}

int32_t thrift_i32(struct thrift *t, int type) {
    if (type == THRIFT_I16 || type == THRIFT_BYTE) type = THRIFT_I32;
    if (!expect(t, type, THRIFT_I32)) return 0;
    int64_t v = zigzag(varint(t));
    if (v < INT32_MIN || v > INT32_MAX) {
        fail(t, "i32 out of range");
        return 0;
    }
    return (int32_t)v;
}

int64_t thrift_i64(struct thrift *t, int type) {
    if (type == THRIFT_I32 || type == THRIFT_I16) type = THRIFT_I64;
    if (!expect(t, type, THRIFT_I64)) return 0;
    return zigzag(varint(t));
}

int thrift_bool(struct thrift *t, int type, int in_list) {
    if (in_list) return byte(t) == 1;
    if (type != THRIFT_TRUE && type != THRIFT_FALSE) {
        fail(t, "field has an unexpected type (want bool)");
        return 0;
    }
    return type == THRIFT_TRUE;
}

const uint8_t *thrift_binary(struct thrift *t, int type, uint32_t *len) {
    *len = 0;
    if (!expect(t, type, THRIFT_BINARY)) return NULL;
    uint64_t n = varint(t);
    if (t->why) return NULL;
    if (n > (uint64_t)(t->end - t->p)) {
        fail(t, "string longer than the bytes left");
        return NULL;
    }
    const uint8_t *s = t->p;
    t->p += n;
    *len = (uint32_t)n;
    return s;
}

int32_t thrift_list(struct thrift *t, int type, int *elem_type) {
    *elem_type = 0;
    if (type == THRIFT_SET) type = THRIFT_LIST;
    if (!expect(t, type, THRIFT_LIST)) return 0;
    int b = byte(t);
    uint64_t n = (uint64_t)(b >> 4);
    if (n == 15) n = varint(t);
    *elem_type = b & 0x0f;
    if (t->why) return 0;
    /* Every element takes at least one byte, except booleans-as-fields which lists never use. */
    if (n > (uint64_t)(t->end - t->p)) {
        fail(t, "list longer than the bytes left");
        return 0;
    }
    return (int32_t)n;
}

/* In lists and maps a boolean is one byte, not a bare type nibble. */
static void skip_elem(struct thrift *t, int type) {
    if (type == THRIFT_TRUE || type == THRIFT_FALSE)
        byte(t);
    else
        thrift_skip(t, type);
}

void thrift_skip(struct thrift *t, int type) {
    if (t->why) return;
    if (++t->depth > THRIFT_MAX_DEPTH) {
        fail(t, "nesting too deep");
        return;
    }
    switch (type) {
    case THRIFT_TRUE:
    case THRIFT_FALSE: break;
    case THRIFT_BYTE: byte(t); break;
    case THRIFT_I16:
    case THRIFT_I32:
    case THRIFT_I64: varint(t); break;
    case THRIFT_DOUBLE:
        if (t->end - t->p < 8)
            fail(t, "truncated double");
        else
            t->p += 8;
        break;
    case THRIFT_BINARY: {
        uint32_t n;
        thrift_binary(t, type, &n);
        break;
    }
    case THRIFT_LIST:
    case THRIFT_SET: {
        int et;
        int32_t n = thrift_list(t, type, &et);
        for (int32_t i = 0; i < n && !t->why; i++)
            skip_elem(t, et);
        break;
    }
    case THRIFT_MAP: {
        uint64_t n = varint(t);
        if (n == 0 || t->why) break;
        int kv = byte(t);
        if (n > (uint64_t)(t->end - t->p)) {
            fail(t, "map longer than the bytes left");
            break;
        }
        for (uint64_t i = 0; i < n && !t->why; i++) {
            skip_elem(t, kv >> 4);
            skip_elem(t, kv & 0x0f);
        }
        break;
    }
    case THRIFT_STRUCT: {
        int16_t last = 0, id;
        int ft;
        while (thrift_field(t, &last, &ft, &id))
            thrift_skip(t, ft);
        break;
    }
    default: fail(t, "unknown type"); break;
    }
    t->depth--;
}
