/*
 * net_hvp.h: second-order passes over a whole Net, for the distillation methods that
 * match gradients (DC, DSA) or training trajectories (MTT).
 *
 * For the mean cross-entropy L(theta, x) of a batch and a tangent v in parameter space,
 * one call gives
 *   loss, grad = grad_theta L,
 *   hv = grad_theta (v . grad_theta L) = H v            (MTT's adjoint step)
 *   dx = grad_x (v . grad_theta L)                      (DC's and MTT's image gradient)
 * by forward-over-reverse (src/nn/tangent.h): forward, backward keeping every node's
 * output gradient, then the forward and backward tangent passes with theta_dot = v and
 * x_dot = 0. It is the exact second derivative, computed in float32; PyTorch's
 * autograd.grad(..., create_graph=True) gives the same numbers (tests/test_so.c).
 *
 * Any graph the Net builds (layer chains such as the ConvNet family, residual sums):
 * every pass runs over the nodes in topological order, sums of branches included.
 *
 * Drivers. Without batch coupling (no BatchNorm in training mode) every thread runs all
 * four passes over its share of the batch in chunks of net_chunk_size samples (2 for a
 * 32 px ConvNet: enough tiles for the Winograd layers' GEMM blocks; each sample computed
 * as alone) in a per-thread workspace (a chunk's activations, gradients and their
 * tangents), and parameter results are reduced from per-thread partials in thread order,
 * as net_forward_backward does: deterministic for a given thread count.
 * BatchNorm in training mode (batch statistics) couples the samples, and the batch runs
 * layer by layer instead (kernels parallel inside). Running statistics are never
 * updated here, in either mode.
 *
 * Nothing is kept between calls: a caller that needs grad before it can choose v (DC
 * differentiates a distance of grad) calls once with v = NULL, then again with v, and
 * the second call recomputes the forward and backward passes. That recomputation is
 * also what MTT's unrolled steps use instead of storing every step's activations (the
 * "checkpointed unrolling" of the issue), so memory stays at one workspace per thread.
 */
#ifndef BEARD_NET_HVP_H
#define BEARD_NET_HVP_H

#include "net.h"

typedef struct {
    // inputs
    const int *labels;    // (B) class indices, or
    const float *targets; // (B, n_classes) soft targets (rows need not sum to 1); used when not NULL
    const float *v;       // (n_params) the tangent of the parameters, or NULL: first order only
    int train;            // BatchNorm with batch statistics (else running statistics)
    // outputs, each NULL when not wanted; all overwritten
    float *grad;   // (n_params) grad_theta L
    float *hv;     // (n_params) H v (needs v)
    float *dx;     // (B, in size) grad_x (v . grad_theta L), in the space of the input given (needs v)
    float *logits; // (B, n_classes)
    double loss;   // the mean cross-entropy
} NetHvp;

// the mean cross-entropy over a batch with hard labels, as a NetLossFn for
// net_forward_backward (ctx: a NetMeanCE; scale = 1 / B)
typedef struct {
    const int *labels;
    int n_classes;
    float scale;
} NetMeanCE;
double net_mean_ce(void *ctx, int i, const float *logits, float *dlogits);

// one second-order pass over a batch of B (x: (B, in size)). Returns 0, or -1 with e set
// (out of memory, or a label outside [0, n_classes)).
int net_hvp(Net *net, const float *x, int B, NetHvp *h, Err *e);

#endif
