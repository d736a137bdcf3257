/* pipeline: everything between a dataset section of the run config and token batches: the
 * tokenizer (its folder, or vocab_file + merges_file, or the model folder's), the chat
 * template (the model's own, a built-in, or a .jinja file), the formatter and the tokenized
 * dataset (cached when cache_dir is set). Shared by finetune/train, eval and data stats. */
#pragma once
#include <stdint.h>

#include "data/dataset.h"
#include "data/format.h"
#include "model/model_config.h"
#include "train/config.h"

struct tokenizer;
struct chat_template;

struct pipeline {
    struct tokenizer *tk;
    struct chat_template *tmpl, *alpaca_tmpl;
    struct formatter fmt;
    struct column_map *cols;
    int n_cols;
    char *tokenizer_dir; /* folder whose tokenizer files are copied next to saved models */
    char *salt;          /* cache-key identity of tokenizer + template */
    int32_t pad_id, eos_id;
    /* where the tokenizer comes from, for a deferred load (pipeline_open_lazy) */
    char *tok_vocab, *tok_merges, *tok_src;
    int32_t model_vocab; /* the model's vocab_size, 0 = unknown */
};

/* pretrain: plain-text defaults (format text when auto, loss on everything). mc: the model's
 * config (vocab size check, eos fallback), may be NULL. */
int pipeline_open(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d,
                  const struct model_config *mc, int pretrain);
/* As pipeline_open, but the tokenizer (the slow part: ~0.3 s for a 150k vocabulary) is loaded
 * only when needed: by pipeline_dataset on a cache miss, or pipeline_load_tokenizer. pad_id and
 * eos_id are resolved from tokenizer_config.json's added_tokens_decoder (else it loads at once).
 * p->tk stays NULL until loaded. */
int pipeline_open_lazy(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d,
                       const struct model_config *mc, int pretrain);
/* Loads the tokenizer of a lazily opened pipeline (no-op when loaded or not needed). */
int pipeline_load_tokenizer(struct pipeline *p);
/* The tokenized dataset: the cache when it matches, else built (loading the tokenizer if lazy). */
int pipeline_dataset(struct pipeline *p, const struct config_dataset *d, struct dataset **out);
void pipeline_close(struct pipeline *p);
/* Copies tokenizer files (tokenizer.json, tokenizer_config.json, vocab.json, merges.txt,
 * special_tokens_map.json, chat_template.jinja, whichever exist) into dir. */
int pipeline_copy_tokenizer(const struct pipeline *p, const char *dir);
/* The id of a special token named in tokenizer_config.json (e.g. "eos_token"), or -1. */
int32_t tokenizer_config_token(const struct tokenizer *tk, const char *dir, const char *key);
