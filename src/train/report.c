/* report: see report.h. Reading: each file is parsed line by line with cJSON; a bad line is
 * skipped (a run being written may end in a torn line), a value of the wrong type is ignored.
 * Drawing: one SVG per chart, axes with "nice" ticks, one polyline per run and metric (at most
 * MAX_POINTS points: longer series are thinned by an even stride, said in data-stride). */
#include "train/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/util.h"
#include "train/metrics.h"

enum { M_LOSS, M_EVAL, M_LR, M_GN, M_TPS, M_MFU, M_MEM, M_COUNT };
static const char *metric_key[M_COUNT] = {"loss", "eval_loss", "lr", "grad_norm", "tokens_per_sec", "mfu", "peak_mem_mib"};
static const char *metric_label[M_COUNT] = {"train loss", "eval loss", "learning rate", "grad norm", "tokens/s", "MFU", "peak memory"};
enum { MAX_POINTS = 2000, MAX_RUNS = 8, MAX_EPOCH_MARKS = 64 };
#define REPORT_TIME_SHARE 0.005 /* the writer's budget: half of the 1% it may cost, a margin for the last write */
static const char *palette[MAX_RUNS] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

struct series {
    int n, cap;
    double *x, *y;
};

struct run_data {
    const char *dir;
    cJSON *info;   /* run_info.json or NULL */
    cJSON *events; /* array of the events.jsonl lines */
    char *config;  /* config.yaml or NULL */
    struct series s[M_COUNT];
    int64_t epoch_marks[MAX_EPOCH_MARKS]; /* first logged step of epoch 1, 2, ... */
    int n_epoch_marks;
    int64_t last_step, tokens;
    double last_epoch;
    /* elapsed restarts with each process (a resume): segments are added up */
    double done_el, seg_el0, seg_step0, cur_el, rate; /* rate: seconds per step, latest segment */
    int n_segments;
    int64_t resume_steps[64]; /* steps of the "resume" events (a new process starts after each) */
    int n_resumes;
};

static void series_push(struct series *s, double x, double y) {
    if (!isfinite(x) || !isfinite(y)) return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = xrealloc(s->x, sizeof(double) * (size_t)s->cap);
        s->y = xrealloc(s->y, sizeof(double) * (size_t)s->cap);
    }
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
}

static double num(const cJSON *j, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsBool(v) ? (double)cJSON_IsTrue(v) : dflt;
}
static const char *str(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void on_metric(struct run_data *r, cJSON *j) {
    double step = num(j, "step", NAN);
    if (!isfinite(step) || step < 0 || step > 1e15) return;
    if (cJSON_GetObjectItemCaseSensitive(j, "eval_loss")) {
        series_push(&r->s[M_EVAL], step, num(j, "eval_loss", NAN));
        return;
    }
    for (int m = 0; m < M_COUNT; m++)
        if (m != M_EVAL) series_push(&r->s[m], step, num(j, metric_key[m], NAN));
    double epoch = num(j, "epoch", NAN), el = num(j, "elapsed", NAN);
    if (isfinite(epoch) && epoch >= 0 && epoch < 1e6) {
        int e = (int)floor(epoch + 1e-9);
        while (e > r->n_epoch_marks && r->n_epoch_marks < MAX_EPOCH_MARKS) r->epoch_marks[r->n_epoch_marks++] = (int64_t)step;
        r->last_epoch = epoch;
    }
    if (isfinite(el) && el >= 0) {
        int resumed = 0; /* a resume event between the previous line and this one */
        for (int k = 0; k < r->n_resumes && r->n_segments; k++)
            resumed |= r->last_step <= r->resume_steps[k] && r->resume_steps[k] < (int64_t)step;
        if (r->n_segments == 0 || el < r->cur_el || resumed) { /* a new process */
            if (r->n_segments) r->done_el += r->cur_el;
            r->n_segments++;
            r->seg_el0 = el, r->seg_step0 = step;
        }
        r->cur_el = el;
        if (step > r->seg_step0) r->rate = (el - r->seg_el0) / (step - r->seg_step0);
        else if (step > 0) r->rate = el / step;
    }
    r->last_step = (int64_t)step;
    r->tokens = (int64_t)num(j, "tokens", (double)r->tokens);
}

static void on_event(struct run_data *r, cJSON *j) {
    cJSON_AddItemToArray(r->events, cJSON_Duplicate(j, 1));
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event"), *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "resume") && cJSON_IsNumber(st) && r->n_resumes < 64)
        r->resume_steps[r->n_resumes++] = (int64_t)st->valuedouble;
}

/* Calls fn on each JSON object line of path. An absent file is fine when missing_ok. */
static int each_line(const char *path, int missing_ok, void (*fn)(struct run_data *, cJSON *), struct run_data *r) {
    if (missing_ok && !file_exists(path)) return 0;
    char *text = file_read_all(path, NULL);
    if (!text) return -1;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(line);
        if (cJSON_IsObject(j)) fn(r, j);
        cJSON_Delete(j);
        if (!nl) break;
        line = nl + 1;
    }
    free(text);
    return 0;
}

