/*
 * convnet.h: DC-bench/BEARD's ConvNet family (the registry, model_create, is in registry.h).
 */
#ifndef BEARD_CONVNET_H
#define BEARD_CONVNET_H

#include "net.h"
#include "registry.h"

typedef struct {
    char arch[32];
    int width, depth;
    char act[16], norm[16], pool[16];
} ConvNetConfig;

// the configuration of a named variant (ConvNet, ConvNetD4, ConvNetW64, ConvNet_BN, ...);
// -1 when the name is unknown
int convnet_config_for(const char *arch, ConvNetConfig *cfg);
int convnet_build(Net *net, const ConvNetConfig *cfg, int channel, int n_classes, int im_h, int im_w, Err *e);
// the family's registry entries, one per variant name
const ModelDef *convnet_defs(int *n);

#endif
