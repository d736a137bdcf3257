/* cpu: the CPU backend's kernels (OpenMP + oneDNN GEMM), gathered into kernels_cpu. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

void cpu_sgemm(int transa, int transb, int64_t M, int64_t Nn, int64_t K, float alpha, const float *A, int64_t lda,
               const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

void embedding_forward_cpu(float *out, const int32_t *ids, const float *wte, int64_t N, int C);
void embedding_backward_cpu(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C);
void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int C, float eps);
void rmsnorm_backward_cpu(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                          const float *rstd, int64_t N, int C, int acc);
void matmul_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int IC, int OC,
                        float alpha, int acc);
void matmul_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int64_t N, int IC, int OC, float alpha, int acc);
void matmul_forward_bf16_cpu(float *out, const float *inp, const uint16_t *weight, const float *bias, int64_t N, int IC,
                             int OC, float alpha, int acc, float *scratch, int wchunk);
void matmul_backward_bf16_cpu(float *dinp, const float *dout, const uint16_t *weight, int64_t N, int IC, int OC,
                              float alpha, int acc, float *scratch, int wchunk);
void rope_apply_cpu(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign);
void attention_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                           int B, int T, int H, int KVH, int HS);
void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                            const float *q, const float *k, const float *v, const int32_t *pos, int B, int T, int H,
                            int KVH, int HS);
void attention_decode_cpu(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                          int HS);
void swiglu_forward_cpu(float *h, const float *gate, const float *up, int64_t n);
void swiglu_backward_cpu(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n);
double lm_head_ce_cpu(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N, int C,
                      int V, float grad_scale, float *scratch, int chunk);
void *mem_alloc_cpu(size_t bytes);
void mem_free_cpu(void *p);
void mem_copy_cpu(void *dst, const void *src, size_t bytes);
void mem_zero_cpu(void *p, size_t bytes);
void sync_cpu(void);
void dropout_cpu(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc);
void adamw_cpu(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
               float step_size, float bc2_sqrt, float eps);
double sumsq_cpu(const float *x, int64_t n);
void scale_cpu(float *x, int64_t n, float s);
