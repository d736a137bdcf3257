/* backend: finds a kernel table by name and holds the process's selected backend (kernels.h).
 * The CUDA tables exist only in builds made with `make CUDA=1` (which defines CSFT_CUDA). */
#include <string.h>

#include "core/err.h"
#include "kernels/kernels.h"

#ifdef CSFT_CUDA
extern const struct kernels kernels_cuda, kernels_cuda_bf16;
#endif

static const struct kernels *selected = &kernels_cpu;

const struct kernels *kernels_get(const char *name) {
    const struct kernels *k = NULL;
    if (strcmp(name, "cpu") == 0) return &kernels_cpu;
#ifdef CSFT_CUDA
    if (strcmp(name, "cuda") == 0) k = &kernels_cuda;
    if (strcmp(name, "cuda-bf16") == 0) k = &kernels_cuda_bf16;
#else
    if (strcmp(name, "cuda") == 0 || strcmp(name, "cuda-bf16") == 0) {
        err_set("device \"%s\": this csft was built without CUDA (rebuild with make CUDA=1)", name);
        return NULL;
    }
#endif
    if (!k) {
        err_set("unknown device \"%s\" (expected cpu, cuda or cuda-bf16)", name);
        return NULL;
    }
    if (k->init && k->init()) {
        err_wrap("device \"%s\"", name);
        return NULL;
    }
    return k;
}

int kernels_select(const char *name) {
    const struct kernels *k = kernels_get(name);
    if (!k) return -1;
    selected = k;
    return 0;
}

void kernels_use(const struct kernels *k) { selected = k; }

const struct kernels *kernels_selected(void) { return selected; }
