/* backend_cpu.c: the CPU Backend: host memory and the op_* reference functions of src/ops.
 *
 * The CPU backend has no state of its own (ctx is NULL; OpenMP and OpenBLAS keep the thread
 * count), so its table is a constant and every entry forwards to its op_* function. The
 * image entries unpack their descriptors into the op_*_act functions, which take the plain
 * format's fast path themselves (act_is_plain). */
#include "ops/backend.h"

#include <stdlib.h>
#include <string.h>

/* ---- memory ---- */
static void *cpu_alloc(const Backend *be, size_t bytes) {
    (void)be;
    void *p = NULL;
    /* 64-byte alignment for SIMD loads; round up as aligned_alloc requires. */
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    return p;
}
static void cpu_free(const Backend *be, void *p) { (void)be, free(p); }
static void cpu_memset_zero(const Backend *be, void *p, size_t bytes) {
    (void)be, op_zero(p, bytes);
}
static void cpu_copy(const Backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes && dst != src) memmove(dst, src, bytes);
}
static void cpu_synchronize(const Backend *be) { (void)be; }
static int cpu_error(const Backend *be, Err *e) { return (void)be, (void)e, 0; }
/* Synchronous backend: an event is a handle with nothing behind it (a constant, so no
 * state), recording and waiting have nothing to order. */
static const char cpu_event_dummy;
static void *cpu_event_create(const Backend *be) { return (void)be, (void *)&cpu_event_dummy; }
static void cpu_event_destroy(const Backend *be, void *ev) { (void)be, (void)ev; }
static void cpu_event_op(const Backend *be, void *ev, BeQueue q) { (void)be, (void)ev, (void)q; }

/* ---- threads, GEMM ---- */
static void cpu_set_threads(const Backend *be, int n) { (void)be, op_set_threads(n); }
static int cpu_get_threads(const Backend *be) { return (void)be, op_get_threads(); }
static void cpu_gemm(const Backend *be, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    (void)be, op_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- conv2d: the plain format (the only one with a bias) is op_conv2d_* ---- */
static int conv_plain(const ConvShape *s) { return !s->f.nhwc && s->f.dt == DT_F32; }
static size_t cpu_conv2d_workspace(const Backend *be, const ConvShape *s) {
    return (void)be, op_conv2d_act_workspace(s);
}
static void cpu_conv2d_forward(const Backend *be, const ConvShape *s, const void *x, const void *w,
                               const float *b, void *y, float *ws) {
    (void)be;
    if (conv_plain(s)) op_conv2d_forward(s, x, w, b, y, ws);
    else op_conv2d_act_forward(s, x, w, y, ws);
}
static void cpu_conv2d_backward(const Backend *be, const ConvShape *s, const void *x, const void *w,
                                const void *dy, void *dx, void *dw, float *db, float *ws) {
    (void)be;
    if (conv_plain(s)) op_conv2d_backward(s, x, w, dy, dx, dw, db, ws);
    else op_conv2d_act_backward(s, x, w, dy, dx, dw, ws);
}
static void cpu_conv_weight_prep(const Backend *be, const ConvShape *s, const float *w, void *wp) {
    (void)be, op_conv_weight_prep(s, w, wp);
}
static void cpu_conv_weight_grad_add(const Backend *be, const ConvShape *s, const void *dwp, float *dw) {
    (void)be, op_conv_weight_grad_add(s, dwp, dw);
}

/* ---- batch-norm ---- */
static void cpu_bn_forward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                 const float *beta, float momentum, float eps, float *rm, float *rv, void *y,
                                 float *save_mean, float *save_rstd) {
    (void)be, op_batchnorm_act_forward_train(&d->f, d->N, d->C, d->HW, x, gamma, beta, momentum, eps, rm, rv, y,
                                             save_mean, save_rstd);
}
static void cpu_bn_backward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                  const float *save_mean, const float *save_rstd, const void *dy, void *dx,
                                  float *dgamma, float *dbeta) {
    (void)be, op_batchnorm_act_backward_train(&d->f, d->N, d->C, d->HW, x, gamma, save_mean, save_rstd, dy, dx,
                                              dgamma, dbeta);
}
static void cpu_bn_forward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                const float *beta, const float *rm, const float *rv, float eps, void *y) {
    (void)be, op_batchnorm_act_forward_eval(&d->f, d->N, d->C, d->HW, x, gamma, beta, rm, rv, eps, y);
}
static void cpu_bn_backward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                 const float *rm, const float *rv, float eps, const void *dy, void *dx,
                                 float *dgamma, float *dbeta) {
    (void)be, op_batchnorm_act_backward_eval(&d->f, d->N, d->C, d->HW, x, gamma, rm, rv, eps, dy, dx, dgamma,
                                             dbeta);
}

