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

// ----------------------------------------------------------------------------
// conv2d (torch.nn.Conv2d, groups=1, dilation=1): im2col + sgemm per sample

static inline int conv2d_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

void conv2d_forward(float *out,          // (B, Cout, Ho, Wo)
                    const float *in,     // (B, Cin, H, W)
                    const float *weight, // (Cout, Cin, K, K)
                    const float *bias,   // (Cout) or NULL
                    int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward(float *din,          // (B, Cin, H, W) or NULL
                     float *dweight,      // (Cout, Cin, K, K) or NULL
                     float *dbias,        // (Cout) or NULL
                     const float *dout,   // (B, Cout, Ho, Wo)
                     const float *in,     // (B, Cin, H, W)
                     const float *weight, // (Cout, Cin, K, K)
                     int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_forward_ref(float *out, const float *in, const float *weight, const float *bias, int B, int Cin,
                        int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward_ref(float *din, float *dweight, float *dbias, const float *dout, const float *in,
                         const float *weight, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);

// ----------------------------------------------------------------------------
// linear (torch.nn.Linear): out = in W^T + b

void linear_forward(float *out,          // (B, OC)
                    const float *in,     // (B, C)
                    const float *weight, // (OC, C)
                    const float *bias,   // (OC) or NULL
                    int B, int C, int OC);
void linear_backward(float *din,          // (B, C) or NULL
                     float *dweight,      // (OC, C) or NULL
                     float *dbias,        // (OC) or NULL
                     const float *dout,   // (B, OC)
                     const float *in,     // (B, C)
                     const float *weight, // (OC, C)
                     int B, int C, int OC);
void linear_forward_ref(float *out, const float *in, const float *weight, const float *bias, int B, int C, int OC);

// ----------------------------------------------------------------------------
// activations, elementwise over n values

typedef enum {
    ACT_RELU,       // torch.nn.ReLU
    ACT_LEAKY_RELU, // torch.nn.LeakyReLU(negative_slope), DC uses 0.01
    ACT_SIGMOID,    // torch.nn.Sigmoid
    ACT_SILU,       // torch.nn.SiLU, DC's Swish: x * sigmoid(x)
    ACT_GELU,       // torch.nn.GELU(approximate='none'): x * Phi(x)
    ACT_COUNT
} ActKind;

// out and in may alias in forward. Backward needs the forward input.
void act_forward(float *out, const float *in, size_t n, ActKind kind, float slope);
void act_backward(float *din, const float *dout, const float *in, size_t n, ActKind kind, float slope);

// ----------------------------------------------------------------------------
// normalisation

// GroupNorm(G, C) (torch.nn.GroupNorm); InstanceNorm with affine weights is G = C, which is
// what DC/BEARD's ConvNet uses. Saves mean and rstd per (sample, group).
void groupnorm_forward(float *out,         // (B, C, HW)
                       float *mean,        // (B, G)
                       float *rstd,        // (B, G)
                       const float *in,    // (B, C, HW)
                       const float *gamma, // (C) or NULL (no affine)
                       const float *beta,  // (C) or NULL
                       int B, int C, int HW, int G, float eps);
void groupnorm_backward(float *din,         // (B, C, HW) or NULL
                        float *dgamma,      // (C) or NULL
                        float *dbeta,       // (C) or NULL
                        const float *dout,  // (B, C, HW)
                        const float *mean,  // (B, G)
                        const float *rstd,  // (B, G)
                        const float *in,    // (B, C, HW)
                        const float *gamma, // (C) or NULL
                        int B, int C, int HW, int G);

// LayerNorm over (C, H, W) per sample with elementwise affine weights of shape (C, H, W)
// (torch.nn.LayerNorm([C, H, W])), as DC's ConvNetLN builds it.
void layernorm_forward(float *out, float *mean, float *rstd, // (B, D), (B), (B)
                       const float *in, const float *gamma, const float *beta, // (B, D), (D), (D)
                       int B, int D, float eps);
void layernorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *mean,
                        const float *rstd, const float *in, const float *gamma, int B, int D);

// BatchNorm2d. In training mode it normalises with the batch statistics (biased variance),
// saves them for backward, and updates the running statistics with momentum as PyTorch
// does (running_var takes the unbiased variance). In eval mode it uses the running
// statistics and saves nothing batch-dependent.
void batchnorm_forward(float *out,          // (B, C, HW)
                       float *mean,         // (C) batch mean (train) or running mean (eval)
                       float *rstd,         // (C) the 1/sqrt(var + eps) actually used
                       float *running_mean, // (C), updated in train mode
                       float *running_var,  // (C), updated in train mode
                       const float *in, const float *gamma, const float *beta, int B, int C, int HW, float eps,
                       float momentum, int train);
void batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *mean,
                        const float *rstd, const float *in, const float *gamma, int B, int C, int HW, int train);

// ----------------------------------------------------------------------------
// pooling (no padding, floor mode, as torch.nn.AvgPool2d(k, s) / MaxPool2d(k, s))

static inline int pool_out_size(int in, int k, int stride) { return (in - k) / stride + 1; }

void avgpool_forward(float *out, const float *in, int B, int C, int H, int W, int K, int stride);
void avgpool_backward(float *din, const float *dout, int B, int C, int H, int W, int K, int stride);
// argmax: index into the (H, W) plane of the chosen input, per output value. Ties go to the
// first maximum in row-major order, NaN wins (as PyTorch does).
void maxpool_forward(float *out, int *argmax, const float *in, int B, int C, int H, int W, int K, int stride);
void maxpool_backward(float *din, const float *dout, const int *argmax, int B, int C, int H, int W, int K,
                      int stride);

// ----------------------------------------------------------------------------
// cross-entropy from logits, mean over the batch (torch.nn.functional.cross_entropy).
// Hard labels: targets is NULL and labels holds class indices. Soft labels: targets is a
// (B, K) matrix of class probabilities (rows need not sum to 1, as in PyTorch).
// Returns the mean loss; writes d(loss)/d(logits) into dlogits (overwrite, may be NULL).

double crossentropy_forward_backward(float *dlogits, const float *logits, const int *labels,
                                     const float *targets, int B, int K);
// per-sample loss and gradient without the 1/B (what attacks use)
double crossentropy_sample(float *dlogits, const float *logits, int label, int K);

// ----------------------------------------------------------------------------
// parameter initialisation with PyTorch's default distributions
// Conv2d / Linear: weight ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

void init_uniform(float *w, size_t n, float bound, Rng *rng);
void init_fill(float *w, size_t n, float value);

#endif
