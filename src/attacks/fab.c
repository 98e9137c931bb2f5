/*
 * fab.c: the Fast Adaptive Boundary attack (Croce and Hein, "Minimally distorted
 * adversarial examples with a fast adaptive boundary attack", arXiv:1907.02044), Linf, L2
 * and L1, untargeted and multi-targeted, as torchattacks 3.5.1 FAB computes it (which is
 * fra31/auto-attack's fab_pt.py / fab_projections.py with other defaults).
 *
 * perturb: only the samples still classified correctly are attacked; for each restart
 * (restart r > 0 starts from a random point at half the eps radius) one run:
 *   x1 = x; res = 1e10; adv = x
 *   repeat steps:
 *     linearise the classifier at x1: f_k = z_k - z_y, g_k = grad z_k - grad z_y (f_y is
 *       set to 1e10); multi-targeted: the single pair (target, y), f = z_t - z_y
 *     l = argmin_k |f_k| / ||g_k||_q  (q the dual norm: L1 of g for Linf, L2, Linf for L1)
 *     d1, d2 = projections of x1 and of x onto the hyperplane {g_l.(u - x1) + f_l = 0}
 *              intersected with the box [0, 1] (fab_projections' exact algorithms)
 *     alpha = clamp(|d1| / (|d1| + |d2|), 0, alpha_max)   (norms floored at 1e-8)
 *     x1 = clamp((x1 + eta d1)(1 - alpha) + (x + eta d2) alpha, 0, 1)
 *     if x1 is misclassified: keep it if |x1 - x| < res (res = that norm), and step back
 *       x1 = x + beta (x1 - x)
 * and a sample counts as broken only if the run found an adversarial example AND its
 * distance |adv - x| is at most eps; otherwise it keeps its clean input. Multi-targeted
 * FAB does this for the target classes ranked 2, 3, ..., n_classes by the clean logits
 * (the n_classes - 1 most likely wrong classes), each on the samples still unbroken.
 *
 * Why FAB leaves accuracy at the clean value under beard semantics: there x is normalised
 * (values from about -2.4 to 2.8) and every step ends in a clamp to [0, 1], so whatever
 * FAB finds lies in the box, at an Linf distance of order 1 from x, far beyond eps =
 * 8/255. The final eps check (torchattacks' `acc_curr = torch.max(acc_curr, res >
 * self.eps)`) rejects every one of them and each sample keeps its clean input. beard runs
 * the same check in attack space and gets the same outcome for the same reason (761 of
 * 761 samples agree with torchattacks, FAB and FAB_T alike).
 *
 * Parameters: torchattacks' FAB(norm='Linf', eps=8/255, steps=10, n_restarts=1,
 * alpha_max=0.1, eta=1.05, beta=0.9, seed=0, multi_targeted=False, n_classes=10). BEARD
 * uses FAB only inside AutoAttack (multi_targeted, n_classes 10, n_restarts 1, steps 10).
 * fra31's FABAttack differs in its defaults (n_iter 100, n_target_classes 9, i.e.
 * n_classes 10; eps defaults to 0.3 for Linf there but AutoAttack always passes its own).
 * torchattacks' user-targeted mode is not offered: its target labels index the full batch
 * while the attack runs on the correctly classified subset, and under
 * set_mode_targeted_by_label the "labels" it scores against are the targets themselves.
 *
 * Deliberate differences:
 * - the random restarts draw from beard's per-sample Philox streams, not torch's
 *   generator (equal in distribution, not in value); with n_restarts 1 (every preset)
 *   FAB draws nothing and is deterministic;
 * - sums accumulate in double and round to float32 (torch: float32 sums; its CPU cumsum
 *   also accumulates in double); argsort is stable (index order among ties, as torch's
 *   CPU sort);
 * - torchattacks computes no final distance for norm L1 (an UnboundLocalError); beard
 *   uses fra31's L1 distance;
 * - the forward passes torchattacks repeats on inputs it has already classified (the
 *   clean batch in every run, the returned adversarial examples) are not repeated: a
 *   sample's forward pass here does not depend on the batch, so the answers are known.
 *
 * Cost per step and attacked sample: untargeted, one forward and K backward passes for the
 * class Jacobian (attack_jacobian) plus one forward for the misclassification check;
 * targeted, one forward and one backward for the gradient of z_t - z_y plus the check.
 */
