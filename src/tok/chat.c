/* chat: chat-template loading, rendering (transformers' render call:
 * render(messages, tools, documents=None, add_generation_prompt, **special_tokens, **kwargs))
 * and the spans of messages, derived from the template itself: {% generation %} blocks, else
 * renderings of the conversation's prefixes (chat_render_select in chat.h; docs/data.md).
 * Fixed markers (chat_template_set_markers) use the cursor walk of the fixture README. */
#include "tok/chat.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/jinja.h"
#include "tok/jinja_value.h"
#include "tok/tokenizer.h"

enum chat_kind { CHAT_JINJA, CHAT_ALPACA, CHAT_ALPACA_WITH_INPUT, CHAT_ALPACA_NO_INPUT };

struct chat_template {
    enum chat_kind kind;
    struct jinja_template *jt;
    char *name;
    char *header, *end; /* custom span markers (chat_template_set_markers), else NULL */
    const char *family;
    cJSON *specials; /* object: special-token variables */
    char **stok;     /* special-token texts: end-of-turn candidates, header boundaries */
    int n_stok, cap_stok;
};

static const char CHATML_SRC[] =
    "{%- for message in messages %}\n"
    "    {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n";

/* Stanford Alpaca train.py PROMPT_DICT (same strings in MindSpore's AlpacaInstructDataHandler). */
static const char ALPACA_INPUT_A[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n";
static const char ALPACA_INPUT_B[] = "\n\n### Input:\n";
static const char ALPACA_NO_INPUT_A[] = "Below is an instruction that describes a task. Write a response "
                                        "that appropriately completes the request.\n\n"
                                        "### Instruction:\n";
static const char ALPACA_TAIL[] = "\n\n### Response:";

static struct chat_template *tmpl_new(enum chat_kind kind, const char *name) {
    struct chat_template *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    t->name = xstrdup(name ? name : "<template>");
    t->specials = cJSON_CreateObject();
    t->family = "unknown";
    return t;
}

static void set_markers(struct chat_template *t, const char *header, const char *end, const char *family) {
    free(t->header);
    free(t->end);
    t->header = header ? xstrdup(header) : NULL;
    t->end = end ? xstrdup(end) : NULL;
    t->family = family;
}

void chat_template_set_markers(struct chat_template *t, const char *header, const char *end) {
    set_markers(t, header, end, header && end ? "custom" : t->jt && jinja_template_has_generation(t->jt) ? "generation" : "prefix");
}

void chat_template_add_special_token(struct chat_template *t, const char *text) {
    if (!text || !text[0]) return;
    for (int i = 0; i < t->n_stok; i++)
        if (!strcmp(t->stok[i], text)) return;
    if (t->n_stok == t->cap_stok) {
        t->cap_stok = t->cap_stok ? 2 * t->cap_stok : 16;
        t->stok = xrealloc(t->stok, (size_t)t->cap_stok * sizeof *t->stok);
    }
    t->stok[t->n_stok++] = xstrdup(text);
}

void chat_template_use_tokenizer(struct chat_template *t, const struct tokenizer *tk) {
    int32_t n = tokenizer_vocab_size(tk);
    for (int32_t id = 0; id < n; id++)
        if (tokenizer_is_special(tk, id)) chat_template_add_special_token(t, tokenizer_id_to_token(tk, id));
}

void chat_template_set_special(struct chat_template *t, const char *name, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(t->specials, name);
    if (value) cJSON_AddStringToObject(t->specials, name, value);
    chat_template_add_special_token(t, value);
}

const char *chat_template_family(const struct chat_template *t) { return t->family; }

int chat_template_parse(struct chat_template **out, const char *source, const char *name_for_errors) {
    *out = NULL;
    struct jinja_template *jt =
        jinja_template_parse(source, name_for_errors ? name_for_errors : "<template>");
    if (!jt) return -1;
    struct chat_template *t = tmpl_new(CHAT_JINJA, name_for_errors);
    t->jt = jt;
    t->family = jinja_template_has_generation(jt) ? "generation" : "prefix";
    *out = t;
    return 0;
}

int chat_template_builtin(struct chat_template **out, const char *name) {
    *out = NULL;
    if (!strcmp(name, "chatml")) {
        if (chat_template_parse(out, CHATML_SRC, "chatml")) return -1;
        chat_template_set_special(*out, "eos_token", "<|im_end|>");
        return 0;
    }
    enum chat_kind k;
    if (!strcmp(name, "alpaca"))
        k = CHAT_ALPACA;
    else if (!strcmp(name, "alpaca_with_input"))
        k = CHAT_ALPACA_WITH_INPUT;
    else if (!strcmp(name, "alpaca_no_input"))
        k = CHAT_ALPACA_NO_INPUT;
    else
        return err_set("unknown built-in chat template '%s' (expected chatml, alpaca, alpaca_with_input or "
                       "alpaca_no_input)",
                       name);
    struct chat_template *t = tmpl_new(k, name);
    t->family = "alpaca";
    *out = t;
    return 0;
}

void chat_template_free(struct chat_template *t) {
    if (!t) return;
    jinja_template_free(t->jt);
    free(t->name);
    free(t->header);
    free(t->end);
    cJSON_Delete(t->specials);
    for (int i = 0; i < t->n_stok; i++)
        free(t->stok[i]);
    free(t->stok);
    free(t);
}

/* A special token in tokenizer_config.json: a string or an AddedToken {"content": ...}. */
static const char *token_text(const cJSON *j) {
    if (cJSON_IsString(j)) return j->valuestring;
    if (cJSON_IsObject(j)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

int chat_template_load(struct chat_template **out, const char *path) {
    *out = NULL;
    char *cfg_path = dir_exists(path) ? path_join(path, "tokenizer_config.json") : xstrdup(path);
    char *dir = xstrdup(cfg_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    char *jinja_path = path_join(dir, "chat_template.jinja");
    char *text = file_read_all(cfg_path, NULL);
    cJSON *cfg = NULL;
    char *src = NULL;
    int rc = -1;
    if (!text) goto done;
    cfg = cJSON_Parse(text);
    if (!cfg || !cJSON_IsObject(cfg)) {
        err_set("%s: not a JSON object (parse error near byte %ld)", cfg_path,
                cfg ? 0L : (long)(cJSON_GetErrorPtr() - text));
        goto done;
    }
    if (file_exists(jinja_path)) {
        src = file_read_all(jinja_path, NULL);
        if (!src) goto done;
    } else {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct))
            src = xstrdup(ct->valuestring);
        else if (cJSON_IsArray(ct)) {
            const cJSON *first = NULL, *it;
            cJSON_ArrayForEach(it, ct) {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name"),
                            *tp = cJSON_GetObjectItemCaseSensitive(it, "template");
                if (!cJSON_IsString(tp)) continue;
                if (!first) first = tp;
                if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default")) src = xstrdup(tp->valuestring);
            }
            if (!src) {
                err_set("%s: chat_template is a list without a template named \"default\"", cfg_path);
                goto done;
            }
        } else {
            err_set("%s: no chat_template (expected a string or a list of {name, template}; found %s); use a "
                    "built-in template (chatml, alpaca)",
                    cfg_path, ct ? "another JSON type" : "no such key");
            goto done;
        }
    }
    if (chat_template_parse(out, src, cfg_path)) goto done;
    static const char *names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                  "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = token_text(cJSON_GetObjectItemCaseSensitive(cfg, names[i]));
        if (v) chat_template_set_special(*out, names[i], v);
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    if (cJSON_IsArray(add) && cJSON_GetArraySize(add) > 0) {
        cJSON *l = cJSON_CreateArray(), *it;
        cJSON_ArrayForEach(it, add) {
            const char *v = token_text(it);
            if (v) cJSON_AddItemToArray(l, cJSON_CreateString(v));
        }
        cJSON_AddItemToObject((*out)->specials, "additional_special_tokens", l);
        cJSON_ArrayForEach(it, l) chat_template_add_special_token(*out, it->valuestring);
    }
    const cJSON *atd = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder"), *tok;
    cJSON_ArrayForEach(tok, atd) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tok, "special")))
            chat_template_add_special_token(*out, token_text(tok));
    }
    rc = 0;