static int run_load(struct run_data *r, const char *dir) {
    memset(r, 0, sizeof *r);
    r->dir = dir;
    r->events = cJSON_CreateArray();
    char *p = path_join(dir, "events.jsonl"); /* first: the resume steps split the metrics into processes */
    int rc = each_line(p, 1, on_event, r);
    free(p);
    if (rc) return -1;
    p = path_join(dir, "metrics.jsonl");
    rc = file_exists(p) ? each_line(p, 0, on_metric, r) : err_set("%s: no metrics.jsonl (not a csft output_dir?)", dir);
    free(p);
    if (rc) return -1;
    p = path_join(dir, "run_info.json");
    if (file_exists(p)) {
        char *t = file_read_all(p, NULL);
        r->info = t ? cJSON_Parse(t) : NULL;
        free(t);
        if (r->info && !cJSON_IsObject(r->info)) cJSON_Delete(r->info), r->info = NULL;
    }
    free(p);
    p = path_join(dir, "config.yaml");
    if (file_exists(p)) r->config = file_read_all(p, NULL);
    free(p);
    return 0;
}

static void run_free(struct run_data *r) {
    for (int m = 0; m < M_COUNT; m++) free(r->s[m].x), free(r->s[m].y);
    cJSON_Delete(r->info);
    cJSON_Delete(r->events);
    free(r->config);
}

/* The last event named ev (and kind, if given), or NULL. */
static const cJSON *last_event(const struct run_data *r, const char *ev) {
    const cJSON *found = NULL, *e;
    cJSON_ArrayForEach(e, r->events) {
        const char *n = str(e, "event");
        if (n && !strcmp(n, ev)) found = e;
    }
    return found;
}

/* The "end" event of the latest process, or NULL while it runs (or was killed). */
static const cJSON *run_end(const struct run_data *r) {
    const cJSON *end = NULL, *e;
    cJSON_ArrayForEach(e, r->events) {
        const char *n = str(e, "event");
        if (n && !strcmp(n, "end")) end = e;
        if (n && !strcmp(n, "resume")) end = NULL;
    }
    return end;
}

/* ---------------------------------------------------------------- text helpers */

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

static void fmt_count(char *b, size_t n, double v) {
    if (!isfinite(v)) snprintf(b, n, "-");
    else if (fabs(v) < 1e4) snprintf(b, n, "%.0f", v);
    else if (fabs(v) < 1e6) snprintf(b, n, "%.1fk", v / 1e3);
    else if (fabs(v) < 1e9) snprintf(b, n, "%.2fM", v / 1e6);
    else snprintf(b, n, "%.2fB", v / 1e9);
}

/* A tick label: few digits, no trailing zeros. */
static void fmt_tick(char *b, size_t n, double v) {
    if (v == 0) snprintf(b, n, "0");
    else if (fabs(v) >= 1e4 || fabs(v) < 1e-3) snprintf(b, n, "%.3g", v);
    else snprintf(b, n, "%.4g", v);
}

/* ---------------------------------------------------------------- charts */

struct chart {
    const char *title;
    int metrics[2], n_metrics;
    double scale; /* drawn value = value * scale (MFU in %) */
    int from_zero; /* the y axis starts at 0 */
};
static const struct chart charts[] = {
    {"Loss (train, eval)", {M_LOSS, M_EVAL}, 2, 1, 0},
    {"Learning rate", {M_LR}, 1, 1, 1},
    {"Gradient norm (before clipping)", {M_GN}, 1, 1, 0},
    {"Tokens / s (real tokens, all ranks)", {M_TPS}, 1, 1, 1},
    {"MFU (%)", {M_MFU}, 1, 100, 1},
    {"Peak memory (MiB, rank 0)", {M_MEM}, 1, 1, 1},
};
#define EVAL_COLOUR "#ff7f0e" /* one run: eval loss in its own colour */
enum { CW = 520, CH = 270, ML = 62, MR = 14, MT = 12, MB = 34 };

