/* Tests for src/data/format, dataset and pack: chat-template golden ids (tokenizing the golden
 * renderings and formatting the golden conversations), label masks per record kind and
 * loss_on, truncation policies, column mapping, bad-row errors naming file and row; datasets
 * built from every fixture format giving the same token stream, stats, the Megatron-format
 * cache (reload, damaged files rebuilt, key changes); packing plans and batch_fill. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "data/dataset.h"
#include "data/format.h"
#include "data/pack.h"
#include "data/reader.h"
#include "test.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

#define QWEN "tests/fixtures/tokenizer/qwen"
#define CHATFIX "tests/fixtures/chat_templates/"
#define DS "tests/fixtures/datasets/"
#define LLAMA3_TOK "../shared/fixtures/tokenizer/llama3"
#define LLAMA3_TMPL "../shared/fixtures/chat_templates/templates/llama3.jinja"
#define IM_END 151645
#define ENDOFTEXT 151643

static struct tokenizer *qwen;
static struct chat_template *qwen3, *chatml, *alpaca;

/* ---------------------------------------------------------------- helpers */

static struct formatter fmt_make(const struct chat_template *tmpl, const struct chat_template *alp, int32_t eos) {
    struct formatter f = {0};
    f.opt.format = DATA_FORMAT_AUTO;
    f.opt.loss_on = LOSS_ON_ASSISTANT;
    f.opt.truncation = TRUNCATION_RIGHT;
    f.tk = qwen;
    f.tmpl = tmpl;
    f.alpaca_tmpl = alp;
    f.eos_id = eos;
    f.vocab_size = tokenizer_vocab_size(qwen);
    return f;
}

static char *decode(const int32_t *ids, int64_t n) {
    char *s = NULL;
    if (tokenizer_decode(qwen, ids, n, 0, &s, NULL)) return xstrdup("(decode error)");
    return s;
}

/* Decoded text of the trained tokens (labels >= 0), in order. */
static char *trained_text(const struct formatted *o) {
    int32_t *t = xmalloc(sizeof(int32_t) * (size_t)(o->n + 1));
    int64_t k = 0;
    for (int64_t i = 0; i < o->n; i++)
        if (o->labels[i] >= 0) t[k++] = o->ids[i];
    char *s = decode(t, k);
    free(t);
    return s;
}

static int format_json(const struct formatter *f, const char *json, const char *file, int64_t row,
                       struct formatted *o) {
    cJSON *rec = cJSON_Parse(json);
    if (!rec) {
        fprintf(stderr, "  bad test JSON: %s\n", json);
        return -2;
    }
    int rc = format_record(f, rec, file, row, o);
    cJSON_Delete(rec);
    return rc;
}

static int64_t count_trained(const struct formatted *o) {
    int64_t n = 0;
    for (int64_t i = 0; i < o->n; i++) n += o->labels[i] >= 0;
    return n;
}

/* Byte offset of code point cp in s. */
static size_t cp_to_byte(const char *s, int64_t cp) {
    size_t b = 0;
    for (int64_t i = 0; i < cp && s[b]; i++) {
        b++;
        while ((s[b] & 0xC0) == 0x80) b++;
    }
    return b;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static char tmpdir[64];

/* ---------------------------------------------------------------- (a) chat golden ids */

static struct tokenizer *llama3_tk;
static struct chat_template *llama3_tmpl;

static void test_golden_ids(void) {
    char *text = file_read_all(CHATFIX "golden.jsonl", NULL);
    EXPECT(text, "golden.jsonl missing");
    if (!text) return;
    int have_llama = file_exists(LLAMA3_TOK "/tokenizer.json") && file_exists(LLAMA3_TMPL);
    if (have_llama) {
        char *src = file_read_all(LLAMA3_TMPL, NULL);
        EXPECT(tokenizer_load(&llama3_tk, LLAMA3_TOK) == 0, "%s", err_msg());
        EXPECT(src && chat_template_parse(&llama3_tmpl, src, LLAMA3_TMPL) == 0, "%s", err_msg());
        free(src);
        if (llama3_tmpl) {
            chat_template_set_special(llama3_tmpl, "bos_token", "<|begin_of_text|>");
            chat_template_set_special(llama3_tmpl, "eos_token", "<|end_of_text|>");
            if (llama3_tk) chat_template_use_tokenizer(llama3_tmpl, llama3_tk); /* <|eot_id|> ends a turn */
        }
        have_llama = llama3_tk && llama3_tmpl;
    }
    int tok_ok = 0, tok_bad = 0, fmt_ok = 0, fmt_bad = 0, skipped = 0;
    struct formatted o = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *tn = cJSON_GetObjectItem(j, "template")->valuestring, *id = cJSON_GetObjectItem(j, "id")->valuestring;
        const cJSON *ids = cJSON_GetObjectItem(j, "ids"), *rendered = cJSON_GetObjectItem(j, "rendered");
        if (!cJSON_IsArray(ids) || !cJSON_IsString(rendered)) { /* a line that does not render */
            cJSON_Delete(j);
            continue;
        }
        int is_llama = !strcmp(tn, "llama3");
        if (is_llama && !have_llama) {
            skipped++;
            cJSON_Delete(j);
            continue;
        }
        const struct tokenizer *tk = is_llama ? llama3_tk : qwen;
        /* 1. tokenizing the rendering gives the golden ids */
        int32_t *got;
        int64_t n;
        int same = tokenizer_encode(tk, rendered->valuestring, strlen(rendered->valuestring), &got, &n) == 0 &&
                   n == cJSON_GetArraySize(ids);
        for (int64_t i = 0; same && i < n; i++) same = got[i] == cJSON_GetArrayItem(ids, (int)i)->valueint;
        free(got);
        if (same) tok_ok++;
        else {
            tok_bad++;
            fprintf(stderr, "  golden %s: tokenized rendering differs from ids\n", id);
        }
        /* 2. formatting the same conversation gives the same ids, trained = the assistant spans */
        const cJSON *msgs = cJSON_GetObjectItem(j, "messages"), *kw = cJSON_GetObjectItem(j, "kwargs");
        int agp = cJSON_IsTrue(cJSON_GetObjectItem(j, "add_generation_prompt"));
        int plain = !agp && cJSON_IsNull(cJSON_GetObjectItem(j, "tools")) && cJSON_GetArraySize(kw) == 0;
        struct formatter f = fmt_make(NULL, NULL, -1);
        cJSON *rec = cJSON_CreateObject();
        int64_t extra = 0; /* tokens the formatter appends (the Alpaca eos) */
        char *want_trained = NULL;
        if (!strncmp(tn, "alpaca", 6)) {
            f.alpaca_tmpl = alpaca;
            f.eos_id = ENDOFTEXT;
            extra = 1;
            for (const cJSON *c = kw->child; c; c = c->next) cJSON_AddStringToObject(rec, c->string, c->valuestring);
            want_trained = xasprintf("%s<|endoftext|>", cJSON_GetObjectItem(kw, "output")->valuestring);
        } else if (plain && cJSON_GetArraySize(msgs) > 0) {
            f.tmpl = is_llama ? llama3_tmpl : qwen3;
            f.tk = tk;
            cJSON_AddItemToObject(rec, "messages", cJSON_Duplicate(msgs, 1));
            const char *r = rendered->valuestring;
            size_t cap = strlen(r) + 1, len = 0;
            want_trained = xcalloc(cap, 1);
            const cJSON *sp;
            cJSON_ArrayForEach(sp, cJSON_GetObjectItem(j, "assistant_spans")) {
                size_t a = cp_to_byte(r, cJSON_GetArrayItem(sp, 0)->valueint),
                       b = cp_to_byte(r, cJSON_GetArrayItem(sp, 1)->valueint);
                memcpy(want_trained + len, r + a, b - a);
                len += b - a;
            }
        }
        if (want_trained) {
            int ok = format_record(&f, rec, "golden.jsonl", 0, &o) == 0 && o.n == cJSON_GetArraySize(ids) + extra;
            for (int64_t i = 0; ok && i < o.n - extra; i++) ok = o.ids[i] == cJSON_GetArrayItem(ids, (int)i)->valueint;
            char *tt = NULL;
            if (ok) {
                int32_t *t = xmalloc(sizeof(int32_t) * (size_t)(o.n + 1));
                int64_t k = 0;
                for (int64_t i = 0; i < o.n; i++)
                    if (o.labels[i] >= 0) t[k++] = o.ids[i];
                tokenizer_decode(tk, t, k, 0, &tt, NULL);
                free(t);
                ok = tt && !strcmp(tt, want_trained);
            }
            if (ok) fmt_ok++;
            else {
                fmt_bad++;
                fprintf(stderr, "  golden %s: format_record: %s; trained \"%s\" want \"%s\"\n", id, err_msg(),
                        tt ? tt : "", want_trained);
            }
            free(tt);
            free(want_trained);
        }
        cJSON_Delete(rec);
        cJSON_Delete(j);
    }
    formatted_free(&o);
    free(text);
    if (skipped)
        SKIP_PART("%d llama3 golden lines: %s or %s absent (Meta-licensed, not copied)", skipped, LLAMA3_TOK, LLAMA3_TMPL);
    printf("  golden ids: %d tokenized ok, %d formatted ok, %d skipped\n", tok_ok, fmt_ok, skipped);
    EXPECT(tok_bad == 0 && fmt_bad == 0, "%d tokenize and %d format mismatches", tok_bad, fmt_bad);
    EXPECT(tok_ok >= 37 && fmt_ok >= 20, "only %d/%d golden lines checked", tok_ok, fmt_ok);
    if (have_llama) EXPECT(tok_ok == 64, "%d of 64 golden lines tokenized", tok_ok);
}

