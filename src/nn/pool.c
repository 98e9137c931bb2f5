/*
 * pool.c: AvgPool2d and MaxPool2d (torch.nn, no padding, floor mode).
 * Max pooling saves the argmax of each window for backward; ties go to the first maximum
 * in row-major order and a NaN wins its window, as in PyTorch.
 */
#include <math.h>
#include <omp.h>

#include "nn.h"

void avgpool_forward(real *out, const real *in, int B, int C, int H, int W, int K, int stride) {
    int Ho = pool_out_size(H, K, stride), Wo = pool_out_size(W, K, stride);
    long planes = (long)B * C;
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
