/* ops.h: the CPU op interface: every op the fusion model needs, forward and backward.
 *
 * This is the contract between the engine (src/ops/, one op per file) and the models
 * (src/model/). Models call ops through the Backend table in ops/backend.h, whose CPU
 * entries forward here and whose CUDA entries (cuda/) compute the same on device pointers.
 *
 * Conventions (all ops):
 *  - fp32, row-major, contiguous. Images are NCHW: [N, C, H, W]. Sequences are [B, L, D].
 *  - Linear weights are [out, in] (PyTorch). Conv weights are [K, C, R, S].
 *  - Backward ACCUMULATES (+=) into every gradient output, inputs and parameters alike:
 *    the caller zeroes gradients once per step. This makes residual branches, shared
 *    inputs and gradient accumulation free. A NULL gradient pointer means "not needed"
 *    and that work is skipped (frozen weights, inputs with nothing upstream).
 *  - Ops never allocate. Scratch space comes from the caller (`ws`), sized by the
 *    op's *_workspace() function, in floats.
 *  - Reductions that decide a loss value are accumulated in double.
 *  - Thread parallelism: OpenMP inside ops, OpenBLAS for GEMM; set with op_set_threads().
 *    After op_set_threads() OpenBLAS runs single-threaded and op_gemm splits products over
 *    the OpenMP threads (one pool, no two pools spinning against each other; gemm.c).
 */
#ifndef VQA_OPS_H
#define VQA_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ops/tensor.h" /* DType */

/* ---- activation formats (act.c, conv2d_act.c): how the image encoder stores activations ----
 * Every op above this section's twins is fp32 NCHW. A GPU runs the ResNet faster with
 * activations stored channels-last (NHWC: cuDNN's tensor-core kernels) and in bf16 / fp16
 * (half the memory traffic). The *_act ops below take activations in an ActFmt; parameters,
 * BN statistics, pooled features and every sum stay fp32: each element is converted to fp32
 * on load and rounded to nearest even on store, exactly what the GPU kernels do (fp32
 * accumulation), so the CPU versions are the reference the CUDA ones are tested against.
 *   element (n, c, hw) of an [N, C, HW] activation is at
 *     NCHW: (n*C + c)*HW + hw        NHWC: (n*HW + hw)*C + c
 * dt is DT_F32, DT_BF16 or DT_F16 (anything else is a programming error). {0, DT_F32} is
 * the plain format: the *_act ops then give the plain ops' results. */
typedef struct ActFmt {
    int nhwc;  /* 1: channels-last */
    DType dt;  /* storage type of activations and their gradients */
} ActFmt;
static inline size_t act_index(const ActFmt *f, int C, int HW, long n, long c, long hw) {
    return f->nhwc ? ((size_t)n * HW + (size_t)hw) * C + (size_t)c : ((size_t)n * C + (size_t)c) * HW + (size_t)hw;
}

/* ---- threads and GEMM (gemm.c) ---- */
/* n > 0: n OpenMP threads; n <= 0: keep OpenMP's default (OMP_NUM_THREADS, else all cores).
 * Either way OpenBLAS is set to one thread and op_gemm parallelizes over OpenMP. Call once
 * at start-up (train.threads) before any op. */
void op_set_threads(int n);
int op_get_threads(void);
/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major, via cblas_sgemm. */
void op_gemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* ---- conv2d (conv2d.c): im2col + GEMM ---- */
typedef struct ConvShape {
    int N, C, H, W;     /* input [N, C, H, W] */
    int K, R, S;        /* weight [K, C, R, S] */
    int stride, pad;    /* same in both dimensions */
    int P, Q;           /* output [N, K, P, Q] */
    ActFmt f;           /* x / y / dx / dy format for op_conv2d_act_* and the Backend's conv
                         * entries (conv_shape_init: plain); op_conv2d_* ignore it */
} ConvShape;
void conv_shape_init(ConvShape *s, int N, int C, int H, int W, int K, int R, int S, int stride, int pad);
size_t op_conv2d_workspace(const ConvShape *s); /* floats */
/* y = conv(x, w) + b (b may be NULL) */
void op_conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b,
                       float *y, float *ws);
void op_conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, float *ws);

