/* pipeline: see pipeline.h. */
#include "train/pipeline.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/chat.h"
#include "tok/tokenizer.h"

static char *dir_of_file(const char *path) {
    char *d = xstrdup(path), *s = strrchr(d, '/');
    if (!s) {
        free(d);
        return xstrdup(".");
    }
    *s = 0;
    return d;
}

int32_t tokenizer_config_token(const struct tokenizer *tk, const char *dir, const char *key) {
    char *path = path_join(dir, "tokenizer_config.json");
    char *text = file_exists(path) ? file_read_all(path, NULL) : NULL;
    free(path);
    if (!text) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *v = cJSON_GetObjectItem(j, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItem(v, "content");
    int32_t id = cJSON_IsString(v) ? tokenizer_token_id(tk, v->valuestring) : -1;
    cJSON_Delete(j);
    return id;
}

static int has_tokenizer_source(const struct run_config *cfg, const struct config_dataset *d) {
    if ((d->vocab_file && d->vocab_file[0]) || (d->tokenizer && d->tokenizer[0])) return 1;
    if (!cfg->load_checkpoint || !cfg->load_checkpoint[0]) return 0;
    char *a = path_join(cfg->load_checkpoint, "tokenizer.json"), *b = path_join(cfg->load_checkpoint, "vocab.json");
    int has = file_exists(a) || file_exists(b);
    free(a), free(b);
    return has;
}

/* Records where the tokenizer comes from (tokenizer_dir, and what to load). */
static int locate_tokenizer(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d) {
    if (d->vocab_file && d->vocab_file[0]) {
        p->tokenizer_dir = dir_of_file(d->vocab_file);
        p->tok_vocab = xstrdup(d->vocab_file);
        p->tok_merges = d->merges_file ? xstrdup(d->merges_file) : NULL;
        return 0;
    }
    const char *src = d->tokenizer && d->tokenizer[0] ? d->tokenizer : cfg->load_checkpoint;
    if (!src || !src[0]) return err_set("no tokenizer: set train_dataset.tokenizer, vocab_file/merges_file or load_checkpoint");
    p->tokenizer_dir = dir_exists(src) ? xstrdup(src) : dir_of_file(src);
    p->tok_src = xstrdup(src);
    return 0;
}

int pipeline_load_tokenizer(struct pipeline *p) {
    if (p->tk || (!p->tok_vocab && !p->tok_src)) return 0;
    int rc;
    if (p->tok_vocab) {
        char *tc = path_join(p->tokenizer_dir, "tokenizer_config.json");
        rc = tokenizer_load_files(&p->tk, p->tok_vocab, p->tok_merges, file_exists(tc) ? tc : NULL);
        free(tc);
    } else {
        rc = tokenizer_load(&p->tk, p->tok_src);
    }
    if (rc) return -1;
    int32_t tv = tokenizer_vocab_size(p->tk);
    if (p->model_vocab && tv > p->model_vocab)
        return err_set("tokenizer in %s has %d tokens but the model's vocab_size is %d: they do not belong together",
                       p->tokenizer_dir, tv, p->model_vocab);
    p->fmt.tk = p->tk;
    p->fmt.vocab_size = p->model_vocab ? p->model_vocab : tv;
    return 0;
}

/* The id of special token `key` (eos_token, pad_token) from tokenizer_config.json without the
 * tokenizer: its content looked up in added_tokens_decoder. 1 = found (*id), 0 = not set,
 * -1 = set but not among the added tokens (the tokenizer is needed). */
static int config_token_cheap(const char *dir, const char *key, int32_t *id) {
    char *path = path_join(dir, "tokenizer_config.json");
    char *text = file_exists(path) ? file_read_all(path, NULL) : NULL;
    free(path);
    if (!text) return 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    const cJSON *v = cJSON_GetObjectItem(j, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItem(v, "content");
    int rc = cJSON_IsString(v) ? -1 : 0;
    const cJSON *dec = cJSON_GetObjectItem(j, "added_tokens_decoder"), *e;
    if (rc < 0)
        cJSON_ArrayForEach(e, dec) {
            const cJSON *c = cJSON_GetObjectItem(e, "content");
            char *end;
            long n = strtol(e->string, &end, 10);
            if (cJSON_IsString(c) && !strcmp(c->valuestring, v->valuestring) && !*end && n >= 0) {
                *id = (int32_t)n;
                rc = 1;
                break;
            }
        }
    cJSON_Delete(j);
    return rc;
}

static uint64_t salt_file(uint64_t h, const char *path) {
    struct stat st;
    if (!path || stat(path, &st) != 0) return h;
    uint64_t v[3] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec};
    for (int i = 0; i < 3; i++) h = (h ^ v[i]) * 0x100000001b3ull;
    return h;
}

/* chat_template: "" = the tokenizer folder's own (else built-ins), a built-in name, or a file. */
static int load_templates(struct pipeline *p, const struct config_dataset *d) {
    const char *name = d->chat_template ? d->chat_template : "";
    char *tc = path_join(p->tokenizer_dir, "tokenizer_config.json");
    int rc = 0;
    if (name[0] == 0) {
        int has = 0;
        if (file_exists(tc)) {
            char *text = file_read_all(tc, NULL);
            cJSON *j = text ? cJSON_Parse(text) : NULL;
            has = cJSON_GetObjectItem(j, "chat_template") != NULL;
            cJSON_Delete(j);
            free(text);
        }
        char *jinja = path_join(p->tokenizer_dir, "chat_template.jinja");
        has |= file_exists(jinja);
        free(jinja);
        rc = has ? chat_template_load(&p->tmpl, tc) : chat_template_builtin(&p->tmpl, "chatml");
        if (rc == 0 && !has) rc = chat_template_builtin(&p->alpaca_tmpl, "alpaca");
    } else if (strcmp(name, "alpaca") == 0) {
        rc = chat_template_builtin(&p->alpaca_tmpl, "alpaca");
        if (rc == 0) rc = chat_template_builtin(&p->tmpl, "chatml");
    } else if (strcmp(name, "chatml") == 0) {
        rc = chat_template_builtin(&p->tmpl, "chatml");
    } else {
        char *src = file_read_all(name, NULL);
        if (!src) rc = err_wrap("chat_template (a built-in name: alpaca, chatml; or a Jinja file)");
        else rc = chat_template_parse(&p->tmpl, src, name);
        free(src);
    }
    free(tc);
    return rc;
}

static void set_columns(struct pipeline *p, const struct config_dataset *d) {
    p->n_cols = d->n_column_mapping;
    p->cols = xcalloc((size_t)p->n_cols + 1, sizeof *p->cols);
    for (int i = 0; i < p->n_cols; i++) p->cols[i] = (struct column_map){d->column_mapping[i].key, d->column_mapping[i].value};
    p->fmt.opt.columns = p->cols;
    p->fmt.opt.n_columns = p->n_cols;
}

static int open_impl(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d,
                     const struct model_config *mc, int pretrain, int lazy) {
    memset(p, 0, sizeof *p);
    p->model_vocab = mc ? mc->vocab_size : 0;
    if (d->format == DATA_FORMAT_TOKENIZED && !has_tokenizer_source(cfg, d)) {
        /* pre-tokenized data needs no tokenizer; ids are checked against the model's vocab */
        p->tokenizer_dir = xstrdup(cfg->load_checkpoint ? cfg->load_checkpoint : ".");
        p->eos_id = mc && mc->n_eos ? mc->eos_token_ids[0] : -1;
        p->pad_id = p->eos_id >= 0 ? p->eos_id : 0;
        p->fmt.opt.format = DATA_FORMAT_TOKENIZED;
        p->fmt.opt.truncation = d->truncation;
        p->fmt.opt.seq_length = d->seq_length;
        p->fmt.opt.loss_on = d->loss_on;
        p->fmt.opt.no_eos_loss = !d->train_on_eos;
        set_columns(p, d);
        p->fmt.eos_id = -1;
        p->fmt.vocab_size = mc ? mc->vocab_size : INT32_MAX;
        p->fmt.pad_id = p->pad_id;
        p->salt = xasprintf("tokenized|%d", pretrain);
        return 0;
    }
    if (locate_tokenizer(p, cfg, d) || load_templates(p, d)) goto fail;
    int eos_ok = 1, pad_ok = 1;
    if (lazy) {
        p->eos_id = p->pad_id = -1;
        eos_ok = config_token_cheap(p->tokenizer_dir, "eos_token", &p->eos_id) >= 0;
        pad_ok = config_token_cheap(p->tokenizer_dir, "pad_token", &p->pad_id) >= 0;
    }
    if (!lazy || !eos_ok || !pad_ok) {
        if (pipeline_load_tokenizer(p)) goto fail;
        p->eos_id = tokenizer_config_token(p->tk, p->tokenizer_dir, "eos_token");
        p->pad_id = tokenizer_config_token(p->tk, p->tokenizer_dir, "pad_token");
    }
    if (p->eos_id < 0 && mc && mc->n_eos) p->eos_id = mc->eos_token_ids[0];
    if (p->pad_id < 0) p->pad_id = p->eos_id >= 0 ? p->eos_id : 0;
    set_columns(p, d);
    struct formatter *f = &p->fmt;
    f->opt.format = d->format;
    f->opt.loss_on = pretrain ? LOSS_ON_ALL : d->loss_on;
    f->opt.truncation = d->truncation;
    f->opt.seq_length = d->seq_length;
    f->tk = p->tk;
    if (p->tmpl && p->tk) chat_template_use_tokenizer(p->tmpl, p->tk); /* end-of-turn candidates */
    f->tmpl = p->tmpl;
    f->alpaca_tmpl = p->alpaca_tmpl;
    f->opt.no_eos_loss = !d->train_on_eos;
    f->eos_id = p->eos_id;
    f->pad_id = p->pad_id;
    if (!f->vocab_size) f->vocab_size = mc ? mc->vocab_size : INT32_MAX;
    /* cache identity: every file the tokenizer and template come from (size + mtime) */
    static const char *files[] = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                  "chat_template.jinja", "special_tokens_map.json"};
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *fp = path_join(p->tokenizer_dir, files[i]);
        h = salt_file(h, fp);
        free(fp);
    }
    h = salt_file(h, p->tok_vocab);
    h = salt_file(h, p->tok_merges);
    h = salt_file(h, d->chat_template && d->chat_template[0] ? d->chat_template : NULL);
    p->salt = xasprintf("%s|%s|%s|%016llx|%s|%d", p->tokenizer_dir, p->tok_vocab ? p->tok_vocab : "",
                        d->chat_template ? d->chat_template : "", (unsigned long long)h,
                        chat_template_family(p->tmpl), pretrain);
    return 0;
