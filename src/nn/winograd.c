/*
 * winograd.c: the forward pass and the input gradient of a 3x3, stride-1, pad-1
 * convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, arXiv
 * 1509.09308).
 *
 * Each 2x2 block of output pixels (a "tile") is computed from the 4x4 input patch around
 * it with 16 multiplications per (input, output) channel pair instead of 36:
 *   V = B^T d B     (4x4, per tile and input channel)
 *   U = G g G^T     (4x4, per output and input channel; winograd_weights, once per
 *                   change of the weights)
 *   M[e] = sum_c U[e][o][c] V[e][c][tile]   for each of the 16 positions e: 16 GEMMs
 *   Y = A^T M A     (2x2 output pixels, + bias)
 * with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * All constants are exact in binary floating point; the result differs from the direct
 * sum only by rounding (tested against conv2d_forward_ref in test_nn; the GEMM kernel is
 * compiled with FMA contraction, see the Makefile). The hidden layers
 * of a ConvNet do 2.25x fewer multiply-adds this way, which is what makes forward-only
 * work (Square's 5000 queries) fast. The input gradient is the same convolution on the
 * rotated kernels (winograd_weights_backward); weight gradients stay on im2col + sgemm.
 *
 * F(4x4, 3x3) (tile 4, selected by BEARD_CONV=winograd4; F(2x2) stays the default):
 * each 4x4 block of outputs from the 6x6 patch around it, with 36 multiplications per
 * channel pair instead of 144 (1.78x fewer than F(2x2)), on the points 0, 1, -1, 2, -2
 * and infinity:
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
 *          0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * G's thirds and sixths are not exact in binary, and the larger coefficients amplify
 * rounding: on BEARD's BACON ConvNet its float32 logits are about 2.5 times further from
 * a float64 direct convolution than F(2x2)'s (max 1.4e-5 against 6e-6 on 128 test images;
 * float32 direct: 6.4e-6). U is computed in double and rounded once.
 *
 * Tiles are processed a block of tile rows at a time, so that a block's V and M (16 x C
 * x ~32 tiles) stay in L2, and the GEMMs run on a register-blocked kernel over the packed
 * U: MR output channels by up to two vectors of tiles. The samples a thread is given
 * (one thread's chunk of the fused driver, or its share of a batch) are one sequence of
 * tile rows, so that a block may span samples: ConvNet's 8x8 layers have 16 tiles a
 * sample, and a block of two samples loads each U once for 32 tiles, with the wider
 * kernel. Each output is a sum over the input channels in order in its own lane, so a
 * sample's result is the same in any block, chunk or thread (test_nn checks).
 */
#include <omp.h>
#include <string.h>

#include "../core/common.h"
#include "../core/parallel.h"
#include "nn.h"
#include "vec.h"

#define MR GEMM_MR // output channels per register block
#ifndef BLOCK_TILES
#define BLOCK_TILES 32 // aim for this many tiles per block
#endif

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

int winograd_applies(int Cin, int K, int stride, int pad) { return K == 3 && stride == 1 && pad == 1 && Cin >= 8; }

int winograd_small_maps(void) { return !VEC16; }

// positions of a transformed tile: (tile + 2)^2
static int tile_elems(int tile) { return (tile + 2) * (tile + 2); }

size_t winograd_weights_size(int tile, int Cout, int Cin) { return (size_t)tile_elems(tile) * round_up(Cout, MR) * Cin; }

// u = G g G^T of one 3x3 kernel g (row-major); flip: of g rotated by 180 degrees
static void transform_kernel(real u[16], const real *g, int flip) {
    real k[9];
    for (int i = 0; i < 9; i++) k[i] = g[flip ? 8 - i : i];
    real t[4][3]; // G g
    for (int j = 0; j < 3; j++) {
        real g0 = k[j], g1 = k[3 + j], g2 = k[6 + j];
        t[0][j] = g0;
        t[1][j] = (real)0.5 * (g0 + g1 + g2);
        t[2][j] = (real)0.5 * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) { // (G g) G^T
        u[i * 4 + 0] = t[i][0];
        u[i * 4 + 1] = (real)0.5 * (t[i][0] + t[i][1] + t[i][2]);
        u[i * 4 + 2] = (real)0.5 * (t[i][0] - t[i][1] + t[i][2]);
        u[i * 4 + 3] = t[i][2];
    }
}

// u = G g G^T for F(4x4, 3x3), in double, rounded once
static void transform_kernel4(real u[36], const real *g, int flip) {
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double k[9], t[6][3];
    for (int i = 0; i < 9; i++) k[i] = g[flip ? 8 - i : i];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) u[i * 6 + j] = (real)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
}

// U packed as [e][o / MR][c][o % MR], zero rows past Cout, for the convolution
// (Cin -> Cout) whose kernel (o, c) is g(o, c): weight[o][c], or for the input gradient
// (Cout and Cin swapped) weight[c][o] rotated by 180 degrees
static void pack_weights(int tile, real *U, const real *weight, int Cout, int Cin, int backward) {
    int Coutp = round_up(Cout, MR), E = tile_elems(tile);
    memset(U, 0, sizeof(real) * winograd_weights_size(tile, Cout, Cin));
    for (int o = 0; o < Cout; o++)
        for (int c = 0; c < Cin; c++) {
            real u[36];
            const real *g = weight + ((size_t)(backward ? c * Cout + o : o * Cin + c)) * 9;
            if (tile == 4) transform_kernel4(u, g, backward);
            else transform_kernel(u, g, backward);
            for (size_t e = 0; e < (size_t)E; e++) U[((e * (Coutp / MR) + o / MR) * Cin + c) * MR + o % MR] = u[e];
        }
}