/* ---- batch-norm 2d (batchnorm.c), x [N, C, HW] ----
 * train: normalize with the batch mean and BIASED variance; update
 *   running_mean = (1-m)*running_mean + m*mean, running_var = (1-m)*running_var + m*var_unbiased
 *   (PyTorch; running pointers may be NULL to skip the update). Saves mean and rstd [C].
 * eval / frozen: normalize with the running statistics. */
void op_batchnorm_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                                const float *beta, float momentum, float eps, float *running_mean,
                                float *running_var, float *y, float *save_mean, float *save_rstd);
void op_batchnorm_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta);
void op_batchnorm_forward_eval(int N, int C, int HW, const float *x, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float eps, float *y);
void op_batchnorm_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var, float eps,
                                const float *dy, float *dx, float *dgamma, float *dbeta);

/* ---- element-wise (activation.c, elementwise.c) ---- */
void op_relu_forward(size_t n, const float *x, float *y);           /* in-place allowed */
void op_relu_backward(size_t n, const float *y, const float *dy, float *dx); /* uses output y */
void op_gelu_forward(size_t n, const float *x, float *y);           /* erf form */
void op_gelu_backward(size_t n, const float *x, const float *dy, float *dx);
void op_tanh_forward(size_t n, const float *x, float *y);
void op_tanh_backward(size_t n, const float *y, const float *dy, float *dx);
void op_add_forward(size_t n, const float *a, const float *b, float *y);   /* y = a + b */
void op_add_backward(size_t n, const float *dy, float *da, float *db);    /* da += dy, db += dy */
void op_mul_forward(size_t n, const float *a, const float *b, float *y);   /* y = a * b */
void op_mul_backward(size_t n, const float *a, const float *b, const float *dy, float *da, float *db);
/* y[N, Da+Db] = [a[N, Da], b[N, Db]] */
void op_concat_forward(int N, int Da, int Db, const float *a, const float *b, float *y);
void op_concat_backward(int N, int Da, int Db, const float *dy, float *da, float *db);

/* ---- pooling (pool.c) ---- */
typedef struct PoolShape {
    int N, C, H, W, R, stride, pad, P, Q; /* R x R window */
    ActFmt f; /* for op_maxpool_act_* and the Backend's maxpool (pool_shape_init: plain) */
} PoolShape;
void pool_shape_init(PoolShape *s, int N, int C, int H, int W, int R, int stride, int pad);
/* max-pool (padding is -inf, as PyTorch); argmax [N, C, P, Q] = flat index into the H*W plane */
void op_maxpool_forward(const PoolShape *s, const float *x, float *y, int32_t *argmax);
void op_maxpool_backward(const PoolShape *s, const int32_t *argmax, const float *dy, float *dx);
/* global average pool: x [N, C, HW] -> y [N, C] (= adaptive avg pool to 1x1) */
void op_avgpool_global_forward(int N, int C, int HW, const float *x, float *y);
void op_avgpool_global_backward(int N, int C, int HW, const float *dy, float *dx);

/* ---- linear (linear.c): y[N, out] = x[N, in] @ w[out, in]^T + b[out] (b may be NULL) ---- */
void op_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b, float *y);
void op_linear_backward(int N, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db);

/* ---- embedding (embedding.c): y[n, :] = table[ids[n], :] ----
 * backward scatter-adds into dtable, skipping rows equal to padding_idx (-1: none), as PyTorch. */
void op_embedding_forward(int N, int V, int D, const int32_t *ids, const float *table, float *y);
void op_embedding_backward(int N, int V, int D, const int32_t *ids, int padding_idx,
                           const float *dy, float *dtable);

/* ---- layer-norm over the last dim (layernorm.c), x [N, D]; saves mean, rstd [N] ---- */
void op_layernorm_forward(int N, int D, const float *x, const float *w, const float *b, float eps,
                          float *y, float *mean, float *rstd);
void op_layernorm_backward(int N, int D, const float *x, const float *w, const float *mean,
                           const float *rstd, const float *dy, float *dx, float *dw, float *db);

/* ---- softmax over the last dim (softmax.c), x [rows, cols] ---- */
void op_softmax_forward(int rows, int cols, const float *x, float *y);
void op_softmax_backward(int rows, int cols, const float *y, const float *dy, float *dx);

