/* gpu_internal.h: what the files of cuda/ share: the context of a CUDA Backend (streams,
 * handles, caches, scratch, sticky error), the helpers that work on a context, and the
 * functions that fill the Backend table (gpu_context.c). Each entry takes its Backend and
 * works on be->ctx; nothing in cuda/ is global. Not for use outside cuda/ (the public API
 * is backend_cuda.h). Includable from C and CUDA. */
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

/* A CUDA Backend's context (be->ctx): created by backend_cuda_create, in the same
 * allocation as the Backend table it belongs to; every entry starts from it. */
struct GpuContext {
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
};

#define HOST_SCRATCH ((size_t)1 << 20)

/* g's compute stream (after making it wait for pending batch copies). */
cudaStream_t gpu_stream(GpuContext *g);
/* Device scratch of at least `bytes` (grows with cudaMalloc on first use of a size: a
 * synchronizing call, but only while the first step sizes things). NULL on failure. */
void *gpu_scratch(GpuContext *g, size_t bytes);
/* cuBLAS compute type for g's precision. */
cublasComputeType_t gpu_gemm_compute(const GpuContext *g);

/* GPU_THREADS, gpu_blocks and the other launch configurations: cuda/launch.h (host
 * arithmetic, unit-tested on CPU by tests/test_gpu_launch.c). */

/* ---- helpers on a context ---- */

/* row-major GEMMs on the stream (gemm_cublas.c) */
void cu_gemm(GpuContext *g, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* batch of GEMMs whose operands are `stride*` floats apart */
void cu_gemm_strided(GpuContext *g, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int lda, long long strideA, const float *B, int ldb, long long strideB, float beta, float *C,
                     int ldc, long long strideC, int batch);

/* ReLU and add in a half storage type (act.cu; the fp32 ones are activation.cu's and
 * elementwise.cu's plain kernels) */
void cu_act_relu_forward(GpuContext *g, DType dt, size_t n, const void *x, void *y);
void cu_act_relu_backward(GpuContext *g, DType dt, size_t n, const void *y, const void *dy, void *dx);
void cu_act_add_forward(GpuContext *g, DType dt, size_t n, const void *a, const void *b, void *y);

/* attention pieces (softmax.cu): rows of L scores per (b, h, i) */
void cu_attn_softmax_dropout(GpuContext *g, int B, int nh, int L, const float *key_mask, float p, uint64_t seed,
                             float *P, float *Pd, uint8_t *keep);
void cu_attn_dropped_probs(GpuContext *g, size_t n, float p, const float *P, const uint8_t *keep, float *Pd);
void cu_attn_softmax_backward(GpuContext *g, int rows, int L, float p, const float *P, const uint8_t *keep,
                              float *dP, float *dS);

/* linear layer pieces (elementwise.cu) */
void cu_fill_rows(GpuContext *g, int N, int D, const float *row, float *y); /* y[n, :] = row */
/* out[d] += sum_n x[n, d] (double acc) */
void cu_col_sums_acc(GpuContext *g, int N, int D, const float *x, float *out);

/* ---- the Backend entries (one file per op family; ops/backend.h says what each does) ---- */

/* gemm_cublas.c */
void cu_gemm_entry(const Backend *be, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
void cu_linear_forward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *b,
                       float *y);
void cu_linear_backward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db);

/* conv_cudnn.c */
size_t cu_conv2d_workspace(const Backend *be, const ConvShape *s);
void cu_conv2d_forward(const Backend *be, const ConvShape *s, const void *x, const void *w, const float *b, void *y,
                       float *ws);
void cu_conv2d_backward(const Backend *be, const ConvShape *s, const void *x, const void *w, const void *dy,
                        void *dx, void *dw, float *db, float *ws);

/* act.cu */
void cu_conv_weight_prep(const Backend *be, const ConvShape *s, const float *w, void *wp);
void cu_conv_weight_grad_add(const Backend *be, const ConvShape *s, const void *dwp, float *dw);
void cu_act_import(const Backend *be, const ActDesc *d, const float *x, void *y);
void cu_act_import_add(const Backend *be, const ActDesc *d, const float *x, void *y);
void cu_act_export(const Backend *be, const ActDesc *d, const void *x, float *y);

/* batchnorm_act.cu */
void cu_batchnorm_forward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                const float *beta, float momentum, float eps, float *running_mean,
                                float *running_var, void *y, float *save_mean, float *save_rstd);