void winograd_weights(int tile, real *U, const real *weight, int Cout, int Cin) {
    pack_weights(tile, U, weight, Cout, Cin, 0);
}

// The input gradient of out = conv(in, weight) (3x3, stride 1, pad 1) is
//   din[c][y][x] = sum_o sum_ij weight[o][c][2-i][2-j] dout[o][y+i-1][x+j-1],
// the same convolution from Cout to Cin channels with every kernel rotated by 180
// degrees and the channel roles swapped: U of that convolution.
void winograd_weights_backward(int tile, real *U, const real *weight, int Cout, int Cin) {
    pack_weights(tile, U, weight, Cin, Cout, 1);
}

#if VEC16 // the row-vector paths shuffle 16 lanes
#define Z 16 // a lane of b = 0 in the shuffles below

// one image row of W <= 16 values as a vector, zeros past W
static inline __attribute__((always_inline)) vreal row_load(const real *row, int W) { return lanes_load(row, W); }

// V[e][c][j] (ldv) for the tiles of tile rows [ty0, ty1): j = (ty - ty0) * tw + tx.
// Fast path for W <= 16: a row of tiles is one vector. Down the columns first,
//   t = B^T (rows 2ty-1 .. 2ty+2), a vector per row of B^T,
// then along each t, where tile x sees (t[2x-1], t[2x], t[2x+1], t[2x+2]): four shuffles.
static inline __attribute__((always_inline)) void input_transform_vec(real *V, const real *in, int Cin, int H, int W,
                                                                      int tw, int ty0, int ty1, int ldv, int c0,
                                                                      int c1) {
    size_t eplane = (size_t)Cin * ldv;
    const vreal zero = {0};
    for (int c = c0; c < c1; c++) {
        const real *plane = in + (size_t)c * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            vreal d[4];
            for (int r = 0; r < 4; r++) {
                int y = 2 * ty - 1 + r;
                d[r] = y >= 0 && y < H ? row_load(plane + (size_t)y * W, W) : zero;
            }
            vreal t[4] = {d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]};
            real *v = V + (size_t)c * ldv + (size_t)(ty - ty0) * tw;
            for (int i = 0; i < 4; i++) {
                vreal p0 = SHUF(t[i], zero, Z, 1, 3, 5, 7, 9, 11, 13, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal p1 = SHUF(t[i], zero, 0, 2, 4, 6, 8, 10, 12, 14, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal p2 = SHUF(t[i], zero, 1, 3, 5, 7, 9, 11, 13, 15, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal p3 = SHUF(t[i], zero, 2, 4, 6, 8, 10, 12, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal u[4] = {p0 - p2, p1 + p2, p2 - p1, p1 - p3};
                for (int q = 0; q < 4; q++) lanes_store(v + (size_t)(i * 4 + q) * eplane, u[q], tw);
            }
        }
    }
}
#endif

// the even and the odd lanes of the 2 VL values a, b (a's first)
#if VEC16
#define EVENS(a, b) SHUF(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) SHUF(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#else
#define EVENS(a, b) SHUF(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define ODDS(a, b) SHUF(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#endif

// lanes 0.. of a and b interleaved (ZIP_LO) and the upper halves (ZIP_HI); ZIP2_*: the
// same for pairs of lanes
#if VEC16
#define ZIP_LO(a, b) SHUF(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIP_HI(a, b) SHUF(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#define ZIP2_LO(a, b) SHUF(a, b, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23)
#define ZIP2_HI(a, b) SHUF(a, b, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)
#else
#define ZIP_LO(a, b) SHUF(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define ZIP_HI(a, b) SHUF(a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#define ZIP2_LO(a, b) SHUF(a, b, 0, 1, 8, 9, 2, 3, 10, 11)
#define ZIP2_HI(a, b) SHUF(a, b, 4, 5, 12, 13, 6, 7, 14, 15)
#endif

// the padded row length of input_transform_any: the 2 tw + 2 columns a row of tiles
// reads, rounded up so that VL tiles at a time read whole vectors (the vectors of t
// stored from column 1 end by column 2 round_up(tw, VL), inside it too)
static int any_row_len(int tw) { return round_up(2 * round_up(tw, VL) + 2, VL); }

// scratch floats the generic input transforms need: F(2x2)'s 4 rows of t, F(4x4)'s padded
// row and 36 rows of round_up(tw, VL)
static size_t any_tmp_len(int tw) { return MAX((size_t)40 * (round_up(tw, VL) + 1), (size_t)4 * any_row_len(tw)); }

// the same for any W, in the same order of operations as input_transform_vec (down the
// columns, then along the rows), so that both paths give the same bits: the four rows
// of a tile row, padded (d[r][k] = row[k - 1], zeros outside), combined into
// t = B^T d, then each tile x takes t[2x .. 2x + 3], VL tiles at a time (the even and
// odd lanes of t from 2x and from 2x + 2). t is made from the image rows a vector at a
// time (a row outside the image is a vector of zeros, as d's zeros were) and stored one
// column on; its first column and those past W + 1 stay the zeros they start as.
static void input_transform_any(real *V, const real *in, int Cin, int H, int W, int tw, int ty0, int ty1, int ldv,
                                real *t, int c0, int c1) {
    int np = any_row_len(tw); // padded columns
    size_t eplane = (size_t)Cin * ldv;
    const vreal zero = {0};
    memset(t, 0, sizeof(real) * 4 * np);
    for (int c = c0; c < c1; c++) {
        const real *plane = in + (size_t)c * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            const real *row[4];
            for (int r = 0; r < 4; r++) {
                int y = 2 * ty - 1 + r;
                row[r] = y >= 0 && y < H ? plane + (size_t)y * W : NULL;
            }
            for (int k = 0; k < W; k += VL) {
                int n = MIN(VL, W - k);
                vreal d[4];
                for (int r = 0; r < 4; r++) d[r] = row[r] ? lanes_load(row[r] + k, n) : zero;
                vstore(t + 1 + k, d[0] - d[2]);
                vstore(t + np + 1 + k, d[1] + d[2]);
                vstore(t + 2 * np + 1 + k, d[2] - d[1]);
                vstore(t + 3 * np + 1 + k, d[1] - d[3]);
            }
            size_t j0 = (size_t)(ty - ty0) * tw;
            for (int i = 0; i < 4; i++) {
                const real *ti = t + (size_t)i * np;
                real *v0 = V + (size_t)(i * 4) * eplane + (size_t)c * ldv + j0;
                for (int x = 0; x < tw; x += VL) {
                    vreal a = vload(ti + 2 * x), b = vload(ti + 2 * x + VL);
                    vreal a2 = vload(ti + 2 * x + 2), b2 = vload(ti + 2 * x + 2 + VL);
                    vreal p0 = EVENS(a, b), p1 = ODDS(a, b), p2 = EVENS(a2, b2), p3 = ODDS(a2, b2);
                    int n = MIN(VL, tw - x);
                    lanes_store(v0 + x, p0 - p2, n);
                    lanes_store(v0 + eplane + x, p1 + p2, n);
                    lanes_store(v0 + 2 * eplane + x, p2 - p1, n);
                    lanes_store(v0 + 3 * eplane + x, p1 - p3, n);
                }
            }
        }
    }
}

#if VEC16 // the row-vector paths shuffle 16 lanes
// out[o][2ty + dy][2tx + dx] = (A^T M A)[dy][dx] + bias[o], for tile rows [ty0, ty1).
// Fast path for W <= 16: a row of tiles is one vector, and one shuffle interleaves
// the two output columns of the tiles into an image row. (M has a vector of slack past
// its end, so reading whole vectors is safe.)
static inline __attribute__((always_inline)) void output_transform_vec(real *out, const real *M, const real *bias,
                                                                       int Cout, int Coutp, int H, int W, int tw,
                                                                       int ty0, int ty1, int ldm, int add, int o0,
                                                                       int o1) {
    size_t eplane = (size_t)Coutp * ldm;
    for (int o = o0; o < o1; o++) {
        real b = bias ? bias[o] : 0;
        real *plane = out + (size_t)o * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            const real *m = M + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            vreal s0[4], s1[4];
            for (int i = 0; i < 4; i++) { // M A along each row i of M
                const real *mi = m + (size_t)(i * 4) * eplane;
                vreal m0 = vload(mi), m1 = vload(mi + eplane), m2 = vload(mi + 2 * eplane), m3 = vload(mi + 3 * eplane);
                s0[i] = m0 + m1 + m2;
                s1[i] = m1 - m2 - m3;
            }
            vreal y00 = s0[0] + s0[1] + s0[2] + b, y01 = s1[0] + s1[1] + s1[2] + b;
            vreal y10 = s0[1] - s0[2] - s0[3] + b, y11 = s1[1] - s1[2] - s1[3] + b;
            real *p0 = plane + (size_t)(2 * ty) * W;
            vreal r0 = ZIP_LO(y00, y01);
            if (add) r0 += row_load(p0, W);
            lanes_store(p0, r0, W);
            if (2 * ty + 1 < H) {
                vreal r1 = ZIP_LO(y10, y11);
                if (add) r1 += row_load(p0 + W, W);
                lanes_store(p0 + W, r1, W);
            }
        }
    }
}
#endif

