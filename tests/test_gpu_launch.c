/* test_gpu_launch.c: the CUDA kernels' launch configurations (cuda/launch.h, plain host
 * arithmetic) on a machine without a GPU: every grid within CUDA's limits (gridDim.y <=
 * 65535 is the one a per-channel grid can break), every block_sum block a multiple of 32,
 * every channel and every element reached, and the batch-norm scratch within the context's
 * first allocation, for every ResNet-50 shape from batch 1 to 1024 at 224 and 448 px.
 * Expected values are derived here from the limits and the shapes, not by calling the
 * helper under test twice. */
// TEST_LIBS: vqa_core
// TEST_LABELS: unit
#include <stdint.h>

#include "cuda/launch.h"
#include "testlib.h"

/* the BN channel counts and feature-map sides (at 224 px) of torchvision's ResNet-50 */
static const int RN50_C[] = {64, 128, 256, 512, 1024, 2048};
static const int RN50_SIDE_224[] = {112, 56, 28, 14, 7};
static const int BATCHES[] = {1, 2, 64, 256, 1024};
static const int SCALES[] = {1, 2}; /* 224 and 448 px */
#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void launch_fits_knows_the_cuda_limits(void) {
    CHECK(launch_fits((LaunchDims){2147483647u, 65535u, 1024u, 1u}));
    CHECK(launch_fits((LaunchDims){1u, 1u, 32u, 32u}));
    CHECK(!launch_fits((LaunchDims){1u, 65536u, 256u, 1u})); /* gridDim.y */
    CHECK(!launch_fits((LaunchDims){2147483648u, 1u, 256u, 1u}));
    CHECK(!launch_fits((LaunchDims){1u, 1u, 1025u, 1u})); /* threads per block */
    CHECK(!launch_fits((LaunchDims){1u, 1u, 64u, 32u}));
    CHECK(!launch_fits((LaunchDims){0u, 1u, 256u, 1u})); /* an empty grid is a launch error */
}

static void grid_stride_blocks_cover_every_element(void) {
    const size_t ns[] = {1, 255, 256, 257, (size_t)256 * 64 * 112 * 112, (size_t)1 << 33, (size_t)1 << 40};
    CHECK(GPU_THREADS % 32 == 0 && GPU_THREADS <= (int)LAUNCH_MAX_BLOCK);
    for (int i = 0; i < LEN(ns); i++) {
        const size_t n = ns[i];
        const unsigned b = gpu_blocks(n);
        CHECK(launch_fits((LaunchDims){b, 1, GPU_THREADS, 1}));
        const size_t need = (n + GPU_THREADS - 1) / GPU_THREADS; /* one element per thread */
        if (need <= GPU_MAX_BLOCKS) {
            CHECK_MSG(b == need, "n %zu: %u blocks, expected %zu", n, b, need);
        } else { /* capped: the grid-stride loop (size_t index) covers the rest */
            CHECK(b == GPU_MAX_BLOCKS);
        }
    }
    CHECK(gpu_blocks(0) == 1); /* callers return before launching an empty tensor */
}

/* NHWC: blocks of 32 channels x 8 rows; NCHW: one block_sum block per (channel, group) */
static void check_bn_shape(int N, int C, int HW, int nhwc) {
    const size_t M = (size_t)N * HW;
    const int G = bna_groups(M, C, nhwc);
    CHECK_MSG(G >= 1 && G <= BNA_MAX_GROUPS, "C %d M %zu: G %d", C, M, G);
    const LaunchDims d = bna_part_dims(C, G, nhwc);
    CHECK_MSG(launch_fits(d), "C %d M %zu %s: grid (%u, %u) block (%u, %u)", C, M, nhwc ? "NHWC" : "NCHW", d.gx,
              d.gy, d.bx, d.by);
    CHECK(d.gy == (unsigned)G);
    if (nhwc) {
        CHECK(d.bx == 32); /* a warp reads 32 consecutive channels of one row */
        CHECK((size_t)d.gx * d.bx >= (size_t)C && (size_t)(d.gx - 1) * d.bx < (size_t)C);
    } else {
        CHECK(d.gx == (unsigned)C && d.by == 1);
        CHECK(d.bx % 32 == 0); /* block_sum's requirement */
    }
    /* no group without a row / value to read (an all-zero partial is harmless, but a grid
     * larger than the data means G was not capped by M) */
    const size_t per_group = nhwc ? (size_t)BNA_NHWC_BY : (size_t)d.bx;
    CHECK_MSG((size_t)(G - 1) * per_group < M, "C %d M %zu: group %d reads nothing", C, M, G - 1);
    /* the scratch: 2 G C partial doubles + C mean doubles + 4 C coefficient floats, within
     * the context's first allocation (no cudaMalloc in a ResNet-50 step) */
    const size_t want = 2 * (size_t)G * C * 8 + (size_t)C * 8 + 4 * (size_t)C * 4;
    CHECK(bna_scratch_bytes(C, G) == want);
    CHECK_MSG(want <= GPU_SCRATCH_INITIAL, "C %d G %d: %zu bytes of scratch", C, G, want);
    CHECK(launch_fits((LaunchDims){bna_fin_blocks(C), 1, BNA_FIN_THREADS, 1}));
    CHECK((size_t)bna_fin_blocks(C) * BNA_FIN_THREADS >= (size_t)C);
}

