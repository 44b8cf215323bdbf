/* test_elementwise.c: add, mul and last-dim concat: hand values, accumulation and NULL
 * gradients, and finite-difference gradients on odd sizes. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "testlib.h"

static void add_and_mul_hand_values(void) {
    float a[3] = {1.5f, -2.0f, 0.0f}, b[3] = {2.0f, 3.0f, -7.0f}, y[3];
    op_add_forward(3, a, b, y);
    CHECK(y[0] == 3.5f && y[1] == 1.0f && y[2] == -7.0f);
    op_mul_forward(3, a, b, y);
    CHECK(y[0] == 3.0f && y[1] == -6.0f && y[2] == 0.0f);
    op_mul_forward(3, a, b, a); /* in place */
    CHECK(a[0] == 3.0f && a[1] == -6.0f && a[2] == 0.0f);
}

static void add_backward_passes_dy_to_both_and_accumulates(void) {
    float dy[3] = {1, 2, 3}, da[3] = {10, 10, 10}, db[3] = {0, 0, 0};
    op_add_backward(3, dy, da, db);
    CHECK(da[0] == 11 && da[1] == 12 && da[2] == 13);
    CHECK(db[0] == 1 && db[1] == 2 && db[2] == 3);
    op_add_backward(3, dy, NULL, db);
    CHECK(db[0] == 2 && db[1] == 4 && db[2] == 6);
}

static void mul_backward_hand_values_accumulate_and_skip_null(void) {
    float a[2] = {2, -3}, b[2] = {5, 7}, dy[2] = {1, 10};
    float da[2] = {100, 100}, db[2] = {0, 0};
    op_mul_backward(2, a, b, dy, da, db);
    CHECK(da[0] == 105 && da[1] == 170); /* += dy * b */
    CHECK(db[0] == 2 && db[1] == -30);   /* += dy * a */
    op_mul_backward(2, a, b, dy, NULL, db);
    CHECK(db[0] == 4 && db[1] == -60);
    /* y = a * a: passing the same gradient twice gives 2 a dy */
    float g[2] = {0, 0};
    op_mul_backward(2, a, a, dy, g, g);
    CHECK(g[0] == 4 && g[1] == -60);
}

typedef struct MulCtx {
    size_t n;
    float *a, *b, *y;
    const float *r;
} MulCtx;

static double mul_loss(void *p) {
    MulCtx *c = p;
    op_mul_forward(c->n, c->a, c->b, c->y);
    double s = 0;
    for (size_t i = 0; i < c->n; i++) s += (double)c->y[i] * c->r[i];
    return s;
}

static void mul_gradient_matches_finite_differences(void) {
    enum { N = 53 };
    TestRng rng = {5};
    float a[N], b[N], y[N], r[N], da[N] = {0}, db[N] = {0};
    trng_fill(&rng, a, N, -2, 2);
    trng_fill(&rng, b, N, -2, 2);
    trng_fill(&rng, r, N, -1, 1);
    op_mul_backward(N, a, b, r, da, db);
    MulCtx c = {N, a, b, y, r};
    double ea = gradcheck(mul_loss, &c, a, da, N, 1e-2, 0);
    double eb = gradcheck(mul_loss, &c, b, db, N, 1e-2, 0);
    CHECK_MSG(ea < 1e-3 && eb < 1e-3, "rel err a %g b %g", ea, eb);
}

static void concat_places_columns_and_splits_gradient(void) {
    /* a [2, 1], b [2, 3] -> y [2, 4] */
    float a[2] = {1, 2}, b[6] = {10, 11, 12, 20, 21, 22}, y[8];
    op_concat_forward(2, 1, 3, a, b, y);
    const float want[8] = {1, 10, 11, 12, 2, 20, 21, 22};
    for (int i = 0; i < 8; i++) CHECK(y[i] == want[i]);
    float dy[8] = {1, 2, 3, 4, 5, 6, 7, 8}, da[2] = {0.5f, 0.5f}, db[6] = {0};
    op_concat_backward(2, 1, 3, dy, da, db);
    CHECK(da[0] == 1.5f && da[1] == 5.5f);
    const float wdb[6] = {2, 3, 4, 6, 7, 8};
    for (int i = 0; i < 6; i++) CHECK(db[i] == wdb[i]);
    op_concat_backward(2, 1, 3, dy, NULL, db); /* only b */
    for (int i = 0; i < 6; i++) CHECK(db[i] == 2 * wdb[i]);
}

typedef struct CatCtx {
    int N, Da, Db;
    float *a, *b, *y;
    const float *r;
} CatCtx;

static double cat_loss(void *p) {
    CatCtx *c = p;
    op_concat_forward(c->N, c->Da, c->Db, c->a, c->b, c->y);
    double s = 0;
    for (int i = 0; i < c->N * (c->Da + c->Db); i++) s += (double)c->y[i] * c->r[i];
    return s;
}

static void concat_gradient_matches_finite_differences_large(void) {
    /* big enough for the parallel path: 301 x (97 + 89) */
    const int N = 301, Da = 97, Db = 89, D = Da + Db;
    TestRng rng = {6};
    float *a = malloc(sizeof(float) * N * Da), *b = malloc(sizeof(float) * N * Db);
    float *y = malloc(sizeof(float) * N * D), *r = malloc(sizeof(float) * N * D);
    float *da = calloc((size_t)N * Da, 4), *db = calloc((size_t)N * Db, 4);
    trng_fill(&rng, a, (size_t)N * Da, -1, 1);
    trng_fill(&rng, b, (size_t)N * Db, -1, 1);
    trng_fill(&rng, r, (size_t)N * D, -1, 1);
    op_concat_backward(N, Da, Db, r, da, db);
    CatCtx c = {N, Da, Db, a, b, y, r};
    double ea = gradcheck(cat_loss, &c, a, da, (size_t)N * Da, 1e-2, 200);
    double eb = gradcheck(cat_loss, &c, b, db, (size_t)N * Db, 1e-2, 200);
    CHECK_MSG(ea < 1e-3 && eb < 1e-3, "rel err a %g b %g", ea, eb);
    free(a), free(b), free(y), free(r), free(da), free(db);
}

/* op_zero clears exactly [p, p + bytes), also when split over threads (a size above the
 * parallel threshold and not a multiple of 64 bytes, at an offset that is not aligned). */
static void zero_clears_exactly_the_range(void) {
    const size_t sizes[] = {0, 1, 100, (size_t)3 << 20 | 37};
    op_set_threads(2);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        unsigned char *b = malloc(n + 16);
        if (!b) {
            CHECK(0);
            return;
        }
        memset(b, 0xAB, n + 16);
        op_zero(b + 5, n);
        size_t bad = 0;
        for (size_t i = 0; i < n + 16; i++) bad += b[i] != ((i >= 5 && i < 5 + n) ? 0 : 0xAB);
        CHECK_MSG(bad == 0, "%zu bytes: %zu wrong", n, bad);
        free(b);
    }
}

int main(void) {
    RUN(add_and_mul_hand_values);
    RUN(zero_clears_exactly_the_range);
    RUN(add_backward_passes_dy_to_both_and_accumulates);
    RUN(mul_backward_hand_values_accumulate_and_skip_null);
    RUN(mul_gradient_matches_finite_differences);
    RUN(concat_places_columns_and_splits_gradient);
    RUN(concat_gradient_matches_finite_differences_large);
    return test_summary();
}
