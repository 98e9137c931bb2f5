/*
 * convplan.c: see convplan.h. The choice of algorithm per pass, measured on this
 * machine's ConvNet layers (one sample, one thread):
 *   128 -> 128 at 16x16: forward 1.05 ms by im2col, 0.29 ms by Winograd; input gradient
 *                        1.48 ms by im2col, 0.42 ms by Winograd
 *   128 -> 128 at 8x8:   input gradient 0.30 ms by im2col, 0.15 ms by Winograd
 *   3 -> 128 at 32x32:   forward 85 us by im2col, 50 us by the direct kernel; input
 *                        gradient 0.17 ms by im2col, 1.13 ms by Winograd (three output
 *                        channels fill three of the eight rows of its register block,
 *                        and the 32-wide transforms are not vectorised), and slower than
 *                        im2col by the direct kernel too (see conv_direct.c)
 */
#include "convplan.h"

#include <string.h>

#include "../core/common.h"
#include "conv_batch.h"
#include "nn.h"

int conv_plan_tile(int tile, int W) { return tile == 4 && W >= 13 ? 4 : 2; }

void conv_plan_init(ConvPlan *p, int Cin, int H, int W, int Cout, int K, int stride, int pad, int im2col_only,
                    int tile) {
    memset(p, 0, sizeof(*p));
    p->Cin = Cin, p->H = H, p->W = W, p->Cout = Cout, p->K = K, p->stride = stride, p->pad = pad;
    p->im2col_only = im2col_only;
    p->tile = conv_plan_tile(tile, W);
    p->fwd = p->bwd = CONV_ALGO_IM2COL;
    if (im2col_only) return;
    p->batch = conv_batch_applies(Cin, Cout, K, conv2d_out_size(H, K, stride, pad), conv2d_out_size(W, K, stride, pad));
    // without 16-lane vectors the small maps run faster by Winograd (winograd_small_maps)
    if (p->batch && winograd_small_maps() && winograd_applies(Cin, K, stride, pad) && winograd_applies(Cout, K, stride, pad))
        p->batch = 0;
    if (winograd_applies(Cin, K, stride, pad)) {
        p->fwd = CONV_ALGO_WINOGRAD;
        if (winograd_applies(Cout, K, stride, pad)) p->bwd = CONV_ALGO_WINOGRAD;
    } else if (conv_direct_applies(Cin, stride)) {
        p->fwd = CONV_ALGO_DIRECT;
        if (conv_direct_backward_applies(Cin, stride, conv2d_out_size(H, K, stride, pad), conv2d_out_size(W, K, stride, pad)))
            p->bwd = CONV_ALGO_DIRECT;
    }
}

static size_t transformed_size(const ConvPlan *p, int backward) {
    ConvAlgo a = backward ? p->bwd : p->fwd;
    if (a == CONV_ALGO_WINOGRAD)
        return backward ? winograd_weights_size(p->tile, p->Cin, p->Cout) : winograd_weights_size(p->tile, p->Cout, p->Cin);
    return backward ? conv_direct_weights_backward_size(p->Cout, p->Cin, p->K) : conv_direct_weights_size(p->Cout, p->Cin, p->K);
}

static void transform(const ConvPlan *p, float *U, const float *weight, int backward) {
    ConvAlgo a = backward ? p->bwd : p->fwd;
    if (a == CONV_ALGO_WINOGRAD && !backward) winograd_weights(p->tile, U, weight, p->Cout, p->Cin);
    else if (a == CONV_ALGO_WINOGRAD) winograd_weights_backward(p->tile, U, weight, p->Cout, p->Cin);
    else if (!backward) conv_direct_weights(U, weight, p->Cout, p->Cin, p->K);
    else conv_direct_weights_backward(U, weight, p->Cout, p->Cin, p->K);
}

void conv_plan_free(ConvPlan *p) {
    xfree(p->src), xfree(p->Uf), xfree(p->Ub);
    p->src = p->Uf = p->Ub = NULL;
}

