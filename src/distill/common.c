/*
 * common.c: what distillation methods share (see distill.h): random draws through the
 * run's per-iteration generator (or a test's fixed values), real batches, Siamese DSA,
 * fresh networks, and checkpoint pieces.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../models/convnet.h"
#include "distill.h"

int distill_choose(DistillRun *r, DistillDrawKind kind, int tag, int n, int k, int *out) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    if (r->ov && r->ov->choose && r->ov->choose(r->ov->ctx, kind, tag, n, k, out) == 0) return k;
    // a partial Fisher-Yates shuffle: the first k of a uniformly random permutation
    int *perm = r->perm;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)rng_below(&r->rng, (uint32_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j], perm[j] = t;
        out[i] = perm[i];
    }
    return k;
}

static void gather_real(const DistillRun *r, const int *idx, int n, float *x) {
    size_t D = (size_t)r->C * r->H * r->W;
    for (int i = 0; i < n; i++) dataset_to_float(r->real, idx[i], 1, x + (size_t)i * D, 1);
}

int distill_real_class(DistillRun *r, int c, int n, float *x) {
    int k = distill_choose(r, DRAW_REAL_CLASS, c, r->class_n[c], n, r->pick);
    for (int i = 0; i < k; i++) r->idx[i] = r->class_idx[c][r->pick[i]];
    gather_real(r, r->idx, k, x);
    return k;
}

int distill_real_any(DistillRun *r, int n, float *x, int *y) {
    // IDM flattens indices_class (class order) and permutes that list
    int total = 0;
    for (int c = 0; c < r->K; c++) total += r->class_n[c];
    int k = distill_choose(r, DRAW_REAL_ANY, 0, total, n, r->pick);
    for (int i = 0; i < k; i++) {
        int j = r->pick[i], c = 0;
        while (j >= r->class_n[c]) j -= r->class_n[c++];
        r->idx[i] = r->class_idx[c][j];
        if (y) y[i] = c;
    }
    gather_real(r, r->idx, k, x);
    return k;
}

void distill_dsa(DistillRun *r, const DsaStrategy *st, const DsaConfig *cfg, DsaDraw *d) {
    if (r->ov && r->ov->dsa && r->ov->dsa(r->ov->ctx, d) == 0) return;
    dsa_draw(d, st, cfg, r->syn_h, r->syn_w, 1, &r->rng);
}

int distill_net_reinit(DistillRun *r, Net *net, Err *e) {
    int tag = r->nets_made++;
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        L->num_batches_tracked = 0;
        if (L->kind == LAYER_BATCHNORM) // a fresh BatchNorm: running mean 0, var 1
            for (int c = 0; c < L->in_c; c++) net->buffers[L->rm + c] = 0.0f, net->buffers[L->rv + c] = 1.0f;
    }
    if (r->ov && r->ov->net_init) {
        int h = r->ov->net_init(r->ov->ctx, net, tag);
        if (h < 0) return err_set(e, "the test's initial weights do not fit %s", net->arch);
        if (h == 0) return 0;
    }
    net_init_params(net, rng_u64(&r->rng));
    return 0;
}

int distill_net_create(DistillRun *r, Net *net, Err *e) {
    if (model_create(net, r->cfg->arch, r->syn_c, r->K, r->syn_h, r->syn_w, e)) return -1;
    net_set_normalize(net, 0, NULL, NULL);
    return 0;
}

void distill_observe_grad(DistillRun *r, int tag, const float *g, size_t n) {
    if (r->ov && r->ov->grad) r->ov->grad(r->ov->ctx, tag, g, n);
}

int distill_net_new(DistillRun *r, Net *net, Err *e) {
    if (distill_net_create(r, net, e)) return -1;
    if (distill_net_reinit(r, net, e)) {
        net_free(net);
        return -1;
    }
    return 0;
}

double distill_mean_l2(const float *er, int nr, const float *es, int ns, size_t E, float *g, float *scratch) {
    float *mr = scratch, *ms = scratch + E;
    double l = 0;
    for (size_t j = 0; j < E; j++) {
        double a = 0, b = 0;
        for (int i = 0; i < nr; i++) a += er[(size_t)i * E + j];
        for (int i = 0; i < ns; i++) b += es[(size_t)i * E + j];
        mr[j] = (float)(a / nr), ms[j] = (float)(b / ns);
        float d = mr[j] - ms[j];
        l += (double)d * d;
        float gj = -2.0f * d / (float)ns;
        for (int i = 0; i < ns; i++) g[(size_t)i * E + j] = gj;
    }
    return l;
}

size_t distill_syn_size(const DistillRun *r) { return (size_t)r->syn_c * r->syn_h * r->syn_w; }

float *distill_syn_class(DistillRun *r, int c) { return r->syn + (size_t)c * r->ipc * distill_syn_size(r); }

// ----------------------------------------------------------------------------
// checkpoint pieces

const Tensor *distill_ck_get(const TensorDict *ck, const char *name, DType dt, size_t numel, Err *e) {
    const Tensor *t = tensordict_get(ck, name);
    if (!t) {
        err_set(e, "the checkpoint has no '%s'", name);
        return NULL;
    }
    if (t->dtype != dt || t->numel != numel) {
        err_set(e, "the checkpoint's '%s' is %s with %zu values, expected %s with %zu", name, dtype_name(t->dtype),
                t->numel, dtype_name(dt), numel);
        return NULL;
    }
    return t;
}

int distill_ck_add(TensorDict *ck, const char *name, DType dt, int ndim, const int64_t *shape, const void *data, Err *e) {
    Tensor t;
    if (tensor_init(&t, dt, ndim, shape, e)) return -1;
    if (t.numel) memcpy(t.data, data, tensor_nbytes(&t));
    if (tensordict_add(ck, name, &t, e)) {
        tensor_free(&t);
        return -1;
    }
    return 0;
}

static int add_f32(TensorDict *ck, const char *name, const float *x, size_t n, Err *e) {
    int64_t shape[1] = {(int64_t)n};
    return distill_ck_add(ck, name, DTYPE_F32, 1, shape, x, e);
}

static int add_i64(TensorDict *ck, const char *name, const int64_t *x, size_t n, Err *e) {
    int64_t shape[1] = {(int64_t)n};
    return distill_ck_add(ck, name, DTYPE_I64, 1, shape, x, e);
}

int distill_optim_save(const Optim *o, const char *prefix, TensorDict *ck, Err *e) {
    char name[96];
    int64_t step = o->step;
    snprintf(name, sizeof(name), "%s.step", prefix);
    if (add_i64(ck, name, &step, 1, e)) return -1;
    snprintf(name, sizeof(name), "%s.m", prefix);
    if (add_f32(ck, name, o->m, o->m ? o->n : 0, e)) return -1;
    if (o->kind == OPTIM_ADAM) {
        snprintf(name, sizeof(name), "%s.v", prefix);
        if (add_f32(ck, name, o->v, o->v ? o->n : 0, e)) return -1;
    }
    return 0;
}

int distill_optim_load(Optim *o, const char *prefix, const TensorDict *ck, Err *e) {
    char name[96];
    snprintf(name, sizeof(name), "%s.step", prefix);
    const Tensor *st = distill_ck_get(ck, name, DTYPE_I64, 1, e);
    if (!st) return -1;
    o->step = (long)((int64_t *)st->data)[0];
    snprintf(name, sizeof(name), "%s.m", prefix);
    const Tensor *m = tensordict_get(ck, name);
    if (!m || m->dtype != DTYPE_F32 || (m->numel != o->n && m->numel != 0))
        return err_set(e, "the checkpoint's '%s' does not fit the optimiser (%zu values)", name, o->n);
    if (m->numel && o->m) memcpy(o->m, m->data, sizeof(float) * o->n);
    if (o->kind == OPTIM_ADAM) {
        snprintf(name, sizeof(name), "%s.v", prefix);
        const Tensor *v = tensordict_get(ck, name);
        if (!v || v->dtype != DTYPE_F32 || (v->numel != o->n && v->numel != 0))
            return err_set(e, "the checkpoint's '%s' does not fit the optimiser", name);
        if (v->numel && o->v) memcpy(o->v, v->data, sizeof(float) * o->n);
    }
    return 0;
}

int distill_net_save(const Net *net, const char *prefix, TensorDict *ck, Err *e) {
    char name[96];
    snprintf(name, sizeof(name), "%s.params", prefix);
    if (add_f32(ck, name, net->params, net->n_params, e)) return -1;
    snprintf(name, sizeof(name), "%s.buffers", prefix);
    if (add_f32(ck, name, net->buffers, net->n_buffers, e)) return -1;
    int64_t nbt[NET_MAX_LAYERS];
    for (int l = 0; l < net->n_layers; l++) nbt[l] = net->layers[l].num_batches_tracked;
    snprintf(name, sizeof(name), "%s.nbt", prefix);
    return add_i64(ck, name, nbt, (size_t)net->n_layers, e);
}

int distill_net_load(Net *net, const char *prefix, const TensorDict *ck, Err *e) {
    char name[96];
    snprintf(name, sizeof(name), "%s.params", prefix);
    const Tensor *p = distill_ck_get(ck, name, DTYPE_F32, net->n_params, e);
    if (!p) return -1;
    snprintf(name, sizeof(name), "%s.buffers", prefix);
    const Tensor *b = distill_ck_get(ck, name, DTYPE_F32, net->n_buffers, e);
    if (!b) return -1;
    snprintf(name, sizeof(name), "%s.nbt", prefix);
    const Tensor *n = distill_ck_get(ck, name, DTYPE_I64, (size_t)net->n_layers, e);
    if (!n) return -1;
    memcpy(net->params, p->data, sizeof(float) * net->n_params);
    if (net->n_buffers) memcpy(net->buffers, b->data, sizeof(float) * net->n_buffers);
    for (int l = 0; l < net->n_layers; l++) net->layers[l].num_batches_tracked = ((int64_t *)n->data)[l];
    return 0;
}
