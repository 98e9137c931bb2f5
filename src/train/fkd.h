/*
 * fkd.h: FKD-style stored soft labels (Shen & Xing, "A Fast Knowledge Distillation
 * Framework", arXiv:2112.01528), in the layout G-VBSM's relabel writes them
 * (shaoshitong/G_VBSM_Dataset_Condensation `Branch_CIFAR_10/relabel/
 * generate_soft_label_with_db.py` + utils_fkd.py) and its train_FKD.py reads:
 *
 *   DIR/epoch_{e}/batch_{b}.tar = torch.save([coords, flip, mix_index, mix_lam, mix_bbox,
 *                                             soft_label, index])
 *     coords     (B, 4) float32: RandomResizedCrop's (i / H, j / W, h / H, w / W) per image
 *     flip       (B,) bool: RandomHorizontalFlip's outcome per image
 *     mix_index  (B,) int64 permutation of the batch, or None without mixing
 *     mix_lam    float (Beta draw), or None
 *     mix_bbox   [x1, y1, x2, y2] (CutMix's box, rand_bbox's dims 2 and 3), or None
 *     soft_label (B, K) float16 (--use-fp16) or float32: the mean logits of the teachers on
 *                the augmented, mixed batch (eval mode)
 *     index      (B,) int64: which images of the set the batch holds, in order
 * One file per batch of every epoch (shuffled anew each epoch); training replays epoch e's
 * files in order. SRe2L's ImageNet relabel writes the same list without `index` and
 * recovers the order from torch's seeded RandomSampler; those files are refused (beard's
 * generator is not torch's). Written scalars are Python floats and ints where the official
 * code pickles numpy scalars; torch.load reads both alike. With mixup, G-VBSM's generator
 * feeds the teachers the unmixed batch (its mixup returns a new tensor, CutMix mixes in
 * place); beard labels the mixed batch in both cases (CIFAR's scripts use CutMix, where the
 * two agree).
 */
#ifndef BEARD_FKD_H
#define BEARD_FKD_H

#include "recipe.h"

typedef struct {
    int B, K;
    float *coords;        // (B, 4)
    unsigned char *flip;  // (B)
    int *mix_index;       // (B) or NULL
    double lam;
    int has_lam, has_bbox;
    int bbox[4];
    float *logits;        // (B, K)
    int *index;           // (B)
} FkdBatch;

// The labels of `epochs` epochs for the images of pool, batches of `batch`, by the teachers'
// mean logits (eval mode) on RandomResizedCrop(scale (rrc_min, 1)) + flip + mix images.
int fkd_generate(const char *dir, const Pool *pool, Net *const *teachers, int n_teachers, int epochs, int batch,
                 RecipeMix mix, float mix_alpha, float rrc_min, int fp16, uint64_t seed, int progress, Err *e);
// epochs and batches per epoch in dir (epoch_0 .. epoch_{E-1}, batch_0 .. ) and the first
// batch's size
int fkd_info(const char *dir, int *epochs, int *batches, int *batch_size, Err *e);
// reads one batch file and checks it against the set it labels: n images of K classes
int fkd_read(const char *dir, int epoch, int b, int n_images, int K, FkdBatch *out, Err *e);
void fkd_batch_free(FkdBatch *f);

// the images of a stored batch: image index[k] cropped to coords[k], resized back, flipped
// when flip[k], then the stored mix (model space, pool's images)
void fkd_images(const Pool *pool, const FkdBatch *f, float *x, float *tmp);

#endif
