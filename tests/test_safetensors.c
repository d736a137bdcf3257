/* Tests for src/io/safetensors: reading the HF fixtures (single file F32, sharded BF16),
 * write->read round trips in F32/BF16/F16 (single and sharded), every malformed-file error
 * with its text, and that a failed save leaves the existing file untouched. Expected fixture
 * values were read with python3 + struct from the files themselves. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "test.h"

#define QWEN2 "tests/fixtures/hf/qwen2-tiny"
#define MISTRAL "tests/fixtures/hf/mistral-tiny-bf16-sharded"
#define TMP "/tmp/csft_test_st"

static int shape_is(const struct st_tensor *t, int n_dims, int64_t d0, int64_t d1) {
    if (!t || t->n_dims != n_dims) return 0;
    if (n_dims >= 1 && t->shape[0] != d0) return 0;
    if (n_dims >= 2 && t->shape[1] != d1) return 0;
    return 1;
}

static void test_read_qwen2(void) {
    struct safetensors *st;
    EXPECT(safetensors_open(&st, QWEN2 "/model.safetensors") == 0, "%s", err_msg());
    if (!st) return;
    EXPECT(safetensors_count(st) == 26, "count %d", safetensors_count(st));
    const struct st_tensor *e = safetensors_find(st, "model.embed_tokens.weight");
    EXPECT(shape_is(e, 2, 512, 64) && e->dtype == DTYPE_F32 && e->numel == 512 * 64 &&
               e->nbytes == 512 * 64 * 4,
           "embed descriptor");
    EXPECT(e && strstr(e->file, "qwen2-tiny/model.safetensors"), "file field");
    EXPECT(safetensors_find(st, "lm_head.weight") == NULL, "tied: no lm_head");
    float *emb = xmalloc(512 * 64 * sizeof(float));
    int64_t shape[2] = {512, 64};
    EXPECT(safetensors_read_f32(st, "model.embed_tokens.weight", emb, shape, 2) == 0, "%s", err_msg());
    EXPECT(emb[0] == -0.025539878755807877f && emb[1] == 0.05141359195113182f &&
               emb[2] == -0.017657579854130745f && emb[512 * 64 - 1] == -0.08330494910478592f,
           "embed values %g %g %g %g", emb[0], emb[1], emb[2], emb[512 * 64 - 1]);
    float bias[64];
    int64_t s64 = 64;
    EXPECT(safetensors_read_f32(st, "model.layers.0.self_attn.q_proj.bias", bias, &s64, 1) == 0, "%s",
           err_msg());
    EXPECT(bias[0] == -0.061445217579603195f && bias[63] == -0.06967830657958984f, "bias %g %g", bias[0],
           bias[63]);
    const struct st_tensor *info = NULL;
    float *nw = safetensors_load_f32(st, "model.norm.weight", &info);
    EXPECT(nw && info && shape_is(info, 1, 64, 0) && nw[0] == 1.0018526315689087f &&
               nw[63] == 1.018039345741272f,
           "norm via load_f32");
    free(nw);
    /* Every tensor reachable by index and by name. */
    for (int i = 0; i < safetensors_count(st); i++)
        EXPECT(safetensors_find(st, safetensors_at(st, i)->name) == safetensors_at(st, i), "lookup %d", i);
    safetensors_close(st);
    free(emb);
    /* The folder resolves to model.safetensors. */
    EXPECT(safetensors_open(&st, QWEN2) == 0 && safetensors_count(st) == 26, "%s", err_msg());
    safetensors_close(st);
}

