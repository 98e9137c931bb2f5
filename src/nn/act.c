/*
 * act.c: elementwise activations. GELU is the exact erf form (PyTorch's default,
 * approximate='none'); SiLU is DC's Swish, x * sigmoid(x); ReLU6 clamps to [0, 6].
 */
#include <math.h>
#include <omp.h>

#include "nn.h"

static inline real sigm(real x) { return (real)1 / ((real)1 + rexp(-x)); }

void act_forward(real *out, const real *in, size_t n, ActKind kind, real slope) {
    long N = (long)n;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = !(in[i] <= 0.0f) ? in[i] : 0.0f; // NaN stays NaN, as torch.relu
        break;
    case ACT_LEAKY_RELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] > 0.0f ? in[i] : in[i] * slope;
        break;
    case ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = sigm(in[i]);
        break;
    case ACT_SILU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] * sigm(in[i]);
        break;
    case ACT_GELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = 0.5f * in[i] * (1.0f + rerf(in[i] * (real)M_SQRT1_2));
        break;
    case ACT_RELU6:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] > 0.0f ? (in[i] < 6.0f ? in[i] : 6.0f) : 0.0f;
        break;
    default: break;
    }
}

void act_backward(real *din, const real *dout, const real *in, size_t n, ActKind kind, real slope) {
    long N = (long)n;
    switch (kind) {
    case ACT_RELU:
        // PyTorch's relu backward passes the gradient where the output is > 0
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) din[i] += in[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case ACT_LEAKY_RELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) din[i] += in[i] > 0.0f ? dout[i] : dout[i] * slope;
        break;
    case ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) {
            real s = sigm(in[i]);
            din[i] += dout[i] * s * (1.0f - s);
        }
        break;
    case ACT_SILU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) {
            real s = sigm(in[i]);
            din[i] += dout[i] * s * (1.0f + in[i] * (1.0f - s));
        }
        break;
    case ACT_GELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) {
            real x = in[i];
            real cdf = 0.5f * (1.0f + rerf(x * (real)M_SQRT1_2));
            real pdf = rexp((real)-0.5 * x * x) * (real)0.3989422804014327;
            din[i] += dout[i] * (cdf + x * pdf);
        }
        break;
    case ACT_RELU6:
        // PyTorch's hardtanh backward: the gradient passes strictly inside (0, 6)
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) din[i] += in[i] > 0.0f && in[i] < 6.0f ? dout[i] : 0.0f;
        break;
    default: break;
    }
}
