/* cmd_data: `csft data cat FILE...` prints every record of the given datasets (JSON, JSONL,
 * .gz, Parquet, Arrow IPC, save_to_disk folders) as one JSON object per line, with the
 * dataset's own columns in the file's order and UTF-8 kept raw (our printer, not cJSON's, so
 * that 64-bit integers up to 2^53 print exactly). `csft data stats` needs the
 * tokenizer and a config; it is not part of this build yet. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "data/reader.h"

static void data_usage(FILE *f) {
    fprintf(f, "usage: csft data cat [--offset N] [--limit N] [--skip-bad-rows] FILE...\n"
               "       csft data stats --config run.yaml\n\n"
               "cat    print the records of each FILE as JSON Lines (the dataset's own columns, lists of\n"
               "       structs as arrays of objects). FILE: .json (a top-level array) or .jsonl, either\n"
               "       optionally .gz; .parquet; .arrow (Arrow IPC stream, as datasets writes) or .feather;\n"
               "       or a datasets save_to_disk folder. The files are read as one stream:\n"
               "  --offset N       skip the first N records\n"
               "  --limit N        print at most N records\n"
               "  --skip-bad-rows  skip rows that are malformed JSON, not objects, or invalid UTF-8, and\n"
               "                   report how many were skipped (default: such a row is an error)\n"
               "stats  record count, token-count histogram, trained tokens, truncated and zero-trained\n"
               "       records of the configured dataset (needs --config for the tokenizer/template)\n");
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
    else if (cJSON_IsNumber(j))
        print_number(f, j->valuedouble);
    else if (cJSON_IsTrue(j))
        fputs("true", f);
    else if (cJSON_IsFalse(j))
        fputs("false", f);
    else
        fputs("null", f);
}

static int parse_count(const char *flag, const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || errno || *end || end == s || v < 0)
        return err_set("%s expects a non-negative integer, got '%s'", flag, s ? s : "(nothing)");
    *out = v;
    return 0;
}

static int data_cat(int argc, char **argv) {
    long long offset = 0, limit = -1;
    int skip_bad = 0, n_files = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--offset") == 0) {
            if (parse_count("--offset", i + 1 < argc ? argv[++i] : NULL, &offset)) goto usage_fail;
        } else if (strcmp(argv[i], "--limit") == 0) {
            if (parse_count("--limit", i + 1 < argc ? argv[++i] : NULL, &limit)) goto usage_fail;
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
        fprintf(stderr, "csft data stats: not implemented in this build yet (it needs --config: a tokenizer "
                        "and chat template to count tokens)\n");
        return 2;
    }
    fprintf(stderr, "csft data: unknown subcommand '%s' (cat, stats)\n", argv[1]);
    data_usage(stderr);
    return 2;
}
