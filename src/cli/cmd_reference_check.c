/* csft reference-check DIR: reproduces a Hugging Face reference fixture (format in
 * tests/fixtures/hf/README.md): loss, logits, every gradient, greedy generation, the full and
 * LoRA AdamW trajectories, LoRA logits/gradients and the merged loss. One line per quantity
 * with its relative error and tolerance; exits 1 if anything is out of tolerance. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/step.h"

#define TOL_LOGITS 1e-5
#define TOL_GRAD 1e-4
#define TOL_TRAJ 1e-3

struct check {
    int failed, total;
    int verbose;
};

static void report(struct check *ck, const char *what, double err, double tol) {
    int ok = err <= tol; /* NaN fails */
    ck->total++;
    if (!ok) ck->failed++;
    printf("%-72s err %.3e  tol %.0e  %s\n", what, err, tol, ok ? "ok" : "FAIL");
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* Batch in reference.json: 2-D int arrays ids and labels. */
struct ref_batch {
    int B, T;
    int32_t *ids, *labels, *pos;
};

static int read_batch(struct ref_batch *rb, const cJSON *ids, const cJSON *labels, const char *file) {
    if (!cJSON_IsArray(ids) || !cJSON_IsArray(labels) || cJSON_GetArraySize(ids) == 0)
        return err_set("%s: batch ids/labels must be 2-D arrays", file);
    rb->B = cJSON_GetArraySize(ids);
    rb->T = cJSON_GetArraySize(cJSON_GetArrayItem(ids, 0));
    int64_t N = (int64_t)rb->B * rb->T;
    rb->ids = xmalloc(sizeof(int32_t) * N), rb->labels = xmalloc(sizeof(int32_t) * N), rb->pos = xmalloc(sizeof(int32_t) * N);
    for (int b = 0; b < rb->B; b++) {
        const cJSON *ri = cJSON_GetArrayItem(ids, b), *rl = cJSON_GetArrayItem(labels, b);
        if (cJSON_GetArraySize(ri) != rb->T || cJSON_GetArraySize(rl) != rb->T)
            return err_set("%s: batch row %d has the wrong length (expected %d)", file, b, rb->T);
        for (int t = 0; t < rb->T; t++) {
            rb->ids[b * rb->T + t] = cJSON_GetArrayItem(ri, t)->valueint;
            rb->labels[b * rb->T + t] = cJSON_GetArrayItem(rl, t)->valueint;
            rb->pos[b * rb->T + t] = t;
        }
    }
    return 0;
}

static void free_batch(struct ref_batch *rb) { free(rb->ids), free(rb->labels), free(rb->pos); }

static struct micro_batch as_micro(const struct ref_batch *rb) {
    return (struct micro_batch){.ids = rb->ids, .labels = rb->labels, .pos = rb->pos, .B = rb->B, .T = rb->T};
}

