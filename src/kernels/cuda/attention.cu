/* attention: causal, per-document, grouped-query attention on CUDA, flash-style: the forward keeps
 * an online softmax (running max and sum) and saves only the log-sum-exp; the backward recomputes
 * the probabilities. One warp per (query, head) row, lanes over the head dimension (HS <= 256).
 * The backward runs two passes without atomics: dq per query row, dk/dv per key row. Simple and
 * exact rather than fast (no shared-memory tiling yet). Contract in kernels.h, math docs/model.md. */
#include "kernels/cuda/cuda.h"

#define MAXE 8 /* head elements per lane: HS <= 32 * MAXE */
#define WARPS 4

__device__ __forceinline__ void row_load(float r[MAXE], const float *p, int HS, int lane) {
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
        int e = lane + 32 * i;
        r[i] = e < HS ? p[e] : 0.0f;
    }
}

__device__ __forceinline__ void row_store(float *p, const float r[MAXE], int HS, int lane) {
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
        int e = lane + 32 * i;
        if (e < HS) p[e] = r[i];
    }
}

/* dot(a, p) over the warp; a in registers, p in memory */
__device__ __forceinline__ float row_dot(const float a[MAXE], const float *p, int HS, int lane) {
    float s = 0;
#pragma unroll
    for (int i = 0; i < MAXE; i++) {
        int e = lane + 32 * i;
        if (e < HS) s += a[i] * p[e];
    }
    return warp_sum(s);
}

/* out = softmax(q k_j^T * scale) v over keys j0..j1 (rows of kbase/vbase, stride kstride);
 * returns the log-sum-exp. */
__device__ float attend_row(float o[MAXE], const float qr[MAXE], const float *kbase, const float *vbase,
                            int64_t kstride, int j0, int j1, int HS, float scale, int lane) {
    float m = -INFINITY, l = 0;
#pragma unroll
    for (int i = 0; i < MAXE; i++) o[i] = 0;
    for (int j = j0; j <= j1; j++) {
        float s = row_dot(qr, kbase + (int64_t)j * kstride, HS, lane) * scale;
        float mn = fmaxf(m, s), corr = expf(m - mn), p = expf(s - mn);
        const float *vr = vbase + (int64_t)j * kstride;
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < MAXE; i++) {
            int e = lane + 32 * i;
            o[i] = o[i] * corr + (e < HS ? p * vr[e] : 0.0f);
        }
        m = mn;
    }
    float inv = 1.0f / l;
#pragma unroll
    for (int i = 0; i < MAXE; i++) o[i] *= inv;
    return m + logf(l);
}

__global__ void attention_forward_kernel(float *out, float *lse, const float *q, const float *k, const float *v,
                                         const int32_t *pos, int B, int T, int H, int KVH, int HS, float scale) {
    int64_t item = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32; /* (bt, h); uniform in the warp */
    int lane = threadIdx.x & 31;
    if (item >= (int64_t)B * T * H) return;
    int h = (int)(item % H);
    int64_t bt = item / H;
    int b = (int)(bt / T), t = (int)(bt % T), kvh = h / (H / KVH), t0 = t - pos[bt];
    float qr[MAXE], o[MAXE];
    row_load(qr, q + item * HS, HS, lane);
    int64_t kstride = (int64_t)KVH * HS, kofs = (int64_t)b * T * kstride + (int64_t)kvh * HS;
    float L = attend_row(o, qr, k + kofs, v + kofs, kstride, t0, t, HS, scale, lane);
    row_store(out + item * HS, o, HS, lane);
    if (lane == 0) lse[item] = L;
}

static void check_shapes(int H, int KVH, int HS) {
    CHECK(HS <= 32 * MAXE, "attention head size %d > %d is not supported by the CUDA kernels", HS, 32 * MAXE);
    CHECK(KVH > 0 && H % KVH == 0, "heads %d not a multiple of kv heads %d", H, KVH);
}

void attention_forward_cuda(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                            int B, int T, int H, int KVH, int HS) {
    check_shapes(H, KVH, HS);
    int64_t items = (int64_t)B * T * H;
    if (items == 0) return;
    attention_forward_kernel<<<(unsigned)((items + WARPS - 1) / WARPS), 32 * WARPS>>>(out, lse, q, k, v, pos, B, T, H,
                                                                                      KVH, HS, 1.0f / sqrtf((float)HS));
    LAUNCH_CHECK();
}

