/*
 * shufflenetv2.c: the ShuffleNetV2-0.5 teacher of G-VBSM (arXiv:2311.17950;
 * Branch_CIFAR_10/recover/models/ShuffleNetv2.py, model_dict['ShuffleNetV2_0_5']), Ma et
 * al.'s ShuffleNet V2 (arXiv:1807.11164) in kuangliu/pytorch-cifar's CIFAR form:
 *
 *   conv1 1x1 (C -> 24, no bias), bn1, relu (no max-pool)
 *   layer1..3: a DownBlock to (48, 96, 192) channels, then (3, 7, 3) BasicBlocks
 *     DownBlock(in, out), mid = out / 2:
 *       left  = relu(bn2(conv2 1x1(bn1(conv1 3x3 depthwise stride 2(x)))))
 *       right = relu(bn5(conv5 1x1(bn4(conv4 3x3 depthwise stride 2(relu(bn3(conv3 1x1(x))))))))
 *       shuffle(cat(left, right))
 *     BasicBlock(c): x1, x2 = the two channel halves of x;
 *       shuffle(cat(x1, relu(bn3(conv3 1x1(bn2(conv2 3x3 depthwise(relu(bn1(conv1 1x1(x2))))))))))
 *     shuffle: ShuffleBlock(groups = 2)
 *   conv2 1x1 (192 -> 1024), bn2, relu, avg_pool2d(out, width): global, linear
 *
 * (The last BasicBlock of a layer also returns its pre-activation for feature
 * distillation; the network's output does not depend on it.) PyTorch's default
 * initialisation. Functional ReLUs are nodes relu, layerN.M.relu1/2/3/5, relu2; the
 * channel halves layerN.M.split.0/1, the concatenation layerN.M.cat and the block's
 * output (the shuffle) layerN.M.
 *
 * Only the 0.5 width is built (the teacher G-VBSM uses).
 */
#include <stdio.h>

#include "registry.h"

#define NM(buf, pre, suffix) (snprintf(buf, sizeof(buf), "%s.%s", pre, suffix), buf)

static int cbn(Net *net, const char *pre, int i, int out, int k, int stride, int groups, int relu, Err *e) {
    char n[64], s[16];
    snprintf(s, sizeof(s), "conv%d", i);
    if (net_add_conv_grouped(net, NM(n, pre, s), out, k, stride, k / 2, groups, 0, e)) return -1;
    snprintf(s, sizeof(s), "bn%d", i);
    if (net_add_batchnorm(net, NM(n, pre, s), e)) return -1;
    if (!relu) return 0;
    snprintf(s, sizeof(s), "relu%d", i);
    return net_add_act(net, NM(n, pre, s), ACT_RELU, 0, e);
}

static int down_block(Net *net, const char *pre, int out, Err *e) {
    int x = net_last(net), in = net->layers[x].out_c, mid = out / 2;
    char n[64];
    if (cbn(net, pre, 1, in, 3, 2, in, 0, e) || cbn(net, pre, 2, mid, 1, 1, 1, 1, e)) return -1;
    int left = net_last(net);
    net_from(net, x);
    if (cbn(net, pre, 3, mid, 1, 1, 1, 1, e) || cbn(net, pre, 4, mid, 3, 2, mid, 0, e) ||
        cbn(net, pre, 5, mid, 1, 1, 1, 1, e))
        return -1;
    if (net_add_concat(net, NM(n, pre, "cat"), left, net_last(net), e)) return -1;
    return net_add_shuffle(net, pre, 2, e);
}

static int basic_block(Net *net, const char *pre, Err *e) {
    int x = net_last(net), C = net->layers[x].out_c, c = C / 2;
    char n[64];
    if (net_add_slice(net, NM(n, pre, "split.0"), 0, c, e)) return -1;
    int x1 = net_last(net);
    net_from(net, x);
    if (net_add_slice(net, NM(n, pre, "split.1"), c, C - c, e)) return -1;
    if (cbn(net, pre, 1, C - c, 1, 1, 1, 1, e) || cbn(net, pre, 2, C - c, 3, 1, C - c, 0, e) ||
        cbn(net, pre, 3, C - c, 1, 1, 1, 1, e))
        return -1;
    if (net_add_concat(net, NM(n, pre, "cat"), x1, net_last(net), e)) return -1;
    return net_add_shuffle(net, pre, 2, e);
}

int shufflenetv2_graph(Net *net, const ModelSpec *s, Err *e) {
    static const int out05[4] = {48, 96, 192, 1024}, blocks[3] = {3, 7, 3};
    const int *out = out05;
    if (s->h != s->w) return err_set(e, "%s pools with a square window of the map's width: it needs square inputs", s->arch);
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_conv_ex(net, "conv1", 24, 1, 1, 0, 0, e) || net_add_batchnorm(net, "bn1", e) ||
        net_add_act(net, "relu", ACT_RELU, 0, e))
        return -1;
    char pre[32];
    for (int l = 0; l < 3; l++) {
        snprintf(pre, sizeof(pre), "layer%d.0", l + 1);
        if (down_block(net, pre, out[l], e)) return -1;
        for (int b = 0; b < blocks[l]; b++) {
            snprintf(pre, sizeof(pre), "layer%d.%d", l + 1, b + 1);
            if (basic_block(net, pre, e)) return -1;
        }
    }
    if (net_add_conv_ex(net, "conv2", out[3], 1, 1, 0, 0, e) || net_add_batchnorm(net, "bn2", e) ||
        net_add_act(net, "relu2", ACT_RELU, 0, e))
        return -1;
    int W = net->layers[net_last(net)].out_w;
    if (net_add_pool(net, "avgpool", LAYER_AVGPOOL, W, W, e)) return -1;
    return net_add_linear(net, "linear", s->n_classes, e);
}
