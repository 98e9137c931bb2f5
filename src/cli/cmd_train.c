/*
 * cmd_train.c: `beard train`, BEARD's training stage: a model pool from a distilled set.
 *
 * Settings come from beard's defaults (BEARD/DC-bench's evaluate_synset recipe), then an
 * optional BEARD train_config.json (--config), then the command line (train_config.h).
 * The library side is src/train/train.c; this file loads the data, prints, and writes the
 * JSON summary.
 */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/parallel.h"
#include "../io/file.h"
#include "../models/checkpoint.h"
#include "../models/registry.h"
#include "../train/recipe.h"
#include "../train/train.h"
#include "../train/train_config.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard train --data-file POOL_FILE --dataset cifar10 [--data DIR] [options]\n"
    "       beard train --config train_config.json [options]\n"
    "\n"
    "Trains --runs models on a distilled set with BEARD/DC-bench's recipe and reports the\n"
    "mean and std of their test accuracy. POOL_FILE: a DC/DSA/DM res_*.pt, an MTT folder\n"
    "(images_best.pt, labels_best.pt[, lr_best.pt]), an IDM/BACON .pkl, a legacy .pt, or a\n"
    "folder of class sub-folders of PNG/JPEG images (SRe2L, CDA, ...).\n"
    "\n"
    "data:      --data DIR (the dataset; default ./data)   --src-dataset (train on the real\n"
    "           training set)   --exp N (res_*.pt experiment; default -1, the last)\n"
    "           --unpack4 (IDM/BACON's 4-in-1 unpacking; BEARD's \"aug\")   --pixels (float\n"
    "           images in the file are [0,1] pixels, not normalised)   --limit N (test images\n"
    "           to evaluate on; default 0: all)\n"
    "recipe:    --arch ConvNet (or A,B,C: each trains --runs models on the set, then a\n"
    "           cross-architecture table; `beard --help` lists the architectures)\n"
    "           --eval-mode M|B|W|D|A|P|N (DC's evaluation pools, e.g. M = MLP,ConvNet,\n"
    "           LeNet,AlexNet,VGG11,ResNet18)  --epochs 1000 (trains epochs+1)  --runs 5  --seed 0 (run r\n"
    "           uses seed+r)  --optimizer sgd|adam (adam: lr 1e-4, batch 128)  --lr 0.01\n"
    "           --batch 256  --momentum 0.9  --weight-decay 5e-4  --no-lr-decay\n"
    "           --learned-lr (MTT's lr_best.pt)  --no-aug (no DSA)  --dsa-strategy S\n"
    "adversarial training:\n"
    "           --train-attack NAME (None, TRADES, or any attack of `beard attack --list`, and BEARD's\n"
    "           PGD_e4, PGD_s2, ...)  --train-targeted  --train-semantics beard|pixel\n"
    "           (beard: BEARD's code, normalised batch, no random start, targets (y+1)%10;\n"
    "           pixel: Madry PGD-AT on [0,1] pixels with random start; default pixel, the\n"
    "           standard threat model, or beard with --config, to reproduce BEARD's pool)\n"
    "           --train-param NAME=VALUE (e.g. eps=8/255; TRADES: beta, eps,\n"
    "           step_size, steps)\n"
    "decoupled methods (SRe2L, CDA, SC-DD, G-VBSM, DELT; their recipes instead of BEARD's):\n"
    "           --recipe NAME (sre2l-squeeze: the teacher, with --src-dataset: SGD 0.1, cosine,\n"
    "           200 epochs, batch 128, crop+flip; gvbsm-squeeze: SGD 0.05, 5 epochs, batch 64;\n"
    "           sre2l-relabel (= cda-, scdd-relabel): AdamW 1e-3 wd 0.01, cosine, 400 epochs, batch\n"
    "           128, crop+flip, mixup 0.8, KL at T 30, teacher in train mode as SRe2L's code leaves it;\n"
    "           rded-relabel (= delt-relabel): CutMix, T 20, teacher in eval mode, 300 epochs, batch\n"
    "           50, RandomResizedCrop; gvbsm-relabel: MSE to the teacher logits + 0.15 CE, CutMix)\n"
    "           --teacher T.pth (soft labels from it, online; implies --soft-labels)\n"
    "           --teacher-arch A (default --arch)   --soft-labels (default recipe sre2l-relabel)\n"
    "           --temperature T  --mix mixup|cutmix|none  --teacher-mode train|eval\n"
    "           --loss kl|mse-gt|ce  --ce-weight W  --lr-schedule cosine|cosine-half|constant\n"
    "           --aug crop-flip|rrc-flip|none  --optimizer adamw  --linear-probe (train the last\n"
    "           linear layer of --init CKPT only, the backbone frozen: SC-DD's probe)  --init CKPT\n"
    "           (every run starts from this checkpoint)  --fkd DIR (stored soft labels from `beard\n"
    "           relabel`, replayed: crops, flips, mix; recipe gvbsm-relabel by default).\n"
    "           --epochs N is the number of epochs here.\n"
    "output:    --out DIR (saves {method}_{model}_{dataset}_{ipc}_{attack}_{acc}.pth, the\n"
    "           best evaluated snapshot, and ..._{attack}.pth, the final model of the best\n"
    "           run)  --method NAME  --ipc N  --json OUT  --eval-every 100  --log-every 1\n"
    "           --threads N (0: all cores)  --quiet\n"
    "A given --ipc (or the config's \"ipc\") must match the file; method, model, ipc and the\n"
    "attack name become file names (letters, digits and ._-+=,@ only). Old spellings:\n"
    "--save-path, --test-limit. An output folder or --json that cannot be written fails\n"
    "before training starts.\n";

