/* conv2d_act.c: convolution (no bias) on activations in s->f, and its prepared weight.
 *
 *   x [N, C, H, W], y [N, K, P, Q] in s->f; the math is conv2d.c's:
 *   y[n,k,p,q] = sum_{c,r,s} w[k,c,r,s] * x[n, c, p*stride - pad + r, q*stride - pad + s]
 *   dx += conv_transpose(dy, w),   dw += corr(x, dy)
 *
 * Prepared weight wp: the fp32 master w [K, C, R, S] rounded to s->f.dt, reordered to
 * [K, R, S, C] for NHWC (cuDNN's channels-last filter layout), kept [K, C, R, S] for NCHW.
 * That is exactly an [N = K, C, HW = R*S] activation in s->f (act_index(NHWC) of (k, c, rs)
 * is (k*RS + rs)*C + c), so prep is op_act_import and grad_add the fp32 accumulation of its
 * export.
 *
 * The reference computes in fp32 through conv2d.c: x (and dy) converted to fp32 NCHW in
 * the workspace, wp widened back to fp32 KCRS, op_conv2d_forward / _backward (im2col +
 * GEMM, fp32 sums), and the fp32 result rounded once into y, or added into dx / dwp in
 * their storage type (dx = round(dx + conv_transpose(...))). The plain format (NCHW fp32,
 * where wp is the master layout) calls conv2d.c directly.
 *
 * Workspace (floats), in this order:
 *   x32 [N*C*H*W] | w32 [K*C*R*S] | y32 or dy32 [N*K*P*Q] | dx32 [N*C*H*W] | dw32 [K*C*R*S]
 *   | op_conv2d_workspace(s) */
#include <string.h>

#include "ops/act_internal.h"

static size_t sz_x(const ConvShape *s) { return (size_t)s->N * s->C * s->H * s->W; }
static size_t sz_w(const ConvShape *s) { return (size_t)s->K * s->C * s->R * s->S; }
static size_t sz_y(const ConvShape *s) { return (size_t)s->N * s->K * s->P * s->Q; }

void op_conv_weight_prep(const ConvShape *s, const float *w, void *wp) {
    act_from_nchw(&s->f, s->K, s->C, s->R * s->S, w, wp, 0);
}

void op_conv_weight_grad_add(const ConvShape *s, const void *dwp, float *dw) {
    act_to_nchw(&s->f, s->K, s->C, s->R * s->S, dwp, dw, 1);
}

size_t op_conv2d_act_workspace(const ConvShape *s) {
    if (act_is_plain(&s->f)) return op_conv2d_workspace(s);
    return 2 * sz_x(s) + 2 * sz_w(s) + sz_y(s) + op_conv2d_workspace(s);
}

void op_conv2d_act_forward(const ConvShape *s, const void *x, const void *wp, void *y, float *ws) {
    if (act_is_plain(&s->f)) {
        op_conv2d_forward(s, x, wp, NULL, y, ws);
        return;
    }
    float *x32 = ws, *w32 = x32 + sz_x(s), *y32 = w32 + sz_w(s);
    float *cws = y32 + sz_y(s) + sz_x(s) + sz_w(s);
    act_to_nchw(&s->f, s->N, s->C, s->H * s->W, x, x32, 0);
    act_to_nchw(&s->f, s->K, s->C, s->R * s->S, wp, w32, 0);
    op_conv2d_forward(s, x32, w32, NULL, y32, cws);
    act_from_nchw(&s->f, s->N, s->K, s->P * s->Q, y32, y, 0);
}

void op_conv2d_act_backward(const ConvShape *s, const void *x, const void *wp, const void *dy,
                            void *dx, void *dwp, float *ws) {
    if (!dx && !dwp) return;
    if (act_is_plain(&s->f)) {
        op_conv2d_backward(s, x, wp, dy, dx, dwp, NULL, ws);
        return;
    }
    float *x32 = ws, *w32 = x32 + sz_x(s), *dy32 = w32 + sz_w(s);
    float *dx32 = dy32 + sz_y(s), *dw32 = dx32 + sz_x(s), *cws = dw32 + sz_w(s);
    act_to_nchw(&s->f, s->N, s->K, s->P * s->Q, dy, dy32, 0);
    /* x only feeds dw, wp only feeds dx */
    if (dwp) {
        act_to_nchw(&s->f, s->N, s->C, s->H * s->W, x, x32, 0);
        memset(dw32, 0, sizeof(float) * sz_w(s));
    }
    if (dx) {
        act_to_nchw(&s->f, s->K, s->C, s->R * s->S, wp, w32, 0);
        memset(dx32, 0, sizeof(float) * sz_x(s));
    }
    op_conv2d_backward(s, x32, w32, dy32, dx ? dx32 : NULL, dwp ? dw32 : NULL, NULL, cws);
    if (dx) act_from_nchw(&s->f, s->N, s->C, s->H * s->W, dx32, dx, 1);
    if (dwp) act_from_nchw(&s->f, s->K, s->C, s->R * s->S, dw32, dwp, 1);
}