/* ---- dropout (dropout.c): inverted scaling, y = x * keep / (1-p).
 * The keep decision for element i is a pure function of (seed, i) (counter-based hash),
 * so results do not depend on the thread count. mask [n] stores keep (0/1). p = 0: copy. */
void op_dropout_forward(size_t n, float p, uint64_t seed, const float *x, float *y, uint8_t *mask);
void op_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx);

/* ---- multi-head scaled dot-product attention (attention.c) ----
 * q, k, v, out: [B, L, nh*hd] (heads interleaved as HF BERT: head h = columns h*hd..h*hd+hd-1).
 * key_mask [B, L]: 1 = attend, 0 = padding (NULL: all attend); masked keys get score
 * += -FLT_MAX-like (HF adds finfo.min), so a fully masked row is uniform, as HF.
 * probs [B, nh, L, L] = softmax(q k^T / sqrt(hd) + mask) BEFORE dropout (saved for backward:
 * the softmax backward needs it where dropout zeroed it); then dropout on probs with
 * (p, seed) as op_dropout on the flat index of probs (p = 0: none), its mask in drop_mask
 * [B, nh, L, L] (may be NULL when p = 0; needed by the backward when p > 0).
 * ws: op_attention_workspace() floats (does not depend on the thread count). */
size_t op_attention_workspace(int B, int L, int nh, int hd);
void op_attention_forward(int B, int L, int nh, int hd, const float *q, const float *k,
                          const float *v, const float *key_mask, float p, uint64_t seed,
                          float *probs, uint8_t *drop_mask, float *out, float *ws);
void op_attention_backward(int B, int L, int nh, int hd, const float *q, const float *k,
                           const float *v, const float *probs, const uint8_t *drop_mask, float p,
                           const float *dout, float *dq, float *dk, float *dv, float *ws);

/* ---- losses (loss.c); logits, targets [N, A]; targets are soft scores in [0, 1].
 * Return the loss (accumulated in double). If dlogits is non-NULL, WRITE (not accumulate)
 * d(loss)/d(logits) scaled by grad_scale (1.0 normally; the loss scale for fp16). */
/* BCE with logits: sum over classes, mean over the batch (the VQA standard). */
double op_bce_logits(int N, int A, const float *logits, const float *targets, float grad_scale,
                     float *dlogits);
/* Soft cross-entropy: targets normalized to sum 1 per row (rows with zero sum contribute 0),
 * -sum t log softmax(z), mean over the batch. */
double op_soft_xent(int N, int A, const float *logits, const float *targets, float grad_scale,
                    float *dlogits);

/* ---- optimizer element kernels (optim_kernels.c) on the flat parameter / gradient buffers.
 * The optimizer itself (step counter, bias corrections, learning-rate schedule, segments'
 * lr multipliers and decay flags, clipping) is src/optim/; it computes every scalar below
 * once per step on the host and hands the backend only what an element needs. ---- */
/* One run of n gradients grads[grad_off..] (moments m, v at the same offsets) updating
 * params[param_off..], with lr_i = lr * lr_mult of the segment and t the step count:
 *   decay        = 1 - lr_i * weight_decay   (1 for segments without weight decay)
 *   step_size    = lr_i / (1 - beta1^t)      (in double, rounded to float)
 *   inv_sqrt_bc2 = 1 / sqrt(1 - beta2^t)     (in double, rounded to float) */
typedef struct AdamwSegment {
    size_t param_off, grad_off, n;
    float decay, step_size, inv_sqrt_bc2;
    float beta1, beta2, eps;
} AdamwSegment;
/* AdamW (PyTorch torch.optim.AdamW) per element of every segment, in this order:
 *   p *= decay ;  m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
 *   p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)
 * segs is a host array; params, grads, m, v are backend memory. */
void op_adamw_update(float *params, const float *grads, float *m, float *v, const AdamwSegment *segs,
                     int n_segs);
/* sqrt(sum g^2), accumulated in double in fixed blocks (the same bits for any thread
 * count). Non-finite if any g is inf/NaN. */
