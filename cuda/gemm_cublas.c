/* gemm_cublas.c: row-major matrix products on cuBLAS (column-major), the linear layer.
 *
 * Row-major C[M,N] = op(A)[M,K] @ op(B)[K,N] is column-major C^T[N,M] = op(B)^T @ op(A)^T,
 * and a row-major X read as column-major IS X^T, so the row-major product is one
 * cublasGemmEx(opB, opA, N, M, K, B, ldb, A, lda, C, ldc): no transposes are materialized.
 * Operands and results are fp32 in memory; the compute type carries the precision mode
 * (gpu_gemm_compute: 32F exact, 32F_FAST_TF32, or 32F_FAST_16BF / 16F = bf16 / fp16
 * operands on tensor cores with fp32 accumulation).
 *
 * Linear (PyTorch nn.Linear, w [out, in]):
 *   y [N, out] = x [N, in] @ w^T + b          (bias rows first, then GEMM with beta = 1)
 *   dx [N, in]   += dy [N, out] @ w
 *   dw [out, in] += dy^T @ x
 *   db [out]     += sum_n dy[n, :]            (column sums, double accumulation) */
#include "cuda/gpu_internal.h"

static cublasOperation_t op_of(int t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

void cu_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (gpu_failed() || M <= 0 || N <= 0) return;
    GpuContext *g = gpu_ctx();
    gpu_stream(); /* wait for pending batch copies */
    CUBLAS_CHECK(cublasGemmEx(g->cublas, op_of(transB), op_of(transA), N, M, K, &alpha, B, CUDA_R_32F, ldb, A,
                              CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc, gpu_gemm_compute(),
                              CUBLAS_GEMM_DEFAULT));
}

void cu_gemm_strided(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                     long long strideA, const float *B, int ldb, long long strideB, float beta, float *C,
                     int ldc, long long strideC, int batch) {
    if (gpu_failed() || M <= 0 || N <= 0 || batch <= 0) return;
    GpuContext *g = gpu_ctx();
    gpu_stream();
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(g->cublas, op_of(transB), op_of(transA), N, M, K, &alpha, B,
                                            CUDA_R_32F, ldb, strideB, A, CUDA_R_32F, lda, strideA, &beta, C,
                                            CUDA_R_32F, ldc, strideC, batch, gpu_gemm_compute(),
                                            CUBLAS_GEMM_DEFAULT));
}

void cu_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b, float *y) {
    if (b) cu_fill_rows(N, out, b, y);
    cu_gemm(0, 1, N, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

void cu_linear_backward(int N, int in, int out, const float *x, const float *w, const float *dy, float *dx,
                        float *dw, float *db) {
    if (dx) cu_gemm(0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw) cu_gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) cu_col_sums_acc(N, out, dy, db);
}
