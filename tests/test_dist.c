/* Tests for src/dist, src/train/dp and src/train/zero. Run plainly it is one rank (make
 * test); under `mpirun -np N` (tests/test_dist.sh: N = 2, 3, 4) it checks that N ranks x
 * batch 24/N give the same losses, grad norms and weights as 1 process x batch 24 after 10
 * steps (within 1e-5), at ZeRO stages 0-3, overlapped or not, with accumulation, for full
 * fine-tuning and LoRA on the tiny fixtures (GQA; tied and untied; biases; q/k norms), that
 * the same grid twice is bitwise identical, and the process grid (dist_grid_init).
 * `--abort-test` makes rank 1 fail (`--die-test`: be killed) so the script can check that the
 * job ends with a message on every rank. */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "dist/dist.h"
#include "model/lora.h"
#include "model/model.h"
#include "test.h"
#include "train/dp.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/zero.h"

static struct dist D;

#define N_STEPS 10
#define GB 24 /* global rows per step: a multiple of 1, 2, 3 and 4 ranks (x 2 micro-batches) */
/* Losses, grad norms and the weight vector (relative L2) agree within TOL: the ranks sum
 * float32 gradients in another order (observed ~1e-8 on losses, <1e-6 on weights). Single
 * elements get TOL_ELEM: a gradient that is zero in exact math (the k_proj bias: softmax
 * ignores a shift of every key) is pure rounding noise of ~1e-9, which AdamW with eps 1e-8
 * turns into a noise-sized step (observed ~1e-5 at lr 1e-3). A lost or doubled gradient sum
 * moves weights by ~lr = 1e-3 per step, far outside both. */
#define TOL 1e-5
#define TOL_ELEM 1e-4

/* ---- the fixture's batches, cycled into global batches of GB rows ---- */

struct gbatch {
    int B, T;
    int32_t *ids, *labels, *pos;
};

static int read_rows(const cJSON *arr, int32_t *out, int T) {
    for (int b = 0; b < cJSON_GetArraySize(arr); b++) {
        const cJSON *row = cJSON_GetArrayItem(arr, b);
        if (cJSON_GetArraySize(row) != T) return -1;
        for (int t = 0; t < T; t++)
            out[b * T + t] = cJSON_GetArrayItem(row, t)->valueint;
    }
    return 0;
}

/* Global batch s holds fixture rows s*GB .. s*GB+GB-1 (mod the fixture's 6 rows). */
static int load_batches(const char *dir, struct gbatch *out, int n) {
    char *path = path_join(dir, "reference.json");
    char *text = file_read_all(path, NULL);
    free(path);
    if (!text) return -1;
    cJSON *ref = cJSON_Parse(text);
    free(text);
    const cJSON *bi = cJSON_GetObjectItem(ref, "batches_input_ids"),
                *bl = cJSON_GetObjectItem(ref, "batches_labels");
    int nb = cJSON_GetArraySize(bi), rc = 0;
    int T = cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetArrayItem(bi, 0), 0));
    int32_t *ids = xmalloc(sizeof(int32_t) * 2 * nb * T), *lab = xmalloc(sizeof(int32_t) * 2 * nb * T);
    for (int k = 0; k < nb; k++) {
        if (cJSON_GetArraySize(cJSON_GetArrayItem(bi, k)) != 2) rc = -1;
        if (rc || read_rows(cJSON_GetArrayItem(bi, k), ids + k * 2 * T, T) ||
            read_rows(cJSON_GetArrayItem(bl, k), lab + k * 2 * T, T))
            rc = -1;
    }
    for (int s = 0; s < n; s++) {
        struct gbatch *b = &out[s];
        b->B = GB, b->T = T;
        b->ids = xmalloc(sizeof(int32_t) * GB * T), b->labels = xmalloc(sizeof(int32_t) * GB * T);
        b->pos = xmalloc(sizeof(int32_t) * GB * T);
        for (int r = 0; r < GB; r++) {
            int src = (s * GB + r) % (2 * nb);
            memcpy(b->ids + r * T, ids + src * T, sizeof(int32_t) * T);
            memcpy(b->labels + r * T, lab + src * T, sizeof(int32_t) * T);
        }
        for (int i = 0; i < GB * T; i++)
            b->pos[i] = i % T;
    }
    free(ids), free(lab);
    cJSON_Delete(ref);
    return rc;
}