// DC's file names: res_<method>_<dataset>_<model>_<ipc>ipc.pt
static void guess_method(const char *path, int mtt, char *out, size_t n) {
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    const char *b = basename(tmp);
    if (mtt) {
        snprintf(out, n, "MTT");
        return;
    }
    if (!strncmp(b, "res_", 4)) {
        const char *u = strchr(b + 4, '_');
        if (u) {
            snprintf(out, n, "%.*s", (int)(u - b - 4), b + 4);
            return;
        }
    }
    snprintf(out, n, "custom");
}

static int parse_opts(int argc, char **argv, TrainSettings *s, const char **json, int *quiet) {
    const char *C = "train";
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        long l;
        double d;
        Err e;
        if (cli_flag(argv, i, "--src-dataset")) s->src_dataset = 1;
        else if (cli_flag(argv, i, "--unpack4")) s->unpack4 = 1;
        else if (cli_flag(argv, i, "--pixels")) s->pixels = 1;
        else if (cli_flag(argv, i, "--no-aug")) snprintf(s->dsa_strategy, sizeof(s->dsa_strategy), "None");
        else if (cli_flag(argv, i, "--no-lr-decay")) s->lr_decay = 0;
        else if (cli_flag(argv, i, "--learned-lr")) s->learned_lr = 1;
        else if (cli_flag(argv, i, "--train-targeted")) s->target_attack = 1;
        else if (cli_flag(argv, i, "--quiet")) *quiet = 1;
        else if (cli_flag(argv, i, "--soft-labels")) s->soft_labels = 1;
        else if (cli_flag(argv, i, "--linear-probe")) s->linear_probe = 1;
        else if ((v = cli_opt(argc, argv, &i, "--recipe", &missing))) {
            Recipe r;
            if (recipe_preset(&r, v)) return cli_usage_error(C, "unknown recipe '%s' (%s)", v, recipe_preset_list());
            snprintf(s->recipe, sizeof(s->recipe), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--teacher", &missing))) snprintf(s->teacher, sizeof(s->teacher), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--teacher-arch", &missing)))
            snprintf(s->teacher_arch, sizeof(s->teacher_arch), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--init", &missing))) snprintf(s->init, sizeof(s->init), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--fkd", &missing))) snprintf(s->fkd, sizeof(s->fkd), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--mix", &missing))) {
            if (strcasecmp(v, "mixup") && strcasecmp(v, "cutmix") && strcasecmp(v, "none"))
                return cli_usage_error(C, "--mix must be mixup, cutmix or none, not '%s'", v);
            snprintf(s->mix, sizeof(s->mix), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--teacher-mode", &missing))) {
            if (strcasecmp(v, "train") && strcasecmp(v, "eval"))
                return cli_usage_error(C, "--teacher-mode must be train or eval, not '%s'", v);
            snprintf(s->teacher_mode, sizeof(s->teacher_mode), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--loss", &missing))) {
            if (strcasecmp(v, "kl") && strcasecmp(v, "mse-gt") && strcasecmp(v, "ce"))
                return cli_usage_error(C, "--loss must be kl, mse-gt or ce, not '%s'", v);
            snprintf(s->loss, sizeof(s->loss), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--lr-schedule", &missing))) {
            if (strcasecmp(v, "cosine") && strcasecmp(v, "cosine-half") && strcasecmp(v, "constant"))
                return cli_usage_error(C, "--lr-schedule must be cosine, cosine-half or constant, not '%s'", v);
            snprintf(s->lr_schedule, sizeof(s->lr_schedule), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--aug", &missing))) {
            if (strcasecmp(v, "crop-flip") && strcasecmp(v, "rrc-flip") && strcasecmp(v, "none"))
                return cli_usage_error(C, "--aug must be crop-flip, rrc-flip or none, not '%s'", v);
            snprintf(s->aug, sizeof(s->aug), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--temperature", &missing))) {
            if (cli_parse_num(C, "--temperature", v, &d)) return 2;
            if (!(d > 0)) return cli_usage_error(C, "--temperature must be positive");
            s->temperature = d, s->set_temperature = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--ce-weight", &missing))) {
            if (cli_parse_num(C, "--ce-weight", v, &d) || d < 0) return cli_usage_error(C, "--ce-weight must be >= 0");
            s->ce_weight = d, s->set_ce_weight = 1;
        }
        else if ((v = cli_opt(argc, argv, &i, "--config", &missing))) continue; // read first
        else if ((v = cli_opt(argc, argv, &i, "--data-file", &missing))) snprintf(s->data_file, sizeof(s->data_file), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) snprintf(s->dataset, sizeof(s->dataset), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) snprintf(s->data_path, sizeof(s->data_path), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing)) || (v = cli_opt(argc, argv, &i, "--model", &missing)))
            snprintf(s->arch, sizeof(s->arch), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--eval-mode", &missing))) {
            const char *pool = train_eval_pool(v);
            if (!pool) return cli_usage_error(C, "--eval-mode must be one of DC's M, B, W, D, A, P, N, not '%s'", v);
            if (*pool) snprintf(s->arch, sizeof(s->arch), "%s", pool);
        } else if ((v = cli_opt(argc, argv, &i, "--method", &missing))) snprintf(s->method, sizeof(s->method), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--ipc", &missing))) snprintf(s->ipc, sizeof(s->ipc), "%s", v);
        else if ((v = cli_opt_any(argc, argv, &i, "--out,--save-path", &missing))) snprintf(s->save_path, sizeof(s->save_path), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) *json = v;
        else if ((v = cli_opt(argc, argv, &i, "--dsa-strategy", &missing)))
            snprintf(s->dsa_strategy, sizeof(s->dsa_strategy), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--train-attack", &missing)))
            snprintf(s->train_attack, sizeof(s->train_attack), "%s", v);
        else if ((v = cli_opt(argc, argv, &i, "--train-semantics", &missing))) {
            if (strcasecmp(v, "beard") && strcasecmp(v, "pixel"))
                return cli_usage_error(C, "--train-semantics must be beard or pixel, not '%s'", v);
            snprintf(s->train_semantics, sizeof(s->train_semantics), "%s", v);
        } else if ((v = cli_opt(argc, argv, &i, "--train-param", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) return cli_usage_error(C, "--train-param expects NAME=VALUE, got '%s'", v);
            char name[32];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            if (train_settings_add_param(s, name, eq + 1, &e)) return cli_usage_error(C, "%s", e.msg);
        } else if ((v = cli_opt(argc, argv, &i, "--optimizer", &missing))) {
            if (strcasecmp(v, "sgd") && strcasecmp(v, "adam") && strcasecmp(v, "adamw"))
                return cli_usage_error(C, "--optimizer must be sgd, adam or adamw, not '%s'", v);
            snprintf(s->optimizer, sizeof(s->optimizer), "%s", v);
            s->set_optimizer = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--epochs", &missing))) {
            if (cli_parse_int(C, "--epochs", v, 0, 10000000, &l)) return 2;
            s->epochs = (int)l, s->set_epochs = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--runs", &missing))) {
            if (cli_parse_int(C, "--runs", v, 1, TRAIN_MAX_RUNS, &l)) return 2;
            s->runs = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &l)) return 2;
            s->seed = l;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 20, &l)) return 2;
            s->batch = (int)l, s->set_batch = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--exp", &missing))) {
            if (cli_parse_int(C, "--exp", v, -1000000, 1000000, &l)) return 2;
            s->exp = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--eval-every", &missing))) {
            if (cli_parse_int(C, "--eval-every", v, 0, 10000000, &l)) return 2;
            s->eval_every = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--log-every", &missing))) {
            if (cli_parse_int(C, "--log-every", v, 0, 10000000, &l)) return 2;
            s->log_every = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &l)) return 2;
            s->threads = (int)l;
        } else if ((v = cli_opt_any(argc, argv, &i, "--limit,--test-limit,--n-examples,--n", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &l)) return 2;
            s->test_limit = l;
        } else if ((v = cli_opt(argc, argv, &i, "--lr", &missing))) {
            if (cli_parse_num(C, "--lr", v, &d)) return 2;
            if (!(d > 0)) return cli_usage_error(C, "--lr must be positive");
            s->lr = d, s->set_lr = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--momentum", &missing))) {
            if (cli_parse_num(C, "--momentum", v, &d) || d < 0) return cli_usage_error(C, "--momentum must be >= 0");
            s->momentum = d, s->set_momentum = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--weight-decay", &missing))) {
            if (cli_parse_num(C, "--weight-decay", v, &d) || d < 0) return cli_usage_error(C, "--weight-decay must be >= 0");
            s->weight_decay = d, s->set_weight_decay = 1;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard train --help)", argv[i]);
    }
    return 0;
}

