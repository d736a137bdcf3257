/* json_reader: see json_reader.h. Input goes through zlib's gzread, which also passes plain
 * files through unchanged. A JSON array is split into elements by a small scanner (strings,
 * escapes, bracket depth) over a sliding buffer; each element, or each JSONL line, is then
 * parsed by cJSON (which decodes \uXXXX surrogate pairs) after a strict UTF-8 check. */
#include "data/json_reader.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/err.h"
#include "core/util.h"
#include "data/utf8_check.h"
#include "core/nulstr.h"

enum { JR_ARRAY, JR_LINES };
enum { ST_FIRST, ST_AFTER, ST_DONE };
enum { ROW_OK = 1, ROW_BAD = -2 }; /* ROW_BAD: this row is bad, the stream is still fine */

struct json_reader {
    char *path;
    gzFile gz;
    int mode, state, eof, skip_bad;
    char *buf; /* valid bytes are buf[beg, end); buf[end] is spare (temporary NUL) */
    size_t cap, beg, end;
    int64_t row, skipped;
    int64_t line; /* 1-based line number of buf[beg] */
};

static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* "'x'", "byte 0xNN" or "end of file", for messages. */
static const char *show_char(int c, char out[16]) {
    if (c < 0)
        snprintf(out, 16, "end of file");
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out, 16, "'%c'", c);
    else
        snprintf(out, 16, "byte 0x%02x", (unsigned)c);
    return out;
}

/* Reads more input after buf[end]; first moves [beg,end) to the front, and grows the
 * buffer when it is more than half full, so a record of any size fits. Returns the number
 * of bytes read (0 at the end of the input) or -1. */
static long fill(struct json_reader *r) {
    if (r->eof) return 0;
    if (r->beg > 0) {
        memmove(r->buf, r->buf + r->beg, r->end - r->beg);
        r->end -= r->beg;
        r->beg = 0;
    }
    if (r->end > r->cap / 2) {
        r->cap *= 2;
        r->buf = xrealloc(r->buf, r->cap);
    }
    size_t want = r->cap - r->end - 1;
    if (want > (1u << 30)) want = 1u << 30;
    int n = gzread(r->gz, r->buf + r->end, (unsigned)want);
    int zerr = Z_OK;
    const char *zmsg = n <= 0 ? gzerror(r->gz, &zerr) : "";
    if (n < 0 || (n == 0 && zerr != Z_OK)) {
        if (zerr == Z_ERRNO) return err_set("%s: read error: %s", r->path, strerror(errno));
        if (zerr == Z_BUF_ERROR) return err_set("%s: truncated gzip stream (%s)", r->path, zmsg);
        return err_set("%s: corrupt gzip stream: %s", r->path, zmsg);
    }
    if (n == 0) r->eof = 1;
    r->end += (size_t)n;
    return n;
}

/* Skips blanks from beg (counting lines); returns the next byte (not consumed), -1 at the
 * end of the input, -2 on a read error. */
static int peek_nonblank(struct json_reader *r) {
    for (;;) {
        while (r->beg < r->end) {
            unsigned char c = (unsigned char)r->buf[r->beg];
            if (c == '\n')
                r->line++;
            else if (!is_blank(c))
                return c;
            r->beg++;
        }
        long n = fill(r);
        if (n < 0) return -2;
        if (n == 0) return -1;
    }
}

/* Finds the end of the JSON value starting at buf[beg] (a non-blank byte that is not ',',
 * ']' or '}'): objects and arrays by bracket depth outside strings, strings by their
 * closing quote, scalars at the next delimiter. Returns 1 with *len and *n_lines (newlines
 * outside strings), 0 if the input ends first, -1 on a read error. */
