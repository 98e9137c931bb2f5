/*
 * harness.h: the tiny test harness every tests/test_*.c uses.
 *
 * A test program runs its checks, prints one line per failure and a summary, and exits
 * non-zero if any check failed. Tests that need ../shared (the real CIFAR-10 images and
 * BEARD's checkpoints) call shared_path(); when it returns NULL they print SKIP with the
 * reason and carry on with the rest.
 *
 * Fixtures are the reference tensors that tests/scripts/ (Python) write from PyTorch, in a
 * small binary format (see fixture_load): "BEARDFIX", u32 count, then per tensor
 * u16 name length, name, u8 ndim, int64 shape[ndim], float32 data, all little-endian.
 */
#ifndef BEARD_HARNESS_H
#define BEARD_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int g_checks, g_fails;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        g_checks++;                                                                       \
        if (!(cond)) {                                                                    \
            g_fails++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                          \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

// compares |got - ref| <= atol + rtol*|ref| elementwise; one CHECK, reporting the worst
int check_close(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol);
int check_close_d(const char *what, const double *got, const double *ref, size_t n, double atol, double rtol);

// "../shared/<rel>" (or $BEARD_SHARED/<rel>) if it exists, else NULL after printing SKIP
const char *shared_path(const char *rel, const char *why);
void test_skip(const char *why);
// prints the summary; returns the exit status
int test_done(const char *name);

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[8];
    size_t n;
    float *data;
} FixTensor;

typedef struct {
    int n;
    FixTensor *t;
} Fixture;

// loads a fixture; returns 0, or -1 after printing why (and counting a failure)
int fixture_load(const char *path, Fixture *f);
// the tensor named name, or NULL after counting a failure
const FixTensor *fixture_get(const Fixture *f, const char *name);
// the same with the name formatted from fmt
const FixTensor *fixture_getf(const Fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fixture_free(Fixture *f);

// the beard CLI under test: $BEARD, else build/beard; NULL if it is not executable
const char *beard_bin(void);
// runs "BEARD_NO_PROGRESS=1 <beard> <args> 2>&1" (args from fmt); the output goes to out
// (n bytes, NUL-terminated), returns the exit status (-1 if it did not exit)
int run_cli(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// the same with only stderr in out (stdout discarded): for checking one-line errors
int run_cli_stderr(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// runs a shell command line in dir with BEARD_NO_PROGRESS=1, stdout and stderr into out
// (n bytes, NUL-terminated; out may be NULL); returns the exit status, or -(signal) when
// the command (or the last one of a pipeline) was killed
int run_sh(char *out, size_t n, const char *dir, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

// path of a fresh temporary file/directory for this test (under $TMPDIR or /tmp)
const char *test_tmp(const char *name);

#endif
