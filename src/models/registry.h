/*
 * registry.h: every architecture beard builds, by name, and the model registry.
 *
 * An architecture is one file in src/models (a family: convnet.c, resnet.c, ...) with a
 * graph function that adds the nodes of one of its members to a Net, plus one line in
 * registry.c's table. model_create builds any of them by name (case-insensitive; the
 * names are BEARD's / DC's and the official repositories', see model_arch_list).
 *
 * Input sizes. Every architecture takes 1- or 3-channel input of any class count. Where
 * the original definition sizes its classifier for 32x32 (DC's MLP, LeNet, AlexNet,
 * VGG, ResNet), beard sizes it from the feature map the input actually gives, which
 * reproduces the original at 28 px (1 channel) and 32 px and extends it to 64 px; a
 * size an architecture cannot take (too small for its pooling, or not a multiple of 32
 * for MobileNetV2) is an error naming the constraint.
 */
#ifndef BEARD_REGISTRY_H
#define BEARD_REGISTRY_H

#include <stdio.h>

#include "net.h"

typedef struct {
    const char *arch; // the canonical name
    int variant;      // the family's own member code
    int channel, n_classes, h, w;
} ModelSpec;

// adds a member's nodes to net (net_begin included, net_finish not); -1 with e set
typedef int (*ModelGraphFn)(Net *net, const ModelSpec *spec, Err *e);

typedef struct {
    const char *name;
    ModelGraphFn graph;
    int variant;
    // a candidate when inferring the architecture from a state_dict: 0 for members that
    // differ from another only in what a state_dict does not record (activation,
    // pooling kind, group count)
    int inferable;
    const char *about; // one line: the family and its source
} ModelDef;

// the definition of an architecture name or alias, NULL when unknown
const ModelDef *model_find(const char *arch);
// the table, for listing; *n gets its length
const ModelDef *model_table(int *n);
// the known names for an error message (the ConvNet variants summarised)
const char *model_arch_list(void);

// prints one line per architecture (the ConvNet family on one) with its origin
void model_print_list(FILE *f, const char *indent);

// builds architecture `arch` for inputs (channel, im_h, im_w) and n_classes outputs,
// with PyTorch's (or the definition's own) initialisation from seed 0
int model_create(Net *net, const char *arch, int channel, int n_classes, int im_h, int im_w, Err *e);

// The architecture whose state_dict names and shapes are exactly sd's, for the given
// input shape and class count; writes its name to arch (size n). -1 with e set when
// none matches (naming the closest and its first difference) or when several do.
int model_infer_arch(const TensorDict *sd, int channel, int n_classes, int im_h, int im_w, char *arch, size_t n,
                     Err *e);

// the families' graph functions (one per file)
int convnet_graph(Net *net, const ModelSpec *s, Err *e);
int mlp_graph(Net *net, const ModelSpec *s, Err *e);
int lenet_graph(Net *net, const ModelSpec *s, Err *e);
int alexnet_graph(Net *net, const ModelSpec *s, Err *e);
int vgg_graph(Net *net, const ModelSpec *s, Err *e);
int resnet_graph(Net *net, const ModelSpec *s, Err *e);
int tvresnet_graph(Net *net, const ModelSpec *s, Err *e);
int mobilenetv2_graph(Net *net, const ModelSpec *s, Err *e);
int wrn_graph(Net *net, const ModelSpec *s, Err *e);
int shufflenetv2_graph(Net *net, const ModelSpec *s, Err *e);

#endif
