/* softmax.c: numerically stable softmax over the last dim, forward and backward.
 *
 * x, y [rows, cols]:
 *   y[r, j] = exp(x[r, j] - max_j x[r, :]) / sum_k exp(x[r, k] - max_j x[r, :])
 *   dx[r, j] += y[r, j] * (dy[r, j] - sum_k dy[r, k] * y[r, k])
 * Subtracting the row max keeps every exp <= 1 (no overflow); the denominator is >= 1.
 * Sums are accumulated in double. Each row needs at least one finite value (attention
 * masks use -FLT_MAX, never -inf, so a fully masked row stays finite and uniform).
 * In place allowed (y may equal x). Parallel over rows. */
#include <math.h>

#include "ops/ops.h"
#include "ops/ops_internal.h"

#define SM_PAR_MIN 8192

void opi_softmax_row(int cols, const float *x, float *y) {
    float mx = x[0];
    for (int j = 1; j < cols; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0.0;
    for (int j = 0; j < cols; j++) {
        float e = expf(x[j] - mx);
        y[j] = e;
        s += e;
    }
    const float inv = (float)(1.0 / s);
    for (int j = 0; j < cols; j++) y[j] *= inv;
}

void opi_softmax_row_backward(int cols, const float *y, const float *dy, float *dx) {
    double s = 0.0;
    for (int j = 0; j < cols; j++) s += (double)dy[j] * y[j];
    const float sf = (float)s;
    for (int j = 0; j < cols; j++) dx[j] += y[j] * (dy[j] - sf);
}

void op_softmax_forward(int rows, int cols, const float *x, float *y) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= SM_PAR_MIN)
    for (int r = 0; r < rows; r++)
        opi_softmax_row(cols, x + (size_t)r * cols, y + (size_t)r * cols);
}

void op_softmax_backward(int rows, int cols, const float *y, const float *dy, float *dx) {
    if (!dx) return;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= SM_PAR_MIN)
    for (int r = 0; r < rows; r++)
        opi_softmax_row_backward(cols, y + (size_t)r * cols, dy + (size_t)r * cols,
                                 dx + (size_t)r * cols);
}
