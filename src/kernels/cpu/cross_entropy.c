/* cross_entropy: the LM head fused with the cross-entropy loss, in row chunks, so the full
 * (N, V) float32 logits (the biggest activation: V = 152k for Qwen) never exist. Only rows
 * with a target are computed. Softmax in three vectorized passes over each row (max, exp+sum
 * stored in place, scale), then the two gradient GEMMs. Contract in kernels.h; reference
 * lm_head_ce_ref. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/simd.h"

/* Loss of one row of logits l (V) against tgt; if grad, l becomes gs * (softmax - onehot). */
static double ce_row(float *l, int V, int tgt, float gs, int grad) {
    int V8 = V & ~7;
    v8f mv = v8_set1(-INFINITY);
    for (int v = 0; v < V8; v += 8) mv = v8_max(mv, v8_load(l + v));
    float mx = v8_hmax(mv);
    for (int v = V8; v < V; v++) mx = l[v] > mx ? l[v] : mx;
    float lt = l[tgt];
    double z = 0;
    v8f m8 = v8_set1(mx);
    for (int v0 = 0; v0 < V8; v0 += 1024) { /* float lanes per 1024 columns, then double */
        v8f s = v8_set1(0.0f);
        int v1 = v0 + 1024 < V8 ? v0 + 1024 : V8;
        for (int v = v0; v < v1; v += 8) {
            v8f e = v8_exp(v8_load(l + v) - m8);
            if (grad) v8_store(l + v, e);
            s += e;
        }
        z += v8_hsum(s);
    }
    for (int v = V8; v < V; v++) {
        float e = exp_poly(l[v] - mx);
        if (grad) l[v] = e;
        z += e;
    }
    if (grad) {
        float k = (float)(gs / z);
        v8f k8 = v8_set1(k);
        for (int v = 0; v < V8; v += 8) v8_store(l + v, v8_load(l + v) * k8);
        for (int v = V8; v < V; v++) l[v] *= k;
        l[tgt] -= gs;
    }
    return mx + log(z) - lt;
}

double lm_head_ce_cpu(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N, int C,
                      int V, float grad_scale, float *scratch, int chunk) {
    double total = 0;
    float *logits = scratch, *hg = scratch + (int64_t)chunk * V, *dhg = hg + (int64_t)chunk * C;
    if (dh) memset(dh, 0, sizeof(float) * N * C);
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int idx[chunk], m = 0;
        for (int64_t n = n0; n < N && n < n0 + chunk; n++)
            if (targets[n] >= 0) idx[m++] = (int)(n - n0);
        if (m == 0) continue;
        for (int i = 0; i < m; i++) memcpy(hg + (int64_t)i * C, h + (n0 + idx[i]) * C, sizeof(float) * C);
        cpu_sgemm(0, 1, m, V, C, 1.0f, hg, C, w, C, 0.0f, logits, V);
        double part = 0;
#pragma omp parallel for reduction(+ : part) schedule(static, 1)
        for (int i = 0; i < m; i++)
            part += ce_row(logits + (int64_t)i * V, V, targets[n0 + idx[i]], grad_scale, dh != NULL);
        total += part;
        if (!dh) continue;
        cpu_sgemm(0, 0, m, C, V, 1.0f, logits, V, w, C, 0.0f, dhg, C);
        for (int i = 0; i < m; i++) memcpy(dh + (n0 + idx[i]) * C, dhg + (int64_t)i * C, sizeof(float) * C);
        if (dw) cpu_sgemm(1, 0, V, C, m, 1.0f, logits, V, hg, C, 1.0f, dw, C);
    }
    return total;
}
