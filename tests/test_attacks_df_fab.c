/*
 * test_attacks_df_fab.c: the defining properties of DeepFool (arXiv:1511.04599) and FAB
 * (arXiv:1907.02044) on tiny randomly initialised models and random inputs (no
 * ../shared needed; runs in seconds).
 *
 * DeepFool: on a linear classifier one step lands exactly (1 + overshoot) times the
 * closed-form distance to the nearest class boundary away, along w_l - w_y; on a small
 * ConvNet it fools almost every sample, keeps the [0, 1] box, leaves misclassified
 * samples alone, and gives the same output for any thread count and batch split.
 * FAB: its three projections (Linf, L2, L1) return the minimal-norm point of the
 * hyperplane within the box, checked against independent solvers in double precision;
 * the attack returns either the clean input or a misclassified point within eps; more
 * steps never give a larger distance; inputs outside the box (BEARD's normalised data)
 * come back unchanged because every adversarial point found lies beyond eps; restarts
 * are reproducible from the seed and independent of the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/fab.h"
#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "harness.h"

extern const AttackDef attack_deepfool;

// ----------------------------------------------------------------------------
// helpers

static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 7);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(&r);
}

static int tiny_convnet(Net *net, int K) {
    ConvNetConfig cfg;
    Err e;
    if (convnet_config_for("ConvNet", &cfg)) return -1;
    cfg.width = 8;
    cfg.depth = 2;
    if (convnet_build(net, &cfg, 3, K, 16, 16, &e)) {
        fprintf(stderr, "convnet_build: %s\n", e.msg);
        return -1;
    }
    net_init_params(net, 11);
    return 0;
}

static int linear_net(Net *net, int in_c, int h, int w, int K) {
    Err e;
    net_begin(net, "Linear", in_c, h, w);
    if (net_add_linear(net, "fc", K, &e) || net_finish(net, &e)) {
        fprintf(stderr, "linear net: %s\n", e.msg);
        return -1;
    }
    net_init_params(net, 5);
    return 0;
}

typedef struct {
    const char *name;
    double value;
} Set;

// runs def on (x, y) with the torchattacks preset plus overrides; x_adv (B, D)
static int run_attack(const AttackDef *def, Net *net, const float *x, const int *y, int B, float *x_adv,
                      const Set *sets, uint64_t seed, int id0) {
    AttackParams p;
    attack_params_init(&p, def, PRESET_TORCHATTACKS);
    for (const Set *s = sets; s && s->name; s++)
        if (attack_params_set(&p, s->name, s->value)) {
            fprintf(stderr, "no parameter %s\n", s->name);
            return -1;
        }
    int *ids = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) ids[b] = id0 + b;
    AttackCtx ctx = {.net = net, .K = net->n_classes, .D = net_in_size(net), .params = &p, .seed = seed, .ids = ids};
    Err e;
    int rc = def->run(&ctx, x, y, NULL, B, x_adv, &e);
    if (rc) fprintf(stderr, "%s: %s\n", def->name, e.msg);
    free(ids);
    return rc;
}

static void predict(Net *net, const float *x, int B, int *pred) {
    AttackCtx ctx = {.net = net, .K = net->n_classes, .D = net_in_size(net)};
    Err e;
    if (attack_predict(&ctx, x, B, pred, &e)) fprintf(stderr, "predict: %s\n", e.msg);
}

static double dist(int norm, const float *a, const float *b, size_t D) {
    double s = 0.0;
    for (size_t i = 0; i < D; i++) {
        double v = fabs((double)a[i] - b[i]);
        if (norm == FAB_LINF) s = v > s ? v : s;
        else s += norm == FAB_L2 ? v * v : v;
    }
    return norm == FAB_L2 ? sqrt(s) : s;
}

static int in_box(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) return 0;
    return 1;
}

// ----------------------------------------------------------------------------
// DeepFool

// On a linear classifier z = W x + c a DeepFool step is exact: x moves along w_l - w_y
// by (1 + overshoot) |f_l| / ||w_l - w_y||, l the class of the nearest boundary.
static void test_deepfool_linear(void) {
    Net net;
    int K = 5, B = 12;
    if (linear_net(&net, 3, 4, 4, K)) {
        CHECK(0, "linear net");
        return;
    }
    size_t D = net_in_size(&net);
    const float *W = net.params + net.layers[0].w, *c = net.params + net.layers[0].b; // (K, D), (K)
    float *x = malloc(sizeof(float) * B * D), *adv = malloc(sizeof(float) * B * D);
    int y[12], pred[12];
    fill_uniform(x, B * D, 0.3f, 0.7f, 1);
    predict(&net, x, B, y);
    Set sets[] = {{"overshoot", 0.02}, {NULL, 0}};
    CHECK(run_attack(&attack_deepfool, &net, x, y, B, adv, sets, 0, 0) == 0, "DeepFool on a linear model");
    predict(&net, adv, B, pred);
    int exact = 0, fooled = 0, inside = 0;
    for (int b = 0; b < B; b++) {
        const float *xb = x + b * D, *ab = adv + b * D;
        double z[8], best = INFINITY;
        int l = -1;
        for (int k = 0; k < K; k++) {
            z[k] = c[k];
            for (size_t i = 0; i < D; i++) z[k] += (double)W[k * D + i] * xb[i];
        }
        for (int k = 0; k < K; k++) {
            if (k == y[b]) continue;
            double nn = 0;
            for (size_t i = 0; i < D; i++) nn += pow((double)W[k * D + i] - W[y[b] * D + i], 2);
            double v = fabs(z[k] - z[y[b]]) / sqrt(nn);
            if (v < best) best = v, l = k;
        }
        double moved = dist(FAB_L2, ab, xb, D), cosv = 0, nd = 0, nw = 0;
        for (size_t i = 0; i < D; i++) {
            double dv = (double)ab[i] - xb[i], wv = (double)W[l * D + i] - W[y[b] * D + i];
            cosv += dv * wv, nd += dv * dv, nw += wv * wv;
        }
        cosv /= sqrt(nd * nw) + 1e-300;
        inside += in_box(ab, D) && dist(FAB_LINF, ab, xb, D) < 0.29; // no clamp was involved
        exact += fabs(moved - 1.02 * best) <= 1e-4 * best && cosv > 0.99999;
        fooled += pred[b] != y[b];
    }
    CHECK(inside == B, "DeepFool (linear): %d of %d samples stayed clear of the box", inside, B);
    CHECK(exact == B, "DeepFool (linear): %d of %d steps are 1.02 x the distance to the nearest boundary", exact, B);
    CHECK(fooled == B, "DeepFool (linear): %d of %d samples fooled", fooled, B);
    free(x), free(adv);
    net_free(&net);
}

static void test_deepfool_convnet(void) {
    Net net;
    int K = 10, B = 24;
    if (tiny_convnet(&net, K)) {
        CHECK(0, "tiny ConvNet");
        return;
    }
    size_t D = net_in_size(&net);
    float *x = malloc(sizeof(float) * B * D), *adv = malloc(sizeof(float) * B * D);
    float *adv2 = malloc(sizeof(float) * B * D), *adv3 = malloc(sizeof(float) * B * D);
    int *y = malloc(sizeof(int) * B), *pred = malloc(sizeof(int) * B), *clean = malloc(sizeof(int) * B);
    fill_uniform(x, B * D, 0.0f, 1.0f, 2);
    predict(&net, x, B, clean);
    // the first four samples carry a wrong label: DeepFool must leave them alone
    for (int b = 0; b < B; b++) y[b] = b < 4 ? (clean[b] + 1) % K : clean[b];
    parallel_set_threads(1);
    CHECK(run_attack(&attack_deepfool, &net, x, y, B, adv, NULL, 0, 0) == 0, "DeepFool");
    parallel_set_threads(2);
    CHECK(run_attack(&attack_deepfool, &net, x, y, B, adv2, NULL, 0, 0) == 0, "DeepFool, 2 threads");
    CHECK(!memcmp(adv, adv2, sizeof(float) * B * D), "DeepFool: 1 and 2 threads differ");
    // the same samples split into two batches
    int h = B / 3;
    CHECK(run_attack(&attack_deepfool, &net, x, y, h, adv3, NULL, 0, 0) == 0 &&
              run_attack(&attack_deepfool, &net, x + h * D, y + h, B - h, adv3 + h * D, NULL, 0, h) == 0,
          "DeepFool, split batch");
    CHECK(!memcmp(adv, adv3, sizeof(float) * B * D), "DeepFool: the batch split changes the output");
    predict(&net, adv, B, pred);
    int untouched = 1, fooled = 0;
    for (int b = 0; b < 4; b++) untouched &= !memcmp(adv + b * D, x + b * D, sizeof(float) * D);
    for (int b = 4; b < B; b++) fooled += pred[b] != y[b];
    CHECK(untouched, "DeepFool changed samples that were misclassified from the start");
    CHECK(fooled >= (B - 4) * 9 / 10, "DeepFool fooled only %d of %d samples", fooled, B - 4);
    CHECK(in_box(adv, B * D), "DeepFool left the [0, 1] box");
    // no steps: no change
    Set zero[] = {{"steps", 0}, {NULL, 0}};
    CHECK(run_attack(&attack_deepfool, &net, x, y, B, adv2, zero, 0, 0) == 0 &&
              !memcmp(adv2, x, sizeof(float) * B * D),
          "DeepFool with steps 0 changed its input");
    // one step moves less than the full run and does not fool more
    Set one[] = {{"steps", 1}, {NULL, 0}};
    CHECK(run_attack(&attack_deepfool, &net, x, y, B, adv2, one, 0, 0) == 0, "DeepFool, 1 step");
    int *pred1 = malloc(sizeof(int) * B), fooled1 = 0;
    predict(&net, adv2, B, pred1);
    for (int b = 4; b < B; b++) fooled1 += pred1[b] != y[b];
    CHECK(fooled1 <= fooled, "DeepFool: 1 step fooled %d, 50 steps %d", fooled1, fooled);
    free(pred1);
    free(x), free(adv), free(adv2), free(adv3), free(y), free(pred), free(clean);
    net_free(&net);
}

// ----------------------------------------------------------------------------
// FAB's projections against independent solvers

// the smallest Linf radius lam with sum_i |w_i| min(lam, room_i) >= need (bisection)
static double linf_optimum(const double *room, const float *w, size_t D, double need) {
    double lo = 0, hi = 1;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi), s = 0;
        for (size_t i = 0; i < D; i++) s += fabs((double)w[i]) * fmin(mid, room[i]);
        if (s >= need) hi = mid;
        else lo = mid;
    }
    return hi;
}

static void test_fab_projections(void) {
    size_t Ds[] = {7, 64, 1000};
    int ok[3] = {0, 0, 0}, total = 0;
    for (int di = 0; di < 3; di++) {
        size_t D = Ds[di];
        float *t = malloc(sizeof(float) * D), *w = malloc(sizeof(float) * D), *d = malloc(sizeof(float) * D);
        float *u = malloc(sizeof(float) * D);
        double *room = malloc(sizeof(double) * D);
        for (int rep = 0; rep < 6; rep++) {
            Rng r;
            rng_init(&r, 100 + rep, D);
            for (size_t i = 0; i < D; i++) {
                t[i] = 0.05f + 0.9f * rng_uniform(&r);
                w[i] = (float)rng_normal(&r);
            }
            // a hyperplane the box reaches: w.(t + d) = b with the needed change in w.u
            // a fraction of what the box allows in that direction
            double wt = 0, reach = 0;
            int up = rep % 2 == 0;
            for (size_t i = 0; i < D; i++) {
                wt += (double)w[i] * t[i];
                room[i] = (w[i] > 0) == up ? 1.0 - t[i] : t[i]; // room in the helpful direction
                reach += fabs((double)w[i]) * room[i];
            }
            double need = (0.05 + 0.15 * rep) * reach;
            float b = (float)(up ? wt + need : wt - need);
            need = fabs((double)b - wt);
            for (int norm = 0; norm < 3; norm++) {
                total++;
                if (fab_project(norm, d, t, w, b, D)) continue;
                double wu = 0, scale = 0;
                for (size_t i = 0; i < D; i++) {
                    u[i] = t[i] + d[i];
                    wu += (double)w[i] * u[i];
                    scale += fabs((double)w[i] * u[i]);
                }
                int good = fabs(wu - b) <= 1e-4 * scale;
                for (size_t i = 0; i < D; i++) good &= u[i] >= -1e-6f && u[i] <= 1 + 1e-6f;
                if (norm == FAB_LINF) {
                    double lam = linf_optimum(room, w, D, need), got = dist(FAB_LINF, u, t, D);
                    good &= fabs(got - lam) <= 1e-4 * lam + 1e-6;
                } else if (norm == FAB_L2) {
                    // KKT: d_i = clip(mu w_i, -t_i, 1 - t_i), mu by bisection on w.d = b - w.t
                    double lo = -1e6, hi = 1e6, target = (double)b - wt;
                    for (int it = 0; it < 300; it++) {
                        double mu = 0.5 * (lo + hi), s = 0;
                        for (size_t i = 0; i < D; i++) s += w[i] * fmin(fmax(mu * w[i], -t[i]), 1.0 - t[i]);
                        if (s < target) lo = mu;
                        else hi = mu;
                    }
                    double mu = 0.5 * (lo + hi), err = 0, nrm = 0;
                    for (size_t i = 0; i < D; i++) {
                        double ref = fmin(fmax(mu * w[i], -t[i]), 1.0 - t[i]);
                        err = fmax(err, fabs(d[i] - ref));
                        nrm = fmax(nrm, fabs(ref));
                    }
                    good &= err <= 1e-4 * nrm + 1e-6;
                } else {
                    // L1: spend the change on the coordinates with the largest |w| first
                    int *ord = malloc(sizeof(int) * D);
                    for (size_t i = 0; i < D; i++) ord[i] = (int)i;
                    for (size_t i = 1; i < D; i++) // insertion sort by |w| descending
                        for (size_t j = i; j > 0 && fabs(w[ord[j]]) > fabs(w[ord[j - 1]]); j--) {
                            int tmp = ord[j];
                            ord[j] = ord[j - 1], ord[j - 1] = tmp;
                        }
                    double left = need, opt = 0;
                    for (size_t j = 0; j < D && left > 0; j++) {
                        int i = ord[j];
                        double take = fmin(room[i], left / fabs((double)w[i]));
                        opt += take, left -= take * fabs((double)w[i]);
                    }
                    free(ord);
                    double got = dist(FAB_L1, u, t, D);
                    good &= fabs(got - opt) <= 1e-4 * opt + 1e-6;
                }
                ok[norm] += good;
                if (!good) fprintf(stderr, "  projection norm %d, D %zu, rep %d: not optimal\n", norm, D, rep);
            }
        }
        free(t), free(w), free(d), free(u), free(room);
    }
    CHECK(ok[0] == total / 3, "FAB Linf projection: %d of %d optimal", ok[0], total / 3);
    CHECK(ok[1] == total / 3, "FAB L2 projection: %d of %d optimal", ok[1], total / 3);
    CHECK(ok[2] == total / 3, "FAB L1 projection: %d of %d optimal", ok[2], total / 3);
}

// ----------------------------------------------------------------------------
// FAB

// every output is either the clean input or misclassified within eps in the norm
static int fab_valid(Net *net, int norm, double eps, const float *x, const float *adv, const int *y, int B,
                     int *n_changed) {
    size_t D = net_in_size(net);
    int *pred = malloc(sizeof(int) * B), bad = 0;
    predict(net, adv, B, pred);
    *n_changed = 0;
    for (int b = 0; b < B; b++) {
        if (!memcmp(x + b * D, adv + b * D, sizeof(float) * D)) continue;
        ++*n_changed;
        if (pred[b] == y[b] || dist(norm, adv + b * D, x + b * D, D) > eps * (1 + 1e-6) || !in_box(adv + b * D, D))
            bad++;
    }
    free(pred);
    return bad == 0;
}

static void test_fab(void) {
    Net net;
    int K = 10, B = 20;
    if (tiny_convnet(&net, K)) {
        CHECK(0, "tiny ConvNet");
        return;
    }
    size_t D = net_in_size(&net);
    float *x = malloc(sizeof(float) * B * D), *adv = malloc(sizeof(float) * B * D);
    float *adv2 = malloc(sizeof(float) * B * D), *adv3 = malloc(sizeof(float) * B * D);
    int *y = malloc(sizeof(int) * B), changed, changed2;
    fill_uniform(x, B * D, 0.0f, 1.0f, 3);
    predict(&net, x, B, y);
    y[0] = (y[0] + 1) % K; // misclassified from the start: must come back unchanged
    const AttackDef *fab = &attack_fab;
    const char *names[] = {"Linf", "L2", "L1"};
    double big[] = {1.0, 20.0, 400.0};
    for (int norm = 0; norm < 3; norm++) {
        Set sets[] = {{"norm", norm}, {"eps", big[norm]}, {NULL, 0}};
        CHECK(run_attack(fab, &net, x, y, B, adv, sets, 0, 0) == 0, "FAB %s", names[norm]);
        CHECK(fab_valid(&net, norm, big[norm], x, adv, y, B, &changed), "FAB %s: invalid output", names[norm]);
        CHECK(!memcmp(adv, x, sizeof(float) * D), "FAB %s changed a misclassified sample", names[norm]);
        CHECK(changed >= (B - 1) * 8 / 10, "FAB %s broke only %d of %d samples", names[norm], changed, B - 1);
    }
    // Linf: more steps never give a larger distance (the first steps are the same)
    Set s5[] = {{"eps", 1.0}, {"steps", 5}, {NULL, 0}}, s20[] = {{"eps", 1.0}, {"steps", 20}, {NULL, 0}};
    CHECK(run_attack(fab, &net, x, y, B, adv, s5, 0, 0) == 0 && run_attack(fab, &net, x, y, B, adv2, s20, 0, 0) == 0,
          "FAB 5 and 20 steps");
    int worse = 0, lost = 0;
    for (int b = 1; b < B; b++) {
        int c5 = memcmp(adv + b * D, x + b * D, sizeof(float) * D) != 0;
        int c20 = memcmp(adv2 + b * D, x + b * D, sizeof(float) * D) != 0;
        if (c5 && !c20) lost++;
        if (c5 && c20 && dist(FAB_LINF, adv2 + b * D, x + b * D, D) > dist(FAB_LINF, adv + b * D, x + b * D, D)) worse++;
    }
    CHECK(lost == 0 && worse == 0, "FAB: 20 steps lost %d and worsened %d of the 5-step results", lost, worse);
    // a tight eps rejects far points: fewer samples change, all within eps
    Set tight[] = {{"eps", 0.01}, {NULL, 0}};
    CHECK(run_attack(fab, &net, x, y, B, adv3, tight, 0, 0) == 0, "FAB, eps 0.01");
    CHECK(fab_valid(&net, FAB_LINF, 0.01, x, adv3, y, B, &changed2), "FAB eps 0.01: invalid output");
    // BEARD's normalised inputs lie outside [0, 1]: the clamp moves every point found far
    // beyond eps, so nothing changes (torchattacks' FAB leaves the clean accuracy)
    float *xn = malloc(sizeof(float) * B * D);
    int *yn = malloc(sizeof(int) * B);
    fill_uniform(xn, B * D, -2.0f, 2.5f, 4);
    predict(&net, xn, B, yn);
    Set beard[] = {{"eps", 8.0 / 255}, {NULL, 0}};
    CHECK(run_attack(fab, &net, xn, yn, B, adv3, beard, 0, 0) == 0 && !memcmp(adv3, xn, sizeof(float) * B * D),
          "FAB changed inputs outside the box (expected: unchanged, as torchattacks)");
    Set beard_big[] = {{"eps", 10.0}, {NULL, 0}};
    CHECK(run_attack(fab, &net, xn, yn, B, adv3, beard_big, 0, 0) == 0 &&
              fab_valid(&net, FAB_LINF, 10.0, xn, adv3, yn, B, &changed) && changed > B / 2,
          "FAB with a huge eps should break the out-of-box inputs (%d of %d)", changed, B);
    // multi-targeted and restarts: valid, same seed => same output, any thread count
    Set mt[] = {{"eps", 0.3}, {"multi_targeted", 1}, {"n_restarts", 2}, {"steps", 6}, {NULL, 0}};
    parallel_set_threads(1);
    CHECK(run_attack(fab, &net, x, y, B, adv, mt, 7, 0) == 0, "FAB multi-targeted");
    parallel_set_threads(2);
    CHECK(run_attack(fab, &net, x, y, B, adv2, mt, 7, 0) == 0, "FAB multi-targeted, 2 threads");
    CHECK(!memcmp(adv, adv2, sizeof(float) * B * D), "FAB: 1 and 2 threads differ");
    CHECK(fab_valid(&net, FAB_LINF, 0.3, x, adv, y, B, &changed), "FAB multi-targeted: invalid output");
    CHECK(changed >= (B - 1) / 2, "FAB multi-targeted broke only %d of %d", changed, B - 1);
    int h = B / 2;
    CHECK(run_attack(fab, &net, x, y, h, adv3, mt, 7, 0) == 0 &&
              run_attack(fab, &net, x + h * D, y + h, B - h, adv3 + h * D, mt, 7, h) == 0,
          "FAB multi-targeted, split batch");
    CHECK(!memcmp(adv, adv3, sizeof(float) * B * D), "FAB: the batch split changes the output");
    // restarts with a random start: the seed matters, and a run with restarts is at least
    // as strong per sample as one without (the first run is the same)
    Set r1[] = {{"eps", 0.05}, {"steps", 6}, {NULL, 0}}, r3[] = {{"eps", 0.05}, {"steps", 6}, {"n_restarts", 3}, {NULL, 0}};
    CHECK(run_attack(fab, &net, x, y, B, adv, r1, 0, 0) == 0 && run_attack(fab, &net, x, y, B, adv2, r3, 0, 0) == 0 &&
              run_attack(fab, &net, x, y, B, adv3, r3, 1, 0) == 0,
          "FAB restarts");
    int kept = 1;
    for (int b = 0; b < B; b++)
        if (memcmp(adv + b * D, x + b * D, sizeof(float) * D)) kept &= !memcmp(adv + b * D, adv2 + b * D, sizeof(float) * D);
    CHECK(kept, "FAB: restarts changed a sample the first run already broke");
    CHECK(fab_valid(&net, FAB_LINF, 0.05, x, adv2, y, B, &changed) && fab_valid(&net, FAB_LINF, 0.05, x, adv3, y, B, &changed2),
          "FAB restarts: invalid output");
    free(x), free(adv), free(adv2), free(adv3), free(y), free(xn), free(yn);
    net_free(&net);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    parallel_set_threads(2);
    test_deepfool_linear();
    test_deepfool_convnet();
    test_fab_projections();
    test_fab();
    return test_done("test_attacks_df_fab");
}
