/* backend.h: the op table models call through, so the CPU reference (backend_cpu.c) and
 * the CUDA backend (cuda/) are interchangeable.
 *
 * A Backend is a table of entries plus the backend's own context (ctx: for the CUDA backend
 * its stream, library handles, caches and sticky error; nothing for the CPU). Every entry
 * takes the Backend it belongs to as its first argument, so several backends can live in
 * one process and no backend keeps global state:
 *
 *     be->relu_forward(be, DT_F32, n, x, y);
 *
 * Each entry computes its op_* function of ops/ops.h: read the conventions there (row-major,
 * backward ACCUMULATES into gradients, NULL gradient = skipped, scratch from the caller).
 * The image ops take their activations through a descriptor: ActDesc (an [N, C, HW]
 * activation: shape + layout + storage type), ConvShape and PoolShape (the same with the
 * window); the plain format {0, DT_F32} (fp32 NCHW) and the channels-last bf16 / fp16
 * formats go through the same entry. For the CPU backend all pointers are host memory; for
 * the CUDA backend they are device memory, and the memory entries below are how host code
 * moves data in and out. Models never call op_* directly.
 *
 * Obtain the CPU table with backend_cpu() (constant, never NULL), the CUDA one with
 * backend_cuda_create() (cuda/backend_cuda.h), and pass it explicitly. */
#ifndef VQA_BACKEND_H
#define VQA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"
#include "ops/tensor.h"
#include "util/err.h"

/* The queues an event orders (see event_record / event_wait). */
typedef enum BeQueue { BE_COMPUTE = 0, BE_COPY = 1, BE_HOST = 2 } BeQueue;

/* An [N, C, HW] image activation: its shape and its format (ops.h ActFmt: layout and
 * storage type). Parameters, statistics and pooled features are always fp32. */
typedef struct ActDesc {
    int N, C, HW;
    ActFmt f;
} ActDesc;
static inline ActDesc act_desc(int N, int C, int HW, ActFmt f) {
    ActDesc d = {N, C, HW, f};
    return d;
}

typedef struct Backend Backend;
struct Backend {
    const char *name;  /* "cpu", "cuda" */
    Device device;
    /* What matrix products compute in, fixed when the backend is created: DT_F32 (CPU;
     * CUDA fp32), DT_BF16 or DT_F16 (CUDA: half-precision operands, fp32 accumulation). */
    DType precision;
    void *ctx;         /* the backend's own state; only its entries look inside */

    /* ---- memory (bytes) ---- */
    void *(*alloc)(const Backend *be, size_t bytes); /* NULL when out of memory; 64-byte aligned */
    void (*free)(const Backend *be, void *p);        /* NULL allowed */
    void (*memset_zero)(const Backend *be, void *p, size_t bytes);
    void (*copy_h2d)(const Backend *be, void *dst, const void *src, size_t bytes);
    void (*copy_d2h)(const Backend *be, void *dst, const void *src, size_t bytes);
    void (*copy_d2d)(const Backend *be, void *dst, const void *src, size_t bytes);
    void (*synchronize)(const Backend *be); /* wait for queued work (no-op on CPU) */
    /* Batch upload: src should be pinned host memory (gpu_pinned_alloc); the copy runs on
     * the backend's copy queue; it starts after the ops queued before it (dst may be
     * memory they still read) and later ops wait for it, so it overlaps the host's work
     * between steps. src must stay unchanged until an entry that returns a host value (a
     * loss, copy_d2h, global_norm, ...) or synchronize() has returned. */
    void (*copy_h2d_async)(const Backend *be, void *dst, const void *src, size_t bytes);
    /* 0 if no operation failed since the last call; else -1 with the first failure in e
     * (file:line, the call, the library's message), cleared. Entries return void, so a
     * failing device call is kept here and later entries do nothing: check it once per
     * step. The CPU backend never fails. */
    int (*error)(const Backend *be, Err *e);