static int scan_value(struct json_reader *r, size_t *len, int64_t *n_lines) {
    size_t i = r->beg;
    int depth = 0, in_str = 0, esc = 0;
    int64_t nl = 0;
    for (;;) {
        if (i == r->end) {
            size_t off = i - r->beg;
            long n = fill(r);
            if (n < 0) return -1;
            if (n == 0) return 0;
            i = r->beg + off;
        }
        if (in_str) {
            if (esc) {
                esc = 0;
                i++;
                continue;
            }
            const char *p = r->buf + i, *e = r->buf + r->end;
            while (p < e && *p != '"' && *p != '\\')
                p++;
            i = (size_t)(p - r->buf);
            if (p == e) continue;
            i++;
            if (*p == '\\')
                esc = 1;
            else {
                in_str = 0;
                if (depth == 0) break;
            }
            continue;
        }
        unsigned char c = (unsigned char)r->buf[i];
        if (depth == 0 && i > r->beg && (c == ',' || c == ']' || c == '}' || is_blank(c))) break;
        i++;
        if (c == '"')
            in_str = 1;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) break;
        } else if (c == '\n')
            nl++;
    }
    *len = i - r->beg;
    *n_lines = nl;
    return 1;
}

/* Line number of byte off of the row starting at buf[s]. */
static int64_t line_at(const struct json_reader *r, size_t s, size_t off) {
    int64_t line = r->line;
    for (size_t k = 0; k < off; k++)
        if (r->buf[s + k] == '\n') line++;
    return line;
}

/* Parses buf[s, s+len) as one record. Returns ROW_OK with *rec, or ROW_BAD with err set. */
static int parse_row(struct json_reader *r, size_t s, size_t len, cJSON **rec) {
    char *p = r->buf + s;
    size_t bad = utf8_check(p, len);
    if (bad < len) {
        err_set("%s:%lld: row %lld: invalid UTF-8 (byte 0x%02x at byte %zu of the row)", r->path,
                (long long)line_at(r, s, bad), (long long)r->row, (unsigned char)p[bad], bad);
        return ROW_BAD;
    }
    char save = p[len];
    size_t orig_len = len;
    len = nul_unescape_json(p, len); /* \u0000 -> C0 80: cJSON strings keep their NULs (nulstr.h) */
    p[len] = 0; /* buf[end] is spare, so this is in bounds; restored below */
    const char *endp = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(p, len, &endp, 0);
    size_t err_off = 0;
    int what = 0;
    if (!j) {
        const char *e = cJSON_GetErrorPtr();
        err_off = (e && e >= p && e <= p + len) ? (size_t)(e - p) : 0;
        what = 1;
    } else {
        size_t k = (size_t)(endp - p);
        while (k < len && is_blank((unsigned char)p[k]))
            k++;
        if (k < len) {
            err_off = k;
            what = 2;
        } else if (!cJSON_IsObject(j))
            what = 3;
    }
    p[orig_len] = save;
    if (!what) {
        *rec = j;
        return ROW_OK;
    }
    cJSON_Delete(j);
    char near[40];
    size_t n = 0;
    for (size_t k = err_off; k < len && n < 30 && p[k] != '\n' && p[k] != '\r'; k++)
        near[n++] = p[k];
    near[n] = 0;
    long long line = (long long)line_at(r, s, err_off), row = (long long)r->row;
    if (what == 1)
        err_set("%s:%lld: row %lld: invalid JSON at byte %zu of the row, near \"%s\"", r->path, line, row,
                err_off, near);
    else if (what == 2)
        err_set("%s:%lld: row %lld: unexpected text after the record: \"%s\"", r->path, line, row, near);
    else
        err_set("%s:%lld: row %lld: expected a JSON object (one record), found %.30s", r->path, line, row, p);
    return ROW_BAD;
}

