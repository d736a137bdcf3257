/* attention: causal, per-document, GQA attention on the CPU in 64x64 tiles (flash-attention
 * style): O(T) memory (only lse is saved), scores and probabilities live in per-thread tiles,
 * tile products through one small register-blocked (6x16) GEMM, softmax with a vectorized exp.
 * Forward: parallel over (b, h, query block), online softmax over key blocks. Backward:
 * parallel over (b, kv head), so each thread owns its dk/dv rows and its heads' dq rows.
 * Contract in kernels.h; reference attention_forward_ref / attention_backward_ref. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/simd.h"

#define BLK 64

/* R rows x 16 columns of C (= or +=) A B: 2R accumulators in registers, B's two vectors
 * loaded once per k and broadcast A. R is a constant at every call site. */
static inline __attribute__((always_inline)) void tile_micro(float *C, int ldc, const float *A, int lda,
                                                             const float *B, int ldb, int K, int acc, int R) {
    v8f c0[6], c1[6];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) c0[i] = c1[i] = v8_set1(0.0f);
    for (int k = 0; k < K; k++) {
        v8f b0 = v8_load(B + (int64_t)k * ldb), b1 = v8_load(B + (int64_t)k * ldb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
            v8f x = v8_set1(A[(int64_t)i * lda + k]);
            c0[i] = v8_fma(x, b0, c0[i]);
            c1[i] = v8_fma(x, b1, c1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
        float *cp = C + (int64_t)i * ldc;
        v8_store(cp, acc ? v8_load(cp) + c0[i] : c0[i]);
        v8_store(cp + 8, acc ? v8_load(cp + 8) + c1[i] : c1[i]);
    }
}

/* C (M,N) (= or +=) A (M,K) B (K,N), row-major with leading dimensions: 6x16 register
 * blocks (a 1..5-row block for the last rows), scalar for the last N % 16 columns. */
static void tile_gemm(float *C, int ldc, const float *A, int lda, const float *B, int ldb, int M, int N, int K,
                      int acc) {
    int N16 = N & ~15, M6 = M - M % 6;
    for (int c = 0; c < N16; c += 16) {
        for (int r = 0; r < M6; r += 6)
            tile_micro(C + (int64_t)r * ldc + c, ldc, A + (int64_t)r * lda, lda, B + c, ldb, K, acc, 6);
        float *Cr = C + (int64_t)M6 * ldc + c;
        const float *Ar = A + (int64_t)M6 * lda;
        switch (M - M6) {
        case 5: tile_micro(Cr, ldc, Ar, lda, B + c, ldb, K, acc, 5); break;
        case 4: tile_micro(Cr, ldc, Ar, lda, B + c, ldb, K, acc, 4); break;
        case 3: tile_micro(Cr, ldc, Ar, lda, B + c, ldb, K, acc, 3); break;
        case 2: tile_micro(Cr, ldc, Ar, lda, B + c, ldb, K, acc, 2); break;
        case 1: tile_micro(Cr, ldc, Ar, lda, B + c, ldb, K, acc, 1); break;
        default: break;
        }
    }
    for (int r = 0; r < M; r++)
        for (int c = N16; c < N; c++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += A[(int64_t)r * lda + k] * B[(int64_t)k * ldb + c];
            float *cp = C + (int64_t)r * ldc + c;
            *cp = acc ? *cp + s : s;
        }
}

/* dst (cols, BLK) = src (rows, ld)^T for `rows` <= BLK rows of `cols` floats, zero padded. */
static void tile_transpose(float *dst, const float *src, int64_t ld, int rows, int cols) {
    for (int e = 0; e < cols; e++) {
        for (int j = 0; j < rows; j++) dst[e * BLK + j] = src[j * ld + e];
        for (int j = rows; j < BLK; j++) dst[e * BLK + j] = 0;
    }
}

/* Keys of query i: lo[i] = i - pos[i] .. i. Tile row r (query i0 + r), column c (key j0 + c). */
static inline v8i tile_mask(int i, int lo, int j) {
    v8i jj = (v8i){0, 1, 2, 3, 4, 5, 6, 7} + j;
    return (jj >= lo) & (jj <= i);
}

void attention_forward_cpu(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                           int B, int T, int H, int KVH, int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH, nqb = (T + BLK - 1) / BLK;
    const int64_t qs = (int64_t)H * HS, ks = (int64_t)KVH * HS;
    CHECK(H % KVH == 0, "attention: %d heads not a multiple of %d kv heads", H, KVH);
    /* Largest query blocks (most keys) first for load balance. */
#pragma omp parallel for collapse(3) schedule(dynamic, 1)
    for (int qbr = 0; qbr < nqb; qbr++)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                int qb = nqb - 1 - qbr, i0 = qb * BLK, ni = T - i0 < BLK ? T - i0 : BLK, kvh = h / rep;
                const int32_t *p = pos + (int64_t)b * T;
                float S[BLK * BLK], Kt[HS * BLK], O[BLK * HS], m[BLK], l[BLK];
                int lo[BLK], jmin = i0;
                for (int r = 0; r < ni; r++) {
                    lo[r] = i0 + r - p[i0 + r];
                    if (lo[r] < jmin) jmin = lo[r];
                    m[r] = -INFINITY, l[r] = 0;
                }
                memset(O, 0, sizeof(float) * ni * HS);
                const float *qh = q + ((int64_t)b * T + i0) * qs + (int64_t)h * HS;
                for (int j0 = jmin / BLK * BLK; j0 < i0 + ni; j0 += BLK) {
                    int nj = T - j0 < BLK ? T - j0 : BLK;
                    const float *kh = k + ((int64_t)b * T + j0) * ks + (int64_t)kvh * HS;
                    const float *vh = v + ((int64_t)b * T + j0) * ks + (int64_t)kvh * HS;
                    tile_transpose(Kt, kh, ks, nj, HS);
                    tile_gemm(S, BLK, qh, (int)qs, Kt, BLK, ni, BLK, HS, 0);
                    for (int r = 0; r < ni; r++) {
                        float *s = S + r * BLK;
                        int i = i0 + r;
                        v8f mx = v8_set1(-INFINITY);
                        for (int c = 0; c < BLK; c += 8) {
                            v8f x = v8_load(s + c) * scale;
                            x = v8_select(tile_mask(i, lo[r], j0 + c), x, v8_set1(-INFINITY));
                            v8_store(s + c, x);
                            mx = v8_max(mx, x);
                        }
                        float mnew = fmaxf(m[r], v8_hmax(mx));
                        if (mnew == -INFINITY) { /* no key of this block is visible */
                            memset(s, 0, sizeof(float) * BLK);
                            continue;
                        }
                        float alpha = m[r] == -INFINITY ? 0.0f : expf(m[r] - mnew);
                        v8f sum = v8_set1(0.0f), mv = v8_set1(mnew);
                        for (int c = 0; c < BLK; c += 8) {
                            v8f e = v8_exp(v8_load(s + c) - mv);
                            v8_store(s + c, e);
                            sum += e;
                        }
                        l[r] = l[r] * alpha + v8_hsum(sum);
                        m[r] = mnew;
                        if (alpha != 1.0f)
                            for (int e = 0; e < HS; e++) O[r * HS + e] *= alpha;
                    }
                    tile_gemm(O, HS, S, BLK, vh, (int)ks, ni, HS, nj, 1);
                }
                for (int r = 0; r < ni; r++) {
                    float *o = out + ((int64_t)b * T + i0 + r) * qs + (int64_t)h * HS, inv = 1.0f / l[r];
                    for (int e = 0; e < HS; e++) o[e] = O[r * HS + e] * inv;
                    lse[((int64_t)b * T + i0 + r) * H + h] = m[r] + logf(l[r]);
                }
            }
}

