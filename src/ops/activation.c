/* activation.c: point-wise activations, forward and backward side by side:
 * ReLU, GELU (erf form, as torch.nn.functional.gelu with approximate='none') and tanh.
 * All tensors are flat [n]; backward ACCUMULATES into dx (ops.h). Parallel over elements. */
#include <math.h>

#include "ops/ops.h"

/* Below this many elements a parallel region costs more than it saves. */
#define ACT_PAR_MIN 16384

/* y = max(x, 0)                       (in place allowed: y may equal x)
 * dx += dy * [y > 0]                  (uses the output, so in-place forward is fine)
 * `simd`: GCC's -O2 leaves these loops scalar, and the backward's branch on the sign of y
 * mispredicts on real activations (~10% of the demo's training step, perf); the vector
 * select gives the same bits (a select and one add per element, nothing reassociated). */
void op_relu_forward(size_t n, const float *x, float *y) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void op_relu_backward(size_t n, const float *y, const float *dy, float *dx) {
    if (!dx) return;
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i]; /* loaded unconditionally, so the select can be a vector blend */
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}

/* y = 0.5 * x * (1 + erf(x / sqrt(2)))
 * dy/dx = Phi(x) + x * phi(x) = 0.5 * (1 + erf(x / sqrt(2))) + x * exp(-x^2 / 2) / sqrt(2 pi)
 * dx += dy * dy/dx                     (needs the input x, not y) */
void op_gelu_forward(size_t n, const float *x, float *y) {
    const float inv_sqrt2 = 0.70710678118654752f;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * inv_sqrt2));
    }
}

void op_gelu_backward(size_t n, const float *x, const float *dy, float *dx) {
    if (!dx) return;
    const float inv_sqrt2 = 0.70710678118654752f;
    const float inv_sqrt_2pi = 0.39894228040143268f;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * inv_sqrt2));
        float pdf = inv_sqrt_2pi * expf(-0.5f * v * v);
        dx[i] += dy[i] * (cdf + v * pdf);
    }
}

/* y = tanh(x)
 * dx += dy * (1 - y^2)                 (uses the output) */
void op_tanh_forward(size_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void op_tanh_backward(size_t n, const float *y, const float *dy, float *dx) {
    if (!dx) return;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}
