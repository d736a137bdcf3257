/* test.h: the tiny test harness. Each tests/test_*.c defines static test functions and a
 * main() that RUN()s them and returns TEST_SUMMARY(). Assertions record failures with
 * file:line and keep going; the summary line "NAME: N passed, N failed" is read by run.sh. */
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* 1 if both files exist and hold the same bytes. */
static inline int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = file_read_all(a, &na), *y = file_read_all(b, &nb);
    int eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return eq;
}

static int t_passed, t_failed, t_skipped, t_cur_failed, t_cur_skipped;

/* Marks the current test as skipped (reason printed); a skipped test counts neither as passed
 * nor as failed and shows as ", N skipped" in the summary line. */
#define SKIP(...)                            \
    do {                                     \
        t_cur_skipped = 1;                   \
        printf("SKIP: ");                    \
        printf(__VA_ARGS__);                 \
        putchar('\n');                       \
    } while (0)

/* Counts one skipped check inside a test that otherwise runs (e.g. golden lines whose licensed
 * files are absent): the summary shows it as a skip, the rest of the test still passes or fails. */
#define SKIP_PART(...)                       \
    do {                                     \
        t_skipped++;                         \
        printf("SKIP: ");                    \
        printf(__VA_ARGS__);                 \
        putchar('\n');                       \
    } while (0)

#define EXPECT(cond, ...)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            t_cur_failed++;                                                  \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

/* |a-b| <= tol*max(1,|b|) */
#define EXPECT_NEAR(a, b, tol)                                                                  \
    do {                                                                                        \
        double t_a = (a), t_b = (b);                                                            \
        EXPECT(fabs(t_a - t_b) <= (tol) * fmax(1.0, fabs(t_b)), "%.9g vs %.9g (tol %g)", t_a, t_b, \
               (double)(tol));                                                                  \
    } while (0)

#define EXPECT_STR(a, b)                                                              \
    do {                                                                              \
        const char *t_sa = (a), *t_sb = (b);                                          \
        EXPECT(t_sa && t_sb && strcmp(t_sa, t_sb) == 0, "\"%s\" vs \"%s\"", t_sa ? t_sa : "(null)", \
               t_sb ? t_sb : "(null)");                                               \
    } while (0)

/* err_msg() contains the substring. */
#define EXPECT_ERR(substr) EXPECT(strstr(err_msg(), (substr)) != NULL, "error \"%s\" lacks \"%s\"", err_msg(), (substr))

#define RUN(fn)                                                   \
    do {                                                          \
        t_cur_failed = 0;                                         \
        t_cur_skipped = 0;                                        \
        fn();                                                     \
        if (t_cur_failed) {                                       \
            t_failed++;                                           \
            fprintf(stderr, "FAIL %s\n", #fn);                    \
        } else if (t_cur_skipped) {                               \
            t_skipped++;                                          \
        } else {                                                  \
            t_passed++;                                           \
        }                                                         \
    } while (0)

/* "NAME: N passed, N failed" plus ", N skipped" when some were skipped (read by run.sh). */
#define TEST_SUMMARY(name)                                                                         \
    (t_skipped ? printf("%s: %d passed, %d failed, %d skipped\n", (name), t_passed, t_failed, t_skipped) \
               : printf("%s: %d passed, %d failed\n", (name), t_passed, t_failed),                  \
     t_failed ? 1 : 0)
