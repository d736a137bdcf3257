/* fma_peak: the machine's FP32 peak, measured: every thread runs independent chains of
 * vector FMAs (the widest vectors -march=native allows: AVX-512 or AVX2) and the total
 * GFLOP/s is printed as "peak_gflops=X". Threads: OMP_NUM_THREADS. */
#include <omp.h>
#include <stdio.h>
#include <time.h>

#ifdef __AVX512F__
#define VW 16
#else
#define VW 8
#endif
typedef float vec __attribute__((vector_size(VW * 4)));
#define CHAINS 12

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(void) {
    const long iters = 100000000L / VW;
    double best = 0;
    for (int rep = 0; rep < 8; rep++) {
        double t0 = now(), sink = 0;
#pragma omp parallel reduction(+ : sink)
        {
            vec acc[CHAINS], a, b;
            for (int i = 0; i < VW; i++) a[i] = 1.0f + 1e-7f * i, b[i] = 1e-7f;
            for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
            for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
                for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
            for (int c = 0; c < CHAINS; c++) sink += acc[c][0];
        }
        double dt = now() - t0, gf = 2.0 * VW * CHAINS * iters * omp_get_max_threads() / dt / 1e9;
        if (gf > best) best = gf;
        if (sink == 42) printf("#");
    }
    printf("peak_gflops=%.1f threads=%d vector_floats=%d\n", best, omp_get_max_threads(), VW);
    return 0;
}
