/*
 * vnifgsm.c: Variance-tuned NI-FGSM (Wang and He, arXiv:2103.15571), as torchattacks
 * 3.5.1 VNIFGSM computes it: VMI-FGSM (vmifgsm.c, which holds the step and the details)
 * with the gradient taken at the Nesterov point x_k + decay * alpha * m; the variance's
 * neighbours are still drawn around x_k. Same parameters, same deliberate differences.
 */
#include "transfer.h"

static int vnifgsm_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    return attack_vmifgsm_run(ctx, x, y, t, B, x_adv, 1, e);
}

const AttackDef attack_vnifgsm = {
    .name = "VNIFGSM",
    .aliases = "vnifgsm,vni_fgsm,vt_nifgsm",
    .summary = "Variance-tuned NI-FGSM, Linf (arXiv:2103.15571)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = attack_vmi_params,
    .run = vnifgsm_run,
};
