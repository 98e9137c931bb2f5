/*
 * grid.c: reading a grid, expanding it into cells and checking everything up front; see
 * grid.h for the file format and the cell kinds.
 *
 * The checks load what the cells will load (test sets, checkpoints, pool files, BEARD
 * logs) and try what they will try (architectures, training attacks, attack parameters),
 * so that a missing file, an unknown name or an impossible setting is reported before
 * the first cell runs, together with every other problem, each naming the key or the
 * path. The checksums taken on the way (test sets, checkpoints, pools) go into the
 * cells' configurations: a changed input makes a new cell, never a stale reuse.
 */
#include "grid.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../data/pool.h"
#include "../data/synthetic.h"
#include "../evaluate/beardlog.h"
#include "../io/file.h"
#include "../io/jsonval.h"
#include "../models/checkpoint.h"
#include "../models/convnet.h"
#include "../train/train.h"

// ----------------------------------------------------------------------------
// issues

void grid_issues_init(GridIssues *g) { memset(g, 0, sizeof(*g)); }

void grid_issue(GridIssues *g, const char *fmt, ...) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        void *m = realloc(g->msg, sizeof(*g->msg) * cap);
        if (!m) return;
        g->msg = m, g->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->msg[g->n], ERR_MAX, fmt, ap);
    va_end(ap);
    for (int i = 0; i < g->n; i++) // the same problem found twice is one problem
        if (!strcmp(g->msg[i], g->msg[g->n])) return;
    g->n++;
}

void grid_issues_free(GridIssues *g) {
    free(g->msg);
    memset(g, 0, sizeof(*g));
}

// ----------------------------------------------------------------------------
// datasets

static const char *synthetic_name = "SYNTHETIC";

const DatasetInfo *grid_dataset_info(const char *name) {
    if (dataset_name_eq(name, synthetic_name)) return synthetic_info();
    return dataset_info(name);
}

int grid_load_testset(const Grid *g, int d, Dataset *ds, Err *e) {
    if (!strcmp(g->datasets[d], synthetic_name)) return synthetic_make(ds, g->limit > 0 ? (int)g->limit : 500, 0, 0, e);
    return dataset_load(ds, g->datasets[d], g->data, 0, g->limit, e);
}

int grid_load_trainset(const Grid *g, int d, Dataset *ds, Err *e) {
    if (!strcmp(g->datasets[d], synthetic_name)) return synthetic_make(ds, g->train_limit > 0 ? (int)g->train_limit : 2000, 1, 0, e);
    return dataset_load(ds, g->datasets[d], g->data, 1, g->train_limit, e);
}

// ----------------------------------------------------------------------------
// model identity

void grid_net_sha(const Net *net, char out[65]) {
    const void *bufs[3] = {net->arch, net->params, net->buffers};
    size_t lens[3] = {strlen(net->arch), sizeof(float) * net->n_params, sizeof(float) * net->n_buffers};
    store_sha256_parts(bufs, lens, 3, out);
}

int grid_model_sha(const GridPlan *p, int m, char out[65], Err *e) {
    const GridModel *gm = &p->models[m];
    const DatasetInfo *in = p->tests[gm->dataset].info;
    Net net;
    if (checkpoint_load(&net, gm->path, p->grid->archs[gm->arch], in->c, in->n_classes, in->h, in->w, e)) return -1;
    grid_net_sha(&net, out);
    net_free(&net);
    return 0;
}

int grid_param_is_text(const AttackDef *def, const AttackParams *p, int i) {
    for (const AttackParamDef *d = def->params; d->name; d++)
        if (!strcmp(d->name, p->names[i])) return d->type == ATTACK_PARAM_TEXT;
    return 0;
}

// ----------------------------------------------------------------------------
// attack cost

double grid_attack_passes(const AttackDef *def, const AttackParams *params) {
    // from the parameters the attack declares: iterations x restarts, a forward and a
    // backward pass each; query attacks: their queries (forward only). An estimate for
    // the dry run and the ETA; the store's measured passes replace it once a cell ran.
    double it = 1, rs = 1, q = 0;
    for (int i = 0; i < params->n; i++) {
        const char *n = params->names[i];
        double v = params->values[i];
        if (!(v > 0) || !isfinite(v)) continue;
        if (!strcasecmp(n, "steps") || !strcasecmp(n, "max_iter") || !strcasecmp(n, "n_iter") ||
            !strcasecmp(n, "iterations"))
            it = MAX(it, v);
        else if (!strcasecmp(n, "restarts") || !strcasecmp(n, "n_restarts")) rs = MAX(rs, v);
        else if (!strcasecmp(n, "n_queries") || !strcasecmp(n, "queries")) q = MAX(q, v);
    }
    (void)def;
    if (q > 0) return q * rs + 1;
    return 2 * it * rs + 1;
}

// ----------------------------------------------------------------------------
// reading the grid

cJSON *grid_file_json(const char *path, GridIssues *iss) {
    uint8_t *buf;
    size_t n;
    Err e;
    if (file_read_all(path, 16 << 20, &buf, &n, &e)) {
        grid_issue(iss, "%s", e.msg);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)buf, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= (const char *)buf && at <= (const char *)buf + n ? (long)(at - (const char *)buf) : -1;
        long line = 1;
        for (long i = 0; i < off; i++) line += buf[i] == '\n';
        grid_issue(iss, "%s: not valid JSON (line %ld)", path, line);
    } else if (!cJSON_IsObject(root)) {
        grid_issue(iss, "%s: a grid is a JSON object of settings", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(buf);
    return root;
}

static int is_word(const char *s) { return beardlog_is_word(s); }

// a string or a list of strings into dst[n][len]
static int str_list(const cJSON *v, const char *where, char *dst, size_t len, int max, int *n, GridIssues *iss) {
    *n = 0;
    if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
        cJSON *tmp = cJSON_CreateArray();
        cJSON_AddItemToArray(tmp, cJSON_Duplicate(v, 0));
        int rc = str_list(tmp, where, dst, len, max, n, iss);
        cJSON_Delete(tmp);
        return rc;
    }
    if (!cJSON_IsArray(v)) {
        grid_issue(iss, "%s: \"%s\" must be a list, not %s", where, v->string, json_type(v));
        return -1;
    }
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, v) {
        char buf[1100];
        if (cJSON_IsString(it)) snprintf(buf, sizeof(buf), "%s", it->valuestring);
        else if (cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) && fabs(it->valuedouble) < 1e15)
            snprintf(buf, sizeof(buf), "%.0f", it->valuedouble);
        else {
            grid_issue(iss, "%s: \"%s\"[%d] must be a string, not %s", where, v->string, i, json_type(it));
            return -1;
        }
        if (strlen(buf) >= len) {
            grid_issue(iss, "%s: \"%s\"[%d] is too long", where, v->string, i);
            return -1;
        }
        if (*n == max) {
            grid_issue(iss, "%s: \"%s\" has more than %d entries", where, v->string, max);
            return -1;
        }
        snprintf(dst + (size_t)(*n) * len, len, "%s", buf);
        (*n)++, i++;
    }
    return 0;
}

static int get_str(const cJSON *v, const char *where, char *dst, size_t n, GridIssues *iss) {
    Err e;
    if (json_get_str(v, dst, n, &e)) {
        grid_issue(iss, "%s: %s", where, e.msg);
        return -1;
    }
    return 0;
}

// a value of an attack parameter as text (numbers exactly, fractions as written)
static int param_text(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsNumber(v)) snprintf(buf, n, "%.17g", v->valuedouble);
    else if (cJSON_IsBool(v)) snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsString(v) && strlen(v->valuestring) < n) snprintf(buf, n, "%s", v->valuestring);
    else return -1;
    return 0;
}

