/* msgpack: see msgpack.h. Formats from the MessagePack specification; integers are big-endian. */
#include "data/msgpack.h"

#include <string.h>

#include "core/err.h"
#include "core/util.h"

static uint64_t be(const uint8_t *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

static int need(size_t n, size_t pos, size_t k) {
    if (k > n - pos)
        return err_set("msgpack value truncated at byte %zu (needs %zu more bytes, %zu left)", pos, k,
                       n - pos);
    return 0;
}

int mp_read(const uint8_t *p, size_t n, size_t *pos, struct mp_value *v) {
    size_t at = *pos;
    memset(v, 0, sizeof *v);
    if (at >= n) return err_set("msgpack value truncated at byte %zu (nothing left)", at);
    uint8_t c = p[at++];
    int k = 0;            /* size of the big-endian length / value field */
    int64_t payload = -1; /* byte payload length for str/bin/ext */
    if (c <= 0x7f) {
        v->type = MP_UINT, v->u = c;
    } else if (c >= 0xe0) {
        v->type = MP_INT, v->i = (int8_t)c;
    } else if ((c & 0xf0) == 0x80) {
        v->type = MP_MAP, v->len = c & 0x0f;
    } else if ((c & 0xf0) == 0x90) {
        v->type = MP_ARRAY, v->len = c & 0x0f;
    } else if ((c & 0xe0) == 0xa0) {
        v->type = MP_STR, payload = c & 0x1f;
    } else {
        switch (c) {
        case 0xc0: v->type = MP_NIL; break;
        case 0xc2:
        case 0xc3: v->type = MP_BOOL, v->i = c == 0xc3; break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            k = 1 << (c - 0xc4);
            if (need(n, at, (size_t)k)) return -1;
            v->type = MP_BIN, payload = (int64_t)be(p + at, k), at += (size_t)k;
            break;
        case 0xc7:
        case 0xc8:
        case 0xc9:
            k = 1 << (c - 0xc7);
            if (need(n, at, (size_t)k + 1)) return -1;
            v->type = MP_EXT, payload = (int64_t)be(p + at, k), at += (size_t)k + 1;
            break;
        case 0xca: {
            if (need(n, at, 4)) return -1;
            uint32_t b = (uint32_t)be(p + at, 4);
            float f;
            memcpy(&f, &b, 4);
            v->type = MP_FLOAT, v->f = f, at += 4;
            break;
        }
        case 0xcb: {
            if (need(n, at, 8)) return -1;
            uint64_t b = be(p + at, 8);
            memcpy(&v->f, &b, 8);
            v->type = MP_FLOAT, at += 8;
            break;
        }
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf:
            k = 1 << (c - 0xcc);
            if (need(n, at, (size_t)k)) return -1;
            v->type = MP_UINT, v->u = be(p + at, k), at += (size_t)k;
            break;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            k = 1 << (c - 0xd0);
            if (need(n, at, (size_t)k)) return -1;
            uint64_t u = be(p + at, k);
            if (k < 8 && (u >> (8 * k - 1))) u |= ~0ull << (8 * k); /* sign-extend */
            v->type = MP_INT, v->i = (int64_t)u, at += (size_t)k;
            break;
        }
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            if (need(n, at, 1)) return -1;
            v->type = MP_EXT, payload = 1 << (c - 0xd4), at += 1;
            break;
        case 0xd9:
        case 0xda:
        case 0xdb:
            k = 1 << (c - 0xd9);
            if (need(n, at, (size_t)k)) return -1;
            v->type = MP_STR, payload = (int64_t)be(p + at, k), at += (size_t)k;
            break;
        case 0xdc:
        case 0xdd:
            k = c == 0xdc ? 2 : 4;
            if (need(n, at, (size_t)k)) return -1;
            v->type = MP_ARRAY, v->len = (uint32_t)be(p + at, k), at += (size_t)k;
            break;
        case 0xde:
        case 0xdf:
            k = c == 0xde ? 2 : 4;
            if (need(n, at, (size_t)k)) return -1;
            v->type = MP_MAP, v->len = (uint32_t)be(p + at, k), at += (size_t)k;
            break;
        default: return err_set("msgpack: unknown type byte 0x%02x at byte %zu", c, at - 1);
        }
    }
    if (payload >= 0) {
        if (need(n, at, (size_t)payload)) return -1;
        v->s = p + at, v->len = (uint32_t)payload, at += (size_t)payload;
    }
    *pos = at;
    return 0;
}

