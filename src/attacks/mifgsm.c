/*
 * mifgsm.c: Momentum Iterative FGSM (Dong et al., "Boosting Adversarial Attacks with
 * Momentum", arXiv:1710.06081), as torchattacks 3.5.1 MIFGSM computes it, in float32:
 *   g_0 = 0
 *   repeat steps: d   = grad CE(f(x_k), y)                        (batch-mean CE)
 *                 d   = d / mean(|d|)                             (per sample, over C*H*W)
 *                 g   = d + decay * g;   (the momentum is this g)
 *                 a   = x_k + alpha * sign(g)
 *                 x_{k+1} = clamp(x + clamp(a - x, -eps, eps), 0, 1)
 * Targeted: descend CE towards the target. The normalisation is torchattacks', the mean
 * of |grad| (the paper's L1 norm divided by C*H*W, which changes nothing after the sign
 * but sets the scale against which the momentum accumulates).
 *
 * A sample whose gradient is exactly zero (saturated softmax, which happens on BEARD's
 * normalised inputs) gets 0/0 = NaN, as in torchattacks; sign(NaN) is 0 in torch, so the
 * sample stops moving for the rest of the run. beard reproduces that on purpose.
 * Deliberate difference: mean(|grad|) is summed in double and rounded to float32 (torch
 * sums in float32 with its own blocking), which can move its last bit.
 */
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {NULL},
};

static int mifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay");
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n);
    if (!grad || !mom) {
        xfree(grad), xfree(mom);
        return err_set(e, "out of memory");
    }
    memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, grad, NULL, e)) {
            xfree(grad), xfree(mom);
            return -1;
        }
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            const float *g = grad + (size_t)b * D, *x0 = x + (size_t)b * D;
            float *m = mom + (size_t)b * D, *xa = x_adv + (size_t)b * D;
            double acc = 0.0;
            for (size_t j = 0; j < D; j++) acc += fabsf(g[j]);
            float mean = (float)acc / (float)D; // torch.mean: float32 sum / numel
            for (size_t j = 0; j < D; j++) {
                float gj = g[j] / mean + m[j] * decay;
                m[j] = gj;
                float a = xa[j] + alpha * signf_torch(gj);
                float d = clampf(a - x0[j], -eps, eps);
                xa[j] = clampf(x0[j] + d, 0.0f, 1.0f);
            }
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad), xfree(mom);
    return 0;
}

const AttackDef attack_mifgsm = {
    .name = "MIFGSM",
    .aliases = "mifgsm,mi_fgsm,mim",
    .summary = "Momentum Iterative FGSM, Linf (arXiv:1710.06081)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = mifgsm_run,
};
