/* tokenizer: loading (tokenizer.json, vocab.json + merges.txt), encode pipeline and decode;
 * see tokenizer.h. Mirrors HF tokenizers: AddedVocabulary (leftmost-longest match of added
 * tokens, non-normalized ones on the raw text, normalized ones after the normalizer), then
 * the pre-tokenizer steps (Split with any behavior and invert, ByteLevel, Digits), then
 * models::bpe. Checked against HF on Qwen3, Llama 3, DeepSeek-V3 and GPT-4o tokenizer files. */
#include "tok/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/bpe.h"
#include "tok/jscan.h"
#include "tok/pretok.h"

/* GPT-2's pattern, used by a ByteLevel pre-tokenizer with use_regex. */
#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Qwen2Tokenizer's PRETOKENIZE_REGEX (the Split regex of Qwen's tokenizer.json). */
#define QWEN2_REGEX                                                                                          \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                                      \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

struct added_token {
    char *content;
    size_t len;
    char *raw; /* what the ByteLevel decoder makes of it */
    size_t raw_len;
    int32_t id;
    uint8_t special, lstrip, rstrip, single_word, normalized;
};

enum step_kind { STEP_SPLIT, STEP_BYTELEVEL, STEP_METASPACE };
enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS };
enum split_behavior { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

struct pretok_step {
    enum step_kind kind;
    pcre2_code *re; /* NULL for a ByteLevel step without use_regex */
    int jit;        /* re was JIT-compiled */
    enum split_behavior behavior;
    int add_prefix_space;
    int invert; /* the gaps between matches are the delimiters */
    /* Metaspace: ' ' -> repl, repl prepended per prepend_scheme, split before each repl */
    char repl[8];
    size_t repl_len;
    int prepend_scheme, msplit;
};

/* Normalizer steps after the Unicode form: Prepend(a) or Replace(a -> b). */
enum norm_kind { NORM_PREPEND, NORM_REPLACE };
struct norm_op {
    enum norm_kind kind;
    char *a, *b;
    size_t al, bl;
};

/* Decoder steps of a non-ByteLevel decoder Sequence, run on the list of token strings. */
enum dec_kind { DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP };
struct dec_op {
    enum dec_kind kind;
    char *a, *b; /* Replace a -> b; Strip: a is the character */
    size_t al, bl;
    int start, stop;
};

enum { MAX_STEPS = 8 };

struct tokenizer {
    struct bpe bpe;
    enum tok_norm norm;
    struct pretok_step steps[MAX_STEPS];
    int n_steps;
    struct added_token *added;
    int n_added;
    int32_t *order; /* added indices sorted by first byte, then length descending */
    int32_t first_lo[256], first_hi[256];
    int has_normalized_added;
    int32_t vocab_size;
    int32_t *added_of_id; /* (vocab_size) index into added, -1 if none */
    int decoder_bytelevel;
    struct norm_op nops[MAX_STEPS];
    int n_nops;
    struct dec_op dops[MAX_STEPS];
    int n_dops;
};

/* ---- added tokens ---- */

static int added_add(struct tokenizer *tk, const char *content, int32_t id, int special, int lstrip,
                     int rstrip, int single_word, int normalized) {
    if (!content || !*content) return err_set("added token %d has empty content", id);
    if (id < 0) return err_set("added token \"%s\" has negative id %d", content, id);
    for (int i = 0; i < tk->n_added; i++)
        if (tk->added[i].id == id) return err_set("added token id %d appears twice", id);
    tk->added = xrealloc(tk->added, (size_t)(tk->n_added + 1) * sizeof *tk->added);
    struct added_token *a = &tk->added[tk->n_added++];
    memset(a, 0, sizeof *a);
    a->content = xstrdup(content);
    a->len = strlen(content);
    a->id = id;
    a->special = (uint8_t)special;
    a->lstrip = (uint8_t)lstrip;
    a->rstrip = (uint8_t)rstrip;
    a->single_word = (uint8_t)single_word;
    a->normalized = (uint8_t)normalized;
    return 0;
}

/* Second byte of an added token, 256 for a one-byte token (those come last in their bucket). */
static int second_byte(const struct added_token *a) { return a->len > 1 ? (uint8_t)a->content[1] : 256; }

/* Added tokens by first byte, then second byte, then longest first: a position's candidates
 * are one run (plus the one-byte tokens), not every token with its first byte (Gemma 3: 6,322
 * tokens start with '<'). */
static int cmp_order(const void *x, const void *y, void *ctx) {
    const struct added_token *t = ctx, *a = &t[*(const int32_t *)x], *b = &t[*(const int32_t *)y];
    if ((uint8_t)a->content[0] != (uint8_t)b->content[0])
        return (uint8_t)a->content[0] - (uint8_t)b->content[0];
    if (second_byte(a) != second_byte(b)) return second_byte(a) - second_byte(b);
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id - b->id;
}

/* Decodes the byte-level form s into raw bytes if every character is in the alphabet;
 * otherwise the bytes of s (HF ByteLevel decode_chain). */
static char *bytelevel_decode(const char *s, size_t len, size_t *out_len) {
    char *o = xmalloc(len + 1);
    size_t n = 0, i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        int b = k > 0 ? bpe_char_to_byte((uint32_t)c) : -1;
        if (b < 0) {
            memcpy(o, s, len);
            *out_len = len;
            return o;
        }
        o[n++] = (char)b;
        i += (size_t)k;
    }
    *out_len = n;
    return o;
}

/* (Re)builds the indexes of the added tokens. */
static void added_index(struct tokenizer *tk) {
    int32_t n = tk->bpe.n_ids;
    for (int i = 0; i < tk->n_added; i++)
        if (tk->added[i].id + 1 > n) n = tk->added[i].id + 1;
    tk->vocab_size = n;
    free(tk->added_of_id);
    free(tk->order);
    tk->added_of_id = xmalloc((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int32_t i = 0; i < n; i++)
        tk->added_of_id[i] = -1;
    tk->order = xmalloc((size_t)(tk->n_added ? tk->n_added : 1) * sizeof(int32_t));
    tk->has_normalized_added = 0;
    for (int i = 0; i < tk->n_added; i++) {
        struct added_token *a = &tk->added[i];
        tk->added_of_id[a->id] = i;
        tk->order[i] = i;
        if (a->normalized) tk->has_normalized_added = 1;
        if (!a->raw) a->raw = bytelevel_decode(a->content, a->len, &a->raw_len);
    }
    qsort_r(tk->order, (size_t)tk->n_added, sizeof(int32_t), cmp_order, tk->added);
    for (int c = 0; c < 256; c++)
        tk->first_lo[c] = tk->first_hi[c] = 0;
    for (int i = 0; i < tk->n_added; i++) {
        int c = (uint8_t)tk->added[tk->order[i]].content[0];
        if (tk->first_hi[c] == 0) tk->first_lo[c] = i;
        tk->first_hi[c] = i + 1;
    }
}

/* Indexes ids and added tokens once the vocab and added tokens are loaded (before merges). */
static void tokenizer_finish(struct tokenizer *tk) {
    bpe_finish_vocab(&tk->bpe);
    added_index(tk);
}

void tokenizer_free(struct tokenizer *tk) {
    if (!tk) return;
    bpe_free(&tk->bpe);
    for (int i = 0; i < tk->n_steps; i++)
        pcre2_code_free(tk->steps[i].re);
    for (int i = 0; i < tk->n_nops; i++)
        free(tk->nops[i].a), free(tk->nops[i].b);
    for (int i = 0; i < tk->n_dops; i++)
        free(tk->dops[i].a), free(tk->dops[i].b);
    for (int i = 0; i < tk->n_added; i++)
        free(tk->added[i].content), free(tk->added[i].raw);
    free(tk->added);
    free(tk->order);
    free(tk->added_of_id);
    free(tk);
}

/* ---- loading: shared pieces ---- */

static int regex_is_jit(const pcre2_code *re) {
    size_t size = 0;
    return pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &size) == 0 && size > 0;
}

