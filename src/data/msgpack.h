/* msgpack: the small subset of MessagePack (msgpack.org spec) that MindRecord raw pages use:
 * a reader that decodes one value header at a time from a bounded buffer (never reading past
 * it, nesting limited), and a writer of maps, strings, integers and float64 in the forms
 * nlohmann::json::to_msgpack picks (smallest integer form, fixstr/str8/16/32). */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum mp_type { MP_NIL, MP_BOOL, MP_INT, MP_UINT, MP_FLOAT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_EXT };

struct mp_value {
    enum mp_type type;
    int64_t i;        /* MP_INT (negative or signed forms), MP_BOOL */
    uint64_t u;       /* MP_UINT */
    double f;         /* MP_FLOAT (float32 widened) */
    const uint8_t *s; /* MP_STR, MP_BIN, MP_EXT: the bytes (inside the buffer) */
    uint32_t len;     /* bytes of s, or the element count of MP_ARRAY / MP_MAP */
};

/* Reads the value at p[*pos..n): a scalar whole, an array/map only its header (the elements
 * follow). Advances *pos. Returns 0, or -1 with err_set naming the byte offset. */
int mp_read(const uint8_t *p, size_t n, size_t *pos, struct mp_value *v);
/* Skips one complete value (nested up to 64 levels). */
int mp_skip(const uint8_t *p, size_t n, size_t *pos);

/* A growing byte buffer for the writer. */
struct mp_buf {
    uint8_t *p;
    size_t n, cap;
};
void mp_put(struct mp_buf *b, const void *src, size_t len);
void mp_write_map(struct mp_buf *b, uint32_t count);
void mp_write_str(struct mp_buf *b, const char *s, size_t len);
void mp_write_int(struct mp_buf *b, int64_t v);
void mp_write_f64(struct mp_buf *b, double v);
void mp_write_bin(struct mp_buf *b, const void *s, size_t len);
