/* optim.h: the optimizer of a training run: AdamW (PyTorch torch.optim.AdamW semantics)
 * with decoupled weight decay, the learning-rate schedule (linear warm-up, then constant,
 * cosine or linear decay), per-segment learning-rate multipliers and decay flags, and
 * global-norm gradient clipping.
 *
 * One call, optim_step, takes a whole optimizer step. It owns the step counters, the bias
 * corrections and the schedule: it computes every scalar of the step once on the host
 * (bias corrections in double) and hands the backend's element kernels (ops.h: adamw_update,
 * global_norm, scale) per-segment arguments, so the CPU and the CUDA backend run the same
 * arithmetic on their own memory.
 *
 * Parameters live in one flat buffer and gradients of trainable parameters in another
 * (model/params.h); an OptimSegment maps a run of gradients onto its parameters and says
 * how it is optimized. The moments m, v [n_grads] live in the backend's memory. */
#ifndef VQA_OPTIM_H
#define VQA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "ops/backend.h"
#include "util/err.h"

typedef enum LrSchedule { SCHED_CONSTANT = 0, SCHED_COSINE = 1, SCHED_LINEAR = 2 } LrSchedule;

/* The optimizer's settings (train.* of the config, turned into these by train/setup.c). */
typedef struct OptimOptions {
    float lr;                /* peak learning rate */
    LrSchedule schedule;
    int64_t warmup_steps;    /* linear warm-up from 0 over these steps */
    int64_t total_steps;     /* where cosine / linear decay reach 0 */
    float beta1, beta2, eps, weight_decay;
    float clip_norm;         /* clip the global gradient norm to this; <= 0: no clipping */
} OptimOptions;

typedef struct OptimSegment {
    size_t param_off;  /* first element in the flat parameter buffer */
    size_t grad_off;   /* first element in the flat gradient (and moment) buffers */
    size_t n;          /* elements */
    float lr_mult;     /* train.encoder_lr_mult for encoder parameters, 1 for the head */
    int decay;         /* 0 for biases and norm parameters (no weight decay) */
} OptimSegment;

typedef struct Optimizer {
    OptimOptions opt;
    OptimSegment *segs;       /* owned copy */
    AdamwSegment *args;       /* owned: the kernels' per-segment scalars, refilled each step */
    int n_segs;
    size_t n;                 /* moment elements = gradient elements */
    float *m, *v;             /* backend memory, owned, zeroed by optim_init */
    const Backend *be;        /* where m and v live (freed by optim_free) */
    int64_t t;                /* AdamW updates applied (bias corrections); checkpoint adam_t */
    int64_t step;             /* schedule position: steps taken or skipped (= the trainer's step) */
} Optimizer;

/* Moments of n_grads elements in be's memory (zeroed), the segments copied; counters 0. */
int optim_init(Optimizer *o, const Backend *be, const OptimOptions *opts, const OptimSegment *segs, int n_segs,
               size_t n_grads, Err *e);
void optim_free(Optimizer *o);

/* What a step did, for logging. */
typedef struct OptimStepInfo {
    float lr;          /* learning rate of the step (before segment multipliers) */
    double grad_norm;  /* global gradient norm before clipping (NAN for a skipped step) */
    float clip_coef;   /* factor the gradients were scaled by (1: not clipped) */
} OptimStepInfo;

/* One optimizer step on be's buffers (the backend optim_init was given), params [n_values]
 * and grads [n_grads]:
 *   lr = optim_lr(o); norm = |grads|; grads *= clip coefficient (optim_clip_coef);
 *   t += 1; per segment, lr_i = lr * lr_mult:
 *     p *= 1 - lr_i * wd          (decoupled decay, only where decay)
 *     m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
 *     p -= lr_i * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   step += 1.
 * Backend failures (CUDA) are the backend's sticky error; info may be NULL. */
void optim_step(const Backend *be, Optimizer *o, float *params, float *grads, OptimStepInfo *info);
/* A step that is not taken (fp16: inf/NaN gradients): the schedule moves on, t does not. */
void optim_skip(Optimizer *o, OptimStepInfo *info);
/* The learning rate of the next step. */
float optim_lr(const Optimizer *o);

/* Linear warm-up from 0 over warmup steps (lr * (step+1)/warmup), then constant, cosine
 * to 0, or linear to 0 at total_steps. step is 0-based (the step about to be taken). */
float optim_lr_at(const OptimOptions *opts, int64_t step);
/* The clipping coefficient of torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6)
 * when that is below 1, else 1 (also for max_norm <= 0 or a non-finite norm). */
float optim_clip_coef(double norm, float max_norm);

#endif
