/*
 * beardlog.c: see beardlog.h.
 */
#include "beardlog.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "../core/hash.h"
#include "../io/file.h"
#include "../io/pyrepr.h"

// ----------------------------------------------------------------------------
// writing

static int is_word_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

int beardlog_is_word(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!is_word_char(*s)) return 0;
    return 1;
}

// appends with snprintf semantics: *off counts what would have been written
static void put(char *buf, size_t n, size_t *off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t n, size_t *off, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*off < n ? buf + *off : NULL, *off < n ? n - *off : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *off += (size_t)k;
}

// Python's repr(str): single quotes unless the text holds ' and no "
static void repr_str(char *buf, size_t n, size_t *off, const char *s) {
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    put(buf, n, off, "%c", q);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\') put(buf, n, off, "\\\\");
        else if (*p == (unsigned char)q) put(buf, n, off, "\\%c", q);
        else if (*p == '\n') put(buf, n, off, "\\n");
        else if (*p == '\r') put(buf, n, off, "\\r");
        else if (*p == '\t') put(buf, n, off, "\\t");
        else if (*p < 0x20 || *p == 0x7f) put(buf, n, off, "\\x%02x", *p);
        else put(buf, n, off, "%c", *p);
    }
    put(buf, n, off, "%c", q);
}

int beardlog_repr_strs(char *buf, size_t n, const char *const *s, int count) {
    size_t off = 0;
    if (n) buf[0] = 0;
    put(buf, n, &off, "[");
    for (int i = 0; i < count; i++) {
        if (i) put(buf, n, &off, ", ");
        repr_str(buf, n, &off, s[i]);
    }
    put(buf, n, &off, "]");
    return (int)off;
}

int beardlog_repr_bools(char *buf, size_t n, const int *v, int count) {
    size_t off = 0;
    if (n) buf[0] = 0;
    put(buf, n, &off, "[");
    for (int i = 0; i < count; i++) put(buf, n, &off, "%s%s", i ? ", " : "", v[i] ? "True" : "False");
    put(buf, n, &off, "]");
    return (int)off;
}

int beardlog_format(char *buf, size_t n, const BeardLogLine *l, const BeardLogContext *c) {
    size_t off = 0;
    if (n) buf[0] = 0;
    // evaluate_model.py's format string, field for field
    put(buf, n, &off,
        "%s attack on %s: final acc is:  target_attack: %.2f +- %.2f, attack time is %.2f; "
        "non_target_attack: %.2f +- %.2f, attack time is %.2f, dataset: %s, IPC: %s, DSA:%s, num_eval: %d, "
        "aug:%s , model: %s, attack_type: ",
        l->attack, l->method, l->acc[0], l->std[0], l->seconds[0], l->acc[1], l->std[1], l->seconds[1], c->dataset,
        c->ipc, c->dsa ? "True" : "False", c->num_eval, c->aug ? "True" : "False", c->model);
    size_t need = (size_t)beardlog_repr_strs(NULL, 0, c->attacks, c->n_attacks);
    if (off < n) beardlog_repr_strs(buf + off, n - off, c->attacks, c->n_attacks);
    off += need;
    put(buf, n, &off, ", target_attack: ");
    need = (size_t)beardlog_repr_bools(NULL, 0, c->targets, c->n_targets);
    if (off < n) beardlog_repr_bools(buf + off, n - off, c->targets, c->n_targets);
    off += need;
    put(buf, n, &off, ", src_dataset: %s", c->src_dataset ? "True" : "False");
    static const char *const keys[2] = {"eval_accuracies_target", "eval_accuracies_non_target"};
    for (int m = 0; l->n_eval > 0 && m < 2; m++) {
        put(buf, n, &off, ", %s: {[{", keys[m]);
        for (int i = 0; i < l->n_eval; i++) {
            char num[40];
            py_repr_float(l->eval_acc[m][i], num, sizeof(num));
            if (i) put(buf, n, &off, ", ");
            repr_str(buf, n, &off, l->eval_names[i]);
            put(buf, n, &off, ": %s", num);
        }
        put(buf, n, &off, "}]}");
    }
    return (int)off;
}

