/*
 * resize.c: bilinear resizing of image planes, torch.nn.functional.interpolate(x,
 * scale_factor=s, mode='bilinear', align_corners=False) (and the deprecated F.upsample
 * that IDM and BEARD call), forward and backward.
 *
 * With a scale factor given, PyTorch maps output index d to the source coordinate
 * r * (d + 0.5) - 0.5 with r = 1 / s, clamped at 0 from below; the two taps are
 * floor(src) and the next one (the same one at the last row or column), weighted by the
 * fractional part. The products are formed in PyTorch's CPU kernel order: along the width
 * first, then the height. Backward is the transpose: each output gradient goes back to the
 * four taps with the same weights.
 */
#include "nn.h"

typedef struct {
    int i0, i1;
    real l0, l1;
} Tap;

static Tap tap(int d, real r, int n) {
    real s = r * ((real)d + (real)0.5) - (real)0.5;
    if (s < 0) s = 0;
    Tap t;
    t.i0 = (int)s;
    if (t.i0 > n - 1) t.i0 = n - 1;
    t.i1 = t.i0 + (t.i0 < n - 1 ? 1 : 0);
    t.l1 = s - (real)t.i0;
    t.l0 = (real)1 - t.l1;
    return t;
}

void bilinear_forward(real *out, const real *in, int H, int W, int stride, int Ho, int Wo, real rh, real rw) {
    for (int oy = 0; oy < Ho; oy++) {
        Tap ty = tap(oy, rh, H);
        const real *r0 = in + (size_t)ty.i0 * stride, *r1 = in + (size_t)ty.i1 * stride;
        for (int ox = 0; ox < Wo; ox++) {
            Tap tx = tap(ox, rw, W);
            real t0 = r0[tx.i0] * tx.l0 + r0[tx.i1] * tx.l1;
            real t1 = r1[tx.i0] * tx.l0 + r1[tx.i1] * tx.l1;
            out[(size_t)oy * Wo + ox] = t0 * ty.l0 + t1 * ty.l1;
        }
    }
}

void bilinear_backward(real *din, const real *dout, int H, int W, int stride, int Ho, int Wo, real rh, real rw) {
    for (int oy = 0; oy < Ho; oy++) {
        Tap ty = tap(oy, rh, H);
        real *r0 = din + (size_t)ty.i0 * stride, *r1 = din + (size_t)ty.i1 * stride;
        for (int ox = 0; ox < Wo; ox++) {
            Tap tx = tap(ox, rw, W);
            real g = dout[(size_t)oy * Wo + ox];
            real g0 = g * ty.l0, g1 = g * ty.l1;
            r0[tx.i0] += g0 * tx.l0;
            r0[tx.i1] += g0 * tx.l1;
            r1[tx.i0] += g1 * tx.l0;
            r1[tx.i1] += g1 * tx.l1;
        }
    }
}