static int add_regex_step(struct tokenizer *tk, const char *pattern, int literal, enum split_behavior beh) {
    if (tk->n_steps == MAX_STEPS) return err_set("more than %d pre-tokenizer steps", MAX_STEPS);
    pcre2_code *re = pretok_regex_compile(pattern, literal);
    if (!re) return -1;
    tk->steps[tk->n_steps++] = (struct pretok_step){STEP_SPLIT, re, regex_is_jit(re), beh, 0, 0, {0}, 0, 0, 0};
    return 0;
}

static int json_flag(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsTrue(v);
}

static const char *json_type(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int parse_normalizer(struct tokenizer *tk, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *type = json_type(n);
    if (!type) return err_set("normalizer: expected an object with a \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) return err_set("normalizer: Sequence without a \"normalizers\" array");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (parse_normalizer(tk, it)) return -1;
        return 0;
    }
    if (strcmp(type, "Prepend") == 0 || strcmp(type, "Replace") == 0) {
        int prep = type[0] == 'P';
        const cJSON *a = prep ? cJSON_GetObjectItemCaseSensitive(n, "prepend")
                              : cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "pattern"),
                                                                 "String");
        const cJSON *b = prep ? NULL : cJSON_GetObjectItemCaseSensitive(n, "content");
        if (!cJSON_IsString(a) || (!prep && (!cJSON_IsString(b) || !a->valuestring[0])))
            return err_set(prep ? "normalizer Prepend: expected a string \"prepend\""
                                : "normalizer Replace: expected pattern {\"String\": non-empty} and a string "
                                  "\"content\" (Regex patterns are not supported)");
        if (tk->n_nops == MAX_STEPS) return err_set("normalizer: more than %d steps", MAX_STEPS);
        struct norm_op *op = &tk->nops[tk->n_nops++];
        op->kind = prep ? NORM_PREPEND : NORM_REPLACE;
        op->a = xstrdup(a->valuestring);
        op->al = strlen(op->a);
        op->b = prep ? NULL : xstrdup(b->valuestring);
        op->bl = prep ? 0 : strlen(op->b);
        return 0;
    }
    enum tok_norm f;
    if (strcmp(type, "NFC") == 0)
        f = TOK_NORM_NFC;
    else if (strcmp(type, "NFD") == 0)
        f = TOK_NORM_NFD;
    else if (strcmp(type, "NFKC") == 0)
        f = TOK_NORM_NFKC;
    else if (strcmp(type, "NFKD") == 0)
        f = TOK_NORM_NFKD;
    else
        return err_set("normalizer: type \"%s\" is not supported (NFC, NFD, NFKC, NFKD, Prepend, Replace, "
                       "Sequence or null)",
                       type);
    if (tk->n_nops) return err_set("normalizer: %s after Prepend/Replace is not supported", type);
    if (tk->norm != TOK_NORM_NONE && tk->norm != f)
        return err_set("normalizer: only one Unicode normalization form is supported");
    tk->norm = f;
    return 0;
}

static int parse_pretokenizer(struct tokenizer *tk, const cJSON *p) {
    if (!p || cJSON_IsNull(p)) return 0;
    const char *type = json_type(p);
    if (!type) return err_set("pre_tokenizer: expected an object with a \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
        if (!cJSON_IsArray(list)) return err_set("pre_tokenizer: Sequence without a \"pretokenizers\" array");
        const cJSON *it;
        cJSON_ArrayForEach(it, list) if (parse_pretokenizer(tk, it)) return -1;
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (!cJSON_IsString(rx) && !cJSON_IsString(str))
            return err_set("pre_tokenizer Split: expected pattern {\"Regex\": ...} or {\"String\": ...}");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "behavior");
        const char *bs = cJSON_IsString(b) ? b->valuestring : "Isolated";
        enum split_behavior beh;
        if (strcmp(bs, "Isolated") == 0)
            beh = SPLIT_ISOLATED;
        else if (strcmp(bs, "Removed") == 0)
            beh = SPLIT_REMOVED;
        else if (strcmp(bs, "MergedWithPrevious") == 0)
            beh = SPLIT_MERGED_PREV;
        else if (strcmp(bs, "MergedWithNext") == 0)
            beh = SPLIT_MERGED_NEXT;
        else if (strcmp(bs, "Contiguous") == 0)
            beh = SPLIT_CONTIGUOUS;
        else
            return err_set("pre_tokenizer Split: behavior \"%s\" is not supported", bs);
        if (add_regex_step(tk, cJSON_IsString(rx) ? rx->valuestring : str->valuestring, !cJSON_IsString(rx),
                           beh))
            return err_wrap("pre_tokenizer Split");
        tk->steps[tk->n_steps - 1].invert = json_flag(p, "invert");
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        if (tk->n_steps == MAX_STEPS) return err_set("more than %d pre-tokenizer steps", MAX_STEPS);
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
        int use_regex = ur ? cJSON_IsTrue(ur) : 1; /* HF default: true */
        pcre2_code *re = NULL;
        if (use_regex && !(re = pretok_regex_compile(GPT2_REGEX, 0))) return -1;
        tk->steps[tk->n_steps++] = (struct pretok_step){
            STEP_BYTELEVEL, re, re && regex_is_jit(re), SPLIT_ISOLATED, json_flag(p, "add_prefix_space"), 0, {0}, 0, 0, 0};
        return 0;
    }
    if (strcmp(type, "Metaspace") == 0) {
        if (tk->n_steps == MAX_STEPS) return err_set("more than %d pre-tokenizer steps", MAX_STEPS);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(p, "replacement");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(p, "split");
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(p, "add_prefix_space");
        const char *rs = cJSON_IsString(r) ? r->valuestring : "\xe2\x96\x81";
        utf8proc_int32_t c;
        size_t rl = strlen(rs);
        if (rl == 0 || rl >= 8 || utf8proc_iterate((const uint8_t *)rs, (utf8proc_ssize_t)rl, &c) != (utf8proc_ssize_t)rl)
            return err_set("pre_tokenizer Metaspace: replacement \"%s\" is not one character", rs);
        int scheme = PREPEND_ALWAYS;
        if (cJSON_IsString(ps)) {
            if (strcmp(ps->valuestring, "always") == 0)
                scheme = PREPEND_ALWAYS;
            else if (strcmp(ps->valuestring, "first") == 0)
                scheme = PREPEND_FIRST;
            else if (strcmp(ps->valuestring, "never") == 0)
                scheme = PREPEND_NEVER;
            else
                return err_set("pre_tokenizer Metaspace: prepend_scheme \"%s\" is not always, first or never",
                               ps->valuestring);
        } else if (aps && !cJSON_IsTrue(aps)) {
            scheme = PREPEND_NEVER;
        }
        struct pretok_step *st = &tk->steps[tk->n_steps++];
        memset(st, 0, sizeof *st);
        st->kind = STEP_METASPACE;
        memcpy(st->repl, rs, rl + 1);
        st->repl_len = rl;
        st->prepend_scheme = scheme;
        st->msplit = sp ? cJSON_IsTrue(sp) : 1; /* HF default: split */
        return 0;
    }
    if (strcmp(type, "Digits") == 0)
        return add_regex_step(tk, json_flag(p, "individual_digits") ? "\\p{N}" : "\\p{N}+", 0,
                              SPLIT_ISOLATED);
    return err_set("pre_tokenizer: type \"%s\" is not supported (Split, ByteLevel, Metaspace, Digits, Sequence)",
                   type);
}

