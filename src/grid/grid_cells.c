/*
 * grid_cells.c: the kinds of cells a grid is made of, one table entry each, and the
 * worker that runs them with the stages as libraries:
 *
 *   distill src/distill (distill_run: what `beard distill` runs, with the same settings
 *           the same set) on the real training split; writes the method's release files
 *           under out/dataset_pool/<METHOD>/, checkpoints every checkpoint_every updates
 *           (named by the cell's hash) and resumes from one a killed run left
 *   train   src/train (train_model, the BEARD/DC-bench recipe) on a pool file, a distill
 *           cell's pool or the real training set; writes the checkpoint atomically
 *           (checkpoint_save)
 *   clean   the clean pass in one semantics (attack_clean_predict): accuracy, per-sample
 *           correctness and its time, BEARD's t_c
 *   attack  src/attacks/runner (attack_evaluate): exactly what `beard attack` runs, so
 *           a grid cell and `beard attack` with the same settings agree sample for sample
 *
 * A new kind is one more entry of `kinds`: its configuration (what the hash covers), its
 * cost estimate and its run function.
 *
 * The worker keeps the last test set and the last model loaded: a grid's cells are
 * ordered by model, so each model and test set is loaded once per process.
 */
#include <ctype.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../attacks/result_json.h"
#include "../core/parallel.h"
#include "../data/pool.h"
#include "../evaluate/beardlog.h"
#include "../io/file.h"
#include "../models/checkpoint.h"
#include "../models/convnet.h"
#include "../store/store.h"
#include "../train/train.h"
#include "grid.h"

struct GridWorker {
    const GridPlan *p;
    int test_d; // the dataset whose test set is loaded, -1 for none
    Dataset ds;
    float *x;   // (n, C, H, W) pixels
    AttackData ad;
    int model;  // the model loaded in net, -1 for none
    Net net;
    int train_d; // the dataset whose training split is loaded (attacks that train), -1
    Dataset train_ds;
    float *train_x; // (n, C, H, W) pixels
};

GridWorker *grid_worker_new(const GridPlan *p) {
    GridWorker *w = calloc(1, sizeof(GridWorker));
    if (!w) return NULL;
    w->p = p;
    w->test_d = w->model = w->train_d = -1;
    return w;
}

static void drop_test(GridWorker *w) {
    if (w->test_d < 0) return;
    xfree(w->x);
    dataset_free(&w->ds);
    w->x = NULL;
    w->test_d = -1;
}

static void drop_model(GridWorker *w) {
    if (w->model < 0) return;
    net_free(&w->net);
    w->model = -1;
}

static void drop_train(GridWorker *w) {
    if (w->train_d < 0) return;
    xfree(w->train_x);
    dataset_free(&w->train_ds);
    w->train_x = NULL;
    w->train_d = -1;
}

void grid_worker_free(GridWorker *w) {
    if (!w) return;
    drop_test(w);
    drop_model(w);
    drop_train(w);
    free(w);
}

// the training split as attacks that train on it see it
static int worker_train(GridWorker *w, int d, AttackTrainSet *ts, Err *e) {
    if (w->train_d != d) {
        drop_train(w);
        if (grid_load_trainset(w->p->grid, d, &w->train_ds, e)) {
            dataset_free(&w->train_ds);
            return err_wrap(e, "the %s training split", w->p->tests[d].name);
        }
        size_t D = (size_t)w->train_ds.c * w->train_ds.h * w->train_ds.w;
        w->train_x = xmalloc(sizeof(float) * D * w->train_ds.n);
        if (!w->train_x) {
            dataset_free(&w->train_ds);
            return err_set(e, "out of memory for %d training images", w->train_ds.n);
        }
        dataset_to_float(&w->train_ds, 0, w->train_ds.n, w->train_x, 0);
        w->train_d = d;
    }
    const DatasetInfo *in = w->p->tests[d].info;
    *ts = (AttackTrainSet){.x = w->train_x, .y = w->train_ds.labels, .n = w->train_ds.n, .mean = in->mean, .std = in->std};
    return 0;
}