/* ---- the encoder's edges ---- */
static void cpu_act_import(const Backend *be, const ActDesc *d, const float *x, void *y) {
    (void)be, op_act_import(&d->f, d->N, d->C, d->HW, x, y);
}
static void cpu_act_import_add(const Backend *be, const ActDesc *d, const float *x, void *y) {
    (void)be, op_act_import_add(&d->f, d->N, d->C, d->HW, x, y);
}
static void cpu_act_export(const Backend *be, const ActDesc *d, const void *x, float *y) {
    (void)be, op_act_export(&d->f, d->N, d->C, d->HW, x, y);
}

/* ---- element-wise ---- */
static void cpu_relu_forward(const Backend *be, DType dt, size_t n, const void *x, void *y) {
    (void)be, op_act_relu_forward(dt, n, x, y);
}
static void cpu_relu_backward(const Backend *be, DType dt, size_t n, const void *y, const void *dy, void *dx) {
    (void)be, op_act_relu_backward(dt, n, y, dy, dx);
}
static void cpu_add_forward(const Backend *be, DType dt, size_t n, const void *a, const void *b, void *y) {
    (void)be, op_act_add_forward(dt, n, a, b, y);
}
static void cpu_add_backward(const Backend *be, size_t n, const float *dy, float *da, float *db) {
    (void)be, op_add_backward(n, dy, da, db);
}
static void cpu_gelu_forward(const Backend *be, size_t n, const float *x, float *y) {
    (void)be, op_gelu_forward(n, x, y);
}
static void cpu_gelu_backward(const Backend *be, size_t n, const float *x, const float *dy, float *dx) {
    (void)be, op_gelu_backward(n, x, dy, dx);
}
static void cpu_tanh_forward(const Backend *be, size_t n, const float *x, float *y) {
    (void)be, op_tanh_forward(n, x, y);
}
static void cpu_tanh_backward(const Backend *be, size_t n, const float *y, const float *dy, float *dx) {
    (void)be, op_tanh_backward(n, y, dy, dx);
}
static void cpu_mul_forward(const Backend *be, size_t n, const float *a, const float *b, float *y) {
    (void)be, op_mul_forward(n, a, b, y);
}
static void cpu_mul_backward(const Backend *be, size_t n, const float *a, const float *b, const float *dy,
                             float *da, float *db) {
    (void)be, op_mul_backward(n, a, b, dy, da, db);
}
static void cpu_concat_forward(const Backend *be, int N, int Da, int Db, const float *a, const float *b,
                               float *y) {
    (void)be, op_concat_forward(N, Da, Db, a, b, y);
}
static void cpu_concat_backward(const Backend *be, int N, int Da, int Db, const float *dy, float *da,
                                float *db) {
    (void)be, op_concat_backward(N, Da, Db, dy, da, db);
}

