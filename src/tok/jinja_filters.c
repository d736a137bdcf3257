/* jinja_filters: the builtin filters chat templates use. Undefined inputs behave as in Jinja2
 * with the default Undefined: they stringify to "", have length 0 and iterate empty; `default`
 * replaces them; tojson raises TypeError on them (json.dumps cannot serialise Undefined). */
#include "tok/jinja_filters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "tok/jinja_builtins.h"

static const char *filters_impl[] = {
    "abs",       "attr",        "capitalize", "center",   "count",  "d",      "default", "dictsort",
    "e",         "escape",      "first",      "float",    "format", "indent", "int",     "items",
    "join",      "last",        "length",     "list",     "lower",  "map",    "max",     "min",
    "reject",    "rejectattr",  "replace",    "reverse",  "round",  "safe",   "select",  "selectattr",
    "sort",      "string",      "sum",        "title",    "tojson", "trim",   "unique",  "upper",
    "wordcount", "forceescape", "striptags",  "truncate", NULL};
static const char *filters_unsupported[] = {"batch",    "filesizeformat", "groupby",   "pprint",
                                            "random",   "slice",          "urlencode", "urlize",
                                            "wordwrap", "xmlattr",        NULL};

static int in_set(const char *const *set, const char *name) {
    for (int i = 0; set[i]; i++)
        if (!strcmp(set[i], name)) return 1;
    return 0;
}

int jinja_filter_known(const char *name) {
    if (in_set(filters_impl, name)) return 1;
    if (in_set(filters_unsupported, name)) return 2;
    return 0;
}

static int64_t length(struct jctx *c, int pos, struct jv *v) {
    switch (v->kind) {
    case JV_UNDEF: return 0;
    case JV_STR: return utf8_cp_len(v->s, v->len);
    case JV_LIST: return v->n;
    case JV_DICT:
        if (!v->is_loop) return v->n;
        break;
    default: break;
    }
    jctx_raise(c, pos, "TypeError", "object of type '%s' has no len()", jv_type_name(v));
}

/* Dotted attribute path ("a.b", "0.name") as Jinja's make_attrgetter does. */
static struct jv *attr_path(struct jctx *c, int pos, struct jv *v, struct jv *attr) {
    if (attr->kind == JV_INT) return jinja_getitem(c, pos, v, attr);
    jinja_need_str(c, pos, attr, "attribute");
    const char *s = attr->s;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        char part[256];
        if (n >= sizeof part) n = sizeof part - 1;
        memcpy(part, s, n);
        part[n] = 0;
        int numeric = n > 0;
        for (size_t i = 0; i < n; i++)
            numeric &= part[i] >= '0' && part[i] <= '9';
        v = numeric ? jinja_getitem(c, pos, v, jv_int(&c->a, atoll(part)))
                    : jinja_getitem(c, pos, v, jv_cstr(&c->a, part));
        s += n;
        if (*s == '.') s++;
    }
    return v;
}

static struct jv *list_of(struct jctx *c, int pos, struct jv *v) {
    int64_t n;
    struct jv **it = jinja_iter(c, pos, v, &n);
    struct jv *l = jv_list(&c->a, n);
    for (int64_t i = 0; i < n; i++)
        jv_list_push(&c->a, l, it[i]);
    return l;
}

/* Sort key: lower-cased strings unless case_sensitive (Jinja's ignore_case). */
static struct jv *sort_key(struct jctx *c, int pos, struct jv *v, struct jv *attr, int case_sensitive) {
    if (attr && attr->kind != JV_NONE) v = attr_path(c, pos, v, attr);
    if (!case_sensitive && v->kind == JV_STR) v = jinja_str_case(c, v, CASE_LOWER);
    return v;
}

static void sort_items(struct jctx *c, int pos, struct jv **items, struct jv **keys, int64_t n, int reverse) {
    /* stable insertion sort (Python's sort is stable); templates sort short lists */
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = i; j > 0; j--) {
            int r = jv_compare(keys[j - 1], keys[j]);
            if (r == -2)
                jctx_raise(c, pos, "TypeError", "'<' not supported between instances of '%s' and '%s'",
                           jv_type_name(keys[j]), jv_type_name(keys[j - 1]));
            if (reverse ? r >= 0 : r <= 0) break;
            struct jv *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
            t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
}

