/* The run report and the eval-loss features, end to end through ./csft:
 * - report.html's curves carry the metrics.jsonl numbers (data attributes) and their points sit
 *   where the axes say; `csft report A B` overlays two runs; bad input gives a clear error;
 * - the page renders in headless Chromium (Debian's chromium; the test FAILS when it is missing):
 *   the screenshot is not blank (distinct colours, the curve colour present) and the page
 *   raised no script error and logged nothing to the console (a broken page proves the check);
 * - a run whose eval loss rises stops after early_stopping_patience evals, keeps the best
 *   checkpoint despite save_total_limit and writes it as the final model (load_best_at_end);
 * - a run killed and resumed keeps its patience counter (trainer_state.json);
 * - best_track_eval, the MFU formula and the MFU / memory fields of the log. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>

#include "core/util.h"
#include "test.h"
#include "train/best.h"
#include "train/metrics.h"
#include "train/mfu.h"

#define TMP "build/tmp_report"
#define S(x) ((x) ? (x) : "(null)")

static int run(const char *cmd, char **out) {
    char *full = xasprintf("%s > " TMP "/out.txt 2>&1", cmd);
    int st = system(full);
    free(full);
    if (out) *out = file_read_all(TMP "/out.txt", NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* n rows of `len` tokens alternating a, b (labels = inputs, but -100 on the first prompt_len) */
static void write_rows(const char *path, int n, int len, int a, int b, int prompt_len) {
    FILE *f = fopen(path, "w");
    for (int r = 0; r < n; r++) {
        fputs("{\"input_ids\":[", f);
        for (int i = 0; i < len; i++) fprintf(f, "%s%d", i ? "," : "", (i + r) % 2 ? b : a);
        fputs("],\"labels\":[", f);
        for (int i = 0; i < len; i++) fprintf(f, "%s%d", i ? "," : "", i < prompt_len ? -100 : (i + r) % 2 ? b : a);
        fputs("]}\n", f);
    }
    fclose(f);
}

/* A full fine-tuning run of the tiny Qwen2 fixture; extra: more YAML lines. */
static void write_config(const char *path, const char *out, const char *extra) {
    FILE *f = fopen(path, "w");
    fprintf(f,
            "run_mode: finetune\nseed: 1\noutput_dir: %s\nload_checkpoint: tests/fixtures/hf/qwen2-tiny\n"
            "train_dataset:\n  data_files: [" TMP "/train.jsonl]\n  format: tokenized\n  seq_length: 32\n"
            "eval_dataset:\n  data_files: [" TMP "/eval.jsonl]\n  format: tokenized\n  seq_length: 32\n"
            "runner_config:\n  epochs: 4\n  batch_size: 2\n"
            "optimizer:\n  learning_rate: 1.0e-2\nlr_schedule:\n  type: cosine\n  warmup_steps: 1\n"
            "logging_steps: 1\neval_steps: 1\ntensorboard: true\n%s",
            out, extra);
    fclose(f);
}

/* ---------------------------------------------------------------- numbers in the SVG */

/* The value of attribute name inside the tag starting at tag (malloc'd), or NULL. */
static char *attr(const char *tag, const char *name) {
    const char *end = strchr(tag, '>');
    char *key = xasprintf(" %s=\"", name);
    const char *p = strstr(tag, key);
    char *v = NULL;
    if (p && (!end || p < end)) {
        p += strlen(key);
        const char *q = strchr(p, '"');
        v = q ? strndup(p, (size_t)(q - p)) : NULL;
    }
    free(key);
    return v;
}

static int parse_nums(const char *s, double *out, int max) {
    int n = 0;
    char *e;
    while (s && *s && n < max) {
        double v = strtod(s, &e);
        if (e == s) break;
        out[n++] = v;
        s = e;
    }
    return n;
}

/* metrics.jsonl's (step, value) pairs of key, in order */
static int jsonl_series(const char *path, const char *key, double *steps, double *vals, int max) {
    char *t = file_read_all(path, NULL);
    int n = 0;
    for (char *line = t; line && *line && n < max;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(line);
        cJSON *v = cJSON_GetObjectItem(j, key), *s = cJSON_GetObjectItem(j, "step");
        if (cJSON_IsNumber(v) && cJSON_IsNumber(s)) steps[n] = s->valuedouble, vals[n] = v->valuedouble, n++;
        cJSON_Delete(j);
        if (!nl) break;
        line = nl + 1;
    }
    free(t);
    return n;
}

