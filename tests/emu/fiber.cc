// fiber.cc: kernels on the host. A grid runs block after block (in an order shuffled per
// launch); the threads of a block are fibers on one host thread, each with its own stack,
// switched cooperatively: a thread runs until it reaches a barrier or returns. Between
// barriers the threads run in an order shuffled per launch (seed VQA_EMU_SEED, default 1;
// VQA_EMU_ORDER=fixed runs them in index order), so a missing barrier changes what the
// threads read and a test sees it. VQA_EMU_PROFILE=1 prints each kernel's launches,
// threads and host time at exit.
//
// Barrier rules (what a GPU leaves undefined is an error here, with the kernel, the block,
// the thread and the source line):
//   __syncthreads: every thread of the block waits at the same call; a thread that exited
//     or waits elsewhere (another __syncthreads, a warp operation) while others wait is
//     a divergent barrier.
//   warp operations (__syncwarp, shuffles, votes): every lane of the mask waits at the
//     same call with the same mask; a mask naming a lane the block does not have, or a
//     lane that exited or waits elsewhere, is an error.
//
// The context switch is a few instructions of assembly on x86-64 (ucontext's swapcontext
// makes a system call per switch, too slow for a kernel of a million threads); other
// architectures use ucontext. With the address sanitizer the switches are announced to
// it, so fiber stacks are not mistaken for overflows.
#include <sys/mman.h>

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "emu_kernel.h" // first: it defines the qualifiers before the CUDA headers
#include "emu_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

thread_local const EmuThreadCtx *emu_ctx_;

namespace emu {
namespace {

// ---- context switch ----
#if defined(__x86_64__)
extern "C" void emu_ctx_switch(void **save_sp, void *load_sp);
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack,
// stores the stack pointer in *save_sp, and resumes the context whose stack pointer is
// load_sp (the same frame layout, made by fiber_init for a fiber that has not run yet).
asm(R"(
    .text
    .globl emu_ctx_switch
    .type emu_ctx_switch, @function
emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

enum { READY, WAIT_BLOCK, WAIT_WARP, DONE };

struct Fiber {
    EmuThreadCtx ctx;
    int state;
    int linear;
    const char *file; // where it waits
    int line;
    unsigned mask;     // warp operations
    unsigned xchg_gen; // warp exchanges done (which xchg buffer is next)
    char *stack;
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t uc;
#endif
    void *asan_fake;
};

struct Block {
    std::vector<Fiber> f;
    int T;
    const std::function<void()> *body;
    const char *name;
    // A warp exchange's deposits, by linear thread index, in two buffers used alternately
    // (by each lane's exchange count): a lane deposits for its next exchange only after
    // every lane deposited for this one, so by then no lane still reads the other buffer.
    uint64_t xchg[2][1024];
    unsigned char *dyn;  // dynamic shared memory
    size_t dyn_bytes;
#if defined(__x86_64__)
    void *sched_sp;
#else
    ucontext_t sched_uc;
#endif
    const void *sched_stack_bottom;
    size_t sched_stack_size;
};

thread_local Block *g_block;
thread_local Fiber *g_fiber;

const size_t kStack = (size_t)256 << 10; // per thread: room for a sanitizer report
const size_t kGuard = 4096;

// Stacks for up to 1024 threads, made once per host thread (lazily committed by the kernel).
struct StackPool {
    std::vector<char *> s;
    char *get(int i) {
        while ((int)s.size() <= i) {
            void *p = mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                           -1, 0);
            if (p == MAP_FAILED) fatal("out of memory for fiber stacks (%zu threads)", s.size());
            mprotect(p, kGuard, PROT_NONE); // a stack overflow faults instead of corrupting the next stack
            s.push_back((char *)p + kGuard);
        }
        return s[i];
    }
};
thread_local StackPool g_stacks;

uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t g_seed = 1;
bool g_fixed_order = false;
uint64_t g_launches = 0;

// VQA_EMU_PROFILE=1: per kernel, launches, threads and host seconds, printed at exit
bool g_profile = false;
struct KernelStats {
    uint64_t launches = 0, threads = 0;
    double seconds = 0.0;
};
std::map<std::string, KernelStats> g_stats;

double now_s() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void print_profile() {
    std::vector<std::pair<double, std::string>> v;
    double total = 0;
    for (auto &k : g_stats) v.push_back({k.second.seconds, k.first}), total += k.second.seconds;
    std::sort(v.rbegin(), v.rend());
    fprintf(stderr, "vqa emu profile: %.2f s in kernels\n%-40s %9s %12s %9s\n", total, "kernel", "launches", "threads",
            "seconds");
    for (auto &x : v) {
        const KernelStats &k = g_stats[x.second];
        fprintf(stderr, "%-40s %9llu %12llu %9.3f\n", x.second.c_str(), (unsigned long long)k.launches,
                (unsigned long long)k.threads, k.seconds);
    }
}

void read_env() {
    static bool done = false;
    if (done) return;
    done = true;
    const char *s = getenv("VQA_EMU_SEED");
    if (s && *s) g_seed = strtoull(s, nullptr, 0);
    const char *o = getenv("VQA_EMU_ORDER");
    g_fixed_order = o && !strcmp(o, "fixed");
    const char *p = getenv("VQA_EMU_PROFILE");
    g_profile = p && *p && strcmp(p, "0");
    if (g_profile) atexit(print_profile);
}

void where(const Fiber *f, char *buf, size_t n) {
    snprintf(buf, n, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", g_block->name, f->ctx.bid.x, f->ctx.bid.y,
             f->ctx.bid.z, f->ctx.tid.x, f->ctx.tid.y, f->ctx.tid.z);
}

// ---- switching ----
void to_scheduler(Fiber *f, bool finished) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(finished ? nullptr : &f->asan_fake, g_block->sched_stack_bottom,
                                   g_block->sched_stack_size);
#endif
#if defined(__x86_64__)
    emu_ctx_switch(&f->sp, g_block->sched_sp);
#else
    swapcontext(&f->uc, &g_block->sched_uc);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, nullptr, nullptr);
#endif
    (void)finished;
}

