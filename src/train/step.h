/* step: one optimizer step over one or more micro-batches (gradient accumulation). The
 * trained tokens of the whole step are counted first, so the loss is the mean over all of
 * them and accumulated micro-batches give the same gradient as one big batch (HF's
 * num_items_in_batch rule). Then global-norm clipping and AdamW. */
#pragma once
#include <stdint.h>

#include "model/model.h"
#include "train/optim.h"

struct micro_batch {
    const int32_t *ids, *labels, *pos; /* (B*T) each; labels unshifted, -100 ignored */
    int B, T;
};

struct step_result {
    double loss;      /* mean over the step's trained tokens */
    double grad_norm; /* before clipping */
    int64_t n_tokens; /* trained tokens */
};

/* Hook for data parallelism: sums n values across ranks in place (NULL = one process).
 * train/dp.h fills one. The members after ctx are optional (NULL = the one-process path). */
struct step_comm {
    void (*allreduce_sum_f64)(double *x, int n, void *ctx);
    void (*allreduce_grads)(struct param *params, int n_params, void *ctx);
    void *ctx;
    /* Before micro-batch mb's backward (overlapped communication arms on the last one). */
    void (*backward_begin)(int mb, int n_mb, void *ctx);
    /* Replace grad_global_norm and clip + adamw_step when the optimizer state is sharded. */
    double (*grad_norm)(struct param *params, int n_params, void *ctx);
    void (*optimizer_step)(struct adamw *opt, struct param *params, int n_params, float lr, double grad_norm,
                           double max_grad_norm, void *ctx);
};

/* Returns -1 (with err) if the loss or gradient norm is not finite; the weights are then
 * left unchanged. max_grad_norm <= 0 disables clipping. */
int train_step(struct model *m, struct adamw *opt, const struct micro_batch *mbs, int n_mb, double lr,
               double max_grad_norm, const struct step_comm *comm, struct step_result *res);
struct dataset;
/* Mean loss over every trained token of ds (NAN if none), in batches of batch_size rows of its
 * unshuffled row plan (packed or not); *n_tokens gets the token count. For eval. */
double eval_dataset_loss(struct model *m, const struct dataset *ds, int packing, int seq_length, int batch_size,
                         int32_t pad_id, int64_t *n_tokens);
/* Mean loss over the trained tokens of the micro-batches, without gradients. */
double eval_loss(struct model *m, const struct micro_batch *mbs, int n_mb, int64_t *n_tokens);
