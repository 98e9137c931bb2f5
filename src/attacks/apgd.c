/*
 * apgd.c: Auto-PGD (Croce & Hein, "Reliable evaluation of adversarial robustness with an
 * ensemble of diverse parameter-free attacks", arXiv:2003.01690) with the cross-entropy
 * or the DLR loss, under Linf or L2, as torchattacks 3.5.1 APGD computes it. Also the
 * single run that APGD-T (apgdt.c) shares (apgd.h).
 *
 * One run (torchattacks' attack_single_run), per sample, in float32:
 *   start   x0 = clamp(x + eps * t / max|t|, 0, 1), t ~ U(-1, 1)^D          (Linf)
 *           x0 = clamp(x + eps * t / (||t||_2 + 1e-12), 0, 1), t ~ N(0, I)    (L2)
 *   step    eta = 2 eps; momentum a = 1 at the first step, then 0.75:
 *           z = P(x_k + eta * sign(g_k));  x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))
 *           with P the projection on the eps-ball and the [0, 1] box (L2: the gradient
 *           normalised, the ball's projection by rescaling, torchattacks' 1e-12s kept).
 *   losses  per sample, summed over the batch (no 1/B): CE; DLR = -(z_y - max_{i!=y} z_i)
 *           / (z_(1) - z_(3) + 1e-12); targeted DLR (APGD-T) = -(z_y - z_t) /
 *           (z_(1) - z_(3)/2 - z_(4)/2 + 1e-12), z_(k) the k-th largest logit.
 *   best    x_best / grad_best / loss_best follow the strict loss increases; x_best_adv
 *           takes every misclassified iterate (the last one wins); acc = never
 *           misclassified so far.
 *   checkpoints  counter reaches k, with k = steps_2 = max(int(0.22 steps), 1) at first,
 *           then k = max(k - size_decr, steps_min), size_decr = max(int(0.03 steps), 1),
 *           steps_min = max(int(0.06 steps), 1), the paper's p_{j+1} = p_j + max(p_j -
 *           p_{j-1} - 0.03, 0.06) in whole iterations. (10 steps: checks after iterations 2,
 *           3, ..., 10; 100 steps: after 22, 41, 57, 70, 80, 87, 93 and 99.) At a
 *           checkpoint the step size halves, and the iterate and gradient go back to the
 *           best ones, where either the loss rose in at most rho * k of the last k steps
 *           (torchattacks indexes loss_steps[i - k] with Python's negative index at the
 *           first checkpoint: that reads the not yet written, zero, last row; reproduced),
 *           or the previous checkpoint did not reduce and the best loss has not improved.
 * APGD (torchattacks' perturb) attacks only the points the model classifies correctly;
 * each restart runs on the points no earlier restart fooled, and the output is the clean
 * image wherever the attack failed (that is what AutoAttack builds on).
 *
 * Deliberate differences:
 * - Random starts draw from beard's per-sample Philox streams (attack_rng, stream 0x100 +
 *   restart; APGD-T its own), not from torch's generator reseeded with `seed` in each
 *   perturb call: the adversarial examples equal torchattacks' in distribution, not in
 *   value, and do not depend on the batch size or the thread count.
 * - The clean forward pass of perturb is done once; the CE loss is computed in double
 *   and rounded (torch: float32 log-softmax); norms are summed in double. These change
 *   last bits only.
 * - torchattacks has no targeted mode for APGD (its targeted variant is APGD-T), so
 *   neither has beard's.
 * fra31/auto-attack's APGDAttack computes the same algorithm; it differs only in float
 * details (Linf start t / (max|t| + 1e-12); the last L2 projection without the + 1e-12
 * inside the min; targeted DLR denominator z_(1) - (z_(3) + z_(4)) / 2), which beard does
 * not reproduce. Its defaults (n_iter 100) are the `fra31` preset.
 */
#include <string.h>

#include "../nn/nn.h"
#include "apgd.h"

// ----------------------------------------------------------------------------
// losses: per-sample value (float32, as torch) and gradient w.r.t. the logits

