/* jinja_eval: evaluates the AST with Jinja2 3.1 semantics under transformers' environment
 * (ImmutableSandboxedEnvironment, default Undefined: prints "", is falsy, iterates empty, and
 * raises UndefinedError on attribute access, calls and arithmetic). Scoping follows Jinja's
 * compiled code: a for-loop iteration and a macro call get fresh frames; `if` does not. */
#include "tok/jinja_eval.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/jinja_builtins.h"
#include "tok/jinja_filters.h"

void jctx_raise(struct jctx *c, int pos, const char *cls, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    jinja_line_col(c->t->src, c->t->src_len, pos, &line, &col);
    err_set("%s:%d:%d: %s: %s", c->t->name, line, col, cls, msg);
    longjmp(c->jb, 1);
}

void jctx_raise_undef(struct jctx *c, int pos, const struct jv *u) {
    jctx_raise(c, pos, "UndefinedError", "%s", u->s && u->s[0] ? u->s : "undefined value");
}

struct jv *jargs_get(const struct jargs *a, int i, const char *name) {
    if (i >= 0 && i < a->n) return a->args[i];
    if (name)
        for (int k = 0; k < a->n_kw; k++)
            if (!strcmp(a->kw_names[k], name)) return a->kw_vals[k];
    return NULL;
}

void jframe_set(struct jctx *c, struct jframe *f, const char *name, struct jv *v) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        const char **nn = jarena_alloc(&c->a, (size_t)cap * sizeof *nn);
        struct jv **vv = jarena_alloc(&c->a, (size_t)cap * sizeof *vv);
        if (f->n) {
            memcpy(nn, f->names, (size_t)f->n * sizeof *nn);
            memcpy(vv, f->vals, (size_t)f->n * sizeof *vv);
        }
        f->names = nn;
        f->vals = vv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

struct jv *jframe_get(struct jframe *f, const char *name) {
    for (; f; f = f->parent)
        for (int i = f->n - 1; i >= 0; i--)
            if (!strcmp(f->names[i], name)) return f->vals[i];
    return NULL;
}

static struct jframe *frame_new(struct jctx *c, struct jframe *parent) {
    struct jframe *f = jarena_alloc(&c->a, sizeof *f);
    f->parent = parent;
    return f;
}

/* Jinja's object_type_repr for undefined-value messages. */
static const char *obj_repr(const struct jv *v) {
    switch (v->kind) {
    case JV_NONE: return "None";
    case JV_DICT:
        return v->is_ns     ? "jinja2.utils.Namespace object"
               : v->is_loop ? "jinja2.runtime.LoopContext object"
                            : "dict object";
    case JV_LIST: return v->is_tuple ? "tuple object" : "list object";
    case JV_STR: return "str object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_BOOL: return "bool object";
    default: return "object";
    }
}

static struct jv *undef_attr(struct jctx *c, const struct jv *obj, const char *name) {
    char hint[512];
    if (obj->kind == JV_NONE)
        snprintf(hint, sizeof hint, "'None' has no attribute '%s'", name);
    else
        snprintf(hint, sizeof hint, "'%s' has no attribute '%s'", obj_repr(obj), name);
    return jv_undef(&c->a, hint);
}

static struct jv *bound_method(struct jctx *c, struct jv *obj, const char *name) {
    struct jv *m = jarena_alloc(&c->a, sizeof *m);
    m->kind = JV_FUNC;
    m->self = obj;
    m->s = name;
    return m;
}

