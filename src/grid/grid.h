/*
 * grid.h: the benchmark as a whole. A grid (BEARD, arXiv:2411.09265: datasets x DD
 * methods x IPC x architectures x runs x training attacks x evaluation attacks x modes x
 * semantics) read from a JSON file, expanded into cells, checked up front, and run
 * (grid_run.c) into the results store (store.h).
 *
 * The grid file (every key optional unless said; unknown keys are errors, so that a typo
 * never silently drops part of a benchmark):
 *
 *   {"name": "beard-cifar10",
 *    "datasets": ["CIFAR10"],               // dataset_info's names, or "SYNTHETIC"
 *    "ipcs": [1, 10, 50], "archs": ["ConvNet"], "runs": 1,
 *    "methods": [                            // required
 *      {"name": "BACON"},                    // a checkpoint in model_pool, by BEARD's name
 *      {"name": "BACON", "model": "ckpt/BACON_{arch}_{dataset}_{ipc}_{train_attack}.pth"},
 *      {"name": "DM", "pool": "res_DM_{dataset}_ConvNet_{ipc}ipc.pt"},   // train on it
 *      {"name": "IDM", "pool": "...", "unpack4": true},  // BEARD's "aug" (4-in-1)
 *      {"name": "MTT", "pool": "mtt_ipc{ipc}/", "learned_lr": true},
 *      {"name": "Full", "src_dataset": true}, // the whole real training set (reference)
 *      {"name": "DM1", "distill": {"method": "DM", "ipc": [1, 10], "iterations": 20000,
 *                                 "lr_img": 1.0}}],  // stage 1 makes the pool (below)
 *    "train_attacks": ["None", "PGD"],      // train.h's names (adversarial training)
 *    "attacks": ["FGSM", {"name": "PGD", "params": {"eps": ["4/255", "8/255"], "steps": 10}}],
 *    "modes": ["targeted", "untargeted"], "semantics": ["beard", "pixel"],
 *    "preset": "beard", "target_policy": "beard", "limit": 0, "batch": 256, "seed": 0,
 *    "threads": 0, "train_limit": 0,        // the first N real training images (src_dataset, distill)
 *    "train": {"epochs": 1000, ...},         // train_config.h's keys (the recipe)
 *    "data": "data", "model_pool": ["model_pool"], "dataset_pool": "dataset_pool",
 *    "out": "beard-run",                     // BEARD layout written: out/model_pool/<METHOD>/
 *    "store": "results.db",
 *    "import_logs": ["BACON_ConvNet_CIFAR10_50_evaluation_log.txt"],  // BEARD logs
 *    "published": "configs/published/beard_leaderboard_2024.csv"}
 *
 * Paths are relative to the working directory, as in BEARD's configs. Templates in
 * "model" and "pool" take {method}, {dataset}, {ipc}, {arch} and {train_attack}. A list
 * value in an attack's "params" makes one attack variant per value (robust accuracy
 * against eps); a variant's label names the parameters that differ from the preset.
 *
 * Where the models come from, per (method, dataset, ipc, arch, training attack):
 * "model": that checkpoint; no source: the checkpoint in one of the model_pool folders (or
 * their <METHOD>/ sub-folder) named as BEARD names them, {method}_{arch}_{dataset}_{ipc}_
 * {train_attack}.pth, else the one ..._{acc}.pth; a given checkpoint is run 0, the only
 * run. "pool" or "src_dataset": training cells on that set (or the real training set),
 * one per run, seeded seed + run, writing
 * out/model_pool/<METHOD>/{method}_{arch}_{dataset}_{ipc}_{train_attack}[_run{r}].pth (run 0
 * carries BEARD's exact name). The final model of training is kept: picking the epoch
 * with the best test accuracy, as BEARD's _{acc} files do, selects on the test set.
 *
 * "distill": stage 1 (src/distill, what `beard distill` runs) makes the method's pool, one
 * per dataset and IPC, from the real training split ("train_limit" applies; SYNTHETIC:
 * 2000 images), written in BEARD's layout as
 * out/dataset_pool/<METHOD>/res_{distill method}_{dataset}_{arch}_{ipc}ipc.pt (with the
 * method's .pkl and vis_*.png); the method's training cells train on it. Its keys, after
 * `beard distill --config`'s, read by its parser: "method" (a method of `beard distill
 * --help`; default the grid method's name), "arch" or "model" (the distilling network;
 * default the method's, ConvNet for the matching methods), "ipc" (a number or a list: the
 * grid IPCs this method covers; default all of them), "iterations" or "Iteration"
 * (default the method's, as beard distill), "seed" (default the grid's), "checkpoint_every" (default 100: a killed distillation resumes from its last
 * checkpoint, named by the cell's hash so that a changed setting never resumes a stale
 * one), and every parameter of the method by its official name ("lr_img": 0.5). An
 * unknown method or parameter, a bad value or an IPC the training split cannot fill is
 * reported before any cell runs. Same settings and thread count: the pool equals what
 * `beard distill` writes, tensor for tensor. 2x2-mosaic sets (IDM's "aug") are unpacked
 * for training as BEARD's "aug" does, without "unpack4"; "learned_lr": true trains with
 * the rate the method learned (MTT's syn_lr; refused for a method that learns none).
 * Files the parameters name (a teacher, MTT's buffers) enter the distill cell's hash by
 * content. The training cells train on the res file with the grid's "train" recipe; the
 * decoupled methods (SRe2L, CDA, SC-DD, G-VBSM, DELT) are evaluated with their teacher's
 * soft labels when that recipe names one ("teacher"), and on the float images rather than
 * the JPEG folder their official evaluation reads.
 *
 * Cells. Each cell kind is one entry of the table in grid_cells.c (how it is keyed,
 * configured, costed and run): "distill" (a pool from a method's distill settings),
 * "train" (a model from a pool: a file, the real training set or a distill cell's pool),
 * "clean" (clean accuracy and the clean pass's time, per model and semantics: BEARD's
 * t_c), "attack" (one attack in one mode and semantics on one model). BEARD logs are
 * imported as rows, not run. A cell's configuration hash covers everything it depends
 * on: a training cell's covers its distill cell's hash and the set's identity, so a
 * changed distill setting re-distills and retrains, and an unchanged one is reused.
 */