static void free_batches(struct gbatch *b, int n) {
    for (int i = 0; i < n; i++)
        free(b[i].ids), free(b[i].labels), free(b[i].pos);
}

/* ---- one run ---- */

struct run_opts {
    const char *dir;
    int lora; /* attach a fresh adapter (same seed on every rank) */
    int zero, overlap, n_mb;
    int64_t bucket;
};

static int load_model(struct model *m, const struct run_opts *o) {
    if (model_load(m, o->dir, 0, !o->lora)) return -1;
    if (!o->lora) return 0;
    static const char *const targets[] = {"q_proj", "v_proj", "down_proj"};
    struct lora_spec spec = {.rank = 4, .alpha = 8, .targets = targets, .n_targets = 3};
    return lora_attach(m, &spec, 1234);
}

static double lr_of(int step) { return 1e-3 * (step < 2 ? (step + 1) / 2.0 : 1.0); }

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++)
        w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++)
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* The whole trainable vector of a data-parallel model (gathered from the shards at ZeRO-3). */
static float *dp_weights(struct dp *dp) {
    float *w = xmalloc(sizeof(float) * (size_t)dp->n);
    int64_t lo, hi;
    if (zero_weight_shard(dp, &lo, &hi, NULL, NULL) && !dp->m->has_lora) zero_gather_all(dp, w);
    else memcpy(w, dp->data, sizeof(float) * (size_t)dp->n);
    return w;
}

/* N_STEPS data-parallel steps of m (this rank's GB / world rows, in n_mb micro-batches). */
static void train_dp(struct model *m, struct dp *dp, struct adamw *opt, const struct run_opts *o,
                     struct gbatch *gb, double *loss, double *norm) {
    struct step_comm comm = dp_step_comm(dp);
    for (int s = 0; s < N_STEPS; s++) {
        struct micro_batch g = {.ids = gb[s].ids, .labels = gb[s].labels, .pos = gb[s].pos, .B = GB, .T = gb[s].T};
        struct micro_batch local, mbs[4];
        struct step_result rd;
        EXPECT(dp_shard_rows(&local, &g, D.rank, D.world) == 0, "%s", err_msg());
        for (int i = 0; i < o->n_mb; i++)
            EXPECT(dp_shard_rows(&mbs[i], &local, i, o->n_mb) == 0, "%s", err_msg());
        EXPECT(train_step(m, opt, mbs, o->n_mb, lr_of(s), 1.0, &comm, &rd) == 0, "%s", err_msg());
        loss[s] = rd.loss, norm[s] = rd.grad_norm;
    }
}

/* Trains the reference (1 process, batch GB, no comm) and the data-parallel copy (twice: the
 * same grid must give the same bits); then a checkpoint round trip: the gathered optimizer
 * state matches the reference's, and a copy resumed from it at another ZeRO stage takes one
 * more step equal to the reference. */
