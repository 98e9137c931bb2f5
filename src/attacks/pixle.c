/*
 * pixle.c: Pixle (Pomponi, Scardapane and Uncini, "Pixle: a fast and effective black-box
 * attack based on rearranging pixels", arXiv:2202.02236), as torchattacks 3.5.1 Pixle
 * computes it, per sample:
 *   best = x, p* = loss(x)      (loss: softmax(f)_y; targeted: 1 - softmax(f)_t)
 *   for r < restarts:  for it < max_iterations:
 *       a random patch: top-left (int(u (W - 1)), int(v (H - 1))), size (w, h) drawn from
 *       [x_dim_lo, x_dim_hi] x [y_dim_lo, y_dim_hi] (cut at the border);
 *       each patch pixel of the ORIGINAL image is copied onto `best` at a destination
 *       chosen by pixel_mapping (random: uniform; similarity / distance: the most similar
 *       / most distant pixel of `best` by mean |difference| over channels, softmax-ranked;
 *       *_random: drawn from that softmax), giving p;
 *       p < p*: p* = p, solution = p;  p fools the model: solution = p, stop
 *     after the restart: best = solution, or, when no trial ever improved, the last trial
 *   the result is best.
 * update_each_iteration = 1 is torchattacks' iterative_forward instead: one run of
 * max_iterations trials, each improvement becoming `best` at once.
 * torchattacks' quirks, reproduced: the destinations are written as image[:, a, b] with
 * a drawn along the width and b along the height (x and y swapped; beard therefore needs
 * square images, as torchattacks does in effect); a restart without any improvement keeps
 * its last, unimproved trial; the similarity mappings skip the source pixel's own
 * position, store the found (column, row) pair and write it as (row, column), the same
 * swap. Patch sizes: values below 1 are fractions of the side (round(W d), at least 1),
 * values of 1 and more are pixel counts (torchattacks tells the two apart by Python type,
 * int or float; its float 1.0, the whole side, is beard's pixel count W).
 * beard runs every sample's trial of one step in one batch, and takes the stop test from
 * the same forward pass as the loss (torchattacks runs a second, identical one).
 * Deliberate difference: the random numbers come from beard's Philox stream of each
 * sample instead of numpy's global generator (equal in distribution, not in value).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"

enum { MAP_RANDOM, MAP_SIMILARITY, MAP_SIMILARITY_RANDOM, MAP_DISTANCE, MAP_DISTANCE_RANDOM };

static const AttackParamDef params[] = {
    {"x_dim_lo", 2, P_SAME, P_SAME, "smallest patch width (pixels, or a fraction of the width below 1)", AP_POS(1 << 16)},
    {"x_dim_hi", 10, P_SAME, P_SAME, "largest patch width", AP_POS(1 << 16)},
    {"y_dim_lo", 2, P_SAME, P_SAME, "smallest patch height", AP_POS(1 << 16)},
    {"y_dim_hi", 10, P_SAME, P_SAME, "largest patch height", AP_POS(1 << 16)},
    {"pixel_mapping", MAP_RANDOM, P_SAME, P_SAME, "where the patch's pixels go",
     AP_CHOICE("random,similarity,similarity_random,distance,distance_random")},
    {"restarts", 20, P_SAME, P_SAME, "restarts", AP_INT(0, 100000)},
    {"max_iterations", 10, P_SAME, P_SAME, "patches tried per restart", AP_INT(0, 100000)},
    {"update_each_iteration", 0, P_SAME, P_SAME, "torchattacks' iterative_forward (see pixle.c)", AP_BOOL},
    {NULL},
};

static int side_bound(double d, int size) {
    if (d < 1) {
        int v = (int)rint(size * d); // Python's round(): halves to even, as rint in the default mode
        return v > 1 ? v : 1;
    }
    return (int)d;
}

static int pixle_check(const AttackDef *def, const AttackParams *p, const AttackShape *s, Err *e) {
    const char *names[4] = {"x_dim_lo", "x_dim_hi", "y_dim_lo", "y_dim_hi"};
    for (int i = 0; i < 4; i++) {
        double v = attack_params_get(p, names[i]);
        if (v >= 1 && v != floor(v))
            return err_set(e, "%s: %s must be a fraction below 1 or a whole number of pixels, not %g", def->name, names[i], v);
    }
    if (attack_params_get(p, "x_dim_lo") > attack_params_get(p, "x_dim_hi") ||
        attack_params_get(p, "y_dim_lo") > attack_params_get(p, "y_dim_hi"))
        return err_set(e, "%s: the patch size range is empty (lo > hi)", def->name);
    if (s && s->H != s->W)
        return err_set(e, "%s needs square images (torchattacks swaps x and y), not %dx%d", def->name, s->H, s->W);
    return 0;
}

typedef struct {
    int C, H, W, mapping;
    int xb[2], yb[2];
} Geo;

// one trial from `best` (C, H, W): pert = best with the original patch copied over
static void trial(float *pert, const float *x, const float *best, const Geo *g, Rng *r) {
    int C = g->C, H = g->H, W = g->W;
    size_t plane = (size_t)H * W;
    memcpy(pert, best, sizeof(float) * plane * C);
    double u = rng_uniform_d(r), v = rng_uniform_d(r);
    int xo = g->xb[0] + (int)rng_below(r, (uint32_t)(g->xb[1] - g->xb[0] + 1));
    int yo = g->yb[0] + (int)rng_below(r, (uint32_t)(g->yb[1] - g->yb[0] + 1));
    int px = (int)(u * (W - 1)), py = (int)(v * (H - 1));
    if (px + xo > W) xo = W - px;
    if (py + yo > H) yo = H - py;
    int n = xo * yo;
    int *dst = malloc(sizeof(int) * 2 * (size_t)(n > 0 ? n : 1));
    if (!dst) return;
    if (g->mapping == MAP_RANDOM) {
        for (int k = 0; k < n; k++) {
            double a = rng_uniform_d(r), b = rng_uniform_d(r);
            dst[2 * k] = (int)(a * (W - 1)), dst[2 * k + 1] = (int)(b * (H - 1));
        }
    } else {
        int sim = g->mapping == MAP_SIMILARITY || g->mapping == MAP_SIMILARITY_RANDOM;
        int rnd = g->mapping == MAP_SIMILARITY_RANDOM || g->mapping == MAP_DISTANCE_RANDOM;
        float *d = malloc(sizeof(float) * plane), *pr = malloc(sizeof(float) * plane);
        if (!d || !pr) {
            free(d), free(pr), free(dst);
            return;
        }
        int k = 0;
        for (int i = py; i < py + yo; i++)
            for (int j = px; j < px + xo; j++, k++) {
                // mean over channels of |best - x[:, i, j]|, then the mapping's score
                for (size_t q = 0; q < plane; q++) {
                    float s = 0.0f;
                    for (int c = 0; c < C; c++) s += fabsf(best[c * plane + q] - x[c * plane + (size_t)i * W + j]);
                    float m = s / (float)C;
                    if (sim) {
                        m = 1.0f / (1.0f + m);
                        if (m == 1.0f) m = 0.0f;
                    }
                    d[q] = m;
                }
                float mx = -INFINITY, se = 0.0f;
                for (size_t q = 0; q < plane; q++) mx = d[q] > mx ? d[q] : mx;
                for (size_t q = 0; q < plane; q++) se += pr[q] = expf(d[q] - mx);
                for (size_t q = 0; q < plane; q++) pr[q] /= se;
                size_t pick = 0;
                if (rnd) {
                    for (;;) { // np.random.choice(p): the first cumulative share above u
                        double cum_total = 0.0;
                        for (size_t q = 0; q < plane; q++) cum_total += pr[q];
                        double uu = rng_uniform_d(r) * cum_total, cum = 0.0;
                        pick = plane - 1;
                        for (size_t q = 0; q < plane; q++) {
                            cum += pr[q];
                            if (cum > uu) {
                                pick = q;
                                break;
                            }
                        }
                        if (!((int)(pick / W) == i && (int)(pick % W) == j)) break;
                    }
                } else {
                    // the highest probability first, ties in index order (a stable sort)
                    size_t best_q = (size_t)-1;
                    for (size_t q = 0; q < plane; q++) {
                        if ((int)(q / W) == i && (int)(q % W) == j) continue;
                        if (best_q == (size_t)-1 || pr[q] > pr[best_q]) best_q = q;
                    }
                    pick = best_q;
                }
                // the pair stored is (column, row) and written as (row, column)
                dst[2 * k] = (int)(pick % W), dst[2 * k + 1] = (int)(pick / W);
            }
        free(d), free(pr);
    }
    // pert[:, dst_a, dst_b] = x[:, py .. py + yo, px .. px + xo] in row-major order
    int k = 0;
    for (int i = py; i < py + yo; i++)
        for (int j = px; j < px + xo; j++, k++)
            for (int c = 0; c < C; c++) pert[c * plane + (size_t)dst[2 * k] * W + dst[2 * k + 1]] = x[c * plane + (size_t)i * W + j];
    free(dst);
}

typedef struct {
    int r, it, improved, stop, finished;
    float best_p;
} State;

static void score(const float *z, int K, int lab, int targeted, float *p, int *fool) {
    float mx = -INFINITY, se = 0.0f, pr[256];
    for (int k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    for (int k = 0; k < K; k++) se += pr[k] = expf(z[k] - mx);
    int am = 0;
    for (int k = 0; k < K; k++) {
        pr[k] /= se;
        if (pr[k] > pr[am]) am = k;
    }
    *p = targeted ? 1.0f - pr[lab] : pr[lab];
    *fool = targeted ? am == lab : am != lab;
}

static int pixle_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    const Net *net = ctx->net;
    size_t D = ctx->D;
    int K = ctx->K, iterative = attack_param_int(ctx, "update_each_iteration");
    Geo g = {net->in_c, net->in_h, net->in_w, attack_param_int(ctx, "pixel_mapping"), {0, 0}, {0, 0}};
    if ((size_t)g.C * g.H * g.W != D) return err_set(e, "Pixle needs image inputs");
    if (K > 256) return err_set(e, "Pixle: at most 256 classes");
    g.xb[0] = side_bound(attack_param(ctx, "x_dim_lo"), g.W), g.xb[1] = side_bound(attack_param(ctx, "x_dim_hi"), g.W);
    g.yb[0] = side_bound(attack_param(ctx, "y_dim_lo"), g.H), g.yb[1] = side_bound(attack_param(ctx, "y_dim_hi"), g.H);
    int restarts = iterative ? 1 : attack_param_int(ctx, "restarts"), iters = attack_param_int(ctx, "max_iterations");
    State *st = calloc((size_t)B, sizeof(State));
    Rng *rng = malloc(sizeof(Rng) * B);
    int *act = malloc(sizeof(int) * B);
    float *best = xmalloc(sizeof(float) * D * B), *sol = xmalloc(sizeof(float) * D * B), *pert = xmalloc(sizeof(float) * D * B);
    float *z = xmalloc(sizeof(float) * (size_t)K * B);
    int rc = -1;
    if (!st || !rng || !act || !best || !sol || !pert || !z) {
        err_set(e, "out of memory for Pixle");
        goto done;
    }
    memcpy(best, x, sizeof(float) * D * B);
    if (attack_logits(ctx, x, B, z, e)) goto done;
    for (int b = 0; b < B; b++) {
        int fool;
        attack_rng(ctx, b, 1, &rng[b]);
        score(z + (size_t)b * K, K, ctx->targeted ? t[b] : y[b], ctx->targeted, &st[b].best_p, &fool);
        st[b].finished = restarts == 0 || iters == 0;
    }
    long total = (long)restarts * iters, done_steps = 0;
    for (;;) {
        int m = 0;
        for (int b = 0; b < B; b++)
            if (!st[b].finished) act[m++] = b;
        if (!m) break;
#pragma omp parallel for schedule(dynamic)
        for (int j = 0; j < m; j++) {
            int b = act[j];
            trial(pert + (size_t)j * D, x + (size_t)b * D, best + (size_t)b * D, &g, &rng[b]);
        }
        if (attack_logits(ctx, pert, m, z, e)) goto done;
        for (int j = 0; j < m; j++) {
            int b = act[j], fool;
            State *s = &st[b];
            float p;
            const float *pj = pert + (size_t)j * D;
            score(z + (size_t)j * K, K, ctx->targeted ? t[b] : y[b], ctx->targeted, &p, &fool);
            if (iterative) {
                if (p < s->best_p || fool) memcpy(best + (size_t)b * D, pj, sizeof(float) * D);
                if (p < s->best_p) s->best_p = p;
                if (fool || ++s->it == iters) s->finished = 1;
                continue;
            }
            if (p < s->best_p) {
                s->best_p = p, s->improved = 1;
                memcpy(sol + (size_t)b * D, pj, sizeof(float) * D);
            }
            if (fool) {
                s->improved = 1, s->stop = 1;
                memcpy(sol + (size_t)b * D, pj, sizeof(float) * D);
            }
            if (s->stop || ++s->it == iters) { // the end of a restart
                memcpy(best + (size_t)b * D, s->improved ? sol + (size_t)b * D : pj, sizeof(float) * D);
                s->it = 0;
                if (s->stop || ++s->r == restarts) s->finished = 1;
            }
        }
        done_steps++;
        attack_progress(ctx, (double)done_steps / (total > 0 ? total : 1));
    }
    memcpy(x_adv, best, sizeof(float) * D * B);
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    free(st), free(rng), free(act);
    xfree(best), xfree(sol), xfree(pert), xfree(z);
    return rc;
}

const AttackDef attack_pixle = {
    .name = "Pixle",
    .aliases = "pixle",
    .summary = "Pixle: random search rearranging a few pixels, black-box L0 (arXiv:2202.02236)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = pixle_run,
    .check = pixle_check,
};
