/* dp: see dp.h. The flat trainable buffer is cut into buckets from its end (the last layers
 * finish their backward first); under ZeRO each bucket is reduce-scattered so that rank r
 * receives the part of the bucket inside its shard [bounds[r], bounds[r+1]). */
#include "train/dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "train/zero.h"

#define DP_DEFAULT_BUCKET (4 << 20)

/* counts/displs of each rank's part of [a, b), displs relative to a. */
static void bucket_geom(struct dp *dp, int64_t a, int64_t b, int *counts, int *displs) {
    for (int r = 0; r < dp->d->world; r++) {
        int64_t s = dp->bounds[r] > a ? dp->bounds[r] : a, e = dp->bounds[r + 1] < b ? dp->bounds[r + 1] : b;
        counts[r] = e > s ? (int)(e - s) : 0;
        displs[r] = e > s ? (int)(s - a) : 0;
    }
}

/* Starts the sum of the gradient bucket [a, b). The counts of a non-blocking reduce-scatter
 * must live until it completes: each bucket has its own row of the pool. */
static void bucket_launch(struct dp *dp, int64_t a, int64_t b) {
    if (!dp->cfg.zero) {
        dist_iallreduce_sum_f32(dp->d, dp->grad + a, (int)(b - a));
        return;
    }
    int w = dp->d->world, k = dp->d->n_reqs;
    CHECK(k < dp->pool_rows, "dp: more buckets in flight (%d) than planned (%d)", k + 1, dp->pool_rows);
    int *counts = dp->pool + (int64_t)k * w, *displs = dp->displs;
    bucket_geom(dp, a, b, counts, displs);
    int64_t s = a > dp->lo ? a : dp->lo;
    float *recv = counts[dp->d->rank] ? dp->shard_grad + (s - dp->lo) : dp->shard_grad;
    dist_ireduce_scatter_sum_f32(dp->d, dp->grad + a, recv, counts);
}

/* Hands every full bucket of [to, sent_from) to communication. */
static void launch_down_to(struct dp *dp, int64_t to, int whole) {
    int64_t bk = dp->cfg.bucket_elems;
    while (dp->sent_from - to >= bk || (whole && dp->sent_from > to)) {
        int64_t a = dp->sent_from - bk > to ? dp->sent_from - bk : to;
        bucket_launch(dp, a, dp->sent_from);
        dp->sent_from = a;
    }
}

static void on_layer(int layer, void *ctx) {
    struct dp *dp = ctx;
    if (!dp->armed) return;
    int64_t before = dp->sent_from;
    launch_down_to(dp, dp->ready_from[layer], 0);
    dp->overlapped += before - dp->sent_from;
    dist_progress(dp->d);
}

static void cb_backward_begin(int mb, int n_mb, void *ctx) {
    struct dp *dp = ctx;
    if (dp->z) {
        if (mb == 0) zero_step_begin(dp);
        return;
    }
    dp->sent_from = dp->n;
    dp->overlapped = 0;
    dp->armed = dp->cfg.overlap && mb == n_mb - 1;
}

static void cb_allreduce_f64(double *x, int n, void *ctx) {
    dist_allreduce_sum_f64(((struct dp *)ctx)->d, x, n);
}

static void cb_allreduce_grads(struct param *params, int n_params, void *ctx) {
    (void)params, (void)n_params;
    struct dp *dp = ctx;
    if (dp->z) {
        double t = time_now();
        zero_grads_finish(dp);
        dp->wait_s += time_now() - t;
        return;
    }
    launch_down_to(dp, 0, 1);
    double t = time_now();
    dist_wait_all(dp->d);
    dp->wait_s += time_now() - t;
    dp->armed = 0;
    dp->sent_from = dp->n;
}

