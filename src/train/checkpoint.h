/* checkpoint: training checkpoints that never lose work. Each is a folder
 * <output_dir>/checkpoints/checkpoint-<step>/ holding the trainable weights in the format the
 * ecosystem loads (an HF model folder for full fine-tuning, a PEFT adapter folder for LoRA),
 * the AdamW moments (optimizer.safetensors, by parameter name, so any world size can load
 * them), trainer_state.json (step, data position, RNG) and the resolved config.yaml. A
 * checkpoint is written under a temporary name, fsynced and renamed into place, so a crash
 * or a full disk leaves the earlier checkpoints intact; trainer_state.json is written last. */
#pragma once
#include <stdint.h>

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
};

/* Writes checkpoint-<step> (replacing one of the same step), then prunes to keep_last
 * checkpoints (0 = keep all). config_yaml may be NULL. base_name: recorded in adapters. */
int checkpoint_save(const char *output_dir, const struct model *m, const struct adamw *opt, const struct train_state *st,
                    const char *config_yaml, int keep_last, const char *base_name, char **saved_path);
/* The newest complete checkpoint folder under output_dir (malloc'd), or NULL (no error) if none. */
char *checkpoint_find_latest(const char *output_dir);
/* Parses trainer_state.json's text (file names it in errors): counts must be whole numbers
 * in [0, 2^53]. */
int checkpoint_parse_state(const char *text, const char *file, struct train_state *st, int64_t *optimizer_step);
/* Restores trainable weights (adapter or full weights), optimizer moments and state. */
int checkpoint_load(const char *path, struct model *m, struct adamw *opt, struct train_state *st);
/* rm -r. */
int path_remove_tree(const char *path);
