/*
 * loss_tangent.c: the tangent of cross-entropy's logit gradient (see tangent.h).
 * With p = softmax(z) and the mean over a batch of B,
 *   dz   = (tsum p - t) / B                  (hard labels: t one-hot, tsum = 1)
 *   t_dz = tsum (diag(p) - p p^T) t_z / B = tsum p (t_z - p . t_z) / B
 * The labels drop out: the Hessian of cross-entropy in the logits does not depend on them.
 */
#include <math.h>

#include "tangent.h"

void crossentropy_backward_tangent(real *tdlogits, const real *logits, const real *tlogits, const real *targets, int B,
                                   int K) {
    for (int b = 0; b < B; b++) {
        const real *z = logits + (size_t)b * K, *tz = tlogits + (size_t)b * K;
        real *tdz = tdlogits + (size_t)b * K;
        double mx = -INFINITY;
        for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
        double lse = mx + log(s), ptz = 0.0, tsum = 1.0;
        for (int k = 0; k < K; k++) ptz += exp((double)z[k] - lse) * tz[k];
        if (targets) {
            tsum = 0.0;
            for (int k = 0; k < K; k++) tsum += targets[(size_t)b * K + k];
        }
        for (int k = 0; k < K; k++) tdz[k] = (real)(tsum * exp((double)z[k] - lse) * (tz[k] - ptz) / B);
    }
}
