/* model: the decoder's parameter table, forward, backward and generation; see model.h.
 * Mirrors transformers' modeling_{qwen2,qwen3,llama,mistral}.py in float32 (docs/model.md). */
#include "model/model.h"
#include "model/acts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "io/ckpt.h"
#include "io/safetensors.h"
#include "model/mf_names.h"

const char *const lin_names[N_LIN] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
const char *const lin_short[N_LIN] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char *const lin_aliases[N_LIN] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

/* Rows of the fused LM head + cross-entropy per chunk: its (chunk, V) logits stay near 128 MB
 * (bigger chunks make the head's GEMMs faster: the dW GEMM streams dW once per chunk). */
static int ce_chunk(const struct model *m, int64_t N) {
    int64_t ch = ((int64_t)32 << 20) / m->vocab_l;
    ch = ch < 64 ? 64 : ch > 1024 ? 1024 : ch;
    if (ch > N) ch = N;
    return (int)((ch + 15) & ~15);
}
#define WCHUNK 512 /* bf16 weight rows converted per GEMM (bench/bf16_bench.c: within ~3% of float32 from 512) */



/* ---- parameter table ---- */

static void add_param(struct model *m, int *cap, const char *name, int layer, int n_dims, int64_t d0, int64_t d1,
                      int decay) {
    if (m->n_params == *cap) m->params = xrealloc(m->params, sizeof(struct param) * (*cap = *cap ? *cap * 2 : 64));
    struct param *p = &m->params[m->n_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = n_dims;
    p->shape[0] = p->full_shape[0] = d0;
    p->shape[1] = p->full_shape[1] = d1;
    p->numel = n_dims == 1 ? d0 : d0 * d1;
    p->decay = decay;
    p->layer = layer;
    p->tp_dim = -1;
    p->tp_count = 1;
}

/* Tensor parallelism: the last param keeps `len` rows (dim 0) or columns (dim 1) from `off`;
 * count: it counts in gradient norms on this rank; sum: enum tp_sum. */
static void split_last(struct model *m, int dim, int64_t off, int64_t len, int count, int sum) {
    struct param *p = &m->params[m->n_params - 1];
    if (len != p->full_shape[dim]) p->tp_dim = dim, p->tp_off = off;
    p->shape[dim] = len;
    p->numel = p->n_dims == 1 ? p->shape[0] : p->shape[0] * p->shape[1];
    p->tp_count = count;
    p->tp_sum = sum;
}

/* A decoder linear weight ("model.layers.N.<q_proj..down_proj>.weight"): bf16 in a bf16 base. */
static int is_linear_weight(const char *name) {
    if (strncmp(name, "model.layers.", 13) != 0 || !strstr(name, ".weight")) return 0;
    for (int i = 0; i < N_LIN; i++)
        if (strstr(name, lin_names[i])) return 1;
    return 0;
}

/* This rank's share of heads, key/value heads, FFN and vocabulary (all of them without TP). */
static void tp_dims(struct model *m) {
    const struct model_config *c = &m->cfg;
    int T = model_tp_on(m) ? m->tp.size : 1;
    m->n_heads_l = c->n_heads / T;
    m->kv_rep = c->n_kv_heads % T == 0 ? 1 : T / c->n_kv_heads;
    m->n_kv_heads_l = m->kv_rep == 1 ? c->n_kv_heads / T : 1;
    m->ffn_l = c->intermediate_size / T;
    m->vocab_l = c->vocab_size / T;
    m->vocab_off = (model_tp_on(m) ? m->tp.rank : 0) * m->vocab_l;
}

/* Lays out every base tensor in HF state_dict order and points the layer structs into
 * one flat buffer (and one flat gradient buffer when the base is trained). bf16: the linear
 * weights are stored as bf16 in the same buffer (frozen base). Under tensor parallelism each
 * tensor is this rank's slice (docs/tp.md). */
static int build_params(struct model *m, int train_base, int bf16, int alloc, int64_t max_numel) {
    const struct kernels *K = m->k = kernels_selected();
    const struct model_config *c = &m->cfg;
    int cap = 0, C = c->hidden_size, F = c->intermediate_size, HS = c->head_dim;
    int qd = c->n_heads * HS, kvd = c->n_kv_heads * HS;
    tp_dims(m);
    int tp = model_tp_on(m), r = tp ? m->tp.rank : 0, first = r == 0;
    int qdl = m->n_heads_l * HS, kvdl = m->n_kv_heads_l * HS, Fl = m->ffn_l;
    int64_t kv_off = (int64_t)(r / m->kv_rep) * kvdl;
    int kv_count = r % m->kv_rep == 0, kv_sum = m->kv_rep > 1 ? TP_SUM_KV : TP_SUM_NONE;
    char nm[160];
    add_param(m, &cap, "model.embed_tokens.weight", -1, 2, c->vocab_size, C, 1);
    split_last(m, 0, m->vocab_off, m->vocab_l, 1, TP_SUM_NONE);
    for (int l = 0; l < c->n_layers; l++) {
        const int outs[N_LIN] = {qd, kvd, kvd, C, F, F, C}, ins[N_LIN] = {C, C, C, qd, C, C, F};
        /* column-parallel: rows [off, off + len); row-parallel (o, down): columns */
        const int64_t offs[N_LIN] = {(int64_t)r * qdl, kv_off, kv_off, (int64_t)r * qdl, (int64_t)r * Fl,
                                     (int64_t)r * Fl, (int64_t)r * Fl};
        const int lens[N_LIN] = {qdl, kvdl, kvdl, qdl, Fl, Fl, Fl};
        for (int i = 0; i < N_LIN; i++) {
            int rowpar = i == LIN_O || i == LIN_DOWN, kv = i == LIN_K || i == LIN_V;
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin_names[i]);
            add_param(m, &cap, nm, l, 2, outs[i], ins[i], 1);
            split_last(m, rowpar, offs[i], lens[i], kv ? kv_count : 1, kv ? kv_sum : TP_SUM_NONE);
            int bias = i <= LIN_V ? c->qkv_bias : i == LIN_O ? c->o_bias : c->mlp_bias;
            if (bias) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s.bias", l, lin_names[i]);
                add_param(m, &cap, nm, l, 1, outs[i], 0, 0);
                if (rowpar) split_last(m, 0, 0, outs[i], first, TP_SUM_NONE); /* added once, after the sum */
                else split_last(m, 0, offs[i], lens[i], kv ? kv_count : 1, kv ? kv_sum : TP_SUM_NONE);
            }
            if (i == LIN_O && c->qk_norm) { /* each rank's heads add to their gradients */
                snprintf(nm, sizeof nm, "model.layers.%d.self_attn.q_norm.weight", l);
                add_param(m, &cap, nm, l, 1, HS, 0, 0);
                split_last(m, 0, 0, HS, first, tp ? TP_SUM_ALL : TP_SUM_NONE);
                snprintf(nm, sizeof nm, "model.layers.%d.self_attn.k_norm.weight", l);
                add_param(m, &cap, nm, l, 1, HS, 0, 0);
                split_last(m, 0, 0, HS, first, tp ? TP_SUM_ALL : TP_SUM_NONE);
            }
        }
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        add_param(m, &cap, nm, l, 1, C, 0, 0);
        split_last(m, 0, 0, C, first, TP_SUM_NONE);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        add_param(m, &cap, nm, l, 1, C, 0, 0);
        split_last(m, 0, 0, C, first, TP_SUM_NONE);
    }
    add_param(m, &cap, "model.norm.weight", -1, 1, C, 0, 0);
    split_last(m, 0, 0, C, first, TP_SUM_NONE);
    if (!c->tie_word_embeddings) {
        add_param(m, &cap, "lm_head.weight", -1, 2, c->vocab_size, C, 1);
        split_last(m, 0, m->vocab_off, m->vocab_l, 1, TP_SUM_NONE);
    }

    m->n_base = 0;
    for (int i = 0; i < m->n_params; i++) m->n_base += m->params[i].numel;
    /* before any buffer is sized by config.json: a small mismatch is left to the per-tensor
     * checks (which name the tensor), a config far larger than the weight files is refused */
    if (max_numel >= 0 && m->n_base > 2 * max_numel + (1 << 24)) {
        free(m->params);
        m->params = NULL, m->n_params = 0;
        return err_set("config.json describes %lld parameters, far more than the %lld in the weight files",
                       (long long)m->n_base, (long long)max_numel);
    }
    CHECK(!(bf16 && train_base), "a bf16 base is frozen");
    if (bf16) { /* byte layout, every tensor 64-byte aligned */
        size_t bytes = 0;
        for (int i = 0; i < m->n_params; i++)
            bytes += ((size_t)m->params[i].numel * (is_linear_weight(m->params[i].name) ? 2 : 4) + 63) & ~(size_t)63;
        char *buf = K->mem_alloc(bytes ? bytes : 1);
        m->base = (float *)buf;
        size_t boff = 0;
        for (int i = 0; i < m->n_params; i++) {
            struct param *p = &m->params[i];
            int h = is_linear_weight(p->name);
            if (h) p->data16 = (uint16_t *)(buf + boff);
            else p->data = (float *)(buf + boff);
            boff += ((size_t)p->numel * (h ? 2 : 4) + 63) & ~(size_t)63;
        }
    } else if (!alloc) { /* the table only: ZeRO-3 holds a shard of the weights (train/zero.h) */
        m->base = m->dbase = NULL;
    } else {
        m->base = K->mem_alloc(sizeof(float) * (size_t)m->n_base);
        m->dbase = train_base ? K->mem_alloc(sizeof(float) * (size_t)m->n_base) : NULL;
        int64_t off = 0;
        for (int i = 0; i < m->n_params; i++) {
            m->params[i].data = m->base + off;
            m->params[i].grad = m->dbase ? m->dbase + off : NULL;
            off += m->params[i].numel;
        }
    }
    m->layers = xcalloc((size_t)c->n_layers, sizeof(struct layer));
    m->base_trained = train_base;
    model_bind(m);
    if (bf16) {
        int widest = 0;
        for (int l = 0; l < c->n_layers; l++)
            for (int i = 0; i < N_LIN; i++) widest = m->layers[l].lin[i].in > widest ? m->layers[l].lin[i].in : widest;
        m->wscratch = xmalloc(sizeof(float) * (size_t)WCHUNK * (size_t)(widest ? widest : 1));
        m->base_bf16 = 1;
    }
    float inv_freq[HS / 2 + 1];
    model_config_rope_inv_freq(c, inv_freq);
    m->inv_freq = K->mem_alloc(sizeof(float) * (size_t)(HS / 2));
    K->mem_copy(m->inv_freq, inv_freq, sizeof(float) * (size_t)(HS / 2));
    return 0;
}

