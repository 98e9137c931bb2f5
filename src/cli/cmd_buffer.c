/*
 * cmd_buffer.c: `beard buffer`, MTT's buffer.py: expert trajectories for trajectory
 * matching (src/distill/mtt_buffer.c), written where and as the official code writes them,
 * {out}/{dataset}[_NO_ZCA]/{model}/replay_buffer_{n}.pt, so that MTT's distill.py and
 * `beard distill --method MTT` read them.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../distill/mtt_buffer.h"
#include "../io/file.h"
#include "../models/convnet.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard buffer --dataset cifar10 [--data DIR] [--out DIR] [options]\n"
    "\n"
    "Trains MTT's expert trajectories (GeorgeCazenavette/mtt-distillation buffer.py): each\n"
    "expert a fresh network trained on the whole training set with SGD and DSA, its\n"
    "parameters kept before training and after every epoch. Written every --save-interval\n"
    "experts to OUT/<DATASET>[_NO_ZCA]/<ARCH>/replay_buffer_<n>.pt (the official layout: a\n"
    "list of trajectories, each a list of per-epoch lists of parameter tensors), with\n"
    "buffer_info.json beside them. The official option names (--num_experts, ...) work too.\n"
    "\n"
    "  --dataset NAME        cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet\n"
    "  --data DIR            the dataset (default ./data)\n"
    "  --out DIR             buffer_path (default ./buffers)\n"
    "  --arch NAME           model (default ConvNet)\n"
    "  --num-experts N       experts to train (default 100)\n"
    "  --train-epochs N      epochs per expert (default 50)\n"
    "  --lr-teacher LR       SGD learning rate (default 0.01)\n"
    "  --mom M               SGD momentum (default 0)\n"
    "  --l2 W                weight decay (default 0)\n"
    "  --batch-train N       batch size (default 256)\n"
    "  --dsa-strategy S      DSA ops (default color_crop_cutout_flip_scale_rotate)\n"
    "  --no-aug              no DSA (the official --dsa False)\n"
    "  --zca                 ZCA-whiten the data (kornia ZCAWhitening(eps=0.1)), as MTT does\n"
    "                        for CIFAR; without it CIFAR buffers go to <DATASET>_NO_ZCA\n"
    "  --save-interval N     experts per file (default 10; a remainder is saved too)\n"
    "  --limit N             use the first N training images (0 = all; default 0)\n"
    "  --test-limit N        test images for the per-expert accuracy (0 = all; default 0)\n"
    "  --seed S              expert x starts from seed + x (default 0)\n"
    "  --threads N           threads (default: all cores)\n"
    "  --quiet               no progress bar\n";

static const char *opt2(int argc, char **argv, int *i, const char *a, const char *b, int *missing) {
    const char *v = cli_opt(argc, argv, i, a, missing);
    if (v || *missing) return v;
    return cli_opt(argc, argv, i, b, missing);
}

int cmd_buffer(int argc, char **argv) {
    const char *C = "buffer", *dataset = NULL, *data = "data", *out = "buffers", *arch = "ConvNet";
    MttBufferConfig cfg;
    mtt_buffer_config_default(&cfg);
    int zca = 0, quiet = 0, threads = 0;
    long limit = 0, test_limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        long l;
        double d;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (cli_flag(argv, i, "--zca")) zca = 1;
        else if (cli_flag(argv, i, "--no-aug")) cfg.dsa = 0;
        else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = opt2(argc, argv, &i, "--data", "--data_path", &missing))) data = v;
        else if ((v = opt2(argc, argv, &i, "--out", "--buffer_path", &missing))) out = v;
        else if ((v = opt2(argc, argv, &i, "--arch", "--model", &missing))) arch = v;
        else if ((v = opt2(argc, argv, &i, "--num-experts", "--num_experts", &missing))) {
            if (cli_parse_int(C, "--num-experts", v, 1, 1000000, &l)) return 2;
            cfg.num_experts = (int)l;
        } else if ((v = opt2(argc, argv, &i, "--train-epochs", "--train_epochs", &missing))) {
            if (cli_parse_int(C, "--train-epochs", v, 1, 1000000, &l)) return 2;
            cfg.train_epochs = (int)l;
        } else if ((v = opt2(argc, argv, &i, "--lr-teacher", "--lr_teacher", &missing))) {
            if (cli_parse_num(C, "--lr-teacher", v, &d)) return 2;
            if (!(d > 0)) return cli_usage_error(C, "--lr-teacher must be positive");
            cfg.lr_teacher = d;
        } else if ((v = cli_opt(argc, argv, &i, "--mom", &missing))) {
            if (cli_parse_num(C, "--mom", v, &d)) return 2;
            if (!(d >= 0)) return cli_usage_error(C, "--mom must be >= 0");
            cfg.mom = d;
        } else if ((v = cli_opt(argc, argv, &i, "--l2", &missing))) {
            if (cli_parse_num(C, "--l2", v, &d)) return 2;
            if (!(d >= 0)) return cli_usage_error(C, "--l2 must be >= 0");
            cfg.l2 = d;
        } else if ((v = opt2(argc, argv, &i, "--batch-train", "--batch_train", &missing))) {
            if (cli_parse_int(C, "--batch-train", v, 1, 1 << 20, &l)) return 2;
            cfg.batch_train = (int)l;
        } else if ((v = opt2(argc, argv, &i, "--dsa-strategy", "--dsa_strategy", &missing))) {
            snprintf(cfg.dsa_strategy, sizeof(cfg.dsa_strategy), "%s", v);
        } else if ((v = opt2(argc, argv, &i, "--save-interval", "--save_interval", &missing))) {
            if (cli_parse_int(C, "--save-interval", v, 1, 1000000, &l)) return 2;
            cfg.save_interval = (int)l;
        } else if ((v = cli_opt(argc, argv, &i, "--limit", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 40, &limit)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--test-limit", &missing))) {
            if (cli_parse_int(C, "--test-limit", v, 0, 1L << 40, &test_limit)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 62, &l)) return 2;
            cfg.seed = (uint64_t)l;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &l)) return 2;
            threads = (int)l;
        } else if (missing) {
            return 2;
        } else {
            return cli_usage_error(C, "unknown option '%s' (see beard buffer --help)", argv[i]);
        }
    }
    if (!dataset) return cli_usage_error(C, "--dataset is required (e.g. --dataset cifar10)");
    const DatasetInfo *info = dataset_info(dataset);
    if (!info)
        return cli_usage_error(C, "unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)",
                               dataset);
    Err e;
    DsaStrategy st;
    if (cfg.dsa && dsa_strategy_parse(&st, cfg.dsa_strategy, &e)) return cli_usage_error(C, "%s", e.msg);
    Net probe;
    if (model_create(&probe, arch, info->c, info->n_classes, info->h, info->w, &e))
        return cli_usage_error(C, "%s", e.msg);
    net_free(&probe);
    parallel_set_threads(threads);
    cfg.progress = !quiet && !getenv("BEARD_NO_PROGRESS");
    cfg.log = stdout;

    char dir[1100];
    if (mtt_buffer_dir(dir, sizeof(dir), out, info, zca, arch, &e)) return cli_error(C, "%s", e.msg);
    Dataset tr, te;
    memset(&tr, 0, sizeof(tr)), memset(&te, 0, sizeof(te));
    int status = 1;
    MttData d;
    memset(&d, 0, sizeof(d));
    if (dataset_load(&tr, dataset, data, 1, limit, &e) || dataset_load(&te, dataset, data, 0, test_limit, &e)) {
        cli_error(C, "%s (use --data DIR; `beard download %s` fetches it)", e.msg, dataset);
        goto done;
    }
    if (tr.n < 2) {
        cli_error(C, "the %s training set in %s has %d images", dataset, data, tr.n);
        goto done;
    }
    if (file_check_dir_writable(dir, 1, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    if (!quiet) fprintf(stderr, "beard buffer: %d training images%s\n", tr.n, zca ? ", fitting ZCA" : "");
    if (mtt_data_prepare(&d, &tr, &te, info, zca, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    int written = 0;
    if (mtt_buffer_train(&cfg, arch, info, &d, dir, &written, &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    printf("%d experts of %s on %s%s: %d file%s in %s\n", cfg.num_experts, arch, info->name, zca ? " (ZCA)" : "",
           written, written == 1 ? "" : "s", dir);
    status = 0;
done:
    mtt_data_free(&d);
    dataset_free(&tr), dataset_free(&te);
    return status;
}
