/*
 * net.h: a model as a graph of layers from src/nn, with one parameter arena, PyTorch
 * state_dict names, the drivers that run forward and backward over a batch, and a
 * two-phase "tape" for losses on intermediate outputs and batch-coupled losses.
 *
 * The graph. A Net is a list of nodes (Layer) in topological order. Node l reads the
 * outputs of n_in earlier nodes, in[0] (and in[1] for a residual sum), where -1 names
 * the model's input (after normalisation, see below). The last node is the output: its
 * values are the logits. A plain layer sequence (DC's ConvNet) is the special case where
 * every node reads the one before it. Each node has a name: the PyTorch module path
 * whose forward hook would see the node's output ("features.2", "layer1.0.conv1",
 * "layer1.0" for a residual block's output after its final ReLU), so that intermediate
 * outputs are addressed the way PyTorch code addresses them (net_node_find). Nodes of
 * kinds that own parameters use the name as their state_dict prefix.
 *
 * Node kinds and their shapes: every node's input and output are (C, H, W) per sample,
 * NCHW and contiguous; in_c/in_h/in_w describe in[0]. LAYER_LINEAR sees its input
 * flattened (in_c = C*H*W, in_h = in_w = 1), as torch's `out.view(out.size(0), -1)`:
 * there is no flatten node. LAYER_SUM adds two inputs of the same shape, LAYER_CONCAT
 * joins two along channels; LAYER_SLICE takes a channel range of one (ShuffleNetV2's
 * split is two slices of the same node).
 *
 * Two drivers share the same layer kernels:
 * - per-sample fused: each thread takes a contiguous block of the batch and runs every
 *   node, forward then backward, on one sample at a time in its own small workspace.
 *   One sample's activations stay in cache, which is most of beard's speed over
 *   PyTorch's layer-at-a-time execution. Weight gradients go into per-thread copies that
 *   are reduced in thread order (deterministic for a given thread count). In backward, a
 *   node whose only consumer is the next node hands its gradient on through two
 *   alternating buffers; a node read by several nodes (a residual block's input) or by a
 *   later one gets a buffer of its own that its consumers add into.
 * - layer-wise, over the tape: each node runs over the whole batch (parallel inside the
 *   kernel). Used when a node couples the samples of a batch (BatchNorm in training
 *   mode), and for every tape pass.
 *
 * Input normalisation. With net->normalize set, the model takes pixels in [0, 1] and
 * computes (x - mean) / std per channel itself before node 0 (beard's `pixel`
 * semantics: attacks work in pixel space). Without it, the input is already normalised
 * (BEARD's own convention, beard's `beard` semantics). The arithmetic is torchvision's
 * Normalize in float32, so both give bit-identical clean logits. Input gradients are
 * returned in the space of the input given (pixel units when normalising).
 */
#ifndef BEARD_NET_H
#define BEARD_NET_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../io/tensordict.h"
#include "../nn/conv_group.h"
#include "../nn/join.h"
#include "../nn/convplan.h"
#include "../nn/nn.h"
#include "../nn/pool_ext.h"

typedef enum {
    LAYER_CONV,
    LAYER_LINEAR,
    LAYER_ACT,
    LAYER_GROUPNORM, // InstanceNorm is GroupNorm(C, C)
    LAYER_LAYERNORM,
    LAYER_BATCHNORM,
    LAYER_AVGPOOL,
    LAYER_MAXPOOL,
    LAYER_SUM,              // out = in[0] + in[1]: a residual connection
    LAYER_CONCAT,           // torch.cat([in[0], in[1]], 1)
    LAYER_SLICE,            // channels [c0, c0 + out_c) of in[0]
    LAYER_SHUFFLE,          // ShuffleNet's channel shuffle in `groups` groups
    LAYER_ADAPTIVE_AVGPOOL, // torch.nn.AdaptiveAvgPool2d((out_h, out_w))
    LAYER_DROPOUT,          // torch.nn.Dropout(p): identity at eval
} LayerKind;

