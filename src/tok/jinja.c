/* jinja: public entry points over the parser (jinja_parse.c) and interpreter (jinja_eval.c).
 * Input JSON is converted into the render's arena, so a render never mutates its inputs. */
#include "tok/jinja.h"

#include <stdlib.h>

#include "core/util.h"
#include "tok/jinja_eval.h"

struct jinja_template {
    struct jinja_ast *ast;
};

struct jinja_template *jinja_template_parse(const char *source, const char *name) {
    struct jinja_ast *ast = jinja_parse(source, name);
    if (!ast) return NULL;
    struct jinja_template *t = xmalloc(sizeof *t);
    t->ast = ast;
    return t;
}

void jinja_template_free(struct jinja_template *t) {
    if (!t) return;
    jinja_ast_free(t->ast);
    free(t);
}

int jinja_template_has_generation(const struct jinja_template *t) { return t->ast->has_generation; }

int jinja_render_marked(const struct jinja_template *t, const struct jinja_var *vars, int n_vars, char **out,
                        size_t *out_len, size_t **gen, int *n_gen) {
    struct jctx *c = xmalloc(sizeof *c);
    jctx_init(c, t->ast);
    const char **names = jarena_alloc(&c->a, (size_t)(n_vars + 1) * sizeof *names);
    struct jv **vals = jarena_alloc(&c->a, (size_t)(n_vars + 1) * sizeof *vals);
    for (int i = 0; i < n_vars; i++) {
        names[i] = vars[i].name;
        vals[i] = jv_from_cjson(&c->a, vars[i].value);
    }
    int rc = jinja_eval_render(c, names, vals, n_vars, out, out_len);
    if (gen && rc == 0) {
        *gen = c->gen;
        *n_gen = c->n_gen;
    } else
        free(c->gen);
    free(c);
    return rc;
}

int jinja_render(const struct jinja_template *t, const struct jinja_var *vars, int n_vars, char **out,
                 size_t *out_len) {
    return jinja_render_marked(t, vars, n_vars, out, out_len, NULL, NULL);
}
