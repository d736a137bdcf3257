/* tp: tensor parallelism for model.c; see tp.h and docs/tp.md. Host loops here (embedding,
 * cross-entropy row statistics, gradient sums) read backend memory after sync(), as loaders
 * do (kernels.h: backend memory is host-visible). The cross-entropy statistics are scalar loops
 * (float exp, double sums): a vectorized backend entry would be the next step for speed. */
#include "model/tp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "io/safetensors.h"
#include "model/acts.h"
#include "model/model.h"

#define CE_ROWS 1024 /* the largest LM-head chunk (model.c's ce_chunk) */

static int splits(const struct model_config *c, int t) {
    return c->n_heads % t == 0 && (c->n_kv_heads % t == 0 || t % c->n_kv_heads == 0) &&
           c->intermediate_size % t == 0 && c->vocab_size % t == 0;
}

int tp_check_config(const struct model_config *c, int tp) {
    if (tp >= 1 && splits(c, tp)) return 0;
    char allowed[256] = "";
    size_t n = 0;
    for (int t = 1; t <= c->n_heads && n < sizeof allowed - 16; t++)
        if (splits(c, t)) n += (size_t)snprintf(allowed + n, sizeof allowed - n, "%s%d", n ? ", " : "", t);
    return err_set("tensor parallelism: model_parallel %d cannot split this model: num_attention_heads %d, "
                   "intermediate_size %d and vocab_size %d must be multiples of it and num_key_value_heads %d a "
                   "multiple or a divisor of it; allowed model_parallel: %s",
                   tp, c->n_heads, c->intermediate_size, c->vocab_size, c->n_kv_heads, allowed);
}

/* ---- slices ---- */

int tp_read_param(const struct safetensors *st, const char *name, struct param *p) {
    if (p->tp_dim < 0) return safetensors_read_f32(st, name, p->data, p->full_shape, p->n_dims);
    int64_t cols = p->n_dims == 2 ? p->shape[1] : 1;
    if (p->tp_dim == 0) return safetensors_read_f32_block(st, name, p->data, p->full_shape, p->n_dims, p->tp_off,
                                                          p->shape[0], 0, cols);
    return safetensors_read_f32_block(st, name, p->data, p->full_shape, p->n_dims, 0, p->shape[0], p->tp_off, cols);
}

int tp_read_param_range(const struct safetensors *st, const char *name, const struct param *p, int64_t first,
                        int64_t count, float *out) {
    if (p->tp_dim < 0) return safetensors_read_f32_range(st, name, out, p->full_shape, p->n_dims, first, count);
    struct param q = *p;
    q.data = xmalloc(sizeof(float) * (size_t)q.numel);
    int rc = tp_read_param(st, name, &q);
    if (rc == 0) memcpy(out, q.data + first, sizeof(float) * (size_t)count);
    free(q.data);
    return rc;
}

/* dst (rows, cols) <- the block of src (.., width) at (row0, col0) */
static void copy_block(float *dst, const float *src, int64_t width, int64_t row0, int64_t col0, int64_t rows,
                       int64_t cols) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * cols, src + (row0 + r) * width + col0, sizeof(float) * cols);
}

void tp_take_slice(float *dst, const float *full, const struct param *p) {
    int64_t cols = p->n_dims == 2 ? p->shape[1] : 1, width = p->n_dims == 2 ? p->full_shape[1] : 1;
    if (p->tp_dim < 0) memcpy(dst, full, sizeof(float) * p->numel);
    else if (p->tp_dim == 0) copy_block(dst, full, width, p->tp_off, 0, p->shape[0], cols);
    else copy_block(dst, full, width, 0, p->tp_off, p->shape[0], cols);
}

float *tp_gather_param(const struct model *m, const struct param *p) {
    int64_t full_n = p->n_dims == 2 ? p->full_shape[0] * p->full_shape[1] : p->full_shape[0];
    float *full = xmalloc(sizeof(float) * (size_t)full_n);
    if (p->tp_dim < 0 || !model_tp_on(m)) {
        memcpy(full, p->data, sizeof(float) * (size_t)p->numel);
        return full;
    }
    int T = m->tp.size;
    float *all = xmalloc(sizeof(float) * (size_t)p->numel * (size_t)T);
    int64_t *offs = xmalloc(sizeof(int64_t) * (size_t)T);
    m->tp.allgather(m->tp.ctx, p->data, all, sizeof(float) * (size_t)p->numel);
    m->tp.allgather(m->tp.ctx, &p->tp_off, offs, sizeof(int64_t));
    int64_t cols = p->n_dims == 2 ? p->shape[1] : 1, width = p->n_dims == 2 ? p->full_shape[1] : 1;
    for (int r = 0; r < T; r++) { /* replicas (kv heads) write the same block */
        const float *src = all + (int64_t)r * p->numel;
        for (int64_t i = 0; i < p->shape[0]; i++) {
            int64_t row = p->tp_dim == 0 ? offs[r] + i : i, col = p->tp_dim == 1 ? offs[r] : 0;
            memcpy(full + row * width + col, src + i * cols, sizeof(float) * cols);
        }
    }
    free(all);
    free(offs);
    return full;
}