// one output row of 2x2 tiles, n <= VL of them from tile x: a to columns 2x, b to 2x + 1
// (inside W), stored or added, the two interleaved into 2 VL columns
static inline __attribute__((always_inline)) void out_row(real *r, vreal a, vreal b, int n, int x, int W, int add) {
    vreal lo = ZIP_LO(a, b), hi = ZIP_HI(a, b);
    int cols = MIN(2 * n, W - 2 * x), n0 = MIN(VL, cols), n1 = cols - n0;
    r += 2 * x;
    if (add) lo += lanes_load(r, n0);
    lanes_store(r, lo, n0);
    if (n1 > 0) {
        if (add) hi += lanes_load(r + VL, n1);
        lanes_store(r + VL, hi, n1);
    }
}

// the same as output_transform_vec for any W, VL tiles at a time, in its order of
// operations
static void output_transform_any(real *out, const real *M, const real *bias, int Cout, int Coutp, int H, int W,
                                 int tw, int ty0, int ty1, int ldm, int add, int o0, int o1) {
    size_t eplane = (size_t)Coutp * ldm;
    for (int o = o0; o < o1; o++) {
        real b = bias ? bias[o] : 0;
        real *plane = out + (size_t)o * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            const real *m = M + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            real *r0 = plane + (size_t)(2 * ty) * W;
            for (int x = 0; x < tw; x += VL) { // reads past tw stay in M (see winograd_blocks)
                vreal s0[4], s1[4];
                for (int i = 0; i < 4; i++) {
                    const real *mi = m + (size_t)(i * 4) * eplane + x;
                    vreal m0 = vload(mi), m1 = vload(mi + eplane), m2 = vload(mi + 2 * eplane),
                          m3 = vload(mi + 3 * eplane);
                    s0[i] = m0 + m1 + m2;
                    s1[i] = m1 - m2 - m3;
                }
                vreal y00 = s0[0] + s0[1] + s0[2] + b, y01 = s1[0] + s1[1] + s1[2] + b;
                vreal y10 = s0[1] - s0[2] - s0[3] + b, y11 = s1[1] - s1[2] - s1[3] + b;
                int n = MIN(VL, tw - x);
                out_row(r0, y00, y01, n, x, W, add);
                if (2 * ty + 1 < H) out_row(r0 + W, y10, y11, n, x, W, add);
            }
        }
    }
}

