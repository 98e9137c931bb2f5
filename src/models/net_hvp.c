/*
 * net_hvp.c: the second-order driver of net_hvp.h.
 *
 * A chunk of n samples (1 in the per-sample driver, the whole batch in the layer-wise one)
 * runs four passes over the graph's nodes (topological order; a residual sum reads two
 * nodes, and a node read by several gets the sum of their gradients and tangents):
 *   forward            out[l]            (and the state backward needs: stats, argmax)
 *   backward           dy[l] = d(loss)/d(out[l]) for every node, grad into the partial
 *   forward tangent    tout[l]           with t_theta = v, t_x = 0
 *   backward tangent   tdy[l], hv into its partial, tdx0 = grad_x0 (v . grad_theta L)
 * Every gradient buffer is zeroed before its pass and the kernels add into it.
 * Convolutions run by the layer's plan (src/nn/convplan.h: Winograd, the direct kernel or
 * im2col, as the first-order passes choose), their tangents by conv_plan_forward_tangent
 * and conv_plan_backward_tangent, with a second plan of the tangent's weights (made for
 * each call, since v changes); weight gradients by im2col + sgemm as always. BEARD_CONV=im2col runs all of it by im2col
 * + sgemm, which is the reference the fast path is tested against (tests/test_so.c).
 */
#include "net_hvp.h"

#include <omp.h>
#include <string.h>

#include "../core/parallel.h"
#include "../nn/join.h"
#include "../nn/tangent.h"

typedef struct {
    int n;
    float *x0, *tdx0;
    float **out, **dy, **tout, **tdy, **stats;
    int **argmax;
    float *pg, *ph; // parameter partials (n_params each), or NULL
    const ConvPlan *tplan; // (n_layers) plans of v's convolution weights, or NULL without v
    void *mem;
} HvpWs;

// input k of node l; -1 is the model input (after normalisation)
static int node_in(const Net *net, int l, int k) { return net->layers[l].in[k]; }

static size_t node_size(const Layer *L) { return (size_t)L->out_c * L->out_h * L->out_w; }

static size_t stats_size(const Layer *L, int n) {
    switch (L->kind) {
    case LAYER_GROUPNORM: return 2 * (size_t)n * L->groups;
    case LAYER_LAYERNORM: return 2 * (size_t)n;
    case LAYER_BATCHNORM: return 2 * (size_t)L->in_c;
    default: return 0;
    }
}

static void ws_free(HvpWs *w) {
    if (!w) return;
    xfree(w->mem);
    xfree(w->out);
    memset(w, 0, sizeof(*w));
}

static int ws_init(HvpWs *w, const Net *net, int n, int partials) {
    memset(w, 0, sizeof(*w));
    int NL = net->n_layers;
    size_t in = net_in_size(net), total = 0;
#define ROUND(x) (((x) + 15) & ~(size_t)15)
    total += 2 * ROUND((size_t)n * in);
    for (int l = 0; l < NL; l++) {
        const Layer *L = &net->layers[l];
        total += 4 * ROUND((size_t)n * node_size(L)) + ROUND(stats_size(L, n));
        if (L->kind == LAYER_MAXPOOL) total += ROUND((size_t)n * node_size(L));
    }
    if (partials) total += 2 * ROUND(net->n_params);
    w->out = xcalloc(sizeof(float *) * 6 * (size_t)NL + 1);
    w->mem = xmalloc(sizeof(float) * (total ? total : 1));
    if (!w->out || !w->mem) {
        ws_free(w);
        return -1;
    }
    w->dy = w->out + NL, w->tout = w->out + 2 * NL, w->tdy = w->out + 3 * NL, w->stats = w->out + 4 * NL;
    w->argmax = (int **)(w->out + 5 * NL);
    float *p = w->mem;
    w->n = n;
    w->x0 = p, p += ROUND((size_t)n * in);
    w->tdx0 = p, p += ROUND((size_t)n * in);
    for (int l = 0; l < NL; l++) {
        const Layer *L = &net->layers[l];
        size_t a = ROUND((size_t)n * node_size(L));
        w->out[l] = p, p += a;
        w->dy[l] = p, p += a;
        w->tout[l] = p, p += a;
        w->tdy[l] = p, p += a;
        w->stats[l] = p, p += ROUND(stats_size(L, n));
        if (L->kind == LAYER_MAXPOOL) w->argmax[l] = (int *)p, p += a;
    }
    if (partials) {
        w->pg = p, p += ROUND(net->n_params);
        w->ph = p, p += ROUND(net->n_params);
    }
#undef ROUND
    return 0;
}