static void test_read_mistral_sharded(void) {
    struct safetensors *st;
    EXPECT(safetensors_open(&st, MISTRAL) == 0, "%s", err_msg());
    if (!st) return;
    EXPECT(safetensors_count(st) == 21, "count %d", safetensors_count(st));
    const struct st_tensor *q = safetensors_find(st, "model.layers.0.self_attn.q_proj.weight");
    EXPECT(shape_is(q, 2, 128, 64) && q->dtype == DTYPE_BF16 && q->nbytes == 128 * 64 * 2,
           "q_proj (head_dim 32)");
    EXPECT(q && strstr(q->file, "model-00001-of-00002.safetensors"), "q_proj in shard 1");
    const struct st_tensor *lm = safetensors_find(st, "lm_head.weight");
    EXPECT(shape_is(lm, 2, 512, 64) && strstr(lm->file, "model-00002-of-00002.safetensors"),
           "lm_head in shard 2");
    float *w = xmalloc(512 * 64 * sizeof(float));
    int64_t shape[2] = {512, 64};
    EXPECT(safetensors_read_f32(st, "lm_head.weight", w, shape, 2) == 0, "%s", err_msg());
    EXPECT(w[0] == 0.0159912109375f && w[1] == -0.061279296875f && w[2] == -0.007293701171875f &&
               w[512 * 64 - 1] == 0.0037994384765625f,
           "lm_head bf16 values %g %g %g", w[0], w[1], w[2]);
    EXPECT(safetensors_read_f32(st, "model.embed_tokens.weight", w, shape, 2) == 0, "%s", err_msg());
    EXPECT(w[0] == -0.01190185546875f && w[1] == -0.0546875f && w[512 * 64 - 1] == -0.048583984375f,
           "embed bf16");
    float nw[64];
    int64_t s64 = 64;
    EXPECT(safetensors_read_f32(st, "model.norm.weight", nw, &s64, 1) == 0, "%s", err_msg());
    EXPECT(nw[0] == 0.9609375f && nw[1] == 1.0f && nw[2] == 1.046875f && nw[63] == 1.09375f, "norm bf16");
    free(w);
    safetensors_close(st);
    /* The index path directly, and one shard alone. */
    EXPECT(safetensors_open(&st, MISTRAL "/model.safetensors.index.json") == 0 && safetensors_count(st) == 21,
           "%s", err_msg());
    safetensors_close(st);
    EXPECT(safetensors_open(&st, MISTRAL "/model-00002-of-00002.safetensors") == 0 &&
               safetensors_count(st) == 10,
           "%s", err_msg());
    safetensors_close(st);
}

/* ---- round trips ----------------------------------------------------------------------- */

static void rm_rf(const char *dir) {
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "rm failed: %s\n", cmd);
    free(cmd);
}

static float expect_rt(float x, enum dtype t) {
    if (t == DTYPE_BF16) return bf16_to_f32(f32_to_bf16(x));
    if (t == DTYPE_F16) return f16_to_f32(f32_to_f16(x));
    return x;
}

static int count_files(const char *dir, const char *substr) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, substr)) n++;
    closedir(d);
    return n;
}

/* Entries a (3,5), b scalar, c (0,4) empty, d (1000) spanning F32/BF16/F16. */
#define N_RT 5
static float rt_a[15], rt_b[1], rt_d[1000], rt_e[7];
static void rt_entries(struct st_entry *e, enum dtype t) {
    for (int i = 0; i < 15; i++)
        rt_a[i] = (float)(i - 7) * 0.3333333f;
    rt_b[0] = 3.14159265f;
    for (int i = 0; i < 1000; i++)
        rt_d[i] = (float)(i * 0.001 - 0.5) * (i % 3 ? 1.0f : 1e-3f);
    for (int i = 0; i < 7; i++)
        rt_e[i] = (float)i + 0.1f;
    e[0] = (struct st_entry){.name = "layer.a", .n_dims = 2, .shape = {3, 5}, .data = rt_a, .dtype = t};
    e[1] = (struct st_entry){.name = "b \"quoted\"\\", .n_dims = 0, .data = rt_b, .dtype = t};
    e[2] = (struct st_entry){.name = "c.empty", .n_dims = 2, .shape = {0, 4}, .data = NULL, .dtype = t};
    e[3] = (struct st_entry){.name = "d", .n_dims = 1, .shape = {1000}, .data = rt_d, .dtype = t};
    e[4] = (struct st_entry){.name = "e.odd", .n_dims = 1, .shape = {7}, .data = rt_e, .dtype = DTYPE_F16};
}

