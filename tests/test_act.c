/* test_act.c: the CPU reference of the activation-format ops (act.c, batchnorm_act.c,
 * conv2d_act.c). For each op:
 *  - import / export / relu / add / weight prep against the layout formulas and the
 *    roundings written out here element by element;
 *  - NHWC fp32 (and the plain format through the act entries) equals the plain fp32 NCHW
 *    op after reordering (the plain op is the reference); for BN and the pools to the bit
 *    (one body serves both);
 *  - central differences in NHWC fp32 for conv, BN train / eval, max-pool, avg-pool;
 *  - bf16 / fp16 storage (NHWC, and bf16 NCHW) within 1e-2 / 2e-3 of fp32, really stored
 *    in 2 bytes (guard bytes after the buffer stay untouched, every value representable)
 *    and really rounded (the result differs from the fp32 one);
 *  - backward accumulates into non-zero dx / dwp / dgamma / dbeta;
 *  - the pretend device's wrappers of the new Backend entries translate every tensor.
 * Shapes are scaled-down ResNet ones: 3x3/2 pad 1, 1x1/2, 7x7/2 pad 3 stem, max-pool 3x3/2. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include "ops/ops.h"
#include "pretend_device.h"
#include "testlib.h"
#include "util/half.h"

static const ActFmt PLAIN = {0, DT_F32}, NHWC32 = {1, DT_F32}, NHWC_BF = {1, DT_BF16},
                    NHWC_H = {1, DT_F16}, NCHW_BF = {0, DT_BF16};

#define GUARD 64
static size_t esz(DType dt) { return dt == DT_F32 ? 4 : 2; }

/* n zeroed elements of dt followed by GUARD sentinel bytes (a write past n elements, e.g.
 * an op storing 4-byte floats into a 2-byte buffer, shows up as a changed guard). */
static void *fbuf(DType dt, size_t n) {
    unsigned char *p = malloc(n * esz(dt) + GUARD);
    memset(p, 0, n * esz(dt));
    memset(p + n * esz(dt), 0xA5, GUARD);
    return p;
}
static int guard_ok(const void *p, DType dt, size_t n) {
    const unsigned char *g = (const unsigned char *)p + n * esz(dt);
    for (int i = 0; i < GUARD; i++)
        if (g[i] != 0xA5) return 0;
    return 1;
}
static float *fzero(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *frand(TestRng *r, size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof(float));
    trng_fill(r, x, n, lo, hi);
    return x;
}
static void *fmt_in(const ActFmt *f, int N, int C, int HW, const float *x) {
    void *p = fbuf(f->dt, (size_t)N * C * HW);
    op_act_import(f, N, C, HW, x, p);
    return p;
}
static float *fmt_out(const ActFmt *f, int N, int C, int HW, const void *x) {
    float *y = fzero((size_t)N * C * HW);
    op_act_export(f, N, C, HW, x, y);
    return y;
}
/* the value v rounded to dt and widened back */
static float rnd(DType dt, float v) {
    return dt == DT_BF16 ? bf16_to_f32(f32_to_bf16(v)) : dt == DT_F16 ? f16_to_f32(f32_to_f16(v)) : v;
}
/* every value exactly representable in dt (for bf16: the low 16 bits are zero) */
static int representable(DType dt, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &y[i], 4);
        if (dt == DT_BF16 && (b & 0xffffu)) return 0;
        if (dt == DT_F16 && rnd(DT_F16, y[i]) != y[i]) return 0;
    }
    return 1;
}
static double tol_of(DType dt) { return dt == DT_BF16 ? 1e-2 : dt == DT_F16 ? 2e-3 : 1e-6; }
static const char *fmt_name(const ActFmt *f) {
    static const char *nm[2][3] = {{"nchw-f32", "nchw-bf16", "nchw-f16"}, {"nhwc-f32", "nhwc-bf16", "nhwc-f16"}};
    return nm[f->nhwc][f->dt];
}

/* Compares a format's result with the fp32 NCHW reference: within tol_of(dt), and for a
 * half type, representable and not equal to the fp32 result (so it was rounded). */
static void check_vs_ref(const ActFmt *f, const char *what, const float *got, const float *ref, size_t n,
                         int check_repr) {
    double e = rel_err(got, ref, n);
    CHECK_MSG(e < tol_of(f->dt), "%s %s: rel err %g", fmt_name(f), what, e);
    if (f->dt != DT_F32) {
        CHECK_MSG(e > 0, "%s %s: identical to fp32 (not stored in half precision?)", fmt_name(f), what);
        if (check_repr) CHECK_MSG(representable(f->dt, got, n), "%s %s: a value not in %s", fmt_name(f), what, fmt_name(f));
    }
}

/* acc is round(init) + fresh within the format's tolerance (in norm: a gradient that
 * several terms reach is rounded after each, in storage type), and is neither init alone
 * (backward wrote nothing) nor fresh alone (backward overwrote). fresh is the same
 * backward run from zero. */
static int accumulated(DType dt, const float *acc, const float *init, const float *fresh, size_t n) {
    float *want = malloc(n * sizeof(float)), *init_r = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) init_r[i] = rnd(dt, init[i]), want[i] = init_r[i] + fresh[i];
    double e = rel_err(acc, want, n), e_init = rel_err(acc, init_r, n), e_fresh = rel_err(acc, fresh, n);
    free(want), free(init_r);
    if (e < tol_of(dt) && e_init > 10 * tol_of(dt) && e_fresh > 10 * tol_of(dt)) return 1;
    fprintf(stderr, "  accumulated: rel err %g (vs init alone %g, fresh alone %g)\n", e, e_init, e_fresh);
    return 0;
}

/* ------------------------------------------------------------ import / export */

