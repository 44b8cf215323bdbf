/* test_conv2d.c: conv2d forward/backward against a hand-derived case, against the numpy
 * tap-sum reference (tests/ref/opsa_conv2d.txt), and against central differences. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "opsa_ref.h"
#include "testlib.h"

/* ---- a conv problem with its own buffers ---- */
typedef struct Conv {
    ConvShape s;
    int bias;
    float *x, *w, *b, *y, *ws, *dx, *dw, *db, *r;
    size_t nx, nw, ny;
} Conv;

static void conv_alloc(Conv *c, int N, int C, int H, int W, int K, int R, int S, int st, int pad,
                       int bias) {
    conv_shape_init(&c->s, N, C, H, W, K, R, S, st, pad);
    c->bias = bias;
    c->nx = (size_t)N * C * H * W;
    c->nw = (size_t)K * C * R * S;
    c->ny = (size_t)N * K * c->s.P * c->s.Q;
    c->x = calloc(c->nx, sizeof(float));
    c->w = calloc(c->nw, sizeof(float));
    c->b = calloc((size_t)K, sizeof(float));
    c->y = calloc(c->ny, sizeof(float));
    c->r = calloc(c->ny, sizeof(float));
    c->dx = calloc(c->nx, sizeof(float));
    c->dw = calloc(c->nw, sizeof(float));
    c->db = calloc((size_t)K, sizeof(float));
    c->ws = calloc(op_conv2d_workspace(&c->s) + 1, sizeof(float));
}

static void conv_release(Conv *c) {
    free(c->x), free(c->w), free(c->b), free(c->y), free(c->r);
    free(c->dx), free(c->dw), free(c->db), free(c->ws);
}

static void conv_fwd(Conv *c) {
    op_conv2d_forward(&c->s, c->x, c->w, c->bias ? c->b : NULL, c->y, c->ws);
}

/* L = sum(y * r) in double: a random projection so every gradient entry matters. */
static double conv_loss(void *ctx) {
    Conv *c = ctx;
    conv_fwd(c);
    double l = 0;
    for (size_t i = 0; i < c->ny; i++) l += (double)c->y[i] * c->r[i];
    return l;
}

static void hand_derived_3x3_box_filter(void) {
    /* x = 1..9 on a 3x3 image, w = all ones 3x3, pad 1: each output is the sum of the
     * in-image 3x3 neighbourhood: corners 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24,
     * 5+6+8+9 = 28; edges 1+2+3+4+5+6 = 21, 1+2+4+5+7+8 = 27, 2+3+5+6+8+9 = 33,
     * 4+5+6+7+8+9 = 39; centre 45. Bias 0.5 on top. */
    Conv c;
    conv_alloc(&c, 1, 1, 3, 3, 1, 3, 3, 1, 1, 1);
    for (int i = 0; i < 9; i++) c.x[i] = (float)(i + 1), c.w[i] = 1.0f;
    c.b[0] = 0.5f;
    conv_fwd(&c);
    const float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++) CHECK_NEAR(c.y[i], want[i] + 0.5f, 1e-5);
    /* Backward with dy = 1: dw[r,s] = sum of x over the outputs tap (r,s) reaches;
     * dw[1,1] (centre tap) = sum x = 45; dw[0,0] reads x[p-1, q-1] = rows/cols 0..1 = 12.
     * dx[i] = number of outputs that see x[i] = 4 at corners, 6 at edges, 9 at centre. */
    for (int i = 0; i < 9; i++) c.r[i] = 1.0f;
    op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, c.dw, c.db, c.ws);
    CHECK_NEAR(c.dw[4], 45.0, 1e-5);
    CHECK_NEAR(c.dw[0], 12.0, 1e-5);
    CHECK_NEAR(c.dw[8], 28.0, 1e-5);
    CHECK_NEAR(c.db[0], 9.0, 1e-6);
    const float wdx[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    for (int i = 0; i < 9; i++) CHECK_NEAR(c.dx[i], wdx[i], 1e-6);
    conv_release(&c);
}

