/* trainer: the finetune / train loop. Loads the model (full fine-tuning or LoRA, fresh or
 * continuing a PEFT adapter), builds the data pipeline, runs optimizer steps with gradient
 * accumulation, logs (console, metrics.jsonl, TensorBoard), evaluates, checkpoints
 * periodically and on SIGINT/SIGTERM, resumes exactly, and writes the final HF model folder
 * or PEFT adapter folder into output_dir. */
#pragma once

#include "train/config.h"

struct dist_grid;

/* pretrain: `csft train` semantics (whole-text loss). g: the process grid (dist/dist.h), NULL
 * or a world of 1 for one process. Returns 0, or -1 with err. */
int trainer_run(const struct run_config *cfg, int pretrain, struct dist_grid *g);