// one attack entry (a name, or {"name", "params", "label"}) into variants
static void parse_attack(Grid *g, const cJSON *v, int idx, GridIssues *iss) {
    char where[160], name[64] = "", label[64] = "";
    snprintf(where, sizeof(where), "%.120s: \"attacks\"[%d]", g->path, idx);
    const cJSON *params = NULL;
    if (cJSON_IsString(v)) snprintf(name, sizeof(name), "%s", v->valuestring);
    else if (cJSON_IsObject(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            if (!strcmp(it->string, "name")) get_str(it, where, name, sizeof(name), iss);
            else if (!strcmp(it->string, "label")) get_str(it, where, label, sizeof(label), iss);
            else if (!strcmp(it->string, "params")) {
                if (!cJSON_IsObject(it)) grid_issue(iss, "%s: \"params\" must be an object such as {\"eps\": \"8/255\"}", where);
                else params = it;
            } else grid_issue(iss, "%s: unknown key \"%s\" (name, params, label)", where, it->string);
        }
    } else {
        grid_issue(iss, "%s: an attack is a name or {\"name\": ..., \"params\": {...}}, not %s", where, json_type(v));
        return;
    }
    if (!name[0]) {
        grid_issue(iss, "%s: the attack has no name", where);
        return;
    }
    // any name the attack library accepts: BEARD's spellings (Deepfool, AA, PGD_L2), its
    // variants (PGD_e4: eps 4/255) and "PGD(eps=4/255, steps=20)"
    const AttackDef *def = NULL;
    AttackParams base;
    Err re;
    int rr = attack_resolve(name, g->preset, &def, &base, &re);
    if (rr == -2) {
        grid_issue(iss, "%s: unknown attack '%s' (see beard attack --help for the library)", where, name);
        return;
    }
    if (rr) {
        grid_issue(iss, "%s: %s", where, re.msg);
        return;
    }
    if (label[0] && !is_word(label)) grid_issue(iss, "%s: label '%s' must be letters, digits and '_'", where, label);
    // list-valued parameters make variants (the cartesian product, in order)
    const cJSON *lists[ATTACK_MAX_PARAMS];
    int n_lists = 0, n_var = 1;
    AttackParams preset;
    attack_params_init(&preset, def, g->preset);
    const cJSON *it;
    if (params)
        cJSON_ArrayForEach(it, params) {
            if (cJSON_IsArray(it)) {
                if (cJSON_GetArraySize(it) == 0) {
                    grid_issue(iss, "%s: %s.%s is an empty list", where, name, it->string);
                    return;
                }
                if (n_lists == ATTACK_MAX_PARAMS) continue;
                lists[n_lists++] = it;
                n_var *= cJSON_GetArraySize(it);
                continue;
            }
            char text[64];
            if (param_text(it, text, sizeof(text))) {
                grid_issue(iss, "%s: %s.%s must be a number, a fraction such as \"8/255\" or a word", where, name, it->string);
                continue;
            }
            int r = attack_params_set_text(&base, def, it->string, text);
            if (r == -1) grid_issue(iss, "%s: %s has no parameter \"%s\"", where, def->name, it->string);
            if (r == -2) grid_issue(iss, "%s: %s.%s: cannot use '%s'", where, def->name, it->string, text);
        }
    if (n_var > 64) {
        grid_issue(iss, "%s: %s has %d parameter variants (at most 64)", where, name, n_var);
        return;
    }
    for (int k = 0; k < n_var; k++) {
        if (g->n_attacks == GRID_MAX_ATTACKS) {
            grid_issue(iss, "%s: more than %d attack variants", g->path, GRID_MAX_ATTACKS);
            return;
        }
        GridAttack *a = &g->attacks[g->n_attacks];
        a->def = def;
        a->params = base;
        int rem = k, bad = 0;
        for (int l = 0; l < n_lists; l++) {
            int sz = cJSON_GetArraySize(lists[l]), pick = rem % sz;
            rem /= sz;
            char text[64];
            const cJSON *val = cJSON_GetArrayItem(lists[l], pick);
            if (param_text(val, text, sizeof(text))) {
                grid_issue(iss, "%s: %s.%s[%d] must be a number or a fraction", where, name, lists[l]->string, pick);
                bad = 1;
                continue;
            }
            int r = attack_params_set_text(&a->params, def, lists[l]->string, text);
            if (r == -1) grid_issue(iss, "%s: %s has no parameter \"%s\"", where, def->name, lists[l]->string), bad = 1;
            if (r == -2) grid_issue(iss, "%s: %s.%s: cannot use '%s'", where, def->name, lists[l]->string, text), bad = 1;
        }
        if (bad) return;
        Err ce;
        if (attack_params_check(def, &a->params, NULL, &ce)) {
            grid_issue(iss, "%s: %s", where, ce.msg);
            return;
        }
        // the label: the given one, else the name and the parameters off the preset
        char lab[64];
        snprintf(lab, sizeof(lab), "%s", label[0] ? label : def->name);
        if (n_var > 1 && label[0]) snprintf(lab, sizeof(lab), "%.50s_%d", label, k);
        if (!label[0]) {
            size_t len = strlen(lab);
            int first = 1;
            for (int i = 0; i < a->params.n; i++) {
                char vb[ATTACK_TEXT_LEN], pb[ATTACK_TEXT_LEN];
                if (grid_param_is_text(def, &a->params, i)) {
                    if (!strcmp(attack_param_text(&a->params, def, i, vb, sizeof(vb)),
                                attack_param_text(&preset, def, i, pb, sizeof(pb))))
                        continue;
                } else if (a->params.values[i] == preset.values[i] ||
                           (isnan(a->params.values[i]) && isnan(preset.values[i])))
                    continue;
                attack_param_text(&a->params, def, i, vb, sizeof(vb));
                if (vb[0] >= '0' && vb[0] <= '9') snprintf(vb, sizeof(vb), "%.6g", a->params.values[i]);
                len += snprintf(lab + len, len < sizeof(lab) ? sizeof(lab) - len : 0, "%s%s=%s", first ? "[" : ",",
                                a->params.names[i], vb);
                first = 0;
            }
            if (!first && len + 1 < sizeof(lab)) lab[len++] = ']', lab[len] = 0;
            if (len >= sizeof(lab)) {
                grid_issue(iss, "%s: %s: too many changed parameters for a label; give \"label\"", where, name);
                return;
            }
        }
        snprintf(a->label, sizeof(a->label), "%s", lab);
        a->eps = NAN;
        for (int i = 0; i < a->params.n; i++)
            if (!strcmp(a->params.names[i], "eps")) a->eps = a->params.values[i];
        for (int j = 0; j < g->n_attacks; j++)
            if (!strcmp(g->attacks[j].label, a->label)) {
                grid_issue(iss, "%s: the attack %s appears twice (give one of them a \"label\")", where, a->label);
                return;
            }
        g->n_attacks++;
    }
}

// a method's "distill" object: beard distill --config's settings (read by its own parser,
// distill_settings_apply_json) less what the grid decides, and "ipc" as the grid's
static void parse_distill(Grid *g, GridMethod *m, const cJSON *v, const char *where, GridIssues *iss) {
    DistillSettings *s = &m->distill;
    distill_settings_default(s);
    s->seed = (long long)g->seed;
    m->distill_ipcs = (1u << g->n_ipcs) - 1;
    if (!cJSON_IsObject(v)) {
        grid_issue(iss, "%s: \"distill\" must be an object such as {\"method\": \"DM\", \"iterations\": 20000}, not %s",
                   where, json_type(v));
        return;
    }
    cJSON *rest = cJSON_CreateObject();
    const cJSON *it;
    Err e;
    cJSON_ArrayForEach(it, v) {
        const char *k = it->string;
        if (!strcmp(k, "ipc") || !strcmp(k, "ipcs")) {
            char list[GRID_MAX_LIST][16];
            int n = 0;
            if (str_list(it, where, &list[0][0], 16, GRID_MAX_LIST, &n, iss)) continue;
            m->distill_ipcs = 0;
            for (int i = 0; i < n; i++) {
                int found = -1;
                for (int j = 0; j < g->n_ipcs && found < 0; j++)
                    if (!strcmp(list[i], g->ipcs[j])) found = j;
                if (found < 0) {
                    char have[256] = "";
                    for (int j = 0; j < g->n_ipcs; j++)
                        snprintf(have + strlen(have), sizeof(have) - strlen(have), "%s%s", j ? ", " : "", g->ipcs[j]);
                    grid_issue(iss, "%s: \"distill\": ipc %s is not one of the grid's \"ipcs\" (%s)", where, list[i], have);
                } else m->distill_ipcs |= 1u << found;
            }
        } else if (!strcmp(k, "dataset") || !strcmp(k, "data_path") || !strcmp(k, "data") || !strcmp(k, "save_path") ||
                   !strcmp(k, "out") || !strcmp(k, "threads")) {
            grid_issue(iss, "%s: \"distill\": \"%s\" is the grid's own (\"datasets\", \"data\", \"out\", \"threads\")", where, k);
        } else if (!strcmp(k, "eval_every") || !strcmp(k, "num_eval") || !strcmp(k, "epoch_eval_train") ||
                   !strcmp(k, "lr_net") || !strcmp(k, "batch_train") || !strcmp(k, "eval_mode") || !strcmp(k, "num_exp") ||
                   !strcmp(k, "log_every")) {
            grid_issue(iss, "%s: \"distill\": \"%s\": a grid evaluates a distilled set by its training cells (\"train\", "
                            "\"runs\"), not inside the distillation", where, k);
        } else {
            // method, model/arch, iterations/Iteration, seed, checkpoint_every, the method's
            // parameters (its own names; checked below once the method is known)
            cJSON *dup = cJSON_Duplicate(it, 1);
            if (dup) cJSON_AddItemToObject(rest, k, dup);
        }
    }
    if (distill_settings_apply_json(s, rest, &e)) grid_issue(iss, "%s: \"distill\": %s", where, e.msg);
    cJSON_Delete(rest);
    if (s->arch[0] && !is_word(s->arch)) grid_issue(iss, "%s: \"distill\": '%s' is not an architecture name", where, s->arch);
    if (!s->method[0] && strlen(m->name) < sizeof(s->method)) memcpy(s->method, m->name, strlen(m->name) + 1);
    m->distill_def = distill_method_find(s->method);
    if (!m->distill_def) {
        char list[512] = "";
        for (int i = 0; i < distill_method_count(); i++)
            snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", distill_method_get(i)->name);
        grid_issue(iss, "%s: \"distill\": unknown method '%s' (beard distill has %s; \"method\" names it when the grid's "
                        "name differs)", where, s->method[0] ? s->method : m->name, list);
        return;
    }
    snprintf(s->method, sizeof(s->method), "%s", m->distill_def->name);
    DistillParams probe;
    distill_params_init(&probe, m->distill_def);
    // a bad parameter is reported once, here, and dropped, so that the plan's checks of
    // the rest (IPCs, the architecture, the method's set-up) still run
    int kept = 0;
    for (int k = 0; k < s->n_params; k++) {
        if (distill_params_set_text(&probe, s->param_names[k], s->param_values[k], &e)) {
            grid_issue(iss, "%s: \"distill\": %s", where, e.msg);
            continue;
        }
        if (kept != k) {
            memcpy(s->param_names[kept], s->param_names[k], sizeof(s->param_names[0]));
            memcpy(s->param_values[kept], s->param_values[k], sizeof(s->param_values[0]));
        }
        kept++;
    }
    s->n_params = kept;
}