static void shape_init_gives_resnet_sizes(void) {
    ConvShape s;
    conv_shape_init(&s, 8, 3, 224, 224, 64, 7, 7, 2, 3); /* stem */
    CHECK(s.P == 112 && s.Q == 112);
    conv_shape_init(&s, 8, 128, 56, 56, 128, 3, 3, 2, 1); /* v1.5 stride on the 3x3 */
    CHECK(s.P == 28 && s.Q == 28);
    conv_shape_init(&s, 8, 256, 56, 56, 512, 1, 1, 2, 0); /* downsample shortcut */
    CHECK(s.P == 28 && s.Q == 28);
    conv_shape_init(&s, 2, 3, 7, 9, 5, 3, 3, 2, 1);
    CHECK(s.P == 4 && s.Q == 5);
}

static void matches_numpy_reference_forward_and_backward(void) {
    RefSet rs;
    if (ref_load(&rs, "opsa_conv2d.txt") != 0) {
        CHECK(!"reference file loads");
        return;
    }
    int ncases = 0;
    for (int ti = 0; ti < rs.n; ti++) {
        const char *nm = rs.t[ti].name;
        size_t L = strlen(nm);
        if (L < 6 || strcmp(nm + L - 6, ".shape") != 0) continue;
        char cs[64], key[128];
        snprintf(cs, sizeof cs, "%.*s", (int)(L - 6), nm);
        const double *d = rs.t[ti].v;
        Conv c;
        conv_alloc(&c, (int)d[0], (int)d[1], (int)d[2], (int)d[3], (int)d[4], (int)d[5], (int)d[6],
                   (int)d[7], (int)d[8], (int)d[9]);
        ref_formula_fill(c.x, c.nx, 1, 1024.0f);
        ref_formula_fill(c.w, c.nw, 2, 2048.0f);
        if (c.bias) ref_formula_fill(c.b, (size_t)c.s.K, 3, 1024.0f);
        ref_formula_fill(c.r, c.ny, 4, 1024.0f); /* dy */
        conv_fwd(&c);
        op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, c.dw, c.bias ? c.db : NULL, c.ws);
        struct { const char *t; const float *a; } outs[] = {{"y", c.y}, {"dx", c.dx}};
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof key, "%s.%s", cs, outs[k].t);
            size_t stride = 1;
            const RefTensor *r = NULL;
            for (int j = 0; j < rs.n && !r; j++)
                if (strcmp(rs.t[j].name, key) == 0) r = &rs.t[j];
            if (!r) {
                snprintf(key, sizeof key, "%s.%s.sub7", cs, outs[k].t);
                r = ref_get(&rs, key);
                stride = 7;
            }
            double e = ref_rel_err(outs[k].a, stride, r);
            CHECK_MSG(e < 1e-5, "case %s: %s rel err %.3g", cs, outs[k].t, e);
        }
        snprintf(key, sizeof key, "%s.dw", cs);
        double e = ref_rel_err(c.dw, 1, ref_get(&rs, key));
        CHECK_MSG(e < 1e-5, "case %s: dw rel err %.3g", cs, e);
        if (c.bias) {
            snprintf(key, sizeof key, "%s.db", cs);
            e = ref_rel_err(c.db, 1, ref_get(&rs, key));
            CHECK_MSG(e < 1e-5, "case %s: db rel err %.3g", cs, e);
        }
        conv_release(&c);
        ncases++;
    }
    CHECK(ncases >= 9);
    ref_free(&rs);
}

