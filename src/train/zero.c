/* zero: see zero.h. A "space" is a flat run of tensors in param-table order (the trainable
 * tensors, or the frozen base with LoRA) cut into units and into contiguous rank shards; a
 * unit's collective moves, for every rank, the part of the unit inside that rank's shard. */
#include "train/zero.h"

#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "model/tp.h"
#include "train/dp.h"

struct zslot {
    int unit;        /* unit held or in flight (-1: none) */
    int valid;       /* weights: current (stage 3) */
    float *buf;      /* (unit size) weights or gradients of the whole unit; after the in-place
                        reduce-scatter its first recv_n elements are this rank's summed part */
    int64_t recv_at; /* where that part lands in the gradient shard */
    int recv_n;
    int *counts, *displs; /* (world) of the collective in flight */
    struct dist_req req;
};

struct zspace {
    struct param *params;
    int n_params;
    int64_t n, lo, hi;
    int64_t *bounds; /* (world+1) */
    int64_t *pstart; /* (n_params+1) flat offset of each tensor */
    int *pu;         /* (n_units+1) first tensor of each unit */
    float *shard;    /* stage 3 weights [lo, hi) */
};

struct zero {
    struct dp *dp;
    struct dist *d;
    struct model *m;
    int stage, L, n_units, tied, shard_weights, weights_are_trained;
    struct zspace ws, ts; /* weights (stage 3) and trainable (gradients) */
    struct zslot wE, wH, wL[2], gE, gH, gL[2];
    int64_t state_bytes, work_bytes;
};

static int name_layer(const char *name) {
    const char *p = strstr(name, ".layers.");
    if (!p && strncmp(name, "layers.", 7) == 0) p = name - 1;
    return p ? atoi(p + 8) : -1;
}

static int64_t ua(const struct zspace *s, int u) { return s->pstart[s->pu[u]]; }
static int64_t ub(const struct zspace *s, int u) { return s->pstart[s->pu[u + 1]]; }

static void space_plan(struct zero *z, struct zspace *s, struct param *params, int n_params, const int64_t *bounds) {
    int W = z->d->world;
    s->params = params, s->n_params = n_params;
    s->pstart = xmalloc(sizeof(int64_t) * (size_t)(n_params + 1));
    s->pstart[0] = 0;
    for (int i = 0; i < n_params; i++) s->pstart[i + 1] = s->pstart[i] + params[i].numel;
    s->n = s->pstart[n_params];
    s->bounds = xmalloc(sizeof(int64_t) * (size_t)(W + 1));
    if (bounds) memcpy(s->bounds, bounds, sizeof(int64_t) * (size_t)(W + 1));
    else {
        int64_t chunk = (s->n + W - 1) / W;
        chunk = (chunk + 63) / 64 * 64;
        for (int r = 0; r <= W; r++) s->bounds[r] = (int64_t)r * chunk < s->n ? (int64_t)r * chunk : s->n;
    }
    s->lo = s->bounds[z->d->rank], s->hi = s->bounds[z->d->rank + 1];
    /* unit of each tensor: 0 before the first layer, 1 + l in layer l, L + 1 after */
    s->pu = xmalloc(sizeof(int) * (size_t)(z->n_units + 1));
    int first_layer = n_params;
    for (int i = 0; i < n_params; i++)
        if (name_layer(params[i].name) >= 0) {
            first_layer = i;
            break;
        }
    int i = 0;
    for (int u = 0; u <= z->n_units; u++) {
        while (i < n_params) {
            int k = name_layer(params[i].name);
            int unit = k >= 0 ? 1 + k : i < first_layer ? 0 : z->L + 1;
            if (unit >= u) break;
            i++;
        }
        s->pu[u] = i;
    }
}

static void space_free(struct zspace *s) {
    free(s->pstart), free(s->bounds), free(s->pu);
    free(s->shard);
}

static void geom(const struct zero *z, const struct zspace *s, int64_t a, int64_t b, int *counts, int *displs) {
    for (int r = 0; r < z->d->world; r++) {
        int64_t x = s->bounds[r] > a ? s->bounds[r] : a, e = s->bounds[r + 1] < b ? s->bounds[r + 1] : b;
        counts[r] = e > x ? (int)(e - x) : 0;
        displs[r] = e > x ? (int)(x - a) : 0;
    }
}

static int64_t max_unit(const struct zspace *s, int from, int to) {
    int64_t w = 0;
    for (int u = from; u <= to; u++)
        if (ub(s, u) - ua(s, u) > w) w = ub(s, u) - ua(s, u);
    return w;
}

static void slot_init(struct zero *z, struct zslot *sl, int64_t n) {
    int W = z->d->world;
    sl->unit = -1;
    sl->buf = xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    sl->counts = xmalloc(sizeof(int) * (size_t)W);
    sl->displs = xmalloc(sizeof(int) * (size_t)W);
    z->work_bytes += (int64_t)sizeof(float) * n;
}

