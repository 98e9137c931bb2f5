/*
 * test_leaderboard.c: `beard leaderboard` and its site.
 *
 * 1. A store written here with known figures (four methods, one adversarially trained,
 *    one with two seeds, a full-size reference, two IPCs and a third for the reference,
 *    both semantics, per-sample outcomes): the boards' RR, AE, CREI (per IPC and pooled),
 *    AE from passes, +- over seeds and bootstrap intervals against the formulas computed
 *    here; published figures imported from a small CSV of our own (not BEARD's numbers)
 *    appear as unranked reference rows; all four figure kinds are written.
 * 2. The site in headless Chromium (Debian's chromium, scripts/deps.sh): a harness page
 *    loads it in an iframe, reads the rendered tables (the expected rows, in rank order),
 *    clicks a column header (the rows reorder, numerically, n/a last; a second click
 *    reverses), types into the filter, and checks that every figure loaded; a screenshot
 *    is kept as build/test-artifacts/leaderboard-*.png.
 * 3. With ../shared: BEARD's three BACON logs give the paper's figures on the board
 *    (targeted RRM 36.83, untargeted AEM 21.53 and CREI 27.20), and the shipped BEARD grid
 *    (configs/beard_model_pool.json, the six checkpoints; here with FGSM and PGD on 16
 *    images) produces a site that Chromium renders with all six methods.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../src/core/parallel.h"
#include "../src/io/file.h"
#include "../src/store/store.h"
#include "harness.h"

static char beard[PATH_MAX], dir[600], root[PATH_MAX];


// ----------------------------------------------------------------------------
// a store with known figures

enum { N = 40 };
static Store *crafted;

static void put(const char *kind, const char *method, const char *ipc, const char *ta, int run, const char *sem,
                const char *attack, int targeted, double acc, double clean, double sec, double passes) {
    StoreRow r;
    store_row_init(&r);
    snprintf(r.kind, sizeof(r.kind), "%s", kind);
    snprintf(r.key, sizeof(r.key), "%s/CIFAR10/%s/ipc%s/ConvNet/%s/run%d/%s/%s/%s", kind, method, ipc, ta, run, attack,
             targeted ? "targeted" : "untargeted", sem);
    snprintf(r.hash, sizeof(r.hash), "h");
    r.config = xstrdup(!strcmp(method, "Full") && !strcmp(kind, "train") ? "{\"source\":{\"kind\":\"src_dataset\"}}" : "{}");
    if (!strcmp(attack, "PGD4")) { // a second eps of PGD, for the eps figure
        free(r.config);
        r.config = xstrdup("{\"attack\":{\"name\":\"PGD\",\"params\":{\"eps\":0.0156863}}}");
    } else if (!strcmp(attack, "PGD")) {
        free(r.config);
        r.config = xstrdup("{\"attack\":{\"name\":\"PGD\",\"params\":{\"eps\":0.0313725}}}");
    }
    snprintf(r.dataset, sizeof(r.dataset), "CIFAR10");
    snprintf(r.method, sizeof(r.method), "%s", method);
    snprintf(r.ipc, sizeof(r.ipc), "%s", ipc);
    snprintf(r.arch, sizeof(r.arch), "ConvNet");
    snprintf(r.train_attack, sizeof(r.train_attack), "%s", ta);
    r.run = run;
    if (!strcmp(kind, "attack")) {
        snprintf(r.attack, sizeof(r.attack), "%s", attack);
        snprintf(r.attack_name, sizeof(r.attack_name), "%s", !strncmp(attack, "PGD", 3) ? "PGD" : attack);
        r.targeted = targeted;
    }
    if (sem) snprintf(r.semantics, sizeof(r.semantics), "%s", sem);
    r.n = N;
    r.accuracy = acc, r.clean_accuracy = clean, r.seconds = sec, r.passes = passes;
    // per-sample outcomes that give these accuracies (the robust samples among the correct)
    int nc = (int)lround(clean * N / 100), na = (int)lround(acc * N / 100);
    r.clean_ok = calloc(N, 1);
    for (int i = 0; i < nc; i++) r.clean_ok[i] = 1;
    if (!strcmp(kind, "attack")) {
        r.adv_ok = calloc(N, 1);
        for (int i = 0; i < na; i++) r.adv_ok[i] = 1;
    }
    snprintf(r.finished, sizeof(r.finished), "2026-01-01T00:00:00Z");
    int w;
    Err e;
    CHECK(store_put(crafted, &r, 0, &w, &e) == 0, "%s", e.msg);
    store_row_free(&r);
}

// one model at one IPC in one semantics: clean (time 1), FGSM (2 s, 2 passes), PGD (10 s,
// 20 passes), PGD4 (eps 4/255: 8 s, 20 passes); accuracies as given
static void model(const char *method, const char *ipc, const char *ta, int run, const char *sem, double c, double ft,
                  double fu, double pt, double pu) {
    put("clean", method, ipc, ta, run, sem, "Clean", 0, c, c, 1, 1);
    put("attack", method, ipc, ta, run, sem, "FGSM", 1, ft, c, 2, 2);
    put("attack", method, ipc, ta, run, sem, "FGSM", 0, fu, c, 2, 2);
    put("attack", method, ipc, ta, run, sem, "PGD", 1, pt, c, 10, 20);
    put("attack", method, ipc, ta, run, sem, "PGD", 0, pu, c, 10, 20);
    put("attack", method, ipc, ta, run, sem, "PGD4", 0, (pu + c) / 2, c, 8, 20);
}

static void craft(const char *path) {
    Err e;
    CHECK(store_open(&crafted, path, 1, &e) == 0, "%s", e.msg);
    for (int s = 0; s < 2; s++) {
        const char *sem = s ? "pixel" : "beard";
        double d = s ? 10 : 0; // pixel semantics: lower robust accuracies
        model("A", "1", "None", 0, sem, 50, 30 - d, 20 - d, 25 - d, 10 - d);
        model("A", "10", "None", 0, sem, 60, 40 - d, 30 - d, 35 - d, 20 - d);
        model("B", "1", "None", 0, sem, 55, 40 - d, 35 - d, 30 - d, 25 - d);
        model("B", "10", "None", 0, sem, 65, 45 - d, 40 - d, 42.5 - d, 37.5 - d);
        model("B", "1", "PGD", 0, sem, 45, 40 - d, 37.5 - d, 37.5 - d, 35 - d);
        model("B", "10", "PGD", 0, sem, 50, 45 - d, 42.5 - d, 42.5 - d, 40 - d);
        model("C", "1", "None", 0, sem, 40, 25 - d, 15 - d, 20 - d, 12.5 - d);
        model("C", "1", "None", 1, sem, 42.5, 27.5 - d, 20 - d, 22.5 - d, 15 - d);
        model("Full", "5000", "None", 0, sem, 80, 50 - d, 30 - d, 40 - d, 20 - d);
    }
    put("train", "Full", "5000", "None", 0, NULL, "Clean", 0, 80, 80, 100, NAN);
    store_close(crafted);
}

static double rr(double c, const double *a, int n) {
    double mean = 0, mn = INFINITY;
    for (int i = 0; i < n; i++) mean += a[i] / n, mn = fmin(mn, a[i]);
    return 100 * (1 - (c - mean) / (c - mn));
}
static double ae(double tc, const double *t, int n) {
    double mean = 0, mx = -INFINITY;
    for (int i = 0; i < n; i++) mean += t[i] / n, mx = fmax(mx, t[i]);
    return 100 * (mean - tc) / (mx - tc);
}

static const cJSON *jget(const cJSON *o, const char *path) { // "a.b.c"
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, ".")) o = cJSON_GetObjectItemCaseSensitive(o, tok);
    return o;
}
static double jnum(const cJSON *o, const char *path) {
    const cJSON *v = jget(o, path);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const cJSON *find_row(const cJSON *lb, const char *ipc, const char *method, const char *ta, const char *source) {
    const cJSON *b, *r;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(lb, "boards")) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(b, "dataset")->valuestring, "CIFAR10") ||
            strcmp(cJSON_GetObjectItemCaseSensitive(b, "ipc")->valuestring, ipc))
            continue;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(b, "rows")) {
            if (!strcmp(cJSON_GetObjectItemCaseSensitive(r, "method")->valuestring, method) &&
                !strcmp(cJSON_GetObjectItemCaseSensitive(r, "train_attack")->valuestring, ta) &&
                !strncmp(cJSON_GetObjectItemCaseSensitive(r, "source")->valuestring, source, strlen(source)))
                return r;
        }
    }
    return NULL;
}

static cJSON *load_json(const char *rel) {
    char p[900];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    uint8_t *buf;
    size_t n;
    Err e;
    if (file_read_all(p, 1 << 26, &buf, &n, &e)) {
        CHECK(0, "%s", e.msg);
        return NULL;
    }
    cJSON *j = cJSON_Parse((const char *)buf);
    free(buf);
    CHECK(j != NULL, "%s is not JSON", p);
    return j;
}

#define NEAR(x, y) (fabs((x) - (y)) < 1e-6)

// the store's and the leaderboard's command lines: errors are one line, exports parse
static void test_cli_store(void) {
    char out[1 << 16];
    struct {
        const char *args;
        int status;
        const char *must;
    } cases[] = {{"leaderboard", 2, "--store"},
                 {"leaderboard --store missing.db", 1, "no store at missing.db"},
                 {"leaderboard --store crafted.db --alpha 2", 2, "--alpha"},
                 {"store ls missing.db", 1, "no store at missing.db"},
                 {"store frobnicate crafted.db", 2, "unknown action"},
                 {"store import crafted.db", 2, "--published"},
                 {"store show crafted.db no/such/key", 1, "no row with key no/such/key"},
                 {"store export crafted.db --format xml", 2, "--format"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = run_sh(out, sizeof(out), dir, "%s %s", beard, cases[i].args);
        int lines = 0;
        for (char *p = out; *p; p++) lines += *p == '\n';
        CHECK(st == cases[i].status && lines == 1 && !strncmp(out, "beard ", 6) && strstr(out, cases[i].must),
              "beard %s: status %d (want %d), want one line naming '%s':\n%s", cases[i].args, st, cases[i].status,
              cases[i].must, out);
    }
    int st = run_sh(out, sizeof(out), dir, "%s store check crafted.db", beard);
    CHECK(st == 0 && strstr(out, "integrity ok; 109 rows (1 train, 18 clean, 90 attack, 0 other)"), "store check: %d\n%s", st, out);
    st = run_sh(out, sizeof(out), dir, "%s store export crafted.db --format json --out export.json --per-sample", beard);
    CHECK(st == 0, "store export: %d\n%s", st, out);
    cJSON *j = load_json("export.json");
    CHECK(j && cJSON_GetArraySize(j) == 109 && cJSON_GetArraySize(jget(cJSON_GetArrayItem(j, 0), "clean_correct")) == N,
          "the JSON export has every row with its per-sample outcomes");
    cJSON_Delete(j);
    st = run_sh(out, sizeof(out), dir, "%s store export crafted.db | wc -l", beard);
    CHECK(st == 0 && atoi(out) == 110, "the CSV export: a header and 109 rows (%s)", out);
    st = run_sh(out, sizeof(out), dir, "%s store show crafted.db attack/CIFAR10/A/ipc1/ConvNet/None/run0/PGD/targeted/beard", beard);
    CHECK(st == 0 && strstr(out, "\"accuracy\":\t25"), "store show: %d\n%.400s", st, out);
}

static void test_figures(void) {
    char out[8192];
    char store[800];
    snprintf(store, sizeof(store), "%s/crafted.db", dir);
    craft(store);
    FILE *f = fopen("/dev/null", "r");
    if (f) fclose(f);
    char csv[800];
    snprintf(csv, sizeof(csv), "%s/mine.csv", dir);
    f = fopen(csv, "w");
    fputs("# figures made up for this test (not BEARD's)\nsource,dataset,ipc,method,mode,semantics,crei,rrm,aem\n"
          "made-up,CIFAR10,all,A,untargeted,beard,11.5,22.25,0.75\nmade-up,CIFAR10,1,Z,untargeted,beard,1,2,3\n",
          f);
    fclose(f);
    int s = run_sh(out, sizeof(out), dir, "%s leaderboard --store crafted.db --out site1 --published mine.csv --png --bootstrap 200", beard);
    CHECK(s == 0, "beard leaderboard: %d\n%s", s, out);
    CHECK(strstr(out, "4 boards"), "four boards (unified, IPC 1, 10, 5000): %s", out);
    cJSON *lb = load_json("site1/leaderboard.json");
    if (!lb) return;
    // A at IPC 1, beard semantics, untargeted: c 50, a {20, 10, 30}, t_c 1, t {2, 10, 8}
    double a1[] = {20, 10, 30}, t1[] = {2, 10, 8}, p1[] = {3, 21, 21};
    const cJSON *r = find_row(lb, "1", "A", "None", "beard");
    CHECK(r != NULL, "no row for A at IPC 1");
    double want_rr = rr(50, a1, 3), want_ae = ae(1, t1, 3);
    CHECK(NEAR(jnum(r, "beard.untargeted.RRM.value"), want_rr), "A ipc1 RR %g, want %g", jnum(r, "beard.untargeted.RRM.value"), want_rr);
    CHECK(NEAR(jnum(r, "beard.untargeted.AEM.value"), want_ae), "A ipc1 AE %g, want %g", jnum(r, "beard.untargeted.AEM.value"), want_ae);
    CHECK(NEAR(jnum(r, "beard.untargeted.CREI.value"), (want_rr + want_ae) / 2), "A ipc1 CREI");
    CHECK(NEAR(jnum(r, "beard.untargeted.AEM_passes.value"), ae(1, p1, 3)), "A ipc1 AE from passes %g, want %g",
          jnum(r, "beard.untargeted.AEM_passes.value"), ae(1, p1, 3));
    double lo = jnum(r, "beard.untargeted.CREI.ci95_lo"), hi = jnum(r, "beard.untargeted.CREI.ci95_hi");
    CHECK(isfinite(lo) && isfinite(hi) && lo <= hi, "A ipc1: a bootstrap interval [%g, %g]", lo, hi);
    CHECK(NEAR(jnum(r, "beard.untargeted.accuracy.FGSM.value"), 20), "A ipc1 FGSM accuracy");
    // targeted: FGSM 30, PGD 25 (PGD4 has no targeted row)
    double at[] = {30, 25}, tt[] = {2, 10};
    CHECK(NEAR(jnum(r, "beard.targeted.RRM.value"), rr(50, at, 2)) && NEAR(jnum(r, "beard.targeted.AEM.value"), ae(1, tt, 2)),
          "A ipc1 targeted figures");
    // pixel semantics differ
    double ap[] = {10, 0, 30 - 5}; // pixel: FGSM 10, PGD 0, PGD4 (0 + 50) / 2
    ap[2] = 25;
    CHECK(NEAR(jnum(r, "pixel.untargeted.RRM.value"), rr(50, ap, 3)), "A ipc1 pixel RR %g, want %g",
          jnum(r, "pixel.untargeted.RRM.value"), rr(50, ap, 3));
    // unified: IPC 1 and 10 pooled (c the mean of 50 and 60)
    double au[] = {20, 10, 30, 30, 20, 40}, tu[] = {2, 10, 8, 2, 10, 8};
    r = find_row(lb, "all", "A", "None", "beard");
    CHECK(r && NEAR(jnum(r, "beard.untargeted.RRM.value"), rr(55, au, 6)) && NEAR(jnum(r, "beard.untargeted.AEM.value"), ae(1, tu, 6)),
          "A unified RRM %g (want %g)", r ? jnum(r, "beard.untargeted.RRM.value") : NAN, rr(55, au, 6));
    // two seeds: mean and +- std (np.std)
    double c0[] = {15, 12.5, 26.25}, c1[] = {20, 15, 28.75}; // untargeted FGSM, PGD, PGD4 per seed
    double t3[] = {2, 10, 8};
    double cr0 = (rr(40, c0, 3) + ae(1, t3, 3)) / 2, cr1 = (rr(42.5, c1, 3) + ae(1, t3, 3)) / 2;
    r = find_row(lb, "1", "C", "None", "beard");
    CHECK(r && NEAR(jnum(r, "beard.untargeted.CREI.value"), (cr0 + cr1) / 2) &&
              NEAR(jnum(r, "beard.untargeted.CREI.sd"), fabs(cr0 - cr1) / 2) && jnum(r, "seeds") == 2,
          "C: the mean and sd over two seeds: %g +- %g, want %g +- %g", r ? jnum(r, "beard.untargeted.CREI.value") : NAN,
          r ? jnum(r, "beard.untargeted.CREI.sd") : NAN, (cr0 + cr1) / 2, fabs(cr0 - cr1) / 2);
    CHECK(r && !cJSON_IsNumber(jget(r, "beard.untargeted.CREI.ci95_lo")), "C: no bootstrap interval with seeds (sd instead)");
    // the reference, the adversarially trained row, the published rows
    r = find_row(lb, "all", "Full", "None", "beard");
    CHECK(r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "reference")) && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "rank")),
          "Full is the unranked full-size reference");
    r = find_row(lb, "all", "B", "PGD", "beard");
    CHECK(r && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(r, "rank")), "B + PGD-AT is ranked next to B");
    r = find_row(lb, "all", "A", "None", "published");
    CHECK(r && jnum(r, "beard.untargeted.CREI.value") == 11.5 && jnum(r, "beard.untargeted.RRM.value") == 22.25 &&
              cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "rank")),
          "the published row, unranked");
    // ranks by CREI (beard, untargeted)
    const cJSON *b, *row;
    cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(lb, "boards")) {
        double prev = INFINITY;
        int rank = 0;
        cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(b, "rows")) {
            const cJSON *rk = cJSON_GetObjectItemCaseSensitive(row, "rank");
            if (!cJSON_IsNumber(rk)) continue;
            double v = jnum(row, "beard.untargeted.CREI.value");
            CHECK(rk->valueint == ++rank && v <= prev, "ranks follow CREI (%s %s: rank %d, CREI %g after %g)",
                  cJSON_GetObjectItemCaseSensitive(b, "ipc")->valuestring, cJSON_GetObjectItemCaseSensitive(row, "method")->valuestring,
                  rk->valueint, v, prev);
            prev = v;
        }
    }
    cJSON_Delete(lb);
    test_cli_store();
    // the figures
    const char *figs[] = {"fig4_CIFAR10_beard_untargeted", "fig4_CIFAR10_pixel_targeted", "fig5_CIFAR10_beard", "fig6_CIFAR10_pixel",
                          "figeps_CIFAR10_beard_PGD"};
    for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++)
        for (int k = 0; k < 2; k++) {
            char p[900];
            struct stat sb;
            snprintf(p, sizeof(p), "%s/site1/fig/%s.%s", dir, figs[i], k ? "png" : "svg");
            CHECK(stat(p, &sb) == 0 && sb.st_size > 2000, "figure %s (%ld bytes)", p, (long)(stat(p, &sb) == 0 ? sb.st_size : -1));
        }
    char p[900];
    snprintf(p, sizeof(p), "%s/site1/fig/fig4_CIFAR10_beard_untargeted.svg", dir);
    uint8_t *svg;
    size_t n;
    Err e;
    if (!file_read_all(p, 1 << 24, &svg, &n, &e)) {
        CHECK(strstr((char *)svg, "<svg") && strstr((char *)svg, "<path"), "the SVG is cairo's");
        free(svg);
    }
    snprintf(p, sizeof(p), "%s/site1/leaderboard.md", dir);
    if (!file_read_all(p, 1 << 24, &svg, &n, &e)) {
        CHECK(strstr((char *)svg, "## CIFAR10, unified (all IPCs)") && strstr((char *)svg, "| pub | A |"), "Markdown boards");
        free(svg);
    }
}

// ----------------------------------------------------------------------------
// Chromium

static int have_chromium(void) { return run_sh(NULL, 0, dir, "command -v chromium >/dev/null") == 0; }

static char *html_text(const char *s) { // the harness's <pre id="out">, unescaped
    const char *a = strstr(s, "<pre id=\"out\">");
    if (!a) return NULL;
    a += 14;
    const char *b = strstr(a, "</pre>");
    if (!b) return NULL;
    char *t = malloc(b - a + 1);
    size_t k = 0;
    for (const char *p = a; p < b; p++) {
        if (!strncmp(p, "&amp;", 5)) t[k++] = '&', p += 4;
        else if (!strncmp(p, "&lt;", 4)) t[k++] = '<', p += 3;
        else if (!strncmp(p, "&gt;", 4)) t[k++] = '>', p += 3;
        else if (!strncmp(p, "&quot;", 6)) t[k++] = '"', p += 5;
        else t[k++] = *p;
    }
    t[k] = 0;
    return t;
}

static const char *harness =
    "<!DOCTYPE html><html><body><pre id=\"out\">pending</pre>\n"
    "<iframe id=\"f\" src=\"%s/index.html\" width=\"1400\" height=\"900\"></iframe>\n<script>\n"
    "document.getElementById('f').addEventListener('load', function () {\n"
    " var d = this.contentDocument, r = {};\n"
    " try {\n"
    "  var t = d.getElementById('%s');\n"
    "  var rows = function () { return Array.prototype.slice.call(t.tBodies[0].rows); };\n"
    "  r.boards = Array.prototype.map.call(d.querySelectorAll('table.lb'), function (x) { return x.id; });\n"
    "  r.rows = rows().map(function (x) { return x.getAttribute('data-method') + '|' + x.className + '|' + x.cells[0].textContent; });\n"
    "  var th = t.querySelector('th[data-key=\"%s\"]'), col = th.cellIndex;\n"
    "  var vals = function () { return rows().map(function (x) { return x.cells[col].getAttribute('data-v'); }); };\n"
    "  r.before = vals(); th.click(); r.first = vals(); r.first_dir = th.getAttribute('data-dir');\n"
    "  th.click(); r.second = vals(); r.second_dir = th.getAttribute('data-dir');\n"
    "  var inp = d.querySelector('input.filter'); inp.value = '%s'; inp.dispatchEvent(new Event('input'));\n"
    "  r.visible = rows().filter(function (x) { return x.style.display !== 'none'; }).length;\n"
    "  r.images = Array.prototype.map.call(d.images, function (i) { return i.getAttribute('src') + '|' + i.naturalWidth; });\n"
    "  r.text = d.body.textContent.replace(/\\s+/g, ' ');\n"
    " } catch (e) { r.error = String(e); }\n"
    " document.getElementById('out').textContent = JSON.stringify(r);\n"
    "});\n</script></body></html>\n";

// sorted descending then ascending (numbers; empty = n/a last), and changed the order
static void check_sorted(const cJSON *first, const cJSON *second, const cJSON *before, const char *what) {
    int n = cJSON_GetArraySize(first);
    double prev = INFINITY;
    int seen_na = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(first, i);
        if (!cJSON_IsString(v) || !*v->valuestring) {
            seen_na = 1;
            continue;
        }
        double x = atof(v->valuestring);
        ok &= !seen_na && x <= prev;
        prev = x;
    }
    CHECK(ok, "%s: the first click sorts descending with n/a last", what);
    prev = -INFINITY, seen_na = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(second, i);
        if (!cJSON_IsString(v) || !*v->valuestring) {
            seen_na = 1;
            continue;
        }
        double x = atof(v->valuestring);
        ok &= !seen_na && x >= prev;
        prev = x;
    }
    CHECK(ok, "%s: the second click sorts ascending with n/a last", what);
    char *a = cJSON_PrintUnformatted(before), *b = cJSON_PrintUnformatted(first);
    CHECK(strcmp(a, b) != 0, "%s: sorting did not reorder the rows (%s)", what, a);
    free(a), free(b);
}

// renders site/ in Chromium; returns the harness's findings (cJSON) or NULL
static cJSON *browse(const char *site, const char *table, const char *sort_key, const char *filter, const char *shot) {
    char h[4096], p[900], out[1 << 16];
    snprintf(h, sizeof(h), harness, site, table, sort_key, filter);
    snprintf(p, sizeof(p), "%s/harness-%s.html", dir, site);
    FILE *f = fopen(p, "w");
    fputs(h, f);
    fclose(f);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
                        "--allow-file-access-from-files --virtual-time-budget=15000";
    int s = run_sh(out, sizeof(out), dir, "HOME=%s timeout 120 chromium %s --user-data-dir=%s/chrome --dump-dom file://%s 2>/dev/null", dir,
               flags, dir, p);
    CHECK(s == 0, "chromium --dump-dom: status %d", s);
    char *txt = html_text(out);
    CHECK(txt != NULL, "the harness page did not render: %.300s", out);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    CHECK(j != NULL, "the harness wrote no findings: %.300s", txt ? txt : "");
    free(txt);
    if (j && cJSON_GetObjectItemCaseSensitive(j, "error"))
        CHECK(0, "the page's script failed: %s", cJSON_GetObjectItemCaseSensitive(j, "error")->valuestring);
    // the screenshot, kept under build/
    char shotp[PATH_MAX + 64];
    snprintf(shotp, sizeof(shotp), "%s/build/test-artifacts", root);
    mkdir(shotp, 0755);
    snprintf(shotp, sizeof(shotp), "%s/build/test-artifacts/%s.png", root, shot);
    s = run_sh(out, sizeof(out), dir, "HOME=%s timeout 120 chromium %s --user-data-dir=%s/chrome --window-size=1400,2200 --screenshot=%s "
                             "file://%s/%s/index.html 2>/dev/null",
           dir, flags, dir, shotp, dir, site);
    struct stat sb;
    CHECK(s == 0 && stat(shotp, &sb) == 0 && sb.st_size > 20000, "the screenshot %s", shotp);
    return j;
}

static void test_browser(void) {
    if (!have_chromium()) {
        test_skip("no chromium (scripts/deps.sh installs Debian's chromium): the site is not checked in a browser");
        return;
    }
    cJSON *j = browse("site1", "board-CIFAR10-all", "rrm-pixel-untargeted", "PGD", "leaderboard-crafted");
    if (!j) return;
    const cJSON *boards = cJSON_GetObjectItemCaseSensitive(j, "boards");
    CHECK(cJSON_GetArraySize(boards) == 4 && !strcmp(cJSON_GetArrayItem(boards, 0)->valuestring, "board-CIFAR10-all"),
          "four boards rendered, the unified one first");
    // the expected rows, in order: ranked B+PGD/B/A/C by CREI, then the reference, then published
    const char *want[] = {"|ranked|1", "|ranked|2", "|ranked|3", "|ranked|4", "Full|reference|ref", "A|published|pub"};
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    CHECK(cJSON_GetArraySize(rows) == 6, "six rows on the unified board, got %d", cJSON_GetArraySize(rows));
    for (int i = 0; i < 6 && i < cJSON_GetArraySize(rows); i++)
        CHECK(strstr(cJSON_GetArrayItem(rows, i)->valuestring, want[i]) != NULL, "row %d is '%s', want '...%s'", i,
              cJSON_GetArrayItem(rows, i)->valuestring, want[i]);
    check_sorted(cJSON_GetObjectItemCaseSensitive(j, "first"), cJSON_GetObjectItemCaseSensitive(j, "second"),
                 cJSON_GetObjectItemCaseSensitive(j, "before"), "RRM (pixel, untargeted)");
    CHECK(jnum(j, "visible") == 1, "the filter 'PGD' leaves the one adversarially trained row, got %g", jnum(j, "visible"));
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(j, "images"), *im;
    int loaded = 0;
    cJSON_ArrayForEach(im, imgs) {
        const char *bar = strrchr(im->valuestring, '|');
        CHECK(bar && atoi(bar + 1) > 0, "a figure did not load: %s", im->valuestring);
        loaded += bar && atoi(bar + 1) > 0;
    }
    CHECK(loaded >= 9, "the site shows the figures (%d loaded)", loaded);
    cJSON_Delete(j);
}

// ----------------------------------------------------------------------------
// ../shared: BEARD's BACON logs, and the shipped grid on the six checkpoints

static void test_shared(void) {
    const char *logs = shared_path("beard/logs", "BEARD's BACON logs on the board");
    const char *pool = shared_path("beard/model_pool", "the shipped BEARD grid");
    const char *data = shared_path("data", "the shipped BEARD grid");
    if (!logs) return;
    char alogs[PATH_MAX], out[1 << 16];
    if (!realpath(logs, alogs)) return;
    int s = run_sh(out, sizeof(out), dir,
               "%s run --import-log %s/BACON_ConvNet_CIFAR10_1_evaluation_log.txt,%s/BACON_ConvNet_CIFAR10_10_evaluation_log.txt,"
               "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt --published %s/configs/published/beard_leaderboard_2024.csv "
               "--store bacon.db --quiet && %s leaderboard --store bacon.db --out site2",
               beard, alogs, alogs, alogs, root, beard);
    CHECK(s == 0, "BACON logs: %d\n%s", s, out);
    cJSON *lb = load_json("site2/leaderboard.json");
    const cJSON *r = lb ? find_row(lb, "all", "BACON", "None", "BEARD log") : NULL;
    CHECK(r != NULL, "no BACON row from BEARD's logs");
    if (r) {
        double trr = jnum(r, "beard.targeted.RRM.value"), uae = jnum(r, "beard.untargeted.AEM.value"),
               ucr = jnum(r, "beard.untargeted.CREI.value");
        CHECK(fabs(trr - 36.83) < 0.005 && fabs(uae - 21.53) < 0.005 && fabs(ucr - 27.20) < 0.005,
              "BACON: targeted RRM %.4f, untargeted AEM %.4f, CREI %.4f; the paper: 36.83, 21.53, 27.20", trr, uae, ucr);
    }
    cJSON_Delete(lb);
    if (getenv("BEARD_SANITIZED") || !pool || !data) {
        if (getenv("BEARD_SANITIZED")) printf("SKIP: the shipped grid's site is checked in the optimised build only\n");
        return;
    }
    char apool[PATH_MAX], adata[PATH_MAX];
    if (!realpath(pool, apool) || !realpath(data, adata)) return;
    // the shipped grid, with the suite's small share: FGSM and PGD on 16 images, both semantics
    // (its relative paths assume the repository root with ../shared beside it: given here)
    s = run_sh(out, sizeof(out), dir,
           "%s run --config %s/configs/beard_model_pool.json --data %s --model-pool %s --attack FGSM,PGD --limit 16 --threads 2 "
           "--import-log %s/BACON_ConvNet_CIFAR10_1_evaluation_log.txt,%s/BACON_ConvNet_CIFAR10_10_evaluation_log.txt,"
           "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt --published %s/configs/published/beard_leaderboard_2024.csv "
           "--store shipped.db --out shipped --quiet && %s leaderboard --store shipped.db --out site3",
           beard, root, adata, apool, alogs, alogs, alogs, root, beard);
    CHECK(s == 0, "the shipped grid: %d\n%s", s, out);
    if (!have_chromium()) return;
    cJSON *j = browse("site3", "board-CIFAR10-all", "crei-pixel-untargeted", "BACON", "leaderboard-beard-model-pool");
    if (!j) return;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows"), *it;
    const char *methods[] = {"BACON|ranked", "DC|ranked", "DM|ranked", "DSA|ranked", "IDM|ranked", "MTT|ranked", "BACON|log",
                             "IDM|published"};
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        int found = 0;
        cJSON_ArrayForEach(it, rows) found += !strncmp(it->valuestring, methods[m], strlen(methods[m]));
        CHECK(found == 1, "the unified board has one row %s (%d)", methods[m], found);
    }
    CHECK(cJSON_GetArraySize(rows) == 6 + 1 + 6, "6 measured + 1 BEARD log + 6 published rows, got %d", cJSON_GetArraySize(rows));
    check_sorted(cJSON_GetObjectItemCaseSensitive(j, "first"), cJSON_GetObjectItemCaseSensitive(j, "second"),
                 cJSON_GetObjectItemCaseSensitive(j, "before"), "CREI (pixel, untargeted) on the shipped grid");
    const cJSON *txt = cJSON_GetObjectItemCaseSensitive(j, "text");
    CHECK(cJSON_IsString(txt) && strstr(txt->valuestring, "27.20") && strstr(txt->valuestring, "21.53") && strstr(txt->valuestring, "36.83"),
          "the page shows BACON's published figures 27.20, 21.53, 36.83");
    int loaded = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "images")) {
        const char *bar = strrchr(it->valuestring, '|');
        loaded += bar && atoi(bar + 1) > 0;
    }
    CHECK(loaded >= 5, "figures on the shipped grid's site (%d)", loaded);
    cJSON_Delete(j);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    const char *b = beard_bin();
    if (!b || !realpath(b, beard) || !getcwd(root, sizeof(root))) {
        CHECK(0, "no beard binary (set $BEARD)");
        return test_done("test_leaderboard");
    }
    snprintf(dir, sizeof(dir), "%s", test_tmp("lb"));
    mkdir(dir, 0755);
    test_figures();
    test_browser();
    test_shared();
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (!g_fails && system(cmd)) {
    }
    return test_done("test_leaderboard");
}
