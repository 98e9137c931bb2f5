/*
 * metrics.c: BEARD's RR, AE and CREI (arXiv:2411.09265), matched to BEARD's own toolkit
 * (github zhouzhengqd/BEARD, Code/metrics/white_box/evaluate_metrics.py and
 * auto_metrics.py), which produces the published figures; see metrics.h for the API.
 *
 * How BEARD's toolkit computes them, and therefore how this file does:
 *
 * - Clean accuracy c of a run is the targeted figure of its Clean line (both modes carry
 *   the same number); a run without a Clean line has no metrics (an error here).
 * - The clean time t_c of a run is the smaller of the Clean line's targeted and
 *   untargeted times, and it serves both modes.
 * - Attacks: every non-Clean line, untargeted figures for untargeted metrics and
 *   targeted figures for targeted metrics, except that targeted Deepfool, AA and TPGD are
 *   left out: BEARD has no targeted mode for them and its log lines carry the clean
 *   figures there (names compared case-insensitively, AutoAttack/DeepFool spellings
 *   included). In a results.json the same modes are null and are left out the same way.
 * - Per run (one IPC): RR = 100 (1 - (c - mean a)/(c - min a)), the `rome` variant
 *   100 (1 - (c - mean a)(c - min a)/c^2); AE = 100 (mean t - t_c)/(max t - t_c);
 *   CREI = alpha RR + (1 - alpha) AE, alpha = 0.5 by default.
 * - Combined (RRM, AEM, CREIM): c and t_c are the means over the runs that have at least
 *   one attack in the mode; accuracies and times are pooled over all their attacks. On
 *   the three BACON/CIFAR-10 logs this gives targeted RRM 36.83 and untargeted AEM 21.53,
 *   CREIM 27.20, as published. (The paper's untargeted RRM row repeats the targeted one;
 *   the formula gives 32.87.)
 * - Degenerate cases follow the toolkit: c == min a gives RR = 0 and max t == t_c gives
 *   AE = 0, each flagged in the figure's note. With a single attack RR (beard) is 0 and
 *   AE is 100 by construction (mean = min = max); that is reported with a note too.
 *   c <= 0 leaves RR undefined (rome divides by c^2): NAN, printed as null/n/a.
 *
 * What is added here and not in the toolkit:
 * - Single adversary figures (RRS, AES, CREIS): the same formulas for one attack, its
 *   accuracies and times pooled over the runs (IPCs) that have it and c, t_c averaged over
 *   those runs. With one run they are degenerate by construction (noted).
 * - ASR two ways: the accuracy drop c - a in points (what the toolkit's RR is built on)
 *   and the per-sample rate, originally correct samples that the attack flips over
 *   originally correct samples (the paper's definition; results.json only).
 * - AE from passes per sample instead of seconds (results.json only): the cost of a
 *   run is its attack's forward+backward passes plus the one scoring forward pass, so
 *   t_c = 1 and t_i = passes_i + 1. It does not depend on the machine.
 * - Bootstrap 95% intervals over test samples (results.json with per-sample data):
 *   each resample draws n samples with replacement from every run independently, the
 *   same draw for the clean and all attack figures of that run (paired); c, a_i, RR and
 *   CREI are recomputed (AE is held fixed: times are not per sample). The bounds are the
 *   2.5th and 97.5th percentiles, linearly interpolated as numpy.percentile does. The
 *   draws come from Philox streams keyed by (seed, resample, run), so they do not depend
 *   on the thread count. RR involves a minimum over noisy accuracies, which resampling
 *   pulls down, so its interval sits slightly high and need not contain the estimate.
 * - Figures from a results.json use its full-precision accuracies; the same run's log
 *   line rounds them to two decimals, so the two can differ in the last digit.
 */
#include "metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../attacks/names.h"
#include "../core/rng.h"
#include "../io/file.h"
#include "../evaluate/beardlog.h"

const char *metrics_type_name(MetricsType t) { return t == METRICS_ROME ? "rome" : "beard"; }

int metrics_type_parse(const char *s, MetricsType *t) {
    if (!strcasecmp(s, "beard")) *t = METRICS_BEARD;
    else if (!strcasecmp(s, "rome")) *t = METRICS_ROME;
    else return -1;
    return 0;
}

const char *metrics_mode_name(int mode) { return mode == MODE_TARGETED ? "targeted" : "untargeted"; }

// ----------------------------------------------------------------------------
// formulas

int metrics_rr(double c, const double *a, int n, MetricsType type, double *rr, int *degenerate, Err *e) {
    *rr = NAN;
    if (degenerate) *degenerate = 0;
    if (n <= 0) return err_set(e, "no attack accuracies");
    if (!(c > 0)) return err_set(e, "clean accuracy is %g: no robustness ratio without correct samples", c);
    double sum = 0, mn = INFINITY;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i])) return err_set(e, "an attack accuracy is missing");
        sum += a[i];
        if (a[i] < mn) mn = a[i];
    }
    double mean = sum / n;
    if (c == mn) { // the toolkit's guard, before the type is even looked at
        if (degenerate) *degenerate = 1;
        *rr = 0.0;
        return 0;
    }
    if (type == METRICS_ROME) *rr = 100.0 * (1.0 - (c - mean) * (c - mn) / (c * c));
    else *rr = 100.0 * (1.0 - (c - mean) / (c - mn));
    return 0;
}

int metrics_ae(double tc, const double *t, int n, double *ae, int *degenerate, Err *e) {
    *ae = NAN;
    if (degenerate) *degenerate = 0;
    if (n <= 0) return err_set(e, "no attack times");
    if (isnan(tc)) return err_set(e, "no clean time");
    double sum = 0, mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (isnan(t[i])) return err_set(e, "an attack time is missing");
        sum += t[i];
        if (t[i] > mx) mx = t[i];
    }
    if (mx == tc) {
        if (degenerate) *degenerate = 1;
        *ae = 0.0;
        return 0;
    }
    *ae = 100.0 * (sum / n - tc) / (mx - tc);
    return 0;
}

double metrics_crei(double rr, double ae, double alpha) { return alpha * rr + (1.0 - alpha) * ae; }

// ----------------------------------------------------------------------------
// runs

