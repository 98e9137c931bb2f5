/*
 * tensordict.h: an ordered list of named tensors, i.e. a PyTorch state_dict. It is the
 * currency between checkpoint files (torch_pt.c, safetensors.c) and models (net.c).
 */
#ifndef BEARD_TENSORDICT_H
#define BEARD_TENSORDICT_H

#include "../core/common.h"

typedef struct {
    char *name;
    Tensor t;
} NamedTensor;

typedef struct {
    int n, cap;
    NamedTensor *items;
} TensorDict;

void tensordict_init(TensorDict *d);
void tensordict_free(TensorDict *d);
// takes ownership of t's data (t is zeroed); copies name. Replaces an existing entry.
int tensordict_add(TensorDict *d, const char *name, Tensor *t, Err *e);
// NULL when absent
const Tensor *tensordict_get(const TensorDict *d, const char *name);

#endif
