/*
 * ffgsm.c: Fast adversarial training's FGSM with a random start (Wong, Rice and Kolter,
 * "Fast is better than free", arXiv:2001.03994), as torchattacks 3.5.1 FFGSM computes it:
 *   x_0 = clamp(x + U(-eps, eps), 0, 1)
 *   x_adv = clamp(x + clamp(x_0 + alpha sign(grad CE(x_0)) - x, -eps, eps), 0, 1)
 * alpha defaults to 10/255 (the paper's 1.25 eps). Targeted: descend CE towards the
 * target. Deliberate difference: the start is drawn from beard's Philox stream of each
 * sample, not torch's generator.
 */
#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 10.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {NULL},
};

static int ffgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t n = (size_t)B * ctx->D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    attack_uniform_start(ctx, x, B, eps, 1, x_adv);
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    int rc = attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e);
    if (!rc) attack_linf_step(x_adv, x, grad, alpha, eps, n);
    attack_progress(ctx, 1.0);
    xfree(grad);
    return rc;
}

const AttackDef attack_ffgsm = {
    .name = "FFGSM",
    .aliases = "ffgsm,fast_fgsm",
    .summary = "FGSM from a uniform random start, fast adversarial training's attack (arXiv:2001.03994)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = ffgsm_run,
};