static struct jv *do_tojson(struct jctx *c, int pos, struct jv *v, const struct jargs *a) {
    struct jv_json_opts o = {.indent = -1};
    struct jv *ea = jargs_get(a, 0, "ensure_ascii"), *ind = jargs_get(a, 1, "indent"),
              *sep = jargs_get(a, 2, "separators"), *sk = jargs_get(a, 3, "sort_keys");
    if (ea) o.ensure_ascii = jv_truthy(ea);
    if (ind && ind->kind != JV_NONE) o.indent = (int)jinja_need_int(c, pos, ind, "tojson indent");
    if (sk) o.sort_keys = jv_truthy(sk);
    if (sep && sep->kind != JV_NONE) {
        if (sep->kind != JV_LIST || sep->n != 2 || sep->items[0]->kind != JV_STR ||
            sep->items[1]->kind != JV_STR)
            jctx_raise(c, pos, "TypeError", "tojson separators must be a pair of strings");
        o.item_sep = sep->items[0]->s;
        o.key_sep = sep->items[1]->s;
    }
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    const struct jv *bad = NULL;
    if (jv_write_json(&b, v, &o, &bad)) {
        if (bad->kind == JV_UNDEF)
            jctx_raise(c, pos, "TypeError", "Object of type Undefined is not JSON serializable");
        jctx_raise(c, pos, "TypeError", "Object of type %s is not JSON serializable", jv_type_name(bad));
    }
    return jv_str_take(&c->a, b.p, b.len);
}

