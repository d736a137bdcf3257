/* config: the loader of the key table (config_keys.c). See config.h for the contract; docs/config.md is
 * generated from the table (config_print_markdown), so the reference cannot drift.
 * YAML comes through libyaml's document API (anchors/aliases resolved, `<<` merges walked);
 * scalars follow YAML rules plus PyYAML's spellings (True/False, 1.e-8) that MindSpore users
 * write. Errors are collected (up to 20) so a migrating user sees every foreign key at once. */
#include "train/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/err.h"
#include "core/util.h"
#include "train/config_keys.h"
#include "train/yaml_guard.h"

/* ---------------------------------------------------------------- the loader */

enum { MAX_KEYS = 128, PATH_MAX_LEN = 96, MAX_ERRORS = 20 };

struct key {
    char path[PATH_MAX_LEN];
    char alias[PATH_MAX_LEN]; /* "" if none */
    char section[PATH_MAX_LEN];
    const struct key_def *d;
    size_t off;
    const char *def;
};

static struct key keys[MAX_KEYS];
static int n_keys;

/* strncpy that always terminates (names longer than a key path are cut, never overflow). */
static void str_copy(char *dst, size_t n, const char *src) {
    size_t l = strnlen(src, n - 1);
    memcpy(dst, src, l);
    dst[l] = 0;
}

static void split_parent(const char *path, char *parent, size_t n) {
    const char *dot = strrchr(path, '.');
    size_t len = dot ? (size_t)(dot - path) : 0;
    CHECK(len < n, "path too long");
    memcpy(parent, path, len);
    parent[len] = 0;
}

/* The flat list of keys with full paths, built once from the cfg_sections (read-only after). */
static void keys_init(void) {
    if (n_keys) return;
    for (size_t s = 0; s < cfg_n_sections; s++) {
        const struct section *sec = &cfg_sections[s];
        for (int i = 0; i < sec->n_keys; i++) {
            CHECK(n_keys < MAX_KEYS, "MAX_KEYS too small");
            struct key *k = &keys[n_keys++];
            const struct key_def *d = &sec->keys[i];
            const char *dot = *sec->prefix ? "." : "";
            snprintf(k->path, sizeof k->path, "%s%s%s", sec->prefix, dot, d->name);
            split_parent(k->path, k->section, sizeof k->section);
            k->alias[0] = 0;
            if (d->alias) {
                char tmp[3 * PATH_MAX_LEN];
                snprintf(tmp, sizeof tmp, "%s%s%s", k->section, *k->section ? "." : "", d->alias);
                str_copy(k->alias, sizeof k->alias, tmp);
            }
            k->d = d;
            k->off = sec->off + d->off;
            k->def = d->def;
            if (sec->override_name && strcmp(d->name, sec->override_name) == 0) k->def = sec->override_def;
        }
    }
    /* A section, once left, is never re-entered (config_dump_yaml nests by runs of keys). */
    for (int i = 1; i < n_keys; i++)
        for (int j = 0; j + 1 < i && keys[i].section[0]; j++)
            CHECK(strcmp(keys[i].section, keys[j].section) != 0 ||
                      strcmp(keys[i - 1].section, keys[i].section) == 0,
                  "section %s is split in the key table", keys[i].section);
}

static int key_find(const char *path) {
    keys_init();
    for (int i = 0; i < n_keys; i++)
        if (strcmp(keys[i].path, path) == 0 || (keys[i].alias[0] && strcmp(keys[i].alias, path) == 0))
            return i;
    return -1;
}

/* True if path names a section: some key lies below it. */
static int is_section(const char *path) {
    keys_init();
    size_t n = strlen(path);
    for (int i = 0; i < n_keys; i++)
        if (strncmp(keys[i].path, path, n) == 0 && keys[i].path[n] == '.') return 1;
    return 0;
}

/* ---------------------------------------------------------------- provenance */

enum { SRC_DEFAULT = 0, SRC_FILE = 1, SRC_SET = 2 };

struct config_source {
    unsigned char kind[MAX_KEYS];
    int line[MAX_KEYS];                   /* file line (1-based) for SRC_FILE */
    char spelled[MAX_KEYS][PATH_MAX_LEN]; /* the spelling used (alias or path) */
};

/* The context an error or assignment comes from. */
struct origin {
    int kind;
    const char *file; /* SRC_FILE: the YAML path */
    const char *set;  /* SRC_SET: the whole "key=value" argument */
    char errs[MAX_ERRORS][768];
    int n_errs;
    int n_more; /* errors past MAX_ERRORS, counted only */
};

static void where_str(const struct origin *o, const yaml_node_t *node, char *buf, size_t n) {
    if (o->kind == SRC_FILE)
        snprintf(buf, n, "%s:%d", o->file, node ? (int)node->start_mark.line + 1 : 0);
    else
        snprintf(buf, n, "--set %s", o->set);
}

static void add_err(struct origin *o, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_err(struct origin *o, const yaml_node_t *node, const char *fmt, ...) {
    if (o->n_errs >= MAX_ERRORS) {
        o->n_more++;
        return;
    }
    char where[300], msg[400];
    where_str(o, node, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(o->errs[o->n_errs++], sizeof o->errs[0], "%s: %s", where, msg);
}

/* ---------------------------------------------------------------- scalars */

static int scalar_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* How a value looks in an error message. */
static void describe(const yaml_node_t *n, char *buf, size_t sz) {
    if (!n || scalar_is_null(n))
        snprintf(buf, sz, "null");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, sz, "a list");
    else if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, sz, "a mapping");
    else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        snprintf(buf, sz, "%.80s", (const char *)n->data.scalar.value);
    else
        snprintf(buf, sz, "\"%.80s\"", (const char *)n->data.scalar.value);
}

