/*
 * beardlog.h: BEARD's evaluation log, written and read line for line.
 *
 * BEARD (arXiv:2411.09265; github zhouzhengqd/BEARD, Code/evaluate_model.py) logs one
 * line per attack through Python's logging module, format
 * '%(asctime)s - %(levelname)s - %(message)s', into
 * {save_path}/{model}_{dataset}_{ipc}_evaluation_log.txt:
 *
 *   2025-07-01 12:50:44,512 - INFO - FGSM attack on BACON: final acc is:  target_attack:
 *   44.68 +- 0.00, attack time is 3.01; non_target_attack: 38.16 +- 0.00, attack time is
 *   3.68, dataset: CIFAR10, IPC: 50, DSA:True, num_eval: 0, aug:False , model: ConvNet,
 *   attack_type: ['Clean', 'FGSM'], target_attack: [True, False], src_dataset: True
 *
 * (one line in the file). Its metrics toolkit (Code/metrics/white_box/evaluate_metrics.py)
 * reads them back with the regular expression
 *   (\w+) attack on (\w+): final acc is:\s+target_attack: ([\d.]+) \+- [\d.]+, attack
 *   time is ([\d.]+); non_target_attack: ([\d.]+) \+- [\d.]+, attack time is ([\d.]+)
 * The writer here produces exactly BEARD's bytes (Python's %-formatting of the same
 * values, reprs of lists and booleans included); the reader accepts exactly what that
 * expression accepts, and also picks up the `dataset:` and `IPC:` fields when present.
 *
 * The black-box script (Code/evaluate_model_blackbox.py) writes the same line with the
 * accuracies of the target models appended (see BeardLogLine.eval_*), which
 * Code/metrics/black_box/convert_to_white_box.py reads with
 *   eval_accuracies_target: \{(\[.*?\}\])\}, eval_accuracies_non_target: \{(\[.*?\}\])\}
 * and '([^']+)':\s*([\d.]+) inside; the reader here does the same.
 *
 * Deliberate differences from the reference, both in the reader:
 * - A result line ("<Attack> attack on <Method>: final acc is:") whose figures do not
 *   parse (nan, inf, a negative number), which BEARD's toolkit skips silently (changing
 *   the attack count and so RR), is an error naming the line, as is a number such as
 *   "1.2.3", which makes BEARD's float() raise and drop the whole file. Other lines that
 *   mention "attack on" are counted (BeardLogFile.n_unparsed) and reported by metrics.
 * - Python's logging appends to an existing log, so a rerun leaves two lines for the same
 *   attack. BEARD's toolkit then counts the attack twice; here the last line wins and the
 *   reader says so (BeardLogFile.n_duplicates).
 */
#ifndef BEARD_BEARDLOG_H
#define BEARD_BEARDLOG_H

#include <stdio.h>

#include "../core/common.h"
#include "../io/file.h"

// ----------------------------------------------------------------------------
// one result line

#define BEARDLOG_MAX_MODELS 16

typedef struct {
    char attack[32];  // \w+ as BEARD spells it: "Clean", "FGSM", "PGD_L2", "Deepfool", "AA"
    char method[64];  // \w+: "BACON"
    double acc[2];    // [0] targeted, [1] untargeted; percent
    double std[2];    // the "+-" figures
    double seconds[2];
    // the optional tail ("" when absent)
    char dataset[32], ipc[16];
    int line;         // 1-based line number in its file (reader)
    // black-box lines (Code/evaluate_model_blackbox.py) end with
    //   , eval_accuracies_target: {[{'DC': 0.5431, ...}]}, eval_accuracies_non_target: {[...]}
    // the accuracy of the examples (crafted on `method`) on each listed model, a fraction
    int n_eval;       // 0: a white-box line
    char eval_names[BEARDLOG_MAX_MODELS][32];
    double eval_acc[2][BEARDLOG_MAX_MODELS]; // [0] targeted, [1] untargeted
} BeardLogLine;

// The tail of every line: the settings of the run, as BEARD prints them.
typedef struct {
    const char *dataset, *ipc, *model;
    int dsa, num_eval, aug, src_dataset;
    const char *const *attacks; // test_attack, in order
    int n_attacks;
    const int *targets;         // target_attack, in order
    int n_targets;
} BeardLogContext;

// The message part of a result line (no timestamp, no newline) into buf; returns the
// length it needed (like snprintf). With l->n_eval > 0, the black-box line: the tail with
// both eval_accuracies dictionaries (Python's repr of a one-element list of a dict of
// numpy float64 fractions, inside the literal braces of BEARD's format string).
int beardlog_format(char *buf, size_t n, const BeardLogLine *l, const BeardLogContext *ctx);

// "2025-07-01 12:50:44,512": logging's asctime, local time, milliseconds after a comma
void beardlog_timestamp(char *buf, size_t n);

// Python's repr of a list of str / of bool: ['Clean', 'FGSM'] / [True, False]
int beardlog_repr_strs(char *buf, size_t n, const char *const *s, int count);
int beardlog_repr_bools(char *buf, size_t n, const int *v, int count);

// 1 when s is a non-empty run of [A-Za-z0-9_] (what BEARD's reader needs as names)
int beardlog_is_word(const char *s);

// ----------------------------------------------------------------------------
// the log file

typedef struct {
    FileAtomic out; // written to a temporary next to path, renamed by beardlog_commit
    char path[1024];
} BeardLog;

// Opens the log at path (the folders above it are made when missing) and writes
// BEARD's first line, "Logging setup complete.". Lines go to a temporary next to path
// (src/io/file.h), flushed as they are written; beardlog_commit renames it over path.
// So a killed run never leaves a half log under the final name, and a rerun replaces
// the log instead of appending to it as Python's logging does (whose appended reruns
// BEARD's toolkit then counts twice).
int beardlog_open(BeardLog *log, const char *path, Err *e);
// writes "<timestamp> - INFO - <message>\n" and flushes
int beardlog_info(BeardLog *log, const char *message, Err *e);
// puts the finished log under its name (0 when nothing is open)
int beardlog_commit(BeardLog *log, Err *e);
// discards a log that was not committed; safe after commit and on a zeroed BeardLog
void beardlog_close(BeardLog *log);

// ----------------------------------------------------------------------------
// reading

#define BEARDLOG_MAX_ATTACKS 1024 // different attack names in one log (BEARD runs nine)

typedef struct {
    BeardLogLine *lines; // result lines, in file order, duplicates removed (last wins)
    int n;
    int n_duplicates;    // result lines superseded by a later line for the same attack
    int n_unparsed;      // lines mentioning "attack on" that are not result lines
    int first_unparsed;  // line number of the first of those (0: none)
} BeardLogFile;

// parses text (NUL-terminated); `name` is used in error messages
int beardlog_parse(BeardLogFile *out, const char *text, const char *name, Err *e);
int beardlog_read(BeardLogFile *out, const char *path, Err *e);
void beardlog_file_free(BeardLogFile *f);
// the line for an attack (exact name), or NULL
const BeardLogLine *beardlog_find(const BeardLogFile *f, const char *attack);

#endif
