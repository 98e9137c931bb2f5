/*
 * pool.c: distilled-set loaders (see pool.h for the formats and the normalised-storage
 * convention).
 *
 * Reference: BEARD Code/train_model.py (torch.load(data_file)['data'][0] for res files,
 * data_file + 'images_best.pt' / 'labels_best.pt' for MTT), DC-bench's loading of the
 * DC/DSA/DM res files (the last experiment), IDM/BACON's pickled (images, labels) tuple,
 * and eva_utils.number_sign_augment for the 4-in-1 unpacking. Deliberate differences:
 * the experiment is selectable (BEARD hard-codes the first, DC-bench the last; beard
 * defaults to the last), and every shape and label is checked against the dataset before
 * training starts instead of failing inside the first forward pass.
 */
#include "pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/torch_pt.h"
#include "../nn/nn.h"

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void pool_free(Pool *p) {
    xfree(p->x);
    xfree(p->y);
    xfree(p->soft);
    memset(p, 0, sizeof(*p));
}

// ----------------------------------------------------------------------------
// images and labels from tensors

static int take_images(Pool *p, const PickleValue *v, const PoolOptions *o, const char *what, Err *e) {
    if (!v || v->type != PICKLE_TENSOR)
        return err_set(e, "%s: expected an image tensor, found a %s", what, pickle_type_name(v ? v->type : PICKLE_NONE));
    const Tensor *t = v->tensor;
    const DatasetInfo *info = o->info;
    char sh[96];
    int64_t n, c, h, w;
    if (t->ndim == 4) n = t->shape[0], c = t->shape[1], h = t->shape[2], w = t->shape[3];
    else if (t->ndim == 3 && info && info->c == 1) n = t->shape[0], c = 1, h = t->shape[1], w = t->shape[2];
    else return err_set(e, "%s: images must be (n, c, h, w), got %s", what, tensor_shape_str(t, sh, sizeof(sh)));
    if (n <= 0 || n > (1 << 26) || c <= 0 || c > 4 || h <= 0 || w <= 0 || h > 4096 || w > 4096)
        return err_set(e, "%s: implausible image tensor %s", what, tensor_shape_str(t, sh, sizeof(sh)));
    if (info && (c != info->c || h != info->h || w != info->w))
        return err_set(e, "%s: images are %s but %s images are (%d, %d, %d)", what, tensor_shape_str(t, sh, sizeof(sh)),
                       info->name, info->c, info->h, info->w);
    int is_u8 = t->dtype == DTYPE_U8;
    if (!is_u8 && t->dtype != DTYPE_F32 && t->dtype != DTYPE_F64 && t->dtype != DTYPE_F16 && t->dtype != DTYPE_BF16)
        return err_set(e, "%s: images have dtype %s; expected a float tensor (or uint8 pixels)", what,
                       dtype_name(t->dtype));
    float *x = tensor_to_f32(t, e);
    if (!x) return err_wrap(e, "%s", what);
    size_t plane = (size_t)h * w, D = plane * c;
    for (size_t i = 0; i < (size_t)n * D; i++)
        if (!isfinite(x[i])) {
            xfree(x);
            return err_set(e, "%s: image %zu has a non-finite value", what, i / D);
        }
    if (is_u8 || o->pixels) {
        if (!info) {
            xfree(x);
            return err_set(e, "%s: pixel images need the dataset's mean/std", what);
        }
        // torchvision's ToTensor + Normalize in float32
        for (int64_t i = 0; i < n; i++)
            for (int64_t ch = 0; ch < c; ch++) {
                float *q = x + (size_t)i * D + (size_t)ch * plane;
                for (size_t j = 0; j < plane; j++) {
                    float v01 = is_u8 ? q[j] / 255.0f : q[j];
                    q[j] = (v01 - info->mean[ch]) / info->std[ch];
                }
            }
    }
    p->x = x;
    p->n = (int)n, p->c = (int)c, p->h = (int)h, p->w = (int)w;
    p->stored_normalised = !is_u8 && !o->pixels;
    return 0;
}

