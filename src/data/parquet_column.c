/* parquet_column: page-at-a-time decoding of one column chunk; see parquet_column.h.
 * Every length read from the file is checked against the bytes it claims before use, and
 * sizes are capped (a page at most 1 GiB, 2^28 entries) so a corrupt header gives an error,
 * not a huge allocation. Encodings follow parquet-format's Encodings.md. */
#include "data/parquet_column.h"

#include "core/err.h"
#include "core/util.h"
#include "data/thrift.h"

#include <brotli/decode.h>
#include <lz4.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

enum { PAGE_DATA = 0, PAGE_INDEX = 1, PAGE_DICT = 2, PAGE_DATA_V2 = 3 };
enum {
    ENC_PLAIN = 0,
    ENC_PLAIN_DICT = 2,
    ENC_RLE = 3,
    ENC_BIT_PACKED = 4,
    ENC_DBP = 5,
    ENC_DLBA = 6,
    ENC_DBA = 7,
    ENC_RLE_DICT = 8,
    ENC_BSS = 9,
};

#define MAX_PAGE_BYTES ((size_t)1 << 30)
#define MAX_PAGE_ENTRIES ((int32_t)1 << 28)
#define MIN_PAGE_ENTRIES ((int32_t)1 << 20)

/* The most a codec's output can exceed its input (deflate 1032:1; snappy about 21:1; LZ4 about
 * 255:1; ZSTD and BROTLI compress runs further: 65536:1 is beyond any data a writer produces
 * for text datasets, and keeps a tiny hostile file from asking for gigabytes). */
static size_t max_expansion(int codec) {
    switch (codec) {
    case PQ_CODEC_SNAPPY: return 32;
    case PQ_CODEC_GZIP: return 1040;
    case PQ_CODEC_LZ4:
    case PQ_CODEC_LZ4_RAW: return 260;
    default: return 65536;
    }
}

const char *pq_codec_name(int codec) {
    static const char *names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                  "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
    return codec >= 0 && codec < 8 ? names[codec] : "unknown codec";
}

const char *pq_encoding_name(int e) {
    static const char *names[] = {
        "PLAIN",          "GROUP_VAR_INT",       "PLAIN_DICTIONARY",        "RLE",
        "BIT_PACKED",     "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY",
        "RLE_DICTIONARY", "BYTE_STREAM_SPLIT"};
    return e >= 0 && e < 10 ? names[e] : "unknown encoding";
}

const char *pq_type_name(int type) {
    static const char *names[] = {"BOOLEAN", "INT32",  "INT64",      "INT96",
                                  "FLOAT",   "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"};
    return type >= 0 && type < 8 ? names[type] : "unknown type";
}

/* "FILE: column 'PATH', row group N, page at byte OFF: message". */
__attribute__((format(printf, 2, 3))) static int col_err(const struct pq_column *c, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set("%s: column '%s', row group %d, page at byte %lld: %s", c->file, c->path, c->rg,
                   (long long)(c->pos - c->base), msg);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    *cap = n;
    return xrealloc(p, n * elem);
}

void pq_column_start(struct pq_column *c, const uint8_t *chunk, size_t len, int codec, int64_t n_values,
                     int rg) {
    c->pos = chunk;
    c->end = chunk + len;
    c->codec = codec;
    c->rg = rg;
    c->n_values = n_values;
    c->n_read = 0;
    free(c->dict_buf);
    free(c->dict);
    c->dict_buf = NULL;
    c->dict = NULL;
    c->n_dict = 0;
    c->n_entries = c->i_entry = c->n_vals = c->i_val = 0;
}