static void check_rt(struct safetensors *st, const struct st_entry *e, int n) {
    EXPECT(safetensors_count(st) == n, "count %d", safetensors_count(st));
    for (int i = 0; i < n; i++) {
        const struct st_tensor *t = safetensors_find(st, e[i].name);
        EXPECT(t && t->dtype == e[i].dtype && t->n_dims == e[i].n_dims, "tensor %s", e[i].name);
        if (!t) continue;
        int64_t numel = 1;
        for (int k = 0; k < e[i].n_dims; k++)
            numel *= e[i].shape[k];
        float *buf = xmalloc((size_t)(numel ? numel : 1) * sizeof(float));
        EXPECT(safetensors_read_f32(st, e[i].name, buf, e[i].shape, e[i].n_dims) == 0, "%s", err_msg());
        int bad = 0;
        for (int64_t j = 0; j < numel; j++)
            bad += buf[j] != expect_rt(e[i].data[j], e[i].dtype);
        EXPECT(bad == 0, "%s: %d values differ", e[i].name, bad);
        free(buf);
    }
    /* Tensors in the order given (within a file). */
    for (int i = 1; i < safetensors_count(st); i++) {
        const struct st_tensor *a = safetensors_at(st, i - 1), *b = safetensors_at(st, i);
        if (a->file == b->file && a->nbytes && b->nbytes)
            EXPECT((const char *)a->data < (const char *)b->data, "order %s before %s", a->name, b->name);
    }
}

static void test_round_trip(void) {
    enum dtype types[3] = {DTYPE_F32, DTYPE_BF16, DTYPE_F16};
    for (int ti = 0; ti < 3; ti++) {
        rm_rf(TMP "/rt");
        struct st_entry e[N_RT];
        rt_entries(e, types[ti]);
        EXPECT(safetensors_save(TMP "/rt", "model", e, N_RT, 0) == 0, "%s", err_msg());
        /* HF layout: header length a multiple of 8, metadata, space padding. */
        size_t len;
        char *raw = file_read_all(TMP "/rt/model.safetensors", &len);
        EXPECT(raw && len > 8, "raw read");
        if (!raw) continue;
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = (n << 8) | (uint8_t)raw[i];
        EXPECT(n % 8 == 0 && n + 8 <= len, "header length %llu", (unsigned long long)n);
        const char *start = "{\"__metadata__\":{\"format\":\"pt\"},\"layer.a\":{\"dtype\":\"";
        EXPECT(strncmp(raw + 8, start, strlen(start)) == 0, "header start: %.80s", raw + 8);
        EXPECT(raw[8 + n - 1] == ' ' || raw[8 + n - 1] == '}', "padding");
        free(raw);
        struct safetensors *st;
        EXPECT(safetensors_open(&st, TMP "/rt") == 0, "%s", err_msg());
        if (st) check_rt(st, e, N_RT);
        safetensors_close(st);
        EXPECT(count_files(TMP "/rt", ".tmp.") == 0, "no temp files left");
    }
}

static void test_round_trip_sharded(void) {
    rm_rf(TMP "/sh");
    struct st_entry e[N_RT];
    rt_entries(e, DTYPE_BF16);
    /* Bytes: a 30, b 2, c 0, d 2000, e 14. Limit 40: [a b c] [d (alone, over the limit)] [e]. */
    EXPECT(safetensors_save(TMP "/sh", "model", e, N_RT, 40) == 0, "%s", err_msg());
    EXPECT(file_exists(TMP "/sh/model-00001-of-00003.safetensors") &&
               file_exists(TMP "/sh/model-00002-of-00003.safetensors") &&
               file_exists(TMP "/sh/model-00003-of-00003.safetensors") &&
               file_exists(TMP "/sh/model.safetensors.index.json") &&
               !file_exists(TMP "/sh/model.safetensors"),
           "shard files");
    char *idx = file_read_all(TMP "/sh/model.safetensors.index.json", NULL);
    EXPECT(idx && strstr(idx, "\"total_size\": 2046") &&
               strstr(idx, "\"d\": \"model-00002-of-00003.safetensors\"") &&
               strstr(idx, "\"e.odd\": \"model-00003-of-00003.safetensors\""),
           "index: %s", idx ? idx : "");
    /* weight_map keys sorted, as transformers writes them. */
    EXPECT(idx && strstr(idx, "\"b \\\"quoted\\\"\\\\\"") < strstr(idx, "\"c.empty\"") &&
               strstr(idx, "\"d\"") < strstr(idx, "\"layer.a\""),
           "sorted");
    free(idx);
    struct safetensors *st;
    EXPECT(safetensors_open(&st, TMP "/sh") == 0, "%s", err_msg());
    if (st) {
        check_rt(st, e, N_RT);
        EXPECT(strstr(safetensors_find(st, "layer.a")->file, "model-00001-of-00003"), "a in shard 1");
    }
    safetensors_close(st);
    /* Under the limit: one file, no index; a stale index in the folder is removed so it cannot
     * shadow the new file. */
    EXPECT(safetensors_save(TMP "/sh", "model", e, N_RT, 1 << 20) == 0, "%s", err_msg());
    EXPECT(file_exists(TMP "/sh/model.safetensors") && !file_exists(TMP "/sh/model.safetensors.index.json"),
           "single file, stale index gone");
    EXPECT(safetensors_open(&st, TMP "/sh") == 0 && st &&
               strstr(safetensors_at(st, 0)->file, "model.safetensors"),
           "%s", err_msg());
    safetensors_close(st);
    /* Another stem (as PEFT's adapter_model). */
    EXPECT(safetensors_save(TMP "/sh", "adapter_model", e, 2, 0) == 0, "%s", err_msg());
    EXPECT(safetensors_open(&st, TMP "/sh/adapter_model.safetensors") == 0 && st &&
               safetensors_count(st) == 2,
           "%s", err_msg());
    safetensors_close(st);
}

