/*
 * bim.c: the Basic Iterative Method (Kurakin et al., "Adversarial examples in the
 * physical world", arXiv:1607.02533), as torchattacks 3.5.1 BIM computes it, step for
 * step in float32:
 *   repeat steps: a   = x_k + alpha * sign(grad CE(f(x_k), y))
 *                 lo  = max(x - eps, 0)
 *                 b   = a >= lo ? a : lo
 *                 c   = b > x + eps ? x + eps : b
 *                 x_{k+1} = min(c, 1)
 * BIM starts at x itself (no random start) and the CE is the batch mean (its 1/B cannot
 * change a sign but is kept). Targeted: descend CE towards the target.
 *
 * The clamp sequence is torchattacks' own and is not PGD's clamp(x + clamp(d, -eps, eps),
 * 0, 1): the lower bound max(x - eps, 0) is clamped to the box before use while the upper
 * bound x + eps is not, and only a final min(., 1) follows. On [0, 1] data the two agree;
 * under beard semantics (normalised inputs outside [0, 1]) they do not: a pixel with
 * x < -eps ends at x + eps (below 0) and one with x > 1 + eps ends at 1. beard keeps
 * torchattacks' sequence, since that is what BEARD-style evaluations measured.
 *
 * steps = 0 picks torchattacks' schedule int(min(eps*255 + 4, 1.25*eps*255)).
 * No deliberate differences from the reference.
 */
#include <math.h>
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps (0: int(min(eps*255 + 4, 1.25*eps*255)))", AP_INT(0, 100000)},
    {NULL},
};

static int bim_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    double eps_d = attack_param(ctx, "eps");
    float eps = (float)eps_d, alpha = (float)attack_param(ctx, "alpha");
    int steps = attack_param_int(ctx, "steps");
    if (steps == 0) steps = (int)fmin(eps_d * 255 + 4, 1.25 * eps_d * 255); // Python int() truncates
    if (steps < 0) return err_set(e, "steps must be >= 0 (got %d)", steps);
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
            xfree(grad);
            return -1;
        }
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)n; i++) {
            float a = x_adv[i] + alpha * signf_torch(grad[i]);
            float lo = x[i] - eps;
            lo = lo < 0.0f ? 0.0f : lo;
            float hi = x[i] + eps;
            float b = a >= lo ? a : lo;
            float c = b > hi ? hi : b;
            x_adv[i] = c > 1.0f ? 1.0f : c;
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad);
    return 0;
}

const AttackDef attack_bim = {
    .name = "BIM",
    .aliases = "bim,i_fgsm,ifgsm",
    .summary = "Basic Iterative Method, iterated FGSM with torchattacks' clamps (arXiv:1607.02533)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = bim_run,
};
