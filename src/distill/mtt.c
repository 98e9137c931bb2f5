/*
 * mtt.c: MTT, trajectory matching in `beard distill` (distill_mtt), and its unrolled
 * iteration with the reverse sweep (see mtt.h).
 *
 * The method, as GeorgeCazenavette/mtt-distillation distill.py runs it: the expert
 * trajectories of `beard buffer` (or buffer.py) in BUFFER_PATH/<DATASET>[_NO_ZCA]/<ARCH>;
 * the files in a random order (random.shuffle), one loaded at a time, its experts in a
 * random order (cut to max_experts first), the next file when they run out; per
 * iteration the next expert, a start epoch from [0, max_start_epoch), the target
 * expert_epochs later; syn_steps unrolled steps on minibatches of batch_syn (default: all
 * synthetic images) that are chunks of a random permutation taken from its end
 * (indices_chunks.pop()), a fresh permutation when they run out, each through its own DSA
 * draw (per-sample parameters, align_corners=True); SGD with momentum 0.5 on the images
 * (lr_img) and on syn_lr (lr_lr, starting at lr_teacher). With zca the real data, the
 * initial images and the images the student sees are in ZCA space (kornia
 * ZCAWhitening(eps=0.1) on [0, 1] pixels, src/data/zca.c); the stage sees the images
 * un-whitened and mean/std-normalised (its res_*.pt, evaluation and PNG), and mtt_write
 * writes MTT's own layout beside it. CIFAR-10's per-IPC settings are the table.
 *
 * Deliberate differences: draws come from the run's generator, not torch's and numpy's
 * global ones; load_all keeps one file (beard refuses load_all over several files
 * instead of holding them all); the official evaluation at it = 0 and every eval_it is
 * the stage's --eval-every; syn_lr is also saved (lr_best.pt), which the official code
 * does not do.
 *
 * The forward sweep takes its gradients from net_forward_backward (the fused first-order
 * driver); the reverse sweep gets g_k, H_k a and the mixed product from one net_hvp call
 * per step. Both see the same minibatch: A_k is a stored draw, the images are gathered
 * again. Sums of the loss run in double; the official code's division of both norms by
 * the parameter count cancels and is kept for the float32 rounding it does not change.
 */
#include "mtt.h"

#include <string.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "../io/file.h"
#include "../io/torch_pt.h"
#include "../models/net_hvp.h"
#include "../nn/nn.h"
#include "distill.h"
#include "mtt_buffer.h"

void mtt_work_free(MttWork *w) {
    xfree(w->theta), xfree(w->a), xfree(w->hv), xfree(w->g), xfree(w->x), xfree(w->xa), xfree(w->dx), xfree(w->y);
    memset(w, 0, sizeof(*w));
}

static int work_reserve(MttWork *w, const Net *net, int n_steps, int nmax, Err *e) {
    size_t P = net->n_params, in = net_in_size(net);
    if (w->P != P || n_steps > w->cap_steps) {
        xfree(w->theta), xfree(w->a), xfree(w->hv), xfree(w->g);
        size_t nt;
        if (!size_mul((size_t)n_steps + 1, P, &nt)) return err_set(e, "too many unrolled steps");
        w->theta = xmalloc(sizeof(float) * (nt ? nt : 1));
        w->a = xmalloc(sizeof(float) * P), w->hv = xmalloc(sizeof(float) * P), w->g = xmalloc(sizeof(float) * P);
        w->P = P, w->cap_steps = n_steps;
        if (!w->theta || !w->a || !w->hv || !w->g) {
            w->cap_steps = 0;
            return err_set(e, "out of memory for %d unrolled steps of %zu parameters", n_steps, P);
        }
    }
    if (nmax > w->cap_n) {
        xfree(w->x), xfree(w->xa), xfree(w->dx), xfree(w->y);
        w->x = xmalloc(sizeof(float) * nmax * in), w->xa = xmalloc(sizeof(float) * nmax * in);
        w->dx = xmalloc(sizeof(float) * nmax * in), w->y = xmalloc(sizeof(int) * nmax);
        w->cap_n = nmax;
        if (!w->x || !w->xa || !w->dx || !w->y) {
            w->cap_n = 0;
            return err_set(e, "out of memory for a minibatch of %d images", nmax);
        }
    }
    return 0;
}

