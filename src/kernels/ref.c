/* ref: scalar double-precision reference kernels; see ref.h and kernels.h for contracts,
 * docs/model.md for the math. Written for clarity, not speed. */
#include "kernels/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/util.h"

void embedding_forward_ref(double *out, const int32_t *ids, const double *wte, int64_t N, int C) {
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) out[n * C + c] = wte[(int64_t)ids[n] * C + c];
}

void embedding_backward_ref(double *dwte, const double *dout, const int32_t *ids, int64_t N, int C) {
    for (int64_t n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dwte[(int64_t)ids[n] * C + c] += dout[n * C + c];
}

void rmsnorm_forward_ref(double *out, double *rstd, const double *inp, const double *weight, int64_t N, int C,
                         double eps) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        double r = 1.0 / sqrt(ss / C + eps);
        rstd[n] = r;
        for (int c = 0; c < C; c++) out[n * C + c] = x[c] * r * weight[c];
    }
}

/* y_c = w_c x_c r, r = (mean x^2 + eps)^-1/2: dx_c = r (w_c dy_c) - r^3 x_c / C * sum_j w_j dy_j x_j */
void rmsnorm_backward_ref(double *dinp, double *dweight, const double *dout, const double *inp, const double *weight,
                          const double *rstd, int64_t N, int C, int acc) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * C, *dy = dout + n * C;
        double r = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += weight[c] * dy[c] * x[c];
        for (int c = 0; c < C; c++) {
            double g = r * weight[c] * dy[c] - r * r * r * x[c] * dot / C;
            dinp[n * C + c] = (acc ? dinp[n * C + c] : 0) + g;
            if (dweight) dweight[c] += dy[c] * x[c] * r;
        }
    }
}

void matmul_forward_ref(double *out, const double *inp, const double *weight, const double *bias, int64_t N, int IC,
                        int OC, double alpha, int acc) {
    for (int64_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int i = 0; i < IC; i++) s += inp[n * IC + i] * weight[(int64_t)o * IC + i];
            out[n * OC + o] = (acc ? out[n * OC + o] : 0) + alpha * s + (bias ? bias[o] : 0);
        }
}

void matmul_backward_ref(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                         const double *weight, int64_t N, int IC, int OC, double alpha, int acc) {
    for (int64_t n = 0; n < N; n++) {
        for (int i = 0; i < IC && dinp; i++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += dout[n * OC + o] * weight[(int64_t)o * IC + i];
            dinp[n * IC + i] = (acc ? dinp[n * IC + i] : 0) + alpha * s;
        }
        for (int o = 0; o < OC; o++) {
            double g = alpha * dout[n * OC + o];
            if (dbias) dbias[o] += g;
            if (dweight)
                for (int i = 0; i < IC; i++) dweight[(int64_t)o * IC + i] += g * inp[n * IC + i];
        }
    }
}

/* bf16 weights: the float32 value of each weight is exact in double, so this is matmul_*_ref
 * on the decoded weight. */
void matmul_forward_bf16_ref(double *out, const double *inp, const uint16_t *weight, const double *bias, int64_t N,
                             int IC, int OC, double alpha, int acc) {
    for (int64_t n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int i = 0; i < IC; i++) s += inp[n * IC + i] * bf16_to_f32(weight[(int64_t)o * IC + i]);
            out[n * OC + o] = (acc ? out[n * OC + o] : 0) + alpha * s + (bias ? bias[o] : 0);
        }
}

void matmul_backward_bf16_ref(double *dinp, const double *dout, const uint16_t *weight, int64_t N, int IC, int OC,
                              double alpha, int acc) {
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += dout[n * OC + o] * bf16_to_f32(weight[(int64_t)o * IC + i]);
            dinp[n * IC + i] = (acc ? dinp[n * IC + i] : 0) + alpha * s;
        }
}

