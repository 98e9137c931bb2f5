/*
 * convplan.h: which algorithm runs each pass of one convolution layer, and the weights
 * transformed for it.
 *
 * A model holds one ConvPlan per convolution. The plan picks, per pass,
 *   forward      Winograd F(2x2, 3x3) (winograd.c) for 3x3 / stride 1 / pad 1 with at
 *                least 8 input channels; the direct kernel (conv_direct.c) for stride 1
 *                with fewer (a first layer); otherwise im2col + sgemm (conv2d.c);
 *   input grad   Winograd on the flipped kernels when the forward pass uses Winograd and
 *                the layer has at least 8 output channels, otherwise im2col + sgemm;
 *   weight grad  im2col + sgemm (a Winograd F(2x2, 3x3) weight gradient, one sample's
 *                tiles per call, made the SGD step 0.86-0.89x as fast on an AVX2 EPYC, see
 *                git log);
 * and a layer with an output map of 4x4 or less (conv_batch_applies: the deep layers of
 * ResNet-18 and VGG11) runs all three passes over groups of samples, one GEMM per group
 * (conv_batch.c), whenever a call has more than one sample (batch set); a single sample
 * keeps the kernels above, which share it among the threads. In a build without 16-lane
 * vectors (AVX2) the layers of those whose both passes Winograd takes keep Winograd
 * (winograd_small_maps): on an AVX2 EPYC that made ResNet-18 at batch 32, one thread,
 * 1.15x forward, 1.20x forward + backward and 1.11x per SGD step.
 * im2col_only (BEARD_CONV=im2col) runs every pass by im2col + sgemm one sample at a time.
 * tile picks the Winograd variant: 2, F(2x2, 3x3), the default; 4, F(4x4, 3x3)
 * (BEARD_CONV=winograd4), for both Winograd passes of the layers whose rows hold four
 * tiles or more (W >= 13; conv_plan_tile): narrower maps keep F(2x2), whose 16 tiles an
 * 8x8 sample fills a vector of the GEMM with where F(4x4) has 4.
 *
 * The transformed weights are made from a copy of the weights they came from; every
 * conv_plan_update compares the two, so any change of the parameters (a training step,
 * a checkpoint load, a test poking the weights) is picked up before the next pass. The
 * plan is float32 only (the double build of nn/ for the gradient check leaves it out).
 */
#ifndef BEARD_CONVPLAN_H
#define BEARD_CONVPLAN_H

#include <stddef.h>

typedef enum { CONV_ALGO_IM2COL, CONV_ALGO_WINOGRAD, CONV_ALGO_DIRECT } ConvAlgo;

typedef struct {
    int Cin, H, W, Cout, K, stride, pad, im2col_only;
    int tile;          // the Winograd passes' output tile: 2 or 4
    ConvAlgo fwd, bwd; // forward and input-gradient algorithms
    int batch;         // calls of more than one sample: all three passes by conv_batch.c
    float *src;        // (Cout, Cin, K, K): the weights the transforms below were made from
    float *Uf, *Ub;    // transformed (Winograd) or packed (direct) weights of the forward
                       // pass, the input gradient's (NULL until first needed)
} ConvPlan;

// the Winograd tile a layer of width W runs with when tile is asked for (2 or 4)
int conv_plan_tile(int tile, int W);
// chooses the algorithms for a layer; allocates nothing
void conv_plan_init(ConvPlan *p, int Cin, int H, int W, int Cout, int K, int stride, int pad, int im2col_only,
                    int tile);
// brings the transformed weights up to date with weight (Cout, Cin, K, K); backward: also
// those of the input gradient. Returns 0, or -1 when memory runs out.
int conv_plan_update(ConvPlan *p, const float *weight, int backward);
void conv_plan_free(ConvPlan *p);

// the passes, as conv2d_forward / conv2d_backward (backward adds into every gradient;
// any of din, dweight, dbias may be NULL). conv_plan_update must have run since the
// weights last changed (with backward set, for conv_plan_backward).
void conv_plan_forward(const ConvPlan *p,
                       float *out,          // (B, Cout, Ho, Wo)
                       const float *in,     // (B, Cin, H, W)
                       const float *weight, // (Cout, Cin, K, K)
                       const float *bias,   // (Cout) or NULL
                       int B);
void conv_plan_backward(const ConvPlan *p,
                        float *din,          // (B, Cin, H, W) or NULL
                        float *dweight,      // (Cout, Cin, K, K) or NULL
                        float *dbias,        // (Cout) or NULL
                        const float *dout,   // (B, Cout, Ho, Wo)
                        const float *in,     // (B, Cin, H, W)
                        const float *weight, // (Cout, Cin, K, K)
                        int B);

// the tangents of both passes (src/nn/tangent.h: conv2d_forward_tangent and
// conv2d_backward_tangent, the same sums) with every term by a plan: p for the weights,
// tp (the same layer's shape) for the tangent weights, both brought up to date with
// backward set. tmp holds tout's size when tin and tweight are both given (the sum's
// second term); tin, tweight, tbias, tdout may be NULL as there.
void conv_plan_forward_tangent(const ConvPlan *p, const ConvPlan *tp, float *tout, float *tmp, const float *in,
                               const float *tin, const float *weight, const float *tweight, const float *tbias,
                               int B);
void conv_plan_backward_tangent(const ConvPlan *p, const ConvPlan *tp, float *tdin, float *tdweight, float *tdbias,
                                const float *dout, const float *tdout, const float *in, const float *tin,
                                const float *weight, const float *tweight, int B);

#endif
