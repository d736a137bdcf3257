/* jinja_parse: lexer + recursive-descent parser for the Jinja2 subset chat templates use. The
 * lexer mirrors jinja2.lexer.Lexer.tokeniter: data / {{ }} / {% %} / {# #} / raw, whitespace
 * control (`-` strips all whitespace, `+` disables lstrip/trim), lstrip_blocks only before
 * block and comment tags at a line start, trim_blocks removes one newline after %} and #}. */
#include "tok/jinja_parse.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/jinja_builtins.h"
#include "tok/jinja_filters.h"

enum tk {
    TK_EOF,
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP
};

struct token {
    enum tk kind;
    int pos;
    const char *s; /* NAME / STRING / DATA text (arena), OP text */
    size_t len;
    int64_t i;
    double f;
};

struct parser {
    struct jinja_ast *t;
    struct token *toks;
    int n, cap, cur;
    int depth; /* expression / block nesting, bounded to keep the C stack safe */
    jmp_buf jb;
};

void jinja_line_col(const char *src, size_t len, int pos, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < len && (int)i < pos; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)src[i] & 0xC0) != 0x80)
            c++;
    }
    *line = l;
    *col = c;
}

static void vperr(struct parser *p, int pos, const char *cls, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line, col;
    jinja_line_col(p->t->src, p->t->src_len, pos, &line, &col);
    err_set("%s:%d:%d: %s: %s", p->t->name, line, col, cls, msg);
    longjmp(p->jb, 1);
}

__attribute__((noreturn, format(printf, 3, 4))) static void perr(struct parser *p, int pos, const char *fmt,
                                                                 ...) {
    va_list ap;
    va_start(ap, fmt);
    vperr(p, pos, "TemplateSyntaxError", fmt, ap);
    va_end(ap);
    abort();
}

/* Unknown filters and tests fail at compile time, as in Jinja2. */
__attribute__((noreturn, format(printf, 3, 4))) static void passert(struct parser *p, int pos,
                                                                    const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vperr(p, pos, "TemplateAssertionError", fmt, ap);
    va_end(ap);
    abort();
}

static struct token *tok_push(struct parser *p, enum tk kind, int pos) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->toks = xrealloc(p->toks, (size_t)p->cap * sizeof *p->toks);
    }
    struct token *t = &p->toks[p->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->pos = pos;
    return t;
}

static void push_data(struct parser *p, int pos, const char *s, size_t n) {
    if (!n) return;
    struct token *t = tok_push(p, TK_DATA, pos);
    t->s = s;
    t->len = n;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python's "unicode-escape" decoding of a string literal's body (as Jinja's lexer does). */
static char *unescape(struct parser *p, const char *s, size_t n, size_t *out_len) {
    char *o = jarena_alloc(&p->t->arena, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            o[k++] = s[i];
            continue;
        }
        char c = s[++i];
        int32_t cp = -1;
        int digits = 0;
        switch (c) {
        case '\n': break;
        case '\\': o[k++] = '\\'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'a': o[k++] = '\a'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'v': o[k++] = '\v'; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                cp = 0;
                int m = 0;
                while (m < 3 && i < n && s[i] >= '0' && s[i] <= '7')
                    cp = cp * 8 + (s[i++] - '0'), m++;
                i--;
                k += (size_t)utf8_encode_one(cp, o + k);
            } else {
                o[k++] = '\\';
                o[k++] = c;
            }
        }
        if (digits) {
            cp = 0;
            for (int m = 0; m < digits; m++) {
                int h = i + 1 + (size_t)m < n ? hexval(s[i + 1 + m]) : -1;
                if (h < 0) perr(p, 0, "truncated \\%c escape in a string literal", c);
                cp = cp * 16 + h;
            }
            i += (size_t)digits;
            k += (size_t)utf8_encode_one(cp, o + k);
        }
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

static const char *ops3[] = {"//", "**", "==", "!=", "<=", ">=", NULL};
static const char ops1[] = "+-/*%~<>=()[]{},.:|;";

/* Lexes expression tokens from *ip until the closing delimiter ("}}" or "%}"); returns the
 * strip sign found before it ('-', '+' or 0) and leaves *ip after the delimiter. */
static int lex_expr(struct parser *p, size_t *ip, int block, int open_pos) {
    const char *s = p->t->src;
    size_t n = p->t->src_len, i = *ip;
    const char *end = block ? "%}" : "}}";
    int depth = 0;
    for (;;) {
        while (i < n && is_ws(s[i]))
            i++;
        if (i >= n) perr(p, open_pos, "unexpected end of template, expected '%s'", end);
        if ((s[i] == '-' || s[i] == '+') && i + 2 < n + 1 && strncmp(s + i + 1, end, 2) == 0 &&
            (block || depth == 0)) {
            *ip = i + 3;
            return s[i];
        }
        if (strncmp(s + i, end, 2) == 0 && (block || depth == 0)) {
            *ip = i + 2;
            return 0;
        }
        int pos = (int)i;
        char c = s[i];
        if (isalpha((unsigned char)c) || c == '_') {
            size_t j = i;
            while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
                j++;
            struct token *t = tok_push(p, TK_NAME, pos);
            t->s = jarena_strndup(&p->t->arena, s + i, j - i);
            t->len = j - i;
            i = j;
        } else if (isdigit((unsigned char)c)) {
            size_t j = i;
            int is_float = 0;
            while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '_'))
                j++;
            if (j + 1 < n && s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
                is_float = 1;
                j++;
                while (j < n && (isdigit((unsigned char)s[j]) || s[j] == '_'))
                    j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                if (k < n && isdigit((unsigned char)s[k])) {
                    is_float = 1;
                    j = k;
                    while (j < n && isdigit((unsigned char)s[j]))
                        j++;
                }
            }
            char buf[128];
            size_t m = 0;
            for (size_t k = i; k < j && m < sizeof buf - 1; k++)
                if (s[k] != '_') buf[m++] = s[k];
            buf[m] = 0;
            struct token *t = tok_push(p, is_float ? TK_FLOAT : TK_INT, pos);
            if (is_float)
                t->f = strtod(buf, NULL);
            else
                t->i = strtoll(buf, NULL, 10);
            i = j;
        } else if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c)
                j += s[j] == '\\' ? 2 : 1;
            if (j >= n) perr(p, pos, "unexpected end of string");
            struct token *t = tok_push(p, TK_STRING, pos);
            t->s = unescape(p, s + i + 1, j - i - 1, &t->len);
            i = j + 1;
        } else {
            int len = 0;
            for (int k = 0; ops3[k]; k++)
                if (strncmp(s + i, ops3[k], 2) == 0) len = 2;
            if (!len && strchr(ops1, c) && c) len = 1;
            if (!len) perr(p, pos, "unexpected char '%c'", c);
            if (c == '(' || c == '[' || c == '{') depth++;
            if (c == ')' || c == ']' || c == '}') depth--;
            struct token *t = tok_push(p, TK_OP, pos);
            t->s = s + i;
            t->len = (size_t)len;
            i += (size_t)len;
        }
    }
}

