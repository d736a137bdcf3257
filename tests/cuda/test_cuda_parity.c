/* test_cuda_parity: every entry of the CUDA kernel tables ("cuda" and, for the GEMM entries,
 * "cuda-bf16") against the double-precision references (kernels/ref.h) or, where none exists, the
 * CPU backend, on random ragged inputs. Tolerances come from the precision: fp32 unit roundoff
 * u = 2^-24 times the reduction length (worst-case summation bound) for sums, a few u for
 * elementwise math, bf16's 2^-8 for bf16 GEMMs. Skips (exit 0) when there is no CUDA device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "test.h"

#define U32 (1.0 / 16777216.0) /* fp32 unit roundoff */
#define U16 (1.0 / 256.0)      /* bf16 unit roundoff */

static const struct kernels *G;   /* the backend under test */
static const struct kernels *GBF; /* its bf16-GEMM twin */
static uint64_t seed = 1234;

static float *rnd(int64_t n, float scale) {
    float *x = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(&seed) - 1.0f);
    return x;
}

static double *to_d(const float *x, int64_t n) {
    double *d = xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* backend copy of a host array */
static void *up(const void *x, size_t bytes) {
    void *d = G->mem_alloc(bytes);
    G->mem_copy(d, x, bytes);
    return d;
}

/* host copy of a backend array (freed by the caller) */
static float *down(const float *d, int64_t n) {
    float *x = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    G->mem_copy(x, d, sizeof(float) * (size_t)n);
    return x;
}

static double rel_err_d(const float *a, const double *b, int64_t n) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        d += (a[i] - b[i]) * (a[i] - b[i]);
        r += b[i] * b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Compares backend array dev (n) with the reference ref, prints one line, records a failure. */
static void cmp(const char *what, const float *dev, const double *ref, int64_t n, double tol) {
    float *h = down(dev, n);
    double e = rel_err_d(h, ref, n);
    printf("  %-44s err %.3e  tol %.1e  %s\n", what, e, tol, e <= tol ? "ok" : "FAIL");
    EXPECT(e <= tol, "%s: relative error %.3e > %.1e", what, e, tol);
    free(h);
}

static void cmp_f(const char *what, const float *dev, const float *ref, int64_t n, double tol) {
    double *rd = to_d(ref, n);
    cmp(what, dev, rd, n, tol);
    free(rd);
}

/* Packed-sequence positions: row 0 holds documents of 7 and T-7 tokens, the others one each. */
static int32_t *doc_pos(int B, int T) {
    int32_t *pos = xmalloc(sizeof(int32_t) * (size_t)B * T);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) pos[b * T + t] = b == 0 && t >= 7 ? t - 7 : t;
    return pos;
}

static void test_memory(void) {
    size_t n = 1000;
    float *d = G->mem_alloc(sizeof(float) * n), *h = down(d, (int64_t)n), *x = rnd((int64_t)n, 1);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= h[i] == 0;
    EXPECT(zero, "mem_alloc is not zero-filled");
    G->mem_copy(d, x, sizeof(float) * n);
    float *d2 = G->mem_alloc(sizeof(float) * n);
    G->mem_copy(d2, d, sizeof(float) * n);
    free(h);
    h = down(d2, (int64_t)n);
    EXPECT(memcmp(h, x, sizeof(float) * n) == 0, "mem_copy round trip differs");
    G->mem_zero(d2 + 10, sizeof(float) * 5);
    free(h);
    h = down(d2, (int64_t)n);
    EXPECT(h[9] == x[9] && h[10] == 0 && h[14] == 0 && h[15] == x[15], "mem_zero touched the wrong range");
    G->sync();
    G->mem_free(d), G->mem_free(d2);
    free(h), free(x);
}

