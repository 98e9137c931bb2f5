/*
 * mtt.h: MTT's trajectory-matching iteration (mtt.c), shared by its method file and the
 * step-fidelity test.
 *
 * MTT: Cazenavette, Wang, Torralba, Efros, Zhu, "Dataset Distillation by Matching Training
 * Trajectories", arXiv:2203.11932. Reference: GeorgeCazenavette/mtt-distillation
 * distill.py (the unrolled student) and buffer.py (the expert trajectories).
 *
 * One iteration: a student starts at an expert's parameters theta_0 = start (epoch e) and
 * takes N SGD steps on minibatches of the synthetic set, each through its DSA draw,
 *   theta_{k+1} = theta_k - syn_lr * grad_theta CE(theta_k; A_k(x[idx_k]))
 * and the loss is ||theta_N - target||^2 / ||start - target||^2, target the expert's
 * parameters at epoch e + expert_epochs. Its gradient w.r.t. the images and syn_lr is the
 * reverse sweep over the unrolled steps, with a_N = dL/d(theta_N):
 *   g_k = grad_theta CE(theta_k),  (H_k a, m_k) = net_hvp(theta_k, v = a_{k+1})
 *   dL/d(syn_lr) -= a_{k+1} . g_k
 *   dL/dx[idx_k] += A_k^T (-syn_lr m_k)          m_k = grad_x (a_{k+1} . g_k)
 *   a_k = a_{k+1} - syn_lr H_k a_{k+1}
 * which is what autograd computes through the official code's graph. Instead of keeping
 * every step's graph, beard keeps the N + 1 parameter vectors and recomputes each step's
 * forward and backward in the reverse sweep (checkpointed unrolling), so memory is
 * (N + 1) parameter vectors plus one workspace, not N steps of activations.
 */
#ifndef BEARD_DISTILL_MTT_H
#define BEARD_DISTILL_MTT_H

#include "../data/dsa.h"
#include "../models/net.h"

// one unrolled step's minibatch
typedef struct {
    int n;          // images
    const int *idx; // (n) indices into the synthetic set
    DsaDraw draw;   // its augmentation (draw.B == n, per-sample parameters); op DSA_OP_COUNT: none
} MttStep;

typedef struct {
    float *theta; // (n_steps + 1, n_params)
    float *a, *hv, *g, *x, *xa, *dx;
    int *y;
    int cap_steps, cap_n;
    size_t P;
} MttWork;
void mtt_work_free(MttWork *w);

// The loss and its gradients for one iteration (no update). The network's parameters
// are the student's scratch (left at theta_N); BatchNorm runs in training mode, as the
// official student_net.train(). g_img (n_syn, in size) is overwritten; *g_lr too.
int mtt_unroll(Net *net, const float *syn, const int *labels, int n_syn, float syn_lr, const float *start,
               const float *target, const MttStep *steps, int n_steps, const DsaConfig *cfg, double *loss,
               float *g_img, double *g_lr, MttWork *w, Err *e);

#endif
