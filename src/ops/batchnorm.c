/* batchnorm.c: 2-D batch normalization (PyTorch BatchNorm2d), x [N, C, HW], NCHW.
 *
 * Train mode, per channel c over the M = N*HW values of the batch:
 *   mean[c] = sum x / M,  var[c] = sum (x - mean)^2 / M  (biased),  rstd = 1/sqrt(var + eps)
 *   xhat = (x - mean) * rstd,  y = gamma[c] * xhat + beta[c]
 *   running_mean = (1-m) running_mean + m mean
 *   running_var  = (1-m) running_var  + m var * M/(M-1)   (unbiased, as PyTorch)
 * backward (the batch statistics depend on x):
 *   dbeta  += sum dy,  dgamma += sum dy * xhat
 *   dx     += gamma * rstd / M * (M dy - sum dy - xhat * sum(dy * xhat))
 *
 * Eval mode / frozen statistics: the same affine map with mean = running_mean and
 * rstd = 1/sqrt(running_var + eps), constants with respect to x, so
 *   dx += gamma * rstd * dy,  dgamma += sum dy * xhat,  dbeta += sum dy.
 *
 * gamma / beta may be NULL (affine = False: gamma = 1, beta = 0). Sums are accumulated
 * in double, and the variance is computed in a second pass (no E[x^2] - E[x]^2
 * cancellation). Channels are independent: parallel over c. */
#include <math.h>

#include "ops/ops.h"

/* sum over the channel's N*HW values of x. */
static double chan_sum(int N, int C, int HW, int c, const float *x) {
    double acc = 0.0;
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        for (int j = 0; j < HW; j++) acc += p[j];
    }
    return acc;
}

/* sum over the channel of (x - mu)^2. */
static double chan_sqdev(int N, int C, int HW, int c, const float *x, double mu) {
    double acc = 0.0;
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        for (int j = 0; j < HW; j++) {
            double d = (double)p[j] - mu;
            acc += d * d;
        }
    }
    return acc;
}

/* y = x * a + b on the channel (a = gamma*rstd, b = beta - mean*a). */
static void chan_affine(int N, int C, int HW, int c, const float *x, float a, float b, float *y) {
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        float *q = y + ((size_t)n * C + c) * HW;
        for (int j = 0; j < HW; j++) q[j] = p[j] * a + b;
    }
}

/* sum dy and sum dy * (x - mean) over the channel, in double. */
static void chan_dsums(int N, int C, int HW, int c, const float *x, const float *dy, float mean,
                       double *sdy, double *sdyx) {
    double a = 0.0, b = 0.0;
    for (int n = 0; n < N; n++) {
        const float *p = x + ((size_t)n * C + c) * HW;
        const float *d = dy + ((size_t)n * C + c) * HW;
        for (int j = 0; j < HW; j++) {
            a += d[j];
            b += (double)d[j] * ((double)p[j] - mean);
        }
    }
    *sdy = a, *sdyx = b;
}

void op_batchnorm_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                                const float *beta, float momentum, float eps, float *running_mean,
                                float *running_var, float *y, float *save_mean, float *save_rstd) {
    const double M = (double)N * HW;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu = chan_sum(N, C, HW, c, x) / M;
        double var = chan_sqdev(N, C, HW, c, x, mu) / M;
        double rstd = 1.0 / sqrt(var + eps);
        double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        chan_affine(N, C, HW, c, x, (float)(g * rstd), (float)(bt - mu * g * rstd), y);
        if (save_mean) save_mean[c] = (float)mu;
        if (save_rstd) save_rstd[c] = (float)rstd;
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
        if (running_var) {
            double unbiased = M > 1 ? var * M / (M - 1) : var;
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
    }
}

void op_batchnorm_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta) {
    const double M = (double)N * HW;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sdy, sdyx;
        const float mean = save_mean[c];
        const double rstd = save_rstd[c];
        chan_dsums(N, C, HW, c, x, dy, mean, &sdy, &sdyx);
        double sdyxhat = sdyx * rstd; /* sum dy * xhat */
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)sdyxhat;
        if (!dx) continue;
        /* dx = k * (dy - sdy/M - xhat * sdyxhat/M), k = gamma * rstd */
        double g = gamma ? gamma[c] : 1.0;
        float k = (float)(g * rstd);
        float mdy = (float)(sdy / M);
        float cx = (float)(sdyxhat / M * rstd); /* xhat * sdyxhat/M = (x-mean) * cx */
        for (int n = 0; n < N; n++) {
            const float *p = x + ((size_t)n * C + c) * HW;
            const float *d = dy + ((size_t)n * C + c) * HW;
            float *o = dx + ((size_t)n * C + c) * HW;
            for (int j = 0; j < HW; j++) o[j] += k * (d[j] - mdy - (p[j] - mean) * cx);
        }
    }
}

void op_batchnorm_forward_eval(int N, int C, int HW, const float *x, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float eps, float *y) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt((double)running_var[c] + eps);
        double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        chan_affine(N, C, HW, c, x, (float)(g * rstd), (float)(bt - running_mean[c] * g * rstd), y);
    }
}

void op_batchnorm_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var, float eps,
                                const float *dy, float *dx, float *dgamma, float *dbeta) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt((double)running_var[c] + eps);
        if (dgamma || dbeta) {
            double sdy, sdyx;
            chan_dsums(N, C, HW, c, x, dy, running_mean[c], &sdy, &sdyx);
            if (dbeta) dbeta[c] += (float)sdy;
            if (dgamma) dgamma[c] += (float)(sdyx * rstd);
        }
        if (!dx) continue;
        float k = (float)((gamma ? gamma[c] : 1.0) * rstd);
        for (int n = 0; n < N; n++) {
            const float *d = dy + ((size_t)n * C + c) * HW;
            float *o = dx + ((size_t)n * C + c) * HW;
            for (int j = 0; j < HW; j++) o[j] += k * d[j];
        }
    }
}
