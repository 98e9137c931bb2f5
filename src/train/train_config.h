/*
 * train_config.h: everything `beard train` can be told, in one struct, filled in three
 * layers: beard's defaults (BEARD/DC-bench's), then a BEARD train_config.json, then the
 * command line.
 *
 * BEARD's keys (Code/train_model.py's argparse names, as its train_config.json sets them):
 *   dataset, model, method, ipc, dsa_strategy, aug (the 4-in-1 unpacking), data_file,
 *   save_path, train_attack, target_attack, src_dataset, data_path, epoch_eval_train,
 *   lr_net, batch_train; syn_ce, ce_weight, test_attack, eval_mode, Iteration and
 *   eval_interval are accepted and do not affect training (BEARD reads them only in
 *   distillation or evaluation), eval_mode other than 'S' is an error.
 * beard's own keys, the command-line option names with '_' for '-': epochs, runs, seed,
 *   lr, batch, optimizer, momentum, weight_decay, lr_decay, exp, eval_every, log_every,
 *   train_semantics, train_params ({"eps": 0.03, ...}), learned_lr, pixels, threads.
 * Unknown keys are warnings (collected in `warnings`); a known key with the wrong JSON
 * type is an error. ipc may be a number or a string (BEARD's file has "ipc": "50").
 * Relative paths are used as given, i.e. relative to the working directory, as BEARD
 * does; the command line's --data-file, --data and --save-path redirect them.
 */
#ifndef BEARD_TRAIN_CONFIG_H
#define BEARD_TRAIN_CONFIG_H

#include <cjson/cJSON.h>

#include "../core/common.h"

#define TRAIN_MAX_PARAMS 16

typedef struct {
    // what to train on and what to train
    char dataset[32], method[64], ipc[16];
    char arch[512];      // one architecture, or several separated by commas (cross-architecture)
    char data_file[1024], data_path[1024], save_path[1024];
    int src_dataset;     // the real training set instead of data_file
    int unpack4;         // BEARD's aug: IDM/BACON's 4-in-1 unpacking
    int exp;             // res layout: experiment (-1: last)
    int pixels;          // float images in the file are [0, 1] pixels
    // the recipe
    int epochs, batch, runs;
    long long seed;
    double lr, momentum, weight_decay;
    char optimizer[8];   // "sgd" or "adam"
    int lr_decay;
    int learned_lr;      // use MTT's lr_best.pt as the learning rate
    char dsa_strategy[128];
    // adversarial training
    char train_attack[48];
    int target_attack;
    char train_semantics[8]; // "beard" or "pixel"; "" = beard with a config file, pixel otherwise
    int n_params;
    char param_names[TRAIN_MAX_PARAMS][32];
    char param_values[TRAIN_MAX_PARAMS][32];
    // reporting
    int eval_every, log_every, threads;
    long test_limit;
    // the decoupled methods' recipes (recipe.h): squeeze and soft-label training
    char recipe[32];         // a preset name, or "" for BEARD's recipe
    char teacher[1024], teacher_arch[32];
    int soft_labels, linear_probe;
    char init[1024];         // start every run from this checkpoint
    char fkd[1024];          // stored FKD soft labels (beard relabel)
    double temperature, ce_weight;
    char mix[16], teacher_mode[8], loss[16], lr_schedule[16], aug[16];
    // which values were set explicitly (by the config or the command line)
    int set_lr, set_batch, set_weight_decay, set_epochs, set_momentum, set_optimizer, set_temperature, set_ce_weight;
    char warnings[2048];
} TrainSettings;

void train_settings_default(TrainSettings *s);
// the architectures DC's eval_mode evaluates on ("MLP,ConvNet,..." for M); "" for S and SS
// (the model itself); NULL for an unknown mode
const char *train_eval_pool(const char *mode);
// applies a BEARD train_config.json (or beard keys) on top of s
int train_settings_load_json(TrainSettings *s, const char *path, Err *e);
// applies the keys of a parsed JSON object (the same keys as a file) on top of s
int train_settings_apply_json(TrainSettings *s, const cJSON *obj, Err *e);
// adds or replaces a training-attack parameter override (name=value text)
int train_settings_add_param(TrainSettings *s, const char *name, const char *value, Err *e);

// The recipe for the settings (train.h's TrainConfig, from train_config_default): epochs,
// batch, optimizer (Adam's own lr and batch unless set), DSA, adversarial training with
// its parameter overrides. The training attack's semantics is s->train_semantics, or
// `default_sem` when that is empty. Log, progress and eval_every are left as defaults.
struct TrainConfig;
int train_settings_config(const TrainSettings *s, int default_sem, struct TrainConfig *cfg, Err *e);

#endif
