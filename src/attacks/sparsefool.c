/*
 * sparsefool.c: SparseFool (Modas, Moosavi-Dezfooli and Frossard, "SparseFool: a few
 * pixels make a big difference", arXiv:1811.02248), an L0 attack, as torchattacks 3.5.1
 * SparseFool computes it. For each sample, at most `steps` times, while the current
 * iterate x_k is still classified as y:
 *   x_DF, t = DeepFool(x_k)          (torchattacks' DeepFool: 50 steps, overshoot 0.02;
 *                                     t: the class its last step moved towards)
 *   x_B = x + lam (x_DF - x)         (the boundary point, pushed lam times further)
 *   c = argmax f(x_B), or t when that is still y;  w = grad (f_c - f_y)(x_B) / ||.||_2
 *   x_L = LinearSolver(x, w, x_B);   x_{k+1} = clamp(x + (1 + overshoot)(x_L - x), 0, 1)
 * LinearSolver (torchattacks' _linear_solver) walks from x one coordinate at a time, the
 * largest remaining |w_i| first, by max(|w.(x_i - x_B) + 0.001 s| / max|w|, 1e-4) in the
 * direction sign(w_i), clamping the whole iterate to [0, 1] after each move (under beard
 * semantics the first move pulls every normalised value into [0, 1]), until the sign s
 * of w.(x_i - x_B) changes or no coordinate is left.
 * Untargeted only (torchattacks' supported_mode). Each round, DeepFool and the gradient
 * run on all samples still correct at once (a sample's result does not depend on the
 * others'). Deliberate differences: the inner DeepFool runs without beard's dither
 * (deepfool.c: the dither only matters for scoring points that stay on the boundary,
 * and x_DF is only a direction here); dot products and norms in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deepfool.h"

static const AttackParamDef params[] = {
    {"steps", 10, P_SAME, P_SAME, "outer SparseFool iterations", AP_STEPS},
    {"lam", 3, P_SAME, P_SAME, "how far beyond DeepFool's point the boundary point lies", AP_REAL(0, 1e6)},
    {"overshoot", 0.02, P_SAME, P_SAME, "overshoot of the linear solver's point", AP_REAL(0, 100)},
    {NULL},
};

typedef struct {
    const int *y, *t; // (n) labels, DeepFool's targets
    int K;
} SfLoss;

// f_c - f_y with c = argmax f, or DeepFool's target when that is still y
static double sf_loss(void *c, int i, const float *z, float *dz) {
    const SfLoss *l = c;
    int pre = logits_argmax(z, l->K), y = l->y[i];
    if (pre == y) pre = l->t[i];
    for (int k = 0; k < l->K; k++) dz[k] = 0.0f;
    dz[pre] += 1.0f;
    dz[y] -= 1.0f;
    return (double)z[pre] - z[y];
}

static double dot_d(const float *a, const float *b, const float *c, size_t D) { // a . (b - c)
    double s = 0.0;
    for (size_t i = 0; i < D; i++) s += (double)a[i] * (b[i] - c[i]);
    return s;
}

static int sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }

// torchattacks' _linear_solver: xi (D) from x0 towards the plane {u : w.(u - xb) = 0}
static void linear_solver(float *xi, const float *x0, const float *w, const float *xb, float *cv, size_t D) {
    memcpy(xi, x0, sizeof(float) * D);
    memcpy(cv, w, sizeof(float) * D);
    int sign_true = sgn(dot_d(w, x0, xb, D)), cur = sign_true;
    float beta = 0.001f * (float)sign_true;
    size_t left = 0;
    for (size_t i = 0; i < D; i++) left += cv[i] != 0.0f;
    while (cur == sign_true && left > 0) {
        float fk = (float)dot_d(w, xi, xb, D) + beta;
        size_t am = 0;
        float mx = -1.0f;
        for (size_t i = 0; i < D; i++)
            if (fabsf(cv[i]) > mx) mx = fabsf(cv[i]), am = i; // torch.argmax: the first maximum
        float pert = fabsf(fk) / mx;
        pert = pert > 1e-4f ? pert : 1e-4f;
        float r = pert * signf_torch(cv[am]);
        for (size_t i = 0; i < D; i++) xi[i] = clampf(xi[i] + (i == am ? r : 0.0f), 0.0f, 1.0f);
        cur = sgn(dot_d(w, xi, xb, D));
        if (r != 0.0f) cv[am] = 0.0f, left--;
    }
}

static int sparsefool_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K, steps = attack_param_int(ctx, "steps");
    float lam = (float)attack_param(ctx, "lam"), os1 = (float)(1.0 + attack_param(ctx, "overshoot"));
    int *act = malloc(sizeof(int) * B), *ya = malloc(sizeof(int) * B), *ta = malloc(sizeof(int) * B);
    int *ids = malloc(sizeof(int) * B);
    float *xa = xmalloc(sizeof(float) * D * B), *xd = xmalloc(sizeof(float) * D * B), *g = xmalloc(sizeof(float) * D * B);
    float *z = xmalloc(sizeof(float) * (size_t)K * B), *cv = xmalloc(sizeof(float) * D * B);
    int rc = -1;
    if (!act || !ya || !ta || !ids || !xa || !xd || !g || !z || !cv) {
        err_set(e, "out of memory for SparseFool");
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * D * B);
    for (int s = 0; s < steps; s++) {
        if (attack_logits(ctx, x_adv, B, z, e)) goto done;
        int m = 0;
        for (int b = 0; b < B; b++)
            if (logits_argmax(z + (size_t)b * K, K) == y[b]) act[m++] = b;
        if (!m) break;
        for (int j = 0; j < m; j++) {
            memcpy(xa + j * D, x_adv + (size_t)act[j] * D, sizeof(float) * D);
            ya[j] = y[act[j]];
            ids[j] = ctx->ids ? ctx->ids[act[j]] : act[j];
        }
        AttackCtx sub = *ctx;
        sub.ids = ids;
        sub.progress = NULL;
        if (deepfool_run_batch(&sub, xa, ya, m, 50, 0.02, 0, xd, ta, e)) goto done;
        for (int j = 0; j < m; j++) { // the boundary point x + lam (x_DF - x)
            const float *x0 = x + (size_t)act[j] * D;
            for (size_t i = 0; i < D; i++) xd[j * D + i] = x0[i] + lam * (xd[j * D + i] - x0[i]);
        }
        SfLoss sl = {ya, ta, K};
        if (attack_gradient(&sub, xd, m, sf_loss, &sl, NULL, g, NULL, e)) goto done;
#pragma omp parallel for schedule(dynamic)
        for (int j = 0; j < m; j++) {
            float *gj = g + j * D, *xi = xa + j * D;
            const float *x0 = x + (size_t)act[j] * D;
            double ss = 0.0;
            for (size_t i = 0; i < D; i++) ss += (double)gj[i] * gj[i];
            float nrm = (float)sqrt(ss);
            for (size_t i = 0; i < D; i++) gj[i] /= nrm;
            linear_solver(xi, x0, gj, xd + j * D, cv + j * D, D);
            float *xo = x_adv + (size_t)act[j] * D;
            for (size_t i = 0; i < D; i++) xo[i] = clampf(x0[i] + os1 * (xi[i] - x0[i]), 0.0f, 1.0f);
        }
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    free(act), free(ya), free(ta), free(ids);
    xfree(xa), xfree(xd), xfree(g), xfree(z), xfree(cv);
    return rc;
}

const AttackDef attack_sparsefool = {
    .name = "SparseFool",
    .aliases = "sparsefool,sparse_fool",
    .summary = "SparseFool, few-pixel (L0) perturbations from DeepFool's boundary (arXiv:1811.02248)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = sparsefool_run,
};
