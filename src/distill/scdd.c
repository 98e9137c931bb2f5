/*
 * scdd.c: SC-DD's recover (Zhou et al., "A Good Compression Is All You Need for Dataset
 * Distillation", arXiv:2404.07976), as VILA-Lab/SRe2L `SCDD/cifar100_code/recover/
 * recover_cifar100.py` runs it: SRe2L's loop (sre2l.c, roll only; the transforms the code
 * lists are commented out) with a teacher that is a self-supervised backbone plus a linear
 * probe. beard takes that teacher as a checkpoint (a backbone trained any way, with the
 * probe fitted by `beard train --linear-probe`); self-supervised pre-training itself is out
 * of scope. Defaults: the README's command (lr 0.4, r_bn 0.005, 1000 iterations), jitter 4,
 * first_bn_multiplier 10.
 */
#include "decoupled.h"

static void scdd_defaults(DecoupledArgs *a) {
    a->iteration = 1000, a->batch_size = 100, a->jitter = 4;
    a->lr = 0.4f, a->r_bn = 0.005f, a->first_bn_multiplier = 10.0f;
}

static int scdd_run(const DecoupledArgs *a, DecoupledOut *out, Err *e) {
    return sre2l_family_run(a, out, sre2l_roll_draw, "SC-DD", e);
}

const DecoupledMethod decoupled_scdd = {
    .name = "SC-DD",
    .image_ext = "jpg",
    .defaults = scdd_defaults,
    .run = scdd_run,
    .params = "iteration batch_size lr r_bn first_bn_multiplier jitter",
    .help = "iteration 1000, batch_size 100, lr 0.4, r_bn 0.005, first_bn_multiplier 10, jitter 4 "
            "(teacher: a self-supervised backbone with a linear probe)",
};