static void parse_method(Grid *g, const cJSON *v, int idx, GridIssues *iss) {
    char where[160];
    snprintf(where, sizeof(where), "%.120s: \"methods\"[%d]", g->path, idx);
    if (g->n_methods == GRID_MAX_METHODS) {
        grid_issue(iss, "%s: more than %d methods", g->path, GRID_MAX_METHODS);
        return;
    }
    GridMethod *m = &g->methods[g->n_methods];
    memset(m, 0, sizeof(*m));
    m->exp = -1;
    int src_dataset = 0, has_distill = 0;
    const cJSON *distill = NULL;
    if (cJSON_IsString(v)) snprintf(m->name, sizeof(m->name), "%s", v->valuestring);
    else if (cJSON_IsObject(v)) {
        const cJSON *it;
        Err e;
        cJSON_ArrayForEach(it, v) {
            const char *k = it->string;
            int rc = 0;
            if (!strcmp(k, "name")) rc = json_get_str(it, m->name, sizeof(m->name), &e);
            else if (!strcmp(k, "model")) rc = json_get_str(it, m->model, sizeof(m->model), &e);
            else if (!strcmp(k, "pool") || !strcmp(k, "data_file")) rc = json_get_str(it, m->pool, sizeof(m->pool), &e);
            else if (!strcmp(k, "src_dataset")) rc = json_get_bool(it, &src_dataset, &e);
            else if (!strcmp(k, "unpack4") || !strcmp(k, "aug")) rc = json_get_bool(it, &m->unpack4, &e);
            else if (!strcmp(k, "learned_lr")) rc = json_get_bool(it, &m->learned_lr, &e);
            else if (!strcmp(k, "pixels")) rc = json_get_bool(it, &m->pixels, &e);
            else if (!strcmp(k, "exp")) rc = json_get_int(it, -1000000, 1000000, &m->exp, &e);
            else if (!strcmp(k, "distill")) {
                has_distill = 1;
                distill = it;
                continue;
            }
            else {
                grid_issue(iss, "%s: unknown key \"%s\" (name, model, pool, src_dataset, unpack4, learned_lr, pixels, exp, "
                                "distill)", where, k);
                continue;
            }
            if (rc) grid_issue(iss, "%s: %s", where, e.msg);
        }
    } else {
        grid_issue(iss, "%s: a method is a name or an object, not %s", where, json_type(v));
        return;
    }
    if (!m->name[0]) {
        grid_issue(iss, "%s: the method has no name", where);
        return;
    }
    if (!is_word(m->name)) {
        grid_issue(iss, "%s: method name '%s' must be letters, digits and '_' (it goes into BEARD's file names and logs)",
                   where, m->name);
        return;
    }
    int n_src = (m->model[0] != 0) + (m->pool[0] != 0) + src_dataset + has_distill;
    if (n_src > 1) {
        grid_issue(iss, "%s: %s: give one of \"model\", \"pool\", \"src_dataset\", \"distill\"", where, m->name);
        return;
    }
    m->src = m->model[0] ? GRID_SRC_MODEL : m->pool[0] ? GRID_SRC_POOL : src_dataset ? GRID_SRC_FULL
             : has_distill                               ? GRID_SRC_DISTILL
                                                         : GRID_SRC_AUTO;
    if (distill) parse_distill(g, m, distill, where, iss);
    g->n_methods++;
}

static void set_defaults(Grid *g) {
    memset(g, 0, sizeof(*g));
    snprintf(g->name, sizeof(g->name), "grid");
    g->runs = 1;
    g->n_modes = 2, g->modes[0] = 1, g->modes[1] = 0;
    g->n_sems = 2, g->sems[0] = SEM_BEARD, g->sems[1] = SEM_PIXEL;
    g->preset = PRESET_BEARD;
    g->policy = TARGET_BEARD;
    g->batch = 256;
    g->n_ipcs = 1;
    snprintf(g->ipcs[0], sizeof(g->ipcs[0]), "50");
    g->n_archs = 1;
    snprintf(g->archs[0], sizeof(g->archs[0]), "ConvNet");
    g->n_train_attacks = 1;
    snprintf(g->train_attacks[0], sizeof(g->train_attacks[0]), "None");
    train_settings_default(&g->train);
    snprintf(g->data, sizeof(g->data), "data");
    snprintf(g->out, sizeof(g->out), "beard-run");
    snprintf(g->store, sizeof(g->store), "results.db");
}

int grid_from_json(Grid *g, const cJSON *root, const char *name, GridIssues *iss) {
    int n0 = iss->n;
    set_defaults(g);
    snprintf(g->path, sizeof(g->path), "%s", name);
    const cJSON *v, *attacks = NULL, *methods = NULL;
    int policy_set = 0;
    Err e;
    if (!cJSON_IsObject(root)) { // a list or a number: no keys to read (found by fuzz_config)
        grid_issue(iss, "%s: a grid config is a JSON object of keys such as \"datasets\", not %s", name,
                   cJSON_IsArray(root) ? "a list" : "a single value");
        return -1;
    }
    // the preset first: attack parameters start from it
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(root, "preset");
    if (pv) {
        char s[32] = "";
        if (!get_str(pv, name, s, sizeof(s), iss) && preset_parse(s, &g->preset))
            grid_issue(iss, "%s: \"preset\" must be torchattacks, beard or fra31, not '%s'", name, s);
        if (g->preset != PRESET_BEARD) g->policy = TARGET_NEXT;
    }
    cJSON_ArrayForEach(v, root) {
        const char *k = v->string;
        char tmp[GRID_MAX_LIST][32];
        int n = 0;
        if (!strcmp(k, "preset") || !strcmp(k, "comment") || !strcmp(k, "_comment")) continue;
        else if (!strcmp(k, "name")) get_str(v, name, g->name, sizeof(g->name), iss);
        else if (!strcmp(k, "datasets") || !strcmp(k, "dataset")) {
            if (str_list(v, name, &tmp[0][0], 32, GRID_MAX_LIST, &n, iss)) continue;
            g->n_datasets = 0;
            for (int i = 0; i < n; i++) {
                const DatasetInfo *info = grid_dataset_info(tmp[i]);
                if (!info) {
                    grid_issue(iss, "%s: unknown dataset '%s' (cifar10, cifar100, mnist, fashionmnist, svhn, tinyimagenet, "
                                    "synthetic)", name, tmp[i]);
                    continue;
                }
                snprintf(g->datasets[g->n_datasets++], 32, "%s", info->name);
            }
        } else if (!strcmp(k, "ipcs") || !strcmp(k, "ipc")) {
            if (str_list(v, name, &g->ipcs[0][0], 16, GRID_MAX_LIST, &g->n_ipcs, iss)) continue;
            for (int i = 0; i < g->n_ipcs; i++) {
                char *end;
                long x = strtol(g->ipcs[i], &end, 10);
                if (*end || x <= 0) grid_issue(iss, "%s: \"ipcs\": '%s' is not a positive number of images per class", name, g->ipcs[i]);
            }
        } else if (!strcmp(k, "archs") || !strcmp(k, "arch") || !strcmp(k, "model")) {
            if (str_list(v, name, &g->archs[0][0], 32, GRID_MAX_LIST, &g->n_archs, iss)) continue;
            for (int i = 0; i < g->n_archs; i++)
                if (!is_word(g->archs[i])) grid_issue(iss, "%s: architecture '%s' is not a name", name, g->archs[i]);
        } else if (!strcmp(k, "train_attacks") || !strcmp(k, "train_attack")) {
            if (str_list(v, name, &g->train_attacks[0][0], 48, GRID_MAX_LIST, &g->n_train_attacks, iss)) continue;
            for (int i = 0; i < g->n_train_attacks; i++)
                if (!is_word(g->train_attacks[i])) grid_issue(iss, "%s: training attack '%s' is not a name", name, g->train_attacks[i]);
        } else if (!strcmp(k, "runs")) {
            if (json_get_int(v, 1, 1000, &g->runs, &e)) grid_issue(iss, "%s: %s", name, e.msg);
        } else if (!strcmp(k, "methods")) methods = v;
        else if (!strcmp(k, "attacks")) attacks = v;
        else if (!strcmp(k, "modes") || !strcmp(k, "targeted")) {
            if (cJSON_IsBool(v)) {
                g->n_modes = 1, g->modes[0] = cJSON_IsTrue(v);
                continue;
            }
            if (str_list(v, name, &tmp[0][0], 32, GRID_MAX_LIST, &n, iss)) continue;
            g->n_modes = 0;
            for (int i = 0; i < n; i++) {
                int t = !strcasecmp(tmp[i], "targeted") || !strcasecmp(tmp[i], "yes") ? 1
                        : !strcasecmp(tmp[i], "untargeted") || !strcasecmp(tmp[i], "no") ? 0
                        : !strcasecmp(tmp[i], "both")                                   ? 2
                                                                                         : -1;
                if (t < 0) grid_issue(iss, "%s: \"%s\": '%s' is not targeted, untargeted or both", name, k, tmp[i]);
                else if (t == 2) g->n_modes = 2, g->modes[0] = 1, g->modes[1] = 0;
                else if (g->n_modes < 2 && (g->n_modes == 0 || g->modes[0] != t)) g->modes[g->n_modes++] = t;
            }
        } else if (!strcmp(k, "semantics")) {
            if (str_list(v, name, &tmp[0][0], 32, GRID_MAX_LIST, &n, iss)) continue;
            g->n_sems = 0;
            for (int i = 0; i < n; i++) {
                Semantics s;
                if (!strcasecmp(tmp[i], "both")) {
                    g->n_sems = 2, g->sems[0] = SEM_BEARD, g->sems[1] = SEM_PIXEL;
                } else if (semantics_parse(tmp[i], &s)) grid_issue(iss, "%s: \"semantics\": '%s' is not beard, pixel or both", name, tmp[i]);
                else if (g->n_sems < 2 && (g->n_sems == 0 || g->sems[0] != s)) g->sems[g->n_sems++] = s;
            }
        } else if (!strcmp(k, "target_policy")) {
            char s[32] = "";
            if (!get_str(v, name, s, sizeof(s), iss) && target_policy_parse(s, &g->policy))
                grid_issue(iss, "%s: \"target_policy\" must be next, beard, random or least-likely, not '%s'", name, s);
            policy_set = 1;
        } else if (!strcmp(k, "limit") || !strcmp(k, "n_examples")) {
            if (json_get_long(v, 0, 1L << 30, &g->limit, &e)) grid_issue(iss, "%s: %s", name, e.msg);
        } else if (!strcmp(k, "train_limit")) {
            if (json_get_long(v, 0, 1L << 30, &g->train_limit, &e)) grid_issue(iss, "%s: %s", name, e.msg);
        } else if (!strcmp(k, "batch")) {
            if (json_get_int(v, 1, 1 << 16, &g->batch, &e)) grid_issue(iss, "%s: %s", name, e.msg);
        } else if (!strcmp(k, "threads")) {
            if (json_get_int(v, 0, 256, &g->threads, &e)) grid_issue(iss, "%s: %s", name, e.msg);
        } else if (!strcmp(k, "seed")) {
            long s;
            if (json_get_long(v, 0, 0x7fffffffffffffffL, &s, &e)) grid_issue(iss, "%s: %s", name, e.msg);
            else g->seed = (uint64_t)s;
        } else if (!strcmp(k, "train")) {
            if (!cJSON_IsObject(v)) {
                grid_issue(iss, "%s: \"train\" must be an object of training settings (beard train's keys)", name);
                continue;
            }
            g->train.warnings[0] = 0;
            if (train_settings_apply_json(&g->train, v, &e)) grid_issue(iss, "%s: \"train\": %s", name, e.msg);
            for (char *l = g->train.warnings; *l;) { // unknown keys are errors in a grid
                char *nl = strchr(l, '\n');
                grid_issue(iss, "%s: \"train\": %.*s", name, nl ? (int)(nl - l) : (int)strlen(l), l);
                if (!nl) break;
                l = nl + 1;
            }
        } else if (!strcmp(k, "data") || !strcmp(k, "data_path")) get_str(v, name, g->data, sizeof(g->data), iss);
        else if (!strcmp(k, "out") || !strcmp(k, "save_path")) get_str(v, name, g->out, sizeof(g->out), iss);
        else if (!strcmp(k, "store")) get_str(v, name, g->store, sizeof(g->store), iss);
        else if (!strcmp(k, "dataset_pool")) get_str(v, name, g->dataset_pool, sizeof(g->dataset_pool), iss);
        else if (!strcmp(k, "model_pool")) str_list(v, name, &g->model_pools[0][0], GRID_PATH, 4, &g->n_model_pools, iss);
        else if (!strcmp(k, "import_logs") || !strcmp(k, "logs"))
            str_list(v, name, &g->logs[0][0], GRID_PATH, GRID_MAX_LOGS, &g->n_logs, iss);
        else if (!strcmp(k, "published")) get_str(v, name, g->published, sizeof(g->published), iss);
        else
            grid_issue(iss, "%s: unknown key \"%s\" (datasets, methods, ipcs, archs, runs, train_attacks, attacks, "
                            "modes, semantics, preset, target_policy, limit, train_limit, batch, seed, threads, train, data, out, store, "
                            "model_pool, dataset_pool, import_logs, published, name)", name, k);
    }
    (void)policy_set;
    if (!methods && !g->n_logs) grid_issue(iss, "%s: no \"methods\" (and no \"import_logs\"): nothing to run", name);
    if (methods) {
        if (!cJSON_IsArray(methods)) grid_issue(iss, "%s: \"methods\" must be a list", name);
        else {
            int i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, methods) parse_method(g, it, i++, iss);
            for (int a = 0; a < g->n_methods; a++)
                for (int b = a + 1; b < g->n_methods; b++)
                    if (!strcmp(g->methods[a].name, g->methods[b].name))
                        grid_issue(iss, "%s: the method %s appears twice: its cells and its model files would collide", name,
                                   g->methods[a].name);
        }
    }
    if (attacks) {
        if (!cJSON_IsArray(attacks)) grid_issue(iss, "%s: \"attacks\" must be a list", name);
        else {
            int i = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, attacks) parse_attack(g, it, i++, iss);
        }
    }
    if (methods && !g->n_datasets) grid_issue(iss, "%s: no \"datasets\"", name);
    if (!g->n_modes) grid_issue(iss, "%s: \"modes\" is empty", name);
    if (!g->n_sems) grid_issue(iss, "%s: \"semantics\" is empty", name);
    return iss->n > n0 ? -1 : 0;
}

