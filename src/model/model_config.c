/* model_config: see model_config.h. Field semantics follow transformers'
 * configuration_{qwen2,qwen3,llama,mistral}.py and modeling_rope_utils.py. */
#include "model/model_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

static const struct {
    const char *architecture, *model_type;
    enum model_arch arch;
} supported[] = {
    {"Qwen2ForCausalLM", "qwen2", ARCH_QWEN2},
    {"Qwen3ForCausalLM", "qwen3", ARCH_QWEN3},
    {"LlamaForCausalLM", "llama", ARCH_LLAMA},
    {"MistralForCausalLM", "mistral", ARCH_MISTRAL},
};
#define SUPPORTED_LIST "Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM, MistralForCausalLM"

const char *model_arch_name(enum model_arch a) { return supported[a].architecture; }

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Reads integer key k into *out; required keys fail when absent. */
static int get_int(const cJSON *o, const char *k, int *out, int required, const char *path) {
    const cJSON *v = get(o, k);
    if (!v) return required ? err_set("%s: missing required key \"%s\"", path, k) : 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return err_set("%s: \"%s\" must be a non-negative integer", path, k);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_num(const cJSON *o, const char *k, double *out, const char *path) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsNumber(v)) return err_set("%s: \"%s\" must be a number", path, k);
    *out = v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *k, int *out, const char *path) {
    const cJSON *v = get(o, k);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return err_set("%s: \"%s\" must be true or false", path, k);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int parse_rope(struct model_config *cfg, const cJSON *rope, const char *path) {
    if (!rope) return 0;
    if (!cJSON_IsObject(rope)) return err_set("%s: rope parameters must be an object", path);
    if (get_num(rope, "rope_theta", &cfg->rope_theta, path)) return -1;
    const cJSON *t = get(rope, "rope_type");
    if (!t) t = get(rope, "type");
    const char *type = t && cJSON_IsString(t) ? t->valuestring : "default";
    if (strcmp(type, "default") == 0) {
        cfg->rope_type = ROPE_DEFAULT;
    } else if (strcmp(type, "llama3") == 0) {
        cfg->rope_type = ROPE_LLAMA3;
        double omp = 8192;
        if (get_num(rope, "factor", &cfg->rope_factor, path) || get_num(rope, "low_freq_factor", &cfg->rope_low_freq_factor, path) ||
            get_num(rope, "high_freq_factor", &cfg->rope_high_freq_factor, path) ||
            get_num(rope, "original_max_position_embeddings", &omp, path))
            return -1;
        cfg->rope_original_max_pos = (int)omp;
    } else if (strcmp(type, "linear") == 0) {
        cfg->rope_type = ROPE_LINEAR;
        if (get_num(rope, "factor", &cfg->rope_factor, path)) return -1;
    } else {
        return err_set("%s: rope type \"%s\" is not supported (supported: default, linear, llama3)", path, type);
    }
    return 0;
}

static int parse(struct model_config *cfg, const cJSON *j, const char *path) {
    memset(cfg, 0, sizeof *cfg);
    const cJSON *archs = get(j, "architectures");
    const cJSON *mt = get(j, "model_type");
    int found = -1;
    for (int i = 0; i < (int)(sizeof supported / sizeof supported[0]); i++) {
        if (archs && cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0) {
            const cJSON *a0 = cJSON_GetArrayItem(archs, 0);
            if (cJSON_IsString(a0) && strcmp(a0->valuestring, supported[i].architecture) == 0) found = i;
        } else if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, supported[i].model_type) == 0) {
            found = i;
        }
    }
    if (found < 0) {
        const cJSON *a0 = archs ? cJSON_GetArrayItem(archs, 0) : NULL;
        const char *name = a0 && cJSON_IsString(a0) ? a0->valuestring : mt && cJSON_IsString(mt) ? mt->valuestring : "(none)";
        return err_set("%s: architecture \"%s\" is not supported (supported: " SUPPORTED_LIST ")", path, name);
    }
    cfg->arch = supported[found].arch;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", supported[found].model_type);
    const cJSON *act = get(j, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0))
        return err_set("%s: hidden_act \"%s\" is not supported (supported: silu)", path,
                       cJSON_IsString(act) ? act->valuestring : "?");
    if (get_int(j, "vocab_size", &cfg->vocab_size, 1, path) || get_int(j, "hidden_size", &cfg->hidden_size, 1, path) ||
        get_int(j, "intermediate_size", &cfg->intermediate_size, 1, path) ||
        get_int(j, "num_hidden_layers", &cfg->n_layers, 1, path) ||
        get_int(j, "num_attention_heads", &cfg->n_heads, 1, path))
        return -1;
    cfg->n_kv_heads = cfg->n_heads;
    cfg->max_position_embeddings = 32768;
    if (get_int(j, "num_key_value_heads", &cfg->n_kv_heads, 0, path) ||
        get_int(j, "max_position_embeddings", &cfg->max_position_embeddings, 0, path))
        return -1;
    if (cfg->n_heads == 0 || cfg->n_kv_heads == 0 || cfg->n_heads % cfg->n_kv_heads != 0)
        return err_set("%s: num_attention_heads (%d) must be a positive multiple of num_key_value_heads (%d)", path,
                       cfg->n_heads, cfg->n_kv_heads);
    cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    if (get_int(j, "head_dim", &cfg->head_dim, 0, path)) return -1;
    if (cfg->head_dim == 0 || cfg->head_dim % 2) return err_set("%s: head_dim must be even and positive", path);
    /* sizes index arrays, size stack tiles (head_dim) and multiply each other: bounded far above
     * any released model of these architectures, so products stay in range */
    const struct {
        const char *key;
        int64_t v, max;
    } lim[] = {{"vocab_size", cfg->vocab_size, MODEL_MAX_VOCAB},
               {"hidden_size", cfg->hidden_size, MODEL_MAX_HIDDEN},
               {"intermediate_size", cfg->intermediate_size, MODEL_MAX_FFN},
               {"num_hidden_layers", cfg->n_layers, MODEL_MAX_LAYERS},
               {"num_attention_heads", cfg->n_heads, MODEL_MAX_HEADS},
               {"head_dim", cfg->head_dim, MODEL_MAX_HEAD_DIM},
               {"max_position_embeddings", cfg->max_position_embeddings, MODEL_MAX_POSITIONS}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        if (lim[i].v > lim[i].max)
            return err_set("%s: \"%s\" is %lld, more than csft supports (%lld)", path, lim[i].key, (long long)lim[i].v,
                           (long long)lim[i].max);
    double eps = 1e-6;
    if (get_num(j, "rms_norm_eps", &eps, path)) return -1;
    cfg->rms_norm_eps = (float)eps;
    cfg->rope_theta = 10000.0;
    if (get_num(j, "rope_theta", &cfg->rope_theta, path)) return -1;
    if (parse_rope(cfg, get(j, "rope_scaling"), path) || parse_rope(cfg, get(j, "rope_parameters"), path)) return -1;
    cfg->tie_word_embeddings = cfg->arch == ARCH_QWEN2 || cfg->arch == ARCH_QWEN3 ? 0 : 0;
    if (get_bool(j, "tie_word_embeddings", &cfg->tie_word_embeddings, path)) return -1;
    int attention_bias = 0, mlp_bias = 0;
    if (get_bool(j, "attention_bias", &attention_bias, path) || get_bool(j, "mlp_bias", &mlp_bias, path)) return -1;
    cfg->qkv_bias = cfg->arch == ARCH_QWEN2 ? 1 : attention_bias;
    cfg->o_bias = cfg->arch == ARCH_QWEN2 ? 0 : attention_bias;
    cfg->mlp_bias = cfg->arch == ARCH_QWEN2 ? 0 : mlp_bias;
    cfg->qk_norm = cfg->arch == ARCH_QWEN3;
    /* Sliding window: Mistral/Qwen set `sliding_window` but only use it when enabled. */
    const cJSON *sw = get(j, "sliding_window");
    int use_sw = cfg->arch == ARCH_MISTRAL && sw != NULL;
    if (cfg->arch == ARCH_QWEN2 || cfg->arch == ARCH_QWEN3) use_sw = 0, get_bool(j, "use_sliding_window", &use_sw, path);
    if (use_sw) return err_set("%s: sliding-window attention is not supported (set sliding_window to null)", path);
    cfg->bos_token_id = -1;
    const cJSON *bos = get(j, "bos_token_id");
    if (bos && cJSON_IsNumber(bos)) cfg->bos_token_id = bos->valueint;
    const cJSON *eos = get(j, "eos_token_id");
    if (eos && cJSON_IsNumber(eos)) cfg->eos_token_ids[cfg->n_eos++] = eos->valueint;
    else if (eos && cJSON_IsArray(eos)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, eos) if (cJSON_IsNumber(e) && cfg->n_eos < 8) cfg->eos_token_ids[cfg->n_eos++] = e->valueint;
    }
    const cJSON *dt = get(j, "torch_dtype");
    if (!dt) dt = get(j, "dtype");
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s", dt && cJSON_IsString(dt) ? dt->valuestring : "float32");
    return 0;
}

