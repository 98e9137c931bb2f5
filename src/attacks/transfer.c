/*
 * transfer.c: see transfer.h.
 */
#include "transfer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void attack_linf_step(float *x_adv, const float *x, const float *dir, float alpha, float eps, size_t n) {
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float a = x_adv[i] + alpha * signf_torch(dir[i]);
        float d = clampf(a - x[i], -eps, eps);
        x_adv[i] = clampf(x[i] + d, 0.0f, 1.0f);
    }
}

float attack_mean_abs(const float *g, size_t D) {
    double acc = 0.0;
    for (size_t j = 0; j < D; j++) acc += fabsf(g[j]);
    return (float)acc / (float)D;
}

void attack_uniform_start(const AttackCtx *ctx, const float *x, int B, float eps, uint32_t stream, float *x_adv) {
    size_t D = ctx->D;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng r;
        attack_rng(ctx, b, stream, &r);
        for (size_t i = (size_t)b * D; i < (size_t)(b + 1) * D; i++)
            x_adv[i] = clampf(x[i] + (2.0f * rng_uniform(&r) - 1.0f) * eps, 0.0f, 1.0f);
    }
}

AttackLossCtx attack_ce_ctx(const AttackCtx *ctx, const int *y, const int *t, int B) {
    AttackLossCtx lc = {ctx->targeted ? t : y, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    return lc;
}

int attack_ce_copies(const AttackCtx *ctx, const float *xs, int B, int copies, const int *y, const int *t, float *grad,
                     Err *e) {
    int n = B * copies;
    int *lab = malloc(sizeof(int) * (size_t)n);
    if (!lab) return err_set(e, "out of memory");
    const int *src = ctx->targeted ? t : y;
    for (int i = 0; i < n; i++) lab[i] = src[i % B];
    AttackLossCtx lc = {lab, ctx->K, ctx->targeted ? -1.0f : 1.0f, 1.0f / (float)B};
    int rc = attack_gradient(ctx, xs, n, attack_loss_ce, &lc, NULL, grad, NULL, e);
    free(lab);
    return rc;
}

// ---------------------------------------------------------------------------
// input diversity

int di_check(const char *attack, int H, int W, double resize_rate, Err *e) {
    if (H != W) return err_set(e, "%s: input diversity needs square images (torchattacks resizes to W x W), not %dx%d", attack, H, W);
    if (!(resize_rate > 0 && resize_rate < 1))
        return err_set(e, "%s: resize_rate must be in (0, 1) for a model with a fixed input size, not %g", attack, resize_rate);
    int lo = (int)(W * resize_rate);
    if (lo < 1 || lo >= W)
        return err_set(e, "%s: resize_rate %g leaves no size to draw for %dx%d images (int(W * rate) = %d)", attack,
                       resize_rate, W, W, lo);
    return 0;
}

void di_draw(Rng *r, int W, double resize_rate, double prob, DiDraw *d) {
    int lo = (int)(W * resize_rate); // Python int() truncates
    d->rnd = lo + (int)rng_below(r, (uint32_t)(W - lo));
    int rem = W - d->rnd;
    d->top = (int)rng_below(r, (uint32_t)rem);
    d->left = (int)rng_below(r, (uint32_t)rem);
    d->apply = rng_uniform_d(r) < prob;
}

// torch's bilinear source index and weights for one output coordinate (align_corners
// False, no scale factor): src = scale * (dst + 0.5) - 0.5, clamped at 0, in float32
static void bilinear_coef(int dst, int in_size, int out_size, int *i0, int *i1, float *l0, float *l1) {
    float scale = (float)in_size / (float)out_size;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    *i0 = (int)src;
    *i1 = *i0 + (*i0 < in_size - 1 ? 1 : 0);
    float lam = src - (float)*i0;
    lam = lam < 0 ? 0 : lam > 1 ? 1 : lam;
    *l1 = lam;
    *l0 = 1.0f - lam;
}

void di_forward(float *out, const float *in, int C, int W, const DiDraw *d) {
    size_t plane = (size_t)W * W;
    if (!d->apply) {
        memcpy(out, in, sizeof(float) * plane * C);
        return;
    }
    memset(out, 0, sizeof(float) * plane * C);
    int n = d->rnd;
    for (int c = 0; c < C; c++) {
        const float *src = in + c * plane;
        float *dst = out + c * plane;
        for (int oh = 0; oh < n; oh++) {
            int h0, h1;
            float lh0, lh1;
            bilinear_coef(oh, W, n, &h0, &h1, &lh0, &lh1);
            for (int ow = 0; ow < n; ow++) {
                int w0, w1;
                float lw0, lw1;
                bilinear_coef(ow, W, n, &w0, &w1, &lw0, &lw1);
                // torch's Interpolate<2>: the inner dimension (width) first, then height
                float t0 = src[h0 * W + w0] * lw0 + src[h0 * W + w1] * lw1;
                float t1 = src[h1 * W + w0] * lw0 + src[h1 * W + w1] * lw1;
                dst[(oh + d->top) * W + ow + d->left] = t0 * lh0 + t1 * lh1;
            }
        }
    }
}

void di_backward(float *gin, const float *gout, int C, int W, const DiDraw *d) {
    size_t plane = (size_t)W * W;
    if (!d->apply) {
        memcpy(gin, gout, sizeof(float) * plane * C);
        return;
    }
    memset(gin, 0, sizeof(float) * plane * C);
    int n = d->rnd;
    for (int c = 0; c < C; c++) {
        float *gi = gin + c * plane;
        const float *go = gout + c * plane;
        for (int oh = 0; oh < n; oh++) {
            int h0, h1;
            float lh0, lh1;
            bilinear_coef(oh, W, n, &h0, &h1, &lh0, &lh1);
            for (int ow = 0; ow < n; ow++) {
                int w0, w1;
                float lw0, lw1;
                bilinear_coef(ow, W, n, &w0, &w1, &lw0, &lw1);
                float g = go[(oh + d->top) * W + ow + d->left]; // F.pad's adjoint: the crop
                gi[h0 * W + w0] += lh0 * lw0 * g;               // upsample_bilinear2d_backward's order
                gi[h0 * W + w1] += lh0 * lw1 * g;
                gi[h1 * W + w0] += lh1 * lw0 * g;
                gi[h1 * W + w1] += lh1 * lw1 * g;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// translation invariance

// np.linspace(a, b, n)[i]: i * step + a, the last one b exactly
static double linspace_at(double a, double b, int n, int i) {
    if (n == 1) return a;
    if (i == n - 1) return b;
    return i * ((b - a) / (n - 1)) + a;
}

void ti_kernel(float *k, int kind, int len, double nsig) {
    double k1[512], sum = 0.0;
    for (int i = 0; i < len; i++) {
        if (kind == TI_GAUSSIAN) { // st.norm.pdf(np.linspace(-nsig, nsig, len))
            double x = linspace_at(-nsig, nsig, len, i);
            k1[i] = exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
        } else if (kind == TI_LINEAR) { // 1 - |linspace((1 - len) / 2, (len - 1) / 2, len) / (len + 1) * 2|
            double x = linspace_at((1.0 - len) / 2.0, (len - 1.0) / 2.0, len, i);
            k1[i] = 1.0 - fabs(x / (len + 1) * 2);
        } else {
            k1[i] = 1.0;
        }
    }
    for (int i = 0; i < len; i++)
        for (int j = 0; j < len; j++) sum += k1[i] * k1[j];
    for (int i = 0; i < len; i++)
        for (int j = 0; j < len; j++)
            k[i * len + j] = kind == TI_UNIFORM ? (float)(1.0 / (len * len)) : (float)(k1[i] * k1[j] / sum);
}

void ti_conv(float *out, const float *in, const float *k, int len, int C, int H, int W) {
    int p = (len - 1) / 2;
    for (int c = 0; c < C; c++) {
        const float *src = in + (size_t)c * H * W;
        float *dst = out + (size_t)c * H * W;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) {
                double acc = 0.0;
                for (int i = 0; i < len; i++) {
                    int y = h + i - p;
                    if (y < 0 || y >= H) continue;
                    for (int j = 0; j < len; j++) {
                        int x = w + j - p;
                        if (x >= 0 && x < W) acc += (double)src[y * W + x] * k[i * len + j];
                    }
                }
                dst[h * W + w] = (float)acc;
            }
    }
}