void model_bind(struct model *m) {
    /* Point the structs at the table, in the same order it was built. */
    const struct model_config *c = &m->cfg;
    struct param *p = m->params;
    m->wte = p->data, m->dwte = p->grad, p++;
    for (int l = 0; l < c->n_layers; l++) {
        struct layer *ly = &m->layers[l];
        for (int i = 0; i < N_LIN; i++) {
            struct linear *L = &ly->lin[i];
            L->out = (int)p->shape[0], L->in = (int)p->shape[1];
            L->row_parallel = p->tp_dim == 1, L->in_full = (int)p->full_shape[1];
            L->in_off = p->tp_dim == 1 ? (int)p->tp_off : 0;
            L->w = p->data, L->w16 = p->data16, L->dw = p->grad, p++;
            if (strstr(p->name, ".bias") && strstr(p->name, lin_names[i])) L->b = p->data, L->db = p->grad, p++;
            if (i == LIN_O && c->qk_norm) {
                ly->q_norm = p->data, ly->dq_norm = p->grad, p++;
                ly->k_norm = p->data, ly->dk_norm = p->grad, p++;
            }
        }
        ly->ln1 = p->data, ly->dln1 = p->grad, p++;
        ly->ln2 = p->data, ly->dln2 = p->grad, p++;
    }
    m->norm = p->data, m->dnorm = p->grad, p++;
    if (c->tie_word_embeddings) m->lm_head = m->wte, m->dlm_head = m->dwte;
    else m->lm_head = p->data, m->dlm_head = p->grad, p++;
    CHECK(p == m->params + m->n_params, "parameter table walk out of step");
    /* LoRA matrices: A then B of every adapted linear, in layer order (lora.c) */
    struct param *q = m->lora_params;
    for (int l = 0; l < c->n_layers && q; l++)
        for (int i = 0; i < N_LIN; i++) {
            struct linear *L = &m->layers[l].lin[i];
            if (!L->lora_a) continue;
            L->lora_a = q->data, L->dlora_a = q->grad, q++;
            L->lora_b = q->data, L->dlora_b = q->grad, q++;
        }
    CHECK(!q || q == m->lora_params + m->n_lora_params, "LoRA table walk out of step");
}