void rope_apply_ref(double *x, const int32_t *pos, const double *inv_freq, int64_t N, int nh, int HS, int sign) {
    int half = HS / 2;
    for (int64_t n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            double *v = x + (n * nh + h) * HS;
            for (int i = 0; i < half; i++) {
                double a = pos[n] * inv_freq[i], c = cos(a), s = sign * sin(a);
                double x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
}

/* Scores of query (b,t,h) against keys t0..t of its document, into s[0..t-t0]. */
static int scores_ref(double *s, const double *q, const double *k, const int32_t *pos, int b, int t, int h, int T,
                      int H, int KVH, int HS) {
    int kvh = h / (H / KVH), t0 = t - pos[(int64_t)b * T + t];
    const double *qv = q + (((int64_t)b * T + t) * H + h) * HS;
    for (int j = t0; j <= t; j++) {
        const double *kv = k + (((int64_t)b * T + j) * KVH + kvh) * HS;
        double d = 0;
        for (int e = 0; e < HS; e++) d += qv[e] * kv[e];
        s[j - t0] = d / sqrt((double)HS);
    }
    return t0;
}

void attention_forward_ref(double *out, double *lse, const double *q, const double *k, const double *v,
                           const int32_t *pos, int B, int T, int H, int KVH, int HS) {
    double *s = xmalloc(sizeof(double) * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                int t0 = scores_ref(s, q, k, pos, b, t, h, T, H, KVH, HS), kvh = h / (H / KVH);
                double m = -INFINITY, z = 0;
                for (int j = t0; j <= t; j++) m = fmax(m, s[j - t0]);
                for (int j = t0; j <= t; j++) z += exp(s[j - t0] - m);
                double *o = out + (((int64_t)b * T + t) * H + h) * HS;
                for (int e = 0; e < HS; e++) o[e] = 0;
                for (int j = t0; j <= t; j++) {
                    double p = exp(s[j - t0] - m) / z;
                    const double *vv = v + (((int64_t)b * T + j) * KVH + kvh) * HS;
                    for (int e = 0; e < HS; e++) o[e] += p * vv[e];
                }
                lse[((int64_t)b * T + t) * H + h] = m + log(z);
            }
    free(s);
}

/* p = exp(s - lse); dp_j = do . v_j; ds = p (dp - do . o); dq = ds k / sqrt(HS); dk += ds q / sqrt(HS); dv += p do */
void attention_backward_ref(double *dq, double *dk, double *dv, const double *dout, const double *out,
                            const double *lse, const double *q, const double *k, const double *v, const int32_t *pos,
                            int B, int T, int H, int KVH, int HS) {
    int64_t N = (int64_t)B * T;
    memset(dq, 0, sizeof(double) * N * H * HS);
    memset(dk, 0, sizeof(double) * N * KVH * HS);
    memset(dv, 0, sizeof(double) * N * KVH * HS);
    double *s = xmalloc(sizeof(double) * T), scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                int t0 = scores_ref(s, q, k, pos, b, t, h, T, H, KVH, HS), kvh = h / (H / KVH);
                int64_t qi = ((int64_t)b * T + t) * H + h;
                const double *dov = dout + qi * HS, *ov = out + qi * HS, *qv = q + qi * HS;
                double D = 0;
                for (int e = 0; e < HS; e++) D += dov[e] * ov[e];
                for (int j = t0; j <= t; j++) {
                    int64_t ki = ((int64_t)b * T + j) * KVH + kvh;
                    double p = exp(s[j - t0] - lse[qi]), dp = 0;
                    for (int e = 0; e < HS; e++) dp += dov[e] * v[ki * HS + e];
                    double ds = p * (dp - D);
                    for (int e = 0; e < HS; e++) {
                        dq[qi * HS + e] += ds * k[ki * HS + e] * scale;
                        dk[ki * HS + e] += ds * qv[e] * scale;
                        dv[ki * HS + e] += p * dov[e];
                    }
                }
            }
    free(s);
}

void swiglu_forward_ref(double *h, const double *gate, const double *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = gate[i] / (1 + exp(-gate[i])) * up[i];
}

/* silu(g) = g sig(g); silu'(g) = sig(g) (1 + g (1 - sig(g))) */
void swiglu_backward_ref(double *dgate, double *dup, const double *dh, const double *gate, const double *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double sg = 1 / (1 + exp(-gate[i]));
        dup[i] = dh[i] * gate[i] * sg;
        dgate[i] = dh[i] * up[i] * sg * (1 + gate[i] * (1 - sg));
    }
}

double lm_head_ce_ref(double *dh, double *dw, const double *h, const double *w, const int32_t *targets, int64_t N, int C,
                      int V, double grad_scale) {
    double *logit = xmalloc(sizeof(double) * V), total = 0;
    for (int64_t n = 0; n < N; n++) {
        if (dh)
            for (int c = 0; c < C; c++) dh[n * C + c] = 0;
        if (targets[n] < 0) continue;
        double m = -INFINITY, z = 0;
        for (int vv = 0; vv < V; vv++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += h[n * C + c] * w[(int64_t)vv * C + c];
            logit[vv] = s;
            m = fmax(m, s);
        }
        for (int vv = 0; vv < V; vv++) z += exp(logit[vv] - m);
        total += m + log(z) - logit[targets[n]];
        if (!dh) continue;
        for (int vv = 0; vv < V; vv++) {
            double g = grad_scale * (exp(logit[vv] - m) / z - (vv == targets[n]));
            for (int c = 0; c < C; c++) {
                dh[n * C + c] += g * w[(int64_t)vv * C + c];
                if (dw) dw[(int64_t)vv * C + c] += g * h[n * C + c];
            }
        }
    }
    free(logit);
    return total;
}
