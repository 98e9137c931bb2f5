/*
 * train.c: the training stage of BEARD (Zhou et al., "BEARD: Benchmarking the Adversarial
 * Robustness for Dataset Distillation", arXiv:2411.09265): models trained on distilled
 * sets with the recipe that dataset-distillation papers evaluate with.
 *
 * Reference: evaluate_synset and epoch in DC's utils.py (Zhao et al., arXiv:2006.05929,
 * VICO-UoE/DatasetCondensation), unchanged in DC-bench and in BEARD's Code/eva_utils.py:
 *   - SGD(lr 0.01, momentum 0.9, weight_decay 5e-4), cross-entropy, batch 256 from a
 *     shuffled DataLoader (the last batch smaller), for `for ep in range(Epoch + 1)`;
 *   - after the epoch ep == Epoch // 2 + 1, lr *= 0.1 and a new optimizer (fresh
 *     momentum buffers);
 *   - every training batch goes through DiffAugment with DSA's
 *     color_crop_cutout_flip_scale_rotate in mode 'S' (src/data/dsa.c);
 *   - with train_attack, torchattacks replaces the whole batch by adversarial examples
 *     of the network in eval mode (BEARD: PGD eps 8/255, alpha 2/225, 10 steps, no random
 *     start, targets (y + 1) % 10 when targeted), and the step trains on those alone;
 *   - test accuracy on the test set in eval mode.
 * TRADES follows Zhang et al. (arXiv:1901.08573, yaodongyu/TRADES trades.py): x' from
 * x + 0.001 N(0, 1) by `steps` ascent steps of step_size * sign(grad KL(f(x) || f(x'))),
 * projected on the eps-ball and [0, 1] with the model in eval mode; then the loss
 * CE(f(x), y) + beta / B * sum KL(f(x) || f(x')) in train mode, gradients through both.
 *
 * Deliberate differences:
 *   - randomness (initialisation, shuffling, DSA, attacks) comes from beard's Philox
 *     streams keyed by the run's seed, so runs are reproducible (DC re-seeds from the
 *     clock in get_network); results agree with PyTorch in distribution, not in value;
 *   - the test accuracy is computed every eval_every epochs (and after the last) instead
 *     of after every epoch (BEARD's tqdm_bar=True), which would cost more than training;
 *   - BEARD keeps the final model of each call; beard also keeps the snapshot with the best
 *     evaluated test accuracy, which train_runs saves under BEARD's name with its accuracy;
 *   - TRADES' forward passes run as one batch of 2B (natural and adversarial together) in
 *     one backward; for BatchNorm models in train mode the batch statistics then cover
 *     both halves, where TRADES' code normalises the two forward calls separately.
 */
#include "train.h"

#include "../attacks/names.h"
#include "../io/file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/progress.h"
#include "../io/pyrepr.h"
#include "../models/checkpoint.h"
#include "../models/convnet.h"
#include "recipe.h"

// Philox streams of one run (upper bits 'TRN' keep them apart from net_init_params')
#define STREAM_SHUFFLE 0x54524E0001ull
#define STREAM_DSA 0x54524E0002ull
#define SEED_ATTACK 0x41545441434Bull // xor-ed into the run seed for attack randomness

void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof(*c));
    c->epochs = 1000;
    c->batch = 256;
    c->optimizer = OPTIM_SGD;
    c->lr = 0.01f;
    c->momentum = 0.9f;
    c->weight_decay = 5e-4f;
    c->lr_decay = 1;
    c->dsa = 1;
    Err e;
    dsa_strategy_parse(&c->strategy, "color_crop_cutout_flip_scale_rotate", &e);
    dsa_config_default(&c->dsa_cfg);
    c->eval_every = 100;
    c->adv.kind = TRAIN_ADV_NONE;
    snprintf(c->adv.name, sizeof(c->adv.name), "None");
}

// ----------------------------------------------------------------------------
// adversarial training set-up

// TRADES' parameters (yaodongyu/TRADES train_trades_cifar10.py defaults), declared as an
// attack's are so that the one checker (attack_params_check) checks them
static const AttackParamDef trades_params[] = {
    {"beta", 6.0, P_SAME, P_SAME, "weight of the KL term", AP_REAL(0, 1e6)},
    {"eps", 0.031, P_SAME, P_SAME, "maximum Linf perturbation of the inner maximisation", AP_EPS_LINF},
    {"step_size", 0.007, P_SAME, P_SAME, "step size of the inner maximisation", AP_REAL(0, 1)},
    {"steps", 10, P_SAME, P_SAME, "steps of the inner maximisation", AP_STEPS},
    {NULL},
};
const AttackDef train_trades = {.name = "TRADES", .aliases = "trades", .params = trades_params};

