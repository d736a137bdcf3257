/* Fuzz targets: one entry point per parser of untrusted input, each taking the bytes of one
 * file (or, where a parser reads several files, one input split at "#SPLIT#" lines). Used by the
 * libFuzzer harness (fuzz/harness.c, one binary per target: make fuzz) and by
 * tests/test_fuzz_regress.c, which replays every kept crash input (tests/fuzz/regress/<target>/)
 * in the ordinary test suite. A target returns 0 whatever the input: errors are the expected
 * outcome; crashes, hangs, sanitizer reports and unbounded allocations are the bugs. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "data/dataset.h"
#include "data/mindrecord.h"
#include "data/reader.h"
#include "io/ckpt.h"
#include "io/safetensors.h"
#include "model/model_config.h"
#include "tok/chat.h"
#include "tok/jinja.h"
#include "tok/tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"

/* One scratch folder per process, removed at exit. */
static char fz_dir[256];
static void fz_cleanup(void) {
    if (fz_dir[0]) path_remove_tree(fz_dir);
}
static const char *fz_tmp(void) {
    if (!fz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/csft_fuzz_XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(fz_dir)) abort();
        atexit(fz_cleanup);
    }
    return fz_dir;
}
/* Writes bytes to <scratch>/<name>; returns the path (static buffer per slot). */
static const char *fz_write(int slot, const char *name, const void *p, size_t n) {
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", fz_tmp(), name);
    FILE *f = fopen(paths[slot], "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
    return paths[slot];
}
/* The input as a NUL-terminated string (malloc'd). */
static char *fz_cstr(const uint8_t *d, size_t n) {
    char *s = xmalloc(n + 1);
    memcpy(s, d, n);
    s[n] = 0;
    return s;
}
/* Splits data at the separator line "#SPLIT#\n" into up to max parts (the last takes the
 * rest): how one input carries several files. */
#define FZ_SEP "#SPLIT#\n"
static int fz_split(const uint8_t *d, size_t n, const uint8_t **part, size_t *len, int max) {
    int k = 0;
    size_t start = 0, sl = strlen(FZ_SEP);
    for (size_t i = 0; i + sl <= n && k < max - 1;) {
        if (memcmp(d + i, FZ_SEP, sl) == 0) {
            part[k] = d + start, len[k++] = i - start;
            start = i += sl;
        } else {
            i++;
        }
    }
    part[k] = d + start, len[k++] = n - start;
    return k;
}

static void read_all(const char *path, int skip_bad) {
    struct reader *r;
    if (reader_open_opts(&r, path, skip_bad)) return;
    cJSON *rec;
    for (int i = 0; i < 1000000 && reader_next(r, &rec) == 1; i++) {
        char *s = cJSON_PrintUnformatted(rec);
        free(s);
        cJSON_Delete(rec);
    }
    reader_close(r);
}

/* JSON / JSONL, gzip'd or not (the reader detects gzip by its magic). */
int fuzz_json(const uint8_t *d, size_t n) {
    size_t i = 0;
    while (i < n && (d[i] == ' ' || d[i] == '\n' || d[i] == '\t' || d[i] == '\r')) i++;
    const char *name = n >= 2 && d[0] == 0x1f && d[1] == 0x8b ? "x.jsonl.gz" : i < n && d[i] == '[' ? "x.json" : "x.jsonl";
    const char *p = fz_write(0, name, d, n);
    read_all(p, 0);
    read_all(p, 1);
    return 0;
}

int fuzz_parquet(const uint8_t *d, size_t n) {
    read_all(fz_write(0, "x.parquet", d, n), 0);
    return 0;
}

int fuzz_arrow(const uint8_t *d, size_t n) {
    read_all(fz_write(0, "x.arrow", d, n), 0);
    return 0;
}

static void st_walk(const char *path) {
    struct safetensors *st;
    if (safetensors_open(&st, path)) return;
    for (int i = 0; i < safetensors_count(st); i++) {
        const struct st_tensor *t = safetensors_at(st, i);
        int64_t numel = 1;
        for (int k = 0; k < t->n_dims; k++) numel = t->shape[k] > 0 && numel <= (1 << 20) / t->shape[k] ? numel * t->shape[k] : (1 << 21);
        if (numel > (1 << 20)) continue;
        float *buf = xmalloc(sizeof(float) * (size_t)(numel ? numel : 1));
        safetensors_read_f32(st, t->name, buf, t->shape, t->n_dims);
        free(buf);
    }
    safetensors_close(st);
}

/* A .safetensors file: header, then reads of every tensor small enough. */
int fuzz_safetensors(const uint8_t *d, size_t n) {
    st_walk(fz_write(0, "x.safetensors", d, n));
    return 0;
}

/* model.safetensors.index.json beside two shards: the input's first part is the index, the
 * second and third (separated by FZ_SEP lines) the shards' bytes. */
int fuzz_st_index(const uint8_t *d, size_t n) {
    const uint8_t *part[3];
    size_t len[3];
    int k = fz_split(d, n, part, len, 3);
    fz_write(1, "model-00001-of-00002.safetensors", k > 1 ? part[1] : d, k > 1 ? len[1] : 0);
    fz_write(2, "model-00002-of-00002.safetensors", k > 2 ? part[2] : d, k > 2 ? len[2] : 0);
    st_walk(fz_write(0, "model.safetensors.index.json", part[0], len[0]));
    return 0;
}

int fuzz_config_json(const uint8_t *d, size_t n) {
    struct model_config mc;
    memset(&mc, 0, sizeof mc);
    if (model_config_load(&mc, fz_write(0, "config.json", d, n), 0) == 0) {
        char *js = model_config_to_json(&mc);
        free(js);
    }
    return 0;
}

static void tok_exercise(struct tokenizer *tk) {
    static const char *texts[] = {"Hello, world! 123 héllo 😀 <|im_start|>user\n\tdon't  stop\n\n",
                                  "\xe4\xbd\xa0\xe5\xa5\xbd \xff\xfe bad utf-8 \xc3", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t *ids = NULL;
        int64_t nid = 0;
        if (tokenizer_encode(tk, texts[i], strlen(texts[i]), &ids, &nid) == 0) {
            char *out = NULL;
            size_t ol = 0;
            if (tokenizer_decode(tk, ids, nid, 0, &out, &ol) == 0) free(out);
        }
        free(ids);
    }
    int32_t v = tokenizer_vocab_size(tk);
    int32_t probe[64];
    for (int i = 0; i < 64; i++) probe[i] = v > 0 ? (int32_t)(((int64_t)i * 7919) % v) : 0;
    char *out = NULL;
    size_t ol = 0;
    if (v > 0 && tokenizer_decode(tk, probe, 64, 0, &out, &ol) == 0) free(out);
    for (int32_t i = 0; i < v && i < 512; i++) {
        out = NULL;
        if (tokenizer_decode(tk, &i, 1, 1, &out, &ol) == 0) free(out);
    }
}

int fuzz_tokenizer_json(const uint8_t *d, size_t n) {
    struct tokenizer *tk;
    if (tokenizer_load(&tk, fz_write(0, "tokenizer.json", d, n)) == 0) {
        tok_exercise(tk);
        tokenizer_free(tk);
    }
    return 0;
}

/* vocab.json, merges.txt, tokenizer_config.json (FZ_SEP between them; (the last part optional). */
int fuzz_vocab_merges(const uint8_t *d, size_t n) {
    const uint8_t *part[3];
    size_t len[3];
    int k = fz_split(d, n, part, len, 3);
    const char *v = fz_write(0, "vocab.json", part[0], len[0]);
    const char *m = fz_write(1, "merges.txt", k > 1 ? part[1] : d, k > 1 ? len[1] : 0);
    const char *c = k > 2 ? fz_write(2, "tokenizer_config.json", part[2], len[2]) : NULL;
    struct tokenizer *tk;
    if (tokenizer_load_files(&tk, v, m, c) == 0) {
        tok_exercise(tk);
        tokenizer_free(tk);
    }
    return 0;
}

static const char *fz_messages =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi <b>\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello!\",\"tool_calls\":[{\"type\":\"function\",\"function\":"
    "{\"name\":\"f\",\"arguments\":{\"x\":1}}}]},{\"role\":\"tool\",\"content\":\"42\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"more\"}]}]";
static const char *fz_tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
                              "\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}}}]";

/* tokenizer_config.json: its chat_template (string or named list) rendered on a conversation. */
int fuzz_tokenizer_config(const uint8_t *d, size_t n) {
    struct chat_template *t;
    if (chat_template_load(&t, fz_write(0, "tokenizer_config.json", d, n)) == 0) {
        cJSON *msgs = cJSON_Parse(fz_messages), *tools = cJSON_Parse(fz_tools);
        char *out = NULL;
        struct chat_span *spans = NULL;
        int ns = 0;
        if (chat_render(t, msgs, tools, 1, NULL, &out, &spans, &ns) == 0) free(out), free(spans);
        cJSON_Delete(msgs), cJSON_Delete(tools);
        chat_template_free(t);
    }
    return 0;
}

/* A Jinja template (the whole input) parsed and rendered with chat-template variables. */
int fuzz_jinja(const uint8_t *d, size_t n) {
    char *src = fz_cstr(d, n);
    struct jinja_template *t = jinja_template_parse(src, "fuzz.jinja");
    if (t) {
        cJSON *msgs = cJSON_Parse(fz_messages), *tools = cJSON_Parse(fz_tools), *bos = cJSON_CreateString("<s>"),
              *agp = cJSON_CreateTrue(), *num = cJSON_CreateNumber(3);
        struct jinja_var vars[] = {{"messages", msgs}, {"tools", tools},           {"bos_token", bos},
                                   {"eos_token", bos}, {"add_generation_prompt", agp}, {"n", num}};
        char *out = NULL;
        size_t ol = 0;
        if (jinja_render(t, vars, 6, &out, &ol) == 0) free(out);
        cJSON_Delete(msgs), cJSON_Delete(tools), cJSON_Delete(bos), cJSON_Delete(agp), cJSON_Delete(num);
        jinja_template_free(t);
    }
    free(src);
    return 0;
}

/* The run config (YAML), then its validation. */
int fuzz_yaml(const uint8_t *d, size_t n) {
    struct run_config cfg;
    if (config_load(&cfg, fz_write(0, "run.yaml", d, n), NULL, 0) == 0) config_check_run(&cfg);
    config_free(&cfg);
    return 0;
}

/* The token cache: .idx, .bin, _mask.idx, _mask.bin (FZ_SEP between them), its description .json written
 * with matching checksums (so the checks behind them are reached), loaded for a 1000-token
 * vocabulary. */
int fuzz_token_cache(const uint8_t *d, size_t n) {
    const uint8_t *part[4];
    size_t len[4];
    int k = fz_split(d, n, part, len, 4);
    static const char *names[] = {"c.idx", "c.bin", "c_mask.idx", "c_mask.bin"};
    uint64_t h[4];
    for (int i = 0; i < 4; i++) {
        const uint8_t *p = i < k ? part[i] : d;
        size_t l = i < k ? len[i] : 0;
        fz_write(i, names[i], p, l);
        h[i] = dataset_cache_checksum(p, l);
    }
    char *meta = xasprintf("{\"format\":\"csft-data-v2\",\"n_records\":1,\"n_truncated\":0,\"n_dropped\":0,"
                           "\"n_zero_trained\":0,\"n_skipped_rows\":0,\"n_tokens\":%d,\"n_trained_tokens\":%d,"
                           "\"ids_idx_hash\":\"%016llx\",\"ids_bin_hash\":\"%016llx\",\"mask_idx_hash\":\"%016llx\","
                           "\"mask_bin_hash\":\"%016llx\"}",
                           k > 1 ? (int)(len[1] / 4) : 0, k > 3 ? (int)len[3] : 0, (unsigned long long)h[0],
                           (unsigned long long)h[1], (unsigned long long)h[2], (unsigned long long)h[3]);
    fz_write(0, "c.json", meta, strlen(meta));
    free(meta);
    char *prefix = xasprintf("%s/c", fz_tmp());
    struct dataset *ds = NULL;
    if (dataset_cache_load(&ds, prefix, 1000) == 0) {
        int64_t sum = 0;
        for (int64_t i = 0; i < ds->offsets[ds->n]; i++) sum += ds->ids[i] + ds->mask[i];
        if (sum < 0) abort(); /* ids were checked to be in [0, 1000) */
        dataset_free(ds);
    }
    free(prefix);
    return 0;
}

/* trainer_state.json. */
int fuzz_train_state(const uint8_t *d, size_t n) {
    char *s = fz_cstr(d, n);
    struct train_state st;
    int64_t os;
    if (checkpoint_parse_state(s, "trainer_state.json", &st, &os) == 0 &&
        (st.step < 0 || st.epoch < 0 || st.next_row < 0 || os < 0))
        abort();
    free(s);
    return 0;
}

/* A MindRecord data file: parsed alone from memory, then through the reader (shard group). */
int fuzz_mindrecord(const uint8_t *d, size_t n) {
    mindrecord_check_buffer(d, n, "fuzz.mindrecord");
    err_clear();
    read_all(fz_write(0, "x.mindrecord", d, n), 0);
    return 0;
}

/* A MindSpore .ckpt: every tensor small enough converted to float32. */
int fuzz_ckpt(const uint8_t *d, size_t n) {
    struct ckpt *ck;
    if (ckpt_open(&ck, fz_write(0, "x.ckpt", d, n))) return 0;
    for (int i = 0; i < ck->n; i++) {
        const struct ckpt_tensor *t = &ck->t[i];
        if (t->dtype < 0 || t->is_map || t->numel < 0 || t->numel > (1 << 20)) continue;
        float *buf = xmalloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        ckpt_tensor_f32(ck, t, buf);
        free(buf);
    }
    ckpt_close(ck);
    return 0;
}

struct fuzz_target {
    const char *name;
    int (*fn)(const uint8_t *, size_t);
};
static const struct fuzz_target fuzz_targets[] = {
    {"json", fuzz_json},
    {"parquet", fuzz_parquet},
    {"arrow", fuzz_arrow},
    {"safetensors", fuzz_safetensors},
    {"st_index", fuzz_st_index},
    {"config_json", fuzz_config_json},
    {"tokenizer_json", fuzz_tokenizer_json},
    {"vocab_merges", fuzz_vocab_merges},
    {"tokenizer_config", fuzz_tokenizer_config},
    {"jinja", fuzz_jinja},
    {"yaml", fuzz_yaml},
    {"token_cache", fuzz_token_cache},
    {"train_state", fuzz_train_state},
    {"mindrecord", fuzz_mindrecord},
    {"ckpt", fuzz_ckpt},
};
