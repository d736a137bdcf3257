/* elementwise: embedding, RMSNorm, RoPE, SwiGLU, dropout and the flat-buffer optimizer kernels on
 * CUDA. Same arithmetic as kernels/cpu (float32, IEEE division and sqrt, no fast math); only the
 * order of reductions differs. Contracts in kernels.h. */
#include "kernels/cuda/cuda.h"

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* Threads for one block per row of C elements. */
static inline int row_threads(int C) { return C >= 256 ? 256 : ((C + 31) / 32) * 32; }

__global__ void embedding_forward_kernel(float *out, const int32_t *ids, const float *wte, int64_t N, int C) {
    GRID_STRIDE(i, N * C) out[i] = wte[(int64_t)ids[i / C] * C + i % C];
}

void embedding_forward_cuda(float *out, const int32_t *ids, const float *wte, int64_t N, int C) {
    if (N == 0) return;
    embedding_forward_kernel<<<grid_for(N * C, 256), 256>>>(out, ids, wte, N, C);
    LAUNCH_CHECK();
}

__global__ void embedding_backward_kernel(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C) {
    GRID_STRIDE(i, N * C) atomicAdd(dwte + (int64_t)ids[i / C] * C + i % C, dout[i]);
}

void embedding_backward_cuda(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C) {
    if (N == 0) return;
    embedding_backward_kernel<<<grid_for(N * C, 256), 256>>>(dwte, dout, ids, N, C);
    LAUNCH_CHECK();
}

/* One block per row. */
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *weight, int C,
                                       float eps) {
    int64_t n = blockIdx.x;
    const float *x = inp + n * C;
    float ss = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
    ss = block_sum(ss);
    float r = 1.0f / sqrtf(ss / C + eps);
    if (threadIdx.x == 0) rstd[n] = r;
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[n * C + c] = weight[c] * (x[c] * r);
}

void rmsnorm_forward_cuda(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int C, float eps) {
    if (N == 0) return;
    CHECK(N < INT32_MAX, "rmsnorm over %ld rows", (long)N);
    rmsnorm_forward_kernel<<<(unsigned)N, row_threads(C)>>>(out, rstd, inp, weight, C, eps);
    LAUNCH_CHECK();
}

__global__ void rmsnorm_backward_kernel(float *dinp, const float *dout, const float *inp, const float *weight,
                                        const float *rstd, int C, int acc) {
    int64_t n = blockIdx.x;
    const float *x = inp + n * C, *dy = dout + n * C;
    float r = rstd[n], dot = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot += weight[c] * dy[c] * x[c];
    dot = block_sum(dot);
    float k = r * r * r * dot / C;
    float *dx = dinp + n * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] = (acc ? dx[c] : 0) + r * weight[c] * dy[c] - k * x[c];
}

/* dweight (C) += sum_n dout * inp * rstd: threads over columns, blocks over row chunks. */
#define DW_ROWS 256
__global__ void rmsnorm_dweight_kernel(float *dweight, const float *dout, const float *inp, const float *rstd,
                                       int64_t N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int64_t n0 = (int64_t)blockIdx.y * DW_ROWS, n1 = n0 + DW_ROWS < N ? n0 + DW_ROWS : N;
    float s = 0;
    for (int64_t n = n0; n < n1; n++) s += dout[n * C + c] * inp[n * C + c] * rstd[n];
    atomicAdd(dweight + c, s);
}

void rmsnorm_backward_cuda(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                           const float *rstd, int64_t N, int C, int acc) {
    if (N == 0) return;
    CHECK(N < INT32_MAX, "rmsnorm over %ld rows", (long)N);
    rmsnorm_backward_kernel<<<(unsigned)N, row_threads(C)>>>(dinp, dout, inp, weight, rstd, C, acc);
    LAUNCH_CHECK();
    if (dweight) {
        int64_t chunks = (N + DW_ROWS - 1) / DW_ROWS;
        CHECK(chunks <= 65535, "rmsnorm weight gradient over %ld rows: too many", (long)N);
        dim3 grid((unsigned)((C + 255) / 256), (unsigned)chunks);
        rmsnorm_dweight_kernel<<<grid, 256>>>(dweight, dout, inp, rstd, N, C);
        LAUNCH_CHECK();
    }
}