static double cb_grad_norm(struct param *params, int n_params, void *ctx) {
    (void)params, (void)n_params;
    struct dp *dp = ctx;
    const float *g = dp->shard_grad;
    double ss = 0;
    if (model_tp_on(dp->m)) { /* tensor parallelism: replicated tensors count once (model/tp.h) */
        ss = tp_shard_sumsq(dp->params, dp->n_params, dp->lo, dp->hi, g);
    } else {
#pragma omp parallel for reduction(+ : ss)
        for (int64_t j = 0; j < dp->hi - dp->lo; j++)
            ss += (double)g[j] * g[j];
    }
    dist_allreduce_sum_f64(dp->d, &ss, 1);
    tp_allreduce_f64(dp->m, &ss, 1);
    return sqrt(ss);
}

static void cb_optimizer_step(struct adamw *opt, struct param *params, int n_params, float lr,
                              double grad_norm, double max_grad_norm, void *ctx) {
    struct dp *dp = ctx;
    int64_t ns = dp->hi - dp->lo;
    double coef = max_grad_norm > 0 ? max_grad_norm / (grad_norm + 1e-6) : 1.0; /* as grad_clip */
    if (coef < 1.0) {
        float c = (float)coef, *g = dp->shard_grad;
#pragma omp parallel for
        for (int64_t j = 0; j < ns; j++)
            g[j] *= c;
    }
    if (dp->z && zero_optimizer_step(dp, opt, lr)) return;
    adamw_step_range(opt, params, n_params, dp->lo, dp->hi, dp->shard_grad, lr);
    double t = time_now();
    for (int64_t a = 0; a < dp->n; a += dp->cfg.bucket_elems) {
        int64_t b = a + dp->cfg.bucket_elems < dp->n ? a + dp->cfg.bucket_elems : dp->n;
        bucket_geom(dp, a, b, dp->counts, dp->displs);
        dist_allgatherv_f32(dp->d, dp->data + a, dp->counts, dp->displs);
    }
    dp->gather_s += time_now() - t;
}

struct step_comm dp_step_comm(struct dp *dp) {
    struct step_comm c = {.allreduce_sum_f64 = cb_allreduce_f64,
                          .allreduce_grads = cb_allreduce_grads,
                          .ctx = dp,
                          .backward_begin = cb_backward_begin};
    if (dp->cfg.zero) c.grad_norm = cb_grad_norm, c.optimizer_step = cb_optimizer_step;
    return c;
}

/* Layer index of a tensor name ("model.layers.3.mlp..." or PEFT's "...model.layers.3..."), or -1. */
static int name_layer(const char *name) {
    const char *p = strstr(name, ".layers.");
    if (!p && strncmp(name, "layers.", 7) == 0) p = name - 1;
    return p ? atoi(p + 8) : -1;
}

/* ready_from[l]: the longest suffix of the table whose tensors are all final once layer l is
 * done: layers >= l and anything after the layers (final norm, untied lm_head); tensors
 * before the first layer (the embedding, which the tied lm_head also writes) wait to the end. */
static void plan_ready(struct dp *dp, int n_layers) {
    int first_layer_param = dp->n_params;
    for (int i = 0; i < dp->n_params; i++)
        if (name_layer(dp->params[i].name) >= 0) {
            first_layer_param = i;
            break;
        }
    int64_t *off = xmalloc(sizeof(int64_t) * (size_t)(dp->n_params + 1));
    int *level = xmalloc(sizeof(int) * (size_t)(dp->n_params ? dp->n_params : 1));
    off[0] = 0;
    for (int i = 0; i < dp->n_params; i++) {
        off[i + 1] = off[i] + dp->params[i].numel;
        int k = name_layer(dp->params[i].name);
        level[i] = k >= 0 ? k : i < first_layer_param ? -1 : n_layers;
    }
    dp->ready_from = xmalloc(sizeof(int64_t) * (size_t)(n_layers ? n_layers : 1));
    for (int l = 0; l < n_layers; l++) {
        int i = dp->n_params;
        while (i > 0 && level[i - 1] >= l)
            i--;
        dp->ready_from[l] = off[i];
    }
    free(off);
    free(level);
}