void pq_column_free(struct pq_column *c) {
    free(c->dict_buf);
    free(c->dict);
    free(c->page_buf);
    free(c->own_buf);
    free(c->rep);
    free(c->def);
    free(c->idx);
    free(c->tmp);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

/* ---- bit-level helpers ---- */

/* w bits (w <= 64) at bit offset off, least significant bit first; the caller checked bounds. */
static uint64_t bits_get(const uint8_t *p, uint64_t off, int w) {
    const uint8_t *b = p + (off >> 3);
    int sh = (int)(off & 7), got = 0;
    uint64_t v = 0;
    while (got < w) {
        v |= (uint64_t)(*b++ >> sh) << got;
        got += 8 - sh;
        sh = 0;
    }
    return w < 64 ? v & ((1ull << w) - 1) : v;
}

static int uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* The RLE / bit-packed hybrid: n values of bit width bw from [p, end). */
static int rle_hybrid(const struct pq_column *c, const char *what, const uint8_t *p, const uint8_t *end,
                      int bw, int32_t n, int32_t *out) {
    if (bw < 0 || bw > 32) return col_err(c, "%s: bit width %d (at most 32)", what, bw);
    int vbytes = (bw + 7) / 8;
    int32_t i = 0;
    while (i < n) {
        uint64_t h;
        if (uvarint(&p, end, &h))
            return col_err(c, "%s: truncated RLE/bit-packed data after %d of %d values", what, i, n);
        uint64_t count = h >> 1;
        if (h & 1) { /* bit-packed: count groups of 8 values */
            if (count > (uint64_t)1 << 28) return col_err(c, "%s: bit-packed run too long", what);
            uint64_t take = count * 8 < (uint64_t)(n - i) ? count * 8 : (uint64_t)(n - i);
            uint64_t avail = (uint64_t)(end - p);
            if ((take * bw + 7) / 8 > avail)
                return col_err(c, "%s: bit-packed run needs %llu bytes, %llu left", what,
                               (unsigned long long)((take * bw + 7) / 8), (unsigned long long)avail);
            for (uint64_t k = 0; k < take; k++)
                out[i + k] = (int32_t)bits_get(p, k * bw, bw);
            uint64_t nbytes = count * bw;
            p += nbytes < avail ? nbytes : avail;
            i += (int32_t)take;
        } else { /* RLE: count copies of one value */
            if (end - p < vbytes) return col_err(c, "%s: truncated RLE run", what);
            uint32_t v = 0;
            for (int k = 0; k < vbytes; k++)
                v |= (uint32_t)p[k] << (8 * k);
            p += vbytes;
            uint64_t take = count < (uint64_t)(n - i) ? count : (uint64_t)(n - i);
            for (uint64_t k = 0; k < take; k++)
                out[i + k] = (int32_t)v;
            i += (int32_t)take;
        }
    }
    return 0;
}

static int bit_width(int max_level) {
    int w = 0;
    while ((1 << w) <= max_level)
        w++;
    return w;
}

/* DELTA_BINARY_PACKED: exactly n values into out; *pp advances past the encoded block(s). */
static int dbp_decode(const struct pq_column *c, const char *what, const uint8_t **pp, const uint8_t *end,
                      int32_t n, int64_t *out) {
    const uint8_t *p = *pp;
    uint64_t block, n_mini, total, first;
    if (uvarint(&p, end, &block) || uvarint(&p, end, &n_mini) || uvarint(&p, end, &total) ||
        uvarint(&p, end, &first))
        return col_err(c, "%s: truncated DELTA_BINARY_PACKED header", what);
    if (block == 0 || block % 128 || block > (1u << 20) || n_mini == 0 || block % n_mini ||
        (block / n_mini) % 32)
        return col_err(c, "%s: bad DELTA_BINARY_PACKED block size %llu with %llu miniblocks", what,
                       (unsigned long long)block, (unsigned long long)n_mini);
    if (total != (uint64_t)n)
        return col_err(c, "%s: DELTA_BINARY_PACKED holds %llu values, expected %d", what,
                       (unsigned long long)total, n);
    uint64_t vpm = block / n_mini;
    if (n > 0) out[0] = (int64_t)((first >> 1) ^ -(first & 1));
    int32_t i = 1;
    while (i < n) {
        uint64_t zmin;
        if (uvarint(&p, end, &zmin) || (uint64_t)(end - p) < n_mini)
            return col_err(c, "%s: truncated DELTA_BINARY_PACKED block", what);
        uint64_t min_delta = (zmin >> 1) ^ -(zmin & 1);
        const uint8_t *widths = p;
        p += n_mini;
        for (uint64_t m = 0; m < n_mini && i < n; m++) {
            int w = widths[m];
            if (w > 64) return col_err(c, "%s: DELTA_BINARY_PACKED bit width %d", what, w);
            uint64_t mbytes = vpm * (uint64_t)w / 8;
            if ((uint64_t)(end - p) < mbytes)
                return col_err(c, "%s: truncated DELTA_BINARY_PACKED miniblock", what);
            for (uint64_t k = 0; k < vpm && i < n; k++, i++)
                out[i] = (int64_t)((uint64_t)out[i - 1] + min_delta + (w ? bits_get(p, k * w, w) : 0));
            p += mbytes;
        }
    }
    *pp = p;
    return 0;
}

/* ---- decompression ---- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Hadoop's LZ4 framing: blocks of [be32 decompressed size][be32 compressed size][LZ4 block]. */
static int lz4_hadoop(const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen) {
    size_t in = 0, out = 0;
    while (in < slen) {
        if (slen - in < 8) return -1;
        uint32_t du = be32(src + in), dc = be32(src + in + 4);
        in += 8;
        if (dc > slen - in || du > dlen - out || du > INT32_MAX || dc > INT32_MAX) return -1;
        int r = LZ4_decompress_safe((const char *)src + in, (char *)dst + out, (int)dc, (int)du);
        if (r < 0 || (uint32_t)r != du) return -1;
        in += dc, out += du;
    }
    return out == dlen ? 0 : -1;
}

/* An LZ4 frame (magic 04 22 4D 18) holding exactly dlen bytes. */
static int lz4_frame(const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen) {
    if (slen < 4 || src[0] != 0x04 || src[1] != 0x22 || src[2] != 0x4d || src[3] != 0x18) return -1;
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return -1;
    size_t in = 0, out = 0, r = 1;
    while (in < slen && r != 0) {
        size_t si = slen - in, so = dlen - out;
        r = LZ4F_decompress(d, dst + out, &so, src + in, &si, NULL);
        if (LZ4F_isError(r) || (si == 0 && so == 0)) break;
        in += si, out += so;
    }
    LZ4F_freeDecompressionContext(d);
    return r == 0 && out == dlen ? 0 : -1;
}

static int decompress(const struct pq_column *c, const uint8_t *src, size_t slen, uint8_t *dst, size_t dlen) {
    switch (c->codec) {
    case PQ_CODEC_SNAPPY: {
        size_t n;
        if (snappy_uncompressed_length((const char *)src, slen, &n) != SNAPPY_OK || n != dlen)
            return col_err(c, "corrupt SNAPPY data (expected %zu bytes)", dlen);
        if (snappy_uncompress((const char *)src, slen, (char *)dst, &n) != SNAPPY_OK || n != dlen)
            return col_err(c, "corrupt SNAPPY data");
        return 0;
    }
    case PQ_CODEC_ZSTD: {
        size_t r = ZSTD_decompress(dst, dlen, src, slen);
        if (ZSTD_isError(r)) return col_err(c, "corrupt ZSTD data: %s", ZSTD_getErrorName(r));
        if (r != dlen) return col_err(c, "ZSTD data gave %zu bytes, the page header says %zu", r, dlen);
        return 0;
    }
    case PQ_CODEC_GZIP: {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK) return col_err(c, "zlib init failed");
        z.next_in = (Bytef *)src;
        z.avail_in = (uInt)slen;
        z.next_out = dst;
        z.avail_out = (uInt)dlen;
        int rc;
        for (;;) {
            rc = inflate(&z, Z_FINISH);
            /* Concatenated gzip members: continue with the next one. */
            if (rc == Z_STREAM_END && z.avail_in > 0 && z.avail_out > 0) {
                if (inflateReset(&z) != Z_OK) break;
                continue;
            }
            break;
        }
        size_t got = dlen - z.avail_out;
        inflateEnd(&z);
        if (rc != Z_STREAM_END)
            return col_err(c, "corrupt GZIP data (zlib: %s)", z.msg ? z.msg : "truncated");
        if (got != dlen) return col_err(c, "GZIP data gave %zu bytes, the page header says %zu", got, dlen);
        return 0;
    }
    case PQ_CODEC_LZ4_RAW: {
        if (slen > INT32_MAX || dlen > INT32_MAX) return col_err(c, "LZ4_RAW page of %zu bytes is too large", slen);
        int r = LZ4_decompress_safe((const char *)src, (char *)dst, (int)slen, (int)dlen);
        if (r < 0) return col_err(c, "corrupt LZ4_RAW data");
        if ((size_t)r != dlen) return col_err(c, "LZ4_RAW data gave %d bytes, the page header says %zu", r, dlen);
        return 0;
    }
    case PQ_CODEC_LZ4:
        /* The deprecated LZ4 codec: Hadoop's framing (parquet-mr), else a bare LZ4 block (older
         * Arrow), else an LZ4 frame, as Arrow's reader tries them. */
        if (lz4_hadoop(src, slen, dst, dlen) == 0) return 0;
        if (slen <= INT32_MAX && dlen <= INT32_MAX &&
            LZ4_decompress_safe((const char *)src, (char *)dst, (int)slen, (int)dlen) == (int)dlen)
            return 0;
        if (lz4_frame(src, slen, dst, dlen) == 0) return 0;
        return col_err(c, "corrupt LZ4 data (neither Hadoop-framed, a raw block nor an LZ4 frame of %zu bytes)",
                       dlen);
    case PQ_CODEC_BROTLI: {
        size_t got = dlen;
        if (BrotliDecoderDecompress(slen, src, &got, dst) != BROTLI_DECODER_RESULT_SUCCESS)
            return col_err(c, "corrupt BROTLI data (or more than the %zu bytes the page header says)", dlen);
        if (got != dlen) return col_err(c, "BROTLI data gave %zu bytes, the page header says %zu", got, dlen);
        return 0;
    }
    default: return col_err(c, "unsupported compression codec %s", pq_codec_name(c->codec));
    }
}

