/*
 * cmd_leaderboard.c: `beard leaderboard`, BEARD's leaderboards and figures from the
 * results store of `beard run` (src/leaderboard/leaderboard.h, site.c).
 */
#include <stdlib.h>
#include <string.h>

#include "../core/parallel.h"
#include "../leaderboard/figures.h"
#include "../leaderboard/leaderboard.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard leaderboard --store results.db --out DIR [--published CSV] [--png] [--alpha 0.5]\n"
    "                         [--metrics-type beard|rome] [--bootstrap 1000] [--seed 0] [--threads N]\n"
    "\n"
    "BEARD's leaderboards from the store: per dataset the unified board (all IPCs pooled: RRM,\n"
    "AEM, CREI as BEARD combines them) and one board per IPC; a row per method, architecture and\n"
    "training (adversarially trained models next to the plain ones), ranked by CREI (beard\n"
    "semantics, untargeted, as BEARD ranks), with beard and pixel semantics, targeted and untargeted\n"
    "side by side, clean accuracy, robust accuracy per attack, bootstrap 95% intervals (one seed)\n"
    "or +- the std over seeds, AE from passes per sample next to the time-based AE. Rows of method\n"
    "Full (or trained on the whole training set) are the full-size reference; rows imported from\n"
    "BEARD's logs and published figures (--published, or `beard store import`) are shown as\n"
    "reference rows, not ranked. The newest row per cell key is used.\n"
    "Writes DIR/index.html (a static site that works offline: sortable, filterable tables),\n"
    "DIR/fig/*.svg (Figures 4, 5, 6 of BEARD and robust accuracy against eps; --png adds PNGs),\n"
    "DIR/leaderboard.md, .csv and .json. Defaults: --out leaderboard, --alpha 0.5,\n"
    "--metrics-type beard, --bootstrap 1000 (0: no intervals), --seed 0.\n";

int cmd_leaderboard(int argc, char **argv) {
    const char *C = "leaderboard", *store = NULL, *out = "leaderboard", *published = NULL, *type_s = "beard";
    double alpha = 0.5;
    long boot = 1000, seed = 0, threads = 0;
    int png = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--png")) png = 1;
        else if ((v = cli_opt(argc, argv, &i, "--store", &missing))) store = v;
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) out = v;
        else if ((v = cli_opt(argc, argv, &i, "--published", &missing))) published = v;
        else if ((v = cli_opt(argc, argv, &i, "--metrics-type", &missing))) type_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--alpha", &missing))) {
            if (cli_parse_num(C, "--alpha", v, &alpha)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--bootstrap", &missing))) {
            if (cli_parse_int(C, "--bootstrap", v, 0, 1000000, &boot)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 0x7fffffffffffffffL, &seed)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unexpected argument '%s' (see beard leaderboard --help)", argv[i]);
    }
    if (!store) return cli_usage_error(C, "--store FILE is required (the store of beard run)");
    MetricsOptions opt;
    metrics_options_default(&opt);
    if (metrics_type_parse(type_s, &opt.type)) return cli_usage_error(C, "--metrics-type must be beard or rome, not '%s'", type_s);
    if (!(alpha >= 0 && alpha <= 1)) return cli_usage_error(C, "--alpha must be in [0, 1], not %g", alpha);
    opt.alpha = alpha;
    opt.bootstrap = (int)boot;
    opt.seed = (uint64_t)seed;
    parallel_set_threads((int)threads);
    Err e;
    Store *s;
    if (store_open(&s, store, 0, &e)) return cli_error(C, "%s", e.msg);
    int status = 0, n = 0, n_pub = 0, n_figs = 0;
    StoreRow *rows = NULL;
    PublishedRow *pub = NULL;
    if (published) {
        int k;
        // into a copy of the rows only: the store stays as it is
        if (store_load_published(s, &pub, &n_pub, &e)) status = cli_error(C, "%s", e.msg);
        else {
            free(pub), pub = NULL;
            Store *tmp;
            // a temporary in-memory store reads the CSV with the same parser
            if (store_open(&tmp, ":memory:", 1, &e) || store_import_published_csv(tmp, published, &k, &e) ||
                store_load_published(tmp, &pub, &n_pub, &e))
                status = cli_error(C, "%s", e.msg);
            store_close(tmp);
        }
        if (!status) {
            PublishedRow *more;
            int n_more;
            if (store_load_published(s, &more, &n_more, &e)) status = cli_error(C, "%s", e.msg);
            else if (n_more) {
                PublishedRow *all = realloc(pub, sizeof(PublishedRow) * (n_pub + n_more));
                if (!all) status = cli_error(C, "out of memory");
                else memcpy(all + n_pub, more, sizeof(PublishedRow) * n_more), pub = all, n_pub += n_more;
                free(more);
            } else free(more);
        }
    } else if (store_load_published(s, &pub, &n_pub, &e)) status = cli_error(C, "%s", e.msg);
    if (!status && store_load_latest(s, &rows, &n, &e)) status = cli_error(C, "%s", e.msg);
    store_close(s);
    Leaderboard lb;
    if (!status) {
        if (leaderboard_build(&lb, rows, n, pub, n_pub, &opt, &e)) status = cli_error(C, "%s", e.msg);
        else {
            snprintf(lb.store, sizeof(lb.store), "%s", store);
            if (leaderboard_write(&lb, out, png, &n_figs, &e)) status = cli_error(C, "%s", e.msg);
            else {
                int entries = 0;
                for (int b = 0; b < lb.n_boards; b++) entries += lb.boards[b].n_entries;
                printf("beard leaderboard: %d boards (%d rows), %d figures from %d store rows and %d published rows: "
                       "%s/index.html, leaderboard.md, .csv, .json\n",
                       lb.n_boards, entries, n_figs, n, n_pub, out);
            }
            leaderboard_free(&lb);
        }
    }
    store_rows_free(rows, n);
    free(pub);
    fig_shutdown();
    return status;
}