static int worker_test(GridWorker *w, int d, Err *e) {
    if (w->test_d == d) return 0;
    drop_test(w);
    const GridTestSet *t = &w->p->tests[d];
    if (grid_load_testset(w->p->grid, d, &w->ds, e)) {
        dataset_free(&w->ds);
        return err_wrap(e, "the %s test set", t->name);
    }
    size_t D = (size_t)w->ds.c * w->ds.h * w->ds.w;
    w->x = xmalloc(sizeof(float) * D * w->ds.n);
    if (!w->x) {
        dataset_free(&w->ds);
        return err_set(e, "out of memory for %d test images", w->ds.n);
    }
    dataset_to_float(&w->ds, 0, w->ds.n, w->x, 0);
    w->ad = (AttackData){.x = w->x, .y = w->ds.labels, .n = w->ds.n, .C = w->ds.c, .H = w->ds.h, .W = w->ds.w,
                         .mean = t->info->mean, .std = t->info->std};
    w->test_d = d;
    return 0;
}

// loads model m, checking that the file is the one the cell was planned for
static int worker_model(GridWorker *w, int m, Err *e) {
    if (w->model == m) return 0;
    drop_model(w);
    const GridModel *gm = &w->p->models[m];
    const Grid *g = w->p->grid;
    const DatasetInfo *in = w->p->tests[gm->dataset].info;
    if (checkpoint_load(&w->net, gm->path, g->archs[gm->arch], in->c, in->n_classes, in->h, in->w, e)) return -1;
    char sha[65];
    grid_net_sha(&w->net, sha);
    if (gm->sha256[0] && strcmp(sha, gm->sha256)) {
        net_free(&w->net);
        return err_set(e, "%s changed since the grid was planned (weights %.12s, expected %.12s)", gm->path, sha, gm->sha256);
    }
    w->model = m;
    return 0;
}

// ----------------------------------------------------------------------------
// distill

static int distill_config_json(const GridPlan *p, const GridCell *c, cJSON *cfg, Err *e) {
    const GridPool *gp = &p->pools[c->pool];
    DistillConfig dc;
    DistillParams prm;
    DistillPaths paths;
    if (grid_distill_setup(p, c->pool, NULL, &dc, &prm, &paths, e)) return -1;
    cJSON *tr = cJSON_AddObjectToObject(cfg, "train_split");
    cJSON_AddNumberToObject(tr, "limit", (double)p->grid->train_limit);
    cJSON_AddNumberToObject(tr, "n", gp->train_n);
    cJSON_AddStringToObject(tr, "sha256", gp->train_sha256);
    cJSON_AddStringToObject(cfg, "method", dc.method->name);
    cJSON_AddStringToObject(cfg, "arch", dc.arch);
    cJSON_AddNumberToObject(cfg, "ipc", dc.ipc);
    cJSON_AddNumberToObject(cfg, "iterations", (double)dc.iterations);
    cJSON_AddNumberToObject(cfg, "seed", (double)dc.seed);
    // every parameter, the defaults included: a changed default in a new beard is a new cell
    cJSON *pa = cJSON_AddObjectToObject(cfg, "params");
    for (int i = 0; i < prm.n; i++) {
        const DistillParamDef *d = &prm.def->params[i];
        if (d->type == DPARAM_STR || d->type == DPARAM_LIST) cJSON_AddStringToObject(pa, d->name, prm.s[i]);
        else if (d->type == DPARAM_BOOL) cJSON_AddBoolToObject(pa, d->name, prm.v[i] != 0);
        else cJSON_AddNumberToObject(pa, d->name, prm.v[i]);
    }
    // the files the parameters name (a teacher's checkpoint, MTT's expert buffers), by
    // content: a replaced teacher distils again
    cJSON *in = cJSON_AddObjectToObject(cfg, "inputs");
    for (int i = 0; i < prm.n; i++) {
        const DistillParamDef *d = &prm.def->params[i];
        if (d->type != DPARAM_STR && d->type != DPARAM_LIST) continue;
        char item[DISTILL_STR_MAX], sha[65];
        int n = distill_param_item(&prm, d->name, 0, item, sizeof(item));
        for (int k = 0; k < n; k++) {
            struct stat st;
            distill_param_item(&prm, d->name, k, item, sizeof(item));
            if (!item[0] || stat(item, &st) || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) continue;
            if (grid_source_sha(item, sha, e)) return err_wrap(e, "%s %s", prm.def->name, d->name);
            cJSON_AddStringToObject(in, item, sha);
        }
    }
    return 0;
}

