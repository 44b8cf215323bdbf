/* test_embedding.c: embedding gather and its scatter-add backward: hand values, repeated
 * ids, padding_idx skipped (PyTorch semantics), finite differences, and a backward that is
 * bit-identical for any thread count. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <omp.h>

#include "ops/ops.h"
#include "testlib.h"

static void forward_gathers_rows(void) {
    /* table [4, 3]: row v = (10v, 10v+1, 10v+2) */
    float table[12], y[9];
    for (int v = 0; v < 4; v++)
        for (int d = 0; d < 3; d++) table[v * 3 + d] = (float)(10 * v + d);
    const int32_t ids[3] = {2, 0, 2};
    op_embedding_forward(3, 4, 3, ids, table, y);
    const float want[9] = {20, 21, 22, 0, 1, 2, 20, 21, 22};
    for (int i = 0; i < 9; i++) CHECK(y[i] == want[i]);
}

static void backward_sums_repeated_ids_and_skips_padding(void) {
    /* ids = [1, 3, 1, 0, 3], padding_idx = 3: rows 3 get nothing, row 1 gets dy0 + dy2 */
    const int32_t ids[5] = {1, 3, 1, 0, 3};
    float dy[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; /* [5, 2] */
    float dt[8] = {0, 0, 0, 0, 0, 0, 0.5f, 0.5f};  /* [4, 2], row 3 preset: must stay */
    op_embedding_backward(5, 4, 2, ids, 3, dy, dt);
    const float want[8] = {7, 8, 1 + 5, 2 + 6, 0, 0, 0.5f, 0.5f};
    for (int i = 0; i < 8; i++) CHECK(dt[i] == want[i]);
    /* padding_idx = -1: every row counts; accumulates on top */
    op_embedding_backward(5, 4, 2, ids, -1, dy, dt);
    const float want2[8] = {14, 16, 12, 16, 0, 0, 0.5f + 3 + 9, 0.5f + 4 + 10};
    for (int i = 0; i < 8; i++) CHECK(dt[i] == want2[i]);
    op_embedding_backward(5, 4, 2, ids, -1, dy, NULL); /* NULL: nothing to do */
}

typedef struct EmbCtx {
    int N, V, D;
    const int32_t *ids;
    float *table, *y;
    const float *r;
} EmbCtx;

static double emb_loss(void *p) {
    EmbCtx *c = p;
    op_embedding_forward(c->N, c->V, c->D, c->ids, c->table, c->y);
    double s = 0;
    for (int i = 0; i < c->N * c->D; i++) s += (double)c->y[i] * c->r[i];
    return s;
}

static void gradient_matches_finite_differences_without_padding(void) {
    const int N = 23, V = 7, D = 11;
    TestRng rng = {11};
    int32_t ids[23];
    for (int n = 0; n < N; n++) ids[n] = (int32_t)(trng_u64(&rng) % V);
    float table[77], y[253], r[253], dt[77] = {0};
    trng_fill(&rng, table, 77, -1, 1);
    trng_fill(&rng, r, 253, -1, 1);
    op_embedding_backward(N, V, D, ids, -1, r, dt);
    EmbCtx c = {N, V, D, ids, table, y, r};
    double e = gradcheck(emb_loss, &c, table, dt, 77, 1e-2, 0);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void backward_is_bit_identical_for_any_thread_count(void) {
    /* Large enough for the parallel path; many repeats of few ids (the racy case). */
    const int N = 4001, V = 13, D = 37;
    TestRng rng = {12};
    int32_t *ids = malloc(sizeof(int32_t) * N);
    for (int n = 0; n < N; n++) ids[n] = (int32_t)(trng_u64(&rng) % V);
    float *dy = malloc(sizeof(float) * N * D);
    trng_fill(&rng, dy, (size_t)N * D, -1, 1);
    float *d1 = calloc((size_t)V * D, 4), *d4 = calloc((size_t)V * D, 4);
    double *ref = calloc((size_t)V * D, sizeof(double));
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    op_embedding_backward(N, V, D, ids, 5, dy, d1);
    omp_set_num_threads(4);
    op_embedding_backward(N, V, D, ids, 5, dy, d4);
    omp_set_num_threads(saved);
    CHECK(memcmp(d1, d4, sizeof(float) * V * D) == 0);
    /* and it is the sum in double up to float rounding */
    for (int n = 0; n < N; n++)
        if (ids[n] != 5)
            for (int d = 0; d < D; d++) ref[ids[n] * D + d] += dy[(size_t)n * D + d];
    double m = 0;
    for (int i = 0; i < V * D; i++) m = fmax(m, fabs(d4[i] - ref[i]));
    CHECK_MSG(m < 1e-3, "max diff %g", m);
    for (int d = 0; d < D; d++) CHECK(d4[5 * D + d] == 0.0f);
    free(ids), free(dy), free(d1), free(d4), free(ref);
}

int main(void) {
    RUN(forward_gathers_rows);
    RUN(backward_sums_repeated_ids_and_skips_padding);
    RUN(gradient_matches_finite_differences_without_padding);
    RUN(backward_is_bit_identical_for_any_thread_count);
    return test_summary();
}
