/* kernels: the forward/backward operations of the decoder, behind one backend table.
 * Shape glossary: B batch, T seq, N = B*T tokens, C hidden, H heads, KVH kv heads, HS head size,
 * F ffn, V vocab, L layers, R LoRA rank, IC/OC in/out features of a linear layer.
 * Layouts are row-major; a linear weight is (OC, IC) as in PyTorch (y = x W^T + b).
 * Contract: parameter gradients accumulate (+=); activation gradients overwrite (=) unless
 * the function's `acc` flag says accumulate. Kernels never allocate (except noted scratch
 * through arguments), do I/O or log. Each kernel has a scalar double-precision reference in
 * kernels/ref.h: the spec, used by the tests (fast vs ref, finite differences). Math: docs/model.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Positions: pos[n] is the position of token n inside its document; a document starts where
 * pos == 0, so token n attends to keys n - pos[n] .. n of its row (causal, per-document). */

/* Memory: every pointer a kernel receives lives in the backend's memory (mem_alloc), except
 * lm_head_ce's targets (host or backend). Backend memory is host-visible (CPU: host memory; CUDA:
 * managed memory), so loaders and savers touch weights in place, but work may be queued: the host
 * touches backend memory only after sync() (mem_copy and the entries returning a value wait). */
struct kernels {
    const char *name;
    /* Checks the backend can run here (device present); NULL when always. -1 + err_set if not. */
    int (*init)(void);
    /* zero-filled bytes of backend memory, ready on return; dies on exhaustion (setup time only) */
    void *(*mem_alloc)(size_t bytes);
    void (*mem_free)(void *p);
    /* dst = src (bytes); each side host or backend memory; waits until done */
    void (*mem_copy)(void *dst, const void *src, size_t bytes);
    void (*mem_zero)(void *p, size_t bytes);
    /* waits for all queued work */
    void (*sync)(void);
    /* out (N,C) = wte[ids] */
    void (*embedding_forward)(float *out, const int32_t *ids, const float *wte, int64_t N, int C);
    /* dwte (V,C) += scatter of dout (N,C) */
    void (*embedding_backward)(float *dwte, const float *dout, const int32_t *ids, int64_t N, int C);
    /* out (N,C) = inp / rms(inp) * weight; rstd (N) saved */
    void (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int C,
                            float eps);
    /* dinp (N,C) (= or += by acc); dweight (C) += (skipped if NULL) */
    void (*rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                             const float *rstd, int64_t N, int C, int acc);
    /* out (N,OC) = (acc ? out : 0) + alpha * inp (N,IC) @ weight (OC,IC)^T + bias (OC, may be NULL) */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int IC,
                           int OC, float alpha, int acc);
    /* dinp (N,IC) = (acc ? dinp : 0) + alpha * dout @ weight (skipped if dinp NULL);
     * dweight (OC,IC) += alpha * dout^T @ inp; dbias (OC) += alpha * sum_n dout (each skipped if NULL) */
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int64_t N, int IC, int OC, float alpha, int acc);
    /* The same two with a bf16 weight (OC,IC) (a frozen base kept in bf16): converted to float32
     * wchunk rows at a time through scratch (wchunk*IC floats), so results equal the float32
     * kernels on the bf16-rounded weight. backward: dinp only (a bf16 weight is never trained). */
    void (*matmul_forward_bf16)(float *out, const float *inp, const uint16_t *weight, const float *bias, int64_t N,
                                int IC, int OC, float alpha, int acc, float *scratch, int wchunk);
    void (*matmul_backward_bf16)(float *dinp, const float *dout, const uint16_t *weight, int64_t N, int IC, int OC,
                                 float alpha, int acc, float *scratch, int wchunk);
    /* In place on x (N, nh, HS): rotate pairs (i, i+HS/2) by pos[n] * inv_freq[i] (HF rotate_half).
     * sign = +1 forward, -1 backward (the transpose rotation, applied to the gradient). */
    void (*rope_apply)(float *x, const int32_t *pos, const float *inv_freq, int64_t N, int nh, int HS, int sign);
    /* out (N,H*HS), lse (N,H) = causal per-document GQA softmax(q k^T / sqrt(HS)) v;
     * q (N,H*HS), k, v (N,KVH*HS); N = B*T */
    void (*attention_forward)(float *out, float *lse, const float *q, const float *k, const float *v,
                              const int32_t *pos, int B, int T, int H, int KVH, int HS);
    /* dq (N,H*HS), dk, dv (N,KVH*HS) overwritten */
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v, const int32_t *pos,
                               int B, int T, int H, int KVH, int HS);
    /* One new query per head at position Tk-1 against a KV cache: out (H*HS) = softmax(q k^T/sqrt(HS)) v
     * over all Tk cached keys; q (H*HS), kc, vc (Tk, KVH*HS). For generation. */
    void (*attention_decode)(float *out, const float *q, const float *kc, const float *vc, int Tk, int H, int KVH,
                             int HS);
    /* h = silu(gate) * up, n elements */
    void (*swiglu_forward)(float *h, const float *gate, const float *up, int64_t n);
    /* dgate, dup overwritten */
    void (*swiglu_backward)(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n);
    /* Cross-entropy of logits = h (N,C) @ w (V,C)^T against targets (N; -100 = ignored), computed
     * in row chunks through scratch (chunk*(V+2*C) floats), never the whole (N,V) logits. Returns the SUM
     * of per-token losses; if dh != NULL writes dh (N,C) = grad_scale * dloss/dh and, if dw != NULL,
     * dw (V,C) += grad_scale * dloss/dw. */
    double (*lm_head_ce)(float *dh, float *dw, const float *h, const float *w, const int32_t *targets, int64_t N,
                         int C, int V, float grad_scale, float *scratch, int chunk);
    /* out (n) = (acc ? out : 0) + (rng_hash(seed + i) < p * 2^64 ? 0 : x / (1 - p)); out may be x.
     * The mask is regenerated from (seed, i), so backward applies the same call to the gradient. */
    void (*dropout)(float *out, const float *x, int64_t n, uint64_t seed, float p, int acc);
    /* torch.optim.AdamW on a flat buffer (w, m, v, g (n)): w *= decay; m += (g - m)(1 - b1);
     * v = b2 v + (1 - b2) g^2; w -= step_size * m / (sqrt(v) / bc2_sqrt + eps) */
    void (*adamw)(float *w, float *m, float *v, const float *g, int64_t n, float decay, float b1, float b2,
                  float step_size, float bc2_sqrt, float eps);
    /* sum of x^2 (n) accumulated in double */
    double (*sumsq)(const float *x, int64_t n);
    /* x (n) *= s */
    void (*scale)(float *x, int64_t n, float s);
};

extern const struct kernels kernels_cpu;

/* The backend named "cpu", "cuda" (fp32 GEMMs) or "cuda-bf16" (GEMMs with bf16 inputs, fp32
 * accumulation); NULL + err_set when unknown, not built in (make CUDA=1) or no device. */
const struct kernels *kernels_get(const char *name);
/* The process's backend: models, optimizers and gradient helpers created afterwards use it
 * (one device per process, like the MPI rank). Default "cpu". */
int kernels_select(const char *name);
/* Same with a table directly (tests: instrumented backends). */
void kernels_use(const struct kernels *k);
const struct kernels *kernels_selected(void);

#ifdef __cplusplus
}
#endif
