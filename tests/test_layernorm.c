/* test_layernorm.c: layer-norm over the last dim: a hand-derived row, reference values from
 * tools/gen_op_refs_b.py (eps 1e-12 as BERT and 1e-5), gradients w.r.t. x, w and b by
 * finite differences on odd sizes, accumulation, and thread-count independence of dw/db. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <omp.h>

#include "opsb_ref.h"
#include "ops/ops.h"
#include "testlib.h"

static void hand_row_normalizes_to_unit_variance(void) {
    /* x = [1, 2, 3, 4]: mean 2.5, biased var 1.25, rstd = 1/sqrt(1.25 + eps) */
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 1}, b[4] = {0, 0, 0, 10}, y[4], m, r;
    op_layernorm_forward(1, 4, x, w, b, 1e-12f, y, &m, &r);
    const double rs = 1.0 / sqrt(1.25);
    CHECK_NEAR(m, 2.5, 1e-7);
    CHECK_NEAR(r, rs, 1e-6);
    CHECK_NEAR(y[0], -1.5 * rs, 1e-6);
    CHECK_NEAR(y[1], -0.5 * rs, 1e-6);
    CHECK_NEAR(y[2], 2 * 0.5 * rs, 1e-6);
    CHECK_NEAR(y[3], 1.5 * rs + 10, 1e-5);
    /* NULL w, b: plain normalization */
    op_layernorm_forward(1, 4, x, NULL, NULL, 1e-12f, y, NULL, NULL);
    CHECK_NEAR(y[3], 1.5 * rs, 1e-6);
}

static void matches_reference_with_large_offset_rows(void) {
    enum { N = 5, D = 13 };
    const char *F = "opsb_layernorm.txt";
    float x[N * D], w[D], b[D], y[N * D], m[N], r[N];
    double want[N * D];
    if (ref_load_f(F, "x", x, N * D) || ref_load_f(F, "w", w, D) || ref_load_f(F, "b", b, D)) {
        CHECK(0);
        return;
    }
    const char *tags[2] = {"eps12", "eps5"};
    const float eps[2] = {1e-12f, 1e-5f};
    char name[32];
    for (int t = 0; t < 2; t++) {
        op_layernorm_forward(N, D, x, w, b, eps[t], y, m, r);
        snprintf(name, sizeof name, "y_%s", tags[t]);
        CHECK(ref_load(F, name, want, N * D) == 0);
        CHECK_MSG(ref_max_abs_diff(y, want, N * D) < 2e-5, "%s: %g", name,
                  ref_max_abs_diff(y, want, N * D));
        snprintf(name, sizeof name, "mean_%s", tags[t]);
        CHECK(ref_load(F, name, want, N) == 0);
        CHECK_MSG(ref_max_abs_diff(m, want, N) < 1e-5, "%s", name);
        snprintf(name, sizeof name, "rstd_%s", tags[t]);
        CHECK(ref_load(F, name, want, N) == 0);
        for (int n = 0; n < N; n++) CHECK_NEAR(r[n] / want[n], 1.0, 1e-5);
    }
}

typedef struct LnCtx {
    int N, D;
    float *x, *w, *b, *y, *m, *r;
    const float *rr;
} LnCtx;

static double ln_loss(void *p) {
    LnCtx *c = p;
    op_layernorm_forward(c->N, c->D, c->x, c->w, c->b, 1e-12f, c->y, c->m, c->r);
    double s = 0;
    for (int i = 0; i < c->N * c->D; i++) s += (double)c->y[i] * c->rr[i];
    return s;
}

