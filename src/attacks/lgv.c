/*
 * lgv.c: LGV, Large Geometric Vicinity (Gubri et al., "LGV: Boosting Adversarial Example
 * Transferability from Large Geometric Vicinity", arXiv:2207.13129), as torchattacks
 * 3.5.1 LGV computes it. Phase 1 (once per evaluation, at the first batch): from a copy
 * of the surrogate, SGD with a constant lr (momentum 0.9, weight decay wd, cross-entropy,
 * training mode) collects epochs * nb_models_epoch models, one after every
 * 1 / nb_models_epoch epoch: each collection step trains on the first
 * int(ceil(n / batch) / nb_models_epoch) batches of a fresh shuffle of the training split
 * (torchattacks' itertools.islice over a new DataLoader iterator), the optimizer state
 * carrying over. This runs on src/train's engine (train_model, with max_batches and an
 * epoch hook). The models are then shuffled (LightEnsemble order "shuffle"). Phase 2:
 * the base attack (`attack`, BIM by default, resolved under preset torchattacks, as
 * torchattacks builds it with its defaults and **kwargs) runs on the ensemble, each
 * forward call taking the next n_grad models in the shuffled cycle (n_grad = -1: all,
 * logits averaged), the cycle carrying over from batch to batch. The examples are scored
 * on the original surrogate, as any attack's.
 * The training split is the dataset's (`beard attack --data`, `--train-limit`), in the
 * model's input space: normalised tensors under both semantics (under pixel semantics
 * torchattacks trains the normalising wrapper on pixels, which is the same arithmetic).
 * torchattacks' LGV raises NotImplementedError for set_mode_targeted_by_label (it only
 * maps the least-likely and random modes): BEARD's targeted mode cannot run there. beard
 * runs it, the base attack targeted at the given targets (the corrected behaviour).
 * Deliberate differences: the shuffles (of the data and of the model order) come from
 * beard's Philox streams, not torch's and Python's generators.
 */
#include <stdlib.h>
#include <string.h>

#include "../models/convnet.h"
#include "../train/train.h"
#include "attack.h"

static const AttackParamDef params[] = {
    {"lr", 0.05, P_SAME, P_SAME, "constant SGD learning rate of the collection", AP_POS(100)},
    {"epochs", 10, P_SAME, P_SAME, "epochs of the collection", AP_INT(1, 100000)},
    {"nb_models_epoch", 4, P_SAME, P_SAME, "models collected per epoch", AP_INT(1, 1000)},
    {"wd", 1e-4, P_SAME, P_SAME, "SGD weight decay", AP_REAL(0, 1)},
    {"n_grad", 1, P_SAME, P_SAME, "models per forward pass of the base attack (-1: all)", AP_INT(-1, 1000000)},
    {"batch", 256, P_SAME, P_SAME, "training batch (the paper's 256)", AP_INT(1, 1 << 16)},
    {"attack", 0, P_SAME, P_SAME, "the base attack on the collected models, e.g. BIM(eps=4/255)", AP_TEXT("BIM")},
    {NULL},
};

typedef struct {
    int n;
    Net *models;   // (n)
    Net **members; // (n) in the shuffled order
    int cursor;
    const AttackDef *base;
    AttackParams bp;
} LgvState;

static void lgv_state_free(void *state) {
    LgvState *s = state;
    if (!s) return;
    for (int i = 0; i < s->n; i++) net_free(&s->models[i]);
    free(s->models), free(s->members), free(s);
}

static int lgv_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e) {
    if (attack_params_get(p, "n_grad") == 0) return err_set(e, "%s: n_grad must be positive or -1, not 0", def->name);
    const AttackDef *b;
    AttackParams *bp = malloc(sizeof(AttackParams));
    if (!bp) return err_set(e, "out of memory");
    int rc = attack_resolve(attack_params_get_str(p, "attack"), PRESET_TORCHATTACKS, &b, bp, e);
    if (!rc && attack_needs_train(b, bp)) rc = err_set(e, "%s: the base attack cannot train models of its own", def->name);
    if (!rc && shape) rc = attack_params_check(b, bp, shape, e);
    free(bp);
    return rc ? err_wrap(e, "%s attack", def->name) : 0;
}

// a copy of net (architecture, parameters, buffers)
static int net_copy(Net *dst, const Net *src, Err *e) {
    if (model_create(dst, src->arch, src->in_c, src->n_classes, src->in_h, src->in_w, e)) return -1;
    if (dst->n_params != src->n_params || dst->n_buffers != src->n_buffers) {
        net_free(dst);
        return err_set(e, "cannot copy a %s", src->arch);
    }
    memcpy(dst->params, src->params, sizeof(float) * src->n_params);
    if (src->n_buffers) memcpy(dst->buffers, src->buffers, sizeof(float) * src->n_buffers);
    net_set_normalize(dst, src->normalize, src->mean, src->std);
    return 0;
}

typedef struct {
    LgvState *s;
} Collect;

static int collect_model(void *c, const Net *net, int ep, Err *e) {
    LgvState *s = ((Collect *)c)->s;
    if (net_copy(&s->models[ep], net, e)) return -1;
    s->models[ep].train = 0; // collected in eval mode, as torchattacks' model_sample.eval()
    s->n = ep + 1;
    return 0;
}