int train_adv_finish(TrainAdv *adv, Err *e) {
    if (adv->kind == TRAIN_ADV_NONE) return 0;
    if (attack_params_check(adv->def, &adv->params, NULL, e)) return -1;
    if (adv->kind == TRAIN_ADV_TRADES) {
        adv->beta = (float)attack_params_get(&adv->params, "beta");
        adv->eps = (float)attack_params_get(&adv->params, "eps");
        adv->step_size = (float)attack_params_get(&adv->params, "step_size");
        adv->steps = (int)attack_params_get(&adv->params, "steps");
    }
    return 0;
}

int train_adv_setup(TrainAdv *adv, const char *name, Semantics sem, int targeted, Err *e) {
    memset(adv, 0, sizeof(*adv));
    adv->sem = sem;
    snprintf(adv->name, sizeof(adv->name), "%s", name ? name : "None");
    if (!name || !*name || !strcasecmp(name, "none")) {
        adv->kind = TRAIN_ADV_NONE;
        snprintf(adv->name, sizeof(adv->name), "None");
        return 0;
    }
    if (!strcasecmp(name, "trades")) {
        if (targeted) return err_set(e, "TRADES has no targeted form");
        adv->kind = TRAIN_ADV_TRADES;
        adv->def = &train_trades;
        attack_params_init(&adv->params, &train_trades, PRESET_TORCHATTACKS);
        return train_adv_finish(adv, e);
    }
    // any attack by any name beard accepts, BEARD's PGD_e<N> / PGD_s<N> included, with the
    // preset of the semantics (beard: BEARD's values; pixel: torchattacks')
    const AttackDef *def;
    int rc = attack_resolve(name, sem == SEM_BEARD ? PRESET_BEARD : PRESET_TORCHATTACKS, &def, &adv->params, e);
    if (rc == -2)
        return err_set(e, "unknown training attack '%s' (None, TRADES, or an attack of `beard attack --list`)", name);
    if (rc) return -1;
    if (targeted && !def->targeted_ok) return err_set(e, "%s has no targeted mode", def->name);
    if (!targeted && !def->untargeted_ok) return err_set(e, "%s has no untargeted mode", def->name);
    if (def->needs_train) return err_set(e, "%s trains surrogates of its own and cannot make training batches", def->name);
    adv->kind = TRAIN_ADV_ATTACK;
    adv->def = def;
    adv->targeted = targeted;
    adv->policy = sem == SEM_BEARD ? TARGET_BEARD : TARGET_NEXT;
    return 0;
}

// ----------------------------------------------------------------------------
// snapshots

int net_snapshot_init(NetSnapshot *s, const Net *net, Err *e) {
    memset(s, 0, sizeof(*s));
    s->params = xmalloc(sizeof(float) * (net->n_params ? net->n_params : 1));
    s->buffers = xmalloc(sizeof(float) * (net->n_buffers ? net->n_buffers : 1));
    if (!s->params || !s->buffers) {
        net_snapshot_free(s);
        return err_set(e, "out of memory for a model snapshot");
    }
    return 0;
}

void net_snapshot_take(NetSnapshot *s, const Net *net) {
    memcpy(s->params, net->params, sizeof(float) * net->n_params);
    if (net->n_buffers) memcpy(s->buffers, net->buffers, sizeof(float) * net->n_buffers);
    for (int l = 0; l < net->n_layers; l++) s->nbt[l] = net->layers[l].num_batches_tracked;
    s->valid = 1;
}

void net_snapshot_restore(const NetSnapshot *s, Net *net) {
    memcpy(net->params, s->params, sizeof(float) * net->n_params);
    if (net->n_buffers) memcpy(net->buffers, s->buffers, sizeof(float) * net->n_buffers);
    for (int l = 0; l < net->n_layers; l++) net->layers[l].num_batches_tracked = s->nbt[l];
}

void net_snapshot_free(NetSnapshot *s) {
    xfree(s->params);
    xfree(s->buffers);
    memset(s, 0, sizeof(*s));
}

// ----------------------------------------------------------------------------
// losses