void fiber_main() {
    Fiber *f = g_fiber;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g_block->sched_stack_bottom, &g_block->sched_stack_size);
#endif
    (*g_block->body)();
    f->state = DONE;
    to_scheduler(f, true);
    fatal("a finished fiber was resumed");
}

void fiber_init(Fiber *f) {
#if defined(__x86_64__)
    uintptr_t top = ((uintptr_t)f->stack + kStack) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    uint32_t csr[2] = {0, 0};
    uint16_t cw = 0;
    __asm__ volatile("stmxcsr %0" : "=m"(csr[0]));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    csr[1] = cw;
    *--sp = 0;                        // fiber_main's return address (it never returns)
    *--sp = (uint64_t)(uintptr_t)&fiber_main;
    for (int r = 0; r < 6; r++) *--sp = 0; // rbp rbx r12 r13 r14 r15
    --sp;
    memcpy(sp, csr, 8);
    f->sp = sp;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = kStack;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, fiber_main, 0);
#endif
    f->asan_fake = nullptr;
}

void run_fiber(Fiber *f) {
    g_fiber = f;
    emu_ctx_ = &f->ctx;
    void *fake = nullptr;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(&fake, f->stack, kStack);
#endif
#if defined(__x86_64__)
    emu_ctx_switch(&g_block->sched_sp, f->sp);
#else
    swapcontext(&g_block->sched_uc, &f->uc);
#endif
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    (void)fake;
    g_fiber = nullptr;
    emu_ctx_ = nullptr;
}

Fiber *current(const char *what, const char *file, int line) {
    if (!g_fiber) fatal("%s at %s:%d called outside a kernel", what, file, line);
    return g_fiber;
}

