/* Tests for MindSpore Transformers compatibility pieces below the CLI: format
 * mindformers_alpaca against the golden rows of tests/fixtures/mindspore/mindrecord/mf/llama_qa
 * (their AlpacaInstructDataHandler's three pieces tokenized with the Qwen2.5 tokenizer: the same
 * ids and the same trained tokens, rows 0-39); pack_strategy: pack (PackingHandler: greedy in
 * dataset order, per-document positions and label masks); LoRA matrices saved under their
 * mindpet names; dialect detection; model_config shape -> HF config JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "data/dataset.h"
#include "data/format.h"
#include "data/pack.h"
#include "data/reader.h"
#include "io/ckpt.h"
#include "model/lora.h"
#include "model/mf_names.h"
#include "model/model.h"
#include "test.h"
#include "tok/tokenizer.h"
#include "train/config.h"
#include "train/config_mindformers.h"

#define PAD 151643

static void test_alpaca_golden(void) {
    struct tokenizer *tk = NULL;
    EXPECT(tokenizer_load(&tk, "tests/fixtures/tokenizer/qwen") == 0, "%s", err_msg());
    struct reader *src = NULL, *gold = NULL;
    EXPECT(reader_open(&src, "tests/fixtures/datasets/alpaca.jsonl") == 0, "%s", err_msg());
    EXPECT(reader_open(&gold, "tests/fixtures/mindspore/mindrecord/mf/llama_qa/llama_qa.mindrecord.jsonl") == 0, "%s",
           err_msg());
    if (!tk || !src || !gold) return;
    struct formatter f = {0};
    f.opt.format = DATA_FORMAT_MINDFORMERS_ALPACA;
    f.opt.loss_on = LOSS_ON_ASSISTANT;
    f.opt.truncation = TRUNCATION_RIGHT;
    f.opt.seq_length = 385;
    f.tk = tk;
    f.eos_id = -1;
    f.vocab_size = tokenizer_vocab_size(tk);
    struct formatted out = {0};
    int rows = 0, bad_ids = 0, bad_labels = 0;
    int64_t trained0 = -1, trained7 = -1;
    for (int row = 0; row < 40; row++) {
        cJSON *rec = NULL, *g = NULL;
        if (reader_next(src, &rec) != 1 || reader_next(gold, &g) != 1) break;
        EXPECT(format_record(&f, rec, "alpaca.jsonl", row, &out) == 0, "%s", err_msg());
        const cJSON *gi = cJSON_GetObjectItem(g, "input_ids"), *gl = cJSON_GetObjectItem(g, "labels");
        int n = cJSON_GetArraySize(gi);
        while (n > 0 && n < 385 + 1 && cJSON_GetArrayItem(gi, n - 1)->valueint == PAD) n--; /* right padding */
        if (out.n != n) bad_ids++;
        int64_t trained = 0;
        for (int i = 0; i < n && i < out.n; i++) {
            bad_ids += out.ids[i] != cJSON_GetArrayItem(gi, i)->valueint;
            bad_labels += out.labels[i] != cJSON_GetArrayItem(gl, i)->valueint;
            trained += out.labels[i] >= 0;
        }
        if (row == 0) trained0 = trained;
        if (row == 7) trained7 = trained;
        rows++;
        cJSON_Delete(rec), cJSON_Delete(g);
    }
    EXPECT(rows == 40, "%d rows compared", rows);
    EXPECT(bad_ids == 0 && bad_labels == 0, "%d id and %d label mismatches against the golden rows", bad_ids, bad_labels);
    EXPECT(trained0 == 50 && trained7 == 322, "trained tokens row 0 %lld (50), row 7 %lld (322)", (long long)trained0,
           (long long)trained7);
    /* loss on everything in run_mode train */
    f.opt.loss_on = LOSS_ON_ALL;
    cJSON *r = cJSON_Parse("{\"instruction\":\"Say hi.\",\"input\":\"\",\"output\":\"hi\"}");
    EXPECT(format_record(&f, r, "x", 0, &out) == 0, "%s", err_msg());
    int all = 1;
    for (int64_t i = 0; i < out.n; i++) all &= out.labels[i] == out.ids[i];
    EXPECT(all && out.n > 40, "loss_on all trains every token (%lld tokens)", (long long)out.n);
    cJSON_Delete(r);
    r = cJSON_Parse("{\"instruction\":\"Say hi.\"}");
    EXPECT(format_record(&f, r, "x.jsonl", 3, &out) != 0, "missing output refused");
    EXPECT_ERR("x.jsonl: row 3: missing column \"output\"");
    cJSON_Delete(r);
    formatted_free(&out);
    reader_close(src), reader_close(gold);
    tokenizer_free(tk);
}

