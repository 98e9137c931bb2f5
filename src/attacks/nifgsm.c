/*
 * nifgsm.c: Nesterov Iterative FGSM (Lin et al., "Nesterov Accelerated Gradient and
 * Scale Invariance for Adversarial Attacks", arXiv:1908.06281), as torchattacks 3.5.1
 * NIFGSM computes it, in float32:
 *   repeat steps: x_nes = x_k + decay * alpha * m                 (not clamped)
 *                 d = grad CE(f(x_nes)) (batch mean; the gradient w.r.t. x_k is the same)
 *                 g = decay * m + d / mean(|d|);   m = g
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * Targeted: descend CE towards the target. A zero gradient gives NaN momentum and the
 * sample stops, as in torchattacks (see mifgsm.c). Deliberate difference: mean |d| is
 * summed in double and rounded to float32.
 */
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {NULL},
};

static int nifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay"), da = (float)(attack_param(ctx, "decay") * attack_param(ctx, "alpha"));
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n), *nes = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!grad || !mom || !nes) {
        err_set(e, "out of memory");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    for (int s = 0; s < steps; s++) {
        // decay * alpha is one Python float (torch multiplies the tensor by it once)
        for (size_t i = 0; i < n; i++) nes[i] = x_adv[i] + da * mom[i];
        if (attack_gradient(ctx, nes, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *g = grad + (size_t)b * D, *m = mom + (size_t)b * D;
            float mean = attack_mean_abs(g, D);
            for (size_t j = 0; j < D; j++) m[j] = g[j] = decay * m[j] + g[j] / mean;
        }
        attack_linf_step(x_adv, x, grad, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(grad), xfree(mom), xfree(nes);
    return rc;
}

const AttackDef attack_nifgsm = {
    .name = "NIFGSM",
    .aliases = "nifgsm,ni_fgsm",
    .summary = "Nesterov Iterative FGSM, Linf (arXiv:1908.06281)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = nifgsm_run,
};