static int parse_bool(const yaml_node_t *n, bool *out) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return -1;
    const char *s = (const char *)n->data.scalar.value;
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s, yes[i])) return *out = true, 0;
        if (!strcasecmp(s, no[i])) return *out = false, 0;
    }
    return -1;
}

static int parse_int64(const yaml_node_t *n, int64_t *out) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return -1;
    const char *s = (const char *)n->data.scalar.value;
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

/* Numbers as YAML 1.2 and PyYAML write them: 1e-5, 1.e-5, 2, .5, -3.0; never inf/nan. */
static int parse_double(const yaml_node_t *n, double *out) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return -1;
    const char *s = (const char *)n->data.scalar.value;
    if (!*s || isalpha((unsigned char)*s) || ((*s == '-' || *s == '+') && isalpha((unsigned char)s[1])))
        return -1;
    if (strchr(s, 'x') || strchr(s, 'X')) return -1; /* no hex floats */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static const char *choice_name(const struct choice *c, int value) {
    for (; c->name; c++)
        if (c->value == value) return c->name;
    return "?";
}

static void choices_str(const struct choice *c, char *buf, size_t n) {
    buf[0] = 0;
    int seen[64] = {0};
    for (; c->name; c++) {
        if (c->value < 64 && seen[c->value]) continue; /* canonical spellings only */
        if (c->value < 64) seen[c->value] = 1;
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", l ? ", " : "", c->name);
    }
}

static int range_ok(const struct key_def *d, double v) {
    if (d->flags & K_MIN && (d->flags & K_MIN_EXCL ? v <= d->min : v < d->min)) return 0;
    if (d->flags & K_MAX && (d->flags & K_MAX_EXCL ? v >= d->max : v > d->max)) return 0;
    return 1;
}

static void range_str(const struct key_def *d, char *buf, size_t n) {
    buf[0] = 0;
    if ((d->flags & K_MIN) && (d->flags & K_MAX))
        snprintf(buf, n, "%s%g, %g%s", d->flags & K_MIN_EXCL ? "(" : "[", d->min, d->max,
                 d->flags & K_MAX_EXCL ? ")" : "]");
    else if (d->flags & K_MIN)
        snprintf(buf, n, "%s %g", d->flags & K_MIN_EXCL ? ">" : ">=", d->min);
    else if (d->flags & K_MAX)
        snprintf(buf, n, "%s %g", d->flags & K_MAX_EXCL ? "<" : "<=", d->max);
}

/* The count that follows a list field in its struct (n_data_files, n_target_modules, ...). */
static int *list_count(void *field, const struct key_def *d) {
    size_t gap =
        d->type == KT_STR_LIST
            ? offsetof(struct config_dataset, n_data_files) - offsetof(struct config_dataset, data_files)
        : d->type == KT_TARGETS
            ? offsetof(struct config_pet, n_target_modules) - offsetof(struct config_pet, target_modules)
            : offsetof(struct config_dataset, n_column_mapping) -
                  offsetof(struct config_dataset, column_mapping);
    return (int *)((char *)field + gap);
}

