/* test_backend: the model code's backend discipline, checked on the CPU. A "guarded" table wraps
 * kernels_cpu and aborts the test when a kernel receives a pointer outside backend memory (memory
 * from mem_alloc): on a GPU such a host pointer would crash or read garbage. Training (full and
 * LoRA with dropout, Qwen3 q/k norm), loss, logits, generation and merging run through it and must
 * give the same numbers as the plain CPU table. Also kernels_get/kernels_select errors. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/step.h"
#include "train/trainer.h"
#include "test.h"

#define MAX_BLOCKS 4096
static struct {
    const char *p;
    size_t n;
} blocks[MAX_BLOCKS];
static int n_blocks, bad_calls;
static const char *first_bad;

static void *g_alloc(size_t bytes) {
    void *p = kernels_cpu.mem_alloc(bytes);
    CHECK(n_blocks < MAX_BLOCKS, "too many blocks");
    blocks[n_blocks].p = p, blocks[n_blocks].n = bytes ? bytes : 1, n_blocks++;
    return p;
}

static void g_free(void *p) {
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].p == p) {
            blocks[i] = blocks[--n_blocks];
            break;
        }
    kernels_cpu.mem_free(p);
}

/* p (NULL allowed) lies inside one allocated block */
static void need(const void *p, const char *what) {
    if (!p) return;
    for (int i = 0; i < n_blocks; i++)
        if ((const char *)p >= blocks[i].p && (const char *)p < blocks[i].p + blocks[i].n) return;
    if (!bad_calls++) first_bad = what;
}

