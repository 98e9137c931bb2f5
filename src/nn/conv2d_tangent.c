/*
 * conv2d_tangent.c: the tangents of conv2d's forward and backward (see tangent.h), and
 * of linear's, which follow the same rules.
 *
 * A convolution is bilinear in (input, weight), so every tangent is a sum of the layer's
 * own forward or backward kernels applied to one tangent and one primal argument:
 *   t_out  = conv(t_in, W) + conv(in, t_W) + t_b
 *   t_din += conv^T(t_dout, W) + conv^T(dout, t_W)
 *   t_dW  += corr(t_dout, in) + corr(dout, t_in),   t_db += sum t_dout
 * That way the second-order pass runs on the optimised (and separately tested) first-
 * order kernels, and changes to them carry over. Only the forward tangent needs a
 * buffer of its own, one sample's output per thread, because conv2d_forward overwrites.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../core/parallel.h"
#include "tangent.h"

typedef void (*ConvFwd)(real *, const real *, const real *, const real *, int, int, int, int, int, int, int, int);
typedef void (*ConvBwd)(real *, real *, real *, const real *, const real *, const real *, int, int, int, int, int,
                        int, int, int);

static void forward_tangent(ConvFwd fwd, real *tout, const real *in, const real *tin, const real *weight,
                            const real *tweight, const real *tbias, int B, int Cin, int H, int W, int Cout, int K,
                            int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
    if (tin) {
        fwd(tout, tin, weight, tbias, B, Cin, H, W, Cout, K, stride, pad);
    } else {
        for (int b = 0; b < B; b++)
            for (int o = 0; o < Cout; o++) {
                real v = tbias ? tbias[o] : 0.0f;
                real *r = tout + b * out_sz + (size_t)o * Ho * Wo;
                for (int p = 0; p < Ho * Wo; p++) r[p] = v;
            }
    }
    if (!tweight) return;
    // + conv(in, t_W), one sample at a time through a per-thread buffer
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        real *tmp = scratch_real(SCRATCH_PARTIAL, out_sz);
        fwd(tmp, in + b * in_sz, tweight, NULL, 1, Cin, H, W, Cout, K, stride, pad);
        real *t = tout + b * out_sz;
        for (size_t i = 0; i < out_sz; i++) t[i] += tmp[i];
    }
}

static void backward_tangent(ConvBwd bwd, real *tdin, real *tdweight, real *tdbias, const real *dout,
                             const real *tdout, const real *in, const real *tin, const real *weight,
                             const real *tweight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    if (tdout && (tdin || tdweight || tdbias))
        bwd(tdin, tdweight, tdbias, tdout, in, weight, B, Cin, H, W, Cout, K, stride, pad);
    if (tweight && tdin) bwd(tdin, NULL, NULL, dout, in, tweight, B, Cin, H, W, Cout, K, stride, pad);
    if (tin && tdweight) bwd(NULL, tdweight, NULL, dout, tin, weight, B, Cin, H, W, Cout, K, stride, pad);
}

void conv2d_forward_tangent(real *tout, const real *in, const real *tin, const real *weight, const real *tweight,
                            const real *tbias, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    forward_tangent(conv2d_forward, tout, in, tin, weight, tweight, tbias, B, Cin, H, W, Cout, K, stride, pad);
}

void conv2d_backward_tangent(real *tdin, real *tdweight, real *tdbias, const real *dout, const real *tdout,
                             const real *in, const real *tin, const real *weight, const real *tweight, int B, int Cin,
                             int H, int W, int Cout, int K, int stride, int pad) {
    backward_tangent(conv2d_backward, tdin, tdweight, tdbias, dout, tdout, in, tin, weight, tweight, B, Cin, H, W, Cout,
                     K, stride, pad);
}

void conv2d_forward_tangent_ref(real *tout, const real *in, const real *tin, const real *weight, const real *tweight,
                                const real *tbias, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    forward_tangent(conv2d_forward_ref, tout, in, tin, weight, tweight, tbias, B, Cin, H, W, Cout, K, stride, pad);
}

void conv2d_backward_tangent_ref(real *tdin, real *tdweight, real *tdbias, const real *dout, const real *tdout,
                                 const real *in, const real *tin, const real *weight, const real *tweight, int B,
                                 int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    backward_tangent(conv2d_backward_ref, tdin, tdweight, tdbias, dout, tdout, in, tin, weight, tweight, B, Cin, H, W,
                     Cout, K, stride, pad);
}

// ----------------------------------------------------------------------------
// linear

void linear_forward_tangent(real *tout, const real *in, const real *tin, const real *weight, const real *tweight,
                            const real *tbias, int B, int C, int OC) {
    if (tin) {
        linear_forward(tout, tin, weight, tbias, B, C, OC);
    } else {
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++) tout[(size_t)b * OC + o] = tbias ? tbias[o] : 0.0f;
    }
    if (tweight)
        cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, 1.0f, in, C, tweight, C, 1.0f, tout, OC);
}

void linear_backward_tangent(real *tdin, real *tdweight, real *tdbias, const real *dout, const real *tdout,
                             const real *in, const real *tin, const real *weight, const real *tweight, int B, int C,
                             int OC) {
    if (tdout && (tdin || tdweight || tdbias)) linear_backward(tdin, tdweight, tdbias, tdout, in, weight, B, C, OC);
    if (tweight && tdin) linear_backward(tdin, NULL, NULL, dout, in, tweight, B, C, OC);
    if (tin && tdweight) linear_backward(NULL, tdweight, NULL, dout, tin, weight, B, C, OC);
}