void cu_batchnorm_backward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, const void *dy, void *dx,
                                 float *dgamma, float *dbeta);
void cu_batchnorm_forward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, float eps,
                               void *y);
void cu_batchnorm_backward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                const float *running_mean, const float *running_var, float eps, const void *dy,
                                void *dx, float *dgamma, float *dbeta);

/* activation.cu */
void cu_relu_forward(const Backend *be, DType dt, size_t n, const void *x, void *y);
void cu_relu_backward(const Backend *be, DType dt, size_t n, const void *y, const void *dy, void *dx);
void cu_gelu_forward(const Backend *be, size_t n, const float *x, float *y);
void cu_gelu_backward(const Backend *be, size_t n, const float *x, const float *dy, float *dx);
void cu_tanh_forward(const Backend *be, size_t n, const float *x, float *y);
void cu_tanh_backward(const Backend *be, size_t n, const float *y, const float *dy, float *dx);

/* elementwise.cu */
void cu_add_forward(const Backend *be, DType dt, size_t n, const void *a, const void *b, void *y);
void cu_add_backward(const Backend *be, size_t n, const float *dy, float *da, float *db);
void cu_mul_forward(const Backend *be, size_t n, const float *a, const float *b, float *y);
void cu_mul_backward(const Backend *be, size_t n, const float *a, const float *b, const float *dy, float *da,
                     float *db);
void cu_concat_forward(const Backend *be, int N, int Da, int Db, const float *a, const float *b, float *y);
void cu_concat_backward(const Backend *be, int N, int Da, int Db, const float *dy, float *da, float *db);

/* pool_act.cu */
void cu_maxpool_forward(const Backend *be, const PoolShape *s, const void *x, void *y, int32_t *argmax);
void cu_maxpool_backward(const Backend *be, const PoolShape *s, const int32_t *argmax, const void *dy, void *dx);
void cu_avgpool_forward(const Backend *be, const ActDesc *d, const void *x, float *y);
void cu_avgpool_backward(const Backend *be, const ActDesc *d, const float *dy, void *dx);

/* embedding.cu */
void cu_embedding_forward(const Backend *be, int N, int V, int D, const int32_t *ids, const float *table, float *y);
void cu_embedding_backward(const Backend *be, int N, int V, int D, const int32_t *ids, int padding_idx,
                           const float *dy, float *dtable);

/* layernorm.cu */
void cu_layernorm_forward(const Backend *be, int N, int D, const float *x, const float *w, const float *b,
                          float eps, float *y, float *mean, float *rstd);
void cu_layernorm_backward(const Backend *be, int N, int D, const float *x, const float *w, const float *mean,
                           const float *rstd, const float *dy, float *dx, float *dw, float *db);

/* softmax.cu */
void cu_softmax_forward(const Backend *be, int rows, int cols, const float *x, float *y);
void cu_softmax_backward(const Backend *be, int rows, int cols, const float *y, const float *dy, float *dx);

/* dropout.cu */
void cu_dropout_forward(const Backend *be, size_t n, float p, uint64_t seed, const float *x, float *y,
                        uint8_t *mask);
void cu_dropout_backward(const Backend *be, size_t n, float p, const uint8_t *mask, const float *dy, float *dx);

/* attention_cuda.c */
size_t cu_attention_workspace(const Backend *be, int B, int L, int nh, int hd);
void cu_attention_forward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k,
                          const float *v, const float *key_mask, float p, uint64_t seed, float *probs,
                          uint8_t *drop_mask, float *out, float *ws);
void cu_attention_backward(const Backend *be, int B, int L, int nh, int hd, const float *q, const float *k,
                           const float *v, const float *probs, const uint8_t *drop_mask, float p, const float *dout,
                           float *dq, float *dk, float *dv, float *ws);

/* loss.cu */
double cu_bce_logits(const Backend *be, int N, int A, const float *logits, const float *targets, float grad_scale,
                     float *dlogits);
double cu_soft_xent(const Backend *be, int N, int A, const float *logits, const float *targets, float grad_scale,
                    float *dlogits);

/* optim.cu */
void cu_adamw_update(const Backend *be, float *params, const float *grads, float *m, float *v,
                     const AdamwSegment *segs, int n_segs);
double cu_global_norm(const Backend *be, const float *grad, size_t n);
int cu_has_nonfinite(const Backend *be, const float *grad, size_t n);
void cu_scale(const Backend *be, float *x, size_t n, float s);

#ifdef __cplusplus
}
#endif

#endif
