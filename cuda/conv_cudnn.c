/* conv_cudnn.c: 2-D convolution (cross-correlation, as PyTorch) on cuDNN, the conv2d entries:
 * activations in s->f (the plain format NCHW fp32, or NHWC and/or bf16 / fp16).
 *
 *   x [N, C, H, W], w [K, C, R, S], b [K] (optional), y [N, K, P, Q]
 *   y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * x[n, c, p*stride - pad + r, q*stride - pad + s]
 *   dx += conv_transpose(dy, w);  dw += corr(x, dy);  db += sum_{n,p,q} dy   (beta = 1 in cuDNN)
 *
 * Algorithm choice: per (shape, format, direction, math mode) the first algorithm that cuDNN's
 * heuristics (…_v7) rank as working within opt.conv_ws_limit bytes of workspace, kept in a
 * DescCache (src/ops/desc_cache.c, tested on CPU), so the heuristics run once per shape.
 * conv2d_workspace(s) makes the three choices and returns the largest workspace in floats,
 * which the model allocates once (the Backend contract: ops never allocate).
 *
 * Math modes: fp32 tensors in strict fp32 (precision fp32, no TF32) = CUDNN_FMA_MATH and no
 * FFT / Winograd algorithms, so results stay within ~1e-6 of the CPU's im2col + sgemm;
 * otherwise the algorithm's own math type (tensor cores: TF32 on fp32 tensors).
 *
 * Formats: x, y, dx, dy are described with s->f: layout CUDNN_TENSOR_NHWC or NCHW
 * (cudnnSetTensor4dDescriptor takes the dimensions as N, C, H, W either way), data type
 * FLOAT / BFLOAT16 / HALF; the weight w and its gradient dw with cudnnSetFilter4dDescriptor
 * in the same type and format: for the plain format the fp32 master [K, C, R, S] itself,
 * otherwise the prepared weight (NHWC = [K, R, S, C], the layout conv_weight_prep writes).
 * The bias b / db (fp32 [K]) exists only with the plain format. The convolution's compute
 * type is CUDNN_DATA_FLOAT for every storage type (cuDNN's "pseudo" half / bf16
 * configurations: fp32 accumulation, as the CPU reference), with CUDNN_TENSOR_OP_MATH for
 * bf16 / fp16 (tensor cores). alpha / beta are floats for all of these types (cuDNN: float
 * scaling for every non-double type); beta = 1 accumulates dx and dw in their storage type
 * (loaded, added in fp32, rounded).
 * Descriptors are created per call (host-only work of a few microseconds, next to
 * milliseconds of convolution at training sizes). */
#include <stdio.h>
#include <string.h>

#include "cuda/gpu_internal.h"

typedef struct ConvAlgo {
    int algo;
    int math;
    size_t ws; /* bytes */
} ConvAlgo;

typedef struct ConvDescs {
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t c;
} ConvDescs;

static int strict_math(const GpuContext *g) { return g->opt.precision == DT_F32 && !g->opt.allow_tf32; }
/* strict fp32 concerns fp32 tensors; bf16 / fp16 storage always runs on tensor cores */
static int strict_for(const GpuContext *g, const ConvShape *s) { return s->f.dt == DT_F32 && strict_math(g); }
static cudnnMathType_t base_math(const GpuContext *g, const ConvShape *s) {
    if (s->f.dt != DT_F32) return CUDNN_TENSOR_OP_MATH;
    return strict_math(g) ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

static int is_plain(const ConvShape *s) { return !s->f.nhwc && s->f.dt == DT_F32; }

static void descs_free(ConvDescs *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->b) cudnnDestroyTensorDescriptor(d->b);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->c) cudnnDestroyConvolutionDescriptor(d->c);
    memset(d, 0, sizeof *d);
}

