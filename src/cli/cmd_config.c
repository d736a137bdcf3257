/* csft config convert THEIR.yaml: a MindSpore Transformers config translated into csft's native
 * YAML (stdout); the translation notes and the ignored-keys warning go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "train/config.h"
#include "train/config_mindformers.h"

static void usage(FILE *f) {
    fprintf(f, "usage: csft config convert CONFIG.yaml [--world N] [run_mindformer.py flags] [--set key.path=value ...]\n\n"
               "Prints the native csft config (YAML) that a MindSpore Transformers config means (docs/mindformers.md):\n"
               "every key honoured with their semantics, the parallel layout folded into data parallelism with the\n"
               "same global batch (--world N: for N processes; default: the device count their parallel_config\n"
               "names). Notes and the MindSpore-only keys that are ignored go to stderr. A native config is printed\n"
               "resolved (defaults filled in). run_mindformer.py's flags (--use_parallel, --load_checkpoint,\n"
               "--train_dataset_dir, --output_dir, --run_mode, --resume_training, --register_path) apply as in csft run.\n");
}

int cmd_config(int argc, char **argv) {
    if (cli_wants_help(argc, argv) || argc < 3 || strcmp(argv[1], "convert")) {
        usage(argc < 3 ? stderr : stdout);
        return cli_wants_help(argc, argv) ? 0 : 2;
    }
    const char *path = argv[2];
    int world = 0;
    char **sets = xcalloc((size_t)argc, sizeof(char *));
    int n_sets = 0, rc = 1;
    struct mf_cli mf = {0};
    for (int i = 3; i < argc; i++) {
        const char *const names[] = {"--run_mode", "--use_parallel", "--load_checkpoint", "--train_dataset_dir",
                                     "--resume_training", "--output_dir", "--register_path", "--predict_data"};
        const char **slots[] = {&mf.run_mode, &mf.use_parallel, &mf.load_checkpoint, &mf.train_dataset_dir,
                                &mf.resume_training, &mf.output_dir, &mf.register_path, &mf.predict_data};
        int took = 0;
        for (int k = 0; k < 8 && !took; k++)
            if (!strcmp(argv[i], names[k]) && i + 1 < argc) *slots[k] = argv[++i], took = 1;
        if (took) continue;
        if (!strcmp(argv[i], "--world") && i + 1 < argc) world = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) sets[n_sets++] = argv[++i];
        else {
            fprintf(stderr, "csft config convert: unknown option '%s'\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    struct run_config cfg;
    if (config_mf_detect(path)) {
        struct mf_translation tr;
        if (config_mf_translate(path, &mf, world, &tr)) {
            free(sets);
            return cli_fail("config convert");
        }
        config_mf_print(&tr, path, stderr);
        char **all = xcalloc((size_t)(tr.n_sets + n_sets + 1), sizeof(char *));
        memcpy(all, tr.sets, sizeof(char *) * (size_t)tr.n_sets);
        if (n_sets) memcpy(all + tr.n_sets, sets, sizeof(char *) * (size_t)n_sets);
        rc = config_load(&cfg, NULL, all, tr.n_sets + n_sets);
        free(all);
        config_mf_translation_free(&tr);
    } else {
        fprintf(stderr, "%s: not a MindSpore Transformers config; printing it resolved\n", path);
        rc = config_load(&cfg, path, sets, n_sets);
    }
    free(sets);
    if (rc) return cli_fail("config convert");
    config_dump_yaml(&cfg, stdout);
    config_free(&cfg);
    return 0;
}
