/*
 * dc.c: DC and DSA, the gradient-matching methods of `beard distill` (registered as
 * distill_dc and distill_dc_dsa), and their steps (see dc.h for the papers and the loop).
 *
 * One iteration, as VICO-UoE/DatasetCondensation main.py runs it: a freshly initialised
 * network in train mode; outer_loop times (get_loops: IPC 1: 1, 10: 10, 50: 50; inner
 * 1 / 50 / 10): BatchNorm networks first take 16 real images per class in training mode
 * (running statistics) and then match in eval mode; for each class the matching term of
 * batch_real (256) real images and the class's synthetic images (with DSA: one Siamese
 * draw for both batches, every sample the first one's parameters, as the shared seed
 * does); one SGD step on the images (lr_img 0.1, momentum 0.5, the optimizer kept across
 * iterations); then, except after the last outer step, inner_loop epochs of the network
 * on the synthetic set (batch_train 256, shuffled, SGD lr_net 0.01 without momentum,
 * BatchNorm in training mode; DSA with per-sample parameters, as DiffAugment without a
 * seed). The printed loss is the sum over outer steps and classes / (classes x outer).
 * DC starts from noise (N(0, 1) in the normalised space), DSA from random real images,
 * as their READMEs run them; lr_net and batch_train are the stage's --lr-net and
 * --batch-train (one value for the inner loop and for evaluation, as in main.py).
 *
 * Deliberate differences: the official code seeds get_network and each DSA draw from the
 * clock (int(time.time() * 1000) % 100000, so two classes within one millisecond share a
 * draw); beard draws from the run's generator keyed by (seed, iteration), equal in
 * distribution. Its evaluation (eval_it_pool) is the stage's --eval-every.
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
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../models/net_hvp.h"
#include "../nn/nn.h"
#include "distill.h"

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

int dc_bn_statistics(Net *net, const float *x, int B, Err *e) {
    if (!net_has_batchnorm(net)) return 0;
    float *out = xmalloc(sizeof(float) * (size_t)B * net->n_classes);
    if (!out) return err_set(e, "out of memory");
    int train = net->train;
    net->train = 1; // net_forward_node in training mode: batch statistics, running ones updated
    int rc = net_forward_node(net, x, B, net->n_layers - 1, out, e);
    net->train = train;
    xfree(out);
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

// ----------------------------------------------------------------------------
// the methods: DC and DSA (main.py --method DC / DSA)

static const DistillParamDef dc_params[] = {
    {"lr_img", DPARAM_NUM, 0.1, NULL, 0, "learning rate of the synthetic images (SGD, momentum 0.5)"},
    {"batch_real", DPARAM_INT, 256, NULL, 1, "real images per class in each matching step"},
    {"init", DPARAM_STR, 0, "noise", NAN, "initial synthetic images: noise (N(0, 1)) or real (random real images)"},
    {"dsa_strategy", DPARAM_STR, 0, "None", NAN, "DSA ops ('None': DC; DSA: color_crop_cutout_flip_scale_rotate)"},
    {"dis_metric", DPARAM_STR, 0, "ours", NAN, "gradient distance: ours (layer-wise 1 - cos), mse, cos"},
    {"outer_loop", DPARAM_INT, 0, NULL, 0, "matching steps per iteration (0: by IPC, get_loops)"},
    {"inner_loop", DPARAM_INT, 0, NULL, 0, "network epochs between matching steps (0: by IPC, get_loops)"},
    {NULL},
};

static const DistillParamDef dsa_params[] = {
    {"lr_img", DPARAM_NUM, 0.1, NULL, 0, "learning rate of the synthetic images (SGD, momentum 0.5)"},
    {"batch_real", DPARAM_INT, 256, NULL, 1, "real images per class in each matching step"},
    {"init", DPARAM_STR, 0, "real", NAN, "initial synthetic images: real (random real images) or noise"},
    {"dsa_strategy", DPARAM_STR, 0, "color_crop_cutout_flip_scale_rotate", NAN,
     "DSA ops, one chosen per class and matching step (siamese) and per inner-loop batch"},
    {"dis_metric", DPARAM_STR, 0, "ours", NAN, "gradient distance: ours (layer-wise 1 - cos), mse, cos"},
    {"outer_loop", DPARAM_INT, 0, NULL, 0, "matching steps per iteration (0: by IPC, get_loops)"},
    {"inner_loop", DPARAM_INT, 0, NULL, 0, "network epochs between matching steps (0: by IPC, get_loops)"},
    {NULL},
};

// get_loops(ipc): the official (outer_loop, inner_loop) per IPC
static int dc_loops(int ipc, int *outer, int *inner) {
    static const int t[][3] = {{1, 1, 1}, {10, 10, 50}, {20, 20, 25}, {30, 30, 20}, {40, 40, 15}, {50, 50, 10}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i][0] == ipc) {
            *outer = t[i][1], *inner = t[i][2];
            return 0;
        }
    return -1;
}

static void dc_setting(DistillParams *p, const DatasetInfo *info, int ipc) {
    int o, i;
    (void)info;
    if (dc_loops(ipc, &o, &i)) return;
    distill_params_setting(p, "outer_loop", o);
    distill_params_setting(p, "inner_loop", i);
}

typedef struct {
    Net net;
    int outer, inner, batch_real, dsa, bn;
    DcDistance dist;
    DsaStrategy st;
    DsaConfig dcfg;
    Optim opt;      // the images' optimizer_img, kept across iterations
    DcWork w;
    float *grad;    // (n_syn, D)
    float *xr;      // (batch_real, D)
    float *xb;      // (K * 16, D): BatchNorm's statistics batch
    float *xi;      // (batch_train, D) an inner-loop batch
    int *yi, *perm;
    DsaSample *samples;
} Dc;

static void dc_free(DistillRun *r) {
    Dc *s = r->state;
    if (!s) return;
    net_free(&s->net);
    optim_free(&s->opt);
    dc_work_free(&s->w);
    xfree(s->grad), xfree(s->xr), xfree(s->xb), xfree(s->xi);
    free(s->yi), free(s->perm), free(s->samples);
    free(s);
    r->state = NULL;
}

static int dc_init(DistillRun *r, Err *e) {
    Dc *s = calloc(1, sizeof(Dc));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    const DistillParams *p = r->p;
    const char *name = r->cfg->method->name;
    s->outer = (int)distill_param_int(p, "outer_loop"), s->inner = (int)distill_param_int(p, "inner_loop");
    if (s->outer < 1 || s->inner < 1)
        return err_set(e, "%s: loop hyper-parameters are not defined for %d ipc (the official get_loops knows 1, 10, "
                          "20, 30, 40, 50); set outer_loop and inner_loop",
                       name, r->ipc);
    if (dc_distance_parse(distill_param_str(p, "dis_metric"), &s->dist, e)) return -1;
    if (dsa_strategy_parse(&s->st, distill_param_str(p, "dsa_strategy"), e)) return -1;
    dsa_config_default(&s->dcfg);
    s->dsa = s->st.n_ops > 0;
    s->batch_real = (int)distill_param_int(p, "batch_real");
    const char *init = distill_param_str(p, "init");
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn;
    if (!strcmp(init, "noise")) {
        for (size_t i = 0; i < n * D; i++) r->syn[i] = (float)rng_normal(&r->rng);
    } else if (!strcmp(init, "real")) {
        for (int c = 0; c < r->K; c++)
            if (distill_real_class(r, c, r->ipc, distill_syn_class(r, c)) != r->ipc)
                return err_set(e, "class %d has fewer than %d images", c, r->ipc);
    } else {
        return err_set(e, "%s init must be noise or real, not '%s'", name, init);
    }
    if (distill_net_create(r, &s->net, e)) return -1;
    s->bn = net_has_batchnorm(&s->net);
    int bt = r->cfg->batch_train > 0 ? r->cfg->batch_train : 256;
    int maxb = s->batch_real > r->ipc ? s->batch_real : r->ipc;
    s->grad = xmalloc(sizeof(float) * n * D);
    s->xr = xmalloc(sizeof(float) * (size_t)s->batch_real * D);
    s->xb = s->bn ? xmalloc(sizeof(float) * (size_t)r->K * 16 * D) : NULL;
    s->xi = xmalloc(sizeof(float) * (size_t)bt * D);
    s->yi = malloc(sizeof(int) * (size_t)bt);
    s->perm = malloc(sizeof(int) * n);
    s->samples = malloc(sizeof(DsaSample) * (size_t)(maxb > bt ? maxb : bt));
    if (!s->grad || !s->xr || (s->bn && !s->xb) || !s->xi || !s->yi || !s->perm || !s->samples)
        return err_set(e, "out of memory for %s's buffers", name);
    if (optim_init(&s->opt, OPTIM_SGD, n * D, (float)distill_param(p, "lr_img"), 0.5f, 0.0f))
        return err_set(e, "out of memory for the image optimiser");
    return 0;
}

// one epoch of the inner loop: the synthetic set in a random order, batches of batch_train,
// DSA with per-sample parameters (DiffAugment without a seed)
static int dc_inner_epoch(DistillRun *r, Dc *s, Err *e) {
    int n = r->n_syn, bt = r->cfg->batch_train > 0 ? r->cfg->batch_train : 256;
    size_t D = distill_syn_size(r);
    float lr = (float)(r->cfg->lr_net > 0 ? r->cfg->lr_net : 0.01);
    distill_choose(r, DRAW_PICK, 1, n, n, s->perm);
    for (int b0 = 0; b0 < n; b0 += bt) {
        int B = n - b0 < bt ? n - b0 : bt;
        for (int i = 0; i < B; i++) {
            memcpy(s->xi + (size_t)i * D, r->syn + (size_t)s->perm[b0 + i] * D, sizeof(float) * D);
            s->yi[i] = r->syn_y[s->perm[b0 + i]];
        }
        DsaDraw d = {.B = B, .s = s->samples};
        if (s->dsa) dsa_draw(&d, &s->st, &s->dcfg, r->syn_h, r->syn_w, 0, &r->rng);
        if (dc_net_step(&s->net, s->xi, s->yi, B, lr, s->dsa ? &d : NULL, &s->dcfg, &s->w, e)) return -1;
    }
    return 0;
}

static int dc_step(DistillRun *r, Err *e) {
    Dc *s = r->state;
    int K = r->K, ipc = r->ipc;
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn * D;
    if (distill_net_reinit(r, &s->net, e)) return -1;
    double loss_avg = 0;
    for (int ol = 0; ol < s->outer; ol++) {
        if (s->bn) { // 16 real images per class in training mode, then BatchNorm frozen
            int nb = 0;
            for (int c = 0; c < K; c++) nb += distill_real_class(r, c, 16, s->xb + (size_t)nb * D);
            if (dc_bn_statistics(&s->net, s->xb, nb, e)) return -1;
        }
        memset(s->grad, 0, sizeof(float) * n);
        double loss = 0;
        for (int c = 0; c < K; c++) {
            int nr = distill_real_class(r, c, s->batch_real, s->xr);
            DsaDraw d = {.B = nr > ipc ? nr : ipc, .s = s->samples};
            if (s->dsa) distill_dsa(r, &s->st, &s->dcfg, &d);
            double l;
            if (dc_match_class(&s->net, s->xr, nr, distill_syn_class(r, c), ipc, c, s->dsa ? &d : NULL, &s->dcfg,
                               s->dist, &l, s->grad + (size_t)c * ipc * D, &s->w, e))
                return -1;
            loss += l;
        }
        distill_observe_grad(r, ol, s->grad, n);
        optim_step(&s->opt, r->syn, s->grad);
        loss_avg += loss;
        if (ol == s->outer - 1) break;
        for (int il = 0; il < s->inner; il++)
            if (dc_inner_epoch(r, s, e)) return -1;
    }
    r->loss = loss_avg / (K * s->outer);
    snprintf(r->note, sizeof(r->note), "%d x %d class matches", s->outer, K);
    return 0;
}

static int dc_save(DistillRun *r, TensorDict *ck, Err *e) {
    return distill_optim_save(&((Dc *)r->state)->opt, "dc.opt", ck, e);
}
static int dc_load(DistillRun *r, const TensorDict *ck, Err *e) {
    return distill_optim_load(&((Dc *)r->state)->opt, "dc.opt", ck, e);
}

const DistillMethodDef distill_dc = {
    .name = "DC",
    .aliases = "gradient_matching",
    .summary = "Dataset Condensation (Zhao et al., arXiv:2006.05929): per-class gradient matching, exact second order",
    .reference = "VICO-UoE/DatasetCondensation main.py --method DC",
    .params = dc_params,
    .setting = dc_setting,
    .setting_help = "get_loops: outer_loop/inner_loop 1/1 at IPC 1, 10/50 at 10, 20/25, 30/20, 40/15, 50/10 at 50",
    .outputs = DISTILL_OUT_RES,
    .init_from_ok = 1,
    .init = dc_init,
    .step = dc_step,
    .save = dc_save,
    .load = dc_load,
    .free = dc_free,
};

const DistillMethodDef distill_dc_dsa = {
    .name = "DSA",
    .aliases = "siamese_augmentation",
    .summary = "DC with Differentiable Siamese Augmentation (Zhao & Bilen, arXiv:2102.08259)",
    .reference = "VICO-UoE/DatasetCondensation main.py --method DSA",
    .params = dsa_params,
    .setting = dc_setting,
    .setting_help = "get_loops: outer_loop/inner_loop 1/1 at IPC 1, 10/50 at 10, 20/25, 30/20, 40/15, 50/10 at 50",
    .outputs = DISTILL_OUT_RES,
    .init_from_ok = 1,
    .init = dc_init,
    .step = dc_step,
    .save = dc_save,
    .load = dc_load,
    .free = dc_free,
};
