/* test_activation.c: ReLU, GELU (erf form) and tanh: hand values, reference values from
 * tools/gen_op_refs_b.py, finite-difference gradients, and accumulation into dx. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "opsb_ref.h"
#include "ops/ops.h"
#include "testlib.h"

typedef void (*FwdFn)(size_t n, const float *x, float *y);

/* L = sum_i y_i r_i with fixed random r: a loss whose gradient dy = r is dense. */
typedef struct UnaryCtx {
    FwdFn fwd;
    size_t n;
    float *x, *y;
    const float *r;
} UnaryCtx;

static double unary_loss(void *p) {
    UnaryCtx *c = p;
    c->fwd(c->n, c->x, c->y);
    double s = 0;
    for (size_t i = 0; i < c->n; i++) s += (double)c->y[i] * c->r[i];
    return s;
}

/* which: 0 relu, 1 gelu, 2 tanh. Returns gradcheck's relative error. */
static double unary_gradcheck(int which, size_t n, float lo, float hi, uint64_t seed) {
    TestRng rng = {seed};
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *dx = calloc(n, 4);
    trng_fill(&rng, x, n, lo, hi);
    trng_fill(&rng, r, n, -1, 1);
    if (which == 0) /* keep ReLU inputs away from the kink at 0 */
        for (size_t i = 0; i < n; i++) x[i] += x[i] >= 0 ? 0.05f : -0.05f;
    FwdFn f = which == 0 ? op_relu_forward : which == 1 ? op_gelu_forward : op_tanh_forward;
    f(n, x, y);
    if (which == 0) op_relu_backward(n, y, r, dx);
    else if (which == 1) op_gelu_backward(n, x, r, dx);
    else op_tanh_backward(n, y, r, dx);
    UnaryCtx c = {f, n, x, y, r};
    double e = gradcheck(unary_loss, &c, x, dx, n, 1e-2, 0);
    free(x), free(y), free(r), free(dx);
    return e;
}

static void relu_hand_values_and_in_place(void) {
    float x[5] = {-2.0f, -0.0f, 0.0f, 0.5f, 3.0f};
    const float want[5] = {0, 0, 0, 0.5f, 3.0f};
    float y[5];
    op_relu_forward(5, x, y);
    for (int i = 0; i < 5; i++) CHECK(y[i] == want[i]);
    op_relu_forward(5, x, x); /* in place */
    for (int i = 0; i < 5; i++) CHECK(x[i] == want[i]);
    /* dx starts at 1: backward adds dy only where the output is positive */
    float dy[5] = {10, 20, 30, 40, 50}, dx[5] = {1, 1, 1, 1, 1};
    op_relu_backward(5, y, dy, dx);
    const float wdx[5] = {1, 1, 1, 41, 51};
    for (int i = 0; i < 5; i++) CHECK(dx[i] == wdx[i]);
}

static void gelu_known_values(void) {
    /* GELU(x) = x Phi(x): Phi(1) = 0.841344746068543, Phi(-1) = 0.158655253931457,
     * Phi(2) = 0.977249868051821 (standard normal table) */
    float x[4] = {0.0f, 1.0f, -1.0f, 2.0f}, y[4];
    op_gelu_forward(4, x, y);
    CHECK_NEAR(y[0], 0.0, 0);
    CHECK_NEAR(y[1], 0.841344746068543, 1e-6);
    CHECK_NEAR(y[2], -0.158655253931457, 1e-6);
    CHECK_NEAR(y[3], 2 * 0.977249868051821, 2e-6);
    /* not the tanh approximation: at x = 1 that gives 0.841191990..., off by 1.5e-4 */
    CHECK(fabs(y[1] - 0.8411919906) > 1e-4);
}

static void gelu_and_tanh_match_reference(void) {
    enum { N = 37 };
    float x[N], y[N], dx[N] = {0}, ones[N];
    double want[N];
    if (ref_load_f("opsb_activation.txt", "x", x, N)) { CHECK(0); return; }
    for (int i = 0; i < N; i++) ones[i] = 1.0f;
    op_gelu_forward(N, x, y);
    CHECK(ref_load("opsb_activation.txt", "gelu", want, N) == 0);
    CHECK_MSG(ref_max_abs_diff(y, want, N) < 2e-6, "gelu max diff %g", ref_max_abs_diff(y, want, N));
    op_gelu_backward(N, x, ones, dx);
    CHECK(ref_load("opsb_activation.txt", "dgelu", want, N) == 0);
    CHECK_MSG(ref_max_abs_diff(dx, want, N) < 2e-6, "dgelu max diff %g", ref_max_abs_diff(dx, want, N));
    op_tanh_forward(N, x, y);
    CHECK(ref_load("opsb_activation.txt", "tanh", want, N) == 0);
    CHECK_MSG(ref_max_abs_diff(y, want, N) < 1e-6, "tanh max diff %g", ref_max_abs_diff(y, want, N));
}

static void relu_gradient_matches_finite_differences(void) {
    double e = unary_gradcheck(0, 101, -2, 2, 1);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void gelu_gradient_matches_finite_differences(void) {
    double e = unary_gradcheck(1, 101, -4, 4, 2);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void tanh_gradient_matches_finite_differences(void) {
    double e = unary_gradcheck(2, 101, -3, 3, 3);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

static void backward_accumulates_and_null_dx_is_skipped(void) {
    float x[3] = {-0.5f, 0.25f, 1.5f}, y[3], dy[3] = {1, 2, 3}, g[3] = {0}, acc[3];
    for (int which = 1; which <= 2; which++) {
        for (int i = 0; i < 3; i++) g[i] = 0.0f, acc[i] = 0.75f;
        if (which == 1) {
            op_gelu_backward(3, x, dy, g);
            op_gelu_backward(3, x, dy, acc);
            op_gelu_backward(3, x, dy, NULL);
        } else {
            op_tanh_forward(3, x, y);
            op_tanh_backward(3, y, dy, g);
            op_tanh_backward(3, y, dy, acc);
            op_tanh_backward(3, y, dy, NULL);
        }
        for (int i = 0; i < 3; i++) CHECK(acc[i] == 0.75f + g[i]);
    }
}

static void large_arrays_take_the_parallel_path_and_agree_elementwise(void) {
    const size_t n = 100003;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    TestRng rng = {9};
    trng_fill(&rng, x, n, -5, 5);
    op_gelu_forward(n, x, y);
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i], w = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        m = fmax(m, fabs(y[i] - w));
    }
    CHECK_MSG(m < 5e-6, "max diff %g", m);
    free(x), free(y);
}

int main(void) {
    RUN(relu_hand_values_and_in_place);
    RUN(gelu_known_values);
    RUN(gelu_and_tanh_match_reference);
    RUN(relu_gradient_matches_finite_differences);
    RUN(gelu_gradient_matches_finite_differences);
    RUN(tanh_gradient_matches_finite_differences);
    RUN(backward_accumulates_and_null_dx_is_skipped);
    RUN(large_arrays_take_the_parallel_path_and_agree_elementwise);
    return test_summary();
}
