/* Tests for src/model and src/train: config parsing (both transformers spellings, refusals),
 * LoRA targeting (list, regex, aliases), adapter save/load, merge, gradient accumulation,
 * packed sequences, save/load round trip, schedules. Numbers come from the HF fixtures. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/step.h"
#include "test.h"

#define QWEN2 "tests/fixtures/hf/qwen2-tiny"

static void write_config(const char *path, const char *json) { file_write_atomic(path, json, strlen(json)); }

static void test_config_spellings(void) {
    struct model_config c;
    EXPECT(model_config_load(&c, QWEN2, 0) == 0, "%s", err_msg());
    EXPECT(c.arch == ARCH_QWEN2 && c.qkv_bias && !c.o_bias && c.tie_word_embeddings, "qwen2 flags");
    EXPECT(c.rope_theta == 1e6 && c.head_dim == 16 && c.n_kv_heads == 2, "qwen2 shape");
    /* transformers 4 spelling + llama3 rope scaling */
    write_config("build/tmp_model/csft_cfg_llama31.json",
                 "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":128,\"hidden_size\":64,"
                 "\"intermediate_size\":128,\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":1,"
                 "\"rope_theta\":500000.0,\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,"
                 "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
                 "\"attention_bias\":true,\"mlp_bias\":true,\"hidden_act\":\"silu\"}");
    EXPECT(model_config_load(&c, "build/tmp_model/csft_cfg_llama31.json", 2) == 0, "%s", err_msg());
    EXPECT(c.rope_type == ROPE_LLAMA3 && c.rope_factor == 8 && c.n_layers == 2, "llama3 rope, layers kept");
    EXPECT(c.qkv_bias && c.o_bias && c.mlp_bias, "attention_bias/mlp_bias");
    float inv[8];
    model_config_rope_inv_freq(&c, inv);
    /* HS = 16: i=0 wavelen 2pi < 2048 (high) -> unchanged; i=7: theta^(-14/16) = 1/97356: wavelen 6.1e5 > 8192 -> /8 */
    EXPECT_NEAR(inv[0], 1.0, 1e-7);
    EXPECT_NEAR(inv[7], pow(500000.0, -14.0 / 16) / 8, 1e-6);
}

static void test_config_refusals(void) {
    struct model_config c;
    write_config("build/tmp_model/csft_cfg_bad1.json", "{\"architectures\":[\"GPT2LMHeadModel\"],\"vocab_size\":1}");
    EXPECT(model_config_load(&c, "build/tmp_model/csft_cfg_bad1.json", 0) != 0, "gpt2 refused");
    EXPECT_ERR("GPT2LMHeadModel");
    EXPECT_ERR("Qwen2ForCausalLM");
    write_config("build/tmp_model/csft_cfg_bad2.json",
                 "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":128,\"hidden_size\":64,"
                 "\"intermediate_size\":128,\"num_hidden_layers\":1,\"num_attention_heads\":4,\"hidden_act\":\"gelu\"}");
    EXPECT(model_config_load(&c, "build/tmp_model/csft_cfg_bad2.json", 0) != 0, "gelu refused");
    EXPECT_ERR("hidden_act");
    write_config("build/tmp_model/csft_cfg_bad3.json",
                 "{\"architectures\":[\"MistralForCausalLM\"],\"vocab_size\":128,\"hidden_size\":64,"
                 "\"intermediate_size\":128,\"num_hidden_layers\":1,\"num_attention_heads\":4,\"sliding_window\":4096}");
    EXPECT(model_config_load(&c, "build/tmp_model/csft_cfg_bad3.json", 0) != 0, "sliding window refused");
    EXPECT_ERR("sliding");
    write_config("build/tmp_model/csft_cfg_bad4.json", "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":128}");
    EXPECT(model_config_load(&c, "build/tmp_model/csft_cfg_bad4.json", 0) != 0, "missing key");
    EXPECT_ERR("hidden_size");
    EXPECT(model_config_load(&c, QWEN2, 3) != 0, "too many layers");
    EXPECT_ERR("num_layers");
}

static int count_adapters(const struct model *m) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int i = 0; i < N_LIN; i++) n += m->layers[l].lin[i].lora_a != NULL;
    return n;
}

