/*
 * test_attacks.c: the attack framework (registry, parameters and presets, target
 * policies, the runner's scoring) and the defining properties of FGSM and PGD on a small
 * random ConvNet: the perturbation stays in the eps-ball and the [0, 1] box, PGD's loss
 * rises over its steps, targeted PGD moves towards its targets, seeds and thread counts
 * give identical results. Needs no ../shared.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/runner.h"
#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "../src/nn/nn.h"
#include "harness.h"

static Net net;
static float mean[3] = {0.4914f, 0.4822f, 0.4465f}, stdv[3] = {0.2023f, 0.1994f, 0.2010f};

static void build_model(void) {
    ConvNetConfig cfg = {.arch = "test", .width = 16, .depth = 2, .act = "relu", .norm = "instancenorm",
                         .pool = "avgpooling"};
    Err e;
    CHECK(convnet_build(&net, &cfg, 3, 10, 16, 16, &e) == 0, "build: %s", e.msg);
    net_init_params(&net, 11);
}

static void test_registry(void) {
    CHECK(attack_find("pgd") == attack_find("PGD") && attack_find("PGD") != NULL, "names are case-insensitive");
    CHECK(attack_find("pgd-linf") == attack_find("PGD"), "aliases resolve, '-' equals '_'");
    CHECK(attack_find("nonsense") == NULL, "unknown attack");
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attack_get(i);
        CHECK(attack_find(d->name) == d, "%s finds itself", d->name);
        CHECK(d->run && d->summary && (d->untargeted_ok || d->targeted_ok), "%s is complete", d->name);
    }
    // presets: BEARD's PGD is alpha 2/225 without random start; torchattacks' is 2/255 with
    const AttackDef *pgd = attack_find("PGD");
    AttackParams p;
    AttackCtx ctx = {.params = &p};
    attack_params_init(&p, pgd, PRESET_TORCHATTACKS);
    CHECK(fabs(attack_param(&ctx, "alpha") - 2.0 / 255) < 1e-12 && attack_param_int(&ctx, "random_start") == 1,
          "torchattacks preset");
    attack_params_init(&p, pgd, PRESET_BEARD);
    CHECK(fabs(attack_param(&ctx, "alpha") - 2.0 / 225) < 1e-12 && attack_param_int(&ctx, "random_start") == 0,
          "beard preset");
    CHECK(attack_params_set_text(&p, pgd, "random-start", "yes") == 0 && attack_param_int(&ctx, "random_start") == 1,
          "--random-start yes");
    CHECK(attack_params_set_text(&p, pgd, "eps", "16/255") == 0 && fabs(attack_param(&ctx, "eps") - 16.0 / 255) < 1e-12,
          "fractions");
    CHECK(attack_params_set_text(&p, pgd, "eps", "abc") == -2, "bad number");
    CHECK(attack_params_set_text(&p, pgd, "kappa", "1") == -1, "undeclared parameter");
}

static void test_targets(void) {
    int y[4] = {0, 9, 3, 12}, t[4];
    attack_targets(TARGET_NEXT, y, NULL, 4, 13, 0, t);
    CHECK(t[0] == 1 && t[1] == 10 && t[3] == 0, "next: (y+1) mod K");
    attack_targets(TARGET_BEARD, y, NULL, 4, 13, 0, t);
    CHECK(t[0] == 1 && t[1] == 0 && t[3] == 3, "beard: (y+1) mod 10 whatever K is");
    int yy[200], tt[200], counts[10] = {0};
    for (int i = 0; i < 200; i++) yy[i] = i % 10;
    attack_targets(TARGET_RANDOM, yy, NULL, 200, 10, 5, tt);
    int ok = 1;
    for (int i = 0; i < 200; i++) ok &= tt[i] != yy[i] && tt[i] >= 0 && tt[i] < 10, counts[tt[i]]++;
    CHECK(ok, "random targets are never the true class");
    int spread = 0;
    for (int k = 0; k < 10; k++) spread += counts[k] > 5;
    CHECK(spread == 10, "random targets cover all classes");
    float z[2 * 4] = {1, -3, 2, 0, /**/ -5, 1, 2, 3};
    int y2[2] = {1, 0}, t2[2];
    attack_targets(TARGET_LEAST_LIKELY, y2, z, 2, 4, 0, t2);
    CHECK(t2[0] == 3 && t2[1] == 1, "least-likely excludes the true class (%d %d)", t2[0], t2[1]);
}

typedef struct {
    float *x;
    int *y, n;
} Data;

static Data make_data(int n) {
    Data d = {malloc(sizeof(float) * 3 * 16 * 16 * n), malloc(sizeof(int) * n), n};
    Rng r;
    rng_init(&r, 99, 0);
    for (int i = 0; i < 3 * 16 * 16 * n; i++) d.x[i] = rng_uniform(&r);
    // labels = the model's own clean predictions, so that every sample starts correct
    net_set_normalize(&net, 1, mean, stdv);
    float *z = malloc(sizeof(float) * 10 * n);
    net_forward(&net, d.x, n, z, NULL);
    for (int i = 0; i < n; i++) {
        int b = 0;
        for (int k = 1; k < 10; k++) if (z[i * 10 + k] > z[i * 10 + b]) b = k;
        d.y[i] = b;
    }
    free(z);
    return d;
}

