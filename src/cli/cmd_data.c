/* cmd_data: `csft data cat FILE...` prints every record of the given datasets (JSON, JSONL,
 * .gz, Parquet, Arrow IPC, save_to_disk folders) as one JSON object per line, with the
 * dataset's own columns in the file's order and UTF-8 kept raw (our printer, not cJSON's, so
 * that 64-bit integers up to 2^53 print exactly). `csft data stats --config run.yaml` builds
 * the configured dataset (tokenizer, template, formatting, cache: train/pipeline.h) and
 * prints what training would see: counts, a length histogram, trained tokens, truncation,
 * records that train nothing, skipped rows, the cache, and the packing plan. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_config.h"
#include "cli/cmd_data_convert.h"
#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "data/pack.h"
#include "data/reader.h"
#include "core/nulstr.h"
#include "tok/tokenizer.h"
#include "model/model_config.h"
#include "train/pipeline.h"

static void data_usage(FILE *f) {
    fprintf(f, "usage: csft data cat [--offset N] [--limit N] [--skip-bad-rows] FILE...\n"
               "       csft data stats --config run.yaml [--eval] [--show N] [--set key.path=value]...\n"
               "       csft data convert --to mindrecord --out PATH (FILE... | --config run.yaml)  (see its --help)\n\n"
               "cat    print the records of each FILE as JSON Lines (the dataset's own columns, lists of\n"
               "       structs as arrays of objects). FILE: .json (a top-level array) or .jsonl, either\n"
               "       optionally .gz; .parquet; .arrow (Arrow IPC stream, as datasets writes) or .feather;\n"
               "       or a datasets save_to_disk folder; or MindRecord (a data file: its whole shard group; or a\n"
               "       folder of them). The files are read as one stream:\n"
               "  --offset N       skip the first N records\n"
               "  --limit N        print at most N records\n"
               "  --skip-bad-rows  skip rows that are malformed JSON, not objects, or invalid UTF-8, and\n"
               "                   report how many were skipped (default: such a row is an error)\n"
               "stats  build the configured train_dataset exactly as training would (tokenizer, chat\n"
               "       template, column_mapping, loss_on, truncation, seq_length, cache_dir) and print:\n"
               "       records read, sequences kept, bad rows skipped (skip_bad_rows), records truncated\n"
               "       or dropped by the truncation policy, records with zero trained tokens (a warning:\n"
               "       they train nothing and are left out), total and trained token counts, a histogram\n"
               "       of tokens per sequence, whether the pretokenized cache was hit, and with packing the\n"
               "       number of packed rows of seq_length and their fill. The tokenizer comes from\n"
               "       train_dataset.tokenizer / vocab_file or load_checkpoint (docs/data.md).\n"
               "  --config FILE    the run config (YAML)\n"
               "  --set K=V        override a config key (repeatable), e.g. --set train_dataset.seq_length=4096\n"
               "  --eval           use eval_dataset instead of train_dataset\n"
               "  --show N         also print the first N sequences as the model sees them: one token a\n"
               "                   line (position, id, label: the id when trained, -100 not; '*' marks\n"
               "                   trained tokens; the token's text as JSON), then each run of trained\n"
               "                   tokens decoded (\"trained: ...\"); colours on a terminal (NO_COLOR=1: none)\n"
               "       Exit status: 0 ok, 1 a data/config error (the message names file and row), 2 usage.\n");
}

/* Writes a number the way JSON.stringify / Python's json do for the values datasets hold:
 * integers exactly (cJSON's printer rounds those past 15 digits), others in the shortest
 * %g form that reads back to the same double; non-finite values as null. */
static void print_number(FILE *f, double d) {
    if (!isfinite(d)) {
        fputs("null", f);
        return;
    }
    if (d == 0) d = 0; /* -0 prints as 0 */
    if (d == floor(d) && fabs(d) < 1e17) {
        fprintf(f, "%.0f", d);
        return;
    }
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    fputs(buf, f);
}

