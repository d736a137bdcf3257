/* report_bench: what report.html costs a long run. Simulates a run of --steps optimizer steps
 * of --step-ms milliseconds each (the "training" is a sleep, so the bench measures the writer
 * alone), logging every step (the worst case: logging_steps 1) into metrics.jsonl with an eval
 * every --eval-every steps, and calls the trainer's writer (report_writer_update) after each
 * log line and once forced at the end, as the trainer does. Prints the cost of one render at
 * the end of the run and the share of the run's time spent writing the report.
 *   build/bench/report_bench [--steps 10000] [--step-ms 20] [--eval-every 500] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "train/report.h"

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000 * (double)(time_t)(ms / 1000)) * 1e6)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    long steps = 10000, eval_every = 500;
    double step_ms = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps")) steps = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--step-ms")) step_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--eval-every")) eval_every = atol(argv[i + 1]);
    }
    const char *dir = "build/bench/report_run";
    if (system("rm -rf build/bench/report_run && mkdir -p build/bench/report_run") != 0) return 1;
    char *mp = path_join(dir, "metrics.jsonl");
    FILE *m = fopen(mp, "w");
    struct report_writer w;
    report_writer_init(&w, dir);
    report_events_open(dir, -1);
    double t0 = time_now(), busy = 0;
    for (long s = 1; s <= steps; s++) {
        double ts = time_now();
        sleep_ms(step_ms);
        busy += time_now() - ts;
        double loss = 2.0 + 1.0 / (1.0 + s * 0.01);
        fprintf(m,
                "{\"step\":%ld,\"epoch\":%.6f,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens\":%ld,\"tokens_per_sec\":%.9g,"
                "\"skipped_steps\":0,\"elapsed\":%.6f,\"wall_time\":%.6f,\"mfu\":%.9g,\"peak_mem_mib\":%.9g}\n",
                s, 3.0 * s / steps, loss, 1e-4 * (1 - (double)s / steps), 1.0 + 0.1 * (s % 7), s * 4096, 8000.0 + s % 13,
                time_now() - t0, 1.7e9 + time_now() - t0, 0.31 + 0.001 * (s % 5), 20480.0);
        int ev = eval_every > 0 && s % eval_every == 0;
        if (ev) fprintf(m, "{\"step\":%ld,\"eval_loss\":%.9g,\"eval_ppl\":1,\"eval_tokens\":1000}\n", s, loss + 0.1);
        fflush(m);
        report_writer_update(&w, 0);
    }
    fclose(m);
    report_writer_update(&w, 1); /* the trainer's write at the end */
    double total = time_now() - t0, t1 = time_now();
    const char *dirs[1] = {dir};
    report_render(dirs, 1, "build/bench/report_run/report.html");
    double one = time_now() - t1;
    printf("report_bench: %ld steps of %.1f ms logged every step, eval every %ld: %d writes (%d skipped by the throttle), "
           "%.3f s writing = %.3f%% of the run's %.1f s (%.4f ms per step); one render at %ld steps: %.1f ms\n",
           steps, step_ms, eval_every, w.n_writes, w.n_skipped, w.total, 100 * w.total / total, total, 1e3 * w.total / steps, steps,
           1e3 * one);
    report_writer_free(&w);
    free(mp);
    return 0;
}
