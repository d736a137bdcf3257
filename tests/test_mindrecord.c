/* test_mindrecord: the MindRecord reader's entry points against the fixtures, Python float repr,
 * msgpack forms, and robustness: every truncation of a file and thousands of corrupted copies
 * give an error (never a crash, hang or huge allocation), and each kind of damage names the file,
 * page and row. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "data/format.h"
#include "data/mindrecord.h"
#include "data/msgpack.h"
#include "test.h"

#define FX "tests/fixtures/mindspore/mindrecord/"

static uint8_t *load(const char *path, size_t *n) { return (uint8_t *)file_read_all(path, n); }

static void test_float_repr(void) {
    static const struct {
        double d;
        const char *want;
    } cases[] = {{1.0, "1.0"},
                 {0.1f, "0.10000000149011612"},
                 {4.0f, "4.0"},
                 {0.0, "0.0"},
                 {-0.0, "-0.0"},
                 {1e16, "1e+16"},
                 {1e15, "1000000000000000.0"},
                 {1e-5, "1e-05"},
                 {1e-4, "0.0001"},
                 {123.5, "123.5"},
                 {-2.5e-7, "-2.5e-07"},
                 {3.4028234663852886e38, "3.4028234663852886e+38"},
                 {0.2f, "0.20000000298023224"},
                 {1.5e300, "1.5e+300"},
                 {NAN, "NaN"},
                 {-INFINITY, "-Infinity"},
                 {12345678.0, "12345678.0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        mindrecord_float_repr(cases[i].d, buf);
        EXPECT_STR(buf, cases[i].want);
    }
}

static void test_msgpack(void) {
    static const struct {
        int64_t v;
        const char *hex;
    } ints[] = {{0, "00"},
                {127, "7f"},
                {128, "cc80"},
                {256, "cd0100"},
                {70000, "ce00011170"},
                {-1, "ff"},
                {-32, "e0"},
                {-33, "d0df"},
                {-129, "d1ff7f"},
                {-40000, "d2ffff63c0"},
                {5000000000ll, "cf000000012a05f200"}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        struct mp_buf b = {0};
        mp_write_int(&b, ints[i].v);
        char hex[40] = {0};
        for (size_t k = 0; k < b.n; k++)
            sprintf(hex + 2 * k, "%02x", b.p[k]);
        EXPECT_STR(hex, ints[i].hex);
        size_t pos = 0;
        struct mp_value v;
        EXPECT(mp_read(b.p, b.n, &pos, &v) == 0 && pos == b.n, "%s", err_msg());
        int64_t got = v.type == MP_UINT ? (int64_t)v.u : v.i;
        EXPECT(got == ints[i].v, "%lld read back as %lld", (long long)ints[i].v, (long long)got);
        free(b.p);
    }
    /* the dummy raw record of all-blob schemas */
    const uint8_t dummy[] = {0x81, 0xa2, 'i', 'd', 0x00};
    size_t pos = 0;
    EXPECT(mp_skip(dummy, sizeof dummy, &pos) == 0 && pos == sizeof dummy, "%s", err_msg());
    pos = 0;
    EXPECT(mp_skip(dummy, 4, &pos) == -1, "truncated map accepted");
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    pos = 0;
    EXPECT(mp_skip(huge, sizeof huge, &pos) == -1, "4G-element array accepted");
    EXPECT_ERR("elements announced");
}

