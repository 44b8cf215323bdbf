/* test_pool.c: max-pool and global average pool against hand-derived cases, the numpy
 * reference (tests/ref/opsa_pool.txt) and central differences. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "opsa_ref.h"
#include "testlib.h"

static void shape_init_gives_resnet_stem_size(void) {
    PoolShape s;
    pool_shape_init(&s, 8, 64, 112, 112, 3, 2, 1);
    CHECK(s.P == 56 && s.Q == 56);
    pool_shape_init(&s, 1, 1, 7, 7, 2, 2, 0); /* floor, as ceil_mode = False */
    CHECK(s.P == 3 && s.Q == 3);
}

static void padding_acts_as_minus_infinity(void) {
    /* 2x2 all-negative image, 3x3 window, stride 1, pad 1: every window covers the whole
     * image, so every output is the image max -1 (a zero pad would give 0). */
    PoolShape s;
    pool_shape_init(&s, 1, 1, 2, 2, 3, 1, 1);
    float x[4] = {-4, -1, -3, -2}, y[4];
    int32_t am[4];
    op_maxpool_forward(&s, x, y, am);
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(y[i], -1.0, 0);
        CHECK(am[i] == 1);
    }
}

static void ties_route_gradient_to_first_maximum(void) {
    /* 2x2 window stride 2 on a 2x4 image: left window all 5s -> index 0 (first in scan
     * order); right window {1, 7; 7, 0} -> first 7 at flat index 3. */
    PoolShape s;
    pool_shape_init(&s, 1, 1, 2, 4, 2, 2, 0);
    float x[8] = {5, 5, 1, 7, 5, 5, 7, 0}, y[2], dy[2] = {10, 20}, dx[8] = {0};
    int32_t am[2];
    op_maxpool_forward(&s, x, y, am);
    CHECK(y[0] == 5 && y[1] == 7);
    CHECK(am[0] == 0 && am[1] == 3);
    op_maxpool_backward(&s, am, dy, dx);
    const float want[8] = {10, 0, 0, 20, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) CHECK_NEAR(dx[i], want[i], 0);
}

static void overlapping_windows_accumulate_gradient(void) {
    /* 3x3 image with its maximum 9 in the centre, window 3 stride 1 pad 1: the centre
     * wins all 9 windows, so dx[centre] = sum of dy = 1+..+9 = 45, plus the 1 already there. */
    PoolShape s;
    pool_shape_init(&s, 1, 1, 3, 3, 3, 1, 1);
    float x[9] = {0, 1, 0, 2, 9, 3, 0, 4, 0}, y[9], dy[9], dx[9];
    int32_t am[9];
    for (int i = 0; i < 9; i++) dy[i] = (float)(i + 1), dx[i] = 1.0f;
    op_maxpool_forward(&s, x, y, am);
    op_maxpool_backward(&s, am, dy, dx);
    CHECK_NEAR(dx[4], 46.0, 0);
    CHECK_NEAR(dx[0], 1.0, 0);
}

static void maxpool_matches_numpy_reference(void) {
    RefSet rs;
    if (ref_load(&rs, "opsa_pool.txt") != 0) {
        CHECK(!"reference file loads");
        return;
    }
    int ncases = 0;
    const char *cases[] = {"r3s2p1", "r2s2p0", "r3s1p1", "r3s2p1_23"};
    for (int k = 0; k < 4; k++) {
        char key[64];
        snprintf(key, sizeof key, "%s.shape", cases[k]);
        const RefTensor *sh = ref_get(&rs, key);
        if (!sh) { CHECK(!"case present"); continue; }
        PoolShape s;
        pool_shape_init(&s, (int)sh->v[0], (int)sh->v[1], (int)sh->v[2], (int)sh->v[3],
                        (int)sh->v[4], (int)sh->v[5], (int)sh->v[6]);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.C * s.P * s.Q;
        snprintf(key, sizeof key, "%s.x", cases[k]);
        float *x = ref_floats(ref_get(&rs, key));
        snprintf(key, sizeof key, "%s.dy", cases[k]);
        float *dy = ref_floats(ref_get(&rs, key));
        float *y = malloc(ny * 4), *dx = calloc(nx, 4);
        int32_t *am = malloc(ny * 4);
        op_maxpool_forward(&s, x, y, am);
        op_maxpool_backward(&s, am, dy, dx);
        snprintf(key, sizeof key, "%s.y", cases[k]);
        float *yref = ref_floats(ref_get(&rs, key));
        double e = yref ? rel_err(y, yref, ny) : 1.0; /* the max is one of the fp32 inputs */
        CHECK_MSG(e == 0.0, "%s: y rel err %.3g (max is exact)", cases[k], e);
        free(yref);
        snprintf(key, sizeof key, "%s.argmax", cases[k]);
        const RefTensor *ra = ref_get(&rs, key);
        size_t bad = 0;
        for (size_t i = 0; ra && i < ny; i++) bad += am[i] != (int32_t)ra->v[i];
        CHECK_MSG(ra && bad == 0, "%s: %zu argmax mismatches", cases[k], bad);
        snprintf(key, sizeof key, "%s.dx", cases[k]);
        e = ref_rel_err(dx, 1, ref_get(&rs, key));
        CHECK_MSG(e < 1e-7, "%s: dx rel err %.3g", cases[k], e);
        free(x), free(dy), free(y), free(dx), free(am);
        ncases++;
    }
    CHECK(ncases == 4);
    const RefTensor *gx = ref_get(&rs, "gap.x");
    if (gx) {
        float *x = ref_floats(gx), y[6];
        op_avgpool_global_forward(2, 3, 13, x, y);
        double e = ref_rel_err(y, 1, ref_get(&rs, "gap.y"));
        CHECK_MSG(e < 1e-6, "global avg pool rel err %.3g", e);
        free(x);
    }
    ref_free(&rs);
}

