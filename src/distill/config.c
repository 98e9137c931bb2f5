/*
 * config.c: a method's parameters (DistillParams) and the settings of a run
 * (DistillSettings) from beard's defaults, a JSON config and the command line; see
 * distill.h for the keys.
 */
#include <assert.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../io/file.h"
#include "../io/jsonval.h"
#include "distill.h"

int distill_name_eq(const char *a, const char *b, size_t nb) {
    size_t i = 0;
    for (; a[i] && i < nb && b[i]; i++) {
        char ca = a[i] == '-' ? '_' : (char)tolower((unsigned char)a[i]);
        char cb = b[i] == '-' ? '_' : (char)tolower((unsigned char)b[i]);
        if (ca != cb) return 0;
    }
    return a[i] == 0 && (i == nb || b[i] == 0);
}

static int pname_eq(const char *a, const char *b) { return distill_name_eq(a, b, (size_t)-1); }

void distill_params_init(DistillParams *p, const DistillMethodDef *def) {
    memset(p, 0, sizeof(*p));
    p->def = def;
    for (int i = 0; def->params[i].name; i++) {
        assert(i < DISTILL_MAX_PARAMS);
        const DistillParamDef *d = &def->params[i];
        p->v[i] = d->def;
        if (d->type == DPARAM_STR || d->type == DPARAM_LIST)
            snprintf(p->s[i], DISTILL_STR_MAX, "%s", d->str_def ? d->str_def : "");
        p->n = i + 1;
    }
}

int distill_param_index(const DistillParams *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (pname_eq(p->def->params[i].name, name)) return i;
    return -1;
}

static int must(const DistillParams *p, const char *name) {
    int i = distill_param_index(p, name);
    assert(i >= 0 && "undeclared distillation parameter");
    return i;
}

double distill_param(const DistillParams *p, const char *name) { return p->v[must(p, name)]; }
long distill_param_int(const DistillParams *p, const char *name) { return (long)p->v[must(p, name)]; }
int distill_param_bool(const DistillParams *p, const char *name) { return p->v[must(p, name)] != 0; }
const char *distill_param_str(const DistillParams *p, const char *name) { return p->s[must(p, name)]; }

static void names_list(const DistillParams *p, char *buf, size_t n) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < p->n && off + 2 < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", p->def->params[i].name);
}

int distill_params_set_text(DistillParams *p, const char *name, const char *text, Err *e) {
    int i = distill_param_index(p, name);
    if (i < 0) {
        char list[1024];
        names_list(p, list, sizeof(list));
        return err_set(e, "%s has no parameter '%s' (its parameters: %s)", p->def->name, name, list);
    }
    const DistillParamDef *d = &p->def->params[i];
    double v = 0;
    switch (d->type) {
    case DPARAM_STR:
    case DPARAM_LIST:
        if (strlen(text) >= DISTILL_STR_MAX)
            return err_set(e, "%s %s: the value is longer than %d bytes", p->def->name, d->name, DISTILL_STR_MAX - 1);
        snprintf(p->s[i], DISTILL_STR_MAX, "%s", text);
        break;
    case DPARAM_BOOL:
        if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcmp(text, "1")) v = 1;
        else if (!strcasecmp(text, "false") || !strcasecmp(text, "no") || !strcmp(text, "0")) v = 0;
        else return err_set(e, "%s %s expects true or false, got '%s'", p->def->name, d->name, text);
        p->v[i] = v;
        break;
    case DPARAM_INT:
    case DPARAM_NUM:
        if (parse_number(text, &v) || !isfinite(v))
            return err_set(e, "%s %s expects a number, got '%s'", p->def->name, d->name, text);
        if (d->type == DPARAM_INT && (v != floor(v) || fabs(v) > 1e15))
            return err_set(e, "%s %s expects an integer, got '%s'", p->def->name, d->name, text);
        if (!isnan(d->min) && v < d->min)
            return err_set(e, "%s %s must be >= %g, got '%s'", p->def->name, d->name, d->min, text);
        p->v[i] = v;
        break;
    }
    p->user[i] = 1;
    return 0;
}

void distill_params_setting(DistillParams *p, const char *name, double v) {
    int i = must(p, name);
    if (!p->user[i]) p->v[i] = v;
}