/* The model config of a .ckpt source: config.json beside it, else config_json (text). */
static int ckpt_model_config(struct model_config *cfg, const char *path, const char *config_json, int n_layers_keep) {
    char *dir = ckpt_config_dir(path), *cj = path_join(dir, "config.json");
    int rc;
    if (file_exists(cj))
        rc = (config_json ? model_config_check(cj, config_json, "model.model_config.hf_config") : 0) ||
             model_config_load(cfg, cj, n_layers_keep);
    else if (config_json) rc = model_config_parse(cfg, config_json, "model.model_config (shape of the .ckpt)", n_layers_keep);
    else
        rc = err_set("%s: a MindSpore .ckpt holds no model shape and there is no config.json beside it (%s); put the "
                     "model's config.json there, give the shape keys in model.model_config, or pass --config CONFIG_JSON",
                     path, cj);
    free(cj), free(dir);
    return rc;
}

static int load_impl(struct model *m, const char *dir, const char *config_json, int n_layers_keep, int train_base,
                     int bf16, const struct tp_comm *tp) {
    memset(m, 0, sizeof *m);
    int is_ckpt = ckpt_is_checkpoint(dir);
    if (is_ckpt ? ckpt_model_config(&m->cfg, dir, config_json, n_layers_keep)
                : (config_json && model_config_check(dir, config_json, "model.model_config.hf_config")) ||
                      model_config_load(&m->cfg, dir, n_layers_keep))
        return -1;
    if (tp && tp->size > 1) {
        if (is_ckpt)
            return err_set("%s: tensor parallelism reads Hugging Face safetensors; convert the .ckpt first (csft "
                           "convert %s HF_DIR)", dir, dir);
        if (tp_check_config(&m->cfg, tp->size)) return err_wrap("%s", dir);
        m->tp = *tp;
    }
    struct safetensors *st = NULL;
    struct ckpt *ck = NULL;
    if (is_ckpt ? ckpt_open(&ck, dir) : safetensors_open(&st, dir)) return -1;
    int64_t in_files = 0; /* the config's parameters must be there before buffers are sized by it */
    for (int i = 0; i < (ck ? ck->n : safetensors_count(st)); i++) in_files += ck ? ck->t[i].numel : safetensors_at(st, i)->numel;
    if (build_params(m, train_base, bf16, 1, in_files)) {
        if (st) safetensors_close(st);
        ckpt_close(ck);
        return err_wrap("%s", dir);
    }
    if (!is_ckpt) { /* the folder's own config.json, written back by model_save */
        char *cp = dir_exists(dir) ? path_join(dir, "config.json") : xstrdup(dir);
        m->config_text = file_read_all(cp, NULL);
        free(cp);
    }
    if (model_tp_on(m)) tp_plan_scratch(m);
    float *tmp = NULL; /* a bf16 tensor is read as float32 here, then rounded */
    for (int i = 0; i < m->n_params; i++) {
        struct param *p = &m->params[i];
        float *dst = p->data;
        if (p->data16) dst = tmp = xrealloc(tmp, sizeof(float) * (size_t)p->numel);
        struct param q = *p; /* this rank's slice (all of it without tensor parallelism) */
        q.data = dst;
        if (ck ? mf_ckpt_read(ck, &m->cfg, p->name, dst, p->shape, p->n_dims) : tp_read_param(st, p->name, &q)) {
            free(tmp);
            if (st) safetensors_close(st);
            ckpt_close(ck);
            model_free(m);
            return err_wrap("%s", dir);
        }
        if (p->data16)
            for (int64_t j = 0; j < p->numel; j++) p->data16[j] = f32_to_bf16(tmp[j]);
    }
    free(tmp);
    if (st) safetensors_close(st);
    ckpt_close(ck);
    return 0;
}

/* The table without buffers, of this rank's slices under tensor parallelism. */
static int shape_impl(struct model *m, int train_base, const struct tp_comm *tp) {
    if (tp && tp->size > 1) {
        if (tp_check_config(&m->cfg, tp->size)) return -1;
        m->tp = *tp;
    }
    build_params(m, train_base, 0, 0, -1);
    if (model_tp_on(m)) tp_plan_scratch(m);
    return 0;
}

int model_load_shape(struct model *m, const char *dir, int n_layers_keep, int train_base, const struct tp_comm *tp) {
    memset(m, 0, sizeof *m);
    if (model_config_load(&m->cfg, dir, n_layers_keep)) return -1;
    if (shape_impl(m, train_base, tp)) return err_wrap("%s", dir);
    char *cp = dir_exists(dir) ? path_join(dir, "config.json") : xstrdup(dir);
    m->config_text = file_read_all(cp, NULL); /* written back by model_save_config */
    free(cp);
    return 0;
}

int model_init_shape(struct model *m, const struct model_config *cfg, int train_base, const struct tp_comm *tp) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    return shape_impl(m, train_base, tp);
}

int model_load(struct model *m, const char *dir, int n_layers_keep, int train_base) {
    return load_impl(m, dir, NULL, n_layers_keep, train_base, 0, NULL);
}

int model_load_tp(struct model *m, const char *dir, int n_layers_keep, int train_base, const struct tp_comm *tp) {
    return load_impl(m, dir, NULL, n_layers_keep, train_base, 0, tp);
}

int model_load_bf16_base(struct model *m, const char *dir, int n_layers_keep) {
    return load_impl(m, dir, NULL, n_layers_keep, 0, 1, NULL);
}