/* Gradient check of x, w and b for one configuration. */
static void gradcheck_case(int N, int C, int H, int W, int K, int R, int S, int st, int pad,
                           int bias, uint64_t seed) {
    Conv c;
    TestRng rng = {seed};
    conv_alloc(&c, N, C, H, W, K, R, S, st, pad, bias);
    trng_fill(&rng, c.x, c.nx, -1, 1);
    trng_fill(&rng, c.w, c.nw, -0.5f, 0.5f);
    trng_fill(&rng, c.b, (size_t)K, -1, 1);
    trng_fill(&rng, c.r, c.ny, -1, 1);
    op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, c.dw, bias ? c.db : NULL, c.ws);
    /* The loss is linear in each argument: h only trades rounding noise of the fp32
     * forward (~1e-7 |L| / h) against nothing, so a large h is the accurate choice. */
    double ex = gradcheck(conv_loss, &c, c.x, c.dx, c.nx, 0.05, 300);
    double ew = gradcheck(conv_loss, &c, c.w, c.dw, c.nw, 0.05, 300);
    CHECK_MSG(ex < 1e-3, "N%d C%d %dx%d K%d %dx%d s%d p%d: dx rel err %.3g", N, C, H, W, K, R, S,
              st, pad, ex);
    CHECK_MSG(ew < 1e-3, "N%d C%d %dx%d K%d %dx%d s%d p%d: dw rel err %.3g", N, C, H, W, K, R, S,
              st, pad, ew);
    if (bias) {
        double eb = gradcheck(conv_loss, &c, c.b, c.db, (size_t)K, 0.05, 0);
        CHECK_MSG(eb < 1e-3, "db rel err %.3g", eb);
    }
    conv_release(&c);
}

static void gradcheck_3x3_stride2_pad1_odd_sizes(void) { gradcheck_case(3, 3, 9, 7, 5, 3, 3, 2, 1, 1, 11); }
static void gradcheck_3x3_stride1_pad1_grouped(void) { gradcheck_case(5, 2, 5, 7, 3, 3, 3, 1, 1, 0, 12); }
static void gradcheck_rect_5x3_kernel_pad2(void) { gradcheck_case(2, 3, 7, 6, 3, 5, 3, 1, 2, 1, 13); }
static void gradcheck_1x1_stride1_pointwise(void) { gradcheck_case(3, 5, 5, 3, 7, 1, 1, 1, 0, 1, 14); }
static void gradcheck_1x1_stride2_downsample(void) { gradcheck_case(2, 3, 7, 9, 5, 1, 1, 2, 0, 0, 15); }
static void gradcheck_7x7_stride2_pad3_stem(void) { gradcheck_case(1, 3, 13, 11, 3, 7, 7, 2, 3, 1, 16); }
static void gradcheck_large_map_one_image_per_gemm(void) {
    /* P*Q >= 1024: the GEMM writes y directly (no grouping); 2 images. */
    gradcheck_case(2, 2, 33, 31, 3, 3, 3, 1, 1, 1, 17);
    gradcheck_case(2, 2, 33, 32, 3, 1, 1, 1, 0, 1, 18);
}

static void backward_accumulates_and_skips_null(void) {
    Conv c;
    TestRng rng = {21};
    conv_alloc(&c, 3, 2, 5, 5, 3, 3, 3, 2, 1, 1);
    trng_fill(&rng, c.x, c.nx, -1, 1);
    trng_fill(&rng, c.w, c.nw, -1, 1);
    trng_fill(&rng, c.r, c.ny, -1, 1);
    op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, c.dw, c.db, c.ws);
    float *dx1 = malloc(c.nx * 4), *dw1 = malloc(c.nw * 4), db1 = c.db[0];
    memcpy(dx1, c.dx, c.nx * 4), memcpy(dw1, c.dw, c.nw * 4);
    /* Second call adds the same again. */
    op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, c.dw, c.db, c.ws);
    for (size_t i = 0; i < c.nx; i++) CHECK_NEAR(c.dx[i], 2 * dx1[i], 1e-5);
    for (size_t i = 0; i < c.nw; i++) CHECK_NEAR(c.dw[i], 2 * dw1[i], 1e-4);
    CHECK_NEAR(c.db[0], 2 * db1, 1e-5);
    /* NULL dx and db: dw alone still accumulates; dx untouched. */
    op_conv2d_backward(&c.s, c.x, c.w, c.r, NULL, c.dw, NULL, c.ws);
    for (size_t i = 0; i < c.nw; i++) CHECK_NEAR(c.dw[i], 3 * dw1[i], 1e-4);
    CHECK_NEAR(c.db[0], 2 * db1, 1e-5);
    /* Only dx. */
    op_conv2d_backward(&c.s, c.x, c.w, c.r, c.dx, NULL, NULL, c.ws);
    for (size_t i = 0; i < c.nx; i++) CHECK_NEAR(c.dx[i], 3 * dx1[i], 1e-5);
    free(dx1), free(dw1);
    conv_release(&c);
}