/* ---------------------------------------------------------------- (b) format_record */

static void test_format_alpaca_chat(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted o = {0};
    EXPECT(format_json(&f, "{\"instruction\":\"Name a color.\",\"input\":\"sky\",\"output\":\"Blue.\"}", "a.jsonl", 0, &o) == 0,
           "%s", err_msg());
    char *all = decode(o.ids, o.n), *tr = trained_text(&o);
    EXPECT_STR(all, "<|im_start|>user\nName a color.\nsky<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n");
    EXPECT_STR(tr, "Blue.<|im_end|>");
    EXPECT(o.ids[o.n - 2] == IM_END && o.labels[o.n - 2] == IM_END, "end-of-turn token trained");
    EXPECT(o.labels[o.n - 1] == -100 && o.ids[o.n - 1] == 198, "newline after <|im_end|> not trained");
    EXPECT(o.labels[0] == -100, "prompt masked");
    free(all), free(tr);
    /* system + history: every assistant turn trained; no eos appended with a chat template */
    EXPECT(format_json(&f, "{\"instruction\":\"And now?\",\"output\":\"Red.\",\"system\":\"Be brief.\","
                           "\"history\":[[\"Hi\",\"Hello!\"]]}", "a.jsonl", 1, &o) == 0, "%s", err_msg());
    all = decode(o.ids, o.n), tr = trained_text(&o);
    EXPECT_STR(all, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                    "Hello!<|im_end|>\n<|im_start|>user\nAnd now?<|im_end|>\n<|im_start|>assistant\nRed.<|im_end|>\n");
    EXPECT_STR(tr, "Hello!<|im_end|>Red.<|im_end|>");
    free(all), free(tr);
    f.opt.loss_on = LOSS_ON_LAST_TURN;
    EXPECT(format_json(&f, "{\"instruction\":\"And now?\",\"output\":\"Red.\",\"history\":[[\"Hi\",\"Hello!\"]]}", "a.jsonl", 1,
                       &o) == 0, "%s", err_msg());
    tr = trained_text(&o);
    EXPECT_STR(tr, "Red.<|im_end|>");
    free(tr);
    formatted_free(&o);
}

static void test_format_alpaca_prompt(void) {
    struct formatter f = fmt_make(chatml, alpaca, ENDOFTEXT);
    struct formatted o = {0};
    EXPECT(format_json(&f, "{\"instruction\":\"Name a color.\",\"input\":\"\",\"output\":\"Blue.\"}", "a.jsonl", 0, &o) == 0,
           "%s", err_msg());
    char *all = decode(o.ids, o.n), *tr = trained_text(&o);
    EXPECT_STR(all, "Below is an instruction that describes a task. Write a response that appropriately completes the "
                    "request.\n\n### Instruction:\nName a color.\n\n### Response:Blue.<|endoftext|>");
    EXPECT_STR(tr, "Blue.<|endoftext|>");
    EXPECT(o.ids[o.n - 1] == ENDOFTEXT && o.labels[o.n - 1] == ENDOFTEXT, "eos appended and trained");
    free(all), free(tr);
    EXPECT(format_json(&f, "{\"instruction\":\"Translate.\",\"input\":\"chat\",\"output\":\"cat\"}", "a.jsonl", 0, &o) == 0,
           "%s", err_msg());
    all = decode(o.ids, o.n);
    EXPECT(strstr(all, "paired with an input") && strstr(all, "### Input:\nchat\n\n### Response:cat<|endoftext|>"),
           "with-input prompt: %s", all);
    free(all);
    /* empty output: only the eos is trained, the record still trains something */
    EXPECT(format_json(&f, "{\"instruction\":\"Say nothing.\",\"input\":\"\",\"output\":\"\"}", "a.jsonl", 0, &o) == 0,
           "%s", err_msg());
    EXPECT(count_trained(&o) == 1 && o.labels[o.n - 1] == ENDOFTEXT, "%lld trained", (long long)count_trained(&o));
    formatted_free(&o);
}

static const char *CONV_MSGS =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
    "{\"role\":\"assistant\",\"content\":\"A one\"},{\"role\":\"user\",\"content\":\"U2\"},"
    "{\"role\":\"assistant\",\"content\":\"A two\"}]}";
static const char *CONV_SHAREGPT =
    "{\"conversations\":[{\"from\":\"system\",\"value\":\"S\"},{\"from\":\"human\",\"value\":\"U1\"},"
    "{\"from\":\"gpt\",\"value\":\"A one\"},{\"from\":\"human\",\"value\":\"U2\"},{\"from\":\"gpt\",\"value\":\"A two\"}]}";

