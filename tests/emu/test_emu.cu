// test_emu.cu: the CUDA emulation itself (tests/emu/), compiled as the backend's kernels are
// (host C++, emu_kernel.h force-included). What each case proves is its name; the cases
// that must abort (divergent barriers, bad masks, accesses outside an allocation) run in a
// child process and check its signal and message. The kernels here are small on purpose:
// a block reduction with and without its barriers, warp shuffles, atomics, a stream
// hand-off with and without its event wait.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda/launch.h"

static int g_fail, g_cases;
#define CHECK(c)                                                                \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "  FAILED %s:%d: %s\n", __FILE__, __LINE__, #c);    \
            g_fail++;                                                           \
            return;                                                             \
        }                                                                       \
    } while (0)
#define OK(call) CHECK((call) == cudaSuccess)

// ---- kernels ----

// out[block] = sum of in[block*blockDim + t] (blockDim a multiple of 32), two-level:
// warp shuffles, then one warp over the warps' partials in shared memory.
template <int kBarriers> __global__ void k_block_sum(const float *in, float *out) {
    __shared__ float part[32];
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5, nw = blockDim.x >> 5;
    float v = in[blockIdx.x * blockDim.x + t];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) part[warp] = v;
    if (kBarriers) __syncthreads(); // without it, warp 0 may read partials not yet written
    if (warp == 0) {
        float s = lane < nw ? part[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) out[blockIdx.x] = s;
    }
}

// a barrier inside a branch that only some threads take
__global__ void k_divergent_barrier(float *x) {
    if (threadIdx.x < 16) __syncthreads();
    x[threadIdx.x] = 1.0f;
}

// threads that return before a barrier the others reach
__global__ void k_exit_before_barrier(float *x) {
    if (threadIdx.x >= 40) return;
    __syncthreads();
    x[threadIdx.x] = 1.0f;
}

// a full-warp shuffle in a block of 48 threads: the second warp has 16 lanes
__global__ void k_shfl_partial_warp(float *x) { x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1); }

// one element past the end of a cudaMalloc block
__global__ void k_write_past_end(float *x, int n) { x[n + threadIdx.x] = 2.0f; }

// shared memory indexed one past its end by the last thread
__global__ void k_shared_past_end(float *out) {
    __shared__ float s[64];
    s[threadIdx.x + 1] = 1.0f;
    __syncthreads();
    out[threadIdx.x] = s[threadIdx.x];
}

// shuffle variants: out[t] = {idx from lane 3, up by 1, down by 2, xor 5}
__global__ void k_shfl_kinds(float *out) {
    const float v = (float)threadIdx.x;
    const int t = threadIdx.x;
    out[4 * t + 0] = __shfl_sync(0xffffffffu, v, 3);
    out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, 1);
    out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, 2);
    out[4 * t + 3] = __shfl_xor_sync(0xffffffffu, v, 5);
}

__global__ void k_vote(unsigned *out) {
    const unsigned b = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
    if (threadIdx.x == 0) out[0] = b;
}

__global__ void k_atomic_count(int *c, double *s) {
    atomicAdd(c, 1);
    atomicAdd(s, 0.5);
}

// y[i] = x[i] + 1 over a grid-stride loop
__global__ void k_add_one(size_t n, const float *x, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] + 1.0f;
}

// dynamic shared memory: reverse a block's values through it
__global__ void k_reverse(const int *in, int *out) {
    GPU_DYNAMIC_SHARED(int, buf);
    const int t = threadIdx.x, n = blockDim.x;
    buf[t] = in[blockIdx.x * n + t];
    __syncthreads();
    out[blockIdx.x * n + t] = buf[n - 1 - t];
}

// records the built-in variables of a 3-d launch
__global__ void k_coords(int *out) {
    const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const int i = b * blockDim.x * blockDim.y * blockDim.z + t;
    out[i] = 1000 * b + t;
}

// ---- helpers ----

static float *dev_floats(const std::vector<float> &h) {
    float *d = nullptr;
    if (cudaMalloc((void **)&d, h.size() * sizeof(float)) != cudaSuccess) return nullptr;
    cudaMemcpyAsync(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice, 0);
    return d;
}

static std::vector<float> host_floats(const float *d, size_t n) {
    std::vector<float> h(n);
    cudaMemcpyAsync(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost, 0);
    cudaStreamSynchronize(0);
    return h;
}

