/* pretok: the text transformations before BPE, each keeping a byte map back to its input:
 * lossy UTF-8 repair (U+FFFD per maximal invalid subpart, as Rust's from_utf8_lossy and
 * Python's errors="replace"), Unicode normalization (utf8proc, only on the non-ASCII chunks
 * that can change), and the Split pre-tokenizer regex (PCRE2 with UTF+UCP, with \s narrowed to
 * Unicode White_Space as Oniguruma, the engine HF tokenizers uses, defines it). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* A text derived from an input. Byte i of s came from input bytes [start[i], end[i]) (a
 * zero-width range for inserted bytes); when start is NULL the map is the identity shifted by
 * base. If parent is set, those input bytes are bytes of parent, mapped on through it. */
struct tok_text {
    const char *s;
    size_t len;
    char *owned; /* s when it was allocated */
    int64_t *start, *end;
    int64_t base;
    const struct tok_text *parent;
    char *view; /* what regexes see instead of s (same length), NULL = s; owned */
};

void tok_text_free(struct tok_text *t);
/* Range in the original input (through the parents) of the bytes [a, b) of t, a <= b. */
void tok_text_range(const struct tok_text *t, size_t a, size_t b, int64_t *start, int64_t *end);

/* t = s with every invalid UTF-8 sequence replaced by U+FFFD; s itself when valid. */
void utf8_lossy(const char *s, size_t len, struct tok_text *t);

enum tok_norm { TOK_NORM_NONE, TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD };

/* t = normalization of the valid UTF-8 s (base offset base); s itself when unchanged. */
void tok_normalize(enum tok_norm form, const char *s, size_t len, int64_t base, struct tok_text *t);

/* NULL when PCRE2 classifies every code point of s as HF does; otherwise a malloc'd copy of s in
 * which each letter/number that PCRE2's older Unicode tables do not know is replaced by a
 * stand-in of the same class and length, for the regex to run on. */
char *pretok_regex_view(const char *s, size_t len);

/* Compiles an HF Split regex (Oniguruma syntax as used by tokenizer files) for PCRE2, JIT if
 * available. literal != 0 compiles the pattern as a plain string. NULL + err on a bad pattern. */
pcre2_code *pretok_regex_compile(const char *pattern, int literal);
