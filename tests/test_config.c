/* Tests for src/train/config: defaults, the example config, --set overrides, every error
 * (unknown key with did-you-mean and file:line, wrong type, range, YAML syntax, unsupported
 * parallel dims, MindSpore keys), dump -> reload round trip, and docs/config.md == the table.
 * `test_config --write-docs` regenerates docs/config.md. */
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "train/config.h"

static char tmp_path[256];

/* Writes text to a per-process temp file and returns its path. */
static const char *write_yaml(const char *text) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/csft_test_config_%d.yaml", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    fputs(text, f);
    fclose(f);
    return tmp_path;
}

/* Loads text; returns config_load's status. */
static int load_text(struct run_config *c, const char *text, char **sets, int n_sets) {
    return config_load(c, write_yaml(text), sets, n_sets);
}

static void test_defaults(void) {
    struct run_config c;
    EXPECT(config_load(&c, NULL, NULL, 0) == 0, "%s", err_msg());
    EXPECT(c.run_mode == RUN_MODE_FINETUNE, "run_mode");
    EXPECT(c.seed == 42, "seed");
    EXPECT_STR(c.output_dir, "./output");
    EXPECT_STR(c.load_checkpoint, "");
    EXPECT(!c.resume_training, "resume");
    EXPECT(c.model.num_layers == 0 && c.model.compute_dtype == DTYPE_F32 &&
               c.model.param_init_type == DTYPE_F32,
           "model");
    EXPECT(c.model.pet.pet_type == PET_TYPE_NONE && c.model.pet.lora_rank == 8 &&
               c.model.pet.lora_alpha == 16,
           "pet");
    EXPECT(c.model.pet.n_target_modules == 4 && !c.model.pet.target_modules_regex, "targets");
    EXPECT_STR(c.model.pet.target_modules[3], "o_proj");
    EXPECT(c.train_dataset.n_data_files == 0 && c.train_dataset.seq_length == 2048, "dataset");
    EXPECT(c.train_dataset.shuffle && !c.eval_dataset.shuffle, "eval shuffle defaults to false");
    EXPECT(c.train_dataset.format == DATA_FORMAT_AUTO && c.train_dataset.loss_on == LOSS_ON_ASSISTANT,
           "format");
    EXPECT(c.runner_config.epochs == 1 && c.runner_config.batch_size == 1 && c.runner_config.max_steps == -1,
           "runner");
    EXPECT(c.optimizer.learning_rate == 5e-5 && c.optimizer.betas[0] == 0.9 &&
               c.optimizer.betas[1] == 0.999 && c.optimizer.eps == 1e-8,
           "optimizer");
    EXPECT(c.lr_schedule.type == LR_SCHEDULE_COSINE && c.lr_schedule.decay_ratio == 0.1, "schedule");
    EXPECT(c.max_grad_norm == 1.0 && c.save_steps == 500 && c.save_total_limit == 3 && c.logging_steps == 10,
           "misc");
    EXPECT(c.parallel_config.data_parallel == 0 && c.parallel_config.model_parallel == 1, "parallel");
    EXPECT(c.predict.max_new_tokens == 256 && !c.predict.do_sample && c.predict.top_p == 1.0, "predict");
    char w[64];
    EXPECT_STR(config_where(&c, "seed", w, sizeof w), "default");
    config_free(&c);
}

