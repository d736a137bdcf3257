/* format: see format.h. Role names and Alpaca->conversation mapping follow LLaMA-Factory's
 * converters (query = instruction + "\n" + input; history = [[user, assistant], ...]). */
#include "data/format.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "core/nulstr.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

void formatted_free(struct formatted *f) {
    free(f->ids);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

static void out_reserve(struct formatted *o, int64_t n) {
    if (n <= o->cap) return;
    o->cap = n > 2 * o->cap ? n : 2 * o->cap;
    o->ids = xrealloc(o->ids, sizeof(int32_t) * (size_t)o->cap);
    o->labels = xrealloc(o->labels, sizeof(int32_t) * (size_t)o->cap);
}

static const char *column_name(const struct format_options *opt, const char *canonical) {
    for (int i = 0; i < opt->n_columns; i++)
        if (strcmp(opt->columns[i].canonical, canonical) == 0) return opt->columns[i].column;
    return canonical;
}

static const cJSON *col(const struct format_options *opt, const cJSON *rec, const char *canonical) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, column_name(opt, canonical));
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Every canonical column some format reads (format_columns); keep in step with col() calls. */
static const char *const CANONICAL[] = {"instruction", "input",   "output",    "system", "history",
                                        "messages",    "conversations", "text", "tools",  "input_ids",
                                        "labels",      "attention_mask", "target_ids"};

int format_columns(const struct format_options *opt, const char **out, int max) {
    int n = 0;
    for (size_t k = 0; k < sizeof CANONICAL / sizeof *CANONICAL && n < max; k++)
        out[n++] = column_name(opt, CANONICAL[k]);
    return n;
}

int format_detect(const struct format_options *opt, const cJSON *rec) {
    if (opt->format != DATA_FORMAT_AUTO) return opt->format;
    if (col(opt, rec, "messages")) return DATA_FORMAT_MESSAGES;
    if (col(opt, rec, "conversations")) return DATA_FORMAT_SHAREGPT;
    if (col(opt, rec, "instruction")) return DATA_FORMAT_ALPACA;
    if (col(opt, rec, "input_ids")) return DATA_FORMAT_TOKENIZED;
    if (col(opt, rec, "text")) return DATA_FORMAT_TEXT;
    return -1;
}