/* Writes s as a JSON string: UTF-8 raw; escapes '"', '\\' and control characters. */
static void print_string(FILE *f, const char *s) {
    fputc('"', f);
    const char *run = s;
    for (;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == 0xC0 && (unsigned char)s[1] == 0x80) { /* U+0000, carried as C0 80 (core/nulstr.h) */
            fwrite(run, 1, (size_t)(s - run), f);
            fputs("\\u0000", f);
            run = ++s + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        fwrite(run, 1, (size_t)(s - run), f);
        if (!c) break;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default: fprintf(f, "\\u%04x", c);
        }
        run = s + 1;
    }
    fputc('"', f);
}

/* Writes a record compactly (no spaces), keys in the record's order. */
static void print_json(FILE *f, const cJSON *j) {
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        int obj = cJSON_IsObject(j);
        fputc(obj ? '{' : '[', f);
        for (const cJSON *c = j->child; c; c = c->next) {
            if (c != j->child) fputc(',', f);
            if (obj) {
                print_string(f, c->string ? c->string : "");
                fputc(':', f);
            }
            print_json(f, c);
        }
        fputc(obj ? '}' : ']', f);
    } else if (cJSON_IsString(j))
        print_string(f, j->valuestring);
    else if (cJSON_IsRaw(j)) /* numbers a reader spelled itself (MindRecord floats, int64 past 2^53) */
        fputs(j->valuestring, f);
    else if (cJSON_IsNumber(j))
        print_number(f, j->valuedouble);
    else if (cJSON_IsTrue(j))
        fputs("true", f);
    else if (cJSON_IsFalse(j))
        fputs("false", f);
    else
        fputs("null", f);
}

static int data_cat(int argc, char **argv) {
    long long offset = 0, limit = -1;
    int skip_bad = 0, n_files = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--offset") == 0) {
            if (cli_parse_count("--offset", i + 1 < argc ? argv[++i] : NULL, &offset)) goto usage_fail;
        } else if (strcmp(argv[i], "--limit") == 0) {
            if (cli_parse_count("--limit", i + 1 < argc ? argv[++i] : NULL, &limit)) goto usage_fail;
        } else if (strcmp(argv[i], "--skip-bad-rows") == 0)
            skip_bad = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            err_set("unknown option '%s' (see csft data --help)", argv[i]);
            goto usage_fail;
        } else
            files[n_files++] = argv[i];
    }
    if (!n_files) {
        err_set("no FILE given (see csft data --help)");
        goto usage_fail;
    }
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    long long seen = 0, printed = 0, skipped = 0;
    int status = 0;
    for (int k = 0; k < n_files && (limit < 0 || printed < limit) && !status; k++) {
        struct reader *r;
        if (reader_open_opts(&r, files[k], skip_bad)) {
            status = cli_fail("data cat");
            break;
        }
        cJSON *rec;
        int rc = 0;
        while ((limit < 0 || printed < limit) && (rc = reader_next(r, &rec)) == 1) {
            if (seen++ >= offset) {
                print_json(stdout, rec);
                fputc('\n', stdout);
                printed++;
            }
            cJSON_Delete(rec);
        }
        if ((limit < 0 || printed < limit) && rc < 0) status = cli_fail("data cat");
        skipped += reader_skipped(r);
        reader_close(r);
        if (ferror(stdout)) break;
    }
    if (fflush(stdout) != 0 && !status) {
        fprintf(stderr, "csft data cat: write error: %s\n", strerror(errno));
        status = 1;
    }
    if (skip_bad) fprintf(stderr, "csft data cat: %lld bad rows skipped\n", skipped);
    free(files);
    return status;
usage_fail:
    free(files);
    fprintf(stderr, "csft data cat: %s\n", err_msg());
    return 2;
}


static void print_count_line(const char *what, long long n, long long of) {
    if (of > 0) printf("  %-26s %12lld  (%.1f%%)\n", what, n, 100.0 * (double)n / (double)of);
    else printf("  %-26s %12lld\n", what, n);
}

