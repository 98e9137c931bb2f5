/*
 * fgsm.c: Fast Gradient Sign Method (Goodfellow et al., arXiv:1412.6572), as
 * torchattacks 3.5.1 FGSM computes it:
 *   x_adv = clamp(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
 * with the loss negated for targeted attacks (descend towards the target). The CE is the
 * batch mean, as in torchattacks; its 1/B cannot change a sign but is kept for fidelity.
 * No deliberate differences from the reference.
 */
#include "attack.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {NULL},
};

static int fgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    if (attack_gradient(ctx, x, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
        xfree(grad);
        return -1;
    }
    for (size_t i = 0; i < n; i++) x_adv[i] = clampf(x[i] + eps * signf_torch(grad[i]), 0.0f, 1.0f);
    attack_progress(ctx, 1.0);
    xfree(grad);
    return 0;
}

const AttackDef attack_fgsm = {
    .name = "FGSM",
    .aliases = "fgsm",
    .summary = "Fast Gradient Sign Method, one signed gradient step (arXiv:1412.6572)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = fgsm_run,
};