static double distill_cost(const GridPlan *p, const GridCell *c) {
    const GridPool *gp = &p->pools[c->pool];
    return (double)gp->updates * gp->passes;
}

static int distill_cell_run(GridWorker *w, const GridPlan *p, const GridCell *c, StoreRow *row, Err *e) {
    (void)w;
    const Grid *g = p->grid;
    const GridPool *gp = &p->pools[c->pool];
    const GridMethod *gm = &g->methods[gp->method];
    DistillConfig cfg;
    DistillParams prm;
    DistillPaths paths;
    if (grid_distill_setup(p, c->pool, c->hash, &cfg, &prm, &paths, e)) return -1;
    Dataset tr;
    memset(&tr, 0, sizeof(tr));
    int needs_real = !cfg.method->no_real_data; // SRe2L, CDA, SC-DD recover from their teacher alone
    if (needs_real && grid_load_trainset(g, gp->dataset, &tr, e)) {
        dataset_free(&tr);
        return err_wrap(e, "the %s training split", p->tests[gp->dataset].name);
    }
    char sha[65];
    if (needs_real) grid_dataset_sha(&tr, sha);
    if (needs_real && strcmp(sha, gp->train_sha256)) {
        dataset_free(&tr);
        return err_set(e, "the %s training split changed since the grid was planned", p->tests[gp->dataset].name);
    }
    const Dataset *train = needs_real ? &tr : NULL;
    if (file_mkdirs(paths.dir, e)) {
        dataset_free(&tr);
        return -1;
    }
    // a killed run left its checkpoint (named by this configuration's hash): go on from it
    struct stat st;
    int resume = cfg.ckpt_every > 0 && stat(cfg.ckpt_path, &st) == 0;
    DistillResult res;
    int rc = distill_run(&cfg, &prm, train, NULL, NULL, &paths, resume, &res, e);
    if (rc && resume && strstr(e->msg, "cannot resume")) { // not a checkpoint this build can read
        fprintf(stderr, "beard run: %s: %s; distilling from the start\n", c->key, e->msg);
        distill_result_free(&res);
        remove(cfg.ckpt_path);
        resume = 0;
        rc = distill_run(&cfg, &prm, train, NULL, NULL, &paths, 0, &res, e);
    }
    dataset_free(&tr);
    if (rc) {
        distill_result_free(&res);
        return -1;
    }
    // the set as the training cells will read it
    Pool pool;
    PoolOptions po = {.info = p->tests[gp->dataset].info, .exp = gm->exp, .pixels = gm->pixels};
    if (pool_load(&pool, paths.res, &po, e)) {
        pool_free(&pool);
        distill_result_free(&res);
        return err_wrap(e, "the distilled set %s", paths.res);
    }
    pool.lr = res.syn_lr; // the res file holds the images; the stage keeps the learned rate
    grid_pool_sha(&pool, row->model_sha256);
    if ((gp->packed4 || gm->unpack4) && pool_unpack4(&pool, e)) {
        pool_free(&pool);
        distill_result_free(&res);
        return err_wrap(e, "the distilled set %s", paths.res);
    }
    snprintf(row->model_path, sizeof(row->model_path), "%s", c->out_path); // = paths.res
    row->n = pool.n;
    row->seconds = res.seconds;
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "pool", paths.res);
    cJSON_AddNumberToObject(x, "images", pool.n);
    if (res.syn_lr > 0) cJSON_AddNumberToObject(x, "learned_lr", res.syn_lr);
    cJSON_AddNumberToObject(x, "steps", (double)res.steps);
    cJSON_AddNumberToObject(x, "steps_run", (double)res.steps_run);
    cJSON_AddNumberToObject(x, "resumed_from", (double)res.resumed_from);
    cJSON_AddNumberToObject(x, "final_loss", res.final_loss);
    cJSON_AddNumberToObject(x, "iterations_per_second", res.seconds > 0 ? res.steps_run / res.seconds : 0);
    cJSON_AddNumberToObject(x, "peak_memory_mb", res.peak_mb);
    row->extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    pool_free(&pool);
    distill_result_free(&res);
    return 0;
}

// ----------------------------------------------------------------------------
// train

