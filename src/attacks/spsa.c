/*
 * spsa.c: SPSA (Uesato, O'Donoghue, van den Oord & Kohli, "Adversarial Risk and the
 * Dangers of Evaluating Against Weak Attacks", arXiv:1802.05666), a gradient-free Linf
 * attack, as torchattacks 3.5.1 SPSA computes it (code from advertorch). Forward passes
 * only.
 *
 * Per sample, nb_iter times:
 *   g = 1/nb_sample * sum_j (f(x' + delta v_j) - f(x' - delta v_j)) / (2 delta v_j)
 *     with x' = x + dx, v_j Rademacher (+-1 per value), f the marginal loss
 *     f = z_y - max_{k!=y} z_k (targeted: max_{k!=t} z_k - z_t), to be minimised; the
 *     probes are not clamped to the box. The sum runs in groups of max_batch_size
 *     probes, as torchattacks accumulates it.
 *   dx <- Adam step on g (torch.optim.Adam, lr, betas (0.9, 0.999), eps 1e-8, its bias
 *     corrections; one optimiser, so the step count is shared by the iterations)
 *   dx <- clamp(x + clamp(dx, -eps, eps), 0, 1) - x (added in place as torchattacks does:
 *     dx += (x_adv - x) - dx)
 * and x_adv = x + dx. torchattacks' defaults are one iteration of 128 probes with
 * delta = lr = 0.01, so the result is x moved by about lr * sign(g), and eps = 0.3.
 * BEARD passes eps = 8/255 (preset beard). (BEARD's untargeted "Spsa" branch actually runs
 * AutoAttack, a bug in its eva_utils.py that beard does not reproduce: SPSA is SPSA.)
 *
 * Deliberate differences:
 * - torchattacks draws nb_sample probe directions per batch (every image of the batch
 *   gets the same v_j), from torch's generator. beard draws each sample's own v_j from
 *   its Philox stream (attack_rng, stream 0x3000 + iteration): the same per-sample
 *   distribution, other values, and no dependence on the batch size or thread count.
 * - The probes of many samples go through the network together, in batches of up to
 *   2 * max(128, max_batch_size) inputs (max_batch_size only sets the summation groups).
 */
#include <string.h>

#include "apgd.h"

static const AttackParamDef params[] = {
    {"eps", 0.3, 8.0 / 255, P_SAME, "maximum Linf perturbation", AP_EPS_LINF},
    {"delta", 0.01, P_SAME, P_SAME, "finite-difference step of the probes", AP_POS(1)},
    {"lr", 0.01, P_SAME, P_SAME, "Adam learning rate", AP_POS(1e6)},
    {"nb_iter", 1, P_SAME, P_SAME, "iterations (Adam steps)", AP_STEPS},
    {"nb_sample", 128, P_SAME, P_SAME, "probes per gradient estimate", AP_INT(1, 1000000)},
    {"max_batch_size", 64, P_SAME, P_SAME, "probes summed per group (torchattacks' evaluation batch)", AP_INT(1, 1000000)},
    {NULL},
};

// advertorch's MarginalLoss, negated for untargeted attacks: the value SPSA minimises
static float spsa_loss(const float *z, int K, int label, int targeted) {
    // torch.topk(2): the largest and second largest; ties: the lower index first
    int t0 = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[t0]) t0 = k;
    int t1 = t0 == 0 ? 1 : 0;
    for (int k = 0; k < K; k++)
        if (k != t0 && z[k] > z[t1]) t1 = k;
    float other = t0 == label ? z[t1] : z[t0];
    float l = other - z[label];
    return targeted ? l : -l;
}

