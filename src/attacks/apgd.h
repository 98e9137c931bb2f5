/*
 * apgd.h: the one APGD run that APGD (apgd.c), APGD-T (apgdt.c) and hence AutoAttack
 * share: torchattacks 3.5.1's APGD.attack_single_run / APGDT.attack_single_run (Croce &
 * Hein, arXiv:2003.01690). See apgd.c for the algorithm and the differences.
 *
 * Also the small helpers the attacks of the AutoAttack family use to run on a subset of
 * a batch (the points still robust) with the right random streams and progress share.
 */
#ifndef BEARD_APGD_H
#define BEARD_APGD_H

#include "attack.h"

typedef enum { APGD_LOSS_CE, APGD_LOSS_DLR, APGD_LOSS_DLR_TARGETED } ApgdLoss;
enum { APGD_NORM_LINF, APGD_NORM_L2 };

typedef struct {
    int norm;     // APGD_NORM_*
    double eps;
    int steps;    // iterations (torchattacks `steps`, fra31 `n_iter`)
    int eot_iter; // gradients averaged per iterate
    double rho;   // oscillation threshold of the step-size checkpoints
    ApgdLoss loss;
} ApgdConfig;

// One run on n samples x (n, D) with labels y (n) and, for the targeted DLR loss, targets
// yt (n) (NULL otherwise). The random start of sample i draws from attack_rng(ctx, i,
// stream). Writes acc (n): 1 while the run never misclassified the sample; and
// x_best_adv (n, D): the last misclassified iterate (the random start where acc is 1);
// and, when loss_best is not NULL, the highest loss reached (n). Progress goes from prog0
// to prog1 of ctx's share.
int apgd_single_run(const AttackCtx *ctx, const ApgdConfig *cfg, const float *x, const int *y, const int *yt, int n,
                    uint32_t stream, unsigned char *acc, float *x_best_adv, float *loss_best, double prog0,
                    double prog1, Err *e);

// A context for the subset idx (m) of ctx's batch: sample j of the subset keeps the
// random streams of sample idx[j] (ids (m) is caller storage), and its progress covers
// [f0, f1] of ctx's share.
static inline AttackCtx attack_subctx(const AttackCtx *ctx, const int *idx, int m, int *ids, double f0, double f1) {
    AttackCtx s = *ctx;
    for (int j = 0; j < m; j++) ids[j] = ctx->ids ? ctx->ids[idx[j]] : idx[j];
    s.ids = ids;
    s.progress_base = ctx->progress_base + f0 * ctx->progress_span;
    s.progress_span = (f1 - f0) * ctx->progress_span;
    return s;
}

// One run of an attack on a subset of a batch: the m points xs (m, D) with labels ys (m)
// (sel (m): their indices in the batch), as run number `run`. Fills fooled (m) and, where
// fooled, adv (m, D).
typedef int (*AttackSubsetRun)(const AttackCtx *sub, const float *xs, const int *ys, const int *sel, int m, int run,
                               unsigned char *fooled, float *adv, void *user, Err *e);

// Runs fn `runs` times, each time on the points of the batch x (B, D) still marked in
// robust (B), with their labels lab (B): a point a run fools is unmarked and its example
// copied into x_adv (B, D). Run r gets the progress share [r / runs, (r + 1) / runs].
// robust NULL: the points the model classifies as lab (targeted: not as lab) to start with.
// x_adv starts as x. (torchattacks' restart loops of APGD, APGD-T and Square.)
int attack_on_robust(const AttackCtx *ctx, const float *x, const int *lab, int B, unsigned char *robust, int runs,
                     AttackSubsetRun fn, void *user, float *x_adv, Err *e);

// Square (square.c) skips the forward pass of a candidate equal to its current best point
// (its result is known); set to evaluate every candidate (tests compare the two)
extern int square_eval_repeats;

#endif
