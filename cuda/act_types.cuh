// act_types.cuh: storage types of activations in an ActFmt (ops.h) for the kernels of
// act.cu, batchnorm_act.cu and pool_act.cu (device code only; ACT_DISPATCH is host code).
//   load:  fp32 value of a stored element (exact for float, bf16 and fp16)
//   store: round to nearest even (__float2bfloat16_rn / __float2half_rn), NaN stays NaN
// All arithmetic between a load and a store is fp32 (sums in double where the CPU op sums in
// double), so a kernel's result equals the CPU reference up to summation order.
// ACT_DISPATCH(g, dt, T, body) runs body with T = float / __nv_bfloat16 / __half.
#ifndef VQA_CUDA_ACT_TYPES_CUH
#define VQA_CUDA_ACT_TYPES_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/gpu_internal.h"

__device__ __forceinline__ float act_ld(float v) { return v; }
__device__ __forceinline__ float act_ld(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float act_ld(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T act_st(float v);
template <> __device__ __forceinline__ float act_st<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 act_st<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half act_st<__half>(float v) { return __float2half_rn(v); }

// The value a store of v would hold, as fp32 (a gradient that accumulates in storage type
// is rounded after every addition, as on the CPU).
template <typename T> __device__ __forceinline__ float act_round(float v) { return act_ld(act_st<T>(v)); }

// Element (n, c, hw) of an [N, C, HW] activation (ops.h act_index).
__device__ __forceinline__ size_t act_at(int nhwc, int C, int HW, size_t n, size_t c, size_t hw) {
    return nhwc ? (n * HW + hw) * C + c : (n * C + c) * HW + hw;
}
// The inverse: (n, c, hw) of flat index i.
__device__ __forceinline__ void act_coords(int nhwc, int C, int HW, size_t i, size_t *n, size_t *c, size_t *hw) {
    if (nhwc) {
        *c = i % C;
        size_t r = i / C;
        *hw = r % HW, *n = r / HW;
    } else {
        *hw = i % HW;
        size_t r = i / HW;
        *c = r % C, *n = r / C;
    }
}

#define ACT_GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// A DType activations are not stored in (anything but F32 / BF16 / F16) is a programming
// error; it becomes g's sticky error instead of silently doing nothing.
#define ACT_DISPATCH(g, dt, T, ...)                                                                       \
    do {                                                                                                  \
        switch (dt) {                                                                                     \
        case DT_F32: { typedef float T; __VA_ARGS__; } break;                                            \
        case DT_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; } break;                                   \
        case DT_F16: { typedef __half T; __VA_ARGS__; } break;                                           \
        default: gpu_record_error((g), __FILE__, __LINE__, "act dispatch", "vqa",                         \
                                  "activation dtype is not F32, BF16 or F16");                            \
        }                                                                                                 \
    } while (0)

#endif
