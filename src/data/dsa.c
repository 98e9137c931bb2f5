/*
 * dsa.c: DSA augmentation ops, forward and backward (see dsa.h for the paper, the
 * reference code and the op definitions).
 *
 * Each op works on one sample at a time; a batch runs its samples in parallel. Forward
 * writes out, backward adds aug^T(dout) into din, following nn.h's conventions. The
 * bilinear sampler computes corner weights and the order of the four products exactly
 * as PyTorch's CPU grid_sampler_2d does (nw, ne, sw, se), so that forward results agree
 * with F.grid_sample to float rounding.
 */
#include "dsa.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static const char *const op_names[DSA_OP_COUNT] = {"color", "crop", "cutout", "flip", "scale", "rotate"};

const char *dsa_op_name(DsaOp op) { return op >= 0 && op < DSA_OP_COUNT ? op_names[op] : "?"; }

void dsa_config_default(DsaConfig *c) {
    c->prob_flip = 0.5f;
    c->ratio_scale = 1.2f;
    c->ratio_rotate = 15.0f;
    c->ratio_crop_pad = 0.125f;
    c->ratio_cutout = 0.5f;
    c->brightness = 1.0f;
    c->saturation = 2.0f;
    c->contrast = 0.5f;
    c->align_corners = 0;
}

int dsa_strategy_parse(DsaStrategy *s, const char *text, Err *e) {
    memset(s, 0, sizeof(*s));
    if (!text || !*text || !strcasecmp(text, "none")) return 0;
    const char *p = text;
    while (*p) {
        const char *u = strchr(p, '_');
        size_t len = u ? (size_t)(u - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < DSA_OP_COUNT; k++)
            if (strlen(op_names[k]) == len && !strncmp(op_names[k], p, len)) found = k;
        if (found < 0)
            return err_set(e, "unknown DSA op '%.*s' in strategy '%s' (ops: color, crop, cutout, flip, scale, rotate)",
                           (int)len, p, text);
        // DC's mode 'S' picks among the words of the string, repeats included
        if (s->n_ops >= DSA_OP_COUNT) return err_set(e, "DSA strategy '%s' has too many ops", text);
        s->ops[s->n_ops++] = (DsaOp)found;
        if (!u) break;
        p = u + 1;
        if (!*p) return err_set(e, "DSA strategy '%s' ends with '_'", text);
    }
    return 0;
}

void dsa_draw(DsaDraw *d, const DsaStrategy *st, const DsaConfig *cfg, int H, int W, int siamese, Rng *r) {
    // no ops: DSA_OP_COUNT, which dsa_forward/dsa_backward treat as the identity
    d->op = st->n_ops > 0 ? st->ops[rng_below(r, (uint32_t)st->n_ops)] : DSA_OP_COUNT;
    int shift_x = (int)(H * cfg->ratio_crop_pad + 0.5f), shift_y = (int)(W * cfg->ratio_crop_pad + 0.5f);
    int cut_x = (int)(H * cfg->ratio_cutout + 0.5f), cut_y = (int)(W * cfg->ratio_cutout + 0.5f);
    float rs = cfg->ratio_scale, lo = 1.0f / rs;
    for (int b = 0; b < d->B; b++) {
        DsaSample *s = &d->s[b];
        if (siamese && b > 0) {
            *s = d->s[0];
            continue;
        }
        s->brightness = rng_uniform(r);
        s->saturation = rng_uniform(r);
        s->contrast = rng_uniform(r);
        s->crop_x = (int)rng_below(r, (uint32_t)(2 * shift_x + 1)) - shift_x;
        s->crop_y = (int)rng_below(r, (uint32_t)(2 * shift_y + 1)) - shift_y;
        s->cutout_x = (int)rng_below(r, (uint32_t)(H + (1 - cut_x % 2)));
        s->cutout_y = (int)rng_below(r, (uint32_t)(W + (1 - cut_y % 2)));
        s->flip = rng_uniform(r) < cfg->prob_flip;
        s->scale_x = rng_uniform(r) * (rs - lo) + lo;
        s->scale_y = rng_uniform(r) * (rs - lo) + lo;
        s->angle = (rng_uniform(r) - 0.5f) * 2.0f * cfg->ratio_rotate / 180.0f * (float)M_PI;
    }
}

// ----------------------------------------------------------------------------
// color: brightness, saturation, contrast in sequence

static void color_forward(float *out, const float *in, const DsaSample *s, const DsaConfig *cfg, int C, size_t HW) {
    float b = (s->brightness - 0.5f) * cfg->brightness;
    float sat = s->saturation * cfg->saturation, con = s->contrast + cfg->contrast;
    size_t n = (size_t)C * HW;
    for (size_t i = 0; i < n; i++) out[i] = in[i] + b;
    for (size_t p = 0; p < HW; p++) {
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += out[c * HW + p];
        m /= (float)C;
        for (int c = 0; c < C; c++) out[c * HW + p] = (out[c * HW + p] - m) * sat + m;
    }
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m += out[i];
    float mf = (float)(m / (double)n);
    for (size_t i = 0; i < n; i++) out[i] = (out[i] - mf) * con + mf;
}

