/*
 * train_config.c: see train_config.h.
 */
#include "train_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../io/file.h"
#include "../io/jsonval.h"
#include "train.h"

void train_settings_default(TrainSettings *s) {
    memset(s, 0, sizeof(*s));
    snprintf(s->arch, sizeof(s->arch), "ConvNet");
    snprintf(s->data_path, sizeof(s->data_path), "data");
    snprintf(s->optimizer, sizeof(s->optimizer), "sgd");
    snprintf(s->dsa_strategy, sizeof(s->dsa_strategy), "color_crop_cutout_flip_scale_rotate");
    snprintf(s->train_attack, sizeof(s->train_attack), "None");
    s->exp = -1;
    s->epochs = 1000;
    s->batch = 256;
    s->runs = 5;
    s->lr = 0.01;
    s->momentum = 0.9;
    s->weight_decay = 5e-4;
    s->lr_decay = 1;
    s->eval_every = 100;
    s->log_every = 1;
}

static void warn(TrainSettings *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(TrainSettings *s, const char *fmt, ...) {
    size_t used = strlen(s->warnings);
    if (used + 2 >= sizeof(s->warnings)) return;
    if (used) s->warnings[used++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->warnings + used, sizeof(s->warnings) - used, fmt, ap);
    va_end(ap);
}

int train_settings_add_param(TrainSettings *s, const char *name, const char *value, Err *e) {
    if (strlen(name) >= sizeof(s->param_names[0]) || strlen(value) >= sizeof(s->param_values[0]))
        return err_set(e, "attack parameter %s=%s is too long", name, value);
    int i = 0;
    while (i < s->n_params && strcasecmp(s->param_names[i], name)) i++;
    if (i == s->n_params) {
        if (s->n_params == TRAIN_MAX_PARAMS) return err_set(e, "at most %d attack parameters", TRAIN_MAX_PARAMS);
        s->n_params++;
    }
    snprintf(s->param_names[i], sizeof(s->param_names[i]), "%s", name);
    snprintf(s->param_values[i], sizeof(s->param_values[i]), "%s", value);
    return 0;
}

static int apply_key(TrainSettings *s, const cJSON *v, Err *e) {
    const char *k = v->string;
    int b;
    // BEARD's keys
    if (!strcmp(k, "dataset")) return json_get_str(v, s->dataset, sizeof(s->dataset), e);
    if (!strcmp(k, "model") || !strcmp(k, "arch")) return json_get_str(v, s->arch, sizeof(s->arch), e);
    if (!strcmp(k, "method")) return json_get_str(v, s->method, sizeof(s->method), e);
    if (!strcmp(k, "ipc")) {
        if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 0 && v->valuedouble < 1e9) {
            snprintf(s->ipc, sizeof(s->ipc), "%d", (int)v->valuedouble);
            return 0;
        }
        if (cJSON_IsString(v)) return json_get_str(v, s->ipc, sizeof(s->ipc), e);
        return err_set(e, "\"ipc\" must be a number or a string, not %s", json_type(v));
    }
    if (!strcmp(k, "dsa_strategy")) return json_get_str(v, s->dsa_strategy, sizeof(s->dsa_strategy), e);
    if (!strcmp(k, "aug") || !strcmp(k, "unpack4")) return json_get_bool(v, &s->unpack4, e);
    if (!strcmp(k, "data_file")) return json_get_str(v, s->data_file, sizeof(s->data_file), e);
    if (!strcmp(k, "save_path")) return json_get_str(v, s->save_path, sizeof(s->save_path), e);
    if (!strcmp(k, "data_path") || !strcmp(k, "data")) return json_get_str(v, s->data_path, sizeof(s->data_path), e);
    if (!strcmp(k, "train_attack")) {
        if (cJSON_IsNull(v) || cJSON_IsFalse(v)) {
            snprintf(s->train_attack, sizeof(s->train_attack), "None");
            return 0;
        }
        return json_get_str(v, s->train_attack, sizeof(s->train_attack), e);
    }
    if (!strcmp(k, "target_attack") || !strcmp(k, "train_targeted")) {
        if (cJSON_IsArray(v))
            return err_set(e, "\"target_attack\" must be one boolean for training (a list is an evaluation setting)");
        return json_get_bool(v, &s->target_attack, e);
    }
    if (!strcmp(k, "src_dataset")) return json_get_bool(v, &s->src_dataset, e);
    if (!strcmp(k, "epoch_eval_train") || !strcmp(k, "epochs")) return json_get_int(v, 0, 10000000, &s->epochs, e);
    if (!strcmp(k, "lr_net") || !strcmp(k, "lr")) {
        s->set_lr = 1;
        if (json_get_num(v, 0, &s->lr, e)) return -1;
        return s->lr > 0 ? 0 : err_set(e, "\"%s\" must be positive", k);
    }
    if (!strcmp(k, "batch_train") || !strcmp(k, "batch")) {
        s->set_batch = 1;
        return json_get_int(v, 1, 1 << 20, &s->batch, e);
    }
    if (!strcmp(k, "eval_mode")) {
        char m[8];
        if (json_get_str(v, m, sizeof(m), e)) return -1;
        const char *pool = train_eval_pool(m);
        if (!pool) return err_set(e, "\"eval_mode\" \"%s\" is none of DC's S, SS, M, B, W, D, A, P, N", m);
        if (*pool)
            return err_set(e, "\"eval_mode\" \"%s\" trains DC's pool %s: pass it as --arch %s (or --eval-mode %s)", m,
                           pool, pool, m);
        return 0;
    }
    // BEARD keys that do not affect training (distillation or evaluation settings)
    if (!strcmp(k, "syn_ce")) return json_get_bool(v, &b, e);
    if (!strcmp(k, "ce_weight")) {
        double d;
        return json_get_num(v, -INFINITY, &d, e);
    }
    if (!strcmp(k, "Iteration") || !strcmp(k, "eval_interval")) return json_get_int(v, 0, 1L << 30, &b, e);
    if (!strcmp(k, "test_attack")) {
        if (!cJSON_IsString(v) && !cJSON_IsArray(v) && !cJSON_IsNull(v))
            return err_set(e, "\"test_attack\" must be a string or a list, not %s", json_type(v));
        return 0;
    }
    // beard's own keys
    if (!strcmp(k, "runs")) return json_get_int(v, 1, 1000, &s->runs, e);
    if (!strcmp(k, "seed")) {
        double d;
        if (json_get_num(v, 0, &d, e)) return -1;
        if (d != floor(d) || d > 9e15) return err_set(e, "\"seed\" must be a non-negative integer");
        s->seed = (long long)d;
        return 0;
    }
    if (!strcmp(k, "optimizer")) {
        if (json_get_str(v, s->optimizer, sizeof(s->optimizer), e)) return -1;
        if (strcasecmp(s->optimizer, "sgd") && strcasecmp(s->optimizer, "adam"))
            return err_set(e, "\"optimizer\" must be \"sgd\" or \"adam\"");
        return 0;
    }
    if (!strcmp(k, "momentum")) return json_get_num(v, 0, &s->momentum, e);
    if (!strcmp(k, "weight_decay")) {
        s->set_weight_decay = 1;
        return json_get_num(v, 0, &s->weight_decay, e);
    }
    if (!strcmp(k, "lr_decay")) return json_get_bool(v, &s->lr_decay, e);
    if (!strcmp(k, "learned_lr")) return json_get_bool(v, &s->learned_lr, e);
    if (!strcmp(k, "pixels")) return json_get_bool(v, &s->pixels, e);
    if (!strcmp(k, "exp")) return json_get_int(v, -1000000, 1000000, &s->exp, e);
    if (!strcmp(k, "eval_every")) return json_get_int(v, 0, 10000000, &s->eval_every, e);
    if (!strcmp(k, "log_every")) return json_get_int(v, 0, 10000000, &s->log_every, e);
    if (!strcmp(k, "threads")) return json_get_int(v, 0, 256, &s->threads, e);
    if (!strcmp(k, "train_semantics")) {
        if (json_get_str(v, s->train_semantics, sizeof(s->train_semantics), e)) return -1;
        if (strcasecmp(s->train_semantics, "beard") && strcasecmp(s->train_semantics, "pixel"))
            return err_set(e, "\"train_semantics\" must be \"beard\" or \"pixel\"");
        return 0;
    }
    if (!strcmp(k, "train_params")) {
        if (!cJSON_IsObject(v)) return err_set(e, "\"train_params\" must be an object such as {\"eps\": 0.03}");
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            char val[64];
            if (cJSON_IsNumber(it)) snprintf(val, sizeof(val), "%.17g", it->valuedouble);
            else if (cJSON_IsBool(it)) snprintf(val, sizeof(val), "%s", cJSON_IsTrue(it) ? "true" : "false");
            else if (cJSON_IsString(it) && strlen(it->valuestring) < sizeof(val)) snprintf(val, sizeof(val), "%s", it->valuestring);
            else return err_set(e, "\"train_params\".%s must be a number, a boolean or a short string", it->string);
            if (train_settings_add_param(s, it->string, val, e)) return -1;
        }
        return 0;
    }
    warn(s, "unknown key \"%s\" ignored", k);
    return 0;
}

