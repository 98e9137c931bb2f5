/*
 * recover.c: the recover iteration of the decoupled methods, see recover.h.
 *
 * References (read as the specification; the PyTorch ports are in
 * tests/scripts/gen_decoupled_fixtures.py):
 *   - SRe2L (Yin et al., arXiv:2306.13092), VILA-Lab/SRe2L `SRe2L/(*small_dataset)/
 *     recover_cifar.py` and utils.py: BNFeatureHook (biased variance of the BN input over
 *     batch and space; torch.norm of the differences, not their squares), lr_cosine_policy,
 *     Adam(betas [0.5, 0.9], eps 1e-8), clip_cifar after every step;
 *   - CDA (Yin & Shen, arXiv:2311.18838), `CDA/recover_cda_*.py`: the same loss after a
 *     RandomResizedCrop + flip of the whole batch;
 *   - G-VBSM (Shao et al., arXiv:2311.17950), shaoshitong/G_VBSM_Dataset_Condensation
 *     `Branch_CIFAR_10/recover/`: BNFeatureHook with training_momentum (the loss takes the
 *     value of the momentum average and the gradient of the current batch statistic, their
 *     `dd + var - var.detach()`), ConvFeatureHook (channel and 4x4-patch statistics of every
 *     Conv2d input after F.interpolate to multiples of 4, dropped when random.random() >
 *     1 - drop_rate), the eigenvalue term KL(softmax(eig / tau) || softmax(eig)) of each
 *     class's Gram matrix of AdaptiveAvgPool2d((32, 32)) inputs. Quirk reproduced (it shapes
 *     the first iteration of every batch): a hook's first call keeps the current statistic,
 *     graph and all, as its average, so that iteration's statistics gradient is doubled;
 *     RecoverLoss.fix_first_grad gives the single gradient instead;
 *   - DELT (Shen et al., arXiv:2411.19946), VILA-Lab/DELT `recover/recover.py`: the same as
 *     CDA on the round's active subset, one Adam over the whole batch.
 * Statistics and the small per-class eigenproblems are computed in double (LAPACK dsyev from
 * OpenBLAS); the reference computes them in float32, which the tolerance of the step test
 * (1e-4 relative) covers.
 */
#include "recover.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/augment.h"

// LAPACK (OpenBLAS exports it): symmetric eigendecomposition, column-major
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

struct RecoverWork {
    Net *net;
    NetTape *tape;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int n_hooks, Bmax;
    size_t D;
    float *xs, *xa, *xb, *xj; // gathered, cropped, flipped, rolled (the teacher's input)
    float *g, *ga, *gb, *gin; // gradients on the way back; gin: d loss / d xj from input hooks
    float *tmp, *gtmp;        // resize scratch of the patch statistics
    float *pool, *gpool;      // the eigenvalue term's pooled inputs
    double *dbl;              // per-hook statistics scratch
};

int recover_patches(int H, int W) {
    int nh = (H + 3) / 4 * 4, nw = (W + 3) / 4 * 4; // div_four_mul
    return (nh / 4) * (nw / 4);
}

// the node whose output a layer reads (the graph Net names it; -1: the model input)
static int layer_input_node(const Net *net, int l) { return net->layers[l].in[0]; }

int recover_hooks(const Net *net, int conv, RecoverHook *hooks, int *n, Err *e) {
    int k = 0, bn = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        int is_bn = L->kind == LAYER_BATCHNORM, is_conv = L->kind == LAYER_CONV;
        if (!is_bn && !(conv && is_conv)) continue;
        if (k >= RECOVER_MAX_HOOKS) return err_set(e, "%s has more than %d hooked layers", net->arch, RECOVER_MAX_HOOKS);
        hooks[k++] = (RecoverHook){.kind = is_bn ? RECOVER_HOOK_BN : RECOVER_HOOK_CONV, .layer = l, .node = layer_input_node(net, l),
                                   .C = L->in_c, .H = L->in_h, .W = L->in_w};
        bn += is_bn;
    }
    if (!bn)
        return err_set(e, "the teacher %s has no BatchNorm layers, but recovery matches the running statistics of "
                          "BatchNorm layers (train the teacher with a BN architecture, e.g. ResNet18 or ConvNetBN)",
                       net->arch);
    *n = k;
    return 0;
}