typedef struct {
    ApgdLoss kind;
    const int *y, *yt;
    int K;
    float *loss; // (n) out
} LossCtx;

// indices of the 4 largest logits, descending; ties go to the higher index first, as a
// stable ascending sort read from its end (torch.sort(dim=1)[1][:, -k])
static void top4(const float *z, int K, int *top) {
    int n = 0;
    for (int k = 0; k < K; k++) {
        int pos = n < 4 ? n : 4;
        while (pos > 0 && z[k] >= z[top[pos - 1]]) pos--;
        if (pos >= 4) continue;
        for (int j = (n < 4 ? n : 3); j > pos; j--) top[j] = top[j - 1];
        top[pos] = k;
        if (n < 4) n++;
    }
}

static double loss_cb(void *c, int i, const float *z, float *dz) {
    const LossCtx *lc = c;
    int K = lc->K, y = lc->y[i];
    if (lc->kind == APGD_LOSS_CE) {
        double l = crossentropy_sample(dz, z, y, K);
        lc->loss[i] = (float)l;
        return l;
    }
    int top[4];
    top4(z, K, top);
    for (int k = 0; k < K; k++) dz[k] = 0.0f;
    float num, den, l;
    if (lc->kind == APGD_LOSS_DLR) {
        float ind = top[0] == y ? 1.0f : 0.0f;
        num = z[y] - z[top[1]] * ind - z[top[0]] * (1.0f - ind);
        den = z[top[0]] - z[top[2]] + 1e-12f;
        l = -num / den;
        float q = num / (den * den);
        dz[y] += -1.0f / den;
        dz[top[1]] += ind / den;
        dz[top[0]] += (1.0f - ind) / den + q;
        dz[top[2]] -= q;
    } else {
        int t = lc->yt[i];
        num = z[y] - z[t];
        den = z[top[0]] - 0.5f * z[top[2]] - 0.5f * z[top[3]] + 1e-12f;
        l = -num / den;
        float q = num / (den * den);
        dz[y] += -1.0f / den;
        dz[t] += 1.0f / den;
        dz[top[0]] += q;
        dz[top[2]] -= 0.5f * q;
        dz[top[3]] -= 0.5f * q;
    }
    lc->loss[i] = l;
    return l;
}

// gradient of the summed loss at xa, averaged over eot_iter passes; logits and the
// per-sample losses of the last pass
static int eot_gradient(const AttackCtx *ctx, const ApgdConfig *cfg, LossCtx *lc, const float *xa, int n,
                        float *logits, float *grad, float *gtmp, Err *e) {
    size_t nd = (size_t)n * ctx->D;
    if (cfg->eot_iter <= 1) return attack_gradient(ctx, xa, n, loss_cb, lc, logits, grad, NULL, e);
    memset(grad, 0, sizeof(float) * nd);
    for (int r = 0; r < cfg->eot_iter; r++) {
        if (attack_gradient(ctx, xa, n, loss_cb, lc, logits, gtmp, NULL, e)) return -1;
        for (size_t j = 0; j < nd; j++) grad[j] += gtmp[j];
    }
    float div = (float)cfg->eot_iter;
    for (size_t j = 0; j < nd; j++) grad[j] /= div;
    return 0;
}

static float sumsq(const float *v, size_t n) {
    double s = 0.0;
    for (size_t j = 0; j < n; j++) s += (double)v[j] * v[j];
    return (float)s;
}

// one L2 step of sample b (torchattacks' float order); x1 is scratch of D floats
static void l2_step(float *xa, const float *xo, const float *x0, const float *g, float ss, float a, float eps,
                    size_t D, float *x1) {
    float gn = sqrtf(sumsq(g, D)) + 1e-12f;
    for (size_t j = 0; j < D; j++) x1[j] = xa[j] + ss * g[j] / gn;
    for (size_t j = 0; j < D; j++) x1[j] -= x0[j]; // x1 now holds d = x1 - x
    float dn = sqrtf(sumsq(x1, D));
    float r = fminf(eps, dn), dd = dn + 1e-12f;
    for (size_t j = 0; j < D; j++) {
        float z = clampf(x0[j] + x1[j] / dd * r, 0.0f, 1.0f);
        x1[j] = xa[j] + (z - xa[j]) * a + (xa[j] - xo[j]) * (1.0f - a) - x0[j]; // d again
    }
    dn = sqrtf(sumsq(x1, D));
    r = fminf(eps, dn + 1e-12f), dd = dn + 1e-12f;
    for (size_t j = 0; j < D; j++) x1[j] = clampf(x0[j] + x1[j] / dd * r, 0.0f, 1.0f);
}

