/* launch.h: the launch configurations of cuda/'s kernels as plain host arithmetic (no CUDA
 * header), so that tests/test_gpu_launch.c checks them on a machine without a GPU: a grid
 * over the CUDA limits (gridDim.y / z <= 65535!), a block_sum over a block that is not a
 * multiple of 32, or a channel the partial sums never visit fails at launch or silently on
 * the device, and only for some shapes (ResNet-50 at batch 256: 3.2 M values per stem
 * channel, 2048 channels in layer4). Includable from C and CUDA. */
#ifndef VQA_CUDA_LAUNCH_H
#define VQA_CUDA_LAUNCH_H

#include <stddef.h>

/* Every kernel launch of cuda/ is GPU_LAUNCH(kernel, grid, block, shared_bytes, stream, args...):
 * the <<<>>> launch under nvcc; in the emulated build (-DVQA_CUDA=EMULATE, tests/emu/) a call
 * that queues the kernel on the emulated stream. GPU_DYNAMIC_SHARED(T, name) declares the
 * block's dynamic shared memory (the launch's shared_bytes) as T name[]. */
#ifdef VQA_CUDA_EMULATE
#define GPU_LAUNCH(kern, grid, block, smem, stream, ...) \
    emu_launch(#kern, __FILE__, __LINE__, kern, grid, block, smem, stream, __VA_ARGS__)
#define GPU_DYNAMIC_SHARED(T, name) T *name = (T *)emu_dynamic_shared()
#else
#define GPU_LAUNCH(kern, grid, block, smem, stream, ...) kern<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define GPU_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

/* CUDA's limits (every architecture since sm_30) */
#define LAUNCH_MAX_GRID_X 2147483647u
#define LAUNCH_MAX_GRID_YZ 65535u
#define LAUNCH_MAX_BLOCK 1024u

/* Threads per block and a grid for n elements of a grid-stride loop, capped (the loop
 * covers the rest; the cap keeps the grid well under gridDim.x's limit). */
#define GPU_THREADS 256
#define GPU_MAX_BLOCKS (65535u * 8u)
static inline unsigned gpu_blocks(size_t n) {
    size_t b = (n + GPU_THREADS - 1) / GPU_THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b > GPU_MAX_BLOCKS ? GPU_MAX_BLOCKS : b);
}

/* The context's device scratch starts this big (gpu_context.c): reductions whose scratch
 * fits never call cudaMalloc. */
#define GPU_SCRATCH_INITIAL ((size_t)1 << 20)

/* ---- batch-norm partial sums (batchnorm_act.cu) ----
 * NHWC: grid (ceil(C / 32), G), block (32, 8): threads x = 32 consecutive channels;
 * NCHW: grid (C, G), block BNA_THREADS (block_sum: a multiple of 32).
 * G = groups per channel: enough blocks to fill the GPU for small C (the stem: 64 channels
 * x 3.2 M values at batch 256), about 1024 blocks in all, at most BNA_MAX_GROUPS. */
#define BNA_THREADS 256
#define BNA_NHWC_BX 32
#define BNA_NHWC_BY 8
#define BNA_MAX_GROUPS 512

static inline int bna_groups(size_t M, int C, int nhwc) {
    size_t per = nhwc ? 256 : 2048; /* values per group thread-row (NHWC) / per block (NCHW) */
    size_t g = (M + per - 1) / per;
    size_t blocks = nhwc ? ((size_t)C + BNA_NHWC_BX - 1) / BNA_NHWC_BX : (size_t)C;
    size_t cap = blocks >= 1024 ? 1 : 1024 / blocks;
    if (g > cap) g = cap;
    if (g > BNA_MAX_GROUPS) g = BNA_MAX_GROUPS;
    return g < 1 ? 1 : (int)g;
}

typedef struct LaunchDims {
    unsigned gx, gy, bx, by;
} LaunchDims;

/* the partial-sum kernel's grid and block for C channels, G groups */
static inline LaunchDims bna_part_dims(int C, int G, int nhwc) {
    LaunchDims d;
    d.gx = nhwc ? (unsigned)((C + BNA_NHWC_BX - 1) / BNA_NHWC_BX) : (unsigned)C;
    d.gy = (unsigned)G;
    d.bx = nhwc ? BNA_NHWC_BX : BNA_THREADS;
    d.by = nhwc ? BNA_NHWC_BY : 1;
    return d;
}

/* the per-channel finishing kernels: one thread per channel */
#define BNA_FIN_THREADS 256
static inline unsigned bna_fin_blocks(int C) { return (unsigned)((C + BNA_FIN_THREADS - 1) / BNA_FIN_THREADS); }

/* scratch of the batch-norm entries: part a, part b [G*C] doubles, mean [C] doubles, coef [4C] floats */
static inline size_t bna_scratch_bytes(int C, int G) {
    return (2 * (size_t)G * (size_t)C + (size_t)C) * sizeof(double) + 4 * (size_t)C * sizeof(float);
}

/* ---- global average pool over NCHW planes (pool_act.cu): one warp per plane ---- */
#define AVGPOOL_WARPS 8
static inline size_t avgpool_nchw_blocks(size_t planes) { return (planes + AVGPOOL_WARPS - 1) / AVGPOOL_WARPS; }

/* 1 when a launch of grid (gx, gy) x block (bx, by) is within CUDA's limits */
static inline int launch_fits(LaunchDims d) {
    return d.gx >= 1 && d.gy >= 1 && d.bx >= 1 && d.by >= 1 && d.gx <= LAUNCH_MAX_GRID_X &&
           d.gy <= LAUNCH_MAX_GRID_YZ && (size_t)d.bx * d.by <= LAUNCH_MAX_BLOCK;
}

#endif
