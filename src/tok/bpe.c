/* bpe: byte-level BPE vocabulary, merge table and the merge loop; see bpe.h.
 * Short words go through the naive loop (find the lowest-ranked adjacent pair, merge, repeat);
 * long ones through a binary heap keyed by (rank, position), HF word.rs's algorithm, so a
 * megabyte without a split point stays O(n log n). */
#include "tok/bpe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* ---- GPT-2 bytes_to_unicode ---- */

static uint32_t byte_char[256];
static int16_t char_byte[324]; /* every mapped code point is < 324 */
static pthread_once_t byte_once = PTHREAD_ONCE_INIT;

static void byte_tables_init(void) {
    /* Printable Latin-1 bytes stand for themselves; the other 68 take 256, 257, ... in order. */
    uint32_t next = 256;
    for (int i = 0; i < 324; i++)
        char_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_char[b] = keep ? (uint32_t)b : next++;
        char_byte[byte_char[b]] = (int16_t)b;
    }
}

uint32_t bpe_byte_to_char(uint8_t b) {
    pthread_once(&byte_once, byte_tables_init);
    return byte_char[b];
}

int bpe_char_to_byte(uint32_t c) {
    pthread_once(&byte_once, byte_tables_init);
    return c < 324 ? char_byte[c] : -1;
}

/* Decodes a byte-level form into raw bytes in out (capacity >= len). Returns the raw length,
 * or -1 if some character is not in the alphabet (then the form is its own raw bytes). */
static int64_t form_to_raw(const char *s, size_t len, char *out) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t c;
        if (p[i] < 0x80) {
            c = p[i++];
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < len) {
            c = (uint32_t)(p[i] & 0x1F) << 6 | (p[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1;
        }
        int b = c < 324 ? char_byte[c] : -1;
        if (b < 0) return -1;
        out[o++] = (char)b;
    }
    return (int64_t)o;
}

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

static inline uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h = (h ^ w) * 0x94d049bb133111ebULL;
    }
    return mix64(h);
}

/* ---- vocabulary ---- */

static uint32_t arena_put(struct bpe *m, const char *s, size_t len) {
    if (m->arena_len + len + 1 > m->arena_cap) {
        while (m->arena_len + len + 1 > m->arena_cap)
            m->arena_cap *= 2;
        m->arena = xrealloc(m->arena, m->arena_cap);
    }
    uint32_t off = (uint32_t)m->arena_len;
    memcpy(m->arena + off, s, len);
    m->arena[off + len] = 0;
    m->arena_len += len + 1;
    return off;
}

static _Atomic uint32_t next_uid = 1;

void bpe_init(struct bpe *m, int64_t n_vocab_hint) {
    pthread_once(&byte_once, byte_tables_init);
    memset(m, 0, sizeof *m);
    m->arena_cap = (size_t)(n_vocab_hint > 0 ? n_vocab_hint : 1024) * 24;
    m->arena = xmalloc(m->arena_cap);
    for (int b = 0; b < 256; b++)
        m->byte_id[b] = -1;
    m->uid = atomic_fetch_add(&next_uid, 1);
    m->unk_id = -1;
}

void bpe_set_plain(struct bpe *m, int byte_fallback, int fuse_unk) {
    m->plain = 1;
    m->byte_fallback = byte_fallback;
    m->fuse_unk = fuse_unk;
}

void bpe_free(struct bpe *m) {
    free(m->arena);
    free(m->toks);
    free(m->slots);
    free(m->pairs);
    free(m->dense);
    memset(m, 0, sizeof *m);
}

