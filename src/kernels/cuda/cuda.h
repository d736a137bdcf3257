/* cuda: the CUDA backend's kernels (kernels.h contracts, C++/CUDA side), gathered into the tables
 * kernels_cuda (fp32 GEMMs) and kernels_cuda_bf16 (GEMMs on bf16-rounded inputs with fp32
 * accumulation) in table.cu. Everything runs on the legacy default stream, in order. */
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h" /* has its own extern "C" */
extern "C" {
#include "core/err.h"
}

/* A CUDA/cuBLAS call that must not fail (resource failure or a bug): file:line and abort. */
#define CUDA_CHECK(call)                                                                                \
    do {                                                                                                \
        cudaError_t e_ = (call);                                                                        \
        CHECK(e_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(e_));                              \
    } while (0)
#define CUBLAS_CHECK(call)                                                                              \
    do {                                                                                                \
        cublasStatus_t s_ = (call);                                                                     \
        CHECK(s_ == CUBLAS_STATUS_SUCCESS, "%s: cuBLAS status %d", #call, (int)s_);                     \
    } while (0)
/* After a launch: a bad configuration shows here, an execution error at the next sync. */
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

/* Blocks for a grid-stride loop over n elements. */
static inline unsigned grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > (1 << 20) ? (1 << 20) : b);
}

/* ---- common.cu: device setup, memory, GEMM ---- */
int init_cuda(void);
cublasHandle_t cuda_cublas(void);
double *cuda_dscratch(void); /* one device double for reductions */
void *mem_alloc_cuda(size_t bytes);
void mem_free_cuda(void *p);
void mem_copy_cuda(void *dst, const void *src, size_t bytes);
void mem_zero_cuda(void *p, size_t bytes);
void sync_cuda(void);
/* Row-major C (M,Nn) = alpha op(A) op(B) + beta C, as cpu_sgemm; compute CUBLAS_COMPUTE_32F or
 * CUBLAS_COMPUTE_32F_FAST_16BF. */
void cuda_sgemm(int transa, int transb, int64_t M, int64_t Nn, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc, cublasComputeType_t compute);
void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int IC,
                         int OC, float alpha, int acc, cublasComputeType_t compute);
void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int64_t N, int IC, int OC, float alpha, int acc,
                          cublasComputeType_t compute);

/* ---- elementwise.cu ---- */
void embedding_forward_cuda(float *out, const int32_t *ids, const float *wte, int64_t N, int C);
void embedding_backward_cuda(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C);
void rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int C, float eps);
void rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           const float *rstd, int64_t N, int C, int acc);
void rope_apply_cuda(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign);
void swiglu_forward_cuda(float *h, const float *gate, const float *up, int64_t n);
void swiglu_backward_cuda(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n);
void dropout_cuda(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc);
void adamw_cuda(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
                float step_size, float bc2_sqrt, float eps);
double sumsq_cuda(const float *x, int64_t n);
void scale_cuda(float *x, int64_t n, float s);

/* ---- attention.cu ---- */
void attention_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                            int B, int T, int H, int KVH, int HS);
void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                             const float *q, const float *k, const float *v, const int32_t *pos, int B, int T, int H,
                             int KVH, int HS);
void attention_decode_cuda(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                           int HS);

/* ---- cross_entropy.cu ---- */
double lm_head_ce_cuda(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N, int C,
                       int V, float grad_scale, float *scratch, int chunk, cublasComputeType_t compute);

/* ---- reductions shared by the .cu files (block size a multiple of 32, at most 1024) ---- */
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum (or max) over the block, returned to every thread. */
template <typename T, typename Warp>
__device__ __forceinline__ T block_reduce(T v, Warp warp_op, T identity) {
    __shared__ T sh[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_op(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : identity;
    return warp_op(v);
}
__device__ __forceinline__ float block_sum(float v) {
    return block_reduce<float>(v, [](float x) { return warp_sum(x); }, 0.0f);
}
__device__ __forceinline__ double block_sum_d(double v) {
    return block_reduce<double>(v, [](double x) { return warp_sum_d(x); }, 0.0);
}
__device__ __forceinline__ float block_max(float v) {
    return block_reduce<float>(v, [](float x) { return warp_max(x); }, -INFINITY);
}