static void test_fixtures_parse(void) {
    static const char *files[] = {FX "v3/testdata",
                                  FX "v3/sns",
                                  FX "v2/aclImdb.mindrecord0",
                                  FX "v2/aclImdb.mindrecord3",
                                  FX "mf/qwen2_qa/qwen2_qa.mindrecord",
                                  FX "mf/llama_qa/llama_qa.mindrecord",
                                  FX "mf/wiki/wiki.mindrecord"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        EXPECT(mindrecord_check_file(files[i]) == 0, "%s: %s", files[i], err_msg());
        EXPECT(mindrecord_sniff(files[i]) == 1, "%s not sniffed", files[i]);
    }
    EXPECT(mindrecord_sniff(FX "v3/testdata.db") == 0, ".db sniffed as data");
    EXPECT(mindrecord_dir_has_files(FX "mf/wiki") && mindrecord_dir_has_files(FX "v3"), "folders");
    /* a shard group read from its third file: 16 rows, labels 0..15 in shard order */
    struct mindrecord *m;
    EXPECT(mindrecord_open(&m, FX "v2/aclImdb.mindrecord2") == 0, "%s", err_msg());
    if (!m) return;
    cJSON *rec;
    int n = 0, ok = 1;
    while (mindrecord_next(m, &rec) == 1) {
        const cJSON *l = cJSON_GetObjectItem(rec, "label"), *b = cJSON_GetObjectItem(rec, "array_b");
        ok &= cJSON_IsNumber(l) && l->valueint == n;
        /* 9223372036854775807 does not fit a double: a raw item holding the exact digits */
        const cJSON *last = cJSON_GetArrayItem(cJSON_GetArrayItem(b, 0), 18);
        ok &= cJSON_IsRaw(last) && strcmp(last->valuestring, "9223372036854775807") == 0;
        cJSON_Delete(rec);
        n++;
    }
    EXPECT(n == 16 && ok, "%d rows, labels/array_b ok %d", n, ok);
    EXPECT(mindrecord_row(m) == 16, "row %lld", (long long)mindrecord_row(m));
    const cJSON *h = mindrecord_header(m);
    EXPECT(cJSON_IsObject(h) && cJSON_GetObjectItem(h, "header_size"), "header");
    mindrecord_close(m);
}

/* Every cut of a file is an error naming it, never a crash. */
static void test_truncated(void) {
    size_t n;
    uint8_t *d = load(FX "mf/wiki/wiki.mindrecord", &n);
    EXPECT(d != NULL, "fixture");
    if (!d) return;
    int bad = 0;
    for (size_t cut = 0; cut < n; cut += cut < 20000 ? 37 : 911) {
        err_clear();
        if (mindrecord_check_buffer(d, cut, "wiki.cut") != -1 || !strstr(err_msg(), "wiki.cut")) {
            if (!bad++) fprintf(stderr, "  cut at %zu: rc 0 or error \"%s\"\n", cut, err_msg());
        }
    }
    EXPECT(bad == 0, "%d truncations not refused", bad);
    EXPECT(mindrecord_check_buffer(d, n, "wiki") == 0, "%s", err_msg());
    free(d);
}

/* Random byte damage: never a crash (run under ASan/UBSan by make test-asan). */
static void test_corrupted(void) {
    static const char *files[] = {FX "v3/testdata", FX "v2/aclImdb.mindrecord1",
                                  FX "mf/llama_qa/llama_qa.mindrecord"};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int refused = 0, total = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        uint8_t *d = load(files[f], &n);
        if (!d) continue;
        uint8_t *c = xmalloc(n);
        uint64_t hs = 0;
        for (int k = 7; k >= 0; k--)
            hs = hs << 8 | d[k];
        for (int it = 0; it < 700; it++) {
            memcpy(c, d, n);
            for (int k = 0; k < 1 + it % 4; k++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                /* half the hits in the header JSON and the page starts, where parsing decides most */
                size_t at = it % 2 ? (size_t)(s >> 8) % (8 + hs) : (size_t)(s >> 8) % n;
                c[at] = (uint8_t)(s >> 56);
            }
            total++;
            refused += mindrecord_check_buffer(c, n, "corrupt") != 0;
        }
        free(c);
        free(d);
    }
    EXPECT(refused > 0 && total == 2100, "%d of %d corrupted copies refused", refused, total);
}