static void test_lora_targets(void) {
    struct model m;
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "%s", err_msg());
    const char *list[] = {"q_proj", "v_proj"};
    struct lora_spec s = {.rank = 2, .alpha = 4, .targets = list, .n_targets = 2};
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 4 && m.layers[1].lin[LIN_V].lora_a && !m.layers[0].lin[LIN_K].lora_a, "list");
    EXPECT(m.lora_scaling == 2.0f, "alpha/r");
    /* PEFT init: B zero, A within 1/sqrt(in) */
    float mx = 0;
    for (int64_t i = 0; i < m.lora_params[0].numel; i++) mx = fmaxf(mx, fabsf(m.lora_params[0].data[i]));
    EXPECT(mx > 0 && mx <= 1.0f / 8, "A bound %g", mx);
    EXPECT(m.lora_params[1].data[0] == 0, "B zero");
    model_free(&m);

    model_load(&m, QWEN2, 0, 0);
    const char *alias[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
    s = (struct lora_spec){.rank = 2, .alpha = 4, .use_rslora = 1, .targets = alias, .n_targets = 7};
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 14, "aliases select all 7 x 2");
    EXPECT_NEAR(m.lora_scaling, 4 / sqrt(2.0), 1e-6);
    model_free(&m);

    model_load(&m, QWEN2, 0, 0);
    s = (struct lora_spec){.rank = 2, .alpha = 4, .target_regex = ".*layers\\.1\\..*(q_proj|down_proj)"};
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 2 && m.layers[1].lin[LIN_DOWN].lora_a && !m.layers[0].lin[LIN_Q].lora_a, "regex");
    model_free(&m);

    model_load(&m, QWEN2, 0, 0);
    s = (struct lora_spec){.rank = 2, .alpha = 4, .target_regex = ".*wq|.*wv"}; /* MindSpore-style regex */
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 4, "mindspore regex");
    model_free(&m);

    model_load(&m, QWEN2, 0, 0);
    const char *none[] = {"c_attn"};
    s = (struct lora_spec){.rank = 2, .alpha = 4, .targets = none, .n_targets = 1};
    EXPECT(lora_attach(&m, &s, 1) != 0, "no match");
    EXPECT_ERR("matches no linear");
    s = (struct lora_spec){.rank = 2, .alpha = 4, .target_regex = "(unclosed"};
    EXPECT(lora_attach(&m, &s, 1) != 0, "bad regex");
    EXPECT_ERR("(unclosed");
    model_free(&m);
}

static double batch_loss(struct model *m, const int32_t *ids, const int32_t *labels, const int32_t *pos, int B, int T) {
    struct micro_batch mb = {ids, labels, pos, B, T};
    return eval_loss(m, &mb, 1, NULL);
}

/* Fixture batch 0 of qwen2-tiny (B=2, T=24), from reference.json. */
static void fixture_batch(int32_t *ids, int32_t *labels) {
    char *t = file_read_all(QWEN2 "/reference.json", NULL);
    const char *p = strstr(t, "\"batch_input_ids\"");
    p = strchr(p, '[') + 1;
    for (int i = 0; i < 48; i++) {
        p = strpbrk(p, "-0123456789");
        ids[i] = (int32_t)strtol(p, (char **)&p, 10);
    }
    p = strstr(t, "\"batch_labels\"");
    p = strchr(p, '[') + 1;
    for (int i = 0; i < 48; i++) {
        p = strpbrk(p, "-0123456789");
        labels[i] = (int32_t)strtol(p, (char **)&p, 10);
    }
    free(t);
}

