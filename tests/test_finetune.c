/* End-to-end tests of the training command (./csft run as a subprocess): the finetune loop
 * reproduces the HF fixtures' full and LoRA AdamW trajectories when fed their batches as
 * pre-tokenized records; a run killed with SIGKILL at several steps and resumed ends with
 * byte-identical weights; every user-facing error path gives one clear message and leaves
 * earlier checkpoints intact. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util.h"
#include "test.h"

/* Scratch files live under build/ of this checkout, so test runs of other checkouts on the
 * same machine never share them. */

static const char *fixtures[] = {"qwen2-tiny", "qwen3-tiny", "llama-tiny", "mistral-tiny-bf16-sharded"};

/* Runs a shell command, capturing stderr+stdout into *out (malloc'd); returns the exit status. */
static int run(const char *cmd, char **out) {
    char *full = xasprintf("%s > build/tmp_ft/csft_ft_out.txt 2>&1", cmd);
    int st = system(full);
    free(full);
    if (out) *out = file_read_all("build/tmp_ft/csft_ft_out.txt", NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static cJSON *load_json(const char *path) {
    char *t = file_read_all(path, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    free(t);
    return j;
}

/* The fixture's three batches as tokenized JSONL records, in order. */
static void write_batches(const char *fx, const char *path) {
    char *rp = xasprintf("tests/fixtures/hf/%s/reference.json", fx);
    cJSON *r = load_json(rp);
    free(rp);
    FILE *f = fopen(path, "w");
    const cJSON *bi = cJSON_GetObjectItem(r, "batches_input_ids"), *bl = cJSON_GetObjectItem(r, "batches_labels");
    for (int b = 0; b < cJSON_GetArraySize(bi); b++)
        for (int row = 0; row < cJSON_GetArraySize(cJSON_GetArrayItem(bi, b)); row++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "input_ids", cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetArrayItem(bi, b), row), 1));
            cJSON_AddItemToObject(o, "labels", cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetArrayItem(bl, b), row), 1));
            char *s = cJSON_PrintUnformatted(o);
            fprintf(f, "%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
    fclose(f);
    cJSON_Delete(r);
}

static void write_config(const char *path, const char *fx, const char *out, int lora) {
    FILE *f = fopen(path, "w");
    fprintf(f,
            "run_mode: finetune\nseed: 1\noutput_dir: %s\nload_checkpoint: tests/fixtures/hf/%s\n"
            "train_dataset:\n  data_files: [build/tmp_ft/csft_ft_%s.jsonl]\n  format: tokenized\n  shuffle: false\n"
            "  packing: false\n  seq_length: 64\n"
            "runner_config:\n  epochs: 2\n  batch_size: 2\n"
            "optimizer:\n  learning_rate: %s\n  betas: [0.9, 0.95]\n  eps: 1.0e-8\n  weight_decay: %s\n"
            "lr_schedule:\n  type: %s\n  warmup_steps: %d\nmax_grad_norm: 1.0\nlogging_steps: 1\nsave_steps: 1\n"
            "save_total_limit: 0\ntensorboard: false\n",
            out, fx, fx, lora ? "1.0e-2" : "1.0e-3", lora ? "0.0" : "0.1", lora ? "constant" : "cosine", lora ? 0 : 2);
    if (lora)
        fprintf(f, "model:\n  model_config:\n    pet_config:\n      pet_type: lora\n      lora_rank: 4\n      lora_alpha: 8\n"
                   "      target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]\n"
                   "      adapter_path: tests/fixtures/hf/%s/lora_adapter\n",
                fx);
    fclose(f);
}

/* Compares metrics.jsonl losses and grad norms with the reference trajectory. */
static void check_trajectory(const char *fx, const char *out, const char *which) {
    char *rp = xasprintf("tests/fixtures/hf/%s/reference.json", fx), *mp = xasprintf("%s/metrics.jsonl", out);
    cJSON *r = load_json(rp);
    const cJSON *steps = cJSON_GetObjectItem(cJSON_GetObjectItem(r, which), "steps");
    char *text = file_read_all(mp, NULL);
    EXPECT(text != NULL, "%s missing", mp);
    int i = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n"), i++) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ref = cJSON_GetArrayItem(steps, i);
        double l = cJSON_GetObjectItem(j, "loss")->valuedouble, rl = cJSON_GetObjectItem(ref, "loss")->valuedouble;
        double g = cJSON_GetObjectItem(j, "grad_norm")->valuedouble, rg = cJSON_GetObjectItem(ref, "grad_norm")->valuedouble;
        EXPECT(fabs(l - rl) / rl < 1e-3, "%s %s step %d loss %.6f vs %.6f", fx, which, i + 1, l, rl);
        EXPECT(fabs(g - rg) / rg < 1e-3, "%s %s step %d grad norm %.6f vs %.6f", fx, which, i + 1, g, rg);
        cJSON_Delete(j);
    }
    EXPECT(i == cJSON_GetArraySize(steps), "%s: %d logged steps", fx, i);
    free(text), free(rp), free(mp);
    cJSON_Delete(r);
}