/* Every curve of report.html against metrics.jsonl; returns the number of curves checked. */
static int check_curves(const char *html, const char *metrics_path, int run_index) {
    int checked = 0;
    for (const char *p = strstr(html, "<polyline"); p; p = strstr(p + 1, "<polyline")) {
        char *run = attr(p, "data-run"), *metric = attr(p, "data-metric"), *steps = attr(p, "data-steps");
        char *values = attr(p, "data-values"), *points = attr(p, "points"), *stride = attr(p, "data-stride");
        if (run && atoi(run) == run_index && metric && steps && values && points) {
            static double s[4096], v[4096], js[4096], jv[4096];
            int ns = parse_nums(steps, s, 4096), nv = parse_nums(values, v, 4096);
            int nj = jsonl_series(metrics_path, metric, js, jv, 4096);
            EXPECT(stride && atoi(stride) == 1, "%s: stride %s", metric, stride);
            EXPECT(ns == nv && ns == nj && ns > 0, "%s: %d steps, %d values, %d in metrics.jsonl", metric, ns, nv, nj);
            for (int i = 0; i < ns && i < nj; i++) {
                EXPECT(s[i] == js[i], "%s[%d]: step %g vs %g", metric, i, s[i], js[i]);
                EXPECT(fabs(v[i] - jv[i]) <= 1e-8 * fmax(1, fabs(jv[i])), "%s[%d]: %.12g vs %.12g", metric, i, v[i], jv[i]);
            }
            /* the drawn points: x from the step, y from the value, on the chart's axes */
            const char *svg = p;
            while (svg > html && strncmp(svg, "<svg", 4)) svg--;
            const char *grid = strstr(svg, "<g class=\"grid\"");
            char *a0 = attr(grid, "data-x0"), *a1 = attr(grid, "data-x1"), *b0 = attr(grid, "data-y0"), *b1 = attr(grid, "data-y1");
            double x0 = atof(a0), x1 = atof(a1), y0 = atof(b0), y1 = atof(b1), scale = strcmp(metric, "mfu") ? 1 : 100;
            static double pts[8192];
            int np = 0;
            for (char *c = points; *c; c++)
                if (*c == ',') *c = ' ';
            np = parse_nums(points, pts, 8192);
            EXPECT(np == 2 * ns, "%s: %d coordinates for %d points", metric, np, ns);
            for (int i = 0; i < ns && 2 * i + 1 < np; i++) {
                double px = 62 + (s[i] - x0) / (x1 - x0) * (520 - 62 - 14), py = 12 + 224 - (v[i] * scale - y0) / (y1 - y0) * 224;
                EXPECT(fabs(pts[2 * i] - px) < 0.06 && fabs(pts[2 * i + 1] - py) < 0.06, "%s[%d]: drawn at (%g,%g), expected (%g,%g)",
                       metric, i, pts[2 * i], pts[2 * i + 1], px, py);
                EXPECT(pts[2 * i + 1] >= 11.9 && pts[2 * i + 1] <= 236.1, "%s[%d] outside the plot: y %g", metric, i, pts[2 * i + 1]);
            }
            free(a0), free(a1), free(b0), free(b1);
            checked++;
        }
        free(run), free(metric), free(steps), free(values), free(points), free(stride);
    }
    return checked;
}