// step k's minibatch as the network sees it: gathered, then augmented
static const float *step_batch(const Net *net, const float *syn, const int *labels, const MttStep *st,
                               const DsaConfig *cfg, MttWork *w) {
    size_t in = net_in_size(net);
    for (int i = 0; i < st->n; i++) {
        memcpy(w->x + (size_t)i * in, syn + (size_t)st->idx[i] * in, sizeof(float) * in);
        w->y[i] = labels[st->idx[i]];
    }
    if (st->draw.op >= DSA_OP_COUNT) return w->x;
    dsa_forward(w->xa, w->x, &st->draw, cfg, net->in_c, net->in_h, net->in_w);
    return w->xa;
}

int mtt_unroll(Net *net, const float *syn, const int *labels, int n_syn, float syn_lr, const float *start,
               const float *target, const MttStep *steps, int n_steps, const DsaConfig *cfg, double *loss,
               float *g_img, double *g_lr, MttWork *w, Err *e) {
    if (n_steps < 1) return err_set(e, "MTT needs at least one unrolled step");
    int nmax = 0;
    for (int k = 0; k < n_steps; k++) {
        if (steps[k].n < 1) return err_set(e, "unrolled step %d has an empty minibatch", k);
        if (steps[k].draw.op < DSA_OP_COUNT && steps[k].draw.B != steps[k].n)
            return err_set(e, "unrolled step %d: DSA draw for %d images, minibatch of %d", k, steps[k].draw.B,
                           steps[k].n);
        for (int i = 0; i < steps[k].n; i++)
            if (steps[k].idx[i] < 0 || steps[k].idx[i] >= n_syn)
                return err_set(e, "unrolled step %d: image %d outside the %d synthetic images", k, steps[k].idx[i],
                               n_syn);
        if (steps[k].n > nmax) nmax = steps[k].n;
    }
    if (work_reserve(w, net, n_steps, nmax, e) || net_alloc_grads(net, e)) return -1;
    size_t P = net->n_params, in = net_in_size(net);
    int train = net->train;
    net->train = 1;
    // forward sweep
    memcpy(w->theta, start, sizeof(float) * P);
    for (int k = 0; k < n_steps; k++) {
        float *th = w->theta + (size_t)k * P, *next = th + P;
        memcpy(net->params, th, sizeof(float) * P);
        const float *x = step_batch(net, syn, labels, &steps[k], cfg, w);
        NetMeanCE m = {w->y, net->n_classes, 1.0f / (float)steps[k].n};
        NetBackward nb = {.loss = net_mean_ce, .ctx = &m, .nvec = 1, .param_grads = 1};
        net_zero_grads(net);
        if (net_forward_backward(net, x, steps[k].n, &nb, e)) {
            net->train = train;
            return -1;
        }
        for (size_t i = 0; i < P; i++) next[i] = th[i] - syn_lr * net->grads[i];
    }
    // the loss and a_N
    const float *thN = w->theta + (size_t)n_steps * P;
    double num = 0, den = 0;
    for (size_t i = 0; i < P; i++) {
        double d1 = (double)thN[i] - target[i], d0 = (double)start[i] - target[i];
        num += d1 * d1, den += d0 * d0;
    }
    if (!(den > 0)) {
        net->train = train;
        return err_set(e, "the expert's start and target parameters are equal (no trajectory to match)");
    }
    *loss = (num / (double)P) / (den / (double)P);
    for (size_t i = 0; i < P; i++) w->a[i] = (float)(2.0 * ((double)thN[i] - target[i]) / den);
    // reverse sweep
    memset(g_img, 0, sizeof(float) * n_syn * in);
    double glr = 0;
    for (int k = n_steps - 1; k >= 0; k--) {
        const MttStep *st = &steps[k];
        memcpy(net->params, w->theta + (size_t)k * P, sizeof(float) * P);
        const float *x = step_batch(net, syn, labels, st, cfg, w);
        NetHvp h = {.labels = w->y, .v = w->a, .train = 1, .grad = w->g, .hv = w->hv, .dx = w->dx};
        if (net_hvp(net, x, st->n, &h, e)) {
            net->train = train;
            return -1;
        }
        double dot = 0;
        for (size_t i = 0; i < P; i++) dot += (double)w->a[i] * w->g[i];
        glr -= dot;
        for (size_t i = 0; i < (size_t)st->n * in; i++) w->dx[i] *= -syn_lr;
        // A_k^T into the gathered layout, then scattered back to the images
        float *gx = w->dx;
        if (st->draw.op < DSA_OP_COUNT) {
            memset(w->xa, 0, sizeof(float) * st->n * in);
            dsa_backward(w->xa, w->dx, &st->draw, cfg, net->in_c, net->in_h, net->in_w);
            gx = w->xa;
        }
        for (int i = 0; i < st->n; i++) {
            float *dst = g_img + (size_t)st->idx[i] * in;
            const float *src = gx + (size_t)i * in;
            for (size_t j = 0; j < in; j++) dst[j] += src[j];
        }
        for (size_t i = 0; i < P; i++) w->a[i] -= syn_lr * w->hv[i];
    }
    memcpy(net->params, thN, sizeof(float) * P);
    net->train = train;
    *g_lr = glr;
    return 0;
}

