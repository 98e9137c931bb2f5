/*
 * pickle.c: the restricted unpickler (see pickle.h for what it accepts and why).
 *
 * It follows CPython's Lib/pickle.py (_Unpickler) opcode by opcode, with three deliberate
 * differences: (1) find_class is an allow-list and REDUCE/NEWOBJ/BUILD are interpreted,
 * never executed; (2) Python 2 strings load as bytes (encoding='bytes'), not str;
 * (3) a dict that receives the same key twice keeps both pairs (lookups return the last
 * one, as Python would) so that SETITEMS stays linear on hostile input.
 *
 * Tensors. torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) does not
 * copy anything while the pickle is read, because in the legacy torch format the
 * storages' bytes only follow the pickle. It records a pending view; pickle_doc_finish()
 * checks every view against its storage and copies it into a contiguous Tensor. numpy
 * arrays carry their bytes inline and are built at once.
 */
#include "pickle.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "file.h"

// ----------------------------------------------------------------------------
// the document: every node and buffer of one load, and the memory budget

struct PickleDoc {
    PickleValue **nodes;
    size_t n_nodes, cap_nodes;
    size_t budget, used;     // bytes: every allocation of the load counts here
    uint64_t work, work_max; // steps: opcodes, container items, state_dict entries
    int nest;
};

typedef struct { // a torch tensor waiting for its storage's bytes
    PickleValue *storage;
    int64_t offset;
    int ndim;
    int64_t shape[TENSOR_MAX_DIM], stride[TENSOR_MAX_DIM];
} PendingView;

size_t pickle_budget_for(size_t n) {
    // nodes are ~100 bytes for 2-byte opcodes; resolved tensors may add a copy of every
    // storage. 256x plus 64 MiB covers both and still stops amplification attacks.
    size_t b = (size_t)64 << 20;
    if (n > (SIZE_MAX - b) / 256) return SIZE_MAX;
    return b + 256 * n;
}

PickleDoc *pickle_doc_new(size_t budget) {
    PickleDoc *d = calloc(1, sizeof(*d));
    if (d) {
        d->budget = budget;
        // a step is a few dozen instructions; a quarter of the byte budget is far more
        // than any real file needs (one step per opcode or item) and a second or two of work
        d->work_max = budget / 4;
    }
    return d;
}

static int charge(PickleDoc *d, size_t bytes, Err *e) {
    if (bytes > d->budget - d->used)
        return err_set(e, "file needs more memory than its size allows (limit %zu bytes; a crafted file?)", d->budget);
    d->used += bytes;
    return 0;
}

int pickle_doc_charge(PickleDoc *d, size_t bytes, Err *e) { return charge(d, bytes, e); }

static void refund(PickleDoc *d, size_t bytes);
void pickle_doc_refund(PickleDoc *d, size_t bytes) { refund(d, bytes); }
size_t pickle_doc_used(const PickleDoc *d) { return d->used; }

int pickle_doc_work(PickleDoc *d, uint64_t steps, Err *e) {
    if (steps > d->work_max - d->work)
        return err_set(e, "file needs more work than its size allows (%llu steps; a crafted file?)",
                       (unsigned long long)d->work_max);
    d->work += steps;
    return 0;
}

static void refund(PickleDoc *d, size_t bytes) { d->used = bytes > d->used ? 0 : d->used - bytes; }

static void node_release(PickleValue *v) {
    free(v->s);
    free(v->items);
    if (v->tensor) {
        if (!v->borrowed) tensor_free(v->tensor);
        free(v->tensor);
    }
    if (v->storage) {
        free(v->storage->key);
        if (!v->storage->base) free(v->storage->data);
        free(v->storage);
    }
    free(v->aux);
    free(v);
}

void pickle_doc_free(PickleDoc *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_nodes; i++) node_release(d->nodes[i]);
    free(d->nodes);
    free(d);
}

void pickle_free(PickleValue *v) {
    if (v) pickle_doc_free(v->doc);
}

int pickle_doc_nest(PickleDoc *d, int delta, Err *e) {
    if (delta > 0 && d->nest >= PICKLE_MAX_NEST)
        return err_set(e, "torch blobs nested more than %d deep in a pickle", PICKLE_MAX_NEST);
    d->nest += delta;
    return 0;
}

static PickleValue *node_new(PickleDoc *d, PickleType t, Err *e) {
    if (charge(d, sizeof(PickleValue) + sizeof(PickleValue *), e)) return NULL;
    if (d->n_nodes == d->cap_nodes) {
        size_t cap = d->cap_nodes ? d->cap_nodes * 2 : 256;
        PickleValue **p = realloc(d->nodes, cap * sizeof(*p));
        if (!p) {
            err_set(e, "out of memory");
            return NULL;
        }
        d->nodes = p;
        d->cap_nodes = cap;
    }
    PickleValue *v = calloc(1, sizeof(*v));
    if (!v) {
        err_set(e, "out of memory");
        return NULL;
    }
    v->type = t;
    v->depth = 1;
    v->doc = d;
    d->nodes[d->n_nodes++] = v;
    return v;
}

// s/len of a node: a NUL-terminated copy of n bytes
static int node_set_bytes(PickleDoc *d, PickleValue *v, const void *p, size_t n, Err *e) {
    if (n == SIZE_MAX || charge(d, n + 1, e)) return err_set(e, "string too large for the pickle's budget");
    v->s = malloc(n + 1);
    if (!v->s) return err_set(e, "out of memory");
    if (n) memcpy(v->s, p, n);
    v->s[n] = 0;
    v->len = n;
    return 0;
}

static PickleValue *new_bytes(PickleDoc *d, PickleType t, const void *p, size_t n, Err *e) {
    PickleValue *v = node_new(d, t, e);
    if (!v || node_set_bytes(d, v, p, n, e)) return NULL;
    return v;
}

static PickleValue *new_int(PickleDoc *d, int64_t i, Err *e) {
    PickleValue *v = node_new(d, PICKLE_INT, e);
    if (v) v->i = i;
    return v;
}

static PickleValue *new_bool(PickleDoc *d, int b, Err *e) {
    PickleValue *v = node_new(d, PICKLE_BOOL, e);
    if (v) v->i = b != 0;
    return v;
}

static PickleValue *new_float(PickleDoc *d, double f, Err *e) {
    PickleValue *v = node_new(d, PICKLE_FLOAT, e);
    if (v) v->f = f;
    return v;
}

static int items_reserve(PickleDoc *d, PickleValue *c, size_t need, Err *e) {
    if (need <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4;
    while (cap < need) {
        if (cap > SIZE_MAX / 2 / sizeof(PickleValue *)) return err_set(e, "container too large");
        cap *= 2;
    }
    if (charge(d, (cap - c->cap) * sizeof(PickleValue *), e)) return -1;
    PickleValue **p = realloc(c->items, cap * sizeof(*p));
    if (!p) return err_set(e, "out of memory");
    c->items = p;
    c->cap = cap;
    return 0;
}

// appends k values to a container, keeping the nesting depth in check
static int items_push(PickleDoc *d, PickleValue *c, PickleValue *const *vals, size_t k, Err *e) {
    if (k == 0) return 0;
    if (c->n > SIZE_MAX / 4 - k) return err_set(e, "container too large");
    if (pickle_doc_work(d, k, e)) return -1;
    size_t slots = c->type == PICKLE_DICT ? 2 * c->n : c->n;
    if (items_reserve(d, c, slots + k, e)) return -1;
    for (size_t j = 0; j < k; j++) {
        if (vals[j]->depth + 1 > c->depth) c->depth = vals[j]->depth + 1;
        c->items[slots + j] = vals[j];
    }
    if (c->depth > PICKLE_MAX_DEPTH) return err_set(e, "pickle nests deeper than %d levels", PICKLE_MAX_DEPTH);
    c->n += c->type == PICKLE_DICT ? k / 2 : k;
    return 0;
}

static PickleValue *new_container(PickleDoc *d, PickleType t, PickleValue *const *vals, size_t k, Err *e) {
    PickleValue *v = node_new(d, t, e);
    if (!v || items_push(d, v, vals, k, e)) return NULL;
    return v;
}

PickleValue *pickle_new_storage(PickleDoc *d, DType dtype, const char *key, size_t numel, Err *e) {
    size_t bytes;
    if ((unsigned)dtype >= DTYPE_COUNT || !size_mul(numel, dtype_size(dtype), &bytes)) {
        err_set(e, "storage of %zu elements is too large", numel);
        return NULL;
    }
    PickleValue *v = node_new(d, PICKLE_STORAGE, e);
    if (!v) return NULL;
    if (charge(d, bytes + sizeof(PickleStorage) + strlen(key) + 1, e)) return NULL;
    v->storage = calloc(1, sizeof(PickleStorage));
    if (!v->storage) goto oom;
    v->storage->dtype = dtype;
    v->storage->numel = numel;
    v->storage->key = strdup(key);
    v->storage->data = malloc(bytes ? bytes : 1);
    if (!v->storage->key || !v->storage->data) goto oom;
    return v;
oom:
    err_set(e, "out of memory allocating a storage of %zu bytes", bytes);
    return NULL;
}

PickleValue *pickle_new_storage_view(PickleDoc *d, PickleValue *base, size_t offset, size_t numel, Err *e) {
    if (!base || base->type != PICKLE_STORAGE || base->storage->base) {
        err_set(e, "storage view of something that is not a root storage");
        return NULL;
    }
    PickleStorage *b = base->storage;
    if (offset > b->numel || numel > b->numel - offset) {
        err_set(e, "storage view [%zu, +%zu) exceeds storage '%s' of %zu elements", offset, numel, b->key, b->numel);
        return NULL;
    }
    PickleValue *v = node_new(d, PICKLE_STORAGE, e);
    if (!v || charge(d, sizeof(PickleStorage) + strlen(b->key) + 1, e)) return NULL;
    v->storage = calloc(1, sizeof(PickleStorage));
    if (!v->storage || !(v->storage->key = strdup(b->key))) {
        err_set(e, "out of memory");
        return NULL;
    }
    v->storage->dtype = b->dtype;
    v->storage->numel = numel;
    v->storage->base = base;
    v->storage->base_offset = offset;
    return v;
}

// ----------------------------------------------------------------------------
// the allow-list

enum {
    G_NONE,
    G_ORDERED_DICT,
    G_SET,
    G_FROZENSET,
    G_BYTES,
    G_CODECS_ENCODE,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_TENSOR,
    G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE,
    G_REBUILD_FROM_TYPE_V2,
    G_TORCH_TENSOR,    // a type, only as _rebuild_from_type_v2's argument
    G_TORCH_PARAMETER, // likewise
    G_TORCH_SIZE,
    G_TORCH_STORAGE,   // i holds the DType
    G_LOAD_FROM_BYTES,
    G_NP_SCALAR,
    G_NP_DTYPE,
    G_NP_RECONSTRUCT,
    G_NP_NDARRAY, // a type; also marks an ndarray awaiting its BUILD
    G_NP_FROMBUFFER,
};

static const struct {
    const char *module, *name;
    int id, dtype;
} allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, 0},
    {"builtins", "set", G_SET, 0},
    {"__builtin__", "set", G_SET, 0},
    {"builtins", "frozenset", G_FROZENSET, 0},
    {"__builtin__", "frozenset", G_FROZENSET, 0},
    {"builtins", "bytes", G_BYTES, 0},
    {"__builtin__", "bytes", G_BYTES, 0},
    {"_codecs", "encode", G_CODECS_ENCODE, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, 0},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, 0},
    {"torch._tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE_V2, 0},
    {"torch", "Tensor", G_TORCH_TENSOR, 0},
    {"torch.nn.parameter", "Parameter", G_TORCH_PARAMETER, 0},
    {"torch", "Size", G_TORCH_SIZE, 0},
    {"torch", "FloatStorage", G_TORCH_STORAGE, DTYPE_F32},
    {"torch", "DoubleStorage", G_TORCH_STORAGE, DTYPE_F64},
    {"torch", "HalfStorage", G_TORCH_STORAGE, DTYPE_F16},
    {"torch", "BFloat16Storage", G_TORCH_STORAGE, DTYPE_BF16},
    {"torch", "LongStorage", G_TORCH_STORAGE, DTYPE_I64},
    {"torch", "IntStorage", G_TORCH_STORAGE, DTYPE_I32},
    {"torch", "ShortStorage", G_TORCH_STORAGE, DTYPE_I16},
    {"torch", "CharStorage", G_TORCH_STORAGE, DTYPE_I8},
    {"torch", "ByteStorage", G_TORCH_STORAGE, DTYPE_U8},
    {"torch", "BoolStorage", G_TORCH_STORAGE, DTYPE_BOOL},
    {"torch.storage", "_load_from_bytes", G_LOAD_FROM_BYTES, 0},
    {"numpy.core.multiarray", "scalar", G_NP_SCALAR, 0},
    {"numpy._core.multiarray", "scalar", G_NP_SCALAR, 0},
    {"numpy", "dtype", G_NP_DTYPE, 0},
    {"numpy.core.multiarray", "_reconstruct", G_NP_RECONSTRUCT, 0},
    {"numpy._core.multiarray", "_reconstruct", G_NP_RECONSTRUCT, 0},
    {"numpy", "ndarray", G_NP_NDARRAY, 0},
    {"numpy.core.numeric", "_frombuffer", G_NP_FROMBUFFER, 0},
    {"numpy._core.numeric", "_frombuffer", G_NP_FROMBUFFER, 0},
};

