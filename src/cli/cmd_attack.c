/*
 * cmd_attack.c: `beard attack`, one or more attacks on a checkpoint, each targeted
 * and/or untargeted, in pixel or beard semantics, with per-attack parameter overrides.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../attacks/result_json.h"
#include "../core/parallel.h"
#include "cli.h"

static void usage(FILE *f) {
    fputs("usage: beard attack --model FILE --dataset cifar10 [--data DIR] --attack NAME[,NAME...]\n"
          "                    [--targeted yes|no|both] [--semantics pixel|beard]\n"
          "                    [--target-policy next|beard|random|least-likely]\n"
          "                    [--preset torchattacks|beard|fra31] [--arch ConvNet|auto|NAME] [--limit N]\n"
          "                    [--batch 256] [--seed S] [--threads N] [--json OUT] [--per-sample]\n"
          "                    [--transfer-to FILE[,FILE...]] [--transfer-arch NAME[,NAME...]]\n"
          "                    [attack options, e.g. --eps 8/255 --alpha 2/225 --steps 10]\n"
          "\n"
          "Runs each attack on the test split and prints one line per attack and mode: robust\n"
          "accuracy (scored against the true labels), ASR (originally correct samples now\n"
          "wrong), time and forward+backward passes per sample. Defaults: --targeted no,\n"
          "--semantics pixel (the standard threat model: [0,1] pixels, eps in pixel units),\n"
          "--preset torchattacks (torchattacks 3.5.1 defaults), --target-policy next ((y+1) mod K;\n"
          "--preset beard makes it `beard`, (y+1) mod 10, as BEARD does), --seed 0.\n"
          "--semantics beard reproduces BEARD: attacks act on mean/std-normalised tensors with\n"
          "eps in normalised units and clamps to [0,1] in normalised space.\n"
          "Numbers accept fractions (8/255). --per-sample adds per-sample arrays to the JSON.\n"
          "--arch: the checkpoint's architecture (`beard --help` lists them; default ConvNet);\n"
          "--arch auto infers it from the checkpoint's keys (an error names the candidates when\n"
          "several fit).\n"
          "--limit N: the first N test images (0, the default, is all of them).\n"
          "--transfer-to: a transfer (black-box) attack. The examples are crafted on --model (the\n"
          "surrogate) and also scored on each listed checkpoint, of any architecture: each\n"
          "one's is inferred from its keys (default), or given by --transfer-arch (one name for\n"
          "all, or one per checkpoint). Same dataset.\n"
          "\nattacks (names are case-insensitive; BEARD's spellings work too):\n",
          f);
    for (int i = 0; i < attack_count(); i++) {
        const AttackDef *d = attack_get(i);
        fprintf(f, "  %-10s %s%s\n", d->name, d->summary, d->targeted_ok ? "" : " [untargeted only]");
        fprintf(f, "             options:");
        for (const AttackParamDef *p = d->params; p->name; p++) {
            if (p->choices) fprintf(f, " --%s {%s}", p->name, p->choices);
            else fprintf(f, " --%s %.6g", p->name, p->torchattacks);
        }
        fputc('\n', f);
    }
}

#define MAX_ATTACKS 32

int cmd_attack(int argc, char **argv) {
    const char *C = "attack", *model = NULL, *dataset = NULL, *data = NULL, *arch = "ConvNet", *json = NULL,
               *list = NULL, *transfer = NULL, *transfer_arch = NULL, *targeted_s = "no", *sem_s = "pixel", *policy_s = NULL, *preset_s = "torchattacks";
    long limit = 0, batch = 256, threads = 0, seed = 0;
    int per_sample = 0;
    char **extra = calloc(argc, sizeof(char *));
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            free(extra);
            return 0;
        } else if (cli_flag(argv, i, "--per-sample")) per_sample = 1;
        else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) model = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--attack", &missing))) list = v;
        else if ((v = cli_opt(argc, argv, &i, "--transfer-to", &missing))) transfer = v;
        else if ((v = cli_opt(argc, argv, &i, "--transfer-arch", &missing))) transfer_arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--targeted", &missing))) targeted_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--semantics", &missing))) sem_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--target-policy", &missing))) policy_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--preset", &missing))) preset_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--limit", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &limit)) goto usage_fail;
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
    AttackParams params[MAX_ATTACKS];
    int n_attacks = 0;
    char *names = xstrdup(list);
    for (char *tok = strtok(names, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        const AttackDef *d = attack_find(tok);
        if (!d) {
            cli_usage_error(C, "unknown attack '%s' (see beard attack --help for the list)", tok);
            xfree(names);
            goto usage_fail;
        }
        if (n_attacks == MAX_ATTACKS) break;
        defs[n_attacks] = d;
        attack_params_init(&params[n_attacks], d, preset);
        n_attacks++;
    }
    xfree(names);
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
    free(extra);
    parallel_set_threads((int)threads);

    CliTestSet ts;
    if (cli_load_testset(C, dataset, data, limit, &ts)) return 1;
    Net net;
    if (cli_load_model(C, model, arch, ts.info, &net)) {
        cli_testset_free(&ts);
        return 1;
    }
    // transfer targets: loaded up front so that a bad path fails before any attack runs
    enum { MAX_TARGETS = 16 };
    Net targets[MAX_TARGETS];
    char *target_names[MAX_TARGETS];
    int n_targets = 0;
    if (transfer) {
        char *tl = xstrdup(transfer), *al = transfer_arch ? xstrdup(transfer_arch) : NULL;
        char *archs[MAX_TARGETS];
        int n_archs = 0, bad = 0;
        for (char *tok = al ? strtok(al, ",") : NULL; tok && n_archs < MAX_TARGETS; tok = strtok(NULL, ","))
            archs[n_archs++] = tok;
        char *save = NULL;
        for (char *tok = strtok_r(tl, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
            if (n_targets == MAX_TARGETS) {
                bad = cli_error(C, "--transfer-to takes at most %d checkpoints", MAX_TARGETS);
                break;
            }
            const char *ta = n_archs == 1 ? archs[0] : n_targets < n_archs ? archs[n_targets] : NULL;
            if (n_archs > 1 && n_targets >= n_archs) {
                bad = cli_usage_error(C, "--transfer-arch names %d architectures for more checkpoints", n_archs);
                break;
            }
            if (cli_load_model(C, tok, ta, ts.info, &targets[n_targets])) {
                bad = 1;
                break;
            }
            target_names[n_targets++] = xstrdup(tok);
        }
        if (!bad && n_archs > 1 && n_archs != n_targets)
            bad = cli_usage_error(C, "--transfer-arch names %d architectures for %d checkpoints", n_archs, n_targets);
        xfree(tl), xfree(al);
        if (bad) {
            for (int k = 0; k < n_targets; k++) net_free(&targets[k]), xfree(target_names[k]);
            net_free(&net);
            cli_testset_free(&ts);
            return bad;
        }
    }
    RunConfig cfg = {.sem = sem, .policy = policy, .batch = (int)batch, .seed = (uint64_t)seed, .progress = 1,
                     .keep_adv = n_targets > 0};
    cJSON *root = cJSON_CreateObject(), *results = cJSON_CreateArray();
    int status = 0;
    double clean = -1;
    printf("%s on %s, %d images, %s semantics, preset %s, seed %ld, %d threads\n", net.arch, ts.info->name, ts.ad.n,
           semantics_name(sem), preset_name(preset), seed, parallel_threads());
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
            if (attack_evaluate(&net, &ts.ad, defs[a], &params[a], tg, &cfg, &r, &e)) {
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
                    printf("      -> %-40s accuracy %6.2f%%  (clean %6.2f%%)  ASR %6.2f%%\n", target_names[k], tr.accuracy,
                           tr.clean_accuracy, tr.asr);
                    cJSON *t = cJSON_CreateObject();
                    cJSON_AddStringToObject(t, "model", target_names[k]);
                    cJSON_AddNumberToObject(t, "accuracy", tr.accuracy);
                    cJSON_AddNumberToObject(t, "clean_accuracy", tr.clean_accuracy);
                    cJSON_AddNumberToObject(t, "asr", tr.asr);
                    cJSON_AddItemToArray(tj, t);
                    transfer_result_free(&tr);
                }
            }
            cJSON_AddItemToArray(results, o);
            attack_result_free(&r);
        }
    }
    if (json && !status) {
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "arch", net.arch);
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
        char *s = cJSON_Print(root);
        FILE *f = fopen(json, "w");
        if (!f || fputs(s, f) < 0) status = cli_error(C, "cannot write %s", json);
        if (f) fputc('\n', f), fclose(f);
        free(s);
    }
    cJSON_Delete(results);
    cJSON_Delete(root);
    for (int k = 0; k < n_targets; k++) net_free(&targets[k]), xfree(target_names[k]);
    net_free(&net);
    cli_testset_free(&ts);
    return status;
usage_fail:
    free(extra);
    return 2;
}
