/*
 * test_attacks_more.c: the torchattacks attacks beyond BEARD's set, and Admix and MIST,
 * on a tiny randomly initialised ConvNet (3x16x16 inputs, width 16), so that it runs in
 * seconds, under the sanitizers too, without ../shared. For each attack, its defining
 * properties:
 *   - Linf/L2 attacks stay in their ball and every result in the [0, 1] box;
 *   - the loss the gradient attacks ascend rises (for Admix and MIST: the surrogate's
 *     CE, and the targeted forms' target CE falls);
 *   - L0 attacks change no more than they may (OnePixel: `pixels` pixels; JSMA: its
 *     budget; Pixle: only moves pixels of the original image);
 *   - EAD returns the clean input or a fooling example, MultiAttack the first fooling
 *     example of its chain;
 *   - the same seed gives the same output, and per-sample attacks do not depend on how
 *     the samples are split into batches (EAD's early stop and Admix's add-ins are
 *     batch-wide by design, as in their references, and are left out);
 *   - an ensemble of a network with itself attacks exactly as the network alone, and an
 *     ensemble of surrogates with different input shapes is refused;
 *   - DI-/TI-FGSM's batch_draws=1 shares a batch's draws (copies of one image end
 *     identical), the per-image default does not;
 *   - input diversity's bilinear resize and its adjoint, and TI-FGSM's kernel, against
 *     PyTorch/SciPy (tests/fixtures/attacks/transfer_ops.bin, written by
 *     tests/scripts/gen_transfer_fixtures.py).
 * Every attack runs 3 steps unless a case says otherwise. Fidelity against torchattacks on
 * real data is test_attack_fidelity's job.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/runner.h"
#include "../src/attacks/transfer.h"
#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "harness.h"

enum { N = 8, NK = 10, IMG = 16 };
#define DIM ((size_t)3 * IMG * IMG)

static Net net;
static float mean[3] = {0.4914f, 0.4822f, 0.4465f}, stdv[3] = {0.2023f, 0.1994f, 0.2010f};
static float X[N * DIM], TX[64 * DIM];
static int Y[N], T[N], IDS[N], TY[64];
static AttackTrainSet train = {TX, TY, 64, mean, stdv};

static void build(Net *n, int width, uint64_t seed) {
    ConvNetConfig cfg = {.arch = "test", .width = width, .depth = 2, .act = "relu", .norm = "instancenorm",
                         .pool = "avgpooling"};
    Err e;
    CHECK(convnet_build(n, &cfg, 3, NK, IMG, IMG, &e) == 0, "build: %s", e.msg);
    net_init_params(n, seed);
    net_set_normalize(n, 1, mean, stdv);
}

static void setup(void) {
    build(&net, 16, 11);
    Rng r;
    rng_init(&r, 99, 0);
    for (size_t i = 0; i < N * DIM; i++) X[i] = rng_uniform(&r);
    for (size_t i = 0; i < 64 * DIM; i++) TX[i] = rng_uniform(&r);
    float z[64 * NK];
    net_forward(&net, X, N, z, NULL);
    for (int i = 0; i < N; i++) {
        Y[i] = logits_argmax(z + i * NK, NK); // every point starts correct
        T[i] = (Y[i] + 1) % NK;
        IDS[i] = i;
    }
    for (int i = 0; i < 64; i++) TY[i] = i % NK;
}

// runs `name` with the torchattacks preset and "a=v;b=v" overrides on the first n points
static int run_on(Net *const *ens, int n_ens, const char *name, const char *ov, int targeted, uint64_t seed,
                  const float *x, int n, const int *ids, float *adv) {
    const AttackDef *def = attack_find(name);
    CHECK(def != NULL, "%s is not registered", name);
    if (!def) return -1;
    AttackParams p;
    attack_params_init(&p, def, PRESET_TORCHATTACKS);
    // a few steps are enough for the properties (and keep the sanitizer run short)
    if (!strstr(ov, "steps")) attack_params_set(&p, "steps", 3), attack_params_set(&p, "num_iter_set", 3);
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", ov);
    for (char *tok = strtok(buf, ";"); tok; tok = strtok(NULL, ";")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        CHECK(attack_params_set_text(&p, def, tok, eq + 1) == 0, "%s: bad override %s", name, tok);
    }
    Err e;
    AttackShape shape = {3, IMG, IMG, NK};
    if (attack_params_check(def, &p, &shape, &e)) {
        CHECK(0, "%s: %s", name, e.msg);
        return -1;
    }
    AttackEnsemble en = {.members = ens, .n = n_ens, .n_grad = -1};
    void *state = NULL;
    AttackCtx c = {.net = ens ? ens[0] : &net, .K = NK, .D = DIM, .targeted = targeted, .params = &p, .seed = seed,
                   .ids = ids, .n_classes_cap = NK, .ens = ens ? &en : NULL, .sem = SEM_PIXEL, .mean = mean,
                   .std = stdv, .train = &train, .state = &state};
    int rc = def->run(&c, x, Y + (ids ? ids[0] : 0), T + (ids ? ids[0] : 0), n, adv, &e);
    if (state && def->state_free) def->state_free(state);
    CHECK(rc == 0, "%s: %s", name, rc ? e.msg : "");
    return rc;
}

static int run(const char *name, const char *ov, int targeted, uint64_t seed, float *adv) {
    return run_on(NULL, 0, name, ov, targeted, seed, X, N, IDS, adv);
}

static double ce_mean(const float *x, const int *lab) {
    float z[N * NK];
    net_forward(&net, x, N, z, NULL);
    double s = 0;
    for (int b = 0; b < N; b++) {
        double mx = -INFINITY, se = 0;
        for (int k = 0; k < NK; k++) mx = fmax(mx, z[b * NK + k]);
        for (int k = 0; k < NK; k++) se += exp(z[b * NK + k] - mx);
        s += mx + log(se) - z[b * NK + lab[b]];
    }
    return s / N;
}

static int n_fooled(const float *x, const int *lab, int targeted) {
    float z[N * NK];
    net_forward(&net, x, N, z, NULL);
    int f = 0;
    for (int b = 0; b < N; b++) {
        int p = logits_argmax(z + b * NK, NK);
        f += targeted ? p == lab[b] : p != lab[b];
    }
    return f;
}

// the ball (linf: max |delta| <= eps; else L2) and the box
static void check_ball(const char *what, const float *adv, int linf, double eps) {
    double worst = 0, lo = 0, hi = 1;
    for (int b = 0; b < N; b++) {
        double l2 = 0;
        for (size_t j = 0; j < DIM; j++) {
            double d = (double)adv[b * DIM + j] - X[b * DIM + j];
            l2 += d * d;
            if (linf) worst = fmax(worst, fabs(d));
            lo = fmin(lo, adv[b * DIM + j]), hi = fmax(hi, adv[b * DIM + j]);
        }
        if (!linf) worst = fmax(worst, sqrt(l2));
    }
    CHECK(worst <= eps * (1 + 1e-5) + 1e-7, "%s: perturbation %g beyond eps %g", what, worst, eps);
    CHECK(lo >= 0 && hi <= 1, "%s: outside the box [%g, %g]", what, lo, hi);
}

// the same seed gives the same examples; with split, also when the batch is split in two
// (one comparison checks both)
static void check_deterministic(const char *name, const char *ov, int targeted, int split) {
    float *a = malloc(sizeof(float) * N * DIM), *b = malloc(sizeof(float) * N * DIM);
    run(name, ov, targeted, 5, a);
    if (!split) {
        run(name, ov, targeted, 5, b);
        CHECK(!memcmp(a, b, sizeof(float) * N * DIM), "%s: the same seed gives different examples", name);
    } else { // the first 3 and the other 5 as separate batches
        run_on(NULL, 0, name, ov, targeted, 5, X, 3, IDS, b);
        run_on(NULL, 0, name, ov, targeted, 5, X + 3 * DIM, N - 3, IDS + 3, b + 3 * DIM);
        CHECK(!memcmp(a, b, sizeof(float) * N * DIM), "%s: the result depends on the batch split", name);
    }
    free(a), free(b);
}

static void test_linf_family(void) {
    const struct {
        const char *name, *ov;
        double eps;
        int ce_rises, targeted_ok, split;
    } cases[] = {
        {"RFGSM", "", 8.0 / 255, 1, 1, 1},          {"EOTPGD", "", 8.0 / 255, 1, 1, 1},
        {"FFGSM", "", 8.0 / 255, 1, 1, 1},          {"UPGD", "", 8.0 / 255, 1, 1, 1},
        {"UPGD", "loss=dlr", 8.0 / 255, 0, 1, 1},   {"UPGD", "loss=margin", 8.0 / 255, 0, 1, 1},
        {"NIFGSM", "", 8.0 / 255, 1, 1, 1},         {"SINIFGSM", "m=3", 8.0 / 255, 1, 1, 1},
        {"VMIFGSM", "N=2", 8.0 / 255, 1, 1, 1},     {"VNIFGSM", "N=2", 8.0 / 255, 1, 1, 1},
        {"DIFGSM", "", 8.0 / 255, 1, 1, 1},         {"TIFGSM", "len_kernel=5", 8.0 / 255, 1, 1, 1},
        {"Jitter", "", 8.0 / 255, 0, 1, 1},         {"PGDRS", "noise_batch_size=2;steps=3", 8.0 / 255, 0, 1, 1},
        {"PIFGSM", "", 16.0 / 255, 1, 0, 1},        {"PIFGSMPP", "", 16.0 / 255, 1, 1, 1},
        {"Admix", "num_scale=2;num_admix=2;steps=4", 8.0 / 255, 1, 1, 0},
        {"MIST", "num_mix=3;steps=4", 8.0 / 255, 1, 1, 1},
    };
    float *adv = malloc(sizeof(float) * N * DIM);
    double ce0 = ce_mean(X, Y), ct0 = ce_mean(X, T);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[96];
        snprintf(what, sizeof(what), "%s(%s)", cases[i].name, cases[i].ov);
        if (run(cases[i].name, cases[i].ov, 0, 1, adv)) continue;
        check_ball(what, adv, 1, cases[i].eps);
        if (cases[i].ce_rises) CHECK(ce_mean(adv, Y) > ce0, "%s: CE %g does not rise from %g", what, ce_mean(adv, Y), ce0);
        else CHECK(n_fooled(adv, Y, 0) > 0, "%s fools nothing", what);
        if (cases[i].targeted_ok) {
            if (run(cases[i].name, cases[i].ov, 1, 1, adv)) continue;
            check_ball(what, adv, 1, cases[i].eps);
            if (cases[i].ce_rises)
                CHECK(ce_mean(adv, T) < ct0, "%s targeted: the target's CE %g does not fall from %g", what,
                      ce_mean(adv, T), ct0);
        }
        check_deterministic(cases[i].name, cases[i].ov, 0, cases[i].split);
    }
    // PGDRS-L2 and GN, VANILA
    CHECK(run("PGDRSL2", "noise_batch_size=2;steps=3", 0, 1, adv) == 0, "PGDRSL2");
    check_ball("PGDRSL2", adv, 0, 1.0);
    CHECK(run("VANILA", "", 0, 1, adv) == 0 && !memcmp(adv, X, sizeof(X)), "VANILA returns the input");
    CHECK(run("GN", "std=0", 0, 1, adv) == 0 && !memcmp(adv, X, sizeof(X)), "GN with std 0 returns the input");
    run("GN", "", 0, 1, adv);
    check_ball("GN", adv, 1, 1.0);
    check_deterministic("GN", "", 0, 1);
    // MI-FGSM's special cases: DI-FGSM without diversity and TI-FGSM with a 1x1 kernel
    // are MI-FGSM (decay 1) bit for bit
    float *mi = malloc(sizeof(float) * N * DIM);
    run("MIFGSM", "", 0, 1, mi);
    run("DIFGSM", "diversity_prob=0;decay=1", 0, 1, adv);
    CHECK(!memcmp(adv, mi, sizeof(float) * N * DIM), "DI-FGSM without diversity is MI-FGSM");
    run("TIFGSM", "diversity_prob=0;decay=1;len_kernel=1", 0, 1, adv);
    CHECK(!memcmp(adv, mi, sizeof(float) * N * DIM), "TI-FGSM with a 1x1 kernel is MI-FGSM");
    run("UPGD", "", 0, 1, adv);
    CHECK(!memcmp(adv, mi, sizeof(float) * N * DIM), "UPGD (CE, no random start) is MI-FGSM");
    // batch_draws=1: a batch's images share each step's input-diversity draw (torchattacks'
    // scheme), so copies of one image end identical; drawn per image (the default) they do not
    {
        float *cp = malloc(sizeof(float) * N * DIM);
        int ys[N], ts[N];
        memcpy(ys, Y, sizeof(ys)), memcpy(ts, T, sizeof(ts));
        for (int i = 0; i < N; i++) memcpy(cp + i * DIM, X, sizeof(float) * DIM), Y[i] = ys[0], T[i] = ts[0];
        const char *di[2] = {"DIFGSM", "TIFGSM"};
        for (int a = 0; a < 2; a++) {
            int shared = 1, differ = 0;
            run_on(NULL, 0, di[a], "batch_draws=1", 0, 1, cp, N, IDS, adv);
            for (int i = 1; i < N; i++) shared &= !memcmp(adv + i * DIM, adv, sizeof(float) * DIM);
            run_on(NULL, 0, di[a], "", 0, 1, cp, N, IDS, adv);
            for (int i = 1; i < N; i++) differ |= memcmp(adv + i * DIM, adv, sizeof(float) * DIM) != 0;
            CHECK(shared, "%s batch_draws=1: copies of one image end differently", di[a]);
            CHECK(differ, "%s: copies of one image end identically with per-image draws", di[a]);
        }
        memcpy(Y, ys, sizeof(ys)), memcpy(T, ts, sizeof(ts));
        free(cp);
    }
    // EOTPGD without its random start is PGD
    run("PGD", "random_start=0", 0, 1, mi);
    run("EOTPGD", "random_start=0", 0, 1, adv);
    CHECK(!memcmp(adv, mi, sizeof(float) * N * DIM), "EOTPGD without a random start is PGD");
    free(adv), free(mi);
}

static void test_l0_and_others(void) {
    float *adv = malloc(sizeof(float) * N * DIM), *b2 = malloc(sizeof(float) * N * DIM);
    size_t plane = (size_t)IMG * IMG;
    // OnePixel: at most `pixels` pixels differ (all channels of a pixel go together)
    for (int tg = 0; tg < 2; tg++) {
        if (run("OnePixel", "pixels=2;steps=3", tg, 1, adv)) break;
        int worst = 0;
        for (int b = 0; b < N; b++) {
            int changed = 0;
            for (size_t q = 0; q < plane; q++) {
                int d = 0;
                for (int c = 0; c < 3; c++) d |= adv[b * DIM + c * plane + q] != X[b * DIM + c * plane + q];
                changed += d;
            }
            worst = changed > worst ? changed : worst;
        }
        CHECK(worst <= 2, "OnePixel(pixels=2) changed %d pixels", worst);
        check_ball("OnePixel", adv, 1, 1.0);
    }
    check_deterministic("OnePixel", "pixels=1;steps=3", 0, 1);
    // Pixle: every pixel of the result is some pixel of the original image
    if (!run("Pixle", "restarts=2;max_iterations=3", 0, 1, adv)) {
        int bad = 0;
        for (int b = 0; b < N; b++)
            for (size_t q = 0; q < plane; q++) {
                int found = 0;
                for (size_t s = 0; s < plane && !found; s++) {
                    found = 1;
                    for (int c = 0; c < 3; c++) found &= adv[b * DIM + c * plane + q] == X[b * DIM + c * plane + s];
                }
                bad += !found;
            }
        CHECK(bad == 0, "Pixle: %d pixels are no pixel of the original image", bad);
    }
    check_deterministic("Pixle", "restarts=2;max_iterations=3;pixel_mapping=similarity", 0, 1);
    check_deterministic("Pixle", "restarts=1;max_iterations=3;pixel_mapping=distance_random", 1, 1);
    // JSMA: within its budget of 2 ceil(D gamma / 2) features
    if (!run("JSMA", "gamma=0.02", 1, 1, adv)) {
        int worst = 0;
        for (int b = 0; b < N; b++) {
            int changed = 0;
            for (size_t j = 0; j < DIM; j++) changed += adv[b * DIM + j] != X[b * DIM + j];
            worst = changed > worst ? changed : worst;
        }
        CHECK(worst <= 2 * (int)ceil(DIM * 0.02 / 2), "JSMA changed %d features", worst);
        check_ball("JSMA", adv, 1, 1.0);
    }
    check_deterministic("JSMA", "gamma=0.02", 1, 1);
    // EAD: the clean input or a fooling example
    for (int el = 0; el < 2; el++) {
        const char *name = el ? "EADEN" : "EADL1";
        if (run(name, "binary_search_steps=3;max_iterations=20;initial_const=1", 0, 1, adv)) continue;
        float z[N * NK];
        net_forward(&net, adv, N, z, NULL);
        int bad = 0, fooled = 0;
        for (int b = 0; b < N; b++) {
            int same = !memcmp(adv + b * DIM, X + b * DIM, sizeof(float) * DIM);
            int f = logits_argmax(z + b * NK, NK) != Y[b];
            bad += !same && !f;
            fooled += f;
        }
        CHECK(bad == 0 && fooled > 0, "%s: %d non-fooling examples, %d fooled", name, bad, fooled);
    }
    // SparseFool: in the box, and it fools
    if (!run("SparseFool", "steps=3", 0, 1, adv)) {
        check_ball("SparseFool", adv, 1, 1.0);
        CHECK(n_fooled(adv, Y, 0) > 0, "SparseFool fools nothing");
    }
    check_deterministic("SparseFool", "steps=2", 0, 1);
    // MultiAttack: the first fooling example of FGSM, then PGD
    float *f1 = malloc(sizeof(float) * N * DIM), *f2 = malloc(sizeof(float) * N * DIM);
    run("FGSM", "eps=1/255", 0, 1, f1);
    run("PGD", "eps=2/255;random_start=0;steps=10", 0, 1, f2);
    if (!run("MultiAttack", "chain=FGSM(eps=1/255)+PGD(eps=2/255, random_start=0)", 0, 1, adv)) {
        float z1[N * NK], z2[N * NK];
        net_forward(&net, f1, N, z1, NULL);
        net_forward(&net, f2, N, z2, NULL);
        int bad = 0;
        for (int b = 0; b < N; b++) {
            const float *want = logits_argmax(z1 + b * NK, NK) != Y[b]   ? f1 + b * DIM
                                : logits_argmax(z2 + b * NK, NK) != Y[b] ? f2 + b * DIM
                                                                         : X + b * DIM;
            bad += memcmp(adv + b * DIM, want, sizeof(float) * DIM) != 0;
        }
        CHECK(bad == 0, "MultiAttack: %d samples are not their first fooling example", bad);
    }
    free(f1), free(f2);
    // LGV: models collected on the training split, BIM on them; in the ball. It copies
    // the surrogate by architecture name, so it runs on a registered one here
    Net reg;
    Err e;
    CHECK(model_create(&reg, "ConvNetD1", 3, NK, IMG, IMG, &e) == 0, "ConvNetD1: %s", e.msg);
    net_init_params(&reg, 7);
    net_set_normalize(&reg, 1, mean, stdv);
    Net *one[1] = {&reg};
    if (!run_on(one, 1, "LGV", "epochs=2;nb_models_epoch=2;batch=16", 0, 1, X, N, IDS, adv)) check_ball("LGV", adv, 1, 8.0 / 255);
    run_on(one, 1, "LGV", "epochs=2;nb_models_epoch=2;batch=16", 0, 1, X, N, IDS, b2);
    CHECK(!memcmp(adv, b2, sizeof(float) * N * DIM), "LGV: the same seed gives different examples");
    net_free(&reg);
    free(adv), free(b2);
}

// an ensemble of the net with itself is the net; different input shapes are refused
static void test_ensembles(void) {
    float *a = malloc(sizeof(float) * N * DIM), *b = malloc(sizeof(float) * N * DIM);
    Net *pair[2] = {&net, &net};
    const char *names[] = {"PGD", "MIST", "Admix", "CW", "DeepFool"};
    const char *ovs[] = {"", "num_mix=2;steps=3", "num_scale=2;num_admix=2;steps=3", "steps=5", "steps=3"};
    for (int i = 0; i < 5; i++) {
        run(names[i], ovs[i], 0, 3, a);
        run_on(pair, 2, names[i], ovs[i], 0, 3, X, N, IDS, b);
        CHECK(!memcmp(a, b, sizeof(float) * N * DIM), "%s: an ensemble of the net with itself differs from the net",
              names[i]);
    }
    // a real ensemble of two different networks: the mean of their logits goes up in loss
    Net other;
    build(&other, 16, 12);
    Net *two[2] = {&net, &other};
    CHECK(run_on(two, 2, "MIST", "num_mix=2;steps=3", 0, 3, X, N, IDS, a) == 0, "MIST on an ensemble");
    check_ball("MIST on an ensemble", a, 1, 8.0 / 255);
    // different input shapes: refused by the runner
    Net small;
    ConvNetConfig cfg = {.arch = "test", .width = 8, .depth = 1, .act = "relu", .norm = "instancenorm",
                         .pool = "avgpooling"};
    Err e;
    CHECK(convnet_build(&small, &cfg, 3, NK, 8, 8, &e) == 0, "small net");
    Net *members[4];
    Net *extra[1] = {&small};
    CHECK(attack_ensemble_init(&net, extra, 1, members, &e) != 0 && strstr(e.msg, "different input shapes"),
          "an ensemble with different input shapes is refused: %s", e.msg);
    AttackData ad = {.x = X, .y = Y, .n = N, .C = 3, .H = IMG, .W = IMG, .mean = mean, .std = stdv};
    RunConfig rc = {.sem = SEM_PIXEL, .batch = N, .ensemble = extra, .n_ensemble = 1};
    AttackParams p;
    attack_params_init(&p, attack_find("MIST"), PRESET_TORCHATTACKS);
    AttackResult r;
    CHECK(attack_evaluate(&net, &ad, attack_find("MIST"), &p, 0, &rc, &r, &e) != 0 && strstr(e.msg, "input shapes"),
          "attack_evaluate refuses the mixed ensemble: %s", e.msg);
    net_free(&other), net_free(&small);
    free(a), free(b);
}

// the parameter checks that need the data's shape
static void test_shape_checks(void) {
    const struct {
        const char *name, *ov, *want;
    } bad[] = {
        {"OnePixel", "pixels=257", "pixels must be at most"},
        {"DIFGSM", "resize_rate=1", "resize_rate"},
        {"MultiAttack", "chain=FGSM", "at least two"},
        {"MultiAttack", "chain=FGSM+NoSuch", "unknown attack"},
        {"MultiAttack", "chain=FGSM+PGD(steps=0)", "PGD: steps"},
        {"LGV", "attack=LGV", "cannot train"},
        {"Pixle", "x_dim_lo=2.5", "whole number"},
        {"MIST", "mix_lo=0.9;mix_hi=0.1", "mix_lo"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const AttackDef *def = attack_find(bad[i].name);
        AttackParams p;
        attack_params_init(&p, def, PRESET_TORCHATTACKS);
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", bad[i].ov);
        for (char *tok = strtok(buf, ";"); tok; tok = strtok(NULL, ";")) {
            char *eq = strchr(tok, '=');
            *eq = 0;
            attack_params_set_text(&p, def, tok, eq + 1);
        }
        AttackShape shape = {3, IMG, IMG, NK};
        Err e;
        int rc = attack_params_check(def, &p, &shape, &e);
        CHECK(rc != 0 && strstr(e.msg, bad[i].want), "%s(%s) refused with '%s': %s", bad[i].name, bad[i].ov, bad[i].want,
              rc ? e.msg : "accepted");
    }
}

// input diversity and TI's kernel against PyTorch / SciPy
static void test_transfer_ops(void) {
    Fixture f;
    if (fixture_load("tests/fixtures/attacks/transfer_ops.bin", &f)) return;
    const FixTensor *x = fixture_get(&f, "x"), *go = fixture_get(&f, "gout");
    if (x && go) {
        int C = (int)x->shape[0], W = (int)x->shape[2];
        float *out = malloc(sizeof(float) * x->n), *gi = malloc(sizeof(float) * x->n);
        for (int rnd = 28; rnd < 32; rnd++) {
            DiDraw d = {1, rnd, (32 - rnd) / 2, 32 - rnd - 1}; // as gen_transfer_fixtures.py pads
            di_forward(out, x->data, C, W, &d);
            di_backward(gi, go->data, C, W, &d);
            const FixTensor *ro = fixture_getf(&f, "di_out_%d", rnd), *rg = fixture_getf(&f, "di_gin_%d", rnd);
            char what[64];
            snprintf(what, sizeof(what), "input diversity to %d", rnd);
            if (ro) check_close(what, out, ro->data, x->n, 1e-6, 1e-5);
            snprintf(what, sizeof(what), "input diversity's adjoint, %d", rnd);
            // float32 sums with cancellation: both torch and beard are ~1e-5 off the exact value
            if (rg) check_close(what, gi, rg->data, x->n, 2e-5, 1e-5);
        }
        free(out), free(gi);
    }
    const char *kinds[3] = {"gaussian", "linear", "uniform"};
    for (int k = 0; k < 3; k++) {
        const FixTensor *rk = fixture_getf(&f, "ti_%s_15", kinds[k]);
        float kern[225];
        ti_kernel(kern, k, 15, 3.0);
        if (rk) check_close(kinds[k], kern, rk->data, 225, 0, 0);
    }
    const FixTensor *g = fixture_get(&f, "ti_in"), *ro = fixture_get(&f, "ti_conv");
    if (g && ro) {
        float kern[225], *out = malloc(sizeof(float) * g->n);
        ti_kernel(kern, TI_GAUSSIAN, 15, 3.0);
        ti_conv(out, g->data, kern, 15, 3, 32, 32);
        check_close("TI-FGSM's gradient convolution", out, ro->data, g->n, 1e-7, 1e-5);
        free(out);
    }
    fixture_free(&f);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    setup();
    test_linf_family();
    test_l0_and_others();
    test_ensembles();
    test_shape_checks();
    test_transfer_ops();
    net_free(&net);
    return test_done("test_attacks_more");
}
