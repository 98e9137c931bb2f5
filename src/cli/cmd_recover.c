/*
 * cmd_recover.c: `beard recover`, the recover step of the decoupled distillation methods
 * (SRe2L, CDA, SC-DD, G-VBSM, DELT; src/distill/decoupled.h): synthetic images from a
 * squeezed teacher, written as the methods release them (new{c:03d}/class{c:03d}_id{i:03d}
 * .jpg, .png for G-VBSM), which `beard train` reads back (with --teacher for the methods'
 * soft-label training). When `beard distill` (issue 11's stage) lands, these methods join its
 * registry; this command stays as the decoupled family's entry point.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/parallel.h"
#include "../distill/decoupled.h"
#include "../models/checkpoint.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: beard recover --method NAME --teacher T.pth --dataset cifar10 [--data DIR] [options]\n"
            "\n"
            "Recovers --ipc synthetic images per class from a teacher (trained with `beard train\n"
            "--src-dataset --recipe sre2l-squeeze`, or any PyTorch checkpoint in torchvision's layout)\n"
            "and writes them as the method releases them: OUT/new{c:03d}/class{c:03d}_id{i:03d}.jpg\n"
            "(.png for G-VBSM). Train a student on them with `beard train --data-file OUT --teacher\n"
            "T.pth --recipe sre2l-relabel`.\n"
            "\n"
            "  --method NAME        one of the methods below\n"
            "  --teacher PATH       the teacher checkpoint; G-VBSM takes several (repeat the option),\n"
            "                       used one per iteration in turn\n"
            "  --teacher-arch A     the teacher's architecture (repeat per teacher; default --arch)\n"
            "  --arch A             default architecture of the teachers (default ResNet18)\n"
            "  --dataset NAME       cifar10, cifar100, tinyimagenet, ... (required)\n"
            "  --data DIR           the dataset (default ./data); DELT and G-VBSM read its training set\n"
            "  --train-limit N      use the first N training images (0 = all; default 0)\n"
            "  --ipc N              images per class (default 10)\n"
            "  --out DIR            output folder (default syn_data/{method}_{dataset}_ipc{N})\n"
            "  --seed S             seed of the noise and the augmentation draws (default 0)\n"
            "  --NAME VALUE         a method parameter by its official name, e.g. --iteration 1000\n"
            "                       --lr 0.25 --r-bn 0.01 (also --param NAME=VALUE)\n"
            "  --json FILE          a summary (method, parameters, seconds, iterations)\n"
            "  --log-every N        a loss line every N iterations (default 100; 0 = none)\n"
            "  --threads N          worker threads   --quiet   no progress bar\n"
            "\n"
            "methods and their parameters (official defaults):\n");
    for (int i = 0; decoupled_method(i); i++) fprintf(f, "  %-7s %s\n", decoupled_method(i)->name, decoupled_method(i)->help);
}

int cmd_recover(int argc, char **argv) {
    const char *C = "recover";
    const char *method = NULL, *dataset = NULL, *data = NULL, *out = NULL, *json = NULL, *arch = "ResNet18";
    const char *teachers[DECOUPLED_MAX_TEACHERS], *tarch[DECOUPLED_MAX_TEACHERS];
    int nt = 0, nta = 0, quiet = 0;
    long ipc = 10, seed = 0, threads = 0, train_limit = 0, log_every = 100;
    // first pass: --help and the method (its defaults come before the parameters)
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--method") && i + 1 < argc) method = argv[i + 1];
        else if (!strncmp(argv[i], "--method=", 9)) method = argv[i] + 9;
    }
    if (!method) return cli_usage_error(C, "--method is required (beard recover --help lists the methods)");
    const DecoupledMethod *M = decoupled_find(method);
    if (!M) {
        char list[256] = "";
        for (int i = 0; decoupled_method(i); i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", decoupled_method(i)->name);
        return cli_usage_error(C, "unknown method '%s' (%s)", method, list);
    }
    DecoupledArgs a;
    decoupled_args_default(&a);
    M->defaults(&a);
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if ((v = cli_opt(argc, argv, &i, "--method", &missing))) continue;
        else if ((v = cli_opt(argc, argv, &i, "--teacher", &missing))) {
            if (nt >= DECOUPLED_MAX_TEACHERS) return cli_usage_error(C, "at most %d teachers", DECOUPLED_MAX_TEACHERS);
            teachers[nt++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--teacher-arch", &missing))) {
            if (nta >= DECOUPLED_MAX_TEACHERS) return cli_usage_error(C, "at most %d teachers", DECOUPLED_MAX_TEACHERS);
            tarch[nta++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) out = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--ipc", &missing))) {
            if (cli_parse_int(C, "--ipc", v, 1, 100000, &ipc)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &seed)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--train-limit", &missing))) {
            if (cli_parse_int(C, "--train-limit", v, 0, 1L << 30, &train_limit)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--log-every", &missing))) {
            if (cli_parse_int(C, "--log-every", v, 0, 1L << 30, &log_every)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--param", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) return cli_usage_error(C, "--param expects NAME=VALUE, got '%s'", v);
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            int r = decoupled_set_param(M, &a, name, eq + 1);
            if (r == -1) return cli_usage_error(C, "%s has no parameter '%s' (it has: %s)", M->name, name, M->params);
            if (r == -2) return cli_usage_error(C, "%s: bad value '%s' for %s", M->name, eq + 1, name);
        } else if (missing) return 2;
        else if (!strncmp(argv[i], "--", 2) && i + 1 < argc && !strchr(argv[i], '=')) {
            int r = decoupled_set_param(M, &a, argv[i] + 2, argv[i + 1]);
            if (r == -1)
                return cli_usage_error(C, "unknown option '%s' (%s's parameters: %s; see beard recover --help)", argv[i],
                                       M->name, M->params);
            if (r == -2) return cli_usage_error(C, "%s: bad value '%s' for %s", M->name, argv[i + 1], argv[i] + 2);
            i++;
        } else return cli_usage_error(C, "unknown option '%s' (see beard recover --help)", argv[i]);
    }
    if (!dataset) return cli_usage_error(C, "--dataset is required (e.g. --dataset cifar10)");
    const DatasetInfo *info = dataset_info(dataset);
    if (!info) return cli_usage_error(C, "unknown dataset '%s'", dataset);
    if (nt == 0) return cli_usage_error(C, "--teacher PATH is required (a model trained on %s)", info->name);
    if (nt > 1 && strcmp(M->name, "G-VBSM"))
        return cli_usage_error(C, "%s recovers from one teacher; %d given (G-VBSM takes several)", M->name, nt);
    if (nta > nt) return cli_usage_error(C, "%d --teacher-arch for %d teachers", nta, nt);
    if (a.iteration < 1 || a.batch_size < 1 || a.jitter < 0)
        return cli_usage_error(C, "iteration and batch_size must be positive and jitter >= 0");
    parallel_set_threads((int)threads);
    char outbuf[1024];
    if (!out) {
        snprintf(outbuf, sizeof(outbuf), "syn_data/%s_%s_ipc%ld", M->name, info->name, ipc);
        out = outbuf;
    }
    // outputs, checked before any work
    if (cli_check_output_dir(C, "--out", out) || cli_check_output_file(C, "--json", json)) return 1;
    Err e;
    Net nets[DECOUPLED_MAX_TEACHERS];
    int loaded = 0, status = 1;
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    float *realx = NULL;
    DecoupledOut o;
    memset(&o, 0, sizeof(o));
    for (int t = 0; t < nt; t++) {
        const char *ta = t < nta ? tarch[t] : arch;
        if (checkpoint_load(&nets[t], teachers[t], ta, info->c, info->n_classes, info->h, info->w, &e)) {
            cli_error(C, "teacher %s does not load as a %s for %s (%d classes, %dx%dx%d): %s", teachers[t], ta, info->name,
                      info->n_classes, info->c, info->h, info->w, e.msg);
            goto done;
        }
        loaded++;
        nets[t].train = 0;
        a.teachers[t] = &nets[t];
    }
    a.n_teachers = nt;
    a.n_classes = info->n_classes;
    a.ipc = (int)ipc;
    a.seed = (uint64_t)seed;
    a.progress = !quiet && !getenv("BEARD_NO_PROGRESS");
    a.log = log_every > 0 && !quiet ? stdout : NULL;
    a.log_every = (int)log_every;
    memcpy(a.mean, info->mean, sizeof(a.mean));
    memcpy(a.std, info->std, sizeof(a.std));
    if (M->needs_real) {
        if (dataset_load(&ds, dataset, data ? data : "./data", 1, train_limit, &e)) {
            cli_error(C, "%s needs the training set: %s", M->name, e.msg);
            goto done;
        }
        size_t D = (size_t)info->c * info->h * info->w;
        realx = xmalloc(sizeof(float) * D * ds.n);
        if (!realx) {
            cli_error(C, "out of memory for %d training images", ds.n);
            goto done;
        }
        dataset_to_float(&ds, 0, ds.n, realx, 1);
        a.real_x = realx, a.real_y = ds.labels, a.n_real = ds.n;
    }
    if (decoupled_out_init(&o, info->n_classes, (int)ipc, net_in_size(&nets[0]), &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    printf("beard recover: %s on %s, ipc %ld, %d teacher%s (%s), %d iterations, seed %ld, %d threads\n", M->name,
           info->name, ipc, nt, nt > 1 ? "s" : "", nets[0].arch, a.iteration, seed, parallel_threads());
    fflush(stdout);
    if (M->run(&a, &o, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    if (decoupled_write_imagefolder(out, &o, info->c, info->h, info->w, a.mean, a.std, M->image_ext, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    printf("recovered %d images in %.1fs (%ld iterations, %.2f it/s): %s/new000/class000_id000.%s ...\n", o.n, o.seconds,
           o.iterations, o.seconds > 0 ? o.iterations / o.seconds : 0.0, out, M->image_ext);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "method", M->name);
        cJSON_AddStringToObject(j, "dataset", info->name);
        cJSON_AddNumberToObject(j, "ipc", (double)ipc);
        cJSON *ta = cJSON_AddArrayToObject(j, "teachers");
        for (int t = 0; t < nt; t++) cJSON_AddItemToArray(ta, cJSON_CreateString(teachers[t]));
        cJSON_AddNumberToObject(j, "iteration", a.iteration);
        cJSON_AddNumberToObject(j, "batch_size", a.batch_size);
        cJSON_AddNumberToObject(j, "lr", a.lr);
        cJSON_AddNumberToObject(j, "seed", (double)seed);
        cJSON_AddNumberToObject(j, "threads", parallel_threads());
        cJSON_AddNumberToObject(j, "seconds", o.seconds);
        cJSON_AddNumberToObject(j, "iterations", (double)o.iterations);
        cJSON_AddStringToObject(j, "out", out);
        int bad = cli_write_json(C, json, j);
        cJSON_Delete(j);
        if (bad) goto done;
    }
    status = 0;
done:
    for (int t = 0; t < loaded; t++) net_free(&nets[t]);
    decoupled_out_free(&o);
    dataset_free(&ds);
    xfree(realx);
    return status;
}