/* The page's bytes, decompressed into c->page_buf unless the codec is none. */
static const uint8_t *page_bytes(struct pq_column *c, const uint8_t *src, size_t slen, size_t dlen,
                                 int compressed, uint8_t **buf, size_t *cap) {
    if (!compressed || c->codec == PQ_CODEC_UNCOMPRESSED || (slen == 0 && dlen == 0)) {
        if (slen != dlen) {
            col_err(c, "uncompressed page of %zu bytes, the page header says %zu", slen, dlen);
            return NULL;
        }
        return src;
    }
    *buf = grow(*buf, cap, dlen + 1, 1);
    if (decompress(c, src, slen, *buf, dlen)) return NULL;
    return *buf;
}

/* ---- values ---- */

/* Bytes per value of the fixed-width byte types (INT96, FIXED_LEN_BYTE_ARRAY). */
static size_t fixed_width(const struct pq_column *c) {
    return c->type == PQ_INT96 ? 12 : (size_t)c->type_length;
}

/* One little-endian INT32, INT64, FLOAT or DOUBLE value at b. */
static void number_at(int t, const uint8_t *b, struct pq_value *out) {
    if (t == PQ_INT32) {
        int32_t v;
        memcpy(&v, b, 4);
        out->i = v;
    } else if (t == PQ_INT64) {
        memcpy(&out->i, b, 8);
    } else if (t == PQ_FLOAT) {
        float f;
        memcpy(&f, b, 4);
        out->d = f;
    } else {
        memcpy(&out->d, b, 8);
    }
}

