/*
 * join.h: ops that join, split or permute feature maps, for the graph models
 * (src/models/net.h): the residual sum of ResNets, and ShuffleNetV2's channel split,
 * concatenation and channel shuffle; plus dropout. Same conventions as nn.h (outputs
 * first, backward adds into its gradient buffers, any of which may be NULL). Feature
 * maps are (B, C, HW) per call, HW the plane size.
 */
#ifndef BEARD_JOIN_H
#define BEARD_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"

// out = a + b elementwise (torch's `out += shortcut(x)`); out may alias a or b
void add_forward(real *out, const real *a, const real *b, size_t n);
// da += dout, db += dout (da and db may be the same buffer: then it gets 2 dout)
void add_backward(real *da, real *db, const real *dout, size_t n);

// torch.cat([a, b], 1): out (B, Ca + Cb, HW)
void concat_forward(real *out, const real *a, const real *b, int B, int Ca, int Cb, int HW);
void concat_backward(real *da, real *db, const real *dout, int B, int Ca, int Cb, int HW);

// x[:, c0:c0+n]: out (B, n, HW) from in (B, C, HW)
void slice_forward(real *out, const real *in, int B, int C, int c0, int n, int HW);
void slice_backward(real *din, const real *dout, int B, int C, int c0, int n, int HW);

// ShuffleNet's channel shuffle with g groups: view (g, C/g) -> transpose -> flatten,
// so output channel j*g + i is input channel i*(C/g) + j
void shuffle_forward(real *out, const real *in, int B, int C, int g, int HW);
void shuffle_backward(real *din, const real *dout, int B, int C, int g, int HW);

// inverted dropout (torch.nn.Dropout in training mode): each value is kept with
// probability 1 - p and scaled by 1 / (1 - p). mask (n) saves the scale (0 or
// 1/(1-p)) for backward; it comes from beard's Philox stream (seed, stream), so a pass
// is reproducible and does not depend on the thread count.
void dropout_forward(real *out, real *mask, const real *in, size_t n, real p, uint64_t seed, uint64_t stream);
void dropout_backward(real *din, const real *dout, const real *mask, size_t n);

#endif