static int parse_decoder(struct tokenizer *tk, const cJSON *d) {
    if (!d || cJSON_IsNull(d)) return 0;
    const char *type = json_type(d);
    if (type && strcmp(type, "ByteLevel") == 0) {
        tk->decoder_bytelevel = 1;
        return 0;
    }
    if (type && strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *it;
        if (!cJSON_IsArray(list)) return err_set("decoder: Sequence without a \"decoders\" array");
        cJSON_ArrayForEach(it, list) if (parse_decoder(tk, it)) return -1;
        return 0;
    }
    struct dec_op op = {0};
    if (type && strcmp(type, "Replace") == 0) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(d, "content");
        if (!cJSON_IsString(a) || !a->valuestring[0] || !cJSON_IsString(b))
            return err_set("decoder Replace: expected pattern {\"String\": non-empty} and a string \"content\" "
                           "(Regex patterns are not supported)");
        op.kind = DEC_REPLACE;
        op.a = xstrdup(a->valuestring), op.al = strlen(op.a);
        op.b = xstrdup(b->valuestring), op.bl = strlen(op.b);
    } else if (type && strcmp(type, "ByteFallback") == 0) {
        op.kind = DEC_BYTEFALLBACK;
    } else if (type && strcmp(type, "Fuse") == 0) {
        op.kind = DEC_FUSE;
    } else if (type && strcmp(type, "Strip") == 0) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "content");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(d, "start"), *sp = cJSON_GetObjectItemCaseSensitive(d, "stop");
        utf8proc_int32_t ch;
        if (!cJSON_IsString(c) || !c->valuestring[0] ||
            utf8proc_iterate((const uint8_t *)c->valuestring, -1, &ch) != (utf8proc_ssize_t)strlen(c->valuestring) ||
            !cJSON_IsNumber(st) || !cJSON_IsNumber(sp) || st->valueint < 0 || sp->valueint < 0)
            return err_set("decoder Strip: expected a one-character \"content\" and integers \"start\", \"stop\" >= 0");
        op.kind = DEC_STRIP;
        op.a = xstrdup(c->valuestring), op.al = strlen(op.a);
        op.start = st->valueint, op.stop = sp->valueint;
    } else {
        return err_set("decoder: type \"%s\" is not supported (ByteLevel, Sequence of Replace, ByteFallback, Fuse, "
                       "Strip, or null)",
                       type ? type : "?");
    }
    if (tk->n_dops == MAX_STEPS) {
        free(op.a), free(op.b);
        return err_set("decoder: more than %d steps", MAX_STEPS);
    }
    tk->dops[tk->n_dops++] = op;
    return 0;
}

/* ---- loading: tokenizer.json ---- */

/* model.vocab (or a whole vocab.json): {"token": id, ...}. */
static int scan_vocab(struct tokenizer *tk, struct jscan *j, const char *p) {
    int first = 1, r;
    while ((r = jscan_next(j, &p, &first, '{')) == 1) {
        int64_t id;
        const char *q = jscan_int(j, p, &id);
        if (!q) return err_wrap("\"%s\"", j->buf);
        if (id > INT32_MAX) return err_set("\"%s\": id %lld is too large", j->buf, (long long)id);
        if (bpe_add_token(&tk->bpe, j->buf, j->len, (int32_t)id)) return -1;
        p = q;
    }
    return r;
}

/* model.merges: ["a b", ...] or [["a", "b"], ...], in rank order. */
static int scan_merges(struct tokenizer *tk, struct jscan *j, const char *p) {
    int first = 1, r;
    int64_t i = 0;
    char *left = NULL;
    size_t left_cap = 0;
    struct bpe_merge_queue q = {0}; /* added together at the end (bpe_add_merges) */
    while ((r = jscan_next(j, &p, &first, '[')) == 1) {
        int rc;
        if (*p == '"') {
            if (!(p = jscan_string(j, p))) break;
            char *sp = memchr(j->buf, ' ', j->len);
            if (!sp || memchr(sp + 1, ' ', j->len - (size_t)(sp + 1 - j->buf))) {
                r = err_set("model.merges[%lld]: expected \"left right\", found \"%s\"", (long long)i,
                            j->buf);
                break;
            }
            bpe_queue_merge(&q, j->buf, (size_t)(sp - j->buf), sp + 1, j->len - (size_t)(sp + 1 - j->buf));
            rc = 0;
        } else if (*p == '[') {
            int f2 = 1, n = 0, r2;
            size_t left_len = 0;
            rc = 0;
            while ((r2 = jscan_next(j, &p, &f2, '[')) == 1) {
                if (*p != '"' || n == 2) {
                    r2 = -1;
                    break;
                }
                if (!(p = jscan_string(j, p))) break;
                if (n++ == 0) {
                    if (j->len + 1 > left_cap) left = xrealloc(left, left_cap = j->len + 1);
                    memcpy(left, j->buf, j->len + 1);
                    left_len = j->len;
                }
            }
            if (r2 != 0 || n != 2) {
                r = err_set(
                    "model.merges[%lld]: expected a string \"left right\" or a pair [\"left\", \"right\"]",
                    (long long)i);
                break;
            }
            bpe_queue_merge(&q, left, left_len, j->buf, j->len);
        } else {
            r = err_set(
                "model.merges[%lld]: expected a string \"left right\" or a pair [\"left\", \"right\"]",
                (long long)i);
            break;
        }
        if (rc) {
            r = err_wrap("model.merges[%lld]", (long long)i);
            break;
        }
        i++;
    }
    free(left);
    int64_t bad = 0;
    if (r == 0 && p && bpe_add_merges(&tk->bpe, &q, &bad)) r = err_wrap("model.merges[%lld]", (long long)bad);
    bpe_merge_queue_free(&q);
    return r < 0 || !p ? -1 : 0;
}

static int parse_tokenizer_json(struct tokenizer *tk, const cJSON *root, struct jscan *j,
                                const char *vocab_at, const char *merges_at) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return err_set("expected an object \"model\"");
    const char *type = json_type(model);
    if (type && strcmp(type, "BPE") != 0) return err_set("model.type is \"%s\", only BPE is supported", type);
    const char *fix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, fix[i]);
        if (cJSON_IsString(v) && v->valuestring[0])
            return err_set("model.%s=\"%s\" is not supported", fix[i], v->valuestring);
    }
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0) return err_set("model.dropout is not supported");
    tk->bpe.ignore_merges = json_flag(model, "ignore_merges");
    /* The text steps and decoder first: they decide whether tokens are byte-level or plain. */
    if (parse_normalizer(tk, cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) return -1;
    if (parse_pretokenizer(tk, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) return -1;
    if (parse_decoder(tk, cJSON_GetObjectItemCaseSensitive(root, "decoder"))) return -1;
    int metaspace = 0;
    for (int i = 0; i < tk->n_steps; i++)
        if (tk->steps[i].kind == STEP_METASPACE) metaspace = 1;
    if (json_flag(model, "byte_fallback") || metaspace || tk->n_nops || tk->n_dops)
        bpe_set_plain(&tk->bpe, json_flag(model, "byte_fallback"), json_flag(model, "fuse_unk"));
    if (!vocab_at) return err_set("expected an object model.vocab");
    if (scan_vocab(tk, j, vocab_at)) return err_wrap("model.vocab");
    if (!merges_at) return err_set("expected an array model.merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added)) {
        if (!cJSON_IsArray(added)) return err_set("added_tokens: expected an array");
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, added) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
            if (!cJSON_IsNumber(id) || !cJSON_IsString(content))
                return err_set("added_tokens[%d]: expected \"id\" (integer) and \"content\" (string)", i);
            const cJSON *nz = cJSON_GetObjectItemCaseSensitive(it, "normalized");
            if (added_add(tk, content->valuestring, id->valueint, json_flag(it, "special"),
                          json_flag(it, "lstrip"), json_flag(it, "rstrip"), json_flag(it, "single_word"),
                          nz ? cJSON_IsTrue(nz) : !json_flag(it, "special")))
                return err_wrap("added_tokens[%d]", i);
            i++;
        }
    }
    tokenizer_finish(tk);
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (cJSON_IsString(unk)) {
        tk->bpe.unk_id = bpe_lookup_form(&tk->bpe, unk->valuestring, strlen(unk->valuestring));
        if (tk->bpe.unk_id < 0)
            return err_set("model.unk_token \"%s\" is not in model.vocab", unk->valuestring);
    }
    if (scan_merges(tk, j, merges_at)) return -1;
    return 0;
}

