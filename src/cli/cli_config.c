/* cli_config: see cli_config.h. */
#include "cli/cli_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "train/device.h"
#include "train/config_mindformers.h"

/* run_mindformer.py's flags: "--flag VALUE" or "--flag=VALUE"; returns the value or NULL. */
static const char *mf_flag(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n]) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

int cli_load_config(int argc, char **argv, const char *cmd, const struct cli_flag *flags, int n_flags,
                    int force_mode, struct run_config *cfg) {
    const char *path = NULL;
    char **sets = xcalloc((size_t)argc * 2 + 2, sizeof(char *));
    int n_sets = 0, rc = 0;
    if (force_mode >= 0) sets[n_sets++] = xasprintf("run_mode=%s", run_mode_name((enum run_mode)force_mode));
    struct mf_cli mf = {.strict = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int miss = 0;
        const char *v;
        struct {
            const char *name;
            const char **slot;
        } mf_flags[] = {{"--run_mode", &mf.run_mode},
                        {"--use_parallel", &mf.use_parallel},
                        {"--load_checkpoint", &mf.load_checkpoint},
                        {"--train_dataset_dir", &mf.train_dataset_dir},
                        {"--resume_training", &mf.resume_training},
                        {"--output_dir", &mf.output_dir},
                        {"--register_path", &mf.register_path},
                        {"--predict_data", &mf.predict_data}};
        int took = 0;
        for (size_t f = 0; f < sizeof mf_flags / sizeof mf_flags[0] && !took; f++) {
            if ((v = mf_flag(argc, argv, &i, mf_flags[f].name, &miss))) *mf_flags[f].slot = v, took = 1;
            if (miss) goto missing;
        }
        if (took) continue;
        if (!strcmp(a, "--config") || !strcmp(a, "-c")) {
            if (i + 1 >= argc) goto missing;
            path = argv[++i];
            continue;
        }
        if (!strcmp(a, "--set")) {
            if (i + 1 >= argc) goto missing;
            sets[n_sets++] = xstrdup(argv[++i]);
            continue;
        }
        if (!strncmp(a, "--set=", 6)) {
            sets[n_sets++] = xstrdup(a + 6);
            continue;
        }
        int found = 0;
        for (int f = 0; f < n_flags; f++) {
            if (strcmp(a, flags[f].flag) != 0) continue;
            found = 1;
            if (flags[f].boolean) sets[n_sets++] = xasprintf("%s=true", flags[f].key);
            else {
                if (i + 1 >= argc) goto missing;
                sets[n_sets++] = xasprintf("%s=%s", flags[f].key, argv[++i]);
            }
            if (flags[f].also_set) sets[n_sets++] = xstrdup(flags[f].also_set);
        }
        if (!found) {
            fprintf(stderr, "csft %s: unknown option '%s' (see csft %s --help)\n", cmd, a, cmd);
            rc = 2;
            goto out;
        }
        continue;
    missing:
        fprintf(stderr, "csft %s: %s needs a value\n", cmd, a);
        rc = 2;
        goto out;
    }
    int rank0 = env_int("OMPI_COMM_WORLD_RANK", env_int("PMI_RANK", 0)) == 0;
    if (path && config_mf_detect(path)) {
        /* MindSpore Transformers' layout: translated into native keys, then the user's --set */
        struct mf_translation tr;
        if (config_mf_translate(path, &mf, env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 1)), &tr)) {
            fprintf(stderr, "csft %s: %s\n", cmd, err_msg());
            rc = 1;
            goto out;
        }
        if (rank0) config_mf_print(&tr, path, stdout);
        char **all = xcalloc((size_t)(tr.n_sets + n_sets + 1), sizeof(char *));
        memcpy(all, tr.sets, sizeof(char *) * (size_t)tr.n_sets);
        if (n_sets) memcpy(all + tr.n_sets, sets, sizeof(char *) * (size_t)n_sets);
        int bad = config_load(cfg, NULL, all, tr.n_sets + n_sets) || config_check_run(cfg) || device_select(cfg);
        free(all);
        config_mf_translation_free(&tr);
        if (bad) {
            fprintf(stderr, "csft %s: %s (from the translation of %s)\n", cmd, err_msg(), path);
            rc = 1;
        }
        goto out;
    }
    /* run_mindformer.py's flags on a native config */
    if (mf.run_mode) sets[n_sets++] = xasprintf("run_mode=%s", mf.run_mode);
    if (mf.load_checkpoint) sets[n_sets++] = xasprintf("load_checkpoint=%s", mf.load_checkpoint);
    if (mf.output_dir) sets[n_sets++] = xasprintf("output_dir=%s", mf.output_dir);
    if (mf.predict_data)
        sets[n_sets++] = xasprintf("predict.%s=%s", file_exists(mf.predict_data) ? "input_file" : "prompt", mf.predict_data);
    if (mf.train_dataset_dir) sets[n_sets++] = xasprintf("train_dataset.data_files=[\"%s\"]", mf.train_dataset_dir);
    if (mf.resume_training) {
        int yes = !strcasecmp(mf.resume_training, "true"), no = !strcasecmp(mf.resume_training, "false");
        sets[n_sets++] = yes || no ? xasprintf("resume_training=%s", yes ? "true" : "false")
                                   : xasprintf("resume_from_checkpoint=%s", mf.resume_training);
    }
    if (rank0 && (mf.use_parallel || mf.register_path))
        printf("note: %s accepted and ignored (csft: parallel_config.data_parallel and mpirun -np N; models are built in)\n",
               mf.use_parallel ? "--use_parallel" : "--register_path");
    if (config_load(cfg, path, sets, n_sets) || config_check_run(cfg) || device_select(cfg)) {
        fprintf(stderr, "csft %s: %s\n", cmd, err_msg());
        rc = 1;
    }
out:
    for (int i = 0; i < n_sets; i++) free(sets[i]);
    free(sets);
    return rc;
}

int cli_parse_count(const char *flag, const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || errno || *end || end == s || v < 0)
        return err_set("%s expects a non-negative integer, got '%s'", flag, s ? s : "(nothing)");
    *out = v;
    return 0;
}
