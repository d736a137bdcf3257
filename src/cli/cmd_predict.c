/* csft predict / eval / merge: generation from a model (with an optional adapter), loss and
 * perplexity on a dataset, and merging an adapter into its base model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_config.h"
#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "model/lora.h"
#include "model/model.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"
#include "train/config_mindformers.h"
#include "train/pipeline.h"
#include "train/step.h"

static int load_model_and_adapter(struct model *m, const struct run_config *cfg) {
    char *shape = config_hf_config_json(cfg); /* the shape of a .ckpt with no config.json beside it */
    int bad = model_load_from(m, cfg->load_checkpoint, shape, cfg->model.num_layers, 0, 0);
    free(shape);
    if (bad) return -1;
    const char *ad = cfg->model.pet.adapter_path;
    if (ad && ad[0] && lora_load_adapter(m, ad)) return err_wrap("adapter_path");
    return 0;
}

/* End tokens: generation_config.json eos_token_id (int or list), config.json's, the tokenizer's
 * eos_token, the usual end-of-turn tokens and the one the chat template writes. */
static int stop_ids(const struct model *m, const struct pipeline *p, const char *dir, int32_t *ids) {
    int n = 0;
    for (int i = 0; i < m->cfg.n_eos && n < 16; i++) ids[n++] = m->cfg.eos_token_ids[i];
    char *gp = path_join(dir, "generation_config.json");
    char *text = file_exists(gp) ? file_read_all(gp, NULL) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    const cJSON *e = cJSON_GetObjectItem(j, "eos_token_id"), *x;
    if (cJSON_IsNumber(e) && e->valueint >= 0) ids[n++] = e->valueint;
    else if (cJSON_IsArray(e)) cJSON_ArrayForEach(x, e) if (cJSON_IsNumber(x) && n < 16) ids[n++] = x->valueint;
    cJSON_Delete(j);
    free(text), free(gp);
    if (p->eos_id >= 0 && n < 16) ids[n++] = p->eos_id;
    static const char *ends[] = {"<|im_end|>", "<|eot_id|>", "<|endoftext|>"};
    for (int i = 0; i < 3 && n < 16; i++) {
        int32_t id = tokenizer_token_id(p->tk, ends[i]);
        if (id >= 0) ids[n++] = id;
    }
    char *eot = p->tmpl ? chat_template_turn_end(p->tmpl) : NULL; /* e.g. <end_of_turn> */
    int32_t id = eot ? tokenizer_token_id(p->tk, eot) : -1;
    if (id >= 0 && n < 16) ids[n++] = id;
    free(eot);
    return n;
}

/* The prompt as the model saw its training data: the Alpaca prompt, or the chat template with
 * a generation prompt; raw: the text itself. */
static char *render_prompt(const struct pipeline *p, const char *text, const char *input, int raw) {
    if (raw) return xstrdup(text);
    char *out = NULL;
    if (p->alpaca_tmpl) {
        cJSON *vars = cJSON_CreateObject();
        cJSON_AddStringToObject(vars, "instruction", text);
        cJSON_AddStringToObject(vars, "input", input ? input : "");
        cJSON_AddStringToObject(vars, "output", "");
        cJSON *msgs = cJSON_CreateArray();
        int rc = chat_render(p->alpaca_tmpl, msgs, NULL, 0, vars, &out, NULL, NULL);
        cJSON_Delete(vars), cJSON_Delete(msgs);
        return rc ? NULL : out;
    }
    cJSON *msgs = cJSON_CreateArray(), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    char *content = input && input[0] ? xasprintf("%s\n%s", text, input) : xstrdup(text);
    cJSON_AddStringToObject(m, "content", content);
    free(content);
    cJSON_AddItemToArray(msgs, m);
    int rc = chat_render(p->tmpl, msgs, NULL, 1, NULL, &out, NULL, NULL);
    cJSON_Delete(msgs);
    return rc ? NULL : out;
}

/* A conversation (messages array) rendered with the chat template and a generation prompt; with
 * the Alpaca prompt, its first user message is the instruction. raw: the contents joined. */
