/*
 * conv_group.c: grouped convolution, see conv_group.h.
 *
 * Group g maps input channels [g*Cin/G, (g+1)*Cin/G) to output channels
 * [g*Cout/G, (g+1)*Cout/G) with its own (Cout/G, Cin/G, K, K) slice of the weight, as
 * PyTorch defines groups. Within one sample each group's channels are contiguous, so a
 * general group is one call of the dense per-sample kernel (conv2d.c) on that slice.
 * Depthwise groups (one input and one output channel each) would waste that kernel's
 * im2col + GEMM on a 1-row matrix; they get a direct loop instead, whose interior
 * (no padding in reach) runs without bounds tests.
 */
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "conv_group.h"
#include "nn.h"

// one channel of a depthwise convolution: out (Ho, Wo) from in (H, W), w (K, K)
static void dw_forward(real *out, const real *in, const real *w, real bias, int H, int W, int K, int stride, int pad,
                       int Ho, int Wo) {
    for (int oh = 0; oh < Ho; oh++) {
        int ih0 = oh * stride - pad;
        for (int ow = 0; ow < Wo; ow++) {
            int iw0 = ow * stride - pad;
            real s = bias;
            if (ih0 >= 0 && ih0 + K <= H && iw0 >= 0 && iw0 + K <= W) {
                for (int ki = 0; ki < K; ki++) {
                    const real *r = in + (size_t)(ih0 + ki) * W + iw0;
                    const real *wr = w + ki * K;
                    for (int kj = 0; kj < K; kj++) s += wr[kj] * r[kj];
                }
            } else {
                for (int ki = 0; ki < K; ki++) {
                    int ih = ih0 + ki;
                    if (ih < 0 || ih >= H) continue;
                    for (int kj = 0; kj < K; kj++) {
                        int iw = iw0 + kj;
                        if (iw >= 0 && iw < W) s += w[ki * K + kj] * in[(size_t)ih * W + iw];
                    }
                }
            }
            out[(size_t)oh * Wo + ow] = s;
        }
    }
}

static void dw_backward(real *din, real *dw, real *db, const real *dout, const real *in, const real *w, int H, int W,
                        int K, int stride, int pad, int Ho, int Wo) {
    real sb = 0;
    for (int oh = 0; oh < Ho; oh++) {
        int ih0 = oh * stride - pad;
        for (int ow = 0; ow < Wo; ow++) {
            int iw0 = ow * stride - pad;
            real g = dout[(size_t)oh * Wo + ow];
            sb += g;
            for (int ki = 0; ki < K; ki++) {
                int ih = ih0 + ki;
                if (ih < 0 || ih >= H) continue;
                for (int kj = 0; kj < K; kj++) {
                    int iw = iw0 + kj;
                    if (iw < 0 || iw >= W) continue;
                    size_t ii = (size_t)ih * W + iw;
                    if (din) din[ii] += g * w[ki * K + kj];
                    if (dw) dw[ki * K + kj] += g * in[ii];
                }
            }
        }
    }
    if (db) *db += sb;
}

static void sample_forward(real *out, const real *in, const real *weight, const real *bias, int Cin, int H, int W,
                           int Cout, int K, int stride, int pad, int G, int Ho, int Wo) {
    int cin = Cin / G, cout = Cout / G;
    size_t wg = (size_t)cout * cin * K * K;
    for (int g = 0; g < G; g++) {
        const real *ig = in + (size_t)g * cin * H * W, *wgp = weight + g * wg;
        real *og = out + (size_t)g * cout * Ho * Wo;
        if (cin == 1 && cout == 1)
            dw_forward(og, ig, wgp, bias ? bias[g] : 0, H, W, K, stride, pad, Ho, Wo);
        else
            conv2d_forward(og, ig, wgp, bias ? bias + g * cout : NULL, 1, cin, H, W, cout, K, stride, pad);
    }
}