/* Normalises newlines, drops one trailing newline, and tokenises. */
static void lex(struct parser *p) {
    const char *s = p->t->src;
    size_t n = p->t->src_len, i = 0;
    for (;;) {
        /* find the next tag start */
        size_t j = i;
        int kind = 0; /* '{', '%', '#' */
        while (j + 1 < n) {
            if (s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#')) {
                kind = s[j + 1];
                break;
            }
            j++;
        }
        if (!kind) {
            push_data(p, (int)i, s + i, n - i);
            break;
        }
        size_t text_end = j;
        char sign = j + 2 < n && (s[j + 2] == '-' || s[j + 2] == '+') ? s[j + 2] : 0;
        if (sign == '-') {
            while (text_end > i && is_ws(s[text_end - 1]))
                text_end--;
        } else if (sign != '+' && kind != '{') { /* lstrip_blocks */
            size_t l = text_end;
            while (l > i && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\f' || s[l - 1] == '\v'))
                l--;
            int at_line_start = l == 0 || s[l - 1] == '\n';
            if (at_line_start && (l > i || l == 0 || s[l - 1] == '\n')) text_end = l;
        }
        size_t body = j + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t k = body;
            int esign = 0;
            for (;; k++) {
                if (k + 1 >= n) perr(p, (int)j, "missing end of comment tag");
                if ((s[k] == '-' || s[k] == '+') && k + 2 < n + 1 && strncmp(s + k + 1, "#}", 2) == 0) {
                    esign = s[k];
                    k += 3;
                    break;
                }
                if (strncmp(s + k, "#}", 2) == 0) {
                    k += 2;
                    break;
                }
            }
            push_data(p, (int)i, s + i, text_end - i);
            if (esign == '-') {
                while (k < n && is_ws(s[k]))
                    k++;
            } else if (esign != '+' && k < n && s[k] == '\n')
                k++;
            i = k;
            continue;
        }
        push_data(p, (int)i, s + i, text_end - i);
        if (kind == '%') {
            /* {% raw %} ... {% endraw %}: verbatim */
            size_t k = body;
            while (k < n && is_ws(s[k]))
                k++;
            if (n - k >= 3 && strncmp(s + k, "raw", 3) == 0 &&
                !(k + 3 < n && (isalnum((unsigned char)s[k + 3]) || s[k + 3] == '_'))) {
                size_t q = k + 3;
                while (q < n && is_ws(s[q]))
                    q++;
                int rsign = 0;
                if (q < n && (s[q] == '-' || s[q] == '+')) rsign = s[q++];
                if (q + 1 < n && s[q] == '%' && s[q + 1] == '}') {
                    q += 2;
                    if (rsign == '-')
                        while (q < n && is_ws(s[q]))
                            q++;
                    /* find {%[-+]? endraw [-+]?%} */
                    size_t r = q;
                    for (;; r++) {
                        if (r + 1 >= n) perr(p, (int)j, "missing end of raw directive");
                        if (s[r] != '{' || s[r + 1] != '%') continue;
                        size_t e = r + 2;
                        char esign = e < n && (s[e] == '-' || s[e] == '+') ? s[e] : 0;
                        if (esign) e++;
                        while (e < n && is_ws(s[e]))
                            e++;
                        if (n - e < 6 || strncmp(s + e, "endraw", 6) != 0) continue;
                        e += 6;
                        while (e < n && is_ws(s[e]))
                            e++;
                        char tsign = e < n && (s[e] == '-' || s[e] == '+') ? s[e] : 0;
                        if (tsign) e++;
                        if (e + 1 >= n || s[e] != '%' || s[e + 1] != '}') continue;
                        e += 2;
                        size_t tend = r;
                        if (esign == '-')
                            while (tend > q && is_ws(s[tend - 1]))
                                tend--;
                        push_data(p, (int)q, s + q, tend - q);
                        if (tsign == '-') {
                            while (e < n && is_ws(s[e]))
                                e++;
                        } else if (tsign != '+' && e < n && s[e] == '\n')
                            e++;
                        i = e;
                        break;
                    }
                    continue;
                }
            }
        }
        tok_push(p, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, (int)j);
        size_t k = body;
        int esign = lex_expr(p, &k, kind == '%', (int)j);
        tok_push(p, kind == '%' ? TK_BLOCK_END : TK_VAR_END, (int)k - 2);
        if (esign == '-') {
            while (k < n && is_ws(s[k]))
                k++;
        } else if (kind == '%' && esign != '+' && k < n && s[k] == '\n')
            k++;
        i = k;
    }
    tok_push(p, TK_EOF, (int)n);
}

