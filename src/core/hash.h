/*
 * hash.h: the two hash tables of the paths that hostile files drive (open addressing,
 * at most half full): StrMap, strings to ints (a state_dict's names, a checkpoint's
 * storage keys), and PtrSet, a set of pointers (the nodes a walk of a shared object
 * tree has already visited). Insertion and lookup are O(1) on average, so that a file
 * with a million names costs a million steps rather than a million squared.
 */
#ifndef BEARD_HASH_H
#define BEARD_HASH_H

#include <stddef.h>

#include "common.h"

typedef struct {
    char **keys; // owned copies; NULL = empty slot
    int *vals;
    size_t n, cap;
} StrMap;

void strmap_init(StrMap *m);
void strmap_free(StrMap *m);
// the value stored for key, or -1
int strmap_get(const StrMap *m, const char *key);
// sets key to val (val >= 0), replacing any value it had
int strmap_put(StrMap *m, const char *key, int val, Err *e);

typedef struct {
    const void **slots; // NULL = empty
    size_t n, cap;
} PtrSet;

void ptrset_init(PtrSet *s);
void ptrset_free(PtrSet *s);
// 1 if p was in the set already; 0 after adding it; -1 when out of memory
int ptrset_add(PtrSet *s, const void *p);
int ptrset_has(const PtrSet *s, const void *p);

#endif
