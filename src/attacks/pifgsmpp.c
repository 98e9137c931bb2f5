/*
 * pifgsmpp.c: PI-FGSM++ (Gao et al., "Patch-wise++ Perturbation for Adversarial
 * Targeted Attacks", arXiv:2012.15503), as torchattacks 3.5.1 PIFGSMPP computes it: the
 * PI-FGSM step (pifgsm.c, which holds the algorithm and the details) with the gradient
 * first convolved by a 3x3 Gaussian kernel, the projection scaled by project_factor and
 * not fed back into the amplification, and a targeted mode that descends the target's
 * CE. torchattacks uses the labels it is given as the CE's labels in both modes (with
 * BEARD's set_mode_targeted_by_label those are the targets), which is what beard does.
 * Its kernel quirk (the swapped axes) is reproduced unless corrected_kernel = 1 (preset
 * fra31); its momentum and prob arguments are unused.
 */
#include "transfer.h"

static const AttackParamDef params[] = {
    {"max_epsilon", 16.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"num_iter_set", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"momentum", 1.0, P_SAME, P_SAME, "accepted and unused, as in torchattacks", AP_REAL(0, 1000)},
    {"amplification", 10.0, P_SAME, P_SAME, "amplification factor of the step", AP_REAL(0, 1e6)},
    {"prob", 0.7, P_SAME, P_SAME, "accepted and unused, as in torchattacks", AP_REAL(0, 1)},
    {"project_factor", 0.8, P_SAME, P_SAME, "scale of the projection step", AP_REAL(0, 1e6)},
    {"corrected_kernel", 0, P_SAME, 1, "use the 3x3 Gaussian itself instead of torchattacks' swapped-axes kernel", AP_BOOL},
    {NULL},
};

static int pifgsmpp_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_pifgsm_run(ctx, x, y, t, B, x_adv, 1, e);
}

const AttackDef attack_pifgsmpp = {
    .name = "PIFGSMPP",
    .aliases = "pifgsmpp,pi_fgsm_pp",
    .summary = "PI-FGSM++: PI-FGSM with a smoothed gradient and a targeted mode (arXiv:2012.15503)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pifgsmpp_run,
};
