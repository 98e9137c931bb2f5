/*
 * fuzz_metrics.c: libFuzzer target for what `beard metrics` and `beard evaluate` parse:
 * BEARD log lines (beardlog.c), results.json (metrics.c) and evaluate_config.json
 * (eval_config.c). Whatever loads is also run through the metrics and their writers,
 * which must never print NaN. Seeds: tests/fuzz/corpus_metrics/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/evaluate/eval_config.h"
#include "../../src/metrics/metrics.h"

#include <math.h>

// every number in the tree is finite (undefined figures must be null)
static void check_finite(const cJSON *j) {
    for (const cJSON *c = j; c; c = c->next) {
        if (cJSON_IsNumber(c) && !isfinite(c->valuedouble)) abort();
        if (c->child) check_finite(c->child);
    }
}

static void run_metrics(MetricsRun *r) {
    MetricsOptions o;
    metrics_options_default(&o);
    o.bootstrap = 8;
    MetricsReport rep;
    Err e;
    if (metrics_compute(&rep, r, 1, &o, &e) == 0) {
        cJSON *j = metrics_report_json(&rep);
        check_finite(j);
        cJSON_Delete(j);
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            metrics_report_markdown(&rep, f);
            metrics_report_csv(&rep, f);
            fclose(f);
        }
        metrics_report_free(&rep);
    }
    metrics_run_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    MetricsRun r;
    Err e;
    if (size && text[0] == '{') {
        cJSON *root = cJSON_ParseWithLength(text, size);
        if (root) {
            if (metrics_run_from_json(&r, root, "fuzz.json", &e) == 0) run_metrics(&r);
            static EvalConfig c;
            if (eval_config_from_json(&c, root, &e) == 0) {
                cJSON *j = eval_config_to_json(&c);
                cJSON_Delete(j);
            }
            cJSON_Delete(root);
        }
    } else if (metrics_run_from_log_text(&r, text, "fuzz.txt", &e) == 0) {
        run_metrics(&r);
    }
    free(text);
    return 0;
}
