/* batchnorm_act.c: 2-D batch normalization on activations in an ActFmt (x, y, dx, dy in
 * f; gamma, beta, statistics and their gradients fp32). The math is batchnorm.c's, term
 * for term (same statistics in double, same running-stat update, same fp32 affine):
 *   mean = sum x / M,  var = sum (x - mean)^2 / M (biased),  rstd = 1/sqrt(var + eps),
 *   M = N*HW;  y = x * a + b,  a = gamma*rstd,  b = beta - mean*a
 *   running_var uses the unbiased var * M/(M-1)
 *   dbeta += sum dy,  dgamma += sum dy * xhat,
 *   dx += gamma*rstd * (dy - sum dy / M - xhat * sum(dy * xhat) / M)      (train)
 *   dx += gamma*rstd * dy, with mean / rstd from the running statistics     (eval)
 * Elements are loaded as fp32 and results rounded once on store; dx accumulates in its
 * storage type. Channel c's elements are (n, c, hw) at act_index: parallel over channels
 * (strided in NHWC, which a reference can afford). The plain format calls batchnorm.c. */
#include <math.h>

#include "ops/act_internal.h"

/* sum over channel c of x, and of (x - mu)^2 (second pass: no cancellation) */
static double chan_sum(const ActFmt *f, int N, int C, int HW, int c, const void *x) {
    double acc = 0.0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < HW; j++) acc += act_ld(f->dt, x, act_index(f, C, HW, n, c, j));
    return acc;
}

static double chan_sqdev(const ActFmt *f, int N, int C, int HW, int c, const void *x, double mu) {
    double acc = 0.0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < HW; j++) {
            double d = (double)act_ld(f->dt, x, act_index(f, C, HW, n, c, j)) - mu;
            acc += d * d;
        }
    return acc;
}

/* y = x * a + b on channel c */
static void chan_affine(const ActFmt *f, int N, int C, int HW, int c, const void *x, float a,
                        float b, void *y) {
    for (int n = 0; n < N; n++)
        for (int j = 0; j < HW; j++) {
            size_t i = act_index(f, C, HW, n, c, j);
            act_st(f->dt, y, i, act_ld(f->dt, x, i) * a + b);
        }
}

/* sum dy and sum dy * (x - mean) over channel c, in double */
static void chan_dsums(const ActFmt *f, int N, int C, int HW, int c, const void *x,
                       const void *dy, float mean, double *sdy, double *sdyx) {
    double a = 0.0, b = 0.0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < HW; j++) {
            size_t i = act_index(f, C, HW, n, c, j);
            float d = act_ld(f->dt, dy, i);
            a += d;
            b += (double)d * ((double)act_ld(f->dt, x, i) - mean);
        }
    *sdy = a, *sdyx = b;
}

void op_batchnorm_act_forward_train(const ActFmt *f, int N, int C, int HW, const void *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var, void *y,
                                    float *save_mean, float *save_rstd) {
    if (act_is_plain(f)) {
        op_batchnorm_forward_train(N, C, HW, x, gamma, beta, momentum, eps, running_mean,
                                   running_var, y, save_mean, save_rstd);
        return;
    }
    const double M = (double)N * HW;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu = chan_sum(f, N, C, HW, c, x) / M;
        double var = chan_sqdev(f, N, C, HW, c, x, mu) / M;
        double rstd = 1.0 / sqrt(var + eps);
        double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        chan_affine(f, N, C, HW, c, x, (float)(g * rstd), (float)(bt - mu * g * rstd), y);
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

void op_batchnorm_act_backward_train(const ActFmt *f, int N, int C, int HW, const void *x,
                                     const float *gamma, const float *save_mean,
                                     const float *save_rstd, const void *dy, void *dx,
                                     float *dgamma, float *dbeta) {
    if (act_is_plain(f)) {
        op_batchnorm_backward_train(N, C, HW, x, gamma, save_mean, save_rstd, dy, dx, dgamma,
                                    dbeta);
        return;
    }
    const double M = (double)N * HW;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double sdy, sdyx;
        const float mean = save_mean[c];
        const double rstd = save_rstd[c];
        chan_dsums(f, N, C, HW, c, x, dy, mean, &sdy, &sdyx);
        double sdyxhat = sdyx * rstd; /* sum dy * xhat */
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)sdyxhat;
        if (!dx) continue;
        double g = gamma ? gamma[c] : 1.0;
        float k = (float)(g * rstd);
        float mdy = (float)(sdy / M);
        float cx = (float)(sdyxhat / M * rstd); /* xhat * sdyxhat/M = (x - mean) * cx */
        for (int n = 0; n < N; n++)
            for (int j = 0; j < HW; j++) {
                size_t i = act_index(f, C, HW, n, c, j);
                float d = act_ld(f->dt, dy, i), p = act_ld(f->dt, x, i);
                act_acc(f->dt, dx, i, k * (d - mdy - (p - mean) * cx));
            }
    }
}

void op_batchnorm_act_forward_eval(const ActFmt *f, int N, int C, int HW, const void *x,
                                   const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var, float eps,
                                   void *y) {
    if (act_is_plain(f)) {
        op_batchnorm_forward_eval(N, C, HW, x, gamma, beta, running_mean, running_var, eps, y);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt((double)running_var[c] + eps);
        double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        chan_affine(f, N, C, HW, c, x, (float)(g * rstd), (float)(bt - running_mean[c] * g * rstd), y);
    }
}

void op_batchnorm_act_backward_eval(const ActFmt *f, int N, int C, int HW, const void *x,
                                    const float *gamma, const float *running_mean,
                                    const float *running_var, float eps, const void *dy, void *dx,
                                    float *dgamma, float *dbeta) {
    if (act_is_plain(f)) {
        op_batchnorm_backward_eval(N, C, HW, x, gamma, running_mean, running_var, eps, dy, dx,
                                   dgamma, dbeta);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double rstd = 1.0 / sqrt((double)running_var[c] + eps);
        if (dgamma || dbeta) {
            double sdy, sdyx;
            chan_dsums(f, N, C, HW, c, x, dy, running_mean[c], &sdy, &sdyx);
            if (dbeta) dbeta[c] += (float)sdy;
            if (dgamma) dgamma[c] += (float)(sdyx * rstd);
        }
        if (!dx) continue;
        float k = (float)((gamma ? gamma[c] : 1.0) * rstd);
        for (int n = 0; n < N; n++)
            for (int j = 0; j < HW; j++) {
                size_t i = act_index(f, C, HW, n, c, j);
                act_acc(f->dt, dx, i, k * act_ld(f->dt, dy, i));
            }
    }
}