// ----------------------------------------------------------------------------
// the method (distill.py)

static const DistillParamDef mtt_params[] = {
    {"syn_steps", DPARAM_INT, 20, NULL, 1, "unrolled student steps on the synthetic set per iteration"},
    {"expert_epochs", DPARAM_INT, 3, NULL, 1, "epochs between the expert's start and target parameters"},
    {"max_start_epoch", DPARAM_INT, 25, NULL, 1, "the start epoch is drawn from [0, max_start_epoch)"},
    {"lr_img", DPARAM_NUM, 1000, NULL, 0, "learning rate of the synthetic images (SGD, momentum 0.5)"},
    {"lr_lr", DPARAM_NUM, 1e-5, NULL, 0, "learning rate of the learned syn_lr (SGD, momentum 0.5)"},
    {"lr_teacher", DPARAM_NUM, 0.01, NULL, 0, "initial syn_lr (the experts' learning rate)"},
    {"batch_syn", DPARAM_INT, 0, NULL, 0, "minibatch of each unrolled step (0: all synthetic images)"},
    {"pix_init", DPARAM_STR, 0, "real", NAN, "initial synthetic images: real or noise"},
    {"dsa", DPARAM_BOOL, 1, NULL, NAN, "DSA on every unrolled step (MTT's ops, align_corners=True)"},
    {"dsa_strategy", DPARAM_STR, 0, "color_crop_cutout_flip_scale_rotate", NAN, "DSA ops, one per step"},
    {"zca", DPARAM_BOOL, 0, NULL, NAN, "distil in ZCA space (kornia ZCAWhitening(eps=0.1) on [0, 1] pixels)"},
    {"buffer_path", DPARAM_STR, 0, "./buffers", NAN,
     "expert trajectories (beard buffer / buffer.py): BUFFER_PATH/<DATASET>[_NO_ZCA]/<ARCH>/replay_buffer_<n>.pt"},
    {"load_all", DPARAM_BOOL, 0, NULL, NAN, "load every buffer file and draw experts at random"},
    {"max_files", DPARAM_INT, 0, NULL, 0, "use at most this many buffer files (0: all)"},
    {"max_experts", DPARAM_INT, 0, NULL, 0, "use at most this many experts per file (0: all)"},
    {NULL},
};

// the hyper-parameters of MTT's table for CIFAR-10 (as the issue gives them)
static void mtt_setting(DistillParams *p, const DatasetInfo *info, int ipc) {
    if (strcmp(info->name, "CIFAR10")) return;
    static const double t[][8] = {// ipc, syn_steps, expert_epochs, max_start_epoch, lr_img, lr_lr, lr_teacher, zca
                                  {1, 50, 2, 2, 100, 1e-7, 0.01, 1},
                                  {10, 30, 2, 20, 100, 1e-5, 0.001, 1},
                                  {50, 30, 2, 40, 1000, 1e-5, 0.001, 0}};
    for (int i = 0; i < 3; i++) {
        if (t[i][0] != ipc) continue;
        distill_params_setting(p, "syn_steps", t[i][1]);
        distill_params_setting(p, "expert_epochs", t[i][2]);
        distill_params_setting(p, "max_start_epoch", t[i][3]);
        distill_params_setting(p, "lr_img", t[i][4]);
        distill_params_setting(p, "lr_lr", t[i][5]);
        distill_params_setting(p, "lr_teacher", t[i][6]);
        distill_params_setting(p, "zca", t[i][7]);
    }
}