static void test_report_numbers(void) {
    const char *out = TMP "/run_a";
    write_config(TMP "/a.yaml", out, "save_best: true\nsave_steps: 100\neval_generations: 2\npredict:\n  max_new_tokens: 5\n");
    char *log;
    EXPECT(run("./csft finetune --config " TMP "/a.yaml --peak-gflops 50", &log) == 0, "finetune: %s", S(log));
    EXPECT(log && strstr(log, "| MFU ") && strstr(log, "| mem "), "console line lacks MFU/mem: %s", S(log));
    EXPECT(log && strstr(log, "report: " TMP "/run_a/report.html"), "the run names its report: %s", S(log));
    free(log);
    char *html = file_read_all(TMP "/run_a/report.html", NULL);
    EXPECT(html != NULL, "no report.html");
    if (!html) return;
    int n = check_curves(html, TMP "/run_a/metrics.jsonl", 0);
    EXPECT(n == 7, "%d curves (loss, eval_loss, lr, grad_norm, tokens_per_sec, mfu, peak_mem_mib)", n);
    EXPECT(strstr(html, "http://") == NULL && strstr(html, "https://") == NULL && strstr(html, " src=") == NULL,
           "the page must not load anything");
    EXPECT(strstr(html, "full fine-tuning") && strstr(html, "Qwen2ForCausalLM") && strstr(html, "finished</b> (completed)"),
           "header");
    EXPECT(strstr(html, "data-epoch=\"1\""), "epoch 1 is marked");
    EXPECT(strstr(html, "kind</th>") && strstr(html, "checkpoint-"), "checkpoints listed");
    /* eval_generations: 2 records answered at each of the 16 evals (ids: the fixture has no tokenizer) */
    char *ev = file_read_all(TMP "/run_a/events.jsonl", NULL);
    int ng = 0;
    for (const char *q = ev; q && (q = strstr(q, "\"event\":\"generation\",\"sample\":")); q++) ng++;
    EXPECT(ng == 32, "%d generation events", ng);
    EXPECT(ev && strstr(ev, "\"prompt\":\"3 4 3 4 3 4\"") && strstr(ev, "\"reference\":\"3 4 3 4 3 4 3 4 3 4 3 4 3 4 3 4 3 4\""),
           "prompt = the untrained head, reference = the trained span: %.300s", S(ev));
    free(ev);
    EXPECT(strstr(html, "Generations at each eval") && strstr(html, "eval record 1"), "generations in the page");
    /* the metrics: mfu = tokens/s * FLOPs per token / (50 GFLOP/s) */
    double st[64], mfu[64], tps[64];
    int nm = jsonl_series(TMP "/run_a/metrics.jsonl", "mfu", st, mfu, 64);
    jsonl_series(TMP "/run_a/metrics.jsonl", "tokens_per_sec", st, tps, 64);
    char *info = file_read_all(TMP "/run_a/run_info.json", NULL);
    cJSON *ij = info ? cJSON_Parse(info) : NULL;
    double fpt = cJSON_GetNumberValue(cJSON_GetObjectItem(ij, "flops_per_token"));
    EXPECT(nm > 0 && fabs(mfu[0] - tps[0] * fpt / 50e9) <= 1e-9 * mfu[0], "mfu %g vs %g", mfu[0], tps[0] * fpt / 50e9);
    EXPECT(cJSON_GetNumberValue(cJSON_GetObjectItem(ij, "peak_gflops")) == 50, "peak_gflops in run_info");
    cJSON_Delete(ij);
    free(info);
    char *tb = file_read_all(TMP "/run_a/metrics.jsonl", NULL);
    EXPECT(tb && strstr(tb, "\"peak_mem_mib\":"), "peak memory in metrics.jsonl");
    free(tb);
    EXPECT(run("grep -rqa train/mfu " TMP "/run_a/tensorboard && grep -rqa train/peak_mem_mib " TMP "/run_a/tensorboard", NULL) == 0,
           "MFU and memory scalars in TensorBoard");
    free(html);

    /* csft report regenerates the page; with two folders it overlays them */
    write_config(TMP "/b.yaml", TMP "/run_b", "");
    EXPECT(run("./csft finetune --config " TMP "/b.yaml --set optimizer.learning_rate=3.0e-3 --set report=false", &log) == 0, "run b: %s", S(log));
    free(log);
    EXPECT(!file_exists(TMP "/run_b/report.html"), "report: false writes no page");
    EXPECT(run("./csft report " TMP "/run_a " TMP "/run_b --out " TMP "/both.html", &log) == 0, "csft report: %s", S(log));
    free(log);
    html = file_read_all(TMP "/both.html", NULL);
    EXPECT(html && strstr(html, "data-runs=\"2\""), "two runs");
    if (html) {
        EXPECT(check_curves(html, TMP "/run_a/metrics.jsonl", 0) == 7, "run a in the overlay");
        EXPECT(check_curves(html, TMP "/run_b/metrics.jsonl", 1) == 7, "run b in the overlay");
    }
    free(html);
    remove(TMP "/run_a/report.html");
    EXPECT(run("./csft report " TMP "/run_a", &log) == 0 && file_exists(TMP "/run_a/report.html"), "regenerate: %s", S(log));
    free(log);
    EXPECT(run("./csft report " TMP "/nowhere", &log) == 1 && log && strstr(log, "nowhere: no metrics.jsonl"), "missing: %s", S(log));
    free(log);
    EXPECT(run("./csft report", NULL) == 2, "no folder: usage");
    /* hostile files: garbage lines are skipped, the page is still written */
    system("mkdir -p " TMP "/junk && printf '{\"step\":1,\"loss\":2}\\nnot json\\n{\"step\":\"x\"}\\n{\"step\":2,\"loss\":1e308,\"epoch\":1e300}\\n[1]\\n{\"step\":3,\"loss\":1' > " TMP "/junk/metrics.jsonl"
           " && printf '{\"event\":7}\\n' > " TMP "/junk/events.jsonl && printf '[]' > " TMP "/junk/run_info.json");
    EXPECT(run("./csft report " TMP "/junk", &log) == 0, "junk: %s", S(log));
    free(log);
}