/* ---------------- parser ---------------- */

static struct token *cur(struct parser *p) { return &p->toks[p->cur]; }
static struct token *next(struct parser *p) { return &p->toks[p->cur++]; }
static int is_op(struct token *t, const char *op) {
    return t->kind == TK_OP && t->len == strlen(op) && strncmp(t->s, op, t->len) == 0;
}
static int is_name(struct token *t, const char *name) {
    return t->kind == TK_NAME && strcmp(t->s, name) == 0;
}

static const char *tok_desc(struct token *t) {
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return t->s;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_OP: return t->s[0] == '(' ? "'('" : "operator";
    }
    return "token";
}

static void expect_op(struct parser *p, const char *op) {
    struct token *t = cur(p);
    if (!is_op(t, op))
        perr(p, t->pos, "expected token '%s', got '%.*s'", op,
             t->kind == TK_OP ? (int)t->len : (int)strlen(tok_desc(t)),
             t->kind == TK_OP ? t->s : tok_desc(t));
    p->cur++;
}

static const char *expect_name(struct parser *p) {
    struct token *t = cur(p);
    if (t->kind != TK_NAME) perr(p, t->pos, "expected a name, got %s", tok_desc(t));
    p->cur++;
    return t->s;
}

static void expect_kind(struct parser *p, enum tk k, const char *what) {
    struct token *t = cur(p);
    if (t->kind != k) perr(p, t->pos, "expected %s, got %s", what, tok_desc(t));
    p->cur++;
}

static struct jnode *node_new(struct parser *p, enum jnode_kind k, int pos) {
    struct jnode *nd = jarena_alloc(&p->t->arena, sizeof *nd);
    nd->kind = k;
    nd->pos = pos;
    return nd;
}

struct nodevec {
    struct jnode **v;
    int n, cap;
};
static void nv_push(struct parser *p, struct nodevec *nv, struct jnode *x) {
    if (nv->n == nv->cap) {
        int cap = nv->cap ? nv->cap * 2 : 4;
        struct jnode **v = jarena_alloc(&p->t->arena, (size_t)cap * sizeof *v);
        if (nv->n) memcpy(v, nv->v, (size_t)nv->n * sizeof *v);
        nv->v = v;
        nv->cap = cap;
    }
    nv->v[nv->n++] = x;
}

static struct jnode *parse_expr(struct parser *p);
static struct jnode *parse_or(struct parser *p);
static struct jnode *parse_unary(struct parser *p, int with_filter);

