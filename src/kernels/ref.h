/* ref: scalar double-precision reference kernels, the readable spec of every operation in
 * kernels.h (same argument order and contract, double instead of float). Tests compare the
 * fast kernels against these and check these against finite differences. */
#pragma once
#include <stdint.h>

void embedding_forward_ref(double *out, const int32_t *ids, const double *wte, int64_t N, int C);
void embedding_backward_ref(double *dwte, const double *dout, const int32_t *ids, int64_t N, int C);
void rmsnorm_forward_ref(double *out, double *rstd, const double *inp, const double *weight, int64_t N, int C,
                         double eps);
void rmsnorm_backward_ref(double *dinp, double *dweight, const double *dout, const double *inp, const double *weight,
                          const double *rstd, int64_t N, int C, int acc);
void matmul_forward_ref(double *out, const double *inp, const double *weight, const double *bias, int64_t N, int IC,
                        int OC, double alpha, int acc);
void matmul_backward_ref(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                         const double *weight, int64_t N, int IC, int OC, double alpha, int acc);
void matmul_forward_bf16_ref(double *out, const double *inp, const uint16_t *weight, const double *bias, int64_t N,
                             int IC, int OC, double alpha, int acc);
void matmul_backward_bf16_ref(double *dinp, const double *dout, const uint16_t *weight, int64_t N, int IC, int OC,
                              double alpha, int acc);
void rope_apply_ref(double *x, const int32_t *pos, const double *inv_freq, int64_t N, int nh, int HS, int sign);
void attention_forward_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                           const int32_t *pos, int B, int T, int H, int KVH, int HS);
void attention_backward_ref(double *dq, double *dk, double *dv, const double *dout, const double *out,
                            const double *lse, const double *q, const double *k, const double *v, const int32_t *pos,
                            int B, int T, int H, int KVH, int HS);
void swiglu_forward_ref(double *h, const double *gate, const double *up, int64_t n);
void swiglu_backward_ref(double *dgate, double *dup, const double *dh, const double *gate, const double *up, int64_t n);
double lm_head_ce_ref(double *dh, double *dw, const double *h, const double *w, const int32_t *targets, int64_t N, int C,
                      int V, double grad_scale);
