/* buffers: the CPU backend's memory entries (host memory: calloc/memcpy) and its flat-buffer
 * kernels: dropout, the AdamW update, the sum of squares and scaling used by gradient clipping.
 * Contracts in kernels.h; the AdamW arithmetic is torch's single-tensor path (train/optim.c). */
#include <math.h>
#if defined(__AVX__) && (defined(__x86_64__) || defined(__i386__))
#define BUFFERS_AVX 1
#include <immintrin.h> /* x86 only; other CPUs (aarch64) take the portable loop */
#endif
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "kernels/cpu/cpu.h"

void *mem_alloc_cpu(size_t bytes) { return xcalloc(bytes ? bytes : 1, 1); }

void mem_free_cpu(void *p) { free(p); }

void mem_copy_cpu(void *dst, const void *src, size_t bytes) {
    if (bytes) memmove(dst, src, bytes);
}

void mem_zero_cpu(void *p, size_t bytes) {
    if (bytes) memset(p, 0, bytes);
}

void sync_cpu(void) {}

void dropout_cpu(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc) {
    float keep_scale = 1.0f / (1.0f - p);
    uint64_t thresh = (uint64_t)((double)p * 18446744073709551615.0);
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) {
        float y = rng_hash(seed + (uint64_t)i) < thresh ? 0.0f : x[i] * keep_scale;
        out[i] = acc ? out[i] + y : y;
    }
}

void adamw_cpu(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
               float step_size, float bc2_sqrt, float eps) {
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < n; j0 += 1024) {
        int64_t j1 = j0 + 1024 < n ? j0 + 1024 : n, j = j0;
#ifdef BUFFERS_AVX
        /* 8 at a time: the same operations in the same order (bitwise equal to the scalar loop;
         * scalar sqrtf is not auto-vectorized because of errno) */
        typedef float v8 __attribute__((vector_size(32)));
        for (; j + 8 <= j1; j += 8) {
            v8 wv, gv, mv, vv;
            memcpy(&wv, w + j, 32), memcpy(&gv, g + j, 32), memcpy(&mv, m + j, 32), memcpy(&vv, v + j, 32);
            wv *= decay;
            mv += (gv - mv) * (1.0f - b1);
            vv = vv * b2 + (1.0f - b2) * gv * gv;
            wv -= step_size * mv / ((v8)_mm256_sqrt_ps((__m256)vv) / bc2_sqrt + eps);
            memcpy(w + j, &wv, 32), memcpy(m + j, &mv, 32), memcpy(v + j, &vv, 32);
        }
#endif
        for (; j < j1; j++) {
            w[j] *= decay;
            m[j] += (g[j] - m[j]) * (1.0f - b1);
            v[j] = v[j] * b2 + (1.0f - b2) * g[j] * g[j];
            w[j] -= step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
        }
    }
}

double sumsq_cpu(const float *x, int64_t n) {
    double s = 0;
#pragma omp parallel for reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += (double)x[j] * x[j];
    return s;
}

void scale_cpu(float *x, int64_t n, float s) {
#pragma omp parallel for
    for (int64_t j = 0; j < n; j++) x[j] *= s;
}
