/*
 * conv_batch.h: 2-d convolution (torch.nn.Conv2d, groups = 1) over groups of samples, one
 * GEMM per group (conv_batch.c), for layers with small feature maps. Same conventions as
 * nn.h's conv2d_forward / conv2d_backward (backward adds into every gradient; any of din,
 * dweight, dbias may be NULL).
 */
#ifndef BEARD_CONV_BATCH_H
#define BEARD_CONV_BATCH_H

#include "real.h"

// whether ConvPlan runs a layer this way (its output map is Ho x Wo)
int conv_batch_applies(int Cin, int Cout, int K, int Ho, int Wo);
// the samples one GEMM takes for an Ho x Wo output map
int conv_batch_samples(int Ho, int Wo);

void conv2d_batch_forward(real *out,          // (B, Cout, Ho, Wo)
                          const real *in,     // (B, Cin, H, W)
                          const real *weight, // (Cout, Cin, K, K)
                          const real *bias,   // (Cout) or NULL
                          int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_batch_backward(real *din,          // (B, Cin, H, W) or NULL
                           real *dweight,      // (Cout, Cin, K, K) or NULL
                           real *dbias,        // (Cout) or NULL
                           const real *dout,   // (B, Cout, Ho, Wo)
                           const real *in,     // (B, Cin, H, W)
                           const real *weight, // (Cout, Cin, K, K)
                           int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);

#endif
