/* bench_train: times csft's train_step on a random Qwen2-style model (full fine-tuning or
 * LoRA on q,k,v,o) and prints one "key=value" line that bench/run.sh turns into a table:
 * tokens/s, seconds per step, peak RSS. Built by bench/run.sh against build/libcsft.a.
 * Usage: bench_train --hidden C --layers L --heads H --kv-heads KVH --ffn F --vocab V
 *        [--tied] --batch B --seq T [--lora R] [--warmup 1] [--steps 3] [--recompute] [--bf16-base] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/step.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    struct model_config cfg = {0};
    cfg.arch = ARCH_QWEN2;
    snprintf(cfg.model_type, sizeof cfg.model_type, "qwen2");
    cfg.hidden_size = 512, cfg.n_layers = 8, cfg.n_heads = 8, cfg.n_kv_heads = 2, cfg.intermediate_size = 1376;
    cfg.vocab_size = 32000, cfg.rms_norm_eps = 1e-6f, cfg.rope_theta = 1e6, cfg.qkv_bias = 1;
    cfg.max_position_embeddings = 32768, cfg.rope_type = ROPE_DEFAULT;
    int B = 4, T = 256, R = 0, warmup = 1, steps = 3, recompute = 0, bf16_base = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "0";
#define OPT(name, dst)                 \
    if (strcmp(a, name) == 0) {        \
        dst = atoi(v);                 \
        i++;                           \
        continue;                      \
    }
        OPT("--hidden", cfg.hidden_size) OPT("--layers", cfg.n_layers) OPT("--heads", cfg.n_heads);
        OPT("--kv-heads", cfg.n_kv_heads) OPT("--ffn", cfg.intermediate_size) OPT("--vocab", cfg.vocab_size);
        OPT("--batch", B) OPT("--seq", T) OPT("--lora", R) OPT("--warmup", warmup) OPT("--steps", steps);
#undef OPT
        if (strcmp(a, "--tied") == 0) cfg.tie_word_embeddings = 1;
        else if (strcmp(a, "--recompute") == 0) recompute = 1;
        else if (strcmp(a, "--bf16-base") == 0) bf16_base = 1;
        else {
            fprintf(stderr, "bench_train: unknown argument %s\n", a);
            return 2;
        }
    }
    cfg.head_dim = cfg.hidden_size / cfg.n_heads;
    struct model m;
    if (bf16_base && R == 0) {
        fprintf(stderr, "bench_train: --bf16-base needs --lora (a bf16 base is frozen)\n");
        return 2;
    }
    if (bf16_base) model_init_random_bf16_base(&m, &cfg, 1); /* the float32 base never exists */
    else model_init_random(&m, &cfg, 1, R == 0);
    if (R) {
        static const char *const targets[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        struct lora_spec spec = {.rank = R, .alpha = 32, .targets = targets, .n_targets = 4};
        if (lora_attach(&m, &spec, 2)) {
            fprintf(stderr, "bench_train: %s\n", err_msg());
            return 1;
        }
    }
    m.recompute = recompute;

    int n_params;
    struct param *params = model_trainable(&m, &n_params);
    struct adamw opt;
    adamw_init(&opt, params, n_params, 0.9f, 0.999f, 1e-8f, 0.0f);
    int64_t N = (int64_t)B * T;
    int32_t *ids = xmalloc(sizeof(int32_t) * N), *pos = xmalloc(sizeof(int32_t) * N);
    uint64_t s = 7;
    for (int64_t n = 0; n < N; n++) ids[n] = (int32_t)(rng_next(&s) % (uint64_t)cfg.vocab_size), pos[n] = (int32_t)(n % T);
    struct micro_batch mb = {.ids = ids, .labels = ids, .pos = pos, .B = B, .T = T};
    struct step_result res;
    double t_total = 0, cpu_total = 0;
    for (int i = 0; i < warmup + steps; i++) {
        double t0 = now(), c0 = cpu_now();
        if (train_step(&m, &opt, &mb, 1, 1e-5, 1.0, NULL, &res)) {
            fprintf(stderr, "bench_train: %s\n", err_msg());
            return 1;
        }
        double dt = now() - t0;
        fprintf(stderr, "step %d: %.3f s, loss %.4f\n", i, dt, res.loss);
        if (i >= warmup) t_total += dt, cpu_total += cpu_now() - c0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double step_s = t_total / steps;
    printf("impl=csft step_s=%.4f tokens_per_s=%.2f peak_rss_mib=%.1f loss=%.5f cpu_step_s=%.3f\n", step_s, N / step_s,
           ru.ru_maxrss / 1024.0, res.loss, cpu_total / steps);
    adamw_free(&opt);
    model_free(&m);
    free(ids), free(pos);
    return 0;
}