typedef struct {
    MttData d;              // the real data in MTT's space (ZCA or normalised)
    MttBuffer buf;
    int *files;             // the order of the buffer files (random.shuffle), n_files
    int *experts;           // the order of the loaded file's experts, n_experts
    int file_i, expert_i, n_use;
    int load_all;
    Net net;                // the student
    float *syn;             // (n_syn, D) the images in MTT's space (r->syn when no ZCA)
    float *g;               // (n_syn, D) the gradient w.r.t. the images
    float syn_lr;
    Optim oi, ol;
    int syn_steps, expert_epochs, max_start, batch_syn, dsa;
    DsaStrategy st;
    DsaConfig dcfg;
    MttStep *steps;
    int *idx, *perm, *chunks; // (syn_steps, batch_syn), (n_syn), (n_syn) the current permutation's chunks
    int n_chunk_left;         // values of chunks not popped yet
    DsaSample *samples;       // (syn_steps, batch_syn)
    MttWork w;
} Mtt;

static void mtt_free(DistillRun *r) {
    Mtt *s = r->state;
    if (!s) return;
    mtt_data_free(&s->d);
    mtt_buffer_free(&s->buf);
    free(s->files), free(s->experts);
    net_free(&s->net);
    if (s->syn != r->syn) xfree(s->syn);
    xfree(s->g);
    optim_free(&s->oi), optim_free(&s->ol);
    free(s->steps), free(s->idx), free(s->perm), free(s->chunks), free(s->samples);
    mtt_work_free(&s->w);
    free(s);
    r->state = NULL;
}

// the loaded file's experts in a fresh random order (random.shuffle(buffer)), cut to max_experts
static int shuffle_experts(DistillRun *r, Mtt *s, int max_experts) {
    free(s->experts);
    s->experts = malloc(sizeof(int) * (size_t)s->buf.n_experts);
    if (!s->experts) return -1;
    s->n_use = s->buf.n_experts;
    if (max_experts > 0 && max_experts < s->n_use) s->n_use = max_experts;
    // the official code cuts to max_experts before it shuffles: the first max_experts of the file
    distill_choose(r, DRAW_PICK, 11, s->n_use, s->n_use, s->experts);
    s->expert_i = 0;
    return 0;
}

static int load_file(DistillRun *r, Mtt *s, int k, Err *e) {
    if (mtt_buffer_load(&s->buf, s->files[k], &s->net, e)) return -1;
    if (shuffle_experts(r, s, (int)distill_param_int(r->p, "max_experts"))) return err_set(e, "out of memory");
    return 0;
}

// MTT's space -> the stage's (normalised) images
static void mtt_sync(DistillRun *r, Mtt *s) {
    if (!s->d.zca) return;
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn;
    zca_unwhiten(&s->d.z, r->syn, s->syn, r->n_syn);
    const float *mean = r->info->mean, *std = r->info->std;
    size_t plane = (size_t)r->syn_h * r->syn_w;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < r->syn_c; c++)
            for (size_t j = 0; j < plane; j++) {
                float *v = r->syn + i * D + c * plane + j;
                *v = (*v - mean[c]) / std[c];
            }
}

