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
#include <unistd.h>
#include <zlib.h>

#include "../io/file.h"
#include "dataset.h"

// ----------------------------------------------------------------------------
// A look at a MATLAB v5 file's variable headers before matio reads it. matio trusts the
// header: a 6 KB file claiming a matrix of 450 million dimensions made it calloc 3.6 GB
// (found by fuzz_dataset). Every top-level variable (miMATRIX, or miCOMPRESSED holding
// one, whose first bytes are inflated here) must be a numeric matrix of rank 2 to 4 whose
// size the file can hold (deflate expands at most ~1030:1). v7.3 files are HDF5 and are
// left to HDF5; a file without a v5/v7.3 header (v4, or anything else) is refused.

enum { MI_INT32 = 5, MI_UINT32 = 6, MI_MATRIX = 14, MI_COMPRESSED = 15 };

static uint32_t rd32(const uint8_t *p, int swap) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

// a miMATRIX element's content (after its tag): flags, dims, name
static int check_matrix(const uint8_t *p, size_t n, int swap, double file_bytes, const char *path, Err *e) {
    if (n < 16 + 8) return err_set(e, "%s: truncated MATLAB matrix header", path);
    if (rd32(p, swap) != MI_UINT32 || rd32(p + 4, swap) != 8) return err_set(e, "%s: bad MATLAB array flags", path);
    int cls = (int)(rd32(p + 8, swap) & 0xff);
    if (cls < 6 || cls > 15) return err_set(e, "%s: a MATLAB variable of class %d (SVHN files hold numeric matrices)", path, cls);
    uint32_t dt = rd32(p + 16, swap), db = rd32(p + 20, swap);
    if ((dt & 0xffff0000u) || dt != MI_INT32 || db % 4 || db / 4 < 2 || db / 4 > 4 || n < 24 + (size_t)db)
        return err_set(e, "%s: implausible MATLAB dimensions (%u bytes of type %u)", path, db, dt & 0xffff);
    double numel = 1;
    for (uint32_t k = 0; k < db / 4; k++) numel *= (double)rd32(p + 24 + 4 * k, swap);
    if (numel > 1100.0 * file_bytes + (1 << 20))
        return err_set(e, "%s: a MATLAB matrix of %.0f elements in a file of %.0f bytes", path, numel, file_bytes);
    return 0;
}

static int precheck_mat(const char *path, Err *e) {
    int fd = file_open_regular_fd(path, e);
    if (fd < 0) return -1;
    struct stat st;
    uint8_t hdr[128];
    int rc = 0;
    if (fstat(fd, &st) != 0 || pread(fd, hdr, 128, 0) != 128) {
        rc = err_set(e, "%s is too short for a MATLAB file", path);
        goto done;
    }
    // matio takes a file as v5 only when its endian mark is exactly "IM" or "MI" and its
    // version 0x0100 (0x0200: v7.3), and reads anything else as MATLAB v4, trusting the v4
    // header's name length (fuzz_dataset: a 342-byte v4 file made Mat_Open malloc 2 GB, and
    // a 244-byte one marked "II" 1.27 GB). SVHN comes as v5 or v7.3, so the same test is
    // applied here and everything else refused.
    int le = hdr[126] == 'I' && hdr[127] == 'M', swap = hdr[126] == 'M' && hdr[127] == 'I'; // "MI": big-endian
    unsigned ver = swap ? (unsigned)(hdr[124] << 8 | hdr[125]) : (unsigned)(hdr[124] | hdr[125] << 8);
    if ((!le && !swap) || (ver != 0x0100 && ver != 0x0200)) {
        rc = err_set(e, "%s is not a MATLAB v5 or v7.3 file (no MATLAB header; v4 files are not read)", path);
        goto done;
    }
    if (ver == 0x0200) goto done; // v7.3: HDF5
    double file_bytes = (double)st.st_size;
    off_t pos = 128;
    while (!rc && pos + 8 <= st.st_size) {
        uint8_t tag[8];
        if (pread(fd, tag, 8, pos) != 8) break;
        uint32_t type = rd32(tag, swap), bytes = rd32(tag + 4, swap);
        if (type & 0xffff0000u) { // a small element: its data is in the tag
            pos += 8;
            continue;
        }
        if ((off_t)bytes > st.st_size - pos - 8) {
            rc = err_set(e, "%s: a MATLAB element of %u bytes runs past the end of the file", path, bytes);
            break;
        }
        uint8_t head[256], z[4096];
        if (type == MI_MATRIX) {
            ssize_t got = pread(fd, head, bytes < sizeof(head) ? bytes : sizeof(head), pos + 8);
            rc = check_matrix(head, got > 0 ? (size_t)got : 0, swap, file_bytes, path, e);
        } else if (type == MI_COMPRESSED) {
            ssize_t zn = pread(fd, z, bytes < sizeof(z) ? bytes : sizeof(z), pos + 8);
            z_stream zs;
            memset(&zs, 0, sizeof(zs));
            if (zn <= 0 || inflateInit(&zs) != Z_OK) {
                rc = err_set(e, "%s: an empty compressed MATLAB variable", path);
                break;
            }
            zs.next_in = z, zs.avail_in = (uInt)zn;
            zs.next_out = head, zs.avail_out = sizeof(head);
            int zr = inflate(&zs, Z_SYNC_FLUSH);
            size_t got = sizeof(head) - zs.avail_out;
            inflateEnd(&zs);
            if ((zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) || got < 8)
                rc = err_set(e, "%s: a compressed MATLAB variable does not inflate", path);
            else if (rd32(head, swap) == MI_MATRIX)
                rc = check_matrix(head + 8, got - 8, swap, file_bytes, path, e);
        }
        pos += 8 + (off_t)bytes;
        if (type != MI_COMPRESSED) pos = (pos + 7) & ~(off_t)7; // 8-byte aligned, compressed data is not
    }
done:
    close(fd);
    return rc;
}

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
    if (file_check_regular(path, e) || stat(path, &st) != 0 || precheck_mat(path, e)) return -1;
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
