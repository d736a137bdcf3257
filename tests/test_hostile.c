/* Hostile inputs found by review and fuzzing (issue 15): each case is a file a user could be
 * handed, built here by hand, and must give one clear error (or a correct result), never a
 * crash, a hang or a huge allocation. Past fuzzer crash inputs under tests/fuzz/regress/ are
 * replayed by fuzz/run.sh; the cheap ones are also checked here through the same entry points. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "data/reader.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "tok/jinja.h"
#include "tok/tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"

/* trainer_state.json: a negative next_row once read rows before the plan (batch_fill). */
static void test_state_counts(void) {
    struct train_state st;
    int64_t os = -1;
    EXPECT(checkpoint_parse_state("{\"step\": 4, \"epoch\": 1, \"next_row\": 12, \"optimizer_step\": 4, "
                                  "\"seed\": \"42\", \"tokens_seen\": \"123456789012345\"}",
                                  "ts.json", &st, &os) == 0,
           "%s", err_msg());
    EXPECT(st.step == 4 && st.epoch == 1 && st.next_row == 12 && os == 4 && st.seed == 42 &&
               st.tokens_seen == 123456789012345ll,
           "fields %lld %lld %lld", (long long)st.step, (long long)st.next_row, (long long)st.tokens_seen);
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"next_row\": -5}", "ts.json: \"next_row\" must be a whole number"},
        {"{\"step\": 1.5}", "\"step\""},
        {"{\"epoch\": 1e300}", "\"epoch\""},
        {"{\"next_row\": \"-1\"}", "\"next_row\""},
        {"{\"skipped_steps\": \"12x\"}", "\"skipped_steps\""},
        {"{\"optimizer_step\": true}", "\"optimizer_step\""},
        {"[1, 2]", "ts.json: not a JSON object"},
        {"{\"step\": ", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear();
        EXPECT(checkpoint_parse_state(bad[i].json, "ts.json", &st, &os) == -1, "%s accepted", bad[i].json);
        EXPECT_ERR(bad[i].err);
    }
}

static char tmpdir[] = "/tmp/csft_test_hostile_XXXXXX";

static const char *write_tmp(const char *name, const char *text, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    EXPECT(file_write_atomic(path, text, n) == 0, "write %s", path);
    return path;
}

/* Arrow FixedSizeList: length 2^40 x list_size 2^31-1 overflowed int64, the child-length check
 * passed and `csft data cat` printed 16.7 million values read past the buffer. */
static void test_arrow_fixed_size_list_overflow(void) {
    struct reader *r = NULL;
    const char *p = "tests/fuzz/regress/arrow/fsl_overflow.arrow";
    EXPECT(reader_open(&r, p) == 0, "%s", err_msg());
    if (!r) return;
    struct cJSON *rec = NULL;
    int rc = reader_next(r, &rec);
    EXPECT(rc == -1, "row read (rc %d)", rc);
    EXPECT_ERR("fsl_overflow.arrow: column 'pair': child 'item' has 4 values, needs 1099511627776 lists of 2147483647");
    reader_close(r);
}

/* A tokenizer.json Split regex with invalid UTF-8 was compiled with PCRE2_NO_UTF_CHECK and
 * crashed inside PCRE2. */
static void test_split_regex_invalid_utf8(void) {
    static const char js[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[]},"
                             "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\xff\xfe]+|\xc3(\"},"
                             "\"behavior\":\"Isolated\",\"invert\":false}}";
    struct tokenizer *tk = NULL;
    EXPECT(tokenizer_load(&tk, write_tmp("bad_regex.json", js, sizeof js - 1)) == -1, "loaded");
    EXPECT_ERR("bad_regex.json: invalid UTF-8 at byte 111");
    if (tk) tokenizer_free(tk);
    /* a Replace normalizer writing invalid UTF-8 into the text PCRE2 then matched (SEGV) */
    tk = NULL;
    EXPECT(tokenizer_load(&tk, "tests/fuzz/regress/tokenizer_json/replace_invalid_utf8.json") == -1, "loaded");
    EXPECT_ERR("replace_invalid_utf8.json: invalid UTF-8 at byte 68");
    if (tk) tokenizer_free(tk);
}