typedef struct {
    const int *y;
    const float *soft; // (B, K) or NULL
    int K;
    float scale;       // 1/B: the mean reduction
    const float *pre;  // precomputed d(loss)/d(logits) (rows), or NULL
    const double *pre_loss;
} StepLoss;

static double step_loss(void *c, int i, const float *z, float *dz) {
    const StepLoss *s = c;
    int K = s->K;
    if (s->pre) {
        memcpy(dz, s->pre + (size_t)i * K, sizeof(float) * K);
        return s->pre_loss ? s->pre_loss[i] : 0.0;
    }
    double l = s->soft ? crossentropy_forward_backward(dz, z, NULL, s->soft + (size_t)i * K, 1, K)
                       : crossentropy_sample(dz, z, s->y[i], K);
    for (int k = 0; k < K; k++) dz[k] *= s->scale;
    return l;
}

// softmax and log-softmax of one row, in double
static void softmax_row(const float *z, int K, double *p, double *logp) {
    double mx = -INFINITY;
    for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double s = 0.0;
    for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
    double lse = mx + log(s);
    for (int k = 0; k < K; k++) {
        logp[k] = (double)z[k] - lse;
        p[k] = exp(logp[k]);
    }
}

// TRADES' inner loss: KL(p_nat || softmax(z)) summed; d/dz = softmax(z) - p_nat
typedef struct {
    const float *pnat; // (B, K)
    int K;
} KlLoss;

static double kl_loss(void *c, int i, const float *z, float *dz) {
    const KlLoss *s = c;
    int K = s->K;
    double p[256], lp[256];
    softmax_row(z, K, p, lp);
    const float *pn = s->pnat + (size_t)i * K;
    double kl = 0.0;
    for (int k = 0; k < K; k++) {
        if (pn[k] > 0) kl += pn[k] * (log((double)pn[k]) - lp[k]);
        dz[k] = (float)(p[k] - pn[k]);
    }
    return kl;
}

// ----------------------------------------------------------------------------
// one run

typedef struct {
    int bmax, K;
    size_t D;
    int *perm, *yb, *tb, *ids;
    float *xb, *xa, *xadv, *xt, *soft, *logits, *dl, *grad, *pnat;
    double *dloss;
    DsaSample *ds;
} Buffers;

static void buffers_free(Buffers *b) {
    free(b->perm), free(b->yb), free(b->tb), free(b->ids);
    xfree(b->xb), xfree(b->xa), xfree(b->xadv), xfree(b->xt), xfree(b->soft), xfree(b->logits), xfree(b->dl);
    xfree(b->grad), xfree(b->pnat), free(b->dloss), free(b->ds);
    memset(b, 0, sizeof(*b));
}

static int buffers_init(Buffers *b, int n, int bmax, int K, size_t D, int need_adv, Err *e) {
    memset(b, 0, sizeof(*b));
    b->bmax = bmax, b->K = K, b->D = D;
    size_t bd = (size_t)bmax * D, bk = (size_t)bmax * K;
    b->perm = malloc(sizeof(int) * (size_t)n);
    b->yb = malloc(sizeof(int) * (size_t)bmax);
    b->tb = malloc(sizeof(int) * (size_t)bmax);
    b->ids = malloc(sizeof(int) * (size_t)bmax);
    b->xb = xmalloc(sizeof(float) * bd);
    b->xa = xmalloc(sizeof(float) * bd);
    b->soft = xmalloc(sizeof(float) * bk);
    b->logits = xmalloc(sizeof(float) * 2 * bk);
    b->ds = malloc(sizeof(DsaSample) * (size_t)bmax);
    int ok = b->perm && b->yb && b->tb && b->ids && b->xb && b->xa && b->soft && b->logits && b->ds;
    if (need_adv) {
        b->xadv = xmalloc(sizeof(float) * bd);
        b->xt = xmalloc(sizeof(float) * 2 * bd);
        b->dl = xmalloc(sizeof(float) * 2 * bk);
        b->grad = xmalloc(sizeof(float) * bd);
        b->pnat = xmalloc(sizeof(float) * bk);
        b->dloss = malloc(sizeof(double) * 2 * (size_t)bmax);
        ok = ok && b->xadv && b->xt && b->dl && b->grad && b->pnat && b->dloss;
    }
    if (!ok) {
        buffers_free(b);
        return err_set(e, "out of memory for training buffers (batch %d)", bmax);
    }
    return 0;
}