/* (args, kw=...) after '(' has been seen (not consumed). */
static void parse_call_args(struct parser *p, struct jnode *nd) {
    expect_op(p, "(");
    struct nodevec args = {0}, kwv = {0};
    const char **kwn = NULL;
    int kwcap = 0;
    while (!is_op(cur(p), ")")) {
        if (args.n || kwv.n) expect_op(p, ",");
        if (is_op(cur(p), ")")) break;
        struct token *t = cur(p);
        if (t->kind == TK_NAME && is_op(&p->toks[p->cur + 1], "=")) {
            p->cur += 2;
            if (kwv.n == kwcap) {
                kwcap = kwcap ? kwcap * 2 : 4;
                const char **nk = jarena_alloc(&p->t->arena, (size_t)kwcap * sizeof *nk);
                if (kwv.n) memcpy(nk, kwn, (size_t)kwv.n * sizeof *nk);
                kwn = nk;
            }
            kwn[kwv.n] = t->s;
            nv_push(p, &kwv, parse_expr(p));
        } else {
            if (kwv.n) perr(p, t->pos, "positional argument follows keyword argument");
            nv_push(p, &args, parse_expr(p));
        }
    }
    expect_op(p, ")");
    nd->args = args.v;
    nd->n_args = args.n;
    nd->kw_names = kwn;
    nd->kw_vals = kwv.v;
    nd->n_kw = kwv.n;
}

static struct jnode *parse_primary(struct parser *p) {
    struct token *t = cur(p);
    struct jarena *a = &p->t->arena;
    struct jnode *nd;
    if (t->kind == TK_NAME) {
        p->cur++;
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True") || !strcmp(t->s, "false") ||
            !strcmp(t->s, "False")) {
            nd = node_new(p, JN_CONST, t->pos);
            nd->val = jv_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            nd = node_new(p, JN_CONST, t->pos);
            nd->val = &jv_none;
        } else {
            nd = node_new(p, JN_NAME, t->pos);
            nd->name = t->s;
        }
        return nd;
    }
    if (t->kind == TK_STRING) {
        /* adjacent string literals concatenate */
        struct jbuf b;
        jbuf_init(&b, a);
        jbuf_put(&b, "", 0);
        while (cur(p)->kind == TK_STRING) {
            jbuf_put(&b, cur(p)->s, cur(p)->len);
            p->cur++;
        }
        nd = node_new(p, JN_CONST, t->pos);
        nd->val = jv_str_take(a, b.p, b.len);
        return nd;
    }
    if (t->kind == TK_INT || t->kind == TK_FLOAT) {
        p->cur++;
        nd = node_new(p, JN_CONST, t->pos);
        nd->val = t->kind == TK_INT ? jv_int(a, t->i) : jv_float(a, t->f);
        return nd;
    }
    if (is_op(t, "(")) {
        p->cur++;
        if (is_op(cur(p), ")")) {
            p->cur++;
            return node_new(p, JN_TUPLE, t->pos);
        }
        struct jnode *e = parse_expr(p);
        if (is_op(cur(p), ",")) {
            struct nodevec v = {0};
            nv_push(p, &v, e);
            while (is_op(cur(p), ",")) {
                p->cur++;
                if (is_op(cur(p), ")")) break;
                nv_push(p, &v, parse_expr(p));
            }
            e = node_new(p, JN_TUPLE, t->pos);
            e->args = v.v;
            e->n_args = v.n;
        }
        expect_op(p, ")");
        return e;
    }
    if (is_op(t, "[")) {
        p->cur++;
        struct nodevec v = {0};
        while (!is_op(cur(p), "]")) {
            if (v.n) expect_op(p, ",");
            if (is_op(cur(p), "]")) break;
            nv_push(p, &v, parse_expr(p));
        }
        expect_op(p, "]");
        nd = node_new(p, JN_LIST, t->pos);
        nd->args = v.v;
        nd->n_args = v.n;
        return nd;
    }
    if (is_op(t, "{")) {
        p->cur++;
        struct nodevec v = {0};
        while (!is_op(cur(p), "}")) {
            if (v.n) expect_op(p, ",");
            if (is_op(cur(p), "}")) break;
            nv_push(p, &v, parse_expr(p));
            expect_op(p, ":");
            nv_push(p, &v, parse_expr(p));
        }
        expect_op(p, "}");
        nd = node_new(p, JN_DICT, t->pos);
        nd->args = v.v;
        nd->n_args = v.n;
        return nd;
    }
    perr(p, t->pos, "unexpected %s", t->kind == TK_OP ? "operator" : tok_desc(t));
}

