/* cross_entropy: the LM head fused with the cross-entropy loss, in row chunks, so the full
 * (N, V) float32 logits (the biggest activation: V = 152k for Qwen) never exist. Only rows
 * with a target are computed. Contract in kernels.h; reference lm_head_ce_ref. */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu.h"

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
#pragma omp parallel for reduction(+ : part)
        for (int i = 0; i < m; i++) {
            float *l = logits + (int64_t)i * V;
            int tgt = targets[n0 + idx[i]];
            float mx = -INFINITY;
            for (int v = 0; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double z = 0;
            for (int v = 0; v < V; v++) z += expf(l[v] - mx);
            part += mx + log(z) - l[tgt];
            if (!dh) continue;
            float inv = (float)(1.0 / z);
            for (int v = 0; v < V; v++) l[v] = grad_scale * expf(l[v] - mx) * inv;
            l[tgt] -= grad_scale;
        }
        total += part;
        if (!dh) continue;
        cpu_sgemm(0, 0, m, C, V, 1.0f, logits, V, w, C, 0.0f, dhg, C);
        for (int i = 0; i < m; i++) memcpy(dh + (n0 + idx[i]) * C, dhg + (int64_t)i * C, sizeof(float) * C);
        if (dw) cpu_sgemm(1, 0, V, C, m, 1.0f, logits, V, hg, C, 1.0f, dw, C);
    }
    return total;
}