int bpe_add_token(struct bpe *m, const char *form, size_t len, int32_t id) {
    if (id < 0) return err_set("token \"%.*s\" has id %d, expected a non-negative id", (int)len, form, id);
    if (id >= m->n_ids) {
        int64_t n = m->n_ids ? m->n_ids : 1024;
        while (n <= id)
            n *= 2;
        m->toks = xrealloc(m->toks, (size_t)n * sizeof *m->toks);
        for (int64_t i = m->n_ids; i < n; i++)
            m->toks[i].form_len = m->toks[i].raw_len = UINT32_MAX;
        m->n_ids = (int32_t)n;
    }
    struct bpe_tok *t = &m->toks[id];
    if (t->form_len != UINT32_MAX)
        return err_set("id %d is given to both \"%s\" and \"%.*s\"", id, m->arena + t->form_off, (int)len,
                       form);
    t->form_off = arena_put(m, form, len);
    t->form_len = (uint32_t)len;
    char small[256];
    char *raw = len <= sizeof small ? small : xmalloc(len);
    int64_t rl = m->plain ? -1 : form_to_raw(form, len, raw);
    if (rl < 0) {
        t->raw_off = t->form_off;
        t->raw_len = (uint32_t)len;
    } else if ((size_t)rl == len) { /* printable ASCII and Latin-1 forms are their own bytes */
        t->raw_off = t->form_off;
        t->raw_len = (uint32_t)rl;
    } else {
        t->raw_off = arena_put(m, raw, (size_t)rl);
        t->raw_len = (uint32_t)rl;
    }
    if (raw != small) free(raw);
    return 0;
}

/* 1 if the token's form is not made of alphabet characters (so its raw bytes are the form). */
static int form_is_plain(const struct bpe *m, const struct bpe_tok *t) {
    char small[256];
    char *raw = t->form_len <= sizeof small ? small : xmalloc(t->form_len);
    int plain = form_to_raw(m->arena + t->form_off, t->form_len, raw) < 0;
    if (raw != small) free(raw);
    return plain;
}

static inline int slot_matches(const struct bpe *m, const struct bpe_slot *sl, uint32_t h, const char *s,
                               size_t len) {
    if (sl->hash != h || sl->len != (len < 255 ? len : 255)) return 0;
    if (len <= sizeof sl->key) return memcmp(sl->key, s, len) == 0;
    const struct bpe_tok *t = &m->toks[sl->id1 - 1];
    return t->raw_len == len && memcmp(m->arena + t->raw_off, s, len) == 0;
}

void bpe_finish_vocab(struct bpe *m) {
    /* Trim the id arrays to one past the largest id. */
    int32_t n = m->n_ids;
    while (n > 0 && m->toks[n - 1].form_len == UINT32_MAX)
        n--;
    m->n_ids = n;
    uint32_t size = 1024;
    while (size < (uint32_t)n + (uint32_t)n / 2)
        size *= 2;
    m->slot_mask = size - 1;
    m->slots = xcalloc(size, sizeof *m->slots);
    memset(m->meta_glue, 0, sizeof m->meta_glue);
    for (int32_t id = 0; id < n; id++) {
        const struct bpe_tok *t = &m->toks[id];
        if (t->raw_len == UINT32_MAX) continue;
        const uint8_t *s = (const uint8_t *)m->arena + t->raw_off;
        for (uint32_t k = 1; k + 3 <= t->raw_len; k++)
            if (s[k] == 0xE2 && s[k + 1] == 0x96 && s[k + 2] == 0x81) m->meta_glue[s[k - 1]] = 1;
    }
    for (int32_t id = 0; id < n; id++) {
        const struct bpe_tok *t = &m->toks[id];
        if (t->raw_len == UINT32_MAX) continue;
        const char *s = m->arena + t->raw_off;
        uint32_t len = t->raw_len;
        uint64_t h = hash_bytes(s, len);
        uint32_t i = (uint32_t)h & m->slot_mask;
        int dup = 0;
        while (m->slots[i].id1) {
            if (slot_matches(m, &m->slots[i], (uint32_t)(h >> 32), s, len)) {
                dup = 1; /* two forms for the same bytes: the lower id wins the raw lookup */
                break;
            }
            i = (i + 1) & m->slot_mask;
        }
        if (dup) continue;
        struct bpe_slot *sl = &m->slots[i];
        sl->id1 = (uint32_t)id + 1;
        sl->hash = (uint32_t)(h >> 32);
        sl->len = (uint8_t)(len < 255 ? len : 255);
        sl->plain = (uint8_t)(m->plain || (t->raw_off == t->form_off && form_is_plain(m, t)));
        memcpy(sl->key, s, len < sizeof sl->key ? len : sizeof sl->key);
        if (len == 1 && m->byte_id[(uint8_t)s[0]] < 0) m->byte_id[(uint8_t)s[0]] = id;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->fb_id[b] = m->plain ? bpe_lookup_raw(m, name, 6) : -1;
    }
}

