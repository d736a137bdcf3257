/* pretok: UTF-8 repair, normalization and regex compilation for the tokenizer; see pretok.h.
 * Normalization works chunk by chunk: a chunk is a run of non-ASCII code points plus the ASCII
 * character just before it (which could compose with a following mark). ASCII characters never
 * change and never combine with what precedes them, so normalizing chunks separately equals
 * normalizing the whole text; chunks of code points that cannot change are skipped. */
#include "tok/pretok.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "core/util.h"

void tok_text_free(struct tok_text *t) {
    free(t->owned);
    free(t->view);
    free(t->start);
    free(t->end);
    memset(t, 0, sizeof *t);
}

void tok_text_range(const struct tok_text *t, size_t a, size_t b, int64_t *start, int64_t *end) {
    for (; t; t = t->parent) {
        int64_t s, e;
        if (!t->start) {
            s = t->base + (int64_t)a;
            e = t->base + (int64_t)b;
        } else if (a < b) {
            s = t->start[a];
            e = t->end[b - 1];
        } else {
            s = e = a < t->len ? t->start[a] : (t->len ? t->end[t->len - 1] : t->base);
        }
        a = (size_t)s;
        b = (size_t)(e > s ? e : s);
    }
    *start = (int64_t)a;
    *end = (int64_t)b;
}

/* Growable output with maps. */
struct out {
    char *s;
    int64_t *start, *end;
    size_t len, cap;
};

static void out_put(struct out *o, const char *s, size_t n, int64_t start, int64_t end) {
    if (!n) return; /* o->s may still be NULL */
    if (o->len + n > o->cap) {
        while (o->len + n > o->cap)
            o->cap = o->cap ? o->cap * 2 : 256;
        o->s = xrealloc(o->s, o->cap + 1);
        o->start = xrealloc(o->start, o->cap * sizeof(int64_t));
        o->end = xrealloc(o->end, o->cap * sizeof(int64_t));
    }
    memcpy(o->s + o->len, s, n);
    for (size_t i = 0; i < n; i++)
        o->start[o->len + i] = start, o->end[o->len + i] = end;
    o->len += n;
}

/* Copies bytes one-to-one (byte i maps to base+off+i). */
static void out_copy(struct out *o, const char *s, size_t n, int64_t pos) {
    size_t at = o->len;
    out_put(o, s, n, 0, 0);
    for (size_t i = 0; i < n; i++)
        o->start[at + i] = pos + (int64_t)i, o->end[at + i] = pos + (int64_t)i + 1;
}

static void out_finish(struct out *o, struct tok_text *t, int64_t base) {
    if (!o->s) o->s = xmalloc(1), o->start = xmalloc(8), o->end = xmalloc(8);
    o->s[o->len] = 0;
    t->s = t->owned = o->s;
    t->len = o->len;
    t->start = o->start;
    t->end = o->end;
    t->base = base;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 if invalid; *sub receives the
 * length of its maximal valid prefix (>= 1) when invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n, size_t *sub) {
    uint8_t c = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c == 0xE0)
        need = 2, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC)
        need = 2;
    else if (c == 0xED)
        need = 2, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF)
        need = 2;
    else if (c == 0xF0)
        need = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
        need = 3;
    else if (c == 0xF4)
        need = 3, hi = 0x8F;
    else {
        *sub = 1;
        return 0;
    }
    size_t i = 1;
    for (; i <= need; i++) {
        if (i >= n) break;
        uint8_t b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (i == need + 1) return need + 1;
    *sub = i;
    return 0;
}

void utf8_lossy(const char *s, size_t len, struct tok_text *t) {
    memset(t, 0, sizeof *t);
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, sub = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, len - i, &sub);
        if (!k) break;
        i += k;
    }
    if (i == len) {
        t->s = s;
        t->len = len;
        return;
    }
    struct out o = {0};
    out_copy(&o, s, i, 0);
    while (i < len) {
        size_t k = utf8_seq(p + i, len - i, &sub);
        if (k) {
            out_copy(&o, s + i, k, (int64_t)i);
            i += k;
        } else {
            out_put(&o, "\xEF\xBF\xBD", 3, (int64_t)i, (int64_t)(i + sub));
            i += sub;
        }
    }
    out_finish(&o, t, 0);
}

/* A code point that the normalization leaves alone whatever its neighbours, unless one of them is
 * itself not stable: no canonical decomposition (nor a compatibility one for NFKC/NFKD), class 0,
 * and, when composing, not the second character of a composition (utf8proc flags those with
 * comb_index >= 0x8000; a first character only composes with a second one, which is unstable).
 * Precomposed Hangul only changes before a trailing jamo (unstable) or under NFD. */
