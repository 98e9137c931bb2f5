/*
 * conv_group.h: grouped 2-d convolution (torch.nn.Conv2d with groups = G > 1), the
 * depthwise case (G = Cin = Cout, MobileNetV2 and ShuffleNetV2) included. Same
 * conventions as nn.h: outputs first, backward adds into every gradient buffer, any of
 * which may be NULL; over a batch the samples run in parallel and weight gradients are
 * reduced from per-thread partials in thread order.
 */
#ifndef BEARD_CONV_GROUP_H
#define BEARD_CONV_GROUP_H

#include "real.h"

void conv2d_group_forward(real *out,          // (B, Cout, Ho, Wo)
                          const real *in,     // (B, Cin, H, W)
                          const real *weight, // (Cout, Cin/G, K, K)
                          const real *bias,   // (Cout) or NULL
                          int B, int Cin, int H, int W, int Cout, int K, int stride, int pad, int G);
void conv2d_group_backward(real *din,          // (B, Cin, H, W) or NULL
                           real *dweight,      // (Cout, Cin/G, K, K) or NULL
                           real *dbias,        // (Cout) or NULL
                           const real *dout,   // (B, Cout, Ho, Wo)
                           const real *in,     // (B, Cin, H, W)
                           const real *weight, // (Cout, Cin/G, K, K)
                           int B, int Cin, int H, int W, int Cout, int K, int stride, int pad, int G);
// naive references, straight from the definition
void conv2d_group_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int Cin, int H,
                              int W, int Cout, int K, int stride, int pad, int G);
void conv2d_group_backward_ref(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                               const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad,
                               int G);

#endif