static void test_pack_strategy(void) {
    /* lengths 5, 3, 4, 9, 2 into rows of 9: greedy in order -> {5,3} {4} {9} {2} */
    int64_t offsets[] = {0, 5, 8, 12, 21, 23};
    int32_t ids[23];
    uint8_t mask[23];
    for (int i = 0; i < 23; i++) ids[i] = 100 + i, mask[i] = 1;
    struct dataset ds = {.n = 5, .offsets = offsets, .ids = ids, .mask = mask};
    struct pack_options po = {.packing = 1, .strategy = PACK_STRATEGY_PACK, .seq_length = 9};
    struct row_plan p;
    row_plan_build(&p, &ds, &po, 0);
    EXPECT(p.n_rows == 4, "%lld rows", (long long)p.n_rows);
    int64_t want_start[] = {0, 2, 3, 4, 5}, want_len[] = {8, 4, 9, 2};
    for (int r = 0; r < 4 && p.n_rows == 4; r++)
        EXPECT(p.row_start[r] == want_start[r] && p.row_len[r] == want_len[r], "row %d: start %lld len %lld", r,
               (long long)p.row_start[r], (long long)p.row_len[r]);
    EXPECT(p.seqs[0] == 0 && p.seqs[1] == 1 && p.seqs[2] == 2, "dataset order kept");
    struct batch b = {0};
    batch_fill(&b, &ds, &p, 0, 1, 0);
    EXPECT(b.T == 8 && b.pos[4] == 4 && b.pos[5] == 0 && b.pos[7] == 2, "positions restart per document");
    EXPECT(b.labels[0] == -100 && b.labels[5] == -100 && b.labels[6] == 106, "first token of each document untrained");
    batch_free(&b);
    row_plan_free(&p);
    /* shuffled: the same rows in another order (epoch-seeded), never split */
    po.shuffle = 1, po.seed = 7;
    row_plan_build(&p, &ds, &po, 1);
    int64_t total = 0;
    for (int r = 0; r < p.n_rows; r++) total += p.row_len[r];
    EXPECT(p.n_rows == 4 && total == 23, "shuffled plan keeps the rows");
    row_plan_free(&p);
}

static void test_lora_names(void) {
    struct model_config c = {0};
    c.arch = ARCH_QWEN2;
    snprintf(c.model_type, sizeof c.model_type, "qwen2");
    c.vocab_size = 64, c.hidden_size = 16, c.intermediate_size = 32, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1;
    c.head_dim = 8, c.max_position_embeddings = 64, c.rms_norm_eps = 1e-6f, c.rope_theta = 1e4, c.qkv_bias = 1;
    struct model m;
    EXPECT(model_init_random(&m, &c, 1, 0) == 0, "%s", err_msg());
    struct lora_spec spec = {.rank = 4, .alpha = 8, .target_regex = "(?:.*wq|.*wv).*"};
    EXPECT(lora_attach(&m, &spec, 3) == 0, "%s", err_msg());
    EXPECT(mf_ckpt_save_lora(&m, "/tmp/csft_test_mf_lora.ckpt") == 0, "%s", err_msg());
    struct ckpt *ck = NULL;
    EXPECT(ckpt_open(&ck, "/tmp/csft_test_mf_lora.ckpt") == 0, "%s", err_msg());
    if (ck) {
        EXPECT(ck->n == 2 * 2 * 2, "%d entries (2 layers x wq, wv x a, b)", ck->n);
        const struct ckpt_tensor *a = ckpt_find(ck, "model.layers.1.attention.wv.mindpet_delta_lora_a"),
                                 *b = ckpt_find(ck, "model.layers.0.attention.wq.mindpet_delta_lora_b");
        EXPECT(a && a->n_dims == 2 && a->shape[0] == 4 && a->shape[1] == 16, "lora_a [r, in]");
        EXPECT(b && b->n_dims == 2 && b->shape[0] == 16 && b->shape[1] == 4, "lora_b [out, r]");
        EXPECT(a && !memcmp(a->data, m.layers[1].lin[LIN_V].lora_a, 4 * 16 * sizeof(float)), "lora_a values");
        ckpt_close(ck);
    }
    model_free(&m);
}

