/* test_gpu_parity.c: every op of the CUDA backend against the CPU reference backend on the
 * same random inputs, forward and backward (accumulating into non-zero gradients), the image
 * ops in the plain format (fp32 NCHW), plus the GPU-only pieces (optim_step's AdamW and
 * clipping, global norm, non-finite check, casts, device arena, the batch prefetch's upload
 * events, the sticky error and its Backend). The image ops in the act formats (NHWC, bf16,
 * fp16) are test_gpu_parity_act.c's; the shared helpers are gpu_parity.h's.
 * Tolerances (relative error ||gpu - cpu|| / ||cpu||): strict fp32 (no TF32) 1e-5, 1e-4 for
 * cuDNN convolutions; bf16 matrix products 1e-2; dropout and pooling masks/argmax exactly.
 * SKIPs (exit 77) when the build has no CUDA backend or the machine no usable GPU. */
// TEST_LIBS: vqa_backend vqa_optim
// TEST_LABELS: gpu
// TEST_TIMEOUT: 300
#include "gpu_parity.h"
#include "optim/optim.h"

/* ---- cases ---- */

static const ActFmt PLAIN = {0, DT_F32}; /* fp32 NCHW */

static void gemm_matches_cpu_all_transposes(void) {
    const int M = 37, N = 53, K = 29;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = hrand((size_t)M * K, -1, 1), *B = hrand((size_t)K * N, -1, 1), *C = hrand((size_t)M * N, -1, 1);
            float *dA = dputf(A, (size_t)M * K), *dB = dputf(B, (size_t)K * N), *dC = dputf(C, (size_t)M * N);
            CPU->gemm(CPU, ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.5f, C, N);
            GPU->gemm(GPU, ta, tb, M, N, K, 0.7f, dA, lda, dB, ldb, 0.5f, dC, N);
            CHECK_REL(dC, C, (size_t)M * N, tol());
        }
    release();
}

static void conv_case(int N, int C, int H, int W, int K, int R, int stride, int pad, int bias) {
    ConvShape s;
    conv_shape_init(&s, N, C, H, W, K, R, R, stride, pad);
    size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * s.P * s.Q;
    float *x = hrand(nx, -1, 1), *w = hrand(nw, -0.5f, 0.5f), *b = bias ? hrand(K, -1, 1) : NULL;
    float *y = hzero(ny * 4), *dy = hrand(ny, -1, 1);
    float *dx = hrand(nx, -1, 1), *dw = hrand(nw, -1, 1), *db = hrand(K, -1, 1);
    float *ddx = dputf(dx, nx), *ddw = dputf(dw, nw), *ddb = dputf(db, K);
    float *cws = hzero(CPU->conv2d_workspace(CPU, &s) * 4 + 4);
    size_t gws_n = GPU->conv2d_workspace(GPU, &s);
    float *gws = dputf(NULL, gws_n + 1);
    float *gx = dputf(x, nx), *gw = dputf(w, nw), *gb = bias ? dputf(b, K) : NULL, *gy = dputf(NULL, ny);
    float *gdy = dputf(dy, ny);
    CPU->conv2d_forward(CPU, &s, x, w, b, y, cws);
    GPU->conv2d_forward(GPU, &s, gx, gw, gb, gy, gws);
    CHECK_REL(gy, y, ny, tol_conv());
    CPU->conv2d_backward(CPU, &s, x, w, dy, dx, dw, db, cws);
    GPU->conv2d_backward(GPU, &s, gx, gw, gdy, ddx, ddw, ddb, gws);
    CHECK_REL(ddx, dx, nx, tol_conv());
    CHECK_REL(ddw, dw, nw, tol_conv());
    CHECK_REL(ddb, db, (size_t)K, tol_conv());
    release();
}

static void conv2d_forward_backward_match_cpu(void) {
    conv_case(2, 3, 17, 19, 8, 7, 2, 3, 1);  /* a stem-like 7x7 stride 2 with bias */
    conv_case(2, 16, 9, 9, 32, 1, 1, 0, 0);  /* 1x1 */
    conv_case(3, 8, 10, 10, 16, 3, 2, 1, 0); /* 3x3 stride 2 */
    conv_case(2, 32, 7, 7, 32, 3, 1, 1, 1);  /* 3x3 on a 7x7 map */
}

/* two shapes: one group of partial sums per channel, and M = 2400 values in several groups
 * (two-stage kernels of batchnorm_act.cu) */
