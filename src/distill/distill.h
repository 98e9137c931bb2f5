/*
 * distill.h: stage 1 of BEARD (Zhou et al., arXiv:2411.09265), dataset distillation:
 * the contract between the stage (stage.c) and its methods (one file each, registered in
 * registry.c).
 *
 * A method is a DistillMethodDef: its name, its parameters with the official defaults
 * (by the names of the official code's argparse options), and five functions:
 *
 *   init(r)     set up the method's state (r->state) and the initial synthetic set. The
 *               stage has allocated r->syn (K * ipc images at the dataset's size,
 *               class-major, labels set) before init; a method that needs another
 *               layout (more images per class, another size, soft labels) frees and
 *               replaces r->syn / r->syn_y / r->syn_soft and sets n_syn, syn_c/h/w.
 *   step(r)     one iteration, r->it (0, 1, ...; the official loops' `it`): update the
 *               synthetic set, set r->loss to the loss the official code prints. All
 *               randomness comes from r->rng, which the stage keys by (seed, it) before
 *               every step, through the helpers below (distill_choose, distill_real_*,
 *               distill_dsa, distill_net_new): that is what makes runs reproducible, and a
 *               resumed run identical to an uninterrupted one, without saving any
 *               generator state.
 *   save(r, ck) add the method's state to a checkpoint: tensors named "<method>.<what>"
 *               (optimizer buffers, a model queue, meters). The stage adds the synthetic
 *               set and the iteration itself.
 *   load(r, ck) after init, restore that state from a checkpoint (check every shape:
 *               the file may be corrupt); r->it is then the next step to run, and
 *               r->syn already holds the checkpoint's synthetic set.
 *   free(r)     release r->state.
 *
 * Adding a method is one file defining a DistillMethodDef plus one line in registry.c.
 * The stage provides everything else: the command line and --config (DistillParams, by
 * the method's own parameter names), --help listing them with their defaults, loading
 * the real data, the seeded per-iteration generator, the progress bar (ETA, the current
 * loss), atomic checkpoints every N iterations and --resume, stopping on a non-finite
 * loss (the last good checkpoint is kept), optional periodic evaluation (K models trained
 * on the current set with stage 2's recipe, as the official eval_it_pool does), peak
 * memory, and the release files (outputs below).
 *
 * Iterations. The official loops run `for it in range(Iteration + 1)`, i.e. Iteration + 1
 * updates; beard does the same: DistillConfig.iterations is the official Iteration and
 * the stage calls step for it = 0 .. iterations. A method whose work is not one loop
 * sets total_steps and maps r->it to its own structure; checkpoints, progress and the
 * per-step generator then count those steps. The decoupled methods (SRe2L, CDA, SC-DD,
 * G-VBSM, DELT) are per-batch loops: the synthetic set is recovered in batches, each
 * batch `iterations` steps from a fresh optimiser (their official --iteration), so their
 * step r->it is (batch, iteration within it) and a checkpoint can fall inside a batch
 * (the method saves the batch's optimiser, the stage the images).
 *
 * Reproducibility. Same seed, same thread count: bit-identical output. The engine's
 * reductions run in thread order, and every random draw comes from r->rng in the order
 * the method makes them. The official code seeds from the clock (DC's get_network and
 * its DSA seed are int(time.time() * 1000) % 100000), so its runs cannot be repeated;
 * beard's draws equal its draws in distribution, not in value.
 *
 * Tests inject fixed randomness (the official code's initial weights, real batches, DSA
 * parameters, queue choices) through r->ov; with ov NULL every helper uses r->rng. A
 * method's step-fidelity test replays the draws of a PyTorch port of the official loop
 * (tests/scripts/distill_ref.py shows the pattern: a Draws object records every draw, the
 * C test feeds them back through DistillOverride in the same order, ov->grad sees the
 * gradient before every image step).
 *
 * Notes for methods:
 *   - The engine gives first-order gradients through the tape (net.h), and second-order
 *     ones through net_hvp (net_hvp.h: Hessian-vector and mixed products in one pass),
 *     which DC and DSA's gradient matching and MTT's trajectory matching use.
 *   - Soft labels learned with the images: set r->syn_soft in init (n_syn x K); the res
 *     writer then stores that matrix as the labels, and evaluation trains on it. (The
 *     decoupled methods' soft labels are stage 2's: the teacher relabels online in
 *     `beard train --teacher`, or FKD-style files come from `beard relabel`.)
 *   - Image-folder releases (the decoupled methods: new{c:03d}/class{c:03d}_id{i:03d}.jpg,
 *     .png for G-VBSM): DISTILL_OUT_IMAGEFOLDER with image_ext; the stage writes the
 *     folder (output.c). Files that need the method's own state (MTT's images_best.pt in
 *     ZCA space) come from its write function.
 *   - A method that needs a trained model (a teacher, expert trajectories) takes its path
 *     as a parameter (DPARAM_STR / DPARAM_LIST) and loads it in init; one that needs no
 *     real images (SRe2L recovers from its teacher alone) sets no_real_data, and the
 *     stage then runs without a training set (r->real NULL).
 */
