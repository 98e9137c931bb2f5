/*
 * checkpoint.h: a model from a file. Builds the architecture by name and fills it from
 * a PyTorch .pt/.pth state_dict (zip or legacy format, `module.` prefixes dropped) or a
 * .safetensors file. With arch NULL, "" or "auto" the architecture is inferred from the
 * state_dict's names and shapes (model_infer_arch: an error when none or several fit).
 */
#ifndef BEARD_CHECKPOINT_H
#define BEARD_CHECKPOINT_H

#include "net.h"

int checkpoint_load(Net *net, const char *path, const char *arch, int channel, int n_classes, int im_h, int im_w,
                    Err *e);
// writes the model's state_dict: .safetensors by extension, otherwise PyTorch's zip format
int checkpoint_save(const Net *net, const char *path, Err *e);

#endif
