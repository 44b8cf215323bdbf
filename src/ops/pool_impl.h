/* pool_impl.h: the one implementation of max-pool and global average pool, one (n, c)
 * plane per call, for pool.c (the plain fp32 NCHW ops) and act.c (the same ops in any
 * ActFmt); not part of the op contract.
 *
 * Each body takes the format as (nhwc, dt) and is always inlined: pool.c calls it with the
 * constants {0, DT_F32}, so act_ld / act_st become plain float loads and stores and the
 * plane is a contiguous run walked in order (the plain ops' arithmetic and order); act.c
 * calls it with the format it was given. The callers own the parallel loop over planes:
 * an `omp parallel for` inside an inline body would be outlined once, before inlining, and
 * lose the constants.
 *
 * Element hw of plane pl = n*C + c of an [N, C, HW] activation sits at x0 + hw * cs, with
 * x0 = act_plane(pl) (= act_index(n, c, 0)) and cs = 1 (NCHW) or C (NHWC). */
#ifndef VQA_POOL_IMPL_H
#define VQA_POOL_IMPL_H

#include <math.h>

#include "ops/act_internal.h"

/* Max-pool of plane pl = n*C + c, x [N, C, H, W] -> y, argmax [N, C, P, Q] (argmax laid
 * out like y):
 *   y[n,c,p,q] = max_{r,s} x[n, c, p*stride - pad + r, q*stride - pad + s]
 * Padding is -inf (never wins); argmax = ih*W + iw in the input plane of the first
 * maximum in window scan order; a NaN wins and propagates (PyTorch's CPU kernel). */
ACT_INLINE void maxpool_fwd_plane(const PoolShape *s, int nhwc, DType dt, long pl, const void *x,
                                  void *y, int32_t *argmax) {
    const int C = s->C, H = s->H, W = s->W, P = s->P, Q = s->Q, R = s->R;
    const int st = s->stride, pad = s->pad;
    const size_t cs = nhwc ? (size_t)C : 1;
    const size_t x0 = act_plane(nhwc, C, H * W, pl), y0 = act_plane(nhwc, C, P * Q, pl);
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
                    float v = act_ld(dt, x, x0 + (size_t)(ih * W + iw) * cs);
                    if (bi < 0 || v > best || isnan(v)) {
                        best = v;
                        bi = ih * W + iw;
                        if (isnan(v)) goto done; /* NaN wins; later values cannot beat it */
                    }
                }
            }
        done:;
            const size_t o = y0 + (size_t)(p * Q + q) * cs;
            act_st(dt, y, o, best); /* a loaded value: exact in dt */
            argmax[o] = bi;
        }
    }
}

/* Max-pool backward of plane pl: each dy goes to its window's winner,
 *   dx[n, c, argmax[n,c,p,q]] += dy[n,c,p,q]   (accumulated in dt) */
ACT_INLINE void maxpool_bwd_plane(const PoolShape *s, int nhwc, DType dt, long pl,
                                  const int32_t *argmax, const void *dy, void *dx) {
    const int C = s->C, PQ = s->P * s->Q;
    const size_t cs = nhwc ? (size_t)C : 1;
    const size_t x0 = act_plane(nhwc, C, s->H * s->W, pl), y0 = act_plane(nhwc, C, PQ, pl);
    for (int j = 0; j < PQ; j++) {
        const size_t o = y0 + (size_t)j * cs;
        if (argmax[o] >= 0) act_acc(dt, dx, x0 + (size_t)argmax[o] * cs, act_ld(dt, dy, o));
    }
}

/* Global average pool of plane pl, x [N, C, HW] -> fp32 y [N, C]:
 *   y[n,c] = sum_j x[n,c,j] / HW   (summed in double, in j order) */
ACT_INLINE void avgpool_fwd_plane(int nhwc, DType dt, int C, int HW, long pl, const void *x,
                                  float *y) {
    const size_t cs = nhwc ? (size_t)C : 1;
    const size_t x0 = act_plane(nhwc, C, HW, pl);
    double acc = 0.0;
    for (int j = 0; j < HW; j++) acc += act_ld(dt, x, x0 + (size_t)j * cs);
    y[pl] = (float)(acc / HW);
}

/* Global average pool backward of plane pl: dx[n,c,j] += dy[n,c] / HW (accumulated in dt) */
ACT_INLINE void avgpool_bwd_plane(int nhwc, DType dt, int C, int HW, long pl, const float *dy,
                                  void *dx) {
    const size_t cs = nhwc ? (size_t)C : 1;
    const size_t x0 = act_plane(nhwc, C, HW, pl);
    const float g = dy[pl] / (float)HW;
    for (int j = 0; j < HW; j++) act_acc(dt, dx, x0 + (size_t)j * cs, g);
}

#endif