static void test_format_messages_loss_on(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted o = {0}, s = {0};
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 0, &o) == 0, "%s", err_msg());
    char *tr = trained_text(&o);
    EXPECT_STR(tr, "A one<|im_end|>A two<|im_end|>");
    free(tr);
    int n_im_end_trained = 0;
    for (int64_t i = 0; i < o.n; i++) n_im_end_trained += o.ids[i] == IM_END && o.labels[i] == IM_END;
    EXPECT(n_im_end_trained == 2, "%d end-of-turn tokens trained (system/user ones must not be)", n_im_end_trained);
    for (int64_t i = 0; i < o.n; i++)
        EXPECT(o.labels[i] == -100 || o.labels[i] == o.ids[i], "label %lld is %d", (long long)i, o.labels[i]);
    /* ShareGPT with the same conversation: identical ids and labels */
    EXPECT(format_json(&f, CONV_SHAREGPT, "s.jsonl", 0, &s) == 0, "%s", err_msg());
    EXPECT(s.n == o.n && !memcmp(s.ids, o.ids, 4 * (size_t)o.n) && !memcmp(s.labels, o.labels, 4 * (size_t)o.n),
           "sharegpt != messages");
    f.opt.loss_on = LOSS_ON_LAST_TURN;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 0, &o) == 0, "%s", err_msg());
    tr = trained_text(&o);
    EXPECT_STR(tr, "A two<|im_end|>");
    free(tr);
    f.opt.loss_on = LOSS_ON_ALL;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 0, &o) == 0, "%s", err_msg());
    EXPECT(count_trained(&o) == o.n, "loss_on all: %lld of %lld", (long long)count_trained(&o), (long long)o.n);
    /* no assistant turn: formats fine, trains nothing */
    f.opt.loss_on = LOSS_ON_ASSISTANT;
    EXPECT(format_json(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "m.jsonl", 0, &o) == 0, "%s",
           err_msg());
    EXPECT(o.n > 0 && count_trained(&o) == 0, "user-only conversation trains %lld", (long long)count_trained(&o));
    formatted_free(&o), formatted_free(&s);
}

static void test_format_text_tokenized(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted o = {0};
    EXPECT(format_json(&f, "{\"text\":\"Hello world\"}", "t.jsonl", 0, &o) == 0, "%s", err_msg());
    int32_t *ids;
    int64_t n;
    tokenizer_encode(qwen, "Hello world", 11, &ids, &n);
    EXPECT(o.n == n + 1 && !memcmp(o.ids, ids, 4 * (size_t)n) && o.ids[n] == ENDOFTEXT, "text = tokens + eos");
    EXPECT(count_trained(&o) == o.n, "text: everything trained");
    free(ids);
    EXPECT(format_json(&f, "{\"input_ids\":[5,6,7,8],\"labels\":[-100,-100,7,8]}", "k.jsonl", 0, &o) == 0, "%s",
           err_msg());
    int32_t wi[] = {5, 6, 7, 8}, wl[] = {-100, -100, 7, 8};
    EXPECT(o.n == 4 && !memcmp(o.ids, wi, sizeof wi) && !memcmp(o.labels, wl, sizeof wl), "tokenized as given");
    EXPECT(format_json(&f, "{\"input_ids\":[5,6,7]}", "k.jsonl", 0, &o) == 0 && o.n == 3 && o.labels[0] == 5 &&
               o.labels[2] == 7, "no labels: all trained");
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"input_ids\":[5,\"x\",7]}", "k.jsonl: row 4: input_ids[1] is not a token id in [0, 151669)"},
        {"{\"input_ids\":[5,999999999]}", "row 4: input_ids[1] is not a token id"},
        {"{\"input_ids\":[5,-1]}", "row 4: input_ids[1] is not a token id"},
        {"{\"input_ids\":[5,6.5]}", "row 4: input_ids[1] is not a token id"},
        {"{\"input_ids\":\"5 6\"}", "row 4: \"input_ids\" must be a list of ints"},
        {"{\"input_ids\":[5,6],\"labels\":[-100]}", "row 4: \"labels\" must be a list as long as input_ids (2)"},
        {"{\"input_ids\":[5,6],\"labels\":[-100,7]}", "row 4: labels[1] must be -100 or input_ids[1] (6)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(format_json(&f, bad[i].json, "k.jsonl", 4, &o) == -1, "%s accepted", bad[i].json);
        EXPECT_ERR(bad[i].err);
    }
    formatted_free(&o);
}

static void test_truncation(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted full = {0}, o = {0};
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &full) == 0, "%s", err_msg());
    EXPECT(full.n > 20, "%lld tokens", (long long)full.n);
    f.opt.seq_length = 8;
    f.opt.truncation = TRUNCATION_RIGHT;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &o) == 0 && o.n == 8 && o.truncated && !o.dropped, "right");
    EXPECT(!memcmp(o.ids, full.ids, 32) && !memcmp(o.labels, full.labels, 32), "right keeps the head");
    f.opt.truncation = TRUNCATION_LEFT;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &o) == 0 && o.n == 8 && o.truncated, "left");
    EXPECT(!memcmp(o.ids, full.ids + full.n - 8, 32) && !memcmp(o.labels, full.labels + full.n - 8, 32),
           "left keeps the tail");
    EXPECT(o.labels[o.n - 2] == IM_END, "left keeps the last response trained");
    f.opt.truncation = TRUNCATION_DROP;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &o) == 0 && o.dropped && !o.truncated, "drop");
    f.opt.truncation = TRUNCATION_ERROR;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &o) == -1, "error policy");
    char want[128];
    snprintf(want, sizeof want, "m.jsonl: row 5: %lld tokens exceed seq_length 8", (long long)full.n);
    EXPECT_ERR(want);
    f.opt.seq_length = (int)full.n; /* exactly fits: untouched under every policy */
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 5, &o) == 0 && o.n == full.n && !o.truncated, "fits");
    formatted_free(&full), formatted_free(&o);
}

static void test_column_mapping(void) {
    struct column_map cols[] = {{"instruction", "question"}, {"output", "answer"}, {"messages", "chat"}};
    struct formatter f = fmt_make(chatml, alpaca, ENDOFTEXT), g = f;
    g.opt.columns = cols;
    g.opt.n_columns = 3;
    struct formatted a = {0}, b = {0};
    EXPECT(format_json(&f, "{\"instruction\":\"Q?\",\"output\":\"A.\"}", "c.jsonl", 0, &a) == 0, "%s", err_msg());
    EXPECT(format_json(&g, "{\"question\":\"Q?\",\"answer\":\"A.\",\"instruction\":\"ignored\"}", "c.jsonl", 0, &b) == 0,
           "%s", err_msg());
    EXPECT(a.n == b.n && !memcmp(a.ids, b.ids, 4 * (size_t)a.n) && !memcmp(a.labels, b.labels, 4 * (size_t)a.n),
           "mapped alpaca");
    EXPECT(format_json(&f, CONV_MSGS, "c.jsonl", 0, &a) == 0, "%s", err_msg());
    char *chat = xstrdup(CONV_MSGS);
    memcpy(strstr(chat, "\"messages\"") + 1, "chat\"    ", 9); /* {"chat"    :[...]} */
    EXPECT(format_json(&g, chat, "c.jsonl", 0, &b) == 0, "%s", err_msg());
    EXPECT(a.n == b.n && !memcmp(a.ids, b.ids, 4 * (size_t)a.n), "mapped messages");
    free(chat);
    EXPECT(format_json(&g, "{\"question\":\"Q?\"}", "c.jsonl", 3, &b) == -1, "missing mapped column");
    EXPECT_ERR("c.jsonl: row 3: missing column \"answer\"");
    g.opt.format = DATA_FORMAT_ALPACA; /* explicit format, record with none of the columns */
    EXPECT(format_json(&g, "{\"x\":1}", "c.jsonl", 9, &b) == -1, "explicit format");
    EXPECT_ERR("c.jsonl: row 9: missing column \"question\"");
    formatted_free(&a), formatted_free(&b);
}

