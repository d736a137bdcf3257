/* st_parallel: see st_parallel.h. */
#include "io/st_parallel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/err.h"
#include "core/util.h"

static int64_t numel_of(const struct st_entry *e) {
    int64_t n = 1;
    for (int k = 0; k < e->n_dims; k++) n *= e->shape[k];
    return n;
}

static void seg_add(struct st_plan *p, int file, int64_t off, int64_t len, uint32_t crc) {
    if (p->n_segs == p->cap_segs) {
        p->cap_segs = p->cap_segs ? 2 * p->cap_segs : 16;
        p->segs = xrealloc(p->segs, sizeof *p->segs * (size_t)p->cap_segs);
    }
    p->segs[p->n_segs++] = (struct st_segment){file, off, len, crc};
}

int st_plan_init(struct st_plan *p, const char *dir, const char *stem, const struct st_entry *entries, int n,
                 size_t max_shard_bytes, const char *tag) {
    memset(p, 0, sizeof *p);
    p->dir = xstrdup(dir), p->stem = xstrdup(stem ? stem : "model");
    p->entries = entries, p->n = n;
    p->shard_lo = xmalloc(sizeof(int) * (size_t)(n + 2));
    p->n_files = safetensors_split(entries, n, max_shard_bytes, p->shard_lo);
    p->names = xcalloc((size_t)p->n_files, sizeof(char *));
    p->tmp = xcalloc((size_t)p->n_files, sizeof(char *));
    p->data_at = xcalloc((size_t)p->n_files, sizeof(int64_t));
    p->fds = xmalloc(sizeof(int) * (size_t)p->n_files);
    p->entry_at = xcalloc((size_t)(n ? n : 1), sizeof(int64_t));
    p->file_of = xcalloc((size_t)(n ? n : 1), sizeof(int));
    for (int f = 0; f < p->n_files; f++) {
        p->names[f] = p->n_files == 1 ? xasprintf("%s.safetensors", p->stem)
                                      : xasprintf("%s-%05d-of-%05d.safetensors", p->stem, f + 1, p->n_files);
        char *fin = path_join(dir, p->names[f]);
        p->tmp[f] = xasprintf("%s.tmp.%s", fin, tag);
        free(fin);
        p->fds[f] = -1;
        size_t hl;
        free(safetensors_header(entries, p->shard_lo[f], p->shard_lo[f + 1], &hl));
        p->data_at[f] = 8 + (int64_t)hl;
        int64_t off = 0;
        for (int i = p->shard_lo[f]; i < p->shard_lo[f + 1]; i++) {
            p->file_of[i] = f;
            p->entry_at[i] = off;
            off += numel_of(&entries[i]) * (int64_t)dtype_size(entries[i].dtype);
        }
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, int64_t off, const char *path) {
    const char *q = buf;
    while (len) {
        ssize_t w = pwrite(fd, q, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return err_set("%s: write failed: %s", path, strerror(errno));
        }
        q += w, off += w, len -= (size_t)w;
    }
    return 0;
}

int st_plan_create(struct st_plan *p) {
    for (int f = 0; f < p->n_files; f++) {
        size_t hl;
        char *h = safetensors_header(p->entries, p->shard_lo[f], p->shard_lo[f + 1], &hl);
        uint8_t buf[8];
        for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
        int64_t end = p->data_at[f];
        int last = p->shard_lo[f + 1] - 1;
        if (last >= p->shard_lo[f])
            end += p->entry_at[last] + numel_of(&p->entries[last]) * (int64_t)dtype_size(p->entries[last].dtype);
        int fd = open(p->tmp[f], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int rc = fd < 0 ? err_set("%s: cannot create: %s", p->tmp[f], strerror(errno)) : 0;
        if (!rc) rc = pwrite_all(fd, buf, 8, 0, p->tmp[f]);
        if (!rc) rc = pwrite_all(fd, h, hl, 8, p->tmp[f]);
        if (!rc && ftruncate(fd, (off_t)end) != 0) rc = err_set("%s: cannot size to %lld bytes: %s", p->tmp[f], (long long)end, strerror(errno));
        if (!rc && fsync(fd) != 0) rc = err_set("%s: fsync failed: %s", p->tmp[f], strerror(errno));
        if (fd >= 0) close(fd);
        if (!rc) {
            uint32_t c = (uint32_t)crc32(0L, buf, 8);
            c = (uint32_t)crc32((uLong)c, (const Bytef *)h, (uInt)hl);
            seg_add(p, f, 0, 8 + (int64_t)hl, c);
        }
        free(h);
        if (rc) return rc;
    }
    return 0;
}

int st_plan_write(struct st_plan *p, int i, int64_t first, int64_t count, const float *src) {
    CHECK(i >= 0 && i < p->n && first >= 0 && count >= 0 && first + count <= numel_of(&p->entries[i]),
          "st_plan_write: range [%lld, +%lld) outside %s", (long long)first, (long long)count, p->entries[i].name);
    if (!count) return 0;
    int f = p->file_of[i];
    if (p->fds[f] < 0) {
        p->fds[f] = open(p->tmp[f], O_WRONLY);
        if (p->fds[f] < 0) return err_set("%s: cannot open for writing: %s", p->tmp[f], strerror(errno));
    }
    enum dtype t = p->entries[i].dtype;
    size_t es = dtype_size(t);
    int64_t at = p->data_at[f] + p->entry_at[i] + first * (int64_t)es, start = at;
    uint32_t c = 0;
    const int64_t chunk = 1 << 18;
    void *buf = t == DTYPE_F32 ? NULL : xmalloc((size_t)chunk * es);
    int rc = 0;
    for (int64_t j = 0; j < count && !rc; j += chunk) {
        int64_t m = count - j < chunk ? count - j : chunk;
        const void *bytes = src + j;
        if (buf) dtype_from_f32(buf, src + j, t, m), bytes = buf;
        rc = pwrite_all(p->fds[f], bytes, (size_t)m * es, at, p->tmp[f]);
        c = (uint32_t)crc32((uLong)c, bytes, (uInt)((size_t)m * es));
        at += m * (int64_t)es;
    }
    free(buf);
    if (!rc) seg_add(p, f, start, at - start, c);
    return rc;
}

int st_plan_finish(struct st_plan *p) {
    int rc = 0;
    for (int f = 0; f < p->n_files; f++) {
        if (p->fds[f] < 0) continue;
        if (fsync(p->fds[f]) != 0 && !rc) rc = err_set("%s: fsync failed: %s", p->tmp[f], strerror(errno));
        if (close(p->fds[f]) != 0 && !rc) rc = err_set("%s: close failed: %s", p->tmp[f], strerror(errno));
        p->fds[f] = -1;
    }
    return rc;
}

int st_plan_commit(struct st_plan *p) {
    for (int f = 0; f < p->n_files; f++) {
        char *fin = path_join(p->dir, p->names[f]);
        int bad = rename(p->tmp[f], fin) != 0;
        if (bad) err_set("%s: cannot rename into place: %s", fin, strerror(errno));
        free(fin);
        if (bad) return -1;
    }
    int rc = safetensors_write_index(p->dir, p->stem, p->entries, p->n, p->shard_lo, p->n_files);
    if (!rc) dir_fsync(p->dir);
    return rc;
}

void st_plan_discard(struct st_plan *p) {
    st_plan_finish(p);
    for (int f = 0; f < p->n_files; f++) unlink(p->tmp[f]);
}

void st_plan_free(struct st_plan *p) {
    for (int f = 0; f < p->n_files; f++) {
        if (p->fds[f] >= 0) close(p->fds[f]);
        free(p->names[f]), free(p->tmp[f]);
    }
    free(p->dir), free(p->stem), free(p->shard_lo), free(p->names), free(p->tmp), free(p->data_at), free(p->fds);
    free(p->entry_at), free(p->file_of), free(p->segs);
    memset(p, 0, sizeof *p);
}

int file_crc32(const char *path, int64_t off, int64_t len, uint32_t *crc) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set("%s: cannot open: %s", path, strerror(errno));
    uint32_t c = 0;
    char *buf = xmalloc(1 << 20);
    int rc = 0;
    while (len > 0) {
        size_t want = len < (1 << 20) ? (size_t)len : (size_t)1 << 20;
        ssize_t r = pread(fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = err_set("%s: ends before byte %lld", path, (long long)(off + (int64_t)want));
            break;
        }
        c = (uint32_t)crc32((uLong)c, (const Bytef *)buf, (uInt)r);
        off += r, len -= r;
    }
    free(buf);
    close(fd);
    *crc = c;
    return rc;
}
