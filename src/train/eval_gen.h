/* eval_gen: generations at each eval, for the report. For the first n sequences of the eval
 * dataset, the prompt is the tokens before the first trained token (what the model was asked),
 * the reference is the trained span (what it should answer); the model answers greedily with
 * a KV cache. Each result is appended to events.jsonl as a "generation" event (report.h). */
#pragma once
#include <stdint.h>

#include "data/dataset.h"
#include "model/model.h"

struct pipeline;

/* max_new: tokens at most per answer (also at most the reference's length + 16). Sequences
 * with no trained token or no prompt are skipped. Text is decoded with p's tokenizer when it
 * has one (loaded here if lazy), else the ids are shown. */
int eval_generations(struct model *m, const struct dataset *ds, struct pipeline *p, int n, int max_new, int64_t step,
                     const char *output_dir);