done:
    cJSON_Delete(cfg);
    free(text);
    free(src);
    free(cfg_path);
    free(dir);
    free(jinja_path);
    return rc;
}

/* ---------- spans ---------- */

static void strip_span(const char *s, size_t n, size_t *b, size_t *e) {
    size_t i = 0, j = n;
    while (i < j) {
        int32_t cp;
        int k = utf8_decode_one(s + i, j - i, &cp);
        if (!unicode_isspace(cp)) break;
        i += (size_t)k;
    }
    while (j > i) {
        size_t st = j - 1;
        while (st > i && ((unsigned char)s[st] & 0xC0) == 0x80)
            st--;
        int32_t cp;
        utf8_decode_one(s + st, j - st, &cp);
        if (!unicode_isspace(cp)) break;
        j = st;
    }
    *b = i;
    *e = j;
}

static const char *find_from(const char *text, size_t len, size_t from, const char *needle, size_t nlen) {
    if (from > len) return NULL;
    return memmem(text + from, len - from, needle, nlen);
}

/* Custom markers (chat_template_set_markers): the cursor walk of the fixture README. */
static int find_spans_markers(const struct chat_template *t, const cJSON *messages, const char *text, size_t len,
                              struct chat_span **spans, int *n_spans) {
    size_t hl = strlen(t->header), el = strlen(t->end), cursor = 0;
    int n = 0, cap = 0;
    struct chat_span *sp = NULL;
    int idx = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, messages) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"),
                    *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *cs = cJSON_IsString(content) ? content->valuestring : "";
        size_t b, e;
        if (!(cJSON_IsString(role) && !strcmp(role->valuestring, "assistant"))) {
            strip_span(cs, strlen(cs), &b, &e);
            if (e > b) {
                const char *hit = find_from(text, len, cursor, cs + b, e - b);
                if (hit) cursor = (size_t)(hit - text) + (e - b);
            }
            idx++;
            continue;
        }
        const char *h = find_from(text, len, cursor, t->header, hl);
        if (!h) {
            free(sp);
            return err_set(
                "template %s: message %d (assistant): no '%s' header after byte %zu of the rendering",
                t->name, idx, t->header, cursor);
        }
        size_t start = (size_t)(h - text) + hl, q = start;
        const char *vis = cs;
        for (const char *p = cs; (p = strstr(p, "</think>")); p += 8)
            vis = p + 8;
        strip_span(vis, strlen(vis), &b, &e);
        if (e > b) {
            const char *hit = find_from(text, len, start, vis + b, e - b);
            if (hit) q = (size_t)(hit - text) + (e - b);
        }
        const char *end = find_from(text, len, q, t->end, el);
        if (!end) {
            free(sp);
            return err_set("template %s: message %d (assistant): no end-of-turn '%s' after its content",
                           t->name, idx, t->end);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            sp = xrealloc(sp, (size_t)cap * sizeof *sp);
        }
        sp[n].start = start;
        sp[n].eot = (size_t)(end - text);
        sp[n].end = (size_t)(end - text) + el;
        sp[n].message = idx;
        cursor = sp[n].end;
        n++;
        idx++;
    }
    *spans = sp;
    *n_spans = n;
    return 0;
}

