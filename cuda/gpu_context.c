/* gpu_context.c: a CUDA Backend's context: creation and destruction, the sticky error,
 * device memory entries of the Backend table, scratch, pinned host memory, the batch copy
 * stream and the upload events; and the table itself.
 *
 * backend_cuda_create makes ONE allocation holding a copy of the table (cuda_table below, a
 * constant) and the GpuContext; the copy's ctx points to that context, so each Backend has
 * its own streams, handles, caches and error. Everything runs on one compute stream created
 * non-blocking, so nothing here waits on the legacy default stream; the copy stream carries
 * batch uploads: copy_h2d_async makes the compute stream wait on one event before its next
 * op (gpu_stream()); upload_async leaves the ordering to the caller's events (the Backend
 * event entries: the trainer's prefetch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/gpu.h"
#include "cuda/gpu_internal.h"

/* The Backend and its context in one allocation: be is first, so a Backend pointer is the
 * allocation's address (backend_cuda_destroy). */
typedef struct CudaBackend {
    Backend be;
    GpuContext g;
} CudaBackend;

void gpu_record_error(GpuContext *g, const char *file, int line, const char *call, const char *lib,
                      const char *msg) {
    if (g->has_err) return;
    g->has_err = 1;
    snprintf(g->err, sizeof g->err, "%s:%d: %s failed (%s: %s)", file, line, call, lib, msg ? msg : "unknown error");
}

int gpu_failed(const GpuContext *g) { return g->has_err; }

static int cu_error(const Backend *be, Err *e) {
    GpuContext *g = be->ctx;
    if (!g->has_err) return 0;
    err_set(e, "GPU error: %s", g->err);
    g->has_err = 0;
    g->err[0] = 0;
    return -1;
}

void gpu_options_default(GpuOptions *o) {
    memset(o, 0, sizeof *o);
    o->device = 0;
    o->precision = DT_F32;
    o->allow_tf32 = 0;
    o->conv_ws_limit = (size_t)512 << 20;
}

cudaStream_t gpu_stream(GpuContext *g) {
    if (g->copy_pending) {
        CUDA_CHECK(g, cudaStreamWaitEvent(g->stream, g->copy_done, 0));
        g->copy_pending = 0;
    }
    return g->stream;
}

cublasComputeType_t gpu_gemm_compute(const GpuContext *g) {
    switch (g->opt.precision) {
    case DT_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case DT_F16: return CUBLAS_COMPUTE_32F_FAST_16F;
    default: return g->opt.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    }
}

static void note_peak(GpuContext *g) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
        g->mem_in_use = tot - fr;
        if (g->mem_in_use > g->mem_peak) g->mem_peak = g->mem_in_use;
    }
}

size_t gpu_mem_in_use(const Backend *be) {
    GpuContext *g = be->ctx;
    note_peak(g);
    return g->mem_in_use;
}
size_t gpu_mem_peak(const Backend *be) {
    GpuContext *g = be->ctx;
    note_peak(g);
    return g->mem_peak;
}
void gpu_mem_peak_reset(const Backend *be) {
    GpuContext *g = be->ctx;
    g->mem_peak = 0;
    note_peak(g);
}
uint64_t gpu_malloc_count(const Backend *be) {
    const GpuContext *g = be->ctx;
    return g->n_mallocs;
}

/* ---- Backend memory entries ---- */

static void *cu_alloc(const Backend *be, size_t bytes) {
    GpuContext *g = be->ctx;
    void *p = NULL;
    if (gpu_failed(g)) return NULL;
    /* cudaMalloc is 256-byte aligned (>= the 64 the table promises). An out-of-memory is
     * an answer (NULL), not a sticky error: callers report it with their context. */
    g->n_mallocs++;
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it so that it does not look like a kernel error */
        return NULL;
    }
    note_peak(g);
    return p;
}