#ifndef BEARD_GRID_H
#define BEARD_GRID_H

#include <cjson/cJSON.h>

#include "../attacks/runner.h"
#include "../data/dataset.h"
#include "../distill/distill.h"
#include "../train/train_config.h"
#include "../store/store.h"

#define GRID_MAX_LIST 16
#define GRID_MAX_METHODS 64
#define GRID_MAX_ATTACKS 64
#define GRID_MAX_LOGS 64
#define GRID_PATH 1024

// problems found while reading or checking a grid: all of them, not the first
typedef struct {
    int n, cap;
    char (*msg)[ERR_MAX];
} GridIssues;

void grid_issues_init(GridIssues *g);
void grid_issue(GridIssues *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void grid_issues_free(GridIssues *g);

typedef enum { GRID_SRC_AUTO, GRID_SRC_MODEL, GRID_SRC_POOL, GRID_SRC_FULL, GRID_SRC_DISTILL } GridSourceKind;

typedef struct {
    char name[64];
    GridSourceKind src;      // AUTO: model_pool, else pool
    char model[GRID_PATH];   // template
    char pool[GRID_PATH];    // template (relative to dataset_pool unless it exists as given)
    int unpack4, learned_lr, pixels, exp;
    // "distill" (src GRID_SRC_DISTILL): the stage's settings (method, arch, iterations,
    // seed, checkpoint_every and the method's parameters; ipc and dataset set per cell)
    const DistillMethodDef *distill_def;
    DistillSettings distill;
    unsigned distill_ipcs;   // bit i: the grid's ipcs[i] is distilled
} GridMethod;

typedef struct {
    const AttackDef *def;
    AttackParams params;
    char label[64];          // "PGD", or "PGD[eps=0.0156863]" for a variant
    double eps;              // the variant's eps (NAN if the attack has none)
} GridAttack;

typedef struct {
    char path[GRID_PATH];    // the grid file, or "(command line)"
    char name[64];
    int n_datasets;
    char datasets[GRID_MAX_LIST][32]; // canonical names ("CIFAR10", "SYNTHETIC")
    int n_ipcs;
    char ipcs[GRID_MAX_LIST][16];
    int n_archs;
    char archs[GRID_MAX_LIST][32];
    int n_train_attacks;
    char train_attacks[GRID_MAX_LIST][48];
    int runs;
    int n_methods;
    GridMethod methods[GRID_MAX_METHODS];
    int n_attacks;
    GridAttack attacks[GRID_MAX_ATTACKS];
    int n_modes;
    int modes[2];            // 1 targeted, 0 untargeted, in BEARD's order
    int n_sems;
    Semantics sems[2];
    Preset preset;
    TargetPolicy policy;
    long limit;              // test images (0: all)
    long train_limit;        // training images of "src_dataset" and "distill" methods (0: all; SYNTHETIC: 2000)
    int batch, threads;
    uint64_t seed;
    TrainSettings train;     // the recipe ("train"); dataset/method/pool fields unused
    char data[GRID_PATH], out[GRID_PATH], dataset_pool[GRID_PATH], store[GRID_PATH];
    int n_model_pools;
    char model_pools[4][GRID_PATH];
    int n_logs;
    char logs[GRID_MAX_LOGS][GRID_PATH];
    char published[GRID_PATH];
} Grid;

// Reads a grid from JSON (root; `name` for messages). Every problem goes to iss; returns
// -1 when there was any.
int grid_from_json(Grid *g, const cJSON *root, const char *name, GridIssues *iss);
// the JSON of a grid file (parse errors go to iss)
cJSON *grid_file_json(const char *path, GridIssues *iss);

// ----------------------------------------------------------------------------
// the plan: cells

typedef enum { CELL_DISTILL, CELL_TRAIN, CELL_CLEAN, CELL_ATTACK, CELL_N_KINDS } CellKind;
typedef enum { CELL_PENDING, CELL_DONE, CELL_RUNNING, CELL_FAILED, CELL_BLOCKED } CellStatus;

typedef struct {
    char path[GRID_PATH];    // the checkpoint (given, found, or written by train_cell)
    char sha256[65];         // its weights' checksum (grid_net_sha); "" until known
    int train_cell;          // the cell that writes it, or -1 for a file
    int dataset, method, ipc, arch, train_attack, run;
} GridModel;

// a distilled set the grid makes (a distill cell's output, a training cell's input)
typedef struct {
    int dataset, method, ipc;  // grid indices
    char arch[32];             // the network it is distilled with
    int cell;                  // the distill cell that writes it
    char path[GRID_PATH];      // the res file
    char sha256[65];           // its identity (grid_pool_sha) once written (or found in the store), else ""
    int n;                     // its images (as planned; as written once known)
    int packed4;               // 2x2 mosaics (IDM's aug): unpacked for training
    int learns_lr;             // the method learns a learning rate (MTT's syn_lr)
    double lr;                 // that rate once distilled (the res file does not hold it), else 0
    int train_n;               // the real training images it is distilled from (0: none, no_real_data)
    char train_sha256[65];
    double passes;             // estimated passes per update
    long updates;
} GridPool;

typedef struct {
    char name[32];
    const DatasetInfo *info;
    int n;                   // test images used
    char sha256[65];         // of the test images and labels
    int train_n;             // the training split, when an attack trains on it (LGV); else 0
    char train_sha256[65];
} GridTestSet;

typedef struct {
    CellKind kind;
    char key[STORE_KEY_MAX];
    int model;               // the model it evaluates (clean, attack) or writes (train); -1: distill
    int pool;                // distill: the pool it writes; train: the grid pool it trains on; else -1
    int attack, targeted, sem; // attack: index into attacks; -1 where n/a
    double cost;             // estimated forward+backward passes, summed over samples
    char out_path[GRID_PATH]; // the file it writes, "" if none
    // run time
    CellStatus status;
    int looked_up;           // the store was asked whether it is done
    char hash[65];           // "" until its inputs are known
    char *config;            // canonical JSON (owned)
    char pool_path[GRID_PATH]; // train: the resolved pool ("" for the real training set)
    char pool_sha256[65];
    int pool_n;
} GridCell;

typedef struct {
    Grid *grid;
    int n_tests;
    GridTestSet tests[GRID_MAX_LIST]; // per dataset, in grid order
    int n_models;
    GridModel *models;
    int n_cells;
    GridCell *cells;
    int n_pools;
    GridPool *pools;
    int n_imports;           // rows from BEARD logs (source "beard-log")
    StoreRow *imports;
} GridPlan;

// Expands the grid and checks everything a cell will need, before any runs: datasets,
// architectures, attacks, checkpoints (loaded), pool files (parsed), training settings,
// logs (parsed), output paths (no two cells may write one file). Problems go to iss
// (returns -1 when any). Fills test-set and checkpoint checksums.
int grid_plan(GridPlan *p, Grid *g, GridIssues *iss);
void grid_plan_free(GridPlan *p);

// The cell's configuration and hash, once its inputs are known (the model's checksum; a
// training cell's grid pool); 0 when set, 1 when not yet known, -1 on error.
int grid_cell_prepare(GridPlan *p, int c, Err *e);

// the coordinates of a cell into a store row (key, kind, dataset, method, ...)
void grid_cell_row(const GridPlan *p, int c, StoreRow *r);

// the dataset's info (SYNTHETIC included)
const DatasetInfo *grid_dataset_info(const char *name);
// the test split of grid dataset d as the cells see it (limit applied; SYNTHETIC: `limit`
// images, 500 by default), and the training split (SYNTHETIC: 2000 images)
int grid_load_testset(const Grid *g, int d, Dataset *ds, Err *e);
int grid_load_trainset(const Grid *g, int d, Dataset *ds, Err *e);
// the content hash of an input named by a path: a file, a folder (every file under it, by
// relative path), or BEARD's MTT prefix (<prefix>images_best.pt, ...)
int grid_source_sha(const char *path, char out[65], Err *e);
// the SHA-256 of a dataset's images and labels (test sets, training splits)
void grid_dataset_sha(const Dataset *ds, char out[65]);
// A model's identity: the SHA-256 of its architecture name, parameters and buffers (not of
// the file: a checkpoint's zip entries carry timestamps, so two saves of one model differ)
void grid_net_sha(const Net *net, char out[65]);
// the identity of model m from its file
int grid_model_sha(const GridPlan *p, int m, char out[65], Err *e);
// 1 when parameter i of p is a TEXT parameter (its value is a slot of p->text)
int grid_param_is_text(const AttackDef *def, const AttackParams *p, int i);
// estimated forward+backward passes per sample of an attack with these parameters
double grid_attack_passes(const AttackDef *def, const AttackParams *params);
// A distilled set's identity: the SHA-256 of its tensors (shape, images, labels, soft
// labels, learned lr), not of the file: a .pt's zip entries carry timestamps, so two
// writes of one set differ. grid_pool_file_sha loads grid pool k's file as the training
// cells do (the method's pool options, before unpacking), with the learned rate lr.
void grid_pool_sha(const Pool *pool, char out[65]);
int grid_pool_file_sha(const GridPlan *p, int k, const char *path, double lr, char out[65], Err *e);
// the learned learning rate a distill row recorded (its extra "learned_lr"), or 0
double grid_row_learned_lr(const StoreRow *r);
// a distill cell's stage settings for its pool (config, parameters, the res/pkl/png paths
// and the hash-named checkpoint); the cell's hash must be known for the checkpoint name
int grid_distill_setup(const GridPlan *p, int pool, const char *hash, DistillConfig *cfg, DistillParams *params,
                       DistillPaths *paths, Err *e);
// estimated forward+backward passes (over images) of one update of a method: the real
// batches it embeds and the synthetic set it differentiates, from its parameters
double grid_distill_passes(const DistillParams *params, int K, int ipc, int min_class);

// ----------------------------------------------------------------------------
// cell kinds (grid_cells.c)

typedef struct GridWorker GridWorker; // a process's cache of test sets and models

GridWorker *grid_worker_new(const GridPlan *p);
void grid_worker_free(GridWorker *w);

typedef struct {
    const char *name;
    // the kind's part of the configuration that the hash covers
    int (*config)(const GridPlan *p, const GridCell *c, cJSON *cfg, Err *e);
    // estimated cost in passes (forward + backward over samples)
    double (*cost)(const GridPlan *p, const GridCell *c);
    // runs the cell; fills the results part of row (n, accuracies, blobs, model)
    int (*run)(GridWorker *w, const GridPlan *p, const GridCell *c, StoreRow *row, Err *e);
} GridCellKindDef;

const GridCellKindDef *grid_cell_kind(CellKind k);

// runs cell c (any kind) into row: the results part only
int grid_cell_run(GridWorker *w, const GridPlan *p, int c, StoreRow *row, Err *e);

// BEARD's logs of the model (run, semantics) rows: regenerated files under out/model_pool
int grid_write_beard_logs(const GridPlan *p, Store *s, int *written, Err *e);

// ----------------------------------------------------------------------------
// running (grid_run.c)

typedef struct {
    int force;               // rerun cells already in the store
    int dry_run;
    int quiet;
    int shard, n_shards;     // n_shards > 1: run only this shard's cells
    int progress;            // per-cell progress bars of long cells
} GridRunOptions;

typedef struct {
    int cells, done_before, ran, failed, blocked, imported;
    double seconds;
} GridRunStats;

// shard assignment: whole models (a training cell and everything evaluating its model),
// and whole pools (a distill cell and every model trained on its pool)
int grid_cell_shard(const GridPlan *p, int c, int n_shards);

// Runs the plan's pending cells in this process, writing each finished cell to the store.
// A failed cell is reported and the others go on (cells needing its model are blocked);
// returns -1 when any failed.
int grid_run_local(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Err *e);
// The same under MPI: rank 0 (which owns the store) schedules and the other ranks compute.
int grid_run_mpi(GridPlan *p, Store *s, const GridRunOptions *o, GridRunStats *st, Err *e);
// prints the cell list with costs (dry run)
void grid_print_plan(const GridPlan *p, Store *s, const GridRunOptions *o, FILE *f);

#endif
