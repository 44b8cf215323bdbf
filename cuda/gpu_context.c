/* gpu_context.c: the CUDA backend's per-process context: start-up and shut-down, the
 * sticky error, device memory entries of the Backend table, scratch, pinned host memory,
 * the batch copy stream and the device arena hooks.
 *
 * The context is the one mutable global of the tree (backend_cuda.h says why). Everything
 * runs on one compute stream created non-blocking, so nothing here waits on the legacy
 * default stream; the copy stream carries batch uploads: copy_h2d_async makes the compute
 * stream wait on one event before its next op (gpu_stream()); upload_async leaves the
 * ordering to the caller's events (the Backend event entries: the trainer's prefetch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/gpu.h"
#include "cuda/gpu_internal.h"

static GpuContext g_ctx;

GpuContext *gpu_ctx(void) { return &g_ctx; }

void gpu_record_error(const char *file, int line, const char *call, const char *lib, const char *msg) {
    if (g_ctx.has_err) return;
    g_ctx.has_err = 1;
    snprintf(g_ctx.err, sizeof g_ctx.err, "%s:%d: %s failed (%s: %s)", file, line, call, lib,
             msg ? msg : "unknown error");
}

int gpu_failed(void) { return g_ctx.has_err; }

int gpu_error(Err *e) {
    if (!g_ctx.has_err) return 0;
    err_set(e, "GPU error: %s", g_ctx.err);
    g_ctx.has_err = 0;
    g_ctx.err[0] = 0;
    return -1;
}

void gpu_options_default(GpuOptions *o) {
    memset(o, 0, sizeof *o);
    o->device = 0;
    o->precision = GPU_PREC_FP32;
    o->allow_tf32 = 0;
    o->conv_ws_limit = (size_t)512 << 20;
}

cudaStream_t gpu_stream(void) {
    if (g_ctx.copy_pending) {
        CUDA_CHECK(cudaStreamWaitEvent(g_ctx.stream, g_ctx.copy_done, 0));
        g_ctx.copy_pending = 0;
    }
    return g_ctx.stream;
}

cublasComputeType_t gpu_gemm_compute(void) {
    switch (g_ctx.opt.precision) {
    case GPU_PREC_BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case GPU_PREC_FP16: return CUBLAS_COMPUTE_32F_FAST_16F;
    default: return g_ctx.opt.allow_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    }
}

static void note_peak(void) {
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) {
        g_ctx.mem_in_use = tot - fr;
        if (g_ctx.mem_in_use > g_ctx.mem_peak) g_ctx.mem_peak = g_ctx.mem_in_use;
    }
}

size_t gpu_mem_in_use(void) {
    note_peak();
    return g_ctx.mem_in_use;
}
size_t gpu_mem_peak(void) {
    note_peak();
    return g_ctx.mem_peak;
}
void gpu_mem_peak_reset(void) {
    g_ctx.mem_peak = 0;
    note_peak();
}
uint64_t gpu_malloc_count(void) { return g_ctx.n_mallocs; }

/* ---- Backend memory entries ---- */

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    if (gpu_failed()) return NULL;
    /* cudaMalloc is 256-byte aligned (>= the 64 the table promises). An out-of-memory is
     * an answer (NULL), not a sticky error: callers report it with their context. */
    g_ctx.n_mallocs++;
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it so that it does not look like a kernel error */
        return NULL;
    }
    note_peak();
    return p;
}

static void cu_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

static void cu_memset_zero(void *p, size_t bytes) {
    if (bytes && !gpu_failed()) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, gpu_stream()));
}

/* The source may be reused as soon as this returns (the CPU backend's contract), so the
 * copy completes before returning. Batches use gpu_copy_h2d_async instead. */
static void cu_copy_h2d(void *dst, const void *src, size_t bytes) {
    if (!bytes || gpu_failed()) return;
    if (CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, gpu_stream()))) return;
    CUDA_CHECK(cudaStreamSynchronize(g_ctx.stream));
}

static void cu_copy_d2h(void *dst, const void *src, size_t bytes) {
    if (!bytes || gpu_failed()) return;
    if (CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, gpu_stream()))) return;
    CUDA_CHECK(cudaStreamSynchronize(g_ctx.stream));
}