void beardlog_timestamp(char *buf, size_t n) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    localtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, n, "%s,%03d", base, (int)(tv.tv_usec / 1000));
}

int beardlog_open(BeardLog *log, const char *path, Err *e) {
    memset(log, 0, sizeof(*log));
    if (snprintf(log->path, sizeof(log->path), "%s", path) >= (int)sizeof(log->path))
        return err_set(e, "log path too long: %s", path);
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        if (file_mkdirs(dir, e)) return -1;
    }
    if (file_atomic_open(&log->out, log->path, e)) return -1;
    return beardlog_info(log, "Logging setup complete.", e);
}

int beardlog_info(BeardLog *log, const char *message, Err *e) {
    char ts[48];
    beardlog_timestamp(ts, sizeof(ts));
    if (!log->out.f) return err_set(e, "internal error: %s is not open", log->path);
    if (fprintf(log->out.f, "%s - INFO - %s\n", ts, message) < 0 || fflush(log->out.f) != 0)
        return err_set(e, "cannot write %s: %s", log->path, strerror(errno));
    return 0;
}

int beardlog_commit(BeardLog *log, Err *e) {
    if (!log->out.f) return 0;
    return file_atomic_commit(&log->out, e);
}

void beardlog_close(BeardLog *log) { file_atomic_abort(&log->out); }

// ----------------------------------------------------------------------------
// reading

// [\d.]+ followed by what float() accepts: digits with at most one dot, not just "."
// Returns the characters consumed, 0 when there is no [\d.]+ here, -1 when it is there
// but is not a number.
static int scan_number(const char *s, double *v) {
    int k = 0, dots = 0, digits = 0;
    while (isdigit((unsigned char)s[k]) || s[k] == '.') {
        if (s[k] == '.') dots++;
        else digits++;
        k++;
    }
    if (k == 0) return 0;
    if (dots > 1 || digits == 0) return -1;
    char tmp[64];
    if (k >= (int)sizeof(tmp)) return -1;
    memcpy(tmp, s, k);
    tmp[k] = 0;
    *v = strtod(tmp, NULL);
    return k;
}

// matches a literal; advances *p
static int lit(const char **p, const char *s) {
    size_t n = strlen(s);
    if (strncmp(*p, s, n)) return 0;
    *p += n;
    return 1;
}

// the black-box tail, as convert_to_white_box.py reads it: the first
// "eval_accuracies_target: {[ ... }]}, eval_accuracies_non_target: {[ ... }]}" (lazy
// matches), then every '<name>': <[\d.]+> inside each block; a model missing from either
// block is dropped (the converter skips it)
static void parse_eval_accuracies(const char *p, BeardLogLine *out) {
    static const char *const h0 = "eval_accuracies_target: {[", *sep = "}]}, eval_accuracies_non_target: {[";
    const char *a = strstr(p, h0);
    if (!a) return;
    a += strlen(h0);
    const char *b = strstr(a, sep);
    if (!b) return;
    const char *c = b + strlen(sep), *d = strstr(c, "}]}");
    if (!d) return;
    const char *blk[2][2] = {{a, b}, {c, d}};
    char names[2][BEARDLOG_MAX_MODELS][32];
    double acc[2][BEARDLOG_MAX_MODELS];
    int cnt[2] = {0, 0};
    for (int m = 0; m < 2; m++)
        for (const char *s = blk[m][0]; s < blk[m][1] && cnt[m] < BEARDLOG_MAX_MODELS;) {
            const char *q1 = memchr(s, '\'', (size_t)(blk[m][1] - s));
            if (!q1) break;
            const char *q2 = memchr(q1 + 1, '\'', (size_t)(blk[m][1] - q1 - 1));
            if (!q2) break;
            const char *v = q2 + 1;
            s = q2 + 1;
            if (*v != ':') continue;
            v++;
            while (isspace((unsigned char)*v)) v++;
            double val;
            int k = scan_number(v, &val);
            if (k <= 0 || q2 - q1 - 1 >= 32 || q2 == q1 + 1) continue;
            int dup = 0;
            for (int i = 0; i < cnt[m]; i++) dup |= !strncmp(names[m][i], q1 + 1, (size_t)(q2 - q1 - 1)) &&
                                                    !names[m][i][q2 - q1 - 1];
            if (dup) continue; // the first occurrence counts (num_eval > 0 lists several dicts)
            memcpy(names[m][cnt[m]], q1 + 1, (size_t)(q2 - q1 - 1));
            names[m][cnt[m]][q2 - q1 - 1] = 0;
            acc[m][cnt[m]++] = val;
            s = v + k;
        }
    for (int i = 0; i < cnt[0]; i++)
        for (int j = 0; j < cnt[1]; j++)
            if (!strcmp(names[0][i], names[1][j]) && out->n_eval < BEARDLOG_MAX_MODELS) {
                memcpy(out->eval_names[out->n_eval], names[0][i], sizeof(out->eval_names[0]));
                out->eval_acc[0][out->n_eval] = acc[0][i];
                out->eval_acc[1][out->n_eval] = acc[1][j];
                out->n_eval++;
                break;
            }
}

