/*
 * cmd_relabel.c: `beard relabel`, FKD-style stored soft labels for a distilled image set
 * (src/train/fkd.h: G-VBSM's layout, DIR/epoch_{e}/batch_{b}.tar), from one or more teachers.
 * `beard train --fkd DIR` trains on them. (Online relabelling, as SRe2L's CIFAR code does it,
 * needs no files: `beard train --teacher T.pth`.)
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/parallel.h"
#include "../data/pool.h"
#include "../models/checkpoint.h"
#include "../train/fkd.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard relabel --data-file DIR --dataset cifar10 --teacher T.pth [--teacher T2.pth ...]\n"
    "                     --fkd-path OUT [options]\n"
    "\n"
    "Writes FKD soft labels in G-VBSM's layout (OUT/epoch_{e}/batch_{b}.tar: coords, flip,\n"
    "mix_index, mix_lam, mix_bbox, soft_label = the teachers' mean logits, index) for the\n"
    "images of DIR (an image folder or any set beard train reads). Train on them with\n"
    "`beard train --data-file DIR --fkd OUT` (recipe gvbsm-relabel by default).\n"
    "\n"
    "  --teacher-arch A   per teacher, in order (default --arch, default ResNet18)\n"
    "  --epochs N         epochs of labels (default 1000, G-VBSM's relabel.sh)\n"
    "  --batch N          batch size, which training must use too (default 100)\n"
    "  --mix cutmix|mixup|none (default cutmix)   --min-scale 0.08 (RandomResizedCrop)\n"
    "  --fp32             store float32 logits (default float16, --use-fp16)\n"
    "  --seed S (default 42, --fkd-seed)   --threads N   --quiet\n";

int cmd_relabel(int argc, char **argv) {
    const char *C = "relabel", *data_file = NULL, *dataset = NULL, *out = NULL, *arch = "ResNet18";
    const char *teachers[8], *tarch[8];
    int nt = 0, nta = 0, quiet = 0, fp16 = 1;
    long epochs = 1000, batch = 100, seed = 42, threads = 0;
    double min_scale = 0.08;
    RecipeMix mix = RECIPE_MIX_CUTMIX;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if (cli_flag(argv, i, "--fp32")) fp16 = 0;
        else if ((v = cli_opt(argc, argv, &i, "--data-file", &missing))) data_file = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) dataset = v;
        else if ((v = cli_opt(argc, argv, &i, "--fkd-path", &missing)) || (v = cli_opt(argc, argv, &i, "--out", &missing)))
            out = v;
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) arch = v;
        else if ((v = cli_opt(argc, argv, &i, "--teacher", &missing))) {
            if (nt >= 8) return cli_usage_error(C, "at most 8 teachers");
            teachers[nt++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--teacher-arch", &missing))) {
            if (nta >= 8) return cli_usage_error(C, "at most 8 teachers");
            tarch[nta++] = v;
        } else if ((v = cli_opt(argc, argv, &i, "--mix", &missing))) {
            if (!strcasecmp(v, "cutmix")) mix = RECIPE_MIX_CUTMIX;
            else if (!strcasecmp(v, "mixup")) mix = RECIPE_MIX_MIXUP;
            else if (!strcasecmp(v, "none")) mix = RECIPE_MIX_NONE;
            else return cli_usage_error(C, "--mix must be cutmix, mixup or none, not '%s'", v);
        } else if ((v = cli_opt(argc, argv, &i, "--epochs", &missing))) {
            if (cli_parse_int(C, "--epochs", v, 1, 1000000, &epochs)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &batch)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &seed)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--min-scale", &missing))) {
            if (cli_parse_num(C, "--min-scale", v, &min_scale) || !(min_scale > 0 && min_scale <= 1))
                return cli_usage_error(C, "--min-scale must lie in (0, 1]");
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard relabel --help)", argv[i]);
    }
    if (!data_file || !dataset || !out || nt == 0)
        return cli_usage_error(C, "--data-file, --dataset, --teacher and --fkd-path are required");
    const DatasetInfo *info = dataset_info(dataset);
    if (!info) return cli_usage_error(C, "unknown dataset '%s'", dataset);
    if (cli_check_output_dir(C, "--fkd-path", out)) return 1;
    parallel_set_threads((int)threads);
    Err e;
    Pool pool;
    PoolOptions po = {.info = info, .exp = -1};
    if (pool_load(&pool, data_file, &po, &e)) return cli_error(C, "%s", e.msg);
    Net nets[8];
    Net *tp[8];
    int loaded = 0, status = 1;
    for (int t = 0; t < nt; t++) {
        const char *ta = t < nta ? tarch[t] : arch;
        if (checkpoint_load(&nets[t], teachers[t], ta, info->c, info->n_classes, info->h, info->w, &e)) {
            cli_error(C, "teacher %s does not load as a %s for %s (%d classes, %dx%dx%d): %s", teachers[t], ta,
                      info->name, info->n_classes, info->c, info->h, info->w, e.msg);
            goto done;
        }
        nets[t].train = 0;
        tp[t] = &nets[t];
        loaded++;
    }
    printf("beard relabel: %d images of %s, %d teacher%s, %ld epochs of batches of %ld, %s\n", pool.n, info->name, nt,
           nt > 1 ? "s" : "", epochs, batch, mix == RECIPE_MIX_CUTMIX ? "CutMix" : mix == RECIPE_MIX_MIXUP ? "mixup" : "no mix");
    if (fkd_generate(out, &pool, tp, nt, (int)epochs, (int)batch, mix, mix == RECIPE_MIX_MIXUP ? 0.8f : 1.0f,
                     (float)min_scale, fp16, (uint64_t)seed, !quiet && !getenv("BEARD_NO_PROGRESS"), &e)) {
        cli_error(C, "%s", e.msg);
        goto done;
    }
    printf("wrote %s/epoch_0 .. epoch_%ld\n", out, epochs - 1);
    status = 0;
done:
    for (int t = 0; t < loaded; t++) net_free(&nets[t]);
    pool_free(&pool);
    return status;
}
