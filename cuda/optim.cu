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

extern "C" void cu_adamw_update(const Backend *be, float *params, const float *grads, float *m, float *v,
                                const AdamwSegment *segs, int n_segs) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (gpu_failed(g)) return;
    cudaStream_t st = gpu_stream(g);
    for (int s = 0; s < n_segs; s++) {
        const AdamwSegment *sg = &segs[s];
        if (!sg->n) continue;
        GPU_LAUNCH(k_adamw, gpu_blocks(sg->n), GPU_THREADS, 0, st, sg->n, params + sg->param_off, grads + sg->grad_off,
                                                           m + sg->grad_off, v + sg->grad_off, sg->decay, sg->beta1,
                                                           sg->beta2, sg->eps, sg->step_size, sg->inv_sqrt_bc2);
        if (KERNEL_CHECK(g)) return;
    }
}

extern "C" double cu_global_norm(const Backend *be, const float *grad, size_t n) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!n) return 0.0;
    if (gpu_failed(g)) return NAN;
    double *part = (double *)gpu_scratch(g, NORM_BLOCKS * sizeof(double));
    if (!part) return NAN;
    cudaStream_t st = gpu_stream(g);
    GPU_LAUNCH(k_sumsq, NORM_BLOCKS, GPU_THREADS, 0, st, n, grad, part);
    double *host = (double *)g->host_scratch;
    if (KERNEL_CHECK(g) ||
        CUDA_CHECK(g, cudaMemcpyAsync(host, part, NORM_BLOCKS * sizeof(double), cudaMemcpyDeviceToHost, st)) ||
        CUDA_CHECK(g, cudaStreamSynchronize(st)))
        return NAN;
    double s = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) s += host[b];
    return sqrt(s);
}

extern "C" int cu_has_nonfinite(const Backend *be, const float *grad, size_t n) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!n || gpu_failed(g)) return 0;
    int *flag = (int *)gpu_scratch(g, sizeof(int));
    if (!flag) return 1;
    cudaStream_t st = gpu_stream(g);
    int *host = (int *)g->host_scratch;
    if (CUDA_CHECK(g, cudaMemsetAsync(flag, 0, sizeof(int), st))) return 1;
    GPU_LAUNCH(k_nonfinite, gpu_blocks(n), GPU_THREADS, 0, st, n, grad, flag);
    if (KERNEL_CHECK(g) || CUDA_CHECK(g, cudaMemcpyAsync(host, flag, sizeof(int), cudaMemcpyDeviceToHost, st)) ||
        CUDA_CHECK(g, cudaStreamSynchronize(st)))
        return 1;
    return *host != 0;
}

extern "C" void cu_scale(const Backend *be, float *x, size_t n, float s) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (!n || gpu_failed(g)) return;
    GPU_LAUNCH(k_scale, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, x, s);
    KERNEL_CHECK(g);
}