// 1: parsed; 0: not a result line (or one cut short: it ends before its figures do);
// -1: a result line with a malformed number; -2: a result line ("<Attack> attack on
// <Method>: final acc is:") whose figures are not what BEARD writes (nan, inf, a
// negative number)
static int parse_line(const char *line, BeardLogLine *out) {
    memset(out, 0, sizeof(*out));
    int bad_figures = 0;
    for (const char *at = strstr(line, " attack on "); at; at = strstr(at + 1, " attack on ")) {
        // the attack name: the run of word characters ending right before " attack on "
        const char *b = at;
        while (b > line && is_word_char(b[-1])) b--;
        if (b == at || at - b >= (long)sizeof(out->attack)) continue;
        memcpy(out->attack, b, at - b);
        out->attack[at - b] = 0;
        const char *p = at + strlen(" attack on ");
        const char *m = p;
        while (is_word_char(*p)) p++;
        if (p == m || p - m >= (long)sizeof(out->method)) continue;
        memcpy(out->method, m, p - m);
        out->method[p - m] = 0;
        if (!lit(&p, ": final acc is:") || !isspace((unsigned char)*p)) continue;
        while (isspace((unsigned char)*p)) p++;
        static const char *const heads[2] = {"target_attack: ", "non_target_attack: "};
        int ok = 1; // 1 parsed so far, 0 not a result line, -1 a malformed number
        for (int mode = 0; mode < 2 && ok == 1; mode++) {
            double *fields[3] = {&out->acc[mode], &out->std[mode], &out->seconds[mode]};
            static const char *const after[3] = {" +- ", ", attack time is ", ""};
            if ((mode == 1 && !lit(&p, "; ")) || !lit(&p, heads[mode])) {
                ok = 0;
                break;
            }
            for (int f = 0; f < 3; f++) {
                int k = scan_number(p, fields[f]);
                if (k <= 0) {
                    ok = k < 0 ? -1 : 0;
                    break;
                }
                p += k;
                if (!lit(&p, after[f])) {
                    ok = 0;
                    break;
                }
            }
        }
        if (ok < 0) return -1;
        if (!ok) {
            if (*p && *p != '\r') bad_figures = 1; // not merely cut short
            continue;
        }
        // the optional tail: ", dataset: X, IPC: N, ..."
        const char *d = strstr(p, ", dataset: ");
        if (d) {
            d += strlen(", dataset: ");
            size_t k = strcspn(d, ",\r\n");
            if (k < sizeof(out->dataset)) memcpy(out->dataset, d, k), out->dataset[k] = 0;
        }
        const char *q = strstr(p, ", IPC: ");
        if (q) {
            q += strlen(", IPC: ");
            size_t k = strcspn(q, ",\r\n");
            if (k < sizeof(out->ipc)) memcpy(out->ipc, q, k), out->ipc[k] = 0;
        }
        parse_eval_accuracies(p, out);
        return 1;
    }
    return bad_figures ? -2 : 0;
}