// a given IPC (config or --ipc) must be what the file holds: it names the checkpoints and
// the leaderboard rows, so a wrong one is a silently wrong result
static int check_ipc(const char *C, const char *ipc, int n, int K, const char *file) {
    char *end;
    long v = strtol(ipc, &end, 10);
    if (*end || v < 1 || v > 100000)
        return cli_error(C, "ipc '%s' is not a whole number of images per class in [1, 100000]", ipc);
    if (n % K == 0 && v != n / K)
        return cli_error(C, "ipc %ld disagrees with %s, which holds %d images of %d classes (%d per class)", v, file, n, K,
                         n / K);
    if (n % K != 0 && (long)K * v > n)
        return cli_error(C, "ipc %ld disagrees with %s, which holds %d images of %d classes", v, file, n, K);
    return 0;
}

// the test split, normalised (what BEARD's test loader yields)
static float *normalised_testset(const CliTestSet *ts) {
    size_t plane = (size_t)ts->ds.h * ts->ds.w, D = plane * ts->ds.c;
    float *x = xmalloc(sizeof(float) * D * ts->ds.n);
    if (x) dataset_to_float(&ts->ds, 0, ts->ds.n, x, 1);
    return x;
}

static cJSON *recipe_json(const Recipe *r, const TrainSettings *s) {
    static const char *mixn[] = {"none", "mixup", "cutmix"}, *lossn[] = {"ce", "kl", "mse-gt"},
                      *augn[] = {"none", "crop-flip", "rrc-flip"}, *schn[] = {"constant", "cosine", "cosine-half"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddNumberToObject(o, "epochs", r->epochs);
    cJSON_AddNumberToObject(o, "batch", r->batch);
    cJSON_AddStringToObject(o, "optimizer", r->optimizer == OPTIM_SGD ? "sgd" : r->optimizer == OPTIM_ADAM ? "adam" : "adamw");
    cJSON_AddNumberToObject(o, "lr", r->lr);
    cJSON_AddNumberToObject(o, "momentum", r->momentum);
    cJSON_AddNumberToObject(o, "weight_decay", r->weight_decay);
    cJSON_AddStringToObject(o, "lr_schedule", schn[r->schedule]);
    cJSON_AddStringToObject(o, "aug", augn[r->aug]);
    cJSON_AddStringToObject(o, "mix", mixn[r->mix]);
    if (r->mix) cJSON_AddNumberToObject(o, "mix_alpha", r->mix_alpha);
    cJSON_AddStringToObject(o, "loss", lossn[r->loss]);
    if (r->loss == RECIPE_LOSS_KL) cJSON_AddNumberToObject(o, "temperature", r->temperature);
    if (r->loss == RECIPE_LOSS_MSE_GT) cJSON_AddNumberToObject(o, "ce_weight", r->ce_weight);
    if (r->teacher) {
        cJSON_AddStringToObject(o, "teacher", s->teacher);
        cJSON_AddStringToObject(o, "teacher_arch", r->teacher->arch);
        cJSON_AddStringToObject(o, "teacher_mode", r->teacher_train ? "train" : "eval");
    }
    if (r->linear_probe) cJSON_AddBoolToObject(o, "linear_probe", 1);
    if (s->init[0]) cJSON_AddStringToObject(o, "init", s->init);
    if (r->fkd_dir) cJSON_AddStringToObject(o, "fkd_soft_labels", r->fkd_dir);
    return o;
}

static int write_recipe_json(const char *path, const Recipe *r, const TrainSettings *s, const char *arch,
                             const DatasetInfo *info) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", s->method);
    cJSON_AddStringToObject(o, "model", arch);
    cJSON_AddStringToObject(o, "dataset", info->name);
    cJSON_AddStringToObject(o, "ipc", s->ipc);
    cJSON_AddStringToObject(o, "data_file", s->src_dataset ? "" : s->data_file);
    cJSON_AddItemToObject(o, "recipe", recipe_json(r, s));
    int rc = cli_write_json("train", path, o);
    cJSON_Delete(o);
    return rc ? -1 : 0;
}