// printable, bounded copy of untrusted text for error messages
static const char *clean(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++) buf[k++] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    if (n > 0 && k + 4 >= cap) buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = 0;
    return buf;
}

static PickleValue *find_global(PickleDoc *d, const char *mod, size_t mlen, const char *name, size_t nlen, Err *e) {
    for (size_t i = 0; i < sizeof(allowed_globals) / sizeof(allowed_globals[0]); i++) {
        if (strlen(allowed_globals[i].module) != mlen || memcmp(allowed_globals[i].module, mod, mlen)) continue;
        if (strlen(allowed_globals[i].name) != nlen || memcmp(allowed_globals[i].name, name, nlen)) continue;
        PickleValue *v = node_new(d, PICKLE_GLOBAL, e);
        if (!v) return NULL;
        char full[160];
        snprintf(full, sizeof(full), "%s.%s", allowed_globals[i].module, allowed_globals[i].name);
        if (node_set_bytes(d, v, full, strlen(full), e)) return NULL;
        v->gid = allowed_globals[i].id;
        v->i = allowed_globals[i].dtype;
        return v;
    }
    char m[96], n[96];
    err_set(e, "disallowed global '%s.%s' in pickle", clean(mod, mlen, m, sizeof(m)), clean(name, nlen, n, sizeof(n)));
    return NULL;
}

int pickle_storage_dtype(const PickleValue *v, DType *out) {
    if (!v || v->type != PICKLE_GLOBAL || v->gid != G_TORCH_STORAGE) return -1;
    *out = (DType)v->i;
    return 0;
}

// ----------------------------------------------------------------------------
// numpy dtypes: a PICKLE_NPDTYPE node keeps the dtype string ("f8") in s, the item size
// in i and the byte order character in gid

static int np_dtype_map(const PickleValue *dt, DType *out, Err *e) {
    char kind = dt->len ? dt->s[0] : '?';
    int64_t size = dt->i;
    DType t = DTYPE_COUNT;
    if (kind == 'f') t = size == 2 ? DTYPE_F16 : size == 4 ? DTYPE_F32 : size == 8 ? DTYPE_F64 : DTYPE_COUNT;
    if (kind == 'i') t = size == 1 ? DTYPE_I8 : size == 2 ? DTYPE_I16 : size == 4 ? DTYPE_I32 : size == 8 ? DTYPE_I64 : DTYPE_COUNT;
    if (kind == 'u' && size == 1) t = DTYPE_U8;
    if (kind == 'b' && size == 1) t = DTYPE_BOOL;
    if (t == DTYPE_COUNT) {
        char b[40];
        return err_set(e, "numpy dtype '%s' is not supported", clean(dt->s, dt->len, b, sizeof(b)));
    }
    *out = t;
    return 0;
}

static void bswap_n(uint8_t *p, size_t count, size_t size) {
    if (size < 2) return;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

// ----------------------------------------------------------------------------
// strided copies (torch views, Fortran-ordered numpy arrays)

static void copy_strided(uint8_t *dst, const uint8_t *src, size_t esz, int ndim, const int64_t *shape,
                         const int64_t *stride_in, int64_t offset, size_t numel) {
    // a size-1 dimension may carry any stride; zero it so that stepping never overflows
    int64_t stride[TENSOR_MAX_DIM];
    for (int d = 0; d < ndim; d++) stride[d] = shape[d] == 1 ? 0 : stride_in[d];
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (shape[d] != 1 && stride[d] != expect) contiguous = 0;
        expect *= shape[d];
    }
    if (contiguous) {
        memcpy(dst, src + (size_t)offset * esz, numel * esz);
        return;
    }
    int64_t idx[TENSOR_MAX_DIM] = {0};
    int64_t pos = offset;
    for (size_t k = 0; k < numel; k++) {
        memcpy(dst + k * esz, src + (size_t)pos * esz, esz);
        for (int d = ndim - 1; d >= 0; d--) {
            idx[d]++;
            pos += stride[d];
            if (idx[d] < shape[d]) break;
            pos -= stride[d] * shape[d];
            idx[d] = 0;
        }
    }
}

// the highest element index a view touches; -1 if that overflows
static int64_t view_extent(int ndim, const int64_t *shape, const int64_t *stride, int64_t offset) {
    int64_t hi = offset;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) return offset;
        int64_t span;
        if (__builtin_mul_overflow(shape[d] - 1, stride[d], &span) || __builtin_add_overflow(hi, span, &hi)) return -1;
    }
    return hi;
}

static Tensor *tensor_new_charged(PickleDoc *d, DType dt, int ndim, const int64_t *shape, Err *e) {
    size_t numel = 1, bytes;
    for (int k = 0; k < ndim; k++)
        if (!size_mul(numel, (size_t)shape[k], &numel)) {
            err_set(e, "tensor size overflows");
            return NULL;
        }
    if (!size_mul(numel, dtype_size(dt), &bytes) || charge(d, bytes + sizeof(Tensor), e)) {
        err_set(e, "tensor of %zu elements exceeds the pickle's memory budget", numel);
        return NULL;
    }
    Tensor *t = calloc(1, sizeof(Tensor));
    if (!t) {
        err_set(e, "out of memory");
        return NULL;
    }
    if (tensor_init(t, dt, ndim, shape, e)) {
        free(t);
        return NULL;
    }
    return t;
}

// ----------------------------------------------------------------------------
// the unpickler

typedef struct {
    PickleDoc *doc;
    const uint8_t *p;
    size_t n, pos;
    PickleValue **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    PickleValue **memo;
    size_t memo_cap, memo_count;
    const PickleHooks *hooks;
    Err *e;
} Unpickler;

