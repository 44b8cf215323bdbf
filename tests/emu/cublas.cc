// cublas.cc: the cuBLAS entries the CUDA backend calls, emulated on the host (tests only).
//
// A handle is a host object holding its stream and math mode. cublasGemmEx and
// cublasGemmStridedBatchedEx validate their arguments when called, as cuBLAS documents
// (status codes below), check that every matrix they read or write lies in device memory
// (emu::check_device: the extent follows from the dimensions and leading dimensions), and
// queue the product on the handle's stream: device memory is read and written only when the
// queued work runs. alpha and beta are read at call time (pointer mode host, the default).
//
// Column-major semantics: C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n, C m x n;
// beta == 0 means C is not read (NaN in C does not propagate), as cuBLAS.
// The product is the project's CPU reference op_gemm (row-major): the column-major
// C = op(A) op(B) is the row-major C^T = op(B)^T op(A)^T, on fp32 copies of the operands.
// Precision: every element of A and B is loaded to fp32 exactly, then rounded as the compute
// type allows the hardware to: FAST_16BF -> bf16, FAST_16F -> fp16, FAST_TF32 -> TF32 (10
// mantissa bits), all round to nearest even; 32F is exact (also the math mode
// CUBLAS_TF32_TENSOR_OP_MATH, which lets cuBLAS use TF32 for 32F products of fp32 data, and
// the deprecated CUBLAS_TENSOR_OP_MATH, documented as the same as FAST_16F). The fp32 result
// alpha * product + beta * C is rounded once to C's type.
#include "emu_internal.h"

#include <cublas_v2.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <unordered_set>
#include <utility>
#include <vector>

extern "C" {
#include "ops/ops.h"
#include "util/half.h"
}

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};

namespace {

std::unordered_set<const cublasContext *> &live_handles() {
    static std::unordered_set<const cublasContext *> s;
    return s;
}

// A handle that was destroyed or never created: undefined behaviour with the real library.
cublasContext *handle_of(cublasHandle_t h, const char *fn) {
    if (!live_handles().count(h)) emu::fatal("%s: handle %p is not a live cuBLAS handle (destroyed or never created)", fn, (void *)h);
    return h;
}

// Rounding of an fp32 value to the operand precision of a compute type.
enum Rounding { ROUND_NONE, ROUND_TF32, ROUND_BF16, ROUND_F16 };

float round_tf32(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7f800000u) == 0x7f800000u) return f; // inf / nan unchanged
    x += 0xfffu + ((x >> 13) & 1u);                  // round to nearest even at bit 13
    x &= ~0x1fffu;
    std::memcpy(&f, &x, 4);
    return f;
}

float round_to(Rounding r, float v) {
    switch (r) {
    case ROUND_TF32: return round_tf32(v);
    case ROUND_BF16: return bf16_to_f32(f32_to_bf16(v));
    case ROUND_F16: return f16_to_f32(f32_to_f16(v));
    default: return v;
    }
}

size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

