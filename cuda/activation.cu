// activation.cu: point-wise activations on the GPU, forward and backward side by side, the
// same math as src/ops/activation.c. x, y, dy, dx [n] flat; backward ACCUMULATES into dx.
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

#define LAUNCH(kern, n, ...)                                                                 \
    do {                                                                                     \
        if (!(n) || gpu_failed()) return;                                                    \
        GPU_LAUNCH(kern, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(), n, __VA_ARGS__);               \
        KERNEL_CHECK();                                                                      \
    } while (0)

extern "C" void cu_relu_forward(size_t n, const float *x, float *y) { LAUNCH(k_relu_fwd, n, x, y); }
extern "C" void cu_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
    if (dx) LAUNCH(k_relu_bwd, n, y, dy, dx);
}
extern "C" void cu_gelu_forward(size_t n, const float *x, float *y) { LAUNCH(k_gelu_fwd, n, x, y); }
extern "C" void cu_gelu_backward(size_t n, const float *x, const float *dy, float *dx) {
    if (dx) LAUNCH(k_gelu_bwd, n, x, dy, dx);
}
extern "C" void cu_tanh_forward(size_t n, const float *x, float *y) { LAUNCH(k_tanh_fwd, n, x, y); }
extern "C" void cu_tanh_backward(size_t n, const float *y, const float *dy, float *dx) {
    if (dx) LAUNCH(k_tanh_bwd, n, y, dy, dx);
}
