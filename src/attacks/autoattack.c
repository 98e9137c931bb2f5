/*
 * autoattack.c: AutoAttack, the "standard" ensemble of Croce & Hein (arXiv:2003.01690):
 * APGD-CE, then APGD-T, then FAB-T, then Square, each run only on the points that all
 * earlier attacks failed to fool. An adversarial example is kept from the first attack
 * that misclassifies the point; points no attack fools come back clean.
 *
 * Two settings, chosen by `impl` (the presets set it):
 *   torchattacks 3.5.1 AutoAttack (presets torchattacks and beard; BEARD calls
 *     AutoAttack(eps=8/255)): MultiAttack over APGD(loss ce, n_restarts 1), APGDT(n_classes
 *     10, i.e. 9 targets), FAB(multi_targeted, n_classes 10) and Square(n_queries 5000),
 *     all with their torchattacks defaults otherwise: 10 steps for the first three,
 *     Square with p_init 0.8, the margin loss and the rescaled p schedule. MultiAttack
 *     starts from every point of the batch, misclassified ones included: APGD returns
 *     those unchanged (it attacks only correctly classified points), MultiAttack's
 *     check after APGD then finds them misclassified and drops them.
 *   fra31/auto-attack's run_standard_evaluation (preset fra31): the same four attacks
 *     with 100 iterations for APGD, APGD-T and FAB-T, 9 target classes for APGD-T and
 *     FAB-T whatever n_classes says, Square with 5000 queries and resc_schedule off, and
 *     each sub-attack's own fra31 defaults (e.g. FAB's). It starts from the correctly
 *     classified points only (the same outcome as MultiAttack, fewer passes) and runs
 *     fra31's checks where they apply to a beard network: too many target classes for
 *     the model (an error), logits that look like probabilities, and Square lowering the
 *     robust accuracy after the gradient attacks (warnings on stderr, once per process; the
 *     Square check judges each batch alone). Its checks for randomised and dynamic
 *     defences do not apply: beard's networks are deterministic and static.
 *
 * The sub-attacks are beard's APGD, APGDT, FAB and Square, called through their AttackDef
 * with parameters filled from their presets; the Net counts their passes like any other
 * attack's. AutoAttack is untargeted only (it has no targeted mode in torchattacks; APGD-T
 * and FAB-T pick their own targets).
 *
 * Deliberate differences: the sub-attacks' own (random streams per sample instead of
 * torch's generator reseeded with `seed` by each sub-attack; see apgd.c, square.c and
 * fab.c). The results equal torchattacks' in distribution, not in value. BEARD's
 * untargeted "Spsa" branch runs AutoAttack by mistake; that is BEARD's bug, not this
 * attack's concern.
 */
#include <stdio.h>
#include <string.h>

#include "apgd.h"
#include "fab.h"

extern const AttackDef attack_apgd, attack_apgdt, attack_square;

static const AttackParamDef params[] = {
    {"norm", 0, P_SAME, P_SAME, "threat model", AP_CHOICE("Linf,L2")},
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum perturbation (Linf or L2)", AP_EPS_L2},
    {"n_classes", 10, 10, P_SAME, "classes the targets of APGD-T and FAB-T come from (n_classes - 1 targets; "
                                  "fra31 always uses 9)", AP_INT(2, 100000)},
    {"steps", 10, 10, 100, "iterations of APGD, APGD-T and FAB-T", AP_STEPS},
    {"n_queries", 5000, 5000, P_SAME, "queries of Square", AP_INT(1, 10000000)},
    {"impl", 0, 0, 1, "the reference: torchattacks' MultiAttack or fra31's run_standard_evaluation", AP_CHOICE("torchattacks,fra31")},
    {NULL},
};

// sets a parameter a sub-attack must declare
static int set_param(AttackParams *p, const AttackDef *def, const char *name, double v, Err *e) {
    if (attack_params_set(p, name, v)) return err_set(e, "%s has no parameter %s", def->name, name);
    return 0;
}

static int warned_probabilities, warned_square;

