/*
 * sre2l.c: SRe2L's recover (Yin et al., "Squeeze, Recover and Relabel: Dataset Condensation at
 * ImageNet Scale From A New Perspective", arXiv:2306.13092), as VILA-Lab/SRe2L
 * `SRe2L/(*small_dataset)/recover_cifar.py` runs it on CIFAR: for each ipc id, the classes in
 * batches of batch_size, inputs ~ randn in model space, `iteration` steps of the recover
 * iteration (recover.c) with only the random roll by (randint(0, jitter), randint(0, jitter)),
 * the teacher in eval mode, the last images kept (the code's best_inputs is overwritten before
 * saving). Defaults: recover_cifar.sh's settings (lr 0.25, r_bn 0.01, 1000 iterations, batch
 * 100; the argparse defaults are lr 0.1, r_bn 0.05), jitter 4, first_bn_multiplier 10.
 * Deliberate difference: the noise and the offsets come from beard's Philox streams.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/progress.h"
#include "../data/augment.h"
#include "decoupled.h"

#define STREAM_INIT 0x53524532000000ull // 'SRE2' << 24: the initial noise, + batch index
#define STREAM_DRAW 0x53524532800000ull

static void sre2l_defaults(DecoupledArgs *a) {
    a->iteration = 1000, a->batch_size = 100, a->jitter = 4;
    a->lr = 0.25f, a->r_bn = 0.01f, a->first_bn_multiplier = 10.0f;
}

void sre2l_roll_draw(const DecoupledArgs *a, int it, int total, Rng *r, RecoverDraw *d) {
    (void)it, (void)total;
    memset(d, 0, sizeof(*d));
    d->roll_dy = augment_randint(r, 0, a->jitter);
    d->roll_dx = augment_randint(r, 0, a->jitter);
}

int sre2l_family_run(const DecoupledArgs *a, DecoupledOut *out,
                     void (*draw)(const DecoupledArgs *a, int it, int total, Rng *r, RecoverDraw *d), const char *label,
                     Err *e) {
    if (a->n_teachers < 1) return err_set(e, "%s needs a teacher", label);
    Net *net = a->teachers[0];
    int K = a->n_classes, bs = a->batch_size > 0 ? a->batch_size : K, C = net->in_c;
    size_t D = net_in_size(net), plane = (size_t)net->in_h * net->in_w;
    if (a->iteration < 1) return err_set(e, "%s: iteration must be at least 1", label);
    if (net->n_classes != K)
        return err_set(e, "the teacher %s has %d classes but the dataset has %d", net->arch, net->n_classes, K);
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh;
    if (recover_hooks(net, 0, hooks, &nh, e)) return -1;
    if (bs > K) bs = K;
    RecoverWork *w = recover_work_new(net, hooks, nh, bs, e);
    float *x = xmalloc(sizeof(float) * bs * D), *grad = xmalloc(sizeof(float) * bs * D);
    int *y = malloc(sizeof(int) * bs);
    Optim adam;
    memset(&adam, 0, sizeof(adam));
    int rc = -1;
    if (!w || !x || !grad || !y) {
        if (w) err_set(e, "out of memory");
        goto done;
    }
    RecoverLoss lc = {.r_stat = a->r_bn, .first_mult = a->first_bn_multiplier};
    Progress prog;
    int nbatch = (K + bs - 1) / bs;
    progress_start(&prog, label, (double)a->ipc * nbatch * a->iteration);
    if (!a->progress) prog.quiet = 1;
    double t0 = time_now();
    long done_it = 0;
    for (int ipc_id = 0; ipc_id < a->ipc; ipc_id++)
        for (int kk = 0; kk < K; kk += bs) {
            int B = K - kk < bs ? K - kk : bs;
            Rng init, dr;
            uint64_t batch = (uint64_t)ipc_id * nbatch + (uint64_t)(kk / bs);
            rng_init(&init, a->seed, STREAM_INIT + batch);
            rng_init(&dr, a->seed, STREAM_DRAW + batch);
            for (size_t i = 0; i < (size_t)B * D; i++) x[i] = (float)rng_normal(&init);
            for (int b = 0; b < B; b++) y[b] = kk + b;
            optim_free(&adam);
            if (recover_adam_init(&adam, (size_t)B * D, a->lr)) {
                err_set(e, "out of memory");
                goto done_prog;
            }
            for (int it = 0; it < a->iteration; it++) {
                RecoverDraw d;
                draw(a, it, a->iteration, &dr, &d);
                RecoverLosses L;
                if (recover_grad(w, x, y, B, NULL, 0, &d, &lc, grad, &L, e)) goto done_prog;
                if (!isfinite(L.loss)) {
                    err_set(e, "%s: the loss is %g at iteration %d of ipc %d", label, L.loss, it, ipc_id);
                    goto done_prog;
                }
                recover_update(&adam, x, grad, (float)recover_cosine_lr(a->lr, it, a->iteration), B, C, plane,
                               a->mean, a->std);
                done_it++;
                if (a->log && a->log_every > 0 && (it % a->log_every == 0 || it == a->iteration - 1)) {
                    progress_end(&prog);
                    fprintf(a->log, "%s ipc %d classes %d-%d iteration %d: loss %.5f ce %.5f bn %.5f\n", label, ipc_id,
                            kk, kk + B - 1, it, L.loss, L.ce, L.stat);
                    fflush(a->log);
                }
                if (a->progress) {
                    char extra[64];
                    snprintf(extra, sizeof(extra), "ipc %d, loss %.4f", ipc_id, L.loss);
                    progress_update(&prog, (double)done_it, extra);
                }
            }
            for (int b = 0; b < B; b++) {
                size_t o = (size_t)(kk + b) * a->ipc + ipc_id;
                memcpy(out->x + o * D, x + (size_t)b * D, sizeof(float) * D);
                out->y[o] = kk + b;
            }
        }
    out->iterations = done_it;
    out->seconds = time_now() - t0;
    rc = 0;
done_prog:
    progress_end(&prog);
done:
    optim_free(&adam);
    recover_work_free(w);
    xfree(x), xfree(grad);
    free(y);
    return rc;
}

static int sre2l_run(const DecoupledArgs *a, DecoupledOut *out, Err *e) {
    return sre2l_family_run(a, out, sre2l_roll_draw, "SRe2L", e);
}

const DecoupledMethod decoupled_sre2l = {
    .name = "SRe2L",
    .image_ext = "jpg",
    .defaults = sre2l_defaults,
    .run = sre2l_run,
    .params = "iteration batch_size lr r_bn first_bn_multiplier jitter",
    .help = "iteration 1000, batch_size 100, lr 0.25, r_bn 0.01, first_bn_multiplier 10, jitter 4 "
            "(recover_cifar.sh; argparse: lr 0.1, r_bn 0.05)",
};
