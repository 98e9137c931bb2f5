/*
 * rng.h: beard's one random number generator, Philox4x32-10.
 *
 * Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) is a
 * counter-based generator: block i of stream s under seed k is a pure function
 * philox(k, counter = (i, s)). That is why beard's results do not depend on the thread
 * count: work item j draws from its own stream (e.g. stream = sample index) instead of
 * sharing a sequential state. The same seed always gives the same numbers, on every
 * machine, because only 32-bit integer arithmetic is involved.
 *
 * Conversions: uniform floats take the top 24 bits (float) or 53 bits (double) of the
 * output, so they lie in [0, 1). Normals use Box-Muller on two uniforms (the first
 * shifted into (0, 1] so that log never sees 0). rng_below is unbiased (rejection).
 *
 * This is not PyTorch's generator, and it does not try to be: beard reproduces PyTorch
 * in distribution, not stream for stream.
 */
#ifndef BEARD_RNG_H
#define BEARD_RNG_H

#include <stdint.h>

typedef struct {
    uint32_t key[2];
    uint64_t stream; // upper 64 bits of the counter
    uint64_t block;  // lower 64 bits of the counter
    uint32_t buf[4];
    int idx; // next unused word in buf (4 = empty)
    int has_spare;
    double spare;
} Rng;

// the raw block function: out = philox4x32_10(counter, key)
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

void rng_init(Rng *r, uint64_t seed, uint64_t stream);
uint32_t rng_u32(Rng *r);
uint64_t rng_u64(Rng *r);
float rng_uniform(Rng *r);     // [0, 1)
double rng_uniform_d(Rng *r);  // [0, 1)
double rng_normal(Rng *r);     // N(0, 1)
uint32_t rng_below(Rng *r, uint32_t n); // uniform in [0, n), n > 0
// Fisher-Yates permutation of 0..n-1
void rng_permutation(Rng *r, int *perm, int n);

#endif
