/*
 * net.c: building a layer sequence, its parameter arena and state_dict, and the two
 * drivers (per-sample fused and layer-wise) described in net.h.
 */
#include "net.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"

// ----------------------------------------------------------------------------
// construction

void net_begin(Net *net, const char *arch, int in_c, int in_h, int in_w) {
    memset(net, 0, sizeof(*net));
    snprintf(net->arch, sizeof(net->arch), "%s", arch);
    net->in_c = in_c;
    net->in_h = in_h;
    net->in_w = in_w;
}

static Layer *push(Net *net, LayerKind kind, const char *name, Err *e) {
    if (net->n_layers >= NET_MAX_LAYERS) {
        err_set(e, "model has more than %d layers", NET_MAX_LAYERS);
        return NULL;
    }
    Layer *L = &net->layers[net->n_layers];
    memset(L, 0, sizeof(*L));
    L->kind = kind;
    snprintf(L->name, sizeof(L->name), "%s", name ? name : "");
    if (net->n_layers == 0) {
        L->in_c = net->in_c, L->in_h = net->in_h, L->in_w = net->in_w;
    } else {
        Layer *P = &net->layers[net->n_layers - 1];
        L->in_c = P->out_c, L->in_h = P->out_h, L->in_w = P->out_w;
    }
    L->out_c = L->in_c, L->out_h = L->in_h, L->out_w = L->in_w;
    L->w = L->b = L->rm = L->rv = -1;
    net->n_layers++;
    return L;
}

static int add_entry(Net *net, const char *layer_name, const char *suffix, ParamEntryKind kind, long offset,
                     int ndim, const int64_t *shape, Err *e) {
    if (net->n_entries >= NET_MAX_ENTRIES) return err_set(e, "model has more than %d tensors", NET_MAX_ENTRIES);
    ParamEntry *pe = &net->entries[net->n_entries++];
    memset(pe, 0, sizeof(*pe));
    snprintf(pe->name, sizeof(pe->name), "%s.%s", layer_name, suffix);
    pe->kind = kind;
    pe->layer = net->n_layers - 1;
    pe->offset = offset;
    pe->ndim = ndim;
    pe->numel = 1;
    for (int i = 0; i < ndim; i++) {
        pe->shape[i] = shape[i];
        pe->numel *= (size_t)shape[i];
    }
    return 0;
}

static long take_params(Net *net, size_t n) {
    long off = (long)net->n_params;
    net->n_params += n;
    return off;
}

int net_add_conv(Net *net, const char *name, int out_c, int k, int stride, int pad, Err *e) {
    Layer *L = push(net, LAYER_CONV, name, e);
    if (!L) return -1;
    L->k = k, L->stride = stride, L->pad = pad;
    L->out_c = out_c;
    L->out_h = conv2d_out_size(L->in_h, k, stride, pad);
    L->out_w = conv2d_out_size(L->in_w, k, stride, pad);
    if (L->out_h < 1 || L->out_w < 1) return err_set(e, "%s: input %dx%d is too small for a %dx%d convolution", name, L->in_h, L->in_w, k, k);
    int64_t ws[4] = {out_c, L->in_c, k, k}, bs[1] = {out_c};
    L->w = take_params(net, (size_t)out_c * L->in_c * k * k);
    L->b = take_params(net, (size_t)out_c);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 4, ws, e)) return -1;
    return add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, bs, e);
}

int net_add_linear(Net *net, const char *name, int out_features, Err *e) {
    Layer *L = push(net, LAYER_LINEAR, name, e);
    if (!L) return -1;
    int in_f = L->in_c * L->in_h * L->in_w;
    L->in_c = in_f, L->in_h = 1, L->in_w = 1; // linear sees the flattened sample
    L->out_c = out_features, L->out_h = 1, L->out_w = 1;
    int64_t ws[2] = {out_features, in_f}, bs[1] = {out_features};
    L->w = take_params(net, (size_t)out_features * in_f);
    L->b = take_params(net, (size_t)out_features);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 2, ws, e)) return -1;
    return add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, bs, e);
}

int net_add_act(Net *net, ActKind act, float slope, Err *e) {
    Layer *L = push(net, LAYER_ACT, NULL, e);
    if (!L) return -1;
    L->act = act;
    L->slope = slope;
    return 0;
}

int net_add_groupnorm(Net *net, const char *name, int groups, Err *e) {
    Layer *L = push(net, LAYER_GROUPNORM, name, e);
    if (!L) return -1;
    if (groups < 1 || L->in_c % groups) return err_set(e, "%s: %d channels do not split into %d groups", name, L->in_c, groups);
    L->groups = groups;
    L->eps = 1e-5f;
    int64_t s[1] = {L->in_c};
    L->w = take_params(net, (size_t)L->in_c);
    L->b = take_params(net, (size_t)L->in_c);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 1, s, e)) return -1;
    return add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, s, e);
}

