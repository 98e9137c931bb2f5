/*
 * test_augment.c: the decoupled methods' augmentations (src/data/augment.c) against
 * torchvision/torch on fixed draws (tests/fixtures/decoupled/augment.bin, from
 * tests/scripts/gen_decoupled_fixtures.py): forward outputs and autograd's input gradients,
 * the optimised resized crop against its naive reference, the adjoint identity
 * <aug(x), g> = <x, aug^T(g)> for every op, and the parameter draws (bounds, RandomResizedCrop's
 * scale range, CutMix's box, the beta draw's mean).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data/augment.h"
#include "harness.h"

static Fixture F;
#define T(...) fixture_getf(&F, __VA_ARGS__)

static int B, C, H, W;

// out from the op, then din = op^T(gout) added onto a constant (backward adds)
typedef void (*Fwd)(float *out, const float *in, const int *p);
typedef void (*Bwd)(float *din, const float *dout, const int *p);

static void check_op(const char *name, Fwd f, Bwd b, const int *p, size_t nout) {
    const FixTensor *x = T("x"), *out = T("%s_out", name), *gout = T("%s_gout", name), *gx = T("%s_gx", name);
    if (!x || !out || !gout || !gx) return;
    CHECK(out->n == nout, "%s: fixture has %zu outputs, expected %zu", name, out->n, nout);
    if (out->n != nout) return;
    float *y = calloc(nout, sizeof(float)), *g = calloc(x->n, sizeof(float));
    f(y, x->data, p);
    char what[64];
    snprintf(what, sizeof(what), "%s forward", name);
    check_close(what, y, out->data, nout, 2e-6, 2e-6);
    for (size_t i = 0; i < x->n; i++) g[i] = 0.5f;
    b(g, gout->data, p);
    for (size_t i = 0; i < x->n; i++) g[i] -= 0.5f;
    snprintf(what, sizeof(what), "%s backward", name);
    check_close(what, g, gx->data, x->n, 1e-5, 1e-5);
    // adjoint identity, in double
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < nout; i++) lhs += (double)y[i] * gout->data[i];
    for (size_t i = 0; i < x->n; i++) rhs += (double)x->data[i] * (g[i]);
    CHECK(fabs(lhs - rhs) <= 1e-4 * (1 + fabs(lhs)), "%s: <f(x), g> = %.8g but <x, f^T(g)> = %.8g", name, lhs, rhs);
    free(y), free(g);
}

static void rrc_f(float *o, const float *i, const int *p) {
    augment_resized_crop_forward(o, i, B, C, H, W, p[0], p[1], p[2], p[3], H, W);
}
static void rrc_b(float *d, const float *g, const int *p) {
    augment_resized_crop_backward(d, g, B, C, H, W, p[0], p[1], p[2], p[3], H, W);
}
static void roll_f(float *o, const float *i, const int *p) { augment_roll_forward(o, i, B, C, H, W, p[0], p[1]); }
static void roll_b(float *d, const float *g, const int *p) { augment_roll_backward(d, g, B, C, H, W, p[0], p[1]); }
static void crop_f(float *o, const float *i, const int *p) {
    augment_crop_pad_forward(o, i, B, C, H, W, 4, p[0], p[1], 0.0f);
}
static void crop_b(float *d, const float *g, const int *p) { augment_crop_pad_backward(d, g, B, C, H, W, 4, p[0], p[1]); }
static void aap_f(float *o, const float *i, const int *p) {
    augment_adaptive_avgpool_forward(o, i, B, C, H, W, p[0], p[1]);
}
static void aap_b(float *d, const float *g, const int *p) {
    augment_adaptive_avgpool_backward(d, g, B, C, H, W, p[0], p[1]);
}
static void interp_f(float *o, const float *i, const int *p) {
    augment_resized_crop_forward(o, i, B, C, H, W, 0, 0, H, W, 16, 12);
}
static void interp_b(float *d, const float *g, const int *p) {
    augment_resized_crop_backward(d, g, B, C, H, W, 0, 0, H, W, 16, 12);
}

static void ints(const char *name, int *p, int n) {
    const FixTensor *t = T("%s", name);
    for (int i = 0; i < n; i++) p[i] = t && (size_t)i < t->n ? (int)t->data[i] : 0;
}

static void test_against_torch(void) {
    const FixTensor *x = T("x");
    if (!x) return;
    B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    size_t n = x->n;
    char nm[32];
    int p[4];
    for (int k = 0; k < 4; k++) {
        snprintf(nm, sizeof(nm), "rrc%d_box", k);
        ints(nm, p, 4);
        snprintf(nm, sizeof(nm), "rrc%d", k);
        check_op(nm, rrc_f, rrc_b, p, n);
        float *a = calloc(n, sizeof(float)), *r = calloc(n, sizeof(float));
        augment_resized_crop_forward(a, x->data, B, C, H, W, p[0], p[1], p[2], p[3], H, W);
        augment_resized_crop_forward_ref(r, x->data, B, C, H, W, p[0], p[1], p[2], p[3], H, W);
        CHECK(!memcmp(a, r, sizeof(float) * n), "resized crop %d: optimised and reference differ", k);
        free(a), free(r);
    }
    for (int k = 0; k < 3; k++) {
        snprintf(nm, sizeof(nm), "roll%d_shift", k);
        ints(nm, p, 2);
        snprintf(nm, sizeof(nm), "roll%d", k);
        check_op(nm, roll_f, roll_b, p, n);
        snprintf(nm, sizeof(nm), "crop%d_ij", k);
        ints(nm, p, 2);
        snprintf(nm, sizeof(nm), "crop%d", k);
        check_op(nm, crop_f, crop_b, p, n);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(nm, sizeof(nm), "aap%d_size", k);
        ints(nm, p, 2);
        snprintf(nm, sizeof(nm), "aap%d", k);
        check_op(nm, aap_f, aap_b, p, (size_t)B * C * p[0] * p[1]);
    }
    check_op("interp", interp_f, interp_b, p, (size_t)B * C * 16 * 12);
    const FixTensor *fo = T("flip_out");
    if (fo) {
        float *y = calloc(n, sizeof(float)), *g = calloc(n, sizeof(float));
        augment_hflip_forward(y, x->data, B, C, H, W);
        check_close("hflip forward", y, fo->data, n, 0, 0);
        augment_hflip_backward(g, y, B, C, H, W); // the flip is its own adjoint and inverse
        check_close("hflip backward", g, x->data, n, 0, 0);
        free(y), free(g);
    }
}

static void test_draws(void) {
    Rng r;
    rng_init(&r, 7, 1);
    int box[4], small = 0, ok = 1;
    double area_sum = 0;
    for (int i = 0; i < 4000; i++) {
        augment_rrc_draw(&r, 32, 32, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, box);
        ok &= box[2] > 0 && box[3] > 0 && box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= 32 && box[1] + box[3] <= 32;
        double a = box[2] * box[3] / 1024.0;
        area_sum += a;
        small += a < 0.3;
    }
    CHECK(ok, "RandomResizedCrop boxes leave the image");
    // scale ~ U(0.08, 1) (attempts outside the image are redrawn, which trims the top a little)
    CHECK(area_sum / 4000 > 0.45 && area_sum / 4000 < 0.56, "mean crop area %.3f, expected about 0.5",
          area_sum / 4000);
    CHECK(small > 800, "only %d of 4000 crops below 30%% of the area", small);
    int full = 1;
    for (int i = 0; i < 50; i++) {
        augment_rrc_draw(&r, 32, 32, 1.0, 1.0, 3.0 / 4.0, 4.0 / 3.0, box);
        full &= box[2] * box[3] >= 900; // scale 1: the whole area, up to the aspect rounding
    }
    CHECK(full, "scale (1, 1) crops less than the whole image");
    int lo = 99, hi = -1;
    for (int i = 0; i < 500; i++) {
        int v = augment_randint(&r, 0, 4);
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    CHECK(lo == 0 && hi == 4, "randint(0, 4) ranged over [%d, %d]", lo, hi);
    double s = 0;
    for (int i = 0; i < 4000; i++) s += augment_beta(&r, 0.8, 0.8);
    CHECK(fabs(s / 4000 - 0.5) < 0.03, "beta(0.8, 0.8) has mean %.3f", s / 4000);
    for (int i = 0; i < 200; i++) {
        augment_cutmix_box(&r, 16, 12, augment_beta(&r, 1, 1), box);
        ok &= box[0] >= 0 && box[0] <= box[2] && box[2] <= 16 && box[1] >= 0 && box[1] <= box[3] && box[3] <= 12;
    }
    CHECK(ok, "CutMix boxes leave the image");
    // mixup and CutMix on a known batch
    float x[2 * 1 * 2 * 2] = {1, 2, 3, 4, 10, 20, 30, 40}, out[8];
    int perm[2] = {1, 0};
    augment_mixup(out, x, perm, 2, 4, 0.25f);
    CHECK(fabs(out[0] - (0.25f * 1 + 0.75f * 10)) < 1e-6 && fabs(out[7] - (0.25f * 40 + 0.75f * 4)) < 1e-6,
          "mixup values");
    int cb[4] = {1, 0, 2, 1}; // rows [1, 2), columns [0, 1)
    augment_cutmix(out, x, perm, 2, 1, 2, 2, cb);
    CHECK(out[0] == 1 && out[1] == 2 && out[2] == 30 && out[3] == 4 && out[6] == 3, "CutMix pastes the box only");
}

int main(void) {
    if (fixture_load("tests/fixtures/decoupled/augment.bin", &F) == 0) {
        test_against_torch();
        fixture_free(&F);
    }
    test_draws();
    return test_done("test_augment");
}
