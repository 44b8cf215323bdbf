/* gpu_internal.h: what the files of cuda/ share: the per-process context (stream, handles,
 * caches, scratch) and the launcher functions that fill the Backend table. Not for use
 * outside cuda/ (the public API is backend_cuda.h). Includable from C and CUDA. */
#ifndef VQA_GPU_INTERNAL_H
#define VQA_GPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/backend_cuda.h"
#include "cuda/check.h"
#include "cuda/launch.h"
#include "ops/desc_cache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct GpuContext {
    int ready;
    GpuOptions opt;
    cudaStream_t stream;      /* all compute */
    cudaStream_t copy_stream; /* H2D of batches */
    cudaEvent_t copy_done;
    cudaEvent_t compute_mark; /* the copy stream waits for the compute work queued before it */
    int copy_pending;         /* the compute stream must wait for copy_done */
    cublasHandle_t cublas;
    cudnnHandle_t cudnn;
    DescCache conv_cache;     /* per-shape cuDNN algorithm choices (conv_cudnn.c) */
    void *scratch;            /* device scratch for reductions; grows, never shrinks */
    size_t scratch_bytes;
    void *host_scratch;       /* pinned host buffer for small results (HOST_SCRATCH bytes) */
    size_t mem_in_use, mem_peak;
    uint64_t n_mallocs;       /* cudaMalloc calls (alloc entry + scratch growth): gpu_malloc_count */
    int has_err;
    char err[1024];
} GpuContext;

#define HOST_SCRATCH ((size_t)1 << 20)

GpuContext *gpu_ctx(void);
/* The compute stream (after making it wait for pending batch copies). */
cudaStream_t gpu_stream(void);
/* Device scratch of at least `bytes` (grows with cudaMalloc on first use of a size: a
 * synchronizing call, but only while the first step sizes things). NULL on failure. */
void *gpu_scratch(size_t bytes);
/* cuBLAS compute type for the current precision. */
cublasComputeType_t gpu_gemm_compute(void);

/* GPU_THREADS, gpu_blocks and the other launch configurations: cuda/launch.h (host
 * arithmetic, unit-tested on CPU by tests/test_gpu_launch.c). */

/* ---- row-major GEMMs on the stream (gemm_cublas.c) ---- */
void cu_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* batch of GEMMs whose operands are `stride*` floats apart */
void cu_gemm_strided(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     long long strideA, const float *B, int ldb, long long strideB, float beta, float *C,
                     int ldc, long long strideC, int batch);

/* ---- the Backend entries (one file per op family) ---- */
size_t cu_conv2d_workspace(const ConvShape *s);
void cu_conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y, float *ws);
void cu_conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db, float *ws);

void cu_batchnorm_forward_train(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                                float momentum, float eps, float *running_mean, float *running_var, float *y,
                                float *save_mean, float *save_rstd);
void cu_batchnorm_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, const float *dy, float *dx,
                                 float *dgamma, float *dbeta);
void cu_batchnorm_forward_eval(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, float eps, float *y);
void cu_batchnorm_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var, float eps, const float *dy,
                                float *dx, float *dgamma, float *dbeta);

void cu_relu_forward(size_t n, const float *x, float *y);
void cu_relu_backward(size_t n, const float *y, const float *dy, float *dx);
void cu_gelu_forward(size_t n, const float *x, float *y);
void cu_gelu_backward(size_t n, const float *x, const float *dy, float *dx);
void cu_tanh_forward(size_t n, const float *x, float *y);
void cu_tanh_backward(size_t n, const float *y, const float *dy, float *dx);
void cu_add_forward(size_t n, const float *a, const float *b, float *y);
void cu_add_backward(size_t n, const float *dy, float *da, float *db);
void cu_mul_forward(size_t n, const float *a, const float *b, float *y);
void cu_mul_backward(size_t n, const float *a, const float *b, const float *dy, float *da, float *db);
void cu_concat_forward(int N, int Da, int Db, const float *a, const float *b, float *y);
void cu_concat_backward(int N, int Da, int Db, const float *dy, float *da, float *db);

void cu_maxpool_forward(const PoolShape *s, const float *x, float *y, int32_t *argmax);
void cu_maxpool_backward(const PoolShape *s, const int32_t *argmax, const float *dy, float *dx);
void cu_avgpool_global_forward(int N, int C, int HW, const float *x, float *y);
void cu_avgpool_global_backward(int N, int C, int HW, const float *dy, float *dx);

void cu_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b, float *y);
void cu_linear_backward(int N, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db);

void cu_embedding_forward(int N, int V, int D, const int32_t *ids, const float *table, float *y);
void cu_embedding_backward(int N, int V, int D, const int32_t *ids, int padding_idx, const float *dy,
                           float *dtable);

