/* test_linear.c: linear forward/backward against a hand-derived case, the numpy reference
 * (tests/ref/opsa_linear.txt) and central differences. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "opsa_ref.h"
#include "testlib.h"

static void hand_derived_2x3_to_2(void) {
    /* x = [[1,2,3],[4,5,6]], w = [[1,0,-1],[2,1,0]], b = [10, 20]
     * y = x w^T + b = [[1-3+10, 2+2+20], [4-6+10, 8+5+20]] = [[8, 24], [8, 33]]
     * dy = [[1,0],[0,1]]: dx = dy w = [[1,0,-1],[2,1,0]]; dw = dy^T x = [[1,2,3],[4,5,6]];
     * db = [1, 1]. */
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, b[2] = {10, 20}, y[4];
    op_linear_forward(2, 3, 2, x, w, b, y);
    const float wy[4] = {8, 24, 8, 33};
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], wy[i], 1e-6);
    op_linear_forward(2, 3, 2, x, w, NULL, y);
    const float wy0[4] = {-2, 4, -2, 13};
    for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], wy0[i], 1e-6);
    float dy[4] = {1, 0, 0, 1}, dx[6] = {0}, dw[6] = {0}, db[2] = {0};
    op_linear_backward(2, 3, 2, x, w, dy, dx, dw, db);
    for (int i = 0; i < 6; i++) CHECK_NEAR(dx[i], w[i], 1e-6);
    for (int i = 0; i < 6; i++) CHECK_NEAR(dw[i], x[i], 1e-6);
    CHECK_NEAR(db[0], 1, 0);
    CHECK_NEAR(db[1], 1, 0);
}

static void matches_numpy_reference(void) {
    RefSet rs;
    if (ref_load(&rs, "opsa_linear.txt") != 0) {
        CHECK(!"reference file loads");
        return;
    }
    const RefTensor *rx = ref_get(&rs, "x"), *rw = ref_get(&rs, "w");
    if (!rx || !rw) { CHECK(!"tensors present"); ref_free(&rs); return; }
    int N = (int)rx->shape[0], in = (int)rx->shape[1], out = (int)rw->shape[0];
    float *x = ref_floats(rx), *w = ref_floats(rw), *b = ref_floats(ref_get(&rs, "b"));
    float *dy = ref_floats(ref_get(&rs, "dy"));
    float *y = malloc((size_t)N * out * 4), *dx = calloc((size_t)N * in, 4);
    float *dw = calloc((size_t)out * in, 4), *db = calloc((size_t)out, 4);
    op_linear_forward(N, in, out, x, w, b, y);
    op_linear_backward(N, in, out, x, w, dy, dx, dw, db);
    const char *names[] = {"y", "dx", "dw", "db"};
    const float *got[] = {y, dx, dw, db};
    for (int k = 0; k < 4; k++) {
        double e = ref_rel_err(got[k], 1, ref_get(&rs, names[k]));
        CHECK_MSG(e < 1e-6, "%s rel err %.3g", names[k], e);
    }
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    ref_free(&rs);
}

typedef struct LinCase {
    int N, in, out;
    float *x, *w, *b, *y, *r;
} LinCase;

static double lin_loss(void *ctx) {
    LinCase *t = ctx;
    op_linear_forward(t->N, t->in, t->out, t->x, t->w, t->b, t->y);
    double l = 0;
    for (int i = 0; i < t->N * t->out; i++) l += (double)t->y[i] * t->r[i];
    return l;
}

static void gradcheck_odd_sizes(void) {
    LinCase t = {.N = 7, .in = 13, .out = 5};
    TestRng rng = {81};
    size_t nx = (size_t)t.N * t.in, nw = (size_t)t.out * t.in, ny = (size_t)t.N * t.out;
    t.x = malloc(nx * 4), t.w = malloc(nw * 4), t.b = malloc(t.out * 4);
    t.y = malloc(ny * 4), t.r = malloc(ny * 4);
    trng_fill(&rng, t.x, nx, -1, 1);
    trng_fill(&rng, t.w, nw, -1, 1);
    trng_fill(&rng, t.b, t.out, -1, 1);
    trng_fill(&rng, t.r, ny, -1, 1);
    float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc(t.out, 4);
    op_linear_backward(t.N, t.in, t.out, t.x, t.w, t.r, dx, dw, db);
    /* linear in each argument: a large h only reduces the fp32 rounding noise */
    double ex = gradcheck(lin_loss, &t, t.x, dx, nx, 0.05, 0);
    double ew = gradcheck(lin_loss, &t, t.w, dw, nw, 0.05, 0);
    double eb = gradcheck(lin_loss, &t, t.b, db, t.out, 0.05, 0);
    CHECK_MSG(ex < 1e-3, "dx rel err %.3g", ex);
    CHECK_MSG(ew < 1e-3, "dw rel err %.3g", ew);
    CHECK_MSG(eb < 1e-3, "db rel err %.3g", eb);
    free(t.x), free(t.w), free(t.b), free(t.y), free(t.r), free(dx), free(dw), free(db);
}

static void backward_accumulates_and_null_skips(void) {
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, dy[4] = {1, 2, 3, 4};
    float dx[6], dw[6] = {0}, db[2] = {0};
    for (int i = 0; i < 6; i++) dx[i] = 100.0f;
    op_linear_backward(2, 3, 2, x, w, dy, dx, NULL, NULL);
    /* dx = 100 + dy w: row 0 = 1*[1,0,-1] + 2*[2,1,0] = [5, 2, -1] */
    CHECK_NEAR(dx[0], 105, 1e-5);
    CHECK_NEAR(dx[1], 102, 1e-5);
    CHECK_NEAR(dx[2], 99, 1e-5);
    op_linear_backward(2, 3, 2, x, w, dy, NULL, dw, db);
    op_linear_backward(2, 3, 2, x, w, dy, NULL, dw, db);
    /* dw[0,:] = 2 * (dy[0,0] x0 + dy[1,0] x1) = 2 * ([1,2,3] + 3*[4,5,6]) = [26, 34, 42] */
    CHECK_NEAR(dw[0], 26, 1e-5);
    CHECK_NEAR(dw[2], 42, 1e-5);
    CHECK_NEAR(db[0], 8, 1e-6);
    CHECK_NEAR(db[1], 12, 1e-6);
}

int main(void) {
    RUN(hand_derived_2x3_to_2);
    RUN(matches_numpy_reference);
    RUN(gradcheck_odd_sizes);
    RUN(backward_accumulates_and_null_skips);
    return test_summary();
}
