/*
 * metrics.h: BEARD's robustness metrics (arXiv:2411.09265): RR, AE and CREI, with ASR,
 * attack time, a hardware-independent AE and bootstrap confidence intervals. The choices
 * made to reproduce BEARD's published figures are listed in metrics.c.
 *
 * Input is a set of runs (MetricsRun): one model at one IPC, evaluated under a list of
 * attacks, each targeted and/or untargeted. A run comes from a BEARD evaluation log or
 * from the results.json that `beard evaluate` writes (which adds passes per sample and
 * per-sample correctness). Figures are computed per run, per attack pooled over the runs
 * (single adversary) and pooled over everything (multi adversary), for each mode.
 *
 * Undefined figures are NAN in the structs, and the writers print them as null (JSON),
 * an empty field (CSV) or "n/a" (Markdown), never as a number; each comes with a note.
 */
#ifndef BEARD_METRICS_H
#define BEARD_METRICS_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "../core/common.h"

typedef enum { METRICS_BEARD, METRICS_ROME } MetricsType;
enum { MODE_TARGETED = 0, MODE_UNTARGETED = 1 };

const char *metrics_type_name(MetricsType t);
int metrics_type_parse(const char *s, MetricsType *t);
const char *metrics_mode_name(int mode); // "targeted", "untargeted"

// ----------------------------------------------------------------------------
// the formulas (percentages in, percentages out)

// RR = 100 (1 - (c - mean a) / (c - min a))                       (beard)
// RR = 100 (1 - (c - mean a)(c - min a) / c^2)                     (rome)
// Degenerate inputs: c == min a gives 0 with *degenerate = 1 (BEARD's toolkit returns 0
// there for both types). -1 (with e) when n == 0 or c <= 0 (rome divides by c^2; an
// accuracy of zero leaves nothing to attack).
int metrics_rr(double clean, const double *acc, int n, MetricsType type, double *rr, int *degenerate, Err *e);
// AE = 100 (mean t - t_c) / (max t - t_c); max t == t_c gives 0 with *degenerate = 1 (as
// BEARD's toolkit). -1 (with e) when n == 0.
int metrics_ae(double t_clean, const double *t, int n, double *ae, int *degenerate, Err *e);
// CREI = alpha RR + (1 - alpha) AE
double metrics_crei(double rr, double ae, double alpha);

// ----------------------------------------------------------------------------
// runs

typedef struct {
    char name[32];             // as the log or config spells it ("Deepfool", "PGD_L2")
    int has[2];                // a figure for the mode exists (log line / non-null JSON)
    int excluded[2];           // left out of RR/AE/CREI (BEARD: targeted Deepfool, AA, TPGD)
    double acc[2], seconds[2]; // percent, seconds
    double passes[2];          // forward + backward passes per sample; NAN when unknown
    double asr[2];             // per-sample ASR (percent of originally correct now wrong); NAN when unknown
    unsigned char *adv_ok[2];  // (n) per-sample correctness under attack, or NULL
} MetricsAttack;

typedef struct {
    char path[1024];
    char label[96];            // "ipc_10" when the IPC is known, else the file name
    char method[64], dataset[32], ipc[16];
    int from_json;
    int has_clean;
    double clean_acc;          // percent
    double clean_seconds[2];   // per mode; NAN when unknown
    int n;                     // test samples; 0 when unknown (logs)
    unsigned char *clean_ok;   // (n) or NULL
    int n_attacks;
    MetricsAttack *attacks;
    int n_duplicates;          // log lines superseded by reruns (see beardlog.h)
    int n_unparsed;            // log lines mentioning "attack on" that are not result lines
} MetricsRun;

#define METRICS_MAX_ATTACKS 1024 // attacks in one run (BEARD runs nine)

// Loads a BEARD log or a beard results.json (told apart by the first non-blank byte).
// A run without a clean accuracy is an error (BEARD's metrics need it).
int metrics_run_load(MetricsRun *r, const char *path, Err *e);
int metrics_run_from_log_text(MetricsRun *r, const char *text, const char *path, Err *e);
int metrics_run_from_json(MetricsRun *r, const cJSON *root, const char *path, Err *e);
void metrics_run_free(MetricsRun *r);

// BEARD's black-box log (Code/evaluate_model_blackbox.py; beard evaluate with
// load_file_model_* keys): one run per model listed in its eval_accuracies, made as
// BEARD's Code/metrics/black_box/convert_to_white_box.py makes its white-box logs: the
// model's accuracies (fraction x 100, printed %.2f), the surrogate's attack times, the
// Clean line and then only FGSM, PGD, PGD_L2, Deepfool, CW and AA in that order (the
// converter's fixed list: other attacks are dropped, and named in *dropped when not NULL;
// all_attacks keeps them, after those six). Fills runs[0 .. *n); 1 when the file is not
// a black-box log (no eval_accuracies), 0 on success, -1 on errors.
int metrics_runs_from_blackbox_log(MetricsRun *runs, int max, int *n, const char *path, Err *e);
int metrics_runs_from_blackbox_text(MetricsRun *runs, int max, int *n, const char *text, const char *path,
                                    int all_attacks, char *dropped, size_t dropped_len, Err *e);

// ----------------------------------------------------------------------------
// results

typedef struct {
    double rr, ae, crei;       // NAN when undefined (see note)
    double ae_passes;          // AE from passes per sample; NAN when some run lacks them
    double crei_passes;
    double rr_lo, rr_hi, crei_lo, crei_hi; // bootstrap 95% CI; NAN without per-sample data
    double clean_acc, clean_seconds;       // the c and t_c used
    int n_attacks;             // accuracies pooled
    char note[256];            // why a figure is undefined or degenerate; "" when none
} MetricsFigures;

typedef struct {
    double drop;               // clean - adv, percentage points (BEARD's ASR)
    double asr;                // per-sample ASR, percent; NAN without per-sample data
    double acc_lo, acc_hi;     // bootstrap CI of the accuracy; NAN without per-sample data
} MetricsAttackStats;

typedef struct {
    MetricsType type;
    double alpha;              // CREI weight, [0, 1]
    int bootstrap;             // resamples (0: no intervals)
    uint64_t seed;
} MetricsOptions;

typedef struct {
    char name[32];
    MetricsFigures fig[2];
} MetricsSingle;

typedef struct {
    MetricsOptions opt;
    int n_runs;
    const MetricsRun *runs;     // not owned
    MetricsFigures (*per_run)[2];   // [run][mode]
    MetricsAttackStats **stats;     // [run][attack * 2 + mode]
    MetricsFigures combined[2];
    int n_single;
    MetricsSingle *single;          // one per attack name, in order of first appearance
    char (*labels)[128];            // [run] a name for each run, unique within the report
    char **notes;                   // general remarks (mixed methods, attacks above clean, ...)
    int n_notes;
} MetricsReport;

void metrics_options_default(MetricsOptions *o);
int metrics_compute(MetricsReport *rep, const MetricsRun *runs, int n_runs, const MetricsOptions *opt, Err *e);
void metrics_report_free(MetricsReport *rep);

// outputs
cJSON *metrics_report_json(const MetricsReport *rep);
// one CSV field, quoted (RFC 4180) when it holds a comma, a quote or a newline
void metrics_csv_field(FILE *f, const char *s);
int metrics_report_csv(const MetricsReport *rep, FILE *f);
void metrics_report_markdown(const MetricsReport *rep, FILE *f);

#endif
