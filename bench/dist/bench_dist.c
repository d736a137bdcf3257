/* bench_dist: data-parallel step time and communication time for one shape, run as
 * `bench_dist [opts]` (1 rank) or `mpirun -np N bench_dist [opts]`. Each rank trains its own
 * rows (weak scaling: rows per rank fixed), so the scaling efficiency of N ranks is
 * t_step(1 rank) / t_step(N ranks). Prints one line per configuration from rank 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "dist/dist.h"
#include "model/model.h"
#include "train/dp.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/tp_dist.h"
#include "train/zero.h"

/* kB of a /proc/self/status field (VmRSS: now, VmHWM: peak). */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') v = atol(line + n + 1);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    struct dist d;
    if (dist_init(&d, &argc, &argv)) {
        fprintf(stderr, "bench_dist: %s\n", err_msg());
        return 1;
    }
    struct model_config c = {.arch = ARCH_QWEN2,
                             .model_type = "qwen2",
                             .vocab_size = 32000,
                             .hidden_size = 512,
                             .intermediate_size = 1376,
                             .n_layers = 8,
                             .n_heads = 8,
                             .n_kv_heads = 2,
                             .max_position_embeddings = 4096,
                             .rms_norm_eps = 1e-6f,
                             .rope_theta = 1e6,
                             .tie_word_embeddings = 1,
                             .qkv_bias = 1};
    int rows = 1, T = 256, steps = 4, zero = 0, overlap = 1, tp = 1, vocab = 0;
    int64_t bucket = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--rows"))
            rows = atoi(v); /* per rank */
        else if (!strcmp(a, "--seq"))
            T = atoi(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--zero"))
            zero = atoi(v);
        else if (!strcmp(a, "--overlap"))
            overlap = atoi(v);
        else if (!strcmp(a, "--bucket"))
            bucket = atoll(v);
        else if (!strcmp(a, "--layers"))
            c.n_layers = atoi(v);
        else if (!strcmp(a, "--tp")) /* model_parallel: ranks = world / tp data-parallel x tp */
            tp = atoi(v);
        else if (!strcmp(a, "--vocab")) /* after --preset */
            vocab = atoi(v);
        else if (!strcmp(a, "--preset") && !strcmp(v, "qwen2.5-0.5b"))
            c.vocab_size = 151936, c.hidden_size = 896, c.intermediate_size = 4864, c.n_layers = 24, c.n_heads = 14,
            c.n_kv_heads = 2;
        else if (!strcmp(a, "--preset") && !strcmp(v, "qwen2.5-7b"))
            c.vocab_size = 152064, c.hidden_size = 3584, c.intermediate_size = 18944, c.n_layers = 28, c.n_heads = 28,
            c.n_kv_heads = 4, c.tie_word_embeddings = 0;
        else
            dist_abort(&d, "bench_dist: unknown option %s", a);
    }
    c.head_dim = c.hidden_size / c.n_heads;
    if (vocab > 0) c.vocab_size = vocab;
    struct dist_grid g;
    if (dist_grid_init(&g, &d, 0, tp, 1)) dist_abort(&d, "%s", err_msg());
    struct tp_comm tc = tp_comm_of(&g.tp);
    struct model m;
    if (zero >= 3) { /* each rank makes only its shard (of its tensor-parallel slices) */
        if (model_init_shape(&m, &c, 1, tp > 1 ? &tc : NULL)) dist_abort(&d, "%s", err_msg());
    } else if (model_init_random_tp(&m, &c, 1, 1, tp > 1 ? &tc : NULL)) {
        dist_abort(&d, "%s", err_msg());
    }
    long rss_loaded = status_kb("VmRSS");
    struct dp dp;
    struct dp_config cfg = {.zero = zero, .overlap = overlap, .bucket_elems = bucket};
    if (dp_init(&dp, &g.dp, &m, &cfg)) dist_abort(&d, "%s", err_msg());
    struct adamw opt;
    dp_adamw_init(&dp, &opt, 0.9f, 0.999f, 1e-8f, 0.0f);
    struct step_comm comm = dp_step_comm(&dp);
    int64_t N = (int64_t)rows * T;
    int32_t *ids = xmalloc(sizeof(int32_t) * N), *pos = xmalloc(sizeof(int32_t) * N);
    uint64_t s = 7 + (uint64_t)g.dp_rank; /* a tp group shares its rows */
    for (int64_t i = 0; i < N; i++)
        ids[i] = (int32_t)(rng_next(&s) % (uint64_t)c.vocab_size), pos[i] = (int32_t)(i % T);
    struct micro_batch mb = {.ids = ids, .labels = ids, .pos = pos, .B = rows, .T = T};
    /* the bare cost of summing the gradient buffer once (what a non-overlapped step pays) */
    double t_ar = 0;
    float *bare = zero >= 2 ? NULL : dp.grad; /* ZeRO-2/3 keep no whole gradient: not measured */
    for (int r = 0; r < 3 && bare; r++) {
        dist_barrier(&d);
        double t = time_now();
        dist_allreduce_sum_f32(&g.dp, bare, dp.n);
        t_ar += (time_now() - t) / 3;
    }
    /* per step: wall, exposed gradient wait, allgather, all blocking comm, share sent early;
     * the machine is shared, so the fastest step (max over ranks) is the figure of merit */
    double best[5] = {1e30, 0, 0, 0, 0}, sum_step = 0;
    int64_t sent0 = 0;
    for (int it = 0; it <= steps; it++) { /* step 0 warms up */
        dist_barrier(&d);
        double w0 = dp.wait_s, g0 = dp.gather_s, c0 = g.dp.comm_s + g.tp.comm_s, t = time_now();
        struct step_result res;
        if (train_step(&m, &opt, &mb, 1, 1e-4, 1.0, &comm, &res)) dist_abort(&d, "%s", err_msg());
        double v[5] = {time_now() - t, dp.wait_s - w0, dp.gather_s - g0, g.dp.comm_s + g.tp.comm_s - c0,
                       (double)dp.overlapped / dp.n};
        double per_rank[64] = {0}, slowest = 0; /* the step lasts as long as its slowest rank */
        per_rank[d.rank < 64 ? d.rank : 63] = v[0];
        dist_allreduce_sum_f64(&d, per_rank, 64);
        for (int r = 0; r < 64; r++)
            slowest = per_rank[r] > slowest ? per_rank[r] : slowest;
        if (it == 0) {
            sent0 = g.dp.bytes_sent + g.tp.bytes_sent;
            continue;
        }
        sum_step += slowest / steps;
        if (slowest < best[0]) memcpy(best, v, sizeof v), best[0] = slowest;
    }
    double sent = (double)(g.dp.bytes_sent + g.tp.bytes_sent - sent0) / steps;
    double rss[3] = {status_kb("VmRSS") / 1024.0, status_kb("VmHWM") / 1024.0, rss_loaded / 1024.0};
    double state = (double)dp_state_bytes(&dp, &opt), work = (double)zero_work_bytes(&dp);
    if (d.rank == 0)
        printf("ranks %d (data_parallel %d x model_parallel %d) zero %d: model state/rank %.1f MiB (allocator: weights + grads + moments), unit buffers "
               "%.1f MiB, RSS after steps %.1f MiB, peak RSS %.1f MiB (before dp_init: %.1f MiB), sent "
               "%.1f MB/step/rank\n",
               d.world, g.dp_size, g.tp_size, zero, state / 1048576, work / 1048576, rss[0], rss[1], rss[2], sent / 1e6);
    if (d.rank == 0)
        printf(
            "ranks %d (tp %d) rows/dp-rank %d T %d params/rank %.1fM zero %d overlap %d bucket %lldM: fastest step %.3f s "
            "(mean "
            "%.3f), %.0f tok/s; in it: exposed grad comm %.3f s, param allgather %.3f s, all blocking comm "
            "%.3f s; "
            "bare allreduce of all grads %.3f s; sent during backward %.0f%%; optimizer state/rank %.1f MB\n",
            d.world, g.tp_size, rows, T, dp.n / 1e6, zero, overlap, (long long)dp.cfg.bucket_elems >> 20, best[0],
            sum_step, (double)N * g.dp_size / best[0], best[1], best[2], best[3], t_ar, 100.0 * best[4],
            8.0 * opt.n / 1e6);
    adamw_free(&opt);
    dp_free(&dp);
    model_free(&m);
    free(ids), free(pos);
    dist_grid_free(&g);
    dist_finalize(&d);
    return 0;
}
