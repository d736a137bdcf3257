/* metrics: JSONL + TensorBoard sinks and the console progress line; see metrics.h.
 * The JSONL is written with cJSON (shortest round-trip doubles; NaN/Inf become null, which
 * JSON requires) and flushed per line; a torn last line after a crash is dropped on resume. */
#include "train/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "io/tfevents.h"

struct metrics {
    FILE *f;
    char *path;
    struct tfevents *tb;
    int failed;
};

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int jsonl_keep_through_step(const char *path, int64_t keep_through) {
    size_t len;
    char *text = file_read_all(path, &len);
    if (!text) return -1;
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) break; /* a torn last line (killed mid-write) */
        *nl = 0;
        cJSON *j = cJSON_Parse(line);
        cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (cJSON_IsNumber(st) && st->valuedouble <= (double)keep_through) {
            size_t l = (size_t)(nl - line);
            memcpy(out + o, line, l);
            out[o + l] = '\n';
            o += l + 1;
        }
        cJSON_Delete(j);
        line = nl + 1;
    }
    int rc = file_write_atomic(path, out, o);
    free(out);
    free(text);
    return rc;
}

struct metrics *metrics_open(const char *output_dir, bool tensorboard, int64_t resume_step) {
    if (dir_create(output_dir)) return NULL;
    char *path = path_join(output_dir, "metrics.jsonl");
    if (resume_step >= 0 && file_exists(path) && jsonl_keep_through_step(path, resume_step)) {
        free(path);
        return NULL;
    }
    FILE *f = fopen(path, resume_step >= 0 ? "a" : "w");
    if (!f) {
        err_set("%s: cannot open for writing: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    struct metrics *m = xcalloc(1, sizeof *m);
    m->f = f;
    m->path = path;
    if (tensorboard) {
        char *tbdir = path_join(output_dir, "tensorboard");
        m->tb = tfevents_open(tbdir);
        free(tbdir);
        if (!m->tb) {
            fclose(f);
            free(path);
            free(m);
            return NULL;
        }
    }
    return m;
}

static int write_json(struct metrics *m, cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    CHECK(s, "cJSON_PrintUnformatted");
    int ok = !m->failed && fputs(s, m->f) >= 0 && fputc('\n', m->f) != EOF && fflush(m->f) == 0;
    free(s);
    if (!ok) {
        m->failed = 1;
        return err_set("%s: write failed: %s", m->path, strerror(errno));
    }
    return 0;
}

int metrics_log_step(struct metrics *m, const struct metrics_step *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)s->step);
    cJSON_AddNumberToObject(j, "epoch", s->epoch);
    cJSON_AddNumberToObject(j, "loss", s->loss);
    cJSON_AddNumberToObject(j, "lr", s->lr);
    cJSON_AddNumberToObject(j, "grad_norm", s->grad_norm);
    cJSON_AddNumberToObject(j, "tokens", (double)s->tokens);
    cJSON_AddNumberToObject(j, "tokens_per_sec", s->tokens_per_sec);
    cJSON_AddNumberToObject(j, "skipped_steps", (double)s->skipped_steps);
    cJSON_AddNumberToObject(j, "elapsed", s->elapsed);
    cJSON_AddNumberToObject(j, "wall_time", wall_now());
    if (s->mfu > 0) cJSON_AddNumberToObject(j, "mfu", s->mfu);
    if (s->peak_mem_mib > 0) cJSON_AddNumberToObject(j, "peak_mem_mib", s->peak_mem_mib);
    if (write_json(m, j)) return -1;
    if (m->tb) {
        if (tfevents_add_scalar(m->tb, "train/loss", s->step, (float)s->loss) ||
            tfevents_add_scalar(m->tb, "train/lr", s->step, (float)s->lr) ||
            tfevents_add_scalar(m->tb, "train/grad_norm", s->step, (float)s->grad_norm) ||
            tfevents_add_scalar(m->tb, "train/tokens_per_sec", s->step, (float)s->tokens_per_sec) ||
            tfevents_add_scalar(m->tb, "train/epoch", s->step, (float)s->epoch) ||
            (s->mfu > 0 && tfevents_add_scalar(m->tb, "train/mfu", s->step, (float)s->mfu)) ||
            (s->peak_mem_mib > 0 && tfevents_add_scalar(m->tb, "train/peak_mem_mib", s->step, (float)s->peak_mem_mib)) ||
            tfevents_flush(m->tb))
            return -1;
    }
    return 0;
}

int metrics_log_eval(struct metrics *m, int64_t step, double eval_loss, int64_t eval_tokens) {
    double ppl = exp(eval_loss);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddNumberToObject(j, "eval_loss", eval_loss);
    cJSON_AddNumberToObject(j, "eval_ppl", ppl);
    cJSON_AddNumberToObject(j, "eval_tokens", (double)eval_tokens);
    cJSON_AddNumberToObject(j, "wall_time", wall_now());
    if (write_json(m, j)) return -1;
    if (m->tb && (tfevents_add_scalar(m->tb, "eval/loss", step, (float)eval_loss) ||
                  tfevents_add_scalar(m->tb, "eval/perplexity", step, (float)ppl) || tfevents_flush(m->tb)))
        return -1;
    return 0;
}