static int cp_is_stable(int32_t c, int compat, int compose) {
    if (c >= 0xAC00 && c <= 0xD7A3) return compose;
    if (c >= 0x1100 && c <= 0x11FF) return 0;
    const utf8proc_property_t *p = utf8proc_get_property(c);
    if (p->combining_class != 0) return 0;
    if (p->decomp_seqindex != UINT16_MAX && (compat || p->decomp_type == 0)) return 0;
    return !compose || p->comb_index == UINT16_MAX || p->comb_index < 0x8000;
}

/* HF tokenizers normalizes with the unicode-normalization-alignments crate, whose tables are
 * Unicode 9.0: a character added since then has, for it, combining class 0 and no decomposition
 * or composition. These are the ones that matter (a nonzero class or a canonical decomposition
 * in utf8proc's newer tables, found by probing HF's NFD/NFC on every such code point), plus
 * U+11930 and U+11935, which utf8proc composes into U+11938. Each is a hard chunk boundary and
 * stays as it is. (HF's NFC also matched utf8proc's on 4000 texts of random marks after this.) */
static const int32_t norm_unknown[] = {
    0x7FD,   0x898,   0x899,   0x89A,   0x89B,   0x89C,   0x89D,   0x89E,   0x89F,   0x8CA,   0x8CB,
    0x8CC,   0x8CD,   0x8CE,   0x8CF,   0x8D0,   0x8D1,   0x8D2,   0x8D3,   0x9FE,   0xC3C,   0xD3B,
    0xD3C,   0xEBA,   0x1715,  0x1ABF,  0x1AC0,  0x1AC1,  0x1AC2,  0x1AC3,  0x1AC4,  0x1AC5,  0x1AC6,
    0x1AC7,  0x1AC8,  0x1AC9,  0x1ACA,  0x1ACB,  0x1ACC,  0x1ACD,  0x1ACE,  0x1DF6,  0x1DF7,  0x1DF8,
    0x1DF9,  0x1DFA,  0xA82C,  0x10D24, 0x10D25, 0x10D26, 0x10D27, 0x10EAB, 0x10EAC, 0x10EFD, 0x10EFE,
    0x10EFF, 0x10F46, 0x10F47, 0x10F48, 0x10F49, 0x10F4A, 0x10F4B, 0x10F4C, 0x10F4D, 0x10F4E, 0x10F4F,
    0x10F50, 0x10F82, 0x10F83, 0x10F84, 0x10F85, 0x11070, 0x1133B, 0x1145E, 0x11839, 0x1183A, 0x11930,
    0x11935, 0x11938, 0x1193D, 0x1193E, 0x11943, 0x119E0, 0x11A34, 0x11A47, 0x11A99, 0x11D42, 0x11D44,
    0x11D45, 0x11D97, 0x11F41, 0x11F42, 0x16FF0, 0x16FF1, 0x1E08F, 0x1E130, 0x1E131, 0x1E132, 0x1E133,
    0x1E134, 0x1E135, 0x1E136, 0x1E2AE, 0x1E2EC, 0x1E2ED, 0x1E2EE, 0x1E2EF, 0x1E4EC, 0x1E4ED, 0x1E4EE,
    0x1E4EF,
};

/* Characters added since Unicode 9.0 with a compatibility decomposition: unknown for NFKC/NFKD. */
static const int32_t norm_unknown_compat[][2] = {
    {0x32FF, 0x32FF},   {0xA7F2, 0xA7F4},   {0xAB69, 0xAB69},   {0x10781, 0x10785}, {0x10787, 0x107B0},
    {0x107B2, 0x107BA}, {0x1E030, 0x1E06D}, {0x1F16C, 0x1F16C}, {0x1FBF0, 0x1FBF9},
};