// the recipe of a training cell (the grid's "train" settings with its training attack)
static int train_recipe(const GridPlan *p, const GridCell *c, TrainConfig *cfg, Err *e) {
    const Grid *g = p->grid;
    const GridModel *m = &p->models[c->model];
    TrainSettings s = g->train;
    snprintf(s.train_attack, sizeof(s.train_attack), "%s", g->train_attacks[m->train_attack]);
    if (!strcasecmp(s.train_attack, "None")) s.n_params = 0; // "train_params" are the training attacks'
    if (train_settings_config(&s, SEM_BEARD, cfg, e)) return -1;
    cfg->eval_every = 0; // the final test accuracy only
    cfg->log = NULL;
    cfg->log_every = 0;
    return 0;
}

static int train_config_json(const GridPlan *p, const GridCell *c, cJSON *cfg, Err *e) {
    const Grid *g = p->grid;
    const GridModel *m = &p->models[c->model];
    const GridMethod *gm = &g->methods[m->method];
    TrainConfig tc;
    if (train_recipe(p, c, &tc, e)) return -1;
    cJSON_AddStringToObject(cfg, "method", gm->name);
    cJSON_AddStringToObject(cfg, "ipc", g->ipcs[m->ipc]);
    cJSON_AddStringToObject(cfg, "arch", g->archs[m->arch]);
    cJSON_AddNumberToObject(cfg, "seed", (double)(g->seed + (uint64_t)m->run));
    cJSON *src = cJSON_AddObjectToObject(cfg, "source");
    cJSON_AddStringToObject(src, "kind", c->pool >= 0 ? "distill" : c->pool_path[0] ? "pool" : "src_dataset");
    if (c->pool >= 0) cJSON_AddStringToObject(src, "distill_hash", p->cells[p->pools[c->pool].cell].hash);
    cJSON_AddStringToObject(src, "sha256", c->pool_sha256);
    cJSON_AddNumberToObject(src, "n", c->pool_n);
    cJSON_AddBoolToObject(src, "unpack4", gm->unpack4 || (c->pool >= 0 && p->pools[c->pool].packed4));
    cJSON_AddBoolToObject(src, "learned_lr", gm->learned_lr);
    cJSON_AddBoolToObject(src, "pixels", gm->pixels);
    cJSON_AddNumberToObject(src, "exp", gm->exp);
    cJSON *r = cJSON_AddObjectToObject(cfg, "recipe");
    cJSON_AddNumberToObject(r, "epochs", tc.epochs);
    cJSON_AddNumberToObject(r, "batch", tc.batch);
    cJSON_AddStringToObject(r, "optimizer", tc.optimizer == OPTIM_ADAM ? "adam" : "sgd");
    cJSON_AddNumberToObject(r, "lr", tc.lr);
    cJSON_AddNumberToObject(r, "momentum", tc.momentum);
    cJSON_AddNumberToObject(r, "weight_decay", tc.weight_decay);
    cJSON_AddBoolToObject(r, "lr_decay", tc.lr_decay);
    cJSON_AddStringToObject(r, "dsa_strategy", tc.dsa ? g->train.dsa_strategy : "None");
    cJSON *adv = cJSON_AddObjectToObject(r, "adversarial");
    cJSON_AddStringToObject(adv, "name", tc.adv.name);
    if (tc.adv.kind != TRAIN_ADV_NONE) {
        cJSON_AddStringToObject(adv, "semantics", semantics_name(tc.adv.sem));
        cJSON_AddBoolToObject(adv, "targeted", tc.adv.targeted);
    }
    if (tc.adv.kind == TRAIN_ADV_ATTACK) {
        cJSON *pa = cJSON_AddObjectToObject(adv, "params");
        for (int i = 0; i < tc.adv.params.n; i++) cJSON_AddNumberToObject(pa, tc.adv.params.names[i], tc.adv.params.values[i]);
    } else if (tc.adv.kind == TRAIN_ADV_TRADES) {
        cJSON_AddNumberToObject(adv, "beta", tc.adv.beta);
        cJSON_AddNumberToObject(adv, "eps", tc.adv.eps);
        cJSON_AddNumberToObject(adv, "step_size", tc.adv.step_size);
        cJSON_AddNumberToObject(adv, "steps", tc.adv.steps);
    }
    return 0;
}