static void test_adapter_roundtrip_and_merge(void) {
    struct model m;
    int32_t ids[48], labels[48], pos[48];
    fixture_batch(ids, labels);
    for (int i = 0; i < 48; i++) pos[i] = i % 24;
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0 && lora_load_adapter(&m, QWEN2 "/lora_adapter") == 0, "%s", err_msg());
    double l0 = batch_loss(&m, ids, labels, pos, 2, 24);
    EXPECT_NEAR(l0, 6.2846808433532715, 1e-5);
    EXPECT(lora_save_adapter(&m, "build/tmp_model/csft_adapter_rt", "qwen2-tiny", 0) == 0, "%s", err_msg());
    struct model m2;
    EXPECT(model_load(&m2, QWEN2, 0, 0) == 0 && lora_load_adapter(&m2, "build/tmp_model/csft_adapter_rt") == 0, "%s", err_msg());
    EXPECT(batch_loss(&m2, ids, labels, pos, 2, 24) == l0, "reloaded adapter gives the identical loss");
    lora_merge(&m2);
    EXPECT_NEAR(batch_loss(&m2, ids, labels, pos, 2, 24), l0, 1e-5);
    /* merged model saved and reloaded */
    EXPECT(model_save(&m2, "build/tmp_model/csft_merged_rt", 0, 0) == 0, "%s", err_msg());
    struct model m3;
    EXPECT(model_load(&m3, "build/tmp_model/csft_merged_rt", 0, 0) == 0, "%s", err_msg());
    EXPECT(batch_loss(&m3, ids, labels, pos, 2, 24) == batch_loss(&m2, ids, labels, pos, 2, 24), "save/load exact");
    model_free(&m), model_free(&m2), model_free(&m3);
    /* broken adapter folder */
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "load");
    EXPECT(lora_load_adapter(&m, "build/tmp_model/csft_no_such_adapter") != 0, "missing adapter");
    EXPECT_ERR("csft_no_such_adapter/adapter_config.json");
    model_free(&m);
}

/* Two micro-batches of one row each give the same gradient as one batch of two rows. */
static void test_accumulation_equals_big_batch(void) {
    int32_t ids[48], labels[48], pos[48];
    fixture_batch(ids, labels);
    for (int i = 0; i < 48; i++) pos[i] = i % 24;
    struct model a, b;
    model_load(&a, QWEN2, 0, 1);
    model_load(&b, QWEN2, 0, 1);
    struct adamw oa, ob;
    int na, nb;
    struct param *pa = model_trainable(&a, &na), *pb = model_trainable(&b, &nb);
    adamw_init(&oa, pa, na, 0.9f, 0.95f, 1e-8f, 0.1f);
    adamw_init(&ob, pb, nb, 0.9f, 0.95f, 1e-8f, 0.1f);
    struct micro_batch big = {ids, labels, pos, 2, 24};
    struct micro_batch two[2] = {{ids, labels, pos, 1, 24}, {ids + 24, labels + 24, pos + 24, 1, 24}};
    struct step_result ra, rb;
    EXPECT(train_step(&a, &oa, &big, 1, 1e-3, 1.0, NULL, &ra) == 0, "step");
    EXPECT(train_step(&b, &ob, two, 2, 1e-3, 1.0, NULL, &rb) == 0, "step");
    EXPECT_NEAR(rb.loss, ra.loss, 1e-6);
    EXPECT_NEAR(rb.grad_norm, ra.grad_norm, 1e-5);
    EXPECT(ra.n_tokens == rb.n_tokens && ra.n_tokens == 16 + 9, "trained tokens %lld", (long long)ra.n_tokens);
    double d = 0, r = 0;
    for (int64_t i = 0; i < a.n_base; i++) d += fabs(a.base[i] - b.base[i]), r += fabs(a.base[i]);
    EXPECT(d / r < 1e-6, "weights after one step differ: %g", d / r);
    adamw_free(&oa), adamw_free(&ob);
    model_free(&a), model_free(&b);
}

/* Two documents packed in one row, positions restarting, give each document's own loss. */
static void test_packed_equals_unpacked(void) {
    int32_t ids[48], labels[48], pos[48];
    fixture_batch(ids, labels);
    struct model m;
    model_load(&m, QWEN2, 0, 0);
    int32_t t[48];
    /* unpacked: rows separately */
    for (int i = 0; i < 48; i++) pos[i] = i % 24;
    model_forward(&m, ids, pos, 2, 24);
    model_shift_labels(t, labels, 2, 24);
    double sum_unpacked = model_loss(&m, t);
    /* packed: one row of 48 with positions 0..23, 0..23; the label at each document's first
     * token is ignored by the shift of the previous document, so set it to -100 there */
    int32_t lab2[48];
    memcpy(lab2, labels, sizeof lab2);
    lab2[24] = -100;
    model_forward(&m, ids, pos, 1, 48);
    model_shift_labels(t, lab2, 1, 48);
    double sum_packed = model_loss(&m, t);
    EXPECT_NEAR(sum_packed, sum_unpacked, 1e-5);
    model_free(&m);
}

