/* chat: chat-template loading, rendering (transformers' render call:
 * render(messages, tools, documents=None, add_generation_prompt, **special_tokens, **kwargs))
 * and assistant spans by the cursor walk of the fixture README: past each non-assistant
 * content, then header -> visible content (after the last </think>, stripped) -> end token. */
#include "tok/chat.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/jinja.h"
#include "tok/jinja_value.h"

enum chat_kind { CHAT_JINJA, CHAT_ALPACA, CHAT_ALPACA_WITH_INPUT, CHAT_ALPACA_NO_INPUT };

struct chat_template {
    enum chat_kind kind;
    struct jinja_template *jt;
    char *name;
    char *header, *end; /* span markers, NULL when unknown */
    const char *family;
    cJSON *specials; /* object: special-token variables */
    char *source;    /* the Jinja source, NULL for the Alpaca built-ins */
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
    set_markers(t, header, end, header && end ? "custom" : "unknown");
}

void chat_template_set_special(struct chat_template *t, const char *name, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(t->specials, name);
    if (value) cJSON_AddStringToObject(t->specials, name, value);
}

const char *chat_template_family(const struct chat_template *t) { return t->family; }

const char *chat_template_source(const struct chat_template *t) { return t->source; }

int chat_template_parse(struct chat_template **out, const char *source, const char *name_for_errors) {
    *out = NULL;
    struct jinja_template *jt =
        jinja_template_parse(source, name_for_errors ? name_for_errors : "<template>");
    if (!jt) return -1;
    struct chat_template *t = tmpl_new(CHAT_JINJA, name_for_errors);
    t->jt = jt;
    t->source = xstrdup(source);
    if (strstr(source, "<|im_start|>"))
        set_markers(t, "<|im_start|>assistant\n", "<|im_end|>", "chatml");
    else if (strstr(source, "<|start_header_id|>"))
        set_markers(t, "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", "llama3");
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
    free(t->source);
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

/* The special tokens of a tokenizer_config.json object as template variables. */
static void apply_specials(struct chat_template *t, const cJSON *cfg) {
    static const char *names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                  "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = token_text(cJSON_GetObjectItemCaseSensitive(cfg, names[i]));
        if (v) chat_template_set_special(t, names[i], v);
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(cfg, "additional_special_tokens");
    if (cJSON_IsArray(add) && cJSON_GetArraySize(add) > 0) {
        cJSON *l = cJSON_CreateArray(), *it;
        cJSON_ArrayForEach(it, add) {
            const char *v = token_text(it);
            if (v) cJSON_AddItemToArray(l, cJSON_CreateString(v));
        }
        cJSON_DeleteItemFromObject(t->specials, "additional_special_tokens");
        cJSON_AddItemToObject(t->specials, "additional_special_tokens", l);
    }
}

int chat_template_load_specials(struct chat_template *t, const char *tokenizer_config_json_path) {
    char *text = file_read_all(tokenizer_config_json_path, NULL);
    if (!text) return -1;
    cJSON *cfg = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return err_set("%s: not a JSON object", tokenizer_config_json_path);
    }
    apply_specials(t, cfg);
    cJSON_Delete(cfg);
    return 0;
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
    apply_specials(*out, cfg);
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

static int find_spans(const struct chat_template *t, const cJSON *messages, const char *text, size_t len,
                      struct chat_span **spans, int *n_spans) {
    if (!t->header || !t->end)
        return err_set(
            "template %s: cannot locate assistant turns (unknown template family; give the header and "
            "end-of-turn strings with chat_template_set_markers)",
            t->name);
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
        sp[n].end = (size_t)(end - text) + el;
        cursor = sp[n].end;
        n++;
        idx++;
    }
    *spans = sp;
    *n_spans = n;
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
            (*spans)[0].end = pl + strlen(outp);
            *n_spans = 1;
        }
    }
    return 0;
}

int chat_render(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                int add_generation_prompt, const cJSON *extra_vars, char **out, struct chat_span **spans,
                int *n_spans) {
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
    size_t len;
    int rc = jinja_render(t->jt, vars, k, out, &len);
    free(vars);
    cJSON_Delete(agp);
    if (rc == 0 && spans && messages && find_spans(t, messages, *out, len, spans, n_spans)) rc = -1;
    cJSON_Delete(empty);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
