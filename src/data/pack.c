/* pack: see pack.h. */
#include "data/pack.h"

#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"

#define WINDOW 4096

static void shuffle(int64_t *a, int64_t n, uint64_t *rng) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(rng) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

static const struct dataset *sort_ds;
static int by_len_desc(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int64_t lx = dataset_len(sort_ds, x), ly = dataset_len(sort_ds, y);
    return lx != ly ? (lx < ly ? 1 : -1) : (x > y) - (x < y);
}

void row_plan_build(struct row_plan *p, const struct dataset *ds, const struct pack_options *opt, int64_t epoch) {
    memset(p, 0, sizeof *p);
    int64_t n = ds->n;
    int64_t *order = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) order[i] = i;
    uint64_t rng = rng_hash(opt->seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch + 1);
    if (opt->shuffle) shuffle(order, n, &rng);
    p->seqs = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    p->row_start = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
    p->row_len = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!opt->packing) {
        for (int64_t i = 0; i < n; i++) {
            p->seqs[i] = order[i];
            p->row_start[i] = i;
            p->row_len[i] = dataset_len(ds, order[i]);
        }
        p->row_start[n] = n;
        p->n_rows = n;
        free(order);
        return;
    }
    if (opt->strategy == PACK_STRATEGY_PACK) {
        /* MindSpore Transformers' PackingHandler: greedy in dataset order, a row is closed when
         * the next sequence does not fit; the finished rows are then shuffled (their loader's
         * shuffle runs after packing). Sequences longer than a row were dropped before. */
        int64_t rows = 0, fill = 0, *start = xmalloc(sizeof(int64_t) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++) {
            int64_t len = dataset_len(ds, i);
            if (i == 0 || fill + len > opt->seq_length) start[rows++] = i, fill = 0;
            fill += len;
        }
        start[rows] = n;
        int64_t *row_order = xmalloc(sizeof(int64_t) * (size_t)(rows ? rows : 1)), out = 0;
        for (int64_t r = 0; r < rows; r++) row_order[r] = r;
        rng = rng_hash(opt->seed * 0x9e3779b97f4a7c15ull + (uint64_t)epoch + 1);
        if (opt->shuffle) shuffle(row_order, rows, &rng);
        for (int64_t k = 0; k < rows; k++) {
            int64_t r = row_order[k];
            p->row_start[k] = out;
            p->row_len[k] = 0;
            for (int64_t i = start[r]; i < start[r + 1]; i++) p->seqs[out++] = i, p->row_len[k] += dataset_len(ds, i);
        }
        p->row_start[rows] = out;
        p->n_rows = rows;
        free(start), free(row_order), free(order);
        return;
    }
    /* Best-fit decreasing per window; the window's rows are then shuffled (when shuffling)
     * so long sequences are not all at the start of the window. */
    int64_t cap = opt->seq_length, out = 0, rows = 0;
    int64_t *bin_fill = xmalloc(sizeof(int64_t) * WINDOW), *bin_of = xmalloc(sizeof(int64_t) * WINDOW);
    int64_t *bin_count = xmalloc(sizeof(int64_t) * WINDOW), *bin_order = xmalloc(sizeof(int64_t) * WINDOW);
    for (int64_t w0 = 0; w0 < n; w0 += WINDOW) {
        int64_t wn = n - w0 < WINDOW ? n - w0 : WINDOW, nb = 0;
        sort_ds = ds;
        qsort(order + w0, (size_t)wn, sizeof(int64_t), by_len_desc);
        for (int64_t i = 0; i < wn; i++) {
            int64_t len = dataset_len(ds, order[w0 + i]), best = -1;
            for (int64_t b = 0; b < nb; b++)
                if (bin_fill[b] + len <= cap && (best < 0 || bin_fill[b] > bin_fill[best])) best = b;
            if (best < 0) best = nb, bin_fill[nb] = 0, bin_count[nb] = 0, nb++;
            bin_fill[best] += len;
            bin_count[best]++;
            bin_of[i] = best;
        }
        for (int64_t b = 0; b < nb; b++) bin_order[b] = b;
        if (opt->shuffle) shuffle(bin_order, nb, &rng);
        for (int64_t k = 0; k < nb; k++) {
            int64_t b = bin_order[k];
            p->row_start[rows] = out;
            p->row_len[rows] = bin_fill[b];
            for (int64_t i = 0; i < wn; i++)
                if (bin_of[i] == b) p->seqs[out++] = order[w0 + i];
            rows++;
        }
    }
    p->row_start[rows] = out;
    p->n_rows = rows;
    free(bin_fill), free(bin_of), free(bin_count), free(bin_order), free(order);
}

void row_plan_free(struct row_plan *p) {
    free(p->row_start), free(p->seqs), free(p->row_len);
    memset(p, 0, sizeof *p);
}

void batch_fill(struct batch *b, const struct dataset *ds, const struct row_plan *p, int64_t row0, int n_rows,
                int32_t pad_id) {
    int T = 1;
    for (int r = 0; r < n_rows; r++)
        if (p->row_len[row0 + r] > T) T = (int)p->row_len[row0 + r];
    int64_t need = (int64_t)n_rows * T;
    if (need > b->cap) {
        b->cap = need;
        b->ids = xrealloc(b->ids, sizeof(int32_t) * (size_t)need);
        b->labels = xrealloc(b->labels, sizeof(int32_t) * (size_t)need);
        b->pos = xrealloc(b->pos, sizeof(int32_t) * (size_t)need);
    }
    b->B = n_rows, b->T = n_rows ? T : 0, b->n_tokens = 0, b->n_trained = 0;
    for (int r = 0; r < n_rows; r++) {
        int32_t *ids = b->ids + (int64_t)r * T, *lab = b->labels + (int64_t)r * T, *pos = b->pos + (int64_t)r * T;
        int t = 0;
        for (int64_t k = p->row_start[row0 + r]; k < p->row_start[row0 + r + 1]; k++) {
            int64_t s = p->seqs[k], o = ds->offsets[s], len = dataset_len(ds, s);
            for (int64_t i = 0; i < len; i++, t++) {
                ids[t] = ds->ids[o + i];
                lab[t] = i > 0 && ds->mask[o + i] ? ds->ids[o + i] : -100;
                pos[t] = (int32_t)i;
                b->n_trained += lab[t] >= 0;
            }
        }
        b->n_tokens += t;
        for (int i = 0; t < T; t++, i++) ids[t] = pad_id, lab[t] = -100, pos[t] = i;
    }
}

void batch_free(struct batch *b) {
    free(b->ids), free(b->labels), free(b->pos);
    memset(b, 0, sizeof *b);
}