static void test_embedding(void) {
    int64_t N = 45;
    int C = 70, V = 13;
    int32_t ids[45];
    for (int i = 0; i < N; i++) ids[i] = (i * 7) % V; /* repeated ids exercise the scatter */
    float *wte = rnd((int64_t)V * C, 1), *dout = rnd(N * C, 1), *dwte = rnd((int64_t)V * C, 1);
    double *wd = to_d(wte, (int64_t)V * C), *od = xcalloc((size_t)(N * C), sizeof(double));
    double *dd = to_d(dout, N * C), *dwd = to_d(dwte, (int64_t)V * C);
    embedding_forward_ref(od, ids, wd, N, C);
    embedding_backward_ref(dwd, dd, ids, N, C);
    int32_t *g_ids = up(ids, sizeof ids);
    float *g_wte = up(wte, sizeof(float) * V * C), *g_out = G->mem_alloc(sizeof(float) * N * C);
    float *g_dout = up(dout, sizeof(float) * N * C), *g_dwte = up(dwte, sizeof(float) * V * C);
    G->embedding_forward(g_out, g_ids, g_wte, N, C);
    G->embedding_backward(g_dwte, g_dout, g_ids, N, C);
    cmp("embedding_forward", g_out, od, N * C, 0);
    cmp("embedding_backward (dwte +=, 4 adds per row)", g_dwte, dwd, (int64_t)V * C, 8 * U32);
    G->mem_free(g_ids), G->mem_free(g_wte), G->mem_free(g_out), G->mem_free(g_dout), G->mem_free(g_dwte);
    free(wte), free(dout), free(dwte), free(wd), free(od), free(dd), free(dwd);
}

static void test_rmsnorm(void) {
    int64_t N = 37;
    int C = 300;
    float eps = 1e-6f;
    float *x = rnd(N * C, 2), *w = rnd(C, 1), *dy = rnd(N * C, 1), *dx0 = rnd(N * C, 1), *dw0 = rnd(C, 1);
    double *xd = to_d(x, N * C), *wd = to_d(w, C), *dyd = to_d(dy, N * C), *od = xmalloc(sizeof(double) * N * C);
    double *rd = xmalloc(sizeof(double) * N), *dxd = to_d(dx0, N * C), *dwd = to_d(dw0, C);
    rmsnorm_forward_ref(od, rd, xd, wd, N, C, eps);
    rmsnorm_backward_ref(dxd, dwd, dyd, xd, wd, rd, N, C, 1);
    float *g_x = up(x, sizeof(float) * N * C), *g_w = up(w, sizeof(float) * C), *g_dy = up(dy, sizeof(float) * N * C);
    float *g_out = G->mem_alloc(sizeof(float) * N * C), *g_r = G->mem_alloc(sizeof(float) * N);
    float *g_dx = up(dx0, sizeof(float) * N * C), *g_dw = up(dw0, sizeof(float) * C);
    G->rmsnorm_forward(g_out, g_r, g_x, g_w, N, C, eps);
    G->rmsnorm_backward(g_dx, g_dw, g_dy, g_x, g_w, g_r, N, C, 1);
    cmp("rmsnorm_forward out", g_out, od, N * C, 4 * C * U32);
    cmp("rmsnorm_forward rstd", g_r, rd, N, 4 * C * U32);
    cmp("rmsnorm_backward dinp (acc)", g_dx, dxd, N * C, 4 * C * U32);
    cmp("rmsnorm_backward dweight (+=)", g_dw, dwd, C, 4 * N * U32);
    /* acc = 0 overwrites, dweight NULL skipped */
    for (int64_t i = 0; i < N * C; i++) dxd[i] = 0;
    rmsnorm_backward_ref(dxd, NULL, dyd, xd, wd, rd, N, C, 0);
    G->rmsnorm_backward(g_dx, NULL, g_dy, g_x, g_w, g_r, N, C, 0);
    cmp("rmsnorm_backward dinp (=)", g_dx, dxd, N * C, 4 * C * U32);
    float *bufs[] = {g_x, g_w, g_dy, g_out, g_r, g_dx, g_dw};
    for (int i = 0; i < 7; i++) G->mem_free(bufs[i]);
    free(x), free(w), free(dy), free(dx0), free(dw0), free(xd), free(wd), free(dyd), free(od), free(rd), free(dxd);
    free(dwd);
}