static void check_parity(const struct run_opts *o) {
    struct gbatch gb[N_STEPS];
    struct model ref = {0}, m = {0}, m1 = {0}, m2 = {0};
    struct dp dp = {0}, dp1 = {0}, dp2 = {0};
    struct adamw oref = {0}, opt = {0}, opt1 = {0}, opt2 = {0};
    float *m_full = NULL, *v_full = NULL, *w = NULL, *w1 = NULL;
    double lref[N_STEPS], nref[N_STEPS], ld[N_STEPS], nd[N_STEPS], ld1[N_STEPS], nd1[N_STEPS];
    if (load_batches(o->dir, gb, N_STEPS)) {
        EXPECT(0, "%s: batches: %s", o->dir, err_msg());
        return;
    }
    if (load_model(&ref, o) || load_model(&m, o) || load_model(&m1, o) || load_model(&m2, o)) {
        EXPECT(0, "%s: load: %s", o->dir, err_msg());
        goto done;
    }
    struct dp_config cfg = {.zero = o->zero, .overlap = o->overlap, .bucket_elems = o->bucket};
    if (dp_init(&dp, &D, &m, &cfg) || dp_init(&dp1, &D, &m1, &cfg)) {
        EXPECT(0, "dp_init: %s", err_msg());
        goto done;
    }
    int np;
    struct param *pr = model_trainable(&ref, &np);
    adamw_init(&oref, pr, np, 0.9f, 0.999f, 1e-8f, 0.1f);
    dp_adamw_init(&dp, &opt, 0.9f, 0.999f, 1e-8f, 0.1f);
    dp_adamw_init(&dp1, &opt1, 0.9f, 0.999f, 1e-8f, 0.1f);
    if (o->zero)
        EXPECT(opt.n <= (dp.n + D.world - 1) / D.world + 64, "ZeRO shard %lld of %lld", (long long)opt.n,
               (long long)dp.n);
    for (int s = 0; s < N_STEPS; s++) {
        struct micro_batch g = {.ids = gb[s].ids, .labels = gb[s].labels, .pos = gb[s].pos, .B = GB, .T = gb[s].T};
        struct step_result rr;
        EXPECT(train_step(&ref, &oref, &g, 1, lr_of(s), 1.0, NULL, &rr) == 0, "%s", err_msg());
        lref[s] = rr.loss, nref[s] = rr.grad_norm;
    }
    int64_t sent0 = dp.d->bytes_sent;
    train_dp(&m, &dp, &opt, o, gb, ld, nd);
    int64_t sent = (dp.d->bytes_sent - sent0) / N_STEPS;
    train_dp(&m1, &dp1, &opt1, o, gb, ld1, nd1);
    /* bytes sent per step against the volume docs/distributed.md states (n elements, shard s,
     * W ranks): ZeRO-0 allreduce 2(W-1)/W n; ZeRO-1/2 reduce-scatter + allgather 2(n - s);
     * ZeRO-3 gather (forward) + reduce-scatter 2(n - s) (2-layer fixtures: the backward finds
     * both layers still gathered) or, with LoRA, the adapter as ZeRO-2 and the frozen base
     * gathered once (N - S) in the first step (it never changes; 2 layers stay in the buffers); plus 3 float64 allreduces (token count, loss, grad norm) of 2(W-1)/W 8 bytes */
    {
        int W = D.world;
        int64_t n = dp.n, own = dp.cfg.zero ? dp.hi - dp.lo : dp.bounds[D.rank + 1] - dp.bounds[D.rank];
        int64_t want = 3 * (2 * (W - 1) * 8 / W);
        if (W > 1 && o->zero == 0) want += 2 * (W - 1) * 4 * n / W;
        if (W > 1 && o->zero >= 1) want += 2 * 4 * (n - own);
        if (W > 1 && o->zero == 3) {
            /* untied, the embedding and the head share one buffer: every micro-batch after the
             * first gathers both again (E + H elements less this rank's parts of them) */
            int64_t lo, hi, eh = 0;
            zero_weight_shard(&dp, &lo, &hi, NULL, NULL);
            if (!m.cfg.tie_word_embeddings) {
                int64_t e_end = m.params[0].numel, h_start = m.n_base - m.params[m.n_params - 1].numel -
                                                             m.params[m.n_params - 2].numel;
                eh = e_end - (e_end > lo ? (e_end < hi ? e_end : hi) - lo : 0) + (m.n_base - h_start) -
                     (hi > h_start ? hi - (lo > h_start ? lo : h_start) : 0);
            }
            if (o->lora) /* the frozen base: gathered whole once, then only what is evicted */
                want += 4 * ((m.n_base - (hi - lo)) + (int64_t)(N_STEPS * o->n_mb - 1) * eh) / N_STEPS;
            else
                want += 4 * eh * (o->n_mb - 1);
        }
        if (W > 1 && o->zero >= 2) want += 4 * (n - own) * (o->n_mb - 1); /* a reduce-scatter per micro-batch */
        int64_t slack = o->zero == 0 ? 4 * (n / 1000 + 8) : 4; /* integer division per bucket, per step */
        EXPECT(llabs(sent - want) <= slack, "bytes sent per step %lld, analytic %lld", (long long)sent, (long long)want);
        if (D.rank == 0) printf("  bytes sent per step per rank: %lld (analytic %lld)\n", (long long)sent, (long long)want);
        /* ZeRO-3 model state (weights + gradients + moments, as allocated) sums to one process's */
        if (o->zero == 3) {
            double mine = (double)dp_state_bytes(&dp, &opt), all = mine;
            dist_allreduce_sum_f64(&D, &all, 1);
            double one = 16.0 * (double)n + (o->lora ? 4.0 * (double)m.n_base + 4.0 * (double)n * (W - 1) : 0);
            EXPECT(all == one, "ZeRO-3 state summed over %d ranks %.0f bytes, one process %.0f", W, all, one);
        }
    }
    double worst_loss = 0, worst_norm = 0;
    for (int s = 0; s < N_STEPS; s++) {
        worst_loss = fmax(worst_loss, fabs(ld[s] - lref[s]) / fabs(lref[s]));
        worst_norm = fmax(worst_norm, fabs(nd[s] - nref[s]) / fabs(nref[s]));
    }
    if (o->overlap && o->zero < 2)
        EXPECT(dp.overlapped > 0 && dp.overlapped < dp.n,
               "%lld of %lld gradient elements sent during the backward", (long long)dp.overlapped,
               (long long)dp.n);
    w = dp_weights(&dp), w1 = dp_weights(&dp1);
    double wdiff = max_abs_diff(w, pr[0].data, dp.n), wrel = rel_err(w, pr[0].data, dp.n);
    EXPECT(worst_loss <= TOL, "losses differ by %.3g (relative)", worst_loss);
    EXPECT(worst_norm <= TOL, "grad norms differ by %.3g (relative)", worst_norm);
    EXPECT(wrel <= TOL, "weights differ by %.3g (relative L2) after %d steps", wrel, N_STEPS);
    EXPECT(wdiff <= TOL_ELEM, "a weight differs by %.3g after %d steps", wdiff, N_STEPS);
    EXPECT(memcmp(ld, ld1, sizeof ld) == 0 && memcmp(nd, nd1, sizeof nd) == 0 &&
               memcmp(w, w1, sizeof(float) * (size_t)dp.n) == 0,
           "the same grid twice is not bitwise identical");
    /* every rank holds exactly rank 0's weights */
    memcpy(w1, w, sizeof(float) * (size_t)dp.n);
    dist_broadcast(&D, w1, sizeof(float) * (size_t)dp.n, 0);
    EXPECT(memcmp(w1, w, sizeof(float) * (size_t)dp.n) == 0, "rank %d's weights differ from rank 0's", D.rank);
    if (D.rank == 0)
        printf("  %s%s world=%d zero=%d overlap=%d n_mb=%d: loss %.2e, grad norm %.2e, weights %.2e (max element "
               "%.2e), state %.1f KiB/rank\n",
               o->dir, o->lora ? " (LoRA)" : "", D.world, o->zero, o->overlap, o->n_mb, worst_loss, worst_norm, wrel,
               wdiff, dp_state_bytes(&dp, &opt) / 1024.0);

    /* checkpoint: full optimizer state on rank 0, equal to the one-process state */
    m_full = xmalloc(sizeof(float) * (size_t)dp.n), v_full = xmalloc(sizeof(float) * (size_t)dp.n);
    dp_optim_gather(&dp, &opt, m_full, v_full, 0);
    if (D.rank == 0) {
        double em = rel_err(m_full, oref.m, dp.n), ev = rel_err(v_full, oref.v, dp.n);
        EXPECT(em <= 1e-4 && ev <= 1e-4, "gathered state: m %.3g, v %.3g relative error", em, ev);
    }
    /* resume at another stage, then one more step on both */
    memcpy(model_trainable(&m2, &np)[0].data, w, sizeof(float) * (size_t)dp.n);
    struct dp_config cfg2 = {.zero = (o->zero + 2) % 4, .overlap = !o->overlap, .bucket_elems = 1000};
    if (dp_init(&dp2, &D, &m2, &cfg2)) {
        EXPECT(0, "dp_init: %s", err_msg());
        goto done;
    }
    dp_adamw_init(&dp2, &opt2, 0.9f, 0.999f, 1e-8f, 0.1f);
    opt2.step = D.rank == 0 ? opt.step : -1;
    dp_optim_scatter(&dp2, &opt2, m_full, v_full, 0);
    EXPECT(opt2.step == N_STEPS, "step after load %lld", (long long)opt2.step);
    struct step_comm comm2 = dp_step_comm(&dp2);
    struct micro_batch g = {.ids = gb[0].ids, .labels = gb[0].labels, .pos = gb[0].pos, .B = GB, .T = gb[0].T},
                       local;
    struct step_result rr, rd;
    dp_shard_rows(&local, &g, D.rank, D.world);
    EXPECT(train_step(&ref, &oref, &g, 1, 1e-3, 1.0, NULL, &rr) == 0, "%s", err_msg());
    EXPECT(train_step(&m2, &opt2, &local, 1, 1e-3, 1.0, &comm2, &rd) == 0, "%s", err_msg());
    EXPECT_NEAR(rd.loss, rr.loss, TOL);
    free(w);
    w = dp_weights(&dp2);
    wrel = rel_err(w, pr[0].data, dp2.n), wdiff = max_abs_diff(w, pr[0].data, dp2.n);
    EXPECT(wrel <= TOL && wdiff <= TOL_ELEM, "resumed weights differ by %.3g (relative), %.3g (element)",
           wrel, wdiff);
done:
    free(m_full), free(v_full), free(w), free(w1);
    adamw_free(&oref), adamw_free(&opt), adamw_free(&opt1), adamw_free(&opt2);
    dp_free(&dp), dp_free(&dp1), dp_free(&dp2);
    model_free(&ref), model_free(&m), model_free(&m1), model_free(&m2);
    free_batches(gb, N_STEPS);
}

