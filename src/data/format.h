/* format: turns one dataset record into token ids and labels. Records are recognized by
 * their columns (or an explicit format + column mapping): Alpaca (instruction/input/output,
 * optional system/history), OpenAI messages (role/content), ShareGPT conversations
 * (from/value), plain text, or already-tokenized (input_ids, optional labels). Conversations
 * are rendered with a chat template; labels keep the tokens of assistant turns (all, or the
 * last) and -100 elsewhere; the end-of-turn token is trained unless no_eos_loss. A
 * message's own "train": true/false (or "weight": 1/0) overrides loss_on for that message.
 * U+0000 in text (carried as C0 80, core/nulstr.h) is tokenized as the NUL character. Truncation to seq_length
 * follows the documented policy (docs/data.md). */
#pragma once
#include <stdint.h>

struct cJSON;
struct tokenizer;
struct chat_template;

enum data_format {
    DATA_FORMAT_AUTO,
    DATA_FORMAT_ALPACA,
    DATA_FORMAT_MESSAGES,
    DATA_FORMAT_SHAREGPT,
    DATA_FORMAT_TEXT,
    DATA_FORMAT_TOKENIZED,
    DATA_FORMAT_MINDFORMERS_ALPACA /* MindSpore Transformers' AlpacaInstructDataHandler (docs/mindformers.md) */
};
enum truncation { TRUNCATION_RIGHT, TRUNCATION_LEFT, TRUNCATION_DROP, TRUNCATION_ERROR };
enum loss_on { LOSS_ON_ASSISTANT, LOSS_ON_LAST_TURN, LOSS_ON_ALL };

struct column_map {
    const char *canonical; /* instruction, input, output, system, history, messages, conversations, text, input_ids, labels */
    const char *column;    /* the dataset's own name */
};

struct format_options {
    enum data_format format;
    const struct column_map *columns;
    int n_columns;
    enum loss_on loss_on;
    int no_eos_loss; /* config train_on_eos: false: a trained turn's end-of-turn token (and the eos after
                        Alpaca outputs) is not trained */
    enum truncation truncation;
    int seq_length;
};

struct formatter {
    struct format_options opt;
    const struct tokenizer *tk;
    const struct chat_template *tmpl;        /* conversations */
    const struct chat_template *alpaca_tmpl; /* Alpaca records: the Alpaca prompt (eos appended after the
                                                output); NULL = render them as a conversation with tmpl */
    int32_t eos_id;                   /* appended (and trained) after Alpaca-prompt outputs and text; -1 = none */
    int32_t vocab_size;               /* tokenized records are checked against it */
    int32_t pad_id;                   /* MindFormers target_ids records without attention_mask; -1 = unknown */
};

/* One formatted record. Reuse across calls (buffers grow); free with formatted_free. */
struct formatted {
    int32_t *ids, *labels;
    int64_t n, cap;
    int truncated; /* tokens were cut by the truncation policy */
    int dropped;   /* the record was dropped (TRUNCATION_DROP) */
};
void formatted_free(struct formatted *f);

/* Formats rec (row `row` of `file`, for messages). Returns 0, or -1 with an error naming the
 * file and row (missing columns, empty conversation, wrong types, unknown roles, ...). */
int format_record(const struct formatter *f, const struct cJSON *rec, const char *file, int64_t row,
                  struct formatted *out);
/* The dataset columns (under the mapping) any format may read, at most max, into out (the
 * strings live as long as opt); readers may leave every other column undecoded. */
int format_columns(const struct format_options *opt, const char **out, int max);
/* Which format a record looks like under the column mapping (AUTO resolved), or -1. */
int format_detect(const struct format_options *opt, const struct cJSON *rec);
/* The generation prompt of format mindformers_alpaca (their three pieces, the last one
 * "ASSISTANT:"), tokenized piece by piece as in training, into out->ids. */
int format_mindformers_alpaca_prompt(const struct formatter *f, const char *instruction, const char *input,
                                     struct formatted *out);
