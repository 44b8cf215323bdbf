/* gemm_cublas.c: row-major matrix products on cuBLAS (column-major), the linear layer.
 *
 * Row-major C[M,N] = op(A)[M,K] @ op(B)[K,N] is column-major C^T[N,M] = op(B)^T @ op(A)^T,
 * and a row-major X read as column-major IS X^T, so the row-major product is one
 * cublasGemmEx(opB, opA, N, M, K, B, ldb, A, lda, C, ldc): no transposes are materialized.
 * Operands and results are fp32 in memory; the compute type carries the precision mode
 * (gpu_gemm_compute: from the Backend's precision, 32F exact, 32F_FAST_TF32, or 32F_FAST_16BF / 16F = bf16 / fp16
 * operands on tensor cores with fp32 accumulation).
 *
 * Linear (PyTorch nn.Linear, w [out, in]):
 *   y [N, out] = x [N, in] @ w^T + b          (bias rows first, then GEMM with beta = 1)
 *   dx [N, in]   += dy [N, out] @ w
 *   dw [out, in] += dy^T @ x
 *   db [out]     += sum_n dy[n, :]            (column sums, double accumulation) */
#include "cuda/gpu_internal.h"

static cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

void cu_gemm(GpuContext *g, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (gpu_failed(g) || M <= 0 || N <= 0) return;
    gpu_stream(g); /* wait for pending batch copies */
    CUBLAS_CHECK(g, cublasGemmEx(g->cublas, op_of(transB), op_of(transA), N, M, K, &alpha, B, CUDA_R_32F, ldb, A,
                                 CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc, gpu_gemm_compute(g),
                                 CUBLAS_GEMM_DEFAULT));
}

void cu_gemm_strided(GpuContext *g, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                     int lda, long long strideA, const float *B, int ldb, long long strideB, float beta, float *C,
                     int ldc, long long strideC, int batch) {
    if (gpu_failed(g) || M <= 0 || N <= 0 || batch <= 0) return;
    gpu_stream(g);
    CUBLAS_CHECK(g, cublasGemmStridedBatchedEx(g->cublas, op_of(transB), op_of(transA), N, M, K, &alpha, B,
                                               CUDA_R_32F, ldb, strideB, A, CUDA_R_32F, lda, strideA, &beta, C,
                                               CUDA_R_32F, ldc, strideC, batch, gpu_gemm_compute(g),
                                               CUBLAS_GEMM_DEFAULT));
}

void cu_gemm_entry(const Backend *be, int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    GpuContext *g = be->ctx;
    cu_gemm(g, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cu_linear_forward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *b,
                       float *y) {
    GpuContext *g = be->ctx;
    if (b) cu_fill_rows(g, N, out, b, y);
    cu_gemm(g, 0, 1, N, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

void cu_linear_backward(const Backend *be, int N, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db) {
    GpuContext *g = be->ctx;
    if (dx) cu_gemm(g, 0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw) cu_gemm(g, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) cu_col_sums_acc(g, N, out, dy, db);
}
