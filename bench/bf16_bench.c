/* bf16_bench: float32 vs bf16-weight linear layers (kernels_cpu) on the 0.5B MLP shapes,
 * GFLOP per CPU-second (steady on a shared machine) for forward and dinp backward, and the
 * bf16 path's row-chunk size (argv[1], default 256). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/dtype.h"
#include "kernels/kernels.h"

static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int wchunk = argc > 1 ? atoi(argv[1]) : 256, N = 1024;
    int shapes[2][2] = {{896, 4864}, {4864, 896}}; /* (IC, OC): gate/up, down */
    for (int s = 0; s < 2; s++) {
        int IC = shapes[s][0], OC = shapes[s][1];
        float *x = malloc(sizeof(float) * N * IC), *w = malloc(sizeof(float) * OC * IC), *y = malloc(sizeof(float) * N * OC);
        float *dx = malloc(sizeof(float) * N * IC), *scratch = malloc(sizeof(float) * wchunk * (IC > OC ? IC : OC));
        uint16_t *w16 = malloc(2 * (size_t)OC * IC);
        for (long i = 0; i < (long)N * IC; i++) x[i] = (float)(i % 13) * 0.01f;
        for (long i = 0; i < (long)OC * IC; i++) w[i] = (float)(i % 7) * 0.01f, w16[i] = f32_to_bf16(w[i]);
        double f = 2.0 * N * IC * OC, t[4];
        for (int rep = 0; rep < 2; rep++) {
            double c0 = cpu();
            kernels_cpu.matmul_forward(y, x, w, NULL, N, IC, OC, 1.0f, 0);
            double c1 = cpu();
            kernels_cpu.matmul_forward_bf16(y, x, w16, NULL, N, IC, OC, 1.0f, 0, scratch, wchunk);
            double c2 = cpu();
            kernels_cpu.matmul_backward(dx, NULL, NULL, y, x, w, N, IC, OC, 1.0f, 0);
            double c3 = cpu();
            kernels_cpu.matmul_backward_bf16(dx, y, w16, N, IC, OC, 1.0f, 0, scratch, wchunk);
            double c4 = cpu();
            t[0] = c1 - c0, t[1] = c2 - c1, t[2] = c3 - c2, t[3] = c4 - c3;
        }
        printf("IC=%d OC=%d chunk=%d: fwd f32 %.1f bf16 %.1f | dinp f32 %.1f bf16 %.1f GF per CPU-s\n", IC, OC, wchunk,
               f / t[0] / 1e9, f / t[1] / 1e9, f / t[2] / 1e9, f / t[3] / 1e9);
        free(x), free(w), free(y), free(dx), free(scratch), free(w16);
    }
    return 0;
}
