/* checkpoint_mf: checkpoint_format: ckpt. Beside csft's own checkpoints, the weights are written
 * the way MindSpore Transformers' CheckpointMonitor lays them out (sink mode, sink_size 1):
 * output_dir/checkpoint/rank_0/<prefix>_rank_0-<step>_1.ckpt with MindSpore Transformers'
 * parameter names (the LoRA matrices alone for a LoRA run, as <cell>.mindpet_delta_lora_a/b),
 * plus rank_0/meta.json naming the last file; the newest `keep` files are kept (0 = all). */
#pragma once
#include <stdint.h>

struct model;

int checkpoint_mf_save(const struct model *m, const char *output_dir, const char *prefix, int64_t step, int keep);
