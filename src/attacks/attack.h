/*
 * attack.h: beard's attack library, the contract between attacks and everything that
 * runs them.
 *
 * One attack = one file in src/attacks that defines an AttackDef, plus one line in the
 * table in registry.c. An attack works on a batch of inputs x (B, D) in "attack space"
 * with the box [0, 1], and returns x_adv. What attack space means is the semantics:
 *
 *   pixel (default, the standard threat model): x are [0, 1] pixels and the model
 *         normalises internally (Net.normalize = 1); eps is in pixel units.
 *   beard (reproduces BEARD's published numbers): x are mean/std-normalised tensors, the
 *         model does not normalise, eps is in normalised units and the [0, 1] clamps of
 *         torchattacks act in normalised space. That is what happens when BEARD hands
 *         normalised data to torchattacks 3.5.1.
 *
 * The attacks themselves are identical under both; the runner (runner.c) prepares the
 * data and the model for the chosen semantics.
 *
 * Parameters. Every attack declares its parameters with three defaults: torchattacks
 * 3.5.1's (preset `torchattacks`), the values BEARD passes (preset `beard`) and those of
 * fra31/auto-attack (preset `fra31`). Command-line options override any of them.
 *
 * Randomness. An attack draws random numbers from attack_rng(ctx, i, stream), a Philox
 * stream keyed by the run's seed and the sample's index in the whole evaluation, so the
 * same seed gives the same adversarial examples whatever the batch size and the thread
 * count.
 *
 * Cost. Every forward and backward pass goes through the Net, which counts them; the
 * runner reports passes per sample, a hardware-independent cost.
 */
#ifndef BEARD_ATTACK_H
#define BEARD_ATTACK_H

#include <math.h>
#include <stdint.h>

#include "../core/common.h"
#include "../core/progress.h"
#include "../core/rng.h"
#include "../models/net.h"

typedef enum { SEM_PIXEL, SEM_BEARD } Semantics;
typedef enum { TARGET_NEXT, TARGET_BEARD, TARGET_RANDOM, TARGET_LEAST_LIKELY } TargetPolicy;
typedef enum { PRESET_TORCHATTACKS, PRESET_BEARD, PRESET_FRA31 } Preset;

// ----------------------------------------------------------------------------
// parameters

#define P_SAME NAN // "no different value under this preset"

typedef struct {
    const char *name; // e.g. "eps"; on the command line --eps (dashes and underscores alike)
    double torchattacks, beard, fra31;
    const char *help;
    // for a parameter that takes one of a few words (norm: "Linf,L2"; loss: "ce,dlr"): the
    // comma-separated choices; the value is the index of the chosen word. NULL: a number.
    const char *choices;
} AttackParamDef;

#define ATTACK_MAX_PARAMS 24
typedef struct {
    int n;
    const char *names[ATTACK_MAX_PARAMS];
    double values[ATTACK_MAX_PARAMS];
} AttackParams;

// ----------------------------------------------------------------------------
// what an attack sees

typedef struct AttackCtx AttackCtx;
struct AttackCtx {
    Net *net;
    int K;           // classes
    size_t D;        // values per sample
    int targeted;    // t[] holds the targets
    const AttackParams *params;
    uint64_t seed;
    const int *ids;  // (B) index of each sample in the whole evaluation (RNG streams)
    Progress *progress; // may be NULL
    double progress_base, progress_span; // this batch's share of the progress bar
    int n_classes_cap; // targets are drawn from [0, n_classes_cap) (BEARD: 10)
};

typedef struct {
    const char *name;    // canonical name, e.g. "PGD"
    const char *aliases; // comma-separated, matched case-insensitively: "pgd_linf,linfpgd"
    const char *summary; // one line for --help
    int untargeted_ok, targeted_ok;
    const AttackParamDef *params; // terminated by {NULL}
    // x (B, D) clean, y (B) true labels, t (B) targets or NULL; writes x_adv (B, D)
    int (*run)(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e);
} AttackDef;

// the registry (registry.c)
int attack_count(void);
const AttackDef *attack_get(int i);
// by name or alias, case-insensitive; NULL when unknown
const AttackDef *attack_find(const char *name);

// ----------------------------------------------------------------------------
// parameters: fill from a preset, override, read

void attack_params_init(AttackParams *p, const AttackDef *def, Preset preset);
// sets a parameter the attack declares; -1 if it has no such parameter
int attack_params_set(AttackParams *p, const char *name, double value);
// the same from text: a number ("8/255"), yes/no/true/false, or one of the parameter's
// choices; -1 when the attack has no such parameter, -2 when the value does not parse
int attack_params_set_text(AttackParams *p, const AttackDef *def, const char *name, const char *text);
// the parameter's value as text (its choice word for choice parameters) into buf
const char *attack_param_text(const AttackParams *p, const AttackDef *def, int i, char *buf, size_t n);
// the value of a declared parameter (a programmer error, asserted, if undeclared)
double attack_param(const AttackCtx *ctx, const char *name);
int attack_param_int(const AttackCtx *ctx, const char *name);

// ----------------------------------------------------------------------------
// helpers for attack implementations (common.c)

// logits (B, K) of x (B, D)
int attack_logits(const AttackCtx *ctx, const float *x, int B, float *logits, Err *e);
// predicted classes (B)
int attack_predict(const AttackCtx *ctx, const float *x, int B, int *pred, Err *e);

// per-sample loss gradients: loss(ctx_loss, i, logits, dlogits) as in NetLossFn (the i
// passed is the sample's position in this batch). grad (B, D), logits (B, K) may be NULL.
int attack_gradient(const AttackCtx *ctx, const float *x, int B, NetLossFn loss, void *loss_ctx, float *logits,
                    float *grad, double *loss_sum, Err *e);
// Jacobian of all K logits: jac (B, K, D), logits (B, K)
int attack_jacobian(const AttackCtx *ctx, const float *x, int B, float *logits, float *jac, Err *e);

// the Philox stream of sample i (position in the batch) for a purpose `stream`
void attack_rng(const AttackCtx *ctx, int i, uint32_t stream, Rng *r);

// reports progress within the batch, frac in [0, 1]
void attack_progress(const AttackCtx *ctx, double frac);

// common losses, as NetLossFn callbacks; ctx is an AttackLossCtx
typedef struct {
    const int *labels;  // true labels (untargeted) or targets (targeted)
    int K;
    float sign;         // +1 ascend the loss, -1 descend (targeted attacks)
    float scale;        // multiplies the gradient (e.g. 1/B for a mean-reduced loss)
} AttackLossCtx;
double attack_loss_ce(void *ctx, int i, const float *logits, float *dlogits);

// torch.sign: -1, 0 or +1
static inline float signf_torch(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); }
static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif
