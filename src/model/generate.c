/* generate: autoregressive decoding with a KV cache, for one sequence or a batch. The prompts go
 * through one model_forward as documents of a packed row (their post-RoPE k/v are the caches'
 * first rows); each step then runs the same layer math for one new position of every sequence
 * still generating, as the rows of one batch, against its cache (kernels' attention_decode). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "model/acts.h"
#include "model/model.h"

/* Backend memory (kernels.h) except host_logits and tmp, which pick() reads on the host. Sized
 * for nb rows (one per sequence still generating). */
struct decode_bufs {
    float *x, *ln, *q, *k, *v, *att, *gate, *up, *h, *xa, *logits, *rstd, *host_logits, *tmp;
    int32_t *tok, *pos;
};

static void linN(struct model *m, const struct linear *L, float *y, const float *x, int N, int acc, float *xa) {
    linear_base_forward(m, L, y, x, N, acc);
    if (!L->lora_a) return;
    m->k->matmul_forward(xa, x, L->lora_a, NULL, N, L->in, m->lora.rank, 1.0f, 0);
    m->k->matmul_forward(y, xa, L->lora_b, NULL, N, m->lora.rank, L->out, m->lora_scaling, 1);
}

/* One new token for each of N sequences (row j: token tok[j] at position pos[j] of sequence
 * seq[j], whose caches start at row coff[seq[j]] of each layer's slice of kc/vc, LT rows per
 * layer): appends their k/v to the caches and leaves row j's logits in host_logits + j*V. */