static void str_list_free(char **v, int n) {
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static const char *type_name(const struct key_def *d) {
    switch (d->type) {
    case KT_BOOL: return "bool";
    case KT_INT:
    case KT_INT64: return "int";
    case KT_FLOAT: return "float";
    case KT_STRING: return "string";
    case KT_ENUM: return "enum";
    case KT_STR_LIST: return "list of strings";
    case KT_TARGETS: return "list of strings, or a regex string";
    case KT_FLOAT2: return "list of 2 floats";
    case KT_MAP: return "mapping of strings";
    }
    return "?";
}

/* What a key expects, for error messages. */
static void expected_str(const struct key_def *d, char *buf, size_t n) {
    char extra[200] = "";
    if (d->type == KT_ENUM) {
        char c[160];
        choices_str(d->choices, c, sizeof c);
        snprintf(buf, n, "one of %s", c);
        return;
    }
    range_str(d, extra, sizeof extra);
    const char *t = d->type == KT_BOOL                         ? "a boolean (true/false)"
                    : d->type == KT_INT || d->type == KT_INT64 ? "an integer"
                    : d->type == KT_FLOAT                      ? "a number"
                    : d->type == KT_FLOAT2                     ? "a list of 2 numbers"
                    : d->type == KT_STRING                     ? "a string"
                    : d->type == KT_MAP                        ? "a mapping of strings"
                    : d->type == KT_STR_LIST                   ? "a string or a list of strings"
                                                               : "a list of strings, or a regex string";
    snprintf(buf, n, "%s%s%s", t, *extra ? " " : "", extra);
}

/* Parses node into the field of key k. Returns 0, or -1 after add_err. */
static int value_set(struct run_config *cfg, const struct key *k, const yaml_node_t *node,
                     yaml_document_t *doc, struct origin *o) {
    const struct key_def *d = k->d;
    void *field = (char *)cfg + k->off;
    char found[128], want[256];
    describe(node, found, sizeof found);
    expected_str(d, want, sizeof want);
    switch (d->type) {
    case KT_BOOL: {
        bool v;
        if (parse_bool(node, &v)) goto bad_type;
        if ((d->flags & K_ONLY_DEFAULT) && v != !strcmp(k->def, "true")) goto unsupported;
        *(bool *)field = v;
        return 0;
    }
    case KT_INT:
    case KT_INT64: {
        int64_t v;
        if (parse_int64(node, &v)) goto bad_type;
        if ((d->flags & K_ONLY_DEFAULT) && v != strtoll(k->def, NULL, 10)) goto unsupported;
        if (!range_ok(d, (double)v) || (d->type == KT_INT && (v < INT_MIN || v > INT_MAX))) goto bad_range;
        if (d->type == KT_INT)
            *(int *)field = (int)v;
        else
            *(int64_t *)field = v;
        return 0;
    }
    case KT_FLOAT: {
        double v;
        if (parse_double(node, &v)) goto bad_type;
        if (!range_ok(d, v)) goto bad_range;
        *(double *)field = v;
        return 0;
    }
    case KT_FLOAT2: {
        if (node->type != YAML_SEQUENCE_NODE) goto bad_type;
        yaml_node_item_t *it = node->data.sequence.items.start;
        int n = (int)(node->data.sequence.items.top - it);
        if (n != 2) {
            add_err(o, node, "%s: expected a list of 2 numbers, found a list of %d", k->path, n);
            return -1;
        }
        double v[2];
        for (int i = 0; i < 2; i++) {
            yaml_node_t *e = yaml_document_get_node(doc, it[i]);
            if (parse_double(e, &v[i])) {
                describe(e, found, sizeof found);
                add_err(o, e, "%s[%d]: expected a number, found %s", k->path, i, found);
                return -1;
            }
            if (!range_ok(d, v[i])) {
                char r[100];
                range_str(d, r, sizeof r);
                add_err(o, e, "%s[%d]: expected a number in %s, found %g", k->path, i, r, v[i]);
                return -1;
            }
        }
        memcpy(field, v, sizeof v);
        return 0;
    }
    case KT_STRING: {
        if (node->type != YAML_SCALAR_NODE) goto bad_type;
        char **s = field;
        free(*s);
        *s = xstrdup(scalar_is_null(node) ? "" : (const char *)node->data.scalar.value);
        return 0;
    }
    case KT_ENUM: {
        if (node->type != YAML_SCALAR_NODE || scalar_is_null(node)) goto bad_type;
        const char *s = (const char *)node->data.scalar.value;
        for (const struct choice *c = d->choices; c->name; c++)
            if (!strcasecmp(c->name, s)) {
                *(int *)field = c->value;
                return 0;
            }
        goto bad_type;
    }
    case KT_STR_LIST:
    case KT_TARGETS: {
        char ***list = field;
        int *count = list_count(field, d);
        char **v = NULL;
        int n = 0, regex = 0;
        if (scalar_is_null(node)) {
        } else if (node->type == YAML_SCALAR_NODE) {
            v = xmalloc(sizeof *v);
            v[n++] = xstrdup((const char *)node->data.scalar.value);
            regex = d->type == KT_TARGETS;
        } else if (node->type == YAML_SEQUENCE_NODE) {
            yaml_node_item_t *it = node->data.sequence.items.start;
            int m = (int)(node->data.sequence.items.top - it);
            v = xcalloc((size_t)m, sizeof *v);
            for (int i = 0; i < m; i++) {
                yaml_node_t *e = yaml_document_get_node(doc, it[i]);
                if (e->type != YAML_SCALAR_NODE || scalar_is_null(e)) {
                    describe(e, found, sizeof found);
                    add_err(o, e, "%s[%d]: expected a string, found %s", k->path, i, found);
                    str_list_free(v, n);
                    return -1;
                }
                v[n++] = xstrdup((const char *)e->data.scalar.value);
            }
        } else {
            goto bad_type;
        }
        if (regex) {
            int ec;
            PCRE2_SIZE eo;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)v[0], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
            if (!re) {
                PCRE2_UCHAR m[200];
                pcre2_get_error_message(ec, m, sizeof m);
                add_err(o, node, "%s: bad regex '%s' at offset %d: %s", k->path, v[0], (int)eo,
                        (const char *)m);
                str_list_free(v, n);
                return -1;
            }
            pcre2_code_free(re);
        }
        str_list_free(*list, *count);
        *list = v;
        *count = n;
        if (d->type == KT_TARGETS) cfg->model.pet.target_modules_regex = regex;
        return 0;
    }
    case KT_MAP: {
        struct config_kv **map = field;
        int *count = list_count(field, d);
        if (!scalar_is_null(node) && node->type != YAML_MAPPING_NODE) goto bad_type;
        struct config_kv *v = NULL;
        int n = 0;
        if (node->type == YAML_MAPPING_NODE) {
            yaml_node_pair_t *p = node->data.mapping.pairs.start;
            int m = (int)(node->data.mapping.pairs.top - p);
            v = xcalloc((size_t)m, sizeof *v);
            for (int i = 0; i < m; i++) {
                yaml_node_t *kn = yaml_document_get_node(doc, p[i].key),
                            *vn = yaml_document_get_node(doc, p[i].value);
                yaml_node_t *badn = kn->type != YAML_SCALAR_NODE                         ? kn
                                    : vn->type != YAML_SCALAR_NODE || scalar_is_null(vn) ? vn
                                                                                         : NULL;
                if (badn) {
                    describe(badn, found, sizeof found);
                    add_err(o, badn, "%s: expected a mapping of column names (strings), found %s", k->path,
                            found);
                    for (int j = 0; j < n; j++)
                        free(v[j].key), free(v[j].value);
                    free(v);
                    return -1;
                }
                v[n].key = xstrdup((const char *)kn->data.scalar.value);
                v[n++].value = xstrdup((const char *)vn->data.scalar.value);
            }
        }
        for (int j = 0; j < *count; j++)
            free((*map)[j].key), free((*map)[j].value);
        free(*map);
        *map = v;
        *count = n;
        return 0;
    }
    }
    return -1;
bad_type:
    add_err(o, node, "%s: expected %s, found %s", k->path, want, found);
    return -1;
bad_range:
    add_err(o, node, "%s: expected %s, found %s", k->path, want, found);
    return -1;
unsupported:
    add_err(o, node, "%s: %s is not supported yet (only %s); csft parallelizes over data_parallel x model_parallel",
            k->path, found, k->def);
    return -1;
}

