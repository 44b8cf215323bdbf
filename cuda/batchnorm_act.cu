// batchnorm_act.cu: the batch-norm 2d entries on activations in d's format (the plain format
// {NCHW, float}, or NHWC and/or bf16 / fp16): one kernel family instantiated per storage
// type. Hand-written (not cuDNN) so the running variance is PyTorch's unbiased one and sums
// are in double; the math of src/ops/batchnorm.c / batchnorm_act.c:
// per channel c over the M = N*HW values
//   mean = sum x / M ; var = sum (x - mean)^2 / M (biased, second pass) ; rstd = 1/sqrt(var + eps)
//   y = round(x a + b), a = gamma rstd, b = beta - mean a
//   running_mean = (1-m) running_mean + m mean ; running_var = (1-m) running_var + m var M/(M-1)
// backward: dbeta += sum dy ; dgamma += rstd sum dy (x - mean)
//   train: dx = round(dx + k (dy - mdy - (x - mean) cx)), k = gamma rstd, mdy = sum dy / M,
//          cx = rstd^2 sum dy (x - mean) / M
//   eval:  dx = round(dx + k dy), mean / rstd from the running statistics (x is not read, so
//          an inf / NaN in x does not reach dx, as on the CPU)
// Sums in double, x and dy loaded to fp32; gamma, beta, statistics and their gradients fp32.
//
// Reductions in two stages, deterministic (fixed order, no atomics), no allocation after the
// first call of a size (the Backend's context scratch, gpu_scratch):
//   1. partial sums per (group g, channel c) into scratch part[g*C + c]:
//      NHWC: a block of 32 x 8 threads covers 32 consecutive channels (threads x: a warp reads
//            one row's 32 channels, coalesced) and rows ty + 8 (g + G k);
//      NCHW: a block per (c, g) reads the channel's values j = g*256 + t + 256 G k (runs of HW
//            contiguous values), block_sum;
//   2. one thread per channel adds its G partials in order and finishes the channel.
// Grids, groups and the scratch size: cuda/launch.h (checked on CPU by tests/test_gpu_launch.c).
#include "cuda/act_types.cuh"
#include "cuda/reduce.cuh"

enum { BN_SUM = 0, BN_SQDEV = 1, BN_DSUMS = 2 };

// Element j of channel c's M values: image n = j / HW, position j % HW.
__device__ __forceinline__ size_t bna_at(int nhwc, int C, int HW, int c, size_t j) {
    return act_at(nhwc, C, HW, j / HW, (size_t)c, j % HW);
}

// One value pair of the reduction for mode: SUM a = x ; SQDEV a = (x - mean)^2 ;
// DSUMS a = dy, b = dy (x - mean).
template <typename T>
__device__ __forceinline__ void bna_term(int mode, const T *x, const T *dy, size_t at, double mean, double *a,
                                         double *b) {
    const double v = act_ld(x[at]);
    if (mode == BN_SUM) {
        *a += v;
    } else if (mode == BN_SQDEV) {
        const double d = v - mean;
        *a += d * d;
    } else {
        const double g = act_ld(dy[at]);
        *a += g;
        *b += g * (v - mean);
    }
}

// mean of channel c for the SQDEV / DSUMS passes: double (forward) or fp32 (saved / running)
__device__ __forceinline__ double bna_mean(const double *md, const float *mf, int c) {
    return md ? md[c] : mf ? (double)mf[c] : 0.0;
}

// NHWC partials: grid (ceil(C / 32), G), block (32, 8) = (BNA_NHWC_BX, BNA_NHWC_BY)
template <typename T>
__global__ void k_bna_part_nhwc(int mode, size_t M, int C, const T *x, const T *dy, const double *md,
                                const float *mf, double *pa, double *pb) {
    __shared__ double sa[BNA_NHWC_BY][BNA_NHWC_BX + 1], sb[BNA_NHWC_BY][BNA_NHWC_BX + 1];
    const int c = blockIdx.x * BNA_NHWC_BX + threadIdx.x, g = blockIdx.y, G = gridDim.y;
    double a = 0.0, b = 0.0;
    if (c < C) {
        const double mean = bna_mean(md, mf, c);
        for (size_t m = threadIdx.y + BNA_NHWC_BY * (size_t)g; m < M; m += BNA_NHWC_BY * (size_t)G)
            bna_term(mode, x, dy, m * C + c, mean, &a, &b);
    }
    sa[threadIdx.y][threadIdx.x] = a, sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double ta = 0.0, tb = 0.0;
        for (int r = 0; r < BNA_NHWC_BY; r++) ta += sa[r][threadIdx.x], tb += sb[r][threadIdx.x];
        pa[(size_t)g * C + c] = ta;
        if (pb) pb[(size_t)g * C + c] = tb;
    }
}

