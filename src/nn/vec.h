/*
 * vec.h: the vector type and the loads and stores that beard's hand-blocked convolution
 * kernels (winograd.c, conv_direct.c) share. GCC/clang vector extensions, not
 * intrinsics. The width follows the machine the build targets: with AVX-512
 * (-march=native on such a CPU) a vreal is one 512-bit zmm register of 16 floats
 * (VEC16), otherwise 256 bits, 8 floats: one ymm register with AVX2, two xmm with SSE.
 * 512-bit vectors on a CPU without AVX-512 are split by the compiler, and the GEMM
 * kernel's accumulators then outgrow the 16 registers: on an AVX2 EPYC the Winograd
 * convolutions ran 12x slower than im2col + sgemm that way. The micro-kernel's rows
 * (GEMM_MR) follow the width: 8 with 32 registers, 6 with 16 (12 accumulators, two
 * loads, one broadcast). float32 only.
 */
#ifndef BEARD_VEC_H
#define BEARD_VEC_H

#include <string.h>

#include "real.h"

// BEARD_VEC16 asks for 16 lanes on any target (the Makefile's test_nn_lanes16, which runs
// the AVX-512 paths, split in two by the compiler, on a CPU without it)
#if defined(__AVX512F__) || defined(BEARD_VEC16)
#define VEC16 1
#define VEC_BYTES 64
#else
#define VEC16 0
#define VEC_BYTES 32
#endif
#define VL ((int)(VEC_BYTES / sizeof(real))) // lanes in one vector
typedef real vreal __attribute__((vector_size(VEC_BYTES)));
typedef real vhalf __attribute__((vector_size(VEC_BYTES / 2)));
typedef real vquarter __attribute__((vector_size(VEC_BYTES / 4)));
_Static_assert(sizeof(real) == 4, "the vector kernels are float32 only (the double build of nn/ leaves them out)");
// Built without AVX-512 (the fuzz build, a build without -march=native) the compilers
// note that passing 64-byte vectors changes the ABI; every function taking one is static
// inline in the files that include this.
#pragma GCC diagnostic ignored "-Wpsabi"

// __builtin_shufflevector (GCC >= 12, clang): lanes 0..15 pick from a, 16..31 from b
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)

static inline __attribute__((always_inline)) vreal vload(const real *p) {
    vreal v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline __attribute__((always_inline)) void vstore(real *p, vreal v) { memcpy(p, &v, sizeof v); }

// n <= VL values from p as a vector, zeros past n (n constant in the hot paths, so that
// this is one vector move)
static inline __attribute__((always_inline)) vreal lanes_load(const real *p, int n) {
    if (n == VL) return vload(p);
#if VEC16
    if (n == VL / 2) {
        vhalf h;
        memcpy(&h, p, sizeof h);
        return SHUF(h, (vhalf){0}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8, 8, 8, 8, 8);
    }
#endif
    vreal v = {0};
    memcpy(&v, p, sizeof(real) * n);
    return v;
}

// the first n <= VL lanes of v to p
static inline __attribute__((always_inline)) void lanes_store(real *p, vreal v, int n) {
    if (n == VL) {
        vstore(p, v);
#if VEC16
    } else if (n == VL / 2) {
        vhalf h = SHUF(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
        memcpy(p, &h, sizeof h);
    } else if (n == VL / 4) {
        vquarter q = SHUF(v, v, 0, 1, 2, 3);
        memcpy(p, &q, sizeof q);
#endif
    } else {
        memcpy(p, &v, sizeof(real) * n);
    }
}

// The GEMM micro-kernel of the Winograd and direct convolutions:
//   m (GEMM_MR rows, ldm) = u (k x GEMM_MR, packed: u[i * GEMM_MR + r]) . v (k rows of ldv)
// over nv (1 or 2) vectors of columns, GEMM_MR x nv accumulators in registers, one
// broadcast of u per row and step. Each output is a sum over i in order, in its own lane.
#if VEC16
#define GEMM_MR 8
#else
#define GEMM_MR 6
#endif
static inline __attribute__((always_inline)) void gemm_mr_kernel(real *m, int ldm, const real *u, const real *v, int ldv,
                                                                 int k, int nv) {
    vreal acc0[GEMM_MR], acc1[GEMM_MR];
    for (int r = 0; r < GEMM_MR; r++) acc0[r] = acc1[r] = (vreal){0};
    for (int i = 0; i < k; i++) {
        vreal b0 = vload(v + (size_t)i * ldv);
        vreal b1 = nv > 1 ? vload(v + (size_t)i * ldv + VL) : (vreal){0};
        const real *ui = u + (size_t)i * GEMM_MR;
#pragma GCC unroll 8
        for (int r = 0; r < GEMM_MR; r++) {
            acc0[r] += ui[r] * b0;
            if (nv > 1) acc1[r] += ui[r] * b1;
        }
    }
    for (int r = 0; r < GEMM_MR; r++) {
        vstore(m + (size_t)r * ldm, acc0[r]);
        if (nv > 1) vstore(m + (size_t)r * ldm + VL, acc1[r]);
    }
}

#endif
