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
 * cancellation). Channels are independent: parallel over c. The per-channel bodies are
 * in batchnorm_impl.h, shared with batchnorm_act.c; here they are inlined for fp32 NCHW. */
#include "ops/batchnorm_impl.h"

void op_batchnorm_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                                const float *beta, float momentum, float eps, float *running_mean,
                                float *running_var, float *y, float *save_mean, float *save_rstd) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_fwd_train_chan(0, DT_F32, N, C, HW, c, x, gamma, beta, momentum, eps, running_mean,
                          running_var, y, save_mean, save_rstd);
}

void op_batchnorm_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_rstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_bwd_train_chan(0, DT_F32, N, C, HW, c, x, gamma, save_mean, save_rstd, dy, dx, dgamma,
                          dbeta);
}

void op_batchnorm_forward_eval(int N, int C, int HW, const float *x, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float eps, float *y) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_fwd_eval_chan(0, DT_F32, N, C, HW, c, x, gamma, beta, running_mean, running_var, eps, y);
}

void op_batchnorm_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var, float eps,
                                const float *dy, float *dx, float *dgamma, float *dbeta) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        bn_bwd_eval_chan(0, DT_F32, N, C, HW, c, x, gamma, running_mean, running_var, eps, dy, dx,
                         dgamma, dbeta);
}
