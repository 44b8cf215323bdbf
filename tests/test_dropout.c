/* test_dropout.c: inverted dropout with a counter-based mask: the mask does not depend on
 * the OpenMP thread count, keeps ~1-p of the elements, scales by 1/(1-p), follows the
 * documented hash bit for bit (so the GPU can reproduce it), and backward uses the mask. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <omp.h>

#include "ops/ops.h"
#include "testlib.h"

/* The hash as documented in src/ops/ops_internal.h, written out again here. */
static uint64_t sm64_fin(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int spec_keep(uint64_t seed, uint64_t i, float p) {
    uint64_t h = sm64_fin(sm64_fin(seed) + i * 0x9E3779B97F4A7C15ull);
    return (double)(h >> 40) / 16777216.0 >= p;
}

static void mask_is_independent_of_thread_count(void) {
    const size_t n = 200003;
    float *x = malloc(n * 4), *y1 = malloc(n * 4), *y4 = malloc(n * 4);
    uint8_t *m1 = malloc(n), *m4 = malloc(n);
    TestRng rng = {41};
    trng_fill(&rng, x, n, -1, 1);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    op_dropout_forward(n, 0.3f, 1234, x, y1, m1);
    omp_set_num_threads(4);
    op_dropout_forward(n, 0.3f, 1234, x, y4, m4);
    omp_set_num_threads(saved);
    CHECK(memcmp(m1, m4, n) == 0);
    CHECK(memcmp(y1, y4, n * 4) == 0);
    free(x), free(y1), free(y4), free(m1), free(m4);
}

static void mask_follows_the_documented_hash(void) {
    const size_t n = 4097;
    float x[4097], y[4097];
    uint8_t m[4097];
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    op_dropout_forward(n, 0.25f, 77, x, y, m);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += m[i] != spec_keep(77, i, 0.25f);
    CHECK_MSG(bad == 0, "%zu of %zu mask bits differ from the spec", bad, n);
}

static void keep_fraction_and_scaling_match_p(void) {
    const size_t n = 1000003;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    uint8_t *m = malloc(n);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f;
    const float ps[3] = {0.1f, 0.5f, 0.9f};
    for (int k = 0; k < 3; k++) {
        const float p = ps[k];
        op_dropout_forward(n, p, 99 + k, x, y, m);
        size_t kept = 0, bad = 0;
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            kept += m[i];
            sum += y[i];
            /* kept elements are x / (1 - p), dropped ones exactly 0 */
            if (m[i] ? fabsf(y[i] - 1.0f / (1.0f - p)) > 1e-6f : y[i] != 0.0f) bad++;
        }
        const double frac = (double)kept / n, sd = sqrt(p * (1 - p) / n);
        CHECK_MSG(fabs(frac - (1 - p)) < 5 * sd, "p %g: kept %g", p, frac);
        CHECK(bad == 0);
        /* inverted scaling keeps the expectation: mean(y) ~ mean(x) = 1 */
        CHECK_MSG(fabs(sum / n - 1.0) < 5 * sd / (1 - p), "p %g: mean %g", p, sum / n);
    }
    free(x), free(y), free(m);
}

static void seeds_give_different_uncorrelated_masks(void) {
    const size_t n = 100003;
    float *x = calloc(n, 4), *y = malloc(n * 4);
    uint8_t *a = malloc(n), *b = malloc(n), *c = malloc(n);
    op_dropout_forward(n, 0.5f, 1, x, y, a);
    op_dropout_forward(n, 0.5f, 2, x, y, b);
    op_dropout_forward(n, 0.5f, 1, x, y, c);
    CHECK(memcmp(a, c, n) == 0); /* same seed, same mask */
    size_t agree = 0;
    for (size_t i = 0; i < n; i++) agree += a[i] == b[i];
    /* independent masks at p = 0.5 agree on half the elements */
    CHECK_MSG(fabs((double)agree / n - 0.5) < 5 * 0.5 / sqrt((double)n), "agree %zu", agree);
    free(x), free(y), free(a), free(b), free(c);
}

static void p_zero_copies_and_p_one_zeroes(void) {
    float x[5] = {1, -2, 3, -4, 5}, y[5];
    uint8_t m[5];
    op_dropout_forward(5, 0.0f, 3, x, y, m);
    for (int i = 0; i < 5; i++) CHECK(y[i] == x[i] && m[i] == 1);
    float dy[5] = {1, 1, 1, 1, 1}, dx[5] = {0};
    op_dropout_backward(5, 0.0f, NULL, dy, dx);
    for (int i = 0; i < 5; i++) CHECK(dx[i] == 1.0f);
    op_dropout_forward(5, 1.0f, 3, x, y, m);
    for (int i = 0; i < 5; i++) CHECK(y[i] == 0.0f && m[i] == 0);
}

typedef struct DoCtx {
    size_t n;
    float p;
    float *x, *y;
    uint8_t *m;
    const float *r;
} DoCtx;

static double do_loss(void *pp) {
    DoCtx *c = pp;
    op_dropout_forward(c->n, c->p, 555, c->x, c->y, c->m);
    double s = 0;
    for (size_t i = 0; i < c->n; i++) s += (double)c->y[i] * c->r[i];
    return s;
}

static void backward_uses_mask_and_matches_finite_differences(void) {
    enum { N = 61 };
    TestRng rng = {42};
    float x[N], y[N], r[N], dx[N];
    uint8_t m[N];
    trng_fill(&rng, x, N, -1, 1);
    trng_fill(&rng, r, N, -1, 1);
    for (int i = 0; i < N; i++) dx[i] = 1.0f;
    op_dropout_forward(N, 0.4f, 555, x, y, m);
    op_dropout_backward(N, 0.4f, m, r, dx);
    int dropped = 0;
    for (int i = 0; i < N; i++) {
        CHECK_NEAR(dx[i], m[i] ? 1.0f + r[i] / 0.6f : 1.0f, 1e-6); /* accumulated */
        dx[i] -= 1.0f;
        dropped += !m[i];
    }
    CHECK(dropped > 0 && dropped < N);
    DoCtx c = {N, 0.4f, x, y, m, r};
    double e = gradcheck(do_loss, &c, x, dx, N, 1e-2, 0);
    CHECK_MSG(e < 1e-3, "rel err %g", e);
}

int main(void) {
    RUN(mask_is_independent_of_thread_count);
    RUN(mask_follows_the_documented_hash);
    RUN(keep_fraction_and_scaling_match_p);
    RUN(seeds_give_different_uncorrelated_masks);
    RUN(p_zero_copies_and_p_one_zeroes);
    RUN(backward_uses_mask_and_matches_finite_differences);
    return test_summary();
}
