// emu_kernel.h: the device-side vocabulary of CUDA for a .cu file compiled as host C++
// (-DVQA_CUDA=EMULATE force-includes this header before the file's own includes).
//
// A launch (GPU_LAUNCH in cuda/launch.h) queues the kernel on its stream; when the stream
// runs, every block runs on the host, one block after another (in a shuffled order), and
// the threads of a block run as cooperative fibers (fiber.cc): a thread runs until it
// reaches a barrier (__syncthreads, a warp operation) or returns, and the order in which
// threads run between barriers is shuffled per launch from a seed (VQA_EMU_SEED). What a
// GPU would not tell you is an error that aborts with the kernel, block, thread and line:
// a __syncthreads that only part of the block reaches, threads of one block waiting at
// different barriers, a warp operation whose mask names lanes that exited, wait elsewhere
// or do not exist. Shared memory: a __shared__ variable is one static object, which is
// per block because blocks run one at a time on one host thread; with the address
// sanitizer (the emulated build's default) an index outside it is reported, as is any
// access outside a cudaMalloc block.
#ifndef VQA_EMU_KERNEL_H
#define VQA_EMU_KERNEL_H

#ifndef __cplusplus
#error "emu_kernel.h is for .cu files compiled as C++"
#endif

// The qualifiers, defined before the CUDA headers (which keep a definition they find).
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __constant__ static
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- the built-in variables of the running thread ----
struct EmuThreadCtx {
    uint3 tid, bid;
    dim3 bdim, gdim;
};
extern thread_local const EmuThreadCtx *emu_ctx_;
#define threadIdx (emu_ctx_->tid)
#define blockIdx (emu_ctx_->bid)
#define blockDim (emu_ctx_->bdim)
#define gridDim (emu_ctx_->gdim)
#define warpSize 32

// ---- barriers and warp operations (fiber.cc) ----
void emu_syncthreads(const char *file, int line);
void emu_syncwarp(const char *file, int line, unsigned mask = 0xffffffffu);
// Warp exchange: every lane of mask deposits `bytes` (<= 8) of v, waits for the others,
// and reads lane src's deposit into out (src outside the mask or the warp: its own value).
enum EmuShfl { EMU_SHFL_IDX, EMU_SHFL_UP, EMU_SHFL_DOWN, EMU_SHFL_XOR };
void emu_warp_exchange(const char *file, int line, unsigned mask, int kind, int arg, int width, const void *v,
                       void *out, size_t bytes);
unsigned emu_warp_ballot(const char *file, int line, unsigned mask, int pred);
// The block's dynamic shared memory (the launch's smem bytes).
void *emu_dynamic_shared(void);

template <typename T>
inline T emu_shfl(const char *file, int line, int kind, unsigned mask, T v, int arg, int width = 32) {
    static_assert(sizeof(T) <= 8, "warp shuffle of a type wider than 8 bytes");
    T out;
    emu_warp_exchange(file, line, mask, kind, arg, width, &v, &out, sizeof v);
    return out;
}

#define __syncthreads() emu_syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) emu_syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(mask, v, src, ...) emu_shfl(__FILE__, __LINE__, EMU_SHFL_IDX, mask, v, src, ##__VA_ARGS__)
#define __shfl_up_sync(mask, v, d, ...) emu_shfl(__FILE__, __LINE__, EMU_SHFL_UP, mask, v, d, ##__VA_ARGS__)
#define __shfl_down_sync(mask, v, d, ...) emu_shfl(__FILE__, __LINE__, EMU_SHFL_DOWN, mask, v, d, ##__VA_ARGS__)
#define __shfl_xor_sync(mask, v, m, ...) emu_shfl(__FILE__, __LINE__, EMU_SHFL_XOR, mask, v, m, ##__VA_ARGS__)
#define __ballot_sync(mask, p) emu_warp_ballot(__FILE__, __LINE__, mask, (p) != 0)
#define __any_sync(mask, p) (emu_warp_ballot(__FILE__, __LINE__, mask, (p) != 0) != 0u)
#define __all_sync(mask, p) (emu_warp_ballot(__FILE__, __LINE__, mask, (p) != 0) == (unsigned)(mask))
#define __activemask() 0xffffffffu

// ---- atomics: fibers of one host thread never interleave inside a call, so a plain
// read-modify-write is atomic here ----
template <typename T> inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> inline T atomicSub(T *p, T v) {
    T old = *p;
    *p = old - v;
    return old;
}
template <typename T> inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <typename T> inline T atomicMin(T *p, T v) {
    T old = *p;
    if (v < old) *p = v;
    return old;
}
template <typename T> inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}
template <typename T> inline T atomicCAS(T *p, T cmp, T v) {
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}
template <typename T> inline T atomicOr(T *p, T v) {
    T old = *p;
    *p = old | v;
    return old;
}

// ---- math intrinsics without a host definition (fast variants: the exact function) ----
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
template <typename T> inline T __ldg(const T *p) { return *p; }

// ---- launches ----
namespace emu {
// Checks the configuration (CUDA's limits; an error is the runtime's last error, as a real
// launch), then queues body on the stream: run once per thread of the grid.
void launch(const char *name, const char *file, int line, dim3 grid, dim3 block, size_t smem, cudaStream_t st,
            std::function<void()> body);
} // namespace emu

// The arguments are converted to the kernel's parameter types and copied at the launch, as
// CUDA does; each thread gets its own copy of the parameters.
template <typename... P, typename... A>
inline void emu_launch(const char *name, const char *file, int line, void (*kern)(P...), dim3 grid, dim3 block,
                       size_t smem, cudaStream_t st, A &&...a) {
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    emu::launch(name, file, line, grid, block, smem, st, [kern, args]() { std::apply(kern, args); });
}

#endif
