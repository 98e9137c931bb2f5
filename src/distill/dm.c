/*
 * dm.c: Distribution Matching (DM; Zhao & Bilen, "Dataset Condensation with Distribution
 * Matching", WACV 2023, arXiv:2110.04181), as VICO-UoE/DatasetCondensation main_DM.py
 * implements it.
 *
 * Every iteration: a freshly initialised network (get_network, PyTorch's default init)
 * with frozen weights in train mode. For each class c, batch_real random real images of
 * c and the class's ipc synthetic images go through one Siamese DSA draw (DiffAugment
 * with a shared seed, aug_mode 'S': one op of dsa_strategy, one set of parameters for
 * every image of both batches); loss_c = sum((mean(embed(real)) - mean(embed(syn)))^2)
 * over the embedding (the flattened features before the classifier). The loss is the sum
 * over classes; one SGD step (lr_img, momentum 0.5) on the synthetic images. The printed
 * loss is that sum / num_classes, as the official loop prints it.
 *
 * BatchNorm models ('BN' in the model's name, as the official test reads): all classes'
 * real images go through the network as one batch and all synthetic ones as another, in
 * train mode, so BatchNorm normalises with the statistics of the whole real (synthetic)
 * batch; the loss is the same per-class sum. Otherwise the network's mode does not
 * matter (instance norm) and each class runs on its own.
 *
 * Initialisation 'real' (the default): each class's images are ipc random real images of
 * that class; 'noise': N(0, 1) in the normalised space (torch.randn).
 *
 * Deliberate differences: the network's weights, the real batches and the DSA draws come
 * from beard's generator keyed by (seed, iteration), where the official code reseeds
 * torch from the clock (get_network, and the DSA seed int(time.time() * 1000) % 100000,
 * which can even give consecutive classes the same draw within one millisecond);
 * equal in distribution. One experiment per call (num_exp 1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distill.h"

static const DistillParamDef dm_params[] = {
    {"lr_img", DPARAM_NUM, 1.0, NULL, 0, "learning rate of the synthetic images (SGD, momentum 0.5)"},
    {"batch_real", DPARAM_INT, 256, NULL, 1, "real images per class and iteration (all of them when a class has fewer)"},
    {"init", DPARAM_STR, 0, "real", NAN, "initial synthetic images: real (random real images) or noise (N(0, 1))"},
    {"dsa_strategy", DPARAM_STR, 0, "color_crop_cutout_flip_scale_rotate", NAN,
     "DSA ops, one chosen per class and iteration ('none': no augmentation)"},
    {NULL},
};

typedef struct {
    Net net;
    int bn;             // BatchNorm model: the whole batch at once, train mode
    int emb;            // the embedding node
    size_t E, D;        // embedding size, values per image
    int batch_real;
    int dsa;
    DsaStrategy st;
    DsaConfig dcfg;
    DsaSample *samples; // (max batch)
    Optim opt;
    NetTape *tape;
    float *grad;        // (n_syn, D)
    float *xr, *xr_aug; // (K or 1, batch_real, D)
    int *n_real;        // (K) real images actually drawn per class
    float *xs_aug;      // (n_syn or ipc, D)
    float *er;          // (K or 1 * batch_real, E)
    float *scratch;     // (4 E)
    float *dxs;         // (n_syn or ipc, D)
    DsaDraw *draws;     // (K): the BatchNorm path keeps each class's draw for backward
} Dm;

static void dm_free(DistillRun *r) {
    Dm *s = r->state;
    if (!s) return;
    net_free(&s->net);
    net_tape_free(s->tape);
    optim_free(&s->opt);
    free(s->samples), free(s->n_real), free(s->draws);
    xfree(s->grad), xfree(s->xr), xfree(s->xr_aug), xfree(s->xs_aug), xfree(s->er), xfree(s->scratch),
        xfree(s->dxs);
    free(s);
    r->state = NULL;
}

// the synthetic images at the start: random real images of each class, or noise
static int init_images(DistillRun *r, const char *init, Err *e) {
    size_t D = distill_syn_size(r);
    if (!strcmp(init, "noise")) {
        for (size_t i = 0; i < (size_t)r->n_syn * D; i++) r->syn[i] = (float)rng_normal(&r->rng);
        return 0;
    }
    if (strcmp(init, "real")) return err_set(e, "%s init must be real or noise, not '%s'", r->cfg->method->name, init);
    for (int c = 0; c < r->K; c++)
        if (distill_real_class(r, c, r->ipc, distill_syn_class(r, c)) != r->ipc)
            return err_set(e, "class %d has fewer than %d images", c, r->ipc);
    return 0;
}

static int dm_init(DistillRun *r, Err *e) {
    Dm *s = calloc(1, sizeof(Dm));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    const DistillParams *p = r->p;
    if (dsa_strategy_parse(&s->st, distill_param_str(p, "dsa_strategy"), e)) return -1;
    dsa_config_default(&s->dcfg);
    s->dsa = s->st.n_ops > 0;
    s->batch_real = (int)distill_param_int(p, "batch_real");
    s->bn = strstr(r->cfg->arch, "BN") != NULL;
    if (init_images(r, distill_param_str(p, "init"), e)) return -1;
    if (distill_net_create(r, &s->net, e)) return -1; // weights drawn at every step
    s->net.train = 1; // net.train(): only BatchNorm models care
    s->emb = net_embed_node(&s->net);
    if (s->emb < 0) return err_set(e, "%s has no embedding (features before a final linear layer)", r->cfg->arch);
    s->E = net_node_size(&s->net, s->emb);
    s->D = distill_syn_size(r);
    int K = r->K, groups = s->bn ? K : 1, br = s->batch_real, maxb = br > r->ipc ? br : r->ipc;
    size_t D = s->D, E = s->E, n = (size_t)r->n_syn;
    s->samples = malloc(sizeof(DsaSample) * (size_t)maxb * (s->bn ? K : 1));
    s->draws = calloc((size_t)K, sizeof(DsaDraw));
    s->n_real = calloc((size_t)K, sizeof(int));
    s->grad = xmalloc(sizeof(float) * n * D);
    s->xr = xmalloc(sizeof(float) * (size_t)groups * br * D);
    s->xr_aug = xmalloc(sizeof(float) * (size_t)groups * br * D);
    s->xs_aug = xmalloc(sizeof(float) * (s->bn ? n : (size_t)r->ipc) * D);
    s->dxs = xmalloc(sizeof(float) * (s->bn ? n : (size_t)r->ipc) * D);
    s->er = xmalloc(sizeof(float) * (size_t)groups * br * E);
    s->scratch = xmalloc(sizeof(float) * 4 * E);
    if (!s->samples || !s->draws || !s->n_real || !s->grad || !s->xr || !s->xr_aug || !s->xs_aug || !s->dxs || !s->er ||
        !s->scratch)
        return err_set(e, "out of memory for DM's buffers (batch_real %d)", br);
    if (optim_init(&s->opt, OPTIM_SGD, n * D, (float)distill_param(p, "lr_img"), 0.5f, 0.0f))
        return err_set(e, "out of memory for the image optimiser");
    return 0;
}

static void augment(Dm *s, const DsaDraw *d, int B, float *out, const float *in, int C, int H, int W) {
    if (!s->dsa) {
        memcpy(out, in, sizeof(float) * (size_t)B * s->D);
        return;
    }
    DsaDraw b = *d;
    b.B = B;
    dsa_forward(out, in, &b, &s->dcfg, C, H, W);
}

static void augment_back(Dm *s, const DsaDraw *d, int B, float *din, const float *dout, int C, int H, int W) {
    if (!s->dsa) {
        for (size_t i = 0; i < (size_t)B * s->D; i++) din[i] += dout[i];
        return;
    }
    DsaDraw b = *d;
    b.B = B;
    dsa_backward(din, dout, &b, &s->dcfg, C, H, W);
}

static int dm_step(DistillRun *r, Err *e) {
    Dm *s = r->state;
    int K = r->K, ipc = r->ipc, C = r->syn_c, H = r->syn_h, W = r->syn_w, br = s->batch_real;
    size_t D = s->D, E = s->E;
    if (distill_net_reinit(r, &s->net, e)) return -1;
    memset(s->grad, 0, sizeof(float) * (size_t)r->n_syn * D);
    double loss = 0;
    if (!s->bn) {
        for (int c = 0; c < K; c++) {
            float *syn = distill_syn_class(r, c);
            int nr = distill_real_class(r, c, br, s->xr);
            DsaDraw d = {.B = nr > ipc ? nr : ipc, .s = s->samples};
            if (s->dsa) distill_dsa(r, &s->st, &s->dcfg, &d);
            augment(s, &d, nr, s->xr_aug, s->xr, C, H, W);
            augment(s, &d, ipc, s->xs_aug, syn, C, H, W);
            if (net_forward_node(&s->net, s->xr_aug, nr, s->emb, s->er, e)) return -1;
            if (net_tape_forward(&s->net, &s->tape, s->xs_aug, ipc, 1, e)) return -1;
            float *g = net_tape_grad(s->tape, s->emb);
            if (!g) return err_set(e, "out of memory");
            loss += distill_mean_l2(s->er, nr, net_tape_out(s->tape, s->emb), ipc, E, g, s->scratch);
            if (net_tape_backward(&s->net, s->tape, s->dxs, 0, e)) return -1;
            augment_back(s, &d, ipc, s->grad + (size_t)c * ipc * D, s->dxs, C, H, W);
        }
    } else {
        // all classes as one real batch and one synthetic batch (BatchNorm statistics)
        int nr_total = 0;
        for (int c = 0; c < K; c++) {
            float *xr = s->xr + (size_t)nr_total * D;
            int nr = distill_real_class(r, c, br, xr);
            s->n_real[c] = nr;
            DsaDraw *d = &s->draws[c];
            *d = (DsaDraw){.B = nr > ipc ? nr : ipc, .s = s->samples + (size_t)c * (br > ipc ? br : ipc)};
            if (s->dsa) distill_dsa(r, &s->st, &s->dcfg, d);
            augment(s, d, nr, s->xr_aug + (size_t)nr_total * D, xr, C, H, W);
            augment(s, d, ipc, s->xs_aug + (size_t)c * ipc * D, distill_syn_class(r, c), C, H, W);
            nr_total += nr;
        }
        if (net_forward_node(&s->net, s->xr_aug, nr_total, s->emb, s->er, e)) return -1;
        if (net_tape_forward(&s->net, &s->tape, s->xs_aug, r->n_syn, 1, e)) return -1;
        float *g = net_tape_grad(s->tape, s->emb);
        if (!g) return err_set(e, "out of memory");
        const float *es = net_tape_out(s->tape, s->emb);
        for (int c = 0, off = 0; c < K; c++) {
            loss += distill_mean_l2(s->er + (size_t)off * E, s->n_real[c], es + (size_t)c * ipc * E, ipc, E,
                                    g + (size_t)c * ipc * E, s->scratch);
            off += s->n_real[c];
        }
        if (net_tape_backward(&s->net, s->tape, s->dxs, 0, e)) return -1;
        for (int c = 0; c < K; c++)
            augment_back(s, &s->draws[c], ipc, s->grad + (size_t)c * ipc * D, s->dxs + (size_t)c * ipc * D, C, H, W);
    }
    distill_observe_grad(r, 0, s->grad, (size_t)r->n_syn * D);
    optim_step(&s->opt, r->syn, s->grad);
    r->loss = loss / K;
    return 0;
}

static int dm_save(DistillRun *r, TensorDict *ck, Err *e) { return distill_optim_save(&((Dm *)r->state)->opt, "dm.opt", ck, e); }
static int dm_load(DistillRun *r, const TensorDict *ck, Err *e) { return distill_optim_load(&((Dm *)r->state)->opt, "dm.opt", ck, e); }

const DistillMethodDef distill_dm = {
    .name = "DM",
    .aliases = "distribution_matching",
    .summary = "Distribution Matching (Zhao & Bilen, arXiv:2110.04181): mean embeddings of random networks",
    .reference = "VICO-UoE/DatasetCondensation main_DM.py",
    .params = dm_params,
    .outputs = DISTILL_OUT_RES,
    .init_from_ok = 1,
    .init = dm_init,
    .step = dm_step,
    .save = dm_save,
    .load = dm_load,
    .free = dm_free,
};
