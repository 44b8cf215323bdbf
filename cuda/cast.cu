// cast.cu: fp32 <-> bf16 / fp16 conversions (round to nearest even, NaN kept) on a Backend's
// compute stream, for bf16 copies of weights or activations and for checkpoints in half
// precision. Half values are passed as their raw 16-bit patterns (uint16_t) so host C code
// needs no CUDA types.
//   bf16(x) = upper 16 bits of x rounded to nearest even ;  f32(b) = b << 16
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/gpu_internal.h"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void k_f32_bf16(size_t n, const float *x, uint16_t *y) {
    GRID_STRIDE(i, n) y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
}
__global__ void k_bf16_f32(size_t n, const uint16_t *x, float *y) {
    GRID_STRIDE(i, n) y[i] = __bfloat162float(__ushort_as_bfloat16(x[i]));
}
__global__ void k_f32_f16(size_t n, const float *x, uint16_t *y) {
    GRID_STRIDE(i, n) y[i] = __half_as_ushort(__float2half_rn(x[i]));
}
__global__ void k_f16_f32(size_t n, const uint16_t *x, float *y) {
    GRID_STRIDE(i, n) y[i] = __half2float(__ushort_as_half(x[i]));
}

#define LAUNCH(g, kern, n, ...)                                                              \
    do {                                                                                     \
        if (!(n) || gpu_failed(g)) return;                                                   \
        GPU_LAUNCH(kern, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, __VA_ARGS__);       \
        KERNEL_CHECK(g);                                                                     \
    } while (0)

extern "C" void gpu_cast_f32_to_bf16(const Backend *be, const float *x, uint16_t *y, size_t n) {
    LAUNCH((GpuContext *)be->ctx, k_f32_bf16, n, x, y);
}
extern "C" void gpu_cast_bf16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n) {
    LAUNCH((GpuContext *)be->ctx, k_bf16_f32, n, x, y);
}
extern "C" void gpu_cast_f32_to_f16(const Backend *be, const float *x, uint16_t *y, size_t n) {
    LAUNCH((GpuContext *)be->ctx, k_f32_f16, n, x, y);
}
extern "C" void gpu_cast_f16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n) {
    LAUNCH((GpuContext *)be->ctx, k_f16_f32, n, x, y);
}