static int parse_text(struct model_config *cfg, const char *text, const char *file, int n_layers_keep) {
    cJSON *j = cJSON_Parse(text);
    int rc;
    if (!j) rc = err_set("%s: not valid JSON (near byte %ld)", file, (long)(cJSON_GetErrorPtr() ? 0 : 0));
    else rc = parse(cfg, j, file);
    cJSON_Delete(j);
    if (rc == 0 && n_layers_keep > 0) {
        if (n_layers_keep > cfg->n_layers)
            rc = err_set("%s: num_layers %d exceeds the model's %d layers", file, n_layers_keep, cfg->n_layers);
        else cfg->n_layers = n_layers_keep;
    }
    return rc;
}

int model_config_load(struct model_config *cfg, const char *path, int n_layers_keep) {
    char *file = dir_exists(path) ? path_join(path, "config.json") : xstrdup(path);
    char *text = file_read_all(file, NULL);
    int rc = text ? parse_text(cfg, text, file, n_layers_keep) : -1;
    free(text);
    free(file);
    return rc;
}

int model_config_parse(struct model_config *cfg, const char *json_text, const char *name, int n_layers_keep) {
    return parse_text(cfg, json_text, name, n_layers_keep);
}

void model_config_rope_inv_freq(const struct model_config *cfg, float *inv_freq) {
    int half = cfg->head_dim / 2;
    for (int i = 0; i < half; i++) {
        /* transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in float32 */
        float expo = (float)(2 * i) / (float)cfg->head_dim;
        float f = (float)(1.0 / pow(cfg->rope_theta, (double)expo));
        if (cfg->rope_type == ROPE_LINEAR) {
            f = (float)(f / cfg->rope_factor);
        } else if (cfg->rope_type == ROPE_LLAMA3) {
            /* modeling_rope_utils._compute_llama3_parameters */
            double factor = cfg->rope_factor, lo = cfg->rope_low_freq_factor, hi = cfg->rope_high_freq_factor;
            double old_ctx = cfg->rope_original_max_pos;
            double low_wavelen = old_ctx / lo, high_wavelen = old_ctx / hi;
            double wavelen = 2 * M_PI / f;
            double out;
            if (wavelen > low_wavelen) out = f / factor;
            else if (wavelen < high_wavelen) out = f;
            else {
                double smooth = (old_ctx / wavelen - lo) / (hi - lo);
                out = (1 - smooth) * f / factor + smooth * f;
            }
            f = (float)out;
        }
        inv_freq[i] = f;
    }
}