static void bn_grids_fit_cuda_limits_for_every_resnet50_shape(void) {
    for (int b = 0; b < LEN(BATCHES); b++)
        for (int s = 0; s < LEN(SCALES); s++)
            for (int c = 0; c < LEN(RN50_C); c++)
                for (int h = 0; h < LEN(RN50_SIDE_224); h++)
                    for (int nhwc = 0; nhwc < 2; nhwc++) {
                        const int side = RN50_SIDE_224[h] * SCALES[s];
                        check_bn_shape(BATCHES[b], RN50_C[c], side * side, nhwc);
                    }
    /* odd shapes: a partial block of channels, one value per channel, a tiny batch */
    const int odd[][3] = {{1, 3, 1}, {4, 37, 23}, {8, 37, 300}, {1, 1, 1}, {3, 40, 50}, {2, 65, 1}};
    for (int i = 0; i < LEN(odd); i++)
        for (int nhwc = 0; nhwc < 2; nhwc++) check_bn_shape(odd[i][0], odd[i][1], odd[i][2], nhwc);
}

/* the stem's BN at batch 256 (64 channels x 3.2 M values) must be spread over many blocks */
static void bn_stem_at_batch_256_fills_the_gpu(void) {
    for (int nhwc = 0; nhwc < 2; nhwc++) {
        const int G = bna_groups((size_t)256 * 112 * 112, 64, nhwc);
        const LaunchDims d = bna_part_dims(64, G, nhwc);
        CHECK_MSG((size_t)d.gx * d.gy >= 132, "%s: %u blocks for the stem", nhwc ? "NHWC" : "NCHW", d.gx * d.gy);
    }
}

static void avgpool_and_pool_grids_fit_for_every_resnet50_shape(void) {
    for (int b = 0; b < LEN(BATCHES); b++)
        for (int s = 0; s < LEN(SCALES); s++) {
            const int N = BATCHES[b];
            const size_t planes = (size_t)N * 2048;
            const size_t blocks = avgpool_nchw_blocks(planes);
            CHECK(blocks * AVGPOOL_WARPS >= planes && (blocks - 1) * AVGPOOL_WARPS < planes);
            CHECK(launch_fits((LaunchDims){(unsigned)blocks, 1, 32 * AVGPOOL_WARPS, 1}));
            CHECK(blocks <= LAUNCH_MAX_GRID_X);
            /* max-pool over the stem's output: argmax is an int32 index into one H*W plane */
            const size_t in_side = 112 * (size_t)SCALES[s], plane = in_side * in_side;
            CHECK(plane < INT32_MAX);
            CHECK(launch_fits((LaunchDims){gpu_blocks((size_t)N * 64 * plane), 1, GPU_THREADS, 1}));
        }
}

int main(void) {
    RUN(launch_fits_knows_the_cuda_limits);
    RUN(grid_stride_blocks_cover_every_element);
    RUN(bn_grids_fit_cuda_limits_for_every_resnet50_shape);
    RUN(bn_stem_at_batch_256_fills_the_gpu);
    RUN(avgpool_and_pool_grids_fit_for_every_resnet50_shape);
    return test_summary();
}
