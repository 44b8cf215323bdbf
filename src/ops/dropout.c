/* dropout.c: inverted dropout with a counter-based mask.
 *
 * x, y, dx, dy [n]; mask [n] (uint8, 1 = kept):
 *   keep[i] = hash(seed, i) >= p          (ops_internal.h: splitmix64-based, 24-bit uniform)
 *   y[i]    = x[i] * keep[i] / (1 - p)
 *   dx[i]  += dy[i] * keep[i] / (1 - p)
 * The keep decision is a pure function of (seed, i): no RNG state, so the mask is the same
 * for any thread count or schedule, and a step can be replayed from its seed.
 * p = 0: y = x (mask all 1, may be NULL). p >= 1: y = 0 (mask all 0).
 * mask may be NULL in the forward when no backward will follow (it is needed for p > 0). */
#include <string.h>

#include "ops/ops.h"
#include "ops/ops_internal.h"

#define DO_PAR_MIN 16384

void op_dropout_forward(size_t n, float p, uint64_t seed, const float *x, float *y, uint8_t *mask) {
    if (p <= 0.0f) {
        if (y != x) memcpy(y, x, n * sizeof(float));
        if (mask) memset(mask, 1, n);
        return;
    }
    if (p >= 1.0f) {
        memset(y, 0, n * sizeof(float));
        if (mask) memset(mask, 0, n);
        return;
    }
    const float scale = 1.0f / (1.0f - p);
    const uint64_t sm = opi_dropout_seed(seed);
#pragma omp parallel for schedule(static) if (n >= DO_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        int k = opi_dropout_keep(sm, (uint64_t)i, p);
        y[i] = k ? x[i] * scale : 0.0f;
        if (mask) mask[i] = (uint8_t)k;
    }
}

void op_dropout_backward(size_t n, float p, const uint8_t *mask, const float *dy, float *dx) {
    if (!dx) return;
    if (p <= 0.0f) {
#pragma omp parallel for schedule(static) if (n >= DO_PAR_MIN)
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    if (p >= 1.0f) return;
    const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if (n >= DO_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        if (mask[i]) dx[i] += dy[i] * scale;
}
