/* model: the one decoder implementation (Qwen2/Qwen3/Llama/Mistral), its parameter table,
 * activations, forward, backward and greedy generation, running on a kernel backend.
 * Weights live in flat float32 buffers (frozen base, trainable LoRA), gradients beside them.
 * Loss follows HF: logits at t predict labels[t+1], -100 ignored; the caller passes the
 * per-step token count so accumulated micro-batches give one big batch's gradient. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "model/model_config.h"
#include "model/tp.h"

enum lin { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, N_LIN };
extern const char *const lin_names[N_LIN];  /* "self_attn.q_proj", ... (HF module names) */
extern const char *const lin_short[N_LIN];  /* "q_proj", ... */
extern const char *const lin_aliases[N_LIN]; /* MindSpore Transformers: "wq", "wk", "wv", "wo", "w1", "w3", "w2" */

struct linear {
    int in, out;
    float *w, *b;   /* (out,in), (out) or NULL */
    uint16_t *w16;  /* (out,in) in bf16 instead of w (NULL) after model_base_to_bf16 */
    float *dw, *db; /* gradients, NULL when frozen */
    /* LoRA (PEFT semantics): y += scaling * dropout(x) A^T B^T */
    float *lora_a, *lora_b;   /* (R,in), (out,R) or NULL */
    float *dlora_a, *dlora_b; /* gradients */
    /* Tensor parallelism: a row-parallel linear (o_proj, down_proj) holds input columns
     * [in_off, in_off + in) of in_full; otherwise in == in_full. */
    int row_parallel, in_full, in_off;
};

struct layer {
    float *ln1, *ln2, *q_norm, *k_norm; /* (C), (C), (HS), (HS) */
    float *dln1, *dln2, *dq_norm, *dk_norm;
    struct linear lin[N_LIN];
};

/* One named tensor of the model: a base weight (HF name) or a LoRA matrix (PEFT name). */
struct param {
    char name[160];
    int n_dims;
    int64_t shape[2];
    int64_t numel;
    float *data, *grad; /* grad NULL when frozen */
    uint16_t *data16;   /* bf16 storage instead of data (NULL then) in a bf16 base */
    int decay;          /* weight decay applies (2+ dims) */
    int layer;          /* decoder layer, -1 outside the layers */
    /* Tensor parallelism (model/tp.h): this rank holds rows (tp_dim 0) or columns (tp_dim 1)
     * [tp_off, tp_off + shape[tp_dim]) of the HF tensor of full_shape; tp_dim -1: all of it. */
    int tp_dim;
    int64_t tp_off, full_shape[2];
    int tp_count; /* 1: counted in gradient norms here (0: an identical copy counts elsewhere) */
    int tp_sum;   /* enum tp_sum: how the gradient becomes final */
};

struct lora_config {
    int rank;
    float alpha, dropout;
    int use_rslora;
    int targets[N_LIN]; /* which linears carry an adapter (in at least one layer) */
    char *target_regex; /* target_modules as saved when given as a regex (PEFT's string form): the
                           user's own, or the explicit module list when it matched only through
                           MindSpore's names; NULL for the list form (owned, freed with the model) */
};

struct acts; /* activations, private to model.c */

