/* checkpoint_mf: see checkpoint_mf.h. File names and meta.json follow MindFormers'
 * core/callback/callback.py (CheckpointMonitor, record_last_ckpt_to_json). */
#include "train/checkpoint_mf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "model/mf_names.h"
#include "model/model.h"

/* Steps of the files <prefix>_rank_0-<step>_1.ckpt in dir, ascending. */
static int64_t *list_steps(const char *dir, const char *prefix, int *n_out) {
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int64_t *v = NULL;
    int n = 0;
    size_t pl = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        long long s;
        char tail[8];
        if (strncmp(e->d_name, prefix, pl) || strncmp(e->d_name + pl, "_rank_0-", 8)) continue;
        if (sscanf(e->d_name + pl + 8, "%lld_1%7s", &s, tail) != 2 || strcmp(tail, ".ckpt")) continue;
        v = xrealloc(v, sizeof *v * (size_t)(n + 1));
        v[n++] = s;
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    *n_out = n;
    return v;
}

int checkpoint_mf_save(const struct model *m, const char *output_dir, const char *prefix, int64_t step, int keep) {
    char *top = path_join(output_dir, "checkpoint"), *dir = path_join(top, "rank_0");
    int rc = dir_create(top) || dir_create(dir) ? -1 : 0;
    char *name = xasprintf("%s_rank_0-%lld_1.ckpt", prefix, (long long)step), *path = path_join(dir, name);
    if (rc == 0) rc = m->has_lora ? mf_ckpt_save_lora(m, path) : mf_ckpt_save_model(m, path, DTYPE_F32, 0);
    if (rc == 0) {
        char *meta = xasprintf("{\"last_epoch\": %lld, \"last_step\": 1, \"last_ckpt_file\": \"%s\"}\n", (long long)step, name);
        char *mp = path_join(dir, "meta.json");
        rc = file_write_atomic(mp, meta, strlen(meta));
        free(meta), free(mp);
    }
    if (rc == 0 && keep > 0) {
        int n;
        int64_t *steps = list_steps(dir, prefix, &n);
        for (int i = 0; i + keep < n; i++) {
            char *old = xasprintf("%s/%s_rank_0-%lld_1.ckpt", dir, prefix, (long long)steps[i]);
            unlink(old);
            free(old);
        }
        free(steps);
    }
    if (rc) err_wrap("checkpoint_format ckpt: %s", path);
    free(name), free(path), free(dir), free(top);
    return rc;
}
