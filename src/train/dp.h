/* dp: data-parallel training on top of dist. Gradients of the flat trainable buffer are
 * summed across ranks in buckets (each rank already scaled them by 1 / global token count,
 * so the sum is the global mean), started as layers finish their backward when overlap is on.
 * ZeRO stage 1 shards the AdamW state: gradients are reduce-scattered, each rank clips with
 * the global norm and updates its slice of the flat parameter space, then the parameters are
 * allgathered. Optimizer state is saved and loaded in full, so checkpoints are world-size free. */
#pragma once
#include <stdint.h>

#include "dist/dist.h"
#include "model/model.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/step.h"

struct dp_config {
    int zero;             /* ZeRO stage: 1 sharded optimizer state, 2 + gradients, 3 + weights (train/zero.h) */
    int overlap;          /* start bucket communication during the backward */
    int64_t bucket_elems; /* floats per bucket (<= 0: 4M, 16 MB) */
    /* ZeRO-3 with a model holding only its table (model_load_shape): each rank reads its shard
     * of the weights from this model folder; NULL: random init (std 0.02, norms 1; benchmarks). */
    const char *weights_from;
};

struct dp {
    struct dist *d;
    struct model *m;
    struct dp_config cfg;
    struct param *params;
    int n_params;
    float *data, *grad; /* the flat trainable buffer (params[0].data...) and its gradient */
    int64_t n;
    int64_t *bounds; /* (world+1) shard boundaries of the flat space; rank r owns [bounds[r], bounds[r+1]) */
    int64_t lo, hi;  /* this rank's shard (the whole space without ZeRO) */
    float *shard_grad;    /* (hi-lo) summed gradient of the shard (ZeRO only) */
    int64_t *ready_from;  /* (n_layers) once layer l's backward is done, grads [ready_from[l], n) are final */
    int *counts, *displs; /* (world) scratch */
    int *pool, pool_rows; /* (pool_rows, world) counts of the reduce-scatters in flight (ZeRO) */
    /* backward state */
    int armed;
    int64_t sent_from; /* grads [sent_from, n) have been handed to communication */
    /* statistics (seconds, summed over steps) */
    double wait_s;      /* exposed: waiting for gradient buckets after the backward */
    double gather_s;    /* ZeRO parameter allgather */
    int64_t overlapped; /* gradient elements of the last step sent while the backward still ran */
    struct zero *z;     /* stages 2 and 3 */
};

/* Sets up data parallelism for m's trainable tensors (call after any LoRA attach). The
 * trainable tensors must be one contiguous buffer (model.c and lora.c lay them out so);
 * all ranks must hold the same shapes. Attaches the backward hook to m. -1 with err. */
int dp_init(struct dp *dp, struct dist *d, struct model *m, const struct dp_config *cfg);
void dp_free(struct dp *dp);
/* Bytes of model state on this rank: weights and gradients as allocated (sharded ones counted
 * by their shard) plus the AdamW moments of o. */
int64_t dp_state_bytes(const struct dp *dp, const struct adamw *o);
/* The part of a checkpoint this rank writes (checkpoint_save_dist): its shard of the flat
 * space with its weights and moments (without ZeRO: an equal share of the replicated state). */
struct ckpt_part dp_ckpt_part(const struct dp *dp, const struct adamw *o);
/* AdamW state for this rank: the whole space, or its shard under ZeRO. */
void dp_adamw_init(const struct dp *dp, struct adamw *o, float beta1, float beta2, float eps,
                   float weight_decay);
/* The train_step hook that runs the step data-parallel through dp. */
struct step_comm dp_step_comm(struct dp *dp);

/* Rank `rank`'s share of a global micro-batch: rows [rank*B/world, (rank+1)*B/world), no copy.
 * -1 with err if B is not a multiple of world. */
int dp_shard_rows(struct micro_batch *out, const struct micro_batch *global, int rank, int world);
/* Round-robin share of a stream of micro-batches: rank takes global micro-batch i if this is 1. */
static inline int dp_owns(int64_t i, int rank, int world) { return (int)(i % world) == rank; }

/* Checkpoints. Full m and v (n floats each, in param-table order, the layout adamw_init
 * uses with one process) land on root; m_full/v_full are only touched on root. */
void dp_optim_gather(struct dp *dp, const struct adamw *o, float *m_full, float *v_full, int root);
/* Inverse: root holds the full m and v (and o->step); every rank takes its part. */
void dp_optim_scatter(struct dp *dp, struct adamw *o, const float *m_full, const float *v_full, int root);
