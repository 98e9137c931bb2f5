/*
 * sre2l.c: SRe2L's recover (Yin et al., "Squeeze, Recover and Relabel: Dataset Condensation at
 * ImageNet Scale From A New Perspective", arXiv:2306.13092), as VILA-Lab/SRe2L
 * `SRe2L/(*small_dataset)/recover_cifar.py` runs it on CIFAR: for each ipc id, the classes in
 * batches of batch_size, inputs ~ randn in model space, `iterations` steps of the recover
 * iteration (recover.c) with only the random roll by (randint(0, jitter), randint(0, jitter)),
 * the teacher in eval mode, the last images kept (the code's best_inputs is overwritten before
 * saving). Defaults: recover_cifar.sh's settings (lr 0.25, r_bn 0.01, 1000 iterations, batch
 * 100; the argparse defaults are lr 0.1, r_bn 0.05), jitter 4, first_bn_multiplier 10; the
 * teacher torchvision's ResNet-18 modified for 32 px (--arch resnet18_modified).
 *
 * The loop (also CDA's and SC-DD's, which differ in the augmentation draw and the defaults)
 * as stage steps: step it is iteration it % iterations of batch it / iterations; batch b is
 * ipc id b / ceil(K / batch_size) and classes from (b % ceil(K / batch_size)) batch_size on.
 * Image (class c, ipc id i) is r->syn[c ipc + i], as the official new{c}/class{c}_id{i} file.
 * Deliberate difference: the noise and the offsets come from beard's generator (per step).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/augment.h"
#include "decoupled.h"

typedef struct {
    Net teacher;
    int has_teacher;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh;
    RecoverWork *w;
    Sre2lDraw draw;
    int bs, per_ipc;   // batch size, batches per ipc id
    long iters;        // per batch
    float lr, r_bn, first_mult;
    float *x, *grad;   // (bs, D): the current batch
    int *y;            // (bs)
    long cur;          // the batch in x, -1 before the first
    Optim adam;
} Sre2l;

static const DistillParamDef sre2l_params[] = {
    {"batch_size", DPARAM_INT, 100, NULL, 1, "images per recover batch (one per class: at most the class count)"},
    {"lr", DPARAM_NUM, 0.25, NULL, 0, "Adam's learning rate (cosine schedule over a batch's iterations)"},
    {"r_bn", DPARAM_NUM, 0.01, NULL, 0, "weight of the BatchNorm statistics term"},
    {"first_bn_multiplier", DPARAM_NUM, 10, NULL, 0, "extra weight of the first BatchNorm layer's term"},
    {"jitter", DPARAM_INT, 4, NULL, 0, "random roll by randint(0, jitter) pixels in both directions"},
    DECOUPLED_TEACHER_PARAMS,
    {NULL},
};

void sre2l_roll_draw(const DistillRun *r, int it, int total, Rng *rng, RecoverDraw *d) {
    (void)it, (void)total;
    memset(d, 0, sizeof(*d));
    int jitter = (int)distill_param_int(r->p, "jitter");
    d->roll_dy = augment_randint(rng, 0, jitter);
    d->roll_dx = augment_randint(rng, 0, jitter);
}

void sre2l_family_free(DistillRun *r) {
    Sre2l *s = r->state;
    if (!s) return;
    if (s->has_teacher) net_free(&s->teacher);
    recover_work_free(s->w);
    optim_free(&s->adam);
    xfree(s->x), xfree(s->grad);
    free(s->y);
    free(s);
    r->state = NULL;
}

int sre2l_family_init(DistillRun *r, Sre2lDraw draw, Err *e) {
    Sre2l *s = calloc(1, sizeof(Sre2l));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    s->draw = draw;
    s->cur = -1;
    s->iters = r->cfg->iterations;
    if (s->iters < 1) return err_set(e, "%s: --iterations (per batch) must be at least 1", r->cfg->method->name);
    s->lr = (float)distill_param(r->p, "lr");
    s->r_bn = (float)distill_param(r->p, "r_bn");
    s->first_mult = (float)distill_param(r->p, "first_bn_multiplier");
    int nt;
    Net *tp[1] = {&s->teacher};
    if (decoupled_teachers_load(r, tp, 1, &nt, e)) return -1;
    s->has_teacher = 1;
    if (recover_hooks(&s->teacher, 0, s->hooks, &s->nh, e)) return -1;
    int K = r->K;
    s->bs = (int)distill_param_int(r->p, "batch_size");
    if (s->bs > K) s->bs = K;
    s->per_ipc = (K + s->bs - 1) / s->bs;
    size_t D = distill_syn_size(r);
    if (!(s->w = recover_work_new(&s->teacher, s->hooks, s->nh, s->bs, e))) return -1;
    s->x = xmalloc(sizeof(float) * s->bs * D);
    s->grad = xmalloc(sizeof(float) * s->bs * D);
    s->y = malloc(sizeof(int) * s->bs);
    if (!s->x || !s->grad || !s->y) return err_set(e, "out of memory for a recover batch of %d", s->bs);
    return 0;
}

long sre2l_family_total_steps(const DistillRun *r) {
    const Sre2l *s = r->state;
    return (long)r->ipc * s->per_ipc * s->iters;
}

// batch b's ipc id, first class and size
static void batch_of(const DistillRun *r, const Sre2l *s, long b, int *ipc_id, int *k0, int *B) {
    *ipc_id = (int)(b / s->per_ipc);
    *k0 = (int)(b % s->per_ipc) * s->bs;
    *B = r->K - *k0 < s->bs ? r->K - *k0 : s->bs;
}

// the batch's images from / into their places in r->syn
static void batch_copy(DistillRun *r, Sre2l *s, long b, int to_syn) {
    int ipc_id, k0, B;
    batch_of(r, s, b, &ipc_id, &k0, &B);
    size_t D = distill_syn_size(r);
    for (int i = 0; i < B; i++) {
        float *dst = r->syn + ((size_t)(k0 + i) * r->ipc + ipc_id) * D;
        if (to_syn) memcpy(dst, s->x + (size_t)i * D, sizeof(float) * D);
        else memcpy(s->x + (size_t)i * D, dst, sizeof(float) * D);
    }
}

int sre2l_family_step(DistillRun *r, Err *e) {
    Sre2l *s = r->state;
    long b = r->it / s->iters;
    int it = (int)(r->it % s->iters), ipc_id, k0, B;
    batch_of(r, s, b, &ipc_id, &k0, &B);
    size_t D = distill_syn_size(r);
    for (int i = 0; i < B; i++) s->y[i] = k0 + i;
    if (it == 0) { // a new batch: randn, a fresh Adam
        for (size_t i = 0; i < (size_t)B * D; i++) s->x[i] = (float)rng_normal(&r->rng);
        optim_free(&s->adam);
        if (recover_adam_init(&s->adam, (size_t)B * D, s->lr)) return err_set(e, "out of memory for the optimiser");
        s->cur = b;
    } else if (s->cur != b) {
        return err_set(e, "step %ld is inside batch %ld, which has not started", r->it, b);
    }
    RecoverDraw d;
    s->draw(r, it, (int)s->iters, &r->rng, &d);
    RecoverLoss lc = {.r_stat = s->r_bn, .first_mult = s->first_mult};
    RecoverLosses L;
    if (recover_grad(s->w, s->x, s->y, B, NULL, 0, &d, &lc, s->grad, &L, e)) return -1;
    r->loss = L.loss;
    snprintf(r->note, sizeof(r->note), "ipc %d, classes %d-%d, ce %.4f, bn %.4f", ipc_id, k0, k0 + B - 1, L.ce, L.stat);
    if (!isfinite(L.loss)) return 0; // the stage stops and says so
    distill_observe_grad(r, (int)b, s->grad, (size_t)B * D);
    recover_update(&s->adam, s->x, s->grad, (float)recover_cosine_lr(s->lr, it, (int)s->iters), B, r->syn_c,
                   (size_t)r->syn_h * r->syn_w, r->info->mean, r->info->std);
    batch_copy(r, s, b, 1);
    return 0;
}

int sre2l_family_save(DistillRun *r, TensorDict *ck, Err *e) {
    Sre2l *s = r->state;
    return decoupled_adam_save(&s->adam, s->cur, "recover.adam", ck, e);
}

int sre2l_family_load(DistillRun *r, const TensorDict *ck, Err *e) {
    Sre2l *s = r->state;
    long b = r->it / s->iters;
    int ipc_id, k0, B, loaded;
    batch_of(r, s, b, &ipc_id, &k0, &B);
    if (decoupled_adam_load(&s->adam, (size_t)B * distill_syn_size(r), s->lr, b, "recover.adam", ck, &loaded, e))
        return -1;
    if (loaded) { // inside batch b: its images are in r->syn
        s->cur = b;
        batch_copy(r, s, b, 0);
    }
    return 0;
}

static int sre2l_init(DistillRun *r, Err *e) { return sre2l_family_init(r, sre2l_roll_draw, e); }

const DistillMethodDef distill_sre2l = {
    .name = "SRe2L",
    .aliases = "sre2l",
    .summary = "Squeeze, Recover and Relabel (Yin et al., arXiv:2306.13092): images that match a teacher's BatchNorm "
               "statistics",
    .reference = "VILA-Lab/SRe2L SRe2L/*small_dataset/recover_cifar.py (recover_cifar.sh's settings)",
    .params = sre2l_params,
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_IMAGEFOLDER,
    .image_ext = "jpg",
    .default_arch = DECOUPLED_DEFAULT_ARCH,
    .default_iterations = 1000,
    .iterations_help = "per recover batch (the official --iteration)",
    .no_real_data = 1,
    .total_steps = sre2l_family_total_steps,
    .init = sre2l_init,
    .step = sre2l_family_step,
    .save = sre2l_family_save,
    .load = sre2l_family_load,
    .free = sre2l_family_free,
};
