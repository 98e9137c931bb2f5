/*
 * upgd.c: Universal PGD, torchattacks 3.5.1 UPGD: PGD with MI-FGSM's momentum, a choice
 * of loss and EOT, in float32:
 *   [random start: x_0 = clamp(x + U(-eps, eps), 0, 1)]
 *   repeat steps: g = sum over eot_iter of grad L / eot_iter
 *                 g = g / mean(|g|) + decay * m;   m = g
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * Losses (`loss`):
 *   ce:     the batch-mean cross-entropy (targeted: minus the CE of the target);
 *   dlr:    Croce & Hein's DLR, summed: -(z_y - z_(2 or 1)) / (z_(1) - z_(3) + 1e-12),
 *           targeted -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12) (z_(k): the k-th
 *           largest logit);
 *   margin: C&W's f with kappa 0, summed: -max(z_y - max_k((1 - onehot_y) z)_k, 0),
 *           targeted -max(max_k((1 - onehot_t) z)_k - z_t, 0).
 * torchattacks' quirks, reproduced with corrected = 0 (presets torchattacks and beard):
 *   - targeted DLR takes z_y from the labels torchattacks was given, and with BEARD's
 *     set_mode_targeted_by_label those are the targets: z_t - z_t = 0, the gradient is 0,
 *     mean|g| is 0 and sign(0/0) = 0, so targeted UPGD-DLR never moves (its robust
 *     accuracy is the clean accuracy). corrected = 1 (preset fra31) uses the true label.
 *   - the margin's "other classes" maximum is taken over (1 - onehot) * z, where the
 *     label's own entry is 0, not excluded: when every other logit is negative the
 *     maximum is that 0. corrected = 1 takes the maximum over the other classes only.
 * A zero gradient gives NaN momentum that stops the sample for good, as in torchattacks
 * (see mifgsm.c). beard's models are deterministic, so the eot_iter gradients are equal:
 * one pass computes g / eot_iter, summed eot_iter times in float32 as torchattacks sums
 * them. Deliberate differences: the random start's stream; mean |g| summed in double.
 */
#include <math.h>
#include <string.h>

#include "transfer.h"

enum { LOSS_CE, LOSS_DLR, LOSS_MARGIN };

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"random_start", 0, P_SAME, P_SAME, "start from a uniform random point in the eps-ball", AP_BOOL},
    {"loss", LOSS_CE, P_SAME, P_SAME, "loss to ascend", AP_CHOICE("ce,dlr,margin")},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {"eot_iter", 1, P_SAME, P_SAME, "gradients averaged per step", AP_INT(1, 1000)},
    {"corrected", 0, P_SAME, 1, "fix torchattacks' targeted DLR (true label) and margin maximum (see upgd.c)", AP_BOOL},
    {NULL},
};

typedef struct {
    const int *y, *t;
    int K, targeted, loss, corrected;
    float scale; // 1/B for CE (mean), 1 for DLR and margin (sum)
} UpgdLoss;

// the k-th largest logit's index (k = 0 the largest), by value then index
static void top4(const float *z, int K, int *o) {
    for (int j = 0; j < 4; j++) o[j] = -1;
    for (int k = 0; k < K; k++) {
        int p = k;
        for (int j = 0; j < 4 && j < K; j++) {
            if (o[j] < 0) {
                o[j] = p;
                break;
            }
            if (z[p] > z[o[j]]) {
                int tmp = o[j];
                o[j] = p, p = tmp;
            }
        }
    }
}