// model space (normalised) <-> [0, 1] pixels, per channel
static void to_pixels(float *out, const float *x, int B, int C, size_t plane, const float *mean, const float *std) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *s = x + ((size_t)b * C + c) * plane;
            float *d = out + ((size_t)b * C + c) * plane;
            for (size_t i = 0; i < plane; i++) d[i] = s[i] * std[c] + mean[c];
        }
}

static void to_model(float *out, const float *p, int B, int C, size_t plane, const float *mean, const float *std) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const float *s = p + ((size_t)b * C + c) * plane;
            float *d = out + ((size_t)b * C + c) * plane;
            for (size_t i = 0; i < plane; i++) d[i] = (s[i] - mean[c]) / std[c];
        }
}

// Replaces the batch x (model space) by adversarial examples in out (model space), with
// the network in eval mode, as torchattacks runs it. Pixel semantics convert the batch to
// [0, 1] pixels in bf->xt and let the network normalise while the attack runs.
static int make_adversarial(Net *net, const TrainAdv *adv, const Pool *pool, const float *x, int B, Buffers *bf,
                            long step, uint64_t seed, float *out, Err *e) {
    int K = net->n_classes, C = net->in_c;
    size_t D = bf->D, plane = (size_t)net->in_h * net->in_w;
    const float *xin = x;
    float *xout = out;
    if (adv->sem == SEM_PIXEL) {
        to_pixels(bf->xt, x, B, C, plane, pool->mean, pool->std);
        net_set_normalize(net, 1, pool->mean, pool->std);
        xin = bf->xt;
        xout = bf->xt + (size_t)B * D;
    }
    net->train = 0;
    for (int b = 0; b < B; b++) bf->ids[b] = (int)((step * bf->bmax + b) & 0x7fffffff);
    int rc = 0;
    if (adv->targeted) {
        if (adv->policy == TARGET_LEAST_LIKELY) rc = net_forward(net, xin, B, bf->logits, e);
        if (!rc) attack_targets(adv->policy, bf->yb, bf->logits, B, K, seed ^ (uint64_t)step, bf->tb);
    }
    AttackCtx ctx = {.net = net, .K = K, .D = D, .targeted = adv->targeted, .params = &adv->params, .seed = seed,
                     .ids = bf->ids, .n_classes_cap = adv->policy == TARGET_BEARD ? 10 : K, .sem = adv->sem,
                     .mean = pool->mean, .std = pool->std};
    if (!rc && adv->def->run(&ctx, xin, bf->yb, adv->targeted ? bf->tb : NULL, B, xout, e)) {
        err_wrap(e, "adversarial training (%s)", adv->def->name);
        rc = -1;
    }
    if (adv->sem == SEM_PIXEL) {
        net_set_normalize(net, 0, NULL, NULL);
        if (!rc) to_model(out, xout, B, C, plane, pool->mean, pool->std);
    }
    net->train = 1;
    return rc;
}

