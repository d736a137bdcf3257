/* metrics: the training log sinks. One JSON object per logged step (and per eval) in
 * <output_dir>/metrics.jsonl, the same scalars as TensorBoard events in <output_dir>/tensorboard,
 * and the console progress line: a live \r bar on a TTY, plain lines otherwise (logs).
 * Tokens per second count real tokens only (no padding), as the trainer reports them. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct metrics_step {
    int64_t step;        /* optimizer steps done (1-based after the first step) */
    int64_t total_steps; /* planned optimizer steps */
    int64_t start_step;  /* step this process started at (0, or the resumed step): for the ETA */
    double epoch;        /* fractional epochs done, e.g. 1.25 */
    int n_epochs;
    double loss; /* mean loss per target token over the logging window */
    double lr;
    double grad_norm;      /* before clipping */
    double tokens_per_sec; /* real (non-pad) input tokens per second over the window */
    int64_t tokens;        /* real tokens seen so far */
    int64_t skipped_steps; /* steps skipped for a non-finite loss/grad norm so far */
    double elapsed;        /* seconds since this process started training */
    double mfu;            /* model FLOP utilisation over the window, 0..1 (train/mfu.h); 0 = unknown */
    double peak_mem_mib;   /* the process's peak resident memory; 0 = unknown */
};

struct metrics; /* opaque */

/* Opens <output_dir>/metrics.jsonl and, if tensorboard, an event file in
 * <output_dir>/tensorboard. resume_step < 0: start a new metrics.jsonl; else keep the lines of
 * an existing one whose step is <= resume_step (the lines logged after the checkpoint are
 * dropped, so a resumed run's log equals an uninterrupted one's). NULL + err on failure. */
struct metrics *metrics_open(const char *output_dir, bool tensorboard, int64_t resume_step);
/* Appends one step record (flushed, so tail -f shows it) and its TensorBoard scalars. */
int metrics_log_step(struct metrics *m, const struct metrics_step *s);
/* Appends {"step", "eval_loss", "eval_ppl", "eval_tokens"} and eval/loss, eval/perplexity. */
int metrics_log_eval(struct metrics *m, int64_t step, double eval_loss, int64_t eval_tokens);
/* Keeps the lines of a JSONL file whose "step" is <= keep_through (atomic rewrite; a torn last
 * line is dropped). */
int jsonl_keep_through_step(const char *path, int64_t keep_through);
/* Closes both sinks; NULL is fine. -1 + err if the last write failed. */
int metrics_close(struct metrics *m);
const char *metrics_path(const struct metrics *m);

/* The progress line without any control characters. tty = 1 adds a bar sized to fit width
 * columns; tty = 0 gives the plain log form. Returns strlen of what was written to buf. */
size_t metrics_format_line(char *buf, size_t n, const struct metrics_step *s, int tty, int width);
/* "1:02:03" or "02:03"; "--:--" for a negative or non-finite value. */
void metrics_format_duration(char *buf, size_t n, double seconds);

struct metrics_progress {
    FILE *f;
    int tty;   /* live \r updates */
    int width; /* terminal columns */
    int live;  /* a \r line is on screen */
};

/* tty from isatty(fileno(f)) unless the environment sets CSFT_PROGRESS=plain; width from
 * the terminal (or $COLUMNS, else 100). */
void metrics_progress_init(struct metrics_progress *p, FILE *f);
void metrics_progress_update(struct metrics_progress *p, const struct metrics_step *s);
/* A line of its own (eval results, checkpoint saved): clears a live bar first. */
void metrics_progress_message(struct metrics_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ends a live bar with a newline. */
void metrics_progress_end(struct metrics_progress *p);
