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
#include <sys/stat.h>

#include "../src/core/parallel.h"
#include "../src/data/pool.h"
#include "../src/distill/decoupled.h"
#include "../src/distill/distill.h"
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

// The parameters after AdamW's first step against the fixture's "after." entries. That
// step moves each parameter by lr g / (|g| + eps): about lr whatever |g| is, so a gradient
// within the gradient check's tolerance of zero (1e-4 gmax: a sum that cancels, as a
// bias's may) has an undetermined step in [-lr, lr]. Those elements are held to 2 lr, the
// rest to 1e-6 absolute, 1e-4 relative. grads: the reference gradients, in the order of
// the parameter entries.
static void compare_after_adamw(const Net *net, const Fixture *Fp, const FixTensor *grads, double gmax, double lr) {
    size_t at = 0, compared = 0, loose = 0;
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind != PENTRY_PARAM) continue;
        const FixTensor *t = fixture_getf(Fp, "after.%s", pe->name);
        if (t && t->n == pe->numel && at + pe->numel <= grads->n) {
            const float *got = net->params + pe->offset;
            int bad = 0;
            size_t worst = 0;
            double wd = 0;
            for (size_t j = 0; j < t->n; j++) {
                int undetermined = fabs(grads->data[at + j]) <= 1e-4 * gmax;
                loose += undetermined;
                double dj = fabs((double)got[j] - t->data[j]);
                double tol = undetermined ? 2 * lr : 1e-6 + 1e-4 * fabs(t->data[j]);
                if (dj > tol) bad++;
                if (dj > wd) wd = dj, worst = j;
            }
            compared += t->n;
            CHECK(!bad, "relabel student after AdamW %s: %d of %zu values off; worst at %zu: got %.9g, want %.9g", pe->name,
                  bad, t->n, worst, got[worst], t->data[worst]);
        }
        at += pe->numel;
    }
    if (getenv("VERBOSE")) printf("after AdamW: %zu of %zu values compared have a gradient within tolerance of 0\n", loose, compared);
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
        compare_after_adamw(&student, &F, grads, gmax, recipe_lr(&r, (int)cfg->data[3]));
        compare_entries(&student, &F, "after.", "relabel student's buffers after AdamW", 1e-4, 1);
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

// ----------------------------------------------------------------------------
// the methods as members of the distillation stage (registry, checkpoints, outputs)

static DatasetInfo g_info;
static Dataset g_ds;
static char g_teacher[2][600];

// 3 classes of 12 random 16x16 images, and two ConvNetBN teachers for them (random weights,
// running statistics away from 0 / 1 so that the BN terms pull)
static int stage_setup(void) {
    memset(&g_ds, 0, sizeof(g_ds));
    snprintf(g_ds.name, sizeof(g_ds.name), "CIFAR10");
    g_ds.c = 3, g_ds.h = g_ds.w = 16, g_ds.n_classes = 3, g_ds.n = 36;
    g_ds.images = malloc((size_t)g_ds.n * 768);
    g_ds.labels = malloc(sizeof(int) * (size_t)g_ds.n);
    Rng r;
    rng_init(&r, 77, 0);
    for (int i = 0; i < g_ds.n; i++) {
        g_ds.labels[i] = i % 3;
        for (int k = 0; k < 768; k++) g_ds.images[(size_t)i * 768 + k] = (uint8_t)(rng_below(&r, 96) + 64 * (i % 3));
    }
    g_info = *dataset_info("CIFAR10");
    g_info.h = g_info.w = 16;
    g_info.n_classes = 3;
    for (int t = 0; t < 2; t++) {
        Net net;
        Err e;
        if (model_create(&net, "ConvNetBN", 3, 3, 16, 16, &e)) {
            CHECK(0, "ConvNetBN teacher: %s", e.msg);
            return -1;
        }
        net_init_params(&net, 11 + (uint64_t)t);
        for (int l = 0; l < net.n_layers; l++) {
            const Layer *L = &net.layers[l];
            if (L->kind != LAYER_BATCHNORM) continue;
            for (int c = 0; c < L->in_c; c++)
                net.buffers[L->rm + c] = 0.2f * (float)rng_normal(&r), net.buffers[L->rv + c] = 0.5f + rng_uniform(&r);
        }
        snprintf(g_teacher[t], sizeof(g_teacher[t]), "%s", test_tmp(t ? "teacher2.pth" : "teacher1.pth"));
        int rc = checkpoint_save(&net, g_teacher[t], &e);
        net_free(&net);
        if (rc) {
            CHECK(0, "saving the teacher: %s", e.msg);
            return -1;
        }
    }
    return 0;
}

