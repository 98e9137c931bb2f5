/*
 * mist.c: MIST, Mixing the Image but Separating the gradienT (Wang and Yin, "Rethinking
 * Mixup for Improving the Adversarial Transferability", arXiv:2311.17087), on top of
 * MI-FGSM. The paper's abstract: MIST "randomly mixes the input image with a randomly
 * shifted image and separates the gradient of each loss item for each mixed image", and
 * "calculates the gradient on several mixed images for each input sample". No author code
 * was found (searched: GitHub, the TransferAttack framework of the same group, which has
 * Admix but no MIST), so the algorithm below is beard's reading of that description, and
 * every choice is named:
 *   repeat steps: for j < num_mix:
 *                   S_j = a circular shift (torch.roll) of the image by (dy, dx), each
 *                         uniform over the image's rows / columns          [choice 1]
 *                   lambda_j ~ U(mix_lo, mix_hi)   (default U(0, 1))        [choice 2]
 *                   m_j = lambda_j x_k + (1 - lambda_j) S_j(x_k)
 *                   g_j = grad CE(f(m_j), y)   (the mixed image keeps x's label: both
 *                         terms are x itself)                                [choice 3]
 *                   d_j = lambda_j g_j + (1 - lambda_j) S_j^-1(g_j)          [choice 4]
 *                 d = sum_j d_j
 *                 g = decay * m + d / mean(|d|);   m = g                    (MI-FGSM)
 *                 x_{k+1} = clamp(x + clamp(x_k + alpha sign(g) - x, -eps, eps), 0, 1)
 * [1] "Randomly shifted image": a circular shift keeps every pixel (S is a permutation,
 *     S^-1 its transpose), where a zero-padded shift would drop a border.
 * [2] The paper lifts Admix's small, fixed add-in weight; beard draws the weight per
 *     copy, uniform on [mix_lo, mix_hi].
 * [3] and [4] "Separating the gradient": the mixed-in copy is the sample itself, so,
 *     unlike Admix's detached add-in, the gradient flows through both terms; each term's
 *     gradient is taken separately, mapped back to x's own pixels (the shifted term
 *     through S^-1) and weighted by its mixing weight, and the two are added. This is the
 *     exact gradient of CE(f(m_j), y) with respect to x_k.
 * [5] num_mix copies per sample per step (default 15: the gradient budget of Admix's
 *     5 scales x 3 add-ins), all run as one batch through the surrogate.
 * [6] Defaults otherwise as Admix's and torchattacks' MI-FGSM (eps 8/255, alpha 2/255,
 *     10 steps, decay 1); no scale copies.
 * Any surrogate architecture works, and an ensemble (the mean of the members' logits).
 * Targeted: descend the target's CE. Each sample draws from its own Philox stream, so
 * its result does not depend on its batch.
 */
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"eps", 8.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"alpha", 2.0 / 255, P_SAME, P_SAME, "step size", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"decay", 1.0, P_SAME, P_SAME, "momentum decay factor", AP_REAL(0, 1000)},
    {"num_mix", 15, P_SAME, P_SAME, "mixed copies per sample and step", AP_INT(1, 1000)},
    {"mix_lo", 0.0, P_SAME, P_SAME, "smallest weight of the image itself in a mixed copy", AP_REAL(0, 1)},
    {"mix_hi", 1.0, P_SAME, P_SAME, "largest weight of the image itself in a mixed copy", AP_REAL(0, 1)},
    {NULL},
};

static int mist_check(const AttackDef *def, const AttackParams *p, const AttackShape *s, Err *e) {
    if (attack_params_get(p, "mix_lo") > attack_params_get(p, "mix_hi"))
        return err_set(e, "%s: mix_lo must not exceed mix_hi", def->name);
    return 0;
}

