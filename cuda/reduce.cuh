// reduce.cuh: warp and block reductions shared by the kernels of cuda/ (device code only).
// Sums are in double where the CPU reference sums in double, so the two agree to rounding.
#ifndef VQA_CUDA_REDUCE_CUH
#define VQA_CUDA_REDUCE_CUH

#include <cuda_runtime.h>

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, <= 1024); every thread gets it.
template <typename T> __device__ T block_sum(T v) {
    __shared__ T part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // part[] may still be read by an earlier call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    T s = lane < nw ? part[lane] : T(0);
    return warp_sum(s);
}

#endif
