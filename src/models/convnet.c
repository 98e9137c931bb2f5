/*
 * convnet.c: DC-bench/BEARD's ConvNet and its named variants.
 *
 * ConvNet(channel, classes, width, depth, act, norm, pool, im_size) as in DC's
 * networks.py (Zhao et al., "Dataset Condensation with Gradient Matching",
 * arXiv:2006.05929) and BEARD's eva_utils.get_network: depth blocks of
 *   Conv2d(in, width, 3, padding=1) [-> norm] -> act [-> pool 2x2]
 * then Linear(width * h * w, classes). Sequential indices count every module, so the
 * default's parameters are features.0 (conv), features.1 (norm), features.4, ... and
 * classifier, exactly the PyTorch state_dict. As in DC, 28x28 single-channel input
 * (MNIST) gets padding 3 in the first conv, which makes it 32x32.
 *
 * norm: instancenorm = GroupNorm(C, C, affine), groupnorm = GroupNorm(4, C), batchnorm,
 * layernorm = LayerNorm([C, H, W]), none. act: relu, sigmoid, leakyrelu (0.01), swish.
 * pool: avgpooling, maxpooling (2, 2), none.
 */
#include "convnet.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *name;
    int width, depth; // 0: default
    const char *act, *norm, *pool;
    int alias; // same state_dict as an earlier name (activation, pooling kind, group count or spelling)
} Variant;

// BEARD's and DC's names; both spellings of the norm variants are accepted.
// X(name, width, depth, act, norm, pool, alias); 0/NULL: the default
#define CONVNET_VARIANTS(X) \
    X("ConvNet", 0, 0, NULL, NULL, NULL, 0) \
    X("ConvNetD1", 0, 1, NULL, NULL, NULL, 0) \
    X("ConvNetD2", 0, 2, NULL, NULL, NULL, 0) \
    X("ConvNetD3", 0, 3, NULL, NULL, NULL, 1) \
    X("ConvNetD4", 0, 4, NULL, NULL, NULL, 0) \
    X("ConvNetD5", 0, 5, NULL, NULL, NULL, 0) \
    X("ConvNet_4", 0, 4, NULL, NULL, NULL, 1) \
    X("ConvNet_5", 0, 5, NULL, NULL, NULL, 1) \
    X("ConvNetW32", 32, 0, NULL, NULL, NULL, 0) \
    X("ConvNetW64", 64, 0, NULL, NULL, NULL, 0) \
    X("ConvNetW128", 128, 0, NULL, NULL, NULL, 1) \
    X("ConvNetW256", 256, 0, NULL, NULL, NULL, 0) \
    X("ConvNetAS", 0, 0, "sigmoid", NULL, NULL, 1) \
    X("ConvNetAR", 0, 0, "relu", NULL, NULL, 1) \
    X("ConvNetAL", 0, 0, "leakyrelu", NULL, NULL, 1) \
    X("ConvNetASwish", 0, 0, "swish", NULL, NULL, 1) \
    X("ConvNetASwishBN", 0, 0, "swish", "batchnorm", NULL, 1) \
    X("ConvNetNN", 0, 0, NULL, "none", NULL, 0) \
    X("ConvNet_NN", 0, 0, NULL, "none", NULL, 1) \
    X("ConvNetBN", 0, 0, NULL, "batchnorm", NULL, 0) \
    X("ConvNet_BN", 0, 0, NULL, "batchnorm", NULL, 1) \
    X("ConvNetLN", 0, 0, NULL, "layernorm", NULL, 0) \
    X("ConvNet_LN", 0, 0, NULL, "layernorm", NULL, 1) \
    X("ConvNetIN", 0, 0, NULL, "instancenorm", NULL, 1) \
    X("ConvNet_IN", 0, 0, NULL, "instancenorm", NULL, 1) \
    X("ConvNetGN", 0, 0, NULL, "groupnorm", NULL, 1) \
    X("ConvNet_GN", 0, 0, NULL, "groupnorm", NULL, 1) \
    X("ConvNetNP", 0, 0, NULL, NULL, "none", 0) \
    X("ConvNet_FullyConv", 0, 0, NULL, NULL, "none", 1) \
    X("ConvNetMP", 0, 0, NULL, NULL, "maxpooling", 1) \
    X("ConvNetAP", 0, 0, NULL, NULL, "avgpooling", 1)

#define AS_VARIANT(name, w, d, a, n, p, al) {name, w, d, a, n, p, al},
#define AS_DEF(name, w, d, a, n, p, al) \
    {name, convnet_graph, 0, !(al), "DC's ConvNet family (arXiv:2006.05929): width, depth, act, norm, pool variants"},
