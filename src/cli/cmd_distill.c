/*
 * cmd_distill.c: `beard distill`, stage 1: a distilled set from a real training set with
 * one of the methods of src/distill (DM, IDM, BACON, DC, DSA, MTT; the decoupled SRe2L, CDA,
 * SC-DD, G-VBSM and DELT from a squeezed teacher), written in the method's own release
 * format (res_*.pt, .pkl, the decoupled methods' image folder) with its PNG grid.
 *
 * Settings: beard's defaults, then --config (a JSON with the official argparse names,
 * see distill.h), then the command line. Method parameters go by the official names
 * (--lr-img 0.5, --lr_img 0.5 or --param lr_img=0.5); a parameter the method does not
 * have is a usage error. The library side is src/distill/stage.c.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/parallel.h"
#include "../distill/distill.h"
#include "../io/file.h"
#include "../models/convnet.h"
#include "cli.h"

static const char *C = "distill";

static void usage(FILE *f) {
    fprintf(f,
            "usage: beard distill --method DM --dataset cifar10 --ipc 10 [--data DIR] [options]\n"
            "       beard distill --method SRe2L --teacher T.pth [--arch resnet18_modified] --dataset cifar10 --ipc 10\n"
            "       beard distill --config distill_config.json [options]\n"
            "\n"
            "Distils the real training set of a dataset into IPC synthetic images per class and\n"
            "writes the method's release files: res_{method}_{dataset}_{model}_{ipc}ipc.pt (what\n"
            "BEARD's train_model.py and `beard train --data-file` read), IDM/BACON's .pkl, the\n"
            "decoupled methods' image folder {method}_{dataset}_{model}_{ipc}ipc/new000/class000_id000.jpg\n"
            "(.png for G-VBSM), and the vis_*.png grid.\n"
            "\n"
            "The decoupled methods (SRe2L, CDA, SC-DD, G-VBSM, DELT) recover images from a teacher\n"
            "squeezed on the real data (beard train --src-dataset --recipe sre2l-squeeze, or a\n"
            "torchvision-layout checkpoint): --teacher T.pth (required), --arch its architecture\n"
            "(default resnet18_modified, SRe2L's CIFAR teacher: torchvision's ResNet-18 with a 3x3\n"
            "conv1 and no max-pool; any zoo model with BatchNorm, e.g. ConvNetBN; G-VBSM takes several\n"
            "teachers, --teacher A.pth,B.pth --teacher_arch resnet18_modified,MobileNetV2, used one per\n"
            "iteration in turn). --iterations counts one recover batch's Adam steps (the official\n"
            "--iteration; default 1000 for SRe2L, CDA, SC-DD, 4000 for G-VBSM and DELT), and the set\n"
            "is recovered in batches: SRe2L, CDA and SC-DD one batch of up to batch_size classes per\n"
            "ipc id (ipc x ceil(classes / batch_size) batches), G-VBSM and DELT the ipc x classes\n"
            "images class-major in batches of batch_size; the run's steps are batches x iterations,\n"
            "and checkpoints may fall inside a batch. Relabelling is stage 2:\n"
            "beard train --data-file OUT/{stem} --teacher T.pth --recipe sre2l-relabel (online soft\n"
            "labels), or beard relabel (FKD files) then beard train --fkd.\n"
            "\n"
            "stage:       --method NAME  --dataset NAME (cifar10, cifar100, mnist, fashionmnist, svhn,\n"
            "             tinyimagenet)  --ipc N (required)  --data DIR (default ./data)  --arch A (the official\n"
            "             --model; default ConvNet, the decoupled methods' resnet18_modified)\n"
            "             --iterations N (alias --iteration; the official Iteration: N+1 updates,\n"
            "             default %d; the decoupled methods: per recover batch, their default below)\n"
            "             --seed S (default 0; same seed and threads: identical output)\n"
            "             --threads N (default: all cores)  --train-limit N (the first N training\n"
            "             images; 0 = all; SRe2L, CDA and SC-DD read no training images)\n"
            "             --init-from FILE (DM, IDM, BACON, DC, DSA: start from the images of a\n"
            "             res_*.pt / .pkl holding this dataset's and IPC's class-major set, IDM/BACON's\n"
            "             compact mosaics, instead of the method's initialisation; every other draw\n"
            "             stays that of --seed)\n"
            "output:      --out PATH (a folder, default ./result, or a res file name ending in .pt;\n"
            "             alias --save-path)  --force (replace existing outputs)  --json FILE\n"
            "             --dry-run (print the settings and exit)  --quiet (no progress bar)\n"
            "             --log-every N (an official-style loss line every N iterations; 0: none)\n"
            "checkpoints: --checkpoint-every N (default 100; 0: none), written atomically next to\n"
            "             the outputs as {method}_{dataset}_{model}_{ipc}ipc.checkpoint.pt and\n"
            "             removed when the run completes  --resume (continue from it)\n"
            "             --stop-after N (run N steps, write the checkpoint, exit; --resume continues)\n"
            "evaluation:  --eval-every N (train --num-eval models on the set every N updates and\n"
            "             at the end; default 0: off)  --num-eval K (5)  --eval-epochs E (the official\n"
            "             epoch_eval_train, 1000)  --lr-net 0.01  --batch-train 256 (IDM/BACON's\n"
            "             model queue trains with --lr-net too, as the official code does)\n"
            "method parameters: --NAME VALUE or --param NAME=VALUE, by the official names (a list\n"
            "             parameter such as --teacher takes a comma-separated list, or the option again)\n"
            "\n"
            "methods and their parameters (official defaults):\n",
            DISTILL_DEFAULT_ITERATIONS);
    for (int i = 0; i < distill_method_count(); i++) {
        const DistillMethodDef *d = distill_method_get(i);
        fprintf(f, "  %s: %s\n      (%s)\n", d->name, d->summary, d->reference);
        if (d->default_iterations || d->default_arch)
            fprintf(f, "      --iterations %ld %s; --arch %s\n",
                    d->default_iterations ? d->default_iterations : (long)DISTILL_DEFAULT_ITERATIONS,
                    d->iterations_help ? d->iterations_help : "", d->default_arch ? d->default_arch : "ConvNet");
        DistillParams p;
        distill_params_init(&p, d);
        for (int k = 0; k < p.n; k++) {
            char buf[DISTILL_STR_MAX];
            fprintf(f, "      --%-22s %-10s %s\n", d->params[k].name, distill_param_text(&p, k, buf, sizeof(buf)),
                    d->params[k].help);
        }
        if (d->setting_help) fprintf(f, "      %s\n", d->setting_help);
    }
}

// list parameters given on the command line so far (a repeated one adds to the list)
static unsigned char cli_given[DISTILL_MAX_PARAMS];

// --NAME VALUE for a method parameter: the option name with dashes as underscores
static int method_opt(int argc, char **argv, int *i, DistillSettings *s, const DistillMethodDef *def, int *rc) {
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) || !def) return 0;
    char name[64];
    const char *eq = strchr(a + 2, '=');
    size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (len == 0 || len >= sizeof(name)) return 0;
    memcpy(name, a + 2, len);
    name[len] = 0;
    DistillParams probe;
    distill_params_init(&probe, def);
    if (distill_param_index(&probe, name) < 0) return 0;
    const char *v = eq ? eq + 1 : NULL;
    if (!v) {
        if (*i + 1 >= argc) {
            *rc = cli_usage_error(C, "option %s needs a value", a);
            return 1;
        }
        v = argv[++*i];
    }
    Err e;
    int k = distill_param_index(&probe, name);
    int append = def->params[k].type == DPARAM_LIST && cli_given[k];
    if ((append ? distill_settings_append_param(s, name, v, &e) : distill_settings_add_param(s, name, v, &e)))
        *rc = cli_usage_error(C, "%s", e.msg);
    cli_given[k] = 1;
    return 1;
}

typedef struct {
    const char *json, *init_from;
    int quiet, force, resume, dry_run;
    long train_limit, stop_after;
} Opts;

static int parse(int argc, char **argv, DistillSettings *s, Opts *o, const DistillMethodDef *def) {
    memset(cli_given, 0, sizeof(cli_given));
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0, rc = 0;
        long l;
        double d;
        Err e;
        if (cli_flag(argv, i, "--quiet")) o->quiet = 1;
        else if (cli_flag(argv, i, "--force")) o->force = 1;
        else if (cli_flag(argv, i, "--resume")) o->resume = 1;
        else if (cli_flag(argv, i, "--dry-run")) o->dry_run = 1;
        else if ((v = cli_opt(argc, argv, &i, "--config", &missing))) continue; // read first
        else if ((v = cli_opt(argc, argv, &i, "--method", &missing))) snprintf(s->method, sizeof(s->method), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) snprintf(s->dataset, sizeof(s->dataset), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) snprintf(s->data_path, sizeof(s->data_path), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing)) || (v = cli_opt(argc, argv, &i, "--model", &missing)))
            snprintf(s->arch, sizeof(s->arch), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing)) || (v = cli_opt(argc, argv, &i, "--save-path", &missing)))
            snprintf(s->out, sizeof(s->out), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) o->json = v;
        else if ((v = cli_opt(argc, argv, &i, "--init-from", &missing))) o->init_from = v;
        else if ((v = cli_opt(argc, argv, &i, "--ipc", &missing))) {
            if (cli_parse_int(C, "--ipc", v, 1, 100000, &l)) return 2;
            s->ipc = (int)l;
        } else if ((v = cli_opt_any(argc, argv, &i, "--iterations,--Iteration,--iteration", &missing))) {
            if (cli_parse_int(C, "--iterations", v, 0, 100000000, &l)) return 2;
            s->iterations = l;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &l)) return 2;
            s->seed = l;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &l)) return 2;
            s->threads = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--train-limit", &missing))) {
            if (cli_parse_int(C, "--train-limit", v, 0, 1L << 30, &l)) return 2;
            o->train_limit = l;
        } else if ((v = cli_opt(argc, argv, &i, "--checkpoint-every", &missing))) {
            if (cli_parse_int(C, "--checkpoint-every", v, 0, 100000000, &l)) return 2;
            s->ckpt_every = l;
        } else if ((v = cli_opt(argc, argv, &i, "--stop-after", &missing))) {
            if (cli_parse_int(C, "--stop-after", v, 0, 100000000, &l)) return 2;
            o->stop_after = l;
        } else if ((v = cli_opt(argc, argv, &i, "--eval-every", &missing))) {
            if (cli_parse_int(C, "--eval-every", v, 0, 100000000, &l)) return 2;
            s->eval_every = l;
        } else if ((v = cli_opt(argc, argv, &i, "--log-every", &missing))) {
            if (cli_parse_int(C, "--log-every", v, 0, 100000000, &l)) return 2;
            s->log_every = l;
        } else if ((v = cli_opt(argc, argv, &i, "--num-eval", &missing))) {
            if (cli_parse_int(C, "--num-eval", v, 1, 1000, &l)) return 2;
            s->num_eval = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--eval-epochs", &missing))) {
            if (cli_parse_int(C, "--eval-epochs", v, 0, 10000000, &l)) return 2;
            s->epoch_eval_train = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--batch-train", &missing))) {
            if (cli_parse_int(C, "--batch-train", v, 1, 1 << 20, &l)) return 2;
            s->batch_train = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--lr-net", &missing))) {
            if (cli_parse_num(C, "--lr-net", v, &d)) return 2;
            if (!(d > 0)) return cli_usage_error(C, "--lr-net must be positive");
            s->lr_net = d;
        } else if ((v = cli_opt(argc, argv, &i, "--param", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) return cli_usage_error(C, "--param expects NAME=VALUE, got '%s'", v);
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            if (distill_settings_add_param(s, name, eq + 1, &e)) return cli_usage_error(C, "%s", e.msg);
        } else if (missing) return 2;
        else if (method_opt(argc, argv, &i, s, def, &rc)) {
            if (rc) return rc;
        } else if (!def && !strncmp(argv[i], "--", 2) && i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
            // no method yet (it may come later): keep it as a method parameter, checked then
            if (distill_settings_add_param(s, argv[i] + 2, argv[i + 1], &e)) return cli_usage_error(C, "%s", e.msg);
            i++;
        } else {
            // a parameter of another method: say that this method has no such parameter
            char name[64];
            snprintf(name, sizeof(name), "%s", argv[i] + 2);
            char *eq = strchr(name, '=');
            if (eq) *eq = 0;
            for (int k = 0; def && !strncmp(argv[i], "--", 2) && k < distill_method_count(); k++) {
                DistillParams probe;
                distill_params_init(&probe, distill_method_get(k));
                if (distill_param_index(&probe, name) >= 0) {
                    distill_params_init(&probe, def);
                    for (char *q = name; *q; q++)
                        if (*q == '-') *q = '_';
                    if (distill_params_set_text(&probe, name, "0", &e)) return cli_usage_error(C, "%s", e.msg);
                }
            }
            return cli_usage_error(C, "unknown option '%s' (see beard distill --help)", argv[i]);
        }
    }
    return 0;
}

static int write_json(const char *path, const DistillConfig *cfg, const DistillParams *p, const DistillPaths *paths,
                      const DistillResult *res, int threads, const Dataset *train) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", cfg->method->name);
    cJSON_AddStringToObject(o, "dataset", cfg->info->name);
    cJSON_AddStringToObject(o, "model", cfg->arch);
    cJSON_AddNumberToObject(o, "ipc", cfg->ipc);
    cJSON_AddNumberToObject(o, "iterations", (double)cfg->iterations);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "n_train", train ? train->n : 0);
    cJSON *pp = cJSON_AddObjectToObject(o, "params");
    for (int i = 0; i < p->n; i++) {
        const DistillParamDef *d = &p->def->params[i];
        if (d->type == DPARAM_STR || d->type == DPARAM_LIST) cJSON_AddStringToObject(pp, d->name, p->s[i]);
        else if (d->type == DPARAM_BOOL) cJSON_AddBoolToObject(pp, d->name, p->v[i] != 0);
        else cJSON_AddNumberToObject(pp, d->name, p->v[i]);
    }
    cJSON_AddNumberToObject(o, "steps", (double)res->steps);
    cJSON_AddNumberToObject(o, "steps_run", (double)res->steps_run);
    cJSON_AddNumberToObject(o, "resumed_from", (double)res->resumed_from);
    cJSON_AddNumberToObject(o, "seconds", res->seconds);
    cJSON_AddNumberToObject(o, "iterations_per_second", res->seconds > 0 ? res->steps_run / res->seconds : 0);
    cJSON_AddNumberToObject(o, "eval_seconds", res->eval_seconds);
    cJSON_AddNumberToObject(o, "final_loss", res->final_loss);
    cJSON_AddNumberToObject(o, "peak_memory_mb", res->peak_mb);
    cJSON *ev = cJSON_AddArrayToObject(o, "evaluations");
    for (int k = 0; k < res->n_evals; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "updates", (double)res->eval_it[k]);
        cJSON_AddNumberToObject(e, "mean_accuracy", res->eval_mean[k]);
        cJSON_AddNumberToObject(e, "std_accuracy", res->eval_std[k]);
        cJSON_AddItemToArray(ev, e);
    }
    cJSON *fa = cJSON_AddArrayToObject(o, "final_accuracies");
    for (int k = 0; k < res->n_final_accs; k++) cJSON_AddItemToArray(fa, cJSON_CreateNumber(100.0 * res->final_accs[k]));
    cJSON *out = cJSON_AddObjectToObject(o, "outputs");
    cJSON_AddStringToObject(out, "res", paths->res);
    if (cfg->method->outputs & DISTILL_OUT_PKL) cJSON_AddStringToObject(out, "pkl", paths->pkl);
    cJSON_AddStringToObject(out, "png", paths->png);
    if (cfg->method->outputs & DISTILL_OUT_IMAGEFOLDER) cJSON_AddStringToObject(out, "images", paths->images);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    Err e;
    int rc = txt ? file_write_all(path, txt, strlen(txt), &e) : -1;
    free(txt);
    return rc;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int cmd_distill(int argc, char **argv) {
    const char *config = NULL, *method = NULL;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            return 0;
        }
        if ((v = cli_opt(argc, argv, &i, "--config", &missing))) config = v;
        else if ((v = cli_opt(argc, argv, &i, "--method", &missing))) method = v;
        else if (missing) return 2;
    }
    DistillSettings s;
    distill_settings_default(&s);
    Err e;
    if (config && distill_settings_load_json(&s, config, &e)) return cli_usage_error(C, "%s", e.msg);
    if (method) snprintf(s.method, sizeof(s.method), "%s", method);
    const DistillMethodDef *def = s.method[0] ? distill_method_find(s.method) : NULL;
    Opts o = {0};
    int rc = parse(argc, argv, &s, &o, def);
    if (rc) return rc;
    if (!s.method[0]) return cli_usage_error(C, "--method is required (see beard distill --help for the methods)");
    if (!def) {
        char list[256] = "";
        for (int i = 0; i < distill_method_count(); i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", distill_method_get(i)->name);
        return cli_usage_error(C, "unknown method '%s' (methods: %s)", s.method, list);
    }
    if (!s.dataset[0]) return cli_usage_error(C, "--dataset is required (e.g. --dataset cifar10)");
    const DatasetInfo *info = dataset_info(s.dataset);
    if (!info)
        return cli_usage_error(C, "unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)",
                               s.dataset);
    if (s.ipc < 1) return cli_usage_error(C, "--ipc is required (images per class, e.g. --ipc 10)");
    DistillParams p;
    if (distill_settings_params(&s, def, info, &p, &e)) return cli_usage_error(C, "%s", e.msg);
    parallel_set_threads(s.threads);

    if (!s.arch[0]) snprintf(s.arch, sizeof(s.arch), "%s", def->default_arch ? def->default_arch : "ConvNet");
    long def_iters = def->default_iterations ? def->default_iterations : DISTILL_DEFAULT_ITERATIONS;
    DistillConfig cfg = {.method = def, .info = info, .ipc = s.ipc, .seed = (uint64_t)s.seed,
                         .iterations = s.iterations >= 0 ? s.iterations : def_iters,
                         .eval_every = s.eval_every, .num_eval = s.num_eval, .epoch_eval_train = s.epoch_eval_train,
                         .batch_train = s.batch_train, .lr_net = s.lr_net, .ckpt_every = s.ckpt_every,
                         .progress = !o.quiet, .log = stdout, .log_every = s.log_every, .stop_after = o.stop_after,
                         .init_from = o.init_from};
    snprintf(cfg.arch, sizeof(cfg.arch), "%s", s.arch);
    Net probe;
    if (model_create(&probe, cfg.arch, info->c, info->n_classes, info->h, info->w, &e))
        return cli_usage_error(C, "%s", e.msg);
    net_free(&probe);
    DistillPaths paths;
    if (distill_paths(&paths, s.out, &cfg, &e)) return cli_usage_error(C, "%s", e.msg);
    snprintf(cfg.ckpt_path, sizeof(cfg.ckpt_path), "%s", paths.ckpt);

    if (def->iterations_help)
        printf("beard distill: %s on %s, %s, ipc %d, %ld iterations %s, seed %lld, %d threads\n", def->name, info->name,
               cfg.arch, cfg.ipc, cfg.iterations, def->iterations_help, s.seed, parallel_threads());
    else
        printf("beard distill: %s on %s, %s, ipc %d, %ld iterations (%ld updates), seed %lld, %d threads\n", def->name,
               info->name, cfg.arch, cfg.ipc, cfg.iterations, cfg.iterations + 1, s.seed, parallel_threads());
    printf("  parameters:");
    for (int k = 0; k < p.n; k++) {
        char buf[DISTILL_STR_MAX];
        printf(" %s=%s", def->params[k].name, distill_param_text(&p, k, buf, sizeof(buf)));
    }
    printf("\n  output: %s", paths.res);
    if (def->outputs & DISTILL_OUT_PKL) printf(", %s", paths.pkl);
    printf(", %s", paths.png);
    if (def->outputs & DISTILL_OUT_IMAGEFOLDER) printf(", %s/", paths.images);
    printf("\n");
    if (cfg.init_from) printf("  initial set from %s\n", cfg.init_from);
    if (cfg.ckpt_every) printf("  checkpoint every %ld iterations: %s\n", cfg.ckpt_every, cfg.ckpt_path);
    if (cfg.eval_every)
        printf("  evaluation every %ld updates: %d %s models, %d epochs\n", cfg.eval_every, cfg.num_eval, cfg.arch,
               cfg.epoch_eval_train + 1);
    fflush(stdout);
    if (o.dry_run) return 0;
    if (o.resume && !exists(cfg.ckpt_path))
        return cli_error(C, "--resume: no checkpoint at %s (it is removed when a run completes)", cfg.ckpt_path);
    if (!o.resume && !o.force) {
        const char *outs[4] = {paths.res, def->outputs & DISTILL_OUT_PKL ? paths.pkl : NULL, cfg.ckpt_path,
                               def->outputs & DISTILL_OUT_IMAGEFOLDER ? paths.images : NULL};
        for (int k = 0; k < 4; k++)
            if (outs[k] && exists(outs[k]))
                return cli_error(C, "%s exists (--force replaces it%s)", outs[k], k == 2 ? ", --resume continues from it" : "");
    }
    if (o.json && file_check_writable(o.json, 1, &e)) return cli_error(C, "--json: %s", e.msg);

    Dataset train;
    memset(&train, 0, sizeof(train));
    int use_train = !def->no_real_data; // SRe2L, CDA, SC-DD recover from their teacher alone
    if (use_train && dataset_load(&train, s.dataset, s.data_path, 1, o.train_limit, &e)) {
        dataset_free(&train);
        return cli_error(C, "%s (use --data DIR; `beard download %s` fetches it)", e.msg, s.dataset);
    }
    CliTestSet ts;
    memset(&ts, 0, sizeof(ts));
    float *xt = NULL;
    TrainTest test = {0};
    int status = 1;
    if (cfg.eval_every > 0) {
        if (cli_load_testset(C, s.dataset, s.data_path, 0, &ts)) goto done;
        size_t D = (size_t)ts.ds.c * ts.ds.h * ts.ds.w;
        if (!(xt = xmalloc(sizeof(float) * D * ts.ds.n))) {
            cli_error(C, "out of memory");
            goto done;
        }
        dataset_to_float(&ts.ds, 0, ts.ds.n, xt, 1);
        test = (TrainTest){.x = xt, .y = ts.ds.labels, .n = ts.ds.n};
    }
    DistillResult res;
    if (distill_run(&cfg, &p, use_train ? &train : NULL, cfg.eval_every > 0 ? &test : NULL, NULL, &paths, o.resume, &res,
                    &e)) {
        cli_error(C, "%s", e.msg);
        distill_result_free(&res);
        goto done;
    }
    printf("distilled %ld iterations%s in %.1fs (%.3f it/s), final loss %.4f, peak memory %.0f MB\n", res.steps_run,
           res.resumed_from ? " (resumed)" : "", res.seconds, res.seconds > 0 ? res.steps_run / res.seconds : 0.0,
           res.final_loss, res.peak_mb);
    for (int k = 0; k < res.n_evals; k++)
        printf("  evaluation after %ld updates: %.2f +- %.2f%%\n", res.eval_it[k], res.eval_mean[k], res.eval_std[k]);
    if (res.stopped) {
        printf("stopped after %ld of %ld steps (--stop-after): checkpoint %s; --resume continues\n",
               res.resumed_from + res.steps_run, res.steps, cfg.ckpt_path);
        distill_result_free(&res);
        status = 0;
        goto done;
    }
    printf("wrote %s\n", paths.res);
    if (def->outputs & DISTILL_OUT_PKL) printf("wrote %s\n", paths.pkl);
    printf("wrote %s\n", paths.png);
    if (def->outputs & DISTILL_OUT_IMAGEFOLDER)
        printf("wrote %s/new000/class000_id000.%s .. (%d images)\n", paths.images, def->image_ext, info->n_classes * cfg.ipc);
    if (o.json && write_json(o.json, &cfg, &p, &paths, &res, parallel_threads(), use_train ? &train : NULL)) {
        cli_error(C, "cannot write %s", o.json);
        distill_result_free(&res);
        goto done;
    }
    distill_result_free(&res);
    status = 0;
done:
    xfree(xt);
    cli_testset_free(&ts);
    dataset_free(&train);
    return status;
}