static cJSON *message(const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

static int need_string(const cJSON *v, const char *name, const char *file, int64_t row, int required) {
    if (!v) return required ? err_set("%s: row %lld: missing column \"%s\"", file, (long long)row, name) : 0;
    if (!cJSON_IsString(v))
        return err_set("%s: row %lld: column \"%s\" must be a string", file, (long long)row, name);
    return 0;
}

/* Alpaca record -> conversation (for chat templates). */
static cJSON *alpaca_messages(const struct format_options *opt, const cJSON *rec, const char *file, int64_t row) {
    const cJSON *ins = col(opt, rec, "instruction"), *inp = col(opt, rec, "input"), *out = col(opt, rec, "output");
    const cJSON *sys = col(opt, rec, "system"), *hist = col(opt, rec, "history");
    if (need_string(ins, column_name(opt, "instruction"), file, row, 1) ||
        need_string(out, column_name(opt, "output"), file, row, 1) ||
        need_string(inp, column_name(opt, "input"), file, row, 0) || need_string(sys, column_name(opt, "system"), file, row, 0))
        return NULL;
    cJSON *msgs = cJSON_CreateArray();
    if (sys && sys->valuestring[0]) cJSON_AddItemToArray(msgs, message("system", sys->valuestring));
    if (hist && cJSON_IsArray(hist)) {
        const cJSON *turn;
        cJSON_ArrayForEach(turn, hist) {
            const cJSON *q = cJSON_GetArrayItem(turn, 0), *a = cJSON_GetArrayItem(turn, 1);
            if (!cJSON_IsArray(turn) || !cJSON_IsString(q) || !cJSON_IsString(a)) {
                cJSON_Delete(msgs);
                err_set("%s: row %lld: \"history\" must be a list of [user, assistant] string pairs", file, (long long)row);
                return NULL;
            }
            cJSON_AddItemToArray(msgs, message("user", q->valuestring));
            cJSON_AddItemToArray(msgs, message("assistant", a->valuestring));
        }
    }
    char *q = inp && inp->valuestring[0] ? xasprintf("%s\n%s", ins->valuestring, inp->valuestring)
                                          : xstrdup(ins->valuestring);
    cJSON_AddItemToArray(msgs, message("user", q));
    free(q);
    cJSON_AddItemToArray(msgs, message("assistant", out->valuestring));
    return msgs;
}

/* ShareGPT conversation -> OpenAI messages. */
static cJSON *sharegpt_messages(const cJSON *conv, const char *file, int64_t row) {
    static const struct {
        const char *from, *role;
    } roles[] = {{"human", "user"},     {"user", "user"},   {"gpt", "assistant"}, {"assistant", "assistant"},
                 {"system", "system"}, {"tool", "tool"},   {"observation", "tool"}, {"function_call", "assistant"}};
    cJSON *msgs = cJSON_CreateArray();
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, conv) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(t, "from"), *value = cJSON_GetObjectItemCaseSensitive(t, "value");
        if (!cJSON_IsString(from) || !cJSON_IsString(value)) {
            cJSON_Delete(msgs);
            err_set("%s: row %lld: conversations[%d] needs string \"from\" and \"value\"", file, (long long)row, i);
            return NULL;
        }
        const char *role = NULL;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
            if (strcmp(from->valuestring, roles[k].from) == 0) role = roles[k].role;
        if (!role) {
            cJSON_Delete(msgs);
            err_set("%s: row %lld: conversations[%d]: unknown speaker \"%s\" (expected human, gpt, system, tool)", file,
                    (long long)row, i, from->valuestring);
            return NULL;
        }
        cJSON *m = message(role, value->valuestring);
        static const char *keep[] = {"train", "weight"};
        for (int k = 0; k < 2; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, keep[k]);
            if (v) cJSON_AddItemToObject(m, keep[k], cJSON_Duplicate(v, 1));
        }
        cJSON_AddItemToArray(msgs, m);
        i++;
    }
    return msgs;
}

static int check_messages(const cJSON *msgs, const char *file, int64_t row) {
    if (!cJSON_IsArray(msgs)) return err_set("%s: row %lld: \"messages\" must be a list", file, (long long)row);
    if (cJSON_GetArraySize(msgs) == 0) return err_set("%s: row %lld: empty conversation", file, (long long)row);
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return err_set("%s: row %lld: messages[%d] needs a string \"role\"", file, (long long)row, i);
        i++;
    }
    return 0;
}

/* Tokenizes text (len bytes, NULs carried as C0 80), marking tokens that start inside the chosen
 * spans as trained (all: every token, except those inside the untrain spans). */
static int tokenize_spans(const struct formatter *f, const char *text, size_t len, const struct chat_span *spans,
                          int n_spans, int all, struct formatted *out) {
    char *buf = xmalloc(len + 1);
    memcpy(buf, text, len);
    buf[len] = 0;
    size_t n_len = nul_decode(buf, len);
    struct chat_span *sp = NULL;
    if (n_spans) {
        sp = xmalloc((size_t)n_spans * sizeof *sp);
        for (int i = 0; i < n_spans; i++) {
            sp[i] = spans[i];
            if (n_len != len) { /* offsets into the decoded text */
                sp[i].start = nul_offset(text, spans[i].start);
                sp[i].end = nul_offset(text, spans[i].end);
            }
        }
    }
    struct tokenizer_buf tb = {.want_offsets = 1};
    if (tokenizer_encode_append(f->tk, buf, n_len, 0, &tb)) {
        free(buf), free(sp);
        return -1;
    }
    out_reserve(out, tb.n + 1);
    int s = 0;
    for (int64_t i = 0; i < tb.n; i++) {
        int64_t st = tb.starts[i];
        while (s < n_spans && (int64_t)sp[s].end <= st) s++;
        int inside = s < n_spans && (int64_t)sp[s].start <= st && st < (int64_t)sp[s].end;
        int in = all ? !inside : inside;
        out->ids[i] = tb.ids[i];
        out->labels[i] = in ? tb.ids[i] : -100;
    }
    out->n = tb.n;
    tokenizer_buf_free(&tb);
    free(buf), free(sp);
    return 0;
}