static void gradients_match_finite_differences(void) {
    const int N = 7, D = 29, ND = 7 * 29;
    TestRng rng = {21};
    float x[7 * 29], y[7 * 29], rr[7 * 29], dx[7 * 29], w[29], b[29], dw[29], db[29], m[7], r[7];
    trng_fill(&rng, x, ND, -2, 2);
    trng_fill(&rng, w, D, 0.5f, 1.5f);
    trng_fill(&rng, b, D, -0.5f, 0.5f);
    trng_fill(&rng, rr, ND, -1, 1);
    /* preset gradients to check accumulation: result = preset + gradient */
    for (int i = 0; i < ND; i++) dx[i] = 0.25f;
    for (int i = 0; i < D; i++) dw[i] = -0.5f, db[i] = 1.0f;
    op_layernorm_forward(N, D, x, w, b, 1e-12f, y, m, r);
    op_layernorm_backward(N, D, x, w, m, r, rr, dx, dw, db);
    for (int i = 0; i < ND; i++) dx[i] -= 0.25f;
    for (int i = 0; i < D; i++) dw[i] += 0.5f, db[i] -= 1.0f;
    LnCtx c = {N, D, x, w, b, y, m, r, rr};
    double ex = gradcheck(ln_loss, &c, x, dx, ND, 1e-2, 0);
    double ew = gradcheck(ln_loss, &c, w, dw, D, 1e-2, 0);
    double eb = gradcheck(ln_loss, &c, b, db, D, 1e-2, 0);
    CHECK_MSG(ex < 1e-3, "dx rel err %g", ex);
    CHECK_MSG(ew < 1e-3, "dw rel err %g", ew);
    CHECK_MSG(eb < 1e-3, "db rel err %g", eb);
}

static void dx_sums_to_zero_per_row(void) {
    /* y is invariant to adding a constant to a row, so sum_d dx[n, d] = 0 (with w = 1) */
    const int N = 3, D = 17;
    TestRng rng = {22};
    float x[51], y[51], dy[51], dx[51] = {0}, m[3], r[3];
    trng_fill(&rng, x, 51, -3, 3);
    trng_fill(&rng, dy, 51, -1, 1);
    op_layernorm_forward(N, D, x, NULL, NULL, 1e-5f, y, m, r);
    op_layernorm_backward(N, D, x, NULL, m, r, dy, dx, NULL, NULL);
    for (int n = 0; n < N; n++) {
        double s = 0, a = 0;
        for (int d = 0; d < D; d++) s += dx[n * D + d], a += fabs(dx[n * D + d]);
        CHECK(a > 0.1);
        CHECK_NEAR(s, 0.0, 1e-5);
    }
}

static void param_grads_are_identical_for_any_thread_count(void) {
    const int N = 640, D = 312; /* BERT-sized rows, parallel path */
    const size_t ND = (size_t)N * D;
    TestRng rng = {23};
    float *x = malloc(ND * 4), *y = malloc(ND * 4), *dy = malloc(ND * 4);
    float *dx1 = calloc(ND, 4), *dx4 = calloc(ND, 4);
    float w[312], b[312], dw1[312] = {0}, db1[312] = {0}, dw4[312] = {0}, db4[312] = {0};
    float m[640], r[640];
    trng_fill(&rng, x, ND, -2, 2);
    trng_fill(&rng, dy, ND, -1, 1);
    trng_fill(&rng, w, D, 0.5f, 1.5f);
    trng_fill(&rng, b, D, -1, 1);
    op_layernorm_forward(N, D, x, w, b, 1e-12f, y, m, r);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    op_layernorm_backward(N, D, x, w, m, r, dy, dx1, dw1, db1);
    omp_set_num_threads(4);
    op_layernorm_backward(N, D, x, w, m, r, dy, dx4, dw4, db4);
    omp_set_num_threads(saved);
    CHECK(memcmp(dx1, dx4, ND * 4) == 0);
    CHECK(memcmp(dw1, dw4, sizeof dw1) == 0);
    CHECK(memcmp(db1, db4, sizeof db1) == 0);
    /* db is the column sum of dy */
    for (int d = 0; d < D; d += 31) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * D + d];
        CHECK_NEAR(db4[d], s, 1e-4);
    }
    free(x), free(y), free(dy), free(dx1), free(dx4);
}

int main(void) {
    RUN(hand_row_normalizes_to_unit_variance);
    RUN(matches_reference_with_large_offset_rows);
    RUN(gradients_match_finite_differences);
    RUN(dx_sums_to_zero_per_row);
    RUN(param_grads_are_identical_for_any_thread_count);
    return test_summary();
}
