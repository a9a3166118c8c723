/* neuromask: the command-line tool. Each subcommand is an entry of the
 * command table; it gets argv from its own name on and returns the exit code
 * (0 ok, 1 bad input or runtime error, 2 usage error). */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "cli_main.h"

int cmd_annotate(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_merge(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} cli_command;

static const cli_command commands[] = {
    { "annotate", cmd_annotate, "store the preprocessing recipe and class names in a model" },
    { "classify", cmd_classify, "top-k classes of images" },
    { "eval", cmd_eval, "score explanation methods: deletion/insertion AUC, sanity, gallery" },
    { "explain", cmd_explain, "explain images (NeuroMask, or --method NAME): mask, overlay, panel, JSON" },
    { "info", cmd_info, "inputs, outputs, ops, parameters and FLOPs of a model" },
    { "merge", cmd_merge, "put the shards of an eval run (job-array tasks) back together" },
};

static void print_usage(FILE *f)
{
    fprintf(f, "Usage: neuromask COMMAND [options] (neuromask COMMAND --help for details)\n"
               "Explain image classifiers exported to ONNX.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nOptions:\n  -h, --help     this help\n  --version      print the version\n");
}

int neuromask_main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("neuromask %s\n", NM_CLI_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    if (cmd[0] == '-') return cli_usage_error(NULL, "unknown option '%s' (see --help)", cmd);
    return cli_usage_error(NULL, "unknown command '%s' (see --help)", cmd);
}
