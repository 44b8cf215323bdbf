// softmax.cu: softmax over the last dim (src/ops/softmax.c) and the row kernels of
// attention (src/ops/attention.c): key mask + softmax + dropout, and the softmax backward
// through dropout. One warp per row; exponentials in float, row sums in double, as the CPU.
//   y[r, j]  = exp(x[r, j] - max_j x[r, :]) / sum_k exp(x[r, k] - max x[r, :])
//   dx[r, j] += y[r, j] * (dy[r, j] - sum_k dy[r, k] y[r, k])
#include <float.h>

#include "cuda/dropout_hash.cuh"
#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define ROWS_PER_BLOCK 8 // 8 warps of 32

// One row in place-safe form: reads x, writes y (may alias). lane = 0..31.
__device__ __forceinline__ void row_softmax(int cols, const float *x, float *y, int lane) {
    float mx = -FLT_MAX;
    for (int j = lane; j < cols; j += 32) mx = fmaxf(mx, x[j]);
    mx = warp_max(mx);
    double s = 0.0;
    for (int j = lane; j < cols; j += 32) {
        float e = expf(x[j] - mx);
        y[j] = e;
        s += e;
    }
    s = warp_sum(s);
    const float inv = (float)(1.0 / s);
    for (int j = lane; j < cols; j += 32) y[j] *= inv;
}

__global__ void k_softmax_fwd(int rows, int cols, const float *x, float *y) {
    const int r = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    row_softmax(cols, x + (size_t)r * cols, y + (size_t)r * cols, lane);
}

__global__ void k_softmax_bwd(int rows, int cols, const float *y, const float *dy, float *dx) {
    const int r = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const float *yr = y + (size_t)r * cols, *gr = dy + (size_t)r * cols;
    float *o = dx + (size_t)r * cols;
    double s = 0.0;
    for (int j = lane; j < cols; j += 32) s += (double)gr[j] * yr[j];
    const float sf = (float)warp_sum(s);
    for (int j = lane; j < cols; j += 32) o[j] += yr[j] * (gr[j] - sf);
}

// Attention rows r = ((b*nh + h)*L + i), P [rows, L] holds the scaled scores on entry:
//   P += (1 - m[b, j]) * -FLT_MAX where m != 1 (HF's finfo.min); P = softmax(P)
//   p > 0: keep = hash(seed, r*L + j) >= p ; Pd = keep ? P / (1-p) : 0 ; keep saved if asked
__global__ void k_attn_softmax_dropout(int rows, int nh, int L, const float *key_mask, float p, uint64_t sm,
                                       float *P, float *Pd, uint8_t *keep) {
    const int r = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    float *row = P + (size_t)r * L;
    if (key_mask) {
        const float *m = key_mask + (size_t)(r / L / nh) * L;
        for (int j = lane; j < L; j += 32)
            if (m[j] != 1.0f) row[j] += (1.0f - m[j]) * -FLT_MAX;
    }
    __syncwarp();
    row_softmax(L, row, row, lane);
    if (p > 0.0f) {
        const float scale = 1.0f / (1.0f - p);
        for (int j = lane; j < L; j += 32) {
            const size_t idx = (size_t)r * L + j;
            int k = p < 1.0f && dh_keep(sm, (uint64_t)idx, p);
            Pd[idx] = k ? row[j] * scale : 0.0f;
            if (keep) keep[idx] = (uint8_t)k;
        }
    }
}

// Pd = keep ? P * scale : 0   (the dropped probabilities again, for dV in the backward)
__global__ void k_attn_dropped(size_t n, float scale, const float *P, const uint8_t *keep, float *Pd) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        Pd[i] = keep[i] ? P[i] * scale : 0.0f;
}

// dP = keep ? dPd * scale : 0 (p > 0);  dS = P * (dP - sum_j dP P)
__global__ void k_attn_softmax_bwd(int rows, int L, float p, const float *P, const uint8_t *keep, float *dP,
                                   float *dS) {
    const int r = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (r >= rows) return;
    const float scale = p > 0.0f ? (p < 1.0f ? 1.0f / (1.0f - p) : 0.0f) : 1.0f;
    const float *pr = P + (size_t)r * L;
    float *g = dP + (size_t)r * L, *o = dS + (size_t)r * L;
    double s = 0.0;
    for (int j = lane; j < L; j += 32) {
        float v = g[j];
        if (p > 0.0f) v = keep[(size_t)r * L + j] ? v * scale : 0.0f;
        g[j] = v;
        s += (double)v * pr[j];
    }
    const float sf = (float)warp_sum(s);
    for (int j = lane; j < L; j += 32) o[j] = pr[j] * (g[j] - sf);
}

static unsigned row_blocks(int rows) { return (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK); }

extern "C" void cu_softmax_forward(const Backend *be, int rows, int cols, const float *x, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (rows <= 0 || cols <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_softmax_fwd, row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, gpu_stream(g), rows, cols, x, y);
    KERNEL_CHECK(g);
}

extern "C" void cu_softmax_backward(const Backend *be, int rows, int cols, const float *y, const float *dy,
                                    float *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!dx || rows <= 0 || cols <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_softmax_bwd, row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, gpu_stream(g), rows, cols, y, dy, dx);
    KERNEL_CHECK(g);
}

extern "C" void cu_attn_softmax_dropout(GpuContext *g, int B, int nh, int L, const float *key_mask, float p,
                                        uint64_t seed, float *P, float *Pd, uint8_t *keep) {
    const int rows = B * nh * L;
    if (rows <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_attn_softmax_dropout, row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, gpu_stream(g), rows, nh, L, key_mask,
               p, dh_mix64(seed), P, Pd, keep);
    KERNEL_CHECK(g);
}

extern "C" void cu_attn_dropped_probs(GpuContext *g, size_t n, float p, const float *P, const uint8_t *keep,
                                      float *Pd) {
    if (!n || gpu_failed(g)) return;
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    GPU_LAUNCH(k_attn_dropped, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, scale, P, keep, Pd);
    KERNEL_CHECK(g);
}

extern "C" void cu_attn_softmax_backward(GpuContext *g, int rows, int L, float p, const float *P, const uint8_t *keep,
                                         float *dP, float *dS) {
    if (rows <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_attn_softmax_bwd, row_blocks(rows), 32 * ROWS_PER_BLOCK, 0, gpu_stream(g), rows, L, p, P, keep, dP,
               dS);
    KERNEL_CHECK(g);
}
