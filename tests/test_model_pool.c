/*
 * test_model_pool.c: BEARD's six ConvNet CIFAR-10 IPC-50 checkpoints (../shared) load,
 * and on the 761 real test images every prediction equals PyTorch's and every logit is
 * within 1e-4 of it (reference: tests/fixtures/model_pool_logits.bin, written by
 * tests/scripts/gen_model_pool_logits.py). Skips when ../shared is absent.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/attacks/runner.h"
#include "../src/core/parallel.h"
#include "../src/data/dataset.h"
#include "../src/models/checkpoint.h"
#include "harness.h"

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    const char *pool = shared_path("beard/model_pool", "model-pool fidelity");
    const char *data = shared_path("data/cifar-10-batches-bin", "model-pool fidelity");
    if (!pool || !data) return test_done("test_model_pool");
    Fixture F;
    if (fixture_load("tests/fixtures/model_pool_logits.bin", &F)) return test_done("test_model_pool");
    Dataset ds;
    Err e;
    // all 761 images normally; under the sanitizers (BEARD_SANITIZED) the first 64
    int limit = getenv("BEARD_SANITIZED") ? 64 : 0;
    int rc = dataset_load(&ds, "cifar10", data, 0, limit, &e);
    CHECK(rc == 0, "load test set: %s", rc ? e.msg : "");
    if (rc) return test_done("test_model_pool");
    CHECK(ds.n == (limit ? limit : 761), "expected %d shared test images, got %d", limit ? limit : 761, ds.n);
    const DatasetInfo *info = dataset_info("cifar10");
    size_t D = 3 * 32 * 32;
    float *x = malloc(sizeof(float) * D * ds.n);
    dataset_to_float(&ds, 0, ds.n, x, 0);
    AttackData ad = {.x = x, .y = ds.labels, .n = ds.n, .C = 3, .H = 32, .W = 32, .mean = info->mean, .std = info->std};
    int checked = 0;
    for (int i = 0; i < F.n; i++) {
        char stem[128], path[1024];
        snprintf(stem, sizeof(stem), "%s", F.t[i].name);
        *strstr(stem, ".logits") = 0;
        snprintf(path, sizeof(path), "%s/%s.pth", pool, stem);
        Net net;
        rc = checkpoint_load(&net, path, "ConvNet", 3, 10, 32, 32, &e);
        CHECK(rc == 0, "load %s: %s", path, rc ? e.msg : "");
        if (rc) continue;
        float *logits = malloc(sizeof(float) * 10 * ds.n);
        int *pred = malloc(sizeof(int) * ds.n);
        for (int sem = 0; sem < 2; sem++) { // normalised input, and pixels with the model normalising
            CHECK(attack_clean_predict(&net, &ad, sem ? SEM_PIXEL : SEM_BEARD, 256, pred, logits, &e) == 0, "forward");
            char what[160];
            snprintf(what, sizeof(what), "%s logits (%s input)", stem, sem ? "pixel" : "normalised");
            check_close(what, logits, F.t[i].data, (size_t)ds.n * 10, 1e-4, 0);
            int same = 0;
            for (int k = 0; k < ds.n; k++) {
                const float *r = F.t[i].data + k * 10;
                int best = 0;
                for (int c = 1; c < 10; c++) if (r[c] > r[best]) best = c;
                same += best == pred[k];
            }
            CHECK(same == ds.n, "%s: %d of %d predictions equal PyTorch's", stem, same, ds.n);
        }
        checked++;
        free(logits), free(pred);
        net_free(&net);
    }
    CHECK(checked == 6, "expected 6 checkpoints, checked %d", checked);
    free(x);
    dataset_free(&ds);
    fixture_free(&F);
    return test_done("test_model_pool");
}