static struct jnode *parse_subscript(struct parser *p, struct jnode *obj) {
    int pos = cur(p)->pos;
    expect_op(p, "[");
    struct jnode *start = NULL, *stop = NULL, *step = NULL;
    int is_slice = 0;
    if (!is_op(cur(p), ":")) start = parse_expr(p);
    if (is_op(cur(p), ":")) {
        is_slice = 1;
        p->cur++;
        if (!is_op(cur(p), "]") && !is_op(cur(p), ":")) stop = parse_expr(p);
        if (is_op(cur(p), ":")) {
            p->cur++;
            if (!is_op(cur(p), "]")) step = parse_expr(p);
        }
    }
    expect_op(p, "]");
    struct jnode *nd = node_new(p, is_slice ? JN_SLICE : JN_ITEM, pos);
    nd->a = obj;
    nd->b = start;
    nd->c = stop;
    nd->d = step;
    return nd;
}

static struct jnode *parse_postfix(struct parser *p, struct jnode *nd) {
    for (;;) {
        struct token *t = cur(p);
        if (is_op(t, ".")) {
            p->cur++;
            struct token *u = next(p);
            if (u->kind == TK_NAME) {
                struct jnode *x = node_new(p, JN_ATTR, u->pos);
                x->a = nd;
                x->name = u->s;
                nd = x;
            } else if (u->kind == TK_INT) {
                struct jnode *x = node_new(p, JN_ITEM, u->pos);
                x->a = nd;
                x->b = node_new(p, JN_CONST, u->pos);
                x->b->val = jv_int(&p->t->arena, u->i);
                nd = x;
            } else
                perr(p, u->pos, "expected name or number after '.'");
        } else if (is_op(t, "[")) {
            nd = parse_subscript(p, nd);
        } else if (is_op(t, "(")) {
            struct jnode *x = node_new(p, JN_CALL, nd->pos); /* errors point at the callee */
            x->a = nd;
            parse_call_args(p, x);
            nd = x;
        } else
            return nd;
    }
}

static struct jnode *parse_filter(struct parser *p, struct jnode *operand) {
    /* current token is after '|' */
    struct token *t = cur(p);
    const char *name = expect_name(p);
    if (!jinja_filter_known(name)) passert(p, t->pos, "No filter named '%s'.", name);
    struct jnode *x = node_new(p, JN_FILTER, t->pos);
    x->a = operand;
    x->name = name;
    if (is_op(cur(p), "(")) parse_call_args(p, x);
    return x;
}

static struct jnode *parse_filter_expr(struct parser *p, struct jnode *nd) {
    for (;;) {
        struct token *t = cur(p);
        if (is_op(t, "|")) {
            p->cur++;
            nd = parse_filter(p, nd);
        } else if (is_name(t, "is")) {
            p->cur++;
            int neg = 0;
            if (is_name(cur(p), "not")) {
                neg = 1;
                p->cur++;
            }
            struct token *nt = cur(p);
            const char *name = expect_name(p);
            if (!jinja_test_known(name)) passert(p, nt->pos, "No test named '%s'.", name);
            struct jnode *x = node_new(p, JN_TEST, nt->pos);
            x->a = nd;
            x->name = name;
            x->op = neg;
            struct token *u = cur(p);
            if (is_op(u, "("))
                parse_call_args(p, x);
            else if ((u->kind == TK_NAME || u->kind == TK_STRING || u->kind == TK_INT ||
                      u->kind == TK_FLOAT || is_op(u, "[") || is_op(u, "{")) &&
                     !is_name(u, "else") && !is_name(u, "or") && !is_name(u, "and")) {
                struct jnode *arg = parse_postfix(p, parse_primary(p));
                x->args = jarena_alloc(&p->t->arena, sizeof *x->args);
                x->args[0] = arg;
                x->n_args = 1;
            }
            nd = x;
        } else if (is_op(t, "(")) {
            struct jnode *x = node_new(p, JN_CALL, t->pos);
            x->a = nd;
            parse_call_args(p, x);
            nd = x;
        } else
            return nd;
    }
}

static struct jnode *parse_unary(struct parser *p, int with_filter) {
    struct token *t = cur(p);
    struct jnode *nd;
    if (is_op(t, "-") || is_op(t, "+")) {
        p->cur++;
        nd = node_new(p, JN_UNARY, t->pos);
        nd->op = t->s[0];
        nd->a = parse_unary(p, 0);
    } else
        nd = parse_primary(p);
    nd = parse_postfix(p, nd);
    if (with_filter) nd = parse_filter_expr(p, nd);
    return nd;
}

static struct jnode *binop(struct parser *p, int op, int pos, struct jnode *l, struct jnode *r) {
    struct jnode *nd = node_new(p, JN_BINOP, pos);
    nd->op = op;
    nd->a = l;
    nd->b = r;
    return nd;
}

static struct jnode *parse_pow(struct parser *p) {
    struct jnode *l = parse_unary(p, 1);
    while (is_op(cur(p), "**")) {
        int pos = next(p)->pos;
        l = binop(p, 'P', pos, l, parse_unary(p, 1));
    }
    return l;
}