static struct jv *do_indent(struct jctx *c, int pos, struct jv *s, const struct jargs *a) {
    struct jv *w = jargs_get(a, 0, "width"), *first = jargs_get(a, 1, "first"),
              *blank = jargs_get(a, 2, "blank");
    struct jbuf ind;
    jbuf_init(&ind, &c->a);
    jbuf_put(&ind, "", 0);
    if (w && w->kind == JV_STR)
        jbuf_put(&ind, w->s, w->len);
    else
        for (int64_t i = 0, n = w ? jinja_need_int(c, pos, w, "indent width") : 4; i < n; i++)
            jbuf_putc(&ind, ' ');
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    if (first && jv_truthy(first)) jbuf_put(&b, ind.p, ind.len);
    /* s + "\n" split into lines; the first line is never indented */
    size_t st = 0;
    int line = 0;
    for (size_t i = 0; i <= s->len; i++) {
        if (i < s->len && s->s[i] != '\n') continue;
        if (i == s->len && st == s->len) break; /* the appended "\n" leaves no extra line */
        if (line) {
            jbuf_putc(&b, '\n');
            if (i > st || (blank && jv_truthy(blank))) jbuf_put(&b, ind.p, ind.len);
        }
        jbuf_put(&b, s->s + st, i - st);
        st = i + 1;
        line++;
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* select/reject/selectattr/rejectattr */
static struct jv *do_select(struct jctx *c, int pos, struct jv *v, const struct jargs *a, int want,
                            int by_attr) {
    int64_t n;
    struct jv **it = jinja_iter(c, pos, v, &n);
    struct jv *attr = by_attr ? jargs_get(a, 0, NULL) : NULL;
    if (by_attr && !attr) jctx_raise(c, pos, "TypeError", "selectattr/rejectattr need an attribute");
    int off = by_attr ? 1 : 0;
    struct jv *test = jargs_get(a, off, NULL);
    struct jargs ta = {0};
    if (test) {
        jinja_need_str(c, pos, test, "test name");
        if (!jinja_test_known(test->s))
            jctx_raise(c, pos, "TemplateRuntimeError", "No test named '%s'.", test->s);
        ta.args = a->args + off + 1;
        ta.n = a->n - off - 1 > 0 ? a->n - off - 1 : 0;
    }
    struct jv *l = jv_list(&c->a, 0);
    for (int64_t i = 0; i < n; i++) {
        struct jv *x = attr ? attr_path(c, pos, it[i], attr) : it[i];
        int r = test ? jinja_test_apply(c, pos, test->s, x, &ta) : jv_truthy(x);
        if (r == want) jv_list_push(&c->a, l, it[i]);
    }
    return l;
}

static struct jv *do_map(struct jctx *c, int pos, struct jv *v, const struct jargs *a) {
    int64_t n;
    struct jv **it = jinja_iter(c, pos, v, &n);
    struct jv *l = jv_list(&c->a, n);
    struct jv *attr = jargs_get(a, -1, "attribute");
    if (attr) {
        struct jv *def = jargs_get(a, -1, "default");
        for (int64_t i = 0; i < n; i++) {
            struct jv *x = attr_path(c, pos, it[i], attr);
            jv_list_push(&c->a, l, x->kind == JV_UNDEF && def ? def : x);
        }
        return l;
    }
    struct jv *fname = jargs_get(a, 0, NULL);
    if (!fname) jctx_raise(c, pos, "FilterArgumentError", "map requires a filter argument");
    jinja_need_str(c, pos, fname, "filter name");
    if (jinja_filter_known(fname->s) != 1)
        jctx_raise(c, pos, "TemplateRuntimeError", "No filter named '%s'.", fname->s);
    struct jargs fa = *a;
    fa.args = a->args + 1;
    fa.n = a->n - 1;
    for (int64_t i = 0; i < n; i++)
        jv_list_push(&c->a, l, jinja_filter_apply(c, pos, fname->s, it[i], &fa));
    return l;
}

static struct jv *html_escape(struct jctx *c, struct jv *s) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    for (size_t i = 0; i < s->len; i++)
        switch (s->s[i]) {
        case '&': jbuf_puts(&b, "&amp;"); break;
        case '<': jbuf_puts(&b, "&lt;"); break;
        case '>': jbuf_puts(&b, "&gt;"); break;
        case '"': jbuf_puts(&b, "&#34;"); break;
        case '\'': jbuf_puts(&b, "&#39;"); break;
        default: jbuf_putc(&b, s->s[i]);
        }
    return jv_str_take(&c->a, b.p, b.len);
}

/* A float that converts to int64 (|x| < 2^63); others raise OverflowError (Python's int is
 * unbounded, ours is not). */
static int64_t float_to_int(struct jctx *c, int pos, double f) {
    if (!(f > -9223372036854775808.0 && f < 9223372036854775808.0))
        jctx_raise(c, pos, "OverflowError", "cannot convert float %g to a 64-bit integer", f);
    return (int64_t)f;
}

static struct jv *to_int(struct jctx *c, int pos, struct jv *v, struct jv *def) {
    switch (v->kind) {
    case JV_INT:
    case JV_BOOL: return jv_int(&c->a, v->i);
    case JV_FLOAT: return isfinite(v->f) ? jv_int(&c->a, float_to_int(c, pos, v->f)) : def;
    case JV_STR: {
        char *end;
        char *s = jarena_strndup(&c->a, v->s, v->len);
        long long x = strtoll(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (end != s && !*end) return jv_int(&c->a, x);
        double d = strtod(s, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (end != s && !*end && isfinite(d)) return jv_int(&c->a, float_to_int(c, pos, d));
        return def;
    }
    default: return def;
    }
}

struct jv *jinja_filter_apply(struct jctx *c, int pos, const char *name, struct jv *v,
                              const struct jargs *a) {
    struct jarena *ar = &c->a;
    struct jv *a0 = jargs_get(a, 0, NULL);
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        struct jv *dv = jargs_get(a, 0, "default_value"), *boolean = jargs_get(a, 1, "boolean");
        if (v->kind == JV_UNDEF || (boolean && jv_truthy(boolean) && !jv_truthy(v)))
            return dv ? dv : jv_str(ar, "", 0);
        return v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int(ar, length(c, pos, v));
    if (!strcmp(name, "tojson")) return do_tojson(c, pos, v, a);
    if (!strcmp(name, "safe") || !strcmp(name, "string"))
        return v->kind == JV_STR && !strcmp(name, "safe") ? v : jv_to_str(ar, v);
    if (!strcmp(name, "list")) return list_of(c, pos, v);
    if (!strcmp(name, "items")) {
        if (v->kind == JV_UNDEF) return jv_list(ar, 0);
        if (v->kind != JV_DICT || v->is_ns || v->is_loop)
            jctx_raise(c, pos, "TypeError", "Can only get item pairs from a mapping.");
        return jinja_method_call(c, pos, v, "items", a);
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        int64_t n;
        struct jv **it = jinja_iter(c, pos, v, &n);
        if (!n)
            return jv_undef(ar, name[0] == 'f' ? "No first item, sequence was empty."
                                               : "No last item, sequence was empty.");
        return name[0] == 'f' ? it[0] : it[n - 1];
    }
    if (!strcmp(name, "join")) {
        int64_t n;
        struct jv **it = jinja_iter(c, pos, v, &n);
        struct jv *sep = jargs_get(a, 0, "d"), *attr = jargs_get(a, 1, "attribute");
        if (sep) sep = jv_to_str(ar, sep);
        if (attr && attr->kind != JV_NONE) {
            struct jv **mapped = jarena_alloc(ar, (size_t)(n ? n : 1) * sizeof *mapped);
            for (int64_t i = 0; i < n; i++)
                mapped[i] = attr_path(c, pos, it[i], attr);
            it = mapped;
        }
        return jinja_join(c, pos, it, n, sep, NULL);
    }
    if (!strcmp(name, "reverse")) {
        if (v->kind == JV_STR) {
            struct jbuf b;
            jbuf_init(&b, ar);
            jbuf_put(&b, "", 0);
            size_t e = v->len;
            while (e > 0) {
                size_t st = e - 1;
                while (st > 0 && ((unsigned char)v->s[st] & 0xC0) == 0x80)
                    st--;
                jbuf_put(&b, v->s + st, e - st);
                e = st;
            }
            return jv_str_take(ar, b.p, b.len);
        }
        struct jv *l = list_of(c, pos, v);
        for (int64_t i = 0, j = l->n - 1; i < j; i++, j--) {
            struct jv *t = l->items[i];
            l->items[i] = l->items[j];
            l->items[j] = t;
        }
        return l;
    }
    if (!strcmp(name, "map")) return do_map(c, pos, v, a);
    if (!strcmp(name, "select")) return do_select(c, pos, v, a, 1, 0);
    if (!strcmp(name, "reject")) return do_select(c, pos, v, a, 0, 0);
    if (!strcmp(name, "selectattr")) return do_select(c, pos, v, a, 1, 1);
    if (!strcmp(name, "rejectattr")) return do_select(c, pos, v, a, 0, 1);
    if (!strcmp(name, "attr")) {
        if (!a0) jctx_raise(c, pos, "TypeError", "attr needs a name");
        return jinja_getattr(c, pos, v, jinja_need_str(c, pos, a0, "attribute name")->s);
    }
    if (!strcmp(name, "int")) {
        struct jv *def = jargs_get(a, 0, "default");
        return to_int(c, pos, v, def ? def : jv_int(ar, 0));
    }
    if (!strcmp(name, "float")) {
        struct jv *def = jargs_get(a, 0, "default");
        if (v->kind == JV_FLOAT) return v;
        if (v->kind == JV_INT || v->kind == JV_BOOL) return jv_float(ar, (double)v->i);
        if (v->kind == JV_STR) {
            char *s = jarena_strndup(ar, v->s, v->len), *end;
            double d = strtod(s, &end);
            if (end != s && !*end) return jv_float(ar, d);
        }
        return def ? def : jv_float(ar, 0.0);
    }
    if (!strcmp(name, "abs")) {
        if (v->kind == JV_INT && v->i == INT64_MIN)
            jctx_raise(c, pos, "OverflowError", "abs() of the smallest 64-bit integer does not fit");
        if (v->kind == JV_INT || v->kind == JV_BOOL) return jv_int(ar, v->i < 0 ? -v->i : v->i);
        if (v->kind == JV_FLOAT) return jv_float(ar, fabs(v->f));
        jctx_raise(c, pos, "TypeError", "bad operand type for abs(): '%s'", jv_type_name(v));
    }
    if (!strcmp(name, "round")) {
        struct jv *prec = jargs_get(a, 0, "precision"), *method = jargs_get(a, 1, "method");
        int64_t p = prec ? jinja_need_int(c, pos, prec, "precision") : 0;
        if (v->kind != JV_INT && v->kind != JV_FLOAT && v->kind != JV_BOOL)
            jctx_raise(c, pos, "TypeError", "round needs a number, not %s", jv_type_name(v));
        double x = v->kind == JV_FLOAT ? v->f : (double)v->i, m = pow(10, (double)p);
        const char *meth = method ? jinja_need_str(c, pos, method, "method")->s : "common";
        /* common: Python's round(), halves to even */
        double r = !strcmp(meth, "ceil")    ? ceil(x * m) / m
                   : !strcmp(meth, "floor") ? floor(x * m) / m
                                            : nearbyint(x * m) / m;
        return jv_float(ar, r);
    }
    if (!strcmp(name, "sum")) {
        int64_t n;
        struct jv **it = jinja_iter(c, pos, v, &n);
        struct jv *attr = jargs_get(a, 0, "attribute"), *acc = jargs_get(a, 1, "start");
        if (!acc) acc = jv_int(ar, 0);
        for (int64_t i = 0; i < n; i++) {
            struct jv *x = attr && attr->kind != JV_NONE ? attr_path(c, pos, it[i], attr) : it[i];
            if ((acc->kind != JV_INT && acc->kind != JV_FLOAT && acc->kind != JV_BOOL) ||
                (x->kind != JV_INT && x->kind != JV_FLOAT && x->kind != JV_BOOL))
                jctx_raise(c, pos, "TypeError", "unsupported operand type(s) for +: '%s' and '%s'",
                           jv_type_name(acc), jv_type_name(x));
            if (acc->kind != JV_FLOAT && x->kind != JV_FLOAT)
                acc = jv_int(ar, acc->i + x->i);
            else
                acc = jv_float(ar, (acc->kind == JV_FLOAT ? acc->f : (double)acc->i) +
                                       (x->kind == JV_FLOAT ? x->f : (double)x->i));
        }
        return acc;
    }
    if (!strcmp(name, "sort") || !strcmp(name, "unique") || !strcmp(name, "min") || !strcmp(name, "max") ||
        !strcmp(name, "dictsort")) {
        int is_sort = !strcmp(name, "sort"), is_dictsort = !strcmp(name, "dictsort");
        struct jv *rev = NULL, *cs, *attr;
        if (is_sort) {
            rev = jargs_get(a, 0, "reverse");
            cs = jargs_get(a, 1, "case_sensitive");
            attr = jargs_get(a, 2, "attribute");
        } else if (is_dictsort) {
            cs = jargs_get(a, 0, "case_sensitive");
            attr = NULL;
            rev = jargs_get(a, 2, "reverse");
        } else {
            cs = jargs_get(a, 0, "case_sensitive");
            attr = jargs_get(a, 1, "attribute");
        }
        struct jv *l;
        if (is_dictsort) {
            if (v->kind != JV_DICT || v->is_ns || v->is_loop)
                jctx_raise(c, pos, "TypeError", "dictsort needs a mapping");
            struct jv *by = jargs_get(a, 1, "by");
            l = jinja_method_call(c, pos, v, "items", &(struct jargs){0});
            attr = jv_int(ar, by && by->kind == JV_STR && !strcmp(by->s, "value") ? 1 : 0);
        } else
            l = list_of(c, pos, v);
        int csv = cs && jv_truthy(cs);
        struct jv **keys = jarena_alloc(ar, (size_t)(l->n ? l->n : 1) * sizeof *keys);
        for (int64_t i = 0; i < l->n; i++)
            keys[i] = sort_key(c, pos, l->items[i], attr, csv);
        if (!strcmp(name, "unique")) {
            struct jv *u = jv_list(ar, 0);
            for (int64_t i = 0; i < l->n; i++) {
                int seen = 0;
                for (int64_t j = 0; j < i && !seen; j++)
                    seen = jv_equal(keys[i], keys[j]);
                if (!seen) jv_list_push(ar, u, l->items[i]);
            }
            return u;
        }
        sort_items(c, pos, l->items, keys, l->n, rev && jv_truthy(rev));
        if (is_sort || is_dictsort) return l;
        if (!l->n) return jv_undef(ar, "No aggregated item, sequence was empty.");
        return name[1] == 'i' ? l->items[0] : l->items[l->n - 1];
    }
    if (!strcmp(name, "wordcount")) {
        struct jv *s = jv_to_str(ar, v);
        int64_t n = 0;
        int in = 0;
        for (size_t i = 0; i < s->len; i++) {
            unsigned char ch = (unsigned char)s->s[i];
            int w =
                ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z');
            if (w && !in) n++;
            in = w;
        }
        return jv_int(ar, n);
    }
    /* string filters: the value is converted with str() first (Undefined -> "") */
    struct jv *s = jv_to_str(ar, v);
    if (!strcmp(name, "trim")) return jinja_str_strip(c, s, jargs_get(a, 0, "chars"), 1, 1);
    if (!strcmp(name, "upper")) return jinja_str_case(c, s, CASE_UPPER);
    if (!strcmp(name, "lower")) return jinja_str_case(c, s, CASE_LOWER);
    if (!strcmp(name, "capitalize")) return jinja_str_case(c, s, CASE_CAPITALIZE);
    if (!strcmp(name, "title")) return jinja_str_title(c, s);
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape"))
        return html_escape(c, s);
    if (!strcmp(name, "replace")) {
        struct jv *old = jargs_get(a, 0, "old"), *new = jargs_get(a, 1, "new"),
                  *cnt = jargs_get(a, 2, "count");
        if (!old || !new) jctx_raise(c, pos, "TypeError", "replace needs old and new strings");
        return jinja_str_replace(c, s, jv_to_str(ar, old), jv_to_str(ar, new),
                                 cnt && cnt->kind != JV_NONE ? jinja_need_int(c, pos, cnt, "count") : -1);
    }
    if (!strcmp(name, "indent")) return do_indent(c, pos, s, a);
    if (!strcmp(name, "center")) {
        struct jv *w = jargs_get(a, 0, "width");
        int64_t width = w ? jinja_need_int(c, pos, w, "width") : 80, len = utf8_cp_len(s->s, s->len);
        if (width <= len) return s;
        int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
        struct jbuf b;
        jbuf_init(&b, ar);
        for (int64_t i = 0; i < left; i++)
            jbuf_putc(&b, ' ');
        jbuf_put(&b, s->s, s->len);
        for (int64_t i = 0; i < pad - left; i++)
            jbuf_putc(&b, ' ');
        return jv_str_take(ar, b.p, b.len);
    }
    if (!strcmp(name, "format")) {
        struct jv *t = jv_list(ar, a->n);
        t->is_tuple = 1;
        for (int i = 0; i < a->n; i++)
            jv_list_push(ar, t, a->args[i]);
        return jinja_percent_format(c, pos, s, t);
    }
    if (!strcmp(name, "striptags")) {
        struct jbuf b;
        jbuf_init(&b, ar);
        jbuf_put(&b, "", 0);
        int in_tag = 0, sp = 0;
        for (size_t i = 0; i < s->len; i++) {
            char ch = s->s[i];
            if (ch == '<')
                in_tag = 1;
            else if (ch == '>' && in_tag)
                in_tag = 0;
            else if (!in_tag) {
                int ws = ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
                if (ws)
                    sp = b.len > 0;
                else {
                    if (sp) jbuf_putc(&b, ' ');
                    sp = 0;
                    jbuf_putc(&b, ch);
                }
            }
        }
        return jv_str_take(ar, b.p, b.len);
    }
    if (!strcmp(name, "truncate")) {
        struct jv *lenv = jargs_get(a, 0, "length"), *killw = jargs_get(a, 1, "killwords"),
                  *end = jargs_get(a, 2, "end"), *leeway = jargs_get(a, 3, "leeway");
        int64_t n = lenv ? jinja_need_int(c, pos, lenv, "length") : 255,
                lw = leeway ? jinja_need_int(c, pos, leeway, "leeway") : 5;
        struct jv *ends = end ? jv_to_str(ar, end) : jv_cstr(ar, "...");
        int64_t len = utf8_cp_len(s->s, s->len), elen = utf8_cp_len(ends->s, ends->len);
        if (len <= n + lw) return s;
        size_t cut = utf8_cp_offset(s->s, s->len, n - elen > 0 ? n - elen : 0);
        struct jbuf b;
        jbuf_init(&b, ar);
        jbuf_put(&b, "", 0);
        if (killw && jv_truthy(killw))
            jbuf_put(&b, s->s, cut);
        else {
            size_t k = cut;
            while (k > 0 && s->s[k - 1] != ' ')
                k--;
            jbuf_put(&b, s->s, k ? k - 1 : cut);
        }
        jbuf_put(&b, ends->s, ends->len);
        return jv_str_take(ar, b.p, b.len);
    }
    jctx_raise(c, pos, "TemplateRuntimeError", "filter '%s' is not supported by csft", name);
}