/* Compares the forward logits and the loss/gradients of one backward pass. */
static int check_forward_backward(struct check *ck, struct model *m, const struct ref_batch *rb, double ref_loss,
                                  const char *ref_file, const char *tag, int lora) {
    struct safetensors *st;
    if (safetensors_open(&st, ref_file)) return -1;
    int64_t N = (int64_t)rb->B * rb->T, V = m->cfg.vocab_size;
    model_forward(m, rb->ids, rb->pos, rb->B, rb->T);
    float *logits = xmalloc(sizeof(float) * N * V), *ref = xmalloc(sizeof(float) * N * V);
    model_logits(m, logits);
    int64_t shape[3] = {rb->B, rb->T, V};
    char what[512];
    if (safetensors_read_f32(st, "logits", ref, shape, 3)) goto fail;
    snprintf(what, sizeof what, "%s logits", tag);
    report(ck, what, rel_err(logits, ref, N * V), TOL_LOGITS);
    int32_t *targets = xmalloc(sizeof(int32_t) * N);
    int64_t n = model_shift_labels(targets, rb->labels, rb->B, rb->T);
    model_zero_grad(m);
    double loss = model_backward(m, targets, 1.0f / (float)n) / (double)n;
    m->k->sync(); /* the gradients are read on the host below */
    free(targets);
    snprintf(what, sizeof what, "%s loss (%.6f vs %.6f)", tag, loss, ref_loss);
    report(ck, what, fabs(loss - ref_loss) / fabs(ref_loss), TOL_LOGITS);
    int np;
    struct param *params = lora ? m->lora_params : m->params;
    np = lora ? m->n_lora_params : m->n_params;
    double worst = 0;
    for (int i = 0; i < np; i++) {
        char key[400];
        if (lora) { /* PEFT's in-memory name carries the adapter name */
            const char *w = strstr(params[i].name, ".weight");
            snprintf(key, sizeof key, "grad.%.*s.default.weight", (int)(w - params[i].name), params[i].name);
        } else {
            snprintf(key, sizeof key, "grad.%s", params[i].name);
        }
        float *g = xmalloc(sizeof(float) * params[i].numel);
        if (safetensors_read_f32(st, key, g, params[i].shape, params[i].n_dims)) {
            free(g);
            goto fail;
        }
        double e = rel_err(params[i].grad, g, params[i].numel);
        free(g);
        if (e > worst) worst = e;
        if (ck->verbose || e > TOL_GRAD) {
            snprintf(what, sizeof what, "%s %s", tag, key);
            report(ck, what, e, TOL_GRAD);
        } else {
            ck->total++;
        }
    }
    snprintf(what, sizeof what, "%s gradients: worst of %d tensors", tag, np);
    printf("%-72s err %.3e  tol %.0e  %s\n", what, worst, TOL_GRAD, worst <= TOL_GRAD ? "ok" : "FAIL");
    free(logits), free(ref);
    safetensors_close(st);
    return 0;
fail:
    free(logits), free(ref);
    safetensors_close(st);
    return -1;
}

static int check_trajectory(struct check *ck, struct model *m, const cJSON *traj, const struct ref_batch *batches,
                            int n_batches, const char *tag) {
    const cJSON *betas = cJSON_GetObjectItem(traj, "betas"), *steps = cJSON_GetObjectItem(traj, "steps");
    const char *sched = cJSON_GetStringValue(cJSON_GetObjectItem(traj, "schedule"));
    struct lr_schedule ls = {0};
    if (!sched || lr_schedule_parse(sched, &ls.type)) return err_set("%s trajectory: unknown schedule", tag);
    ls.lr = cJSON_GetObjectItem(traj, "lr")->valuedouble;
    ls.warmup_steps = cJSON_GetObjectItem(traj, "warmup_steps")->valueint;
    ls.total_steps = cJSON_GetObjectItem(traj, "total_steps")->valueint;
    struct adamw opt;
    int np;
    struct param *params = model_trainable(m, &np);
    adamw_init(&opt, params, np, (float)cJSON_GetArrayItem(betas, 0)->valuedouble,
               (float)cJSON_GetArrayItem(betas, 1)->valuedouble, (float)cJSON_GetObjectItem(traj, "eps")->valuedouble,
               (float)cJSON_GetObjectItem(traj, "weight_decay")->valuedouble);
    double clip = cJSON_GetObjectItem(traj, "grad_clip")->valuedouble;
    double worst_loss = 0, worst_norm = 0, worst_lr = 0;
    int n_steps = cJSON_GetArraySize(steps);
    for (int i = 0; i < n_steps; i++) {
        const cJSON *s = cJSON_GetArrayItem(steps, i);
        struct micro_batch mb = as_micro(&batches[i % n_batches]);
        struct step_result r;
        double lr = lr_at(&ls, i + 1);
        if (train_step(m, &opt, &mb, 1, lr, clip, NULL, &r)) {
            adamw_free(&opt);
            return -1;
        }
        double rl = cJSON_GetObjectItem(s, "loss")->valuedouble, rg = cJSON_GetObjectItem(s, "grad_norm")->valuedouble;
        double rlr = cJSON_GetObjectItem(s, "lr")->valuedouble;
        worst_loss = fmax(worst_loss, fabs(r.loss - rl) / fabs(rl));
        worst_norm = fmax(worst_norm, fabs(r.grad_norm - rg) / fabs(rg));
        worst_lr = fmax(worst_lr, fabs(lr - rlr) / fmax(fabs(rlr), 1e-12));
        if (ck->verbose)
            printf("  %s step %d: lr %.6g loss %.6f (ref %.6f) grad_norm %.6f (ref %.6f)\n", tag, i + 1, lr, r.loss, rl,
                   r.grad_norm, rg);
    }
    adamw_free(&opt);
    char what[128];
    snprintf(what, sizeof what, "%s trajectory: loss, worst of %d steps", tag, n_steps);
    report(ck, what, worst_loss, TOL_TRAJ);
    snprintf(what, sizeof what, "%s trajectory: grad norm, worst of %d steps", tag, n_steps);
    report(ck, what, worst_norm, TOL_TRAJ);
    snprintf(what, sizeof what, "%s trajectory: learning rate, worst of %d steps", tag, n_steps);
    report(ck, what, worst_lr, 1e-6);
    return 0;
}

