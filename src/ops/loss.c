/* loss.c: the two training losses over answer logits, value and gradient in one pass.
 *
 * logits z, targets t, dlogits [N, A]; t are soft answer scores in [0, 1].
 *
 * BCE with logits (the VQA standard): sum over classes, mean over the batch.
 *   l[n,a] = max(z, 0) - z t + log1p(exp(-|z|))   (= -t log s(z) - (1-t) log(1 - s(z)), stable)
 *   loss   = (1/N) sum_n sum_a l[n,a]
 *   dz     = (sigmoid(z) - t) / N * grad_scale
 * Soft cross-entropy: targets normalized per row, u = t / sum_a t.
 *   loss_n = -sum_a u[n,a] log softmax(z[n,:])_a = logsumexp(z[n,:]) - sum_a u[n,a] z[n,a]
 *   loss   = (1/N) sum_n loss_n
 *   dz     = (softmax(z[n,:]) - u[n,:]) / N * grad_scale
 *   A row whose targets sum to 0 (no annotator answer is in the vocabulary) has no defined
 *   distribution: it contributes 0 to the loss and gets a 0 gradient, but still counts in N
 *   (so the loss of a batch does not depend on which rows are empty).
 *
 * dlogits is WRITTEN (not accumulated), as ops.h says; NULL: value only.
 * The loss is accumulated in double. Rows are split into LOSS_CHUNKS fixed chunks whose
 * partial sums are added in chunk order, so the value is bit-identical for any thread count. */
#include <math.h>

#include "ops/ops.h"

#define LOSS_CHUNKS 64

typedef double (*LossRowFn)(int A, const float *z, const float *t, float gs, float *dz);

/* sum_n row(n) / N over LOSS_CHUNKS fixed row chunks, partial sums added in chunk order. */
static double loss_mean(LossRowFn row, int N, int A, const float *logits, const float *targets,
                        float grad_scale, float *dlogits) {
    if (N <= 0) return 0.0;
    const float gs = grad_scale / (float)N;
    const int per = (N + LOSS_CHUNKS - 1) / LOSS_CHUNKS;
    double part[LOSS_CHUNKS] = {0};
#pragma omp parallel for schedule(static) if ((size_t)N * A >= 8192)
    for (int c = 0; c < LOSS_CHUNKS; c++) {
        const int n0 = c * per, n1 = n0 + per < N ? n0 + per : N;
        double acc = 0.0;
        for (int n = n0; n < n1; n++)
            acc += row(A, logits + (size_t)n * A, targets + (size_t)n * A, gs,
                       dlogits ? dlogits + (size_t)n * A : NULL);
        part[c] = acc;
    }
    double total = 0.0;
    for (int c = 0; c < LOSS_CHUNKS; c++) total += part[c];
    return total / N;
}

static double bce_row(int A, const float *z, const float *t, float gs, float *dz) {
    double s = 0.0;
    for (int a = 0; a < A; a++) {
        const double x = z[a], y = t[a];
        s += (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
        if (dz) {
            /* sigmoid in the stable form for both signs */
            const float e = expf(-fabsf(z[a]));
            const float sig = z[a] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
            dz[a] = (sig - t[a]) * gs;
        }
    }
    return s;
}

double op_bce_logits(int N, int A, const float *logits, const float *targets, float grad_scale,
                     float *dlogits) {
    return loss_mean(bce_row, N, A, logits, targets, grad_scale, dlogits);
}

static double xent_row(int A, const float *z, const float *t, float gs, float *dz) {
    double ts = 0.0;
    for (int a = 0; a < A; a++) ts += t[a];
    if (!(ts > 0.0)) {
        if (dz)
            for (int a = 0; a < A; a++) dz[a] = 0.0f;
        return 0.0;
    }
    float mx = z[0];
    for (int a = 1; a < A; a++) mx = z[a] > mx ? z[a] : mx;
    double se = 0.0, tz = 0.0;
    for (int a = 0; a < A; a++) {
        se += exp((double)z[a] - mx);
        tz += (double)t[a] * z[a];
    }
    const double lse = mx + log(se);
    if (dz) {
        const double inv_se = 1.0 / se, inv_ts = 1.0 / ts;
        for (int a = 0; a < A; a++)
            dz[a] = (float)((exp((double)z[a] - mx) * inv_se - t[a] * inv_ts) * gs);
    }
    return lse - tz / ts;
}

double op_soft_xent(int N, int A, const float *logits, const float *targets, float grad_scale,
                    float *dlogits) {
    return loss_mean(xent_row, N, A, logits, targets, grad_scale, dlogits);
}