void attention_backward_cpu(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                            const float *q, const float *k, const float *v, const int32_t *pos, int B, int T, int H,
                            int KVH, int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH, nb = (T + BLK - 1) / BLK;
    const int64_t qs = (int64_t)H * HS, ks = (int64_t)KVH * HS;
    CHECK(H % KVH == 0, "attention: %d heads not a multiple of %d kv heads", H, KVH);
    /* Each (b, kv head) owns its dk/dv rows and the dq rows of its query heads. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < KVH; kvh++) {
            const int32_t *p = pos + (int64_t)b * T;
            /* stack: fixed tiles plus 2 * HS * BLK floats (HS <= MODEL_MAX_HEAD_DIM); nothing sized by T */
            float S[BLK * BLK], dP[BLK * BLK], Pt[BLK * BLK], Kt[HS * BLK], Vt[HS * BLK];
#define lo(i) ((i) - p[i]) /* first key row of query row i's document */
            for (int j = 0; j < T; j++) {
                memset(dk + ((int64_t)b * T + j) * ks + (int64_t)kvh * HS, 0, sizeof(float) * HS);
                memset(dv + ((int64_t)b * T + j) * ks + (int64_t)kvh * HS, 0, sizeof(float) * HS);
            }
            for (int h = kvh * rep; h < (kvh + 1) * rep; h++) {
                for (int i = 0; i < T; i++) memset(dq + ((int64_t)b * T + i) * qs + (int64_t)h * HS, 0, sizeof(float) * HS);
                for (int kb = 0; kb < nb; kb++) {
                    int j0 = kb * BLK, nj = T - j0 < BLK ? T - j0 : BLK;
                    int64_t krow = ((int64_t)b * T + j0) * ks + (int64_t)kvh * HS;
                    tile_transpose(Kt, k + krow, ks, nj, HS);
                    tile_transpose(Vt, v + krow, ks, nj, HS);
                    for (int i0 = j0; i0 < T; i0 += BLK) {
                        int ni = T - i0 < BLK ? T - i0 : BLK;
                        if (lo(i0) > j0 + nj - 1) { /* documents start in order: no later row sees these keys */
                            int any = 0;
                            for (int r = 0; r < ni && !any; r++) any = lo(i0 + r) <= j0 + nj - 1;
                            if (!any) continue;
                        }
                        int64_t qrow = ((int64_t)b * T + i0) * qs + (int64_t)h * HS;
                        const float *lr = lse + ((int64_t)b * T + i0) * H + h;
                        tile_gemm(S, BLK, q + qrow, (int)qs, Kt, BLK, ni, BLK, HS, 0);
                        tile_gemm(dP, BLK, dout + qrow, (int)qs, Vt, BLK, ni, BLK, HS, 0);
                        for (int r = 0; r < ni; r++) {
                            int i = i0 + r;
                            const float *dor = dout + qrow + (int64_t)r * qs, *our = out + qrow + (int64_t)r * qs;
                            float D = 0; /* rowsum(dO * O), recomputed per key block */
                            for (int e = 0; e < HS; e++) D += dor[e] * our[e];
                            float *s = S + r * BLK, *dp = dP + r * BLK;
                            v8f L = v8_set1(lr[(int64_t)r * H]), Dv = v8_set1(D), zero = v8_set1(0.0f);
                            for (int c = 0; c < BLK; c += 8) {
                                v8i ok = tile_mask(i, lo(i), j0 + c);
                                v8f pr = v8_select(ok, v8_exp(v8_load(s + c) * scale - L), zero);
                                v8_store(s + c, pr);                                  /* P */
                                v8_store(dp + c, pr * (v8_load(dp + c) - Dv) * scale); /* dS, scaled */
                            }
                        }
                        /* dV += P^T dO; dK += dS^T Q; dQ += dS K */
                        for (int r = 0; r < ni; r++)
                            for (int c = 0; c < nj; c++) Pt[c * BLK + r] = S[r * BLK + c];
                        tile_gemm(dv + krow, (int)ks, Pt, BLK, dout + qrow, (int)qs, nj, HS, ni, 1);
                        for (int r = 0; r < ni; r++)
                            for (int c = 0; c < nj; c++) Pt[c * BLK + r] = dP[r * BLK + c];
                        tile_gemm(dk + krow, (int)ks, Pt, BLK, q + qrow, (int)qs, nj, HS, ni, 1);
                        tile_gemm(dq + qrow, (int)qs, dP, BLK, k + krow, (int)ks, ni, HS, nj, 1);
                    }
                }
            }
        }
}

