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
        }
        int steps = idm ? K * (int)m[12] : 1;
        CHECK(rp.n_grads == steps, "%s iteration %d: %d image steps, the port made %d", file, it, rp.n_grads, steps);
        for (int s = 0; s < steps && s < rp.n_grads; s++) {
            const FixTensor *g = fixture_getf(&f, "it%d.grad%d", it, s);
            if (!g) continue;
            snprintf(what, sizeof(what), "%s iteration %d: gradient w.r.t. the images, step %d", file, it, s);
            if (!idm) {
                check_close(what, rp.grads[s], g->data, n, 1e-5, 1e-4);
                continue;
            }
            int c = s % K; // IDM: class c's block; zero elsewhere
            size_t blk = (size_t)ipc * D;
            check_close(what, rp.grads[s] + (size_t)c * blk, g->data, blk, 1e-5, 1e-4);
            double out_norm = 0;
            for (size_t i = 0; i < n; i++)
                if (i / blk != (size_t)c) out_norm += fabs(rp.grads[s][i]);
            CHECK(out_norm == 0, "%s: the gradient outside class %d's images is zero", file, c);
        }
        snprintf(what, sizeof(what), "%s iteration %d: images after the iteration", file, it);
        if (syn && syn->n == n) check_close(what, r.syn, syn->data, n, 1e-5, 1e-4);
    }
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

int main(void) {
    parallel_set_threads(2);
    test_fidelity("DM", "dm", "ConvNetW32");
    test_fidelity("DM", "dm_bn", "ConvNetBN");
    test_fidelity("IDM", "idm", "ConvNetW32");
    test_fidelity("BACON", "bacon", "ConvNetW32");
    return test_done("test_distill");
}