/* matmul on table k with tolerance per reduction element u (fp32 or bf16). */
static void test_matmul_on(const struct kernels *k, double u, const char *tag) {
    int64_t N = 33;
    int IC = 70, OC = 45;
    float alpha = 0.75f;
    float *x = rnd(N * IC, 1), *w = rnd((int64_t)OC * IC, 1), *b = rnd(OC, 1), *y0 = rnd(N * OC, 1);
    float *dy = rnd(N * OC, 1), *dx0 = rnd(N * IC, 1), *dw0 = rnd((int64_t)OC * IC, 1), *db0 = rnd(OC, 1);
    double *xd = to_d(x, N * IC), *wd = to_d(w, (int64_t)OC * IC), *bd = to_d(b, OC), *yd = to_d(y0, N * OC);
    double *dyd = to_d(dy, N * OC), *dxd = to_d(dx0, N * IC), *dwd = to_d(dw0, (int64_t)OC * IC), *dbd = to_d(db0, OC);
    matmul_forward_ref(yd, xd, wd, bd, N, IC, OC, alpha, 1);
    matmul_backward_ref(dxd, dwd, dbd, dyd, xd, wd, N, IC, OC, alpha, 1);
    float *g_x = up(x, sizeof(float) * N * IC), *g_w = up(w, sizeof(float) * OC * IC), *g_b = up(b, sizeof(float) * OC);
    float *g_y = up(y0, sizeof(float) * N * OC), *g_dy = up(dy, sizeof(float) * N * OC);
    float *g_dx = up(dx0, sizeof(float) * N * IC), *g_dw = up(dw0, sizeof(float) * OC * IC);
    float *g_db = up(db0, sizeof(float) * OC);
    k->matmul_forward(g_y, g_x, g_w, g_b, N, IC, OC, alpha, 1);
    k->matmul_backward(g_dx, g_dw, g_db, g_dy, g_x, g_w, N, IC, OC, alpha, 1);
    char what[96];
    /* fp32: K u (worst-case sum); bf16: the inputs' rounding, 2 u16, whatever K */
    double tol_ic = u == U16 ? 4 * U16 : 4 * IC * u, tol_oc = u == U16 ? 4 * U16 : 4 * OC * u;
    double tol_n = u == U16 ? 4 * U16 : 4 * N * u;
    snprintf(what, sizeof what, "%s matmul_forward (acc, bias)", tag);
    cmp(what, g_y, yd, N * OC, tol_ic);
    snprintf(what, sizeof what, "%s matmul_backward dinp (acc)", tag);
    cmp(what, g_dx, dxd, N * IC, tol_oc);
    snprintf(what, sizeof what, "%s matmul_backward dweight (+=)", tag);
    cmp(what, g_dw, dwd, (int64_t)OC * IC, tol_n);
    snprintf(what, sizeof what, "%s matmul_backward dbias (+=)", tag);
    cmp(what, g_db, dbd, OC, 4 * N * U32);
    /* acc = 0, no bias, NULL outputs skipped */
    matmul_forward_ref(yd, xd, wd, NULL, N, IC, OC, 1.0, 0);
    k->matmul_forward(g_y, g_x, g_w, NULL, N, IC, OC, 1.0f, 0);
    snprintf(what, sizeof what, "%s matmul_forward (=, no bias)", tag);
    cmp(what, g_y, yd, N * OC, tol_ic);
    matmul_backward_ref(dxd, NULL, NULL, dyd, xd, wd, N, IC, OC, 1.0, 0);
    k->matmul_backward(g_dx, NULL, NULL, g_dy, g_x, g_w, N, IC, OC, 1.0f, 0);
    snprintf(what, sizeof what, "%s matmul_backward dinp (=)", tag);
    cmp(what, g_dx, dxd, N * IC, tol_oc);
    float *bufs[] = {g_x, g_w, g_b, g_y, g_dy, g_dx, g_dw, g_db};
    for (int i = 0; i < 8; i++) G->mem_free(bufs[i]);
    free(x), free(w), free(b), free(y0), free(dy), free(dx0), free(dw0), free(db0);
    free(xd), free(wd), free(bd), free(yd), free(dyd), free(dxd), free(dwd), free(dbd);
}

static void test_matmul(void) { test_matmul_on(G, U32, "cuda"); }
static void test_matmul_bf16(void) { test_matmul_on(GBF, U16, "cuda-bf16"); }

static void test_rope(void) {
    int B = 2, T = 19, nh = 3, HS = 40;
    int64_t N = (int64_t)B * T, n = N * nh * HS;
    int32_t *pos = doc_pos(B, T);
    float inv[20];
    double invd[20];
    for (int i = 0; i < HS / 2; i++) invd[i] = inv[i] = powf(10000.0f, -2.0f * i / HS);
    for (int sign = -1; sign <= 1; sign += 2) {
        float *x = rnd(n, 1);
        double *xd = to_d(x, n);
        rope_apply_ref(xd, pos, invd, N, nh, HS, sign);
        float *g_x = up(x, sizeof(float) * n), *g_inv = up(inv, sizeof inv);
        int32_t *g_pos = up(pos, sizeof(int32_t) * N);
        G->rope_apply(g_x, g_pos, g_inv, N, nh, HS, sign);
        /* the angle pos*inv_freq is rounded to fp32 (as transformers): |err| <= T u per element */
        cmp(sign > 0 ? "rope_apply (+1)" : "rope_apply (-1, backward)", g_x, xd, n, 8 * T * U32);
        G->mem_free(g_x), G->mem_free(g_inv), G->mem_free(g_pos);
        free(x), free(xd);
    }
    free(pos);
}

