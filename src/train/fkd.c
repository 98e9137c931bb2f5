/*
 * fkd.c: FKD-style stored soft labels in G-VBSM's layout, see fkd.h. References:
 * shaoshitong/G_VBSM_Dataset_Condensation `Branch_CIFAR_10/relabel/generate_soft_label_with_db.py`
 * (save: per epoch a shuffled pass in batches; RandomResizedCropWithCoords + flip per image;
 * mix_aug on the batch; the teachers in eval mode; mean of their logits) and utils_fkd.py
 * (the list layout, fkd_load's replay). Deliberate differences: the shuffles and draws come
 * from beard's Philox streams, and the crops run on the float tensor (see recipe.c).
 */
#include "fkd.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/progress.h"
#include "../data/augment.h"
#include "../io/pickle.h"
#include "../io/torch_pt.h"

#define STREAM_FKD 0x464B440000ull // 'FKD'

static int mkdir_one(const char *d, Err *e) {
    if (mkdir(d, 0777) && errno != EEXIST) return err_set(e, "cannot create folder %s", d);
    return 0;
}

void fkd_images(const Pool *pool, const FkdBatch *f, float *x, float *tmp) {
    int C = pool->c, H = pool->h, W = pool->w;
    size_t D = (size_t)C * H * W;
    for (int k = 0; k < f->B; k++) {
        pool_gather(pool, &f->index[k], 1, tmp, NULL, NULL);
        const float *c = f->coords + 4 * k;
        int i = (int)nearbyintf(c[0] * H), j = (int)nearbyintf(c[1] * W), h = (int)nearbyintf(c[2] * H),
            w = (int)nearbyintf(c[3] * W);
        if (h < 1) h = 1;
        if (w < 1) w = 1;
        if (i < 0) i = 0;
        if (j < 0) j = 0;
        if (i + h > H) i = H - h;
        if (j + w > W) j = W - w;
        float *out = x + (size_t)k * D;
        augment_resized_crop_forward(out, tmp, 1, C, H, W, i, j, h, w, H, W);
        if (f->flip[k]) {
            memcpy(tmp, out, sizeof(float) * D);
            augment_hflip_forward(out, tmp, 1, C, H, W);
        }
    }
    if (f->mix_index && f->has_lam) {
        float *mixed = xmalloc(sizeof(float) * f->B * D);
        if (!mixed) return;
        if (f->has_bbox) augment_cutmix(mixed, x, f->mix_index, f->B, C, H, W, f->bbox);
        else augment_mixup(mixed, x, f->mix_index, f->B, D, (float)f->lam);
        memcpy(x, mixed, sizeof(float) * f->B * D);
        xfree(mixed);
    }
}

void fkd_batch_free(FkdBatch *f) {
    free(f->coords), free(f->flip), free(f->mix_index), free(f->logits), free(f->index);
    memset(f, 0, sizeof(*f));
}

static TorchObj *tensor_obj(Tensor *t, DType dt, int ndim, const int64_t *shape, Err *e) {
    if (tensor_init(t, dt, ndim, shape, e)) return NULL;
    return tobj_tensor(t);
}