void recover_work_free(RecoverWork *w) {
    if (!w) return;
    net_tape_free(w->tape);
    xfree(w->xs), xfree(w->xa), xfree(w->xb), xfree(w->xj);
    xfree(w->g), xfree(w->ga), xfree(w->gb), xfree(w->gin);
    xfree(w->tmp), xfree(w->gtmp), xfree(w->pool), xfree(w->gpool);
    free(w->dbl);
    free(w);
}

RecoverWork *recover_work_new(Net *net, const RecoverHook *hooks, int n_hooks, int B, Err *e) {
    RecoverWork *w = calloc(1, sizeof(*w));
    if (!w || n_hooks > RECOVER_MAX_HOOKS || B <= 0) {
        free(w);
        err_set(e, "bad recover workspace (%d images, %d hooks)", B, n_hooks);
        return NULL;
    }
    w->net = net;
    w->n_hooks = n_hooks;
    memcpy(w->hooks, hooks, sizeof(RecoverHook) * n_hooks);
    w->Bmax = B;
    w->D = net_in_size(net);
    size_t n = (size_t)B * w->D, big = 0;
    for (int h = 0; h < n_hooks; h++) {
        size_t s = (size_t)B * hooks[h].C * ((hooks[h].H + 3) / 4 * 4) * ((hooks[h].W + 3) / 4 * 4);
        big = s > big ? s : big;
    }
    size_t pool = (size_t)B * net->in_c * 64 * 64; // up to a 64-pixel pooled side
    float **bufs[] = {&w->xs, &w->xa, &w->xb, &w->xj, &w->g, &w->ga, &w->gb, &w->gin};
    int ok = 1;
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) ok &= (*bufs[i] = xmalloc(sizeof(float) * n)) != NULL;
    w->tmp = xmalloc(sizeof(float) * (big ? big : 1));
    w->gtmp = xmalloc(sizeof(float) * (big ? big : 1));
    w->pool = xmalloc(sizeof(float) * pool);
    w->gpool = xmalloc(sizeof(float) * pool);
    w->dbl = malloc(sizeof(double) * 8 * (size_t)(4096 + B * B));
    if (!ok || !w->tmp || !w->gtmp || !w->pool || !w->gpool || !w->dbl) {
        recover_work_free(w);
        err_set(e, "out of memory for recovering a batch of %d", B);
        return NULL;
    }
    return w;
}

double recover_cosine_lr(double base, int it, int total) { return 0.5 * (1.0 + cos(M_PI * it / total)) * base; }

int recover_adam_init(Optim *o, size_t n, float lr) {
    if (optim_init(o, OPTIM_ADAM, n, lr, 0.0f, 0.0f)) return -1;
    o->beta1 = 0.5f, o->beta2 = 0.9f, o->eps = 1e-8f;
    return 0;
}

void recover_update(Optim *adam, float *x, const float *grad, float lr, int B, int C, size_t plane, const float *mean,
                    const float *std) {
    adam->lr = lr;
    optim_step(adam, x, grad);
    for (int c = 0; c < C; c++) {
        // the bounds in double, then float, as torch.clamp takes the numpy float64 bound
        float lo = (float)(-(double)mean[c] / (double)std[c]), hi = (float)((1.0 - (double)mean[c]) / (double)std[c]);
        for (int b = 0; b < B; b++) {
            float *p = x + ((size_t)b * C + c) * plane;
            for (size_t i = 0; i < plane; i++) p[i] = p[i] < lo ? lo : p[i] > hi ? hi : p[i];
        }
    }
}