/* ---------- spans from the template itself ---------- */

/* The conversation's rendering and, on demand, the renderings of its prefixes. */
struct prefixes {
    const struct chat_template *t;
    const cJSON *messages, *tools, *extra;
    const char *text; /* the whole rendering */
    size_t len;
    int n;        /* messages */
    char **r;     /* r[k]: messages[0, k) without generation prompt; NULL until rendered */
    size_t *rlen;
    signed char *rst; /* 0 not yet, 1 rendered, -1 failed (err_msg kept in rerr[k]) */
    char **rerr;
    int agp; /* add_generation_prompt of the whole rendering */
};

static int render_vars(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                       int add_generation_prompt, const cJSON *extra_vars, char **out, size_t *len, size_t **gen,
                       int *n_gen);

/* Renders messages[0, k) (agp 0/1) into *out. */
static int render_first(const struct prefixes *p, int k, int agp, char **out, size_t *len) {
    cJSON *arr = cJSON_CreateArray();
    const cJSON *m = p->messages ? p->messages->child : NULL;
    for (int i = 0; i < k && m; i++, m = m->next)
        cJSON_AddItemReferenceToArray(arr, (cJSON *)m);
    int rc = render_vars(p->t, arr, p->tools, agp, p->extra, out, len, NULL, NULL);
    cJSON_Delete(arr);
    return rc;
}

