// batchnorm.cu: 2-D batch normalization (PyTorch BatchNorm2d), x [N, C, HW] NCHW, the math
// and running-statistics semantics of src/ops/batchnorm.c. Hand-written (not cuDNN) so the
// running variance is updated exactly as PyTorch (unbiased) and sums are in double.
// Train, per channel c over the M = N*HW values:
//   mean = sum x / M ; var = sum (x - mean)^2 / M (biased, second pass) ; rstd = 1/sqrt(var + eps)
//   y = x * a + b with a = gamma * rstd, b = beta - mean * a
//   running_mean = (1-m) running_mean + m mean ; running_var = (1-m) running_var + m var M/(M-1)
// Backward: dbeta += sum dy ; dgamma += sum dy xhat ;
//   dx += gamma rstd (dy - sum dy / M - xhat sum(dy xhat) / M)
// Eval: a, b from the running statistics; dx += gamma rstd dy.
// A channel's statistics: one block per channel (grid C), threads over the M values; the
// per-channel coefficients go to device scratch, then one element-wise kernel applies them.
#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define BN_THREADS 512
#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// Element j of channel c's M values: image n = j / HW, position j % HW.
__device__ __forceinline__ size_t bn_at(int C, int HW, int c, size_t j) {
    size_t n = j / HW, q = j % HW;
    return (n * C + c) * HW + q;
}

// coef[c] = a, coef[C + c] = b
__global__ void k_bn_stats(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                           float momentum, float eps, float *running_mean, float *running_var, float *save_mean,
                           float *save_rstd, float *coef) {
    const int c = blockIdx.x;
    const size_t M = (size_t)N * HW;
    double s = 0.0;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) s += x[bn_at(C, HW, c, j)];
    const double mu = block_sum(s) / (double)M;
    double v = 0.0;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        double d = (double)x[bn_at(C, HW, c, j)] - mu;
        v += d * d;
    }
    const double var = block_sum(v) / (double)M;
    if (threadIdx.x == 0) {
        const double rstd = 1.0 / sqrt(var + eps);
        const double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
        coef[c] = (float)(g * rstd);
        coef[C + c] = (float)(bt - mu * g * rstd);
        if (save_mean) save_mean[c] = (float)mu;
        if (save_rstd) save_rstd[c] = (float)rstd;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
        if (running_var) {
            const double Md = (double)M, unbiased = Md > 1 ? var * Md / (Md - 1) : var;
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
        }
    }
}

// y = x * a[c] + b[c]
__global__ void k_bn_affine(size_t n, int C, int HW, const float *x, const float *coef, float *y) {
    GRID_STRIDE(i, n) {
        int c = (int)((i / HW) % C);
        y[i] = x[i] * coef[c] + coef[C + c];
    }
}

// eval coefficients from the running statistics
__global__ void k_bn_eval_coef(int C, const float *gamma, const float *beta, const float *rm, const float *rv, float eps,
                               float *coef) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double rstd = 1.0 / sqrt((double)rv[c] + eps);
    double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    coef[c] = (float)(g * rstd);
    coef[C + c] = (float)(bt - rm[c] * g * rstd);
}

// Per channel: sdy = sum dy, sdyx = sum dy (x - mean); dbeta/dgamma updated; for dx:
// coef[c] = k = gamma rstd, coef[C+c] = sum dy / M, coef[2C+c] = sum(dy xhat)/M * rstd (train)
// or 0, 0 (eval: statistics are constants).  mean/rstd from save_* (train) or running (eval).
__global__ void k_bn_dsums(int N, int C, int HW, const float *x, const float *gamma, const float *mean_in,
                           const float *rstd_in, const float *rm, const float *rv, float eps, const float *dy,
                           float *dgamma, float *dbeta, float *coef) {
    const int c = blockIdx.x;
    const size_t M = (size_t)N * HW;
    const int train = mean_in != nullptr;
    const float mean = train ? mean_in[c] : rm[c];
    const double rstd = train ? (double)rstd_in[c] : 1.0 / sqrt((double)rv[c] + eps);
    double a = 0.0, b = 0.0;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        size_t at = bn_at(C, HW, c, j);
        a += dy[at];
        b += (double)dy[at] * ((double)x[at] - mean);
    }
    const double sdy = block_sum(a);
    const double sdyx = block_sum(b);
    if (threadIdx.x == 0) {
        const double sdyxhat = sdyx * rstd;
        if (dbeta) dbeta[c] += (float)sdy;
        if (dgamma) dgamma[c] += (float)sdyxhat;
        const double g = gamma ? gamma[c] : 1.0;
        coef[c] = (float)(g * rstd);
        coef[C + c] = train ? (float)(sdy / (double)M) : 0.0f;
        coef[2 * C + c] = train ? (float)(sdyxhat / (double)M * rstd) : 0.0f;
        coef[3 * C + c] = mean;
    }
}

