/*
 * zca.c: ZCA whitening (see zca.h). The covariance is one dsyrk over the centred data
 * in double, the decomposition LAPACK's dsyevd (eigenvalues ascending, eigenvectors in
 * the columns), both from OpenBLAS; the two transforms are applied with one sgemm each.
 */
#include "zca.h"

#include <cblas.h>

#include "../core/parallel.h"
#include <math.h>
#include <string.h>

// LAPACK (Fortran symbol, exported by OpenBLAS)
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info);

void zca_free(Zca *z) {
    xfree(z->mean), xfree(z->T), xfree(z->T_inv);
    memset(z, 0, sizeof(*z));
}

int zca_fit(Zca *z, const float *x, int N, int D, double eps, Err *e) {
    memset(z, 0, sizeof(*z));
    if (N < 2 || D < 1) return err_set(e, "ZCA needs at least 2 images (got %d)", N);
    size_t DD;
    if (!size_mul((size_t)D, (size_t)D, &DD)) return err_set(e, "ZCA: %d features is too many", D);
    double *mu = xcalloc(sizeof(double) * D), *xc = xmalloc(sizeof(double) * (size_t)N * D);
    double *C = xmalloc(sizeof(double) * DD), *S = xmalloc(sizeof(double) * D);
    z->mean = xmalloc(sizeof(float) * D), z->T = xmalloc(sizeof(float) * DD), z->T_inv = xmalloc(sizeof(float) * DD);
    int rc = -1;
    if (!mu || !xc || !C || !S || !z->mean || !z->T || !z->T_inv) {
        err_set(e, "out of memory fitting ZCA on %d x %d values", N, D);
        goto done;
    }
    z->D = D, z->eps = eps;
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) mu[d] += x[(size_t)i * D + d];
    for (int d = 0; d < D; d++) mu[d] /= N, z->mean[d] = (float)mu[d];
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) xc[(size_t)i * D + d] = x[(size_t)i * D + d] - mu[d];
    // the fit is a few large BLAS/LAPACK calls outside any parallel loop of ours: let them
    // use every thread, then go back to single-threaded BLAS (parallel.h)
    parallel_blas_threads(0);
    // C = xc^T xc / (N - 1), upper triangle in row-major = lower in LAPACK's column-major
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, N, 1.0 / (N - 1), xc, D, 0.0, C, D);
    xfree(xc), xc = NULL;
    int n = D, lwork = -1, liwork = -1, info = 0, iwq = 0;
    double wq = 0;
    dsyevd_("V", "L", &n, C, &n, S, &wq, &lwork, &iwq, &liwork, &info);
    lwork = (int)wq, liwork = iwq;
    double *work = xmalloc(sizeof(double) * (lwork > 0 ? lwork : 1));
    int *iwork = xmalloc(sizeof(int) * (liwork > 0 ? liwork : 1));
    if (!work || !iwork) {
        xfree(work), xfree(iwork);
        err_set(e, "out of memory for the ZCA eigendecomposition");
        goto done;
    }
    dsyevd_("V", "L", &n, C, &n, S, work, &lwork, iwork, &liwork, &info);
    xfree(work), xfree(iwork);
    if (info != 0) {
        err_set(e, "ZCA: the eigendecomposition failed (LAPACK dsyevd info %d)", info);
        goto done;
    }
    // the eigenvectors come back column-major, eigenvector k in C[k * D .. k * D + D);
    // T = U diag(f(S)) U^T: scale a copy of U by f, then one dgemm per transform
    double *Uf = xmalloc(sizeof(double) * DD), *Td = xmalloc(sizeof(double) * DD);
    if (!Uf || !Td) {
        xfree(Uf), xfree(Td);
        err_set(e, "out of memory for the ZCA transforms");
        goto done;
    }
    for (int inv = 0; inv < 2; inv++) {
        for (int k = 0; k < D; k++) {
            double s = S[k] < 0 ? 0.0 : S[k]; // rounding can leave tiny negative eigenvalues
            double f = inv ? sqrt(s + eps) : 1.0 / sqrt(s + eps);
            for (int d = 0; d < D; d++) Uf[(size_t)k * D + d] = C[(size_t)k * D + d] * f;
        }
        // Td (column-major) = Uf U^T: with U stored as (D x D) column-major, both are the
        // row-major (k, d) arrays Uf and C, and Td[d1][d2] = sum_k Uf[k][d1] C[k][d2]
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, D, 1.0, Uf, D, C, D, 0.0, Td, D);
        float *dst = inv ? z->T_inv : z->T;
        for (size_t i = 0; i < DD; i++) dst[i] = (float)Td[i];
    }
    xfree(Uf), xfree(Td);
    rc = 0;
done:
    parallel_blas_threads(1);
    xfree(mu), xfree(xc), xfree(C), xfree(S);
    if (rc) zca_free(z);
    return rc;
}

void zca_whiten(const Zca *z, float *out, const float *x, int N) {
    int D = z->D;
    float *xc = xmalloc(sizeof(float) * (size_t)N * D);
    if (!xc) { // no memory for the centred copy: one image at a time
        for (int i = 0; i < N; i++) {
            const float *xi = x + (size_t)i * D;
            float *oi = out + (size_t)i * D;
            for (int c = 0; c < D; c++) {
                double s = 0;
                for (int d = 0; d < D; d++) s += (double)(xi[d] - z->mean[d]) * z->T[(size_t)d * D + c];
                oi[c] = (float)s;
            }
        }
        return;
    }
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) xc[(size_t)i * D + d] = x[(size_t)i * D + d] - z->mean[d];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, D, 1.0f, xc, D, z->T, D, 0.0f, out, D);
    xfree(xc);
}

void zca_unwhiten(const Zca *z, float *out, const float *y, int N) {
    int D = z->D;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, D, D, 1.0f, y, D, z->T_inv, D, 0.0f, out, D);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) out[(size_t)i * D + d] += z->mean[d];
}