/* Decodes n values of encoding enc from [p, end) into out. */
static int values_decode(struct pq_column *c, int enc, const uint8_t *p, const uint8_t *end, int32_t n,
                         struct pq_value *out, int is_dict) {
    size_t avail = (size_t)(end - p);
    int t = c->type;
    const char *what = is_dict ? "dictionary page" : "values";
    if (enc == ENC_PLAIN || (is_dict && enc == ENC_PLAIN_DICT)) {
        size_t width = t == PQ_INT32 || t == PQ_FLOAT ? 4 : t == PQ_INT64 || t == PQ_DOUBLE ? 8 : 0;
        if (t == PQ_BOOLEAN) {
            if (((size_t)n + 7) / 8 > avail)
                return col_err(c, "%s: %d PLAIN booleans need more than %zu bytes", what, n, avail);
            for (int32_t k = 0; k < n; k++)
                out[k].i = (p[k >> 3] >> (k & 7)) & 1;
        } else if (width) {
            if ((size_t)n * width > avail)
                return col_err(c, "%s: %d PLAIN %s values need %zu bytes, %zu left", what, n, pq_type_name(t),
                               (size_t)n * width, avail);
            for (int32_t k = 0; k < n; k++, p += width) number_at(t, p, &out[k]);
        } else if (t == PQ_INT96 || t == PQ_FIXED_LEN_BYTE_ARRAY) {
            size_t w = fixed_width(c);
            if ((size_t)n * w > avail)
                return col_err(c, "%s: %d PLAIN %s values of %zu bytes need %zu bytes, %zu left", what, n,
                               pq_type_name(t), w, (size_t)n * w, avail);
            for (int32_t k = 0; k < n; k++, p += w) {
                out[k].s.ptr = p;
                out[k].s.len = (uint32_t)w;
            }
        } else if (t == PQ_BYTE_ARRAY) {
            for (int32_t k = 0; k < n; k++) {
                uint32_t len;
                if (end - p < 4) return col_err(c, "%s: truncated PLAIN byte array %d of %d", what, k, n);
                memcpy(&len, p, 4);
                p += 4;
                if (len > (size_t)(end - p))
                    return col_err(c, "%s: byte array %d of %d has length %u, only %zu bytes left", what, k,
                                   n, len, (size_t)(end - p));
                out[k].s.ptr = p;
                out[k].s.len = len;
                p += len;
            }
        } else {
            return col_err(c, "unsupported physical type %s", pq_type_name(t));
        }
        return 0;
    }
    if (is_dict) return col_err(c, "unsupported dictionary page encoding %s", pq_encoding_name(enc));
    if (enc == ENC_RLE_DICT || enc == ENC_PLAIN_DICT) {
        if (!c->dict)
            return col_err(c, "dictionary-encoded page (%s) but the chunk has no dictionary page",
                           pq_encoding_name(enc));
        if (n == 0) return 0;
        if (avail < 1) return col_err(c, "dictionary indices: missing bit width");
        c->idx = grow(c->idx, &c->idx_cap, (size_t)n, sizeof *c->idx);
        if (rle_hybrid(c, "dictionary indices", p + 1, end, p[0], n, c->idx)) return -1;
        for (int32_t k = 0; k < n; k++) {
            uint32_t ix = (uint32_t)c->idx[k];
            if (ix >= (uint32_t)c->n_dict)
                return col_err(c, "dictionary index %u out of range (dictionary has %d entries)", ix,
                               c->n_dict);
            out[k] = c->dict[ix];
        }
        return 0;
    }
    if (enc == ENC_RLE && t == PQ_BOOLEAN) {
        if (avail < 4) return col_err(c, "RLE booleans: missing length");
        uint32_t len;
        memcpy(&len, p, 4);
        if (len > avail - 4) return col_err(c, "RLE booleans: length %u, %zu bytes left", len, avail - 4);
        c->idx = grow(c->idx, &c->idx_cap, (size_t)n, sizeof *c->idx);
        if (rle_hybrid(c, "RLE booleans", p + 4, p + 4 + len, 1, n, c->idx)) return -1;
        for (int32_t k = 0; k < n; k++)
            out[k].i = c->idx[k];
        return 0;
    }
    if (enc == ENC_DBP && (t == PQ_INT32 || t == PQ_INT64)) {
        c->tmp = grow(c->tmp, &c->tmp_cap, (size_t)n + 1, sizeof *c->tmp);
        if (dbp_decode(c, "DELTA_BINARY_PACKED", &p, end, n, c->tmp)) return -1;
        for (int32_t k = 0; k < n; k++)
            out[k].i = t == PQ_INT32 ? (int32_t)c->tmp[k] : c->tmp[k];
        return 0;
    }
    if (enc == ENC_DLBA && t == PQ_BYTE_ARRAY) {
        c->tmp = grow(c->tmp, &c->tmp_cap, (size_t)n + 1, sizeof *c->tmp);
        if (dbp_decode(c, "DELTA_LENGTH_BYTE_ARRAY lengths", &p, end, n, c->tmp)) return -1;
        for (int32_t k = 0; k < n; k++) {
            int64_t len = c->tmp[k];
            if (len < 0 || len > end - p)
                return col_err(c, "DELTA_LENGTH_BYTE_ARRAY: value %d has length %lld, %zu bytes left", k,
                               (long long)len, (size_t)(end - p));
            out[k].s.ptr = p;
            out[k].s.len = (uint32_t)len;
            p += len;
        }
        return 0;
    }
    if (enc == ENC_DBA && (t == PQ_BYTE_ARRAY || t == PQ_FIXED_LEN_BYTE_ARRAY)) {
        c->tmp = grow(c->tmp, &c->tmp_cap, 2 * (size_t)n + 1, sizeof *c->tmp);
        int64_t *pre = c->tmp, *suf = c->tmp + n;
        if (dbp_decode(c, "DELTA_BYTE_ARRAY prefix lengths", &p, end, n, pre) ||
            dbp_decode(c, "DELTA_BYTE_ARRAY suffix lengths", &p, end, n, suf))
            return -1;
        size_t total = 0, sufs = 0;
        int64_t prev = 0;
        for (int32_t k = 0; k < n; k++) {
            if (pre[k] < 0 || pre[k] > prev || suf[k] < 0 || suf[k] > end - p)
                return col_err(
                    c, "DELTA_BYTE_ARRAY: value %d has prefix %lld (previous length %lld), suffix %lld", k,
                    (long long)pre[k], (long long)prev, (long long)suf[k]);
            prev = pre[k] + suf[k];
            total += (size_t)prev;
            sufs += (size_t)suf[k];
            if (total > MAX_PAGE_BYTES || sufs > (size_t)(end - p))
                return col_err(c, "DELTA_BYTE_ARRAY: values exceed the page (%zu bytes)", total);
        }
        c->own_buf = grow(c->own_buf, &c->own_cap, total + 1, 1);
        uint8_t *q = c->own_buf;
        for (int32_t k = 0; k < n; k++) {
            if (pre[k]) memcpy(q, out[k - 1].s.ptr, (size_t)pre[k]);
            memcpy(q + pre[k], p, (size_t)suf[k]);
            p += suf[k];
            out[k].s.ptr = q;
            out[k].s.len = (uint32_t)(pre[k] + suf[k]);
            q += out[k].s.len;
        }
        return 0;
    }
    if (enc == ENC_BSS && t == PQ_FIXED_LEN_BYTE_ARRAY) { /* byte j of value k at p[j * n + k] */
        size_t w = fixed_width(c);
        if ((size_t)n * w > avail)
            return col_err(c, "BYTE_STREAM_SPLIT: %d values of %zu bytes need more than %zu bytes", n, w, avail);
        c->own_buf = grow(c->own_buf, &c->own_cap, (size_t)n * w + 1, 1);
        for (int32_t k = 0; k < n; k++) {
            uint8_t *q = c->own_buf + (size_t)k * w;
            for (size_t j = 0; j < w; j++)
                q[j] = p[j * (size_t)n + (size_t)k];
            out[k].s.ptr = q;
            out[k].s.len = (uint32_t)w;
        }
        return 0;
    }
    if (enc == ENC_BSS && (t == PQ_FLOAT || t == PQ_DOUBLE || t == PQ_INT32 || t == PQ_INT64)) {
        size_t w = t == PQ_FLOAT || t == PQ_INT32 ? 4 : 8;
        if ((size_t)n * w > avail)
            return col_err(c, "BYTE_STREAM_SPLIT: %d values need more than %zu bytes", n, avail);
        for (int32_t k = 0; k < n; k++) {
            uint8_t b[8];
            for (size_t j = 0; j < w; j++)
                b[j] = p[j * (size_t)n + (size_t)k];
            number_at(t, b, &out[k]);
        }
        return 0;
    }
    return col_err(c, "unsupported encoding %s for physical type %s", pq_encoding_name(enc), pq_type_name(t));
}

