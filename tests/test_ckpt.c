/* Tests for src/io/ckpt and src/model/mf_names: the MindSpore .ckpt fixtures (spec-built from
 * tests/fixtures/hf/qwen2-tiny, see tests/fixtures/mindspore/README.md) read back bit-identical
 * to the HF weights (Float32; BFloat16 = the float32 values rounded to nearest even), sliced
 * tensors and the crc_num tail, training-state scalars, the edge cases (str, 0-d, dims [0],
 * Float16, packed dims, unknown fields, map tensors), the concatenated w_qkv / w_gate_hidden
 * layout, the writer (byte-identical to the fixture), encrypted / truncated / damaged files
 * refused with their errors, and a mutation sweep that must never crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "core/util.h"
#include "io/ckpt.h"
#include "io/safetensors.h"
#include "model/mf_names.h"
#include "model/model.h"
#include "test.h"

#define HF "tests/fixtures/hf/qwen2-tiny"
#define CK "tests/fixtures/mindspore/ckpt/"
#define TMP "/tmp/csft_test_ckpt"

/* Content bytes are where the file put them (any alignment): read scalars with memcpy. */
static int64_t i64_at(const struct ckpt_tensor *t) {
    int64_t v = 0;
    if (t && t->nbytes >= 8) memcpy(&v, t->data, 8);
    return v;
}
static int32_t i32_at(const struct ckpt_tensor *t) {
    int32_t v = 0;
    if (t && t->nbytes >= 4) memcpy(&v, t->data, 4);
    return v;
}

static char *hf_config(void) { return file_read_all(HF "/config.json", NULL); }

/* Every model tensor of a .ckpt equals the HF tensor (bf16: rounded), by name map. */
static void check_against_hf(const char *file, int bf16) {
    struct ckpt *ck;
    struct safetensors *st;
    EXPECT(ckpt_open(&ck, file) == 0, "%s", err_msg());
    EXPECT(safetensors_open(&st, HF) == 0, "%s", err_msg());
    if (!ck || !st) return;
    int matched = 0;
    for (int i = 0; i < safetensors_count(st); i++) {
        const struct st_tensor *h = safetensors_at(st, i);
        char mf[200];
        EXPECT(mf_name_from_hf(h->name, mf, sizeof mf) == 0, "%s has a MindFormers name", h->name);
        const struct ckpt_tensor *t = ckpt_find(ck, mf);
        EXPECT(t != NULL, "%s: %s missing", file, mf);
        if (!t) continue;
        EXPECT(t->n_dims == h->n_dims && t->shape[0] == h->shape[0] && (h->n_dims < 2 || t->shape[1] == h->shape[1]),
               "%s shape", mf);
        float *a = xmalloc(sizeof(float) * (size_t)h->numel), *b = xmalloc(sizeof(float) * (size_t)h->numel);
        EXPECT(ckpt_tensor_f32(ck, t, a) == 0, "%s", err_msg());
        memcpy(b, h->data, sizeof(float) * (size_t)h->numel);
        if (bf16)
            for (int64_t j = 0; j < h->numel; j++) b[j] = bf16_to_f32(f32_to_bf16(b[j]));
        EXPECT(memcmp(a, b, sizeof(float) * (size_t)h->numel) == 0, "%s: %s differs from %s", file, mf, h->name);
        matched++;
        free(a), free(b);
    }
    EXPECT(matched == 26, "%d tensors matched", matched);
    ckpt_close(ck);
    safetensors_close(st);
}

static void test_fixtures_match_hf(void) {
    check_against_hf(CK "qwen2-tiny.ckpt", 0);
    check_against_hf(CK "qwen2-tiny-bf16-crc.ckpt", 1);
    check_against_hf(CK "qwen2-tiny-train.ckpt", 0);
    struct ckpt *ck;
    EXPECT(ckpt_open(&ck, CK "qwen2-tiny-bf16-crc.ckpt") == 0, "%s", err_msg());
    if (!ck) return;
    const struct ckpt_tensor *e = ckpt_find(ck, "model.tok_embeddings.embedding_weight");
    EXPECT(ck->has_crc && ck->n == 26, "crc %d, %d entries", ck->has_crc, ck->n);
    EXPECT(e && e->n_messages == 2 && e->nbytes == 512 * 64 * 2 && !strcmp(e->type, "BFloat16"), "sliced embedding");
    ckpt_close(ck);
}

