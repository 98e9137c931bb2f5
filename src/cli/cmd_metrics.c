/*
 * cmd_metrics.c: `beard metrics`, BEARD's RR/AE/CREI (and ASR, AST, a passes-based AE,
 * bootstrap intervals) from any mix of BEARD evaluation logs and beard results.json
 * files. The computation and its choices are in src/metrics/metrics.c.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../evaluate/beardlog.h"
#include "../evaluate/evaluate.h"
#include "../metrics/metrics.h"
#include "../core/parallel.h"
#include "../io/file.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard metrics FILE... [--alpha 0.5] [--metrics-type beard|rome] [--out DIR]\n"
    "                     [--bootstrap 1000] [--seed 0] [--threads N (0: all cores)] [--all-attacks]\n"
    "\n"
    "Reads BEARD evaluation logs (*_evaluation_log.txt, as BEARD or `beard evaluate` write\n"
    "them) and beard results.json files, in any mix; each is one run (one model at one IPC).\n"
    "Prints Markdown tables: per run RR, AE, CREI for targeted and untargeted attacks; over\n"
    "all runs RRM, AEM, CREIM (BEARD's combined figures); per attack over the runs RRS, AES,\n"
    "CREIS; and per attack accuracy, ASR (accuracy drop, and per-sample from results.json),\n"
    "attack time. Targeted Deepfool and AA are left out of the metrics, as BEARD does.\n"
    "From results.json also: AE from passes per sample (hardware-independent) and bootstrap\n"
    "95% intervals over test samples (--bootstrap resamples, 0 to skip).\n"
    "Writes <method>_metrics_<type>.json and .csv into --out DIR (default: .; --output-dir\n"
    "is its old name). The files given must be one method on one dataset, one run per IPC\n"
    "(a BEARD log and the results.json of the same evaluation are one run: give either);\n"
    "accuracies must lie in [0, 100] and times be >= 0, and a result line whose figures do\n"
    "not parse is an error: BEARD's toolkit would skip it and report different figures.\n"
    "A black-box log (beard evaluate with load_file_model_* keys, or BEARD's\n"
    "evaluate_model_blackbox.py) is read as BEARD's metrics/black_box/convert_to_white_box.py\n"
    "converts it: one white-box run per scored model (that model's accuracies, the\n"
    "surrogate's times, only FGSM, PGD, PGD_L2, Deepfool, CW and AA; --all-attacks keeps\n"
    "the other attacks too), each with its own report and <model>_metrics_<type> files.\n"
    "  RR   = 100 (1 - (c - mean a) / (c - min a))      (--metrics-type rome:\n"
    "         100 (1 - (c - mean a)(c - min a) / c^2))\n"
    "  AE   = 100 (mean t - t_c) / (max t - t_c),  t_c = min(clean targeted, untargeted time)\n"
    "  CREI = alpha RR + (1 - alpha) AE\n";

static int run_order(const void *pa, const void *pb) {
    const MetricsRun *a = pa, *b = pb;
    int c = strcmp(a->method, b->method);
    if (c) return c;
    char *ea, *eb;
    long ia = strtol(a->ipc, &ea, 10), ib = strtol(b->ipc, &eb, 10);
    if (a->ipc[0] && b->ipc[0] && !*ea && !*eb && ia != ib) return ia < ib ? -1 : 1;
    c = strcmp(a->ipc, b->ipc);
    return c ? c : strcmp(a->path, b->path);
}

// computes, prints and writes the report of runs (n)
static int report(const char *C, MetricsRun *runs, int n, const MetricsOptions *opt, const char *outdir) {
    Err e;
    MetricsReport rep;
    if (metrics_compute(&rep, runs, n, opt, &e)) return cli_error(C, "%s", e.msg);
    int status = 0;
    metrics_report_markdown(&rep, stdout);
    fflush(stdout);
    // BEARD's toolkit names its output {method}_metrics_{type}.json; the method comes
    // from the files read, so it goes through the file-name rule (src/io/file.h)
    char method[64], jname[128], cname[128], jpath[1200], cpath[1200];
    snprintf(method, sizeof(method), "%s", runs[0].method[0] ? runs[0].method : "beard");
    for (char *p = method; *p; p++) *p = (char)tolower((unsigned char)*p);
    snprintf(jname, sizeof(jname), "%s_metrics_%s.json", method, metrics_type_name(opt->type));
    snprintf(cname, sizeof(cname), "%s_metrics_%s.csv", method, metrics_type_name(opt->type));
    if (file_path_join(jpath, sizeof(jpath), outdir, jname, "output name (from the method)", &e) ||
        file_path_join(cpath, sizeof(cpath), outdir, cname, "output name (from the method)", &e))
        status = cli_error(C, "%s", e.msg);
    if (!status) {
        cJSON *j = metrics_report_json(&rep);
        if (evaluate_write_json(jpath, j, &e)) status = cli_error(C, "%s", e.msg);
        cJSON_Delete(j);
    }
    if (!status) {
        FileAtomic f;
        if (file_atomic_open(&f, cpath, &e)) status = cli_error(C, "%s", e.msg);
        else if (metrics_report_csv(&rep, f.f)) {
            file_atomic_abort(&f);
            status = cli_error(C, "cannot write %s", cpath);
        } else if (file_atomic_commit(&f, &e)) status = cli_error(C, "%s", e.msg);
    }
    if (!status) fprintf(stderr, "beard metrics: wrote %s and %s\n", jpath, cpath);
    metrics_report_free(&rep);
    return status;
}

// the file's text when it is a text file (not JSON, no NUL), else NULL
static char *read_text(const char *path) {
    uint8_t *buf;
    size_t len;
    Err e;
    if (file_read_all(path, (size_t)1 << 30, &buf, &len, &e)) return NULL;
    char *t = realloc(buf, len + 1);
    if (!t) {
        free(buf);
        return NULL;
    }
    t[len] = 0;
    const char *p = t;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p == '{' || memchr(t, 0, len)) {
        free(t);
        return NULL;
    }
    return t;
}

int cmd_metrics(int argc, char **argv) {
    const char *C = "metrics", *outdir = ".", *type_s = "beard";
    int all_attacks = 0;
    double alpha = 0.5;
    long boot = 1000, seed = 0, threads = 0;
    const char **files = calloc(argc, sizeof(char *));
    int n_files = 0;
    if (!files) return cli_error(C, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            free(files);
            return 0;
        } else if (cli_flag(argv, i, "--all-attacks")) all_attacks = 1;
        else if ((v = cli_opt_any(argc, argv, &i, "--out,--output-dir", &missing))) outdir = v;
        else if ((v = cli_opt(argc, argv, &i, "--metrics-type", &missing))) type_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--alpha", &missing))) {
            if (cli_parse_num(C, "--alpha", v, &alpha)) goto usage;
        } else if ((v = cli_opt(argc, argv, &i, "--bootstrap", &missing))) {
            if (cli_parse_int(C, "--bootstrap", v, 0, 1000000, &boot)) goto usage;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 0x7fffffffffffffffL, &seed)) goto usage;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) goto usage;
        } else if (missing) goto usage;
        else if (!strncmp(argv[i], "--", 2)) {
            cli_usage_error(C, "unknown option '%s' (see beard metrics --help)", argv[i]);
            goto usage;
        } else files[n_files++] = argv[i];
    }
    if (n_files == 0) {
        cli_usage_error(C, "give one or more BEARD logs or results.json files (see beard metrics --help)");
        goto usage;
    }
    MetricsOptions opt;
    metrics_options_default(&opt);
    if (metrics_type_parse(type_s, &opt.type)) {
        cli_usage_error(C, "--metrics-type must be beard or rome, not '%s'", type_s);
        goto usage;
    }
    if (!(alpha >= 0 && alpha <= 1)) {
        cli_usage_error(C, "--alpha must be in [0, 1], not %g", alpha);
        goto usage;
    }
    opt.alpha = alpha;
    opt.bootstrap = (int)boot;
    opt.seed = (uint64_t)seed;
    parallel_set_threads((int)threads);
    Err e;
    if (file_check_dir_writable(outdir, 1, &e)) {
        free(files);
        return cli_error(C, "--output-dir: %s", e.msg);
    }

    // a black-box log expands into one run per scored model (BEARD's convert_to_white_box.py)
    int cap = n_files * BEARDLOG_MAX_MODELS;
    MetricsRun *runs = calloc((size_t)cap, sizeof(MetricsRun));
    if (!runs) {
        free(files);
        return cli_error(C, "out of memory");
    }
    int status = 0, loaded = 0, n_black = 0;
    for (int i = 0; i < n_files && !status; i++) {
        int bb = 1, got = 0;
        char *t = read_text(files[i]);
        if (t) {
            char dropped[512];
            bb = metrics_runs_from_blackbox_text(runs + loaded, cap - loaded, &got, t, files[i], all_attacks, dropped,
                                                 sizeof(dropped), &e);
            free(t);
            if (bb < 0) status = cli_error(C, "%s", e.msg);
            if (bb == 0) {
                loaded += got, n_black++;
                fprintf(stderr, "beard metrics: %s is a black-box log: one run per scored model (%d), converted as "
                                "BEARD's convert_to_white_box.py does\n", files[i], got);
                if (dropped[0])
                    fprintf(stderr, "beard metrics: left out as BEARD's converter does (it keeps FGSM, PGD, PGD_L2, "
                                    "Deepfool, CW, AA; --all-attacks keeps them): %s\n", dropped);
            }
        }
        if (status || bb == 0) continue;
        if (metrics_run_load(&runs[loaded], files[i], &e)) status = cli_error(C, "%s", e.msg);
        else loaded++;
    }
    if (!status && n_black && (n_black != 1 || n_files != 1))
        status = cli_usage_error(C, "give one black-box log alone (it holds one run per model, each reported apart)");
    if (!status && n_black) { // each scored model apart, as BEARD evaluates each converted log
        for (int k = 0; k < loaded && !status; k++) {
            printf("## %s (examples crafted on the log's surrogate)\n\n", runs[k].method);
            status = report(C, runs + k, 1, &opt, outdir);
        }
    } else if (!status) {
        // present the runs as BEARD's toolkit does: by method, then IPC (numerically here)
        qsort(runs, loaded, sizeof(MetricsRun), run_order);
        status = report(C, runs, loaded, &opt, outdir);
    }
    for (int i = 0; i < loaded; i++) metrics_run_free(&runs[i]);
    free(runs);
    free(files);
    return status;
usage:
    free(files);
    return 2;
}
