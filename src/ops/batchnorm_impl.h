/* batchnorm_impl.h: the one implementation of 2-D batch normalization, one channel per
 * call, for batchnorm.c (the plain fp32 NCHW ops) and batchnorm_act.c (the same ops on
 * x, y, dx, dy in any ActFmt; gamma, beta, statistics and their gradients stay fp32);
 * not part of the op contract.
 *
 * As pool_impl.h: each body takes the format as (nhwc, dt) and is always inlined;
 * batchnorm.c passes the constants {0, DT_F32} (plain float loads / stores, each plane a
 * contiguous run: the plain ops' arithmetic and order),
 * batchnorm_act.c the format it was given. The callers own the parallel loop over
 * channels (an `omp parallel for` inside an inline body would be outlined before
 * inlining and lose the constants).
 *
 * Channel c of an [N, C, HW] activation: plane n starts at act_index(n, c, 0) and steps
 * cs = 1 (NCHW) or C (NHWC); M = N*HW values. Sums are in double, in (n, hw) order. */
#ifndef VQA_BATCHNORM_IMPL_H
#define VQA_BATCHNORM_IMPL_H

#include <math.h>

#include "ops/act_internal.h"

/* sum over channel c of x */
ACT_INLINE double bn_chan_sum(int nhwc, DType dt, int N, int C, int HW, int c, const void *x) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    double acc = 0.0;
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) acc += act_ld(dt, x, i0 + (size_t)j * cs);
    }
    return acc;
}

/* sum over channel c of (x - mu)^2 (a second pass: no E[x^2] - E[x]^2 cancellation) */
ACT_INLINE double bn_chan_sqdev(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                                double mu) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    double acc = 0.0;
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) {
            double d = (double)act_ld(dt, x, i0 + (size_t)j * cs) - mu;
            acc += d * d;
        }
    }
    return acc;
}

/* y = x * a + b on channel c, in fp32 (a = gamma*rstd, b = beta - mean*a) */
ACT_INLINE void bn_chan_affine(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                               float a, float b, void *y) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) {
            const size_t i = i0 + (size_t)j * cs;
            act_st(dt, y, i, act_ld(dt, x, i) * a + b);
        }
    }
}

/* sum dy and sum dy * (x - mean) over channel c, in double */
ACT_INLINE void bn_chan_dsums(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                              const void *dy, float mean, double *sdy, double *sdyx) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    double a = 0.0, b = 0.0;
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) {
            const size_t i = i0 + (size_t)j * cs;
            float d = act_ld(dt, dy, i);
            a += d;
            b += (double)d * ((double)act_ld(dt, x, i) - mean);
        }
    }
    *sdy = a, *sdyx = b;
}

/* Train-mode forward of channel c:
 *   mean = sum x / M,  var = sum (x - mean)^2 / M (biased),  rstd = 1/sqrt(var + eps)
 *   y = x * a + b,  a = gamma*rstd,  b = beta - mean*a   (gamma / beta NULL: 1 / 0)
 *   running_mean = (1-m) running_mean + m mean
 *   running_var  = (1-m) running_var  + m var * M/(M-1)   (unbiased, as PyTorch) */
ACT_INLINE void bn_fwd_train_chan(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                                  const float *gamma, const float *beta, float momentum, float eps,
                                  float *running_mean, float *running_var, void *y,
                                  float *save_mean, float *save_rstd) {
    const double M = (double)N * HW;
    double mu = bn_chan_sum(nhwc, dt, N, C, HW, c, x) / M;
    double var = bn_chan_sqdev(nhwc, dt, N, C, HW, c, x, mu) / M;
    double rstd = 1.0 / sqrt(var + eps);
    double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    bn_chan_affine(nhwc, dt, N, C, HW, c, x, (float)(g * rstd), (float)(bt - mu * g * rstd), y);
    if (save_mean) save_mean[c] = (float)mu;
    if (save_rstd) save_rstd[c] = (float)rstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
    if (running_var) {
        double unbiased = M > 1 ? var * M / (M - 1) : var;
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
}

/* Train-mode backward of channel c (the batch statistics depend on x):
 *   dbeta += sum dy,  dgamma += sum dy * xhat,  xhat = (x - mean) * rstd
 *   dx    += gamma*rstd * (dy - sum dy / M - xhat * sum(dy * xhat) / M)  (in dx's type) */
ACT_INLINE void bn_bwd_train_chan(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                                  const float *gamma, const float *save_mean,
                                  const float *save_rstd, const void *dy, void *dx, float *dgamma,
                                  float *dbeta) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    const double M = (double)N * HW;
    double sdy, sdyx;
    const float mean = save_mean[c];
    const double rstd = save_rstd[c];
    bn_chan_dsums(nhwc, dt, N, C, HW, c, x, dy, mean, &sdy, &sdyx);
    double sdyxhat = sdyx * rstd; /* sum dy * xhat */
    if (dbeta) dbeta[c] += (float)sdy;
    if (dgamma) dgamma[c] += (float)sdyxhat;
    if (!dx) return;
    double g = gamma ? gamma[c] : 1.0;
    float k = (float)(g * rstd);
    float mdy = (float)(sdy / M);
    float cx = (float)(sdyxhat / M * rstd); /* xhat * sdyxhat/M = (x - mean) * cx */
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) {
            const size_t i = i0 + (size_t)j * cs;
            act_acc(dt, dx, i, k * (act_ld(dt, dy, i) - mdy - (act_ld(dt, x, i) - mean) * cx));
        }
    }
}

/* Eval-mode (frozen statistics) forward of channel c: the affine map above with
 * mean = running_mean, rstd = 1/sqrt(running_var + eps). */
ACT_INLINE void bn_fwd_eval_chan(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                                 const float *gamma, const float *beta, const float *running_mean,
                                 const float *running_var, float eps, void *y) {
    double rstd = 1.0 / sqrt((double)running_var[c] + eps);
    double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    bn_chan_affine(nhwc, dt, N, C, HW, c, x, (float)(g * rstd),
                   (float)(bt - running_mean[c] * g * rstd), y);
}

/* Eval-mode backward of channel c (mean, rstd constants with respect to x):
 *   dx += gamma*rstd * dy,  dgamma += sum dy * xhat,  dbeta += sum dy */
ACT_INLINE void bn_bwd_eval_chan(int nhwc, DType dt, int N, int C, int HW, int c, const void *x,
                                 const float *gamma, const float *running_mean,
                                 const float *running_var, float eps, const void *dy, void *dx,
                                 float *dgamma, float *dbeta) {
    const ActFmt f = {nhwc, dt};
    const size_t cs = nhwc ? (size_t)C : 1;
    double rstd = 1.0 / sqrt((double)running_var[c] + eps);
    if (dgamma || dbeta) {
        double sdy, sdyx;
        bn_chan_dsums(nhwc, dt, N, C, HW, c, x, dy, running_mean[c], &sdy, &sdyx);
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)(sdyx * rstd);
    }
    if (!dx) return;
    float k = (float)((gamma ? gamma[c] : 1.0) * rstd);
    for (int n = 0; n < N; n++) {
        const size_t i0 = act_index(&f, C, HW, n, c, 0);
        for (int j = 0; j < HW; j++) {
            const size_t i = i0 + (size_t)j * cs;
            act_acc(dt, dx, i, k * act_ld(dt, dy, i));
        }
    }
}

#endif
