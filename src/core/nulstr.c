/* nulstr: see nulstr.h. */
#include "core/nulstr.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

size_t nul_unescape_json(char *s, size_t len) {
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        if (s[r] == '\\' && r + 1 < len) {
            if (r + 6 <= len && !memcmp(s + r, "\\u0000", 6)) {
                s[w++] = (char)0xC0;
                s[w++] = (char)0x80;
                r += 6;
            } else { /* any other escape: copy both bytes, so "\\\\u0000" stays text */
                s[w++] = s[r++];
                s[w++] = s[r++];
            }
        } else
            s[w++] = s[r++];
    }
    return w;
}

struct cJSON *nul_create_string(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == 0;
    char *b = xmalloc(n + k + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0) {
            b[w++] = (char)0xC0;
            b[w++] = (char)0x80;
        } else
            b[w++] = s[i];
    }
    b[w] = 0;
    cJSON *j = cJSON_CreateString(b);
    free(b);
    return j;
}

static int is_mark(const char *s, size_t i, size_t len) {
    return i + 1 < len && (unsigned char)s[i] == 0xC0 && (unsigned char)s[i + 1] == 0x80;
}

size_t nul_decode(char *s, size_t len) {
    if (!memchr(s, 0xC0, len)) return len;
    size_t w = 0;
    for (size_t r = 0; r < len;) {
        if (is_mark(s, r, len)) {
            s[w++] = 0;
            r += 2;
        } else
            s[w++] = s[r++];
    }
    return w;
}

size_t nul_offset(const char *s, size_t off) {
    size_t k = 0;
    for (size_t i = 0; i + 1 < off; i++)
        if (is_mark(s, i, off)) k++, i++;
    return off - k;
}

char *nul_json_print(const struct cJSON *j) {
    char *p = cJSON_PrintUnformatted(j);
    if (!p || !strstr(p, NUL_MARK)) return p;
    size_t n = strlen(p), k = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (is_mark(p, i, n)) k++;
    char *o = xmalloc(n + 4 * k + 1);
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (is_mark(p, i, n)) {
            memcpy(o + w, "\\u0000", 6);
            w += 6;
            i += 2;
        } else
            o[w++] = p[i++];
    }
    o[w] = 0;
    free(p);
    return o;
}
