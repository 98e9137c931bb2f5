/*
 * nn.h: the layers beard's models are built from, each a forward/backward pair.
 *
 * Conventions (after llm.c):
 * - Arguments: outputs first, then state saved for backward, then inputs, then sizes.
 *   Inputs are const. Every tensor is NCHW float32, contiguous; shapes are in comments.
 * - Backward *adds* into every gradient buffer (d-inputs and d-parameters alike); callers
 *   zero them with one memset. Any gradient pointer may be NULL when it is not wanted
 *   (attacks want d-input but not d-weight, training the opposite for the first layer).
 * - Every op that runs over a batch parallelises over samples with OpenMP. Called from
 *   inside a parallel region (beard's per-sample fused driver does that) it runs serially.
 *   Weight gradients over a batch are reduced from per-thread partials in thread order,
 *   so results are deterministic for a given thread count.
 * - Each optimised kernel has a naive reference next to it (suffix _ref) that the tests
 *   compare against.
 *
 * PyTorch equivalents are named per op; numerics follow PyTorch's definitions (biased
 * variance in normalisation, eps inside the square root, exact erf GELU).
 */
#ifndef BEARD_NN_H
#define BEARD_NN_H

#include <stddef.h>

#include "../core/rng.h"
#include "real.h"

// ----------------------------------------------------------------------------
// conv2d (torch.nn.Conv2d, groups=1, dilation=1): im2col + sgemm per sample

static inline int conv2d_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

