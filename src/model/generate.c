/* generate: autoregressive decoding for one sequence with a KV cache. The prompt goes
 * through model_forward (its post-RoPE k/v are the cache's first rows); each new token runs
 * the same layer math for one position against the cache (kernels' attention_decode). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "model/acts.h"
#include "model/model.h"

/* Backend memory (kernels.h) except host_logits and tmp, which pick() reads on the host. */
struct decode_bufs {
    float *x, *ln, *q, *k, *v, *att, *gate, *up, *h, *xa, *logits, *rstd, *host_logits, *tmp;
    int32_t *tok, *pos;
};

static void lin1(struct model *m, const struct linear *L, float *y, const float *x, int acc, float *xa) {
    linear_base_forward(m, L, y, x, 1, acc);
    if (!L->lora_a) return;
    m->k->matmul_forward(xa, x, L->lora_a, NULL, 1, L->in, m->lora.rank, 1.0f, 0);
    m->k->matmul_forward(y, xa, L->lora_b, NULL, 1, m->lora.rank, L->out, m->lora_scaling, 1);
}

/* One token at position p: appends its k/v to the caches and leaves logits in d->logits. */
static void decode_step(struct model *m, struct decode_bufs *d, int32_t tok, int p, float *kc, float *vc, int Tmax) {
    const struct model_config *c = &m->cfg;
    const struct kernels *K = m->k;
    int C = c->hidden_size, F = c->intermediate_size, H = c->n_heads, KVH = c->n_kv_heads, HS = c->head_dim;
    int kvd = KVH * HS;
    float eps = c->rms_norm_eps, *rstd = d->rstd;
    int32_t pos = p;
    K->mem_copy(d->tok, &tok, sizeof tok);
    K->mem_copy(d->pos, &pos, sizeof pos);
    K->embedding_forward(d->x, d->tok, m->wte, 1, C);
    for (int l = 0; l < c->n_layers; l++) {
        struct layer *ly = &m->layers[l];
        float *kl = kc + (int64_t)l * Tmax * kvd, *vl = vc + (int64_t)l * Tmax * kvd;
        K->rmsnorm_forward(d->ln, rstd, d->x, ly->ln1, 1, C, eps);
        lin1(m, &ly->lin[LIN_Q], d->q, d->ln, 0, d->xa);
        lin1(m, &ly->lin[LIN_K], d->k, d->ln, 0, d->xa);
        lin1(m, &ly->lin[LIN_V], vl + (int64_t)p * kvd, d->ln, 0, d->xa);
        if (c->qk_norm) {
            K->mem_copy(d->att, d->q, sizeof(float) * H * HS); /* att is free until attention */
            K->rmsnorm_forward(d->q, rstd, d->att, ly->q_norm, H, HS, eps);
            K->mem_copy(d->att, d->k, sizeof(float) * kvd);
            K->rmsnorm_forward(d->k, rstd, d->att, ly->k_norm, KVH, HS, eps);
        }
        K->rope_apply(d->q, d->pos, m->inv_freq, 1, H, HS, 1);
        K->rope_apply(d->k, d->pos, m->inv_freq, 1, KVH, HS, 1);
        K->mem_copy(kl + (int64_t)p * kvd, d->k, sizeof(float) * kvd);
        K->attention_decode(d->att, d->q, kl, vl, p + 1, H, KVH, HS);
        lin1(m, &ly->lin[LIN_O], d->x, d->att, 1, d->xa);
        K->rmsnorm_forward(d->ln, rstd, d->x, ly->ln2, 1, C, eps);
        lin1(m, &ly->lin[LIN_GATE], d->gate, d->ln, 0, d->xa);
        lin1(m, &ly->lin[LIN_UP], d->up, d->ln, 0, d->xa);
        K->swiglu_forward(d->h, d->gate, d->up, F);
        lin1(m, &ly->lin[LIN_DOWN], d->x, d->h, 1, d->xa);
    }
    K->rmsnorm_forward(d->ln, rstd, d->x, m->norm, 1, C, eps);
    K->matmul_forward(d->logits, d->ln, m->lm_head, NULL, 1, C, c->vocab_size, 1.0f, 0);
    K->mem_copy(d->host_logits, d->logits, sizeof(float) * c->vocab_size);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Greedy when temperature <= 0 (first maximum, as torch.argmax); else softmax(logits / T)
 * restricted to the top_k largest and the smallest prefix with probability >= top_p. */
static int32_t pick(float *logits, int V, float temperature, int top_k, float top_p, uint64_t *rng, float *tmp) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0) return best;
    float mx = logits[best];
    for (int i = 0; i < V; i++) tmp[i] = logits[i];
    qsort(tmp, (size_t)V, sizeof(float), cmp_desc);
    float cut = -INFINITY;
    if (top_k > 0 && top_k < V) cut = tmp[top_k - 1];
    if (top_p > 0 && top_p < 1) {
        double z = 0, acc = 0;
        for (int i = 0; i < V; i++) z += exp((tmp[i] - mx) / temperature);
        for (int i = 0; i < V; i++) {
            acc += exp((tmp[i] - mx) / temperature) / z;
            if (acc >= top_p) {
                if (tmp[i] > cut) cut = tmp[i];
                break;
            }
        }
    }
    double z = 0;
    for (int i = 0; i < V; i++) z += logits[i] >= cut ? exp((logits[i] - mx) / temperature) : 0;
    double r = rng_uniform(rng) * z, acc = 0;
    for (int i = 0; i < V; i++) {
        if (logits[i] < cut) continue;
        acc += exp((logits[i] - mx) / temperature);
        if (acc >= r) return i;
    }
    return best;
}

