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
 * Planes (n, c) are independent: parallel over them (in backward each plane owns its dx). */
#include <math.h>

#include "ops/ops.h"

void pool_shape_init(PoolShape *s, int N, int C, int H, int W, int R, int stride, int pad) {
    s->N = N, s->C = C, s->H = H, s->W = W;
    s->R = R, s->stride = stride, s->pad = pad;
    s->P = (H + 2 * pad - R) / stride + 1;
    s->Q = (W + 2 * pad - R) / stride + 1;
    s->f = (ActFmt){0, DT_F32};
}

void op_maxpool_forward(const PoolShape *s, const float *x, float *y, int32_t *argmax) {
    const int H = s->H, W = s->W, P = s->P, Q = s->Q, R = s->R, st = s->stride, pad = s->pad;
    const long planes = (long)s->N * s->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * H * W;
        float *yp = y + (size_t)pl * P * Q;
        int32_t *ap = argmax + (size_t)pl * P * Q;
        for (int p = 0; p < P; p++) {
            int h0 = p * st - pad, h1 = h0 + R;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int q = 0; q < Q; q++) {
                int w0 = q * st - pad, w1 = w0 + R;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float best = -INFINITY;
                int32_t bi = -1;
                for (int ih = h0; ih < h1; ih++) {
                    for (int iw = w0; iw < w1; iw++) {
                        float v = xp[ih * W + iw];
                        if (bi < 0 || v > best || isnan(v)) {
                            best = v;
                            bi = ih * W + iw;
                            if (isnan(v)) goto done; /* NaN wins; later values cannot beat it */
                        }
                    }
                }
            done:
                yp[p * Q + q] = best;
                ap[p * Q + q] = bi;
            }
        }
    }
}

void op_maxpool_backward(const PoolShape *s, const int32_t *argmax, const float *dy, float *dx) {
    const int HW = s->H * s->W, PQ = s->P * s->Q;
    const long planes = (long)s->N * s->C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const int32_t *ap = argmax + (size_t)pl * PQ;
        const float *d = dy + (size_t)pl * PQ;
        float *o = dx + (size_t)pl * HW;
        for (int j = 0; j < PQ; j++)
            if (ap[j] >= 0) o[ap[j]] += d[j];
    }
}

void op_avgpool_global_forward(int N, int C, int HW, const float *x, float *y) {
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *p = x + (size_t)pl * HW;
        double acc = 0.0;
        for (int j = 0; j < HW; j++) acc += p[j];
        y[pl] = (float)(acc / HW);
    }
}

void op_avgpool_global_backward(int N, int C, int HW, const float *dy, float *dx) {
    const long planes = (long)N * C;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        float g = dy[pl] / (float)HW;
        float *o = dx + (size_t)pl * HW;
        for (int j = 0; j < HW; j++) o[j] += g;
    }
}
