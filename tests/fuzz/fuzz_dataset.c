/*
 * fuzz_dataset.c: libFuzzer target for the dataset readers: CIFAR-10/100 binary and
 * python batches, MNIST idx (plain and gzip), TinyImageNet (DC's tinyimagenet.pt) and
 * SVHN's MATLAB files. The first byte picks the format; the rest is written where
 * dataset_load looks for it (for MNIST, the second and third bytes split it into the
 * image and label files). Whatever loads must be internally consistent: labels in
 * range, images converted to floats without a fault.
 * Seeds: tests/fuzz/corpus_dataset/ (tests/scripts/gen_fuzz_seeds.py).
 */
#include "../../src/data/dataset.h"
#include "fuzz_common.h"

static void check(Dataset *ds) {
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes) abort();
    if (ds->n > 0) {
        size_t D = (size_t)ds->c * ds->h * ds->w;
        float *x = malloc(sizeof(float) * D * (ds->n < 4 ? ds->n : 4));
        if (x) dataset_to_float(ds, 0, ds->n < 4 ? ds->n : 4, x, 1);
        free(x);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] % 8;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    static const struct {
        const char *dataset, *root, *file;
    } one[] = {
        {"cifar10", "c10bin", "c10bin/cifar-10-batches-bin/test_batch.bin"},
        {"cifar10", "c10py", "c10py/cifar-10-batches-py/test_batch"},
        {"cifar100", "c100bin", "c100bin/cifar-100-binary/test.bin"},
        {"cifar100", "c100py", "c100py/cifar-100-python/test"},
        {"tinyimagenet", "tiny", "tiny/tinyimagenet.pt"},
        {"svhn", "svhn", "svhn/test_32x32.mat"},
    };
    char dir[512];
    if (kind < 6) {
        fuzz_put(one[kind].file, p, n);
        snprintf(dir, sizeof(dir), "%s/%s", fuzz_dir(), one[kind].root);
        Dataset ds;
        Err e;
        if (dataset_load(&ds, one[kind].dataset, dir, 0, 0, &e) == 0) check(&ds);
        dataset_free(&ds);
    } else {
        // MNIST: images and labels, split at the offset the next two bytes give
        if (n < 2) return 0;
        size_t cut = ((size_t)p[0] << 8 | p[1]) % (n - 1);
        p += 2, n -= 2;
        int gz = kind == 7;
        fuzz_put(gz ? "mnist/t10k-images-idx3-ubyte.gz" : "mnist/t10k-images-idx3-ubyte", p, cut);
        fuzz_put(gz ? "mnist/t10k-labels-idx1-ubyte.gz" : "mnist/t10k-labels-idx1-ubyte", p + cut, n - cut);
        snprintf(dir, sizeof(dir), "%s/mnist", fuzz_dir());
        Dataset ds;
        Err e;
        if (dataset_load(&ds, "mnist", dir, 0, 0, &e) == 0) check(&ds);
        dataset_free(&ds);
    }
    fuzz_clean();
    return 0;
}
