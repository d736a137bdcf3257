/* jinja_value: arena, values with Python semantics, str/repr/json.dumps writers. See
 * jinja_value.h. json.dumps follows CPython's json.encoder (ensure_ascii, indent, separators);
 * float repr follows float.__repr__ (shortest digits that round-trip, 'e' outside 1e-4..1e16). */
#include "tok/jinja_value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/util.h"

struct jarena_blk {
    struct jarena_blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *jarena_alloc(struct jarena *a, size_t n) {
    if (a->limit && (n > a->limit || a->used + n > a->limit)) a->over(a, "memory");
    n = (n + 15) & ~(size_t)15;
    a->used += n;
    struct jarena_blk *b = a->head;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > 65536 ? n : 65536;
        b = xmalloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void jarena_free(struct jarena *a) {
    struct jarena_blk *b = a->head;
    while (b) {
        struct jarena_blk *nx = b->next;
        free(b);
        b = nx;
    }
    a->head = NULL;
    a->used = 0;
}

char *jarena_strndup(struct jarena *a, const char *s, size_t n) {
    char *p = jarena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

struct jv jv_undef_plain = {.kind = JV_UNDEF, .s = ""};
struct jv jv_none = {.kind = JV_NONE};
struct jv jv_true = {.kind = JV_BOOL, .i = 1};
struct jv jv_false = {.kind = JV_BOOL, .i = 0};

static struct jv *jv_new(struct jarena *a, enum jv_kind k) {
    struct jv *v = jarena_alloc(a, sizeof *v);
    v->kind = k;
    return v;
}

struct jv *jv_str(struct jarena *a, const char *s, size_t len) {
    return jv_str_take(a, jarena_strndup(a, s, len), len);
}
struct jv *jv_str_take(struct jarena *a, char *s, size_t len) {
    struct jv *v = jv_new(a, JV_STR);
    v->s = s;
    v->len = len;
    return v;
}
struct jv *jv_cstr(struct jarena *a, const char *s) {
    return jv_str(a, s, strlen(s));
}
struct jv *jv_int(struct jarena *a, int64_t i) {
    struct jv *v = jv_new(a, JV_INT);
    v->i = i;
    return v;
}
struct jv *jv_float(struct jarena *a, double f) {
    struct jv *v = jv_new(a, JV_FLOAT);
    v->f = f;
    return v;
}
struct jv *jv_bool(int b) {
    return b ? &jv_true : &jv_false;
}
struct jv *jv_undef(struct jarena *a, const char *hint) {
    struct jv *v = jv_new(a, JV_UNDEF);
    v->s = hint ? jarena_strndup(a, hint, strlen(hint)) : "";
    return v;
}
struct jv *jv_list(struct jarena *a, int64_t cap) {
    struct jv *v = jv_new(a, JV_LIST);
    if (cap > 0) {
        v->items = jarena_alloc(a, (size_t)cap * sizeof *v->items);
        v->cap = cap;
    }
    return v;
}
struct jv *jv_dict(struct jarena *a) {
    return jv_new(a, JV_DICT);
}

static void jv_grow(struct jarena *a, struct jv *l, int with_keys) {
    int64_t cap = l->cap ? l->cap * 2 : 8;
    struct jv **it = jarena_alloc(a, (size_t)cap * sizeof *it);
    if (l->n) memcpy(it, l->items, (size_t)l->n * sizeof *it);
    l->items = it;
    if (with_keys) {
        struct jv **ks = jarena_alloc(a, (size_t)cap * sizeof *ks);
        if (l->n) memcpy(ks, l->keys, (size_t)l->n * sizeof *ks);
        l->keys = ks;
    }
    l->cap = cap;
}

static void nest(struct jarena *a, struct jv *l, const struct jv *v) {
    if (v->depth + 1 > l->depth) l->depth = v->depth + 1;
    if (l->depth > JV_MAX_NESTING && a->over) a->over(a, "nesting");
}

void jv_list_push(struct jarena *a, struct jv *l, struct jv *v) {
    nest(a, l, v);
    if (l->n == l->cap) jv_grow(a, l, 0);
    l->items[l->n++] = v;
}

struct jv *jv_dict_get(const struct jv *d, const char *key, size_t klen) {
    for (int64_t i = 0; i < d->n; i++)
        if (d->keys[i]->len == klen && memcmp(d->keys[i]->s, key, klen) == 0) return d->items[i];
    return NULL;
}

void jv_dict_set(struct jarena *a, struct jv *d, struct jv *key, struct jv *v) {
    nest(a, d, v);
    for (int64_t i = 0; i < d->n; i++)
        if (d->keys[i]->len == key->len && memcmp(d->keys[i]->s, key->s, key->len) == 0) {
            d->items[i] = v;
            return;
        }
    if (d->n == d->cap) jv_grow(a, d, 1);
    d->keys[d->n] = key;
    d->items[d->n++] = v;
}

struct jv *jv_from_cjson(struct jarena *a, const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return &jv_none;
    if (cJSON_IsTrue(j)) return &jv_true;
    if (cJSON_IsFalse(j)) return &jv_false;
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* cJSON keeps no int/float distinction; integral values become Python ints. */
        if (d == floor(d) && fabs(d) < 9.2e18) return jv_int(a, (int64_t)d);
        return jv_float(a, d);
    }
    if (cJSON_IsString(j)) return jv_cstr(a, j->valuestring ? j->valuestring : "");
    if (cJSON_IsArray(j)) {
        struct jv *l = jv_list(a, cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next)
            jv_list_push(a, l, jv_from_cjson(a, c));
        return l;
    }
    if (cJSON_IsObject(j)) {
        struct jv *d = jv_dict(a);
        for (const cJSON *c = j->child; c; c = c->next)
            jv_dict_set(a, d, jv_cstr(a, c->string ? c->string : ""), jv_from_cjson(a, c));
        return d;
    }
    return &jv_none;
}

int jv_truthy(const struct jv *v) {
    switch (v->kind) {
    case JV_UNDEF:
    case JV_NONE: return 0;
    case JV_BOOL:
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0;
    case JV_STR: return v->len != 0;
    case JV_LIST:
    case JV_DICT: return v->is_ns || v->is_loop || v->n != 0;
    default: return 1;
    }
}

static int is_num(const struct jv *v) {
    return v->kind == JV_BOOL || v->kind == JV_INT || v->kind == JV_FLOAT;
}
static double num_val(const struct jv *v) { return v->kind == JV_FLOAT ? v->f : (double)v->i; }

int jv_equal(const struct jv *x, const struct jv *y) {
    if (is_num(x) && is_num(y)) {
        if (x->kind != JV_FLOAT && y->kind != JV_FLOAT) return x->i == y->i;
        return num_val(x) == num_val(y);
    }
    if (x->kind != y->kind) return 0;
    switch (x->kind) {
    case JV_UNDEF:
    case JV_NONE: return 1;
    case JV_STR: return x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
    case JV_LIST:
        if (x->n != y->n || x->is_tuple != y->is_tuple) return 0;
        for (int64_t i = 0; i < x->n; i++)
            if (!jv_equal(x->items[i], y->items[i])) return 0;
        return 1;
    case JV_DICT:
        if (x->is_ns || y->is_ns || x->is_loop || y->is_loop) return x == y;
        if (x->n != y->n) return 0;
        for (int64_t i = 0; i < x->n; i++) {
            struct jv *o = jv_dict_get(y, x->keys[i]->s, x->keys[i]->len);
            if (!o || !jv_equal(x->items[i], o)) return 0;
        }
        return 1;
    default: return x == y;
    }
}

int jv_compare(const struct jv *x, const struct jv *y) {
    if (is_num(x) && is_num(y)) {
        if (x->kind != JV_FLOAT && y->kind != JV_FLOAT) return (x->i > y->i) - (x->i < y->i);
        double a = num_val(x), b = num_val(y);
        return (a > b) - (a < b);
    }
    if (x->kind == JV_STR && y->kind == JV_STR) {
        size_t n = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->s, y->s, n); /* UTF-8 byte order == code point order */
        if (c) return c < 0 ? -1 : 1;
        return (x->len > y->len) - (x->len < y->len);
    }
    if (x->kind == JV_LIST && y->kind == JV_LIST && x->is_tuple == y->is_tuple) {
        for (int64_t i = 0; i < x->n && i < y->n; i++) {
            if (jv_equal(x->items[i], y->items[i])) continue;
            return jv_compare(x->items[i], y->items[i]);
        }
        return (x->n > y->n) - (x->n < y->n);
    }
    return -2;
}

const char *jv_type_name(const struct jv *v) {
    switch (v->kind) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v->is_tuple ? "tuple" : "list";
    case JV_DICT: return v->is_ns ? "Namespace" : v->is_loop ? "LoopContext" : "dict";
    case JV_FUNC: return "function";
    case JV_MACRO: return "Macro";
    }
    return "object";
}

