/*
 * mobilenetv2.c: the MobileNetV2 teacher of G-VBSM (Shao et al., arXiv:2311.17950;
 * shaoshitong/G_VBSM_Dataset_Condensation, Branch_CIFAR_10/recover/models/mobilenetv2.py,
 * model_dict['MobileNetV2'] = mobile_half), which is CRD's CIFAR MobileNetV2 (Sandler et
 * al., arXiv:1801.04381) with expansion T = 6 and width 0.5:
 *
 *   conv1 = conv_bn(C, 16, stride 2): Conv 3x3 (no bias), BN, ReLU
 *   blocks.i.j: InvertedResidual(inp, oup, stride, t):
 *     conv.0 1x1 inp -> inp*t, conv.1 BN, conv.2 ReLU,
 *     conv.3 3x3 depthwise (stride), conv.4 BN, conv.5 ReLU,
 *     conv.6 1x1 -> oup, conv.7 BN;  + the input when stride 1 and inp == oup
 *     (t, c, n, s) = (1,16,1,1) (6,24,2,1) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2)
 *     (6,320,1,1), channels c * 0.5
 *   conv2 = conv_1x1_bn(160, 1280), avgpool AvgPool2d(H / 16) (one value per channel),
 *   classifier.0 Linear(1280, classes)
 *
 * Deliberate notes: the definition uses ReLU, not ReLU6 (torchvision's MobileNetV2 uses
 * ReLU6); beard follows the definition. It asserts input_size % 32 == 0, so 28 px is an
 * error here too. The first conv takes C channels where the definition fixes 3.
 * Initialisation as the definition: convs N(0, 2 / (k*k*out)), BN 1/0, the classifier
 * N(0, 0.01) with zero bias. A block with the residual sum outputs node blocks.i.j.
 */
#include <stdio.h>

#include "registry.h"

static int conv_bn_act(Net *net, const char *pre, int first, int out, int k, int stride, int groups, int act,
                       Err *e) {
    char n[64];
    snprintf(n, sizeof(n), "%s.%d", pre, first);
    if (net_add_conv_grouped(net, n, out, k, stride, k / 2, groups, 0, e)) return -1;
    net_set_init(net, net_last(net), INIT_KAIMING_OUT);
    snprintf(n, sizeof(n), "%s.%d", pre, first + 1);
    if (net_add_batchnorm(net, n, e)) return -1;
    if (!act) return 0;
    snprintf(n, sizeof(n), "%s.%d", pre, first + 2);
    return net_add_act(net, n, ACT_RELU, 0, e);
}

int mobilenetv2_graph(Net *net, const ModelSpec *s, Err *e) {
    if (s->h % 32 || s->w % 32)
        return err_set(e, "%s takes inputs whose size is a multiple of 32 (got %dx%d)", s->arch, s->h, s->w);
    static const int setting[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                      {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    const double width = 0.5;
    net_begin(net, s->arch, s->channel, s->h, s->w);
    int in = (int)(32 * width);
    if (conv_bn_act(net, "conv1", 0, in, 3, 2, 1, 1, e)) return -1;
    char pre[48];
    for (int i = 0; i < 7; i++) {
        int t = setting[i][0], out = (int)(setting[i][1] * width), n = setting[i][2];
        for (int j = 0; j < n; j++) {
            int stride = j == 0 ? setting[i][3] : 1, x = net_last(net), hid = in * t;
            snprintf(pre, sizeof(pre), "blocks.%d.%d.conv", i, j);
            if (conv_bn_act(net, pre, 0, hid, 1, 1, 1, 1, e) || conv_bn_act(net, pre, 3, hid, 3, stride, hid, 1, e) ||
                conv_bn_act(net, pre, 6, out, 1, 1, 1, 0, e))
                return -1;
            if (stride == 1 && in == out) {
                snprintf(pre, sizeof(pre), "blocks.%d.%d", i, j);
                if (net_add_sum(net, pre, x, net_last(net), e)) return -1;
            }
            in = out;
        }
    }
    if (conv_bn_act(net, "conv2", 0, 1280, 1, 1, 1, 1, e)) return -1;
    int H = s->h / 16; // the definition's AvgPool2d(input_size // 16, ceil_mode=True): exact here
    if (net_add_pool(net, "avgpool", LAYER_AVGPOOL, H, H, e)) return -1;
    if (net_add_linear(net, "classifier.0", s->n_classes, e)) return -1;
    net_set_init(net, net_last(net), INIT_NORMAL_001);
    return 0;
}
