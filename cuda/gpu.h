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

#endif