int net_add_layernorm(Net *net, const char *name, Err *e) {
    Layer *L = push(net, LAYER_LAYERNORM, name, e);
    if (!L) return -1;
    L->eps = 1e-5f;
    int64_t s[3] = {L->in_c, L->in_h, L->in_w};
    size_t n = (size_t)L->in_c * L->in_h * L->in_w;
    L->w = take_params(net, n);
    L->b = take_params(net, n);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 3, s, e)) return -1;
    return add_entry(net, name, "bias", PENTRY_PARAM, L->b, 3, s, e);
}

int net_add_batchnorm(Net *net, const char *name, Err *e) {
    Layer *L = push(net, LAYER_BATCHNORM, name, e);
    if (!L) return -1;
    L->eps = 1e-5f;
    L->momentum = 0.1f;
    int64_t s[1] = {L->in_c};
    L->w = take_params(net, (size_t)L->in_c);
    L->b = take_params(net, (size_t)L->in_c);
    L->rm = (long)net->n_buffers;
    L->rv = (long)net->n_buffers + L->in_c;
    net->n_buffers += 2 * (size_t)L->in_c;
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 1, s, e)) return -1;
    if (add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, s, e)) return -1;
    if (add_entry(net, name, "running_mean", PENTRY_BUFFER, L->rm, 1, s, e)) return -1;
    if (add_entry(net, name, "running_var", PENTRY_BUFFER, L->rv, 1, s, e)) return -1;
    return add_entry(net, name, "num_batches_tracked", PENTRY_COUNTER, 0, 0, s, e);
}

int net_add_pool(Net *net, LayerKind kind, int k, int stride, Err *e) {
    Layer *L = push(net, kind, NULL, e);
    if (!L) return -1;
    L->k = k, L->stride = stride;
    L->out_h = pool_out_size(L->in_h, k, stride);
    L->out_w = pool_out_size(L->in_w, k, stride);
    if (L->out_h < 1 || L->out_w < 1) return err_set(e, "input %dx%d is too small to pool %dx%d", L->in_h, L->in_w, k, k);
    return 0;
}

int net_finish(Net *net, Err *e) {
    if (net->n_layers == 0) return err_set(e, "model has no layers");
    Layer *last = &net->layers[net->n_layers - 1];
    net->n_classes = last->out_c * last->out_h * last->out_w;
    net->params = xcalloc(sizeof(float) * (net->n_params ? net->n_params : 1));
    net->buffers = xcalloc(sizeof(float) * (net->n_buffers ? net->n_buffers : 1));
    if (!net->params || !net->buffers) return err_set(e, "out of memory allocating %zu parameters", net->n_params);
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        if (L->kind == LAYER_BATCHNORM) init_fill(net->buffers + L->rv, (size_t)L->in_c, 1.0f);
    }
    net_init_params(net, 0);
    const char *conv = getenv("BEARD_CONV");
    net->conv_im2col = conv && !strcmp(conv, "im2col");
    return 0;
}

typedef struct {
    size_t act[NET_MAX_LAYERS]; // floats of layer l's output per sample
    size_t stats[NET_MAX_LAYERS];
    size_t argmax[NET_MAX_LAYERS];
    size_t max_act;
} Sizes;

static void net_sizes(const Net *net, Sizes *s) {
    memset(s, 0, sizeof(*s));
    s->max_act = net_in_size(net);
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        s->act[l] = (size_t)L->out_c * L->out_h * L->out_w;
        if (L->kind == LAYER_GROUPNORM) s->stats[l] = 2 * (size_t)L->groups;
        if (L->kind == LAYER_LAYERNORM) s->stats[l] = 2;
        if (L->kind == LAYER_BATCHNORM) s->stats[l] = 2 * (size_t)L->in_c; // per chunk, not per sample
        if (L->kind == LAYER_MAXPOOL) s->argmax[l] = s->act[l];
        size_t in = (size_t)L->in_c * L->in_h * L->in_w;
        if (in > s->max_act) s->max_act = in;
        if (s->act[l] > s->max_act) s->max_act = s->act[l];
    }
}

void net_free(Net *net) {
    xfree(net->params);
    xfree(net->grads);
    xfree(net->buffers);
    for (int i = 0; i < net->n_ws; i++) xfree(net->ws[i]);
    for (int l = 0; l < net->n_layers; l++) xfree(net->wino[l]), xfree(net->wino_src[l]);
    memset(net, 0, sizeof(*net));
}

int net_alloc_grads(Net *net, Err *e) {
    if (net->grads) return 0;
    net->grads = xcalloc(sizeof(float) * (net->n_params ? net->n_params : 1));
    if (!net->grads) return err_set(e, "out of memory allocating gradients");
    return 0;
}

