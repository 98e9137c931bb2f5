/*
 * recipe.c: squeeze and soft-label (relabel) training of the decoupled methods, see recipe.h.
 *
 * References, read as the specification:
 *   - SRe2L (Yin et al., arXiv:2306.13092), VILA-Lab/SRe2L `SRe2L/(*small_dataset)/`:
 *     squeeze_cifar.py (the teacher) and relabel_cifar.py (the student: per batch,
 *     mixup_data(alpha 0.8: lam ~ Beta, randperm), student and teacher on the mixed batch,
 *     KLDivLoss(batchmean)(log_softmax(s / T), softmax(t / T)) with T = 30, AdamW(1e-3,
 *     wd 0.01), CosineAnnealingLR(T_max = epochs) stepped per epoch). Its teacher is never
 *     put in eval mode: it normalises each mixed batch with the batch's statistics and its
 *     running statistics drift. That quirk shapes SRe2L's published CIFAR numbers and is
 *     the preset's default (Recipe.teacher_train); eval mode is the corrected form.
 *   - RDED/DELT's evaluation (VILA-Lab/DELT `evaluation/validation/main.py`): CutMix, T = 20,
 *     teacher in eval mode, LambdaLR 0.5 (1 + cos(pi e / E / 2)).
 *   - G-VBSM (shaoshitong/G_VBSM_Dataset_Condensation `Branch_CIFAR_10/squeeze/train.py`,
 *     `train/train_FKD.py`): the teachers' SGD recipe; the student's "mse_gt" loss
 *     F.mse_loss(s, t) + ce_weight CE(s, y).
 * Deliberate differences: randomness (shuffling, crops, flips, mix draws) comes from beard's
 * Philox streams keyed by the run's seed, so runs are reproducible and agree with PyTorch in
 * distribution; RandomResizedCrop per image runs on the float tensor (torchvision's tensor
 * path), not on the PIL image.
 */
#include "recipe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/progress.h"
#include "../data/augment.h"
#include "fkd.h"

#define STREAM_SHUFFLE 0x524350000001ull // 'RCP'
#define STREAM_AUG 0x524350000002ull
#define STREAM_MIX 0x524350000003ull

static void base(Recipe *r, const char *name) {
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->pad = 4;
    r->rrc_min = 0.08f;
    r->momentum = 0.9f;
    r->temperature = 1.0f;
    r->eval_every = 10; // the official scripts test every 10 epochs and after the last
}

int recipe_preset(Recipe *r, const char *name) {
    if (!strcasecmp(name, "sre2l-squeeze")) {
        base(r, "sre2l-squeeze");
        r->epochs = 200, r->batch = 128, r->optimizer = OPTIM_SGD, r->lr = 0.1f, r->weight_decay = 5e-4f;
        r->schedule = RECIPE_LR_COSINE, r->aug = RECIPE_AUG_CROP_FLIP, r->loss = RECIPE_LOSS_CE;
        return 0;
    }
    if (!strcasecmp(name, "gvbsm-squeeze")) {
        base(r, "gvbsm-squeeze");
        r->epochs = 5, r->batch = 64, r->optimizer = OPTIM_SGD, r->lr = 0.05f, r->weight_decay = 0.0f;
        r->schedule = RECIPE_LR_CONSTANT, r->aug = RECIPE_AUG_CROP_FLIP, r->loss = RECIPE_LOSS_CE;
        return 0;
    }
    if (!strcasecmp(name, "sre2l-relabel") || !strcasecmp(name, "cda-relabel") || !strcasecmp(name, "scdd-relabel")) {
        base(r, "sre2l-relabel");
        r->epochs = 400, r->batch = 128, r->optimizer = OPTIM_ADAMW, r->lr = 1e-3f, r->weight_decay = 0.01f;
        r->schedule = RECIPE_LR_COSINE, r->aug = RECIPE_AUG_CROP_FLIP, r->mix = RECIPE_MIX_MIXUP, r->mix_alpha = 0.8f;
        r->loss = RECIPE_LOSS_KL, r->temperature = 30.0f, r->teacher_train = 1;
        return 0;
    }
    if (!strcasecmp(name, "rded-relabel") || !strcasecmp(name, "delt-relabel")) {
        base(r, "rded-relabel");
        r->epochs = 300, r->batch = 50, r->optimizer = OPTIM_ADAMW, r->lr = 1e-3f, r->weight_decay = 0.01f;
        r->schedule = RECIPE_LR_COSINE_HALF, r->aug = RECIPE_AUG_RRC_FLIP, r->mix = RECIPE_MIX_CUTMIX;
        r->mix_alpha = 1.0f, r->loss = RECIPE_LOSS_KL, r->temperature = 20.0f;
        return 0;
    }
    if (!strcasecmp(name, "gvbsm-relabel")) {
        base(r, "gvbsm-relabel");
        r->epochs = 1000, r->batch = 100, r->optimizer = OPTIM_ADAMW, r->lr = 1e-3f, r->weight_decay = 0.0f;
        r->schedule = RECIPE_LR_COSINE, r->aug = RECIPE_AUG_RRC_FLIP, r->mix = RECIPE_MIX_CUTMIX, r->mix_alpha = 1.0f;
        r->loss = RECIPE_LOSS_MSE_GT, r->ce_weight = 0.15f, r->temperature = 20.0f;
        return 0;
    }
    return -1;
}

