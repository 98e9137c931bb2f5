/*
 * net.h: a model as a sequence of layers from src/nn, with one parameter arena, PyTorch
 * state_dict names, and the drivers that run forward and backward over a batch.
 *
 * Two drivers share the same layer kernels:
 * - per-sample fused: each thread takes a contiguous block of the batch and runs every
 *   layer, forward then backward, on one sample at a time in its own small workspace.
 *   One sample's activations stay in L2 cache, which is most of beard's speed over
 *   PyTorch's layer-at-a-time execution. Weight gradients go into per-thread copies that
 *   are reduced in thread order (deterministic for a given thread count).
 * - layer-wise: each layer runs over the whole batch (parallel inside the kernel). Used
 *   when a layer couples the samples of a batch: BatchNorm in training mode.
 *
 * Input normalisation. With net->normalize set, the model takes pixels in [0, 1] and
 * computes (x - mean) / std per channel itself before layer 0 (beard's `pixel`
 * semantics: attacks work in pixel space). Without it, the input is already normalised
 * (BEARD's own convention, beard's `beard` semantics). The arithmetic is torchvision's
 * Normalize in float32, so both give bit-identical clean logits.
 */
#ifndef BEARD_NET_H
#define BEARD_NET_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../io/tensordict.h"
#include "../nn/nn.h"

typedef enum {
    LAYER_CONV,
    LAYER_LINEAR,
    LAYER_ACT,
    LAYER_GROUPNORM, // InstanceNorm is GroupNorm(C, C)
    LAYER_LAYERNORM,
    LAYER_BATCHNORM,
    LAYER_AVGPOOL,
    LAYER_MAXPOOL,
} LayerKind;
// (There is no flatten layer: NCHW samples are contiguous, so a linear layer reads its
// input flattened, as torch's `out.view(out.size(0), -1)` does.)

typedef struct {
    LayerKind kind;
    char name[48]; // state_dict prefix, e.g. "features.0", "classifier"
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int k, stride, pad; // conv, pool
    int groups;         // groupnorm
    ActKind act;
    float slope; // leaky relu
    float eps, momentum;
    // offsets into Net.params / Net.grads (-1 when absent)
    long w, b;
    // offsets into Net.buffers for BatchNorm's running statistics (-1 when absent)
    long rm, rv;
    int64_t num_batches_tracked;
} Layer;

typedef enum { PENTRY_PARAM, PENTRY_BUFFER, PENTRY_COUNTER } ParamEntryKind;

// one state_dict entry
typedef struct {
    char name[64];
    ParamEntryKind kind; // PARAM: in params; BUFFER: in buffers; COUNTER: layer's num_batches_tracked
    int layer;
    long offset;
    int ndim;
    int64_t shape[4];
    size_t numel;
} ParamEntry;

#define NET_MAX_LAYERS 64
#define NET_MAX_ENTRIES 128

typedef struct {
    char arch[32];
    int n_layers;
    Layer layers[NET_MAX_LAYERS];
    int in_c, in_h, in_w, n_classes;

    float *params;
    size_t n_params;
    float *grads; // same layout as params; allocated by net_alloc_grads
    float *buffers;
    size_t n_buffers;
    int n_entries;
    ParamEntry entries[NET_MAX_ENTRIES];

    int normalize;
    float mean[4], std[4];
    int train; // BatchNorm mode

    // per-sample passes run so far (attack cost accounting): add-only, read by callers
    uint64_t n_forward, n_backward;
    // per-thread workspaces of the fused driver, allocated on first use
    void *ws[256];
    int n_ws;

    // Convolutions that Winograd F(2x2, 3x3) applies to (3x3, stride 1, pad 1, >= 8 input
    // channels) run forward that way, unless conv_im2col is set (net_finish sets it from
    // the environment: BEARD_CONV=im2col). wino[l] holds layer l's transformed weights and
    // wino_src[l] the weights they were made from; every pass compares the two, so any
    // change of the parameters (training, loading) is picked up.
    int conv_im2col;
    float *wino[NET_MAX_LAYERS], *wino_src[NET_MAX_LAYERS];
} Net;

// ----------------------------------------------------------------------------
// construction: net_begin, then net_add_* in order, then net_finish (allocates params)

void net_begin(Net *net, const char *arch, int in_c, int in_h, int in_w);
int net_add_conv(Net *net, const char *name, int out_c, int k, int stride, int pad, Err *e);
int net_add_linear(Net *net, const char *name, int out_features, Err *e); // flattens implicitly
int net_add_act(Net *net, ActKind act, float slope, Err *e);
int net_add_groupnorm(Net *net, const char *name, int groups, Err *e);
int net_add_layernorm(Net *net, const char *name, Err *e);
int net_add_batchnorm(Net *net, const char *name, Err *e);
int net_add_pool(Net *net, LayerKind kind, int k, int stride, Err *e);
int net_finish(Net *net, Err *e);
void net_free(Net *net);

