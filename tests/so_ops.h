/*
 * so_ops.h: one interface over every nn layer and its tangents, for the second-order
 * tests. Included by test_so.c (real = float, against PyTorch's double backward) and by
 * test_gradcheck.c (real = double, against central differences), so both drive the
 * library's kernels through the same code.
 *
 * An SoOp is a layer with its sizes and saved state; an SoChain is a sequence of them
 * ending in the mean cross-entropy (a ConvNet is one). For an SoOp the tests use the
 * composite loss L = sum(R y + S y^2 / 2) of its output y; for an SoChain, the
 * cross-entropy. Both give
 *   *_grad: (grad_x L, grad_theta L)
 *   *_hvp:  the tangent of that gradient in the direction (u, v) on (x, theta), i.e.
 *           grad_(x, theta) [u . grad_x L + v . grad_theta L]
 * where the hvp runs forward, backward, forward tangent, backward tangent: the
 * forward-over-reverse scheme of src/nn/tangent.h.
 */
#ifndef BEARD_SO_OPS_H
#define BEARD_SO_OPS_H

#include <stdlib.h>
#include <string.h>

#include "../src/nn/nn.h"
#include "../src/nn/tangent.h"

typedef enum { OP_CONV, OP_LINEAR, OP_ACT, OP_GN, OP_LN, OP_BN, OP_AVGPOOL, OP_MAXPOOL } SoOpKind;

typedef struct {
    SoOpKind kind;
    int B, C, H, W;  // input (B, C, H, W); linear: C features, H = W = 1
    int O, K, S, P;  // conv/linear output channels, kernel, stride, padding; pool kernel, stride
    int G;           // GroupNorm groups
    ActKind act;
    real slope;
    int train;                  // BatchNorm mode
    const real *rm, *rv;        // BatchNorm running statistics (eval)
    // filled by so_op_setup
    int OC, Ho, Wo, nparams;
    size_t nx, ny, np[2];
    real *mean, *rstd;
    int *argmax;
} SoOp;

static inline void so_op_setup(SoOp *op) {
    op->OC = op->C, op->Ho = op->H, op->Wo = op->W, op->nparams = 0;
    op->np[0] = op->np[1] = 0;
    size_t nstat = 1;
    switch (op->kind) {
    case OP_CONV:
        op->OC = op->O;
        op->Ho = conv2d_out_size(op->H, op->K, op->S, op->P), op->Wo = conv2d_out_size(op->W, op->K, op->S, op->P);
        op->nparams = 2, op->np[0] = (size_t)op->O * op->C * op->K * op->K, op->np[1] = (size_t)op->O;
        break;
    case OP_LINEAR:
        op->OC = op->O, op->Ho = op->Wo = 1;
        op->nparams = 2, op->np[0] = (size_t)op->O * op->C * op->H * op->W, op->np[1] = (size_t)op->O;
        break;
    case OP_GN: op->nparams = 2, op->np[0] = op->np[1] = (size_t)op->C, nstat = (size_t)op->B * op->G; break;
    case OP_LN:
        op->nparams = 2, op->np[0] = op->np[1] = (size_t)op->C * op->H * op->W, nstat = (size_t)op->B;
        break;
    case OP_BN: op->nparams = 2, op->np[0] = op->np[1] = (size_t)op->C, nstat = (size_t)op->C; break;
    case OP_AVGPOOL:
    case OP_MAXPOOL:
        op->Ho = pool_out_size(op->H, op->K, op->S), op->Wo = pool_out_size(op->W, op->K, op->S);
        break;
    case OP_ACT: break;
    }
    op->nx = (size_t)op->B * op->C * op->H * op->W;
    op->ny = (size_t)op->B * op->OC * op->Ho * op->Wo;
    op->mean = calloc(nstat, sizeof(real)), op->rstd = calloc(nstat, sizeof(real));
    op->argmax = calloc(op->ny, sizeof(int));
}

static inline void so_op_free(SoOp *op) { free(op->mean), free(op->rstd), free(op->argmax); }