static int take_labels(Pool *p, const PickleValue *v, int K, const char *what, Err *e) {
    if (!v || v->type != PICKLE_TENSOR)
        return err_set(e, "%s: expected a label tensor, found a %s", what, pickle_type_name(v ? v->type : PICKLE_NONE));
    const Tensor *t = v->tensor;
    char sh[96];
    int is_float = t->dtype == DTYPE_F32 || t->dtype == DTYPE_F64 || t->dtype == DTYPE_F16 || t->dtype == DTYPE_BF16;
    p->y = xmalloc(sizeof(int) * (size_t)p->n);
    if (!p->y) return err_set(e, "out of memory");
    if (t->ndim == 2 && is_float) { // soft labels
        if (t->shape[0] != p->n || t->shape[1] != K)
            return err_set(e, "%s: soft labels are %s, expected (%d, %d)", what, tensor_shape_str(t, sh, sizeof(sh)), p->n, K);
        p->soft = tensor_to_f32(t, e);
        if (!p->soft) return err_wrap(e, "%s", what);
        for (int i = 0; i < p->n; i++) {
            const float *r = p->soft + (size_t)i * K;
            int best = 0;
            for (int k = 0; k < K; k++) {
                if (!isfinite(r[k])) return err_set(e, "%s: soft label %d has a non-finite value", what, i);
                if (r[k] > r[best]) best = k;
            }
            p->y[i] = best;
        }
        return 0;
    }
    if (t->ndim != 1 || t->shape[0] != p->n)
        return err_set(e, "%s: labels are %s, expected (%d) class indices or (%d, %d) soft labels", what,
                       tensor_shape_str(t, sh, sizeof(sh)), p->n, p->n, K);
    if (t->dtype == DTYPE_BOOL) return err_set(e, "%s: labels are bool", what);
    if (is_float) {
        float *f = tensor_to_f32(t, e);
        if (!f) return err_wrap(e, "%s", what);
        for (int i = 0; i < p->n; i++) {
            if (f[i] != floorf(f[i]) || f[i] < 0 || f[i] >= K) {
                float bad = f[i];
                xfree(f);
                return err_set(e, "%s: label %d is %g, not a class index in [0, %d)", what, i, bad, K);
            }
            p->y[i] = (int)f[i];
        }
        xfree(f);
        return 0;
    }
    int64_t *l = tensor_to_i64(t, e);
    if (!l) return err_wrap(e, "%s", what);
    for (int i = 0; i < p->n; i++) {
        if (l[i] < 0 || l[i] >= K) {
            int64_t bad = l[i];
            xfree(l);
            return err_set(e, "%s: label %d is %lld, outside [0, %d)", what, i, (long long)bad, K);
        }
        p->y[i] = (int)l[i];
    }
    xfree(l);
    return 0;
}

static int take_pair(Pool *p, const PickleValue *im, const PickleValue *lab, const PoolOptions *o, const char *what,
                     Err *e) {
    if (take_images(p, im, o, what, e)) return -1;
    return take_labels(p, lab, p->n_classes, what, e);
}

static int is_tensor(const PickleValue *v) { return v && v->type == PICKLE_TENSOR; }
static int is_seq(const PickleValue *v) { return v && (v->type == PICKLE_LIST || v->type == PICKLE_TUPLE); }

// ----------------------------------------------------------------------------
// the formats

static int load_res(Pool *p, const PickleValue *data, const PoolOptions *o, const char *path, Err *e) {
    if (!is_seq(data)) return err_set(e, "%s: 'data' is a %s, expected a list of [images, labels]", path, pickle_type_name(data->type));
    size_t n = pickle_len(data);
    if (n == 0) return err_set(e, "%s: 'data' is empty", path);
    // a bare [images, labels] under 'data' (one experiment, not wrapped in a list)
    if (is_tensor(pickle_item(data, 0))) {
        if (n < 2) return err_set(e, "%s: 'data' holds a tensor but no labels", path);
        p->n_exps = 1, p->exp = 0;
        return take_pair(p, pickle_item(data, 0), pickle_item(data, 1), o, path, e);
    }
    long want = o->exp < 0 ? (long)n + o->exp : o->exp;
    if (want < 0 || want >= (long)n)
        return err_set(e, "%s holds %zu experiments; --exp %d is out of range", path, n, o->exp);
    const PickleValue *ex = pickle_item(data, (size_t)want);
    if (!is_seq(ex) || pickle_len(ex) < 2)
        return err_set(e, "%s: experiment %ld is a %s, expected [images, labels]", path, want,
                       pickle_type_name(ex ? ex->type : PICKLE_NONE));
    p->n_exps = (int)n, p->exp = (int)want;
    char what[1100];
    snprintf(what, sizeof(what), "%s (experiment %ld)", path, want);
    return take_pair(p, pickle_item(ex, 0), pickle_item(ex, 1), o, what, e);
}

static int load_tensor_file(const char *path, PickleValue **root, const PickleValue **t, Err *e) {
    if (torch_load(path, root, e)) return -1;
    *t = *root;
    // a one-entry dict around the tensor is tolerated
    if ((*t)->type == PICKLE_DICT && pickle_len(*t) == 1) *t = (*t)->items[1];
    if (!is_tensor(*t)) return err_set(e, "%s holds a %s, not a tensor", path, pickle_type_name((*t)->type));
    return 0;
}