int train_settings_apply_json(TrainSettings *s, const cJSON *obj, Err *e) {
    if (!cJSON_IsObject(obj)) return err_set(e, "expected a JSON object of training settings");
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        if (apply_key(s, v, e)) return -1;
    }
    return 0;
}

int train_settings_config(const TrainSettings *s, int default_sem, TrainConfig *cfg, Err *e) {
    int adam = !strcasecmp(s->optimizer, "adam");
    train_config_default(cfg);
    cfg->epochs = s->epochs;
    cfg->batch = adam && !s->set_batch ? 128 : s->batch;
    cfg->optimizer = adam ? OPTIM_ADAM : OPTIM_SGD;
    cfg->lr = (float)(adam && !s->set_lr ? 1e-4 : s->lr);
    cfg->momentum = (float)s->momentum;
    cfg->weight_decay = (float)s->weight_decay;
    cfg->lr_decay = s->lr_decay;
    cfg->eval_every = s->eval_every;
    if (dsa_strategy_parse(&cfg->strategy, s->dsa_strategy, e)) return -1;
    cfg->dsa = cfg->strategy.n_ops > 0;
    Semantics sem = (Semantics)default_sem;
    if (s->train_semantics[0]) semantics_parse(s->train_semantics, &sem);
    if (train_adv_setup(&cfg->adv, s->train_attack, sem, s->target_attack, e)) return -1;
    for (int k = 0; k < s->n_params; k++) {
        const char *name = s->param_names[k], *val = s->param_values[k];
        if (cfg->adv.kind == TRAIN_ADV_NONE) return err_set(e, "training parameter %s without a training attack", name);
        int r = attack_params_set_text(&cfg->adv.params, cfg->adv.def, name, val);
        if (r == -1) {
            char known[256] = "";
            size_t off = 0;
            for (const AttackParamDef *q = cfg->adv.def->params; q->name && off < sizeof(known); q++)
                off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", off ? ", " : "", q->name);
            return err_set(e, "%s has no parameter '%s' (it has: %s)", cfg->adv.def->name, name, known);
        }
        if (r == -2) return err_set(e, "%s: bad value '%s' for %s", cfg->adv.def->name, val, name);
    }
    if (train_adv_finish(&cfg->adv, e)) return err_wrap(e, "training attack parameters");
    return 0;
}