static double train_cost(const GridPlan *p, const GridCell *c) {
    TrainConfig tc;
    Err e;
    if (train_recipe(p, c, &tc, &e)) return 0;
    double per = 2; // a forward and a backward pass per training sample
    if (tc.adv.kind == TRAIN_ADV_ATTACK) per += grid_attack_passes(tc.adv.def, &tc.adv.params);
    else if (tc.adv.kind == TRAIN_ADV_TRADES) per += 2.0 * tc.adv.steps + 1;
    return (double)(tc.epochs + 1) * c->pool_n * per;
}

static int train_run(GridWorker *w, const GridPlan *p, const GridCell *c, StoreRow *row, Err *e) {
    const Grid *g = p->grid;
    const GridModel *m = &p->models[c->model];
    const GridMethod *gm = &g->methods[m->method];
    const DatasetInfo *in = p->tests[m->dataset].info;
    TrainConfig cfg;
    if (train_recipe(p, c, &cfg, e)) return -1;
    char label[64];
    snprintf(label, sizeof(label), "train %s ipc %s run %d", gm->name, g->ipcs[m->ipc], m->run);
    cfg.run_label = label;
    if (worker_test(w, m->dataset, e)) return -1;
    Pool pool;
    Dataset tr;
    memset(&pool, 0, sizeof(pool));
    memset(&tr, 0, sizeof(tr));
    float *xt = NULL;
    Net net;
    int have_net = 0, rc = -1;
    if (c->pool_path[0]) {
        PoolOptions po = {.info = in, .exp = gm->exp, .pixels = gm->pixels};
        int unpack = gm->unpack4;
        if (pool_load(&pool, c->pool_path, &po, e)) goto done;
        if (c->pool >= 0) { // a distill cell's set: the one the hash was made of
            const GridPool *gp = &p->pools[c->pool];
            char sha[65];
            unpack |= gp->packed4;
            pool.lr = gp->lr;
            grid_pool_sha(&pool, sha);
            if (gp->sha256[0] && strcmp(sha, gp->sha256)) {
                err_set(e, "%s changed since it was distilled (checksum %.12s, expected %.12s)", c->pool_path, sha, gp->sha256);
                goto done;
            }
        }
        if (unpack && pool_unpack4(&pool, e)) goto done;
        if (gm->learned_lr) cfg.lr = (float)pool.lr;
    } else if (grid_load_trainset(g, m->dataset, &tr, e) || pool_from_dataset(&pool, &tr, in, e)) {
        goto done;
    }
    // the test set as the model sees it (normalised), for the final accuracy
    size_t D = (size_t)w->ds.c * w->ds.h * w->ds.w;
    xt = xmalloc(sizeof(float) * D * w->ds.n);
    if (!xt) {
        err_set(e, "out of memory");
        goto done;
    }
    dataset_to_float(&w->ds, 0, w->ds.n, xt, 1);
    TrainTest test = {.x = xt, .y = w->ds.labels, .n = w->ds.n};
    if (model_create(&net, g->archs[m->arch], in->c, in->n_classes, in->h, in->w, e)) goto done;
    have_net = 1;
    TrainResult res;
    if (train_model(&net, &pool, &test, &cfg, g->seed + (uint64_t)m->run, NULL, &res, e)) goto done;
    char dir[GRID_PATH];
    snprintf(dir, sizeof(dir), "%s", c->out_path);
    if (file_mkdirs(dirname(dir), e) || checkpoint_save(&net, c->out_path, e)) goto done;
    grid_net_sha(&net, row->model_sha256);
    snprintf(row->model_path, sizeof(row->model_path), "%s", c->out_path);
    row->n = test.n;
    row->accuracy = row->clean_accuracy = res.test_acc;
    row->clean_correct = (int)lround(res.test_acc * test.n / 100.0);
    row->seconds = res.seconds;
    row->passes = NAN;
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "train_loss", res.train_loss);
    cJSON_AddNumberToObject(x, "train_acc", res.train_acc);
    cJSON_AddNumberToObject(x, "steps", (double)res.steps);
    cJSON_AddNumberToObject(x, "pool_n", pool.n);
    cJSON_AddNumberToObject(x, "lr", cfg.lr);
    cJSON_AddStringToObject(x, "pool", c->pool_path[0] ? c->pool_path : "(training set)");
    row->extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    rc = 0;