static void test_example(void) {
    struct run_config c;
    EXPECT(config_load(&c, "examples/qwen2_5_7b_lora.yaml", NULL, 0) == 0, "%s", err_msg());
    EXPECT_STR(c.load_checkpoint, "/path/to/Qwen2.5-7B/");
    EXPECT(c.runner_config.epochs == 2, "epochs");
    EXPECT(c.optimizer.betas[1] == 0.95 && c.optimizer.eps == 1e-8 && c.optimizer.learning_rate == 1e-4,
           "optimizer");
    EXPECT(c.optimizer.weight_decay == 0.01, "wd");
    EXPECT(c.lr_schedule.type == LR_SCHEDULE_COSINE && c.lr_schedule.min_lr == 1e-6 &&
               c.lr_schedule.warmup_ratio == 0.03,
           "schedule");
    EXPECT(c.model.pet.pet_type == PET_TYPE_LORA && c.model.pet.lora_rank == 16 &&
               c.model.pet.lora_dropout == 0.05,
           "lora");
    EXPECT(c.model.pet.target_modules_regex && c.model.pet.n_target_modules == 1, "regex");
    EXPECT_STR(c.model.pet.target_modules[0], ".*(q_proj|k_proj|v_proj|o_proj)");
    EXPECT(c.model.param_init_type == DTYPE_BF16 && c.model.recompute, "model");
    EXPECT(c.train_dataset.n_data_files == 1 && c.train_dataset.format == DATA_FORMAT_ALPACA, "data");
    EXPECT(c.train_dataset.seq_length == 8192 && c.train_dataset.shuffle, "seq");
    EXPECT(c.save_steps == 5000 && c.save_total_limit == 1, "save");
    char w[300];
    EXPECT_STR(config_where(&c, "runner_config.epochs", w, sizeof w), "examples/qwen2_5_7b_lora.yaml:15");
    EXPECT(config_check_run(&c) == 0, "%s", err_msg());
    config_free(&c);
}

static void test_full_yaml(void) {
    const char *y = "run_mode: train\n"
                    "seed: 7\n"
                    "load_checkpoint: /m\n"
                    "resume: yes\n"
                    "grad_clip: 0.5\n"
                    "common: &common\n"
                    "  seq_length: 64\n"
                    "  format: messages\n"
                    "train_dataset:\n"
                    "  <<: *common\n"
                    "  data_files: one.jsonl\n"
                    "  column_mapping: {messages: conversation}\n"
                    "  tokenizer: /tok\n";
    struct run_config c;
    /* "common" is not a key: anchors must sit on real sections */
    EXPECT(load_text(&c, y, NULL, 0) != 0, "common is unknown");
    EXPECT_ERR(":6: unknown key 'common'");
    const char *y2 = "run_mode: train\n"
                     "seed: 7\n"
                     "load_checkpoint: /m\n"
                     "resume: yes\n"
                     "grad_clip: 0.5\n"
                     "eval_dataset: &common\n"
                     "  seq_length: 64\n"
                     "  format: messages\n"
                     "train_dataset:\n"
                     "  <<: *common\n"
                     "  data_files: one.jsonl\n"
                     "  column_mapping: {messages: conversation}\n"
                     "  tokenizer: /tok\n"
                     "lr_schedule: {type: WarmUpStableDecayLR, lr_end: 1.0e-6, warmup_steps: 10}\n";
    EXPECT(load_text(&c, y2, NULL, 0) == 0, "%s", err_msg());
    EXPECT(c.run_mode == RUN_MODE_TRAIN && c.seed == 7 && c.resume_training && c.max_grad_norm == 0.5, "top");
    EXPECT(c.train_dataset.seq_length == 64 && c.train_dataset.format == DATA_FORMAT_MESSAGES, "merged");
    EXPECT(c.eval_dataset.seq_length == 64, "anchor");
    EXPECT(c.train_dataset.n_data_files == 1, "string as one-element list");
    EXPECT_STR(c.train_dataset.data_files[0], "one.jsonl");
    EXPECT(c.train_dataset.n_column_mapping == 1, "map");
    EXPECT_STR(c.train_dataset.column_mapping[0].key, "messages");
    EXPECT_STR(c.train_dataset.column_mapping[0].value, "conversation");
    EXPECT(c.lr_schedule.type == LR_SCHEDULE_WSD && c.lr_schedule.min_lr == 1e-6 &&
               c.lr_schedule.warmup_steps == 10,
           "MindSpore spellings");
    config_free(&c);
}