static cJSON *summary_json(const TrainSettings *s, const char *arch, const TrainConfig *cfg, double lr,
                           const Pool *pool, const TrainSummary *sum, int n_test, int threads, const Recipe *recipe) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", s->method);
    cJSON_AddStringToObject(o, "model", arch);
    cJSON_AddStringToObject(o, "dataset", dataset_info(s->dataset)->name);
    cJSON_AddStringToObject(o, "ipc", s->ipc);
    cJSON_AddStringToObject(o, "data_file", s->src_dataset ? "" : s->data_file);
    cJSON_AddStringToObject(o, "format", pool->format);
    if (pool->n_exps) cJSON_AddNumberToObject(o, "experiment", pool->exp);
    cJSON_AddNumberToObject(o, "n_train", pool->n);
    cJSON_AddBoolToObject(o, "soft_labels", pool->soft != NULL);
    cJSON_AddNumberToObject(o, "n_test", n_test);
    cJSON_AddNumberToObject(o, "epochs", cfg->epochs);
    cJSON_AddNumberToObject(o, "batch", cfg->batch);
    cJSON_AddStringToObject(o, "optimizer", cfg->optimizer == OPTIM_ADAM ? "adam" : "sgd");
    cJSON_AddNumberToObject(o, "lr", lr);
    cJSON_AddStringToObject(o, "dsa_strategy", cfg->dsa ? s->dsa_strategy : "None");
    cJSON_AddStringToObject(o, "train_attack", cfg->adv.name);
    if (cfg->adv.kind != TRAIN_ADV_NONE) {
        cJSON_AddStringToObject(o, "train_semantics", semantics_name(cfg->adv.sem));
        cJSON_AddBoolToObject(o, "train_targeted", cfg->adv.targeted);
    }
    cJSON_AddStringToObject(o, "recipe", recipe ? recipe->name : "beard");
    if (recipe) cJSON_AddItemToObject(o, "recipe_settings", recipe_json(recipe, s));
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "runs", sum->runs);
    cJSON *acc = cJSON_AddArrayToObject(o, "accuracies"), *bacc = cJSON_AddArrayToObject(o, "best_accuracies"),
          *secs = cJSON_AddArrayToObject(o, "seconds");
    for (int r = 0; r < sum->runs; r++) {
        cJSON_AddItemToArray(acc, cJSON_CreateNumber(sum->acc[r]));
        cJSON_AddItemToArray(bacc, cJSON_CreateNumber(sum->best_acc[r]));
        cJSON_AddItemToArray(secs, cJSON_CreateNumber(sum->seconds[r]));
    }
    cJSON_AddNumberToObject(o, "mean_accuracy", sum->mean);
    cJSON_AddNumberToObject(o, "std_accuracy", sum->std);
    cJSON_AddNumberToObject(o, "best_accuracy", sum->best);
    cJSON_AddNumberToObject(o, "best_run", sum->best_run);
    cJSON_AddNumberToObject(o, "final_run", sum->final_run);
    cJSON *saved = cJSON_AddObjectToObject(o, "saved");
    if (sum->best_path[0]) cJSON_AddStringToObject(saved, "best", sum->best_path);
    if (sum->final_path[0]) cJSON_AddStringToObject(saved, "final", sum->final_path);
    return o;
}