/* ---------------------------------------------------------------- did you mean */

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 60 || lb > 60) return 99;
    int row[61];
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int best = sub < row[j] + 1 ? sub : row[j] + 1;
            row[j] = best < row[j - 1] + 1 ? best : row[j - 1] + 1;
            prev = cur;
        }
    }
    return row[lb];
}

static const char *leaf_of(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* Every known path (keys, aliases, cfg_sections) in turn; returns NULL at the end. */
static const char *known_path(int i, char *buf, size_t n) {
    keys_init();
    if (i < n_keys) return keys[i].path;
    if (i < 2 * n_keys) return keys[i - n_keys].alias[0] ? keys[i - n_keys].alias : "";
    i -= 2 * n_keys;
    /* cfg_sections: every proper prefix of each key path, enumerated as (key, depth) */
    for (int k = 0; k < n_keys; k++) {
        const char *p = keys[k].path;
        for (const char *d = strchr(p, '.'); d; d = strchr(d + 1, '.')) {
            if (i-- == 0) {
                snprintf(buf, n, "%.*s", (int)(d - p), p);
                return buf;
            }
        }
    }
    return NULL;
}

/* Candidates for an unknown path: [0] a sibling with a near leaf, [1] a key elsewhere with the
 * same leaf (a key in the wrong section), [2] a key elsewhere with a near leaf; "" if none. */
static void suggest(const char *path, char cand[3][PATH_MAX_LEN]) {
    char parent[PATH_MAX_LEN * 2], kparent[PATH_MAX_LEN], buf[PATH_MAX_LEN];
    snprintf(parent, sizeof parent, "%s", path);
    char *dot = strrchr(parent, '.');
    if (dot)
        *dot = 0;
    else
        parent[0] = 0;
    const char *leaf = leaf_of(path);
    int lim = (int)strlen(leaf) / 3 > 2 ? (int)strlen(leaf) / 3 : 2;
    int best[3] = {99, 99, 99};
    for (int t = 0; t < 3; t++)
        cand[t][0] = 0;
    const char *p;
    for (int i = 0; (p = known_path(i, buf, sizeof buf)); i++) {
        if (!*p) continue;
        split_parent(p, kparent, sizeof kparent);
        int d = edit_distance(leaf, leaf_of(p));
        int tier = !strcmp(kparent, parent) ? 0 : d == 0 ? 1 : 2;
        if (d <= lim && d < best[tier]) {
            best[tier] = d;
            str_copy(cand[tier], PATH_MAX_LEN, p);
        }
    }
}

/* '*' matches one path component or its part (no dots). */
static int glob_match(const char *pat, const char *s) {
    if (!*pat) return !*s;
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (glob_match(pat + 1, t)) return 1;
            if (!*t || *t == '.') return 0;
        }
    }
    return *pat == *s && glob_match(pat + 1, s + 1);
}

/* The hint for a MindSpore key; catch-alls (patterns ending in '*') only if catch_all. */
static const char *foreign_hint(const char *path, int catch_all) {
    for (size_t i = 0; i < cfg_n_foreign_hints; i++) {
        const char *pat = cfg_foreign_hints[i][0];
        int is_catch_all = pat[strlen(pat) - 1] == '*';
        if (is_catch_all == catch_all && glob_match(pat, path)) return cfg_foreign_hints[i][1];
    }
    return NULL;
}

/* Order: a near sibling (a typo), a specific MindSpore hint, the same name in another section,
 * a MindSpore catch-all hint, a near name anywhere. */
static void unknown_key(struct origin *o, const yaml_node_t *node, const char *path) {
    char cand[3][PATH_MAX_LEN];
    suggest(path, cand);
    const char *hint;
    if (cand[0][0])
        add_err(o, node, "unknown key '%s'; did you mean '%s'?", path, cand[0]);
    else if ((hint = foreign_hint(path, 0)))
        add_err(o, node, "unknown key '%s' (MindSpore setting): %s", path, hint);
    else if (cand[1][0])
        add_err(o, node, "unknown key '%s'; did you mean '%s'?", path, cand[1]);
    else if ((hint = foreign_hint(path, 1)))
        add_err(o, node, "unknown key '%s' (MindSpore setting): %s", path, hint);
    else if (cand[2][0])
        add_err(o, node, "unknown key '%s'; did you mean '%s'?", path, cand[2]);
    else
        add_err(o, node, "unknown key '%s' (every key is listed in docs/config.md)", path);
}

/* ---------------------------------------------------------------- the walk */

static void assign(struct run_config *cfg, int ki, const char *spelled, yaml_node_t *val,
                   yaml_document_t *doc, struct origin *o) {
    struct config_source *src = cfg->src;
    if (o->kind == SRC_FILE && src->kind[ki] == SRC_FILE) {
        add_err(o, val, "%s is set twice (line %d as '%s', line %d as '%s')", keys[ki].path, src->line[ki],
                src->spelled[ki], (int)val->start_mark.line + 1, spelled);
        return;
    }
    if (value_set(cfg, &keys[ki], val, doc, o) == 0) {
        src->kind[ki] = (unsigned char)o->kind;
        src->line[ki] = (int)val->start_mark.line + 1;
        str_copy(src->spelled[ki], sizeof src->spelled[ki], spelled);
    }
}

