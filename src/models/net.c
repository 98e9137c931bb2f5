/*
 * net.c: building a graph of layers, its parameter arena and state_dict, the two drivers
 * (per-sample fused and layer-wise) and the tape described in net.h.
 */
#include "net.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../nn/conv_batch.h"

typedef struct Workspace Workspace;
static void ws_free(Workspace *w);

// ----------------------------------------------------------------------------
// construction

void net_begin(Net *net, const char *arch, int in_c, int in_h, int in_w) {
    memset(net, 0, sizeof(*net));
    snprintf(net->arch, sizeof(net->arch), "%s", arch);
    net->in_c = in_c;
    net->in_h = in_h;
    net->in_w = in_w;
    net->cursor = -1;
    net->embed = -2; // unset: net_finish picks the classifier's input
}

void net_from(Net *net, int node) { net->cursor = node; }

// grows an array of `n` elements of `size` bytes to hold one more; 0 or -1 (out of memory)
static int grow(void **arr, int n, int *cap, size_t size) {
    if (n < *cap) return 0;
    int nc = *cap ? 2 * *cap : 32;
    void *p = xmalloc(size * (size_t)nc);
    if (!p) return -1;
    if (n) memcpy(p, *arr, size * (size_t)n);
    xfree(*arr);
    *arr = p;
    *cap = nc;
    return 0;
}

static size_t node_size(const Layer *L) { return (size_t)L->out_c * L->out_h * L->out_w; }

// shape of a node's output (-1: the model input)
static void node_shape(const Net *net, int node, int *c, int *h, int *w) {
    if (node < 0) *c = net->in_c, *h = net->in_h, *w = net->in_w;
    else *c = net->layers[node].out_c, *h = net->layers[node].out_h, *w = net->layers[node].out_w;
}

static Layer *push(Net *net, LayerKind kind, const char *name, Err *e) {
    if (net->n_layers >= NET_MAX_LAYERS) {
        err_set(e, "model has more than %d nodes", NET_MAX_LAYERS);
        return NULL;
    }
    if (grow((void **)&net->layers, net->n_layers, &net->cap_layers, sizeof(Layer))) {
        err_set(e, "out of memory building the model");
        return NULL;
    }
    Layer *L = &net->layers[net->n_layers];
    memset(L, 0, sizeof(*L));
    L->kind = kind;
    snprintf(L->name, sizeof(L->name), "%s", name ? name : "");
    L->n_in = 1;
    L->in[0] = net->cursor, L->in[1] = -1;
    node_shape(net, net->cursor, &L->in_c, &L->in_h, &L->in_w);
    L->out_c = L->in_c, L->out_h = L->in_h, L->out_w = L->in_w;
    L->w = L->b = L->rm = L->rv = -1;
    net->cursor = net->n_layers++;
    return L;
}

static int add_entry(Net *net, const char *layer_name, const char *suffix, ParamEntryKind kind, long offset,
                     int ndim, const int64_t *shape, Err *e) {
    if (grow((void **)&net->entries, net->n_entries, &net->cap_entries, sizeof(ParamEntry)))
        return err_set(e, "out of memory building the model");
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

int net_add_conv_grouped(Net *net, const char *name, int out_c, int k, int stride, int pad, int groups, int bias,
                         Err *e) {
    Layer *L = push(net, LAYER_CONV, name, e);
    if (!L) return -1;
    if (out_c < 1 || k < 1 || stride < 1 || pad < 0 || groups < 1) return err_set(e, "%s: bad convolution parameters", name);
    if (L->in_c % groups || out_c % groups)
        return err_set(e, "%s: %d input and %d output channels do not split into %d groups", name, L->in_c, out_c, groups);
    L->k = k, L->stride = stride, L->pad = pad, L->groups = groups;
    L->out_c = out_c;
    L->out_h = conv2d_out_size(L->in_h, k, stride, pad);
    L->out_w = conv2d_out_size(L->in_w, k, stride, pad);
    if (L->in_h + 2 * pad < k || L->in_w + 2 * pad < k || L->out_h < 1 || L->out_w < 1)
        return err_set(e, "%s: input %dx%d is too small for a %dx%d convolution", name, L->in_h, L->in_w, k, k);
    int64_t ws[4] = {out_c, L->in_c / groups, k, k}, bs[1] = {out_c};
    L->w = take_params(net, (size_t)out_c * (L->in_c / groups) * k * k);
    if (bias) L->b = take_params(net, (size_t)out_c);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 4, ws, e)) return -1;
    return bias ? add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, bs, e) : 0;
}

int net_add_conv_ex(Net *net, const char *name, int out_c, int k, int stride, int pad, int bias, Err *e) {
    return net_add_conv_grouped(net, name, out_c, k, stride, pad, 1, bias, e);
}

int net_add_conv(Net *net, const char *name, int out_c, int k, int stride, int pad, Err *e) {
    return net_add_conv_ex(net, name, out_c, k, stride, pad, 1, e);
}

int net_add_linear(Net *net, const char *name, int out_features, Err *e) {
    Layer *L = push(net, LAYER_LINEAR, name, e);
    if (!L) return -1;
    if (out_features < 1) return err_set(e, "%s: a linear layer needs at least one output", name);
    int in_f = L->in_c * L->in_h * L->in_w;
    L->in_c = in_f, L->in_h = 1, L->in_w = 1; // linear sees the flattened sample
    L->out_c = out_features, L->out_h = 1, L->out_w = 1;
    int64_t ws[2] = {out_features, in_f}, bs[1] = {out_features};
    L->w = take_params(net, (size_t)out_features * in_f);
    L->b = take_params(net, (size_t)out_features);
    if (add_entry(net, name, "weight", PENTRY_PARAM, L->w, 2, ws, e)) return -1;
    return add_entry(net, name, "bias", PENTRY_PARAM, L->b, 1, bs, e);
}

int net_add_act(Net *net, const char *name, ActKind act, float slope, Err *e) {
    Layer *L = push(net, LAYER_ACT, name, e);
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

int net_add_pool(Net *net, const char *name, LayerKind kind, int k, int stride, Err *e) {
    if (kind != LAYER_AVGPOOL && kind != LAYER_MAXPOOL) return err_set(e, "%s: not a pooling kind", name ? name : "pool");
    Layer *L = push(net, kind, name, e);
    if (!L) return -1;
    if (k < 1 || stride < 1) return err_set(e, "%s: bad pooling parameters", L->name);
    L->k = k, L->stride = stride;
    L->out_h = pool_out_size(L->in_h, k, stride);
    L->out_w = pool_out_size(L->in_w, k, stride);
    if (L->in_h < k || L->in_w < k || L->out_h < 1 || L->out_w < 1)
        return err_set(e, "input %dx%d is too small to pool %dx%d", L->in_h, L->in_w, k, k);
    return 0;
}

int net_add_sum(Net *net, const char *name, int a, int b, Err *e) {
    if (a < -1 || b < -1 || a >= net->n_layers || b >= net->n_layers) return err_set(e, "%s: no such input node", name);
    int ac, ah, aw, bc, bh, bw;
    node_shape(net, a, &ac, &ah, &aw);
    node_shape(net, b, &bc, &bh, &bw);
    if (ac != bc || ah != bh || aw != bw)
        return err_set(e, "%s: cannot add a %dx%dx%d output to a %dx%dx%d one", name, ac, ah, aw, bc, bh, bw);
    net->cursor = a;
    Layer *L = push(net, LAYER_SUM, name, e);
    if (!L) return -1;
    L->n_in = 2;
    L->in[1] = b;
    return 0;
}

int net_add_maxpool_pad(Net *net, const char *name, int k, int stride, int pad, Err *e) {
    Layer *L = push(net, LAYER_MAXPOOL, name, e);
    if (!L) return -1;
    if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k) return err_set(e, "%s: bad pooling parameters", L->name);
    L->k = k, L->stride = stride, L->pad = pad;
    L->out_h = maxpool_pad_out_size(L->in_h, k, stride, pad);
    L->out_w = maxpool_pad_out_size(L->in_w, k, stride, pad);
    if (L->in_h + 2 * pad < k || L->in_w + 2 * pad < k || L->out_h < 1 || L->out_w < 1)
        return err_set(e, "input %dx%d is too small to pool %dx%d", L->in_h, L->in_w, k, k);
    return 0;
}

int net_add_adaptive_avgpool(Net *net, const char *name, int out_h, int out_w, Err *e) {
    Layer *L = push(net, LAYER_ADAPTIVE_AVGPOOL, name, e);
    if (!L) return -1;
    if (out_h < 1 || out_w < 1 || out_h > L->in_h || out_w > L->in_w)
        return err_set(e, "%s: cannot pool %dx%d to %dx%d", L->name, L->in_h, L->in_w, out_h, out_w);
    L->out_h = out_h, L->out_w = out_w;
    return 0;
}

int net_add_dropout(Net *net, const char *name, float p, Err *e) {
    Layer *L = push(net, LAYER_DROPOUT, name, e);
    if (!L) return -1;
    if (!(p >= 0.0f && p < 1.0f)) return err_set(e, "%s: dropout probability %g is not in [0, 1)", L->name, p);
    L->p = p;
    return 0;
}

