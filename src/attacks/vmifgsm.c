/*
 * vmifgsm.c: Variance-tuned MI-FGSM (Wang and He, "Enhancing the Transferability of
 * Adversarial Attacks through Variance Tuning", arXiv:2103.15571), as torchattacks 3.5.1
 * VMIFGSM computes it, in float32 (VNIFGSM, vnifgsm.c, takes the gradient at the
 * Nesterov point instead; both share this file's step):
 *   v = 0, m = 0
 *   repeat steps: d = grad CE(f(x_k))                  (VNI: at x_k + decay alpha m)
 *                 g = (d + v) / mean(|d + v|) + decay * m;   m = g
 *                 v = (sum_{j<N} grad CE(f(x_k + U(-beta eps, beta eps)))) / N - d
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * The N neighbours are not clamped to the box, as in torchattacks. beard evaluates the N
 * neighbours of a batch as one batch of N B samples (each keeps its CE's 1/B) and sums
 * their gradients in order. Targeted: descend CE towards the target.
 * Deliberate differences: the neighbours' noise comes from beard's Philox stream of each
 * sample (equal in distribution, not in value); mean |.| summed in double.
 */
#include <string.h>

#include "transfer.h"

const AttackParamDef attack_vmi_params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {"N", 5, P_SAME, P_SAME, "neighbours sampled for the gradient variance", AP_INT(1, 1000)},
    {"beta", 1.5, P_SAME, P_SAME, "neighbourhood radius, in units of eps", AP_REAL(0, 1000)},
    {NULL},
};

// the step of VMI-FGSM (nesterov 0) and VNI-FGSM (nesterov 1)
int attack_vmifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv,
                       int nesterov, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay"), da = (float)(attack_param(ctx, "decay") * attack_param(ctx, "alpha"));
    float radius = (float)(attack_param(ctx, "eps") * attack_param(ctx, "beta"));
    int steps = attack_param_int(ctx, "steps"), N = attack_param_int(ctx, "N");
    float *d = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n), *v = xcalloc(sizeof(float) * n);
    float *xs = xmalloc(sizeof(float) * n * N), *gs = xmalloc(sizeof(float) * n * N), *g = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!d || !mom || !v || !xs || !gs || !g) {
        err_set(e, "out of memory");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    for (int s = 0; s < steps; s++) {
        const float *at = x_adv;
        if (nesterov) {
            for (size_t i = 0; i < n; i++) xs[i] = x_adv[i] + da * mom[i];
            at = xs;
        }
        if (attack_gradient(ctx, at, B, attack_loss_ce, &lc, NULL, d, NULL, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *gb = g + (size_t)b * D, *mb = mom + (size_t)b * D;
            const float *db = d + (size_t)b * D, *vb = v + (size_t)b * D;
            for (size_t j = 0; j < D; j++) gb[j] = db[j] + vb[j];
            float mean = attack_mean_abs(gb, D);
            for (size_t j = 0; j < D; j++) mb[j] = gb[j] = gb[j] / mean + mb[j] * decay;
        }
        // the gradient variance from N neighbours of x_k
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            Rng r;
            attack_rng(ctx, b, 1 + (uint32_t)(s & 0xfff), &r);
            for (int k = 0; k < N; k++)
                for (size_t j = 0; j < D; j++) {
                    size_t i = (size_t)b * D + j;
                    xs[k * n + i] = x_adv[i] + (2.0f * rng_uniform(&r) - 1.0f) * radius;
                }
        }
        if (attack_ce_copies(ctx, xs, B, N, y, t, gs, e)) goto done;
        for (size_t i = 0; i < n; i++) {
            float acc = 0.0f;
            for (int k = 0; k < N; k++) acc += gs[k * n + i];
            v[i] = acc / (float)N - d[i];
        }
        attack_linf_step(x_adv, x, g, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(d), xfree(mom), xfree(v), xfree(xs), xfree(gs), xfree(g);
    return rc;
}

static int vmifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_vmifgsm_run(ctx, x, y, t, B, x_adv, 0, e);
}

const AttackDef attack_vmifgsm = {
    .name = "VMIFGSM",
    .aliases = "vmifgsm,vmi_fgsm,vt_mifgsm",
    .summary = "Variance-tuned MI-FGSM, Linf (arXiv:2103.15571)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = attack_vmi_params,
    .run = vmifgsm_run,
};