int model_load_bf16_base_tp(struct model *m, const char *dir, int n_layers_keep, const struct tp_comm *tp) {
    return load_impl(m, dir, NULL, n_layers_keep, 0, 1, tp);
}

int model_load_from(struct model *m, const char *path, const char *config_json, int n_layers_keep, int train_base,
                    int bf16_base) {
    return load_impl(m, path, config_json, n_layers_keep, train_base, bf16_base, NULL);
}

int model_load_from_tp(struct model *m, const char *path, const char *config_json, int n_layers_keep, int train_base,
                       int bf16_base, const struct tp_comm *tp) {
    return load_impl(m, path, config_json, n_layers_keep, train_base, bf16_base, tp);
}

static int init_random_impl(struct model *m, const struct model_config *cfg, uint64_t seed, int train_base, int bf16,
                            const struct tp_comm *tp) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (tp && tp->size > 1) {
        if (tp_check_config(&m->cfg, tp->size)) return -1;
        m->tp = *tp;
    }
    build_params(m, train_base, bf16, 1, -1);
    if (model_tp_on(m)) tp_plan_scratch(m);
    uint64_t s = seed;
    for (int i = 0; i < m->n_params; i++) {
        struct param *p = &m->params[i];
        int is_norm = strstr(p->name, "norm") != NULL;
        for (int64_t j = 0; j < p->numel; j++) {
            float x = is_norm ? 1.0f : p->n_dims == 1 ? 0.0f : 0.02f * rng_normal(&s);
            if (p->data16) p->data16[j] = f32_to_bf16(x);
            else p->data[j] = x;
        }
    }
    return 0;
}

int model_init_random(struct model *m, const struct model_config *cfg, uint64_t seed, int train_base) {
    return init_random_impl(m, cfg, seed, train_base, 0, NULL);
}

int model_init_random_tp(struct model *m, const struct model_config *cfg, uint64_t seed, int train_base,
                         const struct tp_comm *tp) {
    return init_random_impl(m, cfg, seed, train_base, 0, tp);
}

int model_init_random_bf16_base(struct model *m, const struct model_config *cfg, uint64_t seed) {
    return init_random_impl(m, cfg, seed, 0, 1, NULL);
}

static void acts_free(const struct kernels *K, struct acts *a) {
    if (!a) return;
    float **fs[] = {&a->x,   &a->ln1,  &a->rstd1, &a->xmid, &a->ln2,   &a->rstd2, &a->q,    &a->k,    &a->v,
                    &a->qpre, &a->kpre, &a->qrstd, &a->krstd, &a->att, &a->lse,   &a->gate, &a->up,   &a->h,
                    &a->xa,  &a->lnf,  &a->rstdf, &a->dx,   &a->dln,   &a->dq,    &a->dk,   &a->dv,   &a->dq2,
                    &a->dk2, &a->datt, &a->dxa, &a->ce_scratch}; /* dgate, dup, dh, tmp1, tmp2 live in ce_scratch */
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) K->mem_free(*fs[i]);
    K->mem_free(a->ids);
    K->mem_free(a->pos);
    free(a);
}

void model_drop_acts(struct model *m) {
    acts_free(m->k, m->acts);
    m->acts = NULL;
}

void model_free(struct model *m) {
    const struct kernels *K = m->k ? m->k : &kernels_cpu;
    acts_free(K, m->acts);
    free(m->params);
    K->mem_free(m->base);
    K->mem_free(m->dbase);
    free(m->layers);
    K->mem_free(m->inv_freq);
    free(m->lora_params);
    K->mem_free(m->lora_mem);
    K->mem_free(m->dlora_mem);
    free(m->wscratch);
    free(m->tp_save);
    free(m->tp_buf);
    free(m->tp_stats);
    free(m->config_text);
    free(m->lora.target_regex);
    memset(m, 0, sizeof *m);
}

/* ---- activations ---- */

void model_set_batch(struct model *m, int B, int T) {
    int64_t N = (int64_t)B * T;
    m->B = B, m->T = T;
    if (m->acts && m->acts->cap >= N && m->acts->slots == (m->recompute ? 1 : m->cfg.n_layers)) return;
    acts_free(m->k, m->acts);
    const struct model_config *c = &m->cfg;
    /* this rank's share under tensor parallelism */
    int64_t L = c->n_layers, C = c->hidden_size, F = m->ffn_l, H = m->n_heads_l, KVH = m->n_kv_heads_l;
    int64_t qd = H * c->head_dim, kvd = KVH * c->head_dim, R = m->has_lora ? m->lora.rank : 0;
    int64_t wide = F > C ? F : C;
    if (qd > wide) wide = qd;
    struct acts *a = xcalloc(1, sizeof *a);
    a->cap = N;
    a->slots = m->recompute ? 1 : (int)L;
    int64_t x_layers = L; /* the residual stream is kept for every layer either way */
    L = a->slots;
#define A(field, count) a->field = m->k->mem_alloc(sizeof(float) * (size_t)(count))
    a->ids = m->k->mem_alloc(sizeof(int32_t) * (size_t)N);
    a->pos = m->k->mem_alloc(sizeof(int32_t) * (size_t)N);
    A(x, (x_layers + 1) * N * C);
    /* ln1, ln2 and h are cheap to recompute (elementwise) and rebuilt in backward: one slot */
    A(ln1, N * C), A(rstd1, L * N), A(xmid, L * N * C), A(ln2, N * C), A(rstd2, L * N);
    A(q, L * N * qd), A(k, L * N * kvd), A(v, L * N * kvd), A(att, L * N * qd), A(lse, L * N * H);
    if (c->qk_norm) A(qpre, L * N * qd), A(kpre, L * N * kvd), A(qrstd, L * N * H), A(krstd, L * N * KVH);
    A(gate, L * N * F), A(up, L * N * F), A(h, N * F);
    if (R) A(xa, L * N_LIN * N * R), A(dxa, N * R);
    A(lnf, N * C), A(rstdf, N);
    A(dx, N * C), A(dln, N * C), A(dq, N * qd), A(dk, N * kvd), A(dv, N * kvd), A(dq2, N * qd), A(dk2, N * kvd);
    A(datt, N * qd);
    /* The LM head's scratch is only live inside lm_head_ce, the MLP gradients and the LoRA
     * dropout buffers only outside it: one buffer holds both. */
    a->ce_chunk = ce_chunk(m, N);
    int64_t ce_n = (int64_t)a->ce_chunk * (m->vocab_l + 2 * C), layer_n = 3 * N * F + (R ? 2 * N * wide : 0);
    A(ce_scratch, ce_n > layer_n ? ce_n : layer_n);
    a->dgate = a->ce_scratch, a->dup = a->dgate + N * F, a->dh = a->dup + N * F;
    a->tmp1 = R ? a->dh + N * F : NULL, a->tmp2 = R ? a->tmp1 + N * wide : NULL;
#undef A
    m->acts = a;
}

