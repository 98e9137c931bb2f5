/*
 * cmd_evaluate.c: `beard evaluate --config evaluate_config.json`, BEARD's evaluation
 * stage (Code/evaluate_model.py) from BEARD's own config file: the same log lines, plus
 * results.json and optionally a per-sample CSV. The stage itself is src/evaluate/evaluate.c;
 * the config keys are documented in src/evaluate/eval_config.h.
 */
#include <math.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "../evaluate/blackbox.h"
#include "../evaluate/evaluate.h"
#include "../core/parallel.h"
#include "../io/file.h"
#include "cli.h"

static const char *usage_text =
    "usage: beard evaluate --config evaluate_config.json [--load-file FILE] [--data DIR]\n"
    "                      [--out DIR] [--limit N] [--attack Clean,FGSM,...]\n"
    "                      [--semantics beard|pixel] [--seed S] [--threads N] [--batch B]\n"
    "                      [--csv] [--no-per-sample] [--json FILE] [--force] [--quiet]\n"
    "\n"
    "Runs BEARD's evaluation stage from BEARD's evaluate_config.json: each attack of\n"
    "test_attack in each mode of target_attack, on the checkpoint load_file, over the test\n"
    "split of dataset in data_path. Writes, in save_path (--out):\n"
    "  {method}_{model}_{dataset}_{ipc}_evaluation_log.txt   BEARD's log lines, exactly as\n"
    "                                          BEARD writes them (its toolkit reads them)\n"
    "  {method}_{model}_{dataset}_{ipc}_results.json         every figure, per attack and\n"
    "                                          mode, with per-sample data, config, seed, machine\n"
    "  {method}_{model}_{dataset}_{ipc}_per_sample.csv       with --csv (\"per_sample_csv\": true)\n"
    "(the names of BEARD's released logs: two methods in one save_path never share a file).\n"
    "Each file appears under its name only once complete. An earlier run's files are not\n"
    "replaced without --force (a rerun replaces all of them; BEARD's logging appended to\n"
    "the log, which then mixed two runs).\n"
    "Defaults reproduce BEARD: semantics beard (attacks on normalised tensors; the default\n"
    "here because the input is BEARD's own config and its published numbers use it;\n"
    "--semantics pixel gives the standard threat model), BEARD's attack parameters and\n"
    "targets (y+1) mod 10. beard's own config keys: semantics, target_policy, preset,\n"
    "n_examples (0: the whole test split; --limit), seed, threads (0: all cores), batch,\n"
    "attack_params ({\"PGD\": {\"steps\": 20}}), per_sample, per_sample_csv, results_json\n"
    "(--json). Unknown keys are warned about; an unknown attack name is an error. method,\n"
    "model, dataset and ipc become file names: letters, digits and ._-+=,@ only. Paths in\n"
    "the config are relative to the current directory, as in BEARD; the options above\n"
    "override the config. Targeted DeepFool and AA do not exist: null in results.json, and\n"
    "the clean figures in the log line, as BEARD writes them. Old spellings: --save-path,\n"
    "--n-examples, --attacks, --results.\n"
    "\n"
    "BEARD's black-box evaluation (its evaluate_config_blackbox.json): when the config has\n"
    "load_file_model_<NAME> keys, the examples are crafted on a surrogate and scored on\n"
    "every listed model too, and each log line ends with BEARD's eval_accuracies\n"
    "dictionaries. \"surrogates\": \"all\" (default) crafts on each listed model in turn and\n"
    "writes <NAME>/{model}_{dataset}_{ipc}_evaluation_log.txt per surrogate (the layout\n"
    "BEARD's metrics/black_box/convert_to_white_box.py reads); \"load_file\" crafts on\n"
    "load_file only, as BEARD's script, into {method}_{model}_{dataset}_{ipc}_evaluation_log.txt.\n"
    "Also written: {method}_{model}_{dataset}_{ipc}_blackbox_results.json and the transfer\n"
    "matrix (surrogate x model, robust accuracy), _transfer_matrix.md and .csv.\n";

// sets key in the config object, replacing what is there
static void set_item(cJSON *root, const char *key, cJSON *v) {
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    cJSON_AddItemToObject(root, key, v);
}

