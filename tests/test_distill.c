/*
 * test_distill.c: stage 1, dataset distillation.
 *
 * Step fidelity: DM (ConvNet and ConvNetBN), IDM and BACON against the PyTorch ports of
 * the official loops in tests/scripts/distill_ref.py. The fixtures hold a small real
 * "dataset" (3 classes, 16x16) and every random draw the port made (real batches, queue
 * choices, DSA op and parameters; the initial weights come from an LCG both sides
 * compute); beard replays them through its DistillOverride hooks and must give the
 * port's initial set, then per iteration its loss, the gradient w.r.t. the synthetic
 * images before every image step, and the images after the iteration, within 1e-4
 * relative / 1e-5 absolute.
 *
 * The stage: the same seed and thread count give bit-identical results; a run resumed
 * from a checkpoint ends where an uninterrupted one does; a non-finite loss stops the run
 * and keeps the last good checkpoint; corrupt or foreign checkpoints are refused; the
 * release files load (res_*.pt and .pkl through beard's pool loader, 4-in-1 unpacking
 * for IDM); parameters and the settings JSON (unknown keys are errors, command.txt's
 * per-setting values, the user's values win).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/core/parallel.h"
#include "../src/data/pool.h"
#include "../src/distill/distill.h"
#include "../src/io/torch_pt.h"
#include "harness.h"

// ----------------------------------------------------------------------------
// replaying the port's draws

typedef struct {
    const Fixture *f;
    const FixTensor *choose, *dsa;
    int n_choose, n_dsa, nets;
    int bad;          // a draw that does not match the port's (order, kind, sizes)
    // observed gradients, in order
    float *grads[64];
    size_t grad_n[64];
    int n_grads;
} Replay;

static int rp_choose(void *ctx, DistillDrawKind kind, int tag, int n, int k, int *out) {
    Replay *rp = ctx;
    const FixTensor *t = rp->choose;
    int w = (int)t->shape[1];
    if (rp->n_choose >= (int)t->shape[0]) {
        rp->bad++;
        return 1;
    }
    const float *row = t->data + (size_t)rp->n_choose++ * w;
    if ((int)row[0] != (int)kind || (int)row[1] != tag || (int)row[2] != n || (int)row[3] != k) {
        if (rp->bad++ < 3)
            fprintf(stderr, "draw %d: beard asks (%d, %d, %d, %d), the port drew (%g, %g, %g, %g)\n", rp->n_choose - 1,
                    kind, tag, n, k, row[0], row[1], row[2], row[3]);
        return 1;
    }
    for (int i = 0; i < k; i++) out[i] = (int)row[4 + i];
    return 0;
}

static int rp_dsa(void *ctx, DsaDraw *d) {
    Replay *rp = ctx;
    const FixTensor *t = rp->dsa;
    if (rp->n_dsa >= (int)t->shape[0]) {
        rp->bad++;
        return 1;
    }
    const float *v = t->data + (size_t)rp->n_dsa++ * t->shape[1];
    d->op = (DsaOp)(int)v[0];
    DsaSample s = {.brightness = v[1], .saturation = v[2], .contrast = v[3], .crop_x = (int)v[4], .crop_y = (int)v[5],
                   .cutout_x = (int)v[6], .cutout_y = (int)v[7], .flip = v[8] > 0, .scale_x = v[9], .scale_y = v[10],
                   .angle = v[11]};
    for (int b = 0; b < d->B; b++) d->s[b] = s;
    return 0;
}

// the port's lcg_init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for convolutions and linear
// layers from a 64-bit LCG continued across tensors, (1, 0) for norms
static int rp_net(void *ctx, Net *net, int tag) {
    Replay *rp = ctx;
    rp->nets++;
    uint64_t st = 0x9E3779B97F4A7C15ull * (uint64_t)(tag + 1);
    for (int i = 0; i < net->n_entries; i++) {
        const ParamEntry *pe = &net->entries[i];
        if (pe->kind != PENTRY_PARAM) continue;
        const Layer *L = &net->layers[pe->layer];
        float *v = net->params + pe->offset;
        size_t n = pe->numel;
        if (L->kind == LAYER_CONV || L->kind == LAYER_LINEAR) {
            size_t fan_in = L->kind == LAYER_CONV ? (size_t)L->in_c * L->k * L->k : (size_t)L->in_c;
            double bound = 1.0 / sqrt((double)fan_in);
            for (size_t k = 0; k < n; k++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                double u = (double)(st >> 40) / (double)(1 << 24);
                v[k] = (float)(bound * (2.0 * u - 1.0));
            }
        } else {
            int is_w = strlen(pe->name) > 7 && !strcmp(pe->name + strlen(pe->name) - 7, ".weight");
            for (size_t k = 0; k < n; k++) v[k] = is_w ? 1.0f : 0.0f;
        }
    }
    return 0;
}

static void rp_grad(void *ctx, int tag, const float *g, size_t n) {
    Replay *rp = ctx;
    (void)tag;
    if (rp->n_grads >= 64) return;
    rp->grads[rp->n_grads] = malloc(sizeof(float) * n);
    memcpy(rp->grads[rp->n_grads], g, sizeof(float) * n);
    rp->grad_n[rp->n_grads++] = n;
}

static void rp_free(Replay *rp) {
    for (int i = 0; i < rp->n_grads; i++) free(rp->grads[i]);
    rp->n_grads = 0;
}

// the fixture's real images as a Dataset (3 classes at 16x16, CIFAR-10's normalisation)
static DatasetInfo g_info;

static int fixture_dataset(const Fixture *f, Dataset *ds, int K, int H) {
    const FixTensor *u8 = fixture_get(f, "real.u8"), *lb = fixture_get(f, "real.labels");
    if (!u8 || !lb) return -1;
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "CIFAR10");
    ds->n = (int)u8->shape[0], ds->c = 3, ds->h = H, ds->w = H, ds->n_classes = K;
    ds->images = malloc(u8->n);
    ds->labels = malloc(sizeof(int) * (size_t)ds->n);
    for (size_t i = 0; i < u8->n; i++) ds->images[i] = (uint8_t)u8->data[i];
    for (int i = 0; i < ds->n; i++) ds->labels[i] = (int)lb->data[i];
    g_info = *dataset_info("CIFAR10");
    g_info.h = g_info.w = H;
    g_info.n_classes = K;
    return 0;
}

static void set(DistillParams *p, const char *name, const char *v) {
    Err e;
    CHECK(distill_params_set_text(p, name, v, &e) == 0, "%s: %s", name, e.msg);
}

static void set_num(DistillParams *p, const char *name, double v) {
    char b[64];
    snprintf(b, sizeof(b), "%.17g", v);
    set(p, name, b);
}

// the worst |got - ref| / (1e-5 + 1e-4 |ref|) of a comparison: below 1 passes
static double g_worst;

static void note_worst(const float *got, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double q = fabs((double)got[i] - ref[i]) / (1e-5 + 1e-4 * fabs((double)ref[i]));
        if (q > g_worst) g_worst = q;
    }
}

// one fidelity case: method, fixture, architecture
static void test_fidelity(const char *method, const char *file, const char *arch) {
    Fixture f;
    char path[256];
    snprintf(path, sizeof(path), "tests/fixtures/distill/%s.bin", file);
    if (fixture_load(path, &f)) return;
    const FixTensor *meta = fixture_get(&f, "meta");
    if (!meta) {
        fixture_free(&f);
        return;
    }
    const float *m = meta->data;
    int K = (int)m[0], H = (int)m[1], ipc = (int)m[2], iters = (int)m[3];
    Dataset ds;
    if (fixture_dataset(&f, &ds, K, H)) {
        fixture_free(&f);
        return;
    }
    const DistillMethodDef *def = distill_method_find(method);
    DistillConfig cfg = {.method = def, .info = &g_info, .ipc = ipc, .iterations = iters - 1, .seed = 0,
                         .lr_net = 0.01, .num_eval = 1, .epoch_eval_train = 1, .batch_train = 256};
    snprintf(cfg.arch, sizeof(cfg.arch), "%s", arch);
    DistillParams p;
    distill_params_init(&p, def);
    set_num(&p, "batch_real", m[4]);
    set_num(&p, "lr_img", m[5]);
    int idm = strcmp(method, "DM") != 0;
    if (idm) {
        cfg.lr_net = m[6];
        set_num(&p, "net_generate_interval", m[7]);
        set_num(&p, "fetch_net_num", m[8]);
        set_num(&p, "model_train_steps", m[9]);
        set_num(&p, "trained_bs", m[10]);
        set_num(&p, "ce_weight", m[11]);
        set_num(&p, "train_net_num", m[12]);
    }
    Replay rp = {.f = &f, .choose = fixture_get(&f, "draws.choose"), .dsa = fixture_get(&f, "draws.dsa")};
    DistillOverride ov = {.ctx = &rp, .choose = rp_choose, .dsa = rp_dsa, .net_init = rp_net, .grad = rp_grad};
    DistillRun r;
    Err e;
    char what[128];
    if (!rp.choose || !rp.dsa || distill_run_init(&r, &cfg, &p, &ds, &ov, &e)) {
        CHECK(0, "%s: init: %s", file, e.msg);
        goto out;
    }
    size_t D = distill_syn_size(&r), n = (size_t)r.n_syn * D;
    const FixTensor *init = fixture_get(&f, "init");
    snprintf(what, sizeof(what), "%s: initial synthetic set", file);
    if (init && init->n == n) check_close(what, r.syn, init->data, n, 1e-6, 1e-6);
    g_worst = 0;
    for (int it = 0; it < iters; it++) {
        rp_free(&rp);
        if (distill_run_step(&r, it, &e)) {
            CHECK(0, "%s iteration %d: %s", file, it, e.msg);
            break;
        }
        const FixTensor *loss = fixture_getf(&f, "it%d.loss", it), *syn = fixture_getf(&f, "it%d.syn", it);
        if (loss) {
            float l = (float)r.loss;
            snprintf(what, sizeof(what), "%s iteration %d: loss", file, it);
            check_close(what, &l, loss->data, 1, 1e-5, 1e-4);
            note_worst(&l, loss->data, 1);
        }
        int steps = idm ? K * (int)m[12] : 1;
        CHECK(rp.n_grads == steps, "%s iteration %d: %d image steps, the port made %d", file, it, rp.n_grads, steps);
        for (int s = 0; s < steps && s < rp.n_grads; s++) {
            const FixTensor *g = fixture_getf(&f, "it%d.grad%d", it, s);
            if (!g) continue;
            snprintf(what, sizeof(what), "%s iteration %d: gradient w.r.t. the images, step %d", file, it, s);
            if (!idm) {
                check_close(what, rp.grads[s], g->data, n, 1e-5, 1e-4);
                note_worst(rp.grads[s], g->data, n);
                continue;
            }
            int c = s % K; // IDM: class c's block; zero elsewhere
            size_t blk = (size_t)ipc * D;
            check_close(what, rp.grads[s] + (size_t)c * blk, g->data, blk, 1e-5, 1e-4);
            note_worst(rp.grads[s] + (size_t)c * blk, g->data, blk);
            double out_norm = 0;
            for (size_t i = 0; i < n; i++)
                if (i / blk != (size_t)c) out_norm += fabs(rp.grads[s][i]);
            CHECK(out_norm == 0, "%s: the gradient outside class %d's images is zero", file, c);
        }
        snprintf(what, sizeof(what), "%s iteration %d: images after the iteration", file, it);
        if (syn && syn->n == n) {
            check_close(what, r.syn, syn->data, n, 1e-5, 1e-4);
            note_worst(r.syn, syn->data, n);
        }
    }
    printf("%s (%s): worst error %.3f of the tolerance (1e-5 + 1e-4 |ref|) over loss, gradients and images\n", file,
           arch, g_worst);
    CHECK(rp.bad == 0, "%s: beard's draws follow the port's (%d mismatches)", file, rp.bad);
    CHECK(rp.n_choose == (int)rp.choose->shape[0] && rp.n_dsa == (int)rp.dsa->shape[0],
          "%s: every draw of the port replayed (%d of %lld, %d of %lld)", file, rp.n_choose,
          (long long)rp.choose->shape[0], rp.n_dsa, (long long)rp.dsa->shape[0]);
    const FixTensor *nets = fixture_get(&f, "draws.nets");
    if (nets) CHECK(rp.nets == (int)nets->data[0], "%s: %d networks made, the port made %g", file, rp.nets, nets->data[0]);
    distill_run_free(&r);
out:
    rp_free(&rp);
    dataset_free(&ds);
    fixture_free(&f);
}

// ----------------------------------------------------------------------------
// the stage, on a small random dataset (3 classes at 16x16)

static Dataset g_ds;

static void random_dataset(int per) {
    memset(&g_ds, 0, sizeof(g_ds));
    snprintf(g_ds.name, sizeof(g_ds.name), "CIFAR10");
    g_ds.c = 3, g_ds.h = g_ds.w = 16, g_ds.n_classes = 3, g_ds.n = 3 * per;
    g_ds.images = malloc((size_t)g_ds.n * 768);
    g_ds.labels = malloc(sizeof(int) * (size_t)g_ds.n);
    Rng r;
    rng_init(&r, 77, 0);
    for (int i = 0; i < g_ds.n; i++) {
        g_ds.labels[i] = i % 3;
        for (int k = 0; k < 768; k++) g_ds.images[(size_t)i * 768 + k] = (uint8_t)(rng_below(&r, 64) + 64 * (i % 3));
    }
    g_info = *dataset_info("CIFAR10");
    g_info.h = g_info.w = 16;
    g_info.n_classes = 3;
}

static DistillConfig stage_cfg(const char *method, long iters) {
    DistillConfig c = {.method = distill_method_find(method), .info = &g_info, .ipc = 2, .iterations = iters,
                       .seed = 5, .lr_net = 0.01, .num_eval = 1, .epoch_eval_train = 2, .batch_train = 256};
    snprintf(c.arch, sizeof(c.arch), "ConvNetW32");
    return c;
}

static void small_params(DistillParams *p, const DistillConfig *c) {
    distill_params_init(p, c->method);
    set(p, "batch_real", "4");
    if (c->method != distill_method_find("DM")) {
        set(p, "trained_bs", "6");
        set(p, "model_train_steps", "2");
        set(p, "net_generate_interval", "2");
    }
}

// runs and returns a copy of the final synthetic set (via the res file)
static float *run_final(DistillConfig *cfg, const DistillParams *p, int resume, const DistillOverride *ov, Err *e,
                        int *rc) {
    DistillResult res;
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp("distill_out"));
    mkdir(dir, 0777);
    distill_paths(&paths, dir, cfg, e);
    *rc = distill_run(cfg, p, &g_ds, NULL, ov, &paths, resume, &res, e);
    distill_result_free(&res);
    if (*rc) return NULL;
    Pool pool;
    PoolOptions po = {.info = &g_info, .exp = -1};
    if (pool_load(&pool, paths.res, &po, e)) {
        CHECK(0, "res file: %s", e->msg);
        return NULL;
    }
    float *x = malloc(sizeof(float) * (size_t)pool.n * 768);
    memcpy(x, pool.x, sizeof(float) * (size_t)pool.n * 768);
    CHECK(pool.n == 6 && pool.y[0] == 0 && pool.y[5] == 2, "res file holds the class-major set");
    pool_free(&pool);
    remove(paths.res), remove(paths.pkl), remove(paths.png);
    return x;
}

static void test_determinism_and_resume(const char *method) {
    Err e;
    int rc;
    DistillConfig cfg = stage_cfg(method, 5);
    DistillParams p;
    small_params(&p, &cfg);
    snprintf(cfg.ckpt_path, sizeof(cfg.ckpt_path), "%s", test_tmp("distill.ckpt.pt"));
    float *a = run_final(&cfg, &p, 0, NULL, &e, &rc);
    CHECK(rc == 0, "%s run: %s", method, e.msg);
    float *b = run_final(&cfg, &p, 0, NULL, &e, &rc);
    CHECK(a && b && !memcmp(a, b, sizeof(float) * 6 * 768), "%s: the same seed and threads give identical images", method);
    free(b);
    cfg.seed = 6;
    b = run_final(&cfg, &p, 0, NULL, &e, &rc);
    CHECK(a && b && memcmp(a, b, sizeof(float) * 6 * 768), "%s: another seed, other images", method);
    free(b);
    cfg.seed = 5;
    // interrupted: 3 iterations with a checkpoint every 2 (kept: no release files), then
    // resumed with the full 5 iterations
    DistillConfig c1 = cfg;
    c1.iterations = 2, c1.ckpt_every = 2;
    DistillResult res;
    rc = distill_run(&c1, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    CHECK(rc == 0, "%s: the first part: %s", method, e.msg);
    struct stat st;
    CHECK(stat(c1.ckpt_path, &st) == 0, "%s: a checkpoint after 2 updates", method);
    DistillConfig c2 = cfg;
    c2.ckpt_every = 2;
    b = run_final(&c2, &p, 1, NULL, &e, &rc);
    CHECK(rc == 0, "%s resume: %s", method, e.msg);
    CHECK(a && b && !memcmp(a, b, sizeof(float) * 6 * 768), "%s: resumed = uninterrupted, bit for bit", method);
    CHECK(stat(c2.ckpt_path, &st) != 0, "%s: the checkpoint is removed once the release files are written", method);
    free(a), free(b);
    // a checkpoint of another run is refused, and so is a corrupt one
    rc = distill_run(&c1, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    DistillParams q = p;
    set(&q, "lr_img", "0.123");
    rc = distill_run(&c2, &q, &g_ds, NULL, NULL, NULL, 1, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "another run"), "%s: foreign checkpoint: %s", method, e.msg);
    FILE *f = fopen(c2.ckpt_path, "r+b");
    if (f) {
        fseek(f, 200, SEEK_SET);
        fwrite("garbage garbage garbage", 1, 23, f);
        fclose(f);
    }
    rc = distill_run(&c2, &p, &g_ds, NULL, NULL, NULL, 1, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "resume"), "%s: corrupt checkpoint: %s", method, e.msg);
    remove(c2.ckpt_path);
    rc = distill_run(&c2, &p, &g_ds, NULL, NULL, NULL, 1, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "resume"), "%s: missing checkpoint: %s", method, e.msg);
}

// runs into a folder of its own and leaves the res file there (its path in res)
static int run_keep(const DistillConfig *cfg, const DistillParams *p, const char *name, char *res, size_t n, Err *e) {
    DistillResult r;
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp(name));
    mkdir(dir, 0777);
    if (distill_paths(&paths, dir, cfg, e)) return -1;
    remove(paths.res), remove(paths.pkl), remove(paths.png);
    int rc = distill_run(cfg, p, &g_ds, NULL, NULL, &paths, 0, &r, e);
    distill_result_free(&r);
    snprintf(res, n, "%s", paths.res);
    return rc;
}

// --init-from: the file's images replace the method's initial set and nothing else
static void test_init_from(const char *method) {
    Err e;
    int rc;
    char other[1200], own[1200];
    DistillConfig cfg = stage_cfg(method, 3);
    DistillParams p, still;
    small_params(&p, &cfg);
    // another seed's distilled set, and this seed's own initial draw (lr_img 0 keeps it)
    cfg.seed = 9;
    CHECK(run_keep(&cfg, &p, "init_other", other, sizeof(other), &e) == 0, "%s: a set to start from: %s", method, e.msg);
    cfg.seed = 5;
    still = p;
    set(&still, "lr_img", "0");
    CHECK(run_keep(&cfg, &still, "init_own", own, sizeof(own), &e) == 0, "%s: the initial draw: %s", method, e.msg);
    // with lr_img 0 the final set is the file's, bit for bit
    DistillConfig c = cfg;
    c.init_from = other;
    float *a = run_final(&c, &still, 0, NULL, &e, &rc);
    Pool f;
    PoolOptions po = {.info = &g_info, .exp = -1};
    CHECK(pool_load(&f, other, &po, &e) == 0, "%s: %s", method, e.msg);
    CHECK(rc == 0 && a && f.n == 6 && !memcmp(a, f.x, sizeof(float) * 6 * 768),
          "%s: --init-from with lr_img 0 ends on the file's images: %s", method, rc ? e.msg : "");
    float *b = run_final(&cfg, &still, 0, NULL, &e, &rc);
    CHECK(rc == 0 && b && memcmp(b, f.x, sizeof(float) * 6 * 768), "%s: without it, on its own draw", method);
    pool_free(&f);
    free(a), free(b);
    // starting from its own initial draw is the plain run, bit for bit: the networks, real
    // batches and DSA draws are still those of the seed
    a = run_final(&cfg, &p, 0, NULL, &e, &rc);
    c.init_from = own;
    b = run_final(&c, &p, 0, NULL, &e, &rc);
    CHECK(rc == 0 && a && b && !memcmp(a, b, sizeof(float) * 6 * 768),
          "%s: --init-from its own initial set = the plain run: %s", method, rc ? e.msg : "");
    free(a), free(b);
    // a resume must start from the same file
    DistillConfig c1 = c, c2 = cfg;
    c1.iterations = 1, c1.ckpt_every = 1;
    snprintf(c1.ckpt_path, sizeof(c1.ckpt_path), "%s", test_tmp("init_from.ckpt.pt"));
    snprintf(c2.ckpt_path, sizeof(c2.ckpt_path), "%s", c1.ckpt_path);
    DistillResult res;
    rc = distill_run(&c1, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    CHECK(rc == 0, "%s: a checkpointed --init-from run: %s", method, e.msg);
    rc = distill_run(&c2, &p, &g_ds, NULL, NULL, NULL, 1, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "another run"), "%s: resumed without --init-from: %s", method, e.msg);
    c2.init_from = other;
    rc = distill_run(&c2, &p, &g_ds, NULL, NULL, NULL, 1, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "another run"), "%s: resumed from another file: %s", method, e.msg);
    remove(c1.ckpt_path);
    // a file of another IPC, and a method that does not take it
    c.ipc = 1;
    rc = distill_run(&c, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "holds 6 images") && strstr(e.msg, "starts from 3"), "%s: wrong IPC: %s", method, e.msg);
    c = cfg;
    c.method = distill_method_find("MTT");
    c.init_from = own;
    rc = distill_run(&c, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "does not take --init-from"), "MTT refuses --init-from: %s", e.msg);
    remove(own), remove(other);
}

// NaN weights for the fourth network: the loss is NaN at iteration 3
static int nan_net(void *ctx, Net *net, int tag) {
    (void)ctx;
    if (tag != 3) return 1;
    for (size_t i = 0; i < net->n_params; i++) net->params[i] = NAN;
    return 0;
}

static void test_nan(void) {
    Err e;
    DistillConfig cfg = stage_cfg("DM", 6);
    cfg.ckpt_every = 1;
    snprintf(cfg.ckpt_path, sizeof(cfg.ckpt_path), "%s", test_tmp("distill_nan.ckpt.pt"));
    DistillParams p;
    small_params(&p, &cfg);
    DistillOverride ov = {.net_init = nan_net};
    DistillResult res;
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp("distill_nan_out"));
    mkdir(dir, 0777);
    distill_paths(&paths, dir, &cfg, &e);
    int rc = distill_run(&cfg, &p, &g_ds, NULL, &ov, &paths, 0, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "loss is nan at iteration 3") && strstr(e.msg, "iteration 3)"),
          "a NaN loss stops the run, naming the kept checkpoint: %s", e.msg);
    struct stat st;
    CHECK(stat(paths.res, &st) != 0 && stat(paths.png, &st) != 0, "nothing written after a NaN loss");
    // the kept checkpoint resumes (finite), and with good weights the run completes
    rc = distill_run(&cfg, &p, &g_ds, NULL, NULL, &paths, 1, &res, &e);
    CHECK(rc == 0 && res.resumed_from == 3, "resume after the NaN: rc %d from %ld: %s", rc, res.resumed_from, e.msg);
    remove(paths.res), remove(paths.png), remove(cfg.ckpt_path);
}

static void test_outputs_and_eval(void) {
    Err e;
    DistillConfig cfg = stage_cfg("IDM", 1);
    cfg.eval_every = 1;
    DistillParams p;
    small_params(&p, &cfg);
    // a test set: the training images themselves
    float *xt = malloc(sizeof(float) * (size_t)g_ds.n * 768);
    dataset_to_float(&g_ds, 0, g_ds.n, xt, 1);
    TrainTest test = {.x = xt, .y = g_ds.labels, .n = g_ds.n};
    DistillPaths paths;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", test_tmp("distill_idm_out"));
    distill_paths(&paths, dir, &cfg, &e); // the folder is made
    DistillResult res;
    int rc = distill_run(&cfg, &p, &g_ds, &test, NULL, &paths, 0, &res, &e);
    CHECK(rc == 0, "IDM with evaluation: %s", e.msg);
    CHECK(res.n_evals == 2 && res.eval_it[0] == 1 && res.eval_it[1] == 2 && res.n_final_accs == 1,
          "evaluated after 1 update and at the end (%d evaluations)", res.n_evals);
    distill_result_free(&res);
    CHECK(strstr(paths.res, "res_IDM_CIFAR10_ConvNetW32_2ipc.pt") && strstr(paths.pkl, "IDM_CIFAR10_ConvNetW32_2ipc.pkl") &&
              strstr(paths.png, "vis_IDM_CIFAR10_ConvNetW32_2ipc_exp0_iter1.png"),
          "official file names: %s %s %s", paths.res, paths.pkl, paths.png);
    // both files load as IDM's, and unpack to 4 x 6 images
    Pool a, b;
    PoolOptions po = {.info = &g_info, .exp = -1};
    CHECK(pool_load(&a, paths.res, &po, &e) == 0 && a.n == 6, "res loads: %s", e.msg);
    CHECK(pool_load(&b, paths.pkl, &po, &e) == 0 && b.n == 6 && !strcmp(b.format, "pickle"), "pkl loads: %s", e.msg);
    if (a.n == 6 && b.n == 6) CHECK(!memcmp(a.x, b.x, sizeof(float) * 6 * 768), "res and pkl hold the same images");
    CHECK(pool_unpack4(&a, &e) == 0 && a.n == 24 && a.y[23] == 2, "4-in-1 unpacking of the res file");
    pool_free(&a), pool_free(&b);
    PickleValue *v;
    if (torch_load(paths.res, &v, &e) == 0) {
        const PickleValue *acc = pickle_dict_get(pickle_dict_get(v, "accs_all_exps"), "ConvNetW32");
        CHECK(pickle_len(acc) == 1 && pickle_is(pickle_item(acc, 0), PICKLE_TENSOR), "accs_all_exps holds the final accuracy");
        pickle_free(v);
    }
    FILE *f = fopen(paths.png, "rb");
    unsigned char sig[8] = {0};
    if (f) {
        CHECK(fread(sig, 1, 8, f) == 8, "read the PNG");
        fclose(f);
    }
    CHECK(sig[0] == 0x89 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G', "the grid is a PNG");
    uint8_t *rgb;
    int w = 0, h = 0;
    CHECK(image_read_rgb(paths.png, &rgb, &w, &h, &e) == 0 && w == 2 * 18 + 2 && h == 3 * 18 + 2,
          "grid of 3 rows of 2 with 2-pixel padding: %dx%d", w, h);
    if (w) xfree(rgb);
    remove(paths.res), remove(paths.pkl), remove(paths.png);
    rmdir(dir);
    free(xt);
    // a res file name given: the others next to it
    DistillPaths q;
    CHECK(distill_paths(&q, "/tmp/x/my.pt", &cfg, &e) == 0 && !strcmp(q.pkl, "/tmp/x/my.pkl") &&
              !strcmp(q.ckpt, "/tmp/x/my.checkpoint.pt") && !strcmp(q.dir, "/tmp/x"),
          "--out FILE.pt: %s %s", q.pkl, q.ckpt);
    // IPC larger than a class
    cfg.ipc = 11;
    cfg.eval_every = 0;
    rc = distill_run(&cfg, &p, &g_ds, NULL, NULL, NULL, 0, &res, &e);
    CHECK(rc == -1 && strstr(e.msg, "IPC 11 is larger than the 10 training images of class 0"), "IPC too large: %s", e.msg);
}

// every dataset shape works as the source: one iteration of DM and IDM on MNIST-shaped
// (1 x 28 x 28, padded to 32 by the ConvNet) and TinyImageNet-shaped (3 x 64 x 64) data
static void test_shapes(void) {
    const char *names[2] = {"MNIST", "TinyImageNet"};
    for (int k = 0; k < 2; k++) {
        const DatasetInfo *base = dataset_info(names[k]);
        DatasetInfo info = *base;
        info.n_classes = 2;
        Dataset ds;
        memset(&ds, 0, sizeof(ds));
        snprintf(ds.name, sizeof(ds.name), "%s", base->name);
        ds.c = info.c, ds.h = info.h, ds.w = info.w, ds.n_classes = 2, ds.n = 6;
        size_t D = (size_t)ds.c * ds.h * ds.w;
        ds.images = malloc(D * 6);
        ds.labels = malloc(sizeof(int) * 6);
        for (size_t i = 0; i < D * 6; i++) ds.images[i] = (uint8_t)(i * 37 % 251);
        for (int i = 0; i < 6; i++) ds.labels[i] = i % 2;
        for (int m = 0; m < 2; m++) {
            DistillConfig cfg = {.method = distill_method_find(m ? "IDM" : "DM"), .info = &info, .ipc = 1, .iterations = 0,
                                 .lr_net = 0.01, .num_eval = 1, .epoch_eval_train = 1, .batch_train = 8};
            snprintf(cfg.arch, sizeof(cfg.arch), "ConvNetW32");
            DistillParams p;
            small_params(&p, &cfg);
            DistillPaths paths;
            Err e;
            char dir[512];
            snprintf(dir, sizeof(dir), "%s", test_tmp("distill_shape"));
            CHECK(distill_paths(&paths, dir, &cfg, &e) == 0, "paths: %s", e.msg);
            DistillResult res;
            int rc = distill_run(&cfg, &p, &ds, NULL, NULL, &paths, 0, &res, &e);
            CHECK(rc == 0 && isfinite(res.final_loss), "%s on %s-shaped data: %s", cfg.method->name, names[k], e.msg);
            uint8_t *rgb;
            int w = 0, h = 0;
            CHECK(rc || (image_read_rgb(paths.png, &rgb, &w, &h, &e) == 0 && w == info.w + 4 && h == 2 * (info.h + 2) + 2),
                  "%s: the grid (%dx%d)", names[k], w, h);
            if (w) xfree(rgb);
            remove(paths.res), remove(paths.pkl), remove(paths.png);
            rmdir(dir);
        }
        dataset_free(&ds);
    }
}

static void test_params(void) {
    const DistillMethodDef *idm = distill_method_find("idm"), *dm = distill_method_find("Distribution-Matching");
    CHECK(idm && dm && distill_method_find("bacon") && !distill_method_find("DC9"), "the registry");
    DistillParams p;
    Err e;
    distill_params_init(&p, dm);
    CHECK(distill_param(&p, "lr_img") == 1.0 && distill_param_int(&p, "batch_real") == 256 &&
              !strcmp(distill_param_str(&p, "init"), "real"),
          "DM's official defaults");
    CHECK(distill_params_set_text(&p, "lr-img", "8/255", &e) == 0 && fabs(distill_param(&p, "lr_img") - 8.0 / 255) < 1e-12,
          "dashes, fractions");
    CHECK(distill_params_set_text(&p, "ce_weight", "1", &e) == -1 && strstr(e.msg, "DM has no parameter 'ce_weight'") &&
              strstr(e.msg, "lr_img"),
          "a parameter DM does not have: %s", e.msg);
    CHECK(distill_params_set_text(&p, "batch_real", "2.5", &e) == -1 && strstr(e.msg, "integer"), "integers");
    CHECK(distill_params_set_text(&p, "batch_real", "0", &e) == -1 && strstr(e.msg, ">= 1"), "ranges");
    // command.txt per setting, the user's value wins
    DistillSettings s;
    distill_settings_default(&s);
    s.ipc = 1;
    CHECK(distill_settings_params(&s, idm, dataset_info("cifar10"), &p, &e) == 0 &&
              distill_param_int(&p, "batch_real") == 5000 && distill_param_int(&p, "net_generate_interval") == 5,
          "IDM CIFAR-10 IPC 1: batch_real 5000, net_generate_interval 5");
    distill_settings_add_param(&s, "batch_real", "300", &e);
    CHECK(distill_settings_params(&s, idm, dataset_info("cifar10"), &p, &e) == 0 && distill_param_int(&p, "batch_real") == 300,
          "the user's batch_real wins over command.txt's");
    s.ipc = 10;
    distill_settings_default(&s);
    s.ipc = 10;
    distill_settings_params(&s, idm, dataset_info("cifar100"), &p, &e);
    CHECK(distill_param(&p, "ce_weight") == 0.1 && distill_param_int(&p, "model_train_steps") == 50, "IDM CIFAR-100 IPC 10");
    // the settings JSON
    const char *js = test_tmp("distill_cfg.json");
    FILE *f = fopen(js, "w");
    fputs("{\"method\": \"DM\", \"dataset\": \"CIFAR10\", \"model\": \"ConvNet\", \"ipc\": \"10\", "
          "\"Iteration\": 300, \"lr_img\": 0.5, \"dsa_strategy\": \"none\", \"num_exp\": 1}",
          f);
    fclose(f);
    distill_settings_default(&s);
    CHECK(distill_settings_load_json(&s, js, &e) == 0 && s.ipc == 10 && s.iterations == 300 && !strcmp(s.method, "DM"),
          "config: %s", e.msg);
    CHECK(distill_settings_params(&s, dm, dataset_info("cifar10"), &p, &e) == 0 && distill_param(&p, "lr_img") == 0.5 &&
              !strcmp(distill_param_str(&p, "dsa_strategy"), "none"),
          "config's method parameters: %s", e.msg);
    f = fopen(js, "w");
    fputs("{\"method\": \"DM\", \"lr_imgg\": 0.5}", f);
    fclose(f);
    distill_settings_default(&s);
    CHECK(distill_settings_load_json(&s, js, &e) == 0 && distill_settings_params(&s, dm, dataset_info("cifar10"), &p, &e) == -1 &&
              strstr(e.msg, "lr_imgg"),
          "a misspelt key is an error: %s", e.msg);
    f = fopen(js, "w");
    fputs("{\"num_exp\": 5}", f);
    fclose(f);
    CHECK(distill_settings_load_json(&s, js, &e) == -1 && strstr(e.msg, "one experiment"), "num_exp: %s", e.msg);
    remove(js);
}

// ----------------------------------------------------------------------------
// the command line: bad input gives one line on stderr, a non-zero status, nothing written

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int dir_empty(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' 2>/dev/null)\"", dir);
    return system(cmd) == 0;
}

// a small CIFAR-10 in the binary layout: 5 x 6 training images (3 per class), 10 test images
static void fake_cifar(const char *dir) {
    mkdir(dir, 0777);
    uint8_t rec[3073];
    Rng r;
    rng_init(&r, 3, 0);
    for (int f = 0; f <= 5; f++) {
        char path[600];
        if (f < 5) snprintf(path, sizeof(path), "%s/data_batch_%d.bin", dir, f + 1);
        else snprintf(path, sizeof(path), "%s/test_batch.bin", dir);
        FILE *o = fopen(path, "wb");
        for (int i = 0; i < (f < 5 ? 6 : 10); i++) {
            rec[0] = (uint8_t)((f * 6 + i) % 10);
            for (int k = 1; k < 3073; k++) rec[k] = (uint8_t)rng_below(&r, 256);
            fwrite(rec, 1, sizeof(rec), o);
        }
        fclose(o);
    }
}

static void test_cli(void) {
    if (!beard_bin()) {
        test_skip("beard distill CLI (set BEARD to the CLI binary; make test does)");
        return;
    }
    char data[512], out[600], err[8192], path[800];
    snprintf(data, sizeof(data), "%s", test_tmp("distill_cifar"));
    fake_cifar(data);
    snprintf(out, sizeof(out), "%s", test_tmp("distill_cli_out"));
    const char *base = "distill --method DM --dataset cifar10 --arch ConvNetW32 --iterations 2 --batch-real 2 --threads 2";
    struct {
        const char *what, *args;
        int status;
        const char *needle;
    } bad[] = {
        {"IPC larger than a class", "--ipc 4", 1, "IPC 4 is larger than the 3 training images of class"},
        {"unknown method", "--ipc 1 --method DC9", 2, "unknown method 'DC9'"},
        {"a parameter DM does not have", "--ipc 1 --ce-weight 0.5", 2, "DM has no parameter 'ce_weight'"},
        {"an unknown --param", "--ipc 1 --param nope=1", 2, "DM has no parameter 'nope'"},
        {"a bad parameter value", "--ipc 1 --lr-img fast", 2, "lr_img expects a number"},
        {"no IPC", "", 2, "--ipc is required"},
        {"an unknown dataset", "--ipc 1 --dataset cifar11", 2, "unknown dataset"},
        {"an unknown model", "--ipc 1 --arch ResNet999", 2, "unknown architecture"},
        {"a NaN loss", "--ipc 1 --lr-img 1e39 --init noise --checkpoint-every 1", 1, "not finite"},
        {"--resume without a checkpoint", "--ipc 1 --resume", 1, "no checkpoint"},
        {"--init-from a missing file", "--ipc 1 --init-from /nonexistent/res.pt", 1, "--init-from /nonexistent/res.pt"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int st = run_cli_stderr(err, sizeof(err), "%s --data %s --out %s %s", base, data, out, bad[k].args);
        CHECK(st == bad[k].status && strstr(err, bad[k].needle) && lines(err) == 1 && !strncmp(err, "beard distill: ", 15),
              "%s: status %d, stderr '%s'", bad[k].what, st, err);
        CHECK(dir_empty(out), "%s: nothing written in %s", bad[k].what, out);
    }
    int st = run_cli_stderr(err, sizeof(err), "%s --ipc 1 --data %s/nowhere --out %s", base, data, out);
    CHECK(st == 1 && strstr(err, "use --data DIR") && lines(err) == 1, "a missing dataset: %d '%s'", st, err);
    // a good run, then the bad ones that need its files
    char json[800];
    snprintf(json, sizeof(json), "%s/run.json", out);
    st = run_cli_stderr(err, sizeof(err), "%s --ipc 1 --data %s --out %s --json %s", base, data, out, json);
    CHECK(st == 0, "a small DM run: %d '%s'", st, err);
    snprintf(path, sizeof(path), "%s/res_DM_CIFAR10_ConvNetW32_1ipc.pt", out);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && stat(json, &sb) == 0, "the res file and the JSON summary");
    st = run_cli_stderr(err, sizeof(err), "%s --ipc 1 --data %s --out %s", base, data, out);
    CHECK(st == 1 && strstr(err, "exists") && strstr(err, "--force"), "existing outputs are kept: '%s'", err);
    // stage 2 on it, stage 3 on the model: the stages chain
    char log[8192], models[700], model[900];
    snprintf(models, sizeof(models), "%s/models", out);
    st = run_cli(log, sizeof(log),
                 "train --data-file %s --dataset cifar10 --data %s --arch ConvNetW32 --runs 1 --epochs 2 --quiet "
                 "--save-path %s",
                 path, data, models);
    CHECK(st == 0 && strstr(log, "test accuracy over 1 run"), "beard train reads the res file: %d %s", st, log);
    snprintf(model, sizeof(model), "%s/DM_ConvNetW32_CIFAR10_1_None.pth", models);
    st = run_cli(log, sizeof(log), "attack --model %s --dataset cifar10 --data %s --arch ConvNetW32 --attack FGSM,PGD --limit 10",
                 model, data);
    CHECK(st == 0 && strstr(log, "PGD"), "beard attack on the model trained on the distilled set: %d %s", st, log);
    // a corrupt checkpoint
    snprintf(path, sizeof(path), "%s/DM_CIFAR10_ConvNetW32_1ipc.checkpoint.pt", out);
    FILE *f = fopen(path, "wb");
    fputs("PK\x03\x04 not really a zip file", f);
    fclose(f);
    st = run_cli_stderr(err, sizeof(err), "%s --ipc 1 --data %s --out %s --resume", base, data, out);
    CHECK(st == 1 && strstr(err, "cannot resume") && lines(err) == 1, "a corrupt checkpoint: %d '%s'", st, err);
    // --help lists every method with its parameters and defaults; --dry-run writes nothing
    st = run_cli(log, sizeof(log), "distill --help");
    CHECK(st == 0 && strstr(log, "IDM:") && strstr(log, "BACON:") && strstr(log, "--lr_img") && strstr(log, "0.2") &&
              strstr(log, "batch_real 5000"),
          "--help lists methods, parameters and defaults");
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", out, data);
    CHECK(system(cmd) == 0, "clean up");
}

int main(void) {
    parallel_set_threads(2);
    test_fidelity("DM", "dm", "ConvNetW32");
    test_fidelity("DM", "dm_bn", "ConvNetBN");
    test_fidelity("IDM", "idm", "ConvNetW32");
    test_fidelity("BACON", "bacon", "ConvNetW32");
    test_params();
    random_dataset(10);
    test_determinism_and_resume("DM");
    test_determinism_and_resume("IDM");
    test_init_from("DM");
    test_init_from("IDM");
    test_nan();
    test_shapes();
    test_outputs_and_eval();
    dataset_free(&g_ds);
    test_cli();
    return test_done("test_distill");
}
