/*
 * alexnet.c: DC's AlexNet and AlexNetBN (arXiv:2006.05929; BEARD's Code/dc_networks.py),
 * a 32x32 AlexNet:
 *   Conv2d(C, 128, 5, padding 4 if C == 1 else 2) [BN] ReLU MaxPool(2)
 *   Conv2d(128, 192, 5, padding 2)                [BN] ReLU MaxPool(2)
 *   Conv2d(192, 256, 3, padding 1)                [BN] ReLU
 *   Conv2d(256, 192, 3, padding 1)                [BN] ReLU
 *   Conv2d(192, 192, 3, padding 1)                [BN] ReLU MaxPool(2)
 *   fc Linear(192*4*4, classes)
 * as one Sequential `features` (indices count every module, so AlexNetBN's convs are
 * features.0, .4, .8, .11, .14). fc's input is taken from the feature map (192*4*4 at
 * 32 px and at 28 px with 1 channel, whose padding 4 makes 32).
 */
#include <stdio.h>

#include "registry.h"

int alexnet_graph(Net *net, const ModelSpec *s, Err *e) {
    static const int out[5] = {128, 192, 256, 192, 192}, k[5] = {5, 5, 3, 3, 3}, pool[5] = {1, 1, 0, 0, 1};
    int bn = s->variant;
    net_begin(net, s->arch, s->channel, s->h, s->w);
    int idx = 0;
    char name[48];
    for (int i = 0; i < 5; i++) {
        int pad = i == 0 ? (s->channel == 1 ? 4 : 2) : k[i] / 2;
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (net_add_conv(net, name, out[i], k[i], 1, pad, e)) return -1;
        if (bn) {
            snprintf(name, sizeof(name), "features.%d", idx++);
            if (net_add_batchnorm(net, name, e)) return -1;
        }
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (net_add_act(net, name, ACT_RELU, 0, e)) return -1;
        if (pool[i]) {
            snprintf(name, sizeof(name), "features.%d", idx++);
            if (net_add_pool(net, name, LAYER_MAXPOOL, 2, 2, e)) return -1;
        }
    }
    return net_add_linear(net, "fc", s->n_classes, e);
}
