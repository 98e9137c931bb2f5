/*
 * sinifgsm.c: Scale-Invariant Nesterov Iterative FGSM (Lin et al., arXiv:1908.06281), as
 * torchattacks 3.5.1 SINIFGSM computes it, in float32:
 *   repeat steps: x_nes = x_k + decay * alpha * m
 *                 d = (sum_{i<m} grad_{x_k} CE(f(x_nes / 2^i))) / m      (batch-mean CEs)
 *                 g = decay * m + d / mean(|d|);   m = g
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * The gradient of copy i w.r.t. x_k is the gradient at x_nes / 2^i divided by 2^i (an
 * exact power of two), summed over i in order as torchattacks accumulates it. beard runs
 * the m copies of a batch as one batch of m B samples (each copy's CE keeps its 1/B).
 * Targeted: descend CE towards the target. Deliberate difference: mean |d| in double.
 */
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {"m", 5, P_SAME, P_SAME, "scale copies x / 2^i, i < m", AP_INT(1, 30)},
    {NULL},
};

static int sinifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay"), da = (float)(attack_param(ctx, "decay") * attack_param(ctx, "alpha"));
    int steps = attack_param_int(ctx, "steps"), m = attack_param_int(ctx, "m");
    float *grad = xmalloc(sizeof(float) * n * m), *mom = xcalloc(sizeof(float) * n), *xs = xmalloc(sizeof(float) * n * m);
    float *d = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!grad || !mom || !xs || !d) {
        err_set(e, "out of memory");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < m; i++) {
            float p = (float)(1u << i);
            for (size_t j = 0; j < n; j++) xs[i * n + j] = (x_adv[j] + da * mom[j]) / p;
        }
        if (attack_ce_copies(ctx, xs, B, m, y, t, grad, e)) goto done;
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int i = 0; i < m; i++) acc += grad[i * n + j] / (float)(1u << i);
            d[j] = acc / (float)m;
        }
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *g = d + (size_t)b * D, *mm = mom + (size_t)b * D;
            float mean = attack_mean_abs(g, D);
            for (size_t j = 0; j < D; j++) mm[j] = g[j] = decay * mm[j] + g[j] / mean;
        }
        attack_linf_step(x_adv, x, d, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(grad), xfree(mom), xfree(xs), xfree(d);
    return rc;
}

const AttackDef attack_sinifgsm = {
    .name = "SINIFGSM",
    .aliases = "sinifgsm,si_ni_fgsm,si_nifgsm",
    .summary = "Scale-Invariant Nesterov Iterative FGSM, Linf (arXiv:1908.06281)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = sinifgsm_run,
};
