/* test_batchnorm.c: BatchNorm2d train/eval forward and backward against hand-derived
 * running statistics, the numpy reference (tests/ref/opsa_batchnorm.txt, gradients there
 * by float64 finite differences) and central differences of the C forward. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "opsa_ref.h"
#include "testlib.h"

static void running_stats_follow_pytorch_rule_hand_derived(void) {
    /* One channel, M = 4 values x_k = k * {1, 2, 3, 4} at step k = 1, 2, 3.
     * mean = 2.5k, biased var = 1.25k^2 (normalizes), unbiased var = 5/3 k^2 (stored).
     * running_mean: 0 -> 0.25 -> 0.9*0.25 + 0.5 = 0.725 -> 0.9*0.725 + 0.75 = 1.4025
     * running_var:  1 -> 0.9 + 1/6 = 1.0666667 -> 0.96 + 2/3 = 1.6266667
     *                 -> 0.9*1.6266667 + 1.5 = 2.964 */
    float rm = 0.0f, rv = 1.0f, mean, rstd, y[4];
    const double want_rm[3] = {0.25, 0.725, 1.4025};
    const double want_rv[3] = {0.9 + 1.0 / 6.0, 0.96 + 2.0 / 3.0, 0.9 * (0.96 + 2.0 / 3.0) + 1.5};
    for (int k = 1; k <= 3; k++) {
        float x[4] = {1.0f * k, 2.0f * k, 3.0f * k, 4.0f * k};
        /* N = 2 images of HW = 2: exercises the [N, C, HW] indexing with C = 1. */
        op_batchnorm_forward_train(2, 1, 2, x, NULL, NULL, 0.1f, 1e-5f, &rm, &rv, y, &mean, &rstd);
        CHECK_NEAR(mean, 2.5 * k, 1e-6);
        CHECK_NEAR(rstd, 1.0 / sqrt(1.25 * k * k + 1e-5), 1e-6);
        CHECK_NEAR(rm, want_rm[k - 1], 1e-6);
        CHECK_NEAR(rv, want_rv[k - 1], 1e-5);
        /* y = (x - mean) * rstd: symmetric about 0, y[0] = -1.5k * rstd */
        CHECK_NEAR(y[0], -1.5 * k / sqrt(1.25 * k * k + 1e-5), 1e-5);
        CHECK_NEAR(y[0] + y[3], 0.0, 1e-6);
    }
}

static void train_forward_and_running_stats_match_reference_over_3_steps(void) {
    RefSet rs;
    if (ref_load(&rs, "opsa_batchnorm.txt") != 0) {
        CHECK(!"reference file loads");
        return;
    }
    const RefTensor *dims = ref_get(&rs, "dims");
    int N = (int)dims->v[0], C = (int)dims->v[1], HW = (int)dims->v[2];
    size_t n = (size_t)N * C * HW;
    float *gamma = ref_floats(ref_get(&rs, "gamma")), *beta = ref_floats(ref_get(&rs, "beta"));
    float *y = malloc(n * 4), rm[16], rv[16], mean[16], rstd[16];
    for (int c = 0; c < C; c++) rm[c] = 0.0f, rv[c] = 1.0f;
    char key[64];
    for (int step = 0; step < 3; step++) {
        snprintf(key, sizeof key, "step%d.x", step);
        float *x = ref_floats(ref_get(&rs, key));
        op_batchnorm_forward_train(N, C, HW, x, gamma, beta, 0.1f, 1e-5f, rm, rv, y, mean, rstd);
        const char *names[] = {"y", "mean", "rstd", "running_mean", "running_var"};
        const float *got[] = {y, mean, rstd, rm, rv};
        for (int k = 0; k < 5; k++) {
            snprintf(key, sizeof key, "step%d.%s", step, names[k]);
            double e = ref_rel_err(got[k], 1, ref_get(&rs, key));
            CHECK_MSG(e < 1e-6, "step %d %s rel err %.3g", step, names[k], e);
        }
        free(x);
    }
    free(gamma), free(beta), free(y);
    ref_free(&rs);
}