static void test_train_state(void) {
    struct ckpt *ck;
    EXPECT(ckpt_open(&ck, CK "qwen2-tiny-train.ckpt") == 0, "%s", err_msg());
    if (!ck) return;
    EXPECT(ck->n == 86, "%d entries", ck->n);
    const struct ckpt_tensor *t = ckpt_find(ck, "global_step");
    EXPECT(t && t->dtype == DTYPE_I32 && t->n_dims == 1 && t->shape[0] == 1 && i32_at(t) == 6, "global_step");
    t = ckpt_find(ck, "step_num");
    EXPECT(t && t->dtype == DTYPE_I64 && t->n_dims == 0 && i64_at(t) == 6, "step_num");
    t = ckpt_find(ck, "global_batch_size");
    EXPECT(t && i64_at(t) == 4, "global_batch_size");
    t = ckpt_find(ck, "loss_scale");
    float f = 0;
    if (t) memcpy(&f, t->data, 4);
    EXPECT(t && t->n_dims == 0 && f == 4096.0f, "loss_scale %g", f);
    t = ckpt_find(ck, "adam_v.model.norm_out.weight");
    EXPECT(t && t->numel == 64 && t->dtype == DTYPE_F32, "adam_v present");
    ckpt_close(ck);
}

static void test_edge_cases(void) {
    struct ckpt *ck;
    EXPECT(ckpt_open(&ck, CK "edge-cases.ckpt") == 0, "%s", err_msg());
    if (!ck) return;
    EXPECT(ck->n == 7, "%d entries", ck->n);
    const struct ckpt_tensor *t = ckpt_find(ck, "model_name");
    EXPECT(t && !strcmp(t->type, "str") && t->n_dims == 0 && t->nbytes == 40 && t->data[0] == 'q' && t->data[4] == 'w',
           "str entry (UTF-32LE)");
    t = ckpt_find(ck, "epoch_num");
    EXPECT(t && t->n_dims == 0 && i64_at(t) == 2, "0-d Int64");
    float v[6];
    t = ckpt_find(ck, "legacy_scalar");
    EXPECT(t && t->n_dims == 0 && t->numel == 1 && ckpt_tensor_f32(ck, t, v) == 0 && v[0] == 1.5f, "dims [0] scalar");
    t = ckpt_find(ck, "half");
    EXPECT(t && t->n_dims == 2 && ckpt_tensor_f32(ck, t, v) == 0 && v[0] == 1 && v[1] == -2 && v[2] == 0.5f && v[3] == 65504,
           "Float16");
    t = ckpt_find(ck, "packed_dims");
    EXPECT(t && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 3 && ckpt_tensor_f32(ck, t, v) == 0 && v[5] == 5,
           "packed dims");
    t = ckpt_find(ck, "unknown_fields");
    EXPECT(t && t->numel == 2 && ckpt_tensor_f32(ck, t, v) == 0 && v[0] == 3 && v[1] == -4, "unknown fields skipped");
    t = ckpt_find(ck, "map_param");
    EXPECT(t && t->is_map, "map tensor listed");
    EXPECT(t && ckpt_tensor_f32(ck, t, v) != 0, "map tensor not read as floats");
    ckpt_close(ck);
}