    /* ---- explicit upload ordering (the trainer's batch prefetch, train_device.h) ----
     * Events order work between the compute queue (every op entry), the copy queue
     * (upload_async) and the host. An event marks the point its queue had reached when it
     * was recorded; waiting on an event that was never recorded returns at once. On the
     * CPU everything is synchronous: events are a dummy handle and these are no-ops
     * (upload_async copies at once). */
    void *(*event_create)(const Backend *be);                  /* NULL: out of resources */
    void (*event_destroy)(const Backend *be, void *ev);        /* NULL allowed */
    void (*event_record)(const Backend *be, void *ev, BeQueue q); /* BE_COMPUTE or BE_COPY */
    /* BE_COMPUTE / BE_COPY: that queue's later work waits for ev; BE_HOST: the caller
     * blocks until ev has completed. */
    void (*event_wait)(const Backend *be, void *ev, BeQueue q);
    /* H2D on the copy queue with NO implicit wait by the compute queue (unlike
     * copy_h2d_async): record an event after it and have the compute queue wait on that
     * event before reading dst; src (pinned) must stay unchanged until that event has
     * completed (event_wait(ev, BE_HOST)). */
    void (*upload_async)(const Backend *be, void *dst, const void *src, size_t bytes);

    /* ---- threads (host threads of the CPU ops) and GEMM ---- */
    void (*set_threads)(const Backend *be, int n);
    int (*get_threads)(const Backend *be);
    void (*gemm)(const Backend *be, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

    /* ---- conv2d in s->f (x, y, dx, dy) ----
     * w / dw are the weight in the format's prepared layout and type (conv_weight_prep):
     * for the plain format that is the fp32 master [K, C, R, S] itself. b / db: fp32 bias
     * [K] and its gradient, only with the plain format (the encoder's convolutions have
     * none; with another format a bias is a programming error: CUDA records it as the
     * backend's error, the CPU ignores it). ws: conv2d_workspace floats. */
    size_t (*conv2d_workspace)(const Backend *be, const ConvShape *s);
    void (*conv2d_forward)(const Backend *be, const ConvShape *s, const void *x, const void *w,
                           const float *b, void *y, float *ws);
    void (*conv2d_backward)(const Backend *be, const ConvShape *s, const void *x, const void *w,
                            const void *dy, void *dx, void *dw, float *db, float *ws);
    /* wp = the fp32 master w in s->f's prepared layout; dw += dwp back in fp32 [K, C, R, S] */
    void (*conv_weight_prep)(const Backend *be, const ConvShape *s, const float *w, void *wp);
    void (*conv_weight_grad_add)(const Backend *be, const ConvShape *s, const void *dwp, float *dw);

    /* ---- batch-norm 2d on x, y, dx, dy described by d; gamma, beta, statistics fp32 ---- */
    void (*batchnorm_forward_train)(const Backend *be, const ActDesc *d, const void *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var, void *y,
                                    float *save_mean, float *save_rstd);
    void (*batchnorm_backward_train)(const Backend *be, const ActDesc *d, const void *x,
                                     const float *gamma, const float *save_mean,
                                     const float *save_rstd, const void *dy, void *dx,
                                     float *dgamma, float *dbeta);
    void (*batchnorm_forward_eval)(const Backend *be, const ActDesc *d, const void *x,
                                   const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var,
                                   float eps, void *y);
    void (*batchnorm_backward_eval)(const Backend *be, const ActDesc *d, const void *x,
                                    const float *gamma, const float *running_mean,
                                    const float *running_var, float eps, const void *dy,
                                    void *dx, float *dgamma, float *dbeta);

    /* ---- the encoder's edges: fp32 NCHW on the plain side, d's format on the other ---- */
    void (*act_import)(const Backend *be, const ActDesc *d, const float *x, void *y);     /* y = x */
    void (*act_import_add)(const Backend *be, const ActDesc *d, const float *x, void *y); /* y += x */
    void (*act_export)(const Backend *be, const ActDesc *d, const void *x, float *y);     /* y = x */

    /* ---- element-wise; relu and add in storage type dt (DT_F32, DT_BF16, DT_F16), the
     * others fp32 ---- */
    void (*relu_forward)(const Backend *be, DType dt, size_t n, const void *x, void *y);
    void (*relu_backward)(const Backend *be, DType dt, size_t n, const void *y, const void *dy,
                          void *dx);
    void (*add_forward)(const Backend *be, DType dt, size_t n, const void *a, const void *b,
                        void *y);
    void (*add_backward)(const Backend *be, size_t n, const float *dy, float *da, float *db);
    void (*gelu_forward)(const Backend *be, size_t n, const float *x, float *y);
    void (*gelu_backward)(const Backend *be, size_t n, const float *x, const float *dy, float *dx);
    void (*tanh_forward)(const Backend *be, size_t n, const float *x, float *y);
    void (*tanh_backward)(const Backend *be, size_t n, const float *y, const float *dy, float *dx);
    void (*mul_forward)(const Backend *be, size_t n, const float *a, const float *b, float *y);
    void (*mul_backward)(const Backend *be, size_t n, const float *a, const float *b,
                         const float *dy, float *da, float *db);
    void (*concat_forward)(const Backend *be, int N, int Da, int Db, const float *a,
                           const float *b, float *y);
    void (*concat_backward)(const Backend *be, int N, int Da, int Db, const float *dy, float *da,
                            float *db);

    /* ---- pooling: max-pool in s->f; global average pool from d's format to fp32 [N, C] ---- */
    void (*maxpool_forward)(const Backend *be, const PoolShape *s, const void *x, void *y,
                            int32_t *argmax);
    void (*maxpool_backward)(const Backend *be, const PoolShape *s, const int32_t *argmax,
                             const void *dy, void *dx);
    void (*avgpool_forward)(const Backend *be, const ActDesc *d, const void *x, float *y);
    void (*avgpool_backward)(const Backend *be, const ActDesc *d, const float *dy, void *dx);

    /* ---- linear ---- */
    void (*linear_forward)(const Backend *be, int N, int in, int out, const float *x,
                           const float *w, const float *b, float *y);
    void (*linear_backward)(const Backend *be, int N, int in, int out, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db);

    /* ---- embedding ---- */
    void (*embedding_forward)(const Backend *be, int N, int V, int D, const int32_t *ids,
                              const float *table, float *y);
    void (*embedding_backward)(const Backend *be, int N, int V, int D, const int32_t *ids,
                               int padding_idx, const float *dy, float *dtable);

    /* ---- layer-norm ---- */
    void (*layernorm_forward)(const Backend *be, int N, int D, const float *x, const float *w,
                              const float *b, float eps, float *y, float *mean, float *rstd);
    void (*layernorm_backward)(const Backend *be, int N, int D, const float *x, const float *w,
                               const float *mean, const float *rstd, const float *dy, float *dx,
                               float *dw, float *db);

    /* ---- softmax ---- */
    void (*softmax_forward)(const Backend *be, int rows, int cols, const float *x, float *y);
    void (*softmax_backward)(const Backend *be, int rows, int cols, const float *y,
                             const float *dy, float *dx);

    /* ---- dropout ---- */
    void (*dropout_forward)(const Backend *be, size_t n, float p, uint64_t seed, const float *x,
                            float *y, uint8_t *mask);
    void (*dropout_backward)(const Backend *be, size_t n, float p, const uint8_t *mask,
                             const float *dy, float *dx);

    /* ---- attention ---- */
    size_t (*attention_workspace)(const Backend *be, int B, int L, int nh, int hd);
    void (*attention_forward)(const Backend *be, int B, int L, int nh, int hd, const float *q,
                              const float *k, const float *v, const float *key_mask, float p,
                              uint64_t seed, float *probs, uint8_t *drop_mask, float *out,
                              float *ws);
    void (*attention_backward)(const Backend *be, int B, int L, int nh, int hd, const float *q,
                               const float *k, const float *v, const float *probs,
                               const uint8_t *drop_mask, float p, const float *dout, float *dq,
                               float *dk, float *dv, float *ws);

    /* ---- losses (return the loss; wait for it) ---- */
    double (*bce_logits)(const Backend *be, int N, int A, const float *logits,
                         const float *targets, float grad_scale, float *dlogits);
    double (*soft_xent)(const Backend *be, int N, int A, const float *logits,
                        const float *targets, float grad_scale, float *dlogits);

    /* ---- optimizer element kernels on the flat buffers (ops.h; the step itself, with its
     * counter, schedule and bias corrections, is optim_step in src/optim/optim.h) ---- */
    /* AdamW over segs (host array of per-segment scalars); m, v [n_grads]. */
    void (*adamw_update)(const Backend *be, float *params, const float *grads, float *m,
                         float *v, const AdamwSegment *segs, int n_segs);
    double (*global_norm)(const Backend *be, const float *g, size_t n); /* sqrt(sum g^2); waits */
    int (*has_nonfinite)(const Backend *be, const float *g, size_t n);  /* 1 if inf/NaN; waits */
    void (*scale)(const Backend *be, float *x, size_t n, float s);      /* x *= s */
};

/* The CPU reference backend (the op_* functions of src/ops on host memory). Never NULL. */
const Backend *backend_cpu(void);

/* An arena whose blocks are this backend's memory (tensor.h ArenaMem): for a device
 * backend the step's activations live on the device. */
ArenaMem backend_arena_mem(const Backend *be);

#endif