// MTT: prefix + images_best.pt, labels_best.pt, [lr_best.pt]
static int load_mtt(Pool *p, const char *prefix, const PoolOptions *o, Err *e) {
    char ip[1200], lp[1200], rp[1200];
    snprintf(ip, sizeof(ip), "%simages_best.pt", prefix);
    snprintf(lp, sizeof(lp), "%slabels_best.pt", prefix);
    snprintf(rp, sizeof(rp), "%slr_best.pt", prefix);
    if (!is_file(lp)) return err_set(e, "MTT set: %s has no labels_best.pt next to it", ip);
    PickleValue *ri = NULL, *rl = NULL;
    const PickleValue *ti, *tl;
    int rc = -1;
    if (load_tensor_file(ip, &ri, &ti, e) || load_tensor_file(lp, &rl, &tl, e)) goto done;
    if (take_pair(p, ti, tl, o, ip, e)) goto done;
    if (is_file(rp)) {
        PickleValue *rr = NULL;
        if (torch_load(rp, &rr, e)) goto done;
        double lr;
        Err e2;
        int bad = pickle_as_double(rr, &lr, &e2);
        pickle_free(rr);
        if (bad || !isfinite(lr) || lr <= 0) {
            err_set(e, "%s: expected a positive 0-dim learning rate", rp);
            goto done;
        }
        p->lr = lr;
    }
    snprintf(p->format, sizeof(p->format), "mtt");
    rc = 0;
done:
    pickle_free(ri);
    pickle_free(rl);
    return rc;
}

static const char *const image_keys[] = {"images", "image_syn", "x", "data", NULL};
static const char *const label_keys[] = {"labels", "label_syn", "y", "targets", NULL};

static int load_file(Pool *p, const char *path, const PoolOptions *o, Err *e) {
    PickleValue *root = NULL;
    if (torch_load(path, &root, e)) return -1;
    int rc = -1;
    const PickleValue *data = root->type == PICKLE_DICT ? pickle_dict_get(root, "data") : NULL;
    size_t len = strlen(path);
    int pkl = len > 4 && !strcmp(path + len - 4, ".pkl");
    if (data && !is_tensor(data)) {
        snprintf(p->format, sizeof(p->format), "res");
        rc = load_res(p, data, o, path, e);
    } else if (is_seq(root) && pickle_len(root) >= 2 && is_tensor(pickle_item(root, 0))) {
        snprintf(p->format, sizeof(p->format), pkl ? "pickle" : "pair");
        rc = take_pair(p, pickle_item(root, 0), pickle_item(root, 1), o, path, e);
    } else if (root->type == PICKLE_DICT) {
        const PickleValue *im = NULL, *lab = NULL;
        for (int k = 0; image_keys[k] && !im; k++) im = pickle_dict_get(root, image_keys[k]);
        for (int k = 0; label_keys[k] && !lab; k++) lab = pickle_dict_get(root, label_keys[k]);
        if (is_tensor(im) && is_tensor(lab)) {
            snprintf(p->format, sizeof(p->format), "pair");
            rc = take_pair(p, im, lab, o, path, e);
        } else {
            err_set(e, "%s: a dict without 'data' (res_*.pt) or an images/labels pair; not a distilled set", path);
        }
    } else if (is_tensor(root)) {
        err_set(e, "%s is a single tensor; for an MTT set give the folder (or prefix) holding images_best.pt and "
                   "labels_best.pt", path);
    } else {
        err_set(e, "%s holds a %s; expected a res_*.pt dict, an (images, labels) pair or an MTT folder", path,
                pickle_type_name(root->type));
    }
    pickle_free(root);
    return rc;
}

static int pool_load_any(Pool *p, const char *path, const PoolOptions *o, Err *e);

int pool_load(Pool *p, const char *path, const PoolOptions *o, Err *e) {
    memset(p, 0, sizeof(*p));
    if (!o->info) return err_set(e, "pool_load needs the dataset");
    int rc = pool_load_any(p, path, o, e);
    for (int c = 0; c < o->info->c && c < 3; c++) p->mean[c] = o->info->mean[c], p->std[c] = o->info->std[c];
    return rc;
}