// the transpose, op by op in reverse: contrast y = k x + (1 - k) mean(x) gives
// dx = k dy + (1 - k) mean(dy); saturation likewise per pixel over channels; brightness
// passes the gradient through.
static void color_backward(float *din, const float *dout, const DsaSample *s, const DsaConfig *cfg, int C, size_t HW) {
    float sat = s->saturation * cfg->saturation, con = s->contrast + cfg->contrast;
    size_t n = (size_t)C * HW;
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m += dout[i];
    float mf = (float)(m / (double)n) * (1.0f - con);
    for (size_t p = 0; p < HW; p++) {
        float g = 0.0f;
        for (int c = 0; c < C; c++) g += con * dout[c * HW + p] + mf;
        g = g / (float)C * (1.0f - sat);
        for (int c = 0; c < C; c++) din[c * HW + p] += sat * (con * dout[c * HW + p] + mf) + g;
    }
}

// ----------------------------------------------------------------------------
// crop: out[i][j] = in[i + tx][j + ty], zero outside (DC pads by one zero pixel and clamps
// the gather index into the padded image, which is the same thing)

static void crop_forward(float *out, const float *in, const DsaSample *s, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int si = i + s->crop_x, sj = j + s->crop_y;
                out[((size_t)c * H + i) * W + j] =
                    si >= 0 && si < H && sj >= 0 && sj < W ? in[((size_t)c * H + si) * W + sj] : 0.0f;
            }
}

static void crop_backward(float *din, const float *dout, const DsaSample *s, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int si = i + s->crop_x, sj = j + s->crop_y;
                if (si >= 0 && si < H && sj >= 0 && sj < W) din[((size_t)c * H + si) * W + sj] += dout[((size_t)c * H + i) * W + j];
            }
}

// ----------------------------------------------------------------------------
// cutout: the rows offset - size/2 + [0, size), clamped into the image, times the columns

static void cutout_range(int off, int size, int n, int *lo, int *hi) {
    int a = off - size / 2, b = a + size - 1;
    *lo = a < 0 ? 0 : (a > n - 1 ? n - 1 : a);
    *hi = b < 0 ? 0 : (b > n - 1 ? n - 1 : b);
}

static void cutout_apply(float *out, const float *in, const DsaSample *s, const DsaConfig *cfg, int C, int H, int W,
                         int accumulate) {
    int cx = (int)(H * cfg->ratio_cutout + 0.5f), cy = (int)(W * cfg->ratio_cutout + 0.5f);
    int r0 = 0, r1 = -1, c0 = 0, c1 = -1;
    if (cx > 0 && cy > 0) {
        cutout_range(s->cutout_x, cx, H, &r0, &r1);
        cutout_range(s->cutout_y, cy, W, &c0, &c1);
    }
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                size_t k = ((size_t)c * H + i) * W + j;
                float v = i >= r0 && i <= r1 && j >= c0 && j <= c1 ? 0.0f : in[k];
                if (accumulate) out[k] += v;
                else out[k] = v;
            }
}

// ----------------------------------------------------------------------------
// flip (its own transpose)

static void flip_apply(float *out, const float *in, const DsaSample *s, int C, int H, int W, int accumulate) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++) {
            const float *src = in + ((size_t)c * H + i) * W;
            float *dst = out + ((size_t)c * H + i) * W;
            for (int j = 0; j < W; j++) {
                float v = s->flip ? src[W - 1 - j] : src[j];
                if (accumulate) dst[j] += v;
                else dst[j] = v;
            }
        }
}

// ----------------------------------------------------------------------------
// scale and rotate: F.affine_grid + F.grid_sample (bilinear, zeros, align_corners as configured)

static void affine_theta(const DsaSample *s, DsaOp op, float t[6]) {
    if (op == DSA_SCALE) {
        t[0] = s->scale_x, t[1] = 0.0f, t[2] = 0.0f;
        t[3] = 0.0f, t[4] = s->scale_y, t[5] = 0.0f;
    } else {
        float c = cosf(s->angle), sn = sinf(s->angle);
        t[0] = c, t[1] = sinf(-s->angle), t[2] = 0.0f;
        t[3] = sn, t[4] = c, t[5] = 0.0f;
    }
}

// the four bilinear taps of output pixel (i, j): indices into the (H, W) plane (-1 when
// outside) and weights
typedef struct {
    int idx[4];
    float w[4];
} Taps;

// torch.linspace(-1, 1, n)[j] in float, as PyTorch's CPU kernel computes it (from both ends)
static float linspace_pm1(int j, int n) {
    if (n <= 1) return 0.0f; // affine_grid's base for a size of 1
    float step = 2.0f / (float)(n - 1);
    return j < n / 2 ? -1.0f + step * (float)j : 1.0f - step * (float)(n - 1 - j);
}

