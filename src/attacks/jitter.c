/*
 * jitter.c: the Jitter attack (Schwinn et al., "Exploring Misclassifications of Robust
 * Neural Networks to Enhance Adversarial Attacks", arXiv:2105.10304), as torchattacks
 * 3.5.1 Jitter computes it, in float32: Linf PGD on a loss that works on rescaled,
 * jittered softmax outputs:
 *   z^ = softmax(scale * z / ||z||_inf) [+ std * N(0, 1)]
 *   c_i = mean_k (z^_k - onehot(y)_k)^2          (targeted: -mean_k (z^_k - onehot(t)_k)^2)
 *   c_i = c_i / ||x_k - x||_inf  where argmax z differs from the labels torchattacks was
 *         given (the true labels; under BEARD's set_mode_targeted_by_label, the targets:
 *         beard does the same) and the perturbation is not zero
 *   L = mean_i c_i;  x_{k+1} = clamp(x + clamp(x_k + alpha sign(grad L) - x, -eps, eps), 0, 1)
 * from a uniform random start (random_start, on by default). The gradient flows through
 * both norms as torch's autograd sends it: through ||z||_inf to the largest |logit| and
 * through ||x_k - x||_inf to every entry whose |delta| equals the norm, shared equally
 * among the ties (torch's norm backward divides by their count; after signed steps many
 * entries sit exactly at the norm).
 * Deliberate differences: the random start and the jitter noise come from beard's Philox
 * streams of each sample; the loss's own arithmetic runs partly in double.
 */
#include <math.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"scale", 10, P_SAME, P_SAME, "temperature: softmax(scale * z / ||z||_inf)", AP_REAL(0, 1e6)},
    {"std", 0.1, P_SAME, P_SAME, "standard deviation of the jitter added to the softmax", AP_REAL(0, 100)},
    {"random_start", 1, P_SAME, P_SAME, "start from a uniform random point in the eps-ball", AP_BOOL},
    {NULL},
};

typedef struct {
    const int *y, *t;
    int K, targeted, B;
    float scale;
    const float *noise; // (B, K) or NULL
    const float *r;     // (B) ||x_k - x||_inf
    float *dr;          // (B) out: d L / d r_i
} JitterLoss;

static double jitter_loss(void *c, int i, const float *z, float *dz) {
    const JitterLoss *j = c;
    int K = j->K, lab = j->targeted ? j->t[i] : j->y[i];
    float nz = 0.0f;
    int ties = 0;
    for (int k = 0; k < K; k++) nz = fabsf(z[k]) > nz ? fabsf(z[k]) : nz;
    for (int k = 0; k < K; k++) ties += fabsf(z[k]) == nz;
    float u[256], h[256], mx = -INFINITY;
    for (int k = 0; k < K; k++) u[k] = j->scale * z[k] / nz, mx = u[k] > mx ? u[k] : mx;
    float se = 0.0f;
    for (int k = 0; k < K; k++) se += h[k] = expf(u[k] - mx);
    for (int k = 0; k < K; k++) h[k] /= se;
    double cost = 0.0;
    float dh[256];
    for (int k = 0; k < K; k++) {
        float v = h[k] + (j->noise ? j->noise[(size_t)i * K + k] : 0.0f) - (k == lab ? 1.0f : 0.0f);
        cost += (double)v * v;
        dh[k] = 2.0f * v / (float)K;
    }
    cost /= K;
    float sg = j->targeted ? -1.0f : 1.0f;
    cost *= sg;
    int pre = logits_argmax(z, K);
    float w = 1.0f / (float)j->B; // the mean over the batch
    j->dr[i] = 0.0f;
    if (pre != lab && j->r[i] != 0.0f) {
        j->dr[i] = (float)(-w * (float)cost / (j->r[i] * j->r[i]));
        w = w / j->r[i];
        cost /= j->r[i];
    }
    // back through the softmax, then through u = scale * z / ||z||_inf
    double dot = 0.0, zu = 0.0;
    for (int k = 0; k < K; k++) dot += (double)h[k] * dh[k];
    float du[256];
    for (int k = 0; k < K; k++) du[k] = sg * w * h[k] * (dh[k] - (float)dot);
    for (int k = 0; k < K; k++) zu += (double)du[k] * z[k];
    for (int k = 0; k < K; k++) {
        dz[k] = j->scale * du[k] / nz;
        if (fabsf(z[k]) == nz) dz[k] -= (float)(j->scale * zu / ((double)nz * nz) * (z[k] > 0 ? 1 : z[k] < 0 ? -1 : 0) / ties);
    }
    return cost;
}

static int jitter_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    int K = ctx->K;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float sd = (float)attack_param(ctx, "std");
    int steps = attack_param_int(ctx, "steps");
    if (K > 256) return err_set(e, "Jitter: at most 256 classes");
    float *grad = xmalloc(sizeof(float) * n), *noise = xmalloc(sizeof(float) * (size_t)B * K);
    float *r = xmalloc(sizeof(float) * B), *dr = xmalloc(sizeof(float) * B);
    int rc = -1;
    if (!grad || !noise || !r || !dr) {
        err_set(e, "out of memory");
        goto done;
    }
    if (attack_param_int(ctx, "random_start")) attack_uniform_start(ctx, x, B, eps, 1, x_adv);
    else memcpy(x_adv, x, sizeof(float) * n);
    JitterLoss jl = {y, t, K, ctx->targeted, B, (float)attack_param(ctx, "scale"), sd != 0 ? noise : NULL, r, dr};
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            float m = 0.0f;
            for (size_t j = (size_t)b * D; j < (size_t)(b + 1) * D; j++) {
                float d = fabsf(x_adv[j] - x[j]);
                m = d > m ? d : m;
            }
            r[b] = m;
            if (sd != 0) {
                Rng rr;
                attack_rng(ctx, b, 2 + (uint32_t)(s & 0xfff), &rr);
                for (int k = 0; k < K; k++) noise[(size_t)b * K + k] = sd * (float)rng_normal(&rr);
            }
        }
        if (attack_gradient(ctx, x_adv, B, jitter_loss, &jl, NULL, grad, NULL, e)) goto done;
        // the loss's dependence on ||x_k - x||_inf: its gradient shared by the ties
        for (int b = 0; b < B; b++) {
            if (dr[b] == 0.0f) continue;
            size_t o = (size_t)b * D;
            int ties = 0;
            for (size_t j = 0; j < D; j++) ties += fabsf(x_adv[o + j] - x[o + j]) == r[b];
            for (size_t j = 0; j < D; j++) {
                float d = x_adv[o + j] - x[o + j];
                if (fabsf(d) == r[b]) grad[o + j] += dr[b] / (float)ties * (d > 0 ? 1.0f : -1.0f);
            }
        }
        attack_linf_step(x_adv, x, grad, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(grad), xfree(noise), xfree(r), xfree(dr);
    return rc;
}

const AttackDef attack_jitter = {
    .name = "Jitter",
    .aliases = "jitter",
    .summary = "Jitter: PGD on rescaled, jittered softmax outputs (arXiv:2105.10304)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = jitter_run,
};
