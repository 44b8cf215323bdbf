/* optim_kernels.c: the CPU element kernels of an optimizer step (ops.h): the AdamW update
 * over segments, the gradient norm, the non-finite check and scaling. The scalars (bias
 * corrections, learning rate, decay factor) come from src/optim/optim.c. */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>

// p *= decay ; m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2
// p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps)   (PyTorch: step_size = lr / bc1,
// denom = sqrt(v) / sqrt(bc2) + eps)
void op_adamw_update(float *params, const float *grads, float *m, float *v, const AdamwSegment *segs,
                     int n_segs) {
    for (int s = 0; s < n_segs; s++) {
        const AdamwSegment *sg = &segs[s];
        const float b1 = sg->beta1, b2 = sg->beta2, eps = sg->eps;
        const float decay = sg->decay, step_size = sg->step_size, inv_sqrt_bc2 = sg->inv_sqrt_bc2;
        float *p = params + sg->param_off;
        const float *g = grads + sg->grad_off;
        float *ms = m + sg->grad_off;
        float *vs = v + sg->grad_off;
        const long n = (long)sg->n;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (long i = 0; i < n; i++) {
            float gi = g[i];
            p[i] *= decay;
            ms[i] = b1 * ms[i] + (1.0f - b1) * gi;
            vs[i] = b2 * vs[i] + (1.0f - b2) * gi * gi;
            p[i] -= step_size * ms[i] / (sqrtf(vs[i]) * inv_sqrt_bc2 + eps);
        }
    }
}

/* Fixed blocks summed in index order: the result does not depend on the thread count or
 * on the order in which threads finish (an OpenMP reduction(+) gives no such promise),
 * which exact resume and thread-count independence need. */
#define NORM_BLOCK 16384
double op_global_norm(const float *g, size_t n) {
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

int op_has_nonfinite(const float *g, size_t n) {
    int bad = 0;
    const long nn = (long)n;
#pragma omp parallel for reduction(| : bad) schedule(static) if (nn > 65536)
    for (long i = 0; i < nn; i++) bad |= !isfinite(g[i]);
    return bad;
}

void op_scale(float *x, size_t n, float s) {
    const long nn = (long)n;
#pragma omp parallel for schedule(static) if (nn > 65536)
    for (long i = 0; i < nn; i++) x[i] *= s;
}