static void stage_params(DistillParams *p, const DistillMethodDef *def, int two_teachers) {
    Err e;
    distill_params_init(p, def);
    char list[1300];
    snprintf(list, sizeof(list), "%s%s%s", g_teacher[0], two_teachers ? "," : "", two_teachers ? g_teacher[1] : "");
    const char *set[][2] = {{"teacher", list}, {"batch_size", "2"}, {"round_iterations", "1"}, {"stat_batch", "8"},
                            {"verifier_every", "2"}, {"jitter", "3"}};
    for (size_t k = 0; k < sizeof(set) / sizeof(set[0]); k++)
        if (distill_param_index(p, set[k][0]) >= 0)
            CHECK(distill_params_set_text(p, set[k][0], set[k][1], &e) == 0, "%s %s: %s", def->name, set[k][0], e.msg);
}

// the run's synthetic set (from the res file) or NULL; the release files are removed after
static float *stage_final(const DistillConfig *cfg, const DistillParams *p, int resume, DistillResult *res, Err *e,
                          int *rc, int keep) {
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp("decoupled_out"));
    mkdir(dir, 0777);
    distill_paths(&paths, dir, cfg, e);
    *rc = distill_run(cfg, p, cfg->method->no_real_data ? NULL : &g_ds, NULL, NULL, &paths, resume, res, e);
    distill_result_free(res);
    if (*rc || res->stopped) return NULL;
    Pool pool;
    PoolOptions po = {.info = &g_info, .exp = -1};
    if (pool_load(&pool, paths.res, &po, e)) {
        CHECK(0, "%s res file: %s", cfg->method->name, e->msg);
        return NULL;
    }
    float *x = malloc(sizeof(float) * 6 * 768);
    memcpy(x, pool.x, sizeof(float) * 6 * 768);
    CHECK(pool.n == 6 && pool.y[0] == 0 && pool.y[1] == 0 && pool.y[5] == 2, "%s: the res file holds the class-major set",
          cfg->method->name);
    pool_free(&pool);
    if (!keep) {
        char cmd[4000];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'", paths.res, paths.png, paths.images);
        CHECK(system(cmd) == 0, "clean up");
    }
    return x;
}

