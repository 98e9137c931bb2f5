/*
 * dc.c: DC's and DSA's gradient-matching steps (see dc.h for the papers and the loop).
 *
 * The real gradient is first order (net_forward_backward, the fast fused driver); the
 * synthetic gradient and its second derivative come from net_hvp, called twice on the
 * class's few synthetic images: once for gw_syn, then, with v = dD/d(gw_syn), for
 * grad_x (v . gw_syn). The official code gets the same from autograd.grad(...,
 * create_graph=True) and loss.backward().
 *
 * DC's distance in float32 with its 1e-6: sum over rows of 1 - <r, s> / (|r| |s| + 1e-6).
 * Its gradient w.r.t. s, with den = |r| |s| + 1e-6, is
 *   -r / den + <r, s> |r| s / (|s| den^2)
 * and, as in PyTorch (whose norm backward is 0 at a zero vector), only the first term when
 * s = 0. Sums run in double.
 */
#include "dc.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "../models/net_hvp.h"
#include "../nn/nn.h"

int dc_distance_parse(const char *s, DcDistance *d, Err *e) {
    if (!strcasecmp(s, "ours")) *d = DC_DIST_OURS;
    else if (!strcasecmp(s, "mse")) *d = DC_DIST_MSE;
    else if (!strcasecmp(s, "cos")) *d = DC_DIST_COS;
    else return err_set(e, "unknown distance '%s' (dis_metric: ours, mse, cos)", s);
    return 0;
}

const char *dc_distance_name(DcDistance d) { return d == DC_DIST_MSE ? "mse" : d == DC_DIST_COS ? "cos" : "ours"; }

// 1 - <r, s> / (|r| |s| + 1e-6) over n values, and its gradient w.r.t. s into v
static double cos_term(const float *s, const float *r, size_t n, float *v) {
    double dot = 0, rr = 0, ss = 0;
    for (size_t i = 0; i < n; i++) dot += (double)r[i] * s[i], rr += (double)r[i] * r[i], ss += (double)s[i] * s[i];
    double nr = sqrt(rr), ns = sqrt(ss), den = nr * ns + 1e-6;
    if (v) {
        double a = -1.0 / den, b = ns > 0 ? dot * nr / (ns * den * den) : 0.0;
        for (size_t i = 0; i < n; i++) v[i] = (float)(a * r[i] + b * s[i]);
    }
    return 1.0 - dot / den;
}

double dc_distance(const Net *net, const float *gsyn, const float *greal, DcDistance d, float *v) {
    size_t P = net->n_params;
    if (d == DC_DIST_MSE) {
        double s = 0;
        for (size_t i = 0; i < P; i++) {
            double df = (double)gsyn[i] - greal[i];
            s += df * df;
            if (v) v[i] = (float)(2.0 * df);
        }
        return s;
    }
    if (d == DC_DIST_COS) return cos_term(gsyn, greal, P, v);
    double dis = 0;
    if (v) memset(v, 0, sizeof(float) * P);
    for (int k = 0; k < net->n_entries; k++) {
        const ParamEntry *pe = &net->entries[k];
        if (pe->kind != PENTRY_PARAM || pe->ndim <= 1) continue; // 1-D: distance 0
        size_t rows = (size_t)pe->shape[0], cols = pe->numel / rows;
        for (size_t r = 0; r < rows; r++) {
            size_t o = (size_t)pe->offset + r * cols;
            dis += cos_term(gsyn + o, greal + o, cols, v ? v + o : NULL);
        }
    }
    return dis;
}

void dc_work_free(DcWork *w) {
    xfree(w->greal), xfree(w->gsyn), xfree(w->v), xfree(w->xa), xfree(w->dxa), xfree(w->labels), xfree(w->s);
    memset(w, 0, sizeof(*w));
}

static int work_reserve(DcWork *w, const Net *net, int n, Err *e) {
    size_t in = net_in_size(net), P = net->n_params ? net->n_params : 1;
    if (!w->greal) {
        w->greal = xmalloc(sizeof(float) * P);
        w->gsyn = xmalloc(sizeof(float) * P);
        w->v = xmalloc(sizeof(float) * P);
        if (!w->greal || !w->gsyn || !w->v) return err_set(e, "out of memory for gradient matching");
    }
    if ((size_t)n * in > w->cap_x || n > w->cap_n) {
        xfree(w->xa), xfree(w->dxa), xfree(w->labels), xfree(w->s);
        w->xa = xmalloc(sizeof(float) * n * in);
        w->dxa = xmalloc(sizeof(float) * n * in);
        w->labels = xmalloc(sizeof(int) * n);
        w->s = xmalloc(sizeof(DsaSample) * n);
        w->cap_x = w->xa && w->dxa ? (size_t)n * in : 0;
        w->cap_n = w->labels && w->s ? n : 0;
        if (!w->cap_x || !w->cap_n) return err_set(e, "out of memory for a batch of %d images", n);
    }
    return 0;
}