#define QWEN2 "tests/fixtures/hf/qwen2-tiny" /* tied, q/k/v biases, GQA */
#define LLAMA "tests/fixtures/hf/llama-tiny" /* untied, GQA */
#define QWEN3 "tests/fixtures/hf/qwen3-tiny" /* tied, q/k norms, GQA */
static void test_parity_zero0(void) {
    check_parity(&(struct run_opts){.dir = QWEN2, .n_mb = 1});
    check_parity(&(struct run_opts){.dir = LLAMA, .overlap = 1, .n_mb = 1, .bucket = 5000});
    check_parity(&(struct run_opts){.dir = QWEN3, .lora = 1, .overlap = 1, .n_mb = 1, .bucket = 300});
}
static void test_parity_zero1(void) {
    check_parity(&(struct run_opts){.dir = QWEN2, .zero = 1, .n_mb = 1});
    check_parity(&(struct run_opts){.dir = QWEN3, .zero = 1, .overlap = 1, .n_mb = 2, .bucket = 3001});
    check_parity(&(struct run_opts){.dir = LLAMA, .lora = 1, .zero = 1, .overlap = 1, .n_mb = 1, .bucket = 700});
}
static void test_parity_zero2(void) {
    check_parity(&(struct run_opts){.dir = QWEN2, .zero = 2, .n_mb = 1});
    check_parity(&(struct run_opts){.dir = LLAMA, .zero = 2, .n_mb = 2});
    check_parity(&(struct run_opts){.dir = QWEN3, .lora = 1, .zero = 2, .n_mb = 1});
}
static void test_parity_zero3(void) {
    check_parity(&(struct run_opts){.dir = QWEN2, .zero = 3, .n_mb = 1});
    check_parity(&(struct run_opts){.dir = LLAMA, .zero = 3, .n_mb = 2});
    check_parity(&(struct run_opts){.dir = QWEN3, .zero = 3, .n_mb = 1});
    check_parity(&(struct run_opts){.dir = QWEN2, .lora = 1, .zero = 3, .n_mb = 2});
    check_parity(&(struct run_opts){.dir = LLAMA, .lora = 1, .zero = 3, .n_mb = 1});
}

