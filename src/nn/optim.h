/*
 * optim.h: the optimisers beard trains with, with torch.optim's exact update rules.
 *
 * SGD (torch.optim.SGD, dampening 0, no Nesterov):
 *   g = grad + wd * p;  buf = first step ? g : momentum * buf + g;  p -= lr * buf
 * Adam (torch.optim.Adam, L2 weight decay added to the gradient, amsgrad off):
 *   g = grad + wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * AdamW (torch.optim.AdamW, decoupled weight decay): p *= 1 - lr * wd, then Adam's update
 *   with g = grad.
 */
#ifndef BEARD_OPTIM_H
#define BEARD_OPTIM_H

#include <stddef.h>

typedef enum { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW } OptimKind;

typedef struct {
    OptimKind kind;
    float lr, momentum, weight_decay; // SGD
    float beta1, beta2, eps;          // Adam
    size_t n;
    float *m, *v; // momentum buffer (SGD) / moments (Adam); owned
    long step;
} Optim;

// returns 0, or -1 when out of memory
int optim_init(Optim *o, OptimKind kind, size_t n, float lr, float momentum, float weight_decay);
void optim_free(Optim *o);
// forget the state (PyTorch code that re-creates its optimizer does this)
void optim_reset(Optim *o);
void optim_step(Optim *o, float *params, const float *grads);

#endif
