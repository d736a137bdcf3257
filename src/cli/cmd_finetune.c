/* csft finetune / train / run: the training commands, driven by one YAML config. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_config.h"
#include "cli/commands.h"
#include "core/err.h"
#include "dist/dist.h"
#include "train/trainer.h"

static void usage(const char *cmd) {
    printf("usage: csft %s --config run.yaml [--set key.path=value ...] [--peak-gflops X]\n\n", cmd);
    if (!strcmp(cmd, "finetune"))
        printf("Supervised fine-tuning (full or LoRA: model.model_config.pet_config) of load_checkpoint on\n"
               "train_dataset; loss on the assistant turns. Writes checkpoints and the final HF model folder or\n"
               "PEFT adapter folder to output_dir. Distributed: mpirun -np N csft finetune ...\n\n");
    else if (!strcmp(cmd, "train"))
        printf("Pretraining or continued pretraining: loss on the whole text of each record.\n\n");
    else
        printf("Runs the mode named by run_mode in the config (finetune, train, predict, eval).\n\n");
    printf("--peak-gflops X: the peak GFLOP/s of one process for the MFU column (= --set peak_gflops=X);\n"
           "by default it is measured once at start (docs/report.md).\n\n");
    printf("Configuration keys (also docs/config.md):\n\n");
    config_print_help(stdout);
}

int cmd_run_mode(struct run_config *cfg, const char *cmd);

static int train_cmd(int argc, char **argv, int mode, const char *cmd) {
    if (cli_wants_help(argc, argv)) return usage(cmd), 0;
    static const struct cli_flag flags[] = {{"--peak-gflops", "peak_gflops", NULL, 0}};
    struct run_config cfg;
    int rc = cli_load_config(argc, argv, cmd, flags, 1, mode, &cfg);
    if (rc) return rc;
    rc = cmd_run_mode(&cfg, cmd);
    config_free(&cfg);
    return rc;
}

int cmd_finetune(int argc, char **argv) { return train_cmd(argc, argv, RUN_MODE_FINETUNE, "finetune"); }
int cmd_train(int argc, char **argv) { return train_cmd(argc, argv, RUN_MODE_TRAIN, "train"); }
int cmd_run(int argc, char **argv) { return train_cmd(argc, argv, -1, "run"); }

int cmd_predict_config(struct run_config *cfg);
int cmd_eval_config(struct run_config *cfg);

int cmd_run_mode(struct run_config *cfg, const char *cmd) {
    switch (cfg->run_mode) {
    case RUN_MODE_PREDICT: return cmd_predict_config(cfg);
    case RUN_MODE_EVAL: return cmd_eval_config(cfg);
    default: break;
    }
    struct dist d;
    struct dist_grid g;
    if (dist_init(&d, NULL, NULL)) return cli_fail(cmd);
    const struct config_parallel *pc = &cfg->parallel_config;
    if (dist_grid_init(&g, &d, pc->data_parallel, pc->model_parallel, pc->pipeline_stage)) {
        if (d.world > 1) dist_abort(&d, "%s", err_msg());
        dist_finalize(&d);
        return cli_fail(cmd);
    }
    int rc = trainer_run(cfg, cfg->run_mode == RUN_MODE_TRAIN, &g);
    if (rc && d.world > 1) dist_abort(&d, "%s", err_msg()); /* ends every rank with the message */
    if (rc) fprintf(stderr, "csft %s: %s\n", cmd, err_msg());
    dist_grid_free(&g);
    dist_finalize(&d);
    return rc ? 1 : 0;
}
