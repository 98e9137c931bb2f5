/*
 * blackbox.c: see blackbox.h.
 */
#include "blackbox.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../attacks/result_json.h"
#include "../io/file.h"
#include "evaluate.h"

static int mode_index(int targeted) { return targeted ? 0 : 1; }

void blackbox_run_free(BbRun *run) {
    for (int i = 0; i < run->n_entries; i++)
        for (int m = 0; m < 2; m++) {
            BbEntry *en = &run->entries[i];
            if (en->status[m] == EVAL_RAN && en->res[m].def) attack_result_free(&en->res[m]);
            for (int k = 0; k < run->n_models; k++) free(en->target_ok[m][k]);
        }
    for (int k = 0; k < run->n_models; k++) free(run->model_clean_ok[k]);
    memset(run, 0, sizeof(*run));
}

// the model's accuracy (a fraction, numpy's acc / num_exp) on x (attack space) and its
// per-sample correctness
static int score(Net *net, const AttackData *d, Semantics sem, const float *x, int batch, unsigned char **ok,
                 double *frac, Err *e) {
    TransferResult tr;
    if (x) {
        if (attack_transfer(net, d, sem, x, batch, &tr, e)) return -1;
        *ok = tr.adv_ok, tr.adv_ok = NULL;
        *frac = (double)tr.adv_correct / d->n;
    } else {
        int *pred = malloc(sizeof(int) * d->n);
        *ok = calloc((size_t)d->n, 1);
        if (!pred || !*ok) {
            free(pred);
            return err_set(e, "out of memory");
        }
        if (attack_clean_predict(net, d, sem, batch, pred, NULL, e)) {
            free(pred);
            return -1;
        }
        int c = 0;
        for (int i = 0; i < d->n; i++) c += (*ok)[i] = pred[i] == d->y[i];
        *frac = (double)c / d->n;
        free(pred);
        return 0;
    }
    transfer_result_free(&tr);
    return 0;
}

static void log_line(const EvalConfig *cfg, const BbRun *run, int i, BeardLogLine *l) {
    memset(l, 0, sizeof(*l));
    const BbEntry *en = &run->entries[i];
    snprintf(l->attack, sizeof(l->attack), "%s", run->spec[i]->name);
    snprintf(l->method, sizeof(l->method), "%s", run->surrogate);
    l->n_eval = run->n_models;
    for (int m = 0; m < 2; m++) {
        l->acc[m] = en->acc[m];
        l->seconds[m] = en->seconds[m];
        for (int k = 0; k < run->n_models; k++) l->eval_acc[m][k] = en->target_acc[m][k];
    }
    for (int k = 0; k < run->n_models; k++) snprintf(l->eval_names[k], sizeof(l->eval_names[0]), "%s", cfg->model_names[k]);
}

