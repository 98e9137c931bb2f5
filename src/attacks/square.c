/*
 * square.c: Square Attack (Andriushchenko, Croce, Flammarion & Hein, arXiv:1912.00049), a
 * score-based black-box attack under Linf or L2, as torchattacks 3.5.1 Square computes it.
 * It uses forward passes only.
 *
 * Per sample (y: the true label, or the target in targeted mode):
 *   margin  m = z_y - max_{k!=y} z_k (targeted: max_{k!=y} z_k - z_y); the loss is the
 *           margin, or -CE (targeted: CE) with loss=ce; the attack minimises the loss and
 *           stops on a sample as soon as m <= 0.
 *   init    Linf: vertical stripes, x + eps * s[c, w] with random signs per channel and
 *           column; L2: a 5x5 grid of "eta" squares (nested rectangles of weights 1/k^2,
 *           the lower half negated, randomly transposed) with random signs per channel,
 *           scaled to norm eps. Then clamped to [0, 1].
 *   query i p = p_selection(i): p_init halved at i = 10, 50, 200, 500, 1000, 2000, 4000,
 *           6000, 8000, on i rescaled to int(i / n_queries * 10000) with resc_schedule
 *           (torchattacks' default; fra31's AutoAttack runs Square without it).
 *           Linf: s = max(round(sqrt(p * H * W)), 1) (Python's round: half to even); a
 *           square at (vh, vw) = int((H - s) * U[0, 1)) (so never at the last offset, as
 *           in torchattacks) gets x_best + 2 eps * sign per channel, projected on the
 *           eps-ball and the box.
 *           L2: s as above but at least 3 and odd; mass moves from a second square
 *           (vh2, vw2) into the first, with an eta profile, keeping the norm at eps.
 *           The candidate replaces x_best if its loss is lower or it is misclassified.
 *           A candidate equal to its x_best bit for bit is not evaluated (unless
 *           square_eval_repeats is set): the network is deterministic and a sample's
 *           logits do not depend on its batch, so its loss would be x_best's own (a
 *           sample still attacked has lossm = the loss of x_best: its last change
 *           lowered the loss) and it would be rejected; skipping its forward pass leaves
 *           every result bit-identical and only the pass count lower. Such repeats are
 *           common late in the schedule, when a square is one pixel: a channel stays put
 *           when its new sign is the one it has, or when both x - eps and x + eps clamp
 *           to the same bound of [0, 1], which under beard semantics (normalised inputs
 *           clamped to [0, 1]) holds for most pixels.
 * Only the points the model gets right (targeted: does not already put on the target)
 * are attacked; each restart takes the points still not fooled, and the output is the
 * clean image wherever the attack failed.
 *
 * Deliberate differences:
 * - Randomness. torchattacks draws one square position and one set of channel colours
 *   per query for the whole batch (every sample gets the same square), from torch's
 *   generator reseeded with `seed`. beard draws every sample's own positions, colours and
 *   stripes from its Philox stream (attack_rng, stream 0x2000 + restart). The per-sample
 *   distribution is the same; the streams differ, so results equal torchattacks' in
 *   distribution, not value, and do not depend on the batch size or the thread count.
 * - The final check of which points were fooled uses the prediction from the forward pass
 *   that accepted each x_best (the network is deterministic), not one more forward pass.
 * - CE is computed in double and rounded; torch computes it in float32.
 * - A square never exceeds the image (torchattacks would index out of it for p_init near 1
 *   or non-square images).
 * fra31/auto-attack's SquareAttack is the same algorithm (except targeted mode, which
 * there always uses CE); the fra31 preset turns resc_schedule off as its AutoAttack does.
 */
#include <string.h>

#include "../nn/nn.h"
#include "apgd.h"

static const AttackParamDef params[] = {
    {"norm", 0, P_SAME, P_SAME, "threat model", AP_CHOICE("Linf,L2")},
    {"eps", 8.0 / 255, 8.0 / 255, P_SAME, "maximum perturbation (Linf or L2)", AP_EPS_L2},
    {"n_queries", 5000, 5000, P_SAME, "queries (iterations) per restart", AP_INT(1, 10000000)},
    {"n_restarts", 1, 1, P_SAME, "restarts, each on the points not yet fooled", AP_INT(1, 1000)},
    {"p_init", 0.8, 0.8, P_SAME, "initial fraction of pixels a square covers", AP_POS(1)},
    {"loss", 0, 0, P_SAME, "loss to minimise: the margin or (-)cross-entropy", AP_CHOICE("margin,ce")},
    {"resc_schedule", 1, 1, 0, "rescale the p schedule to n_queries (fra31's AutoAttack: off)", AP_BOOL},
    {NULL},
};

typedef struct {
    int C, H, W, norm, ce, targeted, resc, n_queries;
    float eps;
    double p_init;
} Cfg;

