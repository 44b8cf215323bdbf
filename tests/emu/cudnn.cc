// cudnn.cc: the cuDNN entries the CUDA backend calls, emulated on the host (tests only).
//
// Handles and descriptors are host objects (a handle holds its stream). Every compute call
// validates its arguments when called, as cuDNN documents (the rule is written above each
// refusal; "emulation:" marks what real cuDNN does but this file does not implement, refused
// with NOT_SUPPORTED so that nothing passes silently), checks that every tensor, filter and
// workspace lies in device memory (emu::check_device, extents from the packed 4-d
// descriptors) and queues the computation on the handle's stream, capturing everything by
// value: descriptors may be destroyed right after the call, and device memory is read and
// written only when the queued work runs. alpha / beta (host pointers, float for FLOAT /
// HALF / BFLOAT16 data) are read at call time.
//
//   output = round_to_storage(alpha * result + beta * output)   (beta == 0: output not read)
//
// The result comes from the project's CPU reference (src/ops/conv2d.c, fp32 NCHW,
// ConvShape), the operands converted to fp32 NCHW with op_act_export (a KRSC filter
// [K, R, S, C] is an NHWC activation with N = K, H = R, W = S) and written back with
// op_act_import. Precision: HALF / BFLOAT16 data enter as their exact values and accumulate
// in fp32 (the "pseudo" configurations, compute type FLOAT); FLOAT data with any math type
// but CUDNN_FMA_MATH are rounded to TF32 first (tensor cores), x / w forward, dy / w
// backward data, x / dy backward filter. Bias gradient and AddTensor compute in fp32 (the
// bias sum in double, as the order-free model of the GPU's tree reduction).
//
// The algorithm queries (_v7) return a deterministic ranked list: per algorithm a fixed
// workspace formula (algo_ws), tensor-op entries first for HALF / BFLOAT16, FMA entries first
// for FLOAT when the descriptor asks for CUDNN_FMA_MATH (tensor-op = TF32 entries first
// otherwise), then the algorithms that do not apply with CUDNN_STATUS_NOT_SUPPORTED. Every
// algorithm computes the same (exact) convolution here; the compute calls accept an
// algorithm only where the query reports it as supported, and only with its workspace. The
// workspace's first bytes are overwritten (NaN pattern) when the work runs, as a real
// algorithm uses them.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "emu_internal.h"

#include <cudnn.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_set>
#include <vector>

extern "C" {
#include "ops/ops.h"
#include "util/half.h"
}

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    bool set;
    cudnnTensorFormat_t fmt;
    cudnnDataType_t dt;
    int n, c, h, w;
};
struct cudnnFilterStruct {
    bool set;
    cudnnTensorFormat_t fmt;
    cudnnDataType_t dt;
    int k, c, r, s;
};
struct cudnnConvolutionStruct {
    bool set;
    int pad_h, pad_w, u, v, dil_h, dil_w;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {

// ---- object registry: a destroyed or never-created object is undefined behaviour ----

std::unordered_set<const void *> &live() {
    static std::unordered_set<const void *> s;
    return s;
}

template <class T> T *obj(T *p, const char *kind, const char *fn) {
    if (!live().count(p)) emu::fatal("%s: %s %p is not live (destroyed or never created)", fn, kind, (const void *)p);
    return p;
}

template <class T> cudnnStatus_t create(T **out) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // NULL output pointer: CUDNN_STATUS_BAD_PARAM
    if (!out) return CUDNN_STATUS_BAD_PARAM;
    T *p = new T();
    live().insert(p);
    *out = p;
    return CUDNN_STATUS_SUCCESS;
}

template <class T> cudnnStatus_t destroy(T *p, const char *kind, const char *fn) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!p) return CUDNN_STATUS_SUCCESS; // destroying NULL is a no-op
    obj(p, kind, fn);
    live().erase(p);
    delete p;
    return CUDNN_STATUS_SUCCESS;
}

bool valid_dtype(cudnnDataType_t t) { return (int)t >= CUDNN_DATA_FLOAT && (int)t <= CUDNN_DATA_COMPLEX_FP64; }

// The storage types this emulation computes with.
bool emulated_dtype(cudnnDataType_t t) {
    return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_HALF || t == CUDNN_DATA_BFLOAT16;
}
DType dtype_of(cudnnDataType_t t) {
    return t == CUDNN_DATA_HALF ? DT_F16 : t == CUDNN_DATA_BFLOAT16 ? DT_BF16 : DT_F32;
}
size_t dsize(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT ? 4 : 2; }

size_t tensor_bytes(const cudnnTensorStruct *t) { return (size_t)t->n * t->c * t->h * t->w * dsize(t->dt); }
size_t filter_bytes(const cudnnFilterStruct *f) { return (size_t)f->k * f->c * f->r * f->s * dsize(f->dt); }

float round_tf32(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7f800000u) == 0x7f800000u) return f;
    x += 0xfffu + ((x >> 13) & 1u); // round to nearest even, 10 mantissa bits kept
    x &= ~0x1fffu;
    std::memcpy(&f, &x, 4);
    return f;
}

// ---- layout conversion (src/ops/act.c) ----

// [N, C, HW] in (nhwc, dt) -> fp32 NCHW
std::vector<float> to_nchw(const void *p, cudnnDataType_t dt, bool nhwc, int N, int C, int HW) {
    std::vector<float> out((size_t)N * C * HW);
    ActFmt f = {nhwc ? 1 : 0, dtype_of(dt)};
    op_act_export(&f, N, C, HW, p, out.data());
    return out;
}