void net_zero_grads(Net *net) {
    if (net->grads) memset(net->grads, 0, sizeof(float) * net->n_params);
}

void net_init_params(Net *net, uint64_t seed) {
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        Rng rng;
        rng_init(&rng, seed, 0x1000 + (uint64_t)l); // one stream per layer
        size_t in_size = (size_t)L->in_c * L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV: {
            size_t fan_in = (size_t)L->in_c * L->k * L->k;
            float bound = 1.0f / sqrtf((float)fan_in);
            init_uniform(net->params + L->w, (size_t)L->out_c * fan_in, bound, &rng);
            init_uniform(net->params + L->b, (size_t)L->out_c, bound, &rng);
            break;
        }
        case LAYER_LINEAR: {
            float bound = 1.0f / sqrtf((float)L->in_c);
            init_uniform(net->params + L->w, (size_t)L->out_c * L->in_c, bound, &rng);
            init_uniform(net->params + L->b, (size_t)L->out_c, bound, &rng);
            break;
        }
        case LAYER_GROUPNORM:
        case LAYER_BATCHNORM:
            init_fill(net->params + L->w, (size_t)L->in_c, 1.0f);
            init_fill(net->params + L->b, (size_t)L->in_c, 0.0f);
            break;
        case LAYER_LAYERNORM:
            init_fill(net->params + L->w, in_size, 1.0f);
            init_fill(net->params + L->b, in_size, 0.0f);
            break;
        default: break;
        }
    }
}

void net_set_normalize(Net *net, int on, const float *mean, const float *std) {
    net->normalize = on;
    for (int c = 0; c < net->in_c && c < 4; c++) {
        net->mean[c] = mean ? mean[c] : 0.0f;
        net->std[c] = std ? std[c] : 1.0f;
    }
}

