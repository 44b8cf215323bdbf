/* gemm.c: thread control for the CPU ops and the one matrix-product entry point.
 *
 * Two thread pools exist in a CPU process: OpenMP (our loops: im2col, batch-norm, ...)
 * and OpenBLAS's own (sgemm). op_set_threads() sets both to the same count so the
 * config's train.threads (or OMP_NUM_THREADS when it is unset) governs all of them. */
#include <cblas.h>
#include <omp.h>

#include "ops/ops.h"

void op_set_threads(int n) {
    if (n <= 0) return; /* keep the OMP_NUM_THREADS / OPENBLAS_NUM_THREADS defaults */
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int op_get_threads(void) { return omp_get_max_threads(); }

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major.
 * op(A) = A [M,K] (lda >= K) or A^T with A [K,M] (lda >= M); likewise B. */
void op_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* Empty product: C = beta * C (BLAS implementations differ on K = 0). */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
