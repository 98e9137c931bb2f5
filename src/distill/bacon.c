/*
 * bacon.c: BACON (Zhou et al., "BACON: Bayesian Optimal Condensation Framework for
 * Dataset Distillation", arXiv:2406.01112), as zhouzhengqd/BACON Code/BACON_cifar10.py
 * runs it: IDM's loop (idm.c: model queue, partition and expansion, the class-aware CE
 * term, per-class image steps, command.txt's settings) with IDM's mean-embedding loss
 * replaced by the Bayesian matching loss, exactly as the code computes it (utils.py),
 * whatever the paper's notation says. With mr, ms the batch means of the real and the
 * synthetic embeddings and sr the real embeddings' std (unbiased, torch.std):
 *
 *   nll  = -sum_j log( exp(-0.5 ((ms_j - mr_j) / s_j)^2) / (sqrt(2 pi) s_j) ),  s = exp(sr)
 *   tv   = 0.5 sum_j |ms_j - mr_j|
 *   clip = clip_function(softmax(ms), softmax(mr)): mean(x - clamp(x, 0, 1))^2 with
 *          x = (mean(softmax(ms)) - mean(softmax(mr))) / std(softmax(mr)), scalar means over
 *          the embedding; both means are 1/E up to float rounding, so this term is
 *          essentially 0 and so is its gradient; beard computes it as the code does
 *   loss = nll + 0.8 tv + 0.2 clip  (+ IDM's CE term)
 *
 * The Gaussian density is formed in float32 and then its log taken, as the code does, so
 * an underflow gives the same infinite loss (which stops the run). Gradients are the
 * analytic ones: (ms - mr) / s^2 for the nll, 0.5 sign(ms - mr) for tv (sign(0) = 0, as
 * autograd's abs), and the clip term through softmax's Jacobian, all divided by the
 * synthetic batch size (the mean).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "idm.h"

static double bacon_loss(const float *er, int nr, const float *es, int ns, size_t E, float *g, float *scratch) {
    float *mr = scratch, *ms = scratch + E, *sr = scratch + 2 * E, *pr = scratch + 3 * E;
    for (size_t j = 0; j < E; j++) {
        double a = 0, b = 0;
        for (int i = 0; i < nr; i++) a += er[(size_t)i * E + j];
        for (int i = 0; i < ns; i++) b += es[(size_t)i * E + j];
        mr[j] = (float)(a / nr), ms[j] = (float)(b / ns);
        double v = 0;
        for (int i = 0; i < nr; i++) {
            double d = (double)er[(size_t)i * E + j] - a / nr;
            v += d * d;
        }
        sr[j] = (float)sqrt(v / (nr - 1)); // nr = 1: NaN, as torch.std
    }
    // nll and tv
    const float c = sqrtf(2.0f * (float)M_PI);
    double nll = 0, tv = 0;
    for (size_t j = 0; j < E; j++) {
        float sigma = expf(sr[j]), d = ms[j] - mr[j], z = d / sigma;
        float pdf = 1.0f / (c * sigma) * expf(-0.5f * z * z);
        nll -= (double)logf(pdf);
        tv += fabs((double)d);
        float gj = d / (sigma * sigma) + 0.8f * 0.5f * (d > 0 ? 1.0f : (d < 0 ? -1.0f : 0.0f));
        for (int i = 0; i < ns; i++) g[(size_t)i * E + j] = gj / (float)ns;
    }
    tv *= 0.5;
    // clip: softmax of both means, then scalar statistics over the embedding
    float mxs = -INFINITY, mxr = -INFINITY;
    for (size_t j = 0; j < E; j++) mxs = fmaxf(mxs, ms[j]), mxr = fmaxf(mxr, mr[j]);
    double zs = 0, zr = 0;
    for (size_t j = 0; j < E; j++) zs += exp((double)ms[j] - mxs), zr += exp((double)mr[j] - mxr);
    double S = 0, mpr = 0;
    float *ps = sr; // sr is no longer needed
    for (size_t j = 0; j < E; j++) {
        ps[j] = (float)(exp((double)ms[j] - mxs) / zs);
        pr[j] = (float)(exp((double)mr[j] - mxr) / zr);
        S += ps[j];
        mpr += pr[j];
    }
    float mean_ps = (float)(S / (double)E), mean_pr = (float)(mpr / (double)E);
    double vp = 0;
    for (size_t j = 0; j < E; j++) vp += ((double)pr[j] - mean_pr) * ((double)pr[j] - mean_pr);
    float std_pr = (float)sqrt(vp / (double)(E - 1));
    float x = (mean_ps - mean_pr) / std_pr, cl = x < 0 ? 0 : (x > 1 ? 1 : x);
    double clip = (double)(x - cl) * (x - cl);
    // d(0.2 clip)/d ms_j = 0.2 * 2 (x - cl) / std_pr * d mean(ps) / d ms_j, and softmax's
    // Jacobian turns the uniform 1/E into ps_j (1/E - sum_k ps_k / E)
    float k = 0.2f * 2.0f * (x - cl) / std_pr;
    if (k != 0.0f) {
        float inv = 1.0f / (float)E, dot = (float)(S / (double)E);
        for (size_t j = 0; j < E; j++) {
            float gj = k * ps[j] * (inv - dot);
            for (int i = 0; i < ns; i++) g[(size_t)i * E + j] += gj / (float)ns;
        }
    }
    return nll + 0.8 * tv + 0.2 * clip;
}

static void bacon_setting(DistillParams *p, const DatasetInfo *info, int ipc) { idm_setting_for(p, info, ipc, 1); }

static int bacon_step(DistillRun *r, Err *e) { return idm_step_with(r, bacon_loss, e); }

const DistillMethodDef distill_bacon = {
    .name = "BACON",
    .aliases = "",
    .summary = "Bayesian optimal condensation (Zhou et al., arXiv:2406.01112): IDM with the Bayesian matching loss",
    .reference = "zhouzhengqd/BACON Code/BACON_cifar10.py with command.txt's settings",
    .params = idm_params,
    .setting = bacon_setting,
    .setting_help = "per command.txt: IPC 1: batch_real 5000, net_generate_interval 5; IPC 50: ce_weight 0.1, "
                    "eval_interval 500; CIFAR-100 IPC 10: ce_weight 0.1, model_train_steps 50, IPC 50: "
                    "model_train_steps 50; TinyImageNet IPC 10: model_train_steps 50, eval_interval 500",
    .outputs = DISTILL_OUT_RES | DISTILL_OUT_PKL,
    .init_from_ok = 1,
    .init = idm_init,
    .step = bacon_step,
    .save = idm_save,
    .load = idm_load,
    .free = idm_free,
};
