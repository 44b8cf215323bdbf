// embedding.cu: table lookup and its scatter-add backward (src/ops/embedding.c).
//   y[n, :] = table[ids[n], :]                 ids [N], table [V, D], y [N, D]
//   dtable[ids[n], :] += dy[n, :]  for ids[n] != padding_idx
// The backward uses atomicAdd: rows with the same id add in an unspecified order, so the
// result can differ from the CPU (which sums in n order) by float rounding, and from run to
// run. ids must lie in [0, V) (checked on the host by the model).
#include "cuda/gpu_internal.h"

#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void k_emb_fwd(size_t total, int D, const int32_t *ids, const float *table, float *y) {
    GRID_STRIDE(i, total) y[i] = table[(size_t)ids[i / D] * D + i % D];
}

__global__ void k_emb_bwd(size_t total, int D, const int32_t *ids, int padding_idx, const float *dy, float *dtable) {
    GRID_STRIDE(i, total) {
        int id = ids[i / D];
        if (id != padding_idx) atomicAdd(&dtable[(size_t)id * D + i % D], dy[i]);
    }
}

extern "C" void cu_embedding_forward(const Backend *be, int N, int V, int D, const int32_t *ids, const float *table,
                                     float *y) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)N * D;
    if (!total || gpu_failed(g)) return;
    GPU_LAUNCH(k_emb_fwd, gpu_blocks(total), GPU_THREADS, 0, gpu_stream(g), total, D, ids, table, y);
    KERNEL_CHECK(g);
}

extern "C" void cu_embedding_backward(const Backend *be, int N, int V, int D, const int32_t *ids, int padding_idx,
                                      const float *dy, float *dtable) {
    GpuContext *g = (GpuContext *)be->ctx;
    size_t total = (size_t)N * D;
    if (!dtable || !total || gpu_failed(g)) return;
    GPU_LAUNCH(k_emb_bwd, gpu_blocks(total), GPU_THREADS, 0, gpu_stream(g), total, D, ids, padding_idx, dy, dtable);
    KERNEL_CHECK(g);
}