static int excluded_targeted(const char *name) {
    static const char *const names[] = {"deepfool", "aa", "tpgd", "autoattack"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcasecmp(name, names[i])) return 1;
    return 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

// IPC from a file name: "..._<digits>_evaluation_log..." or "..._<digits>_results.json"
static void ipc_from_name(const char *path, char *ipc, size_t n) {
    const char *b = base_name(path);
    const char *tails[] = {"_evaluation_log", "_results"};
    for (int k = 0; k < 2; k++) {
        const char *t = strstr(b, tails[k]);
        if (!t) continue;
        const char *s = t;
        while (s > b && isdigit((unsigned char)s[-1])) s--;
        if (s < t && s > b && s[-1] == '_' && (size_t)(t - s) < n) {
            memcpy(ipc, s, t - s);
            ipc[t - s] = 0;
            return;
        }
    }
}

static void set_label(MetricsRun *r) {
    if (r->ipc[0]) snprintf(r->label, sizeof(r->label), "ipc_%s", r->ipc);
    else {
        snprintf(r->label, sizeof(r->label), "%.95s", base_name(r->path));
        char *dot = strrchr(r->label, '.');
        if (dot && dot != r->label) *dot = 0;
    }
}

// an accuracy in [0, 100] and a time >= 0 (NAN: absent, allowed for times); BEARD's
// toolkit takes whatever it finds, so an accuracy of 140% or a negative time would
// silently bend RR and AE
static int check_figures(const MetricsRun *r, const char *what, double acc, double secs, Err *e) {
    if (!(acc >= 0 && acc <= 100)) return err_set(e, "%s: %s accuracy %g is not a percentage in [0, 100]", r->path, what, acc);
    if (!isnan(secs) && !(secs >= 0 && isfinite(secs)))
        return err_set(e, "%s: %s time %g is not a duration (finite, >= 0)", r->path, what, secs);
    return 0;
}

static MetricsAttack *add_attack(MetricsRun *r, const char *name, Err *e) {
    if (r->n_attacks == METRICS_MAX_ATTACKS)
        return err_set(e, "%s: more than %d attacks in one run", r->path, METRICS_MAX_ATTACKS), NULL;
    // names go into Markdown tables, CSV and file names: the file-name rule keeps them plain
    if (file_name_check(name, "attack name", e)) return err_wrap(e, "%s", r->path), NULL;
    MetricsAttack *na = realloc(r->attacks, sizeof(MetricsAttack) * (r->n_attacks + 1));
    if (!na) return err_set(e, "out of memory"), NULL;
    r->attacks = na;
    MetricsAttack *a = &r->attacks[r->n_attacks++];
    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    for (int m = 0; m < 2; m++) a->acc[m] = a->seconds[m] = a->passes[m] = a->asr[m] = NAN;
    return a;
}

static void run_init(MetricsRun *r, const char *path) {
    memset(r, 0, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->clean_acc = NAN;
    r->clean_seconds[0] = r->clean_seconds[1] = NAN;
}

int metrics_run_from_log_text(MetricsRun *r, const char *text, const char *path, Err *e) {
    run_init(r, path);
    BeardLogFile f;
    if (beardlog_parse(&f, text, path, e)) return -1;
    if (f.n == 0) {
        beardlog_file_free(&f);
        return err_set(e, "%s: no BEARD result lines (\"<Attack> attack on <Method>: final acc is: ...\")", path);
    }
    r->n_duplicates = f.n_duplicates;
    r->n_unparsed = f.n_unparsed;
    for (int i = 0; i < f.n; i++) {
        const BeardLogLine *l = &f.lines[i];
        for (int m = 0; m < 2; m++) {
            char what[80];
            snprintf(what, sizeof(what), "line %d: %s %s", l->line, l->attack, metrics_mode_name(m));
            if (check_figures(r, what, l->acc[m], l->seconds[m], e)) {
                beardlog_file_free(&f);
                metrics_run_free(r);
                return -1;
            }
        }
        if (!r->method[0]) snprintf(r->method, sizeof(r->method), "%s", l->method);
        if (!r->dataset[0] && l->dataset[0]) snprintf(r->dataset, sizeof(r->dataset), "%s", l->dataset);
        if (!r->ipc[0] && l->ipc[0]) snprintf(r->ipc, sizeof(r->ipc), "%s", l->ipc);
        if (!strcasecmp(l->attack, "clean")) {
            r->has_clean = 1;
            r->clean_acc = l->acc[0];
            r->clean_seconds[0] = l->seconds[0];
            r->clean_seconds[1] = l->seconds[1];
            continue;
        }
        MetricsAttack *a = add_attack(r, l->attack, e);
        if (!a) {
            beardlog_file_free(&f);
            metrics_run_free(r);
            return -1;
        }
        for (int m = 0; m < 2; m++) {
            a->has[m] = 1;
            a->acc[m] = l->acc[m];
            a->seconds[m] = l->seconds[m];
        }
        a->excluded[MODE_TARGETED] = excluded_targeted(l->attack);
    }
    beardlog_file_free(&f);
    if (!r->ipc[0]) ipc_from_name(path, r->ipc, sizeof(r->ipc));
    set_label(r);
    if (!r->has_clean) {
        metrics_run_free(r);
        return err_set(e, "%s has no Clean line: RR needs the clean accuracy (put \"Clean\" first in test_attack)",
                       path);
    }
    return 0;
}

// ---- results.json

static double jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return v->valuestring;
    return NULL;
}

// a 0/1 array of length n into a new buffer; NULL (with e) when malformed
static unsigned char *jbits(const cJSON *arr, int n, const char *what, const char *path, Err *e) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) {
        err_set(e, "%s: %s must be an array of %d zeros and ones", path, what, n);
        return NULL;
    }
    unsigned char *b = malloc(n ? (size_t)n : 1);
    if (!b) return err_set(e, "out of memory"), NULL;
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || (v->valuedouble != 0 && v->valuedouble != 1)) {
            free(b);
            err_set(e, "%s: %s[%d] is not 0 or 1", path, what, i);
            return NULL;
        }
        b[i++] = v->valuedouble != 0;
    }
    return b;
}

// one attack result object (attack_result_json's shape) into a's mode m
static int take_result(MetricsRun *r, MetricsAttack *a, int m, const cJSON *res, Err *e) {
    a->has[m] = 1;
    a->acc[m] = jnum(res, "accuracy");
    a->seconds[m] = jnum(res, "seconds");
    a->passes[m] = jnum(res, "passes_per_sample");
    a->asr[m] = jnum(res, "asr");
    if (!isfinite(a->acc[m])) return err_set(e, "%s: %s (%s) has no accuracy", r->path, a->name, metrics_mode_name(m));
    char what[80];
    snprintf(what, sizeof(what), "%s %s", a->name, metrics_mode_name(m));
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(res, "seconds");
    if (sv && !cJSON_IsNumber(sv) && !cJSON_IsNull(sv)) return err_set(e, "%s: %s: \"seconds\" is not a number", r->path, what);
    if (check_figures(r, what, a->acc[m], a->seconds[m], e)) return -1;
    if (!isnan(a->passes[m]) && !(a->passes[m] >= 0)) return err_set(e, "%s: %s: passes per sample %g < 0", r->path, what, a->passes[m]);
    if (!isnan(a->asr[m]) && !(a->asr[m] >= 0 && a->asr[m] <= 100)) return err_set(e, "%s: %s: ASR %g is not in [0, 100]", r->path, what, a->asr[m]);
    if (!isfinite(a->seconds[m])) a->seconds[m] = NAN;
    if (!isfinite(a->passes[m])) a->passes[m] = NAN;
    if (!isfinite(a->asr[m])) a->asr[m] = NAN;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(res, "per_sample");
    if (ps && r->n > 0) {
        const cJSON *adv = cJSON_GetObjectItemCaseSensitive(ps, "adv_correct");
        if (adv && !(a->adv_ok[m] = jbits(adv, r->n, "per_sample.adv_correct", r->path, e))) return -1;
        const cJSON *cc = cJSON_GetObjectItemCaseSensitive(ps, "clean_correct");
        if (cc && !r->clean_ok && !(r->clean_ok = jbits(cc, r->n, "per_sample.clean_correct", r->path, e))) return -1;
    }
    if (!r->has_clean) { // `beard attack --json` has no clean block: take it from the results
        double c = jnum(res, "clean_accuracy");
        if (isfinite(c)) r->has_clean = 1, r->clean_acc = c;
    }
    return 0;
}

static MetricsAttack *find_attack(MetricsRun *r, const char *name) {
    for (int i = 0; i < r->n_attacks; i++)
        if (!strcmp(r->attacks[i].name, name)) return &r->attacks[i];
    return NULL;
}