static const struct bpe_slot *slot_find(const struct bpe *m, const char *bytes, size_t len) {
    if (!m->slots) return NULL;
    uint64_t h = hash_bytes(bytes, len);
    uint32_t i = (uint32_t)h & m->slot_mask;
    while (m->slots[i].id1) {
        if (slot_matches(m, &m->slots[i], (uint32_t)(h >> 32), bytes, len)) return &m->slots[i];
        i = (i + 1) & m->slot_mask;
    }
    return NULL;
}

int32_t bpe_lookup_raw(const struct bpe *m, const char *bytes, size_t len) {
    const struct bpe_slot *sl = slot_find(m, bytes, len);
    return sl ? (int32_t)sl->id1 - 1 : -1;
}

int32_t bpe_lookup_form(const struct bpe *m, const char *form, size_t len) {
    char small[256];
    char *raw = len <= sizeof small ? small : xmalloc(len);
    int64_t rl = m->plain ? -1 : form_to_raw(form, len, raw);
    const struct bpe_slot *sl = rl < 0 ? slot_find(m, form, len) : slot_find(m, raw, (size_t)rl);
    if (raw != small) free(raw);
    if (!sl) return -1;
    int32_t id = (int32_t)sl->id1 - 1;
    /* Equal raw bytes mean equal forms when both forms are byte-level (a bijection) or both
     * plain (raw = form); only a mixed pair needs the forms compared. */
    if (sl->plain != (rl < 0) &&
        (m->toks[id].form_len != len || memcmp(m->arena + m->toks[id].form_off, form, len) != 0))
        return -1;
    return id;
}

/* ---- merges ---- */

static inline uint32_t pair_slot(const struct bpe *m, uint64_t key) {
    return (uint32_t)mix64(key) & m->pair_mask;
}

static void pair_grow(struct bpe *m) {
    uint32_t old_size = m->pairs ? m->pair_mask + 1 : 0;
    struct bpe_pair *old = m->pairs;
    uint32_t size = old_size ? old_size * 2 : 1u << 16;
    m->pair_mask = size - 1;
    m->pairs = xmalloc(size * sizeof *m->pairs);
    for (uint32_t i = 0; i < size; i++)
        m->pairs[i].key = UINT64_MAX;
    for (uint32_t i = 0; i < old_size; i++) {
        if (old[i].key == UINT64_MAX) continue;
        uint32_t j = pair_slot(m, old[i].key);
        while (m->pairs[j].key != UINT64_MAX)
            j = (j + 1) & m->pair_mask;
        m->pairs[j] = old[i];
    }
    free(old);
}

/* The ids of a merge: left a, right b, merged c (-1 when absent). */
static void merge_ids(const struct bpe *m, const char *left, size_t left_len, const char *right, size_t right_len,
                      int32_t *a, int32_t *b, int32_t *c) {
    *a = bpe_lookup_form(m, left, left_len), *b = bpe_lookup_form(m, right, right_len), *c = -1;
    if (*a < 0 || *b < 0) return;
    size_t la = m->toks[*a].raw_len, lb = m->toks[*b].raw_len;
    char small[512];
    char *cat = la + lb <= sizeof small ? small : xmalloc(la + lb);
    memcpy(cat, m->arena + m->toks[*a].raw_off, la);
    memcpy(cat + la, m->arena + m->toks[*b].raw_off, lb);
    *c = bpe_lookup_raw(m, cat, la + lb);
    if (cat != small) free(cat);
}

static int merge_error(const char *left, size_t left_len, const char *right, size_t right_len, int32_t a,
                       int32_t b) {
    if (a < 0 || b < 0)
        return err_set("merge \"%.*s %.*s\": \"%.*s\" is not in the vocab", (int)left_len, left, (int)right_len,
                       right, a < 0 ? (int)left_len : (int)right_len, a < 0 ? left : right);
    return err_set("merge \"%.*s %.*s\": the merged token is not in the vocab", (int)left_len, left,
                   (int)right_len, right);
}

