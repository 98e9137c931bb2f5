/*
 * cifar.c: CIFAR-10 and CIFAR-100 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html)
 * in both official layouts.
 *
 * Binary: records of <label byte> (CIFAR-10) or <coarse byte><fine byte> (CIFAR-100)
 * followed by 3072 bytes, the red, green and blue 32x32 planes: exactly the (c, h, w)
 * order beard uses. Files data_batch_1..5.bin and test_batch.bin, or train.bin and
 * test.bin; class names in batches.meta.txt or fine_label_names.txt. We use fine labels,
 * as torchvision.datasets.CIFAR100 does.
 *
 * Python: pickled dicts (Python 2 protocol 2, read through the restricted unpickler)
 * with 'data' a uint8 ndarray (N, 3072) and 'labels' or 'fine_labels' a list; class
 * names in batches.meta ('label_names') or meta ('fine_label_names').
 *
 * A file that is not a whole number of records is an error; any whole number is fine
 * (test copies of the data are often cut short).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/file.h"
#include "../io/pickle.h"
#include "dataset.h"

#define CIFAR_PIXELS 3072

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void join(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

// images/labels growth shared by both layouts
static int grow(Dataset *ds, size_t add, Err *e) {
    size_t n = (size_t)ds->n + add;
    if (n > (size_t)1 << 28) return err_set(e, "too many images");
    uint8_t *im = realloc(ds->images, n * CIFAR_PIXELS);
    if (!im) return err_set(e, "out of memory loading %zu images", n);
    ds->images = im;
    int *lb = realloc(ds->labels, n * sizeof(int));
    if (!lb) return err_set(e, "out of memory loading %zu images", n);
    ds->labels = lb;
    return 0;
}

static int read_bin(Dataset *ds, const char *path, int cifar100, long limit, Err *e) {
    size_t rec = (size_t)CIFAR_PIXELS + (cifar100 ? 2 : 1);
    FILE *f = file_open_regular(path, e);
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (size_t)st.st_size % rec != 0) {
        fclose(f);
        return err_set(e, "%s: %lld bytes is not a whole number of %zu-byte records", path, (long long)st.st_size, rec);
    }
    size_t count = (size_t)st.st_size / rec;
    if (limit > 0 && count > (size_t)(limit - ds->n)) count = (size_t)(limit - ds->n);
    if (grow(ds, count, e)) {
        fclose(f);
        return -1;
    }
    uint8_t buf[CIFAR_PIXELS + 2];
    for (size_t i = 0; i < count; i++) {
        if (fread(buf, 1, rec, f) != rec) {
            fclose(f);
            return err_set(e, "%s: read error at record %zu", path, i);
        }
        ds->labels[ds->n] = buf[cifar100 ? 1 : 0];
        memcpy(ds->images + (size_t)ds->n * CIFAR_PIXELS, buf + rec - CIFAR_PIXELS, CIFAR_PIXELS);
        ds->n++;
    }
    fclose(f);
    return 0;
}

static int read_py(Dataset *ds, const char *path, int cifar100, long limit, Err *e) {
    PickleValue *root;
    if (pickle_load_file(path, &root, e)) return -1;
    int rc = -1;
    const PickleValue *data = pickle_dict_get(root, "data");
    const PickleValue *labels = pickle_dict_get(root, cifar100 ? "fine_labels" : "labels");
    if (!pickle_is(data, PICKLE_TENSOR) || data->tensor->dtype != DTYPE_U8 || data->tensor->ndim < 1 ||
        data->tensor->numel != (size_t)data->tensor->shape[0] * CIFAR_PIXELS) {
        err_set(e, "%s: 'data' is not a uint8 array of N x 3072 pixels", path);
        goto done;
    }
    size_t count = (size_t)data->tensor->shape[0];
    int label_list = pickle_is(labels, PICKLE_LIST) && pickle_len(labels) == count;
    int label_arr = pickle_is(labels, PICKLE_TENSOR) && labels->tensor->numel == count;
    if (!label_list && !label_arr) {
        err_set(e, "%s: '%s' is not a list of %zu labels", path, cifar100 ? "fine_labels" : "labels", count);
        goto done;
    }
    int64_t *arr = label_arr ? tensor_to_i64(labels->tensor, e) : NULL;
    if (label_arr && !arr) goto done;
    if (limit > 0 && count > (size_t)(limit - ds->n)) count = (size_t)(limit - ds->n);
    if (grow(ds, count, e)) {
        xfree(arr);
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        int64_t v;
        if (arr) {
            v = arr[i];
        } else if (pickle_as_int(pickle_item(labels, i), &v, e)) {
            err_wrap(e, "%s: label %zu", path, i);
            goto done;
        }
        if (v < 0 || v >= ds->n_classes) {
            xfree(arr);
            err_set(e, "%s: label %lld of image %zu is outside [0, %d)", path, (long long)v, i, ds->n_classes);
            goto done;
        }
        ds->labels[ds->n] = (int)v;
        memcpy(ds->images + (size_t)ds->n * CIFAR_PIXELS, (const uint8_t *)data->tensor->data + i * CIFAR_PIXELS,
               CIFAR_PIXELS);
        ds->n++;
    }
    xfree(arr);
    rc = 0;
done:
    pickle_free(root);
    return rc;
}

// class names, one per line; silently skipped when the file is absent or short
static void names_from_text(Dataset *ds, const char *path) {
    FILE *f = file_open_regular(path, NULL);
    if (!f) return;
    char line[256], *names[256];
    int n = 0;
    while (n < ds->n_classes && fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (len == 0) continue;
        if (!(names[n] = strdup(line))) break;
        n++;
    }
    fclose(f);
    if (n == ds->n_classes) dataset_set_class_names(ds, (const char *const *)names, n, NULL);
    for (int k = 0; k < n; k++) free(names[k]);
}

static void names_from_pickle(Dataset *ds, const char *path, const char *key) {
    PickleValue *root;
    if (!is_file(path) || pickle_load_file(path, &root, NULL)) return;
    const PickleValue *list = pickle_dict_get(root, key);
    const char *names[256];
    int n = 0;
    for (size_t k = 0; k < pickle_len(list) && n < ds->n_classes && n < 256; k++) {
        const PickleValue *s = pickle_item(list, k);
        if (!pickle_is(s, PICKLE_STR) && !pickle_is(s, PICKLE_BYTES)) break;
        names[n++] = s->s;
    }
    if (n == ds->n_classes) dataset_set_class_names(ds, names, n, NULL);
    pickle_free(root);
}

int cifar_load(Dataset *ds, const char *dir, int train, long limit, Err *e) {
    int c100 = ds->n_classes == 100;
    const char *subdirs[] = {"", c100 ? "cifar-100-binary" : "cifar-10-batches-bin",
                             c100 ? "cifar-100-python" : "cifar-10-batches-py"};
    char folder[1024], path[1100];
    for (int s = 0; s < 3; s++) {
        if (s == 0) snprintf(folder, sizeof(folder), "%s", dir);
        else join(folder, sizeof(folder), dir, subdirs[s]);
        // binary layout
        join(path, sizeof(path), folder, c100 ? "test.bin" : "test_batch.bin");
        char trainbin[1100];
        join(trainbin, sizeof(trainbin), folder, c100 ? "train.bin" : "data_batch_1.bin");
        if (is_file(path) || is_file(trainbin)) {
            int nfiles = train && !c100 ? 5 : 1;
            for (int k = 0; k < nfiles && (limit <= 0 || ds->n < limit); k++) {
                char name[64];
                if (c100) snprintf(name, sizeof(name), train ? "train.bin" : "test.bin");
                else if (train) snprintf(name, sizeof(name), "data_batch_%d.bin", k + 1);
                else snprintf(name, sizeof(name), "test_batch.bin");
                join(path, sizeof(path), folder, name);
                if (read_bin(ds, path, c100, limit, e)) return -1;
            }
            join(path, sizeof(path), folder, c100 ? "fine_label_names.txt" : "batches.meta.txt");
            names_from_text(ds, path);
            return 0;
        }
        // python layout
        join(path, sizeof(path), folder, c100 ? "test" : "test_batch");
        join(trainbin, sizeof(trainbin), folder, c100 ? "train" : "data_batch_1");
        if (is_file(path) || is_file(trainbin)) {
            int nfiles = train && !c100 ? 5 : 1;
            for (int k = 0; k < nfiles && (limit <= 0 || ds->n < limit); k++) {
                char name[64];
                if (c100) snprintf(name, sizeof(name), train ? "train" : "test");
                else if (train) snprintf(name, sizeof(name), "data_batch_%d", k + 1);
                else snprintf(name, sizeof(name), "test_batch");
                join(path, sizeof(path), folder, name);
                if (read_py(ds, path, c100, limit, e)) return -1;
            }
            join(path, sizeof(path), folder, c100 ? "meta" : "batches.meta");
            names_from_pickle(ds, path, c100 ? "fine_label_names" : "label_names");
            return 0;
        }
    }
    return err_set(e, "no %s files in %s (expected %s or %s, or those folders' contents)", ds->name, dir, subdirs[1],
                   subdirs[2]);
}