// ----------------------------------------------------------------------------
// templates, model pools, checksums

static int expand(const char *tmpl, const Grid *g, const GridMethod *m, int d, int ipc, int arch, int ta, char *out,
                  size_t n) {
    size_t k = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *val = NULL;
        size_t skip = 0;
        if (*p == '{') {
            static const char *const names[] = {"{method}", "{dataset}", "{ipc}", "{arch}", "{model}", "{train_attack}"};
            const char *vals[] = {m->name, g->datasets[d], g->ipcs[ipc], g->archs[arch], g->archs[arch], g->train_attacks[ta]};
            for (int i = 0; i < 6; i++)
                if (!strncmp(p, names[i], strlen(names[i]))) val = vals[i], skip = strlen(names[i]);
        }
        if (val) {
            int w = snprintf(out + k, k < n ? n - k : 0, "%s", val);
            k += (size_t)w;
            p += skip - 1;
        } else {
            if (k + 1 < n) out[k] = *p;
            k++;
        }
        if (k >= n) return -1;
    }
    out[k] = 0;
    return 0;
}

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// BEARD's checkpoint names in a model pool folder (or its <METHOD>/ sub-folder):
// {method}_{arch}_{dataset}_{ipc}_{train_attack}.pth, else exactly one ..._{acc}.pth
static int find_in_pool(const char *dir, const char *stem, char *out, size_t n, int *ambiguous) {
    char exact[GRID_PATH + 128];
    snprintf(exact, sizeof(exact), "%s/%s.pth", dir, stem);
    if (is_file(exact)) {
        snprintf(out, n, "%s", exact);
        return 1;
    }
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    int found = 0;
    size_t sl = strlen(stem);
    char names[2][256];
    struct dirent *de;
    while ((de = readdir(dh))) {
        const char *f = de->d_name;
        size_t fl = strlen(f);
        if (fl <= sl + 5 || strncmp(f, stem, sl) || f[sl] != '_' || strcmp(f + fl - 4, ".pth")) continue;
        // the tail must be an accuracy such as 0.6995
        const char *t = f + sl + 1;
        int ok = isdigit((unsigned char)*t) != 0;
        for (const char *q = t; q < f + fl - 4; q++) ok &= isdigit((unsigned char)*q) || *q == '.';
        if (!ok) continue;
        if (found < 2) snprintf(names[found], sizeof(names[found]), "%s", f);
        found++;
    }
    closedir(dh);
    if (found == 1) snprintf(out, n, "%s/%s", dir, names[0]);
    if (found > 1) *ambiguous = 1, snprintf(out, n, "%s/%s and %s/%s", dir, names[0], dir, names[1]);
    return found == 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// the content hash of a pool source: a file, an MTT folder or prefix, an image folder
int grid_source_sha(const char *path, char out[65], Err *e) {
    if (is_file(path)) return store_sha256_file(path, out, e);
    char *list = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    char **names = NULL;
    int n = 0, capn = 0;
    if (is_dir(path)) {
        // every file under the folder, by relative path, sorted
        char stack[8][GRID_PATH];
        int depth = 0;
        snprintf(stack[depth++], GRID_PATH, "%s", path);
        while (depth) {
            char dir[GRID_PATH];
            snprintf(dir, sizeof(dir), "%s", stack[--depth]);
            DIR *dh = opendir(dir);
            if (!dh) {
                err_set(e, "cannot read the folder %s", dir);
                goto done;
            }
            struct dirent *de;
            while ((de = readdir(dh))) {
                if (de->d_name[0] == '.') continue;
                char full[GRID_PATH * 2];
                snprintf(full, sizeof(full), "%s/%s", dir, de->d_name);
                if (is_dir(full)) {
                    if (depth < 8 && strlen(full) < GRID_PATH) memcpy(stack[depth++], full, strlen(full) + 1);
                } else if (is_file(full)) {
                    if (n == capn) {
                        capn = capn ? 2 * capn : 256;
                        char **nn = realloc(names, sizeof(char *) * capn);
                        if (!nn) {
                            closedir(dh);
                            err_set(e, "out of memory");
                            goto done;
                        }
                        names = nn;
                    }
                    names[n++] = xstrdup(full);
                }
            }
            closedir(dh);
        }
    } else { // BEARD's MTT data_file: a prefix
        static const char *const tails[] = {"images_best.pt", "labels_best.pt", "lr_best.pt"};
        for (int i = 0; i < 3; i++) {
            char full[GRID_PATH + 32];
            snprintf(full, sizeof(full), "%s%s", path, tails[i]);
            if (!is_file(full)) continue;
            if (n == capn) {
                capn = 4;
                names = realloc(names, sizeof(char *) * capn);
            }
            names[n++] = xstrdup(full);
        }
        if (!n) {
            err_set(e, "no such file or folder: %s", path);
            goto done;
        }
    }
    qsort(names, n, sizeof(char *), cmp_str);
    size_t root = strlen(path);
    for (int i = 0; i < n; i++) {
        char h[65];
        if (store_sha256_file(names[i], h, e)) goto done;
        size_t need = strlen(names[i]) + 70;
        if (len + need > cap) {
            cap = (len + need) * 2;
            char *nl = realloc(list, cap);
            if (!nl) {
                err_set(e, "out of memory");
                goto done;
            }
            list = nl;
        }
        len += (size_t)snprintf(list + len, cap - len, "%s %s\n", names[i] + (strlen(names[i]) >= root ? root : 0), h);
    }
    store_sha256_hex(list ? list : "", len, out);
    rc = 0;
done:
    for (int i = 0; i < n; i++) xfree(names[i]);
    free(names);
    free(list);
    return rc;
}

void grid_dataset_sha(const Dataset *ds, char out[65]) {
    char a[65], b[65], both[130];
    store_sha256_hex(ds->images, (size_t)ds->n * ds->c * ds->h * ds->w, a);
    store_sha256_hex(ds->labels, sizeof(int) * (size_t)ds->n, b);
    snprintf(both, sizeof(both), "%s%s", a, b);
    store_sha256_hex(both, 128, out);
}

// ----------------------------------------------------------------------------
// distilled sets

int grid_distill_setup(const GridPlan *p, int pool, const char *hash, DistillConfig *cfg, DistillParams *params,
                       DistillPaths *paths, Err *e) {
    const GridPool *gp = &p->pools[pool];
    const Grid *g = p->grid;
    const GridMethod *m = &g->methods[gp->method];
    const DatasetInfo *info = p->tests[gp->dataset].info;
    DistillSettings s = m->distill;
    s.ipc = atoi(g->ipcs[gp->ipc]);
    if (distill_settings_params(&s, m->distill_def, info, params, e)) return -1;
    // beard distill's defaults: the method's architecture and iteration count
    const DistillMethodDef *def = m->distill_def;
    memset(cfg, 0, sizeof(*cfg));
    cfg->method = def;
    cfg->info = info;
    snprintf(cfg->arch, sizeof(cfg->arch), "%s", s.arch[0] ? s.arch : def->default_arch ? def->default_arch : "ConvNet");
    cfg->ipc = s.ipc;
    cfg->iterations = s.iterations >= 0          ? s.iterations
                      : def->default_iterations ? def->default_iterations
                                                : DISTILL_DEFAULT_ITERATIONS;
    cfg->seed = (uint64_t)s.seed;
    cfg->ckpt_every = s.ckpt_every;
    cfg->progress = 1; // BEARD_NO_PROGRESS (--quiet, MPI ranks) silences it
    char dir[GRID_PATH + 96];
    if (file_name_check(m->name, "method", e)) return -1;
    if (snprintf(dir, sizeof(dir), "%s/dataset_pool/%s", g->out, m->name) >= (int)sizeof(dir))
        return err_set(e, "\"out\" is too long");
    if (distill_paths(paths, dir, cfg, e)) return -1;
    // the checkpoint is named by the cell's hash: a changed setting never resumes a stale one
    size_t len = strlen(paths->ckpt), tail = strlen(".checkpoint.pt");
    if (hash && len > tail) {
        char stem[sizeof(paths->ckpt)];
        snprintf(stem, sizeof(stem), "%.*s", (int)(len - tail), paths->ckpt);
        if (snprintf(cfg->ckpt_path, sizeof(cfg->ckpt_path), "%s.%.12s.checkpoint.pt", stem, hash) >= (int)sizeof(cfg->ckpt_path))
            return err_set(e, "the checkpoint path is too long");
    }
    return 0;
}

void grid_pool_sha(const Pool *pool, char out[65]) {
    int32_t dims[5] = {pool->n, pool->c, pool->h, pool->w, pool->n_classes};
    size_t D = (size_t)pool->n * pool->c * pool->h * pool->w;
    const void *bufs[5] = {dims, pool->x, pool->y, pool->soft, &pool->lr};
    size_t lens[5] = {sizeof(dims), pool->x ? sizeof(float) * D : 0, sizeof(int) * (size_t)pool->n,
                      pool->soft ? sizeof(float) * (size_t)pool->n * pool->n_classes : 0, sizeof(double)};
    store_sha256_parts(bufs, lens, 5, out);
}

int grid_pool_file_sha(const GridPlan *p, int k, const char *path, double lr, char out[65], Err *e) {
    const GridPool *gp = &p->pools[k];
    const GridMethod *m = &p->grid->methods[gp->method];
    PoolOptions po = {.info = p->tests[gp->dataset].info, .exp = m->exp, .pixels = m->pixels};
    Pool pool;
    if (pool_load(&pool, path, &po, e)) {
        pool_free(&pool);
        return -1;
    }
    pool.lr = lr;
    grid_pool_sha(&pool, out);
    pool_free(&pool);
    return 0;
}

double grid_row_learned_lr(const StoreRow *r) {
    cJSON *x = r->extra ? cJSON_Parse(r->extra) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, "learned_lr");
    double lr = cJSON_IsNumber(v) && v->valuedouble > 0 ? v->valuedouble : 0;
    cJSON_Delete(x);
    return lr;
}