static int mtt_init(DistillRun *r, Err *e) {
    Mtt *s = calloc(1, sizeof(Mtt));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    const DistillParams *p = r->p;
    s->syn_steps = (int)distill_param_int(p, "syn_steps");
    s->expert_epochs = (int)distill_param_int(p, "expert_epochs");
    s->max_start = (int)distill_param_int(p, "max_start_epoch");
    s->batch_syn = (int)distill_param_int(p, "batch_syn");
    if (s->batch_syn <= 0 || s->batch_syn > r->n_syn) s->batch_syn = r->n_syn;
    s->dsa = distill_param_bool(p, "dsa");
    if (s->dsa && dsa_strategy_parse(&s->st, distill_param_str(p, "dsa_strategy"), e)) return -1;
    s->dsa = s->dsa && s->st.n_ops > 0;
    dsa_config_default(&s->dcfg);
    s->dcfg.align_corners = 1;
    int zca = distill_param_bool(p, "zca");
    // the student and the buffer first (a wrong buffer fails fast), then the data (ZCA
    // fitted on the whole training set)
    if (distill_net_create(r, &s->net, e)) return -1;
    char dir[1200];
    if (mtt_buffer_dir(dir, sizeof(dir), distill_param_str(p, "buffer_path"), r->info, zca, r->cfg->arch, e)) return -1;
    if (mtt_buffer_open(&s->buf, dir, &s->net, r->cfg->arch, r->info, zca, e)) return -1;
    int nf = s->buf.n_files, max_files = (int)distill_param_int(p, "max_files");
    s->files = malloc(sizeof(int) * (size_t)nf);
    if (!s->files) return err_set(e, "out of memory");
    distill_choose(r, DRAW_PICK, 10, nf, nf, s->files); // random.shuffle(expert_files)
    if (max_files > 0 && max_files < nf) s->buf.n_files = nf = max_files;
    s->load_all = distill_param_bool(p, "load_all");
    if (s->load_all && nf > 1)
        return err_set(e, "load_all with %d buffer files: beard keeps one file in memory; use max_files 1 or "
                          "merge the experts into one file", nf);
    if (load_file(r, s, 0, e)) return -1;
    if (s->expert_epochs >= s->buf.n_epochs || s->max_start + s->expert_epochs > s->buf.n_epochs - 1)
        return err_set(e, "the experts in %s have %d snapshots; max_start_epoch %d + expert_epochs %d needs %d", dir,
                       s->buf.n_epochs, s->max_start, s->expert_epochs, s->max_start + s->expert_epochs);
    if (mtt_data_prepare(&s->d, r->real, NULL, r->info, zca, e)) return -1;
    // the images: real (in MTT's space) or noise
    size_t D = distill_syn_size(r), n = (size_t)r->n_syn;
    s->syn = zca ? xmalloc(sizeof(float) * n * D) : r->syn;
    s->g = xmalloc(sizeof(float) * n * D);
    s->steps = calloc((size_t)s->syn_steps, sizeof(MttStep));
    s->idx = malloc(sizeof(int) * (size_t)s->syn_steps * s->batch_syn);
    s->perm = malloc(sizeof(int) * n), s->chunks = malloc(sizeof(int) * n);
    s->samples = malloc(sizeof(DsaSample) * (size_t)s->syn_steps * s->batch_syn);
    if (!s->syn || !s->g || !s->steps || !s->idx || !s->perm || !s->chunks || !s->samples)
        return err_set(e, "out of memory for MTT's buffers");
    const char *init = distill_param_str(p, "pix_init");
    if (!strcmp(init, "real")) {
        int *pick = malloc(sizeof(int) * (size_t)r->ipc);
        if (!pick) return err_set(e, "out of memory");
        for (int c = 0; c < r->K; c++) {
            if (r->class_n[c] < r->ipc) {
                free(pick);
                return err_set(e, "class %d has %d images, fewer than ipc %d", c, r->class_n[c], r->ipc);
            }
            distill_choose(r, DRAW_REAL_CLASS, c, r->class_n[c], r->ipc, pick);
            for (int i = 0; i < r->ipc; i++)
                memcpy(s->syn + ((size_t)c * r->ipc + i) * D, s->d.x_train + (size_t)r->class_idx[c][pick[i]] * D,
                       sizeof(float) * D);
        }
        free(pick);
    } else if (!strcmp(init, "noise")) {
        for (size_t i = 0; i < n * D; i++) s->syn[i] = (float)rng_normal(&r->rng);
    } else {
        return err_set(e, "MTT pix_init must be real or noise, not '%s'", init);
    }
    s->syn_lr = (float)distill_param(p, "lr_teacher");
    r->syn_lr = s->syn_lr;
    if (optim_init(&s->oi, OPTIM_SGD, n * D, (float)distill_param(p, "lr_img"), 0.5f, 0.0f) ||
        optim_init(&s->ol, OPTIM_SGD, 1, (float)distill_param(p, "lr_lr"), 0.5f, 0.0f))
        return err_set(e, "out of memory for the optimisers");
    mtt_sync(r, s);
    return 0;
}