static double upgd_loss(void *c, int i, const float *z, float *dz) {
    const UpgdLoss *u = c;
    int K = u->K, y = u->y[i], t = u->targeted ? u->t[i] : -1;
    for (int k = 0; k < K; k++) dz[k] = 0.0f;
    if (u->loss == LOSS_CE) {
        AttackLossCtx lc = {u->targeted ? u->t : u->y, K, u->targeted ? -1.0f : 1.0f, u->scale};
        return attack_loss_ce(&lc, i, z, dz);
    }
    if (u->loss == LOSS_DLR) {
        int o[4];
        top4(z, K, o);
        if (!u->targeted) {
            float ind = o[0] == y ? 1.0f : 0.0f;
            float num = z[y] - z[o[1]] * ind - z[o[0]] * (1.0f - ind);
            float den = z[o[0]] - z[o[2]] + 1e-12f;
            // cost = -(num / den)
            float gnum = -1.0f / den, gden = num / (den * den);
            dz[y] += gnum;
            dz[o[1]] += -ind * gnum;
            dz[o[0]] += -(1.0f - ind) * gnum + gden;
            dz[o[2]] += -gden;
            return -(double)num / den;
        }
        int yy = u->corrected ? y : t; // torchattacks' "labels" are the targets (see the header)
        float num = z[yy] - z[t];
        float den = z[o[0]] - 0.5f * z[o[2]] - 0.5f * z[o[3]] + 1e-12f;
        float gnum = -1.0f / den, gden = num / (den * den);
        dz[yy] += gnum;
        dz[t] -= gnum;
        dz[o[0]] += gden;
        dz[o[2]] += -0.5f * gden;
        dz[o[3]] += -0.5f * gden;
        return -(double)num / den;
    }
    // margin: i = max over the masked logits, j = the label's (target's) logit
    int lab = u->targeted ? t : y, arg = -1;
    float best = -INFINITY;
    for (int k = 0; k < K; k++) {
        float v = k == lab ? (u->corrected ? -INFINITY : 0.0f * z[k]) : z[k];
        if (arg < 0 || v > best) best = v, arg = k;
    }
    float diff = u->targeted ? best - z[lab] : z[lab] - best;
    if (!(diff >= 0)) return 0.0; // clamp(min=0) passes the gradient where diff >= 0 only
    // cost = -diff; the masked label entry 0 * z_lab carries no gradient
    float sl = u->targeted ? 1.0f : -1.0f;
    dz[lab] += sl;
    if (arg != lab) dz[arg] -= sl;
    return -(double)diff;
}

static int upgd_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay");
    int steps = attack_param_int(ctx, "steps"), eot = attack_param_int(ctx, "eot_iter");
    int loss = attack_param_int(ctx, "loss");
    float *grad = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n);
    if (!grad || !mom) {
        xfree(grad), xfree(mom);
        return err_set(e, "out of memory");
    }
    if (attack_param_int(ctx, "random_start")) attack_uniform_start(ctx, x, B, eps, 1, x_adv);
    else memcpy(x_adv, x, sizeof(float) * n);
    UpgdLoss ul = {y, t, ctx->K, ctx->targeted, loss, attack_param_int(ctx, "corrected"),
                   loss == LOSS_CE ? 1.0f / (float)B : 1.0f};
    for (int s = 0; s < steps; s++) {
        if (attack_gradient(ctx, x_adv, B, upgd_loss, &ul, NULL, grad, NULL, e)) {
            xfree(grad), xfree(mom);
            return -1;
        }
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *g = grad + (size_t)b * D, *m = mom + (size_t)b * D;
            for (size_t j = 0; j < D; j++) { // sum of eot_iter equal terms g / eot_iter
                float q = g[j] / (float)eot, acc = 0.0f;
                for (int k = 0; k < eot; k++) acc += q;
                g[j] = acc;
            }
            float mean = attack_mean_abs(g, D);
            for (size_t j = 0; j < D; j++) m[j] = g[j] = g[j] / mean + m[j] * decay;
        }
        attack_linf_step(x_adv, x, grad, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    xfree(grad), xfree(mom);
    return 0;
}

static int upgd_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e) {
    if (shape && attack_params_get(p, "loss") == LOSS_DLR && shape->K < 4)
        return err_set(e, "%s: the DLR loss needs at least 4 classes (the model has %d)", def->name, shape->K);
    return 0;
}

const AttackDef attack_upgd = {
    .name = "UPGD",
    .aliases = "upgd",
    .summary = "Universal PGD: momentum PGD with CE, DLR or margin loss and EOT (torchattacks' UPGD)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = upgd_run,
    .check = upgd_check,
};
