/*
 * tensordict.c: see tensordict.h.
 */
#include "tensordict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tensordict_init(TensorDict *d) { memset(d, 0, sizeof(*d)); }

void tensordict_free(TensorDict *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].name);
        if (!d->items[i].borrowed) tensor_free(&d->items[i].t);
    }
    free(d->items);
    strmap_free(&d->index);
    for (int i = 0; i < d->n_keeps; i++) d->keeps[i].free(d->keeps[i].p);
    free(d->keeps);
    memset(d, 0, sizeof(*d));
}

int tensordict_find(const TensorDict *d, const char *name) { return strmap_get(&d->index, name); }

static int add_entry(TensorDict *d, const char *name, const Tensor *t, int borrowed, Err *e) {
    int at = tensordict_find(d, name);
    if (at >= 0) {
        if (!d->items[at].borrowed) tensor_free(&d->items[at].t);
        d->items[at].t = *t;
        d->items[at].borrowed = borrowed;
        return 0;
    }
    if (d->n == d->cap) {
        if (d->cap > INT32_MAX / 2) return err_set(e, "too many tensors");
        int cap = d->cap ? d->cap * 2 : 16;
        NamedTensor *p = realloc(d->items, sizeof(NamedTensor) * (size_t)cap);
        if (!p) return err_set(e, "out of memory");
        d->items = p;
        d->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) return err_set(e, "out of memory");
    if (strmap_put(&d->index, name, d->n, e)) {
        free(nm);
        return -1;
    }
    d->items[d->n].name = nm;
    d->items[d->n].t = *t;
    d->items[d->n].borrowed = borrowed;
    d->n++;
    return 0;
}

int tensordict_add(TensorDict *d, const char *name, Tensor *t, Err *e) {
    if (add_entry(d, name, t, 0, e)) return -1;
    memset(t, 0, sizeof(*t));
    return 0;
}

int tensordict_add_borrowed(TensorDict *d, const char *name, const Tensor *t, Err *e) {
    return add_entry(d, name, t, 1, e);
}

int tensordict_keep(TensorDict *d, void *owner, void (*owner_free)(void *), Err *e) {
    TensorDictKeep *k = realloc(d->keeps, sizeof(*k) * (size_t)(d->n_keeps + 1));
    if (!k) {
        owner_free(owner);
        return err_set(e, "out of memory");
    }
    d->keeps = k;
    d->keeps[d->n_keeps++] = (TensorDictKeep){owner, owner_free};
    return 0;
}

const Tensor *tensordict_get(const TensorDict *d, const char *name) {
    int i = tensordict_find(d, name);
    return i >= 0 ? &d->items[i].t : NULL;
}