// dst = round(alpha * r + beta * dst) in (nhwc, dt); r is fp32 NCHW
void write_back(std::vector<float> &r, float alpha, float beta, void *dst, cudnnDataType_t dt, bool nhwc, int N, int C,
                int HW) {
    ActFmt f = {nhwc ? 1 : 0, dtype_of(dt)};
    if (beta != 0.0f) {
        std::vector<float> old = to_nchw(dst, dt, nhwc, N, C, HW);
        for (size_t i = 0; i < r.size(); i++) r[i] = alpha * r[i] + beta * old[i];
    } else {
        for (float &v : r) v *= alpha;
    }
    op_act_import(&f, N, C, HW, r.data(), dst);
}

// ---- convolution geometry and validation ----

enum Dir { FWD, BWD_DATA, BWD_FILTER };
enum Config { FLOAT_CONFIG, PSEUDO_HALF_CONFIG, PSEUDO_BFLOAT16_CONFIG };

struct Geom {
    int N, C, H, W, K, R, S, P, Q, pad, stride;
    cudnnDataType_t dt;
    bool nhwc;  // x / y layout
    bool wnhwc; // filter layout (KRSC)
    bool flip;  // CUDNN_CONVOLUTION: the filter is mirrored
    cudnnMathType_t math;
    Config cfg;
};

const char *dir_fn(Dir d) {
    return d == FWD ? "cudnnConvolutionForward" : d == BWD_DATA ? "cudnnConvolutionBackwardData"
                                                                 : "cudnnConvolutionBackwardFilter";
}

// x: the image-side tensor (x, or dx), y: the output-side tensor (y, or dy), w: filter (w or dw).
cudnnStatus_t conv_geom(Dir dir, const char *fn, const cudnnTensorStruct *x, const cudnnFilterStruct *w,
                        const cudnnConvolutionStruct *cd, const cudnnTensorStruct *y, Geom *g) {
    // a descriptor that was never set: CUDNN_STATUS_BAD_PARAM
    if (!obj(x, "tensor descriptor", fn)->set || !obj(y, "tensor descriptor", fn)->set ||
        !obj(w, "filter descriptor", fn)->set || !obj(cd, "convolution descriptor", fn)->set)
        return CUDNN_STATUS_BAD_PARAM;
    // x, w and y of non-matching data types: CUDNN_STATUS_BAD_PARAM (all three calls)
    if (x->dt != y->dt || x->dt != w->dt) return CUDNN_STATUS_BAD_PARAM;
    // The supported data-type configurations (x / w / y type, convolution compute type):
    // FLOAT_CONFIG float/float, PSEUDO_HALF_CONFIG half/float, PSEUDO_BFLOAT16_CONFIG
    // bfloat16/float. Anything outside cuDNN's table: CUDNN_STATUS_NOT_SUPPORTED.
    // emulation: TRUE_HALF_CONFIG (half/half, fp16 accumulation), DOUBLE_CONFIG and the
    // int8 configurations are in cuDNN's table but not emulated: NOT_SUPPORTED too.
    if (x->dt == CUDNN_DATA_FLOAT && cd->compute == CUDNN_DATA_FLOAT) g->cfg = FLOAT_CONFIG;
    else if (x->dt == CUDNN_DATA_HALF && cd->compute == CUDNN_DATA_FLOAT) g->cfg = PSEUDO_HALF_CONFIG;
    else if (x->dt == CUDNN_DATA_BFLOAT16 && cd->compute == CUDNN_DATA_FLOAT) g->cfg = PSEUDO_BFLOAT16_CONFIG;
    else return CUDNN_STATUS_NOT_SUPPORTED;
    // input feature maps of x and w differ (group count 1): CUDNN_STATUS_BAD_PARAM;
    // likewise y's feature maps vs w's output count, and x's vs y's batch size
    if (x->c != w->c || y->c != w->k || x->n != y->n) return CUDNN_STATUS_BAD_PARAM;
    // emulation: dilation > 1 and different padding / stride per dimension are valid in
    // cuDNN but not implemented by the CPU reference (ConvShape has one pad, one stride)
    if (cd->dil_h != 1 || cd->dil_w != 1 || cd->pad_h != cd->pad_w || cd->u != cd->v)
        return CUDNN_STATUS_NOT_SUPPORTED;
    // a filter larger than the zero-padded input in some spatial dimension:
    // CUDNN_STATUS_BAD_PARAM (forward); the same geometry is refused in every direction
    if (w->r > x->h + 2 * cd->pad_h || w->s > x->w + 2 * cd->pad_w) return CUDNN_STATUS_BAD_PARAM;
    const int P = (x->h + 2 * cd->pad_h - w->r) / cd->u + 1, Q = (x->w + 2 * cd->pad_w - w->s) / cd->v + 1;
    // y's spatial size differs from cudnnGetConvolution2dForwardOutputDim's: forward
    // CUDNN_STATUS_NOT_SUPPORTED, backward data CUDNN_STATUS_BAD_PARAM (their docs); the
    // emulation uses BAD_PARAM for the backward filter as well
    if (y->h != P || y->w != Q) return dir == FWD ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_BAD_PARAM;
    // emulation: x, y and the filter in different layouts (an NCHW filter with NHWC
    // tensors, ...) are not implemented: every caller here describes all three alike
    if (x->fmt != y->fmt || w->fmt != x->fmt) return CUDNN_STATUS_NOT_SUPPORTED;
    g->N = x->n, g->C = x->c, g->H = x->h, g->W = x->w;
    g->K = w->k, g->R = w->r, g->S = w->s, g->P = P, g->Q = Q;
    g->pad = cd->pad_h, g->stride = cd->u;
    g->dt = x->dt;
    g->nhwc = x->fmt == CUDNN_TENSOR_NHWC;
    g->wnhwc = w->fmt == CUDNN_TENSOR_NHWC;
    g->flip = cd->mode == CUDNN_CONVOLUTION;
    g->math = cd->math;
    (void)fn;
    return CUDNN_STATUS_SUCCESS;
}

