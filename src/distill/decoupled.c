/*
 * decoupled.c: what the decoupled methods share (see decoupled.h): their teachers, the
 * real images in model space, and the current batch's optimiser in checkpoints.
 */
#include "decoupled.h"

#include <stdlib.h>
#include <string.h>

#include "../models/checkpoint.h"

int decoupled_teachers_load(DistillRun *r, Net *const *nets, int max, int *n, Err *e) {
    const DistillParams *p = r->p;
    const char *M = r->cfg->method->name;
    char path[DISTILL_STR_MAX], arch[DISTILL_STR_MAX];
    int nt = distill_param_item(p, "teacher", 0, path, sizeof(path));
    int na = distill_param_item(p, "teacher_arch", 0, arch, sizeof(arch));
    *n = 0;
    if (nt == 0)
        return err_set(e, "%s recovers from a squeezed teacher: give its checkpoint with --teacher T.pth (beard train "
                          "--src-dataset --recipe sre2l-squeeze trains one)",
                       M);
    if (nt > max) {
        if (max == 1) return err_set(e, "%s recovers from one teacher; %d given (G-VBSM takes several)", M, nt);
        return err_set(e, "%s takes at most %d teachers; %d given", M, max, nt);
    }
    if (na > 1 && na != nt)
        return err_set(e, "%d teacher architectures for %d teachers (give one for all, or one per teacher)", na, nt);
    const DatasetInfo *info = r->info;
    for (int t = 0; t < nt; t++) {
        distill_param_item(p, "teacher", t, path, sizeof(path));
        if (na == 0) snprintf(arch, sizeof(arch), "%s", r->cfg->arch);
        else distill_param_item(p, "teacher_arch", na == 1 ? 0 : t, arch, sizeof(arch));
        if (!path[0]) {
            for (int k = 0; k < t; k++) net_free(nets[k]);
            return err_set(e, "teacher %d: an empty path in the teacher list", t + 1);
        }
        if (checkpoint_load(nets[t], path, arch, info->c, info->n_classes, info->h, info->w, e)) {
            for (int k = 0; k < t; k++) net_free(nets[k]);
            return err_wrap(e, "teacher %s does not load as a %s for %s (%d classes, %dx%dx%d)", path, arch, info->name,
                            info->n_classes, info->c, info->h, info->w);
        }
        nets[t]->train = 0;
        net_set_normalize(nets[t], 0, NULL, NULL);
    }
    *n = nt;
    return 0;
}

float *decoupled_real_images(const DistillRun *r) {
    if (!r->real) return NULL;
    size_t D = (size_t)r->C * r->H * r->W;
    float *x = xmalloc(sizeof(float) * D * (size_t)(r->real->n > 0 ? r->real->n : 1));
    if (x) dataset_to_float(r->real, 0, r->real->n, x, 1);
    return x;
}

int decoupled_adam_save(const Optim *o, long batch, const char *prefix, TensorDict *ck, Err *e) {
    char name[96];
    int64_t b = batch;
    snprintf(name, sizeof(name), "%s.batch", prefix);
    if (distill_ck_add(ck, name, DTYPE_I64, 0, NULL, &b, e)) return -1;
    if (!o->m) return 0; // no batch started yet
    return distill_optim_save(o, prefix, ck, e);
}

int decoupled_adam_load(Optim *o, size_t n, float lr, long batch, const char *prefix, const TensorDict *ck, int *loaded,
                        Err *e) {
    char name[96];
    *loaded = 0;
    snprintf(name, sizeof(name), "%s.batch", prefix);
    const Tensor *b = distill_ck_get(ck, name, DTYPE_I64, 1, e);
    if (!b) return -1;
    if (((int64_t *)b->data)[0] != batch) return 0; // the checkpoint falls between batches
    optim_free(o);
    if (recover_adam_init(o, n, lr)) return err_set(e, "out of memory for the optimiser");
    if (distill_optim_load(o, prefix, ck, e)) return -1;
    *loaded = 1;
    return 0;
}
