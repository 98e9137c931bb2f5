/*
 * resnet.c: DC's ResNet-18 family (arXiv:2006.05929; BEARD's Code/dc_networks.py, after
 * kuangliu/pytorch-cifar): ResNet18 (instance norm, i.e. GroupNorm(C, C)), ResNet18BN,
 * and the _AP forms (ResNet18_AP, ResNet18BN_AP), where every stride-2 convolution is
 * a stride-1 one followed by AvgPool2d(2, 2).
 *
 *   conv1 3x3 (C -> 64, no bias), bn1, relu
 *   layer1..4: BasicBlocks (64, 128, 256, 512 planes; first strides 1, 2, 2, 2), each
 *     conv1 3x3 stride s, bn1, relu, [_AP: avgpool 2 if s = 2], conv2 3x3, bn2,
 *     + shortcut (identity, or shortcut.0 1x1 conv stride s and shortcut.1 norm;
 *       _AP: shortcut.0 1x1 conv, shortcut.1 AvgPool2d(2, 2), shortcut.2 norm), relu
 *   ResNet18: avg_pool2d(4); _AP: avg_pool2d(1) (an identity, left out); classifier
 * The classifier's input is taken from the feature map: 512 for ResNet18 at 28/32 px,
 * 512*4*4 (32 px) and 512*3*3 (28 px) for the _AP forms, as DC hard-codes them. Nodes
 * of DC's functional ops are named relu, layerN.M.relu1, layerN.M.pool, layerN.M.add,
 * avgpool; a block's output (after its last ReLU) is the node layerN.M.
 *
 * variant: bit 0 BatchNorm, bit 1 the _AP form.
 */
#include <stdio.h>

#include "registry.h"

static int norm(Net *net, const char *name, int bn, Err *e) {
    return bn ? net_add_batchnorm(net, name, e) : net_add_groupnorm(net, name, net->layers[net_last(net)].out_c, e);
}

static int basic_block(Net *net, const char *pre, int planes, int stride, int bn, int ap, Err *e) {
    char n[48];
    int x = net_last(net), in_planes = net->layers[x].out_c;
#define NM(suffix) (snprintf(n, sizeof(n), "%s.%s", pre, suffix), n)
    if (net_add_conv_ex(net, NM("conv1"), planes, 3, ap ? 1 : stride, 1, 0, e) || norm(net, NM("bn1"), bn, e) ||
        net_add_act(net, NM("relu1"), ACT_RELU, 0, e))
        return -1;
    if (ap && stride != 1 && net_add_pool(net, NM("pool"), LAYER_AVGPOOL, 2, 2, e)) return -1;
    if (net_add_conv_ex(net, NM("conv2"), planes, 3, 1, 1, 0, e) || norm(net, NM("bn2"), bn, e)) return -1;
    int main_end = net_last(net), sc = x;
    if (stride != 1 || in_planes != planes) {
        net_from(net, x);
        if (net_add_conv_ex(net, NM("shortcut.0"), planes, 1, ap ? 1 : stride, 0, 0, e)) return -1;
        if (ap && net_add_pool(net, NM("shortcut.1"), LAYER_AVGPOOL, 2, 2, e)) return -1;
        if (norm(net, NM(ap ? "shortcut.2" : "shortcut.1"), bn, e)) return -1;
        sc = net_last(net);
    }
    if (net_add_sum(net, NM("add"), main_end, sc, e)) return -1;
    return net_add_act(net, pre, ACT_RELU, 0, e);
#undef NM
}

int resnet_graph(Net *net, const ModelSpec *s, Err *e) {
    int bn = s->variant & 1, ap = (s->variant >> 1) & 1;
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_conv_ex(net, "conv1", 64, 3, 1, 1, 0, e) || norm(net, "bn1", bn, e) ||
        net_add_act(net, "relu", ACT_RELU, 0, e))
        return -1;
    static const int planes[4] = {64, 128, 256, 512};
    char pre[32];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < 2; b++) {
            snprintf(pre, sizeof(pre), "layer%d.%d", l + 1, b);
            if (basic_block(net, pre, planes[l], b == 0 && l > 0 ? 2 : 1, bn, ap, e)) return -1;
        }
    if (!ap && net_add_pool(net, "avgpool", LAYER_AVGPOOL, 4, 4, e)) return -1;
    return net_add_linear(net, "classifier", s->n_classes, e);
}
