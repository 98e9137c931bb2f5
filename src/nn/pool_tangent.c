/*
 * pool_tangent.c: tangents of average and max pooling (see tangent.h). Both are linear
 * in their input (max pooling once its argmax is fixed, which is how PyTorch's double
 * backward treats it), so forward and backward tangents are the primal kernels applied
 * to tangents.
 */
#include <string.h>

#include "tangent.h"

void avgpool_forward_tangent(real *tout, const real *tin, int B, int C, int H, int W, int K, int stride) {
    size_t n = (size_t)B * C * pool_out_size(H, K, stride) * pool_out_size(W, K, stride);
    if (!tin) {
        memset(tout, 0, sizeof(real) * n);
        return;
    }
    avgpool_forward(tout, tin, B, C, H, W, K, stride);
}

void avgpool_backward_tangent(real *tdin, const real *tdout, int B, int C, int H, int W, int K, int stride) {
    if (tdout) avgpool_backward(tdin, tdout, B, C, H, W, K, stride);
}

void maxpool_forward_tangent(real *tout, const int *argmax, const real *tin, int B, int C, int H, int W, int K,
                             int stride) {
    size_t plane = (size_t)H * W, oplane = (size_t)pool_out_size(H, K, stride) * pool_out_size(W, K, stride);
    long planes = (long)B * C;
    if (!tin) {
        memset(tout, 0, sizeof(real) * oplane * (size_t)planes);
        return;
    }
#pragma omp parallel for schedule(static) if (planes > 64)
    for (long p = 0; p < planes; p++) {
        const real *x = tin + (size_t)p * plane;
        const int *am = argmax + (size_t)p * oplane;
        real *y = tout + (size_t)p * oplane;
        for (size_t o = 0; o < oplane; o++) y[o] = x[am[o]];
    }
}

void maxpool_backward_tangent(real *tdin, const real *tdout, const int *argmax, int B, int C, int H, int W, int K,
                              int stride) {
    if (tdout) maxpool_backward(tdin, tdout, argmax, B, C, H, W, K, stride);
}
