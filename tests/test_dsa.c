/*
 * test_dsa.c: the DSA ops (src/data/dsa.c) against DC's PyTorch code on fixed random
 * parameters (tests/fixtures/train/dsa.bin, from tests/scripts/gen_dsa_fixtures.py): each op's
 * forward output and autograd's input gradient. The backward pass also gets a
 * finite-difference check (central differences of <aug(x), dout> accumulated in double)
 * and the adjoint identity <aug(x), g> = <x, aug^T(g)>. Then the random draws: ranges,
 * frequencies, the Siamese option and determinism, and strategy parsing.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data/dsa.h"
#include "harness.h"

static Fixture F;

#define T(...) fixture_getf(&F, __VA_ARGS__)

// the fixture's per-sample draws into DsaSamples
static int load_samples(const char *c, DsaSample *s, int B) {
    const FixTensor *br = T("%s.p.brightness", c), *sa = T("%s.p.saturation", c), *co = T("%s.p.contrast", c),
                    *cx = T("%s.p.crop_x", c), *cy = T("%s.p.crop_y", c), *ux = T("%s.p.cutout_x", c),
                    *uy = T("%s.p.cutout_y", c), *fl = T("%s.p.flip", c), *sx = T("%s.p.scale_x", c),
                    *sy = T("%s.p.scale_y", c), *an = T("%s.p.angle", c);
    if (!br || !sa || !co || !cx || !cy || !ux || !uy || !fl || !sx || !sy || !an) return -1;
    for (int b = 0; b < B; b++) {
        s[b] = (DsaSample){.brightness = br->data[b], .saturation = sa->data[b], .contrast = co->data[b],
                           .crop_x = (int)cx->data[b], .crop_y = (int)cy->data[b], .cutout_x = (int)ux->data[b],
                           .cutout_y = (int)uy->data[b], .flip = fl->data[b] > 0, .scale_x = sx->data[b],
                           .scale_y = sy->data[b], .angle = an->data[b]};
    }
    return 0;
}

static double dot_aug(const float *x, const float *g, const DsaDraw *d, const DsaConfig *cfg, int C, int H, int W,
                      float *tmp) {
    size_t n = (size_t)d->B * C * H * W;
    dsa_forward(tmp, x, d, cfg, C, H, W);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)tmp[i] * g[i];
    return s;
}

static void test_op(DsaOp op, const char *caseName, int backward) {
    const FixTensor *x = T("%s.x", caseName), *out = T("%s.%s.out", caseName, dsa_op_name(op));
    if (!x || !out) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    DsaSample s[8];
    if (B > 8 || load_samples(caseName, s, B)) {
        CHECK(0, "bad fixture parameters for %s", caseName);
        return;
    }
    DsaConfig cfg;
    dsa_config_default(&cfg);
    DsaDraw d = {.op = op, .B = B, .s = s};
    size_t n = x->n;
    float *y = calloc(n, sizeof(float));
    char what[96];
    dsa_forward(y, x->data, &d, &cfg, C, H, W);
    snprintf(what, sizeof(what), "%s %s forward vs PyTorch", dsa_op_name(op), caseName);
    // scale/rotate: PyTorch's sampling grid (linspace(-1, 1, W) * (W - 1) / W) differs from
    // the correctly rounded one by a few ulps, which bilinear sampling turns into ~1e-5
    double atol = op == DSA_SCALE || op == DSA_ROTATE ? 1.5e-5 : 2e-6;
    check_close(what, y, out->data, n, atol, 2e-6);
    if (!backward) {
        free(y);
        return;
    }
    const FixTensor *dout = T("%s.dout", caseName), *dx = T("%s.%s.dx", caseName, dsa_op_name(op));
    if (!dout || !dx) {
        free(y);
        return;
    }
    float *g = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = 0.25f; // backward adds
    dsa_backward(g, dout->data, &d, &cfg, C, H, W);
    for (size_t i = 0; i < n; i++) g[i] -= 0.25f;
    snprintf(what, sizeof(what), "%s %s backward vs autograd", dsa_op_name(op), caseName);
    check_close(what, g, dx->data, n, 1e-5, 1e-5);

    // central differences of f(x) = <aug(x), dout> at every input value
    float *xp = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    double *fd = malloc(n * sizeof(double)), *an = malloc(n * sizeof(double));
    memcpy(xp, x->data, n * sizeof(float));
    const float h = 0.5f; // every op is linear in x: a large step loses no accuracy
    for (size_t i = 0; i < n; i++) {
        float v = xp[i];
        xp[i] = v + h;
        double fp = dot_aug(xp, dout->data, &d, &cfg, C, H, W, tmp);
        xp[i] = v - h;
        double fm = dot_aug(xp, dout->data, &d, &cfg, C, H, W, tmp);
        xp[i] = v;
        fd[i] = (fp - fm) / (2.0 * h);
        an[i] = g[i];
    }
    snprintf(what, sizeof(what), "%s %s backward vs finite differences", dsa_op_name(op), caseName);
    check_close_d(what, an, fd, n, 1e-4, 1e-4);

    // adjoint identity on the whole batch (aug is affine: brightness adds a constant)
    float *zero = calloc(n, sizeof(float));
    double lhs = dot_aug(x->data, dout->data, &d, &cfg, C, H, W, tmp) - dot_aug(zero, dout->data, &d, &cfg, C, H, W, tmp);
    double rhs = 0.0;
    free(zero);
    for (size_t i = 0; i < n; i++) rhs += (double)x->data[i] * g[i];
    CHECK(fabs(lhs - rhs) <= 1e-4 * (1.0 + fabs(lhs)), "%s %s: <aug x, g> = %.9g but <x, aug^T g> = %.9g",
          dsa_op_name(op), caseName, lhs, rhs);
    free(y), free(g), free(xp), free(tmp), free(fd), free(an);
}

// a test that cannot fail is worse than none: a wrong parameter must change the output
static void test_sensitivity(void) {
    const FixTensor *x = T("big.x"), *out = T("big.rotate.out");
    if (!x || !out) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    DsaSample s[8];
    if (load_samples("big", s, B)) return;
    s[0].angle = -s[0].angle;
    DsaConfig cfg;
    dsa_config_default(&cfg);
    DsaDraw d = {.op = DSA_ROTATE, .B = B, .s = s};
    float *y = calloc(x->n, sizeof(float));
    dsa_forward(y, x->data, &d, &cfg, C, H, W);
    double diff = 0;
    for (size_t i = 0; i < x->n / 2; i++) diff = fmax(diff, fabs(y[i] - out->data[i]));
    CHECK(diff > 1e-2, "rotating the other way should change the output (max diff %g)", diff);
    free(y);
}

static void test_draws(void) {
    DsaStrategy st;
    DsaConfig cfg;
    Err e;
    dsa_config_default(&cfg);
    CHECK(dsa_strategy_parse(&st, "color_crop_cutout_flip_scale_rotate", &e) == 0 && st.n_ops == 6 &&
              st.ops[0] == DSA_COLOR && st.ops[5] == DSA_ROTATE,
          "BEARD's strategy parses");
    CHECK(dsa_strategy_parse(&st, "None", &e) == 0 && st.n_ops == 0, "None means no augmentation");
    CHECK(dsa_strategy_parse(&st, "color_blur", &e) == -1 && strstr(e.msg, "blur"), "unknown op: %s", e.msg);
    CHECK(dsa_strategy_parse(&st, "flip_", &e) == -1, "trailing underscore");
    dsa_strategy_parse(&st, "color_crop_cutout_flip_scale_rotate", &e);

    enum { B = 64, ROUNDS = 600 };
    DsaSample s[B], s2[B];
    DsaDraw d = {.B = B, .s = s}, d2 = {.B = B, .s = s2};
    Rng r, r2;
    rng_init(&r, 7, 3);
    int ops[DSA_OP_COUNT] = {0}, flips = 0, bad = 0, crop_hits[9] = {0}, cut_max = 0;
    double ang_max = 0, sc_min = 9, sc_max = 0;
    for (int k = 0; k < ROUNDS; k++) {
        dsa_draw(&d, &st, &cfg, 32, 32, 0, &r);
        ops[d.op]++;
        for (int b = 0; b < B; b++) {
            flips += s[b].flip;
            if (s[b].crop_x < -4 || s[b].crop_x > 4 || s[b].crop_y < -4 || s[b].crop_y > 4) bad++;
            else crop_hits[s[b].crop_x + 4]++;
            if (s[b].cutout_x < 0 || s[b].cutout_x > 32 || s[b].cutout_y < 0 || s[b].cutout_y > 32) bad++;
            cut_max = MAX(cut_max, s[b].cutout_x);
            ang_max = fmax(ang_max, fabs(s[b].angle));
            sc_min = fmin(sc_min, fmin(s[b].scale_x, s[b].scale_y));
            sc_max = fmax(sc_max, fmax(s[b].scale_x, s[b].scale_y));
            if (s[b].brightness < 0 || s[b].brightness >= 1) bad++;
        }
    }
    CHECK(bad == 0, "%d draws out of range", bad);
    for (int k = 0; k < DSA_OP_COUNT; k++)
        CHECK(ops[k] > ROUNDS / 6 - 40 && ops[k] < ROUNDS / 6 + 40, "op %s chosen %d times of %d", dsa_op_name(k),
              ops[k], ROUNDS);
    double pf = (double)flips / (ROUNDS * B);
    CHECK(fabs(pf - 0.5) < 0.02, "flip probability %.3f", pf);
    for (int k = 0; k < 9; k++) CHECK(crop_hits[k] > 0, "crop translation %d never drawn", k - 4);
    CHECK(cut_max == 32, "cutout offsets reach 32 (16 is even: randint(0, 33)), max %d", cut_max);
    CHECK(ang_max < 15.0 / 180 * M_PI && ang_max > 14.5 / 180 * M_PI, "angles within 15 degrees (%g)", ang_max);
    CHECK(sc_min >= 1 / 1.2f - 1e-6 && sc_min < 0.85 && sc_max < 1.2f && sc_max > 1.15, "scales in [1/1.2, 1.2): %g %g",
          sc_min, sc_max);

    rng_init(&r, 11, 0);
    rng_init(&r2, 11, 0);
    dsa_draw(&d, &st, &cfg, 32, 32, 0, &r);
    dsa_draw(&d2, &st, &cfg, 32, 32, 0, &r2);
    CHECK(d.op == d2.op && !memcmp(s, s2, sizeof(s)), "same seed, same draw");
    dsa_draw(&d, &st, &cfg, 32, 32, 1, &r);
    int same = 1;
    for (int b = 1; b < B; b++) same &= !memcmp(&s[b], &s[0], sizeof(DsaSample));
    CHECK(same, "siamese draws share sample 0's parameters");
}

int main(void) {
    if (fixture_load("tests/fixtures/train/dsa.bin", &F) == 0) {
        for (int op = 0; op < DSA_OP_COUNT; op++) test_op((DsaOp)op, "small", 1);
        test_op(DSA_SCALE, "big", 0);
        test_op(DSA_ROTATE, "big", 0);
        test_sensitivity();
        fixture_free(&F);
    }
    test_draws();
    return test_done("test_dsa");
}
