/*
 * pool_ext.c: max pooling with padding and adaptive average pooling, see pool_ext.h.
 * Both work plane by plane (sample x channel), in parallel over planes for a batch.
 */
#include <math.h>
#include <omp.h>

#include "pool_ext.h"

void maxpool_pad_forward(real *out, int *argmax, const real *in, int B, int C, int H, int W, int K, int stride,
                         int pad) {
    int Ho = maxpool_pad_out_size(H, K, stride, pad), Wo = maxpool_pad_out_size(W, K, stride, pad);
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = in + (size_t)p * H * W;
        real *y = out + (size_t)p * Ho * Wo;
        int *am = argmax + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                real best = -INFINITY;
                int bi = -1;
                for (int ki = 0; ki < K; ki++) {
                    int ih = oh * stride - pad + ki;
                    if (ih < 0 || ih >= H) continue;
                    for (int kj = 0; kj < K; kj++) {
                        int iw = ow * stride - pad + kj;
                        if (iw < 0 || iw >= W) continue;
                        real v = x[(size_t)ih * W + iw];
                        if (bi < 0 || v > best || (isnan(v) && !isnan(best))) best = v, bi = ih * W + iw;
                    }
                }
                y[(size_t)oh * Wo + ow] = best;
                am[(size_t)oh * Wo + ow] = bi;
            }
    }
}

void maxpool_pad_backward(real *din, const real *dout, const int *argmax, int B, int C, int H, int W, int Ho, int Wo) {
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        real *dx = din + (size_t)p * H * W;
        const real *dy = dout + (size_t)p * Ho * Wo;
        const int *am = argmax + (size_t)p * Ho * Wo;
        for (size_t i = 0; i < (size_t)Ho * Wo; i++)
            if (am[i] >= 0) dx[am[i]] += dy[i];
    }
}

static inline int start_index(int i, int out, int in) { return (int)(((long)i * in) / out); }
static inline int end_index(int i, int out, int in) { return (int)((((long)i + 1) * in + out - 1) / out); }

void adaptive_avgpool_forward(real *out, const real *in, int B, int C, int H, int W, int Ho, int Wo) {
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = in + (size_t)p * H * W;
        real *y = out + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = start_index(oh, Ho, H), h1 = end_index(oh, Ho, H);
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = start_index(ow, Wo, W), w1 = end_index(ow, Wo, W);
                real s = 0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) s += x[(size_t)ih * W + iw];
                y[(size_t)oh * Wo + ow] = s / (real)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void adaptive_avgpool_backward(real *din, const real *dout, int B, int C, int H, int W, int Ho, int Wo) {
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        real *dx = din + (size_t)p * H * W;
        const real *dy = dout + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = start_index(oh, Ho, H), h1 = end_index(oh, Ho, H);
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = start_index(ow, Wo, W), w1 = end_index(ow, Wo, W);
                real g = dy[(size_t)oh * Wo + ow] / (real)((h1 - h0) * (w1 - w0));
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dx[(size_t)ih * W + iw] += g;
            }
        }
    }
}