static double ce_of(const float *x, const int *y, int n, int sign, const int *t) {
    float z[10];
    double s = 0;
    for (int i = 0; i < n; i++) {
        net_forward(&net, x + (size_t)i * 768, 1, z, NULL);
        s += crossentropy_sample(NULL, z, sign > 0 ? y[i] : t[i], 10);
    }
    return s / n;
}

static void test_fgsm_pgd(void) {
    Data d = make_data(24);
    AttackData ad = {.x = d.x, .y = d.y, .n = d.n, .C = 3, .H = 16, .W = 16, .mean = mean, .std = stdv};
    size_t D = 768;
    for (int which = 0; which < 2; which++) {
        const AttackDef *def = attack_find(which ? "PGD" : "FGSM");
        for (int sem = 0; sem < 2; sem++) {
            AttackParams p;
            attack_params_init(&p, def, PRESET_TORCHATTACKS);
            RunConfig cfg = {.sem = sem ? SEM_BEARD : SEM_PIXEL, .policy = TARGET_NEXT, .batch = 10, .seed = 1};
            float *x = malloc(sizeof(float) * D * d.n), *adv = malloc(sizeof(float) * D * d.n);
            attack_prepare(&net, &ad, cfg.sem, x);
            int ids[24];
            for (int i = 0; i < d.n; i++) ids[i] = i;
            AttackCtx ctx = {.net = &net, .K = 10, .D = D, .params = &p, .seed = 1, .ids = ids};
            Err e;
            CHECK(def->run(&ctx, x, d.y, NULL, d.n, adv, &e) == 0, "%s runs", def->name);
            float eps = (float)attack_param(&ctx, "eps");
            int in_ball = 1, in_box = 1;
            // In beard semantics x is a normalised tensor, mostly outside [0, 1]: the clamp
            // itself moves it arbitrarily far (BEARD's threat model is not an eps-ball around
            // the input). What holds is the ball around clamp(x, 0, 1).
            for (size_t i = 0; i < D * d.n; i++) {
                float ref = sem ? clampf(x[i], 0.0f, 1.0f) : x[i];
                in_ball &= fabsf(adv[i] - ref) <= eps * (1 + 1e-6f);
                in_box &= adv[i] >= 0.0f && adv[i] <= 1.0f;
            }
            CHECK(in_ball, "%s (%s): perturbation within eps of %s", def->name, sem ? "beard" : "pixel",
                  sem ? "clamp(x, 0, 1)" : "x");
            CHECK(in_box, "%s (%s): inside [0, 1]", def->name, sem ? "beard" : "pixel");
            if (!sem) {
                double l0 = ce_of(x, d.y, d.n, 1, NULL), l1 = ce_of(adv, d.y, d.n, 1, NULL);
                CHECK(l1 > l0, "%s raises the loss (%.4f -> %.4f)", def->name, l0, l1);
            }
            free(x), free(adv);
        }
    }
    // PGD: the loss rises with the number of steps; targeted PGD lowers the target's loss
    const AttackDef *pgd = attack_find("PGD");
    AttackParams p;
    attack_params_init(&p, pgd, PRESET_BEARD);
    float *x = malloc(sizeof(float) * D * d.n), *adv = malloc(sizeof(float) * D * d.n);
    attack_prepare(&net, &ad, SEM_PIXEL, x);
    int ids[24], t[24];
    for (int i = 0; i < d.n; i++) ids[i] = i, t[i] = (d.y[i] + 1) % 10;
    AttackCtx ctx = {.net = &net, .K = 10, .D = D, .params = &p, .seed = 1, .ids = ids};
    double prev = ce_of(x, d.y, d.n, 1, NULL);
    int rising = 1;
    for (int steps = 1; steps <= 4; steps++) {
        attack_params_set(&p, "steps", steps);
        attack_params_set(&p, "eps", 1.0 / 255); // small ball: the loss keeps rising
        attack_params_set(&p, "alpha", 0.25 / 255);
        pgd->run(&ctx, x, d.y, NULL, d.n, adv, NULL);
        double l = ce_of(adv, d.y, d.n, 1, NULL);
        rising &= l > prev;
        prev = l;
    }
    CHECK(rising, "PGD: loss rises with every extra step");
    attack_params_init(&p, pgd, PRESET_BEARD);
    ctx.targeted = 1;
    pgd->run(&ctx, x, d.y, t, d.n, adv, NULL);
    double lt0 = ce_of(x, d.y, d.n, -1, t), lt1 = ce_of(adv, d.y, d.n, -1, t);
    CHECK(lt1 < lt0, "targeted PGD lowers the loss towards the target (%.3f -> %.3f)", lt0, lt1);

    // seeds and threads: random-start PGD is reproducible and thread-count independent
    attack_params_init(&p, pgd, PRESET_TORCHATTACKS);
    ctx.targeted = 0;
    float *a1 = malloc(sizeof(float) * D * d.n), *a2 = malloc(sizeof(float) * D * d.n);
    parallel_set_threads(1);
    pgd->run(&ctx, x, d.y, NULL, d.n, a1, NULL);
    parallel_set_threads(2);
    pgd->run(&ctx, x, d.y, NULL, d.n, a2, NULL);
    CHECK(!memcmp(a1, a2, sizeof(float) * D * d.n), "PGD: 1 and 2 threads give identical examples");
    // the same sample gets the same random start whatever its position in the batch
    AttackCtx c2 = ctx;
    c2.ids = ids + 4;
    pgd->run(&c2, x + 4 * D, d.y + 4, NULL, 8, a2, NULL);
    CHECK(!memcmp(a1 + 4 * D, a2, sizeof(float) * D * 8), "PGD: random start depends on the sample, not the batch");
    ctx.seed = 2;
    pgd->run(&ctx, x, d.y, NULL, d.n, a2, NULL);
    CHECK(memcmp(a1, a2, sizeof(float) * D * d.n) != 0, "PGD: another seed, another start");
    free(a1), free(a2), free(x), free(adv);

    // the runner's scoring on PGD
    RunConfig cfg = {.sem = SEM_PIXEL, .policy = TARGET_NEXT, .batch = 7, .seed = 0};
    AttackResult r;
    Err e;
    attack_params_init(&p, pgd, PRESET_BEARD);
    CHECK(attack_evaluate(&net, &ad, pgd, &p, 0, &cfg, &r, &e) == 0, "runner: %s", e.msg);
    CHECK(r.clean_correct == d.n && fabs(r.clean_accuracy - 100) < 1e-9, "all samples start correct");
    int succ = 0, adv_ok = 0;
    for (int i = 0; i < d.n; i++) succ += r.clean_ok[i] && !r.adv_ok[i], adv_ok += r.adv_ok[i];
    CHECK(r.success == succ && fabs(r.accuracy - 100.0 * adv_ok / d.n) < 1e-9, "accuracy and success counts");
    CHECK(fabs(r.asr - 100.0 * succ / r.clean_correct) < 1e-9, "ASR: flipped / originally correct");
    CHECK(fabs(r.forward_per_sample - 10) < 1e-9 && fabs(r.backward_per_sample - 10) < 1e-9,
          "PGD-10 costs 10 forward + 10 backward passes per sample (got %.2f + %.2f)", r.forward_per_sample,
          r.backward_per_sample);
    int norms_ok = 1;
    for (int i = 0; i < d.n; i++) norms_ok &= r.linf[i] <= 8.0f / 255 * 1.0001f && r.l2[i] >= r.linf[i];
    CHECK(norms_ok, "per-sample norms: Linf within eps, L2 >= Linf");
    attack_result_free(&r);

    // transfer: examples kept and scored on another model; on the surrogate itself the
    // transfer accuracy is the white-box accuracy
    cfg.keep_adv = 1;
    CHECK(attack_evaluate(&net, &ad, pgd, &p, 0, &cfg, &r, &e) == 0 && r.x_adv, "runner keeps x_adv");
    TransferResult tr;
    CHECK(attack_transfer(&net, &ad, SEM_PIXEL, r.x_adv, 5, &tr, &e) == 0, "transfer: %s", e.msg);
    CHECK(tr.adv_correct == r.adv_correct && tr.clean_correct == r.clean_correct, "transfer to the surrogate itself");
    transfer_result_free(&tr);
    Net other;
    ConvNetConfig oc = {.arch = "other", .width = 8, .depth = 2, .act = "relu", .norm = "batchnorm", .pool = "maxpooling"};
    CHECK(convnet_build(&other, &oc, 3, 10, 16, 16, &e) == 0, "other model");
    net_init_params(&other, 5);
    CHECK(attack_transfer(&other, &ad, SEM_PIXEL, r.x_adv, 64, &tr, &e) == 0, "transfer to another model");
    int manual = 0;
    float z[10];
    for (int i = 0; i < d.n; i++) {
        net_forward(&other, r.x_adv + (size_t)i * D, 1, z, NULL);
        int b = 0;
        for (int k = 1; k < 10; k++) if (z[k] > z[b]) b = k;
        manual += b == d.y[i];
    }
    CHECK(tr.adv_correct == manual, "transfer accuracy is the target's accuracy on x_adv (%d vs %d)", tr.adv_correct, manual);
    transfer_result_free(&tr);
    net_free(&other);
    attack_result_free(&r);
    free(d.x), free(d.y);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    build_model();
    test_registry();
    test_targets();
    test_fgsm_pgd();
    net_free(&net);
    return test_done("test_attacks");
}
