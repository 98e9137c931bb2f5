/*
 * cda.c: CDA's recover (Yin & Shen, "Dataset Distillation via Curriculum Data Synthesis in Large
 * Data Era", arXiv:2311.18838), as VILA-Lab/SRe2L `CDA/recover_cda_tiny.py` runs it: SRe2L's
 * loop (sre2l.c) where every iteration first applies RandomResizedCrop(size, scale=(min_crop,
 * 1)) and RandomHorizontalFlip to the whole batch, then the roll; min_crop follows the
 * curriculum, from 1.0 down to 0.08 over milestone x iterations ("step": 1.0 until then;
 * "linear"; "cosine"), 0.08 after. CDA has no CIFAR script; the defaults are its Tiny-ImageNet
 * ones (lr 0.4, r_bn 0.05, cosine, milestone 1, which the README passes; the argparse
 * default milestone 0 turns the curriculum off) with SRe2L's CIFAR iteration count 1000.
 */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "../data/augment.h"
#include "decoupled.h"

static const DistillParamDef cda_params[] = {
    {"batch_size", DPARAM_INT, 100, NULL, 1, "images per recover batch (one per class: at most the class count)"},
    {"lr", DPARAM_NUM, 0.4, NULL, 0, "Adam's learning rate (cosine schedule over a batch's iterations)"},
    {"r_bn", DPARAM_NUM, 0.05, NULL, 0, "weight of the BatchNorm statistics term"},
    {"first_bn_multiplier", DPARAM_NUM, 10, NULL, 0, "extra weight of the first BatchNorm layer's term"},
    {"jitter", DPARAM_INT, 4, NULL, 0, "random roll by randint(0, jitter) pixels in both directions"},
    {"easy2hard_mode", DPARAM_STR, 0, "cosine", NAN, "the crop curriculum: step, linear or cosine"},
    {"milestone", DPARAM_NUM, 1, NULL, 0, "fraction of the iterations over which the lower crop scale falls to 0.08"},
    DECOUPLED_TEACHER_PARAMS,
    {NULL},
};

double cda_min_crop(const char *mode, double milestone, int it, int total) {
    double m = milestone * total;
    if (it < m) {
        if (!strcasecmp(mode, "step")) return 1.0;
        if (!strcasecmp(mode, "linear")) return 0.08 + (1.0 - 0.08) * (1.0 - it / m);
        return 0.08 + (1.0 - 0.08) * (1.0 + cos(M_PI * it / m)) / 2.0;
    }
    return 0.08;
}

int cda_check_params(const DistillParams *p, Err *e) {
    const char *mode = distill_param_str(p, "easy2hard_mode");
    if (strcasecmp(mode, "step") && strcasecmp(mode, "linear") && strcasecmp(mode, "cosine"))
        return err_set(e, "%s easy2hard_mode must be step, linear or cosine, not '%s'", p->def->name, mode);
    double m = distill_param(p, "milestone");
    if (!(m >= 0 && m <= 1)) return err_set(e, "%s milestone must lie in [0, 1], not %g", p->def->name, m);
    return 0;
}

static void cda_draw(const DistillRun *r, int it, int total, Rng *rng, RecoverDraw *d) {
    memset(d, 0, sizeof(*d));
    d->crop = 1;
    double mc = cda_min_crop(distill_param_str(r->p, "easy2hard_mode"), distill_param(r->p, "milestone"), it, total);
    augment_rrc_draw(rng, r->syn_h, r->syn_w, mc, 1.0, 3.0 / 4.0, 4.0 / 3.0, d->box);
    d->flip = rng_uniform(rng) < 0.5f;
    int jitter = (int)distill_param_int(r->p, "jitter");
    d->roll_dy = augment_randint(rng, 0, jitter);
    d->roll_dx = augment_randint(rng, 0, jitter);
}

static int cda_init(DistillRun *r, Err *e) {
    if (cda_check_params(r->p, e)) return -1;
    return sre2l_family_init(r, cda_draw, e);
}

const DistillMethodDef distill_cda = {
    .name = "CDA",
    .aliases = "curriculum_data_augmentation",
    .summary = "Curriculum Data Augmentation (Yin & Shen, arXiv:2311.18838): SRe2L with a random-resized-crop "
               "curriculum",
    .reference = "VILA-Lab/SRe2L CDA/recover_cda_tiny.py (its Tiny-ImageNet settings, SRe2L's CIFAR iterations)",
    .params = cda_params,
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_IMAGEFOLDER,
    .image_ext = "jpg",
    .default_arch = DECOUPLED_DEFAULT_ARCH,
    .default_iterations = 1000,
    .iterations_help = "per recover batch (the official --iteration)",
    .no_real_data = 1,
    .total_steps = sre2l_family_total_steps,
    .init = cda_init,
    .step = sre2l_family_step,
    .save = sre2l_family_save,
    .load = sre2l_family_load,
    .free = sre2l_family_free,
};