// one architecture: its summary object; several: {"cross_architecture": [summaries]}
static int write_json(const char *path, cJSON *o) {
    int rc = cli_write_json("train", path, o);
    cJSON_Delete(o);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *C = "train", *config = NULL, *json = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if ((v = cli_opt(argc, argv, &i, "--config", &missing))) config = v;
        else if (missing) return 2;
    }
    TrainSettings s;
    train_settings_default(&s);
    Err e;
    if (config) {
        if (train_settings_load_json(&s, config, &e)) return cli_error(C, "%s", e.msg);
        if (s.warnings[0]) {
            for (char *l = s.warnings; l && *l;) {
                char *nl = strchr(l, '\n');
                fprintf(stderr, "beard train: warning: %s: %.*s\n", config, nl ? (int)(nl - l) : (int)strlen(l), l);
                l = nl ? nl + 1 : NULL;
            }
        }
    }
    int rcp = parse_opts(argc, argv, &s, &json, &quiet);
    if (rcp) return rcp;
    if (!s.dataset[0]) return cli_usage_error(C, "--dataset is required (e.g. --dataset cifar10)");
    const DatasetInfo *info = dataset_info(s.dataset);
    if (!info) return cli_usage_error(C, "unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)", s.dataset);
    if (!s.src_dataset && !s.data_file[0])
        return cli_usage_error(C, "--data-file POOL_FILE is required (or --src-dataset for the real training set)");
    int adam = !strcasecmp(s.optimizer, "adam");
    if (adam && !s.set_lr) s.lr = 1e-4;
    if (adam && !s.set_batch) s.batch = 128;
    parallel_set_threads(s.threads);

    // the recipe (training attack: pixel semantics, or BEARD's with a BEARD config)
    TrainConfig cfg;
    if (train_settings_config(&s, config ? SEM_BEARD : SEM_PIXEL, &cfg, &e)) return cli_usage_error(C, "%s", e.msg);
    cfg.log_every = quiet ? 0 : s.log_every;
    cfg.log = stdout;
    cfg.progress = !quiet;

    // outputs, checked before any work (the names in them once the set is known)
    if (cli_check_output_file(C, "--json", json) || (s.save_path[0] && cli_check_output_dir(C, "--save-path", s.save_path)))
        return 1;
    if (s.method[0] && file_name_check(s.method, "--method", &e)) return cli_usage_error(C, "%s", e.msg);
    if (s.ipc[0] && file_name_check(s.ipc, "--ipc", &e)) return cli_usage_error(C, "%s", e.msg);

    enum { MAX_ARCHS = 32 };
    char archs[MAX_ARCHS][64];
    int n_arch = 0;
    {
        char tmp[sizeof(s.arch)];
        snprintf(tmp, sizeof(tmp), "%s", s.arch);
        char *save = NULL;
        for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            const ModelDef *d = model_find(tok);
            if (!d) {
                return cli_usage_error(C, "unknown architecture '%s' (known: %s)", tok, model_arch_list());
            }
            if (n_arch == MAX_ARCHS) {
                return cli_usage_error(C, "--arch takes at most %d architectures", MAX_ARCHS);
            }
            snprintf(archs[n_arch++], sizeof(archs[0]), "%s", d->name);
        }
        if (!n_arch) {
            return cli_usage_error(C, "--arch names no architecture");
        }
    }

    // the decoupled methods' recipes
    Recipe recipe;
    Net teacher;
    int use_recipe = s.recipe[0] || s.soft_labels || s.teacher[0] || s.linear_probe || s.fkd[0], have_teacher = 0;
    if (use_recipe) {
        recipe_preset(&recipe, s.recipe[0]                    ? s.recipe
                               : s.fkd[0]                     ? "gvbsm-relabel"
                               : s.linear_probe && !s.teacher[0] ? "sre2l-squeeze"
                                                              : "sre2l-relabel");
        if (s.fkd[0]) recipe.fkd_dir = s.fkd;
        if (s.set_epochs) recipe.epochs = s.epochs;
        if (s.set_batch) recipe.batch = s.batch;
        if (s.set_lr) recipe.lr = (float)s.lr;
        if (s.set_weight_decay) recipe.weight_decay = (float)s.weight_decay;
        if (s.set_momentum) recipe.momentum = (float)s.momentum;
        if (s.set_optimizer)
            recipe.optimizer = !strcasecmp(s.optimizer, "sgd") ? OPTIM_SGD : !strcasecmp(s.optimizer, "adam") ? OPTIM_ADAM
                                                                                                              : OPTIM_ADAMW;
        if (s.set_temperature) recipe.temperature = (float)s.temperature;
        if (s.set_ce_weight) recipe.ce_weight = (float)s.ce_weight;
        if (s.mix[0]) {
            recipe.mix = !strcasecmp(s.mix, "mixup") ? RECIPE_MIX_MIXUP : !strcasecmp(s.mix, "cutmix") ? RECIPE_MIX_CUTMIX
                                                                                                       : RECIPE_MIX_NONE;
            recipe.mix_alpha = recipe.mix == RECIPE_MIX_MIXUP ? 0.8f : 1.0f;
        }
        if (s.teacher_mode[0]) recipe.teacher_train = !strcasecmp(s.teacher_mode, "train");
        if (s.loss[0])
            recipe.loss = !strcasecmp(s.loss, "kl") ? RECIPE_LOSS_KL : !strcasecmp(s.loss, "mse-gt") ? RECIPE_LOSS_MSE_GT
                                                                                                   : RECIPE_LOSS_CE;
        if (s.lr_schedule[0])
            recipe.schedule = !strcasecmp(s.lr_schedule, "cosine")        ? RECIPE_LR_COSINE
                              : !strcasecmp(s.lr_schedule, "cosine-half") ? RECIPE_LR_COSINE_HALF
                                                                          : RECIPE_LR_CONSTANT;
        if (s.aug[0])
            recipe.aug = !strcasecmp(s.aug, "crop-flip")  ? RECIPE_AUG_CROP_FLIP
                         : !strcasecmp(s.aug, "rrc-flip") ? RECIPE_AUG_RRC_FLIP
                                                          : RECIPE_AUG_NONE;
        recipe.linear_probe = s.linear_probe;
        recipe.eval_every = s.eval_every;
        if (s.linear_probe && !s.init[0])
            return cli_usage_error(C, "--linear-probe trains the last layer of a trained backbone: give --init CKPT");
        if (recipe.loss != RECIPE_LOSS_CE && !s.teacher[0] && !s.fkd[0])
            return cli_usage_error(C, "the %s recipe trains on a teacher's soft labels: give --teacher T.pth", recipe.name);
        if (recipe.loss == RECIPE_LOSS_CE && recipe.mix != RECIPE_MIX_NONE)
            return cli_usage_error(C, "--mix needs soft labels from a teacher (--teacher), not hard labels");
        if (s.teacher[0] && s.fkd[0]) return cli_usage_error(C, "--teacher and --fkd: soft labels come from one or the other");
        if (s.teacher[0] && recipe.loss != RECIPE_LOSS_CE) {
            const char *ta = s.teacher_arch[0] ? s.teacher_arch : s.arch;
            if (checkpoint_load(&teacher, s.teacher, ta, info->c, info->n_classes, info->h, info->w, &e))
                return cli_error(C, "teacher %s does not load as a %s for %s (%d classes, %dx%dx%d): %s", s.teacher, ta,
                                 info->name, info->n_classes, info->c, info->h, info->w, e.msg);
            have_teacher = 1;
            teacher.train = 0;
            recipe.teacher = &teacher;
        }
        cfg.recipe = &recipe;
        cfg.keep_params = s.init[0] != 0;
    } else if (s.init[0]) {
        cfg.keep_params = 1;
    }

    // data
    CliTestSet ts;
    if (cli_load_testset(C, s.dataset, s.data_path, s.test_limit, &ts)) return 1;
    float *xt = normalised_testset(&ts);
    if (!xt) {
        cli_testset_free(&ts);
        return cli_error(C, "out of memory");
    }
    TrainTest test = {.x = xt, .y = ts.ds.labels, .n = ts.ds.n};
    Pool pool;
    Dataset train_ds;
    memset(&train_ds, 0, sizeof(train_ds));
    int status = 1, n_orig;
    if (s.src_dataset) {
        if (dataset_load(&train_ds, s.dataset, s.data_path, 1, 0, &e) || pool_from_dataset(&pool, &train_ds, info, &e)) {
            cli_error(C, "%s", e.msg);
            memset(&pool, 0, sizeof(pool));
            goto done;
        }
    } else {
        PoolOptions po = {.info = info, .exp = s.exp, .pixels = s.pixels};
        if (pool_load(&pool, s.data_file, &po, &e)) {
            cli_error(C, "%s", e.msg);
            goto done;
        }
    }
    n_orig = pool.n;
    if (s.unpack4 && pool_unpack4(&pool, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    if (s.learned_lr) {
        if (!(pool.lr > 0)) {
            cli_error(C, "--learned-lr: %s has no learned learning rate (MTT's lr_best.pt)", s.data_file);
            goto done;
        }
        cfg.lr = (float)pool.lr;
    }
    if (!s.method[0]) guess_method(s.src_dataset ? "full" : s.data_file, !strcmp(pool.format, "mtt"), s.method, sizeof(s.method));
    if (s.src_dataset && !strcmp(s.method, "custom")) snprintf(s.method, sizeof(s.method), "Full");
    if (!s.ipc[0]) snprintf(s.ipc, sizeof(s.ipc), "%d", n_orig % info->n_classes ? n_orig : n_orig / info->n_classes);
    else if (!s.src_dataset && check_ipc(C, s.ipc, n_orig, info->n_classes, s.data_file)) goto done;

    printf("beard train: %s on %s, %s ipc %s: %d training images (%s", s.arch, info->name, s.method, s.ipc, pool.n,
           pool.format);
    if (pool.n_exps > 1) printf(", experiment %d of %d", pool.exp, pool.n_exps);
    if (pool.unpacked) printf(", 4-in-1 unpacked from %d", n_orig);
    if (pool.soft) printf(", soft labels");
    printf("), %d test images\n", test.n);
    if (!use_recipe)
        printf("  %d runs x %d epochs, batch %d, %s lr %g%s, momentum %g, weight decay %g, DSA %s, train attack %s", s.runs,
           cfg.epochs + 1, cfg.batch, adam ? "Adam" : "SGD", cfg.lr, s.learned_lr ? " (learned)" : "", cfg.momentum,
           cfg.weight_decay, cfg.dsa ? s.dsa_strategy : "off", cfg.adv.name);
    if (!use_recipe && cfg.adv.kind != TRAIN_ADV_NONE)
        printf(" (%s semantics%s)", semantics_name(cfg.adv.sem), cfg.adv.targeted ? ", targeted" : "");
    if (use_recipe) printf("  %d run%s", s.runs, s.runs > 1 ? "s" : "");
    printf(", seed %lld, %d threads\n", s.seed, parallel_threads());
    fflush(stdout);

    if (use_recipe) {
        static const char *mixn[] = {"none", "mixup", "cutmix"}, *lossn[] = {"CE", "KL", "MSE+CE"},
                          *augn[] = {"none", "crop+flip", "RandomResizedCrop+flip"},
                          *schn[] = {"constant", "cosine", "cosine-half"};
        printf("  recipe %s: %d epochs, batch %d, %s lr %g (%s), weight decay %g, aug %s, mix %s, loss %s", recipe.name,
               recipe.epochs, recipe.batch,
               recipe.optimizer == OPTIM_SGD ? "SGD" : recipe.optimizer == OPTIM_ADAM ? "Adam" : "AdamW", recipe.lr,
               schn[recipe.schedule], recipe.weight_decay, augn[recipe.aug], mixn[recipe.mix], lossn[recipe.loss]);
        if (recipe.loss == RECIPE_LOSS_KL) printf(" at T %g", recipe.temperature);
        if (recipe.fkd_dir) printf(", stored soft labels %s (their batches, crops, flips and mixes)", recipe.fkd_dir);
        if (recipe.teacher) printf(", teacher %s (%s mode)", s.teacher, recipe.teacher_train ? "train" : "eval");
        if (recipe.linear_probe) printf(", linear probe of %s", s.init);
        printf("\n");
        fflush(stdout);
    }
    TrainSummary *sum = calloc((size_t)n_arch, sizeof(TrainSummary));
    cJSON *jarr = n_arch > 1 ? cJSON_CreateArray() : NULL, *jone = NULL;
    if (!sum) {
        cli_error(C, "out of memory");
        goto done;
    }
    for (int a = 0; a < n_arch; a++) {
        if (n_arch > 1) printf("== %s (%d of %d)\n", archs[a], a + 1, n_arch), fflush(stdout);
        TrainRunsConfig rc = {.runs = s.runs, .seed = (uint64_t)s.seed, .arch = archs[a], .info = info,
                              .save_dir = s.save_path[0] ? s.save_path : NULL, .method = s.method, .ipc = s.ipc,
                              .init_path = s.init[0] ? s.init : NULL};
        TrainSummary *su = &sum[a];
        if (train_runs(&pool, &test, &cfg, &rc, su, &e)) {
            cli_error(C, "%s: %s", archs[a], e.msg);
            free(sum);
            cJSON_Delete(jarr);
            goto done;
        }
        printf("test accuracy over %d run%s: %.2f +- %.2f%%  (", su->runs, su->runs > 1 ? "s" : "", su->mean, su->std);
        for (int r = 0; r < su->runs; r++) printf("%s%.2f", r ? ", " : "", su->acc[r]);
        double tsec = 0;
        for (int r = 0; r < su->runs; r++) tsec += su->seconds[r];
        printf(")  %.1fs training per run\n", tsec / su->runs);
        if (su->best_path[0])
            printf("saved %s (best evaluated: run %d, %.2f%%)\n", su->best_path, su->best_run + 1, su->best);
        if (su->final_path[0]) printf("saved %s (final model of run %d)\n", su->final_path, su->final_run + 1);
        if (use_recipe) {
            // the model pool records which recipe trained each saved model: <checkpoint>.json
            const char *paths[2] = {su->best_path, su->final_path};
            for (int k = 0; k < 2; k++) {
                if (!paths[k][0]) continue;
                char side[1100];
                snprintf(side, sizeof(side), "%s.json", paths[k]);
                if (write_recipe_json(side, &recipe, &s, archs[a], info)) {
                    free(sum);
                    cJSON_Delete(jarr);
                    goto done;
                }
            }
        }
        if (json) {
            cJSON *o = summary_json(&s, archs[a], &cfg, s.learned_lr ? pool.lr : s.lr, &pool, su, test.n, parallel_threads(),
                                    use_recipe ? &recipe : NULL);
            if (jarr) cJSON_AddItemToArray(jarr, o);
            else jone = o;
        }
        fflush(stdout);
    }
    if (n_arch > 1) {
        // DC-bench's cross-architecture table: one distilled set, one column per architecture
        printf("\ncross-architecture evaluation (%s, %s, ipc %s; test accuracy %%, mean +- std over %d run%s):\n",
               s.method, info->name, s.ipc, s.runs, s.runs > 1 ? "s" : "");
        for (int a = 0; a < n_arch; a++) printf("  %-17s", archs[a]);
        printf("\n");
        for (int a = 0; a < n_arch; a++) {
            char cell[32];
            snprintf(cell, sizeof(cell), "%.2f +- %.2f", sum[a].mean, sum[a].std);
            printf("  %-17s", cell);
        }
        printf("\n");
    }
    if (json) {
        cJSON *root = jone;
        if (jarr) {
            root = cJSON_CreateObject();
            cJSON_AddItemToObject(root, "cross_architecture", jarr);
        }
        if (write_json(json, root)) { // cli_write_json said why
            free(sum);
            goto done;
        }
    }
    free(sum);
    status = 0;
done:
    pool_free(&pool);
    dataset_free(&train_ds);
    xfree(xt);
    cli_testset_free(&ts);
    if (have_teacher) net_free(&teacher);
    return status;
}
