/* Tests for src/kernels: every fast CPU kernel (kernels_cpu) against its double-precision
 * reference on ragged shapes, and every reference backward against central finite
 * differences in double (L = sum(r * f(x)) for a random projection r).
 * Float32 tolerance: inputs are O(1), sums run over <= ~200 terms, so rounding error is a
 * few hundred ulps at worst (2^-24 * 200 ~ 1e-5 of the magnitude); we allow 1e-4 (3e-4 for
 * attention and the LM head, whose exp/log and two chained GEMMs add error) relative to
 * the largest reference value. Finite differences: h = 1e-6, error O(h^2) + O(eps/h) ~ 1e-10. */
#include <stdlib.h>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/util.h"
#include "kernels/cpu/simd.h"
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "test.h"

static const struct kernels *K = &kernels_cpu;
static uint64_t seed = 12345;

static float *randf(int64_t n, float scale) {
    float *x = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = scale * rng_normal(&seed);
    return x;
}

static double *to_d(const float *x, int64_t n) {
    double *d = xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static double *randd(int64_t n) {
    double *d = xmalloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) d[i] = rng_normal(&seed);
    return d;
}

/* max |a - b| / max(max |b|, 1e-3): the error relative to the output's scale. */
static double rel_err(const float *a, const double *b, int64_t n) {
    double e = 0, s = 1e-3;
    for (int64_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        s = fmax(s, fabs(b[i]));
    }
    return e / s;
}

