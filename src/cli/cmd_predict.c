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

/* Generates for one prompt (instruction, optional input). json: writes a JSONL record, and
 * when `reference` is given also whether the output matches it exactly (after trimming). */
static int generate_one(struct model *m, const struct pipeline *p, const struct run_config *cfg, const char *prompt,
                        const char *input, const char *reference, int raw, const int32_t *stops, int n_stops, FILE *out,
                        int json, int *match) {
    int32_t *ids;
    int64_t n;
    if (!raw && p->fmt.opt.format == DATA_FORMAT_MINDFORMERS_ALPACA) { /* their pieces, tokenized one by one */
        struct formatted fo = {0};
        if (format_mindformers_alpaca_prompt(&p->fmt, prompt, input, &fo)) return formatted_free(&fo), -1;
        ids = fo.ids, n = fo.n;
        free(fo.labels);
    } else {
        char *text = render_prompt(p, prompt, input, raw);
        if (!text) return -1;
        if (tokenizer_encode(p->tk, text, strlen(text), &ids, &n)) return free(text), -1;
        free(text);
    }
    if (n == 0) return free(ids), err_set("empty prompt");
    const struct config_predict *pc = &cfg->predict;
    int32_t *gen = xmalloc(sizeof(int32_t) * (size_t)(pc->max_new_tokens + 1));
    int ng = model_generate(m, ids, (int)n, gen, pc->max_new_tokens, stops, n_stops, pc->do_sample ? (float)pc->temperature : 0.0f,
                            pc->top_k, (float)pc->top_p, (uint64_t)cfg->seed);
    char *res = NULL;
    int rc = tokenizer_decode(p->tk, gen, ng, 1, &res, NULL);
    if (rc == 0) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "prompt", prompt);
            if (input) cJSON_AddStringToObject(o, "input", input);
            cJSON_AddStringToObject(o, "output", res);
            if (reference) {
                const char *a = res, *b = reference;
                while (*a == ' ' || *a == '\n') a++;
                while (*b == ' ' || *b == '\n') b++;
                size_t la = strlen(a), lb = strlen(b);
                while (la && (a[la - 1] == ' ' || a[la - 1] == '\n')) la--;
                while (lb && (b[lb - 1] == ' ' || b[lb - 1] == '\n')) lb--;
                *match = la == lb && memcmp(a, b, la) == 0;
                cJSON_AddStringToObject(o, "reference", reference);
                cJSON_AddBoolToObject(o, "exact_match", *match);
            }
            char *s = cJSON_PrintUnformatted(o);
            fprintf(out, "%s\n", s);
            free(s), cJSON_Delete(o);
        } else {
            fprintf(out, "%s\n", res);
        }
        fflush(out);
    }
    free(res), free(gen), free(ids);
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
    FILE *out = stdout;
    if (cfg->predict.output_file && cfg->predict.output_file[0] && !(out = fopen(cfg->predict.output_file, "w"))) {
        err_set("%s: cannot open for writing", cfg->predict.output_file);
        rc = -1;
    }
    int raw = getenv("CSFT_RAW_PROMPT") != NULL;
    if (rc == 0 && cfg->predict.prompt && cfg->predict.prompt[0]) {
        rc = generate_one(&m, &p, cfg, cfg->predict.prompt, NULL, NULL, raw, stops, n_stops, out, 0, NULL);
    } else if (rc == 0 && cfg->predict.input_file && cfg->predict.input_file[0]) {
        FILE *f = fopen(cfg->predict.input_file, "r");
        if (!f) rc = err_set("%s: cannot open", cfg->predict.input_file);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int n_ref = 0, n_match = 0;
        while (rc == 0 && f && (len = getline(&line, &cap, f)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len == 0) continue;
            const char *prompt = line;
            cJSON *j = line[0] == '{' ? cJSON_Parse(line) : NULL;
            const cJSON *pj = cJSON_GetObjectItem(j, "prompt");
            if (!pj) pj = cJSON_GetObjectItem(j, "instruction");
            if (cJSON_IsString(pj)) prompt = pj->valuestring;
            const char *input = cJSON_GetStringValue(cJSON_GetObjectItem(j, "input"));
            const char *ref = cJSON_GetStringValue(cJSON_GetObjectItem(j, "output"));
            int match = 0;
            rc = generate_one(&m, &p, cfg, prompt, input, ref, raw, stops, n_stops, out, 1, &match);
            n_ref += ref != NULL, n_match += match;
            cJSON_Delete(j);
        }
        if (rc == 0 && n_ref)
            fprintf(stderr, "exact match: %d/%d (%.1f%%)\n", n_match, n_ref, 100.0 * n_match / n_ref);
        free(line);
        if (f) fclose(f);
    } else if (rc == 0) { /* a chat on the terminal: one prompt per line */
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        fprintf(stderr, "csft predict: type a prompt and press enter (Ctrl-D ends)\n> ");
        while (rc == 0 && (len = getline(&line, &cap, stdin)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
            if (len) rc = generate_one(&m, &p, cfg, line, NULL, NULL, raw, stops, n_stops, out, 0, NULL);
            fprintf(stderr, "> ");
        }
        free(line);
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
    {"--max-new-tokens", "predict.max_new_tokens", NULL, 0},
    {"--temperature", "predict.temperature", "predict.do_sample=true", 0},
    {"--top-k", "predict.top_k", NULL, 0},
    {"--top-p", "predict.top_p", NULL, 0},
    {"--chat-template", "train_dataset.chat_template", NULL, 0},
};

int cmd_predict(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: csft predict [--config run.yaml] [--model DIR] [--adapter DIR]\n"
               "                    [--prompt TEXT | --input-file FILE] [--output-file FILE]\n"
               "                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]\n"
               "                    [--chat-template alpaca|chatml|FILE] [--set key=value ...]\n\n"
               "Generates from a model (HF folder), optionally with a PEFT adapter. The prompt is wrapped the way\n"
               "training saw it: the model's chat template with a generation prompt, or the Alpaca prompt\n"
               "(CSFT_RAW_PROMPT=1 sends the text as is). Without --prompt/--input-file it reads prompts from the\n"
               "terminal, one per line. --input-file: one prompt per line, or JSONL with \"prompt\"/\"instruction\"\n"
               "(+ \"input\"); writes JSONL {prompt, output}; records with an \"output\" are scored (exact match). Greedy unless --temperature (sampling with top-k/top-p). Stops at\n"
               "the model's end tokens (generation_config.json, config.json, tokenizer eos, end-of-turn).\n");
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
};

int cmd_eval(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: csft eval [--config run.yaml] [--model DIR] [--adapter DIR] [--data FILE] [--set key=value ...]\n\n"
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
    const char *base = NULL, *adapter = NULL, *out = NULL, *dtype = "float32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: csft merge --base DIR --adapter DIR --out DIR [--dtype float32|bfloat16]\n\n"
                   "Merges a PEFT LoRA adapter into its base model (W += scaling * B A) and writes a new HF model\n"
                   "folder (config, safetensors, tokenizer and generation files of the base).\n");
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
    if (strcmp(dtype, "float32") && strcmp(dtype, "bfloat16")) {
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
    int rc = model_save(&m, out, !strcmp(dtype, "bfloat16"), (size_t)5 << 30);
    static const char *extra[] = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                  "special_tokens_map.json", "generation_config.json", "chat_template.jinja"};
    for (size_t i = 0; rc == 0 && i < sizeof extra / sizeof extra[0]; i++) rc = file_copy_if_exists(base, out, extra[i]);
    model_free(&m);
    if (rc) return cli_fail("merge");
    printf("merged %s into %s -> %s\n", adapter, base, out);
    return 0;
}