/* r[k], rendered once; NULL when the template raised for that prefix. */
static const char *prefix_text(struct prefixes *p, int k, size_t *len) {
    if (!p->rst[k]) {
        if (render_first(p, k, 0, &p->r[k], &p->rlen[k]) == 0)
            p->rst[k] = 1;
        else {
            p->rst[k] = -1;
            p->rerr[k] = xstrdup(err_msg());
        }
    }
    *len = p->rlen[k];
    return p->rst[k] > 0 ? p->r[k] : NULL;
}

static int is_prefix(const char *a, size_t alen, const char *b, size_t blen) {
    return alen <= blen && memcmp(a, b, alen) == 0;
}

/* The special-token occurrence ending last in text[from, to) whose end is <= to: its end, or 0. */
static size_t header_cut(const struct chat_template *t, const char *text, size_t from, size_t to) {
    size_t best = 0;
    for (size_t q = from; q < to; q++)
        if (text[q] == '\n') best = q + 1;
    for (int k = 0; k < t->n_stok; k++) {
        size_t sl = strlen(t->stok[k]);
        const char *h = text + from;
        while ((h = find_from(text, to, (size_t)(h - text), t->stok[k], sl))) {
            size_t e = (size_t)(h - text) + sl;
            if (e > best) best = e;
            h++;
        }
    }
    return best;
}

/* Earliest occurrence of the eos token in text[from, to), else of any special token: [*a, *b). */
static int find_eot(const struct chat_template *t, const char *text, size_t from, size_t to, size_t *a, size_t *b) {
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(t->specials, "eos_token");
    if (cJSON_IsString(eos) && eos->valuestring[0]) {
        size_t el = strlen(eos->valuestring);
        const char *h = find_from(text, to, from, eos->valuestring, el);
        if (h) {
            *a = (size_t)(h - text);
            *b = *a + el;
            return 1;
        }
    }
    int found = 0;
    for (int k = 0; k < t->n_stok; k++) {
        size_t sl = strlen(t->stok[k]);
        const char *h = find_from(text, to, from, t->stok[k], sl);
        if (h && (!found || (size_t)(h - text) < *a || ((size_t)(h - text) == *a && *a + sl > *b))) {
            *a = (size_t)(h - text);
            *b = *a + sl;
            found = 1;
        }
    }
    return found;
}

/* The text of a message's content to look for: the string, or the last text part of a list. */
static const char *content_text(const cJSON *m) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(c)) return c->valuestring;
    const char *last = NULL;
    const cJSON *part;
    if (cJSON_IsArray(c)) cJSON_ArrayForEach(part, c) {
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
            if (cJSON_IsString(tx)) last = tx->valuestring;
        }
    return last;
}

