/* gpu.h: what the host code may ask of the GPU backend whatever the build.
 * Implemented by cuda/gpu_none.c (no CUDA) or the CUDA sources in cuda/. */
#ifndef VQA_GPU_H
#define VQA_GPU_H

#include <stddef.h>

/* 1 if the CUDA backend was compiled in. */
int gpu_compiled(void);
/* Counts usable GPUs. Returns 0 and sets *n_devices >= 1 when at least one is usable;
 * otherwise returns -1 with a human sentence in why (no driver, no device, not built). */
int gpu_probe(int *n_devices, char *why, size_t why_len);

/* Host memory for the loader's batch slots: page-locked (cudaHostAlloc) when the CUDA
 * backend is built and a driver answers, so batch uploads run asynchronously at full PCIe
 * speed; plain 64-byte aligned host memory otherwise (CPU builds, no GPU). Either way
 * ordinary host memory to the caller; free it with gpu_pinned_free. NULL: out of memory. */
void *gpu_pinned_alloc(size_t bytes);
void gpu_pinned_free(void *p);
/* 1 if p (from gpu_pinned_alloc) is page-locked. */
int gpu_pinned_is_locked(const void *p);

#endif
