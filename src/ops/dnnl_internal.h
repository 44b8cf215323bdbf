/* dnnl_internal.h: what the oneDNN backend's files share (backend_dnnl.h is the public
 * side): the context, the per-shape cache, and DnnlOp, a primitive with its arguments
 * bound to the caller's plain memory through reorders where the primitive wants another
 * format. Only compiled with oneDNN (VQA_HAVE_ONEDNN); not part of the op contract. */
#ifndef VQA_DNNL_INTERNAL_H
#define VQA_DNNL_INTERNAL_H

#include <dnnl.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/backend.h"
#include "util/err.h"

#define DNNL_MAX_KEY 20   /* int32 words of a cache key */
#define DNNL_MAX_ARGS 12  /* arguments of one primitive */
#define DNNL_ALIGN 64     /* bytes: buffers carved from a workspace start at this alignment */

/* What a cache entry is (the first word of every key). */
enum {
    DK_CONV_FWD = 1, DK_CONV_BWD_DATA, DK_CONV_BWD_W,
    DK_BN_FWD_TRAIN, DK_BN_BWD_TRAIN, DK_BN_FWD_EVAL, DK_BN_BWD_EVAL,
    DK_POOL,
};

typedef struct DnnlCacheEntry {
    uint64_t hash;
    int n;
    int32_t key[DNNL_MAX_KEY];
    void *obj;                 /* owned; NULL: oneDNN cannot do this shape (use the reference) */
    void (*free_obj)(void *obj);
} DnnlCacheEntry;

typedef struct DnnlCtx {
    Backend table;          /* the table handed out; table.ctx points here */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    DnnlCacheEntry *cache;  /* grows; a run has a few dozen shapes, none evicted */
    int n_cache, cap_cache;
    void *scratch;          /* for the entries without a workspace argument (grown, 64-aligned) */
    size_t scratch_bytes;
    int conv_blocked;       /* backend_cpu_dnnl_set_conv_blocked */
    long fallbacks;         /* entry calls that ran on the reference (backend_cpu_dnnl_fallbacks) */
    int failed;             /* a oneDNN call failed since the last be->error */
    Err err;                /* its message */
} DnnlCtx;

static inline DnnlCtx *dnnl_ctx(const Backend *be) { return (DnnlCtx *)be->ctx; }

/* s == dnnl_success: 0. Else -1, and the first failure since the last be->error is kept
 * as "file:line: call: oneDNN status" (entries return void; the trainer checks once per
 * step). */
int dnnl_check(DnnlCtx *c, dnnl_status_t s, const char *call, const char *file, int line);
#define DNNL_CHECK(c, call) dnnl_check((c), (call), #call, __FILE__, __LINE__)
const char *dnnl_status_str(dnnl_status_t s);

/* ---- the per-shape cache (dnnl_context.c) ----
 * key[0] is a DK_* kind; dnnl_key_begin writes it and the OpenMP thread count (oneDNN
 * fixes a primitive's thread partition when it is created). Returns the words written. */
int dnnl_key_begin(int32_t key[DNNL_MAX_KEY], int kind);
/* The entry under key, or NULL when there is none yet. */
DnnlCacheEntry *dnnl_cache_find(DnnlCtx *c, const int32_t *key, int n);
/* Adds obj (NULL: "use the reference") under key; the cache owns it from here (free_obj
 * frees it on failure too). NULL when out of memory. */
DnnlCacheEntry *dnnl_cache_add(DnnlCtx *c, const int32_t *key, int n, void *obj, void (*free_obj)(void *));
/* The context's scratch of at least bytes (64-aligned), grown when smaller; NULL (and a
 * recorded failure) when out of memory. Valid until the next call. */
void *dnnl_scratch(DnnlCtx *c, size_t bytes);

/* ---- DnnlOp: a primitive and its bound arguments (dnnl_context.c) ----
 * Each argument has the caller's memory descriptor (plain NCHW, [K, C, R, S], [C] ...).
 * When the primitive wants another format, or the argument accumulates, the primitive
 * works on a buffer of its own format carved from a workspace (DnnlOp.ws_bytes) and a
 * reorder moves the data:
 *   DA_IN   user -> primitive format before the primitive
 *   DA_OUT  primitive format -> user after it (direct when the formats agree)
 *   DA_ACC  user += primitive result (a reorder with a sum post-op, also between equal
 *           formats: oneDNN's backward primitives overwrite their outputs) */
enum { DA_IN = 0, DA_OUT = 1, DA_ACC = 2 };

typedef struct DnnlArg {
    int arg;                  /* DNNL_ARG_* */
    int dir;                  /* DA_* */
    dnnl_memory_t prim_mem;   /* the primitive's format */
    dnnl_memory_t user_mem;   /* the caller's format; NULL when bound directly */
    dnnl_primitive_t reorder; /* NULL when bound directly */
    size_t off;               /* prim_mem's buffer in the workspace (when reordered) */
} DnnlArg;

typedef struct DnnlOp {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    int nargs;
    DnnlArg a[DNNL_MAX_ARGS];
    size_t ws_bytes;          /* workspace the reordered arguments need */
} DnnlOp;

/* Creates op->prim from pd (op takes pd). Returns 0, or -1 when oneDNN refuses (the
 * status in *st; nothing recorded: the caller falls back to the reference). */
int dnnl_op_init(DnnlCtx *c, DnnlOp *op, dnnl_primitive_desc_t pd, dnnl_status_t *st);
/* Binds argument `arg` (query: the pd's memory descriptor for it) to the caller's user_md. */
int dnnl_op_arg(DnnlCtx *c, DnnlOp *op, int arg, int dir, const dnnl_memory_desc_t *user_md,
                dnnl_status_t *st);
/* Runs op with ptr[i] the caller's memory of argument i (in dnnl_op_arg order) and ws a
 * workspace of op->ws_bytes (may be NULL when 0). 0 or -1 (recorded). */
int dnnl_op_run(DnnlCtx *c, DnnlOp *op, void *const *ptr, void *ws);
void dnnl_op_free(DnnlOp *op);

/* Memory descriptors of the caller's layouts. */
/* [N, C, H, W] fp32 in NCHW (nhwc 0) or channels-last NHWC (nhwc 1, oneDNN's acdb) */
dnnl_status_t dnnl_md_act(dnnl_memory_desc_t *md, int N, int C, int H, int W, int nhwc);
dnnl_status_t dnnl_md_1d(dnnl_memory_desc_t *md, int64_t n);

/* The reference table (backend_cpu()): where every fallback goes. */
static inline const Backend *dnnl_ref(void) { return backend_cpu(); }

/* Installs each file's entries into the table (dnnl_conv.c, dnnl_bn.c, dnnl_pool.c). */
void dnnl_conv_install(Backend *t);
void dnnl_bn_install(Backend *t);
void dnnl_pool_install(Backend *t);

/* y[i] += x[i], i < n (OpenMP) */
void dnnl_add_into(float *y, const float *x, size_t n);

#endif
