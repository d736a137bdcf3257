/* Tests for tensor parallelism (src/model/tp.c). Run plainly (make test) it checks the shape
 * errors, the block reader of safetensors and that tp 1 is the ordinary model. Under
 * `mpirun -np W test_tp --tp T` (tests/test_tp.sh) the W ranks form the trainer's grid (W/T
 * data-parallel x T tensor-parallel ranks, dist_grid, through train/tp_dist) and check, on the
 * fixtures, against one process with the whole global batch: the loss and every gradient after one backward, then 10 training steps
 * (losses, grad norms, every parameter), full fine-tuning and LoRA; replicated tensors equal
 * bit for bit on every rank; a second identical run bitwise equal (with dp 2 the trainer's
 * data parallelism at ZeRO stages 0-3 across the tests); saved HF folders and PEFT
 * adapters equal to what one process writes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "dist/dist.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/tp.h"
#include "test.h"
#include "train/dp.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/tp_dist.h"
#include "train/zero.h"

static struct dist D;
static struct dist_grid G; /* world = DP x TP (the trainer's grid, dist.h) */
static int TP = 1, DP = 1;

#define N_STEPS 10
/* The ranks sum float32 partial products in another order than one GEMM: losses and norms
 * agree to ~1e-7, gradients to ~1e-6 (relative L2 per tensor). Weights per tensor (relative
 * L2) within TOL; single elements within TOL_ELEM absolute, as in test_dist.c: a gradient
 * that is zero in exact math (the k_proj bias) is rounding noise that AdamW (eps 1e-8) turns
 * into a noise-sized step. A lost or doubled partial sum moves weights by ~lr = 1e-3. */
#define TOL 1e-5
#define TOL_ELEM 1e-4

/* ---- the grid's communicators ---- */

static struct tp_comm tp_group(void) { return tp_comm_of(&G.tp); }

/* the data-parallel sum of gradients (as train/dp.c without ZeRO), for one backward */
static void dp_sum_grads(struct param *p, int n, void *ctx) {
    (void)ctx;
    for (int i = 0; i < n; i++) dist_allreduce_sum_f32(&G.dp, p[i].grad, p[i].numel);
}

/* ---- the fixture's batches ---- */

struct batch {
    int B, T;
    int32_t *ids, *labels, *pos;
};

/* Global batch s (rows = 2 * DP): fixture batches 2s, 2s+1, ... (mod 3) stacked. */
static int load_batches(const char *dir, struct batch *out, int n, int rows) {
    char *path = path_join(dir, "reference.json");
    char *text = file_read_all(path, NULL);
    free(path);
    if (!text) return -1;
    cJSON *ref = cJSON_Parse(text);
    free(text);
    const cJSON *bi = cJSON_GetObjectItem(ref, "batches_input_ids"), *bl = cJSON_GetObjectItem(ref, "batches_labels");
    int nb = cJSON_GetArraySize(bi);
    int T = cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetArrayItem(bi, 0), 0));
    for (int s = 0; s < n; s++) {
        struct batch *b = &out[s];
        b->B = rows, b->T = T;
        b->ids = xmalloc(sizeof(int32_t) * rows * T), b->labels = xmalloc(sizeof(int32_t) * rows * T);
        b->pos = xmalloc(sizeof(int32_t) * rows * T);
        for (int r = 0; r < rows; r++) {
            int k = (s * rows / 2 + r / 2) % nb;
            const cJSON *ri = cJSON_GetArrayItem(cJSON_GetArrayItem(bi, k), r % 2),
                        *rl = cJSON_GetArrayItem(cJSON_GetArrayItem(bl, k), r % 2);
            for (int t = 0; t < T; t++) {
                b->ids[r * T + t] = cJSON_GetArrayItem(ri, t)->valueint;
                b->labels[r * T + t] = cJSON_GetArrayItem(rl, t)->valueint;
                b->pos[r * T + t] = t;
            }
        }
    }
    cJSON_Delete(ref);
    return 0;
}

static void free_batches(struct batch *b, int n) {
    for (int i = 0; i < n; i++) free(b[i].ids), free(b[i].labels), free(b[i].pos);
}

/* ---- helpers ---- */