// the official iteration over the buffer: the next expert of the current file, and the
// next file (reloaded, reshuffled) when it runs out
static int next_expert(DistillRun *r, Mtt *s, int *expert, Err *e) {
    if (s->load_all) {
        distill_choose(r, DRAW_PICK, 12, s->n_use, 1, expert);
        return 0;
    }
    *expert = s->experts[s->expert_i++];
    if (s->expert_i == s->n_use) {
        s->file_i++;
        if (s->file_i == s->buf.n_files) {
            s->file_i = 0;
            distill_choose(r, DRAW_PICK, 10, s->buf.n_files, s->buf.n_files, s->files);
        }
        // the snapshots of `expert` stay valid until the next load: take them first
        return 1;
    }
    return 0;
}

static int mtt_step(DistillRun *r, Err *e) {
    Mtt *s = r->state;
    size_t D = distill_syn_size(r);
    int n = r->n_syn;
    if (distill_net_reinit(r, &s->net, e)) return -1; // get_network: a fresh student (its BatchNorm buffers)
    int expert, reload = next_expert(r, s, &expert, e);
    if (reload < 0) return -1;
    int start;
    distill_choose(r, DRAW_PICK, 13, s->max_start, 1, &start); // np.random.randint(0, max_start_epoch)
    // the minibatches: chunks of randperm(n) of batch_syn, taken from the end (indices_chunks.pop())
    s->n_chunk_left = 0;
    for (int k = 0; k < s->syn_steps; k++) {
        if (s->n_chunk_left == 0) {
            distill_choose(r, DRAW_PICK, 14, n, n, s->perm);
            memcpy(s->chunks, s->perm, sizeof(int) * (size_t)n);
            s->n_chunk_left = n;
        }
        // torch.split: chunks of batch_syn from the front, the last one shorter; pop the last
        int nc = (s->n_chunk_left + s->batch_syn - 1) / s->batch_syn, first = (nc - 1) * s->batch_syn;
        int len = s->n_chunk_left - first;
        int *idx = s->idx + (size_t)k * s->batch_syn;
        memcpy(idx, s->chunks + first, sizeof(int) * (size_t)len);
        s->n_chunk_left = first;
        MttStep *st = &s->steps[k];
        *st = (MttStep){.n = len, .idx = idx};
        st->draw = (DsaDraw){.op = DSA_OP_COUNT, .B = len, .s = s->samples + (size_t)k * s->batch_syn};
        if (s->dsa) dsa_draw(&st->draw, &s->st, &s->dcfg, r->syn_h, r->syn_w, 0, &r->rng);
    }
    const float *start_p = mtt_buffer_snapshot(&s->buf, expert, start);
    const float *target = mtt_buffer_snapshot(&s->buf, expert, start + s->expert_epochs);
    double loss, glr;
    if (mtt_unroll(&s->net, s->syn, r->syn_y, n, s->syn_lr, start_p, target, s->steps, s->syn_steps, &s->dcfg, &loss,
                   s->g, &glr, &s->w, e))
        return -1;
    if (reload && load_file(r, s, s->file_i, e)) return -1;
    distill_observe_grad(r, 0, s->g, (size_t)n * D);
    float gl = (float)glr;
    optim_step(&s->oi, s->syn, s->g);
    optim_step(&s->ol, &s->syn_lr, &gl);
    r->syn_lr = s->syn_lr;
    r->loss = loss;
    snprintf(r->note, sizeof(r->note), "syn_lr %.4g, start %d", s->syn_lr, start);
    mtt_sync(r, s);
    return 0;
}

// the position in the buffer, the images in MTT's space, syn_lr and both optimisers
static int put_ints(TensorDict *ck, const char *name, const int *v, int n, Err *e) {
    Tensor t;
    int64_t shape[1] = {n};
    if (tensor_init(&t, DTYPE_I64, 1, shape, e)) return -1;
    for (int i = 0; i < n; i++) ((int64_t *)t.data)[i] = v[i];
    if (tensordict_add(ck, name, &t, e)) {
        tensor_free(&t);
        return -1;
    }
    return 0;
}