// ----------------------------------------------------------------------------
// statistics terms

// mean and biased variance per group, A's layout (B, C, HW) grouped by channel
static void channel_stats(const float *A, int B, int C, int HW, double *mean, double *var) {
    double N = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) s += A[((size_t)b * C + c) * HW + i];
        double m = s / N, q = 0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                double d = A[((size_t)b * C + c) * HW + i] - m;
                q += d * d;
            }
        mean[c] = m, var[c] = q / N;
    }
}

// 4x4 patches (u, v) of Z (B, C, H, W), H and W multiples of 4: stats over b, c and the patch
static void patch_stats(const float *Z, int B, int C, int H, int W, double *mean, double *var) {
    int U = H / 4, V = W / 4;
    double N = (double)B * C * 16;
    for (int u = 0; u < U; u++)
        for (int v = 0; v < V; v++) {
            double s = 0, q = 0;
            for (size_t bc = 0; bc < (size_t)B * C; bc++)
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) s += Z[bc * H * W + (size_t)(4 * u + i) * W + 4 * v + j];
            double m = s / N;
            for (size_t bc = 0; bc < (size_t)B * C; bc++)
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) {
                        double d = Z[bc * H * W + (size_t)(4 * u + i) * W + 4 * v + j] - m;
                        q += d * d;
                    }
            mean[u * V + v] = m, var[u * V + v] = q / N;
        }
}

// ||target - value||2 and its gradient d/d(stat) = -(target - value) / norm (the value being
// the statistic itself, or its densified average with the statistic's own gradient)
static double norm_term(const float *target, const double *value, int n, double *g) {
    double s = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)target[i] - value[i];
        s += d * d;
    }
    double nrm = sqrt(s);
    for (int i = 0; i < n; i++) g[i] = nrm > 0 ? -((double)target[i] - value[i]) / nrm : 0.0;
    return nrm;
}

// G-VBSM's momentum average (in float, as the no_grad update runs); returns the values in out
static void densify(float *state, int *init, const double *cur, int n, float mom, double *out) {
    for (int i = 0; i < n; i++) {
        state[i] = *init ? mom * state[i] + (1.0f - mom) * (float)cur[i] : (float)cur[i];
        out[i] = state[i];
    }
}

// dA += coef (gmean / N + gvar 2 (A - mean) / N) per channel
static void channel_backward(float *dA, const float *A, int B, int C, int HW, const double *mean, const double *gmean,
                             const double *gvar, double coef) {
    double N = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double a = coef * gmean[c] / N, b2 = coef * 2.0 * gvar[c] / N;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * C + c) * HW + i;
                dA[k] += (float)(a + b2 * (A[k] - mean[c]));
            }
    }
}

static void patch_backward(float *dZ, const float *Z, int B, int C, int H, int W, const double *mean,
                           const double *gmean, const double *gvar, double coef) {
    int U = H / 4, V = W / 4;
    double N = (double)B * C * 16;
    for (int u = 0; u < U; u++)
        for (int v = 0; v < V; v++) {
            int p = u * V + v;
            double a = coef * gmean[p] / N, b2 = coef * 2.0 * gvar[p] / N;
            for (size_t bc = 0; bc < (size_t)B * C; bc++)
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) {
                        size_t k = bc * H * W + (size_t)(4 * u + i) * W + 4 * v + j;
                        dZ[k] += (float)(a + b2 * (Z[k] - mean[p]));
                    }
        }
}

