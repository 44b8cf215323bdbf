// elementwise.cu: add, multiply, concatenation along the last dim, and two helpers of the
// linear layer (bias rows, column sums), the same math as src/ops/elementwise.c / linear.c.
// fp32; the add entry in a half storage type (its dt) runs act.cu's kernel. Backward
// ACCUMULATES into every non-NULL gradient.
#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// y = a + b ;  da += dy, db += dy
__global__ void k_add_fwd(size_t n, const float *a, const float *b, float *y) { GRID_STRIDE(i, n) y[i] = a[i] + b[i]; }
__global__ void k_add_bwd(size_t n, const float *dy, float *da, float *db) {
    GRID_STRIDE(i, n) {
        if (da) da[i] += dy[i];
        if (db) db[i] += dy[i];
    }
}
// y = a * b ;  da += dy * b, db += dy * a   (a == b with da == db: both terms land, in order)
__global__ void k_mul_fwd(size_t n, const float *a, const float *b, float *y) { GRID_STRIDE(i, n) y[i] = a[i] * b[i]; }
__global__ void k_mul_bwd(size_t n, const float *a, const float *b, const float *dy, float *da, float *db) {
    GRID_STRIDE(i, n) {
        float g = dy[i];
        if (da) da[i] += g * b[i];
        if (db) db[i] += g * a[i];
    }
}
// y[n, 0:Da] = a[n, :], y[n, Da:Da+Db] = b[n, :]   (one thread per element of y)
__global__ void k_concat_fwd(size_t total, int Da, int Db, const float *a, const float *b, float *y) {
    const size_t D = (size_t)Da + Db;
    GRID_STRIDE(i, total) {
        size_t n = i / D, j = i % D;
        y[i] = j < (size_t)Da ? a[n * Da + j] : b[n * Db + (j - Da)];
    }
}
// da[n, :] += dy[n, 0:Da], db[n, :] += dy[n, Da:]
__global__ void k_concat_bwd(size_t total, int Da, int Db, const float *dy, float *da, float *db) {
    const size_t D = (size_t)Da + Db;
    GRID_STRIDE(i, total) {
        size_t n = i / D, j = i % D;
        if (j < (size_t)Da) {
            if (da) da[n * Da + j] += dy[i];
        } else if (db) {
            db[n * Db + (j - Da)] += dy[i];
        }
    }
}
// y[n, d] = row[d]
__global__ void k_fill_rows(size_t total, int D, const float *row, float *y) { GRID_STRIDE(i, total) y[i] = row[i % D]; }

// out[d] += sum_n x[n, d]: a block covers 32 columns with 8 row groups; double sums.
__global__ void k_col_sums(int N, int D, const float *x, float *out) {
    __shared__ double part[8][33];
    const int d = blockIdx.x * 32 + threadIdx.x;
    double s = 0.0;
    if (d < D)
        for (int n = threadIdx.y; n < N; n += 8) s += x[(size_t)n * D + d];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && d < D) {
        double t = 0.0;
        for (int r = 0; r < 8; r++) t += part[r][threadIdx.x];
        out[d] += (float)t;
    }
}

#define LAUNCH(g, kern, n, ...)                                                              \
    do {                                                                                     \
        if (!(n) || gpu_failed(g)) return;                                                   \
        GPU_LAUNCH(kern, gpu_blocks(n), GPU_THREADS, 0, gpu_stream(g), n, __VA_ARGS__);       \
        KERNEL_CHECK(g);                                                                     \
    } while (0)

extern "C" void cu_add_forward(const Backend *be, DType dt, size_t n, const void *a, const void *b, void *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (dt != DT_F32) {
        cu_act_add_forward(g, dt, n, a, b, y);
        return;
    }
    LAUNCH(g, k_add_fwd, n, (const float *)a, (const float *)b, (float *)y);
}
extern "C" void cu_add_backward(const Backend *be, size_t n, const float *dy, float *da, float *db) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (da || db) LAUNCH(g, k_add_bwd, n, dy, da, db);
}
extern "C" void cu_mul_forward(const Backend *be, size_t n, const float *a, const float *b, float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    LAUNCH(g, k_mul_fwd, n, a, b, y);
}
extern "C" void cu_mul_backward(const Backend *be, size_t n, const float *a, const float *b, const float *dy,
                                float *da, float *db) {
    GpuContext *g = (GpuContext *)be->ctx;
    if (da || db) LAUNCH(g, k_mul_bwd, n, a, b, dy, da, db);
}
extern "C" void cu_concat_forward(const Backend *be, int N, int Da, int Db, const float *a, const float *b,
                                  float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)N * ((size_t)Da + Db);
    LAUNCH(g, k_concat_fwd, total, Da, Db, a, b, y);
}
extern "C" void cu_concat_backward(const Backend *be, int N, int Da, int Db, const float *dy, float *da,
                                   float *db) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)N * ((size_t)Da + Db);
    if (da || db) LAUNCH(g, k_concat_bwd, total, Da, Db, dy, da, db);
}
extern "C" void cu_fill_rows(GpuContext *g, int N, int D, const float *row, float *y) {
    size_t total = (size_t)N * D;
    LAUNCH(g, k_fill_rows, total, D, row, y);
}
extern "C" void cu_col_sums_acc(GpuContext *g, int N, int D, const float *x, float *out) {
    if (N <= 0 || D <= 0 || gpu_failed(g)) return;
    GPU_LAUNCH(k_col_sums, (D + 31) / 32, dim3(32, 8), 0, gpu_stream(g), N, D, x, out);
    KERNEL_CHECK(g);
}
