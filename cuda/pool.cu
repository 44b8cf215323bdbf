// pool.cu: max-pooling with argmax and global average pooling, NCHW, the semantics of
// src/ops/pool.c (PyTorch): padding is -inf, the first maximum in window scan order wins,
// a NaN wins and propagates; argmax = flat index ih*W + iw in the plane.
//   y[n,c,p,q] = max_{r,s} x[n, c, p*stride - pad + r, q*stride - pad + s]
//   dx[n,c,argmax] += dy[n,c,p,q]
// The backward GATHERS: each input position sums, in (p, q) order, the dy of the windows that
// chose it, so there are no atomics and the sums match the CPU's order bit for bit.
// Global average: y[n,c] = sum_j x[n,c,j] / HW (double) ; dx[n,c,j] += dy[n,c] / HW.
#include <math.h>

#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void k_maxpool_fwd(size_t total, PoolShape s, const float *x, float *y, int32_t *argmax) {
    GRID_STRIDE(i, total) {
        const int q = (int)(i % s.Q), p = (int)((i / s.Q) % s.P);
        const size_t plane = i / ((size_t)s.P * s.Q);
        const float *xp = x + plane * s.H * s.W;
        int h0 = p * s.stride - s.pad, h1 = h0 + s.R, w0 = q * s.stride - s.pad, w1 = w0 + s.R;
        h0 = h0 < 0 ? 0 : h0, h1 = h1 > s.H ? s.H : h1;
        w0 = w0 < 0 ? 0 : w0, w1 = w1 > s.W ? s.W : w1;
        float best = -INFINITY;
        int32_t bi = -1;
        for (int ih = h0; ih < h1 && !(bi >= 0 && isnan(best)); ih++)
            for (int iw = w0; iw < w1; iw++) {
                float v = xp[ih * s.W + iw];
                if (bi < 0 || v > best || isnan(v)) {
                    best = v;
                    bi = ih * s.W + iw;
                    if (isnan(v)) break;
                }
            }
        y[i] = best;
        argmax[i] = bi;
    }
}

__global__ void k_maxpool_bwd(size_t total, PoolShape s, const int32_t *argmax, const float *dy, float *dx) {
    GRID_STRIDE(i, total) {
        const int iw = (int)(i % s.W), ih = (int)((i / s.W) % s.H);
        const size_t plane = i / ((size_t)s.H * s.W);
        const int32_t me = ih * s.W + iw;
        // windows p with p*stride - pad <= ih < p*stride - pad + R
        int p0 = ih + s.pad - s.R + 1, p1 = (ih + s.pad) / s.stride;
        p0 = p0 <= 0 ? 0 : (p0 + s.stride - 1) / s.stride;
        int q0 = iw + s.pad - s.R + 1, q1 = (iw + s.pad) / s.stride;
        q0 = q0 <= 0 ? 0 : (q0 + s.stride - 1) / s.stride;
        if (p1 > s.P - 1) p1 = s.P - 1;
        if (q1 > s.Q - 1) q1 = s.Q - 1;
        const int32_t *ap = argmax + plane * s.P * s.Q;
        const float *d = dy + plane * s.P * s.Q;
        float acc = dx[i];
        for (int p = p0; p <= p1; p++)
            for (int q = q0; q <= q1; q++)
                if (ap[p * s.Q + q] == me) acc += d[p * s.Q + q];
        dx[i] = acc;
    }
}

// one warp per plane
__global__ void k_avgpool_fwd(long planes, int HW, const float *x, float *y) {
    const long pl = blockIdx.x * 8L + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (pl >= planes) return;
    const float *p = x + (size_t)pl * HW;
    double acc = 0.0;
    for (int j = lane; j < HW; j += 32) acc += p[j];
    acc = warp_sum(acc);
    if (lane == 0) y[pl] = (float)(acc / HW);
}

__global__ void k_avgpool_bwd(size_t total, int HW, const float *dy, float *dx) {
    GRID_STRIDE(i, total) dx[i] += dy[i / HW] / (float)HW;
}

extern "C" void cu_maxpool_forward(const PoolShape *s, const float *x, float *y, int32_t *argmax) {
    size_t total = (size_t)s->N * s->C * s->P * s->Q;
    if (!total || gpu_failed()) return;
    k_maxpool_fwd<<<gpu_blocks(total), GPU_THREADS, 0, gpu_stream()>>>(total, *s, x, y, argmax);
    KERNEL_CHECK();
}

extern "C" void cu_maxpool_backward(const PoolShape *s, const int32_t *argmax, const float *dy, float *dx) {
    size_t total = (size_t)s->N * s->C * s->H * s->W;
    if (!dx || !total || gpu_failed()) return;
    k_maxpool_bwd<<<gpu_blocks(total), GPU_THREADS, 0, gpu_stream()>>>(total, *s, argmax, dy, dx);
    KERNEL_CHECK();
}

extern "C" void cu_avgpool_global_forward(int N, int C, int HW, const float *x, float *y) {
    long planes = (long)N * C;
    if (planes <= 0 || HW <= 0 || gpu_failed()) return;
    k_avgpool_fwd<<<(unsigned)((planes + 7) / 8), 256, 0, gpu_stream()>>>(planes, HW, x, y);
    KERNEL_CHECK();
}

extern "C" void cu_avgpool_global_backward(int N, int C, int HW, const float *dy, float *dx) {
    size_t total = (size_t)N * C * HW;
    if (!dx || !total || gpu_failed()) return;
    k_avgpool_bwd<<<gpu_blocks(total), GPU_THREADS, 0, gpu_stream()>>>(total, HW, dy, dx);
    KERNEL_CHECK();
}