// dx += k (dy - mdy - (x - mean) cx)
__global__ void k_bn_dx(size_t n, int C, int HW, const float *x, const float *dy, const float *coef, float *dx) {
    GRID_STRIDE(i, n) {
        int c = (int)((i / HW) % C);
        float k = coef[c], mdy = coef[C + c], cx = coef[2 * C + c], mean = coef[3 * C + c];
        dx[i] += k * (dy[i] - mdy - (x[i] - mean) * cx);
    }
}

extern "C" void cu_batchnorm_forward_train(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                                           float momentum, float eps, float *running_mean, float *running_var, float *y,
                                           float *save_mean, float *save_rstd) {
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed()) return;
    float *coef = (float *)gpu_scratch(2 * (size_t)C * sizeof(float));
    if (!coef) return;
    cudaStream_t st = gpu_stream();
    k_bn_stats<<<C, BN_THREADS, 0, st>>>(N, C, HW, x, gamma, beta, momentum, eps, running_mean, running_var, save_mean,
                                         save_rstd, coef);
    if (KERNEL_CHECK()) return;
    size_t n = (size_t)N * C * HW;
    k_bn_affine<<<gpu_blocks(n), GPU_THREADS, 0, st>>>(n, C, HW, x, coef, y);
    KERNEL_CHECK();
}

extern "C" void cu_batchnorm_forward_eval(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                                          const float *running_mean, const float *running_var, float eps, float *y) {
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed()) return;
    float *coef = (float *)gpu_scratch(2 * (size_t)C * sizeof(float));
    if (!coef) return;
    cudaStream_t st = gpu_stream();
    k_bn_eval_coef<<<(C + 255) / 256, 256, 0, st>>>(C, gamma, beta, running_mean, running_var, eps, coef);
    if (KERNEL_CHECK()) return;
    size_t n = (size_t)N * C * HW;
    k_bn_affine<<<gpu_blocks(n), GPU_THREADS, 0, st>>>(n, C, HW, x, coef, y);
    KERNEL_CHECK();
}

static void bn_backward(int N, int C, int HW, const float *x, const float *gamma, const float *mean,
                        const float *rstd, const float *rm, const float *rv, float eps, const float *dy, float *dx,
                        float *dgamma, float *dbeta) {
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed() || (!dx && !dgamma && !dbeta)) return;
    float *coef = (float *)gpu_scratch(4 * (size_t)C * sizeof(float));
    if (!coef) return;
    cudaStream_t st = gpu_stream();
    k_bn_dsums<<<C, BN_THREADS, 0, st>>>(N, C, HW, x, gamma, mean, rstd, rm, rv, eps, dy, dgamma, dbeta, coef);
    if (KERNEL_CHECK() || !dx) return;
    size_t n = (size_t)N * C * HW;
    k_bn_dx<<<gpu_blocks(n), GPU_THREADS, 0, st>>>(n, C, HW, x, dy, coef, dx);
    KERNEL_CHECK();
}

extern "C" void cu_batchnorm_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                                            const float *save_mean, const float *save_rstd, const float *dy, float *dx,
                                            float *dgamma, float *dbeta) {
    bn_backward(N, C, HW, x, gamma, save_mean, save_rstd, NULL, NULL, 0.0f, dy, dx, dgamma, dbeta);
}

extern "C" void cu_batchnorm_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                                           const float *running_mean, const float *running_var, float eps,
                                           const float *dy, float *dx, float *dgamma, float *dbeta) {
    bn_backward(N, C, HW, x, gamma, NULL, NULL, running_mean, running_var, eps, dy, dx, dgamma, dbeta);
}