/* Compares one backward (train or eval) with the finite-difference reference. */
static void backward_vs_reference(const char *mode) {
    RefSet rs;
    if (ref_load(&rs, "opsa_batchnorm.txt") != 0) {
        CHECK(!"reference file loads");
        return;
    }
    const RefTensor *dims = ref_get(&rs, "dims");
    int N = (int)dims->v[0], C = (int)dims->v[1], HW = (int)dims->v[2];
    size_t n = (size_t)N * C * HW;
    int train = strcmp(mode, "train") == 0;
    char key[64];
    float *gamma = ref_floats(ref_get(&rs, "gamma")), *beta = ref_floats(ref_get(&rs, "beta"));
    snprintf(key, sizeof key, "%s.dy", mode);
    float *dy = ref_floats(ref_get(&rs, key));
    float *dx = calloc(n, 4), dg[16] = {0}, dbt[16] = {0}, y[512];
    if (train) {
        float *x = ref_floats(ref_get(&rs, "step2.x")), mean[16], rstd[16];
        op_batchnorm_forward_train(N, C, HW, x, gamma, beta, 0.1f, 1e-5f, NULL, NULL, y, mean, rstd);
        op_batchnorm_backward_train(N, C, HW, x, gamma, mean, rstd, dy, dx, dg, dbt);
        free(x);
    } else {
        float *x = ref_floats(ref_get(&rs, "eval.x"));
        float *rm = ref_floats(ref_get(&rs, "eval.running_mean"));
        float *rv = ref_floats(ref_get(&rs, "eval.running_var"));
        op_batchnorm_forward_eval(N, C, HW, x, gamma, beta, rm, rv, 1e-5f, y);
        double e = ref_rel_err(y, 1, ref_get(&rs, "eval.y"));
        CHECK_MSG(e < 1e-6, "eval y rel err %.3g", e);
        op_batchnorm_backward_eval(N, C, HW, x, gamma, rm, rv, 1e-5f, dy, dx, dg, dbt);
        free(x), free(rm), free(rv);
    }
    const char *names[] = {"dx", "dgamma", "dbeta"};
    const float *got[] = {dx, dg, dbt};
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof key, "%s.%s", mode, names[k]);
        double e = ref_rel_err(got[k], 1, ref_get(&rs, key));
        /* the reference itself is a float64 finite difference: ~1e-8 accurate */
        CHECK_MSG(e < 1e-5, "%s %s rel err %.3g", mode, names[k], e);
    }
    free(gamma), free(beta), free(dy), free(dx);
    ref_free(&rs);
}

static void train_backward_matches_finite_difference_reference(void) { backward_vs_reference("train"); }
static void eval_forward_backward_match_reference(void) { backward_vs_reference("eval"); }

/* ---- gradient checks on random odd sizes, L = sum(y * r) ---- */
typedef struct BnCase {
    int N, C, HW, train;
    float *x, *g, *b, *rm, *rv, *y, *r, *mean, *rstd;
} BnCase;

static double bn_loss(void *ctx) {
    BnCase *t = ctx;
    if (t->train)
        op_batchnorm_forward_train(t->N, t->C, t->HW, t->x, t->g, t->b, 0.1f, 1e-5f, NULL, NULL,
                                   t->y, t->mean, t->rstd);
    else
        op_batchnorm_forward_eval(t->N, t->C, t->HW, t->x, t->g, t->b, t->rm, t->rv, 1e-5f, t->y);
    double l = 0;
    size_t n = (size_t)t->N * t->C * t->HW;
    for (size_t i = 0; i < n; i++) l += (double)t->y[i] * t->r[i];
    return l;
}