static void walk_mapping(struct run_config *cfg, yaml_document_t *doc, yaml_node_t *map, const char *prefix,
                         struct origin *o, int depth) {
    if (depth > 16) {
        add_err(o, map, "nesting too deep under '%s'", prefix);
        return;
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key), *vn = yaml_document_get_node(doc, p->value);
        if (kn->type != YAML_SCALAR_NODE) {
            add_err(o, kn, "a key under '%s' is not a plain name", *prefix ? prefix : "(top level)");
            continue;
        }
        const char *name = (const char *)kn->data.scalar.value;
        if (!strcmp(name, "<<")) { /* YAML merge key: the merged mapping's keys land here */
            if (vn->type == YAML_MAPPING_NODE)
                walk_mapping(cfg, doc, vn, prefix, o, depth + 1);
            else
                add_err(o, vn, "'<<' under '%s' must merge a mapping", prefix);
            continue;
        }
        char path[PATH_MAX_LEN * 2];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
        int ki = key_find(path);
        if (ki >= 0)
            assign(cfg, ki, path, vn, doc, o);
        else if (is_section(path) && vn->type == YAML_MAPPING_NODE)
            walk_mapping(cfg, doc, vn, path, o, depth + 1);
        else if (is_section(path) && scalar_is_null(vn))
            continue; /* an empty section */
        else if (is_section(path)) {
            char found[128];
            describe(vn, found, sizeof found);
            add_err(o, vn, "%s: expected a mapping (a section), found %s", path, found);
        } else
            unknown_key(o, kn, path);
    }
}

static int errs_flush(struct origin *o) {
    if (!o->n_errs) return 0;
    size_t cap = 64;
    for (int i = 0; i < o->n_errs; i++)
        cap += strlen(o->errs[i]) + 4;
    char *msg = xmalloc(cap);
    msg[0] = 0;
    for (int i = 0; i < o->n_errs; i++) {
        if (i) strcat(msg, "\n  ");
        strcat(msg, o->errs[i]);
    }
    if (o->n_more) snprintf(msg + strlen(msg), 64, "\n  (%d more errors not shown)", o->n_more);
    err_set("%s", msg);
    free(msg);
    return -1;
}

static int yaml_load_doc(yaml_document_t *doc, const char *text, size_t len, const char *name) {
    if (yaml_guard(text, len, name)) return -1; /* depth and alias/merge expansion bounded first */
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        if (parser.context)
            err_set("%s:%d:%d: YAML syntax error: %s %s (line %d)", name, (int)parser.problem_mark.line + 1,
                    (int)parser.problem_mark.column + 1, parser.problem ? parser.problem : "?",
                    parser.context, (int)parser.context_mark.line + 1);
        else
            err_set("%s:%d:%d: YAML syntax error: %s", name, (int)parser.problem_mark.line + 1,
                    (int)parser.problem_mark.column + 1, parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        return -1;
    }
    yaml_parser_delete(&parser);
    return 0;
}

/* ---------------------------------------------------------------- public */

void config_free(struct run_config *cfg) {
    keys_init();
    for (int i = 0; i < n_keys; i++) {
        void *field = (char *)cfg + keys[i].off;
        switch (keys[i].d->type) {
        case KT_STRING:
            free(*(char **)field);
            *(char **)field = NULL;
            break;
        case KT_STR_LIST:
        case KT_TARGETS: {
            int *count = list_count(field, keys[i].d);
            str_list_free(*(char ***)field, *count);
            *(char ***)field = NULL;
            *count = 0;
            break;
        }
        case KT_MAP: {
            struct config_kv **map = field;
            int *count = list_count(field, keys[i].d);
            for (int j = 0; j < *count; j++)
                free((*map)[j].key), free((*map)[j].value);
            free(*map);
            *map = NULL;
            *count = 0;
            break;
        }
        default: break;
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
    free(cfg->src);
    cfg->src = NULL;
}

void config_defaults(struct run_config *cfg) {
    keys_init();
    memset(cfg, 0, sizeof *cfg);
    cfg->src = xcalloc(1, sizeof *cfg->src);
    struct origin o = {.kind = SRC_DEFAULT, .set = "(default)"};
    for (int i = 0; i < n_keys; i++) {
        yaml_document_t doc;
        CHECK(yaml_load_doc(&doc, keys[i].def, strlen(keys[i].def), keys[i].path) == 0, "default of %s: %s",
              keys[i].path, err_msg());
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        CHECK(root, "default of %s is empty", keys[i].path);
        int rc = value_set(cfg, &keys[i], root, &doc, &o);
        CHECK(rc == 0, "default of %s: %s", keys[i].path, o.errs[0]);
        yaml_document_delete(&doc);
    }
}

/* Applies one "key.path=value" override. */
static void apply_set(struct run_config *cfg, const char *arg, struct origin *o) {
    o->set = arg;
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        add_err(o, NULL, "expected key.path=value");
        return;
    }
    char path[PATH_MAX_LEN * 2];
    snprintf(path, sizeof path, "%.*s",
             (int)(eq - arg) < (int)sizeof path - 1 ? (int)(eq - arg) : (int)sizeof path - 1, arg);
    const char *text = eq + 1;
    int ki = key_find(path);
    if (ki < 0 && !is_section(path)) {
        unknown_key(o, NULL, path);
        return;
    }
    yaml_document_t doc;
    int parsed = yaml_load_doc(&doc, text, strlen(text), "--set") == 0;
    yaml_node_t *root = parsed ? yaml_document_get_root_node(&doc) : NULL;
    if (ki >= 0 && keys[ki].d->type == KT_STRING && (!root || root->type != YAML_SCALAR_NODE)) {
        /* A string value that is not one YAML scalar (e.g. "Q: hi") is taken verbatim. */
        if (parsed) yaml_document_delete(&doc);
        char **s = (char **)((char *)cfg + keys[ki].off);
        free(*s);
        *s = xstrdup(text);
        cfg->src->kind[ki] = SRC_SET;
        str_copy(cfg->src->spelled[ki], sizeof cfg->src->spelled[ki], path);
        return;
    }
    if (!parsed) {
        add_err(o, NULL, "%s", err_msg());
        return;
    }
    yaml_node_t null_node = {.type = YAML_SCALAR_NODE};
    null_node.data.scalar.value = (yaml_char_t *)"";
    null_node.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
    if (!root) root = &null_node; /* "key=" is null */
    if (ki >= 0)
        assign(cfg, ki, path, root, &doc, o);
    else if (root->type == YAML_MAPPING_NODE)
        walk_mapping(cfg, &doc, root, path, o, 1);
    else
        add_err(o, NULL, "%s is a section; expected a mapping such as {key: value}", path);
    yaml_document_delete(&doc);
}

static void put_value(FILE *f, const struct run_config *cfg, const struct key *k);

/* The value of key ki as its YAML text; malloc'd. */
static char *value_text(const struct run_config *cfg, int ki) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f, "open_memstream");
    put_value(f, cfg, &keys[ki]);
    fclose(f);
    return buf;
}