/* ---- pages ---- */

struct page_header {
    int type;
    int32_t usize, csize;
    int32_t n_values, encoding, def_enc, rep_enc; /* v1, dictionary (n_values, encoding) */
    int32_t def_len, rep_len, compressed;         /* v2 */
    int has_data, has_dict, has_v2;
};

static void header_data_v1(struct thrift *t, struct page_header *h) {
    int16_t last = 0, id;
    int ft;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1)
            h->n_values = thrift_i32(t, ft);
        else if (id == 2)
            h->encoding = thrift_i32(t, ft);
        else if (id == 3)
            h->def_enc = thrift_i32(t, ft);
        else if (id == 4)
            h->rep_enc = thrift_i32(t, ft);
        else
            thrift_skip(t, ft);
    }
}

static void header_dict(struct thrift *t, struct page_header *h) {
    int16_t last = 0, id;
    int ft;
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1)
            h->n_values = thrift_i32(t, ft);
        else if (id == 2)
            h->encoding = thrift_i32(t, ft);
        else
            thrift_skip(t, ft);
    }
}

static void header_data_v2(struct thrift *t, struct page_header *h) {
    int16_t last = 0, id;
    int ft;
    h->compressed = 1; /* the default of is_compressed */
    while (thrift_field(t, &last, &ft, &id)) {
        if (id == 1)
            h->n_values = thrift_i32(t, ft);
        else if (id == 4)
            h->encoding = thrift_i32(t, ft);
        else if (id == 5)
            h->def_len = thrift_i32(t, ft);
        else if (id == 6)
            h->rep_len = thrift_i32(t, ft);
        else if (id == 7)
            h->compressed = thrift_bool(t, ft, 0);
        else
            thrift_skip(t, ft);
    }
}