/* x, y, w in s->f (the bias, plain format only, is fp32 NCHW [1, K, 1, 1]). */
static int descs_make(GpuContext *g, const ConvShape *s, ConvDescs *d) {
    memset(d, 0, sizeof *d);
    cudnnDataType_t t = CUDNN_DATA_FLOAT;
    if (s->f.dt == DT_BF16) t = CUDNN_DATA_BFLOAT16;
    else if (s->f.dt == DT_F16) t = CUDNN_DATA_HALF;
    else if (s->f.dt != DT_F32) {
        gpu_record_error(g, __FILE__, __LINE__, "descs_make", "vqa",
                         "convolution activation dtype is not F32, BF16 or F16");
        return -1;
    }
    const cudnnTensorFormat_t fm = s->f.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    int ok = !CUDNN_CHECK(g, cudnnCreateTensorDescriptor(&d->x)) &&
             !CUDNN_CHECK(g, cudnnCreateTensorDescriptor(&d->y)) &&
             !CUDNN_CHECK(g, cudnnCreateTensorDescriptor(&d->b)) &&
             !CUDNN_CHECK(g, cudnnCreateFilterDescriptor(&d->w)) &&
             !CUDNN_CHECK(g, cudnnCreateConvolutionDescriptor(&d->c)) &&
             !CUDNN_CHECK(g, cudnnSetTensor4dDescriptor(d->x, fm, t, s->N, s->C, s->H, s->W)) &&
             !CUDNN_CHECK(g, cudnnSetTensor4dDescriptor(d->y, fm, t, s->N, s->K, s->P, s->Q)) &&
             !CUDNN_CHECK(g, cudnnSetTensor4dDescriptor(d->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->K, 1, 1)) &&
             !CUDNN_CHECK(g, cudnnSetFilter4dDescriptor(d->w, t, fm, s->K, s->C, s->R, s->S)) &&
             /* compute type FLOAT for every storage type: fp32 accumulation */
             !CUDNN_CHECK(g, cudnnSetConvolution2dDescriptor(d->c, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                          CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)) &&
             !CUDNN_CHECK(g, cudnnSetConvolutionMathType(d->c, base_math(g, s)));
    if (!ok) descs_free(d);
    return ok ? 0 : -1;
}

/* FFT and Winograd algorithms trade accuracy for speed: not in strict mode. */
static int algo_exact(int dir, int a) {
    if (dir == DC_CONV_FWD)
        return a != CUDNN_CONVOLUTION_FWD_ALGO_FFT && a != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
               a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD && a != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    if (dir == DC_CONV_BWD_DATA)
        return a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT && a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
               a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD && a != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    return a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT && a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING &&
           a != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

#define MAX_PERF 16

/* No output element (an empty batch): nothing to compute, as the CPU op's loops. cuDNN would
 * reject the zero-sized descriptor and the sticky error would end the run. */
static int conv_empty(const ConvShape *s) { return s->N <= 0 || s->K <= 0 || s->P <= 0 || s->Q <= 0; }

/* Picks from the heuristics' ranked list: (algo, status, memory, mathType) per entry.
 * strict fp32: FMA-math entries first, then any exact one (run with FMA math);
 * bf16 / fp16 storage: tensor-op entries first, then any working one;
 * otherwise: the first working entry with its own math type. */
static int pick(const GpuContext *g, const ConvShape *s, int dir, int n, const int *algo, const cudnnStatus_t *st,
                const size_t *mem, const cudnnMathType_t *math, ConvAlgo *out) {
    const int strict = strict_for(g, s), half = s->f.dt != DT_F32;
    const size_t limit = g->opt.conv_ws_limit;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if (st[i] != CUDNN_STATUS_SUCCESS || mem[i] > limit) continue;
            if (strict && (!algo_exact(dir, algo[i]) || (pass == 0 && math[i] != CUDNN_FMA_MATH))) continue;
            if (half && pass == 0 && math[i] != CUDNN_TENSOR_OP_MATH) continue;
            out->algo = algo[i];
            out->math = strict ? (int)CUDNN_FMA_MATH : (int)math[i];
            out->ws = mem[i];
            return 0;
        }
    return -1;
}

static const ConvAlgo *choose(GpuContext *g, const ConvShape *s, const ConvDescs *d, int dir) {
    int32_t key[DC_MAX_KEY];
    int nk = dc_conv_key(s, dir, (int)g->opt.precision * 2 + (g->opt.allow_tf32 ? 1 : 0), key);
    const ConvAlgo *hit = dc_get(&g->conv_cache, key, nk);
    if (hit) return hit;
    int n = 0, algo[MAX_PERF];
    cudnnStatus_t st[MAX_PERF];
    size_t mem[MAX_PERF];
    cudnnMathType_t math[MAX_PERF];
    if (dir == DC_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t p[MAX_PERF];
        if (CUDNN_CHECK(g, cudnnGetConvolutionForwardAlgorithm_v7(g->cudnn, d->x, d->w, d->c, d->y, MAX_PERF, &n, p)))
            return NULL;
        for (int i = 0; i < n; i++) algo[i] = p[i].algo, st[i] = p[i].status, mem[i] = p[i].memory, math[i] = p[i].mathType;
    } else if (dir == DC_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[MAX_PERF];
        if (CUDNN_CHECK(g, cudnnGetConvolutionBackwardDataAlgorithm_v7(g->cudnn, d->w, d->y, d->c, d->x, MAX_PERF, &n,
                                                                       p)))
            return NULL;
        for (int i = 0; i < n; i++) algo[i] = p[i].algo, st[i] = p[i].status, mem[i] = p[i].memory, math[i] = p[i].mathType;
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[MAX_PERF];
        if (CUDNN_CHECK(g, cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->cudnn, d->x, d->y, d->c, d->w, MAX_PERF,
                                                                         &n, p)))
            return NULL;
        for (int i = 0; i < n; i++) algo[i] = p[i].algo, st[i] = p[i].status, mem[i] = p[i].memory, math[i] = p[i].mathType;
    }
    ConvAlgo a;
    if (pick(g, s, dir, n, algo, st, mem, math, &a) != 0) {
        char msg[320];
        snprintf(msg, sizeof msg, "no usable algorithm (direction %d) for conv x [%d, %d, %d, %d] w [%d, %d, %d, %d] "
                 "stride %d pad %d (%s, %s) within %zu bytes of workspace", dir, s->N, s->C, s->H, s->W, s->K, s->C,
                 s->R, s->S, s->stride, s->pad, s->f.nhwc ? "NHWC" : "NCHW", dtype_name(s->f.dt),
                 g->opt.conv_ws_limit);
        gpu_record_error(g, __FILE__, __LINE__, "cudnnGetConvolution*Algorithm_v7", "cuDNN", msg);
        return NULL;
    }
    return dc_put(&g->conv_cache, key, nk, &a, sizeof a);
}

