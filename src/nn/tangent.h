/*
 * tangent.h: second-order differentiation of the nn layers, by forward-over-reverse.
 *
 * Dataset condensation by gradient matching (DC, DSA: Zhao et al., arXiv:2006.05929,
 * arXiv:2102.08259) and by trajectory matching (MTT: Cazenavette et al.,
 * arXiv:2203.11932) differentiate functions of the parameter gradient
 * g(theta, x) = grad_theta L(theta, x). Everything they need is one primitive: for a
 * vector v in parameter space,
 *
 *     grad_(theta, x) [ v . grad_theta L(theta, x) ]  =  ( H_thth v , H_xth v ),
 *
 * a Hessian-vector product and the mixed product in one pass. beard computes it as the
 * directional derivative of the first-order gradient (grad_theta L, grad_x L) in the
 * direction (theta_dot, x_dot) = (v, 0): forward-over-reverse, with the tangent of every
 * value carried next to it. By the symmetry of second derivatives the tangent of grad_x L
 * is grad_x (v . grad_theta L), and the tangent of grad_theta L is H v. (PyTorch's
 * autograd.grad(..., create_graph=True) gets the same numbers by differentiating the
 * backward graph in reverse; the test suite compares the two.)
 *
 * Why forward-over-reverse rather than double backward: the tangent of a backward rule is
 * the product rule applied to a closed formula, which for the normalisations is far
 * shorter than reversing their backward graph, and the linear layers' tangents are
 * calls of their existing (optimised) forward and backward kernels. The cost is the same
 * as double backward's: about twice a gradient.
 *
 * Each layer gets a pair, in the order they run:
 *   <op>_forward_tangent   t_out from (in, t_in, params, t_params), the JVP of forward
 *   <op>_backward_tangent  the JVP of <op>_backward: (t_din, t_dparams) from
 *                          (dout, t_dout, in, t_in, params, t_params)
 * Conventions as in nn.h: outputs first, then saved state, then inputs, then sizes;
 * backward tangents *add* into their outputs (forward tangents overwrite, as forward
 * does); a NULL tangent input means a zero tangent (t_in NULL: the input does not move,
 * as at the network input), a NULL output means it is not wanted. Saved state (norm
 * mean/rstd, max-pool argmax) is the primal forward's. Kinks are treated as PyTorch's
 * double backward treats them: ReLU'' = 0, the max-pool argmax is fixed.
 */
#ifndef BEARD_TANGENT_H
#define BEARD_TANGENT_H

#include <stddef.h>

#include "nn.h"

// ----------------------------------------------------------------------------
// conv2d:  out = conv(in, W) + b
//   t_out  = conv(t_in, W) + conv(in, t_W) + t_b
//   t_din += conv^T(t_dout, W) + conv^T(dout, t_W)
//   t_dW  += t_dout * in + dout * t_in        (correlations over positions and samples)
//   t_db  += sum t_dout