/* The statistics of one built dataset (and its packing plan) on stdout. */
static void stats_print(const struct run_config *cfg, const struct config_dataset *d, const char *which,
                        const struct dataset *ds) {
    const struct dataset_stats *s = &ds->stats;
    static const char *trunc_names[] = {"right", "left", "drop", "error"};
    static const char *loss_names[] = {"assistant", "last_turn", "all"};
    printf("%s: %d file(s), format %s, loss_on %s, truncation %s, seq_length %d\n", which, d->n_data_files,
           data_format_name(d->format), loss_names[d->loss_on], trunc_names[d->truncation], d->seq_length);
    if (d->cache_dir && d->cache_dir[0])
        printf("  cache                      %s (%s)\n", s->from_cache ? "hit" : "miss, written",
               ds->cache_path ? ds->cache_path : d->cache_dir);
    else
        printf("  cache                      off (set %s.cache_dir to keep the tokenized data)\n", which);
    print_count_line("records read", s->n_records, 0);
    print_count_line("sequences kept", s->n_sequences, s->n_records);
    print_count_line("bad rows skipped", s->n_skipped_rows, 0);
    print_count_line("truncated", s->n_truncated, s->n_records);
    print_count_line("dropped (too long)", s->n_dropped, s->n_records);
    print_count_line("zero trained tokens", s->n_zero_trained, s->n_records);
    print_count_line("tokens", s->n_tokens, 0);
    print_count_line("trained tokens", s->n_trained_tokens, s->n_tokens);
    int64_t mx = 0, mn = ds->n ? INT64_MAX : 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t l = dataset_len(ds, i);
        if (l > mx) mx = l;
        if (l < mn) mn = l;
    }
    printf("  tokens per sequence        min %lld, mean %.1f, max %lld\n", (long long)mn,
           ds->n ? (double)s->n_tokens / (double)ds->n : 0.0, (long long)mx);
    printf("  histogram (tokens per sequence):\n");
    int64_t top = 1;
    for (int b = 0; b < 16; b++)
        if (s->hist[b] > top) top = s->hist[b];
    for (int b = 0; b < 16; b++) {
        if (!s->hist[b]) continue;
        char range[48];
        if (b == 15) snprintf(range, sizeof range, "[%lld, inf)", 1ll << b);
        else snprintf(range, sizeof range, "[%lld, %lld)", 1ll << b, 1ll << (b + 1));
        int w = (int)(40 * s->hist[b] / top);
        printf("    %-16s %10lld  ", range, (long long)s->hist[b]);
        for (int k = 0; k < (w ? w : 1); k++) putchar('#');
        putchar('\n');
    }
    if (d->packing && d->seq_length > 0) {
        struct pack_options po = {.packing = 1, .strategy = d->pack_strategy, .shuffle = d->shuffle, .seq_length = d->seq_length,
                                  .seed = (uint64_t)cfg->seed};
        struct row_plan p;
        double t0 = time_now();
        row_plan_build(&p, ds, &po, 0);
        double fill = p.n_rows ? (double)s->n_tokens / ((double)p.n_rows * d->seq_length) : 0;
        printf("  packing                    %lld rows of %d tokens, %.1f%% filled (%.3f s)\n", (long long)p.n_rows,
               d->seq_length, 100 * fill, time_now() - t0);
        row_plan_free(&p);
    } else {
        printf("  packing                    off: %lld rows, padded per batch\n", (long long)ds->n);
    }
    printf("  time                       %.3f s\n", s->seconds);
    if (s->n_zero_trained)
        fprintf(stderr,
                "warning: %lld record(s) have no trained token (e.g. no assistant turn, or the response cut "
                "by truncation) and are left out; check loss_on/truncation/seq_length\n",
                (long long)s->n_zero_trained);
    if (s->n_skipped_rows)
        fprintf(stderr, "warning: %lld bad row(s) skipped (skip_bad_rows)\n", (long long)s->n_skipped_rows);
}

