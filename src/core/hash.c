/*
 * hash.c: see hash.h.
 */
#include "hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void strmap_init(StrMap *m) { memset(m, 0, sizeof(*m)); }

void strmap_free(StrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// the slot holding key, or the empty slot where it would go (cap > 0)
static size_t slot_of(char *const *keys, size_t cap, const char *key) {
    size_t mask = cap - 1, s = (size_t)str_hash(key) & mask;
    while (keys[s] && strcmp(keys[s], key) != 0) s = (s + 1) & mask;
    return s;
}

int strmap_get(const StrMap *m, const char *key) {
    if (!m->cap) return -1;
    size_t s = slot_of(m->keys, m->cap, key);
    return m->keys[s] ? m->vals[s] : -1;
}

int strmap_put(StrMap *m, const char *key, int val, Err *e) {
    if (m->cap) {
        size_t s = slot_of(m->keys, m->cap, key);
        if (m->keys[s]) {
            m->vals[s] = val;
            return 0;
        }
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof(char *) / 2) return err_set(e, "too many names");
        char **keys = calloc(cap, sizeof(*keys));
        int *vals = calloc(cap, sizeof(*vals));
        if (!keys || !vals) {
            free(keys), free(vals);
            return err_set(e, "out of memory");
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t s = slot_of(keys, cap, m->keys[i]);
            keys[s] = m->keys[i];
            vals[s] = m->vals[i];
        }
        free(m->keys), free(m->vals);
        m->keys = keys, m->vals = vals, m->cap = cap;
    }
    size_t s = slot_of(m->keys, m->cap, key);
    if (!(m->keys[s] = strdup(key))) return err_set(e, "out of memory");
    m->vals[s] = val;
    m->n++;
    return 0;
}

void ptrset_init(PtrSet *s) { memset(s, 0, sizeof(*s)); }

void ptrset_free(PtrSet *s) {
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static size_t ptr_slot(const void *p, size_t cap) { return (size_t)(((uintptr_t)p >> 4) * 0x9e3779b97f4a7c15ull) & (cap - 1); }

int ptrset_has(const PtrSet *s, const void *p) {
    if (!s->cap) return 0;
    for (size_t j = ptr_slot(p, s->cap); s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == p) return 1;
    return 0;
}

int ptrset_add(PtrSet *s, const void *p) {
    if (ptrset_has(s, p)) return 1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        const void **slots = calloc(cap, sizeof(*slots));
        if (!slots) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i]) continue;
            size_t j = ptr_slot(s->slots[i], cap);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots, s->cap = cap;
    }
    size_t j = ptr_slot(p, s->cap);
    while (s->slots[j]) j = (j + 1) & (s->cap - 1);
    s->slots[j] = p;
    s->n++;
    return 0;
}