static void test_refused(void) {
    struct ckpt *ck;
    EXPECT(ckpt_open(&ck, CK "qwen2-tiny-encrypted.ckpt") != 0, "encrypted refused");
    EXPECT_ERR("encrypted (AES-GCM");
    EXPECT(ckpt_open(&ck, CK "qwen2-tiny-truncated.ckpt") != 0, "truncated refused");
    EXPECT_ERR("truncated: entry 11 ('model.layers.0.feed_forward.w2.weight') at byte 271443");
    EXPECT(ckpt_open(&ck, HF "/config.json") != 0, "JSON refused");
    EXPECT_ERR("not a MindSpore checkpoint");
    /* a flipped byte under the CRC */
    size_t n;
    char *b = file_read_all(CK "qwen2-tiny-bf16-crc.ckpt", &n);
    mkdir(TMP, 0755);
    b[1000] ^= 1;
    EXPECT(file_write_atomic(TMP "/crc_bad.ckpt", b, n) == 0, "%s", err_msg());
    EXPECT(ckpt_open(&ck, TMP "/crc_bad.ckpt") != 0, "CRC mismatch refused");
    EXPECT_ERR("CRC mismatch");
    free(b);
    /* model load through the same paths */
    struct model m;
    char *cj = hf_config();
    EXPECT(model_load_from(&m, CK "qwen2-tiny-truncated.ckpt", cj, 0, 0, 0) != 0, "truncated model refused");
    EXPECT(model_load_from(&m, CK "qwen2-tiny.ckpt", NULL, 0, 0, 0) != 0, "no shape refused");
    EXPECT_ERR("holds no model shape");
    free(cj);
}

/* Every prefix and many single-byte mutations of a small file: never a crash or a hang. */
static void test_mutations(void) {
    size_t n;
    uint8_t *b = (uint8_t *)file_read_all(CK "edge-cases.ckpt", &n);
    mkdir(TMP, 0755);
    int refused = 0, total = 0;
    for (size_t cut = 1; cut < n; cut += 3, total++) {
        file_write_atomic(TMP "/mut.ckpt", b, cut);
        struct ckpt *ck;
        if (ckpt_open(&ck, TMP "/mut.ckpt")) refused++;
        else ckpt_close(ck);
    }
    for (size_t i = 0; i < n; i++) {
        static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80};
        for (int v = 0; v < 4; v++, total++) {
            uint8_t save = b[i];
            b[i] = vals[v];
            file_write_atomic(TMP "/mut.ckpt", b, n);
            b[i] = save;
            struct ckpt *ck;
            if (ckpt_open(&ck, TMP "/mut.ckpt")) refused++;
            else {
                float tmp[8];
                for (int k = 0; k < ck->n; k++)
                    if (ck->t[k].numel <= 8 && ck->t[k].dtype == DTYPE_F32) ckpt_tensor_f32(ck, &ck->t[k], tmp);
                ckpt_close(ck);
            }
        }
    }
    EXPECT(refused > total / 4, "only %d of %d mutations refused", refused, total);
    free(b);
}