/* Text starting with a UTF-8 continuation byte made a memcpy to NULL (UBSan, make test-asan). */
static void test_leading_continuation_byte(void) {
    struct tokenizer *tk = NULL;
    EXPECT(tokenizer_load(&tk, "fuzz/seeds/tokenizer_json/qwen_small.json") == 0, "%s", err_msg());
    if (!tk) return;
    int32_t *ids = NULL;
    int64_t n = 0;
    EXPECT(tokenizer_encode(tk, "\x80\x80" "ab", 4, &ids, &n) == 0, "%s", err_msg());
    char *out = NULL;
    size_t ol = 0;
    EXPECT(n > 0 && tokenizer_decode(tk, ids, n, 0, &out, &ol) == 0, "decode");
    EXPECT(out && !strcmp(out, "\xef\xbf\xbd\xef\xbf\xbd" "ab"), "decoded \"%s\"", out ? out : "");
    free(out), free(ids);
    tokenizer_free(tk);
}

/* Renders src; returns the output (malloc'd) or NULL with err set. */
static char *render(const char *src) {
    struct jinja_template *t = jinja_template_parse(src, "t.jinja");
    if (!t) return NULL;
    char *out = NULL;
    size_t n = 0;
    int rc = jinja_render(t, NULL, 0, &out, &n);
    jinja_template_free(t);
    return rc ? NULL : out;
}

/* Jinja arithmetic: INT64_MIN // -1 killed the process (SIGFPE); +, ** and |int overflowed;
 * range()'s count overflowed past its limit. Python's ints are unbounded, ours are int64:
 * results that do not fit are an OverflowError, never a wrong number. */