static void test_set(void) {
    struct run_config c;
    char *sets[] = {"model.model_config.pet_config.pet_type=lora",
                    "model.model_config.pet_config.lora_rank=32",
                    "optimizer.betas=[0.8, 0.9]",
                    "train_dataset.data_files=[a.jsonl, 'b c.parquet']",
                    "model.model_config.pet_config.target_modules=[q_proj, v_proj]",
                    "predict.prompt=Question: what is 2+2?",
                    "runner_config={epochs: 3, batch_size: 4}",
                    "output_dir=/tmp/x",
                    "seed=1"};
    EXPECT(load_text(&c, "seed: 5\noutput_dir: a\n", sets, 9) == 0, "%s", err_msg());
    EXPECT(c.model.pet.pet_type == PET_TYPE_LORA && c.model.pet.lora_rank == 32, "nested");
    EXPECT(c.optimizer.betas[0] == 0.8 && c.optimizer.betas[1] == 0.9, "betas");
    EXPECT(c.train_dataset.n_data_files == 2, "list");
    EXPECT_STR(c.train_dataset.data_files[1], "b c.parquet");
    EXPECT(c.model.pet.n_target_modules == 2 && !c.model.pet.target_modules_regex, "targets list");
    EXPECT_STR(c.predict.prompt, "Question: what is 2+2?");
    EXPECT(c.runner_config.epochs == 3 && c.runner_config.batch_size == 4, "section mapping");
    EXPECT_STR(c.output_dir, "/tmp/x");
    EXPECT(c.seed == 1, "--set wins over the file");
    char w[300];
    EXPECT_STR(config_where(&c, "seed", w, sizeof w), "--set seed");
    config_free(&c);

    char *bad_type[] = {"runner_config.epochs=two"};
    EXPECT(config_load(&c, NULL, bad_type, 1) != 0, "type");
    EXPECT_ERR("--set runner_config.epochs=two: runner_config.epochs: expected an integer >= 1, found two");
    char *bad_list[] = {"optimizer.betas=[0.9]"};
    EXPECT(config_load(&c, NULL, bad_list, 1) != 0, "betas length");
    EXPECT_ERR("optimizer.betas: expected a list of 2 numbers, found a list of 1");
    char *bad_key[] = {"optimizer.learnig_rate=1e-4"};
    EXPECT(config_load(&c, NULL, bad_key, 1) != 0, "unknown");
    EXPECT_ERR("unknown key 'optimizer.learnig_rate'; did you mean 'optimizer.learning_rate'?");
    char *no_eq[] = {"seed"};
    EXPECT(config_load(&c, NULL, no_eq, 1) != 0, "no =");
    EXPECT_ERR("--set seed: expected key.path=value");
    char *null_int[] = {"seed="};
    EXPECT(config_load(&c, NULL, null_int, 1) != 0, "null");
    EXPECT_ERR("seed: expected an integer >= 0, found null");
    char *syntax[] = {"optimizer.betas=[0.9, 0.95"};
    EXPECT(config_load(&c, NULL, syntax, 1) != 0, "syntax");
    EXPECT_ERR("YAML syntax error");
    char *sci[] = {"optimizer.learning_rate=3e-4", "optimizer.eps=1.e-6"};
    EXPECT(config_load(&c, NULL, sci, 2) == 0, "%s", err_msg());
    EXPECT(c.optimizer.learning_rate == 3e-4 && c.optimizer.eps == 1e-6, "both exponent spellings");
    config_free(&c);
}

