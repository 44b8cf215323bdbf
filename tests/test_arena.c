/* test_arena.c: the step arena: alignment, no overlap, growth by blocks, consolidation at
 * reset, mark/rewind, and that a repeated step performs no system allocation; an arena over
 * allocator hooks (device memory) takes blocks only from them and zeroes through them. */
// TEST_LIBS: vqa_ops
// TEST_LABELS: unit
#include <stdlib.h>
#include <string.h>

#include "ops/tensor.h"
#include "testlib.h"

static int aligned64(const void *p) { return ((uintptr_t)p & 63) == 0; }

static void allocations_are_64_byte_aligned(void) {
    Arena a;
    arena_init(&a, 4096);
    const size_t sizes[] = {0, 1, 3, 63, 64, 65, 100, 1000, 5000, 7};
    for (int i = 0; i < 10; i++) {
        void *p = arena_alloc(&a, sizes[i]);
        CHECK(p != NULL);
        CHECK_MSG(aligned64(p), "size %zu -> %p", sizes[i], p);
    }
    arena_free(&a);
}

static void allocations_do_not_overlap(void) {
    Arena a;
    arena_init(&a, 1000); /* small: forces several blocks */
    unsigned char *p[40];
    size_t n[40];
    for (int i = 0; i < 40; i++) {
        n[i] = (size_t)(i * 37 % 300) + 1;
        p[i] = arena_alloc(&a, n[i]);
        memset(p[i], i + 1, n[i]);
    }
    for (int i = 0; i < 40; i++)
        for (size_t j = 0; j < n[i]; j++)
            if (p[i][j] != (unsigned char)(i + 1)) {
                CHECK_MSG(0, "allocation %d byte %zu overwritten", i, j);
                break;
            }
    arena_free(&a);
}

static void zeros_are_zero_even_after_reuse(void) {
    Arena a;
    arena_init(&a, 1 << 12);
    float *f = arena_floats(&a, 256);
    for (int i = 0; i < 256; i++) f[i] = 1.0f;
    arena_reset(&a);
    float *z = arena_zeros(&a, 256);
    CHECK(z == f); /* same memory handed out again */
    int nonzero = 0;
    for (int i = 0; i < 256; i++) nonzero += z[i] != 0.0f;
    CHECK(nonzero == 0);
    arena_free(&a);
}

static void lazy_init_and_growth_count_system_allocations(void) {
    Arena a;
    arena_init(&a, 0);
    CHECK(a.n_sys_allocs == 0 && a.capacity == 0);
    arena_alloc(&a, 100);
    CHECK(a.n_sys_allocs == 1);
    size_t cap = a.capacity;
    arena_alloc(&a, cap); /* cannot fit in the first block */
    CHECK(a.n_sys_allocs == 2);
    CHECK(a.capacity >= 2 * cap);
    arena_free(&a);
}

static void reset_consolidates_into_one_block_of_high_water(void) {
    Arena a;
    arena_init(&a, 256);
    for (int i = 0; i < 20; i++) arena_alloc(&a, 200);
    uint64_t grown = a.n_sys_allocs;
    CHECK(grown > 1);
    size_t hw = a.high_water;
    CHECK(hw >= 20 * 256); /* each 200-byte request takes 256 (64-aligned) */
    arena_reset(&a);
    CHECK(a.used == 0);
    CHECK(a.n_sys_allocs == grown + 1); /* one block replaces the chain */
    CHECK(a.capacity >= hw);
    CHECK(a.capacity < hw + 64);
    arena_free(&a);
}

/* One "training step": forward activations, scratch released mid-step, backward. */
/* record: store the addresses in ptrs; otherwise (unless step == 1) compare with them. */
static void fake_step(Arena *a, int step, uintptr_t *first_ptrs, int record, int *same) {
    const size_t sizes[] = {3 * 224 * 224 * 4, 64 * 112 * 112 * 4, 17, 1 << 20, 4096, 333};
    int k = 0;
    for (int i = 0; i < 6; i++) {
        void *p = arena_alloc(a, sizes[i]);
        if (record) first_ptrs[k] = (uintptr_t)p;
        else if (step > 1) *same &= first_ptrs[k] == (uintptr_t)p;
        k++;
    }
    size_t m = arena_mark(a);
    for (int i = 0; i < 3; i++) arena_floats(a, 1000 + (size_t)step); /* scratch, released below */
    arena_rewind(a, m);
    for (int i = 5; i >= 0; i--) {
        void *p = arena_zeros(a, sizes[i] / 4 + 1);
        if (record) first_ptrs[k] = (uintptr_t)p;
        else if (step > 1) *same &= first_ptrs[k] == (uintptr_t)p;
        k++;
    }
}

