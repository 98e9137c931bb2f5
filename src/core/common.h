/*
 * common.h: the few things every part of beard shares.
 *
 * Errors. Library code never exits and never aborts on user input: a function that can
 * fail returns 0 on success and -1 on failure, and writes a one-line, human-readable
 * reason into an Err. Only the CLI (src/cli) turns an Err into a message and an exit
 * status. Asserts are for programmer errors only.
 *
 * Tensors. `Tensor` is the plain, owning, contiguous n-d array that the io layer hands
 * out (a checkpoint's weights, a distilled set's images). Strides and storage offsets
 * of a PyTorch file are resolved when it is read, so everything downstream may assume
 * row-major contiguous data.
 */
#ifndef BEARD_COMMON_H
#define BEARD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BEARD_VERSION "0.1.0"

// ----------------------------------------------------------------------------
// errors

#define ERR_MAX 512
typedef struct {
    char msg[ERR_MAX];
} Err;

// formats the message into e (when e is not NULL) and returns -1, so that callers can
// write `return err_set(e, "bad header in %s", path);`
int err_set(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// prepends "context: " to an existing message and returns -1
int err_wrap(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// ----------------------------------------------------------------------------
// memory: these return NULL on failure (callers report it as an ordinary error)

void *xmalloc(size_t n);           // malloc, 64-byte aligned, never for n == 0 returns NULL
void *xcalloc(size_t n);           // zeroed xmalloc
void xfree(void *p);
char *xstrdup(const char *s);
// checked size arithmetic: returns 0 on overflow (and leaves *out untouched)
int size_mul(size_t a, size_t b, size_t *out);

// ----------------------------------------------------------------------------
// tensors

typedef enum {
    DTYPE_F32,
    DTYPE_F64,
    DTYPE_F16,
    DTYPE_BF16,
    DTYPE_I64,
    DTYPE_I32,
    DTYPE_I16,
    DTYPE_I8,
    DTYPE_U8,
    DTYPE_BOOL,
    DTYPE_COUNT
} DType;

size_t dtype_size(DType t);
const char *dtype_name(DType t);       // "float32", "int64", ... as PyTorch prints them
const char *dtype_safetensors(DType t); // "F32", "I64", ...

#define TENSOR_MAX_DIM 8
typedef struct {
    DType dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIM];
    size_t numel;
    void *data; // contiguous, row-major, owned (xmalloc); NULL when numel == 0
} Tensor;

int tensor_init(Tensor *t, DType dtype, int ndim, const int64_t *shape, Err *e);
void tensor_free(Tensor *t);
size_t tensor_nbytes(const Tensor *t);
// converts any dtype to a newly allocated float32 array of t->numel elements
float *tensor_to_f32(const Tensor *t, Err *e);
// converts any integer/bool/float dtype to int64 (floats are truncated); NULL on error
int64_t *tensor_to_i64(const Tensor *t, Err *e);
// "[128, 3, 3, 3]" into buf
const char *tensor_shape_str(const Tensor *t, char *buf, size_t n);

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t h);

// ----------------------------------------------------------------------------
// time and small parsing helpers

double time_now(void); // monotonic seconds
// parses "0.5", "8/255", "1e-3"; returns 0 on success
int parse_number(const char *s, double *out);
int parse_int(const char *s, long *out);

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