int cli_eval_config_read(const char *C, const char *config, const CliEvalOverrides *ov, EvalConfig **out) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    Err e;
    if (file_read_all(config, 1 << 24, &buf, &len, &e)) return cli_error(C, "%s", e.msg);
    if (len == 0) {
        free(buf);
        return cli_error(C, "%s is empty (BEARD's evaluate_config.json is a JSON object)", config);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf, len, &end, 0);
    if (!root) {
        int line = 1;
        for (const char *p = (const char *)buf; end && p < end; p++) line += *p == '\n';
        free(buf);
        return cli_error(C, "%s: invalid JSON near line %d", config, line);
    }
    free(buf);
    if (cJSON_IsObject(root)) {
        if (ov->load_file) set_item(root, "load_file", cJSON_CreateString(ov->load_file));
        if (ov->data_path) set_item(root, "data_path", cJSON_CreateString(ov->data_path));
        if (ov->save_path) set_item(root, "save_path", cJSON_CreateString(ov->save_path));
        if (ov->semantics) set_item(root, "semantics", cJSON_CreateString(ov->semantics));
        if (ov->results_json) set_item(root, "results_json", cJSON_CreateString(ov->results_json));
        if (ov->n_examples >= 0) set_item(root, "n_examples", cJSON_CreateNumber((double)ov->n_examples));
        if (ov->seed >= 0) set_item(root, "seed", cJSON_CreateNumber((double)ov->seed));
        if (ov->threads >= 0) set_item(root, "threads", cJSON_CreateNumber((double)ov->threads));
        if (ov->batch >= 0) set_item(root, "batch", cJSON_CreateNumber((double)ov->batch));
        if (ov->per_sample_csv) set_item(root, "per_sample_csv", cJSON_CreateTrue());
        if (ov->no_per_sample) set_item(root, "per_sample", cJSON_CreateFalse());
        if (ov->attacks) {
            cJSON *a = cJSON_CreateArray();
            char *list = xstrdup(ov->attacks);
            for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                while (*tok == ' ') tok++;
                if (*tok) cJSON_AddItemToArray(a, cJSON_CreateString(tok));
            }
            xfree(list);
            set_item(root, "test_attack", a);
        }
    }
    EvalConfig *cfg = malloc(sizeof(EvalConfig));
    if (!cfg) {
        cJSON_Delete(root);
        return cli_error(C, "out of memory");
    }
    int rc = eval_config_from_json(cfg, root, &e);
    cJSON_Delete(root);
    if (rc) {
        free(cfg);
        return cli_error(C, "%s: %s", config, e.msg);
    }
    for (int i = 0; i < cfg->n_warnings; i++) fprintf(stderr, "beard %s: warning: %s\n", C, cfg->warnings[i]);
    *out = cfg;
    return 0;
}

typedef struct {
    const EvalConfig *cfg;
} PrintCtx;

static void on_progress(void *ctx, const EvalReport *rep, int entry, int mode) {
    const PrintCtx *p = ctx;
    if (entry < 0) {
        printf("  %-10s %-10s  accuracy %6.2f%%                       %8.2fs\n", "Clean", "", rep->clean_accuracy,
               rep->clean_seconds[p->cfg->targets[0] ? 0 : 1]);
        fflush(stdout);
        return;
    }
    const EvalEntry *en = &rep->entries[entry];
    if (en->spec->clean) return;
    if (mode < 0) {
        printf("  %-10s skipped: not in this build of beard\n", en->spec->name);
        fflush(stdout);
        return;
    }
    const EvalMode *em = &en->mode[mode];
    const char *mname = mode == 0 ? "targeted" : "untargeted";
    if (em->status == EVAL_FAILED)
        printf("  %-10s %-10s  FAILED: %s\n", en->spec->name, mname, em->error);
    else if (em->status == EVAL_NOT_APPLICABLE)
        printf("  %-10s %-10s  n/a (no %s mode; the log line carries the clean figures)\n", en->spec->name, mname,
               mname);
    else
        printf("  %-10s %-10s  accuracy %6.2f%%  ASR %6.2f%%  %8.2fs  %7.1f passes/sample\n", en->spec->name, mname,
               em->accuracy, em->res.asr, em->seconds, em->res.forward_per_sample + em->res.backward_per_sample);
    fflush(stdout);
}