float load(cudaDataType t, const void *p, size_t i) {
    switch (t) {
    case CUDA_R_16BF: return bf16_to_f32(static_cast<const uint16_t *>(p)[i]);
    case CUDA_R_16F: return f16_to_f32(static_cast<const uint16_t *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

void store(cudaDataType t, void *p, size_t i, float v) {
    switch (t) {
    case CUDA_R_16BF: static_cast<uint16_t *>(p)[i] = f32_to_bf16(v); break;
    case CUDA_R_16F: static_cast<uint16_t *>(p)[i] = f32_to_f16(v); break;
    default: static_cast<float *>(p)[i] = v; break;
    }
}

// The byte intervals a column-major matrix (rows x cols, leading dimension ld) of `batch`
// matrices `stride` elements apart occupies: one interval per column.
typedef std::vector<std::pair<uintptr_t, uintptr_t>> Spans;

void add_spans(Spans &out, const void *p, size_t es, long long rows, long long cols, long long ld, long long stride,
               long long batch) {
    for (long long b = 0; b < batch; b++)
        for (long long j = 0; j < cols; j++) {
            uintptr_t a = (uintptr_t)p + (uintptr_t)((b * stride + j * ld) * (long long)es);
            out.push_back({a, a + (uintptr_t)(rows * (long long)es)});
        }
}

// 1 when an interval of a intersects one of b.
bool spans_meet(Spans a, Spans b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        if (a[i].second <= b[j].first) i++;
        else if (b[j].second <= a[i].first) j++;
        else return true;
    }
    return false;
}

// 1 when two intervals of a intersect (a batch's C written by two products).
bool spans_self_meet(Spans a) {
    std::sort(a.begin(), a.end());
    for (size_t i = 1; i < a.size(); i++)
        if (a[i].first < a[i - 1].second) return true;
    return false;
}

// [lowest byte, one past the highest) of a strided batch of matrices, for check_device.
void extent(const void *p, size_t es, long long rows, long long cols, long long ld, long long stride, long long batch,
            const char **lo, size_t *bytes) {
    long long one = (cols - 1) * ld + rows; // elements of one matrix
    long long first = std::min(0LL, (batch - 1) * stride), last = std::max(0LL, (batch - 1) * stride) + one;
    *lo = static_cast<const char *>(p) + first * (long long)es;
    *bytes = (size_t)(last - first) * es;
}

bool op_ok(cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; }

bool algo_ok(cublasGemmAlgo_t a) {
    int v = (int)a;
    return v == CUBLAS_GEMM_DEFAULT || (v >= CUBLAS_GEMM_ALGO0 && v <= CUBLAS_GEMM_ALGO23) ||
           v == CUBLAS_GEMM_DEFAULT_TENSOR_OP || (v >= CUBLAS_GEMM_ALGO0_TENSOR_OP && v <= CUBLAS_GEMM_ALGO15_TENSOR_OP);
}

bool known_type(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F: case CUDA_C_16F: case CUDA_R_16BF: case CUDA_C_16BF: case CUDA_R_32F: case CUDA_C_32F:
    case CUDA_R_64F: case CUDA_C_64F: case CUDA_R_8I: case CUDA_C_8I: case CUDA_R_8U: case CUDA_C_8U:
    case CUDA_R_32I: case CUDA_C_32I: case CUDA_R_8F_E4M3: case CUDA_R_8F_E5M2:
        return true;
    default: return false;
    }
}

bool known_compute(cublasComputeType_t c) {
    switch (c) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC: case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32: case CUBLAS_COMPUTE_32F_EMULATED_16BFX9: case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC: case CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT: case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC:
        return true;
    default: return false;
    }
}

struct GemmJob {
    bool ta, tb;
    long long m, n, k, lda, ldb, ldc, sa, sb, sc, batch;
    float alpha, beta;
    const void *A, *B;
    void *C;
    cudaDataType at, bt, ct;
    Rounding rnd;
};

void run_gemm(const GemmJob &j) {
    const long long ra = j.ta ? j.k : j.m, ca = j.ta ? j.m : j.k; // stored A: ra x ca
    const long long rb = j.tb ? j.n : j.k, cb = j.tb ? j.k : j.n; // stored B: rb x cb
    std::vector<float> af((size_t)(ra * ca)), bf((size_t)(rb * cb)), cf((size_t)(j.m * j.n));
    for (long long b = 0; b < j.batch; b++) {
        std::fill(cf.begin(), cf.end(), 0.0f);
        if (j.k > 0) {
            const long long oa = b * j.sa, ob = b * j.sb;
            for (long long c = 0; c < ca; c++)
                for (long long r = 0; r < ra; r++)
                    af[(size_t)(c * ra + r)] = round_to(j.rnd, load(j.at, j.A, (size_t)(oa + c * j.lda + r)));
            for (long long c = 0; c < cb; c++)
                for (long long r = 0; r < rb; r++)
                    bf[(size_t)(c * rb + r)] = round_to(j.rnd, load(j.bt, j.B, (size_t)(ob + c * j.ldb + r)));
            // column-major C (m x n) = row-major C^T (n x m) = op(B)^T op(A)^T; a dense
            // column-major X (r x c) is the row-major X^T (c x r), leading dimension r.
            op_gemm(j.tb, j.ta, (int)j.n, (int)j.m, (int)j.k, 1.0f, bf.data(), (int)rb, af.data(), (int)ra, 0.0f,
                    cf.data(), (int)j.m);
        }
        const long long oc = b * j.sc;
        for (long long c = 0; c < j.n; c++)
            for (long long r = 0; r < j.m; r++) {
                const size_t i = (size_t)(oc + c * j.ldc + r);
                float v = j.alpha * cf[(size_t)(c * j.m + r)];
                if (j.beta != 0.0f) v += j.beta * load(j.ct, j.C, i); // beta == 0: C is not read
                store(j.ct, j.C, i, v);
            }
    }
}