// ----------------------------------------------------------------------------
// F(4x4, 3x3): B^T and A^T applied to six values (vectors or scalars alike)
#define BT6(d, o)                                                                                                     \
    do {                                                                                                              \
        (o)[0] = 4 * (d)[0] - 5 * (d)[2] + (d)[4];                                                                    \
        (o)[1] = ((d)[3] + (d)[4]) - 4 * ((d)[1] + (d)[2]);                                                           \
        (o)[2] = ((d)[4] - (d)[3]) + 4 * ((d)[1] - (d)[2]);                                                           \
        (o)[3] = ((d)[4] - (d)[2]) + 2 * ((d)[3] - (d)[1]);                                                           \
        (o)[4] = ((d)[4] - (d)[2]) - 2 * ((d)[3] - (d)[1]);                                                           \
        (o)[5] = 4 * (d)[1] - 5 * (d)[3] + (d)[5];                                                                    \
    } while (0)
#define AT6(m, o)                                                                                                     \
    do {                                                                                                              \
        (o)[0] = (m)[0] + ((m)[1] + (m)[2]) + ((m)[3] + (m)[4]);                                                      \
        (o)[1] = ((m)[1] - (m)[2]) + 2 * ((m)[3] - (m)[4]);                                                           \
        (o)[2] = ((m)[1] + (m)[2]) + 4 * ((m)[3] + (m)[4]);                                                           \
        (o)[3] = ((m)[1] - (m)[2]) + 8 * ((m)[3] - (m)[4]) + (m)[5];                                                  \
    } while (0)

#if VEC16 // the row-vector paths shuffle 16 lanes
// Rows of four tiles (13 <= W <= 16) four at a time: the 16 tiles of four tile rows fill a
// vector, lane 4 q + x holding tile x of row q, so that the transforms along the rows,
// and all of the output transform, run on whole vectors. CL: the column 4x - 1 + j of
// phase j, clamped into the row (the two lanes outside it are zeroed after the gather).
#define CL(x, j) ((4 * (x) - 1 + (j)) < 0 ? 0 : (4 * (x) - 1 + (j)) > 15 ? 15 : (4 * (x) - 1 + (j)))
#define PH2(a, b, j)                                                                                                  \
    SHUF(a, b, CL(0, j), CL(1, j), CL(2, j), CL(3, j), 16 + CL(0, j), 16 + CL(1, j), 16 + CL(2, j), 16 + CL(3, j), 0, \
         0, 0, 0, 0, 0, 0, 0)
#define PH4(t0, t1, t2, t3, j)                                                                                        \
    SHUF(PH2(t0, t1, j), PH2(t2, t3, j), 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)

// V of four tile rows ty .. ty + 3 of one channel plane (tw = 4): 16 tiles a vector
static inline __attribute__((always_inline)) void input_group4(real *v, size_t eplane, const real *plane, int H,
                                                               int W, int ty) {
    const vreal zero = {0};
    vreal t[4][6]; // t[q][i]: B^T down the columns of tile row ty + q
    for (int q = 0; q < 4; q++) {
        vreal d[6];
        for (int r = 0; r < 6; r++) {
            int y = 4 * (ty + q) - 1 + r;
            d[r] = y >= 0 && y < H ? row_load(plane + (size_t)y * W, W) : zero;
        }
        BT6(d, t[q]);
    }
    for (int i = 0; i < 6; i++) {
        vreal p[6], u[6];
        p[0] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 0);
        p[0] = SHUF(p[0], zero, Z, 1, 2, 3, Z, 5, 6, 7, Z, 9, 10, 11, Z, 13, 14, 15); // column -1
        p[1] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 1);
        p[2] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 2);
        p[3] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 3);
        p[4] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 4);
        p[5] = PH4(t[0][i], t[1][i], t[2][i], t[3][i], 5);
        p[5] = SHUF(p[5], zero, 0, 1, 2, Z, 4, 5, 6, Z, 8, 9, 10, Z, 12, 13, 14, Z); // column 16
        BT6(p, u);
        for (int k = 0; k < 6; k++) vstore(v + (size_t)(i * 6 + k) * eplane, u[k]);
    }
}

// image row 4 q + dy of a group from y[dy][0..3] (lane 4 q + x: tile x of tile row q)
#define OUTROW4(q)                                                                                                    \
    do {                                                                                                              \
        vreal a_ = SHUF(yd[0], yd[1], 4 * (q), 16 + 4 * (q), 4 * (q) + 1, 17 + 4 * (q), 4 * (q) + 2, 18 + 4 * (q),    \
                        4 * (q) + 3, 19 + 4 * (q), 0, 0, 0, 0, 0, 0, 0, 0);                                           \
        vreal c_ = SHUF(yd[2], yd[3], 4 * (q), 16 + 4 * (q), 4 * (q) + 1, 17 + 4 * (q), 4 * (q) + 2, 18 + 4 * (q),    \
                        4 * (q) + 3, 19 + 4 * (q), 0, 0, 0, 0, 0, 0, 0, 0);                                           \
        rows[q] = SHUF(a_, c_, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);                               \
    } while (0)

