/* bpe: the byte-level BPE model of a tokenizer (HF tokenizers' models::bpe::BPE with the GPT-2
 * byte-to-unicode alphabet). Tokens are stored both as written in the file (byte-level form,
 * "Ġthe") and as the raw bytes they stand for (" the"); BPE works on raw bytes, merging the
 * lowest-ranked adjacent pair first (leftmost on ties), as HF's word.rs merge_all does.
 * A per-thread direct-mapped cache of short words makes repeated words cost one lookup. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* A slot of the open-addressing map from raw bytes to ids: keys up to 6 bytes are kept in
 * the slot itself, so a lookup usually touches one cache line. */
struct bpe_slot {
    uint32_t id1; /* id + 1; 0 = empty */
    uint32_t hash;
    uint8_t len;   /* min(length, 255) */
    uint8_t plain; /* the form is not byte-level: raw bytes = form bytes */
    char key[6];
};

/* Where the strings of one id live in the arena; len UINT32_MAX = no token with this id. */
struct bpe_tok {
    uint32_t form_off, form_len; /* the token as written in the file */
    uint32_t raw_off, raw_len;   /* the bytes it stands for */
};

struct bpe_pair {
    uint64_t key; /* left << 32 | right, UINT64_MAX = empty */
    int32_t rank, new_id;
};

struct bpe {
    int32_t n_ids; /* one past the largest model id */
    char *arena;   /* every string, NUL-terminated */
    size_t arena_len, arena_cap;
    struct bpe_tok *toks;   /* (n_ids) */
    struct bpe_slot *slots; /* (slot_mask+1) raw bytes -> id */
    uint32_t slot_mask;
    struct bpe_pair *pairs; /* (pair_mask+1) open addressing, one cache line per probe */
    int32_t (*dense)[2];    /* (256 * 256) rank, merged id of pairs of ids < 256 (the byte tokens
                               in GPT-2 ordered vocabs): 512 KB that stay in cache */
    uint32_t pair_mask;
    int64_t n_merges;
    int32_t byte_id[256]; /* id of each single byte, -1 if absent */
    int ignore_merges;
    /* SentencePiece-style models (Llama 2, Mistral v0.x): tokens are plain UTF-8 (raw = form),
     * a word starts as one symbol per character; a character with no token becomes its
     * <0xNN> byte tokens (byte_fallback) or unk_id (consecutive ones fused with fuse_unk). */
    int plain, byte_fallback, fuse_unk;
    int32_t unk_id;      /* -1: none */
    int32_t fb_id[256];  /* id of "<0xNN>", -1 if absent (plain only) */
    uint32_t uid; /* distinguishes instances in the per-thread cache */
    /* plain models: meta_glue[b] = 1 if some token holds byte b right before U+2581 ("▁"). A word
     * is cut before each ▁ that follows a byte without glue: no token can span such a cut, so
     * the merges on either side are independent (Gemma 3's whole text is one word otherwise). */
    uint8_t meta_glue[256];
};

/* GPT-2's bytes_to_unicode: the code point that stands for byte b, and the inverse (-1 if c
 * is not one of the 256). */
uint32_t bpe_byte_to_char(uint8_t b);
int bpe_char_to_byte(uint32_t c);

void bpe_init(struct bpe *m, int64_t n_vocab_hint);
/* Plain (SentencePiece-style) model: call before adding tokens. */
void bpe_set_plain(struct bpe *m, int byte_fallback, int fuse_unk);
void bpe_free(struct bpe *m);
/* Adds token `form` (byte-level form, len bytes) with id. Returns -1 (err set) on a duplicate
 * id or an id out of [0, 2^31). */
int bpe_add_token(struct bpe *m, const char *form, size_t len, int32_t id);
/* After all tokens: builds the raw-bytes map and the byte table. */
void bpe_finish_vocab(struct bpe *m);
/* Adds the merge (left, right) with the next rank. Returns -1 (err set, naming the tokens) if
 * a part or the merged token is not in the vocab. */
int bpe_add_merge(struct bpe *m, const char *left, size_t left_len, const char *right, size_t right_len);
/* Merges collected first and added together: their tokens are looked up in parallel (the
 * lookups, cache misses in a 262k vocabulary, are most of a tokenizer's load time), then added
 * in queue order exactly as bpe_add_merge would. */
struct bpe_merge_queue {
    char *buf; /* left and right strings, back to back */
    size_t len, cap;
    size_t *at; /* (2n) start of left, start of right; right ends where the next left starts */
    int64_t n, cap_n;
};
void bpe_queue_merge(struct bpe_merge_queue *q, const char *left, size_t left_len, const char *right,
                     size_t right_len);
/* Adds the queued merges and empties q. Returns 0, or -1 with err set as bpe_add_merge sets it
 * and *bad = the index in the queue of the first merge that failed. */
int bpe_add_merges(struct bpe *m, struct bpe_merge_queue *q, int64_t *bad);
void bpe_merge_queue_free(struct bpe_merge_queue *q);

/* Id of the token with these raw bytes, -1 if none. */
int32_t bpe_lookup_raw(const struct bpe *m, const char *bytes, size_t len);
/* Id of the token written `form` in the file, -1 if none. */
int32_t bpe_lookup_form(const struct bpe *m, const char *form, size_t len);

/* Encodes one pre-token (raw bytes) and appends its ids to *ids (growing it with xrealloc;
 * *n used, *cap allocated). Each id's raw bytes are a consecutive slice of the word, so
 * offsets follow from raw_len. Bytes with no token are dropped, as HF does without unk. */
void bpe_encode_word(const struct bpe *m, const char *word, size_t len, int32_t **ids, int64_t *n,
                     int64_t *cap);
/* The same for a plain model (m->plain), word valid UTF-8 (HF models::bpe merge_word with
 * byte_fallback and fuse_unk). With lens non-NULL, *lens gets a malloc'd array of the byte
 * length in word of each appended id (byte tokens and fused unks do not follow from the id). */
void bpe_encode_plain(const struct bpe *m, const char *word, size_t len, int32_t **ids, int64_t *n,
                      int64_t *cap, int32_t **lens);