static int header_read(struct pq_column *c, struct page_header *h, size_t *hlen) {
    struct thrift t;
    memset(h, 0, sizeof *h);
    h->type = -1;
    thrift_init(&t, c->pos, (size_t)(c->end - c->pos));
    int16_t last = 0, id;
    int ft;
    while (thrift_field(&t, &last, &ft, &id)) {
        if (id == 1)
            h->type = thrift_i32(&t, ft);
        else if (id == 2)
            h->usize = thrift_i32(&t, ft);
        else if (id == 3)
            h->csize = thrift_i32(&t, ft);
        else if (id == 5 && ft == THRIFT_STRUCT)
            h->has_data = 1, header_data_v1(&t, h);
        else if (id == 7 && ft == THRIFT_STRUCT)
            h->has_dict = 1, header_dict(&t, h);
        else if (id == 8 && ft == THRIFT_STRUCT)
            h->has_v2 = 1, header_data_v2(&t, h);
        else
            thrift_skip(&t, ft);
    }
    if (t.why) return col_err(c, "corrupt page header (%s)", t.why);
    *hlen = thrift_pos(&t);
    if (h->type < 0) return col_err(c, "page header without a page type");
    if (h->csize < 0 || h->usize < 0)
        return col_err(c, "page header with sizes %d compressed, %d uncompressed", h->csize, h->usize);
    if (h->n_values < 0 || h->n_values > MAX_PAGE_ENTRIES)
        return col_err(c, "page header with %d values", h->n_values);
    /* Refuse before allocating what the page's bytes cannot hold: no codec expands more than
     * max_expansion, a dictionary value takes at least one bit, and a data page's entries are
     * bounded by its bytes (levels and values take at least one bit each, except for long RLE
     * runs, allowed up to MIN_PAGE_ENTRIES: all-null or constant pages). */
    size_t payload = (size_t)h->csize;
    if (h->type == PAGE_DATA_V2 && h->compressed == 0) payload = (size_t)h->usize;
    if (c->codec != PQ_CODEC_UNCOMPRESSED && (size_t)h->usize > payload * max_expansion(c->codec) + 1024)
        return col_err(c, "page declares %d bytes uncompressed from %d compressed, more than %s can expand "
                          "(%zux); corrupt or hostile file",
                       h->usize, h->csize, pq_codec_name(c->codec), max_expansion(c->codec));
    if ((size_t)h->usize > MAX_PAGE_BYTES)
        return col_err(c, "page of %d bytes uncompressed exceeds the 1 GiB page limit", h->usize);
    uint64_t bits = 8 * (uint64_t)h->usize;
    if (h->type == PAGE_DICT && (uint64_t)h->n_values > bits)
        return col_err(c, "dictionary page of %d bytes claims %d values", h->usize, h->n_values);
    if (h->type != PAGE_DICT && (uint64_t)h->n_values > bits && h->n_values > MIN_PAGE_ENTRIES)
        return col_err(c, "data page of %d bytes claims %d values", h->usize, h->n_values);
    if ((size_t)h->csize > (size_t)(c->end - c->pos) - *hlen)
        return col_err(c, "page of %d bytes runs past the end of the column chunk (%zu bytes left)", h->csize,
                       (size_t)(c->end - c->pos) - *hlen);
    if ((h->type == PAGE_DATA && !h->has_data) || (h->type == PAGE_DICT && !h->has_dict) ||
        (h->type == PAGE_DATA_V2 && !h->has_v2))
        return col_err(c, "page header of type %d lacks its type-specific header", h->type);
    return 0;
}

