/*
 * train.h: BEARD's training stage as a library: train a model on a distilled set (a
 * Pool) with the DC-bench/BEARD recipe, optionally with DSA augmentation and adversarial
 * training; train N seeded runs; select and save models as BEARD names them.
 *
 * The recipe is evaluate_synset from DC (VICO-UoE/DatasetCondensation utils.py), copied
 * into DC-bench and BEARD (Code/eva_utils.py); see train.c for the details and the
 * deliberate differences.
 */
#ifndef BEARD_TRAIN_H
#define BEARD_TRAIN_H

#include <stdio.h>

#include "../attacks/runner.h"
#include "../data/dsa.h"
#include "../data/pool.h"
#include "../nn/optim.h"

typedef enum { TRAIN_ADV_NONE, TRAIN_ADV_ATTACK, TRAIN_ADV_TRADES } TrainAdvKind;

// adversarial training: how each training batch is replaced before the step
typedef struct {
    TrainAdvKind kind;
    char name[48];           // as given ("PGD", "PGD_e4", "TRADES", ...): the {attack} of file names
    const AttackDef *def;    // ATTACK: any attack of the library; TRADES: train_trades
    AttackParams params;     // ATTACK, TRADES (train_adv_finish copies TRADES' into the fields below)
    int targeted;            // ATTACK
    TargetPolicy policy;     // ATTACK, targeted: BEARD's is (y + 1) % 10
    Semantics sem;           // beard: attack the normalised batch, box [0, 1] in that space
                             // (BEARD's code); pixel: attack [0, 1] pixels (Madry PGD-AT)
    // TRADES (Zhang et al., arXiv:1901.08573): CE(f(x), y) + beta KL(f(x) || f(x')),
    // x' from `steps` signed-gradient ascent steps on the KL from x + 0.001 N(0, 1)
    float beta, eps, step_size;
    int steps;
} TrainAdv;

typedef struct TrainConfig {
    int epochs;               // the recipe trains epochs + 1 epochs (range(Epoch + 1))
    int batch;                // 256 (Adam: 128)
    OptimKind optimizer;      // SGD (Adam: the BEARD appendix setting)
    float lr, momentum, weight_decay;
    int lr_decay;             // x0.1 and fresh optimizer state after epoch epochs/2 + 1
    int dsa;                  // DSA augmentation of every training batch
    DsaStrategy strategy;
    DsaConfig dsa_cfg;
    int eval_every;           // test accuracy at epochs 0, N, 2N, ... and the last; 0: the last only
    TrainAdv adv;
    FILE *log;                // per-epoch lines, or NULL
    int log_every;            // every N epochs (0: none)
    int progress;             // progress bar with ETA on stderr
    const char *run_label;    // e.g. "run 2/5", for the progress bar and log lines
    int keep_params;          // train from the net's current parameters instead of a seeded init
    int max_batches;          // stop each epoch after this many batches of its shuffle (0: all);
                              // itertools.islice(loader, n) of torchattacks' LGV
    // called after every epoch (ep = 0, 1, ...) with the model in training mode, after the
    // optimizer steps and the lr decay; a non-zero return stops training with e set. NULL:
    // none. (MTT's expert trajectories take a parameter snapshot per epoch; LGV collects
    // its models.)
    int (*on_epoch)(void *ctx, const Net *net, int ep, Err *e);
    void *on_epoch_ctx;
    // the decoupled methods' recipes (recipe.h) instead of BEARD's: squeeze and soft-label
    // training; train_model hands the run to recipe_train
    const struct Recipe *recipe;
} TrainConfig;

// BEARD/DC-bench's evaluate_synset defaults: SGD lr 0.01, momentum 0.9, wd 5e-4, batch
// 256, 1000 (+1) epochs with the decay, DSA color_crop_cutout_flip_scale_rotate on, no
// adversarial training; test accuracy every 100 epochs
void train_config_default(TrainConfig *c);

