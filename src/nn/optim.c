/*
 * optim.c: SGD with momentum, Adam and AdamW, see optim.h for the update rules.
 */
#include "optim.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/common.h"

int optim_init(Optim *o, OptimKind kind, size_t n, float lr, float momentum, float weight_decay) {
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    o->n = n;
    o->lr = lr;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->m = xcalloc(sizeof(float) * (n ? n : 1));
    o->v = kind != OPTIM_SGD ? xcalloc(sizeof(float) * (n ? n : 1)) : NULL;
    if (!o->m || (kind != OPTIM_SGD && !o->v)) {
        optim_free(o);
        return -1;
    }
    return 0;
}

void optim_free(Optim *o) {
    xfree(o->m);
    xfree(o->v);
    memset(o, 0, sizeof(*o));
}

void optim_reset(Optim *o) {
    memset(o->m, 0, sizeof(float) * o->n);
    if (o->v) memset(o->v, 0, sizeof(float) * o->n);
    o->step = 0;
}

void optim_step(Optim *o, float *p, const float *grad) {
    long n = (long)o->n;
    float lr = o->lr, wd = o->weight_decay;
    o->step++;
    if (o->kind == OPTIM_SGD) {
        float mom = o->momentum;
        int first = o->step == 1;
        float *buf = o->m;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
        for (long i = 0; i < n; i++) {
            float g = grad[i] + wd * p[i];
            if (mom != 0.0f) {
                buf[i] = first ? g : mom * buf[i] + g;
                g = buf[i];
            }
            p[i] -= lr * g;
        }
        return;
    }
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
    float step_size = (float)(lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    float *m = o->m, *v = o->v;
    int decoupled = o->kind == OPTIM_ADAMW;
    float shrink = (float)(1.0 - (double)lr * wd);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (long i = 0; i < n; i++) {
        float g = grad[i];
        if (decoupled) p[i] *= shrink;
        else g += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        p[i] -= step_size * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
    }
}