void wait_here(Fiber *f, int state, const char *file, int line, unsigned mask) {
    f->state = state;
    f->file = file;
    f->line = line;
    f->mask = mask;
    to_scheduler(f, false);
}

// ---- the block scheduler ----

// Releases the warps whose every lane of the mask waits at one warp operation. Returns
// how many were released; aborts on a divergent warp operation.
int release_warps(Block *b) {
    int released = 0;
    for (int w0 = 0; w0 < b->T; w0 += 32) {
        const int n = b->T - w0 < 32 ? b->T - w0 : 32;
        const Fiber *first = nullptr;
        for (int l = 0; l < n; l++)
            if (b->f[w0 + l].state == WAIT_WARP) {
                first = &b->f[w0 + l];
                break;
            }
        if (!first) continue;
        char at[200];
        const unsigned mask = first->mask;
        if (n < 32 && (mask >> n) != 0) {
            where(first, at, sizeof at);
            fatal("%s: the warp operation at %s:%d has mask 0x%08x, but this warp has only %d threads (block of %d)",
                  at, first->file, first->line, mask, n, b->T);
        }
        for (int l = 0; l < n; l++) {
            const Fiber *g = &b->f[w0 + l];
            const bool elsewhere =
                g->state == WAIT_WARP && (g->file != first->file || g->line != first->line || g->mask != mask);
            const bool missing = ((mask >> l) & 1u) && g->state != WAIT_WARP;
            if (!elsewhere && !missing) continue;
            where(first, at, sizeof at);
            if (elsewhere)
                fatal("%s: divergent warp operations: lane %d waits at %s:%d (mask 0x%08x), lane %d at %s:%d "
                      "(mask 0x%08x)",
                      at, first->linear - w0, first->file, first->line, mask, l, g->file, g->line, g->mask);
            fatal("%s: the warp operation at %s:%d (mask 0x%08x) waits for lane %d, which %s", at, first->file,
                  first->line, mask, l, g->state == DONE ? "has exited" : "waits at a __syncthreads");
        }
        for (int l = 0; l < n; l++)
            if (b->f[w0 + l].state == WAIT_WARP) b->f[w0 + l].state = READY, released++;
    }
    return released;
}

void run_block(Block *b, uint3 bid, dim3 bdim, dim3 gdim, uint64_t *rng) {
    for (int i = 0; i < b->T; i++) {
        Fiber *f = &b->f[i];
        f->ctx.tid.x = (unsigned)i % bdim.x;
        f->ctx.tid.y = ((unsigned)i / bdim.x) % bdim.y;
        f->ctx.tid.z = (unsigned)i / (bdim.x * bdim.y);
        f->ctx.bid = bid;
        f->ctx.bdim = bdim;
        f->ctx.gdim = gdim;
        f->state = READY;
        f->linear = i;
        f->file = nullptr;
        f->line = 0;
        f->xchg_gen = 0;
        f->stack = g_stacks.get(i);
        fiber_init(f);
    }
    if (b->dyn_bytes) memset(b->dyn, 0xff, b->dyn_bytes); // uninitialized, as on a GPU
    std::vector<int> order;
    order.reserve(b->T);
    for (;;) {
        order.clear();
        for (int i = 0; i < b->T; i++)
            if (b->f[i].state == READY) order.push_back(i);
        if (!g_fixed_order)
            for (size_t i = order.size(); i > 1; i--) {
                size_t j = splitmix(rng) % i;
                int t = order[i - 1];
                order[i - 1] = order[j];
                order[j] = t;
            }
        for (int i : order) run_fiber(&b->f[i]);
        int done = 0, at_block = 0, at_warp = 0;
        const Fiber *blk = nullptr, *other = nullptr;
        for (int i = 0; i < b->T; i++) {
            const Fiber *f = &b->f[i];
            if (f->state == DONE) done++, other = other ? other : f;
            else if (f->state == WAIT_WARP) at_warp++;
            else if (f->state == WAIT_BLOCK) at_block++, blk = blk ? blk : f;
        }
        if (done == b->T) return;
        if (at_warp && release_warps(b)) continue;
        // only __syncthreads waiters (and exited threads) are left
        char at[200], o[200];
        if (done) {
            where(blk, at, sizeof at);
            where(other, o, sizeof o);
            fatal("divergent __syncthreads: %s waits at %s:%d, reached by %d of the block's %d threads; %s has exited",
                  at, blk->file, blk->line, at_block, b->T, o);
        }
        for (int i = 0; i < b->T; i++) {
            const Fiber *f = &b->f[i];
            if (f->file != blk->file || f->line != blk->line) {
                where(blk, at, sizeof at);
                where(f, o, sizeof o);
                fatal("divergent __syncthreads: %s waits at %s:%d, %s at %s:%d", at, blk->file, blk->line, o, f->file,
                      f->line);
            }
        }
        for (int i = 0; i < b->T; i++) b->f[i].state = READY;
    }
}

