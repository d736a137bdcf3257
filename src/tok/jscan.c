/* jscan: minimal JSON scanning for tokenizer files; see jscan.h. Strict about structure
 * (brackets, commas, colons, string escapes, literals), lenient about number syntax. */
#include "tok/jscan.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

int jscan_error(const struct jscan *j, const char *p, const char *what) {
    if (!p || p > j->end) p = j->end;
    size_t line = 1;
    for (const char *q = j->start; q < p; q++)
        line += *q == '\n';
    return err_set("invalid JSON at line %zu (byte %zu): %s", line, (size_t)(p - j->start), what);
}

const char *jscan_ws(const struct jscan *j, const char *p) {
    while (p < j->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const char *skip_string(const struct jscan *j, const char *p) {
    for (p++; p < j->end; p++) {
        if (*p == '"') return p + 1;
        if (*p == '\\')
            p++;
        else if ((unsigned char)*p < 0x20)
            break;
    }
    jscan_error(j, p, "unterminated string");
    return NULL;
}

const char *jscan_value(const struct jscan *j, const char *p) {
    /* Iterative: depth-tracked skip of nested containers. */
    char stack[256];
    int depth = 0;
    int expect_value = 1;
    for (;;) {
        p = jscan_ws(j, p);
        if (p >= j->end) {
            jscan_error(j, p, "unexpected end of file");
            return NULL;
        }
        char c = *p;
        if (expect_value) {
            if (c == '{' || c == '[') {
                if (depth == (int)sizeof stack) {
                    jscan_error(j, p, "nesting too deep");
                    return NULL;
                }
                stack[depth++] = c;
                p = jscan_ws(j, p + 1);
                if (p < j->end && *p == (c == '{' ? '}' : ']')) {
                    depth--;
                    p++;
                    expect_value = 0;
                    if (!depth) return p;
                    continue;
                }
                if (c == '{') {
                    if (p >= j->end || *p != '"') {
                        jscan_error(j, p, "expected a key string");
                        return NULL;
                    }
                    if (!(p = skip_string(j, p))) return NULL;
                    p = jscan_ws(j, p);
                    if (p >= j->end || *p != ':') {
                        jscan_error(j, p, "expected ':'");
                        return NULL;
                    }
                    p++;
                }
                continue;
            }
            if (c == '"') {
                if (!(p = skip_string(j, p))) return NULL;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                while (p < j->end && strchr("+-.eE0123456789", *p))
                    p++;
            } else if (j->end - p >= 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) {
                p += 4;
            } else if (j->end - p >= 5 && memcmp(p, "false", 5) == 0) {
                p += 5;
            } else {
                jscan_error(j, p, "expected a value");
                return NULL;
            }
            expect_value = 0;
            if (!depth) return p;
            continue;
        }
        /* after a value inside a container */
        char open = stack[depth - 1];
        if (c == ',') {
            p = jscan_ws(j, p + 1);
            if (open == '{') {
                if (p >= j->end || *p != '"') {
                    jscan_error(j, p, "expected a key string");
                    return NULL;
                }
                if (!(p = skip_string(j, p))) return NULL;
                p = jscan_ws(j, p);
                if (p >= j->end || *p != ':') {
                    jscan_error(j, p, "expected ':'");
                    return NULL;
                }
                p++;
            }
            expect_value = 1;
        } else if (c == (open == '{' ? '}' : ']')) {
            p++;
            if (!--depth) return p;
        } else {
            jscan_error(j, p, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
            return NULL;
        }
    }
}

static void buf_put(struct jscan *j, const char *s, size_t n) {
    if (j->len + n + 1 > j->cap) {
        while (j->len + n + 1 > j->cap)
            j->cap = j->cap ? j->cap * 2 : 256;
        j->buf = xrealloc(j->buf, j->cap);
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

const char *jscan_string(struct jscan *j, const char *p) {
    j->len = 0;
    if (p >= j->end || *p != '"') {
        jscan_error(j, p, "expected a string");
        return NULL;
    }
    p++;
    for (;;) {
        const char *q = p;
        while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        buf_put(j, p, (size_t)(q - p));
        if (q >= j->end || (unsigned char)*q < 0x20) {
            jscan_error(j, q, "unterminated string");
            return NULL;
        }
        if (*q == '"') {
            buf_put(j, "", 0);
            j->buf[j->len] = 0;
            return q + 1;
        }
        if (q + 1 >= j->end) {
            jscan_error(j, q, "unterminated string");
            return NULL;
        }
        char e = q[1], ch;
        p = q + 2;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t c, lo;
            if (j->end - p < 4 || hex4(p, &c)) {
                jscan_error(j, q, "bad \\u escape");
                return NULL;
            }
            p += 4;
            if (c >= 0xD800 && c <= 0xDBFF) {
                if (j->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF) {
                    jscan_error(j, q, "unpaired surrogate in \\u escape");
                    return NULL;
                }
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            } else if (c >= 0xDC00 && c <= 0xDFFF) {
                jscan_error(j, q, "unpaired surrogate in \\u escape");
                return NULL;
            }
            char u[4];
            size_t n;
            if (c < 0x80)
                u[0] = (char)c, n = 1;
            else if (c < 0x800)
                u[0] = (char)(0xC0 | c >> 6), u[1] = (char)(0x80 | (c & 63)), n = 2;
            else if (c < 0x10000)
                u[0] = (char)(0xE0 | c >> 12), u[1] = (char)(0x80 | ((c >> 6) & 63)),
                u[2] = (char)(0x80 | (c & 63)), n = 3;
            else
                u[0] = (char)(0xF0 | c >> 18), u[1] = (char)(0x80 | ((c >> 12) & 63)),
                u[2] = (char)(0x80 | ((c >> 6) & 63)), u[3] = (char)(0x80 | (c & 63)), n = 4;
            buf_put(j, u, n);
            continue;
        }
        default: jscan_error(j, q, "bad escape"); return NULL;
        }
        buf_put(j, &ch, 1);
    }
}

const char *jscan_int(const struct jscan *j, const char *p, int64_t *v) {
    const char *q = p;
    int neg = q < j->end && *q == '-';
    if (neg) q++;
    if (q >= j->end || *q < '0' || *q > '9') {
        jscan_error(j, p, "expected an integer");
        return NULL;
    }
    int64_t x = 0;
    while (q < j->end && *q >= '0' && *q <= '9') {
        if (x > (INT64_MAX - 9) / 10) {
            jscan_error(j, p, "integer too large");
            return NULL;
        }
        x = x * 10 + (*q++ - '0');
    }
    if (q < j->end && (*q == '.' || *q == 'e' || *q == 'E')) {
        jscan_error(j, p, "expected an integer");
        return NULL;
    }
    *v = neg ? -x : x;
    return q;
}

int jscan_next(struct jscan *j, const char **pp, int *first, char open) {
    const char *p = *pp;
    char close = open == '{' ? '}' : ']';
    if (*first) {
        p = jscan_ws(j, p);
        if (p >= j->end || *p != open)
            return jscan_error(j, p, open == '{' ? "expected an object" : "expected an array");
        p = jscan_ws(j, p + 1);
        *first = 0;
        if (p < j->end && *p == close) {
            *pp = p + 1;
            return 0;
        }
    } else {
        p = jscan_ws(j, p);
        if (p < j->end && *p == close) {
            *pp = p + 1;
            return 0;
        }
        if (p >= j->end || *p != ',')
            return jscan_error(j, p, open == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        p = jscan_ws(j, p + 1);
    }
    if (open == '{') {
        if (!(p = jscan_string(j, p))) return -1;
        p = jscan_ws(j, p);
        if (p >= j->end || *p != ':') return jscan_error(j, p, "expected ':'");
        p = jscan_ws(j, p + 1);
    }
    if (p >= j->end) return jscan_error(j, p, "unexpected end of file");
    *pp = p;
    return 1;
}
