/*
 * gn.c: Gaussian noise, torchattacks 3.5.1 GN: x_adv = clamp(x + std * N(0, 1), 0, 1), a
 * noise baseline with no gradient and no eps bound. Untargeted only (torchattacks'
 * supported_mode is "default").
 * Deliberate difference: the noise comes from beard's Philox stream of each sample
 * (Box-Muller), not torch's generator: equal in distribution, not in value.
 */
#include "attack.h"

static const AttackParamDef params[] = {
    {"std", 0.1, P_SAME, P_SAME, "standard deviation of the noise", AP_REAL(0, 100)},
    {NULL},
};

static int gn_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    float sd = (float)attack_param(ctx, "std");
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng r;
        attack_rng(ctx, b, 1, &r);
        for (size_t i = (size_t)b * D; i < (size_t)(b + 1) * D; i++)
            x_adv[i] = clampf(x[i] + sd * (float)rng_normal(&r), 0.0f, 1.0f);
    }
    attack_progress(ctx, 1.0);
    return 0;
}

const AttackDef attack_gn = {
    .name = "GN",
    .aliases = "gn,gaussian_noise",
    .summary = "Gaussian noise baseline, clamp(x + std N(0,1), 0, 1)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = gn_run,
};
