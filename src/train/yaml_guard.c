/* yaml_guard: see yaml_guard.h. Every node weighs 1 plus its children; an alias weighs what
 * its anchor's node weighed, so the total is the size of the fully expanded document. */
#include "train/yaml_guard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/err.h"
#include "core/util.h"

struct anchor {
    char *name;
    int64_t weight;
};

static int64_t sat_add(int64_t a, int64_t b) { return a + b > YAML_MAX_NODES ? YAML_MAX_NODES + 1 : a + b; }

int yaml_guard(const char *text, size_t len, const char *name) {
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int64_t weight[YAML_MAX_DEPTH + 2]; /* open containers' weights so far; [0] = the stream */
    char *open_anchor[YAML_MAX_DEPTH + 2];
    struct anchor *an = NULL;
    int n_an = 0, depth = 0, rc = 0, done = 0;
    weight[0] = 0, open_anchor[0] = NULL;
    while (!done && rc == 0) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) break; /* a syntax error: the loader reports it */
        int line = (int)e.start_mark.line + 1;
        int64_t w = -1;
        const yaml_char_t *anchor = NULL;
        switch (e.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth >= YAML_MAX_DEPTH) {
                rc = err_set("%s:%d: YAML nested deeper than %d levels", name, line, YAML_MAX_DEPTH);
                break;
            }
            anchor = e.type == YAML_SEQUENCE_START_EVENT ? e.data.sequence_start.anchor : e.data.mapping_start.anchor;
            depth++;
            weight[depth] = 1;
            open_anchor[depth] = anchor ? xstrdup((const char *)anchor) : NULL;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth == 0) break;
            w = weight[depth];
            if (open_anchor[depth]) anchor = (const yaml_char_t *)open_anchor[depth];
            depth--;
            break;
        case YAML_SCALAR_EVENT:
            w = 1;
            anchor = e.data.scalar.anchor;
            break;
        case YAML_ALIAS_EVENT:
            w = 1;
            for (int i = n_an - 1; i >= 0; i--)
                if (!strcmp(an[i].name, (const char *)e.data.alias.anchor)) {
                    w = an[i].weight;
                    break;
                }
            break;
        default: break;
        }
        if (rc == 0 && w >= 0) {
            if (anchor) {
                if (n_an >= YAML_MAX_ANCHORS) {
                    rc = err_set("%s:%d: more than %d YAML anchors", name, line, YAML_MAX_ANCHORS);
                } else {
                    an = xrealloc(an, sizeof *an * (size_t)(n_an + 1));
                    an[n_an].name = xstrdup((const char *)anchor);
                    an[n_an++].weight = w;
                }
            }
            weight[depth] = sat_add(weight[depth], w);
            if (weight[depth] > YAML_MAX_NODES)
                rc = err_set("%s:%d: YAML aliases and '<<' merges expand to more than %d nodes", name, line,
                             YAML_MAX_NODES);
        }
        if ((e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) && anchor)
            free((char *)anchor);
        yaml_event_delete(&e);
    }
    for (int i = 1; i <= depth; i++) free(open_anchor[i]);
    for (int i = 0; i < n_an; i++) free(an[i].name);
    free(an);
    yaml_parser_delete(&p);
    return rc;
}
