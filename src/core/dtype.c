/* dtype: see dtype.h. */
#include "core/dtype.h"

#include <math.h>

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [DTYPE_F32] = {"F32", 4}, [DTYPE_BF16] = {"BF16", 2}, [DTYPE_F16] = {"F16", 2},
    [DTYPE_F64] = {"F64", 8}, [DTYPE_I64] = {"I64", 8},   [DTYPE_I32] = {"I32", 4},
    [DTYPE_I16] = {"I16", 2}, [DTYPE_I8] = {"I8", 1},     [DTYPE_U8] = {"U8", 1},
    [DTYPE_BOOL] = {"BOOL", 1},
};

size_t dtype_size(enum dtype t) { return dtype_info[t].size; }
const char *dtype_name(enum dtype t) { return dtype_info[t].name; }

int dtype_parse(const char *name, enum dtype *out) {
    for (size_t i = 0; i < sizeof dtype_info / sizeof dtype_info[0]; i++)
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (enum dtype)i;
            return 0;
        }
    return -1;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24); /* zero or subnormal */
        return sign ? -f : f;
    }
    uint32_t u = exp == 31 ? sign | 0x7f800000u | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    float a = fabsf(f);
    if (isnan(f)) return sign | 0x7e00;
    if (a >= 65520.0f) return sign | 0x7c00; /* rounds to inf */
    if (a < 6.103515625e-05f) {              /* subnormal: multiples of 2^-24, RNE via rintf */
        return sign | (uint16_t)rintf(a * 16777216.0f);
    }
    uint32_t e = ((u >> 23) & 0xff) - 112, man = u & 0x7fffff;
    uint32_t h = (e << 10) | (man >> 13);
    uint32_t rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return sign | (uint16_t)h;
}

/* src may be unaligned (a tensor inside a .ckpt protobuf lies at any byte offset) */
static uint16_t load_u16(const unsigned char *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

int dtype_to_f32(float *dst, const void *src, enum dtype t, int64_t n) {
    const unsigned char *s = src;
    switch (t) {
    case DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(load_u16(s + 2 * i));
        return 0;
    case DTYPE_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(load_u16(s + 2 * i));
        return 0;
    default: return -1;
    }
}

int dtype_from_f32(void *dst, const float *src, enum dtype t, int64_t n) {
    switch (t) {
    case DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return 0;
    case DTYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
        return 0;
    }
    case DTYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = f32_to_f16(src[i]);
        return 0;
    }
    default: return -1;
    }
}