/* Ticks at 1, 2 or 5 times a power of ten covering [lo, hi]; widens lo/hi to them. */
static int nice_ticks(double *lo, double *hi, double *ticks, int max) {
    if (!(*hi > *lo)) {
        double d = *lo == 0 ? 1 : fabs(*lo) * 0.1;
        *lo -= d, *hi += d;
    }
    double raw = (*hi - *lo) / 5, p = pow(10, floor(log10(raw))), st = p;
    if (raw / p > 5) st = 10 * p;
    else if (raw / p > 2) st = 5 * p;
    else if (raw / p > 1) st = 2 * p;
    *lo = floor(*lo / st) * st, *hi = ceil(*hi / st) * st;
    int n = 0;
    for (double t = *lo; t <= *hi + st * 1e-6 && n < max; t += st) ticks[n++] = fabs(t) < st * 1e-9 ? 0 : t;
    return n;
}

static void draw_chart(FILE *f, const struct chart *c, int idx, const struct run_data *runs, int n_runs) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int any = 0;
    for (int r = 0; r < n_runs; r++)
        for (int k = 0; k < c->n_metrics; k++) {
            const struct series *s = &runs[r].s[c->metrics[k]];
            for (int i = 0; i < s->n; i++) {
                double v = s->y[i] * c->scale;
                x0 = fmin(x0, s->x[i]), x1 = fmax(x1, s->x[i]), y0 = fmin(y0, v), y1 = fmax(y1, v), any = 1;
            }
        }
    fprintf(f, "<figure class=\"chart\"><figcaption>%s</figcaption>\n", c->title);
    fprintf(f, "<svg id=\"chart%d\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\" data-chart=\"%s\">\n", idx, CW, CH,
            CW, CH, metric_key[c->metrics[0]]);
    int pw = CW - ML - MR, ph = CH - MT - MB;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"plot\"/>\n", ML, MT, pw, ph);
    if (!any) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"empty\">no data yet</text></svg></figure>\n", ML + pw / 2, MT + ph / 2);
        return;
    }
    double xt[16], yt[16];
    x0 = fmin(x0, 0);
    int nxt = nice_ticks(&x0, &x1, xt, 16), nyt;
    if (y0 > 0 && (c->from_zero || y0 < 0.3 * y1)) y0 = 0; /* start at zero when asked or near */
    nyt = nice_ticks(&y0, &y1, yt, 16);
#define PX(x) (ML + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (MT + ph - ((y) - y0) / (y1 - y0) * ph)
    fprintf(f, "<g class=\"grid\" data-x0=\"%.9g\" data-x1=\"%.9g\" data-y0=\"%.9g\" data-y1=\"%.9g\">\n", x0, x1, y0, y1);
    char b[32];
    for (int i = 0; i < nyt; i++) {
        fmt_tick(b, sizeof b, yt[i]);
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%d\" y=\"%.1f\" class=\"yt\">%s</text>\n", ML,
                ML + pw, PY(yt[i]), PY(yt[i]), ML - 5, PY(yt[i]) + 4, b);
    }
    for (int i = 0; i < nxt; i++) {
        fmt_tick(b, sizeof b, xt[i]);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"xt\">%s</text>\n", PX(xt[i]), MT + ph + 15, b);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"xl\">step</text></g>\n", ML + pw, CH - 3);
    /* the end of each epoch of the first run (its first logged step in the next epoch) */
    for (int e = 0; e < runs[0].n_epoch_marks; e++) {
        double x = PX((double)runs[0].epoch_marks[e]);
        fprintf(f, "<g class=\"epoch\" data-epoch=\"%d\" data-step=\"%lld\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>"
                   "<text x=\"%.1f\" y=\"%d\">epoch %d</text></g>\n",
                e + 1, (long long)runs[0].epoch_marks[e], x, x, MT, MT + ph, x - 3, MT + 11, e + 1);
    }
    /* best eval and early stop, first run, on the loss chart */
    const cJSON *best = last_event(&runs[0], "best"), *stop = last_event(&runs[0], "early_stop");
    if (c->metrics[0] == M_LOSS && best) {
        double x = PX(num(best, "step", 0));
        fprintf(f, "<g class=\"best\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/><text x=\"%.1f\" y=\"%d\">best</text></g>\n",
                x, x, MT, MT + ph, x - 3, MT + 24);
    }
    if (c->metrics[0] == M_LOSS && stop) {
        double x = PX(num(stop, "step", 0));
        fprintf(f, "<g class=\"stop\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/><text x=\"%.1f\" y=\"%d\">early stop</text></g>\n",
                x, x, MT, MT + ph, x - 3, MT + 37);
    }
    for (int r = 0; r < n_runs; r++)
        for (int k = 0; k < c->n_metrics; k++) {
            int m = c->metrics[k];
            const struct series *s = &runs[r].s[m];
            if (!s->n) continue;
            int stride = (s->n + MAX_POINTS - 1) / MAX_POINTS;
            const char *col = n_runs == 1 && m == M_EVAL ? EVAL_COLOUR : palette[r % MAX_RUNS];
            fprintf(f, "<polyline class=\"line%s\" stroke=\"%s\" data-run=\"%d\" data-metric=\"%s\" data-label=\"", m == M_EVAL ? " eval" : "",
                    col, r, metric_key[m]);
            esc(f, n_runs > 1 ? runs[r].dir : metric_label[m]);
            fprintf(f, "\" data-stride=\"%d\" data-steps=\"", stride);
            for (int i = 0; i < s->n; i += stride) fprintf(f, "%s%.0f", i ? " " : "", s->x[i]);
            fputs("\" data-values=\"", f);
            for (int i = 0; i < s->n; i += stride) fprintf(f, "%s%.9g", i ? " " : "", s->y[i]);
            fputs("\" points=\"", f);
            for (int i = 0; i < s->n; i += stride) fprintf(f, "%s%.1f,%.1f", i ? " " : "", PX(s->x[i]), PY(s->y[i] * c->scale));
            fputs("\"/>\n", f);
            if (m == M_EVAL && s->n <= 200)
                for (int i = 0; i < s->n; i++)
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(s->x[i]), PY(s->y[i]), col);
        }