double op_global_norm(const float *g, size_t n);
/* 1 if any of g[0..n) is inf or NaN. */
int op_has_nonfinite(const float *g, size_t n);
/* x *= s (clipping, loss-scale unscaling). */
void op_scale(float *x, size_t n, float s);
/* memset(p, 0, bytes), split over the OpenMP threads from OP_ZERO_PAR_MIN bytes on (the
 * arena's and the CPU backend's zeroing; smaller buffers, or a call inside a parallel
 * region, are one memset). */
#define OP_ZERO_PAR_MIN ((size_t)128 << 10)
void op_zero(void *p, size_t bytes);

/* ---- ops on activations in an ActFmt (see the top of this file) ----
 * Same conventions as above: backward ACCUMULATES into gradients (in the format's type,
 * so a bf16 gradient is rounded after each accumulation, as PyTorch's autocast does),
 * NULL gradient = skipped, scratch from the caller. */

/* The encoder's edges: x / y [N, C, HW] fp32 NCHW on the plain side. */
void op_act_import(const ActFmt *f, int N, int C, int HW, const float *x, void *y);     /* y = x */
void op_act_import_add(const ActFmt *f, int N, int C, int HW, const float *x, void *y); /* y += x */
void op_act_export(const ActFmt *f, int N, int C, int HW, const void *x, float *y);     /* y = x */

/* Element-wise in storage type dt (layout does not matter); in place allowed. */
void op_act_relu_forward(DType dt, size_t n, const void *x, void *y);
void op_act_relu_backward(DType dt, size_t n, const void *y, const void *dy, void *dx); /* dx += dy * (y > 0) */
void op_act_add_forward(DType dt, size_t n, const void *a, const void *b, void *y);    /* y = a + b */

/* Convolution without bias in s->f. The weight is used "prepared": the fp32 master
 * [K, C, R, S] converted to s->f.dt and, for NHWC, reordered to [K, R, S, C] (cuDNN's
 * channels-last filter layout); for NCHW it stays [K, C, R, S]. K*C*R*S elements. */
void op_conv_weight_prep(const ConvShape *s, const float *w, void *wp);
void op_conv_weight_grad_add(const ConvShape *s, const void *dwp, float *dw); /* dw += dwp */
size_t op_conv2d_act_workspace(const ConvShape *s); /* floats */
void op_conv2d_act_forward(const ConvShape *s, const void *x, const void *wp, void *y, float *ws);
/* dx += conv_transpose(dy, wp); dwp += corr(x, dy) (prepared layout and type) */
void op_conv2d_act_backward(const ConvShape *s, const void *x, const void *wp, const void *dy,
                            void *dx, void *dwp, float *ws);

/* Batch-norm 2d as op_batchnorm_* (same statistics, same running-stat update) on x, y, dx,
 * dy in f; gamma, beta, statistics and their gradients fp32. */
void op_batchnorm_act_forward_train(const ActFmt *f, int N, int C, int HW, const void *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var, void *y,
                                    float *save_mean, float *save_rstd);
void op_batchnorm_act_backward_train(const ActFmt *f, int N, int C, int HW, const void *x,
                                     const float *gamma, const float *save_mean,
                                     const float *save_rstd, const void *dy, void *dx,
                                     float *dgamma, float *dbeta);
void op_batchnorm_act_forward_eval(const ActFmt *f, int N, int C, int HW, const void *x,
                                   const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var, float eps,
                                   void *y);
void op_batchnorm_act_backward_eval(const ActFmt *f, int N, int C, int HW, const void *x,
                                    const float *gamma, const float *running_mean,
                                    const float *running_var, float eps, const void *dy, void *dx,
                                    float *dgamma, float *dbeta);

/* Max-pool in s->f; argmax is laid out like y and holds the flat index into the input's
 * H*W plane of that (n, c) (as op_maxpool_forward). */
void op_maxpool_act_forward(const PoolShape *s, const void *x, void *y, int32_t *argmax);
void op_maxpool_act_backward(const PoolShape *s, const int32_t *argmax, const void *dy, void *dx);
/* Global average pool from f to fp32 pooled features y [N, C]; backward dx += dy / HW. */
void op_avgpool_act_forward(const ActFmt *f, int N, int C, int HW, const void *x, float *y);
void op_avgpool_act_backward(const ActFmt *f, int N, int C, int HW, const float *dy, void *dx);

#endif