static void cu_free(const Backend *be, void *p) {
    GpuContext *g = be->ctx;
    if (p) CUDA_CHECK(g, cudaFree(p));
}

static void cu_memset_zero(const Backend *be, void *p, size_t bytes) {
    GpuContext *g = be->ctx;
    if (bytes && !gpu_failed(g)) CUDA_CHECK(g, cudaMemsetAsync(p, 0, bytes, gpu_stream(g)));
}

/* The source may be reused as soon as this returns (the CPU backend's contract), so the
 * copy completes before returning. Batches use copy_h2d_async instead. */
static void cu_copy_h2d(const Backend *be, void *dst, const void *src, size_t bytes) {
    GpuContext *g = be->ctx;
    if (!bytes || gpu_failed(g)) return;
    if (CUDA_CHECK(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, gpu_stream(g)))) return;
    CUDA_CHECK(g, cudaStreamSynchronize(g->stream));
}

static void cu_copy_d2h(const Backend *be, void *dst, const void *src, size_t bytes) {
    GpuContext *g = be->ctx;
    if (!bytes || gpu_failed(g)) return;
    if (CUDA_CHECK(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, gpu_stream(g)))) return;
    CUDA_CHECK(g, cudaStreamSynchronize(g->stream));
}

static void cu_copy_d2d(const Backend *be, void *dst, const void *src, size_t bytes) {
    GpuContext *g = be->ctx;
    if (!bytes || dst == src || gpu_failed(g)) return;
    CUDA_CHECK(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, gpu_stream(g)));
}

/* Also waits for batch uploads no op has waited for yet (gpu_stream() queues the wait): the
 * Backend contract lets the caller reuse an upload's source once this returns (the trainer
 * releases the loader slot after synchronize when the forward failed before its first op). */
static void cu_synchronize(const Backend *be) {
    GpuContext *g = be->ctx;
    CUDA_CHECK(g, cudaStreamSynchronize(gpu_stream(g)));
}

void *gpu_scratch(GpuContext *g, size_t bytes) {
    if (bytes <= g->scratch_bytes) return g->scratch;
    size_t n = g->scratch_bytes ? g->scratch_bytes : GPU_SCRATCH_INITIAL;
    while (n < bytes) n *= 2;
    if (g->scratch) {
        CUDA_CHECK(g, cudaStreamSynchronize(g->stream)); /* in-flight ops may still read it */
        CUDA_CHECK(g, cudaFree(g->scratch));
    }
    g->scratch = NULL;
    g->scratch_bytes = 0;
    g->n_mallocs++;
    if (CUDA_CHECK(g, cudaMalloc(&g->scratch, n))) return NULL;
    g->scratch_bytes = n;
    note_peak(g);
    return g->scratch;
}

/* Page-locked memory belongs to no Backend: a failure to free it has no sticky error to go
 * to, and is cleared so that it does not look like a later kernel's error. */
void *gpu_host_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 64, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

void gpu_host_free(void *p) {
    if (p && cudaFreeHost(p) != cudaSuccess) (void)cudaGetLastError();
}

/* Loader batch slots. A 64-byte header in front of the block records how it was obtained,
 * so gpu_pinned_free needs no lookup table (and no global state) to release it. */
#define PIN_HDR 64
void *gpu_pinned_alloc(size_t bytes) {
    unsigned char *p = NULL;
    int locked = 1;
    /* portable: valid for every CUDA context of the process (not only the current one) */
    if (cudaHostAlloc((void **)&p, bytes + PIN_HDR, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no GPU: plain memory, not an error */
        locked = 0;
        if (posix_memalign((void **)&p, 64, bytes + PIN_HDR) != 0) return NULL;
    }
    memcpy(p, &locked, sizeof locked);
    return p + PIN_HDR;
}

int gpu_pinned_is_locked(const void *p) {
    int locked = 0;
    if (p) memcpy(&locked, (const unsigned char *)p - PIN_HDR, sizeof locked);
    return locked;
}

void gpu_pinned_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - PIN_HDR;
    if (gpu_pinned_is_locked(p))
        gpu_host_free(base);
    else
        free(base);
}

