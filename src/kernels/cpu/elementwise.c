/* elementwise: embedding, RMSNorm, RoPE and SwiGLU on the CPU (OpenMP over rows).
 * Contracts in kernels.h; references in kernels/ref.c. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/simd.h"

void embedding_forward_cpu(float *out, const int32_t *ids, const float *wte, int64_t N, int C) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) memcpy(out + n * C, wte + (int64_t)ids[n] * C, sizeof(float) * C);
}

void embedding_backward_cpu(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C) {
    /* Parallel over columns: rows with the same id never race. */
#pragma omp parallel for
    for (int c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++) dwte[(int64_t)ids[n] * C + c] += dout[n * C + c];
}

void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int C, float eps) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        float ss = 0; /* float32 like torch's x.pow(2).mean(-1) */
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / C + eps);
        rstd[n] = r;
        for (int c = 0; c < C; c++) out[n * C + c] = weight[c] * (x[c] * r);
    }
}

void rmsnorm_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          const float *rstd, int64_t N, int C, int acc) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float r = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += weight[c] * dy[c] * x[c];
        float k = r * r * r * dot / C;
        float *dx = dinp + n * C;
        for (int c = 0; c < C; c++) dx[c] = (acc ? dx[c] : 0) + r * weight[c] * dy[c] - k * x[c];
    }
    if (dweight) {
        /* column blocks of 64: each thread sums its columns over all rows, reading rows
         * contiguously (no races, deterministic order) */
#pragma omp parallel for schedule(static)
        for (int c0 = 0; c0 < C; c0 += 64) {
            int cn = C - c0 < 64 ? C - c0 : 64;
            float s[64] = {0};
            for (int64_t n = 0; n < N; n++) {
                const float *dy = dout + n * C + c0, *x = inp + n * C + c0;
                float r = rstd[n];
                for (int c = 0; c < cn; c++) s[c] += dy[c] * x[c] * r;
            }
            for (int c = 0; c < cn; c++) dweight[c0 + c] += s[c];
        }
    }
}

void rope_apply_cpu(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign) {
    int half = HS / 2;
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        float cs[half], sn[half];
        for (int i = 0; i < half; i++) {
            float a = (float)pos[n] * inv_freq[i]; /* float32 angle, as transformers computes it */
            cs[i] = cosf(a);
            sn[i] = sign * sinf(a);
        }
        for (int h = 0; h < nh; h++) {
            float *v = x + (n * nh + h) * HS;
            for (int i = 0; i < half; i++) {
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * cs[i] - x2 * sn[i];
                v[i + half] = x2 * cs[i] + x1 * sn[i];
            }
        }
    }
}

/* silu(g) = g / (1 + exp(-g)) with the vectorized exp, 8 at a time; scalar tail */
void swiglu_forward_cpu(float *h, const float *gate, const float *up, int64_t n) {
    int64_t n8 = n & ~(int64_t)7;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n8; i += 8) {
        v8f g = v8_load(gate + i), one = v8_set1(1.0f);
        v8_store(h + i, g / (one + v8_exp(-g)) * v8_load(up + i));
    }
    for (int64_t i = n8; i < n; i++) h[i] = gate[i] / (1.0f + exp_poly(-gate[i])) * up[i];
}

void swiglu_backward_cpu(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n) {
    int64_t n8 = n & ~(int64_t)7;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n8; i += 8) {
        v8f g = v8_load(gate + i), d = v8_load(dh + i), one = v8_set1(1.0f);
        v8f sg = one / (one + v8_exp(-g));
        v8_store(dup + i, d * g * sg);
        v8_store(dgate + i, d * v8_load(up + i) * sg * (one + g * (one - sg)));
    }
    for (int64_t i = n8; i < n; i++) {
        float g = gate[i], sg = 1.0f / (1.0f + exp_poly(-g));
        dup[i] = dh[i] * g * sg;
        dgate[i] = dh[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}
