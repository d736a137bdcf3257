/* device: see device.h. */
#include "train/device.h"

#include <string.h>

#include "core/err.h"
#include "kernels/kernels.h"

static const char *bf16_cpu_msg =
    "model.model_config.compute_dtype: bfloat16 needs bf16 GEMMs, which only device: cuda has (a `make CUDA=1` "
    "build on a GPU); the CPU backend computes in float32: set compute_dtype: float32 (param_init_type: bfloat16 "
    "still keeps a frozen LoRA base in bf16)";

const char *device_backend_name(const struct run_config *cfg) {
    int bf16 = cfg->model.compute_dtype == DTYPE_BF16;
    switch (cfg->device) {
    case DEVICE_CUDA: return bf16 ? "cuda-bf16" : "cuda";
    case DEVICE_CUDA_BF16: return "cuda-bf16";
    case DEVICE_CPU: break;
    }
    if (bf16) {
        err_set("%s", bf16_cpu_msg);
        return NULL;
    }
    return "cpu";
}

int device_select(const struct run_config *cfg) {
    const char *name = device_backend_name(cfg);
    if (!name) return -1;
    if (strcmp(kernels_selected()->name, name) == 0) return 0;
    static const char *names[] = {"cpu", "cuda", "cuda-bf16"};
    if (kernels_select(name))
        return err_wrap("device: %s%s", names[cfg->device],
                        cfg->device == DEVICE_CUDA && cfg->model.compute_dtype == DTYPE_BF16 ? " with compute_dtype: bfloat16" : "");
    return 0;
}

int device_check_compute(const struct run_config *cfg) {
    if (cfg->model.compute_dtype == DTYPE_BF16 && strcmp(kernels_selected()->name, "cuda-bf16") != 0)
        return err_set("%s", bf16_cpu_msg);
    return 0;
}
