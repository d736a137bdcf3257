/* jscan: a small in-place JSON scanner for the two big members of a tokenizer file (the vocab
 * object and the merges array, ~600k values in Qwen's tokenizer.json) that cJSON would turn
 * into one malloc'd node each. It walks the text, skips values it is not asked about, and
 * decodes strings into a caller buffer; the small members still go through cJSON. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct jscan {
    const char *start, *end; /* the whole document, for error positions */
    char *buf;               /* decoded string of the last jscan_string */
    size_t len, cap;
};

/* Skips whitespace; returns the next position (end if none). */
const char *jscan_ws(const struct jscan *j, const char *p);
/* Skips one JSON value starting at p (after whitespace). NULL + err (with line) if malformed. */
const char *jscan_value(const struct jscan *j, const char *p);
/* Decodes the string at p ('"') into j->buf / j->len (NUL-terminated); returns the position
 * after it, or NULL + err. */
const char *jscan_string(struct jscan *j, const char *p);
/* Reads an integer at p into *v; NULL + err if p holds no integer. */
const char *jscan_int(const struct jscan *j, const char *p, int64_t *v);
/* Iteration over an object or array at p ('{' or '['): call first with *p at the bracket;
 * each call moves to the next member (for objects, its key is decoded into j->buf) and
 * returns 1 with *p at its value, 0 at the closing bracket (*p after it), -1 + err. */
int jscan_next(struct jscan *j, const char **p, int *first, char open);
/* Sets err to "line L: <what>" for position p and returns -1. */
int jscan_error(const struct jscan *j, const char *p, const char *what);