static void test_format_errors(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted o = {0};
    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"instruction\":\"x\"}", "bad.jsonl: row 7: missing column \"output\""},
        {"{\"instruction\":\"x\",\"output\":5}", "bad.jsonl: row 7: column \"output\" must be a string"},
        {"{\"instruction\":\"x\",\"output\":\"y\",\"history\":[[\"a\"]]}", "row 7: \"history\" must be a list of"},
        {"{\"messages\":[]}", "bad.jsonl: row 7: empty conversation"},
        {"{\"messages\":{\"role\":\"user\"}}", "bad.jsonl: row 7: \"messages\" must be a list"},
        {"{\"messages\":[{\"content\":\"hi\"}]}", "bad.jsonl: row 7: messages[0] needs a string \"role\""},
        {"{\"conversations\":[]}", "bad.jsonl: row 7: empty conversation"},
        {"{\"conversations\":[{\"from\":\"human\",\"value\":\"a\"},{\"from\":\"bot\",\"value\":\"b\"}]}",
         "bad.jsonl: row 7: conversations[1]: unknown speaker \"bot\""},
        {"{\"conversations\":[{\"from\":\"human\"}]}", "row 7: conversations[0] needs string \"from\" and \"value\""},
        {"{\"foo\":1}", "bad.jsonl: row 7: cannot tell the record's format from its columns"},
        {"{\"text\":3}", "bad.jsonl: row 7: column \"text\" must be a string"},
        {"[1,2]", "bad.jsonl: row 7: a record must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(format_json(&f, bad[i].json, "bad.jsonl", 7, &o) == -1, "%s accepted", bad[i].json);
        EXPECT_ERR(bad[i].err);
    }
    formatted_free(&o);
}

/* ---------------------------------------------------------------- (c) datasets */

static struct formatter ds_fmt(int seq_length) {
    struct formatter f = fmt_make(qwen3, alpaca, ENDOFTEXT);
    f.opt.seq_length = seq_length;
    return f;
}

static struct dataset *build1(const char *file, const struct formatter *f, const char *cache) {
    const char *files[] = {file};
    struct dataset_options o = {.files = files, .n_files = 1, .cache_dir = cache, .cache_salt = "test"};
    struct dataset *ds = NULL;
    if (dataset_build(&ds, &o, f)) fprintf(stderr, "  %s: %s\n", file, err_msg());
    return ds;
}

static int same_ds(const struct dataset *a, const struct dataset *b) {
    if (!a || !b || a->n != b->n) return 0;
    if (memcmp(a->offsets, b->offsets, sizeof(int64_t) * (size_t)(a->n + 1))) return 0;
    size_t nt = (size_t)a->offsets[a->n];
    return !memcmp(a->ids, b->ids, 4 * nt) && !memcmp(a->mask, b->mask, nt);
}

static void expect_same_as(const char *ref, const char *const *others, int n, const struct formatter *f) {
    struct dataset *r = build1(ref, f, NULL);
    EXPECT(r && r->n > 0, "%s", ref);
    for (int i = 0; r && i < n; i++) {
        struct dataset *d = build1(others[i], f, NULL);
        EXPECT(same_ds(r, d), "%s: token stream differs from %s", others[i], ref);
        dataset_free(d);
    }
    dataset_free(r);
}

static void test_dataset_formats_agree(void) {
    struct formatter f = ds_fmt(1024);
    const char *alp[64];
    int na = 0;
    alp[na++] = DS "alpaca.json";
    alp[na++] = DS "alpaca_utf8_compact.json";
    alp[na++] = DS "alpaca.arrow";
    alp[na++] = DS "alpaca_save_to_disk";
    DIR *d = opendir(DS);
    static char names[64][320];
    for (struct dirent *e; d && (e = readdir(d)) && na < 60;)
        if (!strncmp(e->d_name, "alpaca.", 7) && strstr(e->d_name, ".parquet")) {
            snprintf(names[na], sizeof names[na], DS "%s", e->d_name);
            alp[na] = names[na];
            na++;
        }
    if (d) closedir(d);
    EXPECT(na >= 18, "%d alpaca files", na);
    expect_same_as(DS "alpaca.jsonl", alp, na, &f);
    const char *msg[] = {DS "messages.pw.snappy.dict.parquet", DS "messages.hy.snappy.parquet",
                         DS "messages.pj.legacy_repeated.snappy.parquet", DS "messages.pw.zstd.plain.multi.parquet",
                         DS "messages.arrow", DS "sharegpt.jsonl", DS "sharegpt.json", DS "sharegpt.pw.snappy.dict.parquet"};
    expect_same_as(DS "messages.jsonl", msg, 8, &f);
}

/* Expected stats computed independently: every record formatted one by one. */
static void test_dataset_stats(void) {
    struct formatter f = ds_fmt(1024), f0 = ds_fmt(0);
    struct dataset *ds = build1(DS "alpaca.jsonl", &f, NULL);
    EXPECT(ds != NULL, "%s", err_msg());
    if (!ds) return;
    struct reader *r;
    reader_open(&r, DS "alpaca.jsonl");
    cJSON *rec;
    struct formatted o = {0};
    int64_t n = 0, trunc = 0, tokens = 0, trained = 0, hist[16] = {0};
    while (reader_next(r, &rec) == 1) {
        format_record(&f0, rec, "x", n, &o);
        cJSON_Delete(rec);
        int64_t len = o.n < 1024 ? o.n : 1024, t = 0;
        for (int64_t i = 0; i < len; i++) t += o.labels[i] >= 0;
        trunc += o.n > 1024;
        tokens += len, trained += t, n++;
        int b = 0;
        for (int64_t l = len; l > 1; l >>= 1) b++;
        hist[b]++;
    }
    reader_close(r);
    formatted_free(&o);
    const struct dataset_stats *s = &ds->stats;
    EXPECT(n == 200 && s->n_records == 200 && s->n_sequences == 200 && ds->n == 200, "%lld", (long long)s->n_records);
    EXPECT(s->n_truncated == trunc && trunc >= 2, "truncated %lld vs %lld", (long long)s->n_truncated, (long long)trunc);
    EXPECT(s->n_tokens == tokens && ds->offsets[ds->n] == tokens, "tokens %lld vs %lld", (long long)s->n_tokens,
           (long long)tokens);
    EXPECT(s->n_trained_tokens == trained, "trained %lld vs %lld", (long long)s->n_trained_tokens, (long long)trained);
    EXPECT(!memcmp(s->hist, hist, sizeof hist), "histogram");
    EXPECT(s->n_zero_trained == 0 && s->n_dropped == 0 && s->n_skipped_rows == 0 && !s->from_cache, "zeros");
    printf("  alpaca.jsonl @1024: %lld tokens, %lld trained, %lld truncated\n", (long long)tokens, (long long)trained,
           (long long)trunc);
    dataset_free(ds);
    /* drop policy: the long rows are dropped, not counted as truncated */
    f.opt.truncation = TRUNCATION_DROP;
    ds = build1(DS "alpaca.jsonl", &f, NULL);
    EXPECT(ds && ds->stats.n_dropped == trunc && ds->stats.n_truncated == 0 && ds->n == 200 - trunc, "drop stats");
    dataset_free(ds);
}