static const Variant variants[] = {CONVNET_VARIANTS(AS_VARIANT)};
static const ModelDef defs[] = {CONVNET_VARIANTS(AS_DEF)};

int convnet_config_for(const char *arch, ConvNetConfig *cfg) {
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        const Variant *v = &variants[i];
        if (strcasecmp(arch, v->name) != 0) continue;
        snprintf(cfg->arch, sizeof(cfg->arch), "%s", v->name);
        cfg->width = v->width ? v->width : 128;
        cfg->depth = v->depth ? v->depth : 3;
        snprintf(cfg->act, sizeof(cfg->act), "%s", v->act ? v->act : "relu");
        snprintf(cfg->norm, sizeof(cfg->norm), "%s", v->norm ? v->norm : "instancenorm");
        snprintf(cfg->pool, sizeof(cfg->pool), "%s", v->pool ? v->pool : "avgpooling");
        return 0;
    }
    return -1;
}

static int convnet_nodes(Net *net, const ConvNetConfig *cfg, int channel, int n_classes, int im_h, int im_w, Err *e) {
    ActKind act;
    float slope = 0.0f;
    if (!strcmp(cfg->act, "relu")) act = ACT_RELU;
    else if (!strcmp(cfg->act, "sigmoid")) act = ACT_SIGMOID;
    else if (!strcmp(cfg->act, "leakyrelu")) act = ACT_LEAKY_RELU, slope = 0.01f;
    else if (!strcmp(cfg->act, "swish")) act = ACT_SILU;
    else if (!strcmp(cfg->act, "gelu")) act = ACT_GELU;
    else return err_set(e, "unknown activation '%s'", cfg->act);
    const char *norm = cfg->norm, *pool = cfg->pool;
    if (strcmp(norm, "instancenorm") && strcmp(norm, "groupnorm") && strcmp(norm, "batchnorm") &&
        strcmp(norm, "layernorm") && strcmp(norm, "none"))
        return err_set(e, "unknown normalisation '%s'", norm);
    if (strcmp(pool, "avgpooling") && strcmp(pool, "maxpooling") && strcmp(pool, "none"))
        return err_set(e, "unknown pooling '%s'", pool);
    if (cfg->width < 1 || cfg->depth < 1 || n_classes < 1) return err_set(e, "ConvNet needs width, depth and classes >= 1");

    net_begin(net, cfg->arch, channel, im_h, im_w);
    int idx = 0;
    char name[48];
    for (int d = 0; d < cfg->depth; d++) {
        int pad = (channel == 1 && d == 0) ? 3 : 1; // DC: 28x28 MNIST becomes 32x32
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (net_add_conv(net, name, cfg->width, 3, 1, pad, e)) return -1;
        if (strcmp(norm, "none")) {
            snprintf(name, sizeof(name), "features.%d", idx++);
            int rc = 0;
            if (!strcmp(norm, "instancenorm")) rc = net_add_groupnorm(net, name, cfg->width, e);
            else if (!strcmp(norm, "groupnorm")) rc = net_add_groupnorm(net, name, 4, e);
            else if (!strcmp(norm, "batchnorm")) rc = net_add_batchnorm(net, name, e);
            else rc = net_add_layernorm(net, name, e);
            if (rc) return -1;
        }
        snprintf(name, sizeof(name), "features.%d", idx++);
        if (net_add_act(net, name, act, slope, e)) return -1;
        if (strcmp(pool, "none")) {
            snprintf(name, sizeof(name), "features.%d", idx++);
            if (net_add_pool(net, name, !strcmp(pool, "maxpooling") ? LAYER_MAXPOOL : LAYER_AVGPOOL, 2, 2, e)) return -1;
        }
    }
    return net_add_linear(net, "classifier", n_classes, e);
}

int convnet_build(Net *net, const ConvNetConfig *cfg, int channel, int n_classes, int im_h, int im_w, Err *e) {
    if (convnet_nodes(net, cfg, channel, n_classes, im_h, im_w, e)) return -1;
    return net_finish(net, e);
}

int convnet_graph(Net *net, const ModelSpec *spec, Err *e) {
    ConvNetConfig cfg;
    if (convnet_config_for(spec->arch, &cfg)) return err_set(e, "'%s' is not a ConvNet", spec->arch);
    return convnet_nodes(net, &cfg, spec->channel, spec->n_classes, spec->h, spec->w, e);
}

const ModelDef *convnet_defs(int *n) {
    *n = (int)(sizeof(defs) / sizeof(defs[0]));
    return defs;
}