done:
    if (have_net) net_free(&net);
    xfree(xt);
    pool_free(&pool);
    dataset_free(&tr);
    return rc;
}

// ----------------------------------------------------------------------------
// clean

static int clean_config_json(const GridPlan *p, const GridCell *c, cJSON *cfg, Err *e) {
    (void)e;
    cJSON_AddStringToObject(cfg, "semantics", semantics_name((Semantics)c->sem));
    cJSON_AddNumberToObject(cfg, "batch", p->grid->batch);
    return 0;
}

static double clean_cost(const GridPlan *p, const GridCell *c) { return p->tests[p->models[c->model].dataset].n; }

static int clean_run(GridWorker *w, const GridPlan *p, const GridCell *c, StoreRow *row, Err *e) {
    const GridModel *m = &p->models[c->model];
    if (worker_test(w, m->dataset, e) || worker_model(w, c->model, e)) return -1;
    int n = w->ad.n;
    int *pred = calloc(n, sizeof(int));
    row->clean_ok = calloc(n, 1);
    if (!pred || !row->clean_ok) {
        free(pred);
        return err_set(e, "out of memory");
    }
    double t0 = time_now();
    if (attack_clean_predict(&w->net, &w->ad, (Semantics)c->sem, p->grid->batch, pred, NULL, e)) {
        free(pred);
        return -1;
    }
    row->seconds = time_now() - t0;
    row->n = n;
    for (int i = 0; i < n; i++) {
        row->clean_ok[i] = pred[i] == w->ad.y[i];
        row->clean_correct += row->clean_ok[i];
    }
    free(pred);
    row->accuracy = row->clean_accuracy = 100.0 * row->clean_correct / n;
    row->passes = 1; // one forward pass per sample
    return 0;
}

// ----------------------------------------------------------------------------
// attack

static int attack_config_json(const GridPlan *p, const GridCell *c, cJSON *cfg, Err *e) {
    (void)e;
    const Grid *g = p->grid;
    const GridAttack *a = &g->attacks[c->attack];
    cJSON *o = cJSON_AddObjectToObject(cfg, "attack");
    cJSON_AddStringToObject(o, "name", a->def->name);
    cJSON *pa = cJSON_AddObjectToObject(o, "params");
    for (int i = 0; i < a->params.n; i++) {
        if (grid_param_is_text(a->def, &a->params, i)) {
            char t[ATTACK_TEXT_LEN];
            cJSON_AddStringToObject(pa, a->params.names[i], attack_param_text(&a->params, a->def, i, t, sizeof(t)));
        } else cJSON_AddNumberToObject(pa, a->params.names[i], a->params.values[i]);
    }
    cJSON_AddBoolToObject(cfg, "targeted", c->targeted);
    if (c->targeted) cJSON_AddStringToObject(cfg, "target_policy", target_policy_name(g->policy));
    cJSON_AddStringToObject(cfg, "semantics", semantics_name((Semantics)c->sem));
    cJSON_AddNumberToObject(cfg, "seed", (double)g->seed);
    cJSON_AddNumberToObject(cfg, "batch", g->batch);
    if (attack_needs_train(a->def, &a->params)) {
        const GridTestSet *t = &p->tests[p->models[c->model].dataset];
        cJSON *tr = cJSON_AddObjectToObject(cfg, "train_split");
        cJSON_AddNumberToObject(tr, "n", t->train_n);
        cJSON_AddStringToObject(tr, "sha256", t->train_sha256);
    }
    return 0;
}

static double attack_cost(const GridPlan *p, const GridCell *c) {
    const GridAttack *a = &p->grid->attacks[c->attack];
    return grid_attack_passes(a->def, &a->params) * p->tests[p->models[c->model].dataset].n;
}

