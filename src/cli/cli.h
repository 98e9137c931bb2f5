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
int cmd_run(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_leaderboard(int argc, char **argv);
int cmd_buffer(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int bench_distill(int argc, char **argv); // beard bench --distill (bench_distill.c)
int cmd_relabel(int argc, char **argv);

// Matches argv[*i] against "--name" (value in the next argument) or "--name=value".
// On a match returns the value and advances *i past it; on "--name" without a value it
// prints a usage error and returns NULL with *missing set. Returns NULL when no match.
const char *cli_opt(int argc, char **argv, int *i, const char *name, int *missing);
// The same for a canonical name and its aliases, comma-separated: "--limit,--n-examples"
// (CONVENTIONS.md: one name per concept, the old spellings kept as aliases)
const char *cli_opt_any(int argc, char **argv, int *i, const char *names, int *missing);
// argv[*i] == "--name" (a flag without a value)
int cli_flag(char **argv, int i, const char *name);

// --quiet: no progress bar, in this process and its helpers (BEARD_NO_PROGRESS=1)
void cli_quiet(void);

// one-line error; returns 1 (usage errors: cli_usage_error returns 2)
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Output paths, checked before any long work (src/io/file.h); print
// "beard <cmd>: <opt>: <why>" and return 1 when not writable. A file's folder must exist
// (a typo in --json must not grow a folder tree); an output folder is made when missing.
int cli_check_output_file(const char *cmd, const char *opt, const char *path);
int cli_check_output_dir(const char *cmd, const char *opt, const char *dir);
// Writes a JSON document (pretty-printed, newline-terminated) atomically; prints the
// error and returns 1 on failure
struct cJSON;
int cli_write_json(const char *cmd, const char *path, const struct cJSON *root);

// parse helpers that print the error themselves; return 0 on success
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_num(const char *cmd, const char *opt, const char *s, double *out);

// a comma-separated list of checkpoints and their architectures (one for all, or one per
// checkpoint): malloc'd strings in paths and arch_out, *n of each (cli_free_strings);
// prints the usage error itself and returns -1 when the lists do not fit together
int cli_split_models(const char *cmd, const char *models, const char *archs, const char *opt, const char *arch_opt,
                     int max, char **paths, char **arch_out, int *n);
void cli_free_strings(char **s, int n);

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
// the same for either split (train 1: the training split)
int cli_load_split(const char *cmd, const char *dataset, const char *dir, int train, long limit, CliTestSet *ts);
void cli_testset_free(CliTestSet *ts);
int cli_load_model(const char *cmd, const char *path, const char *arch, const DatasetInfo *info, Net *net);

// BEARD's evaluate_config.json (cmd_evaluate.c) with the command line's overrides merged
// in before validation (NULL, or -1 for the numbers: the config's value); prints the
// reader's warnings. *cfg is malloc'ed. Returns 0, or 1 after printing the error.
#include "../evaluate/eval_config.h"
typedef struct {
    const char *load_file, *data_path, *save_path, *semantics, *results_json;
    const char *attacks; // "Clean,FGSM,...": replaces test_attack
    long n_examples, seed, threads, batch;
    int per_sample_csv, no_per_sample;
} CliEvalOverrides;
int cli_eval_config_read(const char *cmd, const char *path, const CliEvalOverrides *ov, EvalConfig **cfg);

#endif
