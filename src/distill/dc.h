/*
 * dc.h: the gradient-matching steps of DC and DSA (dc.c), shared by their method files
 * and the step-fidelity test.
 *
 * DC: Zhao, Mopuri, Bilen, "Dataset Condensation with Gradient Matching",
 * arXiv:2006.05929. DSA: Zhao, Bilen, "Dataset Condensation with Differentiable Siamese
 * Augmentation", arXiv:2102.08259. Reference: VICO-UoE/DatasetCondensation main.py and
 * utils.py (match_loss, distance_wb, get_loops, epoch).
 *
 * One outer step of the official loop is, for each class c,
 *   gw_real = grad_theta CE(net(A(real_c)), c)             (256 real images, detached)
 *   gw_syn  = grad_theta CE(net(A(syn_c)), c)              (the class's synthetic images)
 *   loss   += D(gw_syn, gw_real)
 * with A the DSA draw shared by both batches (DSA) or the identity (DC), then one SGD step
 * (lr_img, momentum 0.5) on the synthetic images. The gradient of D w.r.t. the synthetic
 * images goes through gw_syn: with v = dD/d(gw_syn), it is A^T grad_x (v . gw_syn), the
 * mixed second derivative net_hvp computes exactly (src/models/net_hvp.h).
 */
#ifndef BEARD_DISTILL_DC_H
#define BEARD_DISTILL_DC_H

#include "../core/rng.h"
#include "../data/dsa.h"
#include "../models/net.h"

typedef enum {
    DC_DIST_OURS, // DC's layer-wise distance: per parameter tensor reshaped to (out, rest), the sum
                  // over rows of 1 - cos(row_syn, row_real) (with 1e-6 in the denominator);
                  // 1-D tensors (biases, norm weights) contribute 0
    DC_DIST_MSE,  // sum of squared differences over all parameters
    DC_DIST_COS,  // 1 - cos over all parameters concatenated
} DcDistance;

// "ours", "mse", "cos" (dis_metric in the official code)
int dc_distance_parse(const char *s, DcDistance *d, Err *e);
const char *dc_distance_name(DcDistance d);

// D(gsyn, greal) for two gradients in the Net's parameter layout; v (n_params, may be
// NULL) receives dD/d(gsyn), overwritten
double dc_distance(const Net *net, const float *gsyn, const float *greal, DcDistance d, float *v);

// Workspace for dc_match_class (buffers grown on demand); zero-initialise, dc_work_free.
typedef struct {
    float *greal, *gsyn, *v, *xa, *dxa;
    int *labels;
    size_t cap_x;
    int cap_n;
    DsaSample *s;
    int cap_s;
} DcWork;
void dc_work_free(DcWork *w);

// One class's term of the outer step: the loss D(gw_syn, gw_real), and its gradient w.r.t.
// the class's synthetic images added into gsyn (n_syn, in size). xreal/syn are in the
// model's input space. draw: the DSA op and parameters applied to both batches (every
// sample uses draw->s[0], as the official code's shared seed does), or NULL. BatchNorm
// runs in eval mode (running statistics), as the official code matches.
int dc_match_class(Net *net, const float *xreal, int n_real, const float *syn, int n_syn, int label,
                   const DsaDraw *draw, const DsaConfig *cfg, DcDistance dist, double *loss, float *gsyn, DcWork *w,
                   Err *e);

// BatchNorm networks: the running statistics from one training-mode forward pass over x
// (B images: the official code's 16 real images per class), as net.train(); net(x).
int dc_bn_statistics(Net *net, const float *x, int B, Err *e);

// One SGD step (lr, no momentum, as the inner loop's torch.optim.SGD(lr=lr_net)) of the
// network on a batch, BatchNorm in training mode; draw: per-sample DSA parameters or NULL.
// grads: net->grads is used (allocated if needed).
int dc_net_step(Net *net, const float *x, const int *y, int B, float lr, const DsaDraw *draw, const DsaConfig *cfg,
                DcWork *w, Err *e);

#endif
