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

#define LANES 16

// sum(a) and sum(a * b) over n values (b may be NULL: only the first), in LANES real
// lanes (vectorised without -ffast-math) combined in double, as norm.c sums
static void sums2(const real *a, const real *b, size_t n, double *sa, double *sab) {
    real l1[LANES] = {0}, l2[LANES] = {0};
    size_t i = 0;
    if (b) {
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++) l1[j] += a[i + j], l2[j] += a[i + j] * b[i + j];
    } else {
        for (; i + LANES <= n; i += LANES)
            for (int j = 0; j < LANES; j++) l1[j] += a[i + j];
    }
    double s1 = 0, s2 = 0;
    for (int j = 0; j < LANES; j++) s1 += l1[j], s2 += l2[j];
    for (; i < n; i++) s1 += a[i], s2 += b ? (double)a[i] * b[i] : 0.0;
    *sa = s1;
    if (sab) *sab = s2;
}

static double dot(const real *a, const real *b, size_t n) {
    real l[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) l[j] += a[i + j] * b[i + j];
    double s = 0;
    for (int j = 0; j < LANES; j++) s += l[j];
    for (; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// y[i] (+)= ca a[i] + cb b[i] + cc c[i] + cd d[i] + k; a..d may be NULL (coefficient unused)
static void affine4(real *y, int add, const real *a, real ca, const real *b, real cb, const real *c, real cc,
                    const real *d, real cd, real k, size_t n) {
    for (size_t i = 0; i < n; i++) {
        real v = k;
        if (a) v += ca * a[i];
        if (b) v += cb * b[i];
        if (c) v += cc * c[i];
        if (d) v += cd * d[i];
        y[i] = add ? y[i] + v : v;
    }
}

// mean(t_x) and q = mean(xhat t_x) of one group (0 without t_x or with fixed statistics)
static void group_tx_stats(const real *x, const real *tx, double m, double r, const Group *G, double *mt, double *q) {
    *mt = *q = 0.0;
    if (!tx || G->fixed) return;
    double st = 0.0, sxt = 0.0;
    for (int s = 0; s < G->nseg; s++) {
        double a, ab;
        sums2(tx + (size_t)s * G->stride, x + (size_t)s * G->stride, G->len, &a, &ab);
        st += a, sxt += ab;
    }
    double N = (double)G->nseg * G->len;
    *mt = st / N;
    *q = r * (sxt - m * st) / N; // mean((x - m) r t_x)
}

// t_y = t_gamma xhat + gamma t_xhat + t_beta, linear in (x, t_x) per segment
static void group_forward_tangent(real *ty, const real *x, const real *tx, const real *g, const real *tg,
                                  const real *tb, double m, double r, const Group *G) {
    double mt, q;
    group_tx_stats(x, tx, m, r, G, &mt, &q);
    for (int s = 0; s < G->nseg; s++) {
        size_t off = (size_t)s * G->stride;
        double gm = gam_at(g, G, s), tgm = tgam_at(tg, G, s), tbt = tb ? tb[(size_t)s * G->pstep] : 0.0;
        // xhat = r x - r m;  t_xhat = r (t_x - mt - q xhat) = r t_x - r mt - q r^2 x + q r^2 m
        double qr = q * r * r;
        double cx = tgm * r - gm * qr, ct = gm * r, k = -tgm * r * m + gm * (qr * m - r * mt) + tbt;
        affine4(ty + off, 0, x + off, (real)cx, tx ? tx + off : NULL, (real)ct, NULL, 0, NULL, 0, (real)k, G->len);
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
    int need_tdx = tdx != NULL;
    if (!G->fixed && need_tdx) {
        for (int s = 0; s < G->nseg; s++) {
            size_t off = (size_t)s * G->stride;
            double s1, sdx, st1 = 0, stx = 0, sdt = 0;
            sums2(dy + off, x + off, G->len, &s1, &sdx);
            if (tdy) sums2(tdy + off, x + off, G->len, &st1, &stx);
            if (tx) sdt = dot(dy + off, tx + off, G->len);
            double s2 = r * (sdx - m * s1), st2 = r * (stx - m * st1); // sum dy xhat, sum t_dy xhat
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
        double gm = gam_at(g, G, s), tgm = tgam_at(tg, G, s);
        if (need_tdx) {
            // t_dx = rt (gy - a - xhat c) + r (t_gy - t_a - t_xhat c - xhat t_c), linear in
            // (dy, t_dy, x, t_x) once xhat = r x - r m and t_xhat = r (t_x - mt - q xhat)
            double k1 = -(rt * c + r * ct), k2 = -r * c; // coefficients of xhat and t_xhat
            double qr = q * r * r, cdy = rt * gm + r * tgm, ctdy = r * gm;
            double cx = k1 * r - k2 * qr, ctx = k2 * r;
            double k0 = -rt * a - r * at - k1 * r * m + k2 * (qr * m - r * mt);
            affine4(tdx + off, 1, ds, (real)cdy, tds, (real)ctdy, xs, (real)cx, ts, (real)ctx, (real)k0, G->len);
        }
        if (tdg || tdb) {
            // sum(t_dy xhat + dy t_xhat), sum(t_dy)
            double s1, sdx, st1 = 0, stx = 0, sdt = 0;
            sums2(ds, xs, G->len, &s1, &sdx);
            if (tds) sums2(tds, xs, G->len, &st1, &stx);
            if (ts) sdt = dot(ds, ts, G->len);
            double pg = r * (stx - m * st1);
            if (ts) pg += r * sdt - r * mt * s1 - q * r * r * (sdx - m * s1);
            if (tdg) tdg[(size_t)s * G->pstep] += (real)pg;
            if (tdb) tdb[(size_t)s * G->pstep] += (real)st1;
        }
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
