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
    {"distill", cmd_distill, "distil a training set (DM, IDM, BACON, DC, DSA, MTT; SRe2L, CDA, SC-DD, G-VBSM, DELT from a teacher)"},
    {"train", cmd_train, "train a model pool on a distilled set (BEARD/DC-bench recipe, DSA, adversarial training)"},
    {"buffer", cmd_buffer, "MTT's expert trajectories (buffer.py): replay_buffer_<n>.pt for trajectory matching"},
    {"relabel", cmd_relabel, "FKD-style stored soft labels (G-VBSM's .tar layout) for a distilled set, from teachers"},
    {"eval", cmd_eval, "clean accuracy of a checkpoint on a test set"},
    {"attack", cmd_attack, "run attacks (FGSM, PGD, CW, DeepFool, AutoAttack, ...) on a checkpoint"},
    {"bench", cmd_bench, "throughput of forward, forward+backward and a train step; --gemm for sgemm"},
    {"inspect", cmd_inspect, "print the object tree of a .pt/.pth/.pkl/.safetensors file"},
    {"evaluate", cmd_evaluate, "BEARD's evaluation stage from its evaluate_config.json: BEARD log + results.json"},
    {"metrics", cmd_metrics, "RR, AE, CREI (and ASR, AST, bootstrap CIs) from BEARD logs and results.json"},
    {"download", cmd_download, "fetch and verify a dataset (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)"},
    {"run", cmd_run, "the benchmark grid (train, attack, both semantics) into a resumable results store; MPI"},
    {"store", cmd_store, "look inside, export, merge and check the results store of beard run"},
    {"leaderboard", cmd_leaderboard, "BEARD's leaderboards and figures from the store: static HTML site, Markdown, CSV, JSON"},
    {"demo", cmd_demo, "a small end-to-end benchmark with a summary table (real data if found, else synthetic)"},
};

static void usage(FILE *f) {
    fprintf(f, "beard %s: the BEARD benchmark (adversarial robustness of dataset distillation) in C\n\n",
            BEARD_VERSION);
    fprintf(f, "usage: beard <command> [options]   (beard <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
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
    if (!strcmp(argv[1], "recover")) { // folded into the stage
        fprintf(stderr, "beard: 'recover' is now part of beard distill: beard distill --method SRe2L|CDA|SC-DD|G-VBSM|DELT "
                        "--teacher T.pth ... (beard distill --help)\n");
        return 2;
    }
    fprintf(stderr, "beard: unknown command '%s' (beard --help lists the commands)\n", argv[1]);
    return 2;
}
