/* optim: see optim.h. Update rule of torch.optim.AdamW (single-tensor path):
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#include "core/util.h"

void adamw_init(struct adamw *o, const struct param *params, int n_params, float beta1, float beta2, float eps,
                float weight_decay) {
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    for (int i = 0; i < n_params; i++) o->n += params[i].numel;
    o->m = xcalloc((size_t)o->n, sizeof(float));
    o->v = xcalloc((size_t)o->n, sizeof(float));
}

void adamw_free(struct adamw *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

void adamw_step(struct adamw *o, struct param *params, int n_params, float lr) {
    o->step++;
    /* torch computes the bias corrections as Python floats (double), then uses them as scalars */
    double bc1 = 1.0 - pow((double)o->beta1, (double)o->step), bc2 = 1.0 - pow((double)o->beta2, (double)o->step);
    float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2), b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    int64_t off = 0;
    for (int i = 0; i < n_params; i++) {
        struct param *p = &params[i];
        float decay = p->decay ? (float)(1.0 - (double)lr * o->weight_decay) : 1.0f;
        float *w = p->data, *g = p->grad, *m = o->m + off, *v = o->v + off;
#pragma omp parallel for schedule(static)
        for (int64_t j0 = 0; j0 < p->numel; j0 += 1024) {
            int64_t j1 = j0 + 1024 < p->numel ? j0 + 1024 : p->numel, j = j0;
#ifdef __AVX__
            /* 8 at a time: the same operations in the same order (bitwise equal to the scalar
             * loop; scalar sqrtf is not auto-vectorized because of errno) */
            typedef float v8 __attribute__((vector_size(32)));
            for (; j + 8 <= j1; j += 8) {
                v8 wv, gv, mv, vv;
                memcpy(&wv, w + j, 32), memcpy(&gv, g + j, 32), memcpy(&mv, m + j, 32), memcpy(&vv, v + j, 32);
                wv *= decay;
                mv += (gv - mv) * (1.0f - b1);
                vv = vv * b2 + (1.0f - b2) * gv * gv;
                wv -= step_size * mv / ((v8)_mm256_sqrt_ps((__m256)vv) / bc2_sqrt + eps);
                memcpy(w + j, &wv, 32), memcpy(m + j, &mv, 32), memcpy(v + j, &vv, 32);
            }
#endif
            for (; j < j1; j++) {
                w[j] *= decay;
                m[j] += (g[j] - m[j]) * (1.0f - b1);
                v[j] = v[j] * b2 + (1.0f - b2) * g[j] * g[j];
                w[j] -= step_size * m[j] / (sqrtf(v[j]) / bc2_sqrt + eps);
            }
        }
        off += p->numel;
    }
}

double grad_global_norm(const struct param *params, int n_params) {
    double ss = 0;
    for (int i = 0; i < n_params; i++) {
        const float *g = params[i].grad;
        double s = 0;
#pragma omp parallel for reduction(+ : s)
        for (int64_t j = 0; j < params[i].numel; j++) s += (double)g[j] * g[j];
        ss += s;
    }
    return sqrt(ss);
}

void grad_clip(struct param *params, int n_params, double norm, double max_norm) {
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    float c = (float)coef;
    for (int i = 0; i < n_params; i++) {
        float *g = params[i].grad;
#pragma omp parallel for
        for (int64_t j = 0; j < params[i].numel; j++) g[j] *= c;
    }
}

double lr_at(const struct lr_schedule *s, int64_t step) {
    double k = (double)(step - 1), w = (double)s->warmup_steps, total = (double)s->total_steps, f;
    if (k < w) return s->lr * k / (w > 1 ? w : 1);
    double floor_ = s->min_lr_ratio;
    switch (s->type) {
    case LR_SCHEDULE_CONSTANT: f = 1.0; break;
    case LR_SCHEDULE_LINEAR: f = fmax(0.0, (total - k) / fmax(1.0, total - w)); break;
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
            f = floor_ + (1 - floor_) * 0.5 * (1.0 + cos(M_PI * fmin(1.0, progress)));
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
