/* Tests for the model's memory options: activation recomputation gives the same loss and
 * gradients as keeping every activation (full fine-tuning, and LoRA with dropout, on a
 * Qwen3-style config with q/k norms and a Qwen2-style one with biases). */
#include <stdlib.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "test.h"

static struct model_config tiny_config(int qwen3) {
    struct model_config c = {0};
    c.arch = qwen3 ? ARCH_QWEN3 : ARCH_QWEN2;
    c.vocab_size = 97, c.hidden_size = 32, c.intermediate_size = 56, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2;
    c.head_dim = 8, c.max_position_embeddings = 256, c.rms_norm_eps = 1e-6f, c.rope_theta = 10000;
    c.qk_norm = qwen3, c.qkv_bias = !qwen3;
    return c;
}

/* Loss and a copy of the trainable gradients after one forward/backward. */
static double run_opts(int qwen3, int lora, int recompute, int bf16, float **grads, int64_t *n_grads) {
    struct model_config c = tiny_config(qwen3);
    struct model m;
    model_init_random(&m, &c, 3, !lora);
    if (lora) {
        static const char *const t[] = {"q_proj", "v_proj", "down_proj"};
        struct lora_spec spec = {.rank = 4, .alpha = 8, .dropout = 0.1f, .targets = t, .n_targets = 3};
        EXPECT(lora_attach(&m, &spec, 5) == 0, "attach");
        for (int64_t i = 0; i < m.n_lora; i++) m.lora_mem[i] = 0.05f * (float)((i * 37) % 11 - 5);
    }
    m.recompute = recompute;
    if (bf16) EXPECT(model_base_to_bf16(&m) == 0, "bf16");
    int B = 2, T = 13;
    int32_t ids[26], pos[26], tg[26];
    uint64_t s = 9;
    for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(rng_next(&s) % 97), pos[i] = i % T < 6 ? i % T : i % T - 6;
    model_shift_labels(tg, ids, B, T);
    model_zero_grad(&m);
    m.training = 1, m.dropout_seed = 77;
    model_forward(&m, ids, pos, B, T);
    double loss = model_backward(&m, tg, 1.0f / 24);
    int n;
    struct param *p = model_trainable(&m, &n);
    *n_grads = 0;
    for (int i = 0; i < n; i++) *n_grads += p[i].numel;
    *grads = xmalloc(sizeof(float) * (size_t)*n_grads);
    int64_t off = 0;
    for (int i = 0; i < n; i++) memcpy(*grads + off, p[i].grad, sizeof(float) * p[i].numel), off += p[i].numel;
    model_free(&m);
    return loss;
}

static double run(int qwen3, int lora, int recompute, float **grads, int64_t *n_grads) {
    return run_opts(qwen3, lora, recompute, 0, grads, n_grads);
}

static void check_recompute(int qwen3, int lora) {
    float *g0, *g1;
    int64_t n0, n1;
    double l0 = run(qwen3, lora, 0, &g0, &n0), l1 = run(qwen3, lora, 1, &g1, &n1);
    EXPECT(n0 == n1 && n0 > 0, "gradient sizes %ld vs %ld", (long)n0, (long)n1);
    EXPECT(l0 == l1, "loss %.9g vs %.9g", l0, l1);
    double worst = 0, norm = 0;
    for (int64_t i = 0; i < n0 && n0 == n1; i++) worst = fmax(worst, fabs(g0[i] - g1[i])), norm = fmax(norm, fabs(g0[i]));
    EXPECT(norm > 0 && worst <= 1e-6 * norm, "gradients differ by %.3g (max %.3g)", worst, norm);
    free(g0), free(g1);
}

static void test_recompute_full_qwen3(void) { check_recompute(1, 0); }
static void test_recompute_full_qwen2(void) { check_recompute(0, 0); }
static void test_recompute_lora_dropout(void) { check_recompute(0, 1); }

/* bf16 base: weights rounded to 8 mantissa bits (relative 2^-9) move the loss by well under
 * 1e-3 relative and the LoRA gradients by under 2% of their largest entry. */
static void check_bf16(int qwen3, int recompute) {
    float *g0, *g1;
    int64_t n0, n1;
    double l0 = run_opts(qwen3, 1, 0, 0, &g0, &n0), l1 = run_opts(qwen3, 1, recompute, 1, &g1, &n1);
    EXPECT(n0 == n1 && n0 > 0, "gradient sizes");
    EXPECT(fabs(l0 - l1) <= 1e-3 * fabs(l0) && l0 != l1, "loss %.9g (fp32) vs %.9g (bf16 base)", l0, l1);
    double worst = 0, norm = 0;
    for (int64_t i = 0; i < n0 && n0 == n1; i++) worst = fmax(worst, fabs(g0[i] - g1[i])), norm = fmax(norm, fabs(g0[i]));
    EXPECT(norm > 0 && worst <= 2e-2 * norm, "gradients differ by %.3g (max %.3g)", worst, norm);
    free(g0), free(g1);
}