/* ---- LoRA-aware linear layer ---- */

/* Dropout on the adapter input (PEFT's lora_dropout): the mask is a hash of (seed, layer,
 * linear, index), regenerated in backward instead of stored. */
static int dropout_on(const struct model *m) { return m->has_lora && m->training && m->lora.dropout > 0; }

/* out (N, L->in) (= or += by acc) = drop(x). The index is the element's place in the whole
 * (N, in_full) input, so a tensor-parallel rank holding columns [in_off, in_off + in) draws
 * the mask one process draws. */
static void dropout_apply(const struct model *m, const struct linear *L, float *out, const float *x, int64_t N,
                          int l, int li, int acc) {
    uint64_t base = rng_hash(m->dropout_seed ^ ((uint64_t)(l * N_LIN + li + 1) << 40));
    if (L->in == L->in_full) {
        m->k->dropout(out, x, N * L->in, base, m->lora.dropout, acc);
        return;
    }
    for (int64_t n = 0; n < N; n++)
        m->k->dropout(out + n * L->in, x + n * L->in, L->in, base + (uint64_t)(n * L->in_full + L->in_off),
                      m->lora.dropout, acc);
}

void linear_base_forward(struct model *m, const struct linear *L, float *y, const float *x, int64_t N, int acc) {
    if (L->w16)
        m->k->matmul_forward_bf16(y, x, L->w16, L->b, N, L->in, L->out, 1.0f, acc, m->wscratch, WCHUNK);
    else
        m->k->matmul_forward(y, x, L->w, L->b, N, L->in, L->out, 1.0f, acc);
}

/* xa (N,R) = drop(x) A^T */
static void lora_forward_a(struct model *m, const struct linear *L, int l, int li, float *xa, const float *x,
                           int64_t N) {
    const float *xin = x;
    if (dropout_on(m)) {
        dropout_apply(m, L, m->acts->tmp1, x, N, l, li, 0);
        xin = m->acts->tmp1;
    }
    m->k->matmul_forward(xa, xin, L->lora_a, NULL, N, L->in, m->lora.rank, 1.0f, 0);
}

/* y (N,out) = (acc ? y : 0) + x W^T + b [+ s * drop(x) A^T B^T, saving xa = drop(x) A^T] */
static void lin_forward(struct model *m, int l, int li, float *y, const float *x, int64_t N, int acc, float *xa) {
    struct linear *L = &m->layers[l].lin[li];
    linear_base_forward(m, L, y, x, N, acc);
    if (!L->lora_a) return;
    lora_forward_a(m, L, l, li, xa, x, N);
    m->k->matmul_forward(y, xa, L->lora_b, NULL, N, m->lora.rank, L->out, m->lora_scaling, 1);
}

/* y (N,out) += x W^T + b [+ LoRA] for o_proj and down_proj. Under tensor parallelism they are
 * row-parallel (Megatron's RowParallelLinear): x and W hold this rank's input columns (A too,
 * and xa = drop(x) A^T is summed over the ranks first); every rank computes its partial
 * product, rank 0 adds y's old value, the bias and the LoRA term, one all-reduce sums them. */
static void lin_forward_rowpar(struct model *m, int l, int li, float *y, const float *x, int64_t N, float *xa) {
    if (!model_tp_on(m)) {
        lin_forward(m, l, li, y, x, N, 1, xa);
        return;
    }
    struct linear *L = &m->layers[l].lin[li];
    int lead = m->tp.rank == 0;
    if (L->w16)
        m->k->matmul_forward_bf16(y, x, L->w16, lead ? L->b : NULL, N, L->in, L->out, 1.0f, lead, m->wscratch, WCHUNK);
    else
        m->k->matmul_forward(y, x, L->w, lead ? L->b : NULL, N, L->in, L->out, 1.0f, lead);
    if (L->lora_a) {
        lora_forward_a(m, L, l, li, xa, x, N);
        tp_allreduce(m, xa, N * m->lora.rank);
        if (lead) m->k->matmul_forward(y, xa, L->lora_b, NULL, N, m->lora.rank, L->out, m->lora_scaling, 1);
    }
    tp_allreduce(m, y, N * L->out);
}

/* dx (N,in) (= or += by acc) from dy (N,out); weight and adapter gradients accumulate. Under
 * tensor parallelism the same code is right for both kinds: a column-parallel linear leaves
 * dx partial (the caller sums it over the ranks), a row-parallel one gets the whole dy. */
static void lin_backward(struct model *m, int l, int li, float *dx, int acc, const float *dy, const float *x,
                         const float *xa, int64_t N) {
    const struct kernels *K = m->k;
    struct acts *a = m->acts;
    struct linear *L = &m->layers[l].lin[li];
    if (L->w16) /* frozen: no weight gradients */
        K->matmul_backward_bf16(dx, dy, L->w16, N, L->in, L->out, 1.0f, acc, m->wscratch, WCHUNK);
    else
        K->matmul_backward(dx, L->dw, L->db, dy, x, L->w, N, L->in, L->out, 1.0f, acc);
    if (!L->lora_a) return;
    int R = m->lora.rank;
    K->matmul_backward(a->dxa, L->dlora_b, NULL, dy, xa, L->lora_b, N, R, L->out, m->lora_scaling, 0);
    if (!dropout_on(m)) {
        K->matmul_backward(dx, L->dlora_a, NULL, a->dxa, x, L->lora_a, N, L->in, R, 1.0f, 1);
        return;
    }
    dropout_apply(m, L, a->tmp1, x, N, l, li, 0);
    K->matmul_backward(a->tmp2, L->dlora_a, NULL, a->dxa, a->tmp1, L->lora_a, N, L->in, R, 1.0f, 0);
    /* d drop(x)/dx is the same mask and scale: dx += drop(tmp2) */
    dropout_apply(m, L, dx, a->tmp2, N, l, li, 1);
}

