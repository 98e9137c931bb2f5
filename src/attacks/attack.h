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
 * fra31/auto-attack (preset `fra31`), and with a type and a range (AP_INT(1, 100000),
 * AP_REAL(0, 1), AP_BOOL, AP_CHOICE("Linf,L2"), AP_TEXT("BIM")). Command-line options,
 * configs' attack_params and training set-ups override the defaults; every value then
 * goes through one checker, attack_params_check, which refuses what is out of type or
 * range with a message naming the attack, the parameter and the value. The runner checks
 * again with the data's shape before any work starts, so no attack ever runs with, say,
 * 2^31 steps wrapped to 0.
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

typedef enum {
    ATTACK_PARAM_UNDECLARED, // a table entry without AP_* (the registry test refuses it)
    ATTACK_PARAM_REAL,       // a number in [lo, hi] ((lo, hi] with lo_open)
    ATTACK_PARAM_INT,        // an integer in [lo, hi]
    ATTACK_PARAM_BOOL,       // 0 or 1 (yes/no/true/false on the command line)
    ATTACK_PARAM_CHOICE,     // one word of `choices`; the value is its index
    ATTACK_PARAM_TEXT,       // free text (a list of attacks); the default is `text`
} AttackParamType;

typedef struct {
    const char *name; // e.g. "eps"; on the command line --eps (dashes and underscores alike)
    double torchattacks, beard, fra31;
    const char *help;
    const char *choices; // CHOICE: the comma-separated words ("Linf,L2")
    AttackParamType type;
    double lo, hi;       // REAL, INT: the accepted range
    int lo_open;         // REAL: lo itself is refused (a step size must be > 0)
    const char *text;    // TEXT: the default
} AttackParamDef;

// the declarations, after the help text: {"eps", 8.0/255, P_SAME, P_SAME, "help", AP_REAL(0, 1)}
#define AP_REAL(l, h) .type = ATTACK_PARAM_REAL, .lo = (l), .hi = (h)
#define AP_POS(h) .type = ATTACK_PARAM_REAL, .lo = 0, .hi = (h), .lo_open = 1
#define AP_INT(l, h) .type = ATTACK_PARAM_INT, .lo = (l), .hi = (h)
#define AP_BOOL .type = ATTACK_PARAM_BOOL, .lo = 0, .hi = 1
#define AP_CHOICE(words) .choices = (words), .type = ATTACK_PARAM_CHOICE
#define AP_TEXT(def) .type = ATTACK_PARAM_TEXT, .text = (def)
// the usual ranges: a Linf radius (pixels or normalised units), an L2 radius, step counts
#define AP_EPS_LINF AP_REAL(0, 1)
#define AP_EPS_L2 AP_REAL(0, 1000)
#define AP_STEPS AP_INT(1, 100000)

#define ATTACK_MAX_PARAMS 24
#define ATTACK_MAX_TEXT 2   // TEXT parameters per attack
#define ATTACK_TEXT_LEN 256
typedef struct {
    int n;
    const char *names[ATTACK_MAX_PARAMS];
    double values[ATTACK_MAX_PARAMS]; // TEXT: the slot in text[]
    char text[ATTACK_MAX_TEXT][ATTACK_TEXT_LEN];
} AttackParams;

// what the checker knows about the data (attack_params_check), NULL where it is not known yet
typedef struct {
    int C, H, W, K;
} AttackShape;

// ----------------------------------------------------------------------------
// what an attack sees

// Several networks attacked as one (an ensemble of surrogates): its logits are the mean
// of the members' logits (torchattacks' LightEnsemble with n_grad = -1, and Dong et al.'s
// logit ensemble, arXiv:1710.06081). With 0 < n_grad < n, each forward call uses the
// n_grad members from *cursor on (cycling, cursor advancing by n_grad), as LightEnsemble
// does with order None / after its shuffle (LGV). All members read the same inputs.
typedef struct {
    Net *const *members; // (n)
    int n;
    int n_grad;          // members per call; <= 0 or >= n: all of them
    int *cursor;         // the cycle's position (n_grad < n), owned by the caller
} AttackEnsemble;

// the training split, for attacks that train (LGV): pixels in [0, 1], with the dataset's
// normalisation constants
typedef struct {
    const float *x; // (n, C, H, W)
    const int *y;   // (n)
    int n;
    const float *mean, *std; // (C)
} AttackTrainSet;

typedef struct AttackCtx AttackCtx;
struct AttackCtx {
    Net *net;        // the model attacked (members[0] of an ensemble)
    int K;           // classes
    size_t D;        // values per sample
    int targeted;    // t[] holds the targets
    const AttackParams *params;
    uint64_t seed;
    const int *ids;  // (B) index of each sample in the whole evaluation (RNG streams)
    Progress *progress; // may be NULL
    double progress_base, progress_span; // this batch's share of the progress bar
    int n_classes_cap; // targets are drawn from [0, n_classes_cap) (BEARD: 10)
    const AttackEnsemble *ens; // NULL: net alone
    Semantics sem;             // what x means (pixels or normalised tensors)
    const float *mean, *std;   // (C) the dataset's normalisation constants, or NULL
    const AttackTrainSet *train; // the training split, or NULL when the caller has none
    // A slot that lives across the batches of one evaluation (LGV keeps its collected
    // models there); NULL where the caller keeps none. The runner frees what an attack
    // leaves in it with AttackDef.state_free.
    void **state;
};

