/*
 * dsa.h: Differentiable Siamese Augmentation (DSA; Zhao & Bilen, "Dataset Condensation
 * with Differentiable Siamese Augmentation", arXiv:2102.08259), forward and backward with
 * respect to the input images.
 *
 * Reference: DiffAugment and ParamDiffAug in VICO-UoE/DatasetCondensation utils.py, copied
 * unchanged into DC-bench and BEARD (Code/eva_utils.py), themselves after
 * mit-han-lab/data-efficient-gans. The strategy beard trains with is BEARD's
 * `color_crop_cutout_flip_scale_rotate` in mode 'S': one op is chosen per batch, with
 * fresh random parameters per sample. The ops, with DC's ParamDiffAug constants:
 *
 *   color   brightness x + (r - 0.5) * 1.0, then saturation (x - mean_c) * (r * 2.0) + mean_c
 *           (mean over channels, per pixel), then contrast (x - mean) * (r + 0.5) + mean
 *           (mean over the whole image); three draws r ~ U[0, 1)
 *   crop    translate by integers in [-s, s] rows and columns, s = int(H * 0.125 + 0.5),
 *           zeros shifted in
 *   cutout  zero a 16x16 square (int(H * 0.5 + 0.5)) centred at an offset drawn in
 *           [0, H + 1 - size % 2), clipped to the image
 *   flip    mirror the width axis with probability 0.5
 *   scale   F.affine_grid([[sx, 0, 0], [0, sy, 0]]) + F.grid_sample, sx, sy ~ U[1/1.2, 1.2)
 *   rotate  F.affine_grid([[cos t, -sin t, 0], [sin t, cos t, 0]]) + F.grid_sample,
 *           t ~ U[-15, 15) degrees
 *
 * grid_sample is bilinear with zero padding and align_corners=False: DC calls
 * F.affine_grid and F.grid_sample without align_corners, and PyTorch >= 1.3 defaults it to
 * False for both. MTT's copy of the ops (GeorgeCazenavette/mtt-distillation utils.py)
 * passes align_corners=True to both: DsaConfig.align_corners selects that. Every op is linear in the image once its random parameters are fixed, so
 * the backward pass is the transpose of the forward map and needs no saved state.
 *
 * Deliberate differences: the random parameters come from beard's Philox generator (equal
 * to DC's torch.rand draws in distribution, not in value), and they are explicit (DsaDraw)
 * so that tests can fix them and distillation can reuse one draw for the real and the
 * synthetic batch (DC's Siamese seed trick).
 */
#ifndef BEARD_DSA_H
#define BEARD_DSA_H

#include "../core/common.h"
#include "../core/rng.h"

typedef enum { DSA_COLOR, DSA_CROP, DSA_CUTOUT, DSA_FLIP, DSA_SCALE, DSA_ROTATE, DSA_OP_COUNT } DsaOp;

// DC's ParamDiffAug
typedef struct {
    float prob_flip;      // 0.5
    float ratio_scale;    // 1.2
    float ratio_rotate;   // 15 (degrees)
    float ratio_crop_pad; // 0.125
    float ratio_cutout;   // 0.5
    float brightness;     // 1.0
    float saturation;     // 2.0
    float contrast;       // 0.5
    int align_corners;    // 0 (DC, DSA, DM, BEARD); 1: MTT's scale and rotate
} DsaConfig;

void dsa_config_default(DsaConfig *c);

// the ops of a strategy string, in its order ("color_crop_cutout_flip_scale_rotate")
typedef struct {
    int n_ops; // 0: no augmentation ("none", "None" or "")
    DsaOp ops[DSA_OP_COUNT];
} DsaStrategy;

int dsa_strategy_parse(DsaStrategy *s, const char *text, Err *e);
const char *dsa_op_name(DsaOp op);

// One sample's random parameters, as DC's code holds them after its torch.rand calls.
typedef struct {
    float brightness, saturation, contrast; // the raw U[0, 1) draws of the color op
    int crop_x, crop_y;                     // translation along H and along W
    int cutout_x, cutout_y;                 // cutout centre offsets along H and W
    int flip;                               // 1: mirror along W
    float scale_x, scale_y;                 // affine scale of the sampling grid
    float angle;                            // rotation, radians
} DsaSample;

// One batch's augmentation: the op and every sample's parameters.
typedef struct {
    DsaOp op;
    int B;
    DsaSample *s; // (B), owned by the caller
} DsaDraw;

// Draws the op (uniformly among the strategy's ops; DSA_OP_COUNT, the identity, when it has
// none) and d->B samples' parameters from r. With siamese != 0 every sample gets sample 0's
// parameters.
void dsa_draw(DsaDraw *d, const DsaStrategy *st, const DsaConfig *cfg, int H, int W, int siamese, Rng *r);

// out = aug(in); out must not alias in
void dsa_forward(float *out,         // (B, C, H, W)
                 const float *in,    // (B, C, H, W)
                 const DsaDraw *d, const DsaConfig *cfg, int C, int H, int W);
// din += aug^T(dout)
void dsa_backward(float *din,        // (B, C, H, W)
                  const float *dout, // (B, C, H, W)
                  const DsaDraw *d, const DsaConfig *cfg, int C, int H, int W);

#endif
