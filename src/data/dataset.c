/*
 * dataset.c: the dataset table (shapes and DC's normalisation constants), dispatch to the
 * format loaders, and the uint8 -> float32 conversion (see dataset.h).
 */
#include "dataset.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const DatasetInfo datasets[] = {
    {"CIFAR10", 3, 32, 32, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2023f, 0.1994f, 0.2010f}},
    {"CIFAR100", 3, 32, 32, 100, {0.5071f, 0.4866f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}},
    {"MNIST", 1, 28, 28, 10, {0.1307f}, {0.3081f}},
    {"FashionMNIST", 1, 28, 28, 10, {0.2861f}, {0.3530f}},
    {"SVHN", 3, 32, 32, 10, {0.4377f, 0.4438f, 0.4728f}, {0.1980f, 0.2010f, 0.1970f}},
    {"TinyImageNet", 3, 64, 64, 200, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}},
};

int dataset_name_eq(const char *a, const char *b) {
    for (;;) {
        while (*a == '-' || *a == '_') a++;
        while (*b == '-' || *b == '_') b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

const DatasetInfo *dataset_info(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof(datasets) / sizeof(datasets[0]); i++)
        if (dataset_name_eq(name, datasets[i].name)) return &datasets[i];
    return NULL;
}

int dataset_set_class_names(Dataset *ds, const char *const *names, int n, Err *e) {
    if (n < ds->n_classes) return err_set(e, "%d class names for %d classes", n, ds->n_classes);
    char **cn = calloc((size_t)ds->n_classes, sizeof(char *));
    if (!cn) return err_set(e, "out of memory");
    for (int k = 0; k < ds->n_classes; k++) {
        if (!(cn[k] = strdup(names[k]))) {
            for (int j = 0; j < k; j++) free(cn[j]);
            free(cn);
            return err_set(e, "out of memory");
        }
    }
    ds->class_names = cn;
    return 0;
}

int dataset_load(Dataset *ds, const char *name, const char *dir, int train, long limit, Err *e) {
    memset(ds, 0, sizeof(*ds));
    const DatasetInfo *info = dataset_info(name);
    if (!info) return err_set(e, "unknown dataset '%s' (known: CIFAR10, CIFAR100, MNIST, FashionMNIST, SVHN, TinyImageNet)", name);
    if (!dir || strlen(dir) > 900) return err_set(e, "dataset folder path is missing or too long");
    snprintf(ds->name, sizeof(ds->name), "%s", info->name);
    ds->c = info->c, ds->h = info->h, ds->w = info->w, ds->n_classes = info->n_classes;
    int rc;
    if (!strcmp(info->name, "CIFAR10") || !strcmp(info->name, "CIFAR100")) rc = cifar_load(ds, dir, train, limit, e);
    else if (!strcmp(info->name, "MNIST") || !strcmp(info->name, "FashionMNIST")) rc = mnist_load(ds, dir, train, limit, e);
    else if (!strcmp(info->name, "TinyImageNet")) rc = tinyimagenet_load(ds, dir, train, limit, e);
    else rc = svhn_load(ds, dir, train, limit, e);
    if (rc) return -1;
    for (int i = 0; i < ds->n; i++)
        if (ds->labels[i] < 0 || ds->labels[i] >= ds->n_classes)
            return err_set(e, "%s label %d of image %d is outside [0, %d)", ds->name, ds->labels[i], i, ds->n_classes);
    return 0;
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    if (ds->class_names)
        for (int k = 0; k < ds->n_classes; k++) free(ds->class_names[k]);
    free(ds->class_names);
    memset(ds, 0, sizeof(*ds));
}

void dataset_to_float(const Dataset *ds, int start, int count, float *out, int normalize) {
    const DatasetInfo *info = dataset_info(ds->name);
    size_t plane = (size_t)ds->h * (size_t)ds->w;
    for (int i = 0; i < count; i++) {
        const uint8_t *src = ds->images + (size_t)(start + i) * (size_t)ds->c * plane;
        float *dst = out + (size_t)i * (size_t)ds->c * plane;
        for (int c = 0; c < ds->c; c++) {
            float m = info && normalize ? info->mean[c] : 0.0f, s = info && normalize ? info->std[c] : 1.0f;
            for (size_t k = 0; k < plane; k++) {
                float x = (float)src[(size_t)c * plane + k] / 255.0f;
                dst[(size_t)c * plane + k] = normalize ? (x - m) / s : x;
            }
        }
    }
}
