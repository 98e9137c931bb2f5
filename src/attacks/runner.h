/*
 * runner.h: running one attack over a whole test set, in batches, and scoring it.
 *
 * The runner owns what is common to every attack: it puts the data and the model in the
 * chosen semantics (see attack.h), picks the targets by policy, feeds batches to the
 * attack, and scores the result against the true labels: robust accuracy, per-sample
 * success (originally correct, now wrong), ASR, perturbation norms (in attack space and
 * in pixel units), wall time and forward/backward passes per sample.
 */
#ifndef BEARD_RUNNER_H
#define BEARD_RUNNER_H

#include "attack.h"

typedef struct {
    Semantics sem;
    TargetPolicy policy;
    int batch;      // samples per attack call (BEARD: 256)
    uint64_t seed;
    int progress;   // show a progress bar for long runs
    int n_classes_cap; // 0: none; BEARD's policy uses 10
    int keep_adv;      // keep the adversarial examples in AttackResult.x_adv (transfer)
    // an ensemble of surrogates: the model attacked (and scored) is the mean of the logits
    // of net and these (all with net's input shape and classes); NULL/0: net alone
    Net *const *ensemble;
    int n_ensemble;
    const AttackTrainSet *train; // the training split, for attacks that train (LGV); may be NULL
} RunConfig;

#define ATTACK_MAX_ENSEMBLE 64

// The test set as pixels in [0, 1], with the dataset's normalisation constants.
typedef struct {
    const float *x; // (n, C, H, W) pixels
    const int *y;   // (n)
    int n, C, H, W;
    const float *mean, *std; // (C)
} AttackData;

typedef struct {
    const AttackDef *def;
    AttackParams params;
    int targeted;
    Semantics sem;
    int n;
    int clean_correct, adv_correct, success; // success: originally correct and now wrong
    int target_hits;                         // targeted: predicted == target
    double clean_accuracy, accuracy;         // percent
    double asr;        // percent of the originally correct samples that the attack flips
    double seconds;    // attack plus scoring, as BEARD times it
    double forward_per_sample, backward_per_sample;
    unsigned char *clean_ok, *adv_ok; // (n)
    int *pred;                        // (n) prediction on the adversarial input
    int *targets;                     // (n), NULL when untargeted
    float *l2, *linf;                 // (n) perturbation norms in attack space
    float *l2_pixel, *linf_pixel;     // (n) in pixel units
    float *x_adv;                     // (n, D) in attack space, when RunConfig.keep_adv
} AttackResult;

// Transfer (black-box) evaluation: examples crafted on one model (a surrogate), scored
// on another. Both models must read the same input space (same semantics and dataset).
typedef struct {
    int n, clean_correct, adv_correct, success;
    double clean_accuracy, accuracy, asr; // percent
    unsigned char *clean_ok, *adv_ok;     // (n)
} TransferResult;

const char *semantics_name(Semantics s);
int semantics_parse(const char *s, Semantics *out);
const char *target_policy_name(TargetPolicy p);
int target_policy_parse(const char *s, TargetPolicy *out);
const char *preset_name(Preset p);
int preset_parse(const char *s, Preset *out);

// Clean predictions of the whole set (the same in both semantics); pred (n), may also
// fill logits (n, K) when not NULL.
int attack_clean_predict(Net *net, const AttackData *d, Semantics sem, int batch, int *pred, float *logits, Err *e);

// the targets for the policy: t (n), from clean logits (least-likely) and the seed (random)
void attack_targets(TargetPolicy p, const int *y, const float *clean_logits, int n, int K, uint64_t seed, int *t);

int attack_evaluate(Net *net, const AttackData *d, const AttackDef *def, const AttackParams *params, int targeted,
                    const RunConfig *cfg, AttackResult *res, Err *e);
void attack_result_free(AttackResult *r);

// scores x_adv (n, D, attack space of `sem`) on `target` against the true labels
int attack_transfer(Net *target, const AttackData *d, Semantics sem, const float *x_adv, int batch, TransferResult *tr,
                    Err *e);
void transfer_result_free(TransferResult *tr);

// fills x (n, D) in attack space for the semantics (pixels, or normalised in float32 as
// torchvision's Normalize computes it) and sets net->normalize accordingly
void attack_prepare(Net *net, const AttackData *d, Semantics sem, float *x);

// checks that the ensemble's members (net and extra) read the same inputs and have the
// same classes; fills members (1 + n_extra) for an AttackEnsemble
int attack_ensemble_init(Net *net, Net *const *extra, int n_extra, Net **members, Err *e);

#endif