static void test_unknown_keys(void) {
    struct run_config c;
    const char *path = write_yaml("seed: 1\n"
                                  "model:\n"
                                  "  model_config:\n"
                                  "    pet_config:\n"
                                  "      pet_type: lora\n"
                                  "      lora_rnak: 4\n");
    EXPECT(config_load(&c, path, NULL, 0) != 0, "typo");
    char want[400];
    snprintf(want, sizeof want,
             "%s:6: unknown key 'model.model_config.pet_config.lora_rnak'; did you mean "
             "'model.model_config.pet_config.lora_rank'?",
             path);
    EXPECT_STR(err_msg(), want);
    /* a key in the wrong section */
    EXPECT(load_text(&c, "learning_rate: 1e-4\n", NULL, 0) != 0, "misplaced");
    EXPECT_ERR(":1: unknown key 'learning_rate'; did you mean 'optimizer.learning_rate'?");
    EXPECT(load_text(&c, "model:\n  model_config:\n    lora_rank: 4\n", NULL, 0) != 0,
           "missing pet_config level");
    EXPECT_ERR(":3: unknown key 'model.model_config.lora_rank'; did you mean "
               "'model.model_config.pet_config.lora_rank'?");
    EXPECT(load_text(&c, "runner_config:\n  epoch: 2\n", NULL, 0) != 0, "sibling");
    EXPECT_ERR("did you mean 'runner_config.epochs'?");
    EXPECT(load_text(&c, "banana: 1\n", NULL, 0) != 0, "nothing close");
    EXPECT_ERR(":1: unknown key 'banana' (every key is listed in docs/config.md)");
    /* a scalar where a section is expected */
    EXPECT(load_text(&c, "optimizer: AdamW\n", NULL, 0) != 0, "section");
    EXPECT_ERR(":1: optimizer: expected a mapping (a section), found AdamW");
    /* the same key twice, through an alias */
    EXPECT(load_text(&c, "resume: true\nresume_training: false\n", NULL, 0) != 0, "twice");
    EXPECT_ERR("resume_training is set twice (line 1 as 'resume', line 2 as 'resume_training')");
}

static void test_wrong_types(void) {
    struct run_config c;
    EXPECT(load_text(&c, "seed: 1\nrunner_config:\n  batch_size: 1.5\n", NULL, 0) != 0, "float for int");
    EXPECT_ERR(":3: runner_config.batch_size: expected an integer >= 1, found 1.5");
    EXPECT(load_text(&c, "runner_config:\n  batch_size: 0\n", NULL, 0) != 0, "range");
    EXPECT_ERR(":2: runner_config.batch_size: expected an integer >= 1, found 0");
    EXPECT(load_text(&c, "train_dataset:\n  packing: \"true\"\n", NULL, 0) != 0, "quoted bool");
    EXPECT_ERR(":2: train_dataset.packing: expected a boolean (true/false), found \"true\"");
    EXPECT(load_text(&c, "train_dataset:\n  packing: True\n  shuffle: off\n", NULL, 0) == 0,
           "YAML 1.1 bools");
    EXPECT(c.train_dataset.packing && !c.train_dataset.shuffle, "values");
    config_free(&c);
    EXPECT(load_text(&c, "lr_schedule:\n  type: cosin\n", NULL, 0) != 0, "enum");
    EXPECT_ERR(":2: lr_schedule.type: expected one of constant, linear, cosine, wsd, found cosin");
    EXPECT(
        load_text(&c,
                  "model:\n  model_config:\n    pet_config:\n      pet_type: lora\n      lora_dropout: 1.0\n",
                  NULL, 0) != 0,
        "dropout range");
    EXPECT_ERR(":5: model.model_config.pet_config.lora_dropout: expected a number [0, 1), found 1.0");
    EXPECT(load_text(&c, "optimizer:\n  learning_rate: .nan\n", NULL, 0) != 0, "nan");
    EXPECT_ERR("optimizer.learning_rate: expected a number > 0, found .nan");
    EXPECT(load_text(&c, "optimizer:\n  betas: [0.9, x]\n", NULL, 0) != 0, "betas element");
    EXPECT_ERR(":2: optimizer.betas[1]: expected a number, found x");
    EXPECT(load_text(&c, "optimizer:\n  betas: [0.9, 1.0]\n", NULL, 0) != 0, "beta range");
    EXPECT_ERR("optimizer.betas[1]: expected a number in [0, 1), found 1");
    EXPECT(load_text(&c, "train_dataset:\n  data_files: [a, [b]]\n", NULL, 0) != 0, "nested list");
    EXPECT_ERR(":2: train_dataset.data_files[1]: expected a string, found a list");
    EXPECT(load_text(&c, "output_dir: [a]\n", NULL, 0) != 0, "list for string");
    EXPECT_ERR(":1: output_dir: expected a string, found a list");
    EXPECT(load_text(&c, "seed: 99999999999999999999\n", NULL, 0) != 0, "overflow");
    EXPECT_ERR("seed: expected an integer >= 0");
    EXPECT(load_text(&c,
                     "model:\n  model_config:\n    pet_config:\n      pet_type: lora\n      target_modules: "
                     "'(q_proj'\n",
                     NULL, 0) != 0,
           "regex");
    EXPECT_ERR(":5: model.model_config.pet_config.target_modules: bad regex '(q_proj' at offset 7");
    /* several errors are reported together */
    EXPECT(load_text(&c, "seed: -1\nepochs: 2\n", NULL, 0) != 0, "two errors");
    EXPECT_ERR(":1: seed: expected an integer >= 0, found -1\n  ");
    EXPECT_ERR(":2: unknown key 'epochs'; did you mean 'runner_config.epochs'?");
}

