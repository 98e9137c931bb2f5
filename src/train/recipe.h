/*
 * recipe.h: the training recipes of the decoupled distillation methods (SRe2L, CDA, G-VBSM,
 * DELT, SC-DD), next to BEARD/DC-bench's (train.h):
 *   - squeeze: the teacher trained on the real training set with hard labels
 *     (SRe2L's squeeze_cifar.py: SGD 0.1, momentum 0.9, wd 5e-4, cosine over 200 epochs,
 *     batch 128, RandomCrop(32, 4) + flip; G-VBSM's squeeze/train.py: SGD 0.05, momentum
 *     0.9, no wd, constant lr, batch 64, 5 epochs);
 *   - relabel: a student trained on the distilled images with the teacher's soft labels,
 *     computed online on the augmented, mixed batch (SRe2L's relabel_cifar.py: mixup 0.8,
 *     KL at T = 30 without the T^2 factor, AdamW 1e-3 / wd 0.01, cosine, batch 128, the
 *     teacher left in train mode; DELT/RDED: CutMix, T = 20, the teacher in eval mode) or read
 *     from stored FKD labels (G-VBSM: MSE to the teacher logits + 0.15 CE).
 * Per-image augmentation happens in pixel space (torchvision transforms on the PIL image, then
 * ToTensor + Normalize): padding is black, i.e. (0 - mean) / std once normalised.
 */
#ifndef BEARD_RECIPE_H
#define BEARD_RECIPE_H

#include "train.h"

typedef enum { RECIPE_AUG_NONE, RECIPE_AUG_CROP_FLIP, RECIPE_AUG_RRC_FLIP } RecipeAug;
typedef enum { RECIPE_MIX_NONE, RECIPE_MIX_MIXUP, RECIPE_MIX_CUTMIX } RecipeMix;
typedef enum { RECIPE_LOSS_CE, RECIPE_LOSS_KL, RECIPE_LOSS_MSE_GT } RecipeLoss;
// lr per epoch e of E: constant; cosine 0.5 (1 + cos(pi e / E)) (CosineAnnealingLR);
// cosine-half 0.5 (1 + cos(pi e / E / 2)) (RDED/DELT's LambdaLR, a quarter period)
typedef enum { RECIPE_LR_CONSTANT, RECIPE_LR_COSINE, RECIPE_LR_COSINE_HALF } RecipeSchedule;

typedef struct Recipe {
    char name[32];          // recorded with the model: "sre2l-squeeze", "sre2l-relabel", ...
    int epochs, batch;
    OptimKind optimizer;
    float lr, momentum, weight_decay;
    RecipeSchedule schedule;
    RecipeAug aug;
    int pad;                // RandomCrop padding (4)
    float rrc_min;          // RandomResizedCrop scale lower bound (0.08)
    RecipeMix mix;
    float mix_alpha;        // mixup 0.8, CutMix 1.0
    RecipeLoss loss;
    float temperature;      // KL
    float ce_weight;        // MSE_GT
    Net *teacher;           // online soft labels (KL / MSE_GT), or NULL
    const char *fkd_dir;    // stored soft labels (fkd.h) instead of a teacher: each epoch replays
                            // the stored batches, crops, flips and mixes
    int teacher_train;      // SRe2L's relabel quirk: the teacher runs in train mode (batch statistics,
                            // its running statistics drift); 0: eval mode (corrected)
    int linear_probe;       // train the last linear layer only, the rest frozen in eval mode (SC-DD's
                            // probe on a self-supervised backbone; start from a checkpoint)
    int eval_every;         // test accuracy every N epochs and after the last (0: the last only)
    FILE *log;
    int log_every;
    int progress;
    const char *run_label;
} Recipe;

// named presets: sre2l-squeeze, gvbsm-squeeze, sre2l-relabel (= cda-relabel, scdd-relabel),
// rded-relabel (= delt-relabel); -1 when the name is unknown
int recipe_preset(Recipe *r, const char *name);
const char *recipe_preset_list(void);

// one mixed batch's draw
typedef struct {
    RecipeMix mix;
    float lam;
    int *perm;  // (B)
    int box[4]; // CutMix
    const float *zt; // (B, K) stored soft labels (FKD) instead of the teacher's, or NULL
} RecipeDraw;

typedef struct RecipeWork RecipeWork;
RecipeWork *recipe_work_new(const Net *student, int B, Err *e);
void recipe_work_free(RecipeWork *w);

// One training step's gradients (added into student->grads after zeroing them) on the batch
// x (B, model space, already augmented per image): mix, the teacher's logits of the mixed
// batch (online), the loss. Returns the batch's mean loss in *loss; the mixed batch, the
// student's and teacher's logits stay readable through recipe_work_* below.
int recipe_step_grads(Net *student, const Recipe *r, RecipeWork *w, const float *x, const int *y, int B,
                      const RecipeDraw *d, double *loss, Err *e);
const float *recipe_work_mixed(const RecipeWork *w);
const float *recipe_work_student_logits(const RecipeWork *w);
const float *recipe_work_teacher_logits(const RecipeWork *w);

double recipe_lr(const Recipe *r, int epoch);

// Trains net from a fresh initialisation drawn from seed (or its current parameters with
// keep_params) with the recipe; pool images are in model space with the pool's mean/std.
int recipe_train(Net *net, const Pool *pool, const TrainTest *test, const Recipe *r, uint64_t seed, int keep_params,
                 NetSnapshot *best, TrainResult *res, Err *e);

// The teacher/student agreement the relabel methods need: same classes and input shape.
int recipe_check_teacher(const Net *teacher, const Net *student, const Pool *pool, Err *e);

#endif