/* ---- collectives ---- */

void tp_allreduce(const struct model *m, float *x, int64_t n) {
    if (!model_tp_on(m)) return;
    m->k->sync();
    m->tp.allreduce_sum_f32(m->tp.ctx, x, n);
}

void tp_allreduce_f64(const struct model *m, double *x, int64_t n) {
    if (model_tp_on(m)) m->tp.allreduce_sum_f64(m->tp.ctx, x, n);
}

int tp_agree(const struct model *m, int rc, const char *what) {
    if (!model_tp_on(m)) return rc;
    double bad = rc != 0;
    m->tp.allreduce_sum_f64(m->tp.ctx, &bad, 1);
    if (bad > 0 && rc == 0) return err_set("%s: tensor-parallel rank 0 failed to write it", what);
    return bad > 0 ? -1 : 0;
}

/* ---- vocab-parallel embedding ---- */

void tp_embedding_forward(struct model *m, float *out, const int32_t *ids, int64_t N) {
    int C = m->cfg.hidden_size;
    m->k->sync();
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) {
        int64_t v = (int64_t)ids[n] - m->vocab_off;
        if (v >= 0 && v < m->vocab_l) memcpy(out + n * C, m->wte + v * C, sizeof(float) * C);
        else memset(out + n * C, 0, sizeof(float) * C);
    }
    tp_allreduce(m, out, N * C); /* one rank holds each row: the sum is exact */
}

void tp_embedding_backward(struct model *m, float *dwte, const float *dout, const int32_t *ids, int64_t N) {
    int C = m->cfg.hidden_size;
    m->k->sync();
    for (int64_t n = 0; n < N; n++) {
        int64_t v = (int64_t)ids[n] - m->vocab_off;
        if (v < 0 || v >= m->vocab_l) continue;
        for (int c = 0; c < C; c++) dwte[v * C + c] += dout[n * C + c];
    }
}

/* ---- vocab-parallel cross-entropy ---- */

double tp_lm_head_ce(struct model *m, float *dh, float *dw, const float *h, const float *w, const int32_t *targets,
                     int64_t N, float grad_scale) {
    const struct kernels *K = m->k;
    struct acts *a = m->acts;
    int C = m->cfg.hidden_size, V = m->vocab_l, T = m->tp.size, chunk = a->ce_chunk;
    int64_t v0 = m->vocab_off;
    CHECK(chunk <= CE_ROWS, "LM-head chunk %d over %d rows", chunk, CE_ROWS);
    float *logits = a->ce_scratch, *hg = logits + (int64_t)chunk * V, *dhg = hg + (int64_t)chunk * C;
    double *st = m->tp_stats, *all = st + 3 * CE_ROWS, total = 0;
    int idx[CE_ROWS];
    K->sync();
    if (dh) memset(dh, 0, sizeof(float) * N * C);
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        int rows = 0; /* only rows with a target; the same on every rank */
        for (int64_t n = n0; n < N && n < n0 + chunk; n++)
            if (targets[n] >= 0) idx[rows++] = (int)(n - n0);
        if (rows == 0) continue;
        for (int i = 0; i < rows; i++) memcpy(hg + (int64_t)i * C, h + (n0 + idx[i]) * C, sizeof(float) * C);
        K->matmul_forward(logits, hg, w, NULL, rows, C, V, 1.0f, 0);
        K->sync();
        /* this rank's max, sum of exp(logit - max) and target logit (0 if another rank's) */
#pragma omp parallel for
        for (int i = 0; i < rows; i++) {
            const float *l = logits + (int64_t)i * V;
            float mx = l[0];
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            double z = 0;
            for (int v = 0; v < V; v++) z += expf(l[v] - mx); /* float exp, double sum, as lm_head_ce */
            int64_t t = targets[n0 + idx[i]] - v0;
            st[3 * i] = mx, st[3 * i + 1] = z, st[3 * i + 2] = t >= 0 && t < V ? l[t] : 0.0;
        }
        m->tp.allgather(m->tp.ctx, st, all, sizeof(double) * 3 * (size_t)rows);
        for (int i = 0; i < rows; i++) { /* the same arithmetic, in rank order, on every rank */
            double mx = all[3 * i], z = 0, tl = 0;
            for (int r = 1; r < T; r++) mx = fmax(mx, all[(int64_t)r * 3 * rows + 3 * i]);
            for (int r = 0; r < T; r++) {
                const double *s = all + (int64_t)r * 3 * rows + 3 * i;
                z += s[1] * exp(s[0] - mx);
                tl += s[2];
            }
            st[3 * i] = mx + log(z); /* log-sum-exp over the whole vocabulary */
            total += st[3 * i] - tl;
        }
        if (!dh) continue;
#pragma omp parallel for
        for (int i = 0; i < rows; i++) { /* logits become grad_scale * (softmax - onehot) */
            float *l = logits + (int64_t)i * V;
            double lse = st[3 * i];
            for (int v = 0; v < V; v++) l[v] = grad_scale * expf((float)((double)l[v] - lse));
            int64_t t = targets[n0 + idx[i]] - v0;
            if (t >= 0 && t < V) l[t] -= grad_scale;
        }
        K->matmul_backward(dhg, dw, NULL, logits, hg, w, rows, C, V, 1.0f, 0);
        K->sync();
        for (int i = 0; i < rows; i++) memcpy(dh + (n0 + idx[i]) * C, dhg + (int64_t)i * C, sizeof(float) * C);
    }
    if (dh) tp_allreduce(m, dh, N * C);
    return total;
}

