/* optim.c: AdamW steps, the learning-rate schedule and the clipping coefficient (optim.h).
 * Host logic only: the element work is the backend's (ops.h, cuda/optim.cu). */
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int optim_init(Optimizer *o, const Backend *be, const OptimOptions *opts, const OptimSegment *segs, int n_segs,
               size_t n_grads, Err *e) {
    memset(o, 0, sizeof *o);
    o->opt = *opts;
    o->n = n_grads;
    o->be = be;
    if (n_segs > 0) {
        o->segs = malloc((size_t)n_segs * sizeof *o->segs);
        o->args = malloc((size_t)n_segs * sizeof *o->args);
        if (!o->segs || !o->args) {
            optim_free(o);
            return err_set(e, "optimizer: out of memory");
        }
        memcpy(o->segs, segs, (size_t)n_segs * sizeof *segs);
        o->n_segs = n_segs;
    }
    const size_t bytes = (n_grads ? n_grads : 1) * sizeof(float);
    o->m = be->alloc(be, bytes);
    o->v = be->alloc(be, bytes);
    if (!o->m || !o->v) {
        optim_free(o);
        return err_set(e, "optimizer: out of %s memory for the AdamW moments (2 x %zu floats)",
                       be->device == DEV_CPU ? "host" : "device", n_grads);
    }
    be->memset_zero(be, o->m, n_grads * sizeof(float));
    be->memset_zero(be, o->v, n_grads * sizeof(float));
    return 0;
}

void optim_free(Optimizer *o) {
    if (o->be) {
        if (o->m) o->be->free(o->be, o->m);
        if (o->v) o->be->free(o->be, o->v);
    }
    free(o->segs);
    free(o->args);
    memset(o, 0, sizeof *o);
}

float optim_lr_at(const OptimOptions *opts, int64_t step) {
    const float base_lr = opts->lr;
    const int64_t warmup = opts->warmup_steps, total_steps = opts->total_steps;
    if (warmup > 0 && step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
    if (opts->schedule == SCHED_CONSTANT || total_steps <= warmup) return base_lr;
    double progress = (double)(step - warmup) / (double)(total_steps - warmup);
    if (progress > 1.0) progress = 1.0;
    if (opts->schedule == SCHED_COSINE) return (float)(base_lr * 0.5 * (1.0 + cos(M_PI * progress)));
    return (float)(base_lr * (1.0 - progress));
}

float optim_lr(const Optimizer *o) { return optim_lr_at(&o->opt, o->step); }

float optim_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0 || !isfinite(norm)) return 1.0f;
    float coef = (float)(max_norm / (norm + 1e-6));
    return coef >= 1.0f ? 1.0f : coef;
}

/* The kernels' scalars of update t at learning rate lr, per segment. */
static void fill_args(Optimizer *o, float lr) {
    const OptimOptions *p = &o->opt;
    /* Bias corrections in double: at large t, 1 - b^t in float loses digits. */
    const double bc1 = 1.0 - pow((double)p->beta1, (double)o->t);
    const double bc2 = 1.0 - pow((double)p->beta2, (double)o->t);
    /* PyTorch computes step_size = lr / bc1 and denom = sqrt(v)/sqrt(bc2) + eps. */
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (int s = 0; s < o->n_segs; s++) {
        const OptimSegment *sg = &o->segs[s];
        const float lr_i = lr * sg->lr_mult;
        o->args[s] = (AdamwSegment){
            .param_off = sg->param_off,
            .grad_off = sg->grad_off,
            .n = sg->n,
            .decay = sg->decay ? 1.0f - lr_i * p->weight_decay : 1.0f,
            .step_size = (float)(lr_i / bc1),
            .inv_sqrt_bc2 = inv_sqrt_bc2,
            .beta1 = p->beta1,
            .beta2 = p->beta2,
            .eps = p->eps,
        };
    }
}

void optim_step(const Backend *be, Optimizer *o, float *params, float *grads, OptimStepInfo *info) {
    const float lr = optim_lr(o);
    /* on the backend's buffers: only the norm comes back to the host */
    const double norm = be->global_norm(be, grads, o->n);
    const float coef = optim_clip_coef(norm, o->opt.clip_norm);
    if (coef < 1.0f) be->scale(be, grads, o->n, coef);
    o->t += 1;
    fill_args(o, lr);
    be->adamw_update(be, params, grads, o->m, o->v, o->args, o->n_segs);
    o->step += 1;
    if (info) *info = (OptimStepInfo){lr, norm, coef};
}

void optim_skip(Optimizer *o, OptimStepInfo *info) {
    if (info) *info = (OptimStepInfo){optim_lr(o), NAN, 1.0f};
    o->step += 1;
}
