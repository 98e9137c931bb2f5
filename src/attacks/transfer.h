/*
 * transfer.h: what the momentum family of Linf attacks shares (MI-FGSM and the transfer
 * attacks built on it: DI, TI, NI, SI, VMI, VNI, PI, Admix, MIST, and the PGD variants
 * RFGSM, EOTPGD, FFGSM, UPGD, Jitter): the signed step with torchattacks' projection,
 * the per-sample mean |g| of the momentum normalisation, the random uniform start, and
 * two input/gradient transformations, written from torchattacks 3.5.1:
 *
 * - input diversity (Xie et al., arXiv:1803.06978; torchattacks' DIFGSM.input_diversity):
 *   with probability p the image is resized (bilinear, align_corners=False, as
 *   F.interpolate) to rnd x rnd, rnd uniform in [int(W * resize_rate), W), and zero-padded
 *   back to W x W at a random offset. The backward pass is the adjoint (the gradient of
 *   F.interpolate and F.pad). Deliberate difference: torchattacks draws one transform for
 *   the whole batch (rnd, the offsets and the coin are batch-wide); beard draws one per
 *   sample from its Philox stream, so that a sample's result does not depend on its
 *   batch. Each sample's transform has the same distribution; robust accuracy has the
 *   same expectation.
 * - translation invariance (Dong et al., arXiv:1904.02884; TIFGSM.kernel_generation):
 *   the gradient convolved per channel with a normalised Gaussian (scipy's norm.pdf on
 *   linspace(-nsig, nsig, len), outer product, divided by its sum, cast to float32),
 *   linear or uniform kernel, zero padding 'same'.
 */
#ifndef BEARD_TRANSFER_H
#define BEARD_TRANSFER_H

#include "attack.h"

// x_adv = clamp(x + clamp(x_adv + alpha * sign(dir) - x, -eps, eps), 0, 1), elementwise
// over n values, in torchattacks' float32 order
void attack_linf_step(float *x_adv, const float *x, const float *dir, float alpha, float eps, size_t n);
// torch.mean(torch.abs(g)) over one sample's D values (summed in double, rounded to float32)
float attack_mean_abs(const float *g, size_t D);
// x_adv = clamp(x + U(-eps, eps), 0, 1) per sample, from attack_rng(ctx, b, stream)
void attack_uniform_start(const AttackCtx *ctx, const float *x, int B, float eps, uint32_t stream, float *x_adv);
// the batch-mean cross-entropy of torchattacks (ascend; descend towards t when targeted):
// an AttackLossCtx for labels y or t over a batch of B (copies share the scale 1/B)
AttackLossCtx attack_ce_ctx(const AttackCtx *ctx, const int *y, const int *t, int B);
// the gradient of that loss on `copies` stacked copies xs (copies * B, D) of a batch of B
// (copy c of sample b at row c * B + b), each copy's CE with the scale 1/B as when
// torchattacks calls the model once per copy: grad (copies * B, D). One call through the
// Net; a sample's pass does not depend on its batch, so this equals one call per copy.
int attack_ce_copies(const AttackCtx *ctx, const float *xs, int B, int copies, const int *y, const int *t, float *grad,
                     Err *e);

// VMI-FGSM's step (vmifgsm.c), which VNI-FGSM (nesterov 1) shares with its parameters
extern const AttackParamDef attack_vmi_params[];
int attack_vmifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv,
                       int nesterov, Err *e);

// DI-FGSM's step (difgsm.c), which TI-FGSM shares with a gradient kernel (klen x klen)
int attack_difgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv,
                      const float *kernel, int klen, Err *e);
// AttackDef.check of the attacks with input diversity
int attack_di_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e);

// the gradient w.r.t. delta (B, D) of PGDRS's smoothed NLL at x + delta (pgdrs.c), shared
// with PGDRSL2; lab: labels or targets; step keys the noise streams
int attack_pgdrs_grad(const AttackCtx *ctx, const float *x, const float *delta, const int *lab, int B, int step,
                      float *grad, Err *e);

// PI-FGSM's run (pifgsm.c), shared with PI-FGSM++ (plus 1)
int attack_pifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, int plus,
                      Err *e);

// ---------------------------------------------------------------------------
// input diversity

typedef struct {
    int apply;          // the coin came up (torch.rand(1) < diversity_prob)
    int rnd, top, left; // resized size, padding offsets
} DiDraw;

// whether input diversity can run on W x W images at resize_rate (torchattacks needs
// int(W * rate) < W; the output must keep the model's input size, so rate < 1): 0 or an error
int di_check(const char *attack, int H, int W, double resize_rate, Err *e);
void di_draw(Rng *r, int W, double resize_rate, double prob, DiDraw *d);
// out (C, W, W) = the transformed in (C, W, W) (a copy when !d->apply)
void di_forward(float *out, const float *in, int C, int W, const DiDraw *d);
// gin (C, W, W) = the adjoint applied to gout (C, W, W)
void di_backward(float *gin, const float *gout, int C, int W, const DiDraw *d);

// ---------------------------------------------------------------------------
// translation invariance

enum { TI_GAUSSIAN, TI_LINEAR, TI_UNIFORM };
// a len x len kernel (float32, as torchattacks builds it) into k
void ti_kernel(float *k, int kind, int len, double nsig);
// out (C, H, W) = per-channel cross-correlation of in (C, H, W) with k (len x len), zero
// padding 'same' (left/top (len - 1) / 2, as torch's padding="same")
void ti_conv(float *out, const float *in, const float *k, int len, int C, int H, int W);

#endif
