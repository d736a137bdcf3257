/* util: see util.h. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

static void die_oom(size_t n) {
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die_oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die_oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die_oom(n);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) die_oom(0);
    return s;
}

char *file_read_all(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_set("%s: read error", path);
        return NULL;
    }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dir_create(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            err_set("%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = err_set("%s: cannot create directory: %s", p, strerror(errno));
    else if (!dir_exists(p)) rc = err_set("%s: exists and is not a directory", p);
    free(p);
    return rc;
}

int dir_fsync(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return err_set("%s: cannot open directory: %s", path, strerror(errno));
    fsync(fd);
    close(fd);
    return 0;
}

static char *dir_of(const char *path) {
    char *d = xstrdup(path);
    char *slash = strrchr(d, '/');
    if (!slash) {
        free(d);
        return xstrdup(".");
    }
    if (slash == d) slash[1] = 0;
    else *slash = 0;
    return d;
}

int file_write_atomic(const char *path, const void *buf, size_t len) {
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        err_set("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            err_set("%s: write failed: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        err_set("%s: fsync/close failed: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    int rc = file_commit(tmp, path);
    free(tmp);
    return rc;
}

int file_commit(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        err_set("%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char *d = dir_of(path);
    dir_fsync(d);
    free(d);
    return 0;
}

int file_copy_if_exists(const char *src_dir, const char *dst_dir, const char *name) {
    char *src = path_join(src_dir, name);
    int rc = 0;
    if (file_exists(src)) {
        size_t n;
        char *buf = file_read_all(src, &n), *dst = path_join(dst_dir, name);
        rc = buf ? file_write_atomic(dst, buf, n) : -1;
        free(buf), free(dst);
    }
    free(src);
    return rc;
}

char *path_join(const char *a, const char *b) {
    size_t n = strlen(a);
    if (n && a[n - 1] == '/') return xasprintf("%s%s", a, b);
    return xasprintf("%s/%s", a, b);
}

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
