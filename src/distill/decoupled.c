/*
 * decoupled.c: the table of the decoupled methods, their shared defaults, and the image-folder
 * output they release (see decoupled.h). Adding a method: one file defining a
 * DecoupledMethod, one line in `methods` below.
 */
#include "decoupled.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../data/pool.h"
#include "../io/file.h"

static const DecoupledMethod *methods[] = {
    &decoupled_sre2l, &decoupled_cda, &decoupled_scdd, &decoupled_gvbsm, &decoupled_delt,
};

const DecoupledMethod *decoupled_method(int i) {
    return i >= 0 && i < (int)(sizeof(methods) / sizeof(methods[0])) ? methods[i] : NULL;
}

// names as the papers spell them, with or without the hyphen, any case
static int name_eq(const char *a, const char *b) {
    for (;; a++, b++) {
        while (*a == '-' || *a == '_') a++;
        while (*b == '-' || *b == '_') b++;
        if (!*a || !*b) return !*a && !*b;
        if ((*a | 32) != (*b | 32)) return 0;
    }
}

const DecoupledMethod *decoupled_find(const char *name) {
    for (int i = 0; decoupled_method(i); i++)
        if (name_eq(name, methods[i]->name)) return methods[i];
    return NULL;
}

void decoupled_args_default(DecoupledArgs *a) {
    memset(a, 0, sizeof(*a));
    a->ipc = 10;
    a->min_iterations = -1;
    a->stat_batch = 64;
    a->log_every = 100;
}

int decoupled_out_init(DecoupledOut *o, int n_classes, int ipc, size_t D, Err *e) {
    memset(o, 0, sizeof(*o));
    size_t n = (size_t)n_classes * ipc;
    o->x = xcalloc(sizeof(float) * n * D);
    o->y = calloc(n ? n : 1, sizeof(int));
    if (!o->x || !o->y) {
        decoupled_out_free(o);
        return err_set(e, "out of memory for %zu recovered images", n);
    }
    o->n = (int)n, o->ipc = ipc, o->n_classes = n_classes;
    return 0;
}

void decoupled_out_free(DecoupledOut *o) {
    xfree(o->x);
    free(o->y);
    memset(o, 0, sizeof(*o));
}

static int mkdir_p(const char *dir, Err *e) {
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0777) && errno != EEXIST) return err_set(e, "cannot create folder %s", tmp);
            *p = '/';
        }
    if (mkdir(tmp, 0777) && errno != EEXIST) return err_set(e, "cannot create folder %s", tmp);
    return 0;
}

int decoupled_write_imagefolder(const char *dir, const DecoupledOut *o, int C, int H, int W, const float *mean,
                                const float *std, const char *ext, Err *e) {
    int png = !strcasecmp(ext, "png");
    if (!png && strcasecmp(ext, "jpg")) return err_set(e, "image format must be jpg or png, not '%s'", ext);
    if (C != 1 && C != 3) return err_set(e, "%d-channel images cannot be saved as %s", C, ext);
    if (mkdir_p(dir, e)) return -1;
    size_t plane = (size_t)H * W, D = plane * C;
    uint8_t *px = malloc(D);
    if (!px) return err_set(e, "out of memory");
    int rc = 0;
    for (int c = 0; c < o->n_classes && !rc; c++) {
        char sub[1200];
        snprintf(sub, sizeof(sub), "%s/new%03d", dir, c);
        if (mkdir_p(sub, e)) {
            rc = -1;
            break;
        }
        for (int i = 0; i < o->ipc && !rc; i++) {
            const float *x = o->x + ((size_t)c * o->ipc + i) * D;
            for (int ch = 0; ch < C; ch++)
                for (size_t k = 0; k < plane; k++) {
                    float v = x[ch * plane + k] * std[ch] + mean[ch]; // denormalize_cifar: torch float math
                    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                    px[k * C + ch] = (uint8_t)(v * 255.0f); // astype(uint8) truncates
                }
            char path[1300];
            snprintf(path, sizeof(path), "%s/class%03d_id%03d.%s", sub, c, i, png ? "png" : "jpg");
            rc = image_write(path, px, W, H, C, png ? "png" : "jpg", e);
            if (rc) err_wrap(e, "%s", path);
        }
    }
    free(px);
    return rc ? -1 : 0;
}

typedef enum { P_INT, P_FLOAT, P_STR } ParamType;
typedef struct {
    const char *name;
    ParamType type;
    size_t off;
} ParamDef;

#define PI(n, f) {n, P_INT, offsetof(DecoupledArgs, f)}
#define PF(n, f) {n, P_FLOAT, offsetof(DecoupledArgs, f)}
static const ParamDef param_defs[] = {
    PI("iteration", iteration), PI("batch_size", batch_size), PI("jitter", jitter), PF("lr", lr), PF("r_bn", r_bn),
    PF("first_bn_multiplier", first_bn_multiplier), PF("first_multiplier", first_bn_multiplier),
    {"easy2hard_mode", P_STR, offsetof(DecoupledArgs, easy2hard_mode)}, PF("milestone", milestone),
    PI("round_iterations", round_iterations), PI("min_iterations", min_iterations),
    PI("ranking_imagenet_norm", ranking_imagenet_norm), PF("r_loss", r_loss), PF("nuc_norm", nuc_norm), PF("tau", tau),
    PF("training_momentum", training_momentum), PF("drop_rate", drop_rate), PI("stat_batch", stat_batch),
    PI("verifier_every", verifier_every), PI("fix_first_grad", fix_first_grad),
};

static void canon(const char *in, char *out, size_t n) {
    size_t k = 0;
    for (; *in && k + 1 < n; in++) out[k++] = *in == '-' ? '_' : (char)(*in | 32);
    out[k] = 0;
}

int decoupled_set_param(const DecoupledMethod *m, DecoupledArgs *a, const char *name, const char *value) {
    char nm[64];
    canon(name, nm, sizeof(nm));
    // only the method's own parameters
    const char *p = m->params;
    size_t L = strlen(nm);
    int found = 0;
    while (p && *p && !found) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        found = len == L && !strncmp(p, nm, L);
        p = sp ? sp + 1 : NULL;
    }
    if (!found) return -1;
    for (size_t i = 0; i < sizeof(param_defs) / sizeof(param_defs[0]); i++) {
        if (strcmp(param_defs[i].name, nm)) continue;
        char *base = (char *)a + param_defs[i].off, *end;
        if (param_defs[i].type == P_STR) {
            if (strlen(value) >= 8) return -2;
            snprintf(base, 8, "%s", value);
            return 0;
        }
        double v;
        if (parse_number(value, &v) || !isfinite(v)) return -2;
        if (param_defs[i].type == P_INT) {
            long l = strtol(value, &end, 10);
            if (*end || l < -1000000000L || l > 1000000000L) return -2;
            *(int *)base = (int)l;
        } else {
            *(float *)base = (float)v;
        }
        return 0;
    }
    return -1;
}
