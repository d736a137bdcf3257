/* report: <output_dir>/report.html, one self-contained page (inline SVG and CSS, a few lines
 * of inline script, no network) that shows a run at a glance: loss, eval loss, learning rate,
 * gradient norm, tokens/s, MFU and peak memory against the step (epochs marked), and a header
 * with the model, method, data, progress (elapsed, ETA), checkpoints, best eval / early
 * stopping, generations at each eval and the resolved config.
 *
 * The page is rendered from files in the output folder only, so the trainer and `csft report`
 * produce the same page: metrics.jsonl (metrics.h), run_info.json (report_write_info, at the
 * start of each process), events.jsonl (report_event: checkpoints, best eval, early stop,
 * generations, resume, end) and config.yaml. Every curve carries its numbers as data attributes
 * (data-metric, data-steps, data-values: the metrics.jsonl values, %.9g) for tools and tests. */
#pragma once
#include <stdint.h>

#include "data/dataset.h"

struct cJSON;

struct report_info {
    const char *model_path, *arch;
    int n_layers;
    int64_t n_params, n_trainable;
    int lora, lora_rank;
    int world;
    int64_t total_steps, steps_per_epoch, resume_step; /* resume_step: -1 when not resumed */
    int seq_length, packing;
    const struct dataset_stats *train, *eval; /* eval may be NULL */
    double packing_efficiency;                /* real tokens / (rows per epoch * seq_length) */
    double peak_gflops;                       /* 0 = unknown */
    int peak_measured;                        /* 1 measured, 0 given (peak_gflops) */
    double flops_per_token;
    int save_best, load_best_at_end, early_stopping_patience;
};

/* Writes <output_dir>/run_info.json (atomically). */
int report_write_info(const char *output_dir, const struct report_info *info);
/* Appends {"step": step, "event": event, ...fields} to <output_dir>/events.jsonl (flushed).
 * fields: a cJSON object whose items are moved into the line (freed), or NULL. */
int report_event(const char *output_dir, int64_t step, const char *event, struct cJSON *fields);
/* Starts events.jsonl for a run: a fresh one (resume_step < 0) or the lines up to resume_step. */
int report_events_open(const char *output_dir, int64_t resume_step);

/* Renders the page of dirs[0] (its header) with the curves of every dir overlaid, into out_path
 * (atomic: temp + rename). A dir without metrics.jsonl is an error naming it. */
int report_render(const char *const *dirs, int n_dirs, const char *out_path);

/* The trainer's writer: report_writer_update rewrites <output_dir>/report.html unless that
 * would take the time spent writing it past 0.5% of the time since report_writer_init (the
 * next write is assumed to cost what the last one did), so the report costs well under 1% of
 * the run (bench/report_bench.c measures it); the first write and forced ones (the end of the run)
 * always happen. Callers update after each log line, eval and checkpoint. */
struct report_writer {
    char *output_dir, *path;
    double last_end, last_cost; /* time_now() after the last write; its seconds */
    double t_start;             /* time_now() at report_writer_init */
    double total;               /* seconds spent writing */
    int n_writes, n_skipped;
};
void report_writer_init(struct report_writer *w, const char *output_dir);
int report_writer_update(struct report_writer *w, int force);
void report_writer_free(struct report_writer *w);