static void test_cross_checks(void) {
    struct run_config c;
    EXPECT(load_text(&c, "lr_schedule:\n  warmup_steps: 10\n  warmup_ratio: 0.1\n", NULL, 0) != 0, "warmup");
    EXPECT_ERR("lr_schedule.warmup_steps (");
    EXPECT_ERR(":2) and lr_schedule.warmup_ratio (");
    EXPECT(load_text(&c, "model:\n  model_config:\n    pet_config:\n      lora_rank: 16\n", NULL, 0) != 0,
           "no pet_type");
    EXPECT_ERR("model.model_config.pet_config.lora_rank (");
    EXPECT_ERR(":4) is set but model.model_config.pet_config.pet_type is none; add pet_type: lora");
    EXPECT(load_text(&c, "runner_config:\n  max_steps: 0\n", NULL, 0) != 0, "max_steps 0");
    EXPECT_ERR("runner_config.max_steps (");
    EXPECT(load_text(&c, "train_dataset:\n  vocab_file: v.json\n", NULL, 0) != 0, "merges missing");
    EXPECT_ERR("train_dataset.vocab_file (");
    EXPECT_ERR(":2) is set but train_dataset.merges_file is not");
    EXPECT(load_text(&c, "optimizer: {learning_rate: 1.0e-5}\nlr_schedule: {min_lr: 1.0e-4}\n", NULL, 0) != 0,
           "min_lr");
    EXPECT_ERR("is above optimizer.learning_rate");

    EXPECT(config_load(&c, NULL, NULL, 0) == 0, "defaults");
    EXPECT(config_check_run(&c) != 0, "no checkpoint");
    EXPECT_ERR("load_checkpoint is not set: run_mode finetune needs a Hugging Face model folder");
    config_free(&c);
    char *s1[] = {"load_checkpoint=/m"};
    EXPECT(config_load(&c, NULL, s1, 1) == 0, "%s", err_msg());
    EXPECT(config_check_run(&c) != 0, "no data");
    EXPECT_ERR("train_dataset.data_files is empty");
    config_free(&c);
    char *s2[] = {"load_checkpoint=/m", "run_mode=predict"};
    EXPECT(config_load(&c, NULL, s2, 2) == 0 && config_check_run(&c) == 0, "predict needs no data: %s",
           err_msg());
    config_free(&c);
    char *s3[] = {"resume_from_checkpoint=out/checkpoint-100"};
    EXPECT(config_load(&c, NULL, s3, 1) == 0 && c.resume_training, "resume_from_checkpoint implies resume");
    config_free(&c);
}

