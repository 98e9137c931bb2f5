/*
 * evaluate.c: the evaluation stage, BEARD's Code/evaluate_model.py (arXiv:2411.09265,
 * github zhouzhengqd/BEARD) on beard's engine and attack library.
 *
 * BEARD loads one checkpoint, then for each name in test_attack and each mode in
 * target_attack runs evaluate_synset, which attacks every batch of the test loader and
 * scores the result, and times that call; at the end it logs one line per attack with
 * both modes' accuracy and time (beardlog.h has the format). beard does the same, in the
 * same order, with these correspondences:
 *
 * - "Clean" falls through BEARD's attack switch (eva_utils.epoch) into a plain test pass.
 *   Here it is attack_clean_predict over the set, timed once per mode as BEARD does.
 * - An attack is attack_evaluate with the config's semantics, target policy, preset and
 *   overrides: exactly what `beard attack` runs for the same settings, so the two agree
 *   figure for figure. Its time is the attack plus the scoring pass, as BEARD times it.
 * - Accuracies are (correct / n) * 100, BEARD's arithmetic, before %.2f.
 * - Targeted DeepFool and AutoAttack: BEARD prints "can not support target attack" and
 *   scores the clean images, so its line carries the clean accuracy and the time of a
 *   clean pass. Here the targeted mode is not run; the log line carries the clean pass's
 *   figures of that mode (BEARD's published logs show exactly these numbers: the clean
 *   targeted accuracy and time) and results.json says null, with a note.
 * - A name this build does not know is skipped with a warning, and gets no line. (BEARD
 *   would score clean images under that name: its eva_utils.epoch falls through for any
 *   unknown name; e.g. it tests 'Spsa' where its config says 'SPSA'.)
 *
 * Deliberate differences: lines are written as each attack finishes (BEARD writes them
 * all at the end), so an interrupted run keeps what it finished; an attack that fails is
 * recorded (no line for it, its error in results.json) and the others still run; with a single mode in
 * target_attack no log is written (BEARD's line needs both modes and BEARD itself fails
 * there), results.json has everything. The log is appended to, as Python's logging does.
 */
#include "evaluate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../attacks/result_json.h"
#include "../core/parallel.h"
#include "../io/file.h"

static int mode_index(int targeted) { return targeted ? 0 : 1; }

static double beard_percent(int correct, int n) { return n ? (double)correct / n * 100.0 : 0.0; }

void evaluate_report_free(EvalReport *rep) {
    for (int i = 0; i < rep->n_entries; i++)
        for (int m = 0; m < 2; m++)
            if (rep->entries[i].mode[m].status == EVAL_RAN && rep->entries[i].mode[m].res.def)
                attack_result_free(&rep->entries[i].mode[m].res);
    free(rep->clean_ok);
    memset(rep, 0, sizeof(*rep));
}

int evaluate_log_message(const EvalConfig *cfg, const EvalReport *rep, int entry, char *buf, size_t n) {
    const EvalEntry *en = &rep->entries[entry];
    BeardLogLine l;
    memset(&l, 0, sizeof(l));
    snprintf(l.attack, sizeof(l.attack), "%s", en->spec->name);
    snprintf(l.method, sizeof(l.method), "%s", cfg->method);
    for (int m = 0; m < 2; m++) {
        l.acc[m] = en->mode[m].accuracy;
        l.seconds[m] = en->mode[m].seconds;
        l.std[m] = 0.0; // one evaluation: np.std of a single value
    }
    return evaluate_format_line(cfg, &l, buf, n);
}

int evaluate_format_line(const EvalConfig *cfg, const BeardLogLine *l, char *buf, size_t n) {
    const char *names[EVAL_MAX_ATTACKS];
    for (int i = 0; i < cfg->n_attacks; i++) names[i] = cfg->attacks[i].name;
    BeardLogContext ctx = {.dataset = cfg->dataset, .ipc = cfg->ipc, .model = cfg->model, .dsa = cfg->dsa,
                           .num_eval = cfg->num_eval, .aug = cfg->aug, .src_dataset = cfg->src_dataset,
                           .attacks = names, .n_attacks = cfg->n_attacks, .targets = cfg->targets,
                           .n_targets = cfg->n_targets};
    return beardlog_format(buf, n, l, &ctx);
}