static void test_detect_and_shape(void) {
    EXPECT(config_mf_detect("tests/fixtures/config/mindformers/finetune_qwen2_5_7b_8k.yaml") == 1, "their config");
    EXPECT(config_mf_detect("examples/qwen2_5_7b_lora.yaml") == 0, "a native config");
    EXPECT(config_mf_detect("no/such/file.yaml") == 0, "missing file: left to the native loader");
    /* every key of their four configs is in the rule table */
    static const char *const keys[] = {"context.ascend_config.precision_mode", "runner_wrapper.scale_sense.scale_window",
                                       "train_dataset.data_loader.handler.AlpacaInstructDataHandler.tokenizer.vocab_file",
                                       "recompute_config.select_recompute.feed_forward\\.mul", "lr_schedule.total_steps"};
    const char want[] = {'I', 'I', 'M', 'I', 'M'};
    for (int i = 0; i < 5; i++) EXPECT(config_mf_key_status(keys[i]) == want[i], "%s: %c", keys[i], config_mf_key_status(keys[i]));
    EXPECT(config_mf_key_status("no_such_key") == 0, "unknown key");
    struct run_config cfg;
    char *sets[] = {"model.model_config.hf_config={model_type: qwen2, hidden_size: \"64\", tie_word_embeddings: \"True\"}"};
    EXPECT(config_load(&cfg, NULL, sets, 1) == 0, "%s", err_msg());
    char *j = config_hf_config_json(&cfg);
    EXPECT_STR(j, "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"tie_word_embeddings\":true}");
    free(j);
    config_free(&cfg);
}

#define DOC "docs/mindformers.md"
#define BEGIN "<!-- BEGIN KEY TABLE -->\n"
#define END "<!-- END KEY TABLE -->"

/* docs/mindformers.md with the generated key table between the markers. */
static char *doc_with_table(void) {
    char *doc = file_read_all(DOC, NULL);
    if (!doc) return NULL;
    char *b = strstr(doc, BEGIN), *e = strstr(doc, END);
    if (!b || !e || e < b) {
        free(doc);
        return NULL;
    }
    char *table = NULL, *out = NULL;
    size_t tl = 0, ol = 0;
    FILE *f = open_memstream(&table, &tl);
    static const char *const files[] = {"tests/fixtures/config/mindformers/finetune_qwen2_5_7b_8k.yaml",
                                        "tests/fixtures/config/mindformers/finetune_qwen2_5_7b_8k_1p.yaml",
                                        "tests/fixtures/config/mindformers/research_qwen2_5_finetune_qwen2_5_7b_8k.dev.yaml",
                                        "tests/fixtures/config/mindformers/research_qwen2_5_finetune_qwen2_5_7b_8k.master.yaml",
                                        "tests/fixtures/config/mindformers/lora_pet_config.yaml"};
    static const char *const labels[] = {"8k", "1p", "dev", "master", "LoRA"};
    fprintf(f, "\nThe keys of their four configs (8k, 1p: the guide's; dev, master: the MindRecord variant) and "
               "of the guide's LoRA block:\n\n");
    int bad = config_mf_print_keys_markdown(files, labels, 5, f);
    fprintf(f, "\nThe rules, which also cover keys their other configs use:\n\n");
    config_mf_print_markdown(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s\n", err_msg());
        free(table), free(doc);
        return NULL;
    }
    f = open_memstream(&out, &ol);
    fprintf(f, "%.*s%s%s", (int)(b - doc) + (int)strlen(BEGIN), doc, table, e);
    fclose(f);
    free(table), free(doc);
    return out;
}

static void test_docs(void) {
    char *want = doc_with_table(), *have = file_read_all(DOC, NULL);
    EXPECT(want && have && !strcmp(want, have), DOC " key table is out of date: run build/tests/test_mindformers --write-docs");
    free(want), free(have);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--write-docs")) {
        char *d = doc_with_table();
        if (!d || file_write_atomic(DOC, d, strlen(d))) return fprintf(stderr, "cannot update " DOC "\n"), 1;
        free(d);
        return 0;
    }
    RUN(test_docs);
    RUN(test_alpaca_golden);
    RUN(test_pack_strategy);
    RUN(test_lora_names);
    RUN(test_detect_and_shape);
    return TEST_SUMMARY("test_mindformers");
}