const char *recipe_preset_list(void) {
    return "sre2l-squeeze, gvbsm-squeeze, sre2l-relabel (= cda-relabel, scdd-relabel), rded-relabel (= delt-relabel), "
           "gvbsm-relabel";
}

double recipe_lr(const Recipe *r, int epoch) {
    double E = r->epochs > 0 ? r->epochs : 1;
    switch (r->schedule) {
    case RECIPE_LR_COSINE: return 0.5 * (1.0 + cos(M_PI * epoch / E)) * r->lr;
    case RECIPE_LR_COSINE_HALF: return 0.5 * (1.0 + cos(M_PI * epoch / E / 2.0)) * r->lr;
    default: return r->lr;
    }
}

struct RecipeWork {
    int Bmax, K;
    size_t D;
    float *xm, *zs, *zt, *xa;
    int *perm, *idx, *yb;
    NetTape *tape;
};

void recipe_work_free(RecipeWork *w) {
    if (!w) return;
    xfree(w->xm), xfree(w->zs), xfree(w->zt), xfree(w->xa);
    free(w->perm), free(w->idx), free(w->yb);
    net_tape_free(w->tape);
    free(w);
}

RecipeWork *recipe_work_new(const Net *student, int B, Err *e) {
    RecipeWork *w = calloc(1, sizeof(*w));
    if (!w) goto oom;
    w->Bmax = B, w->K = student->n_classes, w->D = net_in_size(student);
    w->xm = xmalloc(sizeof(float) * B * w->D);
    w->xa = xmalloc(sizeof(float) * B * w->D);
    w->zs = xmalloc(sizeof(float) * B * w->K);
    w->zt = xmalloc(sizeof(float) * B * w->K);
    w->perm = malloc(sizeof(int) * B);
    w->idx = malloc(sizeof(int) * B);
    w->yb = malloc(sizeof(int) * B);
    if (w->xm && w->xa && w->zs && w->zt && w->perm && w->idx && w->yb) return w;
oom:
    recipe_work_free(w);
    err_set(e, "out of memory for training batches of %d", B);
    return NULL;
}

const float *recipe_work_mixed(const RecipeWork *w) { return w->xm; }
const float *recipe_work_student_logits(const RecipeWork *w) { return w->zs; }
const float *recipe_work_teacher_logits(const RecipeWork *w) { return w->zt; }

typedef struct {
    const Recipe *r;
    const float *zt; // (B, K) teacher logits or NULL
    const int *y;
    int B, K;
} LossCtx;

static void softmax_d(const float *z, int K, double inv_t, double *p, double *logp) {
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) mx = z[k] * inv_t > mx ? z[k] * inv_t : mx;
    for (int k = 0; k < K; k++) s += exp(z[k] * inv_t - mx);
    double lse = mx + log(s);
    for (int k = 0; k < K; k++) logp[k] = z[k] * inv_t - lse, p[k] = exp(logp[k]);
}

static double recipe_loss(void *c, int i, const float *z, float *dz) {
    const LossCtx *L = c;
    int K = L->K;
    double B = L->B, p[1024], lp[1024], q[1024], lq[1024], loss = 0;
    const float *t = L->zt ? L->zt + (size_t)i * K : NULL;
    switch (L->r->loss) {
    case RECIPE_LOSS_KL: {
        double T = L->r->temperature;
        softmax_d(t, K, 1.0 / T, p, lp);
        softmax_d(z, K, 1.0 / T, q, lq);
        for (int k = 0; k < K; k++) {
            if (p[k] > 0) loss += p[k] * (lp[k] - lq[k]);
            dz[k] = (float)((q[k] - p[k]) / (T * B));
        }
        return loss;
    }
    case RECIPE_LOSS_MSE_GT: {
        softmax_d(z, K, 1.0, q, lq);
        double w = L->r->ce_weight;
        for (int k = 0; k < K; k++) {
            double d = (double)z[k] - t[k];
            loss += d * d / K;
            dz[k] = (float)(2.0 * d / (K * B) + w * (q[k] - (k == L->y[i])) / B);
        }
        return loss - w * lq[L->y[i]];
    }
    default:
        softmax_d(z, K, 1.0, q, lq);
        for (int k = 0; k < K; k++) dz[k] = (float)((q[k] - (k == L->y[i])) / B);
        return -lq[L->y[i]];
    }
}

