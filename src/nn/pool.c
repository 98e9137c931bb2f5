/*
 * pool.c: AvgPool2d and MaxPool2d (torch.nn, no padding, floor mode).
 * Max pooling saves the argmax of each window for backward; ties go to the first maximum
 * in row-major order and a NaN wins its window, as in PyTorch.
 */
#include <math.h>
#include <omp.h>

#include "nn.h"

// the 2x2 / stride 2 case every pooled ConvNet uses, summed in PyTorch's order
static void avgpool2_forward(real *out, const real *in, long planes, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = in + (size_t)p * H * W;
        real *y = out + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            const real *r0 = x + (size_t)(2 * oh) * W, *r1 = r0 + W;
            real *yo = y + (size_t)oh * Wo;
            for (int ow = 0; ow < Wo; ow++) yo[ow] = (r0[2 * ow] + r0[2 * ow + 1] + r1[2 * ow] + r1[2 * ow + 1]) / (real)4;
        }
    }
}

static void avgpool2_backward(real *din, const real *dout, long planes, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        real *dx = din + (size_t)p * H * W;
        const real *dy = dout + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            real *r0 = dx + (size_t)(2 * oh) * W, *r1 = r0 + W;
            const real *g = dy + (size_t)oh * Wo;
            for (int ow = 0; ow < Wo; ow++) {
                real v = g[ow] / (real)4;
                r0[2 * ow] += v, r0[2 * ow + 1] += v, r1[2 * ow] += v, r1[2 * ow + 1] += v;
            }
        }
    }
}

void avgpool_forward(real *out, const real *in, int B, int C, int H, int W, int K, int stride) {
    int Ho = pool_out_size(H, K, stride), Wo = pool_out_size(W, K, stride);
    long planes = (long)B * C;
    if (K == 2 && stride == 2) return avgpool2_forward(out, in, planes, H, W);
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = in + (size_t)p * H * W;
        real *y = out + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                real s = 0.0f;
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) s += x[(size_t)(oh * stride + i) * W + ow * stride + j];
                y[oh * Wo + ow] = s / (real)(K * K);
            }
    }
}

void avgpool_backward(real *din, const real *dout, int B, int C, int H, int W, int K, int stride) {
    int Ho = pool_out_size(H, K, stride), Wo = pool_out_size(W, K, stride);
    long planes = (long)B * C;
    if (K == 2 && stride == 2) return avgpool2_backward(din, dout, planes, H, W);
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        real *dx = din + (size_t)p * H * W;
        const real *dy = dout + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                real g = dy[oh * Wo + ow] / (real)(K * K);
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) dx[(size_t)(oh * stride + i) * W + ow * stride + j] += g;
            }
    }
}

void maxpool_forward(real *out, int *argmax, const real *in, int B, int C, int H, int W, int K, int stride) {
    int Ho = pool_out_size(H, K, stride), Wo = pool_out_size(W, K, stride);
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = in + (size_t)p * H * W;
        real *y = out + (size_t)p * Ho * Wo;
        int *am = argmax + (size_t)p * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                real best = -INFINITY;
                int bi = (oh * stride) * W + ow * stride;
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) {
                        int idx = (oh * stride + i) * W + ow * stride + j;
                        real v = x[idx];
                        if (v > best || isnan(v)) {
                            best = v;
                            bi = idx;
                            if (isnan(v)) goto done;
                        }
                    }
            done:
                y[oh * Wo + ow] = best;
                am[oh * Wo + ow] = bi;
            }
    }
}

void maxpool_backward(real *din, const real *dout, const int *argmax, int B, int C, int H, int W, int K,
                      int stride) {
    int Ho = pool_out_size(H, K, stride), Wo = pool_out_size(W, K, stride);
    long planes = (long)B * C;
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        real *dx = din + (size_t)p * H * W;
        const real *dy = dout + (size_t)p * Ho * Wo;
        const int *am = argmax + (size_t)p * Ho * Wo;
        for (int o = 0; o < Ho * Wo; o++) dx[am[o]] += dy[o];
    }
}