int apgd_single_run(const AttackCtx *ctx, const ApgdConfig *cfg, const float *x, const int *y, const int *yt, int n,
                    uint32_t stream, unsigned char *acc, float *x_best_adv, float *loss_best_out, double prog0,
                    double prog1, Err *e) {
    size_t D = ctx->D, nd = (size_t)n * D;
    int K = ctx->K, steps = cfg->steps;
    if (n <= 0) return 0;
    if (steps < 1) return err_set(e, "steps must be at least 1");
    float eps = (float)cfg->eps;
    float *x_adv = xmalloc(sizeof(float) * nd), *x_best = xmalloc(sizeof(float) * nd);
    float *x_old = xmalloc(sizeof(float) * nd), *grad = xmalloc(sizeof(float) * nd);
    float *grad_best = xmalloc(sizeof(float) * nd), *tmp = xmalloc(sizeof(float) * nd);
    float *logits = xmalloc(sizeof(float) * (size_t)n * K), *loss = xmalloc(sizeof(float) * n);
    float *loss_best = xmalloc(sizeof(float) * n), *loss_last = xmalloc(sizeof(float) * n);
    float *loss_steps = xcalloc(sizeof(float) * (size_t)steps * n), *step = xmalloc(sizeof(float) * n);
    unsigned char *reduced = xmalloc(n), *fl = xmalloc(n);
    int rc = -1;
    if (!x_adv || !x_best || !x_old || !grad || !grad_best || !tmp || !logits || !loss || !loss_best || !loss_last ||
        !loss_steps || !step || !reduced || !fl) {
        err_set(e, "out of memory for APGD on %d samples", n);
        goto done;
    }
    // random start
    for (int b = 0; b < n; b++) {
        Rng r;
        attack_rng(ctx, b, stream, &r);
        float *t = tmp + b * D, *xa = x_adv + b * D;
        const float *x0 = x + b * D;
        if (cfg->norm == APGD_NORM_LINF) {
            float m = 0.0f;
            for (size_t j = 0; j < D; j++) {
                t[j] = 2.0f * rng_uniform(&r) - 1.0f;
                m = fmaxf(m, fabsf(t[j]));
            }
            for (size_t j = 0; j < D; j++) xa[j] = clampf(x0[j] + eps * t[j] / m, 0.0f, 1.0f);
        } else {
            for (size_t j = 0; j < D; j++) t[j] = (float)rng_normal(&r);
            float tn = sqrtf(sumsq(t, D)) + 1e-12f;
            for (size_t j = 0; j < D; j++) xa[j] = clampf(x0[j] + eps * t[j] / tn, 0.0f, 1.0f);
        }
    }
    memcpy(x_best, x_adv, sizeof(float) * nd);
    memcpy(x_best_adv, x_adv, sizeof(float) * nd);
    LossCtx lc = {cfg->loss, y, yt, K, loss};
    if (eot_gradient(ctx, cfg, &lc, x_adv, n, logits, grad, tmp, e)) goto done;
    memcpy(grad_best, grad, sizeof(float) * nd);
    for (int b = 0; b < n; b++) {
        acc[b] = logits_argmax(logits + (size_t)b * K, K) == y[b];
        loss_best[b] = loss_last[b] = loss[b];
        step[b] = 2.0f * eps;
        reduced[b] = 1;
    }
    memcpy(x_old, x_adv, sizeof(float) * nd);
    int steps_2 = MAX((int)(0.22 * steps), 1), steps_min = MAX((int)(0.06 * steps), 1);
    int size_decr = MAX((int)(0.03 * steps), 1), k = steps_2, counter3 = 0;
    attack_progress(ctx, prog0 + (prog1 - prog0) / (steps + 1));
    for (int i = 0; i < steps; i++) {
        float a = i > 0 ? 0.75f : 1.0f;
        for (int b = 0; b < n; b++) {
            float *xa = x_adv + b * D, *xo = x_old + b * D;
            const float *x0 = x + b * D, *g = grad + b * D;
            float ss = step[b];
            if (cfg->norm == APGD_NORM_LINF) {
                for (size_t j = 0; j < D; j++) {
                    float lo = x0[j] - eps, hi = x0[j] + eps, v = xa[j];
                    float z = clampf(fminf(fmaxf(v + ss * signf_torch(g[j]), lo), hi), 0.0f, 1.0f);
                    float g2 = v - xo[j];
                    xo[j] = v;
                    xa[j] = clampf(fminf(fmaxf(v + (z - v) * a + g2 * (1.0f - a), lo), hi), 0.0f, 1.0f);
                }
            } else {
                float *x1 = tmp + b * D;
                l2_step(xa, xo, x0, g, ss, a, eps, D, x1);
                memcpy(xo, xa, sizeof(float) * D);
                memcpy(xa, x1, sizeof(float) * D);
            }
        }
        if (eot_gradient(ctx, cfg, &lc, x_adv, n, logits, grad, tmp, e)) goto done;
        float *ls = loss_steps + (size_t)i * n;
        for (int b = 0; b < n; b++) {
            int pred_ok = logits_argmax(logits + (size_t)b * K, K) == y[b];
            if (!pred_ok) {
                acc[b] = 0;
                memcpy(x_best_adv + b * D, x_adv + b * D, sizeof(float) * D);
            }
            ls[b] = loss[b];
            if (loss[b] > loss_best[b]) {
                memcpy(x_best + b * D, x_adv + b * D, sizeof(float) * D);
                memcpy(grad_best + b * D, grad + b * D, sizeof(float) * D);
                loss_best[b] = loss[b];
            }
        }
        if (++counter3 == k) {
            for (int b = 0; b < n; b++) {
                int t = 0;
                for (int c = 0; c < k; c++) {
                    int j1 = ((i - c) % steps + steps) % steps, j0 = ((i - c - 1) % steps + steps) % steps;
                    t += loss_steps[(size_t)j1 * n + b] > loss_steps[(size_t)j0 * n + b];
                }
                int osc = (double)t <= k * cfg->rho;
                int no_impr = !reduced[b] && loss_last[b] >= loss_best[b];
                fl[b] = osc || no_impr;
                reduced[b] = fl[b];
                loss_last[b] = loss_best[b];
                if (fl[b]) {
                    step[b] /= 2.0f;
                    memcpy(x_adv + b * D, x_best + b * D, sizeof(float) * D);
                    memcpy(grad + b * D, grad_best + b * D, sizeof(float) * D);
                }
            }
            counter3 = 0;
            k = MAX(k - size_decr, steps_min);
        }
        attack_progress(ctx, prog0 + (prog1 - prog0) * (i + 2) / (steps + 1));
    }
    if (loss_best_out) memcpy(loss_best_out, loss_best, sizeof(float) * n);
    rc = 0;
done:
    xfree(x_adv), xfree(x_best), xfree(x_old), xfree(grad), xfree(grad_best), xfree(tmp);
    xfree(logits), xfree(loss), xfree(loss_best), xfree(loss_last), xfree(loss_steps), xfree(step);
    xfree(reduced), xfree(fl);
    return rc;
}