static void append_eos(const struct formatter *f, struct formatted *out) {
    if (f->eos_id < 0) return;
    out_reserve(out, out->n + 1);
    out->ids[out->n] = f->eos_id;
    out->labels[out->n] = f->opt.no_eos_loss ? -100 : f->eos_id;
    out->n++;
}

/* A message's own choice: "train": true/false or "weight": 1/0. 1, 0, or -1 (none); -2 + err when
 * malformed. */
static int message_train(const cJSON *m, const char *file, int64_t row, int i) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(m, "train"), *w = cJSON_GetObjectItemCaseSensitive(m, "weight");
    if (t && !cJSON_IsNull(t)) {
        if (!cJSON_IsBool(t)) {
            err_set("%s: row %lld: messages[%d].train must be true or false", file, (long long)row, i);
            return -2;
        }
        return cJSON_IsTrue(t);
    }
    if (w && !cJSON_IsNull(w)) {
        if (!cJSON_IsNumber(w) || (w->valuedouble != 0 && w->valuedouble != 1)) {
            err_set("%s: row %lld: messages[%d].weight must be 0 or 1", file, (long long)row, i);
            return -2;
        }
        return w->valuedouble == 1;
    }
    return -1;
}

static int is_assistant_msg(const cJSON *m) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
    return cJSON_IsString(r) && !strcmp(r->valuestring, "assistant");
}

static int render_and_tokenize(const struct formatter *f, const struct chat_template *tmpl, const cJSON *msgs, const cJSON *tools, const cJSON *vars,
                               const char *file, int64_t row, struct formatted *out) {
    int n = cJSON_GetArraySize(msgs), last = -1, i = 0, n_want = 0;
    unsigned char *want = xcalloc((size_t)n + 1, 1);
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (is_assistant_msg(m)) last = i;
        i++;
    }
    int all = f->opt.loss_on == LOSS_ON_ALL;
    i = 0;
    cJSON_ArrayForEach(m, msgs) {
        int own = message_train(m, file, row, i);
        if (own == -2) {
            free(want);
            return -1;
        }
        if (all) /* loss_on all: want marks the messages to leave out */
            want[i] = own == 0;
        else if (own >= 0)
            want[i] = (unsigned char)own;
        else
            want[i] = f->opt.loss_on == LOSS_ON_LAST_TURN ? i == last : is_assistant_msg(m);
        n_want += want[i];
        i++;
    }
    char *text = NULL;
    struct chat_span *spans = NULL;
    int n_spans = 0;
    int need = !all || n_want > 0;
    int rc = chat_render_select(tmpl, msgs, tools, 0, vars, want, &text, need ? &spans : NULL, need ? &n_spans : NULL);
    free(want);
    if (rc) return err_wrap("%s: row %lld: chat template", file, (long long)row);
    if (f->opt.no_eos_loss && !all)
        for (int k = 0; k < n_spans; k++)
            spans[k].end = spans[k].eot;
    rc = tokenize_spans(f, text, strlen(text), spans, n_spans, all, out);
    free(text);
    free(spans);
    return rc;
}

/* MindFormers' target_ids schema (research/qwen2 qwen2_preprocess.py: target_ids = input_ids,
 * attention_mask = ids != pad): their LlamaForCausalLM trains label t+1 wherever input token t is
 * not padding (input_mask = tokens != pad_token_id), so every non-pad token and the first pad
 * after the text are trained. attention_mask, when present, says what is padding; else the pad
 * id. Trailing tokens that train nothing are dropped (causal attention: the loss is unchanged). */
