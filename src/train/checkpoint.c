/* checkpoint: see checkpoint.h. */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "io/st_parallel.h"
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

int checkpoint_load_optimizer(const char *dir, struct model *m, int64_t lo, int64_t hi, float *mo, float *vo) {
    char *path = path_join(dir, "optimizer.safetensors");
    struct safetensors *st;
    int rc = safetensors_open(&st, path);
    free(path);
    if (rc) return -1;
    int n;
    struct param *params = model_trainable(m, &n);
    int64_t off = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int64_t a = off > lo ? off : lo, b = off + params[i].numel < hi ? off + params[i].numel : hi;
        for (int k = 0; k < 2 && a < b && rc == 0; k++) {
            char name[256];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", params[i].name);
            if (params[i].tp_dim >= 0) { /* tensor parallelism: this rank's slice of the whole tensor */
                rc = tp_read_param_range(st, name, &params[i], a - off, b - a, (k ? vo : mo) + (a - lo));
                continue;
            }
            const struct st_tensor *t = safetensors_find(st, name);
            int same = t && t->n_dims == params[i].n_dims && t->numel == params[i].numel;
            for (int d = 0; same && d < t->n_dims; d++) same = t->shape[d] == params[i].shape[d];
            if (!same) {
                rc = err_set("%s/optimizer.safetensors: %s %s", dir, name, t ? "has another shape than the model's" : "is missing");
                break;
            }
            const char *src = (const char *)t->data + (size_t)(a - off) * dtype_size(t->dtype);
            if (dtype_to_f32((k ? vo : mo) + (a - lo), src, t->dtype, b - a))
                rc = err_set("%s/optimizer.safetensors: %s is not a float tensor", dir, name);
        }
        off += params[i].numel;
    }
    safetensors_close(st);
    return rc;
}

static char *state_json(const struct train_state *s, int64_t opt_step, int manifests) {
    return xasprintf("{\n  \"step\": %lld,\n  \"epoch\": %lld,\n  \"next_row\": %lld,\n  \"skipped_steps\": %lld,\n"
                     "  \"tokens_seen\": %lld,\n  \"dropout_seed\": \"%llu\",\n  \"seed\": \"%llu\",\n"
                     "  \"optimizer_step\": %lld,\n  \"checksum_manifests\": %d,\n  \"best_step\": %lld,\n"
                     "  \"best_eval_loss\": %.17g,\n  \"evals_without_improvement\": %lld,\n"
                     "  \"best_checkpoint_step\": %lld\n}\n",
                     (long long)s->step, (long long)s->epoch, (long long)s->next_row, (long long)s->skipped_steps,
                     (long long)s->tokens_seen, (unsigned long long)s->dropout_seed, (unsigned long long)s->seed,
                     (long long)opt_step, manifests, (long long)s->best_step,
                     s->best_step > 0 && isfinite(s->best_eval_loss) ? s->best_eval_loss : 0.0,
                     (long long)s->evals_without_improvement, (long long)s->best_checkpoint_step);
}

static void prune(const char *ckdir, int keep_last, int64_t protect) {
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
        if (newer >= keep_last && steps[i] != protect) {
            char *p = xasprintf("%s/checkpoint-%lld", ckdir, steps[i]);
            path_remove_tree(p);
            free(p);
        }
    }
}

/* ---- writing, every rank at once ---- */

static int agree(struct dist *d, int bad) { return d && d->world > 1 ? dist_any(d, bad) : bad; }
static int rank_of(const struct dist *d) { return d ? d->rank : 0; }

/* Elements [a, b) of p's tensor on this rank into entry e, whose shape is the whole tensor's:
 * under tensor parallelism p holds rows (one run in the file) or columns (a run per row) of it. */
static int write_slice(struct st_plan *pl, int e, const struct param *p, int64_t a, int64_t b, const float *src) {
    if (p->tp_dim < 0) return st_plan_write(pl, e, a, b - a, src);
    int64_t lc = p->n_dims == 2 ? p->shape[1] : 1, fc = p->n_dims == 2 ? p->full_shape[1] : 1;
    if (p->tp_dim == 0) return st_plan_write(pl, e, p->tp_off * fc + a, b - a, src);
    for (int64_t j = a; j < b;) {
        int64_t row = j / lc, col = j % lc, n = lc - col < b - j ? lc - col : b - j;
        if (st_plan_write(pl, e, row * fc + p->tp_off + col, n, src + (j - a))) return -1;
        j += n;
    }
    return 0;
}

