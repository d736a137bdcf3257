/* checkpoint: see checkpoint.h. */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "model/lora.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int path_remove_tree(const char *path) {
    if (!file_exists(path) && !dir_exists(path)) return 0;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return err_set("%s: cannot remove: %s", path, strerror(errno));
    return 0;
}

static int save_optimizer(const char *dir, const struct model *m, const struct adamw *opt) {
    int n;
    struct param *params = model_trainable((struct model *)m, &n);
    struct st_entry *e = xcalloc((size_t)(2 * n), sizeof *e);
    char **names = xcalloc((size_t)(2 * n), sizeof(char *));
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            struct st_entry *x = &e[2 * i + k];
            names[2 * i + k] = xasprintf("%s.%s", k ? "exp_avg_sq" : "exp_avg", params[i].name);
            x->name = names[2 * i + k];
            x->n_dims = params[i].n_dims;
            x->shape[0] = params[i].shape[0];
            x->shape[1] = params[i].shape[1];
            x->data = (k ? opt->v : opt->m) + off;
            x->dtype = DTYPE_F32;
        }
        off += params[i].numel;
    }
    int rc = safetensors_save(dir, "optimizer", e, 2 * n, 0);
    for (int i = 0; i < 2 * n; i++) free(names[i]);
    free(names), free(e);
    return rc;
}

static int load_optimizer(const char *dir, struct model *m, struct adamw *opt) {
    char *path = path_join(dir, "optimizer.safetensors");
    struct safetensors *st;
    int rc = safetensors_open(&st, path);
    free(path);
    if (rc) return -1;
    int n;
    struct param *params = model_trainable(m, &n);
    int64_t off = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[256];
        snprintf(name, sizeof name, "exp_avg.%s", params[i].name);
        rc = safetensors_read_f32(st, name, opt->m + off, params[i].shape, params[i].n_dims);
        snprintf(name, sizeof name, "exp_avg_sq.%s", params[i].name);
        if (rc == 0) rc = safetensors_read_f32(st, name, opt->v + off, params[i].shape, params[i].n_dims);
        off += params[i].numel;
    }
    safetensors_close(st);
    return rc;
}

static char *state_json(const struct train_state *s, const struct adamw *opt) {
    return xasprintf("{\n  \"step\": %lld,\n  \"epoch\": %lld,\n  \"next_row\": %lld,\n  \"skipped_steps\": %lld,\n"
                     "  \"tokens_seen\": %lld,\n  \"dropout_seed\": \"%llu\",\n  \"seed\": \"%llu\",\n"
                     "  \"optimizer_step\": %lld\n}\n",
                     (long long)s->step, (long long)s->epoch, (long long)s->next_row, (long long)s->skipped_steps,
                     (long long)s->tokens_seen, (unsigned long long)s->dropout_seed, (unsigned long long)s->seed,
                     (long long)opt->step);
}

static void prune(const char *ckdir, int keep_last) {
    if (keep_last <= 0) return;
    DIR *d = opendir(ckdir);
    if (!d) return;
    long long steps[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        long long s;
        char tail;
        if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) == 1) steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* remove every one with keep_last newer ones */
    {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= keep_last) {
            char *p = xasprintf("%s/checkpoint-%lld", ckdir, steps[i]);
            path_remove_tree(p);
            free(p);
        }
    }
}

int checkpoint_save(const char *output_dir, const struct model *m, const struct adamw *opt, const struct train_state *st,
                    const char *config_yaml, int keep_last, const char *base_name, char **saved_path) {
    char *ckdir = path_join(output_dir, "checkpoints");
    char *final = xasprintf("%s/checkpoint-%lld", ckdir, (long long)st->step);
    char *tmp = xasprintf("%s/.checkpoint-%lld.tmp.%d", ckdir, (long long)st->step, (int)getpid());
    char *old = xasprintf("%s.old", final);
    int rc = -1;
    if (dir_create(ckdir)) goto done;
    path_remove_tree(tmp);
    if (dir_create(tmp)) goto done;
    if (m->has_lora ? lora_save_adapter(m, tmp, base_name) : model_save(m, tmp, 0, 0)) goto done;
    if (save_optimizer(tmp, m, opt)) goto done;
    if (config_yaml) {
        char *p = path_join(tmp, "config.yaml");
        int r = file_write_atomic(p, config_yaml, strlen(config_yaml));
        free(p);
        if (r) goto done;
    }
    char *js = state_json(st, opt), *sp = path_join(tmp, "trainer_state.json");
    int r = file_write_atomic(sp, js, strlen(js));
    free(js), free(sp);
    if (r) goto done;
    dir_fsync(tmp);
    path_remove_tree(old);
    if (dir_exists(final) && rename(final, old) != 0) {
        err_set("%s: cannot move aside: %s", final, strerror(errno));
        goto done;
    }
    if (rename(tmp, final) != 0) {
        err_set("%s: cannot rename into place: %s", final, strerror(errno));
        if (dir_exists(old)) rename(old, final);
        goto done;
    }
    dir_fsync(ckdir);
    path_remove_tree(old);
    prune(ckdir, keep_last);
    if (saved_path) *saved_path = xstrdup(final);
    rc = 0;
done:
    if (rc) path_remove_tree(tmp);
    free(ckdir), free(final), free(tmp), free(old);
    return rc;
}