static void cu_copy_d2d(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src || gpu_failed()) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, gpu_stream()));
}

/* Also waits for batch uploads no op has waited for yet (gpu_stream() queues the wait): the
 * Backend contract lets the caller reuse an upload's source once this returns (the trainer
 * releases the loader slot after synchronize when the forward failed before its first op). */
static void cu_synchronize(void) {
    if (g_ctx.ready) CUDA_CHECK(cudaStreamSynchronize(gpu_stream()));
}

void *gpu_scratch(size_t bytes) {
    if (bytes <= g_ctx.scratch_bytes) return g_ctx.scratch;
    size_t n = g_ctx.scratch_bytes ? g_ctx.scratch_bytes : GPU_SCRATCH_INITIAL;
    while (n < bytes) n *= 2;
    if (g_ctx.scratch) {
        CUDA_CHECK(cudaStreamSynchronize(g_ctx.stream)); /* in-flight ops may still read it */
        CUDA_CHECK(cudaFree(g_ctx.scratch));
    }
    g_ctx.scratch = NULL;
    g_ctx.scratch_bytes = 0;
    g_ctx.n_mallocs++;
    if (CUDA_CHECK(cudaMalloc(&g_ctx.scratch, n))) return NULL;
    g_ctx.scratch_bytes = n;
    note_peak();
    return g_ctx.scratch;
}

ArenaMem gpu_arena_mem(void) {
    ArenaMem m = {cu_alloc, cu_free, cu_memset_zero};
    return m;
}

void *gpu_host_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 64, cudaHostAllocDefault) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

void gpu_host_free(void *p) {
    if (p) CUDA_CHECK(cudaFreeHost(p));
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
        CUDA_CHECK(cudaFreeHost(base));
    else
        free(base);
}

void *gpu_compute_stream(void) { return g_ctx.ready ? (void *)g_ctx.stream : NULL; }

/* The destination is usually step-arena memory that the previous micro-batch's backward,
 * still queued on the compute stream, may be reading (arena_reset hands the same addresses
 * out again: the stem convolution's weight gradient reads the old images). So the copy
 * first waits for the compute work queued so far; it still overlaps the host's work. */
void gpu_copy_h2d_async(void *dst, const void *src, size_t bytes) {
    if (!bytes || gpu_failed()) return;
    if (CUDA_CHECK(cudaEventRecord(g_ctx.compute_mark, g_ctx.stream)) ||
        CUDA_CHECK(cudaStreamWaitEvent(g_ctx.copy_stream, g_ctx.compute_mark, 0)))
        return;
    if (CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_ctx.copy_stream))) return;
    if (CUDA_CHECK(cudaEventRecord(g_ctx.copy_done, g_ctx.copy_stream))) return;
    g_ctx.copy_pending = 1;
}

/* ---- explicit upload ordering (Backend event entries; the trainer's batch prefetch) ----
 * The trainer double-buffers batches: the next batch's upload runs on the copy stream while
 * the compute stream works on the current one. Each buffer has its own events, so the
 * compute stream waits only for ITS batch's copy (the single copy_done event above would
 * make it wait for the prefetch too), and the copy stream waits before overwriting a
 * buffer that the compute stream may still read. */

static void *cu_event_create(void) {
    cudaEvent_t ev = NULL;
    if (gpu_failed() || CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming))) return NULL;
    return (void *)ev;
}

static void cu_event_destroy(void *ev) {
    if (ev) CUDA_CHECK(cudaEventDestroy((cudaEvent_t)ev));
}

static cudaStream_t queue_stream(BeQueue q) { return q == BE_COPY ? g_ctx.copy_stream : gpu_stream(); }

static void cu_event_record(void *ev, BeQueue q) {
    if (ev && !gpu_failed()) CUDA_CHECK(cudaEventRecord((cudaEvent_t)ev, queue_stream(q)));
}

static void cu_event_wait(void *ev, BeQueue q) {
    if (!ev || gpu_failed()) return;
    if (q == BE_HOST)
        CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)ev));
    else
        CUDA_CHECK(cudaStreamWaitEvent(queue_stream(q), (cudaEvent_t)ev, 0));
}