static const char *const lora_targets[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"};

static int load(struct model *m, const char *dir, int lora, float dropout, int bf16, const struct tp_comm *tp) {
    if (bf16 ? model_load_bf16_base_tp(m, dir, 0, tp) : model_load_tp(m, dir, 0, !lora, tp)) return -1;
    if (!lora) return 0;
    struct lora_spec spec = {.rank = 4, .alpha = 8, .dropout = dropout, .targets = lora_targets, .n_targets = 7};
    if (lora_attach(m, &spec, 1234)) return -1;
    /* B starts at zero: give it values (the same on every rank) so every path is exercised */
    for (int i = 1; i < m->n_lora_params; i += 2) {
        struct param *p = &m->lora_params[i];
        int64_t n = p->full_shape[0] * p->full_shape[1];
        float *full = xmalloc(sizeof(float) * n);
        for (int64_t j = 0; j < n; j++) full[j] = 0.01f * (float)((j * 7 + i * 13) % 23 - 11);
        tp_take_slice(p->data, full, p);
        free(full);
    }
    return 0;
}

static double rel_l2(const float *a, const float *b, int64_t n) {
    double d = 0, r = 0;
    for (int64_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), r += (double)b[i] * b[i];
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

static double max_abs(const float *a, const float *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

/* Every trainable tensor of m (gathered) against ref's: worst relative L2 and element. */
static void compare(struct model *m, struct model *ref, int grads, double *worst_rel, double *worst_elem,
                    char *worst_name) {
    int n, nr;
    struct param *p = model_trainable(m, &n), *q = model_trainable(ref, &nr);
    *worst_rel = *worst_elem = 0;
    CHECK(n == nr, "tables differ");
    for (int i = 0; i < n; i++) {
        float *full = tp_gather_param(m, &p[i]);
        if (grads) { /* gather the gradient through a copy of the param pointing at it */
            struct param g = p[i];
            g.data = g.grad;
            free(full);
            full = tp_gather_param(m, &g);
        }
        const float *want = grads ? q[i].grad : q[i].data;
        double r = rel_l2(full, want, q[i].numel), e = max_abs(full, want, q[i].numel);
        /* k_proj's bias has a zero gradient in exact math (softmax ignores a shift of every
         * key's score in a row): its float gradient is rounding noise on both sides, which
         * AdamW turns into noise-sized steps. Only the element bound applies to it. */
        if (!grads && strstr(p[i].name, "k_proj.bias")) r = 0;
        if (r > *worst_rel) *worst_rel = r, snprintf(worst_name, 160, "%s", p[i].name);
        *worst_elem = fmax(*worst_elem, e);
        free(full);
    }
}

/* Replicated tensors (tp_dim -1) hold the same bits on every tp rank. */
static int replicas_identical(struct model *m) {
    int n, ok = 1;
    struct param *p = model_trainable(m, &n);
    for (int i = 0; i < n; i++) {
        if (p[i].tp_dim >= 0) continue;
        float *r0 = xmalloc(sizeof(float) * p[i].numel);
        memcpy(r0, p[i].data, sizeof(float) * p[i].numel);
        dist_broadcast(&G.tp, r0, sizeof(float) * p[i].numel, 0);
        ok &= memcmp(r0, p[i].data, sizeof(float) * p[i].numel) == 0;
        free(r0);
    }
    return !dist_any(&D, !ok);
}

/* ---- parity ---- */

struct run_opts {
    const char *dir;
    int lora, n_mb;
    int zero; /* with data parallelism: the ZeRO stage (train/dp.c, train/zero.c) */
    int bf16; /* LoRA on a frozen base held in bf16 */
    float dropout;
};

/* Trains a tp model for N_STEPS on this rank's rows of the global batches; losses and norms
 * into the arrays. Under ZeRO-3 (full fine-tuning) the trained weights are gathered into
 * *flat (this rank's tp slices, malloc'd) and the trainable params point there. */
static int train(struct model *m, struct batch *gb, const struct run_opts *o, double *loss, double *norm,
                 float **flat) {
    int np;
    struct param *p = model_trainable(m, &np);
    struct adamw opt;
    struct dp dp = {0};
    struct step_comm comm = {0};
    int dp_rank = G.dp_rank, rc = 0;
    if (DP > 1) { /* the trainer's data parallelism over the grid's dp group, overlapped */
        struct dp_config cfg = {.zero = o->zero, .overlap = 1, .bucket_elems = 3000};
        if (dp_init(&dp, &G.dp, m, &cfg)) return -1;
        dp_adamw_init(&dp, &opt, 0.9f, 0.95f, 1e-8f, 0.1f);
        comm = dp_step_comm(&dp);
    } else {
        adamw_init(&opt, p, np, 0.9f, 0.95f, 1e-8f, 0.1f);
    }
    m->dropout_seed = 77;
    for (int s = 0; s < N_STEPS && !rc; s++) {
        struct micro_batch g = {.ids = gb[s].ids, .labels = gb[s].labels, .pos = gb[s].pos, .B = gb[s].B, .T = gb[s].T};
        struct micro_batch local, mbs[4];
        struct step_result res;
        rc = dp_shard_rows(&local, &g, dp_rank, DP);
        for (int i = 0; i < o->n_mb && !rc; i++) rc = dp_shard_rows(&mbs[i], &local, i, o->n_mb);
        if (!rc) rc = train_step(m, &opt, mbs, o->n_mb, 1e-3, 1.0, DP > 1 ? &comm : NULL, &res);
        loss[s] = res.loss, norm[s] = res.grad_norm;
    }
    adamw_free(&opt);
    *flat = NULL;
    int64_t lo, hi;
    if (DP > 1 && zero_weight_shard(&dp, &lo, &hi, NULL, NULL) && !m->has_lora) {
        *flat = xmalloc(sizeof(float) * (size_t)dp.n);
        zero_gather_all(&dp, *flat);
    }
    if (DP > 1) dp_free(&dp);
    for (int64_t i = 0, off = 0; *flat && i < np; off += p[i++].numel) p[i].data = *flat + off;
    return rc;
}

static void check_parity(const struct run_opts *o) {
    struct tp_comm tp = tp_group();
    struct batch gb[N_STEPS];
    struct model ref = {0}, m = {0}, m2 = {0};
    double worst_rel, worst_elem;
    char name[160] = "";
    if (load_batches(o->dir, gb, N_STEPS, 2 * DP)) {
        EXPECT(0, "%s: batches", o->dir);
        return;
    }
    if (load(&ref, o->dir, o->lora, o->dropout, o->bf16, NULL) || load(&m, o->dir, o->lora, o->dropout, o->bf16, &tp) ||
        load(&m2, o->dir, o->lora, o->dropout, o->bf16, &tp)) {
        EXPECT(0, "%s: load: %s", o->dir, err_msg());
        goto done;
    }
    /* 0. the slices: counted ones (tp_count) cover every element of the model once; a rank
     * holds about 1/TP of it (plus replicated norms / kv heads) */
    {
        int64_t counted = 0, full = 0;
        for (int i = 0; i < m.n_params; i++) counted += m.params[i].tp_count ? m.params[i].numel : 0;
        for (int i = 0; i < ref.n_params; i++) full += ref.params[i].numel;
        double c = (double)counted;
        dist_allreduce_sum_f64(&G.tp, &c, 1);
        EXPECT((int64_t)c == full, "counted slices hold %.0f elements, the model %lld", c, (long long)full);
        if (D.rank == 0 && !o->lora)
            printf("  %s tp%d: rank 0 holds %lld of %lld base elements (%.3f)\n", o->dir, TP, (long long)m.n_base,
                   (long long)full, (double)m.n_base / (double)full);
    }
    /* 1. one forward + backward of the global batch (dp 1) / this rank's rows (dp > 1 adds
     * the dp sum of gradients) against one process */
    {
        struct batch *b = &gb[0];
        int dp_rank = G.dp_rank;
        int rows = b->B / DP, T = b->T;
        int32_t *tg = xmalloc(sizeof(int32_t) * b->B * T), *tl = xmalloc(sizeof(int32_t) * rows * T);
        double n = (double)model_shift_labels(tg, b->labels, b->B, T);
        model_shift_labels(tl, b->labels + (int64_t)dp_rank * rows * T, rows, T);
        model_zero_grad(&ref), model_zero_grad(&m);
        model_forward(&ref, b->ids, b->pos, b->B, T);
        double lr_ = model_backward(&ref, tg, (float)(1.0 / n));
        model_forward(&m, b->ids + (int64_t)dp_rank * rows * T, b->pos, rows, T);
        double lt = model_loss(&m, tl), lb = model_backward(&m, tl, (float)(1.0 / n));
        dist_allreduce_sum_f64(&G.dp, &lb, 1);
        dist_allreduce_sum_f64(&G.dp, &lt, 1);
        int np;
        struct param *p = model_trainable(&m, &np);
        if (DP > 1) dp_sum_grads(p, np, NULL);
        EXPECT(fabs(lb - lr_) <= TOL * fabs(lr_) && fabs(lt - lr_) <= TOL * fabs(lr_), "loss %.9g / %.9g vs %.9g",
               lb, lt, lr_);
        compare(&m, &ref, 1, &worst_rel, &worst_elem, name);
        EXPECT(worst_rel <= TOL, "gradient %s differs by %.3g (relative L2)", name, worst_rel);
        if (D.rank == 0) printf("  %s%s tp%d dp%d: first loss %.2e, gradients %.2e (%s)\n", o->dir,
                                o->lora ? " LoRA" : "", TP, DP, fabs(lb - lr_) / lr_, worst_rel, name);
        free(tg), free(tl);
    }
    /* 2. N_STEPS of training, twice on the tp grid, against one process */
    double lr[N_STEPS], nr[N_STEPS], lt[N_STEPS], nt[N_STEPS], lt2[N_STEPS], nt2[N_STEPS];
    float *flat = NULL, *flat2 = NULL;
    {
        int np;
        struct param *p = model_trainable(&ref, &np);
        struct adamw opt;
        adamw_init(&opt, p, np, 0.9f, 0.95f, 1e-8f, 0.1f);
        ref.dropout_seed = 77;
        for (int s = 0; s < N_STEPS; s++) {
            struct micro_batch g = {.ids = gb[s].ids, .labels = gb[s].labels, .pos = gb[s].pos, .B = gb[s].B,
                                    .T = gb[s].T};
            struct step_result res;
            EXPECT(train_step(&ref, &opt, &g, 1, 1e-3, 1.0, NULL, &res) == 0, "%s", err_msg());
            lr[s] = res.loss, nr[s] = res.grad_norm;
        }
        adamw_free(&opt);
    }
    /* reload: step 1 changed m's gradients only, but start both runs the same way */
    model_free(&m);
    if (load(&m, o->dir, o->lora, o->dropout, o->bf16, &tp)) {
        EXPECT(0, "reload: %s", err_msg());
        goto done;
    }
    EXPECT(train(&m, gb, o, lt, nt, &flat) == 0, "%s", err_msg());
    EXPECT(train(&m2, gb, o, lt2, nt2, &flat2) == 0, "%s", err_msg());
    double wl = 0, wn = 0;
    for (int s = 0; s < N_STEPS; s++)
        wl = fmax(wl, fabs(lt[s] - lr[s]) / fabs(lr[s])), wn = fmax(wn, fabs(nt[s] - nr[s]) / fabs(nr[s]));
    EXPECT(wl <= TOL, "losses differ by %.3g (relative)", wl);
    EXPECT(wn <= TOL, "grad norms differ by %.3g (relative)", wn);
    compare(&m, &ref, 0, &worst_rel, &worst_elem, name);
    EXPECT(worst_rel <= TOL, "parameter %s differs by %.3g (relative L2) after %d steps", name, worst_rel, N_STEPS);
    EXPECT(worst_elem <= TOL_ELEM, "a parameter element differs by %.3g after %d steps", worst_elem, N_STEPS);
    EXPECT(replicas_identical(&m), "replicated tensors differ between tp ranks");
    /* the same grid twice: bitwise */
    int np, np2, same = memcmp(lt, lt2, sizeof lt) == 0 && memcmp(nt, nt2, sizeof nt) == 0;
    struct param *p = model_trainable(&m, &np), *p2 = model_trainable(&m2, &np2);
    for (int i = 0; i < np; i++) same &= memcmp(p[i].data, p2[i].data, sizeof(float) * p[i].numel) == 0;
    EXPECT(same, "two identical runs differ");
    if (D.rank == 0)
        printf("  %s%s%s tp%d dp%d zero %d n_mb %d dropout %g, %d steps: loss %.2e, grad norm %.2e, params %.2e (%s; "
               "element %.2e)\n",
               o->dir, o->lora ? " LoRA" : "", o->bf16 ? " bf16 base" : "", TP, DP, DP > 1 ? o->zero : 0, o->n_mb, o->dropout, N_STEPS, wl, wn, worst_rel, name,
               worst_elem);
done:
    model_free(&ref), model_free(&m), model_free(&m2);
    free(flat), free(flat2);
    free_batches(gb, N_STEPS);
}

static void test_parity_qwen2_full(void) {
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/qwen2-tiny", .n_mb = 1});
}
static void test_parity_llama_full_accum(void) {
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/llama-tiny", .n_mb = 2, .zero = 2});
}
static void test_parity_qwen3_full(void) {
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/qwen3-tiny", .n_mb = 1, .zero = 3});
}
static void test_parity_qwen2_lora(void) {
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/qwen2-tiny", .lora = 1, .n_mb = 1, .zero = 1});
}
static void test_parity_llama_lora_dropout(void) {
    /* dropout masks follow the token's index in its micro-batch: one process draws the same
     * ones only without data parallelism or accumulation */
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/llama-tiny", .lora = 1, .n_mb = DP == 1 ? 1 : 2,
                                    .zero = 3, .dropout = DP == 1 ? 0.1f : 0});
}

/* the bf16-stored, two-shard fixture (slices read through the index) with a bf16 frozen base */
static void test_parity_mistral_lora_bf16(void) {
    check_parity(&(struct run_opts){.dir = "tests/fixtures/hf/mistral-tiny-bf16-sharded", .lora = 1, .n_mb = 1,
                                    .bf16 = 1});
}

/* ---- saving: the gathered folder equals the one-process one, byte for byte ---- */

static void test_save(void) {
    struct tp_comm tp = tp_group();
    const char *dir = "tests/fixtures/hf/llama-tiny";
    struct model ref = {0}, m = {0};
    if (load(&ref, dir, 1, 0, 0, NULL) || load(&m, dir, 1, 0, 0, &tp)) {
        EXPECT(0, "load: %s", err_msg());
        goto done;
    }
    char a[128], b[128], rm[300];
    snprintf(a, sizeof a, "build/tmp_tp/tp%d_dp%d_%d/one", TP, DP, D.rank);
    snprintf(b, sizeof b, "build/tmp_tp/tp%d_dp%d_%d/tp", TP, DP, D.rank);
    snprintf(rm, sizeof rm, "rm -rf %s %s", a, b);
    EXPECT(system(rm) == 0, "%s", rm);
    dist_barrier(&D);
    EXPECT(model_save(&ref, a, 0, 0) == 0, "%s", err_msg());
    EXPECT(model_save(&m, b, 0, 0) == 0, "%s", err_msg());
    EXPECT(lora_save_adapter(&ref, a, NULL, 0) == 0, "%s", err_msg());
    EXPECT(lora_save_adapter(&m, b, NULL, 0) == 0, "%s", err_msg());
    char wb[200], wa[200];
    int tp_rank = tp.rank;
    const char *files[] = {"model.safetensors", "config.json", "adapter_model.safetensors", "adapter_config.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(wa, sizeof wa, "%s/%s", a, files[i]), snprintf(wb, sizeof wb, "%s/%s", b, files[i]);
        if (tp_rank == 0) EXPECT(files_equal(wa, wb), "%s differs from the one-process save", wb);
        else EXPECT(!file_exists(wb), "tp rank %d wrote %s", tp_rank, wb);
    }
done:
    model_free(&ref), model_free(&m);
}

/* ---- single process ---- */

static void test_shape_errors(void) {
    struct model m = {0};
    struct tp_comm t3 = {.rank = 0, .size = 3}, t8 = {.rank = 0, .size = 8};
    EXPECT(model_load_tp(&m, "tests/fixtures/hf/qwen2-tiny", 0, 1, &t3) == -1, "tp 3 must fail");
    EXPECT_ERR("model_parallel 3 cannot split this model: num_attention_heads 4, intermediate_size 176 and "
               "vocab_size 512 must be multiples of it and num_key_value_heads 2 a multiple or a divisor of it; "
               "allowed model_parallel: 1, 2, 4");
    EXPECT_ERR("tests/fixtures/hf/qwen2-tiny");
    EXPECT(model_load_tp(&m, "tests/fixtures/hf/llama-tiny", 0, 0, &t8) == -1, "tp 8 must fail");
    EXPECT_ERR("model_parallel 8 cannot split");
    struct model_config c = {.n_heads = 28, .n_kv_heads = 4, .intermediate_size = 18944, .vocab_size = 152064};
    EXPECT(tp_check_config(&c, 4) == 0, "Qwen2.5-7B splits 4 ways");
    EXPECT(tp_check_config(&c, 7) == -1, "Qwen2.5-7B: 4 kv heads on 7 ranks");
    EXPECT(tp_check_config(&c, 8) == -1, "Qwen2.5-7B: 28 heads do not split 8 ways");
    EXPECT_ERR("allowed model_parallel: 1, 2, 4");
    c.n_kv_heads = 2, c.n_heads = 16, c.intermediate_size = 64, c.vocab_size = 64;
    EXPECT(tp_check_config(&c, 8) == 0, "2 kv heads replicated on 8 ranks");
}

/* tp 1 (or no tp) is the ordinary model: the same loss bit for bit */
static void test_tp1_is_plain(void) {
    struct model a = {0}, b = {0};
    struct tp_comm one = {.size = 1};
    const char *dir = "tests/fixtures/hf/qwen3-tiny";
    if (model_load(&a, dir, 0, 1) || model_load_tp(&b, dir, 0, 1, &one)) {
        EXPECT(0, "load: %s", err_msg());
        goto done;
    }
    int32_t ids[8] = {1, 5, 9, 200, 7, 3, 511, 4}, pos[8] = {0, 1, 2, 3, 4, 5, 6, 7}, tg[8] = {5, 9, 200, 7, 3, 511, 4, -100};
    model_forward(&a, ids, pos, 1, 8), model_forward(&b, ids, pos, 1, 8);
    double la = model_loss(&a, tg), lb = model_loss(&b, tg);
    EXPECT(la == lb && la > 0, "%.9g vs %.9g", la, lb);
done:
    model_free(&a), model_free(&b);
}

static void test_block_read(void) {
    struct safetensors *st;
    if (safetensors_open(&st, "tests/fixtures/hf/llama-tiny")) {
        EXPECT(0, "%s", err_msg());
        return;
    }
    int64_t shape[2] = {176, 64};
    const char *nm = "model.layers.1.mlp.gate_proj.weight";
    float *full = xmalloc(sizeof(float) * 176 * 64), blk[10 * 7];
    EXPECT(safetensors_read_f32(st, nm, full, shape, 2) == 0, "%s", err_msg());
    EXPECT(safetensors_read_f32_block(st, nm, blk, shape, 2, 100, 10, 50, 7) == 0, "%s", err_msg());
    int ok = 1;
    for (int r = 0; r < 10; r++)
        for (int c = 0; c < 7; c++) ok &= blk[r * 7 + c] == full[(100 + r) * 64 + 50 + c];
    EXPECT(ok, "block differs from the whole tensor");
    EXPECT(safetensors_read_f32_block(st, nm, blk, shape, 2, 170, 10, 0, 7) == -1, "rows past the end");
    EXPECT_ERR("block rows [170, 180) cols [0, 7) outside its shape");
    int64_t bad[2] = {64, 176};
    EXPECT(safetensors_read_f32_block(st, nm, blk, bad, 2, 0, 1, 0, 1) == -1, "wrong shape");
    EXPECT_ERR("expected shape");
    free(full);
    safetensors_close(st);
}

#define DRUN(fn)                                                                                                 \
    do {                                                                                                         \
        RUN(fn);                                                                                                 \
        if (dist_any(&D, t_cur_failed != 0) && !t_cur_failed) t_passed--, t_failed++;                            \
    } while (0)

int main(int argc, char **argv) {
    if (dist_init(&D, &argc, &argv)) {
        fprintf(stderr, "test_tp: %s\n", err_msg());
        return 1;
    }
    if (argc > 2 && strcmp(argv[1], "--tp") == 0) TP = atoi(argv[2]);
    if (!D.mpi || TP < 2) {
        RUN(test_shape_errors);
        RUN(test_tp1_is_plain);
        RUN(test_block_read);
        dist_finalize(&D);
        return TEST_SUMMARY("tp");
    }
    if (D.world % TP) {
        fprintf(stderr, "test_tp: %d ranks are not a multiple of --tp %d\n", D.world, TP);
        return 1;
    }
    DP = D.world / TP;
    if (dist_grid_init(&G, &D, DP, TP, 1)) {
        fprintf(stderr, "test_tp: %s\n", err_msg());
        return 1;
    }
    DRUN(test_parity_qwen2_full);
    DRUN(test_parity_llama_full_accum);
    DRUN(test_parity_qwen3_full);
    DRUN(test_parity_qwen2_lora);
    DRUN(test_parity_llama_lora_dropout);
    DRUN(test_parity_mistral_lora_bf16);
    DRUN(test_save);
    int rc = t_failed ? 1 : 0;
    char name[32];
    snprintf(name, sizeof name, "tp_mpi_tp%d_dp%d", TP, DP);
    if (D.rank == 0) rc = TEST_SUMMARY(name);
    dist_grid_free(&G);
    dist_finalize(&D);
    return rc;
}
