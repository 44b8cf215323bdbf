// emu_internal.h: what the files of the CUDA emulation (tests/emu/) share: the one lock,
// fatal errors, the device-memory registry and the deferred streams.
//
// The emulation is a test tool: the real CUDA, cuBLAS, cuDNN and NCCL headers declare the
// API (so the backend compiles against the true signatures), and these files define it on
// the host. Device memory is host memory from a registry; work queued on a stream is kept
// and runs only when something waits on it (a stream / event / device synchronize, a
// blocking copy), so a missing wait shows as wrong data.
#ifndef VQA_EMU_INTERNAL_H
#define VQA_EMU_INTERNAL_H

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>

namespace emu {

// Every API entry holds this lock; queued work (kernels included) runs under it.
std::recursive_mutex &lock();

// A misuse that real hardware answers with a crash or undefined behaviour (a kernel fault, a
// divergent barrier, a pointer outside every allocation): prints "vqa emu: ..." and aborts.
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// The last-error slot of the runtime (cudaGetLastError / cudaPeekAtLastError).
void set_last_error(cudaError_t e);

// ---- device memory ----
// 1 when [p, p + bytes) lies inside one live cudaMalloc block (bytes 0: p inside or at its end).
bool is_device(const void *p, size_t bytes);
// 1 when [p, p + bytes) lies inside one live cudaHostAlloc block.
bool is_pinned(const void *p, size_t bytes);
// Aborts with `what` (the API call and argument) unless [p, p + bytes) is device memory.
void check_device(const void *p, size_t bytes, const char *what);

// ---- streams ----
// The handle of the legacy default stream is 0 (cudaStreamLegacy / cudaStreamPerThread map
// to it). stream_ok: the handle is 0 or a live stream of this process.
bool stream_ok(cudaStream_t s);
// Queues fn on s; it runs, in order with the stream's other work, when something waits.
void enqueue(cudaStream_t s, const char *what, std::function<void()> fn);
// Runs s's queued work (including the work of other streams it waits on).
void run_stream(cudaStream_t s);
// Runs every stream's queued work (cudaDeviceSynchronize).
void run_all();

} // namespace emu

#endif