int net_has_batchnorm(const Net *net) {
    for (int l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == LAYER_BATCHNORM) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// state_dict

int net_load_state_dict(Net *net, const TensorDict *sd, int strict, Err *e) {
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        const Tensor *t = tensordict_get(sd, pe->name);
        if (!t) {
            if (pe->kind == PENTRY_COUNTER) continue; // old checkpoints lack num_batches_tracked
            return err_set(e, "checkpoint has no '%s' (is it a %s?)", pe->name, net->arch);
        }
        int same = t->numel == pe->numel && (t->ndim == pe->ndim || (pe->ndim == 0 && t->numel == 1));
        for (int d = 0; same && d < pe->ndim; d++) same = t->shape[d] == pe->shape[d];
        if (!same) {
            char got[96];
            char want[96];
            Tensor tmp = {.ndim = pe->ndim};
            for (int d = 0; d < pe->ndim; d++) tmp.shape[d] = pe->shape[d];
            return err_set(e, "'%s' has shape %s in the checkpoint but %s in %s", pe->name,
                           tensor_shape_str(t, got, sizeof(got)), tensor_shape_str(&tmp, want, sizeof(want)), net->arch);
        }
        if (pe->kind == PENTRY_COUNTER) {
            int64_t *v = tensor_to_i64(t, e);
            if (!v) return -1;
            net->layers[pe->layer].num_batches_tracked = v[0];
            xfree(v);
            continue;
        }
        float *v = tensor_to_f32(t, e);
        if (!v) return -1;
        float *dst = (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset;
        memcpy(dst, v, sizeof(float) * pe->numel);
        xfree(v);
    }
    if (strict) {
        for (int i = 0; i < sd->n; i++) {
            int found = 0;
            for (int j = 0; j < net->n_entries && !found; j++) found = !strcmp(sd->items[i].name, net->entries[j].name);
            if (!found) return err_set(e, "checkpoint has '%s', which %s does not have (wrong --arch?)", sd->items[i].name, net->arch);
        }
    }
    return 0;
}

int net_state_dict(const Net *net, TensorDict *out, Err *e) {
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        Tensor t;
        if (pe->kind == PENTRY_COUNTER) {
            if (tensor_init(&t, DTYPE_I64, 0, NULL, e)) return -1;
            ((int64_t *)t.data)[0] = net->layers[pe->layer].num_batches_tracked;
        } else {
            if (tensor_init(&t, DTYPE_F32, pe->ndim, pe->shape, e)) return -1;
            const float *src = (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset;
            memcpy(t.data, src, sizeof(float) * pe->numel);
        }
        if (tensordict_add(out, pe->name, &t, e)) {
            tensor_free(&t);
            return -1;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// workspaces: one arena holding a chunk of n samples' activations and saved state

typedef struct {
    int n;
    float *x0;                  // (n, in size): normalised input
    float *act[NET_MAX_LAYERS]; // (n, act size)
    float *stats[NET_MAX_LAYERS];
    int *argmax[NET_MAX_LAYERS];
    float *g0, *g1;             // gradient ping-pong, (n, max act)
    float *dx0;                 // (n, in size)
    float *dlogits;             // (n, nvec_cap, n_classes)
    float *pgrads;              // per-thread parameter gradients (fused driver), or NULL
    int nvec_cap, has_pgrads;
} Workspace;

// bn_per_sample: BatchNorm's saved statistics get n sets instead of one (a tape's
// per-sample views each write their own, see net_tape_forward)
static Workspace *ws_alloc_ex(const Net *net, int n, int nvec, int pgrads, int bn_per_sample) {
    Sizes s;
    net_sizes(net, &s);
    size_t total = 0, in = net_in_size(net);
#define ROUND(x) (((x) + 15) & ~(size_t)15)
    total += ROUND(sizeof(Workspace) / sizeof(float) + 1);
    total += ROUND(n * in) * 2; // x0, dx0
    for (int l = 0; l < net->n_layers; l++) {
        total += ROUND(n * s.act[l]);
        total += ROUND(net->layers[l].kind == LAYER_BATCHNORM && !bn_per_sample ? s.stats[l] : n * s.stats[l]);
        total += ROUND(n * s.argmax[l]);
    }
    total += ROUND(n * s.max_act) * 2;
    total += ROUND((size_t)n * nvec * net->n_classes);
    if (pgrads) total += ROUND(net->n_params);
    float *mem = xcalloc(total * sizeof(float));
    if (!mem) return NULL;
    Workspace *w = (Workspace *)mem;
    float *p = mem + ROUND(sizeof(Workspace) / sizeof(float) + 1);
    w->n = n;
    w->nvec_cap = nvec;
    w->x0 = p, p += ROUND(n * in);
    w->dx0 = p, p += ROUND(n * in);
    for (int l = 0; l < net->n_layers; l++) {
        w->act[l] = p, p += ROUND(n * s.act[l]);
        w->stats[l] = p, p += ROUND(net->layers[l].kind == LAYER_BATCHNORM && !bn_per_sample ? s.stats[l] : n * s.stats[l]);
        w->argmax[l] = (int *)p, p += ROUND(n * s.argmax[l]);
    }
    w->g0 = p, p += ROUND(n * s.max_act);
    w->g1 = p, p += ROUND(n * s.max_act);
    w->dlogits = p, p += ROUND((size_t)n * nvec * net->n_classes);
    w->has_pgrads = pgrads;
    w->pgrads = pgrads ? p : NULL;
#undef ROUND
    return w;
}

static Workspace *ws_alloc(const Net *net, int n, int nvec, int pgrads) { return ws_alloc_ex(net, n, nvec, pgrads, 0); }

// the cached per-thread workspace for one sample, grown when more is asked of it
static Workspace *ws_thread(Net *net, int t, int nvec, int pgrads) {
    Workspace *w = net->ws[t];
    if (w && w->nvec_cap >= nvec && (w->has_pgrads || !pgrads)) return w;
    xfree(w);
    int cap_nvec = nvec > 1 ? nvec : 1;
    net->ws[t] = w = ws_alloc(net, 1, cap_nvec, pgrads);
    if (t >= net->n_ws) net->n_ws = t + 1;
    return w;
}

// ----------------------------------------------------------------------------
// Winograd weights, brought up to date with the parameters before every pass

static int wino_update(Net *net, Err *e) {
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        if (L->kind != LAYER_CONV || net->conv_im2col || !winograd_applies(L->in_c, L->k, L->stride, L->pad)) {
            xfree(net->wino[l]), xfree(net->wino_src[l]);
            net->wino[l] = net->wino_src[l] = NULL;
            continue;
        }
        size_t nw = (size_t)L->out_c * L->in_c * 9;
        const float *w = net->params + L->w;
        if (!net->wino[l]) {
            net->wino[l] = xmalloc(sizeof(float) * winograd_weights_size(L->out_c, L->in_c));
            net->wino_src[l] = xmalloc(sizeof(float) * nw);
            if (!net->wino[l] || !net->wino_src[l]) {
                xfree(net->wino[l]), xfree(net->wino_src[l]);
                net->wino[l] = net->wino_src[l] = NULL;
                return err_set(e, "out of memory for the Winograd weights of layer %s", L->name);
            }
        } else if (!memcmp(net->wino_src[l], w, sizeof(float) * nw)) {
            continue;
        }
        memcpy(net->wino_src[l], w, sizeof(float) * nw);
        winograd_weights(net->wino[l], w, L->out_c, L->in_c);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// one chunk of n samples through every layer

// layers 0..last; returns layer last's output
static const float *chunk_forward_to(Net *net, Workspace *w, const float *x, int n, int bn_train, int last) {
    size_t in = net_in_size(net);
    const float *cur = x;
    if (net->normalize) {
        size_t plane = (size_t)net->in_h * net->in_w;
        for (int b = 0; b < n; b++)
            for (int c = 0; c < net->in_c; c++) {
                const float *src = x + b * in + c * plane;
                float *dst = w->x0 + b * in + c * plane;
                float m = net->mean[c], sd = net->std[c];
                for (size_t i = 0; i < plane; i++) dst[i] = (src[i] - m) / sd;
            }
        cur = w->x0;
    }
    const float *P = net->params;
    for (int l = 0; l <= last; l++) {
        Layer *L = &net->layers[l];
        float *out = w->act[l];
        int HW = L->in_h * L->in_w;
        size_t out_size = (size_t)L->out_c * L->out_h * L->out_w;
        switch (L->kind) {
        case LAYER_CONV:
            if (net->wino[l])
                conv2d_forward_winograd(out, cur, net->wino[l], P + L->b, n, L->in_c, L->in_h, L->in_w, L->out_c);
            else
                conv2d_forward(out, cur, P + L->w, P + L->b, n, L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->stride,
                               L->pad);
            break;
        case LAYER_LINEAR: linear_forward(out, cur, P + L->w, P + L->b, n, L->in_c, L->out_c); break;
        case LAYER_ACT: act_forward(out, cur, (size_t)n * out_size, L->act, L->slope); break;
        case LAYER_GROUPNORM:
            groupnorm_forward(out, w->stats[l], w->stats[l] + (size_t)n * L->groups, cur, P + L->w, P + L->b, n,
                              L->in_c, HW, L->groups, L->eps);
            break;
        case LAYER_LAYERNORM:
            layernorm_forward(out, w->stats[l], w->stats[l] + n, cur, P + L->w, P + L->b, n, (int)out_size, L->eps);
            break;
        case LAYER_BATCHNORM:
            batchnorm_forward(out, w->stats[l], w->stats[l] + L->in_c, net->buffers + L->rm, net->buffers + L->rv, cur,
                              P + L->w, P + L->b, n, L->in_c, HW, L->eps, L->momentum, bn_train);
            if (bn_train) L->num_batches_tracked++;
            break;
        case LAYER_AVGPOOL: avgpool_forward(out, cur, n, L->in_c, L->in_h, L->in_w, L->k, L->stride); break;
        case LAYER_MAXPOOL:
            maxpool_forward(out, w->argmax[l], cur, n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        }
        cur = out;
    }
    return cur;
}

static const float *chunk_forward(Net *net, Workspace *w, const float *x, int n, int bn_train) {
    return chunk_forward_to(net, w, x, n, bn_train, net->n_layers - 1);
}

// backward from gradients seeded at layer outputs: seeds[l] (n, layer l's output size) or
// NULL, top the highest seeded layer; writes the input gradient (pixel space when
// normalising) to dx (n, in size) if dx is not NULL
static void chunk_backward_seeded(Net *net, Workspace *w, const float *x, const float *const *seeds, int top, int n,
                                  float *dx, float *pgrads, int bn_train) {
    size_t in = net_in_size(net);
    const float *x0 = net->normalize ? w->x0 : x;
    const float *P = net->params;
    const float *g = seeds[top];
    float *bufs[2] = {w->g0, w->g1};
    int which = 0;
    for (int l = top; l >= 0; l--) {
        Layer *L = &net->layers[l];
        const float *lin = l > 0 ? w->act[l - 1] : x0;
        size_t in_size = (size_t)L->in_c * L->in_h * L->in_w;
        int need_din = l > 0 || dx != NULL;
        float *din = NULL;
        if (need_din) {
            din = l > 0 ? bufs[which] : w->dx0;
            which ^= 1;
            memset(din, 0, sizeof(float) * n * in_size);
        }
        float *dw = pgrads && L->w >= 0 ? pgrads + L->w : NULL;
        float *db = pgrads && L->b >= 0 ? pgrads + L->b : NULL;
        int HW = L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV:
            conv2d_backward(din, dw, db, g, lin, P + L->w, n, L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->stride, L->pad);
            break;
        case LAYER_LINEAR: linear_backward(din, dw, db, g, lin, P + L->w, n, L->in_c, L->out_c); break;
        case LAYER_ACT:
            if (din) act_backward(din, g, lin, (size_t)n * in_size, L->act, L->slope);
            break;
        case LAYER_GROUPNORM:
            groupnorm_backward(din, dw, db, g, w->stats[l], w->stats[l] + (size_t)n * L->groups, lin, P + L->w, n,
                               L->in_c, HW, L->groups);
            break;
        case LAYER_LAYERNORM:
            layernorm_backward(din, dw, db, g, w->stats[l], w->stats[l] + n, lin, P + L->w, n, (int)in_size);
            break;
        case LAYER_BATCHNORM:
            batchnorm_backward(din, dw, db, g, w->stats[l], w->stats[l] + L->in_c, lin, P + L->w, n, L->in_c, HW, bn_train);
            break;
        case LAYER_AVGPOOL:
            if (din) avgpool_backward(din, g, n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        case LAYER_MAXPOOL:
            if (din) maxpool_backward(din, g, w->argmax[l], n, L->in_c, L->in_h, L->in_w, L->k, L->stride);
            break;
        }
        if (din && l > 0 && seeds[l - 1]) {
            size_t m = (size_t)n * in_size;
            const float *sd = seeds[l - 1];
            for (size_t i = 0; i < m; i++) din[i] += sd[i];
        }
        g = din;
        if (!g) break;
    }
    if (!dx) return;
    if (net->normalize) {
        size_t plane = (size_t)net->in_h * net->in_w;
        for (int b = 0; b < n; b++)
            for (int c = 0; c < net->in_c; c++) {
                const float *src = w->dx0 + b * in + c * plane;
                float *dst = dx + b * in + c * plane;
                float sd = net->std[c];
                for (size_t i = 0; i < plane; i++) dst[i] = src[i] / sd;
            }
    } else {
        memcpy(dx, w->dx0, sizeof(float) * n * in);
    }
}

// backward of one gradient vector per sample at the logits (dlogits: (n, n_classes))
static void chunk_backward(Net *net, Workspace *w, const float *x, const float *dlogits, int n, float *dx,
                           float *pgrads, int bn_train) {
    const float *seeds[NET_MAX_LAYERS] = {0};
    seeds[net->n_layers - 1] = dlogits;
    chunk_backward_seeded(net, w, x, seeds, net->n_layers - 1, n, dx, pgrads, bn_train);
}

// ----------------------------------------------------------------------------
// drivers

static int thread_count(int B) {
    int nt = parallel_threads();
    if (nt > 256) nt = 256; // Net.ws capacity
    return nt < B ? nt : (B > 0 ? B : 1);
}

int net_forward(Net *net, const float *x, int B, float *logits, Err *e) {
    return net_forward_node(net, x, B, net->n_layers - 1, logits, e);
}

int net_forward_node(Net *net, const float *x, int B, int node, float *out_node, Err *e) {
    if (node < 0 || node >= net->n_layers) return err_set(e, "no node %d in %s", node, net->arch);
    if (wino_update(net, e)) return -1;
    size_t in = net_in_size(net), K = net_node_size(net, node);
    int nt = thread_count(B);
    for (int t = 0; t < nt; t++)
        if (!ws_thread(net, t, 1, 0)) return err_set(e, "out of memory for thread workspaces");
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        Workspace *w = net->ws[t];
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b++) {
            const float *o = chunk_forward_to(net, w, x + b * in, 1, 0, node);
            memcpy(out_node + (size_t)b * K, o, sizeof(float) * K);
        }
    }
    net->n_forward += (uint64_t)B;
    return 0;
}

static int forward_backward_layerwise(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    size_t in = net_in_size(net);
    int K = net->n_classes, nvec = nb->nvec;
    Workspace *w = ws_alloc(net, B, nvec, 0);
    if (!w) return err_set(e, "out of memory for a batch of %d (layer-wise driver)", B);
    int bn_train = net->train;
    const float *logits = chunk_forward(net, w, x, B, bn_train);
    double loss = 0.0;
    for (int b = 0; b < B; b++) loss += nb->loss(nb->ctx, b, logits + (size_t)b * K, w->dlogits + (size_t)b * nvec * K);
    if (nb->logits) memcpy(nb->logits, logits, sizeof(float) * B * K);
    float *g = NULL, *dxv = NULL;
    if (nvec > 1) {
        g = xmalloc(sizeof(float) * B * K);
        dxv = nb->dx ? xmalloc(sizeof(float) * B * in) : NULL;
        if (!g || (nb->dx && !dxv)) {
            xfree(g), xfree(dxv), xfree(w);
            return err_set(e, "out of memory for a Jacobian of %d outputs", nvec);
        }
    }
    for (int v = 0; v < nvec; v++) {
        const float *gv = w->dlogits;
        float *dx = nb->dx;
        if (nvec > 1) {
            for (int b = 0; b < B; b++) memcpy(g + (size_t)b * K, w->dlogits + ((size_t)b * nvec + v) * K, sizeof(float) * K);
            gv = g;
            dx = dxv;
        }
        chunk_backward(net, w, x, gv, B, dx, nb->param_grads ? net->grads : NULL, bn_train);
        if (nvec > 1 && nb->dx)
            for (int b = 0; b < B; b++) memcpy(nb->dx + ((size_t)b * nvec + v) * in, dxv + (size_t)b * in, sizeof(float) * in);
    }
    xfree(g), xfree(dxv), xfree(w);
    nb->loss_sum = loss;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B * nvec;
    return 0;
}

int net_forward_backward(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    if (nb->nvec < 1) nb->nvec = 1;
    if (nb->param_grads && nb->nvec != 1) return err_set(e, "parameter gradients need exactly one vector per sample");
    if (nb->param_grads && net_alloc_grads(net, e)) return -1;
    if (wino_update(net, e)) return -1;
    if (net->train && net_has_batchnorm(net)) return forward_backward_layerwise(net, x, B, nb, e);

    size_t in = net_in_size(net);
    int K = net->n_classes, nvec = nb->nvec, nt = thread_count(B);
    for (int t = 0; t < nt; t++)
        if (!ws_thread(net, t, nvec, nb->param_grads)) return err_set(e, "out of memory for thread workspaces");
    double losses[256] = {0};
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        Workspace *w = net->ws[t];
        if (nb->param_grads) memset(w->pgrads, 0, sizeof(float) * net->n_params);
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b++) {
            const float *xb = x + b * in;
            const float *out = chunk_forward(net, w, xb, 1, 0);
            if (nb->logits) memcpy(nb->logits + (size_t)b * K, out, sizeof(float) * K);
            losses[t] += nb->loss(nb->ctx, b, out, w->dlogits);
            for (int v = 0; v < nvec; v++)
                chunk_backward(net, w, xb, w->dlogits + (size_t)v * K, 1,
                               nb->dx ? nb->dx + ((size_t)b * nvec + v) * in : NULL, nb->param_grads ? w->pgrads : NULL, 0);
        }
    }
    double loss = 0.0;
    for (int t = 0; t < nt; t++) {
        loss += losses[t];
        if (nb->param_grads) {
            const float *pg = ((Workspace *)net->ws[t])->pgrads;
            for (size_t i = 0; i < net->n_params; i++) net->grads[i] += pg[i];
        }
    }
    nb->loss_sum = loss;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B * nvec;
    return 0;
}

// ----------------------------------------------------------------------------
// the tape: every node's output of a batch, kept for a backward pass seeded anywhere

struct NetTape {
    const Net *net;
    int cap, B, train, fused;
    Workspace *w;                 // a batch workspace of cap samples (per-sample BN statistics)
    float *x;                     // (cap, in size): the input, copied
    float *seed[NET_MAX_LAYERS];  // (cap, node size), allocated on demand
    int seeded[NET_MAX_LAYERS];   // zeroed since the last forward
    float *pgrads;                // (nt, n_params): per-thread parameter gradients
    int pgrads_nt;
};

int net_node_find(const Net *net, const char *name) {
    if (!name || !*name) return -1;
    for (int l = 0; l < net->n_layers; l++)
        if (!strcmp(net->layers[l].name, name)) return l;
    return -1;
}

int net_embed_node(const Net *net) {
    int last = net->n_layers - 1;
    return last >= 1 && net->layers[last].kind == LAYER_LINEAR ? last - 1 : -1;
}

size_t net_node_size(const Net *net, int node) {
    if (node < 0 || node >= net->n_layers) return 0;
    const Layer *L = &net->layers[node];
    return (size_t)L->out_c * L->out_h * L->out_w;
}

const float *net_tape_out(const NetTape *t, int node) {
    if (!t || node < 0 || node >= t->net->n_layers) return NULL;
    return t->w->act[node];
}

float *net_tape_grad(NetTape *t, int node) {
    if (!t || node < 0 || node >= t->net->n_layers) return NULL;
    size_t m = (size_t)t->cap * net_node_size(t->net, node);
    if (!t->seed[node] && !(t->seed[node] = xmalloc(sizeof(float) * (m ? m : 1)))) return NULL;
    if (!t->seeded[node]) memset(t->seed[node], 0, sizeof(float) * (size_t)t->B * net_node_size(t->net, node));
    t->seeded[node] = 1;
    return t->seed[node];
}

void net_tape_free(NetTape *t) {
    if (!t) return;
    xfree(t->w);
    xfree(t->x);
    for (int l = 0; l < NET_MAX_LAYERS; l++) xfree(t->seed[l]);
    xfree(t->pgrads);
    free(t);
}

// sample b's slice of a batch workspace laid out for per-sample use: what chunk_forward
// and chunk_backward see for a chunk of one. Statistics are kept per sample (mean then
// rstd of sample b together), which is how the views write them; the gradient scratch
// is the thread's own.
static void tape_view(const Net *net, const Workspace *W, const Sizes *s, int b, int t, Workspace *v) {
    size_t in = net_in_size(net);
    memset(v, 0, sizeof(*v));
    v->n = 1;
    v->x0 = W->x0 + (size_t)b * in;
    v->dx0 = W->dx0 + (size_t)b * in;
    for (int l = 0; l < net->n_layers; l++) {
        v->act[l] = W->act[l] + (size_t)b * s->act[l];
        v->stats[l] = W->stats[l] + (size_t)b * s->stats[l];
        v->argmax[l] = W->argmax[l] + (size_t)b * s->argmax[l];
    }
    v->g0 = W->g0 + (size_t)t * s->max_act;
    v->g1 = W->g1 + (size_t)t * s->max_act;
}

int net_tape_forward(Net *net, NetTape **tp, const float *x, int B, int train, Err *e) {
    if (B < 1) return err_set(e, "empty batch");
    NetTape *t = *tp;
    if (t && (t->net != net || t->cap < B)) {
        net_tape_free(t);
        *tp = t = NULL;
    }
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t) return err_set(e, "out of memory for a tape");
        t->net = net;
        t->cap = B;
        // the gradient ping-pong needs a sample's worth per thread, or the whole batch
        t->w = ws_alloc_ex(net, B, 1, 0, 1);
        t->x = xmalloc(sizeof(float) * net_in_size(net) * (size_t)B);
        if (!t->w || !t->x) {
            net_tape_free(t);
            return err_set(e, "out of memory for the tape of a batch of %d", B);
        }
        *tp = t;
    }
    if (wino_update(net, e)) return -1;
    size_t in = net_in_size(net);
    memcpy(t->x, x, sizeof(float) * in * (size_t)B);
    memset(t->seeded, 0, sizeof(t->seeded));
    t->B = B;
    t->train = train;
    // BatchNorm in training mode couples the batch: run layer by layer over all of it;
    // otherwise every sample runs through all layers on its own (as the fused driver)
    t->fused = !(train && net_has_batchnorm(net));
    if (!t->fused) {
        chunk_forward(net, t->w, t->x, B, 1);
    } else {
        Sizes s;
        net_sizes(net, &s);
        int nt = thread_count(B);
#pragma omp parallel num_threads(nt)
        {
            int th = omp_get_thread_num();
            int lo = (int)((long)B * th / nt), hi = (int)((long)B * (th + 1) / nt);
            Workspace v;
            for (int b = lo; b < hi; b++) {
                tape_view(net, t->w, &s, b, th, &v);
                chunk_forward(net, &v, t->x + (size_t)b * in, 1, 0);
            }
        }
    }
    net->n_forward += (uint64_t)B;
    return 0;
}