static int need(Unpickler *u, size_t k) {
    if (k > u->n - u->pos)
        return err_set(u->e, "pickle truncated at byte %zu (needs %zu more bytes, %zu left)", u->pos, k, u->n - u->pos);
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int rd_uint(Unpickler *u, int k, uint64_t *out) {
    if (need(u, (size_t)k)) return -1;
    *out = rd_le(u->p + u->pos, k);
    u->pos += (size_t)k;
    return 0;
}

static int rd_line(Unpickler *u, const char **s, size_t *len) {
    const uint8_t *start = u->p + u->pos;
    const uint8_t *nl = memchr(start, '\n', u->n - u->pos);
    if (!nl) return err_set(u->e, "pickle truncated inside a text line at byte %zu", u->pos);
    *s = (const char *)start;
    *len = (size_t)(nl - start);
    u->pos += *len + 1;
    return 0;
}

static int push(Unpickler *u, PickleValue *v) {
    if (!v) return -1;
    if (u->sp == u->scap) {
        size_t cap = u->scap ? u->scap * 2 : 64;
        if (charge(u->doc, (cap - u->scap) * sizeof(PickleValue *), u->e)) return -1;
        PickleValue **s = realloc(u->stack, cap * sizeof(*s));
        if (!s) return err_set(u->e, "out of memory");
        u->stack = s;
        u->scap = cap;
    }
    u->stack[u->sp++] = v;
    return 0;
}

// &stack[i]; NULL while the stack was never allocated (nothing is read through it then)
static PickleValue **stack_at(Unpickler *u, size_t i) { return u->stack ? u->stack + i : NULL; }

static size_t stack_floor(const Unpickler *u) { return u->nmarks ? u->marks[u->nmarks - 1] : 0; }

static PickleValue *pop(Unpickler *u) {
    if (u->sp <= stack_floor(u)) {
        err_set(u->e, "pickle stack underflow at byte %zu", u->pos);
        return NULL;
    }
    return u->stack[--u->sp];
}

static PickleValue *top(Unpickler *u) {
    if (u->sp <= stack_floor(u)) {
        err_set(u->e, "pickle stack underflow at byte %zu", u->pos);
        return NULL;
    }
    return u->stack[u->sp - 1];
}

// pops the topmost mark; the items above it are stack[*start .. sp)
static int pop_mark(Unpickler *u, size_t *start) {
    if (!u->nmarks) return err_set(u->e, "pickle uses a MARK that was never set (byte %zu)", u->pos);
    *start = u->marks[--u->nmarks];
    return 0;
}

static int memo_put(Unpickler *u, uint64_t idx, PickleValue *v) {
    if (!v) return -1;
    // a pickle of n bytes cannot hold more than n memo entries
    if (idx > u->n) return err_set(u->e, "memo index %llu out of range", (unsigned long long)idx);
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        if (charge(u->doc, (cap - u->memo_cap) * sizeof(PickleValue *), u->e)) return -1;
        PickleValue **m = realloc(u->memo, cap * sizeof(*m));
        if (!m) return err_set(u->e, "out of memory");
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof(*m));
        u->memo = m;
        u->memo_cap = cap;
    }
    if (!u->memo[idx]) u->memo_count++;
    u->memo[idx] = v;
    return 0;
}

static int memo_get(Unpickler *u, uint64_t idx) {
    if (idx >= u->memo_cap || !u->memo[idx])
        return err_set(u->e, "pickle refers to memo entry %llu, which was never stored", (unsigned long long)idx);
    return push(u, u->memo[idx]);
}

static int parse_line_uint(Unpickler *u, uint64_t *out) {
    const char *s = NULL;
    size_t len = 0;
    if (rd_line(u, &s, &len)) return -1;
    uint64_t v = 0;
    if (len == 0 || len > 19) return err_set(u->e, "bad memo index in text pickle");
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return err_set(u->e, "bad memo index in text pickle");
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

// LONG1/LONG4 payload: little-endian two's complement
static PickleValue *new_long(Unpickler *u, const uint8_t *b, size_t k) {
    if (k == 0) return new_int(u->doc, 0, u->e);
    int neg = b[k - 1] & 0x80;
    int fits = 1;
    for (size_t i = 8; i < k; i++)
        if (b[i] != (neg ? 0xff : 0)) fits = 0;
    if (k > 8 && fits && ((b[7] & 0x80) != 0) != (neg != 0)) fits = 0;
    if (!fits) return new_bytes(u->doc, PICKLE_BIGINT, b, k, u->e);
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        uint64_t byte = i < k ? b[i] : (neg ? 0xff : 0);
        v |= byte << (8 * i);
    }
    int64_t s;
    memcpy(&s, &v, 8);
    return new_int(u->doc, s, u->e);
}

// decimal text (INT, LONG; a trailing 'L' from Python 2 allowed) of any size: the digits
// are accumulated into little-endian bytes and then handled like LONG1
#define TEXT_INT_MAX_DIGITS 4000
static PickleValue *new_text_int(Unpickler *u, const char *s, size_t len) {
    char b[40];
    if (len && s[len - 1] == 'L') len--;
    int neg = len && (s[0] == '-' || s[0] == '+') ? s[0] == '-' : 0;
    size_t i0 = len && (s[0] == '-' || s[0] == '+');
    if (len == i0 || len - i0 > TEXT_INT_MAX_DIGITS) {
        err_set(u->e, "bad or too large integer literal '%s' in pickle", clean(s, len, b, sizeof(b)));
        return NULL;
    }
    size_t cap = (len - i0) / 2 + 2, k = 0;
    uint8_t *mag = calloc(cap + 1, 1);
    if (!mag) {
        err_set(u->e, "out of memory");
        return NULL;
    }
    for (size_t i = i0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            free(mag);
            err_set(u->e, "bad integer literal '%s' in pickle", clean(s, len, b, sizeof(b)));
            return NULL;
        }
        unsigned carry = (unsigned)(s[i] - '0');
        for (size_t j = 0; j < cap; j++) {
            unsigned x = mag[j] * 10u + carry;
            mag[j] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    k = cap + 1; // the extra zero byte keeps the sign bit clear before negation
    if (neg) {
        unsigned carry = 1;
        for (size_t j = 0; j < k; j++) {
            unsigned x = (uint8_t)~mag[j] + carry;
            mag[j] = (uint8_t)x;
            carry = x >> 8;
        }
    }
    // drop redundant sign-extension bytes so that big ints stay canonical
    while (k > 1 && mag[k - 1] == (neg ? 0xff : 0) && ((mag[k - 2] & 0x80) != 0) == (neg != 0)) k--;
    PickleValue *v = new_long(u, mag, k);
    free(mag);
    return v;
}

// protocol 0 STRING: a Python repr with quotes and backslash escapes, as bytes
static PickleValue *new_repr_string(Unpickler *u, const char *s, size_t len) {
    if (len < 2 || (s[0] != '\'' && s[0] != '"') || s[len - 1] != s[0]) {
        err_set(u->e, "STRING opcode argument is not a quoted string");
        return NULL;
    }
    s++, len -= 2;
    char *out = malloc(len + 1);
    if (!out) {
        err_set(u->e, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 == len) {
            out[k++] = s[i];
            continue;
        }
        char c = s[++i];
        switch (c) {
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'a': out[k++] = '\a'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'v': out[k++] = '\v'; break;
        case '\n': break;
        case 'x': {
            int v = 0, digits = 0;
            while (digits < 2 && i + 1 < len) {
                char h = s[i + 1];
                int dv = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (dv < 0) break;
                v = v * 16 + dv, digits++, i++;
            }
            if (digits != 2) {
                free(out);
                err_set(u->e, "bad \\x escape in STRING opcode");
                return NULL;
            }
            out[k++] = (char)v;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0', digits = 1;
                while (digits < 3 && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '7') v = v * 8 + (s[++i] - '0'), digits++;
                out[k++] = (char)(v & 0xff);
            } else {
                out[k++] = '\\';
                out[k++] = c;
            }
        }
    }
    PickleValue *v = new_bytes(u->doc, PICKLE_BYTES, out, k, u->e);
    free(out);
    return v;
}

static size_t utf8_put(char *o, uint32_t c) {
    if (c < 0x80) return o[0] = (char)c, 1;
    if (c < 0x800) return o[0] = (char)(0xc0 | (c >> 6)), o[1] = (char)(0x80 | (c & 0x3f)), 2;
    if (c < 0x10000)
        return o[0] = (char)(0xe0 | (c >> 12)), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)), o[2] = (char)(0x80 | (c & 0x3f)), 3;
    return o[0] = (char)(0xf0 | (c >> 18)), o[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
           o[2] = (char)(0x80 | ((c >> 6) & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f)), 4;
}

