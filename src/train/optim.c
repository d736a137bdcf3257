/* optim: see optim.h. Update rule of torch.optim.AdamW (single-tensor path):
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void adamw_init(struct adamw *o, const struct param *params, int n_params, float beta1, float beta2, float eps,
                float weight_decay) {
    int64_t n = 0;
    for (int i = 0; i < n_params; i++) n += params[i].numel;
    adamw_init_n(o, n, beta1, beta2, eps, weight_decay);
}

void adamw_init_n(struct adamw *o, int64_t n, float beta1, float beta2, float eps, float weight_decay) {
    memset(o, 0, sizeof *o);
    o->k = kernels_selected();
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    o->n = n;
    o->m = o->k->mem_alloc(sizeof(float) * (size_t)(n ? n : 1));
    o->v = o->k->mem_alloc(sizeof(float) * (size_t)(n ? n : 1));
}

void adamw_free(struct adamw *o) {
    if (o->k) o->k->mem_free(o->m), o->k->mem_free(o->v);
    memset(o, 0, sizeof *o);
}

void adamw_step(struct adamw *o, struct param *params, int n_params, float lr) {
    adamw_step_range(o, params, n_params, 0, o->n, NULL, lr);
}

void adamw_step_range(struct adamw *o, struct param *params, int n_params, int64_t lo, int64_t hi, const float *grad,
                      float lr) {
    o->step++;
    /* torch computes the bias corrections as Python floats (double), then uses them as scalars */
    double bc1 = 1.0 - pow((double)o->beta1, (double)o->step), bc2 = 1.0 - pow((double)o->beta2, (double)o->step);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2), b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    int64_t off = 0;
    for (int i = 0; i < n_params && off < hi; i++) {
        struct param *p = &params[i];
        int64_t a = off > lo ? off : lo, b = off + p->numel < hi ? off + p->numel : hi;
        if (a < b) {
            float decay = p->decay ? (float)(1.0 - (double)lr * o->weight_decay) : 1.0f;
            const float *g = grad ? grad + (a - lo) : p->grad + (a - off);
            o->k->adamw(p->data + (a - off), o->m + (a - lo), o->v + (a - lo), g, b - a, decay, b1, b2, step_size,
                        bc2_sqrt, eps);
        }
        off += p->numel;
    }
}

void adamw_step_shard(struct adamw *o, const struct param *params, int n_params, int64_t lo, int64_t hi, float *w,
                      const float *grad, float lr) {
    o->step++;
    double bc1 = 1.0 - pow((double)o->beta1, (double)o->step), bc2 = 1.0 - pow((double)o->beta2, (double)o->step);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2), b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    int64_t off = 0;
    for (int i = 0; i < n_params && off < hi; i++) {
        const struct param *p = &params[i];
        int64_t a = off > lo ? off : lo, b = off + p->numel < hi ? off + p->numel : hi;
        if (a < b) {
            float decay = p->decay ? (float)(1.0 - (double)lr * o->weight_decay) : 1.0f;
            o->k->adamw(w + (a - lo), o->m + (a - lo), o->v + (a - lo), grad + (a - lo), b - a, decay, b1, b2,
                        step_size, bc2_sqrt, eps);
        }
        off += p->numel;
    }
}

double grad_global_norm(const struct param *params, int n_params) {
    const struct kernels *K = kernels_selected();
    double ss = 0;
    for (int i = 0; i < n_params; i++) ss += K->sumsq(params[i].grad, params[i].numel);
    return sqrt(ss);
}

void grad_clip(struct param *params, int n_params, double norm, double max_norm) {
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    for (int i = 0; i < n_params; i++) kernels_selected()->scale(params[i].grad, params[i].numel, (float)coef);
}

double lr_at(const struct lr_schedule *s, int64_t step) {
    double k = (double)(step - 1), w = (double)s->warmup_steps, total = (double)s->total_steps, f;
    if (k < w) return s->lr * k / (w > 1 ? w : 1);
    double floor_ = s->min_lr_ratio;
    switch (s->type) {
    case LR_SCHEDULE_CONSTANT: f = 1.0; break;
    case LR_SCHEDULE_LINEAR: f = floor_ + (1 - floor_) * fmax(0.0, (total - k) / fmax(1.0, total - w)); break;
    case LR_SCHEDULE_COSINE: {
        double progress = (k - w) / fmax(1.0, total - w);
        f = fmax(0.0, 0.5 * (1.0 + cos(M_PI * progress)));
        f = floor_ + (1 - floor_) * f;
        break;
    }
    case LR_SCHEDULE_WSD: {
        double decay_start = total - (double)s->decay_steps;
        if (k < decay_start) f = 1.0;
        else {
            double progress = (k - decay_start) / fmax(1.0, (double)s->decay_steps);
            f = floor_ + (1 - floor_) * (1.0 - fmin(1.0, progress)); /* linear, as documented */
        }
        break;
    }
    default: f = 1.0;
    }
    return s->lr * f;
}

int lr_schedule_parse(const char *name, enum lr_schedule_type *out) {
    static const struct {
        const char *name;
        enum lr_schedule_type t;
    } names[] = {{"constant", LR_SCHEDULE_CONSTANT},
                 {"linear", LR_SCHEDULE_LINEAR},
                 {"cosine", LR_SCHEDULE_COSINE},
                 {"wsd", LR_SCHEDULE_WSD},
                 {"warmup_stable_decay", LR_SCHEDULE_WSD}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].t;
            return 0;
        }
    return -1;
}