static void merge_insert(struct bpe *m, int32_t a, int32_t b, int32_t c) {
    if (!m->pairs || (uint64_t)(m->n_merges + 1) * 3 > (uint64_t)(m->pair_mask + 1) * 2) pair_grow(m);
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t j = pair_slot(m, key);
    while (m->pairs[j].key != UINT64_MAX) {
        if (m->pairs[j].key == key) { /* HF keeps the first (lowest) rank of a repeated merge */
            m->n_merges++;
            return;
        }
        j = (j + 1) & m->pair_mask;
    }
    if (a < 256 && b < 256) {
        if (!m->dense) {
            m->dense = xmalloc(256 * 256 * sizeof *m->dense);
            for (int i = 0; i < 256 * 256; i++)
                m->dense[i][0] = INT32_MAX, m->dense[i][1] = -1;
        }
        m->dense[a << 8 | b][0] = (int32_t)m->n_merges;
        m->dense[a << 8 | b][1] = c;
    }
    m->pairs[j] = (struct bpe_pair){key, (int32_t)m->n_merges++, c};
}

int bpe_add_merge(struct bpe *m, const char *left, size_t left_len, const char *right, size_t right_len) {
    int32_t a, b, c;
    merge_ids(m, left, left_len, right, right_len, &a, &b, &c);
    if (c < 0) return merge_error(left, left_len, right, right_len, a, b);
    merge_insert(m, a, b, c);
    return 0;
}

void bpe_queue_merge(struct bpe_merge_queue *q, const char *left, size_t left_len, const char *right,
                     size_t right_len) {
    if (q->len + left_len + right_len > q->cap) {
        q->cap = q->cap ? q->cap : 1 << 20;
        while (q->len + left_len + right_len > q->cap)
            q->cap *= 2;
        q->buf = xrealloc(q->buf, q->cap);
    }
    if (q->n == q->cap_n) {
        q->cap_n = q->cap_n ? 2 * q->cap_n : 1 << 16;
        q->at = xrealloc(q->at, (size_t)q->cap_n * 2 * sizeof *q->at);
    }
    q->at[2 * q->n] = q->len;
    memcpy(q->buf + q->len, left, left_len);
    q->len += left_len;
    q->at[2 * q->n + 1] = q->len;
    memcpy(q->buf + q->len, right, right_len);
    q->len += right_len;
    q->n++;
}

/* Prefetches the vocabulary slots merge_ids will probe for (left, right, left+right), so the
 * cache misses of several merges overlap. */
static void merge_prefetch(const struct bpe *m, const char *left, size_t ll, const char *right, size_t rl) {
    char buf[512];
    if (ll + rl > sizeof buf) return;
    size_t n = 0;
    const char *parts[2] = {left, right};
    size_t lens[2] = {ll, rl};
    for (int k = 0; k < 2; k++) {
        int64_t r = m->plain ? -1 : form_to_raw(parts[k], lens[k], buf + n);
        if (r < 0) {
            memcpy(buf + n, parts[k], lens[k]);
            r = (int64_t)lens[k];
        }
        uint64_t h = hash_bytes(buf + n, (size_t)r);
        __builtin_prefetch(&m->slots[(uint32_t)h & m->slot_mask]);
        n += (size_t)r;
    }
    uint64_t h = hash_bytes(buf, n);
    __builtin_prefetch(&m->slots[(uint32_t)h & m->slot_mask]);
}