struct model {
    struct model_config cfg;
    const struct kernels *k;
    float *inv_freq; /* (HS/2) */
    /* base weights */
    struct param *params;
    int n_params;
    float *base, *dbase; /* flat; dbase NULL unless the base is trained */
    int64_t n_base;
    float *wte, *dwte, *norm, *dnorm, *lm_head, *dlm_head; /* lm_head == wte when tied */
    struct layer *layers;
    /* LoRA */
    int has_lora;
    struct lora_config lora;
    float lora_scaling;
    struct param *lora_params;
    int n_lora_params;
    float *lora_mem, *dlora_mem;
    int64_t n_lora;
    uint64_t dropout_seed; /* set per micro-batch; dropout masks are regenerated, not stored */
    int training;          /* dropout on */
    /* Called by model_backward after layer l's gradients are final (l = L-1 .. 0), so data
     * parallelism can start communicating them while earlier layers run (train/dp.h). */
    void (*on_layer_grads_ready)(int layer, void *ctx);
    void *grads_ready_ctx;
    /* ZeRO-2/3 (train/zero.h): called before a unit's weights are used in the forward
     * (MODEL_UNIT_FORWARD) or the backward (MODEL_UNIT_BACKWARD) and after its gradients are
     * final (MODEL_UNIT_DONE). Units: 0 the embedding, 1 + l layer l, n_layers + 1 the head
     * (final norm and LM head; a tied head also reads the embedding). The hook may point the
     * params' data/grad elsewhere and call model_bind. */
    void (*unit_hook)(int event, int unit, void *ctx);
    void *unit_ctx;
    int base_trained; /* full fine-tuning: the base weights are the trainable tensors */
    /* activations for the current (B, T) */
    struct acts *acts;
    int B, T;
    /* Options, set before the first batch: recompute keeps only each layer's input in the
     * forward and re-runs the layer before its backward (activations ~1/L, ~1/3 more FLOPs). */
    int recompute;
    int base_bf16;  /* set by model_base_to_bf16 */
    float *wscratch; /* bf16 weight rows converted for one GEMM (WCHUNK * widest in) */
    /* Tensor parallelism (model/tp.h; tp.size <= 1: none). This rank's share of the heads,
     * key/value heads, intermediate size and vocabulary (the config's without TP); kv_rep
     * ranks hold each key/value head (1 when they are split). */
    struct tp_comm tp;
    int n_heads_l, n_kv_heads_l, ffn_l, vocab_l, vocab_off, kv_rep;
    float *tp_save, *tp_buf; /* tp_partial_* scratch */
    double *tp_stats;        /* vocab-parallel cross-entropy: (tp.size + 1) * 3 * 1024 row statistics */
    char *config_text; /* the loaded folder's config.json as written (model_save writes it back), or NULL */
};

static inline int model_tp_on(const struct model *m) { return m->tp.size > 1; }

/* Builds the model from a folder (config.json + safetensors). n_layers_keep > 0 keeps the
 * first N layers. train_base: allocate base gradients (full fine-tuning). */
int model_load(struct model *m, const char *dir, int n_layers_keep, int train_base);
/* model_load / model_load_bf16_base from an HF folder or a MindSpore .ckpt (a file, or a folder
 * with rank_0/ *.ckpt; MindSpore Transformers' names, see mf_names.h). A .ckpt's shape comes
 * from a config.json beside it, else from config_json (HF config.json text; NULL = none). */
int model_load_from(struct model *m, const char *path, const char *config_json, int n_layers_keep, int train_base,
                    int bf16_base);
/* The same for one rank of a tensor-parallel group (tp NULL or size 1: model_load_from). */
int model_load_from_tp(struct model *m, const char *path, const char *config_json, int n_layers_keep, int train_base,
                       int bf16_base, const struct tp_comm *tp);
/* model_load for one rank of a tensor-parallel group: reads only this rank's slices. Errors
 * if the model cannot be split tp->size ways (tp_check_config). tp NULL: model_load. */
int model_load_tp(struct model *m, const char *dir, int n_layers_keep, int train_base, const struct tp_comm *tp);
/* Same, with random weights (std 0.02, norms 1) instead of a checkpoint (init-model, tests). */
int model_init_random(struct model *m, const struct model_config *cfg, uint64_t seed, int train_base);
/* The same for one rank of a tensor-parallel group (its slices hold random values of their own:
 * benchmarks). -1 with err if the model cannot be split tp->size ways. */
int model_init_random_tp(struct model *m, const struct model_config *cfg, uint64_t seed, int train_base,
                         const struct tp_comm *tp);
/* The parameter table of dir's model (or of cfg) without its buffers: params' data and grad
 * are NULL until ZeRO-3 (train/zero.h) reads each rank's shard of the weights. tp (NULL: none):
 * this rank's slices; -1 with err if the model cannot be split so (tp_check_config). */
int model_load_shape(struct model *m, const char *dir, int n_layers_keep, int train_base, const struct tp_comm *tp);
int model_init_shape(struct model *m, const struct model_config *cfg, int train_base, const struct tp_comm *tp);
void model_free(struct model *m);
/* model_load / model_init_random with the decoder's linear weights stored in bf16 from the
 * start (frozen base, as model_base_to_bf16 below; the float32 base never exists, so a 7B
 * base needs ~15 GB instead of ~30). */
