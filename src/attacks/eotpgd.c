/*
 * eotpgd.c: PGD with Expectation over Transformation (Athalye et al., arXiv:1802.00420;
 * Liu et al., arXiv:1810.01279), as torchattacks 3.5.1 EOTPGD computes it: Linf PGD
 * whose step follows sign(sum of eot_iter gradients) (the batch-mean CE), from a uniform
 * random start when random_start (its default).
 * The expectation is over the model's own randomness. beard's networks are
 * deterministic in eval mode, so the eot_iter gradients are equal and their sum has the
 * sign of one of them: beard computes one gradient per step (eot_iter times fewer
 * passes than torchattacks, the same iterates; with a power of two eot_iter the sum is
 * even bitwise eot_iter times the gradient). Deliberate difference: the random start
 * draws from beard's Philox stream of each sample.
 */
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"eot_iter", 2, P_SAME, P_SAME, "gradients summed per step (one suffices for a deterministic model)", AP_INT(1, 1000)},
    {"random_start", 1, P_SAME, P_SAME, "start from a uniform random point in the eps-ball", AP_BOOL},
    {NULL},
};

static int eotpgd_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t n = (size_t)B * ctx->D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    int steps = attack_param_int(ctx, "steps");
    float *grad = xmalloc(sizeof(float) * n);
    if (!grad) return err_set(e, "out of memory");
    if (attack_param_int(ctx, "random_start")) attack_uniform_start(ctx, x, B, eps, 1, x_adv);
    else memcpy(x_adv, x, sizeof(float) * n);
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

const AttackDef attack_eotpgd = {
    .name = "EOTPGD",
    .aliases = "eotpgd,eot_pgd",
    .summary = "PGD with expectation over transformation (arXiv:1802.00420)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = eotpgd_run,
};
