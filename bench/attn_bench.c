/* attn_bench: the CPU attention kernels alone on the Qwen2.5-0.5B shape (T 1024, 14/2 heads,
 * head 64): GFLOP/s of forward and backward (causal FLOPs: 4 T^2/2 HS H forward, 2.5x that
 * backward, counting the recomputed scores), in wall and in CPU seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels/kernels.h"

static double clk(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int B = 1, T = argc > 1 ? atoi(argv[1]) : 1024, H = 14, KVH = 2, HS = 64;
    int64_t N = (int64_t)B * T, nq = N * H * HS, nk = N * KVH * HS;
    float *q = malloc(4 * nq), *k = malloc(4 * nk), *v = malloc(4 * nk), *o = malloc(4 * nq), *lse = malloc(4 * N * H);
    float *dq = malloc(4 * nq), *dk = malloc(4 * nk), *dv = malloc(4 * nk), *dout = malloc(4 * nq);
    int32_t *pos = malloc(4 * N);
    for (int64_t i = 0; i < nq; i++) q[i] = (float)((i * 7919) % 1000) / 1000 - 0.5f, dout[i] = q[i] * 0.3f;
    for (int64_t i = 0; i < nk; i++) k[i] = (float)((i * 104729) % 1000) / 1000 - 0.5f, v[i] = k[i] * 0.7f;
    for (int64_t i = 0; i < N; i++) pos[i] = (int32_t)(i % T);
    double f = 4.0 * T * (T + 1) / 2 * HS * H * B;
    for (int rep = 0; rep < 3; rep++) {
        double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_PROCESS_CPUTIME_ID);
        kernels_cpu.attention_forward(o, lse, q, k, v, pos, B, T, H, KVH, HS);
        double w1 = clk(CLOCK_MONOTONIC), c1 = clk(CLOCK_PROCESS_CPUTIME_ID);
        kernels_cpu.attention_backward(dq, dk, dv, dout, o, lse, q, k, v, pos, B, T, H, KVH, HS);
        double w2 = clk(CLOCK_MONOTONIC), c2 = clk(CLOCK_PROCESS_CPUTIME_ID);
        printf("T=%d fwd %.3f s (%.1f GF/s wall, %.1f GF per CPU-s)  bwd %.3f s (%.1f GF/s wall, %.1f GF per CPU-s)\n", T,
               w1 - w0, f / (w1 - w0) / 1e9, f / (c1 - c0) / 1e9, w2 - w1, 2.5 * f / (w2 - w1) / 1e9,
               2.5 * f / (c2 - c1) / 1e9);
    }
    return 0;
}
