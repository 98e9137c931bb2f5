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
 *     across batches); every iteration RandomCrop(size, padding=4) + flip + roll by
 *     (randint(0, jitter), randint(0, jitter)) (jitter 32 by default: the script does not set
 *     it), the densified BN and conv-input terms of that teacher (recover.c; each conv hook
 *     dropped with probability drop_rate, its first-iteration gradient doubled as the code's
 *     initialisation makes it), the eigenvalue term of each class (nuc_norm, tau), Adam,
 *     cosine lr, and the clip with the constants the code uses for CIFAR-10, which are
 *     CIFAR-100's (mean [0.5071, 0.4867, 0.4408], std [0.2675, 0.2565, 0.2761]); its squeeze
 *     and relabel code normalise with them too. DecoupledArgs.mean/std carry the teachers'
 *     normalisation; `beard recover` passes the dataset's (one normalisation for teacher,
 *     recover and student, a deliberate difference);
 *   - every 100 iterations the verifier (the last teacher) classifies the un-augmented
 *     images; being hooked, that forward updates its densified statistics too (reproduced:
 *     verifier_every 100, 0 turns it off); after each batch it classifies the images
 *     quantised to 8 bits, with the same effect.
 * Defaults: recover.sh (lr 0.05, iteration 4000, r_loss 0.01, nuc_norm 1, batch 100) and the
 * argparse defaults (first_multiplier 10, tau 4, training_momentum 0.8, drop_rate 0.4).
 * Output: PNG, as the code saves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "../data/augment.h"
#include "decoupled.h"

#define STREAM_INIT 0x47564253000000ull // 'GVBS'
#define STREAM_DRAW 0x47564253800000ull
#define STREAM_STAT 0x47564253400000ull

static void gvbsm_defaults(DecoupledArgs *a) {
    a->iteration = 4000, a->batch_size = 100, a->jitter = 32;
    a->lr = 0.05f, a->r_loss = 0.01f, a->first_bn_multiplier = 10.0f, a->nuc_norm = 1.0f, a->tau = 4.0f;
    a->training_momentum = 0.8f, a->drop_rate = 0.4f, a->stat_batch = 64, a->verifier_every = 100;
}

typedef struct {
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh, nconv;
    ConvStats conv[RECOVER_MAX_HOOKS];
    HookState state[RECOVER_MAX_HOOKS];
    RecoverWork *w;
} Teacher;

// the training images with the stats pass's RandomCrop(32, 4) + flip, in a shuffled order
static float *stats_images(const DecoupledArgs *a, int C, int H, int W, Rng *r) {
    size_t plane = (size_t)H * W, D = plane * C;
    float *x = xmalloc(sizeof(float) * a->n_real * D), *t = xmalloc(sizeof(float) * D);
    int *perm = malloc(sizeof(int) * a->n_real);
    if (!x || !t || !perm) {
        xfree(x), xfree(t), free(perm);
        return NULL;
    }
    rng_permutation(r, perm, a->n_real);
    for (int i = 0; i < a->n_real; i++) {
        const float *s = a->real_x + (size_t)perm[i] * D;
        float *d = x + (size_t)i * D;
        int top = augment_randint(r, 0, 8), left = augment_randint(r, 0, 8);
        for (int c = 0; c < C; c++)
            augment_crop_pad_forward(t + c * plane, s + c * plane, 1, 1, H, W, 4, top, left, -a->mean[c] / a->std[c]);
        if (rng_uniform(r) < 0.5f) augment_hflip_forward(d, t, 1, C, H, W);
        else memcpy(d, t, sizeof(float) * D);
    }
    xfree(t), free(perm);
    return x;
}

