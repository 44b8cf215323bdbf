/* check.h: check macros for every CUDA / cuBLAS / cuDNN / NCCL call of the backend. Each
 * takes the GpuContext (gpu_internal.h) whose sticky error records a failure:
 *
 *   if (CUDA_CHECK(g, cudaMemcpyAsync(...))) return;      (0 = success, -1 = failed)
 *
 * A failure is recorded in g's sticky error with file:line, the call's text and the
 * library's own error string (the Backend's error entry reads it). Library code never
 * exits. KERNEL_CHECK(g) after each launch catches launch errors (bad configuration);
 * errors inside a kernel surface at the next synchronizing call. Includable from C and CUDA. */
#ifndef VQA_CUDA_CHECK_H
#define VQA_CUDA_CHECK_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct GpuContext GpuContext;

/* Records the first failure in g (later ones are dropped: the first is the cause). */
void gpu_record_error(GpuContext *g, const char *file, int line, const char *call, const char *lib,
                      const char *msg);
/* 1 while g has a failure recorded: ops return early (their inputs may be garbage). */
int gpu_failed(const GpuContext *g);

static inline int gpu_check_cuda_(GpuContext *g, cudaError_t rc, const char *f, int l, const char *call) {
    if (rc == cudaSuccess) return 0;
    gpu_record_error(g, f, l, call, "CUDA", cudaGetErrorString(rc));
    return -1;
}
static inline int gpu_check_cublas_(GpuContext *g, cublasStatus_t rc, const char *f, int l, const char *call) {
    if (rc == CUBLAS_STATUS_SUCCESS) return 0;
    gpu_record_error(g, f, l, call, "cuBLAS", cublasGetStatusString(rc));
    return -1;
}
static inline int gpu_check_cudnn_(GpuContext *g, cudnnStatus_t rc, const char *f, int l, const char *call) {
    if (rc == CUDNN_STATUS_SUCCESS) return 0;
    gpu_record_error(g, f, l, call, "cuDNN", cudnnGetErrorString(rc));
    return -1;
}

#define CUDA_CHECK(g, call) gpu_check_cuda_((g), (call), __FILE__, __LINE__, #call)
#define CUBLAS_CHECK(g, call) gpu_check_cublas_((g), (call), __FILE__, __LINE__, #call)
#define CUDNN_CHECK(g, call) gpu_check_cudnn_((g), (call), __FILE__, __LINE__, #call)
#define KERNEL_CHECK(g) gpu_check_cuda_((g), cudaGetLastError(), __FILE__, __LINE__, "kernel launch")

/* NCCL (comm/ includes nccl.h before this header when it uses it). */
#ifdef NCCL_MAJOR
static inline int gpu_check_nccl_(GpuContext *g, ncclResult_t rc, const char *f, int l, const char *call) {
    if (rc == ncclSuccess) return 0;
    gpu_record_error(g, f, l, call, "NCCL", ncclGetErrorString(rc));
    return -1;
}
#define NCCL_CHECK(g, call) gpu_check_nccl_((g), (call), __FILE__, __LINE__, #call)
#endif

#ifdef __cplusplus
}
#endif

#endif