#undef PX
#undef PY
    fputs("<line class=\"cursor\" x1=\"-10\" x2=\"-10\" y1=\"12\" y2=\"236\"/></svg>\n<div class=\"legend\">", f);
    for (int r = 0; r < n_runs; r++)
        for (int k = 0; k < c->n_metrics; k++) {
            if (!runs[r].s[c->metrics[k]].n) continue;
            fprintf(f, "<span><i style=\"background:%s\"%s></i>", n_runs == 1 && c->metrics[k] == M_EVAL ? EVAL_COLOUR : palette[r % MAX_RUNS],
                    c->metrics[k] == M_EVAL ? " class=\"dash\"" : "");
            if (n_runs > 1) esc(f, runs[r].dir), fputc(' ', f);
            fprintf(f, "%s</span>", metric_label[c->metrics[k]]);
        }
    fputs("<span class=\"readout\"></span></div></figure>\n", f);
}

/* ---------------------------------------------------------------- header */

static void kv(FILE *f, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void kv(FILE *f, const char *k, const char *fmt, ...) {
    fprintf(f, "<tr><th>%s</th><td>", k);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputs("</td></tr>\n", f);
}

static void data_row(FILE *f, const char *name, const cJSON *d) {
    if (!cJSON_IsObject(d)) return;
    char rec[32], seq[32], tok[32], tr[32];
    fmt_count(rec, sizeof rec, num(d, "records", NAN));
    fmt_count(seq, sizeof seq, num(d, "sequences", NAN));
    fmt_count(tok, sizeof tok, num(d, "tokens", NAN));
    fmt_count(tr, sizeof tr, num(d, "trained_tokens", NAN));
    fprintf(f, "<tr><th>%s</th><td>%s records &rarr; %s sequences, %s tokens (%s trained); %.0f truncated, %.0f dropped",
            name, rec, seq, tok, tr, num(d, "truncated", 0), num(d, "dropped", 0));
    double z = num(d, "no_trained_token", 0), sk = num(d, "skipped_rows", 0), pe = num(d, "packing_efficiency", NAN);
    if (z > 0) fprintf(f, ", %.0f with no trained token", z);
    if (sk > 0) fprintf(f, ", %.0f bad rows skipped", sk);
    if (isfinite(pe)) fprintf(f, "; packing efficiency %.1f%%", 100 * pe);
    fputs("</td></tr>\n", f);
}

static void header(FILE *f, const struct run_data *r) {
    const cJSON *in = r->info, *end = run_end(r), *best = last_event(r, "best");
    const cJSON *stop = last_event(r, "early_stop"), *fin = last_event(r, "final_model");
    double total = num(in, "total_steps", NAN);
    const char *reason = end ? str(end, "reason") : NULL;
    char el[32], eta[32];
    double elapsed = r->done_el + r->cur_el;
    metrics_format_duration(el, sizeof el, elapsed);
    metrics_format_duration(eta, sizeof eta, end ? 0 : (total - (double)r->last_step) * r->rate);
    fputs("<table class=\"head\">\n", f);
    if (end)
        kv(f, "Status", "<b class=\"done\">finished</b> (%s) at step %lld of %.0f", reason ? reason : "?", (long long)r->last_step, total);
    else
        kv(f, "Status", "<b class=\"live\">running or interrupted</b>: step %lld of %.0f (%.0f%%) &middot; ETA %s", (long long)r->last_step,
           total, isfinite(total) && total > 0 ? 100.0 * (double)r->last_step / total : 0.0, eta);
    kv(f, "Time", "elapsed %s over %d process%s &middot; epoch %.2f &middot; report written %s", el, r->n_segments,
       r->n_segments == 1 ? "" : "es", r->last_epoch, "<span id=\"written\"></span>");
    if (in) {
        fputs("<tr><th>Model</th><td>", f);
        esc(f, str(in, "model"));
        char p[32], t[32];
        fmt_count(p, sizeof p, num(in, "params", NAN));
        fmt_count(t, sizeof t, num(in, "trainable", NAN));
        fprintf(f, " &middot; ");
        esc(f, str(in, "arch"));
        fprintf(f, ", %.0f layers, %s parameters</td></tr>\n", num(in, "layers", 0), p);
        const char *method = str(in, "method");
        double tr = num(in, "trainable", NAN), pa = num(in, "params", NAN);
        if (method && !strcmp(method, "LoRA"))
            kv(f, "Method", "LoRA (rank %.0f): %s trainable parameters (%.2f%% of the base)", num(in, "lora_rank", 0), t, 100 * tr / pa);
        else
            kv(f, "Method", "full fine-tuning: %s trainable parameters", t);
        kv(f, "Plan", "%.0f steps (%.0f per epoch), sequence length %.0f%s, world %.0f", total, num(in, "steps_per_epoch", 0),
           num(in, "seq_length", 0), num(in, "packing", 0) > 0 ? ", packed" : "", num(in, "world", 1));
        data_row(f, "Train data", cJSON_GetObjectItemCaseSensitive(in, "train"));
        data_row(f, "Eval data", cJSON_GetObjectItemCaseSensitive(in, "eval"));
        const struct series *mfu = &r->s[M_MFU], *mem = &r->s[M_MEM], *tps = &r->s[M_TPS];
        char ts[32];
        fmt_count(ts, sizeof ts, tps->n ? tps->y[tps->n - 1] : NAN);
        fprintf(f, "<tr><th>Throughput</th><td>%s tokens/s", ts);
        if (mfu->n) fprintf(f, " &middot; MFU %.2f%%", 100 * mfu->y[mfu->n - 1]);
        if (mem->n) fprintf(f, " &middot; peak memory %.0f MiB", mem->y[mem->n - 1]);
        double pk = num(in, "peak_gflops", 0);
        if (pk > 0) fprintf(f, " &middot; peak %.1f GFLOP/s (%s) &middot; %.3g FLOPs/token", pk, num(in, "peak_measured", 0) > 0 ? "measured" : "given", num(in, "flops_per_token", 0));
        fputs("</td></tr>\n", f);
        double pat = num(in, "early_stopping_patience", 0);
        fprintf(f, "<tr><th>Eval</th><td>");
        const struct series *ev = &r->s[M_EVAL];
        if (ev->n) fprintf(f, "last eval loss %.4f at step %.0f", ev->y[ev->n - 1], ev->x[ev->n - 1]);
        else fputs("no eval yet", f);
        if (best) fprintf(f, " &middot; <span class=\"bestt\">best %.4f at step %.0f</span>", num(best, "eval_loss", NAN), num(best, "step", 0));
        if (num(in, "save_best", 0) > 0) fputs(" &middot; save_best", f);
        if (num(in, "load_best_at_end", 0) > 0) fputs(" &middot; load_best_at_end", f);
        if (pat > 0) fprintf(f, " &middot; early stopping: patience %.0f", pat);
        if (stop) fprintf(f, " &middot; <b class=\"stopt\">stopped early at step %.0f</b> (%.0f evals without improvement)", num(stop, "step", 0), num(stop, "evals_without_improvement", 0));
        fputs("</td></tr>\n", f);
    }
    if (fin) {
        fputs("<tr><th>Final model</th><td>", f);
        esc(f, str(fin, "path"));
        fputs(" &larr; ", f);
        esc(f, str(fin, "source"));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

static void checkpoints(FILE *f, const struct run_data *r) {
    const cJSON *e;
    int n = 0;
    cJSON_ArrayForEach(e, r->events) {
        const char *ev = str(e, "event");
        if (!ev || (strcmp(ev, "checkpoint") && strcmp(ev, "resume"))) continue;
        if (!n++) fputs("<h2>Checkpoints</h2>\n<table class=\"list\"><tr><th>step</th><th>kind</th><th>path</th></tr>\n", f);
        const char *path = str(e, "path");
        fprintf(f, "<tr><td>%.0f</td><td>", num(e, "step", 0));
        esc(f, !strcmp(ev, "resume") ? "resumed from" : str(e, "kind"));
        fputs("</td><td>", f);
        esc(f, path);
        if (path && !strcmp(ev, "checkpoint") && !dir_exists(path)) fputs(" <i>(removed since)</i>", f);
        fputs("</td></tr>\n", f);
    }
    if (n) fputs("</table>\n", f);
}

/* Grouped by eval sample: its prompt once, then the answer at each eval and the reference. */
static void generations(FILE *f, const struct run_data *r) {
    const cJSON *e, *x;
    double done[64];
    int n_done = 0;
    cJSON_ArrayForEach(e, r->events) {
        const char *ev = str(e, "event");
        if (!ev || strcmp(ev, "generation") || n_done == 64) continue;
        double sample = num(e, "sample", -1);
        int seen = 0;
        for (int i = 0; i < n_done; i++) seen |= done[i] == sample;
        if (seen) continue;
        if (!n_done) fputs("<h2>Generations at each eval</h2>\n", f);
        done[n_done++] = sample;
        fprintf(f, "<div class=\"sample\"><b>eval record %.0f</b><pre class=\"prompt\">", sample);
        esc(f, str(e, "prompt"));
        fputs("</pre><table class=\"list gen\"><tr><th>step</th><th>generated</th></tr>\n", f);
        cJSON_ArrayForEach(x, r->events) {
            const char *xe = str(x, "event");
            if (!xe || strcmp(xe, "generation") || num(x, "sample", -1) != sample) continue;
            fprintf(f, "<tr><td>%.0f</td><td>", num(x, "step", 0));
            esc(f, str(x, "text"));
            fputs("</td></tr>\n", f);
        }
        fputs("<tr class=\"ref\"><td>reference</td><td>", f);
        esc(f, str(e, "reference"));
        fputs("</td></tr></table></div>\n", f);
    }
}

static const char *style =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:20px;color:#222;background:#fafafa}"
    "h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:18px 0 6px}"
    "table.head th{text-align:left;padding:2px 12px 2px 0;vertical-align:top;color:#555;font-weight:600;white-space:nowrap}"
    "table.head td{padding:2px 0}table.list{border-collapse:collapse}table.list td,table.list th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
    "table.gen td{white-space:pre-wrap;max-width:900px}tr.ref td{color:#2ca02c}.sample{margin:0 0 12px}"
    "pre.prompt{background:#fff;border:1px solid #ddd;padding:6px;margin:4px 0;white-space:pre-wrap;max-width:900px}"
    ".charts{display:flex;flex-wrap:wrap;gap:10px}figure.chart{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}"
    "figcaption{font-weight:600;margin:0 0 2px 6px}svg text{font-size:11px;fill:#444}.plot{fill:#fff;stroke:#bbb}"
    ".grid line{stroke:#eee}.yt{text-anchor:end}.xt{text-anchor:middle}.xl{text-anchor:end}.empty{text-anchor:middle;fill:#999}"
    "polyline.line{fill:none;stroke-width:1.6}polyline.eval{stroke-dasharray:5 3;stroke-width:2}"
    ".epoch line{stroke:#999;stroke-dasharray:2 3}.epoch text{fill:#777;text-anchor:end}.best line{stroke:#2ca02c;stroke-dasharray:4 2}.best text{fill:#2ca02c;text-anchor:end}"
    ".stop line{stroke:#d62728}.stop text{fill:#d62728;text-anchor:end}.cursor{stroke:#888;stroke-width:.7}"
    ".legend{font-size:12px;margin:0 0 0 8px}.legend span{margin-right:12px}.legend i{display:inline-block;width:16px;height:3px;vertical-align:middle;margin-right:4px}"
    ".legend i.dash{background-image:linear-gradient(90deg,transparent 60%,#fff 60%)!important;background-size:6px 3px}"
    ".readout{color:#555;font-variant-numeric:tabular-nums}.done{color:#2ca02c}.live{color:#ff7f0e}.stopt{color:#d62728}.bestt{color:#2ca02c}"
    "details pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;max-height:480px}";

/* window.onerror records a script error in the page (tests read it from the DOM); the rest shows
 * the values under the mouse and the age of the page. */
static const char *script_head = "window.onerror=function(m){document.documentElement.setAttribute('data-js-error',String(m));};";
static const char *script_body =
    "(function(){var w=document.getElementById('written'),t=+document.body.getAttribute('data-written');"
    "if(w&&t)w.textContent=new Date(t*1000).toLocaleString();"
    "document.querySelectorAll('svg[data-chart]').forEach(function(svg){"
    "var g=svg.querySelector('g.grid');if(!g)return;var x0=+g.dataset.x0,x1=+g.dataset.x1,pw=" "%d" ",ml=" "%d" ";"
    "var lines=[].map.call(svg.querySelectorAll('polyline'),function(p){return{l:p.dataset.label,"
    "s:p.dataset.steps.split(' ').map(Number),v:p.dataset.values.split(' ').map(Number)};});"
    "var ro=svg.parentNode.querySelector('.readout'),cur=svg.querySelector('.cursor');"
    "svg.addEventListener('mousemove',function(ev){var r=svg.getBoundingClientRect(),"
    "x=(ev.clientX-r.left)*svg.viewBox.baseVal.width/r.width,st=x0+(x-ml)/pw*(x1-x0),out=[];"
    "lines.forEach(function(L){var b=0;for(var i=0;i<L.s.length;i++)if(Math.abs(L.s[i]-st)<Math.abs(L.s[b]-st))b=i;"
    "if(L.s.length)out.push(L.l+' @'+L.s[b]+': '+(+L.v[b].toPrecision(5)));});"
    "cur.setAttribute('x1',x);cur.setAttribute('x2',x);ro.textContent=out.join('  ');});});"
    "document.documentElement.setAttribute('data-js-ok','1');})();";

static void render(FILE *f, const struct run_data *runs, int n_runs) {
    const struct run_data *r = &runs[0];
    int live = !run_end(r);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", f);
    fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
          "script-src 'unsafe-inline'; img-src data:\">\n", f);
    if (live) fputs("<meta http-equiv=\"refresh\" content=\"60\">\n", f);
    fputs("<title>csft report: ", f);
    esc(f, r->dir);
    fprintf(f, "</title>\n<script>%s</script>\n<style>%s</style></head>\n", script_head, style);
    fprintf(f, "<body data-written=\"%lld\" data-runs=\"%d\">\n<h1>csft run: ", (long long)time(NULL), n_runs);
    esc(f, r->dir);
    fputs("</h1>\n", f);
    header(f, r);
    if (n_runs > 1) {
        fputs("<h2>Runs compared</h2>\n<table class=\"list\"><tr><th></th><th>output_dir</th><th>method</th><th>steps</th>"
              "<th>last loss</th><th>last eval loss</th><th>best eval loss</th></tr>\n", f);
        for (int i = 0; i < n_runs; i++) {
            const struct series *l = &runs[i].s[M_LOSS], *e = &runs[i].s[M_EVAL];
            const cJSON *b = last_event(&runs[i], "best");
            fprintf(f, "<tr><td><i style=\"display:inline-block;width:14px;height:4px;background:%s\"></i></td><td>", palette[i % MAX_RUNS]);
            esc(f, runs[i].dir);
            fputs("</td><td>", f);
            esc(f, runs[i].info ? str(runs[i].info, "method") : "?");
            fprintf(f, "</td><td>%lld</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>\n", (long long)runs[i].last_step,
                    l->n ? l->y[l->n - 1] : NAN, e->n ? e->y[e->n - 1] : NAN, b ? num(b, "eval_loss", NAN) : NAN);
        }
        fputs("</table>\n", f);
    }
    fputs("<h2>Curves</h2>\n<div class=\"charts\">\n", f);
    for (int c = 0; c < (int)(sizeof charts / sizeof charts[0]); c++) draw_chart(f, &charts[c], c, runs, n_runs);
    fputs("</div>\n", f);
    checkpoints(f, r);
    generations(f, r);
    if (r->config) {
        fputs("<details><summary><b>Resolved config</b> (config.yaml)</summary><pre>", f);
        esc(f, r->config);
        fputs("</pre></details>\n", f);
    }
    fputs("<script>", f);
    fprintf(f, script_body, CW - ML - MR, ML);
    fputs("</script>\n</body></html>\n", f);
}

int report_render(const char *const *dirs, int n_dirs, const char *out_path) {
    if (n_dirs < 1 || n_dirs > MAX_RUNS) return err_set("report: between 1 and %d output folders, got %d", MAX_RUNS, n_dirs);
    struct run_data runs[MAX_RUNS];
    int n = 0, rc = 0;
    for (; n < n_dirs; n++)
        if (run_load(&runs[n], dirs[n])) {
            rc = err_wrap("report: %s", dirs[n]);
            n++;
            break;
        }
    if (rc == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        CHECK(f, "open_memstream");
        render(f, runs, n);
        fclose(f);
        rc = file_write_atomic(out_path, buf, len);
        free(buf);
    }
    for (int i = 0; i < n; i++) run_free(&runs[i]);
    return rc;
}

/* ---------------------------------------------------------------- run files */

static cJSON *stats_json(const struct dataset_stats *s, double packing_efficiency) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "records", (double)s->n_records);
    cJSON_AddNumberToObject(d, "sequences", (double)s->n_sequences);
    cJSON_AddNumberToObject(d, "tokens", (double)s->n_tokens);
    cJSON_AddNumberToObject(d, "trained_tokens", (double)s->n_trained_tokens);
    cJSON_AddNumberToObject(d, "truncated", (double)s->n_truncated);
    cJSON_AddNumberToObject(d, "dropped", (double)s->n_dropped);
    cJSON_AddNumberToObject(d, "no_trained_token", (double)s->n_zero_trained);
    cJSON_AddNumberToObject(d, "skipped_rows", (double)s->n_skipped_rows);
    if (packing_efficiency > 0) cJSON_AddNumberToObject(d, "packing_efficiency", packing_efficiency);
    return d;
}