static struct jnode *parse_math2(struct parser *p) {
    struct jnode *l = parse_pow(p);
    for (;;) {
        struct token *t = cur(p);
        int op = is_op(t, "*") ? '*' : is_op(t, "/") ? '/' : is_op(t, "//") ? 'F' : is_op(t, "%") ? '%' : 0;
        if (!op) return l;
        p->cur++;
        l = binop(p, op, t->pos, l, parse_pow(p));
    }
}

static struct jnode *parse_concat(struct parser *p) {
    struct jnode *l = parse_math2(p);
    while (is_op(cur(p), "~")) {
        int pos = next(p)->pos;
        l = binop(p, '~', pos, l, parse_math2(p));
    }
    return l;
}

static struct jnode *parse_math1(struct parser *p) {
    struct jnode *l = parse_concat(p);
    for (;;) {
        struct token *t = cur(p);
        int op = is_op(t, "+") ? '+' : is_op(t, "-") ? '-' : 0;
        if (!op) return l;
        p->cur++;
        l = binop(p, op, t->pos, l, parse_concat(p));
    }
}

static struct jnode *parse_compare(struct parser *p) {
    struct jnode *l = parse_math1(p);
    for (;;) {
        struct token *t = cur(p);
        int op = 0;
        if (is_op(t, "=="))
            op = 'E';
        else if (is_op(t, "!="))
            op = 'N';
        else if (is_op(t, "<"))
            op = '<';
        else if (is_op(t, "<="))
            op = 'L';
        else if (is_op(t, ">"))
            op = '>';
        else if (is_op(t, ">="))
            op = 'G';
        else if (is_name(t, "in"))
            op = 'i';
        else if (is_name(t, "not") && is_name(&p->toks[p->cur + 1], "in"))
            op = 'I';
        if (!op) return l;
        p->cur += op == 'I' ? 2 : 1;
        struct jnode *nd = node_new(p, JN_COMPARE, t->pos);
        nd->op = op;
        nd->a = l;
        nd->b = parse_math1(p);
        l = nd;
    }
}

static struct jnode *parse_not(struct parser *p) {
    struct token *t = cur(p);
    if (is_name(t, "not")) {
        p->cur++;
        struct jnode *nd = node_new(p, JN_UNARY, t->pos);
        nd->op = 'n';
        nd->a = parse_not(p);
        return nd;
    }
    return parse_compare(p);
}

static struct jnode *parse_and(struct parser *p) {
    struct jnode *l = parse_not(p);
    while (is_name(cur(p), "and")) {
        struct jnode *nd = node_new(p, JN_AND, next(p)->pos);
        nd->a = l;
        nd->b = parse_not(p);
        l = nd;
    }
    return l;
}

static struct jnode *parse_or(struct parser *p) {
    struct jnode *l = parse_and(p);
    while (is_name(cur(p), "or")) {
        struct jnode *nd = node_new(p, JN_OR, next(p)->pos);
        nd->a = l;
        nd->b = parse_and(p);
        l = nd;
    }
    return l;
}

static struct jnode *parse_expr(struct parser *p) {
    if (++p->depth > 200) perr(p, cur(p)->pos, "expression nested too deeply");
    struct jnode *l = parse_or(p);
    while (is_name(cur(p), "if")) {
        struct jnode *nd = node_new(p, JN_COND, next(p)->pos);
        nd->a = parse_or(p);
        nd->b = l;
        if (is_name(cur(p), "else")) {
            p->cur++;
            nd->c = parse_expr(p);
        }
        l = nd;
    }
    p->depth--;
    return l;
}

/* expr[, expr...] as a tuple when there is a comma (set x = 1, 2). */
static struct jnode *parse_tuple_expr(struct parser *p, int with_cond) {
    int pos = cur(p)->pos;
    struct jnode *e = with_cond ? parse_expr(p) : parse_or(p);
    if (!is_op(cur(p), ",")) return e;
    struct nodevec v = {0};
    nv_push(p, &v, e);
    while (is_op(cur(p), ",")) {
        p->cur++;
        struct token *t = cur(p);
        if (t->kind == TK_BLOCK_END || t->kind == TK_VAR_END || is_name(t, "if")) break;
        nv_push(p, &v, with_cond ? parse_expr(p) : parse_or(p));
    }
    struct jnode *nd = node_new(p, JN_TUPLE, pos);
    nd->args = v.v;
    nd->n_args = v.n;
    return nd;
}

