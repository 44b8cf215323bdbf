/* optim.c: AdamW, LR schedules, global-norm clipping and the loss scaler (see optim.h). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

int adamw_init(AdamW *o, size_t n_grad, float beta1, float beta2, float eps, float weight_decay) {
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    o->t = 0;
    o->n = n_grad;
    o->free_fn = NULL;
    o->m = calloc(n_grad ? n_grad : 1, sizeof(float));
    o->v = calloc(n_grad ? n_grad : 1, sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return -1;
    }
    return 0;
}

void adamw_init_buffers(AdamW *o, size_t n_grad, float beta1, float beta2, float eps, float weight_decay,
                        float *m, float *v, void (*free_fn)(void *p)) {
    *o = (AdamW){beta1, beta2, eps, weight_decay, 0, n_grad, m, v, free_fn};
}

void adamw_free(AdamW *o) {
    void (*f)(void *) = o->free_fn ? o->free_fn : free;
    if (o->m) f(o->m);
    if (o->v) f(o->v);
    o->m = o->v = NULL;
    o->n = 0;
}

void adamw_step(AdamW *o, float *params, const float *grads, const OptimSegment *segs,
                int n_segs, float lr) {
    o->t += 1;
    /* Bias corrections in double: at large t, 1 - b^t in float loses digits. */
    const double bc1 = 1.0 - pow((double)o->beta1, (double)o->t);
    const double bc2 = 1.0 - pow((double)o->beta2, (double)o->t);
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    for (int s = 0; s < n_segs; s++) {
        const OptimSegment *sg = &segs[s];
        const float lr_i = lr * sg->lr_mult;
        const float decay = sg->decay ? 1.0f - lr_i * o->weight_decay : 1.0f;
        /* PyTorch computes step_size = lr / bc1 and denom = sqrt(v)/sqrt(bc2) + eps. */
        const float step_size = (float)(lr_i / bc1);
        const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
        float *p = params + sg->param_off;
        const float *g = grads + sg->grad_off;
        float *m = o->m + sg->grad_off;
        float *v = o->v + sg->grad_off;
        const long n = (long)sg->n;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (long i = 0; i < n; i++) {
            float gi = g[i];
            p[i] *= decay;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            p[i] -= step_size * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
        }
    }
}

float lr_at(LrSchedule kind, float base_lr, int64_t step, int64_t warmup, int64_t total_steps) {
    if (warmup > 0 && step < warmup) return base_lr * (float)(step + 1) / (float)warmup;
    if (kind == SCHED_CONSTANT || total_steps <= warmup) return base_lr;
    double progress = (double)(step - warmup) / (double)(total_steps - warmup);
    if (progress > 1.0) progress = 1.0;
    if (kind == SCHED_COSINE) return (float)(base_lr * 0.5 * (1.0 + cos(M_PI * progress)));
    return (float)(base_lr * (1.0 - progress));
}

/* Fixed blocks summed in index order: the result does not depend on the thread count or
 * on the order in which threads finish (an OpenMP reduction(+) gives no such promise),
 * which exact resume and thread-count independence need. */
#define NORM_BLOCK 16384
double grad_global_norm(const float *g, size_t n) {
    const long nb = (long)((n + NORM_BLOCK - 1) / NORM_BLOCK);
    double part[256];
    double *parts = nb <= 256 ? part : malloc((size_t)nb * sizeof *parts);
    if (!parts) { /* out of memory: the same sum, serially */
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
        return sqrt(s);
    }
#pragma omp parallel for schedule(static) if (nb > 4)
    for (long b = 0; b < nb; b++) {
        size_t lo = (size_t)b * NORM_BLOCK, hi = lo + NORM_BLOCK < n ? lo + NORM_BLOCK : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        parts[b] = s;
    }
    double s = 0;
    for (long b = 0; b < nb; b++) s += parts[b];
    if (parts != part) free(parts);
    return sqrt(s);
}

float grad_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0 || !isfinite(norm)) return 1.0f;
    float coef = (float)(max_norm / (norm + 1e-6));
    return coef >= 1.0f ? 1.0f : coef;
}

float grad_clip(float *g, size_t n, double norm, float max_norm) {
    float coef = grad_clip_coef(norm, max_norm);
    if (coef >= 1.0f) return 1.0f;
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn > 65536)
    for (long i = 0; i < nn; i++) g[i] *= coef;
    return coef;
}

void loss_scaler_init(LossScaler *s, float init_scale, float growth, float backoff, int growth_interval) {
    s->scale = init_scale;
    s->growth = growth;
    s->backoff = backoff;
    s->growth_interval = growth_interval;
    s->clean_steps = 0;
    s->skipped = 0;
}

int loss_scaler_update(LossScaler *s, int found_inf) {
    if (found_inf) {
        s->scale *= s->backoff;
        s->clean_steps = 0;
        s->skipped++;
        return 1;
    }
    if (++s->clean_steps >= s->growth_interval) {
        s->scale *= s->growth;
        s->clean_steps = 0;
    }
    return 0;
}

int grads_have_nonfinite(const float *g, size_t n) {
    int bad = 0;
    const long nn = (long)n;
#pragma omp parallel for reduction(| : bad) schedule(static) if (nn > 65536)
    for (long i = 0; i < nn; i++) bad |= !isfinite(g[i]);
    return bad;
}