int report_write_info(const char *output_dir, const struct report_info *in) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", in->model_path ? in->model_path : "");
    cJSON_AddStringToObject(j, "arch", in->arch ? in->arch : "");
    cJSON_AddNumberToObject(j, "layers", in->n_layers);
    cJSON_AddNumberToObject(j, "params", (double)in->n_params);
    cJSON_AddNumberToObject(j, "trainable", (double)in->n_trainable);
    cJSON_AddStringToObject(j, "method", in->lora ? "LoRA" : "full");
    if (in->lora) cJSON_AddNumberToObject(j, "lora_rank", in->lora_rank);
    cJSON_AddNumberToObject(j, "world", in->world);
    cJSON_AddNumberToObject(j, "total_steps", (double)in->total_steps);
    cJSON_AddNumberToObject(j, "steps_per_epoch", (double)in->steps_per_epoch);
    cJSON_AddNumberToObject(j, "seq_length", in->seq_length);
    cJSON_AddBoolToObject(j, "packing", in->packing);
    if (in->resume_step >= 0) cJSON_AddNumberToObject(j, "resume_step", (double)in->resume_step);
    if (in->train) cJSON_AddItemToObject(j, "train", stats_json(in->train, in->packing_efficiency));
    if (in->eval) cJSON_AddItemToObject(j, "eval", stats_json(in->eval, 0));
    cJSON_AddNumberToObject(j, "peak_gflops", in->peak_gflops);
    cJSON_AddBoolToObject(j, "peak_measured", in->peak_measured);
    cJSON_AddNumberToObject(j, "flops_per_token", in->flops_per_token);
    cJSON_AddBoolToObject(j, "save_best", in->save_best);
    cJSON_AddBoolToObject(j, "load_best_at_end", in->load_best_at_end);
    cJSON_AddNumberToObject(j, "early_stopping_patience", in->early_stopping_patience);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    char *p = path_join(output_dir, "run_info.json");
    int rc = file_write_atomic(p, s, strlen(s));
    free(p), free(s);
    return rc;
}