static void import_export_follow_the_layout_formulas(void) {
    const int N = 2, C = 3, HW = 5;
    const size_t n = (size_t)N * C * HW;
    TestRng r = {1};
    float *x = frand(&r, n, -3, 3), *x2 = frand(&r, n, -1, 1);
    const ActFmt fmts[] = {NHWC32, NHWC_BF, NHWC_H, NCHW_BF};
    for (int k = 0; k < 4; k++) {
        const ActFmt *f = &fmts[k];
        void *p = fmt_in(f, N, C, HW, x);
        int bad = 0;
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++)
                for (int j = 0; j < HW; j++) {
                    size_t src = ((size_t)i * C + c) * HW + j;
                    size_t dst = f->nhwc ? ((size_t)i * HW + j) * C + c : src;
                    if (f->dt == DT_F32 && ((float *)p)[dst] != x[src]) bad++;
                    if (f->dt == DT_BF16 && ((uint16_t *)p)[dst] != f32_to_bf16(x[src])) bad++;
                    if (f->dt == DT_F16 && ((uint16_t *)p)[dst] != f32_to_f16(x[src])) bad++;
                }
        CHECK_MSG(bad == 0, "%s import: %d misplaced", fmt_name(f), bad);
        float *y = fmt_out(f, N, C, HW, p);
        for (size_t i = 0; i < n; i++) bad += y[i] != rnd(f->dt, x[i]);
        CHECK_MSG(bad == 0, "%s export: %d wrong", fmt_name(f), bad);
        op_act_import_add(f, N, C, HW, x2, p); /* y += x2, rounded once */
        float *z = fmt_out(f, N, C, HW, p);
        for (size_t i = 0; i < n; i++) bad += z[i] != rnd(f->dt, rnd(f->dt, x[i]) + x2[i]);
        CHECK_MSG(bad == 0, "%s import_add: %d wrong", fmt_name(f), bad);
        CHECK(guard_ok(p, f->dt, n));
        free(p), free(y), free(z);
    }
    free(x), free(x2);
}

/* ------------------------------------------------------------ element-wise */

static void relu_and_add_round_in_storage_type(void) {
    const size_t n = 1000;
    TestRng r = {2};
    float *x = frand(&r, n, -2, 2), *b = frand(&r, n, -2, 2), *dy = frand(&r, n, -1, 1),
          *dx0 = frand(&r, n, -1, 1);
    const DType dts[] = {DT_F32, DT_BF16, DT_F16};
    for (int k = 0; k < 3; k++) {
        const ActFmt f = {0, dts[k]};
        void *px = fmt_in(&f, 1, 1, (int)n, x), *pb = fmt_in(&f, 1, 1, (int)n, b);
        void *py = fbuf(f.dt, n), *pdy = fmt_in(&f, 1, 1, (int)n, dy), *pdx = fmt_in(&f, 1, 1, (int)n, dx0);
        void *pa = fbuf(f.dt, n);
        op_act_relu_forward(f.dt, n, px, py);
        op_act_relu_backward(f.dt, n, py, pdy, pdx);
        op_act_add_forward(f.dt, n, px, pb, pa);
        float *y = fmt_out(&f, 1, 1, (int)n, py), *dx = fmt_out(&f, 1, 1, (int)n, pdx), *a = fmt_out(&f, 1, 1, (int)n, pa);
        int bad_y = 0, bad_dx = 0, bad_a = 0;
        for (size_t i = 0; i < n; i++) {
            float xi = rnd(f.dt, x[i]);
            float yi = xi > 0 ? xi : 0;
            bad_y += y[i] != yi;
            bad_dx += dx[i] != rnd(f.dt, rnd(f.dt, dx0[i]) + (yi > 0 ? rnd(f.dt, dy[i]) : 0.0f));
            bad_a += a[i] != rnd(f.dt, xi + rnd(f.dt, b[i]));
        }
        CHECK_MSG(bad_y == 0 && bad_dx == 0 && bad_a == 0, "dt %d: relu %d, relu' %d, add %d wrong", (int)f.dt,
                  bad_y, bad_dx, bad_a);
        /* in place: y = relu(y) is a no-op on a ReLU output, x = relu(x) equals py */
        op_act_relu_forward(f.dt, n, px, px);
        CHECK(memcmp(px, py, n * esz(f.dt)) == 0);
        CHECK(guard_ok(py, f.dt, n) && guard_ok(pdx, f.dt, n) && guard_ok(pa, f.dt, n));
        free(px), free(pb), free(py), free(pdy), free(pdx), free(pa), free(y), free(dx), free(a);
    }
    free(x), free(b), free(dy), free(dx0);
}

/* ------------------------------------------------------------ convolution */

typedef struct ConvCase { int N, C, H, W, K, R, stride, pad; } ConvCase;
static const ConvCase k_convs[] = {
    {2, 8, 9, 9, 6, 3, 2, 1},   /* bottleneck 3x3 stride 2 (v1.5) */
    {2, 8, 9, 9, 12, 1, 2, 0},  /* downsample 1x1 stride 2 */
    {2, 3, 15, 15, 8, 7, 2, 3}, /* stem 7x7 stride 2 pad 3 */
    {2, 8, 7, 7, 8, 3, 1, 1},   /* 3x3 stride 1 */
    {3, 8, 5, 5, 16, 1, 1, 0},  /* pointwise 1x1 */
};
#define N_CONVS (int)(sizeof k_convs / sizeof k_convs[0])

static ConvShape conv_of(const ConvCase *c, ActFmt f) {
    ConvShape s;
    conv_shape_init(&s, c->N, c->C, c->H, c->W, c->K, c->R, c->R, c->stride, c->pad);
    s.f = f;
    return s;
}
static size_t nx_of(const ConvShape *s) { return (size_t)s->N * s->C * s->H * s->W; }
static size_t ny_of(const ConvShape *s) { return (size_t)s->N * s->K * s->P * s->Q; }
static size_t nw_of(const ConvShape *s) { return (size_t)s->K * s->C * s->R * s->S; }

/* Runs forward and backward in s->f from fp32 NCHW inputs; results exported to fp32 NCHW
 * (dw = dw_init + grad_add(dwp)); dx starts from dx_init, dwp from prep(dwp_init) (NULL:
 * zero). Returns 0 if a guard was overwritten. */