/* ---- malformed files ------------------------------------------------------------------- */

/* Writes <8-byte length><header><data_len zero bytes>; hlen_override replaces the length. */
static void write_raw(const char *path, const char *header, size_t data_len, uint64_t hlen_override) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint64_t n = hlen_override ? hlen_override : strlen(header);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(n >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    for (size_t i = 0; i < data_len; i++)
        fputc(0, f);
    fclose(f);
}

/* Opens path, expects failure with an error containing each of the given substrings. */
static void expect_open_fails(const char *path, const char *s1, const char *s2, const char *s3) {
    struct safetensors *st = NULL;
    err_clear();
    int rc = safetensors_open(&st, path);
    EXPECT(rc != 0 && st == NULL, "open %s should fail", path);
    if (s1) EXPECT_ERR(s1);
    if (s2) EXPECT_ERR(s2);
    if (s3) EXPECT_ERR(s3);
    safetensors_close(st);
}

#define BAD TMP "/bad/x.safetensors"
#define A16 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}"

static void test_malformed(void) {
    rm_rf(TMP "/bad");
    dir_create(TMP "/bad");
    /* Shorter than the length field. */
    FILE *f = fopen(BAD, "wb");
    fwrite("abcde", 1, 5, f);
    fclose(f);
    expect_open_fails(BAD, BAD ": truncated: 5 bytes", NULL, NULL);
    /* Header length beyond the file. */
    write_raw(BAD, A16 "}", 16, 1000);
    expect_open_fails(BAD, BAD ": header length 1000 is not within the file", NULL, NULL);
    /* Bad JSON. */
    write_raw(BAD, "{\"a\":{\"dtype\":\"F32\",", 16, 0);
    expect_open_fails(BAD, BAD ": header is not valid JSON", NULL, NULL);
    write_raw(BAD, "[1,2]", 0, 0);
    expect_open_fails(BAD, BAD ": header is not a JSON object", NULL, NULL);
    write_raw(BAD, A16 "} xx", 16, 0);
    expect_open_fails(BAD, BAD ": header has trailing bytes", NULL, NULL);
    /* Unknown dtype. */
    write_raw(BAD, "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": unknown dtype \"F8_E4M3\"", NULL, NULL);
    /* Missing fields, bad shapes. */
    write_raw(BAD, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": missing or non-list \"shape\"", NULL, NULL);
    write_raw(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": shape[1] is not a non-negative integer", NULL, NULL);
    write_raw(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": shape[0] is not a non-negative integer", NULL, NULL);
    write_raw(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": \"data_offsets\" must be a list [begin, end]", NULL, NULL);
    /* Shape x dtype size differs from the byte range. */
    write_raw(BAD, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[0,16]}}", 16, 0);
    expect_open_fails(
        BAD,
        BAD ": tensor \"w\": shape [3, 2] x BF16 (2 bytes each) needs 12 bytes but data_offsets [0, 16] "
            "span 16",
        NULL, NULL);
    /* Offsets past the data buffer, and a file truncated inside the data. */
    write_raw(BAD, A16 ",\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 20, 0);
    expect_open_fails(BAD,
                      BAD ": tensor \"b\": data_offsets [16, 32] past the end of the data buffer (20 bytes",
                      NULL, NULL);
    write_raw(BAD, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, 0);
    expect_open_fails(BAD, BAD ": tensor \"w\": data_offsets [8, 0] end before begin", NULL, NULL);
    /* Overlapping ranges. */
    write_raw(BAD, A16 ",\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24, 0);
    expect_open_fails(BAD, BAD ": tensor \"b\" bytes [8, 24) overlap tensor \"a\" bytes [0, 16)", NULL, NULL);
    /* Duplicate name. */
    write_raw(BAD, A16 ",\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", 32, 0);
    expect_open_fails(BAD, BAD ": tensor \"a\" appears twice", NULL, NULL);
    /* A real file cut in half. */
    size_t len;
    char *raw = file_read_all(QWEN2 "/model.safetensors", &len);
    if (raw) {
        FILE *g = fopen(BAD, "wb");
        fwrite(raw, 1, len / 2, g);
        fclose(g);
        free(raw);
        expect_open_fails(BAD, BAD ": tensor \"", "past the end of the data buffer", "file truncated?");
    }
    /* Not there / empty folder. */
    expect_open_fails(TMP "/bad/none.safetensors", TMP "/bad/none.safetensors: no such file or folder", NULL,
                      NULL);
    unlink(BAD);
    expect_open_fails(TMP "/bad",
                      TMP "/bad: folder has neither model.safetensors.index.json nor model.safetensors", NULL,
                      NULL);
    /* __metadata__ is ignored; other dtypes listed but refused by read_f32. */
    write_raw(BAD,
              "{\"__metadata__\":{\"format\":\"pt\"},\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_"
              "offsets\":[0,16]}}",
              16, 0);
    struct safetensors *st;
    EXPECT(safetensors_open(&st, BAD) == 0 && safetensors_count(st) == 1, "%s", err_msg());
    if (st) {
        EXPECT(safetensors_find(st, "ids") && safetensors_find(st, "ids")->dtype == DTYPE_I64, "I64 listed");
        float buf[2];
        int64_t s2 = 2;
        EXPECT(safetensors_read_f32(st, "ids", buf, &s2, 1) != 0, "I64 refused");
        EXPECT_ERR(BAD ": tensor \"ids\": dtype I64 cannot be read as float32");
        EXPECT(safetensors_load_f32(st, "ids", NULL) == NULL, "I64 refused by load");
        safetensors_close(st);
    }
    /* Unaligned data (header not padded): BF16 still reads correctly. */
    {
        const char *h = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}";
        FILE *g = fopen(BAD, "wb");
        uint64_t n = strlen(h);
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)(n >> (8 * i));
        uint8_t d[6] = {0x80, 0x3f, 0x00, 0xc0, 0x49, 0x40}; /* 1, -2, 3.140625 */
        fwrite(len8, 1, 8, g);
        fwrite(h, 1, n, g);
        fwrite(d, 1, 6, g);
        fclose(g);
        EXPECT(n % 2 == 1, "test needs an odd header length");
        EXPECT(safetensors_open(&st, BAD) == 0, "%s", err_msg());
        float v[3] = {0};
        int64_t s3 = 3;
        EXPECT(st && safetensors_read_f32(st, "w", v, &s3, 1) == 0, "%s", err_msg());
        EXPECT(v[0] == 1.0f && v[1] == -2.0f && v[2] == 3.140625f, "unaligned bf16 %g %g %g", v[0], v[1],
               v[2]);
        safetensors_close(st);
    }
}

