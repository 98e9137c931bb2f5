/*
 * eval_config.c: see eval_config.h.
 */
#include "eval_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../io/file.h"
#include "../io/jsonval.h"
#include "../attacks/names.h"
#include "beardlog.h"

void eval_config_defaults(EvalConfig *c) {
    memset(c, 0, sizeof(*c));
    snprintf(c->model, sizeof(c->model), "ConvNet");
    snprintf(c->ipc, sizeof(c->ipc), "1");
    snprintf(c->save_path, sizeof(c->save_path), ".");
    snprintf(c->data_path, sizeof(c->data_path), "data");
    snprintf(c->dsa_strategy, sizeof(c->dsa_strategy), "color_crop_cutout_flip_scale_rotate");
    c->dsa = 1;
    c->n_targets = 2;
    c->targets[0] = 1, c->targets[1] = 0;
    c->sem = SEM_BEARD;
    c->policy = TARGET_BEARD;
    c->preset = PRESET_BEARD;
    c->batch = 256;
    c->per_sample = 1;
    c->surrogates_all = 1;
}

// BEARD's eval_nets order (evaluate_model_blackbox.py); other names keep the config's order
static void order_models(EvalConfig *c) {
    static const char *const beard_order[] = {"DC", "DSA", "MTT", "DM", "IDM", "BACON", "ROME"};
    int rank[EVAL_MAX_MODELS];
    for (int i = 0; i < c->n_models; i++) {
        rank[i] = 7 + i;
        for (int k = 0; k < 7; k++)
            if (!strcmp(c->model_names[i], beard_order[k])) rank[i] = k;
    }
    for (int i = 1; i < c->n_models; i++) // insertion sort: stable, a handful of entries
        for (int j = i; j > 0 && rank[j] < rank[j - 1]; j--) {
            int tr = rank[j];
            rank[j] = rank[j - 1], rank[j - 1] = tr;
            char tn[32], tf[1024];
            memcpy(tn, c->model_names[j], sizeof(tn)), memcpy(tf, c->model_files[j], sizeof(tf));
            memcpy(c->model_names[j], c->model_names[j - 1], sizeof(tn));
            memcpy(c->model_files[j], c->model_files[j - 1], sizeof(tf));
            memcpy(c->model_names[j - 1], tn, sizeof(tn)), memcpy(c->model_files[j - 1], tf, sizeof(tf));
        }
}

static void warn(EvalConfig *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(EvalConfig *c, const char *fmt, ...) {
    if (c->n_warnings == EVAL_MAX_WARNINGS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->warnings[c->n_warnings++], sizeof(c->warnings[0]), fmt, ap);
    va_end(ap);
}

typedef enum { K_STR, K_BOOL, K_INT, K_NUM, K_STR_OR_BOOL, K_SPECIAL } KeyKind;

// BEARD's training keys that evaluate_model.py accepts but an evaluation does not use
static const struct {
    const char *name;
    KeyKind kind;
} inert_keys[] = {
    {"syn_ce", K_BOOL},         {"ce_weight", K_NUM},  {"train_attack", K_STR_OR_BOOL},
    {"pgd_eva", K_BOOL},        {"eval_mode", K_STR},  {"epoch_eval_train", K_INT},
    {"Iteration", K_INT},       {"lr_net", K_NUM},     {"batch_train", K_INT},
    {"eval_interval", K_INT},   {"config", K_STR},
};

// images per class: digits only, 1 to EVAL_MAX_IPC
static int ipc_valid(const char *s) {
    if (!s[0] || strlen(s) > 7) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    long v = atol(s);
    return v >= 1 && v <= EVAL_MAX_IPC;
}

static int parse_attacks(EvalConfig *c, const cJSON *v, Err *e) {
    if (!cJSON_IsArray(v))
        return err_set(e, "\"test_attack\" must be a list of attack names such as [\"Clean\", \"FGSM\", \"PGD\"], not %s",
                       json_type(v));
    int n = cJSON_GetArraySize(v);
    if (n == 0) return err_set(e, "\"test_attack\" is empty: name at least one attack (or \"Clean\")");
    if (n > EVAL_MAX_ATTACKS) return err_set(e, "\"test_attack\" lists %d attacks (%d at most)", n, EVAL_MAX_ATTACKS);
    const cJSON *it;
    c->n_attacks = 0;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it) || !it->valuestring[0])
            return err_set(e, "\"test_attack\"[%d] must be an attack name (a string), not %s", c->n_attacks,
                           json_type(it));
        if (strlen(it->valuestring) >= sizeof(c->attacks[0].name))
            return err_set(e, "\"test_attack\"[%d]: name too long", c->n_attacks);
        for (int i = 0; i < c->n_attacks; i++)
            if (!strcasecmp(c->attacks[i].name, it->valuestring))
                return err_set(e, "\"test_attack\" lists \"%s\" twice", it->valuestring);
        EvalAttackSpec *a = &c->attacks[c->n_attacks++];
        memset(a, 0, sizeof(*a));
        snprintf(a->name, sizeof(a->name), "%s", it->valuestring);
    }
    return 0;
}