static int conv_run(const ConvShape *s, const float *x, const float *w, const float *dy, const float *dx_init,
                    const float *dwp_init, float *y, float *dx, float *dw) {
    const ActFmt *f = &s->f;
    const int HW = s->H * s->W, PQ = s->P * s->Q;
    void *px = fmt_in(f, s->N, s->C, HW, x), *pwp = fbuf(f->dt, nw_of(s)), *py = fbuf(f->dt, ny_of(s));
    void *pdy = fmt_in(f, s->N, s->K, PQ, dy), *pdx = fbuf(f->dt, nx_of(s)), *pdw = fbuf(f->dt, nw_of(s));
    if (dx_init) op_act_import(f, s->N, s->C, HW, dx_init, pdx);
    if (dwp_init) op_conv_weight_prep(s, dwp_init, pdw);
    float *ws = malloc(op_conv2d_act_workspace(s) * sizeof(float) + 4);
    op_conv_weight_prep(s, w, pwp);
    op_conv2d_act_forward(s, px, pwp, py, ws);
    op_conv2d_act_backward(s, px, pwp, pdy, pdx, pdw, ws);
    op_act_export(f, s->N, s->K, PQ, py, y);
    op_act_export(f, s->N, s->C, HW, pdx, dx);
    op_conv_weight_grad_add(s, pdw, dw);
    int ok = guard_ok(px, f->dt, nx_of(s)) && guard_ok(pwp, f->dt, nw_of(s)) && guard_ok(py, f->dt, ny_of(s)) &&
             guard_ok(pdx, f->dt, nx_of(s)) && guard_ok(pdw, f->dt, nw_of(s));
    free(px), free(pwp), free(py), free(pdy), free(pdx), free(pdw), free(ws);
    return ok;
}

static void conv_formats_match_plain_conv(void) {
    const ActFmt fmts[] = {PLAIN, NHWC32, NHWC_BF, NHWC_H, NCHW_BF};
    for (int ci = 0; ci < N_CONVS; ci++) {
        ConvShape s0 = conv_of(&k_convs[ci], PLAIN);
        const size_t nx = nx_of(&s0), ny = ny_of(&s0), nw = nw_of(&s0);
        TestRng r = {100 + (uint64_t)ci};
        float *x = frand(&r, nx, -1, 1), *w = frand(&r, nw, -0.3f, 0.3f), *dy = frand(&r, ny, -1, 1);
        /* the reference: the plain ops, called directly */
        float *ry = fzero(ny), *rdx = fzero(nx), *rdw = fzero(nw);
        float *ws = fzero(op_conv2d_workspace(&s0));
        op_conv2d_forward(&s0, x, w, NULL, ry, ws);
        op_conv2d_backward(&s0, x, w, dy, rdx, rdw, NULL, ws);
        for (int k = 0; k < 5; k++) {
            ConvShape s = conv_of(&k_convs[ci], fmts[k]);
            float *y = fzero(ny), *dx = fzero(nx), *dw = fzero(nw);
            CHECK_MSG(conv_run(&s, x, w, dy, NULL, NULL, y, dx, dw), "case %d %s: guard", ci, fmt_name(&s.f));
            check_vs_ref(&s.f, "conv y", y, ry, ny, 1);
            check_vs_ref(&s.f, "conv dx", dx, rdx, nx, 1);
            check_vs_ref(&s.f, "conv dw", dw, rdw, nw, 1);
            free(y), free(dx), free(dw);
        }
        free(x), free(w), free(dy), free(ry), free(rdx), free(rdw), free(ws);
    }
}

static void conv_backward_accumulates(void) {
    const ActFmt fmts[] = {NHWC32, NHWC_BF};
    ConvShape s0 = conv_of(&k_convs[0], PLAIN);
    const size_t nx = nx_of(&s0), ny = ny_of(&s0), nw = nw_of(&s0);
    TestRng r = {7};
    float *x = frand(&r, nx, -1, 1), *w = frand(&r, nw, -0.3f, 0.3f), *dy = frand(&r, ny, -1, 1);
    float *dx0 = frand(&r, nx, -1, 1), *dw0 = frand(&r, nw, -1, 1);
    for (int k = 0; k < 2; k++) {
        ConvShape s = conv_of(&k_convs[0], fmts[k]);
        float *y = fzero(ny), *dx = fzero(nx), *dw = fzero(nw), *dxa = fzero(nx), *dwa = fzero(nw);
        conv_run(&s, x, w, dy, NULL, NULL, y, dx, dw);
        conv_run(&s, x, w, dy, dx0, dw0, y, dxa, dwa);
        /* expected: the stored initial value plus the fresh gradient */
        for (size_t i = 0; i < nx; i++) dx[i] += rnd(s.f.dt, dx0[i]);
        for (size_t i = 0; i < nw; i++) dw[i] += rnd(s.f.dt, dw0[i]);
        CHECK_MSG(rel_err(dxa, dx, nx) < tol_of(s.f.dt), "%s dx", fmt_name(&s.f));
        CHECK_MSG(rel_err(dwa, dw, nw) < tol_of(s.f.dt), "%s dwp", fmt_name(&s.f));
        free(y), free(dx), free(dw), free(dxa), free(dwa);
    }
    free(x), free(w), free(dy), free(dx0), free(dw0);
}

typedef struct ConvGc {
    ConvShape s;
    float *x, *w, *gy; /* x, gy NHWC fp32; w the fp32 master */
    float *wp, *y, *ws;
} ConvGc;
static double conv_gc_loss(void *ctx) {
    ConvGc *c = ctx;
    op_conv_weight_prep(&c->s, c->w, c->wp);
    op_conv2d_act_forward(&c->s, c->x, c->wp, c->y, c->ws);
    double l = 0;
    for (size_t i = 0; i < ny_of(&c->s); i++) l += (double)c->y[i] * c->gy[i];
    return l;
}

static void conv_nhwc_gradcheck(void) {
    for (int ci = 0; ci < 3; ci++) {
        ConvGc c;
        c.s = conv_of(&k_convs[ci], NHWC32);
        const size_t nx = nx_of(&c.s), ny = ny_of(&c.s), nw = nw_of(&c.s);
        TestRng r = {200 + (uint64_t)ci};
        c.x = frand(&r, nx, -1, 1), c.w = frand(&r, nw, -0.5f, 0.5f), c.gy = frand(&r, ny, -1, 1);
        c.wp = fzero(nw), c.y = fzero(ny), c.ws = fzero(op_conv2d_act_workspace(&c.s));
        float *dx = fzero(nx), *dwp = fzero(nw), *dw = fzero(nw);
        conv_gc_loss(&c);
        op_conv2d_act_backward(&c.s, c.x, c.wp, c.gy, dx, dwp, c.ws);
        op_conv_weight_grad_add(&c.s, dwp, dw);
        double ex = gradcheck(conv_gc_loss, &c, c.x, dx, nx, 0.05, 200);
        double ew = gradcheck(conv_gc_loss, &c, c.w, dw, nw, 0.05, 200);
        CHECK_MSG(ex < 1e-3 && ew < 1e-3, "case %d: dx %g dw %g", ci, ex, ew);
        free(c.x), free(c.w), free(c.gy), free(c.wp), free(c.y), free(c.ws), free(dx), free(dwp), free(dw);
    }
}

