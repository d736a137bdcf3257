/* Tests for src/train/metrics: the progress line (plain and TTY bar), durations, the JSONL
 * file (fields, eval records, resume truncation of steps after the checkpoint and of a torn
 * line), and the TensorBoard file next to it. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "test.h"
#include "train/metrics.h"

static struct metrics_step sample(void) {
    struct metrics_step s = {.step = 120,
                             .total_steps = 1000,
                             .start_step = 20,
                             .epoch = 1.2,
                             .n_epochs = 3,
                             .loss = 2.345678,
                             .lr = 1e-4,
                             .grad_norm = 0.8734,
                             .tokens_per_sec = 12345,
                             .tokens = 999,
                             .elapsed = 83};
    return s;
}

static void test_format(void) {
    struct metrics_step s = sample();
    char buf[512];
    metrics_format_line(buf, sizeof buf, &s, 0, 0);
    /* ETA: 880 steps left at 100 steps / 83 s */
    EXPECT_STR(buf,
               "step 120/1000 | epoch 1.20/3 | loss 2.3457 | lr 1.000e-04 | grad_norm 0.873 | 12.3k tok/s | "
               "elapsed 01:23 | ETA 12:10");
    metrics_format_line(buf, sizeof buf, &s, 1, 120); /* exactly 120 columns */
    EXPECT_STR(
        buf, "[###......................]  12% 120/1000 | ep 1.20/3 | loss 2.3457 | lr 1.00e-04 | gn 0.873 | "
             "12.3k tok/s | 01:23<12:10");
    metrics_format_line(buf, sizeof buf, &s, 1, 105);
    EXPECT(strncmp(buf, "[#.........]  12%", 17) == 0 && strlen(buf) == 105, "narrow bar: %s", buf);
    metrics_format_line(buf, sizeof buf, &s, 1, 40);
    EXPECT(strncmp(buf, " 12% 120/1000", 13) == 0, "no room for a bar: %s", buf);
    s.step = s.start_step = 0;
    s.skipped_steps = 2;
    s.tokens_per_sec = 812;
    metrics_format_line(buf, sizeof buf, &s, 0, 0);
    EXPECT(strstr(buf, "| 812 tok/s |") && strstr(buf, "ETA --:-- | skipped 2"), "%s", buf);
    char d[32];
    metrics_format_duration(d, sizeof d, 3723.4);
    EXPECT_STR(d, "1:02:03");
    metrics_format_duration(d, sizeof d, 59.6);
    EXPECT_STR(d, "01:00");
    metrics_format_duration(d, sizeof d, NAN);
    EXPECT_STR(d, "--:--");
}

static void test_progress(void) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct metrics_progress p;
    metrics_progress_init(&p, f);
    EXPECT(!p.tty, "a memstream is not a tty");
    struct metrics_step s = sample();
    metrics_progress_update(&p, &s);
    metrics_progress_message(&p, "eval loss %.3f", 1.5);
    metrics_progress_end(&p);
    fflush(f);
    EXPECT(strncmp(out, "step 120/1000 |", 15) == 0 && strstr(out, "ETA 12:10\neval loss 1.500\n") &&
               !strchr(out, '\r'),
           "plain: %s", out);
    fclose(f);
    free(out);
    f = open_memstream(&out, &len);
    metrics_progress_init(&p, f);
    p.tty = 1; /* as on a terminal */
    p.width = 121;
    metrics_progress_update(&p, &s);
    s.step = 130;
    metrics_progress_update(&p, &s);
    metrics_progress_message(&p, "saved checkpoint-130");
    metrics_progress_update(&p, &s);
    metrics_progress_end(&p);
    fflush(f);
    EXPECT(strncmp(out, "\r[###...", 8) == 0, "live bar: %s", out);
    EXPECT(strstr(out, "\x1b[K\r[###...") && strstr(out, " 13% 130/1000"), "redrawn in place");
    EXPECT(strstr(out, "\r\x1b[Ksaved checkpoint-130\n\r["), "message clears the bar");
    EXPECT(out[len - 1] == '\n' && strchr(out, '\n') != out + len - 1, "ends with a newline");
    fclose(f);
    free(out);
}

static int count_lines(const char *path, int64_t *last_step) {
    char *t = file_read_all(path, NULL);
    if (!t) return -1;
    int n = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) {
            n = -100;
            break;
        }
        *last_step = (int64_t)cJSON_GetObjectItem(j, "step")->valuedouble;
        cJSON_Delete(j);
        n++;
    }
    free(t);
    return n;
}

static void test_jsonl(void) {
    char dir[128], cmd[200];
    snprintf(dir, sizeof dir, "/tmp/csft_test_metrics_%d", (int)getpid());
    struct metrics *m = metrics_open(dir, true, -1);
    EXPECT(m, "%s", err_msg());
    if (!m) return;
    struct metrics_step s = sample();
    for (int i = 1; i <= 5; i++) {
        s.step = i * 10;
        s.loss = 3.0 / i;
        EXPECT(metrics_log_step(m, &s) == 0, "%s", err_msg());
    }
    s.step = 60;
    s.loss = NAN;
    EXPECT(metrics_log_step(m, &s) == 0, "non-finite loss is logged as null");
    EXPECT(metrics_log_eval(m, 50, log(4.0), 1234) == 0, "%s", err_msg());
    char *path = xstrdup(metrics_path(m));
    EXPECT(metrics_close(m) == 0, "%s", err_msg());
    char *t = file_read_all(path, NULL);
    static const char first[] =
        "{\"step\":10,\"epoch\":1.2,\"loss\":3,\"lr\":0.0001,\"grad_norm\":0.8734,\"tokens\":999,"
        "\"tokens_per_sec\":12345,\"skipped_steps\":0,\"elapsed\":83,\"wall_time\":";
    EXPECT(t && strncmp(t, first, strlen(first)) == 0, "first line: %s", t ? t : "(null)");
    EXPECT(t && strstr(t, "{\"step\":60,\"epoch\":1.2,\"loss\":null,"), "NaN as null");
    EXPECT(
        t && strstr(t, "{\"step\":50,\"eval_loss\":1.3862943611198906,\"eval_ppl\":4,\"eval_tokens\":1234,"),
        "eval line");
    free(t);
    /* a torn line from a kill, then resume from the checkpoint at step 30 */
    FILE *f = fopen(path, "a");
    fputs("{\"step\":70,\"lo", f);
    fclose(f);
    m = metrics_open(dir, false, 30);
    EXPECT(m, "%s", err_msg());
    s.step = 40;
    s.loss = 0.5;
    EXPECT(m && metrics_log_step(m, &s) == 0, "%s", err_msg());
    EXPECT(metrics_close(m) == 0, "close");
    int64_t last = 0;
    EXPECT(count_lines(path, &last) == 4 && last == 40, "steps 10,20,30 kept, then 40 (lines %d)",
           count_lines(path, &last));
    /* the TensorBoard file is there */
    snprintf(cmd, sizeof cmd, "%s/tensorboard", dir);
    DIR *d = opendir(cmd);
    int n_ev = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n_ev += strncmp(e->d_name, "events.out.tfevents.", 20) == 0;
    if (d) closedir(d);
    EXPECT(n_ev == 1, "event files %d", n_ev);
    free(path);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    EXPECT(system(cmd) == 0, "cleanup");
    EXPECT(metrics_open("/proc/csft_no", false, -1) == NULL, "unwritable");
    EXPECT_ERR("/proc/csft_no");
}

int main(void) {
    RUN(test_format);
    RUN(test_progress);
    RUN(test_jsonl);
    return TEST_SUMMARY("metrics");
}
