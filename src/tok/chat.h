/* chat: renders conversations with a model's chat template (as transformers'
 * apply_chat_template(tokenize=False)) and locates each assistant turn in the rendering, the
 * text a response-only loss trains on. Templates come from a tokenizer_config.json, from
 * Jinja source, or are built in: "chatml" (plain ChatML) and the Stanford Alpaca prompts.
 * Spans follow the template itself (chat_render_select), and match the fixture rule of
 * ../shared/fixtures/chat_templates/README.md ("Assistant span rule") on its goldens. */
#pragma once
#include <cjson/cJSON.h>
#include <stddef.h>

struct chat_template;

/* [start, end) BYTE offsets into the rendered UTF-8 text: a message's trained text, its
 * content from start and its end-of-turn token from eot (eot == end when it has none). */
struct chat_span {
    size_t start, end, eot;
    int message; /* index into messages, -1 when not tied to one (Alpaca, untied generation blocks) */
};

/* From Jinja source. name_for_errors prefixes error messages ("name:line:col: ..."). Spans come
 * from the template itself: its {% generation %} blocks where it has them (as transformers'
 * return_assistant_tokens_mask), else from rendering the conversation's prefixes (see
 * chat_render_select). */
int chat_template_parse(struct chat_template **out, const char *source, const char *name_for_errors);
/* From a model folder or its tokenizer_config.json: `chat_template` (a string, or a list of
 * {name, template} where "default" is taken; a chat_template.jinja next to it wins, as in
 * transformers), plus the special tokens (bos/eos/unk/sep/pad/cls/mask_token,
 * additional_special_tokens) passed to the template as variables. */
int chat_template_load(struct chat_template **out, const char *tokenizer_config_json_path);
/* Built-ins: "chatml"; "alpaca" (with-input prompt when input is a non-empty string),
 * "alpaca_with_input", "alpaca_no_input". */
int chat_template_builtin(struct chat_template **out, const char *name);
void chat_template_free(struct chat_template *t);

/* Assistant turn markers: header (the span starts after it) and end-of-turn token (included
 * in the span), found by a cursor walk. Overrides the derivation from the template. */
void chat_template_set_markers(struct chat_template *t, const char *header, const char *end);
/* Special-token texts (end-of-turn candidates): the special-token variables and the config's
 * added_tokens_decoder entries marked special are known after loading; these add more. */
void chat_template_add_special_token(struct chat_template *t, const char *text);
struct tokenizer;
/* Adds every added token the tokenizer marks special. */
void chat_template_use_tokenizer(struct chat_template *t, const struct tokenizer *tk);
/* Sets (or, with value NULL, removes) a special-token variable such as "bos_token". */
void chat_template_set_special(struct chat_template *t, const char *name, const char *value);
/* How spans are found: "generation" ({% generation %} blocks), "prefix" (prefix renderings),
 * "custom" (markers), "alpaca". */
const char *chat_template_family(const struct chat_template *t);

/* Renders messages (JSON array of {role, content, ...}); tools: JSON array or NULL (None);
 * extra_vars: JSON object of more template variables (e.g. enable_thinking, or for Alpaca
 * instruction/input/output) that override the special tokens, or NULL.
 * *out: malloc'd text. spans (may be NULL): malloc'd, one per assistant message that has an
 * end-of-turn token, in message order. Alpaca: instruction/input/output from extra_vars, else
 * the first user and assistant messages; rendered = prompt + output, span = output.
 * Returns 0, or -1 with err set (template errors carry line:col and Jinja's error class). */
int chat_render(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                int add_generation_prompt, const cJSON *extra_vars, char **out, struct chat_span **spans,
                int *n_spans);
/* As chat_render, with the spans of the messages selected by want[i] != 0 (NULL: every
 * assistant message). Without {% generation %} blocks, message i's span is derived from
 * renderings of the conversation's prefixes: R = messages[0, i) rendered, which must be the
 * start of the whole rendering (else the template rewrites earlier turns: error); for an
 * assistant message the span starts after what add_generation_prompt adds to R (its header:
 * where that differs from the turn as rendered, their common part up to a newline or special
 * token), for others at the content; it ends after the first eos token (else first special
 * token) after the content, within the text up to the next prefix rendering that is the start
 * of the whole rendering; with no such token, at the end of that text, trailing whitespace
 * left out. With {% generation %} blocks the k-th block is the k-th assistant message. */
int chat_render_select(const struct chat_template *t, const cJSON *messages, const cJSON *tools,
                       int add_generation_prompt, const cJSON *extra_vars, const unsigned char *want, char **out,
                       struct chat_span **spans, int *n_spans);
/* The end-of-turn token text the template writes after an assistant answer (derived from a
 * probe conversation, as spans are), malloc'd; NULL when there is none or it cannot tell. */
char *chat_template_turn_end(const struct chat_template *t);