static void batchnorm_train_case(int N, int C, int HW) {
    const size_t n = (size_t)N * C * HW;
    const ActDesc d = act_desc(N, C, HW, PLAIN);
    float *x = hrand(n, -2, 3), *g = hrand(C, 0.5f, 1.5f), *b = hrand(C, -1, 1);
    float *rm = hrand(C, -1, 1), *rv = hrand(C, 0.5f, 2), *y = hzero(n * 4), *sm = hzero(C * 4), *sr = hzero(C * 4);
    float *gx = dputf(x, n), *gg = dputf(g, C), *gb = dputf(b, C), *grm = dputf(rm, C), *grv = dputf(rv, C);
    float *gy = dputf(NULL, n), *gsm = dputf(NULL, C), *gsr = dputf(NULL, C);
    CPU->batchnorm_forward_train(CPU, &d, x, g, b, 0.1f, 1e-5f, rm, rv, y, sm, sr);
    GPU->batchnorm_forward_train(GPU, &d, gx, gg, gb, 0.1f, 1e-5f, grm, grv, gy, gsm, gsr);
    CHECK_REL(gy, y, n, 1e-5);
    CHECK_REL(gsm, sm, (size_t)C, 1e-6);
    CHECK_REL(gsr, sr, (size_t)C, 1e-6);
    CHECK_REL(grm, rm, (size_t)C, 1e-6);
    CHECK_REL(grv, rv, (size_t)C, 1e-6);
    float *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1), *dg = hrand(C, -1, 1), *db = hrand(C, -1, 1);
    float *gdy = dputf(dy, n), *gdx = dputf(dx, n), *gdg = dputf(dg, C), *gdb = dputf(db, C);
    CPU->batchnorm_backward_train(CPU, &d, x, g, sm, sr, dy, dx, dg, db);
    GPU->batchnorm_backward_train(GPU, &d, gx, gg, gsm, gsr, gdy, gdx, gdg, gdb);
    CHECK_REL(gdx, dx, n, 1e-5);
    CHECK_REL(gdg, dg, (size_t)C, 1e-5);
    CHECK_REL(gdb, db, (size_t)C, 1e-5);
    release();
}

static void batchnorm_train_matches_cpu_with_running_stats(void) {
    batchnorm_train_case(4, 5, 37);
    batchnorm_train_case(8, 37, 300);
}

static void batchnorm_eval_matches_cpu(void) {
    const int N = 3, C = 6, HW = 50;
    const size_t n = (size_t)N * C * HW;
    const ActDesc d = act_desc(N, C, HW, PLAIN);
    float *x = hrand(n, -2, 3), *g = hrand(C, 0.5f, 1.5f), *b = hrand(C, -1, 1);
    float *rm = hrand(C, -1, 1), *rv = hrand(C, 0.5f, 2), *y = hzero(n * 4);
    float *gx = dputf(x, n), *gg = dputf(g, C), *gb = dputf(b, C), *grm = dputf(rm, C), *grv = dputf(rv, C);
    float *gy = dputf(NULL, n);
    CPU->batchnorm_forward_eval(CPU, &d, x, g, b, rm, rv, 1e-5f, y);
    GPU->batchnorm_forward_eval(GPU, &d, gx, gg, gb, grm, grv, 1e-5f, gy);
    CHECK_REL(gy, y, n, 1e-6);
    float *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1), *dg = hrand(C, -1, 1), *db = hrand(C, -1, 1);
    float *gdy = dputf(dy, n), *gdx = dputf(dx, n), *gdg = dputf(dg, C), *gdb = dputf(db, C);
    CPU->batchnorm_backward_eval(CPU, &d, x, g, rm, rv, 1e-5f, dy, dx, dg, db);
    GPU->batchnorm_backward_eval(GPU, &d, gx, gg, grm, grv, 1e-5f, gdy, gdx, gdg, gdb);
    CHECK_REL(gdx, dx, n, 1e-6);
    CHECK_REL(gdg, dg, (size_t)C, 1e-5);
    CHECK_REL(gdb, db, (size_t)C, 1e-5);
    release();
}

/* one activation's entries on a backend (ReLU in fp32, its plain storage type) */
typedef void (*Fwd)(const Backend *be, size_t n, const float *x, float *y);
typedef void (*Bwd)(const Backend *be, size_t n, const float *xy, const float *dy, float *dx);
static void relu_fwd(const Backend *be, size_t n, const float *x, float *y) { be->relu_forward(be, DT_F32, n, x, y); }
static void relu_bwd(const Backend *be, size_t n, const float *y, const float *dy, float *dx) {
    be->relu_backward(be, DT_F32, n, y, dy, dx);
}
static void gelu_fwd(const Backend *be, size_t n, const float *x, float *y) { be->gelu_forward(be, n, x, y); }
static void gelu_bwd(const Backend *be, size_t n, const float *x, const float *dy, float *dx) {
    be->gelu_backward(be, n, x, dy, dx);
}
static void tanh_fwd(const Backend *be, size_t n, const float *x, float *y) { be->tanh_forward(be, n, x, y); }
static void tanh_bwd(const Backend *be, size_t n, const float *y, const float *dy, float *dx) {
    be->tanh_backward(be, n, y, dy, dx);
}

static void act_case(Fwd f, Bwd b, int bwd_uses_output) {
    const size_t n = 10007;
    float *x = hrand(n, -4, 4), *y = hzero(n * 4), *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1);
    float *gx = dputf(x, n), *gy = dputf(NULL, n), *gdy = dputf(dy, n), *gdx = dputf(dx, n);
    f(CPU, n, x, y);
    f(GPU, n, gx, gy);
    CHECK_REL(gy, y, n, 1e-6);
    b(CPU, n, bwd_uses_output ? y : x, dy, dx);
    b(GPU, n, bwd_uses_output ? gy : gx, gdy, gdx);
    CHECK_REL(gdx, dx, n, 1e-6);
}