/* Finds the message's content (stripped) in text[from, to); else its longest suffix that starts a
 * line or follows a '>' and is found there (a template may write only the end of a message, e.g.
 * the answer after its reasoning's closing tag). */
static int find_content(const char *cs, const char *text, size_t from, size_t to, size_t *a, size_t *b) {
    if (!cs) return 0;
    size_t n = strlen(cs), i, j;
    strip_span(cs, n, &i, &j);
    for (size_t k = i; k < j; k++) {
        if (k > i && cs[k - 1] != '\n' && cs[k - 1] != '>') continue;
        const char *h = find_from(text, to, from, cs + k, j - k);
        if (h) {
            *a = (size_t)(h - text);
            *b = *a + (j - k);
            return 1;
        }
    }
    return 0;
}

/* Where the template writes message i's content in the whole rendering: the part that changes
 * when the content is replaced by a sentinel (common start and end of the two renderings left
 * out). 1 with [*a, *b), 0 when it cannot tell (no string content, the render fails). */
static int content_by_sentinel(const struct prefixes *p, int i, size_t *a, size_t *b) {
    const cJSON *m = cJSON_GetArrayItem(p->messages, i);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "content"))) return 0;
    cJSON *arr = cJSON_CreateArray(), *it;
    int k = 0;
    cJSON_ArrayForEach(it, p->messages) {
        if (k++ == i) {
            cJSON *c = cJSON_Duplicate(it, 0), *f;
            cJSON_ArrayForEach(f, it) cJSON_AddItemReferenceToObject(c, f->string, f);
            cJSON_ReplaceItemInObjectCaseSensitive(c, "content", cJSON_CreateString("\x01" "csft-sentinel" "\x01"));
            cJSON_AddItemToArray(arr, c);
        } else
            cJSON_AddItemReferenceToArray(arr, it);
    }
    char *o = NULL;
    size_t ol = 0;
    int rc = render_vars(p->t, arr, p->tools, p->agp, p->extra, &o, &ol, NULL, NULL);
    cJSON_Delete(arr);
    if (rc) {
        err_clear();
        return 0;
    }
    size_t pre = 0, suf = 0;
    while (pre < ol && pre < p->len && o[pre] == p->text[pre])
        pre++;
    while (suf < ol - pre && suf < p->len - pre && o[ol - 1 - suf] == p->text[p->len - 1 - suf])
        suf++;
    int found = memmem(o + pre, ol - pre - suf, "csft-sentinel", 13) != NULL; /* the content is written once */
    free(o);
    if (!found) return 0;
    while (pre > 0 && ((unsigned char)p->text[pre] & 0xC0) == 0x80) /* whole characters */
        pre--;
    size_t end = p->len - suf;
    while (end < p->len && ((unsigned char)p->text[end] & 0xC0) == 0x80)
        end++;
    *a = pre;
    *b = end;
    return 1;
}

/* Span of message i: the text it adds to the rendering (between the rendering of the messages
 * before it and of the messages up to it), less its header: for assistant messages what the
 * generation prompt adds, for others what precedes the content; ending after the end-of-turn
 * token that follows the content (the eos token, else the first special token). */
