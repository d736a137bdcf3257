/* step: see step.h. */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "data/pack.h"

int train_step(struct model *m, struct adamw *opt, const struct micro_batch *mbs, int n_mb, double lr,
               double max_grad_norm, const struct step_comm *comm, struct step_result *res) {
    int64_t max_n = 0;
    for (int i = 0; i < n_mb; i++)
        if ((int64_t)mbs[i].B * mbs[i].T > max_n) max_n = (int64_t)mbs[i].B * mbs[i].T;
    int32_t *targets = xmalloc(sizeof(int32_t) * (size_t)(max_n ? max_n : 1));
    double counts[2] = {0, 0}; /* trained tokens, loss sum */
    for (int i = 0; i < n_mb; i++) counts[0] += (double)model_shift_labels(targets, mbs[i].labels, mbs[i].B, mbs[i].T);
    if (comm && comm->allreduce_sum_f64) comm->allreduce_sum_f64(counts, 1, comm->ctx);
    float scale = counts[0] > 0 ? (float)(1.0 / counts[0]) : 0.0f;
    model_zero_grad(m);
    m->training = 1;
    for (int i = 0; i < n_mb; i++) {
        model_shift_labels(targets, mbs[i].labels, mbs[i].B, mbs[i].T);
        m->dropout_seed = rng_step_seed(m->dropout_seed, i);
        model_forward(m, mbs[i].ids, mbs[i].pos, mbs[i].B, mbs[i].T);
        if (comm && comm->backward_begin) comm->backward_begin(i, n_mb, comm->ctx);
        counts[1] += model_backward(m, targets, scale);
    }
    m->training = 0;
    free(targets);
    int n_params;
    struct param *params = model_trainable(m, &n_params);
    if (comm && comm->allreduce_sum_f64) comm->allreduce_sum_f64(counts + 1, 1, comm->ctx);
    if (comm && comm->allreduce_grads) comm->allreduce_grads(params, n_params, comm->ctx);
    res->n_tokens = (int64_t)counts[0];
    res->loss = counts[0] > 0 ? counts[1] / counts[0] : 0;
    /* under tensor parallelism each tensor's slices count once over the tp ranks */
    res->grad_norm = comm && comm->grad_norm ? comm->grad_norm(params, n_params, comm->ctx)
                     : model_tp_on(m)        ? sqrt(tp_grad_sumsq(m, params, n_params))
                                             : grad_global_norm(params, n_params);
    if (!isfinite(res->loss) || !isfinite(res->grad_norm))
        return err_set("non-finite loss (%g) or gradient norm (%g); weights left unchanged", res->loss, res->grad_norm);
    if (comm && comm->optimizer_step) {
        comm->optimizer_step(opt, params, n_params, (float)lr, res->grad_norm, max_grad_norm, comm->ctx);
        return 0;
    }
    if (max_grad_norm > 0) grad_clip(params, n_params, res->grad_norm, max_grad_norm);
    adamw_step(opt, params, n_params, (float)lr);
    return 0;
}

double eval_loss(struct model *m, const struct micro_batch *mbs, int n_mb, int64_t *n_tokens) {
    double sum = 0;
    int64_t n = 0;
    for (int i = 0; i < n_mb; i++) {
        int32_t *targets = xmalloc(sizeof(int32_t) * (size_t)mbs[i].B * mbs[i].T);
        n += model_shift_labels(targets, mbs[i].labels, mbs[i].B, mbs[i].T);
        model_forward(m, mbs[i].ids, mbs[i].pos, mbs[i].B, mbs[i].T);
        sum += model_loss(m, targets);
        free(targets);
    }
    if (n_tokens) *n_tokens = n;
    return n > 0 ? sum / n : 0;
}

double eval_dataset_loss(struct model *m, const struct dataset *ds, int packing, int seq_length, int batch_size,
                         int32_t pad_id, int64_t *n_tokens) {
    struct row_plan plan;
    struct pack_options po = {.packing = packing, .seq_length = seq_length};
    row_plan_build(&plan, ds, &po, 0);
    struct batch b = {0};
    double sum = 0;
    int64_t n = 0;
    int32_t *targets = NULL;
    for (int64_t row = 0; row < plan.n_rows; row += batch_size) {
        int nr = (int)(plan.n_rows - row < batch_size ? plan.n_rows - row : batch_size);
        batch_fill(&b, ds, &plan, row, nr, pad_id);
        targets = xrealloc(targets, sizeof(int32_t) * (size_t)b.B * b.T);
        n += model_shift_labels(targets, b.labels, b.B, b.T);
        model_forward(m, b.ids, b.pos, b.B, b.T);
        sum += model_loss(m, targets);
    }
    free(targets);
    batch_free(&b);
    row_plan_free(&plan);
    if (n_tokens) *n_tokens = n;
    return n ? sum / n : NAN;
}