int json_reader_open(struct json_reader **out, const char *path, int skip_bad_rows) {
    *out = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return err_set("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1 << 17);
    struct json_reader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    r->gz = gz;
    r->skip_bad = skip_bad_rows;
    r->cap = 1 << 20;
    r->buf = xmalloc(r->cap);
    r->line = 1;
    while (r->end - r->beg < 3) {
        long n = fill(r);
        if (n < 0) goto fail;
        if (n == 0) break;
    }
    if (r->end - r->beg >= 3 && memcmp(r->buf + r->beg, "\xef\xbb\xbf", 3) == 0) r->beg += 3; /* BOM */
    int c = peek_nonblank(r);
    char shown[16];
    if (c == -2) goto fail;
    if (c == '[') {
        r->mode = JR_ARRAY;
        r->state = ST_FIRST;
        r->beg++;
    } else if (c == '{' || c == -1) {
        r->mode = JR_LINES; /* an empty file is zero records */
    } else {
        err_set("%s:%lld: expected a JSON array ('[') or JSON Lines objects ('{'), found %s", path,
                (long long)r->line, show_char(c, shown));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    json_reader_close(r);
    return -1;
}

/* After the closing ']': only blanks may follow. */
static int array_finish(struct json_reader *r) {
    r->state = ST_DONE;
    int c = peek_nonblank(r);
    if (c == -2) return -1;
    char shown[16];
    if (c != -1)
        return err_set("%s:%lld: unexpected %s after the top-level array (%lld rows)", r->path,
                       (long long)r->line, show_char(c, shown), (long long)r->row);
    return 0;
}

static int next_array(struct json_reader *r, cJSON **rec) {
    char shown[16];
    for (;;) {
        if (r->state == ST_DONE) return 0;
        int c = peek_nonblank(r);
        if (c == -2) return -1;
        if (c == -1)
            return err_set("%s:%lld: truncated: end of file before the top-level array is closed (after %lld "
                           "rows)",
                           r->path, (long long)r->line, (long long)r->row);
        if (c == ']') {
            r->beg++;
            return array_finish(r);
        }
        if (r->state == ST_AFTER) {
            if (c != ',')
                return err_set("%s:%lld: expected ',' or ']' after row %lld, found %s", r->path,
                               (long long)r->line, (long long)r->row - 1, show_char(c, shown));
            r->beg++;
            c = peek_nonblank(r);
            if (c == -2) return -1;
            if (c == -1)
                return err_set("%s:%lld: truncated: end of file before row %lld", r->path, (long long)r->line,
                               (long long)r->row);
        }
        if (c == ',' || c == ']' || c == '}')
            return err_set("%s:%lld: expected row %lld (a JSON object), found %s", r->path,
                           (long long)r->line, (long long)r->row, show_char(c, shown));
        size_t len;
        int64_t nl;
        int64_t start_line = r->line;
        int s = scan_value(r, &len, &nl);
        if (s < 0) return -1;
        if (s == 0)
            return err_set("%s:%lld: truncated: end of file inside row %lld", r->path, (long long)start_line,
                           (long long)r->row);
        r->state = ST_AFTER;
        int rc = parse_row(r, r->beg, len, rec);
        r->beg += len;
        r->line += nl;
        r->row++;
        if (rc == ROW_OK) return 1;
        if (!r->skip_bad) return -1;
        r->skipped++;
    }
}

static int next_lines(struct json_reader *r, cJSON **rec) {
    for (;;) {
        size_t scanned = 0;
        const char *nl;
        for (;;) {
            nl = memchr(r->buf + r->beg + scanned, '\n', r->end - r->beg - scanned);
            if (nl) break;
            scanned = r->end - r->beg;
            long n = fill(r);
            if (n < 0) return -1;
            if (n == 0) break;
        }
        size_t s = r->beg, len = nl ? (size_t)(nl - (r->buf + s)) : r->end - s;
        if (!nl && len == 0) return 0;
        size_t k = 0;
        while (k < len && is_blank((unsigned char)r->buf[s + k]))
            k++;
        int rc = 0;
        if (k < len) rc = parse_row(r, s, len, rec);
        r->beg = s + len + (nl ? 1 : 0);
        r->line++;
        if (k == len) continue; /* blank line */
        r->row++;
        if (rc == ROW_OK) return 1;
        if (!r->skip_bad) return -1;
        r->skipped++;
    }
}

int json_reader_next(struct json_reader *r, cJSON **rec) {
    *rec = NULL;
    return r->mode == JR_ARRAY ? next_array(r, rec) : next_lines(r, rec);
}

int64_t json_reader_row(const struct json_reader *r) { return r->row; }
int64_t json_reader_skipped(const struct json_reader *r) { return r->skipped; }

void json_reader_close(struct json_reader *r) {
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    free(r->buf);
    free(r->path);
    free(r);
}