static int parse_targets(EvalConfig *c, const cJSON *v, Err *e) {
    if (!cJSON_IsArray(v))
        return err_set(e, "\"target_attack\" must be a list of booleans such as [true, false], not %s", json_type(v));
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > 2) return err_set(e, "\"target_attack\" must hold one or two booleans ([true, false] as BEARD)");
    const cJSON *it;
    c->n_targets = 0;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsBool(it))
            return err_set(e, "\"target_attack\"[%d] must be true or false, not %s", c->n_targets, json_type(it));
        c->targets[c->n_targets++] = cJSON_IsTrue(it);
    }
    if (n == 2 && c->targets[0] == c->targets[1]) return err_set(e, "\"target_attack\" lists the same mode twice");
    return 0;
}

static const cJSON *attack_overrides_for(const cJSON *ap, const EvalAttackSpec *a) {
    const cJSON *o;
    cJSON_ArrayForEach(o, ap) {
        if (!strcasecmp(o->string, a->name)) return o;
        const AttackDef *d = attack_find(o->string);
        if (d && d == a->def) return o;
    }
    return NULL;
}

static int apply_overrides(EvalConfig *c, const cJSON *ap, Err *e) {
    // every override must name an attack of test_attack (a warning otherwise)
    const cJSON *o;
    cJSON_ArrayForEach(o, ap) {
        if (!cJSON_IsObject(o))
            return err_set(e, "\"attack_params\".\"%s\" must be an object of parameters such as {\"steps\": 20}",
                           o->string);
        const AttackDef *d = attack_find(o->string);
        if (!d && !attack_name_known(o->string))
            return err_set(e, "\"attack_params\": unknown attack \"%s\" (beard attack --list names them)", o->string);
        int used = 0;
        for (int i = 0; i < c->n_attacks; i++)
            used |= !strcasecmp(o->string, c->attacks[i].name) || (d && d == c->attacks[i].def);
        if (!used) warn(c, "attack_params: \"%s\" is not in test_attack; ignored", o->string);
    }
    for (int i = 0; i < c->n_attacks; i++) {
        EvalAttackSpec *a = &c->attacks[i];
        if (!a->def) continue;
        const cJSON *ov = attack_overrides_for(ap, a);
        if (!ov) continue;
        const cJSON *p;
        cJSON_ArrayForEach(p, ov) {
            char text[64];
            if (cJSON_IsNumber(p)) snprintf(text, sizeof(text), "%.17g", p->valuedouble);
            else if (cJSON_IsBool(p)) snprintf(text, sizeof(text), "%s", cJSON_IsTrue(p) ? "true" : "false");
            else if (cJSON_IsString(p) && strlen(p->valuestring) < sizeof(text)) snprintf(text, sizeof(text), "%s", p->valuestring);
            else
                return err_set(e, "\"attack_params\".\"%s\".\"%s\" must be a number, a boolean or text such as \"8/255\", not %s",
                               ov->string, p->string, json_type(p));
            int rc = attack_params_set_text(&a->params, a->def, p->string, text);
            if (rc == -1) {
                char known[256] = "";
                size_t off = 0;
                for (const AttackParamDef *q = a->def->params; q->name && off < sizeof(known); q++)
                    off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", off ? ", " : "", q->name);
                return err_set(e, "\"attack_params\".\"%s\": %s has no parameter \"%s\" (it has: %s)", ov->string,
                               a->def->name, p->string, known[0] ? known : "none");
            }
            if (rc == -2)
                return err_set(e, "\"attack_params\".\"%s\".\"%s\": cannot use \"%s\" (a number such as 8/255, yes/no, or one of its choices)",
                               ov->string, p->string, text);
        }
    }
    return 0;
}

