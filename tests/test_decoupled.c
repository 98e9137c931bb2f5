/*
 * test_decoupled.c: step fidelity of the decoupled methods against our PyTorch ports of the
 * official loops (tests/scripts/gen_decoupled_fixtures.py, fixtures in
 * tests/fixtures/decoupled/): one recover iteration of SRe2L, CDA, DELT and G-VBSM (one
 * teacher) from fixed inputs (teacher weights, synthetic batch, Adam state, densified
 * statistics, augmentation draw): the loss, its CE / statistics / eigenvalue terms and every
 * hook's term separately, the gradient w.r.t. the images and the images after the step, within
 * 1e-4 relative; G-VBSM's training-set statistics; DELT's round schedule and medium selection;
 * one soft-label student step (SRe2L's relabel: mixup, the train-mode teacher's logits, KL at
 * T, the parameter gradients, AdamW) and the teacher's drifting running statistics; the
 * refusal of a teacher without BatchNorm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/data/pool.h"
#include "../src/distill/decoupled.h"
#include "../src/distill/recover.h"
#include "../src/models/checkpoint.h"
#include "../src/models/convnet.h"
#include "../src/train/fkd.h"
#include "../src/train/recipe.h"
#include "harness.h"

#define T(...) fixture_getf(&F, __VA_ARGS__)

static const float CIFAR_MEAN[3] = {0.4914f, 0.4822f, 0.4465f}, CIFAR_STD[3] = {0.2023f, 0.1994f, 0.2010f};
static const float GVBSM_MEAN[3] = {0.5071f, 0.4867f, 0.4408f}, GVBSM_STD[3] = {0.2675f, 0.2565f, 0.2761f};

// the fixtures' teacher: DC's ConvNet with BatchNorm, width 8, depth 2, 16x16 inputs
static int tiny_teacher(Net *net, const Fixture *F, const char *prefix) {
    ConvNetConfig cfg;
    Err e;
    convnet_config_for("ConvNetBN", &cfg);
    cfg.width = 8, cfg.depth = 2;
    if (convnet_build(net, &cfg, 3, 10, 16, 16, &e)) {
        CHECK(0, "building the teacher: %s", e.msg);
        return -1;
    }
    TensorDict sd;
    tensordict_init(&sd);
    size_t pl = strlen(prefix);
    for (int i = 0; i < F->n; i++) {
        const FixTensor *t = &F->t[i];
        if (strncmp(t->name, prefix, pl)) continue;
        Tensor x;
        int64_t shape[8];
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        if (tensor_init(&x, DTYPE_F32, t->ndim, shape, &e)) return -1;
        memcpy(x.data, t->data, sizeof(float) * t->n);
        tensordict_add(&sd, t->name + pl, &x, &e);
    }
    int rc = net_load_state_dict(net, &sd, 0, &e);
    CHECK(rc == 0, "loading the teacher: %s", rc ? e.msg : "");
    tensordict_free(&sd);
    return rc;
}

static void check_rel(const char *what, double got, double ref, double rtol) {
    CHECK(fabs(got - ref) <= rtol * fabs(ref) + 1e-7, "%s: %.9g, reference %.9g", what, got, ref);
}

// the Adam moments stored in the fixture, then one recover_update
static void adam_from(Optim *o, const Fixture *F_, size_t n, float lr) {
    const Fixture *Fp = F_;
    recover_adam_init(o, n, lr);
    const FixTensor *m = fixture_get(Fp, "adam_m"), *v = fixture_get(Fp, "adam_v"), *t = fixture_get(Fp, "adam_t");
    if (!m || !v || !t) return;
    memcpy(o->m, m->data, sizeof(float) * n);
    memcpy(o->v, v->data, sizeof(float) * n);
    o->step = (long)t->data[0];
}

static void compare_step(const Fixture *F_, const char *name, const float *grad, const float *x, size_t n) {
    char what[96];
    const FixTensor *g = fixture_get(F_, "grad"), *xa = fixture_get(F_, "x_after");
    if (!g || !xa) return;
    // gradient: relative to its scale (values near zero compared in absolute terms)
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g->data[i]));
    snprintf(what, sizeof(what), "%s gradient w.r.t. the images", name);
    check_close(what, grad, g->data, n, 1e-4 * gmax, 1e-4);
    snprintf(what, sizeof(what), "%s images after the step", name);
    check_close(what, x, xa->data, n, 1e-5, 1e-4);
}

static void test_sre2l_family(const char *file, const char *name, int method_crop, int delt) {
    Fixture F;
    if (fixture_load(file, &F)) return;
    Net net;
    if (tiny_teacher(&net, &F, "teacher.")) goto out_fix;
    const FixTensor *x0 = T("x"), *yv = T("y"), *cfg = T("cfg"), *draw = T("draw"), *loss = T("loss"),
                    *bt = T("bn_terms");
    if (!x0 || !yv || !cfg || !draw || !loss || !bt) goto out_net;
    int B = (int)x0->shape[0];
    size_t D = net_in_size(&net), n = (size_t)B * D;
    int it = (int)cfg->data[0], total = (int)cfg->data[1];
    float lr = cfg->data[2];
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh = 0;
    Err e;
    CHECK(recover_hooks(&net, 0, hooks, &nh, &e) == 0 && nh == 2, "%s: %d BN hooks", name, nh);
    RecoverWork *w = recover_work_new(&net, hooks, nh, B, &e);
    int *y = malloc(sizeof(int) * B), active[64], na = 0;
    for (int b = 0; b < B; b++) y[b] = (int)yv->data[b];
    if (delt) {
        const FixTensor *m = T("active");
        for (int b = 0; m && b < B; b++)
            if (m->data[b] > 0) active[na++] = b;
    }
    RecoverDraw d = {.roll_dy = (int)draw->data[0], .roll_dx = (int)draw->data[1]};
    if (method_crop) {
        d.crop = 1;
        for (int k = 0; k < 4; k++) d.box[k] = (int)draw->data[2 + k];
        d.flip = draw->data[6] > 0;
    }
    RecoverLoss lc = {.r_stat = cfg->data[3], .first_mult = cfg->data[4]};
    float *x = malloc(sizeof(float) * n), *grad = malloc(sizeof(float) * n);
    memcpy(x, x0->data, sizeof(float) * n);
    RecoverLosses L;
    int rc = recover_grad(w, x, y, B, delt ? active : NULL, na, &d, &lc, grad, &L, &e);
    CHECK(rc == 0, "%s: recover_grad: %s", name, rc ? e.msg : "");
    if (!rc) {
        char what[64];
        snprintf(what, sizeof(what), "%s loss", name);
        check_rel(what, L.loss, loss->data[0], 1e-4);
        snprintf(what, sizeof(what), "%s CE", name);
        check_rel(what, L.ce, loss->data[1], 1e-4);
        snprintf(what, sizeof(what), "%s BN term", name);
        check_rel(what, L.stat, loss->data[2], 1e-4);
        for (int h = 0; h < nh && (size_t)h < bt->n; h++) {
            snprintf(what, sizeof(what), "%s BN layer %d term", name, h);
            check_rel(what, L.terms[h], bt->data[h], 1e-4);
        }
        Optim adam;
        adam_from(&adam, &F, n, lr);
        float lr_it = (float)recover_cosine_lr(lr, it, total);
        recover_update(&adam, x, grad, lr_it, B, 3, 256, CIFAR_MEAN, CIFAR_STD);
        compare_step(&F, name, grad, x, n);
        if (delt) {
            // images outside the round are neither seen nor moved
            int untouched = 1;
            for (int b = 0; b < B; b++) {
                int act = 0;
                for (int i = 0; i < na; i++) act |= active[i] == b;
                if (!act) untouched &= !memcmp(x + b * D, x0->data + b * D, sizeof(float) * D);
            }
            CHECK(na > 0 && na < B && untouched, "DELT: %d active of %d, inactive images unchanged: %d", na, B, untouched);
        }
        optim_free(&adam);
    }
    free(x), free(grad), free(y);
    recover_work_free(w);
out_net:
    net_free(&net);
out_fix:
    fixture_free(&F);
}

// the densified statistics before the step
static void gvbsm_state(const Fixture *Fp, HookState *st, const RecoverHook *hooks, int nh) {
    const char *dn[4] = {"var", "mean", "pvar", "pmean"};
    for (int h = 0; h < nh; h++) {
        const FixTensor *init = fixture_getf(Fp, "dd%d_init", h);
        st[h].init = init && init->data[0] > 0;
        for (int q = 0; st[h].init && q < (hooks[h].kind == RECOVER_HOOK_CONV ? 4 : 2); q++) {
            const FixTensor *v = fixture_getf(Fp, "dd%d_%s", h, dn[q]);
            float *dst = q == 0 ? st[h].var : q == 1 ? st[h].mean : q == 2 ? st[h].pvar : st[h].pmean;
            if (v) memcpy(dst, v->data, sizeof(float) * v->n);
        }
    }
}

static void test_gvbsm(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/gvbsm_step.bin", &F)) return;
    Net net;
    if (tiny_teacher(&net, &F, "teacher.")) {
        fixture_free(&F);
        return;
    }
    const FixTensor *x0 = T("x"), *yv = T("y"), *cfg = T("cfg"), *draw = T("draw"), *loss = T("loss"),
                    *terms = T("terms"), *train = T("train");
    Err e;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh = 0;
    if (!x0 || !yv || !cfg || !draw || !loss || !terms || !train || recover_hooks(&net, 1, hooks, &nh, &e) || nh != 4) {
        CHECK(0, "G-VBSM fixture or hooks (%d)", nh);
        goto out;
    }
    int B = (int)x0->shape[0];
    size_t D = net_in_size(&net), n = (size_t)B * D;
    // the training-set statistics of the two conv inputs
    ConvStats cs[2];
    memset(cs, 0, sizeof(cs));
    int rc = recover_conv_stats(&net, hooks, nh, train->data, (int)train->shape[0], (int)cfg->data[9], cs, &e);
    CHECK(rc == 0, "G-VBSM statistics: %s", rc ? e.msg : "");
    if (rc) goto out;
    const char *sn[4] = {"mean", "var", "pmean", "pvar"};
    for (int c = 0; c < 2; c++)
        for (int q = 0; q < 4; q++) {
            const FixTensor *r = T("run%d_%s", c, sn[q]);
            const float *got = q == 0 ? cs[c].mean : q == 1 ? cs[c].var : q == 2 ? cs[c].pmean : cs[c].pvar;
            char what[64];
            snprintf(what, sizeof(what), "G-VBSM conv %d training %s", c, sn[q]);
            if (r) check_close(what, got, r->data, r->n, 1e-6, 1e-5);
            // the step runs on the reference statistics, so that it is checked on its own
            if (r) memcpy((float *)got, r->data, sizeof(float) * r->n);
        }
    HookState st[4];
    recover_state_init(st, hooks, nh, &e);
    gvbsm_state(&F, st, hooks, nh);
    CHECK(st[0].init && !st[2].init, "G-VBSM fixture: the second conv hook starts in the step");
    unsigned char drop[2] = {(unsigned char)(draw->data[5] > 0), (unsigned char)(draw->data[6] > 0)};
    RecoverDraw d = {.pad_crop = 1, .pad = 4, .top = (int)draw->data[0], .left = (int)draw->data[1],
                     .flip = draw->data[2] > 0, .roll_dy = (int)draw->data[3], .roll_dx = (int)draw->data[4]};
    RecoverLoss lc = {.r_stat = cfg->data[3], .first_mult = cfg->data[4], .densify = 1, .momentum = cfg->data[6],
                      .conv = cs, .state = st, .drop = drop, .nuc = cfg->data[7], .tau = cfg->data[8], .nuc_side = 32};
    int y[64];
    for (int b = 0; b < B; b++) y[b] = (int)yv->data[b];
    RecoverWork *w = recover_work_new(&net, hooks, nh, B, &e);
    float *x = malloc(sizeof(float) * n), *grad = malloc(sizeof(float) * n);
    memcpy(x, x0->data, sizeof(float) * n);
    RecoverLosses L;
    // the gradient of each part: CE + eigenvalue term (no statistics), CE + statistics
    const FixTensor *gref = T("grad"), *gnuc = T("grad_nuc"), *gr = T("grad_r");
    if (w && gref && gnuc && gr) {
        float *want = malloc(sizeof(float) * n);
        for (int part = 0; part < 2; part++) {
            RecoverLoss lp = lc;
            if (part == 0) lp.r_stat = 0;
            else lp.nuc = 0;
            gvbsm_state(&F, st, hooks, nh);
            double gmax = 0;
            for (size_t i = 0; i < n; i++) {
                want[i] = gref->data[i] - (part == 0 ? gr->data[i] : gnuc->data[i]);
                gmax = fmax(gmax, fabs(want[i]));
            }
            if (recover_grad(w, x, y, B, NULL, 0, &d, &lp, grad, &L, &e)) break;
            check_close(part == 0 ? "G-VBSM gradient of CE + eigenvalue term" : "G-VBSM gradient of CE + statistics",
                        grad, want, n, 1e-4 * gmax, 1e-4);
        }
        free(want);
        gvbsm_state(&F, st, hooks, nh);
    }
    rc = recover_grad(w, x, y, B, NULL, 0, &d, &lc, grad, &L, &e);
    CHECK(rc == 0, "G-VBSM recover_grad: %s", rc ? e.msg : "");
    if (!rc) {
        check_rel("G-VBSM loss", L.loss, loss->data[0], 1e-4);
        check_rel("G-VBSM CE", L.ce, loss->data[1], 1e-4);
        check_rel("G-VBSM statistics term", L.stat, loss->data[2], 1e-4);
        check_rel("G-VBSM eigenvalue term", L.nuc, loss->data[3], 1e-4);
        for (int h = 0; h < nh; h++) {
            char what[64];
            snprintf(what, sizeof(what), "G-VBSM hook %d term", h);
            check_rel(what, L.terms[h], terms->data[h], 1e-4);
        }
        Optim adam;
        adam_from(&adam, &F, n, cfg->data[2]);
        recover_update(&adam, x, grad, (float)recover_cosine_lr(cfg->data[2], (int)cfg->data[0], (int)cfg->data[1]), B,
                       3, 256, GVBSM_MEAN, GVBSM_STD);
        compare_step(&F, "G-VBSM", grad, x, n);
        optim_free(&adam);
    }
    free(x), free(grad);
    recover_work_free(w);
    recover_state_free(st, nh);
    recover_conv_stats_free(cs, 2);
out:
    net_free(&net);
    fixture_free(&F);
}

// compares every entry of net (parameters and buffers) with the fixture's prefix.name tensors
static void compare_entries(const Net *net, const Fixture *Fp, const char *prefix, const char *what, double rtol,
                            int buffers_only) {
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind == PENTRY_COUNTER || (buffers_only && pe->kind != PENTRY_BUFFER)) continue;
        const FixTensor *t = fixture_getf(Fp, "%s%s", prefix, pe->name);
        if (!t || t->n != pe->numel) continue;
        const float *got = (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset;
        char w[128];
        snprintf(w, sizeof(w), "%s %s", what, pe->name);
        check_close(w, got, t->data, t->n, 1e-6, rtol);
    }
}

static void test_softlabel_step(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/softlabel_step.bin", &F)) return;
    Net teacher, student;
    if (tiny_teacher(&teacher, &F, "teacher.")) goto out_fix;
    if (tiny_teacher(&student, &F, "student.")) goto out_t;
    const FixTensor *x = T("x"), *perm = T("perm"), *cfg = T("cfg"), *mixed = T("mixed"), *zs = T("logits_s"),
                    *zt = T("logits_t"), *loss = T("loss"), *grads = T("grads");
    if (!x || !perm || !cfg || !mixed || !zs || !zt || !loss || !grads) goto out_s;
    int B = (int)x->shape[0], K = 10;
    Recipe r;
    recipe_preset(&r, "sre2l-relabel");
    r.teacher = &teacher;
    r.temperature = cfg->data[1];
    r.epochs = (int)cfg->data[2];
    check_rel("relabel lr (CosineAnnealingLR)", recipe_lr(&r, (int)cfg->data[3]), cfg->data[4], 1e-6);
    Err e;
    RecipeWork *w = recipe_work_new(&student, B, &e);
    int pm[64], y[64] = {0};
    for (int b = 0; b < B; b++) pm[b] = (int)perm->data[b];
    RecipeDraw d = {.mix = RECIPE_MIX_MIXUP, .lam = cfg->data[0], .perm = pm};
    double l = 0;
    int rc = w ? recipe_step_grads(&student, &r, w, x->data, y, B, &d, &l, &e) : -1;
    CHECK(rc == 0, "soft-label step: %s", rc ? e.msg : "");
    if (!rc) {
        check_close("relabel mixed batch", recipe_work_mixed(w), mixed->data, mixed->n, 1e-6, 1e-6);
        check_close("relabel teacher logits (train-mode teacher)", recipe_work_teacher_logits(w), zt->data,
                    (size_t)B * K, 1e-5, 1e-4);
        check_close("relabel student logits", recipe_work_student_logits(w), zs->data, (size_t)B * K, 1e-5, 1e-4);
        check_rel("relabel KL loss", l, loss->data[0], 1e-4);
        // parameter gradients in named_parameters order
        float *g = malloc(sizeof(float) * student.n_params);
        size_t k = 0;
        for (int i = 0; i < student.n_entries; i++) {
            const ParamEntry *pe = &student.entries[i];
            if (pe->kind != PENTRY_PARAM) continue;
            memcpy(g + k, student.grads + pe->offset, sizeof(float) * pe->numel);
            k += pe->numel;
        }
        double gmax = 0;
        for (size_t i = 0; i < grads->n; i++) gmax = fmax(gmax, fabs(grads->data[i]));
        CHECK(k == grads->n, "%zu gradients, reference %zu", k, grads->n);
        if (k == grads->n) check_close("relabel parameter gradients", g, grads->data, k, 1e-4 * gmax, 1e-4);
        free(g);
        Optim opt;
        optim_init(&opt, OPTIM_ADAMW, student.n_params, (float)recipe_lr(&r, (int)cfg->data[3]), 0, r.weight_decay);
        optim_step(&opt, student.params, student.grads);
        compare_entries(&student, &F, "after.", "relabel student after AdamW", 1e-4, 0);
        compare_entries(&teacher, &F, "teacher_after.", "relabel teacher running statistics", 1e-5, 1);
        optim_free(&opt);
    }
    recipe_work_free(w);
out_s:
    net_free(&student);
out_t:
    net_free(&teacher);
out_fix:
    fixture_free(&F);
}

// DELT's round schedule and medium selection against the port of get_round_imgs_indx and
// store_medium
static void test_delt_helpers(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/delt_step.bin", &F)) return;
    const FixTensor *sch = T("schedule"), *sc = T("select_scores"), *sm = T("select_medium");
    if (sch && sch->ndim == 2) {
        int rows = (int)sch->shape[0], bad = 0, expected = 0;
        int cases[5][2] = {{4, 3}, {10, 4}, {10, 8}, {1, 2}, {7, 7}};
        for (int k = 0; k < 5; k++) {
            int ipc = cases[k][0], rounds = cases[k][1], start[16];
            delt_round_starts(ipc, rounds, start);
            for (int i = 0; i < ipc; i++) expected += rounds - start[i];
            for (int r = 0; r < rows; r++) {
                const float *row = sch->data + 4 * r;
                if ((int)row[0] != ipc || (int)row[1] != rounds) continue;
                int p = (int)row[3], rr = (int)row[2];
                bad += !(p < ipc && start[p] <= rr && rr < rounds);
            }
        }
        CHECK(bad == 0 && expected == rows, "DELT rounds: %d memberships wrong, %d expected of %d", bad, expected, rows);
    }
    if (sc && sm) {
        int out[16];
        int rc = delt_select_medium(sc->data, (int)sc->n, (int)sm->n, out);
        int same = rc == 0;
        for (size_t i = 0; same && i < sm->n; i++) same = out[i] == (int)sm->data[i];
        CHECK(same, "DELT medium selection differs from store_medium's");
        CHECK(delt_select_medium(sc->data, (int)sc->n, 12, out) != 0, "DELT: 12 images around the median of 11 accepted");
    }
    fixture_free(&F);
}

// each method end to end on the tiny teacher: a few iterations, deterministic for a seed,
// images inside the valid box, written as the methods release them and read back
static void test_methods_run(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/sre2l_step.bin", &F)) return;
    Net net;
    if (tiny_teacher(&net, &F, "teacher.")) {
        fixture_free(&F);
        return;
    }
    int nreal = 60;
    size_t D = net_in_size(&net);
    float *realx = malloc(sizeof(float) * nreal * D);
    int ry[60];
    Rng r;
    rng_init(&r, 3, 3);
    for (size_t i = 0; i < nreal * D; i++) realx[i] = (float)(0.8 * rng_normal(&r));
    for (int i = 0; i < nreal; i++) ry[i] = i % 10;
    for (int m = 0; decoupled_method(m); m++) {
        const DecoupledMethod *M = decoupled_method(m);
        DecoupledArgs a;
        decoupled_args_default(&a);
        M->defaults(&a);
        a.teachers[0] = &net, a.n_teachers = 1, a.n_classes = 10, a.ipc = 2, a.seed = 5;
        a.iteration = 4, a.round_iterations = a.round_iterations ? 2 : 0, a.stat_batch = 16;
        a.real_x = realx, a.real_y = ry, a.n_real = nreal;
        memcpy(a.mean, CIFAR_MEAN, sizeof(a.mean));
        memcpy(a.std, CIFAR_STD, sizeof(a.std));
        DecoupledOut o1, o2;
        Err e;
        decoupled_out_init(&o1, 10, 2, D, &e);
        decoupled_out_init(&o2, 10, 2, D, &e);
        int rc1 = M->run(&a, &o1, &e);
        CHECK(rc1 == 0, "%s run: %s", M->name, rc1 ? e.msg : "");
        int rc2 = M->run(&a, &o2, &e);
        CHECK(rc1 == 0 && rc2 == 0 && !memcmp(o1.x, o2.x, sizeof(float) * o1.n * D), "%s is not deterministic", M->name);
        int inside = 1, labels = 1;
        for (int i = 0; i < o1.n; i++) {
            labels &= o1.y[i] == i / 2;
            for (int c = 0; c < 3; c++)
                for (int k = 0; k < 256; k++) {
                    float v = o1.x[(size_t)i * D + c * 256 + k];
                    inside &= v >= -CIFAR_MEAN[c] / CIFAR_STD[c] - 1e-5f && v <= (1 - CIFAR_MEAN[c]) / CIFAR_STD[c] + 1e-5f;
                }
        }
        CHECK(inside && labels, "%s: images outside the box (%d) or labels wrong (%d)", M->name, !inside, !labels);
        // written as released, then read back as beard train reads image folders
        const char *dir = test_tmp(M->name);
        int rc = decoupled_write_imagefolder(dir, &o1, 3, 16, 16, CIFAR_MEAN, CIFAR_STD, M->image_ext, &e);
        CHECK(rc == 0, "%s: writing the image folder: %s", M->name, rc ? e.msg : "");
        char path[1200];
        snprintf(path, sizeof(path), "%s/new%03d/class%03d_id%03d.%s", dir, 7, 7, 1, M->image_ext);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "%s: no %s", M->name, path);
        if (f) fclose(f);
        DatasetInfo info = *dataset_info("cifar10");
        info.h = info.w = 16;
        Pool p;
        rc = pool_load_imagefolder(&p, dir, &info, &e);
        CHECK(rc == 0 && p.n == 20 && p.y[3] == 1 && p.y[19] == 9, "%s: reading the folder back: %s", M->name,
              rc ? e.msg : "wrong count or labels");
        if (rc == 0) {
            // 8-bit truncation; JPEG's loss on noise images is large, PNG's nothing
            double worst = 0;
            for (int c = 0; c < 3; c++)
                for (size_t k = 0; k < 256; k++) {
                    size_t i = (size_t)5 * D + c * 256 + k;
                    double px = fmin(fmax(o1.x[i] * CIFAR_STD[c] + CIFAR_MEAN[c], 0), 1);
                    double back = p.x[i] * CIFAR_STD[c] + CIFAR_MEAN[c];
                    worst = fmax(worst, fabs(px - back));
                }
            // PNG is lossless: the 8-bit truncation alone; JPEG is checked against PIL below
            if (!strcmp(M->image_ext, "png"))
                CHECK(worst <= 1.0 / 255 + 1e-6, "%s: pixels back off by %.4f", M->name, worst);
        }
        pool_free(&p);
        decoupled_out_free(&o1);
        decoupled_out_free(&o2);
    }
    CHECK(decoupled_find("sre2l") && decoupled_find("G-VBSM") && decoupled_find("gvbsm") && decoupled_find("SCDD") &&
              !decoupled_find("DM"),
          "method names");
    free(realx);
    net_free(&net);
    fixture_free(&F);
}

// the JPEG the methods release: PIL's Image.save at its defaults, decoded, against beard's
// encoder decoded by beard's (libjpeg on both sides, as PIL)
static void test_jpeg_like_pil(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/jpeg.bin", &F)) return;
    const FixTensor *img = T("img"), *dec = T("pil_decoded");
    if (img && dec) {
        int H = (int)img->shape[0], W = (int)img->shape[1];
        uint8_t *px = malloc(img->n);
        for (size_t i = 0; i < img->n; i++) px[i] = (uint8_t)img->data[i];
        const char *path = test_tmp("pil.jpg");
        Err e;
        int rc = image_write(path, px, W, H, 3, "jpg", &e);
        uint8_t *back = NULL;
        int w = 0, h = 0;
        if (!rc) rc = image_read_rgb(path, &back, &w, &h, &e);
        CHECK(rc == 0 && w == W && h == H, "JPEG round trip: %s", rc ? e.msg : "size");
        if (!rc) {
            int diff = 0;
            for (size_t i = 0; i < img->n; i++) diff += back[i] != (uint8_t)dec->data[i];
            CHECK(diff == 0, "JPEG: %d of %zu decoded values differ from PIL's encoding", diff, img->n);
        }
        xfree(back);
        free(px);
    }
    fixture_free(&F);
}

static void test_no_batchnorm(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNet", 3, 10, 32, 32, &e)) return;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh = 0;
    int rc = recover_hooks(&net, 0, hooks, &nh, &e);
    CHECK(rc != 0 && strstr(e.msg, "no BatchNorm") && strstr(e.msg, "ConvNet"), "a teacher without BN: %s",
          rc ? e.msg : "accepted");
    net_free(&net);
}

// FKD soft labels: written in G-VBSM's layout, read back, the stored logits being the
// teachers' mean on the stored crops, flips and mix; labels that do not fit the images refused
static void test_fkd(void) {
    Fixture F;
    if (fixture_load("tests/fixtures/decoupled/sre2l_step.bin", &F)) return;
    Net t1, t2;
    if (tiny_teacher(&t1, &F, "teacher.") || tiny_teacher(&t2, &F, "teacher.")) {
        fixture_free(&F);
        return;
    }
    for (size_t i = 0; i < t2.n_params; i++) t2.params[i] *= 0.9f; // a second, different teacher
    Pool p;
    memset(&p, 0, sizeof(p));
    p.n = 12, p.c = 3, p.h = p.w = 16, p.n_classes = 10;
    size_t D = 3 * 256;
    p.x = malloc(sizeof(float) * p.n * D);
    p.y = malloc(sizeof(int) * p.n);
    memcpy(p.mean, CIFAR_MEAN, sizeof(p.mean));
    memcpy(p.std, CIFAR_STD, sizeof(p.std));
    Rng r;
    rng_init(&r, 9, 9);
    for (size_t i = 0; i < p.n * D; i++) p.x[i] = (float)rng_normal(&r);
    for (int i = 0; i < p.n; i++) p.y[i] = i % 10;
    const char *dir = test_tmp("fkd");
    Net *ts[2] = {&t1, &t2};
    Err e;
    int rc = fkd_generate(dir, &p, ts, 2, 2, 5, RECIPE_MIX_CUTMIX, 1.0f, 0.08f, 0, 4, 0, &e);
    CHECK(rc == 0, "FKD generation: %s", rc ? e.msg : "");
    int ne = 0, nb = 0, bs = 0;
    rc = rc || fkd_info(dir, &ne, &nb, &bs, &e);
    CHECK(rc == 0 && ne == 2 && nb == 3 && bs == 5, "FKD layout: %d epochs, %d batches of %d", ne, nb, bs);
    if (!rc) {
        int seen[12] = {0}, perm_ok = 1, logits_ok = 1;
        float *x = malloc(sizeof(float) * 5 * D), *tmp = malloc(sizeof(float) * D), z1[50], z2[50];
        for (int b = 0; b < nb; b++) {
            FkdBatch f;
            if (fkd_read(dir, 1, b, p.n, 10, &f, &e)) {
                CHECK(0, "FKD read: %s", e.msg);
                break;
            }
            for (int k = 0; k < f.B; k++) seen[f.index[k]]++;
            int used[5] = {0};
            for (int k = 0; f.mix_index && k < f.B; k++) used[f.mix_index[k]]++;
            for (int k = 0; k < f.B; k++) perm_ok &= f.mix_index && used[k] == 1;
            perm_ok &= f.has_lam && f.has_bbox;
            fkd_images(&p, &f, x, tmp);
            net_forward(&t1, x, f.B, z1, &e);
            net_forward(&t2, x, f.B, z2, &e);
            for (int q = 0; q < f.B * 10; q++) logits_ok &= fabsf(f.logits[q] - 0.5f * (z1[q] + z2[q])) <= 1e-5f;
            fkd_batch_free(&f);
        }
        int all = 1;
        for (int i = 0; i < 12; i++) all &= seen[i] == 1;
        CHECK(all && perm_ok && logits_ok, "FKD epoch: each image once (%d), mix a permutation (%d), logits the teachers' "
              "mean on the stored images (%d)", all, perm_ok, logits_ok);
        free(x), free(tmp);
        FkdBatch f;
        rc = fkd_read(dir, 0, 0, p.n, 100, &f, &e);
        CHECK(rc != 0 && strstr(e.msg, "10 classes") && strstr(e.msg, "100"), "FKD labels of 10 classes for 100: %s",
              rc ? e.msg : "accepted");
        rc = fkd_read(dir, 0, 0, 3, 10, &f, &e);
        CHECK(rc != 0 && strstr(e.msg, "do not match the images") && strstr(e.msg, "3 images"),
              "FKD labels for a set of 3 images: %s", rc ? e.msg : "accepted");
        // a student trained on them (the recipe replays the stored batches)
        Recipe rec;
        recipe_preset(&rec, "gvbsm-relabel");
        rec.fkd_dir = dir, rec.epochs = 2, rec.eval_every = 0;
        Net s;
        tiny_teacher(&s, &F, "teacher.");
        TrainResult res;
        rc = recipe_train(&s, &p, NULL, &rec, 1, 0, NULL, &res, &e);
        CHECK(rc == 0 && res.steps == 6 && isfinite(res.train_loss), "training on FKD labels: %s (%ld steps)",
              rc ? e.msg : "", res.steps);
        rec.epochs = 3;
        rc = recipe_train(&s, &p, NULL, &rec, 1, 0, NULL, &res, &e);
        CHECK(rc != 0 && strstr(e.msg, "hold 2"), "3 epochs of 2 stored: %s", rc ? e.msg : "accepted");
        net_free(&s);
    }
    free(p.x), free(p.y);
    net_free(&t1), net_free(&t2);
    fixture_free(&F);
}

// bad input through the command line: one line naming both sides, a non-zero status
static void save_model(const char *arch, int classes, int side, const char *path) {
    Net net;
    Err e;
    if (model_create(&net, arch, 3, classes, side, side, &e) || checkpoint_save(&net, path, &e))
        CHECK(0, "saving a %s: %s", arch, e.msg);
    net_free(&net);
}

static void test_cli_refusals(void) {
    if (!beard_bin()) {
        test_skip("no beard binary for the CLI checks");
        return;
    }
    char out[4096];
    const char *nobn = test_tmp("nobn.pth"), *c100 = test_tmp("bn100.pth"), *s16 = test_tmp("bn16.pth"),
               *dir = test_tmp("recover_out");
    save_model("ConvNet", 10, 32, nobn);
    save_model("ConvNetBN", 100, 32, c100);
    save_model("ConvNetBN", 10, 16, s16);
    int rc = run_cli(out, sizeof(out), "recover --method SRe2L --teacher %s --arch ConvNet --dataset cifar10 --out %s "
                     "--iteration 1 --quiet", nobn, dir);
    CHECK(rc == 1 && strstr(out, "no BatchNorm") && strstr(out, "ConvNet"), "teacher without BN: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "recover --method CDA --teacher %s --arch ConvNetBN --dataset cifar10 --out %s --quiet",
                 c100, dir);
    CHECK(rc == 1 && strstr(out, "10 classes") && strstr(out, "[100, ") && strstr(out, "[10, "),
          "teacher with 100 classes for CIFAR-10: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "recover --method SRe2L --teacher %s --arch ConvNetBN --dataset cifar10 --out %s --quiet",
                 s16, dir);
    CHECK(rc == 1 && strstr(out, "3x32x32") && strstr(out, "shape"), "16-pixel teacher for 32-pixel images: rc %d: %s",
          rc, out);
    rc = run_cli(out, sizeof(out), "recover --method SRe2L --teacher %s --dataset cifar10 --nuc-norm 1", nobn);
    CHECK(rc == 2 && strstr(out, "nuc-norm") && strstr(out, "SRe2L"), "a parameter SRe2L lacks: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "recover --method MTT --teacher %s --dataset cifar10", nobn);
    CHECK(rc == 2 && strstr(out, "unknown method") && strstr(out, "G-VBSM"), "unknown method: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "recover --method SRe2L --teacher %s --teacher %s --dataset cifar10", nobn, nobn);
    CHECK(rc == 2 && strstr(out, "one teacher"), "two teachers for SRe2L: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --data-file %s --dataset cifar10 --recipe sre2l-relabel", dir);
    CHECK(rc == 2 && strstr(out, "--teacher"), "a relabel recipe without a teacher: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --src-dataset --dataset cifar10 --recipe sre2l-squeeze --mix mixup");
    CHECK(rc == 2 && strstr(out, "--mix"), "mixing hard labels: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --src-dataset --dataset cifar10 --recipe nope");
    CHECK(rc == 2 && strstr(out, "sre2l-relabel"), "unknown recipe: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --data-file %s --dataset cifar10 --arch ConvNetBN --teacher %s --teacher-arch "
                 "ConvNetBN --quiet", dir, c100);
    CHECK(rc == 1 && strstr(out, "teacher") && strstr(out, "10 classes") && strstr(out, "[100, "),
          "train: a teacher of another dataset: rc %d: %s", rc, out);
}

int main(void) {
    test_sre2l_family("tests/fixtures/decoupled/sre2l_step.bin", "SRe2L", 0, 0);
    test_sre2l_family("tests/fixtures/decoupled/cda_step.bin", "CDA", 1, 0);
    test_sre2l_family("tests/fixtures/decoupled/delt_step.bin", "DELT", 1, 1);
    test_gvbsm();
    test_softlabel_step();
    test_delt_helpers();
    test_methods_run();
    test_jpeg_like_pil();
    test_no_batchnorm();
    test_fkd();
    test_cli_refusals();
    return test_done("test_decoupled");
}
