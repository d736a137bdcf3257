/* util: allocation wrappers that die on exhaustion (a resource failure, not bad input),
 * whole-file reading, atomic file replacement, and small string helpers. */
#pragma once
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* malloc'd printf. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a whole file into a NUL-terminated malloc'd buffer. Returns NULL + err on failure. */
char *file_read_all(const char *path, size_t *len_out);
int file_exists(const char *path);
int dir_exists(const char *path);
/* mkdir -p. */
int dir_create(const char *path);
/* Writes buf to path atomically: path.tmp.<pid>, fsync, rename, fsync of the directory.
 * On failure the old file at path is untouched. */
int file_write_atomic(const char *path, const void *buf, size_t len);
/* Renames the finished (written, synced, closed) temporary file tmp into place at path and
 * syncs the folder; on failure removes tmp. -1 with err. */
int file_commit(const char *tmp, const char *path);
/* Copies src_dir/name to dst_dir/name atomically when it exists (0 and no copy when absent). */
int file_copy_if_exists(const char *src_dir, const char *dst_dir, const char *name);
/* fsync a directory (after renames inside it). */
int dir_fsync(const char *path);
/* "a/b" joined; malloc'd. */
char *path_join(const char *a, const char *b);

double time_now(void); /* monotonic seconds */
