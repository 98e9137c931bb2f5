/*
 * test_nn.c: every nn layer against PyTorch's forward output and autograd gradients
 * (tests/fixtures/nn_layers.bin, from tests/scripts/gen_nn_fixtures.py), the optimised
 * kernels against their naive references, and small ConvNet variants end to end against
 * PyTorch (tests/fixtures/nn_models.bin): logits and the input gradient, in both input
 * conventions (normalised input, and pixels with the model normalising).
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "../src/nn/conv_batch.h"
#include "../src/nn/nn.h"
#include "../src/nn/optim.h"
#include "harness.h"

static Fixture F;

#define T(...) fixture_getf(&F, __VA_ARGS__)

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

#define ATOL 2e-5
#define RTOL 1e-4

static void test_conv(int k, int s, int p) {
    char pre[32];
    snprintf(pre, sizeof(pre), "conv_k%ds%dp%d", k, s, p);
    const FixTensor *x = T("%s.x", pre), *w = T("%s.weight", pre), *b = T("%s.bias", pre), *out = T("%s.out", pre),
                    *dout = T("%s.dout", pre), *dx = T("%s.dx", pre), *dw = T("%s.dweight", pre),
                    *db = T("%s.dbias", pre);
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3], O = (int)w->shape[0];
    float *y = zeros(out->n), *yr = zeros(out->n);
    conv2d_forward(y, x->data, w->data, b->data, B, C, H, W, O, k, s, p);
    conv2d_forward_ref(yr, x->data, w->data, b->data, B, C, H, W, O, k, s, p);
    char what[64];
    snprintf(what, sizeof(what), "%s forward", pre);
    check_close(what, y, out->data, out->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s forward vs naive", pre);
    check_close(what, y, yr, out->n, ATOL, RTOL);
    float *gx = zeros(x->n), *gw = zeros(w->n), *gb = zeros(b->n);
    float *gxr = zeros(x->n), *gwr = zeros(w->n), *gbr = zeros(b->n);
    conv2d_backward(gx, gw, gb, dout->data, x->data, w->data, B, C, H, W, O, k, s, p);
    conv2d_backward_ref(gxr, gwr, gbr, dout->data, x->data, w->data, B, C, H, W, O, k, s, p);
    snprintf(what, sizeof(what), "%s dx", pre);
    check_close(what, gx, dx->data, dx->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dweight", pre);
    check_close(what, gw, dw->data, dw->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dbias", pre);
    check_close(what, gb, db->data, db->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dx vs naive", pre);
    check_close(what, gx, gxr, x->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dweight vs naive", pre);
    check_close(what, gw, gwr, w->n, ATOL, RTOL);
    // backward accumulates: a second call doubles every gradient
    conv2d_backward(gx, gw, gb, dout->data, x->data, w->data, B, C, H, W, O, k, s, p);
    for (size_t i = 0; i < x->n; i++) gxr[i] = 2 * dx->data[i];
    snprintf(what, sizeof(what), "%s dx accumulates", pre);
    check_close(what, gx, gxr, x->n, 2 * ATOL, RTOL);
    free(y), free(yr), free(gx), free(gw), free(gb), free(gxr), free(gwr), free(gbr);
}

// Winograd F(2x2, 3x3) and F(4x4, 3x3) against the naive direct sum, over shapes that
// exercise partial tile rows (sizes not a multiple of the tile), partial blocks, Cout not
// a multiple of the register block, the vector (W <= 16) and the generic paths, and the
// ConvNet's own 128 -> 128 layers at 16x16 and 8x8
static void test_winograd(int tile) {
    int shapes[][5] = {{2, 8, 8, 16, 16}, {3, 16, 13, 7, 5}, {1, 128, 128, 16, 16}, {2, 128, 128, 8, 8},
                       {2, 9, 5, 1, 1},   {1, 12, 24, 33, 9}, {2, 20, 16, 2, 3},   {1, 8, 8, 70, 4},
                       {1, 8, 8, 5, 37},  {1, 16, 8, 32, 32}, {2, 8, 16, 15, 14}, {1, 8, 8, 6, 18}};
    Rng r;
    rng_init(&r, 7, 0);
    // F(4x4)'s rounding is about twice F(2x2)'s (its larger coefficients)
    float atol = tile == 4 ? 3e-5f : 1e-5f;
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        int B = shapes[t][0], C = shapes[t][1], O = shapes[t][2], H = shapes[t][3], W = shapes[t][4];
        size_t nx = (size_t)B * C * H * W, nw = (size_t)O * C * 9, ny = (size_t)B * O * H * W;
        float *x = zeros(nx), *w = zeros(nw), *b = zeros(O), *y = zeros(ny), *yr = zeros(ny);
        float *U = zeros(winograd_weights_size(tile, O, C));
        float bound = 1.0f / sqrtf((float)C * 9);
        for (size_t i = 0; i < nx; i++) x[i] = 2 * rng_uniform(&r) - 1;
        for (size_t i = 0; i < nw; i++) w[i] = bound * (2 * rng_uniform(&r) - 1);
        for (int i = 0; i < O; i++) b[i] = bound * (2 * rng_uniform(&r) - 1);
        CHECK(winograd_applies(C, 3, 1, 1), "winograd applies to %d input channels", C);
        winograd_weights(tile, U, w, O, C);
        for (size_t i = 0; i < ny; i++) y[i] = NAN; // every output must be written
        conv2d_forward_winograd(tile, y, x, U, b, B, C, H, W, O);
        conv2d_forward_ref(yr, x, w, b, B, C, H, W, O, 3, 1, 1);
        char what[96];
        snprintf(what, sizeof(what), "winograd F(%dx%d) B%d C%d O%d %dx%d vs naive", tile, tile, B, C, O, H, W);
        check_close(what, y, yr, ny, atol, 1e-4);
        // a batch of one runs on all threads (outside a parallel region), a batch of two
        // one sample per thread: the first sample's output must be bit-identical
        float *x2 = zeros(2 * nx / B), *y1 = zeros(ny / B), *y2 = zeros(2 * ny / B);
        memcpy(x2, x, sizeof(float) * nx / B), memcpy(x2 + nx / B, x, sizeof(float) * nx / B);
        conv2d_forward_winograd(tile, y1, x, U, b, 1, C, H, W, O);
        conv2d_forward_winograd(tile, y2, x2, U, b, 2, C, H, W, O);
        CHECK(!memcmp(y1, y2, sizeof(float) * ny / B) && !memcmp(y1, y2 + ny / B, sizeof(float) * ny / B),
              "winograd F(%dx%d) C%d O%d %dx%d: a sample's output does not depend on its batch (threads shared or not)",
              tile, tile, C, O, H, W);
        free(x2), free(y1), free(y2);
        // three samples as one thread's chunk (inside a parallel region), whose blocks span
        // samples where a sample has fewer tiles than a block: each as when alone
        float *x3 = zeros(3 * nx / B), *y3 = zeros(3 * ny / B), *ys = zeros(ny / B);
        for (size_t i = 0; i < 3 * nx / B; i++) x3[i] = 2 * rng_uniform(&r) - 1;
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0) conv2d_forward_winograd(tile, y3, x3, U, b, 3, C, H, W, O);
        int same = 1;
        for (int s3 = 0; s3 < 3; s3++) {
            conv2d_forward_winograd(tile, ys, x3 + s3 * nx / B, U, b, 1, C, H, W, O);
            same &= !memcmp(ys, y3 + s3 * ny / B, sizeof(float) * ny / B);
        }
        CHECK(same, "winograd F(%dx%d) C%d O%d %dx%d: three samples in one thread's chunk each as alone", tile, tile, C, O,
              H, W);
        free(x3), free(y3), free(ys);
        free(x), free(w), free(b), free(y), free(yr), free(U);
    }
    CHECK(!winograd_applies(3, 3, 1, 1) && !winograd_applies(16, 3, 2, 1) && !winograd_applies(16, 5, 1, 2),
          "winograd declines the first layer, strides and other kernel sizes");
}

// the input gradient by Winograd (the flipped convolution from Cout to Cin channels)
// against the naive backward, over the same kinds of shapes; it adds into din
static void test_winograd_backward(int tile) {
    int shapes[][5] = {{2, 16, 8, 16, 16}, {3, 5, 16, 7, 5}, {1, 128, 128, 16, 16}, {2, 128, 128, 8, 8},
                       {2, 3, 128, 32, 32}, {1, 24, 12, 33, 9}, {2, 16, 20, 2, 3},  {1, 8, 8, 70, 4},
                       {1, 1, 9, 5, 37},    {1, 8, 16, 32, 32}, {2, 8, 8, 15, 14}};
    Rng r;
    rng_init(&r, 9, 0);
    float atol = tile == 4 ? 3e-5f : 1e-5f;
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        int B = shapes[t][0], C = shapes[t][1], O = shapes[t][2], H = shapes[t][3], W = shapes[t][4];
        size_t nx = (size_t)B * C * H * W, nw = (size_t)O * C * 9, ny = (size_t)B * O * H * W;
        float *x = zeros(nx), *w = zeros(nw), *dy = zeros(ny), *dx = zeros(nx), *dxr = zeros(nx);
        float *U = zeros(winograd_weights_size(tile, C, O));
        float bound = 1.0f / sqrtf((float)C * 9);
        for (size_t i = 0; i < nw; i++) w[i] = bound * (2 * rng_uniform(&r) - 1);
        for (size_t i = 0; i < ny; i++) dy[i] = 2 * rng_uniform(&r) - 1;
        for (size_t i = 0; i < nx; i++) dx[i] = dxr[i] = rng_uniform(&r); // added into
        CHECK(winograd_applies(O, 3, 1, 1), "winograd applies to the backward pass of %d output channels", O);
        winograd_weights_backward(tile, U, w, O, C);
        conv2d_backward_data_winograd(tile, dx, dy, U, B, O, H, W, C);
        conv2d_backward_ref(dxr, NULL, NULL, dy, x, w, B, C, H, W, O, 3, 1, 1);
        char what[96];
        snprintf(what, sizeof(what), "winograd F(%dx%d) dx B%d C%d O%d %dx%d vs naive", tile, tile, B, C, O, H, W);
        check_close(what, dx, dxr, nx, atol, 1e-4);
        // all threads on a batch of one, one thread per sample on two: bit-identical
        float *dy2 = zeros(2 * ny / B), *d1 = zeros(nx / B), *d2 = zeros(2 * nx / B);
        memcpy(dy2, dy, sizeof(float) * ny / B), memcpy(dy2 + ny / B, dy, sizeof(float) * ny / B);
        conv2d_backward_data_winograd(tile, d1, dy, U, 1, O, H, W, C);
        conv2d_backward_data_winograd(tile, d2, dy2, U, 2, O, H, W, C);
        CHECK(!memcmp(d1, d2, sizeof(float) * nx / B) && !memcmp(d1, d2 + nx / B, sizeof(float) * nx / B),
              "winograd F(%dx%d) dx C%d O%d %dx%d: a sample's gradient does not depend on its batch", tile, tile, C,
              O, H, W);
        free(dy2), free(d1), free(d2);
        // three samples as one thread's chunk: each as when alone
        float *dy3 = zeros(3 * ny / B), *d3 = zeros(3 * nx / B), *ds = zeros(nx / B);
        for (size_t i = 0; i < 3 * ny / B; i++) dy3[i] = 2 * rng_uniform(&r) - 1;
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0) conv2d_backward_data_winograd(tile, d3, dy3, U, 3, O, H, W, C);
        int same = 1;
        for (int s3 = 0; s3 < 3; s3++) {
            memset(ds, 0, sizeof(float) * nx / B);
            conv2d_backward_data_winograd(tile, ds, dy3 + s3 * ny / B, U, 1, O, H, W, C);
            same &= !memcmp(ds, d3 + s3 * nx / B, sizeof(float) * nx / B);
        }
        CHECK(same, "winograd F(%dx%d) dx C%d O%d %dx%d: three samples in one thread's chunk each as alone", tile, tile,
              C, O, H, W);
        free(dy3), free(d3), free(ds);
        free(x), free(w), free(dy), free(dx), free(dxr), free(U);
    }
}

// the direct kernel of layers with few input channels against the naive sums: the RGB
// and MNIST (pad 3) first layers, widths over one and two vectors, partial register
// blocks, other K and pads
static void test_conv_direct(void) {
    int shapes[][7] = {{2, 3, 128, 32, 32, 3, 1}, {1, 1, 128, 28, 28, 3, 3}, {2, 3, 16, 7, 5, 3, 1},
                       {1, 2, 9, 5, 37, 3, 0},    {1, 4, 8, 33, 17, 5, 2},   {3, 7, 20, 16, 16, 1, 0},
                       {1, 3, 5, 2, 3, 3, 1},     {1, 1, 3, 40, 40, 3, 1},   {2, 5, 12, 9, 11, 3, 2},
                       {1, 6, 12, 8, 10, 3, 1},   {2, 3, 7, 18, 4, 3, 0}};
    int backward_cases = 0;
    Rng r;
    rng_init(&r, 13, 0);
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        int B = shapes[t][0], C = shapes[t][1], O = shapes[t][2], H = shapes[t][3], W = shapes[t][4];
        int K = shapes[t][5], pad = shapes[t][6];
        int Ho = conv2d_out_size(H, K, 1, pad), Wo = conv2d_out_size(W, K, 1, pad);
        size_t nx = (size_t)B * C * H * W, nw = (size_t)O * C * K * K, ny = (size_t)B * O * Ho * Wo;
        float *x = zeros(nx), *w = zeros(nw), *b = zeros(O), *y = zeros(ny), *yr = zeros(ny);
        float *Wp = zeros(conv_direct_weights_size(O, C, K));
        float bound = 1.0f / sqrtf((float)C * K * K);
        for (size_t i = 0; i < nx; i++) x[i] = 2 * rng_uniform(&r) - 1;
        for (size_t i = 0; i < nw; i++) w[i] = bound * (2 * rng_uniform(&r) - 1);
        for (int i = 0; i < O; i++) b[i] = bound * (2 * rng_uniform(&r) - 1);
        for (size_t i = 0; i < ny; i++) y[i] = NAN; // every output must be written
        CHECK(conv_direct_applies(C, 1), "the direct kernel applies to %d input channels", C);
        conv_direct_weights(Wp, w, O, C, K);
        conv2d_forward_direct(y, x, Wp, b, B, C, H, W, O, K, pad);
        conv2d_forward_ref(yr, x, w, b, B, C, H, W, O, K, 1, pad);
        char what[96];
        snprintf(what, sizeof(what), "direct B%d C%d O%d %dx%d k%d p%d vs naive", B, C, O, H, W, K, pad);
        check_close(what, y, yr, ny, 1e-5, 1e-4);
        // all threads on a batch of one, one thread per sample on two: bit-identical
        float *x2 = zeros(2 * nx / B), *y1 = zeros(ny / B), *y2 = zeros(2 * ny / B);
        memcpy(x2, x, sizeof(float) * nx / B), memcpy(x2 + nx / B, x, sizeof(float) * nx / B);
        conv2d_forward_direct(y1, x, Wp, b, 1, C, H, W, O, K, pad);
        conv2d_forward_direct(y2, x2, Wp, b, 2, C, H, W, O, K, pad);
        CHECK(!memcmp(y1, y2, sizeof(float) * ny / B) && !memcmp(y1, y2 + ny / B, sizeof(float) * ny / B),
              "direct C%d O%d %dx%d: a sample's output does not depend on its batch", C, O, H, W);
        free(x2), free(y1), free(y2);
        if (conv_direct_backward_applies(C, 1, Ho, Wo)) { // the input gradient, where it applies
            float *dy = zeros(ny), *dx = zeros(nx), *dxr = zeros(nx), *Wt = zeros(conv_direct_weights_backward_size(O, C, K));
            for (size_t i = 0; i < ny; i++) dy[i] = 2 * rng_uniform(&r) - 1;
            for (size_t i = 0; i < nx; i++) dx[i] = dxr[i] = rng_uniform(&r); // added into
            conv_direct_weights_backward(Wt, w, O, C, K);
            conv2d_backward_data_direct(dx, dy, Wt, B, C, H, W, O, K, pad);
            conv2d_backward_ref(dxr, NULL, NULL, dy, x, w, B, C, H, W, O, K, 1, pad);
            snprintf(what, sizeof(what), "direct dx B%d C%d O%d %dx%d k%d p%d vs naive", B, C, O, H, W, K, pad);
            check_close(what, dx, dxr, nx, 1e-5, 1e-4);
            float *dy2 = zeros(2 * ny / B), *d1 = zeros(nx / B), *d2 = zeros(2 * nx / B);
            memcpy(dy2, dy, sizeof(float) * ny / B), memcpy(dy2 + ny / B, dy, sizeof(float) * ny / B);
            conv2d_backward_data_direct(d1, dy, Wt, 1, C, H, W, O, K, pad);
            conv2d_backward_data_direct(d2, dy2, Wt, 2, C, H, W, O, K, pad);
            CHECK(!memcmp(d1, d2, sizeof(float) * nx / B) && !memcmp(d1, d2 + nx / B, sizeof(float) * nx / B),
                  "direct dx C%d O%d %dx%d: a sample's gradient does not depend on its batch", C, O, H, W);
            free(dy), free(dx), free(dxr), free(Wt), free(dy2), free(d1), free(d2);
            backward_cases++;
        }
        free(x), free(w), free(b), free(y), free(yr), free(Wp);
    }
    CHECK(!conv_direct_applies(8, 1) && !conv_direct_applies(3, 2), "the direct kernel declines 8 input channels and strides");
    CHECK(backward_cases == 6, "the direct input gradient ran on %d shapes", backward_cases);
    CHECK(!conv_direct_backward_applies(3, 1, 5, 37) && !conv_direct_backward_applies(8, 1, 32, 32),
          "the direct input gradient declines outputs that are not whole vectors, and 8 input channels");
}

// the forward-only fusion of GroupNorm, ReLU and 2x2 average pooling is bit-identical to
// the three layers: instance and group norm, odd sizes (floor pooling), no affine weights,
// no pooling, batches of one (groups shared by the threads) and three
static void test_gn_relu_pool(void) {
    int shapes[][6] = {{3, 16, 16, 8, 8, 1}, {1, 128, 128, 32, 32, 1}, {2, 12, 4, 7, 9, 1},
                       {1, 8, 8, 6, 6, 0},   {3, 6, 2, 5, 4, 0},       {1, 4, 1, 3, 3, 1}};
    Rng r;
    rng_init(&r, 23, 0);
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++) {
        int B = shapes[t][0], C = shapes[t][1], G = shapes[t][2], H = shapes[t][3], W = shapes[t][4], pool = shapes[t][5];
        for (int affine = 0; affine < 2; affine++) {
            size_t n = (size_t)B * C * H * W, no = pool ? (size_t)B * C * (H / 2) * (W / 2) : n;
            float *x = zeros(n), *g = zeros(C), *bt = zeros(C), *y = zeros(no), *t1 = zeros(n), *t2 = zeros(n);
            float *yr = zeros(no), *mean = zeros((size_t)B * G), *rstd = zeros((size_t)B * G);
            for (size_t i = 0; i < n; i++) x[i] = 3 * rng_uniform(&r) - 1;
            for (int c = 0; c < C; c++) g[c] = 2 * rng_uniform(&r) - 1, bt[c] = rng_uniform(&r) - 0.5f;
            const float *gm = affine ? g : NULL, *bb = affine ? bt : NULL;
            groupnorm_relu_pool_forward(y, x, gm, bb, B, C, H, W, G, 1e-5f, pool);
            groupnorm_forward(t1, mean, rstd, x, gm, bb, B, C, H * W, G, 1e-5f);
            act_forward(t2, t1, n, ACT_RELU, 0);
            if (pool) avgpool_forward(yr, t2, B, C, H, W, 2, 2);
            else memcpy(yr, t2, sizeof(float) * n);
            CHECK(!memcmp(y, yr, sizeof(float) * no), "GroupNorm+ReLU%s B%d C%d G%d %dx%d%s: bit-identical to the layers",
                  pool ? "+AvgPool" : "", B, C, G, H, W, affine ? "" : " (no affine)");
            if (pool) { // the input gradient, against the three backward passes from zeroed buffers
                float *gp = zeros(no), *d2 = zeros(n), *d1 = zeros(n), *dx = zeros(n), *dxr = zeros(n);
                for (size_t i = 0; i < no; i++) gp[i] = 2 * rng_uniform(&r) - 1;
                if (no) gp[0] = -0.0f;
                for (size_t i = 0; i < n; i++) dx[i] = dxr[i] = rng_uniform(&r); // added into
                groupnorm_relu_pool_backward(dx, gp, mean, rstd, x, t1, gm, B, C, H, W, G);
                avgpool_backward(d2, gp, B, C, H, W, 2, 2);
                act_backward(d1, d2, t1, n, ACT_RELU, 0);
                groupnorm_backward(dxr, NULL, NULL, d1, mean, rstd, x, gm, B, C, H * W, G);
                CHECK(!memcmp(dx, dxr, sizeof(float) * n),
                      "GroupNorm+ReLU+AvgPool backward B%d C%d G%d %dx%d%s: bit-identical to the layers", B, C, G, H, W,
                      affine ? "" : " (no affine)");
                free(gp), free(d2), free(d1), free(dx), free(dxr);
            }
            free(x), free(g), free(bt), free(y), free(t1), free(t2), free(yr), free(mean), free(rstd);
        }
    }
}

static void test_linear(void) {
    const FixTensor *x = T("linear.x"), *w = T("linear.weight"), *b = T("linear.bias"), *out = T("linear.out"),
                    *dout = T("linear.dout"), *dx = T("linear.dx"), *dw = T("linear.dweight"), *db = T("linear.dbias");
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], O = (int)w->shape[0];
    float *y = zeros(out->n), *yr = zeros(out->n), *gx = zeros(x->n), *gw = zeros(w->n), *gb = zeros(b->n);
    linear_forward(y, x->data, w->data, b->data, B, C, O);
    linear_forward_ref(yr, x->data, w->data, b->data, B, C, O);
    check_close("linear forward", y, out->data, out->n, ATOL, RTOL);
    check_close("linear forward vs naive", y, yr, out->n, ATOL, RTOL);
    linear_backward(gx, gw, gb, dout->data, x->data, w->data, B, C, O);
    check_close("linear dx", gx, dx->data, dx->n, ATOL, RTOL);
    check_close("linear dweight", gw, dw->data, dw->n, ATOL, RTOL);
    check_close("linear dbias", gb, db->data, db->n, ATOL, RTOL);
    free(y), free(yr), free(gx), free(gw), free(gb);
}

static void test_act(const char *name, ActKind kind, float slope) {
    const FixTensor *x = T("%s.x", name), *out = T("%s.out", name), *dout = T("%s.dout", name), *dx = T("%s.dx", name);
    if (!x || !out || !dout || !dx) return;
    float *y = zeros(x->n), *g = zeros(x->n);
    act_forward(y, x->data, x->n, kind, slope);
    act_backward(g, dout->data, x->data, x->n, kind, slope);
    char what[64];
    snprintf(what, sizeof(what), "%s forward", name);
    check_close(what, y, out->data, x->n, 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s backward", name);
    check_close(what, g, dx->data, x->n, 1e-6, 1e-5);
    free(y), free(g);
}

static void test_groupnorm(const char *name) {
    const FixTensor *x = T("%s.x", name), *w = T("%s.weight", name), *b = T("%s.bias", name), *out = T("%s.out", name),
                    *dout = T("%s.dout", name), *dx = T("%s.dx", name), *dw = T("%s.dweight", name),
                    *db = T("%s.dbias", name);
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], HW = (int)(x->shape[2] * x->shape[3]);
    int G = !strcmp(name, "groupnorm") ? 3 : C;
    float *y = zeros(x->n), *mean = zeros((size_t)B * G), *rstd = zeros((size_t)B * G);
    float *gx = zeros(x->n), *gw = zeros(w->n), *gb = zeros(b->n);
    groupnorm_forward(y, mean, rstd, x->data, w->data, b->data, B, C, HW, G, 1e-5f);
    groupnorm_backward(gx, gw, gb, dout->data, mean, rstd, x->data, w->data, B, C, HW, G);
    char what[64];
    snprintf(what, sizeof(what), "%s forward", name);
    check_close(what, y, out->data, x->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dx", name);
    check_close(what, gx, dx->data, x->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dweight", name);
    check_close(what, gw, dw->data, w->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dbias", name);
    check_close(what, gb, db->data, b->n, ATOL, RTOL);
    free(y), free(mean), free(rstd), free(gx), free(gw), free(gb);
}

static void test_layernorm(void) {
    const FixTensor *x = T("layernorm.x"), *w = T("layernorm.weight"), *b = T("layernorm.bias"),
                    *out = T("layernorm.out"), *dout = T("layernorm.dout"), *dx = T("layernorm.dx"),
                    *dw = T("layernorm.dweight"), *db = T("layernorm.dbias");
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db) return;
    int B = (int)x->shape[0], D = (int)(x->n / B);
    float *y = zeros(x->n), *mean = zeros(B), *rstd = zeros(B), *gx = zeros(x->n), *gw = zeros(w->n), *gb = zeros(b->n);
    layernorm_forward(y, mean, rstd, x->data, w->data, b->data, B, D, 1e-5f);
    layernorm_backward(gx, gw, gb, dout->data, mean, rstd, x->data, w->data, B, D);
    check_close("layernorm forward", y, out->data, x->n, ATOL, RTOL);
    check_close("layernorm dx", gx, dx->data, x->n, ATOL, RTOL);
    check_close("layernorm dweight", gw, dw->data, w->n, ATOL, RTOL);
    check_close("layernorm dbias", gb, db->data, b->n, ATOL, RTOL);
    free(y), free(mean), free(rstd), free(gx), free(gw), free(gb);
}

static void test_batchnorm(int train) {
    const char *name = train ? "batchnorm_train" : "batchnorm_eval";
    const FixTensor *x = T("%s.x", name), *w = T("%s.weight", name), *b = T("%s.bias", name), *out = T("%s.out", name),
                    *dout = T("%s.dout", name), *dx = T("%s.dx", name), *dw = T("%s.dweight", name),
                    *db = T("%s.dbias", name), *rm = T("%s.running_mean", name), *rv = T("%s.running_var", name);
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db || !rm || !rv) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], HW = (int)(x->shape[2] * x->shape[3]);
    float *y = zeros(x->n), *mean = zeros(C), *rstd = zeros(C), *gx = zeros(x->n), *gw = zeros(C), *gb = zeros(C);
    float *run_m = zeros(C), *run_v = zeros(C);
    const FixTensor *rm0 = train ? T("%s.running_mean0", name) : rm, *rv0 = train ? T("%s.running_var0", name) : rv;
    if (!rm0 || !rv0) return;
    memcpy(run_m, rm0->data, sizeof(float) * C);
    memcpy(run_v, rv0->data, sizeof(float) * C);
    batchnorm_forward(y, mean, rstd, run_m, run_v, x->data, w->data, b->data, B, C, HW, 1e-5f, 0.1f, train);
    batchnorm_backward(gx, gw, gb, dout->data, mean, rstd, x->data, w->data, B, C, HW, train);
    char what[64];
    snprintf(what, sizeof(what), "%s forward", name);
    check_close(what, y, out->data, x->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s running_mean", name);
    check_close(what, run_m, rm->data, C, 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s running_var", name);
    check_close(what, run_v, rv->data, C, 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s dx", name);
    check_close(what, gx, dx->data, x->n, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dweight", name);
    check_close(what, gw, dw->data, C, ATOL, RTOL);
    snprintf(what, sizeof(what), "%s dbias", name);
    check_close(what, gb, db->data, C, ATOL, RTOL);
    free(y), free(mean), free(rstd), free(gx), free(gw), free(gb), free(run_m), free(run_v);
}

static void test_pool(int maxpool, int k, int s) {
    char name[32];
    snprintf(name, sizeof(name), "%s_k%ds%d", maxpool ? "maxpool" : "avgpool", k, s);
    const FixTensor *x = T("%s.x", name), *out = T("%s.out", name), *dout = T("%s.dout", name), *dx = T("%s.dx", name);
    if (!x || !out || !dout || !dx) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    float *y = zeros(out->n), *g = zeros(x->n);
    int *am = calloc(out->n, sizeof(int));
    if (maxpool) {
        maxpool_forward(y, am, x->data, B, C, H, W, k, s);
        maxpool_backward(g, dout->data, am, B, C, H, W, k, s);
    } else {
        avgpool_forward(y, x->data, B, C, H, W, k, s);
        avgpool_backward(g, dout->data, B, C, H, W, k, s);
    }
    char what[64];
    snprintf(what, sizeof(what), "%s forward", name);
    check_close(what, y, out->data, out->n, 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s backward", name);
    check_close(what, g, dx->data, x->n, 1e-6, 1e-5);
    free(y), free(g), free(am);
}

static void test_crossentropy(void) {
    const FixTensor *z = T("ce_hard.logits"), *lab = T("ce_hard.labels"), *loss = T("ce_hard.loss"),
                    *dz = T("ce_hard.dlogits"), *t = T("ce_soft.targets"), *loss_s = T("ce_soft.loss"),
                    *dz_s = T("ce_soft.dlogits");
    if (!z || !lab || !loss || !dz || !t || !loss_s || !dz_s) return;
    int B = (int)z->shape[0], K = (int)z->shape[1];
    int labels[16];
    for (int i = 0; i < B; i++) labels[i] = (int)lab->data[i];
    float *g = zeros(z->n);
    float l = (float)crossentropy_forward_backward(g, z->data, labels, NULL, B, K);
    check_close("cross-entropy (hard) loss", &l, loss->data, 1, 1e-6, 1e-5);
    check_close("cross-entropy (hard) dlogits", g, dz->data, z->n, 1e-7, 1e-5);
    l = (float)crossentropy_forward_backward(g, z->data, NULL, t->data, B, K);
    check_close("cross-entropy (soft) loss", &l, loss_s->data, 1, 1e-6, 1e-5);
    check_close("cross-entropy (soft) dlogits", g, dz_s->data, z->n, 1e-7, 1e-5);
    // per-sample form = batch form times B
    float gs[16];
    float sum = 0;
    for (int i = 0; i < B; i++) {
        sum += (float)crossentropy_sample(gs, z->data + i * K, labels[i], K);
        for (int k = 0; k < K; k++) CHECK(fabsf(gs[k] - B * dz->data[i * K + k]) < 1e-6f, "per-sample CE gradient");
    }
    CHECK(fabsf(sum / B - loss->data[0]) < 1e-5f, "per-sample CE loss sums to the batch mean");
    free(g);
}

// ----------------------------------------------------------------------------
// whole models

typedef struct {
    const int *labels;
    int K;
} Ce;
static double ce_fn(void *ctx, int i, const float *logits, float *dlogits) {
    const Ce *c = ctx;
    return crossentropy_sample(dlogits, logits, c->labels[i], c->K);
}

static void test_model(const char *name, const char *norm, const char *act, const char *pool, int depth, int ch, int im) {
    ConvNetConfig cfg = {.width = 8, .depth = depth};
    snprintf(cfg.arch, sizeof(cfg.arch), "test-%s", name);
    snprintf(cfg.norm, sizeof(cfg.norm), "%s", norm);
    snprintf(cfg.act, sizeof(cfg.act), "%s", act);
    snprintf(cfg.pool, sizeof(cfg.pool), "%s", pool);
    Net net;
    Err e;
    if (convnet_build(&net, &cfg, ch, 10, im, im, &e)) {
        CHECK(0, "build %s: %s", name, e.msg);
        return;
    }
    TensorDict sd;
    tensordict_init(&sd);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s.sd.", name);
    for (int i = 0; i < F.n; i++) {
        if (strncmp(F.t[i].name, prefix, strlen(prefix))) continue;
        Tensor t;
        tensor_init(&t, DTYPE_F32, F.t[i].ndim, F.t[i].shape, NULL);
        memcpy(t.data, F.t[i].data, sizeof(float) * F.t[i].n);
        tensordict_add(&sd, F.t[i].name + strlen(prefix), &t, NULL);
    }
    int rc = net_load_state_dict(&net, &sd, 0, &e);
    CHECK(rc == 0, "load %s state_dict: %s", name, rc ? e.msg : "");
    const FixTensor *x = T("%s.x", name), *lg = T("%s.logits", name), *dx = T("%s.dx", name);
    if (rc || !x || !lg || !dx) goto done;
    int B = (int)x->shape[0];
    float logits[64], *g = zeros(x->n);
    net_forward(&net, x->data, B, logits, NULL);
    char what[64];
    snprintf(what, sizeof(what), "model %s logits", name);
    check_close(what, logits, lg->data, lg->n, 1e-4, 1e-4);
    int labels[2] = {1, 9};
    Ce ce = {labels, 10};
    NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = logits, .dx = g};
    CHECK(net_forward_backward(&net, x->data, B, &nb, &e) == 0, "forward_backward %s", name);
    snprintf(what, sizeof(what), "model %s dx", name);
    check_close(what, g, dx->data, dx->n, 1e-5, 1e-3);

    // pixel convention: the model normalises itself, gradients come back in pixel units
    float mean[4] = {0.4914f, 0.4822f, 0.4465f}, std[4] = {0.2023f, 0.1994f, 0.2010f};
    float *xp = zeros(x->n), *gp = zeros(x->n), *gexp = zeros(x->n);
    size_t plane = (size_t)im * im;
    for (size_t i = 0; i < x->n; i++) {
        int c = (int)((i / plane) % ch);
        xp[i] = x->data[i] * std[c] + mean[c];
        gexp[i] = dx->data[i] / std[c];
    }
    net_set_normalize(&net, 1, mean, std);
    nb.dx = gp;
    CHECK(net_forward_backward(&net, xp, B, &nb, &e) == 0, "forward_backward (pixel) %s", name);
    snprintf(what, sizeof(what), "model %s logits (pixel input)", name);
    check_close(what, logits, lg->data, lg->n, 1e-4, 1e-3);
    snprintf(what, sizeof(what), "model %s dx (pixel input)", name);
    check_close(what, gp, gexp, x->n, 1e-4, 2e-3);
    free(xp), free(gp), free(gexp);

    free(g);
done:
    tensordict_free(&sd);
    net_free(&net);
}

static double unit_fn(void *ctx, int i, const float *logits, float *dlogits) {
    for (int v = 0; v < 10; v++)
        for (int k = 0; k < 10; k++) dlogits[v * 10 + k] = v == k ? 1.0f : 0.0f;
    return 0.0;
}

// the fused per-sample driver and the layer-wise one agree, and so do thread counts
// forward + backward to the input (CE against label 0) of B samples
static int net_fb(Net *net, const float *x, int B, float *logits, float *dx) {
    static const int labels[8] = {0};
    Ce ce = {labels, 10};
    NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = logits, .dx = dx};
    Err e;
    return net_forward_backward(net, x, B, &nb, &e);
}

// the net runs its 128-channel convolutions by Winograd, forward and backward to the
// input, unless conv_im2col is set; the two agree to rounding, and changed weights are
// picked up by both passes (the transformed copies are not stale)
static void test_net_winograd(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNet", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    net_init_params(&net, 11);
    int B = 3;
    size_t in = net_in_size(&net);
    float *x = zeros(in * B), *gw = zeros(in * B), *gi = zeros(in * B), lw[30], li[30];
    Rng r;
    rng_init(&r, 5, 0);
    for (size_t i = 0; i < in * B; i++) x[i] = (float)rng_normal(&r);
    CHECK(net_forward(&net, x, B, lw, &e) == 0, "forward (Winograd)");
    int fwd = 0, bwd = 0;
    for (int l = 0; l < net.n_layers; l++)
        if (net.layers[l].kind == LAYER_CONV)
            fwd += net.conv[l].fwd == CONV_ALGO_WINOGRAD, bwd += net.conv[l].bwd == CONV_ALGO_WINOGRAD;
    CHECK(fwd == 2 && bwd == 2, "Winograd runs both passes of the two 128-channel convolutions of ConvNet (%d, %d)",
          fwd, bwd);
    net.conv_im2col = 1;
    CHECK(net_forward(&net, x, B, li, &e) == 0, "forward (im2col)");
    check_close("Winograd vs im2col logits", lw, li, 30, 1e-5, 1e-4);
    CHECK(net_fb(&net, x, B, li, gi) == 0, "forward + backward (im2col)");
    net.conv_im2col = 0;
    CHECK(net_fb(&net, x, B, lw, gw) == 0, "forward + backward (Winograd)");
    check_close("Winograd vs im2col input gradient", gw, gi, in * B, 1e-6, 1e-3);
    // a Winograd pass, then new weights: the next passes must see them
    for (int l = 0; l < net.n_layers; l++)
        if (net.layers[l].kind == LAYER_CONV)
            for (size_t i = 0; i < (size_t)net.layers[l].out_c * net.layers[l].in_c * 9; i++)
                net.params[net.layers[l].w + i] *= -1.5f;
    CHECK(net_forward(&net, x, B, lw, &e) == 0, "forward (Winograd, new weights)");
    CHECK(net_fb(&net, x, B, lw, gw) == 0, "forward + backward (Winograd, new weights)");
    net.conv_im2col = 1;
    CHECK(net_fb(&net, x, B, li, gi) == 0, "forward + backward (im2col, new weights)");
    check_close("Winograd vs im2col logits after a weight change", lw, li, 30, 1e-5, 1e-4);
    check_close("Winograd vs im2col input gradient after a weight change", gw, gi, in * B, 1e-6, 1e-3);
    // F(4x4) (BEARD_CONV=winograd4) on the 16x16 layer, F(2x2) kept on the 8x8 one
    net.conv_im2col = 0;
    net.conv_tile = 4;
    CHECK(net_fb(&net, x, B, lw, gw) == 0, "forward + backward (Winograd F(4x4))");
    int tiles[2] = {0, 0}, nt = 0;
    for (int l = 0; l < net.n_layers && nt < 2; l++)
        if (net.layers[l].kind == LAYER_CONV && net.conv[l].fwd == CONV_ALGO_WINOGRAD) tiles[nt++] = net.conv[l].tile;
    CHECK(tiles[0] == 4 && tiles[1] == 2, "winograd4: F(4x4) at 16x16, F(2x2) at 8x8 (tiles %d, %d)", tiles[0], tiles[1]);
    check_close("Winograd F(4x4) vs im2col logits", lw, li, 30, 3e-5, 1e-4);
    check_close("Winograd F(4x4) vs im2col input gradient", gw, gi, in * B, 1e-6, 1e-3);
    CHECK(net_forward(&net, x, B, li, &e) == 0, "forward (Winograd F(4x4))");
    CHECK(!memcmp(li, lw, sizeof(float) * 30), "winograd4: the forward-only and the forward + backward logits agree");
    net.conv_tile = 2;
    net_free(&net);
    free(x), free(gw), free(gi);
}

// the grouped-samples convolution (conv_batch.c) against the naive reference and the
// per-sample im2col kernel: strides, padding, 1x1, even kernels, non-square maps, channel
// counts off every vector width, batches of 1 and 7 (one group, several groups, a partial
// last group), on 1 and 2 threads (the groups in parallel, weight-gradient partials)
static void test_conv_batch(void) {
    // C, H, W, O, K, stride, pad
    int shapes[][7] = {{5, 9, 9, 6, 3, 2, 1},  {12, 8, 8, 16, 1, 1, 0}, {3, 4, 5, 7, 3, 1, 1},   {9, 16, 16, 4, 5, 1, 2},
                       {17, 6, 6, 10, 2, 2, 0}, {13, 7, 7, 11, 1, 2, 0}, {20, 4, 4, 24, 3, 1, 1}, {6, 3, 3, 5, 3, 1, 2}};
    Rng r;
    rng_init(&r, 9, 0);
    for (size_t t = 0; t < sizeof(shapes) / sizeof(shapes[0]); t++)
        for (int B = 1; B <= 7; B += 6)
            for (int threads = 1; threads <= 2; threads++) {
                int C = shapes[t][0], H = shapes[t][1], W = shapes[t][2], O = shapes[t][3], K = shapes[t][4];
                int s = shapes[t][5], p = shapes[t][6];
                int Ho = conv2d_out_size(H, K, s, p), Wo = conv2d_out_size(W, K, s, p);
                size_t nx = (size_t)B * C * H * W, nw = (size_t)O * C * K * K, ny = (size_t)B * O * Ho * Wo;
                float *x = zeros(nx), *w = zeros(nw), *b = zeros(O), *dy = zeros(ny);
                float *y = zeros(ny), *yr = zeros(ny), *ys = zeros(ny);
                float *dx = zeros(nx), *dxr = zeros(nx), *dxs = zeros(nx);
                float *dw = zeros(nw), *dwr = zeros(nw), *dws = zeros(nw), *db = zeros(O), *dbr = zeros(O), *dbs = zeros(O);
                float bound = 1.0f / sqrtf((float)C * K * K);
                for (size_t i = 0; i < nx; i++) x[i] = 2 * rng_uniform(&r) - 1;
                for (size_t i = 0; i < nw; i++) w[i] = bound * (2 * rng_uniform(&r) - 1);
                for (int i = 0; i < O; i++) b[i] = bound * (2 * rng_uniform(&r) - 1);
                for (size_t i = 0; i < ny; i++) dy[i] = 2 * rng_uniform(&r) - 1;
                for (size_t i = 0; i < nx; i++) dx[i] = dxr[i] = dxs[i] = 0.25f; // backward adds into din
                parallel_set_threads(threads);
                conv2d_batch_forward(y, x, w, b, B, C, H, W, O, K, s, p);
                conv2d_batch_backward(dx, dw, db, dy, x, w, B, C, H, W, O, K, s, p);
                conv2d_forward(ys, x, w, b, B, C, H, W, O, K, s, p);
                conv2d_backward(dxs, dws, dbs, dy, x, w, B, C, H, W, O, K, s, p);
                conv2d_forward_ref(yr, x, w, b, B, C, H, W, O, K, s, p);
                conv2d_backward_ref(dxr, dwr, dbr, dy, x, w, B, C, H, W, O, K, s, p);
                char what[128];
#define CB_CHECK(name, got, ref, n)                                                                                    \
    snprintf(what, sizeof(what), "conv_batch C%d %dx%d O%d k%d s%d p%d B%d %dt: %s", C, H, W, O, K, s, p, B, threads, \
             name);                                                                                                    \
    check_close(what, got, ref, n, ATOL, RTOL)
                CB_CHECK("forward vs naive", y, yr, ny);
                CB_CHECK("forward vs per-sample", y, ys, ny);
                CB_CHECK("dx vs naive", dx, dxr, nx);
                CB_CHECK("dx vs per-sample", dx, dxs, nx);
                CB_CHECK("dweight vs naive", dw, dwr, nw);
                CB_CHECK("dweight vs per-sample", dw, dws, nw);
                CB_CHECK("dbias vs naive", db, dbr, (size_t)O);
                // only the input gradient wanted, then only the parameter gradients
                memset(dxs, 0, sizeof(float) * nx), memset(dws, 0, sizeof(float) * nw), memset(dbs, 0, sizeof(float) * O);
                conv2d_batch_backward(dxs, NULL, NULL, dy, x, w, B, C, H, W, O, K, s, p);
                conv2d_batch_backward(NULL, dws, dbs, dy, x, w, B, C, H, W, O, K, s, p);
                for (size_t i = 0; i < nx; i++) dxr[i] -= 0.25f;
                CB_CHECK("dx alone vs naive", dxs, dxr, nx);
                CB_CHECK("dweight alone vs naive", dws, dwr, nw);
                CB_CHECK("dbias alone vs naive", dbs, dbr, (size_t)O);
#undef CB_CHECK
                free(x), free(w), free(b), free(dy), free(y), free(yr), free(ys), free(dx), free(dxr), free(dxs);
                free(dw), free(dwr), free(dws), free(db), free(dbr), free(dbs);
            }
    parallel_set_threads(0);
    CHECK(conv_batch_applies(512, 512, 3, 4, 4) && conv_batch_applies(256, 512, 1, 4, 4) &&
              conv_batch_applies(512, 512, 3, 2, 2) && !conv_batch_applies(128, 128, 3, 8, 8) &&
              !conv_batch_applies(64, 64, 3, 32, 32),
          "conv_batch takes output maps of 4x4 and less (not ConvNet's, 8x8 and up)");
    ConvPlan pl;
    conv_plan_init(&pl, 512, 4, 4, 512, 3, 1, 1, 0, 2);
    // in groups of samples, except without 16-lane vectors, where Winograd takes the batch
    CHECK(pl.batch == !winograd_small_maps() && pl.fwd == CONV_ALGO_WINOGRAD,
          "ConvPlan runs 512 channels at 4x4 %s (Winograd for one)",
          winograd_small_maps() ? "by Winograd (no 16-lane vectors)" : "in groups of samples");
    conv_plan_init(&pl, 512, 4, 4, 512, 3, 1, 1, 1, 2);
    CHECK(!pl.batch && pl.fwd == CONV_ALGO_IM2COL && pl.bwd == CONV_ALGO_IM2COL, "BEARD_CONV=im2col: per-sample im2col");
}

// the plans of a VGG11's convolutions with maps of 4x4 and less set to run in groups of
// samples, or (batched 0) by the per-sample kernels (Winograd), which also takes the fused
// driver back to one sample at a time; returns how many ran in groups before
static int vgg_batch_plans(Net *net, int batched) {
    int n = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        if (L->kind != LAYER_CONV || L->out_h * L->out_w > 16) continue;
        n += net->conv[l].batch;
        net->conv[l].batch = batched;
    }
    return n;
}

// VGG11BN (eval mode), whose four 512-channel layers (4x4 and 2x2 maps) run in groups of
// samples and make the fused driver run chunks of samples through the graph, against the
// same net with those layers by the per-sample kernels (Winograd), one sample at a time:
// logits, input gradient, parameter gradients, on 1 and 2 threads, with a batch that
// leaves a remainder sample. (VGG11 itself normalises each channel of a 2x2 map over its
// 4 values, which amplifies the GEMMs' rounding into gradients ~1e-3 apart.)
static void test_net_conv_batch(void) {
    Net net;
    Err e;
    if (model_create(&net, "VGG11BN", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    net_init_params(&net, 13);
    if (net_alloc_grads(&net, &e)) {
        CHECK(0, "%s", e.msg);
        net_free(&net);
        return;
    }
    int B = 5;
    size_t in = net_in_size(&net), np = net.n_params;
    float *x = zeros(in * B), *g1 = zeros(in * B), *g2 = zeros(in * B), *pg = zeros(np), l1[50], l2[50];
    Rng r;
    rng_init(&r, 6, 0);
    for (size_t i = 0; i < in * B; i++) x[i] = (float)rng_uniform(&r);
    static const int labels[5] = {1, 2, 3, 4, 5};
    Ce ce = {labels, 10};
    for (int threads = 1; threads <= 2; threads++) {
        parallel_set_threads(threads);
        CHECK(net_forward(&net, x, B, l1, &e) == 0, "VGG11BN forward");
        // the plans' choice; then grouped by hand where it is Winograd, so that the groups
        // are tested on every host
        int want = winograd_small_maps() ? 0 : 4;
        CHECK(vgg_batch_plans(&net, 1) == want, "VGG11BN runs %d of its four 512-channel convolutions in groups of samples",
              want);
        CHECK(net_forward(&net, x, B, l1, &e) == 0, "VGG11BN forward (grouped)");
        vgg_batch_plans(&net, 0);
        CHECK(net_forward(&net, x, B, l2, &e) == 0, "VGG11BN forward (per sample)");
        check_close("VGG11BN logits: grouped vs per sample", l1, l2, 10 * B, 1e-6, 1e-5);
        NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = l2, .dx = g2};
        CHECK(net_forward_backward(&net, x, B, &nb, &e) == 0, "VGG11BN forward + backward (per sample)");
        vgg_batch_plans(&net, 1);
        nb.logits = l1, nb.dx = g1;
        CHECK(net_forward_backward(&net, x, B, &nb, &e) == 0, "VGG11BN forward + backward");
        check_close("VGG11BN input gradient: grouped vs per sample", g1, g2, in * B, 1e-7, 1e-4);
        NetBackward tb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .param_grads = 1};
        net_zero_grads(&net);
        CHECK(net_forward_backward(&net, x, B, &tb, &e) == 0, "VGG11BN parameter gradients");
        memcpy(pg, net.grads, sizeof(float) * np);
        vgg_batch_plans(&net, 0);
        net_zero_grads(&net);
        CHECK(net_forward_backward(&net, x, B, &tb, &e) == 0, "VGG11BN parameter gradients (per sample)");
        check_close("VGG11BN parameter gradients: grouped vs per sample", pg, net.grads, np, 1e-7, 1e-4);
        vgg_batch_plans(&net, 1);
        // BEARD_CONV=im2col (conv_im2col): every layer by the per-sample im2col kernel
        net.conv_im2col = 1;
        CHECK(net_forward(&net, x, B, l2, &e) == 0, "VGG11BN forward (im2col)");
        int im2col = 0, convs = 0;
        for (int l = 0; l < net.n_layers; l++)
            if (net.layers[l].kind == LAYER_CONV)
                convs++, im2col += !net.conv[l].batch && net.conv[l].fwd == CONV_ALGO_IM2COL && net.conv[l].bwd == CONV_ALGO_IM2COL;
        CHECK(im2col == convs, "BEARD_CONV=im2col runs all %d convolutions of VGG11BN by im2col (%d)", convs, im2col);
        check_close("VGG11BN logits: grouped vs BEARD_CONV=im2col", l1, l2, 10 * B, 1e-5, 1e-4);
        net.conv_im2col = 0;
    }
    parallel_set_threads(0);
    net_free(&net);
    free(x), free(g1), free(g2), free(pg);
}

// a sample's logits and input gradient do not depend on its batch: run one per thread, or
// alone with the threads sharing it (a batch of one, the remainder of an odd batch), and
// in chunks of 1 to 3 samples a thread (ConvNet's default: 2)
static void test_batch_independence(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNet", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    net_init_params(&net, 17);
    int B = 7;
    size_t in = net_in_size(&net);
    float *x = zeros(in * B), *g = zeros(in * B), *g1 = zeros(in), lb[70], lf[70], l1[10];
    Rng r;
    rng_init(&r, 21, 0);
    for (size_t i = 0; i < in * B; i++) x[i] = (float)rng_uniform(&r);
    for (int threads = 1; threads <= 2; threads++) {
        parallel_set_threads(threads);
        for (int nb = 1; nb <= B; nb++) {
            CHECK(net_forward(&net, x, nb, lf, &e) == 0 && net_fb(&net, x, nb, lb, g) == 0, "batch of %d", nb);
            int same = 1;
            for (int b = 0; b < nb; b++) {
                float z1[10];
                net_forward(&net, x + b * in, 1, z1, &e);
                net_fb(&net, x + b * in, 1, l1, g1);
                same &= !memcmp(z1, lb + b * 10, sizeof(z1)) && !memcmp(l1, lb + b * 10, sizeof(l1)) &&
                        !memcmp(z1, lf + b * 10, sizeof(z1)) && !memcmp(g1, g + b * in, sizeof(float) * in);
            }
            CHECK(same, "%d threads, batch of %d: every sample's logits and gradient equal its batch-of-one run",
                  threads, nb);
            for (int chunk = 1; chunk <= 3; chunk++) {
                net.chunk = chunk;
                float lc[70], *gc = zeros(in * B);
                CHECK(net_forward(&net, x, nb, lc, &e) == 0 && !memcmp(lc, lf, sizeof(float) * 10 * nb),
                      "%d threads, batch of %d, forward in chunks of %d: the same logits", threads, nb, chunk);
                CHECK(net_fb(&net, x, nb, lc, gc) == 0 && !memcmp(lc, lb, sizeof(float) * 10 * nb) &&
                          !memcmp(gc, g, sizeof(float) * in * nb),
                      "%d threads, batch of %d, forward + backward in chunks of %d: the same logits and gradients",
                      threads, nb, chunk);
                free(gc);
            }
            net.chunk = 0;
        }
    }
    parallel_set_threads(0);
    net_free(&net);
    free(x), free(g), free(g1);
}

static void test_drivers(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNetBN", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    net_init_params(&net, 7);
    int B = 5;
    size_t in = net_in_size(&net);
    float *x = zeros(in * B), *g1 = zeros(in * B), *g2 = zeros(in * B), l1[50], l2[50];
    Rng r;
    rng_init(&r, 3, 0);
    for (size_t i = 0; i < in * B; i++) x[i] = (float)rng_normal(&r);
    int labels[5] = {0, 1, 2, 3, 4};
    Ce ce = {labels, 10};
    // eval mode: fused driver; with 1 and 2 threads the results are identical
    NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = l1, .dx = g1};
    parallel_set_threads(1);
    net_forward_backward(&net, x, B, &nb, &e);
    parallel_set_threads(2);
    nb.logits = l2, nb.dx = g2;
    net_forward_backward(&net, x, B, &nb, &e);
    CHECK(!memcmp(l1, l2, sizeof(float) * B * 10) && !memcmp(g1, g2, sizeof(float) * in * B),
          "fused driver: 1 and 2 threads give identical results");
    // net_forward gives the same logits
    net_forward(&net, x, B, l2, &e);
    CHECK(!memcmp(l1, l2, sizeof(float) * B * 10), "net_forward equals the forward of net_forward_backward");
    // Jacobian: nvec = 10 unit vectors; the CE gradient must equal sum_k p_k J_k - J_y
    float *jac = zeros(in * B * 10);
    NetBackward nj = {.loss = unit_fn, .ctx = NULL, .nvec = 10, .dx = jac};
    CHECK(net_forward_backward(&net, x, B, &nj, &e) == 0, "Jacobian pass");
    float *comb = zeros(in * B);
    for (int b = 0; b < B; b++) {
        float p[10];
        crossentropy_sample(p, l1 + b * 10, 0, 10);
        p[0] += 1.0f; // softmax
        for (int k = 0; k < 10; k++) {
            float wk = p[k] - (k == labels[b] ? 1.0f : 0.0f);
            for (size_t i = 0; i < in; i++) comb[b * in + i] += wk * jac[((size_t)b * 10 + k) * in + i];
        }
    }
    check_close("Jacobian rows combine into the CE gradient", comb, g1, in * B, 1e-5, 1e-3);
    free(jac), free(comb);
    free(x), free(g1), free(g2);
    net_free(&net);
}

// bilinear resizing: x0.5 of a plane is the mean of its 2x2 blocks; x2 of a constant is
// the constant; backward is the transpose (<up(x), g> = <x, up^T(g)>), also for a quadrant
// read and written in place with a row stride
// torch.relu(nan) is nan: a non-finite network must not look finite after a ReLU
static void test_relu_nan(void) {
    float in[3] = {NAN, -1.0f, 2.0f}, out[3];
    act_forward(out, in, 3, ACT_RELU, 0.0f);
    CHECK(isnan(out[0]) && out[1] == 0.0f && out[2] == 2.0f, "ReLU propagates NaN");
}

static void test_bilinear(void) {
    float x[36], big[144], g[144], dx[36], small[9];
    Rng r;
    rng_init(&r, 21, 0);
    for (int i = 0; i < 36; i++) x[i] = (float)rng_normal(&r);
    for (int i = 0; i < 144; i++) g[i] = (float)rng_normal(&r);
    bilinear_forward(small, x, 6, 6, 6, 3, 3, 2.0f, 2.0f);
    float worst = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            float m = ((x[2 * i * 6 + 2 * j] + x[2 * i * 6 + 2 * j + 1]) * 0.5f +
                       (x[(2 * i + 1) * 6 + 2 * j] + x[(2 * i + 1) * 6 + 2 * j + 1]) * 0.5f) * 0.5f;
            worst = fmaxf(worst, fabsf(m - small[i * 3 + j]));
        }
    CHECK(worst < 1e-6f, "x0.5 is the 2x2 block mean (worst %g)", worst);
    float c[4] = {2.5f, 2.5f, 2.5f, 2.5f}, cu[16];
    bilinear_forward(cu, c, 2, 2, 2, 4, 4, 0.5f, 0.5f);
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= cu[i] == 2.5f;
    CHECK(ok, "x2 of a constant plane is constant");
    // the top-right 3x3 quadrant of the 6x6 plane, doubled
    bilinear_forward(big, x + 3, 3, 3, 6, 6, 6, 0.5f, 0.5f);
    memset(dx, 0, sizeof(dx));
    bilinear_backward(dx + 3, g, 3, 3, 6, 6, 6, 0.5f, 0.5f);
    double a = 0, b = 0;
    for (int i = 0; i < 36; i++) a += (double)big[i] * g[i];
    for (int i = 0; i < 36; i++) b += (double)x[i] * dx[i];
    CHECK(fabs(a - b) < 1e-5 * (fabs(a) + 1), "bilinear adjoint identity: %g vs %g", a, b);
    int outside = 1;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) outside &= dx[i * 6 + j] == 0.0f;
    CHECK(outside, "backward writes only the quadrant");
}

static void test_sgd(void) {
    // two steps by hand: p=1, g=0.5, lr 0.1, momentum 0.9, wd 0.01
    Optim o;
    float p = 1.0f, g = 0.5f;
    optim_init(&o, OPTIM_SGD, 1, 0.1f, 0.9f, 0.01f);
    optim_step(&o, &p, &g);
    float d1 = 0.5f + 0.01f * 1.0f;
    float p1 = 1.0f - 0.1f * d1;
    CHECK(fabsf(p - p1) < 1e-7f, "SGD first step %g vs %g", p, p1);
    optim_step(&o, &p, &g);
    float d2 = 0.5f + 0.01f * p1, buf = 0.9f * d1 + d2;
    CHECK(fabsf(p - (p1 - 0.1f * buf)) < 1e-7f, "SGD momentum step");
    optim_free(&o);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    if (fixture_load("tests/fixtures/nn_layers.bin", &F) == 0) {
        int convs[][3] = {{3, 1, 1}, {3, 2, 1}, {3, 1, 0}, {1, 1, 0}, {5, 2, 2}, {3, 1, 3}, {2, 2, 0}};
        for (int i = 0; i < 7; i++) test_conv(convs[i][0], convs[i][1], convs[i][2]);
        test_linear();
        test_act("relu", ACT_RELU, 0);
        test_act("leaky_relu", ACT_LEAKY_RELU, 0.01f);
        test_act("sigmoid", ACT_SIGMOID, 0);
        test_act("silu", ACT_SILU, 0);
        test_act("gelu", ACT_GELU, 0);
        test_groupnorm("groupnorm");
        test_groupnorm("instancenorm");
        test_layernorm();
        test_batchnorm(1);
        test_batchnorm(0);
        int pools[][2] = {{2, 2}, {3, 2}, {3, 1}};
        for (int i = 0; i < 3; i++) test_pool(0, pools[i][0], pools[i][1]), test_pool(1, pools[i][0], pools[i][1]);
        test_crossentropy();
        fixture_free(&F);
    }
    if (fixture_load("tests/fixtures/nn_models.bin", &F) == 0) {
        test_model("default", "instancenorm", "relu", "avgpooling", 3, 3, 32);
        test_model("bn", "batchnorm", "relu", "avgpooling", 3, 3, 32);
        test_model("ln", "layernorm", "relu", "avgpooling", 3, 3, 32);
        test_model("gn", "groupnorm", "relu", "avgpooling", 3, 3, 32);
        test_model("nn", "none", "relu", "avgpooling", 3, 3, 32);
        test_model("mp", "instancenorm", "relu", "maxpooling", 3, 3, 32);
        test_model("np", "instancenorm", "relu", "none", 2, 3, 16);
        test_model("as", "instancenorm", "sigmoid", "avgpooling", 3, 3, 32);
        test_model("al", "instancenorm", "leakyrelu", "avgpooling", 3, 3, 32);
        test_model("swish", "instancenorm", "swish", "avgpooling", 3, 3, 32);
        test_model("d1", "instancenorm", "relu", "avgpooling", 1, 3, 32);
        test_model("mnist", "instancenorm", "relu", "avgpooling", 3, 1, 28);
        fixture_free(&F);
    }
    test_winograd(2);
    test_winograd(4);
    test_winograd_backward(2);
    test_winograd_backward(4);
    test_conv_direct();
    test_gn_relu_pool();
    test_net_winograd();
    test_conv_batch();
    test_net_conv_batch();
    test_batch_independence();
    test_drivers();
    test_relu_nan();
    test_bilinear();
    test_sgd();
    return test_done("test_nn");
}