static struct jv *loop_attr(struct jctx *c, struct jv *l, const char *name) {
    int64_t i = l->i, n = (int64_t)l->len;
    if (!strcmp(name, "index")) return jv_int(&c->a, i + 1);
    if (!strcmp(name, "index0")) return jv_int(&c->a, i);
    if (!strcmp(name, "revindex")) return jv_int(&c->a, n - i);
    if (!strcmp(name, "revindex0")) return jv_int(&c->a, n - i - 1);
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i == n - 1);
    if (!strcmp(name, "length")) return jv_int(&c->a, n);
    if (!strcmp(name, "depth")) return jv_int(&c->a, 1);
    if (!strcmp(name, "depth0")) return jv_int(&c->a, 0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? l->items[i - 1] : jv_undef(&c->a, "there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items[i + 1] : jv_undef(&c->a, "there is no next item");
    if (!strcmp(name, "cycle") || !strcmp(name, "changed")) return bound_method(c, l, name);
    return undef_attr(c, l, name);
}

struct jv *jinja_getattr(struct jctx *c, int pos, struct jv *obj, const char *name) {
    switch (obj->kind) {
    case JV_UNDEF: jctx_raise_undef(c, pos, obj);
    case JV_DICT: {
        if (obj->is_loop) return loop_attr(c, obj, name);
        if (!obj->is_ns && jinja_has_method(obj, name)) return bound_method(c, obj, name);
        struct jv *v = jv_dict_get(obj, name, strlen(name));
        return v ? v : undef_attr(c, obj, name);
    }
    case JV_STR:
    case JV_LIST:
        if (jinja_has_method(obj, name)) return bound_method(c, obj, name);
        return undef_attr(c, obj, name);
    default: return undef_attr(c, obj, name);
    }
}

struct jv *jinja_getitem(struct jctx *c, int pos, struct jv *obj, struct jv *key) {
    if (obj->kind == JV_UNDEF) jctx_raise_undef(c, pos, obj);
    if ((obj->kind == JV_LIST || obj->kind == JV_STR) && (key->kind == JV_INT || key->kind == JV_BOOL)) {
        int64_t n = obj->kind == JV_LIST ? obj->n : utf8_cp_len(obj->s, obj->len);
        int64_t i = key->i < 0 ? key->i + n : key->i;
        if (i >= 0 && i < n) {
            if (obj->kind == JV_LIST) return obj->items[i];
            size_t b = utf8_cp_offset(obj->s, obj->len, i), e = utf8_cp_offset(obj->s, obj->len, i + 1);
            return jv_str(&c->a, obj->s + b, e - b);
        }
        char hint[256];
        snprintf(hint, sizeof hint, "'%s' has no element %lld", obj_repr(obj), (long long)key->i);
        return jv_undef(&c->a, hint);
    }
    if (key->kind == JV_STR) {
        if (obj->kind == JV_DICT && !obj->is_loop) {
            struct jv *v = jv_dict_get(obj, key->s, key->len);
            if (v) return v;
        }
        return jinja_getattr(c, pos, obj, key->s);
    }
    if (obj->kind == JV_DICT && !obj->is_loop) {
        for (int64_t i = 0; i < obj->n; i++)
            if (jv_equal(obj->keys[i], key)) return obj->items[i];
    }
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jv_write_repr(&b, key);
    char hint[512];
    snprintf(hint, sizeof hint, "'%s' has no element %s", obj_repr(obj), b.p ? b.p : "");
    return jv_undef(&c->a, hint);
}

static struct jv *eval(struct jctx *c, const struct jnode *n, struct jframe *f);
static int exec_node(struct jctx *c, const struct jnode *n, struct jframe *f);

/* Items of an iterable (list items, dict keys, string characters); NULL n for non-iterables. */
static struct jv **iter_items(struct jctx *c, int pos, struct jv *v, int64_t *n) {
    switch (v->kind) {
    case JV_UNDEF: *n = 0; return NULL;
    case JV_LIST: *n = v->n; return v->items;
    case JV_DICT:
        if (v->is_ns || v->is_loop) break;
        *n = v->n;
        return v->keys;
    case JV_STR: {
        int64_t k = utf8_cp_len(v->s, v->len);
        struct jv **it = jarena_alloc(&c->a, (size_t)(k ? k : 1) * sizeof *it);
        size_t i = 0;
        for (int64_t j = 0; j < k; j++) {
            int32_t cp;
            int len = utf8_decode_one(v->s + i, v->len - i, &cp);
            it[j] = jv_str(&c->a, v->s + i, (size_t)len);
            i += (size_t)len;
        }
        *n = k;
        return it;
    }
    default: break;
    }
    jctx_raise(c, pos, "TypeError", "'%s' object is not iterable", jv_type_name(v));
}

struct jv **jinja_iter(struct jctx *c, int pos, struct jv *v, int64_t *n) {
    return iter_items(c, pos, v, n);
}

static void assign(struct jctx *c, const struct jnode *target, struct jv *v, struct jframe *f) {
    if (target->kind == JN_NAME) {
        jframe_set(c, f, target->name, v);
        return;
    }
    if (target->kind == JN_ATTR) {
        struct jv *ns = eval(c, target->a, f);
        if (ns->kind != JV_DICT || !ns->is_ns)
            jctx_raise(c, target->pos, "TemplateRuntimeError",
                       "cannot assign attribute on non-namespace object");
        jv_dict_set(&c->a, ns, jv_cstr(&c->a, target->name), v);
        return;
    }
    /* tuple unpacking */
    int64_t n;
    struct jv **it = iter_items(c, target->pos, v, &n);
    if (n != target->n_args)
        jctx_raise(c, target->pos, "ValueError", "%s values to unpack (expected %d, got %lld)",
                   n > target->n_args ? "too many" : "not enough", target->n_args, (long long)n);
    for (int i = 0; i < target->n_args; i++)
        assign(c, target->args[i], it[i], f);
}

static struct jv *str_concat(struct jctx *c, struct jv *x, struct jv *y) {
    char *s = jarena_alloc(&c->a, x->len + y->len + 1);
    memcpy(s, x->s, x->len);
    memcpy(s + x->len, y->s, y->len);
    return jv_str_take(&c->a, s, x->len + y->len);
}

static int is_numeric(const struct jv *v) {
    return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL;
}
static double num(const struct jv *v) { return v->kind == JV_FLOAT ? v->f : (double)v->i; }

static const char *op_name(int op) {
    switch (op) {
    case 'F': return "//";
    case 'P': return "**";
    case '+': return "+";
    case '-': return "-";
    case '*': return "*";
    case '/': return "/";
    case '%': return "%";
    }
    return "?";
}

static struct jv *repeat(struct jctx *c, int pos, struct jv *seq, int64_t k) {
    if (k < 0) k = 0;
    int64_t unit = seq->kind == JV_STR ? (int64_t)seq->len : seq->n;
    if (unit && k > ((int64_t)1 << 30) / unit)
        jctx_raise(c, pos, "MemoryError", "repetition result too large");
    if (seq->kind == JV_STR) {
        struct jbuf b;
        jbuf_init(&b, &c->a);
        jbuf_put(&b, "", 0);
        for (int64_t i = 0; i < k; i++)
            jbuf_put(&b, seq->s, seq->len);
        return jv_str_take(&c->a, b.p, b.len);
    }
    struct jv *l = jv_list(&c->a, seq->n * k);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < seq->n; j++)
            jv_list_push(&c->a, l, seq->items[j]);
    l->is_tuple = seq->is_tuple;
    return l;
}

