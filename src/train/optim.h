/* optim: AdamW with torch.optim.AdamW's semantics (decoupled decay, bias correction),
 * global gradient-norm clipping as torch.nn.utils.clip_grad_norm_, and the learning-rate
 * schedules of transformers.optimization (constant, linear, cosine, warmup-stable-decay). */
#pragma once
#include <stdint.h>

#include "model/model.h"

struct adamw {
    const struct kernels *k; /* backend of the state (kernels_selected() at init) */
    float beta1, beta2, eps, weight_decay;
    int64_t step;   /* optimizer steps taken */
    int64_t n;      /* elements of state */
    float *m, *v;   /* first and second moments, concatenated in param-table order */
};

void adamw_init(struct adamw *o, const struct param *params, int n_params, float beta1, float beta2, float eps,
                float weight_decay);
/* State for n elements only: a ZeRO-1 shard of the flat parameter space (train/dp.h). */
void adamw_init_n(struct adamw *o, int64_t n, float beta1, float beta2, float eps, float weight_decay);
void adamw_free(struct adamw *o);
/* One update of every param with its grad at learning rate lr (decay only where p->decay). */
void adamw_step(struct adamw *o, struct param *params, int n_params, float lr);
/* The same update on the flat elements [lo, hi) of the params' concatenation only (a ZeRO-1
 * shard): the state holds hi - lo elements; grad[j - lo] is element j's gradient (NULL: the
 * params' own grads). adamw_step is the range [0, o->n). */
void adamw_step_range(struct adamw *o, struct param *params, int n_params, int64_t lo, int64_t hi, const float *grad,
                      float lr);

/* The same on a shard whose weights live apart from the params (ZeRO-3): w[j - lo] is element
 * j's weight, grad[j - lo] its gradient; the params give only sizes and decay flags. */
void adamw_step_shard(struct adamw *o, const struct param *params, int n_params, int64_t lo, int64_t hi, float *w,
                      const float *grad, float lr);

/* L2 norm of all gradients together (float64 accumulation). */
double grad_global_norm(const struct param *params, int n_params);
/* torch clip_grad_norm_: scale grads by min(1, max_norm / (norm + 1e-6)). */
void grad_clip(struct param *params, int n_params, double norm, double max_norm);

enum lr_schedule_type { LR_SCHEDULE_CONSTANT, LR_SCHEDULE_LINEAR, LR_SCHEDULE_COSINE, LR_SCHEDULE_WSD };

struct lr_schedule {
    enum lr_schedule_type type;
    double lr;           /* peak */
    int64_t warmup_steps;
    int64_t total_steps;
    int64_t decay_steps; /* WSD: the final decay phase */
    double min_lr_ratio; /* linear / cosine / WSD floor as a fraction of lr */
};

/* The lr used by optimizer step `step` (1-based), HF convention: lambda(step - 1), so the
 * first warmup step runs at lr 0. */
double lr_at(const struct lr_schedule *s, int64_t step);
/* Parses "constant", "linear", "cosine", "wsd" (also "warmup_stable_decay"); -1 if unknown. */
int lr_schedule_parse(const char *name, enum lr_schedule_type *out);