// one line per finished attack and mode of a black-box run
static void print_bb(const EvalConfig *cfg, const BbRun *r) {
    printf("  surrogate %s: clean %.2f%%;", r->surrogate, r->clean_acc);
    for (int k = 0; k < cfg->n_models; k++) printf(" %s %.2f", cfg->model_names[k], 100 * r->model_clean[k]);
    printf("\n");
    for (int i = 0; i < r->n_entries; i++) {
        if (r->spec[i]->clean) continue;
        for (int m = 0; m < 2; m++) {
            const BbEntry *en = &r->entries[i];
            if (en->status[m] == EVAL_NOT_REQUESTED) continue;
            printf("    %-10s %-10s ", r->spec[i]->name, m ? "untargeted" : "targeted");
            if (en->status[m] == EVAL_SKIPPED) printf("skipped: not in this build of beard\n");
            else if (en->status[m] == EVAL_FAILED) printf("FAILED: %s\n", en->error[m]);
            else if (en->status[m] == EVAL_NOT_APPLICABLE) printf("n/a (the log line carries the clean figures)\n");
            else {
                printf("surrogate %6.2f%%  %7.2fs |", en->acc[m], en->seconds[m]);
                for (int k = 0; k < cfg->n_models; k++) printf(" %s %.2f", cfg->model_names[k], 100 * en->target_acc[m][k]);
                printf("\n");
            }
        }
    }
    fflush(stdout);
}