/* DIR's model, or the weights at `weights` (an HF folder or a MindSpore .ckpt) with DIR's shape. */
static int load_weights(struct model *m, const char *dir, const char *weights, int train_base) {
    if (!weights) return model_load(m, dir, 0, train_base);
    char *cj_path = path_join(dir, "config.json"), *cj = file_read_all(cj_path, NULL);
    int rc = cj ? model_load_from(m, weights, cj, 0, train_base, 0) : -1;
    free(cj), free(cj_path);
    return rc;
}

static int run_checks(struct check *ck, const char *dir, const char *weights) {
    char *ref_path = path_join(dir, "reference.json");
    char *text = file_read_all(ref_path, NULL);
    if (!text) return free(ref_path), -1;
    cJSON *ref = cJSON_Parse(text);
    free(text);
    int rc = -1;
    struct model m = {0};
    struct ref_batch rb = {0}, batches[8] = {{0}};
    int n_batches = 0;
    char *full_file = path_join(dir, "reference_full.safetensors"), *lora_file = path_join(dir, "reference_lora.safetensors");
    char *adapter = path_join(dir, "lora_adapter");
    if (!ref) {
        err_set("%s: not valid JSON", ref_path);
        goto done;
    }
    if (read_batch(&rb, cJSON_GetObjectItem(ref, "batch_input_ids"), cJSON_GetObjectItem(ref, "batch_labels"), ref_path))
        goto done;
    const cJSON *bi = cJSON_GetObjectItem(ref, "batches_input_ids"), *bl = cJSON_GetObjectItem(ref, "batches_labels");
    n_batches = cJSON_GetArraySize(bi);
    if (n_batches > 8) n_batches = 8;
    for (int i = 0; i < n_batches; i++)
        if (read_batch(&batches[i], cJSON_GetArrayItem(bi, i), cJSON_GetArrayItem(bl, i), ref_path)) goto done;

    /* base model: logits, loss, gradients */
    if (load_weights(&m, dir, weights, 1)) goto done;
    if (weights) printf("%s: weights from %s\n", dir, weights);
    printf("%s: %s, %d layers, hidden %d, heads %d/%d, head_dim %d, vocab %d\n", dir, model_arch_name(m.cfg.arch),
           m.cfg.n_layers, m.cfg.hidden_size, m.cfg.n_heads, m.cfg.n_kv_heads, m.cfg.head_dim, m.cfg.vocab_size);
    if (check_forward_backward(ck, &m, &rb, cJSON_GetObjectItem(ref, "loss")->valuedouble, full_file, "base", 0))
        goto done;

    /* greedy generation */
    const cJSON *gp = cJSON_GetObjectItem(ref, "greedy_prompt"), *go = cJSON_GetObjectItem(ref, "greedy_output");
    if (gp && go) {
        int np = cJSON_GetArraySize(gp), no = cJSON_GetArraySize(go), mism = 0;
        int32_t *prompt = xmalloc(sizeof(int32_t) * np), *out = xmalloc(sizeof(int32_t) * no);
        for (int i = 0; i < np; i++) prompt[i] = cJSON_GetArrayItem(gp, i)->valueint;
        int n = model_generate(&m, prompt, np, out, no, NULL, 0, 0, 0, 0, 0);
        for (int i = 0; i < no; i++) mism += i >= n || out[i] != cJSON_GetArrayItem(go, i)->valueint;
        char what[64];
        snprintf(what, sizeof what, "greedy generation: tokens differing of %d", no);
        report(ck, what, mism, 0);
        free(prompt), free(out);
    }

    /* full fine-tuning trajectory from the same weights */
    const cJSON *ft = cJSON_GetObjectItem(ref, "full_trajectory");
    if (ft && n_batches) {
        model_free(&m);
        if (load_weights(&m, dir, weights, 1) || check_trajectory(ck, &m, ft, batches, n_batches, "full")) goto done;
    }
    model_free(&m);

    if (!dir_exists(adapter)) {
        printf("%s: no lora_adapter/ folder: LoRA checks skipped\n", dir);
        rc = 0;
        goto done;
    }
    /* LoRA: logits, loss, adapter gradients, trajectory, merge */
    if (load_weights(&m, dir, weights, 0) || lora_load_adapter(&m, adapter)) goto done;
    if (check_forward_backward(ck, &m, &rb, cJSON_GetObjectItem(ref, "lora_loss")->valuedouble, lora_file, "lora", 1))
        goto done;
    const cJSON *lt = cJSON_GetObjectItem(ref, "lora_trajectory");
    if (lt && n_batches) {
        model_free(&m);
        if (load_weights(&m, dir, weights, 0) || lora_load_adapter(&m, adapter) ||
            check_trajectory(ck, &m, lt, batches, n_batches, "lora"))
            goto done;
    }
    model_free(&m);
    if (load_weights(&m, dir, weights, 0) || lora_load_adapter(&m, adapter)) goto done;
    lora_merge(&m);
    struct micro_batch mb = as_micro(&rb);
    double merged = eval_loss(&m, &mb, 1, NULL), ref_merged = cJSON_GetObjectItem(ref, "merged_loss")->valuedouble;
    char what[128];
    snprintf(what, sizeof what, "merged loss (%.6f vs %.6f)", merged, ref_merged);
    report(ck, what, fabs(merged - ref_merged) / fabs(ref_merged), TOL_LOGITS);
    rc = 0;
done:
    model_free(&m);
    free_batch(&rb);
    for (int i = 0; i < n_batches; i++) free_batch(&batches[i]);
    cJSON_Delete(ref);
    free(ref_path), free(full_file), free(lora_file), free(adapter);
    return rc;
}