/* True if path holds something other than its default. */
static int differs_from_default(const struct run_config *cfg, const char *path) {
    int ki = key_find(path);
    CHECK(ki >= 0, "unknown key %s", path);
    if (cfg->src->kind[ki] == SRC_DEFAULT) return 0;
    struct run_config def;
    config_defaults(&def);
    char *a = value_text(cfg, ki), *b = value_text(&def, ki);
    int diff = strcmp(a, b) != 0;
    free(a);
    free(b);
    config_free(&def);
    return diff;
}

/* Checks between keys, after everything is applied. */
static int cross_check(const struct run_config *cfg) {
    char w1[300], w2[300];
    if (cfg->lr_schedule.warmup_steps > 0 && cfg->lr_schedule.warmup_ratio > 0)
        return err_set(
            "lr_schedule.warmup_steps (%s) and lr_schedule.warmup_ratio (%s) are both set; set one",
            config_where(cfg, "lr_schedule.warmup_steps", w1, sizeof w1),
            config_where(cfg, "lr_schedule.warmup_ratio", w2, sizeof w2));
    if (cfg->runner_config.max_steps == 0)
        return err_set("runner_config.max_steps (%s): expected -1 (from epochs) or a positive count, found 0",
                       config_where(cfg, "runner_config.max_steps", w1, sizeof w1));
    if (cfg->lr_schedule.min_lr > cfg->optimizer.learning_rate)
        return err_set("lr_schedule.min_lr (%s) = %g is above optimizer.learning_rate = %g",
                       config_where(cfg, "lr_schedule.min_lr", w1, sizeof w1), cfg->lr_schedule.min_lr,
                       cfg->optimizer.learning_rate);
    if (cfg->model.pet.pet_type == PET_TYPE_NONE) {
        static const char *const lora_keys[] = {"lora_rank",      "lora_alpha", "lora_dropout",
                                                "target_modules", "use_rslora", "adapter_path"};
        for (int i = 0; i < 6; i++) {
            char p[128];
            snprintf(p, sizeof p, "model.model_config.pet_config.%s", lora_keys[i]);
            if (differs_from_default(cfg, p))
                return err_set(
                    "%s (%s) is set but model.model_config.pet_config.pet_type is none; add pet_type: lora",
                    p, config_where(cfg, p, w1, sizeof w1));
        }
    }
    if (cfg->model.pet.pet_type == PET_TYPE_LORA && cfg->model.pet.n_target_modules == 0)
        return err_set(
            "model.model_config.pet_config.target_modules (%s) is empty; LoRA needs at least one module",
            config_where(cfg, "model.model_config.pet_config.target_modules", w1, sizeof w1));
    const struct config_dataset *ds[2] = {&cfg->train_dataset, &cfg->eval_dataset};
    const char *dn[2] = {"train_dataset", "eval_dataset"};
    for (int i = 0; i < 2; i++) {
        char p1[64], p2[64];
        if (*ds[i]->tokenizer && (*ds[i]->vocab_file || *ds[i]->merges_file))
            return err_set("%s: set tokenizer (a folder) or vocab_file + merges_file, not both", dn[i]);
        if (!*ds[i]->vocab_file != !*ds[i]->merges_file) {
            snprintf(p1, sizeof p1, "%s.%s", dn[i], *ds[i]->vocab_file ? "vocab_file" : "merges_file");
            snprintf(p2, sizeof p2, "%s.%s", dn[i], *ds[i]->vocab_file ? "merges_file" : "vocab_file");
            return err_set("%s (%s) is set but %s is not; a BPE tokenizer needs both", p1,
                           config_where(cfg, p1, w1, sizeof w1), p2);
        }
    }
    return 0;
}

int config_load(struct run_config *cfg, const char *yaml_path, char **sets, int n_sets) {
    config_defaults(cfg);
    struct origin *o = xcalloc(1, sizeof *o);
    if (yaml_path) {
        cfg->config_file = xstrdup(yaml_path);
        size_t len;
        char *text = file_read_all(yaml_path, &len);
        if (!text) goto fail;
        yaml_document_t doc;
        int rc = yaml_load_doc(&doc, text, len, yaml_path);
        free(text);
        if (rc) goto fail;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        o->kind = SRC_FILE;
        o->file = yaml_path;
        if (root && root->type == YAML_MAPPING_NODE)
            walk_mapping(cfg, &doc, root, "", o, 0);
        else if (root && !scalar_is_null(root))
            add_err(o, root, "expected a mapping of keys at the top level");
        yaml_document_delete(&doc);
    }
    o->kind = SRC_SET;
    for (int i = 0; i < n_sets; i++)
        apply_set(cfg, sets[i], o);
    if (errs_flush(o)) goto fail;
    /* An explicit checkpoint to resume from implies resuming. */
    if (*cfg->resume_from_checkpoint) cfg->resume_training = true;
    if (cross_check(cfg)) goto fail;
    free(o);
    return 0;
fail:
    free(o);
    config_free(cfg);
    return -1;
}