static void grid_taps(Taps *tp, const float t[6], int i, int j, int H, int W, int align) {
    // affine_grid's base grid: align_corners=False, (2j + 1) / W - 1, correctly rounded
    // (PyTorch builds it as linspace(-1, 1, W) * (W - 1) / W, which is off by a few ulps);
    // align_corners=True, linspace(-1, 1, W)
    float xn = align ? linspace_pm1(j, W) : (float)(2 * j + 1 - W) / (float)W;
    float yn = align ? linspace_pm1(i, H) : (float)(2 * i + 1 - H) / (float)H;
    float gx = xn * t[0] + yn * t[1] + t[2];
    float gy = xn * t[3] + yn * t[4] + t[5];
    // grid_sample's unnormalisation, and the corner weights, in the form of PyTorch's
    // vectorised CPU kernel (GridSamplerKernel.cpp)
    float ix = align ? (gx + 1.0f) * ((float)(W - 1) / 2.0f) : (gx + 1.0f) * ((float)W / 2.0f) - 0.5f;
    float iy = align ? (gy + 1.0f) * ((float)(H - 1) / 2.0f) : (gy + 1.0f) * ((float)H / 2.0f) - 0.5f;
    float fx = floorf(ix), fy = floorf(iy);
    int x0 = (int)fx, y0 = (int)fy, x1 = x0 + 1, y1 = y0 + 1;
    float w = ix - fx, ea = 1.0f - w, n = iy - fy, so = 1.0f - n;
    tp->w[0] = so * ea; // nw
    tp->w[1] = so * w;  // ne
    tp->w[2] = n * ea;  // sw
    tp->w[3] = n * w;   // se
    int xs[4] = {x0, x1, x0, x1}, ys[4] = {y0, y0, y1, y1};
    for (int k = 0; k < 4; k++)
        tp->idx[k] = xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H ? ys[k] * W + xs[k] : -1;
}

static void affine_forward(float *out, const float *in, const DsaSample *s, DsaOp op, int C, int H, int W, int align) {
    float t[6];
    affine_theta(s, op, t);
    size_t HW = (size_t)H * W;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            Taps tp;
            grid_taps(&tp, t, i, j, H, W, align);
            for (int c = 0; c < C; c++) {
                const float *p = in + c * HW;
                float v = 0.0f;
                for (int k = 0; k < 4; k++)
                    if (tp.idx[k] >= 0) v += p[tp.idx[k]] * tp.w[k];
                out[c * HW + (size_t)i * W + j] = v;
            }
        }
}

static void affine_backward(float *din, const float *dout, const DsaSample *s, DsaOp op, int C, int H, int W,
                            int align) {
    float t[6];
    affine_theta(s, op, t);
    size_t HW = (size_t)H * W;
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            Taps tp;
            grid_taps(&tp, t, i, j, H, W, align);
            for (int c = 0; c < C; c++) {
                float g = dout[c * HW + (size_t)i * W + j];
                for (int k = 0; k < 4; k++)
                    if (tp.idx[k] >= 0) din[c * HW + tp.idx[k]] += g * tp.w[k];
            }
        }
}

// ----------------------------------------------------------------------------
// batches

void dsa_forward(float *out, const float *in, const DsaDraw *d, const DsaConfig *cfg, int C, int H, int W) {
    size_t D = (size_t)C * H * W;
#pragma omp parallel for schedule(static) if (d->B * D > (1 << 16))
    for (int b = 0; b < d->B; b++) {
        const float *x = in + b * D;
        float *y = out + b * D;
        const DsaSample *s = &d->s[b];
        switch (d->op) {
        case DSA_COLOR: color_forward(y, x, s, cfg, C, (size_t)H * W); break;
        case DSA_CROP: crop_forward(y, x, s, C, H, W); break;
        case DSA_CUTOUT: cutout_apply(y, x, s, cfg, C, H, W, 0); break;
        case DSA_FLIP: flip_apply(y, x, s, C, H, W, 0); break;
        case DSA_SCALE:
        case DSA_ROTATE: affine_forward(y, x, s, d->op, C, H, W, cfg->align_corners); break;
        default: memcpy(y, x, sizeof(float) * D); break;
        }
    }
}

void dsa_backward(float *din, const float *dout, const DsaDraw *d, const DsaConfig *cfg, int C, int H, int W) {
    size_t D = (size_t)C * H * W;
#pragma omp parallel for schedule(static) if (d->B * D > (1 << 16))
    for (int b = 0; b < d->B; b++) {
        const float *g = dout + b * D;
        float *dx = din + b * D;
        const DsaSample *s = &d->s[b];
        switch (d->op) {
        case DSA_COLOR: color_backward(dx, g, s, cfg, C, (size_t)H * W); break;
        case DSA_CROP: crop_backward(dx, g, s, C, H, W); break;
        case DSA_CUTOUT: cutout_apply(dx, g, s, cfg, C, H, W, 1); break;
        case DSA_FLIP: flip_apply(dx, g, s, C, H, W, 1); break;
        case DSA_SCALE:
        case DSA_ROTATE: affine_backward(dx, g, s, d->op, C, H, W, cfg->align_corners); break;
        default:
            for (size_t i = 0; i < D; i++) dx[i] += g[i];
            break;
        }
    }
}
