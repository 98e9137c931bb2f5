/*
 * cmd_run.c: `beard run`, the benchmark as a whole: a grid (src/grid/grid.h) from a
 * JSON file and/or options, checked up front, run into the SQLite results store, in one
 * process, under `mpirun -np N` (rank 0 schedules and owns the store) or as one shard of
 * N (--shard i/N, each shard its own store; `beard store merge` joins them).
 *
 * Options override the file's keys; without --config the grid is the options alone.
 */
#include <cjson/cJSON.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../io/file.h"
#include "../core/parallel.h"
#include "../evaluate/beardlog.h"
#include "../grid/dist.h"
#include "../grid/grid.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard run --config GRID.json [options]\n"
    "       beard run --dataset cifar10 --model-pool DIR --method BACON,DM --attack FGSM,PGD [options]\n"
    "       mpirun -np N beard run --config GRID.json     (rank 0 schedules and owns the store)\n"
    "\n"
    "Runs the benchmark grid: datasets x methods x IPCs x architectures x runs x training attacks\n"
    "x attacks x modes x semantics, expanded into cells (distil a set, train a model, its clean\n"
    "pass, one attack in one mode and semantics). Everything is checked before the first cell runs:\n"
    "unknown keys and names, missing or unreadable checkpoints and pool files, bad distill settings,\n"
    "two cells writing one file are reported together, and nothing runs. Each finished cell is one\n"
    "row of the SQLite store (--store); rerunning the same command resumes: cells in the store are\n"
    "skipped (--force reruns them), a changed configuration makes new cells. The grid file's format\n"
    "is in src/grid/grid.h; configs/ has BEARD's grid (configs/beard_model_pool.json), a small one, and\n"
    "the three stages from the real images (configs/beard_distill.json).\n"
    "\n"
    "Stage 1 in the grid: a method {\"name\": \"DM\", \"distill\": {\"iterations\": 20000, \"lr_img\": 1}}\n"
    "(or --distill DM) distils its set per dataset and IPC as `beard distill` does with the same\n"
    "settings (keys: method, arch, ipc, iterations, seed, checkpoint_every (default 100) and the\n"
    "method's parameters, see beard distill --help) into OUT/dataset_pool/<METHOD>/, and its models\n"
    "train on it. A changed distill setting distils and trains again; a killed distillation resumes\n"
    "from its last checkpoint.\n"
    "\n"
    "grid (each overrides the file's key; lists are comma-separated):\n"
    "  --dataset LIST          datasets (cifar10, cifar100, tinyimagenet, ..., synthetic)\n"
    "  --method LIST           methods whose checkpoints are in --model-pool (BEARD's names)\n"
    "  --pool NAME=FILE        a method trained on a distilled set (repeatable)\n"
    "  --distill LIST          methods that distil their set first (beard distill's methods, with\n"
    "                          its defaults; added to the file's methods)\n"
    "  --iterations N          the iterations of every distilling method (the official Iteration;\n"
    "                          default: the file's, else 20000)\n"
    "  --ipc LIST  --arch LIST  --runs N  --train-attack LIST (None, PGD, TRADES, ...)\n"
    "  --attack LIST           evaluation attacks, with their --preset parameters\n"
    "  --targeted yes|no|both  (default both)    --semantics pixel|beard|both (default both)\n"
    "  --preset torchattacks|beard|fra31 (default beard)   --target-policy P (default beard)\n"
    "  --limit N               test images (0 = all; default 0)    --batch N (default 256)\n"
    "  --seed S (default 0)    --epochs N (training epochs; BEARD's default 1000)\n"
    "  --data DIR (default ./data)  --model-pool DIR  --dataset-pool DIR\n"
    "  --out DIR               BEARD's layout: trained models and regenerated evaluation logs\n"
    "                          under DIR/model_pool/<METHOD>/ (default ./beard-run)\n"
    "  --import-log FILE       BEARD *_evaluation_log.txt files to import as rows (repeatable; replaces\n"
    "                          the file's \"import_logs\")\n"
    "  --published CSV         published figures to import as reference rows\n"
    "running:\n"
    "  --store FILE            the results store (default: the grid's \"store\", else results.db;\n"
    "                          with --shard: FILE.shard-I-of-N)\n"
    "  --shard I/N             run shard I of N (whole models per shard); no MPI\n"
    "  --threads N             threads per process (default: all cores, divided among the MPI\n"
    "                          ranks of a machine)\n"
    "  --force  --dry-run (list the cells and their estimated cost, run nothing)  --quiet\n";

