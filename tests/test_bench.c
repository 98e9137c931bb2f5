/*
 * test_bench.c: `beard bench --evaluate` (BEARD's evaluation, timed and projected to
 * 10,000 images, next to the times of BEARD's log) on the shared BACON checkpoint and a
 * few real test images, and its usage errors. Skips the run without ../shared. The
 * throughput benchmarks themselves are commands, not tests (timings are not checked).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/io/file.h"
#include "harness.h"

static char out[1 << 16];

static void test_usage(void) {
    CHECK(run_cli(out, sizeof(out), "bench --log x.txt") == 2 && strstr(out, "go with --evaluate"),
          "--log without --evaluate is a usage error: %s", out);
    CHECK(run_cli(out, sizeof(out), "bench --evaluate /nonexistent/config.json") == 1 && strstr(out, "beard bench"),
          "a missing config is an error: %s", out);
    CHECK(run_cli(out, sizeof(out), "bench --evaluate x.json --gemm") == 2, "--evaluate with --gemm is a usage error");
}

static void test_evaluate(void) {
    const char *model = shared_path("beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth", "bench --evaluate");
    const char *data = shared_path("data", "bench --evaluate");
    const char *logp = shared_path("beard/logs/BACON_ConvNet_CIFAR10_50_evaluation_log.txt", "bench --evaluate");
    if (!model || !data || !logp) return;
    char cfg[512], json[512];
    snprintf(cfg, sizeof(cfg), "%s", test_tmp("bench_config.json"));
    snprintf(json, sizeof(json), "%s", test_tmp("bench.json"));
    FILE *f = fopen(cfg, "w");
    fprintf(f, "{\"dataset\": \"CIFAR10\", \"model\": \"ConvNet\", \"method\": \"BACON\", \"ipc\": \"50\",\n"
               " \"load_file\": \"%s\", \"data_path\": \"%s\", \"save_path\": \"/nonexistent\",\n"
               " \"test_attack\": [\"Clean\", \"FGSM\", \"Square\"], \"target_attack\": [true, false],\n"
               " \"attack_params\": {\"Square\": {\"n_queries\": 2}}}\n",
            model, data);
    fclose(f);
    // 8 images; Square cut to 2 queries; the log has Clean and FGSM but no Square
    int st = run_cli(out, sizeof(out), "bench --evaluate %s --limit 8 --threads 2 --log %s --json %s", cfg, logp, json);
    CHECK(st == 0, "bench --evaluate exits 0 (%d): %s", st, out);
    CHECK(strstr(out, "projected to 10000 images") && strstr(out, "the attacks in BEARD's log"),
          "bench --evaluate prints the projection and the comparison: %s", out);
    uint8_t *text = NULL;
    size_t len = 0;
    Err e;
    cJSON *root = file_read_all(json, 1 << 20, &text, &len, &e) == 0 ? cJSON_ParseWithLength((char *)text, len) : NULL;
    CHECK(root != NULL, "bench --evaluate writes its --json");
    if (!root) return;
    cJSON *runs = cJSON_GetObjectItem(root, "runs");
    CHECK(cJSON_GetArraySize(runs) == 6, "three attacks in two modes: %d runs", cJSON_GetArraySize(runs));
    CHECK(cJSON_GetObjectItem(root, "n")->valuedouble == 8, "8 images");
    double in_log = 0, all = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const char *a = cJSON_GetObjectItem(r, "attack")->valuestring, *m = cJSON_GetObjectItem(r, "mode")->valuestring;
        double s = cJSON_GetObjectItem(r, "seconds")->valuedouble, p = cJSON_GetObjectItem(r, "projected_seconds")->valuedouble;
        CHECK(fabs(p - s * 10000 / 8) <= 1e-9 * (1 + p), "%s %s: projected = seconds x 10000 / 8", a, m);
        cJSON *bl = cJSON_GetObjectItem(r, "beard_log_seconds");
        int targeted = !strcmp(m, "targeted");
        if (!strcmp(a, "FGSM")) {
            CHECK(bl && bl->valuedouble == (targeted ? 3.01 : 3.68), "FGSM %s: BEARD's logged time", m);
            CHECK(cJSON_GetObjectItem(r, "passes_per_sample")->valuedouble == 2, "FGSM: one forward and one backward");
        }
        if (!strcmp(a, "Square")) CHECK(!bl, "Square is not in BEARD's log");
        if (bl) in_log += p;
        all += p;
    }
    CHECK(fabs(cJSON_GetObjectItem(root, "projected_seconds_in_log")->valuedouble - in_log) <= 1e-9 * (1 + in_log) &&
              fabs(cJSON_GetObjectItem(root, "projected_seconds")->valuedouble - all) <= 1e-9 * (1 + all),
          "the totals add up");
    CHECK(cJSON_GetObjectItem(root, "beard_log_seconds")->valuedouble == 3.04 + 2.31 + 3.01 + 3.68,
          "BEARD's total over the attacks both have");
    cJSON_Delete(root);
    free(text);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    test_usage();
    test_evaluate();
    return test_done("test_bench");
}