static void activations_match_cpu(void) {
    act_case(relu_fwd, relu_bwd, 1);
    act_case(gelu_fwd, gelu_bwd, 0);
    act_case(tanh_fwd, tanh_bwd, 1);
    release();
}

static void elementwise_and_concat_match_cpu(void) {
    const size_t n = 5003;
    float *a = hrand(n, -1, 1), *b = hrand(n, -1, 1), *y = hzero(n * 4), *dy = hrand(n, -1, 1);
    float *da = hrand(n, -1, 1), *db = hrand(n, -1, 1);
    float *ga = dputf(a, n), *gb = dputf(b, n), *gy = dputf(NULL, n), *gdy = dputf(dy, n);
    float *gda = dputf(da, n), *gdb = dputf(db, n);
    CPU->add_forward(CPU, DT_F32, n, a, b, y), GPU->add_forward(GPU, DT_F32, n, ga, gb, gy);
    CHECK_REL(gy, y, n, 1e-7);
    CPU->add_backward(CPU, n, dy, da, db), GPU->add_backward(GPU, n, gdy, gda, gdb);
    CHECK_REL(gda, da, n, 1e-7);
    CPU->mul_forward(CPU, n, a, b, y), GPU->mul_forward(GPU, n, ga, gb, gy);
    CHECK_REL(gy, y, n, 1e-7);
    CPU->mul_backward(CPU, n, a, b, dy, da, db), GPU->mul_backward(GPU, n, ga, gb, gdy, gda, gdb);
    CHECK_REL(gda, da, n, 1e-6);
    CHECK_REL(gdb, db, n, 1e-6);
    const int N = 7, Da = 13, Db = 9;
    float *ca = hrand((size_t)N * Da, -1, 1), *cb = hrand((size_t)N * Db, -1, 1), *cy = hzero((size_t)N * (Da + Db) * 4);
    float *gca = dputf(ca, (size_t)N * Da), *gcb = dputf(cb, (size_t)N * Db), *gcy = dputf(NULL, (size_t)N * (Da + Db));
    CPU->concat_forward(CPU, N, Da, Db, ca, cb, cy), GPU->concat_forward(GPU, N, Da, Db, gca, gcb, gcy);
    CHECK_REL(gcy, cy, (size_t)N * (Da + Db), 1e-9);
    float *cdy = hrand((size_t)N * (Da + Db), -1, 1), *gcdy = dputf(cdy, (size_t)N * (Da + Db));
    CPU->concat_backward(CPU, N, Da, Db, cdy, ca, NULL), GPU->concat_backward(GPU, N, Da, Db, gcdy, gca, NULL);
    CHECK_REL(gca, ca, (size_t)N * Da, 1e-7);
    release();
}

static void pooling_matches_cpu_with_exact_argmax(void) {
    PoolShape s;
    pool_shape_init(&s, 2, 3, 15, 13, 3, 2, 1);
    size_t nx = (size_t)2 * 3 * 15 * 13, ny = (size_t)2 * 3 * s.P * s.Q;
    float *x = hrand(nx, 0, 1);
    for (size_t i = 0; i < nx; i++) x[i] = floorf(x[i] * 4.0f); /* many ties: first maximum wins */
    float *y = hzero(ny * 4);
    int32_t *am = hzero(ny * 4);
    float *gx = dputf(x, nx), *gy = dputf(NULL, ny);
    int32_t *gam = dput(NULL, ny * 4);
    CPU->maxpool_forward(CPU, &s, x, y, am);
    GPU->maxpool_forward(GPU, &s, gx, gy, gam);
    CHECK_REL(gy, y, ny, 1e-9);
    int32_t *am2 = hzero(ny * 4);
    GPU->copy_d2h(GPU, am2, gam, ny * 4);
    CHECK(memcmp(am, am2, ny * 4) == 0);
    float *dy = hrand(ny, -1, 1), *dx = hrand(nx, -1, 1), *gdy = dputf(dy, ny), *gdx = dputf(dx, nx);
    CPU->maxpool_backward(CPU, &s, am, dy, dx);
    GPU->maxpool_backward(GPU, &s, gam, gdy, gdx);
    CHECK_REL(gdx, dx, nx, 1e-9);
    const int N = 3, C = 5, HW = 49;
    const ActDesc d = act_desc(N, C, HW, PLAIN);
    float *ax = hrand((size_t)N * C * HW, -1, 1), *ay = hzero((size_t)N * C * 4);
    float *gax = dputf(ax, (size_t)N * C * HW), *gay = dputf(NULL, (size_t)N * C);
    CPU->avgpool_forward(CPU, &d, ax, ay), GPU->avgpool_forward(GPU, &d, gax, gay);
    CHECK_REL(gay, ay, (size_t)N * C, 1e-7);
    float *ady = hrand((size_t)N * C, -1, 1), *gady = dputf(ady, (size_t)N * C);
    CPU->avgpool_backward(CPU, &d, ady, ax), GPU->avgpool_backward(GPU, &d, gady, gax);
    CHECK_REL(gax, ax, (size_t)N * C * HW, 1e-7);
    release();
}