int metrics_run_from_json(MetricsRun *r, const cJSON *root, const char *path, Err *e) {
    run_init(r, path);
    r->from_json = 1;
    if (!cJSON_IsObject(root)) return err_set(e, "%s: not a beard results.json (the top level is not an object)", path);
    const char *s;
    if ((s = jstr(root, "method"))) snprintf(r->method, sizeof(r->method), "%s", s);
    if ((s = jstr(root, "dataset"))) snprintf(r->dataset, sizeof(r->dataset), "%s", s);
    const cJSON *ipc = cJSON_GetObjectItemCaseSensitive(root, "ipc");
    if (cJSON_IsString(ipc)) snprintf(r->ipc, sizeof(r->ipc), "%s", ipc->valuestring);
    else if (cJSON_IsNumber(ipc) && ipc->valuedouble >= 1 && ipc->valuedouble <= 1e6 && ipc->valuedouble == floor(ipc->valuedouble))
        snprintf(r->ipc, sizeof(r->ipc), "%d", ipc->valueint);
    else if (ipc && !cJSON_IsNull(ipc)) {
        err_set(e, "%s: \"ipc\" is not a whole number of images per class", path);
        goto fail;
    }
    // these name output files and table rows: plain names only (the file-name rule)
    if ((r->method[0] && file_name_check(r->method, "\"method\"", e)) ||
        (r->dataset[0] && file_name_check(r->dataset, "\"dataset\"", e)) || (r->ipc[0] && file_name_check(r->ipc, "\"ipc\"", e))) {
        err_wrap(e, "%s", path);
        goto fail;
    }
    double n = jnum(root, "n");
    r->n = !isnan(n) && n > 0 && n < 1e9 ? (int)n : 0;

    const cJSON *clean = cJSON_GetObjectItemCaseSensitive(root, "clean");
    if (cJSON_IsObject(clean)) {
        r->clean_acc = jnum(clean, "accuracy");
        r->has_clean = isfinite(r->clean_acc);
        if (r->has_clean && check_figures(r, "clean", r->clean_acc, NAN, e)) goto fail;
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(clean, "seconds");
        for (int m = 0; m < 2; m++) {
            r->clean_seconds[m] = jnum(sec, metrics_mode_name(m));
            if (!isfinite(r->clean_seconds[m])) r->clean_seconds[m] = NAN;
        }
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(clean, "per_sample");
        const cJSON *cc = ps ? cJSON_GetObjectItemCaseSensitive(ps, "correct") : NULL;
        if (cc && r->n > 0 && !(r->clean_ok = jbits(cc, r->n, "clean.per_sample.correct", path, e))) goto fail;
    }
    const cJSON *attacks = cJSON_GetObjectItemCaseSensitive(root, "attacks");
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (cJSON_IsArray(attacks)) { // beard evaluate
        const cJSON *o;
        cJSON_ArrayForEach(o, attacks) {
            const char *name = jstr(o, "name");
            if (!name) {
                err_set(e, "%s: an entry of \"attacks\" has no name", path);
                goto fail;
            }
            if (cJSON_GetObjectItemCaseSensitive(o, "skipped")) continue;
            MetricsAttack *a = add_attack(r, name, e);
            if (!a) goto fail;
            for (int m = 0; m < 2; m++) {
                const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, metrics_mode_name(m));
                if (cJSON_IsObject(res) && take_result(r, a, m, res, e)) goto fail;
            }
            a->excluded[MODE_TARGETED] = excluded_targeted(name);
        }
    } else if (cJSON_IsArray(results)) { // beard attack --json: one object per attack and mode
        double c = jnum(root, "clean_accuracy");
        if (isfinite(c)) r->has_clean = 1, r->clean_acc = c;
        const cJSON *o;
        int n_results = 0;
        cJSON_ArrayForEach(o, results) {
            const char *name = jstr(o, "attack");
            const cJSON *tg = cJSON_GetObjectItemCaseSensitive(o, "targeted");
            if (!name || !cJSON_IsBool(tg)) {
                err_set(e, "%s: a result has no \"attack\" or \"targeted\"", path);
                goto fail;
            }
            if (++n_results > 2 * METRICS_MAX_ATTACKS) {
                err_set(e, "%s: more than %d results", path, 2 * METRICS_MAX_ATTACKS);
                goto fail;
            }
            MetricsAttack *a = find_attack(r, name);
            if (!a && !(a = add_attack(r, name, e))) goto fail;
            if (take_result(r, a, cJSON_IsTrue(tg) ? MODE_TARGETED : MODE_UNTARGETED, o, e)) goto fail;
            a->excluded[MODE_TARGETED] = excluded_targeted(name);
        }
    } else {
        err_set(e, "%s: not a beard results.json (no \"attacks\" or \"results\" array)", path);
        goto fail;
    }
    if (!r->ipc[0]) ipc_from_name(path, r->ipc, sizeof(r->ipc));
    set_label(r);
    if (!r->has_clean) {
        err_set(e, "%s has no clean accuracy: RR needs it", path);
        goto fail;
    }
    if (check_figures(r, "clean", r->clean_acc, r->clean_seconds[0], e) ||
        check_figures(r, "clean", r->clean_acc, r->clean_seconds[1], e))
        goto fail;
    return 0;
fail:
    metrics_run_free(r);
    return -1;
}

int metrics_run_load(MetricsRun *r, const char *path, Err *e) {
    run_init(r, path);
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, (size_t)1 << 31, &buf, &n, e)) return -1;
    const char *t = (const char *)buf;
    while (*t && isspace((unsigned char)*t)) t++;
    int rc;
    if (*t == '{') {
        cJSON *root = cJSON_ParseWithLength((const char *)buf, n);
        if (!root) {
            free(buf);
            return err_set(e, "%s: invalid JSON", path);
        }
        rc = metrics_run_from_json(r, root, path, e);
        cJSON_Delete(root);
    } else if (memchr(buf, 0, n)) {
        rc = err_set(e, "%s is neither a BEARD log nor a results.json", path);
    } else {
        rc = metrics_run_from_log_text(r, (const char *)buf, path, e);
    }
    free(buf);
    return rc;
}

int metrics_runs_from_blackbox_text(MetricsRun *runs, int max, int *n, const char *text, const char *path,
                                    int all_attacks, char *dropped, size_t dropped_len, Err *e) {
    *n = 0;
    if (dropped && dropped_len) dropped[0] = 0;
    BeardLogFile f;
    if (beardlog_parse(&f, text, path, e)) return -1;
    int black = 0;
    for (int i = 0; i < f.n; i++) black |= f.lines[i].n_eval > 0;
    if (!black) {
        beardlog_file_free(&f);
        return 1;
    }
    // the models, in the order of the first black-box line that names them
    char models[BEARDLOG_MAX_MODELS][32];
    int nm = 0;
    for (int i = 0; i < f.n; i++)
        for (int k = 0; k < f.lines[i].n_eval; k++) {
            int seen = 0;
            for (int j = 0; j < nm; j++) seen |= !strcmp(models[j], f.lines[i].eval_names[k]);
            if (!seen && nm < BEARDLOG_MAX_MODELS) snprintf(models[nm++], sizeof(models[0]), "%s", f.lines[i].eval_names[k]);
        }
    if (nm > max) {
        beardlog_file_free(&f);
        return err_set(e, "%s: %d models (at most %d)", path, nm, max);
    }
    static const char *const order[] = {"FGSM", "PGD", "PGD_L2", "Deepfool", "CW", "AA"};
    int rc = 0;
    size_t cap = 4096 + (size_t)f.n * 512, dl = 0;
    char *wb = malloc(cap);
    if (!wb) rc = err_set(e, "out of memory");
    for (int m = 0; m < nm && !rc; m++) {
        // the converted white-box log of model m (only the fields the reader uses)
        size_t off = 0;
        const BeardLogLine *lines[64];
        int nl = 0;
        for (int i = 0; i < f.n && nl < 64; i++) {
            const BeardLogLine *l = &f.lines[i];
            int k = -1;
            for (int j = 0; j < l->n_eval; j++)
                if (!strcmp(l->eval_names[j], models[m])) k = j;
            if (k < 0) continue; // the converter skips lines without this model
            lines[nl++] = l;
        }
        // Clean, then the converter's six in its order, then (all_attacks) the others in log order
        const BeardLogLine *seq[64];
        int ns = 0;
        for (int i = 0; i < nl; i++)
            if (!strcasecmp(lines[i]->attack, "clean")) seq[ns++] = lines[i];
        for (int o = 0; o < 6; o++)
            for (int i = 0; i < nl; i++) {
                const char *nm2 = !strcmp(lines[i]->attack, "C&W") ? "CW" : !strcmp(lines[i]->attack, "AutoAttack") ? "AA"
                                                                                                                 : lines[i]->attack;
                if (!strcmp(nm2, order[o])) seq[ns++] = lines[i];
            }
        for (int i = 0; i < nl; i++) {
            const char *nm2 = lines[i]->attack;
            int known = !strcasecmp(nm2, "clean") || !strcmp(nm2, "C&W") || !strcmp(nm2, "AutoAttack");
            for (int o = 0; o < 6; o++) known |= !strcmp(nm2, order[o]);
            if (known) continue;
            if (all_attacks) seq[ns++] = lines[i];
            else if (m == 0 && dropped && !strstr(dropped, nm2) && dl + strlen(nm2) + 3 < dropped_len)
                dl += (size_t)snprintf(dropped + dl, dropped_len - dl, "%s%s", dl ? ", " : "", nm2);
        }
        for (int i = 0; i < ns; i++) {
            const BeardLogLine *l = seq[i];
            const char *name = !strcmp(l->attack, "C&W") ? "CW" : !strcmp(l->attack, "AutoAttack") ? "AA" : l->attack;
            int k = 0;
            for (int j = 0; j < l->n_eval; j++)
                if (!strcmp(l->eval_names[j], models[m])) k = j;
            char line[512];
            int w = snprintf(line, sizeof(line),
                             "x - INFO - %s attack on %s: final acc is:  target_attack: %.2f +- 0.00, attack time is "
                             "%.2f; non_target_attack: %.2f +- 0.00, attack time is %.2f, dataset: %s, IPC: %s\n",
                             name, models[m], l->eval_acc[0][k] * 100, l->seconds[0], l->eval_acc[1][k] * 100,
                             l->seconds[1], l->dataset, l->ipc);
            if (w > 0 && off + (size_t)w + 1 < cap) memcpy(wb + off, line, (size_t)w + 1), off += (size_t)w;
        }
        if (off == 0 && cap) wb[0] = 0;
        char label[1100];
        snprintf(label, sizeof(label), "%s [%s]", path, models[m]);
        rc = metrics_run_from_log_text(&runs[m], wb, label, e);
        if (!rc) (*n)++;
    }
    if (rc)
        for (int i = 0; i < *n; i++) metrics_run_free(&runs[i]);
    free(wb);
    beardlog_file_free(&f);
    return rc ? -1 : 0;
}