static void test_stage_method(const char *name) {
    const DistillMethodDef *def = distill_method_find(name);
    CHECK(def != NULL, "%s is in the registry", name);
    if (!def) return;
    int gvbsm = !strcmp(def->name, "G-VBSM");
    DistillConfig cfg = {.method = def, .info = &g_info, .ipc = 2, .iterations = 3, .seed = 5};
    snprintf(cfg.arch, sizeof(cfg.arch), "ConvNetBN");
    snprintf(cfg.ckpt_path, sizeof(cfg.ckpt_path), "%s", test_tmp("decoupled.ckpt.pt"));
    DistillParams p;
    stage_params(&p, def, gvbsm);
    Err e;
    int rc;
    DistillResult res;
    float *a = stage_final(&cfg, &p, 0, &res, &e, &rc, 1);
    CHECK(rc == 0 && a, "%s through the stage: %s", name, rc ? e.msg : "");
    if (!a) return;
    long total = res.steps;
    // the images stay in the valid box of each channel
    int inside = 1;
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 256; k++) {
                float v = a[(size_t)i * 768 + c * 256 + k];
                inside &= v >= -g_info.mean[c] / g_info.std[c] - 1e-5f && v <= (1 - g_info.mean[c]) / g_info.std[c] + 1e-5f;
            }
    CHECK(inside, "%s: images outside the valid box", name);
    // the released image folder, read back as beard train reads it
    DistillPaths paths;
    distill_paths(&paths, test_tmp("decoupled_out"), &cfg, &e);
    char path[1400];
    snprintf(path, sizeof(path), "%s/new002/class002_id001.%s", paths.images, def->image_ext);
    struct stat st;
    CHECK(stat(path, &st) == 0, "%s: no %s", name, path);
    CHECK(!strcmp(def->image_ext, gvbsm ? "png" : "jpg"), "%s saves %s", name, def->image_ext);
    Pool pool;
    rc = pool_load_imagefolder(&pool, paths.images, &g_info, &e);
    CHECK(rc == 0 && pool.n == 6 && pool.y[1] == 0 && pool.y[2] == 1 && pool.y[5] == 2, "%s: the folder read back: %s",
          name, rc ? e.msg : "wrong count or labels");
    if (rc == 0 && gvbsm) { // PNG: the 8-bit truncation alone
        double worst = 0;
        for (size_t i = 0; i < 6 * 768; i++) {
            int c = (int)(i / 256 % 3);
            double px = fmin(fmax(a[i] * g_info.std[c] + g_info.mean[c], 0), 1);
            worst = fmax(worst, fabs(px - (pool.x[i] * g_info.std[c] + g_info.mean[c])));
        }
        CHECK(worst <= 1.0 / 255 + 1e-6, "%s: pixels back off by %.4f", name, worst);
    }
    if (rc == 0) pool_free(&pool);
    // a second run over the first's outputs replaces its image folder
    float *b = stage_final(&cfg, &p, 0, &res, &e, &rc, 0);
    CHECK(rc == 0 && b && !memcmp(a, b, sizeof(float) * 6 * 768), "%s: the same seed and threads give identical images",
          name);
    free(b);
    // stopped inside a batch and at a batch's end, then resumed: the uninterrupted run's bits
    long stops[2] = {4, 3};
    for (int k = 0; k < 2; k++) {
        DistillConfig c1 = cfg;
        c1.stop_after = stops[k];
        b = stage_final(&c1, &p, 0, &res, &e, &rc, 0);
        CHECK(rc == 0 && !b && res.stopped && res.steps_run == stops[k] && stat(cfg.ckpt_path, &st) == 0,
              "%s: stopped after %ld steps with a checkpoint: %s", name, stops[k], rc ? e.msg : "");
        b = stage_final(&cfg, &p, 1, &res, &e, &rc, 0);
        CHECK(rc == 0 && b && res.resumed_from == stops[k] && res.steps_run == total - stops[k] &&
                  !memcmp(a, b, sizeof(float) * 6 * 768),
              "%s: resumed after %ld steps = uninterrupted, bit for bit: %s", name, stops[k], rc ? e.msg : "");
        free(b);
        CHECK(stat(cfg.ckpt_path, &st) != 0, "%s: the checkpoint is removed with the release files", name);
    }
    // another seed, other images; another teacher, a refused resume
    cfg.seed = 6;
    b = stage_final(&cfg, &p, 0, &res, &e, &rc, 0);
    CHECK(rc == 0 && b && memcmp(a, b, sizeof(float) * 6 * 768), "%s: another seed, other images", name);
    free(b);
    DistillConfig c1 = cfg;
    c1.stop_after = 2;
    stage_final(&c1, &p, 0, &res, &e, &rc, 0);
    DistillParams q = p;
    CHECK(distill_params_set_text(&q, "teacher", g_teacher[1], &e) == 0, "teacher");
    stage_final(&cfg, &q, 1, &res, &e, &rc, 0);
    CHECK(rc == -1 && strstr(e.msg, "another run"), "%s: a checkpoint of another teacher: %s", name, e.msg);
    remove(cfg.ckpt_path);
    free(a);
}

