/*
 * pgdl2.c: Projected Gradient Descent under L2 (Madry et al., arXiv:1706.06083), as
 * torchattacks 3.5.1 PGDL2 computes it, step for step in float32 (norms per sample over
 * all C*H*W values):
 *   [random start: d ~ N(0, I), r ~ U(0, 1);  x_0 = clamp(x + d * (r / |d| * eps), 0, 1)]
 *   repeat steps: g = grad CE(f(x_k), y)                        (batch-mean CE)
 *                 g = g / (|g| + eps_for_division)
 *                 a = x_k + alpha * g
 *                 d = a - x;  factor = min(eps / |d|, 1);  d = d * factor
 *                 x_{k+1} = clamp(x + d, 0, 1)
 * `eps / |d|` is evaluated as torch evaluates a Python scalar divided by a tensor:
 * reciprocal(|d|) * eps. Targeted: descend CE towards the target. BEARD calls it with
 * eps 128/255, alpha 15/255, 10 steps and no random start (preset `beard`).
 *
 * Deliberate difference: the random start draws from beard's Philox streams (per sample),
 * not from torch's generator, so it is equal in distribution, not in value. Norms are
 * accumulated in double and rounded to float32 (torch sums in float32 with its own
 * blocking), which can move the last bit.
 */
#include <math.h>
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"eps", 1.0, 128.0 / 255, P_SAME, "maximum L2 perturbation", AP_EPS_L2},
    {"alpha", 0.2, 15.0 / 255, P_SAME, "step size (L2 length of each step)", AP_REAL(0, 1000)},
    {"steps", 10, 10, P_SAME, "number of steps", AP_STEPS},
    {"random_start", 1, 0, P_SAME, "start from a random point in the eps-ball (1/0)", AP_BOOL},
    {"eps_for_division", 1e-10, P_SAME, P_SAME, "added to the gradient norm before dividing", AP_POS(1)},
    {NULL},
};

enum { STREAM_START_DIR = 1, STREAM_START_RADIUS = 2 };

static float l2_norm(const float *v, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return (float)sqrt(s);
}

static int pgdl2_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float div_eps = (float)attack_param(ctx, "eps_for_division");
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    memcpy(x_adv, x, sizeof(float) * n);
    if (attack_param_int(ctx, "random_start")) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            Rng rd, rr;
            attack_rng(ctx, b, STREAM_START_DIR, &rd);
            attack_rng(ctx, b, STREAM_START_RADIUS, &rr);
            float *d = grad + (size_t)b * D, *xa = x_adv + (size_t)b * D;
            for (size_t j = 0; j < D; j++) d[j] = (float)rng_normal(&rd);
            float r = rng_uniform(&rr), nd = l2_norm(d, D);
            float f = r / nd * eps;
            for (size_t j = 0; j < D; j++) xa[j] = clampf(xa[j] + d[j] * f, 0.0f, 1.0f);
        }
    }
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
            xfree(grad);
            return -1;
        }
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *g = grad + (size_t)b * D, *xa = x_adv + (size_t)b * D;
            const float *x0 = x + (size_t)b * D;
            float gn = l2_norm(g, D) + div_eps;
            // the step, then d = a - x kept in g (no longer needed)
            for (size_t j = 0; j < D; j++) {
                float a = xa[j] + alpha * (g[j] / gn);
                g[j] = a - x0[j];
            }
            float dn = l2_norm(g, D);
            float factor = (1.0f / dn) * eps;
            if (!(factor < 1.0f) && !isnan(factor)) factor = 1.0f; // torch.min(factor, 1) keeps NaN
            for (size_t j = 0; j < D; j++) xa[j] = clampf(x0[j] + g[j] * factor, 0.0f, 1.0f);
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad);
    return 0;
}

const AttackDef attack_pgdl2 = {
    .name = "PGDL2",
    .aliases = "pgdl2,pgd_l2,l2pgd",
    .summary = "Projected Gradient Descent, L2 (arXiv:1706.06083)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pgdl2_run,
};