/* ---- forward / backward ---- */

#define SL(field, l, width) (a->field + (int64_t)(l) * N * (width))

/* One decoder layer forward: x[l] -> x[l+1], saving its activations in slot l (slot 0 when
 * recomputing: only x[l] is kept per layer and backward re-runs this before each layer).
 * H, KVH and F are this rank's share under tensor parallelism. */
static void layer_forward(struct model *m, int l) {
    const struct model_config *c = &m->cfg;
    const struct kernels *K = m->k;
    struct acts *a = m->acts;
    int B = m->B, T = m->T;
    int64_t N = (int64_t)B * T;
    int C = c->hidden_size, F = m->ffn_l, H = m->n_heads_l, KVH = m->n_kv_heads_l, HS = c->head_dim;
    int qd = H * HS, kvd = KVH * HS, R = m->has_lora ? m->lora.rank : 0, s = m->recompute ? 0 : l;
    float eps = c->rms_norm_eps;
    const int32_t *pos = a->pos;
    struct layer *ly = &m->layers[l];
    float *x = SL(x, l, C), *ln1 = a->ln1, *q = SL(q, s, qd), *k = SL(k, s, kvd), *v = SL(v, s, kvd);
    float *xa = R ? a->xa + (int64_t)s * N_LIN * N * R : NULL;
#define XA(i) (xa ? xa + (int64_t)(i) * N * R : NULL)
    K->rmsnorm_forward(ln1, SL(rstd1, s, 1), x, ly->ln1, N, C, eps);
    lin_forward(m, l, LIN_Q, q, ln1, N, 0, XA(LIN_Q));
    lin_forward(m, l, LIN_K, k, ln1, N, 0, XA(LIN_K));
    lin_forward(m, l, LIN_V, v, ln1, N, 0, XA(LIN_V));
    if (c->qk_norm) {
        K->mem_copy(SL(qpre, s, qd), q, sizeof(float) * N * qd);
        K->mem_copy(SL(kpre, s, kvd), k, sizeof(float) * N * kvd);
        K->rmsnorm_forward(q, SL(qrstd, s, H), SL(qpre, s, qd), ly->q_norm, N * H, HS, eps);
        K->rmsnorm_forward(k, SL(krstd, s, KVH), SL(kpre, s, kvd), ly->k_norm, N * KVH, HS, eps);
    }
    K->rope_apply(q, pos, m->inv_freq, N, H, HS, 1);
    K->rope_apply(k, pos, m->inv_freq, N, KVH, HS, 1);
    K->attention_forward(SL(att, s, qd), SL(lse, s, H), q, k, v, pos, B, T, H, KVH, HS);
    float *xmid = SL(xmid, s, C);
    K->mem_copy(xmid, x, sizeof(float) * N * C);
    lin_forward_rowpar(m, l, LIN_O, xmid, SL(att, s, qd), N, XA(LIN_O));
    float *ln2 = a->ln2, *gate = SL(gate, s, F), *up = SL(up, s, F), *h = a->h;
    K->rmsnorm_forward(ln2, SL(rstd2, s, 1), xmid, ly->ln2, N, C, eps);
    lin_forward(m, l, LIN_GATE, gate, ln2, N, 0, XA(LIN_GATE));
    lin_forward(m, l, LIN_UP, up, ln2, N, 0, XA(LIN_UP));
    K->swiglu_forward(h, gate, up, N * F);
    float *xnext = SL(x, l + 1, C);
    K->mem_copy(xnext, xmid, sizeof(float) * N * C);
    lin_forward_rowpar(m, l, LIN_DOWN, xnext, h, N, XA(LIN_DOWN));
#undef XA
}

void model_forward(struct model *m, const int32_t *ids, const int32_t *pos, int B, int T) {
    model_set_batch(m, B, T);
    const struct model_config *c = &m->cfg;
    struct acts *a = m->acts;
    int64_t N = (int64_t)B * T;
    int C = c->hidden_size;
    m->k->mem_copy(a->ids, ids, sizeof(int32_t) * N); /* backend memory from here on */
    m->k->mem_copy(a->pos, pos, sizeof(int32_t) * N);
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_FORWARD, 0, m->unit_ctx);
    if (model_tp_on(m)) tp_embedding_forward(m, a->x, a->ids, N);
    else m->k->embedding_forward(a->x, a->ids, m->wte, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        if (m->unit_hook) m->unit_hook(MODEL_UNIT_FORWARD, 1 + l, m->unit_ctx);
        layer_forward(m, l);
    }
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_FORWARD, c->n_layers + 1, m->unit_ctx);
    m->k->rmsnorm_forward(a->lnf, a->rstdf, SL(x, c->n_layers, C), m->norm, N, C, c->rms_norm_eps);
}

void model_logits(struct model *m, float *logits) {
    CHECK(!model_tp_on(m), "model_logits needs the whole LM head (no tensor parallelism)");
    int64_t N = (int64_t)m->B * m->T;
    size_t bytes = sizeof(float) * (size_t)N * (size_t)m->cfg.vocab_size;
    float *dev = m->k->mem_alloc(bytes); /* logits is host memory */
    m->k->matmul_forward(dev, m->acts->lnf, m->lm_head, NULL, N, m->cfg.hidden_size, m->cfg.vocab_size, 1.0f, 0);
    m->k->mem_copy(logits, dev, bytes);
    m->k->mem_free(dev);
}

/* The LM head + cross-entropy of kernels.h (vocab-parallel under tensor parallelism). */
static double lm_head_ce(struct model *m, float *dh, float *dw, const int32_t *targets, float grad_scale) {
    int64_t N = (int64_t)m->B * m->T;
    if (model_tp_on(m)) return tp_lm_head_ce(m, dh, dw, m->acts->lnf, m->lm_head, targets, N, grad_scale);
    return m->k->lm_head_ce(dh, dw, m->acts->lnf, m->lm_head, targets, N, m->cfg.hidden_size, m->cfg.vocab_size,
                            grad_scale, m->acts->ce_scratch, m->acts->ce_chunk);
}