// Runs fn in a child; 1 when the child died of SIGABRT and its stderr contains `want`.
template <typename F> static bool dies_with(F fn, const char *want) {
    int fd[2];
    if (pipe(fd) != 0) return false;
    fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn();
        cudaDeviceSynchronize();
        _exit(0);
    }
    close(fd[1]);
    std::string err;
    char buf[4096];
    ssize_t r;
    while ((r = read(fd[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)r);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    const bool said = err.find(want) != std::string::npos;
    if (!aborted || !said)
        fprintf(stderr, "  child: %s, wanted \"%s\"; its stderr:\n%.1500s\n",
                aborted ? "aborted" : WIFSIGNALED(status) ? "killed by another signal" : "exited", want, err.c_str());
    return aborted && said;
}

// ---- cases ----

// Each launch shuffles the thread order with its own seed (from VQA_EMU_SEED and the
// launch count): 8 launches, 8 orders.
static void block_sum_with_barriers_is_exact_in_every_thread_order() {
    const int B = 6, T = 256;
    std::vector<float> h(B * T);
    for (int i = 0; i < B * T; i++) h[i] = (float)(i % 7);
    float *in = dev_floats(h), *out = nullptr;
    OK(cudaMalloc((void **)&out, B * sizeof(float)));
    for (int launch = 0; launch < 8; launch++) {
        GPU_LAUNCH(k_block_sum<1>, B, T, 0, 0, in, out);
        OK(cudaGetLastError());
        std::vector<float> r = host_floats(out, B);
        for (int b = 0; b < B; b++) {
            float want = 0;
            for (int t = 0; t < T; t++) want += h[b * T + t];
            CHECK(r[b] == want);
        }
    }
    cudaFree(in);
    cudaFree(out);
}

// The shuffled thread order makes the missing barrier visible: warp 0 reads partials of
// warps that have not run yet (the shared array still holds the previous block's).
static void block_sum_without_a_barrier_gives_wrong_sums() {
    const int B = 6, T = 256;
    std::vector<float> h(B * T);
    for (int i = 0; i < B * T; i++) h[i] = (float)(1 + i % 5);
    float *in = dev_floats(h), *out = nullptr;
    OK(cudaMalloc((void **)&out, B * sizeof(float)));
    int wrong = 0;
    for (int launch = 0; launch < 8; launch++) {
        GPU_LAUNCH(k_block_sum<0>, B, T, 0, 0, in, out);
        std::vector<float> r = host_floats(out, B);
        for (int b = 0; b < B; b++) {
            float want = 0;
            for (int t = 0; t < T; t++) want += h[b * T + t];
            wrong += r[b] != want;
        }
    }
    printf("  without the barrier: %d of %d block sums wrong\n", wrong, 8 * B);
    CHECK(wrong > 0);
    cudaFree(in);
    cudaFree(out);
}

static void divergent_syncthreads_aborts() {
    CHECK(dies_with(
        [] {
            float *x = nullptr;
            cudaMalloc((void **)&x, 64 * sizeof(float));
            GPU_LAUNCH(k_divergent_barrier, 1, 64, 0, 0, x);
        },
        "divergent __syncthreads"));
    CHECK(dies_with(
        [] {
            float *x = nullptr;
            cudaMalloc((void **)&x, 64 * sizeof(float));
            GPU_LAUNCH(k_exit_before_barrier, 2, 64, 0, 0, x);
        },
        "reached by 40 of the block's 64 threads"));
}

static void full_mask_shuffle_in_a_partial_warp_aborts() {
    CHECK(dies_with(
        [] {
            float *x = nullptr;
            cudaMalloc((void **)&x, 48 * sizeof(float));
            GPU_LAUNCH(k_shfl_partial_warp, 1, 48, 0, 0, x);
        },
        "this warp has only 16 threads"));
}

static void global_access_past_an_allocation_is_reported() {
#if !defined(__SANITIZE_ADDRESS__)
    printf("  (no address sanitizer in this build: not checked)\n");
    return;
#endif
    CHECK(dies_with(
        [] {
            float *x = nullptr;
            cudaMalloc((void **)&x, 100 * sizeof(float));
            GPU_LAUNCH(k_write_past_end, 1, 1, 0, 0, x, 100);
        },
        "heap-buffer-overflow"));
}

static void shared_access_past_an_array_is_reported() {
#if !defined(__SANITIZE_ADDRESS__)
    printf("  (no address sanitizer in this build: not checked)\n");
    return;
#endif
    CHECK(dies_with(
        [] {
            float *x = nullptr;
            cudaMalloc((void **)&x, 64 * sizeof(float));
            GPU_LAUNCH(k_shared_past_end, 1, 64, 0, 0, x);
        },
        "global-buffer-overflow"));
}

static void host_pointer_as_device_memory_aborts() {
    CHECK(dies_with(
        [] {
            static float host[16];
            float *d = nullptr;
            cudaMalloc((void **)&d, 16 * sizeof(float));
            cudaMemcpyAsync(host, d, sizeof host, cudaMemcpyDeviceToDevice, 0);
        },
        "is not inside one device allocation"));
    CHECK(dies_with(
        [] {
            float *d = nullptr;
            cudaMalloc((void **)&d, 16 * sizeof(float));
            cudaMemsetAsync(d + 8, 0, 9 * sizeof(float), 0);
        },
        "is not inside one device allocation"));
}

static void shuffle_kinds_and_votes_match_cuda() {
    float *d = nullptr;
    unsigned *v = nullptr;
    OK(cudaMalloc((void **)&d, 4 * 32 * sizeof(float)));
    OK(cudaMalloc((void **)&v, sizeof(unsigned)));
    GPU_LAUNCH(k_shfl_kinds, 1, 32, 0, 0, d);
    GPU_LAUNCH(k_vote, 1, 32, 0, 0, v);
    std::vector<float> r = host_floats(d, 4 * 32);
    unsigned ballot = 0;
    cudaMemcpyAsync(&ballot, v, sizeof ballot, cudaMemcpyDeviceToHost, 0);
    cudaStreamSynchronize(0);
    for (int t = 0; t < 32; t++) {
        CHECK(r[4 * t + 0] == 3.0f);
        CHECK(r[4 * t + 1] == (float)(t >= 1 ? t - 1 : t));
        CHECK(r[4 * t + 2] == (float)(t + 2 < 32 ? t + 2 : t));
        CHECK(r[4 * t + 3] == (float)(t ^ 5));
    }
    unsigned want = 0;
    for (int t = 0; t < 32; t++)
        if (t % 3 == 0) want |= 1u << t;
    CHECK(ballot == want);
    cudaFree(d);
    cudaFree(v);
}

static void atomics_count_every_thread() {
    int *c = nullptr;
    double *s = nullptr;
    OK(cudaMalloc((void **)&c, sizeof(int)));
    OK(cudaMalloc((void **)&s, sizeof(double)));
    OK(cudaMemsetAsync(c, 0, sizeof(int), 0));
    OK(cudaMemsetAsync(s, 0, sizeof(double), 0));
    GPU_LAUNCH(k_atomic_count, dim3(3, 2), dim3(32, 4), 0, 0, c, s);
    int hc = 0;
    double hs = 0;
    cudaMemcpyAsync(&hc, c, sizeof hc, cudaMemcpyDeviceToHost, 0);
    cudaMemcpyAsync(&hs, s, sizeof hs, cudaMemcpyDeviceToHost, 0);
    cudaStreamSynchronize(0);
    CHECK(hc == 6 * 128);
    CHECK(hs == 0.5 * 6 * 128);
    cudaFree(c);
    cudaFree(s);
}

static void builtin_variables_cover_a_3d_grid_once() {
    const dim3 g(3, 2, 2), b(4, 3, 2);
    const int n = 12 * 24;
    int *d = nullptr;
    OK(cudaMalloc((void **)&d, n * sizeof(int)));
    GPU_LAUNCH(k_coords, g, b, 0, 0, d);
    std::vector<int> h(n);
    cudaMemcpyAsync(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost, 0);
    cudaStreamSynchronize(0);
    for (int i = 0; i < n; i++) CHECK(h[i] == 1000 * (i / 24) + i % 24);
    cudaFree(d);
}

static void dynamic_shared_memory_is_per_block() {
    const int B = 3, T = 64;
    std::vector<int> h(B * T), r(B * T);
    for (int i = 0; i < B * T; i++) h[i] = i;
    int *in = nullptr, *out = nullptr;
    OK(cudaMalloc((void **)&in, B * T * sizeof(int)));
    OK(cudaMalloc((void **)&out, B * T * sizeof(int)));
    cudaMemcpyAsync(in, h.data(), B * T * sizeof(int), cudaMemcpyHostToDevice, 0);
    GPU_LAUNCH(k_reverse, B, T, T * sizeof(int), 0, in, out);
    OK(cudaGetLastError());
    cudaMemcpyAsync(r.data(), out, B * T * sizeof(int), cudaMemcpyDeviceToHost, 0);
    cudaStreamSynchronize(0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) CHECK(r[b * T + t] == b * T + (T - 1 - t));
    cudaFree(in);
    cudaFree(out);
}

static void launches_outside_cuda_limits_are_configuration_errors() {
    float *x = nullptr;
    OK(cudaMalloc((void **)&x, 16 * sizeof(float)));
    (void)cudaGetLastError();
    GPU_LAUNCH(k_add_one, 1, 1025, 0, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    GPU_LAUNCH(k_add_one, dim3(1, 65536), 32, 0, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    GPU_LAUNCH(k_add_one, 0, 32, 0, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    GPU_LAUNCH(k_add_one, 1, dim3(32, 32, 2), 0, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    GPU_LAUNCH(k_add_one, 1, 32, 48 * 1024 + 1, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    GPU_LAUNCH(k_add_one, 1, 32, 0, 0, (size_t)16, x, x);
    CHECK(cudaGetLastError() == cudaSuccess);
    cudaDeviceSynchronize();
    cudaFree(x);
}

// Work runs when something waits: a pinned buffer holds its old bytes until the stream
// is synchronized, and a stream that reads another's result without waiting for its event
// reads the old data.
static void streams_run_when_waited_on() {
    const size_t n = 1000;
    std::vector<float> h(n, 1.0f);
    float *x = dev_floats(h), *y = nullptr, *pin = nullptr;
    OK(cudaMalloc((void **)&y, n * sizeof(float)));
    OK(cudaHostAlloc((void **)&pin, n * sizeof(float), cudaHostAllocDefault));
    cudaStream_t a, b;
    cudaEvent_t ev;
    OK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
    OK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
    OK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaStreamSynchronize(0);
    for (size_t i = 0; i < n; i++) pin[i] = -1.0f;
    // a: x += 1 (x = 2); b reads x into y WITHOUT waiting for a
    GPU_LAUNCH(k_add_one, 4, 128, 0, a, n, x, x);
    GPU_LAUNCH(k_add_one, 4, 128, 0, b, n, x, y); // y = x + 1, x still 1 when b runs first
    OK(cudaMemcpyAsync(pin, y, n * sizeof(float), cudaMemcpyDeviceToHost, b));
    CHECK(pin[0] == -1.0f); // nothing ran yet
    OK(cudaStreamSynchronize(b));
    CHECK(pin[0] == 2.0f && pin[n - 1] == 2.0f); // the missing wait shows
    OK(cudaStreamSynchronize(a));
    // the same hand-off with the event: b sees a's result
    GPU_LAUNCH(k_add_one, 4, 128, 0, a, n, x, x); // x = 3
    OK(cudaEventRecord(ev, a));
    OK(cudaStreamWaitEvent(b, ev, 0));
    GPU_LAUNCH(k_add_one, 4, 128, 0, b, n, x, y); // y = 4
    OK(cudaMemcpyAsync(pin, y, n * sizeof(float), cudaMemcpyDeviceToHost, b));
    CHECK(cudaEventQuery(ev) == cudaErrorNotReady);
    OK(cudaStreamSynchronize(b));
    CHECK(pin[0] == 4.0f && pin[n - 1] == 4.0f);
    CHECK(cudaEventQuery(ev) == cudaSuccess);
    cudaEventDestroy(ev);
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
    cudaFreeHost(pin);
    cudaFree(x);
    cudaFree(y);
}

static void fresh_device_memory_reads_as_nan() {
    float *x = nullptr;
    OK(cudaMalloc((void **)&x, 8 * sizeof(float)));
    std::vector<float> r = host_floats(x, 8);
    CHECK(r[0] != r[0] && r[7] != r[7]);
    size_t fr = 0, tot = 0;
    OK(cudaMemGetInfo(&fr, &tot));
    CHECK(tot - fr >= 8 * sizeof(float));
    cudaFree(x);
}

static void device_is_an_emulated_h100() {
    int n = 0;
    OK(cudaGetDeviceCount(&n));
    CHECK(n == 1);
    cudaDeviceProp p;
    OK(cudaGetDeviceProperties(&p, 0));
    CHECK(p.major == 9 && p.minor == 0 && p.multiProcessorCount == 132 && p.maxThreadsPerBlock == 1024);
    CHECK(strstr(p.name, "H100") && strstr(p.name, "emulated"));
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
    (void)cudaGetLastError();
}

int main() {
    struct {
        void (*fn)();
        const char *name;
    } cases[] = {
#define C(f) {f, #f}
        C(block_sum_with_barriers_is_exact_in_every_thread_order),
        C(block_sum_without_a_barrier_gives_wrong_sums),
        C(divergent_syncthreads_aborts),
        C(full_mask_shuffle_in_a_partial_warp_aborts),
        C(global_access_past_an_allocation_is_reported),
        C(shared_access_past_an_array_is_reported),
        C(host_pointer_as_device_memory_aborts),
        C(shuffle_kinds_and_votes_match_cuda),
        C(atomics_count_every_thread),
        C(builtin_variables_cover_a_3d_grid_once),
        C(dynamic_shared_memory_is_per_block),
        C(launches_outside_cuda_limits_are_configuration_errors),
        C(streams_run_when_waited_on),
        C(fresh_device_memory_reads_as_nan),
        C(device_is_an_emulated_h100),
#undef C
    };
    for (auto &c : cases) {
        const int before = g_fail;
        c.fn();
        g_cases++;
        printf("%-62s %s\n", c.name, g_fail == before ? "ok" : "FAILED");
    }
    printf("%d passed, %d failed\n", g_cases - g_fail, g_fail);
    return g_fail ? 1 : 0;
}