static double param_or(const DistillParams *p, const char *name, double def) {
    int i = distill_param_index(p, name);
    return i >= 0 ? p->v[i] : def;
}

double grid_distill_passes(const DistillParams *p, int K, int ipc, int min_class) {
    // From the parameters the methods declare, as grid_attack_passes does for attacks: an
    // estimate for the dry run and the ETA, not a measurement. Distribution matching (DM,
    // IDM, BACON): each class's real batch forward, the synthetic set forward and
    // backward, outer_loop times. Gradient matching (DC, DSA): per outer step the real and
    // synthetic batches forward and backward twice (the matching loss differentiates a
    // gradient), then inner_loop epochs of the network on the synthetic set; DC's
    // get_loops (0: by IPC) is outer = IPC, inner about 500 / IPC. Trajectory matching
    // (MTT): syn_steps unrolled steps forward and backward, and back again through them.
    double batch = MIN(param_or(p, "batch_real", 256), (double)min_class);
    double n_real = K * batch, syn = (double)K * ipc;
    if (distill_param_index(p, "syn_steps") >= 0) {
        double b = param_or(p, "batch_syn", 0);
        return param_or(p, "syn_steps", 20) * 4 * (b > 0 ? b : syn);
    }
    if (distill_param_index(p, "inner_loop") >= 0) {
        double outer = param_or(p, "outer_loop", 0), inner = param_or(p, "inner_loop", 0);
        if (!(outer > 0)) outer = ipc;
        if (!(inner > 0)) inner = ipc == 1 ? 1 : MAX(1, 500 / ipc);
        return outer * (4 * (n_real + syn) + inner * 2 * syn);
    }
    return MAX(1, param_or(p, "outer_loop", 1)) * (n_real + 2 * syn);
}

static int add_pool(GridPlan *p, int *cap) {
    if (p->n_pools == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        GridPool *np = realloc(p->pools, sizeof(GridPool) * *cap);
        if (!np) return -1;
        p->pools = np;
    }
    memset(&p->pools[p->n_pools], 0, sizeof(GridPool));
    return p->n_pools++;
}

// ----------------------------------------------------------------------------
// the plan

static GridModel *add_model(GridPlan *p, int *cap) {
    if (p->n_models == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        GridModel *nm = realloc(p->models, sizeof(GridModel) * *cap);
        if (!nm) return NULL;
        p->models = nm;
    }
    GridModel *m = &p->models[p->n_models++];
    memset(m, 0, sizeof(*m));
    m->train_cell = -1;
    return m;
}

static GridCell *add_cell(GridPlan *p, int *cap) {
    if (p->n_cells == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        GridCell *nc = realloc(p->cells, sizeof(GridCell) * *cap);
        if (!nc) return NULL;
        p->cells = nc;
    }
    GridCell *c = &p->cells[p->n_cells++];
    memset(c, 0, sizeof(*c));
    c->attack = c->targeted = c->sem = c->pool = -1;
    return c;
}

static void model_prefix(const GridPlan *p, const GridModel *m, char *buf, size_t n) {
    const Grid *g = p->grid;
    snprintf(buf, n, "%s/%s/ipc%s/%s/%s/run%d", g->datasets[m->dataset], g->methods[m->method].name, g->ipcs[m->ipc],
             g->archs[m->arch], g->train_attacks[m->train_attack], m->run);
}

// a pool already parsed for the checks (several cells may train on one file)
typedef struct {
    char path[GRID_PATH];
    int unpack4, learned_lr, pixels, exp, dataset;
    int ok, n;
    char sha[65];
} PoolSeen;

static int check_pool(PoolSeen *seen, int *n_seen, const Grid *g, const GridMethod *m, int d, const char *path,
                      GridIssues *iss) {
    for (int i = 0; i < *n_seen; i++)
        if (!strcmp(seen[i].path, path) && seen[i].unpack4 == m->unpack4 && seen[i].dataset == d &&
            seen[i].pixels == m->pixels && seen[i].exp == m->exp && seen[i].learned_lr == m->learned_lr)
            return i;
    if (*n_seen == 256) return -1;
    PoolSeen *s = &seen[(*n_seen)++];
    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->unpack4 = m->unpack4, s->learned_lr = m->learned_lr, s->pixels = m->pixels, s->exp = m->exp, s->dataset = d;
    Pool pool;
    Err e;
    PoolOptions po = {.info = grid_dataset_info(g->datasets[d]), .exp = m->exp, .pixels = m->pixels};
    if (pool_load(&pool, path, &po, &e)) {
        grid_issue(iss, "%s: method %s: the pool %s does not load: %s", g->path, m->name, path, e.msg);
        pool_free(&pool);
        return *n_seen - 1;
    }
    if (m->unpack4 && pool_unpack4(&pool, &e)) grid_issue(iss, "%s: method %s: %s: %s", g->path, m->name, path, e.msg);
    else if (m->learned_lr && !(pool.lr > 0))
        grid_issue(iss, "%s: method %s: \"learned_lr\" but %s has no learned learning rate (MTT's lr_best.pt)", g->path,
                   m->name, path);
    else if (grid_source_sha(path, s->sha, &e)) grid_issue(iss, "%s: %s", g->path, e.msg);
    else s->ok = 1, s->n = pool.n;
    pool_free(&pool);
    return *n_seen - 1;
}

static int resolve_pool(const Grid *g, const char *expanded, char *out, size_t n) {
    struct stat st;
    if (stat(expanded, &st) == 0 || !g->dataset_pool[0] || expanded[0] == '/') return snprintf(out, n, "%s", expanded) >= (int)n;
    char tmp[GRID_PATH * 2];
    snprintf(tmp, sizeof(tmp), "%s/%s", g->dataset_pool, expanded);
    // an MTT prefix: probe its images file
    char probe[GRID_PATH * 2 + 32];
    snprintf(probe, sizeof(probe), "%simages_best.pt", expanded);
    if (stat(probe, &st) == 0) return snprintf(out, n, "%s", expanded) >= (int)n;
    return snprintf(out, n, "%s", tmp) >= (int)n;
}