int config_check_run(const struct run_config *cfg) {
    char w[300];
    const char *mode = run_mode_name(cfg->run_mode);
    if (!*cfg->load_checkpoint)
        return err_set(
            "load_checkpoint is not set: run_mode %s needs a Hugging Face model folder (e.g. --set "
            "load_checkpoint=/path/to/Qwen2.5-7B)",
            mode);
    int train = cfg->run_mode == RUN_MODE_FINETUNE || cfg->run_mode == RUN_MODE_TRAIN;
    if (train && !cfg->train_dataset.n_data_files)
        return err_set("train_dataset.data_files is empty: run_mode %s needs training data", mode);
    if (cfg->run_mode == RUN_MODE_EVAL && !cfg->eval_dataset.n_data_files)
        return err_set("eval_dataset.data_files is empty: run_mode eval needs data to evaluate");
    if (train && cfg->eval_steps > 0 && !cfg->eval_dataset.n_data_files)
        return err_set("eval_steps (%s) is %lld but eval_dataset.data_files is empty",
                       config_where(cfg, "eval_steps", w, sizeof w), (long long)cfg->eval_steps);
    return 0;
}

const char *config_where(const struct run_config *cfg, const char *key_path, char *buf, size_t n) {
    int ki = key_find(key_path);
    if (ki < 0 || !cfg->src || cfg->src->kind[ki] == SRC_DEFAULT)
        snprintf(buf, n, "default");
    else if (cfg->src->kind[ki] == SRC_SET)
        snprintf(buf, n, "--set %s", cfg->src->spelled[ki]);
    else
        snprintf(buf, n, "%s:%d", cfg->config_file ? cfg->config_file : "?", cfg->src->line[ki]);
    return buf;
}

const char *run_mode_name(enum run_mode m) { return choice_name(cfg_run_modes, m); }
const char *data_format_name(enum data_format f) { return choice_name(cfg_formats, f); }
const char *lr_schedule_type_name(enum lr_schedule_type t) { return choice_name(cfg_schedules, t); }

/* ---------------------------------------------------------------- output */

/* Shortest text that reads back to the same double, always with a '.' or an exponent
 * mantissa with '.', so YAML 1.1 readers (PyYAML) also see a float. */
static void fmt_double(double v, char *buf, size_t n) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    char *e = strchr(buf, 'e');
    if (!strchr(buf, '.')) {
        char tail[32] = "";
        if (e) {
            snprintf(tail, sizeof tail, "%s", e);
            *e = 0;
        }
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, ".0%s", tail);
    }
}

static void put_quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_value(FILE *f, const struct run_config *cfg, const struct key *k) {
    const void *field = (const char *)cfg + k->off;
    char buf[64];
    switch (k->d->type) {
    case KT_BOOL: fputs(*(const bool *)field ? "true" : "false", f); break;
    case KT_INT: fprintf(f, "%d", *(const int *)field); break;
    case KT_INT64: fprintf(f, "%lld", (long long)*(const int64_t *)field); break;
    case KT_FLOAT:
        fmt_double(*(const double *)field, buf, sizeof buf);
        fputs(buf, f);
        break;
    case KT_FLOAT2: {
        const double *v = field;
        fmt_double(v[0], buf, sizeof buf);
        fprintf(f, "[%s, ", buf);
        fmt_double(v[1], buf, sizeof buf);
        fprintf(f, "%s]", buf);
        break;
    }
    case KT_STRING: put_quoted(f, *(char *const *)field); break;
    case KT_ENUM: fputs(choice_name(k->d->choices, *(const int *)field), f); break;
    case KT_STR_LIST:
    case KT_TARGETS: {
        char *const *v = *(char **const *)field;
        int n = *list_count((void *)field, k->d);
        if (k->d->type == KT_TARGETS && cfg->model.pet.target_modules_regex) {
            put_quoted(f, v[0]);
            break;
        }
        fputc('[', f);
        for (int i = 0; i < n; i++) {
            if (i) fputs(", ", f);
            put_quoted(f, v[i]);
        }
        fputc(']', f);
        break;
    }
    case KT_MAP: {
        const struct config_kv *v = *(struct config_kv *const *)field;
        int n = *list_count((void *)field, k->d);
        fputc('{', f);
        for (int i = 0; i < n; i++) {
            if (i) fputs(", ", f);
            put_quoted(f, v[i].key);
            fputs(": ", f);
            put_quoted(f, v[i].value);
        }
        fputc('}', f);
        break;
    }
    }
}

static int n_components(const char *s) {
    if (!*s) return 0;
    int n = 1;
    for (; *s; s++)
        n += *s == '.';
    return n;
}

/* Length of the first `depth` components of path. */
static size_t component_prefix(const char *path, int depth) {
    const char *p = path;
    for (int d = 0; d < depth; d++) {
        const char *dot = strchr(p, '.');
        if (!dot) return strlen(path);
        p = dot + 1;
    }
    return (size_t)(p - path - 1);
}