#define EXPECT_CLOSE(a, b, n, tol)                                                         \
    do {                                                                                   \
        double t_e = rel_err((a), (b), (n));                                               \
        EXPECT(t_e <= (tol), "%s vs %s: relative error %.3g > %g", #a, #b, t_e, (double)(tol)); \
    } while (0)

/* ---- fast vs reference ---- */

static void test_embedding(void) {
    int64_t N = 13;
    int C = 19, V = 7;
    int32_t ids[13];
    for (int i = 0; i < N; i++) ids[i] = (i * 5) % V; /* repeated ids: the backward must sum them */
    float *wte = randf((int64_t)V * C, 1), *out = randf(N * C, 1), *dout = randf(N * C, 1), *dw = randf((int64_t)V * C, 1);
    double *wted = to_d(wte, (int64_t)V * C), *outd = randd(N * C), *doutd = to_d(dout, N * C), *dwd = to_d(dw, (int64_t)V * C);
    K->embedding_forward(out, ids, wte, N, C);
    embedding_forward_ref(outd, ids, wted, N, C);
    EXPECT_CLOSE(out, outd, N * C, 0);
    K->embedding_backward(dw, dout, ids, N, C);
    embedding_backward_ref(dwd, doutd, ids, N, C);
    EXPECT_CLOSE(dw, dwd, (int64_t)V * C, 1e-6);
    free(wte), free(out), free(dout), free(dw), free(wted), free(outd), free(doutd), free(dwd);
}

static void test_rmsnorm(void) {
    int64_t N = 11;
    int C = 37;
    float eps = 1e-6f;
    float *x = randf(N * C, 1.5f), *w = randf(C, 1), *out = randf(N * C, 1), *rstd = randf(N, 1);
    double *xd = to_d(x, N * C), *wd = to_d(w, C), *outd = randd(N * C), *rstdd = randd(N);
    K->rmsnorm_forward(out, rstd, x, w, N, C, eps);
    rmsnorm_forward_ref(outd, rstdd, xd, wd, N, C, eps);
    EXPECT_CLOSE(out, outd, N * C, 1e-5);
    EXPECT_CLOSE(rstd, rstdd, N, 1e-5);
    for (int acc = 0; acc <= 1; acc++) {
        float *dout = randf(N * C, 1), *dx = randf(N * C, 1), *dw = randf(C, 1);
        double *doutd = to_d(dout, N * C), *dxd = to_d(dx, N * C), *dwd = to_d(dw, C);
        K->rmsnorm_backward(dx, dw, dout, x, w, rstd, N, C, acc);
        rmsnorm_backward_ref(dxd, dwd, doutd, xd, wd, rstdd, N, C, acc);
        EXPECT_CLOSE(dx, dxd, N * C, 1e-4);
        EXPECT_CLOSE(dw, dwd, C, 1e-4);
        K->rmsnorm_backward(dx, NULL, dout, x, w, rstd, N, C, 0); /* dweight skipped */
        rmsnorm_backward_ref(dxd, NULL, doutd, xd, wd, rstdd, N, C, 0);
        EXPECT_CLOSE(dx, dxd, N * C, 1e-4);
        free(dout), free(dx), free(dw), free(doutd), free(dxd), free(dwd);
    }
    free(x), free(w), free(out), free(rstd), free(xd), free(wd), free(outd), free(rstdd);
}

static void check_matmul(int64_t N, int IC, int OC, float alpha, int acc, int bias) {
    float *x = randf(N * IC, 1), *w = randf((int64_t)OC * IC, 0.5f), *b = bias ? randf(OC, 1) : NULL;
    float *out = randf(N * OC, 1), *dout = randf(N * OC, 1), *dx = randf(N * IC, 1);
    float *dw = randf((int64_t)OC * IC, 1), *db = randf(OC, 1);
    double *xd = to_d(x, N * IC), *wd = to_d(w, (int64_t)OC * IC), *bd = bias ? to_d(b, OC) : NULL;
    double *outd = to_d(out, N * OC), *doutd = to_d(dout, N * OC), *dxd = to_d(dx, N * IC);
    double *dwd = to_d(dw, (int64_t)OC * IC), *dbd = to_d(db, OC);
    K->matmul_forward(out, x, w, b, N, IC, OC, alpha, acc);
    matmul_forward_ref(outd, xd, wd, bd, N, IC, OC, alpha, acc);
    EXPECT_CLOSE(out, outd, N * OC, 1e-4);
    K->matmul_backward(dx, dw, db, dout, x, w, N, IC, OC, alpha, acc);
    matmul_backward_ref(dxd, dwd, dbd, doutd, xd, wd, N, IC, OC, alpha, acc);
    EXPECT_CLOSE(dx, dxd, N * IC, 1e-4);
    EXPECT_CLOSE(dw, dwd, (int64_t)OC * IC, 1e-4);
    EXPECT_CLOSE(db, dbd, OC, 1e-4);
    /* dinp skipped: only the weight gradients */
    K->matmul_backward(NULL, dw, NULL, dout, x, w, N, IC, OC, alpha, acc);
    matmul_backward_ref(NULL, dwd, NULL, doutd, xd, wd, N, IC, OC, alpha, acc);
    EXPECT_CLOSE(dw, dwd, (int64_t)OC * IC, 1e-4);
    free(x), free(w), free(b), free(out), free(dout), free(dx), free(dw), free(db);
    free(xd), free(wd), free(bd), free(outd), free(doutd), free(dxd), free(dwd), free(dbd);
}

static void test_matmul(void) {
    check_matmul(1, 1, 1, 1.0f, 0, 0);
    check_matmul(7, 13, 5, 1.0f, 0, 1);
    check_matmul(33, 17, 29, 0.5f, 1, 1);
    check_matmul(65, 130, 3, 2.0f, 1, 0);
}

static void check_matmul_bf16(int64_t N, int IC, int OC, float alpha, int acc, int bias, int wchunk) {
    float *x = randf(N * IC, 1), *wf = randf((int64_t)OC * IC, 0.5f), *b = bias ? randf(OC, 1) : NULL;
    float *out = randf(N * OC, 1), *dout = randf(N * OC, 1), *dx = randf(N * IC, 1);
    float *scratch = randf((int64_t)wchunk * IC, 1);
    uint16_t *w = xmalloc(sizeof(uint16_t) * (size_t)OC * IC);
    for (int64_t i = 0; i < (int64_t)OC * IC; i++) w[i] = f32_to_bf16(wf[i]);
    double *xd = to_d(x, N * IC), *bd = bias ? to_d(b, OC) : NULL, *outd = to_d(out, N * OC);
    double *doutd = to_d(dout, N * OC), *dxd = to_d(dx, N * IC);
    K->matmul_forward_bf16(out, x, w, b, N, IC, OC, alpha, acc, scratch, wchunk);
    matmul_forward_bf16_ref(outd, xd, w, bd, N, IC, OC, alpha, acc);
    EXPECT_CLOSE(out, outd, N * OC, 1e-4);
    K->matmul_backward_bf16(dx, dout, w, N, IC, OC, alpha, acc, scratch, wchunk);
    matmul_backward_bf16_ref(dxd, doutd, w, N, IC, OC, alpha, acc);
    EXPECT_CLOSE(dx, dxd, N * IC, 1e-4);
    free(x), free(wf), free(b), free(out), free(dout), free(dx), free(scratch), free(w);
    free(xd), free(bd), free(outd), free(doutd), free(dxd);
}

/* bf16 weights: same float32 tolerance against the reference on the bf16-rounded weight. */
static void test_matmul_bf16(void) {
    check_matmul_bf16(7, 13, 5, 1.0f, 0, 1, 2);   /* chunks of 2 rows, ragged last chunk */
    check_matmul_bf16(33, 17, 29, 0.5f, 1, 0, 8);
    check_matmul_bf16(20, 40, 50, 1.0f, 0, 1, 64); /* one chunk */
}

static void test_rope(void) {
    int64_t N = 9;
    int nh = 3, HS = 10;
    int32_t pos[9] = {0, 1, 2, 3, 0, 1, 0, 1, 2}; /* three documents packed in one row */
    float inv_freq[5];
    double inv_freqd[5];
    for (int i = 0; i < HS / 2; i++) inv_freqd[i] = inv_freq[i] = powf(10000.0f, -2.0f * i / HS);
    for (int sign = -1; sign <= 1; sign += 2) {
        float *x = randf(N * nh * HS, 1);
        double *xd = to_d(x, N * nh * HS);
        K->rope_apply(x, pos, inv_freq, N, nh, HS, sign);
        rope_apply_ref(xd, pos, inv_freqd, N, nh, HS, sign);
        EXPECT_CLOSE(x, xd, N * nh * HS, 1e-5);
        free(x), free(xd);
    }
}

/* Positions of B rows of T: row 0 restarts documents at 0 mid-row, the others count up. */
static int32_t *make_pos(int B, int T) {
    int32_t *pos = xmalloc(sizeof(int32_t) * (size_t)B * T);
    for (int b = 0; b < B; b++) {
        int p = 0;
        for (int t = 0; t < T; t++) {
            if (b == 0 && (t == T / 3 || t == T / 3 + 1 || t == (2 * T) / 3)) p = 0;
            pos[(int64_t)b * T + t] = p++;
        }
    }
    return pos;
}

static void check_attention(int B, int T, int H, int KVH, int HS) {
    int64_t N = (int64_t)B * T, nq = N * H * HS, nk = N * KVH * HS;
    int32_t *pos = make_pos(B, T);
    float *q = randf(nq, 1), *k = randf(nk, 1), *v = randf(nk, 1), *out = randf(nq, 1), *lse = randf(N * H, 1);
    float *dout = randf(nq, 1), *dq = randf(nq, 1), *dk = randf(nk, 1), *dv = randf(nk, 1);
    double *qd = to_d(q, nq), *kd = to_d(k, nk), *vd = to_d(v, nk), *outd = randd(nq), *lsed = randd(N * H);
    double *doutd = to_d(dout, nq), *dqd = randd(nq), *dkd = randd(nk), *dvd = randd(nk);
    K->attention_forward(out, lse, q, k, v, pos, B, T, H, KVH, HS);
    attention_forward_ref(outd, lsed, qd, kd, vd, pos, B, T, H, KVH, HS);
    EXPECT_CLOSE(out, outd, nq, 3e-4);
    EXPECT_CLOSE(lse, lsed, N * H, 3e-5);
    K->attention_backward(dq, dk, dv, dout, out, lse, q, k, v, pos, B, T, H, KVH, HS);
    attention_backward_ref(dqd, dkd, dvd, doutd, outd, lsed, qd, kd, vd, pos, B, T, H, KVH, HS);
    EXPECT_CLOSE(dq, dqd, nq, 3e-4);
    EXPECT_CLOSE(dk, dkd, nk, 3e-4);
    EXPECT_CLOSE(dv, dvd, nk, 3e-4);
    free(pos), free(q), free(k), free(v), free(out), free(lse), free(dout), free(dq), free(dk), free(dv);
    free(qd), free(kd), free(vd), free(outd), free(lsed), free(doutd), free(dqd), free(dkd), free(dvd);
}

static void test_attention(void) {
    check_attention(1, 1, 1, 1, 4);
    check_attention(2, 7, 4, 2, 5);    /* GQA, odd head size, per-document positions */
    check_attention(2, 19, 6, 3, 8);
    check_attention(3, 150, 4, 1, 64); /* crosses block boundaries of the blocked kernel */
    check_attention(1, 97, 2, 2, 128);
}

static void test_attention_decode(void) {
    int Tk = 23, H = 6, KVH = 2, HS = 12;
    int64_t nq = (int64_t)Tk * H * HS, nk = (int64_t)Tk * KVH * HS;
    int32_t *pos = xmalloc(sizeof(int32_t) * Tk);
    for (int t = 0; t < Tk; t++) pos[t] = t;
    float *kc = randf(nk, 1), *vc = randf(nk, 1), *out = randf(H * HS, 1);
    double *q = randd(nq), *kd = to_d(kc, nk), *vd = to_d(vc, nk), *outd = randd(nq), *lsed = randd((int64_t)Tk * H);
    float *qlast = xmalloc(sizeof(float) * H * HS);
    for (int i = 0; i < H * HS; i++) q[(Tk - 1) * H * HS + i] = qlast[i] = (float)q[(Tk - 1) * H * HS + i];
    K->attention_decode(out, qlast, kc, vc, Tk, H, KVH, HS);
    attention_forward_ref(outd, lsed, q, kd, vd, pos, 1, Tk, H, KVH, HS);
    EXPECT_CLOSE(out, outd + (Tk - 1) * H * HS, H * HS, 3e-4);
    free(pos), free(kc), free(vc), free(out), free(q), free(kd), free(vd), free(outd), free(lsed), free(qlast);
}

static void test_swiglu(void) {
    int64_t n = 1001;
    float *g = randf(n, 3), *u = randf(n, 1), *h = randf(n, 1), *dh = randf(n, 1), *dg = randf(n, 1), *du = randf(n, 1);
    double *gd = to_d(g, n), *ud = to_d(u, n), *hd = randd(n), *dhd = to_d(dh, n), *dgd = randd(n), *dud = randd(n);
    K->swiglu_forward(h, g, u, n);
    swiglu_forward_ref(hd, gd, ud, n);
    EXPECT_CLOSE(h, hd, n, 1e-6);
    K->swiglu_backward(dg, du, dh, g, u, n);
    swiglu_backward_ref(dgd, dud, dhd, gd, ud, n);
    EXPECT_CLOSE(dg, dgd, n, 1e-6);
    EXPECT_CLOSE(du, dud, n, 1e-6);
    free(g), free(u), free(h), free(dh), free(dg), free(du), free(gd), free(ud), free(hd), free(dhd), free(dgd), free(dud);
}

static void check_lm_head(int64_t N, int C, int V, int chunk, float grad_scale) {
    int32_t *tg = xmalloc(sizeof(int32_t) * (size_t)N);
    for (int64_t n = 0; n < N; n++) tg[n] = (n % 3 == 1 || (n >= 4 && n < 4 + chunk)) ? -100 : (int32_t)((n * 7) % V);
    float *h = randf(N * C, 1), *w = randf((int64_t)V * C, 0.5f), *dh = randf(N * C, 1), *dw = randf((int64_t)V * C, 1);
    float *scratch = randf((int64_t)chunk * (V + 2 * C), 1);
    double *hd = to_d(h, N * C), *wd = to_d(w, (int64_t)V * C), *dhd = randd(N * C), *dwd = to_d(dw, (int64_t)V * C);
    double loss = K->lm_head_ce(dh, dw, h, w, tg, N, C, V, grad_scale, scratch, chunk);
    double lossd = lm_head_ce_ref(dhd, dwd, hd, wd, tg, N, C, V, grad_scale);
    EXPECT_NEAR(loss, lossd, 1e-5);
    EXPECT_CLOSE(dh, dhd, N * C, 3e-4);
    EXPECT_CLOSE(dw, dwd, (int64_t)V * C, 3e-4);
    /* loss only */
    double loss2 = K->lm_head_ce(NULL, NULL, h, w, tg, N, C, V, 1.0f, scratch, chunk);
    EXPECT_NEAR(loss2, lossd / 1.0, 1e-5);
    /* ignored rows get a zero gradient */
    for (int64_t n = 0; n < N; n++)
        if (tg[n] < 0)
            for (int c = 0; c < C; c++) EXPECT(dh[n * C + c] == 0.0f, "row %ld ignored but dh = %g", (long)n, dh[n * C + c]);
    free(tg), free(h), free(w), free(dh), free(dw), free(scratch), free(hd), free(wd), free(dhd), free(dwd);
}

static void test_lm_head_ce(void) {
    check_lm_head(13, 24, 37, 4, 1.0f / 9);
    check_lm_head(40, 17, 301, 16, 0.5f);
    check_lm_head(5, 8, 11, 64, 1.0f); /* one chunk larger than N */
}

/* The vectorized exp of the CPU kernels: within 3e-7 relative of exp on [-87, 88], 0 below. */
static void test_simd_exp(void) {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f) worst = fmax(worst, fabs(exp_poly(x) - exp((double)x)) / exp((double)x));
    EXPECT(worst < 3e-7, "worst relative error %.3g", worst);
    EXPECT(exp_poly(-INFINITY) == 0.0f && exp_poly(-100.0f) == 0.0f && exp_poly(0.0f) == 1.0f, "special values");
}