static void conv_weight_prep_is_krsc_and_grad_add_adds(void) {
    const int K = 2, C = 3, R = 2, S = 3;
    const size_t n = (size_t)K * C * R * S;
    TestRng r = {9};
    float *w = frand(&r, n, -2, 2), *dw0 = frand(&r, n, -1, 1);
    const ActFmt fmts[] = {NHWC32, NHWC_BF, NHWC_H, NCHW_BF, PLAIN};
    for (int k = 0; k < 5; k++) {
        ConvShape s;
        conv_shape_init(&s, 1, C, 4, 5, K, R, S, 1, 0);
        s.f = fmts[k];
        void *wp = fbuf(s.f.dt, n);
        op_conv_weight_prep(&s, w, wp);
        int bad = 0;
        for (int kk = 0; kk < K; kk++)
            for (int c = 0; c < C; c++)
                for (int rr = 0; rr < R; rr++)
                    for (int ss = 0; ss < S; ss++) {
                        size_t src = (((size_t)kk * C + c) * R + rr) * S + ss;
                        size_t dst = s.f.nhwc ? (((size_t)kk * R + rr) * S + ss) * C + c : src;
                        float v = s.f.dt == DT_F32 ? ((float *)wp)[dst]
                                  : s.f.dt == DT_BF16 ? bf16_to_f32(((uint16_t *)wp)[dst])
                                                      : f16_to_f32(((uint16_t *)wp)[dst]);
                        if (v != rnd(s.f.dt, w[src])) bad++;
                    }
        CHECK_MSG(bad == 0, "%s prep: %d misplaced", fmt_name(&s.f), bad);
        float *dw = malloc(n * sizeof(float));
        memcpy(dw, dw0, n * sizeof(float));
        op_conv_weight_grad_add(&s, wp, dw); /* dw = dw0 + w rounded */
        for (size_t i = 0; i < n; i++) bad += dw[i] != dw0[i] + rnd(s.f.dt, w[i]);
        CHECK_MSG(bad == 0, "%s grad_add: %d wrong", fmt_name(&s.f), bad);
        CHECK(guard_ok(wp, s.f.dt, n));
        free(wp), free(dw);
    }
    free(w), free(dw0);
}

/* ------------------------------------------------------------ batch-norm */

enum { BN_N = 2, BN_C = 8, BN_HW = 81 };
#define BN_NX ((size_t)BN_N * BN_C * BN_HW)

typedef struct BnOut {
    float y[BN_NX], dx[BN_NX], dgamma[BN_C], dbeta[BN_C], mean[BN_C], rstd[BN_C], rm[BN_C], rv[BN_C];
} BnOut;
typedef struct BnIn {
    float x[BN_NX], dy[BN_NX], dx0[BN_NX], gamma[BN_C], beta[BN_C], rm[BN_C], rv[BN_C], dg0[BN_C], db0[BN_C];
} BnIn;

static void bn_in_init(BnIn *in, uint64_t seed) {
    TestRng r = {seed};
    trng_fill(&r, in->x, BN_NX, -1, 3); /* a mean away from 0 */
    trng_fill(&r, in->dy, BN_NX, -1, 1);
    trng_fill(&r, in->dx0, BN_NX, -1, 1);
    trng_fill(&r, in->gamma, BN_C, 0.5f, 1.5f);
    trng_fill(&r, in->beta, BN_C, -0.5f, 0.5f);
    trng_fill(&r, in->rm, BN_C, 0.5f, 1.5f);
    trng_fill(&r, in->rv, BN_C, 0.5f, 2.0f);
    trng_fill(&r, in->dg0, BN_C, -1, 1);
    trng_fill(&r, in->db0, BN_C, -1, 1);
}

/* train (or eval) forward + backward in f, from dx0 / dg0 / db0 when acc, else zeros */
static int bn_run(const ActFmt *f, int train, int acc, const BnIn *in, BnOut *o) {
    void *px = fmt_in(f, BN_N, BN_C, BN_HW, in->x), *py = fbuf(f->dt, BN_NX);
    void *pdy = fmt_in(f, BN_N, BN_C, BN_HW, in->dy), *pdx = fbuf(f->dt, BN_NX);
    if (acc) op_act_import(f, BN_N, BN_C, BN_HW, in->dx0, pdx);
    for (int c = 0; c < BN_C; c++) {
        o->rm[c] = in->rm[c], o->rv[c] = in->rv[c];
        o->dgamma[c] = acc ? in->dg0[c] : 0, o->dbeta[c] = acc ? in->db0[c] : 0;
    }
    if (train) {
        op_batchnorm_act_forward_train(f, BN_N, BN_C, BN_HW, px, in->gamma, in->beta, 0.1f, 1e-5f, o->rm, o->rv, py,
                                       o->mean, o->rstd);
        op_batchnorm_act_backward_train(f, BN_N, BN_C, BN_HW, px, in->gamma, o->mean, o->rstd, pdy, pdx, o->dgamma,
                                        o->dbeta);
    } else {
        op_batchnorm_act_forward_eval(f, BN_N, BN_C, BN_HW, px, in->gamma, in->beta, in->rm, in->rv, 1e-5f, py);
        op_batchnorm_act_backward_eval(f, BN_N, BN_C, BN_HW, px, in->gamma, in->rm, in->rv, 1e-5f, pdy, pdx,
                                       o->dgamma, o->dbeta);
    }
    op_act_export(f, BN_N, BN_C, BN_HW, py, o->y);
    op_act_export(f, BN_N, BN_C, BN_HW, pdx, o->dx);
    int ok = guard_ok(py, f->dt, BN_NX) && guard_ok(pdx, f->dt, BN_NX);
    free(px), free(py), free(pdy), free(pdx);
    return ok;
}