static int mtt_save(DistillRun *r, TensorDict *ck, Err *e) {
    Mtt *s = r->state;
    int pos[4] = {s->file_i, s->expert_i, s->n_use, s->buf.n_files};
    Tensor t;
    int64_t shape[1] = {(int64_t)r->n_syn * (int64_t)distill_syn_size(r)};
    if (put_ints(ck, "mtt.pos", pos, 4, e) || put_ints(ck, "mtt.files", s->files, s->buf.n_files, e) ||
        put_ints(ck, "mtt.experts", s->experts, s->n_use, e) || distill_optim_save(&s->oi, "mtt.opt_img", ck, e) ||
        distill_optim_save(&s->ol, "mtt.opt_lr", ck, e))
        return -1;
    if (tensor_init(&t, DTYPE_F32, 1, shape, e)) return -1;
    memcpy(t.data, s->syn, sizeof(float) * t.numel);
    if (tensordict_add(ck, "mtt.syn", &t, e)) {
        tensor_free(&t);
        return -1;
    }
    int64_t one = 1;
    if (tensor_init(&t, DTYPE_F32, 1, &one, e)) return -1;
    ((float *)t.data)[0] = s->syn_lr;
    if (tensordict_add(ck, "mtt.syn_lr", &t, e)) {
        tensor_free(&t);
        return -1;
    }
    return 0;
}

static int mtt_load(DistillRun *r, const TensorDict *ck, Err *e) {
    Mtt *s = r->state;
    const Tensor *pos = distill_ck_get(ck, "mtt.pos", DTYPE_I64, 4, e);
    if (!pos) return -1;
    const int64_t *pv = pos->data;
    if (pv[3] != s->buf.n_files || pv[0] < 0 || pv[0] >= s->buf.n_files)
        return err_set(e, "the checkpoint was made with %lld buffer files, %s holds %d", (long long)pv[3], s->buf.dir,
                       s->buf.n_files);
    const Tensor *files = distill_ck_get(ck, "mtt.files", DTYPE_I64, (size_t)s->buf.n_files, e);
    const Tensor *sy = distill_ck_get(ck, "mtt.syn", DTYPE_F32, (size_t)r->n_syn * distill_syn_size(r), e);
    const Tensor *lr = distill_ck_get(ck, "mtt.syn_lr", DTYPE_F32, 1, e);
    if (!files || !sy || !lr) return -1;
    for (int i = 0; i < s->buf.n_files; i++) {
        int64_t f = ((int64_t *)files->data)[i];
        if (f < 0 || f >= s->buf.n_files) return err_set(e, "the checkpoint's buffer order is corrupt");
        s->files[i] = (int)f;
    }
    s->file_i = (int)pv[0];
    if (mtt_buffer_load(&s->buf, s->files[s->file_i], &s->net, e)) return -1;
    s->n_use = (int)pv[2];
    if (s->n_use < 1 || s->n_use > s->buf.n_experts || pv[1] < 0 || pv[1] >= s->n_use)
        return err_set(e, "the checkpoint's expert position does not fit %s", s->buf.files[s->files[s->file_i]]);
    const Tensor *ex = distill_ck_get(ck, "mtt.experts", DTYPE_I64, (size_t)s->n_use, e);
    if (!ex) return -1;
    free(s->experts);
    s->experts = malloc(sizeof(int) * (size_t)s->n_use);
    if (!s->experts) return err_set(e, "out of memory");
    for (int i = 0; i < s->n_use; i++) {
        int64_t x = ((int64_t *)ex->data)[i];
        if (x < 0 || x >= s->buf.n_experts) return err_set(e, "the checkpoint's expert order is corrupt");
        s->experts[i] = (int)x;
    }
    s->expert_i = (int)pv[1];
    memcpy(s->syn, sy->data, sizeof(float) * sy->numel);
    s->syn_lr = ((float *)lr->data)[0];
    r->syn_lr = s->syn_lr;
    if (distill_optim_load(&s->oi, "mtt.opt_img", ck, e) || distill_optim_load(&s->ol, "mtt.opt_lr", ck, e)) return -1;
    mtt_sync(r, s);
    return 0;
}

