#include "jsonval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsNull(v)) return "null";
    return "something else";
}

int json_get_str(const cJSON *v, char *dst, size_t n, Err *e) {
    if (!cJSON_IsString(v)) return err_set(e, "\"%s\" must be a string, not %s", v->string, json_type(v));
    if (strlen(v->valuestring) >= n) return err_set(e, "\"%s\" is too long (%zu characters at most)", v->string, n - 1);
    snprintf(dst, n, "%s", v->valuestring);
    return 0;
}

int json_get_bool(const cJSON *v, int *dst, Err *e) {
    if (!cJSON_IsBool(v)) return err_set(e, "\"%s\" must be true or false, not %s", v->string, json_type(v));
    *dst = cJSON_IsTrue(v);
    return 0;
}

// what a value is, for messages: the number itself (as the file wrote it, near enough), or its type
static const char *value_desc(const cJSON *v, char *buf, size_t n) {
    if (!cJSON_IsNumber(v)) return json_type(v);
    snprintf(buf, n, "%.17g", v->valuedouble);
    return buf;
}

int json_get_long(const cJSON *v, long lo, long hi, long *dst, Err *e) {
    char b[40];
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return err_set(e, "\"%s\" must be an integer in [%ld, %ld], not %s", v->string, lo, hi, value_desc(v, b, sizeof(b)));
    *dst = (long)v->valuedouble;
    return 0;
}

int json_get_int(const cJSON *v, long lo, long hi, int *dst, Err *e) {
    long n = 0;
    if (json_get_long(v, lo, hi, &n, e)) return -1;
    *dst = (int)n;
    return 0;
}

int json_get_num(const cJSON *v, double lo, double *dst, Err *e) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo) {
        char b[40];
        const char *what = value_desc(v, b, sizeof(b));
        if (lo == -INFINITY) return err_set(e, "\"%s\" must be a number, not %s", v->string, what);
        return err_set(e, "\"%s\" must be a number >= %g, not %s", v->string, lo, what);
    }
    if (dst) *dst = v->valuedouble;
    return 0;
}
