/*
 * gvbsm.c: G-VBSM's recover (Shao et al., "Generalized Large-Scale Data Condensation via
 * Various Backbone and Statistical Matching", arXiv:2311.17950), as
 * shaoshitong/G_VBSM_Dataset_Condensation `Branch_CIFAR_10/recover/
 * data_synthesis_with_svd_with_db_with_all_statistic.py` runs it:
 *   - the training-set statistics of every Conv2d input of every teacher first (the teachers
 *     in eval mode over the training set with RandomCrop(32, 4) + flip, shuffled, batches of
 *     64; each batch's statistics weighted by its size over the set's size: the code divides
 *     by a fixed 50000, which is CIFAR-10's training set, so beard divides by the set's size);
 *   - the images of all classes and ipc ids in class-major order (its turn_index), in batches
 *     of batch_size, from randn; one teacher per iteration in turn (a counter that runs on
 *     across batches: the stage's step); every iteration RandomCrop(size, padding=4) + flip +
 *     roll by (randint(0, jitter), randint(0, jitter)) (jitter 32 by default: the script does
 *     not set it), the densified BN and conv-input terms of that teacher (recover.c; each conv
 *     hook dropped with probability drop_rate, its first-iteration gradient doubled as the
 *     code's initialisation makes it, fix_first_grad for the single one), the eigenvalue term
 *     of each class (nuc_norm, tau), Adam, cosine lr, and the clip with the normalisation
 *     constants. Those are CIFAR-100's in the code's CIFAR-10 branch (mean [0.5071, 0.4867,
 *     0.4408], std [0.2675, 0.2565, 0.2761]; its squeeze and relabel code normalise with them
 *     too); beard uses the dataset's own for teacher, recover and student alike (a deliberate
 *     difference: one normalisation through the pipeline);
 *   - every 100 iterations the verifier (the last teacher) classifies the un-augmented
 *     images; being hooked, that forward updates its densified statistics too (reproduced:
 *     verifier_every 100, 0 turns it off); after each batch it classifies the images
 *     quantised to 8 bits, with the same effect.
 * The densified statistics persist across batches, as the hooks do in the code; checkpoints
 * hold them. Defaults: recover.sh (lr 0.05, iteration 4000, r_loss 0.01, nuc_norm 1, batch
 * 100) and the argparse defaults (first_multiplier 10, tau 4, training_momentum 0.8,
 * drop_rate 0.4). Output: PNG, as the code saves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../data/augment.h"
#include "decoupled.h"

static const DistillParamDef gvbsm_params[] = {
    {"batch_size", DPARAM_INT, 100, NULL, 1, "images per recover batch (class-major through all classes and ipc ids)"},
    {"lr", DPARAM_NUM, 0.05, NULL, 0, "Adam's learning rate (cosine schedule over a batch's iterations)"},
    {"r_loss", DPARAM_NUM, 0.01, NULL, 0, "weight of the BatchNorm and convolution-input statistics terms"},
    {"first_multiplier", DPARAM_NUM, 10, NULL, 0, "extra weight of the first hooked layer's term"},
    {"nuc_norm", DPARAM_NUM, 1, NULL, 0, "weight of the eigenvalue (Gram matrix) term"},
    {"tau", DPARAM_NUM, 4, NULL, 0, "temperature of the eigenvalue term's target"},
    {"training_momentum", DPARAM_NUM, 0.8, NULL, 0, "momentum of the densified batch statistics"},
    {"drop_rate", DPARAM_NUM, 0.4, NULL, 0, "probability of skipping a convolution hook in an iteration"},
    {"jitter", DPARAM_INT, 32, NULL, 0, "random roll by randint(0, jitter) pixels in both directions"},
    {"stat_batch", DPARAM_INT, 64, NULL, 1, "batch of the training-set statistics pass"},
    {"verifier_every", DPARAM_INT, 100, NULL, 0, "the hooked verifier's forward every N iterations (0: never)"},
    {"fix_first_grad", DPARAM_BOOL, 0, NULL, NAN,
     "the single statistics gradient in a hook's first iteration (the code doubles it)"},
    DECOUPLED_TEACHER_PARAMS,
    {NULL},
};

typedef struct {
    Net net;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh, nconv;
    ConvStats conv[RECOVER_MAX_HOOKS];
    HookState state[RECOVER_MAX_HOOKS];
    int has_state;
    RecoverWork *w;
} Teacher;

typedef struct {
    Teacher T[DECOUPLED_MAX_TEACHERS];
    int nt, bs, nbatch;
    long iters;
    float lr;
    float *grad, *q;  // (bs, D)
    int *y;           // (bs)
    long cur;         // the batch Adam belongs to, -1 before the first
    Optim adam;
} Gvbsm;

static void gvbsm_free(DistillRun *r) {
    Gvbsm *s = r->state;
    if (!s) return;
    for (int t = 0; t < s->nt; t++) {
        Teacher *T = &s->T[t];
        recover_work_free(T->w);
        recover_conv_stats_free(T->conv, T->nconv);
        if (T->has_state) recover_state_free(T->state, T->nh);
        net_free(&T->net);
    }
    optim_free(&s->adam);
    xfree(s->grad), xfree(s->q);
    free(s->y);
    free(s);
    r->state = NULL;
}

// the training images with the statistics pass's RandomCrop(32, 4) + flip, in a shuffled order
static float *stats_images(DistillRun *r, const float *realx) {
    int C = r->C, H = r->H, W = r->W, n = r->real->n;
    size_t plane = (size_t)H * W, D = plane * C;
    float *x = xmalloc(sizeof(float) * n * D), *t = xmalloc(sizeof(float) * D);
    int *perm = malloc(sizeof(int) * (n > 0 ? n : 1));
    if (!x || !t || !perm) {
        xfree(x), xfree(t), free(perm);
        return NULL;
    }
    rng_permutation(&r->rng, perm, n);
    for (int i = 0; i < n; i++) {
        const float *src = realx + (size_t)perm[i] * D;
        float *d = x + (size_t)i * D;
        int top = augment_randint(&r->rng, 0, 8), left = augment_randint(&r->rng, 0, 8);
        for (int c = 0; c < C; c++) // zero padding in pixel space
            augment_crop_pad_forward(t + c * plane, src + c * plane, 1, 1, H, W, 4, top, left,
                                     -r->info->mean[c] / r->info->std[c]);
        if (rng_uniform(&r->rng) < 0.5f) augment_hflip_forward(d, t, 1, C, H, W);
        else memcpy(d, t, sizeof(float) * D);
    }
    xfree(t), free(perm);
    return x;
}

static int gvbsm_init(DistillRun *r, Err *e) {
    Gvbsm *s = calloc(1, sizeof(Gvbsm));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    s->cur = -1;
    s->iters = r->cfg->iterations;
    if (s->iters < 1) return err_set(e, "G-VBSM: --iterations (per batch) must be at least 1");
    s->lr = (float)distill_param(r->p, "lr");
    if (!(distill_param(r->p, "drop_rate") <= 1)) return err_set(e, "G-VBSM drop_rate must lie in [0, 1]");
    Net *nets[DECOUPLED_MAX_TEACHERS];
    for (int t = 0; t < DECOUPLED_MAX_TEACHERS; t++) nets[t] = &s->T[t].net;
    int nt;
    if (decoupled_teachers_load(r, nets, DECOUPLED_MAX_TEACHERS, &nt, e)) return -1;
    s->nt = nt;
    int total = r->K * r->ipc;
    s->bs = (int)distill_param_int(r->p, "batch_size");
    if (s->bs > total) s->bs = total;
    s->nbatch = (total + s->bs - 1) / s->bs;
    size_t D = distill_syn_size(r);
    s->grad = xmalloc(sizeof(float) * s->bs * D);
    s->q = xmalloc(sizeof(float) * s->bs * D);
    s->y = malloc(sizeof(int) * s->bs);
    float *realx = decoupled_real_images(r);
    float *sx = realx ? stats_images(r, realx) : NULL;
    xfree(realx);
    if (!s->grad || !s->q || !s->y || !sx) {
        xfree(sx);
        return err_set(e, "out of memory for G-VBSM's buffers and the statistics pass");
    }
    int rc = 0;
    for (int t = 0; t < nt && !rc; t++) {
        Teacher *T = &s->T[t];
        if (recover_hooks(&T->net, 1, T->hooks, &T->nh, e)) {
            rc = err_wrap(e, "teacher %d", t + 1);
            break;
        }
        for (int h = 0; h < T->nh; h++) T->nconv += T->hooks[h].kind == RECOVER_HOOK_CONV;
        int nconv = T->nconv;
        T->nconv = 0; // recover_conv_stats frees what it made on failure
        if (recover_conv_stats(&T->net, T->hooks, T->nh, sx, r->real->n, (int)distill_param_int(r->p, "stat_batch"),
                               T->conv, e)) {
            rc = -1;
            break;
        }
        T->nconv = nconv;
        if (recover_state_init(T->state, T->hooks, T->nh, e)) {
            rc = -1;
            break;
        }
        T->has_state = 1;
        if (!(T->w = recover_work_new(&T->net, T->hooks, T->nh, s->bs, e))) rc = -1;
    }
    xfree(sx);
    return rc;
}

static long gvbsm_total_steps(const DistillRun *r) {
    const Gvbsm *s = r->state;
    return (long)s->nbatch * s->iters;
}

static void draw_drops(Rng *rng, const Teacher *T, float drop_rate, unsigned char *drop) {
    for (int c = 0; c < T->nconv; c++) drop[c] = rng_uniform_d(rng) > 1.0 - drop_rate;
}

static int gvbsm_step(DistillRun *r, Err *e) {
    Gvbsm *s = r->state;
    const DistillParams *p = r->p;
    long b = r->it / s->iters;
    int it = (int)(r->it % s->iters), total = r->K * r->ipc, s0 = (int)b * s->bs;
    int B = total - s0 < s->bs ? total - s0 : s->bs, C = r->syn_c;
    size_t D = distill_syn_size(r), plane = (size_t)r->syn_h * r->syn_w;
    float *x = r->syn + (size_t)s0 * D; // class-major: the batch is contiguous in r->syn
    for (int i = 0; i < B; i++) s->y[i] = (s0 + i) / r->ipc;
    if (it == 0) {
        for (size_t i = 0; i < (size_t)B * D; i++) x[i] = (float)rng_normal(&r->rng);
        optim_free(&s->adam);
        if (recover_adam_init(&s->adam, (size_t)B * D, s->lr)) return err_set(e, "out of memory for the optimiser");
        s->cur = b;
    } else if (s->cur != b) {
        return err_set(e, "step %ld is inside batch %ld, which has not started", r->it, b);
    }
    float drop_rate = (float)distill_param(p, "drop_rate"), mom = (float)distill_param(p, "training_momentum");
    int jitter = (int)distill_param_int(p, "jitter"), ve = (int)distill_param_int(p, "verifier_every");
    Teacher *te = &s->T[r->it % s->nt];
    RecoverDraw d = {.pad_crop = 1, .pad = 4};
    d.top = augment_randint(&r->rng, 0, 8), d.left = augment_randint(&r->rng, 0, 8);
    d.flip = rng_uniform(&r->rng) < 0.5f;
    d.roll_dy = augment_randint(&r->rng, 0, jitter);
    d.roll_dx = augment_randint(&r->rng, 0, jitter);
    unsigned char drop[RECOVER_MAX_HOOKS];
    draw_drops(&r->rng, te, drop_rate, drop);
    RecoverLoss lc = {.r_stat = (float)distill_param(p, "r_loss"), .first_mult = (float)distill_param(p, "first_multiplier"),
                      .densify = 1, .momentum = mom, .conv = te->conv, .state = te->state, .drop = drop,
                      .nuc = (float)distill_param(p, "nuc_norm"), .tau = (float)distill_param(p, "tau"), .nuc_side = 32,
                      .fix_first_grad = distill_param_bool(p, "fix_first_grad")};
    RecoverLosses L;
    if (recover_grad(te->w, x, s->y, B, NULL, 0, &d, &lc, s->grad, &L, e)) return -1;
    r->loss = L.loss;
    snprintf(r->note, sizeof(r->note), "batch %ld/%d, teacher %ld, ce %.4f, stat %.4f, nuc %.4f", b + 1, s->nbatch,
             r->it % s->nt + 1, L.ce, L.stat, L.nuc);
    if (!isfinite(L.loss)) return 0; // the stage stops and says so
    Teacher *v = &s->T[s->nt - 1];
    if (ve > 0 && it % ve == 0) { // the hooked verifier sees the images before the step
        draw_drops(&r->rng, v, drop_rate, drop);
        RecoverLoss lv = lc;
        lv.conv = v->conv, lv.state = v->state, lv.drop = drop;
        if (recover_observe(v->w, x, B, &lv, e)) return -1;
    }
    distill_observe_grad(r, (int)b, s->grad, (size_t)B * D);
    recover_update(&s->adam, x, s->grad, (float)recover_cosine_lr(s->lr, it, (int)s->iters), B, C, plane, r->info->mean,
                   r->info->std);
    if (ve > 0 && it == s->iters - 1) { // the check on the images as saved (8 bits), by the hooked verifier
        for (int i = 0; i < B; i++)
            for (int c = 0; c < C; c++)
                for (size_t k = 0; k < plane; k++) {
                    size_t o = ((size_t)i * C + c) * plane + k;
                    double px = (double)x[o] * r->info->std[c] + r->info->mean[c];
                    px = px < 0 ? 0 : px > 1 ? 1 : px;
                    s->q[o] = (float)((floor(px * 255.0) / 255.0 - r->info->mean[c]) / r->info->std[c]);
                }
        draw_drops(&r->rng, v, drop_rate, drop);
        RecoverLoss lq = {.densify = 1, .momentum = mom, .conv = v->conv, .state = v->state, .drop = drop};
        if (recover_observe(v->w, s->q, B, &lq, e)) return -1;
    }
    return 0;
}

// the densified statistics of teacher t: every hook's var, mean, pvar, pmean in one vector,
// the init flags in another
static size_t state_size(const Teacher *T) {
    size_t n = 0;
    for (int h = 0; h < T->nh; h++) {
        size_t P = T->hooks[h].kind == RECOVER_HOOK_CONV ? (size_t)recover_patches(T->hooks[h].H, T->hooks[h].W) : 1;
        n += 2 * (size_t)T->hooks[h].C + 2 * P;
    }
    return n;
}

static void state_pack(Teacher *T, float *v, int64_t *init, int to_vec) {
    size_t o = 0;
    for (int h = 0; h < T->nh; h++) {
        size_t C = (size_t)T->hooks[h].C;
        size_t P = T->hooks[h].kind == RECOVER_HOOK_CONV ? (size_t)recover_patches(T->hooks[h].H, T->hooks[h].W) : 1;
        float *parts[4] = {T->state[h].var, T->state[h].mean, T->state[h].pvar, T->state[h].pmean};
        size_t len[4] = {C, C, P, P};
        for (int q = 0; q < 4; q++) {
            if (to_vec) memcpy(v + o, parts[q], sizeof(float) * len[q]);
            else memcpy(parts[q], v + o, sizeof(float) * len[q]);
            o += len[q];
        }
        if (to_vec) init[h] = T->state[h].init;
        else T->state[h].init = init[h] != 0;
    }
}

static int gvbsm_save(DistillRun *r, TensorDict *ck, Err *e) {
    Gvbsm *s = r->state;
    if (decoupled_adam_save(&s->adam, s->cur, "gvbsm.adam", ck, e)) return -1;
    for (int t = 0; t < s->nt; t++) {
        Teacher *T = &s->T[t];
        size_t n = state_size(T);
        float *v = xmalloc(sizeof(float) * (n ? n : 1));
        int64_t init[RECOVER_MAX_HOOKS];
        if (!v) return err_set(e, "out of memory");
        state_pack(T, v, init, 1);
        char name[64];
        int64_t sn = (int64_t)n, sh = T->nh;
        snprintf(name, sizeof(name), "gvbsm.teacher%d.stats", t);
        int rc = distill_ck_add(ck, name, DTYPE_F32, 1, &sn, v, e);
        snprintf(name, sizeof(name), "gvbsm.teacher%d.init", t);
        if (!rc) rc = distill_ck_add(ck, name, DTYPE_I64, 1, &sh, init, e);
        xfree(v);
        if (rc) return -1;
    }
    return 0;
}

static int gvbsm_load(DistillRun *r, const TensorDict *ck, Err *e) {
    Gvbsm *s = r->state;
    long b = r->it / s->iters;
    int total = r->K * r->ipc, s0 = (int)b * s->bs, B = total - s0 < s->bs ? total - s0 : s->bs, loaded;
    if (b < s->nbatch &&
        decoupled_adam_load(&s->adam, (size_t)B * distill_syn_size(r), s->lr, b, "gvbsm.adam", ck, &loaded, e))
        return -1;
    if (b < s->nbatch && loaded) s->cur = b;
    for (int t = 0; t < s->nt; t++) {
        Teacher *T = &s->T[t];
        char name[64];
        snprintf(name, sizeof(name), "gvbsm.teacher%d.stats", t);
        const Tensor *v = distill_ck_get(ck, name, DTYPE_F32, state_size(T), e);
        snprintf(name, sizeof(name), "gvbsm.teacher%d.init", t);
        const Tensor *in = v ? distill_ck_get(ck, name, DTYPE_I64, (size_t)T->nh, e) : NULL;
        if (!in) return -1;
        state_pack(T, v->data, in->data, 0);
    }
    return 0;
}

const DistillMethodDef distill_gvbsm = {
    .name = "G-VBSM",
    .aliases = "gvbsm",
    .summary = "Generalized Various Backbone and Statistical Matching (Shao et al., arXiv:2311.17950): several "
               "teachers' BN and convolution statistics, densified",
    .reference = "shaoshitong/G_VBSM_Dataset_Condensation Branch_CIFAR_10/recover (recover.sh's settings)",
    .params = gvbsm_params,
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_IMAGEFOLDER,
    .image_ext = "png",
    .default_arch = DECOUPLED_DEFAULT_ARCH,
    .default_iterations = 4000,
    .iterations_help = "per recover batch (the official --iteration)",
    .total_steps = gvbsm_total_steps,
    .init = gvbsm_init,
    .step = gvbsm_step,
    .save = gvbsm_save,
    .load = gvbsm_load,
    .free = gvbsm_free,
};