// protocol 0 UNICODE: raw-unicode-escape (latin-1 bytes plus \uXXXX and \UXXXXXXXX)
static PickleValue *new_raw_unicode(Unpickler *u, const char *s, size_t len) {
    if (len > (SIZE_MAX - 1) / 4) {
        err_set(u->e, "string too large");
        return NULL;
    }
    char *out = malloc(4 * len + 1);
    if (!out) {
        err_set(u->e, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = (uint8_t)s[i];
        if (c == '\\' && i + 1 < len && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
            int digits = s[i + 1] == 'u' ? 4 : 8;
            if (i + 1 + (size_t)digits < len) {
                uint32_t v = 0;
                int ok = 1;
                for (int j = 0; j < digits; j++) {
                    char h = s[i + 2 + j];
                    int dv = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (dv < 0) ok = 0;
                    v = v * 16 + (uint32_t)(dv < 0 ? 0 : dv);
                }
                if (ok && v <= 0x10ffff) {
                    k += utf8_put(out + k, v);
                    i += 1 + (size_t)digits;
                    continue;
                }
            }
        }
        k += utf8_put(out + k, c);
    }
    PickleValue *v = new_bytes(u->doc, PICKLE_STR, out, k, u->e);
    free(out);
    return v;
}

static int is_int(const PickleValue *v) { return v && (v->type == PICKLE_INT || v->type == PICKLE_BOOL); }
static int is_seq(const PickleValue *v) { return v && (v->type == PICKLE_TUPLE || v->type == PICKLE_LIST); }
static int is_text(const PickleValue *v) { return v && (v->type == PICKLE_STR || v->type == PICKLE_BYTES); }

// a tuple/list of non-negative ints (a shape or strides)
static int int_tuple(Unpickler *u, const PickleValue *v, const char *what, int64_t *out, int *ndim) {
    if (!is_seq(v)) return err_set(u->e, "%s is a %s, expected a tuple", what, pickle_type_name(v ? v->type : PICKLE_NONE));
    if (v->n > TENSOR_MAX_DIM) return err_set(u->e, "%s has %zu dimensions (at most %d)", what, v->n, TENSOR_MAX_DIM);
    for (size_t k = 0; k < v->n; k++) {
        if (!is_int(v->items[k]) || v->items[k]->i < 0)
            return err_set(u->e, "%s holds something other than a non-negative integer", what);
        out[k] = v->items[k]->i;
    }
    *ndim = (int)v->n;
    return 0;
}

static PickleValue *rebuild_tensor(Unpickler *u, PickleValue *const *a, size_t na) {
    if (na < 4) {
        err_set(u->e, "_rebuild_tensor takes at least 4 arguments, got %zu", na);
        return NULL;
    }
    if (a[0]->type != PICKLE_STORAGE) {
        err_set(u->e, "_rebuild_tensor's first argument is a %s, not a storage", pickle_type_name(a[0]->type));
        return NULL;
    }
    if (!is_int(a[1]) || a[1]->i < 0) {
        err_set(u->e, "tensor storage offset is not a non-negative integer");
        return NULL;
    }
    PendingView pv = {.storage = a[0], .offset = a[1]->i};
    int nd_stride;
    if (int_tuple(u, a[2], "tensor size", pv.shape, &pv.ndim) || int_tuple(u, a[3], "tensor stride", pv.stride, &nd_stride))
        return NULL;
    if (nd_stride != pv.ndim) {
        err_set(u->e, "tensor has %d sizes but %d strides", pv.ndim, nd_stride);
        return NULL;
    }
    PickleValue *v = node_new(u->doc, PICKLE_TENSOR, u->e);
    if (!v || charge(u->doc, sizeof(PendingView), u->e)) return NULL;
    PendingView *p = malloc(sizeof(PendingView));
    if (!p) {
        err_set(u->e, "out of memory");
        return NULL;
    }
    *p = pv;
    v->aux = p;
    return v;
}

// numpy.core.multiarray.scalar(dtype, bytes)
static PickleValue *np_scalar(Unpickler *u, PickleValue *const *a, size_t na) {
    if (na != 2 || a[0]->type != PICKLE_NPDTYPE || a[1]->type != PICKLE_BYTES) {
        err_set(u->e, "numpy scalar() expects (dtype, bytes)");
        return NULL;
    }
    const PickleValue *dt = a[0];
    char kind = dt->len ? dt->s[0] : '?';
    size_t size = (size_t)dt->i;
    if (a[1]->len != size || size == 0 || size > 8) {
        err_set(u->e, "numpy scalar of dtype size %zu has %zu bytes", size, a[1]->len);
        return NULL;
    }
    uint8_t b[8];
    memcpy(b, a[1]->s, size);
    if (dt->gid == '>') bswap_n(b, 1, size);
    uint64_t raw = rd_le(b, (int)size);
    DType t;
    int np = DTYPE_COUNT + 1; // numpy, but no beard DType (uint16 ...)
    if (np_dtype_map(dt, &t, NULL) == 0) np = (int)t + 1;
    PickleValue *v = NULL;
    if (kind == 'f') {
        double f;
        if (size == 8) {
            memcpy(&f, &raw, 8);
        } else if (size == 4) {
            uint32_t r32 = (uint32_t)raw;
            float g;
            memcpy(&g, &r32, 4);
            f = g;
        } else if (size == 2) {
            f = half_to_float((uint16_t)raw);
        } else {
            err_set(u->e, "numpy float scalar of %zu bytes is not supported", size);
            return NULL;
        }
        v = new_float(u->doc, f, u->e);
    } else if (kind == 'i' || kind == 'u') {
        int64_t s;
        if (kind == 'i' && size < 8 && (raw >> (8 * size - 1)) & 1) raw |= ~(uint64_t)0 << (8 * size);
        if (kind == 'u' && size == 8 && raw > (uint64_t)INT64_MAX) {
            err_set(u->e, "numpy uint64 scalar %llu does not fit in int64", (unsigned long long)raw);
            return NULL;
        }
        memcpy(&s, &raw, 8);
        v = new_int(u->doc, s, u->e);
    } else if (kind == 'b' && size == 1) {
        v = new_bool(u->doc, raw != 0, u->e);
    } else {
        char buf[40];
        err_set(u->e, "numpy scalar of dtype '%s' is not supported", clean(dt->s, dt->len, buf, sizeof(buf)));
        return NULL;
    }
    if (v) v->np = np;
    return v;
}

// numpy.dtype('f8', align, copy)
static PickleValue *np_dtype(Unpickler *u, PickleValue *const *a, size_t na) {
    if (na < 1 || !is_text(a[0]) || a[0]->len == 0 || a[0]->len > 32) {
        err_set(u->e, "numpy dtype() expects a type string such as 'f8'");
        return NULL;
    }
    const char *s = a[0]->s;
    size_t len = a[0]->len;
    char order = '=';
    if (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=') order = s[0], s++, len--;
    if (len == 0) {
        err_set(u->e, "empty numpy dtype string");
        return NULL;
    }
    int64_t size = 0;
    for (size_t k = 1; k < len; k++) {
        if (s[k] < '0' || s[k] > '9' || size > 1000000) {
            char b[40];
            err_set(u->e, "numpy dtype '%s' is not supported", clean(a[0]->s, a[0]->len, b, sizeof(b)));
            return NULL;
        }
        size = size * 10 + (s[k] - '0');
    }
    if (len == 1) size = (s[0] == 'b' || s[0] == '?') ? 1 : 0;
    PickleValue *v = new_bytes(u->doc, PICKLE_NPDTYPE, s, len, u->e);
    if (!v) return NULL;
    if (v->s[0] == '?') v->s[0] = 'b';
    v->i = size;
    v->gid = order;
    return v;
}

// fills an ndarray from (shape, dtype, is_fortran, data) bytes
static int np_fill(Unpickler *u, PickleValue *arr, const PickleValue *shape_v, const PickleValue *dt,
                   int fortran, const PickleValue *data) {
    if (dt->type != PICKLE_NPDTYPE) return err_set(u->e, "numpy array state has no dtype");
    DType t;
    if (np_dtype_map(dt, &t, u->e)) return -1;
    int64_t shape[TENSOR_MAX_DIM];
    int ndim;
    if (int_tuple(u, shape_v, "numpy array shape", shape, &ndim)) return -1;
    if (data->type != PICKLE_BYTES)
        return err_set(u->e, "numpy array data is a %s (object arrays are not supported)", pickle_type_name(data->type));
    size_t numel = 1, bytes;
    for (int k = 0; k < ndim; k++)
        if (!size_mul(numel, (size_t)shape[k], &numel)) return err_set(u->e, "numpy array size overflows");
    if (!size_mul(numel, dtype_size(t), &bytes) || bytes != data->len)
        return err_set(u->e, "numpy array of %zu elements has %zu bytes of data", numel, data->len);
    Tensor *ten = tensor_new_charged(u->doc, t, ndim, shape, u->e);
    if (!ten) return -1;
    if (numel) {
        int64_t stride[TENSOR_MAX_DIM], acc = 1;
        for (int k = 0; k < ndim; k++) { // column-major strides
            stride[k] = acc;
            acc *= shape[k];
        }
        if (fortran && ndim > 1)
            copy_strided(ten->data, (const uint8_t *)data->s, dtype_size(t), ndim, shape, stride, 0, numel);
        else
            memcpy(ten->data, data->s, bytes);
        if (dt->gid == '>') bswap_n(ten->data, numel, dtype_size(t));
    }
    arr->tensor = ten;
    arr->gid = 0;
    arr->np = (int)t + 1;
    return 0;
}

static PickleValue *apply_global(Unpickler *u, PickleValue *fn, PickleValue *args, int level);

static PickleValue *make_set(Unpickler *u, PickleValue *const *a, size_t na) {
    if (na == 0) return new_container(u->doc, PICKLE_SET, NULL, 0, u->e);
    if (na == 1 && a[0]->type >= PICKLE_LIST && a[0]->type <= PICKLE_SET)
        return new_container(u->doc, PICKLE_SET, a[0]->items, a[0]->n, u->e);
    err_set(u->e, "set() expects an iterable");
    return NULL;
}

static PickleValue *apply_global(Unpickler *u, PickleValue *fn, PickleValue *args, int level) {
    Err *e = u->e;
    if (fn->type != PICKLE_GLOBAL) {
        err_set(e, "pickle calls a %s, which is not an allowed callable", pickle_type_name(fn->type));
        return NULL;
    }
    if (args->type != PICKLE_TUPLE) {
        err_set(e, "arguments to %s are a %s, not a tuple", fn->s, pickle_type_name(args->type));
        return NULL;
    }
    PickleValue *const *a = args->items;
    size_t na = args->n;
    switch (fn->gid) {
    case G_ORDERED_DICT: {
        PickleValue *d = new_container(u->doc, PICKLE_DICT, NULL, 0, e);
        if (!d || na == 0) return d;
        if (na != 1 || !is_seq(a[0])) break;
        for (size_t k = 0; k < a[0]->n; k++) {
            PickleValue *pair = a[0]->items[k];
            if (!is_seq(pair) || pair->n != 2) {
                err_set(e, "OrderedDict() expects (key, value) pairs");
                return NULL;
            }
            if (items_push(u->doc, d, pair->items, 2, e)) return NULL;
        }
        return d;
    }
    case G_SET:
    case G_FROZENSET: return make_set(u, a, na);
    case G_BYTES:
        if (na == 0) return new_bytes(u->doc, PICKLE_BYTES, "", 0, e);
        break;
    case G_CODECS_ENCODE: { // _codecs.encode(str, 'latin1'): how Python 3 writes bytes in protocol 2
        if (na != 2 || a[0]->type != PICKLE_STR || !is_text(a[1])) break;
        const char *enc = a[1]->s;
        int latin1 = !strcmp(enc, "latin1") || !strcmp(enc, "latin-1") || !strcmp(enc, "iso-8859-1");
        int utf8 = !strcmp(enc, "utf-8") || !strcmp(enc, "utf8") || !strcmp(enc, "ascii");
        if (utf8) return new_bytes(u->doc, PICKLE_BYTES, a[0]->s, a[0]->len, e);
        if (!latin1) {
            char b[40];
            err_set(e, "_codecs.encode with encoding '%s' is not supported", clean(enc, a[1]->len, b, sizeof(b)));
            return NULL;
        }
        const uint8_t *s = (const uint8_t *)a[0]->s;
        size_t len = a[0]->len, k = 0;
        uint8_t *out = malloc(len + 1);
        if (!out) {
            err_set(e, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < len; k++) { // utf-8 code points below 256 -> one byte each
            if (s[i] < 0x80) {
                out[k] = s[i++];
            } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < len && (s[i + 1] & 0xc0) == 0x80 && s[i] <= 0xc3) {
                out[k] = (uint8_t)(((s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f));
                i += 2;
            } else {
                free(out);
                err_set(e, "_codecs.encode: string is not latin-1");
                return NULL;
            }
        }
        PickleValue *v = new_bytes(u->doc, PICKLE_BYTES, out, k, e);
        free(out);
        return v;
    }
    case G_REBUILD_TENSOR_V2:
        if (na != 6 && na != 7) {
            err_set(e, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", na);
            return NULL;
        }
        return rebuild_tensor(u, a, na);
    case G_REBUILD_TENSOR:
        if (na != 4) break;
        return rebuild_tensor(u, a, na);
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (na < 1 || a[0]->type != PICKLE_TENSOR) break;
        return a[0];
    case G_REBUILD_FROM_TYPE_V2: { // (func, type, args, state): a Tensor subclass with Python state
        if (na != 4 || a[0]->type != PICKLE_GLOBAL || a[1]->type != PICKLE_GLOBAL ||
            (a[1]->gid != G_TORCH_TENSOR && a[1]->gid != G_TORCH_PARAMETER) || level > 0)
            break;
        PickleValue *r = apply_global(u, a[0], a[2], level + 1);
        if (r && r->type != PICKLE_TENSOR) {
            err_set(e, "_rebuild_from_type_v2 did not rebuild a tensor");
            return NULL;
        }
        return r;
    }
    case G_TORCH_SIZE: {
        if (na != 1 || !is_seq(a[0])) break;
        int ints = 1;
        for (size_t k = 0; k < a[0]->n; k++) ints = ints && is_int(a[0]->items[k]);
        if (!ints) break;
        return new_container(u->doc, PICKLE_TUPLE, a[0]->items, a[0]->n, e);
    }
    case G_LOAD_FROM_BYTES: {
        if (na != 1 || a[0]->type != PICKLE_BYTES) break;
        if (!u->hooks || !u->hooks->load_from_bytes) {
            err_set(e, "pickle holds a torch tensor blob but was not read by the torch loader");
            return NULL;
        }
        PickleValue *out = NULL;
        if (pickle_doc_nest(u->doc, 1, e)) return NULL;
        int rc = u->hooks->load_from_bytes(u->hooks->ctx, u->doc, (const uint8_t *)a[0]->s, a[0]->len, &out, e);
        pickle_doc_nest(u->doc, -1, e);
        if (rc) return NULL;
        return out;
    }
    case G_NP_SCALAR: return np_scalar(u, a, na);
    case G_NP_DTYPE: return np_dtype(u, a, na);
    case G_NP_RECONSTRUCT: { // (ndarray, shape, typecode): an empty array that BUILD fills
        if (na != 3 || a[0]->type != PICKLE_GLOBAL || a[0]->gid != G_NP_NDARRAY) break;
        PickleValue *v = node_new(u->doc, PICKLE_TENSOR, e);
        if (v) v->gid = G_NP_NDARRAY, v->np = DTYPE_COUNT + 1;
        return v;
    }
    case G_NP_FROMBUFFER: { // (buffer, dtype, shape, order): protocol 5 arrays
        if (na != 4 || a[0]->type != PICKLE_BYTES || a[1]->type != PICKLE_NPDTYPE || !is_text(a[3])) break;
        PickleValue *v = node_new(u->doc, PICKLE_TENSOR, e);
        if (!v || np_fill(u, v, a[2], a[1], a[3]->s[0] == 'F', a[0])) return NULL;
        return v;
    }
    default: {
        err_set(e, "'%s' cannot be called in a pickle", fn->s);
        return NULL;
    }
    }
    err_set(e, "unexpected arguments to %s", fn->s);
    return NULL;
}

static int do_build(Unpickler *u) {
    PickleValue *state = pop(u);
    PickleValue *obj = state ? top(u) : NULL;
    if (!obj) return -1;
    switch (obj->type) {
    case PICKLE_NPDTYPE: // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if (!is_seq(state) || state->n < 2 || !is_text(state->items[1]) || state->items[1]->len != 1)
            return err_set(u->e, "bad numpy dtype state");
        obj->gid = state->items[1]->s[0];
        if (obj->gid != '<' && obj->gid != '>' && obj->gid != '|' && obj->gid != '=')
            return err_set(u->e, "bad numpy byte order '%c'", obj->gid >= 32 && obj->gid < 127 ? obj->gid : '?');
        return 0;
    case PICKLE_TENSOR:
        if (obj->gid == G_NP_NDARRAY) { // (version, shape, dtype, is_fortran, data) or without version
            if (!is_seq(state) || (state->n != 5 && state->n != 4)) return err_set(u->e, "bad numpy array state");
            PickleValue *const *s = state->items + (state->n == 5);
            if (!is_int(s[2])) return err_set(u->e, "bad numpy array state");
            return np_fill(u, obj, s[0], s[1], s[2]->i != 0, s[3]);
        }
        return 0; // torch tensors with Python attributes: the attributes are dropped
    case PICKLE_DICT: return 0; // an OrderedDict's __dict__ (state_dict._metadata): dropped
    default: return err_set(u->e, "BUILD on a %s is not supported", pickle_type_name(obj->type));
    }
}

// Python's pickle opcodes, named as in Lib/pickle.py
enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_FLOAT = 'F', OP_INT = 'I',
    OP_BININT = 'J', OP_BININT1 = 'K', OP_LONG = 'L', OP_BININT2 = 'M', OP_NONE = 'N', OP_PERSID = 'P',
    OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_STRING = 'S', OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U',
    OP_UNICODE = 'V', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd',
    OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_GET = 'g', OP_BINGET = 'h', OP_INST = 'i', OP_LONG_BINGET = 'j',
    OP_LIST = 'l', OP_EMPTY_LIST = ']', OP_OBJ = 'o', OP_PUT = 'p', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r',
    OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_BINFLOAT = 'G',
    OP_PROTO = 0x80, OP_NEWOBJ = 0x81, OP_EXT1 = 0x82, OP_EXT2 = 0x83, OP_EXT4 = 0x84, OP_TUPLE1 = 0x85,
    OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a, OP_LONG4 = 0x8b,
    OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C', OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d,
    OP_BINBYTES8 = 0x8e, OP_EMPTY_SET = 0x8f, OP_ADDITEMS = 0x90, OP_FROZENSET = 0x91, OP_NEWOBJ_EX = 0x92,
    OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94, OP_FRAME = 0x95, OP_BYTEARRAY8 = 0x96, OP_NEXT_BUFFER = 0x97,
    OP_READONLY_BUFFER = 0x98,
};

// pushes a string/bytes opcode's payload of k bytes
static int push_payload(Unpickler *u, PickleType t, uint64_t k) {
    if (k > u->n - u->pos) return need(u, k > SIZE_MAX ? SIZE_MAX : (size_t)k);
    const uint8_t *s = u->p + u->pos;
    u->pos += (size_t)k;
    return push(u, new_bytes(u->doc, t, s, (size_t)k, u->e));
}

// items above the topmost mark into a new container of type t
static int push_marked(Unpickler *u, PickleType t) {
    size_t start = 0;
    if (pop_mark(u, &start)) return -1;
    size_t k = u->sp - start;
    if (t == PICKLE_DICT && (k & 1)) return err_set(u->e, "DICT opcode with an odd number of items");
    PickleValue *v = new_container(u->doc, t, stack_at(u, start), k, u->e);
    u->sp = start;
    return push(u, v);
}

static int push_tuple_n(Unpickler *u, size_t k) {
    if (u->sp - stack_floor(u) < k) return err_set(u->e, "pickle stack underflow at byte %zu", u->pos);
    PickleValue *v = new_container(u->doc, PICKLE_TUPLE, stack_at(u, u->sp - k), k, u->e);
    u->sp -= k;
    return push(u, v);
}

// APPENDS, SETITEMS, ADDITEMS: the marked items go into the container below the mark
static int extend_marked(Unpickler *u, PickleType want) {
    size_t start = 0;
    if (pop_mark(u, &start)) return -1;
    size_t k = u->sp - start;
    if (start <= stack_floor(u)) return err_set(u->e, "pickle stack underflow at byte %zu", u->pos);
    PickleValue *c = u->stack[start - 1];
    if (c->type != want)
        return err_set(u->e, "cannot add items to a %s (expected a %s)", pickle_type_name(c->type), pickle_type_name(want));
    if (want == PICKLE_DICT && (k & 1)) return err_set(u->e, "SETITEMS with an odd number of items");
    int rc = items_push(u->doc, c, stack_at(u, start), k, u->e);
    u->sp = start;
    return rc;
}

static int run(Unpickler *u, PickleValue **out) {
    Err *e = u->e;
    PickleDoc *d = u->doc;
    if (u->n == 0) return err_set(e, "empty file (no pickle data)");
    for (;;) {
        if (u->pos >= u->n) return err_set(e, "pickle ends without a STOP opcode (truncated file?)");
        if (pickle_doc_work(d, 1, e)) return -1;
        uint8_t op = u->p[u->pos++];
        uint64_t x = 0;
        const char *s = NULL;
        size_t len = 0;
        PickleValue *a, *b, *c;
        switch (op) {
        case OP_PROTO:
            if (rd_uint(u, 1, &x)) return -1;
            if (x > 5) return err_set(e, "unsupported pickle protocol %d", (int)x);
            break;
        case OP_FRAME:
            if (rd_uint(u, 8, &x)) return -1;
            if (x > u->n - u->pos) return err_set(e, "pickle frame of %llu bytes exceeds the data", (unsigned long long)x);
            break;
        case OP_STOP:
            if (!(a = pop(u))) return -1;
            *out = a;
            return 0;
        case OP_MARK:
            if (u->nmarks == u->mcap) {
                size_t cap = u->mcap ? u->mcap * 2 : 32;
                if (charge(d, (cap - u->mcap) * sizeof(size_t), e)) return -1;
                size_t *m = realloc(u->marks, cap * sizeof(*m));
                if (!m) return err_set(e, "out of memory");
                u->marks = m;
                u->mcap = cap;
            }
            u->marks[u->nmarks++] = u->sp;
            break;
        case OP_POP:
            if (u->sp > stack_floor(u)) {
                u->sp--;
            } else {
                size_t start = 0;
                if (pop_mark(u, &start)) return -1;
                u->sp = start;
            }
            break;
        case OP_POP_MARK: {
            size_t start = 0;
            if (pop_mark(u, &start)) return -1;
            u->sp = start;
            break;
        }
        case OP_DUP:
            if (!(a = top(u)) || push(u, a)) return -1;
            break;
        case OP_NONE:
            if (push(u, node_new(d, PICKLE_NONE, e))) return -1;
            break;
        case OP_NEWTRUE:
        case OP_NEWFALSE:
            if (push(u, new_bool(d, op == OP_NEWTRUE, e))) return -1;
            break;
        case OP_BININT1:
        case OP_BININT2:
            if (rd_uint(u, op == OP_BININT1 ? 1 : 2, &x) || push(u, new_int(d, (int64_t)x, e))) return -1;
            break;
        case OP_BININT:
            if (rd_uint(u, 4, &x) || push(u, new_int(d, (int32_t)(uint32_t)x, e))) return -1;
            break;
        case OP_LONG1:
        case OP_LONG4:
            if (rd_uint(u, op == OP_LONG1 ? 1 : 4, &x)) return -1;
            if (op == OP_LONG4 && (x & 0x80000000u)) return err_set(e, "LONG4 with a negative length");
            if (need(u, (size_t)x)) return -1;
            u->pos += (size_t)x;
            if (push(u, new_long(u, u->p + u->pos - x, (size_t)x))) return -1;
            break;
        case OP_INT:
        case OP_LONG: {
            if (rd_line(u, &s, &len)) return -1;
            if (op == OP_INT && len == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
                if (push(u, new_bool(d, s[1] == '1', e))) return -1;
                break;
            }
            if (push(u, new_text_int(u, s, len))) return -1;
            break;
        }
        case OP_FLOAT: {
            if (rd_line(u, &s, &len)) return -1;
            char buf[64];
            if (len == 0 || len >= sizeof(buf)) return err_set(e, "bad FLOAT literal in pickle");
            memcpy(buf, s, len);
            buf[len] = 0;
            char *end;
            double f = strtod(buf, &end);
            if (*end) return err_set(e, "bad FLOAT literal '%s' in pickle", clean(s, len, buf, sizeof(buf)));
            if (push(u, new_float(d, f, e))) return -1;
            break;
        }
        case OP_BINFLOAT: {
            if (need(u, 8)) return -1;
            uint64_t r = 0;
            for (int k = 0; k < 8; k++) r = (r << 8) | u->p[u->pos + (size_t)k]; // big-endian
            u->pos += 8;
            double f;
            memcpy(&f, &r, 8);
            if (push(u, new_float(d, f, e))) return -1;
            break;
        }
        case OP_SHORT_BINSTRING:
        case OP_SHORT_BINBYTES:
            if (rd_uint(u, 1, &x) || push_payload(u, PICKLE_BYTES, x)) return -1;
            break;
        case OP_BINSTRING:
            if (rd_uint(u, 4, &x)) return -1;
            if (x & 0x80000000u) return err_set(e, "BINSTRING with a negative length");
            if (push_payload(u, PICKLE_BYTES, x)) return -1;
            break;
        case OP_BINBYTES:
            if (rd_uint(u, 4, &x) || push_payload(u, PICKLE_BYTES, x)) return -1;
            break;
        case OP_BINBYTES8:
        case OP_BYTEARRAY8:
            if (rd_uint(u, 8, &x) || push_payload(u, PICKLE_BYTES, x)) return -1;
            break;
        case OP_SHORT_BINUNICODE:
            if (rd_uint(u, 1, &x) || push_payload(u, PICKLE_STR, x)) return -1;
            break;
        case OP_BINUNICODE:
            if (rd_uint(u, 4, &x) || push_payload(u, PICKLE_STR, x)) return -1;
            break;
        case OP_BINUNICODE8:
            if (rd_uint(u, 8, &x) || push_payload(u, PICKLE_STR, x)) return -1;
            break;
        case OP_STRING:
            if (rd_line(u, &s, &len) || push(u, new_repr_string(u, s, len))) return -1;
            break;
        case OP_UNICODE:
            if (rd_line(u, &s, &len) || push(u, new_raw_unicode(u, s, len))) return -1;
            break;
        case OP_EMPTY_TUPLE:
            if (push(u, new_container(d, PICKLE_TUPLE, NULL, 0, e))) return -1;
            break;
        case OP_EMPTY_LIST:
            if (push(u, new_container(d, PICKLE_LIST, NULL, 0, e))) return -1;
            break;
        case OP_EMPTY_DICT:
            if (push(u, new_container(d, PICKLE_DICT, NULL, 0, e))) return -1;
            break;
        case OP_EMPTY_SET:
            if (push(u, new_container(d, PICKLE_SET, NULL, 0, e))) return -1;
            break;
        case OP_TUPLE:
            if (push_marked(u, PICKLE_TUPLE)) return -1;
            break;
        case OP_LIST:
            if (push_marked(u, PICKLE_LIST)) return -1;
            break;
        case OP_DICT:
            if (push_marked(u, PICKLE_DICT)) return -1;
            break;
        case OP_FROZENSET:
            if (push_marked(u, PICKLE_SET)) return -1;
            break;
        case OP_TUPLE1:
        case OP_TUPLE2:
        case OP_TUPLE3:
            if (push_tuple_n(u, (size_t)(op - OP_TUPLE1 + 1))) return -1;
            break;
        case OP_APPEND:
            if (!(a = pop(u)) || !(c = top(u))) return -1;
            if (c->type != PICKLE_LIST) return err_set(e, "APPEND to a %s", pickle_type_name(c->type));
            if (items_push(d, c, &a, 1, e)) return -1;
            break;
        case OP_APPENDS:
            if (extend_marked(u, PICKLE_LIST)) return -1;
            break;
        case OP_ADDITEMS:
            if (extend_marked(u, PICKLE_SET)) return -1;
            break;
        case OP_SETITEM: {
            if (!(b = pop(u)) || !(a = pop(u)) || !(c = top(u))) return -1;
            if (c->type != PICKLE_DICT) return err_set(e, "SETITEM on a %s", pickle_type_name(c->type));
            PickleValue *kv[2] = {a, b};
            if (items_push(d, c, kv, 2, e)) return -1;
            break;
        }
        case OP_SETITEMS:
            if (extend_marked(u, PICKLE_DICT)) return -1;
            break;
        case OP_PUT:
            if (parse_line_uint(u, &x) || memo_put(u, x, top(u))) return -1;
            break;
        case OP_BINPUT:
        case OP_LONG_BINPUT:
            if (rd_uint(u, op == OP_BINPUT ? 1 : 4, &x) || memo_put(u, x, top(u))) return -1;
            break;
        case OP_MEMOIZE:
            if (memo_put(u, u->memo_count, top(u))) return -1;
            break;
        case OP_GET:
            if (parse_line_uint(u, &x) || memo_get(u, x)) return -1;
            break;
        case OP_BINGET:
        case OP_LONG_BINGET:
            if (rd_uint(u, op == OP_BINGET ? 1 : 4, &x) || memo_get(u, x)) return -1;
            break;
        case OP_GLOBAL:
        case OP_INST: {
            const char *m = NULL;
            size_t mlen = 0;
            if (rd_line(u, &m, &mlen) || rd_line(u, &s, &len)) return -1;
            if (!(a = find_global(d, m, mlen, s, len, e))) return -1;
            if (op == OP_GLOBAL) {
                if (push(u, a)) return -1;
                break;
            }
            size_t start = 0;
            if (pop_mark(u, &start)) return -1;
            b = new_container(d, PICKLE_TUPLE, stack_at(u, start), u->sp - start, e);
            u->sp = start;
            if (!b || push(u, apply_global(u, a, b, 0))) return -1;
            break;
        }
        case OP_STACK_GLOBAL:
            if (!(b = pop(u)) || !(a = pop(u))) return -1;
            if (a->type != PICKLE_STR || b->type != PICKLE_STR) return err_set(e, "STACK_GLOBAL needs two strings");
            if (push(u, find_global(d, a->s, a->len, b->s, b->len, e))) return -1;
            break;
        case OP_OBJ: {
            size_t start = 0;
            if (pop_mark(u, &start)) return -1;
            if (u->sp == start) return err_set(e, "OBJ without a class");
            a = u->stack[start];
            b = new_container(d, PICKLE_TUPLE, stack_at(u, start + 1), u->sp - start - 1, e);
            u->sp = start;
            if (!b || push(u, apply_global(u, a, b, 0))) return -1;
            break;
        }
        case OP_REDUCE:
            if (!(b = pop(u)) || !(a = pop(u))) return -1;
            if (push(u, apply_global(u, a, b, 0))) return -1;
            break;
        case OP_NEWOBJ:
        case OP_NEWOBJ_EX:
            if (op == OP_NEWOBJ_EX && !pop(u)) return -1; // kwargs
            if (!(b = pop(u)) || !(a = pop(u))) return -1;
            if (a->type != PICKLE_GLOBAL || (a->gid != G_ORDERED_DICT && a->gid != G_SET && a->gid != G_FROZENSET))
                return err_set(e, "pickle instantiates %s, which is not allowed", a->type == PICKLE_GLOBAL ? a->s : pickle_type_name(a->type));
            if (push(u, new_container(d, a->gid == G_ORDERED_DICT ? PICKLE_DICT : PICKLE_SET, NULL, 0, e))) return -1;
            break;
        case OP_BUILD:
            if (do_build(u)) return -1;
            break;
        case OP_PERSID:
        case OP_BINPERSID:
            if (op == OP_PERSID) {
                if (rd_line(u, &s, &len) || !(a = new_bytes(d, PICKLE_STR, s, len, e))) return -1;
            } else if (!(a = pop(u))) {
                return -1;
            }
            if (!u->hooks || !u->hooks->persistent_load)
                return err_set(e, "pickle has a persistent id (a torch storage?) but no loader for it");
            b = NULL;
            if (u->hooks->persistent_load(u->hooks->ctx, d, a, &b, e) || push(u, b)) return -1;
            break;
        case OP_READONLY_BUFFER:
            if (!top(u)) return -1;
            break;
        case OP_NEXT_BUFFER: return err_set(e, "pickle uses out-of-band buffers, which are not supported");
        case OP_EXT1:
        case OP_EXT2:
        case OP_EXT4: return err_set(e, "pickle uses the copyreg extension registry, which is not supported");
        default: return err_set(e, "unknown pickle opcode 0x%02x at byte %zu", op, u->pos - 1);
        }
    }
}

int pickle_loads_doc(PickleDoc *doc, const uint8_t *buf, size_t n, size_t *used, const PickleHooks *hooks,
                     PickleValue **out, Err *e) {
    Unpickler u = {.doc = doc, .p = buf, .n = n, .hooks = hooks, .e = e};
    *out = NULL;
    int rc = run(&u, out);
    free(u.stack);
    free(u.marks);
    free(u.memo);
    refund(doc, u.scap * sizeof(PickleValue *) + u.mcap * sizeof(size_t) + u.memo_cap * sizeof(PickleValue *));
    if (rc) *out = NULL;
    if (used) *used = u.pos;
    return rc;
}

// ----------------------------------------------------------------------------
// finishing: resolve tensor views, release storages nobody can reach

// row-major contiguous (a size-1 dimension may carry any stride)
static int view_contiguous(int ndim, const int64_t *shape, const int64_t *stride) {
    int64_t expect = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        if (shape[k] != 1 && stride[k] != expect) return 0;
        expect *= shape[k];
    }
    return 1;
}

// A tensor over a storage. A contiguous view shares the storage's bytes (no copy, no
// memory beyond the storage: a storage referenced by a thousand tensors costs its size
// once); a strided one is copied, against the budget.
static int resolve_view(PickleDoc *d, PickleValue *v, Err *e) {
    PendingView *pv = v->aux;
    PickleValue *owner = pv->storage;
    PickleStorage *st = owner->storage;
    uint8_t *data = st->data;
    if (st->base) {
        owner = st->base;
        PickleStorage *b = owner->storage;
        if (!b->loaded) return err_set(e, "storage '%s' was referenced but never loaded", b->key);
        data = b->data + st->base_offset * dtype_size(b->dtype);
    } else if (!st->loaded) {
        return err_set(e, "storage '%s' was referenced but never loaded", st->key);
    }
    size_t numel = 1;
    for (int k = 0; k < pv->ndim; k++)
        if (!size_mul(numel, (size_t)pv->shape[k], &numel)) return err_set(e, "tensor size overflows");
    if (numel) {
        int64_t hi = view_extent(pv->ndim, pv->shape, pv->stride, pv->offset);
        if (hi < 0 || (uint64_t)hi >= st->numel) {
            Tensor shown = {.ndim = pv->ndim};
            memcpy(shown.shape, pv->shape, sizeof(pv->shape));
            char b[96];
            return err_set(e, "tensor %s (offset %lld) reaches past its storage '%s' of %zu elements",
                           tensor_shape_str(&shown, b, sizeof(b)), (long long)pv->offset, st->key, st->numel);
        }
    }
    Tensor *t;
    if (view_contiguous(pv->ndim, pv->shape, pv->stride)) {
        if (charge(d, sizeof(Tensor), e)) return -1;
        t = calloc(1, sizeof(Tensor));
        if (!t) return err_set(e, "out of memory");
        t->dtype = st->dtype;
        t->ndim = pv->ndim;
        memcpy(t->shape, pv->shape, sizeof(pv->shape));
        t->numel = numel;
        t->data = numel ? data + (size_t)pv->offset * dtype_size(st->dtype) : NULL;
        v->borrowed = 1;
        v->owner = owner;
    } else {
        if (!(t = tensor_new_charged(d, st->dtype, pv->ndim, pv->shape, e))) return -1;
        if (t->numel) copy_strided(t->data, data, dtype_size(st->dtype), pv->ndim, pv->shape, pv->stride, pv->offset, t->numel);
    }
    v->tensor = t;
    free(v->aux);
    v->aux = NULL;
    return 0;
}

int pickle_doc_finish(PickleDoc *d, PickleValue *root, Err *e) {
    for (size_t k = 0; k < d->n_nodes; k++) {
        PickleValue *v = d->nodes[k];
        if (v->type != PICKLE_TENSOR) continue;
        if (v->aux && resolve_view(d, v, e)) return -1;
        if (!v->tensor) {
            if (v->gid == G_NP_NDARRAY) return err_set(e, "numpy array without data (no BUILD) in pickle");
            return err_set(e, "tensor without data in pickle");
        }
    }
    // mark what root reaches (iteratively: cycles and deep trees are fine), then free the
    // bytes of every other storage: their tensors have their own copies now
    size_t cap = 64, sp = 0;
    PickleValue **stack = malloc(cap * sizeof(*stack));
    if (!stack) return err_set(e, "out of memory");
    for (size_t k = 0; k < d->n_nodes; k++) d->nodes[k]->depth = -d->nodes[k]->depth - 1; // negative: unmarked
    if (root) stack[sp++] = root;
    while (sp) {
        PickleValue *v = stack[--sp];
        if (v->depth >= 0) continue;
        v->depth = -v->depth - 1;
        size_t nchild = v->type == PICKLE_DICT ? 2 * v->n : (v->type >= PICKLE_LIST && v->type <= PICKLE_SET) ? v->n : 0;
        // a view keeps its base storage alive, a tensor that shares a storage's bytes the storage
        PickleValue *keep = v->type == PICKLE_STORAGE ? v->storage->base : v->type == PICKLE_TENSOR ? v->owner : NULL;
        size_t extra = keep ? 1 : 0;
        if (sp + nchild + extra > cap) {
            while (sp + nchild + extra > cap) cap *= 2;
            PickleValue **s2 = realloc(stack, cap * sizeof(*s2));
            if (!s2) {
                free(stack);
                return err_set(e, "out of memory");
            }
            stack = s2;
        }
        for (size_t j = 0; j < nchild; j++) stack[sp++] = v->items[j];
        if (keep) stack[sp++] = keep;
    }
    free(stack);
    for (size_t k = 0; k < d->n_nodes; k++) {
        PickleValue *v = d->nodes[k];
        int reached = v->depth >= 0;
        if (!reached) v->depth = -v->depth - 1;
        if (!reached && v->type == PICKLE_STORAGE && !v->storage->base && v->storage->data) {
            refund(d, v->storage->numel * dtype_size(v->storage->dtype));
            free(v->storage->data);
            v->storage->data = NULL;
            v->storage->loaded = 0;
        }
    }
    return 0;
}

int pickle_loads(const uint8_t *buf, size_t n, const PickleHooks *hooks, PickleValue **out, Err *e) {
    *out = NULL;
    PickleDoc *d = pickle_doc_new(pickle_budget_for(n));
    if (!d) return err_set(e, "out of memory");
    PickleValue *v;
    if (pickle_loads_doc(d, buf, n, NULL, hooks, &v, e) || pickle_doc_finish(d, v, e)) {
        pickle_doc_free(d);
        return -1;
    }
    *out = v;
    return 0;
}

int pickle_load_file(const char *path, PickleValue **out, Err *e) {
    uint8_t *buf;
    size_t n;
    *out = NULL;
    if (file_read_all(path, (size_t)1 << 34, &buf, &n, e)) return -1;
    int rc = pickle_loads(buf, n, NULL, out, e);
    free(buf);
    if (rc) return err_wrap(e, "%s", path);
    return 0;
}

// ----------------------------------------------------------------------------
// inspecting

const char *pickle_type_name(PickleType t) {
    static const char *names[PICKLE_TYPE_COUNT] = {
        "None", "bool", "int", "int", "float", "str", "bytes", "list", "tuple", "set", "dict", "global",
        "storage", "tensor", "numpy.dtype",
    };
    return (unsigned)t < PICKLE_TYPE_COUNT ? names[t] : "?";
}

int pickle_is(const PickleValue *v, PickleType t) { return v && v->type == t; }

int pickle_is_str(const PickleValue *v, const char *s) {
    return is_text(v) && v->len == strlen(s) && memcmp(v->s, s, v->len) == 0;
}

PickleValue *pickle_dict_get(const PickleValue *dict, const char *key) {
    if (!dict || dict->type != PICKLE_DICT) return NULL;
    for (size_t k = dict->n; k-- > 0;)
        if (pickle_is_str(dict->items[2 * k], key)) return dict->items[2 * k + 1];
    return NULL;
}

size_t pickle_len(const PickleValue *v) {
    if (!v) return 0;
    return (v->type >= PICKLE_LIST && v->type <= PICKLE_DICT) ? v->n : 0;
}

PickleValue *pickle_item(const PickleValue *v, size_t i) {
    if (!v || v->type < PICKLE_LIST || v->type > PICKLE_SET || i >= v->n) return NULL;
    return v->items[i];
}

int pickle_as_int(const PickleValue *v, int64_t *out, Err *e) {
    if (is_int(v)) {
        *out = v->i;
        return 0;
    }
    if (v && v->type == PICKLE_FLOAT && v->f == floor(v->f) && fabs(v->f) < 9.2e18) {
        *out = (int64_t)v->f;
        return 0;
    }
    if (v && v->type == PICKLE_BIGINT) return err_set(e, "integer does not fit in 64 bits");
    return err_set(e, "expected an integer, got a %s", pickle_type_name(v ? v->type : PICKLE_NONE));
}

static double tensor_elem(const Tensor *t, size_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case DTYPE_F32: return ((const float *)d)[i];
    case DTYPE_F64: return ((const double *)d)[i];
    case DTYPE_F16: return half_to_float(((const uint16_t *)d)[i]);
    case DTYPE_BF16: return bf16_to_float(((const uint16_t *)d)[i]);
    case DTYPE_I64: return (double)((const int64_t *)d)[i];
    case DTYPE_I32: return ((const int32_t *)d)[i];
    case DTYPE_I16: return ((const int16_t *)d)[i];
    case DTYPE_I8: return ((const int8_t *)d)[i];
    case DTYPE_U8: return ((const uint8_t *)d)[i];
    case DTYPE_BOOL: return ((const uint8_t *)d)[i] != 0;
    default: return 0;
    }
}

int pickle_as_double(const PickleValue *v, double *out, Err *e) {
    if (is_int(v)) {
        *out = (double)v->i;
        return 0;
    }
    if (v && v->type == PICKLE_FLOAT) {
        *out = v->f;
        return 0;
    }
    if (v && v->type == PICKLE_TENSOR && v->tensor && v->tensor->numel == 1) {
        *out = tensor_elem(v->tensor, 0);
        return 0;
    }
    return err_set(e, "expected a number, got a %s", pickle_type_name(v ? v->type : PICKLE_NONE));
}

int pickle_tensor_copy(const PickleValue *v, Tensor *out, Err *e) {
    memset(out, 0, sizeof(*out));
    if (!v || v->type != PICKLE_TENSOR || !v->tensor)
        return err_set(e, "expected a tensor, got a %s", pickle_type_name(v ? v->type : PICKLE_NONE));
    const Tensor *t = v->tensor;
    if (tensor_init(out, t->dtype, t->ndim, t->shape, e)) return -1;
    if (t->numel) memcpy(out->data, t->data, tensor_nbytes(t));
    return 0;
}

// ----------------------------------------------------------------------------
// printing

typedef struct {
    FILE *f;
    int max_items;
    long lines;  // bounds the output whatever the tree
    PtrSet seen; // containers and tensor bytes already printed: shared ones print once
} Printer;

#define PRINT_MAX_LINES 100000

static void print_text(FILE *f, const PickleValue *v, size_t max) {
    int bytes = v->type == PICKLE_BYTES;
    fputs(bytes ? "b'" : "'", f);
    size_t n = v->len < max ? v->len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v->s[i];
        if (c == '\'' || c == '\\') fprintf(f, "\\%c", c);
        else if (c >= 32 && c < 127) fputc(c, f);
        else if (!bytes && c >= 0x80) fputc(c, f); // utf-8 passes through
        else fprintf(f, "\\x%02x", c);
    }
    fputc('\'', f);
    if (v->len > max) fprintf(f, "... (%zu bytes)", v->len);
}