static void test_attention_shape(int B, int T, int H, int KVH, int HS) {
    int64_t N = (int64_t)B * T, nq = N * H * HS, nk = N * KVH * HS;
    int32_t *pos = doc_pos(B, T);
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *dout = rnd(nq, 1);
    double *qd = to_d(q, nq), *kd = to_d(k, nk), *vd = to_d(v, nk), *dod = to_d(dout, nq);
    double *od = xmalloc(sizeof(double) * nq), *ld = xmalloc(sizeof(double) * N * H);
    double *dqd = xmalloc(sizeof(double) * nq), *dkd = xmalloc(sizeof(double) * nk), *dvd = xmalloc(sizeof(double) * nk);
    attention_forward_ref(od, ld, qd, kd, vd, pos, B, T, H, KVH, HS);
    attention_backward_ref(dqd, dkd, dvd, dod, od, ld, qd, kd, vd, pos, B, T, H, KVH, HS);
    float *g_q = up(q, sizeof(float) * nq), *g_k = up(k, sizeof(float) * nk), *g_v = up(v, sizeof(float) * nk);
    float *g_do = up(dout, sizeof(float) * nq), *g_o = G->mem_alloc(sizeof(float) * nq);
    float *g_l = G->mem_alloc(sizeof(float) * N * H), *g_dq = G->mem_alloc(sizeof(float) * nq);
    float *g_dk = G->mem_alloc(sizeof(float) * nk), *g_dv = G->mem_alloc(sizeof(float) * nk);
    int32_t *g_pos = up(pos, sizeof(int32_t) * N);
    G->attention_forward(g_o, g_l, g_q, g_k, g_v, g_pos, B, T, H, KVH, HS);
    G->attention_backward(g_dq, g_dk, g_dv, g_do, g_o, g_l, g_q, g_k, g_v, g_pos, B, T, H, KVH, HS);
    char what[96];
    double tol = 8.0 * (T + HS) * U32; /* sums over T keys of HS-long dots */
    snprintf(what, sizeof what, "attention_forward out (HS %d)", HS);
    cmp(what, g_o, od, nq, tol);
    snprintf(what, sizeof what, "attention_forward lse (HS %d)", HS);
    cmp(what, g_l, ld, N * H, tol);
    snprintf(what, sizeof what, "attention_backward dq (HS %d)", HS);
    cmp(what, g_dq, dqd, nq, tol);
    snprintf(what, sizeof what, "attention_backward dk (HS %d)", HS);
    cmp(what, g_dk, dkd, nk, tol * H / KVH);
    snprintf(what, sizeof what, "attention_backward dv (HS %d)", HS);
    cmp(what, g_dv, dvd, nk, tol * H / KVH);
    /* decode: the last query of row 1 (one document) against its T keys, vs the CPU backend */
    float *qlast = q + ((int64_t)(2 * T - 1) * H) * HS, *kc = k + (int64_t)T * KVH * HS, *vc = v + (int64_t)T * KVH * HS;
    float *cpu = xmalloc(sizeof(float) * H * HS);
    kernels_cpu.attention_decode(cpu, qlast, kc, vc, T, H, KVH, HS);
    float *g_ql = up(qlast, sizeof(float) * H * HS), *g_kc = up(kc, sizeof(float) * T * KVH * HS);
    float *g_vc = up(vc, sizeof(float) * T * KVH * HS), *g_dec = G->mem_alloc(sizeof(float) * H * HS);
    G->attention_decode(g_dec, g_ql, g_kc, g_vc, T, H, KVH, HS);
    snprintf(what, sizeof what, "attention_decode vs cpu (HS %d)", HS);
    cmp_f(what, g_dec, cpu, (int64_t)H * HS, tol);
    float *bufs[] = {g_q, g_k, g_v, g_do, g_o, g_l, g_dq, g_dk, g_dv, g_ql, g_kc, g_vc, g_dec};
    for (int i = 0; i < 13; i++) G->mem_free(bufs[i]);
    G->mem_free(g_pos);
    free(pos), free(q), free(k), free(v), free(dout), free(qd), free(kd), free(vd), free(dod), free(od), free(ld);
    free(dqd), free(dkd), free(dvd), free(cpu);
}