static void slot_free(struct zslot *sl) { free(sl->buf), free(sl->counts), free(sl->displs); }

/* Untied, the embedding (needed at the start of the forward only: its backward reads no
 * weights) and the head (needed from the end of the forward through its backward) take turns
 * in one buffer, and so do their gradients; tied, the head reads the embedding, which stays. */
static struct zslot *wslot(struct zero *z, int u) {
    return u == 0 ? &z->wE : u == z->L + 1 ? (z->tied ? &z->wH : &z->wE) : &z->wL[(u - 1) & 1];
}
static struct zslot *gslot(struct zero *z, int u) {
    return u == 0 ? &z->gE : u == z->L + 1 ? (z->tied ? &z->gH : &z->gE) : &z->gL[(u - 1) & 1];
}

/* ---- weights (stage 3) ---- */

static void gather_start(struct zero *z, int u) {
    if (u < 0 || u > z->L + 1) return;
    struct zspace *s = &z->ws;
    struct zslot *sl = wslot(z, u);
    if (sl->unit == u && sl->valid) return; /* held or in flight */
    dist_req_wait(z->d, &sl->req);
    int64_t a = ua(s, u), b = ub(s, u);
    sl->unit = u, sl->valid = 1;
    if (a == b) return;
    geom(z, s, a, b, sl->counts, sl->displs);
    int64_t x = a > s->lo ? a : s->lo, e = b < s->hi ? b : s->hi;
    if (x < e) memcpy(sl->buf + (x - a), s->shard + (x - s->lo), sizeof(float) * (size_t)(e - x));
    dist_iallgatherv_f32_req(z->d, sl->buf, sl->counts, sl->displs, &sl->req);
}

/* Unit u's weights present: its tensors point into the slot. */
static void weights_bind(struct zero *z, int u) {
    struct zspace *s = &z->ws;
    struct zslot *sl = wslot(z, u);
    gather_start(z, u);
    dist_req_wait(z->d, &sl->req);
    int64_t a = ua(s, u);
    for (int i = s->pu[u]; i < s->pu[u + 1]; i++) s->params[i].data = sl->buf + (s->pstart[i] - a);
}

/* ---- gradients (stages 2 and 3) ---- */

static void grads_fold(struct zero *z, struct zslot *sl) {
    dist_req_wait(z->d, &sl->req);
    if (sl->unit < 0) return;
    float *g = z->dp->shard_grad + sl->recv_at;
    const float *r = sl->buf;
    for (int j = 0; j < sl->recv_n; j++) g[j] += r[j];
    sl->unit = -1, sl->recv_n = 0;
}

static void grads_bind(struct zero *z, int u) {
    struct zspace *s = &z->ts;
    int64_t a = ua(s, u), b = ub(s, u);
    if (a == b) return;
    struct zslot *sl = gslot(z, u);
    grads_fold(z, sl);
    memset(sl->buf, 0, sizeof(float) * (size_t)(b - a));
    sl->unit = u;
    for (int i = s->pu[u]; i < s->pu[u + 1]; i++) s->params[i].grad = sl->buf + (s->pstart[i] - a);
}

static void grads_send(struct zero *z, int u) {
    struct zspace *s = &z->ts;
    int64_t a = ua(s, u), b = ub(s, u);
    if (a == b) return;
    struct zslot *sl = gslot(z, u);
    CHECK(sl->unit == u, "zero: unit %d's gradients are not in their buffer (holds %d)", u, sl->unit);
    geom(z, s, a, b, sl->counts, sl->displs);
    int me = z->d->rank;
    sl->recv_n = sl->counts[me];
    sl->recv_at = sl->recv_n ? a + sl->displs[me] - s->lo : 0;
    dist_ireduce_scatter_f32_req(z->d, NULL, sl->buf, sl->counts, &sl->req); /* in place */
}