static int format_target_ids(const struct formatter *f, const cJSON *rec, const cJSON *tgt, const char *file,
                             int64_t row, struct formatted *out) {
    const cJSON *am = col(&f->opt, rec, "attention_mask");
    int64_t n = out->n;
    if (!cJSON_IsArray(tgt) || cJSON_GetArraySize(tgt) != n)
        return err_set("%s: row %lld: \"target_ids\" must be a list as long as input_ids (%lld)", file, (long long)row,
                       (long long)n);
    if (am && (!cJSON_IsArray(am) || cJSON_GetArraySize(am) != n))
        return err_set("%s: row %lld: \"attention_mask\" must be a list as long as input_ids (%lld)", file,
                       (long long)row, (long long)n);
    if (!am && f->pad_id < 0)
        return err_set("%s: row %lld: target_ids without attention_mask needs the pad token id (the model's "
                       "pad_token_id or the tokenizer's pad_token)", file, (long long)row);
    const cJSON *t = tgt->child, *m = am ? am->child : NULL;
    int prev_real = 0;
    int64_t last = -1;
    for (int64_t i = 0; i < n; i++, t = t->next, m = m ? m->next : NULL) {
        if (!cJSON_IsNumber(t) || (am && !cJSON_IsNumber(m)))
            return err_set("%s: row %lld: target_ids[%lld] / attention_mask[%lld] must be numbers", file, (long long)row,
                           (long long)i, (long long)i);
        int trained = i > 0 && prev_real && t->valuedouble >= 0;
        if (trained && t->valueint != out->ids[i])
            return err_set("%s: row %lld: target_ids[%lld] = %d differs from input_ids[%lld] = %d (csft trains each "
                           "token on the tokens before it; shifted targets are not supported)", file, (long long)row,
                           (long long)i, t->valueint, (long long)i, out->ids[i]);
        out->labels[i] = trained ? out->ids[i] : -100;
        if (trained) last = i;
        prev_real = am ? m->valuedouble != 0 : out->ids[i] != f->pad_id;
    }
    if (last >= 0) out->n = last + 1;
    return 0;
}

static int format_tokenized(const struct formatter *f, const cJSON *rec, const char *file, int64_t row,
                            struct formatted *out) {
    const cJSON *ids = col(&f->opt, rec, "input_ids"), *labels = col(&f->opt, rec, "labels");
    const cJSON *tgt = labels ? NULL : col(&f->opt, rec, "target_ids");
    if (!cJSON_IsArray(ids)) return err_set("%s: row %lld: \"input_ids\" must be a list of ints", file, (long long)row);
    int64_t n = cJSON_GetArraySize(ids);
    if (labels && (!cJSON_IsArray(labels) || cJSON_GetArraySize(labels) != n))
        return err_set("%s: row %lld: \"labels\" must be a list as long as input_ids (%lld)", file, (long long)row,
                       (long long)n);
    out_reserve(out, n);
    const cJSON *e = ids->child, *l = labels ? labels->child : NULL;
    for (int64_t i = 0; i < n; i++, e = e->next, l = l ? l->next : NULL) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= f->vocab_size ||
            e->valuedouble != (double)e->valueint)
            return err_set("%s: row %lld: input_ids[%lld] is not a token id in [0, %d)", file, (long long)row,
                           (long long)i, f->vocab_size);
        /* TRL: a label is the id itself (trained) or negative, conventionally -100 (ignored) */
        if (l && (!cJSON_IsNumber(l) || (l->valuedouble >= 0 && l->valueint != e->valueint)))
            return err_set("%s: row %lld: labels[%lld] must be -100 or input_ids[%lld] (%d)", file, (long long)row,
                           (long long)i, (long long)i, e->valueint);
        out->ids[i] = e->valueint;
        out->labels[i] = l ? (l->valuedouble < 0 ? -100 : l->valueint) : e->valueint;
    }
    out->n = n;
    return tgt ? format_target_ids(f, rec, tgt, file, row, out) : 0;
}

static int truncate_out(const struct formatter *f, struct formatted *out, const char *file, int64_t row) {
    int64_t L = f->opt.seq_length;
    if (L <= 0 || out->n <= L) return 0;
    switch (f->opt.truncation) {
    case TRUNCATION_RIGHT: out->n = L; break;
    case TRUNCATION_LEFT:
        memmove(out->ids, out->ids + out->n - L, sizeof(int32_t) * (size_t)L);
        memmove(out->labels, out->labels + out->n - L, sizeof(int32_t) * (size_t)L);
        out->n = L;
        break;
    case TRUNCATION_DROP: out->dropped = 1; return 0; /* dropped, not cut: counted apart */
    case TRUNCATION_ERROR:
        return err_set("%s: row %lld: %lld tokens exceed seq_length %lld (truncation: error)", file, (long long)row,
                       (long long)out->n, (long long)L);
    }
    out->truncated = 1;
    return 0;
}