static struct jv *binop(struct jctx *c, int pos, int op, struct jv *x, struct jv *y) {
    struct jarena *a = &c->a;
    if (op == '~') {
        struct jv *sx = jv_to_str(a, x), *sy = jv_to_str(a, y);
        return str_concat(c, sx, sy);
    }
    if (x->kind == JV_UNDEF) jctx_raise_undef(c, pos, x);
    if (y->kind == JV_UNDEF) jctx_raise_undef(c, pos, y);
    if (is_numeric(x) && is_numeric(y)) {
        int ints = x->kind != JV_FLOAT && y->kind != JV_FLOAT;
        int64_t xi = x->i, yi = y->i;
        double xf = num(x), yf = num(y);
        switch (op) {
        case '+': return ints ? jv_int(a, xi + yi) : jv_float(a, xf + yf);
        case '-': return ints ? jv_int(a, xi - yi) : jv_float(a, xf - yf);
        case '*': return ints ? jv_int(a, xi * yi) : jv_float(a, xf * yf);
        case '/':
            if (yf == 0) jctx_raise(c, pos, "ZeroDivisionError", "division by zero");
            return jv_float(a, xf / yf);
        case 'F':
        case '%':
            if (ints) {
                if (yi == 0) jctx_raise(c, pos, "ZeroDivisionError", "integer division or modulo by zero");
                int64_t q = xi / yi, r = xi % yi;
                if (r != 0 && ((r < 0) != (yi < 0))) {
                    q--;
                    r += yi;
                }
                return jv_int(a, op == 'F' ? q : r);
            }
            if (yf == 0) jctx_raise(c, pos, "ZeroDivisionError", "float division by zero");
            if (op == 'F') return jv_float(a, floor(xf / yf));
            double r = fmod(xf, yf);
            if (r != 0 && ((r < 0) != (yf < 0))) r += yf;
            return jv_float(a, r);
        case 'P':
            if (ints && yi >= 0) {
                int64_t r = 1;
                for (int64_t i = 0; i < yi; i++)
                    r *= xi;
                return jv_int(a, r);
            }
            return jv_float(a, pow(xf, yf));
        }
    }
    if (op == '+' && x->kind == JV_STR && y->kind == JV_STR) return str_concat(c, x, y);
    if (op == '+' && x->kind == JV_LIST && y->kind == JV_LIST && x->is_tuple == y->is_tuple) {
        struct jv *l = jv_list(a, x->n + y->n);
        for (int64_t i = 0; i < x->n; i++)
            jv_list_push(a, l, x->items[i]);
        for (int64_t i = 0; i < y->n; i++)
            jv_list_push(a, l, y->items[i]);
        l->is_tuple = x->is_tuple;
        return l;
    }
    if (op == '*' && (x->kind == JV_STR || x->kind == JV_LIST) && (y->kind == JV_INT || y->kind == JV_BOOL))
        return repeat(c, pos, x, y->i);
    if (op == '*' && (y->kind == JV_STR || y->kind == JV_LIST) && (x->kind == JV_INT || x->kind == JV_BOOL))
        return repeat(c, pos, y, x->i);
    if (op == '%' && x->kind == JV_STR) return jinja_percent_format(c, pos, x, y);
    if (op == '+' && x->kind == JV_STR)
        jctx_raise(c, pos, "TypeError", "can only concatenate str (not \"%s\") to str", jv_type_name(y));
    if (op == '+' && x->kind == JV_LIST)
        jctx_raise(c, pos, "TypeError", "can only concatenate list (not \"%s\") to list", jv_type_name(y));
    jctx_raise(c, pos, "TypeError", "unsupported operand type(s) for %s: '%s' and '%s'", op_name(op),
               jv_type_name(x), jv_type_name(y));
}