uint64_t gcd(uint64_t a, uint64_t b) {
    while (b) {
        uint64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

void run_grid(const char *name, dim3 grid, dim3 block, size_t smem, const std::function<void()> &body,
              uint64_t seed) {
    static thread_local Block b; // one per host thread; blocks of one grid run one at a time
    b.T = (int)(block.x * block.y * block.z);
    b.f.resize(b.T);
    b.body = &body;
    b.name = name;
    std::vector<unsigned char> dyn(smem ? smem : 1);
    b.dyn = dyn.data();
    b.dyn_bytes = smem;
    Block *saved = g_block;
    g_block = &b;
    uint64_t rng = seed;
    // blocks in the order i -> (i * stride + offset) mod n, stride coprime with n
    const uint64_t n = (uint64_t)grid.x * grid.y * grid.z;
    uint64_t stride = 1, offset = 0;
    if (!g_fixed_order && n > 1) {
        stride = splitmix(&rng) % n | 1;
        while (gcd(stride, n) != 1) stride++;
        offset = splitmix(&rng) % n;
    }
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t k = (i * stride + offset) % n;
        uint3 bid;
        bid.x = (unsigned)(k % grid.x);
        bid.y = (unsigned)((k / grid.x) % grid.y);
        bid.z = (unsigned)(k / ((uint64_t)grid.x * grid.y));
        run_block(&b, bid, block, grid, &rng);
    }
    g_block = saved;
}

} // namespace

void launch(const char *name, const char *file, int line, dim3 grid, dim3 block, size_t smem, cudaStream_t st,
            std::function<void()> body) {
    std::lock_guard<std::recursive_mutex> g(lock());
    read_env();
    const uint64_t threads = (uint64_t)block.x * block.y * block.z;
    // CUDA's limits for every architecture since sm_30 (cudaDeviceProp of the emulated H100)
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || block.x < 1 || block.y < 1 || block.z < 1 ||
        grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u || block.x > 1024u || block.y > 1024u ||
        block.z > 64u || threads > 1024u || smem > 48u * 1024u) {
        fprintf(stderr, "vqa emu: %s:%d: launch of %s with grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of dynamic "
                "shared memory is outside CUDA's limits\n", file, line, name, grid.x, grid.y, grid.z, block.x,
                block.y, block.z, smem);
        set_last_error(cudaErrorInvalidConfiguration);
        return;
    }
    if (!stream_ok(st)) {
        set_last_error(cudaErrorInvalidResourceHandle);
        return;
    }
    uint64_t s = g_seed ^ (0x5851f42d4c957f2dull * ++g_launches);
    const uint64_t seed = splitmix(&s);
    enqueue(st, name, [name, grid, block, smem, body, seed, threads]() {
        const double t0 = g_profile ? now_s() : 0.0;
        run_grid(name, grid, block, smem, body, seed);
        if (g_profile) {
            KernelStats &k = g_stats[name];
            k.launches++;
            k.threads += threads * grid.x * grid.y * grid.z;
            k.seconds += now_s() - t0;
        }
    });
}

} // namespace emu