/* --show: the first n sequences token by token with their labels. */
static int show_records(const struct tokenizer *tk, const struct dataset *ds, int64_t n) {
    int color = isatty(fileno(stdout)) && !getenv("NO_COLOR");
    const char *on = color ? "\033[1;32m" : "", *dim = color ? "\033[2m" : "", *off = color ? "\033[0m" : "";
    if (n > ds->n) n = ds->n;
    for (int64_t r = 0; r < n; r++) {
        int64_t a = ds->offsets[r], b = ds->offsets[r + 1], k = 0;
        for (int64_t i = a; i < b; i++)
            k += ds->mask[i] != 0;
        printf("sequence %lld: %lld tokens, %lld trained\n", (long long)r, (long long)(b - a), (long long)k);
        for (int64_t i = a; i < b; i++) {
            char *txt = NULL;
            size_t tl = 0;
            if (tokenizer_decode(tk, ds->ids + i, 1, 0, &txt, &tl)) return -1;
            cJSON *js = nul_create_string(txt, tl);
            char *j = nul_json_print(js);
            int tr = ds->mask[i] != 0;
            printf("%s%6lld %7d %7d %s %s%s\n", tr ? on : dim, (long long)(i - a), ds->ids[i], tr ? ds->ids[i] : -100,
                   tr ? "*" : " ", j, off);
            free(j), free(txt);
            cJSON_Delete(js);
        }
        for (int64_t i = a; i < b;) { /* runs of trained tokens, decoded together */
            if (!ds->mask[i]) {
                i++;
                continue;
            }
            int64_t e = i;
            while (e < b && ds->mask[e])
                e++;
            char *txt = NULL;
            size_t tl = 0;
            if (tokenizer_decode(tk, ds->ids + i, e - i, 0, &txt, &tl)) return -1;
            cJSON *js = nul_create_string(txt, tl);
            char *j = nul_json_print(js);
            printf("  trained [%lld, %lld): %s%s%s\n", (long long)(i - a), (long long)(e - a), on, j, off);
            free(j), free(txt);
            cJSON_Delete(js);
            i = e;
        }
    }
    return 0;
}

static int data_stats(int argc, char **argv) {
    int use_eval = 0, n = 0;
    long long show = 0;
    char **args = xcalloc((size_t)argc + 1, sizeof *args);
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--eval") == 0) use_eval = 1;
        else if (i > 0 && strcmp(argv[i], "--show") == 0) {
            char *end = NULL;
            show = i + 1 < argc ? strtoll(argv[i + 1], &end, 10) : -1;
            if (show < 0 || !end || *end || end == argv[i + 1]) {
                fprintf(stderr, "csft data stats: --show needs a count (N >= 0)\n");
                free(args);
                return 2;
            }
            i++;
        } else args[n++] = argv[i];
    }
    struct run_config cfg;
    int rc = cli_load_config(n, args, "data stats", NULL, 0, -1, &cfg);
    free(args);
    if (rc) return rc;
    const struct config_dataset *d = use_eval ? &cfg.eval_dataset : &cfg.train_dataset;
    const char *which = use_eval ? "eval_dataset" : "train_dataset";
    if (!d->n_data_files) {
        fprintf(stderr, "csft data stats: %s.data_files is empty\n", which);
        config_free(&cfg);
        return 1;
    }
    struct model_config mc, *mcp = NULL;
    char *mj = path_join(cfg.load_checkpoint, "config.json");
    if (file_exists(mj)) {
        if (model_config_load(&mc, cfg.load_checkpoint, 0)) {
            free(mj);
            config_free(&cfg);
            return cli_fail("data stats");
        }
        mcp = &mc;
    }
    free(mj);
    struct pipeline p;
    struct dataset *ds = NULL;
    rc = 0;
    if (pipeline_open_lazy(&p, &cfg, d, mcp, cfg.run_mode == RUN_MODE_TRAIN)) {
        err_wrap("%s", which);
        rc = cli_fail("data stats");
    } else {
        if (pipeline_dataset(&p, d, &ds)) {
            err_wrap("%s", which);
            rc = cli_fail("data stats");
        } else {
            stats_print(&cfg, d, which, ds);
            if (show > 0 && (pipeline_load_tokenizer(&p) || show_records(p.tk, ds, show))) {
                err_wrap("%s: --show", which);
                rc = cli_fail("data stats");
            }
            dataset_free(ds);
        }
        pipeline_close(&p);
    }
    config_free(&cfg);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        data_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "cat") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            data_usage(stdout);
            return 0;
        }
        return data_cat(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "stats") == 0) {
        if (cli_wants_help(argc - 1, argv + 1)) {
            data_usage(stdout);
            return 0;
        }
        return data_stats(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "convert") == 0) return cmd_data_convert(argc - 1, argv + 1);
    fprintf(stderr, "csft data: unknown subcommand '%s' (cat, stats, convert)\n", argv[1]);
    data_usage(stderr);
    return 2;
}
