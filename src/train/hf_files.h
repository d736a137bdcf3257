/* hf_files: the files Hugging Face's trainers write beside a saved model or adapter, for the
 * hub and for whoever loads the folder next: a model card (README.md with YAML front matter:
 * base model, method, data, hyper-parameters, final losses) and the chat template used in
 * training, stored where transformers reads it. */
#pragma once
#include <stdint.h>

#include "train/config.h"

struct chat_template;
struct lora_config;

struct model_card {
    const struct run_config *cfg;
    const struct lora_config *lora; /* NULL: full fine-tuning */
    int pretrain;                   /* csft train (loss on whole text) */
    const char *arch;               /* e.g. Qwen2ForCausalLM */
    int64_t n_params, n_trainable;
    int64_t n_records, n_sequences, n_tokens, n_trained_tokens; /* the training data */
    int64_t steps;
    int world; /* data-parallel processes */
    double final_loss;                /* the last logged training loss; NAN if none */
    double final_eval_loss;           /* NAN when not evaluated */
    int64_t final_eval_step;
    const char *template_name;        /* chat template / prompt format used, or NULL */
};

/* Writes dir/README.md. -1 + err on a write error. */
int model_card_write(const char *dir, const struct model_card *c);
/* Stores the chat template a run used in the saved tokenizer files of dir, as transformers reads
 * them: dir/chat_template.jinja when that file is there (it wins over tokenizer_config.json),
 * else tokenizer_config.json's "chat_template" (the file created if missing). Nothing for a
 * template without Jinja source (the Alpaca prompts). */
int chat_template_save(const char *dir, const struct chat_template *t);
