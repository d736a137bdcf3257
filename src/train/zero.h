/* zero: ZeRO stages 2 and 3 for dp (train/dp.h), driven by the model's unit hooks (model.h).
 * The flat trainable space keeps dp's contiguous shards [bounds[r], bounds[r+1]) (the last one
 * shorter when the size does not divide: the padding is at most world - 1 + 63 elements).
 * Stage 2: the model writes each unit's gradients (embedding, one layer, head) into a unit
 * buffer, which is reduce-scattered (non-blocking) as soon as the unit's backward is done;
 * each rank folds its part into its shard of the gradient. No full gradient buffer exists.
 * Stage 3: the weights are sharded too. Before a unit runs (forward or backward) it is
 * all-gathered into a unit buffer, the next unit's gather is started meanwhile and polled at
 * every unit boundary; AdamW updates the shard only. With LoRA the frozen base is what is
 * sharded and gathered (never reduce-scattered); the adapter follows stage 2.
 * Buffers (planned once): weights of the embedding, the head and two layers (stage 3),
 * gradients of the embedding, the head and two layers. */
#pragma once
#include <stdint.h>

struct dp;
struct adamw;
struct param;

/* Called by dp_init when cfg.zero >= 2, after the shard bounds are set: plans the units,
 * takes the shards, frees the model's full gradient (and, stage 3, weight) buffers and
 * installs the unit hook. -1 with err. */
int zero_init(struct dp *dp);
void zero_free(struct dp *dp);
/* Before the first micro-batch's backward of a step: the gradient shard starts at zero. */
void zero_step_begin(struct dp *dp);
/* After the last backward: waits for every reduce-scatter and folds it into the shard. */
void zero_grads_finish(struct dp *dp);
/* Stage 3 without LoRA: AdamW on the weight shard (grad: the clipped gradient shard); the
 * gathered unit buffers are stale afterwards. Returns 0 if the stage keeps weights whole
 * (the caller then updates and all-gathers them as ZeRO-1/2 do). */
int zero_optimizer_step(struct dp *dp, struct adamw *o, float lr);
/* Stage 3: the weight shard was changed outside the optimizer (loaded): gathered units are stale. */
void zero_weights_changed(struct dp *dp);
/* Bytes of model state this rank holds (weights, gradients: what the model and zero
 * allocated, AdamW state excluded) and of the unit work buffers. */
int64_t zero_state_bytes(const struct dp *dp);
int64_t zero_work_bytes(const struct dp *dp);
/* Stage 3: the weight shard of the sharded space (trainable base, or the frozen base with
 * LoRA): *lo, *hi in its flat param-table order, and its params. NULL below stage 3. */
float *zero_weight_shard(const struct dp *dp, int64_t *lo, int64_t *hi, struct param **params, int *n_params);
/* Stage 3: the whole unit u of the weight space gathered into out (every rank calls it). */
void zero_gather_all(struct dp *dp, float *out);
