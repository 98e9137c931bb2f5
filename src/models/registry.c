/*
 * registry.c: the table of architectures (see registry.h). Adding an architecture is a
 * graph function in its family's file and one line here.
 *
 * Names are BEARD's / DC's (Code/eva_utils.py get_network), the decoupled methods' and
 * G-VBSM's (models/__init__.py model_dict). torchvision's modified ResNets are named
 * resnet18_modified / resnet50_modified ("ResNet-18 (modified)", as the decoupled papers
 * write it), so that a case-insensitive lookup never confuses them with DC's ResNet18.
 */
#include "registry.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "convnet.h"

static const ModelDef table[] = {
    {"MLP", mlp_graph, 0, 1, "DC's MLP: 3 linear layers of 128 (arXiv:2006.05929)"},
    {"LeNet", lenet_graph, 0, 1, "DC's LeNet-5"},
    {"AlexNet", alexnet_graph, 0, 1, "DC's 32x32 AlexNet (5 convs, 128-192-256-192-192)"},
    {"AlexNetBN", alexnet_graph, 1, 1, "DC's AlexNet with BatchNorm"},
    {"VGG11", vgg_graph, 0, 1, "DC's VGG-11 with instance norm"},
    {"VGG11BN", vgg_graph, 1, 1, "DC's VGG-11 with BatchNorm"},
    {"ResNet18", resnet_graph, 0, 1, "DC's ResNet-18 with instance norm (kuangliu CIFAR form)"},
    {"ResNet18BN", resnet_graph, 1, 1, "DC's ResNet-18 with BatchNorm"},
    {"ResNet18_AP", resnet_graph, 2, 1, "DC's ResNet-18, stride-2 convs as conv + 2x2 average pooling"},
    {"ResNet18BN_AP", resnet_graph, 3, 1, "DC's ResNet-18_AP with BatchNorm"},
    {"resnet18_modified", tvresnet_graph, 18, 1, "torchvision ResNet-18, 3x3 conv1 and no max-pool (SRe2L, CDA, G-VBSM)"},
    {"resnet50_modified", tvresnet_graph, 50, 1, "torchvision ResNet-50, 3x3 conv1 and no max-pool (SRe2L)"},
    {"MobileNetV2", mobilenetv2_graph, 0, 1, "G-VBSM's CIFAR MobileNetV2 (CRD's mobile_half: t 6, width 0.5)"},
    {"WRN_16_2", wrn_graph, 1602, 1, "G-VBSM's Wide ResNet 16-2 (pre-activation)"},
    {"ShuffleNetV2_0_5", shufflenetv2_graph, 5, 1, "G-VBSM's CIFAR ShuffleNetV2 0.5x"},
};

// other spellings people use for the same models
static const struct {
    const char *alias, *name;
} aliases[] = {
    {"resnet18_squeeze", "resnet18_modified"}, {"tv_resnet18", "resnet18_modified"},
    {"resnet50_squeeze", "resnet50_modified"}, {"tv_resnet50", "resnet50_modified"},
    {"WRN-16-2", "WRN_16_2"},                 {"ShuffleNetV2-0.5", "ShuffleNetV2_0_5"},
    {"mobile_half", "MobileNetV2"},
};

enum { N_TABLE = sizeof(table) / sizeof(table[0]) };

const ModelDef *model_table(int *n) {
    *n = N_TABLE;
    return table;
}

const ModelDef *model_find(const char *arch) {
    if (!arch) return NULL;
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcasecmp(arch, aliases[i].alias)) arch = aliases[i].name;
    int nc;
    const ModelDef *c = convnet_defs(&nc);
    for (int i = 0; i < nc; i++)
        if (!strcasecmp(arch, c[i].name)) return &c[i];
    for (int i = 0; i < N_TABLE; i++)
        if (!strcasecmp(arch, table[i].name)) return &table[i];
    return NULL;
}

