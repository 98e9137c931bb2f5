/*
 * svhn.c: SVHN (Netzer et al., "Reading Digits in Natural Images with Unsupervised
 * Feature Learning", 2011), the cropped-digits format, as torchvision.datasets.SVHN
 * reads it: train_32x32.mat and test_32x32.mat (MATLAB v5 files, or v7.3/HDF5), read
 * with libmatio.
 *
 * Each file holds X, uint8 of MATLAB shape (32, 32, 3, N), and y, the labels (N, 1),
 * 1..10 with 10 standing for the digit 0. torchvision takes
 * np.transpose(X, (3, 2, 0, 1)), which is image n, channel c, row i, column j =
 * X(i, j, c, n), and maps label 10 to 0; beard does the same. MATLAB arrays are
 * column-major, so X(i, j, c, n) sits at i + 32 j + 1024 c + 3072 n in the file's data.
 *
 * Only the first `limit` images are read (a hyperslab of X) when limit > 0. The
 * extra_32x32.mat split is not read: DC and BEARD use train and test only.
 */
#include <matio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/file.h"
#include "dataset.h"

// matio reports problems through its logger; keep the last message for our error
static _Thread_local char mat_msg[256];

static void mat_log(int level, char *message) {
    (void)level;
    snprintf(mat_msg, sizeof(mat_msg), "%s", message ? message : "");
}

static int read_labels(mat_t *mat, matvar_t *v, size_t n, int *labels, const char *path, Err *e) {
    if (v->isComplex || v->rank < 1 || v->rank > 2) return err_set(e, "%s: y is not a label vector", path);
    size_t numel = 1;
    for (int d = 0; d < v->rank; d++) numel *= v->dims[d];
    if (numel < n) return err_set(e, "%s: %zu labels for %zu images", path, numel, n);
    double *buf = malloc(sizeof(double) * (n ? n : 1));
    if (!buf) return err_set(e, "out of memory");
    // matio converts the stored class to the one we ask for when reading linearly with
    // a matching class_type; read in the variable's own class and convert here instead
    size_t esz = Mat_SizeOfClass(v->class_type);
    if (esz == 0 || esz > 8) {
        free(buf);
        return err_set(e, "%s: y has an unsupported MATLAB class", path);
    }
    uint8_t *raw = malloc(esz * (n ? n : 1));
    if (!raw || (n && Mat_VarReadDataLinear(mat, v, raw, 0, 1, (int)n))) {
        free(raw), free(buf);
        return err_set(e, "%s: cannot read y%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = raw + i * esz;
        switch (v->class_type) {
        case MAT_C_DOUBLE: buf[i] = *(const double *)p; break;
        case MAT_C_SINGLE: buf[i] = *(const float *)p; break;
        case MAT_C_UINT8: buf[i] = *p; break;
        case MAT_C_INT8: buf[i] = *(const int8_t *)p; break;
        case MAT_C_UINT16: buf[i] = *(const uint16_t *)p; break;
        case MAT_C_INT16: buf[i] = *(const int16_t *)p; break;
        case MAT_C_UINT32: buf[i] = *(const uint32_t *)p; break;
        case MAT_C_INT32: buf[i] = *(const int32_t *)p; break;
        case MAT_C_INT64: buf[i] = (double)*(const int64_t *)p; break;
        case MAT_C_UINT64: buf[i] = (double)*(const uint64_t *)p; break;
        default: free(raw), free(buf); return err_set(e, "%s: y has an unsupported MATLAB class", path);
        }
    }
    free(raw);
    for (size_t i = 0; i < n; i++) {
        double l = buf[i];
        if (!(l >= 0 && l <= 10) || l != (int)l) {
            free(buf);
            return err_set(e, "%s: label %g of image %zu is not a digit 1..10", path, l, i);
        }
        labels[i] = l == 10 ? 0 : (int)l; // torchvision: np.place(labels, labels == 10, 0)
    }
    free(buf);
    return 0;
}

int svhn_load(Dataset *ds, const char *dir, int train, long limit, Err *e) {
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, train ? "train_32x32.mat" : "test_32x32.mat");
    mat_msg[0] = 0;
    Mat_LogInitFunc("beard", mat_log);
    // matio opens by path: check first that it is a regular file (a FIFO would block),
    // and keep its size to bound what its header may claim
    struct stat st;
    if (file_check_regular(path, e) || stat(path, &st) != 0) return -1;
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat) return err_set(e, "cannot open %s as a MATLAB file%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
    int rc = -1;
    matvar_t *X = Mat_VarReadInfo(mat, "X"), *y = Mat_VarReadInfo(mat, "y");
    if (!X || !y) {
        err_set(e, "%s has no %s variable", path, !X ? "X" : "y");
        goto done;
    }
    if (X->rank != 4 || X->dims[0] != 32 || X->dims[1] != 32 || X->dims[2] != 3 || X->class_type != MAT_C_UINT8 ||
        X->isComplex) {
        err_set(e, "%s: X must be uint8 of shape (32, 32, 3, N)", path);
        goto done;
    }
    size_t n = X->dims[3];
    if (limit > 0 && n > (size_t)limit) n = (size_t)limit;
    // deflate expands at most ~1030:1; a header claiming more images than the file can
    // hold is refused before anything is allocated
    if (n > (size_t)1 << 24 || (double)n * 3072 > 1100.0 * (double)st.st_size + (1 << 20)) {
        err_set(e, "%s: implausible image count %zu for a file of %lld bytes", path, n, (long long)st.st_size);
        goto done;
    }
    size_t per = 3072;
    uint8_t *raw = malloc(n * per + 1);
    ds->images = malloc(n * per + 1);
    ds->labels = malloc(n * sizeof(int) + 1);
    if (!raw || !ds->images || !ds->labels) {
        free(raw);
        err_set(e, "out of memory loading %zu SVHN images", n);
        goto done;
    }
    int start[4] = {0, 0, 0, 0}, stride[4] = {1, 1, 1, 1}, edge[4] = {32, 32, 3, (int)n};
    if (n && Mat_VarReadData(mat, X, raw, start, stride, edge)) {
        free(raw);
        err_set(e, "%s: cannot read X%s%s", path, mat_msg[0] ? ": " : "", mat_msg);
        goto done;
    }
    // column-major (i, j, c, n) -> (n, c, i, j)
    for (size_t k = 0; k < n; k++)
        for (int c = 0; c < 3; c++) {
            const uint8_t *src = raw + k * per + (size_t)c * 1024;
            uint8_t *dst = ds->images + k * per + (size_t)c * 1024;
            for (int i = 0; i < 32; i++)
                for (int j = 0; j < 32; j++) dst[i * 32 + j] = src[j * 32 + i];
        }
    free(raw);
    if (read_labels(mat, y, n, ds->labels, path, e)) goto done;
    ds->n = (int)n;
    static const char *const names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    if (dataset_set_class_names(ds, names, 10, e)) goto done;
    rc = 0;
done:
    if (X) Mat_VarFree(X);
    if (y) Mat_VarFree(y);
    Mat_Close(mat);
    return rc;
}
