/*
 * onepixel.c: the One Pixel Attack (Su, Vargas and Sakurai, arXiv:1710.08864), as
 * torchattacks 3.5.1 OnePixel computes it with its copy of scipy's differential evolution
 * (DebangLi/one-pixel-attack-pytorch): per sample, a candidate is `pixels` tuples (row,
 * column, one value per channel); the row and column are truncated to integers and the
 * pixel's channels set to the values (in [0, 1), whatever the semantics: under beard
 * semantics a normalised image gets [0, 1) values there, as in BEARD). The energy is
 * softmax(f)_y (targeted: 1 - softmax(f)_t). Differential evolution as torchattacks calls
 * it: strategy best1bin, init "random" (uniform in the unit cube), popsize
 * max(1, int(popsize / len)) per parameter (population max(5, that * len)),
 * recombination 1 (so every trial is the mutant pop_0 + F (pop_r0 - pop_r1), r0 != r1
 * drawn without the candidate), dithered F ~ U(0.5, 1) per generation, out-of-bounds
 * entries redrawn uniformly, greedy replacement (the trials are all made before any
 * replacement, the best updated as they are accepted), no polishing. After each
 * generation the callback stops the search when the best member fools the model; the
 * tolerance test never stops it (atol = -1). The result is the best member.
 * beard evaluates all samples' populations in one batch per generation and takes the
 * callback's answer from the best member's own forward pass (the same image, so the
 * same logits). Deliberate difference: the random numbers come from beard's Philox
 * stream of each sample instead of numpy's global generator (equal in distribution).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"

static const AttackParamDef params[] = {
    {"pixels", 1, P_SAME, P_SAME, "pixels changed", AP_INT(1, 1 << 20)},
    {"steps", 10, P_SAME, P_SAME, "generations of differential evolution", AP_INT(0, 100000)},
    {"popsize", 10, P_SAME, P_SAME, "population size parameter (times the number of parameters, see onepixel.c)",
     AP_INT(1, 100000)},
    {"inf_batch", 128, P_SAME, P_SAME, "torchattacks' forward batch (no effect on the result)", AP_INT(1, 1 << 20)},
    {NULL},
};

static int onepixel_check(const AttackDef *def, const AttackParams *p, const AttackShape *s, Err *e) {
    if (s && attack_params_get(p, "pixels") > (double)s->H * s->W)
        return err_set(e, "%s: pixels must be at most the image's %d x %d = %d pixels, not %.0f", def->name, s->H, s->W,
                       s->H * s->W, attack_params_get(p, "pixels"));
    return 0;
}

typedef struct {
    int P, C, H, W, len, NP;
} Geom;

// the image x (D) with the candidate's pixels set (unit-cube parameters u (len))
static void perturb(float *out, const float *x, const double *u, const Geom *g) {
    size_t plane = (size_t)g->H * g->W;
    memcpy(out, x, sizeof(float) * plane * g->C);
    for (int p = 0; p < g->P; p++) {
        const double *q = u + p * (2 + g->C);
        int row = (int)(0.5 * g->H + (q[0] - 0.5) * g->H), col = (int)(0.5 * g->W + (q[1] - 0.5) * g->W);
        row = row < g->H ? row : g->H - 1, col = col < g->W ? col : g->W - 1;
        for (int c = 0; c < g->C; c++) out[c * plane + (size_t)row * g->W + col] = (float)(0.5 + (q[2 + c] - 0.5));
    }
}

// energies (and whether each candidate fools the model) from logits
static void energies(const float *z, int n, int K, int lab, int targeted, float *en, unsigned char *fool) {
    for (int i = 0; i < n; i++) {
        const float *r = z + (size_t)i * K;
        float mx = -INFINITY, se = 0.0f, p[256];
        for (int k = 0; k < K; k++) mx = r[k] > mx ? r[k] : mx;
        for (int k = 0; k < K; k++) se += p[k] = expf(r[k] - mx);
        int am = 0;
        for (int k = 0; k < K; k++) {
            p[k] /= se;
            if (p[k] > p[am]) am = k; // np.argmax: the first maximum
        }
        en[i] = targeted ? 1.0f - p[lab] : p[lab];
        fool[i] = targeted ? am == lab : am != lab;
    }
}

static int onepixel_run(const AttackCtx *ctx, const float *x, const int *y, const int *t, int B, float *x_adv, Err *e) {
    const Net *net = ctx->net;
    size_t D = ctx->D;
    int K = ctx->K;
    Geom g = {attack_param_int(ctx, "pixels"), net->in_c, net->in_h, net->in_w, 0, 0};
    if ((size_t)g.C * g.H * g.W != D) return err_set(e, "OnePixel needs image inputs");
    if (K > 256) return err_set(e, "OnePixel: at most 256 classes");
    g.len = g.P * (2 + g.C);
    int popmul = attack_param_int(ctx, "popsize") / g.len;
    popmul = popmul > 1 ? popmul : 1;
    g.NP = popmul * g.len > 5 ? popmul * g.len : 5;
    int steps = attack_param_int(ctx, "steps"), NP = g.NP, len = g.len;
    size_t nm = (size_t)B * NP;
    double *pop = malloc(sizeof(double) * nm * len), *trial = malloc(sizeof(double) * nm * len);
    float *en = malloc(sizeof(float) * nm), *ten = malloc(sizeof(float) * nm);
    unsigned char *fool = malloc(nm), *tfool = malloc(nm), *done = calloc((size_t)B, 1);
    float *xs = xmalloc(sizeof(float) * nm * D), *z = xmalloc(sizeof(float) * nm * K);
    Rng *rng = malloc(sizeof(Rng) * B);
    int rc = -1;
    if (!pop || !trial || !en || !ten || !fool || !tfool || !done || !xs || !z || !rng) {
        err_set(e, "out of memory for OnePixel (%d samples x %d candidates)", B, NP);
        goto done;
    }
    for (int b = 0; b < B; b++) {
        attack_rng(ctx, b, 1, &rng[b]);
        for (int i = 0; i < NP * len; i++) pop[(size_t)b * NP * len + i] = rng_uniform_d(&rng[b]);
    }
    // the initial energies, the best moved to position 0
    for (int b = 0; b < B; b++)
        for (int i = 0; i < NP; i++) perturb(xs + ((size_t)b * NP + i) * D, x + (size_t)b * D, pop + ((size_t)b * NP + i) * len, &g);
    if (attack_logits(ctx, xs, (int)nm, z, e)) goto done;
    for (int b = 0; b < B; b++) {
        int lab = ctx->targeted ? t[b] : y[b];
        float *eb = en + (size_t)b * NP;
        energies(z + (size_t)b * NP * K, NP, K, lab, ctx->targeted, eb, fool + (size_t)b * NP);
        int mi = 0;
        for (int i = 1; i < NP; i++)
            if (eb[i] < eb[mi]) mi = i; // np.argmin: the first minimum
        double *pb = pop + (size_t)b * NP * len;
        float te = eb[mi];
        eb[mi] = eb[0], eb[0] = te;
        unsigned char tf = fool[(size_t)b * NP + mi];
        fool[(size_t)b * NP + mi] = fool[(size_t)b * NP], fool[(size_t)b * NP] = tf;
        for (int k = 0; k < len; k++) {
            double v = pb[mi * len + k];
            pb[mi * len + k] = pb[k], pb[k] = v;
        }
    }
    for (int s = 0; s < steps; s++) {
        int live = 0;
        for (int b = 0; b < B; b++) live += !done[b];
        if (!live) break;
        // mutants of the live samples (all trials before any replacement)
        int nb = 0;
        int *who = malloc(sizeof(int) * B);
        if (!who) {
            err_set(e, "out of memory");
            goto done;
        }
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            who[nb] = b;
            Rng *r = &rng[b];
            double F = rng_uniform_d(r) * (1.0 - 0.5) + 0.5;
            const double *pb = pop + (size_t)b * NP * len;
            double *tb = trial + (size_t)nb * NP * len;
            for (int c = 0; c < NP; c++) {
                (void)rng_below(r, (uint32_t)len); // fill_point: drawn, unused when recombination is 1
                // r0 != r1, both != c: the first two of a shuffle of the other members
                int r0 = (int)rng_below(r, (uint32_t)(NP - 1));
                r0 += r0 >= c;
                int r1 = (int)rng_below(r, (uint32_t)(NP - 2));
                int lo = c < r0 ? c : r0, hi = c < r0 ? r0 : c;
                r1 += r1 >= lo;
                r1 += r1 >= hi;
                double *tc = tb + (size_t)c * len;
                for (int k = 0; k < len; k++) tc[k] = pb[k] + F * (pb[r0 * len + k] - pb[r1 * len + k]);
                for (int k = 0; k < len; k++) (void)rng_uniform(r); // crossovers: all below 1
                for (int k = 0; k < len; k++)
                    if (tc[k] < 0 || tc[k] > 1) tc[k] = rng_uniform_d(r);
                perturb(xs + ((size_t)nb * NP + c) * D, x + (size_t)b * D, tc, &g);
            }
            nb++;
        }
        if (attack_logits(ctx, xs, nb * NP, z, e)) {
            free(who);
            goto done;
        }
        for (int j = 0; j < nb; j++) {
            int b = who[j], lab = ctx->targeted ? t[b] : y[b];
            float *eb = en + (size_t)b * NP, *te = ten + (size_t)j * NP;
            unsigned char *fb = fool + (size_t)b * NP, *tf = tfool + (size_t)j * NP;
            energies(z + (size_t)j * NP * K, NP, K, lab, ctx->targeted, te, tf);
            double *pb = pop + (size_t)b * NP * len, *tb = trial + (size_t)j * NP * len;
            for (int c = 0; c < NP; c++) {
                if (te[c] < eb[c]) {
                    memcpy(pb + (size_t)c * len, tb + (size_t)c * len, sizeof(double) * len);
                    eb[c] = te[c], fb[c] = tf[c];
                    if (te[c] < eb[0]) {
                        memcpy(pb, tb + (size_t)c * len, sizeof(double) * len);
                        eb[0] = te[c], fb[0] = tf[c];
                    }
                }
            }
            if (fb[0]) done[b] = 1; // the callback: the best member fools the model
        }
        free(who);
        attack_progress(ctx, (double)(s + 1) / steps);
    }
    for (int b = 0; b < B; b++) perturb(x_adv + (size_t)b * D, x + (size_t)b * D, pop + (size_t)b * NP * len, &g);
    attack_progress(ctx, 1.0);
    rc = 0;
done:
    free(pop), free(trial), free(en), free(ten), free(fool), free(tfool), free(done), free(rng);
    xfree(xs), xfree(z);
    return rc;
}

const AttackDef attack_onepixel = {
    .name = "OnePixel",
    .aliases = "onepixel,one_pixel",
    .summary = "One Pixel Attack: differential evolution over a few pixels, L0 (arXiv:1710.08864)",
    .untargeted_ok = 1,
    .targeted_ok = 1,
    .params = params,
    .run = onepixel_run,
    .check = onepixel_check,
};