int metrics_runs_from_blackbox_log(MetricsRun *runs, int max, int *n, const char *path, Err *e) {
    uint8_t *buf;
    size_t len;
    if (file_read_all(path, (size_t)1 << 30, &buf, &len, e)) return -1;
    char *t = realloc(buf, len + 1);
    if (!t) {
        free(buf);
        return err_set(e, "out of memory");
    }
    t[len] = 0;
    int rc = metrics_runs_from_blackbox_text(runs, max, n, t, path, 0, NULL, 0, e);
    free(t);
    return rc;
}

void metrics_run_free(MetricsRun *r) {
    for (int i = 0; i < r->n_attacks; i++) free(r->attacks[i].adv_ok[0]), free(r->attacks[i].adv_ok[1]);
    free(r->attacks);
    free(r->clean_ok);
    r->attacks = NULL;
    r->clean_ok = NULL;
    r->n_attacks = 0;
}

// ----------------------------------------------------------------------------
// computing

void metrics_options_default(MetricsOptions *o) {
    memset(o, 0, sizeof(*o));
    o->type = METRICS_BEARD;
    o->alpha = 0.5;
    o->bootstrap = 1000;
    o->seed = 0;
}

static int included(const MetricsAttack *a, int m) { return a->has[m] && !a->excluded[m]; }

static double run_clean_time(const MetricsRun *r) {
    double a = r->clean_seconds[0], b = r->clean_seconds[1];
    if (isnan(a)) return b;
    if (isnan(b)) return a;
    return a < b ? a : b;
}

static void note_add(char *note, size_t n, const char *s) {
    if (strstr(note, s)) return;
    size_t len = strlen(note);
    snprintf(note + len, n - len, "%s%s", len ? "; " : "", s);
}

// One pooled set of figures: which attacks of which runs (sel[r][i] != 0) enter.
typedef struct {
    const MetricsRun *runs;
    int n_runs;
    const unsigned char *const *sel; // [run][attack]
    int mode;
    int base; // index of runs[0] among all runs (keys the resampling streams)
} Pooled;