// ----------------------------------------------------------------------------
// the four passes over one chunk

static const float *node_input(const Net *net, const HvpWs *w, int l, int k) {
    int i = node_in(net, l, k);
    return i < 0 ? w->x0 : w->out[i];
}
// the tangent of a node's input (NULL: the model input, which does not move)
static const float *node_tangent(const Net *net, const HvpWs *w, int l, int k) {
    int i = node_in(net, l, k);
    return i < 0 ? NULL : w->tout[i];
}

static void chunk_forward(Net *net, HvpWs *w, const float *x, int train) {
    int n = w->n;
    size_t in = net_in_size(net);
    if (net->normalize) net_normalize_input(net, w->x0, x, n);
    else memcpy(w->x0, x, sizeof(float) * n * in);
    const float *P = net->params;
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        const float *wt = L->w >= 0 ? P + L->w : NULL; // a norm without affine has none
        const float *cur = node_input(net, w, l, 0);
        float *out = w->out[l], *st = w->stats[l];
        const float *bias = L->b >= 0 ? P + L->b : NULL; // convolutions may have none
        int HW = L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV:
            conv_plan_forward(&net->conv[l], out, cur, P + L->w, bias, n);
            break;
        case LAYER_LINEAR: linear_forward(out, cur, P + L->w, bias, n, L->in_c, L->out_c); break;
        case LAYER_ACT: act_forward(out, cur, (size_t)n * node_size(L), L->act, L->slope); break;
        case LAYER_GROUPNORM:
            groupnorm_forward(out, st, st + (size_t)n * L->groups, cur, wt, bias, n, L->in_c, HW, L->groups,
                              L->eps);
            break;
        case LAYER_LAYERNORM:
            layernorm_forward(out, st, st + n, cur, wt, bias, n, (int)node_size(L), L->eps);
            break;
        case LAYER_BATCHNORM:
            // train: batch statistics, running statistics left alone (NULL)
            batchnorm_forward(out, st, st + L->in_c, train ? NULL : net->buffers + L->rm,
                              train ? NULL : net->buffers + L->rv, cur, P + L->w, bias, n, L->in_c, HW, L->eps,
                              L->momentum, train);
            break;
        case LAYER_AVGPOOL: avgpool_forward(out, cur, n, L->in_c, L->in_h, L->in_w, L->k, L->stride); break;
        case LAYER_MAXPOOL:
            maxpool_forward(out, w->argmax[l], cur, n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_SUM: add_forward(out, cur, node_input(net, w, l, 1), (size_t)n * node_size(L)); break;
        default: break; // refused by net_hvp
        }
    }
}