static void test_bad_yaml(void) {
    struct run_config c;
    const char *path = write_yaml("seed: 1\noptimizer:\n  betas: [0.9, 0.95\n  eps: 1\n");
    EXPECT(config_load(&c, path, NULL, 0) != 0, "syntax");
    char want[300];
    snprintf(want, sizeof want, "%s:4:", path);
    EXPECT_ERR(want);
    EXPECT_ERR("YAML syntax error");
    EXPECT(load_text(&c, "seed: 1\n  bad indent: 2\n", NULL, 0) != 0, "indent");
    EXPECT_ERR(":2:");
    EXPECT(load_text(&c, "- a\n- b\n", NULL, 0) != 0, "not a mapping");
    EXPECT_ERR(":1: expected a mapping of keys at the top level");
    EXPECT(load_text(&c, "", NULL, 0) == 0, "empty file = defaults");
    config_free(&c);
    EXPECT(config_load(&c, "/nonexistent/run.yaml", NULL, 0) != 0, "missing");
    EXPECT_ERR("/nonexistent/run.yaml: cannot open");
}

static void test_parallel(void) {
    struct run_config c;
    EXPECT(load_text(&c, "parallel_config:\n  data_parallel: 4\n  model_parallel: 1\n  pipeline_stage: 1\n",
                     NULL, 0) == 0,
           "ones are fine: %s", err_msg());
    EXPECT(c.parallel_config.data_parallel == 4, "dp");
    config_free(&c);
    EXPECT(load_text(&c, "parallel_config:\n  data_parallel: 4\n  pipeline_stage: 2\n", NULL, 0) != 0, "pp");
    EXPECT_ERR(":3: parallel_config.pipeline_stage: 2 is not supported yet (only 1)");
    char *s[] = {"parallel_config.use_seq_parallel=true"};
    EXPECT(config_load(&c, NULL, s, 1) != 0, "sp");
    EXPECT_ERR("parallel_config.use_seq_parallel: true is not supported yet (only false)");
    EXPECT(load_text(&c, "parallel_config:\n  micro_batch_num: 16\n", NULL, 0) != 0, "pipeline setting");
    EXPECT_ERR("unknown key 'parallel_config.micro_batch_num' (MindSpore setting): not supported yet");
    EXPECT(load_text(&c, "parallel_config:\n  zero_stage: 4\n", NULL, 0) != 0, "zero 4");
    EXPECT_ERR("parallel_config.zero_stage: expected an integer [0, 3], found 4");
    EXPECT(load_text(&c, "parallel_config:\n  zero_stage: 3\n  model_parallel: 2\n", NULL, 0) == 0, "%s", err_msg());
    EXPECT(c.parallel_config.zero_stage == 3 && c.parallel_config.model_parallel == 2, "zero 3, tp 2");
    config_free(&c);
    EXPECT(load_text(&c, "parallel_config:\n  model_parallel: 0\n", NULL, 0) != 0, "tp 0");
}

/* MindSpore's own config: every foreign key is named with where it lives in csft. */
static void test_mindspore_config(void) {
    struct run_config c;
    EXPECT(config_load(&c, "tests/fixtures/config/mindformers-finetune_qwen2_5_7b_8k.yaml", NULL, 0) != 0,
           "foreign");
    EXPECT_ERR("mindformers-finetune_qwen2_5_7b_8k.yaml:4: unknown key 'auto_trans_ckpt' (MindSpore "
               "setting): csft loads");
    EXPECT_ERR(":10: unknown key 'trainer' (MindSpore setting): csft picks the trainer from run_mode");
    EXPECT_ERR("unknown key 'runner_config.sink_mode' (MindSpore setting)");
    EXPECT_ERR("unknown key 'runner_wrapper' (MindSpore setting): gradient clipping is max_grad_norm");
    EXPECT_ERR("unknown key 'lr_schedule.learning_rate' (MindSpore setting): use optimizer.learning_rate");
    EXPECT_ERR("more errors not shown)");
}

