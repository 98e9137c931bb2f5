/*
 * checkpoint.h: a model from a file. Builds the architecture by name and fills it from
 * a PyTorch .pt/.pth state_dict (zip or legacy format, `module.` prefixes dropped) or a
 * .safetensors file.
 *
 * Refused, with the tensor named: weights that are not floating point (a checkpoint
 * cast to int64 would load as a different model) and weights holding NaN or Inf. A
 * model with NaN weights has NaN logits, predicts one class whatever the input, and so
 * "resists" every attack: it would report robustness it does not have.
 *
 * .safetensors file. With arch NULL, "" or "auto" the architecture is inferred from the
 * state_dict's names and shapes (model_infer_arch: an error when none or several fit).
 */
#ifndef BEARD_CHECKPOINT_H
#define BEARD_CHECKPOINT_H

#include "net.h"

// the weight checks above on a state_dict (num_batches_tracked counters may be integers)
int checkpoint_check_weights(const TensorDict *sd, Err *e);
int checkpoint_load(Net *net, const char *path, const char *arch, int channel, int n_classes, int im_h, int im_w,
                    Err *e);
// writes the model's state_dict: .safetensors by extension, otherwise PyTorch's zip format
int checkpoint_save(const Net *net, const char *path, Err *e);

#endif