char *model_config_to_json(const struct model_config *cfg) {
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(model_arch_name(cfg->arch)));
    cJSON_AddStringToObject(j, "model_type", cfg->model_type);
    if (cfg->arch != ARCH_QWEN2) {
        cJSON_AddBoolToObject(j, "attention_bias", cfg->qkv_bias);
        cJSON_AddBoolToObject(j, "mlp_bias", cfg->mlp_bias);
    }
    if (cfg->bos_token_id >= 0) cJSON_AddNumberToObject(j, "bos_token_id", cfg->bos_token_id);
    if (cfg->n_eos == 1) cJSON_AddNumberToObject(j, "eos_token_id", cfg->eos_token_ids[0]);
    else if (cfg->n_eos > 1) cJSON_AddItemToObject(j, "eos_token_id", cJSON_CreateIntArray(cfg->eos_token_ids, cfg->n_eos));
    cJSON_AddNumberToObject(j, "head_dim", cfg->head_dim);
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddNumberToObject(j, "hidden_size", cfg->hidden_size);
    cJSON_AddNumberToObject(j, "intermediate_size", cfg->intermediate_size);
    cJSON_AddNumberToObject(j, "max_position_embeddings", cfg->max_position_embeddings);
    cJSON_AddNumberToObject(j, "num_attention_heads", cfg->n_heads);
    cJSON_AddNumberToObject(j, "num_hidden_layers", cfg->n_layers);
    cJSON_AddNumberToObject(j, "num_key_value_heads", cfg->n_kv_heads);
    char eps[32]; /* the float's shortest spelling (1e-06, not 9.99999997475243e-07) */
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(eps, sizeof eps, "%.*g", prec, (double)cfg->rms_norm_eps);
        if ((float)strtod(eps, NULL) == cfg->rms_norm_eps) break;
    }
    cJSON_AddRawToObject(j, "rms_norm_eps", eps);
    cJSON_AddNumberToObject(j, "rope_theta", cfg->rope_theta);
    if (cfg->rope_type != ROPE_DEFAULT) {
        cJSON *r = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", cfg->rope_type == ROPE_LLAMA3 ? "llama3" : "linear");
        cJSON_AddNumberToObject(r, "factor", cfg->rope_factor);
        if (cfg->rope_type == ROPE_LLAMA3) {
            cJSON_AddNumberToObject(r, "low_freq_factor", cfg->rope_low_freq_factor);
            cJSON_AddNumberToObject(r, "high_freq_factor", cfg->rope_high_freq_factor);
            cJSON_AddNumberToObject(r, "original_max_position_embeddings", cfg->rope_original_max_pos);
        }
    }
    cJSON_AddNullToObject(j, "sliding_window");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", cfg->tie_word_embeddings);
    cJSON_AddStringToObject(j, "torch_dtype", cfg->torch_dtype);
    cJSON_AddBoolToObject(j, "use_cache", 1);
    if (cfg->arch == ARCH_QWEN2 || cfg->arch == ARCH_QWEN3) cJSON_AddBoolToObject(j, "use_sliding_window", 0);
    cJSON_AddNumberToObject(j, "vocab_size", cfg->vocab_size);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