double model_loss(struct model *m, const int32_t *targets) { return lm_head_ce(m, NULL, NULL, targets, 1.0f); }

double model_backward(struct model *m, const int32_t *targets, float grad_scale) {
    const struct model_config *c = &m->cfg;
    const struct kernels *K = m->k;
    struct acts *a = m->acts;
    int B = m->B, T = m->T;
    int64_t N = (int64_t)B * T;
    int C = c->hidden_size, F = m->ffn_l, H = m->n_heads_l, KVH = m->n_kv_heads_l, HS = c->head_dim;
    int qd = H * HS, kvd = KVH * HS, R = m->has_lora ? m->lora.rank : 0;
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_BACKWARD, c->n_layers + 1, m->unit_ctx);
    double loss = lm_head_ce(m, a->dln, m->dlm_head, targets, grad_scale);
    K->rmsnorm_backward(a->dx, m->dnorm, a->dln, SL(x, c->n_layers, C), m->norm, a->rstdf, N, C, 0);
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_DONE, c->n_layers + 1, m->unit_ctx);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        if (m->unit_hook) m->unit_hook(MODEL_UNIT_BACKWARD, 1 + l, m->unit_ctx);
        struct layer *ly = &m->layers[l];
        int s = m->recompute ? 0 : l; /* activation slot */
        if (m->recompute) layer_forward(m, l);
        if (model_tp_on(m)) tp_partial_begin(m, l);
        float *xa = R ? a->xa + (int64_t)s * N_LIN * N * R : NULL;
#define XA(i) (xa ? xa + (int64_t)(i) * N * R : NULL)
        /* x[l+1] = xmid + down(swiglu(gate(ln2), up(ln2))), ln2 = norm(xmid) */
        K->rmsnorm_forward(a->ln2, SL(rstd2, s, 1), SL(xmid, s, C), ly->ln2, N, C, c->rms_norm_eps); /* rebuild */
        K->swiglu_forward(a->h, SL(gate, s, F), SL(up, s, F), N * F);
        lin_backward(m, l, LIN_DOWN, a->dh, 0, a->dx, a->h, XA(LIN_DOWN), N);
        K->swiglu_backward(a->dgate, a->dup, a->dh, SL(gate, s, F), SL(up, s, F), N * F);
        lin_backward(m, l, LIN_GATE, a->dln, 0, a->dgate, a->ln2, XA(LIN_GATE), N);
        lin_backward(m, l, LIN_UP, a->dln, 1, a->dup, a->ln2, XA(LIN_UP), N);
        tp_allreduce(m, a->dln, N * C); /* column-parallel: each rank's share of dln */
        K->rmsnorm_backward(a->dx, ly->dln2, a->dln, SL(xmid, s, C), ly->ln2, SL(rstd2, s, 1), N, C, 1);
        /* xmid = x + o(attention(rope(q), rope(k), v)), q/k/v = proj(norm(x)) */
        lin_backward(m, l, LIN_O, a->datt, 0, a->dx, SL(att, s, qd), XA(LIN_O), N);
        K->attention_backward(a->dq, a->dk, a->dv, a->datt, SL(att, s, qd), SL(lse, s, H), SL(q, s, qd),
                              SL(k, s, kvd), SL(v, s, kvd), a->pos, B, T, H, KVH, HS);
        K->rope_apply(a->dq, a->pos, m->inv_freq, N, H, HS, -1);
        K->rope_apply(a->dk, a->pos, m->inv_freq, N, KVH, HS, -1);
        float *dq = a->dq, *dk = a->dk;
        if (c->qk_norm) {
            K->rmsnorm_backward(a->dq2, ly->dq_norm, a->dq, SL(qpre, s, qd), ly->q_norm, SL(qrstd, s, H), N * H, HS, 0);
            K->rmsnorm_backward(a->dk2, ly->dk_norm, a->dk, SL(kpre, s, kvd), ly->k_norm, SL(krstd, s, KVH), N * KVH,
                                HS, 0);
            dq = a->dq2, dk = a->dk2;
        }
        float *ln1 = a->ln1;
        K->rmsnorm_forward(ln1, SL(rstd1, s, 1), SL(x, l, C), ly->ln1, N, C, c->rms_norm_eps); /* rebuild */
        lin_backward(m, l, LIN_Q, a->dln, 0, dq, ln1, XA(LIN_Q), N);
        lin_backward(m, l, LIN_K, a->dln, 1, dk, ln1, XA(LIN_K), N);
        lin_backward(m, l, LIN_V, a->dln, 1, a->dv, ln1, XA(LIN_V), N);
        tp_allreduce(m, a->dln, N * C);
        K->rmsnorm_backward(a->dx, ly->dln1, a->dln, SL(x, l, C), ly->ln1, SL(rstd1, s, 1), N, C, 1);
        if (model_tp_on(m)) tp_partial_end(m, l);
        if (m->on_layer_grads_ready) m->on_layer_grads_ready(l, m->grads_ready_ctx);
        if (m->unit_hook) m->unit_hook(MODEL_UNIT_DONE, 1 + l, m->unit_ctx);
#undef XA
    }
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_BACKWARD, 0, m->unit_ctx);
    if (m->base_trained) {
        if (model_tp_on(m)) tp_embedding_backward(m, m->dwte, a->dx, a->ids, N);
        else K->embedding_backward(m->dwte, a->dx, a->ids, N, C);
    }
    if (m->unit_hook) m->unit_hook(MODEL_UNIT_DONE, 0, m->unit_ctx);
    return loss;
}

void model_zero_grad(struct model *m) {
    if (m->dbase) m->k->mem_zero(m->dbase, sizeof(float) * (size_t)m->n_base);
    if (m->dlora_mem) m->k->mem_zero(m->dlora_mem, sizeof(float) * (size_t)m->n_lora);
}

int64_t model_shift_labels(int32_t *targets, const int32_t *labels, int B, int T) {
    int64_t n = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t y = t + 1 < T ? labels[(int64_t)b * T + t + 1] : -100;
            targets[(int64_t)b * T + t] = y < 0 ? -100 : y;
            n += y >= 0;
        }
    return n;
}

