/*
 * stage.c: the distillation stage around a method (see distill.h): the real data by
 * class, the synthetic set, the seeded loop, checkpoints and --resume, non-finite losses,
 * periodic evaluation, and the release files at the end (res file, .pkl, PNG grid, image
 * folder, as the method releases them).
 *
 * Checkpoints are PyTorch zip files (torch.load reads them too) holding flat named
 * tensors: distill.config (the run's identity as JSON text: method, dataset, model, IPC,
 * seed and every method parameter; a resume with another identity is refused),
 * distill.next (the next step), distill.syn / .syn_y / .syn_shape / .syn_soft / .syn_lr,
 * distill.evals (the evaluation history), then the method's own "<method>.*" tensors.
 * They are written atomically (file.h), so a kill -9 loses at most ckpt_every steps, and
 * only from a state whose loss and images are finite.
 *
 * Evaluation follows the official eval_it_pool at beard's cadence: after every
 * eval_every updates and after the last one, num_eval models of the distilling
 * architecture are trained with stage 2's recipe (train_model: DC's evaluate_synset,
 * SGD lr_net, DSA, epoch_eval_train + 1 epochs) on the current set, 4-in-1 unpacked for
 * IDM-style methods as the official code does (number_sign_augment), and their test
 * accuracy is logged. Deliberate difference: the official loop evaluates at the top of
 * iteration Iteration, i.e. the set before its last update, and then saves the set after
 * it; beard evaluates the set it saves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>

#include "../core/progress.h"
#include "../data/pool.h"
#include "../io/file.h"
#include "../io/torch_pt.h"
#include "../models/convnet.h"
#include "../store/store.h"
#include "distill.h"

#define STREAM_STEP 0x4453544C00000000ull // 'DSTL': the step generators
#define SEED_EVAL 0x4556414C5345ull        // xor-ed into the seed for evaluation models

// ----------------------------------------------------------------------------
// paths

int distill_paths(DistillPaths *p, const char *out, const DistillConfig *cfg, Err *e) {
    memset(p, 0, sizeof(*p));
    const char *m = cfg->method->name, *d = cfg->info->name, *a = cfg->arch;
    if (file_name_check(m, "method name", e) || file_name_check(d, "dataset name", e) ||
        file_name_check(a, "model name", e))
        return -1;
    if (!out || !*out) out = "result";
    size_t len = strlen(out);
    if (len > 1000) return err_set(e, "--out path is too long");
    char stem[200];
    snprintf(stem, sizeof(stem), "%s_%s_%s_%dipc", m, d, a, cfg->ipc);
    if (len > 3 && !strcmp(out + len - 3, ".pt")) {
        // a res file named by the user: the others next to it
        snprintf(p->res, sizeof(p->res), "%s", out);
        const char *slash = strrchr(out, '/');
        snprintf(p->dir, sizeof(p->dir), "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
        int base = (int)(len - 3);
        snprintf(p->pkl, sizeof(p->pkl), "%.*s.pkl", base, out);
        snprintf(p->png, sizeof(p->png), "%.*s.png", base, out);
        snprintf(p->ckpt, sizeof(p->ckpt), "%.*s.checkpoint.pt", base, out);
        snprintf(p->images, sizeof(p->images), "%.*s_images", base, out);
        return 0;
    }
    snprintf(p->dir, sizeof(p->dir), "%s", out);
    char name[300];
    snprintf(name, sizeof(name), "res_%s.pt", stem);
    if (file_path_join(p->res, sizeof(p->res), out, name, "output name", e)) return -1;
    snprintf(name, sizeof(name), "%s.pkl", stem);
    if (file_path_join(p->pkl, sizeof(p->pkl), out, name, "output name", e)) return -1;
    snprintf(name, sizeof(name), "vis_%s_%s_%s_%dipc_exp0_iter%ld.png", m, d, a, cfg->ipc, cfg->iterations);
    if (file_path_join(p->png, sizeof(p->png), out, name, "output name", e)) return -1;
    if (file_path_join(p->images, sizeof(p->images), out, stem, "output name", e)) return -1;
    snprintf(name, sizeof(name), "%s.checkpoint.pt", stem);
    return file_path_join(p->ckpt, sizeof(p->ckpt), out, name, "output name", e);
}

// ----------------------------------------------------------------------------
// set-up

void distill_run_free(DistillRun *r) {
    if (r->cfg && r->cfg->method->free) r->cfg->method->free(r);
    if (r->class_idx)
        for (int c = 0; c < r->K; c++) free(r->class_idx[c]);
    free(r->class_idx);
    free(r->class_n);
    xfree(r->syn);
    free(r->syn_y);
    xfree(r->syn_soft);
    free(r->perm), free(r->pick), free(r->idx);
    memset(r, 0, sizeof(*r));
}

// --init-from: the file's images replace the set the method's init drew; the file must hold
// exactly that set's shape, class-major with the same hard labels
static int init_from_file(DistillRun *r, const char *path, Err *e) {
    const char *m = r->cfg->method->name;
    Pool pool;
    PoolOptions po = {.info = r->info, .exp = -1};
    if (pool_load(&pool, path, &po, e)) {
        pool_free(&pool);
        return err_wrap(e, "--init-from %s", path);
    }
    int rc = -1;
    if (pool.soft) {
        err_set(e, "--init-from %s holds soft labels; %s starts from hard-labelled images", path, m);
    } else if (pool.n != r->n_syn || pool.c != r->syn_c || pool.h != r->syn_h || pool.w != r->syn_w) {
        err_set(e, "--init-from %s holds %d images of %dx%dx%d; %s at IPC %d starts from %d of %dx%dx%d%s", path,
                pool.n, pool.c, pool.h, pool.w, m, r->ipc, r->n_syn, r->syn_c, r->syn_h, r->syn_w,
                r->packed4 ? " (its compact 2x2 mosaics, as its res file holds them)" : "");
    } else {
        int i = 0;
        while (i < pool.n && pool.y[i] == r->syn_y[i]) i++;
        if (i < pool.n) {
            err_set(e, "--init-from %s: image %d has label %d where %s's class-major set has %d", path, i, pool.y[i], m,
                    r->syn_y[i]);
        } else {
            size_t bytes = sizeof(float) * distill_syn_size(r) * (size_t)r->n_syn;
            memcpy(r->syn, pool.x, bytes);
            store_sha256_hex(r->syn, bytes, r->init_sha256);
            rc = 0;
        }
    }
    pool_free(&pool);
    return rc;
}

int distill_run_init(DistillRun *r, const DistillConfig *cfg, const DistillParams *p, const Dataset *train,
                     const DistillOverride *ov, Err *e) {
    memset(r, 0, sizeof(*r));
    const DatasetInfo *info = cfg->info;
    if (!train && !cfg->method->no_real_data) return err_set(e, "%s needs the real training set", cfg->method->name);
    if (train && (train->c != info->c || train->h != info->h || train->w != info->w || train->n_classes != info->n_classes))
        return err_set(e, "the training set does not have %s's shape", info->name);
    if (cfg->ipc < 1) return err_set(e, "--ipc must be at least 1");
    if (cfg->init_from && !cfg->method->init_from_ok)
        return err_set(e, "%s does not take --init-from (its initial state is more than the images it starts from)",
                       cfg->method->name);
    r->cfg = cfg, r->p = p, r->info = info, r->real = train, r->ov = ov;
    r->C = info->c, r->H = info->h, r->W = info->w, r->K = info->n_classes, r->ipc = cfg->ipc;
    int K = r->K, n_train = train ? train->n : 0;
    r->class_n = calloc((size_t)K, sizeof(int));
    r->class_idx = calloc((size_t)K, sizeof(int *));
    r->perm = malloc(sizeof(int) * (size_t)(n_train + 1));
    r->pick = malloc(sizeof(int) * (size_t)(n_train + 1));
    r->idx = malloc(sizeof(int) * (size_t)(n_train + 1));
    if (!r->class_n || !r->class_idx || !r->perm || !r->pick || !r->idx) goto oom;
    for (int i = 0; i < n_train; i++) r->class_n[train->labels[i]]++;
    for (int c = 0; train && c < K; c++) {
        if (r->class_n[c] < cfg->ipc) {
            int n = r->class_n[c];
            distill_run_free(r);
            return err_set(e, "IPC %d is larger than the %d training image%s of class %d of %s", cfg->ipc, n,
                           n == 1 ? "" : "s", c, info->name);
        }
        if (!(r->class_idx[c] = malloc(sizeof(int) * (size_t)r->class_n[c]))) goto oom;
        r->class_n[c] = 0;
    }
    for (int i = 0; i < n_train; i++) { // indices_class: file order within a class
        int c = train->labels[i];
        r->class_idx[c][r->class_n[c]++] = i;
    }
    // the default synthetic layout: ipc images per class at the dataset's size
    r->n_syn = K * cfg->ipc;
    r->syn_c = r->C, r->syn_h = r->H, r->syn_w = r->W;
    r->syn = xcalloc(sizeof(float) * distill_syn_size(r) * (size_t)r->n_syn);
    r->syn_y = malloc(sizeof(int) * (size_t)r->n_syn);
    if (!r->syn || !r->syn_y) goto oom;
    for (int i = 0; i < r->n_syn; i++) r->syn_y[i] = i / cfg->ipc;
    // initialisation draws come from the generator of step 0's "before"
    rng_init(&r->rng, cfg->seed, STREAM_STEP - 1);
    r->it = -1;
    if (cfg->method->init(r, e) || (cfg->init_from && init_from_file(r, cfg->init_from, e))) {
        distill_run_free(r);
        return -1;
    }
    return 0;
oom:
    distill_run_free(r);
    return err_set(e, "out of memory setting up the distillation");
}

int distill_run_step(DistillRun *r, long it, Err *e) {
    r->it = it;
    rng_init(&r->rng, r->cfg->seed, STREAM_STEP + (uint64_t)it);
    r->note[0] = 0;
    return r->cfg->method->step(r, e);
}

static long total_steps(const DistillRun *r) {
    return r->cfg->method->total_steps ? r->cfg->method->total_steps(r) : r->cfg->iterations + 1;
}

// ----------------------------------------------------------------------------
// checkpoints

// the run's identity: what must match for a resume to continue the same run
static char *identity_json(const DistillRun *r) {
    const DistillConfig *cfg = r->cfg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "beard-distill-1");
    cJSON_AddStringToObject(o, "method", cfg->method->name);
    cJSON_AddStringToObject(o, "dataset", cfg->info->name);
    cJSON_AddStringToObject(o, "model", cfg->arch);
    cJSON_AddNumberToObject(o, "ipc", cfg->ipc);
    char seed[32];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)cfg->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    if (r->init_sha256[0]) cJSON_AddStringToObject(o, "init_from_sha256", r->init_sha256);
    cJSON *pp = cJSON_AddObjectToObject(o, "params");
    for (int i = 0; i < r->p->n; i++) {
        char buf[DISTILL_STR_MAX];
        cJSON_AddStringToObject(pp, r->p->def->params[i].name, distill_param_text(r->p, i, buf, sizeof(buf)));
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int checkpoint_write(DistillRun *r, long next, const DistillResult *res, Err *e) {
    TensorDict ck;
    tensordict_init(&ck);
    int rc = -1;
    char *id = identity_json(r);
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn;
    int64_t *y = malloc(sizeof(int64_t) * n + 8);
    double *ev = malloc(sizeof(double) * 3 * (size_t)(res->n_evals + 1));
    if (!id || !y || !ev) {
        err_set(e, "out of memory writing a checkpoint");
        goto done;
    }
    for (size_t i = 0; i < n; i++) y[i] = r->syn_y[i];
    for (int k = 0; k < res->n_evals; k++)
        ev[3 * k] = (double)res->eval_it[k], ev[3 * k + 1] = res->eval_mean[k], ev[3 * k + 2] = res->eval_std[k];
    int64_t lid = (int64_t)strlen(id), nx = next, shape[4] = {r->n_syn, r->syn_c, r->syn_h, r->syn_w};
    int64_t sn = (int64_t)(n * D), sk = (int64_t)(n * r->K), ne = 3 * (int64_t)res->n_evals, one = 1;
    if (distill_ck_add(&ck, "distill.config", DTYPE_U8, 1, &lid, id, e) || distill_ck_add(&ck, "distill.next", DTYPE_I64, 0, NULL, &nx, e) ||
        distill_ck_add(&ck, "distill.syn_shape", DTYPE_I64, 1, (int64_t[]){4}, shape, e) ||
        distill_ck_add(&ck, "distill.syn", DTYPE_F32, 1, &sn, r->syn, e) ||
        distill_ck_add(&ck, "distill.syn_y", DTYPE_I64, 1, (int64_t *)&n, y, e) ||
        (r->syn_soft && distill_ck_add(&ck, "distill.syn_soft", DTYPE_F32, 1, &sk, r->syn_soft, e)) ||
        distill_ck_add(&ck, "distill.syn_lr", DTYPE_F64, 1, &one, &r->syn_lr, e) ||
        distill_ck_add(&ck, "distill.evals", DTYPE_F64, 1, &ne, ev, e))
        goto done;
    if (r->cfg->method->save && r->cfg->method->save(r, &ck, e)) goto done;
    rc = torch_save_state_dict(r->cfg->ckpt_path, &ck, e);
done:
    free(id);
    free(y);
    free(ev);
    tensordict_free(&ck);
    return rc;
}

static int checkpoint_read(DistillRun *r, long *next, DistillResult *res, Err *e) {
    const char *path = r->cfg->ckpt_path;
    TensorDict ck;
    tensordict_init(&ck);
    int rc = -1;
    char *id = identity_json(r);
    if (torch_load_state_dict(path, &ck, e)) {
        err_wrap(e, "cannot resume");
        goto done;
    }
    const Tensor *cf = tensordict_get(&ck, "distill.config");
    if (!cf || cf->dtype != DTYPE_U8) {
        err_set(e, "cannot resume: %s is not a beard distill checkpoint", path);
        goto done;
    }
    if (!id || cf->numel != strlen(id) || memcmp(cf->data, id, cf->numel)) {
        err_set(e, "cannot resume: %s is a checkpoint of another run (method, dataset, model, IPC, seed, --init-from "
                   "set or a parameter differs); its settings: %.*s",
                path, (int)(cf->numel > 300 ? 300 : cf->numel), (const char *)cf->data);
        goto done;
    }
    const Tensor *nx = distill_ck_get(&ck, "distill.next", DTYPE_I64, 1, e);
    const Tensor *sh = nx ? distill_ck_get(&ck, "distill.syn_shape", DTYPE_I64, 4, e) : NULL;
    if (!sh) goto bad;
    const int64_t *s = sh->data;
    if (s[0] != r->n_syn || s[1] != r->syn_c || s[2] != r->syn_h || s[3] != r->syn_w) {
        err_set(e, "the synthetic set in the checkpoint has another shape");
        goto bad;
    }
    size_t n = (size_t)r->n_syn, D = distill_syn_size(r);
    const Tensor *sx = distill_ck_get(&ck, "distill.syn", DTYPE_F32, n * D, e);
    const Tensor *sy = sx ? distill_ck_get(&ck, "distill.syn_y", DTYPE_I64, n, e) : NULL;
    const Tensor *lr = sy ? distill_ck_get(&ck, "distill.syn_lr", DTYPE_F64, 1, e) : NULL;
    const Tensor *ev = lr ? tensordict_get(&ck, "distill.evals") : NULL;
    if (!lr) goto bad;
    if (!ev || ev->dtype != DTYPE_F64 || ev->numel % 3 || ev->numel / 3 > DISTILL_MAX_EVALS) {
        err_set(e, "bad evaluation history");
        goto bad;
    }
    const Tensor *ss = tensordict_get(&ck, "distill.syn_soft");
    if (!!ss != !!r->syn_soft || (ss && (ss->dtype != DTYPE_F32 || ss->numel != n * (size_t)r->K))) {
        err_set(e, "the soft labels in the checkpoint do not fit");
        goto bad;
    }
    long nv = (long)((int64_t *)nx->data)[0];
    if (nv < 0 || nv > total_steps(r)) {
        err_set(e, "the checkpoint's step %ld is outside this run's %ld steps", nv, total_steps(r));
        goto bad;
    }
    if (!all_finite(sx->data, n * D)) {
        err_set(e, "the checkpoint's synthetic images are not finite");
        goto bad;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t l = ((int64_t *)sy->data)[i];
        if (l < 0 || l >= r->K) {
            err_set(e, "label %lld in the checkpoint is outside [0, %d)", (long long)l, r->K);
            goto bad;
        }
        r->syn_y[i] = (int)l;
    }
    memcpy(r->syn, sx->data, sizeof(float) * n * D);
    if (ss) memcpy(r->syn_soft, ss->data, sizeof(float) * n * (size_t)r->K);
    r->syn_lr = ((double *)lr->data)[0];
    res->n_evals = (int)(ev->numel / 3);
    for (int k = 0; k < res->n_evals; k++) {
        const double *v = (const double *)ev->data + 3 * k;
        res->eval_it[k] = (long)v[0], res->eval_mean[k] = v[1], res->eval_std[k] = v[2];
    }
    r->it = nv; // what load sees: the next step to run
    if (r->cfg->method->load && r->cfg->method->load(r, &ck, e)) goto bad;
    *next = nv;
    rc = 0;
    goto done;
bad:
    err_wrap(e, "cannot resume from %s", path);
done:
    free(id);
    tensordict_free(&ck);
    return rc;
}

// ----------------------------------------------------------------------------
// evaluation

int distill_pool(const DistillRun *r, Pool *pool, Err *e) {
    memset(pool, 0, sizeof(*pool));
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn;
    snprintf(pool->format, sizeof(pool->format), "distill");
    pool->n = r->n_syn, pool->c = r->syn_c, pool->h = r->syn_h, pool->w = r->syn_w, pool->n_classes = r->K;
    pool->x = xmalloc(sizeof(float) * n * D);
    pool->y = malloc(sizeof(int) * n + 1);
    pool->soft = r->syn_soft ? xmalloc(sizeof(float) * n * (size_t)r->K) : NULL;
    if (!pool->x || !pool->y || (r->syn_soft && !pool->soft)) {
        pool_free(pool);
        return err_set(e, "out of memory copying the synthetic set");
    }
    memcpy(pool->x, r->syn, sizeof(float) * n * D);
    memcpy(pool->y, r->syn_y, sizeof(int) * n);
    if (pool->soft) memcpy(pool->soft, r->syn_soft, sizeof(float) * n * (size_t)r->K);
    for (int c = 0; c < 3; c++) pool->mean[c] = r->info->mean[c], pool->std[c] = r->info->std[c];
    pool->lr = r->syn_lr;
    pool->exp = -1;
    pool->stored_normalised = 1;
    if (r->packed4 && pool_unpack4(pool, e)) {
        pool_free(pool);
        return -1;
    }
    return 0;
}

static int evaluate(DistillRun *r, const TrainTest *test, long updates, int final, DistillResult *res, Err *e) {
    const DistillConfig *cfg = r->cfg;
    Pool pool;
    if (distill_pool(r, &pool, e)) return -1;
    TrainConfig tc;
    train_config_default(&tc);
    tc.epochs = cfg->epoch_eval_train;
    tc.lr = (float)cfg->lr_net;
    tc.batch = cfg->batch_train;
    tc.eval_every = 0;
    double *acc = malloc(sizeof(double) * (size_t)cfg->num_eval);
    if (!acc) {
        pool_free(&pool);
        return err_set(e, "out of memory");
    }
    int rc = -1;
    double t0 = time_now();
    for (int k = 0; k < cfg->num_eval; k++) {
        Net net;
        TrainResult tr;
        if (model_create(&net, cfg->arch, r->C, r->K, r->syn_h, r->syn_w, e)) goto done;
        uint64_t seed = (cfg->seed ^ SEED_EVAL) + (uint64_t)updates * 1000003u + (uint64_t)k;
        int t = train_model(&net, &pool, test, &tc, seed, NULL, &tr, e);
        net_free(&net);
        if (t) {
            err_wrap(e, "evaluation model %d", k + 1);
            goto done;
        }
        acc[k] = tr.test_acc;
    }
    double m = 0, v = 0;
    for (int k = 0; k < cfg->num_eval; k++) m += acc[k];
    m /= cfg->num_eval;
    for (int k = 0; k < cfg->num_eval; k++) v += (acc[k] - m) * (acc[k] - m);
    double sd = sqrt(v / cfg->num_eval); // np.std: ddof 0
    if (res->n_evals < DISTILL_MAX_EVALS) {
        res->eval_it[res->n_evals] = updates, res->eval_mean[res->n_evals] = m, res->eval_std[res->n_evals] = sd;
        res->n_evals++;
    }
    if (final) {
        free(res->final_accs);
        res->final_accs = malloc(sizeof(double) * (size_t)cfg->num_eval);
        if (res->final_accs)
            for (int k = 0; k < cfg->num_eval; k++) res->final_accs[k] = acc[k] / 100.0;
        res->n_final_accs = res->final_accs ? cfg->num_eval : 0;
    }
    res->eval_seconds += time_now() - t0;
    if (cfg->log) {
        fprintf(cfg->log, "evaluation after %ld updates%s: %d %s models, test accuracy %.2f +- %.2f%% (%.0fs)\n", updates,
                final ? " (final)" : "", cfg->num_eval, cfg->arch, m, sd, time_now() - t0);
        fflush(cfg->log);
    }
    rc = 0;
done:
    free(acc);
    pool_free(&pool);
    return rc;
}

// ----------------------------------------------------------------------------
// the loop

void distill_result_free(DistillResult *res) {
    free(res->final_accs);
    res->final_accs = NULL;
    res->n_final_accs = 0;
}

static double peak_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_maxrss / 1024.0; // kilobytes on Linux
}

int distill_run(const DistillConfig *cfg, const DistillParams *p, const Dataset *train, const TrainTest *test,
                const DistillOverride *ov, const DistillPaths *paths, int resume, DistillResult *res, Err *e) {
    memset(res, 0, sizeof(*res));
    if (cfg->eval_every > 0 && (!test || test->n == 0)) return err_set(e, "evaluation needs the test set");
    if (cfg->eval_every > 0 && cfg->num_eval < 1) return err_set(e, "evaluation needs at least one model (num_eval)");
    if ((cfg->ckpt_every > 0 || resume || cfg->stop_after > 0) && !cfg->ckpt_path[0]) return err_set(e, "no checkpoint path");
    if (paths) {
        const char *outs[4] = {paths->res, cfg->method->outputs & DISTILL_OUT_PKL ? paths->pkl : NULL, paths->png,
                               cfg->ckpt_every > 0 || cfg->stop_after > 0 ? cfg->ckpt_path : NULL};
        for (int k = 0; k < 4; k++)
            if (outs[k] && file_check_writable(outs[k], 1, e)) return -1;
        // the image folder is written under a temporary name in its parent (checked above)
        if ((cfg->method->outputs & DISTILL_OUT_IMAGEFOLDER) && !cfg->method->image_ext)
            return err_set(e, "%s releases an image folder but names no image format", cfg->method->name);
    }
    DistillRun r;
    if (distill_run_init(&r, cfg, p, train, ov, e)) return -1;
    long total = total_steps(&r), start = 0;
    if (resume && checkpoint_read(&r, &start, res, e)) {
        distill_run_free(&r);
        return -1;
    }
    res->steps = total;
    res->resumed_from = start;
    long last_ckpt = resume ? start : -1;
    int rc = -1;
    Progress prog;
    char label[64];
    snprintf(label, sizeof(label), "distill %s", cfg->method->name);
    progress_start(&prog, label, (double)total);
    if (!cfg->progress) prog.quiet = 1;
    prog.done = (double)start;
    double t0 = time_now();
    for (long it = start; it < total; it++) {
        if (distill_run_step(&r, it, e)) {
            err_wrap(e, "iteration %ld", it);
            goto done;
        }
        if (!isfinite(r.loss)) {
            if (last_ckpt >= 0)
                err_set(e, "the loss is %g at iteration %ld; stopped, nothing written; the last good checkpoint "
                           "(iteration %ld) is kept in %s",
                        r.loss, it, last_ckpt, cfg->ckpt_path);
            else
                err_set(e, "the loss is %g at iteration %ld; stopped, nothing written (no checkpoint yet)", r.loss, it);
            goto done;
        }
        res->final_loss = r.loss;
        res->steps_run++;
        char extra[160];
        snprintf(extra, sizeof(extra), "it %ld, loss %.4f%s%s", it, r.loss, r.note[0] ? ", " : "", r.note);
        progress_update(&prog, (double)(it + 1), extra);
        if (cfg->log && cfg->log_every > 0 && it % cfg->log_every == 0) {
            progress_end(&prog);
            fprintf(cfg->log, "iter = %05ld, loss = %.4f%s%s\n", it, r.loss, r.note[0] ? ", " : "", r.note);
            fflush(cfg->log);
        }
        long done_updates = it + 1;
        if (cfg->eval_every > 0 && done_updates % cfg->eval_every == 0 && done_updates < total) {
            progress_end(&prog);
            if (evaluate(&r, test, done_updates, 0, res, e)) goto done;
        }
        int stop = cfg->stop_after > 0 && res->steps_run >= cfg->stop_after && done_updates < total;
        if ((cfg->ckpt_every > 0 && done_updates % cfg->ckpt_every == 0 && done_updates < total) || stop) {
            if (!all_finite(r.syn, distill_syn_size(&r) * (size_t)r.n_syn)) {
                err_set(e, "the synthetic images are not finite after iteration %ld; stopped, nothing written%s%s", it,
                        last_ckpt >= 0 ? "; the last good checkpoint is kept in " : "", last_ckpt >= 0 ? cfg->ckpt_path : "");
                goto done;
            }
            if (checkpoint_write(&r, done_updates, res, e)) goto done;
            last_ckpt = done_updates;
        }
        if (stop) {
            res->stopped = 1;
            res->seconds = time_now() - t0 - res->eval_seconds;
            rc = 0;
            goto done;
        }
    }
    res->seconds = time_now() - t0 - res->eval_seconds;
    progress_end(&prog);
    if (!all_finite(r.syn, distill_syn_size(&r) * (size_t)r.n_syn)) {
        err_set(e, "the synthetic images are not finite at the end; nothing written");
        goto done;
    }
    if (cfg->eval_every > 0 && evaluate(&r, test, total, 1, res, e)) goto done;
    if (paths) {
        if (distill_write_res(paths->res, &r, res->final_accs, res->n_final_accs, e)) goto done;
        if ((cfg->method->outputs & DISTILL_OUT_PKL) && distill_write_pkl(paths->pkl, &r, e)) goto done;
        if (distill_write_png(paths->png, &r, e)) goto done;
        if ((cfg->method->outputs & DISTILL_OUT_IMAGEFOLDER) &&
            distill_write_imagefolder(paths->images, &r, cfg->method->image_ext, e))
            goto done;
        if (cfg->method->write && cfg->method->write(&r, paths, e)) goto done;
        if (cfg->ckpt_path[0]) remove(cfg->ckpt_path); // done: the release files hold the result
    }
    rc = 0;
done:
    progress_end(&prog);
    res->peak_mb = peak_mb();
    res->syn_lr = r.syn_lr;
    distill_run_free(&r);
    return rc;
}
