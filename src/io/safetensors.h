/* safetensors: reader (mmap, validated header, single file or sharded through
 * model.safetensors.index.json) and HF-compatible atomic writer (sharded above a size
 * threshold, with an index, like save_pretrained). Format: 8-byte little-endian header
 * length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]}, "__metadata__": {...}},
 * then the byte buffer. Every error names the file and tensor. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define ST_MAX_DIMS 8

struct st_tensor {
    const char *name;
    const char *file; /* path of the file holding it */
    enum dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* into the mmap */
    size_t nbytes;
};

struct safetensors; /* opaque: one or more mmapped files */

/* path: a .safetensors file, a model.safetensors.index.json, or a folder holding either
 * (the index wins when both exist). */
int safetensors_open(struct safetensors **out, const char *path);
void safetensors_close(struct safetensors *st);
int safetensors_count(const struct safetensors *st);
const struct st_tensor *safetensors_at(const struct safetensors *st, int i);
/* NULL if absent (not an error by itself). */
const struct st_tensor *safetensors_find(const struct safetensors *st, const char *name);
/* Copies tensor `name` into dst as float32, converting F32/BF16/F16; fails (naming file and
 * tensor) if absent or its shape differs from shape[0..n_dims). */
int safetensors_read_f32(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                         int n_dims);
/* Rows [row0, row0 + rows) x columns [col0, col0 + cols) of tensor `name` into dst (rows,
 * cols) as float32 (1-D: elements [row0, row0 + rows), cols ignored); its shape must be
 * shape[0..n_dims). Only those bytes of the mapping are touched (a tensor-parallel rank reads
 * its slice). */
int safetensors_read_f32_block(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                               int n_dims, int64_t row0, int64_t rows, int64_t col0, int64_t cols);
/* Flat elements [first, first + count) of tensor `name` (which must have `shape`), as float32. */
int safetensors_read_f32_range(const struct safetensors *st, const char *name, float *dst, const int64_t *shape,
                               int n_dims, int64_t first, int64_t count);

/* One tensor to write: float32 source converted to dtype (F32, BF16 or F16) on the way out. */
struct st_entry {
    const char *name;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    const float *data;
    enum dtype dtype;
};

/* Writes entries into folder dir as <stem>.safetensors, or, when the total exceeds
 * max_shard_bytes (0 = never shard), as <stem>-0000k-of-0000n.safetensors plus
 * <stem>.safetensors.index.json. Each file is written atomically; header carries
 * "__metadata__": {"format": "pt"}. Tensors are laid out in the order given. dir is created
 * if missing; stem NULL means "model". All shards are written (temp, fsync) before any is
 * renamed, and the index last; on failure no temp file is left and existing files are
 * untouched. A single-file save removes a stale <stem>.safetensors.index.json (it would
 * shadow the new file when the folder is opened); stale shards are left alone. */
int safetensors_save(const char *dir, const char *stem, const struct st_entry *entries, int n,
                     size_t max_shard_bytes);

/* The pieces of safetensors_save, for writers that fill a file from several processes
 * (io/st_parallel.h): the header (JSON padded to 8 bytes, without the 8-byte length) of a file
 * holding entries [lo, hi) (malloc'd, *len bytes), and the split into files: shard_lo (n + 2
 * ints) gets each file's first entry and n at the end; returns the file count. */
char *safetensors_header(const struct st_entry *entries, int lo, int hi, size_t *len);
int safetensors_split(const struct st_entry *entries, int n, size_t max_shard_bytes, int *shard_lo);
/* <stem>.safetensors.index.json for n_sh > 1 files (names as safetensors_save gives them); with
 * one file, removes a stale index. */
int safetensors_write_index(const char *dir, const char *stem, const struct st_entry *entries, int n,
                            const int *shard_lo, int n_sh);

/* Tensor `name` as a malloc'd float32 array of its own shape (F32/BF16/F16); *info (if not
 * NULL) gets its descriptor. NULL + err (naming file and tensor) if absent or not a float. */
float *safetensors_load_f32(const struct safetensors *st, const char *name, const struct st_tensor **info);
