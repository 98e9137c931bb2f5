/*
 * rfgsm.c: R+FGSM (Tramer et al., "Ensemble Adversarial Training", arXiv:1705.07204) in
 * the iterative form torchattacks 3.5.1 RFGSM computes, in float32:
 *   x_0 = clamp(x + alpha * sign(N(0, 1)), 0, 1)             (a random +-alpha corner)
 *   repeat steps: x_{k+1} = clamp(x + clamp(x_k + alpha sign(grad CE) - x, -eps, eps), 0, 1)
 * with the batch-mean CE (descended towards the target when targeted). Note that
 * torchattacks' step size is alpha for the start and every step (the paper's single
 * step uses eps - alpha); beard follows torchattacks.
 * Deliberate difference: the random corner is drawn from beard's Philox stream of each
 * sample (sign(N(0,1)) is a fair coin, as is one random bit), not torch's generator.
 */
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "size of the random start and of each step", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {NULL},
};

static int rfgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng r;
        attack_rng(ctx, b, 1, &r);
        uint32_t bits = 0;
        for (size_t j = 0; j < D; j++) {
            if ((j & 31) == 0) bits = rng_u32(&r);
            size_t i = (size_t)b * D + j;
            x_adv[i] = clampf(x[i] + alpha * ((bits >> (j & 31)) & 1 ? 1.0f : -1.0f), 0.0f, 1.0f);
        }
    }
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
            xfree(grad);
            return -1;
        }
        attack_linf_step(x_adv, x, grad, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad);
    return 0;
}

const AttackDef attack_rfgsm = {
    .name = "RFGSM",
    .aliases = "rfgsm,r_fgsm",
    .summary = "R+FGSM: a random +-alpha start, then signed steps (arXiv:1705.07204)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = rfgsm_run,
};