/* ---- collectives and helpers ---- */

static void test_collectives(void) {
    int w = D.world, r = D.rank;
    double x[2] = {r + 1, 0.5};
    dist_allreduce_sum_f64(&D, x, 2);
    EXPECT(x[0] == w * (w + 1) / 2.0 && x[1] == 0.5 * w, "allreduce f64 %g %g", x[0], x[1]);
    float f[3] = {1, 2, (float)r};
    dist_allreduce_sum_f32(&D, f, 3);
    EXPECT(f[0] == w && f[1] == 2 * w && f[2] == w * (w - 1) / 2.0f, "allreduce f32");
    EXPECT(dist_any(&D, r == w - 1) == 1 && dist_any(&D, 0) == 0, "any");
    char s[8] = "";
    if (r == 0) strcpy(s, "hello");
    dist_broadcast(&D, s, sizeof s, 0);
    EXPECT_STR(s, "hello");
    /* rank k owns k+1 elements of an allgather/gather/scatter buffer */
    int counts[16], displs[16], n = 0;
    for (int k = 0; k < w && k < 16; k++)
        counts[k] = k + 1, displs[k] = n, n += k + 1;
    float buf[256] = {0}, part[16], back[16] = {0};
    for (int j = 0; j < counts[r]; j++)
        buf[displs[r] + j] = part[j] = (float)(100 * r + j);
    dist_allgatherv_f32(&D, buf, counts, displs);
    int ok = 1;
    for (int k = 0; k < w; k++)
        for (int j = 0; j < counts[k]; j++)
            ok &= buf[displs[k] + j] == 100 * k + j;
    EXPECT(ok, "allgatherv");
    float all[256] = {0};
    dist_gatherv_f32(&D, part, all, counts, displs, 0);
    if (r == 0) EXPECT(memcmp(all, buf, sizeof(float) * n) == 0, "gatherv");
    dist_scatterv_f32(&D, all, back, counts, displs, 0);
    EXPECT(memcmp(back, part, sizeof(float) * counts[r]) == 0, "scatterv");
    dist_barrier(&D);
}