int eval_config_from_json(EvalConfig *c, const cJSON *root, Err *e) {
    eval_config_defaults(c);
    if (!cJSON_IsObject(root)) return err_set(e, "the configuration must be a JSON object, not %s", json_type(root));
    const cJSON *ap = NULL, *v;
    int have_dataset = 0, have_load = 0, have_attacks = 0, have_method = 0;
    cJSON_ArrayForEach(v, root) {
        const char *k = v->string;
        long n;
        int rc = 0;
        if (!strcmp(k, "dataset")) rc = json_get_str(v, c->dataset, sizeof(c->dataset), e), have_dataset = 1;
        else if (!strcmp(k, "model")) rc = json_get_str(v, c->model, sizeof(c->model), e);
        else if (!strcmp(k, "method")) rc = json_get_str(v, c->method, sizeof(c->method), e), have_method = 1;
        else if (!strcmp(k, "ipc")) {
            if (cJSON_IsString(v)) rc = json_get_str(v, c->ipc, sizeof(c->ipc), e);
            else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e9)
                snprintf(c->ipc, sizeof(c->ipc), "%ld", (long)v->valuedouble);
            else rc = err_set(e, "\"ipc\" must be a string such as \"50\" or an integer, not %s", json_type(v));
        } else if (!strcmp(k, "load_file")) rc = json_get_str(v, c->load_file, sizeof(c->load_file), e), have_load = 1;
        else if (!strcmp(k, "save_path")) rc = json_get_str(v, c->save_path, sizeof(c->save_path), e);
        else if (!strcmp(k, "data_path")) rc = json_get_str(v, c->data_path, sizeof(c->data_path), e);
        else if (!strcmp(k, "test_attack")) rc = parse_attacks(c, v, e), have_attacks = 1;
        else if (!strcmp(k, "target_attack")) rc = parse_targets(c, v, e);
        else if (!strcmp(k, "src_dataset")) rc = json_get_bool(v, &c->src_dataset, e);
        else if (!strcmp(k, "aug")) rc = json_get_bool(v, &c->aug, e);
        else if (!strcmp(k, "dsa_strategy")) rc = json_get_str(v, c->dsa_strategy, sizeof(c->dsa_strategy), e);
        else if (!strcmp(k, "num_eval")) {
            if (!(rc = json_get_long(v, 0, 1000000, &n, e))) c->num_eval = (int)n;
        } else if (!strcmp(k, "semantics")) {
            if (!cJSON_IsString(v) || semantics_parse(v->valuestring, &c->sem))
                rc = err_set(e, "\"semantics\" must be \"pixel\" or \"beard\"");
        } else if (!strcmp(k, "target_policy")) {
            if (!cJSON_IsString(v) || target_policy_parse(v->valuestring, &c->policy))
                rc = err_set(e, "\"target_policy\" must be \"next\", \"beard\", \"random\" or \"least-likely\"");
        } else if (!strcmp(k, "preset")) {
            if (!cJSON_IsString(v) || preset_parse(v->valuestring, &c->preset))
                rc = err_set(e, "\"preset\" must be \"torchattacks\", \"beard\" or \"fra31\"");
        } else if (!strcmp(k, "n_examples")) rc = json_get_long(v, 0, 1L << 30, &c->n_examples, e);
        else if (!strcmp(k, "seed")) {
            if (!(rc = json_get_long(v, 0, 1L << 53, &n, e))) c->seed = (uint64_t)n;
        } else if (!strcmp(k, "threads")) {
            if (!(rc = json_get_long(v, 0, 256, &n, e))) c->threads = (int)n;
        } else if (!strcmp(k, "batch")) {
            if (!(rc = json_get_long(v, 1, 1 << 16, &n, e))) c->batch = (int)n;
        } else if (!strcmp(k, "per_sample")) rc = json_get_bool(v, &c->per_sample, e);
        else if (!strcmp(k, "per_sample_csv")) rc = json_get_bool(v, &c->per_sample_csv, e);
        else if (!strcmp(k, "results_json")) rc = json_get_str(v, c->results_json, sizeof(c->results_json), e);
        else if (!strncmp(k, "load_file_model_", 16)) {
            const char *name = k + 16;
            if (!beardlog_is_word(name) || strlen(name) >= sizeof(c->model_names[0]))
                rc = err_set(e, "\"%s\": the model name after load_file_model_ must be a word of letters, digits and _", k);
            else if (c->n_models == EVAL_MAX_MODELS)
                rc = err_set(e, "at most %d load_file_model_* keys", EVAL_MAX_MODELS);
            else {
                for (int i = 0; i < c->n_models && !rc; i++)
                    if (!strcmp(c->model_names[i], name)) rc = err_set(e, "\"%s\" appears twice", k);
                if (!rc) {
                    snprintf(c->model_names[c->n_models], sizeof(c->model_names[0]), "%s", name);
                    rc = json_get_str(v, c->model_files[c->n_models], sizeof(c->model_files[0]), e);
                    if (!rc && !c->model_files[c->n_models][0]) rc = err_set(e, "\"%s\" is empty", k);
                    c->n_models++;
                }
            }
        } else if (!strcmp(k, "surrogates")) {
            if (cJSON_IsString(v) && !strcmp(v->valuestring, "all")) c->surrogates_all = 1;
            else if (cJSON_IsString(v) && !strcmp(v->valuestring, "load_file")) c->surrogates_all = 0;
            else rc = err_set(e, "\"surrogates\" must be \"all\" or \"load_file\"");
        } else if (!strcmp(k, "attack_params")) {
            if (!cJSON_IsObject(v))
                rc = err_set(e, "\"attack_params\" must be an object such as {\"PGD\": {\"steps\": 20}}, not %s", json_type(v));
            ap = v;
        } else {
            int inert = -1;
            for (size_t i = 0; i < sizeof(inert_keys) / sizeof(inert_keys[0]); i++)
                if (!strcmp(k, inert_keys[i].name)) inert = (int)i;
            if (inert < 0) {
                warn(c, "unknown key \"%s\" ignored", k);
                continue;
            }
            switch (inert_keys[inert].kind) {
            case K_STR: rc = cJSON_IsString(v) ? 0 : err_set(e, "\"%s\" must be a string, not %s", k, json_type(v)); break;
            case K_BOOL: rc = cJSON_IsBool(v) ? 0 : err_set(e, "\"%s\" must be true or false, not %s", k, json_type(v)); break;
            case K_INT: rc = json_get_long(v, 0, 1L << 40, &n, e); break;
            case K_NUM: rc = json_get_num(v, -INFINITY, NULL, e); break;
            case K_STR_OR_BOOL:
                rc = cJSON_IsString(v) || cJSON_IsBool(v) ? 0 : err_set(e, "\"%s\" must be a string or a boolean, not %s", k, json_type(v));
                break;
            default: break;
            }
            if (!rc && !strcmp(k, "pgd_eva") && cJSON_IsTrue(v))
                warn(c, "pgd_eva = true names BEARD's log True_<dataset>_<ipc>_...; beard keeps <method>_<model>_<dataset>_<ipc>_...");
        }
        if (rc) return -1;
    }
    if (!have_dataset) return err_set(e, "the configuration has no \"dataset\" (e.g. \"CIFAR10\")");
    order_models(c);
    if (!have_load) return err_set(e, "the configuration has no \"load_file\" (the checkpoint to evaluate)");
    if (!have_attacks) return err_set(e, "the configuration has no \"test_attack\" list (e.g. [\"Clean\", \"FGSM\", \"PGD\"])");
    c->dsa = strcmp(c->dsa_strategy, "none") && strcmp(c->dsa_strategy, "None");
    if (!have_method) {
        // BEARD would print its argparse default, "DM"; the checkpoint's name is a better guess
        const char *b = strrchr(c->load_file, '/');
        b = b ? b + 1 : c->load_file;
        size_t k = strcspn(b, "_.-");
        snprintf(c->method, sizeof(c->method), "%.*s", (int)(k && k < sizeof(c->method) ? k : 0), b);
        if (!beardlog_is_word(c->method)) snprintf(c->method, sizeof(c->method), "model");
        warn(c, "no \"method\": the log lines say \"attack on %s\"", c->method);
    }
    if (!beardlog_is_word(c->method))
        warn(c, "method \"%s\" is not a single word: BEARD's metrics toolkit will not parse the log lines", c->method);
    if (c->aug) {
        warn(c, "aug = true (BEARD's test-time DSA augmentation) is not implemented: evaluating without it");
        c->aug = 0;
    }
    if (c->num_eval > 0) {
        warn(c, "num_eval = %d (repeated evaluations) is not implemented: one evaluation, std 0.00", c->num_eval);
        c->num_eval = 0;
    }
    // the names that become file names, and the attack names (unknown ones are errors,
    // as in `beard attack`: a misspelt attack must not pass for a finished evaluation)
    if (!ipc_valid(c->ipc))
        return err_set(e, "\"ipc\" must be a whole number of images per class in [1, %d], not \"%s\"", EVAL_MAX_IPC, c->ipc);
    if (file_name_check(c->method, "\"method\"", e) || file_name_check(c->model, "\"model\"", e) ||
        file_name_check(c->dataset, "\"dataset\"", e) || file_name_check(c->ipc, "\"ipc\"", e))
        return -1;
    for (int i = 0; i < c->n_attacks; i++) {
        EvalAttackSpec *a = &c->attacks[i];
        a->clean = !strcasecmp(a->name, "clean");
        if (a->clean) continue;
        if (attack_resolve(a->name, c->preset, &a->def, &a->params, e))
            return err_wrap(e, "\"test_attack\"[%d]", i);
        if (!beardlog_is_word(a->name))
            warn(c, "attack name \"%s\" is not a single word: BEARD's metrics toolkit will not parse its line", a->name);
    }
    int has_clean = 0;
    for (int i = 0; i < c->n_attacks; i++) has_clean |= c->attacks[i].clean;
    if (!has_clean) warn(c, "test_attack has no \"Clean\": RR/AE/CREI (beard metrics) need the clean line");
    if (c->n_targets == 1)
        warn(c, "target_attack has one mode: BEARD's log lines carry both, so no log is written (results.json only)");
    if (ap && apply_overrides(c, ap, e)) return -1;
    for (int i = 0; i < c->n_attacks; i++)
        if (c->attacks[i].def && attack_params_check(c->attacks[i].def, &c->attacks[i].params, NULL, e))
            return err_wrap(e, "\"attack_params\"");
    return 0;
}