static void test_dataset_zero_trained_and_bad_rows(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/zero.jsonl", tmpdir);
    write_text(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}\n"
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n"
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"a long question that fills the whole window of "
                     "tokens and more\"},{\"role\":\"assistant\",\"content\":\"cut\"}]}\n");
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    f.opt.seq_length = 16;
    struct dataset *ds = build1(path, &f, NULL);
    EXPECT(ds && ds->stats.n_records == 3 && ds->stats.n_zero_trained == 2 && ds->n == 1 && ds->stats.n_truncated == 1,
           "zero-trained stats");
    dataset_free(ds);
    /* nothing to train at all: an error naming the file */
    write_text(path, "{\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}\n");
    EXPECT(build1(path, &f, NULL) == NULL, "no trained record accepted");
    EXPECT_ERR("zero.jsonl: no record with a trained token (1 records read, 1 without trained tokens");
    /* bad rows: an error naming file and row, or skipped and counted */
    snprintf(path, sizeof path, "%s/bad.jsonl", tmpdir);
    write_text(path, "{\"instruction\":\"a\",\"output\":\"b\"}\n"
                     "{\"instruction\":\"a\",\"output\":\n"
                     "{\"instruction\":\"a\"}\n"
                     "{\"messages\":[]}\n"
                     "{\"instruction\":\"c\",\"output\":\"d\"}\n");
    EXPECT(build1(path, &f, NULL) == NULL, "bad rows accepted");
    EXPECT_ERR("bad.jsonl");
    EXPECT_ERR("row 1");
    const char *files[] = {path};
    struct dataset_options o = {.files = files, .n_files = 1, .skip_bad_rows = 1};
    ds = NULL;
    EXPECT(dataset_build(&ds, &o, &f) == 0, "%s", err_msg());
    EXPECT(ds && ds->n == 2 && ds->stats.n_skipped_rows == 3 && ds->stats.n_records == 2, "skipped %lld",
           ds ? (long long)ds->stats.n_skipped_rows : -1);
    dataset_free(ds);
    /* a row that fails formatting (not parsing) is reported with its row */
    write_text(path, "{\"instruction\":\"a\",\"output\":\"b\"}\n{\"instruction\":\"a\",\"output\":\"b\"}\n"
                     "{\"instruction\":\"a\"}\n");
    EXPECT(build1(path, &f, NULL) == NULL, "missing column accepted");
    EXPECT_ERR("bad.jsonl: row 2: missing column \"output\"");
}

static char *cache_file(const struct dataset *ds, const char *suffix) { return xasprintf("%s%s", ds->cache_path, suffix); }