// how net_init_params draws a node's parameters
typedef enum {
    INIT_TORCH,       // PyTorch's default for the module (nn/init.c)
    INIT_KAIMING_OUT, // conv weight ~ N(0, 2 / (out_c * k * k)) (torchvision ResNet, CRD's MobileNetV2/WRN)
    INIT_NORMAL_001,  // linear weight ~ N(0, 0.01^2), bias 0 (CRD's MobileNetV2)
    INIT_ZERO_BIAS,   // PyTorch's default weight, bias 0 (CRD's WRN classifier)
} NetInit;

// one node of the graph
typedef struct {
    LayerKind kind;
    char name[48]; // module path; the state_dict prefix of its parameters ("features.0")
    int n_in;      // inputs: 1, or 2 for LAYER_SUM
    int in[2];     // node indices of the inputs in topological order; -1: the model input
    int in_c, in_h, in_w; // shape of in[0] (LINEAR: the flattened size, 1, 1)
    int out_c, out_h, out_w;
    int k, stride, pad; // conv, pool
    int groups;         // groupnorm, grouped conv (1: dense), shuffle
    int c0;             // slice: first channel
    float p;            // dropout probability
    NetInit init;
    ActKind act;
    float slope; // leaky relu
    float eps, momentum;
    // offsets into Net.params / Net.grads (-1 when absent)
    long w, b;
    // offsets into Net.buffers for BatchNorm's running statistics (-1 when absent)
    long rm, rv;
    int64_t num_batches_tracked;
    // set by net_finish: the number of nodes reading this one, and the last of them
    int n_out, last_use;
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

typedef struct NetTape NetTape;

#define NET_MAX_LAYERS 1024 // nodes (ResNet-50 has about 180)

typedef struct {
    char arch[32];
    int n_layers;
    Layer *layers; // (n_layers) nodes in topological order; the last is the output
    int in_c, in_h, in_w, n_classes;
    int cursor; // construction: the node the next net_add_* reads (-1: the input)
    int embed;  // DC's embed(): the node whose flattened output feeds the classifier (-1: none)

    float *params;
    size_t n_params;
    float *grads; // same layout as params; allocated by net_alloc_grads
    float *buffers;
    size_t n_buffers;
    int n_entries, cap_entries, cap_layers;
    ParamEntry *entries; // (n_entries) the state_dict, in PyTorch's order

    int normalize;
    float mean[4], std[4];
    int train; // BatchNorm and dropout mode of net_forward_backward
    // train-mode BatchNorm runs one sample at a time between its batch reductions (see
    // net.c); bn_layerwise runs it node by node over the batch instead (the reference;
    // net_finish sets it from the environment: BEARD_BN=layerwise)
    int bn_layerwise;
    // dropout masks come from Philox (dropout_seed, pass counter): set the seed per run
    uint64_t dropout_seed, dropout_step;

    // per-sample passes run so far (attack cost accounting): add-only, read by callers
    uint64_t n_forward, n_backward;
    // per-thread workspaces of the fused driver, allocated on first use: ws for one
    // sample, ws_chunk for the chunks of samples that passes without parameter gradients
    // run in (net.c: chunk_size; chunk > 0 fixes their size, net_finish sets it from the
    // environment: BEARD_CHUNK=N, 1 = one sample at a time)
    void *ws[256], *ws_chunk[256];
    int n_ws, n_ws_chunk, chunk;
    NetTape *tape; // the layer-wise driver's, kept between calls

    // conv[l]: which algorithm runs each pass of convolution node l, and its transformed
    // weights (src/nn/convplan.h), brought up to date with the parameters at every entry
    // point. conv_im2col (net_finish sets it from the environment: BEARD_CONV=im2col)
    // runs every pass by im2col + sgemm. conv_tile: the Winograd layers' output tile, 2
    // (F(2x2, 3x3), the default) or 4 (F(4x4, 3x3): BEARD_CONV=winograd4).
    int conv_im2col, conv_tile;
    ConvPlan *conv; // (n_layers)
} Net;

// ----------------------------------------------------------------------------
// construction: net_begin, then net_add_* in order, then net_finish (allocates params)
//
// Each net_add_* appends one node that reads the cursor (the node added last, or the
// model input at first) and moves the cursor to the new node; they return 0, or -1 with
// e set. Branches: remember net_last(), build one path, net_from() back to the branch
// point, build the other, then net_add_sum() the two ends.

void net_begin(Net *net, const char *arch, int in_c, int in_h, int in_w);
int net_add_conv(Net *net, const char *name, int out_c, int k, int stride, int pad, Err *e);
// with bias = 0 the convolution has no bias (torch's bias=False: no "<name>.bias" entry)
int net_add_conv_ex(Net *net, const char *name, int out_c, int k, int stride, int pad, int bias, Err *e);
int net_add_linear(Net *net, const char *name, int out_features, Err *e); // flattens implicitly
int net_add_act(Net *net, const char *name, ActKind act, float slope, Err *e);
int net_add_groupnorm(Net *net, const char *name, int groups, Err *e);
int net_add_layernorm(Net *net, const char *name, Err *e);
int net_add_batchnorm(Net *net, const char *name, Err *e);
// groups > 1: torch's Conv2d(groups=G); in and out channels must split into G groups
int net_add_conv_grouped(Net *net, const char *name, int out_c, int k, int stride, int pad, int groups, int bias,
                         Err *e);
int net_add_pool(Net *net, const char *name, LayerKind kind, int k, int stride, Err *e);
// max pooling with zero-area padding (-inf), torch's MaxPool2d(k, stride, pad)
int net_add_maxpool_pad(Net *net, const char *name, int k, int stride, int pad, Err *e);
int net_add_adaptive_avgpool(Net *net, const char *name, int out_h, int out_w, Err *e);
int net_add_dropout(Net *net, const char *name, float p, Err *e);
// out = out(a) + out(b), same shapes; a, b are node indices (-1: the input)
int net_add_sum(Net *net, const char *name, int a, int b, Err *e);
// torch.cat([out(a), out(b)], 1): same planes
int net_add_concat(Net *net, const char *name, int a, int b, Err *e);
// channels [c0, c0 + n) of the cursor node
int net_add_slice(Net *net, const char *name, int c0, int n, Err *e);
int net_add_shuffle(Net *net, const char *name, int groups, Err *e);
// how node's parameters are initialised (default INIT_TORCH)
void net_set_init(Net *net, int node, NetInit init);
// the node added last (-1 before the first)
static inline int net_last(const Net *net) { return net->n_layers - 1; }
// the next node reads `node` (-1: the model input)
void net_from(Net *net, int node);
// the output is the last node; embed defaults to the input of a final linear classifier
int net_finish(Net *net, Err *e);
// net_finish without allocating or initialising parameters: enough for the state_dict's
// names and shapes (net_check_state_dict), not for running; net_free it as usual
int net_finish_shapes(Net *net, Err *e);
void net_free(Net *net);

// brings every convolution's plan (net->conv) up to date with the parameters (backward:
// also the input gradient's transformed weights), for drivers outside net.c that run
// conv_plan_forward / conv_plan_backward themselves (net_hvp.c)
int net_conv_prepare(Net *net, int backward, Err *e);
// the samples a chunk of the per-sample passes holds (net.c's chunk_size: enough for the
// Winograd layers' GEMM blocks, BEARD_CHUNK=N to choose); needs the plans prepared
int net_chunk_size(const Net *net);
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
// nodes that behave differently in training: BatchNorm (couples the batch) and dropout
int net_has_train_mode(const Net *net);
// the model's own input normalisation (net->normalize): out = (x - mean) / std per channel,
// and its chain rule for a gradient, out = g / std; n samples (out may not alias)
void net_normalize_input(const Net *net, float *out, const float *x, int n);
void net_input_grad_to_pixels(const Net *net, float *out, const float *g, int n);

// ----------------------------------------------------------------------------
// state_dict: names and shapes equal PyTorch's (features.0.weight, ..., classifier.bias)

// copies every entry from sd (all must be present with matching shapes; extra keys are an
// error too, except when `strict` is 0). Nothing is copied when any entry mismatches.
int net_load_state_dict(Net *net, const TensorDict *sd, int strict, Err *e);
// whether sd has net's names and shapes; the error names the first missing, mismatched
// or (strict) unexpected key with both shapes. Returns the number of matching entries
// in *n_match when not NULL (for ranking candidate architectures).
int net_check_state_dict(const Net *net, const TensorDict *sd, int strict, int *n_match, Err *e);
int net_state_dict(const Net *net, TensorDict *out, Err *e);

// ----------------------------------------------------------------------------
// running the network

// logits (B, n_classes) from x (B, in_c, in_h, in_w); no gradients. Eval-mode BatchNorm
// regardless of net->train.
int net_forward(Net *net, const float *x, int B, float *logits, Err *e);
// the same up to one node: its output (B, net_node_size(net, node)), e.g. the embedding
// (net_embed_node); later nodes are not run. No tape: the forward pass of data whose
// gradient is not needed (distillation's real batches). Per-sample fused with eval-mode
// BatchNorm, unless net->train is set and the model has BatchNorm: then BatchNorm uses
// the statistics of the B samples (and updates the running ones), batch-wide.
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

// forward + backward over a batch. Uses the per-sample fused driver unless net->train is
// set and the net has BatchNorm or dropout. Then: BatchNorm nets run sample by sample
// between BatchNorm's batch reductions (one gradient vector; net->bn_layerwise off), and
// the rest run node by node over the tape. Returns 0, or -1 with e set when memory
// runs out.
int net_forward_backward(Net *net, const float *x, int B, NetBackward *nb, Err *e);

// ----------------------------------------------------------------------------
// the tape: two-phase forward/backward over a batch with every node's output kept, for
// losses on intermediate outputs and losses that couple the samples of a batch
// (distillation: DM's mean embeddings, SRe2L's BatchNorm statistics)
//
//     NetTape *t = NULL;                           // reused across calls when B is the same
//     net_tape_forward(net, &t, x, B, 1, e);      // BatchNorm in training mode
//     int f = net_embed_node(net);
//     const float *emb = net_tape_out(t, f);      // (B, net_node_size(net, f))
//     float *g = net_tape_grad(t, f);             // add d(loss)/d(emb) into g
//     net_tape_backward(net, t, dx, 1, e);        // dx (B, in size); param grads += net->grads
//     net_tape_free(t);
//
// Seed any number of nodes (the output included) before one backward; gradients from
// every seed flow down together. Backward consumes the seeds (a second backward needs
// new seeds) but leaves the forward state intact, so one forward can serve several
// backward passes. The parameters must not change between a tape's forward and backward.
// Node -1 is the model input (after normalisation) for net_tape_out and net_node_size.

// forward over a batch of B, keeping every node's output; train: BatchNorm in training
// mode (batch statistics, running stats updated) or eval. *t is allocated when NULL and
// reallocated when it was made for another net or batch size.
int net_tape_forward(Net *net, NetTape **t, const float *x, int B, int train, Err *e);
int net_node_find(const Net *net, const char *name);   // node index by name, -1 if none
int net_embed_node(const Net *net);                    // DC's embed(): features before the classifier
const float *net_tape_out(const NetTape *t, int node); // (B, node size)
size_t net_node_size(const Net *net, int node);        // values per sample
// seed buffer d(loss)/d(out) of a node, (B, node size), zeroed on the first call after a
// forward or backward; add into it. NULL when memory runs out.
float *net_tape_grad(NetTape *t, int node);
// backpropagates from every seeded node: dx (B, in size) or NULL; parameter gradients +=
// into net->grads when param_grads (allocated if needed)
int net_tape_backward(Net *net, NetTape *t, float *dx, int param_grads, Err *e);
void net_tape_free(NetTape *t);

#endif
