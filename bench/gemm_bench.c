/* gemm_bench: oneDNN sgemm vs OpenBLAS sgemm on the linear layers' real shapes (forward
 * x W^T, backward dy W and dy^T x), GFLOP/s of each; the winner backs cpu_sgemm.
 * GEMM_CPU_TIME=1 times CPU seconds instead (GF per CPU-second: steadier on a busy machine).
 * Build: see bench/build.sh (needs -lopenblas); OPENBLAS_NUM_THREADS / OMP_NUM_THREADS = 2. */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("GEMM_CPU_TIME") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void run(const char *name, int ta, int tb, int M, int N, int K) {
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *C = calloc((size_t)M * N, 4);
    for (long i = 0; i < (long)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)K * N; i++) B[i] = (float)(i % 5) * 0.1f;
    int lda = ta ? M : K, ldb = tb ? K : N;
    double best[2] = {1e9, 1e9};
    for (int rep = 0; rep < 4; rep++) {
        double t0 = now();
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                    lda, B, ldb, 0.0f, C, N);
        double t2 = now();
        if (t1 - t0 < best[0]) best[0] = t1 - t0;
        if (t2 - t1 < best[1]) best[1] = t2 - t1;
    }
    double f = 2.0 * M * N * K / 1e9;
    printf("%-22s M=%5d N=%6d K=%5d  onednn %6.1f GF/s  openblas %6.1f GF/s\n", name, M, N, K, f / best[0], f / best[1]);
    free(A), free(B), free(C);
}

int main(void) {
    int T = 1024, C = 896, F = 4864, qd = 896, kvd = 128;
    run("qkv fwd x W^T", 0, 1, T, qd, C);
    run("k fwd", 0, 1, T, kvd, C);
    run("gate fwd", 0, 1, T, F, C);
    run("down fwd", 0, 1, T, C, F);
    run("gate dx = dy W", 0, 0, T, C, F);
    run("down dx", 0, 0, T, F, C);
    run("gate dW = dy^T x", 1, 0, F, C, T);
    run("down dW", 1, 0, C, F, T);
    run("lm head chunk", 0, 1, 64, 151936, C);
    run("lm head dh", 0, 0, 64, C, 151936);
    run("lm head dW", 1, 0, 151936, C, 64);
    run("lora xa", 0, 1, T, 16, C);
    run("lora dA", 1, 0, 16, C, T);
    run("lora xa^T = A x^T", 0, 1, 16, T, C);
    run("lora y += xa B^T", 0, 1, T, C, 16);
    run("lora dxa = dy B", 0, 0, T, 16, C);
    run("lora dB = dy^T xa", 1, 0, C, 16, T);
    run("lora dx += dxa A", 0, 0, T, C, 16);
    return 0;
}
