/* csft: supervised fine-tuning of Hugging Face decoder models in C. Dispatches to one
 * command per file (commands.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/err.h"

static const struct command commands[] = {
    {"finetune", cmd_finetune, "fine-tune a model (full or LoRA) from a YAML config"},
    {"train", cmd_train, "pretrain or continue pretraining (loss on the whole text)"},
    {"run", cmd_run, "run the mode named by run_mode in the config"},
    {"predict", cmd_predict, "generate text from a model (optionally with an adapter)"},
    {"eval", cmd_eval, "loss and perplexity of a model on a dataset"},
    {"merge", cmd_merge, "merge a LoRA adapter into its base model"},
    {"init-model", cmd_init_model, "write a random-weight Qwen2/Llama model in HF layout"},
    {"reference-check", cmd_reference_check, "check the math against an HF reference fixture"},
    {"tokenize", cmd_tokenize, "tokenize text; --check against golden ids"},
    {"template", cmd_template, "render a chat template"},
    {"data", cmd_data, "inspect datasets: cat, stats"},
    {"convert", cmd_convert, "MindSpore .ckpt <-> Hugging Face model folder"},
    {"config", cmd_config, "config convert: a MindSpore Transformers config as native csft YAML"},
    {"report", cmd_report, "write report.html for a run (several runs: curves overlaid)"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

int cli_fail(const char *cmd) {
    fprintf(stderr, "csft %s: %s\n", cmd, err_msg());
    return 1;
}

int cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: csft <command> [options]   (csft <command> --help for details)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "csft: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