int net_add_concat(Net *net, const char *name, int a, int b, Err *e) {
    if (a < -1 || b < -1 || a >= net->n_layers || b >= net->n_layers) return err_set(e, "%s: no such input node", name);
    int ac, ah, aw, bc, bh, bw;
    node_shape(net, a, &ac, &ah, &aw);
    node_shape(net, b, &bc, &bh, &bw);
    if (ah != bh || aw != bw) return err_set(e, "%s: cannot concatenate %dx%d planes with %dx%d ones", name, ah, aw, bh, bw);
    net->cursor = a;
    Layer *L = push(net, LAYER_CONCAT, name, e);
    if (!L) return -1;
    L->n_in = 2;
    L->in[1] = b;
    L->out_c = ac + bc;
    return 0;
}

int net_add_slice(Net *net, const char *name, int c0, int n, Err *e) {
    Layer *L = push(net, LAYER_SLICE, name, e);
    if (!L) return -1;
    if (c0 < 0 || n < 1 || c0 + n > L->in_c) return err_set(e, "%s: channels [%d, %d) are not in 0..%d", L->name, c0, c0 + n, L->in_c);
    L->c0 = c0;
    L->out_c = n;
    return 0;
}

int net_add_shuffle(Net *net, const char *name, int groups, Err *e) {
    Layer *L = push(net, LAYER_SHUFFLE, name, e);
    if (!L) return -1;
    if (groups < 1 || L->in_c % groups) return err_set(e, "%s: %d channels do not shuffle in %d groups", L->name, L->in_c, groups);
    L->groups = groups;
    return 0;
}

void net_set_init(Net *net, int node, NetInit init) {
    if (node >= 0 && node < net->n_layers) net->layers[node].init = init;
}

int net_finish_shapes(Net *net, Err *e) {
    if (net->n_layers == 0) return err_set(e, "model has no layers");
    Layer *last = &net->layers[net->n_layers - 1];
    net->n_classes = last->out_c * last->out_h * last->out_w;
    for (int l = 0; l < net->n_layers; l++) net->layers[l].n_out = 0, net->layers[l].last_use = -1;
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        for (int j = 0; j < L->n_in; j++) {
            if (L->in[j] >= l) return err_set(e, "node %d (%s) reads a later node", l, L->name);
            if (L->in[j] < 0) continue;
            net->layers[L->in[j]].n_out++;
            net->layers[L->in[j]].last_use = l;
        }
    }
    if (net->embed == -2) net->embed = last->kind == LAYER_LINEAR ? last->in[0] : -1;
    return 0;
}

int net_finish(Net *net, Err *e) {
    if (net_finish_shapes(net, e)) return -1;
    net->params = xcalloc(sizeof(float) * (net->n_params ? net->n_params : 1));
    net->buffers = xcalloc(sizeof(float) * (net->n_buffers ? net->n_buffers : 1));
    net->conv = xcalloc(sizeof(ConvPlan) * (size_t)net->n_layers);
    if (!net->params || !net->buffers || !net->conv)
        return err_set(e, "out of memory allocating %zu parameters", net->n_params);
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        if (L->kind == LAYER_BATCHNORM) init_fill(net->buffers + L->rv, (size_t)L->in_c, 1.0f);
    }
    net_init_params(net, 0);
    const char *conv = getenv("BEARD_CONV");
    if (conv && *conv && strcmp(conv, "im2col") && strcmp(conv, "winograd4"))
        return err_set(e, "BEARD_CONV=%s: expected im2col or winograd4 (or unset: the default kernels)", conv);
    net->conv_im2col = conv && !strcmp(conv, "im2col");
    net->conv_tile = conv && !strcmp(conv, "winograd4") ? 4 : 2;
    const char *bn = getenv("BEARD_BN");
    net->bn_layerwise = bn && !strcmp(bn, "layerwise");
    const char *chunk = getenv("BEARD_CHUNK");
    net->chunk = chunk ? atoi(chunk) : 0;
    if (net->chunk < 0 || net->chunk > 64) net->chunk = 0;
    return 0;
}

void net_free(Net *net) {
    xfree(net->params);
    xfree(net->grads);
    xfree(net->buffers);
    for (int i = 0; i < net->n_ws; i++) ws_free(net->ws[i]);
    for (int i = 0; i < net->n_ws_chunk; i++) ws_free(net->ws_chunk[i]);
    if (net->conv)
        for (int l = 0; l < net->n_layers; l++) conv_plan_free(&net->conv[l]);
    xfree(net->conv);
    net_tape_free(net->tape);
    xfree(net->layers);
    xfree(net->entries);
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
            size_t fan_in = (size_t)(L->in_c / (L->groups > 0 ? L->groups : 1)) * L->k * L->k;
            size_t nw = (size_t)L->out_c * fan_in;
            float bound = 1.0f / sqrtf((float)fan_in);
            if (L->init == INIT_KAIMING_OUT) {
                double sd = sqrt(2.0 / ((double)L->out_c * L->k * L->k));
                for (size_t i = 0; i < nw; i++) net->params[L->w + i] = (float)(sd * rng_normal(&rng));
                if (L->b >= 0) init_fill(net->params + L->b, (size_t)L->out_c, 0.0f);
                break;
            }
            init_uniform(net->params + L->w, nw, bound, &rng);
            if (L->b >= 0) init_uniform(net->params + L->b, (size_t)L->out_c, bound, &rng);
            break;
        }
        case LAYER_LINEAR: {
            float bound = 1.0f / sqrtf((float)L->in_c);
            size_t nw = (size_t)L->out_c * L->in_c;
            if (L->init == INIT_NORMAL_001)
                for (size_t i = 0; i < nw; i++) net->params[L->w + i] = (float)(0.01 * rng_normal(&rng));
            else
                init_uniform(net->params + L->w, nw, bound, &rng);
            if (L->init == INIT_NORMAL_001 || L->init == INIT_ZERO_BIAS) init_fill(net->params + L->b, (size_t)L->out_c, 0.0f);
            else init_uniform(net->params + L->b, (size_t)L->out_c, bound, &rng);
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

int net_has_train_mode(const Net *net) {
    for (int l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == LAYER_BATCHNORM || net->layers[l].kind == LAYER_DROPOUT) return 1;
    return 0;
}

int net_has_batchnorm(const Net *net) {
    for (int l = 0; l < net->n_layers; l++)
        if (net->layers[l].kind == LAYER_BATCHNORM) return 1;
    return 0;
}

// ----------------------------------------------------------------------------
// state_dict

static const char *entry_shape_str(const ParamEntry *pe, char *buf, size_t n) {
    Tensor tmp = {.ndim = pe->ndim};
    for (int d = 0; d < pe->ndim; d++) tmp.shape[d] = pe->shape[d];
    return tensor_shape_str(&tmp, buf, n);
}

int net_check_state_dict(const Net *net, const TensorDict *sd, int strict, int *n_match, Err *e) {
    int rc = 0, match = 0;
    char got[96], want[96];
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        const Tensor *t = tensordict_get(sd, pe->name);
        if (!t) {
            if (pe->kind == PENTRY_COUNTER) continue; // old checkpoints lack num_batches_tracked
            if (!rc)
                rc = err_set(e, "checkpoint has no '%s' (shape %s in %s; is it a %s?)", pe->name,
                             entry_shape_str(pe, want, sizeof(want)), net->arch, net->arch);
            continue;
        }
        int same = t->numel == pe->numel && (t->ndim == pe->ndim || (pe->ndim == 0 && t->numel == 1));
        for (int d = 0; same && d < pe->ndim; d++) same = t->shape[d] == pe->shape[d];
        if (!same) {
            if (!rc)
                rc = err_set(e, "'%s' has shape %s in the checkpoint but %s in %s", pe->name,
                             tensor_shape_str(t, got, sizeof(got)), entry_shape_str(pe, want, sizeof(want)), net->arch);
            continue;
        }
        match++;
    }
    if (strict) {
        for (int i = 0; i < sd->n; i++) {
            int found = 0;
            for (int j = 0; j < net->n_entries && !found; j++) found = !strcmp(sd->items[i].name, net->entries[j].name);
            if (!found && !rc)
                rc = err_set(e, "checkpoint has '%s' (shape %s), which %s does not have (wrong --arch?)", sd->items[i].name,
                             tensor_shape_str(&sd->items[i].t, got, sizeof(got)), net->arch);
        }
    }
    if (n_match) *n_match = match;
    return rc;
}

int net_load_state_dict(Net *net, const TensorDict *sd, int strict, Err *e) {
    if (net_check_state_dict(net, sd, strict, NULL, e)) return -1;
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        const Tensor *t = tensordict_get(sd, pe->name);
        if (!t) continue;
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
    float *p;
    size_t cap;
    int used;
} GradBuf;