int jinja_contains(struct jctx *c, int pos, struct jv *item, struct jv *seq) {
    switch (seq->kind) {
    case JV_UNDEF: return 0;
    case JV_STR:
        if (item->kind == JV_UNDEF) jctx_raise_undef(c, pos, item);
        if (item->kind != JV_STR)
            jctx_raise(c, pos, "TypeError", "'in <string>' requires string as left operand, not %s",
                       jv_type_name(item));
        if (item->len == 0) return 1;
        return memmem(seq->s, seq->len, item->s, item->len) != NULL;
    case JV_LIST:
        for (int64_t i = 0; i < seq->n; i++)
            if (jv_equal(seq->items[i], item)) return 1;
        return 0;
    case JV_DICT:
        if (!seq->is_loop)
            for (int64_t i = 0; i < seq->n; i++)
                if (jv_equal(seq->keys[i], item)) return 1;
        return 0;
    default: jctx_raise(c, pos, "TypeError", "argument of type '%s' is not iterable", jv_type_name(seq));
    }
}

static struct jv *compare(struct jctx *c, int pos, int op, struct jv *x, struct jv *y) {
    switch (op) {
    case 'E': return jv_bool(jv_equal(x, y));
    case 'N': return jv_bool(!jv_equal(x, y));
    case 'i': return jv_bool(jinja_contains(c, pos, x, y));
    case 'I': return jv_bool(!jinja_contains(c, pos, x, y));
    }
    if (x->kind == JV_UNDEF) jctx_raise_undef(c, pos, x);
    if (y->kind == JV_UNDEF) jctx_raise_undef(c, pos, y);
    int r = jv_compare(x, y);
    const char *sym = op == '<' ? "<" : op == 'L' ? "<=" : op == '>' ? ">" : ">=";
    if (r == -2)
        jctx_raise(c, pos, "TypeError", "'%s' not supported between instances of '%s' and '%s'", sym,
                   jv_type_name(x), jv_type_name(y));
    switch (op) {
    case '<': return jv_bool(r < 0);
    case 'L': return jv_bool(r <= 0);
    case '>': return jv_bool(r > 0);
    default: return jv_bool(r >= 0);
    }
}