int blackbox_run(const EvalConfig *cfg, const char *surrogate_name, const char *surrogate_file, Net *surrogate,
                 Net *const *models, const AttackData *d, BeardLog *log, BbRun *run, Err *e) {
    memset(run, 0, sizeof(*run));
    snprintf(run->surrogate, sizeof(run->surrogate), "%s", surrogate_name);
    snprintf(run->surrogate_file, sizeof(run->surrogate_file), "%s", surrogate_file);
    int n = d->n, batch = cfg->batch > 0 ? cfg->batch : 256, nm = cfg->n_models;
    if (n <= 0) return err_set(e, "the test set is empty");
    run->n = n, run->n_models = nm;
    // the clean pass, per requested mode: the surrogate and every model, timed together
    unsigned char *sok = NULL;
    for (int t = 0; t < cfg->n_targets; t++) {
        int m = mode_index(cfg->targets[t]);
        double t0 = time_now(), frac = 0;
        free(sok);
        if (score(surrogate, d, cfg->sem, NULL, batch, &sok, &frac, e)) {
            free(sok);
            return err_wrap(e, "clean pass of %s", surrogate_name);
        }
        run->clean_acc = frac * 100.0;
        for (int k = 0; k < nm; k++) {
            free(run->model_clean_ok[k]);
            run->model_clean_ok[k] = NULL;
            if (score(models[k], d, cfg->sem, NULL, batch, &run->model_clean_ok[k], &run->model_clean[k], e)) {
                free(sok);
                return err_wrap(e, "clean pass of %s", cfg->model_names[k]);
            }
        }
        run->clean_seconds[m] = time_now() - t0;
    }
    free(sok);
    RunConfig rc = {.sem = cfg->sem, .policy = cfg->policy, .batch = batch, .seed = cfg->seed, .progress = 1,
                    .train = cfg->train,
                    .keep_adv = 1};
    for (int a = 0; a < cfg->n_attacks; a++) {
        const EvalAttackSpec *spec = &cfg->attacks[a];
        int i = run->n_entries++;
        BbEntry *en = &run->entries[i];
        run->spec[i] = spec;
        for (int m = 0; m < 2; m++) en->status[m] = EVAL_NOT_REQUESTED;
        if (!spec->clean && !spec->def) {
            for (int m = 0; m < 2; m++) en->status[m] = EVAL_SKIPPED;
            continue;
        }
        for (int t = 0; t < cfg->n_targets; t++) {
            int tg = cfg->targets[t], m = mode_index(tg);
            int applies = spec->clean || (tg ? spec->def->targeted_ok : spec->def->untargeted_ok);
            if (spec->clean || !applies) { // the clean images (BEARD's fall-through)
                en->status[m] = spec->clean ? EVAL_RAN : EVAL_NOT_APPLICABLE;
                en->acc[m] = run->clean_acc;
                en->seconds[m] = run->clean_seconds[m];
                for (int k = 0; k < nm; k++) en->target_acc[m][k] = run->model_clean[k];
                continue;
            }
            Err ae;
            AttackResult *r = &en->res[m];
            double t0 = time_now();
            if (attack_evaluate(surrogate, d, spec->def, &spec->params, tg, &rc, r, &ae)) {
                en->status[m] = EVAL_FAILED;
                snprintf(en->error[m], sizeof(en->error[m]), "%s", ae.msg);
                run->n_failed++;
                continue;
            }
            double attack_s = r->seconds, ts = time_now();
            (void)t0;
            int fail = 0;
            for (int k = 0; k < nm && !fail; k++)
                if (score(models[k], d, cfg->sem, r->x_adv, batch, &en->target_ok[m][k], &en->target_acc[m][k], &ae)) {
                    en->status[m] = EVAL_FAILED;
                    snprintf(en->error[m], sizeof(en->error[m]), "scoring on %s: %.400s", cfg->model_names[k], ae.msg);
                    run->n_failed++;
                    fail = 1;
                }
            xfree(r->x_adv);
            r->x_adv = NULL;
            if (fail) {
                attack_result_free(r);
                continue;
            }
            en->status[m] = EVAL_RAN;
            en->acc[m] = (double)r->adv_correct / n * 100.0;
            en->seconds[m] = attack_s + (time_now() - ts);
        }
        int failed = en->status[0] == EVAL_FAILED || en->status[1] == EVAL_FAILED;
        if (log && cfg->n_targets == 2 && !failed) {
            BeardLogLine l;
            log_line(cfg, run, i, &l);
            char msg[8192];
            evaluate_format_line(cfg, &l, msg, sizeof(msg));
            if (beardlog_info(log, msg, e)) return -1;
            en->logged = 1;
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// results.json and the matrix

static cJSON *bitstring(const unsigned char *v, int n) {
    char *s = malloc((size_t)n + 1);
    if (!s) return cJSON_CreateNull();
    for (int i = 0; i < n; i++) s[i] = v[i] ? '1' : '0';
    s[n] = 0;
    cJSON *o = cJSON_CreateString(s);
    free(s);
    return o;
}

static double rnd(double v, int digits) {
    double p = pow(10, digits);
    return round(v * p) / p;
}

// of the model's clean-correct samples, the percent now wrong
static double target_asr(const BbRun *r, const BbEntry *en, int m, int k) {
    if (!en->target_ok[m][k] || !r->model_clean_ok[k]) return NAN;
    int c = 0, s = 0;
    for (int i = 0; i < r->n; i++) {
        c += r->model_clean_ok[k][i];
        s += r->model_clean_ok[k][i] && !en->target_ok[m][k][i];
    }
    return c ? 100.0 * s / c : 0.0;
}

cJSON *blackbox_results_json(const EvalConfig *cfg, const BbRun *runs, int n_runs, cJSON *extra) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "beard-evaluate-blackbox-1");
    cJSON_AddStringToObject(root, "version", BEARD_VERSION);
    cJSON_AddStringToObject(root, "dataset", cfg->dataset);
    cJSON_AddStringToObject(root, "model", cfg->model);
    cJSON_AddStringToObject(root, "ipc", cfg->ipc);
    cJSON_AddNumberToObject(root, "n", n_runs ? runs[0].n : 0);
    cJSON_AddNumberToObject(root, "seed", (double)cfg->seed);
    cJSON_AddStringToObject(root, "semantics", semantics_name(cfg->sem));
    cJSON_AddStringToObject(root, "preset", preset_name(cfg->preset));
    cJSON_AddStringToObject(root, "target_policy", target_policy_name(cfg->policy));
    evaluate_json_merge(root, extra);
    cJSON *models = cJSON_AddArrayToObject(root, "models");
    for (int k = 0; k < cfg->n_models; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", cfg->model_names[k]);
        cJSON_AddStringToObject(o, "file", cfg->model_files[k]);
        cJSON_AddItemToArray(models, o);
    }
    cJSON_AddItemToObject(root, "config", eval_config_to_json(cfg));
    cJSON_AddItemToObject(root, "machine", evaluate_machine_json());
    cJSON *sur = cJSON_AddArrayToObject(root, "surrogates");
    for (int s = 0; s < n_runs; s++) {
        const BbRun *r = &runs[s];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r->surrogate);
        cJSON_AddStringToObject(o, "file", r->surrogate_file);
        cJSON *cl = cJSON_AddObjectToObject(o, "clean");
        cJSON_AddNumberToObject(cl, "accuracy", rnd(r->clean_acc, 4));
        cJSON *ma = cJSON_AddObjectToObject(cl, "models");
        for (int k = 0; k < r->n_models; k++) cJSON_AddNumberToObject(ma, cfg->model_names[k], rnd(100 * r->model_clean[k], 4));
        cJSON *atk = cJSON_AddArrayToObject(o, "attacks");
        for (int i = 0; i < r->n_entries; i++) {
            const BbEntry *en = &r->entries[i];
            if (r->spec[i]->clean) continue;
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "name", r->spec[i]->name);
            if (r->spec[i]->def) cJSON_AddStringToObject(a, "attack", r->spec[i]->def->name);
            if (en->status[0] == EVAL_SKIPPED) {
                cJSON_AddStringToObject(a, "skipped", "not in this build of beard");
                cJSON_AddItemToArray(atk, a);
                continue;
            }
            for (int m = 0; m < 2; m++) {
                const char *key = m ? "untargeted" : "targeted";
                char k2[40];
                if (en->status[m] == EVAL_RAN) {
                    cJSON *res = attack_result_json(&en->res[m], cfg->per_sample);
                    cJSON_AddNumberToObject(res, "seconds_with_scoring", rnd(en->seconds[m], 4));
                    cJSON *tm = cJSON_AddObjectToObject(res, "models");
                    for (int k = 0; k < r->n_models; k++) {
                        cJSON *t = cJSON_CreateObject();
                        cJSON_AddNumberToObject(t, "accuracy", rnd(100 * en->target_acc[m][k], 4));
                        double asr = target_asr(r, en, m, k);
                        if (!isnan(asr)) cJSON_AddNumberToObject(t, "asr", rnd(asr, 4));
                        if (cfg->per_sample && en->target_ok[m][k])
                            cJSON_AddItemToObject(t, "correct", bitstring(en->target_ok[m][k], r->n));
                        cJSON_AddItemToObject(tm, cfg->model_names[k], t);
                    }
                    cJSON_AddItemToObject(a, key, res);
                } else if (en->status[m] == EVAL_FAILED) {
                    cJSON_AddNullToObject(a, key);
                    snprintf(k2, sizeof(k2), "%s_error", key);
                    cJSON_AddStringToObject(a, k2, en->error[m]);
                } else if (en->status[m] == EVAL_NOT_APPLICABLE) {
                    cJSON_AddNullToObject(a, key);
                    snprintf(k2, sizeof(k2), "%s_note", key);
                    cJSON_AddStringToObject(a, k2, "no such mode; BEARD's line carries the clean figures of every model");
                }
            }
            cJSON_AddBoolToObject(a, "logged", en->logged);
            cJSON_AddItemToArray(atk, a);
        }
        cJSON_AddItemToArray(sur, o);
    }
    cJSON *w = cJSON_AddArrayToObject(root, "warnings");
    for (int i = 0; i < cfg->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(cfg->warnings[i]));
    return root;
}

