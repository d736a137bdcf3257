/* jinja: a Jinja2 template engine for chat templates, configured as transformers'
 * apply_chat_template configures Jinja2 (trim_blocks, lstrip_blocks, loopcontrols, sandboxed
 * immutable containers, tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now).
 * A parsed template is immutable: renders from several threads at once are safe. */
#pragma once
#include <cjson/cJSON.h>
#include <stddef.h>

struct jinja_template;

/* Parses source; name is used in error messages ("name:line:col: Class: message").
 * Returns NULL with err set on a syntax error or an unknown filter/test. */
struct jinja_template *jinja_template_parse(const char *source, const char *name);
void jinja_template_free(struct jinja_template *t);

/* One template variable; value NULL (or JSON null) is Python None. */
struct jinja_var {
    const char *name;
    const cJSON *value;
};

/* Renders with the variables (later entries override earlier ones of the same name) into a
 * malloc'd NUL-terminated UTF-8 string. Returns 0, or -1 with err set to
 * "name:line:col: Class: message" (Class as Jinja2 raises it: UndefinedError, TypeError,
 * TemplateError for raise_exception, ...). */
int jinja_render(const struct jinja_template *t, const struct jinja_var *vars, int n_vars, char **out,
                 size_t *out_len);
/* As jinja_render, and *gen (malloc'd, may be NULL when *n_gen is 0) gets the [start, end) byte
 * ranges of the output written by {% generation %} blocks, in order (2 * *n_gen values), as
 * transformers' AssistantTracker records them for return_assistant_tokens_mask. */
int jinja_render_marked(const struct jinja_template *t, const struct jinja_var *vars, int n_vars, char **out,
                        size_t *out_len, size_t **gen, int *n_gen);
/* 1 if the template holds a {% generation %} block. */
int jinja_template_has_generation(const struct jinja_template *t);
