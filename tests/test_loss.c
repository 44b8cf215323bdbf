/* test_loss.c: BCE with logits over soft targets and soft cross-entropy: hand values,
 * reference values from tools/gen_op_refs_b.py (incl. saturated logits and an all-zero
 * target row), finite-difference gradients, grad_scale, write-not-accumulate, and a value
 * that is bit-identical for any thread count. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <omp.h>

#include "opsb_ref.h"
#include "ops/ops.h"
#include "testlib.h"

typedef double (*LossFn)(int N, int A, const float *z, const float *t, float gs, float *dz);

static void bce_hand_values(void) {
    /* z = 0: every element costs log 2 whatever t; dz = (1/2 - t) / N */
    float z[6] = {0}, t[6] = {0, 0.3f, 1, 0.6f, 0.9f, 0}, dz[6];
    double l = op_bce_logits(2, 3, z, t, 1.0f, dz);
    CHECK_NEAR(l, 3 * log(2.0), 1e-12);
    for (int i = 0; i < 6; i++) CHECK_NEAR(dz[i], (0.5 - t[i]) / 2, 1e-7);
    /* one element, z = 2, t = 1: log(1 + e^-2) */
    float z1 = 2.0f, t1 = 1.0f;
    CHECK_NEAR(op_bce_logits(1, 1, &z1, &t1, 1.0f, NULL), log1p(exp(-2.0)), 1e-12);
}

static void xent_hand_values(void) {
    /* z = [0, 0], t = [1, 0]: -log(1/2). t = [0.3, 0.3] normalizes to [.5, .5]: log 2 too */
    float z[4] = {0, 0, 0, 0}, t[4] = {1, 0, 0.3f, 0.3f}, dz[4];
    double l = op_soft_xent(2, 2, z, t, 1.0f, dz);
    CHECK_NEAR(l, log(2.0), 1e-12);
    CHECK_NEAR(dz[0], (0.5 - 1.0) / 2, 1e-7);
    CHECK_NEAR(dz[1], (0.5 - 0.0) / 2, 1e-7);
    CHECK_NEAR(dz[2], 0.0, 1e-7);
}

static void bce_matches_reference_with_saturated_logits(void) {
    enum { N = 3, A = 7 };
    const char *F = "opsb_loss.txt";
    float z[N * A], t[N * A], dz[N * A];
    double want_l, want_dz[N * A];
    if (ref_load_f(F, "bce_z", z, N * A) || ref_load_f(F, "bce_t", t, N * A)) { CHECK(0); return; }
    CHECK(ref_load(F, "bce_loss", &want_l, 1) == 0);
    CHECK(ref_load(F, "bce_dz", want_dz, N * A) == 0);
    double l = op_bce_logits(N, A, z, t, 1.0f, dz);
    CHECK_NEAR(l, want_l, 1e-9 * fabs(want_l));
    CHECK_MSG(ref_max_abs_diff(dz, want_dz, N * A) < 1e-7, "dz %g", ref_max_abs_diff(dz, want_dz, N * A));
}

static void xent_matches_reference_and_empty_row_contributes_zero(void) {
    enum { N = 4, A = 6 };
    const char *F = "opsb_loss.txt";
    float z[N * A], t[N * A], dz[N * A];
    double want_l, want_dz[N * A];
    if (ref_load_f(F, "xent_z", z, N * A) || ref_load_f(F, "xent_t", t, N * A)) { CHECK(0); return; }
    CHECK(ref_load(F, "xent_loss", &want_l, 1) == 0);
    CHECK(ref_load(F, "xent_dz", want_dz, N * A) == 0);
    for (int i = 0; i < N * A; i++) dz[i] = 123.0f; /* WRITTEN, not accumulated */
    double l = op_soft_xent(N, A, z, t, 1.0f, dz);
    CHECK_NEAR(l, want_l, 1e-9 * fabs(want_l));
    CHECK_MSG(ref_max_abs_diff(dz, want_dz, N * A) < 1e-7, "dz %g", ref_max_abs_diff(dz, want_dz, N * A));
    for (int a = 0; a < A; a++) CHECK(dz[2 * A + a] == 0.0f); /* row 2 has no target */
    /* the same rows without the empty one: loss * 4 / 3 (the empty row still counts in N) */
    float z3[3 * A], t3[3 * A];
    memcpy(z3, z, sizeof(float) * 2 * A), memcpy(z3 + 2 * A, z + 3 * A, sizeof(float) * A);
    memcpy(t3, t, sizeof(float) * 2 * A), memcpy(t3 + 2 * A, t + 3 * A, sizeof(float) * A);
    CHECK_NEAR(op_soft_xent(3, A, z3, t3, 1.0f, NULL), l * 4 / 3, 1e-12);
}