static struct tokenizer *tokenizer_new(int64_t hint) {
    struct tokenizer *tk = xcalloc(1, sizeof *tk);
    bpe_init(&tk->bpe, hint);
    return tk;
}

static cJSON *json_load(const char *path) {
    size_t len;
    char *text = file_read_all(path, &len);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : 0;
        size_t line = 1;
        for (size_t i = 0; i < off; i++)
            line += text[i] == '\n';
        err_set("%s: invalid JSON near byte %zu (line %zu)", path, off, line);
    }
    free(text);
    return root;
}

/* Splits tokenizer.json: model.vocab and model.merges are scanned in place later (their
 * positions go to *vocab_at, *merges_at); every other member is parsed by cJSON into *out. */
static int split_tokenizer_json(struct jscan *j, cJSON **out, const char **vocab_at, const char **merges_at) {
    cJSON *root = cJSON_CreateObject();
    *out = root;
    const char *p = j->start;
    int first = 1, r;
    while ((r = jscan_next(j, &p, &first, '{')) == 1) {
        char *key = xstrdup(j->buf);
        const char *ve = strcmp(key, "model") == 0 && *p == '{' ? p : jscan_value(j, p);
        if (!ve) {
            free(key);
            return -1;
        }
        if (strcmp(key, "model") == 0 && *p == '{') {
            cJSON *model = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "model", model);
            const char *mp = p;
            int mfirst = 1, mr;
            while ((mr = jscan_next(j, &mp, &mfirst, '{')) == 1) {
                const char *mve = jscan_value(j, mp);
                if (!mve) break;
                if (strcmp(j->buf, "vocab") == 0 && *mp == '{')
                    *vocab_at = mp;
                else if (strcmp(j->buf, "merges") == 0 && *mp == '[')
                    *merges_at = mp;
                else
                    cJSON_AddItemToObject(model, j->buf, cJSON_ParseWithLength(mp, (size_t)(mve - mp)));
                mp = mve;
            }
            if (mr != 0) {
                free(key);
                return -1;
            }
            ve = mp;
        } else {
            cJSON *v = cJSON_ParseWithLength(p, (size_t)(ve - p));
            if (!v) {
                free(key);
                return jscan_error(j, p, "malformed value");
            }
            cJSON_AddItemToObject(root, key, v);
        }
        free(key);
        p = ve;
    }
    if (r < 0) return -1;
    p = jscan_ws(j, p);
    if (p != j->end) return jscan_error(j, p, "unexpected text after the top-level object");
    return 0;
}

static int load_tokenizer_json(struct tokenizer **out, const char *path) {
    *out = NULL;
    size_t len;
    char *text = file_read_all(path, &len);
    if (!text) return -1;
    struct jscan j = {text, text + len, NULL, 0, 0};
    cJSON *root = NULL;
    const char *vocab_at = NULL, *merges_at = NULL;
    struct tokenizer *tk = tokenizer_new(160000);
    int rc = split_tokenizer_json(&j, &root, &vocab_at, &merges_at);
    if (!rc) rc = parse_tokenizer_json(tk, root, &j, vocab_at, merges_at);
    cJSON_Delete(root);
    free(j.buf);
    free(text);
    if (rc) {
        tokenizer_free(tk);
        return err_wrap("%s", path);
    }
    *out = tk;
    return 0;
}

/* ---- loading: vocab.json + merges.txt ---- */

/* tokenizer_config.json: tokenizer_class and added_tokens_decoder. With only_missing (a config
 * beside a tokenizer.json), only tokens whose content is not an added token yet are added, as
 * transformers' PreTrainedTokenizerFast does; such a token takes its vocab id if it has one.
 * Returns the number of tokens added, or -1. */
static int parse_config(struct tokenizer *tk, const cJSON *cfg, int *gpt2, int only_missing) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class");
    *gpt2 = cJSON_IsString(cls) && strncmp(cls->valuestring, "GPT2Tokenizer", 13) == 0;
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder"), *it;
    int n_new = 0;
    if (!dec || cJSON_IsNull(dec)) return 0;
    if (!cJSON_IsObject(dec)) return err_set("added_tokens_decoder: expected an object");
    cJSON_ArrayForEach(it, dec) {
        char *end;
        long id = strtol(it->string, &end, 10);
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (*end || end == it->string || !cJSON_IsString(content))
            return err_set("added_tokens_decoder[\"%s\"]: expected an integer key and a \"content\" string",
                           it->string);
        if (only_missing) {
            int present = 0, k = id >= 0 && id < tk->vocab_size && tk->added_of_id ? tk->added_of_id[id] : -1;
            if (k >= 0) present = strcmp(tk->added[k].content, content->valuestring) == 0; /* the usual case */
            for (int i = 0; i < tk->n_added && !present; i++)
                present = strcmp(tk->added[i].content, content->valuestring) == 0;
            if (present) continue;
            int32_t vid = bpe_lookup_form(&tk->bpe, content->valuestring, strlen(content->valuestring));
            if (vid >= 0) id = vid;
        }
        const cJSON *nz = cJSON_GetObjectItemCaseSensitive(it, "normalized");
        if (added_add(tk, content->valuestring, (int32_t)id, json_flag(it, "special"),
                      json_flag(it, "lstrip"), json_flag(it, "rstrip"), json_flag(it, "single_word"),
                      nz ? cJSON_IsTrue(nz) : !json_flag(it, "special")))
            return err_wrap("added_tokens_decoder");
        n_new++;
    }
    return n_new;
}

static int parse_merges_txt(struct tokenizer *tk, char *text, size_t len) {
    size_t line = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        line++;
        char *a = p;
        p = nl ? nl + 1 : end;
        while (a < e && (*a == ' ' || *a == '\t' || *a == '\r'))
            a++;
        char *z = e;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r'))
            z--;
        if (a == z || (line == 1 && strncmp(a, "#version", 8) == 0)) continue;
        char *sp = a;
        while (sp < z && *sp != ' ' && *sp != '\t')
            sp++;
        char *b = sp;
        while (b < z && (*b == ' ' || *b == '\t'))
            b++;
        char *be = b;
        while (be < z && *be != ' ' && *be != '\t')
            be++;
        if (b == z || be != z)
            return err_set("line %zu: expected two tokens \"left right\", found \"%.*s\"", line, (int)(z - a),
                           a);
        if (bpe_add_merge(&tk->bpe, a, (size_t)(sp - a), b, (size_t)(z - b)))
            return err_wrap("line %zu", line);
    }
    return 0;
}

