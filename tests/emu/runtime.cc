// runtime.cc: the CUDA runtime API the backend calls, on the host, for the emulated build.
//
// One emulated device, an H100 SXM's properties (VQA_EMU_DEVICES=0 emulates a machine
// without a GPU). Device memory is host memory recorded in a registry: every pointer a
// call takes is checked against it (a host pointer where device memory is expected, or a
// range past a block's end, aborts with the call's name), fresh blocks are filled with
// 0xff bytes (NaN as floats) so a read before a write shows, and with the address
// sanitizer a kernel's access outside its block is reported.
//
// Streams keep their work and run it only when something waits: cudaStreamSynchronize,
// cudaEventSynchronize, cudaDeviceSynchronize, a blocking copy, cudaFree (which
// synchronizes the device, as CUDA's does), or a stream that runs a cudaStreamWaitEvent of
// work on another stream. cudaEventQuery answers "not ready" once for work that has not
// run and runs it when asked again (so a polling loop ends). A copy from pageable host
// memory reads the source at the call (CUDA stages it); every other host buffer of an
// asynchronous copy (pinned, or a pageable destination) is read or written only when the
// stream runs, so a buffer reused or read before its copy ran shows.
#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "emu_internal.h"

extern "C" const char *__asan_default_options(void) {
    // The process exits with device blocks and streams alive, as a CUDA program may.
    return "detect_leaks=0:abort_on_error=1";
}

namespace emu {
namespace {

struct Op {
    std::function<void()> fn;
    const char *what;
};

struct Stream {
    std::deque<Op> q;
    uint64_t enq = 0, done = 0;
    bool live = true, running = false, blocking = true;
    int priority = 0;
};

struct Event {
    Stream *s = nullptr;
    uint64_t pos = 0;
    bool recorded = false, live = true, timing = true;
    int not_ready_answers = 0;
    double time_ms = -1.0; // when its position ran
};

struct State {
    std::map<uintptr_t, size_t> dev, pinned;
    size_t dev_bytes = 0;
    std::vector<Stream *> streams; // kept for the process (waits may name them later)
    Stream legacy;
    cudaError_t last = cudaSuccess;
    int device = 0;
};

State &st() {
    static State *s = new State(); // never destroyed: atexit handlers may still call in
    return *s;
}

int n_devices() {
    const char *e = getenv("VQA_EMU_DEVICES");
    return e && *e ? atoi(e) : 1;
}

const size_t kTotalMem = (size_t)85520809984ull; // an H100 80GB HBM3's cudaDeviceProp::totalGlobalMem

double now_ms() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return tv.tv_sec * 1e3 + tv.tv_usec * 1e-3;
}

bool in_map(const std::map<uintptr_t, size_t> &m, const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

Stream *S(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return &st().legacy;
    return reinterpret_cast<Stream *>(s);
}

void run_until(Stream *s, uint64_t pos) {
    if (s->done >= pos) return;
    if (s->running) fatal("a stream waits for its own later work (a cycle of cudaStreamWaitEvent)");
    s->running = true;
    while (s->done < pos) {
        Op op = std::move(s->q.front());
        s->q.pop_front();
        op.fn();
        s->done++;
    }
    s->running = false;
}

cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess) st().last = e;
    return e;
}

} // namespace

std::recursive_mutex &lock() {
    static std::recursive_mutex *m = new std::recursive_mutex();
    return *m;
}

void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vqa emu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    abort();
}

void set_last_error(cudaError_t e) { st().last = e; }

bool is_device(const void *p, size_t bytes) { return in_map(st().dev, p, bytes); }
bool is_pinned(const void *p, size_t bytes) { return in_map(st().pinned, p, bytes); }

void check_device(const void *p, size_t bytes, const char *what) {
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!is_device(p, bytes))
        fatal("%s: [%p, +%zu bytes) is not inside one device allocation (%s)", what, p, bytes,
              is_pinned(p, 0) ? "it is pinned host memory" : "a host pointer, a freed block or past a block's end");
}

bool stream_ok(cudaStream_t s) {
    Stream *x = S(s);
    if (x == &st().legacy) return true;
    for (Stream *y : st().streams)
        if (y == x) return y->live;
    return false;
}

