/* test_gemm.c: op_gemm in all four transpose combinations, with leading dimensions and
 * beta, against a plain triple loop, both unsplit and split over threads; and the
 * thread-count control. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "testlib.h"

/* C = alpha op(A) op(B) + beta C by definition, in double. */
static void naive(int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = tA ? A[k * lda + i] : A[i * lda + k];
                double b = tB ? B[j * ldb + k] : B[k * ldb + j];
                s += a * b;
            }
            C[i * ldc + j] = (float)(alpha * s + beta * C[i * ldc + j]);
        }
}

static void all_transposes_with_padding_and_beta(void) {
    enum { M = 7, N = 5, K = 11, PAD = 3 };
    TestRng rng = {91};
    float A[(K + PAD) * (K + PAD)], B[(K + PAD) * (K + PAD)], C0[M * (N + PAD)];
    trng_fill(&rng, A, sizeof A / 4, -1, 1);
    trng_fill(&rng, B, sizeof B / 4, -1, 1);
    trng_fill(&rng, C0, sizeof C0 / 4, -1, 1);
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            int lda = (tA ? M : K) + PAD, ldb = (tB ? K : N) + PAD, ldc = N + PAD;
            float C[M * (N + PAD)], R[M * (N + PAD)];
            memcpy(C, C0, sizeof C), memcpy(R, C0, sizeof R);
            op_gemm(tA, tB, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, ldc);
            naive(tA, tB, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, R, ldc);
            double e = rel_err(C, R, sizeof C / 4);
            CHECK_MSG(e < 1e-6, "transA %d transB %d rel err %.3g", tA, tB, e);
            /* the padding columns of C are untouched */
            CHECK(C[N] == C0[N] && C[ldc + N + PAD - 1] == C0[ldc + N + PAD - 1]);
        }
}

/* Large enough for op_gemm to split C over threads (by columns when wide, by rows when
 * tall), with odd sizes so the blocks are ragged; every transpose combination. */
static void thread_split_matches_naive_on_odd_sizes(void) {
    int before = op_get_threads();
    op_set_threads(3);
    const int shapes[2][3] = {{67, 301, 45}, {301, 67, 45}};
    TestRng rng = {92};
    for (int sh = 0; sh < 2; sh++) {
        int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
        trng_fill(&rng, A, (size_t)M * K, -1, 1);
        trng_fill(&rng, B, (size_t)K * N, -1, 1);
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                trng_fill(&rng, C, (size_t)M * N, -1, 1);
                memcpy(R, C, sizeof(float) * M * N);
                int lda = tA ? M : K, ldb = tB ? K : N;
                op_gemm(tA, tB, M, N, K, 1.5f, A, lda, B, ldb, 1.0f, C, N);
                naive(tA, tB, M, N, K, 1.5f, A, lda, B, ldb, 1.0f, R, N);
                double e = rel_err(C, R, (size_t)M * N);
                CHECK_MSG(e < 1e-6, "%dx%dx%d transA %d transB %d rel err %.3g", M, N, K, tA, tB, e);
            }
        free(A), free(B), free(C), free(R);
    }
    op_set_threads(before);
}

static void empty_inner_dimension_scales_c_by_beta(void) {
    float C[4] = {1, 2, 3, 4}, dummy = 0;
    op_gemm(0, 0, 2, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 0.5f, C, 2);
    CHECK_NEAR(C[3], 2.0, 0);
    op_gemm(0, 0, 2, 2, 0, 1.0f, &dummy, 1, &dummy, 2, 0.0f, C, 2);
    CHECK_NEAR(C[0], 0.0, 0);
}

static void set_threads_is_reported_back(void) {
    int before = op_get_threads();
    CHECK(before >= 1);
    op_set_threads(1);
    CHECK(op_get_threads() == 1);
    op_set_threads(0); /* <= 0: leave as is */
    CHECK(op_get_threads() == 1);
    op_set_threads(before);
    CHECK(op_get_threads() == before);
}

int main(void) {
    RUN(all_transposes_with_padding_and_beta);
    RUN(thread_split_matches_naive_on_odd_sizes);
    RUN(empty_inner_dimension_scales_c_by_beta);
    RUN(set_threads_is_reported_back);
    return test_summary();
}
