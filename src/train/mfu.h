/* mfu: model FLOP utilisation and peak memory for the training log.
 *
 * Model FLOPs per trained token (the work the model needs, not the work done, so activation
 * recomputation is not counted; the count bench/RESULTS.md uses):
 *   N   = matmul weights = L * (C*H*HS [q] + 2*C*KVH*HS [k,v] + H*HS*C [o] + 3*C*F [mlp]) + V*C [lm_head]
 *   att = 6 * L * H * HS * (T+1)  (causal QK^T and AV: 4 * H*HS * (T+1)/2 per token forward, x3)
 *   full fine-tuning: 6*N + att          (forward 2N, backward 2N for inputs + 2N for weights)
 *   LoRA:             4*N + 6*R_n + att  (a frozen base needs no weight gradients; R_n = LoRA params)
 * T is the configured sequence length. MFU = tokens/s * FLOPs per token / (peak FLOP/s * world).
 * The peak is measured once at start (mfu_measure_peak_gflops), or given (peak_gflops). */
#pragma once
#include <stdint.h>

#include "kernels/kernels.h"
#include "model/model_config.h"

/* FLOPs per trained token, as above. */
double mfu_flops_per_token(const struct model_config *c, int lora, int64_t n_lora, int T);
/* The backend's peak FP32 GFLOP/s, measured (~0.1 s). CPU: every OpenMP thread runs independent
 * chains of vector FMAs, as bench/fma_peak.c does. Other backends: the best of a few 2048^3
 * matmuls through the backend table (the achievable peak). */
double mfu_measure_peak_gflops(const struct kernels *k);
/* The process's peak resident memory in MiB (getrusage ru_maxrss). */
double mfu_peak_rss_mib(void);
