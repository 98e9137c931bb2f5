/*
 * act.c: elementwise activations. GELU is the exact erf form (PyTorch's default,
 * approximate='none'); SiLU is DC's Swish, x * sigmoid(x).
 */
#include <math.h>
#include <omp.h>

#include "nn.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void act_forward(float *out, const float *in, size_t n, ActKind kind, float slope) {
    long N = (long)n;
    switch (kind) {
    case ACT_RELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case ACT_LEAKY_RELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] > 0.0f ? in[i] : in[i] * slope;
        break;
    case ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = sigmoidf(in[i]);
        break;
    case ACT_SILU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = in[i] * sigmoidf(in[i]);
        break;
    case ACT_GELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) out[i] = 0.5f * in[i] * (1.0f + erff(in[i] * (float)M_SQRT1_2));
        break;
    default: break;
    }
}

void act_backward(float *din, const float *dout, const float *in, size_t n, ActKind kind, float slope) {
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
            float s = sigmoidf(in[i]);
            din[i] += dout[i] * s * (1.0f - s);
        }
        break;
    case ACT_SILU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) {
            float s = sigmoidf(in[i]);
            din[i] += dout[i] * s * (1.0f + in[i] * (1.0f - s));
        }
        break;
    case ACT_GELU:
#pragma omp parallel for schedule(static) if (N > (1 << 16))
        for (long i = 0; i < N; i++) {
            float x = in[i];
            float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
            float pdf = expf(-0.5f * x * x) * 0.3989422804014327f;
            din[i] += dout[i] * (cdf + x * pdf);
        }
        break;
    default: break;
    }
}