int fkd_generate(const char *dir, const Pool *pool, Net *const *teachers, int n_teachers, int epochs, int batch,
                 RecipeMix mix, float mix_alpha, float rrc_min, int fp16, uint64_t seed, int progress, Err *e) {
    int n = pool->n, C = pool->c, H = pool->h, W = pool->w, K = pool->n_classes;
    size_t D = (size_t)C * H * W;
    if (n_teachers < 1 || epochs < 1 || batch < 1) return err_set(e, "FKD labels need teachers, epochs and a batch");
    for (int t = 0; t < n_teachers; t++)
        if (recipe_check_teacher(teachers[t], NULL, pool, e)) return -1;
    if (mkdir_one(dir, e)) return -1;
    int bmax = batch < n ? batch : n;
    int *perm = malloc(sizeof(int) * n), *mperm = malloc(sizeof(int) * bmax);
    float *x = xmalloc(sizeof(float) * bmax * D), *tmp = xmalloc(sizeof(float) * D), *z = xmalloc(sizeof(float) * bmax * K),
          *zs = xmalloc(sizeof(float) * bmax * K);
    int rc = -1;
    Progress prog;
    progress_start(&prog, "FKD labels", (double)epochs);
    if (!progress) prog.quiet = 1;
    if (!perm || !mperm || !x || !tmp || !z || !zs) {
        err_set(e, "out of memory");
        goto done;
    }
    Rng r;
    rng_init(&r, seed, STREAM_FKD);
    for (int ep = 0; ep < epochs; ep++) {
        char ed[1100];
        snprintf(ed, sizeof(ed), "%s/epoch_%d", dir, ep);
        if (mkdir_one(ed, e)) goto done;
        rng_permutation(&r, perm, n);
        for (int s = 0, b = 0; s < n; s += bmax, b++) {
            int B = n - s < bmax ? n - s : bmax;
            FkdBatch f = {.B = B, .K = K};
            Tensor tc, tf, tm, tl, ti;
            memset(&tc, 0, sizeof(tc)), memset(&tf, 0, sizeof(tf)), memset(&tm, 0, sizeof(tm));
            memset(&tl, 0, sizeof(tl)), memset(&ti, 0, sizeof(ti));
            int64_t s4[2] = {B, 4}, s1[1] = {B}, sk[2] = {B, K};
            TorchObj *root = tobj_list();
            TorchObj *oc = tensor_obj(&tc, DTYPE_F32, 2, s4, e), *of = tensor_obj(&tf, DTYPE_BOOL, 1, s1, e);
            TorchObj *oi = tensor_obj(&ti, DTYPE_I64, 1, s1, e);
            f.coords = tc.data, f.flip = tf.data;
            f.index = malloc(sizeof(int) * B);
            int ok = root && oc && of && oi && f.index;
            for (int k = 0; ok && k < B; k++) {
                int box[4];
                augment_rrc_draw(&r, H, W, rrc_min, 1.0, 3.0 / 4.0, 4.0 / 3.0, box);
                f.coords[4 * k + 0] = (float)box[0] / H, f.coords[4 * k + 1] = (float)box[1] / W;
                f.coords[4 * k + 2] = (float)box[2] / H, f.coords[4 * k + 3] = (float)box[3] / W;
                f.flip[k] = rng_uniform(&r) < 0.5f;
                f.index[k] = perm[s + k];
                ((int64_t *)ti.data)[k] = perm[s + k];
            }
            TorchObj *om = NULL, *olam = NULL, *obox = NULL;
            if (ok && mix != RECIPE_MIX_NONE) {
                rng_permutation(&r, mperm, B);
                f.mix_index = mperm;
                f.lam = augment_beta(&r, mix_alpha, mix_alpha), f.has_lam = 1;
                om = tensor_obj(&tm, DTYPE_I64, 1, s1, e);
                for (int k = 0; om && k < B; k++) ((int64_t *)tm.data)[k] = mperm[k];
                olam = tobj_float(f.lam);
                if (mix == RECIPE_MIX_CUTMIX) {
                    augment_cutmix_box(&r, H, W, f.lam, f.bbox);
                    f.has_bbox = 1;
                    obox = tobj_list();
                    for (int q = 0; q < 4; q++) tobj_append(obox, tobj_int(f.bbox[q]));
                } else {
                    obox = tobj_none();
                }
                ok = om && olam && obox;
            } else {
                om = tobj_none(), olam = tobj_none(), obox = tobj_none();
            }
            if (ok) fkd_images(pool, &f, x, tmp);
            // the teachers' mean logits
            for (int t = 0; ok && t < n_teachers; t++) {
                if (net_forward(teachers[t], x, B, t ? z : zs, e)) ok = 0;
                if (t)
                    for (size_t q = 0; q < (size_t)B * K; q++) zs[q] += z[q];
            }
            TorchObj *ol = NULL;
            if (ok) {
                ol = tensor_obj(&tl, fp16 ? DTYPE_F16 : DTYPE_F32, 2, sk, e);
                for (size_t q = 0; ol && q < (size_t)B * K; q++) {
                    float v = zs[q] / n_teachers;
                    if (fp16) ((uint16_t *)tl.data)[q] = float_to_half(v);
                    else ((float *)tl.data)[q] = v;
                }
                ok = ol != NULL;
            }
            if (ok) {
                tobj_append(root, oc), tobj_append(root, of), tobj_append(root, om), tobj_append(root, olam);
                tobj_append(root, obox), tobj_append(root, ol), tobj_append(root, oi);
                oc = of = om = olam = obox = ol = oi = NULL;
                char path[1200];
                snprintf(path, sizeof(path), "%s/batch_%d.tar", ed, b);
                if (torch_save_obj(path, root, e)) ok = 0;
            } else if (!e->msg[0]) {
                err_set(e, "out of memory");
            }
            tobj_free(root), tobj_free(oc), tobj_free(of), tobj_free(om), tobj_free(olam), tobj_free(obox);
            tobj_free(ol), tobj_free(oi);
            tensor_free(&tc), tensor_free(&tf), tensor_free(&tm), tensor_free(&tl), tensor_free(&ti);
            free(f.index);
            if (!ok) goto done;
        }
        if (progress) progress_update(&prog, ep + 1, NULL);
    }
    rc = 0;
done:
    progress_end(&prog);
    free(perm), free(mperm);
    xfree(x), xfree(tmp), xfree(z), xfree(zs);
    return rc;
}