/* ---- writing back the input's own config.json ---- */

static const char *js_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* After the string at p ('"'), or NULL when unterminated. */
static const char *js_str(const char *p) {
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : NULL;
}

/* After the value at p, or NULL when malformed. */
static const char *js_val(const char *p) {
    if (*p == '"') return js_str(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') {
                if (!(p = js_str(p))) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
            p++;
        }
        return NULL;
    }
    const char *s = p;
    while (*p && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') p++;
    return p > s ? p : NULL;
}

/* The value span [*vs, *ve) of top-level key `key` (1), 0 when absent, -1 when the text is not a
 * JSON object; *close: the object's closing brace. */
static int js_find(const char *text, const char *key, const char **vs, const char **ve, const char **close) {
    const char *p = js_ws(text);
    if (*p != '{') return -1;
    p = js_ws(p + 1);
    size_t kl = strlen(key);
    int found = 0;
    while (*p != '}') {
        if (*p != '"') return -1;
        const char *ks = p + 1, *ke = js_str(p);
        if (!ke) return -1;
        p = js_ws(ke);
        if (*p != ':') return -1;
        p = js_ws(p + 1);
        const char *e = js_val(p);
        if (!e) return -1;
        if (!found && (size_t)(ke - 1 - ks) == kl && memcmp(ks, key, kl) == 0) *vs = p, *ve = e, found = 1;
        p = js_ws(e);
        if (*p == ',') p = js_ws(p + 1);
        else if (*p != '}') return -1;
    }
    *close = p;
    return found;
}

