/*
 * tifgsm.c: Translation-Invariant FGSM (Dong et al., "Evading Defenses to Transferable
 * Adversarial Examples by Translation-Invariant Attacks", arXiv:1904.02884), as
 * torchattacks 3.5.1 TIFGSM computes it: DI-FGSM's step (difgsm.c, which holds the
 * details) with the gradient convolved per channel by a len_kernel x len_kernel kernel
 * (Gaussian over [-nsig, nsig], linear or uniform; see transfer.h) before the momentum
 * normalisation. torchattacks' defaults: the Gaussian of size 15 and nsig 3, input
 * diversity on (rate 0.9, probability 0.5), decay 0.
 * Deliberate differences: those of DI-FGSM (per-sample diversity draws); the convolution
 * is summed in double and rounded to float32 (torch sums in float32).
 */
#include <stdlib.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 0.0, P_SAME, P_SAME, "momentum decay factor (0: none, torchattacks' default)", AP_REAL(0, 1000)},
    {"kernel_name", TI_GAUSSIAN, P_SAME, P_SAME, "the gradient kernel", AP_CHOICE("gaussian,linear,uniform")},
    {"len_kernel", 15, P_SAME, P_SAME, "kernel side", AP_INT(1, 255)},
    {"nsig", 3, P_SAME, P_SAME, "the Gaussian spans [-nsig, nsig]", AP_POS(100)},
    {"resize_rate", 0.9, P_SAME, P_SAME, "the resized side is drawn from [int(W * rate), W)", AP_POS(1)},
    {"diversity_prob", 0.5, P_SAME, P_SAME, "probability of transforming the input at a step", AP_REAL(0, 1)},
    {"batch_draws", 0, P_SAME, P_SAME, "one input-diversity draw per batch and step, shared by its images, as torchattacks does (0: one per image)", AP_BOOL},
    {"random_start", 0, P_SAME, P_SAME, "start from a uniform random point in the eps-ball", AP_BOOL},
    {NULL},
};

static int tifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    int len = attack_param_int(ctx, "len_kernel");
    float *k = malloc(sizeof(float) * (size_t)len * len);
    if (!k) return err_set(e, "out of memory");
    ti_kernel(k, attack_param_int(ctx, "kernel_name"), len, attack_param(ctx, "nsig"));
    int rc = attack_difgsm_run(ctx, x, y, t, B, x_adv, k, len, e);
    free(k);
    return rc;
}

const AttackDef attack_tifgsm = {
    .name = "TIFGSM",
    .aliases = "tifgsm,ti_fgsm,tim",
    .summary = "Translation-Invariant FGSM (gradient smoothed by a kernel, with input diversity), Linf (arXiv:1904.02884)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = tifgsm_run,
    .check = attack_di_check,
};
