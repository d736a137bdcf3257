/* dataset: the tokenized training data. Reads every file (any reader.h format), formats and
 * tokenizes records in parallel (format.h), keeps sequences with at least one trained token,
 * and stores them as one token array + one loss-mask array with per-sequence offsets.
 * With a cache_dir the arrays are written once in Megatron's indexed format (.bin + .idx,
 * MMIDIDX version 1; the loss mask as a second uint8 indexed pair) under a key hashing the
 * files (path, size, mtime), the tokenizer, the template and the formatting options, and read
 * back through mmap on later runs. Format: docs/data.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/format.h"

struct dataset_options {
    const char *const *files;
    int n_files;
    int skip_bad_rows;
    const char *cache_dir; /* NULL or "" = no cache */
    const char *cache_salt; /* identity of tokenizer + template (part of the cache key) */
    int32_t vocab_size;     /* a cache hit's ids must lie in [0, vocab_size); 0 = only >= 0 */
};

struct dataset_stats {
    int64_t n_records;      /* records read */
    int64_t n_sequences;    /* kept for training */
    int64_t n_truncated;    /* cut by the truncation policy */
    int64_t n_dropped;      /* dropped by the truncation policy */
    int64_t n_zero_trained; /* formatted fine but no token to train on (reported, not trained) */
    int64_t n_skipped_rows; /* bad rows skipped (skip_bad_rows) */
    int64_t n_tokens, n_trained_tokens;
    int64_t hist[16];       /* sequences by length: bucket b holds lengths in [2^b, 2^(b+1)) */
    int from_cache;
    double seconds;
};

struct dataset {
    int64_t n;              /* sequences */
    int64_t *offsets;       /* (n+1) token offsets */
    const int32_t *ids;     /* (offsets[n]) */
    const uint8_t *mask;    /* (offsets[n]) 1 = trained */
    struct dataset_stats stats;
    /* backing storage: owned arrays or mappings */
    int32_t *own_ids;
    uint8_t *own_mask;
    void *map[4];
    size_t map_len[4];
    char *cache_path; /* key path prefix, if cached */
};

/* Builds the dataset: from the cache when one matches (checked: headers, sizes, checksums; a
 * damaged cache is reported on stderr and rebuilt), else by reading and formatting every
 * record (then written to the cache). Format errors name file and row; with skip_bad_rows
 * such rows are counted in stats.n_skipped_rows instead. Needs f->tk unless the records are
 * pre-tokenized. */
int dataset_build(struct dataset **out, const struct dataset_options *opt, const struct formatter *f);
/* Only the cache: 1 and *out on a valid hit, 0 otherwise (no cache, absent or damaged). f's
 * options (not its tokenizer) enter the key, so a caller may try this before loading one. */
int dataset_load_cached(struct dataset **out, const struct dataset_options *opt, const struct formatter *f);
/* The cache files at prefix (.json, .idx/.bin, _mask.idx/_mask.bin), checked as above; ids
 * must lie in [0, vocab_size) (vocab_size 0: >= 0). 0, or -1 with err set. */
int dataset_cache_load(struct dataset **out, const char *prefix, int32_t vocab_size);
/* The content checksum the cache's .json records for each of its files. */
uint64_t dataset_cache_checksum(const void *p, size_t n);
void dataset_free(struct dataset *ds);
static inline int64_t dataset_len(const struct dataset *ds, int64_t i) { return ds->offsets[i + 1] - ds->offsets[i]; }
