// loss.cu: the two training losses over answer logits (src/ops/loss.c), value and gradient.
// logits z, targets t, dlogits [N, A]. One block per row; each row's loss is summed in
// double, the row losses come back to the host and are added there in the CPU's chunk order.
// BCE with logits, sum over classes, mean over the batch:
//   l = max(z, 0) - z t + log1p(exp(-|z|)) ;  dz = (sigmoid(z) - t) / N * grad_scale
// Soft cross-entropy, u = t / sum t (rows with sum t = 0: loss 0, dz 0, still counted in N):
//   loss_n = logsumexp(z) - sum u z ;  dz = (softmax(z) - u) / N * grad_scale
// dlogits is WRITTEN (not accumulated); NULL: value only. Returns the loss (waits for it).
#include <float.h>
#include <math.h>

#include "cuda/gpu_internal.h"
#include "cuda/reduce.cuh"

#define LOSS_THREADS 256
#define LOSS_CHUNKS 64 // as src/ops/loss.c

__global__ void k_bce(int A, const float *logits, const float *targets, float gs, float *dlogits, double *row_loss) {
    const int n = blockIdx.x;
    const float *z = logits + (size_t)n * A, *t = targets + (size_t)n * A;
    double s = 0.0;
    for (int a = threadIdx.x; a < A; a += blockDim.x) {
        const double x = z[a], y = t[a];
        s += (x > 0.0 ? x : 0.0) - x * y + log1p(exp(-fabs(x)));
        if (dlogits) {
            const float e = expf(-fabsf(z[a]));
            const float sig = z[a] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
            dlogits[(size_t)n * A + a] = (sig - t[a]) * gs;
        }
    }
    s = block_sum(s);
    if (threadIdx.x == 0) row_loss[n] = s;
}

__global__ void k_soft_xent(int A, const float *logits, const float *targets, float gs, float *dlogits,
                            double *row_loss) {
    __shared__ float smax[32];
    const int n = blockIdx.x;
    const float *z = logits + (size_t)n * A, *t = targets + (size_t)n * A;
    double ts = 0.0;
    float mx = -FLT_MAX;
    for (int a = threadIdx.x; a < A; a += blockDim.x) {
        ts += t[a];
        mx = fmaxf(mx, z[a]);
    }
    ts = block_sum(ts);
    mx = warp_max(mx);
    if ((threadIdx.x & 31) == 0) smax[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = smax[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) mx = fmaxf(mx, smax[w]);
    if (!(ts > 0.0)) {
        if (dlogits)
            for (int a = threadIdx.x; a < A; a += blockDim.x) dlogits[(size_t)n * A + a] = 0.0f;
        if (threadIdx.x == 0) row_loss[n] = 0.0;
        return;
    }
    double se = 0.0, tz = 0.0;
    for (int a = threadIdx.x; a < A; a += blockDim.x) {
        se += exp((double)z[a] - mx);
        tz += (double)t[a] * z[a];
    }
    se = block_sum(se);
    tz = block_sum(tz);
    if (dlogits) {
        const double inv_se = 1.0 / se, inv_ts = 1.0 / ts;
        for (int a = threadIdx.x; a < A; a += blockDim.x)
            dlogits[(size_t)n * A + a] = (float)((exp((double)z[a] - mx) * inv_se - t[a] * inv_ts) * gs);
    }
    if (threadIdx.x == 0) row_loss[n] = mx + log(se) - tz / ts;
}

// The CPU's summation: LOSS_CHUNKS fixed row chunks, rows in order inside a chunk, chunks in order.
static double chunked_mean(int N, const double *rows) {
    const int per = (N + LOSS_CHUNKS - 1) / LOSS_CHUNKS;
    double total = 0.0;
    for (int c = 0; c < LOSS_CHUNKS; c++) {
        const int n0 = c * per, n1 = n0 + per < N ? n0 + per : N;
        double acc = 0.0;
        for (int n = n0; n < n1; n++) acc += rows[n];
        total += acc;
    }
    return total / N;
}

static double run_loss(GpuContext *g, int kind, int N, int A, const float *logits, const float *targets,
                       float grad_scale, float *dlogits) {
    if (N <= 0 || gpu_failed(g)) return 0.0;
    if ((size_t)N * sizeof(double) > HOST_SCRATCH) {
        gpu_record_error(g, __FILE__, __LINE__, "loss", "host", "batch too large for the loss scratch");
        return NAN;
    }
    double *rows = (double *)gpu_scratch(g, (size_t)N * sizeof(double));
    if (!rows) return NAN;
    cudaStream_t st = gpu_stream(g);
    const float gs = grad_scale / (float)N;
    if (kind == 0) GPU_LAUNCH(k_bce, N, LOSS_THREADS, 0, st, A, logits, targets, gs, dlogits, rows);
    else GPU_LAUNCH(k_soft_xent, N, LOSS_THREADS, 0, st, A, logits, targets, gs, dlogits, rows);
    if (KERNEL_CHECK(g)) return NAN;
    double *host = (double *)g->host_scratch;
    if (CUDA_CHECK(g, cudaMemcpyAsync(host, rows, (size_t)N * sizeof(double), cudaMemcpyDeviceToHost, st)) ||
        CUDA_CHECK(g, cudaStreamSynchronize(st)))
        return NAN;
    return chunked_mean(N, host);
}

extern "C" double cu_bce_logits(const Backend *be, int N, int A, const float *logits, const float *targets,
                                float grad_scale, float *dlogits) {
    return run_loss((GpuContext *)be->ctx, 0, N, A, logits, targets, grad_scale, dlogits);
}

extern "C" double cu_soft_xent(const Backend *be, int N, int A, const float *logits, const float *targets,
                               float grad_scale, float *dlogits) {
    return run_loss((GpuContext *)be->ctx, 1, N, A, logits, targets, grad_scale, dlogits);
}