int model_load_bf16_base(struct model *m, const char *dir, int n_layers_keep);
/* The same for one rank of a tensor-parallel group (model_load_tp). */
int model_load_bf16_base_tp(struct model *m, const char *dir, int n_layers_keep, const struct tp_comm *tp);
int model_init_random_bf16_base(struct model *m, const struct model_config *cfg, uint64_t seed);
/* Keeps the decoder's linear weights (q,k,v,o,gate,up,down) in bf16, halving their memory;
 * their GEMMs convert WCHUNK-row blocks to float32 (results equal float32 math on the rounded
 * weights). Embeddings, norms and biases stay float32. Only for a frozen base (LoRA): errors
 * if the base has gradients. model_save and lora_merge need the float32 base. */
int model_base_to_bf16(struct model *m);
/* Writes the base weights (HF names) as a safetensors model folder with config.json: the loaded
 * model's own config.json with only the dtype (and a cut layer count) changed, or for a model
 * made in memory one written from cfg. Under tensor parallelism it is collective: the slices
 * are gathered and tp rank 0 writes. */
int model_save(const struct model *m, const char *dir, int bf16, size_t max_shard_bytes);
/* Only its config.json (the torch_dtype of a bf16 or float32 save). */
int model_save_config(const struct model *m, const char *dir, int bf16);

/* Sizes the activations for batches of B sequences of T tokens (reallocates when larger). */
void model_set_batch(struct model *m, int B, int T);
/* Frees the activations (the next batch reallocates them, e.g. after the LoRA rank changed). */
void model_drop_acts(struct model *m);
/* Forward through the final norm. ids, pos (B*T). */
void model_forward(struct model *m, const int32_t *ids, const int32_t *pos, int B, int T);
/* Logits (B*T, V) of the last forward. */
void model_logits(struct model *m, float *logits);
/* Loss and gradients of the last forward. targets (B*T) are already shifted (targets[t] =
 * labels[t+1], -100 ignored). Gradients accumulate (+=) scaled by grad_scale (1 / trained
 * tokens of the whole step). Returns the summed loss of this micro-batch. */
double model_backward(struct model *m, const int32_t *targets, float grad_scale);
/* Loss sum only (no gradients) of the last forward. */
double model_loss(struct model *m, const int32_t *targets);
enum { MODEL_UNIT_FORWARD, MODEL_UNIT_BACKWARD, MODEL_UNIT_DONE };
/* Points the layer structs (and wte/norm/lm_head, LoRA matrices) at the params' data and
 * grad pointers again, after a caller moved them (ZeRO-3 gathers a unit into a buffer). */
void model_bind(struct model *m);
/* Zeroes all gradients (base and LoRA). */
void model_zero_grad(struct model *m);
/* HF-style shift: targets[b,t] = labels[b,t+1], last = -100. Returns the trained-token count. */
int64_t model_shift_labels(int32_t *targets, const int32_t *labels, int B, int T);

/* The trainable tensors: LoRA matrices if an adapter is attached, else the base weights. */
struct param *model_trainable(struct model *m, int *n);
/* Greedy (temperature 0) or sampled generation with a KV cache, for one sequence.
 * Writes up to max_new tokens to out, stops after an eos id; returns the count. */
int model_generate(struct model *m, const int32_t *prompt, int n_prompt, int32_t *out, int max_new,
                   const int32_t *eos_ids, int n_eos, float temperature, int top_k, float top_p, uint64_t seed);
/* The same for nb prompts at once (several prompts per forward pass): a packed prefill of all
 * prompts, then batched decode steps over the sequences still generating. out[i] has room for
 * max_new tokens; n_out[i] gets sequence i's count. Each sequence samples from its own stream
 * seeded with `seed`, so its tokens are those of model_generate on it alone (up to the rounding
 * of batched GEMMs). Returns 0. */
int model_generate_batch(struct model *m, const int32_t *const *prompts, const int *n_prompt, int nb, int32_t *const *out,
                         int *n_out, int max_new, const int32_t *eos_ids, int n_eos, float temperature, int top_k,
                         float top_p, uint64_t seed);
