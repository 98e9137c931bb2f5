/*
 * mnist.c: MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747)
 * in the idx format: a big-endian header (magic 0x00000803 for images followed by count,
 * rows, cols; 0x00000801 for labels followed by count) and then raw bytes. The files are
 * read through zlib's gzread, which also reads files that are not compressed, so
 * `t10k-images-idx3-ubyte` and `t10k-images-idx3-ubyte.gz` both work.
 *
 * The header's count is not trusted for allocation: images are read in growing chunks,
 * so a lying header costs at most what the file really holds.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../io/file.h"
#include "dataset.h"

static const char *fashion_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
static const char *digit_classes[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static int read_exact(gzFile f, void *p, size_t n) {
    uint8_t *q = p;
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int r = gzread(f, q, chunk);
        if (r <= 0) return -1;
        q += r;
        n -= (size_t)r;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// the first of path and path.gz that exists
static int find_file(char *out, size_t cap, const char *folder, const char *base) {
    struct stat st;
    if (strlen(folder) + strlen(base) + 5 > cap) return -1;
    memcpy(out, folder, strlen(folder) + 1);
    strcat(out, "/");
    strcat(out, base);
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    strcat(out, ".gz");
    if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) return 0;
    return -1;
}

// reads up to `want` items of item_bytes each, in growing chunks
static int read_items(gzFile f, const char *path, size_t want, size_t item_bytes, uint8_t **out, Err *e) {
    size_t cap = 0, got = 0;
    uint8_t *buf = NULL;
    while (got < want) {
        size_t chunk = want - got < 4096 ? want - got : 4096;
        if (got + chunk > cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            if (ncap > want) ncap = want;
            if (ncap < got + chunk) ncap = got + chunk;
            uint8_t *p = realloc(buf, ncap * item_bytes);
            if (!p) {
                free(buf);
                return err_set(e, "out of memory reading %s", path);
            }
            buf = p;
            cap = ncap;
        }
        if (read_exact(f, buf + got * item_bytes, chunk * item_bytes)) {
            free(buf);
            return err_set(e, "%s is truncated (header promises %zu items, file ends before item %zu)", path, want, got + chunk);
        }
        got += chunk;
    }
    *out = buf;
    return 0;
}

int mnist_load(Dataset *ds, const char *dir, int train, long limit, Err *e) {
    int fashion = !strcmp(ds->name, "FashionMNIST");
    // the folder itself, torchvision's layout, and a plain subfolder
    char folders[5][1024];
    snprintf(folders[0], sizeof(folders[0]), "%s", dir);
    snprintf(folders[1], sizeof(folders[1]), "%s/%s/raw", dir, fashion ? "FashionMNIST" : "MNIST");
    snprintf(folders[2], sizeof(folders[2]), "%s/raw", dir);
    snprintf(folders[3], sizeof(folders[3]), "%s/%s", dir, fashion ? "FashionMNIST" : "MNIST");
    snprintf(folders[4], sizeof(folders[4]), "%s/%s", dir, fashion ? "fashion-mnist" : "mnist");
    const char *split = train ? "train" : "t10k";
    char ipath[1100], lpath[1100], base[64];
    int found = 0;
    for (int k = 0; k < 5 && !found; k++) {
        snprintf(base, sizeof(base), "%s-images-idx3-ubyte", split);
        if (find_file(ipath, sizeof(ipath), folders[k], base)) continue;
        snprintf(base, sizeof(base), "%s-labels-idx1-ubyte", split);
        if (find_file(lpath, sizeof(lpath), folders[k], base)) continue;
        found = 1;
    }
    if (!found) return err_set(e, "no %s-images-idx3-ubyte[.gz] and labels in %s (or its MNIST/raw)", split, dir);

    // regular files only (a FIFO would hang gzopen), handed to zlib as descriptors
    int fdi = file_open_regular_fd(ipath, e), fdl = fdi < 0 ? -1 : file_open_regular_fd(lpath, e);
    if (fdi < 0 || fdl < 0) {
        if (fdi >= 0) close(fdi);
        return -1;
    }
    gzFile fi = gzdopen(fdi, "rb"), fl = gzdopen(fdl, "rb");
    if (!fi) close(fdi);
    if (!fl) close(fdl);
    uint8_t hi[16], hl[8];
    int rc = -1;
    if (!fi || !fl) {
        err_set(e, "cannot open %s", !fi ? ipath : lpath);
        goto done;
    }
    if (read_exact(fi, hi, 16) || be32(hi) != 0x00000803) {
        err_set(e, "%s is not an idx3 image file (bad header)", ipath);
        goto done;
    }
    if (read_exact(fl, hl, 8) || be32(hl) != 0x00000801) {
        err_set(e, "%s is not an idx1 label file (bad header)", lpath);
        goto done;
    }
    uint32_t n = be32(hi + 4), rows = be32(hi + 8), cols = be32(hi + 12);
    if (rows != (uint32_t)ds->h || cols != (uint32_t)ds->w) {
        err_set(e, "%s holds %ux%u images, expected %dx%d", ipath, rows, cols, ds->h, ds->w);
        goto done;
    }
    if (be32(hl + 4) != n) {
        err_set(e, "%s has %u images but %s has %u labels", ipath, n, lpath, be32(hl + 4));
        goto done;
    }
    size_t want = n;
    if (limit > 0 && want > (size_t)limit) want = (size_t)limit;
    if (want > (size_t)1 << 28) {
        err_set(e, "%s claims %zu images", ipath, want);
        goto done;
    }
    uint8_t *labels8 = NULL;
    if (read_items(fi, ipath, want, (size_t)rows * cols, &ds->images, e) ||
        read_items(fl, lpath, want, 1, &labels8, e))
        goto done;
    ds->labels = malloc((want ? want : 1) * sizeof(int));
    if (!ds->labels) {
        free(labels8);
        err_set(e, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < want; i++) ds->labels[i] = labels8[i];
    free(labels8);
    ds->n = (int)want;
    rc = dataset_set_class_names(ds, fashion ? fashion_classes : digit_classes, 10, e);
done:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return rc;
}
