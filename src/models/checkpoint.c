/*
 * checkpoint.c: see checkpoint.h.
 */
#include "checkpoint.h"

#include <string.h>
#include <strings.h>

#include "../io/safetensors.h"
#include "../io/torch_pt.h"
#include "registry.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int checkpoint_load(Net *net, const char *path, const char *arch, int channel, int n_classes, int im_h, int im_w,
                    Err *e) {
    memset(net, 0, sizeof(*net));
    TensorDict sd;
    tensordict_init(&sd);
    int rc = ends_with(path, ".safetensors") ? safetensors_load(path, &sd, e) : torch_load_state_dict(path, &sd, e);
    char inferred[64];
    if (rc == 0 && (!arch || !*arch || !strcasecmp(arch, "auto"))) {
        rc = model_infer_arch(&sd, channel, n_classes, im_h, im_w, inferred, sizeof(inferred), e);
        arch = inferred;
    }
    if (rc == 0) {
        rc = model_create(net, arch, channel, n_classes, im_h, im_w, e);
        if (rc == 0 && (rc = net_load_state_dict(net, &sd, 1, e))) {
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