/* ---------------------------------------------------------------- early stopping */

static char *read_state(const char *ck, const char *key, double *v) {
    char *p = xasprintf("%s/trainer_state.json", ck), *t = file_read_all(p, NULL);
    cJSON *j = t ? cJSON_Parse(t) : NULL;
    *v = cJSON_GetNumberValue(cJSON_GetObjectItem(j, key));
    cJSON_Delete(j);
    free(t);
    return p;
}

static void test_early_stopping(void) {
    const char *out = TMP "/run_es";
    /* train on 1,2,1,2...; eval on 3,4,3,4...: the eval loss rises from the first step on */
    write_config(TMP "/es.yaml", out,
                 "save_best: true\nload_best_at_end: true\nearly_stopping_patience: 2\nsave_total_limit: 1\nsave_steps: 1\n");
    char *log;
    EXPECT(run("./csft finetune --config " TMP "/es.yaml --set runner_config.max_steps=20", &log) == 0, "finetune: %s", S(log));
    EXPECT(log && strstr(log, "early stopping: 2 evals without a lower eval loss (best"), "message: %s", S(log));
    free(log);
    double st[64], ev[64];
    int n = jsonl_series(TMP "/run_es/metrics.jsonl", "eval_loss", st, ev, 64), b = 0;
    for (int i = 1; i < n; i++)
        if (ev[i] < ev[b]) b = i;
    /* (this data: the loss falls once, at step 2, then rises) */
    EXPECT(n >= 3 && b == n - 3, "%d evals, best at eval %d: stops 2 evals after the best", n, b);
    for (int i = b + 1; i < n; i++) EXPECT(ev[i] > ev[b], "eval %d: %g should exceed the best %g", i, ev[i], ev[b]);
    int best = (int)st[b], last = (int)st[n - 1];
    EXPECT(last == best + 2 && last < 16, "stopped at step %d, best %d", last, best);
    char *ck_best = xasprintf(TMP "/run_es/checkpoints/checkpoint-%d", best), *ck_mid = xasprintf(TMP "/run_es/checkpoints/checkpoint-%d", best + 1);
    char *ck_last = xasprintf(TMP "/run_es/checkpoints/checkpoint-%d", last);
    EXPECT(dir_exists(ck_best), "the best checkpoint is kept despite save_total_limit 1");
    EXPECT(!dir_exists(ck_mid), "the one after it is pruned");
    EXPECT(dir_exists(ck_last), "the last-state checkpoint");
    double v;
    free(read_state(ck_last, "evals_without_improvement", &v));
    EXPECT(v == 2, "patience counter %g in trainer_state.json", v);
    free(read_state(ck_last, "best_step", &v));
    EXPECT(v == best, "best_step %g", v);
    char *wb = xasprintf("%s/model.safetensors", ck_best), *wl = xasprintf("%s/model.safetensors", ck_last);
    EXPECT(files_equal(TMP "/run_es/model.safetensors", wb), "load_best_at_end: the final model is the best checkpoint");
    EXPECT(!files_equal(TMP "/run_es/model.safetensors", wl), "and not the last weights");
    free(wb), free(wl), free(ck_best), free(ck_mid), free(ck_last);
    char *html = file_read_all(TMP "/run_es/report.html", NULL), *want = xasprintf("stopped early at step %d", last);
    EXPECT(html && strstr(html, want) && strstr(html, "best ") && strstr(html, "class=\"stop\"") &&
               strstr(html, "finished</b> (early stopping)") && strstr(html, "&larr; best checkpoint"),
           "the report records best and early stop");
    free(html), free(want);

    /* resume keeps the counter: patience 3, killed one step after the best (1 eval without
     * improvement); the resumed run stops 2 evals later, not 3 */
    system("rm -rf " TMP "/run_es2");
    write_config(TMP "/es2.yaml", TMP "/run_es2", "save_best: true\nearly_stopping_patience: 3\nsave_steps: 1\n");
    char *cmd = xasprintf("CSFT_TEST_KILL_AFTER_STEP=%d ./csft finetune --config " TMP "/es2.yaml --set runner_config.max_steps=20", best + 1);
    EXPECT(run(cmd, NULL) == 137, "killed after step %d", best + 1);
    free(cmd);
    char *ck = xasprintf(TMP "/run_es2/checkpoints/checkpoint-%d", best + 1);
    free(read_state(ck, "evals_without_improvement", &v));
    free(ck);
    EXPECT(v == 1, "counter %g before the kill", v);
    EXPECT(run("./csft finetune --config " TMP "/es2.yaml --set runner_config.max_steps=20 --set resume_training=true", &log) == 0,
           "resume: %s", S(log));
    EXPECT(log && strstr(log, "early stopping: 3 evals"), "resumed run stops: %s", S(log));
    free(log);
    n = jsonl_series(TMP "/run_es2/metrics.jsonl", "eval_loss", st, ev, 64);
    EXPECT(n > 0 && st[n - 1] == best + 3, "last eval at step %g: %d with the kept counter (%d if reset)", n ? st[n - 1] : -1,
           best + 3, best + 4);
    html = file_read_all(TMP "/run_es2/report.html", NULL);
    EXPECT(html && strstr(html, "over 2 processes") && strstr(html, "resumed from"), "the report shows the resume");
    free(html);

    EXPECT(run("./csft finetune --config " TMP "/es.yaml --set save_best=false --set output_dir=" TMP "/run_bad", &log) == 1 && log &&
               strstr(log, "load_best_at_end needs save_best"),
           "load_best_at_end alone: %s", S(log));
    free(log);
    EXPECT(run("./csft finetune --config " TMP "/es.yaml --set eval_dataset.data_files=[] --set eval_steps=0 --set output_dir=" TMP "/run_bad", &log) == 1 &&
               log && strstr(log, "save_best needs an eval_dataset"),
           "save_best without eval data: %s", S(log));
    free(log);
    EXPECT(!dir_exists(TMP "/run_bad"), "a config error touches nothing");
}