struct Workspace {
    int n, nvec_cap, has_pgrads, tape, oom;
    float *x0;           // (n, in size): the normalised input
    float *dx0;          // (n, in size): its gradient
    float **act;         // (n_layers) node outputs, (n, node size)
    float **stats;       // (n_layers) normalisation statistics saved for backward
    int **argmax;        // (n_layers) max-pool choices
    float **grad;        // (n_layers) d(loss)/d(node output), (n, node size)
    // (n_layers) node outputs in a forward-only pass (not the tape's): a node whose only
    // reader is the next one writes into one of the two chain buffers, the one its input
    // is not in, instead of its own. ConvNet's activations then take 2 x 512 KB of cache
    // per sample rather than 2.2 MB, less to evict the 2 MB of Winograd weights from a
    // 2 MB L2. (The buffers are the gradient chain's, unused in such a pass.)
    float **act_fwd;
    int fwd_only;        // a forward-only view (ws_forward_view): act is act_fwd
    // the fused driver's chunks: the linear layers run one sample at a time, as BLAS may
    // block the rows of a larger product differently (a sample's result then does not
    // depend on its chunk)
    int per_sample;
    unsigned char *live; // (1 + n_layers): live[0] the input, live[1 + l] node l: its grad holds a value
    float *dlogits;      // (n, nvec_cap, n_classes)
    float *pgrads;       // per-thread parameter gradients (fused driver), or NULL
    // the tape's gradient buffers: taken when a node's gradient comes alive, given back
    // when the node has been processed, so that only the frontier is held at once
    GradBuf *pool;
    int n_pool;
};

struct NetTape {
    Net *net;
    int B, train, n_layers;
    Workspace *w;
};


static size_t stats_size(const Layer *L, int n) {
    switch (L->kind) {
    case LAYER_GROUPNORM: return 2 * (size_t)L->groups * n;
    case LAYER_LAYERNORM: return 2 * (size_t)n;
    case LAYER_BATCHNORM: return 2 * (size_t)L->in_c; // per chunk, not per sample
    case LAYER_DROPOUT: return (size_t)n * node_size(L); // the mask
    default: return 0;
    }
}

// the fused driver hands a node's gradient to the next node through two alternating
// buffers when that next node is its only reader
static int is_chain(const Net *net, int l) {
    const Layer *L = &net->layers[l];
    return l < net->n_layers - 1 && L->n_out == 1 && L->last_use == l + 1;
}

// tape: every node's gradient comes from the pool; fused: from the arena (the last
// node's is the caller's dlogits, set per pass)
static Workspace *ws_alloc(const Net *net, int n, int nvec, int pgrads, int tape) {
    int nl = net->n_layers;
    size_t in = net_in_size(net), max_chain = in;
#define ROUND(x) (((x) + 15) & ~(size_t)15)
    size_t hdr = sizeof(Workspace) + 5 * sizeof(void *) * (size_t)nl + (size_t)nl + 1;
    size_t total = ROUND((hdr + sizeof(float) - 1) / sizeof(float));
    total += ROUND(n * in) * 2; // x0, dx0
    for (int l = 0; l < nl; l++) {
        const Layer *L = &net->layers[l];
        size_t s = node_size(L);
        total += ROUND(n * s);
        total += ROUND(stats_size(L, n));
        if (L->kind == LAYER_MAXPOOL) total += ROUND(n * s);
        if (tape || l == nl - 1 || L->n_out == 0) continue;
        if (is_chain(net, l)) max_chain = s > max_chain ? s : max_chain;
        else total += ROUND(n * s);
    }
    if (!tape) total += ROUND(n * max_chain) * 2;
    total += ROUND((size_t)n * nvec * net->n_classes);
    if (pgrads) total += ROUND(net->n_params);
    float *mem = xcalloc(total * sizeof(float));
    if (!mem) return NULL;
    Workspace *w = (Workspace *)mem;
    char *h = (char *)(w + 1);
    w->act = (float **)h, h += sizeof(void *) * nl;
    w->stats = (float **)h, h += sizeof(void *) * nl;
    w->argmax = (int **)h, h += sizeof(void *) * nl;
    w->grad = (float **)h, h += sizeof(void *) * nl;
    w->act_fwd = (float **)h, h += sizeof(void *) * nl;
    w->live = (unsigned char *)h;
    float *p = mem + ROUND((hdr + sizeof(float) - 1) / sizeof(float));
    w->n = n;
    w->nvec_cap = nvec;
    w->tape = tape;
    w->x0 = p, p += ROUND(n * in);
    w->dx0 = p, p += ROUND(n * in);
    for (int l = 0; l < nl; l++) {
        const Layer *L = &net->layers[l];
        size_t s = node_size(L);
        w->act[l] = p, p += ROUND(n * s);
        w->stats[l] = p, p += ROUND(stats_size(L, n));
        w->argmax[l] = NULL;
        if (L->kind == LAYER_MAXPOOL) w->argmax[l] = (int *)p, p += ROUND(n * s);
    }
    float *chain[2] = {NULL, NULL};
    if (!tape) {
        for (int l = 0; l < nl; l++) {
            const Layer *L = &net->layers[l];
            if (l == nl - 1 || L->n_out == 0 || is_chain(net, l)) continue;
            w->grad[l] = p, p += ROUND(n * node_size(L));
        }
        chain[0] = p, p += ROUND(n * max_chain);
        chain[1] = p, p += ROUND(n * max_chain);
        for (int l = 0; l < nl; l++)
            if (is_chain(net, l)) w->grad[l] = chain[l & 1];
        int prev = -1; // the chain buffer that node l - 1's output is in, or -1
        for (int l = 0; l < nl; l++) {
            int use = is_chain(net, l) ? (prev == 0 ? 1 : 0) : -1;
            w->act_fwd[l] = use < 0 ? w->act[l] : chain[use];
            prev = use;
        }
    }
    w->dlogits = p, p += ROUND((size_t)n * nvec * net->n_classes);
    w->has_pgrads = pgrads;
    w->pgrads = pgrads ? p : NULL;
#undef ROUND
    return w;
}

static void ws_free(Workspace *w) {
    if (!w) return;
    for (int i = 0; i < w->n_pool; i++) xfree(w->pool[i].p);
    xfree(w->pool);
    xfree(w);
}

// the cached per-thread workspace for n samples, grown when more is asked of it
static Workspace *ws_thread(Net *net, int t, int n, int nvec, int pgrads) {
    Workspace *w = net->ws[t];
    if (w && w->n >= n && w->nvec_cap >= nvec && (w->has_pgrads || !pgrads)) return w;
    ws_free(w);
    int cap_nvec = nvec > 1 ? nvec : 1;
    net->ws[t] = w = ws_alloc(net, n, cap_nvec, pgrads, 0);
    if (t >= net->n_ws) net->n_ws = t + 1;
    return w;
}

// a gradient buffer of at least n floats from the tape's pool (best fit), or NULL
static float *pool_take(Workspace *w, size_t n) {
    int best = -1;
    for (int i = 0; i < w->n_pool; i++)
        if (!w->pool[i].used && w->pool[i].cap >= n && (best < 0 || w->pool[i].cap < w->pool[best].cap)) best = i;
    if (best < 0) {
        GradBuf *np = xmalloc(sizeof(GradBuf) * (size_t)(w->n_pool + 1));
        float *p = xmalloc(sizeof(float) * (n ? n : 1));
        if (!np || !p) {
            xfree(np), xfree(p);
            return NULL;
        }
        if (w->n_pool) memcpy(np, w->pool, sizeof(GradBuf) * (size_t)w->n_pool);
        xfree(w->pool);
        w->pool = np;
        best = w->n_pool++;
        w->pool[best].p = p;
        w->pool[best].cap = n;
    }
    w->pool[best].used = 1;
    return w->pool[best].p;
}

static void pool_give(Workspace *w, float *p) {
    for (int i = 0; i < w->n_pool; i++)
        if (w->pool[i].p == p) w->pool[i].used = 0;
}

// ----------------------------------------------------------------------------
// convolution plans, brought up to date with the parameters before every pass

static int conv_update(Net *net, int backward, Err *e) {
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        if (L->kind != LAYER_CONV || L->groups != 1) continue; // grouped: conv_group.c
        ConvPlan *p = &net->conv[l];
        int tile = conv_plan_tile(net->conv_tile, L->in_w);
        if (p->K == 0 || p->im2col_only != net->conv_im2col || p->tile != tile) {
            conv_plan_free(p);
            conv_plan_init(p, L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->stride, L->pad, net->conv_im2col, tile);
        }
        if (conv_plan_update(p, net->params + L->w, backward))
            return err_set(e, "out of memory for the transformed weights of node %s", L->name);
    }
    return 0;
}

int net_conv_prepare(Net *net, int backward, Err *e) { return conv_update(net, backward, e); }

// ----------------------------------------------------------------------------
// one chunk of n samples through every node

// torchvision's Normalize, in float32
void net_normalize_input(const Net *net, float *dst, const float *x, int n) {
    size_t in = net_in_size(net), plane = (size_t)net->in_h * net->in_w;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < net->in_c; c++) {
            const float *src = x + b * in + c * plane;
            float *d = dst + b * in + c * plane;
            float m = net->mean[c], sd = net->std[c];
            for (size_t i = 0; i < plane; i++) d[i] = (src[i] - m) / sd;
        }
}

void net_input_grad_to_pixels(const Net *net, float *dst, const float *g, int n) {
    size_t in = net_in_size(net), plane = (size_t)net->in_h * net->in_w;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < net->in_c; c++) {
            const float *src = g + b * in + c * plane;
            float *d = dst + b * in + c * plane;
            float sd = net->std[c];
            for (size_t i = 0; i < plane; i++) d[i] = src[i] / sd;
        }
}