void conv2d_forward_tangent(real *tout,          // (B, Cout, Ho, Wo)
                            const real *in,      // (B, Cin, H, W)
                            const real *tin,     // (B, Cin, H, W) or NULL
                            const real *weight,  // (Cout, Cin, K, K)
                            const real *tweight, // (Cout, Cin, K, K) or NULL
                            const real *tbias,   // (Cout) or NULL
                            int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward_tangent(real *tdin,          // (B, Cin, H, W) or NULL
                             real *tdweight,      // (Cout, Cin, K, K) or NULL
                             real *tdbias,        // (Cout) or NULL
                             const real *dout,    // (B, Cout, Ho, Wo)
                             const real *tdout,   // (B, Cout, Ho, Wo) or NULL
                             const real *in,      // (B, Cin, H, W)
                             const real *tin,     // (B, Cin, H, W) or NULL
                             const real *weight,  // (Cout, Cin, K, K)
                             const real *tweight, // (Cout, Cin, K, K) or NULL
                             int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
// the same from the naive conv2d references (what the tests compare against)
void conv2d_forward_tangent_ref(real *tout, const real *in, const real *tin, const real *weight, const real *tweight,
                                const real *tbias, int B, int Cin, int H, int W, int Cout, int K, int stride, int pad);
void conv2d_backward_tangent_ref(real *tdin, real *tdweight, real *tdbias, const real *dout, const real *tdout,
                                 const real *in, const real *tin, const real *weight, const real *tweight, int B,
                                 int Cin, int H, int W, int Cout, int K, int stride, int pad);

// ----------------------------------------------------------------------------
// linear: out = in W^T + b, the same rules as conv2d

void linear_forward_tangent(real *tout,          // (B, OC)
                            const real *in,      // (B, C)
                            const real *tin,     // (B, C) or NULL
                            const real *weight,  // (OC, C)
                            const real *tweight, // (OC, C) or NULL
                            const real *tbias,   // (OC) or NULL
                            int B, int C, int OC);
void linear_backward_tangent(real *tdin,          // (B, C) or NULL
                             real *tdweight,      // (OC, C) or NULL
                             real *tdbias,        // (OC) or NULL
                             const real *dout,    // (B, OC)
                             const real *tdout,   // (B, OC) or NULL
                             const real *in,      // (B, C)
                             const real *tin,     // (B, C) or NULL
                             const real *weight,  // (OC, C)
                             const real *tweight, // (OC, C) or NULL
                             int B, int C, int OC);

// ----------------------------------------------------------------------------
// activations: out = f(in);  t_out = f'(in) t_in;  t_din += f''(in) t_in dout + f'(in) t_dout

void act_forward_tangent(real *tout, const real *in, const real *tin, size_t n, ActKind kind, real slope);
void act_backward_tangent(real *tdin, const real *dout, const real *tdout, const real *in, const real *tin, size_t n,
                          ActKind kind, real slope);

// ----------------------------------------------------------------------------
// normalisation. With xhat = (x - mean) rstd over a group of N values and q = mean(xhat t_x):
//   t_xhat = rstd (t_x - mean(t_x) - xhat q),  t_rstd = -rstd^2 q
// and the tangent of the backward rule dx = rstd (gy - mean(gy) - xhat mean(gy xhat)),
// gy = gamma dy, by the product rule (norm_tangent.c). mean/rstd are what the primal
// forward saved.

void groupnorm_forward_tangent(real *tout,          // (B, C, HW)
                               const real *mean,    // (B, G)
                               const real *rstd,    // (B, G)
                               const real *in,      // (B, C, HW)
                               const real *tin,     // (B, C, HW) or NULL
                               const real *gamma,   // (C) or NULL
                               const real *tgamma,  // (C) or NULL
                               const real *tbeta,   // (C) or NULL
                               int B, int C, int HW, int G);
void groupnorm_backward_tangent(real *tdin,         // (B, C, HW) or NULL
                                real *tdgamma,      // (C) or NULL
                                real *tdbeta,       // (C) or NULL
                                const real *dout,   // (B, C, HW)
                                const real *tdout,  // (B, C, HW) or NULL
                                const real *mean,   // (B, G)
                                const real *rstd,   // (B, G)
                                const real *in,     // (B, C, HW)
                                const real *tin,    // (B, C, HW) or NULL
                                const real *gamma,  // (C) or NULL
                                const real *tgamma, // (C) or NULL
                                int B, int C, int HW, int G);

void layernorm_forward_tangent(real *tout, const real *mean, const real *rstd, // (B, D), (B), (B)
                               const real *in, const real *tin,                // (B, D)
                               const real *gamma, const real *tgamma, const real *tbeta, // (D)
                               int B, int D);
void layernorm_backward_tangent(real *tdin, real *tdgamma, real *tdbeta, // (B, D), (D), (D)
                                const real *dout, const real *tdout,    // (B, D)
                                const real *mean, const real *rstd,     // (B), (B)
                                const real *in, const real *tin,        // (B, D)
                                const real *gamma, const real *tgamma,  // (D)
                                int B, int D);

// BatchNorm2d: train uses the batch statistics saved by the primal forward (the group is
// a channel over the whole batch); eval uses the running statistics, constants here.
// Running statistics are never touched.
void batchnorm_forward_tangent(real *tout,         // (B, C, HW)
                               const real *mean,   // (C)
                               const real *rstd,   // (C)
                               const real *in, const real *tin, // (B, C, HW)
                               const real *gamma, const real *tgamma, const real *tbeta, // (C)
                               int B, int C, int HW, int train);
void batchnorm_backward_tangent(real *tdin, real *tdgamma, real *tdbeta, // (B, C, HW), (C), (C)
                                const real *dout, const real *tdout,    // (B, C, HW)
                                const real *mean, const real *rstd,     // (C)
                                const real *in, const real *tin,        // (B, C, HW)
                                const real *gamma, const real *tgamma,  // (C)
                                int B, int C, int HW, int train);

// ----------------------------------------------------------------------------
// pooling: both are linear in their input, so the tangents are the primal kernels
// applied to tangents (max pooling through the primal argmax)

void avgpool_forward_tangent(real *tout, const real *tin, int B, int C, int H, int W, int K, int stride);
void avgpool_backward_tangent(real *tdin, const real *tdout, int B, int C, int H, int W, int K, int stride);
void maxpool_forward_tangent(real *tout, const int *argmax, const real *tin, int B, int C, int H, int W, int K,
                             int stride);
void maxpool_backward_tangent(real *tdin, const real *tdout, const int *argmax, int B, int C, int H, int W, int K,
                              int stride);

// ----------------------------------------------------------------------------
// cross-entropy (mean over the batch, as crossentropy_forward_backward): the tangent of
// d(loss)/d(logits) for a tangent t_logits,
//   t_dlogits = tsum p (t_z - p . t_z) / B,   p = softmax(z), tsum = sum(target) (1 if hard)
// written into tdlogits (overwrite, like the primal).

void crossentropy_backward_tangent(real *tdlogits,      // (B, K)
                                   const real *logits,  // (B, K)
                                   const real *tlogits, // (B, K)
                                   const real *targets, // (B, K) soft targets, or NULL (hard labels)
                                   int B, int K);

#endif