int tokenizer_load_files(struct tokenizer **out, const char *vocab_file, const char *merges_file,
                         const char *tokenizer_config) {
    *out = NULL;
    struct tokenizer *tk = tokenizer_new(160000);
    int gpt2 = 0;
    if (tokenizer_config) {
        cJSON *cfg = json_load(tokenizer_config);
        int rc = !cfg                  ? -1
                 : cJSON_IsObject(cfg) ? parse_config(tk, cfg, &gpt2, 0)
                                       : err_set("expected a JSON object");
        cJSON_Delete(cfg);
        if (rc < 0) {
            tokenizer_free(tk);
            return cfg ? err_wrap("%s", tokenizer_config) : -1;
        }
    }
    size_t vlen;
    char *vtext = file_read_all(vocab_file, &vlen);
    if (!vtext) {
        tokenizer_free(tk);
        return -1;
    }
    struct jscan j = {vtext, vtext + vlen, NULL, 0, 0};
    const char *vp = jscan_ws(&j, vtext);
    int rc =
        vp < j.end && *vp == '{' ? scan_vocab(tk, &j, vp) : err_set("expected a JSON object of token -> id");
    free(j.buf);
    free(vtext);
    if (rc) {
        tokenizer_free(tk);
        return err_wrap("%s", vocab_file);
    }
    tokenizer_finish(tk);
    size_t len;
    char *merges = file_read_all(merges_file, &len);
    if (!merges || parse_merges_txt(tk, merges, len)) {
        if (merges) err_wrap("%s", merges_file);
        free(merges);
        tokenizer_free(tk);
        return -1;
    }
    free(merges);
    /* Qwen2Tokenizer: NFC + its regex; GPT2Tokenizer: GPT-2's regex (ByteLevel use_regex). */
    if (!gpt2) tk->norm = TOK_NORM_NFC;
    if (add_regex_step(tk, gpt2 ? GPT2_REGEX : QWEN2_REGEX, 0, SPLIT_ISOLATED)) {
        tokenizer_free(tk);
        return -1;
    }
    tk->decoder_bytelevel = 1;
    *out = tk;
    return 0;
}

/* Adds the added tokens of a tokenizer_config.json that tokenizer.json lacks. */
static int apply_config(struct tokenizer *tk, const char *config) {
    cJSON *cfg = json_load(config);
    if (!cfg) return -1;
    int gpt2;
    int n = cJSON_IsObject(cfg) ? parse_config(tk, cfg, &gpt2, 1) : err_set("expected a JSON object");
    cJSON_Delete(cfg);
    if (n < 0) return err_wrap("%s", config);
    if (n > 0) added_index(tk);
    return 0;
}

int tokenizer_load(struct tokenizer **out, const char *path) {
    *out = NULL;
    if (dir_exists(path)) {
        char *tj = path_join(path, "tokenizer.json");
        if (file_exists(tj)) {
            int rc = load_tokenizer_json(out, tj);
            free(tj);
            char *c = path_join(path, "tokenizer_config.json");
            if (!rc && file_exists(c)) rc = apply_config(*out, c);
            free(c);
            if (rc) {
                tokenizer_free(*out);
                *out = NULL;
            }
            return rc;
        }
        free(tj);
        char *v = path_join(path, "vocab.json"), *m = path_join(path, "merges.txt"),
             *c = path_join(path, "tokenizer_config.json");
        int rc;
        if (!file_exists(v) || !file_exists(m))
            rc = err_set("%s: no tokenizer.json, nor vocab.json + merges.txt", path);
        else
            rc = tokenizer_load_files(out, v, m, file_exists(c) ? c : NULL);
        free(v);
        free(m);
        free(c);
        return rc;
    }
    if (!file_exists(path)) return err_set("%s: no such file or folder", path);
    size_t n = strlen(path);
    if (n >= 10 && strcmp(path + n - 10, "vocab.json") == 0) {
        char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[1] = 0;
        else
            dir[0] = 0;
        char *m = xasprintf("%smerges.txt", dir), *c = xasprintf("%stokenizer_config.json", dir);
        int rc = file_exists(m) ? tokenizer_load_files(out, path, m, file_exists(c) ? c : NULL)
                                : err_set("%s: no merges.txt beside it (%s)", path, m);
        free(dir);
        free(m);
        free(c);
        return rc;
    }
    return load_tokenizer_json(out, path);
}

/* ---- accessors ---- */

int32_t tokenizer_vocab_size(const struct tokenizer *tk) { return tk->vocab_size; }

int tokenizer_is_added(const struct tokenizer *tk, int32_t id) {
    return id >= 0 && id < tk->vocab_size && tk->added_of_id[id] >= 0;
}

int tokenizer_is_special(const struct tokenizer *tk, int32_t id) {
    return tokenizer_is_added(tk, id) && tk->added[tk->added_of_id[id]].special;
}

int32_t tokenizer_token_id(const struct tokenizer *tk, const char *token) {
    size_t len = strlen(token);
    for (int i = 0; i < tk->n_added; i++)
        if (tk->added[i].len == len && memcmp(tk->added[i].content, token, len) == 0) return tk->added[i].id;
    return bpe_lookup_form(&tk->bpe, token, len);
}

const char *tokenizer_id_to_token(const struct tokenizer *tk, int32_t id) {
    if (id < 0 || id >= tk->vocab_size) return NULL;
    if (tk->added_of_id[id] >= 0) return tk->added[tk->added_of_id[id]].content;
    if (id >= tk->bpe.n_ids || tk->bpe.toks[id].form_len == UINT32_MAX) return NULL;
    return tk->bpe.arena + tk->bpe.toks[id].form_off;
}

/* ---- decode ---- */

static void text_edit(const struct tok_text *t, size_t a, size_t b, const char *prefix, size_t pl,
                      const char *from, size_t fl, const char *to, size_t tl, struct tok_text *out);

struct str {
    char *s;
    size_t n;
};