static inline const float *node_in(const Workspace *w, const float *in0, int j) { return j < 0 ? in0 : w->act[j]; }

// samples [b0, b0 + nb) of node l, of a workspace holding w->n samples; in0 is the
// normalised input (w->n, in size). phased: BatchNorm applies the batch statistics
// already in its stats slot (the BatchNorm training path below computes them first).
static void node_forward(Net *net, Workspace *w, int l, const float *in0, int b0, int nb, int bn_train, int phased) {
    const float *P = net->params;
    Layer *L = &net->layers[l];
    int n = w->n;
    size_t in_size = net_node_size(net, L->in[0]), out_size = node_size(L);
    const float *cur = node_in(w, in0, L->in[0]) + (size_t)b0 * in_size;
    float *out = w->act[l] + (size_t)b0 * out_size;
    int HW = L->in_h * L->in_w;
    const float *bias = L->b >= 0 ? P + L->b : NULL;
    switch (L->kind) {
    case LAYER_CONV:
        if (L->groups > 1)
            conv2d_group_forward(out, cur, P + L->w, bias, nb, L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->stride,
                                 L->pad, L->groups);
        else
            conv_plan_forward(&net->conv[l], out, cur, P + L->w, bias, nb);
        break;
    case LAYER_LINEAR:
        if (w->per_sample)
            for (int b = 0; b < nb; b++)
                linear_forward(out + b * out_size, cur + b * in_size, P + L->w, bias, 1, L->in_c, L->out_c);
        else
            linear_forward(out, cur, P + L->w, bias, nb, L->in_c, L->out_c);
        break;
    case LAYER_ACT: act_forward(out, cur, (size_t)nb * out_size, L->act, L->slope); break;
    case LAYER_GROUPNORM:
        groupnorm_forward(out, w->stats[l] + (size_t)b0 * L->groups, w->stats[l] + ((size_t)n + b0) * L->groups, cur,
                          P + L->w, P + L->b, nb, L->in_c, HW, L->groups, L->eps);
        break;
    case LAYER_LAYERNORM:
        layernorm_forward(out, w->stats[l] + b0, w->stats[l] + n + b0, cur, P + L->w, P + L->b, nb, (int)out_size, L->eps);
        break;
    case LAYER_BATCHNORM:
        if (phased) {
            batchnorm_apply(out, cur, w->stats[l], w->stats[l] + L->in_c, P + L->w, P + L->b, nb, L->in_c, HW);
            break;
        }
        batchnorm_forward(out, w->stats[l], w->stats[l] + L->in_c, net->buffers + L->rm, net->buffers + L->rv, cur,
                          P + L->w, P + L->b, nb, L->in_c, HW, L->eps, L->momentum, bn_train);
        if (bn_train) L->num_batches_tracked++;
        break;
    case LAYER_AVGPOOL: avgpool_forward(out, cur, nb, L->in_c, L->in_h, L->in_w, L->k, L->stride); break;
    case LAYER_MAXPOOL:
        if (L->pad)
            maxpool_pad_forward(out, w->argmax[l] + (size_t)b0 * out_size, cur, nb, L->in_c, L->in_h, L->in_w, L->k,
                                L->stride, L->pad);
        else
            maxpool_forward(out, w->argmax[l] + (size_t)b0 * out_size, cur, nb, L->in_c, L->in_h, L->in_w, L->k, L->stride);
        break;
    case LAYER_SUM:
        add_forward(out, cur, node_in(w, in0, L->in[1]) + (size_t)b0 * out_size, (size_t)nb * out_size);
        break;
    case LAYER_CONCAT: {
        int HWo = L->out_h * L->out_w, cb = L->out_c - L->in_c;
        concat_forward(out, cur, node_in(w, in0, L->in[1]) + (size_t)b0 * cb * HWo, nb, L->in_c, cb, HWo);
        break;
    }
    case LAYER_SLICE: slice_forward(out, cur, nb, L->in_c, L->c0, L->out_c, HW); break;
    case LAYER_SHUFFLE: shuffle_forward(out, cur, nb, L->in_c, L->groups, HW); break;
    case LAYER_ADAPTIVE_AVGPOOL:
        adaptive_avgpool_forward(out, cur, nb, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w);
        break;
    case LAYER_DROPOUT:
        if (bn_train && L->p > 0.0f)
            dropout_forward(out, w->stats[l] + (size_t)b0 * out_size, cur, (size_t)nb * out_size, L->p,
                            net->dropout_seed + net->dropout_step * 0x9E3779B97F4A7C15ull, 0x4452500000ull + (uint64_t)l);
        else
            memcpy(out, cur, sizeof(float) * nb * out_size);
        break;
    }
}

// in0: the normalised input (n, in size); runs nodes 0..last and returns node last's values
static const float *chunk_forward_to(Net *net, Workspace *w, const float *in0, int n, int bn_train, int last) {
    const float *P = net->params;
    for (int l = 0; l <= last; l++) {
        Layer *L = &net->layers[l];
        // forward only: GroupNorm -> ReLU -> 2x2 average pooling (ConvNet's blocks), when
        // each of the first two feeds only the next, in one pass, bit-identical to the
        // three (groupnorm_relu_pool_forward)
        if (w->fwd_only && L->kind == LAYER_GROUPNORM && l + 2 <= last && is_chain(net, l) && is_chain(net, l + 1) &&
            L[1].kind == LAYER_ACT && L[1].act == ACT_RELU && L[1].in[0] == l && L[2].kind == LAYER_AVGPOOL &&
            L[2].k == 2 && L[2].stride == 2 && L[2].in[0] == l + 1) {
            groupnorm_relu_pool_forward(w->act[l + 2], node_in(w, in0, L->in[0]), P + L->w, P + L->b, n, L->in_c,
                                        L->in_h, L->in_w, L->groups, L->eps, 1);
            l += 2;
            continue;
        }
        node_forward(net, w, l, in0, 0, n, bn_train, 0);
    }
    if (bn_train) net->dropout_step++;
    return w->act[last];
}

static const float *chunk_forward(Net *net, Workspace *w, const float *in0, int n, int bn_train) {
    return chunk_forward_to(net, w, in0, n, bn_train, net->n_layers - 1);
}

// where node l's backward adds the gradient of its input j (-1: the model input): zeroed
// the first time in a pass; NULL when not wanted (or, on the tape, out of memory: w->oom)
static float *grad_target(const Net *net, Workspace *w, int j, int n, int want_dx) {
    if (j < 0) {
        if (!want_dx) return NULL;
        if (!w->live[0]) {
            memset(w->dx0, 0, sizeof(float) * n * net_in_size(net));
            w->live[0] = 1;
        }
        return w->dx0;
    }
    size_t sz = (size_t)n * node_size(&net->layers[j]);
    if (!w->live[1 + j]) {
        if (w->tape && !(w->grad[j] = pool_take(w, sz))) {
            w->oom = 1;
            return NULL;
        }
        memset(w->grad[j], 0, sizeof(float) * sz);
        w->live[1 + j] = 1;
    }
    return w->grad[j];
}

// backward of node l for samples [b0, b0 + nb): g is d/d(out) of those samples, din and
// din1 the gradient buffers of its inputs at the same samples (NULL: not wanted).
// BatchNorm here is the whole-batch form (b0 = 0, nb = n).
static void node_backward(Net *net, Workspace *w, int l, const float *in0, int b0, int nb, const float *g, float *din,
                          float *din1, float *pgrads, int bn_train) {
    const float *P = net->params;
    Layer *L = &net->layers[l];
    int n = w->n;
    size_t in_size = (size_t)L->in_c * L->in_h * L->in_w, osz = node_size(L);
    const float *lin = node_in(w, in0, L->in[0]) + (size_t)b0 * in_size;
    float *dw = pgrads && L->w >= 0 ? pgrads + L->w : NULL;
    float *db = pgrads && L->b >= 0 ? pgrads + L->b : NULL;
    int HW = L->in_h * L->in_w;
    switch (L->kind) {
    case LAYER_CONV:
        if (L->groups > 1)
            conv2d_group_backward(din, dw, db, g, lin, P + L->w, nb, L->in_c, L->in_h, L->in_w, L->out_c, L->k, L->stride,
                                  L->pad, L->groups);
        else
            conv_plan_backward(&net->conv[l], din, dw, db, g, lin, P + L->w, nb);
        break;
    case LAYER_LINEAR:
        if (w->per_sample)
            for (int b = 0; b < nb; b++)
                linear_backward(din ? din + b * in_size : NULL, dw, db, g + b * osz, lin + b * in_size, P + L->w, 1,
                                L->in_c, L->out_c);
        else
            linear_backward(din, dw, db, g, lin, P + L->w, nb, L->in_c, L->out_c);
        break;
    case LAYER_ACT:
        if (din) act_backward(din, g, lin, (size_t)nb * in_size, L->act, L->slope);
        break;
    case LAYER_GROUPNORM:
        groupnorm_backward(din, dw, db, g, w->stats[l] + (size_t)b0 * L->groups, w->stats[l] + ((size_t)n + b0) * L->groups,
                           lin, P + L->w, nb, L->in_c, HW, L->groups);
        break;
    case LAYER_LAYERNORM:
        layernorm_backward(din, dw, db, g, w->stats[l] + b0, w->stats[l] + n + b0, lin, P + L->w, nb, (int)in_size);
        break;
    case LAYER_BATCHNORM:
        batchnorm_backward(din, dw, db, g, w->stats[l], w->stats[l] + L->in_c, lin, P + L->w, nb, L->in_c, HW, bn_train);
        break;
    case LAYER_AVGPOOL:
        if (din) avgpool_backward(din, g, nb, L->in_c, L->in_h, L->in_w, L->k, L->stride);
        break;
    case LAYER_MAXPOOL:
        if (din && L->pad)
            maxpool_pad_backward(din, g, w->argmax[l] + (size_t)b0 * osz, nb, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w);
        else if (din)
            maxpool_backward(din, g, w->argmax[l] + (size_t)b0 * osz, nb, L->in_c, L->in_h, L->in_w, L->k, L->stride);
        break;
    case LAYER_SUM: add_backward(din, din1, g, (size_t)nb * osz); break;
    case LAYER_CONCAT: concat_backward(din, din1, g, nb, L->in_c, L->out_c - L->in_c, L->out_h * L->out_w); break;
    case LAYER_SLICE:
        if (din) slice_backward(din, g, nb, L->in_c, L->c0, L->out_c, HW);
        break;
    case LAYER_SHUFFLE:
        if (din) shuffle_backward(din, g, nb, L->in_c, L->groups, HW);
        break;
    case LAYER_ADAPTIVE_AVGPOOL:
        if (din) adaptive_avgpool_backward(din, g, nb, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w);
        break;
    case LAYER_DROPOUT:
        if (din && bn_train && L->p > 0.0f) dropout_backward(din, g, w->stats[l] + (size_t)b0 * osz, (size_t)nb * in_size);
        else if (din) add_backward(din, NULL, g, (size_t)nb * in_size);
        break;
    }
}