/* No copy_pending: the caller orders the compute stream with its own event. */
static void cu_upload_async(void *dst, const void *src, size_t bytes) {
    if (!bytes || gpu_failed()) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_ctx.copy_stream));
}

void gpu_copy_wait(void) {
    if (g_ctx.ready) CUDA_CHECK(cudaStreamSynchronize(g_ctx.copy_stream));
}

void gpu_describe(char *buf, size_t n) {
    struct cudaDeviceProp p;
    if (!g_ctx.ready || cudaGetDeviceProperties(&p, g_ctx.opt.device) != cudaSuccess) {
        snprintf(buf, n, "no GPU");
        return;
    }
    snprintf(buf, n, "%s, %.1f GiB, sm_%d%d, %d SMs", p.name, (double)p.totalGlobalMem / (1 << 30), p.major,
             p.minor, p.multiProcessorCount);
}

/* ---- start-up / shut-down ---- */

void backend_cuda_shutdown(void) {
    if (!g_ctx.ready) return;
    cudaStreamSynchronize(g_ctx.stream);
    cudaStreamSynchronize(g_ctx.copy_stream);
    if (g_ctx.cudnn) cudnnDestroy(g_ctx.cudnn);
    if (g_ctx.cublas) cublasDestroy(g_ctx.cublas);
    if (g_ctx.scratch) cudaFree(g_ctx.scratch);
    if (g_ctx.host_scratch) cudaFreeHost(g_ctx.host_scratch);
    if (g_ctx.copy_done) cudaEventDestroy(g_ctx.copy_done);
    if (g_ctx.compute_mark) cudaEventDestroy(g_ctx.compute_mark);
    if (g_ctx.copy_stream) cudaStreamDestroy(g_ctx.copy_stream);
    if (g_ctx.stream) cudaStreamDestroy(g_ctx.stream);
    dc_free(&g_ctx.conv_cache);
    size_t peak = g_ctx.mem_peak;
    memset(&g_ctx, 0, sizeof g_ctx);
    g_ctx.mem_peak = peak;
}

int backend_cuda_init(const GpuOptions *o, Err *e) {
    GpuOptions def;
    if (!o) {
        gpu_options_default(&def);
        o = &def;
    }
    char why[512];
    int n = 0;
    if (gpu_probe(&n, why, sizeof why) != 0) return err_set(e, "%s", why);
    if (o->device < 0 || o->device >= n)
        return err_set(e, "GPU device %d requested but this machine has %d (0..%d)", o->device, n, n - 1);
    backend_cuda_shutdown();
    g_ctx.opt = *o;
    if (!g_ctx.opt.conv_ws_limit) g_ctx.opt.conv_ws_limit = (size_t)512 << 20;
    int ok = !CUDA_CHECK(cudaSetDevice(o->device)) &&
             !CUDA_CHECK(cudaStreamCreateWithFlags(&g_ctx.stream, cudaStreamNonBlocking)) &&
             !CUDA_CHECK(cudaStreamCreateWithFlags(&g_ctx.copy_stream, cudaStreamNonBlocking)) &&
             !CUDA_CHECK(cudaEventCreateWithFlags(&g_ctx.copy_done, cudaEventDisableTiming)) &&
             !CUDA_CHECK(cudaEventCreateWithFlags(&g_ctx.compute_mark, cudaEventDisableTiming)) &&
             !CUDA_CHECK(cudaHostAlloc(&g_ctx.host_scratch, HOST_SCRATCH, cudaHostAllocDefault)) &&
             !CUBLAS_CHECK(cublasCreate(&g_ctx.cublas)) &&
             !CUBLAS_CHECK(cublasSetStream(g_ctx.cublas, g_ctx.stream)) &&
             /* TF32 only through the compute type we pass (gpu_gemm_compute) */
             !CUBLAS_CHECK(cublasSetMathMode(g_ctx.cublas, CUBLAS_DEFAULT_MATH)) &&
             !CUDNN_CHECK(cudnnCreate(&g_ctx.cudnn)) &&
             !CUDNN_CHECK(cudnnSetStream(g_ctx.cudnn, g_ctx.stream));
    if (ok && dc_init(&g_ctx.conv_cache, 256) != 0) {
        gpu_record_error(__FILE__, __LINE__, "dc_init", "host", "out of memory");
        ok = 0;
    }
    g_ctx.ready = 1; /* so that shutdown releases what was created */
    if (!ok || !gpu_scratch(GPU_SCRATCH_INITIAL)) {
        Err tmp;
        gpu_error(&tmp);
        backend_cuda_shutdown();
        return err_set(e, "CUDA backend start-up on device %d: %s", o->device, tmp.msg);
    }
    return 0;
}

