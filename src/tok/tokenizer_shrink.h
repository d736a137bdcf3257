/* tokenizer_shrink: writes a smaller copy of a byte-level BPE tokenizer.json by keeping the
 * first n_base ids of the model vocab and the merges that only produce kept tokens (merge k
 * of GPT-2-style files creates id 256 + k, so a prefix of the merges is a valid BPE), with
 * the added tokens renumbered to follow. For demos and tests: small models with a real
 * tokenizer. */
#pragma once

/* src: tokenizer.json path; writes dst_dir/tokenizer.json, tokenizer_config.json, vocab.json and merges.txt.
 * *vocab_out: the resulting vocabulary size (kept ids + added tokens). */
int tokenizer_shrink(const char *src, int n_base, const char *dst_dir, int *vocab_out);