int beardlog_parse(BeardLogFile *out, const char *text, const char *name, Err *e) {
    memset(out, 0, sizeof(*out));
    StrMap seen; // attack name -> its line's position in out->lines
    strmap_init(&seen);
    int cap = 0, lineno = 0;
    const char *s = text;
    char *line = NULL;
    size_t line_cap = 0;
    while (*s) {
        lineno++;
        size_t len = strcspn(s, "\n");
        if (len + 1 > line_cap) {
            line_cap = len + 1;
            char *nl = realloc(line, line_cap);
            if (!nl) {
                free(line);
                strmap_free(&seen);
                beardlog_file_free(out);
                return err_set(e, "%s: out of memory", name);
            }
            line = nl;
        }
        memcpy(line, s, len);
        line[len] = 0;
        s += len + (s[len] == '\n');
        BeardLogLine l;
        int rc = parse_line(line, &l);
        if (rc == -1) {
            free(line);
            strmap_free(&seen);
            beardlog_file_free(out);
            return err_set(e, "%s:%d: malformed number in a result line", name, lineno);
        }
        if (rc == -2) {
            free(line);
            strmap_free(&seen);
            beardlog_file_free(out);
            return err_set(e, "%s:%d: a result line whose figures are not non-negative numbers (nan, inf, a minus "
                              "sign?); BEARD's toolkit would skip it silently and change the attack count",
                           name, lineno);
        }
        if (rc == 0) {
            if (strstr(line, " attack on ")) {
                if (!out->n_unparsed) out->first_unparsed = lineno;
                out->n_unparsed++;
            }
            continue;
        }
        l.line = lineno;
        int dup = strmap_get(&seen, l.attack);
        if (dup >= 0) {
            // the rerun supersedes the earlier line, and takes its place at the end
            memmove(out->lines + dup, out->lines + dup + 1, sizeof(BeardLogLine) * (out->n - dup - 1));
            out->n--;
            out->n_duplicates++;
            for (int i = dup; i < out->n; i++) strmap_put(&seen, out->lines[i].attack, i, NULL);
        } else if (out->n == BEARDLOG_MAX_ATTACKS) {
            free(line);
            strmap_free(&seen);
            beardlog_file_free(out);
            return err_set(e, "%s:%d: more than %d different attacks in one log", name, lineno, BEARDLOG_MAX_ATTACKS);
        }
        if (strmap_put(&seen, l.attack, out->n, e)) {
            free(line);
            strmap_free(&seen);
            beardlog_file_free(out);
            return -1;
        }
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            BeardLogLine *nl = realloc(out->lines, sizeof(BeardLogLine) * cap);
            if (!nl) {
                free(line);
                strmap_free(&seen);
                beardlog_file_free(out);
                return err_set(e, "%s: out of memory", name);
            }
            out->lines = nl;
        }
        out->lines[out->n++] = l;
    }
    free(line);
    strmap_free(&seen);
    return 0;
}

int beardlog_read(BeardLogFile *out, const char *path, Err *e) {
    memset(out, 0, sizeof(*out));
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, (size_t)1 << 30, &buf, &n, e)) return -1;
    if (memchr(buf, 0, n)) {
        free(buf);
        return err_set(e, "%s is not a text file", path);
    }
    int rc = beardlog_parse(out, (const char *)buf, path, e);
    free(buf);
    return rc;
}

void beardlog_file_free(BeardLogFile *f) {
    free(f->lines);
    memset(f, 0, sizeof(*f));
}

const BeardLogLine *beardlog_find(const BeardLogFile *f, const char *attack) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->lines[i].attack, attack)) return &f->lines[i];
    return NULL;
}