using emu::Fiber;

void emu_syncthreads(const char *file, int line) {
    Fiber *f = emu::current("__syncthreads", file, line);
    emu::wait_here(f, emu::WAIT_BLOCK, file, line, 0);
}

namespace emu {
// A warp operation's wait: the calling lane must be in the mask (CUDA requires it).
void warp_wait(Fiber *f, const char *what, const char *file, int line, unsigned mask) {
    if (!((mask >> (f->linear & 31)) & 1u)) {
        char at[200];
        where(f, at, sizeof at);
        fatal("%s: %s at %s:%d with mask 0x%08x, which leaves out the calling lane", at, what, file, line, mask);
    }
    wait_here(f, WAIT_WARP, file, line, mask);
}
} // namespace emu

void emu_syncwarp(const char *file, int line, unsigned mask) {
    emu::warp_wait(emu::current("__syncwarp", file, line), "__syncwarp", file, line, mask);
}

// memcpy of 4 or 8 bytes with a constant size (inlined; the sanitizer's memcpy is slow)
static inline void copy_small(void *dst, const void *src, size_t bytes) {
    if (bytes == 8) memcpy(dst, src, 8);
    else if (bytes == 4) memcpy(dst, src, 4);
    else memcpy(dst, src, bytes);
}

void emu_warp_exchange(const char *file, int line, unsigned mask, int kind, int arg, int width, const void *v,
                       void *out, size_t bytes) {
    Fiber *f = emu::current("a warp shuffle", file, line);
    emu::Block *b = emu::g_block;
    const int lane = f->linear & 31, w0 = f->linear - lane;
    if (width < 1 || width > 32 || (width & (width - 1))) {
        char at[200];
        emu::where(f, at, sizeof at);
        emu::fatal("%s: shuffle at %s:%d with width %d (a power of two <= 32)", at, file, line, width);
    }
    uint64_t *slot = b->xchg[f->xchg_gen++ & 1];
    uint64_t mine = 0;
    copy_small(&mine, v, bytes);
    slot[f->linear] = mine;
    emu::warp_wait(f, "a warp shuffle", file, line, mask); // every lane has deposited
    const int base = lane & ~(width - 1), sub = lane - base;
    int src = lane;
    switch (kind) {
    case EMU_SHFL_IDX: src = base + (arg & (width - 1)); break;
    case EMU_SHFL_UP: src = sub - arg >= 0 ? lane - arg : lane; break;
    case EMU_SHFL_DOWN: src = sub + arg < width ? lane + arg : lane; break;
    case EMU_SHFL_XOR: src = (lane ^ arg) < base + width && (lane ^ arg) >= base ? lane ^ arg : lane; break;
    }
    if (!((mask >> src) & 1u)) src = lane; // reading a lane outside the mask is undefined: keep it visible
    copy_small(out, &slot[w0 + src], bytes);
}

unsigned emu_warp_ballot(const char *file, int line, unsigned mask, int pred) {
    Fiber *f = emu::current("a warp vote", file, line);
    emu::Block *b = emu::g_block;
    const int lane = f->linear & 31, w0 = f->linear - lane;
    uint64_t *slot = b->xchg[f->xchg_gen++ & 1];
    slot[f->linear] = pred != 0;
    emu::warp_wait(f, "a warp vote", file, line, mask);
    unsigned r = 0;
    for (int l = 0; l < 32; l++)
        if (((mask >> l) & 1u) && slot[w0 + l]) r |= 1u << l;
    return r;
}

void *emu_dynamic_shared(void) {
    emu::current("dynamic shared memory", __FILE__, __LINE__);
    return emu::g_block->dyn;
}
