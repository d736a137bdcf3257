/* attention: causal, per-document, grouped-query attention on the CPU. Memory is O(T) per
 * thread (one row of scores), never T x T: the forward saves only the log-sum-exp per query
 * and the backward recomputes the probabilities (as FlashAttention does). Contract in
 * kernels.h, reference in kernels/ref.c, math in docs/model.md. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

static inline float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void attention_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                           int B, int T, int H, int KVH, int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH;
#pragma omp parallel for collapse(2) schedule(dynamic, 16)
    for (int64_t bt = 0; bt < (int64_t)B * T; bt++)
        for (int h = 0; h < H; h++) {
            int b = (int)(bt / T), t = (int)(bt % T), kvh = h / rep, t0 = t - pos[bt];
            float s[t - t0 + 1];
            const float *qv = q + (bt * H + h) * HS;
            float m = -INFINITY;
            for (int j = t0; j <= t; j++) {
                s[j - t0] = dot(qv, k + (((int64_t)b * T + j) * KVH + kvh) * HS, HS) * scale;
                if (s[j - t0] > m) m = s[j - t0];
            }
            float z = 0;
            for (int j = t0; j <= t; j++) z += s[j - t0] = expf(s[j - t0] - m);
            float *o = out + (bt * H + h) * HS, inv = 1.0f / z;
            memset(o, 0, sizeof(float) * HS);
            for (int j = t0; j <= t; j++) {
                const float *vv = v + (((int64_t)b * T + j) * KVH + kvh) * HS;
                float p = s[j - t0] * inv;
                for (int e = 0; e < HS; e++) o[e] += p * vv[e];
            }
            lse[bt * H + h] = m + logf(z);
        }
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                            const float *q, const float *k, const float *v, const int32_t *pos, int B, int T, int H,
                            int KVH, int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH;
    /* Each (b, kv head) owns its dk/dv rows, so threads never write the same memory. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < KVH; kvh++) {
            for (int j = 0; j < T; j++) {
                int64_t ki = ((int64_t)b * T + j) * KVH + kvh;
                memset(dk + ki * HS, 0, sizeof(float) * HS);
                memset(dv + ki * HS, 0, sizeof(float) * HS);
            }
            for (int h = kvh * rep; h < (kvh + 1) * rep; h++)
                for (int t = 0; t < T; t++) {
                    int64_t bt = (int64_t)b * T + t, qi = bt * H + h;
                    int t0 = t - pos[bt];
                    const float *qv = q + qi * HS, *dov = dout + qi * HS;
                    float D = dot(dov, out + qi * HS, HS), L = lse[qi];
                    float *dqv = dq + qi * HS;
                    memset(dqv, 0, sizeof(float) * HS);
                    for (int j = t0; j <= t; j++) {
                        int64_t ki = ((int64_t)b * T + j) * KVH + kvh;
                        const float *kv = k + ki * HS, *vv = v + ki * HS;
                        float p = expf(dot(qv, kv, HS) * scale - L);
                        float ds = p * (dot(dov, vv, HS) - D) * scale;
                        float *dkv = dk + ki * HS, *dvv = dv + ki * HS;
                        for (int e = 0; e < HS; e++) {
                            dqv[e] += ds * kv[e];
                            dkv[e] += ds * qv[e];
                            dvv[e] += p * dov[e];
                        }
                    }
                }
        }
}

void attention_decode_cpu(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                          int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH;
#pragma omp parallel for
    for (int h = 0; h < H; h++) {
        int kvh = h / rep;
        float s[Tk], m = -INFINITY, z = 0;
        for (int j = 0; j < Tk; j++) {
            s[j] = dot(q + (int64_t)h * HS, kc + ((int64_t)j * KVH + kvh) * HS, HS) * scale;
            if (s[j] > m) m = s[j];
        }
        for (int j = 0; j < Tk; j++) z += s[j] = expf(s[j] - m);
        float *o = out + (int64_t)h * HS;
        memset(o, 0, sizeof(float) * HS);
        for (int j = 0; j < Tk; j++) {
            const float *vv = vc + ((int64_t)j * KVH + kvh) * HS;
            for (int e = 0; e < HS; e++) o[e] += s[j] / z * vv[e];
        }
    }
}