int model_generate(struct model *m, const int32_t *prompt, int n_prompt, int32_t *out, int max_new,
                   const int32_t *eos_ids, int n_eos, float temperature, int top_k, float top_p, uint64_t seed) {
    const struct model_config *c = &m->cfg;
    int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, kvd = c->n_kv_heads * c->head_dim;
    int qd = c->n_heads * c->head_dim, L = c->n_layers, Tmax = n_prompt + max_new;
    int training = m->training;
    m->training = 0;
    const struct kernels *K = m->k;
    float *kc = K->mem_alloc(sizeof(float) * (size_t)L * Tmax * kvd), *vc = K->mem_alloc(sizeof(float) * (size_t)L * Tmax * kvd);
    struct decode_bufs d;
#define DB(n) K->mem_alloc(sizeof(float) * (size_t)(n))
    d.x = DB(C), d.ln = DB(C), d.q = DB(qd), d.k = DB(kvd), d.v = NULL, d.att = DB(qd), d.gate = DB(F), d.up = DB(F);
    d.h = DB(F), d.xa = DB(m->has_lora ? m->lora.rank : 1), d.logits = DB(V), d.rstd = DB(c->n_heads);
    d.tok = K->mem_alloc(sizeof(int32_t)), d.pos = K->mem_alloc(sizeof(int32_t));
#undef DB
    d.host_logits = xmalloc(sizeof(float) * V), d.tmp = xmalloc(sizeof(float) * V);
    /* Prefill through the batched forward, then copy each layer's k/v into the cache. */
    int32_t *pos = xmalloc(sizeof(int32_t) * n_prompt);
    for (int i = 0; i < n_prompt; i++) pos[i] = i;
    int recompute = m->recompute; /* the prefill must keep every layer's k/v */
    m->recompute = 0;
    model_forward(m, prompt, pos, 1, n_prompt);
    m->recompute = recompute;
    for (int l = 0; l < L; l++) {
        K->mem_copy(kc + (int64_t)l * Tmax * kvd, m->acts->k + (int64_t)l * n_prompt * kvd, sizeof(float) * n_prompt * kvd);
        K->mem_copy(vc + (int64_t)l * Tmax * kvd, m->acts->v + (int64_t)l * n_prompt * kvd, sizeof(float) * n_prompt * kvd);
    }
    K->matmul_forward(d.logits, m->acts->lnf + (int64_t)(n_prompt - 1) * C, m->lm_head, NULL, 1, C, V, 1.0f, 0);
    K->mem_copy(d.host_logits, d.logits, sizeof(float) * V);
    uint64_t rng = seed;
    int n = 0;
    while (n < max_new) {
        int32_t tok = pick(d.host_logits, V, temperature, top_k, top_p, &rng, d.tmp);
        out[n++] = tok;
        int stop = 0;
        for (int e = 0; e < n_eos; e++) stop |= tok == eos_ids[e];
        if (stop || n == max_new) break;
        decode_step(m, &d, tok, n_prompt + n - 1, kc, vc, Tmax);
    }
    m->training = training;
    free(pos);
    float *bufs[] = {kc, vc, d.x, d.ln, d.q, d.k, d.att, d.gate, d.up, d.h, d.xa, d.logits, d.rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) K->mem_free(bufs[i]);
    K->mem_free(d.tok), K->mem_free(d.pos);
    free(d.host_logits), free(d.tmp);
    return n;
}