/* dq of one (query, head) row: dq = sum_j p_j (dout.v_j - D) scale k_j, D = dout.out. */
__global__ void attention_dq_kernel(float *dq, const float *dout, const float *out, const float *lse, const float *q,
                                    const float *k, const float *v, const int32_t *pos, int B, int T, int H, int KVH,
                                    int HS, float scale) {
    int64_t item = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (item >= (int64_t)B * T * H) return;
    int h = (int)(item % H);
    int64_t bt = item / H;
    int b = (int)(bt / T), t = (int)(bt % T), kvh = h / (H / KVH), t0 = t - pos[bt];
    float qr[MAXE], dor[MAXE], acc[MAXE];
    row_load(qr, q + item * HS, HS, lane);
    row_load(dor, dout + item * HS, HS, lane);
    float D = row_dot(dor, out + item * HS, HS, lane), L = lse[item];
#pragma unroll
    for (int i = 0; i < MAXE; i++) acc[i] = 0;
    int64_t kstride = (int64_t)KVH * HS, kofs = (int64_t)b * T * kstride + (int64_t)kvh * HS;
    for (int j = t0; j <= t; j++) {
        const float *kr = k + kofs + (int64_t)j * kstride, *vr = v + kofs + (int64_t)j * kstride;
        float p = expf(row_dot(qr, kr, HS, lane) * scale - L);
        float ds = p * (row_dot(dor, vr, HS, lane) - D) * scale;
#pragma unroll
        for (int i = 0; i < MAXE; i++) {
            int e = lane + 32 * i;
            if (e < HS) acc[i] += ds * kr[e];
        }
    }
    row_store(dq + item * HS, acc, HS, lane);
}

/* dk, dv of one (key, kv head) row: sums over the heads of its group and the queries t >= j of its
 * document (those with t - pos[t] <= j). */
__global__ void attention_dkv_kernel(float *dk, float *dv, const float *dout, const float *out, const float *lse,
                                     const float *q, const float *k, const float *v, const int32_t *pos, int B, int T,
                                     int H, int KVH, int HS, float scale) {
    int64_t item = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32; /* (b, j, kvh) */
    int lane = threadIdx.x & 31;
    if (item >= (int64_t)B * T * KVH) return;
    int kvh = (int)(item % KVH), rep = H / KVH;
    int64_t bj = item / KVH;
    int b = (int)(bj / T), j = (int)(bj % T);
    float kr[MAXE], vr[MAXE], dkr[MAXE], dvr[MAXE];
    row_load(kr, k + item * HS, HS, lane);
    row_load(vr, v + item * HS, HS, lane);
#pragma unroll
    for (int i = 0; i < MAXE; i++) dkr[i] = dvr[i] = 0;
    for (int h = kvh * rep; h < (kvh + 1) * rep; h++)
        for (int t = j; t < T; t++) {
            int64_t bt = (int64_t)b * T + t;
            if (t - pos[bt] > j) continue; /* key j is outside query t's document */
            int64_t qi = bt * H + h;
            const float *qv = q + qi * HS, *dov = dout + qi * HS;
            float s = row_dot(kr, qv, HS, lane) * scale;
            float p = expf(s - lse[qi]);
            float dp = row_dot(vr, dov, HS, lane), D = 0;
            {
                float d = 0;
#pragma unroll
                for (int i = 0; i < MAXE; i++) {
                    int e = lane + 32 * i;
                    if (e < HS) d += dov[e] * out[qi * HS + e];
                }
                D = warp_sum(d);
            }
            float ds = p * (dp - D) * scale;
#pragma unroll
            for (int i = 0; i < MAXE; i++) {
                int e = lane + 32 * i;
                if (e < HS) {
                    dkr[i] += ds * qv[e];
                    dvr[i] += p * dov[e];
                }
            }
        }
    row_store(dk + item * HS, dkr, HS, lane);
    row_store(dv + item * HS, dvr, HS, lane);
}

void attention_backward_cuda(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                             const float *q, const float *k, const float *v, const int32_t *pos, int B, int T, int H,
                             int KVH, int HS) {
    check_shapes(H, KVH, HS);
    float scale = 1.0f / sqrtf((float)HS);
    int64_t qitems = (int64_t)B * T * H, kitems = (int64_t)B * T * KVH;
    if (qitems == 0) return;
    attention_dq_kernel<<<(unsigned)((qitems + WARPS - 1) / WARPS), 32 * WARPS>>>(dq, dout, out, lse, q, k, v, pos, B, T,
                                                                                  H, KVH, HS, scale);
    LAUNCH_CHECK();
    attention_dkv_kernel<<<(unsigned)((kitems + WARPS - 1) / WARPS), 32 * WARPS>>>(dk, dv, dout, out, lse, q, k, v, pos,
                                                                                   B, T, H, KVH, HS, scale);
    LAUNCH_CHECK();
}

/* One warp per head: the new query against all Tk cached keys. */
__global__ void attention_decode_kernel(float *out, const float *q, const float *kc, const float *vc, int Tk, int H,
                                        int KVH, int HS, float scale) {
    int h = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x & 31;
    if (h >= H) return;
    int kvh = h / (H / KVH);
    float qr[MAXE], o[MAXE];
    row_load(qr, q + (int64_t)h * HS, HS, lane);
    attend_row(o, qr, kc + (int64_t)kvh * HS, vc + (int64_t)kvh * HS, (int64_t)KVH * HS, 0, Tk - 1, HS, scale, lane);
    row_store(out + (int64_t)h * HS, o, HS, lane);
}

void attention_decode_cuda(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                           int HS) {
    check_shapes(H, KVH, HS);
    if (H == 0 || Tk == 0) return;
    attention_decode_kernel<<<(unsigned)((H + WARPS - 1) / WARPS), 32 * WARPS>>>(out, q, kc, vc, Tk, H, KVH, HS,
                                                                                 1.0f / sqrtf((float)HS));
    LAUNCH_CHECK();
}