static void test_read_errors(void) {
    struct safetensors *st;
    EXPECT(safetensors_open(&st, QWEN2) == 0, "%s", err_msg());
    if (!st) return;
    float *buf = xmalloc(512 * 64 * sizeof(float));
    int64_t wrong[2] = {64, 512};
    EXPECT(safetensors_read_f32(st, "model.embed_tokens.weight", buf, wrong, 2) != 0, "wrong shape");
    EXPECT_ERR(
        "qwen2-tiny/model.safetensors: tensor \"model.embed_tokens.weight\": expected shape [64, 512], "
        "found [512, 64]");
    EXPECT(safetensors_read_f32(st, "model.embed_tokens.weight", buf, wrong, 1) != 0, "wrong rank");
    EXPECT_ERR("expected shape [64], found [512, 64]");
    EXPECT(safetensors_read_f32(st, "lm_head.weight", buf, wrong, 2) != 0, "missing");
    EXPECT_ERR(QWEN2 ": no tensor \"lm_head.weight\"");
    EXPECT(safetensors_load_f32(st, "nope", NULL) == NULL, "missing via load");
    EXPECT_ERR(QWEN2 ": no tensor \"nope\"");
    free(buf);
    safetensors_close(st);
}

static void copy_file(const char *src, const char *dst) {
    size_t len;
    char *raw = file_read_all(src, &len);
    if (!raw) return;
    FILE *f = fopen(dst, "wb");
    fwrite(raw, 1, len, f);
    fclose(f);
    free(raw);
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

static void test_bad_index(void) {
    rm_rf(TMP "/idx");
    dir_create(TMP "/idx");
    copy_file(MISTRAL "/model-00001-of-00002.safetensors", TMP "/idx/model-00001-of-00002.safetensors");
    copy_file(MISTRAL "/model-00002-of-00002.safetensors", TMP "/idx/model-00002-of-00002.safetensors");
    const char *ix = TMP "/idx/model.safetensors.index.json";
    /* Missing shard. */
    write_text(ix, "{\"weight_map\": {\"lm_head.weight\": \"model-00002-of-00002.safetensors\", "
                   "\"model.norm.weight\": \"model-00003-of-00003.safetensors\"}}");
    expect_open_fails(TMP "/idx", ix,
                      "shard model-00003-of-00003.safetensors (holding tensor \"model.norm.weight\")",
                      "model-00003-of-00003.safetensors: cannot open: No such file");
    /* Tensor not in the shard it is mapped to, or in no shard. */
    write_text(ix, "{\"weight_map\": {\"lm_head.weight\": \"model-00001-of-00002.safetensors\", "
                   "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_open_fails(
        ix, ix, "weight_map maps tensor \"lm_head.weight\" to model-00001-of-00002.safetensors, but it is in",
        "idx/model-00002-of-00002.safetensors");
    write_text(ix, "{\"weight_map\": {\"lm_head.weight\": \"model-00002-of-00002.safetensors\", "
                   "\"model.layers.9.mlp.up_proj.weight\": \"model-00002-of-00002.safetensors\"}}");
    expect_open_fails(TMP "/idx", ix,
                      "weight_map maps tensor \"model.layers.9.mlp.up_proj.weight\" to "
                      "model-00002-of-00002.safetensors, which has no such tensor",
                      NULL);
    /* Malformed index. */
    write_text(ix, "{\"weight_map\": {\"lm_head.weight\": ");
    expect_open_fails(TMP "/idx", ix, ": not valid JSON", NULL);
    write_text(ix, "{\"metadata\": {}}");
    expect_open_fails(TMP "/idx", ix, ": missing or empty \"weight_map\"", NULL);
    write_text(ix, "{\"weight_map\": {\"lm_head.weight\": 3}}");
    expect_open_fails(TMP "/idx", ix, ": weight_map entry for tensor \"lm_head.weight\" is not a file name",
                      NULL);
    /* A bad shard is reported through the index. */
    copy_file(MISTRAL "/model.safetensors.index.json", ix);
    FILE *f = fopen(TMP "/idx/model-00002-of-00002.safetensors", "r+b");
    if (f) {
        fseek(f, 8, SEEK_SET); /* the header's opening brace */
        fputc('x', f);
        fclose(f);
    }
    expect_open_fails(TMP "/idx", ix, "shard model-00002-of-00002.safetensors",
                      "idx/model-00002-of-00002.safetensors: header is not valid JSON");
}

static void test_failed_save_keeps_old(void) {
    rm_rf(TMP "/keep");
    struct st_entry e[N_RT];
    rt_entries(e, DTYPE_F32);
    EXPECT(safetensors_save(TMP "/keep", "model", e, 2, 0) == 0, "%s", err_msg());
    size_t old_len, len;
    char *old = file_read_all(TMP "/keep/model.safetensors", &old_len);
    /* Writes fail with EFBIG past 4 KiB (works as root, unlike a read-only folder). */
    static float big[8192];
    struct st_entry b[2] = {
        {.name = "small", .n_dims = 1, .shape = {4}, .data = big, .dtype = DTYPE_F32},
        {.name = "big", .n_dims = 1, .shape = {8192}, .data = big, .dtype = DTYPE_F32},
    };
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc1 = safetensors_save(TMP "/keep", "model", b, 2, 0);
    char msg1[512];
    snprintf(msg1, sizeof msg1, "%s", err_msg());
    int rc2 = safetensors_save(TMP "/keep", "model", b, 2, 1024); /* sharded: second shard fails */
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, prev);
    EXPECT(rc1 != 0 && strstr(msg1, TMP "/keep/model.safetensors.tmp.") && strstr(msg1, "write failed"),
           "msg: %s", msg1);
    EXPECT(rc2 != 0, "sharded save must fail");
    EXPECT_ERR("model-00002-of-00002.safetensors.tmp.");
    char *now = file_read_all(TMP "/keep/model.safetensors", &len);
    EXPECT(old && now && len == old_len && memcmp(old, now, len) == 0, "old file untouched");
    EXPECT(count_files(TMP "/keep", ".tmp.") == 0 && count_files(TMP "/keep", "-of-") == 0 &&
               !file_exists(TMP "/keep/model.safetensors.index.json"),
           "no temp, shard or index files left");
    free(now);
    /* Invalid entries and an impossible folder fail before anything is written. */
    struct st_entry bad = {.name = "ids", .n_dims = 1, .shape = {4}, .data = big, .dtype = DTYPE_I64};
    EXPECT(safetensors_save(TMP "/keep", "model", &bad, 1, 0) != 0, "I64 write");
    EXPECT_ERR(TMP "/keep: tensor \"ids\": cannot write dtype I64");
    struct st_entry dup[2] = {b[0], b[0]};
    EXPECT(safetensors_save(TMP "/keep", "model", dup, 2, 0) != 0, "duplicate");
    EXPECT_ERR("tensor \"small\" given twice");
    EXPECT(safetensors_save(TMP "/keep/model.safetensors/sub", "model", e, 2, 0) != 0, "dir under a file");
    EXPECT_ERR("cannot create directory");
    now = file_read_all(TMP "/keep/model.safetensors", &len);
    EXPECT(old && now && len == old_len && memcmp(old, now, len) == 0, "old file still untouched");
    free(now);
    free(old);
}

