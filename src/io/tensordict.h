/*
 * tensordict.h: an ordered list of named tensors, i.e. a PyTorch state_dict. It is the
 * currency between checkpoint files (torch_pt.c, safetensors.c) and models (net.c).
 *
 * Entries keep their insertion order in items[0..n); a name index (core/hash.h) makes
 * tensordict_add and tensordict_get O(1) on average, so that a hostile file with a
 * million names costs a million steps, not a million squared.
 *
 * An entry either owns its tensor's bytes or borrows them (tensordict_add_borrowed) from
 * an owner the dict keeps alive (tensordict_keep): a checkpoint's state_dict borrows the
 * loaded file's storages, so that a storage behind many names is held once. Entries are
 * read-only to users of the dict (never write through items[i].t.data).
 */
#ifndef BEARD_TENSORDICT_H
#define BEARD_TENSORDICT_H

#include "../core/common.h"
#include "../core/hash.h"

typedef struct {
    char *name;
    Tensor t;
    int borrowed; // t.data belongs to one of the dict's keeps
} NamedTensor;

typedef struct {
    void *p;
    void (*free)(void *);
} TensorDictKeep;

typedef struct {
    int n, cap;
    NamedTensor *items;
    StrMap index; // name -> position in items
    TensorDictKeep *keeps;
    int n_keeps;
} TensorDict;

void tensordict_init(TensorDict *d);
void tensordict_free(TensorDict *d);
// takes ownership of t's data (t is zeroed); copies name. Replaces an existing entry.
int tensordict_add(TensorDict *d, const char *name, Tensor *t, Err *e);
// adds name -> a tensor whose bytes stay owned elsewhere (t is copied as a header only)
int tensordict_add_borrowed(TensorDict *d, const char *name, const Tensor *t, Err *e);
// d takes owner (the holder of borrowed bytes) and calls owner_free(owner) when freed;
// on failure owner_free(owner) is called at once
int tensordict_keep(TensorDict *d, void *owner, void (*owner_free)(void *), Err *e);
// NULL when absent
const Tensor *tensordict_get(const TensorDict *d, const char *name);
// the position of name in items, or -1
int tensordict_find(const TensorDict *d, const char *name);

#endif