static int aa_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K, fra31 = attack_param_int(ctx, "impl") == 1;
    int norm = attack_param_int(ctx, "norm"), steps = attack_param_int(ctx, "steps");
    double eps = attack_param(ctx, "eps");
    int n_targets = fra31 ? 9 : attack_param_int(ctx, "n_classes") - 1;
    Preset preset = fra31 ? PRESET_FRA31 : PRESET_TORCHATTACKS;
    if (n_targets + 1 > K)
        return err_set(e, "%d target classes for APGD-T and FAB-T, but the model has only %d classes", n_targets, K);
    const AttackDef *defs[4] = {&attack_apgd, &attack_apgdt, &attack_fab, &attack_square};
    AttackParams ps[4];
    for (int a = 0; a < 4; a++) {
        attack_params_init(&ps[a], defs[a], preset);
        if (set_param(&ps[a], defs[a], "norm", norm, e) || set_param(&ps[a], defs[a], "eps", eps, e) ||
            set_param(&ps[a], defs[a], "n_restarts", 1, e))
            return -1;
    }
    if (set_param(&ps[0], defs[0], "steps", steps, e) || set_param(&ps[0], defs[0], "loss", 0, e) ||
        set_param(&ps[1], defs[1], "steps", steps, e) ||
        set_param(&ps[1], defs[1], "n_target_classes", n_targets, e) ||
        set_param(&ps[2], defs[2], "steps", steps, e) || set_param(&ps[2], defs[2], "multi_targeted", 1, e) ||
        set_param(&ps[3], defs[3], "n_queries", attack_param_int(ctx, "n_queries"), e))
        return -1;
    if (set_param(&ps[2], defs[2], "n_classes", n_targets + 1, e)) return -1; // FAB-T: n_classes - 1 targets

    memcpy(x_adv, x, sizeof(float) * D * B);
    int *fails = xmalloc(sizeof(int) * B), *ids = xmalloc(sizeof(int) * B), *ys = xmalloc(sizeof(int) * B);
    int *pred = xmalloc(sizeof(int) * B);
    float *xs = xmalloc(sizeof(float) * D * B), *adv = xmalloc(sizeof(float) * D * B);
    float *logits = xmalloc(sizeof(float) * (size_t)K * B);
    int rc = -1;
    if (!fails || !ids || !ys || !pred || !xs || !adv || !logits) {
        err_set(e, "out of memory");
        goto done;
    }
    int m = 0;
    if (fra31) {
        if (attack_logits(ctx, x, B, logits, e)) goto done;
        int prob = 1;
        for (int b = 0; b < B; b++) {
            const float *z = logits + (size_t)b * K;
            double s = 0;
            for (int k = 0; k < K; k++) {
                s += z[k];
                prob &= z[k] < 1.0f + 1e-5f && z[k] > -1e-5f;
            }
            prob &= fabs(s - 1.0) < 1e-5;
            if (logits_argmax(z, K) == y[b]) fails[m++] = b;
        }
        if (prob && B > 0 && !warned_probabilities++)
            fprintf(stderr, "AutoAttack warning: the outputs look like a probability distribution; "
                            "the attacks expect logits\n");
    } else {
        for (int b = 0; b < B; b++) fails[m++] = b;
    }
    const double share[5] = {0, 0.1, 0.35, 0.5, 1.0};
    int robust_before_square = m;
    for (int a = 0; a < 4 && m > 0; a++) {
        if (a == 3) robust_before_square = m;
        for (int j = 0; j < m; j++) {
            memcpy(xs + j * D, x + fails[j] * D, sizeof(float) * D);
            ys[j] = y[fails[j]];
        }
        AttackCtx sub = attack_subctx(ctx, fails, m, ids, share[a], share[a + 1]);
        sub.params = &ps[a];
        sub.targeted = 0;
        if (defs[a]->run(&sub, xs, ys, NULL, m, adv, e)) {
            err_wrap(e, "%s", defs[a]->name);
            goto done;
        }
        if (attack_predict(&sub, adv, m, pred, e)) goto done;
        int still = 0;
        for (int j = 0; j < m; j++) {
            if (pred[j] != ys[j]) memcpy(x_adv + fails[j] * D, adv + j * D, sizeof(float) * D);
            else fails[still++] = fails[j];
        }
        m = still;
        attack_progress(ctx, share[a + 1]);
    }
    // fra31's check_square_sr: Square should not find much the gradient attacks missed
    if (fra31 && robust_before_square - m > 0.002 * B && !warned_square++)
        fprintf(stderr, "AutoAttack warning: Square lowered the robust accuracy of a batch by %.2f%% after the "
                        "gradient-based attacks; the evaluation may be unreliable (try more Square queries and "
                        "restarts, or an adaptive attack)\n", 100.0 * (robust_before_square - m) / B);
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    xfree(fails), xfree(ids), xfree(ys), xfree(pred), xfree(xs), xfree(adv), xfree(logits);
    return rc;
}

const AttackDef attack_autoattack = {
    .name = "AutoAttack",
    .aliases = "aa,autoattack,auto_attack",
    .summary = "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square on the still-robust points (arXiv:2003.01690)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = aa_run,
    .check = attack_check_norm_eps,
};
