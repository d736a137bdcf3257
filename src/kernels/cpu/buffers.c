/* buffers: the CPU backend's memory entries (host memory: calloc/memcpy) and its flat-buffer
 * kernels: dropout, the AdamW update, the sum of squares and scaling used by gradient clipping.
 * Contracts in kernels.h; the AdamW arithmetic is torch's single-tensor path (train/optim.c). */
#include <math.h>
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
#pragma omp parallel for
    for (int64_t j = 0; j < n; j++) {
        w[j] *= decay;
        m[j] += (g[j] - m[j]) * (1.0f - b1);
        v[j] = v[j] * b2 + (1.0f - b2) * g[j] * g[j];
        w[j] -= step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
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
