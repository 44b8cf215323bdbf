// activation.cu: point-wise activations on the GPU, forward and backward side by side, the
// same math as src/ops/activation.c. x, y, dy, dx [n] flat fp32; backward ACCUMULATES into dx.
// ReLU in a half storage type (the relu entries' dt) runs act.cu's kernels.
#include "cuda/gpu_internal.h"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// y = max(x, 0)            (in place allowed)
__global__ void k_relu_fwd(size_t n, const float *x, float *y) {
    GRID_STRIDE(i, n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
// dx += dy * [y > 0]
__global__ void k_relu_bwd(size_t n, const float *y, const float *dy, float *dx) {
    GRID_STRIDE(i, n) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
}

// y = 0.5 x (1 + erf(x / sqrt 2))
__global__ void k_gelu_fwd(size_t n, const float *x, float *y) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}
// dx += dy * (Phi(x) + x phi(x)),  Phi = 0.5 (1 + erf(x / sqrt 2)),  phi = exp(-x^2/2) / sqrt(2 pi)
__global__ void k_gelu_bwd(size_t n, const float *x, const float *dy, float *dx) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] += dy[i] * (cdf + v * pdf);
    }
}

// y = tanh(x);  dx += dy * (1 - y^2)
__global__ void k_tanh_fwd(size_t n, const float *x, float *y) {
    GRID_STRIDE(i, n) y[i] = tanhf(x[i]);
}
__global__ void k_tanh_bwd(size_t n, const float *y, const float *dy, float *dx) {
    GRID_STRIDE(i, n) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

#define LAUNCH(g, kern, n, ...)                                                              \
    do {                                                                                     \
        if (!(n) || gpu_failed(g)) return;                                                   \
        GPU_LAUNCH(kern, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, __VA_ARGS__);       \
        KERNEL_CHECK(g);                                                                     \
    } while (0)

extern "C" void cu_relu_forward(const Backend *be, DType dt, size_t n, const void *x, void *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (dt != DT_F32) {
        cu_act_relu_forward(g, dt, n, x, y);
        return;
    }
    LAUNCH(g, k_relu_fwd, n, (const float *)x, (float *)y);
}
extern "C" void cu_relu_backward(const Backend *be, DType dt, size_t n, const void *y, const void *dy, void *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (dt != DT_F32) {
        cu_act_relu_backward(g, dt, n, y, dy, dx);
        return;
    }
    if (dx) LAUNCH(g, k_relu_bwd, n, (const float *)y, (const float *)dy, (float *)dx);
}
extern "C" void cu_gelu_forward(const Backend *be, size_t n, const float *x, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    LAUNCH(g, k_gelu_fwd, n, x, y);
}
extern "C" void cu_gelu_backward(const Backend *be, size_t n, const float *x, const float *dy, float *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (dx) LAUNCH(g, k_gelu_bwd, n, x, dy, dx);
}
extern "C" void cu_tanh_forward(const Backend *be, size_t n, const float *x, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    LAUNCH(g, k_tanh_fwd, n, x, y);
}
extern "C" void cu_tanh_backward(const Backend *be, size_t n, const float *y, const float *dy, float *dx) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (dx) LAUNCH(g, k_tanh_bwd, n, y, dy, dx);
}
