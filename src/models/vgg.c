/*
 * vgg.c: DC's VGG (arXiv:2006.05929; BEARD's Code/dc_networks.py VGG, after
 * kuangliu/pytorch-cifar): per entry of the configuration either MaxPool(2, 2) or
 *   Conv2d(in, x, 3, padding 3 for the first conv of 1-channel input, else 1),
 *   GroupNorm(x, x) (instance norm; VGG11) or BatchNorm2d(x) (VGG11BN), ReLU
 * then AvgPool2d(1, 1), all one Sequential `features`, and classifier Linear(512,
 * classes), whose input beard takes from the feature map (512 at 28 px with 1 channel
 * and at 32 px). variant: 1 for BatchNorm (VGG11BN).
 */
#include <stdio.h>

#include "registry.h"

#define M -1
static const int cfg11[] = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, 0};

int vgg_graph(Net *net, const ModelSpec *s, Err *e) {
    int bn = s->variant;
    const int *cfg = cfg11;
    net_begin(net, s->arch, s->channel, s->h, s->w);
    int idx = 0;
    char name[48];
    for (int ic = 0; cfg[ic]; ic++) {
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (cfg[ic] == M) {
            if (net_add_pool(net, name, LAYER_MAXPOOL, 2, 2, e)) return -1;
            continue;
        }
        int x = cfg[ic];
        if (net_add_conv(net, name, x, 3, 1, s->channel == 1 && ic == 0 ? 3 : 1, e)) return -1;
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (bn ? net_add_batchnorm(net, name, e) : net_add_groupnorm(net, name, x, e)) return -1;
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (net_add_act(net, name, ACT_RELU, 0, e)) return -1;
    }
    snprintf(name, sizeof(name), "features.%d", idx++);
    if (net_add_pool(net, name, LAYER_AVGPOOL, 1, 1, e)) return -1;
    return net_add_linear(net, "classifier", s->n_classes, e);
}