fail:
    pipeline_close(p);
    return -1;
}

int pipeline_open(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d,
                  const struct model_config *mc, int pretrain) {
    return open_impl(p, cfg, d, mc, pretrain, 0);
}

int pipeline_open_lazy(struct pipeline *p, const struct run_config *cfg, const struct config_dataset *d,
                       const struct model_config *mc, int pretrain) {
    return open_impl(p, cfg, d, mc, pretrain, 1);
}

int pipeline_dataset(struct pipeline *p, const struct config_dataset *d, struct dataset **out) {
    struct dataset_options o = {.files = (const char *const *)d->data_files,
                                .n_files = d->n_data_files,
                                .skip_bad_rows = d->skip_bad_rows,
                                .cache_dir = d->cache_dir,
                                .cache_salt = p->salt};
    if (!p->tk && dataset_load_cached(out, &o, &p->fmt)) {
        /* a hit skips the tokenizer; the ids must still fit the model */
        const struct dataset *ds = *out;
        int64_t n = ds->offsets[ds->n];
        int32_t mx = 0;
        for (int64_t i = 0; i < n; i++) mx = ds->ids[i] > mx ? ds->ids[i] : mx;
        if (p->model_vocab && mx >= p->model_vocab) {
            dataset_free(*out);
            *out = NULL;
            return err_set("%s: cached token id %d is outside the model's vocab_size %d", ds->cache_path, mx,
                           p->model_vocab);
        }
        return 0;
    }
    if (pipeline_load_tokenizer(p)) return -1;
    return dataset_build(out, &o, &p->fmt);
}

void pipeline_close(struct pipeline *p) {
    if (p->tk) tokenizer_free(p->tk);
    if (p->tmpl) chat_template_free(p->tmpl);
    if (p->alpaca_tmpl) chat_template_free(p->alpaca_tmpl);
    free(p->cols);
    free(p->tokenizer_dir);
    free(p->salt);
    free(p->tok_vocab), free(p->tok_merges), free(p->tok_src);
    memset(p, 0, sizeof *p);
}

int pipeline_copy_tokenizer(const struct pipeline *p, const char *dir) {
    static const char *files[] = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                  "special_tokens_map.json", "chat_template.jinja"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (file_copy_if_exists(p->tokenizer_dir, dir, files[i])) return -1;
    return 0;
}
