/*
 * mlp.c: DC's MLP (Zhao et al., arXiv:2006.05929; BEARD's Code/dc_networks.py MLP):
 *   flatten -> fc_1 Linear(C*H*W, 128) -> ReLU -> fc_2 Linear(128, 128) -> ReLU -> fc_3
 * DC fixes fc_1's input to 28*28 (1 channel) or 32*32*3; beard takes it from the input,
 * which is the same at those sizes. The ReLUs are functional in DC; their nodes are
 * named relu_1 and relu_2.
 */
#include "registry.h"

int mlp_graph(Net *net, const ModelSpec *s, Err *e) {
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_linear(net, "fc_1", 128, e) || net_add_act(net, "relu_1", ACT_RELU, 0, e) ||
        net_add_linear(net, "fc_2", 128, e) || net_add_act(net, "relu_2", ACT_RELU, 0, e))
        return -1;
    return net_add_linear(net, "fc_3", s->n_classes, e);
}
