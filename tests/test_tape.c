/*
 * test_tape.c: the two-phase tape (net_tape_*) and net_forward_node.
 *
 * - seeded at the logits, the tape gives what net_forward_backward gives (input and
 *   parameter gradients), in both drivers (per-sample and BatchNorm in training mode);
 * - seeding the embedding with W^T g equals seeding the logits with g (the classifier is
 *   linear), and seeding both adds up;
 * - a loss on an interior node (after a normalisation layer) against central differences;
 * - net_forward_node and the tape's outputs equal net_forward's forward pass;
 * - a tape is reused for a smaller batch, results do not depend on it; the same thread
 *   count gives bit-identical gradients.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/parallel.h"
#include "../src/models/convnet.h"
#include "harness.h"

static float *randn(size_t n, uint64_t seed) {
    float *x = malloc(sizeof(float) * n);
    Rng r;
    rng_init(&r, seed, 1);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r);
    return x;
}

static int build(Net *net, const char *norm, int width, int hw) {
    ConvNetConfig cfg;
    convnet_config_for("ConvNet", &cfg);
    cfg.width = width;
    cfg.depth = 2;
    snprintf(cfg.norm, sizeof(cfg.norm), "%s", norm);
    Err e;
    if (convnet_build(net, &cfg, 3, 10, hw, hw, &e)) {
        CHECK(0, "build: %s", e.msg);
        return -1;
    }
    net_init_params(net, 17);
    return 0;
}

typedef struct {
    const float *g; // (B, K)
} Lin;

// loss = <g, logits>: d/dlogits = g
static double lin_loss(void *c, int i, const float *z, float *dz) {
    const Lin *l = c;
    double s = 0;
    for (int k = 0; k < 10; k++) {
        dz[k] = l->g[i * 10 + k];
        s += (double)z[k] * dz[k];
    }
    return s;
}

static void test_logits_seed(const char *norm, int train) {
    Net net;
    if (build(&net, norm, 16, 16)) return;
    int B = 6, K = 10;
    size_t in = net_in_size(&net);
    float *x = randn(in * B, 3), *g = randn((size_t)B * K, 4);
    float *dx1 = calloc(in * B, sizeof(float)), *dx2 = calloc(in * B, sizeof(float));
    Err e;
    net.train = train;
    // reference: net_forward_backward with <g, logits>
    Lin l = {g};
    NetBackward nb = {.loss = lin_loss, .ctx = &l, .nvec = 1, .dx = dx1, .param_grads = 1};
    float *buf0 = malloc(sizeof(float) * (net.n_buffers ? net.n_buffers : 1));
    memcpy(buf0, net.buffers, sizeof(float) * net.n_buffers);
    net_alloc_grads(&net, &e);
    net_zero_grads(&net);
    CHECK(net_forward_backward(&net, x, B, &nb, &e) == 0, "reference pass");
    float *pg1 = malloc(sizeof(float) * net.n_params);
    memcpy(pg1, net.grads, sizeof(float) * net.n_params);
    float *buf1 = malloc(sizeof(float) * (net.n_buffers ? net.n_buffers : 1));
    memcpy(buf1, net.buffers, sizeof(float) * net.n_buffers);
    memcpy(net.buffers, buf0, sizeof(float) * net.n_buffers);
    // the tape
    NetTape *t = NULL;
    net_zero_grads(&net);
    CHECK(net_tape_forward(&net, &t, x, B, train, &e) == 0, "tape forward: %s", e.msg);
    int last = net.n_layers - 1;
    float *seed = net_tape_grad(t, last);
    memcpy(seed, g, sizeof(float) * B * K);
    CHECK(net_tape_backward(&net, t, dx2, 1, &e) == 0, "tape backward: %s", e.msg);
    char what[96];
    snprintf(what, sizeof(what), "%s train %d: tape dx = net_forward_backward dx", norm, train);
    check_close(what, dx2, dx1, in * B, 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s train %d: tape param grads", norm, train);
    // in training mode net_forward_backward takes the BatchNorm fast path, which sums the
    // batch statistics' gradients in another order: sums over the batch round to ~1e-6
    check_close(what, net.grads, pg1, net.n_params, train ? 1e-5 : 1e-6, 1e-5);
    snprintf(what, sizeof(what), "%s train %d: running statistics updated alike", norm, train);
    check_close(what, net.buffers, buf1, net.n_buffers, 0, 0);
    net_tape_free(t);
    free(buf0), free(buf1), free(pg1), free(x), free(g), free(dx1), free(dx2);
    net_free(&net);
}

// seeding the embedding with W^T g = seeding the logits with g; both = the sum
static void test_embed_seed(const char *norm, int train) {
    Net net;
    if (build(&net, norm, 16, 16)) return;
    int B = 5, K = 10, emb = net_embed_node(&net), last = net.n_layers - 1;
    CHECK(emb == last - 1 && net_node_size(&net, emb) == 16 * 4 * 4, "embed node %d size %zu", emb,
          net_node_size(&net, emb));
    CHECK(net_node_find(&net, "classifier") == last && net_node_find(&net, "features.0") == 0 &&
              net_node_find(&net, "nope") == -1,
          "net_node_find");
    size_t in = net_in_size(&net), E = net_node_size(&net, emb);
    float *x = randn(in * B, 5), *g = randn((size_t)B * K, 6), *ge = randn(E * B, 7);
    const float *W = net.params + net.layers[last].w; // (K, E)
    float *wtg = calloc(E * B, sizeof(float));
    for (int b = 0; b < B; b++)
        for (int k = 0; k < K; k++)
            for (size_t j = 0; j < E; j++) wtg[b * E + j] += W[k * E + j] * g[b * K + k];
    float *d1 = calloc(in * B, sizeof(float)), *d2 = calloc(in * B, sizeof(float)), *d3 = calloc(in * B, sizeof(float)),
          *d4 = calloc(in * B, sizeof(float));
    Err e;
    NetTape *t = NULL;
    float *buf0 = malloc(sizeof(float) * (net.n_buffers ? net.n_buffers : 1));
    memcpy(buf0, net.buffers, sizeof(float) * net.n_buffers);
#define RESET() memcpy(net.buffers, buf0, sizeof(float) * net.n_buffers)
    net_tape_forward(&net, &t, x, B, train, &e);
    memcpy(net_tape_grad(t, last), g, sizeof(float) * B * K);
    net_tape_backward(&net, t, d1, 0, &e);
    RESET();
    net_tape_forward(&net, &t, x, B, train, &e);
    memcpy(net_tape_grad(t, emb), wtg, sizeof(float) * B * E);
    net_tape_backward(&net, t, d2, 0, &e);
    char what[96];
    snprintf(what, sizeof(what), "%s train %d: embedding seed W^T g = logits seed g", norm, train);
    check_close(what, d2, d1, in * B, 1e-6, 1e-4);
    // both seeds together, and the embedding alone with another vector: linear in the seeds
    RESET();
    net_tape_forward(&net, &t, x, B, train, &e);
    memcpy(net_tape_grad(t, emb), ge, sizeof(float) * B * E);
    net_tape_backward(&net, t, d3, 0, &e);
    RESET();
    net_tape_forward(&net, &t, x, B, train, &e);
    float *s1 = net_tape_grad(t, last), *s2 = net_tape_grad(t, emb);
    memcpy(s1, g, sizeof(float) * B * K);
    for (size_t i = 0; i < E * B; i++) s2[i] += ge[i];
    CHECK(net_tape_grad(t, emb) == s2 && s2[0] == ge[0], "a second net_tape_grad call keeps what was added");
    net_tape_backward(&net, t, d4, 0, &e);
    for (size_t i = 0; i < in * B; i++) d1[i] += d3[i];
    snprintf(what, sizeof(what), "%s train %d: two seeds add up", norm, train);
    check_close(what, d4, d1, in * B, 1e-5, 1e-4);
    // outputs: the tape's embedding and logits are net_forward's (eval) / the batch pass's
    if (!train) {
        float *o = malloc(sizeof(float) * E * B), *z = malloc(sizeof(float) * K * B);
        CHECK(net_forward_node(&net, x, B, emb, o, &e) == 0, "net_forward_node");
        // the tape runs the batch layer by layer, net_forward one sample at a time: equal up to
        // float rounding (a batched GEMM sums in another order)
        check_close("net_forward_node = the tape's embedding", o, net_tape_out(t, emb), E * B, 1e-6, 1e-5);
        net_forward(&net, x, B, z, &e);
        check_close("net_forward = the tape's logits", z, net_tape_out(t, last), K * B, 1e-6, 1e-5);
        CHECK(net_forward_node(&net, x, B, net.n_layers, o, &e) == -1, "net_forward_node: a node that is not there");
        free(o), free(z);
    } else { // BatchNorm in training mode: net_forward_node runs layer by layer with batch statistics
        float *o = malloc(sizeof(float) * E * B);
        float *after_tape = malloc(sizeof(float) * (net.n_buffers + 1));
        memcpy(after_tape, net.buffers, sizeof(float) * net.n_buffers);
        RESET();
        net_tape_forward(&net, &t, x, B, 1, &e);
        memcpy(after_tape, net.buffers, sizeof(float) * net.n_buffers);
        RESET();
        net.train = 1;
        CHECK(net_forward_node(&net, x, B, emb, o, &e) == 0, "net_forward_node in train mode: %s", e.msg);
        net.train = 0;
        CHECK(!memcmp(o, net_tape_out(t, emb), sizeof(float) * E * B), "train-mode net_forward_node = the tape's embedding");
        CHECK(!memcmp(after_tape, net.buffers, sizeof(float) * net.n_buffers), "and updates the running statistics alike");
        free(o), free(after_tape);
    }
    net_tape_free(t);
    free(buf0), free(x), free(g), free(ge), free(wtg), free(d1), free(d2), free(d3), free(d4);
    net_free(&net);
#undef RESET
}

// loss = sum of squares of an interior node's output over the batch (couples nothing,
// but sits between layers): against central differences in float
static void test_interior_fd(void) {
    Net net;
    if (build(&net, "instancenorm", 4, 8)) return;
    int B = 2, node = 2; // conv, norm, act: the activation's output
    size_t in = net_in_size(&net), m = net_node_size(&net, node);
    float *x = randn(in * B, 9), *dx = calloc(in * B, sizeof(float));
    Err e;
    NetTape *t = NULL;
    net_tape_forward(&net, &t, x, B, 0, &e);
    const float *o = net_tape_out(t, node);
    float *sd = net_tape_grad(t, node);
    for (size_t i = 0; i < m * B; i++) sd[i] = 2.0f * o[i];
    net_tape_backward(&net, t, dx, 0, &e);
    float *o2 = malloc(sizeof(float) * m * B);
    int bad = 0, tried = 0;
    for (size_t i = 0; i < in * B; i += 7) {
        float keep = x[i], h = 1e-2f;
        double lp = 0, lm = 0;
        x[i] = keep + h;
        net_forward_node(&net, x, B, node, o2, &e);
        for (size_t j = 0; j < m * B; j++) lp += (double)o2[j] * o2[j];
        x[i] = keep - h;
        net_forward_node(&net, x, B, node, o2, &e);
        for (size_t j = 0; j < m * B; j++) lm += (double)o2[j] * o2[j];
        x[i] = keep;
        double fd = (lp - lm) / (2.0 * h);
        tried++;
        if (fabs(fd - dx[i]) > 2e-2 * fabs(fd) + 5e-3) bad++;
    }
    CHECK(bad <= tried / 20, "interior-node loss vs central differences: %d of %d off", bad, tried);
    net_tape_free(t);
    free(x), free(dx), free(o2);
    net_free(&net);
}

// a big tape reused for a smaller batch; threads; determinism
static void test_reuse_threads(void) {
    Net net;
    if (build(&net, "instancenorm", 16, 16)) return;
    int B = 7, emb = net_embed_node(&net);
    size_t in = net_in_size(&net), E = net_node_size(&net, emb);
    float *x = randn(in * B, 12), *ge = randn(E * B, 13);
    float *d1 = calloc(in * B, sizeof(float)), *d2 = calloc(in * B, sizeof(float));
    Err e;
    NetTape *t = NULL, *t2 = NULL;
    parallel_set_threads(2);
    net_tape_forward(&net, &t, x, B, 0, &e);
    memcpy(net_tape_grad(t, emb), ge, sizeof(float) * E * B);
    net_tape_backward(&net, t, d1, 1, &e);
    net_tape_forward(&net, &t, x, 3, 0, &e); // reused, smaller
    memcpy(net_tape_grad(t, emb), ge, sizeof(float) * E * 3);
    net_tape_backward(&net, t, d2, 0, &e);
    CHECK(!memcmp(d1, d2, sizeof(float) * in * 3), "a reused tape gives the same gradients for a sub-batch");
    net_tape_forward(&net, &t2, x, B, 0, &e);
    memcpy(net_tape_grad(t2, emb), ge, sizeof(float) * E * B);
    net_tape_backward(&net, t2, d2, 0, &e);
    CHECK(!memcmp(d1, d2, sizeof(float) * in * B), "the same thread count gives bit-identical gradients");
    parallel_set_threads(1);
    net_tape_forward(&net, &t2, x, B, 0, &e);
    memcpy(net_tape_grad(t2, emb), ge, sizeof(float) * E * B);
    net_tape_backward(&net, t2, d2, 0, &e);
    check_close("1 thread vs 2 threads", d2, d1, in * B, 1e-7, 1e-6);
    // nothing seeded: zero gradients
    net_tape_forward(&net, &t2, x, B, 0, &e);
    CHECK(net_tape_backward(&net, t2, d2, 0, &e) == 0 && d2[0] == 0.0f && d2[in * B - 1] == 0.0f, "no seed: dx = 0");
    parallel_set_threads(0);
    net_tape_free(t);
    net_tape_free(t2);
    free(x), free(ge), free(d1), free(d2);
    net_free(&net);
}

int main(void) {
    test_logits_seed("instancenorm", 0);
    test_logits_seed("batchnorm", 0);
    test_logits_seed("batchnorm", 1);
    test_embed_seed("instancenorm", 0);
    test_embed_seed("batchnorm", 1);
    test_interior_fd();
    test_reuse_threads();
    return test_done("test_tape");
}
