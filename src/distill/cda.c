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

static void cda_defaults(DecoupledArgs *a) {
    a->iteration = 1000, a->batch_size = 100, a->jitter = 4;
    a->lr = 0.4f, a->r_bn = 0.05f, a->first_bn_multiplier = 10.0f;
    snprintf(a->easy2hard_mode, sizeof(a->easy2hard_mode), "cosine");
    a->milestone = 1.0f;
}

double cda_min_crop(const DecoupledArgs *a, int it, int total) {
    double m = a->milestone * total;
    if (it < m) {
        if (!strcasecmp(a->easy2hard_mode, "step")) return 1.0;
        if (!strcasecmp(a->easy2hard_mode, "linear")) return 0.08 + (1.0 - 0.08) * (1.0 - it / m);
        return 0.08 + (1.0 - 0.08) * (1.0 + cos(M_PI * it / m)) / 2.0;
    }
    return 0.08;
}

static void cda_draw(const DecoupledArgs *a, int it, int total, Rng *r, RecoverDraw *d) {
    memset(d, 0, sizeof(*d));
    int H = a->teachers[0]->in_h, W = a->teachers[0]->in_w;
    d->crop = 1;
    augment_rrc_draw(r, H, W, cda_min_crop(a, it, total), 1.0, 3.0 / 4.0, 4.0 / 3.0, d->box);
    d->flip = rng_uniform(r) < 0.5f;
    d->roll_dy = augment_randint(r, 0, a->jitter);
    d->roll_dx = augment_randint(r, 0, a->jitter);
}

static int cda_run(const DecoupledArgs *a, DecoupledOut *out, Err *e) {
    if (strcasecmp(a->easy2hard_mode, "step") && strcasecmp(a->easy2hard_mode, "linear") &&
        strcasecmp(a->easy2hard_mode, "cosine"))
        return err_set(e, "easy2hard_mode must be step, linear or cosine, not '%s'", a->easy2hard_mode);
    if (!(a->milestone >= 0 && a->milestone <= 1)) return err_set(e, "milestone must lie in [0, 1]");
    return sre2l_family_run(a, out, cda_draw, "CDA", e);
}

const DecoupledMethod decoupled_cda = {
    .name = "CDA",
    .image_ext = "jpg",
    .defaults = cda_defaults,
    .run = cda_run,
    .params = "iteration batch_size lr r_bn first_bn_multiplier jitter easy2hard_mode milestone",
    .help = "iteration 1000, batch_size 100, lr 0.4, r_bn 0.05, first_bn_multiplier 10, jitter 4, "
            "easy2hard_mode cosine, milestone 1",
};
