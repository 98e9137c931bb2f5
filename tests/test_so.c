/*
 * test_so.c: second-order differentiation (src/nn/tangent.h) against PyTorch's double
 * backward (tests/fixtures/so_layers.bin and so_models.bin, from
 * tests/scripts/gen_so_fixtures.py; references computed in float64).
 *
 * Per layer: the tangent of the gradient of L = sum(R y + S y^2 / 2) in a direction
 * (u, v), i.e. grad_(x, theta) [u . grad_x L + v . grad_theta L]; with u = 0 ("mixed")
 * its x part is grad_x (v . grad_theta L), what DC and MTT differentiate. The optimised
 * convolution tangents are also checked against the ones built on the naive kernels.
 * Whole ConvNets (every variant's layer kinds, BatchNorm in both modes): the same two
 * products for the mean cross-entropy, through the layer chain of tests/so_ops.h and
 * through the library's driver net_hvp; and a residual graph through net_hvp.
 * Central differences in double precision are in test_gradcheck.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "../src/models/net_hvp.h"
#include "harness.h"
#include "so_ops.h"

static Fixture F;
#define T(...) fixture_getf(&F, __VA_ARGS__)

static double max_abs(const FixTensor *t) {
    double mx = 0;
    for (size_t i = 0; i < t->n; i++) mx = fmax(mx, fabs(t->data[i]));
    return mx;
}

// |got - ref| <= 1e-4 |ref| + 1e-5 scale: relative, with a floor for values that cancel
// to near zero (scale: the largest value of the tensor, or of the family of tensors it
// belongs to; a conv bias before a normalisation has an exactly zero gradient, and its
// float rounding is judged against the other parameters')
static void check_rel_scaled(const char *what, const float *got, const FixTensor *ref, double scale) {
    check_close(what, got, ref->data, ref->n, 1e-5 * scale + 1e-7, 1e-4);
}
static void check_rel(const char *what, const float *got, const FixTensor *ref) {
    check_rel_scaled(what, got, ref, max_abs(ref));
}

static void layer_case(const char *name, SoOp op, int mixed) {
    const FixTensor *x = T("%s.x", name), *R = T("%s.R", name), *S = T("%s.S", name), *u = T("%s.u", name),
                    *hx = T("%s.hx", name);
    if (!x || !R || !S || !u || !hx) return;
    op.B = (int)x->shape[0], op.C = (int)x->shape[1];
    op.H = x->ndim > 2 ? (int)x->shape[2] : 1, op.W = x->ndim > 3 ? (int)x->shape[3] : 1;
    const FixTensor *rm = NULL, *rv = NULL;
    if (op.kind == OP_BN && !op.train) {
        rm = T("%s.running_mean", name), rv = T("%s.running_var", name);
        if (!rm || !rv) return;
        op.rm = rm->data, op.rv = rv->data;
    }
    so_op_setup(&op);
    CHECK(op.ny == R->n, "%s: output size %zu, fixture %zu", name, op.ny, R->n);
    if (op.ny != R->n) return so_op_free(&op);
    float *p[2] = {0}, *v[2] = {0}, *hp[2] = {0};
    const FixTensor *href[2] = {0};
    for (int i = 0; i < op.nparams; i++) {
        const FixTensor *pt = T("%s.p%d", name, i), *vt = T("%s.v%d", name, i);
        href[i] = T("%s.h%d", name, i);
        if (!pt || !vt || !href[i]) return so_op_free(&op);
        p[i] = pt->data, v[i] = vt->data, hp[i] = so_zeros(op.np[i]);
    }
    float *gx = so_zeros(op.nx);
    so_op_composite_hvp(&op, gx, hp, x->data, p, R->data, S->data, mixed ? NULL : u->data, v);
    char what[96];
    snprintf(what, sizeof(what), "%s: tangent of grad_x", name);
    check_rel(what, gx, hx);
    for (int i = 0; i < op.nparams; i++) {
        snprintf(what, sizeof(what), "%s: tangent of grad of param %d", name, i);
        check_rel(what, hp[i], href[i]);
        free(hp[i]);
    }
    free(gx);
    so_op_free(&op);
}

static void test_layers(void) {
    int convs[][3] = {{3, 1, 1}, {3, 2, 1}, {1, 1, 0}, {5, 2, 2}, {3, 1, 3}};
    char name[64];
    for (int c = 0; c < 5; c++)
        for (int mixed = 1; mixed >= 0; mixed--) {
            int k = convs[c][0], s = convs[c][1], pd = convs[c][2];
            snprintf(name, sizeof(name), "conv_k%ds%dp%d_%s", k, s, pd, mixed ? "mixed" : "full");
            layer_case(name, (SoOp){.kind = OP_CONV, .O = 4, .K = k, .S = s, .P = pd}, mixed);
        }
    layer_case("linear_mixed", (SoOp){.kind = OP_LINEAR, .O = 4}, 1);
    layer_case("linear_full", (SoOp){.kind = OP_LINEAR, .O = 4}, 0);
    layer_case("relu", (SoOp){.kind = OP_ACT, .act = ACT_RELU}, 0);
    layer_case("leaky_relu", (SoOp){.kind = OP_ACT, .act = ACT_LEAKY_RELU, .slope = 0.01f}, 0);
    layer_case("sigmoid", (SoOp){.kind = OP_ACT, .act = ACT_SIGMOID}, 0);
    layer_case("silu", (SoOp){.kind = OP_ACT, .act = ACT_SILU}, 0);
    layer_case("gelu", (SoOp){.kind = OP_ACT, .act = ACT_GELU}, 0);
    for (int mixed = 1; mixed >= 0; mixed--) {
        const char *m = mixed ? "mixed" : "full";
        snprintf(name, sizeof(name), "groupnorm_%s", m);
        layer_case(name, (SoOp){.kind = OP_GN, .G = 3}, mixed);
        snprintf(name, sizeof(name), "instancenorm_%s", m);
        layer_case(name, (SoOp){.kind = OP_GN, .G = 6}, mixed);
        snprintf(name, sizeof(name), "layernorm_%s", m);
        layer_case(name, (SoOp){.kind = OP_LN}, mixed);
        snprintf(name, sizeof(name), "batchnorm_train_%s", m);
        layer_case(name, (SoOp){.kind = OP_BN, .train = 1}, mixed);
        snprintf(name, sizeof(name), "batchnorm_eval_%s", m);
        layer_case(name, (SoOp){.kind = OP_BN, .train = 0}, mixed);
    }
    int pools[][2] = {{2, 2}, {3, 2}, {3, 1}};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "avgpool_k%ds%d", pools[i][0], pools[i][1]);
        layer_case(name, (SoOp){.kind = OP_AVGPOOL, .K = pools[i][0], .S = pools[i][1]}, 0);
        snprintf(name, sizeof(name), "maxpool_k%ds%d", pools[i][0], pools[i][1]);
        layer_case(name, (SoOp){.kind = OP_MAXPOOL, .K = pools[i][0], .S = pools[i][1]}, 0);
    }
}

static void test_crossentropy(void) {
    for (int soft = 0; soft < 2; soft++) {
        const char *name = soft ? "ce_soft" : "ce_hard";
        const FixTensor *z = T("%s.logits", name), *u = T("%s.u", name), *hz = T("%s.hz", name);
        const FixTensor *tg = soft ? T("%s.targets", name) : NULL;
        if (!z || !u || !hz || (soft && !tg)) continue;
        int B = (int)z->shape[0], K = (int)z->shape[1];
        float *got = so_zeros(z->n);
        crossentropy_backward_tangent(got, z->data, u->data, tg ? tg->data : NULL, B, K);
        char what[64];
        snprintf(what, sizeof(what), "%s: tangent of d(loss)/d(logits)", name);
        check_rel(what, got, hz);
        free(got);
    }
}

// the convolution tangents on the optimised kernels against those on the naive ones,
// with every tangent present and with each absent
static void test_conv_vs_naive(void) {
    Rng r;
    rng_init(&r, 11, 0);
    // the last two: Winograd in both passes (F(2x2); F(4x4) at 13 px and wider) for the plans
    int shapes[][7] = {{2, 3, 9, 8, 5, 3, 1}, {3, 4, 7, 7, 6, 3, 2}, {1, 8, 6, 6, 8, 1, 1},
                       {2, 2, 5, 6, 3, 5, 2}, {2, 8, 10, 12, 8, 3, 1}, {2, 8, 14, 13, 9, 3, 1}};
    for (int t = 0; t < 6; t++) {
        int B = shapes[t][0], C = shapes[t][1], H = shapes[t][2], W = shapes[t][3], O = shapes[t][4], K = shapes[t][5],
            S = shapes[t][6], P = K / 2;
        int Ho = conv2d_out_size(H, K, S, P), Wo = conv2d_out_size(W, K, S, P);
        size_t nx = (size_t)B * C * H * W, nw = (size_t)O * C * K * K, ny = (size_t)B * O * Ho * Wo;
        float *buf[7];
        size_t sz[7] = {nx, nx, nw, nw, (size_t)O, ny, ny};
        for (int i = 0; i < 7; i++) {
            buf[i] = so_zeros(sz[i]);
            for (size_t j = 0; j < sz[i]; j++) buf[i][j] = (float)rng_normal(&r);
        }
        float *x = buf[0], *tx = buf[1], *w = buf[2], *tw = buf[3], *tb = buf[4], *dy = buf[5], *tdy = buf[6];
        for (int mask = 0; mask < 8; mask++) {
            const float *txm = mask & 1 ? tx : NULL, *twm = mask & 2 ? tw : NULL, *tdym = mask & 4 ? tdy : NULL;
            float *ty = so_zeros(ny), *tyr = so_zeros(ny);
            conv2d_forward_tangent(ty, x, txm, w, twm, tb, B, C, H, W, O, K, S, P);
            conv2d_forward_tangent_ref(tyr, x, txm, w, twm, tb, B, C, H, W, O, K, S, P);
            float *g[3], *gr[3];
            size_t gs[3] = {nx, nw, (size_t)O};
            for (int i = 0; i < 3; i++) g[i] = so_zeros(gs[i]), gr[i] = so_zeros(gs[i]);
            conv2d_backward_tangent(g[0], g[1], g[2], dy, tdym, x, txm, w, twm, B, C, H, W, O, K, S, P);
            conv2d_backward_tangent_ref(gr[0], gr[1], gr[2], dy, tdym, x, txm, w, twm, B, C, H, W, O, K, S, P);
            char what[96];
            snprintf(what, sizeof(what), "conv tangent %d mask %d: forward vs naive", t, mask);
            check_close(what, ty, tyr, ny, 1e-4, 1e-4);
            const char *nm[3] = {"t_din", "t_dweight", "t_dbias"};
            for (int i = 0; i < 3; i++) {
                snprintf(what, sizeof(what), "conv tangent %d mask %d: %s vs naive", t, mask, nm[i]);
                check_close(what, g[i], gr[i], gs[i], 1e-4, 1e-4);
            }
            // the same tangents by the layer's plans (net_hvp's path), both Winograd tiles
            for (int tile = 2; tile <= 4; tile += 2) {
                ConvPlan pw, pt;
                conv_plan_init(&pw, C, H, W, O, K, S, P, 0, tile);
                conv_plan_init(&pt, C, H, W, O, K, S, P, 0, tile);
                CHECK(!conv_plan_update(&pw, w, 1) && !conv_plan_update(&pt, tw, 1), "conv plans: out of memory");
                float *tmp = so_zeros(ny);
                conv_plan_forward_tangent(&pw, &pt, ty, tmp, x, txm, w, twm, tb, B);
                snprintf(what, sizeof(what), "conv tangent %d mask %d, plan tile %d: forward vs naive", t, mask, tile);
                check_close(what, ty, tyr, ny, 1e-4, 1e-4);
                for (int i = 0; i < 3; i++) memset(g[i], 0, sizeof(float) * gs[i]);
                conv_plan_backward_tangent(&pw, &pt, g[0], g[1], g[2], dy, tdym, x, txm, w, twm, B);
                for (int i = 0; i < 3; i++) {
                    snprintf(what, sizeof(what), "conv tangent %d mask %d, plan tile %d: %s vs naive", t, mask, tile,
                             nm[i]);
                    check_close(what, g[i], gr[i], gs[i], 1e-4, 1e-4);
                }
                free(tmp);
                conv_plan_free(&pw), conv_plan_free(&pt);
            }
            for (int i = 0; i < 3; i++) free(g[i]), free(gr[i]);
            free(ty), free(tyr);
        }
        for (int i = 0; i < 7; i++) free(buf[i]);
    }
}

// ----------------------------------------------------------------------------
// whole ConvNets

typedef struct {
    const char *name;
    int ch, im, depth;
    ActKind act;
    float slope;
    const char *norm, *pool;
    int train;
} Variant;

static const Variant variants[] = {
    {"default", 3, 32, 3, ACT_RELU, 0, "instancenorm", "avgpooling", 0},
    {"bn_eval", 3, 16, 3, ACT_RELU, 0, "batchnorm", "avgpooling", 0},
    {"bn_train", 3, 16, 3, ACT_RELU, 0, "batchnorm", "avgpooling", 1},
    {"ln", 3, 16, 3, ACT_RELU, 0, "layernorm", "avgpooling", 0},
    {"gn", 3, 16, 3, ACT_RELU, 0, "groupnorm", "avgpooling", 0},
    {"nn", 3, 16, 3, ACT_RELU, 0, "none", "avgpooling", 0},
    {"mp", 3, 16, 3, ACT_RELU, 0, "instancenorm", "maxpooling", 0},
    {"np", 3, 8, 2, ACT_RELU, 0, "instancenorm", "none", 0},
    {"as", 3, 16, 3, ACT_SIGMOID, 0, "instancenorm", "avgpooling", 0},
    {"al", 3, 16, 3, ACT_LEAKY_RELU, 0.01f, "instancenorm", "avgpooling", 0},
    {"swish", 3, 16, 3, ACT_SILU, 0, "instancenorm", "avgpooling", 0},
    {"swish_bn", 3, 16, 3, ACT_SILU, 0, "batchnorm", "avgpooling", 1},
    {"d1", 3, 16, 1, ACT_RELU, 0, "instancenorm", "avgpooling", 0},
    {"mnist", 1, 28, 3, ACT_RELU, 0, "instancenorm", "avgpooling", 0},
};

// the parameter names of a chain's ops in state_dict order ("features.0.weight", ...)
static int chain_param_names(const SoChain *c, char names[][2][48]) {
    int idx = 0;
    for (int i = 0; i < c->n; i++) {
        const SoOp *op = &c->op[i];
        if (op->kind == OP_LINEAR) {
            snprintf(names[i][0], 48, "classifier.weight");
            snprintf(names[i][1], 48, "classifier.bias");
            continue;
        }
        if (op->nparams) {
            snprintf(names[i][0], 48, "features.%d.weight", idx);
            snprintf(names[i][1], 48, "features.%d.bias", idx);
        }
        idx++;
    }
    return 0;
}

static void test_convnets(void) {
    for (size_t vi = 0; vi < sizeof(variants) / sizeof(variants[0]); vi++) {
        const Variant *V = &variants[vi];
        const FixTensor *x = T("%s.x", V->name), *lab = T("%s.labels", V->name), *hx = T("%s.hx", V->name),
                        *loss = T("%s.loss", V->name);
        if (!x || !lab || !hx || !loss) continue;
        int B = (int)x->shape[0];
        SoChain c;
        so_chain_convnet(&c, B, V->ch, V->im, 8, V->depth, V->act, V->slope, V->norm, V->pool, V->train, 10);
        int labels[16];
        for (int b = 0; b < B; b++) labels[b] = (int)lab->data[b];
        c.labels = labels;
        char names[CHAIN_MAX][2][48];
        chain_param_names(&c, names);
        float *hp[CHAIN_MAX][2] = {{0}}, *dp[CHAIN_MAX][2] = {{0}};
        const FixTensor *href[CHAIN_MAX][2] = {{0}};
        int ok = 1;
        for (int i = 0; i < c.n && ok; i++) {
            SoOp *op = &c.op[i];
            for (int j = 0; j < op->nparams && ok; j++) {
                const FixTensor *pt = T("%s.sd.%s", V->name, names[i][j]), *vt = T("%s.v.%s", V->name, names[i][j]);
                href[i][j] = T("%s.h.%s", V->name, names[i][j]);
                ok = pt && vt && href[i][j] && pt->n == op->np[j];
                if (!ok) break;
                c.p[i][j] = pt->data, c.v[i][j] = vt->data;
                hp[i][j] = so_zeros(op->np[j]), dp[i][j] = so_zeros(op->np[j]);
            }
        }
        // eval BatchNorm: its running statistics, by the state_dict index of the norm layer
        for (int i = 0, idx = 0; i < c.n && ok; i++) {
            SoOp *op = &c.op[i];
            if (op->kind == OP_BN && !op->train) {
                const FixTensor *rm = T("%s.sd.features.%d.running_mean", V->name, idx),
                                *rv = T("%s.sd.features.%d.running_var", V->name, idx);
                ok = rm && rv;
                if (ok) op->rm = rm->data, op->rv = rv->data;
            }
            if (op->kind != OP_LINEAR) idx++;
        }
        CHECK(ok, "%s: fixture does not match the chain", V->name);
        if (ok) {
            float *gx = so_zeros(x->n);
            double l = so_chain_grad(&c, x->data, gx, dp);
            CHECK(fabs(l - loss->data[0]) <= 1e-5 * fabs(loss->data[0]) + 1e-6, "%s: loss %.8g, PyTorch %.8g", V->name,
                  l, loss->data[0]);
            so_chain_hvp(&c, x->data, NULL, gx, hp);
            char what[128];
            snprintf(what, sizeof(what), "%s: grad_x (v . grad_theta L)", V->name);
            check_rel(what, gx, hx);
            double scale = 0;
            for (int i = 0; i < c.n; i++)
                for (int j = 0; j < c.op[i].nparams; j++) scale = fmax(scale, max_abs(href[i][j]));
            for (int i = 0; i < c.n; i++)
                for (int j = 0; j < c.op[i].nparams; j++) {
                    snprintf(what, sizeof(what), "%s: (H v) for %s", V->name, names[i][j]);
                    check_rel_scaled(what, hp[i][j], href[i][j], scale);
                }
            free(gx);
        }
        for (int i = 0; i < c.n; i++)
            for (int j = 0; j < 2; j++) free(hp[i][j]), free(dp[i][j]);
        so_chain_free(&c);
    }
}

// the same fixtures through the library's driver (net_hvp) on a Net built by convnet_build,
// per-sample (eval) and layer-wise (BatchNorm in training mode), with 1 and 2 threads
static void test_net_hvp(int threads) {
    parallel_set_threads(threads);
    for (size_t vi = 0; vi < sizeof(variants) / sizeof(variants[0]); vi++) {
        const Variant *V = &variants[vi];
        const FixTensor *x = T("%s.x", V->name), *lab = T("%s.labels", V->name), *hx = T("%s.hx", V->name),
                        *loss = T("%s.loss", V->name), *lg = T("%s.logits", V->name);
        if (!x || !lab || !hx || !loss || !lg) continue;
        static const char *acts[] = {"relu", "leakyrelu", "sigmoid", "swish", "gelu"};
        ConvNetConfig cfg = {.width = 8, .depth = V->depth};
        snprintf(cfg.arch, sizeof(cfg.arch), "so_%s", V->name);
        snprintf(cfg.act, sizeof(cfg.act), "%s",
                 acts[V->act == ACT_RELU ? 0 : V->act == ACT_LEAKY_RELU ? 1 : V->act == ACT_SIGMOID ? 2 : 3]);
        snprintf(cfg.norm, sizeof(cfg.norm), "%s", V->norm);
        snprintf(cfg.pool, sizeof(cfg.pool), "%s", V->pool);
        Net net;
        Err e = {{0}};
        if (convnet_build(&net, &cfg, V->ch, 10, V->im, V->im, &e)) {
            CHECK(0, "%s: %s", V->name, e.msg);
            continue;
        }
        float *v = so_zeros(net.n_params);
        int ok = 1;
        for (int i = 0; i < net.n_entries && ok; i++) {
            const ParamEntry *pe = &net.entries[i];
            if (pe->kind == PENTRY_COUNTER) continue;
            const FixTensor *sd = T("%s.sd.%s", V->name, pe->name);
            ok = sd && sd->n == pe->numel;
            if (!ok) break;
            memcpy((pe->kind == PENTRY_PARAM ? net.params : net.buffers) + pe->offset, sd->data,
                   sizeof(float) * pe->numel);
            if (pe->kind == PENTRY_PARAM) {
                const FixTensor *vt = T("%s.v.%s", V->name, pe->name);
                ok = vt && vt->n == pe->numel;
                if (ok) memcpy(v + pe->offset, vt->data, sizeof(float) * pe->numel);
            }
        }
        CHECK(ok, "%s: fixture does not match the Net", V->name);
        int B = (int)x->shape[0], labels[16];
        for (int b = 0; b < B; b++) labels[b] = (int)lab->data[b];
        float *hv = so_zeros(net.n_params), *grad = so_zeros(net.n_params), *dx = so_zeros(x->n),
              *logits = so_zeros(lg->n);
        NetHvp h = {.labels = labels, .v = v, .train = V->train, .grad = grad, .hv = hv, .dx = dx, .logits = logits};
        if (ok && net_hvp(&net, x->data, B, &h, &e)) {
            CHECK(0, "%s: net_hvp: %s", V->name, e.msg);
            ok = 0;
        }
        if (ok) {
            char what[128];
            snprintf(what, sizeof(what), "%s (net_hvp, %d threads): logits", V->name, threads);
            check_rel(what, logits, lg);
            CHECK(fabs(h.loss - loss->data[0]) <= 1e-5 * fabs(loss->data[0]) + 1e-6, "%s: loss %.8g, PyTorch %.8g",
                  V->name, h.loss, loss->data[0]);
            snprintf(what, sizeof(what), "%s (net_hvp, %d threads): grad_x (v . grad_theta L)", V->name, threads);
            check_rel(what, dx, hx);
            double scale = 0, gscale = 0;
            int with_g = !strcmp(V->name, "default");
            for (int i = 0; i < net.n_entries; i++)
                if (net.entries[i].kind == PENTRY_PARAM) {
                    const FixTensor *hr = T("%s.h.%s", V->name, net.entries[i].name);
                    const FixTensor *gr = with_g ? T("%s.g.%s", V->name, net.entries[i].name) : NULL;
                    if (hr) scale = fmax(scale, max_abs(hr));
                    if (gr) gscale = fmax(gscale, max_abs(gr));
                }
            for (int i = 0; i < net.n_entries; i++) {
                const ParamEntry *pe = &net.entries[i];
                if (pe->kind != PENTRY_PARAM) continue;
                const FixTensor *hr = T("%s.h.%s", V->name, pe->name);
                if (!hr) continue;
                snprintf(what, sizeof(what), "%s (net_hvp, %d threads): H v for %s", V->name, threads, pe->name);
                check_rel_scaled(what, hv + pe->offset, hr, scale);
                if (with_g) {
                    const FixTensor *gr = T("%s.g.%s", V->name, pe->name);
                    snprintf(what, sizeof(what), "%s (net_hvp, %d threads): grad for %s", V->name, threads, pe->name);
                    if (gr) check_rel_scaled(what, grad + pe->offset, gr, gscale);
                }
            }
        }
        free(v), free(hv), free(grad), free(dx), free(logits);
        net_free(&net);
    }
}

// a residual graph (tests/scripts/gen_so_fixtures.py's Residual) built with the graph API
static int build_residual(Net *net, Err *e) {
    net_begin(net, "residual", 3, 8, 8);
    if (net_add_conv(net, "c1", 8, 3, 1, 1, e) || net_add_act(net, "r1", ACT_RELU, 0, e)) return -1;
    int a = net_last(net);
    if (net_add_conv(net, "c2", 8, 3, 1, 1, e) || net_add_batchnorm(net, "n2", e) ||
        net_add_act(net, "s2", ACT_SILU, 0, e) || net_add_conv_ex(net, "c3", 8, 3, 1, 1, 0, e))
        return -1;
    int b = net_last(net);
    if (net_add_sum(net, "sum", a, b, e) || net_add_act(net, "r2", ACT_RELU, 0, e) ||
        net_add_pool(net, "pool", LAYER_AVGPOOL, 2, 2, e) || net_add_linear(net, "fc", 10, e))
        return -1;
    return net_finish(net, e);
}

static void test_residual(int threads) {
    parallel_set_threads(threads);
    for (int train = 0; train < 2; train++) {
        const char *name = train ? "res_train" : "res_eval";
        const FixTensor *x = T("%s.x", name), *lab = T("%s.labels", name), *hx = T("%s.hx", name),
                        *loss = T("%s.loss", name), *lg = T("%s.logits", name);
        if (!x || !lab || !hx || !loss || !lg) continue;
        Net net;
        Err e;
        if (build_residual(&net, &e)) {
            CHECK(0, "residual graph: %s", e.msg);
            continue;
        }
        float *v = so_zeros(net.n_params), *hv = so_zeros(net.n_params), *dx = so_zeros(x->n), *z = so_zeros(lg->n);
        int ok = 1;
        for (int i = 0; i < net.n_entries && ok; i++) {
            const ParamEntry *pe = &net.entries[i];
            if (pe->kind == PENTRY_COUNTER) continue;
            const FixTensor *sd = T("%s.sd.%s", name, pe->name);
            ok = sd && sd->n == pe->numel;
            if (!ok) break;
            memcpy((pe->kind == PENTRY_PARAM ? net.params : net.buffers) + pe->offset, sd->data,
                   sizeof(float) * pe->numel);
            const FixTensor *vt = pe->kind == PENTRY_PARAM ? T("%s.v.%s", name, pe->name) : NULL;
            if (vt) memcpy(v + pe->offset, vt->data, sizeof(float) * pe->numel);
        }
        int labels[2] = {(int)lab->data[0], (int)lab->data[1]};
        NetHvp h = {.labels = labels, .v = v, .train = train, .hv = hv, .dx = dx, .logits = z};
        if (ok && net_hvp(&net, x->data, 2, &h, &e)) CHECK(0, "%s: %s", name, e.msg);
        char what[128];
        snprintf(what, sizeof(what), "%s (graph, %d threads): logits", name, threads);
        if (ok) check_rel(what, z, lg);
        snprintf(what, sizeof(what), "%s (graph, %d threads): grad_x (v . grad_theta L)", name, threads);
        if (ok) check_rel(what, dx, hx);
        double scale = 0;
        for (int i = 0; ok && i < net.n_entries; i++)
            if (net.entries[i].kind == PENTRY_PARAM) {
                const FixTensor *hr = T("%s.h.%s", name, net.entries[i].name);
                if (hr) scale = fmax(scale, max_abs(hr));
            }
        for (int i = 0; ok && i < net.n_entries; i++) {
            const ParamEntry *pe = &net.entries[i];
            if (pe->kind != PENTRY_PARAM) continue;
            const FixTensor *hr = T("%s.h.%s", name, pe->name);
            snprintf(what, sizeof(what), "%s (graph, %d threads): H v for %s", name, threads, pe->name);
            if (hr) check_rel_scaled(what, hv + pe->offset, hr, scale);
        }
        CHECK(ok, "%s: fixture does not match the graph", name);
        free(v), free(hv), free(dx), free(z);
        net_free(&net);
    }
}

// net_hvp's convolutions by their plans (Winograd F(2x2) or F(4x4), the direct first
// layer) against the same pass with every convolution by im2col + sgemm (BEARD_CONV=im2col),
// at a ConvNet's real shapes (32 px, 16 channels: every plan's algorithm runs), per sample
// (instance norm) and batch-coupled (BatchNorm in training mode)
static void test_hvp_plans_vs_im2col(int threads) {
    parallel_set_threads(threads);
    static const char *norms[] = {"instancenorm", "batchnorm"};
    for (int ni = 0; ni < 2; ni++)
        for (int tile = 2; tile <= 4; tile += 2) {
            ConvNetConfig cfg = {.width = 16, .depth = 3};
            snprintf(cfg.arch, sizeof(cfg.arch), "so_plans");
            snprintf(cfg.act, sizeof(cfg.act), "relu");
            snprintf(cfg.norm, sizeof(cfg.norm), "%s", norms[ni]);
            snprintf(cfg.pool, sizeof(cfg.pool), "avgpooling");
            Net net;
            Err e = {{0}};
            if (convnet_build(&net, &cfg, 3, 10, 32, 32, &e)) {
                CHECK(0, "plans vs im2col: %s", e.msg);
                continue;
            }
            net_init_params(&net, 5);
            enum { B = 3 };
            size_t P = net.n_params, nx = (size_t)B * net_in_size(&net);
            Rng r;
            rng_init(&r, 17, 0);
            float *v = so_zeros(P), *x = so_zeros(nx), *out[2][4];
            for (size_t i = 0; i < P; i++) v[i] = 0.01f * (float)rng_normal(&r);
            for (size_t i = 0; i < nx; i++) x[i] = (float)rng_uniform(&r);
            int labels[B] = {1, 7, 4};
            size_t sz[4] = {P, P, nx, (size_t)B * 10};
            for (int k = 0; k < 2; k++) { // k 0: the plans, 1: im2col everywhere
                net.conv_im2col = k, net.conv_tile = tile;
                for (int i = 0; i < 4; i++) out[k][i] = so_zeros(sz[i]);
                NetHvp h = {.labels = labels, .v = v, .train = ni == 1, .grad = out[k][0], .hv = out[k][1],
                            .dx = out[k][2], .logits = out[k][3]};
                if (net_hvp(&net, x, B, &h, &e)) CHECK(0, "plans vs im2col: net_hvp: %s", e.msg);
            }
            static const char *nm[4] = {"grad", "H v", "grad_x (v . grad_theta L)", "logits"};
            for (int i = 0; i < 4; i++) {
                double mx = 0;
                for (size_t j = 0; j < sz[i]; j++) mx = fmax(mx, fabs(out[1][i][j]));
                char what[160];
                snprintf(what, sizeof(what), "net_hvp %s, tile %d, %d threads: %s by the plans vs im2col", norms[ni],
                         tile, threads, nm[i]);
                check_close(what, out[0][i], out[1][i], sz[i], 1e-5 * mx, 1e-4);
                free(out[0][i]), free(out[1][i]);
            }
            free(v), free(x);
            net_free(&net);
        }
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    if (fixture_load("tests/fixtures/so_layers.bin", &F) == 0) {
        test_layers();
        test_crossentropy();
        fixture_free(&F);
    }
    test_conv_vs_naive();
    test_hvp_plans_vs_im2col(1);
    test_hvp_plans_vs_im2col(2);
    if (fixture_load("tests/fixtures/so_models.bin", &F) == 0) {
        test_convnets();
        test_net_hvp(1);
        test_net_hvp(2);
        test_residual(1);
        test_residual(2);
        fixture_free(&F);
    }
    return test_done("test_so");
}
