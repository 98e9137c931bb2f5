/*
 * linear.c: fully connected layer (torch.nn.Linear), out = in W^T + b.
 *
 * Parallel over row blocks of the batch for out and din, and over column blocks of W
 * for dW, so that no thread ever sums into another's memory: results do not depend on
 * the thread count.
 */
#include <cblas.h>
#include <omp.h>

#include "../core/common.h"
#include "nn.h"

static int nthreads_for(size_t work) {
    if (omp_in_parallel()) return 1;
    int nt = omp_get_max_threads();
    // below ~1 MFLOP a second thread costs more than it saves
    if (work < (1u << 20)) return 1;
    return nt;
}

void linear_forward(real *out, const real *in, const real *weight, const real *bias, int B, int C, int OC) {
    int nt = nthreads_for((size_t)B * C * OC);
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int lo = (int)((long)B * t / n), hi = (int)((long)B * (t + 1) / n);
        if (hi > lo) {
            for (int b = lo; b < hi; b++)
                for (int o = 0; o < OC; o++) out[(size_t)b * OC + o] = bias ? bias[o] : 0.0f;
            cblas_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OC, C, 1.0f, in + (size_t)lo * C, C,
                        weight, C, 1.0f, out + (size_t)lo * OC, OC);
        }
    }
}

void linear_backward(real *din, real *dweight, real *dbias, const real *dout, const real *in,
                     const real *weight, int B, int C, int OC) {
    if (dbias) {
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)b * OC + o];
    }
    int nt = nthreads_for((size_t)B * C * OC);
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        if (din) {
            int lo = (int)((long)B * t / n), hi = (int)((long)B * (t + 1) / n);
            if (hi > lo)
                cblas_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, C, OC, 1.0f, dout + (size_t)lo * OC,
                            OC, weight, C, 1.0f, din + (size_t)lo * C, C);
        }
        if (dweight) {
            int lo = (int)((long)C * t / n), hi = (int)((long)C * (t + 1) / n);
            if (hi > lo)
                cblas_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, hi - lo, B, 1.0f, dout, OC, in + lo, C, 1.0f,
                            dweight + lo, C);
        }
    }
}

void linear_forward_ref(real *out, const real *in, const real *weight, const real *bias, int B, int C, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)in[(size_t)b * C + c] * weight[(size_t)o * C + c];
            out[(size_t)b * OC + o] = (real)s;
        }
}