static int gvbsm_run(const DecoupledArgs *a, DecoupledOut *out, Err *e) {
    int nt = a->n_teachers, K = a->n_classes, ipc = a->ipc;
    if (nt < 1) return err_set(e, "G-VBSM needs at least one teacher");
    if (!a->real_x || a->n_real <= 0) return err_set(e, "G-VBSM matches training-set statistics: no real images given");
    Net *n0 = a->teachers[0];
    int C = n0->in_c, H = n0->in_h, W = n0->in_w;
    size_t D = net_in_size(n0), plane = (size_t)H * W;
    int total = K * ipc, bs = a->batch_size > 0 ? a->batch_size : total;
    if (bs > total) bs = total;
    Teacher *T = calloc(nt, sizeof(Teacher));
    float *x = xmalloc(sizeof(float) * bs * D), *grad = xmalloc(sizeof(float) * bs * D), *q = xmalloc(sizeof(float) * bs * D);
    int *y = malloc(sizeof(int) * bs);
    float *sx = NULL;
    Optim adam;
    memset(&adam, 0, sizeof(adam));
    Progress prog;
    progress_start(&prog, "G-VBSM", 1.0);
    prog.quiet = 1;
    int rc = -1;
    if (!T || !x || !grad || !q || !y) {
        err_set(e, "out of memory");
        goto done;
    }
    Rng sr;
    rng_init(&sr, a->seed, STREAM_STAT);
    sx = stats_images(a, C, H, W, &sr);
    if (!sx) {
        err_set(e, "out of memory for the statistics pass");
        goto done;
    }
    for (int t = 0; t < nt; t++) {
        Net *net = a->teachers[t];
        if (net->n_classes != K || net->in_c != C || net->in_h != H || net->in_w != W) {
            err_set(e, "teacher %d (%s) has %d classes and (%d, %d, %d) inputs, the dataset %d and (%d, %d, %d)", t + 1,
                    net->arch, net->n_classes, net->in_c, net->in_h, net->in_w, K, C, H, W);
            goto done;
        }
        if (recover_hooks(net, 1, T[t].hooks, &T[t].nh, e)) goto done;
        for (int h = 0; h < T[t].nh; h++) T[t].nconv += T[t].hooks[h].kind == RECOVER_HOOK_CONV;
        if (recover_conv_stats(net, T[t].hooks, T[t].nh, sx, a->n_real, a->stat_batch > 0 ? a->stat_batch : 64,
                               T[t].conv, e) ||
            recover_state_init(T[t].state, T[t].hooks, T[t].nh, e))
            goto done;
        if (!(T[t].w = recover_work_new(net, T[t].hooks, T[t].nh, bs, e))) goto done;
    }
    xfree(sx);
    sx = NULL;
    int nbatch = (total + bs - 1) / bs;
    prog.quiet = 0;
    progress_start(&prog, "G-VBSM", (double)nbatch * a->iteration);
    if (!a->progress) prog.quiet = 1;
    double t0 = time_now();
    long counter = 0, done_it = 0;
    unsigned char drop[RECOVER_MAX_HOOKS];
    for (int s0 = 0, bi = 0; s0 < total; s0 += bs, bi++) {
        int B = total - s0 < bs ? total - s0 : bs;
        for (int b = 0; b < B; b++) y[b] = (s0 + b) / ipc;
        Rng init, dr;
        rng_init(&init, a->seed, STREAM_INIT + (uint64_t)bi);
        rng_init(&dr, a->seed, STREAM_DRAW + (uint64_t)bi);
        for (size_t i = 0; i < (size_t)B * D; i++) x[i] = (float)rng_normal(&init);
        optim_free(&adam);
        if (recover_adam_init(&adam, (size_t)B * D, a->lr)) {
            err_set(e, "out of memory");
            goto done;
        }
        for (int it = 0; it < a->iteration; it++) {
            Teacher *te = &T[counter % nt];
            counter++;
            RecoverDraw d = {.pad_crop = 1, .pad = 4};
            d.top = augment_randint(&dr, 0, 8), d.left = augment_randint(&dr, 0, 8);
            d.flip = rng_uniform(&dr) < 0.5f;
            d.roll_dy = augment_randint(&dr, 0, a->jitter);
            d.roll_dx = augment_randint(&dr, 0, a->jitter);
            for (int c = 0; c < te->nconv; c++) drop[c] = rng_uniform_d(&dr) > 1.0 - a->drop_rate;
            RecoverLoss lc = {.r_stat = a->r_loss, .first_mult = a->first_bn_multiplier, .densify = 1,
                              .momentum = a->training_momentum, .conv = te->conv, .state = te->state, .drop = drop,
                              .nuc = a->nuc_norm, .tau = a->tau, .nuc_side = 32, .fix_first_grad = a->fix_first_grad};
            RecoverLosses L;
            if (recover_grad(te->w, x, y, B, NULL, 0, &d, &lc, grad, &L, e)) goto done;
            if (!isfinite(L.loss)) {
                err_set(e, "G-VBSM: the loss is %g at iteration %d", L.loss, it);
                goto done;
            }
            if (a->verifier_every > 0 && it % a->verifier_every == 0) {
                Teacher *v = &T[nt - 1];
                for (int c = 0; c < v->nconv; c++) drop[c] = rng_uniform_d(&dr) > 1.0 - a->drop_rate;
                RecoverLoss lv = lc;
                lv.conv = v->conv, lv.state = v->state, lv.drop = drop;
                if (recover_observe(v->w, x, B, &lv, e)) goto done;
            }
            recover_update(&adam, x, grad, (float)recover_cosine_lr(a->lr, it, a->iteration), B, C, plane, a->mean,
                           a->std);
            done_it++;
            if (a->log && a->log_every > 0 && (it % a->log_every == 0 || it == a->iteration - 1)) {
                progress_end(&prog);
                fprintf(a->log, "G-VBSM batch %d iteration %d (teacher %ld): loss %.5f ce %.5f stat %.5f nuc %.5f\n", bi,
                        it, (counter - 1) % nt + 1, L.loss, L.ce, L.stat, L.nuc);
                fflush(a->log);
            }
            if (a->progress) {
                char extra[64];
                snprintf(extra, sizeof(extra), "batch %d, loss %.4f", bi, L.loss);
                progress_update(&prog, (double)done_it, extra);
            }
        }
        // the check on the images as saved (8 bits), by the hooked verifier
        if (a->verifier_every > 0) {
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++)
                    for (size_t i = 0; i < plane; i++) {
                        size_t k = ((size_t)b * C + c) * plane + i;
                        double px = (double)x[k] * a->std[c] + a->mean[c];
                        px = px < 0 ? 0 : px > 1 ? 1 : px;
                        q[k] = (float)((floor(px * 255.0) / 255.0 - a->mean[c]) / a->std[c]);
                    }
            Teacher *v = &T[nt - 1];
            for (int c = 0; c < v->nconv; c++) drop[c] = rng_uniform_d(&dr) > 1.0 - a->drop_rate;
            RecoverLoss lv = {.densify = 1, .momentum = a->training_momentum, .conv = v->conv, .state = v->state,
                              .drop = drop};
            if (recover_observe(v->w, q, B, &lv, e)) goto done;
        }
        for (int b = 0; b < B; b++) {
            memcpy(out->x + (size_t)(s0 + b) * D, x + (size_t)b * D, sizeof(float) * D);
            out->y[s0 + b] = y[b];
        }
    }
    out->iterations = done_it;
    out->seconds = time_now() - t0;
    rc = 0;
done:
    progress_end(&prog);
    optim_free(&adam);
    for (int t = 0; T && t < nt; t++) {
        recover_work_free(T[t].w);
        recover_conv_stats_free(T[t].conv, T[t].nconv);
        recover_state_free(T[t].state, T[t].nh);
    }
    free(T);
    xfree(x), xfree(grad), xfree(q), xfree(sx);
    free(y);
    return rc;
}

const DecoupledMethod decoupled_gvbsm = {
    .name = "G-VBSM",
    .image_ext = "png",
    .conv_hooks = 1,
    .needs_real = 1,
    .defaults = gvbsm_defaults,
    .run = gvbsm_run,
    .params = "iteration batch_size lr r_loss first_multiplier nuc_norm tau training_momentum drop_rate jitter stat_batch verifier_every fix_first_grad",
    .help = "iteration 4000, batch_size 100, lr 0.05, r_loss 0.01, nuc_norm 1, tau 4, first_multiplier 10, "
            "training_momentum 0.8, drop_rate 0.4, jitter 32, stat_batch 64, verifier_every 100 (teachers in turn)",
};