int report_events_open(const char *output_dir, int64_t resume_step) {
    char *p = path_join(output_dir, "events.jsonl");
    int rc = 0;
    if (resume_step < 0) {
        if (remove(p) != 0 && errno != ENOENT) rc = err_set("%s: cannot remove: %s", p, strerror(errno));
    } else if (file_exists(p)) {
        rc = jsonl_keep_through_step(p, resume_step);
    }
    free(p);
    return rc;
}

int report_event(const char *output_dir, int64_t step, const char *event, cJSON *fields) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddStringToObject(j, "event", event);
    if (fields) {
        while (fields->child) {
            cJSON *it = cJSON_DetachItemViaPointer(fields, fields->child);
            cJSON_AddItemToObject(j, it->string, it); /* cJSON keeps the item's own key string */
        }
        cJSON_Delete(fields);
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *p = path_join(output_dir, "events.jsonl");
    FILE *f = fopen(p, "a");
    int rc = 0;
    if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0) rc = err_set("%s: cannot append: %s", p, strerror(errno));
    free(p), free(s);
    return rc;
}

/* ---------------------------------------------------------------- writer */

void report_writer_init(struct report_writer *w, const char *output_dir) {
    memset(w, 0, sizeof *w);
    w->output_dir = xstrdup(output_dir);
    w->path = path_join(output_dir, "report.html");
    w->t_start = time_now();
}

int report_writer_update(struct report_writer *w, int force) {
    if (!w->output_dir) return 0;
    double t0 = time_now();
    if (!force && w->n_writes && w->total + w->last_cost > REPORT_TIME_SHARE * (t0 - w->t_start)) {
        w->n_skipped++;
        return 0;
    }
    const char *dirs[1] = {w->output_dir};
    int rc = report_render(dirs, 1, w->path);
    w->last_end = time_now();
    w->last_cost = w->last_end - t0;
    w->total += w->last_cost;
    w->n_writes++;
    return rc;
}

void report_writer_free(struct report_writer *w) {
    free(w->output_dir), free(w->path);
    memset(w, 0, sizeof *w);
}