static double percentile(double *v, int n, double q) { // v sorted; numpy's linear interpolation
    if (n == 0) return NAN;
    double pos = q * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_has_samples(const MetricsRun *r, const unsigned char *sel, int mode) {
    if (!r->clean_ok || r->n <= 0) return 0;
    for (int i = 0; i < r->n_attacks; i++)
        if (sel[i] && !r->attacks[i].adv_ok[mode]) return 0;
    return 1;
}

// the Philox stream of resample b of run r: the same draws wherever run r is resampled
static void resample_rng(Rng *g, const MetricsOptions *o, int b, int r) {
    rng_init(g, o->seed, (uint64_t)b << 24 | (uint64_t)r);
}

// Bootstrap of RR and CREI for a pool (AE held fixed); leaves the bounds untouched when
// some pooled attack lacks per-sample data.
static void bootstrap_pool(const Pooled *p, const MetricsOptions *o, double ae, double *rr_lo, double *rr_hi,
                           double *crei_lo, double *crei_hi) {
    int B = o->bootstrap, R = p->n_runs, m = p->mode;
    if (B <= 0) return;
    int total = 0, max_att = 0;
    for (int r = 0; r < R; r++) {
        int k = 0;
        for (int i = 0; i < p->runs[r].n_attacks; i++) k += p->sel[r][i] != 0;
        if (k && !run_has_samples(&p->runs[r], p->sel[r], m)) return;
        total += k;
        if (p->runs[r].n_attacks > max_att) max_att = p->runs[r].n_attacks;
    }
    if (total == 0) return;
    double *rr = malloc(sizeof(double) * B), *cr = malloc(sizeof(double) * B);
    if (!rr || !cr) {
        free(rr), free(cr);
        return;
    }
    int ok = 1;
#pragma omp parallel for schedule(dynamic, 8) reduction(&& : ok)
    for (int b = 0; b < B; b++) {
        double *pool = malloc(sizeof(double) * total);
        long *cnt = malloc(sizeof(long) * (max_att + 1));
        if (!pool || !cnt) {
            free(pool), free(cnt);
            ok = 0;
            continue;
        }
        int k = 0, used = 0;
        double csum = 0;
        for (int r = 0; r < R; r++) {
            const MetricsRun *run = &p->runs[r];
            const unsigned char *sel = p->sel[r];
            int any = 0;
            for (int i = 0; i < run->n_attacks; i++) any |= sel[i] != 0;
            if (!any) continue;
            Rng g;
            resample_rng(&g, o, b, p->base + r);
            memset(cnt, 0, sizeof(long) * (max_att + 1));
            for (int j = 0; j < run->n; j++) {
                int s = (int)rng_below(&g, (uint32_t)run->n);
                cnt[max_att] += run->clean_ok[s];
                for (int i = 0; i < run->n_attacks; i++)
                    if (sel[i]) cnt[i] += run->attacks[i].adv_ok[m][s];
            }
            csum += 100.0 * cnt[max_att] / run->n;
            used++;
            for (int i = 0; i < run->n_attacks; i++)
                if (sel[i]) pool[k++] = 100.0 * cnt[i] / run->n;
        }
        double v;
        if (metrics_rr(csum / used, pool, k, o->type, &v, NULL, NULL)) v = NAN;
        rr[b] = v;
        cr[b] = metrics_crei(v, ae, o->alpha);
        free(pool), free(cnt);
    }
    int nan = 0;
    for (int b = 0; b < B; b++) nan |= isnan(rr[b]);
    if (ok && !nan) {
        qsort(rr, B, sizeof(double), cmp_double);
        *rr_lo = percentile(rr, B, 0.025), *rr_hi = percentile(rr, B, 0.975);
        if (!isnan(ae)) {
            qsort(cr, B, sizeof(double), cmp_double);
            *crei_lo = percentile(cr, B, 0.025), *crei_hi = percentile(cr, B, 0.975);
        }
    }
    free(rr), free(cr);
}

// Bootstrap intervals of every attack accuracy of run r in mode m that has per-sample
// data (the same resamples as bootstrap_pool uses for that run).
static void bootstrap_accuracies(const MetricsRun *run, int r, int m, const MetricsOptions *o, MetricsAttackStats *st) {
    int B = o->bootstrap, A = run->n_attacks;
    if (B <= 0 || !run->clean_ok || run->n <= 0 || A == 0) return;
    int any = 0;
    for (int i = 0; i < A; i++) any |= run->attacks[i].adv_ok[m] != NULL;
    if (!any) return;
    double *v = malloc(sizeof(double) * (size_t)B * A);
    if (!v) return;
    int ok = 1;
#pragma omp parallel for schedule(dynamic, 8) reduction(&& : ok)
    for (int b = 0; b < B; b++) {
        long *cnt = calloc(A, sizeof(long));
        if (!cnt) {
            ok = 0;
            continue;
        }
        Rng g;
        resample_rng(&g, o, b, r);
        for (int j = 0; j < run->n; j++) {
            int s = (int)rng_below(&g, (uint32_t)run->n);
            for (int i = 0; i < A; i++)
                if (run->attacks[i].adv_ok[m]) cnt[i] += run->attacks[i].adv_ok[m][s];
        }
        for (int i = 0; i < A; i++) v[(size_t)i * B + b] = 100.0 * cnt[i] / run->n;
        free(cnt);
    }
    for (int i = 0; ok && i < A; i++) {
        if (!run->attacks[i].adv_ok[m]) continue;
        double *w = v + (size_t)i * B;
        qsort(w, B, sizeof(double), cmp_double);
        st[i * 2 + m].acc_lo = percentile(w, B, 0.025);
        st[i * 2 + m].acc_hi = percentile(w, B, 0.975);
    }
    free(v);
}

static void figures_init(MetricsFigures *f) {
    memset(f, 0, sizeof(*f));
    f->rr = f->ae = f->crei = f->ae_passes = f->crei_passes = NAN;
    f->rr_lo = f->rr_hi = f->crei_lo = f->crei_hi = NAN;
    f->clean_acc = f->clean_seconds = NAN;
}

// RR/AE/CREI of a pool, with their bootstrap intervals
static void pool_figures(const Pooled *p, const MetricsOptions *o, MetricsFigures *f) {
    figures_init(f);
    int total = 0;
    for (int r = 0; r < p->n_runs; r++)
        for (int i = 0; i < p->runs[r].n_attacks; i++) total += p->sel[r][i] != 0;
    if (total == 0) {
        snprintf(f->note, sizeof(f->note), "no %s attack results", metrics_mode_name(p->mode));
        return;
    }
    double *acc = malloc(sizeof(double) * total), *t = malloc(sizeof(double) * total),
           *pa = malloc(sizeof(double) * total);
    if (!acc || !t || !pa) {
        free(acc), free(t), free(pa);
        snprintf(f->note, sizeof(f->note), "out of memory");
        return;
    }
    int k = 0, runs_used = 0, passes_ok = 1, times_ok = 1;
    double csum = 0, tsum = 0;
    for (int r = 0; r < p->n_runs; r++) {
        const MetricsRun *run = &p->runs[r];
        int any = 0;
        for (int i = 0; i < run->n_attacks; i++) {
            if (!p->sel[r][i]) continue;
            const MetricsAttack *a = &run->attacks[i];
            acc[k] = a->acc[p->mode];
            t[k] = a->seconds[p->mode];
            pa[k] = a->passes[p->mode] + 1.0;
            if (isnan(t[k])) times_ok = 0;
            if (isnan(a->passes[p->mode])) passes_ok = 0;
            k++;
            any = 1;
        }
        if (!any) continue;
        runs_used++;
        csum += run->clean_acc;
        double tc = run_clean_time(run);
        if (isnan(tc)) times_ok = 0;
        tsum += tc;
    }
    f->n_attacks = k;
    f->clean_acc = csum / runs_used;
    f->clean_seconds = times_ok ? tsum / runs_used : NAN;
    Err e;
    int deg = 0;
    if (metrics_rr(f->clean_acc, acc, k, o->type, &f->rr, &deg, &e)) note_add(f->note, sizeof(f->note), e.msg);
    else if (deg) note_add(f->note, sizeof(f->note), "clean accuracy equals the lowest attack accuracy: RR is 0 (BEARD's rule)");
    if (!times_ok) note_add(f->note, sizeof(f->note), "no clean or attack time: AE undefined");
    else if (metrics_ae(f->clean_seconds, t, k, &f->ae, &deg, &e)) note_add(f->note, sizeof(f->note), e.msg);
    else if (deg) note_add(f->note, sizeof(f->note), "the slowest attack takes the clean time: AE is 0 (BEARD's rule)");
    if (passes_ok && !metrics_ae(1.0, pa, k, &f->ae_passes, &deg, NULL))
        f->crei_passes = isnan(f->rr) ? NAN : metrics_crei(f->rr, f->ae_passes, o->alpha);
    f->crei = isnan(f->rr) || isnan(f->ae) ? NAN : metrics_crei(f->rr, f->ae, o->alpha);
    if (k == 1 && !isnan(f->rr))
        note_add(f->note, sizeof(f->note), "a single attack: RR (beard) and AE are 0 and 100 by construction");
    if (!isnan(f->rr)) bootstrap_pool(p, o, f->ae, &f->rr_lo, &f->rr_hi, &f->crei_lo, &f->crei_hi);
    free(acc), free(t), free(pa);
}

static int report_note(MetricsReport *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int report_note(MetricsReport *rep, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (int i = 0; i < rep->n_notes; i++)
        if (!strcmp(rep->notes[i], buf)) return 0;
    char **nn = realloc(rep->notes, sizeof(char *) * (rep->n_notes + 1));
    if (!nn) return -1;
    rep->notes = nn;
    rep->notes[rep->n_notes] = xstrdup(buf);
    if (!rep->notes[rep->n_notes]) return -1;
    rep->n_notes++;
    return 0;
}

// one attack under two spellings (a BEARD log's Deepfool, a results.json's DeepFool):
// pooled as one (attacks/names.h)
static int same_attack(const char *a, const char *b) {
    if (!strcmp(a, b)) return 1;
    char ka[96], kb[96];
    return !strcmp(attack_name_key(a, ka, sizeof(ka)), attack_name_key(b, kb, sizeof(kb)));
}

int metrics_compute(MetricsReport *rep, const MetricsRun *runs, int n_runs, const MetricsOptions *opt, Err *e) {
    memset(rep, 0, sizeof(*rep));
    rep->opt = *opt;
    rep->runs = runs;
    rep->n_runs = n_runs;
    if (n_runs <= 0) return err_set(e, "no runs to compute metrics from");
    if (!(opt->alpha >= 0 && opt->alpha <= 1)) return err_set(e, "alpha must be in [0, 1], not %g", opt->alpha);
    rep->per_run = calloc(n_runs, sizeof(*rep->per_run));
    rep->stats = calloc(n_runs, sizeof(*rep->stats));
    unsigned char **sel = calloc(n_runs, sizeof(unsigned char *));
    int rc = -1;
    rep->labels = calloc(n_runs, sizeof(*rep->labels));
    if (!rep->per_run || !rep->stats || !sel || !rep->labels) goto oom;
    // run labels: "ipc_10", or the file name where two runs would share one
    for (int r = 0; r < n_runs; r++) {
        int clash = 0, clash2 = 0;
        for (int q = 0; q < n_runs; q++) {
            clash |= q != r && !strcmp(runs[q].label, runs[r].label);
            clash2 |= q != r && !strcmp(base_name(runs[q].path), base_name(runs[r].path));
        }
        const char *l = !clash ? runs[r].label : !clash2 ? base_name(runs[r].path) : runs[r].path;
        size_t len = strlen(l);
        // the end of a long path is the informative part
        snprintf(rep->labels[r], sizeof(rep->labels[r]), "%.127s", len < sizeof(rep->labels[r]) ? l : l + len - 127);
    }
    for (int r = 0; r < n_runs; r++) {
        rep->stats[r] = calloc(runs[r].n_attacks * 2 + 1, sizeof(MetricsAttackStats));
        sel[r] = calloc(runs[r].n_attacks + 1, 1);
        if (!rep->stats[r] || !sel[r]) goto oom;
    }

    // runs that cannot be pooled: BEARD's figures are per method and dataset, over one run
    // per IPC. Pooling BACON with DM under BACON's name, or counting a log and its own
    // results.json as two runs, would give figures that look right and are not.
    for (int r = 1; r < n_runs; r++) {
        if (strcmp(runs[r].method, runs[0].method)) {
            err_set(e, "the runs mix methods (%s in %s, %s in %s): give one method's runs at a time", runs[0].method,
                    runs[0].path, runs[r].method, runs[r].path);
            goto done;
        }
        if (runs[r].dataset[0] && runs[0].dataset[0] && strcasecmp(runs[r].dataset, runs[0].dataset)) {
            err_set(e, "the runs mix datasets (%s in %s, %s in %s): give one dataset's runs at a time", runs[0].dataset,
                    runs[0].path, runs[r].dataset, runs[r].path);
            goto done;
        }
    }
    for (int r = 0; r < n_runs; r++)
        for (int q = 0; q < r; q++)
            if (runs[r].ipc[0] && !strcmp(runs[r].ipc, runs[q].ipc)) {
                err_set(e, "%s and %s are both IPC %s of %s: one run per IPC (a BEARD log and the results.json of the "
                           "same evaluation are one run; give either)",
                        runs[q].path, runs[r].path, runs[r].ipc, runs[r].method[0] ? runs[r].method : "the method");
                goto done;
            }
    for (int r = 0; r < n_runs; r++) {
        if (runs[r].n_duplicates)
            report_note(rep, "%s: %d result line(s) superseded by a later line for the same attack (a rerun); the last one counts",
                        runs[r].path, runs[r].n_duplicates);
        if (runs[r].n_unparsed)
            report_note(rep, "%s: %d line(s) mention \"attack on\" but are not result lines; they were not counted",
                        runs[r].path, runs[r].n_unparsed);
        for (int i = 0; i < runs[r].n_attacks; i++)
            for (int m = 0; m < 2; m++)
                if (included(&runs[r].attacks[i], m) && runs[r].attacks[i].acc[m] > runs[r].clean_acc)
                    report_note(rep, "%s: %s %s accuracy %.2f is above the clean accuracy %.2f", rep->labels[r],
                                runs[r].attacks[i].name, metrics_mode_name(m), runs[r].attacks[i].acc[m],
                                runs[r].clean_acc);
    }

    // per run, with the attack statistics
    for (int r = 0; r < n_runs; r++) {
        const MetricsRun *run = &runs[r];
        for (int m = 0; m < 2; m++) {
            for (int i = 0; i < run->n_attacks; i++) sel[r][i] = included(&run->attacks[i], m);
            const unsigned char *sp[1] = {sel[r]};
            Pooled p = {run, 1, sp, m, r};
            pool_figures(&p, opt, &rep->per_run[r][m]);
            for (int i = 0; i < run->n_attacks; i++) {
                const MetricsAttack *a = &run->attacks[i];
                MetricsAttackStats *st = &rep->stats[r][i * 2 + m];
                st->drop = st->asr = st->acc_lo = st->acc_hi = NAN;
                if (!a->has[m]) continue;
                st->drop = run->clean_acc - a->acc[m];
                st->asr = a->asr[m];
                if (isnan(st->asr) && run->clean_ok && a->adv_ok[m]) {
                    long cc = 0, s = 0;
                    for (int j = 0; j < run->n; j++) cc += run->clean_ok[j], s += run->clean_ok[j] && !a->adv_ok[m][j];
                    st->asr = cc ? 100.0 * s / cc : 0.0;
                }
            }
            bootstrap_accuracies(run, r, m, opt, rep->stats[r]);
        }
    }

    // combined: every included attack of every run
    for (int m = 0; m < 2; m++) {
        for (int r = 0; r < n_runs; r++)
            for (int i = 0; i < runs[r].n_attacks; i++) sel[r][i] = included(&runs[r].attacks[i], m);
        Pooled p = {runs, n_runs, (const unsigned char *const *)sel, m, 0};
        pool_figures(&p, opt, &rep->combined[m]);
    }

    // single adversary: one attack name over the runs
    for (int r = 0; r < n_runs; r++)
        for (int i = 0; i < runs[r].n_attacks; i++) {
            int seen = 0;
            for (int s = 0; s < rep->n_single; s++) seen |= same_attack(rep->single[s].name, runs[r].attacks[i].name);
            if (seen) continue;
            MetricsSingle *ns = realloc(rep->single, sizeof(MetricsSingle) * (rep->n_single + 1));
            if (!ns) goto oom;
            rep->single = ns;
            memset(&ns[rep->n_single], 0, sizeof(MetricsSingle));
            snprintf(ns[rep->n_single].name, sizeof(ns[0].name), "%s", runs[r].attacks[i].name);
            rep->n_single++;
        }
    for (int s = 0; s < rep->n_single; s++)
        for (int m = 0; m < 2; m++) {
            int n_in = 0;
            for (int r = 0; r < n_runs; r++)
                for (int i = 0; i < runs[r].n_attacks; i++) {
                    sel[r][i] = same_attack(runs[r].attacks[i].name, rep->single[s].name) && included(&runs[r].attacks[i], m);
                    n_in += sel[r][i];
                }
            Pooled p = {runs, n_runs, (const unsigned char *const *)sel, m, 0};
            pool_figures(&p, opt, &rep->single[s].fig[m]);
            int n_excl = 0;
            for (int r = 0; r < n_runs; r++)
                for (int i = 0; i < runs[r].n_attacks; i++)
                    n_excl += same_attack(runs[r].attacks[i].name, rep->single[s].name) && runs[r].attacks[i].excluded[m];
            if (n_in == 0 && n_excl) {
                MetricsFigures *f = &rep->single[s].fig[m];
                char name[32];
                memcpy(name, rep->single[s].name, sizeof(name));
                snprintf(f->note, sizeof(f->note), "BEARD has no %s %s: left out of the metrics", metrics_mode_name(m), name);
            }
            if (n_in == 1) {
                MetricsFigures *f = &rep->single[s].fig[m];
                f->note[0] = 0;
                note_add(f->note, sizeof(f->note), "one run: single-adversary figures need two or more IPCs (degenerate by construction)");
            }
        }
    rc = 0;
    goto done;
oom:
    err_set(e, "out of memory");
done:
    if (sel)
        for (int r = 0; r < n_runs; r++) free(sel[r]);
    free(sel);
    if (rc) metrics_report_free(rep);
    return rc;
}

void metrics_report_free(MetricsReport *rep) {
    if (rep->stats)
        for (int r = 0; r < rep->n_runs; r++) free(rep->stats[r]);
    free(rep->stats);
    free(rep->per_run);
    free(rep->labels);
    free(rep->single);
    for (int i = 0; i < rep->n_notes; i++) xfree(rep->notes[i]);
    free(rep->notes);
    memset(rep, 0, sizeof(*rep));
}

// ----------------------------------------------------------------------------
// output

static cJSON *jval(double v, int digits) {
    if (isnan(v) || isinf(v)) return cJSON_CreateNull();
    double p = pow(10, digits);
    return cJSON_CreateNumber(round(v * p) / p);
}

static cJSON *jpair(double lo, double hi) {
    if (isnan(lo) || isnan(hi)) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, jval(lo, 4));
    cJSON_AddItemToArray(a, jval(hi, 4));
    return a;
}

static cJSON *figures_json(const MetricsFigures *f, const char *rr, const char *ae, const char *crei) {
    char k[32];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, rr, jval(f->rr, 4));
    cJSON_AddItemToObject(o, ae, jval(f->ae, 4));
    cJSON_AddItemToObject(o, crei, jval(f->crei, 4));
    snprintf(k, sizeof(k), "%s_passes", ae);
    cJSON_AddItemToObject(o, k, jval(f->ae_passes, 4));
    snprintf(k, sizeof(k), "%s_passes", crei);
    cJSON_AddItemToObject(o, k, jval(f->crei_passes, 4));
    snprintf(k, sizeof(k), "%s_ci95", rr);
    cJSON_AddItemToObject(o, k, jpair(f->rr_lo, f->rr_hi));
    snprintf(k, sizeof(k), "%s_ci95", crei);
    cJSON_AddItemToObject(o, k, jpair(f->crei_lo, f->crei_hi));
    cJSON_AddItemToObject(o, "clean_accuracy", jval(f->clean_acc, 4));
    cJSON_AddItemToObject(o, "clean_time", jval(f->clean_seconds, 4));
    cJSON_AddNumberToObject(o, "n_attacks", f->n_attacks);
    if (f->note[0]) cJSON_AddStringToObject(o, "note", f->note);
    return o;
}