int recipe_step_grads(Net *student, const Recipe *r, RecipeWork *w, const float *x, const int *y, int B,
                      const RecipeDraw *d, double *loss, Err *e) {
    int K = student->n_classes;
    size_t D = w->D;
    if (B > w->Bmax || K > 1024) return err_set(e, "batch of %d (workspace %d) or %d classes", B, w->Bmax, K);
    if (d->mix == RECIPE_MIX_MIXUP) augment_mixup(w->xm, x, d->perm, B, D, d->lam);
    else if (d->mix == RECIPE_MIX_CUTMIX)
        augment_cutmix(w->xm, x, d->perm, B, student->in_c, student->in_h, student->in_w, d->box);
    else memcpy(w->xm, x, sizeof(float) * B * D);
    const float *zt = d->zt;
    if (r->loss != RECIPE_LOSS_CE && !zt) {
        if (!r->teacher) return err_set(e, "the %s recipe needs a teacher", r->name);
        Net *t = r->teacher;
        if (r->teacher_train) {
            if (net_tape_forward(t, &w->tape, w->xm, B, 1, e)) return -1;
            memcpy(w->zt, net_tape_out(w->tape, t->n_layers - 1), sizeof(float) * B * K);
        } else if (net_forward(t, w->xm, B, w->zt, e)) {
            return -1;
        }
        zt = w->zt;
    }
    LossCtx lc = {.r = r, .zt = zt, .y = y, .B = B, .K = K};
    NetBackward nb = {.loss = recipe_loss, .ctx = &lc, .nvec = 1, .logits = w->zs, .param_grads = 1};
    if (net_alloc_grads(student, e)) return -1;
    net_zero_grads(student);
    student->train = !r->linear_probe; // a probe leaves the backbone's BatchNorm in eval mode
    if (net_forward_backward(student, w->xm, B, &nb, e)) return -1;
    *loss = nb.loss_sum / B;
    return 0;
}

int recipe_check_teacher(const Net *teacher, const Net *student, const Pool *pool, Err *e) {
    if (teacher->n_classes != pool->n_classes)
        return err_set(e, "the teacher %s has %d classes but the dataset has %d", teacher->arch, teacher->n_classes,
                       pool->n_classes);
    if (teacher->in_c != pool->c || teacher->in_h != pool->h || teacher->in_w != pool->w)
        return err_set(e, "the teacher %s takes (%d, %d, %d) images but the dataset's are (%d, %d, %d)", teacher->arch,
                       teacher->in_c, teacher->in_h, teacher->in_w, pool->c, pool->h, pool->w);
    if (student && (student->n_classes != teacher->n_classes))
        return err_set(e, "the student %s has %d classes, the teacher %s %d", student->arch, student->n_classes,
                       teacher->arch, teacher->n_classes);
    return 0;
}

// the per-image transforms of the data loader, on model-space images
static void augment_images(const Recipe *r, float *x, float *tmp, int B, int C, int H, int W, const float *mean,
                           const float *std, Rng *rng) {
    size_t plane = (size_t)H * W, D = plane * C;
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * D, *tb = tmp + (size_t)b * D;
        if (r->aug == RECIPE_AUG_CROP_FLIP) {
            int top = augment_randint(rng, 0, 2 * r->pad), left = augment_randint(rng, 0, 2 * r->pad);
            for (int c = 0; c < C; c++) // black padding, normalised
                augment_crop_pad_forward(tb + c * plane, xb + c * plane, 1, 1, H, W, r->pad, top, left,
                                         (0.0f - mean[c]) / std[c]);
        } else if (r->aug == RECIPE_AUG_RRC_FLIP) {
            int box[4];
            augment_rrc_draw(rng, H, W, r->rrc_min, 1.0, 3.0 / 4.0, 4.0 / 3.0, box);
            augment_resized_crop_forward(tb, xb, 1, C, H, W, box[0], box[1], box[2], box[3], H, W);
        } else {
            continue;
        }
        if (rng_uniform(rng) < 0.5f) augment_hflip_forward(xb, tb, 1, C, H, W);
        else memcpy(xb, tb, sizeof(float) * D);
    }
}