static void linear_matches_cpu(void) {
    const int N = 33, in = 71, out = 45;
    float *x = hrand((size_t)N * in, -1, 1), *w = hrand((size_t)out * in, -0.3f, 0.3f), *b = hrand(out, -1, 1);
    float *y = hzero((size_t)N * out * 4), *dy = hrand((size_t)N * out, -1, 1);
    float *dx = hrand((size_t)N * in, -1, 1), *dw = hrand((size_t)out * in, -1, 1), *db = hrand(out, -1, 1);
    float *gx = dputf(x, (size_t)N * in), *gw = dputf(w, (size_t)out * in), *gb = dputf(b, out);
    float *gy = dputf(NULL, (size_t)N * out), *gdy = dputf(dy, (size_t)N * out);
    float *gdx = dputf(dx, (size_t)N * in), *gdw = dputf(dw, (size_t)out * in), *gdb = dputf(db, out);
    CPU->linear_forward(CPU, N, in, out, x, w, b, y), GPU->linear_forward(GPU, N, in, out, gx, gw, gb, gy);
    CHECK_REL(gy, y, (size_t)N * out, tol());
    CPU->linear_backward(CPU, N, in, out, x, w, dy, dx, dw, db);
    GPU->linear_backward(GPU, N, in, out, gx, gw, gdy, gdx, gdw, gdb);
    CHECK_REL(gdx, dx, (size_t)N * in, tol());
    CHECK_REL(gdw, dw, (size_t)out * in, tol());
    CHECK_REL(gdb, db, (size_t)out, 1e-6);
    release();
}

static void embedding_matches_cpu_skipping_padding(void) {
    const int N = 50, V = 11, D = 24;
    int32_t *ids = hzero(N * 4);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(trng_u64(&rng) % V);
    float *tab = hrand((size_t)V * D, -1, 1), *y = hzero((size_t)N * D * 4), *dy = hrand((size_t)N * D, -1, 1);
    float *dt = hrand((size_t)V * D, -1, 1);
    int32_t *gids = dput(ids, N * 4);
    float *gtab = dputf(tab, (size_t)V * D), *gy = dputf(NULL, (size_t)N * D), *gdy = dputf(dy, (size_t)N * D);
    float *gdt = dputf(dt, (size_t)V * D);
    CPU->embedding_forward(CPU, N, V, D, ids, tab, y), GPU->embedding_forward(GPU, N, V, D, gids, gtab, gy);
    CHECK_REL(gy, y, (size_t)N * D, 1e-9);
    CPU->embedding_backward(CPU, N, V, D, ids, 0, dy, dt), GPU->embedding_backward(GPU, N, V, D, gids, 0, gdy, gdt);
    CHECK_REL(gdt, dt, (size_t)V * D, 1e-6); /* atomics: order of additions differs */
    float *row0 = dget(gdt, D);
    CHECK(memcmp(row0, dt, D * 4) == 0); /* padding row untouched */
    release();
}

static void layernorm_matches_cpu(void) {
    const int N = 37, D = 312;
    const size_t n = (size_t)N * D;
    float *x = hrand(n, -2, 2), *w = hrand(D, 0.5f, 1.5f), *b = hrand(D, -1, 1), *y = hzero(n * 4);
    float *mu = hzero(N * 4), *rs = hzero(N * 4);
    float *gx = dputf(x, n), *gw = dputf(w, D), *gb = dputf(b, D), *gy = dputf(NULL, n);
    float *gmu = dputf(NULL, N), *grs = dputf(NULL, N);
    CPU->layernorm_forward(CPU, N, D, x, w, b, 1e-12f, y, mu, rs);
    GPU->layernorm_forward(GPU, N, D, gx, gw, gb, 1e-12f, gy, gmu, grs);
    CHECK_REL(gy, y, n, 1e-6);
    CHECK_REL(grs, rs, (size_t)N, 1e-6);
    float *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1), *dw = hrand(D, -1, 1), *db = hrand(D, -1, 1);
    float *gdy = dputf(dy, n), *gdx = dputf(dx, n), *gdw = dputf(dw, D), *gdb = dputf(db, D);
    CPU->layernorm_backward(CPU, N, D, x, w, mu, rs, dy, dx, dw, db);
    GPU->layernorm_backward(GPU, N, D, gx, gw, gmu, grs, gdy, gdx, gdw, gdb);
    CHECK_REL(gdx, dx, n, 1e-5);
    CHECK_REL(gdw, dw, (size_t)D, 1e-5);
    CHECK_REL(gdb, db, (size_t)D, 1e-5);
    release();
}

