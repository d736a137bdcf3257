/* cross_entropy: the LM head fused with the cross-entropy loss on CUDA, in row chunks through the
 * caller's scratch (chunk*(V+2C) floats: the chunk's logits, its targets, the loss accumulator), so
 * the (N, V) logits never exist. Ignored rows (-100) get zero logit gradients, hence zero dh rows
 * (the CPU version skips them; the result is the same). Contract in kernels.h; reference
 * lm_head_ce_ref. */
#include "kernels/cuda/cuda.h"

/* One block per row: loss += logsumexp(l) - l[tgt]; with grad, l becomes grad_scale*(softmax - onehot). */
__global__ void ce_rows_kernel(float *logits, const int32_t *tgts, double *loss, int V, float grad_scale,
                               int write_grad) {
    float *l = logits + (int64_t)blockIdx.x * V;
    int tgt = tgts[blockIdx.x];
    if (tgt < 0) { /* uniform across the block */
        if (write_grad)
            for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = 0;
        return;
    }
    float lt = l[tgt]; /* read before any thread writes the row */
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, l[v]);
    mx = block_max(mx);
    double z = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) z += expf(l[v] - mx);
    z = block_sum_d(z);
    if (threadIdx.x == 0) atomicAdd(loss, mx + log(z) - lt);
    if (!write_grad) return;
    float inv = (float)(1.0 / z);
    for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = grad_scale * expf(l[v] - mx) * inv;
    __syncthreads();
    if (threadIdx.x == 0) l[tgt] -= grad_scale;
}

double lm_head_ce_cuda(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N, int C,
                       int V, float grad_scale, float *scratch, int chunk, cublasComputeType_t compute) {
    CHECK(chunk > 0 && (int64_t)chunk * C >= 4, "lm_head_ce: chunk %d too small for C %d", chunk, C);
    float *logits = scratch;
    int32_t *tg = (int32_t *)(scratch + (int64_t)chunk * V);
    int64_t acc_ofs = (int64_t)chunk * V + (int64_t)chunk * C;
    double *loss = (double *)(scratch + ((acc_ofs + 1) & ~(int64_t)1)); /* 8-byte aligned */
    CUDA_CHECK(cudaMemset(loss, 0, sizeof(double)));
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int m = (int)(N - n0 < chunk ? N - n0 : chunk);
        /* targets may be host memory (kernels.h): cudaMemcpyDefault handles both */
        CUDA_CHECK(cudaMemcpy(tg, targets + n0, sizeof(int32_t) * m, cudaMemcpyDefault));
        cuda_sgemm(0, 1, m, V, C, 1.0f, h + n0 * C, C, w, C, 0.0f, logits, V, compute);
        ce_rows_kernel<<<m, 1024>>>(logits, tg, loss, V, grad_scale, dh != NULL);
        LAUNCH_CHECK();
        if (!dh) continue;
        cuda_sgemm(0, 0, m, C, V, 1.0f, logits, V, w, C, 0.0f, dh + n0 * C, C, compute);
        if (dw) cuda_sgemm(1, 0, V, C, m, 1.0f, logits, V, h + n0 * C, C, 1.0f, dw, C, compute);
    }
    double total = 0;
    CUDA_CHECK(cudaMemcpy(&total, loss, sizeof(double), cudaMemcpyDeviceToHost));
    return total;
}
