/*
 * mtt.c: MTT's unrolled iteration and its reverse sweep (see mtt.h).
 *
 * The forward sweep takes its gradients from net_forward_backward (the fused first-order
 * driver); the reverse sweep gets g_k, H_k a and the mixed product from one net_hvp call
 * per step. Both see the same minibatch: A_k is a stored draw, the images are gathered
 * again. Sums of the loss run in double; the official code's division of both norms by
 * the parameter count cancels and is kept for the float32 rounding it does not change.
 */
#include "mtt.h"

#include <string.h>

#include "../models/net_hvp.h"
#include "../nn/nn.h"

void mtt_work_free(MttWork *w) {
    xfree(w->theta), xfree(w->a), xfree(w->hv), xfree(w->g), xfree(w->x), xfree(w->xa), xfree(w->dx), xfree(w->y);
    memset(w, 0, sizeof(*w));
}

static int work_reserve(MttWork *w, const Net *net, int n_steps, int nmax, Err *e) {
    size_t P = net->n_params, in = net_in_size(net);
    if (w->P != P || n_steps > w->cap_steps) {
        xfree(w->theta), xfree(w->a), xfree(w->hv), xfree(w->g);
        size_t nt;
        if (!size_mul((size_t)n_steps + 1, P, &nt)) return err_set(e, "too many unrolled steps");
        w->theta = xmalloc(sizeof(float) * (nt ? nt : 1));
        w->a = xmalloc(sizeof(float) * P), w->hv = xmalloc(sizeof(float) * P), w->g = xmalloc(sizeof(float) * P);
        w->P = P, w->cap_steps = n_steps;
        if (!w->theta || !w->a || !w->hv || !w->g) {
            w->cap_steps = 0;
            return err_set(e, "out of memory for %d unrolled steps of %zu parameters", n_steps, P);
        }
    }
    if (nmax > w->cap_n) {
        xfree(w->x), xfree(w->xa), xfree(w->dx), xfree(w->y);
        w->x = xmalloc(sizeof(float) * nmax * in), w->xa = xmalloc(sizeof(float) * nmax * in);
        w->dx = xmalloc(sizeof(float) * nmax * in), w->y = xmalloc(sizeof(int) * nmax);
        w->cap_n = nmax;
        if (!w->x || !w->xa || !w->dx || !w->y) {
            w->cap_n = 0;
            return err_set(e, "out of memory for a minibatch of %d images", nmax);
        }
    }
    return 0;
}

// step k's minibatch as the network sees it: gathered, then augmented
static const float *step_batch(const Net *net, const float *syn, const int *labels, const MttStep *st,
                               const DsaConfig *cfg, MttWork *w) {
    size_t in = net_in_size(net);
    for (int i = 0; i < st->n; i++) {
        memcpy(w->x + (size_t)i * in, syn + (size_t)st->idx[i] * in, sizeof(float) * in);
        w->y[i] = labels[st->idx[i]];
    }
    if (st->draw.op >= DSA_OP_COUNT) return w->x;
    dsa_forward(w->xa, w->x, &st->draw, cfg, net->in_c, net->in_h, net->in_w);
    return w->xa;
}

int mtt_unroll(Net *net, const float *syn, const int *labels, int n_syn, float syn_lr, const float *start,
               const float *target, const MttStep *steps, int n_steps, const DsaConfig *cfg, double *loss,
               float *g_img, double *g_lr, MttWork *w, Err *e) {
    if (n_steps < 1) return err_set(e, "MTT needs at least one unrolled step");
    int nmax = 0;
    for (int k = 0; k < n_steps; k++) {
        if (steps[k].n < 1) return err_set(e, "unrolled step %d has an empty minibatch", k);
        if (steps[k].draw.op < DSA_OP_COUNT && steps[k].draw.B != steps[k].n)
            return err_set(e, "unrolled step %d: DSA draw for %d images, minibatch of %d", k, steps[k].draw.B,
                           steps[k].n);
        for (int i = 0; i < steps[k].n; i++)
            if (steps[k].idx[i] < 0 || steps[k].idx[i] >= n_syn)
                return err_set(e, "unrolled step %d: image %d outside the %d synthetic images", k, steps[k].idx[i],
                               n_syn);
        if (steps[k].n > nmax) nmax = steps[k].n;
    }
    if (work_reserve(w, net, n_steps, nmax, e) || net_alloc_grads(net, e)) return -1;
    size_t P = net->n_params, in = net_in_size(net);
    int train = net->train;
    net->train = 1;
    // forward sweep
    memcpy(w->theta, start, sizeof(float) * P);
    for (int k = 0; k < n_steps; k++) {
        float *th = w->theta + (size_t)k * P, *next = th + P;
        memcpy(net->params, th, sizeof(float) * P);
        const float *x = step_batch(net, syn, labels, &steps[k], cfg, w);
        NetMeanCE m = {w->y, net->n_classes, 1.0f / (float)steps[k].n};
        NetBackward nb = {.loss = net_mean_ce, .ctx = &m, .nvec = 1, .param_grads = 1};
        net_zero_grads(net);
        if (net_forward_backward(net, x, steps[k].n, &nb, e)) {
            net->train = train;
            return -1;
        }
        for (size_t i = 0; i < P; i++) next[i] = th[i] - syn_lr * net->grads[i];
    }
    // the loss and a_N
    const float *thN = w->theta + (size_t)n_steps * P;
    double num = 0, den = 0;
    for (size_t i = 0; i < P; i++) {
        double d1 = (double)thN[i] - target[i], d0 = (double)start[i] - target[i];
        num += d1 * d1, den += d0 * d0;
    }
    if (!(den > 0)) {
        net->train = train;
        return err_set(e, "the expert's start and target parameters are equal (no trajectory to match)");
    }
    *loss = (num / (double)P) / (den / (double)P);
    for (size_t i = 0; i < P; i++) w->a[i] = (float)(2.0 * ((double)thN[i] - target[i]) / den);
    // reverse sweep
    memset(g_img, 0, sizeof(float) * n_syn * in);
    double glr = 0;
    for (int k = n_steps - 1; k >= 0; k--) {
        const MttStep *st = &steps[k];
        memcpy(net->params, w->theta + (size_t)k * P, sizeof(float) * P);
        const float *x = step_batch(net, syn, labels, st, cfg, w);
        NetHvp h = {.labels = w->y, .v = w->a, .train = 1, .grad = w->g, .hv = w->hv, .dx = w->dx};
        if (net_hvp(net, x, st->n, &h, e)) {
            net->train = train;
            return -1;
        }
        double dot = 0;
        for (size_t i = 0; i < P; i++) dot += (double)w->a[i] * w->g[i];
        glr -= dot;
        for (size_t i = 0; i < (size_t)st->n * in; i++) w->dx[i] *= -syn_lr;
        // A_k^T into the gathered layout, then scattered back to the images
        float *gx = w->dx;
        if (st->draw.op < DSA_OP_COUNT) {
            memset(w->xa, 0, sizeof(float) * st->n * in);
            dsa_backward(w->xa, w->dx, &st->draw, cfg, net->in_c, net->in_h, net->in_w);
            gx = w->xa;
        }
        for (int i = 0; i < st->n; i++) {
            float *dst = g_img + (size_t)st->idx[i] * in;
            const float *src = gx + (size_t)i * in;
            for (size_t j = 0; j < in; j++) dst[j] += src[j];
        }
        for (size_t i = 0; i < P; i++) w->a[i] -= syn_lr * w->hv[i];
    }
    memcpy(net->params, thN, sizeof(float) * P);
    net->train = train;
    *g_lr = glr;
    return 0;
}