static void poll(struct zero *z) {
    struct zslot *all[] = {&z->wE, &z->wH, &z->wL[0], &z->wL[1], &z->gE, &z->gH, &z->gL[0], &z->gL[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dist_req_test(z->d, &all[i]->req);
}

static void on_unit(int event, int u, void *ctx) {
    struct zero *z = ctx;
    int H = z->L + 1;
    if (event == MODEL_UNIT_DONE) {
        grads_send(z, u);
        poll(z);
        return;
    }
    if (z->shard_weights) {
        /* the embedding's backward reads no weights */
        if (!(event == MODEL_UNIT_BACKWARD && u == 0)) weights_bind(z, u);
        if (u == H && z->tied) weights_bind(z, 0); /* the tied head reads the embedding */
        if (event == MODEL_UNIT_FORWARD) gather_start(z, u + 1 <= H ? u + 1 : -1);
        else if (u > 1) gather_start(z, u - 1); /* backward runs H, L, ..., 1, 0 */
    }
    if (event == MODEL_UNIT_BACKWARD && (z->m->base_trained || z->m->has_lora)) {
        if (!(u == 0 && z->tied && z->weights_are_trained)) grads_bind(z, u);
        if (u == H && z->tied && z->weights_are_trained) grads_bind(z, 0); /* its gradient starts here */
    }
    model_bind(z->m);
    poll(z);
}

/* ---- setup ---- */

/* The shard [lo, hi) of the weights without the whole model ever in memory: read from the
 * model folder dir (mmapped safetensors, converted range by range), or random (dir NULL). */
static int shard_fill(struct zspace *s, const char *dir) {
    struct safetensors *st = NULL;
    if (dir && safetensors_open(&st, dir)) return err_wrap("reading this rank's shard of the weights");
    int rc = 0;
    for (int i = 0; i < s->n_params && !rc; i++) {
        const struct param *p = &s->params[i];
        int64_t off = s->pstart[i], a = off > s->lo ? off : s->lo, b = s->pstart[i + 1] < s->hi ? s->pstart[i + 1] : s->hi;
        if (a >= b) continue;
        float *out = s->shard + (a - s->lo);
        if (!st) {
            int norm = strstr(p->name, "norm") != NULL;
            for (int64_t j = a; j < b; j++) {
                uint64_t h = rng_hash((uint64_t)j * 0x9e3779b97f4a7c15ull + 1);
                out[j - a] = norm ? 1.0f : p->n_dims == 1 ? 0.0f : 0.02f * (float)((double)(h >> 11) / 9007199254740992.0 - 0.5) * 3.4641f;
            }
            continue;
        }
        if (p->tp_dim >= 0) { /* a tensor-parallel slice */
            if ((rc = tp_read_param_range(st, p->name, p, a - off, b - a, out))) err_wrap("%s", dir);
            continue;
        }
        const struct st_tensor *t = safetensors_find(st, p->name);
        int same = t && t->n_dims == p->n_dims && t->numel == p->numel;
        for (int k = 0; same && k < t->n_dims; k++) same = t->shape[k] == p->shape[k];
        if (!same)
            rc = err_set("%s: tensor %s %s", dir, p->name, t ? "has another shape than config.json gives" : "is missing");
        else if (dtype_to_f32(out, (const char *)t->data + (size_t)(a - off) * dtype_size(t->dtype), t->dtype, b - a))
            rc = err_set("%s: tensor %s is not a float tensor", dir, p->name);
    }
    if (st) safetensors_close(st);
    return rc;
}

int zero_init(struct dp *dp) {
    struct zero *z = dp->z = xcalloc(1, sizeof *z);
    struct model *m = dp->m;
    z->dp = dp, z->d = dp->d, z->m = m, z->stage = dp->cfg.zero;
    z->L = m->cfg.n_layers, z->n_units = z->L + 2;
    z->tied = m->cfg.tie_word_embeddings;
    if (!m->base && dp->cfg.zero < 3)
        return err_set("parallel_config.zero_stage %d: the model was loaded without its weights (ZeRO-3 only)",
                       dp->cfg.zero);
    if (m->base_bf16) return err_set("parallel_config.zero_stage %d: a bf16 frozen base is not supported with ZeRO-2/3 yet",
                                     z->stage);
    space_plan(z, &z->ts, dp->params, dp->n_params, dp->bounds);
    z->weights_are_trained = !m->has_lora;
    z->shard_weights = z->stage >= 3;
    if (z->shard_weights) {
        if (m->has_lora) space_plan(z, &z->ws, m->params, m->n_params, NULL);
        else space_plan(z, &z->ws, dp->params, dp->n_params, dp->bounds);
        struct zspace *s = &z->ws;
        s->shard = xmalloc(sizeof(float) * (size_t)(s->hi - s->lo + 1));
        if (m->base) memcpy(s->shard, m->base + s->lo, sizeof(float) * (size_t)(s->hi - s->lo));
        else if (shard_fill(s, dp->cfg.weights_from)) return -1;
        int64_t e = max_unit(s, 0, 0), h = max_unit(s, z->L + 1, z->L + 1);
        slot_init(z, &z->wE, z->tied || e > h ? e : h);
        slot_init(z, &z->wH, z->tied ? h : 0);
        int64_t lw = max_unit(s, 1, z->L);
        slot_init(z, &z->wL[0], lw);
        slot_init(z, &z->wL[1], lw);
        m->k->mem_free(m->base);
        m->base = NULL;
        z->state_bytes += (int64_t)sizeof(float) * (s->hi - s->lo);
        for (int u = 0; u <= z->L + 1; u++) /* nothing is resident until gathered */
            for (int i = s->pu[u]; i < s->pu[u + 1]; i++) s->params[i].data = NULL;
        z->state_bytes += (int64_t)sizeof(float) * m->n_lora; /* the adapter stays whole */
    } else {
        z->state_bytes += (int64_t)sizeof(float) * (m->n_base + m->n_lora);
    }
    struct zspace *t = &z->ts;
    int64_t ge = max_unit(t, 0, 0), gh = max_unit(t, z->L + 1, z->L + 1);
    slot_init(z, &z->gE, z->tied || ge > gh ? ge : gh);
    slot_init(z, &z->gH, z->tied ? gh : 0);
    int64_t lg = max_unit(t, 1, z->L);
    slot_init(z, &z->gL[0], lg);
    slot_init(z, &z->gL[1], lg);
    for (int i = 0; i < t->n_params; i++) t->params[i].grad = NULL;
    if (m->has_lora) m->k->mem_free(m->dlora_mem), m->dlora_mem = NULL;
    else m->k->mem_free(m->dbase), m->dbase = NULL;
    z->state_bytes += (int64_t)sizeof(float) * (dp->hi - dp->lo); /* the gradient shard */
    model_bind(m);
    m->unit_hook = on_unit;
    m->unit_ctx = z;
    return 0;
}

void zero_free(struct dp *dp) {
    struct zero *z = dp->z;
    if (!z) return;
    struct zslot *all[] = {&z->wE, &z->wH, &z->wL[0], &z->wL[1], &z->gE, &z->gH, &z->gL[0], &z->gL[1]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        dist_req_wait(z->d, &all[i]->req);
        slot_free(all[i]);
    }
    if (z->m && z->m->unit_ctx == z) z->m->unit_hook = NULL, z->m->unit_ctx = NULL;
    /* the model's tensors pointed into the freed buffers */
    for (int i = 0; i < z->ts.n_params; i++) z->ts.params[i].grad = NULL;
    if (z->shard_weights)
        for (int i = 0; i < z->ws.n_params; i++) z->ws.params[i].data = NULL;
    space_free(&z->ws);
    space_free(&z->ts);
    free(z);
    dp->z = NULL;
}

void zero_step_begin(struct dp *dp) {
    struct zero *z = dp->z;
    memset(dp->shard_grad, 0, sizeof(float) * (size_t)(dp->hi - dp->lo));
    z->gE.unit = z->gH.unit = z->gL[0].unit = z->gL[1].unit = -1;
}

void zero_grads_finish(struct dp *dp) {
    struct zero *z = dp->z;
    grads_fold(z, &z->gE), grads_fold(z, &z->gH), grads_fold(z, &z->gL[0]), grads_fold(z, &z->gL[1]);
}

int zero_optimizer_step(struct dp *dp, struct adamw *o, float lr) {
    struct zero *z = dp->z;
    if (!z->shard_weights || !z->weights_are_trained) return 0;
    struct zspace *s = &z->ws;
    adamw_step_shard(o, s->params, s->n_params, s->lo, s->hi, s->shard, dp->shard_grad, lr);
    z->wE.valid = z->wH.valid = z->wL[0].valid = z->wL[1].valid = 0;
    return 1;
}

void zero_weights_changed(struct dp *dp) {
    struct zero *z = dp->z;
    if (z) z->wE.valid = z->wH.valid = z->wL[0].valid = z->wL[1].valid = 0;
}

int64_t zero_state_bytes(const struct dp *dp) { return dp->z ? dp->z->state_bytes : 0; }
int64_t zero_work_bytes(const struct dp *dp) { return dp->z ? dp->z->work_bytes : 0; }

float *zero_weight_shard(const struct dp *dp, int64_t *lo, int64_t *hi, struct param **params, int *n_params) {
    const struct zero *z = dp->z;
    if (!z || !z->shard_weights) return NULL;
    *lo = z->ws.lo, *hi = z->ws.hi;
    if (params) *params = z->ws.params, *n_params = z->ws.n_params;
    return z->ws.shard;
}

void zero_gather_all(struct dp *dp, float *out) {
    struct zero *z = dp->z;
    struct zspace *s = &z->ws;
    int *counts = xmalloc(sizeof(int) * (size_t)z->d->world), *displs = xmalloc(sizeof(int) * (size_t)z->d->world);
    memcpy(out + s->lo, s->shard, sizeof(float) * (size_t)(s->hi - s->lo));
    for (int u = 0; u <= z->L + 1; u++) {
        int64_t a = ua(s, u), b = ub(s, u);
        if (a == b) continue;
        geom(z, s, a, b, counts, displs);
        dist_allgatherv_f32(z->d, out + a, counts, displs);
    }
    free(counts), free(displs);
}