void jbuf_init(struct jbuf *b, struct jarena *a) {
    memset(b, 0, sizeof *b);
    b->a = a;
}
void jbuf_put(struct jbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = jarena_alloc(b->a, cap);
        if (b->len) memcpy(p, b->p, b->len);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}
void jbuf_puts(struct jbuf *b, const char *s) { jbuf_put(b, s, strlen(s)); }
void jbuf_putc(struct jbuf *b, char c) { jbuf_put(b, &c, 1); }

void jv_write_float(struct jbuf *b, double f) {
    if (isnan(f)) return jbuf_puts(b, "nan");
    if (isinf(f)) return jbuf_puts(b, f < 0 ? "-inf" : "inf");
    char buf[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    /* buf = [-]d[.ddd]e[+-]XX : split into digits and exponent. */
    char digits[32];
    int nd = 0, neg = buf[0] == '-';
    const char *p = buf + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (neg) jbuf_putc(b, '-');
    if (e >= -5 + 1 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                jbuf_putc(b, i < nd ? digits[i] : '0');
            jbuf_putc(b, '.');
            if (nd > e + 1)
                jbuf_put(b, digits + e + 1, (size_t)(nd - e - 1));
            else
                jbuf_putc(b, '0');
        } else {
            jbuf_puts(b, "0.");
            for (int i = 0; i < -e - 1; i++)
                jbuf_putc(b, '0');
            jbuf_put(b, digits, (size_t)nd);
        }
    } else {
        jbuf_putc(b, digits[0]);
        if (nd > 1) {
            jbuf_putc(b, '.');
            jbuf_put(b, digits + 1, (size_t)(nd - 1));
        }
        snprintf(buf, sizeof buf, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        jbuf_puts(b, buf);
    }
}

static void write_int(struct jbuf *b, int64_t i) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)i);
    jbuf_puts(b, buf);
}