static int lgv_collect(const AttackCtx *ctx, LgvState *s, Err *e) {
    const AttackTrainSet *tr = ctx->train;
    const Net *net = ctx->net;
    if (!tr || tr->n <= 0) return err_set(e, "LGV needs the training split (none was given)");
    int total = attack_param_int(ctx, "epochs") * attack_param_int(ctx, "nb_models_epoch");
    int batch = attack_param_int(ctx, "batch");
    size_t D = ctx->D, plane = (size_t)net->in_h * net->in_w;
    s->models = calloc((size_t)total, sizeof(Net));
    s->members = calloc((size_t)total, sizeof(Net *));
    Pool pool = {.n = tr->n, .c = net->in_c, .h = net->in_h, .w = net->in_w, .n_classes = net->n_classes};
    pool.x = xmalloc(sizeof(float) * D * tr->n);
    pool.y = xmalloc(sizeof(int) * tr->n);
    Net work;
    int have_work = 0, rc = -1;
    if (!s->models || !s->members || !pool.x || !pool.y) {
        err_set(e, "out of memory for LGV's %d models", total);
        goto done;
    }
    for (int c = 0; c < net->in_c && c < 3; c++) pool.mean[c] = tr->mean[c], pool.std[c] = tr->std[c];
    for (int i = 0; i < tr->n; i++) { // the model's input space: torchvision's Normalize in float32
        pool.y[i] = tr->y[i];
        for (int c = 0; c < net->in_c; c++)
            for (size_t j = 0; j < plane; j++) {
                size_t k = (size_t)i * D + c * plane + j;
                pool.x[k] = (tr->x[k] - tr->mean[c]) / tr->std[c];
            }
    }
    if (net_copy(&work, net, e)) goto done;
    have_work = 1;
    TrainConfig cfg;
    train_config_default(&cfg);
    cfg.epochs = total - 1; // the recipe runs epochs + 1 epochs
    cfg.batch = batch;
    cfg.lr = (float)attack_param(ctx, "lr");
    cfg.momentum = 0.9f;
    cfg.weight_decay = (float)attack_param(ctx, "wd");
    cfg.lr_decay = 0;
    cfg.dsa = 0;
    cfg.eval_every = 0;
    cfg.keep_params = 1;
    int per_epoch = (tr->n + batch - 1) / batch;
    cfg.max_batches = (int)(per_epoch * (1.0 / attack_param_int(ctx, "nb_models_epoch"))); // int(len * epoch_frac)
    if (cfg.max_batches < 1) {
        err_set(e, "LGV: %d training images in batches of %d make no batch per collected model", tr->n, batch);
        goto done;
    }
    Collect col = {s};
    cfg.on_epoch = collect_model;
    cfg.on_epoch_ctx = &col;
    TrainResult res;
    if (train_model(&work, &pool, NULL, &cfg, ctx->seed ^ 0x4C4756ull, NULL, &res, e)) goto done;
    // LightEnsemble(order="shuffle"): random.shuffle of the list
    int *perm = malloc(sizeof(int) * (size_t)s->n);
    if (!perm) {
        err_set(e, "out of memory");
        goto done;
    }
    Rng r;
    rng_init(&r, ctx->seed, 0x4C4756000001ull);
    rng_permutation(&r, perm, s->n);
    for (int i = 0; i < s->n; i++) s->members[i] = &s->models[perm[i]];
    free(perm);
    for (int i = 0; i < s->n; i++) net_set_normalize(&s->models[i], net->normalize, net->mean, net->std);
    rc = 0;
done:
    if (have_work) net_free(&work);
    xfree(pool.x), xfree(pool.y);
    return rc;
}

static int lgv_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    LgvState *s = ctx->state ? *ctx->state : NULL, *local = NULL;
    if (!s) {
        s = calloc(1, sizeof(LgvState));
        if (!s) return err_set(e, "out of memory");
        if (attack_resolve(attack_param_str(ctx, "attack"), PRESET_TORCHATTACKS, &s->base, &s->bp, e) ||
            lgv_collect(ctx, s, e)) {
            lgv_state_free(s);
            return err_wrap(e, "LGV");
        }
        if (ctx->state) *ctx->state = s;
        else local = s;
    }
    if (ctx->targeted && !s->base->targeted_ok) {
        if (local) lgv_state_free(local);
        return err_set(e, "LGV: %s has no targeted mode", s->base->name);
    }
    AttackEnsemble ens = {.members = s->members, .n = s->n, .n_grad = attack_param_int(ctx, "n_grad"),
                          .cursor = &s->cursor};
    AttackCtx sub = *ctx;
    sub.ens = &ens;
    sub.net = s->members[0];
    sub.params = &s->bp;
    sub.state = NULL;
    int rc = s->base->run(&sub, x, y, t, B, x_adv, e);
    if (local) lgv_state_free(local);
    return rc;
}

const AttackDef attack_lgv = {
    .name = "LGV",
    .aliases = "lgv",
    .summary = "LGV: an attack on models collected along an SGD trajectory from the surrogate (arXiv:2207.13129)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = lgv_run,
    .check = lgv_check,
    .state_free = lgv_state_free,
    .needs_train = 1,
};
