/*
 * tinyimagenet.c: Tiny ImageNet (200 classes, 64x64) as DC's get_dataset reads it: one
 * torch.save file `tinyimagenet.pt` holding a dict with 'classes', 'images_train',
 * 'labels_train', 'images_val', 'labels_val' (images (N, 3, 64, 64) uint8; the val split
 * serves as the test set). Float images are accepted only when every value is an
 * integer in [0, 255], so that the uint8 -> float conversion stays exact.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../io/torch_pt.h"
#include "dataset.h"

int tinyimagenet_load(Dataset *ds, const char *dir, int train, long limit, Err *e) {
    char path[1100];
    snprintf(path, sizeof(path), "%s/tinyimagenet.pt", dir);
    PickleValue *root;
    if (torch_load(path, &root, e)) return -1;
    int rc = -1;
    const PickleValue *im = pickle_dict_get(root, train ? "images_train" : "images_val");
    const PickleValue *lb = pickle_dict_get(root, train ? "labels_train" : "labels_val");
    if (!pickle_is(im, PICKLE_TENSOR) || !pickle_is(lb, PICKLE_TENSOR)) {
        err_set(e, "%s has no %s tensors", path, train ? "images_train/labels_train" : "images_val/labels_val");
        goto done;
    }
    const Tensor *ti = im->tensor, *tl = lb->tensor;
    if (ti->ndim != 4 || ti->shape[1] != ds->c || ti->shape[2] != ds->h || ti->shape[3] != ds->w ||
        tl->numel != (size_t)ti->shape[0]) {
        err_set(e, "%s: images must be (N, 3, 64, 64) with N labels", path);
        goto done;
    }
    size_t n = (size_t)ti->shape[0];
    if (limit > 0 && n > (size_t)limit) n = (size_t)limit;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    ds->images = malloc(n * per + 1);
    ds->labels = malloc(n * sizeof(int) + 1);
    int64_t *lab = tensor_to_i64(tl, e);
    float *f = ti->dtype == DTYPE_U8 ? NULL : tensor_to_f32(ti, e);
    if (!ds->images || !ds->labels || !lab || (ti->dtype != DTYPE_U8 && !f)) {
        xfree(lab);
        xfree(f);
        err_set(e, "out of memory loading %s", path);
        goto done;
    }
    if (f) {
        for (size_t k = 0; k < n * per; k++) {
            if (!(f[k] >= 0 && f[k] <= 255 && f[k] == floorf(f[k]))) {
                xfree(lab);
                xfree(f);
                err_set(e, "%s: images are not integers in [0, 255]", path);
                goto done;
            }
            ds->images[k] = (uint8_t)f[k];
        }
    } else {
        memcpy(ds->images, ti->data, n * per);
    }
    for (size_t k = 0; k < n; k++) ds->labels[k] = lab[k] < 0 || lab[k] > 1 << 20 ? -1 : (int)lab[k];
    ds->n = (int)n;
    xfree(lab);
    xfree(f);
    const PickleValue *cl = pickle_dict_get(root, "classes");
    if (pickle_len(cl) >= (size_t)ds->n_classes) {
        const char *names[200];
        int k = 0;
        for (; k < ds->n_classes; k++) {
            const PickleValue *s = pickle_item(cl, (size_t)k);
            if (!pickle_is(s, PICKLE_STR) && !pickle_is(s, PICKLE_BYTES)) break;
            names[k] = s->s;
        }
        if (k == ds->n_classes && dataset_set_class_names(ds, names, k, e)) goto done;
    }
    rc = 0;
done:
    pickle_free(root);
    return rc;
}
