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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/progress.h"
#include "../data/augment.h"
#include "decoupled.h"

#define STREAM_ROUNDS 0x44454C540000ull // 'DELT'
#define STREAM_DRAW 0x44454C548000ull

static void delt_defaults(DecoupledArgs *a) {
    a->iteration = 4000, a->batch_size = 100, a->jitter = 0;
    a->lr = 0.25f, a->r_bn = 0.01f, a->first_bn_multiplier = 10.0f;
    snprintf(a->easy2hard_mode, sizeof(a->easy2hard_mode), "cosine");
    a->milestone = 1.0f;
    a->round_iterations = 500;
    a->min_iterations = -1;
    a->ranking_imagenet_norm = 1;
}

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

// the teacher's probability of the true class for every real image
static int rank_scores(const DecoupledArgs *a, Net *net, float *scores, Err *e) {
    static const double in_mean[3] = {0.485, 0.456, 0.406}, in_std[3] = {0.229, 0.224, 0.225};
    size_t D = net_in_size(net), plane = (size_t)net->in_h * net->in_w;
    int K = net->n_classes, bs = 200, C = net->in_c;
    float *x = xmalloc(sizeof(float) * bs * D), *z = xmalloc(sizeof(float) * bs * K);
    if (!x || !z) {
        xfree(x), xfree(z);
        return err_set(e, "out of memory for ranking");
    }
    int rc = 0;
    for (int s = 0; s < a->n_real && !rc; s += bs) {
        int B = a->n_real - s < bs ? a->n_real - s : bs;
        memcpy(x, a->real_x + (size_t)s * D, sizeof(float) * B * D);
        if (a->ranking_imagenet_norm && C == 3)
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) {
                    float *p = x + (size_t)b * D + c * plane;
                    for (size_t i = 0; i < plane; i++) {
                        double px = (double)p[i] * a->std[c] + a->mean[c];
                        p[i] = (float)((px - in_mean[c]) / in_std[c]);
                    }
                }
        rc = net_forward(net, x, B, z, e);
        for (int b = 0; b < B && !rc; b++) {
            const float *zb = z + (size_t)b * K;
            double mx = -INFINITY, sum = 0;
            for (int k = 0; k < K; k++) mx = zb[k] > mx ? zb[k] : mx;
            for (int k = 0; k < K; k++) sum += exp(zb[k] - mx);
            scores[s + b] = (float)(exp(zb[a->real_y[s + b]] - mx) / sum);
        }
    }
    xfree(x), xfree(z);
    return rc;
}