void config_dump_yaml(const struct run_config *cfg, FILE *f) {
    keys_init();
    fprintf(f, "# csft resolved run config\n");
    const char *prev = "";
    for (int i = 0; i < n_keys; i++) {
        const struct key *k = &keys[i];
        int depth = n_components(k->section);
        /* shared leading components with the previous key's section */
        int common = 0;
        while (common < depth && common < n_components(prev)) {
            size_t a = component_prefix(k->section, common + 1), b = component_prefix(prev, common + 1);
            if (a != b || strncmp(k->section, prev, a)) break;
            common++;
        }
        for (int d = common; d < depth; d++) {
            size_t start = d ? component_prefix(k->section, d) + 1 : 0,
                   end = component_prefix(k->section, d + 1);
            fprintf(f, "%*s%.*s:\n", 2 * d, "", (int)(end - start), k->section + start);
        }
        fprintf(f, "%*s%s: ", 2 * depth, "", leaf_of(k->path));
        put_value(f, cfg, k);
        fputc('\n', f);
        prev = k->section;
    }
}

int config_save(const struct run_config *cfg, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f, "open_memstream");
    config_dump_yaml(cfg, f);
    fclose(f);
    int rc = file_write_atomic(path, buf, len);
    free(buf);
    return rc;
}

static const char *title_of(const char *path) {
    for (size_t i = 0; i < cfg_n_section_titles; i++)
        if (!strcmp(cfg_section_titles[i][0], path)) return cfg_section_titles[i][1];
    return NULL;
}

/* The heading to print before key i, or NULL: the key's own, or its section's on entry. */
static const char *heading_before(int i) {
    const char *t = title_of(keys[i].path);
    if (t) return t;
    if (i > 0 && !strcmp(keys[i - 1].section, keys[i].section)) return NULL;
    for (int j = 0; j < i; j++)
        if (!strcmp(keys[j].section, keys[i].section)) return NULL; /* printed already */
    return title_of(keys[i].section);
}

/* Allowed values of a key as text ("" if any value of its type). */
static void allowed_str(const struct key *k, char *buf, size_t n) {
    if (k->d->type == KT_ENUM)
        choices_str(k->d->choices, buf, n);
    else if (k->d->flags & K_ONLY_DEFAULT)
        snprintf(buf, n, "only %s", k->def);
    else
        range_str(k->d, buf, n);
}

void config_print_help(FILE *f) {
    keys_init();
    fprintf(f, "Run config keys (YAML; override any with --set key.path=value):\n");
    for (int i = 0; i < n_keys; i++) {
        const struct key *k = &keys[i];
        const char *title = heading_before(i);
        if (title) fprintf(f, "\n%s%s%s\n", k->section, *k->section ? ": " : "", title);
        char allowed[200];
        allowed_str(k, allowed, sizeof allowed);
        fprintf(f, "  %s = %s  (%s%s%s)\n      %s\n", k->path, k->def, type_name(k->d), *allowed ? ": " : "",
                allowed, k->d->help);
        if (k->alias[0]) fprintf(f, "      Also spelled %s.\n", k->alias);
    }
}

static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

void config_print_markdown(FILE *f) {
    keys_init();
    fprintf(f, "# Run configuration reference\n\n"
               "<!-- Generated from the key table in src/train/config.c by config_print_markdown();\n"
               "     regenerate with `build/tests/test_config --write-docs`. -->\n\n"
               "A run is described by one YAML file shaped like MindSpore Transformers' configs. Values are\n"
               "resolved in order: the defaults below, then the YAML file (`--config run.yaml`), then each\n"
               "`--set key.path=value` (the value is read as YAML: `--set optimizer.betas=[0.9,0.95]`).\n"
               "Unknown keys are errors with a suggestion; values of the wrong type or out of range are\n"
               "errors naming the key, the file and line, what was expected and what was found. Nothing is\n"
               "clamped. The resolved config is printed at start and saved as `config.yaml` in the output\n"
               "folder and in every checkpoint; it loads back as is.\n\n"
               "Scalars follow YAML: booleans are true/false (also yes/no/on/off, any case: `True` works),\n"
               "numbers may be written `1e-5` or `1.e-5`. Anchors (`&train`, `*train`) and merges (`<<:`)\n"
               "work. MindSpore keys with no csft equivalent (`context`, `trainer`, `callbacks`, ...) are\n"
               "reported with where the setting lives in csft.\n");
    for (int i = 0; i < n_keys; i++) {
        const struct key *k = &keys[i];
        const char *title = heading_before(i);
        if (title) {
            if (*k->section)
                fprintf(f, "\n## `%s`\n\n%s\n\n", k->section, title);
            else
                fprintf(f, "\n## %s\n\nTop-level keys.\n\n", title);
            fprintf(f, "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
        }
        char allowed[200];
        allowed_str(k, allowed, sizeof allowed);
        fprintf(f, "| `%s`", leaf_of(k->path));
        if (k->alias[0]) fprintf(f, " (or `%s`)", leaf_of(k->alias));
        fprintf(f, " | %s | `", type_name(k->d));
        md_cell(f, k->def);
        fprintf(f, "` | ");
        md_cell(f, allowed);
        fprintf(f, " | ");
        md_cell(f, k->d->help);
        fprintf(f, " |\n");
    }
    fprintf(f, "\n## Coming from MindSpore Transformers\n\n"
               "Keys of their configs that csft does not take, and what to do instead (the loader says the\n"
               "same). `*` stands for any name at that level.\n\n| MindSpore key | in csft |\n|---|---|\n");
    for (size_t i = 0; i < cfg_n_foreign_hints; i++) {
        fprintf(f, "| `%s` | ", cfg_foreign_hints[i][0]);
        md_cell(f, cfg_foreign_hints[i][1]);
        fprintf(f, " |\n");
    }
}