static int norm_is_unknown(int32_t c, int compat) {
    if (compat && c >= 0x32FF)
        for (size_t i = 0; i < sizeof norm_unknown_compat / sizeof norm_unknown_compat[0]; i++)
            if (c >= norm_unknown_compat[i][0] && c <= norm_unknown_compat[i][1]) return 1;
    if (c < 0x7FD || c > 0x1E4EF || (c >= 0x1E00 && c < 0xA82C)) return 0;
    int lo = 0, hi = (int)(sizeof norm_unknown / sizeof norm_unknown[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < norm_unknown[mid])
            hi = mid - 1;
        else if (c > norm_unknown[mid])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

void tok_normalize(enum tok_norm form, const char *s, size_t len, int64_t base, struct tok_text *t) {
    memset(t, 0, sizeof *t);
    t->s = s;
    t->len = len;
    t->base = base;
    if (form == TOK_NORM_NONE) return;
    utf8proc_option_t opt = UTF8PROC_STABLE;
    if (form == TOK_NORM_NFC || form == TOK_NORM_NFKC)
        opt |= UTF8PROC_COMPOSE;
    else
        opt |= UTF8PROC_DECOMPOSE;
    if (form == TOK_NORM_NFKC || form == TOK_NORM_NFKD) opt |= UTF8PROC_COMPAT;

    const uint8_t *p = (const uint8_t *)s;
    struct out o = {0};
    int changed = 0;
    size_t done = 0; /* input bytes [0, done) are already in o when changed */
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t cs = i > 0 && p[i - 1] < 0x80 ? i - 1 : i, ce = i;
        int stable = 1;
        i = 0;
        while (ce < len && p[ce] >= 0x80) {
            utf8proc_int32_t c;
            utf8proc_ssize_t k = utf8proc_iterate(p + ce, (utf8proc_ssize_t)(len - ce), &c);
            if (k <= 0) k = 1, c = 0xFFFD;
            if (norm_is_unknown(c,
                                (opt & UTF8PROC_COMPAT) !=
                                    0)) { /* a boundary that stays as it is; the next chunk starts after it */
                i = ce + (size_t)k;
                break;
            }
            if (stable && !cp_is_stable(c, (opt & UTF8PROC_COMPAT) != 0, (opt & UTF8PROC_COMPOSE) != 0))
                stable = 0;
            ce += (size_t)k;
        }
        if (!i) i = ce;
        if (stable || ce == cs) continue;
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t n = utf8proc_map(p + cs, (utf8proc_ssize_t)(ce - cs), &dst, opt);
        if (n < 0 || ((size_t)n == ce - cs && memcmp(dst, p + cs, ce - cs) == 0)) {
            free(dst);
            continue;
        }
        if (!changed) changed = 1;
        out_copy(&o, s + done, cs - done, base + (int64_t)done);
        out_put(&o, (const char *)dst, (size_t)n, base + (int64_t)cs, base + (int64_t)ce);
        free(dst);
        done = ce;
    }
    if (!changed) return;
    out_copy(&o, s + done, len - done, base + (int64_t)done);
    out_finish(&o, t, base);
}

/* HF tokenizers matches Split regexes with Oniguruma 6.9.10, whose Unicode data is version 16.0;
 * Debian's PCRE2 10.42 has 14.0. Two adjustments make them agree:
 * - \s is rewritten to Unicode White_Space (PCRE2's \s also takes U+180E, out since Unicode 6.3);
 * - code points that are letters or numbers in 16.0 but unassigned for PCRE2 are replaced, in a copy
 *   the regex runs on (pretok_regex_view), by a stand-in of the same class and UTF-8 length, so
 *   match positions stay valid for the real text. Rewriting \p{L} into a class with these ranges
 *   instead would cost ~30% of the encode speed. The table came from running both engines over
 *   every code point (HF through its Node binding's Split pre-tokenizer, PCRE2 directly); no code
 *   point is in PCRE2's \p{L} or \p{N} but not in HF's. With a newer PCRE2 it is merely redundant. */
#define WS_CLASS                                                                                             \
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

struct cp_range {
    int32_t lo, hi;
    char cls; /* 'L' or 'N' */
};
static const struct cp_range new_props[] = {
    {0x1C89, 0x1C8A, 'L'},   {0xA7CB, 0xA7CD, 'L'},   {0xA7DA, 0xA7DC, 'L'},   {0x105C0, 0x105F3, 'L'},
    {0x10D40, 0x10D49, 'N'}, {0x10D4A, 0x10D65, 'L'}, {0x10D6F, 0x10D85, 'L'}, {0x10EC2, 0x10EC4, 'L'},
    {0x1123F, 0x11240, 'L'}, {0x11380, 0x11389, 'L'}, {0x1138B, 0x1138B, 'L'}, {0x1138E, 0x1138E, 'L'},
    {0x11390, 0x113B5, 'L'}, {0x113B7, 0x113B7, 'L'}, {0x113D1, 0x113D1, 'L'}, {0x113D3, 0x113D3, 'L'},
    {0x116D0, 0x116E3, 'N'}, {0x11BC0, 0x11BE0, 'L'}, {0x11BF0, 0x11BF9, 'N'}, {0x11F02, 0x11F02, 'L'},
    {0x11F04, 0x11F10, 'L'}, {0x11F12, 0x11F33, 'L'}, {0x11F50, 0x11F59, 'N'}, {0x1342F, 0x1342F, 'L'},
    {0x13441, 0x13446, 'L'}, {0x13460, 0x143FA, 'L'}, {0x16100, 0x1611D, 'L'}, {0x16130, 0x16139, 'N'},
    {0x16D40, 0x16D6C, 'L'}, {0x16D70, 0x16D79, 'N'}, {0x18CFF, 0x18CFF, 'L'}, {0x1B132, 0x1B132, 'L'},
    {0x1B155, 0x1B155, 'L'}, {0x1CCF0, 0x1CCF9, 'N'}, {0x1D2C0, 0x1D2D3, 'N'}, {0x1DF25, 0x1DF2A, 'L'},
    {0x1E030, 0x1E06D, 'L'}, {0x1E4D0, 0x1E4EB, 'L'}, {0x1E4F0, 0x1E4F9, 'N'}, {0x1E5D0, 0x1E5ED, 'L'},
    {0x1E5F0, 0x1E5F0, 'L'}, {0x1E5F1, 0x1E5FA, 'N'}, {0x2B739, 0x2B739, 'L'}, {0x2EBF0, 0x2EE5D, 'L'},
    {0x31350, 0x323AF, 'L'},
};

static int new_prop_class(int32_t c) {
    int lo = 0, hi = (int)(sizeof new_props / sizeof new_props[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < new_props[mid].lo)
            hi = mid - 1;
        else if (c > new_props[mid].hi)
            lo = mid + 1;
        else
            return new_props[mid].cls;
    }
    return 0;
}

char *pretok_regex_view(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    char *view = NULL;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0xE1) { /* every code point in the table is >= U+1C89 */
            i++;
            continue;
        }
        if (p[i] < 0xF0 && p[i] != 0xE1 && p[i] != 0xEA) { /* 3-byte ones are U+1Cxx and U+A7xx */
            i += 3;
            continue;
        }
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) {
            i++;
            continue;
        }
        int cls = new_prop_class(c);
        if (cls) {
            if (!view) {
                view = xmalloc(len + 1);
                memcpy(view, s, len);
                view[len] = 0;
            }
            /* U+4E00 (Lo), U+20000 (Lo), U+1D7CE (Nd): known to every PCRE2 */
            const char *stand = k == 3       ? "\xE4\xB8\x80"
                                : cls == 'L' ? "\xF0\xA0\x80\x80"
                                             : "\xF0\x9D\x9F\x8E";
            memcpy(view + i, stand, (size_t)k);
        }
        i += (size_t)k;
    }
    return view;
}