// backpropagates through every node whose gradient is live, from the last down. in0 is
// the forward's normalised input; the input's gradient (normalised space) is left in
// dx0 when want_dx. Parameter gradients += into pgrads when not NULL. Returns -1 when
// the tape runs out of memory (then nothing is left live).
static int graph_backward(Net *net, Workspace *w, const float *in0, int n, int want_dx, float *pgrads, int bn_train) {
    w->oom = 0;
    for (int l = net->n_layers - 1; l >= 0 && !w->oom; l--) {
        if (!w->live[1 + l]) continue;
        Layer *L = &net->layers[l];
        const float *g = w->grad[l];
        // the input gradient of GroupNorm -> ReLU -> 2x2 average pooling (ConvNet's blocks)
        // in one kernel, bit-identical to the three (groupnorm_relu_pool_backward), when no
        // parameter gradient is wanted and the two inner nodes feed only the next and hold
        // no seeded gradient
        if (!pgrads && l >= 2 && L->kind == LAYER_AVGPOOL && L->k == 2 && L->stride == 2 && L->in[0] == l - 1 &&
            L[-1].kind == LAYER_ACT && L[-1].act == ACT_RELU && L[-1].in[0] == l - 2 && L[-2].kind == LAYER_GROUPNORM &&
            is_chain(net, l - 1) && is_chain(net, l - 2) && !w->live[l] && !w->live[l - 1]) {
            int lg = l - 2;
            Layer *G = &net->layers[lg];
            float *din = grad_target(net, w, G->in[0], n, want_dx);
            if (din)
                groupnorm_relu_pool_backward(din, g, w->stats[lg], w->stats[lg] + (size_t)w->n * G->groups,
                                             node_in(w, in0, G->in[0]), w->act[lg], net->params + G->w, n, G->in_c, G->in_h,
                                             G->in_w, G->groups);
            w->live[1 + l] = 0;
            if (w->tape) {
                pool_give(w, w->grad[l]);
                w->grad[l] = NULL;
            }
            l = lg;
            continue;
        }
        float *din = grad_target(net, w, L->in[0], n, want_dx);
        float *din1 = L->n_in > 1 ? grad_target(net, w, L->in[1], n, want_dx) : NULL;
        node_backward(net, w, l, in0, 0, n, w->grad[l], din, din1, pgrads, bn_train);
        w->live[1 + l] = 0;
        if (w->tape) {
            pool_give(w, w->grad[l]);
            w->grad[l] = NULL;
        }
    }
    if (w->oom) {
        for (int l = 0; l < net->n_layers; l++) {
            w->live[1 + l] = 0;
            if (w->tape && w->grad[l]) pool_give(w, w->grad[l]), w->grad[l] = NULL;
        }
        w->live[0] = 0;
        return -1;
    }
    return 0;
}

// the input gradient out of dx0, in the space of the input given (pixel units when the
// model normalises); zeros when no gradient reached the input
static void input_grad_out(const Net *net, Workspace *w, float *dx, int n) {
    size_t in = net_in_size(net);
    if (!w->live[0]) {
        memset(dx, 0, sizeof(float) * n * in);
        return;
    }
    w->live[0] = 0;
    if (net->normalize) net_input_grad_to_pixels(net, dx, w->dx0, n);
    else memcpy(dx, w->dx0, sizeof(float) * n * in);
}

// ----------------------------------------------------------------------------
// the tape

void net_tape_free(NetTape *t) {
    if (!t) return;
    ws_free(t->w);
    xfree(t);
}

int net_tape_forward(Net *net, NetTape **tp, const float *x, int B, int train, Err *e) {
    if (B < 1) return err_set(e, "empty batch");
    if (conv_update(net, 1, e)) return -1; // a backward pass follows
    NetTape *t = *tp;
    if (t && (t->net != net || t->B != B || t->n_layers != net->n_layers)) {
        net_tape_free(t);
        *tp = t = NULL;
    }
    if (!t) {
        t = xcalloc(sizeof(*t));
        if (!t || !(t->w = ws_alloc(net, B, 1, 0, 1))) {
            xfree(t);
            return err_set(e, "out of memory for the activations of a batch of %d", B);
        }
        t->net = net, t->B = B, t->n_layers = net->n_layers;
        *tp = t;
    }
    Workspace *w = t->w;
    for (int l = 0; l < net->n_layers; l++)
        if (w->grad[l]) pool_give(w, w->grad[l]), w->grad[l] = NULL;
    memset(w->live, 0, (size_t)net->n_layers + 1);
    t->train = train;
    if (net->normalize) net_normalize_input(net, w->x0, x, B);
    else memcpy(w->x0, x, sizeof(float) * B * net_in_size(net));
    chunk_forward(net, w, w->x0, B, train);
    net->n_forward += (uint64_t)B;
    return 0;
}

int net_node_find(const Net *net, const char *name) {
    if (!name || !*name) return -1;
    for (int l = 0; l < net->n_layers; l++)
        if (!strcmp(net->layers[l].name, name)) return l;
    return -1;
}

int net_embed_node(const Net *net) { return net->embed; }

size_t net_node_size(const Net *net, int node) {
    if (node < 0) return net_in_size(net);
    return node < net->n_layers ? node_size(&net->layers[node]) : 0;
}

const float *net_tape_out(const NetTape *t, int node) {
    if (node < -1 || node >= t->n_layers) return NULL;
    return node < 0 ? t->w->x0 : t->w->act[node];
}

float *net_tape_grad(NetTape *t, int node) {
    if (node < 0 || node >= t->n_layers) return NULL;
    return grad_target(t->net, t->w, node, t->B, 0);
}

int net_tape_backward(Net *net, NetTape *t, float *dx, int param_grads, Err *e) {
    if (t->net != net) return err_set(e, "the tape was recorded on another model");
    if (param_grads && net_alloc_grads(net, e)) return -1;
    Workspace *w = t->w;
    if (graph_backward(net, w, w->x0, t->B, dx != NULL, param_grads ? net->grads : NULL, t->train))
        return err_set(e, "out of memory for the gradients of a batch of %d", t->B);
    if (dx) input_grad_out(net, w, dx, t->B);
    net->n_backward += (uint64_t)t->B;
    return 0;
}

// ----------------------------------------------------------------------------
// drivers

static int thread_count(int B) {
    int nt = parallel_threads();
    if (nt > 256) nt = 256; // Net.ws capacity
    return nt < B ? nt : (B > 0 ? B : 1);
}

// How many of B samples the fused driver's passes with several gradient vectors a
// sample (and no parameter gradients) run one per thread (contiguous blocks); the
// rest run one at a time outside the parallel region, where the convolution and
// normalisation kernels share a sample among the threads. That is for the samples left
// over when B does not divide among the threads and too few remain to keep them all busy
// (at most half as many as threads: a batch of 1, or 13 on 2 threads), which would
// otherwise leave threads idle while the last ones finish. A sample's result is the same
// either way (the kernels split work, never a sum), so it still does not depend on its
// batch.
static int per_thread_samples(int B) {
    int P = thread_count(1 << 30), r = B % P;
    return r && 2 * r <= P ? B - r : B;
}

