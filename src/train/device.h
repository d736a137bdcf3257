/* device: the kernel backend a run uses, from the config key `device` (cpu | cuda | cuda-bf16,
 * also --device on the commands) together with model.model_config.compute_dtype. */
#pragma once

#include "train/config.h"

/* The backend name for cfg: "cpu", "cuda" or "cuda-bf16" (device: cuda with compute_dtype:
 * bfloat16 gives "cuda-bf16"); NULL + err_set when compute_dtype: bfloat16 asks for bf16 GEMMs
 * on the CPU, which computes in float32. */
const char *device_backend_name(const struct run_config *cfg);
/* Selects that backend for the process (kernels_select); -1 + err_set naming the key when it is
 * not built in (make CUDA=1) or no GPU is present. Call before loading any model. */
int device_select(const struct run_config *cfg);
/* compute_dtype against the selected backend: bfloat16 needs the cuda-bf16 backend. */
int device_check_compute(const struct run_config *cfg);
