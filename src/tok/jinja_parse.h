/* jinja_parse: Jinja2 lexer and parser to an AST, with the whitespace rules transformers uses
 * (trim_blocks, lstrip_blocks, `-`/`+` tag modifiers, newline normalisation, one trailing
 * newline dropped as keep_trailing_newline=False). Grammar and precedence follow
 * jinja2/lexer.py and jinja2/parser.py (3.1). Errors: "NAME:LINE:COL: TemplateSyntaxError: ...". */
#pragma once
#include "tok/jinja_value.h"

enum jnode_kind {
    /* expressions */
    JN_CONST,  /* val */
    JN_NAME,   /* name */
    JN_LIST,   /* args */
    JN_TUPLE,  /* args */
    JN_DICT,   /* args: key, value, key, value... */
    JN_ATTR,   /* a.name */
    JN_ITEM,   /* a[b] */
    JN_SLICE,  /* a[b:c:d], missing parts NULL */
    JN_CALL,   /* a(args, kw) */
    JN_FILTER, /* a | name(args, kw); a NULL inside a filter block */
    JN_TEST,   /* a is [not] name(args); op = 1 if negated */
    JN_UNARY,  /* op: 'n' not, '-' neg, '+' pos */
    JN_BINOP,  /* op: '+','-','*','/','F' (//),'%','P' (**),'~' */
    JN_AND,
    JN_OR,
    JN_COMPARE, /* op: 'E' ==, 'N' !=, '<', 'L' <=, '>', 'G' >=, 'i' in, 'I' not in */
    JN_COND,    /* b if a else c (c may be NULL) */
    /* statements */
    JN_BODY,        /* args: statements */
    JN_TEXT,        /* val: literal output */
    JN_OUTPUT,      /* {{ a }} */
    JN_IF,          /* if a: b else c (c may be another JN_IF for elif) */
    JN_FOR,         /* for target(d) in a [if c2]: b else c */
    JN_SET,         /* set target(d) = a; or block set: a NULL, b body, filter e */
    JN_MACRO,       /* macro name(params args, defaults kw) body b */
    JN_CALLBLOCK,   /* call(params) a (a JN_CALL) body b */
    JN_FILTERBLOCK, /* filter e (a JN_FILTER chain with NULL operand) body b */
    JN_BREAK,
    JN_CONTINUE,
    JN_GENERATION /* {% generation %} body b (transformers' AssistantTracker) */
};

struct jnode {
    enum jnode_kind kind;
    int op;
    int pos; /* byte offset in the normalised source, for line:col */
    struct jv *val;
    const char *name;
    struct jnode *a, *b, *c, *d, *e, *c2;
    struct jnode **args;
    int n_args;
    const char **kw_names;
    struct jnode **kw_vals;
    int n_kw;
};

struct jinja_ast {
    struct jarena arena; /* owns nodes, constants and the source */
    char *src;           /* normalised source */
    size_t src_len;
    char *name; /* for messages */
    struct jnode *root;
    int has_generation; /* the template holds {% generation %} blocks */
};

/* Parses source into a new AST. Returns NULL with err set ("name:line:col: ..."). */
struct jinja_ast *jinja_parse(const char *source, const char *name);
void jinja_ast_free(struct jinja_ast *t);
/* 1-based line and column (in code points) of byte offset pos in src. */
void jinja_line_col(const char *src, size_t len, int pos, int *line, int *col);