// one hook's term on its input A (B, C, H, W); adds coef * d term / dA into dA unless the
// hook is dropped. conv_index: the hook's position among the conv hooks.
static double hook_term(RecoverWork *w, const RecoverHook *hk, int hidx, int conv_index, const float *A, int B,
                        const RecoverLoss *cfg, double coef, float *dA) {
    Net *net = w->net;
    int C = hk->C, HW = hk->H * hk->W;
    double *mean = w->dbl, *var = mean + C, *gm = var + C, *gv = gm + C, *dm = gv + C, *dv = dm + C;
    channel_stats(A, B, C, HW, mean, var);
    HookState *st = cfg->densify && cfg->state ? &cfg->state[hidx] : NULL;
    const float *rm, *rv;
    if (hk->kind == RECOVER_HOOK_BN) {
        const Layer *L = &net->layers[hk->layer];
        rm = net->buffers + L->rm, rv = net->buffers + L->rv;
    } else {
        rm = cfg->conv[conv_index].mean, rv = cfg->conv[conv_index].var;
    }
    const double *vv = var, *vm = mean;
    if (st) {
        int init = st->init;
        densify(st->var, &init, var, C, cfg->momentum, dv);
        init = st->init;
        densify(st->mean, &init, mean, C, cfg->momentum, dm);
        vv = dv, vm = dm;
    }
    // The reference's first call stores the statistic itself as the average (`self.dd_var =
    // var` under no_grad keeps the graph), so its `dd + var - var.detach()` carries the
    // gradient twice in the hook's first iteration. Reproduced unless fix_first_grad.
    double gscale = st && !st->init && !cfg->fix_first_grad ? 2.0 : 1.0;
    double term = norm_term(rv, vv, C, gv) + norm_term(rm, vm, C, gm);
    channel_backward(dA, A, B, C, HW, mean, gm, gv, coef * gscale);
    if (hk->kind == RECOVER_HOOK_CONV) {
        int nh = (hk->H + 3) / 4 * 4, nw = (hk->W + 3) / 4 * 4, P = (nh / 4) * (nw / 4);
        const float *Z = A;
        int resized = nh != hk->H || nw != hk->W;
        if (resized) {
            augment_resized_crop_forward(w->tmp, A, B, C, hk->H, hk->W, 0, 0, hk->H, hk->W, nh, nw);
            Z = w->tmp;
        }
        double *pm = w->dbl + 6 * (size_t)C, *pv = pm + P, *gpm = pv + P, *gpv = gpm + P, *dpm = gpv + P,
               *dpv = dpm + P;
        patch_stats(Z, B, C, nh, nw, pm, pv);
        const double *ppm = pm, *ppv = pv;
        if (st) {
            int init = st->init;
            densify(st->pvar, &init, pv, P, cfg->momentum, dpv);
            init = st->init;
            densify(st->pmean, &init, pm, P, cfg->momentum, dpm);
            ppm = dpm, ppv = dpv;
        }
        term += norm_term(cfg->conv[conv_index].pmean, ppm, P, gpm) + norm_term(cfg->conv[conv_index].pvar, ppv, P, gpv);
        if (resized) {
            memset(w->gtmp, 0, sizeof(float) * (size_t)B * C * nh * nw);
            patch_backward(w->gtmp, Z, B, C, nh, nw, pm, gpm, gpv, coef * gscale);
            augment_resized_crop_backward(dA, w->gtmp, B, C, hk->H, hk->W, 0, 0, hk->H, hk->W, nh, nw);
        } else {
            patch_backward(dA, Z, B, C, nh, nw, pm, gpm, gpv, coef * gscale);
        }
    }
    if (st) st->init = 1;
    return term;
}

