/* jinja_value: the value model of the Jinja interpreter (Python semantics: None, bool, int,
 * float, str, list/tuple, dict, namespace, Undefined, callables), allocated from a per-render
 * arena (jarena) so a render frees everything at once. Conversion from cJSON, Python-style
 * str()/repr(), json.dumps (transformers' tojson), truthiness, equality and ordering. */
#pragma once
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct jarena_blk;
struct jarena {
    struct jarena_blk *head;
    size_t used;  /* bytes handed out */
    size_t limit; /* 0 = none; past it, and past JV_MAX_NESTING, over() is called (it must not return) */
    void (*over)(struct jarena *a, const char *what);
};
enum { JV_MAX_NESTING = 1000 }; /* lists/dicts inside each other (recursive printers, compares) */
void *jarena_alloc(struct jarena *a, size_t n); /* zeroed, 16-byte aligned */
void jarena_free(struct jarena *a);
char *jarena_strndup(struct jarena *a, const char *s, size_t n);

enum jv_kind {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples (is_tuple) */
    JV_DICT, /* also namespace() objects (is_ns) and loop objects (is_loop) */
    JV_FUNC, /* builtin global function (func_id) */
    JV_MACRO /* user macro (macro node + defining frame) */
};

struct jv {
    enum jv_kind kind;
    int is_tuple, is_ns, is_loop;
    int depth; /* list/dict nesting below this value (0 for scalars) */
    int64_t i; /* bool and int value; func id; loop index0 */
    double f;
    const char *s; /* string bytes (NUL-terminated) or Undefined hint */
    size_t len;
    struct jv **items; /* list items, or dict values */
    struct jv **keys;  /* dict keys (strings) */
    int64_t n, cap;
    const void *node; /* macro node */
    struct jv *self;  /* bound method receiver (JV_FUNC with s = method name) */
    void *frame;      /* macro defining frame */
};

extern struct jv jv_undef_plain, jv_none, jv_true, jv_false;

struct jv *jv_str(struct jarena *a, const char *s, size_t len); /* copies */
struct jv *jv_str_take(struct jarena *a, char *s, size_t len);  /* s already in the arena */
struct jv *jv_cstr(struct jarena *a, const char *s);
struct jv *jv_int(struct jarena *a, int64_t i);
struct jv *jv_float(struct jarena *a, double f);
struct jv *jv_bool(int b);
struct jv *jv_undef(struct jarena *a, const char *hint); /* hint: Jinja's UndefinedError text */
struct jv *jv_list(struct jarena *a, int64_t cap);
struct jv *jv_dict(struct jarena *a);
void jv_list_push(struct jarena *a, struct jv *l, struct jv *v);
/* Sets d[key] (keeps insertion order). */
void jv_dict_set(struct jarena *a, struct jv *d, struct jv *key, struct jv *v);
/* d[key] or NULL. */
struct jv *jv_dict_get(const struct jv *d, const char *key, size_t klen);

struct jv *jv_from_cjson(struct jarena *a, const cJSON *j);

int jv_truthy(const struct jv *v);
int jv_equal(const struct jv *x, const struct jv *y);
/* -1/0/1; returns -2 when Python would raise TypeError (unorderable). */
int jv_compare(const struct jv *x, const struct jv *y);
/* Python's type name for messages: "str", "int", "dict", "list", "NoneType"... */
const char *jv_type_name(const struct jv *v);

/* Growable byte buffer in the arena. */
struct jbuf {
    struct jarena *a;
    char *p;
    size_t len, cap;
};
void jbuf_init(struct jbuf *b, struct jarena *a);
void jbuf_put(struct jbuf *b, const char *s, size_t n);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_putc(struct jbuf *b, char c);

/* Python str(v) / repr(v) appended to b. Undefined prints as "". */
void jv_write_str(struct jbuf *b, const struct jv *v);
void jv_write_repr(struct jbuf *b, const struct jv *v);
/* Python float repr (shortest round trip): 1.0, 0.1, 1e-05, 1e+16, inf, nan. */
void jv_write_float(struct jbuf *b, double f);
/* json.dumps(v, ensure_ascii, indent (<0: None), separators (NULL: Python defaults), sort_keys).
 * Returns 0, or -1 with *bad set to the offending value (not JSON serializable). */
struct jv_json_opts {
    int ensure_ascii, indent, sort_keys;
    const char *item_sep, *key_sep; /* NULL: ", "/": " without indent, ","/": " with */
};
int jv_write_json(struct jbuf *b, const struct jv *v, const struct jv_json_opts *o, const struct jv **bad);
/* str(v) as an arena string value (v itself when already a string). */
struct jv *jv_to_str(struct jarena *a, const struct jv *v);

/* UTF-8 helpers (code points). */
int64_t utf8_cp_len(const char *s, size_t n);
/* Byte offset of code point index ci (clamped to n). */
size_t utf8_cp_offset(const char *s, size_t n, int64_t ci);
/* Decodes one code point at s (n bytes left); returns its byte length (1 for invalid bytes). */
int utf8_decode_one(const char *s, size_t n, int32_t *cp);
int utf8_encode_one(int32_t cp, char out[4]);
/* Python str.isspace() for one code point. */
int unicode_isspace(int32_t cp);