int algo_count(Dir d) {
    if (d == FWD) return (int)CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    return d == BWD_DATA ? (int)CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT : (int)CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
}

enum Kind { K_IMPLICIT, K_PRECOMP, K_GEMM, K_DIRECT, K_FFT, K_FFT_TILING, K_WINOGRAD, K_WINOGRAD_NONFUSED, K_ALGO0,
            K_ALGO1, K_ALGO3, K_NONE };

Kind kind_of(Dir d, int a) {
    if (d == FWD) {
        switch (a) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return K_IMPLICIT;
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return K_PRECOMP;
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return K_GEMM;
        case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return K_DIRECT;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return K_FFT;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return K_FFT_TILING;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return K_WINOGRAD;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return K_WINOGRAD_NONFUSED;
        }
    } else if (d == BWD_DATA) {
        switch (a) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return K_ALGO0;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return K_ALGO1;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return K_FFT;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return K_FFT_TILING;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return K_WINOGRAD;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return K_WINOGRAD_NONFUSED;
        }
    } else {
        switch (a) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return K_ALGO0;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return K_ALGO1;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return K_FFT;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return K_ALGO3;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return K_WINOGRAD;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return K_WINOGRAD_NONFUSED;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return K_FFT_TILING;
        }
    }
    return K_NONE;
}

// Whether algorithm a runs this convolution, after the per-algorithm support tables of the
// cuDNN API reference (2-d, dilation 1). Common to them: the FFT algorithms need NCHW x / y,
// stride 1 and a filter taller / wider than the padding; plain FFT also a padded input of at
// most 256 x 256, FFT_TILING a filter of at most 32 x 32; WINOGRAD needs stride 1 and a 3 x 3
// filter, WINOGRAD_NONFUSED stride 1 and 3 x 3 (or 5 x 5 in FLOAT_CONFIG); the FFT and
// Winograd families take FLOAT / PSEUDO_HALF only, PSEUDO_BFLOAT16 runs on the implicit-GEMM
// family (forward IMPLICIT_GEMM / IMPLICIT_PRECOMP_GEMM, backward ALGO_0 / ALGO_1). FWD
// DIRECT and BWD_FILTER WINOGRAD are documented as not implemented.
bool algo_supported(Dir d, int a, const Geom &g) {
    const Kind k = kind_of(d, a);
    const bool bf16 = g.cfg == PSEUDO_BFLOAT16_CONFIG, s1 = g.stride == 1, nchw = !g.nhwc;
    const bool fft_base = !bf16 && nchw && s1 && g.R > g.pad && g.S > g.pad;
    switch (k) {
    case K_IMPLICIT: case K_PRECOMP: case K_ALGO0: case K_ALGO1: return true;
    case K_GEMM: case K_ALGO3: return !bf16;
    case K_DIRECT: return false;
    case K_FFT: return fft_base && g.H + 2 * g.pad <= 256 && g.W + 2 * g.pad <= 256;
    case K_FFT_TILING: return fft_base && g.R <= 32 && g.S <= 32;
    case K_WINOGRAD: return d != BWD_FILTER && !bf16 && s1 && g.R == 3 && g.S == 3;
    case K_WINOGRAD_NONFUSED:
        return !bf16 && s1 && ((g.R == 3 && g.S == 3) || (g.cfg == FLOAT_CONFIG && g.R == 5 && g.S == 5));
    default: return false;
    }
}

// Algorithms with a tensor-core (TENSOR_OP_MATH) variant here: the implicit-GEMM family.
bool algo_tensor_op(Dir d, int a) {
    const Kind k = kind_of(d, a);
    return k == K_IMPLICIT || k == K_PRECOMP || k == K_ALGO1;
}

bool algo_deterministic(Dir d, int a) {
    const Kind k = kind_of(d, a);
    return !(k == K_ALGO0 || k == K_ALGO3); // BWD_DATA_ALGO_0, BWD_FILTER_ALGO_0 / _3 use atomics
}

// Workspace bytes algorithm a needs: fixed formulas (the emulation's own model).
size_t algo_ws(Dir d, int a, const Geom &g) {
    const size_t es = dsize(g.dt), N = g.N, C = g.C, K = g.K, R = g.R, S = g.S, P = g.P, Q = g.Q;
    const size_t Hp = g.H + 2 * g.pad, Wp = g.W + 2 * g.pad;
    const size_t tiles = ((P + 3) / 4) * ((Q + 3) / 4), planes = N * C + K * C + N * K;
    switch (kind_of(d, a)) {
    case K_IMPLICIT: case K_ALGO0: return 0;
    case K_PRECOMP: return C * R * S * 2 * sizeof(int);             // precomputed offsets
    case K_GEMM: return C * R * S * P * Q * es;                      // one image's im2col
    case K_ALGO1: return d == BWD_DATA ? K * C * R * S * es : C * R * S * P * Q * es;
    case K_ALGO3: return K * C * R * S * 4 * 4;                       // split-k partial sums
    case K_FFT: return planes * Hp * (Wp / 2 + 1) * 8;                // complex fp32 spectra
    case K_FFT_TILING: return planes * 32 * 17 * 8;
    case K_WINOGRAD: return K * C * 16 * 4;                           // transformed filter
    case K_WINOGRAD_NONFUSED: return (N * C * tiles + K * C + N * K * tiles) * (R == 5 ? 64 : 36) * 4;
    default: return 0;
    }
}