static void eval_args(struct jctx *c, const struct jnode *n, struct jframe *f, struct jargs *a) {
    memset(a, 0, sizeof *a);
    a->n = n->n_args;
    if (n->n_args) {
        a->args = jarena_alloc(&c->a, (size_t)n->n_args * sizeof *a->args);
        for (int i = 0; i < n->n_args; i++)
            a->args[i] = eval(c, n->args[i], f);
    }
    a->n_kw = n->n_kw;
    a->kw_names = n->kw_names;
    if (n->n_kw) {
        a->kw_vals = jarena_alloc(&c->a, (size_t)n->n_kw * sizeof *a->kw_vals);
        for (int i = 0; i < n->n_kw; i++)
            a->kw_vals[i] = eval(c, n->kw_vals[i], f);
    }
}

static struct jv *call_value(struct jctx *c, int pos, struct jv *fn, struct jargs *a, struct jv *caller) {
    if (fn->kind == JV_MACRO)
        return jinja_macro_call(c, pos, fn, a->args, a->n, a->kw_names, a->kw_vals, a->n_kw, caller);
    if (fn->kind == JV_FUNC) {
        if (fn->self) return jinja_method_call(c, pos, fn->self, fn->s, a);
        return jinja_global_call(c, pos, fn, a);
    }
    if (fn->kind == JV_UNDEF) jctx_raise_undef(c, pos, fn);
    jctx_raise(c, pos, "TypeError", "'%s' object is not callable", jv_type_name(fn));
}

