/* backend_cuda.h: the CUDA backend's public C API: start-up, the Backend table, and the
 * GPU-side pieces of a training step as plain functions (the optimizer's element kernels,
 * which are also table entries; casts, pinned host memory, the device arena).
 *
 * Declared in every build: a build without CUDA links cuda/gpu_none.c, whose
 * backend_cuda_init() fails with "built without the CUDA backend", so callers need no #ifdef.
 *
 * One process drives one GPU through one compute stream. Because Backend entries carry no
 * context argument (they have the op_* signatures), the stream, the cuBLAS/cuDNN handles,
 * the convolution-algorithm cache and the sticky error live in ONE per-process context
 * created by backend_cuda_init() and destroyed by backend_cuda_shutdown() (the tree's only
 * mutable global, forced by the table's shape). All pointers given to the table are device
 * pointers; work is queued on the stream and runs asynchronously, except the entries that
 * return a host value (losses) or copy to the host (copy_d2h), which wait for it.
 *
 * Errors: ops return void, so a failing CUDA/cuBLAS/cuDNN call records the FIRST failure
 * (file:line, the call, the library's own message) in a sticky error and later ops become
 * no-ops; gpu_error() reports and clears it. Check it once per step (and after init). */
#ifndef VQA_BACKEND_CUDA_H
#define VQA_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "ops/backend.h"
#include "ops/tensor.h"
#include "util/err.h"

#ifdef __cplusplus
extern "C" {
#endif


/* What the matrix products (GEMM, linear, attention, convolution) compute in. Parameters,
 * gradients and optimizer moments stay fp32 in memory; activations too, except those the
 * image encoder keeps in an ActFmt through the act entries (cuda/README.md). */
typedef enum GpuPrecision {
    GPU_PREC_FP32 = 0, /* fp32 products (TF32 only if allow_tf32) */
    GPU_PREC_BF16 = 1, /* GEMMs with bf16 operands, fp32 accumulate; convs on tensor cores */
    GPU_PREC_FP16 = 2  /* the same with fp16 operands; train with the dynamic loss scaler */
} GpuPrecision;

typedef struct GpuOptions {
    int device;             /* CUDA device ordinal (the local rank on a multi-GPU node) */
    GpuPrecision precision;
    int allow_tf32;         /* fp32 mode: allow TF32 tensor cores (OFF for parity tests) */
    size_t conv_ws_limit;   /* largest cuDNN workspace per convolution, bytes (0: 512 MiB) */
} GpuOptions;

void gpu_options_default(GpuOptions *o); /* device 0, fp32, no TF32, 512 MiB */
/* Probes the GPU (gpu_probe), selects the device, creates the stream, handles and caches.
 * Calling it again re-creates the context with the new options (buffers from an earlier
 * context stay valid: same device). -1 with a sentence when there is no usable GPU. */
int backend_cuda_init(const GpuOptions *o, Err *e);
void backend_cuda_shutdown(void);
/* The CUDA Backend table; NULL before backend_cuda_init succeeded. */
const Backend *backend_cuda(void);
/* 0 if no CUDA call failed since the last call; else -1, the first failure in e, cleared. */
int gpu_error(Err *e);
/* "NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90" into buf. */
void gpu_describe(char *buf, size_t n);
/* Bytes of device memory in use by this process's allocations through the backend, and the
 * peak since start-up (what the benchmark reports). */
size_t gpu_mem_in_use(void);
size_t gpu_mem_peak(void);
/* Restarts the peak at the memory in use now (a benchmark measuring one configuration
 * after another in the same process). */
void gpu_mem_peak_reset(void);
/* cudaMalloc calls the backend has made since start-up (the alloc entry and scratch growth):
 * the same count before and after a step means the step allocated nothing (tests). */
uint64_t gpu_malloc_count(void);

/* Step arena over device memory: ArenaMem for arena_init_mem() (cudaMalloc'ed blocks,
 * zeroing with cudaMemsetAsync). After the first step sizes it, a step allocates nothing. */
ArenaMem gpu_arena_mem(void);

/* Pinned (page-locked) host memory for the loader's batch slots (Loader allocation hook):
 * H2D copies from it run asynchronously at full PCIe speed. */
void *gpu_host_alloc(size_t bytes);
void gpu_host_free(void *p);
/* Copies on the separate copy stream after the compute work queued so far (dst may be arena
 * memory that work still reads); the compute stream waits for it (an event) before the next
 * op it runs. src must stay unchanged until gpu_copy_wait(). */
void gpu_copy_h2d_async(void *dst, const void *src, size_t bytes);
void gpu_copy_wait(void); /* host waits for the copies queued so far */
/* The compute stream (a cudaStream_t) for comm_set_stream (NCCL), NULL before init. */
void *gpu_compute_stream(void);

/* ---- optimizer element kernels on device buffers (ops.h; the step, its counters, schedule
 * and bias corrections are optim_step's, src/optim/optim.h) ----
 * AdamW over segs (host array of per-segment scalars); params, grads, m, v: device. */
void gpu_adamw_update(float *params, const float *grads, float *m, float *v, const AdamwSegment *segs, int n_segs);
/* sqrt(sum g^2) accumulated in double (waits for the result). */
double gpu_global_norm(const float *g, size_t n);
/* 1 if any g[i] is inf or NaN (waits for the result). */
int gpu_has_nonfinite(const float *g, size_t n);
/* x *= s (gradient clipping, loss-scale unscaling). */
void gpu_scale(float *x, size_t n, float s);

/* ---- casts (round to nearest even; NaN stays NaN) ---- */
void gpu_cast_f32_to_bf16(const float *x, uint16_t *y, size_t n);
void gpu_cast_bf16_to_f32(const uint16_t *x, float *y, size_t n);
void gpu_cast_f32_to_f16(const float *x, uint16_t *y, size_t n);
void gpu_cast_f16_to_f32(const uint16_t *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

#endif