static void softmax_matches_cpu(void) {
    const int R = 41, C = 97;
    const size_t n = (size_t)R * C;
    float *x = hrand(n, -5, 5), *y = hzero(n * 4), *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1);
    float *gx = dputf(x, n), *gy = dputf(NULL, n), *gdy = dputf(dy, n), *gdx = dputf(dx, n);
    CPU->softmax_forward(CPU, R, C, x, y), GPU->softmax_forward(GPU, R, C, gx, gy);
    CHECK_REL(gy, y, n, 1e-6);
    CPU->softmax_backward(CPU, R, C, y, dy, dx), GPU->softmax_backward(GPU, R, C, gy, gdy, gdx);
    CHECK_REL(gdx, dx, n, 1e-5);
    release();
}

static void dropout_mask_is_bit_identical_to_cpu(void) {
    const size_t n = 100003;
    const uint64_t seed = 0xC0FFEEull;
    float *x = hrand(n, -1, 1), *y = hzero(n * 4), *dy = hrand(n, -1, 1), *dx = hrand(n, -1, 1);
    uint8_t *m = hzero(n), *m2 = hzero(n);
    float *gx = dputf(x, n), *gy = dputf(NULL, n), *gdy = dputf(dy, n), *gdx = dputf(dx, n);
    uint8_t *gm = dput(NULL, n);
    CPU->dropout_forward(CPU, n, 0.3f, seed, x, y, m), GPU->dropout_forward(GPU, n, 0.3f, seed, gx, gy, gm);
    GPU->copy_d2h(GPU, m2, gm, n);
    CHECK(memcmp(m, m2, n) == 0);
    CHECK_REL(gy, y, n, 1e-7);
    CPU->dropout_backward(CPU, n, 0.3f, m, dy, dx), GPU->dropout_backward(GPU, n, 0.3f, gm, gdy, gdx);
    CHECK_REL(gdx, dx, n, 1e-7);
    release();
}

static void attention_matches_cpu_with_mask_and_dropout(void) {
    const int B = 3, L = 7, nh = 3, hd = 8, E = nh * hd;
    const size_t nx = (size_t)B * L * E, np = (size_t)B * nh * L * L;
    const float p = bf16_mode ? 0.0f : 0.1f;
    float *q = hrand(nx, -1, 1), *k = hrand(nx, -1, 1), *v = hrand(nx, -1, 1);
    float *mask = hzero((size_t)B * L * 4);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) mask[b * L + l] = l < L - 2 * b ? 1.0f : 0.0f; /* padded rows */
    float *probs = hzero(np * 4), *out = hzero(nx * 4);
    uint8_t *dm = hzero(np), *dm2 = hzero(np);
    float *cws = hzero(CPU->attention_workspace(CPU, B, L, nh, hd) * 4 + 4);
    float *gq = dputf(q, nx), *gk = dputf(k, nx), *gv = dputf(v, nx), *gmask = dputf(mask, (size_t)B * L);
    float *gprobs = dputf(NULL, np), *gout = dputf(NULL, nx);
    float *gws = dputf(NULL, GPU->attention_workspace(GPU, B, L, nh, hd));
    uint8_t *gdm = dput(NULL, np);
    CPU->attention_forward(CPU, B, L, nh, hd, q, k, v, mask, p, 77, probs, dm, out, cws);
    GPU->attention_forward(GPU, B, L, nh, hd, gq, gk, gv, gmask, p, 77, gprobs, gdm, gout, gws);
    CHECK_REL(gprobs, probs, np, bf16_mode ? 1e-2 : 1e-5);
    CHECK_REL(gout, out, nx, tol());
    if (p > 0) {
        GPU->copy_d2h(GPU, dm2, gdm, np);
        CHECK(memcmp(dm, dm2, np) == 0);
    }
    float *dout = hrand(nx, -1, 1), *dq = hrand(nx, -1, 1), *dk = hrand(nx, -1, 1), *dv = hrand(nx, -1, 1);
    float *gdout = dputf(dout, nx), *gdq = dputf(dq, nx), *gdk = dputf(dk, nx), *gdv = dputf(dv, nx);
    CPU->attention_backward(CPU, B, L, nh, hd, q, k, v, probs, dm, p, dout, dq, dk, dv, cws);
    GPU->attention_backward(GPU, B, L, nh, hd, gq, gk, gv, gprobs, gdm, p, gdout, gdq, gdk, gdv, gws);
    CHECK_REL(gdq, dq, nx, tol());
    CHECK_REL(gdk, dk, nx, tol());
    CHECK_REL(gdv, dv, nx, tol());
    release();
}