static char *render_messages(const struct pipeline *p, const cJSON *msgs, int raw) {
    const cJSON *mm;
    if (raw || p->alpaca_tmpl) {
        char *text = xstrdup("");
        cJSON_ArrayForEach(mm, msgs) {
            const char *role = cJSON_GetStringValue(cJSON_GetObjectItem(mm, "role"));
            const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(mm, "content"));
            if (!content) continue;
            if (!raw && (!role || strcmp(role, "user"))) continue;
            if (!raw) return free(text), render_prompt(p, content, NULL, 0);
            char *t = xasprintf("%s%s%s", text, text[0] ? "\n" : "", content);
            free(text), text = t;
        }
        if (!raw) return free(text), (char *)(err_set("messages: no user message to answer"), NULL);
        return text;
    }
    char *out = NULL;
    return chat_render(p->tmpl, msgs, NULL, 1, NULL, &out, NULL, NULL) ? NULL : out;
}

/* One prompt to answer: the rendered text and the output record built so far. */
struct pred_item {
    char *text;      /* the prompt as the model sees it */
    cJSON *rec;      /* {prompt[, input]} or {messages} */
    char *reference; /* an expected answer to score, or NULL */
    int32_t *ids;    /* already tokenized (MindFormers' Alpaca pieces), else NULL: text is encoded */
    int64_t n_ids;
};

static void item_free(struct pred_item *it) {
    free(it->text), free(it->reference), free(it->ids);
    cJSON_Delete(it->rec);
    memset(it, 0, sizeof *it);
}

/* The prompt of an instruction (+ input): rendered text, or with format mindformers_alpaca
 * their pieces tokenized one by one as in training. 0 or -1. */
static int item_prompt(const struct pipeline *p, const char *prompt, const char *input, int raw, struct pred_item *it) {
    if (!raw && p->fmt.opt.format == DATA_FORMAT_MINDFORMERS_ALPACA) {
        struct formatted fo = {0};
        if (format_mindformers_alpaca_prompt(&p->fmt, prompt, input, &fo)) return formatted_free(&fo), -1;
        it->ids = fo.ids, it->n_ids = fo.n;
        free(fo.labels);
        it->text = xstrdup("");
        return 0;
    }
    it->text = render_prompt(p, prompt, input, raw);
    return it->text ? 0 : -1;
}

/* A line of --input-file: JSONL with "messages" (a trailing assistant message is the reference),
 * or "prompt"/"instruction" (+ "input", "output" = the reference); any other line is the prompt. */
static int item_from_line(const struct pipeline *p, const char *line, int raw, struct pred_item *it, const char *file,
                          long row) {
    memset(it, 0, sizeof *it);
    cJSON *j = line[0] == '{' ? cJSON_Parse(line) : NULL;
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    it->rec = cJSON_CreateObject();
    if (cJSON_IsArray(msgs)) {
        cJSON *m = cJSON_Duplicate(msgs, 1);
        int n = cJSON_GetArraySize(m);
        const cJSON *last = cJSON_GetArrayItem(m, n - 1);
        const char *role = cJSON_GetStringValue(cJSON_GetObjectItem(last, "role"));
        if (n > 0 && role && !strcmp(role, "assistant")) {
            const char *ref = cJSON_GetStringValue(cJSON_GetObjectItem(last, "content"));
            if (ref) it->reference = xstrdup(ref);
            cJSON_DeleteItemFromArray(m, n - 1);
        }
        it->text = render_messages(p, m, raw);
        cJSON_AddItemToObject(it->rec, "messages", m);
    } else {
        const cJSON *pj = cJSON_GetObjectItem(j, "prompt");
        if (!pj) pj = cJSON_GetObjectItem(j, "instruction");
        const char *prompt = cJSON_IsString(pj) ? pj->valuestring : line;
        const char *input = cJSON_GetStringValue(cJSON_GetObjectItem(j, "input"));
        const char *ref = cJSON_GetStringValue(cJSON_GetObjectItem(j, "output"));
        cJSON_AddStringToObject(it->rec, "prompt", prompt);
        if (input) cJSON_AddStringToObject(it->rec, "input", input);
        if (ref) it->reference = xstrdup(ref);
        item_prompt(p, prompt, input, raw, it);
    }
    cJSON_Delete(j);
    if (!it->text) return err_wrap("%s: row %ld", file, row);
    return 0;
}