int evaluate_run(const EvalConfig *cfg, Net *net, const AttackData *d, BeardLog *log, EvalCallback cb, void *cb_ctx,
                 EvalReport *rep, Err *e) {
    memset(rep, 0, sizeof(*rep));
    double t_start = time_now();
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(rep->started, sizeof(rep->started), "%Y-%m-%d %H:%M:%S", &tm);
    int n = d->n;
    if (n <= 0) return err_set(e, "the test set is empty");
    rep->n = n;
    rep->clean_ok = calloc(n, 1);
    int *pred = calloc(n, sizeof(int));
    if (!rep->clean_ok || !pred) {
        free(pred);
        return err_set(e, "out of memory for %d samples", n);
    }
    int batch = cfg->batch > 0 ? cfg->batch : 256;

    // the clean pass, once per requested mode (BEARD times "Clean" in each mode)
    for (int t = 0; t < cfg->n_targets; t++) {
        int m = mode_index(cfg->targets[t]);
        double t0 = time_now();
        if (attack_clean_predict(net, d, cfg->sem, batch, pred, NULL, e)) {
            free(pred);
            return err_wrap(e, "clean pass");
        }
        int correct = 0;
        for (int i = 0; i < n; i++) {
            rep->clean_ok[i] = pred[i] == d->y[i];
            correct += rep->clean_ok[i];
        }
        rep->clean_seconds[m] = time_now() - t0;
        rep->clean_done[m] = 1;
        rep->clean_correct = correct;
        rep->clean_accuracy = beard_percent(correct, n);
    }
    free(pred);
    if (cb) cb(cb_ctx, rep, -1, -1);

    RunConfig rc = {.sem = cfg->sem, .policy = cfg->policy, .batch = batch, .seed = cfg->seed, .progress = 1,
                    .train = cfg->train};
    for (int a = 0; a < cfg->n_attacks; a++) {
        const EvalAttackSpec *spec = &cfg->attacks[a];
        EvalEntry *en = &rep->entries[rep->n_entries++];
        memset(en, 0, sizeof(*en));
        en->spec = spec;
        for (int m = 0; m < 2; m++) en->mode[m].status = EVAL_NOT_REQUESTED;
        if (!spec->clean && !spec->def) {
            for (int m = 0; m < 2; m++) en->mode[m].status = EVAL_SKIPPED;
            if (cb) cb(cb_ctx, rep, a, -1);
            continue;
        }
        for (int t = 0; t < cfg->n_targets; t++) {
            int tg = cfg->targets[t], m = mode_index(tg);
            EvalMode *em = &en->mode[m];
            int applies = spec->clean || (tg ? spec->def->targeted_ok : spec->def->untargeted_ok);
            if (spec->clean || !applies) {
                em->status = spec->clean ? EVAL_RAN : EVAL_NOT_APPLICABLE;
                em->accuracy = rep->clean_accuracy;
                em->seconds = rep->clean_seconds[m];
            } else {
                Err ae;
                if (attack_evaluate(net, d, spec->def, &spec->params, tg, &rc, &em->res, &ae)) {
                    em->status = EVAL_FAILED;
                    snprintf(em->error, sizeof(em->error), "%s", ae.msg);
                    rep->n_failed++;
                } else {
                    em->status = EVAL_RAN;
                    em->accuracy = beard_percent(em->res.adv_correct, n);
                    em->seconds = em->res.seconds;
                }
            }
            if (cb) cb(cb_ctx, rep, a, m);
        }
        int failed = en->mode[0].status == EVAL_FAILED || en->mode[1].status == EVAL_FAILED;
        if (log && cfg->n_targets == 2 && !failed) {
            char msg[4096];
            evaluate_log_message(cfg, rep, a, msg, sizeof(msg));
            if (beardlog_info(log, msg, e)) return -1;
            en->logged = 1;
        }
    }
    rep->wall_seconds = time_now() - t_start;
    return 0;
}

