/*
 * cmd_demo.c: `beard demo`, the whole benchmark end to end in a few minutes: clean
 * accuracy, robust accuracy per attack (targeted and untargeted), then BEARD's RR, AE and
 * CREI (arXiv:2411.09265), in both semantics (beard: BEARD's own numbers; pixel: the
 * standard threat model), with BEARD's attack parameters.
 *
 * With CIFAR-10 (--data DIR, or ./data where `beard download cifar10` puts it) and a model
 * pool (--model-pool DIR; default ../shared/beard/model_pool, DIR/../beard/model_pool or
 * ./model_pool), it attacks
 * every CIFAR-10 checkpoint of the pool on the first --n test images. Without them it
 * falls back to a procedurally generated dataset (src/data/synthetic.c), clearly labelled
 * as such, trains a small ConvNet on it with the training stage (src/train/train.h) and
 * attacks that. Everything goes through the evaluation stage (src/evaluate/evaluate.c) and
 * the metrics (src/metrics/metrics.c), so the BEARD logs and results.json it leaves in --out
 * are the real thing: `beard metrics` reads them.
 *
 * To stay within minutes on two cores the demo uses a subset of the test images and, by
 * default, the cheaper attacks (AutoAttack, Square and SPSA spend thousands of passes per
 * image: --attacks adds them). Attacks this build does not have are skipped with a note.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../evaluate/evaluate.h"
#include "../metrics/metrics.h"
#include "../attacks/names.h"
#include "../train/train.h"
#include "../core/parallel.h"
#include "../data/synthetic.h"
#include "../models/checkpoint.h"
#include "../models/convnet.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard demo [--data DIR] [--model-pool DIR] [--synthetic] [--limit N] [--attack LIST]\n"
    "                  [--max-models K] [--epochs E] [--out DIR] [--seed S] [--threads N] [--quick]\n"
    "\n"
    "A small end-to-end BEARD benchmark with a summary table: clean accuracy, robust accuracy\n"
    "per attack (targeted / untargeted), RR, AE and CREI, in beard and pixel semantics.\n"
    "  real data   CIFAR-10 from --data DIR (default ./data, where `beard download cifar10`\n"
    "              puts it) and the checkpoints of --model-pool DIR (default: the first of\n"
    "              ../shared/beard/model_pool, DIR/../beard/model_pool, ./model_pool); the first\n"
    "              --limit test images (default 50); attacks FGSM,PGD,PGD_L2 by default.\n"
    "  synthetic   with no data (or --synthetic): a procedurally generated 10-class shapes\n"
    "              dataset, NOT CIFAR-10; trains a small ConvNet (ConvNetW32) for --epochs\n"
    "              (default 12) on 2000 images, attacks --limit (default 200) test images with\n"
    "              FGSM,PGD,PGD_L2,Deepfool,CW by default.\n"
    "BEARD logs and results.json go to --out (default ./beard-demo); `beard metrics` reads them.\n"
    "--quick: a tiny run for smoke tests (FGSM and PGD; 8 images and one model, or 3 epochs).\n"
    "Old spellings: --n for --limit, --attacks for --attack. --threads 0 (default): all cores.\n";

#define DEMO_MAX_ATTACKS 16
#define DEMO_MAX_ROWS 64

typedef struct {
    char model[64];
    Semantics sem;
    double clean;
    double acc[DEMO_MAX_ATTACKS][2]; // NAN: n/a
    double rr[2], ae[2], crei[2];
} DemoRow;

typedef struct {
    const char *names[DEMO_MAX_ATTACKS];
    int n;
    const char *out;
    uint64_t seed;
    DemoRow rows[DEMO_MAX_ROWS];
    int n_rows;
} Demo;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// one (model, semantics): evaluate, write BEARD's log and results.json, compute the metrics
static int demo_eval(Demo *dm, Net *net, const AttackData *ad, const char *method, const char *dataset,
                     const char *ipc, Semantics sem, Err *e) {
    if (dm->n_rows == DEMO_MAX_ROWS) return err_set(e, "too many rows");
    // the method and IPC come from a checkpoint's file name and name output files
    if (file_name_check(method, "method (from the checkpoint's file name)", e) ||
        file_name_check(ipc, "IPC (from the checkpoint's file name)", e))
        return -1;
    EvalConfig *cfg = malloc(sizeof(EvalConfig));
    if (!cfg) return err_set(e, "out of memory");
    eval_config_defaults(cfg);
    snprintf(cfg->dataset, sizeof(cfg->dataset), "%s", dataset);
    snprintf(cfg->model, sizeof(cfg->model), "%s", net->arch);
    snprintf(cfg->method, sizeof(cfg->method), "%s", method);
    snprintf(cfg->ipc, sizeof(cfg->ipc), "%s", ipc);
    snprintf(cfg->save_path, sizeof(cfg->save_path), "%s/%s/%s", dm->out, method, semantics_name(sem));
    cfg->sem = sem;
    cfg->seed = dm->seed;
    cfg->batch = 256;
    cfg->src_dataset = 1;
    cfg->n_attacks = 0;
    EvalAttackSpec *c = &cfg->attacks[cfg->n_attacks++];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "Clean");
    c->clean = 1;
    for (int i = 0; i < dm->n; i++) {
        EvalAttackSpec *a = &cfg->attacks[cfg->n_attacks++];
        memset(a, 0, sizeof(*a));
        snprintf(a->name, sizeof(a->name), "%s", dm->names[i]);
        a->def = attack_find(a->name);
        attack_params_init(&a->params, a->def, cfg->preset);
    }
    BeardLog log;
    EvalReport rep;
    memset(&rep, 0, sizeof(rep));
    int rc = -1;
    cJSON *res = NULL;
    MetricsRun run;
    memset(&run, 0, sizeof(run));
    char logpath[1200], path[1200];
    memset(&log, 0, sizeof(log));
    if (eval_config_output_path(cfg, "evaluation_log.txt", logpath, sizeof(logpath), e) ||
        eval_config_output_path(cfg, "results.json", path, sizeof(path), e) || beardlog_open(&log, logpath, e))
        goto done;
    rc = evaluate_run(cfg, net, ad, &log, NULL, NULL, &rep, e);
    if (rc == 0) rc = beardlog_commit(&log, e);
    beardlog_close(&log);
    if (rc) goto done;
    rc = -1;
    if (rep.n_failed)
        for (int i = 0; i < rep.n_entries; i++)
            for (int m = 0; m < 2; m++)
                if (rep.entries[i].mode[m].status == EVAL_FAILED)
                    fprintf(stderr, "beard demo: %s (%s) failed: %s\n", rep.entries[i].spec->name,
                            m ? "untargeted" : "targeted", rep.entries[i].mode[m].error);
    res = evaluate_results_json(cfg, &rep, ad, net, log.path, NULL);
    if (evaluate_write_json(path, res, e)) goto done;
    if (metrics_run_from_json(&run, res, path, e)) goto done;

    DemoRow *row = &dm->rows[dm->n_rows];
    memset(row, 0, sizeof(*row));
    snprintf(row->model, sizeof(row->model), "%s", method);
    row->sem = sem;
    row->clean = rep.clean_accuracy;
    for (int i = 0; i < dm->n; i++)
        for (int m = 0; m < 2; m++) {
            const EvalMode *em = &rep.entries[i + 1].mode[m];
            row->acc[i][m] = em->status == EVAL_RAN ? em->accuracy : NAN;
        }
    MetricsOptions mo;
    metrics_options_default(&mo);
    mo.bootstrap = 0;
    MetricsReport mr;
    if (metrics_compute(&mr, &run, 1, &mo, e)) goto done;
    for (int m = 0; m < 2; m++) {
        row->rr[m] = mr.per_run[0][m].rr;
        row->ae[m] = mr.per_run[0][m].ae;
        row->crei[m] = mr.per_run[0][m].crei;
    }
    metrics_report_free(&mr);
    dm->n_rows++;
    rc = 0;
done:
    metrics_run_free(&run);
    cJSON_Delete(res);
    evaluate_report_free(&rep);
    free(cfg);
    return rc;
}

static void cell(double v, int w) {
    if (isnan(v)) printf(" %*s", w, "-");
    else printf(" %*.2f", w, v);
}

static void print_table(const Demo *dm) {
    int wm = 5;
    for (int r = 0; r < dm->n_rows; r++) wm = MAX(wm, (int)strlen(dm->rows[r].model));
    printf("\n%-*s %-9s %-10s %6s", wm, "Model", "Semantics", "Mode", "Clean");
    for (int i = 0; i < dm->n; i++) printf(" %*s", MAX(6, (int)strlen(dm->names[i])), dm->names[i]);
    printf("  | %6s %6s %6s\n", "RR", "AE", "CREI");
    int width = wm + 1 + 9 + 1 + 10 + 7;
    for (int i = 0; i < dm->n; i++) width += 1 + MAX(6, (int)strlen(dm->names[i]));
    width += 24;
    for (int i = 0; i < width; i++) putchar('-');
    putchar('\n');
    for (int r = 0; r < dm->n_rows; r++)
        for (int m = 0; m < 2; m++) {
            const DemoRow *row = &dm->rows[r];
            printf("%-*s %-9s %-10s", wm, m ? "" : row->model, m ? "" : semantics_name(row->sem),
                   m ? "untargeted" : "targeted");
            cell(row->clean, 6);
            for (int i = 0; i < dm->n; i++) cell(row->acc[i][m], MAX(6, (int)strlen(dm->names[i])));
            printf("  |");
            cell(row->rr[m], 6), cell(row->ae[m], 6), cell(row->crei[m], 6);
            putchar('\n');
        }
    printf("\nAccuracies in %% on the attacked images (robust accuracy); '-': the attack has no such mode\n"
           "(BEARD has no targeted DeepFool or AutoAttack) or did not run. RR, AE, CREI in %%: BEARD's\n"
           "metrics over this run's attacks (AE from seconds on this machine; alpha 0.5).\n");
}

// checkpoints of the pool for a dataset: BEARD names them {method}_{arch}_{dataset}_{ipc}_...
static int list_pool(const char *dir, const char *dataset, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        const char *nm = ent->d_name, *dot = strrchr(nm, '.');
        if (!dot || (strcasecmp(dot, ".pt") && strcasecmp(dot, ".pth") && strcasecmp(dot, ".safetensors"))) continue;
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", nm);
        char *tok[4] = {0};
        int k = 0;
        for (char *s = strtok(tmp, "_"); s && k < 4; s = strtok(NULL, "_")) tok[k++] = s;
        if (k < 3 || strcasecmp(tok[2], dataset)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nv = realloc(v, sizeof(char *) * cap);
            if (!nv) break;
            v = nv;
        }
        v[n++] = xstrdup(nm);
    }
    closedir(d);
    for (int i = 1; i < n; i++) // insertion sort: a handful of names
        for (int j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    *out = v;
    return n;
}

static int demo_real(Demo *dm, const char *C, CliTestSet *ts, const char *data_dir, const char *pool, int max_models) {
    char **files = NULL;
    int nf = list_pool(pool, "CIFAR10", &files);
    if (nf <= 0) {
        free(files);
        return cli_error(C, "no CIFAR-10 checkpoints ({method}_{arch}_CIFAR10_{ipc}_*.pth) in %s", pool);
    }
    int n_listed = nf;
    if (max_models > 0 && nf > max_models) nf = max_models;
    printf("beard demo: CIFAR-10 from %s, first %d test images; %d checkpoint%s from %s\n", data_dir, ts->ad.n, nf,
           nf == 1 ? "" : "s", pool);
    int status = 0;
    for (int f = 0; f < nf && !status; f++) {
        char tmp[256], path[1400];
        snprintf(tmp, sizeof(tmp), "%s", files[f]);
        char *tok[4] = {0};
        int k = 0;
        for (char *s = strtok(tmp, "_"); s && k < 4; s = strtok(NULL, "_")) tok[k++] = s;
        const char *method = tok[0], *arch = tok[1], *ipc = k > 3 ? tok[3] : "1";
        if (!model_find(arch)) arch = "ConvNet";
        snprintf(path, sizeof(path), "%s/%s", pool, files[f]);
        Net net;
        Err e;
        if (checkpoint_load(&net, path, arch, 3, 10, 32, 32, &e)) {
            fprintf(stderr, "beard demo: skipping %s: %s\n", files[f], e.msg);
            continue;
        }
        for (int s = 0; s < 2 && !status; s++) {
            Semantics sem = s ? SEM_PIXEL : SEM_BEARD;
            printf("  %s (%s, IPC %s), %s semantics ...\n", method, arch, ipc, semantics_name(sem));
            fflush(stdout);
            if (demo_eval(dm, &net, &ts->ad, method, "CIFAR10", ipc, sem, &e)) status = cli_error(C, "%s", e.msg);
        }
        net_free(&net);
    }
    for (int f = 0; f < n_listed; f++) xfree(files[f]);
    free(files);
    return status;
}

static int demo_synthetic(Demo *dm, const char *C, int n_test, int epochs, int n_train, const char *why) {
    const DatasetInfo *info = synthetic_info();
    printf("beard demo: %s, so this runs on SYNTHETIC data: procedurally generated\n"
           "shapes (10 classes, 3x16x16), NOT CIFAR-10. The figures show the pipeline working; they are\n"
           "not benchmark results. (`beard download cifar10`, a model pool, then `beard demo`, for the real thing.)\n",
           why);
    Dataset tr, te;
    Err e;
    int status = 0;
    Pool pool;
    memset(&pool, 0, sizeof(pool));
    Net net;
    memset(&net, 0, sizeof(net));
    float *xt = NULL, *xn = NULL;
    if (synthetic_make(&tr, n_train, 1, dm->seed, &e) || synthetic_make(&te, n_test, 0, dm->seed, &e)) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    if (pool_from_dataset(&pool, &tr, info, &e) || model_create(&net, "ConvNetW32", 3, 10, 16, 16, &e)) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    size_t D = (size_t)3 * 16 * 16;
    xt = xmalloc(sizeof(float) * D * n_test); // pixels, for the attacks
    xn = xmalloc(sizeof(float) * D * n_test); // normalised, for the training stage's test
    if (!xt || !xn) {
        status = cli_error(C, "out of memory");
        goto done;
    }
    dataset_to_float(&te, 0, n_test, xt, 0);
    for (int i = 0; i < n_test; i++)
        for (int c = 0; c < 3; c++)
            for (size_t j = 0; j < 256; j++) {
                size_t o = (size_t)i * D + c * 256 + j;
                xn[o] = (xt[o] - info->mean[c]) / info->std[c];
            }
    TrainConfig tc;
    train_config_default(&tc);
    tc.epochs = epochs;
    tc.batch = 64;
    tc.dsa = 0;
    tc.eval_every = 0;
    tc.progress = 1;
    TrainTest test = {xn, te.labels, n_test};
    TrainResult tres;
    printf("training ConvNetW32 on %d synthetic images for %d epochs (SGD, BEARD's recipe without DSA) ...\n",
           n_train, epochs + 1);
    fflush(stdout);
    if (train_model(&net, &pool, &test, &tc, dm->seed, NULL, &tres, &e)) {
        status = cli_error(C, "training: %s", e.msg);
        goto done;
    }
    printf("trained in %.1fs: test accuracy %.2f%% on %d synthetic images\n", tres.seconds, tres.test_acc, n_test);
    AttackData ad = {.x = xt, .y = te.labels, .n = n_test, .C = 3, .H = 16, .W = 16, .mean = info->mean,
                     .std = info->std};
    for (int s = 0; s < 2 && !status; s++) {
        Semantics sem = s ? SEM_PIXEL : SEM_BEARD;
        printf("  attacking, %s semantics ...\n", semantics_name(sem));
        fflush(stdout);
        if (demo_eval(dm, &net, &ad, "synthetic", "SYNTHETIC", "all", sem, &e)) status = cli_error(C, "%s", e.msg);
    }
done:
    xfree(xt), xfree(xn);
    net_free(&net);
    pool_free(&pool);
    dataset_free(&tr), dataset_free(&te);
    return status;
}

int cmd_demo(int argc, char **argv) {
    const char *C = "demo", *data = NULL, *pool = NULL, *attacks = NULL, *out = "beard-demo";
    long n = -1, max_models = 0, epochs = 11, seed = 0, threads = 0;
    int synthetic = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--synthetic")) synthetic = 1;
        else if (cli_flag(argv, i, "--quick")) quick = 1;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--model-pool", &missing))) pool = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--attack,--attacks", &missing))) attacks = v;
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) out = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--limit,--n,--n-examples,--test-limit", &missing))) {
            if (cli_parse_int(C, "--limit", v, 1, 10000, &n)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--max-models", &missing))) {
            if (cli_parse_int(C, "--max-models", v, 0, 1000, &max_models)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--epochs", &missing))) {
            if (cli_parse_int(C, "--epochs", v, 1, 1000, &epochs)) return 2;
            epochs--; // the training stage runs epochs + 1
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &seed)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard demo --help)", argv[i]);
    }
    parallel_set_threads((int)threads);
    if (cli_check_output_dir(C, "--out", out)) return 1;
    double t0 = time_now();

    // real data: CIFAR-10 and a model pool
    CliTestSet ts;
    memset(&ts, 0, sizeof(ts));
    int use_real = 0;
    char sibling[1100], why[1300];
    snprintf(why, sizeof(why), "%s", synthetic ? "--synthetic" : "no CIFAR-10 found (--data DIR, or ./data)");
    const char *data_dir = data ? data : "data";
    if (!synthetic) {
        long limit = n > 0 ? n : (quick ? 8 : 50);
        Dataset probe;
        Err e;
        int found = dataset_load(&probe, "cifar10", data_dir, 0, 1, &e) == 0;
        dataset_free(&probe);
        if (!found && data) return cli_error(C, "%s (`beard download cifar10 --data %s` fetches it)", e.msg, data);
        if (found) {
            // BEARD's layout keeps data/ and beard/model_pool/ side by side (../shared here)
            size_t dl = strlen(data_dir);
            while (dl > 1 && data_dir[dl - 1] == '/') dl--;
            const char *slash = memrchr(data_dir, '/', dl);
            snprintf(sibling, sizeof(sibling), "%.*s/beard/model_pool", slash ? (int)(slash - data_dir) : 1,
                     slash ? data_dir : ".");
            if (!pool) pool = is_dir("../shared/beard/model_pool") ? "../shared/beard/model_pool"
                              : is_dir(sibling)                  ? sibling
                              : is_dir("model_pool")             ? "model_pool"
                                                                 : NULL;
            if (!pool) {
                snprintf(why, sizeof(why), "CIFAR-10 is in %s but there is no model pool (--model-pool DIR)", data_dir);
            }
            else if (cli_load_testset(C, "cifar10", data_dir, limit, &ts)) return 1;
            else use_real = 1;
        }
    }
    Demo *dm = calloc(1, sizeof(Demo));
    if (!dm) return cli_error(C, "out of memory");
    dm->out = out;
    dm->seed = (uint64_t)seed;
    const char *list = attacks ? attacks
                       : quick ? "FGSM,PGD"
                       : use_real ? "FGSM,PGD,PGD_L2"
                               : "FGSM,PGD,PGD_L2,Deepfool,CW";
    char *names = xstrdup(list);
    int status = 0;
    for (char *tok = strtok(names, ","); tok && !status; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (!*tok || !strcasecmp(tok, "clean")) continue;
        // unknown names are errors, as in every command
        if (!attack_name_known(tok)) status = cli_usage_error(C, "unknown attack '%s' (beard attack --list names them)", tok);
        else if (dm->n < DEMO_MAX_ATTACKS) dm->names[dm->n++] = tok;
    }
    if (!status && dm->n == 0) status = cli_error(C, "no attack to run (beard attack --list names them)");
    if (status) {
        // nothing to run
    } else if (use_real) status = demo_real(dm, C, &ts, data_dir, pool, quick && !max_models ? 1 : (int)max_models);
    else
        status = demo_synthetic(dm, C, n > 0 ? (int)n : (quick ? 64 : 200), quick ? 2 : (int)epochs, quick ? 600 : 2000,
                                why);
    if (!status && dm->n_rows) {
        print_table(dm);
        printf("\nBEARD logs and results.json: %s/  (`beard metrics %s/*/*/*_results.json` for more: per-sample\n"
               "ASR, passes-based AE, bootstrap intervals). Took %.0fs.\n", out, out, time_now() - t0);
        if (!attacks && !quick)
            printf("Left out for time: AA, Square, SPSA (thousands of passes per image); add them with --attack.\n");
    }
    xfree(names);
    free(dm);
    cli_testset_free(&ts);
    return status;
}