static void test_trajectories(void) {
    for (int k = 0; k < 4; k++) {
        char *data = xasprintf("build/tmp_ft/csft_ft_%s.jsonl", fixtures[k]);
        write_batches(fixtures[k], data);
        free(data);
        for (int lora = 0; lora < 2; lora++) {
            char *out = xasprintf("build/tmp_ft/csft_ft_run_%s_%d", fixtures[k], lora), *cmd;
            cmd = xasprintf("rm -rf %s", out);
            system(cmd), free(cmd);
            write_config("build/tmp_ft/csft_ft.yaml", fixtures[k], out, lora);
            char *log;
            int rc = run("./csft finetune --config build/tmp_ft/csft_ft.yaml", &log);
            EXPECT(rc == 0, "%s finetune failed: %s", fixtures[k], log);
            free(log);
            check_trajectory(fixtures[k], out, lora ? "lora_trajectory" : "full_trajectory");
            char *final = xasprintf("%s/%s", out, lora ? "adapter_model.safetensors" : "model.safetensors");
            EXPECT(file_exists(final), "final output %s", final);
            free(final), free(out);
        }
    }
}

/* SIGKILL after steps 2, 3 and 5 (resuming each time) ends with the same bytes as one run. */
static void test_kill_and_resume(void) {
    const char *fx = "qwen2-tiny";
    for (int lora = 0; lora < 2; lora++) {
        const char *outA = "build/tmp_ft/csft_ft_resume_A", *outB = "build/tmp_ft/csft_ft_resume_B";
        system("rm -rf build/tmp_ft/csft_ft_resume_A build/tmp_ft/csft_ft_resume_B");
        write_config("build/tmp_ft/csft_ft_resume.yaml", fx, outA, lora);
        EXPECT(run("./csft finetune --config build/tmp_ft/csft_ft_resume.yaml", NULL) == 0, "uninterrupted run");
        const int kills[] = {2, 3, 5};
        for (int i = 0; i < 3; i++) {
            char *cmd = xasprintf("CSFT_TEST_KILL_AFTER_STEP=%d ./csft finetune --config build/tmp_ft/csft_ft_resume.yaml "
                                  "--set output_dir=%s --set resume_training=true",
                                  kills[i], outB);
            int rc = run(cmd, NULL);
            free(cmd);
            EXPECT(rc == 128 + 9, "killed after step %d (status %d)", kills[i], rc);
        }
        char *cmd = xasprintf("./csft finetune --config build/tmp_ft/csft_ft_resume.yaml --set output_dir=%s --set resume_training=true", outB);
        char *log;
        EXPECT(run(cmd, &log) == 0, "final resume: %s", log);
        free(cmd), free(log);
        const char *w = lora ? "adapter_model.safetensors" : "model.safetensors";
        char *a = xasprintf("%s/%s", outA, w), *b = xasprintf("%s/%s", outB, w);
        EXPECT(files_equal(a, b), "%s weights differ after kill+resume (lora=%d)", w, lora);
        free(a), free(b);
        /* the metrics log of the resumed run equals the uninterrupted one, step for step */
        char *ma = file_read_all("build/tmp_ft/csft_ft_resume_A/metrics.jsonl", NULL), *mb = file_read_all("build/tmp_ft/csft_ft_resume_B/metrics.jsonl", NULL);
        int na = 0, nb = 0;
        for (char *p = ma; p && *p; p++) na += *p == '\n';
        for (char *p = mb; p && *p; p++) nb += *p == '\n';
        EXPECT(na == 6 && nb == 6, "metrics lines %d vs %d", na, nb);
        free(ma), free(mb);
    }
}

