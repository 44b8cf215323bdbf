/* pool.c: max-pooling (R x R window, any stride / padding) and global average pooling, NCHW.
 *
 * Max-pool, x [N, C, H, W] -> y [N, C, P, Q], P = (H + 2*pad - R)/stride + 1 (floor, as
 * PyTorch with ceil_mode = False):
 *   y[n,c,p,q] = max_{r,s} x[n, c, p*stride - pad + r, q*stride - pad + s]
 * Padding acts as -inf (positions outside the image never win). argmax stores the flat
 * index ih*W + iw of the winner in its plane: the first maximum in window scan order, and
 * a NaN wins and propagates, as PyTorch's CPU kernel. Backward routes each dy to its
 * winner: dx[n, c, argmax] += dy[n, c, p, q].
 *
 * Global average pool, x [N, C, HW] -> y [N, C]:
 *   y[n,c] = sum_j x[n,c,j] / HW,   dx[n,c,j] += dy[n,c] / HW
 *
 * Planes (n, c) are independent: parallel over them (in backward each plane owns its dx).
 * The per-plane bodies are in pool_impl.h, shared with the ActFmt ops of act.c; here they
 * are inlined for fp32 NCHW. */
#include "ops/pool_impl.h"

void pool_shape_init(PoolShape *s, int N, int C, int H, int W, int R, int stride, int pad) {
    s->N = N, s->C = C, s->H = H, s->W = W;
    s->R = R, s->stride = stride, s->pad = pad;
    s->P = (H + 2 * pad - R) / stride + 1;
    s->Q = (W + 2 * pad - R) / stride + 1;
    s->f = (ActFmt){0, DT_F32};
}

void op_maxpool_forward(const PoolShape *s, const float *x, float *y, int32_t *argmax) {
    const long planes = (long)s->N * s->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) maxpool_fwd_plane(s, 0, DT_F32, pl, x, y, argmax);
}

void op_maxpool_backward(const PoolShape *s, const int32_t *argmax, const float *dy, float *dx) {
    const long planes = (long)s->N * s->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) maxpool_bwd_plane(s, 0, DT_F32, pl, argmax, dy, dx);
}

void op_avgpool_global_forward(int N, int C, int HW, const float *x, float *y) {
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) avgpool_fwd_plane(0, DT_F32, C, HW, pl, x, y);
}

void op_avgpool_global_backward(int N, int C, int HW, const float *dy, float *dx) {
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) avgpool_bwd_plane(0, DT_F32, C, HW, pl, dy, dx);
}
