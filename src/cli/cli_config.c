/* cli_config: see cli_config.h. */
#include "cli/cli_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "train/device.h"

int cli_load_config(int argc, char **argv, const char *cmd, const struct cli_flag *flags, int n_flags,
                    int force_mode, struct run_config *cfg) {
    const char *path = NULL;
    char **sets = xcalloc((size_t)argc * 2 + 2, sizeof(char *));
    int n_sets = 0, rc = 0;
    if (force_mode >= 0) sets[n_sets++] = xasprintf("run_mode=%s", run_mode_name((enum run_mode)force_mode));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
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
    if (config_load(cfg, path, sets, n_sets) || config_check_run(cfg) || device_select(cfg)) {
        fprintf(stderr, "csft %s: %s\n", cmd, err_msg());
        rc = 1;
    }
out:
    for (int i = 0; i < n_sets; i++) free(sets[i]);
    free(sets);
    return rc;
}