/* Every rank writes the part [part->lo, part->hi) of the tensors of pl (per_param entries per
 * param: the weights, or the two moments); rank 0 creates and commits. Under tensor
 * parallelism the part is of this rank's slices, and a slice that another tp rank holds too
 * (a norm, a replicated key/value head: tp_count 0) is written by that rank. */
static int plan_run(struct dist *d, struct st_plan *pl, const struct param *params, int n_params, int per_param,
                    const struct ckpt_part *part, int moments, int commit) {
    int bad = rank_of(d) == 0 ? st_plan_create(pl) : 0;
    if (agree(d, bad)) return bad ? -1 : err_set("rank 0 could not create %s", pl->tmp[0]);
    int64_t off = 0;
    for (int i = 0; i < n_params && !bad; i++) {
        int64_t a = off > part->lo ? off : part->lo, b = off + params[i].numel < part->hi ? off + params[i].numel : part->hi;
        for (int k = 0; k < per_param && a < b && params[i].tp_count && !bad; k++) {
            const float *src = moments ? (k ? part->v : part->m) + (a - part->lo)
                                       : part->w ? part->w + (a - part->lo) : params[i].data + (a - off);
            bad = write_slice(pl, per_param * i + k, &params[i], a - off, b - off, src);
        }
        off += params[i].numel;
    }
    if (!bad) bad = st_plan_finish(pl);
    if (agree(d, bad)) return bad ? -1 : err_set("another rank could not write its part of %s", pl->tmp[0]);
    bad = commit && rank_of(d) == 0 ? st_plan_commit(pl) : 0;
    if (agree(d, bad)) return bad ? -1 : err_set("rank 0 could not commit %s", pl->tmp[0]);
    return 0;
}

static void manifest_add(char **buf, size_t *len, FILE **f, uint32_t crc, int64_t off, int64_t n, const char *name) {
    if (!*f) *f = open_memstream(buf, len);
    fprintf(*f, "%08x %lld %lld %s\n", crc, (long long)off, (long long)n, name);
}

static void manifest_plan(char **buf, size_t *len, FILE **f, const struct st_plan *pl) {
    for (int i = 0; i < pl->n_segs; i++)
        manifest_add(buf, len, f, pl->segs[i].crc, pl->segs[i].off, pl->segs[i].len, pl->names[pl->segs[i].file]);
}

static int model_entries(const struct model *m, struct st_entry **out, int bf16) {
    struct st_entry *e = xcalloc((size_t)m->n_params, sizeof *e);
    for (int i = 0; i < m->n_params; i++) {
        const struct param *p = &m->params[i];
        e[i] = (struct st_entry){.name = p->name, .n_dims = p->n_dims, .shape = {p->full_shape[0], p->full_shape[1]},
                                 .data = p->data, .dtype = bf16 ? DTYPE_BF16 : DTYPE_F32};
    }
    *out = e;
    return m->n_params;
}

static int save_model_plan(struct dist *d, const char *dir, const struct model *m, const struct ckpt_part *part, int bf16,
                           size_t max_shard_bytes, const char *tag, char **mbuf, size_t *mlen, FILE **mf) {
    if (m->base_bf16) return err_set("saving %s: the base is held in bf16; save from a float32 model", dir);
    struct st_entry *e;
    int n = model_entries(m, &e, bf16);
    struct st_plan pl;
    st_plan_init(&pl, dir, "model", e, n, max_shard_bytes, tag);
    int rc = plan_run(d, &pl, m->params, m->n_params, 1, part, 0, 1);
    if (rc) st_plan_discard(&pl);
    else if (mf) manifest_plan(mbuf, mlen, mf, &pl);
    st_plan_free(&pl);
    free(e);
    int bad = rc == 0 && rank_of(d) == 0 ? model_save_config(m, dir, bf16) : 0;
    if (agree(d, bad)) return bad ? -1 : err_set("rank 0 could not write %s/config.json", dir);
    return rc;
}

int checkpoint_save_model_dist(struct dist *d, const char *dir, const struct model *m, const struct ckpt_part *part,
                               int bf16, size_t max_shard_bytes) {
    int bad = rank_of(d) == 0 ? dir_create(dir) : 0;
    if (agree(d, bad)) return bad ? -1 : err_set("rank 0 could not create %s", dir);
    return save_model_plan(d, dir, m, part, bf16, max_shard_bytes, "final", NULL, NULL, NULL);
}