#ifndef BEARD_DISTILL_H
#define BEARD_DISTILL_H

#include <stdint.h>
#include <stdio.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../data/dataset.h"
#include "../data/dsa.h"
#include "../io/tensordict.h"
#include "../models/net.h"
#include "../nn/optim.h"
#include "../train/train.h"

// ----------------------------------------------------------------------------
// parameters

// DPARAM_LIST: comma-separated words (paths, names); on the command line a repeated option
// adds to the list, in JSON a string or an array of strings
typedef enum { DPARAM_NUM, DPARAM_INT, DPARAM_BOOL, DPARAM_STR, DPARAM_LIST } DistillParamType;

typedef struct {
    const char *name;      // the official argparse name: "lr_img", "batch_real"
    DistillParamType type;
    double def;            // the official default (NUM, INT, BOOL)
    const char *str_def;   // STR, LIST: the official default
    double min;            // NUM/INT: smallest value accepted (NAN: any)
    const char *help;      // one line for --help; STR: list the accepted words
} DistillParamDef;

#define DISTILL_MAX_PARAMS 40
#define DISTILL_STR_MAX 1024 // a STR or LIST value, with its terminating 0

struct DistillMethodDef;
struct DistillPaths;

typedef struct {
    const struct DistillMethodDef *def;
    int n;
    double v[DISTILL_MAX_PARAMS];
    char s[DISTILL_MAX_PARAMS][DISTILL_STR_MAX];
    unsigned char user[DISTILL_MAX_PARAMS]; // set by --config or the command line
} DistillParams;

// the method's parameters at their official defaults
void distill_params_init(DistillParams *p, const struct DistillMethodDef *def);
// sets a parameter from text ("0.2", "8/255", "true", a word, a list); marks it as the user's.
// Errors name the method and list its parameters when it has no such one.
int distill_params_set_text(DistillParams *p, const char *name, const char *text, Err *e);
// a per-setting default (the official command.txt for this dataset and IPC): applied
// only when the user did not set the parameter
void distill_params_setting(DistillParams *p, const char *name, double v);
// index of a parameter, -1 if the method has none by that name ('-' and '_' alike)
int distill_param_index(const DistillParams *p, const char *name);
// typed reads of a declared parameter (an undeclared name is a programmer error)
double distill_param(const DistillParams *p, const char *name);
long distill_param_int(const DistillParams *p, const char *name);
int distill_param_bool(const DistillParams *p, const char *name);
const char *distill_param_str(const DistillParams *p, const char *name);
// the value as text (numbers in shortest round-trip form) into buf
const char *distill_param_text(const DistillParams *p, int i, char *buf, size_t n);
// item k (0, 1, ...) of a LIST (or STR) parameter's comma-separated value into buf, spaces
// around it trimmed; returns the number of items (0 for an empty value)
int distill_param_item(const DistillParams *p, const char *name, int k, char *buf, size_t n);

// ----------------------------------------------------------------------------
// everything a distillation run can be told, before it is resolved (config.c): beard's
// defaults, then a JSON config (--config), then the command line
//
// JSON keys, after the official argparse names where there is one: method, dataset,
// model, ipc (a number or a string), Iteration (or iterations), seed, data_path,
// save_path (or out), num_eval, epoch_eval_train, lr_net and batch_train (the evaluation
// recipe), num_exp (must be 1: beard runs one experiment per call), eval_mode ("S" or
// "SS"), and beard's own eval_every, checkpoint_every, log_every, threads. Every other
// key must be a parameter of the method ("lr_img": 1.0, "dsa_strategy": "..."): an
// unknown key is an error, so a misspelt hyperparameter never goes unnoticed.

