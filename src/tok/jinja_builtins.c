/* jinja_builtins: filters (jinja2/filters.py), tests (jinja2/tests.py), Python str/list/dict
 * methods and globals. Methods that mutate lists/dicts raise SecurityError, as transformers'
 * ImmutableSandboxedEnvironment does. Strings are UTF-8; lengths, indices and case mapping
 * work on code points (utf8proc), as Python's str does. */
#include "tok/jinja_builtins.h"
#include "tok/jinja_filters.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "core/util.h"

enum { G_NAMESPACE = 1, G_RANGE, G_DICT, G_RAISE, G_STRFTIME };
static struct jv g_funcs[] = {
    {.kind = JV_FUNC, .i = G_NAMESPACE}, {.kind = JV_FUNC, .i = G_RANGE},    {.kind = JV_FUNC, .i = G_DICT},
    {.kind = JV_FUNC, .i = G_RAISE},     {.kind = JV_FUNC, .i = G_STRFTIME},
};

struct jv *jinja_global_lookup(const char *name) {
    if (!strcmp(name, "namespace")) return &g_funcs[0];
    if (!strcmp(name, "range")) return &g_funcs[1];
    if (!strcmp(name, "dict")) return &g_funcs[2];
    if (!strcmp(name, "raise_exception")) return &g_funcs[3];
    if (!strcmp(name, "strftime_now")) return &g_funcs[4];
    return NULL;
}

struct jv *jinja_need_str(struct jctx *c, int pos, struct jv *v, const char *what) {
    if (v->kind == JV_UNDEF) jctx_raise_undef(c, pos, v);
    if (v->kind != JV_STR) jctx_raise(c, pos, "TypeError", "%s must be str, not %s", what, jv_type_name(v));
    return v;
}

int64_t jinja_need_int(struct jctx *c, int pos, struct jv *v, const char *what) {
    if (v->kind == JV_UNDEF) jctx_raise_undef(c, pos, v);
    if (v->kind != JV_INT && v->kind != JV_BOOL)
        jctx_raise(c, pos, "TypeError", "%s must be an integer, not %s", what, jv_type_name(v));
    return v->i;
}