static int prefix_span(struct prefixes *p, int i, const cJSON *m, struct chat_span *out) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    const char *rs = cJSON_IsString(role) ? role->valuestring : "?";
    int assistant = !strcmp(rs, "assistant");
    size_t rl, s;
    const char *r = prefix_text(p, i, &rl);
    if (!r) {
        if (i > 0)
            return err_set("template %s: message %d (%s): rendering the messages before it failed (%s), so its "
                           "span cannot be derived",
                           p->t->name, i, rs, p->rerr[i]);
        r = "", rl = 0; /* templates that index messages[0] cannot render an empty list */
    }
    if (!is_prefix(r, rl, p->text, p->len))
        return err_set("template %s: message %d (%s): the template rewrites earlier turns (the rendering of "
                       "messages 0..%d is not the start of the whole conversation's rendering, e.g. it drops "
                       "past reasoning), so this message's span cannot be derived; loss_on: last_turn trains "
                       "only the last assistant turn",
                       p->t->name, i, rs, i - 1);
    s = rl;
    if (assistant) {
        char *g = NULL;
        size_t gl = 0;
        if (render_first(p, i, 1, &g, &gl) == 0 && is_prefix(r, rl, g, gl) && gl > rl) {
            if (is_prefix(g, gl, p->text, p->len))
                s = gl;
            else { /* the generation prompt differs from this turn's header: keep their common start */
                size_t l = rl;
                while (l < gl && l < p->len && g[l] == p->text[l])
                    l++;
                size_t cut = header_cut(p->t, p->text, rl, l);
                if (cut) s = cut;
            }
        }
        free(g);
    }
    size_t bound = p->len;
    for (int k = i + 1; k <= p->n; k++) {
        size_t kl;
        const char *rk = prefix_text(p, k, &kl);
        if (rk && kl >= s && is_prefix(rk, kl, p->text, p->len)) {
            bound = kl;
            break;
        }
    }
    size_t ca, cb;
    if ((content_by_sentinel(p, i, &ca, &cb) && ca >= s && cb <= bound) ||
        find_content(content_text(m), p->text, s, bound, &ca, &cb)) {
        if (!assistant) s = ca;
    } else
        cb = s;
    size_t ea = 0, eb = 0;
    if (!find_eot(p->t, p->text, cb, bound, &ea, &eb)) {
        eb = bound;
        size_t a, b;
        strip_span(p->text + cb, bound - cb, &a, &b);
        eb = b > a ? cb + b : cb;
        ea = eb;
    }
    out->start = s;
    out->eot = ea;
    out->end = eb;
    out->message = i;
    return 0;
}

static int is_assistant(const cJSON *m) {
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(role) && !strcmp(role->valuestring, "assistant");
}

/* The start of a special token ending a generation block (its end-of-turn), else end. */
static size_t trailing_eot(const struct chat_template *t, const char *text, size_t start, size_t end) {
    size_t best = end;
    for (int k = 0; k < t->n_stok; k++) {
        size_t sl = strlen(t->stok[k]);
        if (sl <= end - start && !memcmp(text + end - sl, t->stok[k], sl) && end - sl < best) best = end - sl;
    }
    return best;
}

