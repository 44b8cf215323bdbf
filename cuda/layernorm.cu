// layernorm.cu: layer normalization over the last dim (BERT), the math of src/ops/layernorm.c.
// x, y [N, D]; w, b [D] (NULL: 1, 0); mean, rstd [N] saved (NULL: not saved).
//   mean = sum_d x / D ;  var = sum_d (x - mean)^2 / D (two passes, double) ;  rstd = 1/sqrt(var + eps)
//   y = (x - mean) * rstd * w + b
// Backward with g = dy * w, xhat = (x - mean) * rstd:
//   dx += rstd * (g - mean_d(g) - xhat * mean_d(g * xhat))      (one warp per row)
//   dw += sum_n dy * xhat ;  db += sum_n dy                      (32 columns x 8 row groups per block)
#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define ROWS_PER_BLOCK 8

__global__ void k_ln_fwd(int N, int D, const float *x, const float *w, const float *b, float eps, float *y,
                         float *mean, float *rstd) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *xr = x + (size_t)n * D;
    float *yr = y + (size_t)n * D;
    double s = 0.0;
    for (int d = lane; d < D; d += 32) s += xr[d];
    const double mu = warp_sum(s) / D;
    double v = 0.0;
    for (int d = lane; d < D; d += 32) {
        double c = xr[d] - mu;
        v += c * c;
    }
    v = warp_sum(v);
    const float m = (float)mu, r = (float)(1.0 / sqrt(v / D + (double)eps));
    for (int d = lane; d < D; d += 32) {
        float xh = (xr[d] - m) * r;
        yr[d] = xh * (w ? w[d] : 1.0f) + (b ? b[d] : 0.0f);
    }
    if (lane == 0) {
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

__global__ void k_ln_bwd_dx(int N, int D, const float *x, const float *w, const float *mean, const float *rstd,
                            const float *dy, float *dx) {
    const int n = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (n >= N) return;
    const float *xr = x + (size_t)n * D, *gr = dy + (size_t)n * D;
    float *o = dx + (size_t)n * D;
    const float m = mean[n], r = rstd[n];
    double sg = 0.0, sgx = 0.0;
    for (int d = lane; d < D; d += 32) {
        float g = gr[d] * (w ? w[d] : 1.0f);
        float xh = (xr[d] - m) * r;
        sg += g;
        sgx += (double)g * xh;
    }
    const float mg = (float)(warp_sum(sg) / D), mgx = (float)(warp_sum(sgx) / D);
    for (int d = lane; d < D; d += 32) {
        float g = gr[d] * (w ? w[d] : 1.0f);
        float xh = (xr[d] - m) * r;
        o[d] += r * (g - mg - xh * mgx);
    }
}

__global__ void k_ln_bwd_wb(int N, int D, const float *x, const float *mean, const float *rstd, const float *dy,
                            float *dw, float *db) {
    __shared__ double pw[8][33], pb[8][33];
    const int d = blockIdx.x * 32 + threadIdx.x;
    double aw = 0.0, ab = 0.0;
    if (d < D)
        for (int n = threadIdx.y; n < N; n += 8) {
            float g = dy[(size_t)n * D + d];
            aw += (double)g * ((x[(size_t)n * D + d] - mean[n]) * rstd[n]);
            ab += g;
        }
    pw[threadIdx.y][threadIdx.x] = aw;
    pb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && d < D) {
        double tw = 0.0, tb = 0.0;
        for (int r = 0; r < 8; r++) tw += pw[r][threadIdx.x], tb += pb[r][threadIdx.x];
        if (dw) dw[d] += (float)tw;
        if (db) db[d] += (float)tb;
    }
}

extern "C" void cu_layernorm_forward(const Backend *be, int N, int D, const float *x, const float *w, const float *b,
                                     float eps, float *y, float *mean, float *rstd) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (N <= 0 || D <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_ln_fwd, (N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, 32 * ROWS_PER_BLOCK, 0, gpu_stream(g), N, D, x, w,
               b, eps, y, mean, rstd);
    KERNEL_CHECK(g);
}

extern "C" void cu_layernorm_backward(const Backend *be, int N, int D, const float *x, const float *w,
                                      const float *mean, const float *rstd, const float *dy, float *dx, float *dw,
                                      float *db) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (N <= 0 || D <= 0 || gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    if (dx) {
        GPU_LAUNCH(k_ln_bwd_dx, (N + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, 32 * ROWS_PER_BLOCK, 0, st, N, D, x, w, mean, rstd,
                                                                                               dy, dx);
        if (KERNEL_CHECK(g)) return;
    }
    if (dw || db) {
        GPU_LAUNCH(k_ln_bwd_wb, (D + 31) / 32, dim3(32, 8), 0, st, N, D, x, mean, rstd, dy, dw, db);
        KERNEL_CHECK(g);
    }
}