struct strbuf {
    char *s;
    size_t len, cap;
};

static void sb_put(struct strbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(struct strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* The class body (without brackets) that stands for the escape at p (backslash included), or
 * NULL if the escape is not rewritten; *skip receives the escape's length. */
static const char *class_body(const char *p, size_t *skip, int *negated) {
    static const struct {
        const char *esc, *body;
        int neg;
    } tab[] = {{"\\s", WS_CLASS, 0}, {"\\S", WS_CLASS, 1}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        size_t n = strlen(tab[i].esc);
        if (strncmp(p, tab[i].esc, n) == 0) {
            *skip = n;
            *negated = tab[i].neg;
            return tab[i].body;
        }
    }
    return NULL;
}

pcre2_code *pretok_regex_compile(const char *pattern, int literal) {
    size_t n = strlen(pattern);
    struct strbuf b = {0};
    sb_put(&b, "", 0);
    if (literal) {
        for (size_t i = 0; i < n; i++) {
            if (strchr("\\^$.|?*+()[]{}", pattern[i])) sb_put(&b, "\\", 1);
            sb_put(&b, pattern + i, 1);
        }
    } else {
        int in_class = 0;
        for (size_t i = 0; i < n; i++) {
            char c = pattern[i];
            if (c == '\\' && i + 1 < n) {
                size_t skip;
                int neg;
                const char *body = class_body(pattern + i, &skip, &neg);
                if (body && !(in_class && neg)) { /* a negated set inside a class stays as written */
                    if (!in_class) sb_puts(&b, neg ? "[^" : "[");
                    sb_puts(&b, body);
                    if (!in_class) sb_puts(&b, "]");
                    i += skip - 1;
                } else {
                    sb_put(&b, pattern + i, 2);
                    i++;
                }
                continue;
            }
            if (!in_class && c == '[') {
                in_class = 1;
                sb_put(&b, &c, 1);
                if (i + 1 < n && pattern[i + 1] == '^') sb_put(&b, pattern + ++i, 1);
                if (i + 1 < n && pattern[i + 1] == ']') sb_put(&b, pattern + ++i, 1);
                continue;
            }
            if (in_class && c == ']') in_class = 0;
            sb_put(&b, &c, 1);
        }
    }
    int ec;
    PCRE2_SIZE eo;
    /* the pattern comes from tokenizer.json: PCRE2 checks its UTF-8 (invalid UTF-8 is an error) */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)b.s, b.len, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    free(b.s);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        err_set("regex \"%s\": %s", pattern, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}