static int exact_match(const char *x, const char *y) {
    const char *a = x, *b = y;
    while (*a == ' ' || *a == '\n') a++;
    while (*b == ' ' || *b == '\n') b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la && (a[la - 1] == ' ' || a[la - 1] == '\n')) la--;
    while (lb && (b[lb - 1] == ' ' || b[lb - 1] == '\n')) lb--;
    return la == lb && memcmp(a, b, la) == 0;
}

struct predictor {
    struct model *m;
    const struct pipeline *p;
    const struct run_config *cfg;
    const int32_t *stops;
    int n_stops;
};

/* Generates for n items together (several prompts per forward pass); results[i]: malloc'd text.
 * n_prompt_tokens (may be NULL): item 0's prompt length. */
static int generate_items(const struct predictor *pr, struct pred_item *items, int n, char **results, int64_t *n_prompt_tokens) {
    const struct config_predict *pc = &pr->cfg->predict;
    int32_t **ids = xcalloc((size_t)n, sizeof *ids), **gen = xcalloc((size_t)n, sizeof *gen);
    int *np = xcalloc((size_t)n, sizeof *np), *ng = xcalloc((size_t)n, sizeof *ng), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t len;
        if (items[i].ids) {
            len = items[i].n_ids;
            ids[i] = xmalloc(sizeof(int32_t) * (size_t)(len ? len : 1));
            if (len) memcpy(ids[i], items[i].ids, sizeof(int32_t) * (size_t)len);
        } else if (tokenizer_encode(pr->p->tk, items[i].text, strlen(items[i].text), &ids[i], &len))
            rc = -1;
        else if (len == 0) rc = err_set("empty prompt");
        else if (len + pc->max_new_tokens > INT32_MAX / 2) rc = err_set("prompt of %lld tokens is too long", (long long)len);
        np[i] = (int)len;
        gen[i] = xmalloc(sizeof(int32_t) * (size_t)(pc->max_new_tokens + 1));
    }
    if (rc == 0) {
        if (n_prompt_tokens) *n_prompt_tokens = np[0];
        model_generate_batch(pr->m, (const int32_t *const *)ids, np, n, gen, ng, pc->max_new_tokens, pr->stops, pr->n_stops,
                             pc->do_sample ? (float)pc->temperature : 0.0f, pc->top_k, (float)pc->top_p,
                             (uint64_t)pr->cfg->seed);
        for (int i = 0; i < n && rc == 0; i++) rc = tokenizer_decode(pr->p->tk, gen[i], ng[i], 1, &results[i], NULL);
    }
    for (int i = 0; i < n; i++) free(ids[i]), free(gen[i]);
    free(ids), free(gen), free(np), free(ng);
    return rc;
}

/* Generates the batch and writes one JSONL record per item; counts references and matches. */
static int flush_batch(const struct predictor *pr, struct pred_item *items, int n, FILE *out, int *n_ref, int *n_match) {
    char **res = xcalloc((size_t)n, sizeof *res);
    int rc = generate_items(pr, items, n, res, NULL);
    for (int i = 0; i < n && rc == 0; i++) {
        cJSON_AddStringToObject(items[i].rec, "output", res[i]);
        if (items[i].reference) {
            int match = exact_match(res[i], items[i].reference);
            cJSON_AddStringToObject(items[i].rec, "reference", items[i].reference);
            cJSON_AddBoolToObject(items[i].rec, "exact_match", match);
            *n_ref += 1, *n_match += match;
        }
        char *sj = cJSON_PrintUnformatted(items[i].rec);
        fprintf(out, "%s\n", sj);
        free(sj);
    }
    fflush(out);
    for (int i = 0; i < n; i++) free(res[i]), item_free(&items[i]);
    free(res);
    return rc;
}