// NCHW partials: grid (C, G), block BNA_THREADS
template <typename T>
__global__ void k_bna_part_nchw(int mode, size_t M, int C, int HW, const T *x, const T *dy, const double *md,
                                const float *mf, double *pa, double *pb) {
    const int c = blockIdx.x, g = blockIdx.y, G = gridDim.y;
    const double mean = bna_mean(md, mf, c);
    double a = 0.0, b = 0.0;
    for (size_t j = threadIdx.x + (size_t)g * blockDim.x; j < M; j += (size_t)G * blockDim.x)
        bna_term(mode, x, dy, bna_at(0, C, HW, c, j), mean, &a, &b);
    a = block_sum(a);
    b = block_sum(b);
    if (threadIdx.x == 0) {
        pa[(size_t)g * C + c] = a;
        if (pb) pb[(size_t)g * C + c] = b;
    }
}

// sum of channel c's G partials, in group order
__device__ __forceinline__ double bna_total(const double *p, int G, int C, int c) {
    double s = 0.0;
    for (int g = 0; g < G; g++) s += p[(size_t)g * C + c];
    return s;
}

// md[c] = sum x / M
__global__ void k_bna_fin_mean(int C, int G, double M, const double *pa, double *md) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < C) md[c] = bna_total(pa, G, C, c) / M;
}

// var = sum (x - mean)^2 / M ; coef[c] = a, coef[C + c] = b ; saved and running statistics
__global__ void k_bna_fin_stats(int C, int G, double M, const double *pa, const double *md, const float *gamma,
                                const float *beta, float momentum, float eps, float *running_mean,
                                float *running_var, float *save_mean, float *save_rstd, float *coef) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const double mu = md[c], var = bna_total(pa, G, C, c) / M;
    const double rstd = 1.0 / sqrt(var + eps);
    const double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    coef[c] = (float)(g * rstd);
    coef[C + c] = (float)(bt - mu * g * rstd);
    if (save_mean) save_mean[c] = (float)mu;
    if (save_rstd) save_rstd[c] = (float)rstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
    if (running_var) {
        const double unbiased = M > 1 ? var * M / (M - 1) : var;
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
}

// eval: coef from the running statistics
__global__ void k_bna_eval_coef(int C, const float *gamma, const float *beta, const float *rm, const float *rv,
                                float eps, float *coef) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double rstd = 1.0 / sqrt((double)rv[c] + eps);
    double g = gamma ? gamma[c] : 1.0, bt = beta ? beta[c] : 0.0;
    coef[c] = (float)(g * rstd);
    coef[C + c] = (float)(bt - rm[c] * g * rstd);
}

// backward: dbeta, dgamma from the partials (pa = sum dy, pb = sum dy (x - mean), or G = 0:
// not summed); coef[c] = k, coef[C+c] = mdy, coef[2C+c] = cx, coef[3C+c] = mean.
// train: mean/rstd = save_*; eval: running statistics (mdy = cx = 0).
__global__ void k_bna_fin_dsums(int C, int G, double M, const double *pa, const double *pb, const float *gamma,
                                const float *save_mean, const float *save_rstd, const float *rm, const float *rv,
                                float eps, float *dgamma, float *dbeta, float *coef) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int train = save_mean != nullptr;
    const float mean = train ? save_mean[c] : rm[c];
    const double rstd = train ? (double)save_rstd[c] : 1.0 / sqrt((double)rv[c] + eps);
    const double sdy = G ? bna_total(pa, G, C, c) : 0.0;
    const double sdyxhat = G ? bna_total(pb, G, C, c) * rstd : 0.0;
    if (G && dbeta) dbeta[c] += (float)sdy;
    if (G && dgamma) dgamma[c] += (float)sdyxhat;
    const double g = gamma ? gamma[c] : 1.0;
    coef[c] = (float)(g * rstd);
    coef[C + c] = train ? (float)(sdy / M) : 0.0f;
    coef[2 * C + c] = train ? (float)(sdyxhat / M * rstd) : 0.0f;
    coef[3 * C + c] = mean;
}