#include "fab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const AttackParamDef params[] = {
    {"norm", FAB_LINF, P_SAME, P_SAME, "norm to minimise", AP_CHOICE("Linf,L2,L1")},
    {"eps", 8.0 / 255, P_SAME, P_SAME, "largest accepted perturbation (and the random-restart radius)", AP_EPS_L2},
    {"steps", 10, P_SAME, 100, "steps per run", AP_STEPS},
    {"n_restarts", 1, P_SAME, P_SAME, "runs per sample (and target class); run r > 0 starts at random", AP_INT(1, 1000)},
    {"alpha_max", 0.1, P_SAME, P_SAME, "largest weight of the step from the original point", AP_REAL(0, 1)},
    {"eta", 1.05, P_SAME, P_SAME, "overshoot of the projection step", AP_REAL(1, 100)},
    {"beta", 0.9, P_SAME, P_SAME, "backward step towards the original point after a success", AP_REAL(0, 1)},
    {"multi_targeted", 0, P_SAME, P_SAME, "attack the n_classes - 1 most likely wrong classes one by one (1/0)", AP_BOOL},
    {"n_classes", 10, P_SAME, P_SAME, "multi-targeted: classes ranked 2 .. n_classes by the clean logits are targets", AP_INT(2, 100000)},
    {NULL},
};

typedef struct {
    const AttackCtx *ctx;
    int norm, steps, K;
    size_t D;
    float eps, alpha_max, eta, beta;
    double done, total; // progress, in steps
} Fab;

// ----------------------------------------------------------------------------
// NaN-propagating min/max (torch.min, torch.max, clamp_min elementwise)

static inline float tmin(float a, float b) { return isnan(a) || isnan(b) ? NAN : (a < b ? a : b); }
static inline float tmax(float a, float b) { return isnan(a) || isnan(b) ? NAN : (a > b ? a : b); }

// ----------------------------------------------------------------------------
// projections onto {u : w.u = b} intersected with the box [0, 1], as fab_projections.py

typedef struct {
    float key;
    int idx;
} KeyIdx;

