/*
 * cli.h: what the subcommands share. Each subcommand lives in its own cmd_*.c and is
 * registered in the table in main.c. Subcommands return the process exit status; errors
 * are printed as one line "beard <cmd>: <reason>" on stderr with status 1 (2 for usage).
 */
#ifndef BEARD_CLI_H
#define BEARD_CLI_H

#include "../core/common.h"

int cmd_eval(int argc, char **argv);
int cmd_attack(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_evaluate(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_download(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int bench_distill(int argc, char **argv); // beard bench --distill (bench_distill.c)

// Matches argv[*i] against "--name" (value in the next argument) or "--name=value".
// On a match returns the value and advances *i past it; on "--name" without a value it
// prints a usage error and returns NULL with *missing set. Returns NULL when no match.
const char *cli_opt(int argc, char **argv, int *i, const char *name, int *missing);
// argv[*i] == "--name" (a flag without a value)
int cli_flag(char **argv, int i, const char *name);

// one-line error; returns 1 (usage errors: cli_usage_error returns 2)
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// parse helpers that print the error themselves; return 0 on success
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_num(const char *cmd, const char *opt, const char *s, double *out);

// ----------------------------------------------------------------------------
// loading what most subcommands need (cli_data.c); each prints its own error

#include "../attacks/runner.h"
#include "../data/dataset.h"

typedef struct {
    Dataset ds;
    const DatasetInfo *info;
    float *x; // (n, C, H, W) pixels in [0, 1]
    AttackData ad;
} CliTestSet;

// the test split of `dataset` from `dir` (default: ./data), at most `limit` images
int cli_load_testset(const char *cmd, const char *dataset, const char *dir, long limit, CliTestSet *ts);
void cli_testset_free(CliTestSet *ts);
int cli_load_model(const char *cmd, const char *path, const char *arch, const DatasetInfo *info, Net *net);

#endif