// The algorithms in the emulated heuristics' order of preference (best first).
std::vector<int> algo_order(Dir d) {
    if (d == FWD)
        return {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
                CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT};
    if (d == BWD_DATA)
        return {CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED,
                CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT};
    return {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD};
}

struct Perf {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t det;
    cudnnMathType_t math;
};

std::vector<Perf> heuristics(Dir d, const Geom &g) {
    std::vector<Perf> out;
    const std::vector<int> order = algo_order(d);
    auto add = [&](cudnnMathType_t m, bool tensor_only) {
        for (int a : order)
            if (algo_supported(d, a, g) && (!tensor_only || algo_tensor_op(d, a)))
                out.push_back({a, CUDNN_STATUS_SUCCESS, algo_ws(d, a, g),
                               algo_deterministic(d, a) ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC, m});
    };
    if (g.cfg != FLOAT_CONFIG) { // half types: tensor cores first, then the same without
        add(CUDNN_TENSOR_OP_MATH, true);
        add(CUDNN_DEFAULT_MATH, false);
    } else if (g.math == CUDNN_FMA_MATH) { // FLOAT, strict: FMA first, TF32 after
        add(CUDNN_FMA_MATH, false);
        add(CUDNN_TENSOR_OP_MATH, true);
    } else { // FLOAT: TF32 tensor cores first, then FMA
        add(CUDNN_TENSOR_OP_MATH, true);
        add(CUDNN_FMA_MATH, false);
    }
    for (int a : order)
        if (!algo_supported(d, a, g))
            out.push_back({a, CUDNN_STATUS_NOT_SUPPORTED, 0, CUDNN_DETERMINISTIC, g.math});
    return out;
}

