/* Tests for src/core: dtype conversions, errors, atomic writes. */
#include "core/dtype.h"
#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "core/nulstr.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static void test_bf16_round_trip(void) {
    /* 1 + 2^-8 is exactly halfway between two bf16 values: ties go to even (1.0). */
    EXPECT(f32_to_bf16(1.0f + 1.0f / 256) == 0x3f80, "tie to even");
    EXPECT(f32_to_bf16(1.0f + 3.0f / 256) == 0x3f82, "tie to even, odd case rounds up");
    EXPECT(bf16_to_f32(0x4049) == 3.140625f, "bf16 decode");
}

static void test_f16(void) {
    EXPECT(f16_to_f32(0x3c00) == 1.0f, "one");
    EXPECT(f16_to_f32(0xc000) == -2.0f, "minus two");
    EXPECT(f16_to_f32(0x0001) == ldexpf(1, -24), "smallest subnormal");
    EXPECT(f32_to_f16(65504.0f) == 0x7bff, "max");
    EXPECT(f32_to_f16(1e6f) == 0x7c00, "overflow to inf");
    for (uint32_t h = 0; h < 0x7c00; h++) EXPECT(f32_to_f16(f16_to_f32((uint16_t)h)) == h, "round trip %x", h);
}

static void test_err_wrap(void) {
    err_set("bad %s", "thing");
    err_wrap("file %s", "x.json");
    EXPECT_STR(err_msg(), "file x.json: bad thing");
}

static void test_atomic_write(void) {
    const char *p = "/tmp/csft_test_atomic.txt";
    EXPECT(file_write_atomic(p, "hello", 5) == 0, "%s", err_msg());
    size_t n;
    char *s = file_read_all(p, &n);
    EXPECT(s && n == 5 && strcmp(s, "hello") == 0, "content");
    free(s);
    EXPECT(file_write_atomic("/nonexistent-dir/x", "a", 1) != 0, "must fail");
    EXPECT_ERR("/nonexistent-dir/x");
}

/* U+0000 carried as C0 80 (core/nulstr.h). */
static void test_nulstr(void) {
    char j[] = "{\"a\": \"x\\u0000y\", \"b\": \"\\\\u0000\", \"c\": \"\\\\\\u0000\"}";
    size_t n = nul_unescape_json(j, strlen(j));
    j[n] = 0;
    cJSON *o = cJSON_Parse(j);
    EXPECT(o != NULL, "parse %s", j);
    const char *a = cJSON_GetStringValue(cJSON_GetObjectItem(o, "a")), *b = cJSON_GetStringValue(cJSON_GetObjectItem(o, "b")),
               *c = cJSON_GetStringValue(cJSON_GetObjectItem(o, "c"));
    EXPECT(a && !strcmp(a, "x\xC0\x80y"), "\\u0000 -> C0 80");
    EXPECT(b && !strcmp(b, "\\u0000"), "an escaped backslash before u0000 is text");
    EXPECT(c && !strcmp(c, "\\\xC0\x80"), "backslash, then NUL");
    char *p = nul_json_print(o);
    EXPECT(p && !strcmp(p, "{\"a\":\"x\\u0000y\",\"b\":\"\\\\u0000\",\"c\":\"\\\\\\u0000\"}"), "print %s", p ? p : "");
    free(p);
    cJSON_Delete(o);
    char s[] = "a\xC0\x80\xC0\x80" "b";
    EXPECT(nul_offset(s, 3) == 2 && nul_offset(s, 5) == 3 && nul_offset(s, 6) == 4, "offsets");
    EXPECT(nul_decode(s, 6) == 4 && !memcmp(s, "a\0\0b", 4), "decode");
    cJSON *t = nul_create_string("p\0q", 3);
    EXPECT(!strcmp(t->valuestring, "p\xC0\x80q"), "create");
    cJSON_Delete(t);
}

int main(void) {
    RUN(test_bf16_round_trip);
    RUN(test_f16);
    RUN(test_err_wrap);
    RUN(test_atomic_write);
    RUN(test_nulstr);
    return TEST_SUMMARY("core");
}
