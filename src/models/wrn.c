/*
 * wrn.c: the WRN-16-2 teacher of G-VBSM (arXiv:2311.17950; Branch_CIFAR_10/recover/
 * models/wrn.py, model_dict['WRN_16_2']), Zagoruyko and Komodakis' Wide ResNet
 * (arXiv:1605.07146) as Wei Yang's CIFAR code writes it, with pre-activation blocks:
 *
 *   conv1 3x3 (C -> 16, no bias)
 *   block1..3 (32, 64, 128 channels = [16, 32, 64] * 2; first strides 1, 2, 2), each
 *   a NetworkBlock of n = (16 - 4) / 6 = 2 BasicBlocks, block{k}.layer.{i}:
 *     in == out:  out = relu1(bn1(x)); out = conv2(relu2(bn2(conv1(out)))); x + out
 *     in != out:  x = relu1(bn1(x));   out = conv2(relu2(bn2(conv1(x))));   convShortcut(x) + out
 *   bn1, relu, avg_pool2d(out, width): global average, fc Linear(128, classes)
 *
 * (dropRate is 0 in G-VBSM's teacher, so there is no dropout.) Initialisation as the
 * definition: convs N(0, 2 / (k*k*out)), BN 1/0, fc PyTorch's default weight and zero
 * bias. The sum of a block is node block{k}.layer.{i}.
 *
 * variant: depth * 100 + widen factor (1602).
 */
#include <stdio.h>

#include "registry.h"

static int conv(Net *net, const char *pre, const char *name, int out, int k, int stride, Err *e) {
    char n[64];
    snprintf(n, sizeof(n), "%s.%s", pre, name);
    if (net_add_conv_ex(net, n, out, k, stride, k / 2, 0, e)) return -1;
    net_set_init(net, net_last(net), INIT_KAIMING_OUT);
    return 0;
}

static int bn_relu(Net *net, const char *pre, const char *bn, const char *relu, Err *e) {
    char n[64];
    snprintf(n, sizeof(n), "%s.%s", pre, bn);
    if (net_add_batchnorm(net, n, e)) return -1;
    snprintf(n, sizeof(n), "%s.%s", pre, relu);
    return net_add_act(net, n, ACT_RELU, 0, e);
}

static int basic_block(Net *net, const char *pre, int out, int stride, Err *e) {
    int x = net_last(net), equal = net->layers[x].out_c == out;
    if (bn_relu(net, pre, "bn1", "relu1", e)) return -1;
    int act = net_last(net);
    if (conv(net, pre, "conv1", out, 3, stride, e) || bn_relu(net, pre, "bn2", "relu2", e) ||
        conv(net, pre, "conv2", out, 3, 1, e))
        return -1;
    int main_end = net_last(net), sc = x;
    if (!equal) {
        net_from(net, act);
        if (conv(net, pre, "convShortcut", out, 1, stride, e)) return -1;
        sc = net_last(net);
    }
    return net_add_sum(net, pre, sc, main_end, e);
}

int wrn_graph(Net *net, const ModelSpec *s, Err *e) {
    int depth = s->variant / 100, widen = s->variant % 100, n = (depth - 4) / 6;
    if (s->h != s->w) return err_set(e, "%s pools with a square window of the map's width: it needs square inputs", s->arch);
    int ch[4] = {16, 16 * widen, 32 * widen, 64 * widen};
    net_begin(net, s->arch, s->channel, s->h, s->w);
    if (net_add_conv_ex(net, "conv1", ch[0], 3, 1, 1, 0, e)) return -1;
    net_set_init(net, net_last(net), INIT_KAIMING_OUT);
    char pre[48];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < n; i++) {
            snprintf(pre, sizeof(pre), "block%d.layer.%d", b + 1, i);
            if (basic_block(net, pre, ch[b + 1], i == 0 && b > 0 ? 2 : 1, e)) return -1;
        }
    if (net_add_batchnorm(net, "bn1", e) || net_add_act(net, "relu", ACT_RELU, 0, e)) return -1;
    int W = net->layers[net_last(net)].out_w;
    if (net_add_pool(net, "avgpool", LAYER_AVGPOOL, W, W, e) || net_add_linear(net, "fc", s->n_classes, e)) return -1;
    net_set_init(net, net_last(net), INIT_ZERO_BIAS);
    return 0;
}