static void workspace_garbage_does_not_leak_into_output(void) {
    /* im2col must write every column element (zeros included): fill ws with NaN first. */
    Conv c;
    TestRng rng = {31};
    conv_alloc(&c, 3, 2, 6, 5, 4, 3, 3, 2, 1, 1);
    trng_fill(&rng, c.x, c.nx, -1, 1);
    trng_fill(&rng, c.w, c.nw, -1, 1);
    trng_fill(&rng, c.b, 4, -1, 1);
    size_t nws = op_conv2d_workspace(&c.s);
    CHECK(nws > 0);
    conv_fwd(&c);
    float *y0 = malloc(c.ny * 4);
    memcpy(y0, c.y, c.ny * 4);
    for (size_t i = 0; i < nws; i++) c.ws[i] = NAN;
    conv_fwd(&c);
    CHECK(rel_err(c.y, y0, c.ny) == 0.0);
    free(y0);
    conv_release(&c);
}

static void batched_call_equals_per_image_calls(void) {
    /* 7x7 maps: images are grouped into one GEMM; per-image calls take the N = 1 path. */
    Conv c, one;
    TestRng rng = {41};
    conv_alloc(&c, 6, 3, 7, 7, 4, 3, 3, 1, 1, 1);
    conv_alloc(&one, 1, 3, 7, 7, 4, 3, 3, 1, 1, 1);
    trng_fill(&rng, c.x, c.nx, -1, 1);
    trng_fill(&rng, c.w, c.nw, -1, 1);
    trng_fill(&rng, c.b, 4, -1, 1);
    memcpy(one.w, c.w, c.nw * 4), memcpy(one.b, c.b, 16);
    conv_fwd(&c);
    for (int n = 0; n < 6; n++) {
        memcpy(one.x, c.x + n * one.nx, one.nx * 4);
        conv_fwd(&one);
        CHECK(rel_err(one.y, c.y + n * one.ny, one.ny) < 1e-6);
    }
    conv_release(&c), conv_release(&one);
}

static void pointwise_large_map_needs_no_workspace(void) {
    ConvShape s;
    conv_shape_init(&s, 8, 256, 56, 56, 64, 1, 1, 1, 0);
    CHECK(op_conv2d_workspace(&s) == 0);
    conv_shape_init(&s, 8, 64, 56, 56, 64, 3, 3, 1, 1);
    CHECK(op_conv2d_workspace(&s) == (size_t)64 * 9 * 56 * 56);
}

int main(void) {
    RUN(hand_derived_3x3_box_filter);
    RUN(shape_init_gives_resnet_sizes);
    RUN(matches_numpy_reference_forward_and_backward);
    RUN(gradcheck_3x3_stride2_pad1_odd_sizes);
    RUN(gradcheck_3x3_stride1_pad1_grouped);
    RUN(gradcheck_rect_5x3_kernel_pad2);
    RUN(gradcheck_1x1_stride1_pointwise);
    RUN(gradcheck_1x1_stride2_downsample);
    RUN(gradcheck_7x7_stride2_pad3_stem);
    RUN(gradcheck_large_map_one_image_per_gemm);
    RUN(backward_accumulates_and_skips_null);
    RUN(workspace_garbage_does_not_leak_into_output);
    RUN(batched_call_equals_per_image_calls);
    RUN(pointwise_large_map_needs_no_workspace);
    return test_summary();
}
