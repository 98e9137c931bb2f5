/*
 * conv_direct.c: the forward pass of stride-1 convolutions with few input channels (a
 * network's first layer: 3 RGB or 1 grey channels) by a direct, register-blocked kernel:
 * an implicit GEMM over a zero-padded copy of the input, with no im2col matrix,
 *   out[o][y][x] = bias[o] + sum_{c,i,j} w[o][c][i][j] xp[c][y+i][x+j]
 * where xp is the input padded by pad on every side.
 *
 * Why: with 3 input channels the im2col GEMM has an inner dimension of 27, too short for
 * sgemm's packing to pay. Here a register block holds 8 output channels by one row of
 * NV vectors of output columns; every step broadcasts 8 weights and loads NV shifted
 * input vectors for 8 NV fused multiply-adds, so the FMA units rather than the loads
 * bound it (ConvNet's 3 -> 128 layer at 32x32: 50 us against 85 us by im2col + sgemm,
 * one sample, one thread). The sums run over (c, i, j) in order, each output in its own
 * lane: a sample's result does not depend on the batch, the block or the thread. The
 * naive reference is conv2d_forward_ref (test_nn compares them).
 *
 * The same kernel run from Cout to Cin channels on the rotated kernels gives the input
 * gradient, but with 3 output channels it measured slower than im2col + sgemm (the
 * padded copy of 128 gradient channels and a short register block), so the input
 * gradient of such layers stays on im2col (convplan.c).
 */
#include <omp.h>

#include "../core/common.h"
#include "nn.h"
#include "vec.h"

#define MR GEMM_MR // output channels per register block

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

int conv_direct_applies(int Cin, int stride) { return stride == 1 && Cin < 8; }

size_t conv_direct_weights_size(int Cout, int Cin, int K) { return (size_t)round_up(Cout, MR) * Cin * K * K; }

// packed as [o / MR][(c, i, j)][o % MR], zero rows past Cout
void conv_direct_weights(real *Wp, const real *weight, int Cout, int Cin, int K) {
    size_t Kc = (size_t)Cin * K * K;
    memset(Wp, 0, sizeof(real) * conv_direct_weights_size(Cout, Cin, K));
    for (int o = 0; o < Cout; o++)
        for (size_t t = 0; t < Kc; t++) Wp[((size_t)(o / MR) * Kc + t) * MR + o % MR] = weight[(size_t)o * Kc + t];
}

// one register block: output channels [0, nch) of the block, row oh, columns
// x0 .. min(x0 + NV VL, Wo) - 1. NV (1 or 2) and, in the hot path, K are constants.
static inline __attribute__((always_inline)) void tile(real *out, size_t oplane, int Wo, const real *xp, size_t pplane,
                                                       int ldp, const real *wp, int Cin, const int K, int oh, int x0,
                                                       int nch, const real *bias, const int NV) {
    vreal acc[MR][2]; // [MR][NV] used (fixed sizes, not VLAs, so that it lives in registers)
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = (vreal){0};
    for (int c = 0; c < Cin; c++)
        for (int i = 0; i < K; i++) {
            const real *row = xp + (size_t)c * pplane + (size_t)(oh + i) * ldp + x0;
            const real *w = wp + (size_t)(c * K + i) * K * MR;
            for (int j = 0; j < K; j++, w += MR) {
                vreal b0 = vload(row + j), b1 = NV > 1 ? vload(row + j + VL) : (vreal){0};
#pragma GCC unroll 8
                for (int r = 0; r < MR; r++) {
                    acc[r][0] += w[r] * b0;
                    if (NV > 1) acc[r][1] += w[r] * b1;
                }
            }
        }
    // (constant loop bounds with guards, so that acc stays in registers)
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        if (r >= nch) break;
        real *dst = out + (size_t)r * oplane + (size_t)oh * Wo;
        for (int v = 0; v < NV; v++) {
            int col = x0 + v * VL, n = MIN(VL, Wo - col);
            if (n <= 0) break;
            vreal y = acc[r][v];
            if (bias) y += bias[r];
            if (n == VL) vstore(dst + col, y);
            else lanes_store(dst + col, y, n);
        }
    }
}

// output channel blocks [ob0, ob1)
static inline __attribute__((always_inline)) void blocks(real *out, int Cout, int Ho, int Wo, const real *xp,
                                                         size_t pplane, int ldp, const real *Wp, int Cin, const int K,
                                                         const real *bias, const int NV, int ob0, int ob1) {
    size_t oplane = (size_t)Ho * Wo, wblock = (size_t)Cin * K * K * MR;
    for (int ob = ob0; ob < ob1; ob++) {
        int nch = MIN(MR, Cout - ob * MR);
        real *o = out + (size_t)ob * MR * oplane;
        const real *w = Wp + ob * wblock, *bs = bias ? bias + ob * MR : NULL;
        for (int oh = 0; oh < Ho; oh++)
            for (int x0 = 0; x0 < Wo; x0 += NV * VL) tile(o, oplane, Wo, xp, pplane, ldp, w, Cin, K, oh, x0, nch, bs, NV);
    }
}