typedef struct {
    char method[32], dataset[32], arch[32]; // arch "": the method's default_arch, else ConvNet
    char data_path[1024], out[1024];
    int ipc;                 // 0: not given
    long iterations;         // -1: the method's default (DISTILL_DEFAULT_ITERATIONS)
    long long seed;
    long eval_every, ckpt_every, log_every;
    int num_eval, epoch_eval_train, batch_train;
    double lr_net;
    int threads;
    // method parameters given before the method is known: name=value pairs, applied by
    // distill_settings_params once it is
    int n_params;
    char param_names[DISTILL_MAX_PARAMS][48];
    char param_values[DISTILL_MAX_PARAMS][DISTILL_STR_MAX];
} DistillSettings;

#define DISTILL_DEFAULT_ITERATIONS 20000

void distill_settings_default(DistillSettings *s);
int distill_settings_load_json(DistillSettings *s, const char *path, Err *e);
// the same from a parsed JSON object (a grid's "distill" settings: src/grid/grid.h)
struct cJSON;
int distill_settings_apply_json(DistillSettings *s, const struct cJSON *root, Err *e);
// records a method parameter (replaces an earlier value of the same name)
int distill_settings_add_param(DistillSettings *s, const char *name, const char *value, Err *e);
// adds an item to a recorded list parameter (",value"), or records it when it is not there
int distill_settings_append_param(DistillSettings *s, const char *name, const char *value, Err *e);
// the method's parameters: official defaults, the per-setting ones for (info, ipc), then
// the recorded name=value pairs (an error names a parameter the method does not have)
int distill_settings_params(const DistillSettings *s, const struct DistillMethodDef *def, const DatasetInfo *info,
                            DistillParams *p, Err *e);

// ----------------------------------------------------------------------------
// the stage's settings (not the method's)

typedef struct {
    const struct DistillMethodDef *method;
    const DatasetInfo *info;
    char arch[32];         // the model distilled with ("ConvNet"), the official --model
    int ipc;
    long iterations;       // the official Iteration: steps it = 0 .. iterations
    uint64_t seed;
    // periodic evaluation (the official eval_it_pool): after every eval_every updates and
    // after the last, train num_eval models (epoch_eval_train + 1 epochs, stage 2's recipe
    // with DSA) on the current set and report their test accuracy. 0: off.
    long eval_every;
    int num_eval, epoch_eval_train, batch_train;
    double lr_net;
    // a checkpoint every ckpt_every steps (0: none), atomically, at ckpt_path
    long ckpt_every;
    char ckpt_path[1200];
    // stop after this many steps of this invocation (0: run to the end): a checkpoint is
    // written there, no release files, and --resume continues (a time-boxed run, as a
    // batch system's job limit wants it)
    long stop_after;
    // the initial synthetic set from a file (a res_*.pt, .pkl or tensor pair pool_load
    // reads) instead of the method's own initialisation, or NULL: for methods that set
    // init_from_ok. The method still makes its initial draws (its networks are those of
    // the seed); the file's images replace the set it drew. Its images' SHA-256 is part of
    // the run's identity, so a resume with another file is refused.
    const char *init_from;
    int progress;          // progress bar on stderr
    FILE *log;             // per-iteration lines (every log_every steps) and evaluations, or NULL
    long log_every;
} DistillConfig;

// ----------------------------------------------------------------------------
// what a method sees

typedef enum {
    DRAW_REAL_CLASS, // real images of one class (tag: the class)
    DRAW_REAL_ANY,   // real images of any class
    DRAW_PICK,       // a method's own choice among n things (tag: the method's purpose)
} DistillDrawKind;

