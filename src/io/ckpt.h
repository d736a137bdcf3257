/* ckpt: MindSpore `.ckpt` checkpoints (checkpoint.proto, proto2), read and written by hand.
 * A file is a concatenation of serialized `Checkpoint` messages, each holding one
 * `Value {tag = 1: string, tensor = 2: TensorProto {dims = 1, tensor_type = 2, tensor_content = 3}}`;
 * consecutive values with the same tag are one tensor split in slices (contents concatenated).
 * Optional tail: ASCII "crc_num" + CRC-32 of the earlier bytes as a 10-byte big-endian number.
 * Encrypted files (AES-GCM/CBC, SM4 block magics) are refused. Every size read from the file is
 * checked against what is left of it; errors name the file, the entry and the byte offset.
 * Layout facts: docs/mindformers.md and MindSpore's train/serialization.py. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

#define CKPT_MAX_DIMS 8

struct ckpt_tensor {
    char *name;
    char type[16];   /* MindSpore spelling: "Float32", "BFloat16", "Int64", "str", ... */
    int dtype;       /* enum dtype, or -1 (str, Int4, unsigned ints wider than 8 bits, map tensors) */
    int n_dims;      /* 0 for a scalar (no dims, or dims == [0]) */
    int64_t shape[CKPT_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; /* content bytes (into the file, or an owned copy for sliced tensors) */
    size_t nbytes;
    int n_messages;  /* slices this tensor was stored in */
    int is_map;      /* a MapTensor value (not read; listed only) */
};

struct ckpt {
    char *path; /* the .ckpt file actually read */
    void *map;
    size_t size;
    int has_crc;
    struct ckpt_tensor *t;
    int n;
    uint8_t **owned; /* concatenated slices */
    int n_owned;
};

/* True if path is a .ckpt file, or a folder holding .ckpt files directly or in rank_0/
 * (and no safetensors). */
int ckpt_is_checkpoint(const char *path);
/* path: a .ckpt file, or a folder with rank_0/ *.ckpt (or *.ckpt): the file named by
 * rank_0/meta.json's last_ckpt_file, else the only .ckpt there (several: error listing them). */
int ckpt_open(struct ckpt **out, const char *path);
void ckpt_close(struct ckpt *ck);
const struct ckpt_tensor *ckpt_find(const struct ckpt *ck, const char *name);
/* Converts a Float32/BFloat16/Float16 tensor into dst (numel floats). */
int ckpt_tensor_f32(const struct ckpt *ck, const struct ckpt_tensor *t, float *dst);
/* The folder config.json is looked for in: the checkpoint's own folder, or the parent of rank_N/. */
char *ckpt_config_dir(const char *path);

/* One tensor to write: raw little-endian element bytes of MindSpore type `type`. */
struct ckpt_entry {
    const char *name;
    const char *type;
    int n_dims;
    int64_t shape[CKPT_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

/* Writes entries as MindSpore's save_checkpoint does (one Checkpoint message per value, dims
 * unpacked, tensors above 512 MiB split along axis 0 like np.array_split), optionally with the
 * crc_num tail; atomically (tmp + fsync + rename). */
int ckpt_save(const char *path, const struct ckpt_entry *e, int n, int crc);
/* MindSpore type name of a dtype ("Float32", ...), NULL if none. */
const char *ckpt_type_name(enum dtype t);