// G-VBSM's eigenvalue term over the classes of the batch: for each class, the Gram matrix of
// its rows of X (B, Dp), eigenvalues l, KL(softmax(l / tau) || softmax(l)) summed; adds
// coef * d / dX into dX
static double nuc_term(RecoverWork *w, const float *X, const int *y, int B, size_t Dp, double tau, double coef,
                       float *dX, Err *e, int *rc) {
    double total = 0;
    int *rows = malloc(sizeof(int) * B), *done = calloc(B, sizeof(int));
    double *G = malloc(sizeof(double) * (size_t)B * B), *lam = malloc(sizeof(double) * B),
           *gl = malloc(sizeof(double) * B), *dG = malloc(sizeof(double) * (size_t)B * B);
    int lwork = 3 * B + 64;
    double *work = malloc(sizeof(double) * lwork);
    if (!rows || !done || !G || !lam || !gl || !dG || !work) {
        *rc = err_set(e, "out of memory for the eigenvalue term");
        goto out;
    }
    for (int b0 = 0; b0 < B; b0++) {
        if (done[b0]) continue;
        int n = 0;
        for (int b = b0; b < B; b++)
            if (!done[b] && y[b] == y[b0]) rows[n++] = b, done[b] = 1;
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) {
                const float *a = X + (size_t)rows[i] * Dp, *c = X + (size_t)rows[j] * Dp;
                double s = 0;
                for (size_t k = 0; k < Dp; k++) s += (double)a[k] * c[k];
                G[i + (size_t)j * n] = G[j + (size_t)i * n] = s;
            }
        int info = 0;
        dsyev_("V", "U", &n, G, &n, lam, work, &lwork, &info);
        if (info) {
            *rc = err_set(e, "the eigendecomposition of a %dx%d Gram matrix failed (LAPACK info %d)", n, n, info);
            goto out;
        }
        // the reference takes float32 eigenvalues
        double mx = -INFINITY, mt = -INFINITY;
        for (int i = 0; i < n; i++) {
            lam[i] = (float)lam[i];
            mx = lam[i] > mx ? lam[i] : mx;
            mt = lam[i] / tau > mt ? lam[i] / tau : mt;
        }
        double s = 0, st = 0;
        for (int i = 0; i < n; i++) s += exp(lam[i] - mx), st += exp(lam[i] / tau - mt);
        double lse = mx + log(s), lset = mt + log(st), kl = 0;
        for (int i = 0; i < n; i++) {
            double ls = lam[i] - lse, lt = lam[i] / tau - lset, t = exp(lt);
            if (t > 0) kl += t * (lt - ls);
            gl[i] = exp(ls) - t; // d KL / d l_i with the target detached
        }
        total += kl;
        // dG = V diag(gl) V^T (G = V diag(l) V^T); dX_rows = 2 dG X_rows (G = X X^T)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double v = 0;
                for (int k = 0; k < n; k++) v += G[i + (size_t)k * n] * gl[k] * G[j + (size_t)k * n];
                dG[i + (size_t)j * n] = v;
            }
        for (int i = 0; i < n; i++) {
            float *d = dX + (size_t)rows[i] * Dp;
            for (size_t k = 0; k < Dp; k++) {
                double v = 0;
                for (int j = 0; j < n; j++) v += dG[i + (size_t)j * n] * X[(size_t)rows[j] * Dp + k];
                d[k] += (float)(coef * 2.0 * v);
            }
        }
    }
out:
    free(rows), free(done), free(G), free(lam), free(gl), free(dG), free(work);
    return total;
}

// ----------------------------------------------------------------------------
// one iteration

