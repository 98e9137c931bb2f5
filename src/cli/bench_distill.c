/*
 * bench_distill.c: `beard bench --distill METHOD`, the speed of the distillation stage:
 * iterations per second of a method (one warm-up iteration, then --iterations timed
 * ones) and the peak resident memory of the process, on CIFAR-10 (the real training set
 * from --data when it is there, otherwise random images of its shape, --train-size per
 * class: the per-iteration cost depends on the batch sizes, not on the data). With
 * --torch it runs the official code in PyTorch on the CPU, same threads, same settings,
 * same data (scripts/bench_distill_torch.py around a checkout of it in --official), and
 * prints the ratio: speed claims are only meaningful side by side on one machine.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "../core/parallel.h"
#include "../distill/distill.h"
#include "cli.h"

static const char *C = "bench";

// user + system CPU seconds of the process (all threads)
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int torch_side(const char *python, const char *method, int ipc, long iters, const char *official,
                      const char *data, int threads, double *sec_per_it, double *cpu_per_it) {
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "%s scripts/bench_distill_torch.py --method %s --ipc %d --iterations %ld --official '%s' "
             "--cifar '%s/cifar-10-batches-bin' --threads %d",
             python, method, ipc, iters + 1, official, data, threads);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    int got = 0, n;
    while (fgets(line, sizeof(line), p))
        if (sscanf(line, "TORCH %lf %d %lf", sec_per_it, &n, cpu_per_it) == 3) got = 1;
    int rc = pclose(p);
    return got && rc == 0 ? 0 : -1;
}

int bench_distill(int argc, char **argv) {
    const char *method = NULL, *data = NULL, *official = NULL, *python = "/usr/bin/python3", *json = NULL;
    long ipc = 10, iters = 5, threads = 0, per_class = 5000;
    int torch = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--torch")) torch = 1;
        else if ((v = cli_opt(argc, argv, &i, "--distill", &missing))) method = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--official", &missing))) official = v;
        else if ((v = cli_opt(argc, argv, &i, "--python", &missing))) python = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--ipc", &missing))) {
            if (cli_parse_int(C, "--ipc", v, 1, 10000, &ipc)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--iterations", &missing))) {
            if (cli_parse_int(C, "--iterations", v, 1, 100000, &iters)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--train-size", &missing))) {
            if (cli_parse_int(C, "--train-size", v, 1, 100000, &per_class)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' with --distill (see beard bench --help)", argv[i]);
    }
    const DistillMethodDef *def = distill_method_find(method);
    if (!def) return cli_usage_error(C, "unknown method '%s' for --distill", method ? method : "");
    if (torch && (!official || !data))
        return cli_usage_error(C, "--torch needs --official DIR (checkouts of the official code) and --data DIR (CIFAR-10)");
    parallel_set_threads((int)threads);
    int nt = parallel_threads();
    const DatasetInfo *info = dataset_info("cifar10");
    Dataset ds;
    Err e;
    int have_real = 0;
    if (data) {
        if (dataset_load(&ds, "cifar10", data, 1, 0, &e)) {
            dataset_free(&ds);
            return cli_error(C, "%s", e.msg);
        }
        have_real = 1;
    } else { // random images of CIFAR-10's shape
        memset(&ds, 0, sizeof(ds));
        snprintf(ds.name, sizeof(ds.name), "CIFAR10");
        ds.c = 3, ds.h = ds.w = 32, ds.n_classes = 10, ds.n = (int)(10 * per_class);
        ds.images = malloc((size_t)ds.n * 3072);
        ds.labels = malloc(sizeof(int) * (size_t)ds.n);
        if (!ds.images || !ds.labels) {
            dataset_free(&ds);
            return cli_error(C, "out of memory for %d images", ds.n);
        }
        Rng r;
        rng_init(&r, 1, 0);
        for (size_t i = 0; i < (size_t)ds.n * 3072; i++) ds.images[i] = (uint8_t)rng_below(&r, 256);
        for (int i = 0; i < ds.n; i++) ds.labels[i] = i % 10;
    }
    DistillSettings s;
    distill_settings_default(&s);
    s.ipc = (int)ipc;
    DistillParams p;
    if (distill_settings_params(&s, def, info, &p, &e)) {
        dataset_free(&ds);
        return cli_error(C, "%s", e.msg);
    }
    DistillConfig cfg = {.method = def, .info = info, .ipc = (int)ipc, .iterations = iters, .lr_net = 0.01,
                         .num_eval = 1, .epoch_eval_train = 1, .batch_train = 256};
    snprintf(cfg.arch, sizeof(cfg.arch), "ConvNet");
    printf("beard bench --distill %s: CIFAR-10 (%s, %d images), ConvNet, ipc %ld, %ld timed iterations, %d threads\n",
           def->name, have_real ? "real" : "random", ds.n, ipc, iters, nt);
    DistillRun r;
    if (distill_run_init(&r, &cfg, &p, &ds, NULL, &e) || distill_run_step(&r, 0, &e)) {
        dataset_free(&ds);
        return cli_error(C, "%s", e.msg);
    }
    double t0 = time_now(), c0 = cpu_seconds();
    for (long it = 1; it <= iters; it++)
        if (distill_run_step(&r, it, &e)) {
            distill_run_free(&r);
            dataset_free(&ds);
            return cli_error(C, "%s", e.msg);
        }
    double sec = (time_now() - t0) / iters, cpu = (cpu_seconds() - c0) / iters;
    distill_run_free(&r);
    // peak resident memory of the whole process (set-up, data, the run)
    double peak_mb = 0;
    FILE *st = fopen("/proc/self/status", "r");
    char line[256];
    while (st && fgets(line, sizeof(line), st))
        if (!strncmp(line, "VmHWM:", 6)) peak_mb = atof(line + 6) / 1024.0;
    if (st) fclose(st);
    double load[1] = {0};
    getloadavg(load, 1);
    printf("  beard    %.3f s/iteration  (%.3f iterations/s; %.3f CPU s/iteration), peak memory %.0f MB, load %.1f\n", sec,
           1.0 / sec, cpu, peak_mb, load[0]);
    double ts = 0, tcpu = 0;
    int have = 0;
    if (torch) {
        if (torch_side(python, def->name, (int)ipc, iters, official, data, nt, &ts, &tcpu) == 0) {
            have = 1;
            double load2[1] = {0};
            getloadavg(load2, 1);
            printf("  official %.3f s/iteration  (%.3f iterations/s; %.3f CPU s/iteration; PyTorch CPU, %d threads), load %.1f\n",
                   ts, 1.0 / ts, tcpu, nt, load2[0]);
            printf("  beard is %.2fx faster (wall clock), %.2fx (CPU time)\n", ts / sec, tcpu / cpu);
        } else {
            printf("  PyTorch comparison unavailable (%s scripts/bench_distill_torch.py failed)\n", python);
        }
    }
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            dataset_free(&ds);
            return cli_error(C, "cannot write %s", json);
        }
        fprintf(f, "{\"method\": \"%s\", \"ipc\": %ld, \"threads\": %d, \"real_data\": %s, \"seconds_per_iteration\": %.6f, "
                   "\"cpu_seconds_per_iteration\": %.6f, \"peak_memory_mb\": %.1f, \"load\": %.2f",
                def->name, ipc, nt, have_real ? "true" : "false", sec, cpu, peak_mb, load[0]);
        if (have)
            fprintf(f, ", \"torch_seconds_per_iteration\": %.6f, \"torch_cpu_seconds_per_iteration\": %.6f, \"ratio\": %.3f, "
                       "\"cpu_ratio\": %.3f",
                    ts, tcpu, ts / sec, tcpu / cpu);
        fprintf(f, "}\n");
        fclose(f);
    }
    dataset_free(&ds);
    return 0;
}