static int predict_file(const struct predictor *pr, const char *path, int raw, FILE *out) {
    FILE *f = fopen(path, "r");
    if (!f) return err_set("%s: cannot open", path);
    int B = pr->cfg->predict.batch_size, n = 0, rc = 0, n_ref = 0, n_match = 0;
    struct pred_item *items = xcalloc((size_t)B, sizeof *items);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long row = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
        row++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        rc = item_from_line(pr->p, line, raw, &items[n], path, row);
        if (rc == 0 && ++n == B) rc = flush_batch(pr, items, n, out, &n_ref, &n_match), n = 0;
    }
    if (rc == 0 && n) rc = flush_batch(pr, items, n, out, &n_ref, &n_match), n = 0;
    for (int i = 0; i < B; i++) item_free(&items[i]);
    free(items), free(line);
    fclose(f);
    if (rc == 0 && n_ref) fprintf(stderr, "exact match: %d/%d (%.1f%%)\n", n_match, n_ref, 100.0 * n_match / n_ref);
    return rc;
}

/* A chat on the terminal: the conversation so far goes into every prompt (the chat template's
 * turns; the Alpaca prompt has none, so there each line stands alone). "/reset" forgets it. */
static int predict_chat(const struct predictor *pr, int raw, FILE *out) {
    int turns = !raw && !pr->p->alpaca_tmpl, rc = 0;
    cJSON *history = cJSON_CreateArray();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    fprintf(stderr, "csft predict: type a prompt and press enter (%sCtrl-D ends)\n> ",
            turns ? "the conversation is kept; /reset forgets it; " : "");
    while (rc == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!strcmp(line, "/reset")) {
            cJSON_Delete(history), history = cJSON_CreateArray();
            fprintf(stderr, "(conversation forgotten)\n> ");
            continue;
        }
        if (len) {
            struct pred_item it = {0};
            if (turns) {
                cJSON *u = cJSON_CreateObject();
                cJSON_AddStringToObject(u, "role", "user");
                cJSON_AddStringToObject(u, "content", line);
                cJSON_AddItemToArray(history, u);
                it.text = render_messages(pr->p, history, 0);
            } else {
                it.text = render_prompt(pr->p, line, NULL, raw);
            }
            char *res = NULL;
            int64_t np = 0;
            rc = it.text ? generate_items(pr, &it, 1, &res, &np) : -1;
            if (rc == 0) {
                fprintf(out, "%s\n", res);
                fflush(out);
                if (turns) {
                    cJSON *a = cJSON_CreateObject();
                    cJSON_AddStringToObject(a, "role", "assistant");
                    cJSON_AddStringToObject(a, "content", res);
                    cJSON_AddItemToArray(history, a);
                    fprintf(stderr, "(%d turns, %lld prompt tokens)\n", cJSON_GetArraySize(history) / 2, (long long)np);
                }
            }
            free(res);
            item_free(&it);
        }
        fprintf(stderr, "> ");
    }
    free(line);
    cJSON_Delete(history);
    return rc;
}

int cmd_predict_config(struct run_config *cfg) {
    struct model m;
    struct pipeline p;
    if (load_model_and_adapter(&m, cfg)) return cli_fail("predict");
    if (pipeline_open(&p, cfg, &cfg->train_dataset, &m.cfg, 0)) {
        model_free(&m);
        return cli_fail("predict");
    }
    int32_t stops[16];
    int n_stops = stop_ids(&m, &p, cfg->load_checkpoint, stops), rc = 0;
    struct predictor pr = {&m, &p, cfg, stops, n_stops};
    FILE *out = stdout;
    if (cfg->predict.output_file && cfg->predict.output_file[0] && !(out = fopen(cfg->predict.output_file, "w"))) {
        err_set("%s: cannot open for writing", cfg->predict.output_file);
        rc = -1;
    }
    int raw = getenv("CSFT_RAW_PROMPT") != NULL;
    if (rc == 0 && cfg->predict.prompt && cfg->predict.prompt[0]) {
        struct pred_item it = {0};
        char *res = NULL;
        rc = item_prompt(&p, cfg->predict.prompt, NULL, raw, &it) ? -1 : generate_items(&pr, &it, 1, &res, NULL);
        if (rc == 0) fprintf(out, "%s\n", res);
        free(res);
        item_free(&it);
    } else if (rc == 0 && cfg->predict.input_file && cfg->predict.input_file[0]) {
        rc = predict_file(&pr, cfg->predict.input_file, raw, out);
    } else if (rc == 0) {
        rc = predict_chat(&pr, raw, out);
    }
    if (out && out != stdout) fclose(out);
    pipeline_close(&p);
    model_free(&m);
    return rc ? cli_fail("predict") : 0;
}