// "a,b,c" into ["a", "b", "c"]; a comma inside parentheses belongs to its item, so that
// attack specs such as "PGD(eps=4/255, steps=20)" stay whole
static cJSON *csv_array(const char *s) {
    cJSON *a = cJSON_CreateArray();
    char *t = xstrdup(s);
    int depth = 0;
    char *start = t;
    for (char *p = t;; p++) {
        if (*p == '(') depth++;
        else if (*p == ')' && depth) depth--;
        if (*p && (*p != ',' || depth)) continue;
        int end = !*p;
        *p = 0;
        while (*start == ' ') start++;
        if (*start) cJSON_AddItemToArray(a, cJSON_CreateString(start));
        if (end) break;
        start = p + 1;
    }
    xfree(t);
    return a;
}

static void set_key(cJSON *root, const char *key, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(root, key)) cJSON_ReplaceItemInObjectCaseSensitive(root, key, v);
    else cJSON_AddItemToObject(root, key, v);
}

static cJSON *get_array(cJSON *root, const char *key) {
    cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(a)) return a;
    a = cJSON_CreateArray();
    set_key(root, key, a);
    return a;
}

static int print_issues(const char *C, const GridIssues *iss, int rank) {
    if (rank == 0) {
        for (int i = 0; i < iss->n; i++) fprintf(stderr, "beard %s: %s\n", C, iss->msg[i]);
        fprintf(stderr, "beard %s: %d problem%s found; nothing was run\n", C, iss->n, iss->n == 1 ? "" : "s");
    }
    return 1;
}

