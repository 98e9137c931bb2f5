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

#include "../src/distill/recover.h"
#include "../src/models/convnet.h"
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

int main(void) {
    test_sre2l_family("tests/fixtures/decoupled/sre2l_step.bin", "SRe2L", 0, 0);
    test_sre2l_family("tests/fixtures/decoupled/cda_step.bin", "CDA", 1, 0);
    test_sre2l_family("tests/fixtures/decoupled/delt_step.bin", "DELT", 1, 1);
    test_gvbsm();
    test_softlabel_step();
    test_no_batchnorm();
    return test_done("test_decoupled");
}
