/*
 * real.h: the scalar type of the nn kernels.
 *
 * The kernels are written once over `real`. The library builds them with real = float.
 * The gradient-check test builds the very same sources a second time with
 * -DNN_REAL_DOUBLE (real = double, dgemm), so that central differences are taken in
 * double precision on the code that actually runs, not on a separate reference.
 */
#ifndef BEARD_REAL_H
#define BEARD_REAL_H

#include <math.h>

#include "../core/parallel.h"

#ifdef NN_REAL_DOUBLE
typedef double real;
#define cblas_gemm cblas_dgemm
#define rexp exp
#define rsqrt sqrt
#define rerf erf
#else
typedef float real;
#define cblas_gemm cblas_sgemm
#define rexp expf
#define rsqrt sqrtf
#define rerf erff
#endif

static inline real *scratch_real(int slot, size_t n) {
    return (real *)scratch_f32(slot, (n * sizeof(real) + sizeof(float) - 1) / sizeof(float));
}

#endif
