/*
 * idm.c: Improved Distribution Matching (IDM; Zhao et al., "Improved Distribution
 * Matching for Dataset Condensation", CVPR 2023, arXiv:2307.09742), as uitrbn/IDM
 * IDM_cifar10.py runs it with the settings of its command.txt.
 *
 * State: a queue of partially trained models. It starts with 3 freshly initialised
 * networks; at every iteration it % net_generate_interval == 0, net_push_num new ones are
 * appended (the oldest dropped when the queue holds net_num). Each model has its own SGD
 * (lr_net, momentum 0.9, weight decay 5e-4 with net_decay, else plain) and a running
 * accuracy meter (torchnet's ClassErrorMeter: top-1 percent over the real batches it was
 * trained on since the last reset; every meter is reset at it % eval_interval == 0,
 * it > 0, where the official loop evaluates).
 *
 * One iteration:
 *   1. train_net_num models are drawn from the queue (from its [net_begin, net_end)
 *      slice when that holds more than 10), in eval mode;
 *   2. for each drawn model and each class c ("per-class image step"):
 *        real: batch_real random real images of c (all of them when c has fewer);
 *        syn: the class's ipc images, with aug ("partition and expansion",
 *          number_sign_augment) each split into its four quadrants, each upsampled x2
 *          bilinearly: 4 ipc images, labels repeated;
 *        both through one Siamese DSA draw;
 *        loss_c = sum((mean(embed(real)) - mean(embed(syn)))^2)
 *                 + ce_weight * acc * CE(model(syn), c)       (syn_ce)
 *          where acc is the model's running accuracy in percent (0 before it has been
 *          trained), as the official code weights it, and embed is embed_channel_avg with
 *          embed_last (1000: all feature layers, the flattened features);
 *        then zero_grad, backward, one step of the image optimiser (SGD lr_img,
 *          momentum 0.5) over all synthetic images: the other classes' images move by
 *          their momentum too, as they do in the official loop;
 *   3. fetch_net_num models drawn from the whole queue are trained model_train_steps SGD
 *      steps each on trained_bs random real images of any class (train mode, CE),
 *      updating their meters.
 *   The printed loss is the sum of loss_c / num_classes.
 * With ipc 1 and without aug the official code keeps the 2560 real images of lowest CE
 * under the model and applies the CE term only when the synthetic image is misclassified;
 * beard does the same (with min(2560, batch) images: torch.topk fails on fewer).
 *
 * Initialisation 'real' with aug: each quadrant of each synthetic image is a real image
 * of its class downscaled x0.5 (bilinear, i.e. the 2x2 block mean), four independent draws
 * of ipc images (top-left, bottom-left, top-right, bottom-right); without aug, ipc real
 * images; 'noise': N(0, 1).
 *
 * The images written are the compact ones (ipc per class, each a 2x2 mosaic); training on
 * them unpacks them (BEARD's aug: true, pool_unpack4).
 *
 * Deliberate differences: randomness from beard's generator keyed by (seed, iteration)
 * instead of the clock (the official get_network reseeds torch with the time in ms, so
 * models made in the same millisecond, such as the initial three, start identical);
 * equal in distribution. The official script names its res file res_DM_... (its --method
 * defaults to 'DM'); beard writes res_IDM_...; its acc_*.pkl holds the best-evaluated set,
 * beard's .pkl the final one. BatchNorm models are refused, as the official loop raises
 * NotImplemented for them. One experiment per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "idm.h"

const DistillParamDef idm_params[] = {
    {"lr_img", DPARAM_NUM, 0.2, NULL, 0, "learning rate of the synthetic images"},
    {"optim", DPARAM_STR, 0, "sgd", NAN, "image optimiser: sgd (momentum 0.5) or adam"},
    {"batch_real", DPARAM_INT, 256, NULL, 1, "real images per class in the matching loss"},
    {"init", DPARAM_STR, 0, "real", NAN, "initial synthetic images: real or noise"},
    {"dsa_strategy", DPARAM_STR, 0, "color_crop_cutout_flip_scale_rotate", NAN, "DSA ops ('none': no augmentation)"},
    {"aug", DPARAM_BOOL, 1, NULL, NAN, "partition and expansion: each image is a 2x2 mosaic of four (number_sign_augment)"},
    {"syn_ce", DPARAM_BOOL, 1, NULL, NAN, "the class-aware cross-entropy term on the synthetic images"},
    {"ce_weight", DPARAM_NUM, 0.5, NULL, 0, "weight of that term (times the model's running accuracy in percent)"},
    {"embed_last", DPARAM_INT, 1000, NULL, NAN, "feature layers of the embedding (embed_channel_avg's last; 1000: all)"},
    {"net_num", DPARAM_INT, 100, NULL, 1, "models the queue holds"},
    {"net_generate_interval", DPARAM_INT, 30, NULL, 1, "a new model every N iterations"},
    {"net_push_num", DPARAM_INT, 1, NULL, 1, "models added each time"},
    {"train_net_num", DPARAM_INT, 1, NULL, 1, "models drawn for matching per iteration"},
    {"fetch_net_num", DPARAM_INT, 2, NULL, 0, "models trained per iteration"},
    {"model_train_steps", DPARAM_INT, 10, NULL, 0, "SGD steps of each trained model per iteration (lr_net)"},
    {"trained_bs", DPARAM_INT, 256, NULL, 1, "real batch of those steps"},
    {"net_decay", DPARAM_BOOL, 1, NULL, NAN, "model SGD with momentum 0.9 and weight decay 5e-4 (else plain SGD)"},
    {"net_begin", DPARAM_INT, 0, NULL, 0, "matching draws from queue[net_begin:net_end] when that holds > 10"},
    {"net_end", DPARAM_INT, 100000, NULL, 0, "see net_begin"},
    {"eval_interval", DPARAM_INT, 100, NULL, 1, "the accuracy meters are reset every N iterations"},
    {"outer_loop", DPARAM_INT, 1, NULL, 1, "matching-and-training rounds per iteration"},
    {NULL},
};

// command.txt: CIFAR-10 (and the datasets IDM has no line for), CIFAR-100, TinyImageNet
void idm_setting_for(DistillParams *p, const DatasetInfo *info, int ipc, int bacon) {
    const char *d = info->name;
    int tiny = !strcmp(d, "TinyImageNet"), c100 = !strcmp(d, "CIFAR100");
    if (tiny) {
        if (ipc >= 50) {
            distill_params_setting(p, "ce_weight", 0.8);
            distill_params_setting(p, "model_train_steps", 50);
            distill_params_setting(p, "eval_interval", 1000);
        } else if (ipc >= 10) {
            distill_params_setting(p, "eval_interval", 500);
            if (bacon) distill_params_setting(p, "model_train_steps", 50);
        }
        return;
    }
    if (ipc == 1) {
        distill_params_setting(p, "batch_real", 5000);
        distill_params_setting(p, "net_generate_interval", 5);
    } else if (ipc >= 50) {
        distill_params_setting(p, "ce_weight", 0.1);
        distill_params_setting(p, "eval_interval", 500);
        if (c100) distill_params_setting(p, "model_train_steps", bacon ? 50 : 10);
    } else if (ipc >= 10 && c100) {
        distill_params_setting(p, "ce_weight", 0.1);
        distill_params_setting(p, "model_train_steps", 50);
    }
}

void idm_setting(DistillParams *p, const DatasetInfo *info, int ipc) { idm_setting_for(p, info, ipc, 0); }

typedef struct {
    float *params, *buffers;
    int64_t nbt[NET_MAX_LAYERS];
    Optim opt;
    long correct, seen; // the accuracy meter
} QNet;

typedef struct {
    Net net;      // the compute model: a queue entry is loaded into it
    QNet *q;
    int nq, cap;
    int emb;
    size_t E, D, Dc; // embedding, values per (expanded) image, per compact image
    int aug, nsyn;   // images per class after expansion
    int dsa;
    DsaStrategy st;
    DsaConfig dcfg;
    DsaSample *samples;
    Optim opt;       // the synthetic images'
    NetTape *tape;
    float *grad;     // (n_syn, Dc): zero outside the class being stepped
    float *xr, *xr_aug, *er, *zr; // real: (batch_real, D), (batch_real, E), (batch_real, K)
    float *xs, *xs_aug, *dxs_aug, *dxs; // synthetic, expanded: (nsyn, D)
    float *g, *scratch;
    float *xt, *zt;  // model training batch (trained_bs, D), logits
    int *yt, *pick, *order;
    int K;
} Idm;

static void qnet_free(QNet *q) {
    xfree(q->params), xfree(q->buffers);
    optim_free(&q->opt);
    memset(q, 0, sizeof(*q));
}

void idm_free(DistillRun *r) {
    Idm *s = r->state;
    if (!s) return;
    for (int i = 0; i < s->nq; i++) qnet_free(&s->q[i]);
    free(s->q);
    net_free(&s->net);
    net_tape_free(s->tape);
    optim_free(&s->opt);
    free(s->samples), free(s->yt), free(s->pick), free(s->order);
    xfree(s->grad), xfree(s->xr), xfree(s->xr_aug), xfree(s->er), xfree(s->zr), xfree(s->xs), xfree(s->xs_aug),
        xfree(s->dxs_aug), xfree(s->dxs), xfree(s->g), xfree(s->scratch), xfree(s->xt), xfree(s->zt);
    free(s);
    r->state = NULL;
}

static void q_store(Idm *s, QNet *q) {
    memcpy(q->params, s->net.params, sizeof(float) * s->net.n_params);
    if (s->net.n_buffers) memcpy(q->buffers, s->net.buffers, sizeof(float) * s->net.n_buffers);
    for (int l = 0; l < s->net.n_layers; l++) q->nbt[l] = s->net.layers[l].num_batches_tracked;
}

static void q_load(Idm *s, const QNet *q) {
    memcpy(s->net.params, q->params, sizeof(float) * s->net.n_params);
    if (s->net.n_buffers) memcpy(s->net.buffers, q->buffers, sizeof(float) * s->net.n_buffers);
    for (int l = 0; l < s->net.n_layers; l++) s->net.layers[l].num_batches_tracked = q->nbt[l];
}

static int q_alloc(DistillRun *r, Idm *s, QNet *q, Err *e) {
    memset(q, 0, sizeof(*q));
    q->params = xmalloc(sizeof(float) * (s->net.n_params ? s->net.n_params : 1));
    q->buffers = xmalloc(sizeof(float) * (s->net.n_buffers ? s->net.n_buffers : 1));
    int decay = distill_param_bool(r->p, "net_decay");
    if (!q->params || !q->buffers ||
        optim_init(&q->opt, OPTIM_SGD, s->net.n_params, (float)r->cfg->lr_net, decay ? 0.9f : 0.0f, decay ? 5e-4f : 0.0f)) {
        qnet_free(q);
        return err_set(e, "out of memory for the model queue");
    }
    return 0;
}

// get_network: a fresh model at the end of the queue (the oldest dropped when it is full)
static int q_push(DistillRun *r, Idm *s, Err *e) {
    if (s->nq == s->cap) {
        qnet_free(&s->q[0]);
        memmove(s->q, s->q + 1, sizeof(QNet) * (size_t)(s->nq - 1));
        s->nq--;
    }
    QNet *q = &s->q[s->nq];
    if (q_alloc(r, s, q, e)) return -1;
    if (distill_net_reinit(r, &s->net, e)) {
        qnet_free(q);
        return -1;
    }
    q_store(s, q);
    s->nq++;
    return 0;
}

// embed_channel_avg(x, last): the first `last` feature modules (beard's layers are the
// ConvNet's feature modules in order), all of them for last >= their count
static int embed_node(const Net *net, long last, Err *e) {
    int n_feat = net_embed_node(net) + 1;
    if (n_feat < 1) return err_set(e, "%s has no feature layers before a final linear layer", net->arch);
    long k = last >= 0 ? (last < n_feat ? last : n_feat) : n_feat + last;
    if (k < 1) return err_set(e, "embed_last %ld leaves no feature layer", last);
    return (int)k - 1;
}

// number_sign_augment of ipc compact images (ipc, C, H, W) into 4 ipc: quadrant q of image
// i (top-left, bottom-left, top-right, bottom-right) upsampled x2 is image q * ipc + i
static const int quad_y[4] = {0, 1, 0, 1}, quad_x[4] = {0, 0, 1, 1};

static void expand(float *out, const float *in, int ipc, int C, int H, int W) {
    int hh = H / 2, hw = W / 2;
    size_t plane = (size_t)H * W, D = plane * C;
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < ipc; i++)
            for (int c = 0; c < C; c++)
                bilinear_forward(out + ((size_t)q * ipc + i) * D + c * plane,
                                 in + (size_t)i * D + c * plane + (size_t)quad_y[q] * hh * W + (size_t)quad_x[q] * hw, hh, hw,
                                 W, H, W, 0.5f, 0.5f);
}

static void expand_back(float *din, const float *dout, int ipc, int C, int H, int W) {
    int hh = H / 2, hw = W / 2;
    size_t plane = (size_t)H * W, D = plane * C;
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < ipc; i++)
            for (int c = 0; c < C; c++)
                bilinear_backward(din + (size_t)i * D + c * plane + (size_t)quad_y[q] * hh * W + (size_t)quad_x[q] * hw,
                                  dout + ((size_t)q * ipc + i) * D + c * plane, hh, hw, W, H, W, 0.5f, 0.5f);
}

static int init_images(DistillRun *r, Idm *s, Err *e) {
    const char *init = distill_param_str(r->p, "init");
    size_t Dc = s->Dc;
    if (!strcmp(init, "noise")) {
        for (size_t i = 0; i < (size_t)r->n_syn * Dc; i++) r->syn[i] = (float)rng_normal(&r->rng);
        return 0;
    }
    if (strcmp(init, "real")) return err_set(e, "%s init must be real or noise, not '%s'", r->cfg->method->name, init);
    int C = r->syn_c, H = r->syn_h, W = r->syn_w, hh = H / 2, hw = W / 2, ipc = r->ipc;
    size_t plane = (size_t)H * W;
    for (int c = 0; c < r->K; c++) {
        float *syn = distill_syn_class(r, c);
        if (!s->aug) {
            if (distill_real_class(r, c, ipc, syn) != ipc) return err_set(e, "class %d has fewer than %d images", c, ipc);
            continue;
        }
        for (int q = 0; q < 4; q++) { // downscale(get_images(c, ipc), 0.5) into quadrant q
            if (distill_real_class(r, c, ipc, s->xr) != ipc) return err_set(e, "class %d has fewer than %d images", c, ipc);
            for (int i = 0; i < ipc; i++)
                for (int ch = 0; ch < C; ch++) {
                    float tmp[64 * 64];
                    const float *src = s->xr + (size_t)i * Dc + ch * plane;
                    bilinear_forward(tmp, src, H, W, W, hh, hw, 2.0f, 2.0f);
                    float *dst = syn + (size_t)i * Dc + ch * plane + (size_t)quad_y[q] * hh * W + (size_t)quad_x[q] * hw;
                    for (int y = 0; y < hh; y++) memcpy(dst + (size_t)y * W, tmp + (size_t)y * hw, sizeof(float) * hw);
                }
        }
    }
    return 0;
}

int idm_init(DistillRun *r, Err *e) {
    Idm *s = calloc(1, sizeof(Idm));
    if (!s) return err_set(e, "out of memory");
    r->state = s;
    const DistillParams *p = r->p;
    const char *name = r->cfg->method->name;
    if (strstr(r->cfg->arch, "BN"))
        return err_set(e, "%s runs models without BatchNorm only (the official loop raises NotImplemented), not %s", name,
                       r->cfg->arch);
    if (dsa_strategy_parse(&s->st, distill_param_str(p, "dsa_strategy"), e)) return -1;
    dsa_config_default(&s->dcfg);
    s->dsa = s->st.n_ops > 0;
    s->aug = distill_param_bool(p, "aug");
    r->packed4 = s->aug;
    int C = r->syn_c, H = r->syn_h, W = r->syn_w, ipc = r->ipc, K = r->K;
    if (s->aug && (H % 2 || W % 2 || H > 128 || W > 128))
        return err_set(e, "%s's partition and expansion needs even image sizes up to 128", name);
    s->K = K;
    s->nsyn = s->aug ? 4 * ipc : ipc;
    s->Dc = s->D = (size_t)C * H * W;
    s->cap = (int)distill_param_int(p, "net_num");
    const char *optim = distill_param_str(p, "optim");
    if (strcmp(optim, "sgd") && strcmp(optim, "adam")) return err_set(e, "%s optim must be sgd or adam, not '%s'", name, optim);
    int br = (int)distill_param_int(p, "batch_real"), tb = (int)distill_param_int(p, "trained_bs");
    size_t D = s->D, n = (size_t)r->n_syn;
    if (distill_net_create(r, &s->net, e)) return -1; // the compute model: queue entries are loaded into it
    if ((s->emb = embed_node(&s->net, distill_param_int(p, "embed_last"), e)) < 0) return -1;
    s->E = net_node_size(&s->net, s->emb);
    size_t E = s->E;
    int maxb = br > s->nsyn ? br : s->nsyn;
    s->q = calloc((size_t)(s->cap > 3 ? s->cap : 3) + 1, sizeof(QNet));
    s->samples = malloc(sizeof(DsaSample) * (size_t)maxb);
    s->yt = malloc(sizeof(int) * (size_t)tb);
    s->pick = malloc(sizeof(int) * (size_t)(s->cap + 4));
    s->order = malloc(sizeof(int) * (size_t)(s->cap + 4));
    s->grad = xcalloc(sizeof(float) * n * D);
    s->xr = xmalloc(sizeof(float) * (size_t)(br > ipc ? br : ipc) * D);
    s->xr_aug = xmalloc(sizeof(float) * (size_t)br * D);
    s->er = xmalloc(sizeof(float) * (size_t)br * E);
    s->zr = xmalloc(sizeof(float) * (size_t)br * K);
    s->xs = xmalloc(sizeof(float) * (size_t)s->nsyn * D);
    s->xs_aug = xmalloc(sizeof(float) * (size_t)s->nsyn * D);
    s->dxs_aug = xmalloc(sizeof(float) * (size_t)s->nsyn * D);
    s->dxs = xmalloc(sizeof(float) * (size_t)s->nsyn * D);
    s->g = xmalloc(sizeof(float) * (size_t)s->nsyn * E);
    s->scratch = xmalloc(sizeof(float) * 4 * E);
    s->xt = xmalloc(sizeof(float) * (size_t)tb * D);
    s->zt = xmalloc(sizeof(float) * (size_t)tb * K);
    if (!s->q || !s->samples || !s->yt || !s->pick || !s->order || !s->grad || !s->xr || !s->xr_aug || !s->er || !s->zr ||
        !s->xs || !s->xs_aug || !s->dxs_aug || !s->dxs || !s->g || !s->scratch || !s->xt || !s->zt)
        return err_set(e, "out of memory for %s's buffers", name);
    if (init_images(r, s, e)) return -1;
    int adam = !strcmp(optim, "adam");
    if (optim_init(&s->opt, adam ? OPTIM_ADAM : OPTIM_SGD, n * D, (float)distill_param(p, "lr_img"), adam ? 0.0f : 0.5f, 0.0f))
        return err_set(e, "out of memory for the image optimiser");
    // the official loop starts with three models
    for (int k = 0; k < 3; k++)
        if (q_push(r, s, e)) return -1;
    return 0;
}

typedef struct {
    const int *y;
    int label; // all rows this class when y is NULL
    int K;
    float scale; // the mean's 1/n and the term's weight
} Ce;

// cross-entropy of row i and scale * d/dz (softmax - onehot)
static double ce_fn(void *c, int i, const float *z, float *dz) {
    const Ce *ce = c;
    double l = crossentropy_sample(dz, z, ce->y ? ce->y[i] : ce->label, ce->K);
    for (int k = 0; k < ce->K; k++) dz[k] *= ce->scale;
    return l;
}

// the model's running top-1 accuracy in percent, 0 before it has been trained
static double meter(const QNet *q) { return q->seen ? 100.0 * (double)q->correct / (double)q->seen : 0.0; }

static double match_class(DistillRun *r, Idm *s, const QNet *q, int c, IdmMatchLoss loss, Err *e, int *fail) {
    const DistillParams *p = r->p;
    int C = r->syn_c, H = r->syn_h, W = r->syn_w, ipc = r->ipc, K = r->K, ns = s->nsyn;
    size_t D = s->D, E = s->E;
    int br = (int)distill_param_int(p, "batch_real");
    *fail = 1;
    int nr = distill_real_class(r, c, br, s->xr);
    const float *syn = distill_syn_class(r, c);
    if (s->aug) expand(s->xs, syn, ipc, C, H, W);
    else memcpy(s->xs, syn, sizeof(float) * (size_t)ipc * D);
    DsaDraw d = {.B = nr > ns ? nr : ns, .s = s->samples};
    if (s->dsa) {
        distill_dsa(r, &s->st, &s->dcfg, &d);
        d.B = nr;
        dsa_forward(s->xr_aug, s->xr, &d, &s->dcfg, C, H, W);
        d.B = ns;
        dsa_forward(s->xs_aug, s->xs, &d, &s->dcfg, C, H, W);
    } else {
        memcpy(s->xr_aug, s->xr, sizeof(float) * (size_t)nr * D);
        memcpy(s->xs_aug, s->xs, sizeof(float) * (size_t)ns * D);
    }
    float *xr = s->xr_aug;
    int low_ce = ipc == 1 && !s->aug;
    if (low_ce) {
        // keep the 2560 real images of lowest CE under the model (torch.topk(largest=False))
        if (net_forward(&s->net, xr, nr, s->zr, e)) return 0;
        int keep = nr < 2560 ? nr : 2560;
        double *l = malloc(sizeof(double) * (size_t)nr);
        int *ord = malloc(sizeof(int) * (size_t)nr);
        float *tmp = xmalloc(sizeof(float) * (size_t)keep * D);
        if (!l || !ord || !tmp) {
            free(l), free(ord), xfree(tmp);
            err_set(e, "out of memory");
            return 0;
        }
        float dz[1024];
        for (int i = 0; i < nr; i++) l[i] = crossentropy_sample(dz, s->zr + (size_t)i * K, c, K), ord[i] = i;
        for (int i = 1; i < nr; i++) // insertion sort by loss, stable
            for (int j = i; j > 0 && l[ord[j]] < l[ord[j - 1]]; j--) {
                int t = ord[j];
                ord[j] = ord[j - 1], ord[j - 1] = t;
            }
        for (int i = 0; i < keep; i++) memcpy(tmp + (size_t)i * D, xr + (size_t)ord[i] * D, sizeof(float) * D);
        memcpy(xr, tmp, sizeof(float) * (size_t)keep * D);
        nr = keep;
        free(l), free(ord), xfree(tmp);
    }
    if (net_forward_node(&s->net, xr, nr, s->emb, s->er, e)) return 0;
    if (net_tape_forward(&s->net, &s->tape, s->xs_aug, ns, 0, e)) return 0;
    float *ge = net_tape_grad(s->tape, s->emb);
    if (!ge) {
        err_set(e, "out of memory");
        return 0;
    }
    double lc = loss(s->er, nr, net_tape_out(s->tape, s->emb), ns, E, s->g, s->scratch);
    memcpy(ge, s->g, sizeof(float) * (size_t)ns * E);
    if (distill_param_bool(p, "syn_ce")) {
        double w = meter(q) * distill_param(p, "ce_weight");
        int last = s->net.n_layers - 1;
        const float *z = net_tape_out(s->tape, last);
        int apply = 1;
        if (low_ce) apply = logits_argmax(z, K) != c; // logits_syn.argmax() != c (one image)
        if (apply && w != 0.0) {
            float *gz = net_tape_grad(s->tape, last);
            if (!gz) {
                err_set(e, "out of memory");
                return 0;
            }
            Ce ce = {.label = c, .K = K, .scale = (float)(w / ns)};
            double ce_sum = 0;
            for (int i = 0; i < ns; i++) ce_sum += ce_fn(&ce, i, z + (size_t)i * K, gz + (size_t)i * K);
            lc += w * (ce_sum / ns);
        }
    }
    if (net_tape_backward(&s->net, s->tape, s->dxs_aug, 0, e)) return 0;
    float *dsyn = s->dxs;
    memset(dsyn, 0, sizeof(float) * (size_t)ns * D);
    if (s->dsa) {
        d.B = ns;
        dsa_backward(dsyn, s->dxs_aug, &d, &s->dcfg, C, H, W);
    } else {
        memcpy(dsyn, s->dxs_aug, sizeof(float) * (size_t)ns * D);
    }
    float *gc = s->grad + (size_t)c * ipc * D;
    if (s->aug) expand_back(gc, dsyn, ipc, C, H, W);
    else
        for (size_t i = 0; i < (size_t)ipc * D; i++) gc[i] += dsyn[i];
    // zero_grad, backward, step: every image moves (the others by their momentum)
    distill_observe_grad(r, c, s->grad, (size_t)r->n_syn * D);
    optim_step(&s->opt, r->syn, s->grad);
    memset(gc, 0, sizeof(float) * (size_t)ipc * D);
    *fail = 0;
    return lc;
}

static int train_model_steps(DistillRun *r, Idm *s, QNet *q, Err *e) {
    const DistillParams *p = r->p;
    int steps = (int)distill_param_int(p, "model_train_steps"), tb = (int)distill_param_int(p, "trained_bs"), K = r->K;
    q_load(s, q);
    s->net.train = 1;
    for (int st = 0; st < steps; st++) {
        int n = distill_real_any(r, tb, s->xt, s->yt);
        Ce ce = {.y = s->yt, .K = K, .scale = 1.0f / (float)n};
        NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = s->zt, .param_grads = 1};
        net_zero_grads(&s->net);
        if (net_alloc_grads(&s->net, e) || net_forward_backward(&s->net, s->xt, n, &nb, e)) return -1;
        optim_step(&q->opt, s->net.params, s->net.grads);
        for (int i = 0; i < n; i++) q->correct += logits_argmax(s->zt + (size_t)i * K, K) == s->yt[i];
        q->seen += n;
    }
    s->net.train = 0;
    q_store(s, q);
    return 0;
}

int idm_step_with(DistillRun *r, IdmMatchLoss loss, Err *e) {
    Idm *s = r->state;
    const DistillParams *p = r->p;
    long it = r->it;
    if (it > 0 && it % distill_param_int(p, "eval_interval") == 0)
        for (int i = 0; i < s->nq; i++) s->q[i].correct = s->q[i].seen = 0;
    if (it % distill_param_int(p, "net_generate_interval") == 0)
        for (long k = 0; k < distill_param_int(p, "net_push_num"); k++)
            if (q_push(r, s, e)) return -1;
    // the models to match with: from queue[net_begin:net_end] when that slice holds > 10
    int lo = 0, hi = s->nq;
    long nb_ = distill_param_int(p, "net_begin"), ne = distill_param_int(p, "net_end");
    int slo = (int)(nb_ < s->nq ? nb_ : s->nq), shi = (int)(ne < s->nq ? ne : s->nq);
    if (shi - slo > 10) lo = slo, hi = shi;
    int tn = (int)distill_param_int(p, "train_net_num");
    double loss_avg = 0;
    for (long o = 0; o < distill_param_int(p, "outer_loop"); o++) {
        int k = distill_choose(r, DRAW_PICK, 0, hi - lo, tn, s->pick);
        double total = 0;
        for (int j = 0; j < k; j++) {
            QNet *q = &s->q[lo + s->pick[j]];
            q_load(s, q);
            s->net.train = 0; // net.eval()
            for (int c = 0; c < r->K; c++) {
                int fail;
                double lc = match_class(r, s, q, c, loss, e, &fail);
                if (fail) return -1;
                total += lc;
            }
        }
        loss_avg += total;
        // train models drawn from the whole queue
        int f = distill_choose(r, DRAW_PICK, 1, s->nq, (int)distill_param_int(p, "fetch_net_num"), s->order);
        for (int j = 0; j < f; j++)
            if (train_model_steps(r, s, &s->q[s->order[j]], e)) return -1;
    }
    r->loss = loss_avg / r->K;
    snprintf(r->note, sizeof(r->note), "%d models", s->nq);
    return 0;
}

static int idm_step(DistillRun *r, Err *e) { return idm_step_with(r, distill_mean_l2, e); }

// checkpoint: the image optimiser, then per model its weights, optimiser and meter
int idm_save(DistillRun *r, TensorDict *ck, Err *e) {
    Idm *s = r->state;
    if (distill_optim_save(&s->opt, "idm.opt", ck, e)) return -1;
    int64_t nq = s->nq, one = 1, two = 2;
    if (distill_ck_add(ck, "idm.nq", DTYPE_I64, 1, &one, &nq, e)) return -1;
    for (int i = 0; i < s->nq; i++) {
        char pre[48];
        QNet *q = &s->q[i];
        q_load(s, q);
        snprintf(pre, sizeof(pre), "idm.q%d", i);
        if (distill_net_save(&s->net, pre, ck, e)) return -1;
        snprintf(pre, sizeof(pre), "idm.q%d.opt", i);
        if (distill_optim_save(&q->opt, pre, ck, e)) return -1;
        int64_t meter[2] = {q->correct, q->seen};
        snprintf(pre, sizeof(pre), "idm.q%d.meter", i);
        if (distill_ck_add(ck, pre, DTYPE_I64, 1, &two, meter, e)) return -1;
    }
    return 0;
}

int idm_load(DistillRun *r, const TensorDict *ck, Err *e) {
    Idm *s = r->state;
    if (distill_optim_load(&s->opt, "idm.opt", ck, e)) return -1;
    const Tensor *t = distill_ck_get(ck, "idm.nq", DTYPE_I64, 1, e);
    if (!t) return -1;
    int64_t nq = ((int64_t *)t->data)[0];
    if (nq < 1 || nq > s->cap + 3) return err_set(e, "the checkpoint's model queue holds %lld models", (long long)nq);
    for (int i = 0; i < s->nq; i++) qnet_free(&s->q[i]);
    s->nq = 0;
    for (int i = 0; i < nq; i++) {
        char pre[48];
        QNet *q = &s->q[i];
        if (q_alloc(r, s, q, e)) return -1;
        s->nq = i + 1;
        snprintf(pre, sizeof(pre), "idm.q%d", i);
        if (distill_net_load(&s->net, pre, ck, e)) return -1;
        q_store(s, q);
        snprintf(pre, sizeof(pre), "idm.q%d.opt", i);
        if (distill_optim_load(&q->opt, pre, ck, e)) return -1;
        snprintf(pre, sizeof(pre), "idm.q%d.meter", i);
        const Tensor *m = distill_ck_get(ck, pre, DTYPE_I64, 2, e);
        if (!m) return -1;
        q->correct = ((int64_t *)m->data)[0], q->seen = ((int64_t *)m->data)[1];
        if (q->correct < 0 || q->seen < q->correct) return err_set(e, "bad accuracy meter in the checkpoint");
    }
    return 0;
}

const DistillMethodDef distill_idm = {
    .name = "IDM",
    .aliases = "improved_distribution_matching",
    .summary = "Improved Distribution Matching (Zhao et al., arXiv:2307.09742): model queue, partition and expansion",
    .reference = "uitrbn/IDM IDM_cifar10.py with command.txt's settings",
    .params = idm_params,
    .setting = idm_setting,
    .setting_help = "per command.txt: IPC 1: batch_real 5000, net_generate_interval 5; IPC 50: ce_weight 0.1, "
                    "eval_interval 500; CIFAR-100 IPC 10: ce_weight 0.1, model_train_steps 50; TinyImageNet: IPC 10 "
                    "eval_interval 500, IPC 50 ce_weight 0.8, model_train_steps 50, eval_interval 1000",
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_PKL,
    .init_from_ok = 1,
    .init = idm_init,
    .step = idm_step,
    .save = idm_save,
    .load = idm_load,
    .free = idm_free,
};
