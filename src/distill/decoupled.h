/*
 * decoupled.h: what the decoupled distillation methods share (squeeze, recover, relabel:
 * SRe2L, CDA, SC-DD, G-VBSM, DELT). Each method is one file (sre2l.c, cda.c, scdd.c,
 * gvbsm.c, delt.c) defining a DistillMethodDef, registered in registry.c like every other
 * method and run by `beard distill` (stage.c: options, --config, checkpoints, --resume,
 * progress, seeding, outputs, non-finite losses). The recover iteration itself is
 * recover.c; this file's helpers are decoupled.c.
 *
 * Stage 1 here is the recover step: the squeezed teacher (`beard train --src-dataset
 * --recipe sre2l-squeeze`, or a torchvision-layout checkpoint) is the `teacher` parameter,
 * its architecture --arch (or `teacher_arch`). Stage 2 relabels: `beard train --teacher`
 * (online soft labels, SRe2L's CIFAR relabel) or `beard relabel` (FKD files, G-VBSM).
 *
 * The synthetic set is recovered in batches, each batch `iterations` steps of Adam from
 * scratch (the official --iteration), so a method's step r->it is (batch, iteration within
 * it). Every draw of a step (initial noise at a batch's first iteration, the augmentation,
 * G-VBSM's hook drops) comes from the stage's generator keyed by (seed, step), and the
 * current batch's images live in r->syn after every step: a checkpoint holds the images,
 * the batch's Adam moments and (G-VBSM) the densified statistics, and a resumed run is the
 * uninterrupted one bit for bit. The draws follow the official distributions (Python's
 * random.randint, torchvision's get_params); their values are beard's, not torch's.
 */
#ifndef BEARD_DECOUPLED_H
#define BEARD_DECOUPLED_H

#include "distill.h"
#include "recover.h"

#define DECOUPLED_MAX_TEACHERS 8

// the parameters every decoupled method takes, at the end of its table
#define DECOUPLED_TEACHER_PARAMS                                                                               \
    {"teacher", DPARAM_LIST, 0, "", NAN,                                                                        \
     "the squeezed teacher's checkpoint (.pth, torchvision layout; required; G-VBSM: several, comma-separated " \
     "or the option repeated, used one per iteration in turn)"},                                              \
    {"teacher_arch", DPARAM_LIST, 0, "", NAN,                                                                   \
     "the teachers' architectures, one for all or one per teacher (default: --arch)"}

// default --arch of the family: SRe2L's CIFAR teacher (torchvision ResNet-18 with a 3x3
// stride-1 conv1 and no max-pool, resnet18_modified in the model zoo)
#define DECOUPLED_DEFAULT_ARCH "resnet18_modified"

// Loads the teachers of the `teacher` / `teacher_arch` parameters into *nets[0..] for r's dataset (eval
// mode, input normalisation off: the synthetic images are normalised), at most max of
// them (1 for a single-teacher method, which then refuses several). Errors name the file,
// the architecture and the dataset's classes and shape.
int decoupled_teachers_load(DistillRun *r, Net *const *nets, int max, int *n, Err *e);

// the real training images in model space (n, D) and their labels, or NULL (out of memory)
float *decoupled_real_images(const DistillRun *r);

// The recover loop of SRe2L, CDA and SC-DD (sre2l.c): for every ipc id, the classes in
// batches of batch_size, from randn, `iterations` steps each; draw writes the step's
// augmentation (iteration `it` of `total` in the batch) from rng.
typedef void (*Sre2lDraw)(const DistillRun *r, int it, int total, Rng *rng, RecoverDraw *d);
int sre2l_family_init(DistillRun *r, Sre2lDraw draw, Err *e);
long sre2l_family_total_steps(const DistillRun *r);
int sre2l_family_step(DistillRun *r, Err *e);
int sre2l_family_save(DistillRun *r, TensorDict *ck, Err *e);
int sre2l_family_load(DistillRun *r, const TensorDict *ck, Err *e);
void sre2l_family_free(DistillRun *r);
// SRe2L's augmentation: the roll by (randint(0, jitter), randint(0, jitter)) alone
void sre2l_roll_draw(const DistillRun *r, int it, int total, Rng *rng, RecoverDraw *d);

// CDA's lower crop bound at iteration it of total: from 1.0 to 0.08 over milestone x total
// iterations (mode step, linear or cosine), 0.08 after
double cda_min_crop(const char *mode, double milestone, int it, int total);
// checks CDA's curriculum parameters (easy2hard_mode, milestone)
int cda_check_params(const DistillParams *p, Err *e);

// DELT's helpers (delt.c): data_selection.py's store_medium, the indices (into scores) of the
// ipc images around the median score, in the order they are stored; -1 when ipc > n
int delt_select_medium(const float *scores, int n, int ipc, int *out);
// the rounds of get_round_imgs_indx for one class: image i (of ipc) joins at start[i] and
// stays to the last of `rounds` rounds
void delt_round_starts(int ipc, int rounds, int *start);

// Adam's moments and step of the current batch in a checkpoint ("<prefix>.m/.v/.step"),
// with the batch they belong to ("<prefix>.batch"); load restores them only when the run
// resumes inside that batch (batch == the batch of the next step) and then allocates the
// optimiser for n values
int decoupled_adam_save(const Optim *o, long batch, const char *prefix, TensorDict *ck, Err *e);
int decoupled_adam_load(Optim *o, size_t n, float lr, long batch, const char *prefix, const TensorDict *ck, int *loaded,
                        Err *e);

#endif
