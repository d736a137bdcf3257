/* lora: see lora.h. Key names and adapter_config.json fields follow PEFT 0.21
 * (save_pretrained drops the adapter name ".default" from tensor keys). */
#include "model/lora.h"

#include <cjson/cJSON.h>
#include <math.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "io/safetensors.h"

void lora_key(char *buf, size_t n, int l, int li, char which) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.lora_%c.weight", l, lin_names[li], which);
}

/* PEFT's list form: the module path equals the target or ends with "." + target. */
static int suffix_match(const char *path, const char *target) {
    size_t lp = strlen(path), lt = strlen(target);
    if (lp == lt) return strcmp(path, target) == 0;
    return lp > lt && path[lp - lt - 1] == '.' && strcmp(path + lp - lt, target) == 0;
}

static const char *alias_to_name(const char *t) {
    for (int i = 0; i < N_LIN; i++)
        if (strcmp(t, lin_aliases[i]) == 0) return lin_short[i];
    return t;
}

static int regex_full_match(pcre2_code *re, const char *s) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Which (layer, linear) pairs the spec targets: targeted[l * N_LIN + li]. */
static int lora_select(const struct model *m, const struct lora_spec *spec, char *targeted, int *alias_only) {
    *alias_only = 0;
    pcre2_code *re = NULL;
    if (spec->target_regex) {
        int ec;
        PCRE2_SIZE off;
        re = pcre2_compile((PCRE2_SPTR)spec->target_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return err_set("target_modules regex \"%s\": %s at offset %zu", spec->target_regex, (char *)msg, (size_t)off);
        }
    }
    int any = 0;
    char path[160], alias_path[160];
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int li = 0; li < N_LIN; li++) {
            snprintf(path, sizeof path, "model.layers.%d.%s", l, lin_names[li]);
            int hit = 0;
            if (re) {
                /* Also try MindSpore's naming of the same module (model.layers.0.attention.wq). */
                snprintf(alias_path, sizeof alias_path, "model.layers.%d.%s.%s", l, li <= LIN_O ? "attention" : "feed_forward",
                         lin_aliases[li]);
                hit = regex_full_match(re, path);
                if (!hit && regex_full_match(re, alias_path)) hit = 1, *alias_only = 1;
            } else {
                for (int t = 0; t < spec->n_targets && !hit; t++) hit = suffix_match(path, alias_to_name(spec->targets[t]));
            }
            targeted[l * N_LIN + li] = (char)hit;
            any |= hit;
        }
    if (re) pcre2_code_free(re);
    if (!any) {
        if (spec->target_regex) return err_set("target_modules \"%s\" matches no linear layer of the model", spec->target_regex);
        return err_set("target_modules matches no linear layer (known: q_proj k_proj v_proj o_proj gate_proj up_proj "
                       "down_proj, or wq wk wv wo w1 w2 w3)");
    }
    return 0;
}

/* The base weight param of layer l's linear li. */
static const struct param *base_weight(const struct model *m, int l, int li) {
    char nm[160];
    snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin_names[li]);
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, nm) == 0) return &m->params[i];
    CHECK(0, "no base weight %s", nm);
    return NULL;
}

/* Tensor parallelism: A and B split like their base layer (docs/tp.md). A column-parallel
 * linear (rows split) keeps all of A, whose gradient each rank's rows feed (summed over the
 * ranks), and its rows of B; a row-parallel one (o_proj, down_proj) keeps its columns of A
 * and all of B (identical on every rank, counted once). */
static void lora_split(const struct model *m, struct param *p, const struct param *w, int is_b, int R) {
    int tp = model_tp_on(m), first = !tp || m->tp.rank == 0;
    p->full_shape[0] = is_b ? w->full_shape[0] : R;
    p->full_shape[1] = is_b ? R : w->full_shape[1];
    p->tp_dim = -1;
    p->tp_count = 1;
    if (!tp) return;
    if (w->tp_dim == 1) { /* row-parallel */
        if (is_b) p->tp_count = first;
        else p->tp_dim = 1, p->tp_off = w->tp_off;
    } else if (is_b) { /* column-parallel B: the base weight's rows (replicated like it) */
        p->tp_dim = w->tp_dim, p->tp_off = w->tp_off, p->tp_count = w->tp_count, p->tp_sum = w->tp_sum;
    } else {
        p->tp_count = first, p->tp_sum = TP_SUM_ALL;
    }
}