/* ---- pooling ---- */
static void cpu_maxpool_forward(const Backend *be, const PoolShape *s, const void *x, void *y,
                                int32_t *argmax) {
    (void)be, op_maxpool_act_forward(s, x, y, argmax);
}
static void cpu_maxpool_backward(const Backend *be, const PoolShape *s, const int32_t *argmax,
                                 const void *dy, void *dx) {
    (void)be, op_maxpool_act_backward(s, argmax, dy, dx);
}
static void cpu_avgpool_forward(const Backend *be, const ActDesc *d, const void *x, float *y) {
    (void)be, op_avgpool_act_forward(&d->f, d->N, d->C, d->HW, x, y);
}
static void cpu_avgpool_backward(const Backend *be, const ActDesc *d, const float *dy, void *dx) {
    (void)be, op_avgpool_act_backward(&d->f, d->N, d->C, d->HW, dy, dx);
}

/* ---- linear, embedding, layer-norm, softmax, dropout ---- */
static void cpu_linear_forward(const Backend *be, int N, int in, int out, const float *x, const float *w,
                               const float *b, float *y) {
    (void)be, op_linear_forward(N, in, out, x, w, b, y);
}
static void cpu_linear_backward(const Backend *be, int N, int in, int out, const float *x, const float *w,
                                const float *dy, float *dx, float *dw, float *db) {
    (void)be, op_linear_backward(N, in, out, x, w, dy, dx, dw, db);
}
static void cpu_embedding_forward(const Backend *be, int N, int V, int D, const int32_t *ids,
                                  const float *table, float *y) {
    (void)be, op_embedding_forward(N, V, D, ids, table, y);
}
static void cpu_embedding_backward(const Backend *be, int N, int V, int D, const int32_t *ids,
                                   int padding_idx, const float *dy, float *dtable) {
    (void)be, op_embedding_backward(N, V, D, ids, padding_idx, dy, dtable);
}
static void cpu_layernorm_forward(const Backend *be, int N, int D, const float *x, const float *w,
                                  const float *b, float eps, float *y, float *mean, float *rstd) {
    (void)be, op_layernorm_forward(N, D, x, w, b, eps, y, mean, rstd);
}
static void cpu_layernorm_backward(const Backend *be, int N, int D, const float *x, const float *w,
                                   const float *mean, const float *rstd, const float *dy, float *dx, float *dw,
                                   float *db) {
    (void)be, op_layernorm_backward(N, D, x, w, mean, rstd, dy, dx, dw, db);
}
static void cpu_softmax_forward(const Backend *be, int rows, int cols, const float *x, float *y) {
    (void)be, op_softmax_forward(rows, cols, x, y);
}
static void cpu_softmax_backward(const Backend *be, int rows, int cols, const float *y, const float *dy,
                                 float *dx) {
    (void)be, op_softmax_backward(rows, cols, y, dy, dx);
}
static void cpu_dropout_forward(const Backend *be, size_t n, float p, uint64_t seed, const float *x, float *y,
                                uint8_t *mask) {
    (void)be, op_dropout_forward(n, p, seed, x, y, mask);
}
static void cpu_dropout_backward(const Backend *be, size_t n, float p, const uint8_t *mask, const float *dy,
                                 float *dx) {
    (void)be, op_dropout_backward(n, p, mask, dy, dx);
}

/* ---- attention ---- */
static size_t cpu_attention_workspace(const Backend *be, int B, int L, int nh, int hd) {
    return (void)be, op_attention_workspace(B, L, nh, hd);
}
static void cpu_attention_forward(const Backend *be, int B, int L, int nh, int hd, const float *q,
                                  const float *k, const float *v, const float *key_mask, float p, uint64_t seed,
                                  float *probs, uint8_t *drop_mask, float *out, float *ws) {
    (void)be, op_attention_forward(B, L, nh, hd, q, k, v, key_mask, p, seed, probs, drop_mask, out, ws);
}
static void cpu_attention_backward(const Backend *be, int B, int L, int nh, int hd, const float *q,
                                   const float *k, const float *v, const float *probs, const uint8_t *drop_mask,
                                   float p, const float *dout, float *dq, float *dk, float *dv, float *ws) {
    (void)be, op_attention_backward(B, L, nh, hd, q, k, v, probs, drop_mask, p, dout, dq, dk, dv, ws);
}