void pickle_print_tensor(FILE *f, const Tensor *t, int numpy) {
    char b[160];
    fprintf(f, "%s %s %s", numpy ? "ndarray" : "tensor", dtype_name(t->dtype), tensor_shape_str(t, b, sizeof(b)));
    if (t->numel == 0) return;
    int is_float = t->dtype <= DTYPE_BF16;
    size_t show = t->numel <= 6 ? t->numel : 4;
    fputs(" = [", f);
    for (size_t i = 0; i < show; i++) {
        double x = tensor_elem(t, i);
        if (is_float) fprintf(f, i ? ", %.6g" : "%.6g", x);
        else fprintf(f, i ? ", %lld" : "%lld", (long long)x);
    }
    fputs(show < t->numel ? ", ...]" : "]", f);
    // min/max over the finite values, and how many are not (a NaN compares false with
    // everything, so a plain min/max would hide it)
    double lo = INFINITY, hi = -INFINITY;
    size_t nan = 0, inf = 0;
    for (size_t i = 0; i < t->numel; i++) {
        double x = tensor_elem(t, i);
        if (isnan(x)) nan++;
        else if (isinf(x)) inf++;
        else {
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
    }
    if (show < t->numel && nan + inf < t->numel) fprintf(f, " min %.6g max %.6g", lo, hi);
    if (nan) fprintf(f, " NaN: %zu", nan);
    if (inf) fprintf(f, " Inf: %zu", inf);
}

static int is_scalar(const PickleValue *v) { return v->type <= PICKLE_BYTES && !(v->type >= PICKLE_STR && v->len > 40); }

static void print_scalar(FILE *f, const PickleValue *v) {
    switch (v->type) {
    case PICKLE_NONE: fputs("None", f); break;
    case PICKLE_BOOL: fputs(v->i ? "True" : "False", f); break;
    case PICKLE_INT: fprintf(f, "%lld", (long long)v->i); break;
    case PICKLE_FLOAT: { // the shortest of %.15g/%.17g that reads back exactly, as Python's repr
        char b[40];
        snprintf(b, sizeof(b), "%.15g", v->f);
        if (strtod(b, NULL) != v->f) snprintf(b, sizeof(b), "%.17g", v->f);
        fputs(b, f);
        if (isfinite(v->f) && !strpbrk(b, ".en")) fputs(".0", f);
        break;
    }
    case PICKLE_BIGINT: { // as hex: -0x... / 0x...
        int neg = v->len && (v->s[v->len - 1] & 0x80);
        unsigned carry = 1;
        size_t top = v->len;
        uint8_t *m = malloc(v->len ? v->len : 1);
        if (!m) break;
        for (size_t i = 0; i < v->len; i++) {
            unsigned x = neg ? (uint8_t)~(uint8_t)v->s[i] + carry : (uint8_t)v->s[i];
            if (neg) carry = x >> 8;
            m[i] = (uint8_t)x;
        }
        while (top > 1 && m[top - 1] == 0) top--;
        fputs(neg ? "-0x" : "0x", f);
        for (size_t i = top; i-- > 0;) fprintf(f, i == top - 1 ? "%x" : "%02x", m[i]);
        free(m);
        break;
    }
    case PICKLE_STR:
    case PICKLE_BYTES: print_text(f, v, 200); break;
    default: break;
    }
    if (v->np) fprintf(f, " (numpy %s)", v->np <= DTYPE_COUNT ? dtype_name((DType)(v->np - 1)) : "scalar");
}

static void print_node(Printer *p, const PickleValue *v, int indent, int depth);

static void print_children(Printer *p, const PickleValue *v, int indent, int depth) {
    int dict = v->type == PICKLE_DICT;
    size_t n = v->n, show = n > (size_t)p->max_items ? (size_t)p->max_items : n;
    for (size_t i = 0; i < show && p->lines < PRINT_MAX_LINES; i++) {
        fprintf(p->f, "%*s", indent, "");
        if (dict) {
            const PickleValue *k = v->items[2 * i];
            if (is_scalar(k)) print_scalar(p->f, k);
            else fprintf(p->f, "<%s>", pickle_type_name(k->type));
            fputs(": ", p->f);
        } else {
            fprintf(p->f, "[%zu]: ", i);
        }
        print_node(p, dict ? v->items[2 * i + 1] : v->items[i], indent + 2, depth + 1);
    }
    if (show < n) {
        fprintf(p->f, "%*s... (%zu more)\n", indent, "", n - show);
        p->lines++;
    }
}

static void print_node(Printer *p, const PickleValue *v, int indent, int depth) {
    FILE *f = p->f;
    p->lines++;
    if (p->lines == PRINT_MAX_LINES) {
        fputs("... (output truncated)\n", f);
        return;
    }
    if (p->lines > PRINT_MAX_LINES) return;
    if (depth > PICKLE_MAX_DEPTH) {
        fputs("...\n", f);
        return;
    }
    int shared = 0;
    if ((v->type >= PICKLE_LIST && v->type <= PICKLE_DICT && v->n) ||
        (v->type == PICKLE_TENSOR && v->tensor && v->tensor->numel > 6))
        shared = ptrset_add(&p->seen, v->type == PICKLE_TENSOR ? v->tensor->data : (const void *)v) == 1;
    if (shared) {
        if (v->type == PICKLE_TENSOR) {
            char b[160];
            fprintf(f, "%s %s %s (shares its bytes with a tensor above)\n", v->np ? "ndarray" : "tensor",
                    dtype_name(v->tensor->dtype), tensor_shape_str(v->tensor, b, sizeof(b)));
        } else {
            fprintf(f, "%s (%zu %s%s): the same object as above\n", pickle_type_name(v->type), v->n,
                    v->type == PICKLE_DICT ? "key" : "item", v->n == 1 ? "" : "s");
        }
        return;
    }
    switch (v->type) {
    case PICKLE_LIST:
    case PICKLE_TUPLE:
    case PICKLE_SET:
    case PICKLE_DICT: {
        const char *open = v->type == PICKLE_LIST ? "[" : v->type == PICKLE_TUPLE ? "(" : "{";
        const char *close = v->type == PICKLE_LIST ? "]" : v->type == PICKLE_TUPLE ? ")" : "}";
        int flat = v->type != PICKLE_DICT && v->n <= (size_t)p->max_items;
        for (size_t i = 0; flat && i < v->n; i++) flat = is_scalar(v->items[i]);
        fprintf(f, "%s (%zu %s%s)", pickle_type_name(v->type), v->n, v->type == PICKLE_DICT ? "key" : "item",
                v->n == 1 ? "" : "s");
        if (flat && v->n) {
            fprintf(f, " %s", open);
            for (size_t i = 0; i < v->n; i++) {
                if (i) fputs(", ", f);
                print_scalar(f, v->items[i]);
            }
            fputs(close, f);
        }
        fputc('\n', f);
        if (!flat) print_children(p, v, indent, depth);
        return;
    }
    case PICKLE_TENSOR:
        if (v->tensor) pickle_print_tensor(f, v->tensor, v->np != 0);
        else fputs("tensor (unresolved)", f);
        break;
    case PICKLE_STORAGE:
        fprintf(f, "storage %s '%s' (%zu elements)", dtype_name(v->storage->dtype), v->storage->key, v->storage->numel);
        break;
    case PICKLE_GLOBAL: fprintf(f, "<%s>", v->s); break;
    case PICKLE_NPDTYPE: fprintf(f, "numpy.dtype('%s')", v->s); break;
    default: print_scalar(f, v);
    }
    fputc('\n', f);
}

void pickle_print(FILE *f, const PickleValue *v, int max_items) {
    Printer p = {.f = f, .max_items = max_items > 0 ? max_items : 1};
    if (!v) {
        fputs("(nothing)\n", f);
        return;
    }
    print_node(&p, v, 2, 0);
    ptrset_free(&p.seen);
}