/* Allocates A/B (and gradients) for the targeted linears and builds the LoRA param table. */
/* PEFT's string form of target_modules for a selection: the user's regex when it matches the HF
 * module names, else an explicit alternation of every selected module path. */
static char *saved_regex(const struct model *m, const struct lora_spec *spec, const char *targeted, int alias_only) {
    if (!spec->target_regex) return NULL;
    if (!alias_only) return xstrdup(spec->target_regex);
    int uniform = 1; /* the same modules in every layer: PEFT's plain list (targets) */
    for (int l = 1; l < m->cfg.n_layers && uniform; l++)
        uniform = memcmp(targeted + (size_t)l * N_LIN, targeted, N_LIN) == 0;
    if (uniform) return NULL;
    size_t cap = 256, len = 0;
    char *r = xmalloc(cap);
    r[len++] = '(', r[len++] = '?', r[len++] = ':';
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int li = 0; li < N_LIN; li++) {
            if (!targeted[l * N_LIN + li]) continue;
            char path[160];
            int n = snprintf(path, sizeof path, "model.layers.%d.%s", l, lin_names[li]);
            if (len + 2 * (size_t)n + 4 > cap) r = xrealloc(r, cap = 2 * cap + 2 * (size_t)n + 4);
            if (r[len - 1] != ':') r[len++] = '|';
            for (int i = 0; i < n; i++) {
                if (path[i] == '.') r[len++] = '\\';
                r[len++] = path[i];
            }
        }
    r[len++] = ')', r[len] = 0;
    return r;
}

static void lora_alloc(struct model *m, const struct lora_spec *spec, const char *targeted) {
    int R = spec->rank, n = 0;
    m->n_lora = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int li = 0; li < N_LIN; li++)
            if (targeted[l * N_LIN + li]) {
                const struct linear *L = &m->layers[l].lin[li];
                m->n_lora += (int64_t)R * (L->in + L->out);
                n += 2;
            }
    m->lora_mem = m->k->mem_alloc(sizeof(float) * (size_t)m->n_lora);
    m->dlora_mem = m->k->mem_alloc(sizeof(float) * (size_t)m->n_lora);
    m->lora_params = xcalloc((size_t)n, sizeof(struct param));
    m->n_lora_params = n;
    int64_t off = 0;
    int k = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int li = 0; li < N_LIN; li++) {
            if (!targeted[l * N_LIN + li]) continue;
            struct linear *L = &m->layers[l].lin[li];
            for (int w = 0; w < 2; w++) {
                struct param *p = &m->lora_params[k++];
                lora_key(p->name, sizeof p->name, l, li, w ? 'B' : 'A');
                p->n_dims = 2;
                p->shape[0] = w ? L->out : R;
                p->shape[1] = w ? R : L->in;
                p->numel = p->shape[0] * p->shape[1];
                p->data = m->lora_mem + off;
                p->grad = m->dlora_mem + off;
                p->decay = 1;
                p->layer = l;
                lora_split(m, p, base_weight(m, l, li), w, R);
                off += p->numel;
                if (w) L->lora_b = p->data, L->dlora_b = p->grad;
                else L->lora_a = p->data, L->dlora_a = p->grad;
            }
        }
    m->has_lora = 1;
    m->lora.rank = R;
    m->lora.alpha = spec->alpha;
    m->lora.dropout = spec->dropout;
    m->lora.use_rslora = spec->use_rslora;
    for (int li = 0; li < N_LIN; li++) {
        m->lora.targets[li] = 0;
        for (int l = 0; l < m->cfg.n_layers; l++) m->lora.targets[li] |= targeted[l * N_LIN + li];
    }
    m->lora_scaling = spec->use_rslora ? spec->alpha / sqrtf((float)R) : spec->alpha / (float)R;
    /* activations depend on the rank: drop them so the next batch reallocates */
    model_drop_acts(m);
    if (model_tp_on(m)) tp_plan_scratch(m);
}