static int import_logs(GridPlan *p, GridIssues *iss);

int grid_plan(GridPlan *p, Grid *g, GridIssues *iss) {
    memset(p, 0, sizeof(*p));
    p->grid = g;
    int n0 = iss->n, cap_models = 0, cap_cells = 0, cap_pools = 0;
    Err e;
    // test sets
    p->n_tests = g->n_datasets;
    for (int d = 0; d < g->n_datasets; d++) {
        GridTestSet *t = &p->tests[d];
        snprintf(t->name, sizeof(t->name), "%s", g->datasets[d]);
        t->info = grid_dataset_info(g->datasets[d]);
        Dataset ds;
        if (grid_load_testset(g, d, &ds, &e)) {
            grid_issue(iss, "%s: the %s test set: %s (\"data\" is %s; `beard download %s` fetches it)", g->path, t->name, e.msg,
                       g->data, t->name);
        } else if (ds.n == 0) {
            grid_issue(iss, "%s: the %s test set in %s is empty", g->path, t->name, g->data);
        } else {
            t->n = ds.n;
            grid_dataset_sha(&ds, t->sha256);
        }
        dataset_free(&ds);
    }
    // attack parameters against each dataset's shape; the training split for attacks that
    // train (LGV), whose checksum goes into their cells' configurations
    for (int d = 0; d < g->n_datasets; d++) {
        const DatasetInfo *in = p->tests[d].info;
        AttackShape shape = {in->c, in->h, in->w, in->n_classes};
        int needs = 0;
        for (int a = 0; a < g->n_attacks; a++) {
            if (attack_params_check(g->attacks[a].def, &g->attacks[a].params, &shape, &e))
                grid_issue(iss, "%s: %s on %s: %s", g->path, g->attacks[a].label, in->name, e.msg);
            needs |= attack_needs_train(g->attacks[a].def, &g->attacks[a].params);
        }
        if (!needs) continue;
        Dataset tr;
        if (grid_load_trainset(g, d, &tr, &e))
            grid_issue(iss, "%s: the %s training split (an attack trains on it): %s", g->path, in->name, e.msg);
        else grid_dataset_sha(&tr, p->tests[d].train_sha256), p->tests[d].train_n = tr.n;
        dataset_free(&tr);
    }
    // architectures
    for (int d = 0; d < g->n_datasets; d++)
        for (int a = 0; a < g->n_archs; a++) {
            const DatasetInfo *in = p->tests[d].info;
            Net net;
            if (model_create(&net, g->archs[a], in->c, in->n_classes, in->h, in->w, &e))
                grid_issue(iss, "%s: architecture %s on %s: %s", g->path, g->archs[a], in->name, e.msg);
            else net_free(&net);
        }
    // the recipe and the training attacks
    int any_training = 0;
    for (int m = 0; m < g->n_methods; m++) any_training |= g->methods[m].src != GRID_SRC_MODEL;
    if (any_training)
        for (int t = 0; t < g->n_train_attacks; t++) {
            TrainSettings s = g->train;
            snprintf(s.train_attack, sizeof(s.train_attack), "%s", g->train_attacks[t]);
            if (!strcasecmp(s.train_attack, "None")) s.n_params = 0; // "train_params" are the training attacks'
            TrainConfig cfg;
            if (train_settings_config(&s, SEM_BEARD, &cfg, &e))
                grid_issue(iss, "%s: training with %s: %s", g->path, g->train_attacks[t], e.msg);
        }
    // distilled sets: one distill cell per method x dataset x ipc, first in the plan (the
    // training cells wait for them). The stage is set up as the cell will set it up (the
    // method's init on the real training split), so that an impossible setting shows now.
    for (int d = 0; d < g->n_datasets; d++) {
        Dataset tr;
        int loaded = 0;
        char tr_sha[65] = "";
        for (int mi = 0; mi < g->n_methods; mi++) {
            const GridMethod *m = &g->methods[mi];
            if (m->src != GRID_SRC_DISTILL || !m->distill_def || !p->tests[d].info) continue;
            int needs_real = !m->distill_def->no_real_data; // SRe2L, CDA, SC-DD: from their teacher alone
            if (needs_real && !loaded) {
                loaded = 1;
                if (grid_load_trainset(g, d, &tr, &e)) {
                    grid_issue(iss, "%s: method %s: the %s training split (\"distill\" distils it): %s", g->path, m->name,
                               p->tests[d].name, e.msg);
                    dataset_free(&tr);
                    loaded = -1;
                } else grid_dataset_sha(&tr, tr_sha);
            }
            if (needs_real && loaded < 0) continue;
            for (int ipc = 0; ipc < g->n_ipcs; ipc++) {
                if (!(m->distill_ipcs >> ipc & 1)) continue;
                int k = add_pool(p, &cap_pools);
                if (k < 0) goto oom;
                GridPool *gp = &p->pools[k];
                gp->dataset = d, gp->method = mi, gp->ipc = ipc, gp->cell = -1;
                if (needs_real) gp->train_n = tr.n, memcpy(gp->train_sha256, tr_sha, sizeof(tr_sha));
                DistillConfig cfg;
                DistillParams prm;
                DistillPaths paths;
                DistillRun r;
                if (grid_distill_setup(p, k, NULL, &cfg, &prm, &paths, &e) ||
                    distill_run_init(&r, &cfg, &prm, needs_real ? &tr : NULL, NULL, &e)) {
                    grid_issue(iss, "%s: method %s: \"distill\" (%s on %s at ipc %s): %s", g->path, m->name,
                               m->distill_def->name, p->tests[d].name, g->ipcs[ipc], e.msg);
                    p->n_pools--;
                    continue;
                }
                int min_class = needs_real ? tr.n : 0;
                for (int c = 0; c < r.K && needs_real; c++) min_class = MIN(min_class, r.class_n[c]);
                snprintf(gp->arch, sizeof(gp->arch), "%s", cfg.arch);
                gp->packed4 = r.packed4;
                gp->learns_lr = r.syn_lr > 0; // MTT starts it at lr_teacher
                if (m->learned_lr && !gp->learns_lr)
                    grid_issue(iss, "%s: method %s: \"learned_lr\", but %s learns no learning rate", g->path, m->name,
                               m->distill_def->name);
                gp->n = r.n_syn * (r.packed4 ? 4 : 1);
                gp->updates = cfg.iterations + 1;
                gp->passes = grid_distill_passes(&prm, r.K, cfg.ipc, min_class);
                distill_run_free(&r);
                if (strlen(paths.res) >= sizeof(gp->path)) {
                    grid_issue(iss, "%s: method %s: the distilled set's path is too long", g->path, m->name);
                    p->n_pools--;
                    continue;
                }
                memcpy(gp->path, paths.res, strlen(paths.res) + 1); // its length is checked above
                GridCell *c = add_cell(p, &cap_cells);
                if (!c) goto oom;
                c->kind = CELL_DISTILL, c->model = -1, c->pool = k;
                memcpy(c->out_path, gp->path, sizeof(c->out_path));
                gp->cell = p->n_cells - 1;
            }
        }
        if (loaded > 0) dataset_free(&tr);
    }
    // models: one per method x dataset x ipc x arch x training attack (x run when trained)
    static PoolSeen seen[256];
    int n_seen = 0;
    int full_checked[GRID_MAX_LIST] = {0};
    for (int mi = 0; mi < g->n_methods; mi++) {
        const GridMethod *m = &g->methods[mi];
        for (int d = 0; d < g->n_datasets; d++)
            for (int ipc = 0; ipc < g->n_ipcs; ipc++)
                for (int a = 0; a < g->n_archs; a++)
                    for (int ta = 0; ta < g->n_train_attacks; ta++) {
                        const DatasetInfo *in = p->tests[d].info;
                        char found[GRID_PATH * 2] = "";
                        GridSourceKind src = m->src;
                        if (src == GRID_SRC_MODEL) {
                            if (expand(m->model, g, m, d, ipc, a, ta, found, sizeof(found))) {
                                grid_issue(iss, "%s: method %s: \"model\" is too long", g->path, m->name);
                                continue;
                            }
                        } else if (src == GRID_SRC_AUTO) {
                            char stem[256];
                            snprintf(stem, sizeof(stem), "%s_%s_%s_%s_%s", m->name, g->archs[a], in->name, g->ipcs[ipc],
                                     g->train_attacks[ta]);
                            int amb = 0, ok = 0;
                            for (int k = 0; k < g->n_model_pools && !ok && !amb; k++) {
                                char sub[GRID_PATH + 80];
                                snprintf(sub, sizeof(sub), "%s/%s", g->model_pools[k], m->name);
                                ok = find_in_pool(g->model_pools[k], stem, found, sizeof(found), &amb) ||
                                     (!amb && find_in_pool(sub, stem, found, sizeof(found), &amb));
                            }
                            if (amb) {
                                grid_issue(iss, "%s: method %s: two checkpoints match %s: %s (give \"model\")", g->path, m->name,
                                           stem, found);
                                continue;
                            }
                            if (!ok) {
                                char dirs[512] = "";
                                for (int k = 0; k < g->n_model_pools; k++)
                                    snprintf(dirs + strlen(dirs), sizeof(dirs) - strlen(dirs), "%s%s", k ? ", " : "",
                                             g->model_pools[k]);
                                grid_issue(iss, "%s: method %s: no checkpoint %s.pth (or %s_<acc>.pth) in the model pool (%s) "
                                                "and no \"pool\" to train one from",
                                           g->path, m->name, stem, stem, g->n_model_pools ? dirs : "none given");
                                continue;
                            }
                            src = GRID_SRC_MODEL;
                        }
                        if (src == GRID_SRC_MODEL) {
                            GridModel *gm = add_model(p, &cap_models);
                            if (!gm) goto oom;
                            *gm = (GridModel){.train_cell = -1, .dataset = d, .method = mi, .ipc = ipc, .arch = a,
                                              .train_attack = ta, .run = 0};
                            if (strlen(found) >= sizeof(gm->path)) {
                                grid_issue(iss, "%s: method %s: the checkpoint path is too long", g->path, m->name);
                                continue;
                            }
                            memcpy(gm->path, found, strlen(found) + 1);
                            Net net;
                            if (!is_file(found)) {
                                grid_issue(iss, "%s: method %s: no checkpoint %s", g->path, m->name, found);
                            } else if (checkpoint_load(&net, found, g->archs[a], in->c, in->n_classes, in->h, in->w, &e)) {
                                grid_issue(iss, "%s: method %s: %s", g->path, m->name, e.msg);
                            } else {
                                grid_net_sha(&net, gm->sha256);
                                net_free(&net);
                            }
                            continue;
                        }
                        // trained: one model per run
                        char pool_path[GRID_PATH] = "";
                        int ps = -1, gpool = -1;
                        if (src == GRID_SRC_DISTILL) {
                            if (!(m->distill_ipcs >> ipc & 1)) continue; // not this method's IPC
                            for (int k = 0; k < p->n_pools && gpool < 0; k++)
                                if (p->pools[k].method == mi && p->pools[k].dataset == d && p->pools[k].ipc == ipc) gpool = k;
                            if (gpool < 0) continue; // its distill settings were reported
                            snprintf(pool_path, sizeof(pool_path), "%s", p->pools[gpool].path);
                        } else if (src == GRID_SRC_POOL) {
                            char ex[GRID_PATH];
                            if (expand(m->pool, g, m, d, ipc, a, ta, ex, sizeof(ex)) ||
                                resolve_pool(g, ex, pool_path, sizeof(pool_path))) {
                                grid_issue(iss, "%s: method %s: \"pool\" is too long", g->path, m->name);
                                continue;
                            }
                            ps = check_pool(seen, &n_seen, g, m, d, pool_path, iss);
                            if (ps < 0 || !seen[ps].ok) continue;
                        } else if (!full_checked[d]) { // the real training set
                            full_checked[d] = 1;
                            Dataset tr;
                            if (grid_load_trainset(g, d, &tr, &e))
                                grid_issue(iss, "%s: method %s: the %s training set: %s", g->path, m->name, in->name, e.msg);
                            dataset_free(&tr);
                        }
                        for (int r = 0; r < g->runs; r++) {
                            GridModel *gm = add_model(p, &cap_models);
                            if (!gm) goto oom;
                            *gm = (GridModel){.train_cell = -1, .dataset = d, .method = mi, .ipc = ipc, .arch = a,
                                              .train_attack = ta, .run = r};
                            char run_s[16] = "";
                            if (r) snprintf(run_s, sizeof(run_s), "_run%d", r);
                            // names from the grid choose only the file's name, never where it goes
                            char base[300];
                            snprintf(base, sizeof(base), "%s_%s_%s_%s_%s%s.pth", m->name, g->archs[a], in->name, g->ipcs[ipc],
                                     g->train_attacks[ta], run_s);
                            if (file_name_check(m->name, "method", &e) || file_name_check(base, "model file", &e)) {
                                grid_issue(iss, "%s: %s", g->path, e.msg);
                                continue;
                            }
                            snprintf(gm->path, sizeof(gm->path), "%.600s/model_pool/%s/%s", g->out, m->name, base);
                            GridCell *c = add_cell(p, &cap_cells);
                            if (!c) goto oom;
                            c->kind = CELL_TRAIN;
                            c->model = p->n_models - 1;
                            gm->train_cell = p->n_cells - 1;
                            snprintf(c->out_path, sizeof(c->out_path), "%s", gm->path);
                            snprintf(c->pool_path, sizeof(c->pool_path), "%s", pool_path);
                            c->pool = gpool;
                            if (gpool >= 0) c->pool_n = p->pools[gpool].n; // its checksum once distilled
                            if (ps >= 0) {
                                snprintf(c->pool_sha256, sizeof(c->pool_sha256), "%s", seen[ps].sha);
                                c->pool_n = seen[ps].n;
                            }
                        }
                    }
    }
    // the real training sets' checksums and sizes, for the training cells that use them
    for (int c = 0; c < p->n_cells; c++) {
        GridCell *cell = &p->cells[c];
        if (cell->kind != CELL_TRAIN || cell->pool_path[0]) continue;
        int d = p->models[cell->model].dataset;
        for (int c2 = 0; c2 < c; c2++)
            if (p->cells[c2].kind == CELL_TRAIN && !p->cells[c2].pool_path[0] && p->models[p->cells[c2].model].dataset == d) {
                memcpy(cell->pool_sha256, p->cells[c2].pool_sha256, 65);
                cell->pool_n = p->cells[c2].pool_n;
                break;
            }
        if (cell->pool_sha256[0]) continue;
        Dataset tr;
        if (!grid_load_trainset(g, d, &tr, &e)) {
            grid_dataset_sha(&tr, cell->pool_sha256);
            cell->pool_n = tr.n;
        }
        dataset_free(&tr);
    }
    // evaluation cells: per model, per semantics: clean, then every attack and mode
    int n_models = p->n_models;
    for (int mi = 0; mi < n_models; mi++) {
        for (int s = 0; s < g->n_sems; s++) {
            GridCell *c = add_cell(p, &cap_cells);
            if (!c) goto oom;
            c->kind = CELL_CLEAN, c->model = mi, c->sem = g->sems[s];
            for (int a = 0; a < g->n_attacks; a++)
                for (int k = 0; k < g->n_modes; k++) {
                    const AttackDef *def = g->attacks[a].def;
                    int tg = g->modes[k];
                    if ((tg && !def->targeted_ok) || (!tg && !def->untargeted_ok)) continue; // BEARD's n/a
                    c = add_cell(p, &cap_cells);
                    if (!c) goto oom;
                    c->kind = CELL_ATTACK, c->model = mi, c->sem = g->sems[s], c->attack = a, c->targeted = tg;
                }
        }
    }
    // keys, costs, output paths
    for (int c = 0; c < p->n_cells; c++) {
        GridCell *cell = &p->cells[c];
        char pre[256];
        const char *kn = grid_cell_kind(cell->kind)->name;
        if (cell->kind == CELL_DISTILL) {
            const GridPool *gp = &p->pools[cell->pool];
            const GridMethod *m = &g->methods[gp->method];
            snprintf(cell->key, sizeof(cell->key), "%s/%s/%s/ipc%s/%s", kn, g->datasets[gp->dataset], m->name,
                     g->ipcs[gp->ipc], gp->arch);
            cell->cost = grid_cell_kind(cell->kind)->cost(p, cell);
            continue;
        }
        model_prefix(p, &p->models[cell->model], pre, sizeof(pre));
        if (cell->kind == CELL_TRAIN) snprintf(cell->key, sizeof(cell->key), "%s/%s", kn, pre);
        else if (cell->kind == CELL_CLEAN)
            snprintf(cell->key, sizeof(cell->key), "%s/%s/%s", kn, pre, semantics_name((Semantics)cell->sem));
        else
            snprintf(cell->key, sizeof(cell->key), "%s/%s/%s/%s/%s", kn, pre, g->attacks[cell->attack].label,
                     cell->targeted ? "targeted" : "untargeted", semantics_name((Semantics)cell->sem));
        cell->cost = grid_cell_kind(cell->kind)->cost(p, cell);
    }
    for (int a = 0; a < p->n_cells; a++)
        for (int b = a + 1; b < p->n_cells; b++) {
            if (!strcmp(p->cells[a].key, p->cells[b].key)) grid_issue(iss, "%s: two cells have the key %s", g->path, p->cells[a].key);
            if (p->cells[a].out_path[0] && !strcmp(p->cells[a].out_path, p->cells[b].out_path))
                grid_issue(iss, "%s: cells %s and %s both write %s", g->path, p->cells[a].key, p->cells[b].key,
                           p->cells[a].out_path);
        }
    // a trained model must not overwrite a checkpoint the grid reads
    for (int c = 0; c < p->n_cells; c++) {
        if (!p->cells[c].out_path[0]) continue;
        for (int m = 0; m < p->n_models; m++)
            if (p->models[m].train_cell < 0 && !strcmp(p->models[m].path, p->cells[c].out_path))
                grid_issue(iss, "%s: cell %s would overwrite the checkpoint %s that the grid evaluates", g->path,
                           p->cells[c].key, p->cells[c].out_path);
    }
    if (g->published[0] && !is_file(g->published))
        grid_issue(iss, "%s: \"published\": no such file %s", g->path, g->published);
    if (import_logs(p, iss)) goto oom;
    return iss->n > n0 ? -1 : 0;
oom:
    grid_issue(iss, "out of memory planning the grid");
    return -1;
}

