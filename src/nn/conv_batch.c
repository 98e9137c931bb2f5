/*
 * conv_batch.c: 2-d convolution (torch.nn.Conv2d, groups = 1, dilation = 1, zero padding)
 * over a group of samples as one GEMM, for the layers whose feature maps are small.
 *
 * conv2d.c runs im2col + sgemm one sample at a time, which suits a 32x32 map: the GEMM
 * has Ho*Wo = 1024 columns. The deep layers of ResNet-18, VGG11 and AlexNet have 4x4 or
 * 2x2 maps and 256-512 channels: one sample's GEMM multiplies up to 9 MB of weights by
 * 16 or 4 columns, so it streams the weights from memory for a handful of multiply-adds
 * each, and its weight gradient (Cout x Cin*K*K += dout . col^T, inner dimension Ho*Wo)
 * reads and writes the whole gradient per sample. Here m samples go side by side in one
 * matrix, so every GEMM has m*Ho*Wo columns (inner dimension for the weight gradient):
 *   col  (Kc, m*P)    = [im2col(sample 0) | im2col(sample 1) | ...], P = Ho*Wo, Kc = Cin*K*K
 *   y    (Cout, m*P)  = W (Cout, Kc) . col             -> out (NCHW) + bias
 *   dy   (Cout, m*P)  gathered from dout (NCHW)
 *   dW  (Cout, Kc)   += dy . col^T,   db += row sums of dy
 *   dcol (Kc, m*P)    = W^T . dy                       -> din += col2im, per sample
 * m is chosen so that m*P reaches CONV_BATCH_COLS (a GEMM OpenBLAS runs near its peak)
 * and no more: col for a 512-channel 3x3 layer is then 4.7 MB.
 *
 * Threads: called outside a parallel region, the groups run in parallel (OpenMP), BLAS
 * single-threaded inside, as everywhere in beard; weight gradients go to per-thread
 * partials reduced in thread order (the same thread count gives the same bits). Called
 * from a thread of the per-sample driver (net.c's chunks), everything runs on that thread.
 *
 * The references are conv2d.c's per-sample kernel and its naive conv2d_*_ref; test_nn
 * compares all three on odd shapes. A sample's values depend on its group only through the
 * GEMM's rounding.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "../core/parallel.h"
#include "conv_batch.h"
#include "nn.h"

#define CONV_BATCH_COLS 256 // GEMM columns (weight gradient: inner dimension) aimed for per group

// Output maps of at most 4x4 (16 columns per sample). Measured on this machine (one
// thread, batch 32, us per sample, per-sample kernel vs groups): 512 -> 512 3x3 at 4x4
// forward 8716 (Winograd, 4 tiles in a 16-lane block) vs 3045, input gradient 8122 vs
// 3381; at 2x2 8856 vs 1326; 256 -> 512 3x3 stride 2 to 4x4 2453 (im2col) vs 1850. At
// 8x8 Winograd per sample stays ahead even with 256 channels (4 MB of weights): 1603 vs
// 2716 forward, 2839 vs 3562 input gradient (2.25x fewer multiplies than im2col).
int conv_batch_applies(int Cin, int Cout, int K, int Ho, int Wo) {
    (void)Cin, (void)Cout, (void)K;
    return (size_t)Ho * Wo <= 16;
}

int conv_batch_samples(int Ho, int Wo) {
    int P = Ho * Wo;
    int m = (CONV_BATCH_COLS + P - 1) / P;
    return m < 1 ? 1 : m;
}

// samples per group for a batch of B: the plan's, but never fewer groups than threads
// when the groups are to run in parallel
static int group_size(int B, int Ho, int Wo, int nt) {
    int m = conv_batch_samples(Ho, Wo);
    if (nt > 1 && (long)m * nt > B) m = (B + nt - 1) / nt;
    return m < 1 ? 1 : m;
}

static void group_forward(real *out, const real *in, const real *weight, const real *bias, int n, int Cin, int H,
                          int W, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    size_t P = (size_t)Ho * Wo, N = (size_t)n * P, Kc = (size_t)Cin * K * K, in_sz = (size_t)Cin * H * W;
    real *col = scratch_real(SCRATCH_COL, Kc * N), *y = scratch_real(SCRATCH_COL2, (size_t)Cout * N);
    for (int b = 0; b < n; b++) conv2d_im2col_ld(col + b * P, N, in + b * in_sz, Cin, H, W, K, stride, pad, Ho, Wo);
    cblas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)N, (int)Kc, 1.0f, weight, (int)Kc, col, (int)N,
               0.0f, y, (int)N);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < Cout; o++) {
            real bo = bias ? bias[o] : (real)0;
            const real *src = y + (size_t)o * N + b * P;
            real *dst = out + ((size_t)b * Cout + o) * P;
            for (size_t p = 0; p < P; p++) dst[p] = src[p] + bo;
        }
}

static void group_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in, const real *weight,
                           int n, int Cin, int H, int W, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    size_t P = (size_t)Ho * Wo, N = (size_t)n * P, Kc = (size_t)Cin * K * K, in_sz = (size_t)Cin * H * W;
    real *dy = scratch_real(SCRATCH_TMP, (size_t)Cout * N);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < Cout; o++)
            memcpy(dy + (size_t)o * N + b * P, dout + ((size_t)b * Cout + o) * P, sizeof(real) * P);
    if (dbias)
        for (int o = 0; o < Cout; o++) {
            const real *r = dy + (size_t)o * N;
            real s = 0;
            for (size_t p = 0; p < N; p++) s += r[p];
            dbias[o] += s;
        }
    if (dweight) {
        real *col = scratch_real(SCRATCH_COL, Kc * N);
        for (int b = 0; b < n; b++) conv2d_im2col_ld(col + b * P, N, in + b * in_sz, Cin, H, W, K, stride, pad, Ho, Wo);
        cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, (int)Kc, (int)N, 1.0f, dy, (int)N, col, (int)N, 1.0f,
                   dweight, (int)Kc);
    }
    if (din) {
        real *dcol = scratch_real(SCRATCH_COL2, Kc * N);
        cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Kc, (int)N, Cout, 1.0f, weight, (int)Kc, dy, (int)N,
                   0.0f, dcol, (int)N);
        for (int b = 0; b < n; b++) conv2d_col2im_add_ld(din + b * in_sz, dcol + b * P, N, Cin, H, W, K, stride, pad, Ho, Wo);
    }
}

void conv2d_batch_forward(real *out, const real *in, const real *weight, const real *bias, int B, int Cin, int H,
                          int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int m = group_size(B, Ho, Wo, nt), ng = (B + m - 1) / m;
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && ng > 1)
    for (int g = 0; g < ng; g++) {
        int b0 = g * m, n = MIN(m, B - b0);
        group_forward(out + b0 * out_sz, in + b0 * in_sz, weight, bias, n, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
    }
}

void conv2d_batch_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in, const real *weight,
                           int B, int Cin, int H, int W, int Cout, int K, int stride, int pad) {
    int Ho = conv2d_out_size(H, K, stride, pad), Wo = conv2d_out_size(W, K, stride, pad);
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int m = group_size(B, Ho, Wo, nt), ng = (B + m - 1) / m;
    if (nt > ng) nt = ng;
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * Ho * Wo, wsz = (size_t)Cout * Cin * K * K;
    size_t per = wsz + (size_t)Cout;
    real *partial = NULL;
    if (nt > 1 && (dweight || dbias) && !(partial = xcalloc(sizeof(real) * per * (size_t)nt))) nt = 1;
    if (!partial) { // no parameter gradients (or one thread): groups in parallel, nothing shared
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int g = 0; g < ng; g++) {
            int b0 = g * m, n = MIN(m, B - b0);
            group_backward(din ? din + b0 * in_sz : NULL, dweight, dbias, dout + b0 * out_sz, in + b0 * in_sz, weight, n,
                           Cin, H, W, Cout, K, stride, pad, Ho, Wo);
        }
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        real *pw = partial + (size_t)t * per;
        int lo = (int)((long)ng * t / nt), hi = (int)((long)ng * (t + 1) / nt);
        for (int g = lo; g < hi; g++) {
            int b0 = g * m, n = MIN(m, B - b0);
            group_backward(din ? din + b0 * in_sz : NULL, dweight ? pw : NULL, dbias ? pw + wsz : NULL,
                           dout + b0 * out_sz, in + b0 * in_sz, weight, n, Cin, H, W, Cout, K, stride, pad, Ho, Wo);
        }
    }
    conv2d_partials_add(dweight, dbias, partial, nt, wsz, Cout);
}