#undef lo

void attention_decode_cpu(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                          int HS) {
    const float scale = 1.0f / sqrtf((float)HS);
    const int rep = H / KVH;
#pragma omp parallel for
    for (int h = 0; h < H; h++) {
        int kvh = h / rep;
        /* scores: on the stack up to 4096 keys; a longer context (generation only, never a
         * training step) takes them from the heap rather than a stack array sized by Tk */
        float sbuf[4096], *s = Tk <= 4096 ? sbuf : xmalloc(sizeof(float) * (size_t)Tk), m = -INFINITY, z = 0;
        for (int j = 0; j < Tk; j++) {
            const float *qv = q + (int64_t)h * HS, *kv = kc + ((int64_t)j * KVH + kvh) * HS;
            float d = 0;
            for (int e = 0; e < HS; e++) d += qv[e] * kv[e];
            s[j] = d * scale;
            if (s[j] > m) m = s[j];
        }
        for (int j = 0; j < Tk; j++) z += s[j] = expf(s[j] - m);
        float *o = out + (int64_t)h * HS;
        memset(o, 0, sizeof(float) * HS);
        for (int j = 0; j < Tk; j++) {
            const float *vv = vc + ((int64_t)j * KVH + kvh) * HS;
            for (int e = 0; e < HS; e++) o[e] += s[j] / z * vv[e];
        }
        if (s != sbuf) free(s);
    }
}
