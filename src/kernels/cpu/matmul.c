/* matmul: linear layers on the CPU through oneDNN's sgemm (row-major), measured faster than
 * OpenBLAS on this hardware (see bench/). Contract in kernels.h; reference in kernels/ref.c. */
#include "kernels/cpu/cpu.h"

#include <oneapi/dnnl/dnnl.h>
#include <string.h>

#include "core/err.h"
#include "core/dtype.h"

/* C (M,Nn) = alpha op(A) op(B) + beta C, row-major. */
void cpu_sgemm(int transa, int transb, int64_t M, int64_t Nn, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M == 0 || Nn == 0) return;
    if (K == 0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < Nn; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    dnnl_status_t st = dnnl_sgemm(transa ? 'T' : 'N', transb ? 'T' : 'N', M, Nn, K, alpha, A, lda, B, ldb, beta, C, ldc);
    CHECK(st == dnnl_success, "dnnl_sgemm failed with status %d (M=%ld N=%ld K=%ld)", (int)st, (long)M, (long)Nn,
          (long)K);
}

void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int IC, int OC,
                        float alpha, int acc) {
    cpu_sgemm(0, 1, N, OC, IC, alpha, inp, IC, weight, IC, acc ? 1.0f : 0.0f, out, OC);
    if (bias) {
#pragma omp parallel for
        for (int64_t n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[n * OC + o] += bias[o];
    }
}

void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int64_t N, int IC, int OC, float alpha, int acc) {
    if (dinp) cpu_sgemm(0, 0, N, IC, OC, alpha, dout, OC, weight, IC, acc ? 1.0f : 0.0f, dinp, IC);
    if (dweight) cpu_sgemm(1, 0, OC, IC, N, alpha, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) {
#pragma omp parallel for
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += dout[n * OC + o];
            dbias[o] += alpha * (float)s;
        }
    }
}

/* rows (n, IC) of a bf16 weight -> float32 scratch */
static void bf16_rows(float *dst, const uint16_t *src, int64_t n) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void matmul_forward_bf16_cpu(float *out, const float *inp, const uint16_t *weight, const float *bias, int64_t N, int IC,
                             int OC, float alpha, int acc, float *scratch, int wchunk) {
    for (int o0 = 0; o0 < OC; o0 += wchunk) {
        int ob = OC - o0 < wchunk ? OC - o0 : wchunk;
        bf16_rows(scratch, weight + (int64_t)o0 * IC, (int64_t)ob * IC);
        cpu_sgemm(0, 1, N, ob, IC, alpha, inp, IC, scratch, IC, acc ? 1.0f : 0.0f, out + o0, OC);
    }
    if (bias) {
#pragma omp parallel for
        for (int64_t n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[n * OC + o] += bias[o];
    }
}

void matmul_backward_bf16_cpu(float *dinp, const float *dout, const uint16_t *weight, int64_t N, int IC, int OC,
                              float alpha, int acc, float *scratch, int wchunk) {
    if (OC == 0 && !acc) memset(dinp, 0, sizeof(float) * N * IC);
    for (int o0 = 0; o0 < OC; o0 += wchunk) {
        int ob = OC - o0 < wchunk ? OC - o0 : wchunk;
        bf16_rows(scratch, weight + (int64_t)o0 * IC, (int64_t)ob * IC);
        cpu_sgemm(0, 0, N, IC, ob, alpha, dout + o0, OC, scratch, IC, (acc || o0 > 0) ? 1.0f : 0.0f, dinp, IC);
    }
}
