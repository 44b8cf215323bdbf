/* layernorm.c: layer normalization over the last dim (BERT: eps 1e-12), forward and backward.
 *
 * x, y [N, D]; w, b [D] (either may be NULL: weight 1, bias 0); mean, rstd [N] saved.
 *   mean[n] = (1/D) sum_d x[n,d]
 *   var[n]  = (1/D) sum_d (x[n,d] - mean[n])^2               (biased, as PyTorch)
 *   rstd[n] = 1 / sqrt(var[n] + eps)
 *   xhat    = (x - mean) * rstd
 *   y[n,d]  = xhat[n,d] * w[d] + b[d]
 * Backward, with g = dy * w:
 *   dx[n,d] += rstd[n] * (g[n,d] - mean_d(g[n,:]) - xhat[n,d] * mean_d(g[n,:] * xhat[n,:]))
 *   dw[d]   += sum_n dy[n,d] * xhat[n,d]
 *   db[d]   += sum_n dy[n,d]
 * Row statistics are accumulated in double (two passes: mean, then centred variance).
 * dx is parallel over rows; dw/db are parallel over column blocks, each summing its rows in
 * order n = 0..N-1, so they are race-free and independent of the thread count. */
#include <math.h>

#include "ops/ops.h"

#define LN_PAR_MIN 8192
#define LN_COL_BLOCK 64

void op_layernorm_forward(int N, int D, const float *x, const float *w, const float *b, float eps,
                          float *y, float *mean, float *rstd) {
#pragma omp parallel for schedule(static) if ((size_t)N * D >= LN_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        double s = 0.0;
        for (int d = 0; d < D; d++) s += xr[d];
        const double mu = s / D;
        double v = 0.0;
        for (int d = 0; d < D; d++) {
            double c = xr[d] - mu;
            v += c * c;
        }
        const float m = (float)mu;
        const float r = (float)(1.0 / sqrt(v / D + (double)eps));
        for (int d = 0; d < D; d++) {
            float xh = (xr[d] - m) * r;
            yr[d] = xh * (w ? w[d] : 1.0f) + (b ? b[d] : 0.0f);
        }
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

void op_layernorm_backward(int N, int D, const float *x, const float *w, const float *mean,
                           const float *rstd, const float *dy, float *dx, float *dw, float *db) {
    const int par = (size_t)N * D >= LN_PAR_MIN;
    if (dx) {
#pragma omp parallel for schedule(static) if (par)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * D, *gr = dy + (size_t)n * D;
            float *dxr = dx + (size_t)n * D;
            const float m = mean[n], r = rstd[n];
            double sg = 0.0, sgx = 0.0;
            for (int d = 0; d < D; d++) {
                float g = gr[d] * (w ? w[d] : 1.0f);
                float xh = (xr[d] - m) * r;
                sg += g;
                sgx += (double)g * xh;
            }
            const float mg = (float)(sg / D), mgx = (float)(sgx / D);
            for (int d = 0; d < D; d++) {
                float g = gr[d] * (w ? w[d] : 1.0f);
                float xh = (xr[d] - m) * r;
                dxr[d] += r * (g - mg - xh * mgx);
            }
        }
    }
    if (dw || db) {
        const int nblocks = (D + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#pragma omp parallel for schedule(static) if (par)
        for (int blk = 0; blk < nblocks; blk++) {
            const int d0 = blk * LN_COL_BLOCK;
            const int d1 = d0 + LN_COL_BLOCK < D ? d0 + LN_COL_BLOCK : D;
            double aw[LN_COL_BLOCK] = {0}, ab[LN_COL_BLOCK] = {0};
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)n * D, *gr = dy + (size_t)n * D;
                const float m = mean[n], r = rstd[n];
                for (int d = d0; d < d1; d++) {
                    aw[d - d0] += (double)gr[d] * ((xr[d] - m) * r);
                    ab[d - d0] += gr[d];
                }
            }
            for (int d = d0; d < d1; d++) {
                if (dw) dw[d] += (float)aw[d - d0];
                if (db) db[d] += (float)ab[d - d0];
            }
        }
    }
}