static int check_spec(const struct lora_spec *spec) {
    if (spec->rank <= 0) return err_set("lora rank must be positive (got %d)", spec->rank);
    if (!(spec->dropout >= 0 && spec->dropout < 1)) return err_set("lora_dropout must be in [0, 1) (got %g)", spec->dropout);
    if (!(spec->alpha > 0)) return err_set("lora_alpha must be positive (got %g)", spec->alpha);
    return 0;
}

int lora_attach(struct model *m, const struct lora_spec *spec, uint64_t seed) {
    if (m->has_lora) return err_set("the model already has an adapter");
    if (check_spec(spec)) return -1;
    char *targeted = xcalloc((size_t)m->cfg.n_layers * N_LIN, 1);
    int alias_only;
    if (lora_select(m, spec, targeted, &alias_only)) {
        free(targeted);
        return -1;
    }
    lora_alloc(m, spec, targeted);
    free(m->lora.target_regex);
    m->lora.target_regex = saved_regex(m, spec, targeted, alias_only);
    free(targeted);
    /* PEFT: nn.init.kaiming_uniform_(A, a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0. The
     * whole A is drawn on every rank (the one-process sequence); each keeps its slice. */
    m->k->sync(); /* written on the host (kernels.h) */
    uint64_t s = seed;
    float *full = NULL;
    for (int i = 0; i < m->n_lora_params; i += 2) {
        struct param *a = &m->lora_params[i];
        int64_t n = a->full_shape[0] * a->full_shape[1];
        full = xrealloc(full, sizeof(float) * (size_t)n);
        float bound = 1.0f / sqrtf((float)a->full_shape[1]);
        for (int64_t j = 0; j < n; j++) full[j] = (2.0f * rng_uniform(&s) - 1.0f) * bound;
        tp_take_slice(a->data, full, a);
    }
    free(full);
    return 0;
}