static int save_optimizer_plan(struct dist *d, const char *dir, const struct model *m, const struct ckpt_part *part,
                               char **mbuf, size_t *mlen, FILE **mf) {
    int n;
    struct param *params = model_trainable((struct model *)m, &n);
    struct st_entry *e = xcalloc((size_t)(2 * n), sizeof *e);
    char **names = xcalloc((size_t)(2 * n), sizeof(char *));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            names[2 * i + k] = xasprintf("%s.%s", k ? "exp_avg_sq" : "exp_avg", params[i].name);
            e[2 * i + k] = (struct st_entry){.name = names[2 * i + k], .n_dims = params[i].n_dims,
                                             .shape = {params[i].full_shape[0], params[i].full_shape[1]},
                                             .dtype = DTYPE_F32};
        }
    struct st_plan pl;
    st_plan_init(&pl, dir, "optimizer", e, 2 * n, 0, "ckpt");
    int rc = plan_run(d, &pl, params, n, 2, part, 1, 1);
    if (rc) st_plan_discard(&pl);
    else manifest_plan(mbuf, mlen, mf, &pl);
    st_plan_free(&pl);
    for (int i = 0; i < 2 * n; i++) free(names[i]);
    free(names), free(e);
    return rc;
}

/* Whole-file checksums of every file in dir that no manifest line names yet (rank 0). */
static int manifest_rest(const char *dir, char **mbuf, size_t *mlen, FILE **mf) {
    DIR *dd = opendir(dir);
    if (!dd) return err_set("%s: cannot list: %s", dir, strerror(errno));
    if (*mf) fflush(*mf);
    char *have = *mbuf ? xstrdup(*mbuf) : xstrdup("");
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(dd)) && !rc) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "checksums-", 10) == 0) continue;
        char key[300];
        snprintf(key, sizeof key, " %s\n", e->d_name);
        if (strstr(have, key)) continue;
        char *p = path_join(dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
            uint32_t crc;
            rc = file_crc32(p, 0, (int64_t)sb.st_size, &crc);
            if (!rc) manifest_add(mbuf, mlen, mf, crc, 0, (int64_t)sb.st_size, e->d_name);
        }
        free(p);
    }
    closedir(dd);
    free(have);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text, size_t len) {
    char *p = path_join(dir, name);
    int rc = file_write_atomic(p, text, len);
    free(p);
    return rc;
}

