/* main.c — the herd binary: `herd SUBCOMMAND ...`, git style. */
#include <stdio.h>
#include <string.h>
#include "src/cli/commands.h"

#define HERD_VERSION "0.1.0"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} herd_command;

static const herd_command commands[] = {
    {"train", herd_cmd_train, "train a model: herd train CONFIG.yaml [--set key=value]..."},
    {"config", herd_cmd_config, "print the resolved config, or every key: herd config [CONFIG] [--keys]"},
    {"data", herd_cmd_data, "token shards: herd data prepare|inspect ..."},
    {"report", herd_cmd_report, "plots of runs into one HTML page: herd report [--out DIR] RUN_DIR..."},
    {"topo", herd_cmd_topo, "discovered tree, placement and group bandwidths: herd topo [--conf F] [--layout T,C,P,D]"},
    {"check", herd_cmd_check, "preflight on the job's ranks: bindings, collectives, links, slow nodes: herd check CONFIG --out DIR"},
    {"plan", herd_cmd_plan, "predicted MFU per layout: herd plan --conf F --layout T,C,P,D | --rank | --table4"},
    {"ckpt", herd_cmd_ckpt, "checkpoints: herd ckpt ls|verify|average|export ..."},
    {"generate", herd_cmd_generate, "sample in the chat format (KV cache, batched) or chat: herd generate CONFIG --tokenizer R ..."},
    {"post", herd_cmd_post, "post-training: herd post sft|rm|dpo|rs|eval|demo-data ..."},
};

static int usage(FILE *f)
{
    fprintf(f, "herd %s — a fault-tolerant trainer for Llama 3 models\n\nusage: herd COMMAND [ARGS]\n\n",
            HERD_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-8s %s\n", "version", "print the version");
    return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("herd %s\n", HERD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "herd: '%s' is not a herd command\n\n", argv[1]);
    return usage(stderr);
}