static void global_avgpool_hand_derived(void) {
    float x[2 * 3] = {1, 2, 3, 10, 20, 60}, y[2], dx[6];
    op_avgpool_global_forward(2, 1, 3, x, y);
    CHECK_NEAR(y[0], 2.0, 1e-6);
    CHECK_NEAR(y[1], 30.0, 1e-6);
    float dy[2] = {3, 6};
    for (int i = 0; i < 6; i++) dx[i] = 1.0f;
    op_avgpool_global_backward(2, 1, 3, dy, dx);
    for (int i = 0; i < 3; i++) CHECK_NEAR(dx[i], 2.0, 1e-6);
    for (int i = 3; i < 6; i++) CHECK_NEAR(dx[i], 3.0, 1e-6);
}

/* ---- gradient checks, L = sum(y * r) ---- */
typedef struct PoolCase {
    PoolShape s;
    float *x, *y, *r;
    int32_t *am;
    int avg; /* 1: global average pool on [N, C, H*W] */
} PoolCase;

static double pool_loss(void *ctx) {
    PoolCase *t = ctx;
    size_t ny;
    if (t->avg) {
        op_avgpool_global_forward(t->s.N, t->s.C, t->s.H * t->s.W, t->x, t->y);
        ny = (size_t)t->s.N * t->s.C;
    } else {
        op_maxpool_forward(&t->s, t->x, t->y, t->am);
        ny = (size_t)t->s.N * t->s.C * t->s.P * t->s.Q;
    }
    double l = 0;
    for (size_t i = 0; i < ny; i++) l += (double)t->y[i] * t->r[i];
    return l;
}

static void pool_gradcheck(int N, int C, int H, int W, int R, int st, int pad, int avg,
                           uint64_t seed) {
    PoolCase t = {.avg = avg};
    pool_shape_init(&t.s, N, C, H, W, R, st, pad);
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * t.s.P * t.s.Q;
    TestRng rng = {seed};
    t.x = malloc(nx * 4), t.y = malloc(ny * 4), t.r = malloc(ny * 4), t.am = malloc(ny * 4);
    /* Distinct values at least 0.01 apart (a shuffled ramp), so a perturbation of h =
     * 1e-3 never changes which element wins a window: max-pool is differentiable there. */
    for (size_t i = 0; i < nx; i++) t.x[i] = (float)i * 0.01f - 1.0f;
    for (size_t i = nx - 1; i > 0; i--) {
        size_t j = trng_u64(&rng) % (i + 1);
        float tmp = t.x[i];
        t.x[i] = t.x[j], t.x[j] = tmp;
    }
    trng_fill(&rng, t.r, ny, -1, 1);
    float *dx = calloc(nx, 4);
    pool_loss(&t);
    if (avg) op_avgpool_global_backward(N, C, H * W, t.r, dx);
    else op_maxpool_backward(&t.s, t.am, t.r, dx);
    double e = gradcheck(pool_loss, &t, t.x, dx, nx, 1e-3, 0);
    CHECK_MSG(e < 1e-3, "%s %dx%d R%d s%d p%d: dx rel err %.3g", avg ? "avg" : "max", H, W, R, st,
              pad, e);
    free(t.x), free(t.y), free(t.r), free(t.am), free(dx);
}

static void gradcheck_maxpool_3x3_stride2_pad1_odd(void) { pool_gradcheck(2, 3, 9, 7, 3, 2, 1, 0, 71); }
static void gradcheck_maxpool_2x2_stride2_floor(void) { pool_gradcheck(1, 2, 7, 5, 2, 2, 0, 0, 72); }
static void gradcheck_global_avgpool(void) { pool_gradcheck(3, 5, 3, 3, 1, 1, 0, 1, 73); }

int main(void) {
    RUN(shape_init_gives_resnet_stem_size);
    RUN(padding_acts_as_minus_infinity);
    RUN(ties_route_gradient_to_first_maximum);
    RUN(overlapping_windows_accumulate_gradient);
    RUN(maxpool_matches_numpy_reference);
    RUN(global_avgpool_hand_derived);
    RUN(gradcheck_maxpool_3x3_stride2_pad1_odd);
    RUN(gradcheck_maxpool_2x2_stride2_floor);
    RUN(gradcheck_global_avgpool);
    return test_summary();
}