static void test_attention(void) {
    test_attention_shape(2, 19, 6, 2, 40);  /* GQA 3:1, HS not a multiple of 32, packed row 0 */
    test_attention_shape(1, 23, 4, 4, 136); /* MHA, HS > 128 */
}

static void test_swiglu(void) {
    int64_t n = 1001;
    float *g = rnd(n, 4), *u = rnd(n, 2), *dh = rnd(n, 1);
    double *gd = to_d(g, n), *ud = to_d(u, n), *dhd = to_d(dh, n), *hd = xmalloc(sizeof(double) * n);
    double *dgd = xmalloc(sizeof(double) * n), *dud = xmalloc(sizeof(double) * n);
    swiglu_forward_ref(hd, gd, ud, n);
    swiglu_backward_ref(dgd, dud, dhd, gd, ud, n);
    float *g_g = up(g, sizeof(float) * n), *g_u = up(u, sizeof(float) * n), *g_dh = up(dh, sizeof(float) * n);
    float *g_h = G->mem_alloc(sizeof(float) * n), *g_dg = G->mem_alloc(sizeof(float) * n);
    float *g_du = G->mem_alloc(sizeof(float) * n);
    G->swiglu_forward(g_h, g_g, g_u, n);
    G->swiglu_backward(g_dg, g_du, g_dh, g_g, g_u, n);
    cmp("swiglu_forward", g_h, hd, n, 8 * U32);
    cmp("swiglu_backward dgate", g_dg, dgd, n, 16 * U32);
    cmp("swiglu_backward dup", g_du, dud, n, 8 * U32);
    float *bufs[] = {g_g, g_u, g_dh, g_h, g_dg, g_du};
    for (int i = 0; i < 6; i++) G->mem_free(bufs[i]);
    free(g), free(u), free(dh), free(gd), free(ud), free(dhd), free(hd), free(dgd), free(dud);
}

static void test_lm_head_ce_on(const struct kernels *k, double u, const char *tag) {
    int64_t N = 29;
    int C = 48, V = 301, chunk = 8;
    float gs = 1.0f / 20;
    int32_t tg[29];
    for (int i = 0; i < N; i++) tg[i] = i % 4 == 3 ? -100 : (int32_t)((i * 37) % V);
    float *h = rnd(N * C, 1), *w = rnd((int64_t)V * C, 1), *dw0 = rnd((int64_t)V * C, 0.01f);
    double *hd = to_d(h, N * C), *wd = to_d(w, (int64_t)V * C), *dhd = xmalloc(sizeof(double) * N * C);
    double *dwd = to_d(dw0, (int64_t)V * C);
    double ref = lm_head_ce_ref(dhd, dwd, hd, wd, tg, N, C, V, gs);
    float *g_h = up(h, sizeof(float) * N * C), *g_w = up(w, sizeof(float) * V * C), *g_dw = up(dw0, sizeof(float) * V * C);
    float *g_dh = G->mem_alloc(sizeof(float) * N * C);
    float *g_s = G->mem_alloc(sizeof(float) * (size_t)chunk * (V + 2 * C));
    double tol = u == U16 ? 4 * U16 : 4 * (C + V) * u;
    char what[96];
    /* targets from host memory (the model's case) */
    double loss = k->lm_head_ce(g_dh, g_dw, g_h, g_w, tg, N, C, V, gs, g_s, chunk);
    double e = fabs(loss - ref) / fabs(ref);
    printf("  %-44s err %.3e  tol %.1e  %s\n", tag, e, tol, e <= tol ? "ok" : "FAIL");
    EXPECT(e <= tol, "%s loss %.9g vs %.9g", tag, loss, ref);
    snprintf(what, sizeof what, "%s dh", tag);
    cmp(what, g_dh, dhd, N * C, tol);
    snprintf(what, sizeof what, "%s dw (+=)", tag);
    cmp(what, g_dw, dwd, (int64_t)V * C, tol);
    /* loss only, targets in backend memory */
    int32_t *g_tg = up(tg, sizeof tg);
    double loss2 = k->lm_head_ce(NULL, NULL, g_h, g_w, g_tg, N, C, V, gs, g_s, chunk);
    EXPECT(fabs(loss2 - loss) <= 1e-6 * fabs(loss), "%s loss-only %.9g vs %.9g", tag, loss2, loss);
    G->mem_free(g_h), G->mem_free(g_w), G->mem_free(g_dw), G->mem_free(g_dh), G->mem_free(g_s), G->mem_free(g_tg);
    free(h), free(w), free(dw0), free(hd), free(wd), free(dhd), free(dwd);
}