const char *model_arch_list(void) {
    // short enough for a one-line error: the ConvNet variants are only pointed to
    static char buf[1024];
    static int done;
    if (!done) {
        size_t off = (size_t)snprintf(buf, sizeof(buf), "ConvNet and its variants (ConvNetD4, ConvNetW64, ConvNetBN, ...)");
        for (int i = 0; i < N_TABLE && off < sizeof(buf); i++)
            off += (size_t)snprintf(buf + off, sizeof(buf) - off, ", %s", table[i].name);
        if (off < sizeof(buf)) snprintf(buf + off, sizeof(buf) - off, "; `beard --help` lists them all");
        done = 1;
    }
    return buf;
}

void model_print_list(FILE *f, const char *indent) {
    int nc;
    const ModelDef *c = convnet_defs(&nc);
    fprintf(f, "%s%-18s %s:\n%s%-18s ", indent, "ConvNet", c[0].about, indent, "");
    size_t col = 0;
    for (int i = 1; i < nc; i++) {
        if (col > 60) fprintf(f, "\n%s%-18s ", indent, ""), col = 0;
        else if (col) col += (size_t)fprintf(f, " ");
        col += (size_t)fprintf(f, "%s%s", c[i].name, i + 1 < nc ? "," : "\n");
    }
    for (int i = 0; i < N_TABLE; i++) fprintf(f, "%s%-18s %s\n", indent, table[i].name, table[i].about);
}

static int build(Net *net, const ModelDef *d, int channel, int n_classes, int im_h, int im_w, int shapes_only, Err *e) {
    if (channel < 1 || channel > 4) return err_set(e, "%s: %d input channels (1 to 4 are supported)", d->name, channel);
    if (n_classes < 1 || im_h < 1 || im_w < 1) return err_set(e, "%s needs at least one class and a non-empty input", d->name);
    ModelSpec s = {d->name, d->variant, channel, n_classes, im_h, im_w};
    int rc = d->graph(net, &s, e);
    if (rc == 0) rc = shapes_only ? net_finish_shapes(net, e) : net_finish(net, e);
    if (rc) {
        err_wrap(e, "%s for %dx%dx%d input", d->name, channel, im_h, im_w);
        net_free(net);
    }
    return rc;
}

int model_create(Net *net, const char *arch, int channel, int n_classes, int im_h, int im_w, Err *e) {
    memset(net, 0, sizeof(*net));
    const ModelDef *d = model_find(arch);
    if (!d) return err_set(e, "unknown architecture '%s' (known: %s)", arch ? arch : "", model_arch_list());
    return build(net, d, channel, n_classes, im_h, im_w, 0, e);
}

int model_infer_arch(const TensorDict *sd, int channel, int n_classes, int im_h, int im_w, char *arch, size_t n,
                     Err *e) {
    int nc, found = 0, best_match = -1;
    const ModelDef *c = convnet_defs(&nc);
    char names[256] = "", best[32] = "";
    Err why = {{0}}, best_why = {{0}};
    for (int i = 0; i < nc + N_TABLE; i++) {
        const ModelDef *d = i < nc ? &c[i] : &table[i - nc];
        if (!d->inferable) continue;
        Net net;
        memset(&net, 0, sizeof(net));
        Err be;
        if (build(&net, d, channel, n_classes, im_h, im_w, 1, &be)) continue; // cannot take this input
        int match = 0;
        if (net_check_state_dict(&net, sd, 1, &match, &why) == 0) {
            if (found++ == 0) snprintf(arch, n, "%s", d->name);
            size_t l = strlen(names);
            snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", d->name);
        } else if (match > best_match) {
            best_match = match;
            snprintf(best, sizeof(best), "%s", d->name);
            best_why = why;
        }
        net_free(&net);
    }
    if (found == 1) return 0;
    if (found > 1) return err_set(e, "the checkpoint fits several architectures (%s): name one with --arch", names);
    if (best[0])
        return err_set(e, "no architecture has this checkpoint's keys for %dx%dx%d input and %d classes; closest is %s: %s",
                       channel, im_h, im_w, n_classes, best, best_why.msg);
    return err_set(e, "no architecture takes %dx%dx%d input", channel, im_h, im_w);
}
