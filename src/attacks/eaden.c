/*
 * eaden.c: EAD with the elastic-net decision rule (Chen et al., arXiv:1709.04114), as
 * torchattacks 3.5.1 EADEN computes it: EADL1's run (eadl1.c, which holds the algorithm
 * and every reproduced detail) keeping, among successful iterates, the one with the
 * smallest ||delta||_2^2 + beta ||delta||_1 instead of the smallest ||delta||_1.
 */
#include "attack.h"

extern const AttackParamDef attack_ead_params[];
int attack_ead_run(const AttackCtx *ctx, const float *x0, const int *y, const int *t, int B, float *x_adv, int elastic,
                   Err *e);

static int eaden_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_ead_run(ctx, x, y, t, B, x_adv, 1, e);
}

const AttackDef attack_eaden = {
    .name = "EADEN",
    .aliases = "eaden,ead_en",
    .summary = "EAD elastic-net attack, elastic-net decision rule (arXiv:1709.04114)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = attack_ead_params,
    .run = eaden_run,
};