struct param *model_trainable(struct model *m, int *n) {
    if (m->has_lora) {
        *n = m->n_lora_params;
        return m->lora_params;
    }
    *n = m->base_trained ? m->n_params : 0;
    return m->params;
}

int model_base_to_bf16(struct model *m) {
    if (m->base_bf16) return 0;
    if (m->dbase) return err_set("model_base_to_bf16: the base is trained (full fine-tuning); a bf16 base must be frozen");
    if (m->k != &kernels_cpu) return err_set("a bf16 base is supported on the CPU backend only for now");
    const struct model_config *c = &m->cfg;
    /* Which params are decoder linear weights: they become bf16. */
    char *is_lin = xcalloc((size_t)m->n_params, 1);
    for (int i = 0; i < m->n_params; i++)
        for (int l = 0; l < c->n_layers && !is_lin[i]; l++)
            for (int li = 0; li < N_LIN; li++)
                if (m->layers[l].lin[li].w == m->params[i].data) is_lin[i] = 1;
    /* Compact in place, in table order: a write cursor never passes the read cursor (bf16
     * halves a tensor; float32 tensors keep their size, aligned to 4 bytes). */
    char *base = (char *)m->base;
    size_t wr = 0, rd = 0, *off = xmalloc(sizeof(size_t) * (size_t)m->n_params);
    for (int i = 0; i < m->n_params; i++) {
        struct param *p = &m->params[i];
        CHECK((char *)p->data == base + rd, "parameter %s not where the table says", p->name);
        if (is_lin[i]) {
            wr = (wr + 1) & ~(size_t)1;
            /* through a small buffer, so no store can precede a load of the same bytes */
            float buf[1024];
            for (int64_t j0 = 0; j0 < p->numel; j0 += 1024) {
                int nb = p->numel - j0 < 1024 ? (int)(p->numel - j0) : 1024;
                memcpy(buf, p->data + j0, sizeof(float) * (size_t)nb);
                uint16_t h[1024];
                for (int j = 0; j < nb; j++) h[j] = f32_to_bf16(buf[j]);
                memcpy(base + wr + 2 * (size_t)j0, h, sizeof(uint16_t) * (size_t)nb);
            }
            off[i] = wr, wr += (size_t)p->numel * 2;
        } else {
            wr = (wr + 3) & ~(size_t)3;
            memmove(base + wr, p->data, (size_t)p->numel * 4);
            off[i] = wr, wr += (size_t)p->numel * 4;
        }
        rd += (size_t)p->numel * 4;
        CHECK(wr <= rd, "bf16 compaction overtook its input at %s", p->name);
    }
    base = xrealloc(base, wr ? wr : 1);
    m->base = (float *)base;
    float **fields[] = {&m->wte, &m->norm, &m->lm_head};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (int i = 0; i < m->n_params; i++)
            if (*fields[f] == m->params[i].data) { *fields[f] = (float *)(base + off[i]); break; }
    int64_t widest = 0;
    for (int i = 0, l = 0; l < c->n_layers; l++) {
        struct layer *ly = &m->layers[l];
        float **small[] = {&ly->ln1, &ly->ln2, &ly->q_norm, &ly->k_norm};
        for (size_t f = 0; f < 4; f++)
            for (i = 0; i < m->n_params && *small[f]; i++)
                if (*small[f] == m->params[i].data) { *small[f] = (float *)(base + off[i]); break; }
        for (int li = 0; li < N_LIN; li++) {
            struct linear *L = &ly->lin[li];
            for (i = 0; i < m->n_params; i++) {
                if (L->w == m->params[i].data) L->w16 = (uint16_t *)(base + off[i]), L->w = NULL;
                if (L->b && L->b == m->params[i].data) L->b = (float *)(base + off[i]);
            }
            if (L->in > widest) widest = L->in;
        }
    }
    for (int i = 0; i < m->n_params; i++) {
        m->params[i].data = is_lin[i] ? NULL : (float *)(base + off[i]);
        m->params[i].data16 = is_lin[i] ? (uint16_t *)(base + off[i]) : NULL;
    }
    free(is_lin);
    free(off);
    m->wscratch = xmalloc(sizeof(float) * (size_t)(WCHUNK * widest));
    m->base_bf16 = 1;
    return 0;
}

int model_save(const struct model *m, const char *dir, int bf16, size_t max_shard_bytes) {
    if (m->base_bf16) return err_set("model_save %s: the base is held in bf16 (model_base_to_bf16); save from a float32 model", dir);
    int tp = model_tp_on(m), writer = !tp || m->tp.rank == 0;
    m->k->sync(); /* the writer reads the weights from the host */
    struct st_entry *e = xcalloc((size_t)m->n_params, sizeof *e);
    for (int i = 0; i < m->n_params; i++) {
        const struct param *p = &m->params[i];
        e[i].name = p->name;
        e[i].n_dims = p->n_dims;
        e[i].shape[0] = p->full_shape[0];
        e[i].shape[1] = p->full_shape[1];
        e[i].data = tp ? tp_gather_param(m, p) : p->data; /* collective: tp rank 0 writes */
        if (!writer) free((void *)e[i].data), e[i].data = NULL;
        e[i].dtype = bf16 ? DTYPE_BF16 : DTYPE_F32;
    }
    int rc = 0;
    if (writer) rc = dir_create(dir) || safetensors_save(dir, "model", e, m->n_params, max_shard_bytes) ||
                     model_save_config(m, dir, bf16) ? -1 : 0;
    if (tp)
        for (int i = 0; i < m->n_params; i++) free((void *)e[i].data);
    free(e);
    return tp_agree(m, rc, dir);
}

int model_save_config(const struct model *m, const char *dir, int bf16) {
    int rc;
    struct model_config c = m->cfg;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "%s", bf16 ? "bfloat16" : "float32");
    char *json = m->config_text ? model_config_json_edit(m->config_text, &c, c.torch_dtype) : NULL;
    if (!json) json = model_config_to_json(&c);
    char *path = path_join(dir, "config.json");
    rc = file_write_atomic(path, json, strlen(json));
    free(json);
    free(path);
    return rc;
}
