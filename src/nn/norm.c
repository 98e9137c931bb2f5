/*
 * norm.c: GroupNorm (and InstanceNorm as GroupNorm(C, C)), LayerNorm and BatchNorm2d.
 *
 * All three normalise x to xhat = (x - mean) * rstd with rstd = 1/sqrt(var + eps) and the
 * biased variance, then apply gamma * xhat + beta, exactly as PyTorch defines them. They
 * share one backward rule per normalisation group of N values:
 *   dxhat = dy * gamma
 *   dx    = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
 * which is computed from two per-channel sums, s1 = sum(dy) and s2 = sum(dy * x).
 *
 * Sums use 16 real lanes (so that the compiler vectorises them without -ffast-math)
 * combined in double, and the variance is the two-pass sum of squared deviations.
 *
 * Per-sample parameter-gradient contributions (dgamma, dbeta of Group/LayerNorm) are
 * written to a (B, C) buffer and reduced in sample order, so they do not depend on the
 * thread count.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "nn.h"

#define LANES 16

static double sum_f(const real *x, size_t n) {
    real acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += x[i];
    return s;
}

static double sumsq_dev(const real *x, size_t n, real mean) {
    real acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            real d = x[i + j] - mean;
            acc[j] += d * d;
        }
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) {
        double d = (double)x[i] - mean;
        s += d * d;
    }
    return s;
}

// sum of a * (x - mean): BatchNorm's backward sum, centred as PyTorch's is (the uncentred
// sum of a * x minus mean * sum(a) cancels badly when |mean| >> std)
static double dot_dev(const real *a, const real *x, size_t n, real mean) {
    real acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * (x[i + j] - mean);
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += (double)a[i] * (x[i] - mean);
    return s;
}

static double dot_f(const real *a, const real *b, size_t n) {
    real acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += a[i + j] * b[i + j];
    double s = 0.0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void affine_f(real *out, const real *in, size_t n, real a, real b) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] * a + b;
}

// ----------------------------------------------------------------------------
// GroupNorm

// groups [g0, g1) of one sample
static void groupnorm_sample_forward(real *out, real *mean, real *rstd, const real *in, const real *gamma,
                                     const real *beta, int C, int HW, int G, real eps, int g0, int g1) {
    int cpg = C / G;
    size_t N = (size_t)cpg * HW;
    for (int g = g0; g < g1; g++) {
        const real *x = in + (size_t)g * N;
        real m = (real)(sum_f(x, N) / (double)N);
        double var = sumsq_dev(x, N, m) / (double)N;
        real r = (real)(1.0 / sqrt(var + eps));
        mean[g] = m;
        rstd[g] = r;
        for (int c = g * cpg; c < (g + 1) * cpg; c++) {
            real a = gamma ? gamma[c] * r : r;
            real b = (beta ? beta[c] : 0.0f) - m * a;
            affine_f(out + (size_t)c * HW, in + (size_t)c * HW, (size_t)HW, a, b);
        }
    }
}

void groupnorm_forward(real *out, real *mean, real *rstd, const real *in, const real *gamma, const real *beta,
                       int B, int C, int HW, int G, real eps) {
    size_t sz = (size_t)C * HW;
    // (sample, group) pairs, each computed whole by one thread: a batch of one is shared by
    // the threads over its groups, with the same result
    long n = (long)B * G;
#pragma omp parallel for schedule(static) if (n > 1)
    for (long i = 0; i < n; i++) {
        int b = (int)(i / G), g = (int)(i % G);
        groupnorm_sample_forward(out + b * sz, mean + (size_t)b * G, rstd + (size_t)b * G, in + b * sz, gamma, beta,
                                 C, HW, G, eps, g, g + 1);
    }
}

// GroupNorm, then ReLU, then (pool) 2x2 average pooling, for forward-only passes: the
// statistics as groupnorm_forward computes them, then one pass that normalises, clips and
// pools, instead of three passes writing two full-size tensors. Every value is computed by
// the same float operations in the same order as the three layers (groupnorm's
// x * a + b, act_forward's x > 0 ? x : 0, avgpool's sum of the four in row order / 4), so
// the result is bit-identical to them (test_nn checks).
static void gn_relu_pool_group(real *out, const real *in, const real *gamma, const real *beta, int C, int H, int W,
                               int G, real eps, int pool, int g) {
    int cpg = C / G, HW = H * W;
    size_t N = (size_t)cpg * HW;
    const real *x = in + (size_t)g * N;
    real m = (real)(sum_f(x, N) / (double)N);
    double var = sumsq_dev(x, N, m) / (double)N;
    real r = (real)(1.0 / sqrt(var + eps));
    int Ho = H / 2, Wo = W / 2;
    for (int c = g * cpg; c < (g + 1) * cpg; c++) {
        real a = gamma ? gamma[c] * r : r;
        real b = (beta ? beta[c] : 0.0f) - m * a;
        const real *xc = in + (size_t)c * HW;
        if (!pool) {
            real *y = out + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                real v = xc[i] * a + b;
                y[i] = v > 0.0f ? v : 0.0f;
            }
            continue;
        }
        real *y = out + (size_t)c * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            const real *r0 = xc + (size_t)(2 * oh) * W, *r1 = r0 + W;
            real *yo = y + (size_t)oh * Wo;
            for (int ow = 0; ow < Wo; ow++) {
                real v00 = r0[2 * ow] * a + b, v01 = r0[2 * ow + 1] * a + b;
                real v10 = r1[2 * ow] * a + b, v11 = r1[2 * ow + 1] * a + b;
                v00 = v00 > 0.0f ? v00 : 0.0f, v01 = v01 > 0.0f ? v01 : 0.0f;
                v10 = v10 > 0.0f ? v10 : 0.0f, v11 = v11 > 0.0f ? v11 : 0.0f;
                yo[ow] = (v00 + v01 + v10 + v11) / (real)4;
            }
        }
    }
}

void groupnorm_relu_pool_forward(real *out, const real *in, const real *gamma, const real *beta, int B, int C, int H,
                                 int W, int G, real eps, int pool) {
    size_t isz = (size_t)C * H * W, osz = pool ? (size_t)C * (H / 2) * (W / 2) : isz;
    long n = (long)B * G; // (sample, group) pairs, as groupnorm_forward
#pragma omp parallel for schedule(static) if (n > 1)
    for (long i = 0; i < n; i++) {
        int b = (int)(i / G), g = (int)(i % G);
        gn_relu_pool_group(out + b * osz, in + b * isz, gamma, beta, C, H, W, G, eps, pool, g);
    }
}

// one group of cpg channels (every pointer at the group's first channel); pgamma/pbeta
// receive the group's contributions (overwritten), dx is added into
static void gn_group_backward(real *dx, real *pgamma, real *pbeta, const real *dy, const real *x, double m, double r,
                              const real *gamma, int cpg, int HW) {
    double N = (double)cpg * HW;
    double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0;
    for (int c = 0; c < cpg; c++) {
        const real *dyc = dy + (size_t)c * HW, *xc = x + (size_t)c * HW;
        double s1 = sum_f(dyc, (size_t)HW), s2 = dot_f(dyc, xc, (size_t)HW);
        double gxh = (s2 - m * s1) * r; // sum(dy * xhat) over the channel
        double gm = gamma ? gamma[c] : 1.0;
        sum_dxhat += gm * s1;
        sum_dxhat_xhat += gm * gxh;
        if (pgamma) pgamma[c] = (real)gxh;
        if (pbeta) pbeta[c] = (real)s1;
    }
    if (!dx) return;
    // dx = r*gm*dy - r*sum_dxhat/N - xhat*r*sum_dxhat_xhat/N, with xhat = (x - m) r
    double k2 = r * r * sum_dxhat_xhat / N;
    double k3 = -r * sum_dxhat / N + m * k2;
    for (int c = 0; c < cpg; c++) {
        real k1 = (real)(r * (gamma ? gamma[c] : 1.0));
        real a = (real)-k2, b = (real)k3;
        const real *dyc = dy + (size_t)c * HW, *xc = x + (size_t)c * HW;
        real *dxc = dx + (size_t)c * HW;
        for (int i = 0; i < HW; i++) dxc[i] += k1 * dyc[i] + a * xc[i] + b;
    }
}

// groups [g0, g1) of one sample; pgamma/pbeta receive this sample's contributions
static void groupnorm_sample_backward(real *din, real *pgamma, real *pbeta, const real *dout, const real *mean,
                                      const real *rstd, const real *in, const real *gamma, int C, int HW, int G,
                                      int g0, int g1) {
    int cpg = C / G;
    for (int g = g0; g < g1; g++) {
        size_t o = (size_t)g * cpg * HW;
        gn_group_backward(din ? din + o : NULL, pgamma ? pgamma + g * cpg : NULL, pbeta ? pbeta + g * cpg : NULL,
                          dout + o, in + o, mean[g], rstd[g], gamma ? gamma + g * cpg : NULL, cpg, HW);
    }
}

// the input gradient of groupnorm_forward -> act_forward(RELU) -> avgpool_forward(2, 2),
// one (sample, group) pair: the gradient at the GroupNorm output made channel by channel
// in scratch as the two backward passes would leave it in their zeroed buffers (0 + v,
// so that a -0 comes out as +0 as there), then gn_group_backward on it. y is the GroupNorm
// output (ReLU's input, whose sign passes the gradient).
static void gn_relu_pool_group_backward(real *dx, const real *dpool, const real *x, const real *y, double m, double r,
                                        const real *gamma, int cpg, int H, int W, real *dy) {
    int HW = H * W, Ho = H / 2, Wo = W / 2;
    for (int c = 0; c < cpg; c++) {
        const real *gp = dpool + (size_t)c * Ho * Wo, *yc = y + (size_t)c * HW;
        real *d = dy + (size_t)c * HW;
        // one pass: the pooled gradient spread over its 2x2 window, masked by ReLU; the
        // same bits as the two passes' 0 + (y > 0 ? 0 + g / 4 : 0), as v is never -0
        for (int h = 0; h < 2 * Ho; h++) {
            const real *g = gp + (size_t)(h / 2) * Wo, *yr = yc + (size_t)h * W;
            real *dr = d + (size_t)h * W;
            for (int ow = 0; ow < Wo; ow++) {
                real v = 0.0f + g[ow] / (real)4;
                dr[2 * ow] = yr[2 * ow] > 0.0f ? v : 0.0f;
                dr[2 * ow + 1] = yr[2 * ow + 1] > 0.0f ? v : 0.0f;
            }
            if (W > 2 * Wo) dr[W - 1] = 0.0f;
        }
        if (H > 2 * Ho) memset(d + (size_t)(H - 1) * W, 0, sizeof(real) * W);
    }
    gn_group_backward(dx, NULL, NULL, dy, x, m, r, gamma, cpg, HW);
}

void groupnorm_relu_pool_backward(real *din, const real *dout, const real *mean, const real *rstd, const real *in,
                                  const real *out, const real *gamma, int B, int C, int H, int W, int G) {
    int cpg = C / G;
    size_t isz = (size_t)C * H * W, osz = (size_t)C * (H / 2) * (W / 2), gsz = (size_t)cpg * H * W;
    long n = (long)B * G; // (sample, group) pairs, as groupnorm_backward
#pragma omp parallel for schedule(static) if (n > 1)
    for (long i = 0; i < n; i++) {
        int b = (int)(i / G), g = (int)(i % G);
        real *dy = scratch_real(SCRATCH_TMP, gsz);
        gn_relu_pool_group_backward(din + b * isz + g * gsz, dout + b * osz + (size_t)g * cpg * (H / 2) * (W / 2),
                                    in + b * isz + g * gsz, out + b * isz + g * gsz, mean[(size_t)b * G + g],
                                    rstd[(size_t)b * G + g], gamma ? gamma + g * cpg : NULL, cpg, H, W, dy);
    }
}

void groupnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout, const real *mean,
                        const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int G) {
    size_t sz = (size_t)C * HW;
    int want = dgamma || dbeta;
    real *pg = NULL;
    if (want) {
        pg = xmalloc(sizeof(real) * (size_t)B * 2 * C);
        if (!pg) want = 0, dgamma = dbeta = NULL; // cannot happen in practice: (B, 2C) floats
    }
    long n = (long)B * G; // (sample, group) pairs, as in the forward pass
#pragma omp parallel for schedule(static) if (n > 1)
    for (long i = 0; i < n; i++) {
        int b = (int)(i / G), g = (int)(i % G);
        groupnorm_sample_backward(din ? din + b * sz : NULL, dgamma ? pg + (size_t)b * 2 * C : NULL,
                                  dbeta ? pg + (size_t)b * 2 * C + C : NULL, dout + b * sz, mean + (size_t)b * G,
                                  rstd + (size_t)b * G, in + b * sz, gamma, C, HW, G, g, g + 1);
    }
    if (want) {
        for (int b = 0; b < B; b++) {
            const real *p = pg + (size_t)b * 2 * C;
            for (int c = 0; c < C; c++) {
                if (dgamma) dgamma[c] += p[c];
                if (dbeta) dbeta[c] += p[C + c];
            }
        }
    }
    xfree(pg);
}

// ----------------------------------------------------------------------------
// LayerNorm over (C, H, W) with elementwise affine

void layernorm_forward(real *out, real *mean, real *rstd, const real *in, const real *gamma, const real *beta,
                       int B, int D, real eps) {
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        const real *x = in + (size_t)b * D;
        real *y = out + (size_t)b * D;
        real m = (real)(sum_f(x, (size_t)D) / D);
        real r = (real)(1.0 / sqrt(sumsq_dev(x, (size_t)D, m) / D + eps));
        mean[b] = m;
        rstd[b] = r;
        for (int i = 0; i < D; i++) {
            real xh = (x[i] - m) * r;
            y[i] = gamma ? xh * gamma[i] + (beta ? beta[i] : 0.0f) : xh + (beta ? beta[i] : 0.0f);
        }
    }
}

void layernorm_backward(real *din, real *dgamma, real *dbeta, const real *dout, const real *mean,
                        const real *rstd, const real *in, const real *gamma, int B, int D) {
    if (dgamma || dbeta) {
        // parameter gradients: a sum over the batch per element; parallel over elements
#pragma omp parallel for schedule(static) if (B * D > (1 << 16))
        for (int i = 0; i < D; i++) {
            double sg = 0.0, sb = 0.0;
            for (int b = 0; b < B; b++) {
                real dy = dout[(size_t)b * D + i];
                sg += (double)dy * ((in[(size_t)b * D + i] - mean[b]) * rstd[b]);
                sb += dy;
            }
            if (dgamma) dgamma[i] += (real)sg;
            if (dbeta) dbeta[i] += (real)sb;
        }
    }
    if (!din) return;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        const real *dy = dout + (size_t)b * D, *x = in + (size_t)b * D;
        real *dx = din + (size_t)b * D;
        double m = mean[b], r = rstd[b];
        double s_dxhat = 0.0, s_dxhat_xhat = 0.0;
        for (int i = 0; i < D; i++) {
            double dxh = (double)dy[i] * (gamma ? gamma[i] : 1.0f);
            s_dxhat += dxh;
            s_dxhat_xhat += dxh * ((x[i] - m) * r);
        }
        real a = (real)(s_dxhat / D), c = (real)(s_dxhat_xhat / D);
        for (int i = 0; i < D; i++) {
            real dxh = dy[i] * (gamma ? gamma[i] : 1.0f);
            real xh = (real)((x[i] - m) * r);
            dx[i] += (real)r * (dxh - a - xh * c);
        }
    }
}

// ----------------------------------------------------------------------------
// BatchNorm2d

// per channel: the batch statistics (train) or the running ones (eval) into mean/rstd;
// train updates the running statistics
static void bn_channel_stats(real *mean, real *rstd, real *running_mean, real *running_var, const real *in, int B,
                             int C, int HW, int c, real eps, real momentum, int train) {
    size_t sz = (size_t)C * HW;
    real m, r;
    if (train) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += sum_f(in + b * sz + (size_t)c * HW, (size_t)HW);
        double n = (double)B * HW;
        m = (real)(s / n);
        double ss = 0.0;
        for (int b = 0; b < B; b++) ss += sumsq_dev(in + b * sz + (size_t)c * HW, (size_t)HW, m);
        double var = ss / n;
        r = (real)(1.0 / sqrt(var + eps));
        if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * m;
        if (running_var) {
            double unbiased = n > 1 ? ss / (n - 1) : var;
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (real)unbiased;
        }
    } else {
        m = running_mean[c];
        r = (real)(1.0 / sqrt((double)running_var[c] + eps));
    }
    mean[c] = m;
    rstd[c] = r;
}

static void bn_channel_apply(real *out, const real *in, const real *mean, const real *rstd, const real *gamma,
                             const real *beta, int B, int C, int HW, int c) {
    size_t sz = (size_t)C * HW;
    real a = gamma ? gamma[c] * rstd[c] : rstd[c];
    real bb = (beta ? beta[c] : 0.0f) - mean[c] * a;
    for (int b = 0; b < B; b++) affine_f(out + b * sz + (size_t)c * HW, in + b * sz + (size_t)c * HW, (size_t)HW, a, bb);
}

void batchnorm_forward(real *out, real *mean, real *rstd, real *running_mean, real *running_var,
                       const real *in, const real *gamma, const real *beta, int B, int C, int HW, real eps,
                       real momentum, int train) {
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++) {
        bn_channel_stats(mean, rstd, running_mean, running_var, in, B, C, HW, c, eps, momentum, train);
        bn_channel_apply(out, in, mean, rstd, gamma, beta, B, C, HW, c);
    }
}

void batchnorm_stats(real *mean, real *rstd, real *running_mean, real *running_var, const real *in, int B, int C,
                     int HW, real eps, real momentum) {
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++) bn_channel_stats(mean, rstd, running_mean, running_var, in, B, C, HW, c, eps, momentum, 1);
}

void batchnorm_apply(real *out, const real *in, const real *mean, const real *rstd, const real *gamma,
                     const real *beta, int B, int C, int HW) {
    for (int c = 0; c < C; c++) bn_channel_apply(out, in, mean, rstd, gamma, beta, B, C, HW, c);
}

// per channel: the two batch sums of the backward rule, dgamma/dbeta, and the affine map
// dx = k1 dy + a (x - mean) + bb that the input gradient is (k[0..3], k[3] = mean); centred
// on the mean as PyTorch's kernel is, so that no term cancels when |mean| >> std
static void bn_channel_backward_sums(real *k, real *dgamma, real *dbeta, const real *dout, const real *mean,
                                     const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int c,
                                     int train) {
    size_t sz = (size_t)C * HW;
    double r = rstd[c];
    double s1 = 0.0, s2 = 0.0; // sum dy, sum dy (x - mean)
    for (int b = 0; b < B; b++) {
        const real *dy = dout + b * sz + (size_t)c * HW, *x = in + b * sz + (size_t)c * HW;
        s1 += sum_f(dy, (size_t)HW);
        s2 += dot_dev(dy, x, (size_t)HW, mean[c]);
    }
    double gxh = s2 * r;
    if (dgamma) dgamma[c] += (real)gxh;
    if (dbeta) dbeta[c] += (real)s1;
    double gm = gamma ? gamma[c] : 1.0;
    real k1 = (real)(r * gm), a, bb;
    if (train) {
        double N = (double)B * HW;
        a = (real)(-r * r * gm * gxh / N);
        bb = (real)(-r * gm * s1 / N);
    } else { // running statistics are constants: dx = dy * gamma * rstd
        a = 0.0f;
        bb = 0.0f;
    }
    k[0] = k1, k[1] = a, k[2] = bb, k[3] = mean[c];
}

static void bn_channel_backward_apply(real *din, const real *k, const real *dout, const real *in, int B, int C,
                                      int HW, int c) {
    size_t sz = (size_t)C * HW;
    real k1 = k[0], a = k[1], bb = k[2], m = k[3];
    for (int b = 0; b < B; b++) {
        const real *dy = dout + b * sz + (size_t)c * HW, *x = in + b * sz + (size_t)c * HW;
        real *dx = din + b * sz + (size_t)c * HW;
        for (int i = 0; i < HW; i++) dx[i] += k1 * dy[i] + a * (x[i] - m) + bb;
    }
}

void batchnorm_backward(real *din, real *dgamma, real *dbeta, const real *dout, const real *mean,
                        const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int train) {
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++) {
        real k[4];
        bn_channel_backward_sums(k, dgamma, dbeta, dout, mean, rstd, in, gamma, B, C, HW, c, train);
        if (din) bn_channel_backward_apply(din, k, dout, in, B, C, HW, c);
    }
}

void batchnorm_backward_sums(real *coef, real *dgamma, real *dbeta, const real *dout, const real *mean,
                             const real *rstd, const real *in, const real *gamma, int B, int C, int HW, int train) {
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++)
        bn_channel_backward_sums(coef + 4 * c, dgamma, dbeta, dout, mean, rstd, in, gamma, B, C, HW, c, train);
}

void batchnorm_backward_apply(real *din, const real *coef, const real *dout, const real *in, int B, int C, int HW) {
    for (int c = 0; c < C; c++) bn_channel_backward_apply(din, coef + 4 * c, dout, in, B, C, HW, c);
}

