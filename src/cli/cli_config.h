/* cli_config: the common options of the config-driven commands: --config FILE and
 * repeated --set key.path=value, plus command-specific flags translated into --set. */
#pragma once

#include "train/config.h"

struct cli_flag {
    const char *flag;     /* "--model" */
    const char *key;      /* "load_checkpoint" (value appended as key=value) */
    const char *also_set; /* an extra key=value set when the flag is given, or NULL */
    int boolean;          /* takes no value: sets key=true */
};

/* Parses argv[1..]; unknown options are an error (returns 2 after printing usage hints).
 * Returns 0 and a loaded, run-checked config, with the config's device selected (train/device.h); 1 on a config error (printed); 2 on bad usage. */
int cli_load_config(int argc, char **argv, const char *cmd, const struct cli_flag *flags, int n_flags,
                    int force_mode, struct run_config *cfg);

/* A flag's value as a non-negative integer; -1 with an error naming the flag otherwise. */
int cli_parse_count(const char *flag, const char *s, long long *out);
