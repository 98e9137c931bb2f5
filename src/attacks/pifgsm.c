/*
 * pifgsm.c: Patch-wise Iterative FGSM (Gao et al., "Patch-wise Attack for Fooling Deep
 * Neural Network", arXiv:2007.06765) and its targeted extension PI-FGSM++ (Gao et al.,
 * "Patch-wise++ Perturbation for Adversarial Targeted Attacks", arXiv:2012.15503; file
 * pifgsmpp.c, which shares this step), as torchattacks 3.5.1 PIFGSM / PIFGSMPP compute
 * them, in float32. With alpha = max_epsilon / num_iter_set, ab = alpha * amplification,
 * gamma = ab (PI++: ab * project_factor), A = 0:
 *   lo = clip(x - eps, 0, 1), hi = clip(x + eps, 0, 1)
 *   repeat num_iter_set times:
 *     d = grad CE(f(x_k), y)                      (PI++: d = conv(d, T), see below)
 *     A = A + ab sign(d)
 *     c = clamp(|A| - eps, 0, 10000) sign(A)       (the part of A beyond eps)
 *     p = gamma sign(conv(c, P))                   (P: 3x3 ones / 8, centre 0, pad 1)
 *     A = A + p                                    (PIFGSM only: PI++ leaves A alone)
 *     x_{k+1} = clip(x_k + ab sign(d) + p, lo, hi) (PI++ targeted: x_k - ab sign(d) - p)
 * clip is torchattacks' clip_by_tensor: the lower bound, then the upper one. eps and the
 * step are Python floats, rounded to float32 where they meet tensors, as torch does.
 * PIFGSM is untargeted only (torchattacks' supported_mode). Its momentum and prob
 * arguments are accepted and unused, as in torchattacks.
 * PI-FGSM++'s kernel T, reproduced as torchattacks builds it: gaussian_kern(3, 3) stacks
 * three copies of the 3x3 Gaussian k and calls swapaxes(2, 0) (a TensorFlow layout) before
 * adding the channel axis, so channel a's kernel is T_a[i][j] = k[i][a], constant along
 * j, not k itself. corrected_kernel = 1 (preset fra31) uses k for every channel. The
 * 3x3 convolutions sum in the kernel's row-major order in float32 (their signs are
 * what counts: symmetric neighbourhoods cancel to exactly 0, and sign(0) is 0).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

static const AttackParamDef params[] = {
    {"max_epsilon", 16.0 / 255, P_SAME, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"num_iter_set", 10, P_SAME, P_SAME, "number of steps", AP_STEPS},
    {"momentum", 1.0, P_SAME, P_SAME, "accepted and unused, as in torchattacks", AP_REAL(0, 1000)},
    {"amplification", 10.0, P_SAME, P_SAME, "amplification factor of the step", AP_REAL(0, 1e6)},
    {"prob", 0.7, P_SAME, P_SAME, "accepted and unused, as in torchattacks", AP_REAL(0, 1)},
    {NULL},
};

// out (C, H, W) = per-channel 3x3 cross-correlation of in with kern (C, 3, 3), zero pad 1,
// summed in the kernel's row-major order in float32
static void conv3x3(float *out, const float *in, const float *kern, int C, int H, int W) {
    for (int c = 0; c < C; c++) {
        const float *src = in + (size_t)c * H * W, *k = kern + c * 9;
        float *dst = out + (size_t)c * H * W;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) {
                float acc = 0.0f;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        int y = h + i - 1, x = w + j - 1;
                        float v = y >= 0 && y < H && x >= 0 && x < W ? src[y * W + x] : 0.0f;
                        acc += v * k[i * 3 + j];
                    }
                dst[h * W + w] = acc;
            }
    }
}

// one PI-FGSM (plus 0) or PI-FGSM++ (plus 1) run
int attack_pifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, int plus,
                      Err *e) {
    const Net *net = ctx->net;
    int C = net->in_c, H = net->in_h, W = net->in_w;
    size_t D = ctx->D, n = (size_t)B * D;
    if ((size_t)C * H * W != D) return err_set(e, "PI-FGSM needs image inputs");
    double eps_d = attack_param(ctx, "max_epsilon");
    int iters = attack_param_int(ctx, "num_iter_set");
    double ab_d = eps_d / iters * attack_param(ctx, "amplification");
    float eps = (float)eps_d, ab = (float)ab_d;
    float gamma = plus ? (float)(ab_d * attack_param(ctx, "project_factor")) : ab;
    int targeted = plus && ctx->targeted;
    // P: ones / (3 * 3 - 1) with a zero centre; T: see the header
    float *P = malloc(sizeof(float) * 9 * C), *T = malloc(sizeof(float) * 9 * C);
    float *lo = xmalloc(sizeof(float) * n), *hi = xmalloc(sizeof(float) * n), *A = xcalloc(sizeof(float) * n);
    float *g = xmalloc(sizeof(float) * n), *cut = xmalloc(sizeof(float) * n), *pc = xmalloc(sizeof(float) * n);
    int rc = -1;
    if (!P || !T || !lo || !hi || !A || !g || !cut || !pc) {
        err_set(e, "out of memory");
        goto done;
    }
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 9; i++) P[c * 9 + i] = i == 4 ? 0.0f : 1.0f / 8;
    if (plus) {
        float k[9];
        ti_kernel(k, TI_GAUSSIAN, 3, 3.0);
        int fix = attack_param_int(ctx, "corrected_kernel");
        for (int c = 0; c < C; c++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) T[c * 9 + i * 3 + j] = fix ? k[i * 3 + j] : k[i * 3 + (c % 3)];
    }
    // torchattacks' clip_by_tensor: (t >= lo) * t + (t < lo) * lo, then the same with hi
    for (size_t i = 0; i < n; i++) {
        float a = x[i] - eps, b = x[i] + eps;
        a = a >= 0.0f ? a : 0.0f, a = a <= 1.0f ? a : 1.0f;
        b = b >= 0.0f ? b : 0.0f, b = b <= 1.0f ? b : 1.0f;
        lo[i] = a, hi[i] = b;
    }
    memcpy(x_adv, x, sizeof(float) * n);
    AttackLossCtx lc = attack_ce_ctx(ctx, y, t, B);
    lc.sign = 1.0f; // the CE of the labels (PI++ targeted: of the targets) is always ascended here
    for (int s = 0; s < iters; s++) {
        if (attack_gradient(ctx, x_adv, B, attack_loss_ce, &lc, NULL, g, NULL, e)) goto done;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * D;
            float *d = g + o, *Ab = A + o, *cb = cut + o, *pb = pc + o, *xb = x_adv + o;
            if (plus) { // d = conv(d, T), through pc as scratch
                conv3x3(pb, d, T, C, H, W);
                memcpy(d, pb, sizeof(float) * D);
            }
            for (size_t j = 0; j < D; j++) {
                d[j] = signf_torch(d[j]);
                Ab[j] = Ab[j] + ab * d[j];
                cb[j] = clampf(fabsf(Ab[j]) - eps, 0.0f, 10000.0f) * signf_torch(Ab[j]);
            }
            conv3x3(pb, cb, P, C, H, W);
            for (size_t j = 0; j < D; j++) {
                float p = gamma * signf_torch(pb[j]);
                if (!plus) Ab[j] = Ab[j] + p;
                float v = targeted ? xb[j] - ab * d[j] - p : xb[j] + ab * d[j] + p;
                v = v >= lo[o + j] ? v : lo[o + j];
                xb[j] = v <= hi[o + j] ? v : hi[o + j];
            }
        }
        attack_progress(ctx, (double)(s + 1) / iters);
    }
    rc = 0;
done:
    free(P), free(T);
    xfree(lo), xfree(hi), xfree(A), xfree(g), xfree(cut), xfree(pc);
    return rc;
}

static int pifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_pifgsm_run(ctx, x, y, t, B, x_adv, 0, e);
}

const AttackDef attack_pifgsm = {
    .name = "PIFGSM",
    .aliases = "pifgsm,pi_fgsm,pim",
    .summary = "Patch-wise Iterative FGSM, amplified steps with the excess projected on neighbours (arXiv:2007.06765)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = pifgsm_run,
};
