/*
 * delt.c: DELT (Shen et al., "DELT: A Simple Diversity-driven EarlyLate Training for Dataset
 * Distillation", arXiv:2411.19946), as VILA-Lab/DELT runs it:
 *   - data_selection.py (selection criterion "medium"): the teacher's softmax probability of
 *     the true class for every training image; per class, the images sorted by it (ascending)
 *     and taken around the median, index ceil(n / 2) + int(s (k + 1) / 2) for k = 0, 1, ...
 *     with s alternating -1, +1 (so: mid, mid + 1, mid - 1, mid + 2, ...). Its CIFAR loader
 *     normalises with ImageNet's mean and std, not the teacher's: reproduced by default
 *     (ranking_imagenet_norm), since it decides which images start the recovery;
 *   - recover/recover.py: the selected images (normalised with the dataset's constants) in
 *     batches of batch_size in class-major order; with early-late training each class gets a
 *     number of rounds in [min_iterations, iteration] / round_iterations (all equal with the
 *     default min_iterations = iteration), its IPC split into that many chunks (the first
 *     ipc % rounds one image larger), chunk k joining at round k; rounds no image needs are
 *     dropped with their iterations; each iteration runs CDA's augmentation (RandomResizedCrop
 *     with the curriculum, flip) and the roll on the round's active images, SRe2L's loss with
 *     BN statistics of that subset, one Adam over the whole batch (inactive images keep zero
 *     moments, so they do not move), cosine lr over the batch's iterations. --round-lr-reset
 *     has no effect in that code (the lr is set twice, the second time without the reset); it
 *     is not offered.
 * Defaults: the published synthesis script's (iteration 4000, round_iterations 500, lr 0.25,
 * r_bn 0.01, jitter 0, cosine curriculum with milestone 1, batch_size 100).
 *
 * As stage steps: batch b's iterations (its rounds times round_iterations) follow batch
 * b - 1's; the selection, the rounds per class and so every batch's length are fixed in init.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../data/augment.h"
#include "decoupled.h"

typedef struct {
    float s;
    int i;
} Scored;

static int by_score(const void *a, const void *b) {
    const Scored *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? -1 : 1;
    return x->i - y->i; // ties in input order
}

int delt_select_medium(const float *scores, int n, int ipc, int *out) {
    Scored *s = malloc(sizeof(Scored) * (n > 0 ? n : 1));
    if (!s) return -1;
    for (int i = 0; i < n; i++) s[i] = (Scored){scores[i], i};
    qsort(s, n, sizeof(Scored), by_score);
    int mid = (n + 1) / 2, pos_neg = -1, ok = 1;
    for (int k = 0; k < ipc; k++) {
        int j = mid + (int)(pos_neg * (k + 1) / 2.0); // Python's int() truncates toward zero
        pos_neg = -pos_neg;
        if (j < 0 || j >= n) {
            ok = 0;
            break;
        }
        out[k] = s[j].i;
    }
    free(s);
    return ok ? 0 : -1;
}

void delt_round_starts(int ipc, int rounds, int *start) {
    int cum = 0, r = 0, base = rounds > 0 ? ipc / rounds : ipc, extra = rounds > 0 ? ipc % rounds : 0;
    int next = base + (0 < extra); // cum[0]
    for (int i = 0; i < ipc; i++) {
        while (r < rounds - 1 && i >= next) {
            r++;
            cum = next;
            next = cum + base + (r < extra);
        }
        start[i] = r;
    }
}


static const DistillParamDef delt_params[] = {
    {"batch_size", DPARAM_INT, 100, NULL, 1, "images per recover batch (class-major through all classes and ipc ids)"},
    {"lr", DPARAM_NUM, 0.25, NULL, 0, "Adam's learning rate (cosine schedule over a batch's iterations)"},
    {"r_bn", DPARAM_NUM, 0.01, NULL, 0, "weight of the BatchNorm statistics term"},
    {"first_bn_multiplier", DPARAM_NUM, 10, NULL, 0, "extra weight of the first BatchNorm layer's term"},
    {"jitter", DPARAM_INT, 0, NULL, 0, "random roll by randint(0, jitter) pixels in both directions"},
    {"easy2hard_mode", DPARAM_STR, 0, "cosine", NAN, "the crop curriculum: step, linear or cosine"},
    {"milestone", DPARAM_NUM, 1, NULL, 0, "fraction of the iterations over which the lower crop scale falls to 0.08"},
    {"round_iterations", DPARAM_INT, 500, NULL, 0, "iterations per early-late round (0: no rounds, every image always)"},
    {"min_iterations", DPARAM_INT, -1, NULL, -1,
     "fewest iterations of a class (its rounds drawn in [min, --iterations] / round_iterations; -1: --iterations)"},
    {"ranking_imagenet_norm", DPARAM_BOOL, 1, NULL, NAN,
     "rank the real images normalised with ImageNet's mean and std, as data_selection.py's CIFAR loader does"},
    DECOUPLED_TEACHER_PARAMS,
    {NULL},
};

typedef struct {
    Net teacher;
    int has_teacher;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh;
    RecoverWork *w;
    int bs, nbatch, R;
    long iters;
    float lr;
    int *rounds;       // (K) rounds of each class
    long *start, *len; // (nbatch) first step and iterations of each batch
    int *first, *kept, *active, *y, *tmp; // (bs), (max rounds), (bs), (bs), (ipc)
    int n_kept;
    float *grad;       // (bs, D)
    long cur;          // the batch Adam belongs to, -1 before the first
    Optim adam;
} Delt;

static void delt_free(DistillRun *r) {
    Delt *s = r->state;
    if (!s) return;
    if (s->has_teacher) net_free(&s->teacher);
    recover_work_free(s->w);
    optim_free(&s->adam);
    free(s->rounds), free(s->start), free(s->len), free(s->first), free(s->kept), free(s->active), free(s->y),
        free(s->tmp);
    xfree(s->grad);
    free(s);
    r->state = NULL;
}

// the teacher's probability of the true class for every real image (realx: model space)
static int rank_scores(DistillRun *r, Delt *s, const float *realx, float *scores, Err *e) {
    static const double in_mean[3] = {0.485, 0.456, 0.406}, in_std[3] = {0.229, 0.224, 0.225};
    Net *net = &s->teacher;
    size_t D = distill_syn_size(r), plane = (size_t)r->H * r->W;
    int K = r->K, bs = 200, C = r->C, n = r->real->n, imagenet = distill_param_bool(r->p, "ranking_imagenet_norm");
    float *x = xmalloc(sizeof(float) * bs * D), *z = xmalloc(sizeof(float) * bs * K);
    if (!x || !z) {
        xfree(x), xfree(z);
        return err_set(e, "out of memory for ranking");
    }
    int rc = 0;
    for (int s0 = 0; s0 < n && !rc; s0 += bs) {
        int B = n - s0 < bs ? n - s0 : bs;
        memcpy(x, realx + (size_t)s0 * D, sizeof(float) * B * D);
        if (imagenet && C == 3)
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) {
                    float *p = x + (size_t)b * D + c * plane;
                    for (size_t i = 0; i < plane; i++) {
                        double px = (double)p[i] * r->info->std[c] + r->info->mean[c];
                        p[i] = (float)((px - in_mean[c]) / in_std[c]);
                    }
                }
        rc = net_forward(net, x, B, z, e);
        for (int b = 0; b < B && !rc; b++) {
            const float *zb = z + (size_t)b * K;
            double mx = -INFINITY, sum = 0;
            for (int k = 0; k < K; k++) mx = zb[k] > mx ? zb[k] : mx;
            for (int k = 0; k < K; k++) sum += exp(zb[k] - mx);
            scores[s0 + b] = (float)(exp(zb[r->real->labels[s0 + b]] - mx) / sum);
        }
    }
    xfree(x), xfree(z);
    return rc;
}

// batch b's images' first rounds (s->first), the rounds that hold images (s->kept, n_kept)
// and its iterations
static long batch_plan(const DistillRun *r, Delt *s, long b, int *B_out) {
    int n = r->K * r->ipc, s0 = (int)b * s->bs, B = n - s0 < s->bs ? n - s0 : s->bs, R = s->R, max_rounds = 1;
    *B_out = B;
    for (int i = 0; i < B; i++) s->y[i] = (s0 + i) / r->ipc, s->first[i] = 0;
    if (R > 0) {
        max_rounds = 0;
        for (int i = 0; i < B; i++) max_rounds = s->rounds[s->y[i]] > max_rounds ? s->rounds[s->y[i]] : max_rounds;
        for (int i = 0; i < B; i++) {
            // get_round_imgs_indx: the image's place among its class's ipc images
            delt_round_starts(r->ipc, s->rounds[s->y[i]], s->tmp);
            s->first[i] = s->tmp[(s0 + i) % r->ipc];
        }
    }
    s->n_kept = 0;
    for (int q = 0; q < max_rounds; q++) { // rounds no image needs are dropped with their iterations
        int any = R == 0;
        for (int i = 0; i < B && !any; i++) any = s->first[i] <= q && q < s->rounds[s->y[i]];
        if (any) s->kept[s->n_kept++] = q;
    }
    long total = R > 0 ? s->iters - (long)(max_rounds - s->n_kept) * R : s->iters;
    if (R > 0 && total > (long)s->n_kept * R) total = (long)s->n_kept * R;
    return total;
}

static int delt_init(DistillRun *r, Err *e) {
    Delt *s = calloc(1, sizeof(Delt));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    s->cur = -1;
    const DistillParams *p = r->p;
    if (cda_check_params(p, e)) return -1;
    s->iters = r->cfg->iterations;
    s->R = (int)distill_param_int(p, "round_iterations");
    s->lr = (float)distill_param(p, "lr");
    if (s->iters < 1 || (s->R > 0 && s->iters < s->R))
        return err_set(e, "DELT: --iterations %ld must be at least 1 and at least round_iterations %d", s->iters, s->R);
    if (s->iters > 100000000) return err_set(e, "DELT: --iterations %ld is too many", s->iters);
    long mi = distill_param_int(p, "min_iterations");
    long min_it = mi < 0 ? s->iters : (mi > s->R ? mi : s->R);
    if (min_it > s->iters) return err_set(e, "DELT: min_iterations %ld is more than --iterations %ld", mi, s->iters);
    Net *tp[1] = {&s->teacher};
    int nt;
    if (decoupled_teachers_load(r, tp, 1, &nt, e)) return -1;
    s->has_teacher = 1;
    if (recover_hooks(&s->teacher, 0, s->hooks, &s->nh, e)) return -1;
    int K = r->K, ipc = r->ipc, n = K * ipc, nr = r->real->n;
    s->bs = (int)distill_param_int(p, "batch_size");
    if (s->bs > n) s->bs = n;
    s->nbatch = (n + s->bs - 1) / s->bs;
    int max_r = s->R > 0 ? (int)(s->iters / s->R) + 1 : 1;
    size_t D = distill_syn_size(r);
    s->rounds = malloc(sizeof(int) * K);
    s->start = malloc(sizeof(long) * s->nbatch), s->len = malloc(sizeof(long) * s->nbatch);
    s->first = malloc(sizeof(int) * s->bs), s->active = malloc(sizeof(int) * s->bs), s->y = malloc(sizeof(int) * s->bs);
    s->kept = malloc(sizeof(int) * max_r), s->tmp = malloc(sizeof(int) * ipc);
    s->grad = xmalloc(sizeof(float) * s->bs * D);
    if (!s->rounds || !s->start || !s->len || !s->first || !s->active || !s->y || !s->kept || !s->tmp || !s->grad)
        return err_set(e, "out of memory for DELT's buffers");
    if (!(s->w = recover_work_new(&s->teacher, s->hooks, s->nh, s->bs, e))) return -1;
    // 1. medium selection per class: the initial images
    float *realx = decoupled_real_images(r), *scores = malloc(sizeof(float) * (nr > 0 ? nr : 1)),
          *cls = malloc(sizeof(float) * (nr > 0 ? nr : 1));
    int *idx = malloc(sizeof(int) * (nr > 0 ? nr : 1)), *sel = malloc(sizeof(int) * ipc), rc = 0;
    if (!realx || !scores || !cls || !idx || !sel) rc = err_set(e, "out of memory for the selection");
    if (!rc) rc = rank_scores(r, s, realx, scores, e);
    for (int c = 0; c < K && !rc; c++) {
        int m = 0;
        for (int i = 0; i < nr; i++)
            if (r->real->labels[i] == c) idx[m] = i, cls[m++] = scores[i];
        if (delt_select_medium(cls, m, ipc, sel)) {
            rc = err_set(e, "DELT: class %d has %d training images, too few to take %d around the median", c, m, ipc);
            break;
        }
        for (int k = 0; k < ipc; k++)
            memcpy(distill_syn_class(r, c) + (size_t)k * D, realx + (size_t)idx[sel[k]] * D, sizeof(float) * D);
    }
    xfree(realx), free(scores), free(cls), free(idx), free(sel);
    if (rc) return -1;
    // 2. rounds per class (random in [min, max] when min_iterations < iterations)
    for (int c = 0; c < K; c++)
        s->rounds[c] = s->R > 0 ? augment_randint(&r->rng, (int)(min_it / s->R), (int)(s->iters / s->R)) : 1;
    // 3. every batch's iterations
    long at = 0;
    for (long b = 0; b < s->nbatch; b++) {
        int B;
        s->start[b] = at;
        s->len[b] = batch_plan(r, s, b, &B);
        at += s->len[b];
    }
    return 0;
}

static long delt_total_steps(const DistillRun *r) {
    const Delt *s = r->state;
    return s->nbatch ? s->start[s->nbatch - 1] + s->len[s->nbatch - 1] : 0;
}

static long batch_at(const Delt *s, long step) {
    long b = 0;
    while (b + 1 < s->nbatch && step >= s->start[b + 1]) b++;
    return b;
}

static int delt_step(DistillRun *r, Err *e) {
    Delt *s = r->state;
    const DistillParams *p = r->p;
    long b = batch_at(s, r->it);
    int B, it = (int)(r->it - s->start[b]);
    long total = batch_plan(r, s, b, &B);
    size_t D = distill_syn_size(r);
    float *x = r->syn + (size_t)b * s->bs * D; // class-major: the batch is contiguous in r->syn
    if (it == 0) {
        optim_free(&s->adam);
        if (recover_adam_init(&s->adam, (size_t)B * D, s->lr)) return err_set(e, "out of memory for the optimiser");
        s->cur = b;
    } else if (s->cur != b) {
        return err_set(e, "step %ld is inside batch %ld, which has not started", r->it, b);
    }
    int na = 0;
    if (s->R > 0) {
        int q = s->kept[it / s->R < s->n_kept ? it / s->R : s->n_kept - 1];
        for (int i = 0; i < B; i++)
            if (s->first[i] <= q && q < s->rounds[s->y[i]]) s->active[na++] = i;
    }
    RecoverDraw d = {.crop = 1};
    double mc = cda_min_crop(distill_param_str(p, "easy2hard_mode"), distill_param(p, "milestone"), it, (int)total);
    augment_rrc_draw(&r->rng, r->syn_h, r->syn_w, mc, 1.0, 3.0 / 4.0, 4.0 / 3.0, d.box);
    d.flip = rng_uniform(&r->rng) < 0.5f;
    int jitter = (int)distill_param_int(p, "jitter");
    d.roll_dy = augment_randint(&r->rng, 0, jitter);
    d.roll_dx = augment_randint(&r->rng, 0, jitter);
    RecoverLoss lc = {.r_stat = (float)distill_param(p, "r_bn"), .first_mult = (float)distill_param(p, "first_bn_multiplier")};
    RecoverLosses L;
    if (recover_grad(s->w, x, s->y, B, s->R > 0 ? s->active : NULL, na, &d, &lc, s->grad, &L, e)) return -1;
    r->loss = L.loss;
    snprintf(r->note, sizeof(r->note), "batch %ld/%d, %d active, ce %.4f, bn %.4f", b + 1, s->nbatch, s->R > 0 ? na : B,
             L.ce, L.stat);
    if (!isfinite(L.loss)) return 0; // the stage stops and says so
    distill_observe_grad(r, (int)b, s->grad, (size_t)B * D);
    recover_update(&s->adam, x, s->grad, (float)recover_cosine_lr(s->lr, it, (int)total), B, r->syn_c,
                   (size_t)r->syn_h * r->syn_w, r->info->mean, r->info->std);
    return 0;
}

static int delt_save(DistillRun *r, TensorDict *ck, Err *e) {
    Delt *s = r->state;
    return decoupled_adam_save(&s->adam, s->cur, "delt.adam", ck, e);
}

static int delt_load(DistillRun *r, const TensorDict *ck, Err *e) {
    Delt *s = r->state;
    if (r->it >= delt_total_steps(r)) return 0;
    long b = batch_at(s, r->it);
    int B, loaded;
    batch_plan(r, s, b, &B);
    if (decoupled_adam_load(&s->adam, (size_t)B * distill_syn_size(r), s->lr, b, "delt.adam", ck, &loaded, e)) return -1;
    if (loaded) s->cur = b;
    return 0;
}

const DistillMethodDef distill_delt = {
    .name = "DELT",
    .aliases = "early_late",
    .summary = "Diversity-driven EarlyLate Training (Shen et al., arXiv:2411.19946): real-image starts around the "
               "median, images joining in rounds",
    .reference = "VILA-Lab/DELT recover/recover.py + data_selection.py (the synthesis script's settings)",
    .params = delt_params,
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_IMAGEFOLDER,
    .image_ext = "jpg",
    .default_arch = DECOUPLED_DEFAULT_ARCH,
    .default_iterations = 4000,
    .iterations_help = "per recover batch, all rounds (the official --iteration)",
    .total_steps = delt_total_steps,
    .init = delt_init,
    .step = delt_step,
    .save = delt_save,
    .load = delt_load,
    .free = delt_free,
};
