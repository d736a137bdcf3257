/* model_config: the decoder's hyper-parameters, read from a Hugging Face config.json.
 * One model implementation covers Qwen2, Qwen3, Llama (1/2/3/3.1) and Mistral: their
 * differences are fields here (biases, q/k norm, tied head, RoPE). Accepts transformers 4
 * (`rope_theta`, `rope_scaling`) and 5 (`rope_parameters`) spellings. */
#pragma once
#include <stdint.h>

enum model_arch { ARCH_QWEN2, ARCH_QWEN3, ARCH_LLAMA, ARCH_MISTRAL };

enum rope_type { ROPE_DEFAULT, ROPE_LLAMA3, ROPE_LINEAR };

/* Upper bounds of config.json sizes (model_config_load refuses larger): far above released
 * models, low enough that products of them fit int64 and head_dim-sized stack tiles stay small. */
enum {
    MODEL_MAX_VOCAB = 1 << 24,
    MODEL_MAX_HIDDEN = 1 << 17,
    MODEL_MAX_FFN = 1 << 20,
    MODEL_MAX_LAYERS = 1024,
    MODEL_MAX_HEADS = 1024,
    MODEL_MAX_HEAD_DIM = 512,
    MODEL_MAX_POSITIONS = 1 << 24,
};

struct model_config {
    enum model_arch arch;
    char model_type[32];
    int vocab_size;        /* V */
    int hidden_size;       /* C */
    int intermediate_size; /* F */
    int n_layers;          /* L */
    int n_heads;           /* H */
    int n_kv_heads;        /* KVH */
    int head_dim;          /* HS */
    int max_position_embeddings;
    float rms_norm_eps;
    double rope_theta;
    enum rope_type rope_type;
    double rope_factor; /* llama3 / linear */
    double rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    int tie_word_embeddings;
    int qkv_bias; /* q/k/v projections have biases */
    int o_bias;   /* o_proj has a bias */
    int mlp_bias; /* gate/up/down have biases */
    int qk_norm;  /* Qwen3: RMSNorm over each head of q and k, before RoPE */
    int bos_token_id;
    int n_eos;
    int eos_token_ids[8];
    char torch_dtype[16]; /* as stored: float32, bfloat16, float16 */
};

/* path: a model folder or its config.json. n_layers_keep > 0 keeps only the first N layers. */
int model_config_load(struct model_config *cfg, const char *path, int n_layers_keep);
/* The same from JSON text (name is used in errors). */
int model_config_parse(struct model_config *cfg, const char *json_text, const char *name, int n_layers_keep);
/* Compares the keys of json_text (HF config.json spelling) with path's config.json; a value that
 * differs is an error naming both (num_hidden_layers may be smaller: the first N are kept).
 * what names json_text's origin in the message. */
int model_config_check(const char *path, const char *json_text, const char *what);
/* Writes cfg as an HF config.json (transformers 4 spelling, readable by 4 and 5). */
char *model_config_to_json(const struct model_config *cfg);
/* The input model's own config.json text `src` with only what training changes: the dtype
 * field(s) set to `dtype` in the spelling src used (torch_dtype and/or dtype; torch_dtype added
 * when it has neither) and, when cfg keeps fewer layers, num_hidden_layers and layer_types.
 * Every other key, its order and its number spelling stay as written. NULL if src is not a
 * JSON object. */
char *model_config_json_edit(const char *src, const struct model_config *cfg, const char *dtype);
/* Fills the RoPE inverse frequencies (HS/2 floats), as transformers computes them. */
void model_config_rope_inv_freq(const struct model_config *cfg, float *inv_freq);
const char *model_arch_name(enum model_arch a);