// fixed randomness for tests: each hook returns 0 when it handled the draw, 1 to leave it
// to r->rng
typedef struct {
    void *ctx;
    // k distinct values of [0, n) into out, in the order drawn
    int (*choose)(void *ctx, DistillDrawKind kind, int tag, int n, int k, int *out);
    // the op and the (shared) parameters of a Siamese DSA draw; d->B samples to fill
    int (*dsa)(void *ctx, DsaDraw *d);
    // the initial weights of a fresh network (tag: the run's count of networks made);
    // -1: they do not fit
    int (*net_init)(void *ctx, Net *net, int tag);
    // sees the gradient w.r.t. the synthetic images before each image step (tag: the
    // method's, e.g. the class of a per-class step); may be NULL
    void (*grad)(void *ctx, int tag, const float *g, size_t n);
} DistillOverride;

typedef struct DistillRun {
    const DistillConfig *cfg;
    const DistillParams *p;
    const DatasetInfo *info;
    int C, H, W, K, ipc;
    // the real training set, by class: class c is real->images[class_idx[c][0 .. class_n[c])]
    // (NULL, with class_n all 0, when a no_real_data method runs without one)
    const Dataset *real;
    int **class_idx, *class_n;
    // the synthetic set, class-major, in the model's input space (mean/std-normalised, as
    // the methods' release files hold it)
    int n_syn, syn_c, syn_h, syn_w;
    float *syn;      // (n_syn, syn_c, syn_h, syn_w)
    int *syn_y;      // (n_syn)
    float *syn_soft; // (n_syn, K) soft labels, or NULL
    double syn_lr;   // a learned learning rate (MTT's lr_best.pt), or 0
    // the current step
    long it;
    Rng rng;         // keyed by (seed, it) before every step
    double loss;     // set by step
    char note[96];   // optional extra text for the progress bar and the log
    void *state;     // the method's
    const DistillOverride *ov;
    int nets_made;   // distill_net_new's count (the tag passed to ov->net_init)
    int packed4;     // set by init: each image is a 2x2 mosaic of four (IDM's partition and
                     // expansion); evaluation unpacks it (pool_unpack4, BEARD's aug)
    char init_sha256[65]; // cfg->init_from: the SHA-256 of the images taken from it, else ""
    int *perm, *pick, *idx; // scratch of the draw helpers (the size of the training set)
} DistillRun;

// ----------------------------------------------------------------------------
// the method interface

enum {
    DISTILL_OUT_RES = 1, // res_{method}_{dataset}_{model}_{ipc}ipc.pt: {'data': [[x, y]], 'accs_all_exps': {...}}
    DISTILL_OUT_PKL = 2, // {method}_{dataset}_{model}_{ipc}ipc.pkl: pickle.dump((x, y)), as IDM and BACON
    DISTILL_OUT_IMAGEFOLDER = 4, // {method}_{dataset}_{model}_{ipc}ipc/new{c:03d}/class{c:03d}_id{i:03d}.{image_ext}
};

typedef struct DistillMethodDef {
    const char *name;      // "DM"
    const char *aliases;   // comma-separated, case-insensitive
    const char *summary;   // one line for --help
    const char *reference; // the official code it follows: "VICO-UoE/DatasetCondensation main_DM.py"
    const DistillParamDef *params; // terminated by {NULL}
    // the official per-setting values (command.txt) for a dataset and IPC, through
    // distill_params_setting; NULL if none. setting_help describes them for --help.
    void (*setting)(DistillParams *p, const DatasetInfo *info, int ipc);
    const char *setting_help;
    unsigned outputs;      // DISTILL_OUT_* the stage writes (with the PNG grid, always)
    const char *image_ext; // DISTILL_OUT_IMAGEFOLDER: "jpg" or "png", as the method saves
    const char *default_arch; // the model distilled with when --arch is not given (NULL: ConvNet)
    long default_iterations;  // --iterations when not given (0: DISTILL_DEFAULT_ITERATIONS)
    const char *iterations_help; // what --iterations counts for it (NULL: the official Iteration)
    int no_real_data;      // needs no real training images: the stage may run with train NULL
    int init_from_ok;      // r->syn after init is the whole initial set, and nothing else of
                           // the method's state depends on its values: --init-from may replace it
    long (*total_steps)(const DistillRun *r); // NULL: cfg->iterations + 1
    int (*init)(DistillRun *r, Err *e);
    int (*step)(DistillRun *r, Err *e);
    int (*save)(DistillRun *r, TensorDict *ck, Err *e); // NULL: no state beyond the set
    int (*load)(DistillRun *r, const TensorDict *ck, Err *e);
    // the method's own release files, after the stage's (MTT's images_best.pt layout,
    // which holds the images in the method's space); NULL: none
    int (*write)(const DistillRun *r, const struct DistillPaths *paths, Err *e);
    void (*free)(DistillRun *r);
} DistillMethodDef;