static int skip_depth(const uint8_t *p, size_t n, size_t *pos, int depth) {
    struct mp_value v;
    if (depth > 64) return err_set("msgpack: nesting deeper than 64 levels at byte %zu", *pos);
    if (mp_read(p, n, pos, &v)) return -1;
    uint64_t items = v.type == MP_ARRAY ? v.len : v.type == MP_MAP ? 2ull * v.len : 0;
    /* every element takes at least one byte: a count past the end is damage, not work */
    if (items > n - *pos)
        return err_set("msgpack: %llu elements announced at byte %zu, only %zu bytes left",
                       (unsigned long long)items, *pos, n - *pos);
    for (uint64_t k = 0; k < items; k++)
        if (skip_depth(p, n, pos, depth + 1)) return -1;
    return 0;
}

int mp_skip(const uint8_t *p, size_t n, size_t *pos) { return skip_depth(p, n, pos, 0); }

void mp_put(struct mp_buf *b, const void *src, size_t len) {
    if (b->n + len > b->cap) {
        b->cap = (b->n + len) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, len);
    b->n += len;
}

static void put_be(struct mp_buf *b, uint8_t tag, uint64_t v, int k) {
    uint8_t t[9];
    t[0] = tag;
    for (int i = 0; i < k; i++)
        t[1 + i] = (uint8_t)(v >> (8 * (k - 1 - i)));
    mp_put(b, t, (size_t)k + 1);
}

void mp_write_map(struct mp_buf *b, uint32_t count) {
    if (count <= 15) {
        uint8_t t = (uint8_t)(0x80 | count);
        mp_put(b, &t, 1);
    } else if (count <= 0xffff)
        put_be(b, 0xde, count, 2);
    else
        put_be(b, 0xdf, count, 4);
}

void mp_write_str(struct mp_buf *b, const char *s, size_t len) {
    if (len <= 31) {
        uint8_t t = (uint8_t)(0xa0 | len);
        mp_put(b, &t, 1);
    } else if (len <= 0xff)
        put_be(b, 0xd9, len, 1);
    else if (len <= 0xffff)
        put_be(b, 0xda, len, 2);
    else
        put_be(b, 0xdb, len, 4);
    mp_put(b, s, len);
}

void mp_write_bin(struct mp_buf *b, const void *s, size_t len) {
    if (len <= 0xff)
        put_be(b, 0xc4, len, 1);
    else if (len <= 0xffff)
        put_be(b, 0xc5, len, 2);
    else
        put_be(b, 0xc6, len, 4);
    mp_put(b, s, len);
}

/* nlohmann: non-negative values take the unsigned forms, negative ones the signed forms */
void mp_write_int(struct mp_buf *b, int64_t v) {
    if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u < 128) {
            uint8_t t = (uint8_t)u;
            mp_put(b, &t, 1);
        } else if (u <= 0xff)
            put_be(b, 0xcc, u, 1);
        else if (u <= 0xffff)
            put_be(b, 0xcd, u, 2);
        else if (u <= 0xffffffffu)
            put_be(b, 0xce, u, 4);
        else
            put_be(b, 0xcf, u, 8);
    } else if (v >= -32) {
        uint8_t t = (uint8_t)(int8_t)v;
        mp_put(b, &t, 1);
    } else if (v >= INT8_MIN)
        put_be(b, 0xd0, (uint64_t)v & 0xff, 1);
    else if (v >= INT16_MIN)
        put_be(b, 0xd1, (uint64_t)v & 0xffff, 2);
    else if (v >= INT32_MIN)
        put_be(b, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    else
        put_be(b, 0xd3, (uint64_t)v, 8);
}

void mp_write_f64(struct mp_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_be(b, 0xcb, u, 8);
}
