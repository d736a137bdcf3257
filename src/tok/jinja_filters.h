/* jinja_filters: Jinja2's builtin filters (jinja2/filters.py, 3.1) on csft values, with
 * transformers' tojson (json.dumps, ensure_ascii=False, Python separators). */
#pragma once
#include "tok/jinja_eval.h"

/* 1 implemented, 2 a Jinja builtin csft does not implement, 0 unknown. */
int jinja_filter_known(const char *name);
struct jv *jinja_filter_apply(struct jctx *c, int pos, const char *name, struct jv *v, const struct jargs *a);