static int dict_read(struct pq_column *c, const struct page_header *h, const uint8_t *payload) {
    if (c->dict) return col_err(c, "a second dictionary page in one column chunk");
    if (h->encoding != ENC_PLAIN && h->encoding != ENC_PLAIN_DICT)
        return col_err(c, "unsupported dictionary page encoding %s", pq_encoding_name(h->encoding));
    size_t cap = 0;
    uint8_t *buf = NULL;
    const uint8_t *data = page_bytes(c, payload, (size_t)h->csize, (size_t)h->usize, 1, &buf, &cap);
    if (!data) {
        free(buf);
        return -1;
    }
    if (data == payload) { /* uncompressed: keep pointing into the map */
        free(buf);
        buf = NULL;
    }
    c->dict_buf = buf;
    c->dict = xmalloc(((size_t)h->n_values + 1) * sizeof *c->dict);
    c->n_dict = h->n_values;
    if (values_decode(c, ENC_PLAIN, data, data + h->usize, h->n_values, c->dict, 1)) return -1;
    return 0;
}

static int levels_check(struct pq_column *c, const char *what, const int32_t *lv, int32_t n, int max) {
    for (int32_t k = 0; k < n; k++)
        if (lv[k] < 0 || lv[k] > max)
            return col_err(c, "%s level %d at entry %d exceeds the maximum %d", what, lv[k], k, max);
    return 0;
}

/* v1 levels: a 4-byte length, then RLE/bit-packed hybrid data. */
static int levels_v1(struct pq_column *c, const char *what, int enc, const uint8_t **pp, const uint8_t *end,
                     int32_t n, int max, int32_t *out) {
    if (enc != ENC_RLE) return col_err(c, "unsupported %s level encoding %s", what, pq_encoding_name(enc));
    const uint8_t *p = *pp;
    uint32_t len;
    if (end - p < 4) return col_err(c, "truncated %s levels", what);
    memcpy(&len, p, 4);
    p += 4;
    if (len > (size_t)(end - p))
        return col_err(c, "%s levels of %u bytes, %zu left in the page", what, len, (size_t)(end - p));
    if (rle_hybrid(c, what, p, p + len, bit_width(max), n, out) || levels_check(c, what, out, n, max))
        return -1;
    *pp = p + len;
    return 0;
}