static void bn_formats_match_plain_batchnorm(void) {
    static BnIn in;
    static BnOut ref, o;
    bn_in_init(&in, 31);
    const ActFmt fmts[] = {PLAIN, NHWC32, NHWC_BF, NHWC_H, NCHW_BF};
    for (int train = 0; train < 2; train++) {
        /* the reference: the plain ops, called directly */
        memcpy(ref.rm, in.rm, sizeof ref.rm), memcpy(ref.rv, in.rv, sizeof ref.rv);
        memset(ref.dx, 0, sizeof ref.dx), memset(ref.dgamma, 0, sizeof ref.dgamma), memset(ref.dbeta, 0, sizeof ref.dbeta);
        if (train) {
            op_batchnorm_forward_train(BN_N, BN_C, BN_HW, in.x, in.gamma, in.beta, 0.1f, 1e-5f, ref.rm, ref.rv, ref.y,
                                       ref.mean, ref.rstd);
            op_batchnorm_backward_train(BN_N, BN_C, BN_HW, in.x, in.gamma, ref.mean, ref.rstd, in.dy, ref.dx,
                                        ref.dgamma, ref.dbeta);
        } else {
            op_batchnorm_forward_eval(BN_N, BN_C, BN_HW, in.x, in.gamma, in.beta, in.rm, in.rv, 1e-5f, ref.y);
            op_batchnorm_backward_eval(BN_N, BN_C, BN_HW, in.x, in.gamma, in.rm, in.rv, 1e-5f, in.dy, ref.dx,
                                       ref.dgamma, ref.dbeta);
        }
        for (int k = 0; k < 5; k++) {
            const ActFmt *f = &fmts[k];
            CHECK(bn_run(f, train, 0, &in, &o));
            check_vs_ref(f, train ? "bn train y" : "bn eval y", o.y, ref.y, BN_NX, 1);
            check_vs_ref(f, train ? "bn train dx" : "bn eval dx", o.dx, ref.dx, BN_NX, 1);
            check_vs_ref(f, "bn dgamma", o.dgamma, ref.dgamma, BN_C, 0);
            check_vs_ref(f, "bn dbeta", o.dbeta, ref.dbeta, BN_C, 0);
            if (train) {
                check_vs_ref(f, "bn mean", o.mean, ref.mean, BN_C, 0);
                check_vs_ref(f, "bn rstd", o.rstd, ref.rstd, BN_C, 0);
                check_vs_ref(f, "bn running_mean", o.rm, ref.rm, BN_C, 0);
                check_vs_ref(f, "bn running_var", o.rv, ref.rv, BN_C, 0);
            }
        }
    }
}

static void bn_backward_accumulates(void) {
    static BnIn in;
    static BnOut fresh, acc;
    bn_in_init(&in, 32);
    const ActFmt fmts[] = {NHWC32, NHWC_BF};
    for (int k = 0; k < 2; k++)
        for (int train = 0; train < 2; train++) {
            const ActFmt *f = &fmts[k];
            bn_run(f, train, 0, &in, &fresh);
            bn_run(f, train, 1, &in, &acc);
            for (size_t i = 0; i < BN_NX; i++) fresh.dx[i] += rnd(f->dt, in.dx0[i]);
            for (int c = 0; c < BN_C; c++) fresh.dgamma[c] += in.dg0[c], fresh.dbeta[c] += in.db0[c];
            CHECK_MSG(rel_err(acc.dx, fresh.dx, BN_NX) < tol_of(f->dt), "%s train %d dx", fmt_name(f), train);
            CHECK_MSG(rel_err(acc.dgamma, fresh.dgamma, BN_C) < 1e-6, "%s dgamma", fmt_name(f));
            CHECK_MSG(rel_err(acc.dbeta, fresh.dbeta, BN_C) < 1e-6, "%s dbeta", fmt_name(f));
        }
}

typedef struct BnGc {
    int train;
    float *x, *gamma, *beta, *rm, *rv, *gy, *y; /* x, gy, y NHWC fp32 */
} BnGc;
static double bn_gc_loss(void *ctx) {
    BnGc *c = ctx;
    if (c->train) /* NULL running stats: the loss must not change them */
        op_batchnorm_act_forward_train(&NHWC32, BN_N, BN_C, BN_HW, c->x, c->gamma, c->beta, 0.1f, 1e-5f, NULL, NULL,
                                       c->y, NULL, NULL);
    else
        op_batchnorm_act_forward_eval(&NHWC32, BN_N, BN_C, BN_HW, c->x, c->gamma, c->beta, c->rm, c->rv, 1e-5f, c->y);
    double l = 0;
    for (size_t i = 0; i < BN_NX; i++) l += (double)c->y[i] * c->gy[i];
    return l;
}

static void bn_nhwc_gradcheck(void) {
    static BnIn in;
    bn_in_init(&in, 33);
    static float y[BN_NX], dx[BN_NX];
    float mean[BN_C], rstd[BN_C], dg[BN_C], db[BN_C];
    for (int train = 0; train < 2; train++) {
        BnGc c = {train, in.x, in.gamma, in.beta, in.rm, in.rv, in.dy, y};
        memset(dx, 0, sizeof dx), memset(dg, 0, sizeof dg), memset(db, 0, sizeof db);
        if (train) {
            op_batchnorm_act_forward_train(&NHWC32, BN_N, BN_C, BN_HW, in.x, in.gamma, in.beta, 0.1f, 1e-5f, NULL,
                                           NULL, y, mean, rstd);
            op_batchnorm_act_backward_train(&NHWC32, BN_N, BN_C, BN_HW, in.x, in.gamma, mean, rstd, in.dy, dx, dg, db);
        } else {
            op_batchnorm_act_backward_eval(&NHWC32, BN_N, BN_C, BN_HW, in.x, in.gamma, in.rm, in.rv, 1e-5f, in.dy, dx,
                                           dg, db);
        }
        double ex = gradcheck(bn_gc_loss, &c, in.x, dx, BN_NX, 1e-2, 200);
        double eg = gradcheck(bn_gc_loss, &c, in.gamma, dg, BN_C, 1e-2, 0);
        double eb = gradcheck(bn_gc_loss, &c, in.beta, db, BN_C, 1e-2, 0);
        CHECK_MSG(ex < 1e-2 && eg < 1e-2 && eb < 1e-2, "train %d: dx %g dgamma %g dbeta %g", train, ex, eg, eb);
    }
}

/* ------------------------------------------------------------ pooling */

typedef struct PoolCase { int N, C, H, W, R, stride, pad; } PoolCase;
static const PoolCase k_pools[] = {
    {2, 8, 9, 9, 3, 2, 1},   /* the ResNet max-pool 3x3/2 pad 1 */
    {2, 4, 16, 16, 3, 2, 1}, /* even size */
    {2, 8, 8, 8, 2, 2, 0},
};

/* distinct values 0.01 apart, shuffled: no near-ties, so central differences with
 * h < 0.005 never move the winner */