/* Every safetensors file shipped with the fixtures opens and every float tensor converts. */
static void test_all_fixture_files(void) {
    const char *files[] = {
        "llama-tiny/model.safetensors",
        "llama-tiny/reference_full.safetensors",
        "llama-tiny/reference_lora.safetensors",
        "llama-tiny/lora_adapter/adapter_model.safetensors",
        "qwen3-tiny/model.safetensors",
        "qwen3-tiny/reference_full.safetensors",
        "qwen2-tiny/reference_lora.safetensors",
        "mistral-tiny-bf16-sharded/lora_adapter/adapter_model.safetensors",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = xasprintf("tests/fixtures/hf/%s", files[i]);
        struct safetensors *st;
        EXPECT(safetensors_open(&st, p) == 0 && safetensors_count(st) > 0, "%s", err_msg());
        for (int k = 0; st && k < safetensors_count(st); k++) {
            const struct st_tensor *info;
            float *v = safetensors_load_f32(st, safetensors_at(st, k)->name, &info);
            EXPECT(v && info == safetensors_at(st, k), "%s", err_msg());
            free(v);
        }
        safetensors_close(st);
        free(p);
    }
    struct safetensors *st;
    EXPECT(safetensors_open(&st, "tests/fixtures/hf/qwen2-tiny/reference_full.safetensors") == 0, "%s",
           err_msg());
    const struct st_tensor *lg = st ? safetensors_find(st, "logits") : NULL;
    EXPECT(lg && lg->n_dims == 3 && lg->shape[0] == 2 && lg->shape[1] == 24 && lg->shape[2] == 512,
           "logits shape");
    EXPECT(st && safetensors_find(st, "grad.model.embed_tokens.weight"), "grad present");
    safetensors_close(st);
}

int main(void) {
    RUN(test_read_qwen2);
    RUN(test_read_mistral_sharded);
    RUN(test_all_fixture_files);
    RUN(test_round_trip);
    RUN(test_round_trip_sharded);
    RUN(test_malformed);
    RUN(test_read_errors);
    RUN(test_bad_index);
    RUN(test_failed_save_keeps_old);
    return TEST_SUMMARY("safetensors");
}
