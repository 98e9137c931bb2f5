/*
 * pool_ext.h: the pooling forms the zoo needs beyond nn.h's: max pooling with padding
 * (torch.nn.MaxPool2d(k, s, padding)) and adaptive average pooling
 * (torch.nn.AdaptiveAvgPool2d((Ho, Wo)); (1, 1) is global average pooling). Same
 * conventions as nn.h.
 */
#ifndef BEARD_POOL_EXT_H
#define BEARD_POOL_EXT_H

#include "real.h"

// floor mode; padded positions count as -inf (PyTorch's implicit padding)
static inline int maxpool_pad_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }
// argmax: index into the (H, W) plane of the chosen input per output value; ties go to the
// first maximum in row-major order, NaN wins
void maxpool_pad_forward(real *out,      // (B, C, Ho, Wo)
                         int *argmax,    // (B, C, Ho, Wo)
                         const real *in, // (B, C, H, W)
                         int B, int C, int H, int W, int K, int stride, int pad);
void maxpool_pad_backward(real *din,        // (B, C, H, W)
                          const real *dout, // (B, C, Ho, Wo)
                          const int *argmax, int B, int C, int H, int W, int Ho, int Wo);

// output cell (i, j) averages input rows [floor(i*H/Ho), ceil((i+1)*H/Ho)) and the
// columns likewise, as PyTorch's adaptive_avg_pool2d
void adaptive_avgpool_forward(real *out,      // (B, C, Ho, Wo)
                              const real *in, // (B, C, H, W)
                              int B, int C, int H, int W, int Ho, int Wo);
void adaptive_avgpool_backward(real *din,        // (B, C, H, W)
                               const real *dout, // (B, C, Ho, Wo)
                               int B, int C, int H, int W, int Ho, int Wo);

#endif