// ----------------------------------------------------------------------------
// results.json

cJSON *evaluate_machine_json(void) {
    cJSON *o = cJSON_CreateObject();
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) == 0) cJSON_AddStringToObject(o, "hostname", host);
    struct utsname u;
    if (uname(&u) == 0) {
        char os[512];
        snprintf(os, sizeof(os), "%s %s %s", u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(o, "os", os);
    }
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    c++;
                    while (*c == ' ') c++;
                    c[strcspn(c, "\n")] = 0;
                    cJSON_AddStringToObject(o, "cpu", c);
                }
                break;
            }
        fclose(f);
    }
    cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(o, "threads", parallel_threads());
    cJSON_AddStringToObject(o, "blas", parallel_blas_core());
    return o;
}

static cJSON *bits_json(const unsigned char *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *rounded(double v, int digits) {
    double p = pow(10, digits);
    return cJSON_CreateNumber(round(v * p) / p);
}

void evaluate_json_merge(cJSON *root, cJSON *extra) {
    if (!extra) return;
    cJSON *it = extra->child;
    while (it) {
        cJSON *next = it->next;
        cJSON *item = cJSON_DetachItemViaPointer(extra, it);
        cJSON_DeleteItemFromObjectCaseSensitive(root, item->string);
        cJSON_AddItemToObject(root, item->string, item);
        it = next;
    }
    cJSON_Delete(extra);
}

cJSON *evaluate_results_json(const EvalConfig *cfg, const EvalReport *rep, const AttackData *d, const Net *net,
                             const char *log_path, cJSON *extra) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "beard-evaluate-1");
    cJSON_AddStringToObject(root, "version", BEARD_VERSION);
    cJSON_AddStringToObject(root, "method", cfg->method);
    cJSON_AddStringToObject(root, "dataset", cfg->dataset);
    cJSON_AddStringToObject(root, "model", cfg->model);
    cJSON_AddStringToObject(root, "ipc", cfg->ipc);
    if (net) cJSON_AddStringToObject(root, "arch", net->arch);
    cJSON_AddNumberToObject(root, "n", rep->n);
    cJSON_AddNumberToObject(root, "seed", (double)cfg->seed);
    cJSON_AddStringToObject(root, "semantics", semantics_name(cfg->sem));
    cJSON_AddStringToObject(root, "preset", preset_name(cfg->preset));
    cJSON_AddStringToObject(root, "target_policy", target_policy_name(cfg->policy));
    cJSON_AddStringToObject(root, "started", rep->started);
    cJSON_AddItemToObject(root, "wall_seconds", rounded(rep->wall_seconds, 3));
    if (log_path) cJSON_AddStringToObject(root, "log_file", log_path);
    evaluate_json_merge(root, extra);
    cJSON_AddItemToObject(root, "config", eval_config_to_json(cfg));
    cJSON_AddItemToObject(root, "machine", evaluate_machine_json());

    cJSON *clean = cJSON_AddObjectToObject(root, "clean");
    cJSON_AddItemToObject(clean, "accuracy", rounded(rep->clean_accuracy, 4));
    cJSON_AddNumberToObject(clean, "correct", rep->clean_correct);
    cJSON_AddNumberToObject(clean, "n", rep->n);
    cJSON *sec = cJSON_AddObjectToObject(clean, "seconds");
    for (int m = 0; m < 2; m++)
        if (rep->clean_done[m]) cJSON_AddItemToObject(sec, m ? "untargeted" : "targeted", rounded(rep->clean_seconds[m], 4));
    if (cfg->per_sample) {
        cJSON *ps = cJSON_AddObjectToObject(clean, "per_sample");
        cJSON_AddItemToObject(ps, "correct", bits_json(rep->clean_ok, rep->n));
    }

    cJSON *attacks = cJSON_AddArrayToObject(root, "attacks");
    for (int i = 0; i < rep->n_entries; i++) {
        const EvalEntry *en = &rep->entries[i];
        if (en->spec->clean) continue; // the "clean" block above
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", en->spec->name);
        if (en->spec->def) cJSON_AddStringToObject(o, "attack", en->spec->def->name);
        if (en->mode[0].status == EVAL_SKIPPED) {
            cJSON_AddStringToObject(o, "skipped", "not in this build of beard");
            cJSON_AddItemToArray(attacks, o);
            continue;
        }
        for (int m = 0; m < 2; m++) {
            const EvalMode *em = &en->mode[m];
            const char *key = m ? "untargeted" : "targeted";
            if (em->status == EVAL_RAN) {
                cJSON *r = attack_result_json(&em->res, cfg->per_sample);
                if (em->res.targeted) cJSON_AddStringToObject(r, "target_policy", target_policy_name(cfg->policy));
                cJSON_AddItemToObject(o, key, r);
            } else if (em->status == EVAL_FAILED) {
                char k2[32];
                cJSON_AddNullToObject(o, key);
                snprintf(k2, sizeof(k2), "%s_error", key);
                cJSON_AddStringToObject(o, k2, em->error);
            } else if (em->status == EVAL_NOT_APPLICABLE) {
                char note[160], k2[32];
                cJSON_AddNullToObject(o, key);
                snprintf(note, sizeof(note), "%s has no %s mode; BEARD's log line carries the clean pass's figures", en->spec->def->name, key);
                snprintf(k2, sizeof(k2), "%s_note", key);
                cJSON_AddStringToObject(o, k2, note);
            }
        }
        cJSON_AddBoolToObject(o, "logged", en->logged);
        cJSON_AddItemToArray(attacks, o);
    }
    cJSON *w = cJSON_AddArrayToObject(root, "warnings");
    for (int i = 0; i < cfg->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(cfg->warnings[i]));
    (void)d;
    return root;
}