int lora_load_adapter(struct model *m, const char *dir) {
    char *cfg_path = path_join(dir, "adapter_config.json");
    char *text = file_read_all(cfg_path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    int rc = -1;
    const char **list = NULL;
    struct safetensors *st = NULL;
    if (!j) {
        if (file_exists(cfg_path)) err_set("%s: not valid JSON", cfg_path);
        goto done;
    }
    struct lora_spec spec = {0};
    const cJSON *r = cJSON_GetObjectItem(j, "r"), *al = cJSON_GetObjectItem(j, "lora_alpha");
    const cJSON *dr = cJSON_GetObjectItem(j, "lora_dropout"), *tm = cJSON_GetObjectItem(j, "target_modules");
    const cJSON *peft_type = cJSON_GetObjectItem(j, "peft_type");
    if (peft_type && cJSON_IsString(peft_type) && strcmp(peft_type->valuestring, "LORA") != 0) {
        err_set("%s: peft_type \"%s\" is not supported (only LORA)", cfg_path, peft_type->valuestring);
        goto done;
    }
    if (!cJSON_IsNumber(r) || !cJSON_IsNumber(al)) {
        err_set("%s: \"r\" and \"lora_alpha\" must be numbers", cfg_path);
        goto done;
    }
    spec.rank = r->valueint;
    spec.alpha = (float)al->valuedouble;
    spec.dropout = cJSON_IsNumber(dr) ? (float)dr->valuedouble : 0;
    spec.use_rslora = cJSON_IsTrue(cJSON_GetObjectItem(j, "use_rslora"));
    static const char *unsupported[] = {"use_dora", "fan_in_fan_out"};
    for (int i = 0; i < 2; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, unsupported[i]))) {
            err_set("%s: \"%s\" is not supported", cfg_path, unsupported[i]);
            goto done;
        }
    static const char *patterns[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        const cJSON *p = cJSON_GetObjectItem(j, patterns[i]);
        if (p && cJSON_IsObject(p) && cJSON_GetArraySize(p) > 0) {
            err_set("%s: a non-empty \"%s\" is not supported", cfg_path, patterns[i]);
            goto done;
        }
    }
    /* PEFT options csft does not implement: refused by name, never ignored */
    static const char *refused[] = {"layers_to_transform", "layers_pattern", "exclude_modules", "lora_bias",
                                    "modules_to_save", "alora_invocation_tokens", "target_parameters",
                                    "trainable_token_indices", "megatron_config"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const cJSON *o = cJSON_GetObjectItem(j, refused[i]);
        int set = o && !cJSON_IsNull(o) && !cJSON_IsFalse(o) &&
                  !((cJSON_IsArray(o) || cJSON_IsObject(o)) && cJSON_GetArraySize(o) == 0) &&
                  !(cJSON_IsString(o) && !o->valuestring[0]);
        if (set) {
            err_set("%s: \"%s\" is set, which csft does not implement (it would train or load other weights than "
                    "PEFT does); remove it or use PEFT",
                    cfg_path, refused[i]);
            goto done;
        }
    }
    const cJSON *bias = cJSON_GetObjectItem(j, "bias");
    if (bias && cJSON_IsString(bias) && strcmp(bias->valuestring, "none") != 0) {
        err_set("%s: bias \"%s\" is not supported (only \"none\")", cfg_path, bias->valuestring);
        goto done;
    }
    if (cJSON_IsString(tm)) {
        spec.target_regex = tm->valuestring;
    } else if (cJSON_IsArray(tm)) {
        spec.n_targets = cJSON_GetArraySize(tm);
        list = xcalloc((size_t)spec.n_targets + 1, sizeof(char *));
        for (int i = 0; i < spec.n_targets; i++) {
            const cJSON *t = cJSON_GetArrayItem(tm, i);
            if (!cJSON_IsString(t)) {
                err_set("%s: target_modules must hold strings", cfg_path);
                goto done;
            }
            list[i] = t->valuestring;
        }
        spec.targets = list;
    } else {
        err_set("%s: \"target_modules\" must be a list or a regex string", cfg_path);
        goto done;
    }
    if (lora_attach(m, &spec, 0)) {
        err_wrap("%s", cfg_path);
        goto done;
    }
    char *wpath = path_join(dir, "adapter_model.safetensors");
    if (!file_exists(wpath)) {
        char *bin = path_join(dir, "adapter_model.bin");
        int has_bin = file_exists(bin);
        free(bin);
        if (has_bin) {
            err_set("%s: only adapter_model.bin (a PyTorch pickle) is there; csft reads adapter_model.safetensors "
                    "(PEFT: save_pretrained(..., safe_serialization=True))",
                    dir);
            free(wpath);
            goto done;
        }
    }
    int bad = safetensors_open(&st, wpath);
    free(wpath);
    if (bad) goto done;
    for (int i = 0; i < m->n_lora_params; i++) {
        struct param *p = &m->lora_params[i];
        /* PEFT saves keys without the adapter name; accept ".default." too */
        if (!safetensors_find(st, p->name)) {
            char alt[200];
            const char *w = strstr(p->name, ".weight");
            snprintf(alt, sizeof alt, "%.*s.default.weight", (int)(w - p->name), p->name);
            if (safetensors_find(st, alt)) {
                if (tp_read_param(st, alt, p)) goto done;
                continue;
            }
        }
        if (tp_read_param(st, p->name, p)) goto done;
    }
    if (safetensors_count(st) != m->n_lora_params) {
        err_set("%s: adapter file holds %d tensors but target_modules selects %d LoRA matrices for this model", dir,
                safetensors_count(st), m->n_lora_params);
        goto done;
    }
    rc = 0;
done:
    if (st) safetensors_close(st);
    free(list);
    cJSON_Delete(j);
    free(cfg_path);
    return rc;
}

static int write_adapter(const struct model *m, const char *dir, const struct st_entry *e,
                         const char *base_model_name_or_path);