static void decode_step(struct model *m, struct decode_bufs *d, int N, const int32_t *tok, const int32_t *pos,
                        const int *seq, const int64_t *coff, float *kc, float *vc, int64_t LT) {
    const struct model_config *c = &m->cfg;
    const struct kernels *K = m->k;
    int C = c->hidden_size, F = c->intermediate_size, H = c->n_heads, KVH = c->n_kv_heads, HS = c->head_dim;
    int qd = H * HS, kvd = KVH * HS;
    float eps = c->rms_norm_eps, *rstd = d->rstd;
    K->mem_copy(d->tok, tok, sizeof(int32_t) * (size_t)N);
    K->mem_copy(d->pos, pos, sizeof(int32_t) * (size_t)N);
    K->embedding_forward(d->x, d->tok, m->wte, N, C);
    for (int l = 0; l < c->n_layers; l++) {
        struct layer *ly = &m->layers[l];
        float *kl = kc + (int64_t)l * LT * kvd, *vl = vc + (int64_t)l * LT * kvd;
        K->rmsnorm_forward(d->ln, rstd, d->x, ly->ln1, N, C, eps);
        linN(m, &ly->lin[LIN_Q], d->q, d->ln, N, 0, d->xa);
        linN(m, &ly->lin[LIN_K], d->k, d->ln, N, 0, d->xa);
        linN(m, &ly->lin[LIN_V], d->v, d->ln, N, 0, d->xa);
        if (c->qk_norm) {
            K->mem_copy(d->att, d->q, sizeof(float) * (size_t)N * qd); /* att is free until attention */
            K->rmsnorm_forward(d->q, rstd, d->att, ly->q_norm, (int64_t)N * H, HS, eps);
            K->mem_copy(d->att, d->k, sizeof(float) * (size_t)N * kvd);
            K->rmsnorm_forward(d->k, rstd, d->att, ly->k_norm, (int64_t)N * KVH, HS, eps);
        }
        K->rope_apply(d->q, d->pos, m->inv_freq, N, H, HS, 1);
        K->rope_apply(d->k, d->pos, m->inv_freq, N, KVH, HS, 1);
        for (int j = 0; j < N; j++) {
            int64_t row = coff[seq[j]] + pos[j];
            K->mem_copy(kl + row * kvd, d->k + (int64_t)j * kvd, sizeof(float) * kvd);
            K->mem_copy(vl + row * kvd, d->v + (int64_t)j * kvd, sizeof(float) * kvd);
            K->attention_decode(d->att + (int64_t)j * qd, d->q + (int64_t)j * qd, kl + coff[seq[j]] * kvd,
                                vl + coff[seq[j]] * kvd, pos[j] + 1, H, KVH, HS);
        }
        linN(m, &ly->lin[LIN_O], d->x, d->att, N, 1, d->xa);
        K->rmsnorm_forward(d->ln, rstd, d->x, ly->ln2, N, C, eps);
        linN(m, &ly->lin[LIN_GATE], d->gate, d->ln, N, 0, d->xa);
        linN(m, &ly->lin[LIN_UP], d->up, d->ln, N, 0, d->xa);
        K->swiglu_forward(d->h, d->gate, d->up, (int64_t)N * F);
        linN(m, &ly->lin[LIN_DOWN], d->x, d->h, N, 1, d->xa);
    }
    K->rmsnorm_forward(d->ln, rstd, d->x, m->norm, N, C, eps);
    K->matmul_forward(d->logits, d->ln, m->lm_head, NULL, N, C, c->vocab_size, 1.0f, 0);
    K->mem_copy(d->host_logits, d->logits, sizeof(float) * (size_t)N * c->vocab_size);
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

int model_generate_batch(struct model *m, const int32_t *const *prompts, const int *n_prompt, int nb, int32_t *const *out,
                         int *n_out, int max_new, const int32_t *eos_ids, int n_eos, float temperature, int top_k,
                         float top_p, uint64_t seed) {
    const struct model_config *c = &m->cfg;
    int C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, kvd = c->n_kv_heads * c->head_dim;
    int qd = c->n_heads * c->head_dim, L = c->n_layers, R = m->has_lora ? m->lora.rank : 1;
    int training = m->training;
    m->training = 0;
    const struct kernels *K = m->k;
    /* prompt i: rows poff[i].. of the packed prefill; cache rows coff[i].. (n_prompt + max_new) */
    int64_t *poff = xmalloc(sizeof(int64_t) * (size_t)(nb + 1)), *coff = xmalloc(sizeof(int64_t) * (size_t)(nb + 1));
    poff[0] = coff[0] = 0;
    for (int i = 0; i < nb; i++) poff[i + 1] = poff[i] + n_prompt[i], coff[i + 1] = coff[i] + n_prompt[i] + max_new;
    int64_t NP = poff[nb], LT = coff[nb];
    float *kc = K->mem_alloc(sizeof(float) * (size_t)(L * LT * kvd)), *vc = K->mem_alloc(sizeof(float) * (size_t)(L * LT * kvd));
    struct decode_bufs d;
#define DB(n) K->mem_alloc(sizeof(float) * (size_t)(n))
    d.x = DB(nb * C), d.ln = DB(nb * C), d.q = DB(nb * qd), d.k = DB(nb * kvd), d.v = DB(nb * kvd), d.att = DB(nb * qd);
    d.gate = DB((int64_t)nb * F), d.up = DB((int64_t)nb * F), d.h = DB((int64_t)nb * F), d.xa = DB(nb * R);
    d.logits = DB((int64_t)nb * V), d.rstd = DB(nb * c->n_heads);
    d.tok = K->mem_alloc(sizeof(int32_t) * (size_t)nb), d.pos = K->mem_alloc(sizeof(int32_t) * (size_t)nb);
#undef DB
    d.host_logits = xmalloc(sizeof(float) * (size_t)nb * V), d.tmp = xmalloc(sizeof(float) * V);
    /* Prefill: every prompt as one document of a single packed row (attention never crosses
     * documents), then each layer's k/v rows are copied into the prompt's cache. */
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)NP), *pos = xmalloc(sizeof(int32_t) * (size_t)NP);
    for (int i = 0; i < nb; i++)
        for (int t = 0; t < n_prompt[i]; t++) ids[poff[i] + t] = prompts[i][t], pos[poff[i] + t] = t;
    int recompute = m->recompute; /* the prefill must keep every layer's k/v */
    m->recompute = 0;
    model_forward(m, ids, pos, 1, (int)NP);
    m->recompute = recompute;
    for (int l = 0; l < L; l++)
        for (int i = 0; i < nb; i++) {
            size_t bytes = sizeof(float) * (size_t)n_prompt[i] * kvd;
            K->mem_copy(kc + (l * LT + coff[i]) * kvd, m->acts->k + (l * NP + poff[i]) * kvd, bytes);
            K->mem_copy(vc + (l * LT + coff[i]) * kvd, m->acts->v + (l * NP + poff[i]) * kvd, bytes);
        }
    for (int i = 0; i < nb; i++)
        K->matmul_forward(d.logits + (int64_t)i * V, m->acts->lnf + (poff[i + 1] - 1) * C, m->lm_head, NULL, 1, C, V, 1.0f, 0);
    K->mem_copy(d.host_logits, d.logits, sizeof(float) * (size_t)nb * V);
    /* decode: row j of a step is sequence seq[j], one of those still generating */
    uint64_t *rng = xmalloc(sizeof(uint64_t) * (size_t)nb);
    int *seq = xmalloc(sizeof(int) * (size_t)nb), na = nb;
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)nb), *tpos = xmalloc(sizeof(int32_t) * (size_t)nb);
    for (int i = 0; i < nb; i++) rng[i] = seed, seq[i] = i, n_out[i] = 0;
    while (na > 0) {
        int nn = 0;
        for (int j = 0; j < na; j++) {
            int i = seq[j];
            int32_t t = pick(d.host_logits + (int64_t)j * V, V, temperature, top_k, top_p, &rng[i], d.tmp);
            out[i][n_out[i]++] = t;
            int stop = n_out[i] >= max_new;
            for (int e = 0; e < n_eos; e++) stop |= t == eos_ids[e];
            if (!stop) seq[nn] = i, tok[nn] = t, tpos[nn] = n_prompt[i] + n_out[i] - 1, nn++;
        }
        na = nn;
        if (na) decode_step(m, &d, na, tok, tpos, seq, coff, kc, vc, LT);
    }
    m->training = training;
    free(ids), free(pos), free(rng), free(seq), free(tok), free(tpos), free(poff), free(coff);
    float *bufs[] = {kc, vc, d.x, d.ln, d.q, d.k, d.v, d.att, d.gate, d.up, d.h, d.xa, d.logits, d.rstd};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) K->mem_free(bufs[i]);
    K->mem_free(d.tok), K->mem_free(d.pos);
    free(d.host_logits), free(d.tmp);
    return 0;
}

int model_generate(struct model *m, const int32_t *prompt, int n_prompt, int32_t *out, int max_new,
                   const int32_t *eos_ids, int n_eos, float temperature, int top_k, float top_p, uint64_t seed) {
    int n = 0;
    if (max_new <= 0) return 0;
    model_generate_batch(m, &prompt, &n_prompt, 1, &out, &n, max_new, eos_ids, n_eos, temperature, top_k, top_p, seed);
    return n;
}
