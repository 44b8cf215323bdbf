// dropout_hash.cuh: the dropout keep decision of src/ops/ops_internal.h, for host and device,
// bit for bit the same arithmetic, so a GPU mask equals the CPU mask for the same (seed, i):
//   h    = mix64(mix64(seed) + i * 0x9E3779B97F4A7C15)      (mix64 = splitmix64 finalizer)
//   u    = (h >> 40) * 2^-24                                 (uniform in [0, 1), 24 bits)
//   keep = u >= p
#ifndef VQA_CUDA_DROPOUT_HASH_CUH
#define VQA_CUDA_DROPOUT_HASH_CUH

#include <stdint.h>

__host__ __device__ __forceinline__ uint64_t dh_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// seed_mixed = dh_mix64(seed), once per call.
__host__ __device__ __forceinline__ int dh_keep(uint64_t seed_mixed, uint64_t i, float p) {
    uint64_t h = dh_mix64(seed_mixed + i * 0x9E3779B97F4A7C15ull);
    float u = (float)(h >> 40) * (1.0f / 16777216.0f); // exact: 24-bit integer * 2^-24
    return u >= p;
}

#endif