void jv_write_str(struct jbuf *b, const struct jv *v) {
    switch (v->kind) {
    case JV_UNDEF: return;
    case JV_STR: return jbuf_put(b, v->s, v->len);
    default: return jv_write_repr(b, v);
    }
}

int utf8_decode_one(const char *s, size_t n, int32_t *cp) {
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    if (k <= 0) {
        *cp = (unsigned char)s[0];
        return 1;
    }
    *cp = c;
    return (int)k;
}

int utf8_encode_one(int32_t cp, char out[4]) {
    return (int)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
}

int64_t utf8_cp_len(const char *s, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

size_t utf8_cp_offset(const char *s, size_t n, int64_t ci) {
    size_t i = 0;
    int64_t c = 0;
    while (i < n) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == ci) return i;
            c++;
        }
        i++;
    }
    return n;
}

int unicode_isspace(int32_t cp) {
    if (cp < 128) return cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x1f);
    if (cp == 0x85) return 1;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

/* Python str.isprintable() for one code point: not Cc/Cf/Cs/Co/Cn/Zl/Zp/Zs, except ' '. */
static int py_printable(int32_t cp) {
    if (cp == ' ') return 1;
    if (cp < 0x20 || cp == 0x7f) return 0;
    if (cp < 0x7f) return 1;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return 0;
    default: return 1;
    }
}