// ----------------------------------------------------------------------------
// APGD (torchattacks' perturb with cheap=True)

static const AttackParamDef params[] = {
    {"norm", 0, P_SAME, P_SAME, "threat model", AP_CHOICE("Linf,L2")},
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum perturbation (Linf or L2)", AP_EPS_L2},
    {"steps", 10, P_SAME, 100, "iterations per restart (fra31: n_iter)", AP_STEPS},
    {"n_restarts", 1, P_SAME, P_SAME, "random restarts, each on the points still robust", AP_INT(1, 1000)},
    {"loss", 0, P_SAME, P_SAME, "loss to maximise: cross-entropy or DLR", AP_CHOICE("ce,dlr")},
    {"eot_iter", 1, P_SAME, P_SAME, "gradients averaged per step (EOT)", AP_INT(1, 1000)},
    {"rho", 0.75, P_SAME, P_SAME, "step-size checkpoint threshold", AP_REAL(0, 1)},
    {NULL},
};

int attack_on_robust(const AttackCtx *ctx, const float *x, const int *lab, int B, unsigned char *robust, int runs,
                     AttackSubsetRun fn, void *user, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int *sel = xmalloc(sizeof(int) * B), *ids = xmalloc(sizeof(int) * B), *ys = xmalloc(sizeof(int) * B);
    unsigned char *fooled = xmalloc(B), *own = robust ? NULL : xmalloc(B);
    float *xs = xmalloc(sizeof(float) * D * B), *adv = xmalloc(sizeof(float) * D * B);
    int rc = -1;
    if (!sel || !ids || !ys || !fooled || !xs || !adv || (!robust && !own)) {
        err_set(e, "out of memory");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * D * B);
    if (!robust) {
        if (attack_predict(ctx, x, B, sel, e)) goto done;
        for (int b = 0; b < B; b++) own[b] = ctx->targeted ? sel[b] != lab[b] : sel[b] == lab[b];
        robust = own;
    }
    for (int r = 0; r < runs; r++) {
        int m = 0;
        for (int b = 0; b < B; b++)
            if (robust[b]) sel[m++] = b;
        if (!m) continue;
        for (int j = 0; j < m; j++) {
            memcpy(xs + j * D, x + sel[j] * D, sizeof(float) * D);
            ys[j] = lab[sel[j]];
        }
        AttackCtx sub = attack_subctx(ctx, sel, m, ids, (double)r / runs, (double)(r + 1) / runs);
        memset(fooled, 0, m);
        if (fn(&sub, xs, ys, sel, m, r, fooled, adv, user, e)) goto done;
        for (int j = 0; j < m; j++)
            if (fooled[j]) {
                robust[sel[j]] = 0;
                memcpy(x_adv + sel[j] * D, adv + j * D, sizeof(float) * D);
            }
    }
    rc = 0;
done:
    xfree(sel), xfree(ids), xfree(ys), xfree(fooled), xfree(own), xfree(xs), xfree(adv);
    return rc;
}