static void bn_gradcheck(int train) {
    BnCase t = {.N = 3, .C = 5, .HW = 9, .train = train};
    size_t n = (size_t)t.N * t.C * t.HW;
    TestRng rng = {train ? 51u : 52u};
    t.x = malloc(n * 4), t.y = malloc(n * 4), t.r = malloc(n * 4);
    t.g = malloc(20), t.b = malloc(20), t.rm = malloc(20), t.rv = malloc(20);
    t.mean = malloc(20), t.rstd = malloc(20);
    trng_fill(&rng, t.x, n, -2, 3);
    trng_fill(&rng, t.r, n, -1, 1);
    trng_fill(&rng, t.g, 5, 0.5f, 1.5f);
    trng_fill(&rng, t.b, 5, -1, 1);
    trng_fill(&rng, t.rm, 5, -0.5f, 0.5f);
    trng_fill(&rng, t.rv, 5, 0.5f, 2.0f);
    float *dx = calloc(n, 4), dg[5] = {0}, db[5] = {0};
    bn_loss(&t);
    if (train)
        op_batchnorm_backward_train(t.N, t.C, t.HW, t.x, t.g, t.mean, t.rstd, t.r, dx, dg, db);
    else
        op_batchnorm_backward_eval(t.N, t.C, t.HW, t.x, t.g, t.rm, t.rv, 1e-5f, t.r, dx, dg, db);
    /* Train-mode dx is a small difference of large terms (the projection of r out of the
     * mean and xhat directions): h = 1e-2 keeps the fp32 forward's rounding well below
     * it while the O(h^2) truncation stays < 1e-4 relative. */
    double ex = gradcheck(bn_loss, &t, t.x, dx, n, 1e-2, 0);
    double eg = gradcheck(bn_loss, &t, t.g, dg, 5, 1e-2, 0);
    double eb = gradcheck(bn_loss, &t, t.b, db, 5, 1e-2, 0);
    CHECK_MSG(ex < 1e-3, "dx rel err %.3g", ex);
    CHECK_MSG(eg < 1e-3, "dgamma rel err %.3g", eg);
    CHECK_MSG(eb < 1e-3, "dbeta rel err %.3g", eb);
    free(t.x), free(t.y), free(t.r), free(t.g), free(t.b), free(t.rm), free(t.rv);
    free(t.mean), free(t.rstd), free(dx);
}

static void gradcheck_train_mode_odd_sizes(void) { bn_gradcheck(1); }
static void gradcheck_eval_mode_frozen_stats(void) { bn_gradcheck(0); }

static void backward_accumulates_and_null_skips(void) {
    enum { N = 2, C = 3, HW = 5, n = N * C * HW };
    TestRng rng = {61};
    float x[n], y[n], dy[n], dx[n], mean[C], rstd[C], g[C] = {1, 2, 3}, dg[C] = {0}, db[C] = {0};
    trng_fill(&rng, x, n, -1, 1);
    trng_fill(&rng, dy, n, -1, 1);
    for (int i = 0; i < n; i++) dx[i] = 1.0f; /* pre-existing gradient must be kept */
    op_batchnorm_forward_train(N, C, HW, x, g, NULL, 0.1f, 1e-5f, NULL, NULL, y, mean, rstd);
    op_batchnorm_backward_train(N, C, HW, x, g, mean, rstd, dy, dx, dg, db);
    /* sum over a channel of the train-mode dx is 0, so the channel sum of dx is HW*N*1 */
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int k = 0; k < N; k++)
            for (int j = 0; j < HW; j++) s += dx[(k * C + c) * HW + j];
        CHECK_NEAR(s, N * HW, 1e-5);
    }
    float dg1[C], db1[C];
    memcpy(dg1, dg, sizeof dg), memcpy(db1, db, sizeof db);
    op_batchnorm_backward_train(N, C, HW, x, g, mean, rstd, dy, NULL, dg, NULL);
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(dg[c], 2 * dg1[c], 1e-6);
        CHECK_NEAR(db[c], db1[c], 0);
    }
    /* eval backward: dx = gamma * rstd * dy, accumulated */
    float rm[C] = {0.1f, -0.2f, 0.3f}, rv[C] = {0.5f, 1.0f, 2.0f}, dxe[n];
    for (int i = 0; i < n; i++) dxe[i] = 0.5f;
    op_batchnorm_backward_eval(N, C, HW, x, g, rm, rv, 1e-5f, dy, dxe, NULL, NULL);
    for (int i = 0; i < n; i++) {
        int c = (i / HW) % C;
        CHECK_NEAR(dxe[i], 0.5f + g[c] / sqrt(rv[c] + 1e-5) * dy[i], 1e-5);
    }
}

int main(void) {
    RUN(running_stats_follow_pytorch_rule_hand_derived);
    RUN(train_forward_and_running_stats_match_reference_over_3_steps);
    RUN(train_backward_matches_finite_difference_reference);
    RUN(eval_forward_backward_match_reference);
    RUN(gradcheck_train_mode_odd_sizes);
    RUN(gradcheck_eval_mode_frozen_stats);
    RUN(backward_accumulates_and_null_skips);
    return test_summary();
}
