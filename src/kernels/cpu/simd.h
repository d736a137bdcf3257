/* simd: 8-wide float vectors (GCC vector extensions: AVX2 here, SSE pairs elsewhere) and
 * the few operations the CPU kernels need: unaligned load/store, FMA, max, select and a
 * vectorized exp (Cody-Waite reduction + degree-7 polynomial, within 2 ulp of expf on
 * [-87, 88]; exp of anything below -87.3 is 0). No fast-math: only these helpers reorder. */
#pragma once
#include <stdint.h>
#include <string.h>
#if defined(__FMA__) && defined(__AVX__) && (defined(__x86_64__) || defined(__i386__))
#define SIMD_X86_FMA 1
#include <immintrin.h>
#endif

#ifndef __AVX__
/* Without AVX (e.g. the sanitizer build's default -march) 32-byte vectors are passed in
 * memory; every function taking them is static inline in one translation unit, so the
 * ABI note does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

static inline v8f v8_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f v8_set1(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
/* a * b + c, fused where the CPU has FMA */
static inline v8f v8_fma(v8f a, v8f b, v8f c) {
#ifdef SIMD_X86_FMA
    return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}
/* mask ? a : b, mask lanes all-ones or zero */
static inline v8f v8_select(v8i mask, v8f a, v8f b) { return (v8f)((mask & (v8i)a) | (~mask & (v8i)b)); }
static inline v8f v8_max(v8f a, v8f b) { return v8_select(a > b, a, b); }
static inline float v8_hmax(v8f v) {
    float m = v[0];
    for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
    return m;
}
static inline float v8_hsum(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

static inline v8f v8_exp(v8f x) {
    const v8f lo = v8_set1(-87.3f), hi = v8_set1(88.0f);
    v8i under = x < lo;
    x = v8_max(x, lo);
    x = v8_select(x > hi, hi, x);
    /* n = round(x / ln2) via the 1.5 * 2^23 trick; r = x - n ln2 in two parts */
    const v8f shifter = v8_set1(12582912.0f);
    v8f t = v8_fma(x, v8_set1(1.44269504088896341f), shifter);
    v8f n = t - shifter;
    v8f r = v8_fma(n, v8_set1(-0.693145751953125f), x);
    r = v8_fma(n, v8_set1(-1.428606765330187045e-06f), r);
    v8f p = v8_set1(1.0f / 5040);
    p = v8_fma(p, r, v8_set1(1.0f / 720));
    p = v8_fma(p, r, v8_set1(1.0f / 120));
    p = v8_fma(p, r, v8_set1(1.0f / 24));
    p = v8_fma(p, r, v8_set1(1.0f / 6));
    p = v8_fma(p, r, v8_set1(0.5f));
    p = v8_fma(p, r, v8_set1(1.0f));
    p = v8_fma(p, r, v8_set1(1.0f));
    v8i e = ((v8i)t - (v8i)shifter) + 127;
    v8f scale = (v8f)(e << 23);
    return v8_select(under, v8_set1(0.0f), p * scale);
}

/* Scalar twin of v8_exp (same polynomial), for loop tails. */
static inline float exp_poly(float x) {
    v8f v = v8_exp(v8_set1(x));
    return v[0];
}
