/*
 * deepfool.c: DeepFool (Moosavi-Dezfooli, Fawzi and Frossard, "DeepFool: a simple and
 * accurate method to fool deep neural networks", arXiv:1511.04599), L2, untargeted, as
 * torchattacks 3.5.1 DeepFool computes it.
 *
 * For every sample, at most `steps` times, while its prediction is still its label y:
 *   f_k = z_k(x) - z_y(x),  w_k = grad z_k(x) - grad z_y(x)      for every k != y
 *   l   = argmin_k |f_k| / ||w_k||_2                       (first minimum, as torch.min)
 *   x   = clamp(x + (1 + overshoot) * |f_l| * w_l / ||w_l||_2^2, 0, 1)
 * A sample stops as soon as the forward pass at the start of a step no longer predicts y
 * (samples misclassified from the start come back unchanged); the last update is not
 * checked. Details reproduced on purpose:
 * - the linearisation is always around the label y (f_0 = z_y, w_0 = grad z_y in
 *   torchattacks), never around the current prediction: a step runs only while the two
 *   agree, so it is the same thing;
 * - (1 + overshoot) multiplies each step's delta and the step is taken from the current,
 *   already clamped, iterate; torchattacks keeps no separate r_tot, unlike the paper's
 *   x_0 + (1 + overshoot) * r_tot, so the clamps of earlier steps are never undone;
 * - float32 order: delta = (|f_l| * w_l) / (||w_l||^2), then x + 1.02f * delta, with the
 *   Python scalar 1 + overshoot rounded to float32 as torch's kernels do;
 * - under beard semantics (normalised inputs) the [0, 1] clamp acts in normalised space,
 *   which moves most pixels a long way on the first step; that is BEARD's behaviour.
 * BEARD calls DeepFool(steps=50, overshoot=0.02), torchattacks' defaults, untargeted only
 * ("Deepfool can not support target attack").
 *
 * Float ties, and why beard dithers the check. With the [0, 1] clamp in the way (BEARD's
 * normalised inputs above all), a step often realises only part of the move it asks for,
 * so the margin z_y - z_l shrinks geometrically without ever changing sign, until the
 * iterate sits on the decision boundary to within float32 rounding. For those samples
 * (a third of them under beard semantics: 246 of the first 761 CIFAR-10 test images) the
 * stop, and the final score, are decided by rounding noise; under beard semantics they
 * are in fact BEARD's whole robust accuracy (the other 515 samples are fooled, in
 * torchattacks and in beard alike). In torchattacks the stop check is a batch-of-one
 * forward pass while BEARD scores with a batched one; the two round differently, so 145
 * of the 246 tied samples score as correct. beard's forward pass is the same for any
 * batch, so the check and the runner's score would agree bit for bit and every tied
 * sample that stopped would score as wrong: 72 of 246, 9.5% robust accuracy against
 * torchattacks' 19.1%. To keep the reference's statistics, each step evaluates the
 * iterate with its values inside (0, 1) moved by `dither` float32 ulps up or down at
 * random (a per-sample, per-step Philox stream): that decorrelates the rounding as a
 * different batch size does, while the change in the true logits stays well below the
 * rounding noise; the update is applied to the undithered iterate (135 of the 246 ties
 * then score as correct, 17.7%). The
 * result equals torchattacks' in distribution, not sample for sample (seeds 0..3 on 128
 * images: 18.8, 21.1, 21.1, 25.8% against 22.7%), which is all the reference itself
 * offers: torch on the CPU and on CUDA disagree on 18 of those 128 samples. `--dither 0`
 * turns this off.
 *
 * Speed. torchattacks loops over images and, per image and step, runs a forward pass and
 * K separate autograd backward passes on a batch of one. Here each step handles every
 * still-active sample of the batch at once: a forward pass to see who is fooled, then
 * attack_jacobian (one forward and K backward passes per sample, the activations reused)
 * for the rest. When few samples drop out per step (under 1/(K+1) of them, the point where
 * a wasted Jacobian costs less than the extra forward), the step skips the separate
 * forward and takes the predictions from the Jacobian's own logits. Both orders give the
 * same result bit for bit (a sample's forward pass does not depend on its batch).
 *
 * Deliberate differences: the dither above (on by default; pixel semantics has ties too,
 * 45 of 761 samples); the norms accumulate in double and round to float32 (torch sums in
 * float32). A zero gradient difference gives inf/NaN as in torchattacks.
 */
#include <math.h>
#include <string.h>

#include "deepfool.h"

static const AttackParamDef params[] = {
    {"steps", 50, 50, P_SAME, "maximum number of DeepFool steps per sample", AP_STEPS},
    {"overshoot", 0.02, 0.02, P_SAME, "each step moves (1 + overshoot) times the linearised distance", AP_REAL(0, 100)},
    {"dither", 1, 1, P_SAME, "float32 steps (ulps) by which each step's input is dithered, emulating torchattacks' "
                             "separate batch-of-one forward pass (0: off; see deepfool.c)", AP_INT(0, 64)},
    {NULL},
};