static int pool_load_any(Pool *p, const char *path, const PoolOptions *o, Err *e) {
    p->n_classes = o->info->n_classes;
    p->exp = -1;
    char prefix[1100];
    size_t len = strlen(path);
    if (len + 32 > sizeof(prefix)) return err_set(e, "path too long: %s", path);
    const char *tail = "images_best.pt";
    size_t tl = strlen(tail);
    if (is_dir(path)) {
        snprintf(prefix, sizeof(prefix), "%s%s", path, path[len - 1] == '/' ? "" : "/");
        char probe[1200];
        snprintf(probe, sizeof(probe), "%s%s", prefix, tail);
        if (is_file(probe)) return load_mtt(p, prefix, o, e);
        return pool_load_imagefolder(p, path, o->info, e);
    }
    if (len >= tl && !strcmp(path + len - tl, tail)) {
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(len - tl), path);
        return load_mtt(p, prefix, o, e);
    }
    if (!is_file(path)) {
        // BEARD's MTT data_file is a prefix: data_file + 'images_best.pt'
        char probe[1200];
        snprintf(probe, sizeof(probe), "%s%s", path, tail);
        if (is_file(probe)) return load_mtt(p, path, o, e);
        return err_set(e, "no such file or folder: %s", path);
    }
    return load_file(p, path, o, e);
}

int pool_from_dataset(Pool *p, const Dataset *ds, const DatasetInfo *info, Err *e) {
    memset(p, 0, sizeof(*p));
    if (ds->n <= 0) return err_set(e, "the %s training set is empty", info->name);
    if (ds->c != info->c || ds->h != info->h || ds->w != info->w) return err_set(e, "dataset shape mismatch");
    snprintf(p->format, sizeof(p->format), "dataset");
    p->n = ds->n, p->c = ds->c, p->h = ds->h, p->w = ds->w, p->n_classes = info->n_classes;
    p->u8 = ds->images;
    for (int c = 0; c < info->c; c++) p->mean[c] = info->mean[c], p->std[c] = info->std[c];
    p->y = xmalloc(sizeof(int) * (size_t)ds->n);
    if (!p->y) return err_set(e, "out of memory");
    memcpy(p->y, ds->labels, sizeof(int) * (size_t)ds->n);
    p->exp = -1;
    return 0;
}

void pool_gather(const Pool *p, const int *idx, int n, float *x, int *y, float *soft) {
    size_t plane = (size_t)p->h * p->w, D = plane * p->c;
    for (int i = 0; i < n; i++) {
        int j = idx[i];
        if (p->x) {
            memcpy(x + (size_t)i * D, p->x + (size_t)j * D, sizeof(float) * D);
        } else {
            const uint8_t *src = p->u8 + (size_t)j * D;
            float *dst = x + (size_t)i * D;
            for (int c = 0; c < p->c; c++)
                for (size_t k = 0; k < plane; k++)
                    dst[c * plane + k] = ((float)src[c * plane + k] / 255.0f - p->mean[c]) / p->std[c];
        }
        if (y) y[i] = p->y[j];
        if (soft && p->soft)
            memcpy(soft + (size_t)i * p->n_classes, p->soft + (size_t)j * p->n_classes, sizeof(float) * p->n_classes);
    }
}

// ----------------------------------------------------------------------------
// 4-in-1 unpacking

int pool_unpack4(Pool *p, Err *e) {
    if (!p->x) return err_set(e, "the 4-in-1 unpacking applies to distilled sets, not to the real training set");
    if (p->h % 2 || p->w % 2) return err_set(e, "the 4-in-1 unpacking needs even image sizes, got %dx%d", p->h, p->w);
    if (p->n > (1 << 24)) return err_set(e, "too many images to unpack");
    int n = p->n, K = p->n_classes, hh = p->h / 2, hw = p->w / 2;
    size_t plane = (size_t)p->h * p->w, D = plane * p->c;
    float *x = xmalloc(sizeof(float) * D * 4 * n);
    int *y = xmalloc(sizeof(int) * 4 * (size_t)n);
    float *soft = p->soft ? xmalloc(sizeof(float) * 4 * (size_t)n * K) : NULL;
    if (!x || !y || (p->soft && !soft)) {
        xfree(x), xfree(y), xfree(soft);
        return err_set(e, "out of memory unpacking %d images", n);
    }
    // top-left, bottom-left, top-right, bottom-right: (row, column) offsets of the quadrant
    const int qy[4] = {0, 1, 0, 1}, qx[4] = {0, 0, 1, 1};
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < p->c; c++) {
                const float *src = p->x + (size_t)i * D + (size_t)c * plane + (size_t)qy[q] * hh * p->w + (size_t)qx[q] * hw;
                bilinear_forward(x + ((size_t)q * n + i) * D + (size_t)c * plane, src, hh, hw, p->w, p->h, p->w, 0.5f, 0.5f);
            }
            y[(size_t)q * n + i] = p->y[i];
            if (soft) memcpy(soft + ((size_t)q * n + i) * K, p->soft + (size_t)i * K, sizeof(float) * K);
        }
    xfree(p->x), xfree(p->y), xfree(p->soft);
    p->x = x, p->y = y, p->soft = soft;
    p->n = 4 * n;
    p->unpacked = 1;
    return 0;
}