static void test_schedules(void) {
    struct lr_schedule s = {.type = LR_SCHEDULE_COSINE, .lr = 1e-3, .warmup_steps = 2, .total_steps = 6};
    double want[] = {0.0, 0.0005, 0.001, 0.0008535533905932737, 0.0005, 0.00014644660940672628};
    for (int i = 0; i < 6; i++) EXPECT_NEAR(lr_at(&s, i + 1), want[i], 1e-12);
    s.type = LR_SCHEDULE_LINEAR;
    EXPECT_NEAR(lr_at(&s, 4), 1e-3 * 3.0 / 4, 1e-12);
    s = (struct lr_schedule){.type = LR_SCHEDULE_WSD, .lr = 1.0, .warmup_steps = 2, .total_steps = 10, .decay_steps = 4};
    EXPECT_NEAR(lr_at(&s, 5), 1.0, 1e-12);
    EXPECT_NEAR(lr_at(&s, 7), 1.0, 1e-12);
    EXPECT_NEAR(lr_at(&s, 9), 0.5, 1e-12);
    enum lr_schedule_type ty;
    EXPECT(lr_schedule_parse("cosine", &ty) == 0 && ty == LR_SCHEDULE_COSINE, "parse");
    EXPECT(lr_schedule_parse("polynomial", &ty) != 0, "unknown schedule");
}

static void test_generate_stops_at_eos(void) {
    struct model m;
    model_load(&m, QWEN2, 0, 0);
    int32_t prompt[8] = {409, 191, 80, 91, 337, 439, 269, 332}, out[12], eos = 138;
    int n = model_generate(&m, prompt, 8, out, 12, &eos, 1, 0, 0, 0, 0);
    EXPECT(n == 1 && out[0] == 138, "stops after eos: n=%d", n);
    n = model_generate(&m, prompt, 8, out, 12, NULL, 0, 1.0f, 50, 0.9f, 7);
    EXPECT(n == 12, "sampling fills max_new");
    for (int i = 0; i < n; i++) EXPECT(out[i] >= 0 && out[i] < 512, "token in vocab");
    model_free(&m);
}


/* model_save writes the input's own config.json back: every key (pad_token_id, layer_types,
 * _name_or_path, custom ones), their order and number spellings kept; only the dtype changes, in
 * the spelling the input used; a cut layer count also updates num_hidden_layers and layer_types. */
static const char *cfg_src =
    "{\n  \"_name_or_path\": \"Qwen/Qwen3-tiny\",\n  \"architectures\": [\n    \"Qwen3ForCausalLM\"\n  ],\n"
    "  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n  \"custom_key\": {\"a\": [1, 2.50, \"}\\\"\"]},\n"
    "  %s: \"bfloat16\",\n  \"head_dim\": 32,\n  \"hidden_act\": \"silu\",\n  \"hidden_size\": 64,\n"
    "  \"intermediate_size\": 176,\n  \"layer_types\": [\n    \"full_attention\",\n    \"full_attention\"\n  ],\n"
    "  \"max_position_embeddings\": 256,\n  \"max_window_layers\": 28,\n  \"model_type\": \"qwen3\",\n"
    "  \"num_attention_heads\": 4,\n  \"num_hidden_layers\": 2,\n  \"num_key_value_heads\": 2,\n"
    "  \"pad_token_id\": 7,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_parameters\": {\n    \"rope_theta\": 1000000.0,\n"
    "    \"rope_type\": \"default\"\n  },\n  \"tie_word_embeddings\": true,\n  \"vocab_size\": 512\n}\n";