// the black-box stage: every surrogate's run, its log, results.json and the matrix
static int run_blackbox(const char *C, EvalConfig *cfg, int force) {
    int nm = cfg->n_models, status = 0, loaded = 0, have_log = cfg->n_targets == 2;
    // the surrogates: every listed model (and load_file when it is none of them), or
    // load_file alone (BEARD)
    int n_sur = 0, extra = -1, in_list = -1;
    int sur_idx[EVAL_MAX_MODELS + 1];
    for (int k = 0; k < nm; k++)
        if (!strcmp(cfg->model_files[k], cfg->load_file)) in_list = k;
    if (cfg->surrogates_all)
        for (int k = 0; k < nm; k++) sur_idx[n_sur++] = k;
    if (!cfg->surrogates_all || in_list < 0) extra = nm, sur_idx[n_sur++] = nm;
    // every output path, checked before any work (and no earlier run's replaced without --force)
    Err e;
    char lpaths[EVAL_MAX_MODELS + 1][1200], jpath[1200], md[1200], csv[1200];
    int prc = eval_config_output_path(cfg, "transfer_matrix.md", md, sizeof(md), &e) ||
              eval_config_output_path(cfg, "transfer_matrix.csv", csv, sizeof(csv), &e);
    if (!prc && cfg->results_json[0]) snprintf(jpath, sizeof(jpath), "%s", cfg->results_json);
    else if (!prc) prc = eval_config_output_path(cfg, "blackbox_results.json", jpath, sizeof(jpath), &e);
    for (int s = 0; s < n_sur && !prc; s++) {
        int k = sur_idx[s];
        const char *name = k == extra ? cfg->method : cfg->model_names[k];
        if (cfg->surrogates_all) { // <save_path>/<NAME>/{model}_{dataset}_{ipc}: convert_to_white_box.py's layout
            char dir[1100], file[200];
            snprintf(file, sizeof(file), "%s_%s_%s_evaluation_log.txt", cfg->model, cfg->dataset, cfg->ipc);
            prc = file_path_join(dir, sizeof(dir), cfg->save_path[0] ? cfg->save_path : ".", name, "surrogate name", &e) ||
                  file_path_join(lpaths[s], sizeof(lpaths[s]), dir, file, "log name", &e);
        } else {
            prc = eval_config_output_path(cfg, "evaluation_log.txt", lpaths[s], sizeof(lpaths[s]), &e);
        }
    }
    if (prc) return cli_error(C, "%s", e.msg);
    if (file_check_dir_writable(cfg->save_path[0] ? cfg->save_path : ".", 1, &e) || file_check_writable(jpath, 0, &e))
        return cli_error(C, "%s", e.msg);
    const char *outs[EVAL_MAX_MODELS + 4] = {jpath, md, csv};
    int n_outs = 3;
    for (int s = 0; s < n_sur && have_log; s++) outs[n_outs++] = lpaths[s];
    for (int k = 0; k < n_outs && !force; k++)
        if (access(outs[k], F_OK) == 0)
            return cli_error(C, "%s exists (an earlier run): --force replaces it, or choose another save_path", outs[k]);

    CliTestSet tset, *ts = &tset, trs;
    memset(&trs, 0, sizeof(trs));
    if (cli_load_testset(C, cfg->dataset, cfg->data_path, cfg->n_examples, ts)) return 1;
    AttackTrainSet train;
    if (eval_config_needs_train(cfg)) { // LGV trains on the training split of data_path
        if (cli_load_split(C, cfg->dataset, cfg->data_path, 1, 0, &trs)) {
            cli_testset_free(ts);
            return 1;
        }
        train = (AttackTrainSet){trs.x, trs.ds.labels, trs.ds.n, ts->info->mean, ts->info->std};
        cfg->train = &train;
    }
    Net *models = calloc((size_t)nm + 1, sizeof(Net));
    Net **mp = calloc((size_t)nm + 1, sizeof(Net *));
    BbRun *runs = calloc((size_t)nm + 1, sizeof(BbRun));
    BeardLog *logs = calloc((size_t)nm + 1, sizeof(BeardLog));
    if (!models || !mp || !runs || !logs) {
        free(models), free(mp), free(runs), free(logs);
        cli_testset_free(ts);
        cli_testset_free(&trs);
        return cli_error(C, "out of memory");
    }
    for (; loaded < nm; loaded++) {
        if (cli_load_model(C, cfg->model_files[loaded], cfg->model, ts->info, &models[loaded])) {
            status = 1;
            break;
        }
        mp[loaded] = &models[loaded];
    }
    int have_extra = 0;
    if (!status && extra >= 0) {
        if (cli_load_model(C, cfg->load_file, cfg->model, ts->info, &models[nm])) status = 1;
        else have_extra = 1;
    }
    if (!status)
        printf("black-box evaluation on %s, %d test images, IPC %s, %s semantics, preset %s, seed %llu, %d threads: "
               "%d surrogate(s), %d model(s)\n",
               ts->info->name, ts->ad.n, cfg->ipc, semantics_name(cfg->sem), preset_name(cfg->preset),
               (unsigned long long)cfg->seed, parallel_threads(), n_sur, nm);
    int done_runs = 0, failed = 0;
    for (int s = 0; s < n_sur && !status; s++) {
        int k = sur_idx[s];
        const char *name = k == extra ? cfg->method : cfg->model_names[k];
        const char *file = k == extra ? cfg->load_file : cfg->model_files[k];
        if (have_log && beardlog_open(&logs[s], lpaths[s], &e)) {
            status = cli_error(C, "%s", e.msg);
            break;
        }
        Net *sur = k == extra ? &models[nm] : &models[k];
        if (blackbox_run(cfg, name, file, sur, mp, &ts->ad, have_log ? &logs[s] : NULL, &runs[s], &e))
            status = cli_error(C, "surrogate %s: %s", name, e.msg);
        done_runs++;
        if (!status) {
            print_bb(cfg, &runs[s]);
            failed += runs[s].n_failed;
        }
    }
    if (!status) {
        cJSON *ex = cJSON_CreateObject();
        cJSON_AddStringToObject(ex, "load_file", cfg->load_file);
        cJSON_AddStringToObject(ex, "dataset_name", ts->info->name);
        cJSON *res = blackbox_results_json(cfg, runs, done_runs, ex);
        if (evaluate_write_json(jpath, res, &e) || blackbox_write_matrix(md, csv, cfg, runs, done_runs, &e))
            status = cli_error(C, "%s", e.msg);
        cJSON_Delete(res);
        // the logs go under their names with the results they describe
        for (int s = 0; s < n_sur && !status && have_log; s++)
            if (beardlog_commit(&logs[s], &e)) status = cli_error(C, "%s", e.msg);
        if (!status) {
            for (int s = 0; s < n_sur && have_log; s++) printf("log:     %s\n", lpaths[s]);
            printf("results: %s\nmatrix:  %s\n         %s\n", jpath, md, csv);
            printf("metrics: beard metrics <log>   (RR/AE/CREI per model, as BEARD's convert_to_white_box.py and "
                   "evaluate_metrics.py compute them)\n");
        }
        if (!status && failed) status = cli_error(C, "%d attack run(s) failed (see above and %s)", failed, jpath);
    }
    for (int s = 0; s <= nm; s++) beardlog_close(&logs[s]);
    for (int s = 0; s < done_runs; s++) blackbox_run_free(&runs[s]);
    for (int k = 0; k < loaded; k++) net_free(&models[k]);
    if (have_extra) net_free(&models[nm]);
    free(models), free(mp), free(runs), free(logs);
    cli_testset_free(ts);
    cli_testset_free(&trs);
    return status;
}

