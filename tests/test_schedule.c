/* Learning-rate schedules (src/train/optim.c lr_at) at every step of several runs against the
 * documented formulas written out directly: warmup from 0, then constant; linear to min_lr;
 * cosine to min_lr; wsd = warmup, stable at the peak, linear decay to min_lr over the last
 * decay_steps. HF convention: optimizer step s runs at lambda(s - 1). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "test.h"
#include "train/optim.h"

/* The documented formula for step s (1-based) with peak lr, floor min_lr. */
static double expected(enum lr_schedule_type type, double lr, double min_lr, int64_t warmup, int64_t total,
                       int64_t decay, int64_t s) {
    double k = (double)(s - 1);
    if (k < (double)warmup) return lr * k / (double)(warmup > 1 ? warmup : 1);
    double after = k - (double)warmup, span = (double)(total - warmup); /* steps into / length of the decay */
    switch (type) {
    case LR_SCHEDULE_CONSTANT: return lr;
    case LR_SCHEDULE_LINEAR:
        if (k >= (double)total) return min_lr;
        return lr - (lr - min_lr) * after / span;
    case LR_SCHEDULE_COSINE:
        if (k >= (double)total) return min_lr;
        return min_lr + (lr - min_lr) * (1 + cos(M_PI * after / span)) / 2;
    case LR_SCHEDULE_WSD: {
        int64_t start = total - decay;
        if (k < (double)start) return lr;
        if (k >= (double)total) return min_lr;
        return lr - (lr - min_lr) * (k - (double)start) / (double)decay;
    }
    }
    return NAN;
}

static void check(enum lr_schedule_type type, const char *name) {
    const struct {
        int64_t warmup, total, decay;
        double lr, min_lr;
    } runs[] = {{0, 10, 2, 1e-3, 0}, {3, 20, 5, 2e-4, 1e-5}, {10, 100, 10, 1e-4, 1e-6}, {1, 7, 3, 5e-3, 5e-4}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        struct lr_schedule s = {.type = type, .lr = runs[r].lr, .warmup_steps = runs[r].warmup,
                                .total_steps = runs[r].total, .decay_steps = runs[r].decay,
                                .min_lr_ratio = runs[r].min_lr / runs[r].lr};
        int bad = 0;
        for (int64_t step = 1; step <= runs[r].total + 1; step++) {
            double got = lr_at(&s, step),
                   want = expected(type, runs[r].lr, runs[r].min_lr, runs[r].warmup, runs[r].total, runs[r].decay, step);
            if (fabs(got - want) > 1e-12 * runs[r].lr && bad++ < 3)
                EXPECT(0, "%s run %zu step %lld: lr %.9g, formula %.9g", name, r, (long long)step, got, want);
        }
        EXPECT(bad == 0, "%s run %zu: %d steps off", name, r, bad);
    }
}

static void test_constant(void) { check(LR_SCHEDULE_CONSTANT, "constant"); }
static void test_linear(void) { check(LR_SCHEDULE_LINEAR, "linear"); }
static void test_cosine(void) { check(LR_SCHEDULE_COSINE, "cosine"); }
static void test_wsd(void) { check(LR_SCHEDULE_WSD, "wsd"); }

/* Landmarks written as numbers: linear with min_lr ends on it, wsd halfway through its decay is
 * the mean of peak and floor (a cosine would also give that; 1/4 of the way tells them apart). */
static void test_landmarks(void) {
    struct lr_schedule lin = {.type = LR_SCHEDULE_LINEAR, .lr = 1.0, .warmup_steps = 0, .total_steps = 10, .min_lr_ratio = 0.1};
    EXPECT_NEAR(lr_at(&lin, 1), 1.0, 1e-12);
    EXPECT_NEAR(lr_at(&lin, 6), 0.55, 1e-12);
    EXPECT_NEAR(lr_at(&lin, 11), 0.1, 1e-12);
    struct lr_schedule wsd = {.type = LR_SCHEDULE_WSD, .lr = 1.0, .warmup_steps = 2, .total_steps = 20, .decay_steps = 8,
                              .min_lr_ratio = 0.0};
    EXPECT_NEAR(lr_at(&wsd, 2), 0.5, 1e-12);  /* warmup */
    EXPECT_NEAR(lr_at(&wsd, 13), 1.0, 1e-12); /* stable (k = 12 = decay start) */
    EXPECT_NEAR(lr_at(&wsd, 15), 0.75, 1e-12); /* a quarter into the decay: linear 0.75, cosine 0.854 */
    EXPECT_NEAR(lr_at(&wsd, 17), 0.5, 1e-12);
    EXPECT_NEAR(lr_at(&wsd, 21), 0.0, 1e-12);
}

int main(void) {
    RUN(test_constant);
    RUN(test_linear);
    RUN(test_cosine);
    RUN(test_wsd);
    RUN(test_landmarks);
    return TEST_SUMMARY("schedule");
}
