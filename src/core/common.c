/*
 * common.c: errors, checked allocation, the owning Tensor, float16/bfloat16 conversion,
 * and number parsing that accepts fractions such as "8/255" (the way BEARD's configs and
 * papers write epsilons).
 */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int err_set(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int err_wrap(Err *e, const char *fmt, ...) {
    if (!e) return -1;
    char prefix[ERR_MAX], old[ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    old[ERR_MAX - 1] = 0;
    size_t np = strlen(prefix), no = strlen(old);
    if (np > ERR_MAX - 3) np = ERR_MAX - 3;
    memcpy(e->msg, prefix, np);
    memcpy(e->msg + np, ": ", 2);
    if (no > ERR_MAX - 3 - np) no = ERR_MAX - 3 - np;
    memcpy(e->msg + np + 2, old, no);
    e->msg[np + 2 + no] = 0;
    return -1;
}

void *xmalloc(size_t n) {
    if (n == 0) n = 1;
    // round up for aligned_alloc's contract
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n) return NULL;
    return aligned_alloc(64, r);
}

void *xcalloc(size_t n) {
    void *p = xmalloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void xfree(void *p) { free(p); }

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

int size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

// ----------------------------------------------------------------------------
// dtypes

static const struct {
    const char *name, *st;
    size_t size;
} dtype_info[DTYPE_COUNT] = {
    [DTYPE_F32] = {"float32", "F32", 4}, [DTYPE_F64] = {"float64", "F64", 8},
    [DTYPE_F16] = {"float16", "F16", 2}, [DTYPE_BF16] = {"bfloat16", "BF16", 2},
    [DTYPE_I64] = {"int64", "I64", 8},   [DTYPE_I32] = {"int32", "I32", 4},
    [DTYPE_I16] = {"int16", "I16", 2},   [DTYPE_I8] = {"int8", "I8", 1},
    [DTYPE_U8] = {"uint8", "U8", 1},     [DTYPE_BOOL] = {"bool", "BOOL", 1},
};

size_t dtype_size(DType t) { return (unsigned)t < DTYPE_COUNT ? dtype_info[t].size : 0; }
const char *dtype_name(DType t) { return (unsigned)t < DTYPE_COUNT ? dtype_info[t].name : "?"; }
const char *dtype_safetensors(DType t) { return (unsigned)t < DTYPE_COUNT ? dtype_info[t].st : "?"; }

int tensor_init(Tensor *t, DType dtype, int ndim, const int64_t *shape, Err *e) {
    memset(t, 0, sizeof(*t));
    if ((unsigned)dtype >= DTYPE_COUNT) return err_set(e, "unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > TENSOR_MAX_DIM)
        return err_set(e, "tensor has %d dimensions (at most %d supported)", ndim, TENSOR_MAX_DIM);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return err_set(e, "negative tensor dimension %lld", (long long)shape[i]);
        if (!size_mul(n, (size_t)shape[i], &n)) return err_set(e, "tensor size overflows");
        t->shape[i] = shape[i];
    }
    size_t bytes;
    if (!size_mul(n, dtype_size(dtype), &bytes)) return err_set(e, "tensor size overflows");
    t->dtype = dtype;
    t->ndim = ndim;
    t->numel = n;
    if (n > 0) {
        t->data = xcalloc(bytes);
        if (!t->data) return err_set(e, "out of memory allocating a %zu-byte tensor", bytes);
    }
    return 0;
}

void tensor_free(Tensor *t) {
    if (!t) return;
    xfree(t->data);
    memset(t, 0, sizeof(*t));
}

size_t tensor_nbytes(const Tensor *t) { return t->numel * dtype_size(t->dtype); }

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { // subnormal: renormalise
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - exp;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; // may carry into the exponent, which is right
    return (uint16_t)half;
}

float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float *tensor_to_f32(const Tensor *t, Err *e) {
    float *out = xmalloc(t->numel * sizeof(float));
    if (!out) {
        err_set(e, "out of memory converting a tensor of %zu elements", t->numel);
        return NULL;
    }
    const void *d = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        float v = 0;
        switch (t->dtype) {
        case DTYPE_F32: v = ((const float *)d)[i]; break;
        case DTYPE_F64: v = (float)((const double *)d)[i]; break;
        case DTYPE_F16: v = half_to_float(((const uint16_t *)d)[i]); break;
        case DTYPE_BF16: v = bf16_to_float(((const uint16_t *)d)[i]); break;
        case DTYPE_I64: v = (float)((const int64_t *)d)[i]; break;
        case DTYPE_I32: v = (float)((const int32_t *)d)[i]; break;
        case DTYPE_I16: v = (float)((const int16_t *)d)[i]; break;
        case DTYPE_I8: v = (float)((const int8_t *)d)[i]; break;
        case DTYPE_U8: v = (float)((const uint8_t *)d)[i]; break;
        case DTYPE_BOOL: v = ((const uint8_t *)d)[i] ? 1.0f : 0.0f; break;
        default: break;
        }
        out[i] = v;
    }
    return out;
}

int64_t *tensor_to_i64(const Tensor *t, Err *e) {
    int64_t *out = xmalloc(t->numel * sizeof(int64_t));
    if (!out) {
        err_set(e, "out of memory converting a tensor of %zu elements", t->numel);
        return NULL;
    }
    const void *d = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v = 0;
        switch (t->dtype) {
        case DTYPE_F32: v = (int64_t)((const float *)d)[i]; break;
        case DTYPE_F64: v = (int64_t)((const double *)d)[i]; break;
        case DTYPE_F16: v = (int64_t)half_to_float(((const uint16_t *)d)[i]); break;
        case DTYPE_BF16: v = (int64_t)bf16_to_float(((const uint16_t *)d)[i]); break;
        case DTYPE_I64: v = ((const int64_t *)d)[i]; break;
        case DTYPE_I32: v = ((const int32_t *)d)[i]; break;
        case DTYPE_I16: v = ((const int16_t *)d)[i]; break;
        case DTYPE_I8: v = ((const int8_t *)d)[i]; break;
        case DTYPE_U8: v = ((const uint8_t *)d)[i]; break;
        case DTYPE_BOOL: v = ((const uint8_t *)d)[i] != 0; break;
        default: break;
        }
        out[i] = v;
    }
    return out;
}

const char *tensor_shape_str(const Tensor *t, char *buf, size_t n) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}

// ----------------------------------------------------------------------------

double time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_plain(const char *s, const char *end, double *out) {
    char buf[128];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof(buf)) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *p;
    errno = 0;
    double v = strtod(buf, &p);
    if (p == buf || *p != 0 || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int parse_number(const char *s, double *out) {
    if (!s) return -1;
    const char *slash = strchr(s, '/');
    const char *end = s + strlen(s);
    if (!slash) return parse_plain(s, end, out);
    double a, b;
    if (parse_plain(s, slash, &a) || parse_plain(slash + 1, end, &b) || b == 0) return -1;
    *out = a / b;
    return 0;
}

int parse_int(const char *s, long *out) {
    if (!s || !*s) return -1;
    char *p;
    errno = 0;
    long v = strtol(s, &p, 10);
    if (*p != 0 || errno == ERANGE) return -1;
    *out = v;
    return 0;
}