void *gpu_compute_stream(const Backend *be) {
    const GpuContext *g = be->ctx;
    return (void *)g->stream;
}

/* The destination is usually step-arena memory that the previous micro-batch's backward,
 * still queued on the compute stream, may be reading (arena_reset hands the same addresses
 * out again: the stem convolution's weight gradient reads the old images). So the copy
 * first waits for the compute work queued so far; it still overlaps the host's work. */
static void cu_copy_h2d_async(const Backend *be, void *dst, const void *src, size_t bytes) {
    GpuContext *g = be->ctx;
    if (!bytes || gpu_failed(g)) return;
    if (CUDA_CHECK(g, cudaEventRecord(g->compute_mark, g->stream)) ||
        CUDA_CHECK(g, cudaStreamWaitEvent(g->copy_stream, g->compute_mark, 0)))
        return;
    if (CUDA_CHECK(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->copy_stream))) return;
    if (CUDA_CHECK(g, cudaEventRecord(g->copy_done, g->copy_stream))) return;
    g->copy_pending = 1;
}

/* ---- explicit upload ordering (Backend event entries; the trainer's batch prefetch) ----
 * The trainer double-buffers batches: the next batch's upload runs on the copy stream while
 * the compute stream works on the current one. Each buffer has its own events, so the
 * compute stream waits only for ITS batch's copy (the single copy_done event above would
 * make it wait for the prefetch too), and the copy stream waits before overwriting a
 * buffer that the compute stream may still read. */

static void *cu_event_create(const Backend *be) {
    GpuContext *g = be->ctx;
    cudaEvent_t ev = NULL;
    if (gpu_failed(g) || CUDA_CHECK(g, cudaEventCreateWithFlags(&ev, cudaEventDisableTiming))) return NULL;
    return (void *)ev;
}

static void cu_event_destroy(const Backend *be, void *ev) {
    GpuContext *g = be->ctx;
    if (ev) CUDA_CHECK(g, cudaEventDestroy((cudaEvent_t)ev));
}

static cudaStream_t queue_stream(GpuContext *g, BeQueue q) { return q == BE_COPY ? g->copy_stream : gpu_stream(g); }

static void cu_event_record(const Backend *be, void *ev, BeQueue q) {
    GpuContext *g = be->ctx;
    if (ev && !gpu_failed(g)) CUDA_CHECK(g, cudaEventRecord((cudaEvent_t)ev, queue_stream(g, q)));
}

static void cu_event_wait(const Backend *be, void *ev, BeQueue q) {
    GpuContext *g = be->ctx;
    if (!ev || gpu_failed(g)) return;
    if (q == BE_HOST)
        CUDA_CHECK(g, cudaEventSynchronize((cudaEvent_t)ev));
    else
        CUDA_CHECK(g, cudaStreamWaitEvent(queue_stream(g, q), (cudaEvent_t)ev, 0));
}

/* No copy_pending: the caller orders the compute stream with its own event. */
static void cu_upload_async(const Backend *be, void *dst, const void *src, size_t bytes) {
    GpuContext *g = be->ctx;
    if (!bytes || gpu_failed(g)) return;
    CUDA_CHECK(g, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->copy_stream));
}

void gpu_copy_wait(const Backend *be) {
    GpuContext *g = be->ctx;
    CUDA_CHECK(g, cudaStreamSynchronize(g->copy_stream));
}

void gpu_describe(const Backend *be, char *buf, size_t n) {
    struct cudaDeviceProp p;
    const GpuContext *g = be ? be->ctx : NULL;
    if (!g || cudaGetDeviceProperties(&p, g->opt.device) != cudaSuccess) {
        snprintf(buf, n, "no GPU");
        return;
    }
    snprintf(buf, n, "%s, %.1f GiB, sm_%d%d, %d SMs", p.name, (double)p.totalGlobalMem / (1 << 30), p.major,
             p.minor, p.multiProcessorCount);
}