static double p_selection(const Cfg *c, int it) {
    if (c->resc) it = (int)((double)it / c->n_queries * 10000);
    double p = c->p_init;
    if (10 < it && it <= 50) p = c->p_init / 2;
    else if (50 < it && it <= 200) p = c->p_init / 4;
    else if (200 < it && it <= 500) p = c->p_init / 8;
    else if (500 < it && it <= 1000) p = c->p_init / 16;
    else if (1000 < it && it <= 2000) p = c->p_init / 32;
    else if (2000 < it && it <= 4000) p = c->p_init / 64;
    else if (4000 < it && it <= 6000) p = c->p_init / 128;
    else if (6000 < it && it <= 8000) p = c->p_init / 256;
    else if (8000 < it) p = c->p_init / 512;
    return p;
}

// torchattacks' random_choice: sign(2u - 1), 0 when u is exactly 1/2
static float rand_sign(Rng *r) { return signf_torch(2.0f * rng_uniform(r) - 1.0f); }
// torchattacks' random_int(0, n): int(n * u), in [0, n - 1] (0 when n is 0)
static int rand_int(Rng *r, int n) { return (int)((float)n * rng_uniform(r)); }

// torchattacks' eta_rectangles(xr, yr) into out (xr, yr), row stride ld
static void eta_rectangles(float *out, int ld, int xr, int yr) {
    for (int i = 0; i < xr; i++)
        for (int j = 0; j < yr; j++) out[i * ld + j] = 0.0f;
    int xc = xr / 2 + 1, yc = yr / 2 + 1, c0 = xc - 1, c1 = yc - 1;
    for (int k = 0; k < MAX(xc, yc); k++) {
        float w = (float)(k + 1);
        w = 1.0f / (w * w);
        for (int i = MAX(c0, 0); i < MIN(c0 + 2 * k + 1, xr); i++)
            for (int j = MAX(c1, 0); j < MIN(c1 + 2 * k + 1, yr); j++) out[i * ld + j] += w;
        c0--, c1--;
    }
    double ss = 0.0;
    for (int i = 0; i < xr; i++)
        for (int j = 0; j < yr; j++) ss += (double)out[i * ld + j] * out[i * ld + j];
    float n = sqrtf((float)ss);
    for (int i = 0; i < xr; i++)
        for (int j = 0; j < yr; j++) out[i * ld + j] /= n;
}

// torchattacks' eta(s) into out (s, s): the transpose draw comes from r
static void eta(float *out, float *tmp, int s, Rng *r) {
    int h = s / 2;
    eta_rectangles(tmp, s, h, s);
    eta_rectangles(tmp + h * s, s, s - h, s);
    for (int j = h * s; j < s * s; j++) tmp[j] = -1.0f * tmp[j];
    double ss = 0.0;
    for (int j = 0; j < s * s; j++) ss += (double)tmp[j] * tmp[j];
    float n = sqrtf((float)ss);
    int tr = rng_uniform(r) > 0.5f;
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) out[i * s + j] = (tr ? tmp[j * s + i] : tmp[i * s + j]) / n;
}

static float sumsq(const float *v, size_t n) {
    double s = 0.0;
    for (size_t j = 0; j < n; j++) s += (double)v[j] * v[j];
    return (float)s;
}

// margin and loss of one sample's logits (label: true class, or target)
static void margin_loss(const Cfg *c, const float *z, int K, int label, float *margin, float *loss) {
    float other = -INFINITY;
    for (int k = 0; k < K; k++)
        if (k != label && (z[k] > other || isnan(z[k]))) other = z[k];
    float m = c->targeted ? other - z[label] : z[label] - other;
    *margin = m;
    if (!c->ce) *loss = m;
    else {
        float xent = (float)crossentropy_sample(NULL, z, label, K);
        *loss = c->targeted ? xent : -1.0f * xent;
    }
}

// the initial point of one sample (x_best)
static void square_init(const Cfg *c, const float *x, float *xb, Rng *r, float *delta, float *e1, float *e2) {
    int C = c->C, H = c->H, W = c->W;
    size_t plane = (size_t)H * W, D = plane * C;
    if (c->norm == 0) {
        for (int ch = 0; ch < C; ch++)
            for (int w = 0; w < W; w++) {
                float v = c->eps * rand_sign(r);
                for (int h = 0; h < H; h++) {
                    size_t j = ch * plane + (size_t)h * W + w;
                    xb[j] = clampf(x[j] + v, 0.0f, 1.0f);
                }
            }
        return;
    }
    memset(delta, 0, sizeof(float) * D);
    int s = H / 5, sp = (H - s * 5) / 2;
    for (int a = 0, vh = sp; a < H / s; a++, vh += s)
        for (int b = 0, vw = sp; b < W / s; b++, vw += s) {
            eta(e1, e2, s, r);
            for (int ch = 0; ch < C; ch++) {
                float sg = rand_sign(r);
                for (int i = 0; i < s; i++)
                    for (int k = 0; k < s; k++) delta[ch * plane + (size_t)(vh + i) * W + vw + k] += e1[i * s + k] * sg;
            }
        }
    float n = sqrtf(sumsq(delta, D)) + 1e-12f;
    for (size_t j = 0; j < D; j++) xb[j] = clampf(x[j] + delta[j] / n * c->eps, 0.0f, 1.0f);
}

