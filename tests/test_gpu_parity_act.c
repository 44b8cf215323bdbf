/* test_gpu_parity_act.c: the CUDA backend's image entries with activations in the act
 * formats (ops.h "ops on activations in an ActFmt": NHWC bf16, NHWC fp32, NCHW bf16, NHWC
 * fp16) against the CPU backend's same entries (its act reference ops) on the same random
 * inputs, forward and backward into non-zero gradients; the plain format's prepared weight
 * and bias; no device allocation after the first call. Helpers: gpu_parity.h.
 * Tolerances (relative error): fp32 storage 1e-5 (1e-4 conv), bf16 1e-2, fp16 2e-3;
 * element-wise ops, conversions, max-pool (values, argmax, gradient) and avg-pool's
 * gradient bit for bit (one fp32 operation then round-to-nearest-even on both sides, same
 * addition order). SKIPs (exit 77) when the build has no CUDA backend or no usable GPU. */
// TEST_LIBS: vqa_backend vqa_ops
// TEST_LABELS: gpu
// TEST_TIMEOUT: 300
#include "gpu_parity.h"
#include "ops/act_internal.h" /* act_ld: an element in its storage type as fp32 */

/* ---- image entries in the act formats (ops.h "ops on activations in an ActFmt") ---- */

static const ActFmt ACT_FMTS[] = {{1, DT_BF16}, {1, DT_F32}, {0, DT_BF16}, {1, DT_F16}};
#define N_ACT_FMTS ((int)(sizeof ACT_FMTS / sizeof ACT_FMTS[0]))
static const char *fmt_name(const ActFmt *f) {
    static const char *names[2][3] = {{"NCHW f32", "NCHW bf16", "NCHW f16"}, {"NHWC f32", "NHWC bf16", "NHWC f16"}};
    return names[f->nhwc ? 1 : 0][f->dt == DT_BF16 ? 1 : f->dt == DT_F16 ? 2 : 0];
}
/* n random values in [lo, hi), rounded to dt (util/half.h: the host's own conversion) */
static void *hrand_dt(DType dt, size_t n, float lo, float hi) {
    float *v = hrand(n, lo, hi);
    if (dt == DT_F32) return v;
    uint16_t *p = hzero(n * 2);
    for (size_t i = 0; i < n; i++) p[i] = dt == DT_BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
    return p;
}
static float *dt_to_f32(DType dt, const void *p, size_t n) {
    float *o = hzero(n * 4);
    for (size_t i = 0; i < n; i++) o[i] = act_ld(dt, p, i);
    return o;
}
static void *dget_dt(DType dt, const void *d, size_t n) {
    void *h = hzero(n * dtype_size(dt));
    GPU->copy_d2h(GPU, h, d, n * dtype_size(dt));
    return h;
}
static double tol_act(DType dt, int conv) { return dt == DT_F32 ? (conv ? 1e-4 : 1e-5) : dt == DT_BF16 ? 1e-2 : 2e-3; }
/* device array d (n elements in dt) against host reference ref (n in dt) */
#define CHECK_REL_DT(f, d, ref, n, t)                                                                          \
    do {                                                                                                     \
        double r_ = rel_err(dt_to_f32((f)->dt, dget_dt((f)->dt, d, n), n), dt_to_f32((f)->dt, ref, n), n);      \
        CHECK_MSG(r_ < (t), "%s [%s]: rel err %.3g >= %.1g", #d, fmt_name(f), r_, (double)(t));               \
    } while (0)
#define CHECK_BITS(f, d, ref, bytes)                                                                         \
    do {                                                                                                     \
        void *h_ = hzero(bytes);                                                                             \
        GPU->copy_d2h(GPU, h_, d, bytes);                                                                         \
        CHECK_MSG(memcmp(h_, ref, bytes) == 0, "%s [%s]: not bit-identical to the CPU", #d, fmt_name(f));     \
    } while (0)

static void act_import_export_relu_add_match_cpu_bitwise(void) {
    const int N = 3, C = 5, HW = 37;
    const size_t n = (size_t)N * C * HW;
    for (int k = 0; k < N_ACT_FMTS; k++) {
        const ActFmt *f = &ACT_FMTS[k];
        const ActDesc d = act_desc(N, C, HW, *f);
        const size_t b = n * dtype_size(f->dt);
        float *x = hrand(n, -4, 4), *gx = dputf(x, n);
        void *y = hzero(b), *gy = dput(NULL, b);
        CPU->act_import(CPU, &d, x, y), GPU->act_import(GPU, &d, gx, gy);
        CHECK_BITS(f, gy, y, b);
        float *x2 = hrand(n, -1, 1), *gx2 = dputf(x2, n);
        CPU->act_import_add(CPU, &d, x2, y), GPU->act_import_add(GPU, &d, gx2, gy);
        CHECK_BITS(f, gy, y, b);
        float *e = hrand(n, -1, 1), *ge = dputf(e, n); /* overwritten: export is "=" */
        CPU->act_export(CPU, &d, y, e), GPU->act_export(GPU, &d, gy, ge);
        CHECK_BITS(f, ge, e, n * 4);
        void *r = hzero(b), *gr = dput(NULL, b);
        CPU->relu_forward(CPU, f->dt, n, y, r), GPU->relu_forward(GPU, f->dt, n, gy, gr);
        CHECK_BITS(f, gr, r, b);
        void *dy = hrand_dt(f->dt, n, -1, 1), *dx = hrand_dt(f->dt, n, -1, 1);
        void *gdy = dput(dy, b), *gdx = dput(dx, b);
        CPU->relu_backward(CPU, f->dt, n, r, dy, dx), GPU->relu_backward(GPU, f->dt, n, gr, gdy, gdx);
        CHECK_BITS(f, gdx, dx, b);
        CPU->add_forward(CPU, f->dt, n, y, dy, r), GPU->add_forward(GPU, f->dt, n, gy, gdy, gr);
        CHECK_BITS(f, gr, r, b);
        CPU->relu_forward(CPU, f->dt, n, r, r), GPU->relu_forward(GPU, f->dt, n, gr, gr); /* in place */
        CHECK_BITS(f, gr, r, b);
        release();
    }
}

static void conv_act_case(const ActFmt *f, int N, int C, int H, int W, int K, int R, int stride, int pad) {
    ConvShape s;
    conv_shape_init(&s, N, C, H, W, K, R, R, stride, pad);
    s.f = *f;
    const size_t es = dtype_size(f->dt);
    const size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * s.P * s.Q;
    float *w = hrand(nw, -0.5f, 0.5f), *gw = dputf(w, nw);
    void *wp = hzero(nw * es), *gwp = dput(NULL, nw * es);
    CPU->conv_weight_prep(CPU, &s, w, wp), GPU->conv_weight_prep(GPU, &s, gw, gwp);
    CHECK_BITS(f, gwp, wp, nw * es);
    void *x = hrand_dt(f->dt, nx, -1, 1), *gx = dput(x, nx * es);
    void *y = hzero(ny * es), *gy = dput(NULL, ny * es);
    float *cws = hzero(CPU->conv2d_workspace(CPU, &s) * 4 + 4);
    float *gws = dputf(NULL, GPU->conv2d_workspace(GPU, &s) + 1);
    CPU->conv2d_forward(CPU, &s, x, wp, NULL, y, cws), GPU->conv2d_forward(GPU, &s, gx, gwp, NULL, gy, gws);
    CHECK_REL_DT(f, gy, y, ny, tol_act(f->dt, 1));
    void *dy = hrand_dt(f->dt, ny, -1, 1), *dx = hrand_dt(f->dt, nx, -1, 1), *dwp = hrand_dt(f->dt, nw, -1, 1);
    void *gdy = dput(dy, ny * es), *gdx = dput(dx, nx * es), *gdwp = dput(dwp, nw * es);
    CPU->conv2d_backward(CPU, &s, x, wp, dy, dx, dwp, NULL, cws);
    GPU->conv2d_backward(GPU, &s, gx, gwp, gdy, gdx, gdwp, NULL, gws);
    CHECK_REL_DT(f, gdx, dx, nx, tol_act(f->dt, 1));
    CHECK_REL_DT(f, gdwp, dwp, nw, tol_act(f->dt, 1));
    float *dw = hrand(nw, -1, 1), *gdw = dputf(dw, nw);
    CPU->conv_weight_grad_add(CPU, &s, dwp, dw), GPU->conv_weight_grad_add(GPU, &s, gdwp, gdw);
    CHECK_REL(gdw, dw, nw, tol_act(f->dt, 1));
    release();
}

static void conv_act_matches_cpu_with_prepared_weights(void) {
    for (int k = 0; k < N_ACT_FMTS; k++) {
        conv_act_case(&ACT_FMTS[k], 2, 16, 9, 9, 32, 3, 1, 1);  /* 3x3 */
        conv_act_case(&ACT_FMTS[k], 2, 32, 8, 8, 16, 1, 2, 0);  /* 1x1 stride 2 (downsample) */
        conv_act_case(&ACT_FMTS[k], 2, 3, 17, 19, 8, 7, 2, 3);  /* the stem: C = 3 */
    }
}

static void batchnorm_act_train_matches_cpu(void) {
    const int shapes[2][3] = {{4, 37, 23}, {8, 37, 300}}; /* 37: a partial block of channels; M 2400: many groups */
    for (int k = 0; k < N_ACT_FMTS; k++)
        for (int sh = 0; sh < 2; sh++) {
            const ActFmt *f = &ACT_FMTS[k];
            const int N = shapes[sh][0], C = shapes[sh][1], HW = shapes[sh][2];
            const ActDesc d = act_desc(N, C, HW, *f);
            const size_t n = (size_t)N * C * HW, b = n * dtype_size(f->dt);
            void *x = hrand_dt(f->dt, n, -2, 3), *gx = dput(x, b);
            float *g = hrand(C, 0.5f, 1.5f), *bt = hrand(C, -1, 1), *rm = hrand(C, -1, 1), *rv = hrand(C, 0.5f, 2);
            float *gg = dputf(g, C), *gbt = dputf(bt, C), *grm = dputf(rm, C), *grv = dputf(rv, C);
            float *sm = hzero(C * 4), *sr = hzero(C * 4), *gsm = dputf(NULL, C), *gsr = dputf(NULL, C);
            void *y = hzero(b), *gy = dput(NULL, b);
            CPU->batchnorm_forward_train(CPU, &d, x, g, bt, 0.1f, 1e-5f, rm, rv, y, sm, sr);
            GPU->batchnorm_forward_train(GPU, &d, gx, gg, gbt, 0.1f, 1e-5f, grm, grv, gy, gsm, gsr);
            CHECK_REL_DT(f, gy, y, n, tol_act(f->dt, 0));
            CHECK_REL(gsm, sm, (size_t)C, 1e-6);
            CHECK_REL(gsr, sr, (size_t)C, 1e-6);
            CHECK_REL(grm, rm, (size_t)C, 1e-6);
            CHECK_REL(grv, rv, (size_t)C, 1e-6);
            void *dy = hrand_dt(f->dt, n, -1, 1), *dx = hrand_dt(f->dt, n, -1, 1);
            void *gdy = dput(dy, b), *gdx = dput(dx, b);
            float *dg = hrand(C, -1, 1), *db = hrand(C, -1, 1), *gdg = dputf(dg, C), *gdb = dputf(db, C);
            CPU->batchnorm_backward_train(CPU, &d, x, g, sm, sr, dy, dx, dg, db);
            GPU->batchnorm_backward_train(GPU, &d, gx, gg, gsm, gsr, gdy, gdx, gdg, gdb);
            CHECK_REL_DT(f, gdx, dx, n, tol_act(f->dt, 0));
            CHECK_REL(gdg, dg, (size_t)C, 1e-5);
            CHECK_REL(gdb, db, (size_t)C, 1e-5);
            release();
        }
}

static void batchnorm_act_eval_matches_cpu(void) {
    const int N = 3, C = 40, HW = 50;
    const size_t n = (size_t)N * C * HW;
    for (int k = 0; k < N_ACT_FMTS; k++) {
        const ActFmt *f = &ACT_FMTS[k];
        const ActDesc d = act_desc(N, C, HW, *f);
        const size_t b = n * dtype_size(f->dt);
        void *x = hrand_dt(f->dt, n, -2, 3), *gx = dput(x, b);
        float *g = hrand(C, 0.5f, 1.5f), *bt = hrand(C, -1, 1), *rm = hrand(C, -1, 1), *rv = hrand(C, 0.5f, 2);
        float *gg = dputf(g, C), *gbt = dputf(bt, C), *grm = dputf(rm, C), *grv = dputf(rv, C);
        void *y = hzero(b), *gy = dput(NULL, b);
        CPU->batchnorm_forward_eval(CPU, &d, x, g, bt, rm, rv, 1e-5f, y);
        GPU->batchnorm_forward_eval(GPU, &d, gx, gg, gbt, grm, grv, 1e-5f, gy);
        CHECK_REL_DT(f, gy, y, n, tol_act(f->dt, 0));
        void *dy = hrand_dt(f->dt, n, -1, 1), *dx = hrand_dt(f->dt, n, -1, 1);
        void *gdy = dput(dy, b), *gdx = dput(dx, b);
        float *dg = hrand(C, -1, 1), *db = hrand(C, -1, 1), *gdg = dputf(dg, C), *gdb = dputf(db, C);
        CPU->batchnorm_backward_eval(CPU, &d, x, g, rm, rv, 1e-5f, dy, dx, dg, db);
        GPU->batchnorm_backward_eval(GPU, &d, gx, gg, grm, grv, 1e-5f, gdy, gdx, gdg, gdb);
        CHECK_REL_DT(f, gdx, dx, n, tol_act(f->dt, 0));
        CHECK_REL(gdg, dg, (size_t)C, 1e-5);
        CHECK_REL(gdb, db, (size_t)C, 1e-5);
        /* dx alone (a frozen BN: no parameter gradients, no sums on either side) */
        CPU->batchnorm_backward_eval(CPU, &d, x, g, rm, rv, 1e-5f, dy, dx, NULL, NULL);
        GPU->batchnorm_backward_eval(GPU, &d, gx, gg, grm, grv, 1e-5f, gdy, gdx, NULL, NULL);
        CHECK_REL_DT(f, gdx, dx, n, tol_act(f->dt, 0));
        /* eval dx = k dy does not depend on x: an inf in x (an fp16 overflow) must not turn
         * dx into NaN (it did while the kernel computed k (dy - 0 - (x - mean) 0)) */
        void *xinf = hzero(b);
        memcpy(xinf, x, b);
        if (f->dt == DT_F32) ((float *)xinf)[7] = INFINITY;
        else ((uint16_t *)xinf)[7] = f->dt == DT_BF16 ? f32_to_bf16(INFINITY) : f32_to_f16(INFINITY);
        void *gxinf = dput(xinf, b);
        CPU->batchnorm_backward_eval(CPU, &d, xinf, g, rm, rv, 1e-5f, dy, dx, NULL, NULL);
        GPU->batchnorm_backward_eval(GPU, &d, gxinf, gg, grm, grv, 1e-5f, gdy, gdx, NULL, NULL);
        CHECK_REL_DT(f, gdx, dx, n, tol_act(f->dt, 0));
        release();
    }
}

static void pooling_act_matches_cpu_with_exact_argmax(void) {
    for (int k = 0; k < N_ACT_FMTS; k++) {
        const ActFmt *f = &ACT_FMTS[k];
        const size_t es = dtype_size(f->dt);
        PoolShape s;
        pool_shape_init(&s, 2, 5, 15, 13, 3, 2, 1);
        s.f = *f;
        const size_t nx = (size_t)2 * 5 * 15 * 13, ny = (size_t)2 * 5 * s.P * s.Q;
        float *xv = hrand(nx, 0, 1);
        for (size_t i = 0; i < nx; i++) xv[i] = floorf(xv[i] * 4.0f); /* many ties: the first maximum wins */
        void *x = hzero(nx * es);
        for (size_t i = 0; i < nx; i++) {
            if (f->dt == DT_F32) ((float *)x)[i] = xv[i];
            else ((uint16_t *)x)[i] = f->dt == DT_BF16 ? f32_to_bf16(xv[i]) : f32_to_f16(xv[i]);
        }
        void *gx = dput(x, nx * es), *y = hzero(ny * es), *gy = dput(NULL, ny * es);
        int32_t *am = hzero(ny * 4), *gam = dput(NULL, ny * 4);
        CPU->maxpool_forward(CPU, &s, x, y, am), GPU->maxpool_forward(GPU, &s, gx, gy, gam);
        CHECK_BITS(f, gy, y, ny * es);
        CHECK_BITS(f, gam, am, ny * 4);
        /* overlapping 3x3 / 2 windows: an input gets up to 4 gradients, rounded after each */
        void *dy = hrand_dt(f->dt, ny, -1, 1), *dx = hrand_dt(f->dt, nx, -1, 1);
        void *gdy = dput(dy, ny * es), *gdx = dput(dx, nx * es);
        CPU->maxpool_backward(CPU, &s, am, dy, dx), GPU->maxpool_backward(GPU, &s, gam, gdy, gdx);
        CHECK_BITS(f, gdx, dx, nx * es);
        const int N = 3, C = 37, HW = 49;
        const ActDesc d = act_desc(N, C, HW, *f);
        const size_t na = (size_t)N * C * HW;
        void *ax = hrand_dt(f->dt, na, -1, 1), *gax = dput(ax, na * es);
        float *ay = hzero((size_t)N * C * 4), *gay = dputf(NULL, (size_t)N * C);
        CPU->avgpool_forward(CPU, &d, ax, ay), GPU->avgpool_forward(GPU, &d, gax, gay);
        CHECK_REL(gay, ay, (size_t)N * C, 1e-7);
        float *ady = hrand((size_t)N * C, -1, 1), *gady = dputf(ady, (size_t)N * C);
        CPU->avgpool_backward(CPU, &d, ady, ax), GPU->avgpool_backward(GPU, &d, gady, gax);
        CHECK_BITS(f, gax, ax, na * es);
        release();
    }
}

/* {NCHW, F32} is the plain format: its prepared weight is the fp32 master itself (bit for
 * bit), which the convolution entries take as it is; a bias goes with the plain format only
 * (another format's convolution refuses it with the sticky error instead of dropping it). */
static void plain_format_weight_is_the_master_and_only_it_takes_a_bias(void) {
    ConvShape s;
    conv_shape_init(&s, 2, 16, 9, 9, 32, 3, 3, 1, 1);
    const size_t nx = (size_t)2 * 16 * 81, nw = (size_t)32 * 16 * 9, ny = (size_t)2 * 32 * s.P * s.Q;
    float *x = hrand(nx, -1, 1), *w = hrand(nw, -0.5f, 0.5f), *b = hrand(32, -1, 1);
    float *gx = dputf(x, nx), *gw = dputf(w, nw), *gwp = dputf(NULL, nw), *gb = dputf(b, 32);
    float *ya = dputf(NULL, ny), *yb = dputf(NULL, ny);
    float *gws = dputf(NULL, GPU->conv2d_workspace(GPU, &s) + 1);
    GPU->conv_weight_prep(GPU, &s, gw, gwp);
    CHECK_BITS(&s.f, gwp, w, nw * 4);
    GPU->conv2d_forward(GPU, &s, gx, gw, gb, ya, gws);
    GPU->conv2d_forward(GPU, &s, gx, gwp, gb, yb, gws);
    CHECK_BITS(&s.f, yb, dget(ya, ny), ny * 4);
    Err e;
    CHECK_MSG(GPU->error(GPU, &e) == 0, "%s", e.msg);
    ConvShape h = s;
    h.f = (ActFmt){1, DT_BF16};
    void *hx = dput(NULL, nx * 2), *hwp = dput(NULL, nw * 2), *hy = dput(NULL, ny * 2);
    float *hws = dputf(NULL, GPU->conv2d_workspace(GPU, &h) + 1);
    GPU->conv_weight_prep(GPU, &h, gw, hwp);
    GPU->conv2d_forward(GPU, &h, hx, hwp, gb, hy, hws);
    CHECK(GPU->error(GPU, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "plain format");
    release();
}

/* After a first call sized the context scratch, a step of image entries in act formats
 * calls cudaMalloc no more (the arena rule: no allocation in the steady state). */
static void act_format_step_allocates_nothing_after_the_first_call(void) {
    const ActFmt f = {1, DT_BF16}, g = {0, DT_F16};
    const ActDesc in = act_desc(4, 32, 196, f), mid = act_desc(4, 64, 196, f), mid16 = act_desc(4, 64, 196, g);
    ConvShape s;
    conv_shape_init(&s, 4, 32, 14, 14, 64, 3, 3, 1, 1);
    s.f = f;
    PoolShape ps;
    pool_shape_init(&ps, 4, 64, 14, 14, 3, 2, 1);
    ps.f = f;
    const size_t nx = (size_t)4 * 32 * 196, ny = (size_t)4 * 64 * 196, nw = (size_t)64 * 32 * 9;
    const size_t np = (size_t)4 * 64 * ps.P * ps.Q;
    const ActDesc pooled = act_desc(4, 64, ps.P * ps.Q, f);
    void *x = dput(NULL, nx * 2), *y = dput(NULL, ny * 2), *dy = dput(NULL, ny * 2), *dx = dput(NULL, nx * 2);
    void *wp = dput(NULL, nw * 2), *dwp = dput(NULL, nw * 2), *pool = dput(NULL, np * 2);
    float *w = dputf(NULL, nw), *dw = dputf(NULL, nw), *img = dputf(NULL, nx), *feat = dputf(NULL, 4 * 64);
    float *gam = dputf(NULL, 64), *bet = dputf(NULL, 64), *rm = dputf(NULL, 64), *rv = dputf(NULL, 64);
    float *sm = dputf(NULL, 64), *sr = dputf(NULL, 64), *dg = dputf(NULL, 64), *db = dputf(NULL, 64);
    int32_t *am = dput(NULL, np * 4);
    float *ws = dputf(NULL, GPU->conv2d_workspace(GPU, &s) + 1);
    GPU->memset_zero(GPU, rv, 64 * 4);
    uint64_t before = 0;
    for (int step = 0; step < 2; step++) {
        if (step == 1) before = gpu_malloc_count(GPU);
        GPU->act_import(GPU, &in, img, x);
        GPU->conv_weight_prep(GPU, &s, w, wp);
        GPU->conv2d_forward(GPU, &s, x, wp, NULL, y, ws);
        GPU->batchnorm_forward_train(GPU, &mid, y, gam, bet, 0.1f, 1e-5f, rm, rv, y, sm, sr);
        GPU->batchnorm_forward_train(GPU, &mid16, y, gam, bet, 0.1f, 1e-5f, rm, rv, y, sm, sr);
        GPU->relu_forward(GPU, f.dt, ny, y, y);
        GPU->maxpool_forward(GPU, &ps, y, pool, am);
        GPU->avgpool_forward(GPU, &pooled, pool, feat);
        GPU->avgpool_backward(GPU, &pooled, feat, pool);
        GPU->maxpool_backward(GPU, &ps, am, pool, dy);
        GPU->relu_backward(GPU, f.dt, ny, y, dy, dy);
        GPU->batchnorm_backward_train(GPU, &mid, y, gam, sm, sr, dy, dy, dg, db);
        GPU->batchnorm_backward_eval(GPU, &mid16, y, gam, rm, rv, 1e-5f, dy, dy, dg, db);
        GPU->conv2d_backward(GPU, &s, x, wp, dy, dx, dwp, NULL, ws);
        GPU->conv_weight_grad_add(GPU, &s, dwp, dw);
        GPU->act_export(GPU, &in, dx, img);
        GPU->synchronize(GPU);
    }
    CHECK_MSG(gpu_malloc_count(GPU) == before, "%llu cudaMalloc calls in the second step",
              (unsigned long long)(gpu_malloc_count(GPU) - before));
    release();
}

int main(void) {
    gpu_parity_start(NULL);
    fprintf(stderr, "-- image entries in the act formats (NHWC bf16, NHWC fp32, NCHW bf16, NHWC fp16) --\n");
    RUN(act_import_export_relu_add_match_cpu_bitwise);
    RUN(conv_act_matches_cpu_with_prepared_weights);
    RUN(batchnorm_act_train_matches_cpu);
    RUN(batchnorm_act_eval_matches_cpu);
    RUN(pooling_act_matches_cpu_with_exact_argmax);
    RUN(plain_format_weight_is_the_master_and_only_it_takes_a_bias);
    RUN(act_format_step_allocates_nothing_after_the_first_call);

    gpu_parity_stop();
    return test_summary();
}
