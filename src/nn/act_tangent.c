/*
 * act_tangent.c: tangents of the elementwise activations (see tangent.h).
 *   t_out  = f'(x) t_x
 *   t_din += f''(x) t_x dout + f'(x) t_dout
 * with, for s = sigmoid(x), phi the standard normal density and Phi its CDF:
 *   ReLU, LeakyReLU   f' = 1 or slope (x > 0 decides, as in act_backward), f'' = 0
 *   Sigmoid           f' = s (1 - s),            f'' = s (1 - s) (1 - 2 s)
 *   SiLU (Swish)      f' = s (1 + x (1 - s)),    f'' = s (1 - s) (2 + x (1 - 2 s))
 *   GELU (erf)        f' = Phi + x phi,          f'' = phi (2 - x^2)
 * f'' = 0 at the kinks is what PyTorch's double backward uses too.
 */
#include <math.h>
#include <omp.h>

#include "tangent.h"

static inline real sigm(real x) { return (real)1 / ((real)1 + rexp(-x)); }

// f'(x) and f''(x)
static inline void derivs(real x, ActKind kind, real slope, real *d1, real *d2) {
    switch (kind) {
    case ACT_RELU: *d1 = x > 0 ? (real)1 : (real)0, *d2 = 0; return;
    case ACT_LEAKY_RELU: *d1 = x > 0 ? (real)1 : slope, *d2 = 0; return;
    case ACT_SIGMOID: {
        real s = sigm(x);
        *d1 = s * (1 - s);
        *d2 = s * (1 - s) * (1 - 2 * s);
        return;
    }
    case ACT_SILU: {
        real s = sigm(x);
        *d1 = s * (1 + x * (1 - s));
        *d2 = s * (1 - s) * (2 + x * (1 - 2 * s));
        return;
    }
    case ACT_GELU: {
        real cdf = (real)0.5 * (1 + rerf(x * (real)M_SQRT1_2));
        real pdf = rexp((real)-0.5 * x * x) * (real)0.3989422804014327;
        *d1 = cdf + x * pdf;
        *d2 = pdf * (2 - x * x);
        return;
    }
    default: *d1 = *d2 = 0; return;
    }
}

void act_forward_tangent(real *tout, const real *in, const real *tin, size_t n, ActKind kind, real slope) {
    long N = (long)n;
#pragma omp parallel for schedule(static) if (N > (1 << 16))
    for (long i = 0; i < N; i++) {
        real d1, d2;
        derivs(in[i], kind, slope, &d1, &d2);
        tout[i] = tin ? d1 * tin[i] : (real)0;
    }
}

void act_backward_tangent(real *tdin, const real *dout, const real *tdout, const real *in, const real *tin, size_t n,
                          ActKind kind, real slope) {
    long N = (long)n;
#pragma omp parallel for schedule(static) if (N > (1 << 16))
    for (long i = 0; i < N; i++) {
        real d1, d2, v = 0;
        derivs(in[i], kind, slope, &d1, &d2);
        if (tin) v += d2 * tin[i] * dout[i];
        if (tdout) v += d1 * tdout[i];
        tdin[i] += v;
    }
}