static int spsa_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D, nd = D * B;
    int K = ctx->K, targeted = ctx->targeted;
    const int *lab = targeted ? t : y;
    float eps = (float)attack_param(ctx, "eps"), delta = (float)attack_param(ctx, "delta");
    double lr = attack_param(ctx, "lr");
    int iters = attack_param_int(ctx, "nb_iter"), ns = attack_param_int(ctx, "nb_sample");
    int group = attack_param_int(ctx, "max_batch_size");
    if (ns < 1 || group < 1) return err_set(e, "nb_sample and max_batch_size must be positive");
    if (K < 2) return err_set(e, "SPSA's marginal loss needs at least 2 classes");
    int P = MAX(128, group); // probes (pairs of inputs) per forward call
    float *dx = xcalloc(sizeof(float) * nd), *m1 = xcalloc(sizeof(float) * nd), *m2 = xcalloc(sizeof(float) * nd);
    float *grad = xmalloc(sizeof(float) * nd), *part = xmalloc(sizeof(float) * nd), *xc = xmalloc(sizeof(float) * nd);
    float *in = xmalloc(sizeof(float) * D * 2 * P), *vs = xmalloc(sizeof(float) * D * P);
    float *logits = xmalloc(sizeof(float) * (size_t)K * 2 * P);
    int *pb = xmalloc(sizeof(int) * P), *pj = xmalloc(sizeof(int) * P);
    Rng *rng = xmalloc(sizeof(Rng) * B);
    int rc = -1;
    if (!dx || !m1 || !m2 || !grad || !part || !xc || !in || !vs || !logits || !pb || !pj || !rng) {
        err_set(e, "out of memory");
        goto done;
    }
    const float two_delta = (float)(2.0 * (double)delta);
    const float b1 = 0.9f, b2 = 0.999f, one_b1 = (float)(1.0 - 0.9), one_b2 = (float)(1.0 - 0.999);
    long total = (long)B * ns, done_probes = 0;
    for (int it = 0; it < iters; it++) {
        for (size_t j = 0; j < nd; j++) xc[j] = x[j] + dx[j];
        memset(grad, 0, sizeof(float) * nd);
        memset(part, 0, sizeof(float) * nd);
        for (int b = 0; b < B; b++) attack_rng(ctx, b, 0x3000u + (uint32_t)(it & 0xfff), &rng[b]);
        // the (sample, probe) pairs in order, P at a time
        for (long q0 = 0; q0 < total; q0 += P) {
            int np = (int)MIN((long)P, total - q0);
            for (int p = 0; p < np; p++) {
                long q = q0 + p;
                int b = (int)(q / ns), j = (int)(q % ns);
                pb[p] = b, pj[p] = j;
                float *v = vs + p * D, *xp = in + (2 * p) * D, *xm = in + (2 * p + 1) * D;
                const float *x0 = xc + b * D;
                uint32_t bits = 0;
                for (size_t k = 0; k < D; k++) {
                    if ((k & 31) == 0) bits = rng_u32(&rng[b]);
                    v[k] = (bits >> (k & 31)) & 1 ? 1.0f : -1.0f;
                    float dv = delta * v[k];
                    xp[k] = x0[k] + dv;
                    xm[k] = x0[k] - dv;
                }
            }
            if (attack_logits(ctx, in, 2 * np, logits, e)) goto done;
            for (int p = 0; p < np; p++) {
                int b = pb[p], j = pj[p];
                float df = spsa_loss(logits + (size_t)(2 * p) * K, K, lab[b], targeted) -
                           spsa_loss(logits + (size_t)(2 * p + 1) * K, K, lab[b], targeted);
                const float *v = vs + p * D;
                float *pt = part + b * D;
                for (size_t k = 0; k < D; k++) pt[k] += df / (two_delta * v[k]);
                // end of a summation group (or of this sample's probes): add it to grad
                if ((j + 1) % group == 0 || j == ns - 1) {
                    float *g = grad + b * D;
                    for (size_t k = 0; k < D; k++) g[k] += pt[k], pt[k] = 0.0f;
                }
            }
            done_probes += np;
            attack_progress(ctx, ((double)it + (double)done_probes / total) / iters);
        }
        done_probes = 0;
        // Adam (torch.optim.Adam defaults), step it + 1
        int step = it + 1;
        double bc1 = 1.0 - pow(0.9, step), bc2 = 1.0 - pow(0.999, step);
        float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        for (size_t j = 0; j < nd; j++) {
            float g = grad[j] / (float)ns;
            m1[j] = m1[j] * b1 + g * one_b1;
            m2[j] = m2[j] * b2 + one_b2 * g * g;
            float denom = sqrtf(m2[j]) / bc2_sqrt + 1e-8f;
            dx[j] = dx[j] + -step_size * (m1[j] / denom);
            // linf_clamp_
            float dc = clampf(dx[j], -eps, eps);
            float xa = clampf(x[j] + dc, 0.0f, 1.0f);
            dx[j] += xa - x[j] - dx[j];
        }
    }
    for (size_t j = 0; j < nd; j++) x_adv[j] = x[j] + dx[j];
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    xfree(dx), xfree(m1), xfree(m2), xfree(grad), xfree(part), xfree(xc), xfree(in), xfree(vs), xfree(logits);
    xfree(pb), xfree(pj), xfree(rng);
    return rc;
}

const AttackDef attack_spsa = {
    .name = "SPSA",
    .aliases = "spsa",
    .summary = "SPSA, gradient-free Linf attack with Adam on finite-difference estimates (arXiv:1802.05666)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = spsa_run,
};