static void test_stage(void) {
    if (stage_setup()) return;
    const char *m[] = {"SRe2L", "CDA", "SCDD", "gvbsm", "DELT"};
    for (int k = 0; k < 5; k++) test_stage_method(m[k]);
    // one teacher for SRe2L; the teachers must fit the dataset
    const DistillMethodDef *def = distill_method_find("SRe2L");
    DistillConfig cfg = {.method = def, .info = &g_info, .ipc = 1, .iterations = 1, .seed = 5};
    snprintf(cfg.arch, sizeof(cfg.arch), "ConvNetBN");
    DistillParams p;
    stage_params(&p, def, 1);
    Err e;
    int rc;
    DistillResult res;
    stage_final(&cfg, &p, 0, &res, &e, &rc, 0);
    CHECK(rc == -1 && strstr(e.msg, "one teacher") && strstr(e.msg, "2 given"), "two teachers for SRe2L: %s", e.msg);
    stage_params(&p, def, 0);
    CHECK(distill_params_set_text(&p, "teacher_arch", "ConvNet", &e) == 0, "teacher_arch");
    stage_final(&cfg, &p, 0, &res, &e, &rc, 0);
    CHECK(rc == -1 && strstr(e.msg, "does not load as a ConvNet") && strstr(e.msg, "3 classes"),
          "a teacher of another architecture: %s", e.msg);
    dataset_free(&g_ds);
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

static int one_line(const char *s) {
    const char *nl = strchr(s, '\n');
    return nl && !nl[1];
}

static void test_cli_refusals(void) {
    if (!beard_bin()) {
        test_skip("no beard binary for the CLI checks");
        return;
    }
    char out[8192], log[32768];
    const char *nobn = test_tmp("nobn.pth"), *c100 = test_tmp("bn100.pth"), *s16 = test_tmp("bn16.pth"),
               *bn = test_tmp("bn10.pth"), *dir = test_tmp("recover_out");
    save_model("ConvNet", 10, 32, nobn);
    save_model("ConvNetBN", 100, 32, c100);
    save_model("ConvNetBN", 10, 16, s16);
    save_model("ConvNetBN", 10, 32, bn);
    struct {
        const char *what, *args;
        int status;
        const char *needle, *needle2;
    } bad[] = {
        {"a teacher without BN", "--method SRe2L --teacher %s --arch ConvNet", 1, "no BatchNorm", "ConvNet"},
        {"a teacher of 100 classes", "--method CDA --teacher %s --arch ConvNetBN", 1, "10 classes", "[100, "},
        {"a 16-pixel teacher", "--method SRe2L --teacher %s --arch ConvNetBN", 1, "3x32x32", "shape"},
        {"a parameter SRe2L lacks", "--method SRe2L --teacher %s --nuc-norm 1", 2, "SRe2L has no parameter 'nuc_norm'", ""},
        {"two teachers for SRe2L", "--method SRe2L --teacher %s --teacher x.pth --arch ConvNetBN", 1, "one teacher", "2 given"},
        {"no teacher", "--method SC-DD --arch ConvNetBN", 1, "--teacher T.pth", ""},
        {"a bad curriculum", "--method CDA --teacher %s --arch ConvNetBN --easy2hard-mode zigzag", 1, "zigzag", ""},
    };
    const char *files[] = {nobn, c100, s16, c100, nobn, NULL, bn};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char args[1500];
        snprintf(args, sizeof(args), bad[k].args, files[k] ? files[k] : "");
        int rc = run_cli_stderr(out, sizeof(out), "distill %s --dataset cifar10 --ipc 1 --iterations 1 --out %s --quiet",
                                args, dir);
        CHECK(rc == bad[k].status && strstr(out, bad[k].needle) && strstr(out, bad[k].needle2) &&
                  !strncmp(out, "beard distill: ", 15) && one_line(out),
              "%s: rc %d: %s", bad[k].what, rc, out);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
        CHECK(system(cmd) == 0, "%s: nothing written in %s", bad[k].what, dir);
    }
    // a good run: the release files, then stage 2 on its image folder with the teacher
    int rc = run_cli(log, sizeof(log), "distill --method SRe2L --teacher %s --arch ConvNetBN --dataset cifar10 --ipc 1 "
                     "--iterations 1 --batch-size 10 --out %s --quiet", bn, dir);
    char images[1200];
    snprintf(images, sizeof(images), "%s/SRe2L_CIFAR10_ConvNetBN_1ipc", dir);
    CHECK(rc == 0 && strstr(log, "new000/class000_id000.jpg"), "beard distill --method SRe2L: rc %d: %s", rc, log);
    rc = run_cli_stderr(out, sizeof(out), "distill --method SRe2L --teacher %s --arch ConvNetBN --dataset cifar10 --ipc 1 "
                        "--iterations 1 --out %s --quiet", bn, dir);
    CHECK(rc == 1 && strstr(out, "exists") && strstr(out, "--force"), "existing outputs are kept: %s", out);
    rc = run_cli(log, sizeof(log), "distill --help");
    CHECK(rc == 0 && strstr(log, "SRe2L:") && strstr(log, "G-VBSM:") && strstr(log, "DELT:") && strstr(log, "SC-DD:") &&
              strstr(log, "--teacher") && strstr(log, "--iterations 4000 per recover batch") && strstr(log, "--r_bn"),
          "--help lists the decoupled methods with their defaults");
    rc = run_cli_stderr(out, sizeof(out), "recover --method SRe2L");
    CHECK(rc == 2 && strstr(out, "beard distill"), "beard recover points to beard distill: %s", out);
    // the stage's benchmark on a decoupled method: a random teacher of --arch, recover iterations
    rc = run_cli(out, sizeof(out), "bench --distill DELT --arch ConvNetBN --ipc 1 --iterations 1 --train-size 2 --threads 1");
    CHECK(rc == 0 && strstr(out, "ConvNetBN") && strstr(out, "iterations/s"), "bench --distill DELT: rc %d: %s", rc, out);
    rc = run_cli_stderr(out, sizeof(out), "bench --distill SRe2L --torch");
    CHECK(rc == 2 && strstr(out, "--recover --torch"), "bench --distill SRe2L --torch points to --recover: %s", out);
    rc = run_cli(out, sizeof(out), "train --data-file %s --dataset cifar10 --recipe sre2l-relabel", images);
    CHECK(rc == 2 && strstr(out, "--teacher"), "a relabel recipe without a teacher: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --src-dataset --dataset cifar10 --recipe sre2l-squeeze --mix mixup");
    CHECK(rc == 2 && strstr(out, "--mix"), "mixing hard labels: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --src-dataset --dataset cifar10 --recipe nope");
    CHECK(rc == 2 && strstr(out, "sre2l-relabel"), "unknown recipe: rc %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --data-file %s --dataset cifar10 --arch ConvNetBN --teacher %s --teacher-arch "
                 "ConvNetBN --quiet", images, c100);
    CHECK(rc == 1 && strstr(out, "teacher") && strstr(out, "10 classes") && strstr(out, "[100, "),
          "train: a teacher of another dataset: rc %d: %s", rc, out);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "clean up");
}

int main(void) {
    parallel_set_threads(1); // small batches: one thread is fastest, and the checks need no more
    test_sre2l_family("tests/fixtures/decoupled/sre2l_step.bin", "SRe2L", 0, 0);
    test_sre2l_family("tests/fixtures/decoupled/cda_step.bin", "CDA", 1, 0);
    test_sre2l_family("tests/fixtures/decoupled/delt_step.bin", "DELT", 1, 1);
    test_gvbsm();
    test_softlabel_step();
    test_delt_helpers();
    test_stage();
    test_jpeg_like_pil();
    test_no_batchnorm();
    test_fkd();
    test_cli_refusals();
    return test_done("test_decoupled");
}
