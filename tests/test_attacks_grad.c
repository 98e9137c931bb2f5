/*
 * test_attacks_grad.c: the gradient attacks BIM, MI-FGSM, TPGD, PGD-L2 and C&W-L2 on a
 * tiny randomly initialised ConvNet (3x8x8 inputs, width 8), so it runs in seconds and
 * needs no ../shared. Each attack is checked for its defining properties:
 *   - the perturbation stays in its ball (Linf or L2) and the result in the [0, 1] box;
 *   - the loss it ascends grows over its steps (CE, or KL for TPGD), and the targeted
 *     forms hit their targets more often than not;
 *   - C&W returns only misclassified (or target-hitting) examples, and the input itself
 *     when it finds none;
 *   - torchattacks' particular rules: BIM's clamp sequence on inputs outside [0, 1],
 *     MI-FGSM without momentum equals PGD bit for bit, PGD-L2's projection;
 *   - the same seed gives the same output, 1 and 2 threads give the same output, and a
 *     random start does not depend on how the samples are split into batches.
 * Fidelity against torchattacks on real data is test_attack_fidelity's job.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/attack.h"
#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "harness.h"

enum { B = 12, K = 10, C = 3, H = 8, W = 8 };
#define NX ((size_t)C * H * W)

static Net g_net;
static float g_x[B * C * H * W]; // random inputs in [0, 1]
static int g_y[B], g_t[B];       // clean predictions (so every sample starts correct), targets

static const AttackDef *find(const char *name) {
    const AttackDef *d = attack_find(name);
    CHECK(d != NULL, "attack %s is not registered", name);
    return d;
}

// runs `name` with the torchattacks preset plus overrides "a=v,b=v"; ids may be NULL
static int run(const char *name, const char *overrides, const float *x, const int *y, const int *t, int n,
               int targeted, uint64_t seed, const int *ids, float *out) {
    const AttackDef *def = find(name);
    if (!def) return -1;
    AttackParams p;
    attack_params_init(&p, def, PRESET_TORCHATTACKS);
    char ov[256];
    snprintf(ov, sizeof(ov), "%s", overrides);
    for (char *tok = strtok(ov, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        int rc = attack_params_set_text(&p, def, tok, eq + 1);
        CHECK(rc == 0, "%s: bad override %s", name, tok);
    }
    AttackCtx ctx = {.net = &g_net, .K = K, .D = NX, .targeted = targeted, .params = &p, .seed = seed, .ids = ids,
                     .n_classes_cap = K};
    Err e;
    int rc = def->run(&ctx, x, y, t, n, out, &e);
    CHECK(rc == 0, "%s failed: %s", name, rc ? e.msg : "");
    return rc;
}

static void predict(const float *x, int n, int *pred) {
    float z[B * K];
    Err e;
    CHECK(net_forward(&g_net, x, n, z, &e) == 0, "forward");
    for (int b = 0; b < n; b++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[b * K + k] > z[b * K + best]) best = k;
        pred[b] = best;
    }
}

// sum over the batch of CE(f(x_b), labels_b), in double
static double ce_sum(const float *x, const int *labels) {
    float z[B * K];
    Err e;
    net_forward(&g_net, x, B, z, &e);
    double s = 0;
    for (int b = 0; b < B; b++) {
        double mx = -INFINITY, se = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, z[b * K + k]);
        for (int k = 0; k < K; k++) se += exp(z[b * K + k] - mx);
        s += mx + log(se) - z[b * K + labels[b]];
    }
    return s;
}

// sum over the batch of KL(softmax f(x) || softmax f(x_adv)), in double
static double kl_sum(const float *x, const float *xa) {
    float z0[B * K], z1[B * K];
    Err e;
    net_forward(&g_net, x, B, z0, &e);
    net_forward(&g_net, xa, B, z1, &e);
    double s = 0;
    for (int b = 0; b < B; b++) {
        double lp[K], lq[K], m0 = -INFINITY, m1 = -INFINITY, s0 = 0, s1 = 0;
        for (int k = 0; k < K; k++) m0 = fmax(m0, z0[b * K + k]), m1 = fmax(m1, z1[b * K + k]);
        for (int k = 0; k < K; k++) s0 += exp(z0[b * K + k] - m0), s1 += exp(z1[b * K + k] - m1);
        for (int k = 0; k < K; k++) lp[k] = z0[b * K + k] - m0 - log(s0), lq[k] = z1[b * K + k] - m1 - log(s1);
        for (int k = 0; k < K; k++) s += exp(lp[k]) * (lp[k] - lq[k]);
    }
    return s;
}

static void check_ball(const char *what, const float *x, const float *xa, int linf, double eps) {
    double worst = 0, lo = 0, hi = 1;
    for (int b = 0; b < B; b++) {
        double l2 = 0;
        for (size_t j = 0; j < NX; j++) {
            double d = (double)xa[b * NX + j] - x[b * NX + j];
            l2 += d * d;
            if (linf) worst = fmax(worst, fabs(d));
            lo = fmin(lo, xa[b * NX + j]);
            hi = fmax(hi, xa[b * NX + j]);
        }
        if (!linf) worst = fmax(worst, sqrt(l2));
    }
    CHECK(worst <= eps * (1 + 1e-5) + 1e-7, "%s: perturbation %s %.8g exceeds eps %.8g", what, linf ? "Linf" : "L2",
          worst, eps);
    CHECK(worst > 0.5 * eps, "%s: perturbation %.8g is far inside the eps-ball (%.8g): did it move?", what, worst, eps);
    CHECK(lo >= 0 && hi <= 1, "%s: values leave the [0, 1] box: [%g, %g]", what, lo, hi);
}

static int count_equal(const int *a, const int *b) {
    int n = 0;
    for (int i = 0; i < B; i++) n += a[i] == b[i];
    return n;
}

// ----------------------------------------------------------------------------

static void test_linf_attacks(void) {
    static float a1[B * NX], a10[B * NX];
    const char *names[] = {"BIM", "MIFGSM", "TPGD"};
    for (int i = 0; i < 3; i++) {
        const char *nm = names[i];
        if (run(nm, "steps=1", g_x, g_y, NULL, B, 0, 0, NULL, a1) || run(nm, "", g_x, g_y, NULL, B, 0, 0, NULL, a10))
            continue;
        check_ball(nm, g_x, a10, 1, 8.0 / 255);
        if (i < 2) {
            double l0 = ce_sum(g_x, g_y), l1 = ce_sum(a1, g_y), l10 = ce_sum(a10, g_y);
            CHECK(l0 < l1 && l1 < l10, "%s: CE does not grow over the steps: %g -> %g (1 step) -> %g (10)", nm, l0, l1, l10);
        } else {
            double k1 = kl_sum(g_x, a1), k10 = kl_sum(g_x, a10);
            CHECK(k1 > 0 && k1 < k10, "TPGD: KL does not grow over the steps: %g (1 step) -> %g (10)", k1, k10);
        }
    }
    // targeted, with a budget large enough for the tiny model: descend CE to the target
    const char *tnames[] = {"BIM", "MIFGSM"};
    for (int i = 0; i < 2; i++) {
        if (run(tnames[i], "eps=0.5,alpha=0.05,steps=20", g_x, g_y, g_t, B, 1, 0, NULL, a10)) continue;
        int pred[B];
        predict(a10, B, pred);
        int hits = count_equal(pred, g_t);
        CHECK(hits > B / 2, "%s targeted: %d of %d hit their target", tnames[i], hits, B);
        CHECK(ce_sum(a10, g_t) < ce_sum(g_x, g_t), "%s targeted: CE to the target did not fall", tnames[i]);
    }
}

// BIM's own clamp sequence on inputs outside [0, 1] (beard semantics): x < -eps ends at
// x + eps, x > 1 + eps at 1, whatever the gradient; PGD would clamp both into [0, 1]
static void test_bim_clamps(void) {
    static float x[B * NX], xa[B * NX];
    memcpy(x, g_x, sizeof(x));
    for (int b = 0; b < B; b++)
        for (size_t j = 0; j < NX; j += 3) x[b * NX + j] = j % 2 ? -2.0f : 3.0f;
    if (run("BIM", "", x, g_y, NULL, B, 0, 0, NULL, xa)) return;
    float eps = (float)(8.0 / 255);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (size_t j = 0; j < NX; j += 3) {
            float want = j % 2 ? -2.0f + eps : 1.0f;
            bad += xa[b * NX + j] != want;
        }
    CHECK(bad == 0, "BIM: %d values outside [0, 1] do not follow torchattacks' clamp sequence", bad);
}

// without momentum MI-FGSM's step is sign(g / mean|g|) = sign(g): exactly PGD without a
// random start; with momentum it must differ
static void test_mifgsm_momentum(void) {
    static float a[B * NX], b[B * NX], c[B * NX];
    if (run("MIFGSM", "decay=0", g_x, g_y, NULL, B, 0, 0, NULL, a)) return;
    if (run("PGD", "alpha=2/255,random_start=0", g_x, g_y, NULL, B, 0, 0, NULL, b)) return;
    CHECK(!memcmp(a, b, sizeof(a)), "MIFGSM with decay 0 differs from PGD without random start");
    if (run("MIFGSM", "", g_x, g_y, NULL, B, 0, 0, NULL, c)) return;
    CHECK(memcmp(a, c, sizeof(a)) != 0, "MIFGSM: the momentum (decay 1) changes nothing");
}

static void test_pgdl2(void) {
    static float a1[B * NX], a10[B * NX];
    const char *modes[] = {"random_start=0", "random_start=1"};
    for (int m = 0; m < 2; m++) {
        char o1[64];
        snprintf(o1, sizeof(o1), "%s,steps=1", modes[m]);
        if (run("PGDL2", o1, g_x, g_y, NULL, B, 0, 0, NULL, a1) || run("PGDL2", modes[m], g_x, g_y, NULL, B, 0, 0, NULL, a10))
            continue;
        check_ball(modes[m], g_x, a10, 0, 1.0);
        double l0 = ce_sum(g_x, g_y), l1 = ce_sum(a1, g_y), l10 = ce_sum(a10, g_y);
        CHECK(l1 < l10 && (m || l0 < l1), "PGDL2 %s: CE does not grow: %g -> %g -> %g", modes[m], l0, l1, l10);
    }
    // BEARD's preset: eps 128/255 (a small ball: the projection is active)
    const AttackDef *def = find("pgd_l2");
    if (def) {
        AttackParams p;
        attack_params_init(&p, def, PRESET_BEARD);
        AttackCtx ctx = {.net = &g_net, .K = K, .D = NX, .params = &p};
        CHECK(fabs(attack_param(&ctx, "eps") - 128.0 / 255) < 1e-12 && attack_param_int(&ctx, "random_start") == 0,
              "PGDL2: BEARD preset");
        Err e;
        if (def->run(&ctx, g_x, g_y, NULL, B, a10, &e) == 0) check_ball("PGDL2 beard", g_x, a10, 0, 128.0 / 255);
    }
    if (run("PGDL2", "eps=3,alpha=0.5,steps=20,random_start=0", g_x, g_y, g_t, B, 1, 0, NULL, a10)) return;
    int pred[B];
    predict(a10, B, pred);
    int hits = count_equal(pred, g_t);
    CHECK(hits > B / 2, "PGDL2 targeted: %d of %d hit their target", hits, B);
}

static void test_cw(void) {
    static float a[B * NX];
    int pred[B];
    for (int targeted = 0; targeted < 2; targeted++) {
        if (run("CW", "c=5,steps=100,lr=0.05", g_x, g_y, g_t, B, targeted, 0, NULL, a)) continue;
        predict(a, B, pred);
        int found = 0, wrong = 0, lo = 0;
        for (int b = 0; b < B; b++) {
            int moved = memcmp(a + b * NX, g_x + b * NX, sizeof(float) * NX) != 0;
            int ok = targeted ? pred[b] == g_t[b] : pred[b] != g_y[b];
            found += moved;
            wrong += moved && !ok;
            for (size_t j = 0; j < NX; j++) lo += a[b * NX + j] < 0 || a[b * NX + j] > 1;
        }
        CHECK(wrong == 0, "CW %s: %d returned examples are not adversarial", targeted ? "targeted" : "untargeted", wrong);
        CHECK(found > B / 2, "CW %s: found only %d of %d", targeted ? "targeted" : "untargeted", found, B);
        CHECK(lo == 0, "CW: %d values outside [0, 1]", lo);
    }
    // with c = 0 nothing pulls towards misclassification: the input comes back unchanged
    if (run("CW", "c=0,steps=20", g_x, g_y, NULL, B, 0, 0, NULL, a) == 0)
        CHECK(!memcmp(a, g_x, sizeof(a)), "CW with c = 0 returned a changed input");
    // BEARD's preset: 100 steps, c 1, lr 0.01
    const AttackDef *def = find("cw");
    if (def) {
        AttackParams p;
        attack_params_init(&p, def, PRESET_BEARD);
        AttackCtx ctx = {.net = &g_net, .K = K, .D = NX, .params = &p};
        CHECK(attack_param_int(&ctx, "steps") == 100 && attack_param(&ctx, "lr") == 0.01, "CW: BEARD preset");
    }
}

// ----------------------------------------------------------------------------
// naive references in double precision, written from torchattacks' code, sharing only
// the network's input gradient with beard's attacks

static int ref_grad(const float *x, int n, NetLossFn loss, void *lctx, float *logits, float *grad) {
    AttackParams p = {0};
    AttackCtx ctx = {.net = &g_net, .K = K, .D = NX, .params = &p};
    Err e;
    int rc = attack_gradient(&ctx, x, n, loss, lctx, logits, grad, NULL, &e);
    CHECK(rc == 0, "reference gradient: %s", rc ? e.msg : "");
    return rc;
}

// MIFGSM (eps 8/255, alpha 2/255, 10 steps, decay 1): the returned fraction of values
// that differ from `got` by more than 1e-6
static double ref_mifgsm_mismatch(const float *got) {
    static float xa[B * NX], g[B * NX];
    static double m[B * NX];
    memcpy(xa, g_x, sizeof(xa));
    memset(m, 0, sizeof(m));
    double eps = 8.0 / 255, alpha = 2.0 / 255;
    AttackLossCtx lc = {g_y, K, 1.0f, 1.0f / B};
    for (int s = 0; s < 10; s++) {
        if (ref_grad(xa, B, attack_loss_ce, &lc, NULL, g)) return 1;
        for (int b = 0; b < B; b++) {
            double mean = 0;
            for (size_t j = 0; j < NX; j++) mean += fabs(g[b * NX + j]) / NX;
            for (size_t j = 0; j < NX; j++) {
                size_t i = b * NX + j;
                m[i] = g[i] / mean + m[i];
                double a = xa[i] + alpha * (m[i] > 0 ? 1 : m[i] < 0 ? -1 : 0);
                xa[i] = (float)fmin(fmax(g_x[i] + fmin(fmax(a - g_x[i], -eps), eps), 0), 1);
            }
        }
    }
    size_t bad = 0;
    for (size_t i = 0; i < B * NX; i++) bad += fabs(xa[i] - got[i]) > 1e-6;
    return (double)bad / (B * NX);
}

// PGDL2 without random start (eps, alpha, 10 steps): the largest difference to `got`
static double ref_pgdl2_diff(const float *got, double eps, double alpha) {
    static float xa[B * NX], g[B * NX];
    memcpy(xa, g_x, sizeof(xa));
    AttackLossCtx lc = {g_y, K, 1.0f, 1.0f / B};
    for (int s = 0; s < 10; s++) {
        if (ref_grad(xa, B, attack_loss_ce, &lc, NULL, g)) return INFINITY;
        for (int b = 0; b < B; b++) {
            double gn = 0, dn = 0, d[NX];
            for (size_t j = 0; j < NX; j++) gn += (double)g[b * NX + j] * g[b * NX + j];
            gn = sqrt(gn) + 1e-10;
            for (size_t j = 0; j < NX; j++) {
                d[j] = xa[b * NX + j] + alpha * g[b * NX + j] / gn - g_x[b * NX + j];
                dn += d[j] * d[j];
            }
            double factor = fmin(eps / sqrt(dn), 1.0);
            for (size_t j = 0; j < NX; j++) xa[b * NX + j] = (float)fmin(fmax(g_x[b * NX + j] + d[j] * factor, 0), 1);
        }
    }
    double worst = 0;
    for (size_t i = 0; i < B * NX; i++) worst = fmax(worst, fabs((double)xa[i] - got[i]));
    return worst;
}

typedef struct {
    const int *labels;
    int targeted;
    double c;
} RefCw;

// torchattacks' f: real = max(onehot * z), other = max((1 - onehot) * z), clamp at 0
static double ref_cw_f(void *vc, int i, const float *z, float *dz) {
    const RefCw *rc = vc;
    int y = rc->labels[i], ir = 0, io = 0;
    double vr = -INFINITY, vo = -INFINITY;
    for (int k = 0; k < K; k++) {
        double r = k == y ? z[k] : 0.0, o = k == y ? 0.0 : z[k];
        if (r > vr) vr = r, ir = k;
        if (o > vo) vo = o, io = k;
    }
    double d = rc->targeted ? vo - vr : vr - vo;
    for (int k = 0; k < K; k++) dz[k] = 0;
    if (d >= 0) {
        double sg = rc->targeted ? -rc->c : rc->c;
        if (ir == y) dz[ir] += (float)sg;
        if (io != y) dz[io] -= (float)sg;
    }
    return d > 0 ? d : 0;
}

// CW (c, lr, steps; kappa 0) with Adam in double; returns the largest difference to `got`
// over the samples both consider adversarial, and counts disagreements on which are
static double ref_cw_diff(const float *got, int targeted, double c, double lr, int steps, int *disagree) {
    static double w[B * NX], m[B * NX], v[B * NX];
    static float adv[B * NX], best[B * NX], g[B * NX];
    float z[B * K];
    double best_l2[B], l2[B], prev = 1e10;
    memcpy(best, g_x, sizeof(best));
    for (size_t i = 0; i < B * NX; i++) {
        double u = fmin(fmax(2.0 * g_x[i] - 1, -1), 1);
        w[i] = atanh(u);
        m[i] = v[i] = 0;
    }
    for (int b = 0; b < B; b++) best_l2[b] = 1e10;
    RefCw rcx = {targeted ? g_t : g_y, targeted, c};
    for (int s = 0; s < steps; s++) {
        double cost = 0;
        for (int b = 0; b < B; b++) {
            l2[b] = 0;
            for (size_t j = 0; j < NX; j++) {
                size_t i = b * NX + j;
                adv[i] = (float)((tanh(w[i]) + 1) / 2);
                l2[b] += ((double)adv[i] - g_x[i]) * ((double)adv[i] - g_x[i]);
            }
            cost += l2[b];
        }
        NetBackward nb = {.loss = ref_cw_f, .ctx = &rcx, .nvec = 1, .logits = z, .dx = g};
        Err e;
        if (net_forward_backward(&g_net, adv, B, &nb, &e)) return INFINITY;
        cost += c * nb.loss_sum;
        for (size_t i = 0; i < B * NX; i++) {
            double th = tanh(w[i]);
            double gw = (g[i] + 2.0 * ((double)adv[i] - g_x[i])) * 0.5 * (1 - th * th);
            m[i] = 0.9 * m[i] + 0.1 * gw;
            v[i] = 0.999 * v[i] + 0.001 * gw * gw;
            w[i] -= lr / (1 - pow(0.9, s + 1)) * m[i] / (sqrt(v[i]) / sqrt(1 - pow(0.999, s + 1)) + 1e-8);
        }
        for (int b = 0; b < B; b++) {
            int pre = 0;
            for (int k = 1; k < K; k++)
                if (z[b * K + k] > z[b * K + pre]) pre = k;
            int hit = targeted ? pre == g_t[b] : pre != g_y[b];
            if (hit && best_l2[b] > l2[b]) {
                best_l2[b] = l2[b];
                memcpy(best + b * NX, adv + b * NX, sizeof(float) * NX);
            }
        }
        if (s % (steps / 10 > 1 ? steps / 10 : 1) == 0) {
            if (cost > prev) break;
            prev = cost;
        }
    }
    double worst = 0;
    *disagree = 0;
    for (int b = 0; b < B; b++) {
        int moved_ref = memcmp(best + b * NX, g_x + b * NX, sizeof(float) * NX) != 0;
        int moved_got = memcmp(got + b * NX, g_x + b * NX, sizeof(float) * NX) != 0;
        if (moved_ref != moved_got) {
            (*disagree)++;
            continue;
        }
        for (size_t j = 0; j < NX; j++) worst = fmax(worst, fabs((double)best[b * NX + j] - got[b * NX + j]));
    }
    return worst;
}

static void test_references(void) {
    static float a[B * NX];
    if (run("MIFGSM", "", g_x, g_y, NULL, B, 0, 0, NULL, a) == 0) {
        double frac = ref_mifgsm_mismatch(a);
        if (getenv("VERBOSE")) printf("MIFGSM ref: %g\n", frac);
        CHECK(frac < 0.002, "MIFGSM: %.2f%% of the values differ from the reference", 100 * frac);
    }
    if (run("PGDL2", "random_start=0", g_x, g_y, NULL, B, 0, 0, NULL, a) == 0) {
        double worst = ref_pgdl2_diff(a, 1.0, 0.2);
        CHECK(worst < 1e-5, "PGDL2: differs from the reference by %g", worst);
    }
    for (int targeted = 0; targeted < 2; targeted++) {
        if (run("CW", "c=5,steps=30,lr=0.05", g_x, g_y, g_t, B, targeted, 0, NULL, a)) continue;
        int dis = 0;
        double worst = ref_cw_diff(a, targeted, 5, 0.05, 30, &dis);
        if (getenv("VERBOSE")) printf("CW ref: %d disagreements, max diff %g\n", dis, worst);
        CHECK(dis == 0 && worst < 1e-4, "CW %s: differs from the reference (%d disagreements, max diff %g)",
              targeted ? "targeted" : "untargeted", dis, worst);
    }
}

// same seed => same output; 1 thread == 2 threads; TPGD's random start per sample does
// not depend on the batch split; a different seed changes it
static void test_determinism(void) {
    static float a[B * NX], b[B * NX];
    struct {
        const char *name, *ov;
        int targeted;
    } cases[] = {{"BIM", "", 1},     {"MIFGSM", "", 0},          {"TPGD", "", 0},
                 {"PGDL2", "", 1},   {"CW", "steps=10,c=5", 1}, {"CW", "steps=10", 0}};
    int ids[B];
    for (int i = 0; i < B; i++) ids[i] = 100 + i;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        parallel_set_threads(1);
        int r1 = run(cases[c].name, cases[c].ov, g_x, g_y, g_t, B, cases[c].targeted, 7, ids, a);
        parallel_set_threads(2);
        int r2 = run(cases[c].name, cases[c].ov, g_x, g_y, g_t, B, cases[c].targeted, 7, ids, b);
        if (r1 || r2) continue;
        CHECK(!memcmp(a, b, sizeof(a)), "%s: 1 and 2 threads differ", cases[c].name);
        run(cases[c].name, cases[c].ov, g_x, g_y, g_t, B, cases[c].targeted, 7, ids, a);
        CHECK(!memcmp(a, b, sizeof(a)), "%s: the same seed gives a different output", cases[c].name);
    }
    // TPGD: the batch split (and so the thread count) must not move a sample's start
    run("TPGD", "", g_x, g_y, NULL, B, 0, 3, ids, a);
    run("TPGD", "", g_x, g_y, NULL, 5, 0, 3, ids, b);
    run("TPGD", "", g_x + 5 * NX, g_y + 5, NULL, B - 5, 0, 3, ids + 5, b + 5 * NX);
    CHECK(!memcmp(a, b, sizeof(a)), "TPGD: the output depends on the batch split");
    run("TPGD", "", g_x, g_y, NULL, B, 0, 4, ids, b);
    CHECK(memcmp(a, b, sizeof(a)) != 0, "TPGD: a different seed gives the same output");
    run("PGDL2", "random_start=1,steps=0", g_x, g_y, NULL, B, 0, 3, ids, a);
    run("PGDL2", "random_start=1,steps=0", g_x, g_y, NULL, B, 0, 4, ids, b);
    CHECK(memcmp(a, b, sizeof(a)) != 0, "PGDL2: a different seed gives the same random start");
    check_ball("PGDL2 random start", g_x, a, 0, 1.0);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    ConvNetConfig cfg = {.width = 8, .depth = 2};
    snprintf(cfg.arch, sizeof(cfg.arch), "test-attacks-grad");
    snprintf(cfg.norm, sizeof(cfg.norm), "instancenorm");
    snprintf(cfg.act, sizeof(cfg.act), "relu");
    snprintf(cfg.pool, sizeof(cfg.pool), "avgpooling");
    Err e;
    if (convnet_build(&g_net, &cfg, C, K, H, W, &e)) {
        CHECK(0, "build: %s", e.msg);
        return test_done("test_attacks_grad");
    }
    net_init_params(&g_net, 1);
    Rng r;
    rng_init(&r, 42, 0);
    for (size_t i = 0; i < B * NX; i++) g_x[i] = rng_uniform(&r);
    predict(g_x, B, g_y);
    for (int b = 0; b < B; b++) g_t[b] = (g_y[b] + 1) % K;

    test_linf_attacks();
    test_bim_clamps();
    test_mifgsm_momentum();
    test_pgdl2();
    test_cw();
    test_references();
    test_determinism();

    net_free(&g_net);
    return test_done("test_attacks_grad");
}
