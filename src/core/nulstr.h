/* nulstr: U+0000 (NUL) inside text that travels as C strings (cJSON values, rendered chat
 * templates). A NUL is carried as the two bytes C0 80 (the "modified UTF-8" form, which valid
 * UTF-8 never holds), so every NUL-terminated string keeps its full text; the tokenizer's
 * callers turn the pair back into the NUL byte (nul_decode) just before encoding. */
#pragma once
#include <stddef.h>

struct cJSON;

#define NUL_MARK "\xC0\x80"

/* Rewrites each \u0000 escape of the JSON text s[0, len) (one preceded by an even run of
 * backslashes) into NUL_MARK, in place. Returns the new length (s[new len] is not written).
 * Run it after validating the text as UTF-8. */
size_t nul_unescape_json(char *s, size_t len);
/* A cJSON string of s[0, n), NUL bytes carried as NUL_MARK. */
struct cJSON *nul_create_string(const char *s, size_t n);
/* Turns each NUL_MARK of s[0, len) into one NUL byte, in place; returns the new length. */
size_t nul_decode(char *s, size_t len);
/* The offset that byte offset off of s (before nul_decode) has after it. */
size_t nul_offset(const char *s, size_t off);
/* cJSON_PrintUnformatted with NUL_MARK written as \u0000 (malloc'd). */
char *nul_json_print(const struct cJSON *j);