int net_alloc_grads(Net *net, Err *e);
void net_zero_grads(Net *net);
// PyTorch's default initialisation (see nn/init.c), from beard's Philox stream `seed`
void net_init_params(Net *net, uint64_t seed);
void net_set_normalize(Net *net, int on, const float *mean, const float *std);
// number of input values per sample
static inline size_t net_in_size(const Net *net) { return (size_t)net->in_c * net->in_h * net->in_w; }

// the predicted class of a row of K logits, as torch.argmax: the first maximum, a NaN
// counts as the maximum
static inline int logits_argmax(const float *z, int K) {
    int best = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[best] || (isnan(z[k]) && !isnan(z[best]))) best = k;
    return best;
}
int net_has_batchnorm(const Net *net);

// ----------------------------------------------------------------------------
// state_dict: names and shapes equal PyTorch's (features.0.weight, ..., classifier.bias)

// copies every entry from sd (all must be present with matching shapes; extra keys are an
// error too, except when `strict` is 0)
int net_load_state_dict(Net *net, const TensorDict *sd, int strict, Err *e);
int net_state_dict(const Net *net, TensorDict *out, Err *e);

// ----------------------------------------------------------------------------
// running the network

// logits (B, n_classes) from x (B, in_c, in_h, in_w); no gradients. Eval-mode BatchNorm
// regardless of net->train.
int net_forward(Net *net, const float *x, int B, float *logits, Err *e);
// the same up to one node (a layer): its output (B, net_node_size(net, node)), e.g. the
// embedding (net_embed_node); layers after it are not run. Per-sample fused, no tape: the
// forward pass of data whose gradient is not needed (distillation's real batches).
int net_forward_node(Net *net, const float *x, int B, int node, float *out, Err *e);

// The loss side of a backward pass: given sample i's logits, write nvec gradient vectors
// d(loss)/d(logits) into dlogits (nvec, n_classes) and return the sample's loss. Called
// from several threads at once (each with different i): write only sample i's data.
typedef double (*NetLossFn)(void *ctx, int i, const float *logits, float *dlogits);

typedef struct {
    NetLossFn loss;
    void *ctx;
    int nvec;          // gradient vectors per sample (1 normally; n_classes for a Jacobian)
    float *logits;     // out (B, n_classes), may be NULL
    float *dx;         // out (B, nvec, in size), may be NULL: gradient w.r.t. the input
    int param_grads;   // accumulate d(loss)/d(params) into net->grads (nvec must be 1)
    double loss_sum;   // out: sum of the per-sample losses
} NetBackward;

// forward + backward over a batch. Uses the per-sample fused driver unless BatchNorm runs
// in training mode. Returns 0, or -1 with e set when memory runs out.
int net_forward_backward(Net *net, const float *x, int B, NetBackward *nb, Err *e);

// ----------------------------------------------------------------------------
// the two-phase tape (the shared engine API of /work/notes/CONVENTIONS.md): losses on any
// node's output and losses that couple the samples of a batch (distillation's mean
// embeddings, batch statistics). Phase one runs the batch forward and keeps every node's
// output; the caller computes its loss from them and adds d(loss)/d(out) into the seed
// buffers of the nodes it used; phase two backpropagates from all seeded nodes at once.
// Nodes are the layers, in order (node l is layer l's output).
//
// With train set and BatchNorm in the model, BatchNorm uses the batch statistics (and
// updates the running ones), so the batch runs layer by layer; otherwise every sample
// runs through all layers on its own, in parallel, exactly as net_forward computes it.
// Gradients (input and parameters) are deterministic for a given thread count.

typedef struct NetTape NetTape;
// *t: NULL (a tape is allocated) or a tape of this net from an earlier call, reused when
// it holds at least B samples. x is copied. Free with net_tape_free.
int net_tape_forward(Net *net, NetTape **t, const float *x, int B, int train, Err *e);
int net_node_find(const Net *net, const char *name); // node index by layer name, -1 if none
int net_embed_node(const Net *net);                  // DC's embed(): the input of the final linear layer, -1 if none
const float *net_tape_out(const NetTape *t, int node); // (B, node size)
size_t net_node_size(const Net *net, int node);        // values per sample
// the seed buffer d(loss)/d(out) (B, node size) of a node, zeroed on the first call after
// each forward; add into it. NULL when out of memory.
float *net_tape_grad(NetTape *t, int node);
// backpropagates from every seeded node: dx (B, in size) is overwritten with d(loss)/dx
// (pixels when the net normalises) unless NULL; parameter gradients are added into
// net->grads when param_grads
int net_tape_backward(Net *net, NetTape *t, float *dx, int param_grads, Err *e);
void net_tape_free(NetTape *t);

#endif