/* One thread per rotated pair (n, h, i). */
__global__ void rope_apply_kernel(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS,
                                  int sign) {
    int half = HS / 2;
    GRID_STRIDE(idx, N * nh * half) {
        int i = (int)(idx % half);
        int64_t nhh = idx / half, n = nhh / nh;
        float a = (float)pos[n] * inv_freq[i]; /* float32 angle, as transformers computes it */
        float cs = cosf(a), sn = sign * sinf(a);
        float *v = x + nhh * HS;
        float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cs - x2 * sn;
        v[i + half] = x2 * cs + x1 * sn;
    }
}

void rope_apply_cuda(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign) {
    if (N == 0) return;
    rope_apply_kernel<<<grid_for(N * nh * (HS / 2), 256), 256>>>(x, pos, inv_freq, N, nh, HS, sign);
    LAUNCH_CHECK();
}

__global__ void swiglu_forward_kernel(float *h, const float *gate, const float *up, int64_t n) {
    GRID_STRIDE(i, n) h[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void swiglu_forward_cuda(float *h, const float *gate, const float *up, int64_t n) {
    if (n == 0) return;
    swiglu_forward_kernel<<<grid_for(n, 256), 256>>>(h, gate, up, n);
    LAUNCH_CHECK();
}

__global__ void swiglu_backward_kernel(float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                                       int64_t n) {
    GRID_STRIDE(i, n) {
        float g = gate[i], sg = 1.0f / (1.0f + expf(-g));
        dup[i] = dh[i] * g * sg;
        dgate[i] = dh[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

void swiglu_backward_cuda(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n) {
    if (n == 0) return;
    swiglu_backward_kernel<<<grid_for(n, 256), 256>>>(dgate, dup, dh, gate, up, n);
    LAUNCH_CHECK();
}

/* core/rng.h's rng_hash (splitmix64 finalizer), for the device. */
__device__ __forceinline__ uint64_t rng_hash_dev(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

__global__ void dropout_kernel(float *out, const float *x, int64_t n, uint64_t seed, uint64_t thresh,
                               float keep_scale, int acc) {
    GRID_STRIDE(i, n) {
        float y = rng_hash_dev(seed + (uint64_t)i) < thresh ? 0.0f : x[i] * keep_scale;
        out[i] = acc ? out[i] + y : y;
    }
}

void dropout_cuda(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc) {
    if (n == 0) return;
    float keep_scale = 1.0f / (1.0f - p);
    uint64_t thresh = (uint64_t)((double)p * 18446744073709551615.0);
    dropout_kernel<<<grid_for(n, 256), 256>>>(out, x, n, seed, thresh, keep_scale, acc);
    LAUNCH_CHECK();
}

__global__ void adamw_kernel(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
                             float step_size, float bc2_sqrt, float eps) {
    GRID_STRIDE(j, n) {
        float wj = w[j] * decay, gj = g[j];
        float mj = m[j] + (gj - m[j]) * (1.0f - b1);
        float vj = v[j] * b2 + (1.0f - b2) * gj * gj;
        m[j] = mj, v[j] = vj;
        w[j] = wj - step_size * mj / (sqrtf(vj) / bc2_sqrt + eps);
    }
}

void adamw_cuda(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
                float step_size, float bc2_sqrt, float eps) {
    if (n == 0) return;
    adamw_kernel<<<grid_for(n, 256), 256>>>(w, m, v, g, n, decay, b1, b2, step_size, bc2_sqrt, eps);
    LAUNCH_CHECK();
}

__global__ void sumsq_kernel(double *acc, const float *x, int64_t n) {
    double s = 0;
    GRID_STRIDE(j, n) s += (double)x[j] * x[j];
    s = block_sum_d(s);
    if (threadIdx.x == 0) atomicAdd(acc, s);
}

double sumsq_cuda(const float *x, int64_t n) {
    if (n == 0) return 0;
    double *acc = cuda_dscratch(), r = 0;
    CUDA_CHECK(cudaMemset(acc, 0, sizeof(double)));
    unsigned blocks = grid_for(n, 256);
    sumsq_kernel<<<blocks < 1024 ? blocks : 1024, 256>>>(acc, x, n);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaMemcpy(&r, acc, sizeof(double), cudaMemcpyDeviceToHost));
    return r;
}

__global__ void scale_kernel(float *x, int64_t n, float s) { GRID_STRIDE(j, n) x[j] *= s; }

void scale_cuda(float *x, int64_t n, float s) {
    if (n == 0) return;
    scale_kernel<<<grid_for(n, 256), 256>>>(x, n, s);
    LAUNCH_CHECK();
}