static int attack_run(GridWorker *w, const GridPlan *p, const GridCell *c, StoreRow *row, Err *e) {
    const Grid *g = p->grid;
    const GridModel *m = &p->models[c->model];
    const GridAttack *a = &g->attacks[c->attack];
    if (worker_test(w, m->dataset, e) || worker_model(w, c->model, e)) return -1;
    RunConfig cfg = {.sem = (Semantics)c->sem, .policy = g->policy, .batch = g->batch, .seed = g->seed,
                     .progress = 1};
    AttackTrainSet train;
    if (attack_needs_train(a->def, &a->params)) {
        if (worker_train(w, m->dataset, &train, e)) return -1;
        cfg.train = &train;
    }
    AttackResult r;
    if (attack_evaluate(&w->net, &w->ad, a->def, &a->params, c->targeted, &cfg, &r, e)) return -1;
    int n = r.n;
    row->n = n;
    row->clean_correct = r.clean_correct;
    row->adv_correct = r.adv_correct;
    row->clean_accuracy = r.clean_accuracy;
    row->accuracy = r.accuracy;
    row->asr = r.asr;
    row->seconds = r.seconds;
    row->passes = r.forward_per_sample + r.backward_per_sample;
    row->clean_ok = malloc(n);
    row->adv_ok = malloc(n);
    if (!row->clean_ok || !row->adv_ok) {
        attack_result_free(&r);
        return err_set(e, "out of memory");
    }
    memcpy(row->clean_ok, r.clean_ok, n);
    memcpy(row->adv_ok, r.adv_ok, n);
    cJSON *x = attack_result_json(&r, 0);
    if (c->targeted) cJSON_AddStringToObject(x, "target_policy", target_policy_name(g->policy));
    row->extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    attack_result_free(&r);
    return 0;
}

// ----------------------------------------------------------------------------
// the table

static const GridCellKindDef kinds[CELL_N_KINDS] = {
    [CELL_DISTILL] = {"distill", distill_config_json, distill_cost, distill_cell_run},
    [CELL_TRAIN] = {"train", train_config_json, train_cost, train_run},
    [CELL_CLEAN] = {"clean", clean_config_json, clean_cost, clean_run},
    [CELL_ATTACK] = {"attack", attack_config_json, attack_cost, attack_run},
};

const GridCellKindDef *grid_cell_kind(CellKind k) { return &kinds[k]; }

int grid_cell_run(GridWorker *w, const GridPlan *p, int c, StoreRow *row, Err *e) {
    const GridCell *cell = &p->cells[c];
    double t0 = time_now();
    if (kinds[cell->kind].run(w, p, cell, row, e)) return err_wrap(e, "%s", cell->key);
    row->wall_seconds = time_now() - t0;
    row->threads = parallel_threads();
    store_machine(row->machine, sizeof(row->machine));
    return 0;
}

// ----------------------------------------------------------------------------
// BEARD's logs, regenerated from the store

static void word_of(const char *s, char *out, size_t n) {
    size_t k = 0;
    for (; s[k] && k + 1 < n; k++) out[k] = (isalnum((unsigned char)s[k]) || s[k] == '_') ? s[k] : '_';
    out[k] = 0;
    while (k > 1 && out[k - 1] == '_') out[--k] = 0;
}