int bpe_add_merges(struct bpe *m, struct bpe_merge_queue *q, int64_t *bad) {
    int64_t n = q->n;
    int32_t *ids = xmalloc((size_t)(n ? n : 1) * 3 * sizeof *ids);
#pragma omp parallel for schedule(static, 4096) if (n > 20000)
    for (int64_t i = 0; i < n; i++) {
        enum { AHEAD = 8 };
        if (i + AHEAD < n && m->slots) {
            int64_t k = i + AHEAD;
            size_t l0 = q->at[2 * k], r0 = q->at[2 * k + 1], r1 = k + 1 < n ? q->at[2 * k + 2] : q->len;
            merge_prefetch(m, q->buf + l0, r0 - l0, q->buf + r0, r1 - r0);
        }
        size_t l0 = q->at[2 * i], r0 = q->at[2 * i + 1], r1 = i + 1 < n ? q->at[2 * i + 2] : q->len;
        merge_ids(m, q->buf + l0, r0 - l0, q->buf + r0, r1 - r0, &ids[3 * i], &ids[3 * i + 1], &ids[3 * i + 2]);
    }
    int rc = 0;
    while (!m->pairs || (uint64_t)(m->n_merges + n + 1) * 3 > (uint64_t)(m->pair_mask + 1) * 2)
        pair_grow(m); /* sized once, not doubled on the way */
    for (int64_t i = 0; i < n; i++) {
        if (i + 8 < n && ids[3 * i + 26] >= 0)
            __builtin_prefetch(&m->pairs[pair_slot(m, (uint64_t)(uint32_t)ids[3 * i + 24] << 32 |
                                                          (uint32_t)ids[3 * i + 25])]);
        if (ids[3 * i + 2] < 0) {
            size_t l0 = q->at[2 * i], r0 = q->at[2 * i + 1], r1 = i + 1 < n ? q->at[2 * i + 2] : q->len;
            rc = merge_error(q->buf + l0, r0 - l0, q->buf + r0, r1 - r0, ids[3 * i], ids[3 * i + 1]);
            *bad = i;
            break;
        }
        merge_insert(m, ids[3 * i], ids[3 * i + 1], ids[3 * i + 2]);
    }
    free(ids);
    q->n = 0;
    q->len = 0;
    return rc;
}

void bpe_merge_queue_free(struct bpe_merge_queue *q) {
    free(q->buf);
    free(q->at);
    memset(q, 0, sizeof *q);
}

/* Rank of merging (a, b), or INT32_MAX if they do not merge; the merged id goes to *out. */
static inline int32_t pair_get(const struct bpe *m, int32_t a, int32_t b, int32_t *out) {
    if ((uint32_t)a < 256 && (uint32_t)b < 256 && m->dense) {
        *out = m->dense[a << 8 | b][1];
        return m->dense[a << 8 | b][0];
    }
    *out = -1;
    if (!m->pairs) return INT32_MAX;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t j = pair_slot(m, key);
    for (;;) {
        uint64_t k = m->pairs[j].key;
        if (k == key) {
            *out = m->pairs[j].new_id;
            return m->pairs[j].rank;
        }
        if (k == UINT64_MAX) return INT32_MAX;
        j = (j + 1) & m->pair_mask;
    }
}

/* ---- per-thread word cache ---- */

enum { CACHE_SIZE = 1 << 15, CACHE_KEY = 26, CACHE_IDS = 8 };

struct cache_entry {
    uint32_t uid;
    uint8_t klen, n_ids;
    char key[CACHE_KEY];
    int32_t ids[CACHE_IDS];
};

static pthread_key_t cache_key; /* only to free each thread's cache when the thread exits */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Thread_local struct cache_entry *tls_cache;
static void cache_key_init(void) { pthread_key_create(&cache_key, free); }

static struct cache_entry *cache_get(void) {
    if (tls_cache) return tls_cache;
    pthread_once(&cache_once, cache_key_init);
    tls_cache = xcalloc(CACHE_SIZE, sizeof *tls_cache);
    pthread_setspecific(cache_key, tls_cache);
    return tls_cache;
}

/* ---- the merge loop ---- */

static inline void push_id(int32_t **ids, int64_t *n, int64_t *cap, int32_t id) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *ids = xrealloc(*ids, (size_t)*cap * sizeof(int32_t));
    }
    (*ids)[(*n)++] = id;
}

enum { SMALL_WORD = 64 };

/* Naive loop for short words: sym[] holds the current symbols, rank[i] the rank of merging
 * sym[i] with sym[i+1]. */
