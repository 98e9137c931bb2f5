/*
 * jsma.c: the Jacobian-based Saliency Map Attack (Papernot et al., "The Limitations of
 * Deep Learning in Adversarial Settings", arXiv:1511.07528), pairs of features, as
 * torchattacks 3.5.1 JSMA computes it, one sample at a time:
 *   domain = {i : x_i < 0.99} (theta > 0; theta <= 0: x_i > 0.01)
 *   up to ceil(D * gamma / 2) times, while f(x) does not predict the target and the
 *   domain is not empty:
 *     J = d logits / d x (K x D);  a = J_t,  b = sum_k J_k - J_t
 *     a~ = a - c max|a|,  b~ = b + c max|b|,  c_i = 2 for i outside the domain, else 0
 *     S(p, q) = (a~_p + a~_q) |b~_p + b~_q|  where a~_p + a~_q > 0 and b~_p + b~_q < 0
 *               (theta <= 0: < 0 and > 0), p != q; 0 elsewhere
 *     (p, q) = the first maximum of S in row-major order; x_p += theta, x_q += theta;
 *     x = clamp(x, 0, 1); p and q leave the domain
 *   and a final clamp to [0, 1].
 * torchattacks' behaviour, reproduced: untargeted runs target (y + 1) mod 10 (JSMA has no
 * untargeted form; with fewer than 10 classes beard takes (y + 1) mod K); when no pair
 * qualifies, the first maximum of an all-zero map is the pair (0, 0), so feature 0 gets
 * 2 theta; the clamps act on the whole image (under beard semantics they pull every
 * normalised value into [0, 1], at the first iteration or at the end).
 * Speed: S is evaluated on the pairs p < q only (the first maximum of a symmetric map is
 * always there, since (p, q) precedes (q, p)), two passes per row (the row's maximum,
 * vectorised, then its first position); the Jacobians of all samples still running are
 * computed in one batch per iteration. Deliberate difference: none beyond float
 * rounding of the Jacobian, which can move a near-tie of S.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"theta", 1.0, P_SAME, P_SAME, "change of each chosen feature (the sign sets the direction)", AP_REAL(-1, 1)},
    {"gamma", 0.1, P_SAME, P_SAME, "largest fraction of the features changed", AP_POS(1)},
    {NULL},
};

// the first maximum of S over p < q, or (0, 0) when it is not positive
static void saliency_pair(const float *ta, const float *tb, size_t D, int increasing, int *p, int *q) {
    float best = 0.0f;
    long bp = 0, bq = 0;
    for (size_t i = 0; i + 1 < D; i++) {
        float ai = ta[i], bi = tb[i], m = 0.0f;
        for (size_t j = i + 1; j < D; j++) {
            float a = ai + ta[j], b = bi + tb[j];
            int ok = increasing ? (a > 0.0f && b < 0.0f) : (a < 0.0f && b > 0.0f);
            float s = ok ? a * fabsf(b) : 0.0f;
            m = s > m ? s : m;
        }
        if (m > best) {
            for (size_t j = i + 1; j < D; j++) {
                float a = ai + ta[j], b = bi + tb[j];
                int ok = increasing ? (a > 0.0f && b < 0.0f) : (a < 0.0f && b > 0.0f);
                if (ok && a * fabsf(b) == m) {
                    best = m, bp = (long)i, bq = (long)j;
                    break;
                }
            }
        }
    }
    *p = (int)bp, *q = (int)bq;
}

static int jsma_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K;
    float theta = (float)attack_param(ctx, "theta");
    int increasing = theta > 0;
    long max_iters = (long)ceil((double)D * attack_param(ctx, "gamma") / 2.0);
    int *tgt = malloc(sizeof(int) * B), *act = malloc(sizeof(int) * B);
    unsigned char *dom = malloc(D * B);
    size_t per = (size_t)K * D;
    int chunk = (int)MIN((size_t)B, (size_t)(64u << 20) / (per * sizeof(float)) + 1);
    float *jac = xmalloc(sizeof(float) * per * chunk), *z = xmalloc(sizeof(float) * (size_t)K * B);
    float *xa = xmalloc(sizeof(float) * D * chunk), *ta = xmalloc(sizeof(float) * D * chunk);
    float *tb = xmalloc(sizeof(float) * D * chunk);
    int rc = -1;
    if (!tgt || !act || !dom || !jac || !z || !xa || !ta || !tb) {
        err_set(e, "out of memory for JSMA");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * D * B);
    for (int b = 0; b < B; b++) {
        tgt[b] = ctx->targeted ? t[b] : (y[b] + 1) % (K >= 10 ? 10 : K);
        for (size_t i = 0; i < D; i++)
            dom[(size_t)b * D + i] = increasing ? x[(size_t)b * D + i] < 0.99f : x[(size_t)b * D + i] > 0.01f;
    }
    if (attack_logits(ctx, x, B, z, e)) goto done;
    int n_act = 0;
    for (int b = 0; b < B; b++) {
        size_t left = 0;
        for (size_t i = 0; i < D; i++) left += dom[(size_t)b * D + i];
        if (max_iters > 0 && logits_argmax(z + (size_t)b * K, K) != tgt[b] && left) act[n_act++] = b;
    }
    for (long it = 0; it < max_iters && n_act > 0; it++) {
        int n_next = 0;
        for (int c0 = 0; c0 < n_act; c0 += chunk) {
            int nc = MIN(chunk, n_act - c0);
            for (int j = 0; j < nc; j++) memcpy(xa + j * D, x_adv + (size_t)act[c0 + j] * D, sizeof(float) * D);
            if (attack_jacobian(ctx, xa, nc, z, jac, e)) goto done;
#pragma omp parallel for schedule(dynamic)
            for (int j = 0; j < nc; j++) {
                int b = act[c0 + j];
                const float *J = jac + (size_t)j * per, *Jt = J + (size_t)tgt[b] * D;
                float *a = ta + (size_t)j * D, *o = tb + (size_t)j * D;
                unsigned char *dm = dom + (size_t)b * D;
                float amax = 0.0f, omax = 0.0f;
                for (size_t i = 0; i < D; i++) { // sum over classes in class order, as torch.sum(dim=0)
                    float s = 0.0f;
                    for (int k = 0; k < K; k++) s += J[(size_t)k * D + i];
                    o[i] = s - Jt[i];
                    amax = fabsf(Jt[i]) > amax ? fabsf(Jt[i]) : amax;
                    omax = fabsf(o[i]) > omax ? fabsf(o[i]) : omax;
                }
                for (size_t i = 0; i < D; i++) {
                    float coef = dm[i] ? 0.0f : (increasing ? 2.0f : -2.0f);
                    a[i] = Jt[i] - coef * amax;
                    o[i] = o[i] + coef * omax;
                }
                int p, q;
                saliency_pair(a, o, D, increasing, &p, &q);
                float *xb = x_adv + (size_t)b * D;
                xb[p] += theta;
                xb[q] += theta;
                for (size_t i = 0; i < D; i++) xb[i] = clampf(xb[i], 0.0f, 1.0f);
                dm[p] = 0, dm[q] = 0;
            }
        }
        // who goes on: not yet the target, domain not empty
        float *zz = xmalloc(sizeof(float) * (size_t)K * n_act), *xs = xmalloc(sizeof(float) * D * n_act);
        if (!zz || !xs) {
            xfree(zz), xfree(xs);
            err_set(e, "out of memory for JSMA");
            goto done;
        }
        for (int j = 0; j < n_act; j++) memcpy(xs + (size_t)j * D, x_adv + (size_t)act[j] * D, sizeof(float) * D);
        int frc = attack_logits(ctx, xs, n_act, zz, e);
        for (int j = 0; j < n_act && !frc; j++) {
            int b = act[j];
            size_t left = 0;
            for (size_t i = 0; i < D; i++) left += dom[(size_t)b * D + i];
            if (logits_argmax(zz + (size_t)j * K, K) != tgt[b] && left) act[n_next++] = b;
        }
        xfree(zz), xfree(xs);
        if (frc) goto done;
        n_act = n_next;
        attack_progress(ctx, (double)(it + 1) / max_iters);
    }
    for (size_t i = 0; i < D * B; i++) x_adv[i] = clampf(x_adv[i], 0.0f, 1.0f);
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    free(tgt), free(act), free(dom);
    xfree(jac), xfree(z), xfree(xa), xfree(ta), xfree(tb);
    return rc;
}

const AttackDef attack_jsma = {
    .name = "JSMA",
    .aliases = "jsma",
    .summary = "Jacobian-based Saliency Map Attack, pairs of features, L0 (arXiv:1511.07528)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = jsma_run,
};
