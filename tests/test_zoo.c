/*
 * test_zoo.c: every architecture of the model zoo (src/models/registry.h) against
 * PyTorch (tests/fixtures/zoo.bin, from tests/scripts/gen_zoo_fixtures.py with the
 * reference definitions in tests/scripts/zoo_models.py), on real test images from
 * ../shared (the first 64 CIFAR-10 / MNIST test images; skipped without ../shared):
 *   - the state_dict: every name and shape, in PyTorch's order;
 *   - eval-mode logits within 1e-4, or twice PyTorch float32's own error where that is
 *     larger (fused per-sample driver, and the tape);
 *   - the input gradient of one image's cross-entropy;
 *   - one SGD step (BEARD's lr 0.01, momentum 0.9, weight decay 5e-4) on 8 images in
 *     train mode: the loss, the first 16 values of every parameter and BatchNorm running
 *     statistic afterwards, and the norm of each one's change.
 * Gradients are discontinuous at the ReLU kinks: a ReLU input within float32 rounding of
 * 0 takes either side, and through train-mode BatchNorm that one element moves every
 * gradient below it (by ~1% in VGG11BN); a max-pool window whose runner-up is within
 * rounding of its maximum is the same. The fixture measures that effect (a float64 run
 * with such masks flipped and such ties broken the other way, see gen_zoo_fixtures.py) and the gradient
 * checks allow twice it, plus twice PyTorch float32's own error, above a floor of 1e-4.
 * Parameters are not in the fixture: both sides fill them from the same formula
 * (zoo_param, mirrored from the script), keyed by entry name.
 * Also: a checkpoint beard saves loads back identically, architecture inference from
 * the keys, and the bad-input errors (unknown name, mismatched state_dict, sizes an
 * architecture cannot take).
 * Cost: each case has a level (see cases[]) that sets how many images its logits use and
 * whether its SGD step runs; BEARD_ZOO_FULL=1 (make zoo-interop) runs everything on all
 * 64 images, and under the sanitizers (BEARD_SANITIZED) the logits use 2 images, only
 * the level-0 cases take the SGD step and the level-3 ones do not run.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../src/core/parallel.h"
#include "../src/data/dataset.h"
#include "../src/io/file.h"
#include "../src/models/checkpoint.h"
#include "../src/models/registry.h"
#include "../src/nn/optim.h"
#include "harness.h"

// cost levels (the suite runs under the sanitizers too, see main):
//   0  cheap: the SGD step everywhere (WRN-16-2: residual sums between train-mode
//      BatchNorms), logits on all 64 images
//   1  the SGD step except under the sanitizers, logits on 16 images
//   2  heavy, or a path the others cover (VGG11's step is the fused driver's, as
//      AlexNet's): the SGD step only with BEARD_ZOO_FULL=1 (make zoo-interop), logits
//      on 2 images
//   3  as 2, and not run under the sanitizers at all (building and filling ResNet-50's
//      23M parameters alone takes seconds there; the node kinds they use are run by
//      the other cases)
static const struct {
    const char *name, *arch;
    int C, H, K;
    int level;
} cases[] = {
    {"mlp", "MLP", 3, 32, 10, 0},
    {"lenet", "LeNet", 3, 32, 10, 0},
    {"alexnet", "AlexNet", 3, 32, 10, 1},
    {"alexnetbn", "AlexNetBN", 3, 32, 10, 1},
    {"vgg11", "VGG11", 3, 32, 10, 3},
    {"vgg11bn", "VGG11BN", 3, 32, 10, 1},
    {"resnet18", "ResNet18", 3, 32, 10, 3},
    {"resnet18bn", "ResNet18BN", 3, 32, 10, 1},
    {"resnet18bn_ap", "ResNet18BN_AP", 3, 32, 10, 3},
    {"resnet18_ap", "ResNet18_AP", 3, 32, 10, 2},
    {"tv18", "resnet18_modified", 3, 32, 10, 2},
    {"tv50", "resnet50_modified", 3, 32, 100, 3},
    {"mobilenetv2", "MobileNetV2", 3, 32, 10, 1},
    {"wrn", "WRN_16_2", 3, 32, 10, 0},
    {"shufflenet", "ShuffleNetV2_0_5", 3, 32, 10, 1},
    {"mlp_mnist", "MLP", 1, 28, 10, 0},
    {"lenet_mnist", "LeNet", 1, 28, 10, 0},
    {"alexnet_mnist", "AlexNet", 1, 28, 10, 1},
    {"vgg11_mnist", "VGG11", 1, 28, 10, 3},
    {"resnet18bn_ap_mnist", "ResNet18BN_AP", 1, 28, 10, 2},
    {"tv18_64", "resnet18_modified", 3, 64, 200, 3},
    {"mobilenetv2_64", "MobileNetV2", 3, 64, 200, 3},
    {"resnet18bn_64", "ResNet18BN", 3, 64, 200, 3},
};
enum { N_EVAL = 64, N_TRAIN = 8 };

static Fixture F;
static int sanitized, full;

// ----------------------------------------------------------------------------
// the parameter fill of gen_zoo_fixtures.py (zoo_param)

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
    return h;
}

static uint64_t splitmix(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void zoo_fill(Net *net) {
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind == PENTRY_COUNTER) continue;
        float *dst = (pe->kind == PENTRY_PARAM ? net->params : net->buffers) + pe->offset;
        const char *leaf = strrchr(pe->name, '.') + 1;
        uint64_t base = fnv1a(pe->name);
        double fan_in = pe->ndim >= 2 ? (double)pe->numel / (double)pe->shape[0] : 1;
        for (size_t j = 0; j < pe->numel; j++) {
            double u = (double)(splitmix(base + j) >> 40) * (1.0 / 16777216.0) * 2 - 1, v;
            if (!strcmp(leaf, "weight") && pe->ndim >= 2) v = u * sqrt(6.0 / fan_in);
            else if (!strcmp(leaf, "weight")) v = 1 + 0.2 * u;
            else if (!strcmp(leaf, "bias") || !strcmp(leaf, "running_mean")) v = 0.1 * u;
            else v = 1 + 0.25 * (u + 1); // running_var
            dst[j] = (float)v;
        }
    }
}

// ----------------------------------------------------------------------------

typedef struct {
    float *x; // (n, C, H, W) normalised
    int *y, n;
} Images;

static int load_images(const char *dataset, const char *dir, int up, Images *im) {
    Dataset ds;
    Err e;
    if (dataset_load(&ds, dataset, dir, 0, N_EVAL, &e)) {
        CHECK(0, "load %s: %s", dataset, e.msg);
        return -1;
    }
    int C = ds.c, H = ds.h, W = ds.w;
    float *x = malloc(sizeof(float) * (size_t)N_EVAL * C * H * W);
    dataset_to_float(&ds, 0, N_EVAL, x, 1);
    im->n = N_EVAL;
    im->y = malloc(sizeof(int) * N_EVAL);
    memcpy(im->y, ds.labels, sizeof(int) * N_EVAL);
    if (up) { // nearest 2x, as F.interpolate(scale_factor=2, mode="nearest")
        im->x = malloc(sizeof(float) * (size_t)N_EVAL * C * H * W * 4);
        for (int b = 0; b < N_EVAL; b++)
            for (int c = 0; c < C; c++)
                for (int i = 0; i < 2 * H; i++)
                    for (int j = 0; j < 2 * W; j++)
                        im->x[(((size_t)b * C + c) * 2 * H + i) * 2 * W + j] = x[(((size_t)b * C + c) * H + i / 2) * W + j / 2];
        free(x);
    } else {
        im->x = x;
    }
    dataset_free(&ds);
    return 0;
}

typedef struct {
    const int *y;
    int K;
    float scale;
} Ce;
static double ce_fn(void *ctx, int i, const float *z, float *dz) {
    const Ce *c = ctx;
    double l = crossentropy_sample(dz, z, c->y[i] % c->K, c->K);
    for (int k = 0; k < c->K; k++) dz[k] *= c->scale;
    return l;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void check_keys(const Net *net, const char *cs) {
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "%s.key.", cs);
    size_t pl = strlen(prefix);
    int k = 0, bad = 0;
    for (int i = 0; i < F.n && !bad; i++) {
        if (strncmp(F.t[i].name, prefix, pl)) continue;
        const char *key = F.t[i].name + pl;
        if (k >= net->n_entries) {
            CHECK(0, "%s: PyTorch has '%s' beyond beard's %d entries", cs, key, net->n_entries);
            bad = 1;
            break;
        }
        const ParamEntry *pe = &net->entries[k++];
        int same = !strcmp(pe->name, key) && (size_t)pe->ndim == F.t[i].n;
        for (int d = 0; same && d < pe->ndim; d++) same = pe->shape[d] == (int64_t)F.t[i].data[d];
        if (!same) {
            CHECK(0, "%s: state_dict entry %d is '%s' in PyTorch but '%s' in beard (or shapes differ)", cs, k - 1, key,
                  pe->name);
            bad = 1;
        }
    }
    CHECK(!bad && k == net->n_entries, "%s: %d state_dict entries match PyTorch's (beard has %d)", cs, k, net->n_entries);
}

static void test_case(int ci, const Images *im) {
    const char *cs = cases[ci].name;
    int C = cases[ci].C, H = cases[ci].H, K = cases[ci].K;
    Net net;
    Err e;
    if (model_create(&net, cases[ci].arch, C, K, H, H, &e)) {
        CHECK(0, "%s: %s", cs, e.msg);
        return;
    }
    check_keys(&net, cs);
    zoo_fill(&net);
    const char *save_dir = getenv("BEARD_ZOO_SAVE"); // for tests/scripts/check_zoo_pth.py (make zoo-interop)
    if (save_dir) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s.pth", save_dir, cs);
        CHECK(checkpoint_save(&net, path, &e) == 0, "save %s: %s", path, e.msg);
    }
    size_t in = net_in_size(&net);
    int level = cases[ci].level;
    int n = full ? N_EVAL : sanitized ? 2 : level == 0 ? N_EVAL : level == 1 ? 16 : 2;
    float *z = malloc(sizeof(float) * (size_t)N_EVAL * K);
    char what[128];
    const FixTensor *lg = fixture_getf(&F, "%s.logits", cs), *dxr = fixture_getf(&F, "%s.dx", cs);
    const FixTensor *le = fixture_getf(&F, "%s.logits_err32", cs), *de = fixture_getf(&F, "%s.dx_err32", cs);
    if (!lg || !dxr || !le || !de) goto done;
    // the references are PyTorch in float64; tolerances: twice PyTorch float32's own error
    // the references are PyTorch in float64; tolerances: twice PyTorch float32's own error
    // and twice what flipping the ReLU masks at the kinks does (gen_zoo_fixtures.py)
    double ltol = fmax(1e-4, 2 * le->data[0]);
    double dtol = fmax(1e-4, 2 * de->data[0] + (de->n > 1 ? 2 * de->data[1] : 0));
    CHECK(net_forward(&net, im->x, n, z, &e) == 0, "%s forward", cs);
    snprintf(what, sizeof(what), "%s (%s %dx%dx%d) logits", cs, cases[ci].arch, C, H, H);
    check_close(what, z, lg->data, (size_t)n * K, ltol, 0);
    // the tape gives the same logits
    NetTape *t = NULL;
    int n_tape = full ? 4 : 1;
    CHECK(net_tape_forward(&net, &t, im->x, n_tape, 0, &e) == 0, "%s tape", cs);
    snprintf(what, sizeof(what), "%s tape logits", cs);
    check_close(what, net_tape_out(t, net.n_layers - 1), lg->data, (size_t)n_tape * K, ltol, 0);
    net_tape_free(t);
    // input gradient of image 0's cross-entropy: relative L2 error (a ReLU input within
    // rounding of 0 may take either side in float32, so single values can differ)
    float *dx = calloc(in, sizeof(float));
    Ce ce = {im->y, K, 1.0f};
    NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .dx = dx};
    CHECK(net_forward_backward(&net, im->x, 1, &nb, &e) == 0, "%s forward_backward", cs);
    double num = 0, den = 0;
    for (size_t i = 0; i < in; i++) {
        double d = (double)dx[i] - dxr->data[i];
        num += d * d, den += (double)dxr->data[i] * dxr->data[i];
    }
    double rel = sqrt(num / fmax(den, 1e-300));
    CHECK(rel <= dtol && den > 0, "%s input gradient: relative L2 error %.3g (tolerance %.3g; PyTorch float32's %.3g)", cs,
          rel, dtol, de->data[0]);
    if (getenv("BEARD_ZOO_TIMES"))
        printf("  %-20s logits err %.2g (torch32 %.2g)  dx rel %.2g (torch32 %.2g)\n", cs, max_abs_diff(z, lg->data, (size_t)n * K),
               le->data[0], rel, de->data[0]);
    free(dx);
    // one SGD step in train mode
    if (!full && (level >= 2 || (sanitized && level == 1))) goto done;
    {
        float *before = malloc(sizeof(float) * (net.n_params + net.n_buffers + 1));
        memcpy(before, net.params, sizeof(float) * net.n_params);
        memcpy(before + net.n_params, net.buffers, sizeof(float) * net.n_buffers);
        Optim opt;
        net.train = 1;
        ce.scale = 1.0f / N_TRAIN;
        NetBackward nt = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .param_grads = 1};
        int ok = net_alloc_grads(&net, &e) == 0 && optim_init(&opt, OPTIM_SGD, net.n_params, 0.01f, 0.9f, 5e-4f) == 0;
        net_zero_grads(&net);
        ok = ok && net_forward_backward(&net, im->x, N_TRAIN, &nt, &e) == 0;
        CHECK(ok, "%s train step: %s", cs, ok ? "" : e.msg);
        if (ok) {
            optim_step(&opt, net.params, net.grads);
            optim_free(&opt);
            const FixTensor *tl = fixture_getf(&F, "%s.train_loss", cs);
            if (tl && getenv("BEARD_ZOO_TIMES"))
                printf("  %-20s train loss %.8f vs PyTorch %.8f\n", cs, nt.loss_sum / N_TRAIN, tl->data[0]);
            if (tl)
                CHECK(fabs(nt.loss_sum / N_TRAIN - tl->data[0]) < 1e-4 * fmax(1, fabs(tl->data[0])),
                      "%s train-mode loss %.6f vs PyTorch %.6f", cs, nt.loss_sum / N_TRAIN, tl->data[0]);
            int bad = 0, checked = 0;
            for (int i = 0; i < net.n_entries; i++) {
                const ParamEntry *pe = &net.entries[i];
                if (pe->kind == PENTRY_COUNTER) continue;
                const FixTensor *r = fixture_getf(&F, "%s.step.%s", cs, pe->name);
                if (!r) continue;
                int off = pe->kind == PENTRY_PARAM ? 0 : (int)net.n_params;
                const float *now = (pe->kind == PENTRY_PARAM ? net.params : net.buffers) + pe->offset;
                const float *was = before + off + pe->offset;
                // the first values, then the norm d of the change, PyTorch float32's relative
                // error of the change and the kink run's (see gen_zoo_fixtures.py)
                if (r->n < 4) continue;
                size_t m = r->n - 3;
                double d2 = 0;
                for (size_t j = 0; j < pe->numel; j++) d2 += ((double)now[j] - was[j]) * ((double)now[j] - was[j]);
                double dn = sqrt(d2), dref = r->data[m], rtol = fmax(1e-4, 2 * r->data[m + 1] + 2 * r->data[m + 2]);
                // the error of one value is at most the norm of the error of the whole change
                int vals = 1;
                for (size_t j = 0; j < m && j < pe->numel; j++)
                    vals &= fabs((double)now[j] - r->data[j]) <= 2e-7 + 1e-6 * fabs(r->data[j]) + rtol * dref;
                int norm_ok = fabs(dn - dref) <= 1e-8 + rtol * dref;
                checked++;
                if (!vals || !norm_ok) {
                    if (bad++ < (getenv("BEARD_ZOO_TIMES") ? 1000 : 3))
                        fprintf(stderr, "  %s %s: %s (step norm %.8g vs PyTorch %.8g, tolerance %.2g relative)\n", cs,
                                pe->name, vals ? "values ok" : "values off", dn, dref, rtol);
                }
            }
            CHECK(bad == 0 && checked > 0, "%s: parameters and running stats after one SGD step (%d of %d off)", cs, bad,
                  checked);
        }
        free(before);
    }
done:
    free(z);
    net_free(&net);
}

// a .pth beard writes comes back with the same parameters and logits; the architecture
// is inferred from its keys
static void test_roundtrip(const Images *cifar) {
    Net net, back;
    Err e;
    if (model_create(&net, "ShuffleNetV2_0_5", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    zoo_fill(&net);
    const char *path = test_tmp("zoo_shufflenet.pth");
    CHECK(checkpoint_save(&net, path, &e) == 0, "save: %s", e.msg);
    CHECK(checkpoint_load(&back, path, "ShuffleNetV2_0_5", 3, 10, 32, 32, &e) == 0, "load back: %s", e.msg);
    CHECK(!memcmp(net.params, back.params, sizeof(float) * net.n_params) &&
              !memcmp(net.buffers, back.buffers, sizeof(float) * net.n_buffers),
          "parameters and buffers survive a .pth round trip");
    net_free(&back);
    CHECK(checkpoint_load(&back, path, NULL, 3, 10, 32, 32, &e) == 0 && !strcmp(back.arch, "ShuffleNetV2_0_5"),
          "architecture inferred from the keys: %s", back.arch);
    if (cifar) {
        float z1[20], z2[20];
        net_forward(&net, cifar->x, 2, z1, &e);
        net_forward(&back, cifar->x, 2, z2, &e);
        CHECK(!memcmp(z1, z2, sizeof(z1)), "same logits after the round trip");
    }
    net_free(&back);
    // a ConvNet checkpoint infers as ConvNet, not as an activation variant
    Net cn;
    model_create(&cn, "ConvNet", 3, 10, 32, 32, &e);
    const char *p2 = test_tmp("zoo_convnet.pth");
    checkpoint_save(&cn, p2, &e);
    CHECK(checkpoint_load(&back, p2, NULL, 3, 10, 32, 32, &e) == 0 && !strcmp(back.arch, "ConvNet"),
          "ConvNet keys infer ConvNet (%s)", e.msg);
    net_free(&back);
    // the wrong architecture names the first mismatch with both shapes
    int rc = checkpoint_load(&back, p2, "ConvNetW64", 3, 10, 32, 32, &e);
    CHECK(rc != 0 && strstr(e.msg, "features.0.weight") && strstr(e.msg, "[128, 3, 3, 3]") && strstr(e.msg, "[64, 3, 3, 3]"),
          "mismatched shapes are named: %s", e.msg);
    rc = checkpoint_load(&back, p2, "MLP", 3, 10, 32, 32, &e);
    CHECK(rc != 0 && strstr(e.msg, "checkpoint has no 'fc_1.weight' (shape [128, 3072]"), "missing key is named: %s",
          e.msg);
    Net bn;
    model_create(&bn, "ConvNetBN", 3, 10, 32, 32, &e);
    const char *p3 = test_tmp("zoo_convnetbn.pth");
    checkpoint_save(&bn, p3, &e);
    rc = checkpoint_load(&back, p3, "ConvNet", 3, 10, 32, 32, &e);
    CHECK(rc != 0 && strstr(e.msg, "has 'features.1.running_mean' (shape [128])"), "unexpected key is named: %s", e.msg);
    net_free(&bn);
    net_free(&cn);
    net_free(&net);
}

static void test_bad_input(void) {
    Net net;
    Err e;
    int rc = model_create(&net, "ResNet99", 3, 10, 32, 32, &e);
    CHECK(rc != 0 && strstr(e.msg, "unknown architecture 'ResNet99'") && strstr(e.msg, "ResNet18BN_AP") &&
              strstr(e.msg, "ShuffleNetV2_0_5") && strstr(e.msg, "ConvNet"),
          "unknown name lists the known ones: %s", e.msg);
    rc = model_create(&net, "MobileNetV2", 1, 10, 28, 28, &e);
    CHECK(rc != 0 && strstr(e.msg, "multiple of 32"), "MobileNetV2 refuses 28 px: %s", e.msg);
    rc = model_create(&net, "VGG11", 3, 10, 16, 16, &e);
    CHECK(rc != 0 && strstr(e.msg, "too small"), "VGG11 refuses 16 px: %s", e.msg);
    rc = model_create(&net, "ResNet18", 0, 10, 32, 32, &e);
    CHECK(rc != 0, "zero channels is an error");
    // a 64 px DC ResNet checkpoint given 28 px input: the classifier's shape is named
    Net big;
    CHECK(model_create(&big, "ResNet18BN", 3, 10, 64, 64, &e) == 0, "ResNet18BN at 64 px");
    const char *p = test_tmp("zoo_r18_64.pth");
    checkpoint_save(&big, p, &e);
    rc = checkpoint_load(&net, p, "ResNet18BN", 3, 10, 28, 28, &e);
    CHECK(rc != 0 && strstr(e.msg, "classifier.weight") && strstr(e.msg, "[10, 2048]") && strstr(e.msg, "[10, 512]"),
          "a 64 px checkpoint at 28 px: %s", e.msg);
    net_free(&big);
    // aliases
    CHECK(model_find("wrn-16-2") == model_find("WRN_16_2") && model_find("resnet18bn") != model_find("resnet18_modified"),
          "aliases and case-insensitive names");
}

// --transfer-to with --per-sample: the target's per-sample arrays, consistent with its ASR
// (successes are the target's correctly classified images it now gets wrong)
static void check_transfer_json(const char *path, int n) {
    uint8_t *buf = NULL;
    size_t len = 0;
    Err e;
    if (file_read_all(path, 1 << 20, &buf, &len, &e)) {
        CHECK(0, "transfer JSON: %s", e.msg);
        return;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "results"), 0), "transfer"), 0);
    cJSON *ps = cJSON_GetObjectItem(t, "per_sample");
    cJSON *cc = cJSON_GetObjectItem(ps, "clean_correct"), *ac = cJSON_GetObjectItem(ps, "adv_correct"),
          *su = cJSON_GetObjectItem(ps, "success");
    CHECK(cJSON_GetArraySize(cc) == n && cJSON_GetArraySize(ac) == n && cJSON_GetArraySize(su) == n,
          "transfer JSON: per-sample arrays of %d", n);
    int correct = 0, succ = 0, bad = 0;
    for (int i = 0; i < cJSON_GetArraySize(su); i++) {
        int c = cJSON_GetArrayItem(cc, i)->valueint, a = cJSON_GetArrayItem(ac, i)->valueint,
            s = cJSON_GetArrayItem(su, i)->valueint;
        correct += c, succ += s, bad += s != (c && !a);
    }
    cJSON *asr = cJSON_GetObjectItem(t, "asr");
    CHECK(bad == 0 && cJSON_IsNumber(asr) &&
              fabs(asr->valuedouble - (correct ? 100.0 * succ / correct : 0.0)) < 1e-6,
          "transfer JSON: %d inconsistent samples, ASR %g against %d of %d", bad, asr ? asr->valuedouble : -1, succ,
          correct);
    cJSON_Delete(root);
}

// the architectures through the CLI: --help lists them; train --arch A,B prints the
// cross-architecture table; eval --arch auto; attack --transfer-to another architecture;
// bench --arch
static void test_cli(void) {
    char out[16384];
    CHECK(run_cli(out, sizeof(out), "--help") == 0 && strstr(out, "ResNet18BN_AP") && strstr(out, "resnet50_modified") &&
              strstr(out, "ShuffleNetV2_0_5") && strstr(out, "ConvNetASwishBN"),
          "beard --help lists the architectures");
    const char *data = shared_path("data", "the zoo through the CLI");
    if (!data) return;
    const char *set = shared_path("beard/dataset_pool/res_RandomReal_CIFAR10_ConvNet_1ipc.pt", "the zoo through the CLI");
    if (!set) return;
    const char *json = test_tmp("zoo_cross.json");
    int rc = run_cli(out, sizeof(out),
                     "train --data-file %s --dataset cifar10 --data %s --arch MLP,lenet "
                     "--epochs 0 --runs 2 --no-aug --test-limit 32 --quiet --json %s",
                     set, data, json);
    CHECK(rc == 0 && strstr(out, "cross-architecture evaluation") && strstr(out, "MLP") && strstr(out, "LeNet") &&
              strstr(out, " +- "),
          "train --arch MLP,lenet: %s", out);
    char buf[8192] = "";
    FILE *f = fopen(json, "r");
    if (f) buf[fread(buf, 1, sizeof(buf) - 1, f)] = 0, fclose(f);
    CHECK(strstr(buf, "\"cross_architecture\"") && strstr(buf, "\"model\":\t\"LeNet\""), "cross-architecture JSON");
    rc = run_cli(out, sizeof(out), "train --data-file x.pt --dataset cifar10 --arch ConvNet,Nope");
    CHECK(rc == 2 && strstr(out, "unknown architecture 'Nope'"), "train --arch with an unknown name: %s", out);
    // two checkpoints of different architectures: inference, and a transfer attack across
    Net a, b;
    Err e;
    const char *pa = test_tmp("zoo_mlp.pth"), *pb = test_tmp("zoo_lenet.pth");
    if (model_create(&a, "MLP", 3, 10, 32, 32, &e) || model_create(&b, "LeNet", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    zoo_fill(&a), zoo_fill(&b);
    checkpoint_save(&a, pa, &e), checkpoint_save(&b, pb, &e);
    net_free(&a), net_free(&b);
    rc = run_cli(out, sizeof(out), "eval --model %s --dataset cifar10 --data %s --arch auto --limit 16", pb, data);
    CHECK(rc == 0 && strstr(out, "LeNet on CIFAR10"), "eval --arch auto: %s", out);
    rc = run_cli(out, sizeof(out), "eval --model %s --dataset cifar10 --data %s --limit 16", pb, data);
    CHECK(rc == 1 && strstr(out, "its keys fit LeNet"), "eval with the default ConvNet hints LeNet: %s", out);
    const char *tjson = test_tmp("zoo_transfer.json");
    rc = run_cli(out, sizeof(out),
                 "attack --model %s --arch MLP --dataset cifar10 --data %s --attack FGSM --limit 16 --transfer-to %s "
                 "--per-sample --json %s",
                 pa, data, pb, tjson);
    CHECK(rc == 0 && strstr(out, "(LeNet) accuracy"), "attack --transfer-to another architecture: %s", out);
    check_transfer_json(tjson, 16);
    unlink(tjson);
    rc = run_cli(out, sizeof(out),
                 "attack --model %s --arch MLP --dataset cifar10 --data %s --attack FGSM --limit 16 --transfer-to %s "
                 "--transfer-arch VGG11",
                 pa, data, pb);
    CHECK(rc == 1 && strstr(out, "VGG11"), "--transfer-arch that does not fit: %s", out);
    rc = run_cli(out, sizeof(out), "bench --arch WRN_16_2 --batch 2 --seconds 0.01 --threads 1");
    CHECK(rc == 0 && strstr(out, "WRN_16_2 on cifar10") && strstr(out, "SGD train step"), "bench --arch: %s", out);
    rc = run_cli(out, sizeof(out), "bench --arch MobileNetV2 --dataset mnist --batch 2 --seconds 0.01");
    CHECK(rc == 1 && strstr(out, "multiple of 32"), "bench --arch on a size it cannot take: %s", out);
    unlink(json), unlink(pa), unlink(pb);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    sanitized = getenv("BEARD_SANITIZED") != NULL;
    full = getenv("BEARD_ZOO_FULL") != NULL;
    test_bad_input();
    const char *cdir = shared_path("data/cifar-10-batches-bin", "the zoo against PyTorch on real images");
    const char *mdir = shared_path("data/mnist", "the zoo's 1-channel forms on MNIST");
    Images cifar = {0}, cifar64 = {0}, mnist = {0};
    int have_c = cdir && load_images("cifar10", cdir, 0, &cifar) == 0;
    int have_c64 = cdir && load_images("cifar10", cdir, 1, &cifar64) == 0;
    int have_m = mdir && load_images("mnist", mdir, 0, &mnist) == 0;
    test_roundtrip(have_c ? &cifar : NULL);
    test_cli();
    if ((have_c || have_m) && fixture_load("tests/fixtures/zoo.bin", &F) == 0) {
        const char *only = getenv("BEARD_ZOO_CASE"); // run one case (debugging)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            if (only && strcmp(only, cases[i].name)) continue;
            if (sanitized && !full && cases[i].level == 3) continue;
            const Images *im = cases[i].C == 1 ? (have_m ? &mnist : NULL) : cases[i].H == 64 ? (have_c64 ? &cifar64 : NULL)
                                                                                              : (have_c ? &cifar : NULL);
            if (!im) continue;
            double t0 = time_now();
            test_case((int)i, im);
            if (getenv("BEARD_ZOO_TIMES")) printf("  %-20s %.2fs\n", cases[i].name, time_now() - t0);
        }
        fixture_free(&F);
    }
    free(cifar.x), free(cifar.y), free(cifar64.x), free(cifar64.y), free(mnist.x), free(mnist.y);
    return test_done("test_zoo");
}
