/*
 * cli_data.c: loading a test set and a checkpoint for the subcommands, with the error
 * messages a user needs (what was looked for, and where).
 */
#include <stdlib.h>
#include <string.h>

#include "../models/checkpoint.h"
#include "cli.h"

int cli_load_testset(const char *cmd, const char *dataset, const char *dir, long limit, CliTestSet *ts) {
    return cli_load_split(cmd, dataset, dir, 0, limit, ts);
}

int cli_load_split(const char *cmd, const char *dataset, const char *dir, int train, long limit, CliTestSet *ts) {
    memset(ts, 0, sizeof(*ts));
    ts->info = dataset_info(dataset);
    if (!ts->info)
        return cli_usage_error(cmd, "unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet)",
                               dataset);
    Err e;
    if (dataset_load(&ts->ds, dataset, dir ? dir : "data", train, limit, &e)) {
        dataset_free(&ts->ds);
        // the hint only where it helps: the loaders say "no <files> in <dir>" when the
        // dataset is not there, and something else when it is there but unreadable
        if (strncmp(e.msg, "no ", 3)) return cli_error(cmd, "%s", e.msg);
        return cli_error(cmd, "%s (use --data DIR; `beard download %s --data %s` fetches it)", e.msg, dataset,
                         dir ? dir : "data");
    }
    if (ts->ds.n == 0) {
        dataset_free(&ts->ds);
        return cli_error(cmd, "the %s %s set in %s is empty", dataset, train ? "training" : "test", dir ? dir : "data");
    }
    size_t D = (size_t)ts->ds.c * ts->ds.h * ts->ds.w;
    ts->x = xmalloc(sizeof(float) * D * ts->ds.n);
    if (!ts->x) {
        dataset_free(&ts->ds);
        return cli_error(cmd, "out of memory for %d images", ts->ds.n);
    }
    dataset_to_float(&ts->ds, 0, ts->ds.n, ts->x, 0);
    ts->ad = (AttackData){.x = ts->x, .y = ts->ds.labels, .n = ts->ds.n, .C = ts->ds.c, .H = ts->ds.h, .W = ts->ds.w,
                          .mean = ts->info->mean, .std = ts->info->std};
    return 0;
}

void cli_testset_free(CliTestSet *ts) {
    xfree(ts->x);
    dataset_free(&ts->ds);
    memset(ts, 0, sizeof(*ts));
}

int cli_load_model(const char *cmd, const char *path, const char *arch, const DatasetInfo *info, Net *net) {
    Err e;
    if (checkpoint_load(net, path, arch, info->c, info->n_classes, info->h, info->w, &e))
        return cli_error(cmd, "%s", e.msg);
    return 0;
}
