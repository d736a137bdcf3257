/* jinja_builtins: Jinja2's default filters and tests, Python str/dict/list methods, and the
 * globals transformers adds (raise_exception, strftime_now) plus namespace/range/dict.
 * tojson is transformers' json.dumps(ensure_ascii=False) version, not Jinja's HTML-safe one. */
#pragma once
#include "tok/jinja_eval.h"

int jinja_test_known(const char *name);
int jinja_test_apply(struct jctx *c, int pos, const char *name, struct jv *v, const struct jargs *a);

/* Whether obj (str, list or dict) has a Python method of that name. */
int jinja_has_method(const struct jv *obj, const char *name);
struct jv *jinja_method_call(struct jctx *c, int pos, struct jv *obj, const char *name,
                             const struct jargs *a);

/* Global functions (namespace, range, dict, raise_exception, strftime_now, cycler-less subset). */
struct jv *jinja_global_lookup(const char *name);
struct jv *jinja_global_call(struct jctx *c, int pos, struct jv *fn, const struct jargs *a);

/* Python's `fmt % args` for str (%s %r %d %i %f %x %%). */
struct jv *jinja_percent_format(struct jctx *c, int pos, struct jv *fmt, struct jv *args);

/* String helpers shared with the filters. */
struct jv *jinja_need_str(struct jctx *c, int pos, struct jv *v, const char *what);
int64_t jinja_need_int(struct jctx *c, int pos, struct jv *v, const char *what);
struct jv *jinja_str_strip(struct jctx *c, struct jv *s, struct jv *chars, int left, int right);
enum { CASE_UPPER, CASE_LOWER, CASE_TITLE_PY, CASE_CAPITALIZE, CASE_SWAP };
struct jv *jinja_str_case(struct jctx *c, struct jv *s, int mode);
struct jv *jinja_str_title(struct jctx *c, struct jv *s); /* Jinja's title filter */
struct jv *jinja_str_replace(struct jctx *c, struct jv *s, struct jv *old, struct jv *new_, int64_t count);
/* str(item) (or item.attr) joined with sep (NULL: ""). */
struct jv *jinja_join(struct jctx *c, int pos, struct jv **items, int64_t n, struct jv *sep,
                      const char *attr);
/* Python str.isdigit ('d'), isalpha ('a'), isalnum ('n'), isspace ('s'), islower ('l'), isupper ('u'). */
int jinja_str_is(struct jv *s, int kind);