static int small_merge(const struct bpe *m, const char *w, size_t len, int32_t *sym) {
    int32_t rank[SMALL_WORD], newid[SMALL_WORD];
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = m->byte_id[(uint8_t)w[i]];
        if (id >= 0) sym[n++] = id;
    }
    for (int i = 0; i + 1 < n; i++)
        rank[i] = pair_get(m, sym[i], sym[i + 1], &newid[i]);
    while (n > 1) {
        int best = -1;
        int32_t br = INT32_MAX;
        for (int i = 0; i + 1 < n; i++)
            if (rank[i] < br) br = rank[i], best = i;
        if (best < 0) break;
        sym[best] = newid[best];
        memmove(sym + best + 1, sym + best + 2, (size_t)(n - best - 2) * sizeof(int32_t));
        memmove(rank + best + 1, rank + best + 2,
                (size_t)(n - best - 3 > 0 ? n - best - 3 : 0) * sizeof(int32_t));
        memmove(newid + best + 1, newid + best + 2,
                (size_t)(n - best - 3 > 0 ? n - best - 3 : 0) * sizeof(int32_t));
        n--;
        if (best > 0) rank[best - 1] = pair_get(m, sym[best - 1], sym[best], &newid[best - 1]);
        if (best + 1 < n) rank[best] = pair_get(m, sym[best], sym[best + 1], &newid[best]);
    }
    return n;
}

struct heap_item {
    uint64_t key; /* rank << 32 | position */
    int32_t new_id;
};

static void heap_push(struct heap_item *h, int64_t *n, struct heap_item it) {
    int64_t i = (*n)++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (h[p].key <= it.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static struct heap_item heap_pop(struct heap_item *h, int64_t *n) {
    struct heap_item top = h[0], last = h[--(*n)];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].key < h[c].key) c++;
        if (last.key <= h[c].key) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* HF word.rs merge_all: symbols in a linked list, candidate merges in a heap; a popped merge
 * is applied only if the pair it was made for is still adjacent. */
/* The BPE merge loop over the n symbols in sym: repeatedly merges the adjacent pair of lowest
 * rank (a heap of candidate pairs; stale entries are skipped), marking absorbed symbols -1.
 * slen (may be NULL) carries each symbol's length along its merges. */
static void merge_symbols(const struct bpe *m, int32_t *sym, int32_t *slen, int32_t *prev, int32_t *next,
                          struct heap_item *heap, int64_t n) {
    int64_t hn = 0;
    for (int64_t i = 0; i < n; i++)
        prev[i] = (int32_t)i - 1, next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    for (int64_t i = 0; i + 1 < n; i++) {
        int32_t c, r = pair_get(m, sym[i], sym[i + 1], &c);
        if (r != INT32_MAX) heap_push(heap, &hn, (struct heap_item){(uint64_t)r << 32 | (uint64_t)i, c});
    }
    while (hn) {
        struct heap_item it = heap_pop(heap, &hn);
        int32_t pos = (int32_t)(it.key & 0xffffffffu), nx = next[pos];
        if (sym[pos] < 0 || nx < 0) continue;
        int32_t c, r = pair_get(m, sym[pos], sym[nx], &c);
        if (r != (int32_t)(it.key >> 32) || c != it.new_id) continue;
        sym[pos] = c;
        if (slen) slen[pos] += slen[nx];
        sym[nx] = -1;
        next[pos] = next[nx];
        if (next[nx] >= 0) prev[next[nx]] = pos;
        if (prev[pos] >= 0) {
            int32_t p = prev[pos], c2, r2 = pair_get(m, sym[p], sym[pos], &c2);
            if (r2 != INT32_MAX)
                heap_push(heap, &hn, (struct heap_item){(uint64_t)r2 << 32 | (uint64_t)p, c2});
        }
        if (next[pos] >= 0) {
            int32_t c2, r2 = pair_get(m, sym[pos], sym[next[pos]], &c2);
            if (r2 != INT32_MAX)
                heap_push(heap, &hn, (struct heap_item){(uint64_t)r2 << 32 | (uint64_t)pos, c2});
        }
    }
}

static void large_merge(const struct bpe *m, const char *w, size_t len, int32_t **ids, int64_t *n_ids,
                        int64_t *cap) {
    int32_t *sym = xmalloc(len * sizeof(int32_t));
    int32_t *prev = xmalloc(len * sizeof(int32_t)), *next = xmalloc(len * sizeof(int32_t));
    struct heap_item *heap = xmalloc(len * 2 * sizeof *heap + sizeof *heap);
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = m->byte_id[(uint8_t)w[i]];
        if (id >= 0) sym[n++] = id;
    }
    merge_symbols(m, sym, NULL, prev, next, heap, n);
    for (int64_t i = 0; i < n; i++)
        if (sym[i] >= 0) push_id(ids, n_ids, cap, sym[i]);
    free(sym);
    free(prev);
    free(next);
    free(heap);
}

