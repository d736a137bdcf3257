/* acts: the activation buffers of model.c, shared with generate.c (its KV-cache prefill
 * reads the saved k/v). Private to src/model. */
#pragma once
#include <stdint.h>

struct model;
struct linear;

struct acts {
    int64_t cap; /* tokens the buffers hold */
    int slots;
    int ce_chunk; /* rows per LM-head chunk (ce_scratch holds ce_chunk * (V + 2C)) */   /* per-layer activation slots: L, or 1 when recomputing */
    int32_t *ids, *pos;
    /* saved for backward, one slice per layer */
    float *x;                       /* (L+1, N, C) residual stream entering each layer */
    float *ln1, *rstd1, *xmid, *ln2, *rstd2;
    float *q, *k, *v, *qpre, *kpre, *qrstd, *krstd, *att, *lse;
    float *gate, *up, *h;
    float *xa;                      /* (L, N_LIN, N, R) LoRA A outputs */
    float *lnf, *rstdf;
    /* backward scratch, shared by all layers */
    float *dx, *dln, *dq, *dk, *dv, *dq2, *dk2, *datt, *dgate, *dup, *dh, *dxa, *tmp1, *tmp2, *ce_scratch;
};

/* y (N,out) (= or +=) x W^T + b through the float32 or bf16 weight of L (no LoRA). */
void linear_base_forward(struct model *m, const struct linear *L, float *y, const float *x, int64_t N, int acc);