// One TRADES step's gradients into net->grads; returns the batch's loss sum in *loss and
// the natural logits in bf->logits.
static int trades_grads(Net *net, const TrainAdv *adv, const Pool *pool, const float *x, int B, Buffers *bf,
                        const float *soft, long step, uint64_t seed, double *loss, Err *e) {
    int K = net->n_classes, C = net->in_c;
    size_t D = bf->D, plane = (size_t)net->in_h * net->in_w, n = (size_t)B * D;
    int pixel = adv->sem == SEM_PIXEL;
    // the natural batch in attack space (xb: pixels or the model-space batch itself)
    float *xp = bf->xadv, *xa = bf->xt + n; // xt's second half holds x' while it is built
    if (pixel) {
        to_pixels(xp, x, B, C, plane, pool->mean, pool->std);
        net_set_normalize(net, 1, pool->mean, pool->std);
    } else {
        memcpy(xp, x, sizeof(float) * n);
    }
    net->train = 0;
    if (net_forward(net, xp, B, bf->logits, e)) goto fail;
    double p[256], lp[256];
    for (int b = 0; b < B; b++) {
        softmax_row(bf->logits + (size_t)b * K, K, p, lp);
        for (int k = 0; k < K; k++) bf->pnat[(size_t)b * K + k] = (float)p[k];
    }
    for (int b = 0; b < B; b++) {
        Rng r;
        rng_init(&r, seed, (uint64_t)(step * bf->bmax + b) << 8 | 0x7D);
        for (size_t i = (size_t)b * D; i < (size_t)(b + 1) * D; i++) xa[i] = xp[i] + 0.001f * (float)rng_normal(&r);
    }
    KlLoss kl = {bf->pnat, K};
    for (int s = 0; s < adv->steps; s++) {
        NetBackward nb = {.loss = kl_loss, .ctx = &kl, .nvec = 1, .dx = bf->grad};
        if (net_forward_backward(net, xa, B, &nb, e)) goto fail;
        float eps = adv->eps, st = adv->step_size;
        for (size_t i = 0; i < n; i++) {
            float v = xa[i] + st * signf_torch(bf->grad[i]);
            v = fminf(fmaxf(v, xp[i] - eps), xp[i] + eps);
            xa[i] = clampf(v, 0.0f, 1.0f);
        }
    }
    for (size_t i = 0; i < n; i++) xa[i] = clampf(xa[i], 0.0f, 1.0f); // TRADES clamps once more (steps = 0)
    // back to model space: xt = [x; x'] as one batch of 2B
    if (pixel) {
        net_set_normalize(net, 0, NULL, NULL);
        to_model(bf->xt + n, xa, B, C, plane, pool->mean, pool->std);
    }
    memcpy(bf->xt, x, sizeof(float) * n);
    if (net_forward(net, bf->xt, 2 * B, bf->logits, e)) goto fail;
    // d(loss)/d(logits) of CE(f(x), y) / B + beta / B * sum_i KL(p_i || q_i)
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        double l = train_trades_loss(bf->dl + (size_t)b * K, bf->dl + (size_t)(B + b) * K, bf->logits + (size_t)b * K,
                                     bf->logits + (size_t)(B + b) * K, bf->yb[b], soft ? soft + (size_t)b * K : NULL, K,
                                     adv->beta, 1.0 / B);
        bf->dloss[b] = l;
        bf->dloss[B + b] = 0.0;
        total += l;
    }
    net->train = 1;
    StepLoss sl = {.K = K, .pre = bf->dl, .pre_loss = bf->dloss};
    NetBackward nb = {.loss = step_loss, .ctx = &sl, .nvec = 1, .param_grads = 1};
    net_zero_grads(net);
    if (net_forward_backward(net, bf->xt, 2 * B, &nb, e)) goto fail;
    *loss = total;
    return 0;
fail:
    net_set_normalize(net, 0, NULL, NULL);
    net->train = 1;
    return -1;
}

double train_trades_loss(float *dn, float *da, const float *zn, const float *za, int y, const float *soft, int K,
                         double beta, double scale) {
    double p[256], lp[256], q[256], lq[256];
    softmax_row(zn, K, p, lp);
    softmax_row(za, K, q, lq);
    double kl = 0.0, ce = 0.0, tsum = 0.0;
    for (int k = 0; k < K; k++) kl += p[k] * (lp[k] - lq[k]);
    if (soft) {
        for (int k = 0; k < K; k++) tsum += soft[k], ce -= soft[k] * lp[k];
    } else {
        tsum = 1.0, ce = -lp[y];
    }
    for (int k = 0; k < K; k++) {
        double t = soft ? soft[k] : (k == y);
        // softmax's Jacobian turns d/dp of p (log p - log q) into p (log p - log q - KL)
        dn[k] = (float)(scale * (p[k] * tsum - t + beta * p[k] * ((lp[k] - lq[k]) - kl)));
        da[k] = (float)(scale * beta * (q[k] - p[k]));
    }
    return ce + beta * kl;
}

int train_test_accuracy(Net *net, const TrainTest *test, double *acc, Err *e) {
    int K = net->n_classes, bs = 256, correct = 0;
    size_t D = net_in_size(net);
    float *z = xmalloc(sizeof(float) * (size_t)bs * K);
    if (!z) return err_set(e, "out of memory");
    int train = net->train;
    net->train = 0;
    for (int s = 0; s < test->n; s += bs) {
        int B = MIN(bs, test->n - s);
        if (net_forward(net, test->x + (size_t)s * D, B, z, e)) {
            xfree(z);
            net->train = train;
            return -1;
        }
        for (int b = 0; b < B; b++) correct += logits_argmax(z + (size_t)b * K, K) == test->y[s + b];
    }
    net->train = train;
    xfree(z);
    *acc = test->n ? 100.0 * correct / test->n : 0.0;
    return 0;
}

