/* tp_dist: see tp_dist.h. */
#include "train/tp_dist.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "model/tp.h"

static void allreduce_f32(void *ctx, float *x, int64_t n) { dist_allreduce_sum_f32(ctx, x, n); }
static void allreduce_f64(void *ctx, double *x, int64_t n) { dist_allreduce_sum_f64(ctx, x, n); }

/* Every message here is floats, doubles or int64s: gathered as floats in place. */
static void allgather(void *ctx, const void *send, void *recv, size_t bytes) {
    struct dist *d = ctx;
    CHECK(bytes % sizeof(float) == 0 && bytes / sizeof(float) < (1u << 31), "allgather of %zu bytes", bytes);
    memcpy((char *)recv + (size_t)d->rank * bytes, send, bytes);
    dist_allgather_block_f32(d, recv, (int)(bytes / sizeof(float)));
}

struct tp_comm tp_comm_of(struct dist *d) {
    return (struct tp_comm){.rank = d->rank, .size = d->world, .ctx = d, .allreduce_sum_f32 = allreduce_f32,
                            .allreduce_sum_f64 = allreduce_f64, .allgather = allgather};
}

/* A copy of table p (n) whose data are the gathered whole tensors (NULL data where !keep). */
static struct param *gather_table(const struct model *m, const struct param *p, int n, int keep) {
    struct param *q = xcalloc((size_t)n, sizeof *q);
    for (int i = 0; i < n; i++) {
        q[i] = p[i];
        q[i].data = tp_gather_param(m, &p[i]);
        q[i].grad = NULL;
        q[i].shape[0] = p[i].full_shape[0], q[i].shape[1] = p[i].full_shape[1];
        q[i].numel = p[i].n_dims == 2 ? q[i].shape[0] * q[i].shape[1] : q[i].shape[0];
        q[i].tp_dim = -1, q[i].tp_off = 0, q[i].tp_count = 1, q[i].tp_sum = TP_SUM_NONE;
        if (!keep) free(q[i].data), q[i].data = NULL;
    }
    return q;
}

/* The moments of table p, flat in opt (table order), gathered into one flat whole-tensor buffer. */
static float *gather_moment(const struct model *m, const struct param *p, int n, const float *flat, int keep) {
    int64_t total = 0, off = 0, foff = 0;
    for (int i = 0; i < n; i++) total += p[i].n_dims == 2 ? p[i].full_shape[0] * p[i].full_shape[1] : p[i].full_shape[0];
    float *out = keep ? xmalloc(sizeof(float) * (size_t)(total ? total : 1)) : NULL;
    for (int i = 0; i < n; i++) {
        struct param q = p[i];
        q.data = (float *)flat + off;
        float *full = tp_gather_param(m, &q);
        int64_t fn = p[i].n_dims == 2 ? p[i].full_shape[0] * p[i].full_shape[1] : p[i].full_shape[0];
        if (keep) memcpy(out + foff, full, sizeof(float) * (size_t)fn);
        free(full);
        off += p[i].numel, foff += fn;
    }
    return out;
}

void tp_view_gather(const struct model *m, const struct adamw *opt, int keep, struct model *view,
                    struct adamw *full_opt) {
    *view = *m;
    memset(&view->tp, 0, sizeof view->tp);
    m->k->sync();
    int n;
    struct param *p = model_trainable((struct model *)m, &n);
    struct param *q = gather_table(m, p, n, keep);
    if (m->has_lora) view->lora_params = q;
    else view->params = q;
    *full_opt = *opt;
    full_opt->m = gather_moment(m, p, n, opt->m, keep);
    full_opt->v = gather_moment(m, p, n, opt->v, keep);
    full_opt->n = 0;
    for (int i = 0; i < n; i++) full_opt->n += q[i].numel;
}

void tp_view_free(struct model *view, struct adamw *full_opt) {
    int n;
    struct param *q = model_trainable(view, &n);
    for (int i = 0; i < n; i++) free(q[i].data);
    free(q);
    free(full_opt->m), free(full_opt->v);
    memset(view, 0, sizeof *view);
}
