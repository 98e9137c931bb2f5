/*
 * safetensors.c: see safetensors.h. The checks follow the reference reader
 * (safetensors/src/tensor.rs: SafeTensors::read_metadata and Metadata::validate):
 * header length at most 100 MB and inside the file, JSON that is an object, offsets
 * that tile the data region exactly. Unlike the reference we do not support the
 * dtypes beard has no use for (U16/U32/U64, F8 variants, complex).
 */
#include "safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "file.h"

#define HEADER_MAX (100u * 1000 * 1000)

static int dtype_from_name(const char *s, DType *out) {
    for (int t = 0; t < DTYPE_COUNT; t++)
        if (!strcmp(s, dtype_safetensors((DType)t))) {
            *out = (DType)t;
            return 0;
        }
    return -1;
}

// a JSON number that is an exact non-negative integer below 2^53
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    const char *name;
} Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

int safetensors_loads(const uint8_t *buf, size_t n, TensorDict *out, Err *e) {
    if (n < 8) return err_set(e, "file too small for a safetensors header");
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | buf[k];
    if (hlen > HEADER_MAX) return err_set(e, "safetensors header length %llu is too large", (unsigned long long)hlen);
    if (hlen > n - 8) return err_set(e, "safetensors header length %llu exceeds the file", (unsigned long long)hlen);
    if (hlen < 2 || buf[8] != '{') return err_set(e, "safetensors header is not a JSON object");
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = n - 8 - (size_t)hlen;
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return err_set(e, "safetensors header is not valid JSON");
    }
    int count = cJSON_GetArraySize(root), rc = -1, ns = 0;
    Span *spans = calloc((size_t)count + 1, sizeof(Span));
    if (!spans) {
        cJSON_Delete(root);
        return err_set(e, "out of memory");
    }
    // validate everything first, then copy
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                err_set(e, "safetensors __metadata__ is not an object");
                goto done;
            }
            continue;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        DType dt;
        if (!cJSON_IsObject(it) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
            cJSON_GetArraySize(jo) != 2) {
            err_set(e, "safetensors entry '%.100s' lacks dtype, shape or data_offsets", name);
            goto done;
        }
        if (dtype_from_name(jd->valuestring, &dt)) {
            err_set(e, "safetensors tensor '%.100s' has unsupported dtype '%.20s'", name, jd->valuestring);
            goto done;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > TENSOR_MAX_DIM) {
            err_set(e, "safetensors tensor '%.100s' has %d dimensions (at most %d)", name, nd, TENSOR_MAX_DIM);
            goto done;
        }
        size_t numel = 1, bytes;
        for (const cJSON *d = js->child; d; d = d->next) {
            uint64_t v;
            if (json_uint(d, &v) || !size_mul(numel, (size_t)v, &numel)) {
                err_set(e, "safetensors tensor '%.100s' has a bad shape", name);
                goto done;
            }
        }
        uint64_t b0, b1;
        if (json_uint(jo->child, &b0) || json_uint(jo->child->next, &b1) || b1 < b0) {
            err_set(e, "safetensors tensor '%.100s' has bad data_offsets", name);
            goto done;
        }
        if (b1 > data_len) {
            err_set(e, "safetensors tensor '%.100s' ends at byte %llu, past the %zu data bytes", name,
                    (unsigned long long)b1, data_len);
            goto done;
        }
        if (!size_mul(numel, dtype_size(dt), &bytes) || bytes != b1 - b0) {
            err_set(e, "safetensors tensor '%.100s' has %llu bytes for %zu elements of %s", name,
                    (unsigned long long)(b1 - b0), numel, dtype_safetensors(dt));
            goto done;
        }
        spans[ns++] = (Span){b0, b1, name};
    }
    qsort(spans, (size_t)ns, sizeof(Span), span_cmp);
    uint64_t at = 0;
    for (int k = 0; k < ns; k++) {
        if (spans[k].begin < at) {
            err_set(e, "safetensors tensors '%.100s' and '%.100s' overlap", spans[k - 1].name, spans[k].name);
            goto done;
        }
        if (spans[k].begin > at) {
            err_set(e, "safetensors data has unused bytes before tensor '%.100s'", spans[k].name);
            goto done;
        }
        at = spans[k].end;
    }
    if (at != data_len) {
        err_set(e, "safetensors data has %llu trailing bytes no tensor uses", (unsigned long long)(data_len - at));
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string ? it->string : "", "__metadata__")) continue;
        DType dt = DTYPE_F32;
        dtype_from_name(cJSON_GetObjectItemCaseSensitive(it, "dtype")->valuestring, &dt);
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        int64_t shape[TENSOR_MAX_DIM];
        int nd = 0;
        for (const cJSON *d = js->child; d; d = d->next) shape[nd++] = (int64_t)d->valuedouble;
        uint64_t b0 = 0;
        json_uint(cJSON_GetObjectItemCaseSensitive(it, "data_offsets")->child, &b0);
        Tensor t;
        if (tensor_init(&t, dt, nd, shape, e)) goto done;
        if (t.numel) memcpy(t.data, data + b0, tensor_nbytes(&t));
        if (tensordict_add(out, it->string, &t, e)) {
            tensor_free(&t);
            goto done;
        }
    }
    rc = 0;
