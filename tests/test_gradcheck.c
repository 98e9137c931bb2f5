/*
 * test_gradcheck.c: central-difference gradient checks in double precision.
 *
 * This program is compiled with -DNN_REAL_DOUBLE and linked against the nn sources built
 * a second time in double (see src/nn/real.h and the Makefile), so the backward code
 * under test is the library's own, not a re-implementation. For each op the loss is
 * L = sum(R * out) for a fixed random R; the analytic gradient is the op's backward with
 * dout = R, the numeric one is (L(v + h) - L(v - h)) / 2h for every input and parameter
 * value v. Points within a few h of a ReLU/LeakyReLU kink or of a max-pool tie are
 * skipped, since the derivative is not defined there.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/nn/conv_group.h"
#include "../src/nn/join.h"
#include "../src/nn/nn.h"
#include "../src/nn/pool_ext.h"
#include "harness.h"
#include "so_ops.h"

#define FD_H 1e-6
#define ATOL 1e-7
#define RTOL 1e-5

static Rng rng;

static real *rnd(size_t n, double scale, double shift) {
    real *p = calloc(n ? n : 1, sizeof(real));
    for (size_t i = 0; i < n; i++) p[i] = (real)(rng_normal(&rng) * scale + shift);
    return p;
}
static real *zero(size_t n) { return calloc(n ? n : 1, sizeof(real)); }

// the op under test, as a closure: forward into out from the current values of its inputs
typedef struct Op Op;
struct Op {
    void (*forward)(Op *op, real *out);
    size_t n_out;
    const real *R; // projection defining the scalar loss
    void *ctx;
};

static double op_loss(Op *op) {
    real *out = zero(op->n_out);
    op->forward(op, out);
    double s = 0.0;
    for (size_t i = 0; i < op->n_out; i++) s += (double)out[i] * op->R[i];
    free(out);
    return s;
}

// compares analytic against central differences for every value of v; skip(i) may veto
static void gradcheck(const char *what, Op *op, real *v, size_t n, const real *analytic, int (*skip)(void *, size_t),
                      void *skip_ctx) {
    int bad = 0, checked = 0;
    double worst = 0.0;
    size_t worst_i = 0;
    double worst_num = 0, worst_ana = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip(skip_ctx, i)) continue;
        real keep = v[i];
        v[i] = keep + FD_H;
        double lp = op_loss(op);
        v[i] = keep - FD_H;
        double lm = op_loss(op);
        v[i] = keep;
        double num = (lp - lm) / (2 * FD_H), ana = analytic[i];
        double err = fabs(num - ana), tol = ATOL + RTOL * fabs(ana);
        checked++;
        if (err > tol) {
            bad++;
            if (err - tol > worst) worst = err - tol, worst_i = i, worst_num = num, worst_ana = ana;
        }
    }
    CHECK(bad == 0, "%s: %d of %d gradients off; worst at %zu: numeric %.10g, analytic %.10g", what, bad, checked,
          worst_i, worst_num, worst_ana);
    CHECK(checked > 0, "%s: no point checked", what);
}

// ----------------------------------------------------------------------------

typedef struct {
    real *x, *w, *b;
    int B, C, Hh, W, O, K, S, P;
} ConvCtx;

static void conv_fwd(Op *op, real *out) {
    ConvCtx *c = op->ctx;
    conv2d_forward(out, c->x, c->w, c->b, c->B, c->C, c->Hh, c->W, c->O, c->K, c->S, c->P);
}

static void check_conv(int K, int S, int P) {
    ConvCtx c = {.B = 2, .C = 3, .Hh = 6, .W = 5, .O = 4, .K = K, .S = S, .P = P};
    int Ho = conv2d_out_size(c.Hh, K, S, P), Wo = conv2d_out_size(c.W, K, S, P);
    size_t nx = (size_t)c.B * c.C * c.Hh * c.W, nw = (size_t)c.O * c.C * K * K, no = (size_t)c.B * c.O * Ho * Wo;
    c.x = rnd(nx, 1, 0), c.w = rnd(nw, 0.5, 0), c.b = rnd(c.O, 0.5, 0);
    real *R = rnd(no, 1, 0), *dx = zero(nx), *dw = zero(nw), *db = zero(c.O);
    conv2d_backward(dx, dw, db, R, c.x, c.w, c.B, c.C, c.Hh, c.W, c.O, K, S, P);
    Op op = {conv_fwd, no, R, &c};
    char what[64];
    snprintf(what, sizeof(what), "conv k%d s%d p%d dx", K, S, P);
    gradcheck(what, &op, c.x, nx, dx, NULL, NULL);
    snprintf(what, sizeof(what), "conv k%d s%d p%d dweight", K, S, P);
    gradcheck(what, &op, c.w, nw, dw, NULL, NULL);
    snprintf(what, sizeof(what), "conv k%d s%d p%d dbias", K, S, P);
    gradcheck(what, &op, c.b, c.O, db, NULL, NULL);
    free(c.x), free(c.w), free(c.b), free(R), free(dx), free(dw), free(db);
}

typedef struct {
    real *x, *w, *b;
    int B, C, O;
} LinCtx;
static void lin_fwd(Op *op, real *out) {
    LinCtx *c = op->ctx;
    linear_forward(out, c->x, c->w, c->b, c->B, c->C, c->O);
}
static void check_linear(void) {
    LinCtx c = {.B = 3, .C = 7, .O = 4};
    c.x = rnd(21, 1, 0), c.w = rnd(28, 0.5, 0), c.b = rnd(4, 0.5, 0);
    real *R = rnd(12, 1, 0), *dx = zero(21), *dw = zero(28), *db = zero(4);
    linear_backward(dx, dw, db, R, c.x, c.w, 3, 7, 4);
    Op op = {lin_fwd, 12, R, &c};
    gradcheck("linear dx", &op, c.x, 21, dx, NULL, NULL);
    gradcheck("linear dweight", &op, c.w, 28, dw, NULL, NULL);
    gradcheck("linear dbias", &op, c.b, 4, db, NULL, NULL);
    free(c.x), free(c.w), free(c.b), free(R), free(dx), free(dw), free(db);
}

typedef struct {
    real *x;
    size_t n;
    ActKind kind;
    real slope;
} ActCtx;
static void act_fwd(Op *op, real *out) {
    ActCtx *c = op->ctx;
    act_forward(out, c->x, c->n, c->kind, c->slope);
}
static int near_kink(void *ctx, size_t i) {
    ActCtx *c = ctx;
    if (c->kind == ACT_RELU6) return fabs((double)c->x[i]) < 100 * FD_H || fabs((double)c->x[i] - 6) < 100 * FD_H;
    return (c->kind == ACT_RELU || c->kind == ACT_LEAKY_RELU) && fabs((double)c->x[i]) < 100 * FD_H;
}
static void check_act(const char *name, ActKind kind, real slope) {
    ActCtx c = {.n = 40, .kind = kind, .slope = slope};
    c.x = kind == ACT_RELU6 ? rnd(c.n, 4, 3) : rnd(c.n, 2, 0); // ReLU6: both kinks in reach
    real *R = rnd(c.n, 1, 0), *dx = zero(c.n);
    act_backward(dx, R, c.x, c.n, kind, slope);
    Op op = {act_fwd, c.n, R, &c};
    gradcheck(name, &op, c.x, c.n, dx, near_kink, &c);
    free(c.x), free(R), free(dx);
}

typedef struct {
    real *x, *g, *b, *mean, *rstd, *rm, *rv;
    int B, C, HW, G, kind, train; // kind 0 group, 1 layer, 2 batch
} NormCtx;
static void norm_fwd(Op *op, real *out) {
    NormCtx *c = op->ctx;
    if (c->kind == 0) groupnorm_forward(out, c->mean, c->rstd, c->x, c->g, c->b, c->B, c->C, c->HW, c->G, (real)1e-5);
    if (c->kind == 1) layernorm_forward(out, c->mean, c->rstd, c->x, c->g, c->b, c->B, c->C * c->HW, (real)1e-5);
    if (c->kind == 2) {
        // running statistics are state, not inputs: keep them fixed between evaluations
        real rm[16], rv[16];
        memcpy(rm, c->rm, sizeof(real) * c->C);
        memcpy(rv, c->rv, sizeof(real) * c->C);
        batchnorm_forward(out, c->mean, c->rstd, rm, rv, c->x, c->g, c->b, c->B, c->C, c->HW, (real)1e-5, (real)0.1, c->train);
    }
}
static void check_norm(const char *name, int kind, int G, int train) {
    NormCtx c = {.B = 3, .C = 4, .HW = 6, .G = G, .kind = kind, .train = train};
    size_t nx = (size_t)c.B * c.C * c.HW, np = kind == 1 ? (size_t)c.C * c.HW : (size_t)c.C;
    c.x = rnd(nx, 2, 0.3), c.g = rnd(np, 0.5, 1), c.b = rnd(np, 0.5, 0);
    c.mean = zero(64), c.rstd = zero(64), c.rm = rnd(c.C, 0.1, 0), c.rv = rnd(c.C, 0.1, 1);
    real *R = rnd(nx, 1, 0), *dx = zero(nx), *dg = zero(np), *db = zero(np), *out = zero(nx);
    Op op = {norm_fwd, nx, R, &c};
    norm_fwd(&op, out); // saves mean/rstd for backward
    if (kind == 0) groupnorm_backward(dx, dg, db, R, c.mean, c.rstd, c.x, c.g, c.B, c.C, c.HW, c.G);
    if (kind == 1) layernorm_backward(dx, dg, db, R, c.mean, c.rstd, c.x, c.g, c.B, c.C * c.HW);
    if (kind == 2) batchnorm_backward(dx, dg, db, R, c.mean, c.rstd, c.x, c.g, c.B, c.C, c.HW, train);
    char what[64];
    snprintf(what, sizeof(what), "%s dx", name);
    gradcheck(what, &op, c.x, nx, dx, NULL, NULL);
    snprintf(what, sizeof(what), "%s dweight", name);
    gradcheck(what, &op, c.g, np, dg, NULL, NULL);
    snprintf(what, sizeof(what), "%s dbias", name);
    gradcheck(what, &op, c.b, np, db, NULL, NULL);
    free(c.x), free(c.g), free(c.b), free(c.mean), free(c.rstd), free(c.rm), free(c.rv), free(R), free(dx), free(dg),
        free(db), free(out);
}

typedef struct {
    real *x;
    int *am;
    int B, C, Hh, W, K, S, max;
} PoolCtx;
static void pool_fwd(Op *op, real *out) {
    PoolCtx *c = op->ctx;
    if (c->max) maxpool_forward(out, c->am, c->x, c->B, c->C, c->Hh, c->W, c->K, c->S);
    else avgpool_forward(out, c->x, c->B, c->C, c->Hh, c->W, c->K, c->S);
}
// skip inputs whose window (any window containing them) has a near-tie for the maximum
static int near_tie(void *ctx, size_t i) {
    PoolCtx *c = ctx;
    if (!c->max) return 0;
    size_t plane = (size_t)c->Hh * c->W;
    const real *x = c->x + (i / plane) * plane;
    int ih = (int)((i % plane) / c->W), iw = (int)(i % c->W);
    for (int oh = 0; oh < pool_out_size(c->Hh, c->K, c->S); oh++)
        for (int ow = 0; ow < pool_out_size(c->W, c->K, c->S); ow++) {
            if (ih < oh * c->S || ih >= oh * c->S + c->K || iw < ow * c->S || iw >= ow * c->S + c->K) continue;
            double v = x[ih * c->W + iw];
            for (int a = 0; a < c->K; a++)
                for (int b = 0; b < c->K; b++) {
                    int j = (oh * c->S + a) * c->W + ow * c->S + b;
                    if (j != ih * c->W + iw && fabs((double)x[j] - v) < 100 * FD_H) return 1;
                }
        }
    return 0;
}
static void check_pool(int max, int K, int S) {
    PoolCtx c = {.B = 2, .C = 2, .Hh = 6, .W = 7, .K = K, .S = S, .max = max};
    size_t nx = (size_t)c.B * c.C * c.Hh * c.W;
    size_t no = (size_t)c.B * c.C * pool_out_size(c.Hh, K, S) * pool_out_size(c.W, K, S);
    c.x = rnd(nx, 1, 0), c.am = calloc(no, sizeof(int));
    real *R = rnd(no, 1, 0), *dx = zero(nx), *out = zero(no);
    Op op = {pool_fwd, no, R, &c};
    pool_fwd(&op, out);
    if (max) maxpool_backward(dx, R, c.am, c.B, c.C, c.Hh, c.W, K, S);
    else avgpool_backward(dx, R, c.B, c.C, c.Hh, c.W, K, S);
    char what[64];
    snprintf(what, sizeof(what), "%s k%d s%d", max ? "maxpool" : "avgpool", K, S);
    gradcheck(what, &op, c.x, nx, dx, near_tie, &c);
    free(c.x), free(c.am), free(R), free(dx), free(out);
}

typedef struct {
    real *z, *t;
    int labels[4];
} CeCtx;
static void ce_fwd(Op *op, real *out) {
    CeCtx *c = op->ctx;
    out[0] = (real)crossentropy_forward_backward(NULL, c->z, c->labels, c->t, 4, 5);
}
static void check_ce(int soft) {
    CeCtx c = {.labels = {0, 4, 2, 2}};
    c.z = rnd(20, 2, 0);
    c.t = NULL;
    if (soft) {
        c.t = rnd(20, 1, 0);
        for (int i = 0; i < 20; i++) c.t[i] = c.t[i] * c.t[i]; // non-negative, rows not normalised
    }
    real one = 1, *dz = zero(20);
    crossentropy_forward_backward(dz, c.z, c.labels, c.t, 4, 5);
    Op op = {ce_fwd, 1, &one, &c};
    gradcheck(soft ? "cross-entropy (soft)" : "cross-entropy (hard)", &op, c.z, 20, dz, NULL, NULL);
    free(c.z), free(c.t), free(dz);
}

// ----------------------------------------------------------------------------
// second order

// compares an analytic tangent against central differences of phi(values) in each value
typedef double (*PhiFn)(void *ctx);
static void so_compare(const char *what, PhiFn phi, void *ctx, real *vals, size_t n, const real *analytic,
                       int (*skip)(void *, size_t), void *skip_ctx) {
    int bad = 0, checked = 0;
    double worst = 0, wn = 0, wa = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip(skip_ctx, i)) continue;
        real keep = vals[i];
        vals[i] = keep + FD_H;
        double lp = phi(ctx);
        vals[i] = keep - FD_H;
        double lm = phi(ctx);
        vals[i] = keep;
        double num = (lp - lm) / (2 * FD_H), ana = analytic[i];
        double err = fabs(num - ana), tol = ATOL + RTOL * fabs(ana);
        checked++;
        if (err > tol) {
            bad++;
            if (err - tol > worst) worst = err - tol, wi = i, wn = num, wa = ana;
        }
    }
    CHECK(bad == 0, "%s: %d of %d second derivatives off; worst at %zu: numeric %.10g, analytic %.10g", what, bad,
          checked, wi, wn, wa);
    CHECK(checked > 0, "%s: no point checked", what);
}

typedef struct {
    SoOp *op;
    real *x, *p[2], *R, *S, *u, *v[2];
} SoLayerCtx;

static double so_layer_phi(void *ctx) {
    SoLayerCtx *c = ctx;
    SoOp *op = c->op;
    real *gx = zero(op->nx), *gp[2] = {zero(op->np[0]), zero(op->np[1])};
    so_op_composite_grad(op, gx, gp, c->x, c->p, c->R, c->S);
    double s = 0;
    if (c->u)
        for (size_t i = 0; i < op->nx; i++) s += (double)c->u[i] * gx[i];
    for (int j = 0; j < op->nparams; j++)
        for (size_t i = 0; i < op->np[j]; i++) s += (double)c->v[j][i] * gp[j][i];
    free(gx), free(gp[0]), free(gp[1]);
    return s;
}

// any point whose perturbation could cross a kink of the op (ReLU at 0, a max-pool tie)
static int so_layer_skip(void *ctx, size_t i) {
    SoLayerCtx *c = ctx;
    SoOp *op = c->op;
    if (op->kind == OP_ACT && (op->act == ACT_RELU || op->act == ACT_LEAKY_RELU))
        return fabs((double)c->x[i]) < 100 * FD_H;
    if (op->kind == OP_MAXPOOL) {
        PoolCtx pc = {.x = c->x, .B = op->B, .C = op->C, .Hh = op->H, .W = op->W, .K = op->K, .S = op->S, .max = 1};
        return near_tie(&pc, i);
    }
    return 0;
}

static void so_check_layer(const char *name, SoOp op, int mixed) {
    so_op_setup(&op);
    SoLayerCtx c = {.op = &op};
    c.x = rnd(op.nx, 1.5, 0.2);
    c.R = rnd(op.ny, 1, 0);
    c.S = rnd(op.ny, 0.2, 1);
    c.u = mixed ? NULL : rnd(op.nx, 1, 0);
    for (int j = 0; j < 2; j++) {
        int norm_w = j == 0 && (op.kind == OP_GN || op.kind == OP_LN || op.kind == OP_BN);
        c.p[j] = rnd(op.np[j], 0.5, norm_w ? 1 : 0);
        c.v[j] = rnd(op.np[j], 0.5, 0);
    }
    real *hx = zero(op.nx), *hp[2] = {zero(op.np[0]), zero(op.np[1])};
    so_op_composite_hvp(&op, hx, hp, c.x, c.p, c.R, c.S, c.u, c.v);
    char what[96];
    snprintf(what, sizeof(what), "%s%s: d/dx", name, mixed ? " (u = 0)" : "");
    so_compare(what, so_layer_phi, &c, c.x, op.nx, hx, so_layer_skip, &c);
    for (int j = 0; j < op.nparams; j++) {
        snprintf(what, sizeof(what), "%s%s: d/dparam%d", name, mixed ? " (u = 0)" : "", j);
        so_compare(what, so_layer_phi, &c, c.p[j], op.np[j], hp[j], NULL, NULL);
    }
    free(hx), free(hp[0]), free(hp[1]), free(c.x), free(c.R), free(c.S), free(c.u);
    for (int j = 0; j < 2; j++) free(c.p[j]), free(c.v[j]);
    so_op_free(&op);
}

static void so_check_layers(void) {
    int convs[][3] = {{3, 1, 1}, {3, 2, 1}, {1, 1, 0}, {5, 2, 2}, {2, 2, 0}};
    char name[64];
    for (int mixed = 1; mixed >= 0; mixed--) {
        for (int i = 0; i < 5; i++) {
            snprintf(name, sizeof(name), "so conv k%d s%d p%d", convs[i][0], convs[i][1], convs[i][2]);
            so_check_layer(name, (SoOp){.kind = OP_CONV, .B = 2, .C = 3, .H = 6, .W = 5, .O = 4, .K = convs[i][0],
                                        .S = convs[i][1], .P = convs[i][2]}, mixed);
        }
        so_check_layer("so linear", (SoOp){.kind = OP_LINEAR, .B = 3, .C = 7, .H = 1, .W = 1, .O = 4}, mixed);
        so_check_layer("so groupnorm(2)", (SoOp){.kind = OP_GN, .B = 2, .C = 4, .H = 2, .W = 3, .G = 2}, mixed);
        so_check_layer("so instancenorm", (SoOp){.kind = OP_GN, .B = 2, .C = 4, .H = 2, .W = 3, .G = 4}, mixed);
        so_check_layer("so layernorm", (SoOp){.kind = OP_LN, .B = 2, .C = 3, .H = 2, .W = 3}, mixed);
        so_check_layer("so batchnorm train", (SoOp){.kind = OP_BN, .B = 3, .C = 3, .H = 2, .W = 3, .train = 1}, mixed);
        real rm[3] = {0.1, -0.2, 0.05}, rv[3] = {0.8, 1.3, 0.6};
        so_check_layer("so batchnorm eval",
                       (SoOp){.kind = OP_BN, .B = 3, .C = 3, .H = 2, .W = 3, .train = 0, .rm = rm, .rv = rv}, mixed);
    }
    const struct {
        const char *name;
        ActKind k;
        real slope;
    } acts[] = {{"so relu", ACT_RELU, 0},       {"so leaky_relu", ACT_LEAKY_RELU, (real)0.01},
                {"so sigmoid", ACT_SIGMOID, 0}, {"so silu", ACT_SILU, 0},
                {"so gelu", ACT_GELU, 0}};
    for (int i = 0; i < 5; i++)
        so_check_layer(acts[i].name, (SoOp){.kind = OP_ACT, .B = 2, .C = 3, .H = 3, .W = 3, .act = acts[i].k,
                                            .slope = acts[i].slope}, 0);
    int pools[][2] = {{2, 2}, {3, 2}, {3, 1}};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "so avgpool k%d s%d", pools[i][0], pools[i][1]);
        so_check_layer(name, (SoOp){.kind = OP_AVGPOOL, .B = 2, .C = 2, .H = 6, .W = 7, .K = pools[i][0],
                                    .S = pools[i][1]}, 0);
        snprintf(name, sizeof(name), "so maxpool k%d s%d", pools[i][0], pools[i][1]);
        so_check_layer(name, (SoOp){.kind = OP_MAXPOOL, .B = 2, .C = 2, .H = 6, .W = 7, .K = pools[i][0],
                                    .S = pools[i][1]}, 0);
    }
}

// cross-entropy: the tangent of d(loss)/d(logits) against central differences of u . dz
typedef struct {
    real *z, *t, *u;
    int labels[4];
} SoCeCtx;
static double so_ce_phi(void *ctx) {
    SoCeCtx *c = ctx;
    real dz[20];
    crossentropy_forward_backward(dz, c->z, c->labels, c->t, 4, 5);
    double s = 0;
    for (int i = 0; i < 20; i++) s += (double)c->u[i] * dz[i];
    return s;
}
static void so_check_ce(void) {
    for (int soft = 0; soft < 2; soft++) {
        SoCeCtx c = {.labels = {1, 0, 4, 4}};
        c.z = rnd(20, 2, 0), c.u = rnd(20, 1, 0), c.t = NULL;
        if (soft) {
            c.t = rnd(20, 1, 0);
            for (int i = 0; i < 20; i++) c.t[i] = c.t[i] * c.t[i];
        }
        real hz[20];
        crossentropy_backward_tangent(hz, c.z, c.u, c.t, 4, 5);
        so_compare(soft ? "so cross-entropy (soft)" : "so cross-entropy (hard)", so_ce_phi, &c, c.z, 20, hz, NULL,
                   NULL);
        free(c.z), free(c.u), free(c.t);
    }
}

// small ConvNets: every input and parameter value of grad_(x, theta) [u . grad_x L + v . grad_theta L]
typedef struct {
    SoChain *c;
    real *x, *u;
    real *(*dp)[2];
} SoNetCtx;
static double so_net_phi(void *ctx) {
    SoNetCtx *n = ctx;
    SoChain *c = n->c;
    real *gx = zero(c->op[0].nx);
    so_chain_grad(c, n->x, gx, n->dp);
    double s = 0;
    if (n->u)
        for (size_t i = 0; i < c->op[0].nx; i++) s += (double)n->u[i] * gx[i];
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->op[i].nparams; j++)
            for (size_t k = 0; k < c->op[i].np[j]; k++) s += (double)c->v[i][j][k] * n->dp[i][j][k];
    free(gx);
    return s;
}

static void so_check_convnet(const char *name, ActKind act, const char *norm, const char *pool, int train, int mixed) {
    SoChain c;
    int labels[2] = {3, 7};
    so_chain_convnet(&c, 2, 3, 8, 4, 2, act, act == ACT_LEAKY_RELU ? (real)0.01 : 0, norm, pool, train, 10);
    c.labels = labels;
    real rm[4] = {0.1, -0.1, 0.2, 0.0}, rv[4] = {0.9, 1.2, 0.7, 1.1};
    real *dp[CHAIN_MAX][2] = {{0}}, *hp[CHAIN_MAX][2] = {{0}};
    for (int i = 0; i < c.n; i++) {
        SoOp *op = &c.op[i];
        if (op->kind == OP_BN) op->rm = rm, op->rv = rv;
        for (int j = 0; j < op->nparams; j++) {
            int norm_w = j == 0 && (op->kind == OP_GN || op->kind == OP_LN || op->kind == OP_BN);
            double sc = op->kind == OP_CONV || op->kind == OP_LINEAR ? 0.4 : 0.3;
            c.p[i][j] = rnd(op->np[j], sc, norm_w ? 1 : 0);
            c.v[i][j] = rnd(op->np[j], 0.5, 0);
            dp[i][j] = zero(op->np[j]), hp[i][j] = zero(op->np[j]);
        }
    }
    SoNetCtx n = {.c = &c, .dp = dp};
    n.x = rnd(c.op[0].nx, 1, 0);
    n.u = mixed ? NULL : rnd(c.op[0].nx, 1, 0);
    real *hx = zero(c.op[0].nx);
    so_chain_hvp(&c, n.x, n.u, hx, hp);
    char what[128];
    snprintf(what, sizeof(what), "so ConvNet %s (%s, %s%s)%s: d/dx", name, norm, pool, train ? ", train" : "",
             mixed ? " (u = 0)" : "");
    so_compare(what, so_net_phi, &n, n.x, c.op[0].nx, hx, NULL, NULL);
    for (int i = 0; i < c.n; i++)
        for (int j = 0; j < c.op[i].nparams; j++) {
            char w2[160];
            snprintf(w2, sizeof(w2), "%.100s: d/d(op %d param %d)", what, i, j);
            so_compare(w2, so_net_phi, &n, c.p[i][j], c.op[i].np[j], hp[i][j], NULL, NULL);
        }
    for (int i = 0; i < c.n; i++)
        for (int j = 0; j < 2; j++) free(c.p[i][j]), free(c.v[i][j]), free(dp[i][j]), free(hp[i][j]);
    free(n.x), free(n.u), free(hx);
    so_chain_free(&c);
}

static void so_check_convnets(void) {
    so_check_convnet("relu", ACT_RELU, "instancenorm", "avgpooling", 0, 1);
    so_check_convnet("relu", ACT_RELU, "instancenorm", "avgpooling", 0, 0);
    so_check_convnet("swish", ACT_SILU, "batchnorm", "avgpooling", 1, 1);
    so_check_convnet("relu", ACT_RELU, "batchnorm", "maxpooling", 0, 1);
    so_check_convnet("sigmoid", ACT_SIGMOID, "layernorm", "avgpooling", 0, 1);
    so_check_convnet("leakyrelu", ACT_LEAKY_RELU, "groupnorm", "maxpooling", 0, 0);
    so_check_convnet("swish", ACT_SILU, "none", "none", 0, 1);
}

// ----------------------------------------------------------------------------
// the zoo's layers: grouped/depthwise convolution, padded max pooling, adaptive average
// pooling, and the graph ops (residual add, concat, slice, channel shuffle, dropout)

typedef struct {
    real *x, *w, *b;
    int B, C, Hh, W, O, K, S, P, G;
} GConvCtx;
static void gconv_fwd(Op *op, real *out) {
    GConvCtx *c = op->ctx;
    conv2d_group_forward(out, c->x, c->w, c->b, c->B, c->C, c->Hh, c->W, c->O, c->K, c->S, c->P, c->G);
}
static void check_gconv(int C, int O, int G, int K, int S, int P) {
    GConvCtx c = {.B = 2, .C = C, .Hh = 6, .W = 5, .O = O, .K = K, .S = S, .P = P, .G = G};
    int Ho = conv2d_out_size(c.Hh, K, S, P), Wo = conv2d_out_size(c.W, K, S, P);
    size_t nx = (size_t)c.B * C * c.Hh * c.W, nw = (size_t)O * (C / G) * K * K, no = (size_t)c.B * O * Ho * Wo;
    c.x = rnd(nx, 1, 0), c.w = rnd(nw, 0.5, 0), c.b = rnd(O, 0.5, 0);
    real *R = rnd(no, 1, 0), *dx = zero(nx), *dw = zero(nw), *db = zero(O);
    real *dxr = zero(nx), *dwr = zero(nw), *dbr = zero(O), *y = zero(no), *yr = zero(no);
    conv2d_group_backward(dx, dw, db, R, c.x, c.w, c.B, C, c.Hh, c.W, O, K, S, P, G);
    Op op = {gconv_fwd, no, R, &c};
    char what[80];
    snprintf(what, sizeof(what), "conv groups %d (%d->%d) k%d s%d p%d dx", G, C, O, K, S, P);
    gradcheck(what, &op, c.x, nx, dx, NULL, NULL);
    snprintf(what, sizeof(what), "conv groups %d (%d->%d) k%d s%d p%d dweight", G, C, O, K, S, P);
    gradcheck(what, &op, c.w, nw, dw, NULL, NULL);
    snprintf(what, sizeof(what), "conv groups %d (%d->%d) k%d s%d p%d dbias", G, C, O, K, S, P);
    gradcheck(what, &op, c.b, O, db, NULL, NULL);
    // the kernel against the naive definition
    conv2d_group_forward(y, c.x, c.w, c.b, c.B, C, c.Hh, c.W, O, K, S, P, G);
    conv2d_group_forward_ref(yr, c.x, c.w, c.b, c.B, C, c.Hh, c.W, O, K, S, P, G);
    conv2d_group_backward_ref(dxr, dwr, dbr, R, c.x, c.w, c.B, C, c.Hh, c.W, O, K, S, P, G);
    snprintf(what, sizeof(what), "conv groups %d k%d s%d: forward, dx, dweight vs naive", G, K, S);
    int ok = check_close_d("grouped forward vs naive", y, yr, no, 1e-12, 1e-10) == 0;
    ok &= check_close_d("grouped dx vs naive", dx, dxr, nx, 1e-12, 1e-10) == 0;
    ok &= check_close_d("grouped dweight vs naive", dw, dwr, nw, 1e-12, 1e-10) == 0;
    CHECK(ok, "%s", what);
    free(c.x), free(c.w), free(c.b), free(R), free(dx), free(dw), free(db), free(dxr), free(dwr), free(dbr), free(y),
        free(yr);
}

// distinct values 0.01 apart in random order: no max-pool window has a near-tie
static real *distinct(size_t n) {
    real *p = zero(n);
    for (size_t i = 0; i < n; i++) p[i] = (real)(0.01 * (double)i - 0.005 * (double)n);
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(&rng, (uint32_t)i);
        real t = p[i - 1];
        p[i - 1] = p[j], p[j] = t;
    }
    return p;
}

typedef struct {
    real *x;
    int *am;
    int B, C, Hh, W, K, S, P, Ho, Wo, adaptive;
} PoolXCtx;
static void poolx_fwd(Op *op, real *out) {
    PoolXCtx *c = op->ctx;
    if (c->adaptive) adaptive_avgpool_forward(out, c->x, c->B, c->C, c->Hh, c->W, c->Ho, c->Wo);
    else maxpool_pad_forward(out, c->am, c->x, c->B, c->C, c->Hh, c->W, c->K, c->S, c->P);
}
static void check_poolx(int adaptive, int K, int S, int P, int Ho, int Wo) {
    PoolXCtx c = {.B = 2, .C = 2, .Hh = 7, .W = 5, .K = K, .S = S, .P = P, .adaptive = adaptive};
    c.Ho = adaptive ? Ho : maxpool_pad_out_size(c.Hh, K, S, P);
    c.Wo = adaptive ? Wo : maxpool_pad_out_size(c.W, K, S, P);
    size_t nx = (size_t)c.B * c.C * c.Hh * c.W, no = (size_t)c.B * c.C * c.Ho * c.Wo;
    c.x = distinct(nx), c.am = calloc(no, sizeof(int));
    real *R = rnd(no, 1, 0), *dx = zero(nx), *out = zero(no);
    Op op = {poolx_fwd, no, R, &c};
    poolx_fwd(&op, out);
    if (adaptive) adaptive_avgpool_backward(dx, R, c.B, c.C, c.Hh, c.W, c.Ho, c.Wo);
    else maxpool_pad_backward(dx, R, c.am, c.B, c.C, c.Hh, c.W, c.Ho, c.Wo);
    char what[64];
    if (adaptive) snprintf(what, sizeof(what), "adaptive avgpool 7x5 -> %dx%d", Ho, Wo);
    else snprintf(what, sizeof(what), "maxpool k%d s%d pad %d", K, S, P);
    gradcheck(what, &op, c.x, nx, dx, NULL, NULL);
    free(c.x), free(c.am), free(R), free(dx), free(out);
}

typedef struct {
    real *a, *b;
    int B, Ca, Cb, HW, op, c0, n, g;
    real p;
} JoinCtx;
static void join_fwd(Op *op, real *out) {
    JoinCtx *c = op->ctx;
    switch (c->op) {
    case 0: add_forward(out, c->a, c->b, (size_t)c->B * c->Ca * c->HW); break;
    case 1: concat_forward(out, c->a, c->b, c->B, c->Ca, c->Cb, c->HW); break;
    case 2: slice_forward(out, c->a, c->B, c->Ca, c->c0, c->n, c->HW); break;
    case 3: shuffle_forward(out, c->a, c->B, c->Ca, c->g, c->HW); break;
    case 4: {
        real *mask = zero((size_t)c->B * c->Ca * c->HW); // the same seed every call: a fixed mask
        dropout_forward(out, mask, c->a, (size_t)c->B * c->Ca * c->HW, c->p, 7, 3);
        free(mask);
        break;
    }
    }
}
static void check_join(const char *what, int kind) {
    JoinCtx c = {.B = 2, .Ca = 6, .Cb = kind == 0 ? 6 : 3, .HW = 5, .op = kind, .c0 = 2, .n = 3, .g = 3, .p = (real)0.4};
    size_t na = (size_t)c.B * c.Ca * c.HW, nb = (size_t)c.B * c.Cb * c.HW;
    size_t no = kind == 1 ? na + nb : kind == 2 ? (size_t)c.B * c.n * c.HW : na;
    c.a = rnd(na, 1, 0), c.b = rnd(nb, 1, 0);
    real *R = rnd(no, 1, 0), *da = zero(na), *db = zero(nb), *mask = zero(na), *out = zero(no);
    switch (kind) {
    case 0: add_backward(da, db, R, na); break;
    case 1: concat_backward(da, db, R, c.B, c.Ca, c.Cb, c.HW); break;
    case 2: slice_backward(da, R, c.B, c.Ca, c.c0, c.n, c.HW); break;
    case 3: shuffle_backward(da, R, c.B, c.Ca, c.g, c.HW); break;
    case 4:
        dropout_forward(out, mask, c.a, na, c.p, 7, 3);
        dropout_backward(da, R, mask, na);
        break;
    }
    Op op = {join_fwd, no, R, &c};
    char w[64];
    snprintf(w, sizeof(w), "%s (first input)", what);
    gradcheck(w, &op, c.a, na, da, NULL, NULL);
    if (kind <= 1) {
        snprintf(w, sizeof(w), "%s (second input)", what);
        gradcheck(w, &op, c.b, nb, db, NULL, NULL);
    }
    if (kind == 3) { // a permutation: output channel j*g + i is input channel i*(C/g) + j
        shuffle_forward(out, c.a, c.B, c.Ca, c.g, c.HW);
        CHECK(out[1 * c.HW] == c.a[2 * c.HW] && out[3 * c.HW] == c.a[1 * c.HW], "channel shuffle order");
    }
    if (kind == 4) {
        int kept = 0, scaled = 1;
        for (size_t i = 0; i < na; i++) {
            kept += mask[i] != 0;
            scaled &= mask[i] == 0 || fabs((double)mask[i] - 1 / 0.6) < 1e-12;
        }
        CHECK(kept > 0 && kept < (int)na && scaled, "dropout keeps some values, scaled by 1/(1-p) (%d of %zu)", kept, na);
    }
    free(c.a), free(c.b), free(R), free(da), free(db), free(mask), free(out);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    rng_init(&rng, 42, 0);
    check_conv(3, 1, 1);
    check_conv(3, 2, 1);
    check_conv(3, 1, 0);
    check_conv(1, 1, 0);
    check_conv(5, 2, 2);
    check_conv(2, 2, 0);
    check_linear();
    check_act("relu", ACT_RELU, 0);
    check_act("leaky_relu", ACT_LEAKY_RELU, (real)0.01);
    check_act("sigmoid", ACT_SIGMOID, 0);
    check_act("silu", ACT_SILU, 0);
    check_act("gelu", ACT_GELU, 0);
    check_norm("groupnorm(2)", 0, 2, 0);
    check_norm("instancenorm", 0, 4, 0);
    check_norm("layernorm", 1, 0, 0);
    check_norm("batchnorm train", 2, 0, 1);
    check_norm("batchnorm eval", 2, 0, 0);
    check_pool(0, 2, 2);
    check_pool(0, 3, 2);
    check_pool(1, 2, 2);
    check_pool(1, 3, 1);
    check_ce(0);
    check_ce(1);
    check_act("relu6", ACT_RELU6, 0);
    check_gconv(4, 6, 2, 3, 1, 1);
    check_gconv(6, 6, 6, 3, 1, 1); // depthwise
    check_gconv(6, 6, 6, 3, 2, 1); // depthwise, strided (MobileNetV2, ShuffleNetV2)
    check_gconv(4, 8, 4, 1, 1, 0);
    check_poolx(0, 3, 2, 1, 0, 0);
    check_poolx(0, 2, 2, 1, 0, 0);
    check_poolx(1, 0, 0, 0, 1, 1);
    check_poolx(1, 0, 0, 0, 3, 2);
    check_join("residual add", 0);
    check_join("concat", 1);
    check_join("slice", 2);
    check_join("channel shuffle", 3);
    check_join("dropout", 4);
    // the second-order checks evaluate thousands of tiny passes; on one thread they do not
    // pay a parallel region's start-up per kernel (the threaded paths of the same kernels
    // are compared with PyTorch in test_so)
    parallel_set_threads(1);
    so_check_layers();
    so_check_ce();
    so_check_convnets();
    return test_done("test_gradcheck");
}