int eval_config_needs_train(const EvalConfig *c) {
    for (int i = 0; i < c->n_attacks; i++)
        if (c->attacks[i].def && attack_needs_train(c->attacks[i].def, &c->attacks[i].params)) return 1;
    return 0;
}

int eval_config_load(EvalConfig *c, const char *path, Err *e) {
    eval_config_defaults(c);
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, 1 << 24, &buf, &n, e)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf, n, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - (const char *)buf) : 0;
        int line = 1;
        for (size_t i = 0; i < off && i < n; i++) line += buf[i] == '\n';
        free(buf);
        return err_set(e, "%s: invalid JSON near line %d", path, line);
    }
    free(buf);
    int rc = eval_config_from_json(c, root, e);
    cJSON_Delete(root);
    if (rc) return err_wrap(e, "%s", path);
    return 0;
}

cJSON *eval_config_to_json(const EvalConfig *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dataset", c->dataset);
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "method", c->method);
    cJSON_AddStringToObject(o, "ipc", c->ipc);
    cJSON_AddStringToObject(o, "load_file", c->load_file);
    cJSON_AddStringToObject(o, "save_path", c->save_path);
    cJSON_AddStringToObject(o, "data_path", c->data_path);
    cJSON *ta = cJSON_AddArrayToObject(o, "test_attack");
    for (int i = 0; i < c->n_attacks; i++) cJSON_AddItemToArray(ta, cJSON_CreateString(c->attacks[i].name));
    cJSON *tg = cJSON_AddArrayToObject(o, "target_attack");
    for (int i = 0; i < c->n_targets; i++) cJSON_AddItemToArray(tg, cJSON_CreateBool(c->targets[i]));
    cJSON_AddBoolToObject(o, "src_dataset", c->src_dataset);
    cJSON_AddBoolToObject(o, "aug", c->aug);
    cJSON_AddStringToObject(o, "dsa_strategy", c->dsa_strategy);
    cJSON_AddNumberToObject(o, "num_eval", c->num_eval);
    cJSON_AddStringToObject(o, "semantics", semantics_name(c->sem));
    cJSON_AddStringToObject(o, "target_policy", target_policy_name(c->policy));
    cJSON_AddStringToObject(o, "preset", preset_name(c->preset));
    cJSON_AddNumberToObject(o, "n_examples", (double)c->n_examples);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddBoolToObject(o, "per_sample", c->per_sample);
    cJSON_AddBoolToObject(o, "per_sample_csv", c->per_sample_csv);
    if (c->results_json[0]) cJSON_AddStringToObject(o, "results_json", c->results_json);
    for (int i = 0; i < c->n_models; i++) {
        char key[64];
        snprintf(key, sizeof(key), "load_file_model_%s", c->model_names[i]);
        cJSON_AddStringToObject(o, key, c->model_files[i]);
    }
    if (c->n_models) cJSON_AddStringToObject(o, "surrogates", c->surrogates_all ? "all" : "load_file");
    cJSON *ap = cJSON_AddObjectToObject(o, "attack_params");
    for (int i = 0; i < c->n_attacks; i++) {
        const EvalAttackSpec *a = &c->attacks[i];
        if (!a->def) continue;
        cJSON *p = cJSON_AddObjectToObject(ap, a->name);
        for (int k = 0; k < a->params.n; k++) {
            const AttackParamDef *d = attack_param_def(a->def, a->params.names[k]);
            char buf[ATTACK_TEXT_LEN];
            if (d && (d->type == ATTACK_PARAM_CHOICE || d->type == ATTACK_PARAM_TEXT)) cJSON_AddStringToObject(p, a->params.names[k], attack_param_text(&a->params, a->def, k, buf, sizeof(buf)));
            else cJSON_AddNumberToObject(p, a->params.names[k], a->params.values[k]);
        }
    }
    return o;
}

int eval_config_output_path(const EvalConfig *c, const char *suffix, char *buf, size_t n, Err *e) {
    char name[4 * FILE_NAME_MAX + 64];
    if (snprintf(name, sizeof(name), "%s_%s_%s_%s_%s", c->method, c->model, c->dataset, c->ipc, suffix) >= (int)sizeof(name))
        return err_set(e, "output name too long");
    return file_path_join(buf, n, c->save_path[0] ? c->save_path : ".", name, "output name", e);
}
