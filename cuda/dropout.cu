// dropout.cu: inverted dropout with the counter-based mask of src/ops/dropout.c, so the GPU
// keeps exactly the elements the CPU keeps for the same (seed, i) (dropout_hash.cuh).
//   keep[i] = hash(seed, i) >= p ;  y[i] = x[i] * keep[i] / (1 - p) ;  dx[i] += dy[i] * keep[i] / (1 - p)
// p <= 0: y = x (mask all 1); p >= 1: y = 0 (mask all 0). mask may be NULL in the forward.
#include "cuda/dropout_hash.cuh"
#include "cuda/gpu_internal.h"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void k_dropout_fwd(size_t n, float p, uint64_t sm, const float *x, float *y, uint8_t *mask) {
    const float scale = 1.0f / (1.0f - p);
    GRID_STRIDE(i, n) {
        int k = dh_keep(sm, (uint64_t)i, p);
        y[i] = k ? x[i] * scale : 0.0f;
        if (mask) mask[i] = (uint8_t)k;
    }
}

__global__ void k_dropout_bwd(size_t n, float p, const uint8_t *mask, const float *dy, float *dx) {
    const float scale = 1.0f / (1.0f - p);
    GRID_STRIDE(i, n) if (mask[i]) dx[i] += dy[i] * scale;
}

__global__ void k_accumulate(size_t n, const float *dy, float *dx) { GRID_STRIDE(i, n) dx[i] += dy[i]; }

extern "C" void cu_dropout_forward(const Backend *be, size_t n, float p, uint64_t seed, const float *x, float *y,
                                   uint8_t *mask) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!n || gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    if (p <= 0.0f) {
        if (y != x && CUDA_CHECK(g, cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, st))) return;
        if (mask) CUDA_CHECK(g, cudaMemsetAsync(mask, 1, n, st));
        return;
    }
    if (p >= 1.0f) {
        if (CUDA_CHECK(g, cudaMemsetAsync(y, 0, n * sizeof(float), st))) return;
        if (mask) CUDA_CHECK(g, cudaMemsetAsync(mask, 0, n, st));
        return;
    }
    GPU_LAUNCH(k_dropout_fwd, gpu_blocks(n), GPU_THREADS, 0, st, n, p, dh_mix64(seed), x, y, mask);
    KERNEL_CHECK(g);
}

extern "C" void cu_dropout_backward(const Backend *be, size_t n, float p, const uint8_t *mask, const float *dy,
                                    float *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!dx || !n || gpu_failed(g) || p >= 1.0f) return;
    if (p <= 0.0f) GPU_LAUNCH(k_accumulate, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, dy, dx);
    else GPU_LAUNCH(k_dropout_bwd, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, p, mask, dy, dx);
    KERNEL_CHECK(g);
}