/* Two ranks (ZeRO-1, batch 1 each = the single run's batch 2): the same early stop, one report
 * from rank 0, the best checkpoint gathered and kept. */
static void test_multi_rank(void) {
    EXPECT(system("command -v mpirun > /dev/null 2>&1") == 0, "mpirun not found (scripts/setup.sh installs openmpi-bin)");
    char *log;
    EXPECT(run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0 "
               "mpirun -np 2 --oversubscribe -x ASAN_OPTIONS ./csft finetune --config " TMP "/es.yaml --set output_dir=" TMP "/run_mpi "
               "--set runner_config.batch_size=1 --set parallel_config.data_parallel=2 --set parallel_config.zero_stage=1 "
               "--set runner_config.max_steps=20",
               &log) == 0,
           "mpirun: %s", S(log));
    free(log);
    double s1[64], e1[64], s2[64], e2[64];
    int n1 = jsonl_series(TMP "/run_es/metrics.jsonl", "eval_loss", s1, e1, 64), n2 = jsonl_series(TMP "/run_mpi/metrics.jsonl", "eval_loss", s2, e2, 64);
    EXPECT(n1 == n2 && n1 > 0, "%d evals on 2 ranks, %d on one", n2, n1);
    for (int i = 0; i < n1 && i < n2; i++) EXPECT(s1[i] == s2[i] && fabs(e1[i] - e2[i]) < 1e-4, "eval %d: %g vs %g", i, e2[i], e1[i]);
    char *ev = file_read_all(TMP "/run_mpi/events.jsonl", NULL);
    int ends = 0, stops = 0;
    for (const char *q = ev; q && (q = strstr(q, "\"event\":\"end\"")); q++) ends++;
    for (const char *q = ev; q && (q = strstr(q, "\"event\":\"early_stop\"")); q++) stops++;
    EXPECT(ends == 1 && stops == 1, "one writer: %d end and %d early_stop events", ends, stops);
    free(ev);
    char *html = file_read_all(TMP "/run_mpi/report.html", NULL);
    EXPECT(html && strstr(html, "world 2") && strstr(html, "finished</b> (early stopping)"), "the report of the 2-rank run");
    free(html);
    char *best = xasprintf(TMP "/run_mpi/checkpoints/checkpoint-%d/model.safetensors", n1 >= 3 ? (int)s1[n1 - 3] : 0);
    EXPECT(files_equal(TMP "/run_mpi/model.safetensors", best), "load_best_at_end on 2 ranks: %s", best);
    free(best);
}