static void draw_mix(const Recipe *r, int B, int H, int W, Rng *rng, RecipeDraw *d) {
    d->mix = r->mix;
    if (r->mix == RECIPE_MIX_NONE) return;
    d->lam = (float)augment_beta(rng, r->mix_alpha, r->mix_alpha);
    rng_permutation(rng, d->perm, B);
    if (r->mix == RECIPE_MIX_CUTMIX) augment_cutmix_box(rng, H, W, d->lam, d->box);
}

int recipe_train(Net *net, const Pool *pool, const TrainTest *test, const Recipe *r, uint64_t seed, int keep_params,
                 NetSnapshot *best, TrainResult *res, Err *e) {
    memset(res, 0, sizeof(*res));
    res->best_acc = -1;
    int n = pool->n, K = net->n_classes, C = net->in_c, H = net->in_h, W = net->in_w;
    size_t D = net_in_size(net);
    if (pool->c != C || pool->h != H || pool->w != W)
        return err_set(e, "the images are (%d, %d, %d) but %s takes (%d, %d, %d)", pool->c, pool->h, pool->w, net->arch,
                       C, H, W);
    if (pool->n_classes != K) return err_set(e, "the pool has %d classes, the model %d", pool->n_classes, K);
    if (n <= 0) return err_set(e, "the training set is empty");
    if (r->batch <= 0 || r->epochs < 1 || !(r->lr > 0)) return err_set(e, "bad recipe (batch %d, epochs %d)", r->batch, r->epochs);
    if (r->loss == RECIPE_LOSS_CE && r->mix != RECIPE_MIX_NONE)
        return err_set(e, "the %s recipe mixes images but trains on hard labels: mixing needs a teacher", r->name);
    int fb = 0, fe = 0, fbs = 0;
    if (r->fkd_dir) {
        if (r->loss == RECIPE_LOSS_CE) return err_set(e, "stored soft labels need a soft-label loss (kl or mse-gt)");
        if (fkd_info(r->fkd_dir, &fe, &fb, &fbs, e)) return -1;
        if (r->epochs > fe)
            return err_set(e, "%d epochs asked, but the soft labels in %s hold %d", r->epochs, r->fkd_dir, fe);
    } else if (r->loss != RECIPE_LOSS_CE) {
        if (!r->teacher) return err_set(e, "the %s recipe trains on a teacher's soft labels: give --teacher", r->name);
        if (recipe_check_teacher(r->teacher, net, pool, e)) return -1;
        if (!(r->temperature > 0)) return err_set(e, "the temperature must be positive");
    }
    int bmax = r->fkd_dir ? fbs : r->batch < n ? r->batch : n;
    RecipeWork *w = recipe_work_new(net, bmax, e);
    float *xb = w ? xmalloc(sizeof(float) * bmax * D) : NULL;
    int *perm = malloc(sizeof(int) * n), *yb = malloc(sizeof(int) * bmax);
    Optim opt;
    memset(&opt, 0, sizeof(opt));
    int rc = -1;
    Progress prog;
    progress_start(&prog, r->run_label ? r->run_label : "train", (double)r->epochs);
    if (!r->progress) prog.quiet = 1;
    // a linear probe optimises the last linear layer's weight and bias only
    size_t plo = 0, phi = net->n_params;
    if (r->linear_probe) {
        int l = net->n_layers - 1;
        while (l >= 0 && net->layers[l].kind != LAYER_LINEAR) l--;
        if (l < 0 || !keep_params) {
            err_set(e, l < 0 ? "a linear probe needs a model ending in a linear layer (%s has none)"
                             : "a linear probe starts from a trained backbone: give --init CHECKPOINT",
                    net->arch);
            goto done;
        }
        const Layer *L = &net->layers[l];
        size_t a0 = (size_t)L->w, a1 = (size_t)L->w + (size_t)L->in_c * L->out_c, b0 = (size_t)L->b,
               b1 = (size_t)L->b + (size_t)L->out_c;
        plo = a0 < b0 ? a0 : b0, phi = a1 > b1 ? a1 : b1;
        if (phi - plo != (a1 - a0) + (b1 - b0)) {
            err_set(e, "%s's last linear layer is not contiguous in the parameter arena", net->arch);
            goto done;
        }
    }
    if (!w || !xb || !perm || !yb || net_alloc_grads(net, e) ||
        optim_init(&opt, r->optimizer, phi - plo, r->lr, r->momentum, r->weight_decay)) {
        if (w) err_set(e, "out of memory for training");
        goto done;
    }
    if (!keep_params) net_init_params(net, seed);
    net_set_normalize(net, 0, NULL, NULL);
    Rng shuf, aug, mixr;
    rng_init(&shuf, seed, STREAM_SHUFFLE);
    rng_init(&aug, seed, STREAM_AUG);
    rng_init(&mixr, seed, STREAM_MIX);
    double t0 = time_now(), t_eval = 0;
    long step = 0;
    for (int ep = 0; ep < r->epochs; ep++) {
        opt.lr = (float)recipe_lr(r, ep);
        rng_permutation(&shuf, perm, n);
        double loss_sum = 0;
        long correct = 0;
        long seen = 0;
        for (int b = 0; r->fkd_dir && b < fb; b++) {
            // stored soft labels: the batch's images, crops, flips and mix as written
            FkdBatch f;
            if (fkd_read(r->fkd_dir, ep, b, n, K, &f, e)) goto done;
            if (f.B > bmax) {
                err_set(e, "%s: batch %d of epoch %d holds %d images, more than the first one's %d", r->fkd_dir, b, ep,
                        f.B, bmax);
                fkd_batch_free(&f);
                goto done;
            }
            fkd_images(pool, &f, xb, w->xa);
            for (int k = 0; k < f.B; k++) yb[k] = pool->y[f.index[k]];
            RecipeDraw d = {.mix = RECIPE_MIX_NONE, .zt = f.logits};
            double l;
            int rc2 = recipe_step_grads(net, r, w, xb, yb, f.B, &d, &l, e);
            if (!rc2) {
                optim_step(&opt, net->params + plo, net->grads + plo);
                loss_sum += l * f.B;
                for (int k = 0; k < f.B; k++) correct += logits_argmax(w->zs + (size_t)k * K, K) == yb[k];
                seen += f.B;
                step++;
            }
            fkd_batch_free(&f);
            if (rc2) goto done;
        }
        for (int s = 0; !r->fkd_dir && s < n; s += bmax) {
            int B = n - s < bmax ? n - s : bmax;
            pool_gather(pool, perm + s, B, xb, yb, NULL);
            augment_images(r, xb, w->xa, B, C, H, W, pool->mean, pool->std, &aug);
            RecipeDraw d = {.perm = w->perm};
            draw_mix(r, B, H, W, &mixr, &d);
            double l;
            if (recipe_step_grads(net, r, w, xb, yb, B, &d, &l, e)) goto done;
            optim_step(&opt, net->params + plo, net->grads + plo);
            loss_sum += l * B;
            for (int b = 0; b < B; b++) correct += logits_argmax(w->zs + (size_t)b * K, K) == yb[b];
            seen += B;
            step++;
            if (r->progress) {
                char extra[64];
                snprintf(extra, sizeof(extra), "epoch %d, loss %.4f", ep, loss_sum / (s + B));
                progress_update(&prog, ep + (double)(s + B) / n, extra);
            }
        }
        if (!isfinite(loss_sum)) {
            err_set(e, "the training loss is %g at epoch %d", loss_sum, ep);
            goto done;
        }
        res->train_loss = seen ? loss_sum / seen : 0;
        res->train_acc = seen ? 100.0 * correct / seen : 0;
        int last = ep == r->epochs - 1;
        double acc = -1;
        if (test && test->n > 0 && (last || (r->eval_every > 0 && ep % r->eval_every == 0))) {
            double te = time_now();
            if (train_test_accuracy(net, test, &acc, e)) goto done;
            t_eval += time_now() - te;
            if (acc > res->best_acc) {
                res->best_acc = acc, res->best_epoch = ep;
                if (best) net_snapshot_take(best, net);
            }
            if (last) res->test_acc = acc;
        }
        if (r->log && r->log_every > 0 && (last || ep % r->log_every == 0)) {
            progress_end(&prog);
            char t[32] = "";
            if (acc >= 0) snprintf(t, sizeof(t), "  test acc %6.2f%%", acc);
            fprintf(r->log, "%s%sepoch %4d/%d  loss %.6f  train acc %6.2f%%%s  lr %g  %.1fs\n",
                    r->run_label ? r->run_label : "", r->run_label ? ": " : "", ep, r->epochs, res->train_loss,
                    res->train_acc, t, opt.lr, time_now() - t0);
            fflush(r->log);
        }
    }
    res->steps = step;
    res->eval_seconds = t_eval;
    res->seconds = time_now() - t0 - t_eval;
    if (res->best_acc < 0) res->best_acc = 0;
    rc = 0;
done:
    progress_end(&prog);
    net->train = 0;
    optim_free(&opt);
    recipe_work_free(w);
    xfree(xb);
    free(perm), free(yb);
    return rc;
}