static void losses_match_cpu_value_and_gradient(void) {
    const int N = 19, A = 301;
    const size_t n = (size_t)N * A;
    float *z = hrand(n, -6, 6), *t = hzero(n * 4), *dz = hzero(n * 4);
    for (size_t i = 0; i < n; i++) t[i] = (trng_u64(&rng) % 7 == 0) ? 0.3f * (float)(trng_u64(&rng) % 4) : 0.0f;
    for (int a = 0; a < A; a++) t[5 * A + a] = 0.0f; /* a row with no answer in the vocabulary */
    float *gz = dputf(z, n), *gt = dputf(t, n), *gdz = dputf(NULL, n);
    double lc = CPU->bce_logits(CPU, N, A, z, t, 2.0f, dz), lg = GPU->bce_logits(GPU, N, A, gz, gt, 2.0f, gdz);
    CHECK_MSG(fabs(lc - lg) <= 1e-9 * fabs(lc), "bce cpu %.17g gpu %.17g", lc, lg);
    CHECK_REL(gdz, dz, n, 1e-6);
    lc = CPU->soft_xent(CPU, N, A, z, t, 1.0f, dz), lg = GPU->soft_xent(GPU, N, A, gz, gt, 1.0f, gdz);
    CHECK_MSG(fabs(lc - lg) <= 1e-9 * fabs(lc), "soft_xent cpu %.17g gpu %.17g", lc, lg);
    CHECK_REL(gdz, dz, n, 1e-6);
    release();
}

/* optim_step on the CUDA backend (its adamw_update, global_norm and scale kernels) against
 * the same steps on the CPU backend: warm-up then cosine, clipping, two segments. */
static void adamw_matches_cpu_optimizer(void) {
    const size_t n = 3001;
    float *p = hrand(n + 100, -1, 1), *g = hrand(n, -1, 1);
    OptimSegment segs[2] = {{100, 0, 2000, 1.0f, 1}, {2100, 2000, 1001, 0.1f, 0}};
    OptimOptions oo = {.lr = 1e-3f, .schedule = SCHED_COSINE, .warmup_steps = 1, .total_steps = 4,
                       .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f, .clip_norm = 1.0f};
    Optimizer oc, og;
    Err e;
    CHECK(optim_init(&oc, CPU, &oo, segs, 2, n, &e) == 0);
    CHECK(optim_init(&og, GPU, &oo, segs, 2, n, &e) == 0);
    float *gp = dputf(p, n + 100), *gg = dputf(g, n);
    for (int step = 1; step <= 3; step++) {
        OptimStepInfo ic, ig;
        optim_step(CPU, &oc, p, g, &ic);
        optim_step(GPU, &og, gp, gg, &ig);
        CHECK_MSG(fabs(ic.grad_norm - ig.grad_norm) <= 1e-12 * ic.grad_norm, "norm cpu %.17g gpu %.17g", ic.grad_norm,
                  ig.grad_norm);
        CHECK(ic.lr == ig.lr && fabs(ic.clip_coef - ig.clip_coef) <= 1e-6f);
        if (step == 1) CHECK(ig.clip_coef < 0.1f); /* |g| ~ 31: clipped (then ~1: not) */
    }
    CHECK_REL(gp, p, n + 100, 1e-6);
    CHECK_REL(gg, g, n, 1e-6); /* clipped in place */
    CHECK_REL(og.m, oc.m, n, 1e-6);
    CHECK_REL(og.v, oc.v, n, 1e-6);
    CHECK(og.t == 3 && og.step == 3);
    optim_free(&oc);
    optim_free(&og);
    release();
}

static void global_norm_nonfinite_and_scale_match_cpu(void) {
    const size_t n = 300007;
    float *g = hrand(n, -1, 1), *gg = dputf(g, n);
    double a = CPU->global_norm(CPU, g, n), b = GPU->global_norm(GPU, gg, n);
    CHECK_MSG(fabs(a - b) <= 1e-12 * a, "norm cpu %.17g gpu %.17g", a, b);
    CHECK(GPU->has_nonfinite(GPU, gg, n) == 0);
    GPU->scale(GPU, gg, n, 0.5f);
    for (size_t i = 0; i < n; i++) g[i] *= 0.5f;
    CHECK_REL(gg, g, n, 1e-9);
    float bad = NAN;
    GPU->copy_h2d(GPU, gg + 123456, &bad, 4);
    CHECK(GPU->has_nonfinite(GPU, gg, n) == 1);
    bad = INFINITY;
    GPU->copy_h2d(GPU, gg + 123456, &bad, 4);
    CHECK(GPU->has_nonfinite(GPU, gg, n) == 1);
    release();
}

