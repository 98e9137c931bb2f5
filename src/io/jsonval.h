/*
 * jsonval.h: typed reads of cJSON values for the config readers, with the one-line errors
 * a user sees ("\"lr\" must be a number >= 0, not a string"). The key in a message is the
 * value's own name (v->string).
 */
#ifndef BEARD_JSONVAL_H
#define BEARD_JSONVAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "../core/common.h"

// "a string", "a number", "a list", ...: what a value is, for messages
const char *json_type(const cJSON *v);

int json_get_str(const cJSON *v, char *dst, size_t n, Err *e);
int json_get_bool(const cJSON *v, int *dst, Err *e);
// an integral number in [lo, hi]
int json_get_long(const cJSON *v, long lo, long hi, long *dst, Err *e);
int json_get_int(const cJSON *v, long lo, long hi, int *dst, Err *e);
// a finite number >= lo (lo = -INFINITY: any finite number); dst may be NULL
int json_get_num(const cJSON *v, double lo, double *dst, Err *e);

#endif