// One DeepFool step on sample x (D), given its logits z (K) and Jacobian J (K, D); the
// label y is still the prediction.
static int deepfool_step(float *x, const float *z, const float *J, int y, int K, size_t D, float os1) {
    const float *Jy = J + (size_t)y * D;
    int best = -1;
    float best_v = 0.0f, best_n = 0.0f;
    for (int k = 0; k < K; k++) {
        if (k == y) continue;
        const float *Jk = J + (size_t)k * D;
        double ss = 0.0;
        for (size_t i = 0; i < D; i++) {
            float w = Jk[i] - Jy[i];
            ss += (double)w * w;
        }
        float nrm = (float)sqrt(ss);
        float v = fabsf(z[k] - z[y]) / nrm;
        // torch.min over the wrong classes: first minimum, NaN wins
        if (best < 0 || (!isnan(best_v) && (v < best_v || isnan(v)))) best = k, best_v = v, best_n = nrm;
    }
    const float *Jl = J + (size_t)best * D;
    float af = fabsf(z[best] - z[y]), n2 = best_n * best_n;
    for (size_t i = 0; i < D; i++) {
        float delta = af * (Jl[i] - Jy[i]) / n2;
        x[i] = clampf(x[i] + os1 * delta, 0.0f, 1.0f);
    }
    return best;
}

// Copies sample b's iterate into dst for step `step`'s passes, every value strictly inside
// (0, 1) moved `ulps` float32 steps up or down (a per-sample, per-step Philox stream; see
// the header). Values on the box's faces stay put: they are where the clamps put them.
static void gather(const AttackCtx *ctx, float *dst, const float *src, int b, int step, int ulps, size_t D) {
    memcpy(dst, src, sizeof(float) * D);
    if (ulps <= 0) return;
    Rng r;
    attack_rng(ctx, b, 1 + (uint32_t)(step % 65535), &r);
    uint32_t bits = 0;
    for (size_t i = 0; i < D; i++) {
        if ((i & 31) == 0) bits = rng_u32(&r);
        float v = dst[i], to = (bits >> (i & 31)) & 1 ? INFINITY : -INFINITY;
        if (!(v > 0.0f && v < 1.0f)) continue;
        for (int u = 0; u < ulps; u++) v = nextafterf(v, to);
        dst[i] = v;
    }
}

int deepfool_run_batch(const AttackCtx *ctx, const float *x, const int *y, int B, int steps, double overshoot, int ulps,
                    float *x_adv, int *targets, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K;
    float os1 = (float)(1.0 + overshoot);
    // the Jacobian of a chunk of samples; bounded so that many classes or large inputs do
    // not ask for gigabytes at once
    size_t per = (size_t)K * D;
    int chunk = (int)MIN((size_t)B, (size_t)(64u << 20) / per);
    if (chunk < 1) chunk = 1;
    int *act = xmalloc(sizeof(int) * B), *live = xmalloc(sizeof(int) * B), *keep = xmalloc(sizeof(int) * B);
    float *xa = xmalloc(sizeof(float) * B * D), *z = xmalloc(sizeof(float) * B * K);
    float *jz = xmalloc(sizeof(float) * chunk * K), *jac = xmalloc(sizeof(float) * chunk * per);
    int rc = -1;
    if (!act || !live || !keep || !xa || !z || !jz || !jac) {
        err_set(e, "out of memory for DeepFool on %d samples", B);
        goto done;
    }
    memcpy(x_adv, x, sizeof(float) * B * D);
    int n_act = B, jac_first = 0;
    for (int b = 0; b < B; b++) act[b] = b;
    for (int s = 0; s < steps && n_act > 0; s++) {
        int n_live = 0, fooled = 0;
        if (!jac_first) {
            // who is still classified as y (torchattacks' early stop)
            for (int j = 0; j < n_act; j++) gather(ctx, xa + j * D, x_adv + act[j] * D, act[j], s, ulps, D);
            if (attack_logits(ctx, xa, n_act, z, e)) goto done;
            for (int j = 0; j < n_act; j++) {
                int b = act[j], pre = logits_argmax(z + (size_t)j * K, K);
                if (pre == y[b]) live[n_live++] = b;
                else {
                    fooled++;
                    if (targets) targets[b] = pre;
                }
            }
        } else {
            memcpy(live, act, sizeof(int) * n_act);
            n_live = n_act;
        }
        int n_next = 0;
        for (int c0 = 0; c0 < n_live; c0 += chunk) {
            int nc = MIN(chunk, n_live - c0);
            for (int j = 0; j < nc; j++) gather(ctx, xa + j * D, x_adv + live[c0 + j] * D, live[c0 + j], s, ulps, D);
            if (attack_jacobian(ctx, xa, nc, jz, jac, e)) goto done;
#pragma omp parallel for schedule(dynamic)
            for (int j = 0; j < nc; j++) {
                int b = live[c0 + j];
                const float *zj = jz + (size_t)j * K;
                int pre = logits_argmax(zj, K);
                keep[j] = pre == y[b];
                if (keep[j]) pre = deepfool_step(x_adv + b * D, zj, jac + j * per, y[b], K, D, os1);
                if (targets) targets[b] = pre; // torchattacks' target_labels: the class stepped towards,
                                               // or the prediction that stopped the sample
            }
            for (int j = 0; j < nc; j++) {
                if (keep[j]) act[n_next++] = live[c0 + j];
                else fooled++;
            }
        }
        // the next step starts with the Jacobian when few samples drop out per step
        jac_first = n_act > 0 && (double)fooled * (K + 1) < n_act;
        n_act = n_next;
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    xfree(act), xfree(live), xfree(keep), xfree(xa), xfree(z), xfree(jz), xfree(jac);
    return rc;
}

static int deepfool_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv,
                        Err *e) {
    return deepfool_run_batch(ctx, x, y, B, attack_param_int(ctx, "steps"), attack_param(ctx, "overshoot"),
                           attack_param_int(ctx, "dither"), x_adv, NULL, e);
}

const AttackDef attack_deepfool = {
    .name = "DeepFool",
    .aliases = "deepfool,deep_fool,df",
    .summary = "DeepFool, L2 minimal perturbation by linearisation (arXiv:1511.04599)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = deepfool_run,
};
