/* tp: tensor parallelism (Megatron-LM style) for model.c. Each of the tp ranks holds a slice of
 * the decoder: q/k/v and gate/up by output rows (column-parallel), o_proj and down_proj by
 * input columns (row-parallel, one all-reduce after each), the embedding and the LM head by
 * vocabulary rows (vocab-parallel embedding and cross-entropy, the logits never gathered).
 * Key/value heads are split when tp divides them, else replicated on tp / KVH ranks each.
 * The communicator is a table of calls (struct tp_comm) so the model knows no MPI. Math and
 * layouts: docs/tp.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct model;
struct model_config;
struct param;
struct safetensors;

/* The tensor-parallel group of this rank; size <= 1 means no tensor parallelism. Every call
 * is collective over the group (same order on every rank). */
struct tp_comm {
    int rank, size;
    void *ctx;
    void (*allreduce_sum_f32)(void *ctx, float *x, int64_t n);  /* in place */
    void (*allreduce_sum_f64)(void *ctx, double *x, int64_t n); /* in place */
    /* recv (size * bytes) gets every rank's send (bytes), rank-major */
    void (*allgather)(void *ctx, const void *send, void *recv, size_t bytes);
};

/* How a gradient becomes final (param.tp_sum): already final, summed over all tp ranks
 * (replicated tensors fed by per-rank heads: q/k norms, column-parallel LoRA A), or summed
 * over the ranks holding the same replicated key/value head. */
enum tp_sum { TP_SUM_NONE, TP_SUM_ALL, TP_SUM_KV };

/* -1 with a message naming the sizes and the allowed values if tp ranks cannot split cfg:
 * heads, intermediate size and vocabulary divisible by tp, key/value heads divisible by tp or
 * dividing it. */
int tp_check_config(const struct model_config *cfg, int tp);

/* Reads param p's slice (its tp_dim / tp_off) of tensor `name`, whose full shape must be
 * p->full_shape; only the slice's rows are touched. */
int tp_read_param(const struct safetensors *st, const char *name, struct param *p);
/* Elements [first, first + count) of p's slice (flat in p->shape) of tensor `name` into out:
 * straight from the file without tensor parallelism, else the slice is read whole (one tensor's
 * slice of memory at a time) and the range copied out. */
int tp_read_param_range(const struct safetensors *st, const char *name, const struct param *p, int64_t first,
                        int64_t count, float *out);
/* Copies p's slice out of full (p->full_shape, row-major) into dst (p->shape). */
void tp_take_slice(float *dst, const float *full, const struct param *p);
/* The whole tensor of p (full_shape, malloc'd) on every rank (collective). */
float *tp_gather_param(const struct model *m, const struct param *p);

/* Collectives of the model's group (no-ops without tensor parallelism). */
void tp_allreduce(const struct model *m, float *x, int64_t n);
/* rc of an operation only tp rank 0 performed (a save), agreed by every rank: -1 everywhere
 * if it failed (ranks other than 0 get an error naming `what`). */
int tp_agree(const struct model *m, int rc, const char *what);

/* Vocab-parallel embedding: out (N,C) = wte[ids] where each rank holds rows [vocab_off,
 * vocab_off + vocab_l); rows of other ranks are zero before the all-reduce. Backward
 * accumulates only this rank's rows. */
void tp_embedding_forward(struct model *m, float *out, const int32_t *ids, int64_t N);
void tp_embedding_backward(struct model *m, float *dwte, const float *dout, const int32_t *ids, int64_t N);
/* Vocab-parallel LM head + cross-entropy, the contract of kernels.h's lm_head_ce: each rank
 * computes its (rows, vocab_l) logits per chunk; the row max, sum of exponentials and target
 * logit of every rank are exchanged (3 doubles per row and rank), never the logits. dh is
 * summed over the ranks before return. */
double tp_lm_head_ce(struct model *m, float *dh, float *dw, const float *h, const float *w, const int32_t *targets,
                     int64_t N, float grad_scale);

/* Around layer l's backward: set aside the gradients that come out partial on each rank
 * (tp_sum), then sum the new contributions over their group and add them back, so
 * accumulation over micro-batches stays exact and the layer's gradients are final when the
 * data-parallel hook sees them. */
void tp_partial_begin(struct model *m, int layer);
void tp_partial_end(struct model *m, int layer);
/* Sizes the scratch of tp_partial_* for the model's tables (after build or LoRA attach). */
void tp_plan_scratch(struct model *m);

/* Sum of squared gradients over the whole (tp-split) model: each tensor counted once
 * (params with tp_count), summed over the tp group. */
double tp_grad_sumsq(struct model *m, const struct param *params, int n_params);
/* The same for a slice [lo, hi) of the params' flat concatenation whose gradient is g (a ZeRO
 * shard): this rank's share only, not summed over any group. */
double tp_shard_sumsq(const struct param *params, int n_params, int64_t lo, int64_t hi, const float *g);
/* x (n) summed over the tp group (no-op without tensor parallelism). */
void tp_allreduce_f64(const struct model *m, double *x, int64_t n);