/* ---- gradients that are partial on each rank ---- */

/* The tables that have gradients: the base (full fine-tuning) and the adapter. */
static int grad_tables(const struct model *m, struct param **tabs, int *ns) {
    int k = 0;
    if (m->base_trained) tabs[k] = m->params, ns[k++] = m->n_params;
    if (m->has_lora) tabs[k] = m->lora_params, ns[k++] = m->n_lora_params;
    return k;
}

void tp_plan_scratch(struct model *m) {
    struct param *tabs[2];
    int ns[2], nt = grad_tables(m, tabs, ns);
    int64_t most = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        int64_t n = 0;
        for (int t = 0; t < nt; t++)
            for (int i = 0; i < ns[t]; i++)
                if (tabs[t][i].layer == l && tabs[t][i].tp_sum != TP_SUM_NONE) n += tabs[t][i].numel;
        most = n > most ? n : most;
    }
    free(m->tp_save);
    free(m->tp_buf);
    m->tp_save = xmalloc(sizeof(float) * (size_t)(most ? most : 1));
    m->tp_buf = xmalloc(sizeof(float) * (size_t)(most ? most : 1) * (size_t)(m->tp.size + 1));
    if (!m->tp_stats) m->tp_stats = xmalloc(sizeof(double) * 3 * CE_ROWS * (size_t)(m->tp.size + 1));
}

void tp_partial_begin(struct model *m, int layer) {
    struct param *tabs[2];
    int ns[2], nt = grad_tables(m, tabs, ns);
    int64_t off = 0;
    m->k->sync();
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < ns[t]; i++) {
            struct param *p = &tabs[t][i];
            if (p->layer != layer || p->tp_sum == TP_SUM_NONE) continue;
            memcpy(m->tp_save + off, p->grad, sizeof(float) * p->numel);
            memset(p->grad, 0, sizeof(float) * p->numel);
            off += p->numel;
        }
}

/* The new contributions of every rank are gathered and summed in rank order (over all ranks,
 * or over the ranks sharing the key/value head), so every rank adds bitwise the same sum. */
void tp_partial_end(struct model *m, int layer) {
    struct param *tabs[2];
    int ns[2], nt = grad_tables(m, tabs, ns), T = m->tp.size;
    int64_t n = 0;
    m->k->sync();
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < ns[t]; i++) {
            struct param *p = &tabs[t][i];
            if (p->layer != layer || p->tp_sum == TP_SUM_NONE) continue;
            memcpy(m->tp_buf + n, p->grad, sizeof(float) * p->numel);
            n += p->numel;
        }
    if (n == 0) return;
    float *all = m->tp_buf + n;
    m->tp.allgather(m->tp.ctx, m->tp_buf, all, sizeof(float) * (size_t)n);
    int g0 = m->tp.rank / m->kv_rep * m->kv_rep;
    int64_t off = 0;
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < ns[t]; i++) {
            struct param *p = &tabs[t][i];
            if (p->layer != layer || p->tp_sum == TP_SUM_NONE) continue;
            int r0 = p->tp_sum == TP_SUM_ALL ? 0 : g0, r1 = p->tp_sum == TP_SUM_ALL ? T : g0 + m->kv_rep;
            for (int64_t j = 0; j < p->numel; j++) {
                float s = 0;
                for (int r = r0; r < r1; r++) s += all[(int64_t)r * n + off + j];
                p->grad[j] = m->tp_save[off + j] + s;
            }
            off += p->numel;
        }
}

double tp_grad_sumsq(struct model *m, const struct param *params, int n_params) {
    double ss = 0;
    for (int i = 0; i < n_params; i++)
        if (params[i].tp_count) ss += m->k->sumsq(params[i].grad, params[i].numel);
    tp_allreduce_f64(m, &ss, 1);
    return ss;
}

double tp_shard_sumsq(const struct param *params, int n_params, int64_t lo, int64_t hi, const float *g) {
    double ss = 0;
    int64_t off = 0;
    for (int i = 0; i < n_params; off += params[i++].numel) {
        int64_t a = off > lo ? off : lo, b = off + params[i].numel < hi ? off + params[i].numel : hi;
        if (!params[i].tp_count || a >= b) continue;
        for (int64_t j = a; j < b; j++) ss += (double)g[j - lo] * g[j - lo];
    }
    return ss;
}