// one query's candidate x_new of one sample, from its x_best
static void square_candidate(const Cfg *c, double p, const float *x, const float *xb, float *xn, Rng *r, float *delta,
                             float *e1, float *e2, float *nw) {
    int C = c->C, H = c->H, W = c->W;
    size_t plane = (size_t)H * W, D = plane * C;
    float eps = c->eps;
    if (c->norm == 0) {
        int s = MIN(MAX((int)rint(sqrt(p * (double)D / C)), 1), MIN(H, W));
        int vh = rand_int(r, H - s), vw = rand_int(r, W - s);
        memcpy(xn, xb, sizeof(float) * D);
        for (int ch = 0; ch < C; ch++) {
            float v = (float)(2.0 * eps) * rand_sign(r);
            for (int i = vh; i < vh + s; i++)
                for (int k = vw; k < vw + s; k++) xn[ch * plane + (size_t)i * W + k] += v;
        }
        for (size_t j = 0; j < D; j++)
            xn[j] = clampf(fminf(fmaxf(xn[j], x[j] - eps), x[j] + eps), 0.0f, 1.0f);
        return;
    }
    int s = MAX((int)rint(sqrt(p * (double)D / C)), 3);
    if (s % 2 == 0) s++;
    s = MIN(s, MIN(H, W));
    int vh = rand_int(r, H - s), vw = rand_int(r, W - s);
    int vh2 = rand_int(r, H - s), vw2 = rand_int(r, W - s);
    for (size_t j = 0; j < D; j++) delta[j] = xb[j] - x[j];
    float norm_image = sqrtf(sumsq(delta, D));
    double ss_win = 0.0;
    for (int ch = 0; ch < C; ch++) {
        double s1 = 0.0;
        for (int i = 0; i < H; i++)
            for (int k = 0; k < W; k++) {
                int in1 = i >= vh && i < vh + s && k >= vw && k < vw + s;
                int in2 = i >= vh2 && i < vh2 + s && k >= vw2 && k < vw2 + s;
                double d = delta[ch * plane + (size_t)i * W + k];
                if (in1) s1 += d * d;
                if (in1 || in2) ss_win += d * d;
            }
        nw[ch] = sqrtf((float)s1);
    }
    float norms_windows = sqrtf((float)ss_win);
    eta(e1, e2, s, r);
    float budget = fmaxf(eps * eps - norm_image * norm_image, 0.0f) / (float)C + norms_windows * norms_windows;
    budget = sqrtf(budget);
    float *nd = e2; // (s, s) per channel in turn
    for (int ch = 0; ch < C; ch++) {
        float sg = rand_sign(r);
        for (int i = 0; i < s; i++)
            for (int k = 0; k < s; k++) {
                float old = delta[ch * plane + (size_t)(vh + i) * W + vw + k] / (1e-12f + nw[ch]);
                nd[i * s + k] = 1.0f * (e1[i * s + k] * sg) + old;
            }
        float n = 1e-12f + sqrtf(sumsq(nd, (size_t)s * s));
        for (int i = 0; i < s; i++)
            for (int k = 0; k < s; k++) nd[i * s + k] = nd[i * s + k] / n * budget;
        for (int i = 0; i < s; i++)
            for (int k = 0; k < s; k++) delta[ch * plane + (size_t)(vh2 + i) * W + vw2 + k] = 0.0f;
        for (int i = 0; i < s; i++)
            for (int k = 0; k < s; k++) delta[ch * plane + (size_t)(vh + i) * W + vw + k] = nd[i * s + k] + 0.0f;
    }
    float n = sqrtf(sumsq(delta, D)) + 1e-12f;
    for (size_t j = 0; j < D; j++) xn[j] = clampf(x[j] + delta[j] / n * eps, 0.0f, 1.0f);
}

int square_eval_repeats;