void enqueue(cudaStream_t s, const char *what, std::function<void()> fn) {
    std::lock_guard<std::recursive_mutex> g(lock());
    if (!stream_ok(s)) fatal("%s queued on a stream that does not exist or was destroyed", what);
    Stream *x = S(s);
    if (x == &st().legacy) {
        // the legacy stream waits for the work queued on every blocking stream so far
        std::vector<std::pair<Stream *, uint64_t>> deps;
        for (Stream *y : st().streams)
            if (y->live && y->blocking && y->enq > y->done) deps.push_back({y, y->enq});
        if (!deps.empty()) {
            x->q.push_back({[deps]() {
                                for (auto &d : deps) run_until(d.first, d.second);
                            },
                            "legacy stream ordering"});
            x->enq++;
        }
    } else if (x->blocking && st().legacy.enq > st().legacy.done) {
        const uint64_t pos = st().legacy.enq;
        x->q.push_back({[pos]() { run_until(&st().legacy, pos); }, "legacy stream ordering"});
        x->enq++;
    }
    x->q.push_back({std::move(fn), what});
    x->enq++;
}

void run_stream(cudaStream_t s) {
    std::lock_guard<std::recursive_mutex> g(lock());
    Stream *x = S(s);
    run_until(x, x->enq);
}

void run_all() {
    std::lock_guard<std::recursive_mutex> g(lock());
    for (;;) {
        bool any = false;
        for (Stream *y : st().streams)
            if (y->done < y->enq) run_until(y, y->enq), any = true;
        if (st().legacy.done < st().legacy.enq) run_until(&st().legacy, st().legacy.enq), any = true;
        if (!any) return;
    }
}

} // namespace emu

using namespace emu;
#define LOCK std::lock_guard<std::recursive_mutex> lock_guard_(emu::lock())