// y = round(x a[c] + b[c])
template <typename T>
__global__ void k_bna_affine(size_t n, int nhwc, int C, int HW, const T *x, const float *coef, T *y) {
    ACT_GRID_STRIDE(i, n) {
        const int c = nhwc ? (int)(i % C) : (int)((i / HW) % C);
        y[i] = act_st<T>(act_ld(x[i]) * coef[c] + coef[C + c]);
    }
}

// train: dx = round(dx + k (dy - mdy - (x - mean) cx))
template <typename T>
__global__ void k_bna_dx(size_t n, int nhwc, int C, int HW, const T *x, const T *dy, const float *coef, T *dx) {
    ACT_GRID_STRIDE(i, n) {
        const int c = nhwc ? (int)(i % C) : (int)((i / HW) % C);
        const float k = coef[c], mdy = coef[C + c], cx = coef[2 * C + c], mean = coef[3 * C + c];
        dx[i] = act_st<T>(act_ld(dx[i]) + k * (act_ld(dy[i]) - mdy - (act_ld(x[i]) - mean) * cx));
    }
}

// eval: dx = round(dx + k dy) (the statistics are constants; x is not read)
template <typename T>
__global__ void k_bna_dx_eval(size_t n, int nhwc, int C, int HW, const T *dy, const float *coef, T *dx) {
    ACT_GRID_STRIDE(i, n) {
        const int c = nhwc ? (int)(i % C) : (int)((i / HW) % C);
        dx[i] = act_st<T>(act_ld(dx[i]) + coef[c] * act_ld(dy[i]));
    }
}

// Scratch: part a, part b [G*C] doubles, mean [C] doubles, coef [4C] floats (bna_scratch_bytes).
typedef struct BnaScratch {
    double *pa, *pb, *md;
    float *coef;
} BnaScratch;
static int bna_scratch(GpuContext *g, int C, int G, BnaScratch *s) {
    const size_t nc = (size_t)C;
    unsigned char *p = (unsigned char *)gpu_scratch(g, bna_scratch_bytes(C, G));
    if (!p) return -1;
    s->pa = (double *)p;
    s->pb = s->pa + (size_t)G * nc;
    s->md = s->pb + (size_t)G * nc;
    s->coef = (float *)(s->md + nc);
    return 0;
}

template <typename T>
static void bna_partials(int mode, int nhwc, int N, int C, int HW, int G, const T *x, const T *dy, const double *md,
                         const float *mf, const BnaScratch *s, cudaStream_t st) {
    const size_t M = (size_t)N * HW;
    double *pb = mode == BN_DSUMS ? s->pb : nullptr;
    const LaunchDims d = bna_part_dims(C, G, nhwc);
    if (nhwc)
        GPU_LAUNCH(k_bna_part_nhwc<T>, dim3(d.gx, d.gy), dim3(d.bx, d.by), 0, st, mode, M, C, x, dy, md, mf, s->pa, pb);
    else
        GPU_LAUNCH(k_bna_part_nchw<T>, dim3(d.gx, d.gy), d.bx, 0, st, mode, M, C, HW, x, dy, md, mf, s->pa, pb);
}


extern "C" void cu_batchnorm_forward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                           const float *beta, float momentum, float eps, float *running_mean,
                                           float *running_var, void *y, float *save_mean, float *save_rstd) {
    GpuContext *g = (GpuContext *)be->ctx;
    const int N = d->N, C = d->C, HW = d->HW, nhwc = d->f.nhwc;
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed(g)) return;
    const size_t M = (size_t)N * HW, n = M * C;
    const int G = bna_groups(M, C, nhwc);
    BnaScratch s;
    if (bna_scratch(g, C, G, &s)) return;
    cudaStream_t st = gpu_stream(g);
    ACT_DISPATCH(g, d->f.dt, T, {
        const T *xt = (const T *)x;
        bna_partials<T>(BN_SUM, nhwc, N, C, HW, G, xt, nullptr, nullptr, nullptr, &s, st);
        GPU_LAUNCH(k_bna_fin_mean, bna_fin_blocks(C), BNA_FIN_THREADS, 0, st, C, G, (double)M, s.pa, s.md);
        bna_partials<T>(BN_SQDEV, nhwc, N, C, HW, G, xt, nullptr, s.md, nullptr, &s, st);
        GPU_LAUNCH(k_bna_fin_stats, bna_fin_blocks(C), BNA_FIN_THREADS, 0, st, C, G, (double)M, s.pa, s.md, gamma,
                   beta, momentum, eps, running_mean, running_var, save_mean, save_rstd, s.coef);
        GPU_LAUNCH(k_bna_affine<T>, gpu_blocks(n), GPU_THREADS, 0, st, n, nhwc, C, HW, xt, s.coef, (T *)y);
    });
    KERNEL_CHECK(g);
}