cJSON *metrics_report_json(const MetricsReport *rep) {
    cJSON *root = cJSON_CreateObject();
    cJSON *cfg = cJSON_AddObjectToObject(root, "configuration");
    cJSON_AddStringToObject(cfg, "metrics_type", metrics_type_name(rep->opt.type));
    cJSON_AddNumberToObject(cfg, "alpha", rep->opt.alpha);
    cJSON_AddNumberToObject(cfg, "bootstrap", rep->opt.bootstrap);
    cJSON_AddNumberToObject(cfg, "seed", (double)rep->opt.seed);
    cJSON_AddStringToObject(cfg, "version", BEARD_VERSION);
    cJSON *inputs = cJSON_AddArrayToObject(cfg, "inputs");
    for (int r = 0; r < rep->n_runs; r++) cJSON_AddItemToArray(inputs, cJSON_CreateString(rep->runs[r].path));

    cJSON *ind = cJSON_AddObjectToObject(root, "individual_results");
    for (int r = 0; r < rep->n_runs; r++) {
        const MetricsRun *run = &rep->runs[r];
        const char *key = rep->labels[r];
        if (cJSON_GetObjectItemCaseSensitive(ind, key)) key = run->path;
        cJSON *o = cJSON_AddObjectToObject(ind, key);
        cJSON_AddStringToObject(o, "file", run->path);
        cJSON_AddStringToObject(o, "method", run->method);
        cJSON_AddStringToObject(o, "dataset", run->dataset);
        cJSON_AddStringToObject(o, "ipc", run->ipc);
        for (int m = 0; m < 2; m++) {
            cJSON *f = figures_json(&rep->per_run[r][m], "RR", "AE", "CREI");
            cJSON *acc = cJSON_CreateArray(), *tim = cJSON_CreateArray();
            for (int i = 0; i < run->n_attacks; i++)
                if (included(&run->attacks[i], m)) {
                    cJSON_AddItemToArray(acc, jval(run->attacks[i].acc[m], 4));
                    cJSON_AddItemToArray(tim, jval(run->attacks[i].seconds[m], 4));
                }
            cJSON_AddItemToObject(f, "attack_accuracies", acc);
            cJSON_AddItemToObject(f, "attack_times", tim);
            cJSON_AddItemToObject(o, metrics_mode_name(m), f);
        }
    }
    cJSON *comb = cJSON_AddObjectToObject(root, "combined_results");
    for (int m = 0; m < 2; m++) cJSON_AddItemToObject(comb, metrics_mode_name(m), figures_json(&rep->combined[m], "RRM", "AEM", "CREIM"));
    cJSON *single = cJSON_AddObjectToObject(root, "single_adversary");
    for (int s = 0; s < rep->n_single; s++) {
        cJSON *o = cJSON_AddObjectToObject(single, rep->single[s].name);
        for (int m = 0; m < 2; m++)
            cJSON_AddItemToObject(o, metrics_mode_name(m), figures_json(&rep->single[s].fig[m], "RRS", "AES", "CREIS"));
    }
    cJSON *att = cJSON_AddArrayToObject(root, "attacks");
    for (int r = 0; r < rep->n_runs; r++)
        for (int i = 0; i < rep->runs[r].n_attacks; i++)
            for (int m = 0; m < 2; m++) {
                const MetricsAttack *a = &rep->runs[r].attacks[i];
                const MetricsAttackStats *st = &rep->stats[r][i * 2 + m];
                if (!a->has[m]) continue;
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "file", rep->runs[r].path);
                cJSON_AddStringToObject(o, "run", rep->labels[r]);
                cJSON_AddStringToObject(o, "attack", a->name);
                cJSON_AddStringToObject(o, "mode", metrics_mode_name(m));
                cJSON_AddBoolToObject(o, "in_metrics", included(a, m));
                cJSON_AddItemToObject(o, "accuracy", jval(a->acc[m], 4));
                cJSON_AddItemToObject(o, "accuracy_ci95", jpair(st->acc_lo, st->acc_hi));
                cJSON_AddItemToObject(o, "asr_accuracy_drop", jval(st->drop, 4));
                cJSON_AddItemToObject(o, "asr_per_sample", jval(st->asr, 4));
                cJSON_AddItemToObject(o, "seconds", jval(a->seconds[m], 4));
                cJSON_AddItemToObject(o, "passes_per_sample", jval(a->passes[m], 4));
                cJSON_AddItemToArray(att, o);
            }
    cJSON *notes = cJSON_AddArrayToObject(root, "notes");
    for (int i = 0; i < rep->n_notes; i++) cJSON_AddItemToArray(notes, cJSON_CreateString(rep->notes[i]));
    return root;
}

