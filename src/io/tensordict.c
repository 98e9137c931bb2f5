/*
 * tensordict.c: see tensordict.h.
 */
#include "tensordict.h"

#include <stdlib.h>
#include <string.h>

void tensordict_init(TensorDict *d) { memset(d, 0, sizeof(*d)); }

void tensordict_free(TensorDict *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].name);
        tensor_free(&d->items[i].t);
    }
    free(d->items);
    memset(d, 0, sizeof(*d));
}

int tensordict_add(TensorDict *d, const char *name, Tensor *t, Err *e) {
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->items[i].name, name) == 0) {
            tensor_free(&d->items[i].t);
            d->items[i].t = *t;
            memset(t, 0, sizeof(*t));
            return 0;
        }
    }
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 16;
        NamedTensor *p = realloc(d->items, sizeof(NamedTensor) * (size_t)cap);
        if (!p) return err_set(e, "out of memory");
        d->items = p;
        d->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) return err_set(e, "out of memory");
    d->items[d->n].name = nm;
    d->items[d->n].t = *t;
    memset(t, 0, sizeof(*t));
    d->n++;
    return 0;
}

const Tensor *tensordict_get(const TensorDict *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0) return &d->items[i].t;
    return NULL;
}