static int count_prefix(const char *dir, const char *prefix, Err *e) {
    DIR *d = opendir(dir);
    if (!d) return err_set(e, "cannot read the folder %s", dir), -1;
    int n = 0;
    struct dirent *de;
    size_t pl = strlen(prefix);
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, pl)) n++;
    closedir(d);
    return n;
}

static const Tensor *item_tensor(const PickleValue *root, int k) {
    const PickleValue *v = root->items[k];
    return pickle_is(v, PICKLE_TENSOR) ? v->tensor : NULL;
}

int fkd_read(const char *dir, int epoch, int b, int n_images, int K, FkdBatch *f, Err *e) {
    memset(f, 0, sizeof(*f));
    char path[1200];
    snprintf(path, sizeof(path), "%s/epoch_%d/batch_%d.tar", dir, epoch, b);
    PickleValue *root;
    if (torch_load(path, &root, e)) return -1;
    int rc = -1;
    if (!pickle_is(root, PICKLE_LIST) || root->n < 6) {
        err_set(e, "%s is not an FKD batch (a list [coords, flip, mix_index, mix_lam, mix_bbox, soft_label, index])", path);
        goto out;
    }
    if (root->n < 7) {
        err_set(e, "%s has no image index (SRe2L's layout, whose order comes from torch's seeded sampler): beard reads "
                   "G-VBSM's layout, with the index as the 7th entry",
                path);
        goto out;
    }
    const Tensor *tc = item_tensor(root, 0), *tf = item_tensor(root, 1), *tl = item_tensor(root, 5),
                 *ti = item_tensor(root, 6);
    if (!tc || !tf || !tl || !ti || tc->ndim != 2 || tc->shape[1] != 4 || tl->ndim != 2) {
        err_set(e, "%s: coords, flip, soft_label and index must be tensors of shapes (B, 4), (B), (B, K), (B)", path);
        goto out;
    }
    int B = (int)tc->shape[0];
    f->B = B, f->K = (int)tl->shape[1];
    if (B < 1 || (int64_t)tf->numel != B || tl->shape[0] != B || (int64_t)ti->numel != B) {
        err_set(e, "%s: the soft labels do not match their batch: %lld coords, %zu flips, %lld soft-label rows, %zu "
                   "indices",
                path, (long long)tc->shape[0], tf->numel, (long long)tl->shape[0], ti->numel);
        goto out;
    }
    if (f->K != K) {
        err_set(e, "%s: the soft labels have %d classes but the images %d", path, f->K, K);
        goto out;
    }
    float *coords = tensor_to_f32(tc, e), *logits = tensor_to_f32(tl, e);
    int64_t *flip = tensor_to_i64(tf, e), *index = tensor_to_i64(ti, e);
    f->coords = coords, f->logits = logits;
    f->flip = malloc(B), f->index = malloc(sizeof(int) * B);
    if (!coords || !logits || !flip || !index || !f->flip || !f->index) {
        free(flip), free(index);
        if (!e->msg[0]) err_set(e, "out of memory");
        goto out;
    }
    int bad = 0;
    for (int k = 0; k < B; k++) {
        f->flip[k] = flip[k] != 0;
        bad |= index[k] < 0 || index[k] >= n_images;
        f->index[k] = (int)index[k];
        for (int q = 0; q < 4; q++) bad |= !(coords[4 * k + q] >= 0.0f && coords[4 * k + q] <= 1.0f);
    }
    free(flip), free(index);
    if (bad) {
        err_set(e, "%s: the soft labels do not match the images: an index outside the %d images or a crop outside "
                   "the image",
                path, n_images);
        goto out;
    }
    const PickleValue *m = root->items[2], *lam = root->items[3], *box = root->items[4];
    if (pickle_is(m, PICKLE_TENSOR)) {
        int64_t *mi = tensor_to_i64(m->tensor, e);
        f->mix_index = malloc(sizeof(int) * B);
        if (!mi || !f->mix_index || (int)m->tensor->numel != B) {
            free(mi);
            if (!e->msg[0]) err_set(e, "%s: mix_index has %zu entries for a batch of %d", path, m->tensor->numel, B);
            goto out;
        }
        for (int k = 0; k < B; k++) {
            bad |= mi[k] < 0 || mi[k] >= B;
            f->mix_index[k] = (int)mi[k];
        }
        free(mi);
        if (bad) {
            err_set(e, "%s: mix_index points outside the batch", path);
            goto out;
        }
    }
    if (pickle_is(lam, PICKLE_FLOAT)) f->lam = lam->f, f->has_lam = 1;
    if ((pickle_is(box, PICKLE_LIST) || pickle_is(box, PICKLE_TUPLE)) && box->n == 4) {
        for (int q = 0; q < 4; q++) {
            const PickleValue *v = box->items[q];
            if (!pickle_is(v, PICKLE_INT)) bad = 1;
            else f->bbox[q] = (int)v->i;
        }
        f->has_bbox = !bad;
    }
    if (f->mix_index && !f->has_lam) {
        err_set(e, "%s: a mix permutation without its lambda", path);
        goto out;
    }
    rc = 0;
out:
    pickle_free(root);
    if (rc) fkd_batch_free(f);
    return rc;
}

int fkd_info(const char *dir, int *epochs, int *batches, int *batch_size, Err *e) {
    int ne = count_prefix(dir, "epoch_", e);
    if (ne <= 0) return ne < 0 ? -1 : err_set(e, "%s holds no epoch_* folders of FKD soft labels", dir);
    char ed[1100];
    snprintf(ed, sizeof(ed), "%s/epoch_0", dir);
    int nb = count_prefix(ed, "batch_", e);
    if (nb <= 0) return nb < 0 ? -1 : err_set(e, "%s holds no batch_*.tar files", ed);
    *epochs = ne, *batches = nb, *batch_size = 0;
    // the first batch's size, without the class check
    PickleValue *root;
    char path[1200];
    snprintf(path, sizeof(path), "%s/batch_0.tar", ed);
    if (torch_load(path, &root, e)) return -1;
    if (pickle_is(root, PICKLE_LIST) && root->n >= 1 && pickle_is(root->items[0], PICKLE_TENSOR) &&
        root->items[0]->tensor->ndim == 2)
        *batch_size = (int)root->items[0]->tensor->shape[0];
    pickle_free(root);
    if (*batch_size <= 0) return err_set(e, "%s is not an FKD batch", path);
    return 0;
}
