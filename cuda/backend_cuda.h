/* backend_cuda.h: the CUDA backend's public C API: creating a CUDA Backend (ops/backend.h),
 * its device-memory statistics and the pieces a training step needs besides the table
 * (pinned host memory, casts, the compute stream for NCCL).
 *
 * Declared in every build: a build without CUDA links cuda/gpu_none.c, whose
 * backend_cuda_create() fails with "built without the CUDA backend", so callers need no #ifdef.
 *
 * A CUDA Backend drives one GPU through one compute stream. Its context (be->ctx: the
 * streams, the cuBLAS/cuDNN handles, the convolution-algorithm cache, scratch and the sticky
 * error) belongs to that Backend alone; nothing in cuda/ is global. All pointers given to the
 * table are device pointers; work is queued on the stream and runs asynchronously, except
 * the entries that return a host value (losses, norms) or copy to the host (copy_d2h), which
 * wait for it. Errors: a failing CUDA/cuBLAS/cuDNN call is kept as the Backend's sticky error
 * and later entries do nothing; be->error() reports and clears it. */
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

typedef struct GpuOptions {
    int device;             /* CUDA device ordinal (the local rank on a multi-GPU node) */
    /* What the matrix products (GEMM, linear, attention, convolution) compute in: DT_F32
     * (TF32 only if allow_tf32), DT_BF16 or DT_F16 (half operands, fp32 accumulation; train
     * fp16 with the dynamic loss scaler). Parameters, gradients, optimizer moments and the
     * text side's activations stay fp32; the image encoder's activation format is the
     * model's choice (resnet_set_format). Becomes be->precision. */
    DType precision;
    int allow_tf32;         /* fp32 mode: allow TF32 tensor cores (OFF for parity tests) */
    size_t conv_ws_limit;   /* largest cuDNN workspace per convolution, bytes (0: 512 MiB) */
} GpuOptions;

void gpu_options_default(GpuOptions *o); /* device 0, DT_F32, no TF32, 512 MiB */
/* Probes the GPU (gpu_probe), selects the device, creates the streams, handles and caches of
 * a new Backend. NULL with a sentence in e when there is no usable GPU. Buffers of one CUDA
 * Backend may be used by another on the same device once its work is synchronized. */
const Backend *backend_cuda_create(const GpuOptions *o, Err *e);
/* Waits for the Backend's work and releases its context; NULL allowed. Memory obtained
 * through its alloc entry must have been freed before (the arena's too). */
void backend_cuda_destroy(const Backend *be);
/* "NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90, 132 SMs" into buf ("no GPU" for NULL). */
void gpu_describe(const Backend *be, char *buf, size_t n);
/* Bytes of device memory in use on the Backend's device (cudaMemGetInfo: the whole
 * process), and the peak the Backend has seen since creation (what the benchmark reports). */
size_t gpu_mem_in_use(const Backend *be);
size_t gpu_mem_peak(const Backend *be);
/* Restarts the peak at the memory in use now (a benchmark measuring one configuration
 * after another in the same process). */
void gpu_mem_peak_reset(const Backend *be);
/* cudaMalloc calls the Backend has made since creation (the alloc entry and scratch
 * growth): the same count before and after a step means the step allocated nothing. */
uint64_t gpu_malloc_count(const Backend *be);

/* Page-locked host memory (cudaHostAlloc) for benchmarks' batches; the loader's slots use
 * gpu_pinned_alloc (cuda/gpu.h), which falls back to plain memory without a GPU. */
void *gpu_host_alloc(size_t bytes);
void gpu_host_free(void *p);
/* The host waits for the copies queued on the copy stream so far (copy_h2d_async). */
void gpu_copy_wait(const Backend *be);
/* The compute stream (a cudaStream_t) for comm_set_stream (NCCL). */
void *gpu_compute_stream(const Backend *be);

/* ---- casts on the compute stream (round to nearest even; NaN stays NaN) ---- */
void gpu_cast_f32_to_bf16(const Backend *be, const float *x, uint16_t *y, size_t n);
void gpu_cast_bf16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n);
void gpu_cast_f32_to_f16(const Backend *be, const float *x, uint16_t *y, size_t n);
void gpu_cast_f16_to_f32(const Backend *be, const uint16_t *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

#endif