// Samples a thread of the fused driver runs through the graph together where a
// convolution runs over groups of samples (ConvPlan.batch: the 4x4 and 2x2 maps of
// ResNet-18, VGG11 and AlexNet, where one sample's GEMM is a few columns against
// megabytes of weights): as many as such a GEMM takes (conv_batch_samples), at most
// NET_CHUNK_MAX, within NET_CHUNK_BYTES of workspace a thread. 0 for a net without such a
// layer (ConvNet's family). A sample's values then depend on its chunk through the
// GEMMs' rounding only; every pass uses these chunks, with and without parameter
// gradients.
#define NET_CHUNK_MAX 32
#define NET_CHUNK_BYTES ((size_t)192 << 20)
static int batch_chunk(const Net *net) {
    int c = 0;
    size_t per = 2 * net_in_size(net); // floats a sample in a workspace, roughly
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        per += 2 * node_size(L) + (L->kind == LAYER_MAXPOOL ? node_size(L) : 0);
        if (L->kind == LAYER_CONV && L->groups == 1 && net->conv[l].batch) {
            int m = conv_batch_samples(L->out_h, L->out_w);
            c = m > c ? m : c;
        }
    }
    if (!c) return 0;
    if (c > NET_CHUNK_MAX) c = NET_CHUNK_MAX;
    while (c > 1 && (size_t)c * per * sizeof(float) > NET_CHUNK_BYTES) c--;
    return c;
}

// batch_chunk's size for B samples split into nt contiguous blocks: at most a block, at
// least one sample
static int block_chunk(const Net *net, int B, int nt) {
    int c = batch_chunk(net), per = (B + nt - 1) / nt;
    if (c > per) c = per;
    return c > 1 ? c : 1;
}

// the threads' parameter gradients (Workspace.pgrads of threads 0..nt) added into
// net->grads in thread order
static void pgrads_reduce(Net *net, int nt) {
    for (int t = 0; t < nt; t++) {
        const float *pg = ((Workspace *)net->ws[t])->pgrads;
        for (size_t i = 0; i < net->n_params; i++) net->grads[i] += pg[i];
    }
}

// Samples per chunk of the fused driver's passes without parameter gradients (forward
// only, or forward and backward to the input): a thread runs its samples through the
// nodes this many at a time, so that a Winograd layer with fewer tiles a sample than a
// block holds (ConvNet's 8x8 layer: 16 tiles) fills its blocks from several samples and
// its GEMMs load each transformed weight once for all of them (winograd.c). 1 where no
// such layer exists. A sample's values do not depend on its chunk: every kernel a chunk
// runs computes each sample as alone (the linear layers run a sample at a time, see
// Workspace.per_sample). A net with grouped convolutions takes batch_chunk's size.
static int chunk_size(const Net *net) {
    if (net->chunk > 0) return net->chunk;
    int s = batch_chunk(net);
    if (s) return s;
    s = 1;
    size_t biggest = 1; // the largest node, in values a sample
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        biggest = node_size(L) > biggest ? node_size(L) : biggest;
        if (L->kind != LAYER_CONV || L->groups != 1 || net->conv[l].fwd != CONV_ALGO_WINOGRAD) continue;
        int t = conv_plan_tile(net->conv_tile, L->in_w), tiles = ((L->in_h + t - 1) / t) * ((L->in_w + t - 1) / t);
        int want = (32 + tiles - 1) / tiles; // winograd.c's BLOCK_TILES
        s = want > s ? want : s;
    }
    // at most 4, and a chunk's largest node within 1 MB (half this machine's L2)
    size_t cap = ((size_t)1 << 18) / biggest;
    if ((size_t)s > cap) s = cap > 1 ? (int)cap : 1;
    return s < 4 ? s : 4;
}

int net_chunk_size(const Net *net) { return chunk_size(net); }

// the cached per-thread workspace of chunks
static Workspace *ws_thread_chunk(Net *net, int t) {
    int S = chunk_size(net);
    Workspace *w = net->ws_chunk[t];
    if (w && w->n == S) return w;
    ws_free(w);
    net->ws_chunk[t] = w = ws_alloc(net, S, 1, 0, 0);
    if (t >= net->n_ws_chunk) net->n_ws_chunk = t + 1;
    if (w) w->per_sample = 1;
    return w;
}

// the forward-only view of a thread's workspace (see Workspace.act_fwd)
static void ws_forward_view(const Workspace *w, Workspace *v) {
    *v = *w;
    v->act = w->act_fwd;
    v->fwd_only = 1;
}

// How a pass without parameter gradients splits a batch of B: into chunks of
// chunk_size(net) samples (the last one shorter) that the threads take in turn, each
// thread the next one left, so that a thread the machine's other jobs hold up delays the
// others by one chunk at most; a batch too small to give every thread a whole chunk in
// chunks of B / threads (rounded up); a batch of one sample, shared by the threads (its
// kernels split the work, never a sum). A sample's result is the same on any thread and
// in any chunk, except in the layers that run over groups of samples by sgemm
// (batch_chunk: conv_batch.c), where the BLAS's rounding may follow a sample's place in
// its group (OpenBLAS's Zen kernels do: an input gradient's last bits). For such a net a
// small batch is split by CHUNK_SPLIT instead of the thread count, so that the chunks, and
// with them every value, are the same for any number of threads.
#define CHUNK_SPLIT 4
typedef struct {
    int n_chunks, size, threads;
} ChunkPlan;

static ChunkPlan chunk_plan(const Net *net, int B) {
    ChunkPlan c = {0, 1, thread_count(B)};
    if (B <= 1) return c; // n_chunks 0: the shared path
    c.size = chunk_size(net);
    int split = batch_chunk(net) ? CHUNK_SPLIT : c.threads;
    if ((long)c.size * split > B) c.size = (B + split - 1) / split;
    c.n_chunks = (B + c.size - 1) / c.size;
    return c;
}

// a forward-only chunk of n samples from b up to node `last`, on workspace w (w->n >= n)
static void forward_chunk(Net *net, Workspace *w, const float *x, int b, int n, int last, float *out, size_t K) {
    size_t in = net_in_size(net);
    Workspace v;
    ws_forward_view(w, &v);
    const float *xb = x + b * in;
    if (net->normalize) net_normalize_input(net, v.x0, xb, n), xb = v.x0;
    const float *o = chunk_forward_to(net, &v, xb, n, 0, last);
    memcpy(out + (size_t)b * K, o, sizeof(float) * K * n);
}

// samples [b, b + n) of a fb_chunk pass (defined below)
static void fb_chunk(Net *net, Workspace *w, const float *x, int b, int n, NetBackward *nb, float *pgrads,
                     double *loss);

// what run_chunks does with each chunk: a forward pass up to node `last` into out, or (nb
// set) forward + backward to the input with the losses per sample into losses
typedef struct {
    const float *x;
    int last;
    float *out;
    size_t K;
    NetBackward *nb;
    double *losses;
} ChunkJob;

static void chunk_job(Net *net, Workspace *w, int b, int n, const ChunkJob *j) {
    if (j->nb) fb_chunk(net, w, j->x, b, n, j->nb, NULL, j->losses);
    else forward_chunk(net, w, j->x, b, n, j->last, j->out, j->K);
}

// a pass of B samples without parameter gradients, in the chunks of chunk_plan
static int run_chunks(Net *net, int B, const ChunkJob *j, Err *e) {
    ChunkPlan c = chunk_plan(net, B);
    for (int t = 0; t < c.threads; t++)
        if (!ws_thread_chunk(net, t)) return err_set(e, "out of memory for thread workspaces");
    if (c.n_chunks) {
#pragma omp parallel num_threads(c.threads)
        {
            Workspace *w = net->ws_chunk[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < c.n_chunks; i++) {
                int b = i * c.size;
                chunk_job(net, w, b, B - b < c.size ? B - b : c.size, j);
            }
        }
    } else if (B == 1) {
        chunk_job(net, net->ws_chunk[0], 0, 1, j); // on all threads
    }
    return 0;
}

// a forward-only pass of B samples up to node `last` (the fused driver)
static int forward_fused(Net *net, const float *x, int B, int last, float *out, Err *e) {
    ChunkJob j = {.x = x, .last = last, .out = out, .K = net_node_size(net, last)};
    if (run_chunks(net, B, &j, e)) return -1;
    net->n_forward += (uint64_t)B;
    return 0;
}

int net_forward(Net *net, const float *x, int B, float *logits, Err *e) {
    if (conv_update(net, 0, e)) return -1;
    return forward_fused(net, x, B, net->n_layers - 1, logits, e);
}

// BatchNorm in training mode couples the samples: the batch runs node by node in one
// workspace (torch.no_grad() in train mode)
static int forward_node_train(Net *net, const float *x, int B, int node, float *out_node, Err *e) {
    Workspace *w = ws_alloc(net, B, 1, 0, 0);
    if (!w) return err_set(e, "out of memory for a batch of %d in training mode", B);
    const float *in0 = x;
    if (net->normalize) net_normalize_input(net, w->x0, x, B), in0 = w->x0;
    const float *o = chunk_forward_to(net, w, in0, B, 1, node);
    memcpy(out_node, o, sizeof(float) * (size_t)B * net_node_size(net, node));
    ws_free(w);
    net->n_forward += (uint64_t)B;
    return 0;
}

int net_forward_node(Net *net, const float *x, int B, int node, float *out_node, Err *e) {
    if (node < 0 || node >= net->n_layers) return err_set(e, "no node %d in %s", node, net->arch);
    if (conv_update(net, 0, e)) return -1;
    if (net->train && net_has_batchnorm(net)) return forward_node_train(net, x, B, node, out_node, e);
    return forward_fused(net, x, B, node, out_node, e);
}