static void write_str_repr(struct jbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jbuf_putc(b, q);
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = utf8_decode_one(s + i, n - i, &cp);
        char esc[16];
        if (cp == q || cp == '\\') {
            jbuf_putc(b, '\\');
            jbuf_putc(b, (char)cp);
        } else if (cp == '\n')
            jbuf_puts(b, "\\n");
        else if (cp == '\r')
            jbuf_puts(b, "\\r");
        else if (cp == '\t')
            jbuf_puts(b, "\\t");
        else if (!py_printable(cp)) {
            if (cp < 0x100)
                snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
            else if (cp < 0x10000)
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            else
                snprintf(esc, sizeof esc, "\\U%08x", (unsigned)cp);
            jbuf_puts(b, esc);
        } else
            jbuf_put(b, s + i, (size_t)k);
        i += (size_t)k;
    }
    jbuf_putc(b, q);
}

void jv_write_repr(struct jbuf *b, const struct jv *v) {
    switch (v->kind) {
    case JV_UNDEF: return;
    case JV_NONE: return jbuf_puts(b, "None");
    case JV_BOOL: return jbuf_puts(b, v->i ? "True" : "False");
    case JV_INT: return write_int(b, v->i);
    case JV_FLOAT: return jv_write_float(b, v->f);
    case JV_STR: return write_str_repr(b, v->s, v->len);
    case JV_LIST:
        jbuf_putc(b, v->is_tuple ? '(' : '[');
        for (int64_t i = 0; i < v->n; i++) {
            if (i) jbuf_puts(b, ", ");
            jv_write_repr(b, v->items[i]);
        }
        if (v->is_tuple && v->n == 1) jbuf_putc(b, ',');
        jbuf_putc(b, v->is_tuple ? ')' : ']');
        return;
    case JV_DICT:
        if (v->is_ns) jbuf_puts(b, "<Namespace ");
        jbuf_putc(b, '{');
        for (int64_t i = 0; i < v->n; i++) {
            if (i) jbuf_puts(b, ", ");
            jv_write_repr(b, v->keys[i]);
            jbuf_puts(b, ": ");
            jv_write_repr(b, v->items[i]);
        }
        jbuf_putc(b, '}');
        if (v->is_ns) jbuf_putc(b, '>');
        return;
    case JV_FUNC: return jbuf_puts(b, "<built-in function>");
    case JV_MACRO: return jbuf_puts(b, "<Macro>");
    }
}

static void write_json_str(struct jbuf *b, const char *s, size_t n, int ensure_ascii) {
    jbuf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = utf8_decode_one(s + i, n - i, &cp);
        char esc[16];
        switch (cp) {
        case '"': jbuf_puts(b, "\\\""); break;
        case '\\': jbuf_puts(b, "\\\\"); break;
        case '\n': jbuf_puts(b, "\\n"); break;
        case '\r': jbuf_puts(b, "\\r"); break;
        case '\t': jbuf_puts(b, "\\t"); break;
        case '\b': jbuf_puts(b, "\\b"); break;
        case '\f': jbuf_puts(b, "\\f"); break;
        default:
            if (cp < 0x20 || (ensure_ascii && cp > 0x7e)) {
                if (cp >= 0x10000) {
                    int32_t c = cp - 0x10000;
                    snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
                } else
                    snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
                jbuf_puts(b, esc);
            } else
                jbuf_put(b, s + i, (size_t)k);
        }
        i += (size_t)k;
    }
    jbuf_putc(b, '"');
}

