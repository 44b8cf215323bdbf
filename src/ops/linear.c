/* linear.c: fully connected layer (PyTorch nn.Linear), weights [out, in].
 *
 *   y [N, out] = x [N, in] @ w^T + b          (b [out] optional)
 *   dx [N, in]   += dy [N, out] @ w [out, in]
 *   dw [out, in] += dy^T [out, N] @ x [N, in]
 *   db [out]     += sum_n dy[n, :]
 * All products go through op_gemm; the accumulation is GEMM's beta = 1. */
#include "ops/ops.h"

void op_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b,
                       float *y) {
    if (b) {
        /* Start from the bias and let the GEMM add x w^T onto it. */
#pragma omp parallel for schedule(static) if ((long)N * out > 65536)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) y[(size_t)n * out + o] = b[o];
    }
    op_gemm(0, 1, N, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

void op_linear_backward(int N, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db) {
    if (dx) op_gemm(0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw) op_gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) {
#pragma omp parallel for schedule(static) if ((long)N * out > 65536)
        for (int o = 0; o < out; o++) {
            double acc = 0.0;
            for (int n = 0; n < N; n++) acc += dy[(size_t)n * out + o];
            db[o] += (float)acc;
        }
    }
}