extern "C" void cu_batchnorm_forward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                          const float *beta, const float *running_mean, const float *running_var,
                                          float eps, void *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    const int N = d->N, C = d->C, HW = d->HW;
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed(g)) return;
    const size_t n = (size_t)N * HW * C;
    BnaScratch s;
    if (bna_scratch(g, C, 1, &s)) return;
    cudaStream_t st = gpu_stream(g);
    GPU_LAUNCH(k_bna_eval_coef, bna_fin_blocks(C), BNA_FIN_THREADS, 0, st, C, gamma, beta, running_mean, running_var,
               eps, s.coef);
    ACT_DISPATCH(g, d->f.dt, T,
                 GPU_LAUNCH(k_bna_affine<T>, gpu_blocks(n), GPU_THREADS, 0, st, n, d->f.nhwc, C, HW, (const T *)x,
                            s.coef, (T *)y));
    KERNEL_CHECK(g);
}

// save_mean != NULL: train (batch statistics); else eval (running statistics)
static void bna_backward(GpuContext *g, const ActDesc *d, const void *x, const float *gamma, const float *save_mean,
                         const float *save_rstd, const float *rm, const float *rv, float eps, const void *dy, void *dx,
                         float *dgamma, float *dbeta) {
    const int N = d->N, C = d->C, HW = d->HW, nhwc = d->f.nhwc;
    if (N <= 0 || C <= 0 || HW <= 0 || gpu_failed(g) || (!dx && !dgamma && !dbeta)) return;
    const size_t M = (size_t)N * HW, n = M * C;
    const int train = save_mean != NULL;
    // eval needs no sums for dx alone (as the CPU op)
    const int G = (train || dgamma || dbeta) ? bna_groups(M, C, nhwc) : 0;
    BnaScratch s;
    if (bna_scratch(g, C, G ? G : 1, &s)) return;
    cudaStream_t st = gpu_stream(g);
    ACT_DISPATCH(g, d->f.dt, T, {
        const T *xt = (const T *)x, *dyt = (const T *)dy;
        if (G) bna_partials<T>(BN_DSUMS, nhwc, N, C, HW, G, xt, dyt, nullptr, train ? save_mean : rm, &s, st);
        GPU_LAUNCH(k_bna_fin_dsums, bna_fin_blocks(C), BNA_FIN_THREADS, 0, st, C, G, (double)M, s.pa, s.pb, gamma,
                   save_mean, save_rstd, rm, rv, eps, dgamma, dbeta, s.coef);
        if (dx && train)
            GPU_LAUNCH(k_bna_dx<T>, gpu_blocks(n), GPU_THREADS, 0, st, n, nhwc, C, HW, xt, dyt, s.coef, (T *)dx);
        else if (dx)
            GPU_LAUNCH(k_bna_dx_eval<T>, gpu_blocks(n), GPU_THREADS, 0, st, n, nhwc, C, HW, dyt, s.coef, (T *)dx);
    });
    KERNEL_CHECK(g);
}

extern "C" void cu_batchnorm_backward_train(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                            const float *save_mean, const float *save_rstd, const void *dy, void *dx,
                                            float *dgamma, float *dbeta) {
    bna_backward((GpuContext *)be->ctx, d, x, gamma, save_mean, save_rstd, NULL, NULL, 0.0f, dy, dx, dgamma, dbeta);
}

extern "C" void cu_batchnorm_backward_eval(const Backend *be, const ActDesc *d, const void *x, const float *gamma,
                                           const float *running_mean, const float *running_var, float eps,
                                           const void *dy, void *dx, float *dgamma, float *dbeta) {
    bna_backward((GpuContext *)be->ctx, d, x, gamma, NULL, NULL, running_mean, running_var, eps, dy, dx, dgamma,
                 dbeta);
}