/* ---------------------------------------------------------------- browser */

/* Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes); NULL on anything else. */
static unsigned char *png_decode(const char *path, int *w, int *h, int *ch) {
    size_t n;
    unsigned char *f = (unsigned char *)file_read_all(path, &n), *idat = NULL, *img = NULL;
    size_t ni = 0;
    if (!f || n < 33 || memcmp(f, "\x89PNG\r\n\x1a\n", 8)) goto out;
    for (size_t p = 8; p + 12 <= n;) {
        uint32_t len = (uint32_t)f[p] << 24 | f[p + 1] << 16 | f[p + 2] << 8 | f[p + 3];
        if (len > n - p - 12) goto out;
        const unsigned char *type = f + p + 4, *d = f + p + 8;
        if (!memcmp(type, "IHDR", 4)) {
            *w = d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3], *h = d[4] << 24 | d[5] << 16 | d[6] << 8 | d[7];
            if (d[8] != 8 || (d[9] != 2 && d[9] != 6) || d[12] != 0 || *w <= 0 || *h <= 0 || *w > 8000 || *h > 8000) goto out;
            *ch = d[9] == 6 ? 4 : 3;
        } else if (!memcmp(type, "IDAT", 4)) {
            idat = xrealloc(idat, ni + len);
            memcpy(idat + ni, d, len);
            ni += len;
        }
        p += 12 + len;
    }
    if (!idat || !*ch) goto out;
    size_t stride = (size_t)*w * *ch, raw_n = (stride + 1) * (size_t)*h;
    unsigned char *raw = xmalloc(raw_n);
    uLongf got = raw_n;
    if (uncompress(raw, &got, idat, ni) != Z_OK || got != raw_n) {
        free(raw);
        goto out;
    }
    img = xmalloc(stride * (size_t)*h);
    for (int y = 0; y < *h; y++) {
        unsigned char ft = raw[y * (stride + 1)], *src = raw + y * (stride + 1) + 1, *dst = img + y * stride;
        const unsigned char *up = y ? img + (y - 1) * stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)*ch ? dst[x - *ch] : 0, b = up ? up[x] : 0, c = up && x >= (size_t)*ch ? up[x - *ch] : 0, pr;
            switch (ft) {
            case 0: pr = 0; break;
            case 1: pr = a; break;
            case 2: pr = b; break;
            case 3: pr = (a + b) / 2; break;
            default: {
                int pp = a + b - c, pa = abs(pp - a), pb = abs(pp - b), pc = abs(pp - c);
                pr = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            }
            }
            dst[x] = (unsigned char)(src[x] + pr);
        }
    }
    free(raw);
out:
    free(f), free(idat);
    return img;
}

