/*
 * test_attack_params.c: the attack parameters' declared types and ranges, the one
 * checker (attack_params_check) and the names beard accepts for attacks (BEARD's
 * PGD_e4 / PGD_s2, "PGD(eps=4/255, steps=20)"), in the library and on the command line:
 * `beard attack`, `beard evaluate`'s attack_params and `beard train`'s --train-param must
 * all refuse out-of-range values by attack, parameter and value, before any work starts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/attacks/runner.h"
#include "../src/core/parallel.h"
#include "../src/models/checkpoint.h"
#include "../src/models/convnet.h"
#include "../src/train/train.h"
#include "harness.h"

static const AttackShape cifar = {3, 32, 32, 10};

// every attack declares a type and a range for every parameter, and every preset's
// defaults pass the checker, with and without the data's shape
static void test_declarations(void) {
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attack_get(i);
        for (const AttackParamDef *p = d->params; p->name; p++) {
            CHECK(p->type != ATTACK_PARAM_UNDECLARED, "%s: parameter %s has no declared type", d->name, p->name);
            if (p->type == ATTACK_PARAM_REAL || p->type == ATTACK_PARAM_INT)
                CHECK(p->lo <= p->hi && isfinite(p->lo) && isfinite(p->hi), "%s.%s: range [%g, %g]", d->name, p->name,
                      p->lo, p->hi);
            CHECK(p->help && p->help[0], "%s.%s has no help", d->name, p->name);
        }
        for (int pr = 0; pr < 3; pr++) {
            AttackParams ps;
            attack_params_init(&ps, d, (Preset)pr);
            Err e;
            CHECK(attack_params_check(d, &ps, NULL, &e) == 0, "%s preset %s: %s", d->name, preset_name((Preset)pr), e.msg);
            CHECK(attack_params_check(d, &ps, &cifar, &e) == 0, "%s preset %s on CIFAR-10: %s", d->name,
                  preset_name((Preset)pr), e.msg);
        }
    }
    CHECK(attack_params_check(&train_trades, &(AttackParams){0}, NULL, &(Err){0}) != 0, "TRADES without values");
}

// sets name=text on a fresh PGD (or def) and returns the checker's verdict; msg gets the error
static int try_value(const AttackDef *def, const char *name, const char *text, char *msg) {
    AttackParams p;
    attack_params_init(&p, def, PRESET_TORCHATTACKS);
    int rc = attack_params_set_text(&p, def, name, text);
    if (rc) {
        snprintf(msg, ERR_MAX, "set_text %d", rc);
        return rc;
    }
    Err e;
    rc = attack_params_check(def, &p, &cifar, &e);
    snprintf(msg, ERR_MAX, "%s", rc ? e.msg : "");
    return rc;
}

static void test_checker(void) {
    const AttackDef *pgd = attack_find("PGD"), *bim = attack_find("BIM"), *sq = attack_find("Square");
    char msg[ERR_MAX];
    // the review's cases: wrapped, zero, fractional steps; negative and huge eps
    const struct {
        const char *name, *value, *want; // want: a substring of the message
    } bad[] = {
        {"steps", "2147483648", "PGD: steps must be an integer in [1, 100000], not 2147483648"},
        {"steps", "4294967297", "not 4294967297"},
        {"steps", "0", "steps must be an integer"},
        {"steps", "2.5", "not 2.5"},
        {"steps", "-3", "not -3"},
        {"steps", "nan", "steps"},
        {"eps", "-8/255", "PGD: eps must be a number in [0, 1]"},
        {"eps", "1e30", "eps"},
        {"eps", "inf", "eps"},
        {"alpha", "-1", "alpha"},
        {"random_start", "2", "random_start must be yes or no"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = try_value(pgd, bad[i].name, bad[i].value, msg);
        // (nan and inf do not even parse as numbers)
        CHECK(rc != 0 && (rc == -2 || strstr(msg, bad[i].want)), "PGD %s=%s refused with '%s' (got %d: %s)", bad[i].name,
              bad[i].value, bad[i].want, rc, msg);
    }
    CHECK(try_value(pgd, "steps", "1e3", msg) == 0, "steps 1e3 is the integer 1000: %s", msg);
    CHECK(try_value(pgd, "eps", "16/255", msg) == 0, "eps 16/255: %s", msg);
    CHECK(try_value(pgd, "eps", "0", msg) == 0, "eps 0 (no attack) is allowed: %s", msg);
    CHECK(try_value(bim, "steps", "0", msg) == 0, "BIM steps 0 is torchattacks' automatic schedule: %s", msg);
    CHECK(try_value(sq, "eps", "2", msg) != 0 && strstr(msg, "Linf"), "Square: Linf eps 2 refused: %s", msg);
    int rc = try_value(sq, "norm", "L2", msg);
    CHECK(rc == 0, "Square norm L2 (eps 8/255): %s", msg);
    CHECK(try_value(sq, "norm", "L3", msg) == -2, "Square: norm L3 does not parse");
    CHECK(try_value(pgd, "eps", "lots", msg) == -2, "eps 'lots' does not parse");
    CHECK(try_value(pgd, "kappa", "1", msg) == -1, "PGD has no kappa");
    // TRADES goes through the same checker
    TrainAdv adv;
    Err e;
    CHECK(train_adv_setup(&adv, "TRADES", SEM_BEARD, 0, &e) == 0 && adv.steps == 10 && fabsf(adv.beta - 6.0f) < 1e-6f,
          "TRADES defaults: %s", e.msg);
    attack_params_set_text(&adv.params, adv.def, "steps", "1.5");
    CHECK(train_adv_finish(&adv, &e) != 0 && strstr(e.msg, "TRADES: steps"), "TRADES steps 1.5 refused: %s", e.msg);
}

static void test_names(void) {
    const AttackDef *d;
    AttackParams p;
    Err e;
    CHECK(attack_resolve("PGD_e4", PRESET_BEARD, &d, &p, &e) == 0 && !strcmp(d->name, "PGD") &&
              fabs(attack_params_get(&p, "eps") - 4.0 / 255) < 1e-15 && fabs(attack_params_get(&p, "alpha") - 2.0 / 225) < 1e-15,
          "PGD_e4 is PGD with eps 4/255 and BEARD's alpha: %s", e.msg);
    CHECK(attack_resolve("pgd_e510", PRESET_BEARD, &d, &p, &e) == 0 && fabs(attack_params_get(&p, "eps") - 0.15) < 1e-15,
          "PGD_e510 is eps 0.15 (BEARD)");
    CHECK(attack_resolve("PGD_s2", PRESET_BEARD, &d, &p, &e) == 0 && attack_params_get(&p, "steps") == 2, "PGD_s2");
    CHECK(attack_resolve("PGD_s0", PRESET_BEARD, &d, &p, &e) == -1 && strstr(e.msg, "steps"), "PGD_s0 refused: %s", e.msg);
    CHECK(attack_resolve("PGD_e9999", PRESET_BEARD, &d, &p, &e) == -1 && strstr(e.msg, "eps"), "PGD_e9999: eps > 1: %s",
          e.msg);
    CHECK(attack_resolve(" PGD ( eps = 4/255 , steps=20 ) ", PRESET_TORCHATTACKS, &d, &p, &e) == 0 &&
              attack_params_get(&p, "steps") == 20 && fabs(attack_params_get(&p, "eps") - 4.0 / 255) < 1e-15,
          "PGD(eps=4/255, steps=20): %s", e.msg);
    CHECK(attack_resolve("Deepfool", PRESET_BEARD, &d, &p, &e) == 0 && !strcmp(d->name, "DeepFool"), "Deepfool");
    CHECK(attack_resolve("AA", PRESET_BEARD, &d, &p, &e) == 0 && !strcmp(d->name, "AutoAttack"), "AA");
    CHECK(attack_resolve("Spsa", PRESET_BEARD, &d, &p, &e) == 0 && !strcmp(d->name, "SPSA"), "Spsa");
    CHECK(attack_resolve("NoSuch", PRESET_BEARD, &d, &p, &e) == -2, "unknown attack: -2");
    CHECK(attack_resolve("PGD(steps=0)", PRESET_BEARD, &d, &p, &e) == -1 && strstr(e.msg, "PGD: steps"),
          "PGD(steps=0) refused: %s", e.msg);
    CHECK(attack_resolve("PGD(kappa=1)", PRESET_BEARD, &d, &p, &e) == -1, "PGD(kappa=1) refused");
    CHECK(attack_resolve("PGD(steps=3", PRESET_BEARD, &d, &p, &e) == -1, "unclosed parenthesis refused");
    const AttackDef *defs[4];
    AttackParams ps[4];
    int n;
    CHECK(attack_resolve_list("PGD(eps=4/255, steps=3), FGSM,,PGD_e2", PRESET_BEARD, 4, defs, ps, &n, &e) == 0 && n == 3 &&
              attack_params_get(&ps[0], "steps") == 3 && !strcmp(defs[1]->name, "FGSM") &&
              fabs(attack_params_get(&ps[2], "eps") - 2.0 / 255) < 1e-15,
          "a list with parameters: %s", e.msg);
    CHECK(attack_resolve_list("FGSM,FGSM,FGSM", PRESET_BEARD, 2, defs, ps, &n, &e) == -1, "too many attacks refused");
}

// the command line refuses the same values, with one line naming attack, parameter, value
static void test_cli(void) {
    const char *beard = beard_bin();
    if (!beard) {
        test_skip("the CLI checks (no beard binary; make test sets $BEARD)");
        return;
    }
    char dir[512], model[600], data[600], cfg[600], out[8192];
    snprintf(dir, sizeof(dir), "%s", test_tmp("attack_params"));
    mkdir(dir, 0755);
    snprintf(model, sizeof(model), "%s/m.pth", dir);
    snprintf(data, sizeof(data), "%s/data", dir);
    mkdir(data, 0755);
    char batch[700];
    snprintf(batch, sizeof(batch), "%s/test_batch.bin", data);
    FILE *f = fopen(batch, "wb");
    for (int i = 0; i < 4; i++) {
        fputc(i % 10, f);
        for (int j = 0; j < 3072; j++) fputc((i * 37 + j * 11) & 255, f);
    }
    fclose(f);
    Net net;
    Err e;
    CHECK(model_create(&net, "ConvNet", 3, 10, 32, 32, &e) == 0, "model");
    net_init_params(&net, 1);
    CHECK(checkpoint_save(&net, model, &e) == 0, "save: %s", e.msg);
    net_free(&net);
    const struct {
        const char *args, *want;
    } cases[] = {
        {"--attack PGD --steps 2147483648", "PGD: steps must be an integer in [1, 100000], not 2147483648"},
        {"--attack PGD --steps 0", "not 0"},
        {"--attack PGD --steps 1.5", "not 1.5"},
        {"--attack PGD,FGSM --eps -0.1", "eps must be a number in [0, 1], not -0.1"},
        {"--attack 'PGD(steps=4294967297)'", "not 4294967297"},
        {"--attack PGD_s0", "PGD: steps"},
        {"--attack OnePixel --pixels 5000", "OnePixel: pixels must be at most the image's 32 x 32 = 1024 pixels, not 5000"},
        {"--attack DIFGSM --resize-rate 1", "resize_rate"},
        {"--attack MultiAttack --chain FGSM", "at least two"},
        {"--attack JSMA --gamma 0", "JSMA: gamma must be a number in (0, 1], not 0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = run_cli(out, sizeof(out), "attack --model %s --dataset cifar10 --data %s %s", model, data, cases[i].args);
        CHECK(rc == 2 && strstr(out, cases[i].want) && !strncmp(out, "beard attack: ", 14), "attack %s: status %d: %s",
              cases[i].args, rc, out);
    }
    // BEARD's training-attack names work in `beard attack`
    int rc = run_cli(out, sizeof(out), "attack --model %s --dataset cifar10 --data %s --attack PGD_e4,PGD_s2 --limit 2",
                     model, data);
    CHECK(rc == 0 && strstr(out, "PGD"), "attack PGD_e4,PGD_s2: status %d: %s", rc, out);
    // evaluate: attack_params out of range, by attack, parameter and value
    snprintf(cfg, sizeof(cfg), "%s/eval.json", dir);
    f = fopen(cfg, "w");
    fprintf(f, "{\"dataset\": \"CIFAR10\", \"load_file\": \"%s\", \"data_path\": \"%s\", \"save_path\": \"%s\","
               " \"test_attack\": [\"Clean\", \"PGD\"], \"attack_params\": {\"PGD\": {\"steps\": 2147483648}}}",
            model, data, dir);
    fclose(f);
    rc = run_cli(out, sizeof(out), "evaluate --config %s", cfg);
    CHECK(rc != 0 && strstr(out, "PGD: steps must be an integer in [1, 100000], not 2147483648"),
          "evaluate with steps 2^31: status %d: %s", rc, out);
    // train: --train-param out of range, for an attack and for TRADES
    rc = run_cli(out, sizeof(out), "train --data-file %s/none.pt --dataset cifar10 --data %s --train-attack PGD "
                                   "--train-param steps=0",
                 dir, data);
    CHECK(rc == 2 && strstr(out, "PGD: steps"), "train --train-param steps=0: status %d: %s", rc, out);
    rc = run_cli(out, sizeof(out), "train --data-file %s/none.pt --dataset cifar10 --data %s --train-attack TRADES "
                                   "--train-param eps=-1",
                 dir, data);
    CHECK(rc == 2 && strstr(out, "TRADES: eps"), "train TRADES eps=-1: status %d: %s", rc, out);
    char rm[700];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    test_declarations();
    test_checker();
    test_names();
    test_cli();
    return test_done("test_attack_params");
}