done:
    free(spans);
    cJSON_Delete(root);
    return rc;
}

int safetensors_load(const char *path, TensorDict *out, Err *e) {
    uint8_t *buf;
    size_t n;
    if (file_read_all(path, (size_t)1 << 38, &buf, &n, e)) return -1;
    int rc = safetensors_loads(buf, n, out, e);
    free(buf);
    return rc ? err_wrap(e, "%s", path) : 0;
}

// ----------------------------------------------------------------------------

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} Text;

static void text_put(Text *t, const char *s, size_t k) {
    if (t->oom) return;
    if (t->n + k + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->n + k + 1) cap *= 2;
        char *q = realloc(t->p, cap);
        if (!q) {
            t->oom = 1;
            return;
        }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, k);
    t->n += k;
    t->p[t->n] = 0;
}

static void text_printf(Text *t, const char *fmt, unsigned long long a, unsigned long long b) {
    char buf[128];
    int k = snprintf(buf, sizeof(buf), fmt, a, b);
    text_put(t, buf, (size_t)k);
}

static void text_json_string(Text *t, const char *s) {
    text_put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            text_put(t, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            text_put(t, esc, 6);
        } else {
            text_put(t, (const char *)&c, 1);
        }
    }
    text_put(t, "\"", 1);
}

int safetensors_save(const char *path, const TensorDict *sd, Err *e) {
    Text h = {0};
    text_put(&h, "{", 1);
    uint64_t off = 0;
    for (int i = 0; i < sd->n; i++) {
        const Tensor *t = &sd->items[i].t;
        if (i) text_put(&h, ",", 1);
        text_json_string(&h, sd->items[i].name);
        text_put(&h, ":{\"dtype\":\"", 11);
        text_put(&h, dtype_safetensors(t->dtype), strlen(dtype_safetensors(t->dtype)));
        text_put(&h, "\",\"shape\":[", 11);
        for (int d = 0; d < t->ndim; d++) text_printf(&h, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d], 0);
        uint64_t nb = tensor_nbytes(t);
        text_printf(&h, "],\"data_offsets\":[%llu,%llu]}", off, off + nb);
        off += nb;
    }
    text_put(&h, "}", 1);
    while (!h.oom && h.n % 8) text_put(&h, " ", 1);
    if (h.oom) {
        free(h.p);
        return err_set(e, "out of memory");
    }
    size_t total = 8 + h.n + (size_t)off;
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(h.p);
        return err_set(e, "out of memory writing %s", path);
    }
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)h.n >> (8 * k));
    memcpy(buf + 8, h.p, h.n);
    size_t at = 8 + h.n;
    for (int i = 0; i < sd->n; i++) {
        const Tensor *t = &sd->items[i].t;
        if (t->numel) memcpy(buf + at, t->data, tensor_nbytes(t));
        at += tensor_nbytes(t);
    }
    int rc = file_write_all(path, buf, total, e);
    free(buf);
    free(h.p);
    return rc;
}