static int data_page_read(struct pq_column *c, const struct page_header *h, const uint8_t *payload) {
    int32_t n = h->n_values;
    if (c->n_read + n > c->n_values)
        return col_err(c, "pages hold more than the %lld values the column chunk declares",
                       (long long)c->n_values);
    size_t cap = c->lv_cap; /* rep and def share one capacity */
    c->rep = grow(c->rep, &cap, (size_t)n, sizeof *c->rep);
    if (cap != c->lv_cap) {
        c->def = xrealloc(c->def, cap * sizeof *c->def);
        c->lv_cap = cap;
    }
    const uint8_t *p, *end;
    if (h->type == PAGE_DATA) {
        p = page_bytes(c, payload, (size_t)h->csize, (size_t)h->usize, 1, &c->page_buf, &c->page_cap);
        if (!p) return -1;
        end = p + h->usize;
        if (c->max_rep && levels_v1(c, "repetition", h->rep_enc, &p, end, n, c->max_rep, c->rep)) return -1;
        if (c->max_def && levels_v1(c, "definition", h->def_enc, &p, end, n, c->max_def, c->def)) return -1;
    } else {
        if (h->rep_len < 0 || h->def_len < 0 || (int64_t)h->rep_len + h->def_len > h->csize ||
            (int64_t)h->rep_len + h->def_len > h->usize)
            return col_err(c, "DATA_PAGE_V2 level lengths %d + %d exceed the page (%d bytes)", h->rep_len,
                           h->def_len, h->csize);
        const uint8_t *lv = payload;
        if (c->max_rep) {
            if (rle_hybrid(c, "repetition", lv, lv + h->rep_len, bit_width(c->max_rep), n, c->rep) ||
                levels_check(c, "repetition", c->rep, n, c->max_rep))
                return -1;
        }
        lv += h->rep_len;
        if (c->max_def) {
            if (rle_hybrid(c, "definition", lv, lv + h->def_len, bit_width(c->max_def), n, c->def) ||
                levels_check(c, "definition", c->def, n, c->max_def))
                return -1;
        }
        lv += h->def_len;
        size_t skip = (size_t)h->rep_len + (size_t)h->def_len;
        p = page_bytes(c, lv, (size_t)h->csize - skip, (size_t)h->usize - skip, h->compressed, &c->page_buf,
                       &c->page_cap);
        if (!p) return -1;
        end = p + (h->usize - skip);
    }
    if (c->max_rep && n > 0 && c->n_read == 0 && c->rep[0] != 0)
        return col_err(c, "the first value of the column chunk has repetition level %d, expected 0",
                       c->rep[0]);
    int32_t nv = n;
    if (c->max_def) {
        nv = 0;
        for (int32_t k = 0; k < n; k++)
            nv += c->def[k] == c->max_def;
    }
    c->vals = grow(c->vals, &c->vals_cap, (size_t)nv + 1, sizeof *c->vals);
    if (values_decode(c, h->encoding, p, end, nv, c->vals, 0)) return -1;
    c->n_entries = n;
    c->i_entry = 0;
    c->n_vals = nv;
    c->i_val = 0;
    c->n_read += n;
    return 0;
}

/* Loads the next data page: 1 = loaded, 0 = the chunk is done, -1 = error. */
static int page_next(struct pq_column *c) {
    for (;;) {
        if (c->n_read >= c->n_values) return 0;
        if (c->pos >= c->end)
            return col_err(c, "column chunk ends after %lld of its %lld values", (long long)c->n_read,
                           (long long)c->n_values);
        struct page_header h;
        size_t hlen = 0;
        if (header_read(c, &h, &hlen)) return -1;
        const uint8_t *payload = c->pos + hlen;
        int rc = 0;
        if (h.type == PAGE_DICT)
            rc = dict_read(c, &h, payload);
        else if (h.type == PAGE_DATA || h.type == PAGE_DATA_V2)
            rc = data_page_read(c, &h, payload);
        if (rc) return -1;
        c->pos = payload + h.csize;
        if ((h.type == PAGE_DATA || h.type == PAGE_DATA_V2) && c->n_entries > 0) return 1;
    }
}

int pq_column_peek(struct pq_column *c, int *rep, int *def) {
    while (c->i_entry >= c->n_entries) {
        int rc = page_next(c);
        if (rc <= 0) return rc;
    }
    *rep = c->max_rep ? c->rep[c->i_entry] : 0;
    *def = c->max_def ? c->def[c->i_entry] : 0;
    return 1;
}

int pq_column_take(struct pq_column *c, const struct pq_value **val) {
    int rep, def;
    int rc = pq_column_peek(c, &rep, &def);
    if (rc < 0) return -1;
    if (rc == 0) return col_err(c, "column chunk ended before the record did");
    *val = NULL;
    if (def == c->max_def) *val = &c->vals[c->i_val++];
    c->i_entry++;
    return 0;
}
