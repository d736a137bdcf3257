/* pack: turns the tokenized sequences of a dataset into rows of training batches, per epoch.
 * The row plan of an epoch is a pure function of (dataset, seed, epoch, options), so the
 * position in the data stream is just (epoch, next row): a checkpoint saves it, resume
 * restores it exactly, and data-parallel ranks split rows by index. Packing is best-fit
 * decreasing within windows of the (shuffled) order: several sequences share a row, never
 * split, each with positions restarting at 0 so attention stays inside it (kernels.h).
 * Without packing each row holds one sequence and batches are padded to their longest row. */
#pragma once
#include <stdint.h>

#include "data/dataset.h"

struct row_plan {
    int64_t n_rows;
    int64_t *row_start; /* (n_rows+1) into seqs */
    int64_t *seqs;      /* sequence indices, row by row */
    int64_t *row_len;   /* tokens in each row */
};

/* best_fit: best-fit decreasing per window of the shuffled order. pack: MindSpore Transformers'
 * PackingHandler: greedy in dataset order (a row is closed when the next sequence does not fit),
 * then the rows are shuffled (when shuffling). */
enum pack_strategy { PACK_STRATEGY_BEST_FIT, PACK_STRATEGY_PACK };

struct pack_options {
    int packing;
    enum pack_strategy strategy;
    int shuffle;
    int seq_length; /* row capacity when packing */
    uint64_t seed;
};

void row_plan_build(struct row_plan *p, const struct dataset *ds, const struct pack_options *opt, int64_t epoch);
void row_plan_free(struct row_plan *p);

/* A batch of B rows of T tokens; ids/labels/pos (B*T). Reused across calls. */
struct batch {
    int B, T;
    int32_t *ids, *labels, *pos;
    int64_t cap;
    int64_t n_tokens;  /* real (non-pad) tokens */
    int64_t n_trained; /* tokens with a label (before the shift) */
};

/* Fills rows [row0, row0 + n_rows) of the plan (n_rows may be 0: an empty batch). Labels are
 * the token ids where the mask is set, -100 elsewhere and at each sequence's first token
 * (no previous token predicts it); padding uses pad_id, label -100, its own positions. */
void batch_fill(struct batch *b, const struct dataset *ds, const struct row_plan *p, int64_t row0, int n_rows,
                int32_t pad_id);
void batch_free(struct batch *b);
