/*
 * evaluate.h: the evaluation stage of the benchmark as a library: one model, one test
 * set, the attacks of an EvalConfig in BEARD's order (each attack, then each mode of
 * target_attack), with BEARD's log lines, a structured results.json and an optional
 * per-sample CSV. `beard evaluate` and `beard demo` drive it. See evaluate.c for how it
 * maps onto BEARD's Code/evaluate_model.py.
 */
#ifndef BEARD_EVALUATE_H
#define BEARD_EVALUATE_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "beardlog.h"
#include "eval_config.h"

typedef enum {
    EVAL_RAN,        // attack_evaluate ran (or the clean pass, for Clean)
    EVAL_NOT_APPLICABLE, // the attack has no such mode (targeted DeepFool, AA): JSON null
    EVAL_NOT_REQUESTED,  // the mode is not in target_attack
    EVAL_SKIPPED,    // the attack is not in this build
    EVAL_FAILED,     // the attack returned an error (EvalMode.error); the run goes on
} EvalStatus;

typedef struct {
    EvalStatus status;
    AttackResult res;      // EVAL_RAN, attacks only
    // the figures of BEARD's log line: the attack's, or for Clean and for a mode that does
    // not apply, the clean pass's (as BEARD's log shows them)
    double accuracy, seconds;
    char error[ERR_MAX];   // EVAL_FAILED
} EvalMode;

typedef struct {
    const EvalAttackSpec *spec;
    EvalMode mode[2];      // [MODE_TARGETED = 0], [MODE_UNTARGETED = 1]
    int logged;            // a log line was written for it
} EvalEntry;

typedef struct {
    int n;                 // test samples
    int clean_correct;
    double clean_accuracy; // percent
    double clean_seconds[2];
    int clean_done[2];
    unsigned char *clean_ok; // (n)
    int n_entries;
    EvalEntry entries[EVAL_MAX_ATTACKS];
    int n_failed;          // modes that failed (EVAL_FAILED)
    double wall_seconds;
    char started[32];      // local time when the run started
} EvalReport;

// called after every attack and mode; `mode` is -1 after the clean passes
typedef void (*EvalCallback)(void *ctx, const EvalReport *rep, int entry, int mode);

// Runs the configuration's attacks on net over d. When log is not NULL, writes a BEARD
// line after each attack that has both modes (see evaluate.c). Fills rep (free with
// evaluate_report_free, also after a failure). An attack that fails is recorded
// (EVAL_FAILED, rep->n_failed) and the others still run, so that hours of finished work
// are not lost to one attack; -1 is for failures of the run itself (the clean pass, the
// log file, memory for the report).
int evaluate_run(const EvalConfig *cfg, Net *net, const AttackData *d, BeardLog *log, EvalCallback cb, void *cb_ctx,
                 EvalReport *rep, Err *e);
void evaluate_report_free(EvalReport *rep);

// BEARD's log message for an entry (both modes must be present)
int evaluate_log_message(const EvalConfig *cfg, const EvalReport *rep, int entry, char *buf, size_t n);
// the message of a log line with the config's tail (dataset, IPC, attack list, ...)
int evaluate_format_line(const EvalConfig *cfg, const BeardLogLine *l, char *buf, size_t n);

// The full results: config, version, seed, machine, clean figures, and per attack the
// AttackResult of each mode (null when the mode does not apply). `extra` may add fields
// (model path, dataset name): it is merged at the top level and consumed.
cJSON *evaluate_results_json(const EvalConfig *cfg, const EvalReport *rep, const AttackData *d, const Net *net,
                             const char *log_path, cJSON *extra);
// moves every field of extra into root (replacing root's of the same name); frees extra
void evaluate_json_merge(cJSON *root, cJSON *extra);
// writes a cJSON tree to a file (atomically)
int evaluate_write_json(const char *path, const cJSON *root, Err *e);
// one row per sample, attack and mode
int evaluate_write_csv(const char *path, const EvalReport *rep, const AttackData *d, Err *e);

// {"hostname", "os", "cpu", "cores", "threads", "blas"}
cJSON *evaluate_machine_json(void);

#endif
