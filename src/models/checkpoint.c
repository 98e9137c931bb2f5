/*
 * checkpoint.c: see checkpoint.h.
 */
#include "checkpoint.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "../core/hash.h"
#include "../io/safetensors.h"
#include "../io/torch_pt.h"
#include "registry.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int checkpoint_check_weights(const TensorDict *sd, Err *e) {
    // names may share one tensor's bytes (tied weights; a hostile file puts one storage
    // behind thousands of names): each buffer is checked once
    StrMap seen; // "<data pointer>/<numel>" of the buffers checked
    strmap_init(&seen);
    int rc = 0;
    for (int i = 0; i < sd->n && !rc; i++) {
        const char *name = sd->items[i].name;
        const Tensor *t = &sd->items[i].t;
        size_t nl = strlen(name);
        if (nl >= 19 && !strcmp(name + nl - 19, "num_batches_tracked")) continue; // a counter, int64 in torch
        int is_float = t->dtype == DTYPE_F32 || t->dtype == DTYPE_F64 || t->dtype == DTYPE_F16 || t->dtype == DTYPE_BF16;
        if (!is_float) {
            rc = err_set(e, "'%s' is a %s tensor; weights are floating point (a checkpoint whose weights were cast "
                            "to integers would load as a different model)",
                         name, dtype_name(t->dtype));
            break;
        }
        char key[64];
        snprintf(key, sizeof(key), "%p/%zu", t->data, t->numel);
        if (!t->numel || strmap_get(&seen, key) >= 0) continue;
        if (strmap_put(&seen, key, 1, e)) {
            rc = -1;
            break;
        }
        const float *v = t->dtype == DTYPE_F32 ? t->data : NULL;
        float *conv = v ? NULL : tensor_to_f32(t, e);
        if (!v && !conv) {
            rc = -1;
            break;
        }
        if (!v) v = conv;
        size_t nan = 0, inf = 0;
        for (size_t k = 0; k < t->numel; k++) {
            if (isnan(v[k])) nan++;
            else if (isinf(v[k])) inf++;
        }
        xfree(conv);
        if (nan || inf)
            rc = err_set(e, "'%s' holds %zu NaN and %zu infinite values of %zu: a model with non-finite weights gives "
                            "meaningless results (NaN logits look robust to every attack)",
                         name, nan, inf, t->numel);
    }
    strmap_free(&seen);
    return rc;
}

int checkpoint_load(Net *net, const char *path, const char *arch, int channel, int n_classes, int im_h, int im_w,
                    Err *e) {
    memset(net, 0, sizeof(*net));
    TensorDict sd;
    tensordict_init(&sd);
    // the loaders name the file in their messages; the checks after them do not
    int rc = ends_with(path, ".safetensors") ? safetensors_load(path, &sd, e) : torch_load_state_dict(path, &sd, e);
    char inferred[64];
    if (rc == 0 && (!arch || !*arch || !strcasecmp(arch, "auto"))) {
        rc = model_infer_arch(&sd, channel, n_classes, im_h, im_w, inferred, sizeof(inferred), e);
        arch = inferred;
    }
    if (rc == 0) {
        rc = model_create(net, arch, channel, n_classes, im_h, im_w, e);
        if (rc == 0 && (rc = checkpoint_check_weights(&sd, e))) net_free(net);
        else if (rc == 0 && (rc = net_load_state_dict(net, &sd, 1, e))) {
            net_free(net);
            Err e2; // a hint: the architecture the keys do fit
            char fit[64];
            if (e && model_infer_arch(&sd, channel, n_classes, im_h, im_w, fit, sizeof(fit), &e2) == 0) {
                char msg[ERR_MAX];
                snprintf(msg, sizeof(msg), "%s", e->msg);
                err_set(e, "%s; its keys fit %s (--arch %s, or --arch auto)", msg, fit, fit);
            }
        }
    }
    tensordict_free(&sd);
    if (rc) err_wrap(e, "%s", path);
    return rc;
}

int checkpoint_save(const Net *net, const char *path, Err *e) {
    TensorDict sd;
    tensordict_init(&sd);
    int rc = net_state_dict(net, &sd, e);
    if (rc == 0)
        rc = ends_with(path, ".safetensors") ? safetensors_save(path, &sd, e) : torch_save_state_dict(path, &sd, e);
    tensordict_free(&sd);
    return rc;
}