static struct str str_dup(const char *s, size_t n) {
    struct str r = {xmalloc(n + 1), n};
    memcpy(r.s, s, n);
    r.s[n] = 0;
    return r;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Byte of a "<0xNN>" token (Rust u8::from_str_radix on NN, which takes "+N" too), -1 if none. */
static int fallback_byte(const struct str *t) {
    if (t->n != 6 || memcmp(t->s, "<0x", 3) != 0 || t->s[5] != '>') return -1;
    int h = hexval(t->s[3]), l = hexval(t->s[4]);
    if (t->s[3] == '+' && l >= 0) return l;
    return h >= 0 && l >= 0 ? h * 16 + l : -1;
}

static void flush_bytes(struct str *out, int64_t *no, const char *bytes, size_t nb) {
    if (!nb) return;
    struct tok_text t;
    utf8_lossy(bytes, nb, &t);
    if (!t.owned) {
        out[(*no)++] = str_dup(bytes, nb);
    } else { /* invalid UTF-8: one U+FFFD per byte, as HF's ByteFallback */
        tok_text_free(&t);
        for (size_t i = 0; i < nb; i++)
            out[(*no)++] = str_dup("\xef\xbf\xbd", 3);
    }
}

/* HF's decoder chain (Replace, ByteFallback, Fuse, Strip) on the token strings. tok[0, *n)
 * is replaced; the array has room for at least as many strings as it holds. */
static void decode_chain(const struct tokenizer *tk, struct str *tok, int64_t *n_tok) {
    int64_t n = *n_tok;
    for (int d = 0; d < tk->n_dops; d++) {
        const struct dec_op *op = &tk->dops[d];
        if (op->kind == DEC_REPLACE) {
            for (int64_t i = 0; i < n; i++) {
                if (!memmem(tok[i].s, tok[i].n, op->a, op->al)) continue;
                struct tok_text src = {tok[i].s, tok[i].n, NULL, NULL, NULL, 0, NULL, NULL}, out;
                text_edit(&src, 0, tok[i].n, NULL, 0, op->a, op->al, op->b, op->bl, &out);
                free(tok[i].s);
                tok[i] = (struct str){out.owned, out.len};
                free(out.start), free(out.end);
            }
        } else if (op->kind == DEC_BYTEFALLBACK) {
            char *bytes = xmalloc((size_t)n + 1);
            size_t nb = 0;
            int64_t no = 0;
            for (int64_t i = 0; i < n; i++) {
                int b = fallback_byte(&tok[i]);
                if (b >= 0) {
                    bytes[nb++] = (char)b;
                    free(tok[i].s);
                    continue;
                }
                flush_bytes(tok, &no, bytes, nb); /* no + nb <= i: never overwrites a live token */
                nb = 0;
                tok[no++] = tok[i];
            }
            flush_bytes(tok, &no, bytes, nb);
            free(bytes);
            n = no;
        } else if (op->kind == DEC_FUSE) {
            size_t total = 0;
            for (int64_t i = 0; i < n; i++)
                total += tok[i].n;
            struct str f = {xmalloc(total + 1), 0};
            for (int64_t i = 0; i < n; i++) {
                memcpy(f.s + f.n, tok[i].s, tok[i].n);
                f.n += tok[i].n;
                free(tok[i].s);
            }
            f.s[f.n] = 0;
            tok[0] = f;
            n = 1;
        } else { /* DEC_STRIP: up to start leading and stop trailing copies of the character */
            for (int64_t i = 0; i < n; i++) {
                size_t a = 0, b = tok[i].n;
                for (int k = 0; k < op->start && b - a >= op->al && memcmp(tok[i].s + a, op->a, op->al) == 0; k++)
                    a += op->al;
                for (int k = 0; k < op->stop && b - a >= op->al && memcmp(tok[i].s + b - op->al, op->a, op->al) == 0;
                     k++)
                    b -= op->al;
                memmove(tok[i].s, tok[i].s + a, b - a);
                tok[i].n = b - a;
                tok[i].s[tok[i].n] = 0;
            }
        }
    }
    *n_tok = n;
}

static int decode_with_chain(const struct tokenizer *tk, const int32_t *ids, int64_t n, int skip_special,
                             char **text, size_t *len) {
    struct str *tok = xmalloc((size_t)(n ? n : 1) * sizeof *tok);
    int64_t nt = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id >= 0 && id < tk->vocab_size && tk->added_of_id[id] >= 0) {
            const struct added_token *a = &tk->added[tk->added_of_id[id]];
            if (skip_special && a->special) continue;
            tok[nt++] = str_dup(a->content, a->len);
        } else if (id >= 0 && id < tk->bpe.n_ids && tk->bpe.toks[id].form_len != UINT32_MAX) {
            const struct bpe_tok *t = &tk->bpe.toks[id];
            tok[nt++] = str_dup(tk->bpe.arena + t->form_off, t->form_len);
        } else {
            for (int64_t k = 0; k < nt; k++)
                free(tok[k].s);
            free(tok);
            return err_set("decode: id %d at position %lld is not in the vocabulary (size %d)", id,
                           (long long)i, tk->vocab_size);
        }
    }
    decode_chain(tk, tok, &nt);
    size_t total = 0, o = 0;
    for (int64_t i = 0; i < nt; i++)
        total += tok[i].n;
    char *buf = xmalloc(total + 1);
    for (int64_t i = 0; i < nt; i++) {
        memcpy(buf + o, tok[i].s, tok[i].n);
        o += tok[i].n;
        free(tok[i].s);
    }
    free(tok);
    buf[o] = 0;
    *text = buf;
    if (len) *len = o;
    return 0;
}

int tokenizer_decode(const struct tokenizer *tk, const int32_t *ids, int64_t n, int skip_special, char **text,
                     size_t *len) {
    *text = NULL;
    if (tk->n_dops) return decode_with_chain(tk, ids, n, skip_special, text, len);
    size_t cap = (size_t)n * 4 + 16, o = 0;
    char *buf = xmalloc(cap);
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        const char *s;
        size_t l;
        if (id >= 0 && id < tk->vocab_size && tk->added_of_id[id] >= 0) {
            const struct added_token *a = &tk->added[tk->added_of_id[id]];
            if (skip_special && a->special) continue;
            s = tk->decoder_bytelevel ? a->raw : a->content;
            l = tk->decoder_bytelevel ? a->raw_len : a->len;
        } else if (id >= 0 && id < tk->bpe.n_ids && tk->bpe.toks[id].form_len != UINT32_MAX) {
            const struct bpe_tok *t = &tk->bpe.toks[id];
            s = tk->bpe.arena + (tk->decoder_bytelevel ? t->raw_off : t->form_off);
            l = tk->decoder_bytelevel ? t->raw_len : t->form_len;
        } else {
            free(buf);
            return err_set("decode: id %d at position %lld is not in the vocabulary (size %d)", id,
                           (long long)i, tk->vocab_size);
        }
        if (o + l + 1 > cap) {
            while (o + l + 1 > cap)
                cap *= 2;
            buf = xrealloc(buf, cap);
        }
        memcpy(buf + o, s, l);
        o += l;
    }
    buf[o] = 0;
    struct tok_text t;
    utf8_lossy(buf, o, &t);
    if (t.owned) {
        free(buf);
        buf = t.owned;
        o = t.len;
        free(t.start);
        free(t.end);
    }
    *text = buf;
    if (len) *len = o;
    return 0;
}

/* ---- encode ---- */

struct enc {
    const struct tokenizer *tk;
    struct tokenizer_buf *out;
    int flags;
    pcre2_match_data *md;
    int regex_error; /* first PCRE2 error code, 0 if none */
};

static void offsets_reserve(struct tokenizer_buf *b) {
    if (b->off_cap >= b->cap) return;
    b->off_cap = b->cap;
    b->starts = xrealloc(b->starts, (size_t)b->off_cap * sizeof(int64_t));
    b->ends = xrealloc(b->ends, (size_t)b->off_cap * sizeof(int64_t));
}

void tokenizer_buf_free(struct tokenizer_buf *b) {
    free(b->ids);
    free(b->starts);
    free(b->ends);
    memset(b, 0, sizeof *b);
}

static void emit_added(struct enc *e, const struct tok_text *t, size_t a, size_t b, int32_t id) {
    struct tokenizer_buf *o = e->out;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 256;
        o->ids = xrealloc(o->ids, (size_t)o->cap * sizeof(int32_t));
    }
    o->ids[o->n] = id;
    if (o->want_offsets) {
        offsets_reserve(o);
        tok_text_range(t, a, b, &o->starts[o->n], &o->ends[o->n]);
    }
    o->n++;
}

static void encode_word(struct enc *e, const struct tok_text *t, size_t a, size_t b) {
    struct tokenizer_buf *o = e->out;
    int64_t n0 = o->n;
    if (e->tk->bpe.plain) {
        int32_t *lens = NULL;
        bpe_encode_plain(&e->tk->bpe, t->s + a, b - a, &o->ids, &o->n, &o->cap, o->want_offsets ? &lens : NULL);
        if (!o->want_offsets) return;
        offsets_reserve(o);
        size_t pos = a;
        for (int64_t i = n0; i < o->n; i++) {
            tok_text_range(t, pos, pos + (size_t)lens[i - n0], &o->starts[i], &o->ends[i]);
            pos += (size_t)lens[i - n0];
        }
        free(lens);
        return;
    }
    bpe_encode_word(&e->tk->bpe, t->s + a, b - a, &o->ids, &o->n, &o->cap);
    if (!o->want_offsets) return;
    offsets_reserve(o);
    size_t pos = a;
    for (int64_t i = n0; i < o->n; i++) {
        size_t l = e->tk->bpe.toks[o->ids[i]].raw_len;
        tok_text_range(t, pos, pos + l, &o->starts[i], &o->ends[i]);
        pos += l;
    }
}

static void pretok_run(struct enc *e, const struct tok_text *t, size_t a, size_t b, int step);