void cu_layernorm_forward(int N, int D, const float *x, const float *w, const float *b, float eps, float *y,
                          float *mean, float *rstd);
void cu_layernorm_backward(int N, int D, const float *x, const float *w, const float *mean, const float *rstd,
                           const float *dy, float *dx, float *dw, float *db);

void cu_softmax_forward(int rows, int cols, const float *x, float *y);
void cu_softmax_backward(int rows, int cols, const float *y, const float *dy, float *dx);
/* attention pieces (softmax.cu): rows of L scores per (b, h, i) */
void cu_attn_softmax_dropout(int B, int nh, int L, const float *key_mask, float p, uint64_t seed, float *P,
                             float *Pd, uint8_t *keep);
void cu_attn_dropped_probs(size_t n, float p, const float *P, const uint8_t *keep, float *Pd);
void cu_attn_softmax_backward(int rows, int L, float p, const float *P, const uint8_t *keep, float *dP,
                              float *dS);

void cu_dropout_forward(size_t n, float p, uint64_t seed, const float *x, float *y, uint8_t *mask);
void cu_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx);

size_t cu_attention_workspace(int B, int L, int nh, int hd);
void cu_attention_forward(int B, int L, int nh, int hd, const float *q, const float *k, const float *v,
                          const float *key_mask, float p, uint64_t seed, float *probs, uint8_t *drop_mask,
                          float *out, float *ws);
void cu_attention_backward(int B, int L, int nh, int hd, const float *q, const float *k, const float *v,
                           const float *probs, const uint8_t *drop_mask, float p, const float *dout, float *dq,
                           float *dk, float *dv, float *ws);

double cu_bce_logits(int N, int A, const float *logits, const float *targets, float grad_scale, float *dlogits);
double cu_soft_xent(int N, int A, const float *logits, const float *targets, float grad_scale, float *dlogits);

/* ---- act entries: activations in an ActFmt (ops.h), act.cu / conv_cudnn.c /
 * batchnorm_act.cu / pool_act.cu ---- */
void cu_act_import(const ActFmt *f, int N, int C, int HW, const float *x, void *y);
void cu_act_import_add(const ActFmt *f, int N, int C, int HW, const float *x, void *y);
void cu_act_export(const ActFmt *f, int N, int C, int HW, const void *x, float *y);
void cu_act_relu_forward(DType dt, size_t n, const void *x, void *y);
void cu_act_relu_backward(DType dt, size_t n, const void *y, const void *dy, void *dx);
void cu_act_add_forward(DType dt, size_t n, const void *a, const void *b, void *y);
void cu_conv_weight_prep(const ConvShape *s, const float *w, void *wp);
void cu_conv_weight_grad_add(const ConvShape *s, const void *dwp, float *dw);
size_t cu_conv2d_act_workspace(const ConvShape *s);
void cu_conv2d_act_forward(const ConvShape *s, const void *x, const void *wp, void *y, float *ws);
void cu_conv2d_act_backward(const ConvShape *s, const void *x, const void *wp, const void *dy, void *dx, void *dwp,
                            float *ws);
void cu_batchnorm_act_forward_train(const ActFmt *f, int N, int C, int HW, const void *x, const float *gamma,
                                    const float *beta, float momentum, float eps, float *running_mean,
                                    float *running_var, void *y, float *save_mean, float *save_rstd);
void cu_batchnorm_act_backward_train(const ActFmt *f, int N, int C, int HW, const void *x, const float *gamma,
                                     const float *save_mean, const float *save_rstd, const void *dy, void *dx,
                                     float *dgamma, float *dbeta);
void cu_batchnorm_act_forward_eval(const ActFmt *f, int N, int C, int HW, const void *x, const float *gamma,
                                   const float *beta, const float *running_mean, const float *running_var, float eps,
                                   void *y);
void cu_batchnorm_act_backward_eval(const ActFmt *f, int N, int C, int HW, const void *x, const float *gamma,
                                    const float *running_mean, const float *running_var, float eps, const void *dy,
                                    void *dx, float *dgamma, float *dbeta);
void cu_maxpool_act_forward(const PoolShape *s, const void *x, void *y, int32_t *argmax);
void cu_maxpool_act_backward(const PoolShape *s, const int32_t *argmax, const void *dy, void *dx);
void cu_avgpool_act_forward(const ActFmt *f, int N, int C, int HW, const void *x, float *y);
void cu_avgpool_act_backward(const ActFmt *f, int N, int C, int HW, const float *dy, void *dx);

/* small helpers (elementwise.cu) */
void cu_fill_rows(int N, int D, const float *row, float *y); /* y[n, :] = row */
void cu_col_sums_acc(int N, int D, const float *x, float *out); /* out[d] += sum_n x[n, d] (double acc) */

#ifdef __cplusplus
}
#endif

#endif
