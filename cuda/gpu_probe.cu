// gpu_probe.cu: device discovery for a CUDA build. Runtime API only (no -lcuda), so the
// binary starts on a machine with no driver and reports it here.
extern "C" {
#include "cuda/gpu.h"
}
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" int gpu_compiled(void) { return 1; }

extern "C" int gpu_probe(int *n_devices, char *why, size_t why_len) {
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    *n_devices = 0;
    if (rc == cudaErrorInsufficientDriver || rc == cudaErrorNoDevice || (rc == cudaSuccess && n == 0)) {
        snprintf(why, why_len,
                 "no usable GPU on this machine (%s); run on CPU with device: cpu "
                 "(or --set device=cpu)", rc == cudaSuccess ? "0 devices" : cudaGetErrorString(rc));
        return -1;
    }
    if (rc != cudaSuccess) {
        snprintf(why, why_len, "cudaGetDeviceCount failed: %s; run on CPU with device: cpu",
                 cudaGetErrorString(rc));
        return -1;
    }
    *n_devices = n;
    return 0;
}