static int apgd_subset(const AttackCtx *sub, const float *xs, const int *ys, const int *sel, int m, int r,
                       unsigned char *fooled, float *adv, void *user, Err *e) {
    if (apgd_single_run(sub, user, xs, ys, NULL, m, 0x100u + (uint32_t)(r & 0xff), fooled, adv, NULL, 0, 1, e))
        return -1;
    for (int j = 0; j < m; j++) fooled[j] = !fooled[j]; // the run reports "never misclassified"
    return 0;
}

static int apgd_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    ApgdConfig cfg = {attack_param_int(ctx, "norm"), attack_param(ctx, "eps"), attack_param_int(ctx, "steps"),
                      attack_param_int(ctx, "eot_iter"), attack_param(ctx, "rho"),
                      attack_param_int(ctx, "loss") ? APGD_LOSS_DLR : APGD_LOSS_CE};
    int R = attack_param_int(ctx, "n_restarts");
    if (cfg.loss == APGD_LOSS_DLR && ctx->K < 3) return err_set(e, "the DLR loss needs at least 3 classes");
    if (attack_on_robust(ctx, x, y, B, NULL, R, apgd_subset, &cfg, x_adv, e)) return -1;
    attack_progress(ctx, 1.0);
    return 0;
}

const AttackDef attack_apgd = {
    .name = "APGD",
    .aliases = "apgd,autopgd,apgd_ce,apgd-ce",
    .summary = "Auto-PGD with CE or DLR loss, Linf or L2 (arXiv:2003.01690)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = apgd_run,
    .check = attack_check_norm_eps,
};