static struct jv *slice(struct jctx *c, const struct jnode *n, struct jframe *f) {
    struct jv *obj = eval(c, n->a, f);
    if (obj->kind == JV_UNDEF) jctx_raise_undef(c, n->pos, obj);
    struct jv *sv[3] = {n->b ? eval(c, n->b, f) : &jv_none, n->c ? eval(c, n->c, f) : &jv_none,
                        n->d ? eval(c, n->d, f) : &jv_none};
    for (int i = 0; i < 3; i++)
        if (sv[i]->kind != JV_NONE && sv[i]->kind != JV_INT && sv[i]->kind != JV_BOOL)
            jctx_raise(c, n->pos, "TypeError", "slice indices must be integers or None");
    if (obj->kind != JV_LIST && obj->kind != JV_STR)
        jctx_raise(c, n->pos, "TypeError", "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t len = obj->kind == JV_LIST ? obj->n : utf8_cp_len(obj->s, obj->len);
    int64_t step = sv[2]->kind == JV_NONE ? 1 : sv[2]->i;
    if (step == 0) jctx_raise(c, n->pos, "ValueError", "slice step cannot be zero");
    int64_t start, stop;
    /* CPython PySlice_AdjustIndices */
    if (sv[0]->kind == JV_NONE)
        start = step < 0 ? len - 1 : 0;
    else {
        start = sv[0]->i;
        if (start < 0) {
            start += len;
            if (start < 0) start = step < 0 ? -1 : 0;
        } else if (start >= len)
            start = step < 0 ? len - 1 : len;
    }
    if (sv[1]->kind == JV_NONE)
        stop = step < 0 ? -1 : len;
    else {
        stop = sv[1]->i;
        if (stop < 0) {
            stop += len;
            if (stop < 0) stop = step < 0 ? -1 : 0;
        } else if (stop >= len)
            stop = step < 0 ? len - 1 : len;
    }
    if (obj->kind == JV_LIST) {
        struct jv *l = jv_list(&c->a, 0);
        l->is_tuple = obj->is_tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jv_list_push(&c->a, l, obj->items[i]);
        return l;
    }
    /* strings: by code point */
    size_t *off = xmalloc((size_t)(len + 1) * sizeof *off);
    for (int64_t i = 0, b = 0; i <= len; i++) {
        off[i] = (size_t)b;
        if (i < len) {
            int32_t cp;
            b += utf8_decode_one(obj->s + b, obj->len - (size_t)b, &cp);
        }
    }
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    if (step == 1 && start < stop)
        jbuf_put(&b, obj->s + off[start], off[stop] - off[start]);
    else
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jbuf_put(&b, obj->s + off[i], off[i + 1] - off[i]);
    free(off);
    return jv_str_take(&c->a, b.p, b.len);
}

static struct jv *eval(struct jctx *c, const struct jnode *n, struct jframe *f) {
    struct jarena *a = &c->a;
    switch (n->kind) {
    case JN_CONST: return n->val;
    case JN_NAME: {
        struct jv *v = jframe_get(f, n->name);
        if (v) return v;
        v = jinja_global_lookup(n->name);
        if (v) return v;
        char hint[300];
        snprintf(hint, sizeof hint, "'%s' is undefined", n->name);
        return jv_undef(a, hint);
    }
    case JN_LIST:
    case JN_TUPLE: {
        struct jv *l = jv_list(a, n->n_args);
        l->is_tuple = n->kind == JN_TUPLE;
        for (int i = 0; i < n->n_args; i++)
            jv_list_push(a, l, eval(c, n->args[i], f));
        return l;
    }
    case JN_DICT: {
        struct jv *d = jv_dict(a);
        for (int i = 0; i + 1 < n->n_args; i += 2) {
            struct jv *k = eval(c, n->args[i], f);
            if (k->kind != JV_STR) k = jv_to_str(a, k); /* keys are kept as strings */
            jv_dict_set(a, d, k, eval(c, n->args[i + 1], f));
        }
        return d;
    }
    case JN_ATTR: return jinja_getattr(c, n->pos, eval(c, n->a, f), n->name);
    case JN_ITEM: return jinja_getitem(c, n->pos, eval(c, n->a, f), eval(c, n->b, f));
    case JN_SLICE: return slice(c, n, f);
    case JN_CALL: {
        struct jargs args;
        if (n->a->kind == JN_ATTR) { /* method call without building a bound method */
            struct jv *obj = eval(c, n->a->a, f);
            struct jv *fn = jinja_getattr(c, n->a->pos, obj, n->a->name);
            eval_args(c, n, f, &args);
            if (fn->kind == JV_UNDEF) jctx_raise_undef(c, n->pos, fn);
            return call_value(c, n->pos, fn, &args, NULL);
        }
        struct jv *fn = eval(c, n->a, f);
        eval_args(c, n, f, &args);
        return call_value(c, n->pos, fn, &args, NULL);
    }
    case JN_FILTER: {
        struct jv *v = n->a ? eval(c, n->a, f) : c->filter_operand;
        struct jargs args;
        eval_args(c, n, f, &args);
        return jinja_filter_apply(c, n->pos, n->name, v, &args);
    }
    case JN_TEST: {
        struct jv *v = eval(c, n->a, f);
        struct jargs args;
        eval_args(c, n, f, &args);
        int r = jinja_test_apply(c, n->pos, n->name, v, &args);
        return jv_bool(n->op ? !r : r);
    }
    case JN_UNARY: {
        struct jv *v = eval(c, n->a, f);
        if (n->op == 'n') return jv_bool(!jv_truthy(v));
        if (v->kind == JV_UNDEF) jctx_raise_undef(c, n->pos, v);
        if (v->kind == JV_INT || v->kind == JV_BOOL) return n->op == '-' ? jv_int(a, -v->i) : jv_int(a, v->i);
        if (v->kind == JV_FLOAT) return n->op == '-' ? jv_float(a, -v->f) : v;
        jctx_raise(c, n->pos, "TypeError", "bad operand type for unary %c: '%s'", n->op, jv_type_name(v));
    }
    case JN_BINOP: {
        struct jv *x = eval(c, n->a, f), *y = eval(c, n->b, f);
        return binop(c, n->pos, n->op, x, y);
    }
    case JN_AND: {
        struct jv *x = eval(c, n->a, f);
        return jv_truthy(x) ? eval(c, n->b, f) : x;
    }
    case JN_OR: {
        struct jv *x = eval(c, n->a, f);
        return jv_truthy(x) ? x : eval(c, n->b, f);
    }
    case JN_COMPARE: {
        struct jv *x = eval(c, n->a, f), *y = eval(c, n->b, f);
        return compare(c, n->pos, n->op, x, y);
    }
    case JN_COND:
        if (jv_truthy(eval(c, n->a, f))) return eval(c, n->b, f);
        if (n->c) return eval(c, n->c, f);
        return jv_undef(a, "the inline if-expression evaluated to false and no else section was defined.");
    default: jctx_raise(c, n->pos, "TemplateRuntimeError", "statement used as an expression");
    }
}

/* Renders a body into a fresh buffer and returns it as a string. */
static struct jv *capture(struct jctx *c, const struct jnode *body, struct jframe *f) {
    struct jbuf b, *saved = c->out;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    c->out = &b;
    exec_node(c, body, f);
    c->out = saved;
    return jv_str_take(&c->a, b.p, b.len);
}

struct jv *jinja_macro_call(struct jctx *c, int pos, struct jv *macro, struct jv **args, int n_args,
                            const char **kw_names, struct jv **kw_vals, int n_kw, struct jv *caller) {
    const struct jnode *m = macro->node, *params = m->d;
    if (c->depth >= JINJA_MAX_DEPTH) jctx_raise(c, pos, "RecursionError", "maximum recursion depth exceeded");
    struct jframe *f = frame_new(c, macro->frame);
    int np = params->n_args, nd = params->n_kw;
    /* parameters: params->args are names without defaults, kw_names/kw_vals with defaults */
    struct jv *varargs = jv_list(&c->a, 0), *kwargs = jv_dict(&c->a);
    varargs->is_tuple = 1;
    for (int i = 0; i < n_args; i++) {
        if (i < np)
            jframe_set(c, f, params->args[i]->name, args[i]);
        else if (i < np + nd)
            jframe_set(c, f, params->kw_names[i - np], args[i]);
        else
            jv_list_push(&c->a, varargs, args[i]);
    }
    for (int k = 0; k < n_kw; k++) {
        int hit = 0;
        for (int i = 0; i < np; i++)
            hit |= !strcmp(params->args[i]->name, kw_names[k]);
        for (int i = 0; i < nd; i++)
            hit |= !strcmp(params->kw_names[i], kw_names[k]);
        if (hit)
            jframe_set(c, f, kw_names[k], kw_vals[k]);
        else
            jv_dict_set(&c->a, kwargs, jv_cstr(&c->a, kw_names[k]), kw_vals[k]);
    }
    for (int i = 0; i < np; i++) {
        int found = 0;
        for (int j = 0; j < f->n; j++)
            found |= !strcmp(f->names[j], params->args[i]->name);
        if (!found) {
            char hint[300];
            snprintf(hint, sizeof hint, "parameter '%s' was not provided", params->args[i]->name);
            jframe_set(c, f, params->args[i]->name, jv_undef(&c->a, hint));
        }
    }
    for (int i = 0; i < nd; i++) {
        int found = 0;
        for (int j = 0; j < f->n; j++)
            found |= !strcmp(f->names[j], params->kw_names[i]);
        if (!found) jframe_set(c, f, params->kw_names[i], eval(c, params->kw_vals[i], f));
    }
    jframe_set(c, f, "varargs", varargs);
    jframe_set(c, f, "kwargs", kwargs);
    if (caller) jframe_set(c, f, "caller", caller);
    (void)pos;
    c->depth++;
    struct jv *r = capture(c, m->b, f);
    c->depth--;
    return r;
}

/* Returns 0, or 1 for break, 2 for continue. */
static int exec_body(struct jctx *c, const struct jnode *body, struct jframe *f) {
    for (int i = 0; i < body->n_args; i++) {
        int r = exec_node(c, body->args[i], f);
        if (r) return r;
    }
    return 0;
}

static int exec_for(struct jctx *c, const struct jnode *n, struct jframe *f) {
    struct jv *seq = eval(c, n->a, f);
    int64_t cnt;
    struct jv **items = iter_items(c, n->a->pos, seq, &cnt);
    if (seq->kind == JV_DICT ||
        seq->kind == JV_LIST) { /* snapshot: the body may not change what we iterate */
        struct jv **copy = jarena_alloc(&c->a, (size_t)(cnt ? cnt : 1) * sizeof *copy);
        if (cnt) memcpy(copy, items, (size_t)cnt * sizeof *copy);
        items = copy;
    }
    if (n->c2) { /* for x in xs if cond: filter first, so loop.length counts the kept items */
        struct jv **kept = jarena_alloc(&c->a, (size_t)(cnt ? cnt : 1) * sizeof *kept);
        int64_t k = 0;
        for (int64_t i = 0; i < cnt; i++) {
            struct jframe *tf = frame_new(c, f);
            assign(c, n->d, items[i], tf);
            if (jv_truthy(eval(c, n->c2, tf))) kept[k++] = items[i];
        }
        items = kept;
        cnt = k;
    }
    if (cnt == 0) {
        if (n->c) exec_body(c, n->c, frame_new(c, f));
        return 0;
    }
    for (int64_t i = 0; i < cnt; i++) {
        struct jframe *it = frame_new(c, f);
        struct jv *loop = jarena_alloc(&c->a, sizeof *loop);
        loop->kind = JV_DICT;
        loop->is_loop = 1;
        loop->i = i;
        loop->len = (size_t)cnt;
        loop->items = items;
        jframe_set(c, it, "loop", loop);
        assign(c, n->d, items[i], it);
        int r = exec_body(c, n->b, it);
        if (r == 1) break;
    }
    return 0;
}

static int exec_node(struct jctx *c, const struct jnode *n, struct jframe *f) {
    switch (n->kind) {
    case JN_BODY: return exec_body(c, n, f);
    case JN_TEXT: jbuf_put(c->out, n->val->s, n->val->len); return 0;
    case JN_OUTPUT: jv_write_str(c->out, eval(c, n->a, f)); return 0;
    case JN_IF:
        if (jv_truthy(eval(c, n->a, f))) return exec_node(c, n->b, f);
        if (n->c) return exec_node(c, n->c, f);
        return 0;
    case JN_FOR: return exec_for(c, n, f);
    case JN_SET: {
        struct jv *v;
        if (n->a)
            v = eval(c, n->a, f);
        else {
            v = capture(c, n->b, f);
            if (n->e) {
                struct jv *saved = c->filter_operand;
                c->filter_operand = v;
                v = eval(c, n->e, f);
                c->filter_operand = saved;
            }
        }
        assign(c, n->d, v, f);
        return 0;
    }
    case JN_MACRO:
    case JN_CALLBLOCK: {
        struct jv *m = jarena_alloc(&c->a, sizeof *m);
        m->kind = JV_MACRO;
        m->node = n;
        m->frame = f;
        if (n->kind == JN_MACRO) {
            jframe_set(c, f, n->name, m);
            return 0;
        }
        /* {% call %}: the callee gets `caller`, a macro rendering this block's body */
        struct jv *fn = eval(c, n->a->a, f);
        struct jargs args;
        eval_args(c, n->a, f, &args);
        jv_write_str(c->out, call_value(c, n->pos, fn, &args, m));
        return 0;
    }
    case JN_FILTERBLOCK: {
        struct jv *v = capture(c, n->b, f);
        struct jv *saved = c->filter_operand;
        c->filter_operand = v;
        v = eval(c, n->e, f);
        c->filter_operand = saved;
        jv_write_str(c->out, v);
        return 0;
    }
    case JN_BREAK: return 1;
    case JN_CONTINUE: return 2;
    case JN_GENERATION: {
        size_t start = c->out->len;
        int r = exec_node(c, n->b, f);
        if (c->out == c->top && c->out->len > start) {
            if (c->n_gen == c->cap_gen) {
                c->cap_gen = c->cap_gen ? 2 * c->cap_gen : 8;
                c->gen = xrealloc(c->gen, (size_t)c->cap_gen * 2 * sizeof *c->gen);
            }
            c->gen[2 * c->n_gen] = start;
            c->gen[2 * c->n_gen + 1] = c->out->len;
            c->n_gen++;
        }
        return r;
    }
    default: jv_write_str(c->out, eval(c, n, f)); return 0;
    }
}

void jctx_init(struct jctx *c, const struct jinja_ast *t) {
    memset(c, 0, sizeof *c);
    c->t = t;
}

int jinja_eval_render(struct jctx *c, const char *const *names, struct jv *const *vals, int n, char **out,
                      size_t *out_len) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    c->out = c->top = &b;
    c->root = frame_new(c, NULL);
    for (int i = 0; i < n; i++)
        jframe_set(c, c->root, names[i], vals[i]);
    if (setjmp(c->jb)) {
        jarena_free(&c->a);
        return -1;
    }
    exec_node(c, c->t->root, frame_new(c, c->root));
    *out = xmalloc(b.len + 1);
    memcpy(*out, b.p, b.len + 1);
    if (out_len) *out_len = b.len;
    jarena_free(&c->a);
    return 0;
}