/* Host threads: the loader-side work and CPU fallbacks (the CPU ops' thread count). */
static void cu_set_threads(const Backend *be, int n) {
    (void)be;
    op_set_threads(n);
}
static int cu_get_threads(const Backend *be) {
    (void)be;
    return op_get_threads();
}

/* ---- the table (copied into each CudaBackend) ---- */

static const Backend cuda_table = {
    .name = "cuda",
    .device = DEV_CUDA,
    .alloc = cu_alloc,
    .free = cu_free,
    .memset_zero = cu_memset_zero,
    .copy_h2d = cu_copy_h2d,
    .copy_d2h = cu_copy_d2h,
    .copy_d2d = cu_copy_d2d,
    .synchronize = cu_synchronize,
    .copy_h2d_async = cu_copy_h2d_async,
    .error = cu_error,
    .event_create = cu_event_create,
    .event_destroy = cu_event_destroy,
    .event_record = cu_event_record,
    .event_wait = cu_event_wait,
    .upload_async = cu_upload_async,
    .set_threads = cu_set_threads,
    .get_threads = cu_get_threads,
    .gemm = cu_gemm_entry,
    .conv2d_workspace = cu_conv2d_workspace,
    .conv2d_forward = cu_conv2d_forward,
    .conv2d_backward = cu_conv2d_backward,
    .conv_weight_prep = cu_conv_weight_prep,
    .conv_weight_grad_add = cu_conv_weight_grad_add,
    .batchnorm_forward_train = cu_batchnorm_forward_train,
    .batchnorm_backward_train = cu_batchnorm_backward_train,
    .batchnorm_forward_eval = cu_batchnorm_forward_eval,
    .batchnorm_backward_eval = cu_batchnorm_backward_eval,
    .act_import = cu_act_import,
    .act_import_add = cu_act_import_add,
    .act_export = cu_act_export,
    .relu_forward = cu_relu_forward,
    .relu_backward = cu_relu_backward,
    .add_forward = cu_add_forward,
    .add_backward = cu_add_backward,
    .gelu_forward = cu_gelu_forward,
    .gelu_backward = cu_gelu_backward,
    .tanh_forward = cu_tanh_forward,
    .tanh_backward = cu_tanh_backward,
    .mul_forward = cu_mul_forward,
    .mul_backward = cu_mul_backward,
    .concat_forward = cu_concat_forward,
    .concat_backward = cu_concat_backward,
    .maxpool_forward = cu_maxpool_forward,
    .maxpool_backward = cu_maxpool_backward,
    .avgpool_forward = cu_avgpool_forward,
    .avgpool_backward = cu_avgpool_backward,
    .linear_forward = cu_linear_forward,
    .linear_backward = cu_linear_backward,
    .embedding_forward = cu_embedding_forward,
    .embedding_backward = cu_embedding_backward,
    .layernorm_forward = cu_layernorm_forward,
    .layernorm_backward = cu_layernorm_backward,
    .softmax_forward = cu_softmax_forward,
    .softmax_backward = cu_softmax_backward,
    .dropout_forward = cu_dropout_forward,
    .dropout_backward = cu_dropout_backward,
    .attention_workspace = cu_attention_workspace,
    .attention_forward = cu_attention_forward,
    .attention_backward = cu_attention_backward,
    .bce_logits = cu_bce_logits,
    .soft_xent = cu_soft_xent,
    .adamw_update = cu_adamw_update,
    .global_norm = cu_global_norm,
    .has_nonfinite = cu_has_nonfinite,
    .scale = cu_scale,
};

/* ---- creation / destruction ---- */

