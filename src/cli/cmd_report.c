/* csft report: (re)writes the HTML report of a run from its output folder (train/report.h);
 * with several folders, their curves are overlaid for comparison. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"
#include "core/util.h"
#include "train/report.h"

static void usage(FILE *f) {
    fprintf(f, "usage: csft report OUTPUT_DIR [OTHER_DIR ...] [--out FILE]\n\n"
               "Writes OUTPUT_DIR/report.html (or FILE): one self-contained page with the run's curves (loss, eval\n"
               "loss, learning rate, grad norm, tokens/s, MFU, peak memory), model, method, data, checkpoints,\n"
               "best eval, early stopping and generations. The trainer writes the same page while it runs.\n"
               "OTHER_DIRs are overlaid on the charts (up to 8 runs in all). See docs/report.md.\n");
}

int cmd_report(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return usage(stdout), 0;
    const char **dirs = xcalloc((size_t)argc, sizeof(char *));
    const char *out = NULL;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "csft report: --out needs a value\n");
                return free(dirs), 2;
            }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "csft report: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return free(dirs), 2;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0) {
        usage(stderr);
        return free(dirs), 2;
    }
    char *path = out ? xstrdup(out) : path_join(dirs[0], "report.html");
    int rc = report_render(dirs, n, path);
    if (rc == 0) printf("wrote %s\n", path);
    free(path), free(dirs);
    return rc ? cli_fail("report") : 0;
}