/* bf16 by hand: round the upper 16 bits to nearest even (NaN kept quiet). */
static uint16_t ref_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void casts_round_to_nearest_even(void) {
    const size_t n = 4099;
    float *x = hrand(n, -1000, 1000);
    x[0] = 1.00390625f;  /* 1 + 2^-8: a tie, rounds to even 1.0 */
    x[1] = 1.01171875f;  /* 1 + 3*2^-8: a tie, rounds up to 1 + 2^-6 */
    x[2] = INFINITY, x[3] = -0.0f, x[4] = 1e-40f; /* subnormal */
    uint16_t *h = hzero(n * 2), *r = hzero(n * 2);
    for (size_t i = 0; i < n; i++) r[i] = ref_bf16(x[i]);
    float *gx = dputf(x, n);
    uint16_t *gh = dput(NULL, n * 2);
    gpu_cast_f32_to_bf16(GPU, gx, gh, n);
    GPU->copy_d2h(GPU, h, gh, n * 2);
    CHECK(memcmp(h, r, n * 2) == 0);
    float *back = dputf(NULL, n), *hb;
    gpu_cast_bf16_to_f32(GPU, gh, back, n);
    hb = dget(back, n);
    int exact = 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)r[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        exact &= memcmp(&f, &hb[i], 4) == 0;
    }
    CHECK(exact);
    /* fp16: small integers and k/1024 (k < 64) are exact; random values within 2^-11
     * relative. (Not k/1024 + an integer >= 2: fp16's 10-bit mantissa has a 2^-9 step there.) */
    for (size_t i = 0; i < 64; i++) x[i] = (i & 1) ? (float)i : (float)i / 1024.0f;
    GPU->copy_h2d(GPU, gx, x, n * 4);
    gpu_cast_f32_to_f16(GPU, gx, gh, n);
    gpu_cast_f16_to_f32(GPU, gh, back, n);
    hb = dget(back, n);
    CHECK(memcmp(hb, x, 64 * 4) == 0);
    double worst = 0;
    for (size_t i = 64; i < n; i++)
        if (isfinite(x[i]) && fabsf(x[i]) > 1e-3f) worst = fmax(worst, fabs((double)hb[i] - x[i]) / fabs(x[i]));
    CHECK_MSG(worst <= 1.0 / 2048, "fp16 round trip rel err %g", worst);
    release();
}

static void device_arena_allocates_only_in_the_first_step(void) {
    ArenaMem mem = backend_arena_mem(GPU);
    Arena a;
    arena_init_mem(&a, 1 << 16, &mem);
    uint64_t after2 = 0;
    for (int step = 1; step <= 4; step++) {
        arena_reset(&a);
        float *z = arena_zeros(&a, 100000);
        CHECK(z != NULL);
        for (int i = 0; i < 20; i++) CHECK(arena_floats(&a, 1000 + 37 * (size_t)i) != NULL);
        if (step == 4) {
            float *h = dget(z, 100000);
            double s = 0;
            for (int i = 0; i < 100000; i++) s += fabs(h[i]);
            CHECK(s == 0.0);
        }
        GPU->memset_zero(GPU, z, 4); /* the memory is device memory the GPU can write */
        if (step == 2) after2 = a.n_sys_allocs;
    }
    CHECK(a.n_sys_allocs == after2);
    arena_free(&a);
    release();
}

/* The trainer's batch prefetch pattern (train_device.c TdevFeed) on the real streams: two
 * device buffers; each step the compute stream waits for its buffer's upload event, the
 * next step's data is uploaded into the other buffer behind that buffer's "consumed"
 * event, a kernel (scale by 2) reads and writes the current buffer, and the host refills
 * a pinned slot only after its upload event completed. Every step's result must be
 * exactly 2 x that step's own data (a wrong order shows another step's values). */