/* ---- losses, optimizer kernels ---- */
static double cpu_bce_logits(const Backend *be, int N, int A, const float *logits, const float *targets,
                             float grad_scale, float *dlogits) {
    return (void)be, op_bce_logits(N, A, logits, targets, grad_scale, dlogits);
}
static double cpu_soft_xent(const Backend *be, int N, int A, const float *logits, const float *targets,
                            float grad_scale, float *dlogits) {
    return (void)be, op_soft_xent(N, A, logits, targets, grad_scale, dlogits);
}
static void cpu_adamw_update(const Backend *be, float *params, const float *grads, float *m, float *v,
                             const AdamwSegment *segs, int n_segs) {
    (void)be, op_adamw_update(params, grads, m, v, segs, n_segs);
}
static double cpu_global_norm(const Backend *be, const float *g, size_t n) {
    return (void)be, op_global_norm(g, n);
}
static int cpu_has_nonfinite(const Backend *be, const float *g, size_t n) {
    return (void)be, op_has_nonfinite(g, n);
}
static void cpu_scale(const Backend *be, float *x, size_t n, float s) { (void)be, op_scale(x, n, s); }

static const Backend cpu_backend = {
    .name = "cpu",
    .device = DEV_CPU,
    .precision = DT_F32,
    .ctx = NULL,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .memset_zero = cpu_memset_zero,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .synchronize = cpu_synchronize,
    .copy_h2d_async = cpu_copy,
    .error = cpu_error,
    .event_create = cpu_event_create,
    .event_destroy = cpu_event_destroy,
    .event_record = cpu_event_op,
    .event_wait = cpu_event_op,
    .upload_async = cpu_copy,
    .set_threads = cpu_set_threads,
    .get_threads = cpu_get_threads,
    .gemm = cpu_gemm,
    .conv2d_workspace = cpu_conv2d_workspace,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .conv_weight_prep = cpu_conv_weight_prep,
    .conv_weight_grad_add = cpu_conv_weight_grad_add,
    .batchnorm_forward_train = cpu_bn_forward_train,
    .batchnorm_backward_train = cpu_bn_backward_train,
    .batchnorm_forward_eval = cpu_bn_forward_eval,
    .batchnorm_backward_eval = cpu_bn_backward_eval,
    .act_import = cpu_act_import,
    .act_import_add = cpu_act_import_add,
    .act_export = cpu_act_export,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .add_forward = cpu_add_forward,
    .add_backward = cpu_add_backward,
    .gelu_forward = cpu_gelu_forward,
    .gelu_backward = cpu_gelu_backward,
    .tanh_forward = cpu_tanh_forward,
    .tanh_backward = cpu_tanh_backward,
    .mul_forward = cpu_mul_forward,
    .mul_backward = cpu_mul_backward,
    .concat_forward = cpu_concat_forward,
    .concat_backward = cpu_concat_backward,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .softmax_forward = cpu_softmax_forward,
    .softmax_backward = cpu_softmax_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .attention_workspace = cpu_attention_workspace,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .bce_logits = cpu_bce_logits,
    .soft_xent = cpu_soft_xent,
    .adamw_update = cpu_adamw_update,
    .global_norm = cpu_global_norm,
    .has_nonfinite = cpu_has_nonfinite,
    .scale = cpu_scale,
};

const Backend *backend_cpu(void) { return &cpu_backend; }

/* ---- an arena over a backend's memory ---- */
static void *be_arena_alloc(void *ctx, size_t bytes) {
    const Backend *be = ctx;
    return be->alloc(be, bytes);
}
static void be_arena_free(void *ctx, void *p) {
    const Backend *be = ctx;
    be->free(be, p);
}
static void be_arena_zero(void *ctx, void *p, size_t bytes) {
    const Backend *be = ctx;
    be->memset_zero(be, p, bytes);
}
ArenaMem backend_arena_mem(const Backend *be) {
    ArenaMem m = {(void *)be, be_arena_alloc, be_arena_free, be_arena_zero};
    return m;
}
