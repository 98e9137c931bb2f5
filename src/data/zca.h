/*
 * zca.h: ZCA whitening as kornia's ZCAWhitening(eps, compute_inv=True) fits and applies
 * it, which is what MTT (GeorgeCazenavette/mtt-distillation utils.py get_dataset, with
 * --zca) does to CIFAR before distilling: fitted on the whole training set of [0, 1]
 * pixels (no mean/std normalisation), eps = 0.1, then applied to the training and the
 * test images; the distilled images live in that space (images_best.pt).
 *
 * With X (N, D) the flattened images, mu their mean, C = (X - mu)^T (X - mu) / (N - 1)
 * (kornia's unbiased default) and C = U S U^T:
 *   T     = U (S + eps)^(-1/2) U^T,   whiten(x)  = (x - mu) T
 *   T_inv = U (S + eps)^(+1/2) U^T,   inverse(y) = y T_inv + mu
 * (kornia's inverse_transform computes (y + mu T) T_inv, the same map). kornia takes U
 * and S from an SVD of C in float32; beard takes them from LAPACK's symmetric
 * eigensolver (dsyevd, through OpenBLAS) on C in double, which for a symmetric positive
 * semi-definite C is the same decomposition, computed more accurately. Results agree to
 * float32 rounding (tests/test_distill_so.c against kornia 0.6.3, MTT's pinned version).
 */
#ifndef BEARD_ZCA_H
#define BEARD_ZCA_H

#include "../core/common.h"

typedef struct {
    int D;        // values per image
    double eps;
    float *mean;  // (D)
    float *T;     // (D, D) symmetric
    float *T_inv; // (D, D) symmetric
} Zca;

// fits on x (N, D); N >= 2. Returns 0, or -1 with e set (out of memory, LAPACK failure).
int zca_fit(Zca *z, const float *x, int N, int D, double eps, Err *e);
// out = (x - mean) T for N images (out may not alias x)
void zca_whiten(const Zca *z, float *out, const float *x, int N);
// out = y T_inv + mean (out may not alias y)
void zca_unwhiten(const Zca *z, float *out, const float *y, int N);
void zca_free(Zca *z);

#endif
