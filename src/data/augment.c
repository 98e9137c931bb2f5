/*
 * augment.c: the decoupled methods' augmentations with their backward passes, see augment.h.
 *
 * References: torch.roll; torchvision.transforms.functional (hflip, pad + crop,
 * resized_crop = crop + resize) as its tensor path runs them in torchvision 0.14, the
 * version CDA pins; torch's upsample_bilinear2d (align_corners=False: source index
 * max(0, scale (dst + 0.5) - 0.5) with scale = in / out in float, the neighbour clamped at
 * the border) and adaptive_avg_pool2d; RandomResizedCrop.get_params; the mixup and
 * rand_bbox helpers of SRe2L's relabel code. Tested against autograd through those ops
 * (tests/scripts/gen_decoupled_fixtures.py).
 */
#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"
#include "../nn/nn.h"

static inline int mod(int a, int n) {
    int r = a % n;
    return r < 0 ? r + n : r;
}

void augment_roll_forward(float *out, const float *in, int B, int C, int H, int W, int dy, int dx) {
    size_t plane = (size_t)H * W;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        const float *s = in + p * plane;
        float *d = out + p * plane;
        for (int y = 0; y < H; y++) {
            const float *row = s + (size_t)mod(y - dy, H) * W;
            for (int x = 0; x < W; x++) d[(size_t)y * W + x] = row[mod(x - dx, W)];
        }
    }
}

void augment_roll_backward(float *din, const float *dout, int B, int C, int H, int W, int dy, int dx) {
    size_t plane = (size_t)H * W;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        const float *g = dout + p * plane;
        float *d = din + p * plane;
        for (int y = 0; y < H; y++) {
            float *row = d + (size_t)mod(y - dy, H) * W;
            for (int x = 0; x < W; x++) row[mod(x - dx, W)] += g[(size_t)y * W + x];
        }
    }
}

void augment_hflip_forward(float *out, const float *in, int B, int C, int H, int W) {
    for (size_t r = 0; r < (size_t)B * C * H; r++)
        for (int x = 0; x < W; x++) out[r * W + x] = in[r * W + (W - 1 - x)];
}

void augment_hflip_backward(float *din, const float *dout, int B, int C, int H, int W) {
    for (size_t r = 0; r < (size_t)B * C * H; r++)
        for (int x = 0; x < W; x++) din[r * W + (W - 1 - x)] += dout[r * W + x];
}

void augment_crop_pad_forward(float *out, const float *in, int B, int C, int H, int W, int pad, int top, int left,
                              float fill) {
    size_t plane = (size_t)H * W;
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (int y = 0; y < H; y++) {
            int sy = y + top - pad;
            for (int x = 0; x < W; x++) {
                int sx = x + left - pad;
                out[p * plane + (size_t)y * W + x] =
                    (sy >= 0 && sy < H && sx >= 0 && sx < W) ? in[p * plane + (size_t)sy * W + sx] : fill;
            }
        }
}

void augment_crop_pad_backward(float *din, const float *dout, int B, int C, int H, int W, int pad, int top, int left) {
    size_t plane = (size_t)H * W;
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (int y = 0; y < H; y++) {
            int sy = y + top - pad;
            if (sy < 0 || sy >= H) continue;
            for (int x = 0; x < W; x++) {
                int sx = x + left - pad;
                if (sx >= 0 && sx < W) din[p * plane + (size_t)sy * W + sx] += dout[p * plane + (size_t)y * W + x];
            }
        }
}

// one axis of the bilinear map (the naive reference's): output o reads sources i0, i1 with
// weights l0, l1
typedef struct {
    int i0, i1;
    float l0, l1;
} Lerp;

static Lerp lerp_at(int o, int in, int out) {
    float scale = (float)in / (float)out;
    float src = scale * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f) src = 0.0f;
    Lerp L;
    L.i0 = (int)src;
    if (L.i0 > in - 1) L.i0 = in - 1;
    L.i1 = L.i0 + (L.i0 < in - 1 ? 1 : 0);
    L.l1 = src - (float)L.i0;
    if (L.l1 > 1.0f) L.l1 = 1.0f;
    L.l0 = 1.0f - L.l1;
    return L;
}

// the crop is a plane of (h, w) at (top, left) with row stride W, resized by nn/resize.c
// with PyTorch's size-given scale in / out
void augment_resized_crop_forward(float *out, const float *in, int B, int C, int H, int W, int top, int left, int h,
                                  int w, int Ho, int Wo) {
    for (size_t p = 0; p < (size_t)B * C; p++)
        bilinear_forward(out + p * Ho * Wo, in + p * H * W + (size_t)top * W + left, h, w, W, Ho, Wo,
                         (float)h / (float)Ho, (float)w / (float)Wo);
}

void augment_resized_crop_forward_ref(float *out, const float *in, int B, int C, int H, int W, int top, int left,
                                      int h, int w, int Ho, int Wo) {
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                Lerp a = lerp_at(y, h, Ho), b = lerp_at(x, w, Wo);
                const float *s = in + p * H * W;
#define PX(yy, xx) s[(size_t)(top + (yy)) * W + left + (xx)]
                out[p * Ho * Wo + (size_t)y * Wo + x] =
                    a.l0 * (b.l0 * PX(a.i0, b.i0) + b.l1 * PX(a.i0, b.i1)) + a.l1 * (b.l0 * PX(a.i1, b.i0) + b.l1 * PX(a.i1, b.i1));
#undef PX
            }
}

