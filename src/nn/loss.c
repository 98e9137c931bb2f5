/*
 * loss.c: cross-entropy from logits through log-sum-exp (torch.nn.functional.cross_entropy,
 * mean reduction), with hard labels or soft (probability) targets.
 *   hard: loss_i = logsumexp(z_i) - z_i[y_i],        dz_i = softmax(z_i) - onehot(y_i)
 *   soft: loss_i = -sum_k t_ik log_softmax(z_i)_k,   dz_i = softmax(z_i) * sum_k t_ik - t_i
 * The batch loss is the mean of loss_i, so the batch gradient carries a 1/B.
 */
#include <math.h>

#include "nn.h"

// log-sum-exp of one row, and the softmax into p (may be NULL)
static double logsumexp_row(real *p, const real *z, int K) {
    real mx = -INFINITY;
    for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double s = 0.0;
    for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
    double lse = mx + log(s);
    if (p)
        for (int k = 0; k < K; k++) p[k] = (real)exp((double)z[k] - lse);
    return lse;
}

double crossentropy_sample(real *dlogits, const real *logits, int label, int K) {
    double lse = logsumexp_row(dlogits, logits, K);
    if (dlogits) dlogits[label] -= 1.0f;
    return lse - logits[label];
}

double crossentropy_forward_backward(real *dlogits, const real *logits, const int *labels, const real *targets,
                                     int B, int K) {
    double total = 0.0;
    real invB = 1.0f / (real)B;
    for (int b = 0; b < B; b++) {
        const real *z = logits + (size_t)b * K;
        real *dz = dlogits ? dlogits + (size_t)b * K : NULL;
        double lse = logsumexp_row(dz, z, K);
        if (targets) {
            const real *t = targets + (size_t)b * K;
            double tsum = 0.0, l = 0.0;
            for (int k = 0; k < K; k++) {
                tsum += t[k];
                l -= (double)t[k] * ((double)z[k] - lse);
            }
            total += l;
            if (dz)
                for (int k = 0; k < K; k++) dz[k] = (real)((dz[k] * tsum - t[k]) * invB);
        } else {
            total += lse - z[labels[b]];
            if (dz) {
                dz[labels[b]] -= 1.0f;
                for (int k = 0; k < K; k++) dz[k] *= invB;
            }
        }
    }
    return total / B;
}