/* MindSpore Transformers' AlpacaInstructDataHandler (MF-master dataset/handler/alpaca_handler.py):
 * three pieces tokenized on their own, SYSTEM + " " and "USER: " + prompt + " " untrained,
 * "ASSISTANT: " + output + "</s>" trained ("</s>" is literal text for Qwen). Labels stay
 * unshifted here; the one shift happens per document at batch time (their packed path shifts
 * twice, a known bug: docs/mindformers.md). */
/* The three pieces of their text; pieces[2] is "ASSISTANT: " + output + "</s>", or with
 * output NULL the generation prompt "ASSISTANT:". */
static void mf_alpaca_pieces(const char *instruction, const char *input, const char *output, char *pieces[3]) {
    static const char *const system = "A chat between a curious user and an artificial intelligence assistant. The "
                                      "assistant gives helpful, detailed, and polite answers to the user's questions.";
    pieces[0] = xasprintf("%s ", system);
    if (input && input[0])
        pieces[1] = xasprintf("USER: Below is an instruction that describes a task, paired with an input that provides "
                              "further context. Write a response that appropriately completes the request.\n\n### "
                              "Instruction:\n%s\n\n### Input:\n%s\n\n### Response: ",
                              instruction, input);
    else
        pieces[1] = xasprintf("USER: Below is an instruction that describes a task. Write a response that appropriately "
                              "completes the request.\n\n### Instruction:\n%s\n\n### Response: ",
                              instruction);
    pieces[2] = output ? xasprintf("ASSISTANT: %s</s>", output) : xstrdup("ASSISTANT:");
}

/* Tokenizes the pieces one by one into out; labels: the last piece when trained_last. */
static int mf_alpaca_tokenize(const struct formatter *f, char *pieces[3], int trained_last, struct formatted *out) {
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        struct tokenizer_buf tb = {0};
        rc = tokenizer_encode_append(f->tk, pieces[k], strlen(pieces[k]), 0, &tb);
        if (rc == 0) {
            out_reserve(out, out->n + tb.n + 1);
            for (int64_t i = 0; i < tb.n; i++) {
                out->ids[out->n + i] = tb.ids[i];
                out->labels[out->n + i] = (k == 2 && trained_last) || f->opt.loss_on == LOSS_ON_ALL ? tb.ids[i] : -100;
            }
            out->n += tb.n;
        }
        tokenizer_buf_free(&tb);
    }
    for (int k = 0; k < 3; k++) free(pieces[k]);
    return rc;
}

/* MindSpore Transformers' AlpacaInstructDataHandler (MF-master dataset/handler/alpaca_handler.py):
 * three pieces tokenized on their own, SYSTEM + " " and "USER: " + prompt + " " untrained,
 * "ASSISTANT: " + output + "</s>" trained ("</s>" is literal text for Qwen). Labels stay
 * unshifted here; the one shift happens per document at batch time (their packed path shifts
 * twice, a known bug: docs/mindformers.md). */
static int format_mindformers_alpaca(const struct formatter *f, const cJSON *rec, const char *file, int64_t row,
                                     struct formatted *out) {
    const cJSON *ins = col(&f->opt, rec, "instruction"), *inp = col(&f->opt, rec, "input"), *o = col(&f->opt, rec, "output");
    if (need_string(ins, column_name(&f->opt, "instruction"), file, row, 1) ||
        need_string(o, column_name(&f->opt, "output"), file, row, 1) ||
        need_string(inp, column_name(&f->opt, "input"), file, row, 0))
        return -1;
    char *pieces[3];
    mf_alpaca_pieces(ins->valuestring, inp ? inp->valuestring : NULL, o->valuestring, pieces);
    return mf_alpaca_tokenize(f, pieces, 1, out);
}

