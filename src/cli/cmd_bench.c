/*
 * cmd_bench.c: `beard bench`, throughput of the engine.
 *
 * Measures images per second for (1) forward, (2) forward + backward to the input (what
 * every gradient attack spends its time on) and (3) a full SGD training step (forward,
 * backward to the parameters, update), on random inputs of the dataset's shape. With
 * --gemm it measures the machine's sgemm GFLOP/s instead, so that the figures can be read
 * as a fraction of peak. With --torch it also runs scripts/bench_torch.py (PyTorch, CPU,
 * same threads and batch) in the same invocation and prints the ratios: speed claims are
 * only meaningful side by side on one machine.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../evaluate/evaluate.h"
#include "../core/rng.h"
#include "../data/augment.h"
#include "../distill/recover.h"
#include "../models/convnet.h"
#include "../models/registry.h"
#include "../nn/optim.h"
#include "../io/file.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard bench [--arch ConvNet] [--dataset cifar10] [--batch 256] [--threads N]\n"
    "                   [--seconds S] [--json OUT] [--torch] [--python PY] [--peak]\n"
    "       beard bench --gemm [--threads N] [--json OUT]\n"
    "       beard bench --recover [--arch resnet18_modified] [--batch 100] [--threads N] [--torch]\n"
    "       beard bench --evaluate CONFIG [--log BEARD_LOG] [--limit N] [--project 10000]\n"
    "                   [--load-file FILE] [--data DIR] [--attack A,B] [--semantics S]\n"
    "                   [--seed S] [--threads N] [--json OUT] [--quiet]\n"
    "\n"
    "Measures images/s of forward, forward+backward-to-input (attack cost) and an SGD\n"
    "train step (train mode: BatchNorm on batch statistics), on random inputs of the\n"
    "dataset's shape, and the effective GFLOP/s (the direct convolutions' FLOPs over the\n"
    "time). --arch: any architecture of `beard --help` (default ConvNet). --seconds:\n"
    "minimum time per measurement (default 3). --peak also measures sgemm (n=1024, same\n"
    "threads) and prints the fraction of it reached.\n"
    "--torch also runs scripts/bench_torch.py with PyTorch on the CPU (same threads and\n"
    "batch; --python names the interpreter, default /usr/bin/python3) and prints ratios;\n"
    "the architectures other than the ConvNet family also need torchvision.\n"
    "--gemm measures sgemm GFLOP/s (OpenBLAS, square matrices) single- and multi-threaded.\n"
    "\n"
    "       beard bench --distill METHOD [--ipc 10] [--iterations 5] [--data DIR] [--train-size 5000]\n"
    "                   [--arch A] [--threads N] [--json OUT] [--param NAME=VALUE] [--torch --official DIR]\n"
    "                   [--python PY]\n"
    "Distillation: iterations/s of METHOD (DM, IDM, BACON, DC, DSA, MTT; SRe2L, CDA, SC-DD, G-VBSM,\n"
    "DELT) on CIFAR-10 (the training set in --data, else --train-size random images per class) after\n"
    "one warm-up iteration, and the peak memory. --arch: the model (default the method's: ConvNet,\n"
    "the decoupled methods' teacher resnet18_modified). --param sets a method parameter (MTT without\n"
    "buffer_path: a random expert trajectory in a temporary folder; a decoupled method without\n"
    "teacher: a randomly initialised --arch teacher there; their iterations are recover iterations\n"
    "of the first batch). --torch also runs the official code (checkouts in --official:\n"
    "DatasetCondensation/, IDM/, BACON/, mtt-distillation/) in PyTorch on the CPU with the same\n"
    "settings, threads and data, and prints the ratio (for SRe2L's recover loop: --recover --torch).\n"
    "\n"
    "--recover measures SRe2L's recover iterations per second (roll, teacher forward in eval\n"
    "mode, CE + BN-statistics loss, backward to the images, Adam, clip) on a randomly\n"
    "initialised BatchNorm teacher (default resnet18_modified, SRe2L's CIFAR teacher; batch 100);\n"
    "with --torch next to\n"
    "scripts/bench_recover_torch.py (VILA-Lab/SRe2L's loop in PyTorch).\n"
    "\n"
    "--evaluate runs BEARD's evaluation stage from its evaluate_config.json, as beard\n"
    "evaluate does but writing nothing, on --limit test images (default: the config's\n"
    "n_examples; 0 = the whole test split), and prints each attack's time per mode and\n"
    "its projection to --project images (default 10000, BEARD's CIFAR-10 test set; the\n"
    "work per image is independent of the others, so time scales with the count). With\n"
    "--log (BEARD's {model}_{dataset}_{ipc}_evaluation_log.txt) it puts the times BEARD\n"
    "logged next to them, with the totals over the attacks both have. --load-file,\n"
    "--data, --attack, --semantics, --seed and --threads override the config; --quiet\n"
    "hides the progress bars.\n";

typedef struct {
    int label_count;
    const int *labels;
} CeCtx;

static double ce_loss(void *ctx, int i, const float *logits, float *dlogits) {
    const CeCtx *c = ctx;
    return crossentropy_sample(dlogits, logits, c->labels[i], c->label_count);
}

// runs fn until `seconds` have passed (after one warm-up call); returns seconds per call
typedef int (*BenchFn)(void *ctx);
static double time_calls(BenchFn fn, void *ctx, double seconds, int *calls) {
    if (fn(ctx)) return -1;
    int n = 0;
    double t0 = time_now(), t;
    do {
        if (fn(ctx)) return -1;
        n++;
        t = time_now() - t0;
    } while (t < seconds || n < 3);
    *calls = n;
    return t / n;
}

typedef struct {
    Net *net;
    float *x, *logits, *dx;
    int *labels;
    int B;
    Optim *opt;
} BenchCtx;

static int run_forward(void *p) {
    BenchCtx *c = p;
    return net_forward(c->net, c->x, c->B, c->logits, NULL);
}

static int run_fwd_bwd(void *p) {
    BenchCtx *c = p;
    CeCtx ce = {c->net->n_classes, c->labels};
    NetBackward nb = {.loss = ce_loss, .ctx = &ce, .nvec = 1, .logits = c->logits, .dx = c->dx};
    return net_forward_backward(c->net, c->x, c->B, &nb, NULL);
}

static int run_train_step(void *p) {
    BenchCtx *c = p;
    CeCtx ce = {c->net->n_classes, c->labels};
    NetBackward nb = {.loss = ce_loss, .ctx = &ce, .nvec = 1, .logits = c->logits, .param_grads = 1};
    net_zero_grads(c->net);
    if (net_forward_backward(c->net, c->x, c->B, &nb, NULL)) return -1;
    // the loss callback gives per-sample gradients; the mean reduction's 1/B goes here
    float inv = 1.0f / (float)c->B;
    for (size_t i = 0; i < c->net->n_params; i++) c->net->grads[i] *= inv;
    optim_step(c->opt, c->net->params, c->net->grads);
    return 0;
}

static double gemm_gflops(int n, int threads, double seconds) {
    float *A = xmalloc(sizeof(float) * (size_t)n * n), *Bm = xmalloc(sizeof(float) * (size_t)n * n),
          *C = xmalloc(sizeof(float) * (size_t)n * n);
    if (!A || !Bm || !C) {
        xfree(A), xfree(Bm), xfree(C);
        return -1;
    }
    Rng r;
    rng_init(&r, 1, 0);
    for (size_t i = 0; i < (size_t)n * n; i++) A[i] = rng_uniform(&r), Bm[i] = rng_uniform(&r);
    parallel_blas_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
    int calls = 0;
    double t0 = time_now(), t;
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
        calls++;
        t = time_now() - t0;
    } while (t < seconds || calls < 2);
    parallel_blas_threads(1);
    xfree(A), xfree(Bm), xfree(C);
    return 2.0 * n * n * (double)n * calls / t / 1e9;
}

// direct-convolution FLOPs of one image's pass: forward (conv and linear layers, 2 per
// multiply-add), backward to the input (the same again), SGD step (forward, input
// gradients of every layer but the first, weight gradients)
static void pass_flops(const Net *net, double out[3]) {
    double f = 0, first = 0;
    for (int l = 0; l < net->n_layers; l++) {
        const Layer *L = &net->layers[l];
        double v = 0;
        if (L->kind == LAYER_CONV) // a grouped convolution's output sees in_c / groups channels
            v = 2.0 * L->out_c * (L->in_c / (L->groups > 1 ? L->groups : 1)) * L->k * L->k * L->out_h * L->out_w;
        if (L->kind == LAYER_LINEAR) v = 2.0 * L->out_c * L->in_c;
        if (v && first == 0) first = v;
        f += v;
    }
    out[0] = f, out[1] = 2 * f, out[2] = 3 * f - first;
}

// runs the PyTorch side; fills fwd/fb/train (images/s); returns 0 on success
static int torch_bench(const char *python, const Net *net, int B, int threads, double seconds, double out[3]) {
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s scripts/bench_torch.py --arch %s --batch %d --threads %d --seconds %g --channels %d --size %d --classes %d",
             python, net->arch, B, threads, seconds, net->in_c, net->in_h, net->n_classes);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    int got = 0;
    while (fgets(line, sizeof(line), p)) {
        if (sscanf(line, "TORCH %lf %lf %lf", &out[0], &out[1], &out[2]) == 3) got = 1;
        else fputs(line, stderr);
    }
    int rc = pclose(p);
    return got && rc == 0 ? 0 : -1;
}

// the --json document built in memory, written atomically (nothing to do without --json)
static int bench_write_json(const char *C, const char *path, char *buf, size_t n) {
    Err e;
    int rc = path && file_write_all(path, buf, n, &e) ? cli_error(C, "%s", e.msg) : 0;
    free(buf);
    return rc;
}

// SRe2L's recover iterations per second on arch (random weights, CIFAR-10 shape)
static int bench_recover(const char *C, const char *arch, int B, double seconds, int torch, const char *python,
                         const char *json) {
    Err e;
    Net net;
    if (model_create(&net, arch, 3, 10, 32, 32, &e)) return cli_error(C, "%s", e.msg);
    net_init_params(&net, 0);
    net.train = 0;
    RecoverHook hooks[RECOVER_MAX_HOOKS];
    int nh;
    if (recover_hooks(&net, 0, hooks, &nh, &e)) {
        net_free(&net);
        return cli_error(C, "%s", e.msg);
    }
    size_t D = net_in_size(&net);
    RecoverWork *w = recover_work_new(&net, hooks, nh, B, &e);
    float *x = xmalloc(sizeof(float) * B * D), *grad = xmalloc(sizeof(float) * B * D);
    int *y = malloc(sizeof(int) * B);
    Optim adam;
    if (!w || !x || !grad || !y || recover_adam_init(&adam, (size_t)B * D, 0.25f)) {
        recover_work_free(w), xfree(x), xfree(grad), free(y), net_free(&net);
        return cli_error(C, "out of memory for a recover batch of %d", B);
    }
    Rng r;
    rng_init(&r, 0, 1);
    for (size_t i = 0; i < (size_t)B * D; i++) x[i] = (float)rng_normal(&r);
    for (int b = 0; b < B; b++) y[b] = b % 10;
    RecoverLoss lc = {.r_stat = 0.01f, .first_mult = 10.0f};
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2023f, 0.1994f, 0.2010f};
    int n = 0, rc = 0;
    double t0 = 0;
    for (int it = 0;; it++) {
        if (it == 1) t0 = time_now(); // the first iteration warms up
        RecoverDraw d = {0}; // SRe2L's roll by randint(0, 4) (sre2l.c)
        d.roll_dy = augment_randint(&r, 0, 4);
        d.roll_dx = augment_randint(&r, 0, 4);
        RecoverLosses L;
        if ((rc = recover_grad(w, x, y, B, NULL, 0, &d, &lc, grad, &L, &e))) break;
        recover_update(&adam, x, grad, (float)recover_cosine_lr(0.25, it % 1000, 1000), B, 3, 1024, mean, std);
        if (it >= 1) n++;
        if (it >= 1 && n >= 3 && time_now() - t0 >= seconds) break;
    }
    double ips = rc ? 0 : n / (time_now() - t0);
    optim_free(&adam);
    recover_work_free(w), xfree(x), xfree(grad), free(y);
    if (rc) {
        net_free(&net);
        return cli_error(C, "%s", e.msg);
    }
    printf("beard bench --recover: SRe2L on %s, batch %d, %d threads: %.3f iterations/s\n", net.arch, B,
           parallel_threads(), ips);
    double tips = 0;
    if (torch) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s scripts/bench_recover_torch.py --arch %s --batch %d --threads %d --seconds %g",
                 python, net.arch, B, parallel_threads(), seconds);
        FILE *p = popen(cmd, "r");
        char line[256];
        while (p && fgets(line, sizeof(line), p))
            if (sscanf(line, "TORCH_RECOVER %lf", &tips) != 1) fputs(line, stderr);
        if (!p || pclose(p) != 0 || !(tips > 0)) printf("PyTorch comparison unavailable (%s failed)\n", cmd);
        else printf("PyTorch (CPU, same threads and batch): %.3f iterations/s -> beard is %.2fx\n", tips, ips / tips);
    }
    if (json) {
        char buf[512];
        int len = snprintf(buf, sizeof(buf),
                           "{\"bench\": \"recover\", \"method\": \"SRe2L\", \"arch\": \"%s\", \"batch\": %d, "
                           "\"threads\": %d, \"iterations_per_second\": %.4f, \"torch_iterations_per_second\": %.4f}\n",
                           net.arch, B, parallel_threads(), ips, tips);
        if (file_write_all(json, buf, (size_t)len, &e)) {
            net_free(&net);
            return cli_error(C, "%s", e.msg);
        }
    }
    net_free(&net);
    return 0;
}

// ----------------------------------------------------------------------------
// --evaluate: BEARD's evaluation, timed and projected

typedef struct {
    const char *config, *log, *load, *data, *attacks, *sem, *json;
    long limit, seed, threads, project;
} EvalBenchOpts;

static int bench_evaluate(const EvalBenchOpts *o) {
    const char *C = "bench";
    CliEvalOverrides ov = {.load_file = o->load, .data_path = o->data, .semantics = o->sem, .attacks = o->attacks,
                           .n_examples = o->limit, .seed = o->seed, .threads = o->threads, .batch = -1};
    EvalConfig *cfg;
    if (cli_eval_config_read(C, o->config, &ov, &cfg)) return 1;
    Err e;
    BeardLogFile lf = {0};
    if (o->log && beardlog_read(&lf, o->log, &e)) {
        free(cfg);
        return cli_error(C, "%s", e.msg);
    }
    if (o->json && cli_check_output_file(C, "--json", o->json)) {
        beardlog_file_free(&lf);
        free(cfg);
        return 1;
    }
    parallel_set_threads(cfg->threads);
    CliTestSet ts;
    Net net;
    int status = 0;
    if (cli_load_testset(C, cfg->dataset, cfg->data_path, cfg->n_examples, &ts)) {
        beardlog_file_free(&lf);
        free(cfg);
        return 1;
    }
    if (cli_load_model(C, cfg->load_file, cfg->model, ts.info, &net)) {
        fprintf(stderr, "beard bench: (--load-file overrides the config's load_file)\n");
        cli_testset_free(&ts);
        beardlog_file_free(&lf);
        free(cfg);
        return 1;
    }
    int n = ts.ad.n;
    double scale = (double)o->project / n;
    printf("beard bench --evaluate: %s (%s) on %s, %d test images, %s semantics, %d threads, BLAS kernels %s\n",
           cfg->method, net.arch, ts.info->name, n, semantics_name(cfg->sem), parallel_threads(), parallel_blas_core());
    EvalReport rep;
    if (evaluate_run(cfg, &net, &ts.ad, NULL, NULL, NULL, &rep, &e)) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    char projected[32];
    snprintf(projected, sizeof(projected), "at %ld", o->project);
    printf("\n%-10s %-10s %9s %9s %12s %10s", "attack", "mode", "acc %", "seconds", "passes/img", projected);
    if (o->log) printf(" %10s %9s %8s", "BEARD log", "BEARD acc", "speed-up");
    printf("\n");
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "runs");
    double tot = 0, tot_both = 0, tot_log = 0, tot_other = 0;
    for (int a = 0; a < rep.n_entries; a++) {
        const EvalEntry *en = &rep.entries[a];
        const BeardLogLine *ll = o->log ? beardlog_find(&lf, en->spec->name) : NULL;
        double sum_here = 0;
        for (int m = 0; m < 2; m++) {
            const EvalMode *em = &en->mode[m];
            if (em->status == EVAL_NOT_REQUESTED || em->status == EVAL_SKIPPED) continue;
            const char *mname = m == 0 ? "targeted" : "untargeted";
            if (em->status == EVAL_FAILED) {
                printf("%-10s %-10s FAILED: %s\n", en->spec->name, mname, em->error);
                status = 1;
                continue;
            }
            double passes = em->status == EVAL_RAN && !en->spec->clean
                                ? em->res.forward_per_sample + em->res.backward_per_sample
                                : 1.0; // the clean pass (also what BEARD times for a mode that does not apply)
            double proj = em->seconds * scale;
            printf("%-10s %-10s %9.2f %9.2f %12.1f %10.1f", en->spec->name, mname, em->accuracy, em->seconds, passes, proj);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "attack", en->spec->name);
            cJSON_AddStringToObject(r, "mode", mname);
            cJSON_AddBoolToObject(r, "applies", em->status == EVAL_RAN);
            cJSON_AddNumberToObject(r, "accuracy", em->accuracy);
            cJSON_AddNumberToObject(r, "seconds", em->seconds);
            cJSON_AddNumberToObject(r, "passes_per_sample", passes);
            cJSON_AddNumberToObject(r, "projected_seconds", proj);
            if (ll) {
                printf(" %10.2f %9.2f %7.2fx", ll->seconds[m], ll->acc[m], proj > 0 ? ll->seconds[m] / proj : 0);
                cJSON_AddNumberToObject(r, "beard_log_seconds", ll->seconds[m]);
                cJSON_AddNumberToObject(r, "beard_log_accuracy", ll->acc[m]);
                tot_log += ll->seconds[m];
            } else if (o->log) {
                printf(" %10s", "(not in log)");
            }
            printf("\n");
            cJSON_AddItemToArray(arr, r);
            sum_here += proj;
        }
        tot += sum_here;
        if (ll) tot_both += sum_here;
        else tot_other += sum_here;
    }
    printf("\ntotal, projected to %ld images: %.1f s (%.2f h)\n", o->project, tot, tot / 3600);
    cJSON_AddNumberToObject(root, "n", n);
    cJSON_AddNumberToObject(root, "project_to", (double)o->project);
    cJSON_AddNumberToObject(root, "threads", parallel_threads());
    cJSON_AddStringToObject(root, "semantics", semantics_name(cfg->sem));
    cJSON_AddStringToObject(root, "blas_core", parallel_blas_core());
    cJSON_AddNumberToObject(root, "wall_seconds", rep.wall_seconds);
    cJSON_AddNumberToObject(root, "projected_seconds", tot);
    if (o->log) {
        printf("the attacks in BEARD's log: beard %.1f s projected, BEARD %.1f s logged: %.2fx\n", tot_both, tot_log,
               tot_both > 0 ? tot_log / tot_both : 0);
        if (tot_other > 0) printf("the attacks not in BEARD's log: beard %.1f s projected\n", tot_other);
        cJSON_AddNumberToObject(root, "projected_seconds_in_log", tot_both);
        cJSON_AddNumberToObject(root, "beard_log_seconds", tot_log);
    }
    if (o->json && cli_write_json(C, o->json, root)) status = 1;
    cJSON_Delete(root);
done:
    evaluate_report_free(&rep);
    net_free(&net);
    cli_testset_free(&ts);
    beardlog_file_free(&lf);
    free(cfg);
    return status;
}

int cmd_bench(int argc, char **argv) {
    const char *C = "bench", *arch = "ConvNet", *dataset = "cifar10", *json = NULL, *python = "/usr/bin/python3";
    long B = 256, threads = 0;
    double seconds = 3.0;
    int gemm = 0, torch = 0, recover = 0, set_batch = 0, set_arch = 0, with_peak = 0;
    EvalBenchOpts eo = {.limit = -1, .seed = -1, .threads = -1, .project = 10000};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--distill") || !strncmp(argv[i], "--distill=", 10)) return bench_distill(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--gemm")) gemm = 1;
        else if (cli_flag(argv, i, "--recover")) recover = 1;
        else if (cli_flag(argv, i, "--quiet")) cli_quiet();
        else if ((v = cli_opt(argc, argv, &i, "--evaluate", &missing))) eo.config = v;
        else if ((v = cli_opt(argc, argv, &i, "--log", &missing))) eo.log = v;
        else if ((v = cli_opt(argc, argv, &i, "--load-file", &missing))) eo.load = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) eo.data = v;
        else if ((v = cli_opt(argc, argv, &i, "--attack", &missing)) || (v = cli_opt(argc, argv, &i, "--attacks", &missing))) eo.attacks = v;
        else if ((v = cli_opt(argc, argv, &i, "--semantics", &missing))) eo.sem = v;
        else if ((v = cli_opt(argc, argv, &i, "--limit", &missing)) || (v = cli_opt(argc, argv, &i, "--n-examples", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &eo.limit)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--project", &missing))) {
            if (cli_parse_int(C, "--project", v, 1, 1L << 30, &eo.project)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &eo.seed)) return 2;
        }
        else if (cli_flag(argv, i, "--torch")) torch = 1;
        else if (cli_flag(argv, i, "--peak")) with_peak = 1;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v, set_arch = 1;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--json", &missing))) json = v;
        else if ((v = cli_opt(argc, argv, &i, "--python", &missing))) python = v;
        else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &B)) return 2;
            set_batch = 1;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seconds", &missing))) {
            if (cli_parse_num(C, "--seconds", v, &seconds) || seconds <= 0) return cli_usage_error(C, "--seconds must be > 0");
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard bench --help)", argv[i]);
    }
    if (eo.config) {
        if (gemm || torch) return cli_usage_error(C, "--evaluate does not combine with --gemm or --torch");
        eo.json = json;
        if (threads) eo.threads = threads;
        return bench_evaluate(&eo);
    }
    if (eo.log || eo.load || eo.data || eo.attacks || eo.sem || eo.limit >= 0 || eo.seed >= 0)
        return cli_usage_error(C, "--log, --load-file, --data, --attack, --semantics, --limit and --seed go with --evaluate");
    parallel_set_threads((int)threads);
    int nt = parallel_threads();
    // --json: checked now, built in memory, written atomically at the end
    if (cli_check_output_file(C, "--json", json)) return 1;
    if (recover)
        return bench_recover(C, set_arch ? arch : "resnet18_modified", set_batch ? (int)B : 100, seconds, torch, python, json);
    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *jf = NULL;
    if (json && !(jf = open_memstream(&jbuf, &jlen))) return cli_error(C, "out of memory");

    if (gemm) {
        printf("sgemm (OpenBLAS, kernels: %s), GFLOP/s:\n", parallel_blas_core());
        if (jf) fprintf(jf, "{\"blas_core\": \"%s\", \"threads\": %d, \"gemm\": [", parallel_blas_core(), nt);
        int sizes[] = {256, 512, 1024, 2048};
        for (int s = 0; s < 4; s++) {
            double g1 = gemm_gflops(sizes[s], 1, seconds / 4), gn = gemm_gflops(sizes[s], nt, seconds / 4);
            printf("  n=%-5d 1 thread %7.1f   %d threads %7.1f\n", sizes[s], g1, nt, gn);
            if (jf) fprintf(jf, "%s{\"n\": %d, \"gflops_1\": %.2f, \"gflops_n\": %.2f}", s ? ", " : "", sizes[s], g1, gn);
        }
        if (jf) fprintf(jf, "]}\n"), fclose(jf);
        return bench_write_json(C, json, jbuf, jlen);
    }

    const struct {
        const char *name;
        int c, h, w, k;
    } shapes[] = {{"cifar10", 3, 32, 32, 10}, {"cifar100", 3, 32, 32, 100}, {"mnist", 1, 28, 28, 10},
                  {"fashionmnist", 1, 28, 28, 10}, {"svhn", 3, 32, 32, 10}, {"tinyimagenet", 3, 64, 64, 200}};
    int si = -1;
    for (int s = 0; s < 6; s++)
        if (!strcasecmp(dataset, shapes[s].name)) si = s;
    if (si < 0) return cli_usage_error(C, "unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)", dataset);

    Err e;
    Net net;
    if (model_create(&net, arch, shapes[si].c, shapes[si].k, shapes[si].h, shapes[si].w, &e)) return cli_error(C, "%s", e.msg);
    net_init_params(&net, 0);
    int n = (int)B;
    size_t in = net_in_size(&net);
    BenchCtx c = {.net = &net, .B = n};
    c.x = xmalloc(sizeof(float) * in * n);
    c.dx = xmalloc(sizeof(float) * in * n);
    c.logits = xmalloc(sizeof(float) * (size_t)n * net.n_classes);
    c.labels = xmalloc(sizeof(int) * n);
    Optim opt;
    if (!c.x || !c.dx || !c.logits || !c.labels || net_alloc_grads(&net, &e) ||
        optim_init(&opt, OPTIM_SGD, net.n_params, 0.01f, 0.9f, 5e-4f))
        return cli_error(C, "out of memory for a batch of %d", n);
    c.opt = &opt;
    Rng r;
    rng_init(&r, 0, 0);
    for (size_t i = 0; i < in * n; i++) c.x[i] = rng_uniform(&r);
    for (int i = 0; i < n; i++) c.labels[i] = (int)rng_below(&r, (uint32_t)net.n_classes);

    printf("beard bench: %s on %s-shaped input, batch %d, %d threads, BLAS kernels %s\n", net.arch, shapes[si].name, n, nt,
           parallel_blas_core());
    int calls[3];
    double t_f = time_calls(run_forward, &c, seconds, &calls[0]);
    double t_fb = time_calls(run_fwd_bwd, &c, seconds, &calls[1]);
    net.train = 1;
    double t_tr = time_calls(run_train_step, &c, seconds, &calls[2]);
    net.train = 0;
    double ips[3] = {n / t_f, n / t_fb, n / t_tr}, fl[3], gf[3];
    pass_flops(&net, fl);
    const char *names[3] = {"forward", "forward+backward (to input)", "SGD train step"};
    for (int k = 0; k < 3; k++) {
        gf[k] = ips[k] * fl[k] / 1e9;
        printf("  %-28s %9.1f images/s  %7.1f GFLOP/s effective  (%d calls)\n", names[k], ips[k], gf[k], calls[k]);
    }
    printf("  (effective: the direct convolutions' FLOPs, %.1f / %.1f / %.1f MFLOP per image, over the time)\n",
           fl[0] / 1e6, fl[1] / 1e6, fl[2] / 1e6);
    double peak = 0;
    if (with_peak) {
        peak = gemm_gflops(1024, nt, seconds / 2);
        printf("sgemm, n=1024, %d threads: %.1f GFLOP/s; effective fraction of it: forward %.0f%%, forward+backward "
               "%.0f%%, train step %.0f%%\n",
               nt, peak, 100 * gf[0] / peak, 100 * gf[1] / peak, 100 * gf[2] / peak);
    }

    double tb[3] = {0, 0, 0};
    int have_torch = 0;
    if (torch) {
        if (torch_bench(python, &net, n, nt, seconds, tb) == 0) {
            have_torch = 1;
            printf("PyTorch (CPU, %d threads, batch %d):\n", nt, n);
            for (int k = 0; k < 3; k++) printf("  %-28s %9.1f images/s  -> beard is %.2fx\n", names[k], tb[k], ips[k] / tb[k]);
        } else {
            printf("PyTorch comparison unavailable (%s scripts/bench_torch.py failed, see its message above)\n", python);
        }
    }
    if (jf) {
        fprintf(jf,
                "{\"arch\": \"%s\", \"dataset\": \"%s\", \"batch\": %d, \"threads\": %d, \"blas_core\": \"%s\", "
                "\"forward_ips\": %.2f, \"forward_backward_ips\": %.2f, \"train_step_ips\": %.2f, "
                "\"effective_gflops\": {\"forward\": %.2f, \"forward_backward\": %.2f, \"train_step\": %.2f}",
                net.arch, shapes[si].name, n, nt, parallel_blas_core(), ips[0], ips[1], ips[2], gf[0], gf[1], gf[2]);
        if (with_peak) fprintf(jf, ", \"sgemm_gflops\": %.2f", peak);
        if (have_torch)
            fprintf(jf,
                    ", \"torch\": {\"forward_ips\": %.2f, \"forward_backward_ips\": %.2f, \"train_step_ips\": %.2f}, "
                    "\"ratio\": {\"forward\": %.3f, \"forward_backward\": %.3f, \"train_step\": %.3f}",
                    tb[0], tb[1], tb[2], ips[0] / tb[0], ips[1] / tb[1], ips[2] / tb[2]);
        fprintf(jf, "}\n");
        fclose(jf);
    }
    optim_free(&opt);
    xfree(c.x), xfree(c.dx), xfree(c.logits), xfree(c.labels);
    net_free(&net);
    return bench_write_json(C, json, jbuf, jlen);
}