void augment_resized_crop_backward(float *din, const float *dout, int B, int C, int H, int W, int top, int left, int h,
                                   int w, int Ho, int Wo) {
    for (size_t p = 0; p < (size_t)B * C; p++)
        bilinear_backward(din + p * H * W + (size_t)top * W + left, dout + p * Ho * Wo, h, w, W, Ho, Wo,
                          (float)h / (float)Ho, (float)w / (float)Wo);
}

static inline int win_start(int o, int in, int out) { return (int)(((long)o * in) / out); }
static inline int win_end(int o, int in, int out) { return (int)((((long)o + 1) * in + out - 1) / out); }

void augment_adaptive_avgpool_forward(float *out, const float *in, int B, int C, int H, int W, int Ho, int Wo) {
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (int oy = 0; oy < Ho; oy++) {
            int y0 = win_start(oy, H, Ho), y1 = win_end(oy, H, Ho);
            for (int ox = 0; ox < Wo; ox++) {
                int x0 = win_start(ox, W, Wo), x1 = win_end(ox, W, Wo);
                float s = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) s += in[p * H * W + (size_t)y * W + x];
                out[p * Ho * Wo + (size_t)oy * Wo + ox] = s / (float)((y1 - y0) * (x1 - x0));
            }
        }
}

void augment_adaptive_avgpool_backward(float *din, const float *dout, int B, int C, int H, int W, int Ho, int Wo) {
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (int oy = 0; oy < Ho; oy++) {
            int y0 = win_start(oy, H, Ho), y1 = win_end(oy, H, Ho);
            for (int ox = 0; ox < Wo; ox++) {
                int x0 = win_start(ox, W, Wo), x1 = win_end(ox, W, Wo);
                float g = dout[p * Ho * Wo + (size_t)oy * Wo + ox] / (float)((y1 - y0) * (x1 - x0));
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) din[p * H * W + (size_t)y * W + x] += g;
            }
        }
}

int augment_randint(Rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint32_t)(hi - lo + 1)); }

static double uniform_in(Rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform_d(r); }

void augment_rrc_draw(Rng *r, int H, int W, double scale_lo, double scale_hi, double ratio_lo, double ratio_hi,
                      int box[4]) {
    double area = (double)H * W, lr0 = log(ratio_lo), lr1 = log(ratio_hi);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform_in(r, scale_lo, scale_hi);
        double aspect = exp(uniform_in(r, lr0, lr1));
        int w = (int)nearbyint(sqrt(target * aspect)); // Python's round(): half to even
        int h = (int)nearbyint(sqrt(target / aspect));
        if (w > 0 && w <= W && h > 0 && h <= H) {
            box[0] = augment_randint(r, 0, H - h);
            box[1] = augment_randint(r, 0, W - w);
            box[2] = h, box[3] = w;
            return;
        }
    }
    double in_ratio = (double)W / H;
    int w = W, h = H;
    if (in_ratio < ratio_lo) h = (int)nearbyint(w / ratio_lo);
    else if (in_ratio > ratio_hi) w = (int)nearbyint(h * ratio_hi);
    box[0] = (H - h) / 2, box[1] = (W - w) / 2, box[2] = h, box[3] = w;
}

void augment_mixup(float *out, const float *x, const int *perm, int B, size_t D, float lam) {
    for (int b = 0; b < B; b++) {
        const float *a = x + (size_t)b * D, *o = x + (size_t)perm[b] * D;
        float *d = out + (size_t)b * D;
        for (size_t i = 0; i < D; i++) d[i] = lam * a[i] + (1.0f - lam) * o[i];
    }
}

void augment_cutmix(float *out, const float *x, const int *perm, int B, int C, int H, int W, const int box[4]) {
    size_t D = (size_t)C * H * W;
    if (out != x) memcpy(out, x, sizeof(float) * B * D);
    // the box indexes dim 2 with (x1, x2) and dim 3 with (y1, y2), as images[:, :, x1:x2, y1:y2]
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = box[0]; i < box[2]; i++)
                for (int j = box[1]; j < box[3]; j++)
                    out[(size_t)b * D + ((size_t)c * H + i) * W + j] = x[(size_t)perm[b] * D + ((size_t)c * H + i) * W + j];
}

static int clip_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void augment_cutmix_box(Rng *r, int H, int W, double lam, int box[4]) {
    // rand_bbox reads W = size[2] and H = size[3]: for NCHW that is (H, W) swapped, which the
    // code then indexes consistently (dim 2 with the "x" range)
    int sW = H, sH = W;
    double cut_rat = sqrt(1.0 - lam);
    int cut_w = (int)(sW * cut_rat), cut_h = (int)(sH * cut_rat);
    int cx = (int)rng_below(r, (uint32_t)sW), cy = (int)rng_below(r, (uint32_t)sH);
    box[0] = clip_int(cx - cut_w / 2, 0, sW);
    box[1] = clip_int(cy - cut_h / 2, 0, sH);
    box[2] = clip_int(cx + cut_w / 2, 0, sW);
    box[3] = clip_int(cy + cut_h / 2, 0, sH);
}

static double gamma_draw(Rng *r, double a) {
    if (a < 1.0) {
        double u = rng_uniform_d(r);
        return gamma_draw(r, a + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / a);
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double z = rng_normal(r), v = 1.0 + c * z;
        if (v <= 0) continue;
        v = v * v * v;
        double u = rng_uniform_d(r);
        if (u < 1.0 - 0.0331 * z * z * z * z || log(u > 0 ? u : 1e-300) < 0.5 * z * z + d * (1.0 - v + log(v))) return d * v;
    }
}

double augment_beta(Rng *r, double a, double b) {
    double x = gamma_draw(r, a), y = gamma_draw(r, b);
    return x / (x + y);
}
