/*
 * blackbox.h: BEARD's black-box evaluation (github zhouzhengqd/BEARD,
 * Code/evaluate_model_blackbox.py with evaluate_config_blackbox.json): adversarial
 * examples crafted on a surrogate, scored on the surrogate and on every model of the
 * config's load_file_model_<NAME> keys.
 *
 * BEARD's script loads load_file (the surrogate, named `method` in its log) and the
 * models DC, DSA, MTT, DM, IDM, BACON and ROME; for each attack of test_attack and each
 * mode of target_attack it runs epoch_blackbox: every test batch attacked on the
 * surrogate (its BEARD parameters, as the white-box stage), scored on the surrogate and
 * on each model (model(img), eval mode), the accuracies summed and divided by n; the
 * call is timed as a whole. It logs the white-box line with
 *   , eval_accuracies_target: {[{'DC': 0.5431, ...}]}, eval_accuracies_non_target: {[...]}
 * appended (the fractions of the models, numpy float64 reprs; see beardlog.h).
 *
 * beard runs the same per surrogate. With beard's "surrogates": "all" (the default) it
 * does so for every listed model in turn (the surrogate named after its key), which
 * gives the full transfer matrix; with "load_file", for load_file only, as BEARD. The
 * attacks and their parameters are the white-box stage's (evaluate.c): attack_evaluate
 * on the surrogate, then attack_transfer of the same examples to each model.
 * Correspondences and deliberate differences:
 * - "Clean": the clean pass of the surrogate and of each model, timed as one, per mode;
 * - targeted DeepFool and AutoAttack: BEARD prints "can not support target attack" and
 *   scores the clean images, so its line carries the clean figures of every model; the
 *   same here (results.json says null for the attack, with a note);
 * - a model listed under several names, or the surrogate's own checkpoint among the
 *   models, is scored like any other (BEARD's configs list the surrogate too);
 * - BEARD always loads all seven models (its argparse defaults fill the missing keys);
 *   beard scores the listed ones only, in BEARD's order, then the others in config order.
 */
#ifndef BEARD_BLACKBOX_H
#define BEARD_BLACKBOX_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "beardlog.h"
#include "eval_config.h"

typedef struct {
    int status[2];           // EvalStatus per mode (evaluate.h)
    double acc[2];           // the surrogate's robust accuracy, percent (BEARD's line)
    double seconds[2];       // attack + scoring on the surrogate and on every model
    double target_acc[2][EVAL_MAX_MODELS];   // fractions, BEARD's eval_accuracies
    unsigned char *target_ok[2][EVAL_MAX_MODELS]; // (n) per-sample correctness, or NULL
    AttackResult res[2];     // on the surrogate (status EVAL_RAN)
    char error[2][ERR_MAX];  // EVAL_FAILED
    int logged;
} BbEntry;

typedef struct {
    char surrogate[32];      // its name in the log and the matrix
    char surrogate_file[1024];
    int n, n_models;
    double clean_acc;        // the surrogate's, percent
    double clean_seconds[2];
    double model_clean[EVAL_MAX_MODELS]; // fractions
    unsigned char *model_clean_ok[EVAL_MAX_MODELS]; // (n)
    int n_entries;
    const EvalAttackSpec *spec[EVAL_MAX_ATTACKS];
    BbEntry entries[EVAL_MAX_ATTACKS];
    int n_failed;
} BbRun;

// Crafts every attack and mode of cfg on `surrogate` over d, scores on models (n_models,
// cfg->model_names[i] each); writes a BEARD black-box line per attack to log (may be NULL)
// with surrogate_name as the method. Fills run (free with blackbox_run_free, also after a
// failure). Attack failures are recorded (run->n_failed) and the others go on.
int blackbox_run(const EvalConfig *cfg, const char *surrogate_name, const char *surrogate_file, Net *surrogate,
                 Net *const *models, const AttackData *d, BeardLog *log, BbRun *run, Err *e);
void blackbox_run_free(BbRun *run);

// results.json of a black-box evaluation: config, models, per surrogate the clean figures
// and per attack and mode the surrogate's AttackResult and every model's accuracy (and,
// with cfg->per_sample, per-sample correctness as "0101..." strings)
cJSON *blackbox_results_json(const EvalConfig *cfg, const BbRun *runs, int n_runs, cJSON *extra);

// The transfer matrix: robust accuracy (percent) of each model (columns) under the
// examples crafted on each surrogate (rows), one table per attack and mode, the clean
// accuracies first; Markdown and CSV (long form: attack,mode,surrogate,target,accuracy,
// clean_accuracy,asr). asr: of the target's originally correct samples, the share wrong.
int blackbox_write_matrix(const char *md_path, const char *csv_path, const EvalConfig *cfg, const BbRun *runs,
                          int n_runs, Err *e);

#endif