int dp_init(struct dp *dp, struct dist *d, struct model *m, const struct dp_config *cfg) {
    memset(dp, 0, sizeof *dp);
    dp->d = d, dp->m = m, dp->cfg = *cfg;
    if (dp->cfg.bucket_elems <= 0) dp->cfg.bucket_elems = DP_DEFAULT_BUCKET;
    if (dp->cfg.bucket_elems > (1 << 30)) dp->cfg.bucket_elems = 1 << 30;
    dp->params = model_trainable(m, &dp->n_params);
    if (dp->n_params == 0 || (!dp->params[0].grad && dp->params[0].data))
        return err_set(
            "data parallel: the model has no trainable tensors (load it with gradients or attach LoRA)");
    dp->data = dp->params[0].data, dp->grad = dp->params[0].grad;
    int shape_only = dp->data == NULL; /* model_load_shape: ZeRO-3 reads the shards itself */
    for (int i = 0; i < dp->n_params; i++) {
        const struct param *p = &dp->params[i];
        if (!shape_only && (p->data != dp->data + dp->n || p->grad != dp->grad + dp->n))
            return err_set(
                "data parallel: trainable tensor %s is not contiguous with the previous one in the flat "
                "buffer (expected offset %lld)",
                p->name, (long long)dp->n);
        dp->n += p->numel;
    }
    /* Every rank must train the same tensors. */
    int64_t shape[2] = {dp->n, dp->n_params}, root[2] = {dp->n, dp->n_params};
    dist_broadcast(d, root, sizeof root, 0);
    int bad = shape[0] != root[0] || shape[1] != root[1];
    if (dist_any(d, bad))
        return err_set(
            "data parallel: rank %d trains %lld elements in %lld tensors, rank 0 %lld in %lld: every rank "
            "must load the same model and adapter",
            d->rank, (long long)shape[0], (long long)shape[1], (long long)root[0], (long long)root[1]);
    int w = d->world;
    dp->bounds = xmalloc(sizeof(int64_t) * (size_t)(w + 1));
    int64_t chunk = (dp->n + w - 1) / w;
    chunk = (chunk + 63) / 64 * 64; /* shards start 256-byte aligned */
    for (int r = 0; r <= w; r++)
        dp->bounds[r] = (int64_t)r * chunk < dp->n ? (int64_t)r * chunk : dp->n;
    dp->lo = cfg->zero ? dp->bounds[d->rank] : 0;
    dp->hi = cfg->zero ? dp->bounds[d->rank + 1] : dp->n;
    dp->counts = xmalloc(sizeof(int) * (size_t)w);
    dp->displs = xmalloc(sizeof(int) * (size_t)w);
    if (cfg->zero) {
        dp->shard_grad = xcalloc((size_t)(dp->hi - dp->lo + 1), sizeof(float));
        dp->pool_rows = (int)((dp->n + dp->cfg.bucket_elems - 1) / dp->cfg.bucket_elems) + 1;
        dp->pool = xmalloc(sizeof(int) * (size_t)dp->pool_rows * (size_t)w);
    }
    plan_ready(dp, m->cfg.n_layers);
    if (cfg->zero >= 2) {
        if (zero_init(dp)) return -1;
        return 0;
    }
    dp->sent_from = dp->n;
    m->on_layer_grads_ready = on_layer;
    m->grads_ready_ctx = dp;
    return 0;
}

void dp_free(struct dp *dp) {
    zero_free(dp);
    if (dp->m && dp->m->grads_ready_ctx == dp)
        dp->m->on_layer_grads_ready = NULL, dp->m->grads_ready_ctx = NULL;
    free(dp->bounds), free(dp->shard_grad), free(dp->ready_from), free(dp->counts), free(dp->displs),
        free(dp->pool);
    memset(dp, 0, sizeof *dp);
}

int64_t dp_state_bytes(const struct dp *dp, const struct adamw *o) {
    int64_t moments = (int64_t)sizeof(float) * 2 * o->n;
    if (dp->z) return zero_state_bytes(dp) + moments;
    const struct model *m = dp->m;
    int64_t grads = dp->cfg.zero ? dp->hi - dp->lo + dp->n : dp->n; /* ZeRO-1 keeps both */
    return (int64_t)sizeof(float) * (m->n_base + m->n_lora + grads) + moments;
}

