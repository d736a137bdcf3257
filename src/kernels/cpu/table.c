/* table: the CPU backend's entry in the kernel table (kernels.h). */
#include "kernels/cpu/cpu.h"

const struct kernels kernels_cpu = {
    .name = "cpu",
    .embedding_forward = embedding_forward_cpu,
    .embedding_backward = embedding_backward_cpu,
    .rmsnorm_forward = rmsnorm_forward_cpu,
    .rmsnorm_backward = rmsnorm_backward_cpu,
    .matmul_forward = matmul_forward_cpu,
    .matmul_backward = matmul_backward_cpu,
    .matmul_forward_bf16 = matmul_forward_bf16_cpu,
    .matmul_backward_bf16 = matmul_backward_bf16_cpu,
    .rope_apply = rope_apply_cpu,
    .attention_forward = attention_forward_cpu,
    .attention_backward = attention_backward_cpu,
    .attention_decode = attention_decode_cpu,
    .swiglu_forward = swiglu_forward_cpu,
    .swiglu_backward = swiglu_backward_cpu,
    .lm_head_ce = lm_head_ce_cpu,
};
