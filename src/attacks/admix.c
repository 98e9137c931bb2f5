/*
 * admix.c: Admix (Wang, He, Wang and He, "Admix: Enhancing the Transferability of
 * Adversarial Attacks", ICCV 2021, arXiv:2102.00436) on top of MI-FGSM, as the authors'
 * code computes it (JHL-HUST/Admix mi_admix.py, and their PyTorch port in
 * Trustworthy-AI-Group/TransferAttack, input_transformation/admix.py):
 *   repeat steps: for j < num_admix: x'_j = the current adversarial image of a random
 *                   sample of the batch (detached: no gradient flows into it)
 *                 d = sum_{i < num_scale, j < num_admix} grad_{x_k} CE(f((x_k + eta x'_j) / 2^i))
 *                 g = decay * m + d / mean(|d|);   m = g
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * i.e. the admixed copies with the scale copies of SI-FGSM (eta = admix_strength), the
 * original label for every copy. The num_scale x num_admix copies of a batch run as one
 * batch through the surrogate (any architecture, or an ensemble: the mean of the
 * members' logits). Targeted: descend the target's CE.
 * Choices, named: the add-in images are drawn from the batch being attacked, as both
 * reference implementations do (the paper samples "images from other categories"; the
 * code shuffles the batch, which may pick the image itself); beard draws each sample's
 * add-ins uniformly from the batch with the sample's own Philox stream (the marginal of
 * a shuffle), so a sample's result depends on which images share its batch, as in the
 * references. The gradient is the sum over copies (the references' mean differs by a
 * positive factor that the normalisation removes). Defaults follow torchattacks' MI-FGSM
 * (eps 8/255, alpha 2/255, 10 steps, decay 1) so that Admix, MIST, MI-FGSM and DI-FGSM
 * compare at one budget; the paper's ImageNet setting is eps 16/255, alpha 1.6/255.
 */
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {"num_scale", 5, P_SAME, P_SAME, "scale copies x / 2^i, i < num_scale", AP_INT(1, 30)},
    {"num_admix", 3, P_SAME, P_SAME, "add-in images per step", AP_INT(1, 1000)},
    {"admix_strength", 0.2, P_SAME, P_SAME, "weight eta of the add-in image", AP_REAL(0, 100)},
    {NULL},
};

static int admix_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, n = (size_t)B * D;
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay"), eta = (float)attack_param(ctx, "admix_strength");
    int steps = attack_param_int(ctx, "steps"), S = attack_param_int(ctx, "num_scale");
    int A = attack_param_int(ctx, "num_admix"), copies = S * A;
    float *xs = xmalloc(sizeof(float) * n * copies), *gs = xmalloc(sizeof(float) * n * copies);
    float *d = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n);
    int *pick = malloc(sizeof(int) * (size_t)B * A);
    int rc = -1;
    if (!xs || !gs || !d || !mom || !pick) {
        err_set(e, "out of memory for Admix (%d copies of %d samples)", copies, B);
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            Rng r;
            attack_rng(ctx, b, 1 + (uint32_t)(s & 0xfff), &r);
            for (int j = 0; j < A; j++) pick[b * A + j] = (int)rng_below(&r, (uint32_t)B);
        }
        // copy (i, j) of sample b at row (i * A + j) * B + b
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < A; j++) {
                const float *xb = x_adv + (size_t)b * D, *xo = x_adv + (size_t)pick[b * A + j] * D;
                for (int i = 0; i < S; i++) {
                    float p = (float)(1u << i);
                    float *dst = xs + ((size_t)(i * A + j) * B + b) * D;
                    for (size_t k = 0; k < D; k++) dst[k] = (xb[k] + eta * xo[k]) / p;
                }
            }
        if (attack_ce_copies(ctx, xs, B, copies, y, t, gs, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *db = d + (size_t)b * D, *mb = mom + (size_t)b * D;
            for (size_t k = 0; k < D; k++) {
                float acc = 0.0f;
                for (int i = 0; i < S; i++)
                    for (int j = 0; j < A; j++) acc += gs[((size_t)(i * A + j) * B + b) * D + k] / (float)(1u << i);
                db[k] = acc;
            }
            float mean = attack_mean_abs(db, D);
            for (size_t k = 0; k < D; k++) mb[k] = db[k] = decay * mb[k] + db[k] / mean;
        }
        attack_linf_step(x_adv, x, d, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(xs), xfree(gs), xfree(d), xfree(mom), free(pick);
    return rc;
}

const AttackDef attack_admix = {
    .name = "Admix",
    .aliases = "admix,mi_admix,admix_mifgsm",
    .summary = "Admix: MI-FGSM on the input admixed with other images, scale copies (arXiv:2102.00436)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = admix_run,
};
