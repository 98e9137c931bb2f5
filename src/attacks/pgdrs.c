/*
 * pgdrs.c: PGD against a randomized-smoothing classifier (Salman et al., "Provably
 * Robust Deep Learning via Adversarially Trained Smoothed Classifiers",
 * arXiv:1906.04584), as torchattacks 3.5.1 PGDRS (Linf) and PGDRSL2 (L2, pgdrsl2.c)
 * compute it, in float32. Each sample is copied noise_batch_size times; the loss is the
 * NLL of the mean softmax over the noisy copies:
 *   a_j = clamp(x + delta, 0, 1) + noise_j      (noise: N(0, sd^2), or U(-sd, sd))
 *   L   = mean_b -log(max(mean_j softmax(f(a_j))_y, 1e-20))   (targeted: minus that of t)
 *   Linf: delta = clamp(delta + alpha sign(grad_delta L), -eps, eps)
 *   L2:   g = grad / (||grad||_2 + eps_for_division); delta = delta + alpha g, then scaled
 *         by min(eps / ||delta||_2, 1)
 * starting from delta = 0; the result is clamp(x + delta, 0, 1). The gradient reaches
 * delta only where 0 <= x + delta <= 1 (torch's clamp passes it at the bounds too).
 * torchattacks spells the Gaussian noise type "guassian"; beard accepts that and
 * "gaussian". Its batch_max splitting changes only a positive factor of the loss (the
 * NLL's mean runs over a chunk), which moves no sign: beard runs whole batches.
 * The mean softmax couples a sample's copies, so each step runs the copies' forward
 * pass once for the mean and once more under the backward pass.
 * Deliberate difference: the noise comes from beard's Philox stream of each sample, not
 * torch's generator (equal in distribution); norms summed in double.
 */
#include <math.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"noise_type", 0, P_SAME, P_SAME, "smoothing noise (torchattacks spells gaussian 'guassian')",
     AP_CHOICE("guassian,uniform,gaussian")},
    {"noise_sd", 0.5, P_SAME, P_SAME, "standard deviation (Gaussian) or half-width (uniform) of the noise", AP_REAL(0, 100)},
    {"noise_batch_size", 5, P_SAME, P_SAME, "noisy copies per sample", AP_INT(1, 10000)},
    {"batch_max", 2048, P_SAME, P_SAME, "torchattacks' memory chunking (no effect on the result)", AP_INT(1, 1 << 30)},
    {NULL},
};

typedef struct {
    const int *lab; // (B) labels or targets
    const float *pbar; // (B) the mean softmax of the label over the copies
    int K, n, B;
    float sign;
} RsLoss;

static double rs_loss(void *c, int i, const float *z, float *dz) {
    const RsLoss *r = c;
    int b = i / r->n, y = r->lab[b], K = r->K;
    float mx = -INFINITY, se = 0.0f, p[256];
    for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < K; k++) se += p[k] = expf(z[k] - mx);
    for (int k = 0; k < K; k++) p[k] /= se;
    float pb = r->pbar[b];
    // d/dpbar of -log(max(pbar, 1e-20)) / B, spread over the copies' mean
    float gy = pb >= 1e-20f ? r->sign * (-1.0f / (float)r->B) / pb / (float)r->n : 0.0f;
    for (int k = 0; k < K; k++) dz[k] = gy * p[y] * ((k == y ? 1.0f : 0.0f) - p[k]);
    return 0.0;
}

// one gradient w.r.t. delta (B, D) of the smoothed loss at x + delta
int attack_pgdrs_grad(const AttackCtx *ctx, const float *x, const float *delta, const int *lab, int B, int step,
                      float *grad, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K, n = attack_param_int(ctx, "noise_batch_size"), uni = attack_param_int(ctx, "noise_type") == 1;
    float sd = (float)attack_param(ctx, "noise_sd");
    if (K > 256) return err_set(e, "at most 256 classes");
    int N = B * n;
    float *xs = xmalloc(sizeof(float) * (size_t)N * D), *gs = xmalloc(sizeof(float) * (size_t)N * D);
    float *z = xmalloc(sizeof(float) * (size_t)N * K), *pbar = xmalloc(sizeof(float) * (size_t)B);
    int rc = -1;
    if (!xs || !gs || !z || !pbar) {
        err_set(e, "out of memory");
        goto done;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng r;
        attack_rng(ctx, b, 1 + (uint32_t)(step & 0xfff), &r);
        for (int j = 0; j < n; j++) {
            float *dst = xs + ((size_t)b * n + j) * D;
            for (size_t i = 0; i < D; i++) {
                float a = clampf(x[(size_t)b * D + i] + delta[(size_t)b * D + i], 0.0f, 1.0f);
                float v = uni ? (rng_uniform(&r) - 0.5f) * 2.0f * sd : (float)rng_normal(&r) * sd;
                dst[i] = a + v;
            }
        }
    }
    if (attack_logits(ctx, xs, N, z, e)) goto done;
    for (int b = 0; b < B; b++) { // the mean softmax of the label over the copies
        float acc = 0.0f;
        for (int j = 0; j < n; j++) {
            const float *zz = z + ((size_t)b * n + j) * K;
            float mx = -INFINITY, se = 0.0f;
            for (int k = 0; k < K; k++) mx = zz[k] > mx ? zz[k] : mx;
            for (int k = 0; k < K; k++) se += expf(zz[k] - mx);
            acc += expf(zz[lab[b]] - mx) / se;
        }
        pbar[b] = acc / (float)n;
    }
    RsLoss rl = {lab, pbar, K, n, B, ctx->targeted ? -1.0f : 1.0f};
    if (attack_gradient(ctx, xs, N, rs_loss, &rl, NULL, gs, NULL, e)) goto done;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < D; i++) {
            float v = x[(size_t)b * D + i] + delta[(size_t)b * D + i], acc = 0.0f;
            for (int j = 0; j < n; j++) acc += gs[((size_t)b * n + j) * D + i];
            grad[(size_t)b * D + i] = v >= 0.0f && v <= 1.0f ? acc : 0.0f;
        }
    rc = 0;
done:
    xfree(xs), xfree(gs), xfree(z), xfree(pbar);
    return rc;
}

static int pgdrs_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t n = (size_t)B * ctx->D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    int steps = attack_param_int(ctx, "steps");
    float *delta = xcalloc(sizeof(float) * n), *grad = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!delta || !grad) {
        err_set(e, "out of memory");
        goto done;
    }
    for (int s = 0; s < steps; s++) {
        if (attack_pgdrs_grad(ctx, x, delta, ctx->targeted ? t : y, B, s, grad, e)) goto done;
        for (size_t i = 0; i < n; i++) delta[i] = clampf(delta[i] + alpha * signf_torch(grad[i]), -eps, eps);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    for (size_t i = 0; i < n; i++) x_adv[i] = clampf(x[i] + delta[i], 0.0f, 1.0f);
    rc = 0;
done:
    xfree(delta), xfree(grad);
    return rc;
}

const AttackDef attack_pgdrs = {
    .name = "PGDRS",
    .aliases = "pgdrs,pgd_rs,smoothpgd",
    .summary = "PGD on a randomized-smoothing classifier (mean softmax over noisy copies), Linf (arXiv:1906.04584)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pgdrs_run,
};