static void test_world_check(void) {
    EXPECT(dist_check_world(&D, 0) == 0, "unset is fine");
    EXPECT(dist_check_world(&D, D.world) == 0, "equal is fine");
    EXPECT(dist_check_world(&D, D.world + 2) == -1, "mismatch must fail");
    char want[128];
    snprintf(want, sizeof want, "parallel_config.data_parallel is %d but the job runs %d rank", D.world + 2,
             D.world);
    EXPECT_ERR(want);
}

/* The process grid: every split of the world that multiplies out, and the refusals. */
static void test_grid(void) {
    int W = D.world;
    struct dist_grid g;
    EXPECT(dist_grid_init(&g, &D, 0, 1, 1) == 0, "%s", err_msg());
    EXPECT(g.dp_size == W && g.tp_size == 1 && g.dp.world == W && g.tp.world == 1 && g.dp.rank == D.rank,
           "pure data parallel by default");
    double x = 1;
    dist_allreduce_sum_f64(&g.dp, &x, 1);
    EXPECT(x == W, "allreduce over dp: %g", x);
    dist_grid_free(&g);
    for (int tp = 1; tp <= W; tp++) {
        if (W % tp) continue;
        EXPECT(dist_grid_init(&g, &D, W / tp, tp, 1) == 0, "%s", err_msg());
        EXPECT(g.dp_size == W / tp && g.tp_size == tp && g.dp.world == W / tp && g.tp.world == tp, "grid %dx%d",
               W / tp, tp);
        EXPECT(g.dp_rank * tp + g.tp_rank == D.rank && g.tp.rank == g.tp_rank && g.dp.rank == g.dp_rank,
               "rank layout");
        /* sum of world ranks over each group */
        double s[2] = {D.rank, D.rank};
        dist_allreduce_sum_f64(&g.tp, s, 1);
        dist_allreduce_sum_f64(&g.dp, s + 1, 1);
        double want_tp = 0, want_dp = 0;
        for (int k = 0; k < tp; k++) want_tp += g.dp_rank * tp + k;
        for (int k = 0; k < W / tp; k++) want_dp += k * tp + g.tp_rank;
        EXPECT(s[0] == want_tp && s[1] == want_dp, "group sums %g %g (want %g %g)", s[0], s[1], want_tp, want_dp);
        dist_grid_free(&g);
    }
    int t = W == 4 ? 3 : 2;
    EXPECT(dist_grid_init(&g, &D, 2, t, 1) == -1, "dp 2 x tp %d on %d ranks must fail", t, W);
    char want[160];
    snprintf(want, sizeof want, "parallel_config.data_parallel 2 x model_parallel %d = %d ranks, but the job runs %d rank",
             t, 2 * t, W);
    EXPECT_ERR(want);
    EXPECT(dist_grid_init(&g, &D, 0, W + 1, 1) == -1, "tp W+1 must fail");
    snprintf(want, sizeof want, "parallel_config.model_parallel is %d but the job runs %d rank", W + 1, W);
    EXPECT_ERR(want);
    EXPECT(dist_grid_init(&g, &D, 0, 1, 2) == -1, "pipeline must fail");
    EXPECT_ERR("parallel_config.pipeline_stage is 2: pipeline parallelism is not supported yet");
    EXPECT(dist_grid_init(&g, &D, W + 2, 1, 1) == -1, "dp mismatch");
    snprintf(want, sizeof want, "parallel_config.data_parallel is %d but the job runs %d rank", W + 2, W);
    EXPECT_ERR(want);
}

