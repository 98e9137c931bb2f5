/*
 * registry.c: the table of distillation methods. Adding a method is one file defining a
 * DistillMethodDef and one line here.
 */
#include <string.h>

#include "distill.h"

extern const DistillMethodDef distill_dm, distill_idm, distill_bacon, distill_dc, distill_dc_dsa, distill_mtt;
extern const DistillMethodDef distill_sre2l, distill_cda, distill_scdd, distill_gvbsm, distill_delt;

static const DistillMethodDef *const methods[] = {
    &distill_dm,
    &distill_idm,
    &distill_bacon,
    &distill_dc,
    &distill_dc_dsa,
    &distill_mtt,
    &distill_sre2l,
    &distill_cda,
    &distill_scdd,
    &distill_gvbsm,
    &distill_delt,
};

int distill_method_count(void) { return (int)(sizeof(methods) / sizeof(methods[0])); }
const DistillMethodDef *distill_method_get(int i) { return i >= 0 && i < distill_method_count() ? methods[i] : NULL; }

const DistillMethodDef *distill_method_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < distill_method_count(); i++) {
        const DistillMethodDef *d = methods[i];
        if (distill_name_eq(name, d->name, strlen(d->name))) return d;
        const char *p = d->aliases;
        while (p && *p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            if (distill_name_eq(name, p, len)) return d;
            p = c ? c + 1 : NULL;
        }
    }
    return NULL;
}
