// pool_act.cu: the pooling entries, max-pooling with argmax and global average pooling, on
// activations in the descriptor's format (the plain format {NCHW, float}, or NHWC and/or
// bf16 / fp16): one kernel family instantiated per storage type. The semantics of
// src/ops/pool.c (PyTorch) and act.c:
//   y[n,c,p,q] = max_{r,s} x[n, c, p*stride - pad + r, q*stride - pad + s]   (padding -inf)
//   argmax[n,c,p,q] = ih*W + iw of the FIRST maximum in the window's row-major scan (a NaN
//   wins and ends the scan), flat in the input's H*W plane; argmax is laid out like y (s->f).
//   dx[n,c,argmax] = round(dx + dy[n,c,p,q])  for each (p, q) in row-major order
// Values are compared as fp32 (exact for every storage type), so the maximum is the CPU's.
// The backward GATHERS (each input element sums the windows that chose it, in (p, q) order,
// rounding after every addition as the CPU's dx += does): no atomics, bit-exact order.
// Global average: y[n,c] (fp32) = sum_hw x[n,c,hw] / HW (double) ; dx = round(dx + dy[n,c] / HW).
#include <math.h>

#include "cuda/act_types.cuh"
#include "cuda/reduce.cuh"

// one thread per element of y, in y's layout
template <typename T> __global__ void k_maxpool_act_fwd(size_t total, PoolShape s, const T *x, T *y, int32_t *argmax) {
    const int nhwc = s.f.nhwc, HW = s.H * s.W, PQ = s.P * s.Q;
    ACT_GRID_STRIDE(i, total) {
        size_t n, c, pq;
        act_coords(nhwc, s.C, PQ, i, &n, &c, &pq);
        const int p = (int)(pq / s.Q), q = (int)(pq % s.Q);
        int h0 = p * s.stride - s.pad, h1 = h0 + s.R, w0 = q * s.stride - s.pad, w1 = w0 + s.R;
        h0 = h0 < 0 ? 0 : h0, h1 = h1 > s.H ? s.H : h1;
        w0 = w0 < 0 ? 0 : w0, w1 = w1 > s.W ? s.W : w1;
        float best = -INFINITY;
        int32_t bi = -1;
        for (int ih = h0; ih < h1 && !(bi >= 0 && isnan(best)); ih++)
            for (int iw = w0; iw < w1; iw++) {
                const float v = act_ld(x[act_at(nhwc, s.C, HW, n, c, (size_t)ih * s.W + iw)]);
                if (bi < 0 || v > best || isnan(v)) {
                    best = v;
                    bi = ih * s.W + iw;
                    if (isnan(v)) break;
                }
            }
        y[i] = act_st<T>(best);
        argmax[i] = bi;
    }
}

// one thread per element of dx, in x's layout
template <typename T>
__global__ void k_maxpool_act_bwd(size_t total, PoolShape s, const int32_t *argmax, const T *dy, T *dx) {
    const int nhwc = s.f.nhwc, HW = s.H * s.W, PQ = s.P * s.Q;
    ACT_GRID_STRIDE(i, total) {
        size_t n, c, hw;
        act_coords(nhwc, s.C, HW, i, &n, &c, &hw);
        const int ih = (int)(hw / s.W), iw = (int)(hw % s.W);
        const int32_t me = (int32_t)hw;
        // windows p with p*stride - pad <= ih < p*stride - pad + R
        int p0 = ih + s.pad - s.R + 1, p1 = (ih + s.pad) / s.stride;
        p0 = p0 <= 0 ? 0 : (p0 + s.stride - 1) / s.stride;
        int q0 = iw + s.pad - s.R + 1, q1 = (iw + s.pad) / s.stride;
        q0 = q0 <= 0 ? 0 : (q0 + s.stride - 1) / s.stride;
        if (p1 > s.P - 1) p1 = s.P - 1;
        if (q1 > s.Q - 1) q1 = s.Q - 1;
        float acc = act_ld(dx[i]);
        for (int p = p0; p <= p1; p++)
            for (int q = q0; q <= q1; q++) {
                const size_t at = act_at(nhwc, s.C, PQ, n, c, (size_t)p * s.Q + q);
                if (argmax[at] == me) acc = act_round<T>(acc + act_ld(dy[at]));
            }
        dx[i] = act_st<T>(acc);
    }
}

