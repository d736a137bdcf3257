/* table: the CUDA backend's entries in the kernel table (kernels.h): kernels_cuda with fp32 GEMMs
 * (CUBLAS_COMPUTE_32F: the parity mode for reference-check) and kernels_cuda_bf16, whose GEMMs
 * round their inputs to bf16 on the tensor cores and accumulate in fp32 (CUBLAS_COMPUTE_32F_FAST_16BF);
 * every other entry is shared. */
#include "kernels/cuda/cuda.h"

#define GEMM_WRAPPERS(suffix, compute)                                                                             \
    static void matmul_forward_##suffix(float *out, const float *inp, const float *weight, const float *bias,       \
                                        int64_t N, int IC, int OC, float alpha, int acc) {                         \
        matmul_forward_cuda(out, inp, weight, bias, N, IC, OC, alpha, acc, compute);                                \
    }                                                                                                              \
    static void matmul_backward_##suffix(float *dinp, float *dweight, float *dbias, const float *dout,             \
                                         const float *inp, const float *weight, int64_t N, int IC, int OC,         \
                                         float alpha, int acc) {                                                   \
        matmul_backward_cuda(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, alpha, acc, compute);             \
    }                                                                                                              \
    static double lm_head_ce_##suffix(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, \
                                      int64_t N, int C, int V, float grad_scale, float *scratch, int chunk) {      \
        return lm_head_ce_cuda(dh, dw, h, w, targets, N, C, V, grad_scale, scratch, chunk, compute);               \
    }

GEMM_WRAPPERS(f32, CUBLAS_COMPUTE_32F)
GEMM_WRAPPERS(bf16, CUBLAS_COMPUTE_32F_FAST_16BF)

#define TABLE(tname, suffix)                                                                                       \
    {                                                                                                              \
        .name = tname, .init = init_cuda, .mem_alloc = mem_alloc_cuda, .mem_free = mem_free_cuda,                  \
        .mem_copy = mem_copy_cuda, .mem_zero = mem_zero_cuda, .sync = sync_cuda,                                   \
        .embedding_forward = embedding_forward_cuda, .embedding_backward = embedding_backward_cuda,                \
        .rmsnorm_forward = rmsnorm_forward_cuda, .rmsnorm_backward = rmsnorm_backward_cuda,                        \
        .matmul_forward = matmul_forward_##suffix, .matmul_backward = matmul_backward_##suffix,                    \
        .matmul_forward_bf16 = NULL, .matmul_backward_bf16 = NULL, /* bf16 base: CPU only for now */              \
        .rope_apply = rope_apply_cuda, .attention_forward = attention_forward_cuda,                                \
        .attention_backward = attention_backward_cuda, .attention_decode = attention_decode_cuda,                  \
        .swiglu_forward = swiglu_forward_cuda, .swiglu_backward = swiglu_backward_cuda,                            \
        .lm_head_ce = lm_head_ce_##suffix, .dropout = dropout_cuda, .adamw = adamw_cuda, .sumsq = sumsq_cuda,      \
        .scale = scale_cuda,                                                                                       \
    }

extern "C" const struct kernels kernels_cuda = TABLE("cuda", f32);
extern "C" const struct kernels kernels_cuda_bf16 = TABLE("cuda-bf16", bf16);
