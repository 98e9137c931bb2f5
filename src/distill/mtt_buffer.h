/*
 * mtt_buffer.h: MTT's expert trajectories (GeorgeCazenavette/mtt-distillation buffer.py),
 * written in its replay-buffer layout and read back, and the data they are trained on.
 *
 * buffer.py trains num_experts networks from scratch on the whole real training set:
 * SGD (lr_teacher 0.01, momentum mom 0, weight decay l2 0), batch 256, train_epochs 50,
 * DSA color_crop_cutout_flip_scale_rotate on every batch (MTT's ops: align_corners=True),
 * BatchNorm in training mode, and keeps a snapshot of the parameters before training and
 * after every epoch (train_epochs + 1 of them). Every save_interval (10) experts it writes
 *   {buffer_path}/{dataset}[_NO_ZCA]/{model}/replay_buffer_{n}.pt
 * (n the first unused number; "_NO_ZCA" for CIFAR-10/100 without --zca) holding
 * torch.save(list of trajectories), a trajectory being a list of per-epoch lists of the
 * parameter tensors in net.parameters() order. distill.py reads those files.
 *
 * beard writes the same files (torch_save_obj) plus buffer_info.json in the folder: the
 * dataset, model, ZCA flag and teacher settings, so that a buffer made for another
 * architecture or dataset is refused by name. Folders without it (the official code's)
 * are identified by their path, and every file is checked against the model's parameter
 * shapes before it is used.
 *
 * Deliberate differences: the official code drops the last experts when num_experts is
 * not a multiple of save_interval (it saves only full groups); beard saves the remainder
 * as one more file. The learning-rate decay option (--decay) is not offered. Random draws
 * come from beard's generator (per expert: seed + expert), not from the clock.
 */
#ifndef BEARD_DISTILL_MTT_BUFFER_H
#define BEARD_DISTILL_MTT_BUFFER_H

#include <stdio.h>

#include "../data/dataset.h"
#include "../data/dsa.h"
#include "../data/zca.h"
#include "../models/net.h"
#include "../train/train.h"

// MTT's data: the training and test images in the space the experts and the student see.
// With zca, [0, 1] pixels whitened by ZCA fitted on the training set (kornia
// ZCAWhitening(eps=0.1), MTT's get_dataset); without, mean/std-normalised.
typedef struct {
    int zca;
    Zca z;          // zca: the fitted transform
    float *x_train; // (n_train, C, H, W)
    int *y_train;
    int n_train;
    float *x_test;  // (n_test, C, H, W), or NULL
    int *y_test;
    int n_test;
    int C, H, W, K;
} MttData;

int mtt_data_prepare(MttData *d, const Dataset *train, const Dataset *test, const DatasetInfo *info, int zca, Err *e);
void mtt_data_free(MttData *d);

typedef struct {
    int num_experts;      // 100
    int train_epochs;     // 50
    double lr_teacher;    // 0.01
    double mom, l2;       // 0, 0
    int batch_train;      // 256
    int dsa;              // 1
    char dsa_strategy[96]; // color_crop_cutout_flip_scale_rotate
    int save_interval;    // 10
    uint64_t seed;
    int progress;         // progress bars on stderr
    FILE *log;            // a line per expert (test accuracy), or NULL
} MttBufferConfig;

void mtt_buffer_config_default(MttBufferConfig *c);

// the official expert folder: {buffer_path}/{dataset}[_NO_ZCA]/{model}
int mtt_buffer_dir(char *out, size_t n, const char *buffer_path, const DatasetInfo *info, int zca, const char *arch,
                   Err *e);

// trains the experts on d and writes their files into dir (created if needed); names of
// the files written go to `written` (may be NULL) as a count
int mtt_buffer_train(const MttBufferConfig *cfg, const char *arch, const DatasetInfo *info, const MttData *d,
                     const char *dir, int *written, Err *e);

// writes n trajectories (each n_epochs flat parameter vectors of net) as the next
// replay_buffer_{k}.pt in dir; counts the file in *written (may be NULL)
int mtt_buffer_write(const char *dir, const Net *net, float **trajs, int n, int n_epochs, int *written, Err *e);

// ----------------------------------------------------------------------------
// reading

typedef struct {
    char dir[1024];
    int n_files;
    char **files;           // replay_buffer_0.pt, 1, ... in number order
    // the file loaded last: n_experts trajectories of n_epochs flat parameter vectors
    int loaded;             // index into files, -1 before the first load
    int n_experts, n_epochs;
    size_t P;               // parameters per snapshot
    float *params;          // (n_experts, n_epochs, P)
} MttBuffer;

// Opens the expert folder for `net` (its architecture `arch`, built for `info`): lists
// the files, checks buffer_info.json when present (architecture, dataset and ZCA must be
// the ones asked; the error names both), or else the folder's path. Files are loaded by
// mtt_buffer_load.
int mtt_buffer_open(MttBuffer *b, const char *dir, const Net *net, const char *arch, const DatasetInfo *info, int zca,
                    Err *e);
// what a buffer_path holds: "CIFAR10/ConvNet, CIFAR10_NO_ZCA/ConvNetBN" (the folders two
// levels down with a replay_buffer_0.pt), or "nothing"; for error messages
void mtt_buffer_list(const char *buffer_path, char *out, size_t n);
// loads file i, checking every snapshot against the net's parameters (count and shapes;
// a mismatch names the buffer's model and the one asked)
int mtt_buffer_load(MttBuffer *b, int i, const Net *net, Err *e);
// expert j's snapshot at epoch t of the loaded file
static inline const float *mtt_buffer_snapshot(const MttBuffer *b, int j, int t) {
    return b->params + ((size_t)j * b->n_epochs + t) * b->P;
}
void mtt_buffer_free(MttBuffer *b);

#endif
