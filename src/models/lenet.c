/*
 * lenet.c: DC's LeNet (arXiv:2006.05929; BEARD's Code/dc_networks.py LeNet):
 *   features = Conv2d(C, 6, 5, padding 2 if C == 1 else 0), ReLU, MaxPool(2, 2),
 *              Conv2d(6, 16, 5), ReLU, MaxPool(2, 2)
 *   fc_1 Linear(16*5*5, 120) -> ReLU -> fc_2 Linear(120, 84) -> ReLU -> fc_3
 * fc_1's input is taken from the feature map (16*5*5 at 28 px with 1 channel and at
 * 32 px). The functional ReLUs after fc_1 and fc_2 are nodes relu_1 and relu_2; DC's
 * embed() is the flattened features.5.
 */
#include <stdio.h>

#include "registry.h"

int lenet_graph(Net *net, const ModelSpec *s, Err *e) {
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_conv(net, "features.0", 6, 5, 1, s->channel == 1 ? 2 : 0, e) ||
        net_add_act(net, "features.1", ACT_RELU, 0, e) || net_add_pool(net, "features.2", LAYER_MAXPOOL, 2, 2, e) ||
        net_add_conv(net, "features.3", 16, 5, 1, 0, e) || net_add_act(net, "features.4", ACT_RELU, 0, e) ||
        net_add_pool(net, "features.5", LAYER_MAXPOOL, 2, 2, e))
        return -1;
    net->embed = net_last(net);
    if (net_add_linear(net, "fc_1", 120, e) || net_add_act(net, "relu_1", ACT_RELU, 0, e) ||
        net_add_linear(net, "fc_2", 84, e) || net_add_act(net, "relu_2", ACT_RELU, 0, e))
        return -1;
    return net_add_linear(net, "fc_3", s->n_classes, e);
}
