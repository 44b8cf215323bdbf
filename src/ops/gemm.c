/* gemm.c: thread control for the CPU ops and the one matrix-product entry point.
 *
 * One thread pool for everything. Our loops (im2col, batch-norm, pooling, ...) run on
 * OpenMP threads; Debian's OpenBLAS has its own pthread pool. When both are active they
 * fight over the same cores: after each parallel loop libgomp's workers keep spinning
 * (GOMP_SPINCOUNT, milliseconds) exactly while OpenBLAS's threads start the next GEMM,
 * and an op that alternates im2col and GEMM ran at ~0.5x of plain sgemm on 2 cores
 * (bench_cpu_ops). So op_set_threads() gives OpenBLAS one thread and op_gemm() splits a
 * large product over the OpenMP threads itself, each calling single-threaded sgemm on a
 * block of C. Without op_set_threads() (OpenBLAS still multi-threaded) op_gemm simply
 * calls cblas_sgemm and lets OpenBLAS thread it. */
#include <cblas.h>
#include <omp.h>

#include "ops/ops.h"

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define GEMM_SPLIT_MIN_MACS (1L << 18)
/* Split boundaries are multiples of this (whole SIMD vectors / packing panels). */
#define GEMM_SPLIT_ALIGN 16

void op_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
    openblas_set_num_threads(1); /* GEMMs are split over the OpenMP threads (op_gemm) */
}

int op_get_threads(void) { return omp_get_max_threads(); }

static void sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major.
 * op(A) = A [M,K] (lda >= K) or A^T with A [K,M] (lda >= M); likewise B.
 * Parallel split: along N (columns of C: B + n0 or B + n0*ldb when transposed) when C is
 * wider than tall, else along M (rows of C: A + m0*lda, or A + m0 when transposed). Each
 * element of C is computed by exactly one thread with the whole K sum, so the result is
 * the same for any thread count up to the blocking inside sgemm. */
void op_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* Empty product: C = beta * C (BLAS implementations differ on K = 0). */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = &C[(size_t)i * ldc + j];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt <= 1 || openblas_get_num_threads() > 1 || (long)M * N * K < GEMM_SPLIT_MIN_MACS) {
        sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const int by_cols = N >= M;
    const int len = by_cols ? N : M;
    int blocks = (len + GEMM_SPLIT_ALIGN - 1) / GEMM_SPLIT_ALIGN;
    if (nt > blocks) nt = blocks;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int b0 = (int)((long)blocks * t / T), b1 = (int)((long)blocks * (t + 1) / T);
        int i0 = b0 * GEMM_SPLIT_ALIGN, i1 = b1 * GEMM_SPLIT_ALIGN;
        if (i1 > len) i1 = len;
        if (i1 > i0) {
            if (by_cols) {
                const float *Bt = transB ? B + (size_t)i0 * ldb : B + i0;
                sgemm(transA, transB, M, i1 - i0, K, alpha, A, lda, Bt, ldb, beta, C + i0, ldc);
            } else {
                const float *At = transA ? A + i0 : A + (size_t)i0 * lda;
                sgemm(transA, transB, i1 - i0, N, K, alpha, At, lda, B, ldb, beta,
                      C + (size_t)i0 * ldc, ldc);
            }
        }
    }
}
