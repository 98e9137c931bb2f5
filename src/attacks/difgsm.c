/*
 * difgsm.c: Diverse-Inputs Iterative FGSM (Xie et al., "Improving Transferability of
 * Adversarial Examples with Input Diversity", arXiv:1803.06978), as torchattacks 3.5.1
 * DIFGSM computes it, in float32 (TI-FGSM, tifgsm.c, adds a gradient kernel and shares
 * this step):
 *   [random start: x_0 = clamp(x + U(-eps, eps), 0, 1)]
 *   repeat steps: d = grad_{x_k} CE(f(T(x_k)))  (T: input diversity, see transfer.h)
 *                 [TI: d = W * d, the per-channel convolution]
 *                 g = d / mean(|d|) + decay * m;   m = g
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * torchattacks' defaults: decay 0 (no momentum: M-DI-FGSM needs decay 1), resize_rate
 * 0.9, diversity_prob 0.5, no random start. With decay 0 a zero gradient still gives
 * NaN (0/0 + NaN * 0) and the sample stops, as in torchattacks.
 * Deliberate differences: one input-diversity draw per sample and step from beard's
 * Philox streams instead of one per batch from torch's generator (see transfer.h;
 * batch_draws=1 shares one draw per batch and step, as torchattacks does: the same
 * expected accuracy, a much larger spread from run to run); mean |d| summed in double.
 */
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 0.0, P_SAME, P_SAME, "momentum decay factor (0: none, torchattacks' default)", AP_REAL(0, 1000)},
    {"resize_rate", 0.9, P_SAME, P_SAME, "the resized side is drawn from [int(W * rate), W)", AP_POS(1)},
    {"diversity_prob", 0.5, P_SAME, P_SAME, "probability of transforming the input at a step", AP_REAL(0, 1)},
    {"batch_draws", 0, P_SAME, P_SAME, "one input-diversity draw per batch and step, shared by its images, as torchattacks does (0: one per image)", AP_BOOL},
    {"random_start", 0, P_SAME, P_SAME, "start from a uniform random point in the eps-ball", AP_BOOL},
    {NULL},
};

int attack_difgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv,
                      const float *kernel, int klen, Err *e) {
    const Net *net = ctx->net;
    int C = net->in_c, H = net->in_h, W = net->in_w;
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay");
    double rate = attack_param(ctx, "resize_rate"), prob = attack_param(ctx, "diversity_prob");
    int steps = attack_param_int(ctx, "steps"), batch_draws = attack_param_int(ctx, "batch_draws");
    if ((size_t)C * H * W != D) return err_set(e, "input diversity needs image inputs");
    if (prob > 0 && di_check("input diversity", H, W, rate, e)) return -1;
    float *xt = xmalloc(sizeof(float) * n), *gt = xmalloc(sizeof(float) * n), *g = xmalloc(sizeof(float) * n);
    float *mom = xcalloc(sizeof(float) * n);
    DiDraw *dr = malloc(sizeof(DiDraw) * (size_t)B);
    int rc = -1;
    if (!xt || !gt || !g || !mom || !dr) {
        err_set(e, "out of memory");
        goto done;
    }
    if (attack_param_int(ctx, "random_start")) attack_uniform_start(ctx, x, B, eps, 1, x_adv);
    else memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    for (int s = 0; s < steps; s++) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            Rng r;
            // batch_draws: every image takes the draw of the batch's first one (its stream)
            attack_rng(ctx, batch_draws ? 0 : b, 2 + (uint32_t)(s & 0xfff), &r);
            if (prob > 0) di_draw(&r, W, rate, prob, &dr[b]);
            else dr[b].apply = 0;
            di_forward(xt + (size_t)b * D, x_adv + (size_t)b * D, C, W, &dr[b]);
        }
        if (attack_gradient(ctx, xt, B, attack_loss_ce, &lc, NULL, gt, NULL, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * D, *mb = mom + (size_t)b * D;
            if (kernel) {
                float *tmp = xt + (size_t)b * D; // the transformed input is spent
                di_backward(tmp, gt + (size_t)b * D, C, W, &dr[b]);
                ti_conv(gb, tmp, kernel, klen, C, H, W);
            } else {
                di_backward(gb, gt + (size_t)b * D, C, W, &dr[b]);
            }
            float mean = attack_mean_abs(gb, D);
            for (size_t j = 0; j < D; j++) mb[j] = gb[j] = gb[j] / mean + mb[j] * decay;
        }
        attack_linf_step(x_adv, x, g, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(xt), xfree(gt), xfree(g), xfree(mom), free(dr);
    return rc;
}

static int difgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_difgsm_run(ctx, x, y, t, B, x_adv, NULL, 0, e);
}

// the input diversity's constraints on the image (shared with TI-FGSM)
int attack_di_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e) {
    if (!shape || attack_params_get(p, "diversity_prob") == 0) return 0;
    return di_check(def->name, shape->H, shape->W, attack_params_get(p, "resize_rate"), e);
}

const AttackDef attack_difgsm = {
    .name = "DIFGSM",
    .aliases = "difgsm,di_fgsm,dim,di2fgsm",
    .summary = "Diverse-Inputs Iterative FGSM (random resize and pad), Linf (arXiv:1803.06978)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = difgsm_run,
    .check = attack_di_check,
};