static int derive_spans(const struct chat_template *t, const cJSON *messages, const cJSON *tools, const cJSON *extra,
                        int agp, const unsigned char *want, const char *text, size_t len, int use_gen, const size_t *gen,
                        int n_gen, struct chat_span **spans, int *n_spans) {
    int n = cJSON_GetArraySize(messages), n_sp = 0, rc = 0;
    struct chat_span *sp = xcalloc((size_t)(n ? n : 1), sizeof *sp);
    const cJSON *m;
    int i = 0;
    if (use_gen) { /* {% generation %}: the k-th block is the k-th assistant message */
        int n_asst = 0;
        cJSON_ArrayForEach(m, messages) n_asst += is_assistant(m);
        int ties = n_asst == n_gen, k = 0;
        if (!ties && want)
            cJSON_ArrayForEach(m, messages) {
                if (want[i] != is_assistant(m)) {
                    free(sp);
                    return err_set("template %s: %d {%% generation %%} block(s) for %d assistant message(s): the "
                                   "blocks cannot be tied to messages, so per-message training choices cannot "
                                   "apply",
                                   t->name, n_gen, n_asst);
                }
                i++;
            }
        i = 0;
        if (!ties) {
            sp = xrealloc(sp, (size_t)(n_gen ? n_gen : 1) * sizeof *sp);
            for (k = 0; k < n_gen; k++)
                sp[n_sp++] = (struct chat_span){gen[2 * k], gen[2 * k + 1], trailing_eot(t, text, gen[2 * k], gen[2 * k + 1]), -1};
        } else
            cJSON_ArrayForEach(m, messages) {
                int a = is_assistant(m);
                if (a && (want ? want[i] : 1))
                    sp[n_sp++] = (struct chat_span){gen[2 * k], gen[2 * k + 1],
                                                    trailing_eot(t, text, gen[2 * k], gen[2 * k + 1]), i};
                else if (want && want[i] && !a) {
                    free(sp);
                    return err_set("template %s: message %d is not an assistant message; a template with "
                                   "{%% generation %%} blocks marks only assistant turns",
                                   t->name, i);
                }
                k += a;
                i++;
            }
        *spans = sp;
        *n_spans = n_sp;
        return 0;
    }
    struct prefixes p = {t, messages, tools, extra, text, len, n, NULL, NULL, NULL, NULL, agp};
    p.r = xcalloc((size_t)n + 1, sizeof *p.r);
    p.rlen = xcalloc((size_t)n + 1, sizeof *p.rlen);
    p.rst = xcalloc((size_t)n + 1, 1);
    p.rerr = xcalloc((size_t)n + 1, sizeof *p.rerr);
    cJSON_ArrayForEach(m, messages) {
        if (want ? want[i] : is_assistant(m)) {
            if (prefix_span(&p, i, m, &sp[n_sp])) {
                rc = -1;
                break;
            }
            n_sp++;
        }
        i++;
    }
    for (int k = 0; k <= n; k++) {
        free(p.r[k]);
        free(p.rerr[k]);
    }
    free(p.r), free(p.rlen), free(p.rst), free(p.rerr);
    if (rc) {
        free(sp);
        return -1;
    }
    *spans = sp;
    *n_spans = n_sp;
    return 0;
}

/* ---------- render ---------- */

static const char *json_str_or(const cJSON *obj, const char *key, int *present) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *present = v && !cJSON_IsNull(v);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int render_alpaca(const struct chat_template *t, const cJSON *messages, int add_generation_prompt,
                         const cJSON *extra, char **out, struct chat_span **spans, int *n_spans) {
    int has_ins, has_inp, has_out;
    const char *ins = json_str_or(extra, "instruction", &has_ins),
               *inp = json_str_or(extra, "input", &has_inp), *outp = json_str_or(extra, "output", &has_out);
    if (!has_ins) {
        const cJSON *m;
        cJSON_ArrayForEach(m, messages) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"),
                        *c = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsString(role) || !cJSON_IsString(c)) continue;
            if (!ins && !strcmp(role->valuestring, "user"))
                ins = c->valuestring;
            else if (!outp && !strcmp(role->valuestring, "assistant"))
                outp = c->valuestring;
        }
        if (outp) has_out = 1;
    }
    if (!ins)
        return err_set("template %s: no instruction (give extra var \"instruction\" or a user message)",
                       t->name);
    if ((has_ins && !ins) || (has_out && !outp && extra))
        return err_set("template %s: instruction and output must be strings", t->name);
    int with_input = t->kind == CHAT_ALPACA_WITH_INPUT || (t->kind == CHAT_ALPACA && inp && inp[0]);
    if (with_input && !inp && has_inp) return err_set("template %s: input must be a string", t->name);
    char *prompt =
        with_input ? xasprintf("%s%s%s%s%s", ALPACA_INPUT_A, ins, ALPACA_INPUT_B, inp ? inp : "", ALPACA_TAIL)
                   : xasprintf("%s%s%s", ALPACA_NO_INPUT_A, ins, ALPACA_TAIL);
    size_t pl = strlen(prompt);
    int emit_out = outp && !add_generation_prompt;
    *out = emit_out ? xasprintf("%s%s", prompt, outp) : xstrdup(prompt);
    free(prompt);
    if (spans) {
        *spans = NULL;
        *n_spans = 0;
        if (emit_out) {
            *spans = xmalloc(sizeof **spans);
            (*spans)[0].start = pl;
            (*spans)[0].end = (*spans)[0].eot = pl + strlen(outp);
            (*spans)[0].message = -1;
            *n_spans = 1;
        }
    }
    return 0;
}