static void g_embedding_forward(float *out, const int32_t *ids, const float *wte, int64_t N, int C) {
    need(out, "embedding_forward out"), need(ids, "embedding_forward ids"), need(wte, "embedding_forward wte");
    kernels_cpu.embedding_forward(out, ids, wte, N, C);
}
static void g_embedding_backward(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C) {
    need(dwte, "embedding_backward dwte"), need(dout, "embedding_backward dout"), need(ids, "embedding_backward ids");
    kernels_cpu.embedding_backward(dwte, dout, ids, N, C);
}
static void g_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N, int C, float eps) {
    need(out, "rmsnorm_forward out"), need(rstd, "rmsnorm_forward rstd"), need(inp, "rmsnorm_forward inp");
    need(w, "rmsnorm_forward weight");
    kernels_cpu.rmsnorm_forward(out, rstd, inp, w, N, C, eps);
}
static void g_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                               const float *rstd, int64_t N, int C, int acc) {
    need(dinp, "rmsnorm_backward dinp"), need(dw, "rmsnorm_backward dweight"), need(dout, "rmsnorm_backward dout");
    need(inp, "rmsnorm_backward inp"), need(w, "rmsnorm_backward weight"), need(rstd, "rmsnorm_backward rstd");
    kernels_cpu.rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C, acc);
}
static void g_matmul_forward(float *out, const float *inp, const float *w, const float *b, int64_t N, int IC, int OC,
                             float alpha, int acc) {
    need(out, "matmul_forward out"), need(inp, "matmul_forward inp"), need(w, "matmul_forward weight");
    need(b, "matmul_forward bias");
    kernels_cpu.matmul_forward(out, inp, w, b, N, IC, OC, alpha, acc);
}
static void g_matmul_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              int64_t N, int IC, int OC, float alpha, int acc) {
    need(dinp, "matmul_backward dinp"), need(dw, "matmul_backward dweight"), need(db, "matmul_backward dbias");
    need(dout, "matmul_backward dout"), need(inp, "matmul_backward inp"), need(w, "matmul_backward weight");
    kernels_cpu.matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC, alpha, acc);
}
static void g_rope_apply(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign) {
    need(x, "rope_apply x"), need(pos, "rope_apply pos"), need(inv_freq, "rope_apply inv_freq");
    kernels_cpu.rope_apply(x, pos, inv_freq, N, nh, HS, sign);
}
static void g_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                                const int32_t *pos, int B, int T, int H, int KVH, int HS) {
    need(out, "attention_forward out"), need(lse, "attention_forward lse"), need(q, "attention_forward q");
    need(k, "attention_forward k"), need(v, "attention_forward v"), need(pos, "attention_forward pos");
    kernels_cpu.attention_forward(out, lse, q, k, v, pos, B, T, H, KVH, HS);
}
static void g_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out,
                                 const float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                                 int B, int T, int H, int KVH, int HS) {
    need(dq, "attention_backward dq"), need(dk, "attention_backward dk"), need(dv, "attention_backward dv");
    need(dout, "attention_backward dout"), need(out, "attention_backward out"), need(lse, "attention_backward lse");
    need(q, "attention_backward q"), need(k, "attention_backward k"), need(v, "attention_backward v");
    need(pos, "attention_backward pos");
    kernels_cpu.attention_backward(dq, dk, dv, dout, out, lse, q, k, v, pos, B, T, H, KVH, HS);
}
static void g_attention_decode(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                               int HS) {
    need(out, "attention_decode out"), need(q, "attention_decode q"), need(kc, "attention_decode kc");
    need(vc, "attention_decode vc");
    kernels_cpu.attention_decode(out, q, kc, vc, Tk, H, KVH, HS);
}
static void g_swiglu_forward(float *h, const float *gate, const float *up, int64_t n) {
    need(h, "swiglu_forward h"), need(gate, "swiglu_forward gate"), need(up, "swiglu_forward up");
    kernels_cpu.swiglu_forward(h, gate, up, n);
}
static void g_swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n) {
    need(dgate, "swiglu_backward dgate"), need(dup, "swiglu_backward dup"), need(dh, "swiglu_backward dh");
    need(gate, "swiglu_backward gate"), need(up, "swiglu_backward up");
    kernels_cpu.swiglu_backward(dgate, dup, dh, gate, up, n);
}
static double g_lm_head_ce(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N,
                           int C, int V, float gs, float *scratch, int chunk) {
    need(dh, "lm_head_ce dh"), need(dw, "lm_head_ce dw"), need(h, "lm_head_ce h"), need(w, "lm_head_ce w");
    need(scratch, "lm_head_ce scratch"); /* targets may be host memory */
    return kernels_cpu.lm_head_ce(dh, dw, h, w, targets, N, C, V, gs, scratch, chunk);
}
static void g_dropout(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc) {
    need(out, "dropout out"), need(x, "dropout x");
    kernels_cpu.dropout(out, x, n, seed, p, acc);
}
static void g_adamw(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
                    float step_size, float bc2_sqrt, float eps) {
    need(w, "adamw w"), need(m, "adamw m"), need(v, "adamw v"), need(g, "adamw g");
    kernels_cpu.adamw(w, m, v, g, n, decay, b1, b2, step_size, bc2_sqrt, eps);
}
static double g_sumsq(const float *x, int64_t n) {
    need(x, "sumsq x");
    return kernels_cpu.sumsq(x, n);
}
static void g_scale(float *x, int64_t n, float s) {
    need(x, "scale x");
    kernels_cpu.scale(x, n, s);
}

static struct kernels guarded; /* kernels_cpu with the wrappers above */

static void guarded_init(void) {
    guarded = kernels_cpu;
    guarded.name = "guarded-cpu";
    guarded.mem_alloc = g_alloc, guarded.mem_free = g_free;
    guarded.embedding_forward = g_embedding_forward, guarded.embedding_backward = g_embedding_backward;
    guarded.rmsnorm_forward = g_rmsnorm_forward, guarded.rmsnorm_backward = g_rmsnorm_backward;
    guarded.matmul_forward = g_matmul_forward, guarded.matmul_backward = g_matmul_backward;
    guarded.rope_apply = g_rope_apply, guarded.attention_forward = g_attention_forward;
    guarded.attention_backward = g_attention_backward, guarded.attention_decode = g_attention_decode;
    guarded.swiglu_forward = g_swiglu_forward, guarded.swiglu_backward = g_swiglu_backward;
    guarded.lm_head_ce = g_lm_head_ce, guarded.dropout = g_dropout, guarded.adamw = g_adamw;
    guarded.sumsq = g_sumsq, guarded.scale = g_scale;
}