// ascending, NaN last, ties by index (a stable argsort)
static int keyidx_cmp(const void *pa, const void *pb) {
    const KeyIdx *a = pa, *b = pb;
    int na = isnan(a->key), nb = isnan(b->key);
    if (na != nb) return na - nb;
    if (!na && a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->idx - b->idx;
}

typedef struct {
    float *w, *p, *s, *sb, *rs, *rs2, *ws;
    int *idx, *rev;
    KeyIdx *kv;
} ProjScratch;

static int proj_scratch_alloc(ProjScratch *s, size_t D) {
    memset(s, 0, sizeof(*s));
    s->w = malloc(sizeof(float) * D);
    s->p = malloc(sizeof(float) * D);
    s->s = malloc(sizeof(float) * (D + 1));
    s->sb = malloc(sizeof(float) * D);
    s->rs = malloc(sizeof(float) * D);
    s->rs2 = malloc(sizeof(float) * D);
    s->ws = malloc(sizeof(float) * D);
    s->idx = malloc(sizeof(int) * D);
    s->rev = malloc(sizeof(int) * D);
    s->kv = malloc(sizeof(KeyIdx) * D);
    return s->w && s->p && s->s && s->sb && s->rs && s->rs2 && s->ws && s->idx && s->rev && s->kv ? 0 : -1;
}

static void proj_scratch_free(ProjScratch *s) {
    free(s->w), free(s->p), free(s->s), free(s->sb), free(s->rs), free(s->rs2), free(s->ws);
    free(s->idx), free(s->rev), free(s->kv);
}

static void argsort(int *idx, const float *key, size_t D, KeyIdx *kv) {
    for (size_t i = 0; i < D; i++) kv[i].key = key[i], kv[i].idx = (int)i;
    qsort(kv, D, sizeof(KeyIdx), keyidx_cmp);
    for (size_t i = 0; i < D; i++) idx[i] = kv[i].idx;
}

// ceil(log2(D))
static int niter_max(size_t D) {
    int n = 0;
    while (((size_t)1 << n) < D) n++;
    return n;
}

static float dotf(const float *a, const float *b, size_t D) {
    double s = 0.0;
    for (size_t i = 0; i < D; i++) s += (double)a[i] * b[i];
    return (float)s;
}

static void proj_linf(float *d, const float *t, const float *w_in, float b_in, size_t D, ProjScratch *S) {
    float *w = S->w, *p = S->p, *s = S->s, *sb = S->sb;
    int *idx = S->idx;
    float sign = dotf(w_in, t, D) - b_in >= 0 ? 1.0f : -1.0f;
    float b = b_in * sign;
    for (size_t i = 0; i < D; i++) {
        w[i] = w_in[i] * sign;
        float a = w[i] < 0 ? 1.0f : 0.0f;
        d[i] = (a - t[i]) * (w[i] != 0 ? 1.0f : 0.0f);
        p[i] = a - t[i] * (2 * a - 1);
    }
    argsort(idx, p, D, S->kv);
    b = b - dotf(w, t, D);
    float b0 = dotf(w, d, D);
    // cumulative sums in descending order of p
    double cs = 0.0, csb = 0.0;
    for (size_t j = 0; j < D; j++) {
        int i = idx[D - 1 - j];
        cs += fabsf(w[i]);
        csb += -w[i] * d[i];
        s[j] = (float)cs;
        sb[j] = (float)csb + b0;
    }
    float b2 = sb[D - 1] - s[D - 1] * p[idx[0]];
    int c_l = b - b2 > 0;
    int c2 = (b - b0 > 0) && !c_l;
    if (c2) {
        float lb = 0.0f, ub = (float)(D - 1);
        for (int it = 0, n = niter_max(D); it < n; it++) {
            float c4 = floorf((lb + ub) / 2);
            int k = (int)c4;
            float bk = sb[k] - s[k] * p[idx[D - 1 - k]];
            if (b - bk > 0) lb = c4;
            else ub = c4;
        }
        int l = (int)lb;
        float lm = tmax((b - sb[l]) / (-s[l]), 0.0f);
        for (size_t i = 0; i < D; i++) {
            float a = w[i] < 0 ? 1.0f : 0.0f;
            d[i] = tmin(lm, d[i]) * a + tmax(-lm, d[i]) * (1 - a);
        }
    }
    if (c_l) {
        float lm = tmax((b - sb[D - 1]) / (-s[D - 1]), 0.0f);
        for (size_t i = 0; i < D; i++) {
            float a = w[i] < 0 ? 1.0f : 0.0f;
            d[i] = (2 * a - 1) * lm;
        }
    }
    for (size_t i = 0; i < D; i++) d[i] *= w[i] != 0 ? 1.0f : 0.0f;
}

static void proj_l2(float *d, const float *t, const float *w_in, float b_in, size_t D, ProjScratch *S) {
    float *w = S->w, *r = S->p, *s = S->s, *rs = S->rs, *rs2 = S->rs2, *ws = S->ws;
    int *idx = S->idx;
    const float big = 1e12f;
    float c = dotf(w_in, t, D) - b_in;
    float sign = c >= 0 ? 1.0f : -1.0f;
    c *= sign;
    for (size_t i = 0; i < D; i++) {
        w[i] = w_in[i] * sign;
        float v = tmax(t[i] / w[i], (t[i] - 1) / w[i]);
        if (v < -big) v = -big;
        if (v > big) v = big;
        if (fabsf(w[i]) < 1e-8f) v = big;
        if (v == -big) v = big;
        r[i] = v;
    }
    argsort(idx, r, D, S->kv);
    for (size_t j = 0; j < D; j++) rs[j] = r[idx[j]];
    for (size_t j = 0; j < D; j++) rs2[j] = j + 1 < D ? rs[j + 1] : 0.0f;
    for (size_t j = 0; j < D; j++) {
        if (rs[j] == big) rs[j] = 0.0f;
        if (rs2[j] == big) rs2[j] = 0.0f;
    }
    double w5d = 0.0;
    for (size_t j = 0; j < D; j++) w5d += (double)(w[idx[j]] * w[idx[j]]);
    float w5 = (float)w5d;
    double cum = 0.0;
    for (size_t j = 0; j < D; j++) {
        cum += (double)(w[idx[j]] * w[idx[j]]);
        ws[j] = w5 - (float)cum;
    }
    for (size_t i = 0; i < D; i++) d[i] = -(r[i] * w[i]) * (fabsf(w[i]) > 1e-8f ? 1.0f : 0.0f);
    float w5r = w5 * rs[0];
    s[0] = -w5 * rs[0];
    cum = 0.0;
    for (size_t j = 0; j < D; j++) {
        cum += (double)((-rs2[j] + rs[j]) * ws[j]);
        s[j + 1] = (float)cum - w5r;
    }
    int c4 = s[0] + c < 0;
    int c3 = dotf(d, w, D) + c > 0;
    int c2 = !(c4 || c3);
    if (c2) {
        float lb = 0.0f, ub = (float)(D - 1);
        for (int it = 0, n = niter_max(D); it < n; it++) {
            float m = floorf((lb + ub) / 2);
            if (s[(int)m] + c > 0) lb = m;
            else ub = m;
        }
        int l = (int)lb;
        float alpha = (s[l] + c) / ws[l] + rs[l];
        if (ws[l] == 0) alpha = 0.0f;
        for (size_t i = 0; i < D; i++) {
            float c5 = alpha > r[i] ? 1.0f : 0.0f;
            d[i] = d[i] * c5 - alpha * w[i] * (1 - c5);
        }
    }
    if (c4) {
        float alpha = c / w5;
        for (size_t i = 0; i < D; i++) d[i] = -alpha * w[i];
    }
    for (size_t i = 0; i < D; i++) d[i] *= fabsf(w[i]) > 1e-8f ? 1.0f : 0.0f;
}

static void proj_l1(float *d, const float *t, const float *w_in, float b_in, size_t D, ProjScratch *S) {
    float *w = S->w, *r = S->p, *s = S->s;
    int *idx = S->idx, *rev = S->rev;
    float c = dotf(w_in, t, D) - b_in;
    float sign = c >= 0 ? 1.0f : -1.0f;
    c *= sign;
    for (size_t i = 0; i < D; i++) {
        w[i] = w_in[i] * sign;
        float v = fabsf(1.0f / w[i]);
        r[i] = v > 1e12f ? 1e12f : v;
        float c6 = w[i] < 0 ? 1.0f : 0.0f;
        d[i] = (-t[i] + c6) * (w[i] != 0 ? 1.0f : 0.0f);
    }
    argsort(idx, r, D, S->kv);
    for (size_t j = 0; j < D; j++) rev[idx[j]] = (int)j;
    double cum = c;
    s[0] = c;
    for (size_t j = 0; j < D; j++) {
        int i = idx[j];
        cum += (double)tmin(-w[i] * t[i], w[i] * (1 - t[i]));
        s[j + 1] = (float)cum;
    }
    if (s[D] < 0) {
        float lb = 0.0f, ub = (float)(D + 1);
        for (int it = 0, n = niter_max(D); it < n; it++) {
            float m = floorf((lb + ub) / 2);
            if (s[(int)m] > 0) lb = m;
            else ub = m;
        }
        int l = (int)lb;
        if (l > (int)D - 1) l = (int)D - 1; // cannot happen (s[D] < 0); keeps idx in range
        int is = idx[l];
        float alpha = -s[l] / w[is];
        for (size_t i = 0; i < D; i++) d[i] *= (float)rev[i] < lb ? 1.0f : 0.0f;
        d[is] = alpha;
    }
    for (size_t i = 0; i < D; i++) d[i] *= fabsf(w[i]) > 1e-8f ? 1.0f : 0.0f;
}

int fab_project(int norm, float *d, const float *t, const float *w, float b, size_t D) {
    ProjScratch S;
    int rc = proj_scratch_alloc(&S, D);
    if (!rc) {
        if (norm == FAB_LINF) proj_linf(d, t, w, b, D, &S);
        else if (norm == FAB_L2) proj_l2(d, t, w, b, D, &S);
        else proj_l1(d, t, w, b, D, &S);
    }
    proj_scratch_free(&S);
    return rc;
}

// ----------------------------------------------------------------------------
// norms of one sample, float32 results

// |a - b| in the norm (|a| when b is NULL)
static float dist_of(int norm, const float *a, const float *b, size_t D) {
    if (norm == FAB_LINF) {
        float m = 0.0f;
        for (size_t i = 0; i < D; i++) m = tmax(m, fabsf(b ? a[i] - b[i] : a[i]));
        return m;
    }
    double s = 0.0;
    for (size_t i = 0; i < D; i++) {
        float v = b ? a[i] - b[i] : a[i];
        s += norm == FAB_L2 ? (double)v * v : fabs((double)v);
    }
    return norm == FAB_L2 ? (float)sqrt(s) : (float)s;
}

static float norm_of(int norm, const float *v, size_t D) { return dist_of(norm, v, NULL, D); }

// the dual norm of a gradient difference g_k - g_y, the denominator of FAB's distance
static float dual_norm_diff(int norm, const float *gk, const float *gy, size_t D) {
    if (norm == FAB_L1) {
        float m = 0.0f;
        for (size_t i = 0; i < D; i++) m = tmax(m, fabsf(gk[i] - gy[i]));
        return m;
    }
    double s = 0.0;
    for (size_t i = 0; i < D; i++) {
        float v = gk[i] - gy[i];
        s += norm == FAB_L2 ? (double)v * v : fabs((double)v);
    }
    return norm == FAB_L2 ? (float)sqrt(s) : (float)s;
}

// ----------------------------------------------------------------------------
// one run (torchattacks' attack_single_run / attack_single_run_targeted)

// the targeted linearisation: the gradient of z_t - z_y, and f = z_t - z_y (per sample)
typedef struct {
    const int *la, *tgt;
    int K;
    float *f;
} PairLoss;

static double pair_loss(void *c, int i, const float *z, float *dz) {
    PairLoss *pl = c;
    for (int k = 0; k < pl->K; k++) dz[k] = 0.0f;
    dz[pl->tgt[i]] += 1.0f;
    dz[pl->la[i]] -= 1.0f;
    pl->f[i] = -(z[pl->la[i]] - z[pl->tgt[i]]);
    return pl->f[i];
}

// im (n, D) clean inputs, la (n) labels, tgt (n) targets or NULL (untargeted), pos (n)
// positions in the batch (for the random streams); stream 0: no random start.
// Writes adv (n, D) and succ (n): 1 where an adversarial example was found.
static int fab_single_run(Fab *f, const float *im, const int *la, const int *tgt, const int *pos, int n,
                          uint32_t stream, float *adv, unsigned char *succ, Err *e) {
    const AttackCtx *ctx = f->ctx;
    size_t D = f->D;
    int K = f->K, nv = tgt ? 1 : K; // gradient vectors per sample
    int chunk = (int)MIN((size_t)n, (size_t)(64u << 20) / ((size_t)nv * D));
    if (chunk < 1) chunk = 1;
    float *x1 = xmalloc(sizeof(float) * n * D), *res = xmalloc(sizeof(float) * n);
    float *z = xmalloc(sizeof(float) * chunk * K), *g = xmalloc(sizeof(float) * chunk * nv * D);
    float *w = xmalloc(sizeof(float) * n * D), *bb = xmalloc(sizeof(float) * n), *fv = xmalloc(sizeof(float) * n);
    float *d3 = xmalloc(sizeof(float) * 2 * n * D);
    int *pred = xmalloc(sizeof(int) * n);
    int rc = -1;
    if (!x1 || !res || !z || !g || !w || !bb || !fv || !d3 || !pred) {
        err_set(e, "out of memory for FAB on %d samples", n);
        goto done;
    }
    memcpy(adv, im, sizeof(float) * n * D);
    memcpy(x1, im, sizeof(float) * n * D);
    for (int j = 0; j < n; j++) res[j] = 1e10f;
    if (stream) {
        // a random start at half the eps radius (res is still 1e10, so min(res, eps) = eps)
        for (int j = 0; j < n; j++) {
            Rng r;
            attack_rng(ctx, pos[j], stream, &r);
            float *xj = x1 + j * D, *tj = d3 + j * D;
            const float *ij = im + j * D;
            for (size_t i = 0; i < D; i++)
                tj[i] = f->norm == FAB_LINF ? 2 * rng_uniform(&r) - 1 : (float)rng_normal(&r);
            float m = norm_of(f->norm, tj, D);
            for (size_t i = 0; i < D; i++) {
                float v = f->eps * tj[i] / m;
                v = f->norm == FAB_L1 ? v / 2 : v * 0.5f;
                xj[i] = clampf(ij[i] + v, 0.0f, 1.0f);
            }
        }
    }
    PairLoss pl = {la, tgt, K, fv}; // la, tgt moved to each chunk's first sample below
    for (int step = 0; step < f->steps; step++) {
        // the linearisation at x1: w (the gradient of f_l) and b, in chunks of samples so
        // that a Jacobian of many classes never asks for gigabytes at once
        for (int c0 = 0; c0 < n; c0 += chunk) {
            int nc = MIN(chunk, n - c0);
            const float *xc = x1 + c0 * D;
            if (tgt) {
                pl.la = la + c0, pl.tgt = tgt + c0;
                if (attack_gradient(ctx, xc, nc, pair_loss, &pl, z, g, NULL, e)) goto done;
            } else if (attack_jacobian(ctx, xc, nc, z, g, e)) {
                goto done;
            }
#pragma omp parallel for schedule(dynamic)
            for (int jc = 0; jc < nc; jc++) {
                int j = c0 + jc;
                const float *gj = g + (size_t)jc * nv * D, *xj = x1 + j * D;
                float *wj = w + j * D;
                if (tgt) {
                    memcpy(wj, gj, sizeof(float) * D);
                    bb[j] = -fv[jc] + dotf(wj, xj, D);
                    continue;
                }
                const float *zj = z + (size_t)jc * K, *gy = gj + (size_t)la[j] * D;
                int best = -1;
                float best_v = 0.0f;
                for (int k = 0; k < K; k++) {
                    float df = k == la[j] ? 1e10f : zj[k] - zj[la[j]];
                    float den = k == la[j] ? 0.0f : dual_norm_diff(f->norm, gj + (size_t)k * D, gy, D);
                    float v = fabsf(df) / (1e-12f + den);
                    if (best < 0 || (!isnan(best_v) && (v < best_v || isnan(v)))) best = k, best_v = v;
                }
                const float *gl = gj + (size_t)best * D;
                for (size_t i = 0; i < D; i++) wj[i] = gl[i] - gy[i];
                float df = best == la[j] ? 1e10f : zj[best] - zj[la[j]];
                bb[j] = -df + dotf(wj, xj, D);
            }
        }
        // project x1 and x onto the hyperplane: rows 0..n-1 and n..2n-1 of d3
        int fail = 0;
#pragma omp parallel
        {
            ProjScratch S;
            if (proj_scratch_alloc(&S, D)) {
#pragma omp atomic write
                fail = 1;
            } else {
#pragma omp for schedule(dynamic)
                for (int row = 0; row < 2 * n; row++) {
                    int j = row % n;
                    const float *pt = row < n ? x1 + j * D : im + j * D;
                    float *dr = d3 + (size_t)row * D;
                    if (f->norm == FAB_LINF) proj_linf(dr, pt, w + j * D, bb[j], D, &S);
                    else if (f->norm == FAB_L2) proj_l2(dr, pt, w + j * D, bb[j], D, &S);
                    else proj_l1(dr, pt, w + j * D, bb[j], D, &S);
                }
            }
            proj_scratch_free(&S);
        }
        if (fail) {
            err_set(e, "out of memory for FAB's projections");
            goto done;
        }
#pragma omp parallel for schedule(static)
        for (int j = 0; j < n; j++) {
            const float *d1 = d3 + (size_t)j * D, *d2 = d3 + (size_t)(n + j) * D, *ij = im + j * D;
            float a1 = tmax(norm_of(f->norm, d1, D), 1e-8f), a2 = tmax(norm_of(f->norm, d2, D), 1e-8f);
            float alpha = tmin(tmax(a1 / (a1 + a2), 0.0f), f->alpha_max);
            float *xj = x1 + j * D;
            for (size_t i = 0; i < D; i++)
                xj[i] = clampf((xj[i] + f->eta * d1[i]) * (1 - alpha) + (ij[i] + d2[i] * f->eta) * alpha, 0.0f, 1.0f);
        }
        if (attack_predict(ctx, x1, n, pred, e)) goto done;
        for (int j = 0; j < n; j++) {
            if (pred[j] == la[j]) continue;
            float *xj = x1 + j * D;
            const float *ij = im + j * D;
            float t = dist_of(f->norm, xj, ij, D);
            if (t < res[j]) {
                memcpy(adv + j * D, xj, sizeof(float) * D);
                res[j] = t;
            }
            for (size_t i = 0; i < D; i++) xj[i] = ij[i] + (xj[i] - ij[i]) * f->beta;
        }
        f->done += 1;
        attack_progress(ctx, f->done / f->total);
    }
    for (int j = 0; j < n; j++) succ[j] = res[j] < 1e10f;
    rc = 0;
done:
    xfree(x1), xfree(res), xfree(z), xfree(g), xfree(w), xfree(bb), xfree(fv), xfree(d3), xfree(pred);
    return rc;
}

// ----------------------------------------------------------------------------
// perturb

static int fab_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K;
    Fab f = {.ctx = ctx,
             .norm = attack_param_int(ctx, "norm"),
             .steps = attack_param_int(ctx, "steps"),
             .K = K,
             .D = D,
             .eps = (float)attack_param(ctx, "eps"),
             .alpha_max = (float)attack_param(ctx, "alpha_max"),
             .eta = (float)attack_param(ctx, "eta"),
             .beta = (float)attack_param(ctx, "beta")};
    int restarts = attack_param_int(ctx, "n_restarts"), multi = attack_param_int(ctx, "multi_targeted");
    int n_tc = attack_param_int(ctx, "n_classes") - 1;
    if (n_tc > K - 1) n_tc = K - 1; // torchattacks would index past the classes
    if (!multi) n_tc = 1;
    f.total = (double)n_tc * restarts * f.steps;
    if (f.total <= 0) f.total = 1;
    memcpy(x_adv, x, sizeof(float) * B * D);
    float *z0 = xmalloc(sizeof(float) * B * K), *im = xmalloc(sizeof(float) * B * D);
    float *adv = xmalloc(sizeof(float) * B * D);
    int *acc = xmalloc(sizeof(int) * B), *sel = xmalloc(sizeof(int) * B), *la = xmalloc(sizeof(int) * B);
    int *tg = xmalloc(sizeof(int) * B), *order = xmalloc(sizeof(int) * K);
    unsigned char *succ = xmalloc(B);
    KeyIdx *kv = xmalloc(sizeof(KeyIdx) * K);
    int rc = -1;
    if (!z0 || !im || !adv || !acc || !sel || !la || !tg || !order || !succ || !kv) {
        err_set(e, "out of memory for FAB on %d samples", B);
        goto done;
    }
    // the clean predictions; they also serve every run's own check of its inputs and the
    // multi-targeted ranking (a sample's logits do not depend on its batch)
    if (attack_logits(ctx, x, B, z0, e)) goto done;
    for (int b = 0; b < B; b++) acc[b] = logits_argmax(z0 + (size_t)b * K, K) == y[b];
    for (int tc = 2; tc < n_tc + 2; tc++) {
        for (int r = 0; r < restarts; r++) {
            int n = 0;
            for (int b = 0; b < B; b++)
                if (acc[b]) sel[n++] = b;
            if (n == 0) {
                f.done += f.steps;
                continue;
            }
            for (int j = 0; j < n; j++) {
                int b = sel[j];
                memcpy(im + j * D, x + b * D, sizeof(float) * D);
                la[j] = y[b];
                if (multi) {
                    // output.sort(dim=-1)[1][:, -tc]: the tc-th largest clean logit
                    argsort(order, z0 + (size_t)b * K, (size_t)K, kv);
                    tg[j] = order[K - tc];
                }
            }
            uint32_t stream = r > 0 ? (uint32_t)(tc << 8 | r) : 0;
            if (fab_single_run(&f, im, la, multi ? tg : NULL, sel, n, stream, adv, succ, e)) goto done;
            for (int j = 0; j < n; j++) {
                if (!succ[j]) continue; // the clean input: still classified correctly
                int b = sel[j];
                float res = dist_of(f.norm, im + j * D, adv + j * D, D);
                if (res > f.eps) continue;
                acc[b] = 0;
                memcpy(x_adv + b * D, adv + j * D, sizeof(float) * D);
            }
        }
    }
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    xfree(z0), xfree(im), xfree(adv), xfree(acc), xfree(sel), xfree(la), xfree(tg), xfree(order), xfree(succ),
        xfree(kv);
    return rc;
}

const AttackDef attack_fab = {
    .name = "FAB",
    .aliases = "fab",
    .summary = "Fast Adaptive Boundary attack, minimal Linf/L2/L1 perturbation (arXiv:1907.02044)",
    .untargeted_ok = 1,
    .targeted_ok = 0,
    .params = params,
    .run = fab_run,
    .check = attack_check_norm_eps,
};