int checkpoint_save_dist(struct dist *d, const char *output_dir, const struct model *m, const struct ckpt_part *part,
                         int64_t opt_step, const struct train_state *st, const char *config_yaml, int keep_last,
                         const char *base_name, char **saved_path) {
    int me = rank_of(d), world = d ? d->world : 1;
    char *ckdir = path_join(output_dir, "checkpoints");
    char *final = xasprintf("%s/checkpoint-%lld", ckdir, (long long)st->step);
    char *tmp = xasprintf("%s/.checkpoint-%lld.tmp", ckdir, (long long)st->step);
    char *old = xasprintf("%s.old", final);
    char *mbuf = NULL, *mname = xasprintf("checksums-%d.txt", me);
    size_t mlen = 0;
    FILE *mf = NULL;
    int rc = -1, bad = 0;
    if (me == 0) { /* a temporary folder from an interrupted save is cleared first */
        bad = dir_create(ckdir) || path_remove_tree(tmp) || dir_create(tmp);
    }
    if (agree(d, bad)) {
        if (!bad) err_set("rank 0 could not create %s", tmp);
        goto done;
    }
    if (!m->has_lora) {
        if (save_model_plan(d, tmp, m, part, 0, 0, "ckpt", &mbuf, &mlen, &mf)) goto done;
    } else {
        /* the adapter (small) is written whole by rank 0: under tensor parallelism its tp group
         * gathers the slices (lora_save_adapter is collective over it) */
        int writes = model_tp_on(m) ? part->tp_adapter_group : me == 0;
        bad = writes && lora_save_adapter(m, tmp, base_name, 0);
        if (agree(d, bad)) {
            if (!bad) err_set("rank 0 could not write the adapter into %s", tmp);
            goto done;
        }
    }
    if (save_optimizer_plan(d, tmp, m, part, &mbuf, &mlen, &mf)) goto done;
    if (me != 0) { /* this rank's manifest; rank 0 writes its own last */
        if (!mf) mf = open_memstream(&mbuf, &mlen);
        fclose(mf), mf = NULL;
        bad = write_text(tmp, mname, mbuf, mlen);
    }
    if (agree(d, bad)) {
        if (!bad) err_set("another rank could not write its checksum manifest into %s", tmp);
        goto done;
    }
    if (me == 0) {
        if (config_yaml) bad = write_text(tmp, "config.yaml", config_yaml, strlen(config_yaml));
        char *js = state_json(st, opt_step, world);
        if (!bad) bad = write_text(tmp, "trainer_state.json", js, strlen(js));
        free(js);
        if (!bad) bad = manifest_rest(tmp, &mbuf, &mlen, &mf);
        if (!mf) mf = open_memstream(&mbuf, &mlen);
        fclose(mf), mf = NULL;
        if (!bad) bad = write_text(tmp, mname, mbuf, mlen);
        if (!bad) {
            dir_fsync(tmp);
            path_remove_tree(old);
            if (dir_exists(final) && rename(final, old) != 0)
                bad = err_set("%s: cannot move aside: %s", final, strerror(errno));
        }
        if (!bad && rename(tmp, final) != 0) {
            bad = err_set("%s: cannot rename into place: %s", final, strerror(errno));
            if (dir_exists(old)) rename(old, final);
        }
        if (!bad) {
            dir_fsync(ckdir);
            path_remove_tree(old);
            prune(ckdir, keep_last, st->best_checkpoint_step);
        }
    }
    if (agree(d, bad)) {
        if (!bad) err_set("rank 0 could not finish %s", final);
        goto done;
    }
    if (saved_path) *saved_path = xstrdup(final);
    rc = 0;
done:
    if (mf) fclose(mf);
    if (rc && me == 0) path_remove_tree(tmp);
    free(mbuf), free(mname);
    free(ckdir), free(final), free(tmp), free(old);
    return rc;
}