int cmd_evaluate(int argc, char **argv) {
    const char *C = "evaluate", *config = NULL, *load = NULL, *data = NULL, *save = NULL, *attacks = NULL,
               *sem = NULL, *results = NULL;
    long n_examples = -1, seed = -1, threads = -1, batch = -1;
    int csv = 0, no_per_sample = 0, force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int missing = 0;
        if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (cli_flag(argv, i, "--csv")) csv = 1;
        else if (cli_flag(argv, i, "--force")) force = 1;
        else if (cli_flag(argv, i, "--quiet")) quiet = 1;
        else if (cli_flag(argv, i, "--no-per-sample")) no_per_sample = 1;
        else if ((v = cli_opt(argc, argv, &i, "--config", &missing))) config = v;
        else if ((v = cli_opt(argc, argv, &i, "--load-file", &missing))) load = v;
        else if ((v = cli_opt(argc, argv, &i, "--data", &missing))) data = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--out,--save-path", &missing))) save = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--attack,--attacks", &missing))) attacks = v;
        else if ((v = cli_opt(argc, argv, &i, "--semantics", &missing))) sem = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--json,--results", &missing))) results = v;
        else if ((v = cli_opt_any(argc, argv, &i, "--limit,--n-examples,--test-limit,--n", &missing))) {
            if (cli_parse_int(C, "--limit", v, 0, 1L << 30, &n_examples)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--seed", &missing))) {
            if (cli_parse_int(C, "--seed", v, 0, 1L << 53, &seed)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(C, "--threads", v, 0, 256, &threads)) return 2;
        } else if ((v = cli_opt(argc, argv, &i, "--batch", &missing))) {
            if (cli_parse_int(C, "--batch", v, 1, 1 << 16, &batch)) return 2;
        } else if (missing) return 2;
        else return cli_usage_error(C, "unknown option '%s' (see beard evaluate --help)", argv[i]);
    }
    if (quiet) cli_quiet();
    if (!config) return cli_usage_error(C, "--config FILE is required (BEARD's evaluate_config.json; see --help)");

    // the config file, with the command line's overrides merged in before validation
    CliEvalOverrides ov = {.load_file = load, .data_path = data, .save_path = save, .semantics = sem,
                           .results_json = results, .attacks = attacks, .n_examples = n_examples, .seed = seed,
                           .threads = threads, .batch = batch, .per_sample_csv = csv, .no_per_sample = no_per_sample};
    EvalConfig *cfg;
    if (cli_eval_config_read(C, config, &ov, &cfg)) return 1;
    Err e;
    parallel_set_threads(cfg->threads);
    if (cfg->n_models > 0) { // BEARD's black-box evaluation
        int st = run_blackbox(C, cfg, force);
        free(cfg);
        return st;
    }

    // where the outputs go, checked before any work: the folder takes files, and no
    // earlier run's outputs are replaced without --force (a rerun replaces all of them
    // together; BEARD's logging appended, which mixed runs)
    int have_log = cfg->n_targets == 2;
    char lpath[1200], jpath[1200], cpath[1200];
    int paths_rc = eval_config_output_path(cfg, "evaluation_log.txt", lpath, sizeof(lpath), &e) ||
                   eval_config_output_path(cfg, "per_sample.csv", cpath, sizeof(cpath), &e);
    if (!paths_rc && cfg->results_json[0]) snprintf(jpath, sizeof(jpath), "%s", cfg->results_json); // the user's path
    else if (!paths_rc) paths_rc = eval_config_output_path(cfg, "results.json", jpath, sizeof(jpath), &e);
    if (paths_rc) {
        free(cfg);
        return cli_error(C, "%s", e.msg);
    }
    const char *outs[3] = {have_log ? lpath : NULL, jpath, cfg->per_sample_csv ? cpath : NULL};
    if (file_check_dir_writable(cfg->save_path[0] ? cfg->save_path : ".", 1, &e) ||
        file_check_writable(jpath, 0, &e)) {
        free(cfg);
        return cli_error(C, "%s", e.msg);
    }
    for (int k = 0; k < 3 && !force; k++) {
        if (outs[k] && access(outs[k], F_OK) == 0) {
            free(cfg);
            return cli_error(C, "%s exists (an earlier run): --force replaces it, or choose another save_path", outs[k]);
        }
    }

    CliTestSet ts, trs;
    memset(&trs, 0, sizeof(trs));
    if (cli_load_testset(C, cfg->dataset, cfg->data_path, cfg->n_examples, &ts)) {
        free(cfg);
        return 1;
    }
    AttackTrainSet train;
    if (eval_config_needs_train(cfg)) { // LGV trains on the training split of data_path
        if (cli_load_split(C, cfg->dataset, cfg->data_path, 1, 0, &trs)) {
            cli_testset_free(&ts);
            free(cfg);
            return 1;
        }
        train = (AttackTrainSet){trs.x, trs.ds.labels, trs.ds.n, ts.info->mean, ts.info->std};
        cfg->train = &train;
    }
    Net net;
    if (cli_load_model(C, cfg->load_file, cfg->model, ts.info, &net)) {
        fprintf(stderr, "beard evaluate: (paths in the config are relative to the current directory, as in BEARD;"
                        " --load-file overrides load_file)\n");
        cli_testset_free(&ts);
        free(cfg);
        return 1;
    }
    // BEARD names files with the dataset as its config spells it; keep that
    BeardLog log = {0};
    int status = 0;
    if (have_log && beardlog_open(&log, lpath, &e)) {
        status = cli_error(C, "%s", e.msg);
        goto done;
    }
    printf("%s (%s) on %s, %d test images, IPC %s, %s semantics, preset %s, seed %llu, %d threads\n", cfg->method,
           net.arch, ts.info->name, ts.ad.n, cfg->ipc, semantics_name(cfg->sem), preset_name(cfg->preset),
           (unsigned long long)cfg->seed, parallel_threads());
    EvalReport rep;
    PrintCtx pc = {cfg};
    if (evaluate_run(cfg, &net, &ts.ad, have_log ? &log : NULL, on_progress, &pc, &rep, &e)) {
        status = cli_error(C, "%s", e.msg);
        evaluate_report_free(&rep);
        goto done;
    }
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "load_file", cfg->load_file);
    cJSON_AddStringToObject(extra, "dataset_name", ts.info->name);
    cJSON *res = evaluate_results_json(cfg, &rep, &ts.ad, &net, have_log ? log.path : NULL, extra);
    if (evaluate_write_json(jpath, res, &e)) status = cli_error(C, "%s", e.msg);
    cJSON_Delete(res);
    if (!status && cfg->per_sample_csv && evaluate_write_csv(cpath, &rep, &ts.ad, &e)) status = cli_error(C, "%s", e.msg);
    // the log goes under its name with the results it describes (a failed write leaves
    // neither half-done)
    if (!status && have_log && beardlog_commit(&log, &e)) status = cli_error(C, "%s", e.msg);
    if (!status && rep.n_failed)
        status = cli_error(C, "%d attack run(s) failed (see above; their errors are in %s); the others are written",
                           rep.n_failed, jpath);
    if (!status || rep.n_failed) {
        if (have_log) printf("log:     %s\n", log.path);
        printf("results: %s\n", jpath);
        if (cfg->per_sample_csv) printf("samples: %s\n", cpath);
        printf("metrics: beard metrics %s%s\n", have_log ? log.path : jpath,
               have_log ? "   (or the results.json, for passes-based AE and bootstrap CIs)" : "");
    }
    evaluate_report_free(&rep);
done:
    beardlog_close(&log);
    net_free(&net);
    cli_testset_free(&ts);
    cli_testset_free(&trs);
    free(cfg);
    return status;
}
