/*
 * pgdrsl2.c: PGD against a randomized-smoothing classifier under L2 (Salman et al.,
 * arXiv:1906.04584), as torchattacks 3.5.1 PGDRSL2 computes it. The smoothed loss and
 * its gradient are PGDRS's (pgdrs.c, which has the details); the step is L2:
 *   g = grad / (||grad||_2 + eps_for_division);  delta = delta + alpha g
 *   delta = delta * min(eps / ||delta||_2, 1)
 * from delta = 0 (torchattacks' docstring mentions a random start; its code has none).
 * Deliberate differences: PGDRS's.
 */
#include <math.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 1.0, P_SAME, P_SAME, "maximum L2 perturbation", AP_EPS_L2},
    {"alpha", 0.2, P_SAME, P_SAME, "step size (L2 length of each step)", AP_REAL(0, 1000)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"noise_type", 0, P_SAME, P_SAME, "smoothing noise (torchattacks spells gaussian 'guassian')",
     AP_CHOICE("guassian,uniform,gaussian")},
    {"noise_sd", 0.5, P_SAME, P_SAME, "standard deviation (Gaussian) or half-width (uniform) of the noise", AP_REAL(0, 100)},
    {"noise_batch_size", 5, P_SAME, P_SAME, "noisy copies per sample", AP_INT(1, 10000)},
    {"batch_max", 2048, P_SAME, P_SAME, "torchattacks' memory chunking (no effect on the result)", AP_INT(1, 1 << 30)},
    {"eps_for_division", 1e-10, P_SAME, P_SAME, "added to the gradient norm before dividing", AP_POS(1)},
    {NULL},
};

static int pgdrsl2_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float ediv = (float)attack_param(ctx, "eps_for_division");
    int steps = attack_param_int(ctx, "steps");
    float *delta = xcalloc(sizeof(float) * n), *grad = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!delta || !grad) {
        err_set(e, "out of memory");
        goto done;
    }
    for (int s = 0; s < steps; s++) {
        if (attack_pgdrs_grad(ctx, x, delta, ctx->targeted ? t : y, B, s, grad, e)) goto done;
        for (int b = 0; b < B; b++) {
            float *g = grad + (size_t)b * D, *d = delta + (size_t)b * D;
            double ss = 0.0;
            for (size_t i = 0; i < D; i++) ss += (double)g[i] * g[i];
            float gn = (float)sqrt(ss) + ediv;
            double ds = 0.0;
            for (size_t i = 0; i < D; i++) {
                d[i] = d[i] + alpha * (g[i] / gn);
                ds += (double)d[i] * d[i];
            }
            float factor = eps / (float)sqrt(ds);
            factor = factor < 1.0f ? factor : 1.0f; // torch.min(factor, 1): eps / 0 = inf gives 1
            for (size_t i = 0; i < D; i++) d[i] *= factor;
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    for (size_t i = 0; i < n; i++) x_adv[i] = clampf(x[i] + delta[i], 0.0f, 1.0f);
    rc = 0;
done:
    xfree(delta), xfree(grad);
    return rc;
}

const AttackDef attack_pgdrsl2 = {
    .name = "PGDRSL2",
    .aliases = "pgdrsl2,pgd_rs_l2,smoothpgdl2",
    .summary = "PGD on a randomized-smoothing classifier, L2 (arXiv:1906.04584)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pgdrsl2_run,
};
