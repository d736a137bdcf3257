/* jinja_eval: the tree-walking interpreter. A render owns one arena (all values), a frame
 * chain for scopes (one frame per for-loop iteration and macro call, as Jinja2's compiled
 * code does), and a jmp_buf: any runtime error records "name:line:col: Class: message" with
 * err_set and unwinds to jinja_eval_render, which frees the arena. */
#pragma once
#include <setjmp.h>

#include "tok/jinja_parse.h"

enum { JINJA_MAX_DEPTH = 500 };

struct jframe {
    struct jframe *parent;
    const char **names;
    struct jv **vals;
    int n, cap;
};

struct jctx {
    struct jarena a;
    const struct jinja_ast *t;
    struct jframe *root;
    struct jbuf *out;
    struct jv *filter_operand; /* operand of {% filter %} / block set filters */
    int depth;                 /* macro call depth (RecursionError past JINJA_MAX_DEPTH) */
    struct jbuf *top;          /* the render's output (generation ranges are recorded there only) */
    size_t *gen;               /* malloc'd [start, end) byte pairs of {% generation %} output */
    int n_gen, cap_gen;
    jmp_buf jb;
};

/* Raises a runtime error at node position pos (cls: "TypeError", "UndefinedError", ...). */
__attribute__((noreturn, format(printf, 4, 5))) void jctx_raise(struct jctx *c, int pos, const char *cls,
                                                                const char *fmt, ...);
/* Raises UndefinedError for an Undefined value with its hint. */
__attribute__((noreturn)) void jctx_raise_undef(struct jctx *c, int pos, const struct jv *u);

void jframe_set(struct jctx *c, struct jframe *f, const char *name, struct jv *v);
struct jv *jframe_get(struct jframe *f, const char *name);

/* Calls a macro value with evaluated arguments; caller is the {% call %} body macro or NULL. */
struct jv *jinja_macro_call(struct jctx *c, int pos, struct jv *macro, struct jv **args, int n_args,
                            const char **kw_names, struct jv **kw_vals, int n_kw, struct jv *caller);

/* Jinja's environment.getattr(obj, name) (attribute, then item) and getitem(obj, key). */
struct jv *jinja_getattr(struct jctx *c, int pos, struct jv *obj, const char *name);
struct jv *jinja_getitem(struct jctx *c, int pos, struct jv *obj, struct jv *key);

/* Items of an iterable: list items, dict keys, string characters; Undefined is empty.
 * Raises TypeError for non-iterables. */
struct jv **jinja_iter(struct jctx *c, int pos, struct jv *v, int64_t *n);
/* Python `item in seq`. */
int jinja_contains(struct jctx *c, int pos, struct jv *item, struct jv *seq);

/* Evaluated call arguments. */
struct jargs {
    struct jv **args;
    int n;
    const char **kw_names;
    struct jv **kw_vals;
    int n_kw;
};
/* Positional i or keyword name (NULL name: positional only); NULL when absent. */
struct jv *jargs_get(const struct jargs *a, int i, const char *name);

/* Starts a render of t: c->a is ready for converting input values. */
void jctx_init(struct jctx *c, const struct jinja_ast *t);
/* Renders with the given variables (values in c->a) into a malloc'd string, then frees c->a.
 * Returns 0 or -1 with err set. */
int jinja_eval_render(struct jctx *c, const char *const *names, struct jv *const *vals, int n, char **out,
                      size_t *out_len);