static int delt_run(const DecoupledArgs *a, DecoupledOut *out, Err *e) {
    if (a->n_teachers < 1) return err_set(e, "DELT needs a teacher");
    if (!a->real_x || a->n_real <= 0) return err_set(e, "DELT initialises from real images: none given");
    Net *net = a->teachers[0];
    int K = a->n_classes, ipc = a->ipc, C = net->in_c, R = a->round_iterations;
    size_t D = net_in_size(net), plane = (size_t)net->in_h * net->in_w;
    if (net->n_classes != K)
        return err_set(e, "the teacher %s has %d classes but the dataset has %d", net->arch, net->n_classes, K);
    if (a->iteration < 1 || R < 0 || (R > 0 && a->iteration < R))
        return err_set(e, "DELT: iteration %d and round_iterations %d", a->iteration, R);
    int min_it = a->min_iterations < 0 ? a->iteration : (a->min_iterations > R ? a->min_iterations : R);
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh;
    if (recover_hooks(net, 0, hooks, &nh, e)) return -1;
    int n = K * ipc, bs = a->batch_size > 0 ? a->batch_size : n;
    if (bs > n) bs = n;
    float *scores = malloc(sizeof(float) * a->n_real), *cls = malloc(sizeof(float) * a->n_real);
    int *idx = malloc(sizeof(int) * a->n_real), *sel = malloc(sizeof(int) * ipc), *rounds = malloc(sizeof(int) * K);
    int *indxer = malloc(sizeof(int) * K), *y = malloc(sizeof(int) * bs), *active = malloc(sizeof(int) * bs),
        *start = malloc(sizeof(int) * ipc);
    float *init = xmalloc(sizeof(float) * n * D), *x = xmalloc(sizeof(float) * bs * D),
          *grad = xmalloc(sizeof(float) * bs * D);
    RecoverWork *w = recover_work_new(net, hooks, nh, bs, e);
    Optim adam;
    memset(&adam, 0, sizeof(adam));
    Progress prog;
    progress_start(&prog, "DELT", 1.0);
    prog.quiet = 1;
    int rc = -1;
    if (!scores || !cls || !idx || !sel || !rounds || !indxer || !y || !active || !start || !init || !x || !grad || !w) {
        if (w) err_set(e, "out of memory");
        goto done;
    }
    // 1. medium selection per class
    if (rank_scores(a, net, scores, e)) goto done;
    for (int c = 0; c < K; c++) {
        int m = 0;
        for (int i = 0; i < a->n_real; i++)
            if (a->real_y[i] == c) idx[m] = i, cls[m++] = scores[i];
        if (delt_select_medium(cls, m, ipc, sel)) {
            err_set(e, "DELT: class %d has %d training images, too few to take %d around the median", c, m, ipc);
            goto done;
        }
        for (int k = 0; k < ipc; k++) memcpy(init + ((size_t)c * ipc + k) * D, a->real_x + (size_t)idx[sel[k]] * D, sizeof(float) * D);
    }
    // 2. rounds per class (random in [min, max] when min_iterations < iteration)
    Rng rr;
    rng_init(&rr, a->seed, STREAM_ROUNDS);
    for (int c = 0; c < K; c++)
        rounds[c] = R > 0 ? augment_randint(&rr, min_it / R, a->iteration / R) : 1;
    for (int c = 0; c < K; c++) indxer[c] = -1;
    // 3. the batches
    long total_all = 0;
    int nbatch = (n + bs - 1) / bs;
    prog.quiet = !a->progress;
    progress_start(&prog, "DELT", (double)nbatch * a->iteration);
    if (!a->progress) prog.quiet = 1;
    double t0 = time_now();
    long done_it = 0;
    for (int s0 = 0, bi = 0; s0 < n; s0 += bs, bi++) {
        int B = n - s0 < bs ? n - s0 : bs;
        memcpy(x, init + (size_t)s0 * D, sizeof(float) * B * D);
        for (int b = 0; b < B; b++) y[b] = (s0 + b) / ipc;
        // round membership: for each batch position, its first round
        int max_rounds = 1;
        int *first = active; // reuse as scratch: first round of each position
        int pos_first[4096];
        if (K > 4096 || B > 4096) {
            err_set(e, "DELT: at most 4096 classes and images per batch");
            goto done;
        }
        for (int b = 0; b < B; b++) first[b] = 0;
        if (R > 0) {
            max_rounds = 0;
            for (int b = 0; b < B; b++) max_rounds = rounds[y[b]] > max_rounds ? rounds[y[b]] : max_rounds;
            for (int b = 0; b < B; b++) {
                int c = y[b];
                if (b == 0 || y[b - 1] != c) pos_first[c] = b;
                int im = b - pos_first[c] + indxer[c] + 1;
                delt_round_starts(ipc, rounds[c], start);
                first[b] = im < ipc ? start[im] : rounds[c];
            }
        }
        // the rounds that hold images, in order (empty ones are dropped with their iterations)
        int kept[4096], nk = 0;
        for (int r = 0; r < max_rounds && r < 4096; r++) {
            int any = 0;
            for (int b = 0; b < B && !any; b++) any = R == 0 || (first[b] <= r && r < rounds[y[b]]);
            if (any) kept[nk++] = r;
        }
        int first_copy[4096];
        memcpy(first_copy, first, sizeof(int) * B);
        int total = R > 0 ? a->iteration - (max_rounds - nk) * R : a->iteration;
        if (R > 0 && total > nk * R) total = nk * R;
        total_all += total;
        optim_free(&adam);
        if (recover_adam_init(&adam, (size_t)B * D, a->lr)) {
            err_set(e, "out of memory");
            goto done;
        }
        Rng dr;
        rng_init(&dr, a->seed, STREAM_DRAW + (uint64_t)bi);
        RecoverLoss lc = {.r_stat = a->r_bn, .first_mult = a->first_bn_multiplier};
        int H = net->in_h, W = net->in_w;
        for (int it = 0; it < total; it++) {
            int na = 0;
            if (R > 0) {
                int r = kept[it / R < nk ? it / R : nk - 1];
                for (int b = 0; b < B; b++)
                    if (first_copy[b] <= r && r < rounds[y[b]]) active[na++] = b;
            }
            RecoverDraw d = {.crop = 1};
            augment_rrc_draw(&dr, H, W, cda_min_crop(a, it, total), 1.0, 3.0 / 4.0, 4.0 / 3.0, d.box);
            d.flip = rng_uniform(&dr) < 0.5f;
            d.roll_dy = augment_randint(&dr, 0, a->jitter);
            d.roll_dx = augment_randint(&dr, 0, a->jitter);
            RecoverLosses L;
            if (recover_grad(w, x, y, B, R > 0 ? active : NULL, na, &d, &lc, grad, &L, e)) goto done;
            if (!isfinite(L.loss)) {
                err_set(e, "DELT: the loss is %g at iteration %d", L.loss, it);
                goto done;
            }
            recover_update(&adam, x, grad, (float)recover_cosine_lr(a->lr, it, total), B, C, plane, a->mean, a->std);
            done_it++;
            if (a->log && a->log_every > 0 && (it % a->log_every == 0 || it == total - 1)) {
                progress_end(&prog);
                fprintf(a->log, "DELT batch %d iteration %d/%d (%d active): loss %.5f ce %.5f bn %.5f\n", bi, it, total,
                        R > 0 ? na : B, L.loss, L.ce, L.stat);
                fflush(a->log);
            }
            if (a->progress) {
                char extra[64];
                snprintf(extra, sizeof(extra), "batch %d, loss %.4f", bi, L.loss);
                progress_update(&prog, (double)bi * a->iteration + it, extra);
            }
        }
        for (int b = 0; b < B; b++) {
            int c = y[b], id = ++indxer[c];
            if (id >= ipc) {
                err_set(e, "DELT: class %d got more than %d images", c, ipc);
                goto done;
            }
            memcpy(out->x + ((size_t)c * ipc + id) * D, x + (size_t)b * D, sizeof(float) * D);
            out->y[(size_t)c * ipc + id] = c;
        }
    }
    out->iterations = done_it;
    out->seconds = time_now() - t0;
    (void)total_all;
    rc = 0;
done:
    progress_end(&prog);
    optim_free(&adam);
    recover_work_free(w);
    free(scores), free(cls), free(idx), free(sel), free(rounds), free(indxer), free(y), free(active), free(start);
    xfree(init), xfree(x), xfree(grad);
    return rc;
}

const DecoupledMethod decoupled_delt = {
    .name = "DELT",
    .image_ext = "jpg",
    .needs_real = 1,
    .defaults = delt_defaults,
    .run = delt_run,
    .params = "iteration batch_size lr r_bn first_bn_multiplier jitter easy2hard_mode milestone round_iterations min_iterations ranking_imagenet_norm",
    .help = "iteration 4000, round_iterations 500, min_iterations = iteration, batch_size 100, lr 0.25, r_bn 0.01, "
            "first_bn_multiplier 10, jitter 0, easy2hard_mode cosine, milestone 1, ranking_imagenet_norm 1",
};