// Sets up adversarial training from a name: "None" (off), "TRADES", BEARD's names
// (PGD, PGD_e2..PGD_e10, PGD_e510, PGD_s2..PGD_s10, FGSM, PGD_L2, CW, Deepfool, AA, Square,
// Spsa: BEARD's parameters) or any attack of the library. Parameters start from the
// preset of the semantics (beard: BEARD's values; pixel: torchattacks', random start on).
int train_adv_setup(TrainAdv *adv, const char *name, Semantics sem, int targeted, Err *e);
// After changes to adv->params (attack_params_set_text with adv->def): checks every
// parameter (attack_params_check) and, for TRADES, copies them into beta, eps, ...
int train_adv_finish(TrainAdv *adv, Err *e);
// TRADES' parameter table (beta, eps, step_size, steps): adv->def of a TRADES set-up
extern const AttackDef train_trades;

// the test set, in the model's input space (normalised)
typedef struct {
    const float *x; // (n, C, H, W)
    const int *y;   // (n)
    int n;
} TrainTest;

// parameters and buffers of a Net at one moment
typedef struct {
    float *params, *buffers;
    int64_t nbt[NET_MAX_LAYERS]; // BatchNorm num_batches_tracked
    int valid;
} NetSnapshot;

int net_snapshot_init(NetSnapshot *s, const Net *net, Err *e);
void net_snapshot_take(NetSnapshot *s, const Net *net);
void net_snapshot_restore(const NetSnapshot *s, Net *net);
void net_snapshot_free(NetSnapshot *s);

typedef struct {
    double test_acc;              // after the last epoch, percent
    double best_acc;              // the best test accuracy seen at the evaluations, percent
    int best_epoch;
    double train_loss, train_acc; // of the last epoch (train_acc in percent)
    double seconds;               // training wall time, test evaluations excluded
    double eval_seconds;
    long steps;
} TrainResult;

// Trains net (built by the caller, e.g. with model_create) from a fresh initialisation
// drawn from `seed`: the same seed and thread count give the same model. Leaves the final
// model in net; with best != NULL (initialised for net) also keeps the snapshot with the
// best test accuracy. lr > 0 in cfg is used as is (callers put MTT's learned lr there).
int train_model(Net *net, const Pool *pool, const TrainTest *test, const TrainConfig *cfg, uint64_t seed,
                NetSnapshot *best, TrainResult *res, Err *e);

// TRADES' outer loss of one sample, CE(zn, y) + beta KL(softmax(zn) || softmax(za)) (soft:
// the soft-label row or NULL); writes scale * d/dzn into dn and scale * d/dza into da
double train_trades_loss(float *dn, float *da, const float *zn, const float *za, int y, const float *soft, int K,
                         double beta, double scale);

// test accuracy in percent (eval mode), over the whole test set in batches of 256
int train_test_accuracy(Net *net, const TrainTest *test, double *acc, Err *e);

// ----------------------------------------------------------------------------
// N runs, selection and saving

typedef struct {
    int runs;             // 5 (BEARD)
    uint64_t seed;        // run r trains with seed + r
    const char *arch;     // "ConvNet"
    const DatasetInfo *info;
    const char *save_dir; // NULL: do not save
    // the parts of BEARD's file name {method}_{model}_{dataset}_{ipc}_{attack}_{acc}.pth
    const char *method, *ipc;
    const char *init_path; // every run starts from this checkpoint (with cfg->keep_params), or NULL
} TrainRunsConfig;

#define TRAIN_MAX_RUNS 1000

typedef struct {
    int runs;
    double acc[TRAIN_MAX_RUNS];      // final test accuracy per run, percent
    double best_acc[TRAIN_MAX_RUNS]; // best evaluated test accuracy per run
    double seconds[TRAIN_MAX_RUNS];
    double mean, std;                // of acc, percent; std with ddof 0 (np.std, as BEARD)
    int best_run;                    // the run holding the best evaluated accuracy
    double best;                     // that accuracy
    int final_run;                   // the run with the best final accuracy
    char best_path[1024];            // {method}_{model}_{dataset}_{ipc}_{attack}_{acc}.pth: best snapshot
    char final_path[1024];           // {method}_{model}_{dataset}_{ipc}_{attack}.pth: final model of final_run
} TrainSummary;

int train_runs(const Pool *pool, const TrainTest *test, const TrainConfig *cfg, const TrainRunsConfig *rc,
               TrainSummary *out, Err *e);

// Python's repr of a float (shortest round-trip form), as BEARD's file names print
// acc_test: 0.6995, 0.26, 0.2588699080157687
void train_float_repr(double v, char *buf, size_t n);

#endif