void conv2d_forward(real *out,          // (B, Cout, Ho, Wo)
                    const real *in,     // (B, Cin, H, W)
                    const real *weight, // (Cout, Cin, K, K)
                    const real *bias,   // (Cout) or NULL
                    int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward(real *din,          // (B, Cin, H, W) or NULL
                     real *dweight,      // (Cout, Cin, K, K) or NULL
                     real *dbias,        // (Cout) or NULL
                     const real *dout,   // (B, Cout, Ho, Wo)
                     const real *in,     // (B, Cin, H, W)
                     const real *weight, // (Cout, Cin, K, K)
                     int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
// the backward kernels' per-thread partials (nt blocks of wsz weight-gradient values
// followed by Cout bias-gradient values) added into dweight / dbias (either may be NULL)
// in thread order; frees partial
void conv2d_partials_add(real *dweight, real *dbias, real *partial, int nt, size_t wsz, int Cout);
// din (Cin, H, W) of one sample += col2im(col), col (Cin*K*K, Ho*Wo) as im2col lays it out
void conv2d_col2im_add(real *din, const real *col, int Cin, int H, int W, int K, int stride, int pad, int Ho, int Wo);
// the same with col's rows ld apart (samples side by side in one matrix, conv_batch.c), and
// im2col itself: col (Cin*K*K rows of ld; the first Ho*Wo values of each written)
void conv2d_col2im_add_ld(real *din, const real *col, size_t ld, int Cin, int H, int W, int K, int stride, int pad,
                          int Ho, int Wo);
void conv2d_im2col_ld(real *col, size_t ld, const real *in, int Cin, int H, int W, int K, int stride, int pad, int Ho,
                      int Wo);
void conv2d_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int Cin,
                        int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward_ref(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                         const real *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);

// the forward pass of a 3x3, stride-1, pad-1 conv by Winograd's minimal filtering
// (winograd.c), tile 2: F(2x2, 3x3), or tile 4: F(4x4, 3x3); U holds the transformed
// weights, winograd_weights_size(tile, Cout, Cin) values, written by winograd_weights
// once per weight update
int winograd_applies(int Cin, int K, int stride, int pad);
// whether the layers with maps of 4x4 or less that Winograd applies to (both passes) take
// it rather than conv_batch.c's GEMM over groups of samples: in builds without 16-lane
// vectors (AVX2), where it measured 1.11-1.20x on ResNet-18 (convplan.h)
int winograd_small_maps(void);
size_t winograd_weights_size(int tile, int Cout, int Cin);
void winograd_weights(int tile, real *U,    // winograd_weights_size(tile, Cout, Cin)
                      const real *weight,   // (Cout, Cin, 3, 3)
                      int Cout, int Cin);
void conv2d_forward_winograd(int tile, real *out, // (B, Cout, H, W)
                             const real *in,      // (B, Cin, H, W)
                             const real *U,       // from winograd_weights, the same tile
                             const real *bias,    // (Cout) or NULL
                             int B, int Cin, int H, int W, int Cout);
// the input gradient of the same convolution: din += conv_transpose(dout), as the
// Winograd convolution from Cout to Cin channels with the kernels rotated by 180 degrees.
// It applies when winograd_applies(Cout, ...) (the backward pass's input channels); U is
// winograd_weights_size(tile, Cin, Cout) values from winograd_weights_backward.
void winograd_weights_backward(int tile, real *U,   // winograd_weights_size(tile, Cin, Cout)
                               const real *weight,  // (Cout, Cin, 3, 3)
                               int Cout, int Cin);
void conv2d_backward_data_winograd(int tile, real *din, // (B, Cin, H, W), added into
                                   const real *dout,    // (B, Cout, H, W)
                                   const real *U,       // from winograd_weights_backward
                                   int B, int Cout, int H, int W, int Cin);

// the forward pass of stride-1 convolutions with fewer than 8 input channels (a first
// layer) by a direct register-blocked kernel (conv_direct.c); Wp holds the weights packed
// by conv_direct_weights, conv_direct_weights_size(Cout, Cin, K) values, once per
// weight update
int conv_direct_applies(int Cin, int stride);
size_t conv_direct_weights_size(int Cout, int Cin, int K);
void conv_direct_weights(real *Wp, const real *weight, int Cout, int Cin, int K);
void conv2d_forward_direct(real *out,        // (B, Cout, Ho, Wo)
                           const real *in,   // (B, Cin, H, W)
                           const real *Wp,   // from conv_direct_weights
                           const real *bias, // (Cout) or NULL
                           int B, int Cin, int H, int W, int Cout, int K, int pad);
// and its input gradient: dcol (Cin*K*K, Ho*Wo) = weight^T . dout by the same register-
// blocked GEMM kernel, then col2im; Wt from conv_direct_weights_backward,
// conv_direct_weights_backward_size(Cout, Cin, K) values. Needs Ho*Wo a multiple of 16.
int conv_direct_backward_applies(int Cin, int stride, int Ho, int Wo);
size_t conv_direct_weights_backward_size(int Cout, int Cin, int K);
void conv_direct_weights_backward(real *Wt, const real *weight, int Cout, int Cin, int K);
void conv2d_backward_data_direct(real *din,        // (B, Cin, H, W), added into
                                 const real *dout, // (B, Cout, Ho, Wo)
                                 const real *Wt,   // from conv_direct_weights_backward
                                 int B, int Cin, int H, int W, int Cout, int K, int pad);

// ----------------------------------------------------------------------------
// linear (torch.nn.Linear): out = in W^T + b

void linear_forward(real *out,          // (B, OC)
                    const real *in,     // (B, C)
                    const real *weight, // (OC, C)
                    const real *bias,   // (OC) or NULL
                    int B, int C, int OC);
void linear_backward(real *din,          // (B, C) or NULL
                     real *dweight,      // (OC, C) or NULL
                     real *dbias,        // (OC) or NULL
                     const real *dout,   // (B, OC)
                     const real *in,     // (B, C)
                     const real *weight, // (OC, C)
                     int B, int C, int OC);
void linear_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int C, int OC);

// ----------------------------------------------------------------------------
// activations, elementwise over n values

typedef enum {
    ACT_RELU,       // torch.nn.ReLU
    ACT_LEAKY_RELU, // torch.nn.LeakyReLU(negative_slope), DC uses 0.01
    ACT_SIGMOID,    // torch.nn.Sigmoid
    ACT_SILU,       // torch.nn.SiLU, DC's Swish: x * sigmoid(x)
    ACT_GELU,       // torch.nn.GELU(approximate='none'): x * Phi(x)
    ACT_RELU6,      // torch.nn.ReLU6: min(max(x, 0), 6)
    ACT_COUNT
} ActKind;

// out and in may alias in forward. Backward needs the forward input.
void act_forward(real *out, const real *in, size_t n, ActKind kind, real slope);
void act_backward(real *din, const real *dout, const real *in, size_t n, ActKind kind, real slope);

// ----------------------------------------------------------------------------
// normalisation

// GroupNorm(G, C) (torch.nn.GroupNorm); InstanceNorm with affine weights is G = C, which is
// what DC/BEARD's ConvNet uses. Saves mean and rstd per (sample, group).
void groupnorm_forward(real *out,         // (B, C, HW)
                       real *mean,        // (B, G)
                       real *rstd,        // (B, G)
                       const real *in,    // (B, C, HW)
                       const real *gamma, // (C) or NULL (no affine)
                       const real *beta,  // (C) or NULL
                       int B, int C, int HW, int G, real eps);
// groupnorm_forward, act_forward(ACT_RELU) and (pool) avgpool_forward(2, 2) in one,
// bit-identical to the three, saving nothing for backward: a forward-only pass's fusion
void groupnorm_relu_pool_forward(real *out,         // (B, C, H/2, W/2), or (B, C, H, W) without pool
                                 const real *in,    // (B, C, H, W)
                                 const real *gamma, // (C) or NULL
                                 const real *beta,  // (C) or NULL
                                 int B, int C, int H, int W, int G, real eps, int pool);
// the input gradient of the same three (no parameter gradients), bit-identical to their
// backward passes run in turn from zeroed buffers
void groupnorm_relu_pool_backward(real *din,         // (B, C, H, W), added into
                                  const real *dout,  // (B, C, H/2, W/2): at the pooled output
                                  const real *mean,  // (B, G) as groupnorm_forward saved them
                                  const real *rstd,  // (B, G)
                                  const real *in,    // (B, C, H, W): GroupNorm's input
                                  const real *out,   // (B, C, H, W): GroupNorm's output
                                  const real *gamma, // (C) or NULL
                                  int B, int C, int H, int W, int G);
void groupnorm_backward(real *din,         // (B, C, HW) or NULL
                        real *dgamma,      // (C) or NULL
                        real *dbeta,       // (C) or NULL
                        const real *dout,  // (B, C, HW)
                        const real *mean,  // (B, G)
                        const real *rstd,  // (B, G)
                        const real *in,    // (B, C, HW)
                        const real *gamma, // (C) or NULL
                        int B, int C, int HW, int G);

// LayerNorm over (C, H, W) per sample with elementwise affine weights of shape (C, H, W)
// (torch.nn.LayerNorm([C, H, W])), as DC's ConvNetLN builds it.
void layernorm_forward(real *out, real *mean, real *rstd, // (B, D), (B), (B)
                       const real *in, const real *gamma, const real *beta, // (B, D), (D), (D)
                       int B, int D, real eps);
void layernorm_backward(real *din, real *dgamma, real *dbeta, const real *dout, const real *mean,
                        const real *rstd, const real *in, const real *gamma, int B, int D);

// BatchNorm2d. In training mode it normalises with the batch statistics (biased variance),
// saves them for backward, and updates the running statistics with momentum as PyTorch
// does (running_var takes the unbiased variance). In eval mode it uses the running
// statistics and saves nothing batch-dependent.
void batchnorm_forward(real *out,          // (B, C, HW)
                       real *mean,         // (C) batch mean (train) or running mean (eval)
                       real *rstd,         // (C) the 1/sqrt(var + eps) actually used
                       real *running_mean, // (C), updated in train mode
                       real *running_var,  // (C), updated in train mode
                       const real *in, const real *gamma, const real *beta, int B, int C, int HW, real eps,
                       real momentum, int train);
void batchnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout, const real *mean,
                        const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int train);