static const struct cli_flag predict_flags[] = {
    {"--model", "load_checkpoint", NULL, 0},
    {"--adapter", "model.model_config.pet_config.adapter_path", "model.model_config.pet_config.pet_type=lora", 0},
    {"--prompt", "predict.prompt", NULL, 0},
    {"--input-file", "predict.input_file", NULL, 0},
    {"--output-file", "predict.output_file", NULL, 0},
    {"--batch-size", "predict.batch_size", NULL, 0},
    {"--max-new-tokens", "predict.max_new_tokens", NULL, 0},
    {"--temperature", "predict.temperature", "predict.do_sample=true", 0},
    {"--top-k", "predict.top_k", NULL, 0},
    {"--top-p", "predict.top_p", NULL, 0},
    {"--chat-template", "train_dataset.chat_template", NULL, 0},
    {"--device", "device", NULL, 0},
};

int cmd_predict(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: csft predict [--config run.yaml] [--model DIR] [--adapter DIR]\n"
               "                    [--prompt TEXT | --input-file FILE [--batch-size N]] [--output-file FILE]\n"
               "                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
               "                    [--chat-template alpaca|chatml|FILE] [--device cpu|cuda|cuda-bf16]\n"
               "                    [--set key=value ...]\n\n"
               "Generates from a model (HF folder), optionally with a PEFT adapter. The prompt is wrapped the way\n"
               "training saw it: the model's chat template with a generation prompt, or the Alpaca prompt\n"
               "(CSFT_RAW_PROMPT=1 sends the text as is). Without --prompt/--input-file it chats on the terminal,\n"
               "keeping the conversation in the prompt (/reset forgets it). --input-file: one prompt per line, or\n"
               "JSONL with \"prompt\"/\"instruction\" (+ \"input\", \"output\" = the reference) or \"messages\" (rendered\n"
               "with the chat template; a final assistant message is the reference); --batch-size prompts\n"
               "(default 8) are generated together. Writes JSONL {prompt|messages, output}; records with a\n"
               "reference are scored (exact match). Greedy unless --temperature (sampling with top-k/top-p,\n"
               "seeded by seed). Stops at the model's end tokens (generation_config.json, config.json,\n"
               "tokenizer eos, end-of-turn).\n");
        return 0;
    }
    struct run_config cfg;
    int rc = cli_load_config(argc, argv, "predict", predict_flags, sizeof predict_flags / sizeof predict_flags[0],
                             RUN_MODE_PREDICT, &cfg);
    if (rc) return rc;
    rc = cmd_predict_config(&cfg);
    config_free(&cfg);
    return rc;
}

int cmd_eval_config(struct run_config *cfg) {
    const struct config_dataset *d = cfg->eval_dataset.n_data_files ? &cfg->eval_dataset : &cfg->train_dataset;
    struct model m;
    struct pipeline p;
    struct dataset *ds = NULL;
    if (load_model_and_adapter(&m, cfg)) return cli_fail("eval");
    if (pipeline_open(&p, cfg, d, &m.cfg, 0) || pipeline_dataset(&p, d, &ds)) {
        model_free(&m);
        return cli_fail("eval");
    }
    int64_t n;
    double loss = eval_dataset_loss(&m, ds, d->packing, d->seq_length, cfg->runner_config.batch_size, p.pad_id, &n);
    printf("{\"eval_loss\": %.6f, \"eval_ppl\": %.4f, \"eval_tokens\": %lld, \"sequences\": %lld}\n", loss, exp(loss),
           (long long)n, (long long)ds->n);
    dataset_free(ds);
    pipeline_close(&p);
    model_free(&m);
    return 0;
}