static void no_step_time_allocation_after_first_step(void) {
    Arena a;
    arena_init(&a, 64 << 10); /* far too small for a step: the first step grows it */
    uintptr_t ptrs[16];
    int same = 1;
    uint64_t sys2 = 0;
    size_t hw2 = 0, cap2 = 0;
    for (int step = 1; step <= 10; step++) {
        arena_reset(&a);
        fake_step(&a, step, ptrs, step == 2, &same);
        if (step == 1) CHECK(a.n_sys_allocs > 1);
        if (step == 2) sys2 = a.n_sys_allocs, hw2 = a.high_water, cap2 = a.capacity;
    }
    CHECK_MSG(a.n_sys_allocs == sys2, "sys allocs step 2: %llu, step 10: %llu",
              (unsigned long long)sys2, (unsigned long long)a.n_sys_allocs);
    CHECK(a.high_water == hw2);
    CHECK(a.capacity == cap2);
    CHECK(same); /* steps 3..10 get exactly the addresses of step 2 */
    arena_free(&a);
}

static void mark_rewind_reuses_memory(void) {
    Arena a;
    arena_init(&a, 1 << 16);
    arena_alloc(&a, 100);
    size_t m = arena_mark(&a);
    void *p = arena_alloc(&a, 1000);
    arena_rewind(&a, m);
    CHECK(a.used == m);
    void *q = arena_alloc(&a, 500);
    CHECK(p == q);
    CHECK(a.high_water >= m + 1000);
    arena_free(&a);
}

static void rewind_across_blocks_reuses_later_blocks(void) {
    Arena a;
    arena_init(&a, 1024);
    arena_alloc(&a, 512);
    size_t m = arena_mark(&a);
    void *p = arena_alloc(&a, 4000); /* new block */
    uint64_t sys = a.n_sys_allocs;
    arena_rewind(&a, m);
    void *q = arena_alloc(&a, 4000); /* skips the first block's tail again */
    CHECK(q == p);
    CHECK(a.n_sys_allocs == sys);
    arena_free(&a);
}

/* A fake "device" allocator: poisoned host blocks, counted, so the test sees that the
 * arena takes every block from the hooks, frees each one, and zeroes only through them. */
static int fake_live, fake_allocs, fake_zeros;
static void *fake_alloc(void *ctx, size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset(p, 0xA5, n);
    fake_live++, fake_allocs++;
    return p;
}
static void fake_free(void *ctx, void *p) {
    if (p) fake_live--;
    free(p);
}
static void fake_zero(void *ctx, void *p, size_t n) {
    fake_zeros++;
    memset(p, 0, n);
}

static void hooked_arena_takes_blocks_from_hooks_and_frees_them(void) {
    ArenaMem mem = {NULL, fake_alloc, fake_free, fake_zero};
    Arena a;
    fake_live = fake_allocs = fake_zeros = 0;
    arena_init_mem(&a, 1024, &mem);
    CHECK(fake_allocs == 1 && a.n_sys_allocs == 1);
    unsigned char *p = arena_alloc(&a, 100);
    CHECK(p && aligned64(p) && p[0] == 0xA5); /* data is the hook's block, not a header */
    float *z = arena_zeros(&a, 4000);         /* does not fit: a second hooked block */
    CHECK(z && fake_allocs == 2 && fake_zeros == 1 && z[0] == 0.0f && z[3999] == 0.0f);
    arena_reset(&a); /* consolidates: one new block, two freed */
    CHECK(fake_allocs == 3 && fake_live == 1 && a.n_sys_allocs == 3);
    arena_alloc(&a, 100);
    arena_zeros(&a, 4000);
    CHECK(fake_allocs == 3); /* the same step again: no allocation */
    arena_free(&a);
    CHECK(fake_live == 0);
}

int main(void) {
    RUN(allocations_are_64_byte_aligned);
    RUN(allocations_do_not_overlap);
    RUN(zeros_are_zero_even_after_reuse);
    RUN(lazy_init_and_growth_count_system_allocations);
    RUN(reset_consolidates_into_one_block_of_high_water);
    RUN(no_step_time_allocation_after_first_step);
    RUN(mark_rewind_reuses_memory);
    RUN(rewind_across_blocks_reuses_later_blocks);
    RUN(hooked_arena_takes_blocks_from_hooks_and_frees_them);
    return test_summary();
}