int recover_grad(RecoverWork *w, const float *x, const int *y, int B, const int *active, int n_active,
                 const RecoverDraw *d, const RecoverLoss *cfg, float *grad, RecoverLosses *out, Err *e) {
    Net *net = w->net;
    int nb = active ? n_active : B, C = net->in_c, H = net->in_h, W = net->in_w, K = net->n_classes;
    size_t D = w->D, n = (size_t)nb * D;
    if (nb <= 0 || nb > w->Bmax) return err_set(e, "a recover batch of %d images (workspace for %d)", nb, w->Bmax);
    memset(out, 0, sizeof(*out));
    int yb[4096];
    if (nb > 4096) return err_set(e, "at most 4096 images per recover batch");
    for (int i = 0; i < nb; i++) {
        int b = active ? active[i] : i;
        if (b < 0 || b >= B) return err_set(e, "active image %d outside the batch of %d", b, B);
        memcpy(w->xs + (size_t)i * D, x + (size_t)b * D, sizeof(float) * D);
        yb[i] = y[b];
        if (yb[i] < 0 || yb[i] >= K) return err_set(e, "label %d outside the teacher's %d classes", yb[i], K);
    }
    // augmentation: crop -> flip -> roll
    const float *cur = w->xs;
    if (d->crop) {
        augment_resized_crop_forward(w->xa, cur, nb, C, H, W, d->box[0], d->box[1], d->box[2], d->box[3], H, W);
        cur = w->xa;
    } else if (d->pad_crop) {
        augment_crop_pad_forward(w->xa, cur, nb, C, H, W, d->pad, d->top, d->left, 0.0f);
        cur = w->xa;
    }
    if (d->flip) {
        augment_hflip_forward(w->xb, cur, nb, C, H, W);
        cur = w->xb;
    }
    augment_roll_forward(w->xj, cur, nb, C, H, W, d->roll_dy, d->roll_dx);
    if (net_tape_forward(net, &w->tape, w->xj, nb, 0, e)) return -1;
    // cross-entropy, mean over the batch
    int last = net->n_layers - 1;
    const float *z = net_tape_out(w->tape, last);
    float *gz = net_tape_grad(w->tape, last);
    if (!gz) return err_set(e, "out of memory for the logits' gradient");
    double ce = 0;
    for (int b = 0; b < nb; b++) {
        const float *zb = z + (size_t)b * K;
        double mx = -INFINITY, s = 0;
        for (int k = 0; k < K; k++) mx = zb[k] > mx ? zb[k] : mx;
        for (int k = 0; k < K; k++) s += exp((double)zb[k] - mx);
        double lse = mx + log(s);
        ce += lse - zb[yb[b]];
        for (int k = 0; k < K; k++) gz[(size_t)b * K + k] += (float)((exp(zb[k] - lse) - (k == yb[b])) / nb);
    }
    out->ce = ce / nb;
    // statistics hooks
    memset(w->gin, 0, sizeof(float) * n);
    double stat = 0;
    int conv_index = 0;
    for (int h = 0; h < w->n_hooks; h++) {
        const RecoverHook *hk = &w->hooks[h];
        int ci = hk->kind == RECOVER_HOOK_CONV ? conv_index++ : -1;
        if (ci >= 0 && cfg->drop && cfg->drop[ci]) {
            out->terms[h] = 0;
            continue;
        }
        double coef = cfg->r_stat * (h == 0 ? cfg->first_mult : 1.0);
        const float *A = hk->node < 0 ? w->xj : net_tape_out(w->tape, hk->node);
        float *dA = hk->node < 0 ? w->gin : net_tape_grad(w->tape, hk->node);
        if (!dA) return err_set(e, "out of memory for a hook's gradient");
        double t = hook_term(w, hk, h, ci, A, nb, cfg, coef, dA);
        out->terms[h] = (float)t;
        stat += (h == 0 ? cfg->first_mult : 1.0) * t;
    }
    out->n_terms = w->n_hooks;
    out->stat = stat;
    // the eigenvalue term on the pooled input
    double nuc = 0;
    if (cfg->nuc != 0) {
        int side = cfg->nuc_side > 0 ? cfg->nuc_side : 32;
        if (side > 64) return err_set(e, "the eigenvalue term pools to at most 64 pixels");
        size_t Dp = (size_t)C * side * side;
        augment_adaptive_avgpool_forward(w->pool, w->xj, nb, C, H, W, side, side);
        memset(w->gpool, 0, sizeof(float) * nb * Dp);
        int rc = 0;
        nuc = nuc_term(w, w->pool, yb, nb, Dp, cfg->tau, cfg->nuc, w->gpool, e, &rc);
        if (rc) return -1;
        augment_adaptive_avgpool_backward(w->gin, w->gpool, nb, C, H, W, side, side);
    }
    out->nuc = nuc;
    out->loss = out->ce + cfg->r_stat * stat + cfg->nuc * nuc;
    // backward: the teacher, then the augmentation in reverse
    memset(w->g, 0, sizeof(float) * n);
    if (net_tape_backward(net, w->tape, w->g, 0, e)) return -1;
    for (size_t i = 0; i < n; i++) w->g[i] += w->gin[i];
    memset(w->ga, 0, sizeof(float) * n);
    augment_roll_backward(w->ga, w->g, nb, C, H, W, d->roll_dy, d->roll_dx);
    float *g = w->ga;
    if (d->flip) {
        memset(w->gb, 0, sizeof(float) * n);
        augment_hflip_backward(w->gb, g, nb, C, H, W);
        g = w->gb;
    }
    if (d->crop || d->pad_crop) {
        float *dst = g == w->ga ? w->gb : w->ga;
        memset(dst, 0, sizeof(float) * n);
        if (d->crop)
            augment_resized_crop_backward(dst, g, nb, C, H, W, d->box[0], d->box[1], d->box[2], d->box[3], H, W);
        else
            augment_crop_pad_backward(dst, g, nb, C, H, W, d->pad, d->top, d->left);
        g = dst;
    }
    memset(grad, 0, sizeof(float) * (size_t)B * D);
    for (int i = 0; i < nb; i++) {
        int b = active ? active[i] : i;
        memcpy(grad + (size_t)b * D, g + (size_t)i * D, sizeof(float) * D);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// G-VBSM's training-set statistics and state

void recover_conv_stats_free(ConvStats *s, int n) {
    for (int i = 0; s && i < n; i++) xfree(s[i].mean), xfree(s[i].var), xfree(s[i].pmean), xfree(s[i].pvar);
}

int recover_conv_stats(Net *net, const RecoverHook *hooks, int n_hooks, const float *x, int n, int batch,
                       ConvStats *out, Err *e) {
    int nconv = 0;
    for (int h = 0; h < n_hooks; h++) {
        if (hooks[h].kind != RECOVER_HOOK_CONV) continue;
        ConvStats *s = &out[nconv++];
        int P = recover_patches(hooks[h].H, hooks[h].W);
        s->P = P;
        s->mean = xcalloc(sizeof(float) * hooks[h].C);
        s->var = xcalloc(sizeof(float) * hooks[h].C);
        s->pmean = xcalloc(sizeof(float) * P);
        s->pvar = xcalloc(sizeof(float) * P);
        if (!s->mean || !s->var || !s->pmean || !s->pvar) {
            recover_conv_stats_free(out, nconv);
            return err_set(e, "out of memory for the training-set statistics");
        }
    }
    if (batch <= 0 || n <= 0) {
        recover_conv_stats_free(out, nconv);
        return err_set(e, "no training images for the statistics");
    }
    NetTape *tape = NULL;
    size_t D = net_in_size(net);
    double *mean = NULL, *var = NULL;
    float *tmp = NULL;
    int rc = -1;
    size_t maxc = 1, maxz = 1;
    for (int h = 0; h < n_hooks; h++) {
        size_t c = (size_t)hooks[h].C, p = (size_t)recover_patches(hooks[h].H, hooks[h].W);
        maxc = c > maxc ? c : maxc;
        maxc = p > maxc ? p : maxc;
        size_t z = (size_t)batch * hooks[h].C * ((hooks[h].H + 3) / 4 * 4) * ((hooks[h].W + 3) / 4 * 4);
        maxz = z > maxz ? z : maxz;
    }
    mean = malloc(sizeof(double) * maxc), var = malloc(sizeof(double) * maxc);
    tmp = xmalloc(sizeof(float) * maxz);
    if (!mean || !var || !tmp) {
        err_set(e, "out of memory for the training-set statistics");
        goto done;
    }
    for (int s0 = 0; s0 < n; s0 += batch) {
        int bs = n - s0 < batch ? n - s0 : batch;
        const float *xb = x + (size_t)s0 * D;
        if (net_tape_forward(net, &tape, xb, bs, 0, e)) goto done;
        double wgt = (double)bs / n;
        int ci = 0;
        for (int h = 0; h < n_hooks; h++) {
            const RecoverHook *hk = &hooks[h];
            if (hk->kind != RECOVER_HOOK_CONV) continue;
            ConvStats *st = &out[ci++];
            const float *A = hk->node < 0 ? xb : net_tape_out(tape, hk->node);
            channel_stats(A, bs, hk->C, hk->H * hk->W, mean, var);
            // the reference accumulates dd_var * bs / data_number in float
            for (int c = 0; c < hk->C; c++) {
                st->var[c] += (float)(var[c] * wgt);
                st->mean[c] += (float)(mean[c] * wgt);
            }
            int nh = (hk->H + 3) / 4 * 4, nw = (hk->W + 3) / 4 * 4;
            const float *Z = A;
            if (nh != hk->H || nw != hk->W) {
                augment_resized_crop_forward(tmp, A, bs, hk->C, hk->H, hk->W, 0, 0, hk->H, hk->W, nh, nw);
                Z = tmp;
            }
            patch_stats(Z, bs, hk->C, nh, nw, mean, var);
            for (int p = 0; p < st->P; p++) {
                st->pvar[p] += (float)(var[p] * wgt);
                st->pmean[p] += (float)(mean[p] * wgt);
            }
        }
    }
    rc = 0;
done:
    net_tape_free(tape);
    free(mean), free(var), xfree(tmp);
    if (rc) recover_conv_stats_free(out, nconv);
    return rc;
}

void recover_state_free(HookState *s, int n_hooks) {
    for (int h = 0; s && h < n_hooks; h++) xfree(s[h].var), xfree(s[h].mean), xfree(s[h].pvar), xfree(s[h].pmean);
}

int recover_state_init(HookState *s, const RecoverHook *hooks, int n_hooks, Err *e) {
    memset(s, 0, sizeof(HookState) * n_hooks);
    for (int h = 0; h < n_hooks; h++) {
        int C = hooks[h].C, P = hooks[h].kind == RECOVER_HOOK_CONV ? recover_patches(hooks[h].H, hooks[h].W) : 1;
        s[h].var = xcalloc(sizeof(float) * C);
        s[h].mean = xcalloc(sizeof(float) * C);
        s[h].pvar = xcalloc(sizeof(float) * P);
        s[h].pmean = xcalloc(sizeof(float) * P);
        if (!s[h].var || !s[h].mean || !s[h].pvar || !s[h].pmean) {
            recover_state_free(s, h + 1);
            return err_set(e, "out of memory for the densified statistics");
        }
    }
    return 0;
}

int recover_observe(RecoverWork *w, const float *x, int B, const RecoverLoss *cfg, Err *e) {
    Net *net = w->net;
    if (B <= 0 || B > w->Bmax) return err_set(e, "a batch of %d images (workspace for %d)", B, w->Bmax);
    memcpy(w->xj, x, sizeof(float) * B * w->D);
    if (net_tape_forward(net, &w->tape, w->xj, B, 0, e)) return -1;
    int conv_index = 0;
    for (int h = 0; h < w->n_hooks; h++) {
        const RecoverHook *hk = &w->hooks[h];
        int ci = hk->kind == RECOVER_HOOK_CONV ? conv_index++ : -1;
        if (ci >= 0 && cfg->drop && cfg->drop[ci]) continue;
        const float *A = hk->node < 0 ? w->xj : net_tape_out(w->tape, hk->node);
        float *scratch = hk->node < 0 ? w->gin : net_tape_grad(w->tape, hk->node);
        if (!scratch) return err_set(e, "out of memory");
        hook_term(w, hk, h, ci, A, B, cfg, 0.0, scratch);
    }
    return 0;
}
