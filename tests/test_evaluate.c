/*
 * test_evaluate.c: the evaluation stage (src/evaluate/evaluate.c), its config reader
 * (src/evaluate/eval_config.c), and the `beard evaluate` / `beard demo` commands.
 *
 * The stage must (1) accept BEARD's own evaluate_config.json as it is (../shared's, when
 * it is there; tests/fixtures/evaluate/beard_keys_config.json is ours, with every key
 * BEARD's configs carry, so the check also runs without ../shared), (2) write log
 * lines in exactly BEARD's format, which BEARD's regular expression parses (checked with
 * Python's re when python3 is there), and (3) give the figures `beard attack` gives for
 * the same settings. The library checks run on a small random ConvNet and the synthetic
 * dataset; the CLI checks use ../shared when it is there (skipped otherwise), on a few
 * images and the cheap attacks, to keep the suite fast.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/evaluate/evaluate.h"
#include "../src/metrics/metrics.h"
#include "../src/data/synthetic.h"
#include "../src/io/file.h"
#include "../src/models/convnet.h"
#include "harness.h"

#define CFG "tests/fixtures/evaluate/beard_keys_config.json"

static int parse_config(EvalConfig *c, const char *json, Err *e) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return err_set(e, "test JSON does not parse");
    int rc = eval_config_from_json(c, root, e);
    cJSON_Delete(root);
    return rc;
}

static int has_warning(const EvalConfig *c, const char *s) {
    for (int i = 0; i < c->n_warnings; i++)
        if (strstr(c->warnings[i], s)) return 1;
    return 0;
}

static void test_config(void) {
    static EvalConfig c;
    Err e;
    // a config with every key BEARD's configs carry (ours), then BEARD's own, as it is
    CHECK(eval_config_load(&c, CFG, &e) == 0, "BEARD's keys: %s", e.msg);
    CHECK(!strcmp(c.dataset, "CIFAR10") && !strcmp(c.model, "ConvNet") && !strcmp(c.method, "DM") &&
              !strcmp(c.ipc, "10"),
          "BEARD's keys read");
    CHECK(c.n_attacks == 9 && c.attacks[0].clean && !strcmp(c.attacks[8].name, "Square"), "test_attack read");
    CHECK(c.n_targets == 2 && c.targets[0] == 0 && c.targets[1] == 1, "target_attack read");
    CHECK(c.src_dataset == 0 && c.aug == 0 && c.dsa == 1, "src_dataset, aug, DSA");
    CHECK(c.sem == SEM_BEARD && c.policy == TARGET_BEARD && c.preset == PRESET_BEARD, "BEARD's semantics by default");
    CHECK(!has_warning(&c, "unknown key"), "none of BEARD's keys is unknown");
    const EvalAttackSpec *pgd = &c.attacks[2];
    CHECK(pgd->def && fabs(pgd->params.values[1] - 2.0 / 225) < 1e-12, "PGD gets BEARD's alpha 2/225");
    const char *shared = shared_path("beard/evaluate_config.json", "BEARD's config in ../shared");
    if (shared) {
        CHECK(eval_config_load(&c, shared, &e) == 0, "../shared config: %s", e.msg);
        CHECK(!strcmp(c.method, "BACON") && !strcmp(c.ipc, "50") && c.n_attacks == 9 && c.attacks[0].clean &&
                  !strcmp(c.attacks[8].name, "SPSA") && c.n_targets == 2 && c.targets[0] == 1 && c.targets[1] == 0,
              "../shared config read");
        CHECK(!has_warning(&c, "unknown key"), "none of the keys of BEARD's own config is unknown");
    }

    // beard's keys, overrides, warnings
    CHECK(parse_config(&c,
                       "{\"dataset\": \"CIFAR10\", \"load_file\": \"m.pth\", \"ipc\": 10, \"test_attack\": [\"Clean\", "
                       "\"PGD\", \"PGD_e4\"], \"semantics\": \"pixel\", \"seed\": 7, \"n_examples\": 100, "
                       "\"attack_params\": {\"pgd\": {\"steps\": 20, \"eps\": \"4/255\", \"random_start\": true}}, "
                       "\"colour\": \"blue\"}",
                       &e) == 0,
          "beard's keys: %s", e.msg);
    CHECK(!strcmp(c.ipc, "10") && c.sem == SEM_PIXEL && c.seed == 7 && c.n_examples == 100, "beard's keys read");
    CHECK(c.attacks[1].params.values[2] == 20 && fabs(c.attacks[1].params.values[0] - 4.0 / 255) < 1e-12 &&
              c.attacks[1].params.values[3] == 1,
          "attack_params override the preset");
    CHECK(has_warning(&c, "unknown key \"colour\""), "an unknown key is warned about");
    CHECK(c.attacks[2].def && !strcmp(c.attacks[2].def->name, "PGD") && fabs(c.attacks[2].params.values[0] - 4.0 / 255) < 1e-12,
          "BEARD's PGD_e4: PGD with eps 4/255");
    CHECK(has_warning(&c, "no \"method\""), "a missing method is warned about");
    CHECK(!strcmp(c.method, "m"), "method from the checkpoint's name: %s", c.method);

    // wrong types and missing keys: clear errors naming the key
    struct {
        const char *json, *want;
    } bad[] = {
        {"[1, 2]", "must be a JSON object"},
        {"{\"load_file\": \"m\", \"test_attack\": [\"Clean\"]}", "no \"dataset\""},
        {"{\"dataset\": \"CIFAR10\", \"test_attack\": [\"Clean\"]}", "no \"load_file\""},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\"}", "no \"test_attack\""},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": \"FGSM\"}", "\"test_attack\" must be a list"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": []}", "empty"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\", \"fgsm\"]}", "twice"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [1]}", "must be an attack name"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"target_attack\": true}",
         "\"target_attack\" must be a list"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"target_attack\": [true, true]}",
         "same mode twice"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"ipc\": [50]}", "\"ipc\" must be"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"aug\": \"no\"}",
         "\"aug\" must be true or false"},
        {"{\"dataset\": 10, \"load_file\": \"m\", \"test_attack\": [\"FGSM\"]}", "\"dataset\" must be a string"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"seed\": -1}", "\"seed\" must be"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"batch\": 0.5}", "\"batch\" must be"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"semantics\": \"pixels\"}",
         "\"semantics\" must be"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"lr_net\": \"fast\"}",
         "\"lr_net\" must be a number"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"attack_params\": {\"FGSM\": "
         "{\"steps\": 3}}}",
         "has no parameter \"steps\""},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"attack_params\": {\"FGSM\": "
         "{\"eps\": \"lots\"}}}",
         "cannot use \"lots\""},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"attack_params\": [1]}",
         "\"attack_params\" must be an object"},
        // unknown attack names are errors, wherever they appear
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"Clean\", \"FGMS\"]}", "unknown attack 'FGMS'"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"attack_params\": {\"PDG\": "
         "{\"steps\": 3}}}",
         "unknown attack \"PDG\""},
        // names that become file names must be plain names
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"method\": \"../../evil\"}",
         "\"method\" '../../evil' contains '/'"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"method\": \"a|b\"}", "'|'"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"method\": \"a\\nb\"}", "newline"},
        {"{\"dataset\": \"../x\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"]}", "\"dataset\""},
        {"{\"dataset\": \"CIFAR10\", \"model\": \"/etc/x\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"]}", "\"model\""},
        // the IPC is a whole, positive number of images per class
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"ipc\": -5}", "\"ipc\" must be a whole"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"ipc\": \"0\"}", "\"ipc\" must be a whole"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"ipc\": 99999999}", "\"ipc\" must be a whole"},
        {"{\"dataset\": \"CIFAR10\", \"load_file\": \"m\", \"test_attack\": [\"FGSM\"], \"ipc\": \"ten\"}", "\"ipc\" must be a whole"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e.msg[0] = 0;
        int rc = parse_config(&c, bad[i].json, &e);
        CHECK(rc == -1 && strstr(e.msg, bad[i].want), "bad config %zu: want an error with '%s', got '%s'", i,
              bad[i].want, e.msg);
    }
    CHECK(eval_config_load(&c, "tests/fixtures/evaluate/nope.json", &e) == -1 && strstr(e.msg, "nope.json"),
          "a missing config names the file: %s", e.msg);
    const char *tmp = test_tmp("bad.json");
    const char *broken = "{\n \"dataset\": \"CIFAR10\",\n \"ipc\": \n}";
    file_write_all(tmp, broken, strlen(broken), &e);
    CHECK(eval_config_load(&c, tmp, &e) == -1 && strstr(e.msg, "invalid JSON near line"), "invalid JSON: %s", e.msg);
    remove(tmp);
}

// a small random model and the synthetic test images
static Net g_net;
static Dataset g_ds;
static float *g_x;
static AttackData g_ad;

static int setup_model(int n) {
    Err e;
    if (model_create(&g_net, "ConvNetW32", 3, 10, 16, 16, &e) || synthetic_make(&g_ds, n, 0, 3, &e)) {
        CHECK(0, "set-up: %s", e.msg);
        return -1;
    }
    net_init_params(&g_net, 11);
    g_x = malloc(sizeof(float) * 768 * n);
    dataset_to_float(&g_ds, 0, n, g_x, 0);
    const DatasetInfo *info = synthetic_info();
    g_ad = (AttackData){.x = g_x, .y = g_ds.labels, .n = n, .C = 3, .H = 16, .W = 16, .mean = info->mean,
                        .std = info->std};
    return 0;
}

static char *read_text(const char *path) {
    uint8_t *b;
    size_t n;
    Err e;
    if (file_read_all(path, 1 << 26, &b, &n, &e)) return NULL;
    return (char *)b;
}

static void test_stage(void) {
    if (setup_model(40)) return;
    static EvalConfig c;
    Err e;
    const char *dir = test_tmp("stage");
    char json[1024];
    const char *fmt = "{\"dataset\": \"SYNTHETIC\", \"model\": \"ConvNetW32\", \"method\": \"DM\", \"ipc\": \"10\", "
                      "\"load_file\": \"-\", \"save_path\": \"%s\", \"test_attack\": [\"Clean\", \"FGSM\", \"PGD\", \"Deepfool\"%s], "
                      "\"target_attack\": [true, false], \"batch\": 16, \"seed\": 5, "
                      "\"attack_params\": {\"PGD\": {\"steps\": 3}, \"Deepfool\": {\"steps\": 3}}}";
    // an unknown attack is an error, as in `beard attack` (it used to be skipped with a warning)
    snprintf(json, sizeof(json), fmt, dir, ", \"NotAnAttack\"");
    CHECK(parse_config(&c, json, &e) != 0 && strstr(e.msg, "NotAnAttack") && strstr(e.msg, "unknown attack"),
          "an unknown attack name is an error: %s", e.msg);
    snprintf(json, sizeof(json), fmt, dir, "");
    int have_df = attack_find("Deepfool") != NULL;
    CHECK(parse_config(&c, json, &e) == 0, "stage config: %s", e.msg);
    BeardLog log;
    char lpath0[1200];
    CHECK(eval_config_output_path(&c, "evaluation_log.txt", lpath0, sizeof(lpath0), &e) == 0 &&
              beardlog_open(&log, lpath0, &e) == 0,
          "log opens: %s", e.msg);
    EvalReport rep;
    int rc = evaluate_run(&c, &g_net, &g_ad, &log, NULL, NULL, &rep, &e);
    CHECK(access(lpath0, F_OK) != 0, "the log appears under its name only once complete");
    CHECK(rc || beardlog_commit(&log, &e) == 0, "log committed: %s", e.msg);
    beardlog_close(&log);
    CHECK(rc == 0 && rep.n_failed == 0, "evaluate_run: %s", rc ? e.msg : "");
    if (rc) {
        evaluate_report_free(&rep);
        return;
    }
    CHECK(rep.n == 40 && rep.clean_done[0] && rep.clean_done[1], "clean passes in both modes");

    // the figures are attack_evaluate's for the same settings (= `beard attack`)
    RunConfig rcfg = {.sem = SEM_BEARD, .policy = TARGET_BEARD, .batch = 16, .seed = 5};
    for (int a = 1; a <= 2; a++)
        for (int m = 0; m < 2; m++) {
            AttackResult r;
            const EvalAttackSpec *s = &c.attacks[a];
            CHECK(attack_evaluate(&g_net, &g_ad, s->def, &s->params, m == 0, &rcfg, &r, &e) == 0, "direct %s", s->name);
            const EvalMode *em = &rep.entries[a].mode[m];
            CHECK(em->status == EVAL_RAN && em->res.adv_correct == r.adv_correct && em->res.success == r.success,
                  "%s %s: the stage agrees with attack_evaluate (%d vs %d correct)", s->name,
                  metrics_mode_name(m), em->res.adv_correct, r.adv_correct);
            CHECK(em->accuracy == (double)r.adv_correct / 40 * 100, "accuracy as BEARD computes it");
            attack_result_free(&r);
        }
    if (have_df) {
        const EvalMode *t = &rep.entries[3].mode[0];
        CHECK(t->status == EVAL_NOT_APPLICABLE && t->accuracy == rep.clean_accuracy &&
                  t->seconds == rep.clean_seconds[0],
              "targeted DeepFool: not run, clean figures for the log");
    }

    // the log: BEARD's lines, read back
    char path[1200];
    snprintf(path, sizeof(path), "%s/DM_ConvNetW32_SYNTHETIC_10_evaluation_log.txt", dir);
    CHECK(!strcmp(path, log.path), "log path {save_path}/{method}_{model}_{dataset}_{ipc}_evaluation_log.txt: %s", log.path);
    char *text = read_text(path);
    CHECK(text && !strncmp(text + 23, " - INFO - Logging setup complete.\n", 34), "first line as BEARD's");
    BeardLogFile lf;
    CHECK(text && beardlog_parse(&lf, text, path, &e) == 0, "log parses");
    int want_lines = 3 + have_df;
    CHECK(lf.n == want_lines, "%d result lines (Clean, FGSM, PGD%s), got %d", want_lines, have_df ? ", Deepfool" : "",
          lf.n);
    for (int i = 0; i < lf.n; i++) {
        const EvalEntry *en = &rep.entries[i];
        char w0[16], w1[16], g0[16], g1[16];
        snprintf(w0, sizeof(w0), "%.2f", en->mode[0].accuracy), snprintf(g0, sizeof(g0), "%.2f", lf.lines[i].acc[0]);
        snprintf(w1, sizeof(w1), "%.2f", en->mode[1].accuracy), snprintf(g1, sizeof(g1), "%.2f", lf.lines[i].acc[1]);
        CHECK(!strcmp(lf.lines[i].attack, en->spec->name) && !strcmp(w0, g0) && !strcmp(w1, g1) &&
                  !strcmp(lf.lines[i].method, "DM") && !strcmp(lf.lines[i].ipc, "10"),
              "line %d matches the report", i);
    }
    if (text)
        CHECK(strstr(text, "attack_type: ['Clean', 'FGSM', 'PGD', 'Deepfool'], target_attack: [True, "
                           "False], src_dataset: False\n") != NULL,
              "the tail of BEARD's line");
    beardlog_file_free(&lf);
    // BEARD's own regular expression, when python3 is here
    if (system("python3 -c 'import re' >/dev/null 2>&1") == 0) {
        char cmd[2048];
        snprintf(cmd, sizeof(cmd),
                 "python3 -c \"import re,sys; t=open(sys.argv[1]).read(); "
                 "m=re.findall(r'(\\w+) attack on (\\w+): final acc is:\\s+target_attack: ([\\d.]+) \\+- [\\d.]+, "
                 "attack time is ([\\d.]+); non_target_attack: ([\\d.]+) \\+- [\\d.]+, attack time is ([\\d.]+)', t); "
                 "[float(x) for r in m for x in r[2:]]; sys.exit(0 if len(m) == %d else 1)\" %s",
                 want_lines, path);
        CHECK(system(cmd) == 0, "BEARD's regular expression (Python re) finds %d lines", want_lines);
    } else test_skip("python3 not found: BEARD's regular expression not checked");
    free(text);

    // results.json: the full figures, null for what does not apply, and readable by metrics
    cJSON *res = evaluate_results_json(&c, &rep, &g_ad, &g_net, path, NULL);
    cJSON *atts = cJSON_GetObjectItem(res, "attacks");
    CHECK(cJSON_GetArraySize(atts) == 3, "results.json lists the three attacks (Clean has its own block)");
    if (have_df) {
        cJSON *df = cJSON_GetArrayItem(atts, 2);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(df, "targeted")) && cJSON_IsObject(cJSON_GetObjectItem(df, "untargeted")),
              "targeted DeepFool is null in results.json");
    }
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(res, "machine")) && cJSON_IsObject(cJSON_GetObjectItem(res, "config")) &&
              cJSON_IsString(cJSON_GetObjectItem(res, "version")) && cJSON_IsNumber(cJSON_GetObjectItem(res, "seed")),
          "machine, config, version and seed recorded");
    MetricsRun mr;
    CHECK(metrics_run_from_json(&mr, res, "mem", &e) == 0, "metrics read results.json: %s", e.msg);
    if (mr.n_attacks > 0) {
        CHECK(mr.n == 40 && mr.clean_ok && mr.attacks[0].adv_ok[1] && !isnan(mr.attacks[0].passes[1]),
              "per-sample data and passes reach the metrics");
        CHECK(fabs(mr.clean_acc - rep.clean_accuracy) < 1e-3, "clean accuracy round-trips");
        metrics_run_free(&mr);
    }
    char jpath[1200];
    eval_config_output_path(&c, "results.json", jpath, sizeof(jpath), &e);
    CHECK(evaluate_write_json(jpath, res, &e) == 0, "results.json written");
    cJSON_Delete(res);
    char cpath[1200];
    eval_config_output_path(&c, "per_sample.csv", cpath, sizeof(cpath), &e);
    CHECK(evaluate_write_csv(cpath, &rep, &g_ad, &e) == 0, "per-sample CSV written");
    text = read_text(cpath);
    int lines = 0;
    for (char *p = text; p && *p; p++) lines += *p == '\n';
    CHECK(lines == 1 + 40 * (4 + have_df), "CSV: a header and one row per sample, attack and mode (%d lines)", lines);
    free(text);
    evaluate_report_free(&rep);

    // a single mode: no log (BEARD's lines carry both), results still complete
    snprintf(json, sizeof(json),
             "{\"dataset\": \"SYNTHETIC\", \"load_file\": \"-\", \"test_attack\": [\"Clean\", \"FGSM\"], "
             "\"target_attack\": [false]}");
    CHECK(parse_config(&c, json, &e) == 0 && has_warning(&c, "one mode"), "one mode: warned");
    CHECK(evaluate_run(&c, &g_net, &g_ad, NULL, NULL, NULL, &rep, &e) == 0 &&
              rep.entries[1].mode[0].status == EVAL_NOT_REQUESTED && rep.entries[1].mode[1].status == EVAL_RAN,
          "one mode runs");
    evaluate_report_free(&rep);
}

static void test_cli(void) {
    if (!beard_bin()) {
        test_skip("CLI tests: no beard binary ($BEARD or build/beard)");
        return;
    }
    static char out[1 << 16];
    const char *dir = test_tmp("cli");
    int rc = run_cli(out, sizeof(out), "evaluate --config /nonexistent/evaluate_config.json");
    CHECK(rc == 1 && strstr(out, "/nonexistent/evaluate_config.json"), "missing config: exit 1 naming it (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "evaluate");
    CHECK(rc == 2 && strstr(out, "--config"), "no --config: usage error (%d)", rc);
    rc = run_cli(out, sizeof(out), "evaluate --config tests/fixtures/metrics/garbage_evaluation_log.txt");
    CHECK(rc == 1 && strstr(out, "invalid JSON"), "not JSON: exit 1 (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "evaluate --config " CFG " --load-file "
                                   "/nonexistent/model.pth --data tests/fixtures/io/cifar10_py --save-path %s",
                 dir);
    CHECK(rc == 1 && strstr(out, "/nonexistent/model.pth"), "missing checkpoint: exit 1 naming it (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "evaluate --config " CFG " --data /nonexistent "
                                   "--save-path %s",
                 dir);
    CHECK(rc == 1 && strstr(out, "beard download"), "missing data: exit 1 with the way out (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "evaluate --config " CFG " --semantics foo");
    CHECK(rc == 1 && strstr(out, "\"semantics\" must be"), "bad override: exit 1 (%d): %s", rc, out);

    // BEARD's config on BEARD's checkpoint, and `beard attack` with the same settings
    const char *model = shared_path("beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth", "BEARD's BACON checkpoint");
    const char *data = shared_path("data", "CIFAR-10 in ../shared/data");
    const char *config = shared_path("beard/evaluate_config.json", "BEARD's config in ../shared");
    if (!model || !data || !config) return;
    int n = getenv("BEARD_SANITIZED") ? 4 : 12;
    rc = run_cli(out, sizeof(out),
                 "evaluate --config %s --load-file %s --data %s "
                 "--save-path %s --n-examples %d --attacks Clean,FGSM,PGD",
                 config, model, data, dir, n);
    CHECK(rc == 0, "beard evaluate on BEARD's config (%d): %s", rc, out);
    char lpath[1200], jpath[1200], apath[1200];
    snprintf(lpath, sizeof(lpath), "%s/BACON_ConvNet_CIFAR10_50_evaluation_log.txt", dir);
    snprintf(jpath, sizeof(jpath), "%s/BACON_ConvNet_CIFAR10_50_results.json", dir);
    snprintf(apath, sizeof(apath), "%s/attack.json", dir);
    rc = run_cli(out, sizeof(out),
                 "attack --model %s --dataset cifar10 --data %s --attack FGSM,PGD --targeted both --preset beard "
                 "--semantics beard --limit %d --json %s",
                 model, data, n, apath);
    CHECK(rc == 0, "beard attack with the same settings (%d): %s", rc, out);
    char *ej = read_text(jpath), *aj = read_text(apath);
    cJSON *E = ej ? cJSON_Parse(ej) : NULL, *A = aj ? cJSON_Parse(aj) : NULL;
    CHECK(E && A, "both JSON files parse");
    if (E && A) {
        int compared = 0;
        cJSON *ar;
        cJSON_ArrayForEach(ar, cJSON_GetObjectItem(A, "results")) {
            const char *name = cJSON_GetObjectItem(ar, "attack")->valuestring;
            int tg = cJSON_IsTrue(cJSON_GetObjectItem(ar, "targeted"));
            cJSON *er;
            cJSON_ArrayForEach(er, cJSON_GetObjectItem(E, "attacks")) {
                if (strcmp(cJSON_GetObjectItem(er, "attack")->valuestring, name)) continue;
                cJSON *m = cJSON_GetObjectItem(er, tg ? "targeted" : "untargeted");
                double a1 = cJSON_GetObjectItem(ar, "accuracy")->valuedouble, a2 = cJSON_GetObjectItem(m, "accuracy")->valuedouble;
                CHECK(a1 == a2, "%s %s: beard attack %.4f, beard evaluate %.4f", name, tg ? "targeted" : "untargeted", a1, a2);
                compared++;
            }
        }
        CHECK(compared == 4, "FGSM and PGD compared in both modes (%d)", compared);
    }
    cJSON_Delete(E), cJSON_Delete(A);
    free(ej), free(aj);
    // the log parses, and `beard metrics` reads the log and the results.json; given both,
    // it refuses to count the one run twice
    rc = run_cli(out, sizeof(out), "metrics %s --bootstrap 50 --output-dir %s", lpath, dir);
    CHECK(rc == 0 && strstr(out, "| BACON | CIFAR10 | 50 | Targeted |"), "beard metrics reads the log (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "metrics %s --bootstrap 50 --output-dir %s", jpath, dir);
    CHECK(rc == 0 && strstr(out, "| BACON | CIFAR10 | 50 | Targeted |"), "beard metrics reads results.json (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out), "metrics %s %s --bootstrap 50 --output-dir %s", lpath, jpath, dir);
    CHECK(rc == 1 && strstr(out, "one run per IPC"), "a log and its own results.json are one run (%d): %s", rc, out);
    // a rerun into the same folder replaces the earlier run's files only with --force
    rc = run_cli(out, sizeof(out), "evaluate --config %s --load-file %s --data %s --out %s --limit 2 --attack Clean,FGSM",
                 config, model, data, dir);
    CHECK(rc == 1 && strstr(out, "exists") && strstr(out, "--force"), "a rerun without --force (%d): %s", rc, out);
    rc = run_cli(out, sizeof(out),
                 "evaluate --config %s --load-file %s --data %s --out %s --limit 2 --attack Clean,FGSM --force --quiet",
                 config, model, data, dir);
    CHECK(rc == 0, "a rerun with --force (%d): %s", rc, out);
    char *lt = read_text(lpath);
    int n_clean = 0;
    for (const char *p = lt; p && (p = strstr(p, "Clean attack on")); p++) n_clean++;
    CHECK(n_clean == 1 && lt && !strstr(lt, "PGD attack on"), "the rerun replaced the log, not appended to it (%d Clean lines)", n_clean);
    free(lt);
    // an unwritable --json fails before any attack runs
    double t0 = time_now();
    rc = run_cli(out, sizeof(out), "evaluate --config %s --load-file %s --data %s --out %s --json /nonexistent/x.json --force",
                 config, model, data, dir);
    CHECK(rc == 1 && strstr(out, "/nonexistent") && !strstr(out, "Clean "), "unwritable --json fails up front (%d): %s", rc, out);
    CHECK(time_now() - t0 < 20, "... within seconds (%.1f s)", time_now() - t0);
    // `beard attack --json` output too: no clean time there, so AE is n/a, never a number
    rc = run_cli(out, sizeof(out), "metrics %s --bootstrap 0 --output-dir %s", apath, dir);
    CHECK(rc == 0 && strstr(out, "no clean or attack time") && !strstr(out, "nan"),
          "beard metrics reads `beard attack --json` (%d): %s", rc, out);
}

static void test_demo(void) {
    if (!beard_bin()) return;
    static char out[1 << 16];
    const char *dir = test_tmp("demo");
    int rc = run_cli(out, sizeof(out), "demo --quick --synthetic --out %s", dir);
    CHECK(rc == 0 && strstr(out, "SYNTHETIC") && strstr(out, "CREI") && strstr(out, "synthetic beard"),
          "beard demo on synthetic data (%d): %s", rc, out);
    char path[1200];
    snprintf(path, sizeof(path), "%s/synthetic/pixel/synthetic_ConvNetW32_SYNTHETIC_all_results.json", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0, "the demo leaves results.json for beard metrics (%s)", path);
    rc = run_cli(out, sizeof(out), "demo --quick --data /nonexistent --out %s", dir);
    CHECK(rc == 1 && strstr(out, "beard download cifar10"), "demo with a missing --data: exit 1 (%d): %s", rc, out);
    if (getenv("BEARD_SANITIZED")) {
        test_skip("the demo on ../shared/data under sanitizers (the plain run covers it; the code paths are the same)");
        return;
    }
    const char *data = shared_path("data", "CIFAR-10 in ../shared/data");
    const char *pool = shared_path("beard/model_pool", "BEARD's model pool");
    if (!data || !pool) return;
    rc = run_cli(out, sizeof(out), "demo --quick --data %s --model-pool %s --out %s", data, pool, dir);
    CHECK(rc == 0 && strstr(out, "CIFAR-10 from") && strstr(out, "BACON") && strstr(out, "CREI"),
          "beard demo on ../shared/data (%d): %s", rc, out);
}

int main(void) {
    test_config();
    test_stage();
    test_cli();
    test_demo();
    net_free(&g_net);
    dataset_free(&g_ds);
    free(g_x);
    return test_done("test_evaluate");
}