static void damage(const char *path, long at, int truncate_to) {
    if (truncate_to >= 0) {
        EXPECT(truncate(path, truncate_to) == 0, "truncate %s", path);
        return;
    }
    FILE *f = fopen(path, "r+b");
    EXPECT(f != NULL, "open %s", path);
    if (!f) return;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void test_dataset_cache(void) {
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    struct formatter f = ds_fmt(1024);
    struct dataset *ref = build1(DS "alpaca.jsonl", &f, NULL);
    struct dataset *a = build1(DS "alpaca.jsonl", &f, cache);
    EXPECT(a && !a->stats.from_cache && same_ds(ref, a), "first build");
    if (!a || !ref) return;
    /* Megatron MMIDIDX headers and sizes */
    char *idx = cache_file(a, ".idx"), *bin = cache_file(a, ".bin"), *midx = cache_file(a, "_mask.idx"),
         *mbin = cache_file(a, "_mask.bin"), *meta = cache_file(a, ".json");
    size_t ilen = 0, blen = 0, mlen = 0;
    char *ib = file_read_all(idx, &ilen), *mb = file_read_all(midx, NULL), *bb = file_read_all(bin, &blen),
         *mm = file_read_all(mbin, &mlen);
    EXPECT(ib && !memcmp(ib, "MMIDIDX\0\0", 9) && ib[9] == 1 && ib[17] == 4, "ids index header");
    EXPECT(mb && !memcmp(mb, "MMIDIDX\0\0", 9) && mb[17] == 1, "mask index header");
    int64_t nseq = 0, ndoc = 0;
    if (ib) memcpy(&nseq, ib + 18, 8), memcpy(&ndoc, ib + 26, 8);
    EXPECT(nseq == 200 && ndoc == 201 && ilen == 34 + 12 * 200 + 8 * 201, "index counts %lld %lld", (long long)nseq,
           (long long)ndoc);
    EXPECT(blen == 4 * (size_t)ref->offsets[ref->n] && mlen == (size_t)ref->offsets[ref->n], "bin sizes");
    EXPECT(bb && !memcmp(bb, ref->ids, blen) && mm && !memcmp(mm, ref->mask, mlen), "bin contents");
    free(ib), free(mb), free(bb), free(mm);
    /* cached reload: identical, from_cache, same stats */
    struct dataset *b = build1(DS "alpaca.jsonl", &f, cache);
    EXPECT(b && b->stats.from_cache && same_ds(ref, b), "cached reload");
    if (b) {
        EXPECT(b->stats.n_records == a->stats.n_records && b->stats.n_truncated == a->stats.n_truncated &&
                   b->stats.n_tokens == a->stats.n_tokens && b->stats.n_trained_tokens == a->stats.n_trained_tokens &&
                   !memcmp(b->stats.hist, a->stats.hist, sizeof a->stats.hist),
               "cached stats");
        EXPECT(!strcmp(a->cache_path, b->cache_path), "same key");
    }
    dataset_free(b);
    /* damaged caches are detected and rebuilt, never trusted */
    struct {
        const char *what;
        const char *path;
        long at;
        int trunc;
    } dmg[] = {
        {"truncated ids .bin", bin, 0, (int)blen - 4},
        {"flipped byte in ids .bin", bin, (long)blen / 2, -1},
        {"flipped byte in mask .bin", mbin, (long)mlen / 3, -1},
        {"flipped size in ids .idx", idx, 40, -1},
        {"flipped size in mask .idx", midx, 34 + 4 * 7, -1},
        {"truncated mask .idx", midx, 0, 100},
        {"empty .json", meta, 0, 0},
        {"garbled .json", meta, 20, -1},
    };
    for (size_t i = 0; i < sizeof dmg / sizeof dmg[0]; i++) {
        damage(dmg[i].path, dmg[i].at, dmg[i].trunc);
        struct dataset *c = build1(DS "alpaca.jsonl", &f, cache);
        EXPECT(c && !c->stats.from_cache && same_ds(ref, c), "%s: not rebuilt", dmg[i].what);
        dataset_free(c);
        c = build1(DS "alpaca.jsonl", &f, cache); /* the rebuild rewrote the cache */
        EXPECT(c && c->stats.from_cache && same_ds(ref, c), "%s: cache not rewritten", dmg[i].what);
        dataset_free(c);
    }
    unlink(bin);
    struct dataset *c = build1(DS "alpaca.jsonl", &f, cache);
    EXPECT(c && !c->stats.from_cache && same_ds(ref, c), "missing .bin");
    dataset_free(c);
    /* the key changes with the options, the files and the salt */
    struct formatter g = ds_fmt(512);
    c = build1(DS "alpaca.jsonl", &g, cache);
    EXPECT(c && !c->stats.from_cache && strcmp(c->cache_path, a->cache_path), "seq_length in key");
    dataset_free(c);
    g = ds_fmt(1024);
    g.opt.loss_on = LOSS_ON_ALL;
    c = build1(DS "alpaca.jsonl", &g, cache);
    EXPECT(c && !c->stats.from_cache && strcmp(c->cache_path, a->cache_path), "loss_on in key");
    dataset_free(c);
    g = ds_fmt(1024);
    g.opt.truncation = TRUNCATION_LEFT;
    c = build1(DS "alpaca.jsonl", &g, cache);
    EXPECT(c && !c->stats.from_cache && strcmp(c->cache_path, a->cache_path), "truncation in key");
    dataset_free(c);
    g = ds_fmt(1024);
    struct column_map cols[] = {{"output", "output"}};
    g.opt.columns = cols, g.opt.n_columns = 1;
    c = build1(DS "alpaca.jsonl", &g, cache);
    EXPECT(c && !c->stats.from_cache && strcmp(c->cache_path, a->cache_path), "column mapping in key");
    dataset_free(c);
    const char *files[] = {DS "alpaca.jsonl"};
    struct dataset_options o = {.files = files, .n_files = 1, .cache_dir = cache, .cache_salt = "other tokenizer"};
    c = NULL;
    EXPECT(dataset_build(&c, &o, &f) == 0 && !c->stats.from_cache && strcmp(c->cache_path, a->cache_path), "salt");
    dataset_free(c);
    /* a data file rewritten (new mtime) is a new key */
    char copy[128];
    snprintf(copy, sizeof copy, "%s/copy.jsonl", tmpdir);
    size_t n;
    char *text = file_read_all(DS "alpaca.jsonl", &n);
    file_write_atomic(copy, text, n);
    free(text);
    struct dataset *d1 = build1(copy, &f, cache);
    struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
    utimes(copy, tv);
    struct dataset *d2 = build1(copy, &f, cache);
    EXPECT(d1 && d2 && !d2->stats.from_cache && strcmp(d1->cache_path, d2->cache_path) && same_ds(d1, d2), "mtime in key");
    dataset_free(d1), dataset_free(d2);
    free(idx), free(bin), free(midx), free(mbin), free(meta);
    dataset_free(a), dataset_free(ref);
}

/* The cache's own checksum (dataset.h), recomputed as whoever edits a cache would: the cache
 * must not trust it (its vocabulary check catches the edit). */
static uint64_t resign_hash(const void *p, size_t n) { return dataset_cache_checksum(p, n); }

/* Every cached id is checked against the vocabulary at load: ids beyond the model's
 * vocab_size and negative ids in a cache whose checksums were re-signed are never used. */
static void test_dataset_cache_ids(void) {
    char cache[128];
    snprintf(cache, sizeof cache, "%s/cache_ids", tmpdir);
    struct formatter f = ds_fmt(1024);
    const char *files[] = {DS "alpaca.jsonl"};
    struct dataset_options o = {.files = files, .n_files = 1, .cache_dir = cache, .cache_salt = "ids"};
    struct dataset *a = NULL, *b = NULL;
    EXPECT(dataset_build(&a, &o, &f) == 0 && !a->stats.from_cache, "first build");
    if (!a) return;
    int32_t mx = 0;
    for (int64_t i = 0; i < a->offsets[a->n]; i++) mx = a->ids[i] > mx ? a->ids[i] : mx;
    o.vocab_size = mx + 1;
    EXPECT(dataset_load_cached(&b, &o, &f) == 1, "ids below vocab_size %d: cache used", mx + 1);
    dataset_free(b), b = NULL;
    o.vocab_size = mx;
    EXPECT(dataset_load_cached(&b, &o, &f) == 0 && !b, "id %d with vocab_size %d: cache used", mx, mx);
    /* a negative id, re-signed in the .json: refused although every checksum matches */
    o.vocab_size = 0;
    char *bin = xasprintf("%s.bin", a->cache_path), *meta = xasprintf("%s.json", a->cache_path);
    size_t blen = 0;
    char *bb = file_read_all(bin, &blen), *js = file_read_all(meta, NULL);
    EXPECT(bb && js && blen >= 12, "read cache");
    if (bb && js && blen >= 12) {
        int32_t neg = -5;
        memcpy(bb + 8, &neg, 4);
        char oldh[24], newh[24];
        snprintf(oldh, sizeof oldh, "%016llx", (unsigned long long)resign_hash(a->ids, blen));
        snprintf(newh, sizeof newh, "%016llx", (unsigned long long)resign_hash(bb, blen));
        char *at = strstr(js, oldh);
        EXPECT(at != NULL, "ids_bin_hash %s in %s", oldh, meta);
        dataset_free(a), a = NULL; /* unmaps before the rewrite */
        if (at) memcpy(at, newh, 16);
        file_write_atomic(bin, bb, blen);
        file_write_atomic(meta, js, strlen(js));
        EXPECT(dataset_load_cached(&b, &o, &f) == 0 && !b, "negative id in a re-signed cache used");
        dataset_free(b), b = NULL;
        /* dataset_build rebuilds it from the data */
        EXPECT(dataset_build(&b, &o, &f) == 0 && b && !b->stats.from_cache, "rebuilt");
        int neg_ids = 0;
        for (int64_t i = 0; b && i < b->offsets[b->n]; i++) neg_ids += b->ids[i] < 0;
        EXPECT(neg_ids == 0, "%d negative ids after the rebuild", neg_ids);
        dataset_free(b);
    }
    free(bb), free(js), free(bin), free(meta);
    dataset_free(a);
}

/* ---------------------------------------------------------------- (d) packing */

static void plan_check(const struct row_plan *p, const struct dataset *ds, int cap) {
    int *seen = xcalloc((size_t)ds->n, sizeof(int));
    int bad_len = 0, bad_cap = 0;
    for (int64_t r = 0; r < p->n_rows; r++) {
        int64_t sum = 0;
        for (int64_t k = p->row_start[r]; k < p->row_start[r + 1]; k++) {
            seen[p->seqs[k]]++;
            sum += dataset_len(ds, p->seqs[k]);
        }
        bad_len += sum != p->row_len[r];
        bad_cap += cap > 0 && sum > cap;
    }
    int once = 1;
    for (int64_t i = 0; i < ds->n; i++) once &= seen[i] == 1;
    EXPECT(once, "every sequence exactly once per epoch");
    EXPECT(bad_len == 0 && bad_cap == 0, "%d rows with a wrong length, %d over %d", bad_len, bad_cap, cap);
    EXPECT(p->row_start[p->n_rows] == ds->n, "all sequences placed");
    free(seen);
}

static int same_plan(const struct row_plan *a, const struct row_plan *b) {
    return a->n_rows == b->n_rows && !memcmp(a->row_start, b->row_start, 8 * (size_t)(a->n_rows + 1)) &&
           !memcmp(a->seqs, b->seqs, 8 * (size_t)a->row_start[a->n_rows]);
}

static void test_pack_plan(void) {
    struct formatter f = ds_fmt(2048);
    struct dataset *ds = build1(DS "alpaca.jsonl", &f, NULL);
    EXPECT(ds != NULL, "%s", err_msg());
    if (!ds) return;
    struct pack_options po = {.packing = 1, .shuffle = 1, .seq_length = 2048, .seed = 42};
    struct row_plan p0, p0b, p1, s2, ns0, ns1, up;
    row_plan_build(&p0, ds, &po, 0);
    plan_check(&p0, ds, 2048);
    int64_t total = ds->offsets[ds->n], min_rows = (total + 2047) / 2048;
    EXPECT(p0.n_rows >= min_rows && p0.n_rows <= min_rows + min_rows / 10 + 2, "%lld rows for %lld tokens",
           (long long)p0.n_rows, (long long)total);
    printf("  packing: %lld sequences, %lld tokens -> %lld rows of 2048 (lower bound %lld)\n", (long long)ds->n,
           (long long)total, (long long)p0.n_rows, (long long)min_rows);
    row_plan_build(&p0b, ds, &po, 0);
    EXPECT(same_plan(&p0, &p0b), "deterministic for (seed, epoch)");
    row_plan_build(&p1, ds, &po, 1);
    plan_check(&p1, ds, 2048);
    EXPECT(!same_plan(&p0, &p1), "epochs differ with shuffle");
    po.seed = 43;
    row_plan_build(&s2, ds, &po, 0);
    EXPECT(!same_plan(&p0, &s2), "seeds differ");
    po.shuffle = 0;
    row_plan_build(&ns0, ds, &po, 0);
    row_plan_build(&ns1, ds, &po, 1);
    plan_check(&ns0, ds, 2048);
    EXPECT(same_plan(&ns0, &ns1), "no shuffle: every epoch the same");
    po.packing = 0, po.shuffle = 1;
    row_plan_build(&up, ds, &po, 3);
    plan_check(&up, ds, 0);
    int one = up.n_rows == ds->n;
    for (int64_t r = 0; one && r < up.n_rows; r++) one = up.row_start[r + 1] - up.row_start[r] == 1;
    EXPECT(one, "unpacked: one sequence per row");
    int moved = 0;
    for (int64_t r = 0; r < up.n_rows; r++) moved += up.seqs[r] != r;
    EXPECT(moved > ds->n / 2, "unpacked shuffle moved only %d", moved);
    row_plan_free(&p0), row_plan_free(&p0b), row_plan_free(&p1), row_plan_free(&s2), row_plan_free(&ns0);
    row_plan_free(&ns1), row_plan_free(&up);
    dataset_free(ds);
}

/* Exact batch_fill output on a hand-made dataset of 3 sequences (lengths 3, 2, 4). */
static void test_batch_fill_exact(void) {
    int64_t offsets[] = {0, 3, 5, 9};
    int32_t ids[] = {10, 11, 12, 13, 14, 15, 16, 17, 18};
    uint8_t mask[] = {1, 1, 1, 0, 1, 1, 0, 1, 1};
    struct dataset ds = {.n = 3, .offsets = offsets, .ids = ids, .mask = mask};
    struct pack_options po = {.packing = 1, .shuffle = 0, .seq_length = 9, .seed = 1};
    struct row_plan p;
    row_plan_build(&p, &ds, &po, 0);
    EXPECT(p.n_rows == 1 && p.row_len[0] == 9, "one full row");
    struct batch b = {0};
    batch_fill(&b, &ds, &p, 0, 1, 0);
    /* best-fit decreasing: seq 2 (4 tokens), seq 0 (3), seq 1 (2) */
    int32_t wi[] = {15, 16, 17, 18, 10, 11, 12, 13, 14}, wp[] = {0, 1, 2, 3, 0, 1, 2, 0, 1},
            wl[] = {-100, -100, 17, 18, -100, 11, 12, -100, 14};
    EXPECT(b.B == 1 && b.T == 9 && !memcmp(b.ids, wi, sizeof wi), "ids");
    EXPECT(!memcmp(b.pos, wp, sizeof wp), "positions restart per sequence");
    EXPECT(!memcmp(b.labels, wl, sizeof wl), "labels: -100 at each sequence's first token and unmasked tokens");
    EXPECT(b.n_tokens == 9 && b.n_trained == 5, "%lld tokens %lld trained", (long long)b.n_tokens, (long long)b.n_trained);
    row_plan_free(&p);
    /* capacity 8: rows [seq 2, seq 0] (7 tokens) and [seq 1] (2); padded to 7 */
    po.seq_length = 8;
    row_plan_build(&p, &ds, &po, 0);
    EXPECT(p.n_rows == 2 && p.row_len[0] == 7 && p.row_len[1] == 2, "two rows");
    batch_fill(&b, &ds, &p, 0, 2, 99);
    int32_t wi2[] = {15, 16, 17, 18, 10, 11, 12, 13, 14, 99, 99, 99, 99, 99},
            wl2[] = {-100, -100, 17, 18, -100, 11, 12, -100, 14, -100, -100, -100, -100, -100},
            wp2[] = {0, 1, 2, 3, 0, 1, 2, 0, 1, 0, 1, 2, 3, 4};
    EXPECT(b.B == 2 && b.T == 7, "B %d T %d", b.B, b.T);
    EXPECT(!memcmp(b.ids, wi2, sizeof wi2) && !memcmp(b.labels, wl2, sizeof wl2) && !memcmp(b.pos, wp2, sizeof wp2),
           "padded batch");
    EXPECT(b.n_tokens == 9 && b.n_trained == 5, "padded counts");
    batch_fill(&b, &ds, &p, 1, 0, 99);
    EXPECT(b.B == 0 && b.T == 0 && b.n_tokens == 0, "empty batch");
    row_plan_free(&p);
    batch_free(&b);
}

/* batch_fill on the real packed fixture: positions restart at every boundary, first tokens -100. */
static void test_batch_fill_packed(void) {
    struct formatter f = ds_fmt(2048);
    struct dataset *ds = build1(DS "messages.jsonl", &f, NULL);
    if (!ds) return;
    struct pack_options po = {.packing = 1, .shuffle = 1, .seq_length = 2048, .seed = 7};
    struct row_plan p;
    row_plan_build(&p, ds, &po, 2);
    struct batch b = {0};
    int bad = 0;
    int64_t trained = 0, starts = 0;
    for (int64_t row = 0; row < p.n_rows; row += 4) {
        int nr = (int)(p.n_rows - row < 4 ? p.n_rows - row : 4);
        batch_fill(&b, ds, &p, row, nr, ENDOFTEXT);
        for (int r = 0; r < nr; r++) {
            int t = 0;
            for (int64_t k = p.row_start[row + r]; k < p.row_start[row + r + 1]; k++) {
                int64_t s = p.seqs[k], o = ds->offsets[s];
                for (int64_t i = 0; i < dataset_len(ds, s); i++, t++) {
                    int64_t at = (int64_t)r * b.T + t;
                    int32_t want = i > 0 && ds->mask[o + i] ? ds->ids[o + i] : -100;
                    bad += b.pos[at] != i || b.ids[at] != ds->ids[o + i] || b.labels[at] != want;
                    starts += b.pos[at] == 0;
                }
            }
            for (; t < b.T; t++) bad += b.labels[(int64_t)r * b.T + t] != -100 || b.ids[(int64_t)r * b.T + t] != ENDOFTEXT;
        }
        trained += b.n_trained;
    }
    EXPECT(bad == 0, "%d wrong tokens", bad);
    EXPECT(starts == ds->n, "%lld sequence starts for %lld sequences", (long long)starts, (long long)ds->n);
    int64_t want = 0; /* trained tokens minus those at a sequence start */
    for (int64_t s = 0; s < ds->n; s++)
        for (int64_t i = 1; i < dataset_len(ds, s); i++) want += ds->mask[ds->offsets[s] + i];
    EXPECT(trained == want, "%lld trained vs %lld", (long long)trained, (long long)want);
    row_plan_free(&p);
    batch_free(&b);
    dataset_free(ds);
}

/* Per-message "train"/"weight", train_on_eos: false, and U+0000 in a conversation. */
static void test_format_message_choices(void) {
    struct formatter f = fmt_make(chatml, NULL, ENDOFTEXT);
    struct formatted o = {0};
    EXPECT(format_json(&f,
                       "{\"messages\":[{\"role\":\"user\",\"content\":\"U1\",\"train\":true},"
                       "{\"role\":\"assistant\",\"content\":\"A one\",\"train\":false},{\"role\":\"user\",\"content\":\"U2\"},"
                       "{\"role\":\"assistant\",\"content\":\"A two\"}]}",
                       "m.jsonl", 0, &o) == 0,
           "%s", err_msg());
    char *tr = trained_text(&o);
    EXPECT_STR(tr, "U1<|im_end|>A two<|im_end|>");
    free(tr);
    /* ShareGPT turns carry weight 0/1 */
    EXPECT(format_json(&f,
                       "{\"conversations\":[{\"from\":\"human\",\"value\":\"U1\"},{\"from\":\"gpt\",\"value\":\"A one\","
                       "\"weight\":0},{\"from\":\"human\",\"value\":\"U2\"},{\"from\":\"gpt\",\"value\":\"A two\"}]}",
                       "s.jsonl", 0, &o) == 0,
           "%s", err_msg());
    tr = trained_text(&o);
    EXPECT_STR(tr, "A two<|im_end|>");
    free(tr);
    EXPECT(format_json(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"U\",\"weight\":0.5}]}", "w.jsonl", 3, &o) != 0,
           "weight 0.5 must fail");
    EXPECT_ERR("w.jsonl: row 3: messages[0].weight must be 0 or 1");
    /* loss_on all with train: false leaves that message out */
    f.opt.loss_on = LOSS_ON_ALL;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 0, &o) == 0, "%s", err_msg());
    int64_t all = count_trained(&o);
    EXPECT(format_json(&f,
                       "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U1\"},"
                       "{\"role\":\"assistant\",\"content\":\"A one\",\"train\":false},{\"role\":\"user\",\"content\":\"U2\"},"
                       "{\"role\":\"assistant\",\"content\":\"A two\"}]}",
                       "m.jsonl", 0, &o) == 0,
           "%s", err_msg());
    EXPECT(count_trained(&o) == all - 3, "all but 'A one<|im_end|>' (3 tokens): %lld of %lld",
           (long long)count_trained(&o), (long long)all);
    /* train_on_eos: false */
    f.opt.loss_on = LOSS_ON_ASSISTANT;
    f.opt.no_eos_loss = 1;
    EXPECT(format_json(&f, CONV_MSGS, "m.jsonl", 0, &o) == 0, "%s", err_msg());
    tr = trained_text(&o);
    EXPECT_STR(tr, "A oneA two");
    free(tr);
    f.opt.no_eos_loss = 0;
    /* U+0000 (C0 80 in the record) is tokenized as the NUL character */
    EXPECT(format_json(&f, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":"
                           "\"a\xC0\x80" "b\"}]}",
                       "n.jsonl", 0, &o) == 0,
           "%s", err_msg());
    tr = trained_text(&o);
    EXPECT(tr && !memcmp(tr, "a\0b<|im_end|>", 14), "NUL trained as a character");
    free(tr);
    formatted_free(&o);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/csft_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    char *src = file_read_all(CHATFIX "qwen3.jinja", NULL);
    if (tokenizer_load(&qwen, QWEN) || !src || chat_template_parse(&qwen3, src, "qwen3.jinja") ||
        chat_template_builtin(&chatml, "chatml") || chat_template_builtin(&alpaca, "alpaca")) {
        fprintf(stderr, "setup: %s\n", err_msg());
        return 1;
    }
    free(src);
    chat_template_set_special(qwen3, "eos_token", "<|im_end|>");
    chat_template_set_special(qwen3, "pad_token", "<|endoftext|>");
    RUN(test_golden_ids);
    RUN(test_format_alpaca_chat);
    RUN(test_format_alpaca_prompt);
    RUN(test_format_messages_loss_on);
    RUN(test_format_message_choices);
    RUN(test_format_text_tokenized);
    RUN(test_truncation);
    RUN(test_column_mapping);
    RUN(test_format_errors);
    RUN(test_dataset_formats_agree);
    RUN(test_dataset_stats);
    RUN(test_dataset_zero_trained_and_bad_rows);
    RUN(test_dataset_cache);
    RUN(test_dataset_cache_ids);
    RUN(test_pack_plan);
    RUN(test_batch_fill_exact);
    RUN(test_batch_fill_packed);
    tokenizer_free(qwen);
    if (llama3_tk) tokenizer_free(llama3_tk);
    if (llama3_tmpl) chat_template_free(llama3_tmpl);
    chat_template_free(qwen3), chat_template_free(chatml), chat_template_free(alpaca);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(cmd);
    return TEST_SUMMARY("data");
}