static void log_line(const TrainConfig *cfg, Progress *prog, int ep, double loss, double tacc, double test_acc,
                     float lr, double secs) {
    if (!cfg->log) return;
    progress_end(prog); // clear the bar; it redraws at the next update
    char t[32] = "";
    if (test_acc >= 0) snprintf(t, sizeof(t), "  test acc %6.2f%%", test_acc);
    fprintf(cfg->log, "%s%sepoch %4d/%d  loss %.6f  train acc %6.2f%%%s  lr %g  %.1fs\n",
            cfg->run_label ? cfg->run_label : "", cfg->run_label ? ": " : "", ep, cfg->epochs, loss, tacc, t, lr, secs);
    fflush(cfg->log);
}

int train_model(Net *net, const Pool *pool, const TrainTest *test, const TrainConfig *cfg, uint64_t seed,
                NetSnapshot *best, TrainResult *res, Err *e) {
    if (cfg->recipe) {
        Recipe r = *cfg->recipe;
        r.run_label = cfg->run_label;
        r.log = cfg->log, r.log_every = cfg->log_every, r.progress = cfg->progress;
        return recipe_train(net, pool, test, &r, seed, cfg->keep_params, best, res, e);
    }
    memset(res, 0, sizeof(*res));
    res->best_acc = -1;
    int K = net->n_classes, n = pool->n;
    size_t D = net_in_size(net);
    if (pool->c != net->in_c || pool->h != net->in_h || pool->w != net->in_w)
        return err_set(e, "the distilled images are (%d, %d, %d) but %s takes (%d, %d, %d)", pool->c, pool->h, pool->w,
                       net->arch, net->in_c, net->in_h, net->in_w);
    if (pool->n_classes != K) return err_set(e, "the pool has %d classes, the model %d", pool->n_classes, K);
    if (n <= 0) return err_set(e, "the training set is empty");
    if (cfg->batch <= 0 || cfg->epochs < 0 || !(cfg->lr > 0) || cfg->eval_every < 0)
        return err_set(e, "bad training configuration (batch %d, epochs %d, lr %g)", cfg->batch, cfg->epochs, cfg->lr);
    if (K > 256) return err_set(e, "at most 256 classes");
    const TrainAdv *adv = &cfg->adv;
    if (adv->kind == TRAIN_ADV_ATTACK && !adv->def) return err_set(e, "adversarial training without an attack");
    if (adv->kind != TRAIN_ADV_NONE) {
        AttackShape shape = {net->in_c, net->in_h, net->in_w, K};
        if (attack_params_check(adv->def, &adv->params, &shape, e)) return err_wrap(e, "adversarial training");
    }
    if (adv->kind == TRAIN_ADV_TRADES && (adv->steps < 0 || !(adv->eps >= 0)))
        return err_set(e, "bad TRADES parameters");
    if (cfg->dsa && cfg->strategy.n_ops == 0) return err_set(e, "DSA is on but the strategy has no ops");

    Buffers bf;
    int bmax = MIN(cfg->batch, n);
    if (buffers_init(&bf, n, bmax, K, D, adv->kind != TRAIN_ADV_NONE, e)) return -1;
    Optim opt;
    if (net_alloc_grads(net, e) ||
        optim_init(&opt, cfg->optimizer, net->n_params, cfg->lr, cfg->momentum, cfg->weight_decay)) {
        buffers_free(&bf);
        return err_set(e, "out of memory for gradients and optimizer state");
    }
    if (!cfg->keep_params) net_init_params(net, seed);
    net_set_normalize(net, 0, NULL, NULL); // pools hold model-space (normalised) images
    net->train = 1;
    Rng shuf, aug;
    rng_init(&shuf, seed, STREAM_SHUFFLE);
    rng_init(&aug, seed, STREAM_DSA);
    uint64_t aseed = seed ^ SEED_ATTACK;
    double lr = cfg->lr;
    int decay_at = cfg->lr_decay ? cfg->epochs / 2 + 1 : -1;
    float *soft = pool->soft ? bf.soft : NULL;

    Progress prog;
    char label[96];
    snprintf(label, sizeof(label), "train%s%s", cfg->run_label ? " " : "", cfg->run_label ? cfg->run_label : "");
    progress_start(&prog, label, (double)(cfg->epochs + 1));
    if (!cfg->progress) prog.quiet = 1;
    double t_start = time_now(), t_eval = 0.0;
    long step = 0;
    int rc = -1;
    for (int ep = 0; ep <= cfg->epochs; ep++) {
        rng_permutation(&shuf, bf.perm, n);
        double loss_sum = 0.0;
        long correct = 0;
        int seen = 0;
        for (int s = 0, n_batches = 0; s < n && (cfg->max_batches <= 0 || n_batches < cfg->max_batches); s += bmax, n_batches++) {
            int B = MIN(bmax, n - s);
            seen += B;
            pool_gather(pool, bf.perm + s, B, bf.xb, bf.yb, soft);
            const float *x = bf.xb;
            if (cfg->dsa) {
                DsaDraw d = {.B = B, .s = bf.ds};
                dsa_draw(&d, &cfg->strategy, &cfg->dsa_cfg, net->in_h, net->in_w, 0, &aug);
                dsa_forward(bf.xa, bf.xb, &d, &cfg->dsa_cfg, net->in_c, net->in_h, net->in_w);
                x = bf.xa;
            }
            double l = 0.0;
            if (adv->kind == TRAIN_ADV_TRADES) {
                if (trades_grads(net, adv, pool, x, B, &bf, soft, step, aseed, &l, e)) goto done;
            } else {
                if (adv->kind == TRAIN_ADV_ATTACK) {
                    float *out = x == bf.xa ? bf.xb : bf.xa; // the buffer x is not in
                    if (make_adversarial(net, adv, pool, x, B, &bf, step, aseed, out, e)) goto done;
                    x = out;
                }
                StepLoss sl = {.y = bf.yb, .soft = soft, .K = K, .scale = 1.0f / (float)B};
                NetBackward nb = {.loss = step_loss, .ctx = &sl, .nvec = 1, .logits = bf.logits, .param_grads = 1};
                net_zero_grads(net);
                if (net_forward_backward(net, x, B, &nb, e)) goto done;
                l = nb.loss_sum;
            }
            optim_step(&opt, net->params, net->grads);
            loss_sum += l;
            for (int b = 0; b < B; b++) correct += logits_argmax(bf.logits + (size_t)b * K, K) == bf.yb[b];
            step++;
            if (cfg->progress) {
                char extra[64];
                snprintf(extra, sizeof(extra), "epoch %d, loss %.4f", ep, loss_sum / (s + B));
                progress_update(&prog, ep + (double)(s + B) / n, extra);
            }
        }
        if (!isfinite(loss_sum)) {
            err_set(e, "the training loss is %g at epoch %d (lr %g too high?)", loss_sum, ep, lr);
            goto done;
        }
        res->train_loss = loss_sum / seen;
        res->train_acc = 100.0 * correct / seen;
        if (ep == decay_at) {
            lr *= 0.1; // the reference builds a new optimizer: momentum (Adam: moments) start over
            opt.lr = (float)lr;
            optim_reset(&opt);
        }
        double test_acc = -1;
        int last = ep == cfg->epochs;
        if (test && test->n > 0 && (last || (cfg->eval_every > 0 && ep % cfg->eval_every == 0))) {
            double t0 = time_now();
            if (train_test_accuracy(net, test, &test_acc, e)) goto done;
            t_eval += time_now() - t0;
            if (test_acc > res->best_acc) {
                res->best_acc = test_acc;
                res->best_epoch = ep;
                if (best) net_snapshot_take(best, net);
            }
            if (last) res->test_acc = test_acc;
        }
        if (cfg->log_every > 0 && (last || ep % cfg->log_every == 0))
            log_line(cfg, &prog, ep, res->train_loss, res->train_acc, test_acc, (float)lr, time_now() - t_start);
        if (cfg->on_epoch && cfg->on_epoch(cfg->on_epoch_ctx, net, ep, e)) goto done;
    }
    res->steps = step;
    res->eval_seconds = t_eval;
    res->seconds = time_now() - t_start - t_eval;
    if (res->best_acc < 0) res->best_acc = 0;
    rc = 0;
done:
    progress_end(&prog);
    net->train = 0;
    optim_free(&opt);
    buffers_free(&bf);
    return rc;
}

