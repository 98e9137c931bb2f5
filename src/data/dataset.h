/*
 * dataset.h: the real datasets BEARD trains and evaluates on (the test sets that attacks
 * run against, the train sets that distillation methods start from), held as uint8
 * images exactly as the files store them.
 *
 * Conversion to float is torchvision's ToTensor followed by Normalize, in float32 as
 * torch computes it: x = (float)u8 / 255.0f; x = (x - mean[c]) / std[c]. The constants
 * are those of DC's utils.py get_dataset (VICO-UoE/DatasetCondensation), which BEARD and
 * every method in its model pool use; note that CIFAR-10's std is (0.2023, 0.1994,
 * 0.2010), not the (0.2470, 0.2435, 0.2616) computed from the data.
 *
 * Formats: CIFAR-10/100 in the official binary layout or as the python pickle batches;
 * MNIST and FashionMNIST idx files, gzipped or not; SVHN's train_32x32.mat/test_32x32.mat
 * (MATLAB files, read with libmatio: svhn.c); TinyImageNet as DC's tinyimagenet.pt or the
 * official tiny-imagenet-200 JPEG tree (tinyimagenet.c).
 * `dir` may be the folder holding the files or its parent (cifar-10-batches-bin,
 * cifar-10-batches-py, cifar-100-binary, cifar-100-python, MNIST/raw, FashionMNIST/raw,
 * tiny-imagenet-200).
 */
#ifndef BEARD_DATASET_H
#define BEARD_DATASET_H

#include <stdint.h>

#include "../core/common.h"

typedef struct {
    const char *name; // canonical, as DC spells it: "CIFAR10", "MNIST", ...
    int c, h, w, n_classes;
    float mean[3], std[3];
} DatasetInfo;

// case-insensitive ('-' and '_' ignored): cifar10, cifar100, mnist, fashionmnist, svhn,
// tinyimagenet; NULL if unknown
const DatasetInfo *dataset_info(const char *name);
// dataset names compare equal ignoring case, '-' and '_' (cifar10 = CIFAR-10)
int dataset_name_eq(const char *a, const char *b);

typedef struct {
    char name[32];
    int n, c, h, w, n_classes;
    uint8_t *images;    // (n, c, h, w)
    int *labels;        // (n), each in [0, n_classes)
    char **class_names; // n_classes entries, or NULL when the files carry none
} Dataset;

// Loads the train (train != 0) or test split; at most `limit` images when limit > 0,
// taken from the start in file order. ds is zeroed first; dataset_free it afterwards
// (also after a failure).
int dataset_load(Dataset *ds, const char *name, const char *dir, int train, long limit, Err *e);
void dataset_free(Dataset *ds);

// images [start, start + count) as float32 (count, c, h, w): ToTensor, then Normalize
// with the dataset's mean/std when normalize != 0
void dataset_to_float(const Dataset *ds, int start, int count, float *out, int normalize);

// the loaders behind dataset_load; ds->name/c/h/w/n_classes are already set
int cifar_load(Dataset *ds, const char *dir, int train, long limit, Err *e);
int mnist_load(Dataset *ds, const char *dir, int train, long limit, Err *e);
int tinyimagenet_load(Dataset *ds, const char *dir, int train, long limit, Err *e);

int svhn_load(Dataset *ds, const char *dir, int train, long limit, Err *e);

// shared by the loaders: a copy of the first n_classes names, or an error
int dataset_set_class_names(Dataset *ds, const char *const *names, int n, Err *e);

// the entries of dir that are folders (want_dirs) or regular files, sorted by name (as
// Python's sorted() orders them), hidden ones skipped (imagefolder.c)
typedef struct {
    char **items;
    int n, cap;
} NameList;
int name_list_dir(const char *dir, int want_dirs, NameList *out, Err *e);
void name_list_free(NameList *s);

#endif