int grid_write_beard_logs(const GridPlan *p, Store *s, int *written, Err *e) {
    const Grid *g = p->grid;
    *written = 0;
    if (g->n_modes != 2) return 0; // a BEARD line carries both modes
    for (int mi = 0; mi < p->n_models; mi++) {
        const GridModel *m = &p->models[mi];
        const GridMethod *gm = &g->methods[m->method];
        for (int si = 0; si < g->n_sems; si++) {
            Semantics sem = g->sems[si];
            // the rows: clean, then each attack's two modes
            StoreRow clean;
            int have_clean = 0;
            char *text = NULL;
            size_t len = 0, cap = 0;
            const char *names[GRID_MAX_ATTACKS + 1];
            char words[GRID_MAX_ATTACKS + 1][64];
            int n_names = 0;
            snprintf(words[n_names], sizeof(words[0]), "Clean");
            names[n_names] = words[n_names];
            n_names++;
            for (int a = 0; a < g->n_attacks; a++) {
                word_of(g->attacks[a].label, words[n_names], sizeof(words[0]));
                names[n_names] = words[n_names];
                n_names++;
            }
            int targets[2] = {1, 0};
            BeardLogContext ctx = {.dataset = g->datasets[m->dataset], .ipc = g->ipcs[m->ipc], .model = g->archs[m->arch],
                                   .dsa = 1, .num_eval = 0, .aug = gm->unpack4, .src_dataset = gm->src == GRID_SRC_FULL,
                                   .attacks = names, .n_attacks = n_names, .targets = targets, .n_targets = 2};
            int ok = 1;
            for (int c = 0; c < p->n_cells && ok; c++) {
                const GridCell *cell = &p->cells[c];
                if (cell->model != mi || cell->sem != (int)sem || !cell->hash[0]) continue;
                if (cell->kind == CELL_CLEAN) {
                    int f = store_get(s, cell->key, cell->hash, &clean, e);
                    if (f < 0) return -1;
                    have_clean = f;
                }
            }
            if (!have_clean) continue;
            char line[4096], ts[32];
            BeardLogLine l;
            memset(&l, 0, sizeof(l));
            snprintf(l.attack, sizeof(l.attack), "Clean");
            snprintf(l.method, sizeof(l.method), "%s", gm->name);
            for (int k = 0; k < 2; k++) l.acc[k] = clean.clean_accuracy, l.seconds[k] = clean.seconds;
            int n_lines = 0;
            for (int a = -1; a < g->n_attacks && ok; a++) {
                if (a >= 0) {
                    memset(&l, 0, sizeof(l));
                    snprintf(l.attack, sizeof(l.attack), "%s", words[a + 1]);
                    snprintf(l.method, sizeof(l.method), "%s", gm->name);
                    int have[2] = {0, 0};
                    for (int k = 0; k < 2; k++) {
                        int tg = k == 0;
                        const AttackDef *def = g->attacks[a].def;
                        if ((tg && !def->targeted_ok) || (!tg && !def->untargeted_ok)) {
                            // BEARD writes the clean figures for a mode the attack lacks
                            l.acc[k] = clean.clean_accuracy, l.seconds[k] = clean.seconds, have[k] = 1;
                            continue;
                        }
                        for (int c = 0; c < p->n_cells; c++) {
                            const GridCell *cell = &p->cells[c];
                            if (cell->model != mi || cell->sem != (int)sem || cell->kind != CELL_ATTACK ||
                                cell->attack != a || cell->targeted != tg || !cell->hash[0])
                                continue;
                            StoreRow r;
                            int f = store_get(s, cell->key, cell->hash, &r, e);
                            if (f < 0) {
                                store_row_free(&clean);
                                free(text);
                                return -1;
                            }
                            if (f) l.acc[k] = r.accuracy, l.seconds[k] = r.seconds, have[k] = 1, store_row_free(&r);
                        }
                    }
                    if (!have[0] || !have[1]) continue;
                }
                beardlog_timestamp(ts, sizeof(ts));
                int w = beardlog_format(line, sizeof(line), &l, &ctx);
                if (w <= 0 || w >= (int)sizeof(line)) continue;
                size_t need = strlen(ts) + (size_t)w + 16;
                if (len + need + 64 > cap) {
                    cap = (len + need + 64) * 2;
                    char *nt = realloc(text, cap);
                    if (!nt) {
                        store_row_free(&clean);
                        free(text);
                        return err_set(e, "out of memory");
                    }
                    text = nt;
                }
                if (len == 0) len += (size_t)snprintf(text, cap, "%s - INFO - Logging setup complete.\n", ts);
                len += (size_t)snprintf(text + len, cap - len, "%s - INFO - %s\n", ts, line);
                n_lines++;
            }
            store_row_free(&clean);
            if (n_lines > 1) {
                char path[GRID_PATH * 2], dir[GRID_PATH + 128], suffix[96] = "";
                if (strcmp(g->train_attacks[m->train_attack], "None"))
                    snprintf(suffix + strlen(suffix), sizeof(suffix) - strlen(suffix), "_%s", g->train_attacks[m->train_attack]);
                if (m->run) snprintf(suffix + strlen(suffix), sizeof(suffix) - strlen(suffix), "_run%d", m->run);
                if (sem == SEM_PIXEL) snprintf(suffix + strlen(suffix), sizeof(suffix) - strlen(suffix), "_pixel");
                snprintf(dir, sizeof(dir), "%s/model_pool/%s", g->out, gm->name);
                snprintf(path, sizeof(path), "%s/%s_%s_%s%s_evaluation_log.txt", dir, g->archs[m->arch],
                         g->datasets[m->dataset], g->ipcs[m->ipc], suffix);
                if (file_mkdirs(dir, e) || file_write_all(path, text, len, e)) {
                    free(text);
                    return -1;
                }
                (*written)++;
            }
            free(text);
        }
    }
    return 0;
}