struct jv *jinja_global_call(struct jctx *c, int pos, struct jv *fn, const struct jargs *a) {
    struct jarena *ar = &c->a;
    switch (fn->i) {
    case G_NAMESPACE:
    case G_DICT: {
        struct jv *d = jv_dict(ar);
        d->is_ns = fn->i == G_NAMESPACE;
        for (int i = 0; i < a->n; i++) {
            struct jv *src = a->args[i];
            if (src->kind != JV_DICT || src->is_ns || src->is_loop)
                jctx_raise(c, pos, "TypeError", "%s() positional argument must be a dict, not %s",
                           fn->i == G_DICT ? "dict" : "namespace", jv_type_name(src));
            for (int64_t k = 0; k < src->n; k++)
                jv_dict_set(ar, d, src->keys[k], src->items[k]);
        }
        for (int k = 0; k < a->n_kw; k++)
            jv_dict_set(ar, d, jv_cstr(ar, a->kw_names[k]), a->kw_vals[k]);
        return d;
    }
    case G_RANGE: {
        if (a->n < 1 || a->n > 3)
            jctx_raise(c, pos, "TypeError", "range expected 1 to 3 arguments, got %d", a->n);
        int64_t start = 0, stop, step = 1;
        if (a->n == 1)
            stop = jinja_need_int(c, pos, a->args[0], "range() argument");
        else {
            start = jinja_need_int(c, pos, a->args[0], "range() argument");
            stop = jinja_need_int(c, pos, a->args[1], "range() argument");
            if (a->n == 3) step = jinja_need_int(c, pos, a->args[2], "range() argument");
        }
        if (step == 0) jctx_raise(c, pos, "ValueError", "range() arg 3 must not be zero");
        /* in unsigned arithmetic: the span of two int64 fits, their difference may not */
        uint64_t cnt = step > 0 ? (stop > start ? ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1 : 0)
                                : (start > stop ? ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1 : 0);
        if (cnt > 100000)
            jctx_raise(c, pos, "OverflowError",
                       "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        struct jv *l = jv_list(ar, (int64_t)cnt);
        for (int64_t i = 0; i < (int64_t)cnt; i++)
            jv_list_push(ar, l, jv_int(ar, (int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step))); /* in range; no signed overflow */
        return l;
    }
    case G_RAISE: {
        struct jv *m = jargs_get(a, 0, "message");
        jctx_raise(c, pos, "TemplateError", "%s", m ? jv_to_str(ar, m)->s : "");
    }
    case G_STRFTIME: {
        struct jv *fmt = jargs_get(a, 0, "format");
        if (!fmt) jctx_raise(c, pos, "TypeError", "strftime_now() missing the format argument");
        jinja_need_str(c, pos, fmt, "strftime_now() format");
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char buf[512];
        size_t k = strftime(buf, sizeof buf, fmt->s, &tm);
        return jv_str(ar, buf, k);
    }
    }
    jctx_raise(c, pos, "TypeError", "object is not callable");
}

/* ---------- string helpers ---------- */

static int cp_in(int32_t cp, const struct jv *chars) {
    for (size_t i = 0; i < chars->len;) {
        int32_t x;
        i += (size_t)utf8_decode_one(chars->s + i, chars->len - i, &x);
        if (x == cp) return 1;
    }
    return 0;
}

/* Python str.strip/lstrip/rstrip; chars NULL/None: whitespace. */
struct jv *jinja_str_strip(struct jctx *c, struct jv *s, struct jv *chars, int left, int right) {
    if (chars && chars->kind == JV_NONE) chars = NULL;
    if (chars) jinja_need_str(c, 0, chars, "strip arg");
    size_t b = 0, e = s->len;
    if (left)
        while (b < e) {
            int32_t cp;
            int k = utf8_decode_one(s->s + b, e - b, &cp);
            if (chars ? !cp_in(cp, chars) : !unicode_isspace(cp)) break;
            b += (size_t)k;
        }
    if (right)
        while (e > b) {
            size_t st = e - 1;
            while (st > b && ((unsigned char)s->s[st] & 0xC0) == 0x80)
                st--;
            int32_t cp;
            utf8_decode_one(s->s + st, e - st, &cp);
            if (chars ? !cp_in(cp, chars) : !unicode_isspace(cp)) break;
            e = st;
        }
    if (b == 0 && e == s->len) return s;
    return jv_str(&c->a, s->s + b, e - b);
}

static int is_cased(int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}

struct jv *jinja_str_case(struct jctx *c, struct jv *s, int mode) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    int prev_cased = 0, first = 1;
    for (size_t i = 0; i < s->len;) {
        int32_t cp, o;
        i += (size_t)utf8_decode_one(s->s + i, s->len - i, &cp);
        switch (mode) {
        case CASE_UPPER: o = utf8proc_toupper(cp); break;
        case CASE_LOWER: o = utf8proc_tolower(cp); break;
        case CASE_CAPITALIZE: o = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp); break;
        case CASE_SWAP: o = utf8proc_isupper(cp) ? utf8proc_tolower(cp) : utf8proc_toupper(cp); break;
        default: o = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp); break;
        }
        prev_cased = is_cased(cp);
        first = 0;
        if (cp == 0xDF && mode != CASE_LOWER) { /* SpecialCasing: upper(ß) = SS, title(ß) = Ss */
            jbuf_puts(&b, mode == CASE_UPPER || mode == CASE_SWAP ? "SS" : "Ss");
            continue;
        }
        char enc[4];
        jbuf_put(&b, enc, (size_t)utf8_encode_one(o, enc));
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* Jinja's title filter: capitalize each word, words split at whitespace and -([{< . */
struct jv *jinja_str_title(struct jctx *c, struct jv *s) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    int start = 1;
    for (size_t i = 0; i < s->len;) {
        int32_t cp;
        i += (size_t)utf8_decode_one(s->s + i, s->len - i, &cp);
        int sep = unicode_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        int32_t o = sep ? cp : start ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
        start = sep;
        char enc[4];
        jbuf_put(&b, enc, (size_t)utf8_encode_one(o, enc));
    }
    return jv_str_take(&c->a, b.p, b.len);
}