/* HF's SplitDelimiterBehavior over the stream of spans (gaps and matches, in order) that one
 * regex makes of a piece: a span is a delimiter if it is a match (a gap with invert). Pieces
 * go on to the next step as soon as they are complete; pend is the piece not yet complete. */
struct splitter {
    struct enc *e;
    const struct tok_text *t;
    int step;
    enum split_behavior beh;
    size_t ps, pe;  /* pending piece, ps == pe when none */
    int pend_delim; /* the pending piece is a lone delimiter (MergedWithNext) */
    int prev_delim;
};

static void splitter_emit(struct splitter *sp, size_t s, size_t e) {
    if (e > s) pretok_run(sp->e, sp->t, s, e, sp->step + 1);
}

static void splitter_span(struct splitter *sp, size_t s, size_t e, int delim) {
    switch (sp->beh) {
    case SPLIT_ISOLATED: splitter_emit(sp, s, e); break;
    case SPLIT_REMOVED:
        if (!delim) splitter_emit(sp, s, e);
        break;
    case SPLIT_MERGED_PREV: /* a delimiter joins the piece before it, unless that is a delimiter */
    case SPLIT_CONTIGUOUS:  /* consecutive spans of the same kind make one piece */
        if (sp->pe > sp->ps &&
            (sp->beh == SPLIT_MERGED_PREV ? delim && !sp->prev_delim : delim == sp->prev_delim)) {
            sp->pe = e;
        } else {
            splitter_emit(sp, sp->ps, sp->pe);
            sp->ps = s, sp->pe = e;
        }
        break;
    case SPLIT_MERGED_NEXT: /* a delimiter joins the piece after it, unless that is a delimiter */
        if (delim) {
            if (sp->pend_delim) splitter_emit(sp, sp->ps, sp->pe);
            sp->ps = s, sp->pe = e, sp->pend_delim = 1;
        } else {
            splitter_emit(sp, sp->pend_delim ? sp->ps : s, e);
            sp->ps = sp->pe = 0, sp->pend_delim = 0;
        }
        break;
    }
    sp->prev_delim = delim;
}

/* Splits [a, b) of t at the matches of step's regex; each piece goes on to the next step. The
 * regex sees only this piece, as HF runs it on each split separately. */