/* ---- reference backward vs central finite differences (double) ---- */

struct fd {
    double (*loss)(struct fd *);
    /* shapes and tensors of the kernel under test */
    int64_t N;
    int C, IC, OC, B, T, H, KVH, HS, V;
    const int32_t *ids, *pos;
    double *x, *w, *b, *q, *k, *v, *g, *u, *r, *out, *aux;
    double alpha, grad_scale;
};

/* max over entries of |numeric - analytic| / max(1, |analytic|) for dL/dp[i]. */
static double fd_err(struct fd *f, double *p, int64_t n, const double *grad) {
    const double h = 1e-6;
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = f->loss(f);
        p[i] = keep - h;
        double lm = f->loss(f);
        p[i] = keep;
        e = fmax(e, fabs((lp - lm) / (2 * h) - grad[i]) / fmax(1.0, fabs(grad[i])));
    }
    return e;
}

static double dot_r(const double *r, const double *y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += r[i] * y[i];
    return s;
}

#define EXPECT_FD(f, p, n, grad)                                                                 \
    do {                                                                                         \
        double t_e = fd_err((f), (p), (n), (grad));                                              \
        EXPECT(t_e < 1e-6, "d/d%s: finite differences differ by %.3g", #p, t_e);                \
    } while (0)

static double loss_embedding(struct fd *f) {
    embedding_forward_ref(f->out, f->ids, f->w, f->N, f->C);
    return dot_r(f->r, f->out, f->N * f->C);
}

static void test_fd_embedding(void) {
    int32_t ids[5] = {2, 0, 2, 3, 1};
    struct fd f = {.loss = loss_embedding, .N = 5, .C = 3, .ids = ids};
    int V = 4;
    f.w = randd(V * 3), f.r = randd(15), f.out = randd(15);
    double *dw = xcalloc(V * 3, sizeof(double));
    embedding_backward_ref(dw, f.r, ids, 5, 3);
    EXPECT_FD(&f, f.w, V * 3, dw);
    free(f.w), free(f.r), free(f.out), free(dw);
}

static double loss_rmsnorm(struct fd *f) {
    rmsnorm_forward_ref(f->out, f->aux, f->x, f->w, f->N, f->C, 1e-5);
    return dot_r(f->r, f->out, f->N * f->C);
}

static void test_fd_rmsnorm(void) {
    struct fd f = {.loss = loss_rmsnorm, .N = 3, .C = 5};
    f.x = randd(15), f.w = randd(5), f.r = randd(15), f.out = randd(15), f.aux = randd(3);
    double *dx = randd(15), *dw = xcalloc(5, sizeof(double));
    f.loss(&f);
    rmsnorm_backward_ref(dx, dw, f.r, f.x, f.w, f.aux, 3, 5, 0);
    EXPECT_FD(&f, f.x, 15, dx);
    EXPECT_FD(&f, f.w, 5, dw);
    free(f.x), free(f.w), free(f.r), free(f.out), free(f.aux), free(dx), free(dw);
}

static double loss_matmul(struct fd *f) {
    matmul_forward_ref(f->out, f->x, f->w, f->b, f->N, f->IC, f->OC, f->alpha, 0);
    return dot_r(f->r, f->out, f->N * f->OC);
}

static void test_fd_matmul(void) {
    struct fd f = {.loss = loss_matmul, .N = 3, .IC = 4, .OC = 5, .alpha = 0.7};
    f.x = randd(12), f.w = randd(20), f.b = randd(5), f.r = randd(15), f.out = randd(15);
    double *dx = randd(12), *dw = xcalloc(20, sizeof(double)), *db = xcalloc(5, sizeof(double));
    matmul_backward_ref(dx, dw, db, f.r, f.x, f.w, 3, 4, 5, 0.7, 0);
    EXPECT_FD(&f, f.x, 12, dx);
    EXPECT_FD(&f, f.w, 20, dw);
    /* the bias is added without alpha, so its gradient is the alpha-free sum: rescale */
    for (int o = 0; o < 5; o++) db[o] /= 0.7;
    EXPECT_FD(&f, f.b, 5, db);
    free(f.x), free(f.w), free(f.b), free(f.r), free(f.out), free(dx), free(dw), free(db);
}

static double loss_rope(struct fd *f) {
    memcpy(f->out, f->x, sizeof(double) * (size_t)(f->N * f->H * f->HS));
    rope_apply_ref(f->out, f->pos, f->w, f->N, f->H, f->HS, 1);
    return dot_r(f->r, f->out, f->N * f->H * f->HS);
}

static void test_fd_rope(void) {
    int32_t pos[4] = {0, 3, 0, 5};
    double inv_freq[3] = {1.0, 0.3, 0.01};
    struct fd f = {.loss = loss_rope, .N = 4, .H = 2, .HS = 6, .pos = pos, .w = inv_freq};
    int64_t n = 4 * 2 * 6;
    f.x = randd(n), f.r = randd(n), f.out = randd(n);
    double *dx = xmalloc(sizeof(double) * n);
    memcpy(dx, f.r, sizeof(double) * n);
    rope_apply_ref(dx, pos, inv_freq, 4, 2, 6, -1); /* the backward: the inverse rotation */
    EXPECT_FD(&f, f.x, n, dx);
    free(f.x), free(f.r), free(f.out), free(dx);
}

static double loss_attention(struct fd *f) {
    attention_forward_ref(f->out, f->aux, f->q, f->k, f->v, f->pos, f->B, f->T, f->H, f->KVH, f->HS);
    return dot_r(f->r, f->out, (int64_t)f->B * f->T * f->H * f->HS);
}

static void test_fd_attention(void) {
    int B = 2, T = 6, H = 4, KVH = 2, HS = 3;
    int32_t pos[12] = {0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 4, 5}; /* documents restart mid-row 0 */
    int64_t nq = (int64_t)B * T * H * HS, nk = (int64_t)B * T * KVH * HS;
    struct fd f = {.loss = loss_attention, .B = B, .T = T, .H = H, .KVH = KVH, .HS = HS, .pos = pos};
    f.q = randd(nq), f.k = randd(nk), f.v = randd(nk), f.r = randd(nq), f.out = randd(nq), f.aux = randd(B * T * H);
    double *dq = randd(nq), *dk = randd(nk), *dv = randd(nk);
    f.loss(&f);
    attention_backward_ref(dq, dk, dv, f.r, f.out, f.aux, f.q, f.k, f.v, pos, B, T, H, KVH, HS);
    EXPECT_FD(&f, f.q, nq, dq);
    EXPECT_FD(&f, f.k, nk, dk);
    EXPECT_FD(&f, f.v, nk, dv);
    free(f.q), free(f.k), free(f.v), free(f.r), free(f.out), free(f.aux), free(dq), free(dk), free(dv);
}

static double loss_swiglu(struct fd *f) {
    swiglu_forward_ref(f->out, f->g, f->u, f->N);
    return dot_r(f->r, f->out, f->N);
}

static void test_fd_swiglu(void) {
    struct fd f = {.loss = loss_swiglu, .N = 9};
    f.g = randd(9), f.u = randd(9), f.r = randd(9), f.out = randd(9);
    double *dg = randd(9), *du = randd(9);
    swiglu_backward_ref(dg, du, f.r, f.g, f.u, 9);
    EXPECT_FD(&f, f.g, 9, dg);
    EXPECT_FD(&f, f.u, 9, du);
    free(f.g), free(f.u), free(f.r), free(f.out), free(dg), free(du);
}

static double loss_lm_head(struct fd *f) {
    return f->grad_scale * lm_head_ce_ref(NULL, NULL, f->x, f->w, f->ids, f->N, f->C, f->V, 1.0);
}

static void test_fd_lm_head_ce(void) {
    int32_t tg[4] = {3, -100, 0, 6};
    struct fd f = {.loss = loss_lm_head, .N = 4, .C = 5, .V = 7, .ids = tg, .grad_scale = 0.25};
    f.x = randd(20), f.w = randd(35);
    double *dh = randd(20), *dw = xcalloc(35, sizeof(double));
    lm_head_ce_ref(dh, dw, f.x, f.w, tg, 4, 5, 7, 0.25);
    EXPECT_FD(&f, f.x, 20, dh);
    EXPECT_FD(&f, f.w, 35, dw);
    for (int c = 0; c < 5; c++) EXPECT(dh[5 + c] == 0, "ignored row has zero gradient");
    free(f.x), free(f.w), free(dh), free(dw);
}

int main(void) {
    RUN(test_embedding);
    RUN(test_rmsnorm);
    RUN(test_matmul);
    RUN(test_matmul_bf16);
    RUN(test_rope);
    RUN(test_attention);
    RUN(test_attention_decode);
    RUN(test_swiglu);
    RUN(test_lm_head_ce);
    RUN(test_simd_exp);
    RUN(test_fd_embedding);
    RUN(test_fd_rmsnorm);
    RUN(test_fd_matmul);
    RUN(test_fd_rope);
    RUN(test_fd_attention);
    RUN(test_fd_swiglu);
    RUN(test_fd_lm_head_ce);
    return TEST_SUMMARY("kernels");
}
