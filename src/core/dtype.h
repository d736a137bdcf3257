/* dtype: element types of stored tensors and conversions to/from float32.
 * bf16 is the top half of an IEEE float32 (round-to-nearest-even on the way down, as torch);
 * f16 is IEEE binary16. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum dtype { DTYPE_F32, DTYPE_BF16, DTYPE_F16, DTYPE_F64, DTYPE_I64, DTYPE_I32, DTYPE_I16, DTYPE_I8, DTYPE_U8, DTYPE_BOOL };

size_t dtype_size(enum dtype t);
/* safetensors spelling: "F32", "BF16", ... */
const char *dtype_name(enum dtype t);
/* Parses a safetensors dtype name; returns -1 if unknown. */
int dtype_parse(const char *name, enum dtype *out);

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN stays NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

/* Converts n elements of type t at src to float32 at dst (F32, BF16, F16 only; else -1). */
int dtype_to_f32(float *dst, const void *src, enum dtype t, int64_t n);
/* Converts n float32 to type t (F32, BF16, F16 only; else -1). */
int dtype_from_f32(void *dst, const float *src, enum dtype t, int64_t n);
