/*
 * test_blackbox.c: BEARD's black-box evaluation (src/evaluate/blackbox.c) and its log.
 *   - the config: load_file_model_<NAME> keys in BEARD's order, bad names refused;
 *   - the black-box line: written with both eval_accuracies dictionaries, read back as
 *     BEARD's convert_to_white_box.py reads it;
 *   - on ../shared (the six checkpoints, the first 64 test images): `beard evaluate`
 *     with BACON as the surrogate writes BEARD's lines byte for byte, times aside, against
 *     tests/fixtures/evaluate/blackbox_bacon64.txt (tests/scripts/gen_blackbox_log.py, a
 *     port of BEARD's evaluate_model_blackbox.py on torchattacks 3.5.1);
 *   - "surrogates": "all": a log per surrogate in convert_to_white_box.py's layout, the
 *     transfer matrix (its diagonal is the white-box accuracy), and `beard metrics` on a
 *     black-box log: one run per scored model, as the converter makes them.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/evaluate/beardlog.h"
#include "../src/evaluate/eval_config.h"
#include "../src/io/file.h"
#include "../src/metrics/metrics.h"
#include "harness.h"

static const char *names6[6] = {"DC", "DSA", "MTT", "DM", "IDM", "BACON"};
static const char *files6[6] = {"DC_ConvNet_CIFAR10_50_None.pth", "DSA_ConvNet_CIFAR10_50_None_0.6048.pth",
                                "MTT_ConvNet_CIFAR10_50_None_0.6966.pth", "DM_ConvNet_CIFAR10_50_None.pth",
                                "IDM_ConvNet_CIFAR10_50_None_0.6691.pth", "BACON_ConvNet_CIFAR10_50_None_0.6995.pth"};

static cJSON *parse(const char *text) {
    cJSON *j = cJSON_Parse(text);
    CHECK(j != NULL, "test JSON");
    return j;
}

static void test_config(void) {
    EvalConfig *c = malloc(sizeof(EvalConfig));
    Err e;
    cJSON *j = parse("{\"dataset\": \"CIFAR10\", \"load_file\": \"a.pth\", \"test_attack\": [\"Clean\"],"
                     " \"load_file_model_ROME\": \"r.pth\", \"load_file_model_X\": \"x.pth\","
                     " \"load_file_model_DC\": \"d.pth\", \"load_file_model_BACON\": \"b.pth\"}");
    CHECK(eval_config_from_json(c, j, &e) == 0, "black-box config: %s", e.msg);
    CHECK(c->n_models == 4 && !strcmp(c->model_names[0], "DC") && !strcmp(c->model_names[1], "BACON") &&
              !strcmp(c->model_names[2], "ROME") && !strcmp(c->model_names[3], "X") && !strcmp(c->model_files[2], "r.pth"),
          "models in BEARD's order, then the config's: %s %s %s %s", c->model_names[0], c->model_names[1],
          c->model_names[2], c->model_names[3]);
    CHECK(c->surrogates_all == 1, "surrogates default to all");
    cJSON_Delete(j);
    const char *bad[] = {
        "{\"dataset\": \"CIFAR10\", \"load_file\": \"a\", \"test_attack\": [\"Clean\"], \"load_file_model_a/b\": \"x\"}",
        "{\"dataset\": \"CIFAR10\", \"load_file\": \"a\", \"test_attack\": [\"Clean\"], \"load_file_model_\": \"x\"}",
        "{\"dataset\": \"CIFAR10\", \"load_file\": \"a\", \"test_attack\": [\"Clean\"], \"load_file_model_A\": 3}",
        "{\"dataset\": \"CIFAR10\", \"load_file\": \"a\", \"test_attack\": [\"Clean\"], \"surrogates\": \"some\"}",
    };
    for (int i = 0; i < 4; i++) {
        j = parse(bad[i]);
        CHECK(eval_config_from_json(c, j, &e) != 0, "bad black-box config %d refused", i);
        cJSON_Delete(j);
    }
    free(c);
}

static void test_line(void) {
    BeardLogLine l;
    memset(&l, 0, sizeof(l));
    snprintf(l.attack, sizeof(l.attack), "FGSM");
    snprintf(l.method, sizeof(l.method), "ROME");
    l.acc[0] = 53.99, l.acc[1] = 44.03, l.seconds[0] = 3.53, l.seconds[1] = 3.56;
    l.n_eval = 3;
    const char *nm[3] = {"DC", "DSA", "ROME"};
    double a0[3] = {0.309, 0.4376, 0.5399}, a1[3] = {0.3053, 0.4326, 0.4403};
    for (int i = 0; i < 3; i++) {
        snprintf(l.eval_names[i], sizeof(l.eval_names[0]), "%s", nm[i]);
        l.eval_acc[0][i] = a0[i], l.eval_acc[1][i] = a1[i];
    }
    const char *atk[2] = {"Clean", "FGSM"};
    int tg[2] = {1, 0};
    BeardLogContext c = {.dataset = "CIFAR10", .ipc = "50", .model = "ConvNet", .dsa = 1, .src_dataset = 1,
                         .attacks = atk, .n_attacks = 2, .targets = tg, .n_targets = 2};
    char buf[4096];
    beardlog_format(buf, sizeof(buf), &l, &c);
    const char *want = "FGSM attack on ROME: final acc is:  target_attack: 53.99 +- 0.00, attack time is 3.53; "
                       "non_target_attack: 44.03 +- 0.00, attack time is 3.56, dataset: CIFAR10, IPC: 50, DSA:True, "
                       "num_eval: 0, aug:False , model: ConvNet, attack_type: ['Clean', 'FGSM'], target_attack: "
                       "[True, False], src_dataset: True, eval_accuracies_target: {[{'DC': 0.309, 'DSA': 0.4376, "
                       "'ROME': 0.5399}]}, eval_accuracies_non_target: {[{'DC': 0.3053, 'DSA': 0.4326, 'ROME': 0.4403}]}";
    CHECK(!strcmp(buf, want), "black-box line:\n got %s\nwant %s", buf, want);
    char text[5000];
    snprintf(text, sizeof(text), "2025-03-24 15:44:30,931 - INFO - %s\n", buf);
    BeardLogFile f;
    Err e;
    CHECK(beardlog_parse(&f, text, "t", &e) == 0 && f.n == 1, "parse the black-box line");
    if (f.n == 1) {
        const BeardLogLine *r = &f.lines[0];
        CHECK(r->n_eval == 3 && !strcmp(r->eval_names[2], "ROME") && r->eval_acc[0][1] == 0.4376 &&
                  r->eval_acc[1][2] == 0.4403 && r->acc[0] == 53.99,
              "the black-box fields read back (%d models)", r->n_eval);
    }
    beardlog_file_free(&f);
}

// the log's lines, timestamps cut and "attack time is X" masked
static int masked_lines(const char *text, char lines[][8192], int max) {
    int n = 0;
    for (const char *s = text; *s && n < max;) {
        size_t len = strcspn(s, "\n");
        if (len < 8192 && memmem(s, len, " attack on ", 11)) {
            const char *m = memmem(s, len, " - INFO - ", 10);
            const char *b = m ? m + 10 : s;
            size_t k = 0;
            for (const char *p = b; p < s + len && k + 1 < 8192;) {
                if (!strncmp(p, "attack time is ", 15)) {
                    memcpy(lines[n] + k, "attack time is T", 16), k += 16, p += 15;
                    while (p < s + len && (p[0] == '.' || (p[0] >= '0' && p[0] <= '9'))) p++;
                } else lines[n][k++] = *p++;
            }
            lines[n][k] = 0;
            n++;
        }
        s += len + (s[len] == '\n');
    }
    return n;
}

static char *slurp(const char *path) {
    uint8_t *buf;
    size_t n;
    Err e;
    if (file_read_all(path, 1 << 26, &buf, &n, &e)) return NULL;
    char *s = realloc(buf, n + 1);
    s[n] = 0;
    return s;
}

static void write_config(const char *path, const char *pool, const char *data, const char *save, const char *attacks,
                         const char *surrogates, int n) {
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"dataset\": \"CIFAR10\", \"model\": \"ConvNet\", \"method\": \"BACON\", \"ipc\": \"50\",\n"
               " \"dsa_strategy\": \"color_crop_cutout_flip_scale_rotate\", \"syn_ce\": true, \"ce_weight\": 1,\n"
               " \"aug\": false, \"load_file\": \"%s/%s\",\n",
            pool, files6[5]);
    for (int i = 0; i < 6; i++) fprintf(f, " \"load_file_model_%s\": \"%s/%s\",\n", names6[i], pool, files6[i]);
    fprintf(f, " \"save_path\": \"%s\", \"data_path\": \"%s\", \"train_attack\": \"None\",\n"
               " \"test_attack\": %s, \"target_attack\": [true, false], \"src_dataset\": true, \"pgd_eva\": false,\n"
               " \"n_examples\": %d, \"surrogates\": \"%s\", \"per_sample\": false}\n",
            save, data, attacks, n, surrogates);
    fclose(f);
}

static void test_shared(void) {
    const char *pool = shared_path("beard/model_pool", "black-box evaluation"), *data = shared_path("data", "black-box");
    const char *beard = beard_bin();
    if (!pool || !data) return;
    if (!beard) {
        test_skip("the black-box CLI run (no beard binary; make test sets $BEARD)");
        return;
    }
    char dir[512], cfg[600], out[16384], path[1200];
    snprintf(dir, sizeof(dir), "%s", test_tmp("blackbox"));
    mkdir(dir, 0755);
    // 1. BACON as the surrogate, as BEARD's script: BEARD's lines byte for byte
    snprintf(cfg, sizeof(cfg), "%s/bb.json", dir);
    // (under the sanitizers 16 images, and the lines are checked for their shape only: the
    // bytes are the full-speed run's to check, the sanitizers look at memory)
    int san = getenv("BEARD_SANITIZED") != NULL;
    write_config(cfg, pool, data, dir, "[\"Clean\", \"FGSM\", \"PGD\"]", "load_file", san ? 16 : 64);
    int rc = run_cli(out, sizeof(out), "evaluate --config %s", cfg);
    CHECK(rc == 0, "beard evaluate (black-box, load_file): %d\n%s", rc, out);
    snprintf(path, sizeof(path), "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt", dir);
    char *got = slurp(path), *want = slurp("tests/fixtures/evaluate/blackbox_bacon64.txt");
    CHECK(got && want, "the log and the fixture");
    if (got && want) {
        static char g[8][8192], w[8][8192];
        int ng = masked_lines(got, g, 8), nw = masked_lines(want, w, 8);
        CHECK(ng == nw && nw == 3, "%d lines against the reference's %d", ng, nw);
        for (int i = 0; i < ng && i < nw && !san; i++)
            CHECK(!strcmp(g[i], w[i]), "line %d:\n got %s\nwant %s", i + 1, g[i], w[i]);
        CHECK(strstr(got, " - INFO - Logging setup complete.\n") != NULL, "BEARD's first line");
    }
    free(got), free(want);
    // 2. every model as a surrogate: logs per surrogate, the matrix, metrics per target
    char save2[700];
    snprintf(save2, sizeof(save2), "%s/all", dir);
    // (16 images under the sanitizers: 36 surrogate-target pairs at -O1)
    write_config(cfg, pool, data, save2, "[\"Clean\", \"FGSM\"]", "all", san ? 16 : 64);
    rc = run_cli(out, sizeof(out), "evaluate --config %s", cfg);
    CHECK(rc == 0, "beard evaluate (black-box, all): %d\n%s", rc, out);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof(path), "%s/%s/ConvNet_CIFAR10_50_evaluation_log.txt", save2, names6[i]);
        BeardLogFile f;
        Err e;
        int ok = beardlog_read(&f, path, &e) == 0;
        CHECK(ok && f.n == 2 && !strcmp(f.lines[1].method, names6[i]) && f.lines[1].n_eval == 6,
              "surrogate %s: its own log with both lines", names6[i]);
        if (ok && f.n == 2) { // the diagonal: the surrogate's own accuracy is its white-box one
            const BeardLogLine *l = &f.lines[1];
            CHECK(fabs(l->eval_acc[1][i] * 100 - l->acc[1]) < 0.006, "%s: diagonal %.4f vs the line's %.2f", names6[i],
                  l->eval_acc[1][i] * 100, l->acc[1]);
        }
        if (ok) beardlog_file_free(&f);
    }
    snprintf(path, sizeof(path), "%s/BACON_ConvNet_CIFAR10_50_transfer_matrix.csv", save2);
    char *csv = slurp(path);
    CHECK(csv && strstr(csv, "attack,mode,surrogate,target,accuracy,clean_accuracy,asr\n") &&
              strstr(csv, "FGSM,untargeted,DC,BACON,"),
          "the transfer matrix CSV");
    free(csv);
    snprintf(path, sizeof(path), "%s/BACON_ConvNet_CIFAR10_50_transfer_matrix.md", save2);
    char *md = slurp(path);
    CHECK(md && strstr(md, "## FGSM, untargeted") && strstr(md, "| surrogate | DC | DSA | MTT | DM | IDM | BACON |"),
          "the transfer matrix in Markdown");
    free(md);
    snprintf(path, sizeof(path), "%s/BACON_ConvNet_CIFAR10_50_blackbox_results.json", save2);
    char *js = slurp(path);
    cJSON *j = js ? cJSON_Parse(js) : NULL;
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "surrogates")) == 6, "results.json has six surrogates");
    cJSON_Delete(j);
    free(js);
    // metrics: one run per scored model, as convert_to_white_box.py converts the log
    snprintf(path, sizeof(path), "%s/DC/ConvNet_CIFAR10_50_evaluation_log.txt", save2);
    MetricsRun runs[BEARDLOG_MAX_MODELS];
    int n_runs = 0;
    Err e;
    CHECK(metrics_runs_from_blackbox_log(runs, BEARDLOG_MAX_MODELS, &n_runs, path, &e) == 0 && n_runs == 6,
          "the black-box log gives 6 runs: %s", e.msg);
    if (n_runs == 6) {
        CHECK(!strcmp(runs[1].method, "DSA") && runs[1].has_clean && runs[1].n_attacks == 1,
              "run 2 is DSA's, with Clean and FGSM");
        BeardLogFile f;
        beardlog_read(&f, path, &e);
        // the converter's figure: "%.2f" of 100 * fraction (Python rounds halves to even there)
        char two[32];
        snprintf(two, sizeof(two), "%.2f", f.lines[1].eval_acc[1][1] * 100);
        double want_acc = strtod(two, NULL);
        CHECK(fabs(runs[1].attacks[0].acc[1] - want_acc) < 1e-9, "DSA's FGSM accuracy %.4f vs %.4f",
              runs[1].attacks[0].acc[1], want_acc);
        beardlog_file_free(&f);
    }
    for (int i = 0; i < n_runs; i++) metrics_run_free(&runs[i]);
    rc = run_cli(out, sizeof(out), "metrics %s --out %s", path, dir);
    CHECK(rc == 0 && strstr(out, "DSA"), "beard metrics on a black-box log: %d\n%s", rc, out);
    char rm[700];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    test_config();
    test_line();
    test_shared();
    return test_done("test_blackbox");
}
