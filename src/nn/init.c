/*
 * init.c: parameter initialisation, equal in distribution to PyTorch's defaults
 * (torch.nn.Conv2d/Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) on the weight,
 * which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias; norm layers
 * start at gamma = 1, beta = 0). The random stream is beard's Philox, not PyTorch's.
 */
#include "nn.h"

void init_uniform(real *w, size_t n, real bound, Rng *rng) {
    for (size_t i = 0; i < n; i++) w[i] = (2.0f * rng_uniform(rng) - 1.0f) * bound;
}

void init_fill(real *w, size_t n, real value) {
    for (size_t i = 0; i < n; i++) w[i] = value;
}