/* ---- the entries ---- */

size_t cu_conv2d_workspace(const Backend *be, const ConvShape *s) {
    GpuContext *g = be->ctx;
    ConvDescs d;
    if (gpu_failed(g) || conv_empty(s) || descs_make(g, s, &d) != 0) return 0;
    size_t ws = 0;
    for (int dir = 0; dir < 3; dir++) {
        const ConvAlgo *a = choose(g, s, &d, dir);
        if (a && a->ws > ws) ws = a->ws;
    }
    descs_free(&d);
    return (ws + sizeof(float) - 1) / sizeof(float);
}

/* A bias with another format than the plain one is a programming error (the table's
 * contract): it becomes the sticky error instead of being dropped. */
static int bias_refused(GpuContext *g, const ConvShape *s, const float *b) {
    if (!b || is_plain(s)) return 0;
    gpu_record_error(g, __FILE__, __LINE__, "conv2d", "vqa", "a convolution bias needs the plain format (NCHW F32)");
    return 1;
}

void cu_conv2d_forward(const Backend *be, const ConvShape *s, const void *x, const void *w, const float *b, void *y,
                       float *ws) {
    GpuContext *g = be->ctx;
    ConvDescs d;
    if (gpu_failed(g) || bias_refused(g, s, b) || conv_empty(s) || descs_make(g, s, &d) != 0) return;
    const float one = 1.0f, zero = 0.0f;
    const ConvAlgo *a = choose(g, s, &d, DC_CONV_FWD);
    gpu_stream(g);
    if (a && !CUDNN_CHECK(g, cudnnSetConvolutionMathType(d.c, (cudnnMathType_t)a->math)) &&
        !CUDNN_CHECK(g, cudnnConvolutionForward(g->cudnn, &one, d.x, x, d.w, w, d.c,
                                                (cudnnConvolutionFwdAlgo_t)a->algo, a->ws ? ws : NULL, a->ws, &zero,
                                                d.y, y)) &&
        b)
        CUDNN_CHECK(g, cudnnAddTensor(g->cudnn, &one, d.b, b, &one, d.y, y));
    descs_free(&d);
}

void cu_conv2d_backward(const Backend *be, const ConvShape *s, const void *x, const void *w, const void *dy,
                        void *dx, void *dw, float *db, float *ws) {
    GpuContext *g = be->ctx;
    ConvDescs d;
    if (gpu_failed(g) || bias_refused(g, s, db) || (!dx && !dw && !db) || conv_empty(s) ||
        descs_make(g, s, &d) != 0)
        return;
    const float one = 1.0f;
    gpu_stream(g);
    if (dx) {
        const ConvAlgo *a = choose(g, s, &d, DC_CONV_BWD_DATA);
        if (a && !CUDNN_CHECK(g, cudnnSetConvolutionMathType(d.c, (cudnnMathType_t)a->math)))
            CUDNN_CHECK(g, cudnnConvolutionBackwardData(g->cudnn, &one, d.w, w, d.y, dy, d.c,
                                                        (cudnnConvolutionBwdDataAlgo_t)a->algo, a->ws ? ws : NULL,
                                                        a->ws, &one, d.x, dx));
    }
    if (dw) {
        const ConvAlgo *a = choose(g, s, &d, DC_CONV_BWD_FILTER);
        if (a && !CUDNN_CHECK(g, cudnnSetConvolutionMathType(d.c, (cudnnMathType_t)a->math)))
            CUDNN_CHECK(g, cudnnConvolutionBackwardFilter(g->cudnn, &one, d.x, x, d.y, dy, d.c,
                                                          (cudnnConvolutionBwdFilterAlgo_t)a->algo,
                                                          a->ws ? ws : NULL, a->ws, &one, d.w, dw));
    }
    if (db) CUDNN_CHECK(g, cudnnConvolutionBackwardBias(g->cudnn, &one, d.y, dy, &one, d.b, db));
    descs_free(&d);
}
