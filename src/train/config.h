/* config: the run configuration (YAML shaped like MindSpore Transformers' configs).
 * One table of keys (config.c) drives parsing, validation, --help, docs/config.md and the
 * resolved dump. Precedence: defaults, then the YAML file, then `--set key.path=value`
 * overrides (values parsed as YAML). Unknown keys, wrong types and out-of-range values are
 * errors naming the key, file:line, what was expected and what was found; nothing is clamped. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dtype.h"
#include "data/format.h"
#include "data/pack.h"
#include "train/optim.h"

enum run_mode { RUN_MODE_FINETUNE, RUN_MODE_TRAIN, RUN_MODE_PREDICT, RUN_MODE_EVAL };
enum pet_type { PET_TYPE_NONE, PET_TYPE_LORA };
enum optimizer_type { OPTIMIZER_ADAMW };
enum on_nonfinite { ON_NONFINITE_STOP, ON_NONFINITE_SKIP };
enum device_kind { DEVICE_CPU, DEVICE_CUDA, DEVICE_CUDA_BF16 };
enum checkpoint_format { CHECKPOINT_FORMAT_SAFETENSORS, CHECKPOINT_FORMAT_CKPT };

struct config_kv {
    char *key;
    char *value;
};

/* model.model_config.pet_config */
struct config_pet {
    enum pet_type pet_type; /* NONE = full fine-tuning */
    int lora_rank;
    double lora_alpha;
    double lora_dropout;
    /* A YAML list: module-name suffixes (PEFT semantics). A YAML string: one regex that must
     * match the whole module name (target_modules_regex = true, n_target_modules = 1). */
    char **target_modules;
    int n_target_modules;
    bool target_modules_regex;
    bool use_rslora;
    char *adapter_path; /* "" = fresh adapter; else a PEFT folder to continue training */
};

/* model.model_config */
struct config_model {
    int num_layers;             /* 0 = all layers of the checkpoint; N = keep the first N */
    enum dtype compute_dtype;   /* DTYPE_F32 or DTYPE_BF16 */
    enum dtype param_init_type; /* dtype of frozen base weights in memory: F32 or BF16 */
    bool recompute;             /* activation recomputation in backward */
    struct config_pet pet;
    /* HF config.json keys -> values: the shape of a .ckpt load_checkpoint with no config.json
     * beside it (a MindSpore config's model_config); checked against config.json when one exists */
    struct config_kv *hf_config;
    int n_hf_config;
};

/* train_dataset / eval_dataset */
struct config_dataset {
    char **data_files;
    int n_data_files;
    enum data_format format;
    struct config_kv *column_mapping; /* canonical column -> the dataset's column */
    int n_column_mapping;
    char *chat_template; /* "" = the tokenizer's own; else a template name or a file path */
    int seq_length;
    bool packing;
    enum pack_strategy pack_strategy;
    enum truncation truncation;
    enum loss_on loss_on;
    bool train_on_eos;
    bool shuffle;
    char *tokenizer;  /* "" = load_checkpoint; else a folder with tokenizer.json etc. */
    char *vocab_file; /* vocab.json + merges.txt, as MindSpore's Qwen2Tokenizer */
    char *merges_file;
    char *cache_dir; /* "" = no cache of tokenized data */
    bool skip_bad_rows;
};

struct config_runner {
    int epochs;
    int batch_size; /* micro batch per process */
    int gradient_accumulation_steps;
    int64_t max_steps; /* -1 = epochs * steps per epoch */
};

struct config_optimizer {
    enum optimizer_type type;
    double learning_rate;
    double betas[2];
    double eps;
    double weight_decay;
};

struct config_lr_schedule {
    enum lr_schedule_type type;
    int64_t warmup_steps;
    double warmup_ratio; /* at most one of warmup_steps/warmup_ratio is non-zero */
    double min_lr;
    double decay_ratio; /* wsd: fraction of the steps spent in the final decay */
};

struct config_parallel {
    int data_parallel;
    int zero_stage;
    /* accepted only at their defaults (1 / false) until supported */
    int model_parallel;
    int pipeline_stage;
    int context_parallel;
    int expert_parallel;
    bool use_seq_parallel;
};

struct config_predict {
    int max_new_tokens;
    bool do_sample;
    double temperature;
    int top_k;         /* 0 = off */
    double top_p;      /* 1 = off */
    char *prompt;      /* "" = none */
    char *input_file;  /* prompts, one per line or JSONL; "" = none */
    char *output_file; /* "" = stdout */
    int batch_size;    /* input_file prompts per generation batch */
};

struct config_source; /* private: where each key got its value */

struct run_config {
    enum run_mode run_mode;
    int64_t seed;
    char *output_dir;
    char *load_checkpoint; /* an HF model folder */
    bool resume_training;
    char *resume_from_checkpoint; /* "" = newest valid checkpoint in output_dir */
    struct config_model model;
    struct config_dataset train_dataset;
    struct config_dataset eval_dataset;
    struct config_runner runner_config;
    struct config_optimizer optimizer;
    struct config_lr_schedule lr_schedule;
    double max_grad_norm; /* 0 = no clipping */
    enum on_nonfinite on_nonfinite;
    struct config_parallel parallel_config;
    int64_t save_steps;   /* 0 = only at the end */
    int save_total_limit; /* 0 = keep all */
    enum dtype save_dtype;
    enum checkpoint_format checkpoint_format;
    char *checkpoint_prefix;
    int64_t logging_steps;
    int64_t eval_steps; /* 0 = only at the end (when eval_dataset has data_files) */
    bool tensorboard;
    bool report;                 /* <output_dir>/report.html */
    double peak_gflops;          /* MFU denominator per process; 0 = measure */
    bool save_best;              /* keep the lowest-eval-loss checkpoint */
    bool load_best_at_end;       /* final model = the best checkpoint */
    int early_stopping_patience; /* 0 = off */
    int eval_generations;        /* eval records answered at each eval, for the report */
    struct config_predict predict;
    enum device_kind device; /* kernel backend (train/device.h) */

    char *config_file; /* the YAML file loaded, or NULL */
    struct config_source *src;
};

/* Fills cfg with the defaults. Never fails. */
void config_defaults(struct run_config *cfg);
/* Defaults, then yaml_path (may be NULL), then the n_sets "key.path=value" overrides.
 * On error cfg is freed (safe to config_free again) and -1 returned with one message. */
int config_load(struct run_config *cfg, const char *yaml_path, char **sets, int n_sets);
/* Cross-key checks that depend on what the run needs (load_checkpoint set, data files
 * present for the run_mode). Does not touch the disk. */
int config_check_run(const struct run_config *cfg);
void config_free(struct run_config *cfg);

/* Where key_path got its value: "run.yaml:12", "--set", or "default". Static buffer per call
 * site is not used: writes into buf (size n) and returns it. */
const char *config_where(const struct run_config *cfg, const char *key_path, char *buf, size_t n);

/* The resolved config as YAML that config_load reads back to the same struct. */
void config_dump_yaml(const struct run_config *cfg, FILE *f);
/* Dumps to path atomically (tmp + fsync + rename). */
int config_save(const struct run_config *cfg, const char *path);
/* Every key: path, type, default, allowed values, meaning. */
void config_print_help(FILE *f);
/* The same reference as Markdown (docs/config.md is this output). */
void config_print_markdown(FILE *f);

/* Names of enum values as written in YAML. */
const char *run_mode_name(enum run_mode m);
const char *data_format_name(enum data_format f);
const char *lr_schedule_type_name(enum lr_schedule_type t);