// the registry (registry.c)
int distill_method_count(void);
const DistillMethodDef *distill_method_get(int i);
const DistillMethodDef *distill_method_find(const char *name); // name or alias; NULL if unknown
// names compare case-insensitively with '-' and '_' alike: a against the first nb bytes of b
// (or all of b when it is shorter)
int distill_name_eq(const char *a, const char *b, size_t nb);

// ----------------------------------------------------------------------------
// helpers for methods (common.c)

// k distinct values of [0, n) in random order: the first k of a random permutation, as
// np.random.permutation(n)[:k] and random.shuffle do (all n when k > n; returns the count)
int distill_choose(DistillRun *r, DistillDrawKind kind, int tag, int n, int k, int *out);
// min(n, class size) random real images of class c into x (normalised), as the official
// get_images(c, n) = images_all[np.random.permutation(indices_class[c])[:n]]; returns
// the count
int distill_real_class(DistillRun *r, int c, int n, float *x);
// n random real images of any class with their labels, as IDM's get_images(c=None, n)
int distill_real_any(DistillRun *r, int n, float *x, int *y);
// DC's Siamese DSA draw (DiffAugment with a seed, aug_mode 'S'): one op and one set of
// parameters for every sample; use the same draw for the real and the synthetic batch
// (d->B: the larger batch, d->s: that many samples, owned by the caller)
void distill_dsa(DistillRun *r, const DsaStrategy *st, const DsaConfig *cfg, DsaDraw *d);
// a network of cfg->arch for the synthetic images' size, input normalisation off
// (synthetic and real batches are normalised already), weights not drawn
int distill_net_create(DistillRun *r, Net *net, Err *e);
// draws fresh weights into it: PyTorch's default initialisation from r->rng (or
// ov->net_init), BatchNorm statistics reset; the official get_network
int distill_net_reinit(DistillRun *r, Net *net, Err *e);
// both
int distill_net_new(DistillRun *r, Net *net, Err *e);
// hands the gradient w.r.t. the synthetic images to ov->grad (tests); call it before each
// image step
void distill_observe_grad(DistillRun *r, int tag, const float *g, size_t n);
// The distribution-matching loss of one class (DM, IDM): sum((mean(er) - mean(es))^2)
// between the real embeddings er (nr, E) and the synthetic ones es (ns, E), batch means
// as torch.mean(dim=0); writes d(loss)/d(es) into g (ns, E) (overwrite: the same vector
// 2 (mean(es) - mean(er)) / ns for every row). scratch: 4 E floats. A method with another
// matching loss (BACON) passes a function of this shape.
double distill_mean_l2(const float *er, int nr, const float *es, int ns, size_t E, float *g, float *scratch);

// the synthetic images of class c (ipc of them when the layout is the default one)
float *distill_syn_class(DistillRun *r, int c);
size_t distill_syn_size(const DistillRun *r); // values per synthetic image

// the optimiser of the synthetic images, saved in checkpoints as "<prefix>.m" and
// "<prefix>.step"
int distill_optim_save(const Optim *o, const char *prefix, TensorDict *ck, Err *e);
int distill_optim_load(Optim *o, const char *prefix, const TensorDict *ck, Err *e);
// net parameters and buffers as "<prefix>.params" / "<prefix>.buffers" in a checkpoint
int distill_net_save(const Net *net, const char *prefix, TensorDict *ck, Err *e);
int distill_net_load(Net *net, const char *prefix, const TensorDict *ck, Err *e);
// a checkpoint tensor by name with the expected element count and dtype, or an error
const Tensor *distill_ck_get(const TensorDict *ck, const char *name, DType dt, size_t numel, Err *e);
// adds a copy of data (ndim, shape; 0-dim: one value) to a checkpoint as `name`
int distill_ck_add(TensorDict *ck, const char *name, DType dt, int ndim, const int64_t *shape, const void *data, Err *e);