/* ---- the table ---- */

static const Backend cuda_backend = {
    .name = "cuda",
    .device = DEV_CUDA,
    .alloc = cu_alloc,
    .free = cu_free,
    .memset_zero = cu_memset_zero,
    .copy_h2d = cu_copy_h2d,
    .copy_d2h = cu_copy_d2h,
    .copy_d2d = cu_copy_d2d,
    .synchronize = cu_synchronize,
    .copy_h2d_async = gpu_copy_h2d_async,
    .event_create = cu_event_create,
    .event_destroy = cu_event_destroy,
    .event_record = cu_event_record,
    .event_wait = cu_event_wait,
    .upload_async = cu_upload_async,
    .set_threads = op_set_threads, /* host threads (loader-side work, CPU fallbacks) */
    .get_threads = op_get_threads,
    .gemm = cu_gemm,
    .conv2d_workspace = cu_conv2d_workspace,
    .conv2d_forward = cu_conv2d_forward,
    .conv2d_backward = cu_conv2d_backward,
    .batchnorm_forward_train = cu_batchnorm_forward_train,
    .batchnorm_backward_train = cu_batchnorm_backward_train,
    .batchnorm_forward_eval = cu_batchnorm_forward_eval,
    .batchnorm_backward_eval = cu_batchnorm_backward_eval,
    .relu_forward = cu_relu_forward,
    .relu_backward = cu_relu_backward,
    .gelu_forward = cu_gelu_forward,
    .gelu_backward = cu_gelu_backward,
    .tanh_forward = cu_tanh_forward,
    .tanh_backward = cu_tanh_backward,
    .add_forward = cu_add_forward,
    .add_backward = cu_add_backward,
    .mul_forward = cu_mul_forward,
    .mul_backward = cu_mul_backward,
    .concat_forward = cu_concat_forward,
    .concat_backward = cu_concat_backward,
    .maxpool_forward = cu_maxpool_forward,
    .maxpool_backward = cu_maxpool_backward,
    .avgpool_global_forward = cu_avgpool_global_forward,
    .avgpool_global_backward = cu_avgpool_global_backward,
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
    .adamw_update = gpu_adamw_update,
    .global_norm = gpu_global_norm,
    .has_nonfinite = gpu_has_nonfinite,
    .scale = gpu_scale,
    .act_import = cu_act_import,
    .act_import_add = cu_act_import_add,
    .act_export = cu_act_export,
    .act_relu_forward = cu_act_relu_forward,
    .act_relu_backward = cu_act_relu_backward,
    .act_add_forward = cu_act_add_forward,
    .conv_weight_prep = cu_conv_weight_prep,
    .conv_weight_grad_add = cu_conv_weight_grad_add,
    .conv2d_act_workspace = cu_conv2d_act_workspace,
    .conv2d_act_forward = cu_conv2d_act_forward,
    .conv2d_act_backward = cu_conv2d_act_backward,
    .batchnorm_act_forward_train = cu_batchnorm_act_forward_train,
    .batchnorm_act_backward_train = cu_batchnorm_act_backward_train,
    .batchnorm_act_forward_eval = cu_batchnorm_act_forward_eval,
    .batchnorm_act_backward_eval = cu_batchnorm_act_backward_eval,
    .maxpool_act_forward = cu_maxpool_act_forward,
    .maxpool_act_backward = cu_maxpool_act_backward,
    .avgpool_act_forward = cu_avgpool_act_forward,
    .avgpool_act_backward = cu_avgpool_act_backward,
};

const Backend *backend_cuda(void) { return g_ctx.ready ? &cuda_backend : NULL; }