struct run_out {
    double loss[3], grad_norm[3], eval, first_logit;
    int32_t gen[4];
    int n_gen;
};

/* Two train steps (LoRA with dropout when lora), eval loss, logits, generation, merge, eval. */
static void run_model(const struct kernels *k, const char *fixture, int lora, struct run_out *o) {
    kernels_use(k);
    struct model m;
    memset(o, 0, sizeof *o);
    if (model_load(&m, fixture, 0, !lora)) {
        EXPECT(0, "%s: %s", fixture, err_msg());
        kernels_use(&kernels_cpu);
        return;
    }
    if (lora) {
        static const char *const targets[] = {"q_proj", "v_proj", "down_proj"};
        struct lora_spec spec = {.rank = 4, .alpha = 8, .dropout = 0.25f, .targets = targets, .n_targets = 3};
        EXPECT(lora_attach(&m, &spec, 5) == 0, "lora_attach: %s", err_msg());
    }
    int B = 2, T = 11, np;
    int32_t ids[22], labels[22], pos[22];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 31 + 7) % m.cfg.vocab_size;
        labels[i] = i % 5 == 0 ? -100 : ids[i];
        pos[i] = i < T && i >= 4 ? i - 4 : i % T; /* row 0 packs two documents */
    }
    struct param *params = model_trainable(&m, &np);
    struct adamw opt;
    adamw_init(&opt, params, np, 0.9f, 0.999f, 1e-8f, 0.01f);
    struct micro_batch mb = {.ids = ids, .labels = labels, .pos = pos, .B = B, .T = T};
    for (int s = 0; s < 2; s++) {
        struct step_result r;
        EXPECT(train_step(&m, &opt, &mb, 1, 1e-3, 0.5, NULL, &r) == 0, "train_step: %s", err_msg());
        o->loss[s] = r.loss, o->grad_norm[s] = r.grad_norm;
    }
    o->eval = eval_loss(&m, &mb, 1, NULL);
    float *logits = xmalloc(sizeof(float) * B * T * m.cfg.vocab_size);
    model_logits(&m, logits);
    o->first_logit = logits[3];
    free(logits);
    o->n_gen = model_generate(&m, ids, 5, o->gen, 4, NULL, 0, 0, 0, 0, 0);
    if (lora) {
        lora_merge(&m);
        o->loss[2] = eval_loss(&m, &mb, 1, NULL);
    }
    adamw_free(&opt);
    model_free(&m);
    kernels_use(&kernels_cpu);
}

static void check_fixture(const char *fixture, int lora) {
    struct run_out a, b;
    bad_calls = 0, first_bad = NULL;
    run_model(&kernels_cpu, fixture, lora, &a);
    run_model(&guarded, fixture, lora, &b);
    EXPECT(bad_calls == 0, "%s: %d kernel calls got host pointers, first: %s", fixture, bad_calls,
           first_bad ? first_bad : "");
    EXPECT(n_blocks == 0, "%s: %d backend blocks leaked", fixture, n_blocks);
    for (int s = 0; s < 3; s++) {
        EXPECT(a.loss[s] == b.loss[s], "%s loss %d: %.9g vs %.9g", fixture, s, a.loss[s], b.loss[s]);
        EXPECT(a.grad_norm[s] == b.grad_norm[s], "%s grad norm %d", fixture, s);
    }
    EXPECT(a.loss[0] > 0 && a.grad_norm[0] > 0, "%s: nothing trained", fixture);
    EXPECT(a.eval == b.eval && a.first_logit == b.first_logit, "%s: eval/logits differ", fixture);
    EXPECT(a.n_gen == 4 && b.n_gen == 4 && memcmp(a.gen, b.gen, sizeof a.gen) == 0, "%s: generation differs",
           fixture);
}

static void test_full_qwen3(void) { check_fixture("tests/fixtures/hf/qwen3-tiny", 0); }
static void test_lora_qwen2(void) { check_fixture("tests/fixtures/hf/qwen2-tiny", 1); }
static void test_lora_qwen3(void) { check_fixture("tests/fixtures/hf/qwen3-tiny", 1); }

