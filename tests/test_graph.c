/*
 * test_graph.c: the graph Net and its tape (src/models/net.h).
 *
 * - The tape against the drivers: logits, input gradients and parameter gradients of a
 *   tape pass equal those of net_forward / net_forward_backward (fused per-sample driver)
 *   on ConvNet and on a residual graph; node lookup and DC's embed().
 * - Finite differences of a batch-coupled loss through the tape with BatchNorm in
 *   training mode: a DM-style mean-embedding loss plus an SRe2L-style loss on the batch
 *   statistics of a BatchNorm input, seeded at two inner nodes and the logits at once.
 *   The same check against an eval-mode backward must fail (the test can tell a
 *   backward that ignores the batch coupling).
 * - A residual graph (identity and 1x1-conv shortcuts, fan-out of a block input) checked
 *   by central differences through the fused driver.
 * Float32 throughout, so differences use steps of 1e-2 and smooth activations (SiLU).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "harness.h"

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void fill_normal(float *x, size_t n, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
}

typedef struct {
    const int *labels;
    int K;
} Ce;
static double ce_fn(void *ctx, int i, const float *logits, float *dlogits) {
    const Ce *c = ctx;
    return crossentropy_sample(dlogits, logits, c->labels[i], c->K);
}

// a small residual network: stem conv -> bn -> silu, then block 1 with an identity
// shortcut, block 2 with a strided 1x1-conv + bn shortcut, avgpool, linear
static int build_resnet(Net *net, int C, int H, int K, Err *e) {
    net_begin(net, "test-resnet", C, H, H);
    if (net_add_conv_ex(net, "conv1", 6, 3, 1, 1, 0, e) || net_add_batchnorm(net, "bn1", e) ||
        net_add_act(net, "relu", ACT_SILU, 0, e))
        return -1;
    int x = net_last(net);
    if (net_add_conv_ex(net, "layer1.0.conv1", 6, 3, 1, 1, 0, e) || net_add_batchnorm(net, "layer1.0.bn1", e) ||
        net_add_act(net, "layer1.0.relu1", ACT_SILU, 0, e) || net_add_conv_ex(net, "layer1.0.conv2", 6, 3, 1, 1, 0, e) ||
        net_add_batchnorm(net, "layer1.0.bn2", e) || net_add_sum(net, "layer1.0.add", net_last(net), x, e) ||
        net_add_act(net, "layer1.0", ACT_SILU, 0, e))
        return -1;
    x = net_last(net);
    if (net_add_conv_ex(net, "layer2.0.conv1", 8, 3, 2, 1, 0, e) || net_add_batchnorm(net, "layer2.0.bn1", e) ||
        net_add_act(net, "layer2.0.relu1", ACT_SILU, 0, e) || net_add_conv_ex(net, "layer2.0.conv2", 8, 3, 1, 1, 0, e) ||
        net_add_batchnorm(net, "layer2.0.bn2", e))
        return -1;
    int main_end = net_last(net);
    net_from(net, x);
    if (net_add_conv_ex(net, "layer2.0.shortcut.0", 8, 1, 2, 0, 0, e) || net_add_batchnorm(net, "layer2.0.shortcut.1", e) ||
        net_add_sum(net, "layer2.0.add", main_end, net_last(net), e) || net_add_act(net, "layer2.0", ACT_SILU, 0, e) ||
        net_add_pool(net, "avgpool", LAYER_AVGPOOL, H / 2, H / 2, e) || net_add_linear(net, "classifier", K, e))
        return -1;
    return net_finish(net, e);
}

// random but well-conditioned parameters and running statistics
static void randomise(Net *net, uint64_t seed) {
    net_init_params(net, seed);
    Rng r;
    rng_init(&r, seed, 99);
    for (int l = 0; l < net->n_layers; l++) {
        Layer *L = &net->layers[l];
        if (L->kind != LAYER_BATCHNORM && L->kind != LAYER_GROUPNORM) continue;
        for (int c = 0; c < L->in_c; c++) {
            net->params[L->w + c] = 0.8f + 0.4f * rng_uniform(&r);
            net->params[L->b + c] = 0.2f * (float)rng_normal(&r);
            if (L->kind == LAYER_BATCHNORM) {
                net->buffers[L->rm + c] = 0.1f * (float)rng_normal(&r);
                net->buffers[L->rv + c] = 0.5f + rng_uniform(&r);
            }
        }
    }
}

// the tape in eval mode reproduces the fused driver (logits, dx, parameter gradients)
static void check_tape_vs_fused(Net *net, const char *what, int normalize) {
    Err e;
    int B = 5, K = net->n_classes;
    size_t in = net_in_size(net);
    if (normalize) {
        float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2023f, 0.1994f, 0.2010f};
        net_set_normalize(net, 1, mean, std);
    }
    float *x = zeros(in * B), *dx1 = zeros(in * B), *dx2 = zeros(in * B), *l1 = zeros((size_t)B * K);
    fill_normal(x, in * B, 3);
    if (normalize)
        for (size_t i = 0; i < in * B; i++) x[i] = 0.5f + 0.2f * x[i];
    int labels[5] = {0, 1, 2, 3, 4};
    for (int b = 0; b < B; b++) labels[b] %= K;
    Ce ce = {labels, K};
    net_alloc_grads(net, &e);
    net_zero_grads(net);
    NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = l1, .dx = dx1, .param_grads = 1};
    CHECK(net_forward_backward(net, x, B, &nb, &e) == 0, "%s: fused forward_backward", what);
    float *pg1 = zeros(net->n_params);
    memcpy(pg1, net->grads, sizeof(float) * net->n_params);
    net_zero_grads(net);

    NetTape *t = NULL;
    CHECK(net_tape_forward(net, &t, x, B, 0, &e) == 0, "%s: tape forward", what);
    int out = net->n_layers - 1;
    const float *lt = net_tape_out(t, out);
    CHECK(net_node_size(net, out) == (size_t)K, "%s: output node size", what);
    char msg[96];
    snprintf(msg, sizeof(msg), "%s: tape logits = net_forward_backward logits", what);
    check_close(msg, lt, l1, (size_t)B * K, 1e-6, 1e-5);
    float *g = net_tape_grad(t, out);
    CHECK(g != NULL, "%s: seed buffer", what);
    int zero = 1;
    for (int i = 0; i < B * K; i++) zero &= g[i] == 0.0f;
    CHECK(zero, "%s: a fresh seed buffer is zeroed", what);
    for (int b = 0; b < B; b++) crossentropy_sample(g + b * K, lt + b * K, labels[b], K);
    CHECK(net_tape_backward(net, t, dx2, 1, &e) == 0, "%s: tape backward", what);
    snprintf(msg, sizeof(msg), "%s: tape dx = fused dx", what);
    check_close(msg, dx2, dx1, in * B, 1e-6, 1e-4);
    snprintf(msg, sizeof(msg), "%s: tape parameter gradients = fused", what);
    check_close(msg, net->grads, pg1, net->n_params, 1e-6, 1e-4);

    // one forward serves several backward passes; the seeds are consumed by each
    g = net_tape_grad(t, out);
    zero = 1;
    for (int i = 0; i < B * K; i++) zero &= g[i] == 0.0f;
    CHECK(zero, "%s: seeds are zeroed again after a backward", what);
    for (int b = 0; b < B; b++) crossentropy_sample(g + b * K, lt + b * K, labels[b], K);
    memset(dx2, 0, sizeof(float) * in * B);
    CHECK(net_tape_backward(net, t, dx2, 0, &e) == 0, "%s: second backward", what);
    snprintf(msg, sizeof(msg), "%s: second backward from the same forward", what);
    check_close(msg, dx2, dx1, in * B, 1e-6, 1e-4);

    // the tape is reused for a new batch of the same size
    for (size_t i = 0; i < in * B; i++) x[i] = -x[i];
    float *l3 = zeros((size_t)B * K);
    net_forward(net, x, B, l3, &e);
    CHECK(net_tape_forward(net, &t, x, B, 0, &e) == 0, "%s: tape forward again", what);
    snprintf(msg, sizeof(msg), "%s: reused tape", what);
    check_close(msg, net_tape_out(t, out), l3, (size_t)B * K, 1e-6, 1e-5);
    // and reallocated for another batch size
    CHECK(net_tape_forward(net, &t, x, 2, 0, &e) == 0, "%s: tape forward, B = 2", what);
    check_close("tape with a new batch size", net_tape_out(t, out), l3, 2 * (size_t)K, 1e-6, 1e-5);
    net_tape_free(t);
    net_set_normalize(net, 0, NULL, NULL);
    free(x), free(dx1), free(dx2), free(l1), free(pg1), free(l3);
}

static void test_convnet_tape(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNet", 3, 10, 32, 32, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    randomise(&net, 5);
    // names and DC's embed(): the flattened output of features.11 feeds the classifier
    int f = net_embed_node(&net);
    CHECK(f == net_node_find(&net, "features.11") && f >= 0, "ConvNet embed is features.11 (%d)", f);
    CHECK(net_node_find(&net, "features.2") == 2 && net.layers[2].kind == LAYER_ACT, "features.2 is the first ReLU");
    CHECK(net_node_find(&net, "classifier") == net.n_layers - 1, "classifier is the output node");
    CHECK(net_node_find(&net, "nothing") == -1 && net_node_find(&net, "") == -1, "unknown names give -1");
    CHECK(net_node_size(&net, f) == 128 * 4 * 4 && net_node_size(&net, -1) == 3 * 32 * 32, "node sizes");
    // classifier(embed(x)) = logits
    NetTape *t = NULL;
    int B = 3;
    float *x = zeros(3 * 32 * 32 * B), *z = zeros(10 * B);
    fill_normal(x, 3 * 32 * 32 * B, 8);
    CHECK(net_tape_forward(&net, &t, x, B, 0, &e) == 0, "tape forward");
    const Layer *C = &net.layers[net.n_layers - 1];
    linear_forward(z, net_tape_out(t, f), net.params + C->w, net.params + C->b, B, C->in_c, C->out_c);
    check_close("classifier(embed(x)) = logits", z, net_tape_out(t, net.n_layers - 1), 10 * B, 1e-6, 1e-5);
    CHECK(net_tape_out(t, -1) && net_tape_out(t, net.n_layers) == NULL && net_tape_grad(t, -1) == NULL,
          "tape bounds: node -1 is the input, past the end is NULL");
    net_tape_free(t);
    free(x), free(z);
    check_tape_vs_fused(&net, "ConvNet", 0);
    check_tape_vs_fused(&net, "ConvNet (pixel input)", 1);
    net_free(&net);
}

static void test_resnet_tape(void) {
    Net net;
    Err e;
    if (build_resnet(&net, 3, 8, 4, &e)) {
        CHECK(0, "build: %s", e.msg);
        return;
    }
    randomise(&net, 9);
    CHECK(net.layers[net_node_find(&net, "layer2.0.add")].n_in == 2, "a sum node has two inputs");
    CHECK(net.layers[net_node_find(&net, "layer1.0")].n_out == 2, "block 2's input feeds conv1 and the shortcut (%d)",
          net.layers[net_node_find(&net, "layer1.0")].n_out);
    CHECK(net.n_entries == 6 + 6 * 5 + 2, "state_dict: 6 convs without bias, 6 BatchNorms, linear (%d)", net.n_entries);
    check_tape_vs_fused(&net, "residual net", 0);
    net_free(&net);
}

// ----------------------------------------------------------------------------
// finite differences

// loss of a tape forward in train mode: DM-style || mean_b emb_b - target ||^2, an
// SRe2L-style sum_c (mean_c - m_c)^2 + (var_c - v_c)^2 on the batch statistics of the
// input of BatchNorm node bn, and the mean CE of the logits. With seed, also writes
// d(loss)/d(node) into the tape's seed buffers.
typedef struct {
    Net *net;
    int B, emb, bnin, out;
    const float *target; // (emb size)
    const int *labels;
    double bn_w;
} Coupled;

static double coupled_loss(Coupled *c, NetTape *t, int seed) {
    Net *net = c->net;
    int B = c->B;
    double L = 0.0;
    // mean embedding
    size_t D = net_node_size(net, c->emb);
    const float *emb = net_tape_out(t, c->emb);
    float *ge = seed ? net_tape_grad(t, c->emb) : NULL;
    for (size_t d = 0; d < D; d++) {
        double m = 0.0;
        for (int b = 0; b < B; b++) m += emb[(size_t)b * D + d];
        m /= B;
        double r = m - c->target[d];
        L += r * r;
        if (ge)
            for (int b = 0; b < B; b++) ge[(size_t)b * D + d] += (float)(2.0 * r / B);
    }
    // batch statistics of a BatchNorm input (per channel over batch and plane)
    const Layer *N = &net->layers[c->bnin + 1];
    int C = N->in_c, HW = N->in_h * N->in_w;
    const float *a = net_tape_out(t, c->bnin);
    float *ga = seed ? net_tape_grad(t, c->bnin) : NULL;
    for (int ch = 0; ch < C; ch++) {
        double s = 0.0, ss = 0.0, n = (double)B * HW;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) s += a[((size_t)b * C + ch) * HW + i];
        double m = s / n;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) {
                double d = a[((size_t)b * C + ch) * HW + i] - m;
                ss += d * d;
            }
        double v = ss / n, tm = 0.1 * ch, tv = 1.0;
        L += c->bn_w * ((m - tm) * (m - tm) + (v - tv) * (v - tv));
        if (ga)
            for (int b = 0; b < B; b++)
                for (int i = 0; i < HW; i++) {
                    size_t k = ((size_t)b * C + ch) * HW + i;
                    double dv = 2.0 * (a[k] - m) / n; // d var / d a (the mean term cancels)
                    ga[k] += (float)(c->bn_w * (2.0 * (m - tm) / n + 2.0 * (v - tv) * dv));
                }
    }
    // cross-entropy of the logits
    int K = net->n_classes;
    const float *z = net_tape_out(t, c->out);
    float *gz = seed ? net_tape_grad(t, c->out) : NULL;
    float row[64];
    for (int b = 0; b < B; b++) {
        L += crossentropy_sample(row, z + b * K, c->labels[b], K) / B;
        if (gz)
            for (int k = 0; k < K; k++) gz[b * K + k] += row[k] / B;
    }
    return L;
}

static void test_coupled_fd(void) {
    Net net;
    Err e;
    ConvNetConfig cfg = {.width = 4, .depth = 2};
    snprintf(cfg.arch, sizeof(cfg.arch), "test-bn");
    snprintf(cfg.norm, sizeof(cfg.norm), "batchnorm");
    snprintf(cfg.act, sizeof(cfg.act), "swish");
    snprintf(cfg.pool, sizeof(cfg.pool), "avgpooling");
    if (convnet_build(&net, &cfg, 3, 5, 8, 8, &e)) {
        CHECK(0, "build: %s", e.msg);
        return;
    }
    randomise(&net, 21);
    int B = 4;
    size_t in = net_in_size(&net);
    float *x = zeros(in * B), *dx = zeros(in * B), *dxe = zeros(in * B), target[64];
    fill_normal(x, in * B, 4);
    int labels[4] = {0, 3, 1, 4};
    Coupled c = {.net = &net, .B = B, .emb = net_embed_node(&net), .bnin = net_node_find(&net, "features.4"),
                 .out = net.n_layers - 1, .labels = labels, .bn_w = 0.5};
    CHECK(c.bnin >= 0 && net.layers[c.bnin + 1].kind == LAYER_BATCHNORM, "features.4 (conv) feeds a BatchNorm");
    fill_normal(target, net_node_size(&net, c.emb), 6);
    c.target = target;
    float *buf = zeros(net.n_buffers);
    memcpy(buf, net.buffers, sizeof(float) * net.n_buffers);
    NetTape *t = NULL;
    // negative control: an eval-mode tape whose running statistics are this batch's (a
    // train-mode pass with momentum 1), so the forward values nearly agree but the
    // backward treats BatchNorm as a fixed affine map
    for (int l = 0; l < net.n_layers; l++) net.layers[l].momentum = 1.0f;
    net_tape_forward(&net, &t, x, B, 1, &e);
    for (int l = 0; l < net.n_layers; l++) net.layers[l].momentum = 0.1f;
    CHECK(net_tape_forward(&net, &t, x, B, 0, &e) == 0, "eval-mode tape forward");
    coupled_loss(&c, t, 1);
    net_tape_backward(&net, t, dxe, 0, &e);
    memcpy(net.buffers, buf, sizeof(float) * net.n_buffers);
    net.layers[c.bnin + 1].num_batches_tracked = 0;
    // analytic: one train-mode forward, seeds at three nodes, one backward
    CHECK(net_tape_forward(&net, &t, x, B, 1, &e) == 0, "train-mode tape forward");
    int changed = memcmp(buf, net.buffers, sizeof(float) * net.n_buffers) != 0;
    CHECK(changed && net.layers[c.bnin + 1].num_batches_tracked == 1, "train mode updates running stats");
    coupled_loss(&c, t, 1);
    net_zero_grads(&net);
    CHECK(net_tape_backward(&net, t, dx, 1, &e) == 0, "tape backward");
    float *pg = zeros(net.n_params);
    memcpy(pg, net.grads, sizeof(float) * net.n_params);

    // numeric: central differences of the loss in train mode, in float, step 1e-2
    const double h = 1e-2;
    double *num = calloc(in * B, sizeof(double)), *ana = calloc(in * B, sizeof(double)),
           *anae = calloc(in * B, sizeof(double));
    for (size_t i = 0; i < in * B; i++) {
        float keep = x[i];
        x[i] = keep + (float)h;
        net_tape_forward(&net, &t, x, B, 1, &e);
        double lp = coupled_loss(&c, t, 0);
        x[i] = keep - (float)h;
        net_tape_forward(&net, &t, x, B, 1, &e);
        double lm = coupled_loss(&c, t, 0);
        x[i] = keep;
        num[i] = (lp - lm) / (2 * h);
        ana[i] = dx[i], anae[i] = dxe[i];
    }
    check_close_d("batch-coupled loss: tape dx vs central differences (train-mode BatchNorm)", ana, num, in * B, 2e-3, 2e-2);
    // the check can fail: an eval-mode backward is wrong for this loss
    int bad = 0;
    for (size_t i = 0; i < in * B; i++) bad += fabs(anae[i] - num[i]) > 2e-3 + 2e-2 * fabs(num[i]);
    CHECK(bad > (int)(in * B) / 4, "an eval-mode backward fails the same check (%d of %zu off)", bad, in * B);
    // parameter gradients: a sample of weights of every parameterised node
    int n_checked = 0, n_bad = 0;
    for (int l = 0; l < net.n_layers; l++) {
        const Layer *L = &net.layers[l];
        if (L->w < 0) continue;
        for (int j = 0; j < 3; j++) {
            long idx = (j == 2 && L->b >= 0) ? L->b : L->w + j;
            float keep = net.params[idx];
            net.params[idx] = keep + (float)h;
            net_tape_forward(&net, &t, x, B, 1, &e);
            double lp = coupled_loss(&c, t, 0);
            net.params[idx] = keep - (float)h;
            net_tape_forward(&net, &t, x, B, 1, &e);
            double lm = coupled_loss(&c, t, 0);
            net.params[idx] = keep;
            double n1 = (lp - lm) / (2 * h);
            n_checked++;
            if (fabs(n1 - pg[idx]) > 2e-3 + 2e-2 * fabs(n1)) {
                n_bad++;
                fprintf(stderr, "  param %s[%ld]: numeric %.6g analytic %.6g\n", L->name, idx, n1, pg[idx]);
            }
        }
    }
    CHECK(n_bad == 0 && n_checked >= 12, "batch-coupled loss: parameter gradients (%d of %d off)", n_bad, n_checked);
    net_tape_free(t);
    free(x), free(dx), free(dxe), free(pg), free(buf), free(num), free(ana), free(anae);
    net_free(&net);
}

// sum of R * logits through the fused driver on the residual graph, against differences
static double unit_r(void *ctx, int i, const float *logits, float *dlogits) {
    const float *R = ctx;
    double s = 0.0;
    for (int k = 0; k < 4; k++) dlogits[k] = R[i * 4 + k], s += (double)R[i * 4 + k] * logits[k];
    return s;
}

static void test_residual_fd(void) {
    Net net;
    Err e;
    if (build_resnet(&net, 2, 6, 4, &e)) {
        CHECK(0, "build: %s", e.msg);
        return;
    }
    randomise(&net, 17);
    int B = 2;
    size_t in = net_in_size(&net);
    float *x = zeros(in * B), *dx = zeros(in * B), R[8], z[8];
    fill_normal(x, in * B, 12);
    fill_normal(R, 8, 13);
    net_alloc_grads(&net, &e);
    net_zero_grads(&net);
    NetBackward nb = {.loss = unit_r, .ctx = R, .nvec = 1, .dx = dx, .param_grads = 1};
    CHECK(net_forward_backward(&net, x, B, &nb, &e) == 0, "residual fused pass");
    const double h = 1e-2;
    double *num = calloc(in * B, sizeof(double)), *ana = calloc(in * B, sizeof(double));
    for (size_t i = 0; i < in * B; i++) {
        float keep = x[i];
        double l[2];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (float)(s ? -h : h);
            net_forward(&net, x, B, z, &e);
            l[s] = 0.0;
            for (int k = 0; k < 8; k++) l[s] += (double)R[k] * z[k];
        }
        x[i] = keep;
        num[i] = (l[0] - l[1]) / (2 * h);
        ana[i] = dx[i];
    }
    check_close_d("residual graph: fused dx vs central differences", ana, num, in * B, 1e-3, 1e-2);
    // the shortcut conv's weights get gradient through the second sum's second input
    int sc = net_node_find(&net, "layer2.0.shortcut.0");
    long idx = net.layers[sc].w + 1;
    float keep = net.params[idx];
    double l[2];
    for (int s = 0; s < 2; s++) {
        net.params[idx] = keep + (float)(s ? -h : h);
        net_forward(&net, x, B, z, &e);
        l[s] = 0.0;
        for (int k = 0; k < 8; k++) l[s] += (double)R[k] * z[k];
    }
    net.params[idx] = keep;
    double n1 = (l[0] - l[1]) / (2 * h);
    CHECK(fabs(n1 - net.grads[idx]) < 1e-3 + 1e-2 * fabs(n1) && fabs(n1) > 1e-4,
          "shortcut weight gradient: numeric %g, analytic %g", n1, net.grads[idx]);
    free(x), free(dx), free(num), free(ana);
    net_free(&net);
}

// train-mode BatchNorm: the per-sample path between batch reductions against the
// node-by-node one (the tape), on ConvNetBN and on the residual graph
static void check_bn_paths(Net *net, const char *what, int normalize) {
    Err e;
    int B = 6, K = net->n_classes;
    size_t in = net_in_size(net);
    if (normalize) {
        float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2023f, 0.1994f, 0.2010f};
        net_set_normalize(net, 1, mean, std);
    }
    float *x = zeros(in * B), *dx[2], *pg[2], *bufs[2], l[2][64];
    fill_normal(x, in * B, 31);
    int labels[6] = {0, 1, 2, 3, 0, 1};
    for (int b = 0; b < B; b++) labels[b] %= K;
    Ce ce = {labels, K};
    float *buf0 = zeros(net->n_buffers);
    memcpy(buf0, net->buffers, sizeof(float) * net->n_buffers);
    net_alloc_grads(net, &e);
    double loss[2];
    for (int k = 0; k < 2; k++) {
        memcpy(net->buffers, buf0, sizeof(float) * net->n_buffers);
        net->train = 1, net->bn_layerwise = k;
        dx[k] = zeros(in * B), pg[k] = zeros(net->n_params), bufs[k] = zeros(net->n_buffers);
        net_zero_grads(net);
        NetBackward nb = {.loss = ce_fn, .ctx = &ce, .nvec = 1, .logits = l[k], .dx = dx[k], .param_grads = 1};
        CHECK(net_forward_backward(net, x, B, &nb, &e) == 0, "%s: train-mode pass %d", what, k);
        loss[k] = nb.loss_sum;
        memcpy(pg[k], net->grads, sizeof(float) * net->n_params);
        memcpy(bufs[k], net->buffers, sizeof(float) * net->n_buffers);
    }
    net->train = 0, net->bn_layerwise = 0;
    char m[96];
    snprintf(m, sizeof(m), "%s: BatchNorm per-sample path logits = layer-wise", what);
    check_close(m, l[0], l[1], (size_t)B * K, 1e-6, 1e-5);
    CHECK(fabs(loss[0] - loss[1]) < 1e-5 * fabs(loss[1]), "%s: losses %.9g vs %.9g", what, loss[0], loss[1]);
    snprintf(m, sizeof(m), "%s: BatchNorm per-sample path dx = layer-wise", what);
    check_close(m, dx[0], dx[1], in * B, 1e-6, 1e-4);
    snprintf(m, sizeof(m), "%s: BatchNorm per-sample path parameter gradients = layer-wise", what);
    check_close(m, pg[0], pg[1], net->n_params, 1e-6, 1e-4);
    snprintf(m, sizeof(m), "%s: running statistics", what);
    check_close(m, bufs[0], bufs[1], net->n_buffers, 0, 0);
    int moved = memcmp(bufs[0], buf0, sizeof(float) * net->n_buffers) != 0;
    CHECK(moved, "%s: running statistics were updated", what);
    net_set_normalize(net, 0, NULL, NULL);
    free(x), free(buf0);
    for (int k = 0; k < 2; k++) free(dx[k]), free(pg[k]), free(bufs[k]);
}

static void test_bn_paths(void) {
    Net net;
    Err e;
    if (model_create(&net, "ConvNetBN", 3, 10, 16, 16, &e) == 0) {
        randomise(&net, 41);
        check_bn_paths(&net, "ConvNetBN", 0);
        check_bn_paths(&net, "ConvNetBN (pixel input)", 1);
        net_free(&net);
    }
    if (build_resnet(&net, 3, 8, 4, &e) == 0) {
        randomise(&net, 43);
        check_bn_paths(&net, "residual net", 0);
        net_free(&net);
    }
}

static void test_build_errors(void) {
    Net net;
    Err e;
    net_begin(&net, "bad", 3, 8, 8);
    int rc = net_add_conv(&net, "a", 4, 3, 1, 1, &e);
    rc |= net_add_conv(&net, "b", 5, 3, 1, 1, &e);
    CHECK(rc == 0 && net_add_sum(&net, "s", 0, 1, &e) == -1 && strstr(e.msg, "cannot add"), "sum of different shapes: %s",
          e.msg);
    CHECK(net_add_sum(&net, "s", 0, 7, &e) == -1, "sum of a node that does not exist");
    CHECK(net_add_pool(&net, "p", LAYER_AVGPOOL, 9, 9, &e) == -1 && strstr(e.msg, "too small"), "pool larger than input: %s",
          e.msg);
    net_free(&net);
}

int main(int argc, char **argv) {
    parallel_init(argc, argv);
    test_convnet_tape();
    test_resnet_tape();
    test_coupled_fd();
    test_residual_fd();
    test_build_errors();
    test_bn_paths();
    // thread counts: the tape gives the same result with 1 thread
    parallel_set_threads(1);
    test_resnet_tape();
    test_bn_paths();
    return test_done("test_graph");
}