int evaluate_write_json(const char *path, const cJSON *root, Err *e) {
    char *s = cJSON_Print(root);
    if (!s) return err_set(e, "out of memory writing %s", path);
    size_t n = strlen(s);
    s[n] = '\n'; // cJSON_Print's buffer ends with the NUL we overwrite; write n + 1 bytes
    int rc = file_write_all(path, s, n + 1, e);
    free(s);
    return rc;
}

int evaluate_write_csv(const char *path, const EvalReport *rep, const AttackData *d, Err *e) {
    FileAtomic out;
    if (file_atomic_open(&out, path, e)) return -1;
    FILE *f = out.f;
    fputs("index,label,attack,mode,clean_correct,adv_correct,success,pred,target,l2,linf,l2_pixel,linf_pixel\n", f);
    for (int i = 0; i < rep->n_entries; i++) {
        const EvalEntry *en = &rep->entries[i];
        for (int m = 0; m < 2; m++) {
            const EvalMode *em = &en->mode[m];
            if (em->status != EVAL_RAN || en->spec->clean) continue;
            const AttackResult *r = &em->res;
            for (int s = 0; s < r->n; s++) {
                fprintf(f, "%d,%d,%s,%s,%d,%d,%d,%d,", s, d->y[s], en->spec->name, m ? "untargeted" : "targeted",
                        r->clean_ok[s], r->adv_ok[s], r->clean_ok[s] && !r->adv_ok[s], r->pred[s]);
                if (r->targets) fprintf(f, "%d", r->targets[s]);
                fprintf(f, ",%.6g,%.6g,%.6g,%.6g\n", r->l2[s], r->linf[s], r->l2_pixel[s], r->linf_pixel[s]);
            }
        }
    }
    return file_atomic_commit(&out, e);
}
