/* optim.h: AdamW over flat buffers, learning-rate schedules, global-norm clipping, and the
 * dynamic loss scaler for fp16. All backend-independent host logic (the CUDA backend runs
 * the same update in a kernel; these are the reference and the CPU path).
 *
 * Parameters live in one flat buffer and gradients of trainable parameters in another
 * (see model/params.h); an OptimSegment maps a run of gradients onto its parameters and
 * says how it is optimized (learning-rate multiplier, weight decay or not). */
#ifndef VQA_OPTIM_H
#define VQA_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct OptimSegment {
    size_t param_off;  /* first element in the flat parameter buffer */
    size_t grad_off;   /* first element in the flat gradient (and moment) buffers */
    size_t n;          /* elements */
    float lr_mult;     /* train.encoder_lr_mult for encoder parameters, 1 for the head */
    int decay;         /* 0 for biases and norm parameters (no weight decay) */
} OptimSegment;

typedef struct AdamW {
    float beta1, beta2, eps, weight_decay;
    int64_t t;         /* steps taken (for bias correction) */
    size_t n;          /* moment elements = gradient elements */
    float *m, *v;      /* owned, zero-initialized */
    void (*free_fn)(void *p); /* how m and v are released: NULL = free() (host calloc) */
} AdamW;

/* Returns -1 if out of memory. */
int adamw_init(AdamW *o, size_t n_grad, float beta1, float beta2, float eps, float weight_decay);
/* The same over moment buffers the caller allocated and zeroed elsewhere (e.g. device
 * memory of a Backend: then only Backend entries may read them); o takes ownership and
 * adamw_free releases them with free_fn. */
void adamw_init_buffers(AdamW *o, size_t n_grad, float beta1, float beta2, float eps, float weight_decay,
                        float *m, float *v, void (*free_fn)(void *p));
void adamw_free(AdamW *o);
/* One step (PyTorch torch.optim.AdamW semantics):
 *   t += 1
 *   p *= 1 - lr_i * wd          (decoupled decay, only where decay)
 *   m = b1 m + (1-b1) g ;  v = b2 v + (1-b2) g^2
 *   p -= lr_i * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),  lr_i = lr * lr_mult */
void adamw_step(AdamW *o, float *params, const float *grads, const OptimSegment *segs,
                int n_segs, float lr);

typedef enum LrSchedule { SCHED_CONSTANT = 0, SCHED_COSINE = 1, SCHED_LINEAR = 2 } LrSchedule;
/* Linear warm-up from 0 over warmup steps (lr * (step+1)/warmup), then constant, cosine
 * to 0, or linear to 0 at total_steps. step is 0-based (the step about to be taken). */
float lr_at(LrSchedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total_steps);

/* sqrt(sum g^2), accumulated in double. Non-finite if any gradient is inf/NaN. */
double grad_global_norm(const float *g, size_t n);
/* Scales g so that its norm is at most max_norm (as torch.nn.utils.clip_grad_norm_:
 * coefficient max_norm / (norm + 1e-6), applied only when < 1). Returns the coefficient. */
float grad_clip(float *g, size_t n, double norm, float max_norm);
/* grad_clip's coefficient alone (1 when no clipping applies), for buffers that another
 * backend scales. */
float grad_clip_coef(double norm, float max_norm);

/* Dynamic loss scaling (fp16): multiply the loss by scale; after backward, if any
 * gradient is inf/NaN, skip the step and multiply scale by backoff; after
 * growth_interval consecutive clean steps, multiply scale by growth. */
typedef struct LossScaler {
    float scale, growth, backoff;
    int growth_interval;
    int clean_steps;     /* consecutive finite steps since the last change */
    int64_t skipped;     /* total skipped steps */
} LossScaler;
void loss_scaler_init(LossScaler *s, float init_scale, float growth, float backoff, int growth_interval);
/* Call after backward with found_inf = any non-finite gradient. Returns 1 if the
 * optimizer step must be skipped. */
int loss_scaler_update(LossScaler *s, int found_inf);
/* 1 if any of g[0..n) is inf or NaN. */
int grads_have_nonfinite(const float *g, size_t n);

#endif