static int mist_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    const Net *net = ctx->net;
    int C = net->in_c, H = net->in_h, W = net->in_w;
    size_t D = ctx->D, n = (size_t)B * D, plane = (size_t)H * W;
    if ((size_t)C * plane != D) return err_set(e, "MIST needs image inputs");
    float eps = (float)attack_param(ctx, "eps"), alpha = (float)attack_param(ctx, "alpha");
    float decay = (float)attack_param(ctx, "decay");
    double lo = attack_param(ctx, "mix_lo"), hi = attack_param(ctx, "mix_hi");
    int steps = attack_param_int(ctx, "steps"), M = attack_param_int(ctx, "num_mix");
    float *xs = xmalloc(sizeof(float) * n * M), *gs = xmalloc(sizeof(float) * n * M);
    float *d = xmalloc(sizeof(float) * n), *mom = xcalloc(sizeof(float) * n);
    int *sh = malloc(sizeof(int) * 2 * (size_t)B * M);
    float *lam = malloc(sizeof(float) * (size_t)B * M);
    int rc = -1;
    if (!xs || !gs || !d || !mom || !sh || !lam) {
        err_set(e, "out of memory for MIST (%d copies of %d samples)", M, B);
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    for (int s = 0; s < steps; s++) {
        // copy j of sample b at row j * B + b: lambda x + (1 - lambda) roll(x, (dy, dx))
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            Rng r;
            attack_rng(ctx, b, 1 + (uint32_t)(s & 0xfff), &r);
            const float *xb = x_adv + (size_t)b * D;
            for (int j = 0; j < M; j++) {
                int dy = (int)rng_below(&r, (uint32_t)H), dx = (int)rng_below(&r, (uint32_t)W);
                float l = (float)(lo + (hi - lo) * rng_uniform_d(&r));
                sh[2 * (b * M + j)] = dy, sh[2 * (b * M + j) + 1] = dx, lam[b * M + j] = l;
                float *dst = xs + ((size_t)j * B + b) * D;
                for (int c = 0; c < C; c++)
                    for (int h = 0; h < H; h++)
                        for (int w = 0; w < W; w++) {
                            // roll: out[h][w] = in[(h - dy) mod H][(w - dx) mod W]
                            int hs = (h - dy + H) % H, ws = (w - dx + W) % W;
                            size_t o = c * plane + (size_t)h * W + w;
                            dst[o] = l * xb[o] + (1.0f - l) * xb[c * plane + (size_t)hs * W + ws];
                        }
            }
        }
        if (attack_ce_copies(ctx, xs, B, M, y, t, gs, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *db = d + (size_t)b * D, *mb = mom + (size_t)b * D;
            memset(db, 0, sizeof(float) * D);
            for (int j = 0; j < M; j++) {
                const float *g = gs + ((size_t)j * B + b) * D;
                int dy = sh[2 * (b * M + j)], dx = sh[2 * (b * M + j) + 1];
                float l = lam[b * M + j];
                for (int c = 0; c < C; c++)
                    for (int h = 0; h < H; h++)
                        for (int w = 0; w < W; w++) {
                            // the term x: l g; the term S(x): (1 - l) S^-1(g), i.e. g at the
                            // position pixel (h, w) was moved to
                            int ht = (h + dy) % H, wt = (w + dx) % W;
                            size_t o = c * plane + (size_t)h * W + w;
                            db[o] += l * g[o] + (1.0f - l) * g[c * plane + (size_t)ht * W + wt];
                        }
            }
            float mean = attack_mean_abs(db, D);
            for (size_t k = 0; k < D; k++) mb[k] = db[k] = decay * mb[k] + db[k] / mean;
        }
        attack_linf_step(x_adv, x, d, alpha, eps, n);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    rc = 0;
done:
    xfree(xs), xfree(gs), xfree(d), xfree(mom), free(sh), free(lam);
    return rc;
}

const AttackDef attack_mist = {
    .name = "MIST",
    .aliases = "mist,mist_mifgsm",
    .summary = "MIST: MI-FGSM on the input mixed with shifted copies of itself, gradients separated (arXiv:2311.17087)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = mist_run,
    .check = mist_check,
};