static void test_config_written_back(void) {
    const char *in = "build/tmp_model/cfg_in", *out = "build/tmp_model/cfg_out";
    system("rm -rf build/tmp_model/cfg_in build/tmp_model/cfg_out && mkdir -p build/tmp_model/cfg_in && "
           "cp tests/fixtures/hf/qwen3-tiny/model.safetensors build/tmp_model/cfg_in/");
    const char *spellings[] = {"\"dtype\"", "\"torch_dtype\""};
    for (int sp = 0; sp < 2; sp++)
        for (int bf16 = 0; bf16 < 2; bf16++) {
            char *src = xasprintf(cfg_src, spellings[sp]), *cp = xasprintf("%s/config.json", in);
            write_config(cp, src);
            struct model m;
            EXPECT(model_load(&m, in, 0, 0) == 0, "%s", err_msg());
            EXPECT(model_save(&m, out, bf16, 0) == 0, "%s", err_msg());
            model_free(&m);
            char *want = xasprintf(cfg_src, spellings[sp]), *from = strstr(want, ": \"bfloat16\"");
            if (!bf16) { /* the same text with float32 in place of bfloat16 */
                char *w2 = xasprintf("%.*s: \"float32\"%s", (int)(from - want), want, from + strlen(": \"bfloat16\""));
                free(want), want = w2;
            }
            char *op = xasprintf("%s/config.json", out), *got = file_read_all(op, NULL);
            EXPECT(got && strcmp(got, want) == 0, "%s bf16=%d: config.json written as\n%s\nexpected\n%s", spellings[sp],
                   bf16, got ? got : "(none)", want);
            free(src), free(cp), free(want), free(op), free(got);
        }
    /* num_layers: 1 */
    struct model m;
    EXPECT(model_load(&m, in, 1, 0) == 0, "%s", err_msg());
    EXPECT(model_save(&m, out, 0, 0) == 0, "%s", err_msg());
    model_free(&m);
    char *got = file_read_all("build/tmp_model/cfg_out/config.json", NULL);
    EXPECT(got && strstr(got, "\"num_hidden_layers\": 1,") && strstr(got, "\"layer_types\": [\n    \"full_attention\"],") &&
               strstr(got, "\"max_window_layers\": 28,"),
           "cut to 1 layer: %s", got ? got : "(none)");
    free(got);
    /* a config written from the struct (init-model) spells rms_norm_eps as the float's shortest form */
    struct model_config c;
    EXPECT(model_config_load(&c, "tests/fixtures/hf/qwen3-tiny", 0) == 0, "%s", err_msg());
    char *j = model_config_to_json(&c);
    EXPECT(strstr(j, "\"rms_norm_eps\":\t1e-06") || strstr(j, "\"rms_norm_eps\": 1e-06"), "%s", j);
    free(j);
}

/* A regex selecting some layers is saved as given (PEFT's string form), so csft reloads, merges
 * and resumes its own adapter; a regex matching only MindSpore names is saved as the explicit list
 * of HF module paths; save_dtype bfloat16 writes BF16 matrices. */
static void test_lora_regex_saved(void) {
    const char *re = ".*layers\\.0\\..*(q_proj|v_proj)";
    struct model m, m2;
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "%s", err_msg());
    struct lora_spec s = {.rank = 2, .alpha = 4, .target_regex = re};
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 2, "layer 0 q, v");
    for (int i = 0; i < m.n_lora_params; i++) /* B non-zero so the reload is checked */
        for (int64_t k = 0; k < m.lora_params[i].numel; k++) m.lora_params[i].data[k] = 0.01f * (float)((k + i) % 7);
    EXPECT(lora_save_adapter(&m, "build/tmp_model/csft_adapter_re", "qwen2-tiny", 0) == 0, "%s", err_msg());
    char *cfg = file_read_all("build/tmp_model/csft_adapter_re/adapter_config.json", NULL);
    EXPECT(cfg && strstr(cfg, "\"target_modules\":\t\".*layers\\\\.0\\\\..*(q_proj|v_proj)\""), "saved: %s", cfg ? cfg : "");
    free(cfg);
    EXPECT(model_load(&m2, QWEN2, 0, 0) == 0, "%s", err_msg());
    EXPECT(lora_load_adapter(&m2, "build/tmp_model/csft_adapter_re") == 0, "reload own adapter: %s", err_msg());
    EXPECT(count_adapters(&m2) == 2 && m2.layers[0].lin[LIN_V].lora_a && !m2.layers[1].lin[LIN_Q].lora_a, "same modules");
    EXPECT(m2.n_lora_params == 4 && m2.lora_params[3].data[5] == m.lora_params[3].data[5], "same values");
    /* and saved again (a resumed run's checkpoint) the same way */
    EXPECT(lora_save_adapter(&m2, "build/tmp_model/csft_adapter_re2", "qwen2-tiny", 1) == 0, "%s", err_msg());
    lora_merge(&m2);
    EXPECT(!m2.has_lora && m2.lora.target_regex == NULL, "merged");
    model_free(&m), model_free(&m2);
    cfg = file_read_all("build/tmp_model/csft_adapter_re2/adapter_config.json", NULL);
    EXPECT(cfg && strstr(cfg, "(q_proj|v_proj)\""), "resaved: %s", cfg ? cfg : "");
    free(cfg);
    struct safetensors *st;
    EXPECT(safetensors_open(&st, "build/tmp_model/csft_adapter_re2/adapter_model.safetensors") == 0, "%s", err_msg());
    if (st) {
        EXPECT(safetensors_count(st) == 4 && safetensors_at(st, 0)->dtype == DTYPE_BF16, "bf16 adapter");
        safetensors_close(st);
    }
    /* MindSpore-named regex: saved as HF paths */
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "%s", err_msg());
    s = (struct lora_spec){.rank = 2, .alpha = 4, .target_regex = ".*layers\\.1\\.attention\\.wq"};
    EXPECT(lora_attach(&m, &s, 1) == 0, "%s", err_msg());
    EXPECT_STR(m.lora.target_regex, "(?:model\\.layers\\.1\\.self_attn\\.q_proj)");
    EXPECT(lora_save_adapter(&m, "build/tmp_model/csft_adapter_ms", NULL, 0) == 0, "%s", err_msg());
    model_free(&m);
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0 && lora_load_adapter(&m, "build/tmp_model/csft_adapter_ms") == 0, "%s", err_msg());
    EXPECT(count_adapters(&m) == 1 && m.layers[1].lin[LIN_Q].lora_a, "ms regex reload");
    model_free(&m);
}