// ----------------------------------------------------------------------------
// runs

void train_float_repr(double v, char *buf, size_t n) { py_repr_float(v, buf, n); }

// The names in BEARD's checkpoint file names ({method}_{model}_{dataset}_{ipc}_{attack}
// [_{acc}].pth) come from configs and files: each must pass the file-name rule, and the
// folder must take files, before any training starts.
static int check_outputs(const TrainRunsConfig *rc, const TrainConfig *cfg, Err *e) {
    if (file_name_check(rc->method, "method", e) || file_name_check(rc->arch, "model", e) ||
        file_name_check(rc->ipc, "ipc", e) || file_name_check(cfg->adv.name, "train attack name", e))
        return -1;
    return file_check_dir_writable(rc->save_dir, 1, e);
}

// dir/{method}_{model}_{dataset}_{ipc}_{attack}{tail}.pth
static int output_path(char *buf, size_t n, const TrainRunsConfig *rc, const TrainConfig *cfg, const char *tail, Err *e) {
    char name[600];
    if (snprintf(name, sizeof(name), "%s_%s_%s_%s_%s%s.pth", rc->method, rc->arch, rc->info->name, rc->ipc,
                 cfg->adv.name, tail) >= (int)sizeof(name))
        return err_set(e, "checkpoint name too long");
    return file_path_join(buf, n, rc->save_dir, name, "checkpoint name", e);
}

