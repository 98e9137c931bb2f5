/*
 * registry.c: the table of distillation methods. Adding a method is one file defining a
 * DistillMethodDef and one line here.
 */
#include <ctype.h>
#include <string.h>

#include "distill.h"

extern const DistillMethodDef distill_dm, distill_idm, distill_bacon;

static const DistillMethodDef *const methods[] = {
    &distill_dm,
    &distill_idm,
    &distill_bacon,
};

int distill_method_count(void) { return (int)(sizeof(methods) / sizeof(methods[0])); }
const DistillMethodDef *distill_method_get(int i) { return i >= 0 && i < distill_method_count() ? methods[i] : NULL; }

// case-insensitive, '-' and '_' alike
static int name_eq(const char *a, const char *b, size_t nb) {
    size_t i = 0;
    for (; a[i] && i < nb; i++) {
        char ca = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);
        char cb = b[i] == '-' ? '_' : (char)tolower((unsigned char)b[i]);
        if (ca != cb) return 0;
    }
    return a[i] == 0 && i == nb;
}

const DistillMethodDef *distill_method_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < distill_method_count(); i++) {
        const DistillMethodDef *d = methods[i];
        if (name_eq(name, d->name, strlen(d->name))) return d;
        const char *p = d->aliases;
        while (p && *p) {
            const char *c = strchr(p, ',');
            size_t len = c ? (size_t)(c - p) : strlen(p);
            if (name_eq(name, p, len)) return d;
            p = c ? c + 1 : NULL;
        }
    }
    return NULL;
}
