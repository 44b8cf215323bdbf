/* check.h: check macros for every CUDA / cuBLAS / cuDNN / NCCL call of the backend.
 *
 *   if (CUDA_CHECK(cudaMemcpyAsync(...))) return;      (0 = success, -1 = failed)
 *
 * A failure is recorded in the context's sticky error with file:line, the call's text and
 * the library's own error string (gpu_error() in backend_cuda.h reads it). Library code
 * never exits. KERNEL_CHECK() after each launch catches launch errors (bad configuration);
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

/* Records the first failure (later ones are dropped: the first is the cause). */
void gpu_record_error(const char *file, int line, const char *call, const char *lib, const char *msg);
/* 1 while a failure is recorded: ops return early (their inputs may be garbage). */
int gpu_failed(void);

static inline int gpu_check_cuda_(cudaError_t rc, const char *f, int l, const char *call) {
    if (rc == cudaSuccess) return 0;
    gpu_record_error(f, l, call, "CUDA", cudaGetErrorString(rc));
    return -1;
}
static inline int gpu_check_cublas_(cublasStatus_t rc, const char *f, int l, const char *call) {
    if (rc == CUBLAS_STATUS_SUCCESS) return 0;
    gpu_record_error(f, l, call, "cuBLAS", cublasGetStatusString(rc));
    return -1;
}
static inline int gpu_check_cudnn_(cudnnStatus_t rc, const char *f, int l, const char *call) {
    if (rc == CUDNN_STATUS_SUCCESS) return 0;
    gpu_record_error(f, l, call, "cuDNN", cudnnGetErrorString(rc));
    return -1;
}

#define CUDA_CHECK(call) gpu_check_cuda_((call), __FILE__, __LINE__, #call)
#define CUBLAS_CHECK(call) gpu_check_cublas_((call), __FILE__, __LINE__, #call)
#define CUDNN_CHECK(call) gpu_check_cudnn_((call), __FILE__, __LINE__, #call)
#define KERNEL_CHECK() gpu_check_cuda_(cudaGetLastError(), __FILE__, __LINE__, "kernel launch")

/* NCCL (comm/ includes nccl.h before this header when it uses it). */
#ifdef NCCL_MAJOR
static inline int gpu_check_nccl_(ncclResult_t rc, const char *f, int l, const char *call) {
    if (rc == ncclSuccess) return 0;
    gpu_record_error(f, l, call, "NCCL", ncclGetErrorString(rc));
    return -1;
}
#define NCCL_CHECK(call) gpu_check_nccl_((call), __FILE__, __LINE__, #call)
#endif

#ifdef __cplusplus
}
#endif

#endif
