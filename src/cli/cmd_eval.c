/*
 * cmd_eval.c: `beard eval`, the clean accuracy of a checkpoint on a test set.
 *
 * The model sees exactly what BEARD's test loader produces: ToTensor then Normalize in
 * float32. --dump-logits writes the raw float32 logits, row-major (n x classes), so that
 * they can be compared with PyTorch's value by value.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../io/file.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard eval --model FILE --dataset cifar10 [--data DIR] [--arch ConvNet|auto|NAME] [--limit N]\n"
    "                  [--batch 256] [--threads N] [--json OUT] [--dump-logits FILE]\n"
    "\n"
    "Prints the clean accuracy of a checkpoint (.pt/.pth as PyTorch saves it, or\n"
    ".safetensors) on the dataset's test split. --data defaults to ./data.\n"
    "--arch: the checkpoint's architecture (`beard --help` lists them; default ConvNet);\n"
    "--arch auto infers it from the checkpoint's keys (an error names the candidates when\n"
    "several fit). --limit N: the first N test images (0, the default: all).\n"
    "--threads 0 (default) uses all cores. --out is another name for --json.\n"
    "--json writes {\"dataset\",\"arch\",\"model\",\"n\",\"correct\",\"accuracy\",\"seconds\"}\n"
    "(accuracy in percent); --dump-logits writes float32 logits, row-major (n x classes).\n";

int cmd_eval(int argc, char **argv) {
    const char *C = "eval", *model = NULL, *dataset = NULL, *data = NULL, *arch = "ConvNet", *json = NULL,
               *dump = NULL;
    long limit = 0, batch = 256, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if ((v = cli_opt(argc, argv, &i, "--model", &missing))) model = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--json,--out", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--dump-logits", &missing))) dump = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--limit,--n-examples,--test-limit,--n", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &limit)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &batch)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard eval --help)", argv[i]);
    }
    if (!model) return cli_usage_error(C, "--model FILE is required (see beard eval --help)");
    if (!dataset) return cli_usage_error(C, "--dataset is required (e.g. --dataset cifar10)");
    parallel_set_threads((int)threads);
    if (cli_check_output_file(C, "--json", json) || cli_check_output_file(C, "--dump-logits", dump)) return 1;

    CliTestSet ts;
    if (cli_load_testset(C, dataset, data, limit, &ts)) return 1;
    Net net;
    if (cli_load_model(C, model, arch, ts.info, &net)) {
        cli_testset_free(&ts);
        return 1;
    }
    int n = ts.ad.n, K = net.n_classes;
    int *pred = calloc(n, sizeof(int));
    float *logits = xmalloc(sizeof(float) * (size_t)n * K);
    Err e;
    double t0 = time_now();
    int rc = !pred || !logits ? err_set(&e, "out of memory") : attack_clean_predict(&net, &ts.ad, SEM_BEARD, (int)batch, pred, logits, &e);
    double secs = time_now() - t0;
    int status = 0;
    if (rc) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    int correct = 0;
    for (int i = 0; i < n; i++) correct += pred[i] == ts.ad.y[i];
    double acc = 100.0 * correct / n;
    printf("%s on %s (%d test images): clean accuracy %.2f%% (%d/%d), %.2fs\n", net.arch, ts.info->name, n, acc,
           correct, n, secs);
    if (dump && file_write_all(dump, logits, sizeof(float) * (size_t)n * K, &e)) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dataset", ts.info->name);
        cJSON_AddStringToObject(o, "arch", net.arch);
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddNumberToObject(o, "n", n);
        cJSON_AddNumberToObject(o, "correct", correct);
        cJSON_AddNumberToObject(o, "accuracy", acc);
        cJSON_AddNumberToObject(o, "seconds", secs);
        status = cli_write_json(C, json, o);
        cJSON_Delete(o);
    }
done:
    free(pred);
    xfree(logits);
    net_free(&net);
    cli_testset_free(&ts);
    return status;
}
