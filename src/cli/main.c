/*
 * main.c: the beard command line. One table maps subcommand names to their cmd_* entry
 * points; everything else lives in the cmd_*.c files.
 */
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "../core/parallel.h"
#include "../models/registry.h"
#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"train", cmd_train, "train a model pool on a distilled set (BEARD/DC-bench recipe, DSA, adversarial training)"},
    {"eval", cmd_eval, "clean accuracy of a checkpoint on a test set"},
    {"attack", cmd_attack, "run attacks (FGSM, PGD, CW, DeepFool, AutoAttack, ...) on a checkpoint"},
    {"bench", cmd_bench, "throughput of forward, forward+backward and a train step; --gemm for sgemm"},
    {"inspect", cmd_inspect, "print the object tree of a .pt/.pth/.pkl/.safetensors file"},
    {"evaluate", cmd_evaluate, "BEARD's evaluation stage from its evaluate_config.json: BEARD log + results.json"},
    {"metrics", cmd_metrics, "RR, AE, CREI (and ASR, AST, bootstrap CIs) from BEARD logs and results.json"},
    {"download", cmd_download, "fetch and verify a dataset (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)"},
    {"demo", cmd_demo, "a small end-to-end benchmark with a summary table (real data if found, else synthetic)"},
};

static void usage(FILE *f) {
    fprintf(f, "beard %s: the BEARD benchmark (adversarial robustness of dataset distillation) in C\n\n",
            BEARD_VERSION);
    fprintf(f, "usage: beard <command> [options]   (beard <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\narchitectures (--arch, and BEARD configs' \"model\"; names are case-insensitive):\n");
    model_print_list(f, "  ");
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("beard %s\n", BEARD_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "beard: unknown command '%s' (beard --help lists the commands)\n", argv[1]);
    return 2;
}