extern "C" {

// ---- errors ----

cudaError_t cudaGetLastError(void) {
    LOCK;
    cudaError_t e = st().last;
    st().last = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) {
    LOCK;
    return st().last;
}

static const char *err_name(cudaError_t e, bool text) {
    switch (e) {
    case cudaSuccess: return text ? "no error" : "cudaSuccess";
    case cudaErrorInvalidValue: return text ? "invalid argument" : "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return text ? "out of memory" : "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return text ? "invalid configuration argument" : "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return text ? "invalid device ordinal" : "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return text ? "invalid resource handle" : "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return text ? "device not ready" : "cudaErrorNotReady";
    case cudaErrorNoDevice: return text ? "no CUDA-capable device is detected" : "cudaErrorNoDevice";
    case cudaErrorInsufficientDriver:
        return text ? "CUDA driver version is insufficient for CUDA runtime version" : "cudaErrorInsufficientDriver";
    case cudaErrorInvalidMemcpyDirection: return text ? "invalid copy direction for memcpy" : "cudaErrorInvalidMemcpyDirection";
    case cudaErrorLaunchFailure: return text ? "unspecified launch failure" : "cudaErrorLaunchFailure";
    default: return text ? "unknown error (emulated runtime)" : "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e) { return err_name(e, true); }
const char *cudaGetErrorName(cudaError_t e) { return err_name(e, false); }

// ---- device ----

cudaError_t cudaGetDeviceCount(int *n) {
    LOCK;
    *n = n_devices();
    return *n > 0 ? cudaSuccess : ret(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int d) {
    LOCK;
    if (d < 0 || d >= n_devices()) return ret(cudaErrorInvalidDevice);
    st().device = d;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *d) {
    LOCK;
    *d = st().device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
    LOCK;
    if (d < 0 || d >= n_devices()) return ret(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "NVIDIA H100 80GB HBM3 (emulated)");
    p->totalGlobalMem = kTotalMem;
    p->sharedMemPerBlock = 48 * 1024;
    p->sharedMemPerBlockOptin = 227 * 1024;
    p->sharedMemPerMultiprocessor = 228 * 1024;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
    p->totalConstMem = 65536;
    p->major = 9, p->minor = 0;
    p->multiProcessorCount = 132;
    p->maxThreadsPerMultiProcessor = 2048;
    p->l2CacheSize = 50 * 1024 * 1024;
    p->memoryBusWidth = 5120;
    p->unifiedAddressing = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 3;
    p->canMapHostMemory = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    run_all();
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total) {
    LOCK;
    *total = kTotalMem;
    *free_b = kTotalMem - st().dev_bytes;
    return cudaSuccess;
}

// ---- memory ----

cudaError_t cudaMalloc(void **p, size_t bytes) {
    LOCK;
    if (!p) return ret(cudaErrorInvalidValue);
    *p = nullptr;
    if (bytes > kTotalMem - st().dev_bytes) return ret(cudaErrorMemoryAllocation);
    void *q = nullptr;
    // exactly `bytes` (cudaMalloc's alignment): the sanitizer sees an access one past the end
    if (posix_memalign(&q, 256, bytes ? bytes : 1) != 0) return ret(cudaErrorMemoryAllocation);
    memset(q, 0xff, bytes ? bytes : 1);
    st().dev[(uintptr_t)q] = bytes;
    st().dev_bytes += bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    LOCK;
    if (!p) return cudaSuccess;
    auto it = st().dev.find((uintptr_t)p);
    if (it == st().dev.end()) return ret(cudaErrorInvalidValue);
    run_all(); // cudaFree synchronizes the device
    st().dev_bytes -= it->second;
    st().dev.erase(it);
    free(p);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int flags) {
    LOCK;
    (void)flags;
    *p = nullptr;
    void *q = nullptr;
    if (posix_memalign(&q, 4096, bytes ? bytes : 1) != 0) return ret(cudaErrorMemoryAllocation);
    st().pinned[(uintptr_t)q] = bytes;
    *p = q;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }

cudaError_t cudaFreeHost(void *p) {
    LOCK;
    if (!p) return cudaSuccess;
    auto it = st().pinned.find((uintptr_t)p);
    if (it == st().pinned.end()) return ret(cudaErrorInvalidValue);
    run_all(); // as cudaFree: queued copies may still read it
    st().pinned.erase(it);
    free(p);
    return cudaSuccess;
}

static cudaError_t memcpy_async(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s,
                                const char *call) {
    if (!stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    if (!dst || !src) return ret(cudaErrorInvalidValue);
    const bool dd = is_device(dst, 0), sd = is_device(src, 0);
    if (kind == cudaMemcpyDefault) {
        kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                  : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    }
    const bool want_dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool want_sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return ret(cudaErrorInvalidMemcpyDirection);
    char what[96];
    if (want_dd) snprintf(what, sizeof what, "%s destination", call), check_device(dst, bytes, what);
    else if (dd) fatal("%s: the destination %p is device memory but the copy's kind says host", call, dst);
    if (want_sd) snprintf(what, sizeof what, "%s source", call), check_device(src, bytes, what);
    else if (sd) fatal("%s: the source %p is device memory but the copy's kind says host", call, src);
    Stream *x = S(s);
    if (!want_sd && !want_dd) { // host to host: synchronous
        enqueue(s, call, [dst, src, bytes]() { memcpy(dst, src, bytes); });
        run_until(x, x->enq);
        return cudaSuccess;
    }
    if (!want_sd && !is_pinned(src, bytes)) {
        // pageable source: read now (CUDA stages it, so the caller may reuse it on return)
        std::vector<unsigned char> stage((const unsigned char *)src, (const unsigned char *)src + bytes);
        enqueue(s, call, [dst, stage]() { memcpy(dst, stage.data(), stage.size()); });
        return cudaSuccess;
    }
    // pinned host memory and device memory: read and written when the stream runs (CUDA
    // only "might" complete a copy to pageable memory before returning: nothing may rely on it)
    enqueue(s, call, [dst, src, bytes]() { memcpy(dst, src, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
    LOCK;
    return memcpy_async(dst, src, bytes, kind, s, "cudaMemcpyAsync");
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    LOCK;
    cudaError_t e = memcpy_async(dst, src, bytes, kind, nullptr, "cudaMemcpy");
    if (e == cudaSuccess) run_until(&st().legacy, st().legacy.enq);
    return e;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s) {
    LOCK;
    if (!stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    check_device(p, bytes, "cudaMemsetAsync");
    enqueue(s, "cudaMemsetAsync", [p, v, bytes]() { memset(p, v, bytes); });
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int v, size_t bytes) {
    LOCK;
    cudaError_t e = cudaMemsetAsync(p, v, bytes, nullptr);
    if (e == cudaSuccess) run_until(&st().legacy, st().legacy.enq);
    return e;
}

// ---- streams ----

static cudaError_t stream_new(cudaStream_t *s, unsigned int flags, int priority) {
    if (!s) return ret(cudaErrorInvalidValue);
    Stream *x = new Stream();
    x->blocking = !(flags & cudaStreamNonBlocking);
    x->priority = priority;
    st().streams.push_back(x);
    *s = reinterpret_cast<cudaStream_t>(x);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
    LOCK;
    return stream_new(s, cudaStreamDefault, 0);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    LOCK;
    return stream_new(s, flags, 0);
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned int flags, int priority) {
    LOCK;
    if (priority > 0 || priority < -5) priority = priority > 0 ? 0 : -5; // clamped, as CUDA
    return stream_new(s, flags, priority);
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    LOCK;
    if (!s || !stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    Stream *x = S(s);
    run_until(x, x->enq); // queued work still completes
    x->live = false;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    LOCK;
    if (!stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    run_stream(s);
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t s) {
    LOCK;
    if (!stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    Stream *x = S(s);
    return x->done >= x->enq ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags) {
    LOCK;
    (void)flags;
    Event *ev = reinterpret_cast<Event *>(e);
    if (!stream_ok(s) || !ev || !ev->live) return ret(cudaErrorInvalidResourceHandle);
    if (!ev->recorded) return cudaSuccess; // an event never recorded is complete
    Stream *es = ev->s;
    const uint64_t pos = ev->pos;
    enqueue(s, "cudaStreamWaitEvent", [es, pos]() { run_until(es, pos); });
    return cudaSuccess;
}

// ---- events ----

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    LOCK;
    if (!e) return ret(cudaErrorInvalidValue);
    Event *ev = new Event(); // kept for the process: a queued record may still stamp it
    ev->timing = !(flags & cudaEventDisableTiming);
    *e = reinterpret_cast<cudaEvent_t>(ev);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

cudaError_t cudaEventDestroy(cudaEvent_t e) {
    LOCK;
    Event *ev = reinterpret_cast<Event *>(e);
    if (!ev || !ev->live) return ret(cudaErrorInvalidResourceHandle);
    ev->live = false;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    LOCK;
    Event *ev = reinterpret_cast<Event *>(e);
    if (!ev || !ev->live || !stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    ev->time_ms = -1.0;
    if (ev->timing) enqueue(s, "cudaEventRecord", [ev]() { ev->time_ms = now_ms(); });
    Stream *x = S(s);
    ev->s = x;
    ev->pos = x->enq;
    ev->recorded = true;
    ev->not_ready_answers = 0;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    LOCK;
    Event *ev = reinterpret_cast<Event *>(e);
    if (!ev || !ev->live) return ret(cudaErrorInvalidResourceHandle);
    if (ev->recorded) run_until(ev->s, ev->pos);
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
    LOCK;
    Event *ev = reinterpret_cast<Event *>(e);
    if (!ev || !ev->live) return ret(cudaErrorInvalidResourceHandle);
    if (!ev->recorded || ev->s->done >= ev->pos) return cudaSuccess;
    if (ev->not_ready_answers++ == 0) return cudaErrorNotReady;
    run_until(ev->s, ev->pos);
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    LOCK;
    Event *x = reinterpret_cast<Event *>(a), *y = reinterpret_cast<Event *>(b);
    if (!x || !y || !x->live || !y->live) return ret(cudaErrorInvalidResourceHandle);
    if (!x->timing || !y->timing || !x->recorded || !y->recorded) return ret(cudaErrorInvalidResourceHandle);
    if (x->time_ms < 0 || y->time_ms < 0) return ret(cudaErrorNotReady);
    *ms = (float)(y->time_ms - x->time_ms);
    return cudaSuccess;
}

} // extern "C"