struct jv *jinja_str_replace(struct jctx *c, struct jv *s, struct jv *old, struct jv *new, int64_t count) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    if (old->len == 0) { /* Python inserts between every character */
        int64_t done = 0;
        size_t i = 0;
        for (;;) {
            if (count < 0 || done < count) {
                jbuf_put(&b, new->s, new->len);
                done++;
            }
            if (i >= s->len) break;
            int32_t cp;
            int k = utf8_decode_one(s->s + i, s->len - i, &cp);
            jbuf_put(&b, s->s + i, (size_t)k);
            i += (size_t)k;
        }
        return jv_str_take(&c->a, b.p, b.len);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i <= s->len) {
        const char *hit = (count < 0 || done < count) ? memmem(s->s + i, s->len - i, old->s, old->len) : NULL;
        if (!hit) {
            jbuf_put(&b, s->s + i, s->len - i);
            break;
        }
        jbuf_put(&b, s->s + i, (size_t)(hit - (s->s + i)));
        jbuf_put(&b, new->s, new->len);
        i = (size_t)(hit - s->s) + old->len;
        done++;
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* Python str.split(sep=None, maxsplit=-1) / rsplit. */
static struct jv *str_split(struct jctx *c, int pos, struct jv *s, struct jv *sep, int64_t maxsplit,
                            int from_right) {
    struct jarena *ar = &c->a;
    struct jv *l = jv_list(ar, 0);
    if (sep && sep->kind == JV_NONE) sep = NULL;
    if (sep) {
        jinja_need_str(c, pos, sep, "separator");
        if (sep->len == 0) jctx_raise(c, pos, "ValueError", "empty separator");
        if (!from_right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                const char *hit =
                    (maxsplit < 0 || done < maxsplit) ? memmem(s->s + i, s->len - i, sep->s, sep->len) : NULL;
                if (!hit) {
                    jv_list_push(ar, l, jv_str(ar, s->s + i, s->len - i));
                    break;
                }
                jv_list_push(ar, l, jv_str(ar, s->s + i, (size_t)(hit - s->s) - i));
                i = (size_t)(hit - s->s) + sep->len;
                done++;
            }
            return l;
        }
        /* rsplit: collect from the right, then reverse */
        size_t e = s->len;
        int64_t done = 0;
        for (;;) {
            const char *hit = NULL;
            if ((maxsplit < 0 || done < maxsplit) && e >= sep->len)
                for (size_t k = e - sep->len + 1; k-- > 0;)
                    if (memcmp(s->s + k, sep->s, sep->len) == 0) {
                        hit = s->s + k;
                        break;
                    }
            if (!hit) {
                jv_list_push(ar, l, jv_str(ar, s->s, e));
                break;
            }
            size_t hs = (size_t)(hit - s->s);
            jv_list_push(ar, l, jv_str(ar, s->s + hs + sep->len, e - hs - sep->len));
            e = hs;
            done++;
        }
        for (int64_t i = 0, j = l->n - 1; i < j; i++, j--) {
            struct jv *t = l->items[i];
            l->items[i] = l->items[j];
            l->items[j] = t;
        }
        return l;
    }
    /* whitespace split: runs of whitespace, no empty strings */
    size_t i = 0;
    int64_t done = 0;
    (void)from_right; /* rsplit(None) with maxsplit is rare; treated like split */
    while (i < s->len) {
        int32_t cp;
        int k = utf8_decode_one(s->s + i, s->len - i, &cp);
        if (unicode_isspace(cp)) {
            i += (size_t)k;
            continue;
        }
        if (maxsplit >= 0 && done >= maxsplit) {
            struct jv *rest = jinja_str_strip(c, jv_str(ar, s->s + i, s->len - i), NULL, 0, 1);
            jv_list_push(ar, l, rest);
            break;
        }
        size_t st = i;
        while (i < s->len) {
            k = utf8_decode_one(s->s + i, s->len - i, &cp);
            if (unicode_isspace(cp)) break;
            i += (size_t)k;
        }
        jv_list_push(ar, l, jv_str(ar, s->s + st, i - st));
        done++;
    }
    return l;
}

static int str_affix(struct jctx *c, int pos, struct jv *s, struct jv *arg, int end) {
    if (arg->kind == JV_LIST && arg->is_tuple) {
        for (int64_t i = 0; i < arg->n; i++)
            if (str_affix(c, pos, s, arg->items[i], end)) return 1;
        return 0;
    }
    jinja_need_str(c, pos, arg, end ? "endswith arg" : "startswith arg");
    if (arg->len > s->len) return 0;
    return memcmp(end ? s->s + s->len - arg->len : s->s, arg->s, arg->len) == 0;
}