void bpe_encode_word(const struct bpe *m, const char *w, size_t len, int32_t **ids, int64_t *n,
                     int64_t *cap) {
    if (len == 0) return;
    if (m->ignore_merges) {
        int32_t id = bpe_lookup_raw(m, w, len);
        if (id >= 0) {
            push_id(ids, n, cap, id);
            return;
        }
    }
    if (len == 1) {
        if (m->byte_id[(uint8_t)w[0]] >= 0) push_id(ids, n, cap, m->byte_id[(uint8_t)w[0]]);
        return;
    }
    if (len > SMALL_WORD) {
        large_merge(m, w, len, ids, n, cap);
        return;
    }
    struct cache_entry *e = NULL;
    if (len <= CACHE_KEY) {
        struct cache_entry *c = cache_get();
        e = &c[hash_bytes(w, len) & (CACHE_SIZE - 1)];
        if (e->uid == m->uid && e->klen == len && memcmp(e->key, w, len) == 0) {
            for (int i = 0; i < e->n_ids; i++)
                push_id(ids, n, cap, e->ids[i]);
            return;
        }
    }
    int32_t sym[SMALL_WORD];
    int k = small_merge(m, w, len, sym);
    for (int i = 0; i < k; i++)
        push_id(ids, n, cap, sym[i]);
    if (e && k <= CACHE_IDS) {
        e->uid = m->uid;
        e->klen = (uint8_t)len;
        e->n_ids = (uint8_t)k;
        memcpy(e->key, w, len);
        memcpy(e->ids, sym, (size_t)k * sizeof(int32_t));
    }
}

/* ---- plain (SentencePiece-style) words ---- */

static size_t utf8_char_len(const char *w, size_t i, size_t len) {
    uint8_t c = (uint8_t)w[i];
    size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    return i + k <= len ? k : len - i;
}

static void encode_plain_piece(const struct bpe *m, const char *w, size_t len, int32_t **ids, int64_t *n_ids,
                               int64_t *cap, int32_t **lens_out);