/* Replaces the first `from` in the buffer by `to` (same length). */
static int patch(uint8_t *d, size_t n, const char *from, const char *to) {
    size_t k = strlen(from);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, from, k) == 0) return memcpy(d + i, to, k), 0;
    return -1;
}

static void test_errors_name_place(void) {
    size_t n;
    uint8_t *d = load(FX "mf/qwen2_qa/qwen2_qa.mindrecord", &n), *c = xmalloc(n);
    if (!d) return;
    /* unknown field type */
    memcpy(c, d, n);
    EXPECT(patch(c, n, "{\"shape\":[-1],\"type\":\"int32\"}", "{\"shape\":[-1],\"type\":\"int16\"}") == 0,
           "patch");
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "int16 accepted");
    EXPECT_ERR("q.mindrecord: header: schema field \"attention_mask\": unknown type \"int16\"");
    /* unsupported version */
    memcpy(c, d, n);
    patch(c, n, "\"version\":\"3.0\"", "\"version\":\"4.0\"");
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "4.0 accepted");
    EXPECT_ERR("version \"4.0\" is not supported");
    /* damaged raw page: row 0's record length (raw page 1 at 16384 + 32768) */
    memcpy(c, d, n);
    c[16384 + 32768 + 1] = 0x7f;
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "bad raw length accepted");
    EXPECT_ERR("q.mindrecord: page 1 (RAW_DATA), row 0: raw record runs past");
    /* damaged raw record content: the dummy map's key type byte */
    memcpy(c, d, n);
    c[16384 + 32768 + 78 + 13 + 8 + 1] =
        0xc1; /* group 1 (rows 6..) starts at 78: row 7, after its length and 0x81 */
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "bad msgpack accepted");
    EXPECT_ERR("q.mindrecord: page 1 (RAW_DATA), row 7: msgpack: unknown type byte 0xc1");
    /* damaged blob: the first field's big-endian length in row 0 (blob page 0 at 16384) */
    memcpy(c, d, n);
    c[16384 + 8 + 2] = 0x40;
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "bad blob length accepted");
    EXPECT_ERR("q.mindrecord: page 0 (BLOB_DATA), row 0: field \"attention_mask\": length");
    /* damaged compressed array: the element count of row 0's attention_mask */
    memcpy(c, d, n);
    c[16384 + 16 + 1] = 0x01;
    EXPECT(mindrecord_check_buffer(c, n, "q.mindrecord") == -1, "bad element count accepted");
    EXPECT_ERR("q.mindrecord: page 0 (BLOB_DATA), row 0: field \"attention_mask\": ");
    /* encrypted (MindSpore's trailer) */
    uint8_t enc[64] = {0};
    memcpy(enc + 64 - 18, "\0\0\0\0AES-GCMENCRYPT", 18);
    EXPECT(mindrecord_check_buffer(enc, sizeof enc, "e.mindrecord") == -1, "encrypted accepted");
    EXPECT_ERR("e.mindrecord: encrypted MindRecord file");
    /* not a MindRecord file at all */
    EXPECT(mindrecord_check_buffer((const uint8_t *)"{\"a\": 1}\n", 9, "x.jsonl") == -1, "jsonl accepted");
    EXPECT_ERR("x.jsonl: header length");
    free(c);
    free(d);
}

static int fmt(const struct formatter *f, const char *json, struct formatted *o) {
    cJSON *rec = cJSON_Parse(json);
    int rc = format_record(f, rec, "m.mindrecord", 3, o);
    cJSON_Delete(rec);
    return rc;
}