int checkpoint_save(const char *output_dir, const struct model *m, const struct adamw *opt, const struct train_state *st,
                    const char *config_yaml, int keep_last, const char *base_name, char **saved_path) {
    int n;
    struct param *params = model_trainable((struct model *)m, &n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += params[i].numel;
    struct ckpt_part part = {.lo = 0, .hi = total, .m = opt->m, .v = opt->v};
    return checkpoint_save_dist(NULL, output_dir, m, &part, opt->step, st, config_yaml, keep_last, base_name,
                                saved_path);
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

static int get_count(const cJSON *j, const char *k, const char *file, int64_t *out);

/* One manifest: lines "crc32 offset length file" (hex, decimal, decimal, a plain name). */
static int verify_manifest(const char *path, const char *mpath) {
    size_t len = 0;
    char *text = file_read_all(mpath, &len);
    if (!text) return err_set("%s: missing checksum manifest", mpath);
    int rc = 0, lines = 0;
    for (char *line = text, *next; line && *line && !rc; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        unsigned crc;
        long long off, n;
        char name[200], extra;
        if (sscanf(line, "%8x %lld %lld %199s %c", &crc, &off, &n, name, &extra) != 4 || off < 0 || n < 0 ||
            strchr(name, '/') || name[0] == '.') {
            rc = err_set("%s: line %d is not \"crc32 offset length file\"", mpath, lines + 1);
            break;
        }
        lines++;
        char *fp = path_join(path, name);
        uint32_t got;
        if (file_crc32(fp, off, n, &got)) rc = err_wrap("%s", name);
        else if (got != crc)
            rc = err_set("%s: bytes %lld-%lld do not match their checksum (%08x, recorded %08x)", name, off, off + n,
                         got, crc);
        free(fp);
    }
    free(text);
    return rc;
}

int checkpoint_verify(const char *path) {
    char *sp = path_join(path, "trainer_state.json");
    char *text = file_read_all(sp, NULL);
    free(sp);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) return err_set("%s: trainer_state.json missing or not valid JSON", path);
    int64_t k = 0;
    int bad = get_count(j, "checksum_manifests", path, &k);
    cJSON_Delete(j);
    if (bad) return -1;
    if (k < 0 || k > 1 << 20) return err_set("%s: trainer_state.json: checksum_manifests %lld out of range", path, (long long)k);
    for (int64_t r = 0; r < k; r++) {
        char name[64];
        snprintf(name, sizeof name, "checksums-%lld.txt", (long long)r);
        char *mp = path_join(path, name);
        int rc = verify_manifest(path, mp);
        free(mp);
        if (rc) return err_wrap("checkpoint %s is damaged", path);
    }
    return 0;
}

static int step_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

char *checkpoint_find_resumable(const char *output_dir, FILE *warn, int *all_damaged) {
    *all_damaged = 0;
    char *ckdir = path_join(output_dir, "checkpoints");
    DIR *d = opendir(ckdir);
    long long *steps = NULL;
    int n = 0, cap = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            long long st;
            char tail;
            if (sscanf(e->d_name, "checkpoint-%lld%c", &st, &tail) != 1) continue;
            if (n == cap) steps = xrealloc(steps, sizeof *steps * (size_t)(cap = cap ? 2 * cap : 16));
            steps[n++] = st;
        }
        closedir(d);
    }
    qsort(steps, (size_t)n, sizeof *steps, step_desc);
    char *found = NULL, *damaged = NULL;
    for (int i = 0; i < n && !found; i++) {
        char *p = xasprintf("%s/checkpoint-%lld", ckdir, steps[i]), *sp = path_join(p, "trainer_state.json");
        int complete = file_exists(sp);
        free(sp);
        if (complete && checkpoint_verify(p) == 0) {
            found = p;
            if (damaged && warn) fprintf(warn, "csft: resuming from %s instead\n", found);
            break;
        }
        if (complete) {
            if (warn) fprintf(warn, "csft: warning: %s; falling back to the previous checkpoint\n", err_msg());
            if (!damaged) damaged = xstrdup(err_msg());
        }
        free(p);
    }
    if (!found && damaged) {
        *all_damaged = 1;
        err_set("every checkpoint in %s is damaged (newest: %s)", ckdir, damaged);
    }
    free(damaged), free(steps), free(ckdir);
    return found;
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
             get_count(j, "optimizer_step", file, optimizer_step) ||
             get_count(j, "best_step", file, &st->best_step) ||
             get_count(j, "evals_without_improvement", file, &st->evals_without_improvement) ||
             get_count(j, "best_checkpoint_step", file, &st->best_checkpoint_step);
    const cJSON *bl = cJSON_GetObjectItem(j, "best_eval_loss");
    st->best_eval_loss = cJSON_IsNumber(bl) ? bl->valuedouble : 0;
    st->dropout_seed = get_u64(j, "dropout_seed");
    st->seed = get_u64(j, "seed");
    cJSON_Delete(j);
    return rc ? -1 : 0;
}

int checkpoint_load_state(const char *path, struct train_state *st, int64_t *opt_step) {
    char *sp = path_join(path, "trainer_state.json");
    if (!file_exists(sp)) {
        err_set("%s: no trainer_state.json (not a csft checkpoint, or an incomplete one)", path);
        free(sp);
        return -1;
    }
    char *text = file_read_all(sp, NULL);
    int bad = !text || checkpoint_parse_state(text, sp, st, opt_step);
    free(text), free(sp);
    return bad ? -1 : 0;
}

int checkpoint_load(const char *path, struct model *m, struct adamw *opt, struct train_state *st) {
    if (checkpoint_load_state(path, st, &opt->step)) return -1;
    int rc = checkpoint_load_weights(path, m);
    int n;
    struct param *params = model_trainable(m, &n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += params[i].numel;
    if (rc == 0) rc = checkpoint_load_optimizer(path, m, 0, total, opt->m, opt->v);
    return rc ? err_wrap("checkpoint %s", path) : 0;
}

int checkpoint_load_weights(const char *path, struct model *m) { return checkpoint_load_weights_part(path, m, 0, 0, NULL); }

int checkpoint_load_weights_part(const char *path, struct model *m, int64_t lo, int64_t hi, float *shard) {
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
    int64_t off = 0;
    for (int i = 0; i < n && rc == 0; off += params[i++].numel) {
        if (!shard) { /* this rank's slice under tensor parallelism */
            rc = tp_read_param(w, params[i].name, &params[i]);
            continue;
        }
        int64_t a = off > lo ? off : lo, b = off + params[i].numel < hi ? off + params[i].numel : hi;
        if (a < b) rc = tp_read_param_range(w, params[i].name, &params[i], a - off, b - a, shard + (a - lo));
    }
    safetensors_close(w);
    return rc;
}
