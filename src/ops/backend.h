/* backend.h: the op table models call through, so the CPU reference (backend_cpu.c) and
 * the CUDA backend (cuda/) are interchangeable.
 *
 * Every op entry has exactly the signature of its op_* function in ops/ops.h (read the
 * conventions there: fp32, row-major, NCHW images, backward ACCUMULATES into gradients,
 * NULL gradient = skipped, scratch from the caller). For the CPU backend all pointers are
 * host memory; for the CUDA backend they are device memory, and the memory entries below
 * are how host code moves data in and out. Models never call op_* directly.
 *
 * The table is constant (no mutable state in it): obtain it once per run with
 * backend_cpu() (or the CUDA backend's constructor) and pass it explicitly. */
#ifndef VQA_BACKEND_H
#define VQA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"
#include "ops/tensor.h"

/* The queues an event orders (see event_record / event_wait). */
typedef enum BeQueue { BE_COMPUTE = 0, BE_COPY = 1, BE_HOST = 2 } BeQueue;

typedef struct Backend {
    const char *name; /* "cpu", "cuda" */
    Device device;

    /* ---- memory (bytes) ---- */
    void *(*alloc)(size_t bytes);     /* NULL when out of memory; 64-byte aligned */
    void (*free)(void *p);            /* NULL allowed */
    void (*memset_zero)(void *p, size_t bytes);
    void (*copy_h2d)(void *dst, const void *src, size_t bytes);
    void (*copy_d2h)(void *dst, const void *src, size_t bytes);
    void (*copy_d2d)(void *dst, const void *src, size_t bytes);
    void (*synchronize)(void);        /* wait for queued work (no-op on CPU) */
    /* Batch upload: src should be pinned host memory (gpu_pinned_alloc); the copy runs on
     * the backend's copy stream; it starts after the ops queued before it (dst may be
     * memory they still read) and later ops wait for it, so it overlaps the host's work
     * between steps. src must stay unchanged until an entry that returns a host
     * value (a loss, copy_d2h, global_norm, ...) or synchronize() has returned. */
    void (*copy_h2d_async)(void *dst, const void *src, size_t bytes);

    /* ---- explicit upload ordering (the trainer's batch prefetch, train_device.h) ----
     * Events order work between the compute queue (every op above), the copy queue
     * (upload_async) and the host. An event marks the point its queue had reached when it
     * was recorded; waiting on an event that was never recorded returns at once. On the
     * CPU everything is synchronous: events are a dummy handle and these are no-ops
     * (upload_async copies at once). */
    void *(*event_create)(void);                 /* NULL: out of resources */
    void (*event_destroy)(void *ev);             /* NULL allowed */
    void (*event_record)(void *ev, BeQueue q);   /* q: BE_COMPUTE or BE_COPY */
    /* BE_COMPUTE / BE_COPY: that queue's later work waits for ev; BE_HOST: the caller
     * blocks until ev has completed. */
    void (*event_wait)(void *ev, BeQueue q);
    /* H2D on the copy queue with NO implicit wait by the compute queue (unlike
     * copy_h2d_async): record an event after it and have the compute queue wait on that
     * event before reading dst; src (pinned) must stay unchanged until that event has
     * completed (event_wait(ev, BE_HOST)). */
    void (*upload_async)(void *dst, const void *src, size_t bytes);

    /* ---- threads and GEMM ---- */
    void (*set_threads)(int n);
    int (*get_threads)(void);
    void (*gemm)(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc);

    /* ---- conv2d ---- */
    size_t (*conv2d_workspace)(const ConvShape *s);
    void (*conv2d_forward)(const ConvShape *s, const float *x, const float *w, const float *b,
                           float *y, float *ws);
    void (*conv2d_backward)(const ConvShape *s, const float *x, const float *w, const float *dy,
                            float *dx, float *dw, float *db, float *ws);

    /* ---- batch-norm 2d ---- */
    void (*batchnorm_forward_train)(int N, int C, int HW, const float *x, const float *gamma,
                                    const float *beta, float momentum, float eps,
                                    float *running_mean, float *running_var, float *y,
                                    float *save_mean, float *save_rstd);
    void (*batchnorm_backward_train)(int N, int C, int HW, const float *x, const float *gamma,
                                     const float *save_mean, const float *save_rstd,
                                     const float *dy, float *dx, float *dgamma, float *dbeta);
    void (*batchnorm_forward_eval)(int N, int C, int HW, const float *x, const float *gamma,
                                   const float *beta, const float *running_mean,
                                   const float *running_var, float eps, float *y);
    void (*batchnorm_backward_eval)(int N, int C, int HW, const float *x, const float *gamma,
                                    const float *running_mean, const float *running_var,
                                    float eps, const float *dy, float *dx, float *dgamma,
                                    float *dbeta);

    /* ---- element-wise ---- */
    void (*relu_forward)(size_t n, const float *x, float *y);
    void (*relu_backward)(size_t n, const float *y, const float *dy, float *dx);
    void (*gelu_forward)(size_t n, const float *x, float *y);
    void (*gelu_backward)(size_t n, const float *x, const float *dy, float *dx);
    void (*tanh_forward)(size_t n, const float *x, float *y);
    void (*tanh_backward)(size_t n, const float *y, const float *dy, float *dx);
    void (*add_forward)(size_t n, const float *a, const float *b, float *y);
    void (*add_backward)(size_t n, const float *dy, float *da, float *db);
    void (*mul_forward)(size_t n, const float *a, const float *b, float *y);
    void (*mul_backward)(size_t n, const float *a, const float *b, const float *dy, float *da,
                         float *db);
    void (*concat_forward)(int N, int Da, int Db, const float *a, const float *b, float *y);
    void (*concat_backward)(int N, int Da, int Db, const float *dy, float *da, float *db);

    /* ---- pooling ---- */
    void (*maxpool_forward)(const PoolShape *s, const float *x, float *y, int32_t *argmax);
    void (*maxpool_backward)(const PoolShape *s, const int32_t *argmax, const float *dy,
                             float *dx);
    void (*avgpool_global_forward)(int N, int C, int HW, const float *x, float *y);
    void (*avgpool_global_backward)(int N, int C, int HW, const float *dy, float *dx);

    /* ---- linear ---- */
    void (*linear_forward)(int N, int in, int out, const float *x, const float *w,
                           const float *b, float *y);
    void (*linear_backward)(int N, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db);

    /* ---- embedding ---- */
    void (*embedding_forward)(int N, int V, int D, const int32_t *ids, const float *table,
                              float *y);
    void (*embedding_backward)(int N, int V, int D, const int32_t *ids, int padding_idx,
                               const float *dy, float *dtable);

    /* ---- layer-norm ---- */
    void (*layernorm_forward)(int N, int D, const float *x, const float *w, const float *b,
                              float eps, float *y, float *mean, float *rstd);
    void (*layernorm_backward)(int N, int D, const float *x, const float *w, const float *mean,
                               const float *rstd, const float *dy, float *dx, float *dw,
                               float *db);

    /* ---- softmax ---- */
    void (*softmax_forward)(int rows, int cols, const float *x, float *y);
    void (*softmax_backward)(int rows, int cols, const float *y, const float *dy, float *dx);

    /* ---- dropout ---- */
    void (*dropout_forward)(size_t n, float p, uint64_t seed, const float *x, float *y,
                            uint8_t *mask);
    void (*dropout_backward)(size_t n, float p, const uint8_t *mask, const float *dy,
                             float *dx);

    /* ---- attention ---- */
    size_t (*attention_workspace)(int B, int L, int nh, int hd);
    void (*attention_forward)(int B, int L, int nh, int hd, const float *q, const float *k,
                              const float *v, const float *key_mask, float p, uint64_t seed,
                              float *probs, uint8_t *drop_mask, float *out, float *ws);
    void (*attention_backward)(int B, int L, int nh, int hd, const float *q, const float *k,
                               const float *v, const float *probs, const uint8_t *drop_mask,
                               float p, const float *dout, float *dq, float *dk, float *dv,
                               float *ws);

    /* ---- losses ---- */
    double (*bce_logits)(int N, int A, const float *logits, const float *targets,
                         float grad_scale, float *dlogits);
    double (*soft_xent)(int N, int A, const float *logits, const float *targets,
                        float grad_scale, float *dlogits);

    /* ---- optimizer element kernels on the flat buffers (ops.h; the step itself, with its
     * counter, schedule and bias corrections, is optim_step in src/optim/optim.h) ---- */
    /* AdamW over segs (host array of per-segment scalars); m, v [n_grads]. */
    void (*adamw_update)(float *params, const float *grads, float *m, float *v,
                         const AdamwSegment *segs, int n_segs);
    double (*global_norm)(const float *g, size_t n); /* sqrt(sum g^2) in double; waits */
    int (*has_nonfinite)(const float *g, size_t n);  /* 1 if any inf/NaN; waits */
    void (*scale)(float *x, size_t n, float s);      /* x *= s */

    /* ---- activations in an ActFmt (channels-last, bf16 / fp16): the op_*_act functions
     * of ops.h, same signatures; the image encoder's fast path on a GPU ---- */
    void (*act_import)(const ActFmt *f, int N, int C, int HW, const float *x, void *y);
    void (*act_import_add)(const ActFmt *f, int N, int C, int HW, const float *x, void *y);
    void (*act_export)(const ActFmt *f, int N, int C, int HW, const void *x, float *y);
    void (*act_relu_forward)(DType dt, size_t n, const void *x, void *y);
    void (*act_relu_backward)(DType dt, size_t n, const void *y, const void *dy, void *dx);
    void (*act_add_forward)(DType dt, size_t n, const void *a, const void *b, void *y);
    void (*conv_weight_prep)(const ConvShape *s, const float *w, void *wp);
    void (*conv_weight_grad_add)(const ConvShape *s, const void *dwp, float *dw);
    size_t (*conv2d_act_workspace)(const ConvShape *s);
    void (*conv2d_act_forward)(const ConvShape *s, const void *x, const void *wp, void *y,
                               float *ws);
    void (*conv2d_act_backward)(const ConvShape *s, const void *x, const void *wp,
                                const void *dy, void *dx, void *dwp, float *ws);
    void (*batchnorm_act_forward_train)(const ActFmt *f, int N, int C, int HW, const void *x,
                                        const float *gamma, const float *beta, float momentum,
                                        float eps, float *running_mean, float *running_var,
                                        void *y, float *save_mean, float *save_rstd);
    void (*batchnorm_act_backward_train)(const ActFmt *f, int N, int C, int HW, const void *x,
                                         const float *gamma, const float *save_mean,
                                         const float *save_rstd, const void *dy, void *dx,
                                         float *dgamma, float *dbeta);
    void (*batchnorm_act_forward_eval)(const ActFmt *f, int N, int C, int HW, const void *x,
                                       const float *gamma, const float *beta,
                                       const float *running_mean, const float *running_var,
                                       float eps, void *y);
    void (*batchnorm_act_backward_eval)(const ActFmt *f, int N, int C, int HW, const void *x,
                                        const float *gamma, const float *running_mean,
                                        const float *running_var, float eps, const void *dy,
                                        void *dx, float *dgamma, float *dbeta);
    void (*maxpool_act_forward)(const PoolShape *s, const void *x, void *y, int32_t *argmax);
    void (*maxpool_act_backward)(const PoolShape *s, const int32_t *argmax, const void *dy,
                                 void *dx);
    void (*avgpool_act_forward)(const ActFmt *f, int N, int C, int HW, const void *x, float *y);
    void (*avgpool_act_backward)(const ActFmt *f, int N, int C, int HW, const float *dy,
                                 void *dx);
} Backend;

/* The CPU reference backend (the op_* functions of src/ops on host memory). Never NULL. */
const Backend *backend_cpu(void);

#endif