char *checkpoint_find_latest(const char *output_dir) {
    char *ckdir = path_join(output_dir, "checkpoints");
    DIR *d = opendir(ckdir);
    char *best = NULL;
    long long best_step = -1;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            long long s;
            char tail;
            if (sscanf(e->d_name, "checkpoint-%lld%c", &s, &tail) != 1 || s <= best_step) continue;
            char *p = path_join(ckdir, e->d_name), *st = path_join(p, "trainer_state.json");
            if (file_exists(st)) {
                free(best);
                best = p, p = NULL, best_step = s;
            }
            free(p), free(st);
        }
        closedir(d);
    }
    free(ckdir);
    return best;
}

/* A count in trainer_state.json: absent = 0; otherwise an integer in [0, 2^53] (a number or,
 * for exactness, a decimal string). -1 with the error naming the file and key. */
static int get_count(const cJSON *j, const char *k, const char *file, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    *out = 0;
    if (!v) return 0;
    double d = -1;
    if (cJSON_IsString(v)) {
        char *end = NULL;
        errno = 0;
        unsigned long long u = v->valuestring[0] >= '0' && v->valuestring[0] <= '9' ? strtoull(v->valuestring, &end, 10) : 0;
        if (end && !*end && !errno && u <= (1ull << 53)) return *out = (int64_t)u, 0;
    } else if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
        if (d >= 0 && d <= 9007199254740992.0 && d == floor(d)) return *out = (int64_t)d, 0;
    }
    return err_set("%s: \"%s\" must be a whole number in [0, 2^53]", file, k);
}

static uint64_t get_u64(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(j, k);
    return cJSON_IsString(v) ? strtoull(v->valuestring, NULL, 10) : 0;
}

int checkpoint_parse_state(const char *text, const char *file, struct train_state *st, int64_t *optimizer_step) {
    memset(st, 0, sizeof *st);
    *optimizer_step = 0;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set("%s: not a JSON object", file);
    }
    int rc = get_count(j, "step", file, &st->step) || get_count(j, "epoch", file, &st->epoch) ||
             get_count(j, "next_row", file, &st->next_row) ||
             get_count(j, "skipped_steps", file, &st->skipped_steps) ||
             get_count(j, "tokens_seen", file, &st->tokens_seen) ||
             get_count(j, "optimizer_step", file, optimizer_step);
    st->dropout_seed = get_u64(j, "dropout_seed");
    st->seed = get_u64(j, "seed");
    cJSON_Delete(j);
    return rc ? -1 : 0;
}

int checkpoint_load(const char *path, struct model *m, struct adamw *opt, struct train_state *st) {
    char *sp = path_join(path, "trainer_state.json");
    if (!file_exists(sp)) {
        free(sp);
        return -1;
    }
    char *text = file_read_all(sp, NULL);
    int64_t ostep = 0;
    int bad = !text || checkpoint_parse_state(text, sp, st, &ostep);
    free(text), free(sp);
    if (bad) return -1;
    opt->step = ostep;
    /* weights: the adapter, or the full model */
    int n;
    struct param *params = model_trainable(m, &n);
    char *wpath = path_join(path, m->has_lora ? "adapter_model.safetensors" : "");
    struct safetensors *w;
    if (safetensors_open(&w, m->has_lora ? wpath : path)) {
        free(wpath);
        return -1;
    }
    free(wpath);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = safetensors_read_f32(w, params[i].name, params[i].data, params[i].shape, params[i].n_dims);
    safetensors_close(w);
    if (rc == 0) rc = load_optimizer(path, m, opt);
    return rc ? err_wrap("checkpoint %s", path) : 0;
}