static void json_newline(struct jbuf *b, int indent, int level) {
    jbuf_putc(b, '\n');
    for (int i = 0; i < indent * level; i++)
        jbuf_putc(b, ' ');
}

static int key_cmp(const void *x, const void *y) {
    const struct jv *a = *(struct jv *const *)x, *c = *(struct jv *const *)y;
    return jv_compare(a, c);
}

static int write_json(struct jbuf *b, const struct jv *v, const struct jv_json_opts *o, int level,
                      const struct jv **bad) {
    const char *isep = o->item_sep ? o->item_sep : o->indent >= 0 ? "," : ", ";
    const char *ksep = o->key_sep ? o->key_sep : ": ";
    switch (v->kind) {
    case JV_NONE: jbuf_puts(b, "null"); return 0;
    case JV_BOOL: jbuf_puts(b, v->i ? "true" : "false"); return 0;
    case JV_INT: write_int(b, v->i); return 0;
    case JV_FLOAT:
        if (isnan(v->f))
            jbuf_puts(b, "NaN");
        else if (isinf(v->f))
            jbuf_puts(b, v->f < 0 ? "-Infinity" : "Infinity");
        else
            jv_write_float(b, v->f);
        return 0;
    case JV_STR: write_json_str(b, v->s, v->len, o->ensure_ascii); return 0;
    case JV_LIST:
        if (v->n == 0) {
            jbuf_puts(b, "[]");
            return 0;
        }
        jbuf_putc(b, '[');
        for (int64_t i = 0; i < v->n; i++) {
            if (i) jbuf_puts(b, isep);
            if (o->indent >= 0) json_newline(b, o->indent, level + 1);
            if (write_json(b, v->items[i], o, level + 1, bad)) return -1;
        }
        if (o->indent >= 0) json_newline(b, o->indent, level);
        jbuf_putc(b, ']');
        return 0;
    case JV_DICT: {
        if (v->is_ns || v->is_loop) break;
        if (v->n == 0) {
            jbuf_puts(b, "{}");
            return 0;
        }
        int64_t *order = xmalloc((size_t)v->n * sizeof *order);
        for (int64_t i = 0; i < v->n; i++)
            order[i] = i;
        if (o->sort_keys) { /* insertion sort by key: dicts here are small */
            for (int64_t i = 1; i < v->n; i++)
                for (int64_t j = i; j > 0 && key_cmp(&v->keys[order[j - 1]], &v->keys[order[j]]) > 0; j--) {
                    int64_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        }
        jbuf_putc(b, '{');
        int rc = 0;
        for (int64_t k = 0; k < v->n && !rc; k++) {
            int64_t i = order[k];
            if (k) jbuf_puts(b, isep);
            if (o->indent >= 0) json_newline(b, o->indent, level + 1);
            write_json_str(b, v->keys[i]->s, v->keys[i]->len, o->ensure_ascii);
            jbuf_puts(b, ksep);
            rc = write_json(b, v->items[i], o, level + 1, bad);
        }
        free(order);
        if (rc) return -1;
        if (o->indent >= 0) json_newline(b, o->indent, level);
        jbuf_putc(b, '}');
        return 0;
    }
    default: break;
    }
    *bad = v;
    return -1;
}

int jv_write_json(struct jbuf *b, const struct jv *v, const struct jv_json_opts *o, const struct jv **bad) {
    return write_json(b, v, o, 0, bad);
}

struct jv *jv_to_str(struct jarena *a, const struct jv *v) {
    if (v->kind == JV_STR) return (struct jv *)v;
    struct jbuf b;
    jbuf_init(&b, a);
    jv_write_str(&b, v);
    if (!b.p) return jv_str(a, "", 0);
    return jv_str_take(a, b.p, b.len);
}
