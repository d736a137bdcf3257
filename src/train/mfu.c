/* mfu: see mfu.h. */
#include "train/mfu.h"

#include <omp.h>
#include <sys/resource.h>

#include "core/util.h"

double mfu_flops_per_token(const struct model_config *c, int lora, int64_t n_lora, int T) {
    double C = c->hidden_size, F = c->intermediate_size, H = c->n_heads, KVH = c->n_kv_heads, HS = c->head_dim;
    double L = c->n_layers, V = c->vocab_size;
    double N = L * (C * H * HS + 2 * C * KVH * HS + H * HS * C + 3 * C * F) + V * C;
    double att = 6.0 * L * H * HS * ((double)T + 1);
    return lora ? 4 * N + 6 * (double)n_lora + att : 6 * N + att;
}

#ifdef __AVX512F__
#define VW 16
#else
#define VW 8
#endif
typedef float vec __attribute__((vector_size(VW * 4)));
#define CHAINS 12

/* fp-contract=fast here only: a * b + c must compile to one FMA instruction, as in bench/fma_peak.c
 * (GCC's function attribute; clang, which builds the fuzz harnesses, takes a pragma instead) */
#if defined(__clang__)
#define FP_CONTRACT_FAST
#else
#define FP_CONTRACT_FAST __attribute__((optimize("fp-contract=fast")))
#endif
FP_CONTRACT_FAST static double fma_peak(void) {
#if defined(__clang__)
#pragma clang fp contract(fast)
#endif
    const long iters = 2000000L / VW;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = time_now(), sink = 0;
        int threads = 1;
#pragma omp parallel reduction(+ : sink)
        {
#pragma omp single
            threads = omp_get_num_threads();
            vec acc[CHAINS], a, b;
            for (int i = 0; i < VW; i++) a[i] = 1.0f + 1e-7f * (float)i, b[i] = 1e-7f;
            for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
            for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
                for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
            for (int c = 0; c < CHAINS; c++) sink += acc[c][0];
        }
        double dt = time_now() - t0, gf = 2.0 * VW * CHAINS * (double)iters * threads / dt / 1e9;
        if (gf > best && sink != 42) best = gf;
    }
    return best;
}

static double gemm_peak(const struct kernels *k) {
    const int n = 2048;
    float *a = k->mem_alloc(sizeof(float) * n * n), *w = k->mem_alloc(sizeof(float) * n * n);
    float *o = k->mem_alloc(sizeof(float) * n * n);
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        k->sync();
        double t0 = time_now();
        k->matmul_forward(o, a, w, NULL, n, n, n, 1.0f, 0);
        k->sync();
        double gf = 2.0 * n * n * n / (time_now() - t0) / 1e9;
        if (rep > 0 && gf > best) best = gf; /* the first one warms up */
    }
    k->mem_free(a), k->mem_free(w), k->mem_free(o);
    return best;
}

double mfu_measure_peak_gflops(const struct kernels *k) { return !k || k == &kernels_cpu ? fma_peak() : gemm_peak(k); }

double mfu_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}
