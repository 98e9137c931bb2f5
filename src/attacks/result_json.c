/*
 * result_json.c: see result_json.h.
 */
#include "result_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double mean_f(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : 0;
}

// numbers rounded to what is meaningful (keeps the files small and diffable)
static cJSON *num(double v, int digits) {
    double p = pow(10, digits);
    return cJSON_CreateNumber(round(v * p) / p);
}

static cJSON *float_array(const float *v, int n, int digits) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, num(v[i], digits));
    return a;
}

static cJSON *byte_array(const unsigned char *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *attack_result_json(const AttackResult *r, int per_sample) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "attack", r->def->name);
    cJSON_AddBoolToObject(o, "targeted", r->targeted);
    cJSON_AddStringToObject(o, "semantics", semantics_name(r->sem));
    cJSON_AddItemToObject(o, "accuracy", num(r->accuracy, 4));
    cJSON_AddItemToObject(o, "clean_accuracy", num(r->clean_accuracy, 4));
    cJSON_AddItemToObject(o, "asr", num(r->asr, 4));
    if (r->targeted) cJSON_AddItemToObject(o, "target_hit_rate", num(100.0 * r->target_hits / r->n, 4));
    cJSON_AddItemToObject(o, "seconds", num(r->seconds, 4));
    cJSON_AddItemToObject(o, "passes_per_sample", num(r->forward_per_sample + r->backward_per_sample, 4));
    cJSON_AddItemToObject(o, "forward_per_sample", num(r->forward_per_sample, 4));
    cJSON_AddItemToObject(o, "backward_per_sample", num(r->backward_per_sample, 4));
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON *p = cJSON_AddObjectToObject(o, "params");
    for (int i = 0; i < r->params.n; i++) {
        const AttackParamDef *d = attack_param_def(r->def, r->params.names[i]);
        char buf[ATTACK_TEXT_LEN];
        if (d && (d->type == ATTACK_PARAM_CHOICE || d->type == ATTACK_PARAM_TEXT)) cJSON_AddStringToObject(p, r->params.names[i], attack_param_text(&r->params, r->def, i, buf, sizeof(buf)));
        else cJSON_AddItemToObject(p, r->params.names[i], num(r->params.values[i], 10));
    }
    cJSON_AddItemToObject(o, "mean_l2", num(mean_f(r->l2, r->n), 6));
    cJSON_AddItemToObject(o, "mean_linf", num(mean_f(r->linf, r->n), 6));
    cJSON_AddItemToObject(o, "mean_l2_pixel", num(mean_f(r->l2_pixel, r->n), 6));
    cJSON_AddItemToObject(o, "mean_linf_pixel", num(mean_f(r->linf_pixel, r->n), 6));
    if (per_sample) {
        cJSON *s = cJSON_AddObjectToObject(o, "per_sample");
        unsigned char *succ = malloc(r->n ? (size_t)r->n : 1);
        for (int i = 0; i < r->n; i++) succ[i] = r->clean_ok[i] && !r->adv_ok[i];
        cJSON_AddItemToObject(s, "clean_correct", byte_array(r->clean_ok, r->n));
        cJSON_AddItemToObject(s, "adv_correct", byte_array(r->adv_ok, r->n));
        cJSON_AddItemToObject(s, "success", byte_array(succ, r->n));
        cJSON_AddItemToObject(s, "pred", int_array(r->pred, r->n));
        if (r->targets) cJSON_AddItemToObject(s, "target", int_array(r->targets, r->n));
        cJSON_AddItemToObject(s, "l2", float_array(r->l2, r->n, 6));
        cJSON_AddItemToObject(s, "linf", float_array(r->linf, r->n, 6));
        cJSON_AddItemToObject(s, "l2_pixel", float_array(r->l2_pixel, r->n, 6));
        cJSON_AddItemToObject(s, "linf_pixel", float_array(r->linf_pixel, r->n, 6));
        free(succ);
    }
    return o;
}

cJSON *transfer_result_json(const char *model, const char *arch, const TransferResult *tr, int per_sample) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "model", model);
    cJSON_AddStringToObject(t, "arch", arch);
    cJSON_AddNumberToObject(t, "accuracy", tr->accuracy);
    cJSON_AddNumberToObject(t, "clean_accuracy", tr->clean_accuracy);
    cJSON_AddNumberToObject(t, "asr", tr->asr);
    if (per_sample) { // per-sample successes, for paired comparisons of attacks on one target
        cJSON *s = cJSON_AddObjectToObject(t, "per_sample");
        cJSON *succ = cJSON_CreateArray();
        for (int i = 0; i < tr->n; i++) cJSON_AddItemToArray(succ, cJSON_CreateNumber(tr->clean_ok[i] && !tr->adv_ok[i]));
        cJSON_AddItemToObject(s, "clean_correct", byte_array(tr->clean_ok, tr->n));
        cJSON_AddItemToObject(s, "adv_correct", byte_array(tr->adv_ok, tr->n));
        cJSON_AddItemToObject(s, "success", succ);
    }
    return t;
}