static void double_buffered_uploads_follow_their_events(void) {
    enum { STEPS = 8 };
    const size_t n = (size_t)1 << 22; /* 16 MiB per upload: long enough to overlap */
    float *host[2], *dev[2];
    void *uploaded[2], *consumed[2];
    float *back = hzero(n * sizeof(float));
    for (int i = 0; i < 2; i++) {
        host[i] = gpu_pinned_alloc(n * sizeof(float));
        dev[i] = dputf(NULL, n);
        uploaded[i] = GPU->event_create(GPU);
        consumed[i] = GPU->event_create(GPU);
        CHECK(host[i] && uploaded[i] && consumed[i]);
        if (!host[i]) return;
    }
    /* step k's data: k + i/n, exact in float for these sizes */
#define FILL(slot, k)                                                                       \
    for (size_t i_ = 0; i_ < n; i_++) host[slot][i_] = (float)(k) + (float)(i_ & 1023) / 1024.0f
    FILL(0, 0);
    GPU->upload_async(GPU, dev[0], host[0], n * sizeof(float));
    GPU->event_record(GPU, uploaded[0], BE_COPY);
    int bad = 0;
    for (int k = 0; k < STEPS; k++) {
        int c = k & 1, o = 1 - c;
        GPU->event_wait(GPU, uploaded[c], BE_COMPUTE);
        if (k + 1 < STEPS) {
            GPU->event_wait(GPU, uploaded[o], BE_HOST); /* its last upload has read the slot */
            FILL(o, k + 1);
            GPU->event_wait(GPU, consumed[o], BE_COPY);
            GPU->upload_async(GPU, dev[o], host[o], n * sizeof(float));
            GPU->event_record(GPU, uploaded[o], BE_COPY);
        }
        GPU->scale(GPU, dev[c], n, 2.0f);
        GPU->event_record(GPU, consumed[c], BE_COMPUTE);
        GPU->copy_d2h(GPU, back, dev[c], n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            if (back[i] != 2.0f * ((float)k + (float)(i & 1023) / 1024.0f)) {
                if (bad++ < 3) fprintf(stderr, "step %d: element %zu is %g\n", k, i, (double)back[i]);
                break;
            }
    }
#undef FILL
    CHECK_MSG(bad == 0, "%d steps read another step's data", bad);
    for (int i = 0; i < 2; i++) {
        GPU->event_wait(GPU, uploaded[i], BE_HOST);
        GPU->event_destroy(GPU, uploaded[i]);
        GPU->event_destroy(GPU, consumed[i]);
        gpu_pinned_free(host[i]);
    }
    release();
}

/* An empty batch is a no-op on the CPU (its loops do not run); the GPU must not turn it
 * into a sticky cuDNN error (zero-sized descriptors) that ends the run. */
static void empty_batch_conv_is_a_no_op(void) {
    ConvShape s;
    conv_shape_init(&s, 0, 3, 9, 9, 4, 3, 3, 1, 1);
    float *w = hrand(4 * 3 * 9, -1, 1), *dw = hrand(4 * 3 * 9, -1, 1);
    float *gw = dputf(w, 4 * 3 * 9), *gdw = dputf(dw, 4 * 3 * 9), *g1 = dputf(NULL, 16);
    CHECK(GPU->conv2d_workspace(GPU, &s) == 0);
    GPU->conv2d_forward(GPU, &s, g1, gw, NULL, g1, g1);
    GPU->conv2d_backward(GPU, &s, g1, gw, g1, g1, gdw, NULL, g1);
    Err e;
    CHECK_MSG(GPU->error(GPU, &e) == 0, "%s", e.msg);
    CHECK_REL(gdw, dw, (size_t)4 * 3 * 9, 1e-30); /* untouched */
    release();
}

static void sticky_error_names_file_and_call_then_clears(void) {
    ConvShape bad;
    conv_shape_init(&bad, 1, 0, 5, 5, 4, 3, 3, 1, 1); /* zero channels: cuDNN refuses */
    GPU->conv2d_workspace(GPU, &bad);
    Err e;
    CHECK(GPU->error(GPU, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "conv_cudnn.c:");
    CHECK_STR_CONTAINS(e.msg, "cuDNN");
    CHECK(GPU->error(GPU, &e) == 0);
}

/* Two CUDA backends in one process have a context each: a failure is the sticky error of
 * the backend it happened on only, and destroying one leaves the other working. */
static void sticky_error_belongs_to_its_backend(void) {
    GpuOptions o;
    gpu_options_default(&o);
    Err e;
    const Backend *other = backend_cuda_create(&o, &e);
    CHECK_MSG(other != NULL, "%s", e.msg);
    if (!other) return;
    ConvShape bad;
    conv_shape_init(&bad, 1, 0, 5, 5, 4, 3, 3, 1, 1);
    other->conv2d_workspace(other, &bad);
    CHECK(GPU->error(GPU, &e) == 0);
    CHECK(other->error(other, &e) == -1);
    CHECK_STR_CONTAINS(e.msg, "cuDNN");
    backend_cuda_destroy(other);
    float one = 1.0f, *g1 = dputf(&one, 1);
    GPU->scale(GPU, g1, 1, 3.0f);
    CHECK_REL(g1, (float[]){3.0f}, 1, 1e-9);
    release();
}

int main(void) {
    gpu_parity_start(NULL);
    fprintf(stderr, "-- strict fp32 (TF32 off) --\n");
    RUN(gemm_matches_cpu_all_transposes);
    RUN(conv2d_forward_backward_match_cpu);
    RUN(batchnorm_train_matches_cpu_with_running_stats);
    RUN(batchnorm_eval_matches_cpu);
    RUN(activations_match_cpu);
    RUN(elementwise_and_concat_match_cpu);
    RUN(pooling_matches_cpu_with_exact_argmax);
    RUN(linear_matches_cpu);
    RUN(embedding_matches_cpu_skipping_padding);
    RUN(layernorm_matches_cpu);
    RUN(softmax_matches_cpu);
    RUN(dropout_mask_is_bit_identical_to_cpu);
    RUN(attention_matches_cpu_with_mask_and_dropout);
    RUN(losses_match_cpu_value_and_gradient);
    RUN(adamw_matches_cpu_optimizer);
    RUN(global_norm_nonfinite_and_scale_match_cpu);
    RUN(casts_round_to_nearest_even);
    RUN(device_arena_allocates_only_in_the_first_step);
    RUN(double_buffered_uploads_follow_their_events);
    RUN(empty_batch_conv_is_a_no_op);
    RUN(sticky_error_names_file_and_call_then_clears);
    RUN(sticky_error_belongs_to_its_backend);
    gpu_parity_stop();
    GpuOptions o;
    gpu_options_default(&o);
    o.precision = DT_BF16;
    gpu_parity_start(&o);
    if (GPU->precision != DT_BF16) {
        fprintf(stderr, "a bf16 CUDA backend reports precision %s\n", dtype_name(GPU->precision));
        return 1;
    }
    bf16_mode = 1;
    fprintf(stderr, "-- bf16 matrix products --\n");
    RUN(gemm_matches_cpu_all_transposes);
    RUN(conv2d_forward_backward_match_cpu);
    RUN(linear_matches_cpu);
    RUN(attention_matches_cpu_with_mask_and_dropout);
    gpu_parity_stop();
    return test_summary();
}
