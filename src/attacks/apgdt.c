/*
 * apgdt.c: APGD-T, Auto-PGD on the targeted DLR loss run against several target classes
 * in turn (Croce & Hein, arXiv:2003.01690), as torchattacks 3.5.1 APGDT computes it.
 *
 * For target_class = 2 .. n_target_classes + 1 (and each restart), the points not yet
 * fooled get one APGD run (apgd.c) on
 *   L = -(z_y - z_t) / (z_(1) - z_(3)/2 - z_(4)/2 + 1e-12)
 * where t is the class with the target_class-th largest clean logit and z_(k) the k-th
 * largest logit at the iterate. A point counts as fooled when an iterate is misclassified
 * (any class, not necessarily t), and its output is that iterate; points never fooled
 * come back clean. torchattacks sets n_target_classes = n_classes - 1 with n_classes = 10,
 * i.e. 9 targets, as fra31/auto-attack's standard version does.
 *
 * It picks its own targets, so in the runner's terms it is an untargeted attack
 * (torchattacks' supported_mode is "default" only).
 *
 * Deliberate differences:
 * - Random starts draw from beard's per-sample Philox streams (attack_rng, stream 0x1000
 *   + run number), not from torch's generator reseeded with `seed`: equal to torchattacks
 *   in distribution, not in value, and independent of batch size and threads.
 * - torchattacks computes the clean logits again for every target and restart (to rank
 *   the targets); beard computes them once (the same numbers, one forward pass instead
 *   of n_target_classes * n_restarts).
 * - Ties in the ranking of the targets go to the higher class index (a stable ascending
 *   sort read from its end); torch's sort does not promise an order for ties.
 * fra31's APGDAttack_targeted is the same algorithm with 100 iterations (preset fra31)
 * and a denominator z_(1) - (z_(3) + z_(4)) / 2 that differs in the last bit only.
 */
#include <string.h>

#include "apgd.h"

static const AttackParamDef params[] = {
    {"norm", 0, P_SAME, P_SAME, "threat model", AP_CHOICE("Linf,L2")},
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum perturbation (Linf or L2)", AP_EPS_L2},
    {"steps", 10, P_SAME, 100, "iterations per run (fra31: n_iter)", AP_STEPS},
    {"n_restarts", 1, P_SAME, P_SAME, "random restarts per target class", AP_INT(1, 1000)},
    {"n_target_classes", 9, P_SAME, P_SAME, "target classes, ranked 2nd, 3rd, ... by the clean logits "
                                            "(torchattacks: n_classes - 1 with n_classes = 10)", AP_INT(1, 1000)},
    {"eot_iter", 1, P_SAME, P_SAME, "gradients averaged per step (EOT)", AP_INT(1, 1000)},
    {"rho", 0.75, P_SAME, P_SAME, "step-size checkpoint threshold", AP_REAL(0, 1)},
    {NULL},
};

// class ranked r-th (1 = largest) by the logits z; ties: higher index first
static int ranked(const float *z, int K, int r) {
    // count, for each class, how many classes rank before it
    for (int k = 0; k < K; k++) {
        int before = 0;
        for (int j = 0; j < K; j++) before += z[j] > z[k] || (z[j] == z[k] && j > k);
        if (before == r - 1) return k;
    }
    return 0;
}

typedef struct {
    ApgdConfig cfg;
    const float *logits; // (B, K) clean logits, for the ranking of the targets
    int K, R;
    int *yt; // (B) targets of the current run
} ApgdtRuns;

// run = (target rank - 2) * R + restart, as torchattacks loops
static int apgdt_subset(const AttackCtx *sub, const float *xs, const int *ys, const int *sel, int m, int run,
                        unsigned char *fooled, float *adv, void *user, Err *e) {
    ApgdtRuns *a = user;
    int tc = 2 + run / a->R;
    for (int j = 0; j < m; j++) a->yt[j] = ranked(a->logits + (size_t)sel[j] * a->K, a->K, tc);
    if (apgd_single_run(sub, &a->cfg, xs, ys, a->yt, m, 0x1000u + (uint32_t)(run & 0xfff), fooled, adv, NULL, 0, 1, e))
        return -1;
    for (int j = 0; j < m; j++) fooled[j] = !fooled[j]; // the run reports "never misclassified"
    return 0;
}

static int apgdt_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    int K = ctx->K;
    ApgdtRuns a = {.cfg = {attack_param_int(ctx, "norm"), attack_param(ctx, "eps"), attack_param_int(ctx, "steps"),
                           attack_param_int(ctx, "eot_iter"), attack_param(ctx, "rho"), APGD_LOSS_DLR_TARGETED},
                   .K = K,
                   .R = attack_param_int(ctx, "n_restarts")};
    int T = attack_param_int(ctx, "n_target_classes");
    if (K < 4) return err_set(e, "the targeted DLR loss needs at least 4 classes (the model has %d)", K);
    if (T < 1 || T > K - 1)
        return err_set(e, "n_target_classes %d: must be between 1 and the number of classes - 1 (%d)", T, K - 1);
    float *logits = xmalloc(sizeof(float) * (size_t)B * K);
    int *yt = xmalloc(sizeof(int) * B);
    unsigned char *acc = xmalloc(B);
    int rc = -1;
    if (!logits || !yt || !acc) {
        err_set(e, "out of memory");
        goto done;
    }
    if (attack_logits(ctx, x, B, logits, e)) goto done;
    for (int b = 0; b < B; b++) acc[b] = logits_argmax(logits + (size_t)b * K, K) == y[b];
    a.logits = logits;
    a.yt = yt;
    if (attack_on_robust(ctx, x, y, B, acc, T * a.R, apgdt_subset, &a, x_adv, e)) goto done;
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    xfree(logits), xfree(yt), xfree(acc);
    return rc;
}

const AttackDef attack_apgdt = {
    .name = "APGDT",
    .aliases = "apgd-t,apgd_t,apgd_targeted",
    .summary = "APGD-T: Auto-PGD on the targeted DLR loss over the top target classes (arXiv:2003.01690)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = apgdt_run,
    .check = attack_check_norm_eps,
};