static void test_bf16_base_lora(void) { check_bf16(0, 0); }
static void test_bf16_base_qwen3_recompute(void) { check_bf16(1, 1); }

static void test_bf16_base_refuses_full_ft(void) {
    struct model_config c = tiny_config(0);
    struct model m;
    model_init_random(&m, &c, 3, 1);
    EXPECT(model_base_to_bf16(&m) != 0, "full fine-tuning must refuse");
    EXPECT_ERR("a bf16 base must be frozen");
    model_free(&m);
    model_init_random(&m, &c, 3, 0);
    EXPECT(model_base_to_bf16(&m) == 0, "frozen base converts");
    EXPECT(model_save(&m, "/tmp/csft_test_bf16_save", 0, 0) != 0, "save refuses");
    EXPECT_ERR("held in bf16");
    int32_t prompt[3] = {1, 2, 3}, out[4];
    EXPECT(model_generate(&m, prompt, 3, out, 4, NULL, 0, 0.0f, 0, 1.0f, 1) == 4, "generation runs on a bf16 base");
    model_free(&m);
}

/* AdamW's 8-wide loop equals its scalar loop bit for bit: one 16-element tensor (vector
 * path) against sixteen 1-element tensors (scalar path), a few steps. */
static void test_adamw_vector_equals_scalar(void) {
    float w1[16], g1[16], w2[16], g2[16];
    struct param p1 = {.n_dims = 1, .numel = 16, .data = w1, .grad = g1, .decay = 1}, p2[16];
    uint64_t s = 4;
    for (int i = 0; i < 16; i++) {
        w1[i] = w2[i] = rng_normal(&s);
        p2[i] = (struct param){.n_dims = 1, .numel = 1, .data = w2 + i, .grad = g2 + i, .decay = 1};
    }
    struct adamw o1, o2;
    adamw_init(&o1, &p1, 1, 0.9f, 0.95f, 1e-8f, 0.1f);
    adamw_init(&o2, p2, 16, 0.9f, 0.95f, 1e-8f, 0.1f);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < 16; i++) g1[i] = g2[i] = rng_normal(&s);
        adamw_step(&o1, &p1, 1, 1e-2f);
        adamw_step(&o2, p2, 16, 1e-2f);
    }
    EXPECT(memcmp(w1, w2, sizeof w1) == 0, "vector and scalar AdamW differ");
    EXPECT(w1[3] != 0, "weights updated");
    adamw_free(&o1), adamw_free(&o2);
}

/* Loss of one forward on a fixed batch. */
static double loss_of(struct model *m) {
    int32_t ids[12], pos[12], tg[12];
    for (int i = 0; i < 12; i++) ids[i] = (i * 13 + 5) % m->cfg.vocab_size, pos[i] = i;
    model_shift_labels(tg, ids, 1, 12);
    model_forward(m, ids, pos, 1, 12);
    return model_loss(m, tg);
}

/* Building the base in bf16 from the start equals converting a float32 base afterwards. */
static void test_bf16_base_at_load(void) {
    struct model a, b;
    EXPECT(model_load(&a, "tests/fixtures/hf/qwen2-tiny", 0, 0) == 0, "%s", err_msg());
    EXPECT(model_base_to_bf16(&a) == 0, "convert");
    EXPECT(model_load_bf16_base(&b, "tests/fixtures/hf/qwen2-tiny", 0) == 0, "%s", err_msg());
    EXPECT(b.base_bf16 && b.layers[0].lin[LIN_Q].w16 && !b.layers[0].lin[LIN_Q].w, "bf16 storage");
    double la = loss_of(&a), lb = loss_of(&b);
    EXPECT(la == lb && la > 0, "loss %.9g vs %.9g", la, lb);
    model_free(&a), model_free(&b);
    struct model_config c = tiny_config(1);
    model_init_random(&a, &c, 11, 0);
    EXPECT(model_base_to_bf16(&a) == 0, "convert");
    model_init_random_bf16_base(&b, &c, 11);
    la = loss_of(&a), lb = loss_of(&b);
    EXPECT(la == lb && la > 0, "random init: loss %.9g vs %.9g", la, lb);
    model_free(&a), model_free(&b);
    EXPECT(model_load_bf16_base(&a, "tests/fixtures/hf/no-such-model", 0) != 0, "missing folder fails");
}

int main(void) {
    RUN(test_bf16_base_at_load);
    RUN(test_adamw_vector_equals_scalar);
    RUN(test_bf16_base_lora);
    RUN(test_bf16_base_qwen3_recompute);
    RUN(test_bf16_base_refuses_full_ft);
    RUN(test_recompute_full_qwen3);
    RUN(test_recompute_full_qwen2);
    RUN(test_recompute_lora_dropout);
    return TEST_SUMMARY("model_options");
}