struct jv *jinja_join(struct jctx *c, int pos, struct jv **items, int64_t n, struct jv *sep,
                      const char *attr) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    for (int64_t i = 0; i < n; i++) {
        if (i && sep) jbuf_put(&b, sep->s, sep->len);
        struct jv *it = attr ? jinja_getattr(c, pos, items[i], attr) : items[i];
        jv_write_str(&b, it);
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* Python str.format with {} / {0} / {name} fields (no format specs beyond plain). */
static struct jv *str_format(struct jctx *c, int pos, struct jv *s, const struct jargs *a) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    int auto_idx = 0;
    for (size_t i = 0; i < s->len; i++) {
        char ch = s->s[i];
        if (ch == '{' && i + 1 < s->len && s->s[i + 1] == '{') {
            jbuf_putc(&b, '{');
            i++;
        } else if (ch == '}' && i + 1 < s->len && s->s[i + 1] == '}') {
            jbuf_putc(&b, '}');
            i++;
        } else if (ch == '{') {
            const char *e = memchr(s->s + i, '}', s->len - i);
            if (!e) jctx_raise(c, pos, "ValueError", "Single '{' encountered in format string");
            char field[128];
            size_t fl = (size_t)(e - (s->s + i + 1));
            if (fl >= sizeof field) fl = sizeof field - 1;
            memcpy(field, s->s + i + 1, fl);
            field[fl] = 0;
            char *colon = strchr(field, ':');
            if (colon) *colon = 0;
            struct jv *v;
            if (!field[0])
                v = jargs_get(a, auto_idx++, NULL);
            else if (field[0] >= '0' && field[0] <= '9')
                v = jargs_get(a, atoi(field), NULL);
            else
                v = jargs_get(a, -1, field);
            if (!v) jctx_raise(c, pos, "IndexError", "format field '{%s}' has no argument", field);
            jv_write_str(&b, v);
            i = (size_t)(e - s->s);
        } else
            jbuf_putc(&b, ch);
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* %-format width or precision digits at *i (-1 if none); past 100,000 Python's "width too big"
 * (a template has no use for more, and the output stays bounded). */
static int64_t percent_count(struct jctx *c, int pos, const struct jv *fmt, size_t *i) {
    if (*i >= fmt->len || fmt->s[*i] < '0' || fmt->s[*i] > '9') return -1;
    int64_t v = 0;
    while (*i < fmt->len && fmt->s[*i] >= '0' && fmt->s[*i] <= '9') {
        v = v * 10 + (fmt->s[(*i)++] - '0');
        if (v > 100000) jctx_raise(c, pos, "ValueError", "width too big");
    }
    return v;
}

/* snprintf of one number with spec into b, however wide. */
static void put_ll(struct jbuf *b, const char *spec, long long v) {
    int n = snprintf(NULL, 0, spec, v);
    char *t = xmalloc((size_t)n + 1);
    snprintf(t, (size_t)n + 1, spec, v);
    jbuf_put(b, t, (size_t)n);
    free(t);
}
static void put_double(struct jbuf *b, const char *spec, double v) {
    int n = snprintf(NULL, 0, spec, v);
    char *t = xmalloc((size_t)n + 1);
    snprintf(t, (size_t)n + 1, spec, v);
    jbuf_put(b, t, (size_t)n);
    free(t);
}

struct jv *jinja_percent_format(struct jctx *c, int pos, struct jv *fmt, struct jv *args) {
    struct jbuf b;
    jbuf_init(&b, &c->a);
    jbuf_put(&b, "", 0);
    int64_t ai = 0;
    int is_tuple = args->kind == JV_LIST && args->is_tuple;
    for (size_t i = 0; i < fmt->len; i++) {
        char ch = fmt->s[i];
        if (ch != '%') {
            jbuf_putc(&b, ch);
            continue;
        }
        if (++i >= fmt->len) jctx_raise(c, pos, "ValueError", "incomplete format");
        /* flags (each once), width, precision: rebuilt into a printf spec of bounded length */
        char flags[6] = "";
        int nf = 0;
        while (i < fmt->len && fmt->s[i] && strchr("-+ #0", fmt->s[i])) {
            if (!strchr(flags, fmt->s[i])) flags[nf++] = fmt->s[i];
            i++;
        }
        int64_t width = percent_count(c, pos, fmt, &i), prec = -1;
        if (i < fmt->len && fmt->s[i] == '.') {
            i++;
            prec = percent_count(c, pos, fmt, &i);
            if (prec < 0) prec = 0;
        }
        if (i >= fmt->len) jctx_raise(c, pos, "ValueError", "incomplete format");
        char spec[32];
        int sl = snprintf(spec, sizeof spec, "%%%s", flags);
        if (width >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, "%lld", (long long)width);
        if (prec >= 0) sl += snprintf(spec + sl, sizeof spec - (size_t)sl, ".%lld", (long long)prec);
        char conv = fmt->s[i];
        if (conv == '%' && !nf && width < 0 && prec < 0) {
            jbuf_putc(&b, '%');
            continue;
        }
        struct jv *v = is_tuple ? (ai < args->n ? args->items[ai] : NULL) : (ai == 0 ? args : NULL);
        ai++;
        if (!v) jctx_raise(c, pos, "TypeError", "not enough arguments for format string");
        switch (conv) {
        case 's':
        case 'r': {
            struct jbuf t;
            jbuf_init(&t, &c->a);
            jbuf_put(&t, "", 0);
            if (conv == 's')
                jv_write_str(&t, v);
            else
                jv_write_repr(&t, v);
            /* flags/width/precision on code points */
            int left = strchr(flags, '-') != NULL;
            size_t bytes = prec >= 0 ? utf8_cp_offset(t.p, t.len, prec) : t.len;
            int64_t cps = utf8_cp_len(t.p, bytes);
            for (int64_t k = cps; !left && k < width; k++)
                jbuf_putc(&b, ' ');
            jbuf_put(&b, t.p, bytes);
            for (int64_t k = cps; left && k < width; k++)
                jbuf_putc(&b, ' ');
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
            if (v->kind != JV_INT && v->kind != JV_BOOL && v->kind != JV_FLOAT)
                jctx_raise(c, pos, "TypeError", "%%%c format: a real number is required, not %s", conv,
                           jv_type_name(v));
            if (v->kind == JV_FLOAT && !(v->f > -9223372036854775808.0 && v->f < 9223372036854775808.0))
                jctx_raise(c, pos, "OverflowError", "%%%c format: %g does not fit a 64-bit integer", conv, v->f);
            spec[sl++] = 'l', spec[sl++] = 'l', spec[sl++] = conv == 'i' ? 'd' : conv, spec[sl] = 0;
            put_ll(&b, spec, (long long)(v->kind == JV_FLOAT ? (int64_t)v->f : v->i));
            break;
        case 'f':
        case 'e':
        case 'g':
            if (v->kind != JV_INT && v->kind != JV_BOOL && v->kind != JV_FLOAT)
                jctx_raise(c, pos, "TypeError", "must be real number, not %s", jv_type_name(v));
            spec[sl++] = conv, spec[sl] = 0;
            put_double(&b, spec, v->kind == JV_FLOAT ? v->f : (double)v->i);
            break;
        default: jctx_raise(c, pos, "ValueError", "unsupported format character '%c'", conv);
        }
    }
    return jv_str_take(&c->a, b.p, b.len);
}

/* ---------- methods ---------- */

static const char *str_methods[] = {
    "startswith", "endswith",   "split",        "rsplit",       "strip",    "lstrip",  "rstrip",  "replace",
    "upper",      "lower",      "title",        "capitalize",   "swapcase", "format",  "find",    "rfind",
    "index",      "count",      "join",         "isdigit",      "isalpha",  "isalnum", "isspace", "islower",
    "isupper",    "splitlines", "removeprefix", "removesuffix", NULL};
static const char *list_methods[] = {"count",  "index",   "append", "extend", "insert", "pop",
                                     "remove", "reverse", "sort",   "clear",  NULL};
static const char *dict_methods[] = {"items",   "keys",       "values", "get",   "copy", "pop",
                                     "popitem", "setdefault", "update", "clear", NULL};

static int in_set(const char *const *set, const char *name) {
    for (int i = 0; set[i]; i++)
        if (!strcmp(set[i], name)) return 1;
    return 0;
}

int jinja_has_method(const struct jv *obj, const char *name) {
    if (obj->kind == JV_STR) return in_set(str_methods, name);
    if (obj->kind == JV_LIST) return in_set(list_methods, name);
    if (obj->kind == JV_DICT && !obj->is_ns && !obj->is_loop) return in_set(dict_methods, name);
    return 0;
}

static struct jv *items_list(struct jctx *c, struct jv *d) {
    struct jv *l = jv_list(&c->a, d->n);
    for (int64_t i = 0; i < d->n; i++) {
        struct jv *t = jv_list(&c->a, 2);
        t->is_tuple = 1;
        jv_list_push(&c->a, t, d->keys[i]);
        jv_list_push(&c->a, t, d->items[i]);
        jv_list_push(&c->a, l, t);
    }
    return l;
}

int jinja_str_is(struct jv *s, int kind) {
    if (!s->len) return 0;
    int any_cased = 0;
    for (size_t i = 0; i < s->len;) {
        int32_t cp;
        i += (size_t)utf8_decode_one(s->s + i, s->len - i, &cp);
        utf8proc_category_t k = utf8proc_category(cp);
        int alpha = k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
        int digit = k == UTF8PROC_CATEGORY_ND;
        switch (kind) {
        case 'd':
            if (!digit) return 0;
            break;
        case 'a':
            if (!alpha) return 0;
            break;
        case 'n':
            if (!alpha && !digit && k != UTF8PROC_CATEGORY_NL && k != UTF8PROC_CATEGORY_NO) return 0;
            break;
        case 's':
            if (!unicode_isspace(cp)) return 0;
            break;
        case 'l':
            if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= k == UTF8PROC_CATEGORY_LL;
            break;
        case 'u':
            if (k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= k == UTF8PROC_CATEGORY_LU;
            break;
        }
    }
    return kind == 'l' || kind == 'u' ? any_cased : 1;
}

static int64_t str_find(struct jv *s, struct jv *sub, int rev) {
    if (sub->len > s->len) return -1;
    const char *hit = NULL;
    if (!rev)
        hit = memmem(s->s, s->len, sub->s, sub->len);
    else
        for (size_t k = s->len - sub->len + 1; k-- > 0;)
            if (memcmp(s->s + k, sub->s, sub->len) == 0) {
                hit = s->s + k;
                break;
            }
    return hit ? utf8_cp_len(s->s, (size_t)(hit - s->s)) : -1;
}

struct jv *jinja_method_call(struct jctx *c, int pos, struct jv *obj, const char *name,
                             const struct jargs *a) {
    struct jarena *ar = &c->a;
    struct jv *a0 = jargs_get(a, 0, NULL), *a1 = jargs_get(a, 1, NULL);
    if (obj->kind == JV_DICT && obj->is_loop) {
        if (!strcmp(name, "cycle")) {
            if (a->n == 0) jctx_raise(c, pos, "TypeError", "no items for cycling given");
            return a->args[obj->i % a->n];
        }
        jctx_raise(c, pos, "TypeError", "loop.%s() is not supported", name);
    }
    if (obj->kind == JV_STR) {
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "%s() takes at least 1 argument (0 given)", name);
            return jv_bool(str_affix(c, pos, obj, a0, name[0] == 'e'));
        }
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip"))
            return jinja_str_strip(c, obj, jargs_get(a, 0, "chars"), name[0] != 'r', name[0] != 'l');
        if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
            struct jv *ms = jargs_get(a, 1, "maxsplit");
            return str_split(c, pos, obj, jargs_get(a, 0, "sep"),
                             ms ? jinja_need_int(c, pos, ms, "maxsplit") : -1, name[0] == 'r');
        }
        if (!strcmp(name, "replace")) {
            if (!a0 || !a1) jctx_raise(c, pos, "TypeError", "replace() takes at least 2 arguments");
            struct jv *cnt = jargs_get(a, 2, "count");
            return jinja_str_replace(c, obj, jinja_need_str(c, pos, a0, "replace() argument 1"),
                                     jinja_need_str(c, pos, a1, "replace() argument 2"),
                                     cnt ? jinja_need_int(c, pos, cnt, "count") : -1);
        }
        if (!strcmp(name, "upper")) return jinja_str_case(c, obj, CASE_UPPER);
        if (!strcmp(name, "lower")) return jinja_str_case(c, obj, CASE_LOWER);
        if (!strcmp(name, "title")) return jinja_str_case(c, obj, CASE_TITLE_PY);
        if (!strcmp(name, "capitalize")) return jinja_str_case(c, obj, CASE_CAPITALIZE);
        if (!strcmp(name, "swapcase")) return jinja_str_case(c, obj, CASE_SWAP);
        if (!strcmp(name, "format")) return str_format(c, pos, obj, a);
        if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "%s() takes at least 1 argument (0 given)", name);
            int64_t r = str_find(obj, jinja_need_str(c, pos, a0, "substring"), name[0] == 'r');
            if (r < 0 && name[0] == 'i') jctx_raise(c, pos, "ValueError", "substring not found");
            return jv_int(ar, r);
        }
        if (!strcmp(name, "count")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "count() takes at least 1 argument (0 given)");
            struct jv *sub = jinja_need_str(c, pos, a0, "substring");
            if (!sub->len) return jv_int(ar, utf8_cp_len(obj->s, obj->len) + 1);
            int64_t k = 0;
            for (const char *p = obj->s; (p = memmem(p, obj->len - (size_t)(p - obj->s), sub->s, sub->len));
                 p += sub->len)
                k++;
            return jv_int(ar, k);
        }
        if (!strcmp(name, "join")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "join() takes exactly one argument (0 given)");
            int64_t n;
            struct jv **it = jinja_iter(c, pos, a0, &n);
            for (int64_t i = 0; i < n; i++)
                if (it[i]->kind != JV_STR)
                    jctx_raise(c, pos, "TypeError", "sequence item %lld: expected str instance, %s found",
                               (long long)i, jv_type_name(it[i]));
            return jinja_join(c, pos, it, n, obj, NULL);
        }
        if (!strcmp(name, "isdigit")) return jv_bool(jinja_str_is(obj, 'd'));
        if (!strcmp(name, "isalpha")) return jv_bool(jinja_str_is(obj, 'a'));
        if (!strcmp(name, "isalnum")) return jv_bool(jinja_str_is(obj, 'n'));
        if (!strcmp(name, "isspace")) return jv_bool(jinja_str_is(obj, 's'));
        if (!strcmp(name, "islower")) return jv_bool(jinja_str_is(obj, 'l'));
        if (!strcmp(name, "isupper")) return jv_bool(jinja_str_is(obj, 'u'));
        if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "%s() takes exactly one argument (0 given)", name);
            int suf = name[6] == 's';
            if (!str_affix(c, pos, obj, a0, suf)) return obj;
            return jv_str(ar, obj->s + (suf ? 0 : a0->len), obj->len - a0->len);
        }
        if (!strcmp(name, "splitlines")) {
            struct jv *l = jv_list(ar, 0);
            size_t st = 0;
            for (size_t i = 0; i < obj->len; i++)
                if (obj->s[i] == '\n' || obj->s[i] == '\r') {
                    jv_list_push(ar, l, jv_str(ar, obj->s + st, i - st));
                    if (obj->s[i] == '\r' && i + 1 < obj->len && obj->s[i + 1] == '\n') i++;
                    st = i + 1;
                }
            if (st < obj->len) jv_list_push(ar, l, jv_str(ar, obj->s + st, obj->len - st));
            return l;
        }
    }
    if (obj->kind == JV_LIST) {
        if (!strcmp(name, "count") || !strcmp(name, "index")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "%s() takes exactly one argument (0 given)", name);
            int64_t k = 0;
            for (int64_t i = 0; i < obj->n; i++)
                if (jv_equal(obj->items[i], a0)) {
                    if (name[0] == 'i') return jv_int(ar, i);
                    k++;
                }
            if (name[0] == 'i') jctx_raise(c, pos, "ValueError", "value is not in list");
            return jv_int(ar, k);
        }
        jctx_raise(c, pos, "SecurityError", "access to attribute '%s' of '%s' object is unsafe.", name,
                   jv_type_name(obj));
    }
    if (obj->kind == JV_DICT && !obj->is_ns) {
        if (!strcmp(name, "items")) return items_list(c, obj);
        if (!strcmp(name, "keys") || !strcmp(name, "values")) {
            struct jv *l = jv_list(ar, obj->n);
            for (int64_t i = 0; i < obj->n; i++)
                jv_list_push(ar, l, name[0] == 'k' ? obj->keys[i] : obj->items[i]);
            return l;
        }
        if (!strcmp(name, "get")) {
            if (!a0) jctx_raise(c, pos, "TypeError", "get expected at least 1 argument, got 0");
            struct jv *v = NULL;
            if (a0->kind == JV_STR)
                v = jv_dict_get(obj, a0->s, a0->len);
            else
                for (int64_t i = 0; i < obj->n && !v; i++)
                    if (jv_equal(obj->keys[i], a0)) v = obj->items[i];
            return v ? v : a1 ? a1 : &jv_none;
        }
        if (!strcmp(name, "copy")) {
            struct jv *d = jv_dict(ar);
            for (int64_t i = 0; i < obj->n; i++)
                jv_dict_set(ar, d, obj->keys[i], obj->items[i]);
            return d;
        }
        jctx_raise(c, pos, "SecurityError", "access to attribute '%s' of 'dict' object is unsafe.", name);
    }
    jctx_raise(c, pos, "UndefinedError", "'%s object' has no attribute '%s'", jv_type_name(obj), name);
}

