// optim.cu: the element kernels of an optimizer step on device buffers (ops.h; the CPU's are
// src/ops/optim_kernels.c). The scalars come from optim_step (src/optim/optim.c), computed
// once per step on the host: decay = 1 - lr_i wd, step_size = lr_i / (1 - b1^t),
// inv_sqrt_bc2 = 1 / sqrt(1 - b2^t) (bias corrections in double).
// AdamW (PyTorch torch.optim.AdamW), per segment:
//   p *= decay
//   m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
//   p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
// Global norm: sqrt(sum g^2), per-block double partials (fixed grid, so the same sum every
// run) added on the host. Non-finite check: a flag any thread may set.
#include <math.h>

#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
#define NORM_BLOCKS 1024

__global__ void k_adamw(size_t n, float *p, const float *g, float *m, float *v, float decay, float b1, float b2,
                        float eps, float step_size, float inv_sqrt_bc2) {
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float pi = p[i] * decay;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

__global__ void k_sumsq(size_t n, const float *g, double *part) {
    double s = 0.0;
    GRID_STRIDE(i, n) s += (double)g[i] * (double)g[i];
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void k_nonfinite(size_t n, const float *g, int *flag) {
    int bad = 0;
    GRID_STRIDE(i, n) bad |= !isfinite(g[i]);
    if (bad) *flag = 1;
}

__global__ void k_scale(size_t n, float *x, float s) { GRID_STRIDE(i, n) x[i] *= s; }

extern "C" void gpu_adamw_update(float *params, const float *grads, float *m, float *v, const AdamwSegment *segs,
                                 int n_segs) {
    if (gpu_failed()) return;
    cudaStream_t st = gpu_stream();
    for (int s = 0; s < n_segs; s++) {
        const AdamwSegment *sg = &segs[s];
        if (!sg->n) continue;
        GPU_LAUNCH(k_adamw, gpu_blocks(sg->n), GPU_THREADS, 0, st, sg->n, params + sg->param_off, grads + sg->grad_off,
                                                           m + sg->grad_off, v + sg->grad_off, sg->decay, sg->beta1,
                                                           sg->beta2, sg->eps, sg->step_size, sg->inv_sqrt_bc2);
        if (KERNEL_CHECK()) return;
    }
}

extern "C" double gpu_global_norm(const float *g, size_t n) {
    if (!n) return 0.0;
    if (gpu_failed()) return NAN;
    double *part = (double *)gpu_scratch(NORM_BLOCKS * sizeof(double));
    if (!part) return NAN;
    cudaStream_t st = gpu_stream();
    GPU_LAUNCH(k_sumsq, NORM_BLOCKS, GPU_THREADS, 0, st, n, g, part);
    double *host = (double *)gpu_ctx()->host_scratch;
    if (KERNEL_CHECK() ||
        CUDA_CHECK(cudaMemcpyAsync(host, part, NORM_BLOCKS * sizeof(double), cudaMemcpyDeviceToHost, st)) ||
        CUDA_CHECK(cudaStreamSynchronize(st)))
        return NAN;
    double s = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) s += host[b];
    return sqrt(s);
}

extern "C" int gpu_has_nonfinite(const float *g, size_t n) {
    if (!n || gpu_failed()) return 0;
    int *flag = (int *)gpu_scratch(sizeof(int));
    if (!flag) return 1;
    cudaStream_t st = gpu_stream();
    int *host = (int *)gpu_ctx()->host_scratch;
    if (CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), st))) return 1;
    GPU_LAUNCH(k_nonfinite, gpu_blocks(n), GPU_THREADS, 0, st, n, g, flag);
    if (KERNEL_CHECK() || CUDA_CHECK(cudaMemcpyAsync(host, flag, sizeof(int), cudaMemcpyDeviceToHost, st)) ||
        CUDA_CHECK(cudaStreamSynchronize(st)))
        return 1;
    return *host != 0;
}

extern "C" void gpu_scale(float *x, size_t n, float s) {
    if (!n || gpu_failed()) return;
    GPU_LAUNCH(k_scale, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(), n, x, s);
    KERNEL_CHECK();
}
