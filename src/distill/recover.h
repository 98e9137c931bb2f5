/*
 * recover.h: the "recover" step that the decoupled distillation methods share (SRe2L, CDA,
 * G-VBSM, DELT, SC-DD): synthetic images optimised so that a frozen teacher (eval mode)
 * classifies them as their class while the statistics of its intermediate activations on the
 * synthetic batch match the statistics it saw in training.
 *
 * One iteration, as the official loops run it (see recover.c for the references):
 *   x_jit = roll(flip(crop(x[active])))            one augmentation draw for the batch
 *   loss  = CE(teacher(x_jit), y) + r_stat * sum_h rescale_h term_h [+ nuc * eigenvalue KL]
 *   grad  = d loss / d x (zero outside the active subset)
 *   x     = clip(Adam(betas 0.5, 0.9) step of x at the cosine-scheduled lr)
 * term_h is, per hook h on the input activations A of a layer:
 *   BN hook (SRe2L): ||running_var - var(A)||2 + ||running_mean - mean(A)||2 (biased variance
 *     over batch and space, per channel);
 *   BN hook, densified (G-VBSM): the same norms of the momentum average of the batch statistics
 *     (value) with the gradient of the current ones;
 *   Conv hook (G-VBSM): densified channel mean/var and 4x4-patch mean/var against the
 *     training set's statistics (recover_conv_stats), skipped when the draw drops it.
 * rescale_0 (the first hook in node order, the stem) is the first multiplier, the rest 1.
 */
#ifndef BEARD_RECOVER_H
#define BEARD_RECOVER_H

#include "../models/net.h"
#include "../nn/optim.h"

#define RECOVER_MAX_HOOKS 128

typedef enum { RECOVER_HOOK_BN, RECOVER_HOOK_CONV } RecoverHookKind;

typedef struct {
    RecoverHookKind kind;
    int layer;   // the BatchNorm or Conv2d layer
    int node;    // the node whose output is that layer's input; -1: the network input
    int C, H, W; // the input's shape
} RecoverHook;

// The hooks of a teacher: every BatchNorm layer, and with conv every Conv2d layer too, in
// node order. Refuses a teacher without BatchNorm layers (the BN-matching methods need their
// running statistics), naming the model.
int recover_hooks(const Net *net, int conv, RecoverHook *hooks, int *n, Err *e);

// training-set statistics of one Conv2d input (G-VBSM's ConvFeatureHook.pre_hook_fn)
typedef struct {
    float *mean, *var;   // (C)
    float *pmean, *pvar; // (P) 4x4 patches of the input resized to multiples of 4
    int P;
} ConvStats;

// densified statistics of one hook (G-VBSM): a momentum average started by the first batch
typedef struct {
    int init;
    float *var, *mean;   // (C)
    float *pvar, *pmean; // (P), conv hooks
} HookState;

typedef struct {
    float r_stat;          // r_bn (SRe2L), r_loss (G-VBSM)
    float first_mult;      // rescale of the first hook
    int densify;           // G-VBSM: densified statistics
    float momentum;        // G-VBSM's training_momentum (0.8)
    int fix_first_grad;    // G-VBSM: no doubled gradient in a hook's first iteration (recover.c)
    const ConvStats *conv; // per conv hook (in hook order among conv hooks), G-VBSM
    HookState *state;      // per hook, G-VBSM
    const unsigned char *drop; // per conv hook: skipped in this iteration
    float nuc, tau;        // the eigenvalue term's weight (0: none) and temperature
    int nuc_side;          // AdaptiveAvgPool2d((side, side)) before the Gram matrices (32)
} RecoverLoss;

// one augmentation draw for the batch, applied crop -> flip -> roll
typedef struct {
    int crop;       // 1: resized crop box (top, left, h, w) back to the full size (CDA, DELT)
    int box[4];
    int pad_crop;   // 1: RandomCrop(size, padding=pad) at (top, left) with zero fill (G-VBSM)
    int pad, top, left;
    int flip;
    int roll_dy, roll_dx;
} RecoverDraw;

typedef struct {
    double loss, ce, stat, nuc;
    float terms[RECOVER_MAX_HOOKS]; // each hook's term before rescaling
    int n_terms;
} RecoverLosses;

typedef struct RecoverWork RecoverWork;

// scratch for batches of up to B images through net; hooks as recover_hooks gives them
RecoverWork *recover_work_new(Net *net, const RecoverHook *hooks, int n_hooks, int B, Err *e);
void recover_work_free(RecoverWork *w);

// One iteration's loss and its gradient w.r.t. x (B images, model space): grad (B, D) is
// overwritten (zero for images outside active). active: batch positions of the images this
// iteration optimises (DELT's rounds), or NULL for all B. Labels y (B).
int recover_grad(RecoverWork *w, const float *x, const int *y, int B, const int *active, int n_active,
                 const RecoverDraw *d, const RecoverLoss *cfg, float *grad, RecoverLosses *out, Err *e);

// a forward of the teacher on x (B images, no augmentation) that only updates the densified
// statistics of cfg->state, as any forward of a hooked model does in the reference (G-VBSM's
// verifier, which is its last teacher)
int recover_observe(RecoverWork *w, const float *x, int B, const RecoverLoss *cfg, Err *e);

// the Adam step at lr, then the per-channel clip to [(0 - mean) / std, (1 - mean) / std]
void recover_update(Optim *adam, float *x, const float *grad, float lr, int B, int C, size_t plane, const float *mean,
                    const float *std);
// Adam(betas (0.5, 0.9), eps 1e-8) over n values, as the recover loops set it up
int recover_adam_init(Optim *o, size_t n, float lr);
// lr_cosine_policy without warm-up: 0.5 (1 + cos(pi it / total)) base
double recover_cosine_lr(double base, int it, int total);

// G-VBSM's training-set statistics of every conv hook's input: the teacher (eval mode) over
// n images x in batches of `batch`, each batch's statistics weighted by its size / n
int recover_conv_stats(Net *net, const RecoverHook *hooks, int n_hooks, const float *x, int n, int batch,
                       ConvStats *out, Err *e);
void recover_conv_stats_free(ConvStats *s, int n);
int recover_state_init(HookState *s, const RecoverHook *hooks, int n_hooks, Err *e);
void recover_state_free(HookState *s, int n_hooks);
// the number of 4x4 patches of a (H, W) input after the resize to multiples of 4
int recover_patches(int H, int W);

#endif