static void test_lm_head_ce(void) { test_lm_head_ce_on(G, U32, "cuda lm_head_ce"); }
static void test_lm_head_ce_bf16(void) { test_lm_head_ce_on(GBF, U16, "cuda-bf16 lm_head_ce"); }

/* Flat-buffer entries against the CPU backend: same formulas, fp32 rounding apart. */
static void test_flat(void) {
    int64_t n = 5000;
    float p = 0.3f;
    float *x = rnd(n, 1), *acc = rnd(n, 1), *cpu = xmalloc(sizeof(float) * n);
    float *g_x = up(x, sizeof(float) * n), *g_o = G->mem_alloc(sizeof(float) * n);
    kernels_cpu.dropout(cpu, x, n, 99, p, 0);
    G->dropout(g_o, g_x, n, 99, p, 0);
    cmp_f("dropout (same mask as the CPU)", g_o, cpu, n, U32);
    memcpy(cpu, acc, sizeof(float) * n);
    kernels_cpu.dropout(cpu, x, n, 7, p, 1);
    G->mem_copy(g_o, acc, sizeof(float) * n);
    G->dropout(g_o, g_x, n, 7, p, 1);
    cmp_f("dropout (acc)", g_o, cpu, n, 2 * U32);
    /* three AdamW steps */
    float *w = rnd(n, 1), *m = xcalloc((size_t)n, sizeof(float)), *v = xcalloc((size_t)n, sizeof(float));
    float *g_w = up(w, sizeof(float) * n), *g_m = G->mem_alloc(sizeof(float) * n), *g_v = G->mem_alloc(sizeof(float) * n);
    for (int s = 1; s <= 3; s++) {
        float bc1 = 1 - powf(0.9f, s), bc2 = 1 - powf(0.999f, s), lr = 1e-3f;
        kernels_cpu.adamw(w, m, v, x, n, 1 - lr * 0.01f, 0.9f, 0.999f, lr / bc1, sqrtf(bc2), 1e-8f);
        G->adamw(g_w, g_m, g_v, g_x, n, 1 - lr * 0.01f, 0.9f, 0.999f, lr / bc1, sqrtf(bc2), 1e-8f);
    }
    cmp_f("adamw weights after 3 steps", g_w, w, n, 16 * U32);
    cmp_f("adamw first moment", g_m, m, n, 16 * U32);
    cmp_f("adamw second moment", g_v, v, n, 16 * U32);
    double s_cpu = kernels_cpu.sumsq(x, n), s_gpu = G->sumsq(g_x, n);
    EXPECT(fabs(s_gpu - s_cpu) <= 1e-12 * s_cpu, "sumsq %.17g vs %.17g", s_gpu, s_cpu);
    printf("  %-44s err %.3e  tol %.1e\n", "sumsq (double accumulation)", fabs(s_gpu - s_cpu) / s_cpu, 1e-12);
    kernels_cpu.scale(x, n, 0.37f);
    G->scale(g_x, n, 0.37f);
    cmp_f("scale", g_x, x, n, 0);
    float *bufs[] = {g_x, g_o, g_w, g_m, g_v};
    for (int i = 0; i < 5; i++) G->mem_free(bufs[i]);
    free(x), free(acc), free(cpu), free(w), free(m), free(v);
}

/* A kernel error surfaces at a sync; make sure none is pending at the end. */
static void test_sync(void) { G->sync(); }

int main(void) {
    G = kernels_get("cuda");
    if (!G) {
        printf("cuda_parity: skipped: %s\n", err_msg());
        printf("cuda_parity: 0 passed, 0 failed\n");
        return 0;
    }
    GBF = kernels_get("cuda-bf16");
    CHECK(GBF, "cuda-bf16: %s", err_msg());
    RUN(test_memory);
    RUN(test_embedding);
    RUN(test_rmsnorm);
    RUN(test_matmul);
    RUN(test_matmul_bf16);
    RUN(test_rope);
    RUN(test_attention);
    RUN(test_swiglu);
    RUN(test_lm_head_ce);
    RUN(test_lm_head_ce_bf16);
    RUN(test_flat);
    RUN(test_sync);
    return TEST_SUMMARY("cuda_parity");
}
