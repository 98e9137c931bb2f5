/*
 * test_metrics.c: BEARD's RR, AE and CREI (src/metrics/metrics.c) and the BEARD log
 * reader/writer (src/evaluate/beardlog.c).
 *
 * The anchor is BEARD's published BACON/CIFAR-10 result: targeted RRM 36.83, untargeted
 * AEM 21.53 and CREIM 27.20 (arXiv:2411.09265), which BEARD's toolkit computes from the
 * three logs in ../shared/beard/logs (those checks skip without ../shared); the per-IPC
 * figures below are what BEARD's evaluate_metrics.py prints for them. The formulas are
 * also checked on numbers of our own, and tests/fixtures/metrics holds our degenerate
 * and broken logs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/evaluate/beardlog.h"
#include "../src/metrics/metrics.h"
#include "harness.h"

#define FIX "tests/fixtures/metrics/"

// ----------------------------------------------------------------------------

static int same2(double v, const char *want) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.2f", v);
    return !strcmp(buf, want);
}

static void test_formulas(void) {
    double a[] = {30, 40, 50};
    double rr, ae;
    int deg;
    Err e;
    // c = 60, mean 40, min 30: 1 - 20/30
    CHECK(metrics_rr(60, a, 3, METRICS_BEARD, &rr, &deg, &e) == 0 && fabs(rr - 100.0 / 3) < 1e-12 && !deg,
          "RR beard: got %g", rr);
    // rome: 1 - 20*30/3600
    CHECK(metrics_rr(60, a, 3, METRICS_ROME, &rr, &deg, &e) == 0 && fabs(rr - 100.0 * (1 - 600.0 / 3600)) < 1e-12,
          "RR rome: got %g", rr);
    double b[] = {60, 70};
    CHECK(metrics_rr(60, b, 2, METRICS_BEARD, &rr, &deg, &e) == 0 && rr == 0.0 && deg,
          "RR with c == min is 0 and flagged (BEARD's rule)");
    CHECK(metrics_rr(60, b, 2, METRICS_ROME, &rr, &deg, &e) == 0 && rr == 0.0 && deg, "RR rome with c == min is 0");
    CHECK(metrics_rr(60, a, 0, METRICS_BEARD, &rr, &deg, &e) == -1 && isnan(rr), "RR of no attacks is an error");
    CHECK(metrics_rr(0, a, 3, METRICS_ROME, &rr, &deg, &e) == -1 && isnan(rr), "RR with clean accuracy 0 is an error");
    double one[] = {20};
    CHECK(metrics_rr(60, one, 1, METRICS_BEARD, &rr, &deg, &e) == 0 && rr == 0.0, "RR of one attack is 0 (beard)");
    double t[] = {3, 5, 10};
    CHECK(metrics_ae(2, t, 3, &ae, &deg, &e) == 0 && fabs(ae - 100.0 * (6 - 2) / 8) < 1e-12 && !deg, "AE: got %g", ae);
    double t2[] = {2, 2};
    CHECK(metrics_ae(2, t2, 2, &ae, &deg, &e) == 0 && ae == 0.0 && deg, "AE with max t == t_c is 0 and flagged");
    CHECK(metrics_ae(2, t, 0, &ae, &deg, &e) == -1, "AE of no attacks is an error");
    CHECK(metrics_crei(40, 20, 0.5) == 30 && metrics_crei(40, 20, 1) == 40 && metrics_crei(40, 20, 0) == 20, "CREI");
}

static void test_writer(void) {
    // a line of BEARD's published log, rebuilt field by field
    const char *attacks[] = {"Clean", "FGSM", "PGD", "PGD_L2", "Deepfool", "CW", "AA"};
    int targets[] = {1, 0};
    BeardLogContext ctx = {.dataset = "CIFAR10", .ipc = "50", .model = "ConvNet", .dsa = 1, .num_eval = 0, .aug = 0,
                           .src_dataset = 1, .attacks = attacks, .n_attacks = 7, .targets = targets, .n_targets = 2};
    BeardLogLine l = {.attack = "FGSM", .method = "BACON", .acc = {44.68, 38.16}, .std = {0, 0}, .seconds = {3.01, 3.68}};
    char buf[2048];
    beardlog_format(buf, sizeof(buf), &l, &ctx);
    const char *want =
        "FGSM attack on BACON: final acc is:  target_attack: 44.68 +- 0.00, attack time is 3.01; non_target_attack: "
        "38.16 +- 0.00, attack time is 3.68, dataset: CIFAR10, IPC: 50, DSA:True, num_eval: 0, aug:False , model: "
        "ConvNet, attack_type: ['Clean', 'FGSM', 'PGD', 'PGD_L2', 'Deepfool', 'CW', 'AA'], target_attack: [True, "
        "False], src_dataset: True";
    CHECK(!strcmp(buf, want), "BEARD line:\n got  %s\n want %s", buf, want);
    int need = beardlog_format(NULL, 0, &l, &ctx);
    CHECK(need == (int)strlen(want), "format reports the length it needs (%d)", need);
    // Python's repr of strings with quotes
    const char *odd[] = {"it's", "a\\b", "x\"y'z"};
    beardlog_repr_strs(buf, sizeof(buf), odd, 3);
    CHECK(!strcmp(buf, "[\"it's\", 'a\\\\b', 'x\"y\\'z']"), "repr of odd strings: %s", buf);
    int tf[] = {0};
    beardlog_repr_bools(buf, sizeof(buf), tf, 1);
    CHECK(!strcmp(buf, "[False]"), "repr of [False]: %s", buf);
    char ts[48];
    beardlog_timestamp(ts, sizeof(ts));
    CHECK(strlen(ts) == 23 && ts[4] == '-' && ts[10] == ' ' && ts[19] == ',', "timestamp like logging's asctime: %s", ts);

    // the reader takes back what the writer wrote, and only complete lines
    char text[4096];
    beardlog_format(buf, sizeof(buf), &l, &ctx);
    snprintf(text, sizeof(text),
             "2025-01-01 00:00:00,000 - INFO - Logging setup complete.\n2025-01-01 00:00:01,000 - INFO - %s\n"
             "2025-01-01 00:00:02,000 - INFO - PGD attack on BACON: final acc is:  target_attack: 1.00 +- 0.00\n",
             buf);
    BeardLogFile f;
    Err e;
    CHECK(beardlog_parse(&f, text, "text", &e) == 0 && f.n == 1, "one result line parsed");
    if (f.n == 1) {
        CHECK(!strcmp(f.lines[0].attack, "FGSM") && !strcmp(f.lines[0].method, "BACON"), "names parsed");
        CHECK(f.lines[0].acc[0] == 44.68 && f.lines[0].acc[1] == 38.16 && f.lines[0].seconds[0] == 3.01 &&
                  f.lines[0].seconds[1] == 3.68,
              "figures parsed");
        CHECK(!strcmp(f.lines[0].dataset, "CIFAR10") && !strcmp(f.lines[0].ipc, "50"), "dataset and IPC parsed");
        CHECK(f.lines[0].line == 2, "line number recorded");
    }
    CHECK(f.n_unparsed == 1 && f.first_unparsed == 3, "the truncated line is reported, not parsed");
    beardlog_file_free(&f);
}

typedef struct {
    const char *ipc;
    const char *t[3], *u[3]; // RR, AE, CREI
} Expect;

// what BEARD's evaluate_metrics.py prints for the three BACON logs
static const Expect bacon[] = {
    {"1", {"19.78", "29.70", "24.74"}, {"26.34", "25.24", "25.79"}},
    {"10", {"12.94", "29.48", "21.21"}, {"28.24", "25.94", "27.09"}},
    {"50", {"6.99", "31.89", "19.44"}, {"32.87", "24.10", "28.48"}},
};

static void check_bacon(const char *dir, const char *what) {
    MetricsRun runs[3];
    Err e;
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/BACON_ConvNet_CIFAR10_%s_evaluation_log.txt", dir, bacon[i].ipc);
        if (metrics_run_load(&runs[i], path, &e)) {
            CHECK(0, "%s: %s", what, e.msg);
            ok = 0;
        }
    }
    if (!ok) return;
    MetricsOptions o;
    metrics_options_default(&o);
    MetricsReport rep;
    CHECK(metrics_compute(&rep, runs, 3, &o, &e) == 0, "%s: compute: %s", what, e.msg);
    for (int i = 0; i < 3; i++) {
        CHECK(!strcmp(runs[i].ipc, bacon[i].ipc) && !strcmp(runs[i].method, "BACON"), "%s: IPC %s read", what,
              bacon[i].ipc);
        CHECK(runs[i].n_attacks == 6, "%s: six attacks besides Clean", what);
        for (int m = 0; m < 2; m++) {
            const MetricsFigures *f = &rep.per_run[i][m];
            const char *const *w = m ? bacon[i].u : bacon[i].t;
            CHECK(same2(f->rr, w[0]) && same2(f->ae, w[1]) && same2(f->crei, w[2]),
                  "%s: IPC %s %s: RR/AE/CREI %.2f/%.2f/%.2f, BEARD %s/%s/%s", what, bacon[i].ipc,
                  metrics_mode_name(m), f->rr, f->ae, f->crei, w[0], w[1], w[2]);
            CHECK(f->n_attacks == (m ? 6 : 4), "%s: %s pools %d attacks (targeted Deepfool and AA left out)", what,
                  metrics_mode_name(m), f->n_attacks);
        }
    }
    const MetricsFigures *T = &rep.combined[MODE_TARGETED], *U = &rep.combined[MODE_UNTARGETED];
    CHECK(same2(T->rr, "36.83"), "%s: targeted RRM %.2f, published 36.83", what, T->rr);
    CHECK(same2(U->ae, "21.53"), "%s: untargeted AEM %.2f, published 21.53", what, U->ae);
    CHECK(same2(U->crei, "27.20"), "%s: untargeted CREIM %.2f, published 27.20", what, U->crei);
    CHECK(same2(T->ae, "29.83") && same2(T->crei, "33.33"), "%s: targeted AEM/CREIM %.2f/%.2f (BEARD's README 29.83/33.33)",
          what, T->ae, T->crei);
    CHECK(same2(U->rr, "32.87"), "%s: untargeted RRM %.2f (the formula; the paper repeats the targeted row)", what, U->rr);
    CHECK(isnan(T->rr_lo), "%s: no intervals without per-sample data", what);
    CHECK(isnan(T->ae_passes), "%s: no passes-based AE from logs", what);
    // rome, recomputed here from the pooled numbers
    double c = (44.95 + 61.73 + 69.95) / 3, a[] = {29.59, 30.61, 33.73, 36.58, 39.13, 40.10, 44.06, 44.93,
                                                  44.68, 45.59, 50.81, 44.71};
    double mean = 0, mn = 1e9;
    for (int i = 0; i < 12; i++) mean += a[i] / 12, mn = fmin(mn, a[i]);
    double want = 100 * (1 - (c - mean) * (c - mn) / (c * c));
    metrics_report_free(&rep);
    o.type = METRICS_ROME;
    CHECK(metrics_compute(&rep, runs, 3, &o, &e) == 0, "%s: rome", what);
    CHECK(fabs(rep.combined[MODE_TARGETED].rr - want) < 1e-9, "%s: targeted RRM rome %.6f, want %.6f", what,
          rep.combined[MODE_TARGETED].rr, want);
    metrics_report_free(&rep);
    for (int i = 0; i < 3; i++) metrics_run_free(&runs[i]);
}

static void test_bacon(void) {
    const char *shared = shared_path("beard/logs", "BEARD's own BACON logs");
    if (shared) check_bacon(shared, "../shared logs");
}

static void test_degenerate(void) {
    Err e;
    MetricsRun r;
    CHECK(metrics_run_load(&r, FIX "no_clean_evaluation_log.txt", &e) == -1 && strstr(e.msg, "no Clean line"),
          "a log without a Clean line is an error: %s", e.msg);
    CHECK(metrics_run_load(&r, FIX "garbage_evaluation_log.txt", &e) == -1 && strstr(e.msg, "no BEARD result lines"),
          "a file without result lines is an error: %s", e.msg);
    CHECK(metrics_run_load(&r, FIX "malformed_evaluation_log.txt", &e) == -1 && strstr(e.msg, ":3: malformed number"),
          "a malformed number names its line: %s", e.msg);
    CHECK(metrics_run_load(&r, FIX "does_not_exist.txt", &e) == -1 && strstr(e.msg, "does_not_exist"),
          "a missing file is an error naming it: %s", e.msg);

    MetricsOptions o;
    metrics_options_default(&o);
    MetricsReport rep;
    CHECK(metrics_run_load(&r, FIX "single_attack_evaluation_log.txt", &e) == 0, "single attack log loads");
    CHECK(metrics_compute(&rep, &r, 1, &o, &e) == 0, "single attack computes");
    const MetricsFigures *f = &rep.per_run[0][MODE_UNTARGETED];
    CHECK(f->rr == 0.0 && f->ae == 100.0 && f->crei == 50.0 && strstr(f->note, "single attack"),
          "one attack: RR 0, AE 100 by construction, noted (%g %g '%s')", f->rr, f->ae, f->note);
    CHECK(strstr(rep.single[0].fig[0].note, "one run") != NULL, "single adversary over one run is noted");
    metrics_report_free(&rep);
    metrics_run_free(&r);

    CHECK(metrics_run_load(&r, FIX "degenerate_evaluation_log.txt", &e) == 0, "degenerate log loads");
    CHECK(metrics_compute(&rep, &r, 1, &o, &e) == 0, "degenerate computes");
    f = &rep.per_run[0][MODE_TARGETED];
    CHECK(f->rr == 0.0 && strstr(f->note, "equals the lowest"), "c == min a: RR 0, noted ('%s')", f->note);
    CHECK(f->ae == 0.0 && strstr(f->note, "AE is 0"), "max t == t_c: AE 0, noted");
    CHECK(rep.n_notes >= 1 && strstr(rep.notes[0], "above the clean accuracy"), "an attack above clean is noted");
    metrics_report_free(&rep);
    metrics_run_free(&r);

    CHECK(metrics_run_load(&r, FIX "rerun_evaluation_log.txt", &e) == 0, "rerun log loads");
    CHECK(r.n_duplicates == 1 && r.n_attacks == 2, "a rerun line supersedes the earlier one (%d dup, %d attacks)",
          r.n_duplicates, r.n_attacks);
    for (int i = 0; i < r.n_attacks; i++)
        if (!strcmp(r.attacks[i].name, "FGSM")) CHECK(r.attacks[i].acc[0] == 40.0, "the last FGSM line counts");
    metrics_run_free(&r);

    o.alpha = 1.5;
    CHECK(metrics_run_load(&r, FIX "single_attack_evaluation_log.txt", &e) == 0 &&
              metrics_compute(&rep, &r, 1, &o, &e) == -1 && strstr(e.msg, "alpha"),
          "alpha outside [0, 1] is an error");
    metrics_run_free(&r);
}

// a results.json as `beard evaluate` writes it, n samples, with per-sample data
static cJSON *make_results(int n, uint64_t salt) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "method", "DM");
    cJSON_AddStringToObject(root, "dataset", "CIFAR10");
    cJSON_AddStringToObject(root, "ipc", "10");
    cJSON_AddNumberToObject(root, "n", n);
    cJSON *clean = cJSON_AddObjectToObject(root, "clean");
    unsigned char *ok = malloc(n);
    int cc = 0;
    for (int i = 0; i < n; i++) ok[i] = (i * 7 + salt) % 10 < 7, cc += ok[i];
    cJSON_AddNumberToObject(clean, "accuracy", 100.0 * cc / n);
    cJSON *sec = cJSON_AddObjectToObject(clean, "seconds");
    cJSON_AddNumberToObject(sec, "targeted", 2.0);
    cJSON_AddNumberToObject(sec, "untargeted", 1.0);
    cJSON *ps = cJSON_AddObjectToObject(clean, "per_sample");
    cJSON *arr = cJSON_AddArrayToObject(ps, "correct");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(ok[i]));
    cJSON *atts = cJSON_AddArrayToObject(root, "attacks");
    const char *names[] = {"FGSM", "PGD", "Deepfool"};
    double passes[] = {2, 20, 100};
    for (int a = 0; a < 3; a++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", names[a]);
        for (int m = 0; m < 2; m++) {
            if (a == 2 && m == 0) {
                cJSON_AddNullToObject(o, "targeted");
                continue;
            }
            cJSON *r = cJSON_CreateObject();
            int adv = 0, succ = 0;
            cJSON *ps2 = cJSON_CreateObject(), *ca = cJSON_AddArrayToObject(ps2, "clean_correct"),
                  *aa = cJSON_AddArrayToObject(ps2, "adv_correct");
            for (int i = 0; i < n; i++) {
                int v = ok[i] && (i * 13 + a * 5 + m * 3) % 10 < 6 - 2 * a;
                adv += v, succ += ok[i] && !v;
                cJSON_AddItemToArray(ca, cJSON_CreateNumber(ok[i]));
                cJSON_AddItemToArray(aa, cJSON_CreateNumber(v));
            }
            cJSON_AddNumberToObject(r, "accuracy", 100.0 * adv / n);
            cJSON_AddNumberToObject(r, "seconds", 3.0 + 10 * a + m);
            cJSON_AddNumberToObject(r, "passes_per_sample", passes[a]);
            cJSON_AddItemToObject(r, "per_sample", ps2);
            cJSON_AddItemToObject(o, m ? "untargeted" : "targeted", r);
        }
        cJSON_AddItemToArray(atts, o);
    }
    free(ok);
    return root;
}

static void test_json_runs(void) {
    int n = 400;
    cJSON *root = make_results(n, 0);
    MetricsRun r;
    Err e;
    CHECK(metrics_run_from_json(&r, root, "mem.json", &e) == 0, "results.json loads: %s", e.msg);
    CHECK(r.n == n && r.clean_ok && r.n_attacks == 3, "per-sample data read");
    CHECK(r.attacks[2].excluded[MODE_TARGETED] && !r.attacks[2].has[MODE_TARGETED], "targeted Deepfool: null, left out");
    MetricsOptions o;
    metrics_options_default(&o);
    o.bootstrap = 300;
    MetricsReport rep, rep2;
    CHECK(metrics_compute(&rep, &r, 1, &o, &e) == 0, "compute with bootstrap");
    const MetricsFigures *u = &rep.per_run[0][MODE_UNTARGETED];
    CHECK(!isnan(u->rr_lo) && u->rr_lo <= u->rr && u->rr <= u->rr_hi, "RR %.2f within its CI [%.2f, %.2f]", u->rr,
          u->rr_lo, u->rr_hi);
    CHECK(u->crei_lo <= u->crei && u->crei <= u->crei_hi, "CREI within its CI");
    CHECK(u->rr_hi - u->rr_lo > 0.1, "the CI has a width");
    // AE from passes: t_c = 1, t_i = p_i + 1 -> mean(p)/max(p)
    CHECK(fabs(u->ae_passes - 100.0 * (122.0 / 3) / 100.0) < 1e-9, "passes-based AE %.4f", u->ae_passes);
    // per-sample ASR: originally correct and now wrong, over originally correct
    int cc = 0, s = 0;
    for (int i = 0; i < n; i++) cc += r.clean_ok[i], s += r.clean_ok[i] && !r.attacks[0].adv_ok[1][i];
    const MetricsAttackStats *st = &rep.stats[0][0 * 2 + MODE_UNTARGETED];
    CHECK(fabs(st->asr - 100.0 * s / cc) < 1e-9, "per-sample ASR %.4f", st->asr);
    CHECK(fabs(st->drop - (r.clean_acc - r.attacks[0].acc[1])) < 1e-12, "ASR as accuracy drop");
    CHECK(st->acc_lo <= r.attacks[0].acc[1] && r.attacks[0].acc[1] <= st->acc_hi, "accuracy within its CI");
    // an accuracy is a mean of 0/1 values: its interval is close to the normal one
    double p = r.attacks[0].acc[1] / 100, want = 2 * 1.96 * 100 * sqrt(p * (1 - p) / n);
    CHECK(fabs((st->acc_hi - st->acc_lo) - want) < 0.25 * want, "accuracy CI width %.3f, normal approximation %.3f",
          st->acc_hi - st->acc_lo, want);
    // deterministic, and independent of the thread count
    CHECK(metrics_compute(&rep2, &r, 1, &o, &e) == 0, "compute again");
    CHECK(rep2.per_run[0][1].rr_lo == u->rr_lo && rep2.per_run[0][1].crei_hi == u->crei_hi, "same seed, same CI");
    metrics_report_free(&rep2);
    // combined over two runs with per-sample data
    cJSON *root2 = make_results(n, 3);
    cJSON_ReplaceItemInObject(root2, "ipc", cJSON_CreateString("20")); // another IPC: another run
    MetricsRun two[2];
    two[0] = r;
    CHECK(metrics_run_from_json(&two[1], root2, "mem2.json", &e) == 0, "second run loads");
    CHECK(metrics_compute(&rep2, two, 2, &o, &e) == 0, "compute over two runs");
    const MetricsFigures *c = &rep2.combined[MODE_UNTARGETED];
    // RR pools a minimum, which resampling biases (the min of noisy accuracies is lower), so
    // the percentile interval need not contain the estimate; it must be near it
    double w = c->rr_hi - c->rr_lo;
    CHECK(!isnan(c->rr_lo) && w > 0 && c->rr > c->rr_lo - w && c->rr < c->rr_hi + w,
          "combined RR %.3f near its CI [%.3f, %.3f]", c->rr, c->rr_lo, c->rr_hi);
    CHECK(c->n_attacks == 6, "combined pools 6 untargeted results");
    metrics_report_free(&rep2);
    metrics_run_free(&two[1]);
    cJSON_Delete(root2);

    // the writers never print NaN
    cJSON *j = metrics_report_json(&rep);
    char *txt = cJSON_PrintUnformatted(j);
    CHECK(txt && !strstr(txt, "nan") && !strstr(txt, "inf"), "JSON has no NaN");
    free(txt);
    cJSON_Delete(j);
    metrics_report_free(&rep);
    metrics_run_free(&r);

    // malformed per-sample data
    cJSON *bad = make_results(10, 0);
    cJSON *cl = cJSON_GetObjectItem(bad, "clean");
    cJSON *corr = cJSON_GetObjectItem(cJSON_GetObjectItem(cl, "per_sample"), "correct");
    cJSON_ReplaceItemInArray(corr, 3, cJSON_CreateNumber(2));
    CHECK(metrics_run_from_json(&r, bad, "bad.json", &e) == -1 && strstr(e.msg, "not 0 or 1"), "bad per-sample value: %s",
          e.msg);
    cJSON_Delete(bad);
    cJSON *noclean = make_results(10, 0);
    cJSON_DeleteItemFromObject(noclean, "clean");
    CHECK(metrics_run_from_json(&r, noclean, "nc.json", &e) == -1 && strstr(e.msg, "no clean accuracy"),
          "results.json without clean figures: %s", e.msg);
    cJSON_Delete(noclean);
    cJSON_Delete(root);
}

// writes text to dir/name and returns the path (static storage, two at a time)
static const char *put_file(const char *dir, const char *name, const char *text) {
    static char paths[2][1200];
    static int k;
    char *p = paths[k++ % 2];
    snprintf(p, 1200, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
    return p;
}

#define LOG_LINE(attack, method, t, u, ts, us, ipc)                                                                \
    "2024-11-14 10:00:00,000 - INFO - " attack " attack on " method ": final acc is:  target_attack: " t             \
    " +- 0.00, attack time is " ts "; non_target_attack: " u " +- 0.00, attack time is " us ", dataset: CIFAR10, IPC: " ipc \
    ", model: ConvNet\n"

// what `beard metrics` used to accept silently and must now refuse, each with a message
static void test_strict(const char *dir) {
    char out[1 << 15];
    const char *clean = LOG_LINE("Clean", "DM", "50.00", "50.00", "1.00", "1.00", "10");
    char text[4096];
    struct {
        const char *line, *want;
    } bad[] = {
        {LOG_LINE("FGSM", "DM", "nan", "20.00", "2.00", "2.00", "10"), "not non-negative numbers"},
        {LOG_LINE("FGSM", "DM", "20.00", "inf", "2.00", "2.00", "10"), "not non-negative numbers"},
        {LOG_LINE("FGSM", "DM", "-5.00", "20.00", "2.00", "2.00", "10"), "not non-negative numbers"},
        {LOG_LINE("FGSM", "DM", "120.00", "20.00", "2.00", "2.00", "10"), "not a percentage"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", clean, bad[i].line);
        const char *p = put_file(dir, "DM_ConvNet_CIFAR10_10_evaluation_log.txt", text);
        int rc = run_cli(out, sizeof(out), "metrics %s --output-dir %s", p, dir);
        CHECK(rc == 1 && strstr(out, bad[i].want), "bad log line %zu: exit 1 with '%s' (%d): %s", i, bad[i].want, rc, out);
    }
    // results.json: a negative time, an accuracy over 100%
    const char *json_fmt = "{\"method\": \"%s\", \"dataset\": \"CIFAR10\", \"ipc\": \"%s\", \"clean\": {\"accuracy\": 50}, "
                           "\"attacks\": [{\"name\": \"FGSM\", \"untargeted\": {\"accuracy\": %s, \"seconds\": %s}}]}";
    snprintf(text, sizeof(text), json_fmt, "DM", "10", "20", "-1");
    int rc = run_cli(out, sizeof(out), "metrics %s --output-dir %s", put_file(dir, "a_results.json", text), dir);
    CHECK(rc == 1 && strstr(out, "not a duration"), "negative time: exit 1 (%d): %s", rc, out);
    snprintf(text, sizeof(text), json_fmt, "DM", "10", "101", "1");
    rc = run_cli(out, sizeof(out), "metrics %s --output-dir %s", put_file(dir, "a_results.json", text), dir);
    CHECK(rc == 1 && strstr(out, "not a percentage"), "accuracy 101: exit 1 (%d): %s", rc, out);
    // two methods: refused, not pooled under the first one's name
    snprintf(text, sizeof(text), json_fmt, "DM", "10", "20", "1");
    const char *a = put_file(dir, "dm_results.json", text);
    snprintf(text, sizeof(text), json_fmt, "BACON", "50", "20", "1");
    const char *b = put_file(dir, "bacon_results.json", text);
    rc = run_cli(out, sizeof(out), "metrics %s %s --output-dir %s", a, b, dir);
    CHECK(rc == 1 && strstr(out, "mix methods"), "two methods: exit 1 (%d): %s", rc, out);
    // a method that would put the output elsewhere, or break the Markdown tables
    const char *evil[] = {"../../escaped", "/tmp/escaped", "a|b", "a\\nb"};
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), json_fmt, evil[i], "10", "20", "1");
        rc = run_cli(out, sizeof(out), "metrics %s --output-dir %s/out", put_file(dir, "evil_results.json", text), dir);
        CHECK(rc == 1 && strstr(out, "\"method\""), "method '%s': exit 1 (%d): %s", evil[i], rc, out);
    }
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s/..' -maxdepth 2 -name '*escaped*' -newer '%s' 2>/dev/null)\" && "
             "test ! -e /tmp/escaped_metrics_beard.json", dir, a);
    CHECK(system(cmd) == 0, "no file appeared outside the output folder");
    // an unwritable output folder fails before any file is read
    rc = run_cli(out, sizeof(out), "metrics /nonexistent/x_evaluation_log.txt --output-dir /proc/beard");
    CHECK(rc == 1 && strstr(out, "--output-dir") && !strstr(out, "/nonexistent"), "unwritable --output-dir first (%d): %s", rc, out);
}

static void test_cli(void) {
    if (!beard_bin()) {
        test_skip("CLI tests: no beard binary ($BEARD or build/beard)");
        return;
    }
    static char out[1 << 16];
    const char *dir = test_tmp("metrics_out");
    int rc;
    const char *logs = shared_path("beard/logs", "beard metrics on BEARD's BACON logs");
    if (logs) {
        rc = run_cli(out, sizeof(out), "metrics %s/BACON_ConvNet_CIFAR10_1_evaluation_log.txt "
                                       "%s/BACON_ConvNet_CIFAR10_10_evaluation_log.txt "
                                       "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt --bootstrap 0 --output-dir %s",
                     logs, logs, logs, dir);
        CHECK(rc == 0, "beard metrics on the BACON logs exits 0 (%d): %s", rc, out);
        CHECK(strstr(out, "| Targeted | 58.88 | 12 | 36.83 | 29.83 | 33.33 |") != NULL, "targeted RRM 36.83 in the table");
        CHECK(strstr(out, "| Untargeted | 58.88 | 18 | 32.87 | 21.53 | 27.20 |") != NULL,
              "untargeted AEM 21.53, CREIM 27.20 in the table");
        CHECK(strstr(out, "| BACON | CIFAR10 | 1 | Targeted | 44.95 | 4 | 19.78 | 29.70 | 24.74 |") != NULL,
              "IPC 1 row, first (sorted by IPC)");
        CHECK(!strstr(out, "nan") && !strstr(out, "NaN"), "no NaN printed");
        char path[1024];
        snprintf(path, sizeof(path), "%s/bacon_metrics_beard.json", dir);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL, "metrics JSON written to %s", path);
        if (f) {
            static char buf[1 << 17];
            size_t k = fread(buf, 1, sizeof(buf) - 1, f);
            buf[k] = 0;
            fclose(f);
            cJSON *j = cJSON_Parse(buf);
            cJSON *rrm = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "combined_results"), "targeted"), "RRM");
            CHECK(cJSON_IsNumber(rrm) && same2(rrm->valuedouble, "36.83"), "JSON combined targeted RRM");
            cJSON *dft = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "single_adversary"), "Deepfool"), "targeted");
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(dft, "RRS")), "an undefined figure is null in JSON");
            cJSON_Delete(j);
        }
        snprintf(path, sizeof(path), "%s/bacon_metrics_beard.csv", dir);
        f = fopen(path, "r");
        CHECK(f != NULL, "metrics CSV written");
        if (f) {
            char line[512];
            CHECK(fgets(line, sizeof(line), f) && !strncmp(line, "scope,file,method", 17), "CSV header");
            fclose(f);
        }
    }
    // rome and alpha options
    rc = run_cli(out, sizeof(out), "metrics " FIX "rerun_evaluation_log.txt --metrics-type rome --alpha 0.7 "
                                   "--bootstrap 0 --output-dir %s", dir);
    CHECK(rc == 0 && strstr(out, "rome RR, alpha 0.70"), "--metrics-type rome --alpha 0.7 (%d): %s", rc, out);

    // error paths: exit status and a clear message
    rc = run_cli(out, sizeof(out), "metrics " FIX "no_clean_evaluation_log.txt --output-dir %s", dir);
    CHECK(rc == 1 && strstr(out, "no Clean line"), "no Clean line: exit 1 with a message (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "metrics /nonexistent/x_evaluation_log.txt --output-dir %s", dir);
    CHECK(rc == 1 && strstr(out, "/nonexistent/x_evaluation_log.txt"), "missing file: exit 1 naming it (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "metrics " FIX "malformed_evaluation_log.txt --output-dir %s", dir);
    CHECK(rc == 1 && strstr(out, "malformed number"), "malformed log: exit 1 (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "metrics --output-dir %s", dir);
    CHECK(rc == 2, "no files: usage error (%d)", rc);
    rc = run_cli(out, sizeof(out), "metrics " FIX "single_attack_evaluation_log.txt --alpha 2 --output-dir %s", dir);
    CHECK(rc == 2 && strstr(out, "--alpha"), "--alpha 2: usage error (%d)", rc);
    rc = run_cli(out, sizeof(out), "metrics " FIX "single_attack_evaluation_log.txt --metrics-type foo --output-dir %s", dir);
    CHECK(rc == 2 && strstr(out, "metrics-type"), "bad --metrics-type: usage error (%d)", rc);
    rc = run_cli(out, sizeof(out), "metrics " FIX "degenerate_evaluation_log.txt --output-dir %s", dir);
    CHECK(rc == 0 && !strstr(out, "nan") && strstr(out, "n/a"), "degenerate inputs: defined figures, no NaN (%d)", rc);
    // two runs at one IPC of one method are one run given twice (a log and its own
    // results.json, or a rerun): refused, not counted twice
    rc = run_cli(out, sizeof(out), "metrics " FIX "degenerate_evaluation_log.txt " FIX
                                   "single_attack_evaluation_log.txt --output-dir %s", dir);
    CHECK(rc == 1 && strstr(out, "one run per IPC"), "the same IPC twice: exit 1 (%d): %s", rc, out);
    char badjson[1024];
    snprintf(badjson, sizeof(badjson), "%s/bad_results.json", dir);
    FILE *f = fopen(badjson, "w");
    if (f) fputs("{\"attacks\": [", f), fclose(f);
    rc = run_cli(out, sizeof(out), "metrics %s --output-dir %s", badjson, dir);
    CHECK(rc == 1 && strstr(out, "invalid JSON"), "truncated results.json: exit 1 (%d): %s", rc, out);
    test_strict(dir);
}

int main(void) {
    test_formulas();
    test_writer();
    test_bacon();
    test_degenerate();
    test_json_runs();
    test_cli();
    return test_done("test_metrics");
}
