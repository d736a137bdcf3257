/* config_mindformers: MindSpore Transformers (MindFormers) configs read as that dialect. A YAML
 * file in their layout (top-level trainer / runner_wrapper / context / callbacks, or
 * train_dataset.data_loader, or model.model_config.type) is translated into native csft keys
 * with their semantics (docs/mindformers.md: every key of their configs, honoured, mapped or
 * ignored, and why). The translation is a list of native `key=value` assignments that
 * config_load applies before the user's own --set overrides. */
#pragma once
#include <stdio.h>

#include "train/config.h"

/* run_mindformer.py's flags, as given on the command line (NULL = not given). */
struct mf_cli {
    const char *run_mode, *use_parallel, *load_checkpoint, *train_dataset_dir, *resume_training, *output_dir,
        *register_path, *predict_data;
    int strict; /* a run: data the run cannot read is an error (config convert only notes it) */
};

struct mf_translation {
    char **sets; /* native "key.path=value" */
    int n_sets;
    char **lines; /* "their.key (file:line) -> native.key = value", for printing */
    int n_lines;
    char **notes; /* one sentence each: layouts, approximations */
    int n_notes;
    char *ignored; /* the one warning line: MindSpore-only keys ignored ("" if none) */
};

/* 1 if path holds a config in MindSpore Transformers' layout, 0 if not (or unreadable: the
 * native loader then reports it). */
int config_mf_detect(const char *path);
/* Translates path; world = processes this run has (0 = unknown: laid out for the device count
 * their parallel_config names). Errors name the file, line and key. */
int config_mf_translate(const char *path, const struct mf_cli *cli, int world, struct mf_translation *out);
void config_mf_translation_free(struct mf_translation *t);
/* Prints the notes, the ignored-keys line and the translation (rank 0 of a run). */
void config_mf_print(const struct mf_translation *t, const char *path, FILE *f);
/* model.model_config.hf_config as HF config.json text (malloc'd), or NULL when empty. */
char *config_hf_config_json(const struct run_config *cfg);
/* docs/mindformers.md's key table: every rule with its status and how / why. */
void config_mf_print_markdown(FILE *f);
/* docs/mindformers.md's per-key table: every leaf key of the given configs (labels name them in
 * the "in" column) with its status; -1 if a key is not covered by the rule table (it is still
 * printed, as **unknown**). */
int config_mf_print_keys_markdown(const char *const *paths, const char *const *labels, int n, FILE *f);
/* The rule a MindSpore key path falls under: 'H' honoured, 'M' mapped, 'I' ignored, 0 = unknown. */
int config_mf_key_status(const char *their_path);