template <class PerfT, class AlgoT>
cudnnStatus_t query(Dir d, const char *fn, cudnnHandle_t handle, const cudnnTensorStruct *x,
                    const cudnnFilterStruct *w, const cudnnConvolutionStruct *cd, const cudnnTensorStruct *y,
                    int requested, int *returned, PerfT *perf) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // _v7 queries, CUDNN_STATUS_BAD_PARAM: a NULL handle, descriptor, returnedAlgoCount or
    // perfResults; requestedAlgoCount <= 0; descriptors that do not describe one convolution
    if (!handle || !x || !w || !cd || !y || !returned || !perf || requested <= 0) return CUDNN_STATUS_BAD_PARAM;
    obj(handle, "cuDNN handle", fn);
    Geom g;
    cudnnStatus_t st = conv_geom(d, fn, x, w, cd, y, &g);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    std::vector<Perf> list = heuristics(d, g);
    const int n = std::min(requested, (int)list.size());
    for (int i = 0; i < n; i++) {
        PerfT p;
        std::memset(&p, 0, sizeof p);
        p.algo = (AlgoT)list[i].algo;
        p.status = list[i].status;
        p.time = -1.0f; // heuristics do not time
        p.memory = list[i].memory;
        p.determinism = list[i].det;
        p.mathType = list[i].math;
        perf[i] = p;
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

// ---- the convolutions ----

struct ConvJob {
    Dir dir;
    Geom g;
    float alpha, beta;
    const void *a, *b; // fwd: x, w; bwd data: w, dy; bwd filter: x, dy
    void *out;         // y, dx, dw
    void *ws;
    size_t ws_need;
};

void flip_filter(std::vector<float> &w, const Geom &g) {
    const size_t rs = (size_t)g.R * g.S;
    for (size_t kc = 0; kc < (size_t)g.K * g.C; kc++) std::reverse(w.begin() + kc * rs, w.begin() + (kc + 1) * rs);
}

void run_conv(const ConvJob &j) {
    const Geom &g = j.g;
    if (j.ws && j.ws_need) std::memset(j.ws, 0xff, j.ws_need); // the algorithm's scratch
    ConvShape s;
    conv_shape_init(&s, g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride, g.pad);
    const bool tf32 = g.cfg == FLOAT_CONFIG && g.math != CUDNN_FMA_MATH;
    auto tf = [&](std::vector<float> &v) {
        if (tf32)
            for (float &e : v) e = round_tf32(e);
    };
    std::vector<float> tmp(op_conv2d_workspace(&s) + 1);
    const int HW = g.H * g.W, PQ = g.P * g.Q, RS = g.R * g.S;
    if (j.dir == FWD) {
        std::vector<float> x = to_nchw(j.a, g.dt, g.nhwc, g.N, g.C, HW);
        std::vector<float> w = to_nchw(j.b, g.dt, g.wnhwc, g.K, g.C, RS); // KCRS
        tf(x), tf(w);
        if (g.flip) flip_filter(w, g);
        std::vector<float> y((size_t)g.N * g.K * PQ, 0.0f);
        op_conv2d_forward(&s, x.data(), w.data(), nullptr, y.data(), tmp.data());
        write_back(y, j.alpha, j.beta, j.out, g.dt, g.nhwc, g.N, g.K, PQ);
    } else if (j.dir == BWD_DATA) {
        std::vector<float> w = to_nchw(j.a, g.dt, g.wnhwc, g.K, g.C, RS);
        std::vector<float> dy = to_nchw(j.b, g.dt, g.nhwc, g.N, g.K, PQ);
        tf(w), tf(dy);
        if (g.flip) flip_filter(w, g);
        std::vector<float> dx((size_t)g.N * g.C * HW, 0.0f);
        // x is not read when dw is NULL: dx stands in for it
        op_conv2d_backward(&s, dx.data(), w.data(), dy.data(), dx.data(), nullptr, nullptr, tmp.data());
        write_back(dx, j.alpha, j.beta, j.out, g.dt, g.nhwc, g.N, g.C, HW);
    } else {
        std::vector<float> x = to_nchw(j.a, g.dt, g.nhwc, g.N, g.C, HW);
        std::vector<float> dy = to_nchw(j.b, g.dt, g.nhwc, g.N, g.K, PQ);
        tf(x), tf(dy);
        std::vector<float> dw((size_t)g.K * g.C * RS, 0.0f);
        // w is not read when dx is NULL: dw stands in for it
        op_conv2d_backward(&s, x.data(), dw.data(), dy.data(), nullptr, dw.data(), nullptr, tmp.data());
        if (g.flip) flip_filter(dw, g);
        write_back(dw, j.alpha, j.beta, j.out, g.dt, g.wnhwc, g.K, g.C, RS);
    }
}

bool overlap(const void *a, size_t na, const void *b, size_t nb) {
    if (!a || !b || !na || !nb) return false;
    const char *pa = static_cast<const char *>(a), *pb = static_cast<const char *>(b);
    return pa < pb + nb && pb < pa + na;
}

// in0 / in1: the two inputs, out: the output; their descriptors' roles by direction.
cudnnStatus_t conv(Dir d, cudnnHandle_t handle, const void *alpha, const cudnnTensorStruct *x,
                   const cudnnFilterStruct *w, const cudnnConvolutionStruct *cd, const cudnnTensorStruct *y,
                   const void *in0, const void *in1, void *out, int algo, void *ws, size_t ws_bytes,
                   const void *beta) {
    const char *fn = dir_fn(d);
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // CUDNN_STATUS_BAD_PARAM: a NULL handle, descriptor, data pointer, alpha or beta
    if (!handle || !x || !w || !cd || !y || !in0 || !in1 || !out || !alpha || !beta) return CUDNN_STATUS_BAD_PARAM;
    cudnnContext *h = obj(handle, "cuDNN handle", fn);
    Geom g;
    cudnnStatus_t st = conv_geom(d, fn, x, w, cd, y, &g);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    // an algo value that is not one of the enumerants: CUDNN_STATUS_BAD_PARAM
    if (algo < 0 || algo >= algo_count(d)) return CUDNN_STATUS_BAD_PARAM;
    // the chosen algorithm does not support these parameters (the per-algorithm tables):
    // CUDNN_STATUS_NOT_SUPPORTED
    if (!algo_supported(d, algo, g)) return CUDNN_STATUS_NOT_SUPPORTED;
    // Workspace: a size below what the algorithm needs (its query's `memory`, what
    // cudnnGet*WorkspaceSize reports), or a NULL workspace with a nonzero size:
    // CUDNN_STATUS_BAD_PARAM
    const size_t need = algo_ws(d, algo, g);
    if (ws_bytes < need || (ws_bytes > 0 && !ws)) return CUDNN_STATUS_BAD_PARAM;
    if (!emu::stream_ok(h->stream)) emu::fatal("%s: the handle's stream %p is no longer a live stream", fn, (void *)h->stream);

    const size_t xb = tensor_bytes(x), yb = tensor_bytes(y), wb = filter_bytes(w);
    const size_t b0 = d == FWD ? xb : d == BWD_DATA ? wb : xb, b1 = d == FWD ? wb : yb;
    const size_t bo = d == FWD ? yb : d == BWD_DATA ? xb : wb;
    const char *n0 = d == FWD ? "x" : d == BWD_DATA ? "w" : "x", *n1 = d == FWD ? "w" : "dy";
    const char *no = d == FWD ? "y" : d == BWD_DATA ? "dx" : "dw";
    char what[96];
    std::snprintf(what, sizeof what, "%s(%s)", fn, n0);
    emu::check_device(in0, b0, what);
    std::snprintf(what, sizeof what, "%s(%s)", fn, n1);
    emu::check_device(in1, b1, what);
    std::snprintf(what, sizeof what, "%s(%s)", fn, no);
    emu::check_device(out, bo, what);
    if (ws_bytes > 0) {
        std::snprintf(what, sizeof what, "%s(workSpace)", fn);
        emu::check_device(ws, ws_bytes, what);
    }
    // Undefined with the real library (in-place convolution, a workspace over live data):
    // the emulation would compute from copies and hide it, so it stops.
    if (overlap(out, bo, in0, b0) || overlap(out, bo, in1, b1))
        emu::fatal("%s: the output %s overlaps an input", fn, no);
    if (overlap(ws, ws_bytes, in0, b0) || overlap(ws, ws_bytes, in1, b1) || overlap(ws, ws_bytes, out, bo))
        emu::fatal("%s: the workspace overlaps a tensor of the call", fn);

    ConvJob j;
    j.dir = d;
    j.g = g;
    j.alpha = *static_cast<const float *>(alpha);
    j.beta = *static_cast<const float *>(beta);
    j.a = in0, j.b = in1, j.out = out;
    j.ws = ws, j.ws_need = need;
    emu::enqueue(h->stream, fn, [j]() { run_conv(j); });
    return CUDNN_STATUS_SUCCESS;
}

// A tensor descriptor that is set, live, and of an emulated type.
cudnnStatus_t tensor_ok(const cudnnTensorStruct *t, const char *fn) {
    if (!obj(t, "tensor descriptor", fn)->set) return CUDNN_STATUS_BAD_PARAM;
    // emulation: DOUBLE and integer tensors are not implemented
    if (!emulated_dtype(t->dt)) return CUDNN_STATUS_NOT_SUPPORTED;
    return CUDNN_STATUS_SUCCESS;
}

// element (n, c, h, w) of a packed 4-d tensor
size_t index4(const cudnnTensorStruct *t, int n, int c, int h, int w) {
    if (t->fmt == CUDNN_TENSOR_NHWC) return (((size_t)n * t->h + h) * t->w + w) * t->c + c;
    return (((size_t)n * t->c + c) * t->h + h) * t->w + w;
}

float ld(cudnnDataType_t dt, const void *p, size_t i) {
    if (dt == CUDNN_DATA_HALF) return f16_to_f32(static_cast<const uint16_t *>(p)[i]);
    if (dt == CUDNN_DATA_BFLOAT16) return bf16_to_f32(static_cast<const uint16_t *>(p)[i]);
    return static_cast<const float *>(p)[i];
}

void st(cudnnDataType_t dt, void *p, size_t i, float v) {
    if (dt == CUDNN_DATA_HALF) static_cast<uint16_t *>(p)[i] = f32_to_f16(v);
    else if (dt == CUDNN_DATA_BFLOAT16) static_cast<uint16_t *>(p)[i] = f32_to_bf16(v);
    else static_cast<float *>(p)[i] = v;
}

} // namespace

