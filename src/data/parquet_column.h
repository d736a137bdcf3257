/* parquet_column: a cursor over one column chunk of a Parquet file, one page in memory at a
 * time. It reads page headers, decompresses (SNAPPY, ZSTD, GZIP, LZ4, LZ4_RAW, BROTLI, none), decodes repetition and
 * definition levels (RLE/bit-packed hybrid) and values (PLAIN, PLAIN_/RLE_DICTIONARY,
 * DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY, BYTE_STREAM_SPLIT), data
 * pages v1 and v2. Spec: https://github.com/apache/parquet-format (Encodings.md, README.md). */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum pq_type {
    PQ_BOOLEAN = 0,
    PQ_INT32 = 1,
    PQ_INT64 = 2,
    PQ_INT96 = 3,
    PQ_FLOAT = 4,
    PQ_DOUBLE = 5,
    PQ_BYTE_ARRAY = 6,
    PQ_FIXED_LEN_BYTE_ARRAY = 7,
};

enum pq_codec {
    PQ_CODEC_UNCOMPRESSED = 0,
    PQ_CODEC_SNAPPY = 1,
    PQ_CODEC_GZIP = 2,
    PQ_CODEC_LZO = 3,
    PQ_CODEC_BROTLI = 4,
    PQ_CODEC_LZ4 = 5,
    PQ_CODEC_ZSTD = 6,
    PQ_CODEC_LZ4_RAW = 7,
};

/* One decoded value: byte arrays (also INT96 and FIXED_LEN_BYTE_ARRAY values, as their raw
 * bytes) point into the page, dictionary or column buffers and stay valid until the cursor
 * moves to the next page. Booleans and integers use i. */
struct pq_value {
    union {
        struct {
            const uint8_t *ptr;
            uint32_t len;
        } s;
        int64_t i;
        double d;
    };
};

struct pq_column {
    /* Set by the owner before pq_column_start; used in error messages and decoding. */
    const char *file;
    const uint8_t *base; /* start of the mapped file, for byte offsets in messages */
    const char *path;    /* dotted path in the schema, e.g. messages.list.element.content */
    int type;            /* enum pq_type */
    int type_length;     /* bytes per FIXED_LEN_BYTE_ARRAY value */
    int max_def, max_rep;

    /* The chunk. */
    const uint8_t *pos, *end;
    int codec, rg;
    int64_t n_values, n_read; /* level entries in the chunk (footer) and read so far */

    /* Dictionary of the chunk. */
    uint8_t *dict_buf;
    struct pq_value *dict;
    int32_t n_dict;

    /* Current page. */
    uint8_t *page_buf, *own_buf;
    size_t page_cap, own_cap;
    int32_t *rep, *def, *idx;
    int64_t *tmp;
    struct pq_value *vals;
    size_t lv_cap, vals_cap, idx_cap, tmp_cap;
    int32_t n_entries, i_entry; /* level entries in the page, next one */
    int32_t n_vals, i_val;      /* non-null values in the page, next one */
};

/* Points the cursor at a chunk [chunk, chunk + len) holding n_values level entries. */
void pq_column_start(struct pq_column *c, const uint8_t *chunk, size_t len, int codec, int64_t n_values,
                     int rg);
/* Levels of the next entry: 1 = available, 0 = the chunk is done, -1 = error (err set). */
int pq_column_peek(struct pq_column *c, int *rep, int *def);
/* Consumes the entry peeked; *val is its value when def == max_def, NULL otherwise. */
int pq_column_take(struct pq_column *c, const struct pq_value **val);
/* Frees buffers (the struct itself belongs to the caller). */
void pq_column_free(struct pq_column *c);
/* Name of a codec / encoding for messages ("SNAPPY", "DELTA_BYTE_ARRAY"). */
const char *pq_codec_name(int codec);
const char *pq_encoding_name(int encoding);
const char *pq_type_name(int type);