static int render_vars(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                       int add_generation_prompt, const cJSON *extra_vars, char **out, size_t *len, size_t **gen,
                       int *n_gen) {
    cJSON *agp = cJSON_CreateBool(add_generation_prompt);
    cJSON *empty = cJSON_CreateArray();
    int n = 4 + cJSON_GetArraySize(t->specials) + (extra_vars ? cJSON_GetArraySize(extra_vars) : 0);
    struct jinja_var *vars = xmalloc((size_t)n * sizeof *vars);
    int k = 0;
    vars[k++] = (struct jinja_var){"messages", messages ? messages : empty};
    vars[k++] = (struct jinja_var){"tools", tools};
    vars[k++] = (struct jinja_var){"documents", NULL};
    vars[k++] = (struct jinja_var){"add_generation_prompt", agp};
    const cJSON *it;
    cJSON_ArrayForEach(it, t->specials) vars[k++] = (struct jinja_var){it->string, it};
    if (extra_vars) cJSON_ArrayForEach(it, extra_vars) vars[k++] = (struct jinja_var){it->string, it};
    int rc = jinja_render_marked(t->jt, vars, k, out, len, gen, n_gen);
    free(vars);
    cJSON_Delete(agp);
    cJSON_Delete(empty);
    return rc;
}

int chat_render(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                int add_generation_prompt, const cJSON *extra_vars, char **out, struct chat_span **spans,
                int *n_spans) {
    return chat_render_select(t, messages, tools, add_generation_prompt, extra_vars, NULL, out, spans, n_spans);
}

int chat_render_select(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                       int add_generation_prompt, const cJSON *extra_vars, const unsigned char *want, char **out,
                       struct chat_span **spans, int *n_spans) {
    *out = NULL;
    if (spans) {
        *spans = NULL;
        *n_spans = 0;
    }
    if (messages && !cJSON_IsArray(messages))
        return err_set("template %s: messages must be a JSON array", t->name);
    if (extra_vars && !cJSON_IsObject(extra_vars))
        return err_set("template %s: extra variables must be a JSON object", t->name);
    if (t->kind != CHAT_JINJA)
        return render_alpaca(t, messages, add_generation_prompt, extra_vars, out, spans, n_spans);
    size_t len, *gen = NULL;
    int n_gen = 0, with_gen = spans && messages && !t->header && jinja_template_has_generation(t->jt);
    int rc = render_vars(t, messages, tools, add_generation_prompt, extra_vars, out, &len, with_gen ? &gen : NULL,
                         &n_gen);
    if (rc == 0 && spans && messages) {
        if (t->header)
            rc = find_spans_markers(t, messages, *out, len, spans, n_spans);
        else
            rc = derive_spans(t, messages, tools, extra_vars, add_generation_prompt, want, *out, len, with_gen, gen, n_gen,
                              spans, n_spans);
    }
    free(gen);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

char *chat_template_turn_end(const struct chat_template *t) {
    if (t->kind != CHAT_JINJA) return NULL;
    cJSON *m = cJSON_Parse("[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello\"}]");
    char *out = NULL, *r = NULL;
    struct chat_span *sp = NULL;
    int n = 0;
    if (chat_render(t, m, NULL, 0, NULL, &out, &sp, &n) == 0 && n == 1 && sp[0].eot < sp[0].end)
        r = xasprintf("%.*s", (int)(sp[0].end - sp[0].eot), out + sp[0].eot);
    else
        err_clear();
    free(out), free(sp);
    cJSON_Delete(m);
    return r;
}