typedef struct AttackDef {
    const char *name;    // canonical name, e.g. "PGD"
    const char *aliases; // comma-separated, matched case-insensitively: "pgd_linf,linfpgd"
    const char *summary; // one line for --help
    int untargeted_ok, targeted_ok;
    const AttackParamDef *params; // terminated by {NULL}
    // x (B, D) clean, y (B) true labels, t (B) targets or NULL; writes x_adv (B, D)
    int (*run)(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e);
    // optional: what the declared ranges cannot say (one parameter against another, or
    // against the data's shape, which is NULL when not known yet); called by
    // attack_params_check after the ranges; its messages start with the attack's name
    int (*check)(const struct AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e);
    void (*state_free)(void *state); // frees what run left in *ctx->state (optional)
    int needs_train;                 // run needs ctx->train (LGV)
} AttackDef;

// the registry (registry.c)
int attack_count(void);
const AttackDef *attack_get(int i);
// by name or alias, case-insensitive; NULL when unknown
const AttackDef *attack_find(const char *name);

// An attack by any of the names beard accepts: the name or an alias, BEARD's spellings
// (Deepfool, AA, Spsa, PGD_L2) and BEARD's training-attack variants (PGD_e<N>: PGD with
// eps N/255, PGD_e510 eps 0.15; PGD_s<N>: PGD with N steps), and a name with parameters,
// "PGD(eps=4/255, steps=20)". Fills def and p (from the preset, with the variant's or the
// given values) and checks them (without a shape). Errors name what is wrong; -2 when the
// name is no attack's, -1 for the other errors.
int attack_resolve(const char *spec, Preset preset, const AttackDef **def, AttackParams *p, Err *e);
// whether running def with p needs the training split: def->needs_train, or an attack
// named in one of its TEXT parameters (MultiAttack's list) does
int attack_needs_train(const AttackDef *def, const AttackParams *p);
// the attacks of a list of such specs separated by ',' or '+' ("PGD(steps=20), FGSM",
// "FGSM+PGD"): at most max; separators inside parentheses belong to the spec
int attack_resolve_list(const char *list, Preset preset, int max, const AttackDef **defs, AttackParams *ps, int *n,
                        Err *e);

// ----------------------------------------------------------------------------
// parameters: fill from a preset, override, read

void attack_params_init(AttackParams *p, const AttackDef *def, Preset preset);
// sets a parameter the attack declares; -1 if it has no such parameter (not for TEXT ones)
int attack_params_set(AttackParams *p, const char *name, double value);
// the same from text: a number ("8/255"), yes/no/true/false, one of the parameter's
// choices, or any text for a TEXT parameter; -1 when the attack has no such parameter,
// -2 when the value does not parse. Ranges are attack_params_check's business.
int attack_params_set_text(AttackParams *p, const AttackDef *def, const char *name, const char *text);
// The one checker: every parameter against its declared type and range, then the
// attack's own check (with the shape when not NULL). The error names the attack, the
// parameter and the value: "PGD: steps must be an integer in [1, 100000], not 2147483648".
int attack_params_check(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e);
// "an integer in [1, 100000]", "a number in (0, 1]", "yes or no", "one of Linf, L2"
const char *attack_param_range_text(const AttackParamDef *d, char *buf, size_t n);
// the declaration of parameter `name`, NULL when the attack has none
const AttackParamDef *attack_param_def(const AttackDef *def, const char *name);
// the parameter's value as text (its choice word, its text) into buf
const char *attack_param_text(const AttackParams *p, const AttackDef *def, int i, char *buf, size_t n);
// the value of a declared parameter (a programmer error, asserted, if undeclared)
double attack_param(const AttackCtx *ctx, const char *name);
int attack_param_int(const AttackCtx *ctx, const char *name);
// a check (AttackDef.check) for attacks with a `norm` choice whose first word is Linf: an
// Linf eps must lie in [0, 1]
int attack_check_norm_eps(const AttackDef *def, const AttackParams *p, const AttackShape *shape, Err *e);
// a TEXT parameter's value
const char *attack_param_str(const AttackCtx *ctx, const char *name);
// the same reads on an AttackParams (for check functions)
double attack_params_get(const AttackParams *p, const char *name);
const char *attack_params_get_str(const AttackParams *p, const char *name);

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
// The same three calls (logits, gradient, Jacobian) see an ensemble (ctx->ens) as one
// model: mean logits, the loss's gradient through the mean (each member's forward pass
// runs twice: once for the mean, once under the backward pass), the mean Jacobian.

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
