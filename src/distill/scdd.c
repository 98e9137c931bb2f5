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

static const DistillParamDef scdd_params[] = {
    {"batch_size", DPARAM_INT, 100, NULL, 1, "images per recover batch (one per class: at most the class count)"},
    {"lr", DPARAM_NUM, 0.4, NULL, 0, "Adam's learning rate (cosine schedule over a batch's iterations)"},
    {"r_bn", DPARAM_NUM, 0.005, NULL, 0, "weight of the BatchNorm statistics term"},
    {"first_bn_multiplier", DPARAM_NUM, 10, NULL, 0, "extra weight of the first BatchNorm layer's term"},
    {"jitter", DPARAM_INT, 4, NULL, 0, "random roll by randint(0, jitter) pixels in both directions"},
    DECOUPLED_TEACHER_PARAMS,
    {NULL},
};

static int scdd_init(DistillRun *r, Err *e) { return sre2l_family_init(r, sre2l_roll_draw, e); }

const DistillMethodDef distill_scdd = {
    .name = "SC-DD",
    .aliases = "scdd,sc_dd",
    .summary = "Self-supervised Compression (Zhou et al., arXiv:2404.07976): SRe2L's recover from a self-supervised "
               "backbone with a linear probe",
    .reference = "VILA-Lab/SRe2L SCDD/cifar100_code/recover/recover_cifar100.py",
    .params = scdd_params,
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_IMAGEFOLDER,
    .image_ext = "jpg",
    .default_arch = DECOUPLED_DEFAULT_ARCH,
    .default_iterations = 1000,
    .iterations_help = "per recover batch (the official --iteration)",
    .no_real_data = 1,
    .total_steps = sre2l_family_total_steps,
    .init = scdd_init,
    .step = sre2l_family_step,
    .save = sre2l_family_save,
    .load = sre2l_family_load,
    .free = sre2l_family_free,
};