static void test_model_load_bit_identical(void) {
    struct model a, b, c;
    char *cj = hf_config();
    EXPECT(model_load(&a, HF, 0, 0) == 0, "%s", err_msg());
    EXPECT(model_load_from(&b, CK "qwen2-tiny.ckpt", cj, 0, 0, 0) == 0, "%s", err_msg());
    EXPECT(a.n_base == b.n_base && memcmp(a.base, b.base, sizeof(float) * (size_t)a.n_base) == 0, "f32 ckpt == HF");
    EXPECT(model_load_from(&c, CK "qwen2-tiny-bf16-crc.ckpt", cj, 0, 0, 0) == 0, "%s", err_msg());
    int same = 1;
    for (int64_t i = 0; i < a.n_base; i++) same &= bf16_to_f32(f32_to_bf16(a.base[i])) == c.base[i];
    EXPECT(same, "bf16 ckpt == HF rounded to bf16");
    model_free(&c);
    /* a folder with rank_0/x.ckpt and config.json beside rank_0 */
    mkdir(TMP, 0755);
    mkdir(TMP "/dir", 0755);
    mkdir(TMP "/dir/rank_0", 0755);
    size_t n;
    char *bytes = file_read_all(CK "qwen2-tiny.ckpt", &n);
    file_write_atomic(TMP "/dir/rank_0/qwen2_rank_0-1_1.ckpt", bytes, n);
    file_write_atomic(TMP "/dir/config.json", cj, strlen(cj));
    free(bytes);
    EXPECT(model_load_from(&c, TMP "/dir", NULL, 0, 0, 0) == 0, "%s", err_msg());
    EXPECT(memcmp(a.base, c.base, sizeof(float) * (size_t)a.n_base) == 0, "rank_0 folder == HF");
    model_free(&c);
    /* the writer reproduces the fixture byte for byte */
    EXPECT(mf_ckpt_save_model(&a, TMP "/rt.ckpt", DTYPE_F32, 0) == 0, "%s", err_msg());
    size_t n1, n2;
    char *x = file_read_all(TMP "/rt.ckpt", &n1), *y = file_read_all(CK "qwen2-tiny.ckpt", &n2);
    EXPECT(x && y && n1 == n2 && memcmp(x, y, n1) == 0, "writer output == fixture (%zu vs %zu bytes)", n1, n2);
    free(x), free(y);
    /* with the crc tail and bf16: reads back as the fixture's values */
    EXPECT(mf_ckpt_save_model(&a, TMP "/rt16.ckpt", DTYPE_BF16, 1) == 0, "%s", err_msg());
    struct ckpt *ck;
    EXPECT(ckpt_open(&ck, TMP "/rt16.ckpt") == 0 && ck->has_crc, "%s", err_msg());
    ckpt_close(ck);
    check_against_hf(TMP "/rt16.ckpt", 1);
    model_free(&a), model_free(&b);
    free(cj);
}

/* w_qkv in the Megatron-interleaved layout (qkv_concat_hf2mg) and w_gate_hidden (gate/up
 * rows interleaved), written by hand from the HF tensors, load to the same model. */