// NCHW: one warp per (n, c) plane (contiguous HW values), AVGPOOL_WARPS warps per block
template <typename T> __global__ void k_avgpool_act_fwd_nchw(long planes, int HW, const T *x, float *y) {
    const long pl = blockIdx.x * (long)AVGPOOL_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (pl >= planes) return;
    const T *p = x + (size_t)pl * HW;
    double acc = 0.0;
    for (int j = lane; j < HW; j += 32) acc += act_ld(p[j]);
    acc = warp_sum(acc);
    if (lane == 0) y[pl] = (float)(acc / HW);
}

// NHWC: one thread per (n, c); neighbouring threads read neighbouring channels (coalesced)
template <typename T> __global__ void k_avgpool_act_fwd_nhwc(size_t total, int C, int HW, const T *x, float *y) {
    ACT_GRID_STRIDE(i, total) {
        const size_t n = i / C, c = i % C;
        const T *p = x + n * HW * C + c;
        double acc = 0.0;
        for (int j = 0; j < HW; j++) acc += act_ld(p[(size_t)j * C]);
        y[i] = (float)(acc / HW);
    }
}

// dx = round(dx + dy[n, c] / HW), one thread per element of dx
template <typename T> __global__ void k_avgpool_act_bwd(size_t total, int nhwc, int C, int HW, const float *dy, T *dx) {
    ACT_GRID_STRIDE(i, total) {
        size_t n, c, hw;
        act_coords(nhwc, C, HW, i, &n, &c, &hw);
        dx[i] = act_st<T>(act_ld(dx[i]) + dy[n * C + c] / (float)HW);
    }
}

extern "C" void cu_maxpool_forward(const Backend *be, const PoolShape *s, const void *x, void *y, int32_t *argmax) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)s->N * s->C * s->P * s->Q;
    if (!total || s->P <= 0 || s->Q <= 0 || gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    ACT_DISPATCH(g, s->f.dt, T,
                 GPU_LAUNCH(k_maxpool_act_fwd<T>, gpu_blocks(total), GPU_THREADS, 0, st, total, *s, (const T *)x,
                            (T *)y, argmax));
    KERNEL_CHECK(g);
}

extern "C" void cu_maxpool_backward(const Backend *be, const PoolShape *s, const int32_t *argmax, const void *dy,
                                    void *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)s->N * s->C * s->H * s->W;
    if (!dx || !total || s->P <= 0 || s->Q <= 0 || gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    ACT_DISPATCH(g, s->f.dt, T,
                 GPU_LAUNCH(k_maxpool_act_bwd<T>, gpu_blocks(total), GPU_THREADS, 0, st, total, *s, argmax,
                            (const T *)dy, (T *)dx));
    KERNEL_CHECK(g);
}

extern "C" void cu_avgpool_forward(const Backend *be, const ActDesc *d, const void *x, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    const int N = d->N, C = d->C, HW = d->HW;
    const long planes = (long)N * C;
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    if (d->f.nhwc)
        ACT_DISPATCH(g, d->f.dt, T,
                     GPU_LAUNCH(k_avgpool_act_fwd_nhwc<T>, gpu_blocks((size_t)planes), GPU_THREADS, 0, st,
                                (size_t)planes, C, HW, (const T *)x, y));
    else
        ACT_DISPATCH(g, d->f.dt, T,
                     GPU_LAUNCH(k_avgpool_act_fwd_nchw<T>, (unsigned)avgpool_nchw_blocks((size_t)planes),
                                32 * AVGPOOL_WARPS, 0, st, planes, HW, (const T *)x, y));
    KERNEL_CHECK(g);
}

extern "C" void cu_avgpool_backward(const Backend *be, const ActDesc *d, const float *dy, void *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    const int N = d->N, C = d->C, HW = d->HW;
    size_t total = (size_t)N * C * HW;
    if (!dx || N <= 0 || C <= 0 || HW <= 0 || gpu_failed(g)) return;
    ACT_DISPATCH(g, d->f.dt, T,
                 GPU_LAUNCH(k_avgpool_act_bwd<T>, gpu_blocks(total), GPU_THREADS, 0, gpu_stream(g), total,
                            d->f.nhwc, C, HW, dy, (T *)dx));
    KERNEL_CHECK(g);
}