static int count_colours(const unsigned char *img, int w, int h, int ch, int *blue) {
    enum { CAP = 1 << 16 };
    static uint32_t set[CAP];
    memset(set, 0, sizeof set);
    int n = 0;
    *blue = 0;
    for (int64_t i = 0; i < (int64_t)w * h; i++) {
        const unsigned char *p = img + i * ch;
        uint32_t c = (uint32_t)p[0] << 16 | p[1] << 8 | p[2] | 1u << 24;
        *blue += p[0] == 0x1f && p[1] == 0x77 && p[2] == 0xb4;
        for (uint32_t k = (c * 2654435761u) & (CAP - 1);; k = (k + 1) & (CAP - 1)) {
            if (set[k] == c) break;
            if (!set[k] && n < CAP / 2) {
                set[k] = c, n++;
                break;
            }
            if (!set[k]) break;
        }
    }
    return n;
}

/* (timeout: a hung browser fails the test instead of hanging the suite) */
#define CHROMIUM \
    "timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --user-data-dir=" TMP "/chrome-profile "

/* Loads the page in headless Chromium: 0 if it ran, DOM and console log in *dom / *log. */
static int chromium_dom(const char *html_path, char **dom, char **log) {
    char *abs = realpath(html_path, NULL);
    char *cmd = xasprintf(CHROMIUM "--enable-logging=stderr --v=0 --virtual-time-budget=2000 --dump-dom file://%s > " TMP
                                   "/dom.html 2> " TMP "/chrome.log",
                          abs ? abs : html_path);
    int st = system(cmd);
    free(cmd), free(abs);
    *dom = file_read_all(TMP "/dom.html", NULL);
    *log = file_read_all(TMP "/chrome.log", NULL);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && *dom ? 0 : -1;
}

static int console_lines(const char *log) {
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, ":CONSOLE")); p++) n++;
    return n;
}

static void test_browser(void) {
    int have = system("command -v chromium > /dev/null 2>&1") == 0;
    EXPECT(have, "chromium is not installed (scripts/setup.sh installs it): this test cannot run");
    if (!have) return;
    const char *page = TMP "/run_a/report.html";
    EXPECT(file_exists(page), "needs test_report_numbers's page");
    char *dom = NULL, *log = NULL;
    EXPECT(chromium_dom(page, &dom, &log) == 0, "chromium --dump-dom failed: %s", S(log));
    EXPECT(dom && strstr(dom, "data-js-ok=\"1\""), "the page's script did not run to its end");
    EXPECT(dom && !strstr(dom, "data-js-error=\""), "script error: %.300s", dom && strstr(dom, "data-js-error=\"") ? strstr(dom, "data-js-error=\"") : "");
    EXPECT(console_lines(log) == 0, "console messages: %s", S(log));
    EXPECT(dom && strstr(dom, "<polyline"), "the DOM has the curves");
    free(dom), free(log);
    /* the checks catch a broken page: a script error, and a blocked external load */
    FILE *f = fopen(TMP "/broken.html", "w");
    fputs("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'\"><script>window.onerror=function(m){document.documentElement.setAttribute("
          "'data-js-error',String(m));};</script></head><body><img src=\"https://example.invalid/x.png\">"
          "<script>undefined_function();</script></body></html>",
          f);
    fclose(f);
    EXPECT(chromium_dom(TMP "/broken.html", &dom, &log) == 0, "chromium on the broken page");
    EXPECT(dom && strstr(dom, "data-js-error=\""), "the script error was not seen");
    EXPECT(console_lines(log) > 0, "the console errors were not seen: %s", S(log));
    free(dom), free(log);

    char *abs = realpath(page, NULL);
    char *cmd = xasprintf(CHROMIUM "--window-size=1200,1400 --screenshot=" TMP "/shot.png file://%s > " TMP "/shot.log 2>&1", abs);
    remove(TMP "/shot.png");
    EXPECT(system(cmd) == 0 && file_exists(TMP "/shot.png"), "chromium --screenshot failed");
    free(cmd), free(abs);
    int w = 0, h = 0, ch = 0, blue = 0;
    unsigned char *img = png_decode(TMP "/shot.png", &w, &h, &ch);
    EXPECT(img && w == 1200 && h == 1400, "screenshot %dx%d", w, h);
    if (img) {
        int colours = count_colours(img, w, h, ch, &blue);
        EXPECT(colours >= 50, "a blank page: %d distinct colours", colours);
        EXPECT(blue >= 100, "the curve colour #1f77b4 covers only %d pixels", blue);
        printf("screenshot: %d distinct colours, %d pixels of the train-loss colour\n", colours, blue);
    }
    free(img);
    /* a blank page is caught */
    f = fopen(TMP "/blank.html", "w");
    fputs("<!DOCTYPE html><html><body style=\"background:#fff\"></body></html>", f);
    fclose(f);
    abs = realpath(TMP "/blank.html", NULL);
    cmd = xasprintf(CHROMIUM "--window-size=400,300 --screenshot=" TMP "/blank.png file://%s > " TMP "/shot.log 2>&1", abs);
    EXPECT(system(cmd) == 0, "blank screenshot");
    free(cmd), free(abs);
    img = png_decode(TMP "/blank.png", &w, &h, &ch);
    EXPECT(img && count_colours(img, w, h, ch, &blue) < 50, "the blank page counts as blank");
    free(img);
}