/* Collective under tensor parallelism: the slices are gathered and tp rank 0 writes. */
int lora_save_adapter(const struct model *m, const char *dir, const char *base_model_name_or_path, int bf16) {
    if (!m->has_lora) return err_set("no adapter to save");
    int tp = model_tp_on(m), writer = !tp || m->tp.rank == 0;
    m->k->sync(); /* the writer reads the adapter from the host */
    struct st_entry *e = xcalloc((size_t)m->n_lora_params, sizeof *e);
    for (int i = 0; i < m->n_lora_params; i++) {
        const struct param *p = &m->lora_params[i];
        e[i].name = p->name;
        e[i].n_dims = 2;
        e[i].shape[0] = p->full_shape[0];
        e[i].shape[1] = p->full_shape[1];
        e[i].data = tp ? tp_gather_param(m, p) : p->data;
        if (!writer) free((void *)e[i].data), e[i].data = NULL;
        e[i].dtype = bf16 ? DTYPE_BF16 : DTYPE_F32;
    }
    int rc = writer ? write_adapter(m, dir, e, base_model_name_or_path) : 0;
    if (tp)
        for (int i = 0; i < m->n_lora_params; i++) free((void *)e[i].data);
    free(e);
    return tp_agree(m, rc, dir);
}

static int write_adapter(const struct model *m, const char *dir, const struct st_entry *e,
                         const char *base_model_name_or_path) {
    if (dir_create(dir)) return -1;
    int rc = safetensors_save(dir, "adapter_model", e, m->n_lora_params, 0);
    if (rc) return -1;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    if (base_model_name_or_path) cJSON_AddStringToObject(j, "base_model_name_or_path", base_model_name_or_path);
    else cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddNumberToObject(j, "r", m->lora.rank);
    cJSON_AddNumberToObject(j, "lora_alpha", m->lora.alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", m->lora.dropout);
    cJSON_AddBoolToObject(j, "use_rslora", m->lora.use_rslora);
    if (m->lora.target_regex) { /* a regex may select some layers only: PEFT takes it as is */
        cJSON_AddStringToObject(j, "target_modules", m->lora.target_regex);
    } else {
        cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
        for (int li = 0; li < N_LIN; li++)
            if (m->lora.targets[li]) cJSON_AddItemToArray(tm, cJSON_CreateString(lin_short[li]));
    }
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    char *path = path_join(dir, "adapter_config.json");
    rc = file_write_atomic(path, s, strlen(s));
    free(path);
    free(s);
    return rc;
}

void lora_merge(struct model *m) {
    if (!m->has_lora) return;
    int R = m->lora.rank;
    m->k->sync(); /* merged on the host (backend memory is host-visible, kernels.h) */
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int li = 0; li < N_LIN; li++) {
            struct linear *L = &m->layers[l].lin[li];
            if (!L->lora_a) continue;
            CHECK(L->w, "lora_merge: layer %d %s is held in bf16; merge into a float32 base", l, lin_short[li]);
            /* W (out,in) += s * B (out,R) @ A (R,in): as a "linear" with input B and weight A^T */
#pragma omp parallel for
            for (int o = 0; o < L->out; o++)
                for (int r = 0; r < R; r++) {
                    float b = m->lora_scaling * L->lora_b[(int64_t)o * R + r];
                    const float *a = L->lora_a + (int64_t)r * L->in;
                    float *w = L->w + (int64_t)o * L->in;
                    for (int i = 0; i < L->in; i++) w[i] += b * a[i];
                }
            L->lora_a = L->lora_b = L->dlora_a = L->dlora_b = NULL;
        }
    free(m->lora_params);
    m->k->mem_free(m->lora_mem);
    m->k->mem_free(m->dlora_mem);
    m->lora_params = NULL, m->lora_mem = m->dlora_mem = NULL;
    m->n_lora_params = 0, m->n_lora = 0, m->has_lora = 0;
    free(m->lora.target_regex);
    m->lora.target_regex = NULL;
    model_drop_acts(m);
}