/* ---------- tests ---------- */

static const char *tests_impl[] = {
    "defined",  "undefined",   "none",    "string", "mapping",  "iterable", "sequence", "number",
    "integer",  "float",       "boolean", "true",   "false",    "equalto",  "eq",       "==",
    "ne",       "!=",          "lt",      "<",      "lessthan", "le",       "<=",       "gt",
    ">",        "greaterthan", "ge",      ">=",     "in",       "odd",      "even",     "divisibleby",
    "callable", "sameas",      "lower",   "upper",  "escaped",  "filter",   "test",     NULL};

int jinja_test_known(const char *name) { return in_set(tests_impl, name); }

int jinja_test_apply(struct jctx *c, int pos, const char *name, struct jv *v, const struct jargs *a) {
    struct jv *a0 = jargs_get(a, 0, NULL);
    enum jv_kind k = v->kind;
    if (!strcmp(name, "defined")) return k != JV_UNDEF;
    if (!strcmp(name, "undefined")) return k == JV_UNDEF;
    if (!strcmp(name, "none")) return k == JV_NONE;
    if (!strcmp(name, "string")) return k == JV_STR;
    if (!strcmp(name, "mapping")) return k == JV_DICT && !v->is_ns && !v->is_loop;
    if (!strcmp(name, "iterable"))
        return k == JV_STR || k == JV_LIST || k == JV_UNDEF || (k == JV_DICT && !v->is_ns && !v->is_loop);
    if (!strcmp(name, "sequence"))
        return k == JV_STR || k == JV_LIST || (k == JV_DICT && !v->is_ns && !v->is_loop);
    if (!strcmp(name, "number")) return k == JV_INT || k == JV_FLOAT || k == JV_BOOL;
    if (!strcmp(name, "integer")) return k == JV_INT;
    if (!strcmp(name, "float")) return k == JV_FLOAT;
    if (!strcmp(name, "boolean")) return k == JV_BOOL;
    if (!strcmp(name, "true")) return k == JV_BOOL && v->i;
    if (!strcmp(name, "false")) return k == JV_BOOL && !v->i;
    if (!strcmp(name, "callable"))
        return k == JV_FUNC || k == JV_MACRO || k == JV_UNDEF; /* Undefined has __call__ */
    if (!strcmp(name, "escaped")) return 0;
    if (!strcmp(name, "filter")) return k == JV_STR && jinja_filter_known(v->s) == 1;
    if (!strcmp(name, "test")) return k == JV_STR && jinja_test_known(v->s);
    if (!strcmp(name, "lower") || !strcmp(name, "upper"))
        return k == JV_STR && jinja_str_is(v, name[0] == 'l' ? 'l' : 'u');
    if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        int64_t x = jinja_need_int(c, pos, v, "value");
        if (name[0] == 'd') {
            if (!a0) jctx_raise(c, pos, "TypeError", "divisibleby needs an argument");
            int64_t d = jinja_need_int(c, pos, a0, "divisibleby argument");
            if (!d) jctx_raise(c, pos, "ZeroDivisionError", "integer division or modulo by zero");
            return x % d == 0;
        }
        return (x % 2 != 0) == (name[0] == 'o');
    }
    if (!a0) jctx_raise(c, pos, "TypeError", "test '%s' needs an argument", name);
    if (!strcmp(name, "sameas")) {
        if (k != a0->kind) return 0;
        if (k == JV_NONE || k == JV_UNDEF) return 1;
        if (k == JV_BOOL) return v->i == a0->i;
        return v == a0;
    }
    if (!strcmp(name, "in")) return jinja_contains(c, pos, v, a0);
    if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "==")) return jv_equal(v, a0);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jv_equal(v, a0);
    int r = jv_compare(v, a0);
    if (v->kind == JV_UNDEF) jctx_raise_undef(c, pos, v);
    if (r == -2)
        jctx_raise(c, pos, "TypeError", "test '%s': cannot compare %s and %s", name, jv_type_name(v),
                   jv_type_name(a0));
    if (!strcmp(name, "lt") || !strcmp(name, "<") || !strcmp(name, "lessthan")) return r < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return r <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, ">") || !strcmp(name, "greaterthan")) return r > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return r >= 0;
    jctx_raise(c, pos, "TemplateRuntimeError", "No test named '%s'.", name);
}
