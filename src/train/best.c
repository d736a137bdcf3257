/* best: see best.h. */
#include "train/best.h"

#include <math.h>

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
