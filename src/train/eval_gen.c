/* eval_gen: see eval_gen.h. */
#include "train/eval_gen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"
#include "tok/tokenizer.h"
#include "train/pipeline.h"
#include "train/report.h"

static char *ids_text(const struct tokenizer *tk, const int32_t *ids, int64_t n) {
    char *s = NULL;
    if (tk && tokenizer_decode(tk, ids, n, 1, &s, NULL) == 0) return s;
    size_t cap = (size_t)n * 12 + 1, o = 0;
    s = xmalloc(cap);
    s[0] = 0;
    for (int64_t i = 0; i < n; i++) o += (size_t)snprintf(s + o, cap - o, "%s%d", i ? " " : "", ids[i]);
    return s;
}

int eval_generations(struct model *m, const struct dataset *ds, struct pipeline *p, int n, int max_new, int64_t step,
                     const char *output_dir) {
    if (n <= 0 || !ds) return 0;
    const struct tokenizer *tk = pipeline_load_tokenizer(p) == 0 ? p->tk : NULL; /* none: ids are shown */
    int32_t stops[16];
    int n_stops = 0;
    for (int i = 0; i < m->cfg.n_eos && n_stops < 15; i++) stops[n_stops++] = m->cfg.eos_token_ids[i];
    if (p->eos_id >= 0) stops[n_stops++] = p->eos_id;
    int done = 0;
    for (int64_t s = 0; s < ds->n && done < n; s++) {
        int64_t a = ds->offsets[s], b = ds->offsets[s + 1], first = a;
        while (first < b && !ds->mask[first]) first++;
        int64_t last = first;
        while (last < b && ds->mask[last]) last++;
        if (first == a || first == b) continue; /* no prompt or nothing trained */
        int want = (int)(last - first) + 16 < max_new ? (int)(last - first) + 16 : max_new;
        int32_t *gen = xmalloc(sizeof(int32_t) * ((size_t)want + 1));
        int ng = model_generate(m, ds->ids + a, (int)(first - a), gen, want, stops, n_stops, 0.0f, 0, 1.0f, 0);
        char *prompt = ids_text(tk, ds->ids + a, first - a), *ref = ids_text(tk, ds->ids + first, last - first);
        char *out = ids_text(tk, gen, ng);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "sample", (double)s);
        cJSON_AddStringToObject(e, "prompt", prompt);
        cJSON_AddStringToObject(e, "text", out);
        cJSON_AddStringToObject(e, "reference", ref);
        free(prompt), free(ref), free(out), free(gen);
        if (report_event(output_dir, step, "generation", e)) return -1;
        done++;
    }
    return 0;
}