// out rows of four tile rows ty .. ty + 3 of one output plane from M (16 tiles a vector)
static inline __attribute__((always_inline)) void output_group4(real *plane, const real *m, size_t eplane, real b,
                                                                int H, int W, int ty, int add) {
    vreal s[6][4];
    for (int i = 0; i < 6; i++) {
        vreal mi[6];
        for (int k = 0; k < 6; k++) mi[k] = vload(m + (size_t)(i * 6 + k) * eplane);
        AT6(mi, s[i]);
    }
    for (int dy = 0; dy < 4; dy++) {
        vreal yd[4];
        for (int dx = 0; dx < 4; dx++) {
            vreal col[6] = {s[0][dx], s[1][dx], s[2][dx], s[3][dx], s[4][dx], s[5][dx]}, r[4];
            AT6(col, r);
            yd[dx] = r[dy] + b;
        }
        vreal rows[4];
        OUTROW4(0);
        OUTROW4(1);
        OUTROW4(2);
        OUTROW4(3);
        for (int q = 0; q < 4; q++) {
            int y = 4 * (ty + q) + dy;
            if (y >= H) break;
            real *row = plane + (size_t)y * W;
            vreal r = rows[q];
            if (add) r += row_load(row, W);
            lanes_store(row, r, W);
        }
    }
}