void grid_plan_free(GridPlan *p) {
    for (int c = 0; c < p->n_cells; c++) free(p->cells[c].config);
    free(p->cells);
    free(p->models);
    free(p->pools);
    store_rows_free(p->imports, p->n_imports);
    memset(p, 0, sizeof(*p));
}

// ----------------------------------------------------------------------------
// cell configurations

static cJSON *test_json(const GridPlan *p, int d) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "dataset", p->tests[d].name);
    cJSON_AddNumberToObject(t, "limit", (double)p->grid->limit);
    cJSON_AddNumberToObject(t, "n", p->tests[d].n);
    cJSON_AddStringToObject(t, "sha256", p->tests[d].sha256);
    return t;
}

int grid_cell_prepare(GridPlan *p, int c, Err *e) {
    GridCell *cell = &p->cells[c];
    if (cell->hash[0]) return 0;
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "kind", grid_cell_kind(cell->kind)->name);
    if (cell->kind == CELL_DISTILL) {
        // the kind's config: the stage's settings and the real training split
        cJSON_AddStringToObject(cfg, "dataset", p->tests[p->pools[cell->pool].dataset].name);
        goto kind;
    }
    const GridModel *m = &p->models[cell->model];
    if (cell->kind != CELL_TRAIN && !m->sha256[0]) { // the model is not trained yet
        cJSON_Delete(cfg);
        return 1;
    }
    if (cell->kind == CELL_TRAIN && cell->pool >= 0) { // a grid pool: once distilled
        const GridPool *gp = &p->pools[cell->pool];
        int r = gp->sha256[0] ? grid_cell_prepare(p, gp->cell, e) : 1;
        if (r) {
            cJSON_Delete(cfg);
            return r;
        }
        memcpy(cell->pool_sha256, gp->sha256, sizeof(cell->pool_sha256));
        cell->pool_n = gp->n;
    }
    // a model does not depend on the test set (its row's test accuracy does, and says n)
    if (cell->kind != CELL_TRAIN) cJSON_AddItemToObject(cfg, "test", test_json(p, m->dataset));
    else cJSON_AddStringToObject(cfg, "dataset", p->tests[m->dataset].name);
    if (cell->kind != CELL_TRAIN) {
        cJSON *mo = cJSON_AddObjectToObject(cfg, "model");
        cJSON_AddStringToObject(mo, "arch", p->grid->archs[m->arch]);
        cJSON_AddStringToObject(mo, "sha256", m->sha256);
    }