int conv_plan_update(ConvPlan *p, const float *weight, int backward) {
    if (p->fwd == CONV_ALGO_IM2COL && p->bwd == CONV_ALGO_IM2COL) return 0;
    size_t nw = (size_t)p->Cout * p->Cin * p->K * p->K;
    if (!p->src) {
        if (!(p->src = xmalloc(sizeof(float) * nw))) return -1;
    } else if (memcmp(p->src, weight, sizeof(float) * nw)) {
        xfree(p->Uf), xfree(p->Ub);
        p->Uf = p->Ub = NULL;
    }
    if (!p->Uf && !p->Ub) memcpy(p->src, weight, sizeof(float) * nw);
    if (p->fwd != CONV_ALGO_IM2COL && !p->Uf) {
        if (!(p->Uf = xmalloc(sizeof(float) * transformed_size(p, 0)))) return -1;
        transform(p, p->Uf, weight, 0);
    }
    if (backward && p->bwd != CONV_ALGO_IM2COL && !p->Ub) {
        if (!(p->Ub = xmalloc(sizeof(float) * transformed_size(p, 1)))) return -1;
        transform(p, p->Ub, weight, 1);
    }
    return 0;
}

void conv_plan_forward(const ConvPlan *p, float *out, const float *in, const float *weight, const float *bias, int B) {
    if (p->batch && B > 1)
        conv2d_batch_forward(out, in, weight, bias, B, p->Cin, p->H, p->W, p->Cout, p->K, p->stride, p->pad);
    else if (p->fwd == CONV_ALGO_WINOGRAD)
        conv2d_forward_winograd(p->tile, out, in, p->Uf, bias, B, p->Cin, p->H, p->W, p->Cout);
    else if (p->fwd == CONV_ALGO_DIRECT)
        conv2d_forward_direct(out, in, p->Uf, bias, B, p->Cin, p->H, p->W, p->Cout, p->K, p->pad);
    else
        conv2d_forward(out, in, weight, bias, B, p->Cin, p->H, p->W, p->Cout, p->K, p->stride, p->pad);
}

void conv_plan_backward(const ConvPlan *p, float *din, float *dweight, float *dbias, const float *dout,
                        const float *in, const float *weight, int B) {
    if (p->batch && B > 1) {
        conv2d_batch_backward(din, dweight, dbias, dout, in, weight, B, p->Cin, p->H, p->W, p->Cout, p->K, p->stride,
                              p->pad);
        return;
    }
    if (din && p->bwd != CONV_ALGO_IM2COL) {
        if (p->bwd == CONV_ALGO_WINOGRAD)
            conv2d_backward_data_winograd(p->tile, din, dout, p->Ub, B, p->Cout, p->H, p->W, p->Cin);
        else conv2d_backward_data_direct(din, dout, p->Ub, B, p->Cin, p->H, p->W, p->Cout, p->K, p->pad);
        din = NULL;
        if (!dweight && !dbias) return;
    }
    conv2d_backward(din, dweight, dbias, dout, in, weight, B, p->Cin, p->H, p->W, p->Cout, p->K, p->stride, p->pad);
}

// t_out = conv(t_in, W) + conv(in, t_W) + t_b
void conv_plan_forward_tangent(const ConvPlan *p, const ConvPlan *tp, float *tout, float *tmp, const float *in,
                               const float *tin, const float *weight, const float *tweight, const float *tbias,
                               int B) {
    int Ho = conv2d_out_size(p->H, p->K, p->stride, p->pad), Wo = conv2d_out_size(p->W, p->K, p->stride, p->pad);
    size_t plane = (size_t)Ho * Wo, m = (size_t)B * p->Cout * plane;
    if (!tin && tweight) { // the input does not move: one pass gives both remaining terms
        conv_plan_forward(tp, tout, in, tweight, tbias, B);
        return;
    }
    if (tin) conv_plan_forward(p, tout, tin, weight, tbias, B);
    else
        for (size_t c = 0; c < m / plane; c++)
            for (size_t i = 0; i < plane; i++) tout[c * plane + i] = tbias ? tbias[c % p->Cout] : 0.0f;
    if (!tin || !tweight) return;
    conv_plan_forward(tp, tmp, in, tweight, NULL, B);
    for (size_t i = 0; i < m; i++) tout[i] += tmp[i];
}

// t_din += conv^T(t_dout, W) + conv^T(dout, t_W), t_dW += corr(t_dout, in) + corr(dout, t_in),
// t_db += sum t_dout
void conv_plan_backward_tangent(const ConvPlan *p, const ConvPlan *tp, float *tdin, float *tdweight, float *tdbias,
                                const float *dout, const float *tdout, const float *in, const float *tin,
                                const float *weight, const float *tweight, int B) {
    if (tdout && (tdin || tdweight || tdbias)) conv_plan_backward(p, tdin, tdweight, tdbias, tdout, in, weight, B);
    if (tweight && tdin) conv_plan_backward(tp, tdin, NULL, NULL, dout, in, tweight, B);
    if (tin && tdweight) conv_plan_backward(p, NULL, tdweight, NULL, dout, tin, weight, B);
}