static float *distinct_values(TestRng *r, size_t n) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = ((float)i - (float)n / 2) * 0.01f;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = trng_u64(r) % (i + 1);
        float t = x[i];
        x[i] = x[j], x[j] = t;
    }
    return x;
}

static void maxpool_formats_match_plain_maxpool(void) {
    const ActFmt fmts[] = {PLAIN, NHWC32, NHWC_BF, NHWC_H, NCHW_BF};
    for (int pc = 0; pc < 3; pc++) {
        const PoolCase *c = &k_pools[pc];
        PoolShape s0;
        pool_shape_init(&s0, c->N, c->C, c->H, c->W, c->R, c->stride, c->pad);
        const int HW = c->H * c->W, PQ = s0.P * s0.Q;
        const size_t nx = (size_t)c->N * c->C * HW, ny = (size_t)c->N * c->C * PQ;
        TestRng r = {300 + (uint64_t)pc};
        /* each plane a shuffle of distinct multiples of 1/16 below 16 in magnitude: exact in
         * bf16 / fp16, so rounding cannot create ties that change the winner */
        float *x = malloc(nx * sizeof(float));
        for (size_t pl = 0; pl < (size_t)c->N * c->C; pl++) {
            float *xp = distinct_values(&r, (size_t)HW);
            for (int j = 0; j < HW; j++) x[pl * HW + j] = xp[j] * 6.25f; /* (i - HW/2) / 16 */
            free(xp);
        }
        float *dy = frand(&r, ny, -1, 1), *dx0 = frand(&r, nx, -1, 1);
        float *ry = fzero(ny), *rdx = fzero(nx);
        int32_t *ram = malloc(ny * sizeof(int32_t)), *am = malloc(ny * sizeof(int32_t));
        op_maxpool_forward(&s0, x, ry, ram);
        op_maxpool_backward(&s0, ram, dy, rdx);
        for (int k = 0; k < 5; k++) {
            PoolShape s = s0;
            s.f = fmts[k];
            const ActFmt *f = &s.f;
            void *px = fmt_in(f, c->N, c->C, HW, x), *py = fbuf(f->dt, ny);
            void *pdy = fmt_in(f, c->N, c->C, PQ, dy), *pdx = fbuf(f->dt, nx), *pdxa = fmt_in(f, c->N, c->C, HW, dx0);
            op_maxpool_act_forward(&s, px, py, am);
            op_maxpool_act_backward(&s, am, pdy, pdx);
            op_maxpool_act_backward(&s, am, pdy, pdxa);
            float *y = fmt_out(f, c->N, c->C, PQ, py), *dx = fmt_out(f, c->N, c->C, HW, pdx);
            float *dxa = fmt_out(f, c->N, c->C, HW, pdxa);
            int bad_y = 0, bad_am = 0;
            /* rounding is monotonic: the max of rounded values is the rounded max */
            for (size_t i = 0; i < ny; i++) bad_y += y[i] != rnd(f->dt, ry[i]);
            /* argmax laid out like y; in fp32 the same winners, in half types the winner's
             * input value is the max */
            for (int n = 0; n < c->N; n++)
                for (int ch = 0; ch < c->C; ch++)
                    for (int j = 0; j < PQ; j++) {
                        size_t o = f->nhwc ? ((size_t)n * PQ + j) * c->C + ch : ((size_t)n * c->C + ch) * PQ + j;
                        size_t po = ((size_t)n * c->C + ch) * PQ + j;
                        if (f->dt == DT_F32) bad_am += am[o] != ram[po];
                        else bad_am += rnd(f->dt, x[((size_t)n * c->C + ch) * HW + am[o]]) != y[po];
                    }
            CHECK_MSG(bad_y == 0 && bad_am == 0, "case %d %s: y %d argmax %d wrong", pc, fmt_name(f), bad_y, bad_am);
            check_vs_ref(f, "maxpool dx", dx, rdx, nx, 1);
            CHECK_MSG(accumulated(f->dt, dxa, dx0, dx, nx), "case %d %s: dx did not accumulate", pc, fmt_name(f));
            CHECK(guard_ok(py, f->dt, ny) && guard_ok(pdx, f->dt, nx) && guard_ok(pdxa, f->dt, nx));
            free(px), free(py), free(pdy), free(pdx), free(pdxa), free(y), free(dx), free(dxa);
        }
        free(x), free(dy), free(dx0), free(ry), free(rdx), free(ram), free(am);
    }
}

typedef struct PoolGc {
    PoolShape s;
    int avg;
    float *x, *gy, *y;
    int32_t *am;
} PoolGc;
static double pool_gc_loss(void *ctx) {
    PoolGc *c = ctx;
    size_t ny;
    if (c->avg) {
        op_avgpool_act_forward(&c->s.f, c->s.N, c->s.C, c->s.H * c->s.W, c->x, c->y);
        ny = (size_t)c->s.N * c->s.C;
    } else {
        op_maxpool_act_forward(&c->s, c->x, c->y, c->am);
        ny = (size_t)c->s.N * c->s.C * c->s.P * c->s.Q;
    }
    double l = 0;
    for (size_t i = 0; i < ny; i++) l += (double)c->y[i] * c->gy[i];
    return l;
}

static void pools_nhwc_gradcheck(void) {
    for (int avg = 0; avg < 2; avg++) {
        PoolGc c;
        pool_shape_init(&c.s, 2, 8, 9, 9, 3, 2, 1);
        c.s.f = NHWC32;
        c.avg = avg;
        const int HW = 81;
        const size_t nx = (size_t)2 * 8 * HW, ny = avg ? 16 : (size_t)2 * 8 * c.s.P * c.s.Q;
        TestRng r = {400 + (uint64_t)avg};
        c.x = distinct_values(&r, nx), c.gy = frand(&r, ny, -1, 1), c.y = fzero(ny);
        c.am = malloc(ny * sizeof(int32_t));
        float *dx = fzero(nx);
        pool_gc_loss(&c);
        if (avg) op_avgpool_act_backward(&c.s.f, 2, 8, HW, c.gy, dx);
        else op_maxpool_act_backward(&c.s, c.am, c.gy, dx);
        double e = gradcheck(pool_gc_loss, &c, c.x, dx, nx, 2e-3, 0);
        CHECK_MSG(e < 1e-3, "%s: rel err %g", avg ? "avgpool" : "maxpool", e);
        free(c.x), free(c.gy), free(c.y), free(c.am), free(dx);
    }
}

