/*
 * eadl1.c: EAD, Elastic-net Attacks to DNNs (Chen et al., arXiv:1709.04114), with the L1
 * decision rule, as torchattacks 3.5.1 EADL1 computes it; EADEN (eaden.c) differs only in
 * the rule (elastic net: L2 + beta L1) and shares this run. Per batch, in float32:
 *   const = initial_const, lower = 0, upper = 1e10 per sample; y_k = x_k = x
 *   for each of binary_search_steps outer steps (const = upper at the last when there are
 *   10 or more of them):
 *     lr = lr_0; for i < max_iterations:
 *       y_k = y_k - lr grad_y [sum_b const_b F(y_k) + ||y_k - x||^2]
 *       lr = lr_0 (1 - (i + 1) / max_iterations)^0.5
 *       x_{k+1} = S_beta(y_k) (ISTA shrinkage towards x, box-clamped on one side only);
 *       y_k = x_{k+1} + (i + 1) / (i + 4) (x_{k+1} - x_k)                  (FISTA)
 *       loss = sum_b const_b F(x_{k+1}) + sum ||x_{k+1} - x||^2 + sum beta ||x_{k+1} - x||_1
 *       every max_iterations / 10 iterations (from i = 0): stop this outer step when
 *         loss > 0.999999 * the loss at the previous check (abort_early)
 *       keep x_{k+1} where it succeeds with a smaller rule value (L1 here) than before
 *     bisect const on each sample's success (x 10 while no success)
 *   F is EAD's margin: other = max((1 - onehot) z - 1e4 onehot), real = max(onehot z),
 *   F = max(real - other, -kappa) (targeted: other - real).
 * torchattacks' behaviour, reproduced (all of it changes results):
 *   - y_k = nn.Parameter(images) shares the images' storage, so the first in-place step
 *     y_k -= lr grad also moves "x": from then on the reference point of the distances
 *     and of the shrinkage is x - lr_0 grad_0 (the returned clean fallback is the
 *     original x). beard keeps a moved copy of x the same way;
 *   - y_k and x_k are not reset between outer steps: each continues from the last;
 *   - real = max(onehot * z) is max(z_y, 0), not z_y, when z_y < 0;
 *   - the early stop compares the loss of the whole batch, so a sample's result depends
 *     on the batch it is in (beard runs the batches torchattacks is given: 256, BEARD's);
 *   - compare() adds kappa to output[:, labels], i.e. to every column that is some
 *     sample's label, in every row (with kappa = 0, the default, it changes nothing);
 *   - const, bounds and rule values are float32 tensors; lr and the FISTA factor are
 *     Python floats rounded to float32 where they meet tensors.
 * Deliberate differences: sums (distances, the batch loss) in double rounded to float32,
 * where torch sums float32 in its own order; this can flip an early-stop comparison
 * only when two checks' losses agree to 1e-7.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"

const AttackParamDef attack_ead_params[] = {
    {"kappa", 0, P_SAME, P_SAME, "confidence margin", AP_REAL(0, 1e10)},
    {"lr", 0.01, P_SAME, P_SAME, "initial learning rate (square-root decay)", AP_POS(1e6)},
    {"binary_search_steps", 9, P_SAME, P_SAME, "outer steps bisecting the constant c", AP_INT(1, 1000)},
    {"max_iterations", 100, P_SAME, P_SAME, "FISTA iterations per outer step", AP_INT(1, 1000000)},
    {"abort_early", 1, P_SAME, P_SAME, "stop an outer step when the batch loss stops falling", AP_BOOL},
    {"initial_const", 0.001, P_SAME, P_SAME, "initial constant c", AP_POS(1e10)},
    {"beta", 0.001, P_SAME, P_SAME, "L1 weight (and the shrinkage threshold)", AP_REAL(0, 1e6)},
    {NULL},
};

typedef struct {
    const int *lab;
    const float *cst; // (B)
    int K, targeted;
    float kappa;
    float *F;         // (B) out: F of each sample
} EadLoss;

// F and its gradient times const (the batch sum's share of sample i)
static float ead_f(const float *z, int lab, int K, int targeted, float kappa, int *ri, int *oi, int *pass) {
    float rmax = -INFINITY, other = -INFINITY;
    *ri = *oi = 0;
    for (int k = 0; k < K; k++) {
        float oh = k == lab ? 1.0f : 0.0f;
        float rv = oh * z[k], ov = (1.0f - oh) * z[k] - oh * 1e4f;
        if (rv > rmax) rmax = rv, *ri = k; // torch.max(dim): the first maximum
        if (ov > other) other = ov, *oi = k;
    }
    float d = targeted ? other - rmax : rmax - other;
    *pass = d >= -kappa;
    return d > -kappa ? d : -kappa;
}

static double ead_loss(void *c, int i, const float *z, float *dz) {
    const EadLoss *l = c;
    int K = l->K, lab = l->lab[i], ri, oi, pass;
    float F = ead_f(z, lab, K, l->targeted, l->kappa, &ri, &oi, &pass);
    l->F[i] = F;
    for (int k = 0; k < K; k++) dz[k] = 0.0f;
    if (pass) {
        float s = l->targeted ? -1.0f : 1.0f, cs = l->cst[i];
        dz[ri] += s * cs * (ri == lab ? 1.0f : 0.0f); // d(onehot z)_ri
        dz[oi] -= s * cs * (oi == lab ? 0.0f : 1.0f); // d((1 - onehot) z)_oi
    }
    return l->cst[i] * F;
}

// torchattacks' compare(): on logits (with the batch's label columns moved by kappa)
static int ead_success(const float *z, int K, int lab, int targeted, float kappa, const unsigned char *cols) {
    int best = 0;
    float bv = -INFINITY;
    for (int k = 0; k < K; k++) {
        float v = z[k];
        if (cols[k]) v = targeted ? v - kappa : v + kappa;
        if (k == 0 || v > bv || (isnan(v) && !isnan(bv))) bv = v, best = k;
    }
    return targeted ? best == lab : best != lab;
}

static float sum_d(const float *v, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    return (float)s;
}

int attack_ead_run(const AttackCtx *ctx, const float *x0, const int *y, const int *t, int B, float *x_adv, int elastic,
                   Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    int K = ctx->K, targeted = ctx->targeted;
    const int *lab = targeted ? t : y;
    float kappa = (float)attack_param(ctx, "kappa"), beta = (float)attack_param(ctx, "beta");
    double lr0 = attack_param(ctx, "lr");
    int bss = attack_param_int(ctx, "binary_search_steps"), iters = attack_param_int(ctx, "max_iterations");
    int abort_early = attack_param_int(ctx, "abort_early"), repeat = bss >= 10;
    int every = iters / 10; // torchattacks' iteration % (max_iterations // 10)
    float *img = xmalloc(sizeof(float) * n), *xk = xmalloc(sizeof(float) * n), *yk = xmalloc(sizeof(float) * n);
    float *g = xmalloc(sizeof(float) * n), *z = xmalloc(sizeof(float) * (size_t)B * K);
    float *cst = malloc(sizeof(float) * B), *lo = malloc(sizeof(float) * B), *up = malloc(sizeof(float) * B);
    float *bl = malloc(sizeof(float) * B), *bs = malloc(sizeof(float) * B), *obl = malloc(sizeof(float) * B);
    float *F = malloc(sizeof(float) * B), *l2 = malloc(sizeof(float) * B), *l1 = malloc(sizeof(float) * B);
    float *cf = malloc(sizeof(float) * B), *bl1 = malloc(sizeof(float) * B);
    unsigned char *cols = calloc((size_t)K, 1);
    int rc = -1;
    if (!img || !xk || !yk || !g || !z || !cst || !lo || !up || !bl || !bs || !obl || !F || !l2 || !l1 || !cf ||
        !bl1 || !cols) {
        err_set(e, "out of memory for EAD");
        goto done;
    }
    if (every == 0) every = 1; // torchattacks: i % 0 raises for fewer than 10 iterations; beard checks every one
    for (int b = 0; b < B; b++) cols[lab[b]] = 1;
    memcpy(img, x0, sizeof(float) * n);
    memcpy(xk, x0, sizeof(float) * n);
    memcpy(yk, x0, sizeof(float) * n);
    memcpy(x_adv, x0, sizeof(float) * n);
    for (int b = 0; b < B; b++) cst[b] = (float)attack_param(ctx, "initial_const"), lo[b] = 0.0f, up[b] = 1e10f, obl[b] = 1e10f;
    int shared = 1; // y_k still shares the images' storage (until the first FISTA step)
    EadLoss el = {lab, cst, K, targeted, kappa, F};
    for (int outer = 0; outer < bss; outer++) {
        for (int b = 0; b < B; b++) bl[b] = 1e10f, bs[b] = -1.0f;
        float prev = 1e6f;
        if (repeat && outer == bss - 1) memcpy(cst, up, sizeof(float) * B);
        double lr = lr0;
        for (int it = 0; it < iters; it++) {
            if (attack_gradient(ctx, yk, B, ead_loss, &el, NULL, g, NULL, e)) goto done;
            float flr = (float)lr;
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                float gi = g[i] + 2.0f * (yk[i] - img[i]);
                yk[i] = yk[i] - gi * flr;
                if (shared) img[i] = yk[i]; // the same storage: "x" moves with y_k
            }
            shared = 0;
            int step = it + 1; // torchattacks' global_step
            lr = lr0 * pow(1.0 - (double)step / iters, 0.5);
            float zt = (float)((double)step / (step + 3));
#pragma omp parallel for schedule(static)
            for (long i = 0; i < (long)n; i++) {
                float upv = yk[i] - beta, lov = yk[i] + beta, diff = yk[i] - img[i];
                upv = upv < 1.0f ? upv : 1.0f;
                lov = lov > 0.0f ? lov : 0.0f;
                // cond1 * upper + cond2 * images + cond3 * lower: one term, or 0 for a NaN
                float v = diff > beta ? upv : fabsf(diff) <= beta ? img[i] : diff < -beta ? lov : 0.0f;
                yk[i] = v + zt * (v - xk[i]);
                xk[i] = v;
            }
            if (attack_logits(ctx, xk, B, z, e)) goto done;
            for (int b = 0; b < B; b++) {
                double s2 = 0.0, s1 = 0.0;
                for (size_t j = (size_t)b * D; j < (size_t)(b + 1) * D; j++) {
                    float d = xk[j] - img[j];
                    s2 += (double)(d * d), s1 += fabsf(d);
                }
                l2[b] = (float)s2, l1[b] = (float)s1;
                int ri, oi, pass;
                F[b] = ead_f(z + (size_t)b * K, lab[b], K, targeted, kappa, &ri, &oi, &pass);
                cf[b] = cst[b] * F[b];
            }
            if (abort_early && it % every == 0) {
                for (int b = 0; b < B; b++) bl1[b] = beta * l1[b];
                float loss = sum_d(cf, B) + sum_d(l2, B) + sum_d(bl1, B);
                if (loss > prev * 0.999999f) break;
                prev = loss;
            }
            for (int b = 0; b < B; b++) {
                const float *zb = z + (size_t)b * K;
                float cost = elastic ? l2[b] + l1[b] * beta : l1[b];
                int ok = ead_success(zb, K, lab[b], targeted, kappa, cols);
                float pred = (float)logits_argmax(zb, K);
                if (cost < bl[b] && ok) bl[b] = cost, bs[b] = pred;
                if (cost < obl[b] && ok) {
                    obl[b] = cost;
                    memcpy(x_adv + (size_t)b * D, xk + (size_t)b * D, sizeof(float) * D);
                }
            }
        }
        // bisect the constants (compare() on the 1-D best scores: == / != the labels)
        for (int b = 0; b < B; b++) {
            int ok = (targeted ? bs[b] == (float)lab[b] : bs[b] != (float)lab[b]) && bs[b] != -1.0f;
            if (ok) up[b] = up[b] < cst[b] ? up[b] : cst[b];
            else lo[b] = lo[b] > cst[b] ? lo[b] : cst[b];
            if (up[b] < 1e9f) cst[b] = (lo[b] + up[b]) / 2.0f;
            else cst[b] = cst[b] * 10.0f;
        }
        attack_progress(ctx, (double)(outer + 1) / bss);
    }
    rc = 0;
done:
    xfree(img), xfree(xk), xfree(yk), xfree(g), xfree(z);
    free(cst), free(lo), free(up), free(bl), free(bs), free(obl), free(F), free(l2), free(l1), free(cf), free(bl1), free(cols);
    return rc;
}

static int eadl1_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_ead_run(ctx, x, y, t, B, x_adv, 0, e);
}

const AttackDef attack_eadl1 = {
    .name = "EADL1",
    .aliases = "eadl1,ead_l1,ead",
    .summary = "EAD elastic-net attack, L1 decision rule (arXiv:1709.04114)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = attack_ead_params,
    .run = eadl1_run,
};