// ----------------------------------------------------------------------------
// the stage (stage.c)

typedef struct DistillPaths {
    char dir[1024];
    char res[1200], pkl[1200], png[1200], ckpt[1200];
    char images[1200]; // the image folder (DISTILL_OUT_IMAGEFOLDER)
} DistillPaths;

// Where the outputs go. out: a folder (the official save_path; names as the official
// code builds them: res_{method}_{dataset}_{model}_{ipc}ipc.pt, vis_..._exp0_iter{N}.png,
// and {method}_{dataset}_{model}_{ipc}ipc.pkl / .checkpoint.pt / the image folder
// {method}_{dataset}_{model}_{ipc}ipc/) or a file name ending in .pt (the res file; the
// others next to it: <stem>.pkl, <stem>.png, <stem>.checkpoint.pt, <stem>_images/).
int distill_paths(DistillPaths *p, const char *out, const DistillConfig *cfg, Err *e);

#define DISTILL_MAX_EVALS 256

typedef struct {
    long steps, steps_run;        // total, and run in this invocation
    long resumed_from;            // the first step run (0 unless --resume)
    int stopped;                  // stopped by stop_after before the end: checkpoint only
    double seconds;               // the steps' wall time, evaluations excluded
    double eval_seconds;
    double final_loss;
    double peak_mb;               // peak resident memory of the process
    double syn_lr;                // the learned learning rate of the final set (MTT), or 0
    int n_evals;
    long eval_it[DISTILL_MAX_EVALS];   // updates done when evaluated
    double eval_mean[DISTILL_MAX_EVALS], eval_std[DISTILL_MAX_EVALS]; // percent
    double *final_accs;           // (num_eval) of the final evaluation, fractions; owned
    int n_final_accs;
} DistillResult;

void distill_result_free(DistillResult *res);

// The whole run: the real training set `train` (NULL for a method with no_real_data), the
// test set (for evaluation; may be NULL when cfg->eval_every == 0), fixed randomness `ov`
// (tests; NULL otherwise).
// resume: continue from the checkpoint at cfg->ckpt_path. On success the release files
// are written to `paths` (when paths is not NULL) and the checkpoint is removed. On a
// non-finite loss nothing is written and the last good checkpoint is kept.
int distill_run(const DistillConfig *cfg, const DistillParams *p, const Dataset *train, const TrainTest *test,
                const DistillOverride *ov, const DistillPaths *paths, int resume, DistillResult *res, Err *e);

// Lower-level pieces of distill_run, for tests and the benchmark: set up a run (real data
// by class, the synthetic set, init), step it, free it.
int distill_run_init(DistillRun *r, const DistillConfig *cfg, const DistillParams *p, const Dataset *train,
                     const DistillOverride *ov, Err *e);
int distill_run_step(DistillRun *r, long it, Err *e);
void distill_run_free(DistillRun *r);

// the release files (output.c)
int distill_write_res(const char *path, const DistillRun *r, const double *accs, int n_accs, Err *e);
int distill_write_pkl(const char *path, const DistillRun *r, Err *e);
// torchvision's save_image(x * std + mean clamped to [0, 1], nrow=ipc): the official vis_*.png
int distill_write_png(const char *path, const DistillRun *r, Err *e);
// The image folder the decoupled methods release: dir/new{c:03d}/class{c:03d}_id{i:03d}.{ext}
// for image i of class c (class-major r->syn), pixels = clamp(x * std + mean, 0, 1) * 255
// truncated to uint8 (PIL's fromarray of (img * 255).astype(uint8)); JPEG at PIL's defaults
// (quality 75, 4:2:0) or PNG. Written whole under a temporary name and renamed into place;
// an earlier folder at dir is replaced: its images of this layout are removed, and it is
// kept as dir.old-<pid> only when it holds files of other names.
int distill_write_imagefolder(const char *dir, const DistillRun *r, const char *ext, Err *e);

// the synthetic set as stage 2 trains on it (4-in-1 unpacked for packed4 methods)
int distill_pool(const DistillRun *r, Pool *pool, Err *e);

#endif