/* ---------------------------------------------------------------- units */

static void test_units(void) {
    struct train_state st = {0};
    struct eval_outcome o = best_track_eval(&st, 10, 2.0, 2);
    EXPECT(o.improved && !o.stop && st.best_step == 10, "first eval is the best");
    o = best_track_eval(&st, 20, 2.0, 2);
    EXPECT(!o.improved && !o.stop && st.evals_without_improvement == 1, "equal is no improvement");
    o = best_track_eval(&st, 30, NAN, 2);
    EXPECT(!o.improved && o.stop && st.evals_without_improvement == 2, "NaN is no improvement; patience 2 reached");
    o = best_track_eval(&st, 40, 1.5, 2);
    EXPECT(o.improved && !o.stop && st.best_step == 40 && st.evals_without_improvement == 0, "improvement resets");
    o = best_track_eval(&st, 50, 9, 0);
    EXPECT(!o.stop, "patience 0 never stops");
    /* FLOPs per token, by hand: C=8 F=16 L=2 H=2 KVH=1 HS=4 V=10 T=5 */
    struct model_config c = {.hidden_size = 8, .intermediate_size = 16, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .head_dim = 4,
                             .vocab_size = 10};
    double N = 2 * (8 * 8 + 2 * 8 * 4 + 8 * 8 + 3 * 8 * 16) + 10 * 8, att = 6.0 * 2 * 2 * 4 * (5 + 1);
    EXPECT_NEAR(mfu_flops_per_token(&c, 0, 0, 5), 6 * N + att, 1e-12);
    EXPECT_NEAR(mfu_flops_per_token(&c, 1, 100, 5), 4 * N + 600 + att, 1e-12);
    double peak = mfu_measure_peak_gflops(&kernels_cpu);
    EXPECT(peak > 0.1 && peak < 1e6, "measured peak %g GFLOP/s", peak);
    EXPECT(mfu_peak_rss_mib() > 1, "peak RSS");
    struct metrics_step s = {.step = 5, .total_steps = 10, .epoch = 0.5, .n_epochs = 1, .loss = 1, .lr = 1e-3, .grad_norm = 1,
                             .tokens_per_sec = 100, .elapsed = 10, .mfu = 0.1234, .peak_mem_mib = 2048};
    char buf[512];
    metrics_format_line(buf, sizeof buf, &s, 0, 0);
    EXPECT(strstr(buf, "100 tok/s | MFU 12.3% | mem 2.0G | elapsed"), "%s", buf);
}

int main(void) {
    system("rm -rf " TMP " && mkdir -p " TMP);
    if (!file_exists("./csft")) {
        printf("report: 0 passed, 1 failed (./csft not built)\n");
        return 1;
    }
    write_rows(TMP "/train.jsonl", 8, 24, 1, 2, 0);
    write_rows(TMP "/eval.jsonl", 4, 24, 3, 4, 6);
    RUN(test_units);
    RUN(test_report_numbers);
    RUN(test_early_stopping);
    RUN(test_multi_rank);
    RUN(test_browser);
    return TEST_SUMMARY("report");
}