static void sample_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                            const real *weight, int Cin, int H, int W, int Cout, int K, int stride, int pad, int G,
                            int Ho, int Wo) {
    int cin = Cin / G, cout = Cout / G;
    size_t wg = (size_t)cout * cin * K * K;
    for (int g = 0; g < G; g++) {
        const real *ig = in + (size_t)g * cin * H * W, *wgp = weight + g * wg;
        const real *dg = dout + (size_t)g * cout * Ho * Wo;
        real *dig = din ? din + (size_t)g * cin * H * W : NULL;
        real *dwg = dweight ? dweight + g * wg : NULL;
        real *dbg = dbias ? dbias + g * cout : NULL;
        if (cin == 1 && cout == 1)
            dw_backward(dig, dwg, dbg, dg, ig, wgp, H, W, K, stride, pad, Ho, Wo);
        else
            conv2d_backward(dig, dwg, dbg, dg, ig, wgp, 1, cin, H, W, cout, K, stride, pad);
    }
}

void conv2d_group_forward(real *out, const real *in, const real *weight, const real *bias, int B, int Cin, int H,
                          int W, int Cout, int K, int stride, int pad, int G) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++)
        sample_forward(out + b * out_sz, in + b * in_sz, weight, bias, Cin, H, W, Cout, K, stride, pad, G, Ho, Wo);
}

void conv2d_group_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                           const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad,
                           int G) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
    size_t wsz = (size_t)Cout * (Cin / G) * K * K;
    int nt = omp_in_parallel() ? 1 : MIN(omp_get_max_threads(), B);
    int want_params = dweight || dbias;
    real *partial = NULL;
    size_t per = wsz + (size_t)Cout;
    if (nt > 1 && want_params && !(partial = xcalloc(sizeof(real) * per * (size_t)nt))) nt = 1;
    if (nt <= 1 || !want_params) {
#pragma omp parallel for schedule(static) if (nt > 1)
        for (int b = 0; b < B; b++)
            sample_backward(din ? din + b * in_sz : NULL, dweight, dbias, dout + b * out_sz, in + b * in_sz, weight, Cin,
                            H, W, Cout, K, stride, pad, G, Ho, Wo);
        xfree(partial);
        return;
    }
    // per-thread partial weight gradients, reduced in thread order (deterministic)
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        real *pw = partial + (size_t)t * per;
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b++)
            sample_backward(din ? din + b * in_sz : NULL, dweight ? pw : NULL, dbias ? pw + wsz : NULL, dout + b * out_sz,
                            in + b * in_sz, weight, Cin, H, W, Cout, K, stride, pad, G, Ho, Wo);
    }
    conv2d_partials_add(dweight, dbias, partial, nt, wsz, Cout);
}

// ----------------------------------------------------------------------------
// naive references

void conv2d_group_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int Cin, int H,
                              int W, int Cout, int K, int stride, int pad, int G) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    int cin = Cin / G, cout = Cout / G;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    double s = bias ? bias[o] : 0.0;
                    int g = o / cout;
                    for (int c = 0; c < cin; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ih = oh * stride - pad + ki, iw = ow * stride - pad + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                s += (double)in[(((size_t)b * Cin + g * cin + c) * H + ih) * W + iw] *
                                     weight[(((size_t)o * cin + c) * K + ki) * K + kj];
                            }
                    out[(((size_t)b * Cout + o) * Ho + oh) * Wo + ow] = (real)s;
                }
}

void conv2d_group_backward_ref(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                               const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad,
                               int G) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    int cin = Cin / G, cout = Cout / G;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < Cout; o++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    real g = dout[(((size_t)b * Cout + o) * Ho + oh) * Wo + ow];
                    if (dbias) dbias[o] += g;
                    int gr = o / cout;
                    for (int c = 0; c < cin; c++)
                        for (int ki = 0; ki < K; ki++)
                            for (int kj = 0; kj < K; kj++) {
                                int ih = oh * stride - pad + ki, iw = ow * stride - pad + kj;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                size_t ii = (((size_t)b * Cin + gr * cin + c) * H + ih) * W + iw;
                                size_t wi = (((size_t)o * cin + c) * K + ki) * K + kj;
                                if (din) din[ii] += g * weight[wi];
                                if (dweight) dweight[wi] += g * in[ii];
                            }
                }
}
