/*
 * test_attacks_aa.c: the AutoAttack family (APGD, APGD-T, Square, SPSA, AutoAttack) on a
 * small random ConvNet and random inputs, checking each attack's defining properties:
 * the result stays in the eps-ball (Linf or L2) and the [0, 1] box; points the attack
 * did not fool come back clean; APGD's best loss rises with its steps; the targeted DLR
 * run reaches its targets; Square finds more with more queries and uses forward passes
 * only, as SPSA does, whose estimate agrees with the true gradient; AutoAttack is at
 * least as strong as its first member; same seed => same output, whatever the thread
 * count and the batch composition. Needs no ../shared.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/apgd.h"
#include "../src/attacks/runner.h"
#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "../src/nn/nn.h"
#include "harness.h"

#define N 24   // samples
#define DIM 768  // values per sample (3 x 16 x 16)
#define NK 10  // classes

static Net net;
static float mean[3] = {0.4914f, 0.4822f, 0.4465f}, stdv[3] = {0.2023f, 0.1994f, 0.2010f};
static float X[N * DIM];
static int Y[N], T[N], IDS[N];
static int sanitized; // BEARD_SANITIZED (make test's second run): the costly repeats are left out

static void setup(void) {
    ConvNetConfig cfg = {.arch = "test", .width = 16, .depth = 2, .act = "relu", .norm = "instancenorm",
                         .pool = "avgpooling"};
    Err e;
    CHECK(convnet_build(&net, &cfg, 3, NK, 16, 16, &e) == 0, "build: %s", e.msg);
    net_init_params(&net, 11);
    net_set_normalize(&net, 1, mean, stdv);
    Rng r;
    rng_init(&r, 99, 0);
    for (int i = 0; i < N * DIM; i++) X[i] = rng_uniform(&r);
    // labels: the model's own predictions (every point starts correct), except the last
    // two, which start misclassified
    float z[N * NK];
    net_forward(&net, X, N, z, NULL);
    for (int i = 0; i < N; i++) {
        Y[i] = logits_argmax(z + i * NK, NK);
        if (i >= N - 2) Y[i] = (Y[i] + 3) % NK;
        T[i] = (Y[i] + 1) % NK;
        IDS[i] = i;
    }
}

static AttackCtx make_ctx(const AttackParams *p, int targeted, uint64_t seed) {
    AttackCtx c = {.net = &net, .K = NK, .D = DIM, .targeted = targeted, .params = p, .seed = seed, .ids = IDS};
    return c;
}

// runs attack `name` with preset and "name=value" overrides; returns 0 on success
static int run(const char *name, Preset preset, const char *ov, int targeted, uint64_t seed, float *adv) {
    const AttackDef *def = attack_find(name);
    if (!def) return -1;
    AttackParams p;
    attack_params_init(&p, def, preset);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", ov);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        if (attack_params_set_text(&p, def, tok, eq + 1)) return -1;
    }
    AttackCtx c = make_ctx(&p, targeted, seed);
    Err e;
    return def->run(&c, X, Y, targeted ? T : NULL, N, adv, &e);
}

static void predict(const float *x, int n, int *pred) {
    float z[N * NK];
    net_forward(&net, x, n, z, NULL);
    for (int i = 0; i < n; i++) pred[i] = logits_argmax(z + i * NK, NK);
}

static int n_correct(const float *x) {
    int pred[N], c = 0;
    predict(x, N, pred);
    for (int i = 0; i < N; i++) c += pred[i] == Y[i];
    return c;
}

// in the ball (norm 0: Linf, 1: L2) and the box; unfooled points exactly clean
static void check_result(const char *what, const float *adv, int norm, double eps, int targeted) {
    int pred[N], ball = 1, box = 1, clean = 1, wrong_clean = 1;
    predict(adv, N, pred);
    for (int i = 0; i < N; i++) {
        const float *a = adv + i * DIM, *x = X + i * DIM;
        double l2 = 0, li = 0;
        for (int j = 0; j < DIM; j++) {
            double d = (double)a[j] - x[j];
            l2 += d * d, li = fmax(li, fabs(d));
            box &= a[j] >= 0.0f && a[j] <= 1.0f;
        }
        // float32 rounding of x +- eps: up to an ulp of values in [0, 1]
        ball &= norm == 0 ? li <= eps * (1 + 1e-6) + 1.2e-7 : sqrt(l2) <= eps * (1 + 1e-5);
        int fooled = targeted ? pred[i] == T[i] : pred[i] != Y[i];
        if (!fooled) clean &= !memcmp(a, x, sizeof(float) * DIM);
        if (i >= N - 2 && !targeted) wrong_clean &= !memcmp(a, x, sizeof(float) * DIM);
    }
    CHECK(ball, "%s: inside the %s ball of radius %g", what, norm ? "L2" : "Linf", eps);
    CHECK(box, "%s: inside [0, 1]", what);
    CHECK(clean, "%s: the points it did not fool come back clean", what);
    CHECK(wrong_clean, "%s: points misclassified from the start come back unchanged", what);
}

// the same examples with 1 and 2 threads, and from a sub-batch; another seed differs
static void check_determinism(const char *name, const char *ov, int targeted) {
    float *a1 = malloc(sizeof(float) * N * DIM), *a2 = malloc(sizeof(float) * N * DIM);
    parallel_set_threads(1);
    int ok = run(name, PRESET_TORCHATTACKS, ov, targeted, 5, a1) == 0;
    parallel_set_threads(2);
    ok &= run(name, PRESET_TORCHATTACKS, ov, targeted, 5, a2) == 0;
    CHECK(ok && !memcmp(a1, a2, sizeof(float) * N * DIM), "%s: 1 and 2 threads give identical examples", name);
    ok &= run(name, PRESET_TORCHATTACKS, ov, targeted, 5, a2) == 0;
    CHECK(ok && !memcmp(a1, a2, sizeof(float) * N * DIM), "%s: the same seed gives the same examples", name);
    // samples 4..15 alone, keeping their ids: the same examples
    const AttackDef *def = attack_find(name);
    AttackParams p;
    attack_params_init(&p, def, PRESET_TORCHATTACKS);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", ov);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        attack_params_set_text(&p, def, tok, eq + 1);
    }
    AttackCtx c = make_ctx(&p, targeted, 5);
    c.ids = IDS + 4;
    Err e;
    ok &= def->run(&c, X + 4 * DIM, Y + 4, targeted ? T + 4 : NULL, 12, a2, &e) == 0;
    CHECK(ok && !memcmp(a1 + 4 * DIM, a2, sizeof(float) * 12 * DIM),
          "%s: a sample's result does not depend on its batch", name);
    ok &= run(name, PRESET_TORCHATTACKS, ov, targeted, 6, a2) == 0;
    CHECK(ok && memcmp(a1, a2, sizeof(float) * N * DIM) != 0, "%s: another seed gives other examples", name);
    free(a1), free(a2);
}

static void test_apgd(void) {
    float *adv = malloc(sizeof(float) * N * DIM);
    const char *ovs[4] = {"norm=Linf,loss=ce", "norm=Linf,loss=dlr", "norm=L2,loss=ce,eps=0.3",
                          "norm=L2,loss=dlr,eps=0.3"};
    for (int v = 0; v < 4; v++) {
        char what[64];
        snprintf(what, sizeof(what), "APGD %s", ovs[v]);
        CHECK(run("APGD", PRESET_TORCHATTACKS, ovs[v], 0, 1, adv) == 0, "%s runs", what);
        check_result(what, adv, v >= 2, v >= 2 ? 0.3 : 8.0 / 255, 0);
        CHECK(n_correct(adv) < n_correct(X), "%s fools some points (%d -> %d correct)", what, n_correct(X),
              n_correct(adv));
    }
    CHECK(!attack_find("APGD")->targeted_ok && !attack_find("APGDT")->targeted_ok &&
              !attack_find("AutoAttack")->targeted_ok,
          "APGD, APGD-T and AutoAttack have no targeted mode (as in torchattacks)");

    // the best loss rises with the number of steps, for CE and DLR, Linf and L2 (small
    // radius, so that few points flip and the loss has room to grow)
    for (int v = 0; v < 4; v++) {
        ApgdConfig cfg = {v >= 2 ? APGD_NORM_L2 : APGD_NORM_LINF, v >= 2 ? 0.05 : 0.5 / 255, 1, 1, 0.75,
                          v & 1 ? APGD_LOSS_DLR : APGD_LOSS_CE};
        AttackParams p = {0};
        AttackCtx c = make_ctx(&p, 0, 3);
        unsigned char acc[N];
        float lb[N];
        double prev = -INFINITY;
        int rising = 1;
        Err e;
        for (int steps = 1; steps <= 40; steps *= 3) {
            cfg.steps = steps;
            if (apgd_single_run(&c, &cfg, X, Y, NULL, N - 2, 7, acc, adv, lb, 0, 1, &e)) rising = 0;
            double s = 0;
            for (int i = 0; i < N - 2; i++) s += lb[i];
            rising &= s / (N - 2) > prev;
            prev = s / (N - 2);
        }
        CHECK(rising, "APGD (%s, %s): the best loss rises with the number of steps", v >= 2 ? "L2" : "Linf",
              v & 1 ? "DLR" : "CE");
    }
    check_determinism("APGD", "", 0);
    check_determinism("APGD", "norm=L2,eps=0.3,loss=dlr,n_restarts=2", 0);
    free(adv);
}

static void test_apgdt(void) {
    float *adv = malloc(sizeof(float) * N * DIM);
    CHECK(run("APGDT", PRESET_TORCHATTACKS, "eps=4/255", 0, 1, adv) == 0, "APGDT runs");
    check_result("APGDT", adv, 0, 4.0 / 255, 0);
    int c0 = n_correct(X), c1 = n_correct(adv);
    CHECK(c1 < c0, "APGDT fools some points (%d -> %d correct)", c0, c1);
    CHECK(run("APGDT", PRESET_TORCHATTACKS, "norm=L2,eps=0.2", 0, 1, adv) == 0, "APGDT L2 runs");
    check_result("APGDT L2", adv, 1, 0.2, 0);
    CHECK(run("APGDT", PRESET_TORCHATTACKS, "n_target_classes=10", 0, 1, adv) != 0,
          "APGDT refuses more target classes than the model has");
    // one targeted-DLR run towards the 3rd-ranked class: it drives the target's logit
    // above the true class's (the loss is -(z_y - z_t) / ...), and fools most points
    ApgdConfig cfg = {APGD_NORM_LINF, 16.0 / 255, 20, 1, 0.75, APGD_LOSS_DLR_TARGETED};
    AttackParams p = {0};
    AttackCtx c = make_ctx(&p, 0, 3);
    float z[N * NK], za[N * NK];
    int yt[N];
    net_forward(&net, X, N, z, NULL);
    for (int i = 0; i < N; i++) {
        int top[3] = {-1, -1, -1};
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < NK; k++)
                if (k != top[0] && k != top[1] && (top[r] < 0 || z[i * NK + k] > z[i * NK + top[r]])) top[r] = k;
        yt[i] = top[2];
    }
    unsigned char acc[N];
    Err e;
    CHECK(apgd_single_run(&c, &cfg, X, Y, yt, N - 2, 9, acc, adv, NULL, 0, 1, &e) == 0, "targeted DLR run");
    net_forward(&net, adv, N - 2, za, NULL);
    int fooled = 0, above = 0;
    for (int i = 0; i < N - 2; i++) {
        fooled += !acc[i];
        above += za[i * NK + yt[i]] > za[i * NK + Y[i]] && z[i * NK + yt[i]] < z[i * NK + Y[i]];
    }
    CHECK(2 * fooled > N - 2 && 2 * above > N - 2,
          "targeted DLR: most points fooled (%d of %d), the target's logit overtakes the true class's (%d)", fooled,
          N - 2, above);
    check_determinism("APGDT", "n_target_classes=3,steps=5", 0);
    free(adv);
}

static void test_square(void) {
    float *adv = malloc(sizeof(float) * N * DIM), *a2 = malloc(sizeof(float) * N * DIM);
    const char *ovs[4] = {"n_queries=200", "n_queries=200,loss=ce", "norm=L2,eps=0.5,n_queries=200",
                          "norm=L2,eps=0.5,n_queries=200,loss=ce"};
    for (int v = 0; v < 4; v++) {
        char what[64];
        snprintf(what, sizeof(what), "Square %s", ovs[v]);
        uint64_t b0 = net.n_backward;
        CHECK(run("Square", PRESET_TORCHATTACKS, ovs[v], 0, 1, adv) == 0, "%s runs", what);
        CHECK(net.n_backward == b0, "%s uses forward passes only", what);
        check_result(what, adv, v >= 2, v >= 2 ? 0.5 : 8.0 / 255, 0);
    }
    // more queries find more: without the rescaled schedule the first 30 queries of a
    // 300-query run are those of a 30-query run, so what 30 fool, 300 fool too
    const char *q[2][2] = {{"eps=2/255,resc_schedule=0,n_queries=30", "eps=2/255,resc_schedule=0,n_queries=300"},
                           {"norm=L2,eps=0.5,resc_schedule=0,n_queries=30",
                            "norm=L2,eps=0.5,resc_schedule=0,n_queries=300"}};
    for (int v = 0; v < 2; v++) {
        int p1[N], p2[N], nested = 1, f1 = 0, f2 = 0;
        run("Square", PRESET_TORCHATTACKS, q[v][0], 0, 1, adv);
        run("Square", PRESET_TORCHATTACKS, q[v][1], 0, 1, a2);
        predict(adv, N, p1), predict(a2, N, p2);
        for (int i = 0; i < N - 2; i++) {
            f1 += p1[i] != Y[i], f2 += p2[i] != Y[i];
            nested &= p1[i] == Y[i] || p2[i] != Y[i];
        }
        CHECK(nested && f2 > f1, "Square %s: 300 queries fool a superset of what 30 fool (%d -> %d)",
              v ? "L2" : "Linf", f1, f2);
    }
    // targeted: on this easy model most points reach their target
    CHECK(run("Square", PRESET_TORCHATTACKS, "eps=24/255,n_queries=300", 1, 1, adv) == 0, "targeted Square runs");
    check_result("targeted Square", adv, 0, 24.0 / 255, 1);
    int pred[N], hits = 0;
    predict(adv, N, pred);
    for (int i = 0; i < N; i++) hits += pred[i] == T[i];
    CHECK(2 * hits > N, "targeted Square hits its targets more often than not (%d of %d)", hits, N);
    // a candidate equal to its current best point is not evaluated: the same examples
    // as evaluating every candidate, with fewer forward passes (the 1-pixel squares late
    // in the schedule repeat x_best often)
    const char *rep[3] = {"n_queries=300", "n_queries=300,loss=ce", "norm=L2,eps=0.5,n_queries=100"};
    for (int v = 0; v < 3; v++) {
        square_eval_repeats = 1;
        uint64_t f0 = net.n_forward;
        int ok = run("Square", PRESET_TORCHATTACKS, rep[v], v == 1, 1, adv) == 0;
        uint64_t all = net.n_forward - f0;
        square_eval_repeats = 0;
        f0 = net.n_forward;
        ok &= run("Square", PRESET_TORCHATTACKS, rep[v], v == 1, 1, a2) == 0;
        uint64_t skip = net.n_forward - f0;
        CHECK(ok && !memcmp(adv, a2, sizeof(float) * N * DIM) && (v == 2 ? skip <= all : skip < all),
              "Square %s%s: skipping repeated candidates gives the same examples (%llu forward passes, %llu when "
              "every candidate is evaluated)",
              rep[v], v == 1 ? " targeted" : "", (unsigned long long)skip, (unsigned long long)all);
    }
    if (!sanitized) { // determinism is checked at full speed; the sanitizers look at memory
        check_determinism("Square", "n_queries=50", 0);
        check_determinism("Square", "norm=L2,eps=1,n_queries=100,n_restarts=2", 1);
    }
    free(adv), free(a2);
}

// the marginal loss SPSA minimises and its gradient (untargeted: z_y - max_{k!=y} z_k)
static double margin_cb(void *ctx, int i, const float *z, float *dz) {
    const int *y = ctx;
    int o = y[i] == 0 ? 1 : 0;
    for (int k = 0; k < NK; k++)
        if (k != y[i] && z[k] > z[o]) o = k;
    for (int k = 0; k < NK; k++) dz[k] = 0;
    dz[y[i]] = 1, dz[o] = -1;
    return z[y[i]] - z[o];
}

static void test_spsa(void) {
    float *adv = malloc(sizeof(float) * N * DIM), *g = malloc(sizeof(float) * N * DIM);
    uint64_t b0 = net.n_backward;
    CHECK(run("SPSA", PRESET_BEARD, "", 0, 1, adv) == 0, "SPSA runs");
    CHECK(net.n_backward == b0, "SPSA uses forward passes only");
    int box = 1, ball = 1;
    for (int j = 0; j < N * DIM; j++) {
        box &= adv[j] >= 0.0f && adv[j] <= 1.0f;
        ball &= fabsf(adv[j] - X[j]) <= 8.0f / 255 * (1 + 1e-6f) + 1.2e-7f;
    }
    CHECK(ball && box, "SPSA: inside the Linf ball and [0, 1]");
    // one Adam step moves by about lr against the sign of the estimated gradient; with
    // many probes the estimate agrees with the true gradient of the margin
    CHECK(run("SPSA", PRESET_BEARD, "nb_sample=1024,max_batch_size=100", 0, 1, adv) == 0, "SPSA with 1024 probes");
    AttackParams p = {0};
    AttackCtx c = make_ctx(&p, 0, 0);
    Err e;
    attack_gradient(&c, X, N, margin_cb, Y, NULL, g, NULL, &e);
    long agree = 0, moved = 0;
    for (int j = 0; j < N * DIM; j++) {
        float d = adv[j] - X[j];
        if (d == 0 || g[j] == 0) continue;
        moved++;
        agree += (d < 0) == (g[j] > 0);
    }
    CHECK(moved > N * DIM / 2 && agree > 0.65 * moved, "SPSA: step against the true gradient in %ld of %ld values",
          agree, moved);
    // iterated, targeted: the margin towards the target shrinks
    CHECK(run("SPSA", PRESET_BEARD, "eps=16/255,nb_iter=10,lr=0.005", 1, 1, adv) == 0, "targeted SPSA runs");
    float z0[N * NK], z1[N * NK];
    net_forward(&net, X, N, z0, NULL);
    net_forward(&net, adv, N, z1, NULL);
    double m0 = 0, m1 = 0;
    for (int i = 0; i < N; i++) {
        float o0 = -INFINITY, o1 = -INFINITY;
        for (int k = 0; k < NK; k++)
            if (k != T[i]) o0 = fmaxf(o0, z0[i * NK + k]), o1 = fmaxf(o1, z1[i * NK + k]);
        m0 += o0 - z0[i * NK + T[i]], m1 += o1 - z1[i * NK + T[i]];
    }
    CHECK(m1 < m0, "targeted SPSA shrinks the margin to the target (%.3f -> %.3f)", m0 / N, m1 / N);
    if (!sanitized) { // determinism is checked at full speed; the sanitizers look at memory
        check_determinism("SPSA", "nb_sample=16", 0);
    }
    free(adv), free(g);
}

static void test_autoattack(void) {
    float *adv = malloc(sizeof(float) * N * DIM), *a2 = malloc(sizeof(float) * N * DIM);
    // a small radius, so that some points survive APGD and reach the later attacks
    const char *ov = "eps=0.5/255,n_queries=100";
    CHECK(run("AutoAttack", PRESET_TORCHATTACKS, ov, 0, 1, adv) == 0, "AutoAttack runs");
    check_result("AutoAttack", adv, 0, 0.5 / 255, 0);
    CHECK(run("APGD", PRESET_TORCHATTACKS, "eps=0.5/255", 0, 1, a2) == 0, "APGD runs");
    int c_aa = n_correct(adv), c_apgd = n_correct(a2);
    CHECK(c_aa <= c_apgd, "AutoAttack is at least as strong as its APGD-CE (%d vs %d correct)", c_aa, c_apgd);
    CHECK(run("AutoAttack", PRESET_FRA31, "eps=0.5/255,n_queries=100,steps=10", 0, 1, a2) == 0,
          "AutoAttack (fra31) runs");
    check_result("AutoAttack (fra31)", a2, 0, 0.5 / 255, 0);
    CHECK(run("AutoAttack", PRESET_TORCHATTACKS, "norm=L2,eps=0.05,n_queries=100", 0, 1, adv) == 0,
          "AutoAttack L2 runs");
    check_result("AutoAttack L2", adv, 1, 0.05, 0);
    if (!sanitized) { // determinism is checked at full speed; the sanitizers look at memory
        check_determinism("AutoAttack", "eps=0.5/255,n_queries=30,steps=3,n_classes=4", 0);
    }
    free(adv), free(a2);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    sanitized = getenv("BEARD_SANITIZED") != NULL;
    setup();
    test_apgd();
    test_apgdt();
    test_square();
    test_spsa();
    test_autoattack();
    net_free(&net);
    return test_done("test_attacks_aa");
}