static char *dump_str(const struct run_config *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_dump_yaml(c, f);
    fclose(f);
    return buf;
}

static void test_round_trip(void) {
    struct run_config a, b;
    char *sets[] = {"model.model_config.pet_config.target_modules='.*\\.(q|v)_proj'",
                    "train_dataset.column_mapping={instruction: \"q \\\"1\\\"\", output: a}",
                    "predict.prompt=\"line1\\nline2\\ttab\"",
                    "optimizer.learning_rate=0.1",
                    "lr_schedule.min_lr=1e-7",
                    "eval_dataset.data_files=[x.jsonl]"};
    EXPECT(config_load(&a, "examples/qwen2_5_7b_lora.yaml", sets, 6) == 0, "%s", err_msg());
    EXPECT_STR(a.model.pet.target_modules[0], ".*\\.(q|v)_proj");
    EXPECT_STR(a.train_dataset.column_mapping[0].value, "q \"1\"");
    const char *path = "/tmp/csft_test_config_dump.yaml";
    EXPECT(config_save(&a, path) == 0, "%s", err_msg());
    EXPECT(config_load(&b, path, NULL, 0) == 0, "%s", err_msg());
    char *da = dump_str(&a), *db = dump_str(&b);
    EXPECT_STR(da, db);
    EXPECT(strstr(da, "  learning_rate: 0.1\n") && strstr(da, "  min_lr: 1.0e-07\n"), "float text:\n%s", da);
    EXPECT(strstr(da, "  betas: [0.9, 0.95]\n"), "betas text");
    EXPECT(b.optimizer.learning_rate == 0.1 && b.lr_schedule.min_lr == 1e-7, "exact doubles");
    EXPECT_STR(b.predict.prompt, "line1\nline2\ttab");
    EXPECT(b.model.pet.target_modules_regex, "regex kept");
    free(da);
    free(db);
    config_free(&a);
    config_free(&b);
    /* defaults round trip too (pet_config keys at their defaults with pet_type none are fine) */
    EXPECT(config_load(&a, NULL, NULL, 0) == 0, "%s", err_msg());
    EXPECT(config_save(&a, path) == 0 && config_load(&b, path, NULL, 0) == 0, "%s", err_msg());
    da = dump_str(&a);
    db = dump_str(&b);
    EXPECT_STR(da, db);
    free(da);
    free(db);
    config_free(&a);
    config_free(&b);
    unlink(path);
}

static char *markdown(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_markdown(f);
    fclose(f);
    return buf;
}

static void test_docs(void) {
    char *md = markdown();
    char *doc = file_read_all("docs/config.md", NULL);
    EXPECT(doc && strcmp(doc, md) == 0,
           "docs/config.md is out of date: run build/tests/test_config --write-docs");
    EXPECT(strstr(md, "| `lora_rank` | int | `8` | >= 1 |"), "a row");
    free(md);
    free(doc);
    char *help = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&help, &len);
    config_print_help(f);
    fclose(f);
    EXPECT(strstr(help, "  model.model_config.pet_config.lora_rank = 8  (int: >= 1)\n"), "help line");
    EXPECT(strstr(help, "Also spelled resume."), "alias");
    free(help);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--write-docs") == 0) {
        char *md = markdown();
        if (dir_create("docs") || file_write_atomic("docs/config.md", md, strlen(md))) {
            fprintf(stderr, "%s\n", err_msg());
            return 1;
        }
        free(md);
        printf("wrote docs/config.md\n");
        return 0;
    }
    RUN(test_defaults);
    RUN(test_example);
    RUN(test_full_yaml);
    RUN(test_set);
    RUN(test_unknown_keys);
    RUN(test_wrong_types);
    RUN(test_cross_checks);
    RUN(test_bad_yaml);
    RUN(test_parallel);
    RUN(test_mindspore_config);
    RUN(test_round_trip);
    RUN(test_docs);
    unlink(tmp_path);
    return TEST_SUMMARY("config");
}
