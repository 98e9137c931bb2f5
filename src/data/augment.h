/*
 * augment.h: the image augmentations of the decoupled distillation methods (SRe2L, CDA,
 * G-VBSM, DELT, SC-DD) and of their soft-label training, each a forward/backward pair where
 * the image gradient passes through it (recover), and the parameter draws.
 *
 * The recover loops apply torchvision transforms to the whole synthetic batch tensor, so
 * one draw covers the batch: torch.roll (the jitter), RandomResizedCrop (CDA, DELT),
 * RandomHorizontalFlip, RandomCrop(size, padding) (G-VBSM). Soft-label training applies
 * them per image in the data loader (RandomCrop + flip), then mixes the batch (mixup or
 * CutMix, augment_mix_*). Numerics follow PyTorch: resized crops are the crop followed by
 * F.interpolate(mode='bilinear', align_corners=False) (torchvision's tensor resize: the
 * crop is never larger than the output, so antialiasing does not apply), the adaptive
 * average pool is torch's window rule. Backward passes add into din (+=), as the nn layers do.
 *
 * Draws use beard's Philox streams; they reproduce torchvision's algorithms (RandomResizedCrop's
 * ten attempts and central fallback, randint bounds) in distribution, not PyTorch's numbers.
 */
#ifndef BEARD_AUGMENT_H
#define BEARD_AUGMENT_H

#include <stddef.h>

#include "../core/rng.h"

// torch.roll(x, shifts=(dy, dx), dims=(2, 3)): out[y][x] = in[(y - dy) mod H][(x - dx) mod W]
void augment_roll_forward(float *out,      // (B, C, H, W)
                          const float *in, // (B, C, H, W)
                          int B, int C, int H, int W, int dy, int dx);
void augment_roll_backward(float *din, const float *dout, int B, int C, int H, int W, int dy, int dx);

// torchvision hflip: out[y][x] = in[y][W - 1 - x]
void augment_hflip_forward(float *out, const float *in, int B, int C, int H, int W);
void augment_hflip_backward(float *din, const float *dout, int B, int C, int H, int W);

// RandomCrop((H, W), padding=pad) with its offsets (top, left) into the padded image:
// out[y][x] = in[y + top - pad][x + left - pad], `fill` outside the image
void augment_crop_pad_forward(float *out, const float *in, int B, int C, int H, int W, int pad, int top, int left,
                              float fill);
void augment_crop_pad_backward(float *din, const float *dout, int B, int C, int H, int W, int pad, int top, int left);

// resized_crop(x, top, left, h, w, (Ho, Wo)), bilinear, align_corners=False; with the box
// (0, 0, H, W) it is F.interpolate(x, (Ho, Wo), mode='bilinear')
void augment_resized_crop_forward(float *out,      // (B, C, Ho, Wo)
                                  const float *in, // (B, C, H, W)
                                  int B, int C, int H, int W, int top, int left, int h, int w, int Ho, int Wo);
void augment_resized_crop_backward(float *din, const float *dout, int B, int C, int H, int W, int top, int left, int h,
                                   int w, int Ho, int Wo);
// the naive reference: every output value from its four source pixels, per value
void augment_resized_crop_forward_ref(float *out, const float *in, int B, int C, int H, int W, int top, int left,
                                      int h, int w, int Ho, int Wo);

// F.adaptive_avg_pool2d(x, (Ho, Wo)): window [floor(i H / Ho), ceil((i + 1) H / Ho))
void augment_adaptive_avgpool_forward(float *out, const float *in, int B, int C, int H, int W, int Ho, int Wo);
void augment_adaptive_avgpool_backward(float *din, const float *dout, int B, int C, int H, int W, int Ho, int Wo);

// RandomResizedCrop.get_params(img (H, W), scale, ratio): box = (top, left, h, w)
void augment_rrc_draw(Rng *r, int H, int W, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                      int box[4]);
// random.randint(lo, hi), both ends included
int augment_randint(Rng *r, int lo, int hi);

// mixup: out = lam x + (1 - lam) x[perm]
void augment_mixup(float *out, const float *x, const int *perm, int B, size_t D, float lam);
// CutMix (rand_bbox of the SRe2L/FKD code): box (x1, y1, x2, y2) on dims (2, 3) as that code
// indexes them, out = x with out[:, :, x1:x2, y1:y2] = x[perm, :, x1:x2, y1:y2]
void augment_cutmix(float *out, const float *x, const int *perm, int B, int C, int H, int W, const int box[4]);
// rand_bbox(size, lam): cut_rat = sqrt(1 - lam), cut = int(side * cut_rat), centre uniform,
// clipped to the image; size[2] plays W and size[3] H as in that code
void augment_cutmix_box(Rng *r, int H, int W, double lam, int box[4]);
// np.random.beta(a, a), from two gamma draws (Marsaglia-Tsang)
double augment_beta(Rng *r, double a, double b);

#endif