const char *train_eval_pool(const char *mode) {
    // DC's get_eval_pool (utils.py); S and SS train the model itself
    static const struct {
        const char *mode, *archs;
    } pools[] = {
        {"S", ""},
        {"SS", ""},
        {"M", "MLP,ConvNet,LeNet,AlexNet,VGG11,ResNet18"},
        {"B", "ConvNetBN,ConvNetASwishBN,AlexNetBN,VGG11BN,ResNet18BN"},
        {"W", "ConvNetW32,ConvNetW64,ConvNetW128,ConvNetW256"},
        {"D", "ConvNetD1,ConvNetD2,ConvNetD3,ConvNetD4"},
        {"A", "ConvNetAS,ConvNetAR,ConvNetAL,ConvNetASwish"},
        {"P", "ConvNetNP,ConvNetMP,ConvNetAP"},
        {"N", "ConvNetNN,ConvNetBN,ConvNetLN,ConvNetIN,ConvNetGN"},
    };
    for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
        if (!strcmp(mode, pools[i].mode)) return pools[i].archs;
    return NULL;
}

int train_settings_load_json(TrainSettings *s, const char *path, Err *e) {
    uint8_t *buf = NULL;
    size_t n = 0;
    if (file_read_all(path, 1 << 20, &buf, &n, e)) return -1;
    cJSON *root = cJSON_ParseWithLength((const char *)buf, n);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= (const char *)buf && at <= (const char *)buf + n ? (long)(at - (const char *)buf) : -1;
        free(buf);
        return err_set(e, "%s: not valid JSON (near byte %ld)", path, off);
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) rc = err_set(e, "%s: expected a JSON object of settings", path);
    const cJSON *v;
    if (!rc)
        cJSON_ArrayForEach(v, root) {
            if (apply_key(s, v, e)) {
                err_wrap(e, "%s", path);
                rc = -1;
                break;
            }
        }
    cJSON_Delete(root);
    free(buf);
    return rc;
}