/* PEFT options csft does not implement are refused naming the option; .bin-only folders too. */
static void test_lora_refusals(void) {
    const char *opts[] = {"[0]", "[\"v_proj\"]", "true", "[\"lm_head\"]", "[1, 2]", "\"layers\""};
    const char *names[] = {"layers_to_transform", "exclude_modules", "lora_bias", "modules_to_save",
                           "alora_invocation_tokens", "layers_pattern"};
    system("rm -rf build/tmp_model/ad_ref && mkdir -p build/tmp_model/ad_ref && cp " QWEN2
           "/lora_adapter/adapter_model.safetensors build/tmp_model/ad_ref/");
    char *base = file_read_all(QWEN2 "/lora_adapter/adapter_config.json", NULL);
    for (int i = 0; i <= 6; i++) { /* i == 6: every option at PEFT's default (null / false) loads */
        cJSON *j = cJSON_Parse(base);
        for (int k = 0; k < 6; k++) cJSON_DeleteItemFromObject(j, names[k]);
        if (i < 6) cJSON_AddItemToObject(j, names[i], cJSON_Parse(opts[i]));
        else
            for (int k = 0; k < 6; k++) cJSON_AddItemToObject(j, names[k], k == 2 ? cJSON_CreateFalse() : cJSON_CreateNull());
        char *text = cJSON_Print(j);
        write_config("build/tmp_model/ad_ref/adapter_config.json", text);
        struct model m;
        EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "%s", err_msg());
        if (i < 6) {
            EXPECT(lora_load_adapter(&m, "build/tmp_model/ad_ref") != 0, "%s accepted", names[i]);
            char want[80];
            snprintf(want, sizeof want, "\"%s\" is set, which csft does not implement", names[i]);
            EXPECT_ERR(want);
        } else {
            EXPECT(lora_load_adapter(&m, "build/tmp_model/ad_ref") == 0, "defaults: %s", err_msg());
        }
        model_free(&m);
        free(text);
        cJSON_Delete(j);
    }
    struct model m;
    /* .bin only */
    system("mv build/tmp_model/ad_ref/adapter_model.safetensors build/tmp_model/ad_ref/adapter_model.bin");
    EXPECT(model_load(&m, QWEN2, 0, 0) == 0, "%s", err_msg());
    EXPECT(lora_load_adapter(&m, "build/tmp_model/ad_ref") != 0, ".bin accepted");
    EXPECT_ERR("only adapter_model.bin");
    model_free(&m);
    free(base);
}

int main(void) {
    dir_create("build/tmp_model");
    RUN(test_config_spellings);
    RUN(test_config_refusals);
    RUN(test_lora_targets);
    RUN(test_adapter_roundtrip_and_merge);
    RUN(test_accumulation_equals_big_batch);
    RUN(test_packed_equals_unpacked);
    RUN(test_schedules);
    RUN(test_generate_stops_at_eos);
    RUN(test_config_written_back);
    RUN(test_lora_regex_saved);
    RUN(test_lora_refusals);
    return TEST_SUMMARY("model");
}
