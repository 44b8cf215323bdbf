/* arena.c: the step arena of tensor.h, a 64-byte aligned bump allocator.
 *
 * Memory is a chain of blocks, oldest first. Each block covers a fixed range of "logical"
 * offsets [start, start + size) so that `used` (and a mark) is one number even when the
 * allocations span several blocks: moving to the next block skips the unused tail of
 * the current one, and that skipped tail is counted in `used`. Hence the high-water mark
 * is an upper bound of what the same allocation sequence needs in ONE block, and
 * arena_reset() can replace a chain by a single block of high_water bytes, after which
 * the same sequence never calls malloc again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/tensor.h"

#define ARENA_ALIGN 64
#define ARENA_DEFAULT_BLOCK ((size_t)1 << 20)

/* Host arena: the header sits in the first ARENA_ALIGN bytes of the block's own
 * allocation, so one block = one system allocation. Hooked arena (ArenaMem, e.g. device
 * memory the host must not touch): the header is malloc'ed apart and data comes from
 * mem.alloc. */
struct ArenaBlock {
    ArenaBlock *next;
    size_t start; /* logical offset of data[0] */
    size_t size;  /* bytes of data */
    char *data;
};

static size_t round_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

static ArenaBlock *block_new(Arena *a, size_t start, size_t size) {
    _Static_assert(sizeof(ArenaBlock) <= ARENA_ALIGN, "block header must fit the alignment");
    ArenaBlock *b;
    if (a->mem.alloc) {
        if (!(b = malloc(sizeof *b))) return NULL;
        if (!(b->data = a->mem.alloc(a->mem.ctx, size))) {
            free(b);
            return NULL;
        }
    } else {
        void *p = NULL;
        if (posix_memalign(&p, ARENA_ALIGN, ARENA_ALIGN + size) != 0) return NULL;
        b = p;
        b->data = (char *)p + ARENA_ALIGN;
    }
    a->n_sys_allocs++;
    b->next = NULL;
    b->start = start;
    b->size = size;
    a->capacity += size;
    return b;
}

static void chain_free(const Arena *a, ArenaBlock *b) {
    while (b) {
        ArenaBlock *n = b->next;
        if (a->mem.alloc && a->mem.free) a->mem.free(a->mem.ctx, b->data);
        free(b);
        b = n;
    }
}

void arena_init(Arena *a, size_t initial_bytes) { arena_init_mem(a, initial_bytes, NULL); }

void arena_init_mem(Arena *a, size_t initial_bytes, const ArenaMem *mem) {
    memset(a, 0, sizeof *a);
    if (mem) a->mem = *mem;
    a->min_block = initial_bytes ? round_up(initial_bytes) : ARENA_DEFAULT_BLOCK;
    if (initial_bytes) a->blocks = block_new(a, 0, a->min_block); /* NULL: retried lazily */
}

void arena_free(Arena *a) {
    chain_free(a, a->blocks);
    memset(a, 0, sizeof *a);
}

void *arena_alloc(Arena *a, size_t bytes) {
    /* Zero-byte requests still get a distinct, aligned pointer. */
    size_t n = round_up(bytes ? bytes : 1);
    ArenaBlock *b = a->blocks, *last = NULL;
    size_t pos = a->used;
    /* Walk to the block that holds `pos`, then forward to the first that fits. The chain
     * is short (one block after the first reset), so the walk is cheap. */
    for (; b; last = b, b = b->next) {
        if (pos > b->start + b->size) continue; /* block entirely before pos */
        if (pos < b->start) pos = b->start;     /* skip a tail into this block */
        if (pos + n <= b->start + b->size) break;
    }
    if (!b) {
        size_t start = last ? last->start + last->size : 0;
        /* Grow geometrically so the first step needs few blocks. */
        size_t size = a->min_block;
        if (size < a->capacity) size = a->capacity;
        if (size < n) size = n;
        b = block_new(a, start, size);
        if (!b) return NULL;
        if (last) last->next = b;
        else a->blocks = b;
        pos = start;
    }
    void *p = b->data + (pos - b->start);
    a->used = pos + n;
    if (a->used > a->high_water) a->high_water = a->used;
    return p;
}

float *arena_floats(Arena *a, size_t n) { return arena_alloc(a, n * sizeof(float)); }

float *arena_zeros(Arena *a, size_t n) {
    float *p = arena_floats(a, n);
    if (p && a->mem.zero) a->mem.zero(a->mem.ctx, p, n * sizeof(float));
    else if (p) op_zero(p, n * sizeof(float));
    return p;
}

void arena_reset(Arena *a) {
    a->used = 0;
    if (!a->blocks || !a->blocks->next) return;
    /* Several blocks: consolidate into one of the high-water size. If that allocation
     * fails, keep the chain (still valid, just not consolidated). */
    ArenaBlock *old = a->blocks;
    size_t old_cap = a->capacity;
    a->capacity = 0;
    ArenaBlock *one = block_new(a, 0, round_up(a->high_water));
    if (!one) {
        a->capacity = old_cap;
        return;
    }
    chain_free(a, old);
    a->blocks = one;
}

size_t arena_mark(const Arena *a) { return a->used; }

void arena_rewind(Arena *a, size_t mark) {
    if (mark <= a->used) a->used = mark;
}