// The same two passes split at their batch-wide reductions, for drivers that run the rest
// of the network one sample at a time (net.c's BatchNorm training path): forward =
// batchnorm_stats over the batch, then batchnorm_apply on any samples; backward =
// batchnorm_backward_sums over the batch (dgamma, dbeta and coef (C, 4), the per-channel
// affine map of the input gradient), then batchnorm_backward_apply on any samples. Each
// half computes exactly what the unsplit function does.
void batchnorm_stats(real *mean, real *rstd, real *running_mean, real *running_var, const real *in, int B, int C,
                     int HW, real eps, real momentum);
void batchnorm_apply(real *out, const real *in, const real *mean, const real *rstd, const real *gamma,
                     const real *beta, int B, int C, int HW);
void batchnorm_backward_sums(real *coef, real *dgamma, real *dbeta, const real *dout, const real *mean,
                             const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int train);
void batchnorm_backward_apply(real *din, const real *coef, const real *dout, const real *in, int B, int C, int HW);

// ----------------------------------------------------------------------------
// pooling (no padding, floor mode, as torch.nn.AvgPool2d(k, s) / MaxPool2d(k, s))

static inline int pool_out_size(int in, int k, int stride) { return (in - k) / stride + 1; }

void avgpool_forward(real *out, const real *in, int B, int C, int H, int W, int K, int stride);
void avgpool_backward(real *din, const real *dout, int B, int C, int H, int W, int K, int stride);
// argmax: index into the (H, W) plane of the chosen input, per output value. Ties go to the
// first maximum in row-major order, NaN wins (as PyTorch does).
void maxpool_forward(real *out, int *argmax, const real *in, int B, int C, int H, int W, int K, int stride);
void maxpool_backward(real *din, const real *dout, const int *argmax, int B, int C, int H, int W, int K,
                      int stride);

