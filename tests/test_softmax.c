/* test_softmax.c: row softmax: hand values, stability with +-1000 offsets (reference from
 * tools/gen_op_refs_b.py), rows summing to 1, finite-difference gradient, accumulation. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "opsb_ref.h"
#include "ops/ops.h"
#include "testlib.h"

static void hand_values(void) {
    /* softmax([0, ln 2, ln 5]) = [1, 2, 5] / 8 */
    float x[3] = {0.0f, logf(2.0f), logf(5.0f)}, y[3];
    op_softmax_forward(1, 3, x, y);
    CHECK_NEAR(y[0], 0.125, 1e-7);
    CHECK_NEAR(y[1], 0.25, 1e-7);
    CHECK_NEAR(y[2], 0.625, 1e-7);
    op_softmax_forward(1, 3, x, x); /* in place */
    CHECK_NEAR(x[2], 0.625, 1e-7);
}

static void matches_reference_and_is_stable_for_huge_offsets(void) {
    enum { R = 4, C = 9 };
    float x[R * C], y[R * C];
    double want[R * C];
    if (ref_load_f("opsb_softmax.txt", "x", x, R * C)) { CHECK(0); return; }
    CHECK(ref_load("opsb_softmax.txt", "y", want, R * C) == 0);
    op_softmax_forward(R, C, x, y);
    for (int i = 0; i < R * C; i++) CHECK(isfinite(y[i]));
    CHECK_MSG(ref_max_abs_diff(y, want, R * C) < 1e-6, "max diff %g",
              ref_max_abs_diff(y, want, R * C));
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += y[r * C + c];
        CHECK_NEAR(s, 1.0, 1e-6);
    }
}

typedef struct SmCtx {
    int R, C;
    float *x, *y;
    const float *r;
} SmCtx;

static double sm_loss(void *p) {
    SmCtx *c = p;
    op_softmax_forward(c->R, c->C, c->x, c->y);
    double s = 0;
    for (int i = 0; i < c->R * c->C; i++) s += (double)c->y[i] * c->r[i];
    return s;
}

static void gradient_matches_finite_differences_and_accumulates(void) {
    const int R = 5, C = 19, N = 95;
    TestRng rng = {31};
    float x[95], y[95], r[95], dx[95];
    trng_fill(&rng, x, N, -3, 3);
    trng_fill(&rng, r, N, -1, 1);
    for (int i = 0; i < N; i++) dx[i] = 2.0f;
    op_softmax_forward(R, C, x, y);
    op_softmax_backward(R, C, y, r, dx);
    for (int i = 0; i < N; i++) dx[i] -= 2.0f;
    SmCtx c = {R, C, x, y, r};
    double e = gradcheck(sm_loss, &c, x, dx, N, 1e-2, 0);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
    op_softmax_backward(R, C, y, r, NULL); /* NULL: skipped */
}

static void large_input_rows_sum_to_one(void) {
    const int R = 257, C = 3129; /* the answer vocabulary of VQA v2 */
    float *x = malloc(sizeof(float) * R * C), *y = malloc(sizeof(float) * R * C);
    TestRng rng = {32};
    trng_fill(&rng, x, (size_t)R * C, -20, 20);
    op_softmax_forward(R, C, x, y);
    double worst = 0;
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += y[(size_t)r * C + c];
        worst = fmax(worst, fabs(s - 1));
    }
    CHECK_MSG(worst < 1e-5, "worst row sum error %g", worst);
    free(x), free(y);
}

int main(void) {
    RUN(hand_values);
    RUN(matches_reference_and_is_stable_for_huge_offsets);
    RUN(gradient_matches_finite_differences_and_accumulates);
    RUN(large_input_rows_sum_to_one);
    return test_summary();
}