static const struct cli_flag eval_flags[] = {
    {"--model", "load_checkpoint", NULL, 0},
    {"--adapter", "model.model_config.pet_config.adapter_path", "model.model_config.pet_config.pet_type=lora", 0},
    {"--data", "eval_dataset.data_files", NULL, 0},
    {"--device", "device", NULL, 0},
};

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: csft eval [--config run.yaml] [--model DIR] [--adapter DIR] [--data FILE] [--device NAME]\n"
               "                 [--set key=value ...]\n\n"
               "Mean loss per trained token and perplexity of the model on eval_dataset (or train_dataset when\n"
               "eval_dataset has no data_files), formatted exactly as for training. Prints one JSON line.\n");
        return 0;
    }
    struct run_config cfg;
    int rc = cli_load_config(argc, argv, "eval", eval_flags, sizeof eval_flags / sizeof eval_flags[0], RUN_MODE_EVAL, &cfg);
    if (rc) return rc;
    rc = cmd_eval_config(&cfg);
    config_free(&cfg);
    return rc;
}

int cmd_merge(int argc, char **argv) {
    const char *base = NULL, *adapter = NULL, *out = NULL, *dtype = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: csft merge --base DIR --adapter DIR --out DIR [--dtype float32|bfloat16]\n\n"
                   "Merges a PEFT LoRA adapter into its base model (W += scaling * B A) and writes a new HF model\n"
                   "folder (config, safetensors, tokenizer and generation files of the base). The weights keep the\n"
                   "base's dtype (as PEFT's merge_and_unload does; a float16 base is written as float32) unless\n"
                   "--dtype says otherwise.\n");
            return 0;
        }
        const char **dst = !strcmp(argv[i], "--base") ? &base : !strcmp(argv[i], "--adapter") ? &adapter
                           : !strcmp(argv[i], "--out")  ? &out
                           : !strcmp(argv[i], "--dtype") ? &dtype
                                                         : NULL;
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "csft merge: %s '%s' (see csft merge --help)\n", dst ? "missing value for" : "unknown option", argv[i]);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!base || !adapter || !out) {
        fprintf(stderr, "csft merge: --base, --adapter and --out are required\n");
        return 2;
    }
    if (dtype && strcmp(dtype, "float32") && strcmp(dtype, "bfloat16")) {
        fprintf(stderr, "csft merge: --dtype must be float32 or bfloat16\n");
        return 2;
    }
    struct model m;
    if (model_load(&m, base, 0, 0)) return cli_fail("merge");
    if (lora_load_adapter(&m, adapter)) {
        model_free(&m);
        return cli_fail("merge");
    }
    lora_merge(&m);
    if (!dtype) { /* the base's own dtype */
        dtype = !strcmp(m.cfg.torch_dtype, "bfloat16") ? "bfloat16" : "float32";
        if (strcmp(m.cfg.torch_dtype, dtype))
            printf("note: the base is stored as %s; writing float32 (--dtype bfloat16 for half the size)\n", m.cfg.torch_dtype);
    }
    int rc = model_save(&m, out, !strcmp(dtype, "bfloat16"), (size_t)5 << 30);
    static const char *extra[] = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                  "special_tokens_map.json", "generation_config.json", "chat_template.jinja"};
    for (size_t i = 0; rc == 0 && i < sizeof extra / sizeof extra[0]; i++) rc = file_copy_if_exists(base, out, extra[i]);
    model_free(&m);
    if (rc) return cli_fail("merge");
    printf("merged %s into %s -> %s (%s)\n", adapter, base, out, dtype);
    return 0;
}