int blackbox_write_matrix(const char *md_path, const char *csv_path, const EvalConfig *cfg, const BbRun *runs,
                          int n_runs, Err *e) {
    FileAtomic fm = {0}, fc = {0};
    if (file_atomic_open(&fm, md_path, e)) return -1;
    if (file_atomic_open(&fc, csv_path, e)) {
        file_atomic_abort(&fm);
        return -1;
    }
    FILE *md = fm.f, *csv = fc.f;
    int nm = cfg->n_models;
    fprintf(md, "# Transfer matrix: %s, %s semantics, %d test images\n\n", cfg->dataset, semantics_name(cfg->sem),
            n_runs ? runs[0].n : 0);
    fprintf(md, "Robust accuracy (%%) of each model (column) on the examples crafted on each surrogate (row); "
                "the diagonal is the white-box case.\n\n");
    fputs("attack,mode,surrogate,target,accuracy,clean_accuracy,asr\n", csv);
    // clean accuracies
    fputs("## Clean\n\n| surrogate |", md);
    for (int k = 0; k < nm; k++) fprintf(md, " %s |", cfg->model_names[k]);
    fputs("\n| --- |", md);
    for (int k = 0; k < nm; k++) fputs(" --- |", md);
    fputc('\n', md);
    for (int s = 0; s < n_runs; s++) {
        fprintf(md, "| %s |", runs[s].surrogate);
        for (int k = 0; k < nm; k++) {
            fprintf(md, " %.2f |", 100 * runs[s].model_clean[k]);
            fprintf(csv, "Clean,,%s,%s,%.4f,%.4f,\n", runs[s].surrogate, cfg->model_names[k], 100 * runs[s].model_clean[k],
                    100 * runs[s].model_clean[k]);
        }
        fputc('\n', md);
    }
    for (int i = 0; n_runs && i < runs[0].n_entries; i++) {
        if (runs[0].spec[i]->clean) continue;
        for (int m = 0; m < 2; m++) {
            int any = 0;
            for (int s = 0; s < n_runs; s++) any |= runs[s].entries[i].status[m] == EVAL_RAN;
            if (!any) continue;
            fprintf(md, "\n## %s, %s\n\n| surrogate |", runs[0].spec[i]->name, m ? "untargeted" : "targeted");
            for (int k = 0; k < nm; k++) fprintf(md, " %s |", cfg->model_names[k]);
            fputs("\n| --- |", md);
            for (int k = 0; k < nm; k++) fputs(" --- |", md);
            fputc('\n', md);
            for (int s = 0; s < n_runs; s++) {
                const BbEntry *en = &runs[s].entries[i];
                fprintf(md, "| %s |", runs[s].surrogate);
                for (int k = 0; k < nm; k++) {
                    if (en->status[m] != EVAL_RAN) {
                        fputs(" - |", md);
                        continue;
                    }
                    double asr = target_asr(&runs[s], en, m, k);
                    fprintf(md, " %.2f |", 100 * en->target_acc[m][k]);
                    fprintf(csv, "%s,%s,%s,%s,%.4f,%.4f,%.4f\n", runs[0].spec[i]->name, m ? "untargeted" : "targeted",
                            runs[s].surrogate, cfg->model_names[k], 100 * en->target_acc[m][k],
                            100 * runs[s].model_clean[k], asr);
                }
                fputc('\n', md);
            }
        }
    }
    // each appears under its name only complete (the Markdown first, then the CSV)
    if (file_atomic_commit(&fm, e)) {
        file_atomic_abort(&fc);
        return -1;
    }
    return file_atomic_commit(&fc, e);
}