/* Assignment target: name, name.attr, or a tuple of names. */
static struct jnode *parse_target(struct parser *p, int allow_attr) {
    struct nodevec v = {0};
    int pos = cur(p)->pos;
    int paren = 0;
    if (is_op(cur(p), "(")) {
        paren = 1;
        p->cur++;
    }
    for (;;) {
        struct token *t = cur(p);
        const char *name = expect_name(p);
        struct jnode *nd = node_new(p, JN_NAME, t->pos);
        nd->name = name;
        if (allow_attr && is_op(cur(p), ".")) {
            p->cur++;
            struct token *u = cur(p);
            struct jnode *x = node_new(p, JN_ATTR, u->pos);
            x->a = nd;
            x->name = expect_name(p);
            nd = x;
        }
        nv_push(p, &v, nd);
        if (!is_op(cur(p), ",")) break;
        p->cur++;
    }
    if (paren) expect_op(p, ")");
    if (v.n == 1 && !paren) return v.v[0];
    struct jnode *nd = node_new(p, JN_TUPLE, pos);
    nd->args = v.v;
    nd->n_args = v.n;
    return nd;
}

static struct jnode *parse_body(struct parser *p, const char *const *ends, const char *tag_for_errors,
                                int open_pos);

static void end_block(struct parser *p) { expect_kind(p, TK_BLOCK_END, "end of statement block"); }

static struct jnode *parse_if(struct parser *p, int pos) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    struct jnode *nd = node_new(p, JN_IF, pos);
    nd->a = parse_tuple_expr(p, 1);
    end_block(p);
    nd->b = parse_body(p, ends, "if", pos);
    struct token *t = next(p);
    if (is_name(t, "elif")) {
        nd->c = parse_if(p, t->pos);
        return nd;
    }
    if (is_name(t, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        end_block(p);
        nd->c = parse_body(p, ends2, "if", pos);
        p->cur++;
    }
    end_block(p);
    return nd;
}

static struct jnode *parse_stmt_inner(struct parser *p);

static struct jnode *parse_stmt(struct parser *p) {
    if (++p->depth > 200) perr(p, cur(p)->pos, "blocks nested too deeply");
    struct jnode *nd = parse_stmt_inner(p);
    p->depth--;
    return nd;
}

static struct jnode *parse_stmt_inner(struct parser *p) {
    struct token *t = cur(p);
    int pos = t->pos;
    if (t->kind != TK_NAME) perr(p, pos, "tag name expected");
    p->cur++;
    const char *tag = t->s;
    if (!strcmp(tag, "if")) return parse_if(p, pos);
    if (!strcmp(tag, "for")) {
        static const char *const ends[] = {"else", "endfor", NULL};
        struct jnode *nd = node_new(p, JN_FOR, pos);
        nd->d = parse_target(p, 0);
        if (!is_name(cur(p), "in"))
            perr(p, cur(p)->pos, "expected 'in' in for loop, got %s", tok_desc(cur(p)));
        p->cur++;
        nd->a = parse_tuple_expr(p, 0);
        if (is_name(cur(p), "if")) {
            p->cur++;
            nd->c2 = parse_expr(p);
        }
        if (is_name(cur(p), "recursive")) perr(p, cur(p)->pos, "recursive for loops are not supported");
        end_block(p);
        nd->b = parse_body(p, ends, "for", pos);
        if (is_name(next(p), "else")) {
            static const char *const ends2[] = {"endfor", NULL};
            end_block(p);
            nd->c = parse_body(p, ends2, "for", pos);
            p->cur++;
        }
        end_block(p);
        return nd;
    }
    if (!strcmp(tag, "set")) {
        struct jnode *nd = node_new(p, JN_SET, pos);
        nd->d = parse_target(p, 1);
        if (is_op(cur(p), "=")) {
            p->cur++;
            nd->a = parse_tuple_expr(p, 1);
            end_block(p);
            return nd;
        }
        if (nd->d->kind == JN_TUPLE) perr(p, cur(p)->pos, "expected '=' after a tuple target");
        while (is_op(cur(p), "|")) {
            p->cur++;
            nd->e = parse_filter(p, nd->e);
        }
        end_block(p);
        static const char *const ends[] = {"endset", NULL};
        nd->b = parse_body(p, ends, "set", pos);
        p->cur++;
        end_block(p);
        return nd;
    }
    if (!strcmp(tag, "macro") || !strcmp(tag, "call")) {
        int is_call = tag[0] == 'c';
        struct jnode *nd = node_new(p, is_call ? JN_CALLBLOCK : JN_MACRO, pos);
        struct jnode *params = node_new(p, JN_CALL, pos);
        if (is_call) {
            if (is_op(cur(p), "(")) parse_call_args(p, params);
            nd->a = parse_expr(p);
            if (nd->a->kind != JN_CALL) perr(p, nd->a->pos, "expected a call after 'call'");
        } else {
            nd->name = expect_name(p);
            parse_call_args(p, params);
        }
        for (int i = 0; i < params->n_args; i++)
            if (params->args[i]->kind != JN_NAME) perr(p, params->args[i]->pos, "expected a parameter name");
        nd->d = params;
        end_block(p);
        static const char *const mends[] = {"endmacro", NULL}, *const cends[] = {"endcall", NULL};
        nd->b = parse_body(p, is_call ? cends : mends, tag, pos);
        p->cur++;
        end_block(p);
        return nd;
    }
    if (!strcmp(tag, "filter")) {
        struct jnode *nd = node_new(p, JN_FILTERBLOCK, pos);
        nd->e = parse_filter(p, NULL);
        while (is_op(cur(p), "|")) {
            p->cur++;
            nd->e = parse_filter(p, nd->e);
        }
        end_block(p);
        static const char *const ends[] = {"endfilter", NULL};
        nd->b = parse_body(p, ends, "filter", pos);
        p->cur++;
        end_block(p);
        return nd;
    }
    if (!strcmp(tag, "generation")) { /* transformers' AssistantTracker: renders its body */
        static const char *const ends[] = {"endgeneration", NULL};
        end_block(p);
        struct jnode *nd = node_new(p, JN_GENERATION, pos);
        nd->b = parse_body(p, ends, "generation", pos);
        p->cur++;
        end_block(p);
        p->t->has_generation = 1;
        return nd;
    }
    if (!strcmp(tag, "break") || !strcmp(tag, "continue")) {
        end_block(p);
        return node_new(p, tag[0] == 'b' ? JN_BREAK : JN_CONTINUE, pos);
    }
    perr(p, pos, "Encountered unknown tag '%s'.", tag);
}

