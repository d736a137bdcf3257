/* checkpoint: training checkpoints that never lose work. Each is a folder
 * <output_dir>/checkpoints/checkpoint-<step>/ holding the trainable weights in the format the
 * ecosystem loads (an HF model folder for full fine-tuning, a PEFT adapter folder for LoRA),
 * the AdamW moments (optimizer.safetensors, by parameter name, so any world size can load
 * them), trainer_state.json (step, data position, RNG) and the resolved config.yaml. A
 * checkpoint is written under a temporary name, fsynced and renamed into place, so a crash
 * or a full disk leaves the earlier checkpoints intact; trainer_state.json is written last. */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "dist/dist.h"
#include "model/model.h"
#include "train/optim.h"

struct train_state {
    int64_t step;          /* optimizer steps done */
    int64_t epoch;         /* current epoch (0-based) */
    int64_t next_row;      /* next row of the epoch's row plan */
    int64_t skipped_steps; /* non-finite steps skipped */
    int64_t tokens_seen;
    uint64_t dropout_seed;
    uint64_t seed;
    /* eval bookkeeping (save_best, early stopping): kept across resumes */
    int64_t best_step;                 /* step of the lowest eval loss; 0 = no eval yet */
    double best_eval_loss;             /* valid when best_step > 0 */
    int64_t evals_without_improvement; /* the early-stopping patience counter */
    int64_t best_checkpoint_step;      /* checkpoint-<N> kept as the best (save_best); 0 = none */
};

/* What one rank writes of the trainable tensors: the flat range [lo, hi) of their
 * concatenation in param-table order, with its weights (w[j - lo]; NULL: the params' own data)
 * and AdamW moments (m[j - lo], v[j - lo]). One process: [0, n) with the whole state. */
struct ckpt_part {
    int64_t lo, hi;
    const float *w;
    const float *m, *v;
    int tp_adapter_group; /* tensor parallelism with LoRA: this rank is in the tp group of rank 0,
                             which gathers and writes the adapter */
};

/* Writes checkpoint-<step> (replacing one of the same step), then prunes to keep_last
 * checkpoints (0 = keep all; checkpoint-<st->best_checkpoint_step> is never removed). config_yaml may be NULL. base_name: recorded in adapters. */
int checkpoint_save(const char *output_dir, const struct model *m, const struct adamw *opt, const struct train_state *st,
                    const char *config_yaml, int keep_last, const char *base_name, char **saved_path);
/* The same written by every rank of d at once (every rank calls it; d NULL: one process):
 * each writes its part of the weights (full fine-tuning; rank 0 writes an adapter whole)
 * and of the moments into the shared files, and a checksum manifest (checksums-<rank>.txt)
 * of what it wrote; rank 0 writes the small files, its manifest and renames the folder into
 * place, so an interrupted save leaves only a temporary folder. The files are the ones one
 * process writes. Under tensor parallelism each rank's part is of its slices, written where
 * they lie in the whole tensors: nothing but a LoRA adapter is ever gathered. Returns the
 * same status on every rank. */
int checkpoint_save_dist(struct dist *d, const char *output_dir, const struct model *m, const struct ckpt_part *part,
                         int64_t opt_step, const struct train_state *st, const char *config_yaml, int keep_last,
                         const char *base_name, char **saved_path);
/* An HF model folder (model*.safetensors, config.json) written by every rank of d at once,
 * each its part of the weights (part->m/v unused): the bytes of model_save(m, dir, bf16,
 * max_shard_bytes). */
int checkpoint_save_model_dist(struct dist *d, const char *dir, const struct model *m, const struct ckpt_part *part,
                               int bf16, size_t max_shard_bytes);
/* The newest complete checkpoint folder under output_dir (malloc'd), or NULL (no error) if none. */
char *checkpoint_find_latest(const char *output_dir);
/* Checks every file of a checkpoint against its checksum manifests: -1 with err naming the
 * file and byte range that differs (or is missing). Checkpoints from before manifests: 0. */
int checkpoint_verify(const char *path);
/* The newest checkpoint that verifies; each damaged newer one is reported on warn ("...:
 * falling back to ...") and skipped. NULL without err if there is none; NULL with err (and
 * *all_damaged = 1) if every one is damaged. */
char *checkpoint_find_resumable(const char *output_dir, FILE *warn, int *all_damaged);
/* Parses trainer_state.json's text (file names it in errors): counts must be whole numbers
 * in [0, 2^53]. */
int checkpoint_parse_state(const char *text, const char *file, struct train_state *st, int64_t *optimizer_step);
/* Restores trainable weights (adapter or full weights), optimizer moments and state. */
int checkpoint_load(const char *path, struct model *m, struct adamw *opt, struct train_state *st);
/* Restores only the trainable weights of a checkpoint (adapter or full weights). */
int checkpoint_load_weights(const char *path, struct model *m);
/* The same for the flat range [lo, hi) of the trainable tensors (this rank's slices under
 * tensor parallelism) into shard (hi - lo floats): a ZeRO-3 weight shard. */
int checkpoint_load_weights_part(const char *path, struct model *m, int64_t lo, int64_t hi, float *shard);
/* Only trainer_state.json (values checked: none negative); *opt_step: AdamW steps taken. */
int checkpoint_load_state(const char *path, struct train_state *st, int64_t *opt_step);
/* Only the AdamW moments of the flat range [lo, hi) of the trainable tensors (any world size
 * wrote them): mo[j - lo], vo[j - lo]. */
int checkpoint_load_optimizer(const char *path, struct model *m, int64_t lo, int64_t hi, float *mo, float *vo);
/* rm -r. */
int path_remove_tree(const char *path);
