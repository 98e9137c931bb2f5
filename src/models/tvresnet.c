/*
 * tvresnet.c: torchvision's ResNet-18 and ResNet-50 (He et al., arXiv:1512.03385;
 * torchvision.models.resnet) with the modification for 32x32 inputs that the decoupled
 * methods distill from (SRe2L, Yin et al., arXiv:2306.13092, squeeze_cifar.py and
 * README_TINY.md; CDA, G-VBSM, ...): conv1 becomes Conv2d(C, 64, 3, 1, 1, bias=False)
 * and maxpool an identity. The same network serves 64 px (TinyImageNet): the adaptive
 * average pool makes the classifier independent of the input size.
 *
 *   conv1, bn1, relu, layer1..4 (BasicBlock x [2,2,2,2] or Bottleneck x [3,4,6,3], the
 *   Bottleneck's stride on its 3x3 conv2, as torchvision's "ResNet V1.5"), each with
 *   downsample.0 (1x1 conv, stride) and downsample.1 (BatchNorm) when the shape changes,
 *   avgpool (AdaptiveAvgPool2d(1)), fc
 *
 * Initialisation as torchvision: convolutions kaiming_normal_(fan_out, relu), BatchNorm
 * 1/0, fc PyTorch's default; conv1, replaced after construction, keeps PyTorch's default.
 * The block ReLU module torchvision reuses is split into nodes layerN.M.relu (and
 * .relu_2 in a Bottleneck) and the block output layerN.M.
 *
 * variant: 18 or 50.
 */
#include <stdio.h>

#include "registry.h"

static int conv_bn(Net *net, const char *pre, const char *conv, const char *bnn, int out, int k, int stride, Err *e) {
    char n[48];
    snprintf(n, sizeof(n), "%s.%s", pre, conv);
    if (net_add_conv_ex(net, n, out, k, stride, k / 2, 0, e)) return -1;
    net_set_init(net, net_last(net), INIT_KAIMING_OUT);
    snprintf(n, sizeof(n), "%s.%s", pre, bnn);
    return net_add_batchnorm(net, n, e);
}

static int relu(Net *net, const char *pre, const char *suffix, Err *e) {
    char n[48];
    snprintf(n, sizeof(n), "%s%s%s", pre, suffix ? "." : "", suffix ? suffix : "");
    return net_add_act(net, n, ACT_RELU, 0, e);
}

static int block(Net *net, const char *pre, int planes, int stride, int bottleneck, Err *e) {
    int x = net_last(net), in = net->layers[x].out_c, out = bottleneck ? planes * 4 : planes;
    if (bottleneck) {
        if (conv_bn(net, pre, "conv1", "bn1", planes, 1, 1, e) || relu(net, pre, "relu", e) ||
            conv_bn(net, pre, "conv2", "bn2", planes, 3, stride, e) || relu(net, pre, "relu_2", e) ||
            conv_bn(net, pre, "conv3", "bn3", out, 1, 1, e))
            return -1;
    } else {
        if (conv_bn(net, pre, "conv1", "bn1", planes, 3, stride, e) || relu(net, pre, "relu", e) ||
            conv_bn(net, pre, "conv2", "bn2", planes, 3, 1, e))
            return -1;
    }
    int main_end = net_last(net), sc = x;
    if (stride != 1 || in != out) {
        net_from(net, x);
        if (conv_bn(net, pre, "downsample.0", "downsample.1", out, 1, stride, e)) return -1;
        sc = net_last(net);
    }
    char n[48];
    snprintf(n, sizeof(n), "%s.add", pre);
    if (net_add_sum(net, n, main_end, sc, e)) return -1;
    return relu(net, pre, NULL, e);
}

int tvresnet_graph(Net *net, const ModelSpec *s, Err *e) {
    int bottleneck = s->variant == 50;
    static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3}, planes[4] = {64, 128, 256, 512};
    const int *nb = bottleneck ? blocks50 : blocks18;
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_conv_ex(net, "conv1", 64, 3, 1, 1, 0, e) || net_add_batchnorm(net, "bn1", e) ||
        net_add_act(net, "relu", ACT_RELU, 0, e))
        return -1;
    char pre[32];
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < nb[l]; b++) {
            snprintf(pre, sizeof(pre), "layer%d.%d", l + 1, b);
            if (block(net, pre, planes[l], b == 0 && l > 0 ? 2 : 1, bottleneck, e)) return -1;
        }
    if (net_add_adaptive_avgpool(net, "avgpool", 1, 1, e)) return -1;
    return net_add_linear(net, "fc", s->n_classes, e);
}