struct ckpt_part dp_ckpt_part(const struct dp *dp, const struct adamw *o) {
    int r = dp->d->rank;
    if (!dp->cfg.zero) /* replicated: each rank writes the share a ZeRO shard would hold */
        return (struct ckpt_part){.lo = dp->bounds[r], .hi = dp->bounds[r + 1], .m = o->m + dp->bounds[r],
                                  .v = o->v + dp->bounds[r]};
    int64_t lo, hi;
    const float *w = dp->m->has_lora ? NULL : zero_weight_shard(dp, &lo, &hi, NULL, NULL);
    return (struct ckpt_part){.lo = dp->lo, .hi = dp->hi, .w = w, .m = o->m, .v = o->v};
}

void dp_adamw_init(const struct dp *dp, struct adamw *o, float beta1, float beta2, float eps,
                   float weight_decay) {
    adamw_init_n(o, dp->hi - dp->lo, beta1, beta2, eps, weight_decay);
}

int dp_shard_rows(struct micro_batch *out, const struct micro_batch *global, int rank, int world) {
    if (world < 1 || rank < 0 || rank >= world)
        return err_set("data parallel: rank %d of %d is out of range", rank, world);
    if (global->B % world)
        return err_set(
            "data parallel: the global batch has %d rows, not a multiple of the %d ranks (set the batch "
            "size to a multiple of the world size)",
            global->B, world);
    int b = global->B / world;
    int64_t off = (int64_t)rank * b * global->T;
    *out = (struct micro_batch){.ids = global->ids + off,
                                .labels = global->labels + off,
                                .pos = global->pos + off,
                                .B = b,
                                .T = global->T};
    return 0;
}

/* Rank-ordered gather (or scatter) of a sharded state vector, bucket by bucket. */
static void state_move(struct dp *dp, float *part, float *full, int root, int gather) {
    int me = dp->d->rank;
    for (int64_t a = 0; a < dp->n; a += dp->cfg.bucket_elems) {
        int64_t b = a + dp->cfg.bucket_elems < dp->n ? a + dp->cfg.bucket_elems : dp->n;
        bucket_geom(dp, a, b, dp->counts, dp->displs);
        int64_t s = a > dp->lo ? a : dp->lo;
        float *mine = dp->counts[me] ? part + (s - dp->lo) : part;
        float *all = me == root ? full + a : NULL;
        if (gather)
            dist_gatherv_f32(dp->d, mine, all, dp->counts, dp->displs, root);
        else
            dist_scatterv_f32(dp->d, all, mine, dp->counts, dp->displs, root);
    }
}

void dp_optim_gather(struct dp *dp, const struct adamw *o, float *m_full, float *v_full, int root) {
    if (!dp->cfg.zero) {
        if (dp->d->rank == root) {
            memcpy(m_full, o->m, sizeof(float) * (size_t)dp->n);
            memcpy(v_full, o->v, sizeof(float) * (size_t)dp->n);
        }
        return;
    }
    state_move(dp, o->m, m_full, root, 1);
    state_move(dp, o->v, v_full, root, 1);
}

void dp_optim_scatter(struct dp *dp, struct adamw *o, const float *m_full, const float *v_full, int root) {
    dist_broadcast(dp->d, &o->step, sizeof o->step, root);
    if (!dp->cfg.zero) {
        if (dp->d->rank == root) {
            memcpy(o->m, m_full, sizeof(float) * (size_t)dp->n);
            memcpy(o->v, v_full, sizeof(float) * (size_t)dp->n);
        }
        dist_broadcast(dp->d, o->m, sizeof(float) * (size_t)dp->n, root);
        dist_broadcast(dp->d, o->v, sizeof(float) * (size_t)dp->n, root);
        return;
    }
    state_move(dp, o->m, (float *)m_full, root, 0);
    state_move(dp, o->v, (float *)v_full, root, 0);
}