const char *distill_param_text(const DistillParams *p, int i, char *buf, size_t n) {
    const DistillParamDef *d = &p->def->params[i];
    if (d->type == DPARAM_STR || d->type == DPARAM_LIST) snprintf(buf, n, "%s", p->s[i]);
    else if (d->type == DPARAM_BOOL) snprintf(buf, n, "%s", p->v[i] ? "true" : "false");
    else if (d->type == DPARAM_INT) snprintf(buf, n, "%ld", (long)p->v[i]);
    else train_float_repr(p->v[i], buf, n);
    return buf;
}

int distill_param_item(const DistillParams *p, const char *name, int k, char *buf, size_t n) {
    const char *s = p->s[must(p, name)];
    int count = 0;
    if (n) buf[0] = 0;
    while (*s) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        const char *a = s, *b = s + len;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (count == k && n) snprintf(buf, n, "%.*s", (int)(b - a), a);
        count++;
        if (!c) break;
        s = c + 1;
    }
    return count;
}

// ----------------------------------------------------------------------------
// settings

void distill_settings_default(DistillSettings *s) {
    memset(s, 0, sizeof(*s));
    // s->arch "": the method's default_arch (ConvNet for the matching methods)
    snprintf(s->data_path, sizeof(s->data_path), "data");
    snprintf(s->out, sizeof(s->out), "result");
    s->iterations = -1;
    s->ckpt_every = 100;
    s->num_eval = 5;
    s->epoch_eval_train = 1000;
    s->batch_train = 256;
    s->lr_net = 0.01;
}

int distill_settings_add_param(DistillSettings *s, const char *name, const char *value, Err *e) {
    if (strlen(name) >= sizeof(s->param_names[0]) || strlen(value) >= DISTILL_STR_MAX)
        return err_set(e, "parameter %s: name or value too long", name);
    int k = 0;
    while (k < s->n_params && !pname_eq(s->param_names[k], name)) k++;
    if (k == DISTILL_MAX_PARAMS) return err_set(e, "too many method parameters");
    snprintf(s->param_names[k], sizeof(s->param_names[k]), "%s", name);
    snprintf(s->param_values[k], sizeof(s->param_values[k]), "%s", value);
    if (k == s->n_params) s->n_params++;
    return 0;
}

int distill_settings_append_param(DistillSettings *s, const char *name, const char *value, Err *e) {
    for (int k = 0; k < s->n_params; k++)
        if (pname_eq(s->param_names[k], name)) {
            size_t have = strlen(s->param_values[k]);
            if (have + 1 + strlen(value) >= DISTILL_STR_MAX)
                return err_set(e, "parameter %s: the list is longer than %d bytes", name, DISTILL_STR_MAX - 1);
            snprintf(s->param_values[k] + have, DISTILL_STR_MAX - have, "%s%s", have ? "," : "", value);
            return 0;
        }
    return distill_settings_add_param(s, name, value, e);
}

static int key_is(const cJSON *v, const char *a, const char *b) {
    return !strcmp(v->string, a) || (b && !strcmp(v->string, b));
}

int distill_settings_load_json(DistillSettings *s, const char *path, Err *e) {
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 1 << 20, &buf, &n, e)) return -1;
    cJSON *root = cJSON_ParseWithLength((const char *)buf, n);
    free(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, "%s is not a JSON object", path);
    }
    int rc = distill_settings_apply_json(s, root, e);
    if (rc) err_wrap(e, "%s", path);
    cJSON_Delete(root);
    return rc;
}

