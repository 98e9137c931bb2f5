/*
 * test_distill_so.c: step fidelity of DC, DSA and MTT (src/distill/dc.c, mtt.c) against
 * PyTorch ports of the official loops (tests/scripts/dd_reference.py; fixture
 * tests/fixtures/distill/so_steps.bin from tests/scripts/gen_distill_so_fixtures.py), run
 * from the same fixed inputs: network weights, real batches, synthetic sets, DSA draws,
 * expert parameters and minibatch indices. Compared: the loss, the gradient w.r.t. the
 * synthetic images (and syn_lr), the images (and syn_lr) after the SGD step, and the
 * network after DC's inner-loop step; within 1e-4 relative (1e-5 of the tensor's scale
 * absolute). Also MTT's DSA (align_corners=True) on its own, and its ZCA whitening
 * against kornia (tests/fixtures/distill/zca.bin, gen_zca_fixtures.py). MTT's replay
 * buffers: one written by torch.save in buffer.py's layout is read back exactly; beard's
 * own experts are trained, written and read back; buffers of another architecture or
 * dataset are refused with both named.
 *
 * Convolutions. The first-order passes (DC's real gradient, MTT's forward sweep) run their
 * forward convolutions by Winograd F(2x2, 3x3) where it applies, whose float32 rounding is
 * several times im2col's (test_nn bounds it against the naive sum); DC's distance
 * amplifies that on the few entries where a synthetic gradient row nearly vanishes. The
 * cases therefore run twice: with im2col convolutions at the tolerance above, and on the
 * default (Winograd) path at 1e-3 relative, so that both paths are held to PyTorch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "../src/core/parallel.h"
#include "../src/data/pool.h"
#include "../src/data/zca.h"
#include "../src/distill/distill.h"
#include "../src/distill/dc.h"
#include "../src/distill/mtt.h"
#include "../src/distill/mtt_buffer.h"
#include "../src/models/convnet.h"
#include "../src/nn/optim.h"
#include "harness.h"

static Fixture F;
#define T(...) fixture_getf(&F, __VA_ARGS__)

enum { K = 3, IPC = 2, NREAL = 6, RES = 8, WIDTH = 8 };

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static int g_im2col = 1; // the convolution path of this pass (see the top)
static double g_rtol = 1e-4;

static void check_rel(const char *what, const float *got, const FixTensor *ref) {
    if (!ref) return;
    char w[200];
    snprintf(w, sizeof(w), "%s (%s)", what, g_im2col ? "im2col" : "winograd");
    check_close(w, got, ref->data, ref->n, 0.1 * g_rtol * max_abs(ref->data, ref->n) + 1e-8, g_rtol);
}

static void check_scalar(const char *what, double got, const FixTensor *ref) {
    if (!ref) return;
    double want = ref->data[0];
    CHECK(fabs(got - want) <= g_rtol * fabs(want) + 1e-7, "%s (%s): %.8g, PyTorch %.8g", what,
          g_im2col ? "im2col" : "winograd", got, want);
}

// a width-8 ConvNet on 8x8 images with 3 classes, weights (and buffers) from prefix.*
static int make_net(Net *net, const char *norm, const char *prefix) {
    ConvNetConfig cfg = {.width = WIDTH, .depth = 3};
    snprintf(cfg.arch, sizeof(cfg.arch), "ConvNet");
    snprintf(cfg.act, sizeof(cfg.act), "relu");
    snprintf(cfg.norm, sizeof(cfg.norm), "%s", norm);
    snprintf(cfg.pool, sizeof(cfg.pool), "avgpooling");
    Err e;
    if (convnet_build(net, &cfg, 3, K, RES, RES, &e)) {
        CHECK(0, "%s", e.msg);
        return -1;
    }
    net->conv_im2col = g_im2col;
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind == PENTRY_COUNTER) continue;
        const FixTensor *t = T("%s.%s", prefix, pe->name);
        if (!t || t->n != pe->numel) {
            CHECK(0, "%s.%s missing or of the wrong size", prefix, pe->name);
            net_free(net);
            return -1;
        }
        float *dst = (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset;
        memcpy(dst, t->data, sizeof(float) * pe->numel);
    }
    return 0;
}

// every parameter (and BatchNorm buffer) of net against prefix.*
static void check_net(const char *what, const Net *net, const char *prefix) {
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind == PENTRY_COUNTER) continue;
        const FixTensor *t = T("%s.%s", prefix, pe->name);
        if (!t) continue;
        char w[160];
        snprintf(w, sizeof(w), "%s: %s", what, pe->name);
        check_rel(w, (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset, t);
    }
}

// a fixture draw (prefix.op, prefix.p.*) for B samples into s
static int load_draw(const char *prefix, DsaDraw *d, DsaSample *s, int B) {
    const FixTensor *op = T("%s.op", prefix), *br = T("%s.p.brightness", prefix), *sa = T("%s.p.saturation", prefix),
                    *co = T("%s.p.contrast", prefix), *cx = T("%s.p.crop_x", prefix), *cy = T("%s.p.crop_y", prefix),
                    *ux = T("%s.p.cutout_x", prefix), *uy = T("%s.p.cutout_y", prefix), *fl = T("%s.p.flip", prefix),
                    *sx = T("%s.p.scale_x", prefix), *sy = T("%s.p.scale_y", prefix), *an = T("%s.p.angle", prefix);
    if (!op || !br || !sa || !co || !cx || !cy || !ux || !uy || !fl || !sx || !sy || !an || (int)br->n < B) return -1;
    for (int b = 0; b < B; b++)
        s[b] = (DsaSample){.brightness = br->data[b], .saturation = sa->data[b], .contrast = co->data[b],
                           .crop_x = (int)cx->data[b], .crop_y = (int)cy->data[b], .cutout_x = (int)ux->data[b],
                           .cutout_y = (int)uy->data[b], .flip = fl->data[b] > 0, .scale_x = sx->data[b],
                           .scale_y = sy->data[b], .angle = an->data[b]};
    *d = (DsaDraw){.op = (DsaOp)(int)op->data[0], .B = B, .s = s};
    return 0;
}

// one DC/DSA outer step from the fixture's inputs; with_draws: case.draw{c} per class
static void dc_case(const char *name, const char *norm, const char *sd, const char *synname, DcDistance dist,
                    int with_draws, const char *inner_draw, const char *inner_ref, const char *bn_ref) {
    Net net;
    if (make_net(&net, norm, sd)) return;
    const FixTensor *xr = T("real"), *syn = T("%s", synname);
    if (!xr || !syn) return net_free(&net);
    size_t in = net_in_size(&net), n = (size_t)K * IPC * in;
    DsaConfig cfg;
    dsa_config_default(&cfg);
    DcWork w = {0};
    Err e;
    char what[128];
    if (bn_ref) {
        const FixTensor *bn = T("dcbn.bn_real");
        if (!bn || dc_bn_statistics(&net, bn->data, (int)bn->shape[0], &e)) CHECK(0, "BatchNorm statistics");
        snprintf(what, sizeof(what), "%s: running statistics", name);
        check_net(what, &net, bn_ref);
    }
    float *g = calloc(n, sizeof(float));
    double loss = 0;
    for (int c = 0; c < K; c++) {
        DsaDraw d;
        DsaSample s[1];
        char pre[64];
        snprintf(pre, sizeof(pre), "%s.draw%d", name, c);
        if (with_draws && load_draw(pre, &d, s, 1)) {
            CHECK(0, "%s: no draw", pre);
            break;
        }
        double l;
        if (dc_match_class(&net, xr->data + (size_t)c * NREAL * in, NREAL, syn->data + (size_t)c * IPC * in, IPC, c,
                           with_draws ? &d : NULL, &cfg, dist, &l, g + (size_t)c * IPC * in, &w, &e)) {
            CHECK(0, "%s: %s", name, e.msg);
            break;
        }
        loss += l;
    }
    const char *dn = dc_distance_name(dist);
    snprintf(what, sizeof(what), "%s (%s): loss", name, dn);
    check_scalar(what, loss, T("%s.%s.loss", name, dn));
    snprintf(what, sizeof(what), "%s (%s): gradient w.r.t. the synthetic images", name, dn);
    check_rel(what, g, T("%s.%s.grad", name, dn));
    // the image step: torch.optim.SGD(lr_img 0.1, momentum 0.5), its first step
    float *x = malloc(sizeof(float) * n);
    memcpy(x, syn->data, sizeof(float) * n);
    Optim opt;
    optim_init(&opt, OPTIM_SGD, n, 0.1f, 0.5f, 0.0f);
    optim_step(&opt, x, g);
    optim_free(&opt);
    snprintf(what, sizeof(what), "%s (%s): images after the step", name, dn);
    check_rel(what, x, T("%s.%s.after", name, dn));
    if (inner_ref) {
        int labels[K * IPC];
        for (int i = 0; i < K * IPC; i++) labels[i] = i / IPC;
        DsaDraw d;
        DsaSample s[K * IPC];
        if (inner_draw && load_draw(inner_draw, &d, s, K * IPC)) CHECK(0, "%s: no draw", inner_draw);
        if (dc_net_step(&net, x, labels, K * IPC, 0.01f, inner_draw ? &d : NULL, &cfg, &w, &e))
            CHECK(0, "%s: %s", name, e.msg);
        snprintf(what, sizeof(what), "%s: network after the inner epoch", name);
        check_net(what, &net, inner_ref);
    }
    free(g), free(x);
    dc_work_free(&w);
    net_free(&net);
}

static void mtt_case(void) {
    Net net;
    if (make_net(&net, "instancenorm", "mtt.sd")) return;
    const FixTensor *start = T("mtt.start"), *target = T("mtt.target"), *syn0 = T("mtt.syn");
    if (!start || !target || !syn0 || start->n != net.n_params) return net_free(&net);
    size_t in = net_in_size(&net), n = syn0->n;
    float *syn = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    memcpy(syn, syn0->data, sizeof(float) * n);
    int labels[K * IPC];
    for (int i = 0; i < K * IPC; i++) labels[i] = i / IPC;
    DsaConfig cfg;
    dsa_config_default(&cfg);
    cfg.align_corners = 1;
    Optim oi, ol;
    optim_init(&oi, OPTIM_SGD, n, 100.0f, 0.5f, 0.0f);
    optim_init(&ol, OPTIM_SGD, 1, 1e-5f, 0.5f, 0.0f);
    float syn_lr = 0.01f;
    MttWork w = {0};
    for (int it = 0; it < 2; it++) {
        MttStep steps[5];
        int idx[5][8];
        DsaSample s[5][8];
        int ok = 1;
        for (int k = 0; k < 5 && ok; k++) {
            const FixTensor *ix = T("mtt.it%d.step%d.idx", it, k);
            char pre[64];
            snprintf(pre, sizeof(pre), "mtt.it%d.step%d", it, k);
            ok = ix && ix->n <= 8;
            if (!ok) break;
            for (size_t i = 0; i < ix->n; i++) idx[k][i] = (int)ix->data[i];
            steps[k] = (MttStep){.n = (int)ix->n, .idx = idx[k]};
            ok = !load_draw(pre, &steps[k].draw, s[k], (int)ix->n);
        }
        CHECK(ok, "mtt iteration %d: bad fixture steps", it);
        if (!ok) break;
        double loss, glr;
        Err e;
        if (mtt_unroll(&net, syn, labels, K * IPC, syn_lr, start->data, target->data, steps, 5, &cfg, &loss, g, &glr,
                       &w, &e)) {
            CHECK(0, "mtt: %s", e.msg);
            break;
        }
        char what[96];
        snprintf(what, sizeof(what), "mtt iteration %d: loss", it);
        check_scalar(what, loss, T("mtt.it%d.loss", it));
        snprintf(what, sizeof(what), "mtt iteration %d: gradient w.r.t. the images", it);
        check_rel(what, g, T("mtt.it%d.grad", it));
        snprintf(what, sizeof(what), "mtt iteration %d: gradient w.r.t. syn_lr", it);
        check_scalar(what, glr, T("mtt.it%d.grad_lr", it));
        float gl = (float)glr;
        optim_step(&oi, syn, g);
        optim_step(&ol, &syn_lr, &gl);
        snprintf(what, sizeof(what), "mtt iteration %d: images after the step", it);
        check_rel(what, syn, T("mtt.it%d.after", it));
        snprintf(what, sizeof(what), "mtt iteration %d: syn_lr after the step", it);
        check_scalar(what, syn_lr, T("mtt.it%d.lr_after", it));
    }
    (void)in;
    optim_free(&oi), optim_free(&ol);
    mtt_work_free(&w);
    free(syn), free(g);
    net_free(&net);
}

// MTT's scale and rotate (align_corners=True), output and input gradient
static void dsa_align_case(void) {
    const FixTensor *x = T("dsa_ac.x"), *dout = T("dsa_ac.dout");
    if (!x || !dout) return;
    int B = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    DsaDraw d;
    DsaSample s[4];
    if (B > 4 || load_draw("dsa_ac", &d, s, B)) {
        CHECK(0, "dsa_ac: bad draw");
        return;
    }
    DsaConfig cfg;
    dsa_config_default(&cfg);
    cfg.align_corners = 1;
    float *y = calloc(x->n, sizeof(float)), *dx = calloc(x->n, sizeof(float));
    for (int k = 0; k < 2; k++) {
        d.op = k ? DSA_ROTATE : DSA_SCALE;
        const char *nm = dsa_op_name(d.op);
        dsa_forward(y, x->data, &d, &cfg, C, H, W);
        memset(dx, 0, sizeof(float) * x->n);
        dsa_backward(dx, dout->data, &d, &cfg, C, H, W);
        const FixTensor *ro = T("dsa_ac.%s.out", nm), *rd = T("dsa_ac.%s.dx", nm);
        char what[64];
        snprintf(what, sizeof(what), "DSA %s, align_corners: forward", nm);
        if (ro) check_close(what, y, ro->data, x->n, 1.5e-5, 2e-6);
        snprintf(what, sizeof(what), "DSA %s, align_corners: backward", nm);
        if (rd) check_close(what, dx, rd->data, x->n, 1.5e-5, 2e-6);
    }
    free(y), free(dx);
}

static void zca_case(void) {
    Fixture Z;
    if (fixture_load("tests/fixtures/distill/zca.bin", &Z)) return;
    const FixTensor *tr = fixture_get(&Z, "train"), *te = fixture_get(&Z, "test"), *mean = fixture_get(&Z, "mean"),
                    *Tm = fixture_get(&Z, "T"), *Ti = fixture_get(&Z, "T_inv"), *tw = fixture_get(&Z, "test_white"),
                    *tb = fixture_get(&Z, "test_back");
    if (tr && te && mean && Tm && Ti && tw && tb) {
        int N = (int)tr->shape[0], D = (int)(tr->n / tr->shape[0]), M = (int)te->shape[0];
        Zca z;
        Err e;
        if (zca_fit(&z, tr->data, N, D, 0.1, &e)) {
            CHECK(0, "zca_fit: %s", e.msg);
        } else {
            check_close("ZCA mean", z.mean, mean->data, mean->n, 1e-6, 1e-5);
            check_close("ZCA transform", z.T, Tm->data, Tm->n, 1e-4, 1e-4);
            check_close("ZCA inverse transform", z.T_inv, Ti->data, Ti->n, 1e-5, 1e-4);
            float *w = calloc(te->n, sizeof(float)), *b = calloc(te->n, sizeof(float));
            zca_whiten(&z, w, te->data, M);
            zca_unwhiten(&z, b, w, M);
            check_close("ZCA whitened test images", w, tw->data, tw->n, 1e-4, 1e-4);
            check_close("ZCA round trip", b, te->data, te->n, 1e-5, 1e-5);
            check_close("ZCA round trip vs kornia", b, tb->data, tb->n, 1e-5, 1e-5);
            free(w), free(b);
            zca_free(&z);
        }
        Zca bad;
        CHECK(zca_fit(&bad, tr->data, 1, D, 0.1, &e) == -1, "ZCA on one image is refused");
    }
    fixture_free(&Z);
}

// ----------------------------------------------------------------------------
// the methods through the stage: a tiny CIFAR-shaped set (3 classes, 8x8), the same seed
// twice (bit-identical), a resumed run (ends where an uninterrupted one does), and the
// refusals (DC without get_loops settings, MTT with another architecture's buffer)

static DatasetInfo g_info8;

static void tiny_dataset(Dataset *ds, int n) {
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "CIFAR10");
    ds->n = n, ds->c = 3, ds->h = RES, ds->w = RES, ds->n_classes = K;
    ds->images = malloc((size_t)n * 3 * RES * RES);
    ds->labels = malloc(sizeof(int) * (size_t)n);
    Rng r;
    rng_init(&r, 17, 0);
    for (size_t i = 0; i < (size_t)n * 3 * RES * RES; i++) ds->images[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < n; i++) ds->labels[i] = i % K;
    g_info8 = *dataset_info("CIFAR10");
    g_info8.h = g_info8.w = RES;
    g_info8.n_classes = K;
}

static DistillConfig method_cfg(const char *method, long iters) {
    DistillConfig c = {.method = distill_method_find(method), .info = &g_info8, .ipc = 2, .iterations = iters,
                       .seed = 3, .lr_net = 0.01, .num_eval = 1, .epoch_eval_train = 1, .batch_train = 256};
    snprintf(c.arch, sizeof(c.arch), "ConvNetW32");
    return c;
}

static void set_param(DistillParams *p, const char *name, const char *v) {
    Err e;
    CHECK(distill_params_set_text(p, name, v, &e) == 0, "%s: %s", name, e.msg);
}

// runs cfg and returns the final synthetic set (from the res file), or NULL
static float *method_run(const DistillConfig *cfg, const DistillParams *p, const Dataset *ds, int resume, Err *e) {
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp("so_out"));
    mkdir(dir, 0777);
    if (distill_paths(&paths, dir, cfg, e)) return NULL;
    DistillResult res;
    int rc = distill_run(cfg, p, ds, NULL, NULL, &paths, resume, &res, e);
    distill_result_free(&res);
    if (rc) return NULL;
    Pool pool;
    PoolOptions po = {.info = &g_info8, .exp = -1};
    if (pool_load(&pool, paths.res, &po, e)) return NULL;
    size_t n = (size_t)pool.n * 3 * RES * RES;
    float *x = malloc(sizeof(float) * n);
    memcpy(x, pool.x, sizeof(float) * n);
    pool_free(&pool);
    return x;
}

static void method_case(const char *method, const char *buffer_path) {
    Dataset ds;
    tiny_dataset(&ds, 30);
    DistillConfig cfg = method_cfg(method, 2);
    DistillParams p;
    distill_params_init(&p, cfg.method);
    if (cfg.method->setting) cfg.method->setting(&p, cfg.info, cfg.ipc);
    if (strcmp(method, "MTT")) {
        set_param(&p, "batch_real", "4");
        set_param(&p, "outer_loop", "2");
        set_param(&p, "inner_loop", "1");
    } else {
        set_param(&p, "buffer_path", buffer_path);
        set_param(&p, "zca", "true");
        set_param(&p, "syn_steps", "3");
        set_param(&p, "expert_epochs", "1");
        set_param(&p, "max_start_epoch", "1");
        set_param(&p, "batch_syn", "4");
    }
    Err e;
    size_t n = (size_t)K * 2 * 3 * RES * RES;
    float *a = method_run(&cfg, &p, &ds, 0, &e);
    CHECK(a != NULL, "%s: %s", method, e.msg);
    float *b = a ? method_run(&cfg, &p, &ds, 0, &e) : NULL;
    CHECK(!a || (b && !memcmp(a, b, sizeof(float) * n)), "%s: the same seed gives the same set", method);
    // interrupted after 2 updates with a checkpoint every update (no release files: the
    // checkpoint is kept), then resumed with the full 3
    DistillConfig c1 = cfg;
    c1.iterations = 1, c1.ckpt_every = 1;
    snprintf(c1.ckpt_path, sizeof(c1.ckpt_path), "%s", test_tmp("so.ckpt.pt"));
    DistillConfig c2 = cfg;
    c2.ckpt_every = 1;
    snprintf(c2.ckpt_path, sizeof(c2.ckpt_path), "%s", c1.ckpt_path);
    DistillResult res;
    float *c = NULL;
    if (a && distill_run(&c1, &p, &ds, NULL, NULL, NULL, 0, &res, &e) == 0) {
        distill_result_free(&res);
        c = method_run(&c2, &p, &ds, 1, &e);
        CHECK(c && !memcmp(a, c, sizeof(float) * n), "%s: a resumed run ends where an uninterrupted one does (%s)",
              method, c ? "differs" : e.msg);
    } else if (a) {
        CHECK(0, "%s: the interrupted run: %s", method, e.msg);
    }
    free(a), free(b), free(c);
    remove(c1.ckpt_path);
    dataset_free(&ds);
}

static void method_refusals(const char *buffer_path) {
    Dataset ds;
    tiny_dataset(&ds, 30);
    Err e;
    DistillConfig cfg = method_cfg("DC", 0);
    cfg.ipc = 3; // get_loops knows no IPC 3
    DistillParams p;
    distill_params_init(&p, cfg.method);
    float *x = method_run(&cfg, &p, &ds, 0, &e);
    CHECK(!x && strstr(e.msg, "not defined for 3 ipc"), "DC at IPC 3 without loops: %s", x ? "accepted" : e.msg);
    free(x);
    cfg = method_cfg("MTT", 0);
    snprintf(cfg.arch, sizeof(cfg.arch), "ConvNetW64"); // the buffer holds ConvNetW32 experts
    distill_params_init(&p, cfg.method);
    set_param(&p, "buffer_path", buffer_path);
    set_param(&p, "zca", "true");
    x = method_run(&cfg, &p, &ds, 0, &e);
    CHECK(!x && strstr(e.msg, "ConvNetW32") && strstr(e.msg, "ConvNetW64"),
          "MTT with another architecture's buffer, both named: %s", x ? "accepted" : e.msg);
    free(x);
    dataset_free(&ds);
}

// a replay buffer written by PyTorch (buffer.py's layout)
static void buffer_torch_case(void) {
    Net net;
    if (make_net(&net, "instancenorm", "mtt.sd")) return;
    snprintf(net.arch, sizeof(net.arch), "ConvNet");
    const DatasetInfo *info = dataset_info("cifar10");
    MttBuffer b;
    Err e;
    if (mtt_buffer_open(&b, "tests/fixtures/distill/buffers", &net, "ConvNet", info, 1, &e) ||
        mtt_buffer_load(&b, 0, &net, &e)) {
        CHECK(0, "torch replay buffer: %s", e.msg);
    } else {
        CHECK(b.n_files == 1 && b.n_experts == 2 && b.n_epochs == 3, "torch replay buffer: %d files, %d x %d",
              b.n_files, b.n_experts, b.n_epochs);
        double sum = 0;
        for (size_t i = 0; i < (size_t)b.n_experts * b.n_epochs * b.P; i++) sum += b.params[i];
        const FixTensor *want = T("buffer.sum"), *snap = T("buffer.e1t2");
        if (want) CHECK(fabs(sum - want->data[0]) < 1e-3 * fabs(want->data[0]) + 1e-3, "buffer sum %g, want %g",
                        sum, want->data[0]);
        if (snap && snap->n == b.P)
            check_close("torch replay buffer: expert 1, epoch 2", mtt_buffer_snapshot(&b, 1, 2), snap->data, b.P, 0, 0);
    }
    mtt_buffer_free(&b);
    // the same file against another architecture: refused, both named
    Net w;
    if (!model_create(&w, "ConvNetW32", 3, K, RES, RES, &e)) {
        int rc = mtt_buffer_open(&b, "tests/fixtures/distill/buffers", &w, "ConvNetW32", info, 1, &e);
        if (!rc) rc = mtt_buffer_load(&b, 0, &w, &e);
        CHECK(rc == -1 && strstr(e.msg, "ConvNetW32") && strstr(e.msg, "(8, 3, 3, 3)") &&
                  strstr(e.msg, "(32, 3, 3, 3)"),
              "a buffer of another architecture is refused naming both: %s", rc ? e.msg : "(accepted)");
        mtt_buffer_free(&b);
        net_free(&w);
    }
    net_free(&net);
}

// beard's experts: train, write, read back; mismatches refused
static void buffer_beard_case(void) {
    Dataset tr = {.n = 24, .c = 3, .h = RES, .w = RES, .n_classes = K}, te = tr;
    snprintf(tr.name, sizeof(tr.name), "CIFAR10");
    te.n = 6;
    Rng r;
    rng_init(&r, 5, 0);
    size_t D = (size_t)3 * RES * RES;
    tr.images = malloc(D * tr.n), te.images = malloc(D * te.n);
    tr.labels = malloc(sizeof(int) * tr.n), te.labels = malloc(sizeof(int) * te.n);
    for (size_t i = 0; i < D * tr.n; i++) tr.images[i] = (uint8_t)rng_below(&r, 256);
    for (size_t i = 0; i < D * te.n; i++) te.images[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < tr.n; i++) tr.labels[i] = i % K;
    for (int i = 0; i < te.n; i++) te.labels[i] = i % K;
    const DatasetInfo *info = dataset_info("cifar10");
    Err e;
    MttData d;
    char root[512], dir[1024];
    snprintf(root, sizeof(root), "%s", test_tmp("buffers"));
    if (mtt_data_prepare(&d, &tr, &te, info, 1, &e)) {
        CHECK(0, "mtt_data_prepare: %s", e.msg);
        goto out;
    }
    CHECK(mtt_buffer_dir(dir, sizeof(dir), root, info, 1, "ConvNetW32", &e) == 0 &&
              strstr(dir, "/CIFAR10/ConvNetW32") != NULL,
          "expert folder %s", dir);
    MttBufferConfig cfg;
    mtt_buffer_config_default(&cfg);
    cfg.num_experts = 3, cfg.save_interval = 2, cfg.train_epochs = 2, cfg.seed = 11;
    int written = 0;
    if (mtt_buffer_train(&cfg, "ConvNetW32", info, &d, dir, &written, &e)) {
        CHECK(0, "mtt_buffer_train: %s", e.msg);
        goto out;
    }
    CHECK(written == 2, "3 experts in groups of 2: %d files (the remainder is kept)", written);
    Net net;
    if (model_create(&net, "ConvNetW32", 3, K, RES, RES, &e)) goto out;
    MttBuffer b;
    if (mtt_buffer_open(&b, dir, &net, "ConvNetW32", info, 1, &e) || mtt_buffer_load(&b, 1, &net, &e)) {
        CHECK(0, "reading beard's buffer: %s", e.msg);
    } else {
        CHECK(b.n_files == 2 && b.n_experts == 1 && b.n_epochs == 3, "beard buffer: %d files, %d x %d", b.n_files,
              b.n_experts, b.n_epochs);
        // expert 2 (the one in file 1) starts at the initialisation of its seed
        net_init_params(&net, cfg.seed + 2);
        check_close("beard buffer: the first snapshot is the initialisation", mtt_buffer_snapshot(&b, 0, 0), net.params,
                    net.n_params, 0, 0);
        double moved = 0;
        const float *s0 = mtt_buffer_snapshot(&b, 0, 0), *s2 = mtt_buffer_snapshot(&b, 0, 2);
        for (size_t i = 0; i < b.P; i++) moved += fabs(s2[i] - s0[i]);
        CHECK(moved > 0, "the trajectory moves");
    }
    mtt_buffer_free(&b);
    // asked for another architecture, dataset or ZCA setting: refused by buffer_info.json
    int rc = mtt_buffer_open(&b, dir, &net, "ConvNet", info, 1, &e);
    CHECK(rc == -1 && strstr(e.msg, "ConvNetW32") && strstr(e.msg, "ConvNet on"), "another architecture: %s", e.msg);
    mtt_buffer_free(&b);
    rc = mtt_buffer_open(&b, dir, &net, "ConvNetW32", dataset_info("cifar100"), 1, &e);
    CHECK(rc == -1 && strstr(e.msg, "CIFAR10 ") && strstr(e.msg, "CIFAR100"), "another dataset: %s", e.msg);
    mtt_buffer_free(&b);
    rc = mtt_buffer_open(&b, dir, &net, "ConvNetW32", info, 0, &e);
    CHECK(rc == -1 && strstr(e.msg, "without ZCA"), "another ZCA setting: %s", e.msg);
    mtt_buffer_free(&b);
    rc = mtt_buffer_open(&b, "/nonexistent/buffers", &net, "ConvNetW32", info, 1, &e);
    CHECK(rc == -1, "a missing folder is an error");
    mtt_buffer_free(&b);
    // experts of the asked model are not there: the error names what the buffer path holds
    char dir2[1024];
    mtt_buffer_dir(dir2, sizeof(dir2), root, info, 1, "ConvNetW64", &e);
    rc = mtt_buffer_open(&b, dir2, &net, "ConvNetW64", info, 1, &e);
    CHECK(rc == -1 && strstr(e.msg, "ConvNetW64") && strstr(e.msg, "CIFAR10/ConvNetW32"),
          "no experts of the asked model, those there named: %s", e.msg);
    mtt_buffer_free(&b);
    net_free(&net);
    // MTT through the stage on these experts
    method_case("MTT", root);
    method_refusals(root);
out:
    mtt_data_free(&d);
    free(tr.images), free(te.images), free(tr.labels), free(te.labels);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", root);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    if (fixture_load("tests/fixtures/distill/so_steps.bin", &F)) return test_done("test_distill_so");
    DcDistance dists[3] = {DC_DIST_OURS, DC_DIST_MSE, DC_DIST_COS};
    for (int pass = 0; pass < 2; pass++) {
        g_im2col = pass == 0;
        g_rtol = pass == 0 ? 1e-4 : 1e-3;
        for (int i = 0; i < 3; i++)
            dc_case("dc", "instancenorm", "dc.sd", "dc.syn", dists[i], 0, NULL, i == 0 ? "dc.inner.sd" : NULL, NULL);
        dc_case("dcbn", "batchnorm", "dcbn.sd", "dcbn.syn", DC_DIST_OURS, 0, NULL, "dcbn.inner.sd", "dcbn.rs");
        dc_case("dsa", "instancenorm", "dsa.sd", "dsa.syn", DC_DIST_OURS, 1, "dsa.inner", "dsa.inner.sd", NULL);
        dc_case("dsa2", "instancenorm", "dsa.sd", "dsa.syn", DC_DIST_OURS, 1, NULL, NULL, NULL);
        mtt_case();
    }
    g_im2col = 1, g_rtol = 1e-4;
    dsa_align_case();
    buffer_torch_case();
    fixture_free(&F);
    zca_case();
    buffer_beard_case();
    method_case("DC", NULL);
    method_case("DSA", NULL);
    return test_done("test_distill_so");
}