static inline void so_op_forward(SoOp *op, real *y, const real *x, real *const *p) {
    int HW = op->H * op->W;
    switch (op->kind) {
    case OP_CONV: conv2d_forward(y, x, p[0], p[1], op->B, op->C, op->H, op->W, op->O, op->K, op->S, op->P); break;
    case OP_LINEAR: linear_forward(y, x, p[0], p[1], op->B, op->C * HW, op->O); break;
    case OP_ACT: act_forward(y, x, op->nx, op->act, op->slope); break;
    case OP_GN: groupnorm_forward(y, op->mean, op->rstd, x, p[0], p[1], op->B, op->C, HW, op->G, (real)1e-5); break;
    case OP_LN: layernorm_forward(y, op->mean, op->rstd, x, p[0], p[1], op->B, op->C * HW, (real)1e-5); break;
    case OP_BN: {
        real *rm = NULL, *rv = NULL; // the statistics are not the test's state: never updated
        if (!op->train) {
            rm = malloc(sizeof(real) * op->C), rv = malloc(sizeof(real) * op->C);
            memcpy(rm, op->rm, sizeof(real) * op->C), memcpy(rv, op->rv, sizeof(real) * op->C);
        }
        batchnorm_forward(y, op->mean, op->rstd, rm, rv, x, p[0], p[1], op->B, op->C, HW, (real)1e-5, (real)0.1,
                          op->train);
        free(rm), free(rv);
        break;
    }
    case OP_AVGPOOL: avgpool_forward(y, x, op->B, op->C, op->H, op->W, op->K, op->S); break;
    case OP_MAXPOOL: maxpool_forward(y, op->argmax, x, op->B, op->C, op->H, op->W, op->K, op->S); break;
    }
}

// adds into dx and dp[i] (any may be NULL)
static inline void so_op_backward(SoOp *op, real *dx, real **dp, const real *dy, const real *x, real *const *p) {
    int HW = op->H * op->W;
    real *d0 = dp ? dp[0] : NULL, *d1 = dp ? dp[1] : NULL;
    switch (op->kind) {
    case OP_CONV:
        conv2d_backward(dx, d0, d1, dy, x, p[0], op->B, op->C, op->H, op->W, op->O, op->K, op->S, op->P);
        break;
    case OP_LINEAR: linear_backward(dx, d0, d1, dy, x, p[0], op->B, op->C * HW, op->O); break;
    case OP_ACT:
        if (dx) act_backward(dx, dy, x, op->nx, op->act, op->slope);
        break;
    case OP_GN: groupnorm_backward(dx, d0, d1, dy, op->mean, op->rstd, x, p[0], op->B, op->C, HW, op->G); break;
    case OP_LN: layernorm_backward(dx, d0, d1, dy, op->mean, op->rstd, x, p[0], op->B, op->C * HW); break;
    case OP_BN: batchnorm_backward(dx, d0, d1, dy, op->mean, op->rstd, x, p[0], op->B, op->C, HW, op->train); break;
    case OP_AVGPOOL:
        if (dx) avgpool_backward(dx, dy, op->B, op->C, op->H, op->W, op->K, op->S);
        break;
    case OP_MAXPOOL:
        if (dx) maxpool_backward(dx, dy, op->argmax, op->B, op->C, op->H, op->W, op->K, op->S);
        break;
    }
}

// tp: the parameters' tangents (NULL: none); tx NULL: the input does not move
static inline void so_op_forward_tangent(SoOp *op, real *ty, const real *x, const real *tx, real *const *p,
                                         real *const *tp) {
    int HW = op->H * op->W;
    const real *t0 = tp ? tp[0] : NULL, *t1 = tp ? tp[1] : NULL;
    switch (op->kind) {
    case OP_CONV:
        conv2d_forward_tangent(ty, x, tx, p[0], t0, t1, op->B, op->C, op->H, op->W, op->O, op->K, op->S, op->P);
        break;
    case OP_LINEAR: linear_forward_tangent(ty, x, tx, p[0], t0, t1, op->B, op->C * HW, op->O); break;
    case OP_ACT: act_forward_tangent(ty, x, tx, op->nx, op->act, op->slope); break;
    case OP_GN: groupnorm_forward_tangent(ty, op->mean, op->rstd, x, tx, p[0], t0, t1, op->B, op->C, HW, op->G); break;
    case OP_LN: layernorm_forward_tangent(ty, op->mean, op->rstd, x, tx, p[0], t0, t1, op->B, op->C * HW); break;
    case OP_BN:
        batchnorm_forward_tangent(ty, op->mean, op->rstd, x, tx, p[0], t0, t1, op->B, op->C, HW, op->train);
        break;
    case OP_AVGPOOL: avgpool_forward_tangent(ty, tx, op->B, op->C, op->H, op->W, op->K, op->S); break;
    case OP_MAXPOOL: maxpool_forward_tangent(ty, op->argmax, tx, op->B, op->C, op->H, op->W, op->K, op->S); break;
    }
}