// MTT's release layout, next to the stage's res_*.pt: a folder with images_best.pt (in
// MTT's space: ZCA-whitened when zca), labels_best.pt (int64) and lr_best.pt (the learned
// syn_lr, 0-dim; the official code does not save it), and with ZCA an `unwhitened`
// folder of the same three files with the images mean/std-normalised, which is what
// `beard train --data-file DIR/unwhitened --learned-lr` and BEARD's pool expect;
// mtt_info.json says which is which
static int save_tensor(const char *dir, const char *name, DType dt, int ndim, const int64_t *shape, const void *data,
                       Err *e) {
    char path[1300];
    if (file_path_join(path, sizeof(path), dir, name, "MTT output", e)) return -1;
    Tensor t = {.dtype = dt, .ndim = ndim, .numel = 1, .data = (void *)data};
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.numel *= (size_t)shape[i];
    TorchObj *o = tobj_tensor(&t);
    if (!o) return err_set(e, "out of memory");
    int rc = torch_save_obj(path, o, e);
    tobj_free(o);
    return rc;
}

static int save_set(const char *dir, const DistillRun *r, const float *x, float lr, Err *e) {
    int64_t xs[4] = {r->n_syn, r->syn_c, r->syn_h, r->syn_w}, ys[1] = {r->n_syn};
    int64_t *y = malloc(sizeof(int64_t) * (size_t)r->n_syn);
    if (!y) return err_set(e, "out of memory");
    for (int i = 0; i < r->n_syn; i++) y[i] = r->syn_y[i];
    int rc = file_mkdirs(dir, e) || save_tensor(dir, "images_best.pt", DTYPE_F32, 4, xs, x, e) ||
             save_tensor(dir, "labels_best.pt", DTYPE_I64, 1, ys, y, e) ||
             save_tensor(dir, "lr_best.pt", DTYPE_F32, 0, NULL, &lr, e);
    free(y);
    return rc ? -1 : 0;
}

static int mtt_write(const DistillRun *r, const DistillPaths *paths, Err *e) {
    const Mtt *s = r->state;
    char dir[1300], sub[1400];
    int k = snprintf(dir, sizeof(dir), "%s/MTT_%s_%s_%dipc", paths->dir, r->info->name, r->cfg->arch, r->ipc);
    if (k < 0 || (size_t)k >= sizeof(dir)) return err_set(e, "output path too long");
    if (save_set(dir, r, s->syn, s->syn_lr, e)) return -1;
    if (s->d.zca) {
        snprintf(sub, sizeof(sub), "%s/unwhitened", dir);
        if (save_set(sub, r, r->syn, s->syn_lr, e)) return -1;
    }
    cJSON *j = cJSON_CreateObject();
    if (!j) return err_set(e, "out of memory");
    cJSON_AddStringToObject(j, "method", "MTT (GeorgeCazenavette/mtt-distillation distill.py), written by beard");
    cJSON_AddBoolToObject(j, "zca", s->d.zca);
    cJSON_AddStringToObject(j, "images_best.pt",
                            s->d.zca ? "ZCA-whitened [0, 1] pixels (kornia ZCAWhitening(eps=0.1) fitted on the "
                                       "training set), as the official code saves them"
                                     : "mean/std-normalised images");
    if (s->d.zca)
        cJSON_AddStringToObject(j, "unwhitened/images_best.pt",
                                "the same images un-whitened, then mean/std-normalised");
    cJSON_AddNumberToObject(j, "syn_lr", s->syn_lr);
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return err_set(e, "out of memory");
    char path[1400];
    int rc = file_path_join(path, sizeof(path), dir, "mtt_info.json", "MTT output", e);
    if (!rc) rc = file_write_all(path, txt, strlen(txt), e);
    free(txt);
    return rc;
}

const DistillMethodDef distill_mtt = {
    .name = "MTT",
    .aliases = "trajectory_matching",
    .summary = "Matching Training Trajectories (Cazenavette et al., arXiv:2203.11932): unrolled student vs expert "
               "(needs `beard buffer` first)",
    .reference = "GeorgeCazenavette/mtt-distillation distill.py",
    .params = mtt_params,
    .setting = mtt_setting,
    .setting_help = "CIFAR-10: IPC 1: syn_steps 50, expert_epochs 2, max_start_epoch 2, lr_img 100, lr_lr 1e-7, "
                    "lr_teacher 0.01, zca; IPC 10: 30, 2, 20, 100, 1e-5, 0.001, zca; IPC 50: 30, 2, 40, 1000, 1e-5, "
                    "0.001, no zca",
    .outputs = DISTILL_OUT_RES,
    .init = mtt_init,
    .step = mtt_step,
    .save = mtt_save,
    .load = mtt_load,
    .write = mtt_write,
    .free = mtt_free,
};
