/* hf_files: see hf_files.h. */
#include "train/hf_files.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "model/model.h"
#include "tok/chat.h"

static const char *sched_name(enum lr_schedule_type t) {
    switch (t) {
    case LR_SCHEDULE_CONSTANT: return "constant";
    case LR_SCHEDULE_LINEAR: return "linear";
    case LR_SCHEDULE_COSINE: return "cosine";
    case LR_SCHEDULE_WSD: return "wsd";
    }
    return "?";
}

static const char *format_name(enum data_format f) {
    switch (f) {
    case DATA_FORMAT_AUTO: return "auto";
    case DATA_FORMAT_ALPACA: return "alpaca";
    case DATA_FORMAT_MESSAGES: return "messages";
    case DATA_FORMAT_SHAREGPT: return "sharegpt";
    case DATA_FORMAT_TEXT: return "text";
    case DATA_FORMAT_TOKENIZED: return "tokenized";
    case DATA_FORMAT_MINDFORMERS_ALPACA: return "mindformers_alpaca";
    }
    return "?";
}

/* A YAML double-quoted scalar. */
static void yq(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

int model_card_write(const char *dir, const struct model_card *c) {
    const struct run_config *cfg = c->cfg;
    const struct config_dataset *d = &cfg->train_dataset;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "---\nbase_model: ");
    yq(f, cfg->load_checkpoint);
    fprintf(f, "\nlibrary_name: %s\ntags:\n- csft\n- %s\n%s", c->lora ? "peft" : "transformers",
            c->pretrain ? "continued-pretraining" : "sft", c->lora ? "- lora\n" : "");
    fprintf(f, "---\n\n# %s\n\n", c->lora ? "LoRA adapter" : "Fine-tuned model");
    fprintf(f, "Trained with csft (`csft %s`) from `%s`.\n\n", c->pretrain ? "train" : "finetune", cfg->load_checkpoint);
    fprintf(f, "## Method\n\n");
    if (c->lora) {
        fprintf(f, "- LoRA: r %d, lora_alpha %g, lora_dropout %g%s; target_modules ", c->lora->rank,
                (double)c->lora->alpha, (double)c->lora->dropout, c->lora->use_rslora ? ", rsLoRA" : "");
        if (c->lora->target_regex) fprintf(f, "`%s` (regex)", c->lora->target_regex);
        for (int i = 0, n = 0; !c->lora->target_regex && i < N_LIN; i++)
            if (c->lora->targets[i]) fprintf(f, "%s%s", n++ ? ", " : "", lin_short[i]);
        fputc('\n', f);
    } else {
        fprintf(f, "- Full fine-tuning of every weight\n");
    }
    fprintf(f, "- Architecture %s, %lld parameters, %lld trained\n", c->arch, (long long)c->n_params,
            (long long)c->n_trainable);
    fprintf(f, "- Loss on %s\n\n", c->pretrain ? "the whole text"
                                   : d->loss_on == LOSS_ON_ASSISTANT ? "the assistant turns"
                                   : d->loss_on == LOSS_ON_LAST_TURN ? "the last assistant turn"
                                                                     : "every token");
    fprintf(f, "## Data\n\n");
    for (int i = 0; i < d->n_data_files; i++) fprintf(f, "- `%s`\n", d->data_files[i]);
    fprintf(f, "- format %s%s%s; %lld records -> %lld sequences, %lld tokens (%lld trained); seq_length %d, "
               "packing %s\n\n",
            format_name(d->format), c->template_name ? ", prompt format / chat template " : "",
            c->template_name ? c->template_name : "", (long long)c->n_records, (long long)c->n_sequences,
            (long long)c->n_tokens, (long long)c->n_trained_tokens, d->seq_length, d->packing ? "on" : "off");
    fprintf(f, "## Hyper-parameters\n\n| key | value |\n|---|---|\n");
    fprintf(f, "| optimizer | AdamW (betas %g, %g; eps %g; weight_decay %g) |\n", cfg->optimizer.betas[0],
            cfg->optimizer.betas[1], cfg->optimizer.eps, cfg->optimizer.weight_decay);
    fprintf(f, "| learning_rate | %g |\n| lr_schedule | %s (warmup_steps %lld, warmup_ratio %g, min_lr %g) |\n",
            cfg->optimizer.learning_rate, sched_name(cfg->lr_schedule.type), (long long)cfg->lr_schedule.warmup_steps,
            cfg->lr_schedule.warmup_ratio, cfg->lr_schedule.min_lr);
    fprintf(f, "| batch_size x gradient_accumulation_steps | %d x %d |\n", cfg->runner_config.batch_size,
            cfg->runner_config.gradient_accumulation_steps);
    fprintf(f, "| epochs / max_steps | %d / %lld (%lld steps run) |\n", cfg->runner_config.epochs,
            (long long)cfg->runner_config.max_steps, (long long)c->steps);
    fprintf(f, "| max_grad_norm | %g |\n| seed | %lld |\n| data parallel processes | %d |\n\n", cfg->max_grad_norm,
            (long long)cfg->seed, c->world);
    fprintf(f, "## Results\n\n");
    if (isfinite(c->final_loss)) fprintf(f, "- final training loss: %.4f (step %lld)\n", c->final_loss, (long long)c->steps);
    else fprintf(f, "- final training loss: not logged\n");
    if (isfinite(c->final_eval_loss))
        fprintf(f, "- final eval loss: %.4f, perplexity %.3f (step %lld)\n", c->final_eval_loss, exp(c->final_eval_loss),
                (long long)c->final_eval_step);
    fprintf(f, "\nEvery step's loss, learning rate and gradient norm: `metrics.jsonl`; the full resolved "
               "configuration: `config.yaml`.\n");
    fclose(f);
    char *path = path_join(dir, "README.md");
    int rc = file_write_atomic(path, buf, len);
    free(path), free(buf);
    return rc;
}

int chat_template_save(const char *dir, const struct chat_template *t) {
    const char *src = t ? chat_template_source(t) : NULL;
    if (!src) return 0;
    char *jinja = path_join(dir, "chat_template.jinja"), *tc = path_join(dir, "tokenizer_config.json");
    int rc = 0;
    if (file_exists(jinja)) {
        rc = file_write_atomic(jinja, src, strlen(src));
    } else {
        char *text = file_exists(tc) ? file_read_all(tc, NULL) : xstrdup("{}");
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        if (!cJSON_IsObject(j)) {
            rc = err_set("%s: not a JSON object; chat template not saved", tc);
        } else {
            const cJSON *old = cJSON_GetObjectItemCaseSensitive(j, "chat_template");
            if (!cJSON_IsString(old) || strcmp(old->valuestring, src) != 0) {
                cJSON_DeleteItemFromObjectCaseSensitive(j, "chat_template");
                cJSON_AddStringToObject(j, "chat_template", src);
                char *out = cJSON_Print(j);
                rc = file_write_atomic(tc, out, strlen(out));
                free(out);
            }
        }
        cJSON_Delete(j);
        free(text);
    }
    free(jinja), free(tc);
    return rc;
}