static void test_concat_layout(void) {
    struct model a, b;
    char *cj = hf_config();
    EXPECT(model_load(&a, HF, 0, 0) == 0, "%s", err_msg());
    const struct model_config *c = &a.cfg;
    int HS = c->head_dim, KVH = c->n_kv_heads, rep = c->n_heads / KVH, C = c->hidden_size, F = c->intermediate_size;
    int qkv_rows = (rep + 2) * KVH * HS;
    struct ckpt_entry e[64];
    char names[64][128];
    float *bufs[64];
    int n = 0, nb = 0;
    for (int i = 0; i < a.n_params; i++) {
        const struct param *p = &a.params[i];
        int is_qkv = strstr(p->name, "q_proj") || strstr(p->name, "k_proj") || strstr(p->name, "v_proj");
        int is_gu = strstr(p->name, "gate_proj") || strstr(p->name, "up_proj");
        if ((is_qkv && !strstr(p->name, "q_proj")) || (is_gu && !strstr(p->name, "gate_proj"))) continue;
        int l = -1;
        sscanf(p->name, "model.layers.%d.", &l);
        struct ckpt_entry *x = &e[n];
        memset(x, 0, sizeof *x);
        x->type = "Float32";
        if (is_qkv) {
            int bias = strstr(p->name, ".bias") != NULL;
            int64_t cols = bias ? 1 : C;
            float *out = bufs[nb++] = xmalloc(sizeof(float) * (size_t)(qkv_rows * cols));
            const struct linear *L = a.layers[l].lin;
            for (int g = 0, r = 0; g < KVH; g++) {
                for (int j = 0; j < rep * HS; j++, r++) {
                    const float *src = bias ? L[LIN_Q].b : L[LIN_Q].w;
                    memcpy(out + r * cols, src + ((int64_t)g * rep * HS + j) * cols, sizeof(float) * (size_t)cols);
                }
                for (int kv = LIN_K; kv <= LIN_V; kv++)
                    for (int j = 0; j < HS; j++, r++) {
                        const float *src = bias ? L[kv].b : L[kv].w;
                        memcpy(out + r * cols, src + ((int64_t)g * HS + j) * cols, sizeof(float) * (size_t)cols);
                    }
            }
            snprintf(names[n], sizeof names[n], "model.layers.%d.attention.w_qkv.%s", l, bias ? "bias" : "weight");
            x->n_dims = bias ? 1 : 2, x->shape[0] = qkv_rows, x->shape[1] = C;
            x->data = out, x->nbytes = sizeof(float) * (size_t)(qkv_rows * cols);
        } else if (is_gu) {
            float *out = bufs[nb++] = xmalloc(sizeof(float) * (size_t)(2 * F * C));
            for (int r = 0; r < F; r++) {
                memcpy(out + (int64_t)(2 * r) * C, a.layers[l].lin[LIN_GATE].w + (int64_t)r * C, sizeof(float) * (size_t)C);
                memcpy(out + (int64_t)(2 * r + 1) * C, a.layers[l].lin[LIN_UP].w + (int64_t)r * C, sizeof(float) * (size_t)C);
            }
            snprintf(names[n], sizeof names[n], "model.layers.%d.feed_forward.w_gate_hidden.weight", l);
            x->n_dims = 2, x->shape[0] = 2 * F, x->shape[1] = C;
            x->data = out, x->nbytes = sizeof(float) * (size_t)(2 * F * C);
        } else {
            EXPECT(mf_name_from_hf(p->name, names[n], sizeof names[n]) == 0, "%s", p->name);
            x->n_dims = p->n_dims, x->shape[0] = p->shape[0], x->shape[1] = p->shape[1];
            x->data = p->data, x->nbytes = sizeof(float) * (size_t)p->numel;
        }
        x->name = names[n++];
    }
    mkdir(TMP, 0755);
    EXPECT(ckpt_save(TMP "/concat.ckpt", e, n, 0) == 0, "%s", err_msg());
    EXPECT(model_load_from(&b, TMP "/concat.ckpt", cj, 0, 0, 0) == 0, "%s", err_msg());
    EXPECT(b.n_base == a.n_base && memcmp(a.base, b.base, sizeof(float) * (size_t)a.n_base) == 0, "concat layout == HF");
    model_free(&b);
    /* a w_qkv of the wrong size names itself */
    e[1].shape[0] -= 1;
    e[1].nbytes -= sizeof(float) * (size_t)C;
    EXPECT(ckpt_save(TMP "/concat_bad.ckpt", e, n, 0) == 0, "%s", err_msg());
    EXPECT(model_load_from(&b, TMP "/concat_bad.ckpt", cj, 0, 0, 0) != 0, "bad w_qkv refused");
    EXPECT_ERR("model.layers.0.attention.w_qkv.weight");
    for (int i = 0; i < nb; i++) free(bufs[i]);
    model_free(&a);
    free(cj);
}

static void test_names(void) {
    char o[200];
    EXPECT(mf_name_from_hf("model.layers.3.mlp.up_proj.weight", o, sizeof o) == 0, "map");
    EXPECT_STR(o, "model.layers.3.feed_forward.w3.weight");
    EXPECT(mf_name_from_hf("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", o, sizeof o) == 0, "lora");
    EXPECT_STR(o, "model.layers.0.attention.wq.mindpet_delta_lora_a");
    EXPECT(mf_name_to_hf("model.layers.1.attention.wo.tk_delta_lora_b", o, sizeof o) == 0, "old lora");
    EXPECT_STR(o, "base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight");
    EXPECT(mf_name_to_hf("adam_m.model.norm_out.weight", o, sizeof o) != 0, "optimizer state has no HF name");
    EXPECT(mf_name_to_hf("model.layers.x.attention.wq.weight", o, sizeof o) != 0, "bad layer number");
}

int main(void) {
    RUN(test_names);
    RUN(test_fixtures_match_hf);
    RUN(test_train_state);
    RUN(test_edge_cases);
    RUN(test_refused);
    RUN(test_mutations);
    RUN(test_model_load_bit_identical);
    RUN(test_concat_layout);
    return TEST_SUMMARY("test_ckpt");
}