static void test_shard_rows(void) {
    int32_t ids[6 * 2], lab[6 * 2], pos[6 * 2];
    for (int i = 0; i < 12; i++)
        ids[i] = i, lab[i] = -i, pos[i] = i % 2;
    struct micro_batch g = {.ids = ids, .labels = lab, .pos = pos, .B = 6, .T = 2}, out;
    EXPECT(dp_shard_rows(&out, &g, 2, 3) == 0, "%s", err_msg());
    EXPECT(out.B == 2 && out.T == 2 && out.ids[0] == 8 && out.labels[3] == -11 && out.pos[1] == 1,
           "rows 4-5");
    EXPECT(dp_shard_rows(&out, &g, 0, 4) == -1, "6 rows over 4 ranks must fail");
    EXPECT_ERR("the global batch has 6 rows, not a multiple of the 4 ranks");
    EXPECT(dp_shard_rows(&out, &g, 3, 3) == -1, "rank out of range");
    EXPECT_ERR("rank 3 of 3 is out of range");
    int owned = 0;
    for (int i = 0; i < 10; i++)
        owned += dp_owns(i, 1, 3);
    EXPECT(owned == 3, "round robin: rank 1 of 3 owns 1, 4, 7");
}

static void test_dp_errors(void) {
    struct model m = {0};
    struct dp dp;
    struct dp_config cfg = {0};
    if (model_load(&m, "tests/fixtures/hf/qwen2-tiny", 0, 0)) {
        EXPECT(0, "load: %s", err_msg());
        return;
    }
    EXPECT(dp_init(&dp, &D, &m, &cfg) == -1, "frozen model must fail");
    EXPECT_ERR("no trainable tensors");
    model_free(&m);
}

