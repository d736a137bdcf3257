/* common: the CUDA backend's device setup (checked once by kernels_get), its memory entries and
 * the GEMMs (cuBLAS, row-major wrappers like cpu_sgemm). Memory is CUDA managed memory so host
 * code (loaders, savers, LoRA merge) can touch weights in place after sync (kernels.h). */
#include "kernels/cuda/cuda.h"

static cublasHandle_t g_cublas;
static double *g_dscratch;

int init_cuda(void) {
    if (g_cublas) return 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        const char *why = e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0 devices";
        cudaGetLastError(); /* clear the error state */
        return err_set("no CUDA device: %s", why);
    }
    CUBLAS_CHECK(cublasCreate(&g_cublas));
    CUBLAS_CHECK(cublasSetPointerMode(g_cublas, CUBLAS_POINTER_MODE_HOST));
    CUDA_CHECK(cudaMalloc(&g_dscratch, sizeof(double)));
    return 0;
}

cublasHandle_t cuda_cublas(void) {
    CHECK(g_cublas, "CUDA backend used before kernels_get(\"cuda\") initialized it");
    return g_cublas;
}

double *cuda_dscratch(void) { return g_dscratch; }

void *mem_alloc_cuda(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMallocManaged(&p, bytes, cudaMemAttachGlobal);
    CHECK(e == cudaSuccess, "cudaMallocManaged of %zu bytes: %s", bytes, cudaGetErrorString(e));
    CUDA_CHECK(cudaMemset(p, 0, bytes));
    CUDA_CHECK(cudaDeviceSynchronize()); /* the memset is queued: finish it before the host writes */
    return p;
}

void mem_free_cuda(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void mem_copy_cuda(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void mem_zero_cuda(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemset(p, 0, bytes));
}

void sync_cuda(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

__global__ void scale_rows_kernel(float *C, int64_t M, int64_t Nn, int64_t ldc, float beta) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < M * Nn; i += (int64_t)gridDim.x * blockDim.x) {
        float *c = C + (i / Nn) * ldc + i % Nn;
        *c = beta == 0 ? 0 : beta * *c;
    }
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
void cuda_sgemm(int transa, int transb, int64_t M, int64_t Nn, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc, cublasComputeType_t compute) {
    if (M == 0 || Nn == 0) return;
    if (K == 0) {
        scale_rows_kernel<<<grid_for(M * Nn, 256), 256>>>(C, M, Nn, ldc, beta);
        LAUNCH_CHECK();
        return;
    }
    CHECK(M < INT32_MAX && Nn < INT32_MAX && K < INT32_MAX && lda < INT32_MAX && ldb < INT32_MAX && ldc < INT32_MAX,
          "GEMM dimensions past int32 (M=%ld N=%ld K=%ld)", (long)M, (long)Nn, (long)K);
    CUBLAS_CHECK(cublasGemmEx(cuda_cublas(), transb ? CUBLAS_OP_T : CUBLAS_OP_N, transa ? CUBLAS_OP_T : CUBLAS_OP_N,
                              (int)Nn, (int)M, (int)K, &alpha, B, CUDA_R_32F, (int)ldb, A, CUDA_R_32F, (int)lda, &beta,
                              C, CUDA_R_32F, (int)ldc, compute, CUBLAS_GEMM_DEFAULT));
}

__global__ void add_bias_kernel(float *out, const float *bias, int64_t N, int OC) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < N * OC; i += (int64_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}

/* dbias (OC) += alpha * column sums of dout (N,OC): threads over columns, blocks over row chunks. */
#define BIAS_ROWS 256
__global__ void bias_backward_kernel(float *dbias, const float *dout, int64_t N, int OC, float alpha) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    int64_t n0 = (int64_t)blockIdx.y * BIAS_ROWS, n1 = n0 + BIAS_ROWS < N ? n0 + BIAS_ROWS : N;
    double s = 0;
    for (int64_t n = n0; n < n1; n++) s += dout[n * OC + o];
    atomicAdd(dbias + o, alpha * (float)s);
}

void matmul_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int IC,
                         int OC, float alpha, int acc, cublasComputeType_t compute) {
    cuda_sgemm(0, 1, N, OC, IC, alpha, inp, IC, weight, IC, acc ? 1.0f : 0.0f, out, OC, compute);
    if (bias && N > 0) {
        add_bias_kernel<<<grid_for(N * OC, 256), 256>>>(out, bias, N, OC);
        LAUNCH_CHECK();
    }
}

void matmul_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int64_t N, int IC, int OC, float alpha, int acc,
                          cublasComputeType_t compute) {
    if (dinp) cuda_sgemm(0, 0, N, IC, OC, alpha, dout, OC, weight, IC, acc ? 1.0f : 0.0f, dinp, IC, compute);
    if (dweight) cuda_sgemm(1, 0, OC, IC, N, alpha, dout, OC, inp, IC, 1.0f, dweight, IC, compute);
    if (dbias && N > 0) {
        CHECK((N + BIAS_ROWS - 1) / BIAS_ROWS <= 65535, "bias gradient over %ld rows: too many", (long)N);
        dim3 grid((unsigned)((OC + 255) / 256), (unsigned)((N + BIAS_ROWS - 1) / BIAS_ROWS));
        bias_backward_kernel<<<grid, 256>>>(dbias, dout, N, OC, alpha);
        LAUNCH_CHECK();
    }
}
