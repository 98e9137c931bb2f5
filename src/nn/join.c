/*
 * join.c: see join.h. The residual sum is elementwise and its backward hands the same
 * gradient to both inputs, as autograd does for torch's `+`; concat, slice and shuffle
 * are copies whose backward adds the gradient back to where each value came from.
 */
#include "join.h"

#include <string.h>

#include "../core/rng.h"

void add_forward(real *out, const real *a, const real *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void add_backward(real *da, real *db, const real *dout, size_t n) {
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}

void concat_forward(real *out, const real *a, const real *b, int B, int Ca, int Cb, int HW) {
    size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    for (int s = 0; s < B; s++) {
        memcpy(out + s * (na + nb), a + s * na, sizeof(real) * na);
        memcpy(out + s * (na + nb) + na, b + s * nb, sizeof(real) * nb);
    }
}

void concat_backward(real *da, real *db, const real *dout, int B, int Ca, int Cb, int HW) {
    size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    for (int s = 0; s < B; s++) {
        const real *g = dout + s * (na + nb);
        if (da)
            for (size_t i = 0; i < na; i++) da[s * na + i] += g[i];
        if (db)
            for (size_t i = 0; i < nb; i++) db[s * nb + i] += g[na + i];
    }
}

void slice_forward(real *out, const real *in, int B, int C, int c0, int n, int HW) {
    for (int s = 0; s < B; s++)
        memcpy(out + (size_t)s * n * HW, in + ((size_t)s * C + c0) * HW, sizeof(real) * (size_t)n * HW);
}

void slice_backward(real *din, const real *dout, int B, int C, int c0, int n, int HW) {
    size_t m = (size_t)n * HW;
    for (int s = 0; s < B; s++) {
        real *d = din + ((size_t)s * C + c0) * HW;
        const real *g = dout + s * m;
        for (size_t i = 0; i < m; i++) d[i] += g[i];
    }
}

void shuffle_forward(real *out, const real *in, int B, int C, int g, int HW) {
    int cg = C / g;
    for (int s = 0; s < B; s++)
        for (int i = 0; i < g; i++)
            for (int j = 0; j < cg; j++)
                memcpy(out + ((size_t)s * C + j * g + i) * HW, in + ((size_t)s * C + i * cg + j) * HW,
                       sizeof(real) * (size_t)HW);
}

void shuffle_backward(real *din, const real *dout, int B, int C, int g, int HW) {
    int cg = C / g;
    for (int s = 0; s < B; s++)
        for (int i = 0; i < g; i++)
            for (int j = 0; j < cg; j++) {
                real *d = din + ((size_t)s * C + i * cg + j) * HW;
                const real *o = dout + ((size_t)s * C + j * g + i) * HW;
                for (int k = 0; k < HW; k++) d[k] += o[k];
            }
}

void dropout_forward(real *out, real *mask, const real *in, size_t n, real p, uint64_t seed, uint64_t stream) {
    Rng r;
    rng_init(&r, seed, stream);
    real scale = p < 1 ? (real)1 / ((real)1 - p) : 0;
    for (size_t i = 0; i < n; i++) {
        mask[i] = rng_uniform(&r) >= (float)p ? scale : 0;
        out[i] = in[i] * mask[i];
    }
}

void dropout_backward(real *din, const real *dout, const real *mask, size_t n) {
    for (size_t i = 0; i < n; i++) din[i] += dout[i] * mask[i];
}