int format_mindformers_alpaca_prompt(const struct formatter *f, const char *instruction, const char *input,
                                     struct formatted *out) {
    out->n = 0;
    char *pieces[3];
    mf_alpaca_pieces(instruction, input, NULL, pieces);
    return mf_alpaca_tokenize(f, pieces, 0, out);
}

int format_record(const struct formatter *f, const cJSON *rec, const char *file, int64_t row, struct formatted *out) {
    out->n = 0, out->truncated = 0, out->dropped = 0;
    if (!cJSON_IsObject(rec)) return err_set("%s: row %lld: a record must be an object", file, (long long)row);
    int kind = format_detect(&f->opt, rec);
    int rc = 0;
    cJSON *msgs = NULL;
    switch (kind) {
    case DATA_FORMAT_ALPACA:
        if (f->alpaca_tmpl) {
            const cJSON *ins = col(&f->opt, rec, "instruction"), *inp = col(&f->opt, rec, "input"),
                        *o = col(&f->opt, rec, "output");
            if (need_string(ins, column_name(&f->opt, "instruction"), file, row, 1) ||
                need_string(o, column_name(&f->opt, "output"), file, row, 1) ||
                need_string(inp, column_name(&f->opt, "input"), file, row, 0))
                return -1;
            cJSON *vars = cJSON_CreateObject();
            cJSON_AddStringToObject(vars, "instruction", ins->valuestring);
            cJSON_AddStringToObject(vars, "input", inp ? inp->valuestring : "");
            cJSON_AddStringToObject(vars, "output", o->valuestring);
            msgs = cJSON_CreateArray();
            rc = render_and_tokenize(f, f->alpaca_tmpl, msgs, NULL, vars, file, row, out);
            cJSON_Delete(vars);
            if (rc == 0) append_eos(f, out);
            break;
        }
        msgs = alpaca_messages(&f->opt, rec, file, row);
        rc = msgs ? render_and_tokenize(f, f->tmpl, msgs, NULL, NULL, file, row, out) : -1;
        break;
    case DATA_FORMAT_MESSAGES: {
        const cJSON *m = col(&f->opt, rec, "messages");
        if (!m) return err_set("%s: row %lld: missing column \"%s\"", file, (long long)row, column_name(&f->opt, "messages"));
        if (check_messages(m, file, row)) return -1;
        rc = render_and_tokenize(f, f->tmpl, m, col(&f->opt, rec, "tools"), NULL, file, row, out);
        break;
    }
    case DATA_FORMAT_SHAREGPT: {
        const cJSON *c = col(&f->opt, rec, "conversations");
        if (!c || !cJSON_IsArray(c))
            return err_set("%s: row %lld: \"%s\" must be a list", file, (long long)row, column_name(&f->opt, "conversations"));
        if (cJSON_GetArraySize(c) == 0) return err_set("%s: row %lld: empty conversation", file, (long long)row);
        msgs = sharegpt_messages(c, file, row);
        rc = msgs ? render_and_tokenize(f, f->tmpl, msgs, NULL, NULL, file, row, out) : -1;
        break;
    }
    case DATA_FORMAT_TEXT: {
        const cJSON *t = col(&f->opt, rec, "text");
        if (need_string(t, column_name(&f->opt, "text"), file, row, 1)) return -1;
        rc = tokenize_spans(f, t->valuestring, strlen(t->valuestring), NULL, 0, 1, out);
        if (rc == 0 && f->eos_id >= 0) {
            out_reserve(out, out->n + 1);
            out->ids[out->n] = out->labels[out->n] = f->eos_id;
            out->n++;
        }
        break;
    }
    case DATA_FORMAT_TOKENIZED: rc = format_tokenized(f, rec, file, row, out); break;
    case DATA_FORMAT_MINDFORMERS_ALPACA: rc = format_mindformers_alpaca(f, rec, file, row, out); break;
    default:
        return err_set("%s: row %lld: cannot tell the record's format from its columns (expected instruction/output, "
                       "messages, conversations, text or input_ids; set train_dataset.format or column_mapping)",
                       file, (long long)row);
    }
    cJSON_Delete(msgs);
    if (rc) return -1;
    return truncate_out(f, out, file, row);
}