static inline void so_op_backward_tangent(SoOp *op, real *tdx, real **tdp, const real *dy, const real *tdy,
                                          const real *x, const real *tx, real *const *p, real *const *tp) {
    int HW = op->H * op->W;
    const real *t0 = tp ? tp[0] : NULL;
    real *d0 = tdp ? tdp[0] : NULL, *d1 = tdp ? tdp[1] : NULL;
    switch (op->kind) {
    case OP_CONV:
        conv2d_backward_tangent(tdx, d0, d1, dy, tdy, x, tx, p[0], t0, op->B, op->C, op->H, op->W, op->O, op->K, op->S,
                                op->P);
        break;
    case OP_LINEAR: linear_backward_tangent(tdx, d0, d1, dy, tdy, x, tx, p[0], t0, op->B, op->C * HW, op->O); break;
    case OP_ACT:
        if (tdx) act_backward_tangent(tdx, dy, tdy, x, tx, op->nx, op->act, op->slope);
        break;
    case OP_GN:
        groupnorm_backward_tangent(tdx, d0, d1, dy, tdy, op->mean, op->rstd, x, tx, p[0], t0, op->B, op->C, HW, op->G);
        break;
    case OP_LN:
        layernorm_backward_tangent(tdx, d0, d1, dy, tdy, op->mean, op->rstd, x, tx, p[0], t0, op->B, op->C * HW);
        break;
    case OP_BN:
        batchnorm_backward_tangent(tdx, d0, d1, dy, tdy, op->mean, op->rstd, x, tx, p[0], t0, op->B, op->C, HW,
                                   op->train);
        break;
    case OP_AVGPOOL:
        if (tdx) avgpool_backward_tangent(tdx, tdy, op->B, op->C, op->H, op->W, op->K, op->S);
        break;
    case OP_MAXPOOL:
        if (tdx) maxpool_backward_tangent(tdx, tdy, op->argmax, op->B, op->C, op->H, op->W, op->K, op->S);
        break;
    }
}

static inline real *so_zeros(size_t n) { return calloc(n ? n : 1, sizeof(real)); }

static inline void so_op_zero_params(const SoOp *op, real **dp) {
    for (int i = 0; i < op->nparams; i++) memset(dp[i], 0, sizeof(real) * op->np[i]);
}

// gradient of L = sum(R y + S y^2 / 2); dx, dp overwritten (dp may be NULL)
static inline void so_op_composite_grad(SoOp *op, real *dx, real **dp, const real *x, real *const *p, const real *R,
                                        const real *S) {
    real *y = so_zeros(op->ny);
    so_op_forward(op, y, x, p);
    for (size_t i = 0; i < op->ny; i++) y[i] = R[i] + S[i] * y[i];
    memset(dx, 0, sizeof(real) * op->nx);
    if (dp) so_op_zero_params(op, dp);
    so_op_backward(op, dx, dp, y, x, p);
    free(y);
}

// its tangent in the direction (u, v): hx, hp overwritten; u NULL: a fixed input
static inline void so_op_composite_hvp(SoOp *op, real *hx, real **hp, const real *x, real *const *p, const real *R,
                                       const real *S, const real *u, real *const *v) {
    real *y = so_zeros(op->ny), *ty = so_zeros(op->ny);
    so_op_forward(op, y, x, p);
    so_op_forward_tangent(op, ty, x, u, p, op->nparams ? v : NULL);
    for (size_t i = 0; i < op->ny; i++) y[i] = R[i] + S[i] * y[i], ty[i] = S[i] * ty[i];
    memset(hx, 0, sizeof(real) * op->nx);
    if (hp) so_op_zero_params(op, hp);
    so_op_backward_tangent(op, hx, hp, y, ty, x, u, p, op->nparams ? v : NULL);
    free(y), free(ty);
}

// ----------------------------------------------------------------------------
// a chain of ops ending in the mean cross-entropy with hard labels

#define CHAIN_MAX 24

typedef struct {
    int n;
    SoOp op[CHAIN_MAX];
    real *p[CHAIN_MAX][2];  // parameters (borrowed)
    real *v[CHAIN_MAX][2];  // their tangents (borrowed), used by so_chain_hvp
    const int *labels;
    int K;
    real *act[CHAIN_MAX + 1]; // act[0] = x (borrowed), act[i + 1] = op i's output
} SoChain;

static inline double so_chain_forward(SoChain *c, const real *x, real *logits_grad) {
    c->act[0] = (real *)x;
    for (int i = 0; i < c->n; i++) {
        free(c->act[i + 1]);
        c->act[i + 1] = so_zeros(c->op[i].ny);
        so_op_forward(&c->op[i], c->act[i + 1], c->act[i], c->p[i]);
    }
    return crossentropy_forward_backward(logits_grad, c->act[c->n], c->labels, NULL, c->op[0].B, c->K);
}

// loss, grad_x (dx, may be NULL) and grad_theta (dp[i][j], overwritten)
static inline double so_chain_grad(SoChain *c, const real *x, real *dx, real *(*dp)[2]) {
    real *g = so_zeros(c->op[c->n - 1].ny);
    double loss = so_chain_forward(c, x, g);
    for (int i = c->n - 1; i >= 0; i--) {
        SoOp *op = &c->op[i];
        real *gin = so_zeros(op->nx);
        so_op_zero_params(op, dp[i]);
        so_op_backward(op, gin, dp[i], g, c->act[i], c->p[i]);
        free(g);
        g = gin;
    }
    if (dx) memcpy(dx, g, sizeof(real) * c->op[0].nx);
    free(g);
    return loss;
}