// over the tape: BatchNorm in training mode couples the samples of the batch
static int forward_backward_layerwise(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    size_t in = net_in_size(net);
    int K = net->n_classes, nvec = nb->nvec, out = net->n_layers - 1;
    if (net_tape_forward(net, &net->tape, x, B, net->train, e)) return -1;
    NetTape *t = net->tape;
    const float *logits = net_tape_out(t, out);
    float *dl = xmalloc(sizeof(float) * (size_t)B * nvec * K);
    float *dxv = nvec > 1 && nb->dx ? xmalloc(sizeof(float) * B * in) : NULL;
    if (!dl || (nvec > 1 && nb->dx && !dxv)) {
        xfree(dl), xfree(dxv);
        return err_set(e, "out of memory for a Jacobian of %d outputs", nvec);
    }
    double loss = 0.0;
    for (int b = 0; b < B; b++) loss += nb->loss(nb->ctx, b, logits + (size_t)b * K, dl + (size_t)b * nvec * K);
    if (nb->logits) memcpy(nb->logits, logits, sizeof(float) * B * K);
    int rc = 0;
    for (int v = 0; v < nvec && rc == 0; v++) {
        float *g = net_tape_grad(t, out);
        if (!g) {
            rc = err_set(e, "out of memory for the gradients of a batch of %d", B);
            break;
        }
        for (int b = 0; b < B; b++) memcpy(g + (size_t)b * K, dl + ((size_t)b * nvec + v) * K, sizeof(float) * K);
        rc = net_tape_backward(net, t, nvec > 1 ? dxv : nb->dx, nb->param_grads, e);
        if (rc == 0 && dxv)
            for (int b = 0; b < B; b++) memcpy(nb->dx + ((size_t)b * nvec + v) * in, dxv + (size_t)b * in, sizeof(float) * in);
    }
    xfree(dl), xfree(dxv);
    nb->loss_sum = loss;
    return rc;
}

// ----------------------------------------------------------------------------
// BatchNorm in training mode, one sample at a time between the batch-wide reductions
//
// A BatchNorm node in training mode needs its input's statistics over the whole batch:
// a barrier. Every other node depends only on its own sample. Node l's level is the
// number of such barriers on its longest path from the input (a BatchNorm node is one
// more than its input; any other node the maximum of its inputs'). Forward runs level by
// level: the statistics of the level's BatchNorm nodes over the batch, then, sample by
// sample and in parallel over samples, every node of the level, as the fused driver does,
// so a sample's BN-apply -> ReLU -> conv chain stays in cache. Backward mirrors it from
// the top level down: the per-sample pass of a level leaves the output gradients of its
// BatchNorm nodes complete, their two batch sums are taken, and the next level's
// per-sample pass starts each sample with those nodes' input gradients. All outputs and
// the gradients of the live levels are kept for the whole batch (in the cached tape's
// workspace). The BatchNorm arithmetic is batchnorm_forward/_backward's own, split at
// the reductions; parameter gradients of the other nodes go to per-thread copies reduced
// in thread order (deterministic for a thread count), as in the fused driver.

static void bn_levels(const Net *net, int *lev, int *max_lev) {
    int P = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        int v = 0;
        for (int j = 0; j < L->n_in; j++)
            if (L->in[j] >= 0 && lev[L->in[j]] > v) v = lev[L->in[j]];
        if (L->kind == LAYER_BATCHNORM) v++;
        lev[l] = v;
        if (v > P) P = v;
    }
    *max_lev = P;
}

static int forward_backward_bn_train(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    int nl = net->n_layers, K = net->n_classes, out = nl - 1, nt = thread_count(B);
    size_t in = net_in_size(net);
    NetTape *t = net->tape;
    if (t && (t->net != net || t->B != B || t->n_layers != nl)) net_tape_free(t), net->tape = t = NULL;
    if (!t) {
        t = xcalloc(sizeof(*t));
        if (!t || !(t->w = ws_alloc(net, B, 1, 0, 1))) {
            xfree(t);
            return err_set(e, "out of memory for the activations of a batch of %d", B);
        }
        t->net = net, t->B = B, t->n_layers = nl;
        net->tape = t;
    }
    for (int th = 0; th < nt; th++)
        if (!ws_thread(net, th, 1, 1, nb->param_grads)) return err_set(e, "out of memory for thread workspaces");
    // samples a step of the per-sample passes: one, or batch_chunk's (grouped convolutions)
    int c = block_chunk(net, B, nt);
    Workspace *w = t->w;
    for (int l = 0; l < nl; l++)
        if (w->grad[l]) pool_give(w, w->grad[l]), w->grad[l] = NULL;
    memset(w->live, 0, (size_t)nl + 1);
    t->train = 1;
    int *lev = xmalloc(sizeof(int) * 3 * (size_t)nl), P;
    float *coef = NULL;
    size_t n_coef = 0;
    for (int l = 0; l < nl; l++)
        if (net->layers[l].kind == LAYER_BATCHNORM) n_coef += 4 * (size_t)net->layers[l].in_c;
    coef = xmalloc(sizeof(float) * (n_coef ? n_coef : 1));
    if (!lev || !coef) {
        xfree(lev), xfree(coef);
        return err_set(e, "out of memory");
    }
    int *first = lev + nl, *coef_at = lev + 2 * nl;
    bn_levels(net, lev, &P);
    for (int l = 0, off = 0; l < nl; l++) {
        coef_at[l] = off;
        if (net->layers[l].kind == LAYER_BATCHNORM) off += 4 * net->layers[l].in_c;
    }
    if (net->normalize) net_normalize_input(net, w->x0, x, B);
    else memcpy(w->x0, x, sizeof(float) * B * in);
    const float *in0 = w->x0;

    // forward, level by level
    for (int p = 0; p <= P; p++) {
        for (int l = 0; l < nl; l++) {
            Layer *L = &net->layers[l];
            if (lev[l] != p || L->kind != LAYER_BATCHNORM) continue;
            batchnorm_stats(w->stats[l], w->stats[l] + L->in_c, net->buffers + L->rm, net->buffers + L->rv,
                            node_in(w, in0, L->in[0]), B, L->in_c, L->in_h * L->in_w, L->eps, L->momentum);
            L->num_batches_tracked++;
        }
#pragma omp parallel num_threads(nt)
        {
            int th = omp_get_thread_num(), lo = (int)((long)B * th / nt), hi = (int)((long)B * (th + 1) / nt);
            for (int b = lo; b < hi; b += c)
                for (int l = 0; l < nl; l++)
                    if (lev[l] == p) node_forward(net, w, l, in0, b, hi - b < c ? hi - b : c, 1, 1);
        }
    }
    net->dropout_step++;

    // the loss, and the output's gradient as the seed
    int rc = 0;
    float *g_out = grad_target(net, w, out, B, 0);
    if (!g_out) {
        xfree(lev), xfree(coef);
        return err_set(e, "out of memory for the gradients of a batch of %d", B);
    }
    const float *logits = w->act[out];
    double losses[256] = {0};
#pragma omp parallel num_threads(nt)
    {
        int th = omp_get_thread_num(), lo = (int)((long)B * th / nt), hi = (int)((long)B * (th + 1) / nt);
        for (int b = lo; b < hi; b++) losses[th] += nb->loss(nb->ctx, b, logits + (size_t)b * K, g_out + (size_t)b * K);
    }
    double loss = 0.0;
    for (int th = 0; th < nt; th++) loss += losses[th];
    if (nb->logits) memcpy(nb->logits, logits, sizeof(float) * B * K);

    // when each node's gradient buffer is first written: the highest level of its readers
    for (int l = 0; l < nl; l++) first[l] = -1;
    first[out] = P;
    for (int l = 0; l < nl; l++) {
        const Layer *L = &net->layers[l];
        for (int j = 0; j < L->n_in; j++)
            if (L->in[j] >= 0 && lev[l] > first[L->in[j]]) first[L->in[j]] = lev[l];
    }
    int want_dx = nb->dx != NULL;
    if (want_dx) memset(w->dx0, 0, sizeof(float) * B * in);
    for (int th = 0; th < nt && nb->param_grads; th++)
        memset(((Workspace *)net->ws[th])->pgrads, 0, sizeof(float) * net->n_params);
    for (int p = P; p >= 0 && rc == 0; p--) {
        for (int l = 0; l < nl && rc == 0; l++) // buffers that receive gradient from this level on
            if (first[l] == p && l != out && !grad_target(net, w, l, B, 0)) rc = -1;
        if (rc) break;
        // the batch sums of the next level's BatchNorm nodes, whose output gradients are complete
        for (int l = 0; l < nl; l++) {
            Layer *L = &net->layers[l];
            if (lev[l] != p + 1 || L->kind != LAYER_BATCHNORM || !w->live[1 + l]) continue;
            float *dgm = nb->param_grads ? net->grads + L->w : NULL, *dbt = nb->param_grads ? net->grads + L->b : NULL;
            batchnorm_backward_sums(coef + coef_at[l], dgm, dbt, w->grad[l], w->stats[l], w->stats[l] + L->in_c,
                                    node_in(w, in0, L->in[0]), net->params + L->w, B, L->in_c, L->in_h * L->in_w, 1);
        }
#pragma omp parallel num_threads(nt)
        {
            int th = omp_get_thread_num(), lo = (int)((long)B * th / nt), hi = (int)((long)B * (th + 1) / nt);
            float *pg = nb->param_grads ? ((Workspace *)net->ws[th])->pgrads : NULL;
            for (int b = lo; b < hi; b += c) {
                int n = hi - b < c ? hi - b : c;
                for (int l = 0; l < nl; l++) { // the next level's BatchNorm nodes: input gradients
                    Layer *L = &net->layers[l];
                    if (lev[l] != p + 1 || L->kind != LAYER_BATCHNORM || !w->live[1 + l]) continue;
                    int j = L->in[0];
                    size_t isz = net_node_size(net, j), osz = node_size(L);
                    float *din = j < 0 ? (want_dx ? w->dx0 : NULL) : w->grad[j];
                    if (din)
                        batchnorm_backward_apply(din + b * isz, coef + coef_at[l], w->grad[l] + b * osz,
                                                 node_in(w, in0, j) + b * isz, n, L->in_c, L->in_h * L->in_w);
                }
                for (int l = nl - 1; l >= 0; l--) { // this level's other nodes, last first
                    Layer *L = &net->layers[l];
                    if (lev[l] != p || L->kind == LAYER_BATCHNORM || !w->live[1 + l]) continue;
                    float *d[2] = {NULL, NULL};
                    for (int k = 0; k < L->n_in; k++) {
                        int j = L->in[k];
                        float *base = j < 0 ? (want_dx ? w->dx0 : NULL) : w->grad[j];
                        d[k] = base ? base + (size_t)b * net_node_size(net, j) : NULL;
                    }
                    node_backward(net, w, l, in0, b, n, w->grad[l] + (size_t)b * node_size(L), d[0], d[1], pg, 1);
                }
            }
        }
        // done with: this level's nodes but BatchNorm ones, and the next level's BatchNorm
        for (int l = 0; l < nl; l++) {
            int bn = net->layers[l].kind == LAYER_BATCHNORM;
            if (w->grad[l] && (bn ? lev[l] == p + 1 : lev[l] == p)) {
                pool_give(w, w->grad[l]), w->grad[l] = NULL;
                w->live[1 + l] = 0;
            }
        }
    }
    for (int l = 0; l < nl; l++) // on failure, or nodes that no level released
        if (w->grad[l]) pool_give(w, w->grad[l]), w->grad[l] = NULL;
    memset(w->live, 0, (size_t)nl + 1);
    xfree(lev), xfree(coef);
    if (rc) return err_set(e, "out of memory for the gradients of a batch of %d", B);
    if (nb->param_grads) pgrads_reduce(net, nt);
    if (want_dx) {
        w->live[0] = 1;
        input_grad_out(net, w, nb->dx, B);
    }
    nb->loss_sum = loss;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B;
    return 0;
}

