/*
 * parallel.h: threads, BLAS set-up and thread-local scratch memory.
 *
 * beard parallelises over samples with OpenMP and calls BLAS single-threaded from inside
 * those loops; one thread count (`--threads N`, default: all cores) governs both. The
 * reduction of per-thread partial sums (weight gradients) always runs in thread order, so
 * the same thread count gives bit-identical results run after run.
 *
 * OpenBLAS 0.3.21 (Debian 12) does not recognise some recent Xeons and falls back to its
 * SSE3 "Prescott" kernels, which are 4x slower than its AVX-512 ones on this hardware.
 * The core type can only be chosen before the library is loaded, so parallel_init()
 * re-executes the program once with OPENBLAS_CORETYPE set when the CPU supports better
 * kernels than the ones selected. The same re-execution sets GOMP_SPINCOUNT (how long
 * libgomp's idle threads spin before they sleep, see parallel.c) unless OMP_WAIT_POLICY
 * or GOMP_SPINCOUNT is set. Set OPENBLAS_CORETYPE and GOMP_SPINCOUNT yourself, or
 * BEARD_NO_REEXEC=1, to opt out.
 */
#ifndef BEARD_PARALLEL_H
#define BEARD_PARALLEL_H

#include <stddef.h>

// call first thing in main(); may not return (re-exec)
void parallel_init(int argc, char **argv);
// n <= 0 means all cores
void parallel_set_threads(int n);
int parallel_threads(void);
// the BLAS kernel family in use ("SkylakeX", "Haswell", ...)
const char *parallel_blas_core(void);
// BLAS threads for a single large GEMM issued outside our own parallel loops
void parallel_blas_threads(int n);

// Thread-local scratch: slot s of the calling thread, grown to at least n floats. The
// contents are undefined on return. Slots let one kernel hold a few buffers at once.
// Scratch holds one sample's worth of data; failing to get it aborts with a message.
enum { SCRATCH_COL, SCRATCH_COL2, SCRATCH_PARTIAL, SCRATCH_TMP, SCRATCH_SLOTS };
float *scratch_f32(int slot, size_t n);

#endif