// CSV fields: numbers with full meaningful precision, empty when undefined
static void csv_num(FILE *f, double v) {
    if (isnan(v) || isinf(v)) fputc(',', f);
    else fprintf(f, ",%.6g", v);
}

void metrics_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_str(FILE *f, const char *s, int first) {
    if (!first) fputc(',', f);
    metrics_csv_field(f, s);
}

static void csv_figs(FILE *f, const char *scope, const MetricsRun *run, const char *attack, int m,
                     const MetricsFigures *g, const char *names[3]) {
    double v[3] = {g->rr, g->ae, g->crei}, lo[3] = {g->rr_lo, NAN, g->crei_lo}, hi[3] = {g->rr_hi, NAN, g->crei_hi};
    for (int k = 0; k < 4; k++) {
        csv_str(f, scope, 1);
        csv_str(f, run ? run->path : "", 0);
        csv_str(f, run ? run->method : "", 0);
        csv_str(f, run ? run->dataset : "", 0);
        csv_str(f, run ? run->ipc : "", 0);
        csv_str(f, attack, 0);
        csv_str(f, metrics_mode_name(m), 0);
        char nm[32];
        if (k < 3) {
            csv_str(f, names[k], 0);
            csv_num(f, v[k]);
            csv_num(f, lo[k]);
            csv_num(f, hi[k]);
        } else {
            snprintf(nm, sizeof(nm), "%s_passes", names[1]);
            csv_str(f, nm, 0);
            csv_num(f, g->ae_passes);
            csv_num(f, NAN);
            csv_num(f, NAN);
        }
        csv_str(f, g->note, 0);
        fputc('\n', f);
    }
}

int metrics_report_csv(const MetricsReport *rep, FILE *f) {
    fputs("scope,file,method,dataset,ipc,attack,mode,metric,value,ci95_low,ci95_high,note\n", f);
    static const char *per[3] = {"RR", "AE", "CREI"}, *comb[3] = {"RRM", "AEM", "CREIM"}, *sg[3] = {"RRS", "AES", "CREIS"};
    for (int r = 0; r < rep->n_runs; r++)
        for (int m = 0; m < 2; m++) csv_figs(f, "run", &rep->runs[r], "", m, &rep->per_run[r][m], per);
    for (int m = 0; m < 2; m++) csv_figs(f, "combined", NULL, "", m, &rep->combined[m], comb);
    for (int s = 0; s < rep->n_single; s++)
        for (int m = 0; m < 2; m++) csv_figs(f, "single", NULL, rep->single[s].name, m, &rep->single[s].fig[m], sg);
    for (int r = 0; r < rep->n_runs; r++) {
        const MetricsRun *run = &rep->runs[r];
        for (int i = 0; i < run->n_attacks; i++)
            for (int m = 0; m < 2; m++) {
                const MetricsAttack *a = &run->attacks[i];
                const MetricsAttackStats *st = &rep->stats[r][i * 2 + m];
                if (!a->has[m]) continue;
                const char *names[5] = {"accuracy", "asr_accuracy_drop", "asr_per_sample", "seconds", "passes_per_sample"};
                double v[5] = {a->acc[m], st->drop, st->asr, a->seconds[m], a->passes[m]};
                for (int k = 0; k < 5; k++) {
                    csv_str(f, "attack", 1);
                    csv_str(f, run->path, 0);
                    csv_str(f, run->method, 0);
                    csv_str(f, run->dataset, 0);
                    csv_str(f, run->ipc, 0);
                    csv_str(f, a->name, 0);
                    csv_str(f, metrics_mode_name(m), 0);
                    csv_str(f, names[k], 0);
                    csv_num(f, v[k]);
                    csv_num(f, k == 0 ? st->acc_lo : NAN);
                    csv_num(f, k == 0 ? st->acc_hi : NAN);
                    csv_str(f, included(a, m) ? "" : "not in RR/AE (BEARD excludes this mode)", 0);
                    fputc('\n', f);
                }
            }
    }
    return ferror(f) ? -1 : 0;
}

