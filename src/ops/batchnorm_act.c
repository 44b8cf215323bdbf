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
 * (strided in NHWC, which a reference can afford). The per-channel bodies are
 * batchnorm_impl.h's, shared with batchnorm.c, called here with the run-time format; the
 * plain format calls batchnorm.c, where the same bodies are specialized for fp32 NCHW. */
#include "ops/batchnorm_impl.h"

void op_batchnorm_act_forward_train(const ActFmt *f, int N, int C, int HW, const void *x,
                                    const float *gamma, const float *beta, float momentum,
                                    float eps, float *running_mean, float *running_var, void *y,
                                    float *save_mean, float *save_rstd) {
    if (act_is_plain(f)) {
        op_batchnorm_forward_train(N, C, HW, x, gamma, beta, momentum, eps, running_mean,
                                   running_var, y, save_mean, save_rstd);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_fwd_train_chan(f->nhwc, f->dt, N, C, HW, c, x, gamma, beta, momentum, eps,
                          running_mean, running_var, y, save_mean, save_rstd);
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
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_bwd_train_chan(f->nhwc, f->dt, N, C, HW, c, x, gamma, save_mean, save_rstd, dy, dx,
                          dgamma, dbeta);
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
    for (int c = 0; c < C; c++)
        bn_fwd_eval_chan(f->nhwc, f->dt, N, C, HW, c, x, gamma, beta, running_mean, running_var,
                         eps, y);
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
    for (int c = 0; c < C; c++)
        bn_bwd_eval_chan(f->nhwc, f->dt, N, C, HW, c, x, gamma, running_mean, running_var, eps,
                         dy, dx, dgamma, dbeta);
}
