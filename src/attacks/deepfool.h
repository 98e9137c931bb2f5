/*
 * deepfool.h: DeepFool's batch run (deepfool.c), for attacks that run it as a part
 * (SparseFool).
 */
#ifndef BEARD_DEEPFOOL_H
#define BEARD_DEEPFOOL_H

#include "attack.h"

// torchattacks' DeepFool.forward_return_target_labels on x (B, D) with labels y: x_adv
// (B, D), and when targets is not NULL, each sample's target label (B): the class its last
// step moved towards, or the prediction that stopped it. ulps: the dither (deepfool.c).
int deepfool_run_batch(const AttackCtx *ctx, const float *x, const int *y, int B, int steps, double overshoot, int ulps,
                    float *x_adv, int *targets, Err *e);

#endif