int cmd_reference_check(int argc, char **argv) {
    if (cli_wants_help(argc, argv) || argc < 2) {
        printf("usage: csft reference-check [-v] [--device cpu|cuda] [--weights PATH] DIR...\n\n"
               "Checks csft's math against a Hugging Face reference fixture folder (config.json, model weights,\n"
               "reference.json, reference_full.safetensors, and optionally lora_adapter/ + reference_lora.safetensors):\n"
               "loss and logits (tol %.0e), every gradient (%.0e), greedy tokens (identical), AdamW trajectories\n"
               "(%.0e), LoRA logits/gradients and the merged loss. Exits 1 if anything is out of tolerance.\n"
               "  -v              print every gradient tensor and trajectory step\n"
               "  --device NAME   kernel backend: cpu (default) or cuda (fp32 GEMMs; needs make CUDA=1 and a GPU)\n"
               "  --weights PATH  take the weights from PATH (an HF folder or a MindSpore .ckpt, e.g. made by csft\n"
               "                  convert) instead of DIR's own; DIR's config.json gives the shape\n",
               TOL_LOGITS, TOL_GRAD, TOL_TRAJ);
        return argc < 2 ? 2 : 0;
    }
    struct check ck = {0};
    int bad = 0;
    const char *weights = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            ck.verbose = 1;
            continue;
        }
        if (strcmp(argv[i], "--device") == 0) {
            if (i + 1 >= argc) err_set("--device needs a name (cpu, cuda)");
            if (i + 1 >= argc || kernels_select(argv[++i])) return cli_fail("reference-check");
            printf("device: %s\n", kernels_selected()->name);
            continue;
        }
        if (strcmp(argv[i], "--weights") == 0) {
            if (i + 1 >= argc) return fprintf(stderr, "csft reference-check: --weights needs a path\n"), 2;
            weights = argv[++i];
            continue;
        }
        if (run_checks(&ck, argv[i], weights)) {
            fprintf(stderr, "csft reference-check: %s\n", err_msg());
            bad = 1;
        }
    }
    printf("reference-check: %d checks, %d failed\n", ck.total, ck.failed);
    return bad || ck.failed ? 1 : 0;
}