void bpe_encode_plain(const struct bpe *m, const char *w, size_t len, int32_t **ids, int64_t *n_ids,
                      int64_t *cap, int32_t **lens_out) {
    if (m->ignore_merges || len < 64) { /* ignore_merges looks the whole word up: never cut it */
        encode_plain_piece(m, w, len, ids, n_ids, cap, lens_out);
        return;
    }
    int32_t *lens = NULL;
    int64_t n_lens = 0;
    size_t a = 0;
    for (size_t p = 1; p <= len; p++) {
        int cut = p == len || (p + 3 <= len && (uint8_t)w[p] == 0xE2 && (uint8_t)w[p + 1] == 0x96 &&
                               (uint8_t)w[p + 2] == 0x81 && !m->meta_glue[(uint8_t)w[p - 1]]);
        if (!cut) continue;
        int64_t before = *n_ids;
        size_t sl = p - a;
        struct cache_entry *e = NULL;
        if (sl <= CACHE_KEY) { /* the per-thread word cache, as for byte-level words */
            e = &cache_get()[hash_bytes(w + a, sl) & (CACHE_SIZE - 1)];
            if (e->uid == m->uid && e->klen == sl && memcmp(e->key, w + a, sl) == 0) {
                if (lens_out) lens = xrealloc(lens, (size_t)(n_lens + e->n_ids + 1) * sizeof *lens);
                for (int i = 0; i < e->n_ids; i++) {
                    push_id(ids, n_ids, cap, e->ids[i]);
                    if (lens_out) lens[n_lens++] = (int32_t)m->toks[e->ids[i]].raw_len;
                }
                a = p;
                continue;
            }
        }
        int32_t *pl = NULL;
        encode_plain_piece(m, w + a, sl, ids, n_ids, cap, &pl);
        int64_t k = *n_ids - before;
        int plain_lens = e && k <= CACHE_IDS; /* cached only when each id covers its own bytes (no unk, no byte fallback) */
        for (int64_t i = 0; plain_lens && i < k; i++)
            plain_lens = pl[i] == (int32_t)m->toks[(*ids)[before + i]].raw_len && (*ids)[before + i] != m->unk_id;
        if (plain_lens) {
            e->uid = m->uid;
            e->klen = (uint8_t)sl;
            e->n_ids = (uint8_t)k;
            memcpy(e->key, w + a, sl);
            memcpy(e->ids, *ids + before, (size_t)k * sizeof(int32_t));
        }
        if (lens_out) {
            lens = xrealloc(lens, (size_t)(n_lens + k + 1) * sizeof *lens);
            if (k) memcpy(lens + n_lens, pl, (size_t)k * sizeof *lens);
            n_lens += k;
        }
        free(pl);
        a = p;
    }
    if (lens_out) *lens_out = lens;
}

static void encode_plain_piece(const struct bpe *m, const char *w, size_t len, int32_t **ids, int64_t *n_ids,
                               int64_t *cap, int32_t **lens_out) {
    if (lens_out) *lens_out = NULL;
    if (len == 0) return;
    if (m->ignore_merges) {
        int32_t id = bpe_lookup_raw(m, w, len);
        if (id >= 0) {
            push_id(ids, n_ids, cap, id);
            if (lens_out) {
                *lens_out = xmalloc(sizeof(int32_t));
                (*lens_out)[0] = (int32_t)len;
            }
            return;
        }
    }
    int32_t *sym = xmalloc(len * sizeof(int32_t)), *slen = xmalloc(len * sizeof(int32_t));
    int32_t *prev = xmalloc(len * sizeof(int32_t)), *next = xmalloc(len * sizeof(int32_t));
    struct heap_item *heap = xmalloc(len * 2 * sizeof *heap + sizeof *heap);
    int64_t n = 0;
    int32_t unk_len = 0; /* pending unk (HF merge_word's `unk`), 0 = none */
    for (size_t i = 0; i < len;) {
        size_t k = utf8_char_len(w, i, len);
        int32_t id = bpe_lookup_raw(m, w + i, k);
        if (id >= 0) {
            if (unk_len) sym[n] = m->unk_id, slen[n++] = unk_len, unk_len = 0;
            sym[n] = id, slen[n++] = (int32_t)k;
        } else {
            int all = m->byte_fallback;
            for (size_t j = 0; j < k && all; j++)
                all = m->fb_id[(uint8_t)w[i + j]] >= 0;
            if (all) { /* HF leaves a pending unk pending here */
                for (size_t j = 0; j < k; j++)
                    sym[n] = m->fb_id[(uint8_t)w[i + j]], slen[n++] = 1;
            } else if (m->unk_id >= 0) {
                if (unk_len && !m->fuse_unk) sym[n] = m->unk_id, slen[n++] = unk_len, unk_len = 0;
                unk_len += (int32_t)k;
            }
        }
        i += k;
    }
    if (unk_len) sym[n] = m->unk_id, slen[n++] = unk_len;
    merge_symbols(m, sym, slen, prev, next, heap, n);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (sym[i] >= 0) {
            push_id(ids, n_ids, cap, sym[i]);
            slen[k++] = slen[i];
        }
    if (lens_out)
        *lens_out = slen;
    else
        free(slen);
    free(sym);
    free(prev);
    free(next);
    free(heap);
}