int net_tape_backward(Net *net, NetTape *t, float *dx, int param_grads, Err *e) {
    if (!t || t->net != net) return err_set(e, "the tape does not belong to this model");
    int top = -1;
    for (int l = 0; l < net->n_layers; l++)
        if (t->seeded[l]) top = l;
    int B = t->B;
    size_t in = net_in_size(net);
    if (top < 0) { // nothing seeded: every gradient is zero
        if (dx) memset(dx, 0, sizeof(float) * in * (size_t)B);
        return 0;
    }
    if (param_grads && net_alloc_grads(net, e)) return -1;
    const float *seeds[NET_MAX_LAYERS] = {0};
    if (!t->fused) {
        for (int l = 0; l <= top; l++) seeds[l] = t->seeded[l] ? t->seed[l] : NULL;
        chunk_backward_seeded(net, t->w, t->x, seeds, top, B, dx, param_grads ? net->grads : NULL, t->train);
    } else {
        Sizes s;
        net_sizes(net, &s);
        int nt = thread_count(B);
        if (param_grads && t->pgrads_nt < nt) {
            xfree(t->pgrads);
            t->pgrads = xmalloc(sizeof(float) * (net->n_params ? net->n_params : 1) * (size_t)nt);
            t->pgrads_nt = t->pgrads ? nt : 0;
            if (!t->pgrads) return err_set(e, "out of memory for per-thread parameter gradients");
        }
#pragma omp parallel num_threads(nt)
        {
            int th = omp_get_thread_num();
            int lo = (int)((long)B * th / nt), hi = (int)((long)B * (th + 1) / nt);
            float *pg = param_grads ? t->pgrads + (size_t)th * net->n_params : NULL;
            if (pg) memset(pg, 0, sizeof(float) * net->n_params);
            Workspace v;
            const float *sb[NET_MAX_LAYERS] = {0};
            for (int b = lo; b < hi; b++) {
                tape_view(net, t->w, &s, b, th, &v);
                for (int l = 0; l <= top; l++) sb[l] = t->seeded[l] ? t->seed[l] + (size_t)b * s.act[l] : NULL;
                chunk_backward_seeded(net, &v, t->x + (size_t)b * in, sb, top, 1, dx ? dx + (size_t)b * in : NULL, pg, 0);
            }
        }
        if (param_grads) // thread order: deterministic for a given thread count
            for (int th = 0; th < nt; th++) {
                const float *pg = t->pgrads + (size_t)th * net->n_params;
                for (size_t i = 0; i < net->n_params; i++) net->grads[i] += pg[i];
            }
    }
    net->n_backward += (uint64_t)B;
    return 0;
}
