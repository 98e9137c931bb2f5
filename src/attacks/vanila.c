/*
 * vanila.c: VANILA, torchattacks 3.5.1's null attack (the spelling is torchattacks'): the
 * "adversarial" example is the input itself, so its robust accuracy is the clean
 * accuracy. Useful as a baseline row and to check a pipeline. No parameters; untargeted
 * only, as torchattacks (supported_mode "default"). No deliberate differences.
 */
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {NULL},
};

static int vanila_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    memcpy(x_adv, x, sizeof(float) * (size_t)B * ctx->D);
    attack_progress(ctx, 1.0);
    return 0;
}

const AttackDef attack_vanila = {
    .name = "VANILA",
    .aliases = "vanila,vanilla,none_attack",
    .summary = "no attack: returns the input (torchattacks' VANILA baseline)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = vanila_run,
};