/* MindFormers' SFT schemas as training sees them (formats.md 1.10) */
static void test_sft_schemas(void) {
    struct formatter f = {0};
    f.opt.format = DATA_FORMAT_AUTO;
    f.vocab_size = 1000;
    f.pad_id = 9;
    struct formatted o = {0};
    /* target_ids = input_ids, attention_mask marks padding: label t trained when token t-1 is real;
     * the first pad is trained, the rest dropped */
    EXPECT(fmt(&f,
               "{\"input_ids\":[5,6,7,9,9,9],\"target_ids\":[5,6,7,9,9,9],\"attention_mask\":[1,1,1,0,0,0]}",
               &o) == 0,
           "%s", err_msg());
    int32_t want[] = {-100, 6, 7, 9};
    EXPECT(o.n == 4 && !memcmp(o.labels, want, sizeof want), "n %lld labels %d %d %d %d", (long long)o.n,
           o.labels[0], o.labels[1], o.labels[2], o.labels[3]);
    /* without attention_mask the pad id decides; a pad inside the text masks the next label too */
    EXPECT(fmt(&f, "{\"input_ids\":[5,9,7,8,9,9],\"target_ids\":[5,9,7,8,9,9]}", &o) == 0, "%s", err_msg());
    int32_t want2[] = {-100, 9, -100, 8, 9};
    EXPECT(o.n == 5 && !memcmp(o.labels, want2, sizeof want2), "pad-id rule: n %lld", (long long)o.n);
    /* -100 in target_ids stays masked */
    EXPECT(fmt(&f, "{\"input_ids\":[5,6,7],\"target_ids\":[5,-100,7],\"attention_mask\":[1,1,1]}", &o) == 0 &&
               o.labels[1] == -100 && o.labels[2] == 7,
           "target -100");
    EXPECT(fmt(&f, "{\"input_ids\":[5,6,7],\"target_ids\":[6,7,8],\"attention_mask\":[1,1,1]}", &o) == -1,
           "shifted");
    EXPECT_ERR("m.mindrecord: row 3: target_ids[1] = 7 differs from input_ids[1] = 6");
    EXPECT(fmt(&f, "{\"input_ids\":[5,6,7],\"target_ids\":[5,6]}", &o) == -1, "short target_ids");
    EXPECT_ERR("\"target_ids\" must be a list as long as input_ids (3)");
    f.pad_id = -1;
    EXPECT(fmt(&f, "{\"input_ids\":[5,6,7],\"target_ids\":[5,6,7]}", &o) == -1, "no pad id");
    EXPECT_ERR("needs the pad token id");
    /* the fixtures: qwen2_qa row 0 trains its 72 non-pad tokens' successors (the first pad included),
     * llama_qa row 0 its 50 response tokens */
    f.vocab_size = 151646;
    f.pad_id = 151643;
    static const char *files[] = {FX "mf/qwen2_qa", FX "mf/llama_qa"};
    static const int64_t want_n[] = {73, 385}, want_trained[] = {72, 50};
    for (int k = 0; k < 2; k++) {
        struct mindrecord *m;
        cJSON *rec = NULL;
        if (mindrecord_open(&m, files[k]) || mindrecord_next(m, &rec) != 1) {
            EXPECT(0, "%s: %s", files[k], err_msg());
            continue;
        }
        EXPECT(format_record(&f, rec, files[k], 0, &o) == 0, "%s", err_msg());
        int64_t trained = 0;
        for (int64_t i = 0; i < o.n; i++)
            trained += o.labels[i] >= 0;
        EXPECT(o.n == want_n[k] && trained == want_trained[k], "%s: n %lld trained %lld", files[k],
               (long long)o.n, (long long)trained);
        if (k == 0)
            EXPECT(o.labels[72] == 151643 && o.labels[71] == 198 && o.labels[0] == -100,
                   "qwen2 row 0 labels");
        cJSON_Delete(rec);
        mindrecord_close(m);
    }
    formatted_free(&o);
}

int main(void) {
    RUN(test_float_repr);
    RUN(test_msgpack);
    RUN(test_fixtures_parse);
    RUN(test_truncated);
    RUN(test_corrupted);
    RUN(test_errors_name_place);
    RUN(test_sft_schemas);
    return TEST_SUMMARY("mindrecord");
}
