/* commands: one entry point per csft subcommand, each in its own src/cli/cmd_<name>.c.
 * Each returns the process exit status; only these functions (through main) print errors. */
#pragma once

struct command {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *summary;
};

int cmd_finetune(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_init_model(int argc, char **argv);
int cmd_reference_check(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Prints "csft <cmd>: <err_msg()>" to stderr and returns 1. */
int cli_fail(const char *cmd);
/* True if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);