// Markdown cells: "n/a" for undefined figures, with a note reference when there is one
static void md_num(FILE *f, double v) {
    if (isnan(v) || isinf(v)) fputs(" n/a |", f);
    else fprintf(f, " %.2f |", v);
}

static void md_ci(FILE *f, double lo, double hi) {
    if (isnan(lo) || isnan(hi)) fputs(" |", f);
    else fprintf(f, " [%.2f, %.2f] |", lo, hi);
}

typedef struct {
    const char *text[64];
    int n;
} NoteList;

static int note_ref(NoteList *l, const char *note) {
    if (!note || !*note) return 0;
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->text[i], note)) return i + 1;
    if (l->n == 64) return 0;
    l->text[l->n++] = note;
    return l->n;
}

static void md_note(FILE *f, NoteList *l, const char *note) {
    int k = note_ref(l, note);
    if (k) fprintf(f, " [%d] |", k);
    else fputs(" |", f);
}

// one row's figures from the clean accuracy to the note, and the end of the row
static void md_figures(FILE *f, NoteList *notes, double clean, const MetricsFigures *g, int any_passes, int any_ci) {
    md_num(f, clean);
    fprintf(f, " %d |", g->n_attacks);
    md_num(f, g->rr), md_num(f, g->ae), md_num(f, g->crei);
    if (any_passes) md_num(f, g->ae_passes);
    if (any_ci) md_ci(f, g->rr_lo, g->rr_hi), md_ci(f, g->crei_lo, g->crei_hi);
    md_note(f, notes, g->note);
    fputc('\n', f);
}

void metrics_report_markdown(const MetricsReport *rep, FILE *f) {
    NoteList notes = {{0}, 0};
    int any_ci = 0, any_passes = 0;
    for (int r = 0; r < rep->n_runs; r++)
        for (int m = 0; m < 2; m++) {
            any_ci |= !isnan(rep->per_run[r][m].rr_lo);
            any_passes |= !isnan(rep->per_run[r][m].ae_passes);
        }
    fprintf(f, "## BEARD metrics: %s RR, alpha %.2f, %d run%s\n\n", metrics_type_name(rep->opt.type), rep->opt.alpha,
            rep->n_runs, rep->n_runs == 1 ? "" : "s");

    int run_col = 0; // a Run column when the IPC alone does not tell the runs apart
    for (int r = 0; r < rep->n_runs; r++) run_col |= strcmp(rep->labels[r], rep->runs[r].label) != 0;
    fprintf(f, "### Per run (one IPC, all attacks): RR, AE, CREI\n\n");
    fprintf(f, "|%s Method | Dataset | IPC | Mode | Clean (%%) | Attacks | RR (%%) | AE (%%) | CREI (%%) |%s%s Note |\n",
            run_col ? " Run |" : "", any_passes ? " AE passes (%) |" : "", any_ci ? " RR 95% CI | CREI 95% CI |" : "");
    fprintf(f, "|%s---|---|---|---|---:|---:|---:|---:|---:|%s%s---|\n", run_col ? "---|" : "", any_passes ? "---:|" : "",
            any_ci ? "---|---|" : "");
    for (int r = 0; r < rep->n_runs; r++)
        for (int m = 0; m < 2; m++) {
            const MetricsRun *run = &rep->runs[r];
            const MetricsFigures *g = &rep->per_run[r][m];
            if (run_col) fprintf(f, "| %s ", rep->labels[r]);
            fprintf(f, "| %s | %s | %s | %s |", run->method[0] ? run->method : "?", run->dataset[0] ? run->dataset : "?",
                    run->ipc[0] ? run->ipc : run->label, m ? "Untargeted" : "Targeted");
            md_figures(f, &notes, run->clean_acc, g, any_passes, any_ci);
        }

    fprintf(f, "\n### Combined over %d run%s (multi-adversary): RRM, AEM, CREIM\n\n", rep->n_runs,
            rep->n_runs == 1 ? "" : "s");
    fprintf(f, "| Mode | Clean mean (%%) | Attacks pooled | RRM (%%) | AEM (%%) | CREIM (%%) |%s%s Note |\n",
            any_passes ? " AEM passes (%) |" : "", any_ci ? " RRM 95% CI | CREIM 95% CI |" : "");
    fprintf(f, "|---|---:|---:|---:|---:|---:|%s%s---|\n", any_passes ? "---:|" : "", any_ci ? "---|---|" : "");
    for (int m = 0; m < 2; m++) {
        const MetricsFigures *g = &rep->combined[m];
        fprintf(f, "| %s |", m ? "Untargeted" : "Targeted");
        md_figures(f, &notes, g->clean_acc, g, any_passes, any_ci);
    }

    fprintf(f, "\n### Single adversary (one attack, pooled over the runs): RRS, AES, CREIS\n\n");
    fprintf(f, "| Attack | Mode | Runs | RRS (%%) | AES (%%) | CREIS (%%) | Note |\n|---|---|---:|---:|---:|---:|---|\n");
    for (int s = 0; s < rep->n_single; s++)
        for (int m = 0; m < 2; m++) {
            const MetricsFigures *g = &rep->single[s].fig[m];
            fprintf(f, "| %s | %s | %d |", rep->single[s].name, m ? "Untargeted" : "Targeted", g->n_attacks);
            md_num(f, g->rr), md_num(f, g->ae), md_num(f, g->crei);
            md_note(f, &notes, g->note);
            fputc('\n', f);
        }

    fprintf(f, "\n### Attacks: accuracy, ASR and attack time (AST)\n\n");
    fprintf(f, "| Run | Attack | Mode | Accuracy (%%) |%s ASR drop (pts) | ASR per-sample (%%) | AST (s) | Passes/sample | In RR/AE |\n",
            any_ci ? " 95% CI |" : "");
    fprintf(f, "|---|---|---|---:|%s---:|---:|---:|---:|---|\n", any_ci ? "---|" : "");
    for (int r = 0; r < rep->n_runs; r++)
        for (int i = 0; i < rep->runs[r].n_attacks; i++)
            for (int m = 0; m < 2; m++) {
                const MetricsAttack *a = &rep->runs[r].attacks[i];
                const MetricsAttackStats *st = &rep->stats[r][i * 2 + m];
                if (!a->has[m]) continue;
                fprintf(f, "| %s | %s | %s |", rep->labels[r], a->name, m ? "untargeted" : "targeted");
                md_num(f, a->acc[m]);
                if (any_ci) md_ci(f, st->acc_lo, st->acc_hi);
                md_num(f, st->drop), md_num(f, st->asr), md_num(f, a->seconds[m]), md_num(f, a->passes[m]);
                fprintf(f, " %s |\n", included(a, m) ? "yes" : "no (BEARD has no such mode)");
            }
    if (notes.n || rep->n_notes) {
        fprintf(f, "\nNotes:\n");
        for (int i = 0; i < notes.n; i++) fprintf(f, "[%d] %s\n", i + 1, notes.text[i]);
        for (int i = 0; i < rep->n_notes; i++) fprintf(f, "- %s\n", rep->notes[i]);
    }
    fprintf(f, "\nn/a: undefined for these inputs (see the notes), never a number.\n");
}
