/*
 * decoupled.h: the decoupled distillation methods (squeeze, recover, relabel) as one family:
 * SRe2L, CDA, SC-DD, G-VBSM, DELT. Each method is one file (sre2l.c, cda.c, scdd.c, gvbsm.c,
 * delt.c) defining a DecoupledMethod; decoupled.c holds the table that registers them, the
 * shared options and the image-folder output the methods release. The recover iteration
 * itself is recover.c.
 *
 * Parameters carry the official code's argparse names and defaults (per method, in each
 * file). Randomness (initial noise, augmentation draws, hook drops) comes from beard's Philox
 * streams keyed by the seed: the same seed and thread count give the same images; the draws
 * follow the official distributions (Python's random.randint, torchvision's get_params).
 */
#ifndef BEARD_DECOUPLED_H
#define BEARD_DECOUPLED_H

#include <stdint.h>
#include <stdio.h>

#include "../models/net.h"
#include "recover.h"

#define DECOUPLED_MAX_TEACHERS 8

typedef struct {
    // the teachers (G-VBSM takes several, one per iteration in turn; the others one)
    Net *teachers[DECOUPLED_MAX_TEACHERS];
    int n_teachers;
    int n_classes, ipc;
    float mean[3], std[3]; // the normalisation the teachers take (clip bounds, output pixels)
    // real training images in model space (DELT's initialisation, G-VBSM's statistics)
    const float *real_x;
    const int *real_y;
    int n_real;
    // hyperparameters, by the official names
    int iteration, batch_size, jitter;
    float lr, r_bn, first_bn_multiplier;
    char easy2hard_mode[8]; // CDA / DELT: step, linear, cosine
    float milestone;
    int round_iterations, min_iterations; // DELT
    int ranking_imagenet_norm;            // DELT: data_selection.py normalises CIFAR with ImageNet's constants
    float r_loss, nuc_norm, tau, training_momentum, drop_rate; // G-VBSM
    int stat_batch;           // G-VBSM: batch of the training-set statistics pass (64)
    int verifier_every;       // G-VBSM: the verifier's forward every N iterations (100; 0: off)
    int fix_first_grad;       // G-VBSM: see RecoverLoss.fix_first_grad
    uint64_t seed;
    int progress;
    FILE *log;                // a line every log_every iterations, or NULL
    int log_every;
} DecoupledArgs;

// the recovered set: n_classes * ipc images, image (c, i) at index c * ipc + i, model space
typedef struct {
    float *x;
    int *y;
    int n, ipc, n_classes;
    double seconds;
    long iterations; // recover iterations run (all batches)
} DecoupledOut;

typedef struct {
    const char *name;
    const char *image_ext; // "jpg" (SRe2L, CDA, DELT, SC-DD) or "png" (G-VBSM)
    int conv_hooks;        // hooks Conv2d inputs too (G-VBSM)
    int needs_real;        // needs the real training images (DELT, G-VBSM)
    void (*defaults)(DecoupledArgs *a);
    int (*run)(const DecoupledArgs *a, DecoupledOut *out, Err *e);
    const char *params;    // the parameters it takes (official names, '_' for '-'), space-separated
    const char *help;      // the parameters and their defaults, one line
} DecoupledMethod;

// sets a parameter by its official name ('-' or '_'): 0, -1 unknown to the method, -2 bad value
int decoupled_set_param(const DecoupledMethod *m, DecoupledArgs *a, const char *name, const char *value);

const DecoupledMethod *decoupled_find(const char *name);
const DecoupledMethod *decoupled_method(int i); // NULL past the end
void decoupled_args_default(DecoupledArgs *a);

int decoupled_out_init(DecoupledOut *o, int n_classes, int ipc, size_t D, Err *e);
void decoupled_out_free(DecoupledOut *o);

// ImageFolder output as the methods write it: dir/new{c:03d}/class{c:03d}_id{i:03d}.{ext},
// pixels = clamp(x * std + mean, 0, 1) * 255 truncated to uint8 (PIL's fromarray of
// (img * 255).astype(uint8)); JPEG at PIL's defaults (quality 75, 4:2:0) via libjpeg, PNG via
// libpng. Every file is written to a temporary name and renamed.
int decoupled_write_imagefolder(const char *dir, const DecoupledOut *o, int C, int H, int W, const float *mean,
                                const float *std, const char *ext, Err *e);

// the recover loop shared by SRe2L, CDA and SC-DD (sre2l.c): for every ipc id, a batch of
// one image per class from randn, `iteration` steps; draw writes the iteration's augmentation
int sre2l_family_run(const DecoupledArgs *a, DecoupledOut *out,
                     void (*draw)(const DecoupledArgs *a, int it, int total, Rng *r, RecoverDraw *d), const char *label,
                     Err *e);
// SRe2L's augmentation: the roll by (randint(0, jitter), randint(0, jitter)) alone
void sre2l_roll_draw(const DecoupledArgs *a, int it, int total, Rng *r, RecoverDraw *d);
// CDA's lower crop bound at iteration it of total (easy2hard_mode, milestone)
double cda_min_crop(const DecoupledArgs *a, int it, int total);

// DELT's helpers (delt.c): data_selection.py's store_medium, the indices (into scores) of the
// ipc images around the median score, in the order they are stored; -1 when ipc > n
int delt_select_medium(const float *scores, int n, int ipc, int *out);
// the rounds of get_round_imgs_indx for one class: image i (of ipc) joins at start[i] and
// stays to the last of `rounds` rounds
void delt_round_starts(int ipc, int rounds, int *start);

extern const DecoupledMethod decoupled_sre2l, decoupled_cda, decoupled_scdd, decoupled_gvbsm, decoupled_delt;

#endif
