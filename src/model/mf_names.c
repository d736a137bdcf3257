/* mf_names: see mf_names.h. Name map: MindFormers research/qwen2_5/convert_weight.py and
 * models/llama/llama.py::convert_name; concatenated layouts: mindformers/utils/convert_utils.py
 * (qkv_concat_hf2mg, ffn_concat_hf2mg). */
#include "model/mf_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "model/model.h"

static const char *const layer_map[][2] = {
    {"self_attn.q_proj", "attention.wq"},     {"self_attn.k_proj", "attention.wk"},
    {"self_attn.v_proj", "attention.wv"},     {"self_attn.o_proj", "attention.wo"},
    {"mlp.gate_proj", "feed_forward.w1"},     {"mlp.up_proj", "feed_forward.w3"},
    {"mlp.down_proj", "feed_forward.w2"},     {"input_layernorm", "attention_norm"},
    {"post_attention_layernorm", "ffn_norm"},
};
static const char *const top_map[][2] = {
    {"model.embed_tokens.weight", "model.tok_embeddings.embedding_weight"},
    {"model.norm.weight", "model.norm_out.weight"},
    {"lm_head.weight", "lm_head.weight"},
};
enum { N_LAYER_MAP = sizeof layer_map / sizeof layer_map[0], N_TOP_MAP = sizeof top_map / sizeof top_map[0] };

/* "model.layers.<i>." prefix: its length, or 0. */
static size_t layer_prefix(const char *s, int *layer) {
    if (strncmp(s, "model.layers.", 13)) return 0;
    char *end;
    long l = strtol(s + 13, &end, 10);
    if (end == s + 13 || *end != '.' || l < 0 || l > 100000) return 0;
    *layer = (int)l;
    return (size_t)(end + 1 - s);
}

/* Maps "model.layers.i.<from>.<rest>" with table column a -> b; lora: PEFT <-> mindpet suffixes. */
static int map_name(const char *name, char *out, size_t n, int dir) {
    for (int i = 0; i < N_TOP_MAP; i++)
        if (!strcmp(name, top_map[i][dir])) return snprintf(out, n, "%s", top_map[i][!dir]) < (int)n ? 0 : -1;
    const char *s = name;
    int peft = 0;
    if (dir == 0 && !strncmp(s, "base_model.model.", 17)) s += 17, peft = 1;
    int layer;
    size_t pl = layer_prefix(s, &layer);
    if (!pl) return -1;
    const char *rest = s + pl;
    for (int i = 0; i < N_LAYER_MAP; i++) {
        size_t fl = strlen(layer_map[i][dir]);
        if (strncmp(rest, layer_map[i][dir], fl) || rest[fl] != '.') continue;
        const char *tail = rest + fl + 1, *to = layer_map[i][!dir];
        if (dir == 0) {
            if (peft != (strstr(tail, "lora_") != NULL)) return -1;
            if (!strcmp(tail, "lora_A.weight")) tail = "mindpet_delta_lora_a";
            else if (!strcmp(tail, "lora_B.weight")) tail = "mindpet_delta_lora_b";
            else if (strcmp(tail, "weight") && strcmp(tail, "bias")) return -1;
            return snprintf(out, n, "model.layers.%d.%s.%s", layer, to, tail) < (int)n ? 0 : -1;
        }
        const char *pre = "";
        if (!strcmp(tail, "mindpet_delta_lora_a") || !strcmp(tail, "tk_delta_lora_a")) pre = "base_model.model.", tail = "lora_A.weight";
        else if (!strcmp(tail, "mindpet_delta_lora_b") || !strcmp(tail, "tk_delta_lora_b")) pre = "base_model.model.", tail = "lora_B.weight";
        else if (strcmp(tail, "weight") && strcmp(tail, "bias")) return -1;
        return snprintf(out, n, "%smodel.layers.%d.%s.%s", pre, layer, to, tail) < (int)n ? 0 : -1;
    }
    return -1;
}

int mf_name_from_hf(const char *hf, char *out, size_t n) { return map_name(hf, out, n, 0); }
int mf_name_to_hf(const char *mf, char *out, size_t n) { return map_name(mf, out, n, 1); }

