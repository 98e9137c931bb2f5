/*
 * bench_distill.c: `beard bench --distill METHOD`, the speed of the distillation stage:
 * iterations per second of a method (one warm-up iteration, then --iterations timed
 * ones) and the peak resident memory of the process, on CIFAR-10 (the real training set
 * from --data when it is there, otherwise random images of its shape, --train-size per
 * class: the per-iteration cost depends on the batch sizes, not on the data). With
 * --torch it runs the official code in PyTorch on the CPU, same threads, same settings,
 * same data (scripts/bench_distill_torch.py around a checkout of it in --official), and
 * prints the ratio: speed claims are only meaningful side by side on one machine.
 *
 * --param NAME=VALUE sets a method parameter. MTT needs expert trajectories: unless
 * --param buffer_path=DIR names some, the bench writes one random trajectory of the
 * model (as many snapshots as the settings need) to a temporary buffer folder, which the
 * official code reads too; an iteration's cost does not depend on the experts' values.
 * The decoupled methods (SRe2L, CDA, SC-DD, G-VBSM, DELT) need a teacher: unless --param
 * teacher=T.pth names one, a randomly initialised --arch (their default resnet18_modified)
 * is saved to such a temporary folder; an iteration is one recover iteration of the first
 * batch (its cost does not depend on the weights either). Their PyTorch side is
 * `beard bench --recover --torch` (SRe2L's loop, scripts/bench_recover_torch.py).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../core/parallel.h"
#include "../distill/distill.h"
#include "../distill/mtt_buffer.h"
#include "../io/file.h"
#include "../models/checkpoint.h"
#include "../models/convnet.h"
#include "cli.h"

static const char *C = "bench";

// user + system CPU seconds of the process (all threads)
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// the bench's temporary folder (a random teacher or expert buffer), if any
static void remove_tmp(const char *dir) {
    if (!dir[0]) return;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "beard bench: could not remove %s\n", dir);
}

static int torch_side(const char *python, const char *method, int ipc, long iters, const char *official,
                      const char *data, int threads, const char *buffer_path, double *sec_per_it,
                      double *cpu_per_it) {
    char cmd[4096];
    int k = snprintf(cmd, sizeof(cmd),
                     "%s scripts/bench_distill_torch.py --method %s --ipc %d --iterations %ld --official '%s' "
                     "--cifar '%s/cifar-10-batches-bin' --threads %d",
                     python, method, ipc, iters + 1, official, data, threads);
    if (buffer_path && k > 0 && (size_t)k < sizeof(cmd))
        snprintf(cmd + k, sizeof(cmd) - (size_t)k, " --buffer-path '%s'", buffer_path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    int got = 0, n;
    while (fgets(line, sizeof(line), p))
        if (sscanf(line, "TORCH %lf %d %lf", sec_per_it, &n, cpu_per_it) == 3) got = 1;
    int rc = pclose(p);
    return got && rc == 0 ? 0 : -1;
}

// MTT's bench buffer: one random trajectory of ConvNet in the layout under root
static int random_buffer(const char *root, const DistillParams *p, const DatasetInfo *info, int zca, char *dir,
                         size_t n, Err *e) {
    Net net;
    if (mtt_buffer_dir(dir, n, root, info, zca, "ConvNet", e) || file_mkdirs(dir, e) ||
        model_create(&net, "ConvNet", info->c, info->n_classes, info->h, info->w, e))
        return -1;
    int epochs = (int)(distill_param_int(p, "max_start_epoch") + distill_param_int(p, "expert_epochs") + 1);
    float *traj = xmalloc(sizeof(float) * net.n_params * (size_t)epochs);
    int rc = -1;
    if (!traj) {
        err_set(e, "out of memory for a trajectory of %d snapshots", epochs);
    } else {
        net_init_params(&net, 7);
        Rng r;
        rng_init(&r, 8, 0);
        for (int t = 0; t < epochs; t++)
            for (size_t i = 0; i < net.n_params; i++)
                traj[(size_t)t * net.n_params + i] = net.params[i] + 0.01f * t * (float)rng_normal(&r);
        rc = mtt_buffer_write(dir, &net, &traj, 1, epochs, NULL, e);
    }
    xfree(traj);
    net_free(&net);
    return rc;
}

int bench_distill(int argc, char **argv) {
    const char *method = NULL, *data = NULL, *official = NULL, *python = "/usr/bin/python3", *json = NULL,
               *arch = NULL;
    const char *pnames[32], *pvals[32];
    char pbuf[32][256];
    int np = 0;
    long ipc = 10, iters = 5, threads = 0, per_class = 5000;
    int torch = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--torch")) torch = 1;
        else if ((v = cli_opt(argc, argv, &i, "--distill", &missing))) method = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--official", &missing))) official = v;
        else if ((v = cli_opt(argc, argv, &i, "--python", &missing))) python = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--param", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || np >= 32) return cli_usage_error(C, "--param wants NAME=VALUE, not '%s'", v);
            snprintf(pbuf[np], sizeof(pbuf[np]), "%.*s", (int)(eq - v), v);
            pnames[np] = pbuf[np], pvals[np] = eq + 1, np++;
        }
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
    int has_teacher = 0;
    for (int k = 0; def->params[k].name; k++) has_teacher |= !strcmp(def->params[k].name, "teacher");
    if (torch && has_teacher)
        return cli_usage_error(C, "--torch with %s: the PyTorch side of the recover loop is beard bench --recover --torch "
                                  "(SRe2L's, on the same teacher architecture)", def->name);
    if (!arch) arch = def->default_arch ? def->default_arch : "ConvNet";
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
    for (int k = 0; k < np; k++)
        if (distill_params_set_text(&p, pnames[k], pvals[k], &e)) {
            dataset_free(&ds);
            return cli_usage_error(C, "%s", e.msg);
        }
    // MTT without a buffer: a random trajectory in a temporary buffer_path; a decoupled
    // method without a teacher: a random one in a temporary folder
    char tmp_root[256] = "", buf_dir[1200];
    const char *td = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (has_teacher && !distill_param_str(&p, "teacher")[0]) {
        Net t;
        snprintf(tmp_root, sizeof(tmp_root), "%s/beard-bench-teacher-XXXXXX", td);
        int bad = !mkdtemp(tmp_root);
        if (bad) err_set(&e, "cannot create it");
        else if (!(bad = file_path_join(buf_dir, sizeof(buf_dir), tmp_root, "teacher.pth", "teacher", &e)) &&
                 !(bad = model_create(&t, arch, info->c, info->n_classes, info->h, info->w, &e))) {
            net_init_params(&t, 7);
            bad = checkpoint_save(&t, buf_dir, &e) || distill_params_set_text(&p, "teacher", buf_dir, &e);
            net_free(&t);
        }
        if (bad) {
            dataset_free(&ds);
            cli_error(C, "a bench teacher in %s: %s", tmp_root, e.msg);
            remove_tmp(tmp_root);
            return 1;
        }
    }
    const char *buffer_path = NULL;
    if (distill_param_index(&p, "buffer_path") >= 0) {
        int given = 0;
        for (int k = 0; k < np; k++) given |= distill_name_eq(pnames[k], "buffer_path", strlen("buffer_path"));
        if (!given) {
            snprintf(tmp_root, sizeof(tmp_root), "%s/beard-bench-buffers-XXXXXX", td);
            if (!mkdtemp(tmp_root) ||
                random_buffer(tmp_root, &p, info, distill_param_bool(&p, "zca"), buf_dir, sizeof(buf_dir), &e) ||
                distill_params_set_text(&p, "buffer_path", tmp_root, &e)) {
                dataset_free(&ds);
                return cli_error(C, "a bench buffer in %s: %s", tmp_root, e.msg);
            }
        }
        buffer_path = distill_param_str(&p, "buffer_path");
    }
    // the decoupled methods: every timed step inside the first recover batch
    DistillConfig cfg = {.method = def, .info = info, .ipc = (int)ipc, .iterations = has_teacher ? iters + 1 : iters,
                         .lr_net = 0.01, .num_eval = 1, .epoch_eval_train = 1, .batch_train = 256};
    if (has_teacher && distill_param_index(&p, "round_iterations") >= 0 && // DELT: its rounds fit the batch
        cfg.iterations < distill_param_int(&p, "round_iterations"))
        cfg.iterations = distill_param_int(&p, "round_iterations");
    snprintf(cfg.arch, sizeof(cfg.arch), "%s", arch);
    printf("beard bench --distill %s: CIFAR-10 (%s, %d images), %s, ipc %ld, %ld timed iterations, %d threads\n",
           def->name, have_real ? "real" : "random", ds.n, cfg.arch, ipc, iters, nt);
    DistillRun r;
    if (distill_run_init(&r, &cfg, &p, &ds, NULL, &e) || distill_run_step(&r, 0, &e)) {
        dataset_free(&ds);
        cli_error(C, "%s", e.msg);
        remove_tmp(tmp_root);
        return 1;
    }
    double t0 = time_now(), c0 = cpu_seconds();
    for (long it = 1; it <= iters; it++)
        if (distill_run_step(&r, it, &e)) {
            distill_run_free(&r);
            dataset_free(&ds);
            cli_error(C, "%s", e.msg);
            remove_tmp(tmp_root);
            return 1;
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
        if (torch_side(python, def->name, (int)ipc, iters, official, data, nt, buffer_path, &ts, &tcpu) == 0) {
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
    remove_tmp(tmp_root);
    return 0;
}