int metrics_close(struct metrics *m) {
    if (!m) return 0;
    int rc = m->failed ? err_set("%s: an earlier write failed", m->path) : 0;
    if (fclose(m->f) != 0 && rc == 0) rc = err_set("%s: close failed: %s", m->path, strerror(errno));
    if (tfevents_close(m->tb) && rc == 0) rc = -1;
    free(m->path);
    free(m);
    return rc;
}

const char *metrics_path(const struct metrics *m) { return m->path; }

/* ---------------------------------------------------------------- console */

void metrics_format_duration(char *buf, size_t n, double seconds) {
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e9) {
        snprintf(buf, n, "--:--");
        return;
    }
    long s = lround(seconds);
    if (s >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%02ld:%02ld", s / 60, s % 60);
}

/* 812, 12.3k, 1.23M */
static void format_count(char *buf, size_t n, double v) {
    if (!isfinite(v))
        snprintf(buf, n, "-");
    else if (v < 1e3)
        snprintf(buf, n, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.2fM", v / 1e6);
}

/* Seconds left at the rate this process has run at; -1 if unknown. */
static double eta_seconds(const struct metrics_step *s) {
    int64_t done = s->step - s->start_step;
    if (done <= 0 || s->elapsed <= 0 || s->total_steps < s->step) return -1;
    return (double)(s->total_steps - s->step) * s->elapsed / (double)done;
}

size_t metrics_format_line(char *buf, size_t n, const struct metrics_step *s, int tty, int width) {
    char tok[32], el[32], eta[32], skipped[48] = "", extra[64] = "";
    format_count(tok, sizeof tok, s->tokens_per_sec);
    if (s->mfu > 0) snprintf(extra, sizeof extra, " | MFU %.1f%%", 100 * s->mfu);
    if (s->peak_mem_mib > 0)
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), s->peak_mem_mib >= 1024 ? " | mem %.1fG" : " | mem %.0fM",
                 s->peak_mem_mib >= 1024 ? s->peak_mem_mib / 1024 : s->peak_mem_mib);
    metrics_format_duration(el, sizeof el, s->elapsed);
    metrics_format_duration(eta, sizeof eta, eta_seconds(s));
    if (s->skipped_steps) snprintf(skipped, sizeof skipped, " | skipped %lld", (long long)s->skipped_steps);
    if (!tty) {
        snprintf(
            buf, n,
            "step %lld/%lld | epoch %.2f/%d | loss %.4f | lr %.3e | grad_norm %.3f | %s tok/s%s | elapsed %s | "
            "ETA %s%s",
            (long long)s->step, (long long)s->total_steps, s->epoch, s->n_epochs, s->loss, s->lr,
            s->grad_norm, tok, extra, el, eta, skipped);
        return strlen(buf);
    }
    char rest[512];
    int pct = s->total_steps > 0 ? (int)(100 * s->step / s->total_steps) : 0;
    snprintf(rest, sizeof rest,
             "%3d%% %lld/%lld | ep %.2f/%d | loss %.4f | lr %.2e | gn %.3f | %s tok/s%s | %s<%s%s", pct,
             (long long)s->step, (long long)s->total_steps, s->epoch, s->n_epochs, s->loss, s->lr,
             s->grad_norm, tok, extra, el, eta, skipped);
    int bar = width - (int)strlen(rest) - 3;
    if (bar > 30) bar = 30;
    if (bar < 5) {
        snprintf(buf, n, "%s", rest);
        return strlen(buf);
    }
    int filled = s->total_steps > 0 ? (int)((int64_t)bar * s->step / s->total_steps) : 0;
    if (filled > bar) filled = bar;
    char b[40];
    for (int i = 0; i < bar; i++)
        b[i] = i < filled ? '#' : '.';
    b[bar] = 0;
    snprintf(buf, n, "[%s] %s", b, rest);
    return strlen(buf);
}

void metrics_progress_init(struct metrics_progress *p, FILE *f) {
    p->f = f;
    const char *mode = getenv("CSFT_PROGRESS");
    p->tty = isatty(fileno(f)) && !(mode && strcmp(mode, "plain") == 0);
    p->width = 100;
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (p->tty && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        p->width = ws.ws_col;
    else if (cols && atoi(cols) > 0)
        p->width = atoi(cols);
    p->live = 0;
}

void metrics_progress_update(struct metrics_progress *p, const struct metrics_step *s) {
    char line[512];
    metrics_format_line(line, sizeof line, s, p->tty, p->width - 1);
    if (p->tty) {
        fprintf(p->f, "\r%s\x1b[K", line); /* \x1b[K: erase the rest of a longer previous line */
        p->live = 1;
    } else {
        fprintf(p->f, "%s\n", line);
    }
    fflush(p->f);
}

void metrics_progress_message(struct metrics_progress *p, const char *fmt, ...) {
    if (p->live) fputs("\r\x1b[K", p->f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->f, fmt, ap);
    va_end(ap);
    fputc('\n', p->f);
    p->live = 0;
    fflush(p->f);
}

void metrics_progress_end(struct metrics_progress *p) {
    if (p->live) fputc('\n', p->f);
    p->live = 0;
    fflush(p->f);
}