// out (Cout, Ho, Wo) of one sample
static void direct_sample(real *out, const real *in, const real *Wp, const real *bias, int Cin, int H, int W,
                          int Cout, int K, int pad, int Ho, int Wo) {
    int NV = Wo <= VL ? 1 : 2;
    int ldp = round_up(Wo, NV * VL) + K - 1, hp = Ho + K - 1;
    size_t pplane = (size_t)hp * ldp;
    real *xp = scratch_real(SCRATCH_COL, (size_t)Cin * pplane);
    // the padded copy: row a of channel c is in's row a - pad, shifted right by pad
    int x_lo = MAX(0, -pad), x_hi = MIN(W, ldp - pad); // in's columns that land in a row
    int b_lo = x_lo + pad, b_hi = x_hi + pad;         // where they land
    for (int c = 0; c < Cin; c++)
        for (int a = 0; a < hp; a++) {
            real *dst = xp + (size_t)c * pplane + (size_t)a * ldp;
            int y = a - pad;
            if (y < 0 || y >= H || x_hi <= x_lo) {
                for (int k = 0; k < ldp; k++) dst[k] = 0;
                continue;
            }
            const real *src = in + ((size_t)c * H + y) * W + x_lo - b_lo;
            for (int k = 0; k < b_lo; k++) dst[k] = 0;
            for (int k = b_lo; k < b_hi; k++) dst[k] = src[k];
            for (int k = b_hi; k < ldp; k++) dst[k] = 0;
        }
    // called outside any parallel region (a batch of one, the driver's remainder samples)
    // the threads share the output channel blocks; each value is computed as with one
    int nob = (Cout + MR - 1) / MR, nth = omp_in_parallel() ? 1 : MIN(omp_get_max_threads(), nob);
#pragma omp parallel num_threads(nth) if (nth > 1)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int ob0 = (int)((long)nob * t / n), ob1 = (int)((long)nob * (t + 1) / n);
        if (K == 3 && NV == 2) blocks(out, Cout, Ho, Wo, xp, pplane, ldp, Wp, Cin, 3, bias, 2, ob0, ob1);
        else if (K == 3) blocks(out, Cout, Ho, Wo, xp, pplane, ldp, Wp, Cin, 3, bias, 1, ob0, ob1);
        else if (NV == 2) blocks(out, Cout, Ho, Wo, xp, pplane, ldp, Wp, Cin, K, bias, 2, ob0, ob1);
        else blocks(out, Cout, Ho, Wo, xp, pplane, ldp, Wp, Cin, K, bias, 1, ob0, ob1);
    }
}

void conv2d_forward_direct(real *out, const real *in, const real *Wp, const real *bias, int B, int Cin, int H, int W,
                           int Cout, int K, int pad) {
    int Ho = conv2d_out_size(H, K, 1, pad), Wo = conv2d_out_size(W, K, 1, pad);
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) direct_sample(out + b * out_sz, in + b * in_sz, Wp, bias, Cin, H, W, Cout, K, pad, Ho, Wo);
}

// ----------------------------------------------------------------------------
// the input gradient: dcol = weight^T . dout, then col2im

int conv_direct_backward_applies(int Cin, int stride, int Ho, int Wo) {
    return stride == 1 && Cin < 8 && (size_t)Ho * Wo % VL == 0;
}

size_t conv_direct_weights_backward_size(int Cout, int Cin, int K) {
    return (size_t)round_up(Cin * K * K, GEMM_MR) * Cout;
}

// weight^T packed as [kc / GEMM_MR][o][kc % GEMM_MR], kc = (c, i, j), zero rows past Cin K K
void conv_direct_weights_backward(real *Wt, const real *weight, int Cout, int Cin, int K) {
    size_t Kc = (size_t)Cin * K * K;
    memset(Wt, 0, sizeof(real) * conv_direct_weights_backward_size(Cout, Cin, K));
    for (size_t kc = 0; kc < Kc; kc++)
        for (int o = 0; o < Cout; o++)
            Wt[((kc / GEMM_MR) * Cout + o) * GEMM_MR + kc % GEMM_MR] = weight[(size_t)o * Kc + kc];
}

// dcol rows [kb0, kb1) blocks of GEMM_MR, every column
static void dcol_blocks(real *dcol, const real *dout, const real *Wt, int Cout, int P, int kb0, int kb1) {
    // columns outer: a chunk of dout (Cout rows of 2 vectors) stays in L1 across the blocks
    for (int j = 0; j < P; j += 2 * VL) {
        int nv = P - j >= 2 * VL ? 2 : 1;
        for (int kb = kb0; kb < kb1; kb++)
            gemm_mr_kernel(dcol + (size_t)kb * GEMM_MR * P + j, P, Wt + (size_t)kb * Cout * GEMM_MR, dout + j, P, Cout, nv);
    }
}

void conv2d_backward_data_direct(real *din, const real *dout, const real *Wt, int B, int Cin, int H, int W, int Cout,
                                 int K, int pad) {
    int Ho = conv2d_out_size(H, K, 1, pad), Wo = conv2d_out_size(W, K, 1, pad), P = Ho * Wo;
    int nkb = round_up(Cin * K * K, GEMM_MR) / GEMM_MR;
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * P;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        real *dcol = scratch_real(SCRATCH_COL2, (size_t)nkb * GEMM_MR * P);
        // outside any parallel region (a batch of one) the threads share the row blocks
        int nth = omp_in_parallel() ? 1 : MIN(omp_get_max_threads(), nkb);
#pragma omp parallel num_threads(nth) if (nth > 1)
        {
            int t = omp_get_thread_num(), n = omp_get_num_threads();
            dcol_blocks(dcol, dout + b * out_sz, Wt, Cout, P, (int)((long)nkb * t / n), (int)((long)nkb * (t + 1) / n));
        }
        conv2d_col2im_add(din + b * in_sz, dcol, Cin, H, W, K, 1, pad, Ho, Wo);
    }
}