// V[e][c][j] of F(4x4) for tile rows [ty0, ty1), W <= 16: a row of tiles (at most four)
// in the first lanes of a vector. Down the columns first, t = B^T (rows 4ty-1 .. 4ty+4),
// then along each t, where tile x sees t[4x-1 .. 4x+4]: six shuffles, the same for any
// W <= 16 (the lanes of t past W are zeros, and the lanes past tw are not stored).
static inline __attribute__((always_inline)) void input_transform4_vec(real *V, const real *in, int Cin, int H, int W,
                                                                       int tw, int ty0, int ty1, int ldv, int c0,
                                                                       int c1) {
    size_t eplane = (size_t)Cin * ldv;
    const vreal zero = {0};
    for (int c = c0; c < c1; c++) {
        const real *plane = in + (size_t)c * H * W;
        int ty = ty0;
        if (tw == 4)
            for (; ty + 4 <= ty1; ty += 4) input_group4(V + (size_t)c * ldv + (size_t)(ty - ty0) * tw, eplane, plane, H, W, ty);
        for (; ty < ty1; ty++) {
            vreal d[6], t[6];
            for (int r = 0; r < 6; r++) {
                int y = 4 * ty - 1 + r;
                d[r] = y >= 0 && y < H ? row_load(plane + (size_t)y * W, W) : zero;
            }
            BT6(d, t);
            real *v = V + (size_t)c * ldv + (size_t)(ty - ty0) * tw;
            for (int i = 0; i < 6; i++) {
                vreal p[6], u[6];
                p[0] = SHUF(t[i], zero, Z, 3, 7, 11, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                p[1] = SHUF(t[i], zero, 0, 4, 8, 12, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                p[2] = SHUF(t[i], zero, 1, 5, 9, 13, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                p[3] = SHUF(t[i], zero, 2, 6, 10, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                p[4] = SHUF(t[i], zero, 3, 7, 11, 15, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                p[5] = SHUF(t[i], zero, 4, 8, 12, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z);
                BT6(p, u);
                for (int k = 0; k < 6; k++) lanes_store(v + (size_t)(i * 6 + k) * eplane, u[k], tw);
            }
        }
    }
}
#endif

// the same for any W, from one zero-padded image row at a time (p[q] = row[q - 1]), VL
// tiles at a time: tile x of a row sees p[4x .. 4x + 5], the lanes 4x + q of p taken
// apart by two rounds of even/odd shuffles (from 4x, and from 4x + 4 for q = 4, 5);
// the same operations in the same order as one tile at a time
static void input_transform4_any(real *V, const real *in, int Cin, int H, int W, int tw, int ty0, int ty1, int ldv,
                                 real *tmp, int c0, int c1) {
    int twp = round_up(tw, VL), np = 4 * twp + 4; // a's row pitch; the padded row's length
    real *pr = tmp;                               // the padded row
    real *a = pr + np;                            // a[r][k][x]: the rows along B, 36 twp
    size_t eplane = (size_t)Cin * ldv;
    for (int c = c0; c < c1; c++) {
        const real *plane = in + (size_t)c * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            for (int r = 0; r < 6; r++) {
                int y = 4 * ty - 1 + r;
                memset(pr, 0, sizeof(real) * np);
                if (y >= 0 && y < H) memcpy(pr + 1, plane + (size_t)y * W, sizeof(real) * W);
                for (int x = 0; x < tw; x += VL) {
                    const real *q = pr + 4 * x;
                    vreal l[4], h[4]; // p from 4x, and from 4x + 4
                    for (int j = 0; j < 4; j++) l[j] = vload(q + j * VL), h[j] = vload(q + 4 + j * VL);
                    vreal e0 = EVENS(l[0], l[1]), o0 = ODDS(l[0], l[1]), e1 = EVENS(l[2], l[3]), o1 = ODDS(l[2], l[3]);
                    vreal f0 = EVENS(h[0], h[1]), g0 = ODDS(h[0], h[1]), f1 = EVENS(h[2], h[3]), g1 = ODDS(h[2], h[3]);
                    vreal p[6] = {EVENS(e0, e1), EVENS(o0, o1), ODDS(e0, e1), ODDS(o0, o1), EVENS(f0, f1), EVENS(g0, g1)};
                    vreal o[6];
                    BT6(p, o);
                    for (int k = 0; k < 6; k++) vstore(a + ((size_t)r * 6 + k) * twp + x, o[k]);
                }
            }
            size_t j0 = (size_t)(ty - ty0) * tw;
            for (int k = 0; k < 6; k++)
                for (int x = 0; x < tw; x += VL) {
                    vreal d[6], o[6];
                    for (int r = 0; r < 6; r++) d[r] = vload(a + ((size_t)r * 6 + k) * twp + x);
                    BT6(d, o);
                    int n = MIN(VL, tw - x);
                    for (int i = 0; i < 6; i++) lanes_store(V + (size_t)(i * 6 + k) * eplane + (size_t)c * ldv + j0 + x, o[i], n);
                }
        }
    }
}

#if VEC16 // the row-vector paths shuffle 16 lanes
// out[o][4ty + dy][4tx + dx] = (A^T M A)[dy][dx] + bias[o] of F(4x4), tile rows [ty0, ty1),
// W <= 16: the tiles of a row in the first lanes, two rounds of shuffles interleave the
// four output columns of the tiles into an image row
static inline __attribute__((always_inline)) void output_transform4_vec(real *out, const real *M, const real *bias,
                                                                        int Cout, int Coutp, int H, int W, int tw,
                                                                        int ty0, int ty1, int ldm, int add, int o0,
                                                                        int o1) {
    size_t eplane = (size_t)Coutp * ldm;
    for (int o = o0; o < o1; o++) {
        real b = bias ? bias[o] : 0;
        real *plane = out + (size_t)o * H * W;
        int ty = ty0;
        if (tw == 4)
            for (; ty + 4 <= ty1; ty += 4)
                output_group4(plane, M + (size_t)o * ldm + (size_t)(ty - ty0) * tw, eplane, b, H, W, ty, add);
        for (; ty < ty1; ty++) {
            const real *m = M + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            vreal s[6][4];
            for (int i = 0; i < 6; i++) { // M A along each row i of M
                vreal mi[6];
                for (int k = 0; k < 6; k++) mi[k] = vload(m + (size_t)(i * 6 + k) * eplane);
                AT6(mi, s[i]);
            }
            vreal y[4][4]; // y[dy][dx]: A^T down the columns
            for (int dx = 0; dx < 4; dx++) {
                vreal col[6] = {s[0][dx], s[1][dx], s[2][dx], s[3][dx], s[4][dx], s[5][dx]}, r[4];
                AT6(col, r);
                for (int dy = 0; dy < 4; dy++) y[dy][dx] = r[dy] + b;
            }
            for (int dy = 0; dy < 4 && 4 * ty + dy < H; dy++) {
                real *row = plane + (size_t)(4 * ty + dy) * W;
                vreal a = SHUF(y[dy][0], y[dy][1], 0, 16, 1, 17, 2, 18, 3, 19, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal c = SHUF(y[dy][2], y[dy][3], 0, 16, 1, 17, 2, 18, 3, 19, Z, Z, Z, Z, Z, Z, Z, Z);
                vreal r = SHUF(a, c, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
                if (add) r += row_load(row, W);
                lanes_store(row, r, W);
            }
        }
    }
}
#endif

// the same for any W, VL tiles at a time: M A along the rows of M, then A^T down the
// columns, and the four output columns of the tiles interleaved into an image row (the
// same operations in the same order as one tile at a time; reads past tw stay in M)
static void output_transform4_any(real *out, const real *M, const real *bias, int Cout, int Coutp, int H, int W,
                                  int tw, int ty0, int ty1, int ldm, int add, int o0, int o1) {
    size_t eplane = (size_t)Coutp * ldm;
    for (int o = o0; o < o1; o++) {
        real b = bias ? bias[o] : 0;
        real *plane = out + (size_t)o * H * W;
        for (int ty = ty0; ty < ty1; ty++) {
            const real *m = M + (size_t)o * ldm + (size_t)(ty - ty0) * tw;
            for (int x = 0; x < tw; x += VL) {
                vreal s[6][4], r[4][4]; // r[dx][dy]
                for (int i = 0; i < 6; i++) {
                    vreal mi[6];
                    for (int k = 0; k < 6; k++) mi[k] = vload(m + (size_t)(i * 6 + k) * eplane + x);
                    AT6(mi, s[i]);
                }
                for (int dx = 0; dx < 4; dx++) {
                    vreal col[6] = {s[0][dx], s[1][dx], s[2][dx], s[3][dx], s[4][dx], s[5][dx]};
                    AT6(col, r[dx]);
                }
                int cols = MIN(4 * MIN(VL, tw - x), W - 4 * x);
                for (int dy = 0; dy < 4 && 4 * ty + dy < H; dy++) {
                    vreal v0 = r[0][dy] + b, v1 = r[1][dy] + b, v2 = r[2][dy] + b, v3 = r[3][dy] + b;
                    vreal l01 = ZIP_LO(v0, v1), h01 = ZIP_HI(v0, v1), l23 = ZIP_LO(v2, v3), h23 = ZIP_HI(v2, v3);
                    vreal w[4] = {ZIP2_LO(l01, l23), ZIP2_HI(l01, l23), ZIP2_LO(h01, h23), ZIP2_HI(h01, h23)};
                    real *q = plane + (size_t)(4 * ty + dy) * W + 4 * x;
                    for (int j = 0; j < 4 && j * VL < cols; j++) {
                        int n = MIN(VL, cols - j * VL);
                        if (add) w[j] += lanes_load(q + j * VL, n);
                        lanes_store(q + j * VL, w[j], n);
                    }
                }
            }
        }
    }
}

// the share [lo, hi) of n items that thread tid of nth takes
// Without 16-lane vectors (an AVX2 or SSE build) every map takes the generic transforms
#if VEC16
#define ROW_VEC(W) ((W) <= VL)
#else
#define ROW_VEC(W) 0
#define input_transform_vec(...) ((void)0)
#define output_transform_vec(...) ((void)0)
#define input_transform4_vec(...) ((void)0)
#define output_transform4_vec(...) ((void)0)
#endif

static inline void share(int n, int tid, int nth, int *lo, int *hi) {
    *lo = (int)((long)n * tid / nth), *hi = (int)((long)n * (tid + 1) / nth);
}

// One block of tile rows [R0, R1) of a chunk of samples, numbered on through the chunk
// (row R is sample R / th's tile row R % th): transform in, E = (tile + 2)^2 GEMMs,
// transform out. A block may span samples; its GEMMs then share each load of U among
// more tiles (the 8x8 layers of a ConvNet have 16 tiles a sample, half a block). Inlined
// with the tile and the ConvNet's widths as constants (see winograd_blocks), so that the
// vector path's row loads and stores compile to single vector moves. With nth > 1 the nth
// threads of a parallel region share the block (input channels, then (e, output block)
// pairs, then output channels, with barriers between). Every value is computed as with
// one thread and one sample: each output is a sum over the input channels in order in
// its own lane, whatever block or column it falls in.
static inline __attribute__((always_inline)) void winograd_block(int tile, real *out, const real *in, const real *U,
                                                                 const real *bias, int Cin, int H, int W, int tw,
                                                                 int Cout, int Coutp, int R0, int R1, int ldv,
                                                                 real *V, real *M, int add, int tid, int nth) {
    int th = (H + tile - 1) / tile, nt = (R1 - R0) * tw, E = tile_elems(tile), lo, hi;
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * H * W;
    share(Cin, tid, nth, &lo, &hi);
    if (nt < ldv) // the padding tiles of a partial block read zeros
        for (int e = 0; e < E; e++)
            for (int c = lo; c < hi; c++) memset(V + ((size_t)e * Cin + c) * ldv + nt, 0, sizeof(real) * (ldv - nt));
    real *tmp = ROW_VEC(W) ? NULL : scratch_real(SCRATCH_TMP, any_tmp_len(tw));
    for (int R = R0; R < R1;) { // the block's rows of each sample in turn
        int s = R / th, ty0 = R - s * th, ty1 = MIN(th, ty0 + (R1 - R));
        real *Vs = V + (size_t)(R - R0) * tw;
        const real *ins = in + s * in_sz;
        if (tile == 4) {
            if (ROW_VEC(W)) input_transform4_vec(Vs, ins, Cin, H, W, tw, ty0, ty1, ldv, lo, hi);
            else input_transform4_any(Vs, ins, Cin, H, W, tw, ty0, ty1, ldv, tmp, lo, hi);
        } else {
            if (ROW_VEC(W)) input_transform_vec(Vs, ins, Cin, H, W, tw, ty0, ty1, ldv, lo, hi);
            else input_transform_any(Vs, ins, Cin, H, W, tw, ty0, ty1, ldv, tmp, lo, hi);
        }
        R += ty1 - ty0;
    }
    if (nth > 1) {
#pragma omp barrier
    }
    int nob = Coutp / MR;
    share(E * nob, tid, nth, &lo, &hi);
    for (int pair = lo; pair < hi; pair++) {
        int e = pair / nob, ob = pair % nob;
        const real *Ve = V + (size_t)e * Cin * ldv;
        const real *u = U + ((size_t)e * nob + ob) * Cin * MR;
        real *m = M + ((size_t)e * Coutp + (size_t)ob * MR) * ldv;
        int j = 0;
        for (; j + 2 * VL <= round_up(nt, VL); j += 2 * VL) gemm_mr_kernel(m + j, ldv, u, Ve + j, ldv, Cin, 2);
        if (j < nt) gemm_mr_kernel(m + j, ldv, u, Ve + j, ldv, Cin, 1);
    }
    if (nth > 1) {
#pragma omp barrier
    }
    share(Cout, tid, nth, &lo, &hi);
    for (int R = R0; R < R1;) {
        int s = R / th, ty0 = R - s * th, ty1 = MIN(th, ty0 + (R1 - R));
        const real *Ms = M + (size_t)(R - R0) * tw;
        real *outs = out + s * out_sz;
        if (tile == 4) {
            if (ROW_VEC(W)) output_transform4_vec(outs, Ms, bias, Cout, Coutp, H, W, tw, ty0, ty1, ldv, add, lo, hi);
            else output_transform4_any(outs, Ms, bias, Cout, Coutp, H, W, tw, ty0, ty1, ldv, add, lo, hi);
        } else {
            if (ROW_VEC(W)) output_transform_vec(outs, Ms, bias, Cout, Coutp, H, W, tw, ty0, ty1, ldv, add, lo, hi);
            else output_transform_any(outs, Ms, bias, Cout, Coutp, H, W, tw, ty0, ty1, ldv, add, lo, hi);
        }
        R += ty1 - ty0;
    }
    if (nth > 1) { // V and M are reused by the next block
#pragma omp barrier
    }
}

// the blocks of B samples for one tile size (a constant once inlined), by thread tid of
// nth (all nth run this with the same V, M)
static inline __attribute__((always_inline)) void winograd_blocks_tile(int tile, real *out, const real *in,
                                                                       const real *U, const real *bias, int B, int Cin,
                                                                       int H, int W, int Cout, int add, real *V,
                                                                       real *M, int rows, int ldv, int tid, int nth) {
    int th = (H + tile - 1) / tile, tw = (W + tile - 1) / tile, Coutp = round_up(Cout, MR), nr = B * th;
    for (int R0 = 0; R0 < nr; R0 += rows) {
        int R1 = MIN(R0 + rows, nr);
        if (add) {
            if (W == 16) winograd_block(tile, out, in, U, NULL, Cin, H, 16, 16 / tile, Cout, Coutp, R0, R1, ldv, V, M, 1, tid, nth);
            else if (W == 8) winograd_block(tile, out, in, U, NULL, Cin, H, 8, 8 / tile, Cout, Coutp, R0, R1, ldv, V, M, 1, tid, nth);
            else winograd_block(tile, out, in, U, NULL, Cin, H, W, tw, Cout, Coutp, R0, R1, ldv, V, M, 1, tid, nth);
        } else {
            if (W == 16) winograd_block(tile, out, in, U, bias, Cin, H, 16, 16 / tile, Cout, Coutp, R0, R1, ldv, V, M, 0, tid, nth);
            else if (W == 8) winograd_block(tile, out, in, U, bias, Cin, H, 8, 8 / tile, Cout, Coutp, R0, R1, ldv, V, M, 0, tid, nth);
            else winograd_block(tile, out, in, U, bias, Cin, H, W, tw, Cout, Coutp, R0, R1, ldv, V, M, 0, tid, nth);
        }
    }
}

static void winograd_blocks(int tile, real *out, const real *in, const real *U, const real *bias, int B, int Cin,
                            int H, int W, int Cout, int add, real *V, real *M, int rows, int ldv, int tid, int nth) {
    if (tile == 4) winograd_blocks_tile(4, out, in, U, bias, B, Cin, H, W, Cout, add, V, M, rows, ldv, tid, nth);
    else winograd_blocks_tile(2, out, in, U, bias, B, Cin, H, W, Cout, add, V, M, rows, ldv, tid, nth);
}

// out (B, Cout, H, W) = conv(in (B, Cin, H, W)) + bias, or += it when add, the samples'
// tile rows in blocks of about BLOCK_TILES tiles. Called outside any parallel region
// (a batch of one, or the driver's remainder samples) the threads share every block;
// inside one (a thread of a per-sample driver) it runs on that thread.
static void winograd_chunk(int tile, real *out, const real *in, const real *U, const real *bias, int B, int Cin,
                           int H, int W, int Cout, int add) {
    int th = (H + tile - 1) / tile, tw = (W + tile - 1) / tile, Coutp = round_up(Cout, MR), E = tile_elems(tile);
    int rows = tw >= BLOCK_TILES ? 1 : BLOCK_TILES / tw; // tile rows per block
    if (rows > B * th) rows = B * th;
    int ldv = round_up(rows * tw, VL); // tiles per block, padded to whole vectors
    real *V = scratch_real(SCRATCH_COL, (size_t)E * Cin * ldv);
    real *M = scratch_real(SCRATCH_COL2, (size_t)E * Coutp * ldv + VL); // + slack, see output_transform_vec
    int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nth <= 1) {
        winograd_blocks(tile, out, in, U, bias, B, Cin, H, W, Cout, add, V, M, rows, ldv, 0, 1);
        return;
    }
#pragma omp parallel num_threads(nth)
    winograd_blocks(tile, out, in, U, bias, B, Cin, H, W, Cout, add, V, M, rows, ldv, omp_get_thread_num(),
                    omp_get_num_threads());
}

// B samples: one alone is shared by the threads; inside a parallel region this thread
// runs them all as one chunk; otherwise each thread takes a contiguous share as a chunk
static void winograd_batch(int tile, real *out, const real *in, const real *U, const real *bias, int B, int Cin,
                           int H, int W, int Cout, int add) {
    if (B <= 1 || omp_in_parallel() || omp_get_max_threads() <= 1) {
        if (B > 0) winograd_chunk(tile, out, in, U, bias, B, Cin, H, W, Cout, add);
        return;
    }
    size_t in_sz = (size_t)Cin * H * W, out_sz = (size_t)Cout * H * W;
#pragma omp parallel
    {
        int lo, hi;
        share(B, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) winograd_chunk(tile, out + lo * out_sz, in + lo * in_sz, U, bias, hi - lo, Cin, H, W, Cout, add);
    }
}

void conv2d_forward_winograd(int tile, real *out, const real *in, const real *U, const real *bias, int B, int Cin,
                             int H, int W, int Cout) {
    winograd_batch(tile, out, in, U, bias, B, Cin, H, W, Cout, 0);
}

void conv2d_backward_data_winograd(int tile, real *din, const real *dout, const real *U, int B, int Cout, int H,
                                   int W, int Cin) {
    winograd_batch(tile, din, dout, U, NULL, B, Cout, H, W, Cin, 1);
}