/* The ZeRO-1 AdamW on shards equals the plain one on the whole buffer, bit for bit. */
static void test_adamw_range(void) {
    float w1[10], w2[10], g[10];
    struct param p[2] = {{.numel = 4, .data = w1, .grad = g, .decay = 1},
                         {.numel = 6, .data = w1 + 4, .grad = g + 4}};
    struct param q[2] = {{.numel = 4, .data = w2, .grad = g, .decay = 1},
                         {.numel = 6, .data = w2 + 4, .grad = g + 4}};
    for (int i = 0; i < 10; i++)
        w1[i] = w2[i] = 0.1f * i - 0.3f, g[i] = 0.05f * (i % 3) - 0.04f;
    struct adamw a, b0, b1;
    adamw_init(&a, p, 2, 0.9f, 0.99f, 1e-8f, 0.1f);
    adamw_init_n(&b0, 3, 0.9f, 0.99f, 1e-8f, 0.1f);
    adamw_init_n(&b1, 7, 0.9f, 0.99f, 1e-8f, 0.1f);
    for (int s = 0; s < 3; s++) {
        adamw_step(&a, p, 2, 0.01f);
        adamw_step_range(&b0, q, 2, 0, 3, g, 0.01f);
        adamw_step_range(&b1, q, 2, 3, 10, NULL, 0.01f);
    }
    EXPECT(memcmp(w1, w2, sizeof w1) == 0, "sharded AdamW differs");
    EXPECT(memcmp(a.m + 3, b1.m, 7 * sizeof(float)) == 0 && memcmp(a.v, b0.v, 3 * sizeof(float)) == 0,
           "state");
    adamw_free(&a), adamw_free(&b0), adamw_free(&b1);
}

/* RUN, then one verdict for the job: a test failed if it failed on any rank. */
#define DRUN(fn)                                                                                             \
    do {                                                                                                     \
        RUN(fn);                                                                                             \
        if (dist_any(&D, t_cur_failed != 0) && !t_cur_failed) t_passed--, t_failed++;                        \
    } while (0)

int main(int argc, char **argv) {
    omp_set_num_threads(1); /* tiny tensors: threads only add contention (and ranks share the cores) */
    if (dist_init(&D, &argc, &argv)) {
        fprintf(stderr, "test_dist: %s\n", err_msg());
        return 1;
    }
    if (argc > 1 && (strcmp(argv[1], "--abort-test") == 0 || strcmp(argv[1], "--die-test") == 0)) {
        dist_barrier(&D);
        if (D.rank == 1 && argv[1][2] == 'd') raise(SIGKILL); /* a rank that dies without a word */
        if (D.rank == 1) dist_abort(&D, "deliberate failure of rank 1 (test)");
        dist_barrier(&D); /* never completes: mpirun ends this rank */
        dist_finalize(&D);
        return 0;
    }
    DRUN(test_collectives);
    DRUN(test_world_check);
    DRUN(test_grid);
    DRUN(test_shard_rows);
    DRUN(test_adamw_range);
    DRUN(test_dp_errors);
    DRUN(test_parity_zero0);
    DRUN(test_parity_zero1);
    DRUN(test_parity_zero2);
    DRUN(test_parity_zero3);
    int rc = t_failed ? 1 : 0;
    if (D.rank == 0) rc = TEST_SUMMARY(D.world > 1 ? "dist_mpi" : "dist");
    dist_finalize(&D);
    return rc;
}