typedef struct LossCtx {
    LossFn f;
    int N, A;
    float *z;
    const float *t;
} LossCtx;

static double loss_value(void *p) {
    LossCtx *c = p;
    return c->f(c->N, c->A, c->z, c->t, 1.0f, NULL);
}

static double loss_gradcheck(LossFn f, uint64_t seed) {
    enum { N = 5, A = 13 };
    TestRng rng = {seed};
    float z[N * A], t[N * A], dz[N * A];
    trng_fill(&rng, z, N * A, -4, 4);
    for (int i = 0; i < N * A; i++) t[i] = (float)(trng_u64(&rng) % 5) * 0.25f;
    f(N, A, z, t, 1.0f, dz);
    LossCtx c = {f, N, A, z, t};
    return gradcheck(loss_value, &c, z, dz, N * A, 1e-3, 0);
}

static void bce_gradient_matches_finite_differences(void) {
    double e = loss_gradcheck(op_bce_logits, 61);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void xent_gradient_matches_finite_differences(void) {
    double e = loss_gradcheck(op_soft_xent, 62);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void grad_scale_scales_gradient_not_loss(void) {
    float z[6] = {1, -2, 3, 0.5f, -0.5f, 2}, t[6] = {1, 0, 0.3f, 0.6f, 0, 1}, d1[6], d8[6];
    LossFn fs[2] = {op_bce_logits, op_soft_xent};
    for (int k = 0; k < 2; k++) {
        double l1 = fs[k](2, 3, z, t, 1.0f, d1);
        double l8 = fs[k](2, 3, z, t, 1024.0f, d8);
        CHECK(l1 == l8);
        for (int i = 0; i < 6; i++) CHECK_NEAR(d8[i], 1024.0 * d1[i], 1e-4 * fabs(d8[i]) + 1e-9);
    }
}

static void value_is_identical_for_any_thread_count(void) {
    const int N = 1001, A = 3129;
    const size_t n = (size_t)N * A;
    float *z = malloc(n * 4), *t = malloc(n * 4), *d1 = malloc(n * 4), *d4 = malloc(n * 4);
    TestRng rng = {63};
    trng_fill(&rng, z, n, -8, 8);
    for (size_t i = 0; i < n; i++) t[i] = (trng_u64(&rng) % 50 == 0) ? 0.9f : 0.0f;
    LossFn fs[2] = {op_bce_logits, op_soft_xent};
    int saved = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(1);
        double l1 = fs[k](N, A, z, t, 1.0f, d1);
        omp_set_num_threads(4);
        double l4 = fs[k](N, A, z, t, 1.0f, d4);
        CHECK(l1 == l4);
        CHECK(memcmp(d1, d4, n * 4) == 0);
        CHECK(isfinite(l1) && l1 > 0);
    }
    omp_set_num_threads(saved);
    free(z), free(t), free(d1), free(d4);
}

int main(void) {
    RUN(bce_hand_values);
    RUN(xent_hand_values);
    RUN(bce_matches_reference_with_saturated_logits);
    RUN(xent_matches_reference_and_empty_row_contributes_zero);
    RUN(bce_gradient_matches_finite_differences);
    RUN(xent_gradient_matches_finite_differences);
    RUN(grad_scale_scales_gradient_not_loss);
    RUN(value_is_identical_for_any_thread_count);
    return test_summary();
}
