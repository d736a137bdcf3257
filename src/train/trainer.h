/* trainer: the finetune / train loop. Loads the model (full fine-tuning or LoRA, fresh or
 * continuing a PEFT adapter), builds the data pipeline, runs optimizer steps with gradient
 * accumulation, logs (console, metrics.jsonl, TensorBoard), evaluates, checkpoints
 * periodically and on SIGINT/SIGTERM, resumes exactly, and writes the final HF model folder
 * or PEFT adapter folder into output_dir. */
#pragma once

#include "train/config.h"

/* Distributed context (dist/): rank, world size and the collectives train_step needs; NULL
 * runs as one process. */
struct trainer_dist {
    int rank, world;
    void (*allreduce_sum_f64)(double *x, int n, void *ctx);
    void (*allreduce_grads)(struct param *params, int n_params, void *ctx);
    void (*barrier)(void *ctx);
    void *ctx;
};

/* pretrain: `csft train` semantics (whole-text loss). Returns 0, or -1 with err. */
int trainer_run(const struct run_config *cfg, int pretrain, const struct trainer_dist *dist);
