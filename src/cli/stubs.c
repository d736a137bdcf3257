/* stubs: weak placeholders for commands not built yet; a cmd_<name>.c defining the real
 * function replaces its stub at link time. Remove entries here as commands land. */
#include <stdio.h>

#include "cli/commands.h"

#define STUB(fn, name)                                                      \
    __attribute__((weak)) int fn(int argc, char **argv) {                  \
        (void)argc;                                                         \
        (void)argv;                                                         \
        fprintf(stderr, "csft %s: not implemented in this build\n", name); \
        return 2;                                                           \
    }

STUB(cmd_finetune, "finetune")
STUB(cmd_train, "train")
STUB(cmd_run, "run")
STUB(cmd_predict, "predict")
STUB(cmd_eval, "eval")
STUB(cmd_merge, "merge")
STUB(cmd_init_model, "init-model")
STUB(cmd_reference_check, "reference-check")
STUB(cmd_tokenize, "tokenize")
STUB(cmd_template, "template")
STUB(cmd_data, "data")