// the mean cross-entropy, for net_forward_backward
// the batch (n images) through the draw, every sample with the draw's sample s0 (siamese)
// or its own (per-sample), into w->xa; returns the images the network sees
static const float *augment(const Net *net, const float *x, int n, const DsaDraw *draw, int siamese,
                            const DsaConfig *cfg, DcWork *w, DsaDraw *used) {
    if (!draw) return x;
    *used = *draw;
    used->B = n;
    if (siamese) {
        for (int i = 0; i < n; i++) w->s[i] = draw->s[0];
        used->s = w->s;
    }
    dsa_forward(w->xa, x, used, cfg, net->in_c, net->in_h, net->in_w);
    return w->xa;
}

int dc_match_class(Net *net, const float *xreal, int n_real, const float *syn, int n_syn, int label,
                   const DsaDraw *draw, const DsaConfig *cfg, DcDistance dist, double *loss, float *gsyn, DcWork *w,
                   Err *e) {
    if (n_real < 1 || n_syn < 1) return err_set(e, "gradient matching needs real and synthetic images");
    if (label < 0 || label >= net->n_classes)
        return err_set(e, "class %d outside the model's %d", label, net->n_classes);
    int nmax = n_real > n_syn ? n_real : n_syn;
    if (work_reserve(w, net, nmax, e)) return -1;
    for (int i = 0; i < nmax; i++) w->labels[i] = label;
    int train = net->train;
    net->train = 0; // BatchNorm: the running statistics (the official code's module.eval())
    size_t in = net_in_size(net), P = net->n_params;
    DsaDraw dr;
    // gw_real
    const float *xr = augment(net, xreal, n_real, draw, 1, cfg, w, &dr);
    NetMeanCE m = {w->labels, net->n_classes, 1.0f / (float)n_real};
    NetBackward nb = {.loss = net_mean_ce, .ctx = &m, .nvec = 1, .param_grads = 1};
    int rc = net_alloc_grads(net, e);
    if (!rc) {
        net_zero_grads(net);
        rc = net_forward_backward(net, xr, n_real, &nb, e);
    }
    if (!rc) memcpy(w->greal, net->grads, sizeof(float) * P);
    // gw_syn, then the mixed product with v = dD/d(gw_syn)
    const float *xs = rc ? NULL : augment(net, syn, n_syn, draw, 1, cfg, w, &dr);
    NetHvp h = {.labels = w->labels, .grad = w->gsyn};
    if (!rc) rc = net_hvp(net, xs, n_syn, &h, e);
    if (!rc) {
        *loss = dc_distance(net, w->gsyn, w->greal, dist, w->v);
        NetHvp h2 = {.labels = w->labels, .v = w->v, .dx = w->dxa};
        rc = net_hvp(net, xs, n_syn, &h2, e);
    }
    net->train = train;
    if (rc) return -1;
    if (draw) {
        dsa_backward(gsyn, w->dxa, &dr, cfg, net->in_c, net->in_h, net->in_w);
    } else {
        for (size_t i = 0; i < (size_t)n_syn * in; i++) gsyn[i] += w->dxa[i];
    }
    return 0;
}

static double zero_loss(void *ctx, int i, const float *z, float *dz) {
    const Net *net = ctx;
    memset(dz, 0, sizeof(float) * net->n_classes);
    return 0.0;
}

int dc_bn_statistics(Net *net, const float *x, int B, Err *e) {
    if (!net_has_batchnorm(net)) return 0;
    int train = net->train;
    net->train = 1;
    NetBackward nb = {.loss = zero_loss, .ctx = net, .nvec = 1};
    int rc = net_forward_backward(net, x, B, &nb, e);
    net->train = train;
    return rc;
}

int dc_net_step(Net *net, const float *x, const int *y, int B, float lr, const DsaDraw *draw, const DsaConfig *cfg,
                DcWork *w, Err *e) {
    if (work_reserve(w, net, B, e) || net_alloc_grads(net, e)) return -1;
    DsaDraw dr;
    const float *xa = augment(net, x, B, draw, 0, cfg, w, &dr);
    NetMeanCE m = {y, net->n_classes, 1.0f / (float)B};
    NetBackward nb = {.loss = net_mean_ce, .ctx = &m, .nvec = 1, .param_grads = 1};
    int train = net->train;
    net->train = 1;
    net_zero_grads(net);
    int rc = net_forward_backward(net, xa, B, &nb, e);
    net->train = train;
    if (rc) return -1;
    for (size_t i = 0; i < net->n_params; i++) net->params[i] -= lr * net->grads[i];
    return 0;
}