static int save_snapshot(const TrainRunsConfig *rc, const NetSnapshot *s, const char *path, Err *e) {
    Net net;
    const DatasetInfo *in = rc->info;
    if (model_create(&net, rc->arch, in->c, in->n_classes, in->h, in->w, e)) return -1;
    net_snapshot_restore(s, &net);
    int r = checkpoint_save(&net, path, e);
    net_free(&net);
    return r;
}

int train_runs(const Pool *pool, const TrainTest *test, const TrainConfig *cfg, const TrainRunsConfig *rc,
               TrainSummary *out, Err *e) {
    memset(out, 0, sizeof(*out));
    if (rc->runs < 1 || rc->runs > TRAIN_MAX_RUNS) return err_set(e, "--runs must be in [1, %d]", TRAIN_MAX_RUNS);
    if (rc->save_dir && check_outputs(rc, cfg, e)) return -1;
    const DatasetInfo *in = rc->info;
    NetSnapshot run_best = {0}, best = {0}, fin = {0};
    double best_final = -1;
    int status = -1;
    out->best = -1;
    for (int r = 0; r < rc->runs; r++) {
        Net net;
        if (rc->init_path ? checkpoint_load(&net, rc->init_path, rc->arch, in->c, in->n_classes, in->h, in->w, e)
                          : model_create(&net, rc->arch, in->c, in->n_classes, in->h, in->w, e))
            goto done;
        if (r == 0 && (net_snapshot_init(&run_best, &net, e) || net_snapshot_init(&best, &net, e) ||
                       net_snapshot_init(&fin, &net, e))) {
            net_free(&net);
            goto done;
        }
        TrainConfig c = *cfg;
        char label[32];
        snprintf(label, sizeof(label), "run %d/%d", r + 1, rc->runs);
        c.run_label = label;
        TrainResult res;
        if (train_model(&net, pool, test, &c, rc->seed + (uint64_t)r, &run_best, &res, e)) {
            err_wrap(e, "run %d", r + 1);
            net_free(&net);
            goto done;
        }
        out->acc[r] = res.test_acc;
        out->best_acc[r] = res.best_acc;
        out->seconds[r] = res.seconds;
        if (run_best.valid && res.best_acc > out->best) {
            out->best = res.best_acc;
            out->best_run = r;
            NetSnapshot t = best;
            best = run_best, run_best = t;
        }
        if (res.test_acc > best_final) {
            best_final = res.test_acc;
            out->final_run = r;
            net_snapshot_take(&fin, &net);
        }
        out->runs = r + 1;
        net_free(&net);
    }
    double m = 0, v = 0;
    for (int r = 0; r < out->runs; r++) m += out->acc[r];
    m /= out->runs;
    for (int r = 0; r < out->runs; r++) v += (out->acc[r] - m) * (out->acc[r] - m);
    out->mean = m;
    out->std = sqrt(v / out->runs);
    if (rc->save_dir) {
        char acc[40];
        // BEARD names the file with acc_test, the fraction of correct test images
        acc[0] = '_';
        train_float_repr(test && test->n ? round(out->best * test->n / 100.0) / test->n : 0.0, acc + 1, sizeof(acc) - 1);
        if (output_path(out->best_path, sizeof(out->best_path), rc, cfg, acc, e) ||
            output_path(out->final_path, sizeof(out->final_path), rc, cfg, "", e))
            goto done;
        if (!best.valid) out->best_path[0] = 0; // no test set: nothing to select by
        if ((best.valid && save_snapshot(rc, &best, out->best_path, e)) || save_snapshot(rc, &fin, out->final_path, e))
            goto done;
    }
    status = 0;
done:
    net_snapshot_free(&run_best);
    net_snapshot_free(&best);
    net_snapshot_free(&fin);
    return status;
}
