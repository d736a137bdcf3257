/* bench_train: csft's side of the CUDA benchmark (bench/cuda/run.sh). Builds a random-init model
 * of a config.json's shape on a backend, optionally with LoRA r on q,k,v,o, and times train_step
 * (AdamW, clip 1.0) on random tokens of B x T. Prints one JSON line: tokens/s and the device
 * memory in use after the run (csft allocates everything before the first step). */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "core/util.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "train/step.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_train --config CONFIG.json --case NAME [--device cuda|cuda-bf16|cpu]\n"
                    "                   [--lora R] [--batch B] [--seq T] [--steps S] [--warmup W]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *config = NULL, *device = "cuda-bf16", *case_name = "run";
    int rank = 0, B = 1, T = 2048, steps = 10, warmup = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "--config")) config = argv[++i];
        else if (!strcmp(argv[i], "--case")) case_name = argv[++i];
        else if (!strcmp(argv[i], "--device")) device = argv[++i];
        else if (!strcmp(argv[i], "--lora")) rank = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq")) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[++i]);
        else usage();
    }
    if (!config) usage();
    struct model_config cfg;
    struct model m;
    if (kernels_select(device) || model_config_load(&cfg, config, 0)) {
        fprintf(stderr, "bench_train: %s\n", err_msg());
        return 1;
    }
    double t0 = time_now();
    model_init_random(&m, &cfg, 1, rank == 0);
    if (rank > 0) {
        static const char *const targets[] = {"q_proj", "k_proj", "v_proj", "o_proj"};
        struct lora_spec spec = {.rank = rank, .alpha = 2.0f * rank, .dropout = 0, .targets = targets, .n_targets = 4};
        if (lora_attach(&m, &spec, 2)) {
            fprintf(stderr, "bench_train: %s\n", err_msg());
            return 1;
        }
    }
    int n_params;
    struct param *params = model_trainable(&m, &n_params);
    struct adamw opt;
    adamw_init(&opt, params, n_params, 0.9f, 0.999f, 1e-8f, 0.0f);
    int64_t N = (int64_t)B * T;
    int32_t *ids = xmalloc(sizeof(int32_t) * N), *pos = xmalloc(sizeof(int32_t) * N);
    uint64_t s = 42;
    for (int64_t i = 0; i < N; i++) ids[i] = (int32_t)(rng_next(&s) % (uint64_t)cfg.vocab_size), pos[i] = (int32_t)(i % T);
    struct micro_batch mb = {.ids = ids, .labels = ids, .pos = pos, .B = B, .T = T};
    struct step_result r;
    fprintf(stderr, "bench_train %s: setup %.1f s\n", case_name, time_now() - t0);
    double start = 0;
    for (int i = 0; i < warmup + steps; i++) {
        if (i == warmup) {
            kernels_selected()->sync();
            start = time_now();
        }
        if (train_step(&m, &opt, &mb, 1, 1e-5, 1.0, NULL, &r)) {
            fprintf(stderr, "bench_train: %s\n", err_msg());
            return 1;
        }
        fprintf(stderr, "  step %d loss %.4f grad_norm %.4f\n", i + 1, r.loss, r.grad_norm);
    }
    kernels_selected()->sync();
    double secs = time_now() - start;
    size_t free_b = 0, total_b = 0;
    if (strncmp(device, "cuda", 4) == 0) cudaMemGetInfo(&free_b, &total_b);
    printf("{\"impl\": \"csft\", \"case\": \"%s\", \"device\": \"%s\", \"batch\": %d, \"seq\": %d, \"lora_rank\": %d, "
           "\"steps\": %d, \"tokens_per_s\": %.1f, \"mem_used_gib\": %.2f, \"final_loss\": %.4f}\n",
           case_name, device, B, T, rank, steps, (double)N * steps / secs, (double)(total_b - free_b) / (1 << 30),
           r.loss);
    adamw_free(&opt);
    model_free(&m);
    free(ids), free(pos);
    return 0;
}
