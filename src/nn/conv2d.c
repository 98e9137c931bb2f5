/*
 * conv2d.c: 2-d convolution (torch.nn.Conv2d with groups = 1, dilation = 1, zero padding),
 * forward and backward, by im2col + sgemm one sample at a time.
 *
 * Per sample, with P = Ho*Wo output positions and Kc = Cin*K*K:
 *   col   (Kc, P)    = im2col(in)
 *   out   (Cout, P)  = W (Cout, Kc) . col + bias
 *   dcol  (Kc, P)    = W^T . dout          -> din += col2im(dcol)
 *   dW    (Cout, Kc) += dout . col^T       (col recomputed, not stored)
 * One sample's col fits in L2 for every layer of a 32x32 ConvNet, which is why beard
 * works per sample rather than on one huge batched im2col matrix.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "../core/parallel.h"
#include "nn.h"

// col (Cin*K*K rows of ld, the first Ho*Wo of each written) from one sample's in (Cin, H, W)
void conv2d_im2col_ld(real *col, size_t ld, const real *in, int Cin, int H, int W, int K, int stride, int pad, int Ho,
                      int Wo) {
    size_t P = ld;
    for (int c = 0; c < Cin; c++) {
        const real *inc = in + (size_t)c * H * W;
        for (int ki = 0; ki < K; ki++) {
            for (int kj = 0; kj < K; kj++) {
                real *row = col + ((size_t)(c * K + ki) * K + kj) * P;
                // output columns whose input column iw = ow*stride - pad + kj is inside [0, W)
                int ow_lo = 0, ow_hi = Wo;
                while (ow_lo < Wo && ow_lo * stride - pad + kj < 0) ow_lo++;
                while (ow_hi > ow_lo && (ow_hi - 1) * stride - pad + kj >= W) ow_hi--;
                for (int oh = 0; oh < Ho; oh++) {
                    real *r = row + (size_t)oh * Wo;
                    int ih = oh * stride - pad + ki;
                    if (ih < 0 || ih >= H) {
                        memset(r, 0, sizeof(real) * (size_t)Wo);
                        continue;
                    }
                    const real *src = inc + (size_t)ih * W;
                    for (int ow = 0; ow < ow_lo; ow++) r[ow] = 0.0f;
                    if (stride == 1) {
                        memcpy(r + ow_lo, src + ow_lo - pad + kj, sizeof(real) * (size_t)(ow_hi - ow_lo));
                    } else {
                        for (int ow = ow_lo; ow < ow_hi; ow++) r[ow] = src[ow * stride - pad + kj];
                    }
                    for (int ow = ow_hi; ow < Wo; ow++) r[ow] = 0.0f;
                }
            }
        }
    }
}

// col (Cin*K*K, Ho*Wo) from one sample's in (Cin, H, W)
static void im2col(real *col, const real *in, int Cin, int H, int W, int K, int stride, int pad, int Ho, int Wo) {
    conv2d_im2col_ld(col, (size_t)Ho * Wo, in, Cin, H, W, K, stride, pad, Ho, Wo);
}

// din (Cin, H, W) += col2im(col), col rows of ld
void conv2d_col2im_add_ld(real *din, const real *col, size_t ld, int Cin, int H, int W, int K, int stride, int pad,
                          int Ho, int Wo) {
    size_t P = ld;
    for (int c = 0; c < Cin; c++) {
        real *dc = din + (size_t)c * H * W;
        for (int ki = 0; ki < K; ki++) {
            for (int kj = 0; kj < K; kj++) {
                const real *row = col + ((size_t)(c * K + ki) * K + kj) * P;
                int ow_lo = 0, ow_hi = Wo;
                while (ow_lo < Wo && ow_lo * stride - pad + kj < 0) ow_lo++;
                while (ow_hi > ow_lo && (ow_hi - 1) * stride - pad + kj >= W) ow_hi--;
                for (int oh = 0; oh < Ho; oh++) {
                    int ih = oh * stride - pad + ki;
                    if (ih < 0 || ih >= H) continue;
                    const real *r = row + (size_t)oh * Wo;
                    real *dst = dc + (size_t)ih * W;
                    if (stride == 1) {
                        real *d = dst - pad + kj;
                        for (int ow = ow_lo; ow < ow_hi; ow++) d[ow] += r[ow];
                    } else {
                        for (int ow = ow_lo; ow < ow_hi; ow++) dst[ow * stride - pad + kj] += r[ow];
                    }
                }
            }
        }
    }
}

void conv2d_col2im_add(real *din, const real *col, int Cin, int H, int W, int K, int stride, int pad, int Ho,
                       int Wo) {
    conv2d_col2im_add_ld(din, col, (size_t)Ho * Wo, Cin, H, W, K, stride, pad, Ho, Wo);
}

static int direct_1x1(int K, int stride, int pad) { return K == 1 && stride == 1 && pad == 0; }

static void conv_sample_forward(real *out, const real *in, const real *weight, const real *bias, int Cin,
                                int H, int W, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    int P = Ho * Wo, Kc = Cin * K * K;
    const real *col = in;
    if (!direct_1x1(K, stride, pad)) {
        real *c = scratch_real(SCRATCH_COL, (size_t)Kc * P);
        im2col(c, in, Cin, H, W, K, stride, pad, Ho, Wo);
        col = c;
    }
    for (int o = 0; o < Cout; o++) {
        real b = bias ? bias[o] : 0.0f;
        real *r = out + (size_t)o * P;
        for (int p = 0; p < P; p++) r[p] = b;
    }
    cblas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, P, Kc, 1.0f, weight, Kc, col, P, 1.0f, out, P);
}

void conv2d_forward(real *out, const real *in, const real *weight, const real *bias, int B, int Cin, int H,
                    int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++)
        conv_sample_forward(out + b * out_sz, in + b * in_sz, weight, bias, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
}

static void conv_sample_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                                 const real *weight, int Cin, int H, int W, int Cout, int K, int stride, int pad,
                                 int Ho, int Wo) {
    int P = Ho * Wo, Kc = Cin * K * K;
    int direct = direct_1x1(K, stride, pad);
    if (dbias) {
        for (int o = 0; o < Cout; o++) {
            const real *r = dout + (size_t)o * P;
            real s = 0.0f;
            for (int p = 0; p < P; p++) s += r[p];
            dbias[o] += s;
        }
    }
    if (dweight) {
        const real *col = in;
        if (!direct) {
            real *c = scratch_real(SCRATCH_COL, (size_t)Kc * P);
            im2col(c, in, Cin, H, W, K, stride, pad, Ho, Wo);
            col = c;
        }
        cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, Kc, P, 1.0f, dout, P, col, P, 1.0f, dweight, Kc);
    }
    if (din) {
        if (direct) {
            cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, Kc, P, Cout, 1.0f, weight, Kc, dout, P, 1.0f, din, P);
        } else {
            real *dcol = scratch_real(SCRATCH_COL2, (size_t)Kc * P);
            cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, Kc, P, Cout, 1.0f, weight, Kc, dout, P, 0.0f, dcol,
                        P);
            conv2d_col2im_add(din, dcol, Cin, H, W, K, stride, pad, Ho, Wo);
        }
    }
}

void conv2d_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                     const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
    size_t wsz = (size_t)Cout * Cin * K * K;
    int nt = omp_in_parallel() ? 1 : MIN(omp_get_max_threads(), B);
    int want_params = dweight || dbias;
    if (nt <= 1 || !want_params) {
#pragma omp parallel for schedule(static) if (nt > 1)
        for (int b = 0; b < B; b++)
            conv_sample_backward(din ? din + b * in_sz : NULL, dweight, dbias, dout + b * out_sz, in + b * in_sz,
                                 weight, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
        return;
    }
    // per-thread partial weight gradients, reduced in thread order (deterministic)
    size_t per = wsz + (size_t)Cout;
    real *partial = xcalloc(sizeof(real) * per * (size_t)nt);
    if (!partial) { // no memory for partials: fall back to one thread
        for (int b = 0; b < B; b++)
            conv_sample_backward(din ? din + b * in_sz : NULL, dweight, dbias, dout + b * out_sz, in + b * in_sz,
                                 weight, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        real *pw = partial + (size_t)t * per;
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b++)
            conv_sample_backward(din ? din + b * in_sz : NULL, dweight ? pw : NULL, dbias ? pw + wsz : NULL,
                                 dout + b * out_sz, in + b * in_sz, weight, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
    }
    conv2d_partials_add(dweight, dbias, partial, nt, wsz, Cout);
}

// the per-thread partial parameter gradients of a backward pass, nt blocks of wsz + Cout
// (the weights', then the bias'), added into dweight and dbias in thread order (so the same
// thread count gives the same bits), then freed
void conv2d_partials_add(real *dweight, real *dbias, real *partial, int nt, size_t wsz, int Cout) {
    for (int t = 0; t < nt; t++) {
        const real *pw = partial + (size_t)t * (wsz + (size_t)Cout);
        if (dweight)
            for (size_t i = 0; i < wsz; i++) dweight[i] += pw[i];
        if (dbias)
            for (int o = 0; o < Cout; o++) dbias[o] += pw[wsz + o];
    }
    xfree(partial);
}

// ----------------------------------------------------------------------------
// naive references, straight from the definition

void conv2d_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int Cin,
                        int H, int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int c = 0; c < Cin; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ih = oh * stride - pad + ki, iw = ow * stride - pad + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)in[(((size_t)b * Cin + c) * H + ih) * W + iw] *
                                     weight[(((size_t)o * Cin + c) * K + ki) * K + kj];
                            }
                    out[(((size_t)b * Cout + o) * Ho + oh) * Wo + ow] = (real)s;
                }
}

void conv2d_backward_ref(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                         const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    real g = dout[(((size_t)b * Cout + o) * Ho + oh) * Wo + ow];
                    if (dbias) dbias[o] += g;
                    for (int c = 0; c < Cin; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ih = oh * stride - pad + ki, iw = ow * stride - pad + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t ii = (((size_t)b * Cin + c) * H + ih) * W + iw;
                                size_t wi = (((size_t)o * Cin + c) * K + ki) * K + kj;
                                if (din) din[ii] += g * weight[wi];
                                if (dweight) dweight[wi] += g * in[ii];
                            }
                }
}
