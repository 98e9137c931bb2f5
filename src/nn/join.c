/*
 * join.c: see join.h. The residual sum is elementwise; its backward hands the same
 * gradient to both inputs, as autograd does for torch's `+`.
 */
#include "join.h"

void add_forward(real *out, const real *a, const real *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void add_backward(real *da, real *db, const real *dout, size_t n) {
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}
