/* tensor.h: a small tensor descriptor, flat parameter storage, and the step arena.
 *
 * Tensors do not own memory. Parameters, gradients and optimizer state live in flat
 * buffers (ParamStore), so the optimizer and the gradient all-reduce see one contiguous
 * array each. Activations and scratch live in an Arena that is reset every step:
 * after the first step (which sizes it) a step performs no malloc/free. */
#ifndef VQA_TENSOR_H
#define VQA_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define TENSOR_MAX_DIMS 6

typedef enum DType { DT_F32 = 0, DT_BF16, DT_F16, DT_I64, DT_I32, DT_U8, DT_BOOL } DType;
typedef enum Device { DEV_CPU = 0, DEV_CUDA = 1 } Device;

size_t dtype_size(DType t);
const char *dtype_name(DType t); /* safetensors spelling: "F32", "BF16", ... */

typedef struct Tensor {
    void *data;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    DType dtype;
    Device device;
} Tensor;

int64_t tensor_numel(const Tensor *t);
/* Formats the shape as "[2, 3, 4]" into buf; returns buf. */
char *tensor_shape_str(const Tensor *t, char *buf, size_t n);

/* ---- Arena: bump allocator for step-time memory (activations, scratch). ----
 * Allocations are 64-byte aligned. When the current block is full a new block is
 * malloc'ed (counted in n_sys_allocs); arena_reset() rewinds and, if more than one block
 * was used, replaces them by one block of the high-water size, so from the second step
 * on, the same sequence of allocations needs no system allocation at all. */
typedef struct ArenaBlock ArenaBlock;
/* Where an arena's blocks come from. Default (arena_init): host posix_memalign, block
 * header inside the block. With hooks (arena_init_mem, e.g. backend_arena_mem() of a device
 * Backend): block DATA comes from alloc and is never touched by the host (headers are
 * malloc'ed apart, zeroing goes through zero), so the arena can hand out device memory.
 * ctx is passed to every hook. */
typedef struct ArenaMem {
    void *ctx;
    void *(*alloc)(void *ctx, size_t bytes);        /* NULL when out of memory; 64-byte aligned */
    void (*free)(void *ctx, void *p);
    void (*zero)(void *ctx, void *p, size_t bytes); /* used by arena_zeros */
} ArenaMem;
typedef struct Arena {
    ArenaBlock *blocks;     /* owned list; first = the one consolidated block */
    size_t used;            /* bytes handed out since the last reset */
    size_t high_water;      /* max of used over the arena's life */
    size_t capacity;        /* bytes in all blocks */
    uint64_t n_sys_allocs;  /* number of malloc calls made by the arena, ever */
    size_t min_block;       /* default size of a new block */
    ArenaMem mem;           /* block allocator hooks; all NULL = host memory */
} Arena;

void arena_init(Arena *a, size_t initial_bytes);
/* The same arena over memory from mem (copied; NULL = arena_init). n_sys_allocs then
 * counts mem->alloc calls. */
void arena_init_mem(Arena *a, size_t initial_bytes, const ArenaMem *mem);
void arena_free(Arena *a);
/* Returns NULL only if the system is out of memory. */
void *arena_alloc(Arena *a, size_t bytes);
float *arena_floats(Arena *a, size_t n);     /* arena_alloc(n * 4), uninitialized */
float *arena_zeros(Arena *a, size_t n);      /* zero-filled */
void arena_reset(Arena *a);
/* Mark / rewind to a mark (for scratch whose lifetime ends inside a step). */
size_t arena_mark(const Arena *a);
void arena_rewind(Arena *a, size_t mark);

#endif