static void split_regex(struct enc *e, const struct tok_text *t, size_t a, size_t b, int step) {
    const struct pretok_step *st = &e->tk->steps[step];
    if (!st->re) {
        pretok_run(e, t, a, b, step + 1);
        return;
    }
    const uint8_t *subj = (const uint8_t *)(t->view ? t->view : t->s) + a;
    size_t n = b - a, pos = 0, last = 0;
    if (st->behavior == SPLIT_ISOLATED) { /* the common case, streamed directly */
        while (pos <= n) {
            int rc = st->jit ? pcre2_jit_match(st->re, subj, n, pos, 0, e->md, NULL)
                             : pcre2_match(st->re, subj, n, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
            if (rc < 0) {
                if (rc != PCRE2_ERROR_NOMATCH && !e->regex_error) e->regex_error = rc;
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
            size_t ms = ov[0], me = ov[1];
            if (me == ms) { /* an empty match splits nothing */
                pos = ms + 1;
                while (pos < n && (subj[pos] & 0xC0) == 0x80)
                    pos++;
                continue;
            }
            if (ms > last) pretok_run(e, t, a + last, a + ms, step + 1);
            pretok_run(e, t, a + ms, a + me, step + 1);
            last = pos = me;
        }
        if (last < n) pretok_run(e, t, a + last, b, step + 1);
        return;
    }
    struct splitter sp = {e, t, step, st->behavior, 0, 0, 0, 0};
    while (pos <= n) {
        int rc = st->jit ? pcre2_jit_match(st->re, subj, n, pos, 0, e->md, NULL)
                         : pcre2_match(st->re, subj, n, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc < 0) {
            if (rc != PCRE2_ERROR_NOMATCH && !e->regex_error) e->regex_error = rc;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) {
            pos = ms + 1;
            while (pos < n && (subj[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (ms > last) splitter_span(&sp, a + last, a + ms, st->invert);
        splitter_span(&sp, a + ms, a + me, !st->invert);
        last = pos = me;
    }
    if (last < n) splitter_span(&sp, a + last, b, st->invert);
    splitter_emit(&sp, sp.ps, sp.pe);
}

/* out = prefix + t[a, b) with every `from` replaced by `to`, mapped back to t. */
static void text_edit(const struct tok_text *t, size_t a, size_t b, const char *prefix, size_t pl,
                      const char *from, size_t fl, const char *to, size_t tl, struct tok_text *out) {
    size_t cap = pl + (b - a) * (fl && tl > fl ? (tl + fl - 1) / fl : 1) + 1, o = 0;
    memset(out, 0, sizeof *out);
    out->owned = xmalloc(cap);
    out->start = xmalloc(cap * sizeof(int64_t));
    out->end = xmalloc(cap * sizeof(int64_t));
    for (size_t i = 0; i < pl; i++, o++)
        out->owned[o] = prefix[i], out->start[o] = out->end[o] = (int64_t)a;
    for (size_t i = a; i < b;) {
        if (fl && i + fl <= b && memcmp(t->s + i, from, fl) == 0) {
            for (size_t k = 0; k < tl; k++, o++)
                out->owned[o] = to[k], out->start[o] = (int64_t)i, out->end[o] = (int64_t)(i + fl);
            i += fl;
        } else {
            out->owned[o] = t->s[i], out->start[o] = (int64_t)i, out->end[o] = (int64_t)(i + 1);
            o++, i++;
        }
    }
    out->owned[o] = 0;
    out->s = out->owned;
    out->len = o;
    out->parent = t;
}

/* HF Metaspace: ' ' -> replacement, the replacement prepended (always, or only to the piece at
 * the start of the input), then optionally split before each replacement (MergedWithNext). */
static void metaspace_run(struct enc *e, const struct tok_text *t, size_t a, size_t b, int step) {
    const struct pretok_step *st = &e->tk->steps[step];
    int pre = 0;
    if (st->prepend_scheme != PREPEND_NEVER &&
        !(t->s[a] == ' ' || (b - a >= st->repl_len && memcmp(t->s + a, st->repl, st->repl_len) == 0))) {
        pre = 1;
        if (st->prepend_scheme == PREPEND_FIRST) {
            int64_t s0, e0;
            tok_text_range(t, a, b, &s0, &e0);
            pre = s0 == 0;
        }
    }
    struct tok_text tmp;
    text_edit(t, a, b, st->repl, pre ? st->repl_len : 0, " ", 1, st->repl, st->repl_len, &tmp);
    if (!st->msplit) {
        pretok_run(e, &tmp, 0, tmp.len, step + 1);
    } else {
        size_t last = 0;
        for (size_t i = 1; i + st->repl_len <= tmp.len; i++)
            if (memcmp(tmp.s + i, st->repl, st->repl_len) == 0) {
                pretok_run(e, &tmp, last, i, step + 1);
                last = i;
            }
        pretok_run(e, &tmp, last, tmp.len, step + 1);
    }
    tok_text_free(&tmp);
}

static void pretok_run(struct enc *e, const struct tok_text *t, size_t a, size_t b, int step) {
    if (a >= b) return;
    if (step == e->tk->n_steps) {
        encode_word(e, t, a, b);
        return;
    }
    const struct pretok_step *st = &e->tk->steps[step];
    if (st->kind == STEP_METASPACE) {
        metaspace_run(e, t, a, b, step);
        return;
    }
    if (st->kind == STEP_BYTELEVEL && st->add_prefix_space && t->s[a] != ' ') {
        /* HF ByteLevel add_prefix_space: " " before each piece not starting with one. */
        size_t n = b - a + 1;
        struct tok_text tmp = {0};
        tmp.owned = xmalloc(n + 1);
        tmp.owned[0] = ' ';
        memcpy(tmp.owned + 1, t->s + a, b - a);
        tmp.owned[n] = 0;
        tmp.s = tmp.owned;
        tmp.len = n;
        tmp.start = xmalloc(n * sizeof(int64_t));
        tmp.end = xmalloc(n * sizeof(int64_t));
        tmp.start[0] = tmp.end[0] = (int64_t)a;
        for (size_t i = 1; i < n; i++)
            tmp.start[i] = (int64_t)(a + i - 1), tmp.end[i] = (int64_t)(a + i);
        tmp.parent = t;
        if (t->view) {
            tmp.view = xmalloc(n + 1);
            tmp.view[0] = ' ';
            memcpy(tmp.view + 1, t->view + a, b - a);
            tmp.view[n] = 0;
        }
        split_regex(e, &tmp, 0, n, step);
        tok_text_free(&tmp);
        return;
    }
    split_regex(e, t, a, b, step);
}

/* Byte length of the White_Space character at s[i] (0 if none). */
static size_t ws_at(const char *s, size_t i, size_t n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
    if (k <= 0) return 0;
    int ws = (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
             (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
             c == 0x3000;
    return ws ? (size_t)k : 0;
}

static size_t char_start_before(const char *s, size_t i) {
    do
        i--;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80);
    return i;
}

static int word_char_at(const char *s, size_t i, size_t n) {
    utf8proc_int32_t c;
    if (utf8proc_iterate((const uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c) <= 0) return 0;
    if (c == '_') return 1;
    utf8proc_category_t cat = utf8proc_category(c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

static void encode_segment(struct enc *e, const struct tok_text *t, size_t a, size_t b);

/* Finds the added tokens of one kind (normalized or not) in [a, b) of t, leftmost-longest
 * (HF's aho-corasick LeftmostLongest); the text between them goes on. */
static void split_added(struct enc *e, const struct tok_text *t, size_t a, size_t b, int normalized) {
    const struct tokenizer *tk = e->tk;
    const char *s = t->s;
    size_t last = a, i = a;
    while (i < b) {
        int c = (uint8_t)s[i];
        int32_t lo = tk->first_lo[c], hi = tk->first_hi[c];
        if (lo == hi) {
            i++;
            continue;
        }
        int c2 = i + 1 < b ? (uint8_t)s[i + 1] : 256, l = lo, h = hi; /* the run of second byte c2 */
        while (l < h) {
            int32_t mid = l + (h - l) / 2;
            if (second_byte(&tk->added[tk->order[mid]]) < c2) l = mid + 1;
            else h = mid;
        }
        const struct added_token *found = NULL;
        for (int32_t k = l; k < hi && !found; k++) {
            if (second_byte(&tk->added[tk->order[k]]) != c2 && tk->added[tk->order[k]].len > 1) {
                while (k < hi && tk->added[tk->order[k]].len > 1) /* on to the one-byte tokens */
                    k++;
                if (k == hi) break;
            }
            const struct added_token *at = &tk->added[tk->order[k]];
            if (at->normalized != normalized || (at->special && (e->flags & TOKENIZER_SPLIT_SPECIAL)))
                continue;
            if (at->len > b - i || memcmp(s + i, at->content, at->len) != 0) continue;
            if (at->single_word && ((i > 0 && word_char_at(s, char_start_before(s, i), t->len)) ||
                                    (i + at->len < t->len && word_char_at(s, i + at->len, t->len))))
                continue;
            found = at;
        }
        if (!found) {
            i++;
            continue;
        }
        size_t ms = i, me = i + found->len, k;
        if (found->lstrip)
            while (ms > last) {
                size_t p = char_start_before(s, ms);
                if (!ws_at(s, p, b)) break;
                ms = p;
            }
        if (found->rstrip)
            while (me < b && (k = ws_at(s, me, b)))
                me += k;
        if (ms > last) {
            if (normalized)
                pretok_run(e, t, last, ms, 0);
            else
                encode_segment(e, t, last, ms);
        }
        emit_added(e, t, ms, me, found->id);
        last = i = me;
    }
    if (last < b) {
        if (normalized)
            pretok_run(e, t, last, b, 0);
        else
            encode_segment(e, t, last, b);
    }
}

/* Text between non-normalized added tokens: normalize, then normalized added tokens, then
 * pre-tokenize and BPE. */
static void encode_segment(struct enc *e, const struct tok_text *t, size_t a, size_t b) {
    const struct tokenizer *tk = e->tk;
    struct tok_text nt[1 + MAX_STEPS];
    tok_normalize(tk->norm, t->s + a, b - a, (int64_t)a, &nt[0]);
    nt[0].parent = t;
    int k = 0;
    for (int i = 0; i < tk->n_nops; i++) { /* Prepend (on non-empty text), Replace */
        const struct norm_op *op = &tk->nops[i];
        if (op->kind == NORM_PREPEND && nt[k].len == 0) continue;
        if (op->kind == NORM_PREPEND)
            text_edit(&nt[k], 0, nt[k].len, op->a, op->al, NULL, 0, NULL, 0, &nt[k + 1]);
        else
            text_edit(&nt[k], 0, nt[k].len, NULL, 0, op->a, op->al, op->b, op->bl, &nt[k + 1]);
        k++;
    }
    for (int i = 0; i < tk->n_steps; i++)
        if (tk->steps[i].re) {
            nt[k].view = pretok_regex_view(nt[k].s, nt[k].len);
            break;
        }
    if (tk->has_normalized_added)
        split_added(e, &nt[k], 0, nt[k].len, 1);
    else
        pretok_run(e, &nt[k], 0, nt[k].len, 0);
    for (; k >= 0; k--)
        tok_text_free(&nt[k]);
}

int tokenizer_encode_append(const struct tokenizer *tk, const char *text, size_t len, int flags,
                            struct tokenizer_buf *out) {
    struct tok_text san;
    utf8_lossy(text, len, &san);
    struct enc e = {tk, out, flags, pcre2_match_data_create(1, NULL), 0};
    if (tk->n_added)
        split_added(&e, &san, 0, san.len, 0);
    else
        encode_segment(&e, &san, 0, san.len);
    pcre2_match_data_free(e.md);
    tok_text_free(&san);
    if (e.regex_error) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(e.regex_error, msg, sizeof msg);
        return err_set("pre-tokenizer regex failed on a %zu-byte text: %s", len, (const char *)msg);
    }
    return 0;
}

int tokenizer_encode(const struct tokenizer *tk, const char *text, size_t len, int32_t **ids,
                     int64_t *n_ids) {
    struct tokenizer_buf b = {0};
    int rc = tokenizer_encode_append(tk, text, len, 0, &b);
    *ids = b.ids ? b.ids : xmalloc(sizeof(int32_t));
    *n_ids = b.n;
    return rc;
}

int tokenizer_encode_offsets(const struct tokenizer *tk, const char *text, size_t len, int32_t **ids,
                             int64_t **offsets, int64_t *n_ids) {
    struct tokenizer_buf b = {0};
    b.want_offsets = 1;
    int rc = tokenizer_encode_append(tk, text, len, 0, &b);
    *offsets = xmalloc((size_t)(b.n ? b.n : 1) * 2 * sizeof(int64_t));
    for (int64_t i = 0; i < b.n; i++)
        (*offsets)[2 * i] = b.starts[i], (*offsets)[2 * i + 1] = b.ends[i];
    *ids = b.ids ? b.ids : xmalloc(sizeof(int32_t));
    *n_ids = b.n;
    free(b.starts);
    free(b.ends);
    return rc;
}
