/*
 * checkpoint.c: see checkpoint.h.
 */
#include "checkpoint.h"

#include <string.h>

#include "../io/safetensors.h"
#include "../io/torch_pt.h"
#include "convnet.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int checkpoint_load(Net *net, const char *path, const char *arch, int channel, int n_classes, int im_h, int im_w,
                    Err *e) {
    memset(net, 0, sizeof(*net));
    if (model_create(net, arch, channel, n_classes, im_h, im_w, e)) return -1;
    TensorDict sd;
    tensordict_init(&sd);
    int rc = ends_with(path, ".safetensors") ? safetensors_load(path, &sd, e) : torch_load_state_dict(path, &sd, e);
    if (rc == 0) rc = net_load_state_dict(net, &sd, 1, e);
    tensordict_free(&sd);
    if (rc) {
        err_wrap(e, "%s", path);
        net_free(net);
    }
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