// sample b's forward and backward passes on workspace w; returns its loss
static double fb_sample(Net *net, Workspace *w, const float *x, int b, NetBackward *nb, float *pgrads) {
    size_t in = net_in_size(net);
    int K = net->n_classes, out = net->n_layers - 1;
    const float *xb = x + b * in;
    if (net->normalize) net_normalize_input(net, w->x0, xb, 1), xb = w->x0;
    const float *o = chunk_forward(net, w, xb, 1, 0);
    if (nb->logits) memcpy(nb->logits + (size_t)b * K, o, sizeof(float) * K);
    double loss = nb->loss(nb->ctx, b, o, w->dlogits);
    for (int v = 0; v < nb->nvec; v++) {
        w->grad[out] = w->dlogits + (size_t)v * K;
        w->live[1 + out] = 1;
        graph_backward(net, w, xb, 1, nb->dx != NULL, pgrads, 0);
        if (nb->dx) input_grad_out(net, w, nb->dx + ((size_t)b * nb->nvec + v) * in, 1);
    }
    return loss;
}

// samples [b, b + n) of a pass with one gradient vector, as one chunk on workspace w
// (w->n >= n), parameter gradients (when pgrads is set) added into pgrads; their losses
// into loss[b ..]
static void fb_chunk(Net *net, Workspace *w, const float *x, int b, int n, NetBackward *nb, float *pgrads,
                     double *loss) {
    size_t in = net_in_size(net);
    int K = net->n_classes, out = net->n_layers - 1;
    const float *xb = x + b * in;
    if (net->normalize) net_normalize_input(net, w->x0, xb, n), xb = w->x0;
    const float *o = chunk_forward(net, w, xb, n, 0);
    if (nb->logits) memcpy(nb->logits + (size_t)b * K, o, sizeof(float) * K * n);
    for (int j = 0; j < n; j++) loss[b + j] = nb->loss(nb->ctx, b + j, o + (size_t)j * K, w->dlogits + (size_t)j * K);
    w->grad[out] = w->dlogits;
    w->live[1 + out] = 1;
    graph_backward(net, w, xb, n, nb->dx != NULL, pgrads, 0);
    if (nb->dx) input_grad_out(net, w, nb->dx + (size_t)b * in, n);
}

// A pass with parameter gradients on a net with grouped convolutions (batch_chunk): each
// thread runs its block of samples (as fb_sample's path) c at a time into its own
// partial gradients, reduced in thread order; the losses are summed in sample order.
static int fb_param_chunks(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    int nt = thread_count(B), c = block_chunk(net, B, nt);
    for (int t = 0; t < nt; t++)
        if (!ws_thread(net, t, c, 1, 1)) return err_set(e, "out of memory for thread workspaces");
    double *losses = xcalloc(sizeof(double) * (size_t)(B > 0 ? B : 1));
    if (!losses) return err_set(e, "out of memory");
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        Workspace *w = net->ws[t];
        memset(w->pgrads, 0, sizeof(float) * net->n_params);
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b += c) fb_chunk(net, w, x, b, hi - b < c ? hi - b : c, nb, w->pgrads, losses);
    }
    double loss = 0.0;
    for (int b = 0; b < B; b++) loss += losses[b];
    xfree(losses);
    pgrads_reduce(net, nt);
    nb->loss_sum = loss;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B;
    return 0;
}

int net_forward_backward(Net *net, const float *x, int B, NetBackward *nb, Err *e) {
    if (nb->nvec < 1) nb->nvec = 1;
    if (nb->param_grads && nb->nvec != 1) return err_set(e, "parameter gradients need exactly one vector per sample");
    if (nb->param_grads && net_alloc_grads(net, e)) return -1;
    if (conv_update(net, 1, e)) return -1;
    if (net->train && net_has_train_mode(net)) {
        // BatchNorm without dropout, one gradient vector: the per-sample BatchNorm path
        int dropout = 0;
        for (int l = 0; l < net->n_layers; l++) dropout |= net->layers[l].kind == LAYER_DROPOUT;
        if (!dropout && nb->nvec == 1 && !net->bn_layerwise) return forward_backward_bn_train(net, x, B, nb, e);
        return forward_backward_layerwise(net, x, B, nb, e);
    }

    // (parameter gradients: every sample on its thread, as training's reduction expects)
    int Bt = nb->param_grads ? B : per_thread_samples(B), nvec = nb->nvec, nt = thread_count(Bt);
    if (nb->param_grads && batch_chunk(net)) return fb_param_chunks(net, x, B, nb, e); // nvec is 1 here
    if (!nb->param_grads && nvec == 1) { // in chunks (see chunk_plan)
        double *losses = xcalloc(sizeof(double) * (size_t)B); // per sample, summed in order
        if (!losses) return err_set(e, "out of memory");
        ChunkJob j = {.x = x, .nb = nb, .losses = losses};
        if (run_chunks(net, B, &j, e)) {
            xfree(losses);
            return -1;
        }
        double loss = 0.0;
        for (int b = 0; b < B; b++) loss += losses[b];
        xfree(losses);
        nb->loss_sum = loss;
        net->n_forward += (uint64_t)B;
        net->n_backward += (uint64_t)B;
        return 0;
    }
    for (int t = 0; t < nt; t++)
        if (!ws_thread(net, t, 1, nvec, nb->param_grads)) return err_set(e, "out of memory for thread workspaces");
    double losses[256] = {0};
#pragma omp parallel num_threads(nt) if (Bt > 0)
    {
        int t = omp_get_thread_num();
        Workspace *w = net->ws[t];
        if (nb->param_grads) memset(w->pgrads, 0, sizeof(float) * net->n_params);
        int lo = (int)((long)Bt * t / nt), hi = (int)((long)Bt * (t + 1) / nt);
        for (int b = lo; b < hi; b++) losses[t] += fb_sample(net, w, x, b, nb, nb->param_grads ? w->pgrads : NULL);
    }
    for (int b = Bt; b < B; b++) losses[0] += fb_sample(net, net->ws[0], x, b, nb, NULL); // each on all threads
    double loss = 0.0;
    for (int t = 0; t < nt; t++) loss += losses[t];
    if (nb->param_grads) pgrads_reduce(net, nt);
    nb->loss_sum = loss;
    net->n_forward += (uint64_t)B;
    net->n_backward += (uint64_t)B * nvec;
    return 0;
}
