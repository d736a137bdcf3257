/* st_parallel: one safetensors save (the same bytes safetensors_save writes: files, header,
 * layout, index) filled by several processes at once, each writing the element ranges it
 * holds with pwrite, so no process ever gathers the whole model. Sequence: every process
 * plans the same entries; one creates the temporary files (header written, size set); after
 * a barrier each writes its ranges and finishes (fsync); after another barrier one commits
 * (rename into place, index). Every range written is checksummed (CRC-32 of its bytes in the
 * file) so a manifest can later tell a damaged file (train/checkpoint.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

struct st_segment {
    int file; /* index into the plan's files */
    int64_t off, len;
    uint32_t crc;
};

struct st_plan {
    char *dir, *stem;
    const struct st_entry *entries; /* n, kept by the caller until st_plan_free */
    int n, n_files;
    int *shard_lo;           /* (n_files + 1) first entry of each file */
    char **names, **tmp;     /* per file: final base name, temporary path */
    int64_t *data_at;        /* per file: where the tensor bytes start (8 + header) */
    int64_t *entry_at;       /* per entry: byte offset of its data in its file */
    int *file_of, *fds;      /* per entry: its file; per file: open descriptor (-1) */
    struct st_segment *segs; /* ranges this process wrote */
    int n_segs, cap_segs;
};

/* Lays out entries as safetensors_save(dir, stem, entries, n, max_shard_bytes) would; the
 * temporary files are <final>.tmp.<tag> (tag: the same on every process). -1 with err. */
int st_plan_init(struct st_plan *p, const char *dir, const char *stem, const struct st_entry *entries, int n,
                 size_t max_shard_bytes, const char *tag);
/* One process: creates the temporary files with their headers at full size (segments of
 * the headers recorded). */
int st_plan_create(struct st_plan *p);
/* Writes elements [first, first + count) of entry i from src (float32, converted to the
 * entry's dtype). */
int st_plan_write(struct st_plan *p, int i, int64_t first, int64_t count, const float *src);
/* fsync and close what this process opened. */
int st_plan_finish(struct st_plan *p);
/* One process, after every writer finished: renames the files into place, writes the index. */
int st_plan_commit(struct st_plan *p);
/* Removes the temporary files (after a failure). */
void st_plan_discard(struct st_plan *p);
void st_plan_free(struct st_plan *p);

/* CRC-32 (zlib) of len bytes of path from off; -1 with err if the file is shorter. */
int file_crc32(const char *path, int64_t off, int64_t len, uint32_t *crc);
