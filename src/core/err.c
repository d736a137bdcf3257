/* err: thread-local last-error message; see err.h. */
#include "core/err.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char err_buf[4096];

int err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int err_wrap(const char *fmt, ...) {
    char ctx[1024], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t n = strlen(ctx);
    if (n > sizeof err_buf - 3) n = sizeof err_buf - 3;
    memcpy(err_buf, ctx, n);
    memcpy(err_buf + n, ": ", 2);
    size_t m = strlen(old);
    if (m > sizeof err_buf - n - 3) m = sizeof err_buf - n - 3;
    memcpy(err_buf + n + 2, old, m);
    err_buf[n + 2 + m] = 0;
    return -1;
}

const char *err_msg(void) { return err_buf; }
void err_clear(void) { err_buf[0] = 0; }