// dy[last] must hold d(loss)/d(logits); fills every other dy[l] and adds grad into pg
static void chunk_backward(Net *net, HvpWs *w, float *pg, int train) {
    int n = w->n, NL = net->n_layers;
    const float *P = net->params;
    for (int l = 0; l < NL - 1; l++) memset(w->dy[l], 0, sizeof(float) * n * node_size(&net->layers[l]));
    for (int l = NL - 1; l >= 0; l--) {
        Layer *L = &net->layers[l];
        const float *wt = L->w >= 0 ? P + L->w : NULL; // a norm without affine has none
        int i = node_in(net, l, 0);
        const float *lin = node_input(net, w, l, 0), *g = w->dy[l], *st = w->stats[l];
        float *din = i >= 0 ? w->dy[i] : NULL; // the input's gradient is not needed
        float *dw = pg && L->w >= 0 ? pg + L->w : NULL, *db = pg && L->b >= 0 ? pg + L->b : NULL;
        if (L->kind == LAYER_SUM) {
            int i1 = node_in(net, l, 1);
            add_backward(din, i1 >= 0 ? w->dy[i1] : NULL, g, (size_t)n * node_size(L));
            continue;
        }
        if (!din && !dw && !db) continue;
        int HW = L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV:
            conv_plan_backward(&net->conv[l], din, dw, db, g, lin, P + L->w, n);
            break;
        case LAYER_LINEAR: linear_backward(din, dw, db, g, lin, P + L->w, n, L->in_c, L->out_c); break;
        case LAYER_ACT:
            if (din) act_backward(din, g, lin, (size_t)n * node_size(L), L->act, L->slope);
            break;
        case LAYER_GROUPNORM:
            groupnorm_backward(din, dw, db, g, st, st + (size_t)n * L->groups, lin, wt, n, L->in_c, HW,
                               L->groups);
            break;
        case LAYER_LAYERNORM:
            layernorm_backward(din, dw, db, g, st, st + n, lin, wt, n, (int)node_size(L));
            break;
        case LAYER_BATCHNORM:
            batchnorm_backward(din, dw, db, g, st, st + L->in_c, lin, wt, n, L->in_c, HW, train);
            break;
        case LAYER_AVGPOOL:
            if (din) avgpool_backward(din, g, n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_MAXPOOL:
            if (din) maxpool_backward(din, g, w->argmax[l], n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_SUM: break; // above
        default: break; // refused by net_hvp
        }
    }
}

static void chunk_forward_tangent(Net *net, HvpWs *w, const float *v, int train) {
    int n = w->n;
    const float *P = net->params;
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        const float *wt = L->w >= 0 ? P + L->w : NULL; // a norm without affine has none
        const float *cur = node_input(net, w, l, 0), *tin = node_tangent(net, w, l, 0), *st = w->stats[l];
        const float *tw = L->w >= 0 ? v + L->w : NULL, *tb = L->b >= 0 ? v + L->b : NULL;
        float *tout = w->tout[l];
        int HW = L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV: // tdy[l], not yet in use, holds the sum's second term
            conv_plan_forward_tangent(&net->conv[l], &w->tplan[l], tout, w->tdy[l], cur, tin, P + L->w, tw, tb, n);
            break;
        case LAYER_LINEAR: linear_forward_tangent(tout, cur, tin, P + L->w, tw, tb, n, L->in_c, L->out_c); break;
        case LAYER_ACT: act_forward_tangent(tout, cur, tin, (size_t)n * node_size(L), L->act, L->slope); break;
        case LAYER_GROUPNORM:
            groupnorm_forward_tangent(tout, st, st + (size_t)n * L->groups, cur, tin, wt, tw, tb, n, L->in_c, HW,
                                      L->groups);
            break;
        case LAYER_LAYERNORM:
            layernorm_forward_tangent(tout, st, st + n, cur, tin, wt, tw, tb, n, (int)node_size(L));
            break;
        case LAYER_BATCHNORM:
            batchnorm_forward_tangent(tout, st, st + L->in_c, cur, tin, wt, tw, tb, n, L->in_c, HW, train);
            break;
        case LAYER_AVGPOOL: avgpool_forward_tangent(tout, tin, n, L->in_c, L->in_h, L->in_w, L->k, L->stride); break;
        case LAYER_MAXPOOL:
            maxpool_forward_tangent(tout, w->argmax[l], tin, n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_SUM: {
            const float *t1 = node_tangent(net, w, l, 1);
            size_t m = (size_t)n * node_size(L);
            if (tin && t1) add_forward(tout, tin, t1, m);
            else if (tin || t1) memcpy(tout, tin ? tin : t1, sizeof(float) * m);
            else memset(tout, 0, sizeof(float) * m);
            break;
        }
        default: break; // refused by net_hvp
        }
    }
}

// tdy[last] must hold the tangent of d(loss)/d(logits); adds H v into ph, writes tdx0
static void chunk_backward_tangent(Net *net, HvpWs *w, const float *v, float *ph, int train) {
    int n = w->n, NL = net->n_layers;
    const float *P = net->params;
    for (int l = 0; l < NL - 1; l++) memset(w->tdy[l], 0, sizeof(float) * n * node_size(&net->layers[l]));
    memset(w->tdx0, 0, sizeof(float) * n * net_in_size(net));
    for (int l = NL - 1; l >= 0; l--) {
        Layer *L = &net->layers[l];
        const float *wt = L->w >= 0 ? P + L->w : NULL; // a norm without affine has none
        int i = node_in(net, l, 0);
        const float *lin = node_input(net, w, l, 0), *tin = node_tangent(net, w, l, 0);
        const float *g = w->dy[l], *tg = w->tdy[l], *st = w->stats[l];
        const float *tw = L->w >= 0 ? v + L->w : NULL;
        float *tdin = i >= 0 ? w->tdy[i] : w->tdx0;
        float *hw = ph && L->w >= 0 ? ph + L->w : NULL, *hb = ph && L->b >= 0 ? ph + L->b : NULL;
        int HW = L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV:
            conv_plan_backward_tangent(&net->conv[l], &w->tplan[l], tdin, hw, hb, g, tg, lin, tin, P + L->w, tw, n);
            break;
        case LAYER_LINEAR:
            linear_backward_tangent(tdin, hw, hb, g, tg, lin, tin, P + L->w, tw, n, L->in_c, L->out_c);
            break;
        case LAYER_ACT: act_backward_tangent(tdin, g, tg, lin, tin, (size_t)n * node_size(L), L->act, L->slope); break;
        case LAYER_GROUPNORM:
            groupnorm_backward_tangent(tdin, hw, hb, g, tg, st, st + (size_t)n * L->groups, lin, tin, wt, tw, n,
                                       L->in_c, HW, L->groups);
            break;
        case LAYER_LAYERNORM:
            layernorm_backward_tangent(tdin, hw, hb, g, tg, st, st + n, lin, tin, wt, tw, n, (int)node_size(L));
            break;
        case LAYER_BATCHNORM:
            batchnorm_backward_tangent(tdin, hw, hb, g, tg, st, st + L->in_c, lin, tin, wt, tw, n, L->in_c, HW,
                                       train);
            break;
        case LAYER_AVGPOOL: avgpool_backward_tangent(tdin, tg, n, L->in_c, L->in_h, L->in_w, L->k, L->stride); break;
        case LAYER_MAXPOOL:
            maxpool_backward_tangent(tdin, tg, w->argmax[l], n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_SUM: {
            int i1 = node_in(net, l, 1);
            add_backward(tdin, i1 >= 0 ? w->tdy[i1] : w->tdx0, tg, (size_t)n * node_size(L));
            break;
        }
        default: break; // refused by net_hvp
        }
    }
}