static void expect_error(const char *cmd, const char *needle) {
    char *log;
    int rc = run(cmd, &log);
    EXPECT(rc != 0 && log && strstr(log, needle), "`%s` should fail mentioning \"%s\"; got rc %d: %s", cmd, needle, rc,
           log ? log : "");
    free(log);
}

static void test_error_paths(void) {
    write_batches("qwen2-tiny", "build/tmp_ft/csft_ft_qwen2-tiny.jsonl");
    write_config("build/tmp_ft/csft_ft_err.yaml", "qwen2-tiny", "build/tmp_ft/csft_ft_err_out", 0);
    expect_error("./csft finetune --config build/tmp_ft/csft_no_such.yaml", "csft_no_such.yaml");
    FILE *f = fopen("build/tmp_ft/csft_ft_bad.yaml", "w");
    fprintf(f, "run_mode: finetune\nrunner_config:\n  epochs: [1\n");
    fclose(f);
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_bad.yaml", "csft_ft_bad.yaml:");
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set runner_config.batch_sise=2", "batch_size");
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set runner_config.epochs=two", "runner_config.epochs");
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set load_checkpoint=build/tmp_ft/csft_nonexistent_model",
                 "csft_nonexistent_model");
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set train_dataset.data_files=[build/tmp_ft/csft_missing.jsonl]",
                 "csft_missing.jsonl");
    /* records without the needed columns */
    f = fopen("build/tmp_ft/csft_ft_nocols.jsonl", "w");
    fprintf(f, "{\"question\": \"hi\", \"answer\": \"there\"}\n");
    fclose(f);
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set train_dataset.data_files=[build/tmp_ft/csft_ft_nocols.jsonl] "
                 "--set train_dataset.format=tokenized",
                 "csft_ft_nocols.jsonl: row 0");
    /* tokenizer that does not belong to the model (151k tokens vs vocab 512) */
    f = fopen("build/tmp_ft/csft_ft_alpaca.jsonl", "w");
    fprintf(f, "{\"instruction\": \"hi\", \"input\": \"\", \"output\": \"there\"}\n");
    fclose(f);
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set train_dataset.data_files=[build/tmp_ft/csft_ft_alpaca.jsonl] "
                 "--set train_dataset.format=alpaca --set train_dataset.tokenizer=tests/fixtures/tokenizer/qwen",
                 "vocab_size is 512");
    /* output folder not writable: a path under a regular file */
    expect_error("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set output_dir=build/tmp_ft/csft_ft_nocols.jsonl/out",
                 "csft_ft_nocols.jsonl/out");
    /* disk full while saving: earlier checkpoints stay intact and loadable */
    system("rm -rf build/tmp_ft/csft_ft_err_out");
    EXPECT(run("CSFT_TEST_KILL_AFTER_STEP=2 ./csft finetune --config build/tmp_ft/csft_ft_err.yaml", NULL) == 137, "run to step 2");
    size_t n_before = 0, n_after = 0;
    char *before = file_read_all("build/tmp_ft/csft_ft_err_out/checkpoints/checkpoint-2/model.safetensors", &n_before);
    EXPECT(before != NULL, "checkpoint-2 exists");
    /* a file-size limit makes every write past 64 KiB fail like a full disk */
    expect_error("bash -c 'ulimit -f 64; ./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set resume_training=true'",
                 "checkpoint");
    char *after = file_read_all("build/tmp_ft/csft_ft_err_out/checkpoints/checkpoint-2/model.safetensors", &n_after);
    /* binary files: every byte, not up to the first NUL */
    EXPECT(before && after && n_before > 1000 && n_before == n_after && memcmp(before, after, n_before) == 0,
           "checkpoint-2 unchanged (%zu vs %zu bytes)", n_before, n_after);
    EXPECT(!dir_exists("build/tmp_ft/csft_ft_err_out/checkpoints/checkpoint-3"), "no half-written checkpoint-3");
    free(before), free(after);
    /* and the run resumes from it once there is space again */
    EXPECT(run("./csft finetune --config build/tmp_ft/csft_ft_err.yaml --set resume_training=true", NULL) == 0, "resume after disk full");
}

int main(void) {
    system("rm -rf build/tmp_ft && mkdir -p build/tmp_ft");
    if (!file_exists("./csft")) {
        printf("finetune: 0 passed, 1 failed (./csft not built)\n");
        return 1;
    }
    RUN(test_trajectories);
    RUN(test_kill_and_resume);
    RUN(test_error_paths);
    return TEST_SUMMARY("finetune");
}
