/*
 * pool.h: BEARD's dataset pool, the distilled sets that dataset-distillation methods
 * release, loaded as what a model trains on: float images (n, c, h, w) in the model's
 * input space (mean/std-normalised, as DC-bench and BEARD train), with hard labels or a
 * soft-label matrix.
 *
 * Formats (pool_load tells them apart by content, not by name):
 *   - DC/DSA/DM `res_*.pt`: {'data': [[images, labels], ...], 'accs_all_exps': ...}, one
 *     [images, labels] pair per experiment; PoolOptions.exp picks one (default: the
 *     last, as DC-bench does; BEARD's train_model.py takes data[0]).
 *   - MTT: a folder (or a file-name prefix, as BEARD's data_file is) with images_best.pt
 *     and labels_best.pt, and optionally lr_best.pt, the learned 0-dim learning rate,
 *     which is returned in Pool.lr.
 *   - IDM/BACON: a plain pickle of the tuple (images, labels) in a .pkl, or the same pair
 *     in a res_*.pt; pool_unpack4 applies their 4-in-1 unpacking (BEARD's `aug`).
 *   - torch < 1.6 legacy files of any of the above (the io layer reads both formats).
 *   - a tensor pair in a dict: {'images'|'image_syn'|'x', 'labels'|'label_syn'|'y'}.
 *   - image folders, class_xxx/<image>.png or .jpg (SRe2L, CDA, DELT, G-VBSM):
 *     imagefolder.c.
 *   - the real training set (BEARD's src_dataset): pool_from_dataset.
 * Labels are hard (an integer vector) or soft (a float (n, classes) matrix, which is
 * kept in Pool.soft, with Pool.y its argmax for accuracy bookkeeping).
 *
 * The normalised-storage convention. DC, DSA, DM, MTT, IDM and BACON save their images
 * after the dataset's Normalize, i.e. exactly what the network consumed; beard uses float
 * tensors from .pt/.pkl files as they are (Pool.stored_normalised = 1) and does not
 * re-normalise them. This is the one place the convention is assumed: a method that
 * saves [0, 1] pixels in a float tensor would need --pixels (PoolOptions.pixels), which
 * normalises on load. uint8 tensors are always taken as pixels 0..255 and normalised.
 * Image folders hold pixels and are normalised with the dataset's mean/std, as
 * torchvision's ToTensor + Normalize would.
 */
#ifndef BEARD_POOL_H
#define BEARD_POOL_H

#include <stdint.h>

#include "../core/common.h"
#include "dataset.h"

typedef struct {
    char format[32]; // "res", "mtt", "pickle", "pair", "imagefolder", "dataset"
    int n, c, h, w;
    int n_classes;   // the dataset's classes (labels lie in [0, n_classes))
    float *x;        // (n, c, h, w) normalised images, owned; NULL when u8 is used
    const uint8_t *u8; // (n, c, h, w) pixels borrowed from a Dataset (pool_from_dataset)
    float mean[3], std[3]; // the dataset's Normalize constants (model space <-> pixels)
    int *y;          // (n) hard labels, owned (the argmax of soft when soft labels)
    float *soft;     // (n, n_classes) soft labels, owned, or NULL
    double lr;       // learned learning rate (MTT lr_best.pt); 0 when the file has none
    int exp, n_exps; // res layout: the experiment used, and how many the file holds
    int stored_normalised; // 1 when float images were taken as already normalised
    int unpacked;    // pool_unpack4 was applied
} Pool;

typedef struct {
    const DatasetInfo *info; // the dataset (classes, mean/std, expected image shape)
    int exp;                 // res layout: experiment index; negative counts from the end (-1: last)
    int pixels;              // float tensors hold [0, 1] pixels: normalise them on load
} PoolOptions;

// Loads a distilled set. The images must have the dataset's shape and the labels lie in
// its classes. pool_free afterwards (also after a failure).
int pool_load(Pool *p, const char *path, const PoolOptions *o, Err *e);
// The real training set as a pool (borrows ds->images: keep ds alive while p is used).
int pool_from_dataset(Pool *p, const Dataset *ds, const DatasetInfo *info, Err *e);
// image folders (imagefolder.c): class sub-folders in sorted order are classes 0, 1, ...
int pool_load_imagefolder(Pool *p, const char *dir, const DatasetInfo *info, Err *e);
void pool_free(Pool *p);

// IDM/BACON's 4-in-1 unpacking (BEARD eva_utils.number_sign_augment): every image's four
// (h/2, w/2) quadrants, in the order top-left, bottom-left, top-right, bottom-right, each
// upsampled x2 bilinearly (align_corners=False), concatenated batch-wise: quadrant q of
// image i becomes image q * n + i, with image i's label. h and w must be even.
int pool_unpack4(Pool *p, Err *e);

// Copies samples idx[0..n) into x (n, c, h, w), their labels into y (may be NULL) and
// their soft-label rows into soft (may be NULL; ignored when the pool has none).
void pool_gather(const Pool *p, const int *idx, int n, float *x, int *y, float *soft);

// Decodes a PNG or JPEG file (told apart by its signature) into 8-bit RGB, (h, w, 3)
// interleaved, as PIL's Image.open(path).convert('RGB') does (alpha dropped, gray and
// palette expanded). *rgb is xmalloc'ed.
int image_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, Err *e);
// Encodes 8-bit pixels (h, w, c) interleaved, c = 1 or 3, as ext "jpg" (libjpeg at PIL's
// Image.save defaults: quality 75, 4:2:0) or "png" (libpng), written atomically.
int image_write(const char *path, const uint8_t *px, int w, int h, int c, const char *ext, Err *e);
// The same, refusing from the header alone (before decoding or allocating anything) an
// image that is not want_w x want_h (when both are > 0) or is larger than
// IMAGE_MAX_SIDE per side or IMAGE_MAX_PIXELS in all; a file over IMAGE_MAX_FILE_BYTES
// (read whole before decoding; room for the largest allowed image stored uncompressed)
// is refused too. These are image_read_rgb's only limits.
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (1u << 26)
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 29)
int image_read_rgb_sized(const char *path, int want_w, int want_h, uint8_t **rgb, int *w, int *h, Err *e);

#endif