// samples [b0, b0 + n) of a batch of B: all four passes; returns the chunk's summed loss
static double chunk_run(Net *net, HvpWs *w, const float *x, int b0, int B, const NetHvp *h, float *pg, float *ph) {
    int n = w->n, K = net->n_classes, NL = net->n_layers;
    size_t in = net_in_size(net);
    chunk_forward(net, w, x + (size_t)b0 * in, h->train);
    const float *logits = w->out[NL - 1];
    if (h->logits) memcpy(h->logits + (size_t)b0 * K, logits, sizeof(float) * n * K);
    // the batch mean: crossentropy_forward_backward averages over the chunk's n
    float *dz = w->dy[NL - 1];
    double loss = crossentropy_forward_backward(dz, logits, h->labels ? h->labels + b0 : NULL,
                                                h->targets ? h->targets + (size_t)b0 * K : NULL, n, K) *
                  n;
    float scale = (float)n / (float)B;
    for (size_t i = 0; i < (size_t)n * K; i++) dz[i] *= scale;
    if (pg || h->v) chunk_backward(net, w, pg, h->train);
    if (!h->v) return loss;
    chunk_forward_tangent(net, w, h->v, h->train);
    float *tdz = w->tdy[NL - 1];
    crossentropy_backward_tangent(tdz, logits, w->tout[NL - 1], h->targets ? h->targets + (size_t)b0 * K : NULL, n,
                                  K);
    for (size_t i = 0; i < (size_t)n * K; i++) tdz[i] *= scale;
    chunk_backward_tangent(net, w, h->v, ph, h->train);
    if (h->dx) {
        float *dst = h->dx + (size_t)b0 * in;
        if (net->normalize) net_input_grad_to_pixels(net, dst, w->tdx0, n);
        else memcpy(dst, w->tdx0, sizeof(float) * n * in);
    }
    return loss;
}

double net_mean_ce(void *ctx, int i, const float *logits, float *dlogits) {
    const NetMeanCE *m = ctx;
    double l = crossentropy_sample(dlogits, logits, m->labels[i], m->n_classes);
    for (int k = 0; k < m->n_classes; k++) dlogits[k] *= m->scale;
    return l;
}

static void tangent_plans_free(const Net *net, ConvPlan *tp) {
    for (int l = 0; tp && l < net->n_layers; l++) conv_plan_free(&tp[l]);
    xfree(tp);
}

// net->conv brought up to date with the parameters, and with a tangent v (else *out stays
// NULL) a plan per convolution made from v's weights, with the same algorithms
static int tangent_plans(Net *net, const float *v, ConvPlan **out, Err *e) {
    *out = NULL;
    if (net_conv_prepare(net, 1, e)) return -1;
    if (!v) return 0;
    ConvPlan *tp = xcalloc(sizeof(ConvPlan) * (size_t)net->n_layers);
    if (!tp) return err_set(e, "out of memory for the tangent's convolution plans");
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        if (L->kind != LAYER_CONV) continue;
        const ConvPlan *p = &net->conv[l];
        conv_plan_init(&tp[l], p->Cin, p->H, p->W, p->Cout, p->K, p->stride, p->pad, p->im2col_only, p->tile);
        if (conv_plan_update(&tp[l], v + L->w, 1)) {
            tangent_plans_free(net, tp);
            return err_set(e, "out of memory for the transformed tangent weights of node %s", L->name);
        }
    }
    *out = tp;
    return 0;
}