int cmd_run(int argc, char **argv) {
    const char *C = "run", *config = NULL, *store_opt = NULL, *shard_s = NULL;
    int force = 0, dry = 0, quiet = 0, logs_replaced = 0;
    long threads = -1, iterations = -1;
    Err e;
    for (int i = 1; i < argc; i++)
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    // the grid file first, then the options on top of it
    GridIssues iss;
    grid_issues_init(&iss);
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v = cli_opt(argc, argv, &i, "--config", &missing);
        if (v) config = v;
        else if (missing) return 2;
    }
    cJSON *root = config ? grid_file_json(config, &iss) : cJSON_CreateObject();
    if (!root) {
        int rc = print_issues(C, &iss, 0);
        grid_issues_free(&iss);
        return rc;
    }
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        long l;
        if (cli_flag(argv, i, "--force")) force = 1;
        else if (cli_flag(argv, i, "--dry-run")) dry = 1;
        else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if ((v = cli_opt(argc, argv, &i, "--config", &missing))) continue;
        else if ((v = cli_opt(argc, argv, &i, "--store", &missing))) store_opt = v;
        else if ((v = cli_opt(argc, argv, &i, "--shard", &missing))) shard_s = v;
        else if ((v = cli_opt(argc, argv, &i, "--dataset", &missing))) set_key(root, "datasets", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--method", &missing))) set_key(root, "methods", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--pool", &missing))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                cJSON_Delete(root);
                return cli_usage_error(C, "--pool expects NAME=FILE, not '%s'", v);
            }
            cJSON *m = cJSON_CreateObject();
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            cJSON_AddStringToObject(m, "name", name);
            cJSON_AddStringToObject(m, "pool", eq + 1);
            cJSON_AddItemToArray(get_array(root, "methods"), m);
        } else if ((v = cli_opt(argc, argv, &i, "--distill", &missing))) {
            cJSON *items = csv_array(v), *it;
            cJSON_ArrayForEach(it, items) {
                cJSON *m = cJSON_CreateObject();
                cJSON_AddStringToObject(m, "name", it->valuestring);
                cJSON_AddItemToObject(m, "distill", cJSON_CreateObject());
                cJSON_AddItemToArray(get_array(root, "methods"), m);
            }
            cJSON_Delete(items);
        } else if ((v = cli_opt(argc, argv, &i, "--iterations", &missing))) {
            if (cli_parse_int(C, "--iterations", v, 0, 100000000, &iterations)) goto usage;
        } else if ((v = cli_opt(argc, argv, &i, "--ipc", &missing))) set_key(root, "ipcs", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--arch", &missing))) set_key(root, "archs", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--train-attack", &missing))) set_key(root, "train_attacks", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--attack", &missing)) || (v = cli_opt(argc, argv, &i, "--attacks", &missing)))
            set_key(root, "attacks", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--targeted", &missing))) set_key(root, "modes", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--semantics", &missing))) set_key(root, "semantics", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--preset", &missing))) set_key(root, "preset", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--target-policy", &missing))) set_key(root, "target_policy", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) set_key(root, "data", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--model-pool", &missing))) set_key(root, "model_pool", csv_array(v));
        else if ((v = cli_opt(argc, argv, &i, "--dataset-pool", &missing))) set_key(root, "dataset_pool", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--out", &missing))) set_key(root, "out", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--published", &missing))) set_key(root, "published", cJSON_CreateString(v));
        else if ((v = cli_opt(argc, argv, &i, "--import-log", &missing))) {
            // the first --import-log replaces the file's list, later ones add to it
            if (!logs_replaced) set_key(root, "import_logs", cJSON_CreateArray()), logs_replaced = 1;
            cJSON *a = get_array(root, "import_logs"), *items = csv_array(v), *it;
            cJSON_ArrayForEach(it, items) cJSON_AddItemToArray(a, cJSON_CreateString(it->valuestring));
            cJSON_Delete(items);
        } else if ((v = cli_opt(argc, argv, &i, "--limit", &missing)) || (v = cli_opt(argc, argv, &i, "--n-examples", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &l)) goto usage;
            set_key(root, "limit", cJSON_CreateNumber((double)l));
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &l)) goto usage;
            set_key(root, "batch", cJSON_CreateNumber((double)l));
        } else if ((v = cli_opt(argc, argv, &i, "--runs", &missing))) {
            if (cli_parse_int(C, "--runs", v, 1, 1000, &l)) goto usage;
            set_key(root, "runs", cJSON_CreateNumber((double)l));
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &l)) goto usage;
            set_key(root, "seed", cJSON_CreateNumber((double)l));
        } else if ((v = cli_opt(argc, argv, &i, "--epochs", &missing))) {
            if (cli_parse_int(C, "--epochs", v, 0, 10000000, &l)) goto usage;
            cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "train");
            if (!cJSON_IsObject(tr)) {
                tr = cJSON_CreateObject();
                set_key(root, "train", tr);
            }
            set_key(tr, "epochs", cJSON_CreateNumber((double)l));
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) goto usage;
        } else if (missing) goto usage;
        else {
            cli_usage_error(C, "unknown option '%s' (see beard run --help)", argv[i]);
            goto usage;
        }
    }
    if (!config && argc <= 1) {
        cJSON_Delete(root);
        return cli_usage_error(C, "give --config GRID.json or the grid as options (see beard run --help)");
    }
    if (iterations >= 0) { // every distilling method's, the file's included
        int n = 0;
        cJSON *m, *methods = cJSON_GetObjectItemCaseSensitive(root, "methods");
        if (!cJSON_IsArray(methods)) methods = NULL;
        cJSON_ArrayForEach(m, methods) {
            cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "distill");
            if (!cJSON_IsObject(d)) continue;
            cJSON_DeleteItemFromObjectCaseSensitive(d, "Iteration");
            set_key(d, "iterations", cJSON_CreateNumber((double)iterations));
            n++;
        }
        if (!n) {
            cJSON_Delete(root);
            grid_issues_free(&iss);
            return cli_usage_error(C, "--iterations: no method of the grid distils (give --distill or a \"distill\" method)");
        }
    }
    GridRunOptions o = {.force = force, .dry_run = dry, .quiet = quiet, .n_shards = 1};
    if (shard_s) {
        char *end;
        long a = strtol(shard_s, &end, 10), b = *end == '/' ? strtol(end + 1, &end, 10) : -1;
        if (*end || b < 1 || a < 0 || a >= b) {
            cJSON_Delete(root);
            return cli_usage_error(C, "--shard expects I/N with 0 <= I < N, not '%s'", shard_s);
        }
        o.shard = (int)a, o.n_shards = (int)b;
    }

    // MPI (not for shards: a Slurm array of shards may well run under a PMI launcher)
    if (!shard_s && !dry && dist_init(NULL, NULL, &e)) {
        cJSON_Delete(root);
        return cli_error(C, "%s", e.msg);
    }
    int rank = dist_rank();
    if (rank) {
        o.quiet = 1;
        setenv("BEARD_NO_PROGRESS", "1", 1); // one progress display: rank 0's
    }
    if (quiet) setenv("BEARD_NO_PROGRESS", "1", 1);

    Grid *g = calloc(1, sizeof(Grid));
    GridPlan plan;
    memset(&plan, 0, sizeof(plan));
    Store *s = NULL;
    int status = 1;
    if (!g) {
        cli_error(C, "out of memory");
        goto done;
    }
    // every problem at once: the plan's checks (files, names, collisions) run on what
    // could be read even when the grid file itself had problems
    grid_from_json(g, root, config ? config : "(command line)", &iss);
    if (threads >= 0) g->threads = (int)threads;
    int nt = g->threads;
    if (nt <= 0 && dist_active() && dist_local_size() > 1) {
        parallel_set_threads(0);
        nt = parallel_threads() / dist_local_size();
        if (nt < 1) nt = 1;
    }
    parallel_set_threads(nt);
    if (grid_plan(&plan, g, &iss) || iss.n) {
        status = print_issues(C, &iss, rank);
        goto done;
    }
    char store_path_buf[GRID_PATH + 64];
    snprintf(store_path_buf, sizeof(store_path_buf), "%s", store_opt ? store_opt : g->store);
    if (shard_s) // each shard its own store: `beard store merge` joins them
        snprintf(store_path_buf + strlen(store_path_buf), sizeof(store_path_buf) - strlen(store_path_buf), ".shard-%d-of-%d",
                 o.shard, o.n_shards);

    if (dry) {
        if (store_open(&s, store_path_buf, 0, &e)) s = NULL;
        grid_print_plan(&plan, s, &o, stdout);
        status = 0;
        goto done;
    }
    char store_dir[sizeof(store_path_buf)];
    snprintf(store_dir, sizeof(store_dir), "%s", store_path_buf);
    if (rank == 0 && (file_mkdirs(dirname(store_dir), &e) || store_open(&s, store_path_buf, 1, &e))) {
        cli_error(C, "%s", e.msg);
        dist_abort(1);
        goto done;
    }
    if (rank == 0 && !o.quiet)
        printf("beard run: %s: %d cells (%d models, %d datasets), store %s, %d process%s x %d threads%s\n", g->name,
               plan.n_cells, plan.n_models, g->n_datasets, store_path_buf, dist_size(), dist_size() > 1 ? "es" : "",
               parallel_threads(), shard_s ? ", one shard" : "");
    GridRunStats st;
    int rc = dist_active() ? grid_run_mpi(&plan, s, &o, &st, &e) : grid_run_local(&plan, s, &o, &st, &e);
    if (rank != 0) {
        status = rc ? cli_error(C, "rank %d: %s", rank, e.msg) : 0;
        goto done;
    }
    status = rc ? cli_error(C, "%s", e.msg) : 0;
    int logs = 0;
    Err le;
    if (grid_write_beard_logs(&plan, s, &logs, &le)) status = cli_error(C, "writing BEARD's logs: %s", le.msg);
    if (!quiet)
        printf("beard run: %d cells: %d ran, %d already in the store, %d failed, %d blocked by a failed training or distillation; "
               "%d new rows from BEARD logs; %d BEARD logs written under %s/model_pool (%.1fs)\n",
               st.cells, st.ran, st.done_before, st.failed, st.blocked, st.imported, logs, g->out, st.seconds);
done:
    store_close(s);
    grid_plan_free(&plan);
    free(g);
    grid_issues_free(&iss);
    cJSON_Delete(root);
    dist_finalize();
    return status;
usage:
    cJSON_Delete(root);
    grid_issues_free(&iss);
    return 2;
}