// ----------------------------------------------------------------------------
// bilinear resizing of one plane (resize.c): F.interpolate(scale_factor=s,
// mode='bilinear', align_corners=False), r = 1 / s per axis (0.5 doubles the size, 2
// halves it). The input plane has row stride `stride` (a quadrant of a larger image can
// be read or, in backward, written in place).

void bilinear_forward(real *out,      // (Ho, Wo)
                      const real *in, // (H, W), rows `stride` apart
                      int H, int W, int stride, int Ho, int Wo, real rh, real rw);
// din += resize^T(dout)
void bilinear_backward(real *din,       // (H, W), rows `stride` apart
                       const real *dout, // (Ho, Wo)
                       int H, int W, int stride, int Ho, int Wo, real rh, real rw);

// ----------------------------------------------------------------------------
// cross-entropy from logits, mean over the batch (torch.nn.functional.cross_entropy).
// Hard labels: targets is NULL and labels holds class indices. Soft labels: targets is a
// (B, K) matrix of class probabilities (rows need not sum to 1, as in PyTorch).
// Returns the mean loss; writes d(loss)/d(logits) into dlogits (overwrite, may be NULL).

double crossentropy_forward_backward(real *dlogits, const real *logits, const int *labels,
                                     const real *targets, int B, int K);
// per-sample loss and gradient without the 1/B (what attacks use)
double crossentropy_sample(real *dlogits, const real *logits, int label, int K);

// ----------------------------------------------------------------------------
// parameter initialisation with PyTorch's default distributions
// Conv2d / Linear: weight ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

void init_uniform(real *w, size_t n, real bound, Rng *rng);
void init_fill(real *w, size_t n, real value);

#endif