static void avgpool_formats_match_plain_avgpool(void) {
    const ActFmt fmts[] = {PLAIN, NHWC32, NHWC_BF, NHWC_H, NCHW_BF};
    const int N = 2, C = 8, HW = 49;
    const size_t nx = (size_t)N * C * HW, ny = (size_t)N * C;
    TestRng r = {500};
    /* dx0 of the size of dy / HW, so that the added gradient is visible next to it */
    float *x = frand(&r, nx, -1, 3), *dy = frand(&r, ny, -1, 1), *dx0 = frand(&r, nx, -0.02f, 0.02f);
    float *ry = fzero(ny), *rdx = fzero(nx);
    op_avgpool_global_forward(N, C, HW, x, ry);
    op_avgpool_global_backward(N, C, HW, dy, rdx);
    for (int k = 0; k < 5; k++) {
        const ActFmt *f = &fmts[k];
        void *px = fmt_in(f, N, C, HW, x), *pdx = fbuf(f->dt, nx), *pdxa = fmt_in(f, N, C, HW, dx0);
        float *y = fzero(ny);
        op_avgpool_act_forward(f, N, C, HW, px, y);
        op_avgpool_act_backward(f, N, C, HW, dy, pdx);
        op_avgpool_act_backward(f, N, C, HW, dy, pdxa);
        float *dx = fmt_out(f, N, C, HW, pdx), *dxa = fmt_out(f, N, C, HW, pdxa);
        check_vs_ref(f, "avgpool y", y, ry, ny, 0); /* fp32 output: not representable */
        /* dy is fp32 and dy/HW is the plain op's value: only the store rounds */
        int bad = 0;
        for (size_t i = 0; i < nx; i++) bad += dx[i] != rnd(f->dt, rdx[i]);
        CHECK_MSG(bad == 0, "%s avgpool dx: %d wrong", fmt_name(f), bad);
        CHECK_MSG(accumulated(f->dt, dxa, dx0, dx, nx), "%s avgpool dx did not accumulate", fmt_name(f));
        CHECK(guard_ok(pdx, f->dt, nx) && guard_ok(pdxa, f->dt, nx));
        free(px), free(pdx), free(pdxa), free(y), free(dx), free(dxa);
    }
    free(x), free(dy), free(dx0), free(ry), free(rdx);
}

/* The plain ops and the *_act ops share one body per op (pool_impl.h, batchnorm_impl.h),
 * and channel c's values are visited in the same (n, hw) order in both layouts: in NHWC
 * fp32 (the run-time-format path) every result is the plain op's to the bit, after
 * reordering. */
static void nhwc_f32_is_bit_identical_to_plain(void) {
    static BnIn in;
    static BnOut ref, o;
    bn_in_init(&in, 77);
    for (int train = 0; train < 2; train++) {
        CHECK(bn_run(&PLAIN, train, 1, &in, &ref)); /* the plain ops (act entry shortcut) */
        CHECK(bn_run(&NHWC32, train, 1, &in, &o));
        CHECK_MSG(memcmp(&o, &ref, sizeof o) == 0, "bn %s: nhwc-f32 differs from plain", train ? "train" : "eval");
    }
    PoolShape s0, s;
    pool_shape_init(&s0, 2, 8, 11, 9, 3, 2, 1);
    s = s0, s.f = NHWC32;
    const int HW = 99, PQ = s0.P * s0.Q;
    const size_t nx = (size_t)2 * 8 * HW, ny = (size_t)2 * 8 * PQ;
    TestRng r = {78};
    float *x = frand(&r, nx, -1, 3), *dy = frand(&r, ny, -1, 1), *dx0 = frand(&r, nx, -1, 1);
    float *gy = frand(&r, 16, -1, 1), *ry = fzero(ny), *rdx = malloc(nx * sizeof(float));
    float *rp = fzero(16), *pp = fzero(16);
    int32_t *ram = malloc(ny * sizeof(int32_t)), *am = malloc(ny * sizeof(int32_t));
    memcpy(rdx, dx0, nx * sizeof(float));
    op_maxpool_forward(&s0, x, ry, ram);
    op_maxpool_backward(&s0, ram, dy, rdx);
    op_avgpool_global_forward(2, 8, HW, x, rp);
    op_avgpool_global_backward(2, 8, HW, gy, rdx);
    void *px = fmt_in(&s.f, 2, 8, HW, x), *pdy = fmt_in(&s.f, 2, 8, PQ, dy);
    void *pdx = fmt_in(&s.f, 2, 8, HW, dx0), *py = fbuf(DT_F32, ny);
    op_maxpool_act_forward(&s, px, py, am);
    op_maxpool_act_backward(&s, am, pdy, pdx);
    op_avgpool_act_forward(&s.f, 2, 8, HW, px, pp);
    op_avgpool_act_backward(&s.f, 2, 8, HW, gy, pdx);
    float *y = fmt_out(&s.f, 2, 8, PQ, py), *dx = fmt_out(&s.f, 2, 8, HW, pdx);
    CHECK_MSG(memcmp(y, ry, ny * sizeof(float)) == 0, "maxpool y: nhwc-f32 differs from plain");
    CHECK_MSG(memcmp(pp, rp, 16 * sizeof(float)) == 0, "avgpool y: nhwc-f32 differs from plain");
    CHECK_MSG(memcmp(dx, rdx, nx * sizeof(float)) == 0, "pool dx: nhwc-f32 differs from plain");
    free(x), free(dy), free(dx0), free(gy), free(ry), free(rdx), free(rp), free(pp), free(ram), free(am);
    free(px), free(pdy), free(pdx), free(py), free(y), free(dx);
}

/* ------------------------------------------------------------ pretend device */

/* A bf16 NHWC chain through every new entry of the pretend device's table: device-only
 * tensors, no violations, and the same bytes as the direct calls. */