/* text with [s, e) replaced by `with` (text is freed). */
static char *js_splice(char *text, const char *s, const char *e, const char *with) {
    char *out = xasprintf("%.*s%s%s", (int)(s - text), text, with, e);
    free(text);
    return out;
}

char *model_config_json_edit(const char *src, const struct model_config *cfg, const char *dtype) {
    char *t = xstrdup(src);
    const char *vs, *ve, *close;
    int have_dtype = 0;
    static const char *dtype_keys[] = {"torch_dtype", "dtype"};
    char *q = xasprintf("\"%s\"", dtype);
    for (int k = 0; k < 2; k++) {
        int f = js_find(t, dtype_keys[k], &vs, &ve, &close);
        if (f < 0) goto bad;
        if (f) t = js_splice(t, vs, ve, q), have_dtype = 1;
    }
    if (!have_dtype) { /* insert after the last member */
        if (js_find(t, "dtype", &vs, &ve, &close) < 0) goto bad;
        const char *last = close;
        while (last > t && (last[-1] == ' ' || last[-1] == '\n' || last[-1] == '\r' || last[-1] == '\t')) last--;
        char *ins = xasprintf("%s\n  \"torch_dtype\": %s", last[-1] == '{' ? "" : ",", q);
        t = js_splice(t, last, last, ins);
        free(ins);
    }
    /* num_layers kept fewer layers: the count and the per-layer list follow */
    int f = js_find(t, "num_hidden_layers", &vs, &ve, &close);
    if (f < 0) goto bad;
    if (f && strtol(vs, NULL, 10) != cfg->n_layers) {
        char n[16];
        snprintf(n, sizeof n, "%d", cfg->n_layers);
        t = js_splice(t, vs, ve, n);
        if ((f = js_find(t, "layer_types", &vs, &ve, &close)) < 0) goto bad;
        if (f && *vs == '[') {
            const char *p = js_ws(vs + 1), *end = p;
            for (int i = 0; i < cfg->n_layers && *p != ']'; i++) {
                if (!(end = js_val(p))) goto bad;
                p = js_ws(end);
                if (*p == ',') p = js_ws(p + 1);
            }
            char *arr = xasprintf("[%.*s]", (int)(end - (vs + 1)), vs + 1);
            t = js_splice(t, vs, ve, arr);
            free(arr);
        }
    }
    free(q);
    return t;
bad:
    free(q), free(t);
    return NULL;
}

int model_config_check(const char *path, const char *json_text, const char *what) {
    char *file = dir_exists(path) ? path_join(path, "config.json") : xstrdup(path);
    char *text = file_read_all(file, NULL);
    cJSON *a = text ? cJSON_Parse(text) : NULL, *b = cJSON_Parse(json_text);
    int rc = 0;
    if (!a || !b) rc = err_set("%s: cannot compare with %s (not valid JSON)", file, what);
    const cJSON *e;
    cJSON_ArrayForEach(e, b) {
        if (rc) break;
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(a, e->string);
        if (!h) continue; /* a default of config.json's class: not compared */
        int same = 1;
        if (cJSON_IsNumber(e) && cJSON_IsNumber(h))
            same = !strcmp(e->string, "num_hidden_layers") ? e->valuedouble <= h->valuedouble
                                                           : fabs(e->valuedouble - h->valuedouble) <= 1e-6 * fabs(h->valuedouble);
        else if (cJSON_IsBool(e) || cJSON_IsBool(h)) same = cJSON_IsTrue(e) == cJSON_IsTrue(h);
        else if (cJSON_IsString(e) && cJSON_IsString(h)) same = !strcmp(e->valuestring, h->valuestring);
        if (!same) {
            char *x = cJSON_PrintUnformatted(e), *y = cJSON_PrintUnformatted(h);
            rc = err_set("%s gives %s = %s but %s has %s", what, e->string, x, file, y);
            free(x), free(y);
        }
    }
    cJSON_Delete(a), cJSON_Delete(b);
    free(text), free(file);
    return rc;
}