int net_hvp(Net *net, const float *x, int B, NetHvp *out, Err *e) {
    const NetHvp *h = out;
    if (B < 1) return err_set(e, "second-order pass over an empty batch");
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        int ok = L->kind == LAYER_CONV || L->kind == LAYER_LINEAR || L->kind == LAYER_ACT || L->kind == LAYER_GROUPNORM ||
                 L->kind == LAYER_LAYERNORM || L->kind == LAYER_BATCHNORM || L->kind == LAYER_AVGPOOL ||
                 L->kind == LAYER_MAXPOOL || L->kind == LAYER_SUM;
        if (L->kind == LAYER_CONV && L->groups > 1) ok = 0;
        if (L->kind == LAYER_MAXPOOL && L->pad) ok = 0;
        if (L->kind == LAYER_ACT && L->act == ACT_RELU6) ok = 0;
        if (!ok)
            return err_set(e, "the second-order pass takes the ConvNet family's layers and residual sums; %s's node %d (%s) is not one",
                           net->arch, l, L->name[0] ? L->name : "unnamed");
    }
    if (!h->labels && !h->targets) return err_set(e, "second-order pass without labels or targets");
    if (h->labels && !h->targets)
        for (int b = 0; b < B; b++)
            if (h->labels[b] < 0 || h->labels[b] >= net->n_classes)
                return err_set(e, "label %d of sample %d is outside [0, %d)", h->labels[b], b, net->n_classes);
    if ((h->hv || h->dx) && !h->v) return err_set(e, "H v and the mixed product need a tangent v");
    NetHvp hh = *out; // the pass's view: soft targets take precedence over labels
    if (hh.targets) hh.labels = NULL;
    h = &hh;
    size_t P = net->n_params;
    ConvPlan *tplan = NULL;
    if (tangent_plans(net, h->v, &tplan, e)) return -1;
    int bn_train = h->train && net_has_batchnorm(net);
    double loss = 0.0;
    if (bn_train) {
        HvpWs w;
        if (ws_init(&w, net, B, 0)) {
            tangent_plans_free(net, tplan);
            return err_set(e, "out of memory for a second-order pass over %d samples", B);
        }
        w.tplan = tplan;
        if (h->grad) memset(h->grad, 0, sizeof(float) * P);
        if (h->hv) memset(h->hv, 0, sizeof(float) * P);
        loss = chunk_run(net, &w, x, 0, B, h, h->grad, h->hv);
        ws_free(&w);
    } else {
        int nt = parallel_threads();
        if (nt > B) nt = B;
        if (nt < 1) nt = 1;
        int S = net_chunk_size(net); // samples a chunk, each computed as alone
        if (S > (B + nt - 1) / nt) S = (B + nt - 1) / nt;
        if (S < 1) S = 1;
        int want_p = h->grad || h->hv;
        HvpWs *ws = xcalloc(sizeof(HvpWs) * (size_t)nt);
        double *losses = xcalloc(sizeof(double) * (size_t)nt);
        int bad = !ws || !losses;
        for (int t = 0; t < nt && !bad; t++) {
            bad = ws_init(&ws[t], net, S, want_p);
            ws[t].tplan = tplan;
        }
        if (bad) {
            for (int t = 0; ws && t < nt; t++) ws_free(&ws[t]);
            xfree(ws), xfree(losses);
            tangent_plans_free(net, tplan);
            return err_set(e, "out of memory for second-order workspaces (%d threads)", nt);
        }
#pragma omp parallel num_threads(nt)
        {
            int t = omp_get_thread_num();
            HvpWs *w = &ws[t];
            if (w->pg) memset(w->pg, 0, sizeof(float) * P), memset(w->ph, 0, sizeof(float) * P);
            int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
            for (int b = lo; b < hi; b += S) {
                w->n = hi - b < S ? hi - b : S; // the last chunk may be shorter (buffers hold S)
                losses[t] += chunk_run(net, w, x, b, B, h, h->grad ? w->pg : NULL, h->hv ? w->ph : NULL);
            }
        }
        if (h->grad) memset(h->grad, 0, sizeof(float) * P);
        if (h->hv) memset(h->hv, 0, sizeof(float) * P);
        for (int t = 0; t < nt; t++) {
            loss += losses[t];
            for (size_t i = 0; h->grad && i < P; i++) h->grad[i] += ws[t].pg[i];
            for (size_t i = 0; h->hv && i < P; i++) h->hv[i] += ws[t].ph[i];
            ws_free(&ws[t]);
        }
        xfree(ws), xfree(losses);
    }
    tangent_plans_free(net, tplan);
    out->loss = loss / B;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B;
    return 0;
}