static void test_jinja_arithmetic(void) {
    static const struct {
        const char *src, *out;
    } ok[] = {
        {"{{ (-9223372036854775807 - 1) % -1 }}", "0"},
        {"{{ 7 // -1 }}|{{ -7 // -1 }}|{{ 7 % -1 }}", "-7|7|0"},
        {"{{ (-2) ** 63 }}|{{ 3 ** 4 }}|{{ 1 ** 99999999999 }}|{{ (-1) ** 99999999999 }}|{{ 0 ** 0 }}",
         "-9223372036854775808|81|1|-1|1"},
        {"{{ range(-9223372036854775807, 9223372036854775807, 4611686018427387904)|length }}", "4"},
        {"{{ range(9223372036854775807, -9223372036854775807, -4611686018427387904)|list|last }}",
         "-4611686018427387905"},
        {"{{ 1e18|int }}|{{ '-2.5e3'|int }}", "1000000000000000000|-2500"},
        /* %-formatting (Python's results): repeated flags, widths past the old 512-byte buffer */
        {"{{ '%5.2f|%-5s|%05d|%.3s|%--5d|%+.1e|%#x|%%' % (3.14159, 'ab', 42, 'abcdef', 3, 12345.678, 255) }}",
         " 3.14|ab   |00042|abc|3    |+1.2e+04|0xff|%"},
        {"{{ ('%1000d' % 7)|length }}|{{ ('%-------------------------------2x' % 255)|length }}", "1000|2"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *out = render(ok[i].src);
        EXPECT(out && !strcmp(out, ok[i].out), "%s: \"%s\" (%s)", ok[i].src, out ? out : "", out ? "" : err_msg());
        free(out);
    }
    static const struct {
        const char *src, *err;
    } bad[] = {
        {"{{ (-9223372036854775807 - 1) // -1 }}", "OverflowError: integer result of // does not fit"},
        {"{{ 9223372036854775807 + 1 }}", "OverflowError: integer result of +"},
        {"{{ -9223372036854775807 - 2 }}", "OverflowError: integer result of -"},
        {"{{ 4294967296 * 4294967296 }}", "OverflowError: integer result of *"},
        {"{{ 2 ** 99999999999 }}", "OverflowError: integer result of **"},
        {"{{ 3 ** 40 }}", "OverflowError"},
        {"{{ -(-9223372036854775807 - 1) }}", "OverflowError"},
        {"{{ (-9223372036854775807 - 1)|abs }}", "OverflowError"},
        {"{{ 1e300|int }}", "OverflowError: cannot convert float 1e+300"},
        {"{{ '-1e19'|int }}", "OverflowError"},
        {"{{ 99999999999999999999 }}", "does not fit in 64 bits"},
        {"{{ range(-9223372036854775807, 9223372036854775807)|length }}", "Range too big"},
        {"{{ range(9223372036854775807, -9223372036854775807, -1)|length }}", "Range too big"},
        /* (fuzzer) a 29-digit width overran the 32-byte printf spec; widths are bounded now */
        {"{{ '%-5s|%0%.2f|%22222222222222222222222222222x' % ('', 41, 3.159, 255) }}",
         "unsupported format character '%'"},
        {"{{ '%22222222222222222222222222222x' % 255 }}", "ValueError: width too big"},
        {"{{ '%.222222x' % 255 }}", "ValueError: width too big"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear();
        char *out = render(bad[i].src);
        EXPECT(!out, "%s rendered \"%s\"", bad[i].src, out);
        EXPECT_ERR(bad[i].err);
        free(out);
    }
}

/* Jinja resources: deep tojson overflowed the stack; nested loops and a doubly recursive
 * macro exhausted memory; a huge repeat ran for more than 30 s. Each now stops at a limit. */
static void test_jinja_limits(void) {
    static const struct {
        const char *src, *err;
    } bad[] = {
        {"{% for i in range(10**9) %}x{% endfor %}", "Range too big"},
        {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         "t.jinja:1:32: OverflowError: more than 1000000 loop iterations and macro calls"},
        {"{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}",
         "MemoryError"},
        {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "RecursionError"},
        {"{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
         "{{ ns.x|tojson }}",
         "RecursionError: lists or dicts nested deeper than 1000 levels"},
        {"{% set ns = namespace(x={}) %}{% for i in range(5000) %}{% set ns.x = {'a': ns.x} %}{% endfor %}",
         "nested deeper"},
        {"{{ 'x' * 1073741823 }}", "MemoryError: repetition result larger"},
        {"{{ [1, 2] * 1073741823 }}", "MemoryError"},
        {"{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "MemoryError: the render needs more than 512 MiB"},
        {"{% for i in range(100000) %}{{ 'y' * 10000 }}{% endfor %}", "MemoryError"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear();
        char *out = render(bad[i].src);
        EXPECT(!out, "%s rendered %zu bytes", bad[i].src, out ? strlen(out) : 0);
        EXPECT_ERR(bad[i].err);
        free(out);
    }
    /* within the limits: a 1000-deep list, 500,000 iterations */
    char *out = render("{% set ns = namespace(x=[], n=0) %}{% for i in range(999) %}{% set ns.x = [ns.x] %}{% endfor %}"
                       "{{ (ns.x|tojson)|length }}|{% for i in range(500) %}{% for j in range(1000) %}"
                       "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}");
    EXPECT(out && !strcmp(out, "2000|500000"), "\"%s\" (%s)", out ? out : "", out ? "" : err_msg());
    free(out);
}

/* YAML config: nine duplicated '<<' merge keys per level made the walk take 9^depth time; a
 * 100,000-deep flow nesting took over 120 s in libyaml. Both are refused up front. */
static void test_yaml_limits(void) {
    static const struct {
        const char *file, *err;
    } bad[] = {
        {"tests/fuzz/regress/yaml/merge_bomb.yaml", "merge_bomb.yaml:6: YAML aliases and '<<' merges expand to more than 100000 nodes"},
        {"tests/fuzz/regress/yaml/deep_flow.yaml", "deep_flow.yaml:1: YAML nested deeper than 64 levels"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct run_config cfg;
        err_clear();
        EXPECT(config_load(&cfg, bad[i].file, NULL, 0) == -1, "%s loaded", bad[i].file);
        EXPECT_ERR(bad[i].err);
        config_free(&cfg);
    }
    /* merges and anchors of ordinary size still work */
    const char *ok = "runner_config:\n  <<: {batch_size: &n 3, epochs: 2}\n  gradient_accumulation_steps: *n\n";
    struct run_config cfg;
    err_clear();
    int rc = config_load(&cfg, write_tmp("ok.yaml", ok, strlen(ok)), NULL, 0);
    EXPECT(rc == 0 && cfg.runner_config.batch_size == 3 && cfg.runner_config.epochs == 2 &&
               cfg.runner_config.gradient_accumulation_steps == 3,
           "%s", err_msg());
    config_free(&cfg);
}

/* Tokenizer ids as sizes: added-token id 2147483647 overflowed an int and aborted; a 60-byte
 * vocab entry asked for 4-32 GiB; id 5e8 loaded with 1.96 GB. Ids far beyond the entry count
 * are refused before anything is sized by them. */
static void test_tokenizer_ids(void) {
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":2147483647},\"merges\":[]}}",
         "id 2147483647 is far beyond the vocabulary's 2 entries"},
        {"{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":500000000},\"merges\":[]}}",
         "id 500000000 is far beyond"},
        {"{\"added_tokens\":[{\"id\":2147483647,\"content\":\"<x>\",\"special\":true}],"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         "added token \"<x>\" has id 2147483647, far beyond the 2 tokens"},
        {"{\"added_tokens\":[{\"id\":1e12,\"content\":\"<x>\",\"special\":true}],"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
         "far beyond"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tokenizer *tk = NULL;
        err_clear();
        EXPECT(tokenizer_load(&tk, write_tmp("tokenizer.json", bad[i].json, strlen(bad[i].json))) == -1, "%s loaded",
               bad[i].json);
        EXPECT_ERR(bad[i].err);
        if (tk) tokenizer_free(tk);
    }
    /* vocab.json + merges.txt + tokenizer_config.json with a huge added-token id */
    const char *v = "{\"a\": 0, \"b\": 1}", *m = "#version: 0.2\n";
    const char *cfg = "{\"added_tokens_decoder\": {\"2147483647\": {\"content\": \"<x>\", \"special\": true}}}";
    char vp[512], mp[512], cp[512];
    snprintf(vp, sizeof vp, "%s", write_tmp("vocab.json", v, strlen(v)));
    snprintf(mp, sizeof mp, "%s", write_tmp("merges.txt", m, strlen(m)));
    snprintf(cp, sizeof cp, "%s", write_tmp("tokenizer_config.json", cfg, strlen(cfg)));
    struct tokenizer *tk = NULL;
    err_clear();
    EXPECT(tokenizer_load_files(&tk, vp, mp, cp) == -1, "loaded");
    EXPECT_ERR("tokenizer_config.json: added token \"<x>\" has id 2147483647, far beyond");
    if (tk) tokenizer_free(tk);
    /* holes are fine within the bound: ids 0 and 1000 among 2 entries */
    const char *ok = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1000},\"merges\":[]}}";
    err_clear();
    EXPECT(tokenizer_load(&tk, write_tmp("tokenizer.json", ok, strlen(ok))) == 0, "%s", err_msg());
    if (tk) {
        EXPECT(tokenizer_vocab_size(tk) == 1001, "vocab size %d", tokenizer_vocab_size(tk));
        tokenizer_free(tk);
    }
}

/* config.json sizes (up to 1e9 were accepted) sized stack arrays and int products in model.c
 * and attention.c, and the parameter buffers before any tensor was read. Now each size has an
 * upper bound, and the parameters the config describes must be in the safetensors files. */
static void test_config_json_sizes(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/model", tmpdir);
    EXPECT(dir_create(dir) == 0, "mkdir %s", dir);
    size_t n = 0;
    char *st = file_read_all("tests/fixtures/hf/qwen2-tiny/model.safetensors", &n);
    EXPECT(st != NULL, "fixture");
    if (!st) return;
    write_tmp("model/model.safetensors", st, n);
    free(st);
    static const char base[] = "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": %d, \"intermediate_size\": 176, "
                               "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 2, "
                               "\"vocab_size\": %d, \"head_dim\": %d, \"tie_word_embeddings\": true}";
    static const struct {
        int hidden, vocab, head_dim;
        const char *err;
    } cases[] = {
        {64, 512, 16, NULL},
        {1000000000, 512, 16, "\"hidden_size\" is 1000000000, more than csft supports (131072)"},
        {64, 512, 100000, "\"head_dim\" is 100000, more than csft supports (512)"},
        {64, 1000000000, 16, "\"vocab_size\" is 1000000000"},
        {64, 16000000, 16, "config.json describes 1024"},
        {131072, 512, 16, "parameters, far more than the 125504 in the weight files"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char js[600];
        snprintf(js, sizeof js, base, cases[i].hidden, cases[i].vocab, cases[i].head_dim);
        write_tmp("model/config.json", js, strlen(js));
        struct model m;
        err_clear();
        int rc = model_load(&m, dir, 0, 0);
        if (!cases[i].err) {
            EXPECT(rc == 0 && m.n_base == 125504, "%s (%lld parameters)", err_msg(), rc ? 0LL : (long long)m.n_base);
        } else {
            EXPECT(rc == -1, "case %zu loaded", i);
            EXPECT_ERR(cases[i].err);
        }
        if (rc == 0) model_free(&m);
    }
}

/* attention_decode once sized a stack array by the context length (max_position_embeddings
 * reaches 1e9); past 4096 keys its scores now live on the heap. Checked against a direct
 * double-precision softmax at 5000 keys. */
static void test_decode_long_context(void) {
    const int Tk = 5000, H = 4, KVH = 2, HS = 16;
    float *q = xmalloc(sizeof(float) * H * HS), *kc = xmalloc(sizeof(float) * (size_t)Tk * KVH * HS),
          *vc = xmalloc(sizeof(float) * (size_t)Tk * KVH * HS), *out = xmalloc(sizeof(float) * H * HS);
    uint64_t s = 1;
    for (int i = 0; i < H * HS; i++) q[i] = (float)((s = s * 6364136223846793005ull + 1) >> 40) / (1 << 24) - 0.5f;
    for (int64_t i = 0; i < (int64_t)Tk * KVH * HS; i++) {
        kc[i] = (float)((s = s * 6364136223846793005ull + 1) >> 40) / (1 << 24) - 0.5f;
        vc[i] = (float)((s = s * 6364136223846793005ull + 1) >> 40) / (1 << 24) - 0.5f;
    }
    kernels_selected()->attention_decode(out, q, kc, vc, Tk, H, KVH, HS);
    double worst = 0;
    for (int h = 0; h < H; h++) {
        int kvh = h / (H / KVH);
        double *w = xmalloc(sizeof(double) * Tk), m = -1e300, z = 0;
        for (int j = 0; j < Tk; j++) {
            double d = 0;
            for (int e = 0; e < HS; e++) d += (double)q[h * HS + e] * kc[((int64_t)j * KVH + kvh) * HS + e];
            w[j] = d / sqrt((double)HS);
            m = w[j] > m ? w[j] : m;
        }
        for (int j = 0; j < Tk; j++) z += w[j] = exp(w[j] - m);
        for (int e = 0; e < HS; e++) {
            double o = 0;
            for (int j = 0; j < Tk; j++) o += w[j] / z * vc[((int64_t)j * KVH + kvh) * HS + e];
            double d = fabs(o - out[h * HS + e]);
            worst = d > worst ? d : worst;
        }
        free(w);
    }
    EXPECT(worst < 1e-5, "decode at %d keys: worst error %g", Tk, worst);
    free(q), free(kc), free(vc), free(out);
}

int main(void) {
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_state_counts);
    RUN(test_arrow_fixed_size_list_overflow);
    RUN(test_split_regex_invalid_utf8);
    RUN(test_leading_continuation_byte);
    RUN(test_jinja_arithmetic);
    RUN(test_jinja_limits);
    RUN(test_yaml_limits);
    RUN(test_tokenizer_ids);
    RUN(test_config_json_sizes);
    RUN(test_decode_long_context);
    path_remove_tree(tmpdir);
    return TEST_SUMMARY("hostile");
}
