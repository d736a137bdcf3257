/* tokenizer: byte-level BPE tokenizers as Hugging Face tokenizers 0.23 runs them (Qwen2/2.5/3,
 * Llama 3, GPT-2 style), loaded from tokenizer.json or vocab.json + merges.txt (+ the added
 * tokens of tokenizer_config.json). encode = added tokens on the raw text (longest first),
 * normalizer, Split regex, byte-level BPE; no BOS/EOS (add_special_tokens=False). decode =
 * HF's ByteLevel decoder + lossy UTF-8. Also SentencePiece-style BPE files (Llama 2, Mistral
 * v0.x): Prepend/Replace normalizers or a Metaspace pre-tokenizer, plain (not byte-level) tokens
 * with byte_fallback/unk/fuse_unk, and a Replace/ByteFallback/Fuse/Strip decoder Sequence.
 * Unicode details follow HF's engines, not the newest standard (pretok.c). A loaded tokenizer is read-only: encode and decode may run from many
 * threads at once (the word cache is per thread). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct tokenizer;

/* path: a folder holding tokenizer.json (preferred) or vocab.json + merges.txt (with
 * tokenizer_config.json if present), or a tokenizer.json file, or a vocab.json file with
 * merges.txt beside it. Returns 0, or -1 with an error naming the file. */
int tokenizer_load(struct tokenizer **out, const char *path);
/* vocab.json + merges.txt; tokenizer_config (may be NULL) supplies added_tokens_decoder and
 * tokenizer_class (GPT2Tokenizer: GPT-2 regex, no normalizer; otherwise Qwen2's regex + NFC). */
int tokenizer_load_files(struct tokenizer **out, const char *vocab_file, const char *merges_file,
                         const char *tokenizer_config);
void tokenizer_free(struct tokenizer *tk);

/* Growable result of encoding; zero-initialize, reuse across calls (set n = 0 to restart), free
 * with tokenizer_buf_free. With want_offsets set (before the first call), starts/ends get for
 * each id the byte range [start, end) of the input text it came from: exact bytes, also inside
 * a multi-byte character split over tokens; text changed by the normalizer maps to the input
 * bytes of its chunk; a replaced invalid UTF-8 sequence maps to its bytes. */
struct tokenizer_buf {
    int32_t *ids;           /* (n) */
    int64_t *starts, *ends; /* (n), only with want_offsets */
    int64_t n, cap;
    int want_offsets;
    int64_t off_cap; /* internal: allocated length of starts/ends */
};
void tokenizer_buf_free(struct tokenizer_buf *b);

enum {
    /* Do not match special added tokens in the text (HF split_special_tokens=True): "<|im_end|>"
     * written by a user becomes ordinary text. Non-special added tokens still match. */
    TOKENIZER_SPLIT_SPECIAL = 1,
};

/* Appends the ids of text[0, len) to out (offsets relative to text). flags: TOKENIZER_*.
 * Invalid UTF-8 is read as U+FFFD per maximal invalid subpart. Returns 0 (only fails on
 * a regex engine error). */
int tokenizer_encode_append(const struct tokenizer *tk, const char *text, size_t len, int flags,
                            struct tokenizer_buf *out);
/* Conveniences: *ids (and *offsets, (n, 2) as start, end) malloc'd, caller frees. */
int tokenizer_encode(const struct tokenizer *tk, const char *text, size_t len, int32_t **ids, int64_t *n_ids);
int tokenizer_encode_offsets(const struct tokenizer *tk, const char *text, size_t len, int32_t **ids,
                             int64_t **offsets, int64_t *n_ids);

/* UTF-8 text of ids (malloc'd, NUL-terminated; *len may be NULL). skip_special drops added
 * tokens marked special. Invalid UTF-8 from partial tokens becomes U+FFFD. -1 + err on an id
 * outside [0, vocab_size) or with no token. */
int tokenizer_decode(const struct tokenizer *tk, const int32_t *ids, int64_t n, int skip_special, char **text,
                     size_t *len);

/* Id of a token as written in the vocab ("Ġthe") or of an added token ("<|im_end|>"); -1 if
 * absent. Added tokens take precedence, as in HF token_to_id. */
int32_t tokenizer_token_id(const struct tokenizer *tk, const char *token);
/* The token string of id (vocab form or added-token content), NULL if none. */
const char *tokenizer_id_to_token(const struct tokenizer *tk, int32_t id);
/* One past the largest id (model vocab and added tokens). */
int32_t tokenizer_vocab_size(const struct tokenizer *tk);
/* 1 if id is an added token marked special, else 0. */
int tokenizer_is_special(const struct tokenizer *tk, int32_t id);
/* 1 if id is an added token (special or not), else 0. */
int tokenizer_is_added(const struct tokenizer *tk, int32_t id);
