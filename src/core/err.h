/* err: error reporting for library code.
 * A function that can fail on bad input returns int (0 ok, -1 error) or NULL, after
 * recording one message with err_set(). Callers add context with err_wrap() and
 * propagate; only main() prints err_msg() and exits. Bugs use CHECK() and abort. */
#pragma once
#include <stdio.h>
#include <stdlib.h>

/* Records the message (printf-style) for this thread and returns -1. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current message with context: "ctx: old message". Returns -1. */
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The current message ("" if none). */
const char *err_msg(void);
void err_clear(void);

/* A broken invariant (a bug, not bad input): always on, prints file:line and aborts. */
#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)