int distill_settings_apply_json(DistillSettings *s, const cJSON *root, Err *e) {
    for (const cJSON *v = root->child; v; v = v->next) {
        int r = 0;
        long l;
        double d;
        if (key_is(v, "method", NULL)) r = json_get_str(v, s->method, sizeof(s->method), e);
        else if (key_is(v, "dataset", NULL)) r = json_get_str(v, s->dataset, sizeof(s->dataset), e);
        else if (key_is(v, "model", "arch")) r = json_get_str(v, s->arch, sizeof(s->arch), e);
        else if (key_is(v, "data_path", "data")) r = json_get_str(v, s->data_path, sizeof(s->data_path), e);
        else if (key_is(v, "save_path", "out")) r = json_get_str(v, s->out, sizeof(s->out), e);
        else if (key_is(v, "ipc", NULL)) {
            char t[32];
            if (cJSON_IsString(v)) {
                snprintf(t, sizeof(t), "%s", v->valuestring);
                if (parse_int(t, &l) || l < 1 || l > 100000) r = err_set(e, "\"ipc\" must be a positive integer, not '%s'", t);
            } else {
                r = json_get_long(v, 1, 100000, &l, e);
            }
            if (!r) s->ipc = (int)l;
        } else if (key_is(v, "Iteration", "iterations") || key_is(v, "iteration", NULL)) {
            if (!(r = json_get_long(v, 0, 100000000, &l, e))) s->iterations = l;
        } else if (key_is(v, "seed", NULL)) {
            if (!(r = json_get_long(v, 0, 1L << 53, &l, e))) s->seed = l;
        } else if (key_is(v, "num_eval", NULL)) r = json_get_int(v, 1, 1000, &s->num_eval, e);
        else if (key_is(v, "epoch_eval_train", NULL)) r = json_get_int(v, 0, 10000000, &s->epoch_eval_train, e);
        else if (key_is(v, "batch_train", NULL)) r = json_get_int(v, 1, 1 << 20, &s->batch_train, e);
        else if (key_is(v, "lr_net", NULL)) {
            if (!(r = json_get_num(v, 0, &d, e))) s->lr_net = d;
        } else if (key_is(v, "eval_every", NULL)) r = json_get_long(v, 0, 100000000, &s->eval_every, e);
        else if (key_is(v, "checkpoint_every", NULL)) r = json_get_long(v, 0, 100000000, &s->ckpt_every, e);
        else if (key_is(v, "log_every", NULL)) r = json_get_long(v, 0, 100000000, &s->log_every, e);
        else if (key_is(v, "threads", NULL)) r = json_get_int(v, 0, 256, &s->threads, e);
        else if (key_is(v, "num_exp", NULL)) {
            if (!(r = json_get_long(v, 1, 1000, &l, e)) && l != 1)
                r = err_set(e, "\"num_exp\": beard runs one experiment per call (use --seed for others), not %ld", l);
        } else if (key_is(v, "eval_mode", NULL)) {
            char m[8];
            if (!(r = json_get_str(v, m, sizeof(m), e)) && strcmp(m, "S") && strcmp(m, "SS"))
                r = err_set(e, "\"eval_mode\": only 'S' and 'SS' (evaluate on the distilling model) are supported, not '%s'", m);
        } else {
            // a method parameter, resolved when the method is known
            char t[DISTILL_STR_MAX];
            if (cJSON_IsString(v)) {
                if (strlen(v->valuestring) >= sizeof(t))
                    r = err_set(e, "\"%s\": the value is longer than %zu bytes", v->string, sizeof(t) - 1);
                else snprintf(t, sizeof(t), "%s", v->valuestring);
            } else if (cJSON_IsBool(v)) snprintf(t, sizeof(t), "%s", cJSON_IsTrue(v) ? "true" : "false");
            else if (cJSON_IsNumber(v)) train_float_repr(v->valuedouble, t, sizeof(t));
            else if (cJSON_IsArray(v)) { // a list parameter: strings, joined by ','
                size_t off = 0;
                t[0] = 0;
                for (const cJSON *it = v->child; it && !r; it = it->next) {
                    if (!cJSON_IsString(it)) r = err_set(e, "\"%s\": a list holds strings, not %s", v->string, json_type(it));
                    else if (strchr(it->valuestring, ','))
                        r = err_set(e, "\"%s\": '%s' has a comma, which separates the items", v->string, it->valuestring);
                    else if (off + strlen(it->valuestring) + 2 >= sizeof(t)) r = err_set(e, "\"%s\": the list is too long", v->string);
                    else off += (size_t)snprintf(t + off, sizeof(t) - off, "%s%s", off ? "," : "", it->valuestring);
                }
            } else r = err_set(e, "\"%s\" must be a number, a string, a list of strings or a boolean, not %s", v->string, json_type(v));
            if (!r) r = distill_settings_add_param(s, v->string, t, e);
        }
        if (r) return -1;
    }
    return 0;
}

int distill_settings_params(const DistillSettings *s, const DistillMethodDef *def, const DatasetInfo *info,
                            DistillParams *p, Err *e) {
    distill_params_init(p, def);
    for (int k = 0; k < s->n_params; k++)
        if (distill_params_set_text(p, s->param_names[k], s->param_values[k], e)) return -1;
    // the per-setting defaults leave what the user set alone
    if (def->setting) def->setting(p, info, s->ipc);
    return 0;
}