// one run (torchattacks' attack_single_run) on n samples; fooled (n) out, x_best (n, D) out
static int square_single_run(const AttackCtx *ctx, const Cfg *c, const float *x, const int *lab, int n, uint32_t stream,
                             unsigned char *fooled, float *x_best, Err *e) {
    size_t D = ctx->D;
    int K = ctx->K;
    int S = MAX(c->H, c->W) + 1;
    Rng *rng = xmalloc(sizeof(Rng) * n);
    float *margin = xmalloc(sizeof(float) * n), *lossm = xmalloc(sizeof(float) * n);
    int *pred = xmalloc(sizeof(int) * n), *act = xmalloc(sizeof(int) * n);
    float *xn = xmalloc(sizeof(float) * D * n), *logits = xmalloc(sizeof(float) * (size_t)K * n);
    float *delta = xmalloc(sizeof(float) * D);
    float *e1 = xmalloc(sizeof(float) * S * S), *e2 = xmalloc(sizeof(float) * S * S);
    float *nw = xmalloc(sizeof(float) * c->C);
    int rc = -1;
    if (!rng || !margin || !lossm || !pred || !act || !xn || !logits || !delta || !e1 || !e2 || !nw) {
        err_set(e, "out of memory for Square on %d samples", n);
        goto done;
    }
    for (int b = 0; b < n; b++) {
        attack_rng(ctx, b, stream, &rng[b]);
        square_init(c, x + b * D, x_best + b * D, &rng[b], delta, e1, e2);
    }
    if (attack_logits(ctx, x_best, n, logits, e)) goto done;
    for (int b = 0; b < n; b++) {
        margin_loss(c, logits + (size_t)b * K, K, lab[b], &margin[b], &lossm[b]);
        pred[b] = logits_argmax(logits + (size_t)b * K, K);
    }
    for (int it = 0; it < c->n_queries; it++) {
        int m = 0;
        for (int b = 0; b < n; b++)
            if (margin[b] > 0.0f) act[m++] = b;
        if (!m) break;
        double p = p_selection(c, it);
        int q = 0; // the candidates that differ from their x_best: only they are evaluated
        for (int j = 0; j < m; j++) {
            int b = act[j];
            square_candidate(c, p, x + b * D, x_best + b * D, xn + q * D, &rng[b], delta, e1, e2, nw);
            if (square_eval_repeats || memcmp(xn + q * D, x_best + b * D, sizeof(float) * D)) act[q++] = b;
        }
        if (q && attack_logits(ctx, xn, q, logits, e)) goto done;
        for (int j = 0; j < q; j++) {
            int b = act[j];
            float mg, ls;
            margin_loss(c, logits + (size_t)j * K, K, lab[b], &mg, &ls);
            int improved = ls < lossm[b];
            if (improved) lossm[b] = ls;
            if (improved || mg <= 0.0f) {
                margin[b] = mg;
                memcpy(x_best + b * D, xn + j * D, sizeof(float) * D);
                pred[b] = logits_argmax(logits + (size_t)j * K, K);
            }
        }
        if ((it & 15) == 15) attack_progress(ctx, (double)(it + 1) / c->n_queries);
    }
    for (int b = 0; b < n; b++) fooled[b] = c->targeted ? pred[b] == lab[b] : pred[b] != lab[b];
    rc = 0;
done:
    xfree(rng), xfree(margin), xfree(lossm), xfree(pred), xfree(act), xfree(xn), xfree(logits);
    xfree(delta), xfree(e1), xfree(e2), xfree(nw);
    return rc;
}

static int square_subset(const AttackCtx *sub, const float *xs, const int *ys, const int *sel, int m, int r,
                         unsigned char *fooled, float *adv, void *user, Err *e) {
    return square_single_run(sub, user, xs, ys, m, 0x2000u + (uint32_t)(r & 0xfff), fooled, adv, e);
}

static int square_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    size_t D = ctx->D;
    const Net *net = ctx->net;
    Cfg c = {.C = net->in_c, .H = net->in_h, .W = net->in_w, .norm = attack_param_int(ctx, "norm"),
             .ce = attack_param_int(ctx, "loss") == 1, .targeted = ctx->targeted,
             .resc = attack_param_int(ctx, "resc_schedule"), .n_queries = attack_param_int(ctx, "n_queries"),
             .eps = (float)attack_param(ctx, "eps"), .p_init = attack_param(ctx, "p_init")};
    int R = attack_param_int(ctx, "n_restarts");
    if ((size_t)c.C * c.H * c.W != D) return err_set(e, "Square needs image inputs");
    if (c.norm == 1 && (c.H < 5 || c.W < 5)) return err_set(e, "Square L2 needs images of at least 5x5 pixels");
    if (c.H < 1 || c.W < 1) return err_set(e, "empty image");
    if (attack_on_robust(ctx, x, ctx->targeted ? t : y, B, NULL, R, square_subset, &c, x_adv, e)) return -1;
    attack_progress(ctx, 1.0);
    return 0;
}

const AttackDef attack_square = {
    .name = "Square",
    .aliases = "square,square_attack",
    .summary = "Square Attack, score-based black-box, Linf or L2 (arXiv:1912.00049)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = square_run,
    .check = attack_check_norm_eps,
};
