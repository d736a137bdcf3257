/* best: the eval-loss bookkeeping behind save_best, load_best_at_end and early stopping, kept
 * in the train_state so a resumed run continues the same patience count (trainer_state.json). */
#pragma once
#include <stdint.h>

#include "train/checkpoint.h"
#include "train/config.h"

struct eval_outcome {
    int improved; /* a new lowest eval loss (strictly lower; the first eval always is) */
    int stop;     /* patience > 0 and that many evals in a row brought no improvement */
};

/* Records the eval loss of step in st. A non-finite loss never improves. */
struct eval_outcome best_track_eval(struct train_state *st, int64_t step, double eval_loss, int patience);
/* The eval-loss keys make sense together: load_best_at_end needs save_best; save_best,
 * early_stopping_patience and eval_generations need an eval_dataset. -1 + err naming the key. */
int best_check_config(const struct run_config *cfg);