// tangent of (grad_x, grad_theta) for tangents (u on x, c->v on theta): hx, hp overwritten
static inline void so_chain_hvp(SoChain *c, const real *x, const real *u, real *hx, real *(*hp)[2]) {
    int n = c->n;
    real *g[CHAIN_MAX + 1] = {0}, *t[CHAIN_MAX + 1] = {0};
    g[n] = so_zeros(c->op[n - 1].ny);
    so_chain_forward(c, x, g[n]);
    // primal backward, keeping every layer's output gradient
    for (int i = n - 1; i >= 0; i--) {
        g[i] = so_zeros(c->op[i].nx);
        so_op_backward(&c->op[i], g[i], NULL, g[i + 1], c->act[i], c->p[i]);
    }
    // forward tangent
    t[0] = (real *)u;
    for (int i = 0; i < n; i++) {
        t[i + 1] = so_zeros(c->op[i].ny);
        so_op_forward_tangent(&c->op[i], t[i + 1], c->act[i], t[i], c->p[i], c->op[i].nparams ? c->v[i] : NULL);
    }
    // backward tangent from the cross-entropy's
    real *tg = so_zeros(c->op[n - 1].ny);
    crossentropy_backward_tangent(tg, c->act[n], t[n], NULL, c->op[0].B, c->K);
    for (int i = n - 1; i >= 0; i--) {
        SoOp *op = &c->op[i];
        real *tin = so_zeros(op->nx);
        so_op_zero_params(op, hp[i]);
        so_op_backward_tangent(op, tin, hp[i], g[i + 1], tg, c->act[i], t[i], c->p[i], op->nparams ? c->v[i] : NULL);
        free(tg);
        tg = tin;
    }
    memcpy(hx, tg, sizeof(real) * c->op[0].nx);
    free(tg);
    for (int i = 0; i <= n; i++) {
        free(g[i]);
        if (i > 0) free(t[i]);
    }
}

// DC's ConvNet as a chain (the ops only; parameters are set by the caller, in
// state_dict order: per block conv weight, bias, [norm weight, bias], then the classifier)
static inline void so_chain_convnet(SoChain *c, int B, int ch, int im, int width, int depth, ActKind act, real slope,
                                    const char *norm, const char *pool, int train, int K) {
    memset(c, 0, sizeof(*c));
    int C = ch, H = im, W = im;
    c->K = K;
    for (int d = 0; d < depth; d++) {
        int pad = ch == 1 && d == 0 ? 3 : 1;
        c->op[c->n++] = (SoOp){.kind = OP_CONV, .B = B, .C = C, .H = H, .W = W, .O = width, .K = 3, .S = 1, .P = pad};
        so_op_setup(&c->op[c->n - 1]);
        C = width, H = c->op[c->n - 1].Ho, W = c->op[c->n - 1].Wo;
        SoOp nop = {.B = B, .C = C, .H = H, .W = W, .G = C, .train = train};
        if (!strcmp(norm, "instancenorm")) nop.kind = OP_GN;
        else if (!strcmp(norm, "groupnorm")) nop.kind = OP_GN, nop.G = 4;
        else if (!strcmp(norm, "batchnorm")) nop.kind = OP_BN;
        else if (!strcmp(norm, "layernorm")) nop.kind = OP_LN;
        if (strcmp(norm, "none")) c->op[c->n++] = nop, so_op_setup(&c->op[c->n - 1]);
        c->op[c->n++] = (SoOp){.kind = OP_ACT, .B = B, .C = C, .H = H, .W = W, .act = act, .slope = slope};
        so_op_setup(&c->op[c->n - 1]);
        if (strcmp(pool, "none")) {
            c->op[c->n++] = (SoOp){.kind = strcmp(pool, "maxpooling") ? OP_AVGPOOL : OP_MAXPOOL, .B = B, .C = C, .H = H,
                                 .W = W, .K = 2, .S = 2};
            so_op_setup(&c->op[c->n - 1]);
            H /= 2, W /= 2;
        }
    }
    c->op[c->n++] = (SoOp){.kind = OP_LINEAR, .B = B, .C = C, .H = H, .W = W, .O = K};
    so_op_setup(&c->op[c->n - 1]);
}

static inline void so_chain_free(SoChain *c) {
    for (int i = 0; i < c->n; i++) {
        so_op_free(&c->op[i]);
        free(c->act[i + 1]);
        c->act[i + 1] = NULL;
    }
}

#endif
