/*
 * norm_tangent.c: tangents of GroupNorm (InstanceNorm), LayerNorm and BatchNorm2d (see
 * tangent.h), all from one routine over a normalisation group.
 *
 * A group is N values normalised with one mean m and rstd r (saved by the primal
 * forward), xhat = (x - m) r, y = gamma xhat + beta. With gy = gamma dy the backward is
 *   dx = r (gy - a - xhat c),   a = mean(gy),  c = mean(gy xhat)
 * and its tangent, for tangents (t_x, t_dy, t_gamma), follows by the product rule:
 *   q      = mean(xhat t_x),          t_r = -r^2 q
 *   t_xhat = r (t_x - mean(t_x) - xhat q)
 *   t_gy   = t_gamma dy + gamma t_dy
 *   t_a    = mean(t_gy),              t_c = mean(t_gy xhat + gy t_xhat)
 *   t_dx   = t_r (gy - a - xhat c) + r (t_gy - t_a - t_xhat c - xhat t_c)
 *   t_dgamma += sum(t_dy xhat + dy t_xhat),   t_dbeta += sum(t_dy)
 *   t_y    = t_gamma xhat + gamma t_xhat + t_beta                 (forward tangent)
 * With fixed statistics (BatchNorm in eval mode: running mean and variance) m and r are
 * constants: t_xhat = r t_x, t_r = 0, and dx = r gy has no mean terms.
 *
 * The group's values lie in `nseg` segments of `len` contiguous values, `stride` apart;
 * segment s uses parameter s * pstep:
 *   GroupNorm  one group per (sample, group): segments are its channels (pstep 1)
 *   LayerNorm  one group per sample: segments are single values (per-element affine)
 *   BatchNorm  one group per channel: segments are its planes in each sample (pstep 0)
 * Sums run in double. Parameter tangents of Group/LayerNorm come from per-thread
 * partials reduced in thread order (deterministic for a given thread count, as the
 * convolution's weight gradients); BatchNorm's groups own their parameters.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "tangent.h"

typedef struct {
    int nseg;
    size_t len, stride;
    int pstep;
    int fixed; // statistics are constants (BatchNorm eval)
} Group;

static inline double gam_at(const real *g, const Group *G, int s) { return g ? g[(size_t)s * G->pstep] : 1.0; }
static inline double tgam_at(const real *tg, const Group *G, int s) { return tg ? tg[(size_t)s * G->pstep] : 0.0; }

// mean(t_x) and q = mean(xhat t_x) of one group (0 without t_x or with fixed statistics)
static void group_tx_stats(const real *x, const real *tx, double m, double r, const Group *G, double *mt, double *q) {
    *mt = *q = 0.0;
    if (!tx || G->fixed) return;
    double st = 0.0, sq = 0.0;
    for (int s = 0; s < G->nseg; s++) {
        const real *xs = x + (size_t)s * G->stride, *ts = tx + (size_t)s * G->stride;
        for (size_t i = 0; i < G->len; i++) {
            st += ts[i];
            sq += ((xs[i] - m) * r) * ts[i];
        }
    }
    double N = (double)G->nseg * G->len;
    *mt = st / N;
    *q = sq / N;
}

static void group_forward_tangent(real *ty, const real *x, const real *tx, const real *g, const real *tg,
                                  const real *tb, double m, double r, const Group *G) {
    double mt, q;
    group_tx_stats(x, tx, m, r, G, &mt, &q);
    for (int s = 0; s < G->nseg; s++) {
        const real *xs = x + (size_t)s * G->stride, *ts = tx ? tx + (size_t)s * G->stride : NULL;
        real *ys = ty + (size_t)s * G->stride;
        double gm = gam_at(g, G, s), tgm = tgam_at(tg, G, s), tbt = tb ? tb[(size_t)s * G->pstep] : 0.0;
        for (size_t i = 0; i < G->len; i++) {
            double xh = (xs[i] - m) * r;
            double xht = ts ? r * (ts[i] - mt - xh * q) : 0.0;
            ys[i] = (real)(tgm * xh + gm * xht + tbt);
        }
    }
}

static void group_backward_tangent(real *tdx, real *tdg, real *tdb, const real *dy, const real *tdy, const real *x,
                                   const real *tx, const real *g, const real *tg, double m, double r,
                                   const Group *G) {
    double N = (double)G->nseg * G->len;
    double mt, q;
    group_tx_stats(x, tx, m, r, G, &mt, &q);
    // sums over the group: A = sum gy, Cs = sum gy xhat, At = sum t_gy, Ct = sum t_gy xhat,
    // Gx = sum gy t_x (for sum gy t_xhat = r (Gx - mt A - q Cs))
    double A = 0, Cs = 0, At = 0, Ct = 0, Gx = 0;
    if (!G->fixed) {
        for (int s = 0; s < G->nseg; s++) {
            const real *xs = x + (size_t)s * G->stride, *ds = dy + (size_t)s * G->stride;
            const real *tds = tdy ? tdy + (size_t)s * G->stride : NULL, *ts = tx ? tx + (size_t)s * G->stride : NULL;
            double s1 = 0, s2 = 0, st1 = 0, st2 = 0, sdt = 0;
            for (size_t i = 0; i < G->len; i++) {
                double xh = (xs[i] - m) * r;
                s1 += ds[i];
                s2 += ds[i] * xh;
                if (tds) st1 += tds[i], st2 += tds[i] * xh;
                if (ts) sdt += ds[i] * ts[i];
            }
            double gm = gam_at(g, G, s), tgm = tgam_at(tg, G, s);
            A += gm * s1, Cs += gm * s2;
            At += tgm * s1 + gm * st1, Ct += tgm * s2 + gm * st2;
            Gx += gm * sdt;
        }
    }
    double a = A / N, c = Cs / N, at = At / N;
    double ct = (Ct + r * (Gx - mt * A - q * Cs)) / N;
    double rt = G->fixed ? 0.0 : -r * r * q;
    for (int s = 0; s < G->nseg; s++) {
        size_t off = (size_t)s * G->stride;
        const real *xs = x + off, *ds = dy + off, *tds = tdy ? tdy + off : NULL, *ts = tx ? tx + off : NULL;
        real *tdxs = tdx ? tdx + off : NULL;
        double gm = gam_at(g, G, s), tgm = tgam_at(tg, G, s);
        double pg = 0, pb = 0;
        for (size_t i = 0; i < G->len; i++) {
            double xh = (xs[i] - m) * r;
            double xht = ts ? r * (ts[i] - mt - xh * q) : 0.0;
            double tdyi = tds ? tds[i] : 0.0;
            if (tdxs) {
                double gy = gm * ds[i], gyt = tgm * ds[i] + gm * tdyi;
                tdxs[i] += (real)(rt * (gy - a - xh * c) + r * (gyt - at - xht * c - xh * ct));
            }
            pg += tdyi * xh + ds[i] * xht;
            pb += tdyi;
        }
        if (tdg) tdg[(size_t)s * G->pstep] += (real)pg;
        if (tdb) tdb[(size_t)s * G->pstep] += (real)pb;
    }
}

// per-thread partial parameter tangents (2 * P reals each), or NULL when none are wanted
// or there is no memory (then the caller runs on one thread into the outputs directly)
static real *partials_alloc(int want, int nt, size_t P) {
    return want && nt > 1 ? xcalloc(sizeof(real) * 2 * P * (size_t)nt) : NULL;
}

static void partials_reduce(real *tdg, real *tdb, const real *part, int nt, size_t P) {
    for (int t = 0; t < nt; t++) {
        const real *p = part + (size_t)t * 2 * P;
        for (size_t i = 0; i < P; i++) {
            if (tdg) tdg[i] += p[i];
            if (tdb) tdb[i] += p[P + i];
        }
    }
}

// runs one group per (sample b, group j) over the batch, G groups per sample of sz
// values; param tangents reduced as described above
static void run_groups_backward(real *tdx, real *tdg, real *tdb, const real *dy, const real *tdy, const real *mean,
                                const real *rstd, const real *x, const real *tx, const real *g, const real *tg, int B,
                                size_t sz, int ngroups, size_t goff, size_t poff, size_t P, const Group *G) {
    int want = tdg || tdb;
    int nt = omp_in_parallel() || B < 2 ? 1 : omp_get_max_threads();
    if (nt > B) nt = B;
    real *part = partials_alloc(want, nt, P);
    if (want && nt > 1 && !part) nt = 1;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        real *pg = part ? part + (size_t)t * 2 * P : tdg, *pb = part ? part + (size_t)t * 2 * P + P : tdb;
        if (!tdg) pg = NULL;
        if (!tdb) pb = NULL;
        int lo = (int)((long)B * t / nt), hi = (int)((long)B * (t + 1) / nt);
        for (int b = lo; b < hi; b++)
            for (int j = 0; j < ngroups; j++) {
                size_t o = b * sz + j * goff, k = (size_t)b * ngroups + j;
                group_backward_tangent(tdx ? tdx + o : NULL, pg ? pg + j * poff : NULL, pb ? pb + j * poff : NULL,
                                       dy + o, tdy ? tdy + o : NULL, x + o, tx ? tx + o : NULL,
                                       g ? g + j * poff : NULL, tg ? tg + j * poff : NULL, mean[k], rstd[k], G);
            }
    }
    if (part) {
        partials_reduce(tdg, tdb, part, nt, P);
        xfree(part);
    }
}

// ----------------------------------------------------------------------------
// GroupNorm / InstanceNorm

void groupnorm_forward_tangent(real *tout, const real *mean, const real *rstd, const real *in, const real *tin,
                               const real *gamma, const real *tgamma, const real *tbeta, int B, int C, int HW, int G) {
    int cpg = C / G;
    Group gr = {cpg, (size_t)HW, (size_t)HW, 1, 0};
    size_t sz = (size_t)C * HW, goff = (size_t)cpg * HW;
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < G; j++) {
            size_t o = b * sz + j * goff, po = (size_t)j * cpg, k = (size_t)b * G + j;
            group_forward_tangent(tout + o, in + o, tin ? tin + o : NULL, gamma ? gamma + po : NULL,
                                  tgamma ? tgamma + po : NULL, tbeta ? tbeta + po : NULL, mean[k], rstd[k], &gr);
        }
}

void groupnorm_backward_tangent(real *tdin, real *tdgamma, real *tdbeta, const real *dout, const real *tdout,
                                const real *mean, const real *rstd, const real *in, const real *tin, const real *gamma,
                                const real *tgamma, int B, int C, int HW, int G) {
    int cpg = C / G;
    Group gr = {cpg, (size_t)HW, (size_t)HW, 1, 0};
    run_groups_backward(tdin, tdgamma, tdbeta, dout, tdout, mean, rstd, in, tin, gamma, tgamma, B, (size_t)C * HW, G,
                        (size_t)cpg * HW, (size_t)cpg, (size_t)C, &gr);
}

// ----------------------------------------------------------------------------
// LayerNorm (per-element affine)

void layernorm_forward_tangent(real *tout, const real *mean, const real *rstd, const real *in, const real *tin,
                               const real *gamma, const real *tgamma, const real *tbeta, int B, int D) {
    Group gr = {D, 1, 1, 1, 0};
#pragma omp parallel for schedule(static) if (B > 1)
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * D;
        group_forward_tangent(tout + o, in + o, tin ? tin + o : NULL, gamma, tgamma, tbeta, mean[b], rstd[b], &gr);
    }
}

void layernorm_backward_tangent(real *tdin, real *tdgamma, real *tdbeta, const real *dout, const real *tdout,
                                const real *mean, const real *rstd, const real *in, const real *tin, const real *gamma,
                                const real *tgamma, int B, int D) {
    Group gr = {D, 1, 1, 1, 0};
    run_groups_backward(tdin, tdgamma, tdbeta, dout, tdout, mean, rstd, in, tin, gamma, tgamma, B, (size_t)D, 1, 0, 0,
                        (size_t)D, &gr);
}

// ----------------------------------------------------------------------------
// BatchNorm2d

void batchnorm_forward_tangent(real *tout, const real *mean, const real *rstd, const real *in, const real *tin,
                               const real *gamma, const real *tgamma, const real *tbeta, int B, int C, int HW,
                               int train) {
    Group gr = {B, (size_t)HW, (size_t)C * HW, 0, !train};
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++) {
        size_t o = (size_t)c * HW;
        group_forward_tangent(tout + o, in + o, tin ? tin + o : NULL, gamma ? gamma + c : NULL,
                              tgamma ? tgamma + c : NULL, tbeta ? tbeta + c : NULL, mean[c], rstd[c], &gr);
    }
}

void batchnorm_backward_tangent(real *tdin, real *tdgamma, real *tdbeta, const real *dout, const real *tdout,
                                const real *mean, const real *rstd, const real *in, const real *tin, const real *gamma,
                                const real *tgamma, int B, int C, int HW, int train) {
    Group gr = {B, (size_t)HW, (size_t)C * HW, 0, !train};
#pragma omp parallel for schedule(static) if (C > 1 && B * HW > 4096)
    for (int c = 0; c < C; c++) {
        size_t o = (size_t)c * HW;
        group_backward_tangent(tdin ? tdin + o : NULL, tdgamma ? tdgamma + c : NULL, tdbeta ? tdbeta + c : NULL,
                               dout + o, tdout ? tdout + o : NULL, in + o, tin ? tin + o : NULL,
                               gamma ? gamma + c : NULL, tgamma ? tgamma + c : NULL, mean[c], rstd[c], &gr);
    }
}