static void pretend_device_translates_every_act_entry(void) {
    const Backend *be = pd_backend(), *cpu = backend_cpu();
    const ActFmt f = NHWC_BF;
    ConvShape cs;
    conv_shape_init(&cs, 2, 3, 9, 9, 4, 3, 3, 2, 1); /* -> [2, 4, 5x5] */
    cs.f = f;
    PoolShape ps;
    pool_shape_init(&ps, 2, 4, 5, 5, 3, 2, 1); /* -> [2, 4, 3x3] */
    ps.f = f;
    const int HW = 81, PQ = 25, MQ = 9;
    const size_t nx = 2 * 3 * HW, ny = 2 * 4 * PQ, nm = 2 * 4 * MQ, nw = 4 * 3 * 9, nws = cpu->conv2d_workspace(cpu, &cs);
    TestRng r = {600};
    float *hx = frand(&r, nx, -1, 1), *hw = frand(&r, nw, -0.5f, 0.5f), *hgam = frand(&r, 4, 0.5f, 1.5f);
    float *hbet = frand(&r, 4, -0.5f, 0.5f), *hrv = frand(&r, 4, 0.5f, 2), *hdp = frand(&r, 8, -1, 1);
    float results[2][1024];
    memset(results, 0, sizeof results);
    for (int pass = 0; pass < 2; pass++) {
        const Backend *b = pass ? be : cpu;
#define ALLOC(bytes) b->alloc(b, bytes)
        float *x = ALLOC(nx * 4), *w = ALLOC(nw * 4), *gam = ALLOC(16), *bet = ALLOC(16), *rm = ALLOC(16), *rv = ALLOC(16);
        float *ws = ALLOC(nws * 4), *mean = ALLOC(16), *rstd = ALLOC(16), *pooled = ALLOC(32), *dp = ALLOC(32);
        float *dw = ALLOC(nw * 4), *dg = ALLOC(16), *dbt = ALLOC(16), *xo = ALLOC(nx * 4);
        void *ax = ALLOC(nx * 2), *wp = ALLOC(nw * 2), *ay = ALLOC(ny * 2), *ab = ALLOC(ny * 2), *am = ALLOC(nm * 2);
        void *ae = ALLOC(ny * 2), *dam = ALLOC(nm * 2), *dab = ALLOC(ny * 2), *day = ALLOC(ny * 2), *dax = ALLOC(nx * 2);
        void *dwp = ALLOC(nw * 2), *sum = ALLOC(nm * 2);
        int32_t *arg = ALLOC(nm * 4);
#undef ALLOC
        b->copy_h2d(b, x, hx, nx * 4), b->copy_h2d(b, w, hw, nw * 4), b->copy_h2d(b, gam, hgam, 16);
        b->copy_h2d(b, bet, hbet, 16), b->copy_h2d(b, rm, hbet, 16), b->copy_h2d(b, rv, hrv, 16), b->copy_h2d(b, dp, hdp, 32);
        b->memset_zero(b, dam, nm * 2), b->memset_zero(b, dab, ny * 2), b->memset_zero(b, day, ny * 2);
        b->memset_zero(b, dax, nx * 2), b->memset_zero(b, dwp, nw * 2), b->memset_zero(b, dw, nw * 4);
        b->memset_zero(b, dg, 16), b->memset_zero(b, dbt, 16);
        ActDesc dx3 = act_desc(2, 3, HW, f), dy4 = act_desc(2, 4, PQ, f), dm4 = act_desc(2, 4, MQ, f);
        b->act_import(b, &dx3, x, ax);
        b->act_import_add(b, &dx3, x, ax); /* 2x */
        b->conv_weight_prep(b, &cs, w, wp);
        b->conv2d_forward(b, &cs, ax, wp, NULL, ay, ws);
        b->batchnorm_forward_train(b, &dy4, ay, gam, bet, 0.1f, 1e-5f, rm, rv, ab, mean, rstd);
        b->batchnorm_forward_eval(b, &dy4, ay, gam, bet, rm, rv, 1e-5f, ae);
        b->add_forward(b, f.dt, ny, ab, ae, ab);
        b->relu_forward(b, f.dt, ny, ab, ab);
        b->maxpool_forward(b, &ps, ab, am, arg);
        b->add_forward(b, f.dt, nm, am, am, sum);
        b->avgpool_forward(b, &dm4, sum, pooled);
        b->avgpool_backward(b, &dm4, dp, dam);
        b->maxpool_backward(b, &ps, arg, dam, dab);
        b->relu_backward(b, f.dt, ny, ab, dab, day); /* day = relu'(dab) */
        b->batchnorm_backward_eval(b, &dy4, ay, gam, rm, rv, 1e-5f, day, dab, dg, dbt);
        b->batchnorm_backward_train(b, &dy4, ay, gam, mean, rstd, day, dab, dg, dbt);
        b->conv2d_backward(b, &cs, ax, wp, dab, dax, dwp, NULL, ws);
        b->conv_weight_grad_add(b, &cs, dwp, dw);
        b->act_export(b, &dx3, dax, xo);
        float *out = results[pass];
        b->copy_d2h(b, out, xo, nx * 4);
        b->copy_d2h(b, out + nx, dw, nw * 4);
        b->copy_d2h(b, out + nx + nw, pooled, 32);
        b->copy_d2h(b, out + nx + nw + 8, dg, 16);
        void *all[] = {x, w, gam, bet, rm, rv, ws, mean, rstd, pooled, dp, dw, dg, dbt, xo, ax, wp, ay, ab, am,
                       ae, dam, dab, day, dax, dwp, sum, arg};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) b->free(b, all[i]);
    }
    CHECK(pd_violations() == 0);
    CHECK(pd_live_regions() == 0); /* every device buffer freed */
    CHECK(memcmp(results[0], results[1], sizeof results[0]) == 0);
    double nrm = 0;
    for (size_t i = 0; i < nx; i++) nrm += fabs(results[0][i]);
    CHECK(nrm > 0); /* the chain carried a gradient all the way back */
    free(hx), free(hw), free(hgam), free(hbet), free(hrv), free(hdp);
}

int main(void) {
    op_set_threads(2);
    RUN(import_export_follow_the_layout_formulas);
    RUN(relu_and_add_round_in_storage_type);
    RUN(conv_formats_match_plain_conv);
    RUN(conv_backward_accumulates);
    RUN(conv_nhwc_gradcheck);
    RUN(conv_weight_prep_is_krsc_and_grad_add_adds);
    RUN(bn_formats_match_plain_batchnorm);
    RUN(bn_backward_accumulates);
    RUN(bn_nhwc_gradcheck);
    RUN(maxpool_formats_match_plain_maxpool);
    RUN(avgpool_formats_match_plain_avgpool);
    RUN(pools_nhwc_gradcheck);
    RUN(nhwc_f32_is_bit_identical_to_plain);
    RUN(pretend_device_translates_every_act_entry);
    return test_summary();
}
