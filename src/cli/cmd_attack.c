/*
 * cmd_attack.c: `beard attack`, one or more attacks on a checkpoint, each targeted
 * and/or untargeted, in pixel or beard semantics, with per-attack parameter overrides.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../attacks/names.h"
#include "../attacks/result_json.h"
#include "../core/parallel.h"
#include "cli.h"

static void usage(FILE *f) {
    fputs("usage: beard attack --model FILE[,FILE...] --dataset cifar10 [--data DIR] --attack NAME[,NAME...]\n"
          "                    [--targeted yes|no|both] [--semantics pixel|beard]\n"
          "                    [--target-policy next|beard|random|least-likely]\n"
          "                    [--preset torchattacks|beard|fra31] [--arch ConvNet|auto|NAME] [--limit N]\n"
          "                    [--batch 256] [--seed S] [--threads N] [--json OUT] [--per-sample]\n"
          "                    [--transfer-to FILE[,FILE...] [--transfer-arch NAME[,NAME...]]]\n"
          "                    [--train-limit N] [--quiet] [--list]\n"
          "                    [attack options, e.g. --eps 8/255 --alpha 2/225 --steps 10]\n"
          "\n"
          "Runs each attack on the test split and prints one line per attack and mode: robust\n"
          "accuracy (scored against the true labels), ASR (originally correct samples now\n"
          "wrong), time and forward+backward passes per sample. --limit N attacks the first N test\n"
          "images (default 0: all of them). Defaults: --targeted no,\n"
          "--semantics pixel (the standard threat model: [0,1] pixels, eps in pixel units; the\n"
          "default because it is the correct one), --threads 0 (all cores),\n"
          "--preset torchattacks (torchattacks 3.5.1 defaults), --target-policy next ((y+1) mod K;\n"
          "--preset beard makes it `beard`, (y+1) mod 10, as BEARD does), --seed 0.\n"
          "--semantics beard reproduces BEARD: attacks act on mean/std-normalised tensors with\n"
          "eps in normalised units and clamps to [0,1] in normalised space.\n"
          "Numbers accept fractions (8/255). --per-sample adds per-sample arrays to the JSON (for\n"
          "--transfer-to also each target's clean_correct, adv_correct and success).\n"
          "--arch: the checkpoint's architecture (`beard --help` lists them; default ConvNet);\n"
          "--arch auto infers it from the checkpoint's keys (an error names the candidates when\n"
          "several fit).\n"
          "--limit N: the first N test images (0, the default, is all of them).\n"
          "--transfer-to: a transfer (black-box) attack. The examples are crafted on --model (the\n"
          "surrogate) and also scored on each listed checkpoint, of any architecture: each\n"
          "one's is inferred from its keys (default), or given by --transfer-arch (one name for\n"
          "all, or one per checkpoint). Same dataset.\n"
          "Several --model checkpoints make an ensemble of surrogates: the mean of their logits\n"
          "is attacked (and scored). --arch takes one architecture for all or one per model; all\n"
          "must read the same input shape.\n"
          "Attacks that train surrogates of their own (LGV) read the training split from --data\n"
          "(--train-limit N images, 0 = all).\n"
          "\nAn attack may carry its own parameters, --attack 'PGD(eps=4/255, steps=20),FGSM', and\n"
          "BEARD's training-attack names work too: PGD_e4 (PGD, eps 4/255), PGD_s2 (PGD, 2 steps).\n"
          "Every parameter is checked against its type and range before anything runs.\n"
          "\nattacks (names are case-insensitive; BEARD's spellings work too), with each option's\n"
          "range and torchattacks default (--preset beard and fra31 change some defaults);\n"
          "--list prints the attack names alone:\n",
          f);
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attack_get(i);
        fprintf(f, "  %-10s %s%s\n", d->name, d->summary, d->targeted_ok ? "" : " [untargeted only]");
        for (const AttackParamDef *p = d->params; p->name; p++) {
            char range[128];
            char def[64];
            AttackParams dp;
            attack_params_init(&dp, d, PRESET_TORCHATTACKS);
            for (int k = 0; k < dp.n; k++)
                if (!strcmp(dp.names[k], p->name)) attack_param_text(&dp, d, k, def, sizeof(def));
            fprintf(f, "      --%-16s %s; %s, default %s\n", p->name, p->help, attack_param_range_text(p, range, sizeof(range)),
                    def);
        }
    }
}

// one line per attack: its name, BEARD's spelling where it differs, and its aliases
static void list_attacks(FILE *f) {
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attack_get(i);
        const char *bn = attack_beard_name(d);
        fprintf(f, "%-10s", d->name);
        if (strcmp(bn, d->name)) fprintf(f, " (BEARD: %s)", bn);
        fprintf(f, "  aliases: %s%s\n", d->aliases ? d->aliases : "", strcmp(d->name, "PGD") ? "" : ", and BEARD's PGD_e<N> (eps N/255), PGD_s<N> (N steps)");
    }
}

#define MAX_ATTACKS 32

int cmd_attack(int argc, char **argv) {
    const char *C = "attack", *model = NULL, *dataset = NULL, *data = NULL, *arch = "ConvNet", *json = NULL,
               *list = NULL, *transfer = NULL, *transfer_arch = NULL, *targeted_s = "no", *sem_s = "pixel", *policy_s = NULL, *preset_s = "torchattacks";
    long limit = 0, train_limit = 0, batch = 256, threads = 0, seed = 0;
    int per_sample = 0, quiet = 0;
    char **extra = calloc(argc, sizeof(char *));
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            free(extra);
            return 0;
        } else if (cli_flag(argv, i, "--list")) {
            list_attacks(stdout);
            free(extra);
            return 0;
        } else if (cli_flag(argv, i, "--per-sample")) per_sample = 1;
        else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) model = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--attack,--attacks", &missing))) list = v;
        else if ((v = cli_opt(argc, argv, &i, "--transfer-to", &missing))) transfer = v;
        else if ((v = cli_opt(argc, argv, &i, "--transfer-arch", &missing))) transfer_arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--targeted", &missing))) targeted_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--semantics", &missing))) sem_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--target-policy", &missing))) policy_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--preset", &missing))) preset_s = v;
        else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if ((v = cli_opt_any(argc, argv, &i, "--limit,--n-examples,--test-limit,--n", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &limit)) goto usage_fail;
        } else if ((v = cli_opt(argc, argv, &i, "--train-limit", &missing))) {
            if (cli_parse_int(C, "--train-limit", v, 0, 1L << 30, &train_limit)) goto usage_fail;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &batch)) goto usage_fail;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) goto usage_fail;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 0x7fffffffffffffffL, &seed)) goto usage_fail;
        } else if (missing) goto usage_fail;
        else if (!strncmp(argv[i], "--", 2) && i + 1 < argc && !strchr(argv[i], '=')) {
            extra[n_extra++] = argv[i]; // an attack option, resolved once the attacks are known
            extra[n_extra++] = argv[++i];
        } else if (!strncmp(argv[i], "--", 2) && strchr(argv[i], '=')) {
            extra[n_extra++] = argv[i];
            extra[n_extra++] = NULL;
        } else {
            cli_usage_error(C, "unexpected argument '%s' (see beard attack --help)", argv[i]);
            goto usage_fail;
        }
    }
    if (!model || !dataset || !list) {
        cli_usage_error(C, "--model, --dataset and --attack are required (see beard attack --help)");
        goto usage_fail;
    }
    Semantics sem;
    TargetPolicy policy = TARGET_NEXT;
    Preset preset;
    if (semantics_parse(sem_s, &sem)) {
        cli_usage_error(C, "--semantics must be pixel or beard, not '%s'", sem_s);
        goto usage_fail;
    }
    if (preset_parse(preset_s, &preset)) {
        cli_usage_error(C, "--preset must be torchattacks, beard or fra31, not '%s'", preset_s);
        goto usage_fail;
    }
    if (preset == PRESET_BEARD) policy = TARGET_BEARD;
    if (policy_s && target_policy_parse(policy_s, &policy)) {
        cli_usage_error(C, "--target-policy must be next, beard, random or least-likely, not '%s'", policy_s);
        goto usage_fail;
    }
    int modes[2], n_modes = 0;
    if (!strcasecmp(targeted_s, "yes") || !strcasecmp(targeted_s, "true")) modes[n_modes++] = 1;
    else if (!strcasecmp(targeted_s, "no") || !strcasecmp(targeted_s, "false")) modes[n_modes++] = 0;
    else if (!strcasecmp(targeted_s, "both")) modes[n_modes++] = 1, modes[n_modes++] = 0; // BEARD's order
    else {
        cli_usage_error(C, "--targeted must be yes, no or both, not '%s'", targeted_s);
        goto usage_fail;
    }

    // the attacks and their parameters
    const AttackDef *defs[MAX_ATTACKS];
    static AttackParams params[MAX_ATTACKS];
    int n_attacks = 0;
    {
        Err e;
        if (attack_resolve_list(list, preset, MAX_ATTACKS, defs, params, &n_attacks, &e)) {
            cli_usage_error(C, "%s", e.msg);
            goto usage_fail;
        }
        if (!n_attacks) {
            cli_usage_error(C, "--attack names no attack");
            goto usage_fail;
        }
    }
    for (int k = 0; k < n_extra; k += 2) {
        char opt[64];
        const char *val = extra[k + 1];
        snprintf(opt, sizeof(opt), "%s", extra[k] + 2);
        char *eq = strchr(opt, '=');
        if (eq) *eq = 0, val = strchr(extra[k], '=') + 1;
        int used = 0;
        for (int a = 0; a < n_attacks; a++) {
            int rc = attack_params_set_text(&params[a], defs[a], opt, val);
            if (rc == -2) {
                cli_usage_error(C, "--%s: cannot use '%s' for %s (a number such as 8/255, yes/no, or one of its choices)",
                                opt, val, defs[a]->name);
                goto usage_fail;
            }
            used |= rc == 0;
        }
        if (!used) {
            cli_usage_error(C, "unknown option '--%s' (not an option of beard attack or of the chosen attacks)", opt);
            goto usage_fail;
        }
    }
    // the dataset's shape is known before anything is loaded: the checks that need it
    // (OnePixel's pixels against the image, ...) run here too
    const DatasetInfo *dinfo = dataset_info(dataset);
    AttackShape dshape = {dinfo ? dinfo->c : 0, dinfo ? dinfo->h : 0, dinfo ? dinfo->w : 0, dinfo ? dinfo->n_classes : 0};
    for (int a = 0; a < n_attacks; a++) {
        Err e;
        if (attack_params_check(defs[a], &params[a], dinfo ? &dshape : NULL, &e)) {
            cli_usage_error(C, "%s", e.msg);
            goto usage_fail;
        }
    }
    free(extra);
    parallel_set_threads((int)threads);
    if (cli_check_output_file(C, "--json", json)) return 1;

    // the surrogate(s) and the transfer targets, loaded up front so that a bad path fails
    // before any attack runs
    enum { MAX_MODELS = 16 };
    char *model_paths[MAX_MODELS], *model_archs[MAX_MODELS], *target_names[MAX_MODELS], *target_archs[MAX_MODELS];
    int n_models, n_targets = 0;
    if (cli_split_models(C, model, arch, "--model", "--arch", MAX_MODELS, model_paths, model_archs, &n_models)) return 2;
    if (transfer && cli_split_models(C, transfer, transfer_arch ? transfer_arch : "auto", "--transfer-to",
                                     transfer_arch ? "--transfer-arch" : "--arch", MAX_MODELS, target_names,
                                     target_archs, &n_targets)) {
        cli_free_strings(model_paths, n_models), cli_free_strings(model_archs, n_models);
        return 2;
    }
    int needs_train = 0;
    for (int a = 0; a < n_attacks; a++) needs_train |= attack_needs_train(defs[a], &params[a]);

    CliTestSet ts, trs;
    memset(&ts, 0, sizeof(ts)), memset(&trs, 0, sizeof(trs));
    Net nets[MAX_MODELS], targets[MAX_MODELS];
    int loaded = 0, loaded_t = 0, status = 0;
    if (cli_load_testset(C, dataset, data, limit, &ts)) status = 1;
    for (; !status && loaded < n_models; loaded++)
        if (cli_load_model(C, model_paths[loaded], model_archs[loaded], ts.info, &nets[loaded])) status = 1;
    for (; !status && loaded_t < n_targets; loaded_t++)
        if (cli_load_model(C, target_names[loaded_t], target_archs[loaded_t], ts.info, &targets[loaded_t])) status = 1;
    Net *extra_members[MAX_MODELS];
    for (int m = 1; m < n_models; m++) extra_members[m - 1] = &nets[m];
    if (!status && n_models > 1) {
        Net *members[ATTACK_MAX_ENSEMBLE];
        Err e;
        if (attack_ensemble_init(&nets[0], extra_members, n_models - 1, members, &e)) status = cli_usage_error(C, "%s", e.msg);
    }
    if (!status && needs_train && cli_load_split(C, dataset, data, 1, train_limit, &trs)) status = 1;
    AttackTrainSet train = {.x = trs.x, .y = trs.ds.labels, .n = trs.ds.n, .mean = ts.info ? ts.info->mean : NULL,
                            .std = ts.info ? ts.info->std : NULL};
    RunConfig cfg = {.sem = sem, .policy = policy, .batch = (int)batch, .seed = (uint64_t)seed, .progress = !quiet,
                     .keep_adv = n_targets > 0, .ensemble = extra_members, .n_ensemble = n_models - 1,
                     .train = needs_train ? &train : NULL};
    cJSON *root = cJSON_CreateObject(), *results = cJSON_CreateArray();
    double clean = -1;
    if (!status) {
        printf("%s%s on %s, %d images, %s semantics, preset %s, seed %ld, %d threads\n", nets[0].arch,
               n_models > 1 ? " (+ ensemble)" : "", ts.info->name, ts.ad.n, semantics_name(sem), preset_name(preset), seed,
               parallel_threads());
        if (n_models > 1) printf("ensemble of %d surrogates: the mean of their logits is attacked and scored\n", n_models);
    }
    for (int a = 0; a < n_attacks && !status; a++) {
        for (int m = 0; m < n_modes; m++) {
            int tg = modes[m];
            if ((tg && !defs[a]->targeted_ok) || (!tg && !defs[a]->untargeted_ok)) {
                printf("  %-10s %-10s  n/a (%s has no %s mode)\n", defs[a]->name, tg ? "targeted" : "untargeted",
                       defs[a]->name, tg ? "targeted" : "untargeted");
                continue;
            }
            AttackResult r;
            Err e;
            if (attack_evaluate(&nets[0], &ts.ad, defs[a], &params[a], tg, &cfg, &r, &e)) {
                status = cli_error(C, "%s", e.msg);
                break;
            }
            clean = r.clean_accuracy;
            printf("  %-10s %-10s  accuracy %6.2f%%  (clean %6.2f%%)  ASR %6.2f%%  %8.2fs  %6.1f passes/sample\n",
                   defs[a]->name, tg ? "targeted" : "untargeted", r.accuracy, r.clean_accuracy, r.asr, r.seconds,
                   r.forward_per_sample + r.backward_per_sample);
            fflush(stdout);
            cJSON *o = attack_result_json(&r, per_sample);
            if (tg) cJSON_AddStringToObject(o, "target_policy", target_policy_name(policy));
            if (n_targets) {
                cJSON *tj = cJSON_AddArrayToObject(o, "transfer");
                for (int k = 0; k < n_targets && !status; k++) {
                    TransferResult tr;
                    if (attack_transfer(&targets[k], &ts.ad, sem, r.x_adv, (int)batch, &tr, &e)) {
                        status = cli_error(C, "transfer to %s: %s", target_names[k], e.msg);
                        break;
                    }
                    printf("      -> %-40s (%s) accuracy %6.2f%%  (clean %6.2f%%)  ASR %6.2f%%\n", target_names[k],
                           targets[k].arch, tr.accuracy, tr.clean_accuracy, tr.asr);
                    cJSON_AddItemToArray(tj, transfer_result_json(target_names[k], targets[k].arch, &tr, per_sample));
                    transfer_result_free(&tr);
                }
            }
            cJSON_AddItemToArray(results, o);
            attack_result_free(&r);
        }
    }
    if (json && !status) {
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "arch", nets[0].arch);
        if (n_models > 1) {
            cJSON *ens = cJSON_AddArrayToObject(root, "ensemble");
            for (int m = 0; m < n_models; m++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "model", model_paths[m]);
                cJSON_AddStringToObject(o, "arch", nets[m].arch);
                cJSON_AddItemToArray(ens, o);
            }
        }
        cJSON_AddStringToObject(root, "dataset", ts.info->name);
        cJSON_AddNumberToObject(root, "n", ts.ad.n);
        if (clean >= 0) cJSON_AddNumberToObject(root, "clean_accuracy", clean);
        cJSON_AddStringToObject(root, "semantics", semantics_name(sem));
        cJSON_AddStringToObject(root, "preset", preset_name(preset));
        cJSON_AddStringToObject(root, "target_policy", target_policy_name(policy));
        cJSON_AddNumberToObject(root, "seed", (double)seed);
        cJSON_AddNumberToObject(root, "threads", parallel_threads());
        cJSON_AddStringToObject(root, "version", BEARD_VERSION);
        cJSON_AddItemToObject(root, "results", results);
        results = NULL;
        status = cli_write_json(C, json, root);
    }
    cJSON_Delete(results);
    cJSON_Delete(root);
    for (int k = 0; k < loaded_t; k++) net_free(&targets[k]);
    for (int k = 0; k < loaded; k++) net_free(&nets[k]);
    cli_free_strings(target_names, n_targets), cli_free_strings(target_archs, n_targets);
    cli_free_strings(model_paths, n_models), cli_free_strings(model_archs, n_models);
    cli_testset_free(&ts);
    cli_testset_free(&trs);
    return status;
usage_fail:
    free(extra);
    return 2;
}
