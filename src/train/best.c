/* best: see best.h. */
#include "train/best.h"

#include <math.h>

#include "core/err.h"

struct eval_outcome best_track_eval(struct train_state *st, int64_t step, double eval_loss, int patience) {
    struct eval_outcome o = {0, 0};
    if (isfinite(eval_loss) && (st->best_step <= 0 || eval_loss < st->best_eval_loss)) {
        st->best_step = step;
        st->best_eval_loss = eval_loss;
        st->evals_without_improvement = 0;
        o.improved = 1;
    } else {
        st->evals_without_improvement++;
    }
    o.stop = patience > 0 && st->evals_without_improvement >= patience;
    return o;
}

int best_check_config(const struct run_config *cfg) {
    if (cfg->load_best_at_end && !cfg->save_best)
        return err_set("load_best_at_end needs save_best: true (the best checkpoint is what it loads)");
    const char *k = cfg->save_best ? "save_best" : cfg->early_stopping_patience > 0 ? "early_stopping_patience"
                                                 : cfg->eval_generations > 0    ? "eval_generations" : NULL;
    if (k && cfg->eval_dataset.n_data_files == 0) return err_set("%s needs an eval_dataset (eval_dataset.data_files)", k);
    return 0;
}