kind:
    if (grid_cell_kind(cell->kind)->config(p, cell, cfg, e)) {
        cJSON_Delete(cfg);
        return -1;
    }
    char *txt = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    if (!txt) return err_set(e, "out of memory");
    free(cell->config);
    cell->config = txt;
    store_sha256_hex(txt, strlen(txt), cell->hash);
    return 0;
}

void grid_cell_row(const GridPlan *p, int c, StoreRow *r) {
    const GridCell *cell = &p->cells[c];
    const Grid *g = p->grid;
    snprintf(r->kind, sizeof(r->kind), "%s", grid_cell_kind(cell->kind)->name);
    snprintf(r->key, sizeof(r->key), "%s", cell->key);
    snprintf(r->hash, sizeof(r->hash), "%s", cell->hash);
    snprintf(r->source, sizeof(r->source), "run");
    snprintf(r->version, sizeof(r->version), "%s", BEARD_VERSION);
    if (cell->kind == CELL_DISTILL) {
        const GridPool *gp = &p->pools[cell->pool];
        const GridMethod *gm = &g->methods[gp->method];
        snprintf(r->dataset, sizeof(r->dataset), "%s", g->datasets[gp->dataset]);
        snprintf(r->method, sizeof(r->method), "%s", gm->name);
        snprintf(r->ipc, sizeof(r->ipc), "%s", g->ipcs[gp->ipc]);
        snprintf(r->arch, sizeof(r->arch), "%s", gp->arch);
        r->run = 0;
        r->seed = gm->distill.seed;
        return;
    }
    const GridModel *m = &p->models[cell->model];
    snprintf(r->dataset, sizeof(r->dataset), "%s", g->datasets[m->dataset]);
    snprintf(r->method, sizeof(r->method), "%s", g->methods[m->method].name);
    snprintf(r->ipc, sizeof(r->ipc), "%s", g->ipcs[m->ipc]);
    snprintf(r->arch, sizeof(r->arch), "%s", g->archs[m->arch]);
    snprintf(r->train_attack, sizeof(r->train_attack), "%s", g->train_attacks[m->train_attack]);
    r->run = m->run;
    if (cell->kind == CELL_ATTACK) {
        snprintf(r->attack, sizeof(r->attack), "%s", g->attacks[cell->attack].label);
        snprintf(r->attack_name, sizeof(r->attack_name), "%s", g->attacks[cell->attack].def->name);
        r->targeted = cell->targeted;
    }
    if (cell->sem >= 0) snprintf(r->semantics, sizeof(r->semantics), "%s", semantics_name((Semantics)cell->sem));
    r->seed = (long long)(g->seed + (cell->kind == CELL_TRAIN ? (uint64_t)m->run : 0));
}

// ----------------------------------------------------------------------------
// BEARD logs: rows of source "beard-log"

static int push_import(GridPlan *p, int *cap, StoreRow *r) {
    if (p->n_imports == *cap) {
        *cap = *cap ? 2 * *cap : 32;
        StoreRow *nr = realloc(p->imports, sizeof(StoreRow) * *cap);
        if (!nr) return -1;
        p->imports = nr;
    }
    p->imports[p->n_imports++] = *r;
    return 0;
}

// the architecture a BEARD log line names (", model: ConvNet,"); ConvNet when absent
static void log_arch(const char *text, char *out, size_t n) {
    snprintf(out, n, "ConvNet");
    const char *m = strstr(text, ", model: ");
    if (!m) return;
    m += 9;
    size_t k = 0;
    while ((isalnum((unsigned char)m[k]) || m[k] == '_') && k + 1 < n) k++;
    if (k) snprintf(out, n, "%.*s", (int)k, m);
}

static int import_logs(GridPlan *p, GridIssues *iss) {
    const Grid *g = p->grid;
    int cap = 0;
    for (int i = 0; i < g->n_logs; i++) {
        uint8_t *buf;
        size_t len;
        Err e;
        BeardLogFile f;
        if (file_read_all(g->logs[i], 64 << 20, &buf, &len, &e)) {
            grid_issue(iss, "%s: \"import_logs\": %s", g->path, e.msg);
            continue;
        }
        if (beardlog_parse(&f, (const char *)buf, g->logs[i], &e)) {
            grid_issue(iss, "%s: \"import_logs\": %s", g->path, e.msg);
            free(buf);
            continue;
        }
        char arch[32];
        log_arch((const char *)buf, arch, sizeof(arch));
        free(buf);
        const BeardLogLine *clean = beardlog_find(&f, "Clean");
        if (!f.n || !clean) {
            grid_issue(iss, "%s: \"import_logs\": %s has no Clean line (BEARD's metrics need the clean accuracy)", g->path,
                       g->logs[i]);
            beardlog_file_free(&f);
            continue;
        }
        for (int l = 0; l < f.n; l++) {
            const BeardLogLine *ln = &f.lines[l];
            const char *ds = ln->dataset[0] ? ln->dataset : clean->dataset;
            const char *ipc = ln->ipc[0] ? ln->ipc : clean->ipc;
            const DatasetInfo *info = ds[0] ? grid_dataset_info(ds) : NULL;
            if (!info || !ipc[0]) {
                grid_issue(iss, "%s: \"import_logs\": %s line %d names no known dataset and IPC", g->path, g->logs[i], ln->line);
                break;
            }
            int is_clean = !strcasecmp(ln->attack, "clean");
            const AttackDef *def = is_clean ? NULL : attack_find(ln->attack);
            for (int m = 0; m < 2; m++) {
                if (is_clean && m == 1) break;
                // BEARD writes the clean figure for a mode an attack does not have
                if (def && ((m == 0 && !def->targeted_ok) || (m == 1 && !def->untargeted_ok))) continue;
                StoreRow r;
                store_row_init(&r);
                snprintf(r.kind, sizeof(r.kind), "%s", is_clean ? "clean" : "attack");
                snprintf(r.source, sizeof(r.source), "beard-log");
                snprintf(r.dataset, sizeof(r.dataset), "%s", info->name);
                snprintf(r.method, sizeof(r.method), "%s", ln->method);
                snprintf(r.ipc, sizeof(r.ipc), "%s", ipc);
                snprintf(r.arch, sizeof(r.arch), "%s", arch);
                snprintf(r.train_attack, sizeof(r.train_attack), "None");
                r.run = 0;
                snprintf(r.semantics, sizeof(r.semantics), "beard");
                snprintf(r.version, sizeof(r.version), "%s", BEARD_VERSION);
                if (is_clean) {
                    r.clean_accuracy = r.accuracy = ln->acc[0];
                    // t_c: the smaller of the Clean line's two times, as BEARD's toolkit takes it
                    r.seconds = MIN(ln->seconds[0], ln->seconds[1]);
                    snprintf(r.key, sizeof(r.key), "beardlog/%s/%s/ipc%s/%s/None/run0/Clean/beard", info->name, ln->method,
                             ipc, arch);
                } else {
                    r.targeted = m == 0;
                    r.clean_accuracy = clean->acc[0];
                    r.accuracy = ln->acc[m];
                    r.seconds = ln->seconds[m];
                    snprintf(r.attack, sizeof(r.attack), "%s", ln->attack);
                    snprintf(r.attack_name, sizeof(r.attack_name), "%s", def ? def->name : ln->attack);
                    snprintf(r.key, sizeof(r.key), "beardlog/%s/%s/ipc%s/%s/None/run0/%s/%s/beard", info->name, ln->method, ipc,
                             arch, ln->attack, m ? "untargeted" : "targeted");
                }
                cJSON *cfg = cJSON_CreateObject();
                cJSON_AddStringToObject(cfg, "kind", "beard-log");
                cJSON_AddStringToObject(cfg, "attack", ln->attack);
                cJSON_AddNumberToObject(cfg, "accuracy", r.accuracy);
                cJSON_AddNumberToObject(cfg, "seconds", r.seconds);
                cJSON_AddNumberToObject(cfg, "clean_accuracy", r.clean_accuracy);
                r.config = cJSON_PrintUnformatted(cfg);
                cJSON_Delete(cfg);
                store_sha256_hex(r.config, strlen(r.config), r.hash);
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "log", g->logs[i]);
                cJSON_AddNumberToObject(x, "line", ln->line);
                r.extra = cJSON_PrintUnformatted(x);
                cJSON_Delete(x);
                if (push_import(p, &cap, &r)) {
                    store_row_free(&r);
                    beardlog_file_free(&f);
                    return -1;
                }
            }
        }
        if (f.n_duplicates)
            fprintf(stderr, "beard run: %s: %d line(s) superseded by a later line for the same attack; the last one counts\n",
                    g->logs[i], f.n_duplicates);
        beardlog_file_free(&f);
    }
    return 0;
}