/* Releases what a (possibly half-done) creation made, then the allocation. */
static void context_release(CudaBackend *cb) {
    GpuContext *g = &cb->g;
    if (g->stream) cudaStreamSynchronize(g->stream);
    if (g->copy_stream) cudaStreamSynchronize(g->copy_stream);
    if (g->cudnn) cudnnDestroy(g->cudnn);
    if (g->cublas) cublasDestroy(g->cublas);
    if (g->scratch) cudaFree(g->scratch);
    if (g->host_scratch) cudaFreeHost(g->host_scratch);
    if (g->copy_done) cudaEventDestroy(g->copy_done);
    if (g->compute_mark) cudaEventDestroy(g->compute_mark);
    if (g->copy_stream) cudaStreamDestroy(g->copy_stream);
    if (g->stream) cudaStreamDestroy(g->stream);
    dc_free(&g->conv_cache);
    free(cb);
}

void backend_cuda_destroy(const Backend *be) {
    if (be) context_release((CudaBackend *)(void *)be);
}

const Backend *backend_cuda_create(const GpuOptions *o, Err *e) {
    GpuOptions def;
    if (!o) {
        gpu_options_default(&def);
        o = &def;
    }
    if (o->precision != DT_F32 && o->precision != DT_BF16 && o->precision != DT_F16) {
        err_set(e, "CUDA backend precision must be F32, BF16 or F16, not %s", dtype_name(o->precision));
        return NULL;
    }
    char why[512];
    int n = 0;
    if (gpu_probe(&n, why, sizeof why) != 0) {
        err_set(e, "%s", why);
        return NULL;
    }
    if (o->device < 0 || o->device >= n) {
        err_set(e, "GPU device %d requested but this machine has %d (0..%d)", o->device, n, n - 1);
        return NULL;
    }
    CudaBackend *cb = calloc(1, sizeof *cb);
    if (!cb) {
        err_set(e, "CUDA backend start-up: out of memory");
        return NULL;
    }
    GpuContext *g = &cb->g;
    cb->be = cuda_table;
    cb->be.precision = o->precision;
    cb->be.ctx = g;
    g->opt = *o;
    if (!g->opt.conv_ws_limit) g->opt.conv_ws_limit = (size_t)512 << 20;
    int ok = !CUDA_CHECK(g, cudaSetDevice(o->device)) &&
             !CUDA_CHECK(g, cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking)) &&
             !CUDA_CHECK(g, cudaStreamCreateWithFlags(&g->copy_stream, cudaStreamNonBlocking)) &&
             !CUDA_CHECK(g, cudaEventCreateWithFlags(&g->copy_done, cudaEventDisableTiming)) &&
             !CUDA_CHECK(g, cudaEventCreateWithFlags(&g->compute_mark, cudaEventDisableTiming)) &&
             !CUDA_CHECK(g, cudaHostAlloc(&g->host_scratch, HOST_SCRATCH, cudaHostAllocDefault)) &&
             !CUBLAS_CHECK(g, cublasCreate(&g->cublas)) &&
             !CUBLAS_CHECK(g, cublasSetStream(g->cublas, g->stream)) &&
             /* TF32 only through the compute type we pass (gpu_gemm_compute) */
             !CUBLAS_CHECK(g, cublasSetMathMode(g->cublas, CUBLAS_DEFAULT_MATH)) &&
             !CUDNN_CHECK(g, cudnnCreate(&g->cudnn)) &&
             !CUDNN_CHECK(g, cudnnSetStream(g->cudnn, g->stream));
    if (ok && dc_init(&g->conv_cache, 256) != 0) {
        gpu_record_error(g, __FILE__, __LINE__, "dc_init", "host", "out of memory");
        ok = 0;
    }
    if (!ok || !gpu_scratch(g, GPU_SCRATCH_INITIAL)) {
        Err tmp;
        cu_error(&cb->be, &tmp);
        err_set(e, "CUDA backend start-up on device %d: %s", o->device, tmp.msg);
        context_release(cb);
        return NULL;
    }
    return &cb->be;
}
