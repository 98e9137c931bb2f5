/*
 * eval_config.h: the configuration of `beard evaluate`, read from BEARD's own
 * evaluate_config.json (github zhouzhengqd/BEARD, Code/evaluate_model.py) and extended
 * with beard's keys.
 *
 * BEARD's keys, as its argparse defines them (config values override argparse's):
 *   dataset, model (the architecture), method, ipc (string or integer), load_file,
 *   save_path, data_path, test_attack (list of names, "Clean" for the clean pass),
 *   target_attack (list of booleans, evaluated in that order), src_dataset, aug,
 *   dsa_strategy, num_eval
 * and the training keys evaluate_model.py also accepts but that do not change an
 * evaluation (type-checked, recorded, otherwise unused):
 *   syn_ce, ce_weight, train_attack, pgd_eva, eval_mode, epoch_eval_train, Iteration,
 *   lr_net, batch_train, eval_interval
 * beard's keys:
 *   semantics ("beard" default: BEARD's numbers; "pixel": the standard threat model),
 *   target_policy ("beard" default: (y+1) mod 10), preset ("beard" default: the
 *   parameters BEARD passes), n_examples (0: the whole test split), seed, threads,
 *   batch (256, BEARD's test loader), attack_params ({"PGD": {"steps": 20}} overrides,
 *   numbers or text such as "8/255"), per_sample (per-sample arrays in results.json,
 *   default true), per_sample_csv (default false), results_json (path; default
 *   {save_path}/{method}_{model}_{dataset}_{ipc}_results.json).
 * The black-box evaluation (BEARD's evaluate_config_blackbox.json) adds
 *   load_file_model_<NAME>: the checkpoints the examples are scored on (BEARD's code has
 *   DC, DSA, MTT, DM, IDM, BACON and ROME; any word works here), and beard's
 *   surrogates: "all" (default) crafts on each listed model in turn, "load_file" only on
 *   load_file, as BEARD's script does (see src/evaluate/blackbox.h).
 *
 * Deliberate differences from BEARD: BEARD silently ignores keys it does not know; here
 * they produce a warning. An attack name beard does not know is an error (as in
 * `beard attack`), not a skipped line. method, model, dataset and ipc become file names
 * and must pass file_name_check (src/io/file.h): "../x" or a name with '/' is refused. A value of the wrong type is an error naming the key (BEARD
 * would fail later, or iterate over the characters of a string). BEARD's argparse
 * defaults for test_attack ('None') and target_attack (True) are not lists and make
 * evaluate_model.py fail; here test_attack is required and target_attack defaults to
 * [true, false]. aug = true (test-time DSA augmentation) is not implemented: a warning,
 * and the run is made without it. num_eval > 0 (repeated evaluations) is not
 * implemented either: a warning, and one evaluation is made.
 */
#ifndef BEARD_EVAL_CONFIG_H
#define BEARD_EVAL_CONFIG_H

#include <cjson/cJSON.h>

#include "../attacks/attack.h"
#include "../attacks/runner.h"

#define EVAL_MAX_ATTACKS 32
#define EVAL_MAX_WARNINGS 32
#define EVAL_MAX_IPC 100000 // images per class (CIFAR-10 has 5000, ImageNet-1k about 1300)
#define EVAL_MAX_MODELS 16

typedef struct {
    char name[32];          // the config's spelling, used in the log ("Deepfool")
    int clean;              // "Clean" (case-insensitive): the clean pass
    const AttackDef *def;   // NULL for Clean, and for names this build does not know
    AttackParams params;    // the preset's values with the config's overrides
} EvalAttackSpec;

typedef struct {
    // BEARD's keys
    char dataset[32], model[32], method[64], ipc[16];
    char load_file[1024], save_path[1024], data_path[1024];
    int n_attacks;
    EvalAttackSpec attacks[EVAL_MAX_ATTACKS];
    int n_targets;
    int targets[2];          // target_attack, in order: 1 targeted, 0 untargeted
    int src_dataset, aug, dsa, num_eval;
    char dsa_strategy[128];
    // beard's keys
    Semantics sem;
    TargetPolicy policy;
    Preset preset;
    long n_examples;
    uint64_t seed;
    int threads, batch;
    int per_sample, per_sample_csv;
    char results_json[1024];  // "" for the default name
    // BEARD's black-box evaluation (Code/evaluate_model_blackbox.py): the models of the
    // config's load_file_model_<NAME> keys, in BEARD's order (DC, DSA, MTT, DM, IDM,
    // BACON, ROME) and then the others in the config's order; none: a white-box run
    int n_models;
    char model_names[EVAL_MAX_MODELS][32];
    char model_files[EVAL_MAX_MODELS][1024];
    // not from the file: the training split, for attacks that train (LGV); the caller
    // loads it when eval_config_needs_train says so, NULL otherwise
    const AttackTrainSet *train;
    int surrogates_all;       // beard's "surrogates": "all" (default: craft on every listed
                              // model in turn) or "load_file" (BEARD: craft on load_file only)
    // what the reader had to say (unknown keys, ignored settings)
    int n_warnings;
    char warnings[EVAL_MAX_WARNINGS][256];
} EvalConfig;

void eval_config_defaults(EvalConfig *c);
// Fills c from a parsed JSON object (defaults first). Errors name the key.
int eval_config_from_json(EvalConfig *c, const cJSON *root, Err *e);
// whether an attack of the config trains models of its own (LGV) and needs the training split
int eval_config_needs_train(const EvalConfig *c);
// reads and parses a file
int eval_config_load(EvalConfig *c, const char *path, Err *e);
// the configuration as it will be used (every key, defaults filled in)
cJSON *eval_config_to_json(const EvalConfig *c);
// {save_path}/{method}_{model}_{dataset}_{ipc}_<suffix>, the names BEARD's released
// files carry (BACON_ConvNet_CIFAR10_50_evaluation_log.txt): with the method in the name,
// two methods in one save_path never share a file. -1 when it does not fit.
int eval_config_output_path(const EvalConfig *c, const char *suffix, char *buf, size_t n, Err *e);

#endif
