/*
 * pgd.c: Projected Gradient Descent under Linf (Madry et al., arXiv:1706.06083), as
 * torchattacks 3.5.1 PGD computes it, step for step in float32:
 *   [random start: x0 = clamp(x + U(-eps, eps), 0, 1)]
 *   repeat steps: a = x_k + alpha * sign(grad CE);  d = clamp(a - x, -eps, eps);
 *                 x_{k+1} = clamp(x + d, 0, 1)
 * The targeted form descends CE towards the target. BEARD calls it with eps 8/255,
 * alpha 2/225 (sic: 225, not 255) and no random start; preset `beard` reproduces that.
 * Deliberate difference: the random start draws from beard's Philox streams (per sample),
 * not from torch's generator, so it is equal in distribution, not in value.
 */
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, 2.0 / 225, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, 10, P_SAME, "number of steps", AP_STEPS},
    {"random_start", 1, 0, P_SAME, "start from a uniform random point in the eps-ball (1/0)", AP_BOOL},
    {NULL},
};

static int pgd_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    memcpy(x_adv, x, sizeof(float) * n);
    if (attack_param_int(ctx, "random_start")) {
        for (int b = 0; b < B; b++) {
            Rng r;
            attack_rng(ctx, b, 1, &r);
            for (size_t i = b * D; i < (b + 1) * D; i++)
                x_adv[i] = clampf(x_adv[i] + (2.0f * rng_uniform(&r) - 1.0f) * eps, 0.0f, 1.0f);
        }
    }
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
            xfree(grad);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            float a = x_adv[i] + alpha * signf_torch(grad[i]);
            float d = clampf(a - x[i], -eps, eps);
            x_adv[i] = clampf(x[i] + d, 0.0f, 1.0f);
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad);
    return 0;
}

const AttackDef attack_pgd = {
    .name = "PGD",
    .aliases = "pgd,pgd_linf,linfpgd,pgdlinf",
    .summary = "Projected Gradient Descent, Linf (arXiv:1706.06083)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pgd_run,
};
