/* elementwise.c: element-wise add and multiply, and concatenation along the last dim,
 * forward and backward side by side, and op_zero. Backward ACCUMULATES into every non-NULL gradient;
 * a NULL gradient is skipped (ops.h). Parallel over elements / rows. */
#include <omp.h>
#include <string.h>

#include "ops/ops.h"

#define EW_PAR_MIN 16384

/* y = a + b, [n]; in place allowed (y may be a or b). `simd`: GCC's -O2 leaves the loop
 * scalar (the residual adds of the ResNet run it on every block output). */
void op_add_forward(size_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static) if (n >= EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* da += dy, db += dy */
void op_add_backward(size_t n, const float *dy, float *da, float *db) {
#pragma omp parallel for schedule(static) if (n >= EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] += dy[i];
        if (db) db[i] += dy[i];
    }
}

/* y = a * b, [n]; in place allowed */
void op_mul_forward(size_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for schedule(static) if (n >= EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

/* da += dy * b, db += dy * a. If a == b (y = a^2) pass da == db: both terms land in it. */
void op_mul_backward(size_t n, const float *a, const float *b, const float *dy, float *da,
                     float *db) {
#pragma omp parallel for schedule(static) if (n >= EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = dy[i];
        if (da) da[i] += g * b[i];
        if (db) db[i] += g * a[i];
    }
}

/* y[n, 0:Da] = a[n, :], y[n, Da:Da+Db] = b[n, :]      a [N, Da], b [N, Db], y [N, Da+Db] */
void op_concat_forward(int N, int Da, int Db, const float *a, const float *b, float *y) {
    const size_t D = (size_t)Da + (size_t)Db;
#pragma omp parallel for schedule(static) if ((size_t)N * D >= EW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        memcpy(y + n * D, a + (size_t)n * Da, (size_t)Da * sizeof(float));
        memcpy(y + n * D + Da, b + (size_t)n * Db, (size_t)Db * sizeof(float));
    }
}

/* da[n, :] += dy[n, 0:Da], db[n, :] += dy[n, Da:Da+Db] */
void op_concat_backward(int N, int Da, int Db, const float *dy, float *da, float *db) {
    const size_t D = (size_t)Da + (size_t)Db;
#pragma omp parallel for schedule(static) if ((size_t)N * D >= EW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = dy + n * D;
        if (da) {
            float *o = da + (size_t)n * Da;
            for (int j = 0; j < Da; j++) o[j] += g[j];
        }
        if (db) {
            float *o = db + (size_t)n * Db;
            for (int j = 0; j < Db; j++) o[j] += g[Da + j];
        }
    }
}

/* Each thread clears one contiguous piece; piece boundaries are multiples of 64 bytes
 * (whole cache lines, so no two threads write the same line). */
void op_zero(void *p, size_t bytes) {
    if (!bytes) return;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt <= 1 || bytes < OP_ZERO_PAR_MIN) {
        memset(p, 0, bytes);
        return;
    }
    const size_t lines = (bytes + 63) / 64;
#pragma omp parallel num_threads(nt)
    {
        const size_t t = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        size_t b0 = lines * t / T * 64, b1 = lines * (t + 1) / T * 64;
        if (b1 > bytes) b1 = bytes;
        if (b1 > b0) memset((char *)p + b0, 0, b1 - b0);
    }
}