static int shape_ok(const struct ckpt *ck, const struct ckpt_tensor *t, const int64_t *shape, int n_dims) {
    int ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = t->shape[i] == shape[i];
    if (ok) return 0;
    char a[64] = "", b[64] = "";
    for (int i = 0; i < t->n_dims && i < 4; i++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    for (int i = 0; i < n_dims; i++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", i ? ", " : "", (long long)shape[i]);
    return err_set("%s: tensor '%s' has shape [%s], the model config needs [%s]", ck->path, t->name, a, b);
}

/* Which concatenated tensor holds hf_name's rows: 'q','k','v' of w_qkv, 'g','u' of w_gate_hidden. */
static int concat_part(const char *hf, char *cat, size_t n, char *part, const char **kind) {
    int layer;
    size_t pl = layer_prefix(hf, &layer);
    if (!pl) return -1;
    const char *rest = hf + pl;
    static const char *const parts[][3] = {{"self_attn.q_proj", "attention.w_qkv", "q"},
                                           {"self_attn.k_proj", "attention.w_qkv", "k"},
                                           {"self_attn.v_proj", "attention.w_qkv", "v"},
                                           {"mlp.gate_proj", "feed_forward.w_gate_hidden", "g"},
                                           {"mlp.up_proj", "feed_forward.w_gate_hidden", "u"}};
    for (int i = 0; i < 5; i++) {
        size_t fl = strlen(parts[i][0]);
        if (strncmp(rest, parts[i][0], fl) || rest[fl] != '.') continue;
        *kind = rest + fl + 1; /* weight / bias */
        *part = parts[i][2][0];
        snprintf(cat, n, "model.layers.%d.%s.%s", layer, parts[i][1], *kind);
        return 0;
    }
    return -1;
}

int mf_ckpt_read(const struct ckpt *ck, const struct model_config *c, const char *hf_name, float *dst,
                 const int64_t *shape, int n_dims) {
    char mf[200], cat[200];
    const struct ckpt_tensor *t = NULL;
    if (!mf_name_from_hf(hf_name, mf, sizeof mf)) t = ckpt_find(ck, mf);
    if (t) {
        if (shape_ok(ck, t, shape, n_dims)) return -1;
        return ckpt_tensor_f32(ck, t, dst) ? err_wrap("%s", ck->path) : 0;
    }
    char part;
    const char *kind;
    if (concat_part(hf_name, cat, sizeof cat, &part, &kind) || !(t = ckpt_find(ck, cat))) {
        /* a rank_0 file of a distributed save holds only its part of the model */
        const char *r0 = strstr(ck->path, "/rank_0/");
        char *r1 = r0 ? xasprintf("%.*s/rank_1", (int)(r0 - ck->path), ck->path) : NULL;
        int split = r1 && dir_exists(r1);
        free(r1);
        return err_set("%s: no tensor '%s' (the MindSpore Transformers name of %s)%s", ck->path,
                       mf_name_from_hf(hf_name, mf, sizeof mf) ? hf_name : mf, hf_name,
                       split ? "; rank_0 of a distributed save holds only its part of the model: merge the ranks "
                               "into one complete checkpoint with MindSpore (transform_checkpoints, or save with "
                               "integrated_save: True) first"
                             : "");
    }
    int64_t cols = n_dims == 2 ? shape[1] : 1, rows = shape[0];
    int HS = c->head_dim, KVH = c->n_kv_heads, rep = c->n_heads / c->n_kv_heads, F = c->intermediate_size;
    int64_t total_rows = part == 'g' || part == 'u' ? 2 * (int64_t)F : (int64_t)(rep + 2) * KVH * HS;
    if (t->numel != total_rows * cols)
        return err_set("%s: tensor '%s' has %lld elements, the model config needs %lld x %lld", ck->path, cat,
                       (long long)t->numel, (long long)total_rows, (long long)cols);
    float *all = xmalloc(sizeof(float) * (size_t)t->numel);
    if (ckpt_tensor_f32(ck, t, all)) {
        free(all);
        return err_wrap("%s", ck->path);
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t src;
        if (part == 'g' || part == 'u') src = 2 * r + (part == 'u');
        else {
            int64_t h = r / HS, d = r % HS, grp = part == 'q' ? h / rep : h, base = grp * (int64_t)(rep + 2) * HS;
            src = part == 'q' ? base + (h % rep) * HS + d : base + (int64_t)(part == 'k' ? rep : rep + 1) * HS + d;
        }
        memcpy(dst + r * cols, all + src * cols, sizeof(float) * (size_t)cols);
    }
    free(all);
    return 0;
}

static int save_params(const struct param *ps, int n, const char *path, enum dtype dt, int crc) {
    const char *type = ckpt_type_name(dt);
    if (!type || (dt != DTYPE_F32 && dt != DTYPE_BF16 && dt != DTYPE_F16))
        return err_set("%s: .ckpt weights are written as float32, bfloat16 or float16", path);
    struct ckpt_entry *e = xcalloc((size_t)n, sizeof *e);
    void **bufs = xcalloc((size_t)n, sizeof *bufs);
    char **names = xcalloc((size_t)n, sizeof *names);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const struct param *p = &ps[i];
        char mf[200];
        if (!p->data) {
            rc = err_set("%s: tensor %s is held in bf16; save from a float32 model", path, p->name);
            break;
        }
        if (mf_name_from_hf(p->name, mf, sizeof mf)) {
            rc = err_set("%s: tensor %s has no MindSpore Transformers name (Qwen3 q/k norms are not in their legacy "
                         "LlamaForCausalLM)", path, p->name);
            break;
        }
        names[i] = xstrdup(mf);
        e[i].name = names[i];
        e[i].type = type;
        e[i].n_dims = p->n_dims;
        e[i].shape[0] = p->shape[0], e[i].shape[1] = p->shape[1];
        e[i].nbytes = (size_t)p->numel * dtype_size(dt);
        if (dt == DTYPE_F32) e[i].data = p->data;
        else {
            bufs[i] = xmalloc(e[i].nbytes ? e[i].nbytes : 1);
            dtype_from_f32(bufs[i], p->data, dt, p->numel);
            e[i].data = bufs[i];
        }
    }
    if (!rc) rc = ckpt_save(path, e, n, crc);
    for (int i = 0; i < n; i++) free(bufs[i]), free(names[i]);
    free(bufs), free(names), free(e);
    return rc;
}

int mf_ckpt_save_model(const struct model *m, const char *path, enum dtype dt, int crc) {
    if (m->base_bf16) return err_set("%s: the base is held in bf16; save from a float32 model", path);
    m->k->sync();
    return save_params(m->params, m->n_params, path, dt, crc);
}

int mf_ckpt_save_lora(const struct model *m, const char *path) {
    if (!m->has_lora) return err_set("%s: the model has no LoRA adapter", path);
    m->k->sync();
    return save_params(m->lora_params, m->n_lora_params, path, DTYPE_F32, 0);
}