static struct jnode *parse_body(struct parser *p, const char *const *ends, const char *tag_for_errors,
                                int open_pos) {
    struct nodevec v = {0};
    struct jarena *a = &p->t->arena;
    for (;;) {
        struct token *t = cur(p);
        if (t->kind == TK_EOF) {
            if (ends)
                perr(p, open_pos,
                     "Unexpected end of template. Jinja was looking for the following tags: '%s'. The "
                     "innermost block that needs to be closed is '%s'.",
                     ends[0] && ends[1] ? ends[1] : ends[0], tag_for_errors);
            break;
        }
        if (t->kind == TK_DATA) {
            p->cur++;
            struct jnode *nd = node_new(p, JN_TEXT, t->pos);
            nd->val = jv_str(a, t->s, t->len);
            nv_push(p, &v, nd);
        } else if (t->kind == TK_VAR_BEGIN) {
            p->cur++;
            struct jnode *nd = node_new(p, JN_OUTPUT, t->pos);
            nd->a = parse_tuple_expr(p, 1);
            expect_kind(p, TK_VAR_END, "end of print statement");
            nv_push(p, &v, nd);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            struct token *nt = &p->toks[p->cur + 1];
            if (nt->kind == TK_NAME && ends) {
                int hit = 0;
                for (int i = 0; ends[i]; i++)
                    hit |= !strcmp(nt->s, ends[i]);
                if (hit) {
                    p->cur++; /* leave the end tag's name as current */
                    break;
                }
            }
            if (nt->kind == TK_NAME && !strncmp(nt->s, "end", 3) && strcmp(nt->s, "endgeneration") != 0)
                perr(p, nt->pos, "Encountered unknown tag '%s'.%s%s%s", nt->s,
                     ends ? " Jinja was looking for the following tags: '" : "", ends ? ends[0] : "",
                     ends ? "'." : "");
            if (nt->kind == TK_NAME && (!strcmp(nt->s, "elif") || !strcmp(nt->s, "else")))
                perr(p, nt->pos, "Encountered unknown tag '%s'.", nt->s);
            p->cur++;
            nv_push(p, &v, parse_stmt(p));
        } else
            perr(p, t->pos, "unexpected %s", tok_desc(t));
    }
    struct jnode *body = node_new(p, JN_BODY, open_pos);
    body->args = v.v;
    body->n_args = v.n;
    return body;
}

struct jinja_ast *jinja_parse(const char *source, const char *name) {
    struct jinja_ast *t = xcalloc(1, sizeof *t);
    t->name = xstrdup(name ? name : "<template>");
    size_t n = strlen(source);
    char *s = jarena_alloc(&t->arena, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (source[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < n && source[i + 1] == '\n') i++;
        } else
            s[k++] = source[i];
    }
    if (k && s[k - 1] == '\n') k--; /* keep_trailing_newline=False */
    s[k] = 0;
    t->src = s;
    t->src_len = k;
    struct parser *p = xcalloc(1, sizeof *p);
    p->t = t;
    if (setjmp(p->jb)) {
        free(p->toks);
        free(p);
        jinja_ast_free(t);
        return NULL;
    }
    lex(p);
    t->root = parse_body(p, NULL, NULL, 0);
    free(p->toks);
    free(p);
    return t;
}

void jinja_ast_free(struct jinja_ast *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t->name);
    free(t);
}