extern "C" {

size_t CUDNNWINAPI cudnnGetVersion(void) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    return CUDNN_VERSION;
}

const char *CUDNNWINAPI cudnnGetErrorString(cudnnStatus_t status) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    switch ((int)status) {
#define S(x) \
    case x: return #x;
        S(CUDNN_STATUS_SUCCESS) S(CUDNN_STATUS_NOT_INITIALIZED) S(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
        S(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH) S(CUDNN_STATUS_DEPRECATED) S(CUDNN_STATUS_LICENSE_ERROR)
        S(CUDNN_STATUS_RUNTIME_IN_PROGRESS) S(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
        S(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED) S(CUDNN_STATUS_BAD_PARAM) S(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
        S(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER) S(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
        S(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND) S(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
        S(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH) S(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
        S(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES) S(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
        S(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH) S(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
        S(CUDNN_STATUS_NOT_SUPPORTED) S(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN) S(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
        S(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE) S(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
        S(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER) S(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
        S(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH) S(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
        S(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE) S(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
        S(CUDNN_STATUS_NOT_SUPPORTED_PADDING) S(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
        S(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API) S(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
        S(CUDNN_STATUS_INTERNAL_ERROR) S(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
        S(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE) S(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
        S(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED) S(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
        S(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED) S(CUDNN_STATUS_EXECUTION_FAILED)
        S(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER) S(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
        S(CUDNN_STATUS_EXECUTION_FAILED_CUDART) S(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
        S(CUDNN_STATUS_INVALID_VALUE)
#undef S
    }
    return "CUDNN_UNKNOWN_STATUS";
}

cudnnStatus_t CUDNNWINAPI cudnnCreate(cudnnHandle_t *handle) {
    cudnnStatus_t st = create(handle);
    if (st == CUDNN_STATUS_SUCCESS) (*handle)->stream = 0;
    return st;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroy(cudnnHandle_t handle) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (handle) {
        obj(handle, "cuDNN handle", "cudnnDestroy");
        emu::run_all(); // cudnnDestroy synchronizes the device (cuDNN docs)
    }
    return destroy(handle, "cuDNN handle", "cudnnDestroy");
}

cudnnStatus_t CUDNNWINAPI cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // a NULL handle: CUDNN_STATUS_BAD_PARAM
    if (!handle) return CUDNN_STATUS_BAD_PARAM;
    cudnnContext *h = obj(handle, "cuDNN handle", "cudnnSetStream");
    if (!emu::stream_ok(streamId)) emu::fatal("cudnnSetStream: %p is not a live stream", (void *)streamId);
    h->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *tensorDesc) {
    return create(tensorDesc);
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
    return destroy(tensorDesc, "tensor descriptor", "cudnnDestroyTensorDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                                     cudnnDataType_t dataType, int n, int c, int h, int w) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    const char *fn = "cudnnSetTensor4dDescriptor";
    if (!tensorDesc) return CUDNN_STATUS_BAD_PARAM;
    obj(tensorDesc, "tensor descriptor", fn);
    // CUDNN_STATUS_BAD_PARAM: a dimension that is not positive (the Nd setter documents
    // "negative or zero"; cuDNN refuses empty tensors), or an invalid format / dataType
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || !valid_dtype(dataType)) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC && format != CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_BAD_PARAM;
    // emulation: NCHW_VECT_C (vectorized int8) is not implemented
    if (format == CUDNN_TENSOR_NCHW_VECT_C) return CUDNN_STATUS_NOT_SUPPORTED;
    // CUDNN_STATUS_NOT_SUPPORTED: more than 2 Giga-elements in the tensor
    if ((long long)n * c * h * w > 2147483647LL) return CUDNN_STATUS_NOT_SUPPORTED;
    *tensorDesc = {true, format, dataType, n, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *filterDesc) {
    return create(filterDesc);
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
    return destroy(filterDesc, "filter descriptor", "cudnnDestroyFilterDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                                     cudnnTensorFormat_t format, int k, int c, int h, int w) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!filterDesc) return CUDNN_STATUS_BAD_PARAM;
    obj(filterDesc, "filter descriptor", "cudnnSetFilter4dDescriptor");
    // CUDNN_STATUS_BAD_PARAM: a dimension that is not positive, an invalid dataType or
    // format. The format says how [K, C, R, S] is laid out: NCHW = KCRS, NHWC = KRSC.
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0 || !valid_dtype(dataType)) return CUDNN_STATUS_BAD_PARAM;
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC && format != CUDNN_TENSOR_NCHW_VECT_C)
        return CUDNN_STATUS_BAD_PARAM;
    if (format == CUDNN_TENSOR_NCHW_VECT_C) return CUDNN_STATUS_NOT_SUPPORTED; // emulation: not implemented
    *filterDesc = {true, format, dataType, k, c, h, w};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *convDesc) {
    cudnnStatus_t st = create(convDesc);
    // a new descriptor's math type is CUDNN_DEFAULT_MATH
    if (st == CUDNN_STATUS_SUCCESS) (*convDesc)->math = CUDNN_DEFAULT_MATH;
    return st;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
    return destroy(convDesc, "convolution descriptor", "cudnnDestroyConvolutionDescriptor");
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w,
                                                          int u, int v, int dilation_h, int dilation_w,
                                                          cudnnConvolutionMode_t mode, cudnnDataType_t computeType) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!convDesc) return CUDNN_STATUS_BAD_PARAM;
    obj(convDesc, "convolution descriptor", "cudnnSetConvolution2dDescriptor");
    // CUDNN_STATUS_BAD_PARAM: a negative padding, a stride or dilation that is not
    // positive, an invalid mode (or compute data type)
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0) return CUDNN_STATUS_BAD_PARAM;
    if ((mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) || !valid_dtype(computeType))
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->set = true;
    convDesc->pad_h = pad_h, convDesc->pad_w = pad_w, convDesc->u = u, convDesc->v = v;
    convDesc->dil_h = dilation_h, convDesc->dil_w = dilation_w;
    convDesc->mode = mode;
    convDesc->compute = computeType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!convDesc) return CUDNN_STATUS_BAD_PARAM;
    obj(convDesc, "convolution descriptor", "cudnnSetConvolutionMathType");
    // CUDNN_STATUS_BAD_PARAM: not a cudnnMathType_t value
    if (mathType != CUDNN_DEFAULT_MATH && mathType != CUDNN_TENSOR_OP_MATH &&
        mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && mathType != CUDNN_FMA_MATH)
        return CUDNN_STATUS_BAD_PARAM;
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnFilterDescriptor_t filterDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t *perfResults) {
    return query<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        FWD, "cudnnGetConvolutionForwardAlgorithm_v7", handle, srcDesc, filterDesc, convDesc, destDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t *perfResults) {
    return query<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        BWD_DATA, "cudnnGetConvolutionBackwardDataAlgorithm_v7", handle, gradDesc, filterDesc, convDesc, diffDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount,
    int *returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t *perfResults) {
    return query<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        BWD_FILTER, "cudnnGetConvolutionBackwardFilterAlgorithm_v7", handle, srcDesc, gradDesc, convDesc, diffDesc,
        requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionForward(cudnnHandle_t handle, const void *alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void *x,
                                                  const cudnnFilterDescriptor_t wDesc, const void *w,
                                                  const cudnnConvolutionDescriptor_t convDesc,
                                                  cudnnConvolutionFwdAlgo_t algo, void *workSpace,
                                                  size_t workSpaceSizeInBytes, const void *beta,
                                                  const cudnnTensorDescriptor_t yDesc, void *y) {
    return conv(FWD, handle, alpha, xDesc, wDesc, convDesc, yDesc, x, w, y, (int)algo, workSpace, workSpaceSizeInBytes,
                beta);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardData(cudnnHandle_t handle, const void *alpha,
                                                       const cudnnFilterDescriptor_t wDesc, const void *w,
                                                       const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                                       const cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdDataAlgo_t algo, void *workSpace,
                                                       size_t workSpaceSizeInBytes, const void *beta,
                                                       const cudnnTensorDescriptor_t dxDesc, void *dx) {
    return conv(BWD_DATA, handle, alpha, dxDesc, wDesc, convDesc, dyDesc, w, dy, dx, (int)algo, workSpace,
                workSpaceSizeInBytes, beta);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void *alpha,
                                                         const cudnnTensorDescriptor_t xDesc, const void *x,
                                                         const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                                         const cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnConvolutionBwdFilterAlgo_t algo, void *workSpace,
                                                         size_t workSpaceSizeInBytes, const void *beta,
                                                         const cudnnFilterDescriptor_t dwDesc, void *dw) {
    return conv(BWD_FILTER, handle, alpha, xDesc, dwDesc, convDesc, dyDesc, x, dy, dw, (int)algo, workSpace,
                workSpaceSizeInBytes, beta);
}

// db = alpha * sum_{n,h,w} dy + beta * db, db [1, K, 1, 1]
cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void *alpha,
                                                       const cudnnTensorDescriptor_t dyDesc, const void *dy,
                                                       const void *beta, const cudnnTensorDescriptor_t dbDesc,
                                                       void *db) {
    const char *fn = "cudnnConvolutionBackwardBias";
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // CUDNN_STATUS_BAD_PARAM: a NULL handle, descriptor, pointer, alpha or beta
    if (!handle || !dyDesc || !dy || !alpha || !beta || !dbDesc || !db) return CUDNN_STATUS_BAD_PARAM;
    cudnnContext *h = obj(handle, "cuDNN handle", fn);
    cudnnStatus_t s = tensor_ok(dyDesc, fn);
    if (s == CUDNN_STATUS_SUCCESS) s = tensor_ok(dbDesc, fn);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    // CUDNN_STATUS_BAD_PARAM: db's n, h or w is not 1, db's feature maps differ from dy's,
    // or the two descriptors' data types differ
    if (dbDesc->n != 1 || dbDesc->h != 1 || dbDesc->w != 1 || dbDesc->c != dyDesc->c || dbDesc->dt != dyDesc->dt)
        return CUDNN_STATUS_BAD_PARAM;
    if (!emu::stream_ok(h->stream)) emu::fatal("%s: the handle's stream %p is no longer a live stream", fn, (void *)h->stream);
    emu::check_device(dy, tensor_bytes(dyDesc), "cudnnConvolutionBackwardBias(dy)");
    emu::check_device(db, tensor_bytes(dbDesc), "cudnnConvolutionBackwardBias(db)");
    if (overlap(db, tensor_bytes(dbDesc), dy, tensor_bytes(dyDesc))) emu::fatal("%s: db overlaps dy", fn);
    const cudnnTensorStruct t = *dyDesc, b = *dbDesc;
    const float a = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    emu::enqueue(h->stream, fn, [t, b, a, be, dy, db]() {
        for (int c = 0; c < t.c; c++) {
            double acc = 0.0;
            for (int n = 0; n < t.n; n++)
                for (int y = 0; y < t.h; y++)
                    for (int x = 0; x < t.w; x++) acc += ld(t.dt, dy, index4(&t, n, c, y, x));
            const size_t i = index4(&b, 0, c, 0, 0);
            float v = a * (float)acc;
            if (be != 0.0f) v += be * ld(b.dt, db, i);
            st(b.dt, db, i, v);
        }
    });
    return CUDNN_STATUS_SUCCESS;
}

// C = alpha * A + beta * C, A broadcast over every dimension where it has size 1
cudnnStatus_t CUDNNWINAPI cudnnAddTensor(cudnnHandle_t handle, const void *alpha, const cudnnTensorDescriptor_t aDesc,
                                         const void *A, const void *beta, const cudnnTensorDescriptor_t cDesc,
                                         void *C) {
    const char *fn = "cudnnAddTensor";
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // CUDNN_STATUS_BAD_PARAM: a NULL handle, descriptor, pointer, alpha or beta
    if (!handle || !alpha || !aDesc || !A || !beta || !cDesc || !C) return CUDNN_STATUS_BAD_PARAM;
    cudnnContext *h = obj(handle, "cuDNN handle", fn);
    cudnnStatus_t s = tensor_ok(aDesc, fn);
    if (s == CUDNN_STATUS_SUCCESS) s = tensor_ok(cDesc, fn);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    // CUDNN_STATUS_BAD_PARAM: a dimension of A that is neither 1 nor C's (A's data cannot
    // be broadcast to C), or A and C of different data types
    const int ad[4] = {aDesc->n, aDesc->c, aDesc->h, aDesc->w}, cdm[4] = {cDesc->n, cDesc->c, cDesc->h, cDesc->w};
    for (int i = 0; i < 4; i++)
        if (ad[i] != 1 && ad[i] != cdm[i]) return CUDNN_STATUS_BAD_PARAM;
    if (aDesc->dt != cDesc->dt) return CUDNN_STATUS_BAD_PARAM;
    if (!emu::stream_ok(h->stream)) emu::fatal("%s: the handle's stream %p is no longer a live stream", fn, (void *)h->stream);
    emu::check_device(A, tensor_bytes(aDesc), "cudnnAddTensor(A)");
    emu::check_device(C, tensor_bytes(cDesc), "cudnnAddTensor(C)");
    if (overlap(C, tensor_bytes(cDesc), A, tensor_bytes(aDesc))) emu::fatal("%s: C overlaps A", fn);
    const cudnnTensorStruct ta = *aDesc, tc = *cDesc;
    const float a = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    emu::enqueue(h->stream, fn, [ta, tc, a, be, A, C]() {
        for (int n = 0; n < tc.n; n++)
            for (int c = 0; c < tc.c; c++)
                for (int y = 0; y < tc.h; y++)
                    for (int x = 0; x < tc.w; x++) {
                        const size_t ia = index4(&ta, ta.n == 1 ? 0 : n, ta.c == 1 ? 0 : c, ta.h == 1 ? 0 : y,
                                                 ta.w == 1 ? 0 : x);
                        const size_t ic = index4(&tc, n, c, y, x);
                        float v = a * ld(ta.dt, A, ia);
                        if (be != 0.0f) v += be * ld(tc.dt, C, ic);
                        st(tc.dt, C, ic, v);
                    }
    });
    return CUDNN_STATUS_SUCCESS;
}

} // extern "C"