cublasStatus_t gemm(const char *fn, cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                    int n, int k, const void *alpha, const void *A, cudaDataType Atype, int lda, long long strideA,
                    const void *B, cudaDataType Btype, int ldb, long long strideB, const void *beta, void *C,
                    cudaDataType Ctype, int ldc, long long strideC, int batch, cublasComputeType_t computeType,
                    cublasGemmAlgo_t algo) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    // cuBLAS: a NULL handle is "library not initialized"
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasContext *h = handle_of(handle, fn);
    // cublasGemmEx / cublasGemmStridedBatchedEx, CUBLAS_STATUS_INVALID_VALUE: m, n or k < 0
    // (batchCount < 0 for the batched call); transa / transb not N, T or C; lda < max(1, m)
    // for op N on A else < max(1, k); ldb < max(1, k) for op N on B else < max(1, n);
    // ldc < max(1, m); alpha or beta NULL; a type, computeType or algo that is not one.
    if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (!op_ok(transa) || !op_ok(transb)) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    if (lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    if (!known_type(Atype) || !known_type(Btype) || !known_type(Ctype) || !known_compute(computeType) || !algo_ok(algo))
        return CUBLAS_STATUS_INVALID_VALUE;

    // CUBLAS_STATUS_NOT_SUPPORTED: a combination of Atype / Btype / Ctype that the compute
    // type's table in the cuBLAS docs does not list. COMPUTE_32F(_PEDANTIC) lists A/B/C =
    // 32F/32F/32F, 16F/16F/16F, 16F/16F/32F, 16BF/16BF/16BF, 16BF/16BF/32F (and 8I/8I/32F
    // and complex ones, which this emulation does not implement: refused the same way);
    // the FAST_16F / FAST_16BF / FAST_TF32 compute types list only 32F/32F/32F (and
    // complex 32F). The 16F, 64F, 32I and EMULATED compute types are not emulated.
    Rounding rnd = ROUND_NONE;
    const bool all32 = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F;
    switch (computeType) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC: {
        const bool half_ab = Atype == Btype && (Atype == CUDA_R_16F || Atype == CUDA_R_16BF) &&
                             (Ctype == Atype || Ctype == CUDA_R_32F);
        if (!all32 && !half_ab) return CUBLAS_STATUS_NOT_SUPPORTED;
        // The handle's math mode may let cuBLAS lower fp32 products (not in PEDANTIC).
        const int mode = (int)h->math & 0xf;
        if (all32 && computeType == CUBLAS_COMPUTE_32F) {
            if (mode == CUBLAS_TF32_TENSOR_OP_MATH) rnd = ROUND_TF32;
            else if (mode == CUBLAS_TENSOR_OP_MATH) rnd = ROUND_F16;
        }
        break;
    }
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
        if (!all32) return CUBLAS_STATUS_NOT_SUPPORTED;
        rnd = computeType == CUBLAS_COMPUTE_32F_FAST_16F    ? ROUND_F16
              : computeType == CUBLAS_COMPUTE_32F_FAST_16BF ? ROUND_BF16
                                                            : ROUND_TF32;
        break;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }

    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS; // nothing is read or written
    if (!emu::stream_ok(h->stream)) emu::fatal("%s: the handle's stream %p is no longer a live stream", fn, (void *)h->stream);

    const long long ra = ta ? k : m, ca = ta ? m : k, rb = tb ? n : k, cb = tb ? k : n;
    const char *lo;
    size_t bytes;
    char what[96];
    if (k > 0) { // A and B are read only when the product has a term
        extent(A, type_size(Atype), ra, ca, lda, strideA, batch, &lo, &bytes);
        std::snprintf(what, sizeof what, "%s(A)", fn);
        emu::check_device(lo, bytes, what);
        extent(B, type_size(Btype), rb, cb, ldb, strideB, batch, &lo, &bytes);
        std::snprintf(what, sizeof what, "%s(B)", fn);
        emu::check_device(lo, bytes, what);
    }
    extent(C, type_size(Ctype), m, n, ldc, strideC, batch, &lo, &bytes);
    std::snprintf(what, sizeof what, "%s(C)", fn);
    emu::check_device(lo, bytes, what);

    // In-place products and batches that write the same element are undefined with the
    // real library (threads race): the emulation would give one tidy answer, so refuse.
    Spans sc;
    add_spans(sc, C, type_size(Ctype), m, n, ldc, strideC, batch);
    if (batch > 1 && spans_self_meet(sc))
        emu::fatal("%s: the %d products write overlapping parts of C (strideC %lld, ldc %d, m %d, n %d)", fn, batch,
                   strideC, ldc, m, n);
    if (k > 0) {
        Spans sa, sb;
        add_spans(sa, A, type_size(Atype), ra, ca, lda, strideA, batch);
        add_spans(sb, B, type_size(Btype), rb, cb, ldb, strideB, batch);
        if (spans_meet(sc, sa) || spans_meet(sc, sb)) emu::fatal("%s: C overlaps A or B (in-place GEMM)", fn);
    }

    GemmJob j;
    j.ta = ta, j.tb = tb;
    j.m = m, j.n = n, j.k = k, j.lda = lda, j.ldb = ldb, j.ldc = ldc;
    j.sa = strideA, j.sb = strideB, j.sc = strideC, j.batch = batch;
    j.alpha = *static_cast<const float *>(alpha); // pointer mode host: read now
    j.beta = *static_cast<const float *>(beta);
    j.A = A, j.B = B, j.C = C;
    j.at = Atype, j.bt = Btype, j.ct = Ctype;
    j.rnd = rnd;
    emu::enqueue(h->stream, fn, [j]() { run_gemm(j); });
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t *handle) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE; // documented: handle == NULL
    cublasContext *h = new cublasContext;
    h->stream = 0;
    h->math = CUBLAS_DEFAULT_MATH;
    live_handles().insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasContext *h = handle_of(handle, "cublasDestroy");
    emu::run_all(); // cublasDestroy synchronizes the device (cuBLAS docs)
    live_handles().erase(h);
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasContext *h = handle_of(handle, "cublasSetStream");
    if (!emu::stream_ok(streamId)) emu::fatal("cublasSetStream: %p is not a live stream", (void *)streamId);
    h->stream = streamId;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasContext *h = handle_of(handle, "cublasSetMathMode");
    // a mode that is not one of cublasMath_t's (optionally with the
    // DISALLOW_REDUCED_PRECISION_REDUCTION flag): CUBLAS_STATUS_INVALID_VALUE
    const int base = (int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_TENSOR_OP_MATH && base != CUBLAS_PEDANTIC_MATH &&
        base != CUBLAS_TF32_TENSOR_OP_MATH && base != CUBLAS_FP32_EMULATED_BF16X9_MATH &&
        base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH)
        return CUBLAS_STATUS_INVALID_VALUE;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
    std::lock_guard<std::recursive_mutex> guard(emu::lock());
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t CUBLASWINAPI cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                         int lda, const void *B, cudaDataType Btype, int ldb, const void *beta, void *C,
                                         cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                         cublasGemmAlgo_t algo) {
    return gemm("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C,
                Ctype, ldc, 0, 1, computeType, algo);
}

cublasStatus_t CUBLASWINAPI cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                                       cublasOperation_t transb, int m, int n, int k,
                                                       const void *alpha, const void *A, cudaDataType Atype, int lda,
                                                       long long int strideA, const void *B, cudaDataType Btype,
                                                       int ldb, long long int strideB, const void *beta, void *C,
                                                       cudaDataType Ctype, int ldc, long long int strideC,
                                                       int batchCount, cublasComputeType_t computeType,
                                                       cublasGemmAlgo_t algo) {
    return gemm("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype,
                ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
}

} // extern "C"