static void test_kernels_get(void) {
    EXPECT(kernels_get("cpu") == &kernels_cpu, "cpu table");
    EXPECT(kernels_get("tpu") == NULL, "unknown device accepted");
    EXPECT_ERR("unknown device \"tpu\"");
#ifndef CSFT_CUDA
    EXPECT(kernels_get("cuda") == NULL, "cuda without CUDA");
    EXPECT_ERR("built without CUDA");
    EXPECT(kernels_select("cuda") == -1 && kernels_selected() == &kernels_cpu, "failed select changed the backend");
#endif
    EXPECT(kernels_select("cpu") == 0 && kernels_selected() == &kernels_cpu, "select cpu");
}

/* The whole trainer (LoRA with dropout, packing, periodic eval, checkpoint, final adapter) as
 * `device: cpu` runs it, through the guarded table: the path a `device: cuda` run takes. */
static char *trainer_losses(const struct kernels *k, const char *out) {
    char *o = xasprintf("output_dir=%s", out);
    char *sets[] = {"load_checkpoint=tests/fixtures/example_model", o,
                    "train_dataset.data_files=[tests/fixtures/datasets/alpaca.jsonl]", "train_dataset.format=alpaca",
                    "train_dataset.chat_template=alpaca", "train_dataset.seq_length=96", "train_dataset.packing=true",
                    "eval_dataset.data_files=[tests/fixtures/datasets/alpaca.jsonl]", "eval_dataset.chat_template=alpaca",
                    "eval_dataset.seq_length=96", "runner_config.max_steps=3", "runner_config.batch_size=2",
                    "model.model_config.pet_config.pet_type=lora", "model.model_config.pet_config.lora_dropout=0.1",
                    "eval_steps=2", "save_steps=2", "logging_steps=1", "tensorboard=false"};
    struct run_config cfg;
    char *text = NULL;
    int rc = config_load(&cfg, NULL, sets, (int)(sizeof sets / sizeof sets[0]));
    EXPECT(rc == 0, "config: %s", err_msg());
    if (rc == 0) {
        kernels_use(k);
        rc = trainer_run(&cfg, 0, NULL);
        kernels_use(&kernels_cpu);
        EXPECT(rc == 0, "trainer_run on %s: %s", k->name, err_msg());
        char *mp = xasprintf("%s/metrics.jsonl", out);
        text = file_read_all(mp, NULL);
        free(mp);
        config_free(&cfg);
    }
    free(o);
    return text;
}

static void test_trainer_guarded(void) {
    system("rm -rf build/tmp_backend && mkdir -p build/tmp_backend");
    bad_calls = 0, first_bad = NULL;
    char *a = trainer_losses(&kernels_cpu, "build/tmp_backend/cpu"), *b = trainer_losses(&guarded, "build/tmp_backend/guarded");
    EXPECT(bad_calls == 0, "trainer: %d kernel calls got host pointers, first: %s", bad_calls, first_bad ? first_bad : "");
    EXPECT(n_blocks == 0, "trainer: %d backend blocks leaked", n_blocks);
    EXPECT(a && b && strstr(a, "\"eval_loss\"") && strstr(a, "\"step\":3"), "metrics: %s", a ? a : "(none)");
    /* same numbers except the wall-clock fields: compare the loss columns */
    int same = a && b;
    for (const char *p = a, *q = b; same && (p = strstr(p, "\"loss\":")) && (q = strstr(q, "\"loss\":")); p++, q++)
        same = strtod(p + 7, NULL) == strtod(q + 7, NULL);
    EXPECT(same, "losses differ between cpu and guarded:\n%s\n%s", a ? a : "", b ? b : "");
    EXPECT(file_exists("build/tmp_backend/guarded/adapter_model.safetensors"), "final adapter");
    free(a), free(b);
}

int main(void) {
    guarded_init();
    RUN(test_kernels_get);
    RUN(test_full_qwen3);
    RUN(test_lora_qwen2);
    RUN(test_lora_qwen3);
    RUN(test_trainer_guarded);
    return TEST_SUMMARY("backend");
}
